/* shape_cnn.c: shape rules of the convolutional ops (conv, conv_transpose,
 * batchnorm, pooling, resize, pad, the hard activations, prelu).
 *
 * Needs: a node whose inputs have shapes, and its attributes as the builder
 * normalised them (explicit pads, the kernel of a conv from its weight).
 * Guarantees: the node's dtype, rank and shape, or an error at the node
 * naming the op with a note at each operand's origin. The activations of
 * these ops are [N, C, (H,) W] (ONNX's layout), or [N, (H,) W, C] when the
 * layout pass made them channels-last (attr.win.nhwc); a 1-D op is a 2-D
 * one of height 1 (ir_image). */
#include <math.h>
#include <string.h>

#include "ir.h"

bool ir_is_cnn_op(ir_op op) { return op >= IR_OP_CONV && op <= IR_OP_PRELU; }

bool ir_is_windowed(ir_op op)
{
    return op == IR_OP_CONV || op == IR_OP_CONV_TRANSPOSE || op == IR_OP_MAXPOOL ||
           op == IR_OP_AVGPOOL || op == IR_OP_GLOBAL_AVGPOOL;
}

ir_image ir_image_of(const int64_t *shape, int spatial, bool nhwc)
{
    int rank = spatial + 2;
    ir_image im = {.n = shape[0], .h = 1};
    if (nhwc) {
        im.c = shape[rank - 1];
        im.w = shape[rank - 2];
        if (spatial == 2) im.h = shape[1];
        im.sc = 1, im.sw = im.c, im.sh = im.w * im.c;
    } else {
        im.c = shape[1];
        im.w = shape[rank - 1];
        if (spatial == 2) im.h = shape[2];
        im.sw = 1, im.sh = im.w, im.sc = im.h * im.w;
    }
    im.sn = im.c * im.h * im.w;
    return im;
}

/* The shape of an image of n, c, h, w in a layout (h dropped in 1-D). */
static int image_shape(int spatial, bool nhwc, int64_t n, int64_t c, int64_t h, int64_t w,
                       int64_t *shape)
{
    int r = 0;
    shape[r++] = n;
    if (!nhwc) shape[r++] = c;
    if (spatial == 2) shape[r++] = h;
    shape[r++] = w;
    if (nhwc) shape[r++] = c;
    return r;
}

int64_t ir_window_out(int64_t in, int64_t k, int64_t stride, int64_t dil, int64_t pb, int64_t pe,
                      bool ceil_mode)
{
    int64_t span = in + pb + pe - (dil * (k - 1) + 1);
    if (span < 0) return 0;
    int64_t out = span / stride + 1;
    /* ceil mode: one more window if some input is left over, unless it
     * would start in the end padding (PyTorch's and ONNX's rule) */
    if (ceil_mode && span % stride && (out * stride < in + pb)) out++;
    return out;
}

void ir_resize_source(const ir_cnn_attrs *a, int d, int64_t in, int64_t o, int64_t *i0, int64_t *i1,
                      float *frac)
{
    /* the resized length is in · scale, unrounded, as ONNX's reference has it */
    float s = a->scales[d], len = (float)in * s, xo;
    switch (a->coord) {
    case IR_COORD_PYTORCH_HALF_PIXEL: xo = len > 1 ? ((float)o + 0.5f) / s - 0.5f : 0.0f; break;
    case IR_COORD_ALIGN_CORNERS:
        xo = len > 1 ? (float)o * (float)(in - 1) / (len - 1) : 0.0f;
        break;
    case IR_COORD_ASYMMETRIC: xo = (float)o / s; break;
    default: xo = ((float)o + 0.5f) / s - 0.5f; break;
    }
    float fl = floorf(xo), f = xo - fl;
    int64_t lo = (int64_t)fl, hi = lo + 1;
    if (a->mode == IR_RESIZE_NEAREST) {
        bool up;
        switch (a->nearest) {
        case IR_NEAREST_ROUND_PREFER_CEIL: up = f >= 0.5f; break;
        case IR_NEAREST_FLOOR: up = false; break;
        case IR_NEAREST_CEIL: up = f > 0; break;
        default: up = f > 0.5f; break;
        }
        lo = hi = up ? hi : lo;
        f = 0;
    }
    *i0 = lo < 0 ? 0 : lo >= in ? in - 1 : lo;
    *i1 = hi < 0 ? 0 : hi >= in ? in - 1 : hi;
    *frac = f;
}

