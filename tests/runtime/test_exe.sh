#!/bin/sh
# test_exe.sh: the executable driver (runtime/exe_main.c), through the fake
# model of fake_model.c (x f32[3,4], ids i32[2] -> y = 2x+1 (+w), z = ids+100).
#
#   test_exe.sh EXE MKNPY NPYCMP [RUNNER]
#
# EXE_amx (features this CPU lacks) and EXE_weights (external weights) sit
# beside EXE. RUNNER (qemu-aarch64) runs the executables; exit 77 (skip)
# when it or EXE is missing. Prints every failed check; exit 1 if any.
set -eu
exe=$1 mknpy=$2 npycmp=$3 runner=${4:-}

case $exe in
missing:*) echo "SKIP: cannot build the fake model: ${exe#missing:} not found"; exit 77 ;;
esac
if [ -n "$runner" ] && ! command -v "$runner" >/dev/null 2>&1; then
    echo "SKIP: $runner not found (apt-get install qemu-user)"
    exit 77
fi

work=$(pwd)/$(basename "$exe").work
rm -rf "$work"
mkdir -p "$work"
cd "$work"
failures=0
prog=$(basename "$exe")

bad() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# run EXE ARGS...: the model under the runner, stdout/stderr in out/err
run() {
    status=0
    $runner "$@" >out 2>err || status=$?
}

# ok NAME EXE ARGS...: must exit 0 with nothing on stderr
ok() {
    name=$1
    shift
    run "$@"
    if [ "$status" -ne 0 ] || [ -s err ]; then
        bad "$name: exit $status"
        sed 's/^/    /' err
    fi
}

# err NAME TEXT EXE ARGS...: must exit 1, print nothing on stdout, and say
# "PROG: error: TEXT" (TEXT a fixed string, PROG the executable's name)
err() {
    name=$1 text=$2
    shift 2
    run "$@"
    want="$(basename "$1"): error: $text"
    if [ "$status" -ne 1 ]; then bad "$name: exit $status, expected 1"; fi
    if [ -s out ]; then bad "$name: printed on stdout: $(cat out)"; fi
    if ! grep -qF -- "$want" err; then
        bad "$name: stderr lacks '$want'"
        sed 's/^/    /' err
    fi
}

# same NAME A.npy B.npy: identical dtype, shape and bytes
same() {
    if ! "$npycmp" "$2" "$3" >cmp.out 2>&1; then
        bad "$1: $2 differs from $3: $(cat cmp.out)"
    fi
}

# ---- inputs ------------------------------------------------------------------
"$mknpy" x.npy f32 3,4 arange
"$mknpy" ids.npy i32 2 5,7
"$mknpy" ids64.npy i64 2 5,7
"$mknpy" ids64big.npy i64 2 5,5000000000
"$mknpy" ids_fail.npy i32 2 -1,0
"$mknpy" x43.npy f32 4,3 arange
"$mknpy" xf64.npy f64 3,4 arange
"$mknpy" idsf.npy f32 2 5,7
"$mknpy" xb.npy f32 2,3,4 arange
"$mknpy" idsb.npy i32 2,2 1,2,3,4
"$mknpy" idsb3.npy i32 3,2 1,2,3,4,5,6
"$mknpy" xempty.npy f32 0,3,4 0
"$mknpy" y_want.npy f32 3,4 1,3,5,7,9,11,13,15,17,19,21,23
"$mknpy" z_want.npy i32 2 105,107
"$mknpy" yb_want.npy f32 2,3,4 1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31,33,35,37,39,41,43,45,47
"$mknpy" zb_want.npy i32 2,2 105,107
"$mknpy" zbb_want.npy i32 2,2 101,102,103,104
"$mknpy" yw_want.npy f32 3,4 1,4,7,10,13,16,19,22,25,28,31,34
echo "not an npy file" >text.npy
x="--input x=x.npy"
ids="--input ids=ids.npy"

# ---- results -------------------------------------------------------------------
ok outputs "$exe" $x $ids --output y=y.npy --output z=z.npy
same outputs y.npy y_want.npy
same outputs z.npy z_want.npy

