/* build_cnn.c: the built-in operations of convolutional networks: conv,
 * conv_transpose, batchnorm, maxpool, avgpool, global_avgpool, resize,
 * pad, hardsigmoid, hardswish, prelu (ONNX's operators, with ONNX's
 * defaults: a pooling's stride is 1 unless given).
 *
 * Each checks its arguments where they are written and normalises them
 * into the node's attributes: window sizes, strides and dilations become
 * [height, width] (a 1-D op has height 1), padding becomes explicit (top,
 * left, bottom, right), "same_upper"/"same_lower" resolved against the
 * input's shape. A conv's weight, a tensor [M, C/groups, (kh,) kw] of the
 * weights file, becomes the matrix [M, C/groups·kh·kw] it is to the rest
 * of the compiler (quantized per output channel like a linear layer's). */
#include <math.h>
#include <string.h>

#include "passes.h"

static bool given(const pass_value *v) { return v->kind != PASS_VAL_NONE; }

static bool bool_arg(const pass_value *v, const char *what, bool *out)
{
    if (!given(v)) return true;
    if (v->kind != PASS_VAL_BOOL) return pass_build_fail(v->loc, "%s must be true or false", what);
    *out = v->i != 0;
    return true;
}

/* An integer or a list of n integers (n = 1 or 2 spatial axes): into
 * out[2] as [height, width], the height `fill` for a 1-D op. */
static bool pair_arg(const pass_value *v, const char *what, int spatial, int64_t dflt, int64_t min,
                     int64_t *out)
{
    out[0] = out[1] = dflt;
    if (!given(v)) return true;
    int64_t vals[2] = {0, 0};
    if (v->kind == PASS_VAL_LIST) {
        if (v->n_items != spatial)
            return pass_build_fail(v->loc, "%s needs %d value%s (one per spatial axis), not %d",
                                   what, spatial, spatial == 1 ? "" : "s", v->n_items);
        for (int i = 0; i < spatial; i++)
            if (!pass_build_want_int(&v->items[i], what, &vals[i])) return false;
    } else {
        if (!pass_build_want_int(v, what, &vals[0])) return false;
        vals[1] = vals[0];
    }
    for (int i = 0; i < spatial; i++)
        if (vals[i] < min || vals[i] > (1 << 20))
            return pass_build_fail(v->loc, "%s must be between %lld and %d", what, (long long)min,
                                   1 << 20);
    if (spatial == 1)
        out[1] = vals[0];
    else
        out[0] = vals[0], out[1] = vals[1];
    return true;
}

typedef enum auto_pad { PAD_EXPLICIT, PAD_SAME_UPPER, PAD_SAME_LOWER } auto_pad;

/* padding=: an integer (every side), [h, w] (both sides of each axis),
 * [top, left, bottom, right] (ONNX's order; [begin, end] in 1-D), or
 * "same_upper", "same_lower", "valid". */
static bool padding_arg(const pass_value *v, int spatial, int64_t *pad, auto_pad *mode)
{
    *mode = PAD_EXPLICIT;
    memset(pad, 0, sizeof(int64_t) * 4);
    if (!given(v)) return true;
    if (v->kind == PASS_VAL_STRING) {
        if (strcmp(v->str, "same_upper") == 0)
            *mode = PAD_SAME_UPPER;
        else if (strcmp(v->str, "same_lower") == 0)
            *mode = PAD_SAME_LOWER;
        else if (strcmp(v->str, "valid") != 0)
            return pass_build_fail(v->loc, "padding must be \"same_upper\", \"same_lower\", "
                                           "\"valid\", an integer or a list of integers");
        return true;
    }
    int64_t vals[4] = {0};
    int n = 1;
    if (v->kind == PASS_VAL_LIST) {
        n = v->n_items;
        if (n != spatial && n != 2 * spatial)
            return pass_build_fail(v->loc,
                                   "padding needs %d values (one per spatial axis) or %d "
                                   "(the beginnings, then the ends), not %d",
                                   spatial, 2 * spatial, n);
        for (int i = 0; i < n; i++)
            if (!pass_build_want_int(&v->items[i], "padding", &vals[i])) return false;
    } else if (!pass_build_want_int(v, "padding", &vals[0])) {
        return false;
    }
    for (int i = 0; i < n; i++)
        if (vals[i] < 0 || vals[i] > (1 << 20))
            return pass_build_fail(v->loc, "padding must be between 0 and %d", 1 << 20);
    /* into top, left, bottom, right; 1-D pads the width */
    for (int side = 0; side < 2; side++)
        for (int ax = 0; ax < spatial; ax++) {
            int64_t p = n == 1 ? vals[0] : n == spatial ? vals[ax] : vals[side * spatial + ax];
            pad[side * 2 + (spatial == 1 ? 1 : ax)] = p;
        }
    return true;
}