int64_t ir_pad_source(ir_pad_mode mode, int64_t o, int64_t begin, int64_t n)
{
    int64_t i = o - begin;
    if (i >= 0 && i < n) return i;
    switch (mode) {
    case IR_PAD_REFLECT: return i < 0 ? -i : 2 * (n - 1) - i;
    case IR_PAD_EDGE: return i < 0 ? 0 : n - 1;
    case IR_PAD_CONSTANT: break;
    }
    return -1;
}

static void set_shape(ir_node *n, int rank, const int64_t *shape)
{
    n->dtype = QMC_DTYPE_F32;
    n->rank = rank;
    memmove(n->shape, shape, sizeof shape[0] * (size_t)rank);
}

static bool floats(const ir_graph *g, const ir_node *n)
{
    for (int i = 0; i < n->n_inputs; i++)
        if (g->nodes[n->inputs[i]].dtype != QMC_DTYPE_F32)
            return ir_shape_fail(g, n, 1, &n->inputs[i],
                                 "%s needs float tensors, but an operand is %s", ir_op_name(n->op),
                                 qmc_dtype_name(g->nodes[n->inputs[i]].dtype));
    return true;
}

/* x has the rank of the op's spatial axes plus batch and channels. */
static bool image_operand(const ir_graph *g, const ir_node *n, ir_image *im)
{
    const ir_node *x = &g->nodes[n->inputs[0]];
    int spatial = n->attr.win.spatial;
    if (spatial < 1 || spatial > 2 || x->rank != spatial + 2)
        return ir_shape_fail(g, n, 1, n->inputs, "%s needs a %s input, not %d-D", ir_op_name(n->op),
                             spatial == 1 ? "3-D [N, C, L]" : "4-D [N, C, H, W]", x->rank);
    *im = ir_image_of(x->shape, spatial, n->attr.win.nhwc);
    return true;
}

/* The output height and width of a window op; an error if a window does
 * not fit in the padded input. */
static bool window_out(const ir_graph *g, const ir_node *n, const ir_image *im, bool ceil_mode,
                       int64_t *oh, int64_t *ow)
{
    const ir_window *w = &n->attr.win;
    *oh = ir_window_out(im->h, w->kernel[0], w->stride[0], w->dilation[0], w->pad[0], w->pad[2],
                        ceil_mode);
    *ow = ir_window_out(im->w, w->kernel[1], w->stride[1], w->dilation[1], w->pad[1], w->pad[3],
                        ceil_mode);
    if (*oh >= 1 && *ow >= 1) return true;
    bool h = *oh < 1;
    return ir_shape_fail(
        g, n, 1, n->inputs,
        "%s: the window (%lld with dilation %lld) is larger than the padded %s (%lld)",
        ir_op_name(n->op), (long long)w->kernel[h ? 0 : 1], (long long)w->dilation[h ? 0 : 1],
        h ? "height" : "width",
        (long long)((h ? im->h : im->w) + w->pad[h ? 0 : 1] + w->pad[h ? 2 : 3]));
}

static bool bias_operand(const ir_graph *g, const ir_node *n, int64_t m)
{
    if (n->n_inputs < 3) return true;
    const ir_node *b = &g->nodes[n->inputs[2]];
    if (b->rank == 1 && b->shape[0] == m) return true;
    int32_t ops[2] = {n->inputs[1], n->inputs[2]};
    return ir_shape_fail(g, n, 2, ops,
                         "%s: the bias must have shape [%lld], one per output channel",
                         ir_op_name(n->op), (long long)m);
}

/* ---- the rules ------------------------------------------------------------ */