ok int64 "$exe" --input=x=x.npy --input=ids=ids64.npy --output=z=z64.npy
same int64 z64.npy z_want.npy

ok batch "$exe" --input x=xb.npy $ids --output y=yb.npy --output z=zb.npy
same batch yb.npy yb_want.npy
same batch zb.npy zb_want.npy

ok batch-both "$exe" --input x=xb.npy --input ids=idsb.npy --output z=zbb.npy
same batch-both zbb.npy zbb_want.npy

ok summary "$exe" $x $ids
printf '%s\n' "y: f32[3, 4] min 1 max 23 mean 12" "z: i32[2] min 105 max 107 mean 106" >summary_want
diff -u summary_want out >summary.diff || bad "summary: $(cat summary.diff)"

ok summary-batch "$exe" --input x=xb.npy $ids
grep -qxF "y: batch of f32[3, 4] min 1 max 47 mean 24" out || bad "summary-batch: $(cat out)"

ok bench "$exe" $x $ids --bench 5 --output y=yb5.npy
if ! grep -qxE 'bench: 5 runs, min [0-9]+\.[0-9]{3} ms, median [0-9]+\.[0-9]{3} ms' out ||
    [ "$(wc -l <out)" -ne 1 ]; then
    bad "bench: unexpected output: $(cat out)"
fi
same bench yb5.npy y_want.npy

for t in 1 2 3 8; do
    ok "threads-$t" "$exe" --input x=xb.npy $ids --threads $t --output y=yt.npy
    same "threads-$t" yt.npy yb_want.npy
done
ok threads-eq "$exe" $x $ids --threads=2 --output y=yt.npy
same threads-eq yt.npy y_want.npy
export QMC_NUM_THREADS=2
ok threads-env "$exe" --input x=xb.npy $ids --output y=yt.npy
same threads-env yt.npy yb_want.npy
export QMC_THREAD_SPIN_US=0
ok spin-env "$exe" --input x=xb.npy $ids --output y=yt.npy
same spin-env yt.npy yb_want.npy
unset QMC_NUM_THREADS QMC_THREAD_SPIN_US

ok help "$exe" --help
grep -q "^usage: $prog --input NAME=FILE.npy" out || bad "help: no usage line: $(head -1 out)"
grep -qE '^  ids +i32\[2\]$' out || bad "help: does not list input ids"

# ---- user errors ---------------------------------------------------------------
err shape "input 'x' is f32[3, 4] (or a batch [N, ...] of it) but 'x43.npy' holds f32[4, 3]" \
    "$exe" --input x=x43.npy $ids
err dtype-f64 "input 'x' is f32[3, 4] but 'xf64.npy' holds f64[3, 4] (expected float32)" \
    "$exe" --input x=xf64.npy $ids
err dtype-ids "input 'ids' is i32[2] but 'idsf.npy' holds f32[2] (expected int32 or int64)" \
    "$exe" $x --input ids=idsf.npy
err int64-range "input 'ids': 'ids64big.npy' holds 5000000000, which does not fit in i32" \
    "$exe" $x --input ids=ids64big.npy
err batch-disagree "batched inputs disagree: 'idsb3.npy' has 3 items but another has 2" \
    "$exe" --input x=xb.npy --input ids=idsb3.npy
err empty-batch "input 'x': 'xempty.npy' holds an empty batch" "$exe" --input x=xempty.npy $ids
err unknown-input "the model has no input 'xx'; did you mean 'x'?" "$exe" --input xx=x.npy $ids
err swap-input "the model has no input 'dis'; did you mean 'ids'?" "$exe" --input dis=ids.npy $x
err unknown-input-far "the model has no input 'weights' (its inputs: x, ids)" \
    "$exe" $x $ids --input weights=x.npy