/* SAME padding of a convolution: the output has ceil(in / stride) per
 * axis; the odd pixel goes at the end (upper) or the beginning (lower). */
static void same_pads(ir_window *w, const ir_image *im, auto_pad mode)
{
    int64_t in[2] = {im->h, im->w};
    for (int d = 0; d < 2; d++) {
        int64_t out = (in[d] + w->stride[d] - 1) / w->stride[d];
        int64_t total = (out - 1) * w->stride[d] + (w->kernel[d] - 1) * w->dilation[d] + 1 - in[d];
        if (total < 0) total = 0;
        int64_t small = total / 2;
        w->pad[d] = mode == PAD_SAME_UPPER ? small : total - small;
        w->pad[d + 2] = total - w->pad[d];
    }
}

static bool x_image(pass_builder *b, const pass_value *v, const char *op, int spatial, int32_t x,
                    ir_image *im)
{
    const ir_node *n = &b->g->nodes[x];
    if (n->rank != spatial + 2) {
        char shape[RT_SHAPE_STR_MAX];
        return pass_build_fail(v->loc, "%s with a %d-D kernel needs an input %s, not %s", op,
                               spatial, spatial == 1 ? "[N, C, L]" : "[N, C, H, W]",
                               rt_shape_str(n->dtype, n->rank, n->shape, shape, sizeof shape));
    }
    *im = ir_image_of(n->shape, spatial, false);
    return true;
}

/* groups= divides the input's channels; reported at the argument. */
static bool groups_arg(pass_builder *b, const pass_value *v, const ir_image *im, int32_t x,
                       int64_t *groups)
{
    *groups = 1;
    if (given(v) && !pass_build_want_int(v, "groups", groups)) return false;
    if (*groups < 1) return pass_build_fail(v->loc, "groups must be positive");
    if (im->c % *groups == 0) return true;
    const ir_node *n = &b->g->nodes[x];
    char shape[RT_SHAPE_STR_MAX];
    pass_build_fail(v->loc, "groups=%lld does not divide the %lld channels of the input",
                    (long long)*groups, (long long)im->c);
    sup_note(n->loc, "the input has shape %s",
             rt_shape_str(n->dtype, n->rank, n->shape, shape, sizeof shape));
    return false;
}

/* ---- conv ------------------------------------------------------------------ */

/* Whether any node reads node w. */
static bool is_read(const ir_graph *g, int32_t w)
{
    for (int32_t i = w + 1; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_inputs; j++)
            if (g->nodes[i].inputs[j] == w) return true;
    return false;
}

/* A conv's weight: a tensor [M, C/groups, (kh,) kw] of the weights file,
 * seen from now on as the matrix [M, C/groups·kh·kw] (the first conv
 * using it makes the view; a tensor already read as such cannot). */
