# The weights of cnn.qm (sourced by the tests): mkdata OUT.safetensors
cnn_weights() {
    "$MKDATA" "$1" stem.weight=32x3x3x3@-0.4,0.4 stem.bias=32@-0.1,0.1 dw3.weight=32x1x3x3@-0.5,0.5 \
        dw3.bias=32 pw.weight=48x32x1x1@-0.25,0.25 pw.bias=48@-0.1,0.1 sc.weight=48x32x1x1@-0.2,0.2 \
        gr.weight=48x16x3x3@-0.12,0.12 gr.bias=48@-0.1,0.1 g4.weight=48x4x2x2@-0.3,0.3 \
        gen.weight=24x2x3x3@-0.3,0.3 bn.scale=24@0.5,1.5 bn.bias=24@-0.2,0.2 bn.mean=24@-0.1,0.1 \
        bn.var=24@0.5,2 slope=24x1x1@0,0.3 ds.weight=16x48x1x1@-0.2,0.2 ds.bias=16@-0.1,0.1 \
        dw5.weight=16x1x5x5@-0.3,0.3 dil.weight=16x48x3x3@-0.06,0.06 fc.weight=10x16@-0.5,0.5 \
        fc.bias=10 c1d.weight=6x48x3@-0.1,0.1 ct.weight=48x4x3x3@-0.1,0.1 ct.bias=8@-0.1,0.1 \
        ct2.weight=48x5x2x2@-0.2,0.2 ct2.bias=5@-0.1,0.1
}
