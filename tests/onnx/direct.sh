#!/bin/sh
# qmc compile|run|eval|inspect of an ONNX model, imported in memory: the
# same results as `qmc import` then the .qm (digits, tiny-gpt, a model whose
# tensors are used in both layouts, external data), a compiled executable,
# --depfile naming the ONNX file and its external data, errors from the
# import and from its text (named "MODEL.onnx (imported)"), nothing written
# on error.
. "$(dirname "$0")/../e2e/lib.sh"
data=$QMC_SOURCE/tests/data/onnx
cd "$work"
# tensors in both layouts, transposed by the model, read once
"$QMC" import "$data/direct/layouts.onnx" -o lay.qm
"$QMC" run "$data/direct/layouts.onnx" --input x="$data/direct/layouts.in.x.npy" --output y=y1.npy
"$QMC" run lay.qm --input x="$data/direct/layouts.in.x.npy" --output y=y2.npy
"$NPYCMP" y1.npy y2.npy
"$NPYCMP" y1.npy "$data/direct/layouts.out.npy" --atol 1e-5
# the IR is the imported text's, but for where the weights come from
"$QMC" inspect "$data/direct/layouts.onnx" | grep -v '^weights' >i1.txt
"$QMC" inspect lay.qm | grep -v '^weights' >i2.txt
diff -u i2.txt i1.txt
"$QMC" inspect "$data/direct/layouts.onnx" | grep -q "^weights \"$data/direct/layouts.onnx\"" ||
    fail "inspect does not name the ONNX file as the weights"
# external data, and --depfile
"$QMC" run "$data/ext/ext-mlp.onnx" --input x="$data/ext/ext-mlp.in.x.npy" --output y=e.npy
"$NPYCMP" e.npy "$data/ext/ext-mlp.out.npy" --atol 1e-5
"$QMC" compile "$data/ext/ext-mlp.onnx" -o ext --depfile ext.d
./ext --input x="$data/ext/ext-mlp.in.x.npy" --output y=ec.npy
"$NPYCMP" ec.npy "$data/ext/ext-mlp.out.npy" --atol 1e-5
[ "$(cat ext.d)" = "ext: $data/ext/ext-mlp.onnx $data/ext/ext-mlp.data" ] || fail "depfile: $(cat ext.d)"
# digits: accuracy and a compiled int8 executable, as the example's
a=$("$QMC" eval "$digits/digits-mlp.onnx" --drop-batch --metric accuracy --input x="$digits/test_x.npy" --labels "$digits/test_y.npy")
b=$("$QMC" eval "$digits/digits.qm" --metric accuracy --input x="$digits/test_x.npy" --labels "$digits/test_y.npy")
[ "$a" = "$b" ] || fail "digits accuracy: onnx '$a', digits.qm '$b'"
"$QMC" compile "$digits/digits-mlp.onnx" --drop-batch --precision int8 -o dg
"$QMC" compile "$digits/digits.qm" --precision int8 -o dq
./dg --input x="$digits/test_x.npy" --output logits=dg.npy
./dq --input x="$digits/test_x.npy" --output logits=dq.npy
"$NPYCMP" dg.npy dq.npy
# tiny-gpt: perplexity with --drop-batch, and --shape for the [1, 128] input
a=$("$QMC" eval "$lm/lm-dev.onnx" --drop-batch --metric perplexity --tokens "$lm/val_tokens.npy")
b=$(gpt eval "$examples/tiny-gpt/tiny-gpt.qm" --metric perplexity --tokens "$lm/val_tokens.npy")
[ "$a" = "$b" ] || fail "lm-dev.onnx: '$a', tiny-gpt.qm: '$b'"
# errors: the import's (nothing written), options that do not apply
status=0
expect() { # GOLDEN ARGS...: qmc fails with exactly these lines on stderr
    golden=$1
    shift
    if "$QMC" "$@" 2>err.txt; then
        echo "FAIL: qmc $* succeeded" >&2
        status=1
    fi
    printf '%s\n' "$golden" | diff -u - err.txt >&2 || status=1
}
cp "$data/bad/unsupported.onnx" "$data/bad/dynamic.onnx" .
expect "$(cat "$QMC_SOURCE/tests/onnx/errors/unsupported.err")" \
    compile unsupported.onnx -o bad
[ ! -e bad ] || fail "compile of an unsupported model wrote its output"
expect "qmc: error: --weights cannot replace the weights of an ONNX model (its initializers); \`qmc import\` it and compile the .qm with --weights" \
    run "$digits/digits-mlp.onnx" --weights "$digits/digits-mlp.safetensors" --input x="$digits/test_x.npy"
expect "qmc: error: --shape and --drop-batch apply to ONNX models (MODEL.onnx)" \
    inspect "$digits/digits.qm" --drop-batch
expect "qmc: error: --ast and --tokens read a model file in qmc's language; \`qmc import x.onnx\` writes one" \
    inspect x.onnx --ast
expect "dynamic.onnx: error: input 'x' has a dynamic dimension 'batch' (dimension 0): give its size with --shape x=Nx4" \
    run dynamic.onnx --input x="$data/direct/layouts.in.x.npy"
"$QMC" run "$data/bad/dynamic.onnx" --shape x=4x4 --input x="$data/direct/layouts.in.x.npy" --output y=dyn.npy
# an error in the imported text names it, then the ONNX file
cp "$data/direct/deep-concat.onnx" deep.onnx
"$QMC" inspect deep.onnx 2>err.txt && fail "deep.onnx imported"
head -n 1 err.txt | grep -qx 'deep.onnx (imported):7:4001: error: the expression nests more than 1000 levels deep' ||
    fail "located error: $(head -c 200 err.txt)"
tail -n 1 err.txt | grep -qx 'deep.onnx: note: in the text `qmc import deep.onnx` writes' ||
    fail "note: $(tail -n 1 err.txt)"
[ $status = 0 ] || exit 1