static bool conv_weight(pass_builder *b, const pass_value *v, int32_t *w, int *spatial,
                        int64_t *kernel)
{
    if (!pass_build_want_tensor(b, v, "the weight", w)) return false;
    ir_node *n = &b->g->nodes[*w];
    if (n->op != IR_OP_WEIGHT)
        return pass_build_fail(v->loc, "conv's weight must be a tensor of the weights file, "
                                       "which is packed for the kernels at compile time");
    const fe_tensor *t = n->tensor;
    char shape[RT_SHAPE_STR_MAX];
    if (t->rank != 3 && t->rank != 4)
        return pass_build_fail(v->loc,
                               "conv needs a weight [out, in/groups, kh, kw] (or [out, in/groups, "
                               "k] in 1-D), but '%s' has shape %s",
                               t->name,
                               rt_shape_str(t->dtype, t->rank, t->shape, shape, sizeof shape));
    *spatial = t->rank - 2;
    kernel[0] = *spatial == 2 ? t->shape[2] : 1;
    kernel[1] = t->shape[t->rank - 1];
    if (n->rank == 2) return true; /* an earlier conv made the view */
    if (is_read(b->g, *w))
        return pass_build_fail(v->loc,
                               "weight '%s' is read as a tensor elsewhere, so it cannot also be "
                               "a conv's weight (the matrix [out, in/groups·kernel])",
                               t->name);
    n->rank = 2;
    n->shape[1] = t->count / t->shape[0];
    return true;
}

static bool build_conv(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t in[3];
    ir_attrs attr = {0};
    ir_window *w = &attr.win;
    int n = given(&a->v[2]) ? 3 : 2;
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &in[0]) ||
        !conv_weight(b, &a->v[1], &in[1], &w->spatial, w->kernel) ||
        (n == 3 && !pass_build_want_tensor(b, &a->v[2], "the bias", &in[2])))
        return false;
    ir_image im;
    auto_pad mode;
    if (!x_image(b, &a->v[0], "conv", w->spatial, in[0], &im) ||
        !pair_arg(&a->v[3], "stride", w->spatial, 1, 1, w->stride) ||
        !padding_arg(&a->v[4], w->spatial, w->pad, &mode) ||
        !pair_arg(&a->v[5], "dilation", w->spatial, 1, 1, w->dilation) ||
        !groups_arg(b, &a->v[6], &im, in[0], &w->groups))
        return false;
    if (mode != PAD_EXPLICIT) same_pads(w, &im, mode);
    return pass_build_result(b, IR_OP_CONV, in, n, a, &attr, out);
}

static bool build_conv_transpose(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t in[3];
    ir_attrs attr = {0};
    ir_window *w = &attr.win;
    int n = given(&a->v[2]) ? 3 : 2;
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &in[0]) ||
        !pass_build_want_tensor(b, &a->v[1], "the weight", &in[1]) ||
        (n == 3 && !pass_build_want_tensor(b, &a->v[2], "the bias", &in[2])))
        return false;
    const ir_node *wt = &b->g->nodes[in[1]];
    if (wt->rank != 3 && wt->rank != 4)
        return pass_build_fail(a->v[1].loc,
                               "conv_transpose needs a weight [in, out/groups, kh, kw] (or [in, "
                               "out/groups, k] in 1-D), not %d-D",
                               wt->rank);
    w->spatial = wt->rank - 2;
    w->kernel[0] = w->spatial == 2 ? wt->shape[2] : 1;
    w->kernel[1] = wt->shape[wt->rank - 1];
    ir_image im;
    auto_pad mode;
    if (!x_image(b, &a->v[0], "conv_transpose", w->spatial, in[0], &im) ||
        !pair_arg(&a->v[3], "stride", w->spatial, 1, 1, w->stride) ||
        !padding_arg(&a->v[4], w->spatial, w->pad, &mode) ||
        !pair_arg(&a->v[5], "dilation", w->spatial, 1, 1, w->dilation) ||
        !groups_arg(b, &a->v[6], &im, in[0], &w->groups) ||
        !pair_arg(&a->v[7], "output_padding", w->spatial, 0, 0, w->out_pad))
        return false;
    for (int d = 0; d < 2; d++)
        if (w->out_pad[d] >= w->stride[d] && w->out_pad[d] >= w->dilation[d])
            return pass_build_fail(a->v[7].loc,
                                   "output_padding must be smaller than the stride or the "
                                   "dilation");
    if (mode != PAD_EXPLICIT) {
        /* ONNX: the output is in * stride; SAME_UPPER puts the odd pixel
         * of padding at the beginning here (the reverse of conv's) */
        int64_t dims[2] = {im.h, im.w};
        for (int d = 0; d < 2; d++) {
            int64_t total = w->stride[d] * (dims[d] - 1) + w->out_pad[d] +
                            (w->kernel[d] - 1) * w->dilation[d] + 1 - dims[d] * w->stride[d];
            if (total < 0) total = 0;
            w->pad[d] = mode == PAD_SAME_UPPER ? total / 2 : total - total / 2;
            w->pad[d + 2] = total - w->pad[d];
        }
    }
    return pass_build_result(b, IR_OP_CONV_TRANSPOSE, in, n, a, &attr, out);
}

