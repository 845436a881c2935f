# lib.sh: what the end-to-end scripts share. Sourced with the test's
# environment (QMC, QMC_SOURCE, NPYCMP, NPYSLICE, NPYTOOL).
set -eu
: "${QMC:?}" "${QMC_SOURCE:?}" "${NPYCMP:?}" "${NPYSLICE:?}" "${NPYTOOL:?}"
examples=$QMC_SOURCE/examples
digits=$QMC_SOURCE/examples/digits
lm=$QMC_SOURCE/examples/tiny-gpt
work=$(mktemp -d "${TMPDIR:-/tmp}/qmc-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# The tiny-gpt model with the shared weights, wherever they are.
gpt() {
    "$QMC" "$@" --weights "$lm/lm-dev.safetensors"
}
