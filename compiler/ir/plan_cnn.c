/* plan_cnn.c: what a convolution's kernel reads, decided from the graph
 * alone so that the memory plan (passes/lower.c) and the kernels
 * (codegen/emit_conv.c) agree.
 *
 * A channels-last conv runs one of three kernels: depthwise (groups = C =
 * M: a vector of channels per pixel), dense (a tile of pixels times
 * vectors of output channels of one group: implicit GEMM over the window's
 * taps and the group's channels), or generic (the rest: each pixel's
 * output channels accumulated from every tap and input channel). The
 * dense and generic kernels never test the borders: when the conv pads,
 * its input is first copied into scratch with the padding made explicit
 * (zeros; the depthwise kernel keeps its windows inside the input
 * instead); with `:a8`
 * the copy holds the input quantized (int8 codes four channels to a word
 * for integer dot products, else the dequantized values): a pointwise conv
 * (1x1, one group, no padding: a linear layer over pixels) quantizes each
 * pixel it reads with its own scale, as a linear layer each row, and its
 * copy holds only those pixels; other convs quantize each image with one
 * scale. A depthwise conv keeps f32 activations (ir_conv_act8): each
 * output sums a window of one channel, where integer dot products have
 * nothing to gain (its int8 weights are used as their float values). */
#include "ir.h"

ir_conv_kernel ir_conv_kernel_of(const ir_graph *g, const ir_node *n)
{
    const ir_window *w = &n->attr.win;
    ir_image xi = ir_image_of(g->nodes[n->inputs[0]].shape, w->spatial, w->nhwc);
    int64_t m = g->nodes[n->inputs[1]].shape[0];
    if (w->groups == xi.c && m == xi.c && w->groups > 1) return IR_CONV_DEPTHWISE;
    if (m / w->groups >= 4) return IR_CONV_DENSE;
    return IR_CONV_GENERIC;
}

bool ir_conv_act8(const ir_graph *g, const ir_node *n)
{
    const ir_node *wt = &g->nodes[n->inputs[1]];
    return wt->op == IR_OP_WEIGHT && wt->qformat.act8 && wt->qformat.format != QFMT_F32 &&
           ir_conv_kernel_of(g, n) != IR_CONV_DEPTHWISE;
}

bool ir_conv_pointwise(const ir_node *n)
{
    const ir_window *w = &n->attr.win;
    return w->kernel[0] == 1 && w->kernel[1] == 1 && w->groups == 1 && !w->pad[0] && !w->pad[1] &&
           !w->pad[2] && !w->pad[3];
}

ir_conv_input ir_conv_input_layout(const ir_graph *g, const ir_node *n, bool int8_dot)
{
    const ir_window *w = &n->attr.win;
    const ir_node *wt = &g->nodes[n->inputs[1]];
    ir_image xi = ir_image_of(g->nodes[n->inputs[0]].shape, w->spatial, w->nhwc);
    ir_conv_input in = {.kernel = ir_conv_kernel_of(g, n)};
    bool pads = w->pad[0] || w->pad[1] || w->pad[2] || w->pad[3];
    in.act8 = ir_conv_act8(g, n);
    /* integer dot products for per-channel int8 weights (other formats
     * meet the int8 activations' values in float) */
    in.int8 = in.act8 && int8_dot && in.kernel == IR_CONV_DENSE &&
              wt->qformat.format == QFMT_INT8 && !wt->qformat.group;
    /* a depthwise conv reads x itself (its kernel keeps to the input) */
    in.copy = in.kernel != IR_CONV_DEPTHWISE && (in.act8 || pads);
    in.per_pixel = in.act8 && ir_conv_pointwise(n);
    int64_t cg = xi.c / w->groups;
    in.cgp = in.int8 ? (cg + 3) / 4 * 4 : cg;
    in.cs = in.cgp * w->groups;
    in.hp = xi.h + w->pad[0] + w->pad[2];
    in.wp = xi.w + w->pad[1] + w->pad[3];
    in.sh = w->stride[0], in.sw = w->stride[1];
    if (in.per_pixel) {
        /* the pixels the output reads, one after the other */
        in.hp = ir_window_out(xi.h, 1, w->stride[0], 1, 0, 0, false);
        in.wp = ir_window_out(xi.w, 1, w->stride[1], 1, 0, 0, false);
        in.sh = in.sw = 1;
    }
    if (!in.copy) in.cs = xi.c, in.hp = xi.h, in.wp = xi.w;
    int64_t at = 0;
    if (in.copy) at = ir_align64(xi.n * in.hp * in.wp * in.cs * (in.int8 ? 1 : 4));
    in.scales = at;
    if (in.act8) at += ir_align64(4 * xi.n * (in.per_pixel ? in.hp * in.wp : 1));
    /* partial maxima of the input, a chunk of rows each (IR_CONV_MAX_CHUNK) */
    in.partial = at;
    if (in.act8 && !in.per_pixel)
        at += ir_align64(4 * xi.n * ((xi.h + IR_CONV_MAX_ROWS - 1) / IR_CONV_MAX_ROWS));
    in.bytes = at;
    return in;
}