static bool build_batchnorm(pass_builder *b, pass_call_args *a, pass_value *out)
{
    static const char *const what[5] = {"the input", "the scale", "the bias", "the mean",
                                        "the variance"};
    int32_t in[5];
    ir_attrs attr = {0};
    for (int i = 0; i < 5; i++)
        if (!pass_build_want_tensor(b, &a->v[i], what[i], &in[i])) return false;
    double eps = 1e-5;
    if (given(&a->v[5]) && !pass_build_want_number(&a->v[5], "eps", &eps)) return false;
    if (!(eps >= 0) || !isfinite(eps))
        return pass_build_fail(a->v[5].loc, "eps must be a finite non-negative number");
    attr.eps = (float)eps;
    return pass_build_result(b, IR_OP_BATCHNORM, in, 5, a, &attr, out);
}

/* ---- pooling ---------------------------------------------------------------- */

static bool pool_common(pass_builder *b, pass_call_args *a, int32_t *x, ir_window *w)
{
    if (!pass_build_want_tensor(b, &a->v[0], "the input", x)) return false;
    int rank = b->g->nodes[*x].rank;
    if (rank != 3 && rank != 4)
        return pass_build_fail(a->v[0].loc, "pooling needs an input [N, C, H, W] or [N, C, L]");
    w->spatial = rank - 2;
    ir_image im;
    auto_pad mode;
    if (!x_image(b, &a->v[0], "pooling", w->spatial, *x, &im) ||
        !pair_arg(&a->v[1], "the kernel", w->spatial, 1, 1, w->kernel) ||
        !pair_arg(&a->v[2], "stride", w->spatial, 1, 1, w->stride) ||
        !padding_arg(&a->v[3], w->spatial, w->pad, &mode))
        return false;
    w->dilation[0] = w->dilation[1] = 1;
    if (mode != PAD_EXPLICIT) same_pads(w, &im, mode);
    for (int d = 0; d < 2; d++)
        if (w->pad[d] >= w->kernel[d] || w->pad[d + 2] >= w->kernel[d])
            return pass_build_fail(a->v[3].loc,
                                   "pooling padding must be smaller than the kernel (%lld)",
                                   (long long)w->kernel[d]);
    return true;
}

static bool build_maxpool(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t x;
    ir_attrs attr = {0};
    if (!pool_common(b, a, &x, &attr.win) ||
        !pair_arg(&a->v[4], "dilation", attr.win.spatial, 1, 1, attr.win.dilation) ||
        !bool_arg(&a->v[5], "ceil_mode", &attr.win.ceil_mode))
        return false;
    return pass_build_result(b, IR_OP_MAXPOOL, &x, 1, a, &attr, out);
}