err unknown-output "the model has no output 'yy'; did you mean 'y'?" "$exe" $x $ids --output yy=o.npy
err missing-input "input 'ids' is not given (pass --input ids=FILE.npy)" "$exe" $x
err twice "input 'x' is given more than once" "$exe" $x $x $ids
err twice-output "output 'y' is given more than once" "$exe" $x $ids --output y=a.npy --output y=b.npy
err spec "expected --input NAME=FILE.npy, got 'x'" "$exe" --input x $ids
err no-file "nope.npy: cannot open: No such file or directory" "$exe" --input x=nope.npy $ids
err not-npy "text.npy: malformed .npy file: not an .npy file (bad magic)" "$exe" --input x=text.npy $ids
err option "unknown option '--treads'; did you mean '--threads'?" "$exe" $x $ids --treads 2
err value "option '--bench' needs a value" "$exe" $x $ids --bench
err positional "unexpected argument 'x.npy'" "$exe" x.npy
err threads-0 "--threads wants a whole number from 1 to 256, got '0'" "$exe" $x $ids --threads 0
err bench-x "--bench wants a whole number from 1 to 1000000, got '2x'" "$exe" $x $ids --bench 2x
export QMC_NUM_THREADS=lots
err threads-env "QMC_NUM_THREADS wants a whole number from 1 to 256, got 'lots'" "$exe" $x $ids
unset QMC_NUM_THREADS
export QMC_THREAD_SPIN_US=-1
err spin-env "QMC_THREAD_SPIN_US wants a whole number from 0 to 1000000, got '-1'" "$exe" $x $ids
unset QMC_THREAD_SPIN_US
err built-in "the model 'fake' has its weights built in; --weights is not used" \
    "$exe" $x $ids --weights w.bin
rm -f never.npy
err model-fails "the model failed: invalid argument" "$exe" $x --input ids=ids_fail.npy --output y=never.npy
[ ! -e never.npy ] || bad "model-fails: wrote an output after a failed run"
err batch-fails "the model failed on batch item 0: invalid argument" \
    "$exe" --input x=xb.npy --input ids=ids_fail.npy
err unwritable "no-such-dir/y.npy: cannot create: No such file or directory" \
    "$exe" $x $ids --output y=no-such-dir/y.npy

# ---- the CPU check ---------------------------------------------------------------
if [ -z "$runner" ] && grep -qw amx_int8 /proc/cpuinfo; then
    echo "note: this CPU has AMX; the missing-feature check is not tested"
else
    err cpu "this CPU lacks features the model was compiled for: amx-int8, amx-tile (compiled for cpu 'sapphirerapids', target " \
        "${exe}_amx" $x $ids
    err cpu-first "this CPU lacks features" "${exe}_amx" --no-such-option
fi

# ---- weights files ----------------------------------------------------------------
w=${exe}_weights
"$mknpy" --raw fake_weights.bin f32 12 arange
"$mknpy" --raw other.bin f32 12 1
"$mknpy" --raw short.bin f32 11 arange
ok weights-default "$w" $x $ids --output y=yw.npy
same weights-default yw.npy yw_want.npy
ok weights-given "$w" $x $ids --weights fake_weights.bin --output y=yw2.npy
same weights-given yw2.npy yw_want.npy
err weights-size "weights file 'short.bin' has 44 bytes but the model 'fake' was compiled with one of 48 bytes" \
    "$w" $x $ids --weights short.bin
err weights-checksum "weights file 'other.bin' does not match the model 'fake' (checksum 0x" \
    "$w" $x $ids --weights other.bin
err weights-missing "weights file 'nope.bin': cannot open: No such file or directory" \
    "$w" $x $ids --weights nope.bin
# the default name, beside the executable when not in the working directory
mkdir -p beside elsewhere
cp "$w" beside/
cp fake_weights.bin beside/
cd elsewhere
ok weights-beside-exe "../beside/$(basename "$w")" --input x=../x.npy --input ids=../ids.npy \
    --output y=yw3.npy
same weights-beside-exe yw3.npy ../yw_want.npy
rm ../beside/fake_weights.bin
err weights-none "weights file 'fake_weights.bin': cannot open: No such file or directory (pass --weights FILE)" \
    "../beside/$(basename "$w")" --input x=../x.npy --input ids=../ids.npy
cd ..

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed ($exe${runner:+ under $runner})"
