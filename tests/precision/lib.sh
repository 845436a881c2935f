# lib.sh: what the precision scripts share. Sourced with the test's
# environment (QMC, QMC_SOURCE, NPYCMP, NPYSLICE, NPYTOOL).
set -eu
: "${QMC:?}" "${QMC_SOURCE:?}" "${NPYCMP:?}" "${NPYSLICE:?}" "${NPYTOOL:?}"
digits=$QMC_SOURCE/examples/digits
lm=$QMC_SOURCE/examples/tiny-gpt
gpt_model=$QMC_SOURCE/examples/tiny-gpt/tiny-gpt.qm
work=$(mktemp -d "${TMPDIR:-/tmp}/qmc-precision.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# qmc COMMAND on tiny-gpt with the shared weights: gpt eval ARGS...
gpt() {
    cmd=$1
    shift
    "$QMC" "$cmd" "$gpt_model" --weights "$lm/lm-dev.safetensors" "$@"
}

# A top-level number of a report: json_num FILE KEY
json_num() {
    sed -n "s/^  \"$2\": \\([-0-9.eE+]*\\),*$/\\1/p" "$1"
}

# The report's totals add up: the tensors' bytes sum to total_weight_bytes
# and the average bits are 8 * bytes / weights.
check_report_sums() {
    awk '
        /^      "weights": / { n = $2; sub(",", "", n); b = $6; sub(",", "", b); W += n; B += b
                               bits = $4; sub(",", "", bits)
                               if ((bits - 8 * b / n) ^ 2 > 1e-18) { print "bits of a tensor do not match its bytes"; exit 1 } }
        /^  "total_weight_bytes": / { t = $2; sub(",", "", t) }
        /^  "total_weights": / { tw = $2; sub(",", "", tw) }
        /^  "avg_bits_per_weight": / { a = $2; sub(",", "", a) }
        END { if (B != t || W != tw || (a - 8 * B / W) ^ 2 > 1e-18) { print "totals", B, t, W, tw, a; exit 1 } }
    ' "$1" || fail "$1: bytes and bits do not add up"
}

# Compares two numbers with awk: holds A "<" B etc.; A and B may be
# expressions ("2 * 0.005"), evaluated as numbers (passed with -v they
# would be strings, and compared as strings).
holds() {
    awk "BEGIN { exit !(($1) $2 ($3)) }"
}
