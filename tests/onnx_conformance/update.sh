#!/bin/sh
# Regenerates what the conformance test reads and reports, from a full run
# of ONNX's node tests (every test imported, interpreted, compiled and run):
#   tests/onnx_conformance/passing.txt   the tests CI runs (all must pass)
#   docs/onnx.md                         the per-operator table, between its
#                                        conformance-table markers
#   tests/onnx_conformance/results.tsv   each test's status and reason
# Usage: tests/onnx_conformance/update.sh [BUILD_DIR]   (default: build)
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
here=$src/tests/onnx_conformance
work=$(mktemp -d "${TMPDIR:-/tmp}/qmc-conformance.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$build/tests/onnx_conformance/onnx_conformance" --qmc "$build/compiler/qmc" --work "$work/run" \
    --compile all --write-list "$here/passing.txt" --table "$work/table.md" \
    --results "$here/results.tsv" | tee "$work/summary.txt"
summary=$(cat "$work/summary.txt")
awk -v table="$work/table.md" -v summary="$summary" '
    /<!-- conformance table begin -->/ { print; print ""; print "Debian'\''s libonnx-testdata (ONNX 1.12): " summary "."; print ""; while ((getline l < table) > 0) print l; print ""; skip = 1; next }
    /<!-- conformance table end -->/ { skip = 0 }
    !skip { print }' "$src/docs/onnx.md" >"$work/onnx.md"
mv "$work/onnx.md" "$src/docs/onnx.md"