static bool infer_conv(ir_graph *g, ir_node *n)
{
    const ir_window *w = &n->attr.win;
    const ir_node *wt = &g->nodes[n->inputs[1]];
    ir_image im;
    if (!floats(g, n) || !image_operand(g, n, &im)) return false;
    if (wt->rank != 2)
        return ir_shape_fail(g, n, 1, &n->inputs[1],
                             "conv needs its weight as a matrix [out, in/groups·kernel], not %d-D",
                             wt->rank);
    int64_t m = wt->shape[0], gr = w->groups;
    if (gr < 1 || im.c % gr)
        return ir_shape_fail(g, n, 1, n->inputs,
                             "conv: %lld groups do not divide the %lld input channels",
                             (long long)gr, (long long)im.c);
    if (m % gr)
        return ir_shape_fail(g, n, 1, &n->inputs[1],
                             "conv: %lld groups do not divide the %lld output channels",
                             (long long)gr, (long long)m);
    int64_t k = im.c / gr * w->kernel[0] * w->kernel[1];
    if (wt->shape[1] != k)
        return ir_shape_fail(
            g, n, 2, n->inputs,
            "conv: the weight has %lld values per output channel but %lld channels per "
            "group and a %lldx%lld kernel need %lld",
            (long long)wt->shape[1], (long long)(im.c / gr), (long long)w->kernel[0],
            (long long)w->kernel[1], (long long)k);
    if (!bias_operand(g, n, m)) return false;
    int64_t oh, ow, shape[4];
    if (!window_out(g, n, &im, false, &oh, &ow)) return false;
    set_shape(n, image_shape(w->spatial, w->nhwc, im.n, m, oh, ow, shape), shape);
    return true;
}

static bool infer_conv_transpose(ir_graph *g, ir_node *n)
{
    const ir_window *w = &n->attr.win;
    const ir_node *wt = &g->nodes[n->inputs[1]];
    ir_image im;
    if (!floats(g, n) || !image_operand(g, n, &im)) return false;
    if (wt->rank != w->spatial + 2)
        return ir_shape_fail(g, n, 2, n->inputs,
                             "conv_transpose needs a %d-D weight [in, out/groups, %s]",
                             w->spatial + 2, w->spatial == 2 ? "kh, kw" : "k");
    int64_t gr = w->groups;
    if (gr < 1 || im.c % gr)
        return ir_shape_fail(g, n, 1, n->inputs,
                             "conv_transpose: %lld groups do not divide the %lld input channels",
                             (long long)gr, (long long)im.c);
    if (wt->shape[0] != im.c)
        return ir_shape_fail(
            g, n, 2, n->inputs,
            "conv_transpose: the weight has %lld input channels but the input has %lld",
            (long long)wt->shape[0], (long long)im.c);
    int64_t m = wt->shape[1] * gr, out[2];
    if (!bias_operand(g, n, m)) return false;
    int64_t in[2] = {im.h, im.w};
    for (int d = 0; d < 2; d++) {
        out[d] = w->stride[d] * (in[d] - 1) + w->out_pad[d] + w->dilation[d] * (w->kernel[d] - 1) +
                 1 - w->pad[d] - w->pad[d + 2];
        if (out[d] < 1)
            return ir_shape_fail(g, n, 1, n->inputs,
                                 "conv_transpose: the padding leaves no output");
    }
    int64_t shape[4];
    set_shape(n, image_shape(w->spatial, w->nhwc, im.n, m, out[0], out[1], shape), shape);
    return true;
}

static bool infer_pool(ir_graph *g, ir_node *n)
{
    ir_image im;
    if (!floats(g, n) || !image_operand(g, n, &im)) return false;
    int64_t oh = 1, ow = 1, shape[4];
    if (n->op != IR_OP_GLOBAL_AVGPOOL && !window_out(g, n, &im, n->attr.win.ceil_mode, &oh, &ow))
        return false;
    set_shape(n, image_shape(n->attr.win.spatial, n->attr.win.nhwc, im.n, im.c, oh, ow, shape),
              shape);
    return true;
}