static bool build_avgpool(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t x;
    ir_attrs attr = {0};
    if (!pool_common(b, a, &x, &attr.win) ||
        !bool_arg(&a->v[4], "ceil_mode", &attr.win.ceil_mode) ||
        !bool_arg(&a->v[5], "count_include_pad", &attr.win.count_include_pad))
        return false;
    return pass_build_result(b, IR_OP_AVGPOOL, &x, 1, a, &attr, out);
}

static bool build_global_avgpool(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t x;
    ir_attrs attr = {0};
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x)) return false;
    int rank = b->g->nodes[x].rank;
    if (rank != 3 && rank != 4)
        return pass_build_fail(a->v[0].loc,
                               "global_avgpool needs an input [N, C, H, W] or [N, C, L]");
    attr.win.spatial = rank - 2;
    return pass_build_result(b, IR_OP_GLOBAL_AVGPOOL, &x, 1, a, &attr, out);
}

/* ---- resize ------------------------------------------------------------------- */

static bool name_arg(const pass_value *v, const char *what, const char *const *names, int n,
                     int *out)
{
    if (!given(v)) return true;
    for (int i = 0; v->kind == PASS_VAL_STRING && i < n; i++)
        if (strcmp(v->str, names[i]) == 0) return *out = i, true;
    char list[256] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"",
                 i == 0       ? ""
                 : i == n - 1 ? " or "
                              : ", ",
                 names[i]);
    return pass_build_fail(v->loc, "%s must be %s", what, list);
}

/* resize(x, scales=[...] | size=[...], mode, coordinates, nearest): one
 * scale or length per axis of x. */
static bool build_resize(pass_builder *b, pass_call_args *a, pass_value *out)
{
    static const char *const modes[] = {"nearest", "linear"};
    static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
                                         "asymmetric"};
    static const char *const nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"};
    int32_t x;
    ir_attrs attr = {0};
    ir_cnn_attrs *c = &attr.cnn;
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x)) return false;
    const ir_node *xn = &b->g->nodes[x];
    int mode = 0, coord = 0, near = 0;
    if (!name_arg(&a->v[3], "mode", modes, 2, &mode) ||
        !name_arg(&a->v[4], "coordinates", coords, 4, &coord) ||
        !name_arg(&a->v[5], "nearest", nearest, 4, &near))
        return false;
    c->mode = mode, c->coord = coord, c->nearest = near;
    bool by_scale = given(&a->v[1]);
    if (by_scale == given(&a->v[2]))
        return pass_build_fail(a->call->loc, "resize needs either scales= or size=");
    const pass_value *v = by_scale ? &a->v[1] : &a->v[2];
    if (v->kind != PASS_VAL_LIST || v->n_items != xn->rank)
        return pass_build_fail(v->loc, "%s needs a list of %d values, one per axis of the input",
                               by_scale ? "scales" : "size", xn->rank);
    int64_t shape[IR_MAX_RANK];
    for (int d = 0; d < xn->rank; d++) {
        double s;
        int64_t len;
        if (by_scale) {
            if (!pass_build_want_number(&v->items[d], "a scale", &s)) return false;
            if (!(s > 0) || s > 1 << 16)
                return pass_build_fail(v->items[d].loc, "a scale must be positive");
            len = (int64_t)floor((double)xn->shape[d] * (double)(float)s);
        } else {
            if (!pass_build_want_int(&v->items[d], "a length", &len)) return false;
            if (len < 1 || len > 1 << 24)
                return pass_build_fail(v->items[d].loc, "a length must be positive");
            s = (double)len / (double)xn->shape[d];
        }
        if (len < 1) return pass_build_fail(v->items[d].loc, "axis %d would have no elements", d);
        c->scales[d] = (float)s;
        shape[d] = len;
    }
    return pass_build_shaped_result(b, IR_OP_RESIZE, x, a, &attr, xn->rank, shape, out);
}

