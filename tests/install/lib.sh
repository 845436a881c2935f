# lib.sh: what the install tests share (sourced). Needs QMC_BUILD (the
# build folder of the qmc under test) and QMC_SOURCE.
set -eu
: "${QMC_BUILD:?}" "${QMC_SOURCE:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
here=$QMC_SOURCE/tests/install
digits=$QMC_SOURCE/examples/digits
version=$(sed -n 's/^#define QMC_VERSION "\(.*\)"$/\1/p' "$QMC_SOURCE/compiler/support/support.h")
# the installed qmc must find everything from its own location
unset QMC_RUNTIME_DIR
fail() { echo "FAIL: $*" >&2; exit 1; }

# install_prefix DIR: `cmake --install` into a scratch prefix, then moved to
# DIR, so nothing can work through a path recorded at install time.
install_prefix() {
    cmake --install "$QMC_BUILD" --prefix "$t/install-scratch" >"$t/install.log" ||
        { cat "$t/install.log"; fail "cmake --install"; }
    mkdir -p "$(dirname "$1")"
    mv "$t/install-scratch" "$1"
}

# project_sources DIR: the external projects' sources (app/) and a copy of
# the digits model, its weights and calibration data, so the tests can touch
# them.
project_sources() {
    mkdir -p "$1/digits"
    cp "$here"/app/* "$1/"
    cp "$digits/digits.qm" "$digits/digits-mlp.safetensors" "$digits/calib_x.npy" "$1/digits/"
}

# is_aarch64 FILE: the ELF machine (bytes 18-19) is aarch64 (0xb7)
is_aarch64() { [ "$(od -An -tx1 -j18 -N2 "$1" | tr -d ' ')" = b700 ]; }

# The least accuracy accepted on the 500 digits test images: PyTorch's fp32
# model gets 0.970, int8 0.970, int8:a8 0.972 (README); a broken model or
# runtime gets far less.
MIN_ACCURACY=0.965