static bool infer_batchnorm(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]];
    if (!floats(g, n)) return false;
    if (x->rank < 2)
        return ir_shape_fail(g, n, 1, n->inputs, "batchnorm needs an input [N, C, ...], not %d-D",
                             x->rank);
    int64_t c = x->shape[n->attr.win.nhwc ? x->rank - 1 : 1];
    static const char *const what[5] = {"", "scale", "bias", "mean", "variance"};
    for (int i = 1; i < 5; i++) {
        const ir_node *p = &g->nodes[n->inputs[i]];
        if (p->rank == 1 && p->shape[0] == c) continue;
        int32_t ops[2] = {n->inputs[0], n->inputs[i]};
        return ir_shape_fail(g, n, 2, ops,
                             "batchnorm: the %s must have shape [%lld], one per channel", what[i],
                             (long long)c);
    }
    set_shape(n, x->rank, x->shape);
    return true;
}

static bool infer_resize(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]];
    if (!floats(g, n)) return false;
    if (n->rank != x->rank)
        return ir_shape_fail(g, n, 1, n->inputs, "resize: %d scales or sizes for a %d-D input",
                             n->rank, x->rank);
    for (int d = 0; d < n->rank; d++)
        if (n->shape[d] < 1 || !(n->attr.cnn.scales[d] > 0))
            return ir_shape_fail(g, n, 1, n->inputs, "resize: axis %d would have no elements", d);
    n->dtype = QMC_DTYPE_F32; /* the builder set the shape */
    return true;
}

static bool infer_pad(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]];
    const ir_cnn_attrs *a = &n->attr.cnn;
    if (!floats(g, n)) return false;
    int64_t shape[IR_MAX_RANK];
    for (int d = 0; d < x->rank; d++) {
        int64_t b = a->pads[d], e = a->pads[x->rank + d];
        shape[d] = x->shape[d] + b + e;
        if (b < 0 || e < 0)
            return ir_shape_fail(g, n, 1, n->inputs, "pad: the padding of axis %d is negative", d);
        if (a->pad_mode == IR_PAD_REFLECT && (b >= x->shape[d] || e >= x->shape[d]))
            return ir_shape_fail(
                g, n, 1, n->inputs,
                "pad: axis %d has %lld elements, so reflecting pads it by at most %lld on "
                "each side",
                d, (long long)x->shape[d], (long long)(x->shape[d] - 1));
    }
    set_shape(n, x->rank, shape);
    return true;
}

static bool infer_prelu(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]], *s = &g->nodes[n->inputs[1]];
    if (!floats(g, n)) return false;
    bool ok = s->rank <= x->rank;
    for (int d = 0; ok && d < s->rank; d++) {
        int64_t sd = s->shape[d], xd = x->shape[x->rank - s->rank + d];
        ok = sd == xd || sd == 1;
    }
    if (!ok)
        return ir_shape_fail(g, n, 2, n->inputs,
                             "prelu: the slope does not broadcast to the input");
    set_shape(n, x->rank, x->shape);
    return true;
}

bool ir_infer_cnn_shape(ir_graph *g, ir_node *n)
{
    switch (n->op) {
    case IR_OP_CONV: return infer_conv(g, n);
    case IR_OP_CONV_TRANSPOSE: return infer_conv_transpose(g, n);
    case IR_OP_BATCHNORM: return infer_batchnorm(g, n);
    case IR_OP_MAXPOOL:
    case IR_OP_AVGPOOL:
    case IR_OP_GLOBAL_AVGPOOL: return infer_pool(g, n);
    case IR_OP_RESIZE: return infer_resize(g, n);
    case IR_OP_PAD: return infer_pad(g, n);
    case IR_OP_PRELU: return infer_prelu(g, n);
    case IR_OP_HARDSIGMOID:
    case IR_OP_HARDSWISH: {
        const ir_node *x = &g->nodes[n->inputs[0]];
        if (!floats(g, n)) return false;
        set_shape(n, x->rank, x->shape);
        return true;
    }
    default: break;
    }
    QMC_ASSERT(!"not a convolutional op");
    return false;
}