/* ---- pad and the activations --------------------------------------------------- */

static bool build_pad(pass_builder *b, pass_call_args *a, pass_value *out)
{
    static const char *const modes[] = {"constant", "reflect", "edge"};
    int32_t x;
    ir_attrs attr = {0};
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x)) return false;
    int rank = b->g->nodes[x].rank;
    const pass_value *p = &a->v[1];
    if (p->kind != PASS_VAL_LIST || p->n_items != 2 * rank)
        return pass_build_fail(
            p->loc, "pads needs %d integers: the beginning of each axis, then the ends", 2 * rank);
    for (int i = 0; i < 2 * rank; i++) {
        if (!pass_build_want_int(&p->items[i], "a pad", &attr.cnn.pads[i])) return false;
        if (attr.cnn.pads[i] < 0 || attr.cnn.pads[i] > 1 << 20)
            return pass_build_fail(p->items[i].loc, "a pad must be between 0 and %d", 1 << 20);
    }
    int mode = 0;
    if (!name_arg(&a->v[2], "mode", modes, 3, &mode)) return false;
    attr.cnn.pad_mode = mode;
    double value = 0;
    if (given(&a->v[3]) && !pass_build_want_number(&a->v[3], "value", &value)) return false;
    attr.cnn.pad_value = (float)value;
    return pass_build_result(b, IR_OP_PAD, &x, 1, a, &attr, out);
}

static bool build_hardsigmoid(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t x;
    ir_attrs attr = {0};
    double alpha = 0.2, beta = 0.5;
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x) ||
        (given(&a->v[1]) && !pass_build_want_number(&a->v[1], "alpha", &alpha)) ||
        (given(&a->v[2]) && !pass_build_want_number(&a->v[2], "beta", &beta)))
        return false;
    attr.cnn.alpha = (float)alpha, attr.cnn.beta = (float)beta;
    return pass_build_result(b, IR_OP_HARDSIGMOID, &x, 1, a, &attr, out);
}

static bool build_hardswish(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t x;
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x)) return false;
    return pass_build_result(b, IR_OP_HARDSWISH, &x, 1, a, NULL, out);
}

static bool build_prelu(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t in[2];
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &in[0]) ||
        !pass_build_want_tensor(b, &a->v[1], "the slope", &in[1]))
        return false;
    return pass_build_result(b, IR_OP_PRELU, in, 2, a, NULL, out);
}

const pass_builtin pass_cnn_builtins[] = {
    {"conv",
     2,
     {"x", "weight", "bias", "stride", "padding", "dilation", "groups"},
     build_conv,
     false},
    {"conv_transpose",
     2,
     {"x", "weight", "bias", "stride", "padding", "dilation", "groups", "output_padding"},
     build_conv_transpose,
     false},
    {"batchnorm", 5, {"x", "scale", "bias", "mean", "var", "eps"}, build_batchnorm, false},
    {"maxpool",
     2,
     {"x", "kernel", "stride", "padding", "dilation", "ceil_mode"},
     build_maxpool,
     false},
    {"avgpool",
     2,
     {"x", "kernel", "stride", "padding", "ceil_mode", "count_include_pad"},
     build_avgpool,
     false},
    {"global_avgpool", 1, {"x"}, build_global_avgpool, false},
    {"resize", 1, {"x", "scales", "size", "mode", "coordinates", "nearest"}, build_resize, false},
    {"pad", 2, {"x", "pads", "mode", "value"}, build_pad, false},
    {"hardsigmoid", 1, {"x", "alpha", "beta"}, build_hardsigmoid, false},
    {"hardswish", 1, {"x"}, build_hardswish, false},
    {"prelu", 2, {"x", "slope"}, build_prelu, false},
};
const int pass_n_cnn_builtins = (int)(sizeof pass_cnn_builtins / sizeof pass_cnn_builtins[0]);
