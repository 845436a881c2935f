/* onnx_conv.c: the operators of convolutional networks, imported.
 *
 * Needs: the importer's values (onnx_import.h): shapes inferred in node
 * order, operands translated. Guarantees: Conv, ConvTranspose,
 * BatchNormalization, MaxPool, AveragePool, GlobalAveragePool,
 * GlobalMaxPool, Resize, Upsample and Pad get their output's shape
 * (fe_imp_cnn_fold, which onnx_import.c asks before fe_imp_fold_node) and
 * become one statement of the language's convolutional builtins
 * (fe_imp_cnn_op, from onnx_ops.c's table) computing what ONNX defines,
 * or are refused with the reason. Windows are written with explicit
 * padding: auto_pad's SAME_UPPER and SAME_LOWER, ConvTranspose's
 * output_shape and pooling's ceil_mode are resolved here, once, by the
 * rules of ONNX's reference (window_of). Only 1-D and 2-D windows
 * translate (the language's). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "onnx_import.h"

enum { MAX_SPATIAL = 2 };

/* A window: an op's kernel, strides, dilations and explicit padding on its
 * spatial axes, and its output's spatial lengths. */
typedef struct window {
    int spatial;
    int64_t kernel[MAX_SPATIAL], stride[MAX_SPATIAL], dilation[MAX_SPATIAL];
    int64_t pads[2 * MAX_SPATIAL]; /* the beginnings, then the ends (ONNX's order) */
    int64_t out_pad[MAX_SPATIAL];  /* ConvTranspose */
    int64_t out[MAX_SPATIAL];
} window;

static const char *fmt(sup_arena *a, const char *f, ...) __attribute__((format(printf, 2, 3)));
static const char *fmt(sup_arena *a, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char buf[512];
    int n = vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    if (n < (int)sizeof buf) return sup_arena_strdup(a, buf);
    char *s = sup_arena_alloc(a, (size_t)n + 1);
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

/* Attribute `name` as n integers (absent: dflt each); false when it has
 * another length. */
static bool ints(const fe_onnx_node *nd, const char *name, int n, int64_t dflt, int64_t *out)
{
    const fe_onnx_attr *a = fe_onnx_attr_find(nd, name);
    for (int k = 0; k < n; k++) out[k] = dflt;
    if (!a) return true;
    if (a->type != FE_ONNX_ATTR_INTS || a->n != n) return false;
    memcpy(out, a->ints, sizeof *out * (size_t)n);
    return true;
}

static const char *auto_pad(const fe_onnx_node *nd)
{
    const fe_onnx_attr *a = fe_onnx_attr_find(nd, "auto_pad");
    return a && a->type == FE_ONNX_ATTR_STRING ? a->s : "NOTSET";
}

static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* The window of node nd over input dims x (rank spatial + 2), its kernel
 * from the weight's dims (kdims, NULL for poolings: kernel_shape). NULL,
 * or why it cannot be imported. */
static const char *window_of(const fe_onnx_node *nd, const fe_imp_value *x, const int64_t *kdims,
                             bool transposed, bool pooling, window *w)
{
    memset(w, 0, sizeof *w);
    int s = x->rank - 2;
    if (s < 1 || s > MAX_SPATIAL) return "only 1-D and 2-D windows ([N, C, L] or [N, C, H, W])";
    w->spatial = s;
    int64_t ks[MAX_SPATIAL];
    const fe_onnx_attr *ka = fe_onnx_attr_find(nd, "kernel_shape");
    if (ka && (ka->type != FE_ONNX_ATTR_INTS || ka->n != s))
        return "kernel_shape does not have one value per spatial axis";
    for (int k = 0; k < s; k++) {
        ks[k] = ka ? ka->ints[k] : kdims ? kdims[k] : 0;
        if (kdims && ks[k] != kdims[k]) return "kernel_shape does not match the weight";
        if (ks[k] < 1)
            return pooling ? "kernel_shape is missing or not positive" : "an empty kernel";
        w->kernel[k] = ks[k];
    }
    if (!ints(nd, "strides", s, 1, w->stride) || !ints(nd, "dilations", s, 1, w->dilation) ||
        !ints(nd, "pads", 2 * s, 0, w->pads) || !ints(nd, "output_padding", s, 0, w->out_pad))
        return "strides, dilations, pads or output_padding do not have one value per spatial axis";
    for (int k = 0; k < s; k++)
        if (w->stride[k] < 1 || w->dilation[k] < 1 || w->pads[k] < 0 || w->pads[s + k] < 0 ||
            w->out_pad[k] < 0)
            return "a stride or dilation is not positive, or a padding negative";
    const char *ap = auto_pad(nd);
    bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER"),
         upper = !strcmp(ap, "SAME_UPPER");
    if (!same && strcmp(ap, "NOTSET") && strcmp(ap, "VALID")) return "an unknown auto_pad";
    if (!strcmp(ap, "VALID")) memset(w->pads, 0, sizeof w->pads);
    bool ceil_mode = pooling && fe_imp_attr_int(nd, "ceil_mode", 0) != 0;
    const fe_onnx_attr *os = transposed ? fe_onnx_attr_find(nd, "output_shape") : NULL;
    if (os && (os->type != FE_ONNX_ATTR_INTS || (os->n != s && os->n != s + 2)))
        return "output_shape does not have one value per spatial axis";
    for (int k = 0; k < s; k++) {
        int64_t in = x->dims[2 + k], span = (w->kernel[k] - 1) * w->dilation[k] + 1;
        if (transposed) {
            if (same || os) {
                /* the padding that gives the output asked for (ONNX's rule) */
                int64_t want = os ? os->ints[os->n - s + k] : in * w->stride[k];
                int64_t total = w->stride[k] * (in - 1) + w->out_pad[k] + span - want;
                if (total < 0) {
                    /* more than the op makes: the rest at the end (as
                     * ONNX's reference), which output_padding adds */
                    w->out_pad[k] -= total;
                    if (w->out_pad[k] >= w->stride[k] && w->out_pad[k] >= w->dilation[k])
                        return "output_shape is larger than the op can make";
                    total = 0;
                }
                w->pads[k] = upper ? total / 2 : total - total / 2;
                w->pads[s + k] = total - w->pads[k];
            }
            w->out[k] =
                w->stride[k] * (in - 1) + w->out_pad[k] + span - w->pads[k] - w->pads[s + k];
        } else {
            if (same) {
                int64_t out = ceil_div(in, w->stride[k]);
                int64_t total = (out - 1) * w->stride[k] + span - in;
                if (total < 0) total = 0;
                w->pads[k] = upper ? total / 2 : total - total / 2;
                w->pads[s + k] = total - w->pads[k];
            }
            int64_t room = in + w->pads[k] + w->pads[s + k] - span;
            if (room < 0) return "the window is larger than the padded input";
            w->out[k] = (ceil_mode ? ceil_div(room, w->stride[k]) : room / w->stride[k]) + 1;
            /* the last window starts inside the input or its beginning's padding */
            if (ceil_mode && (w->out[k] - 1) * w->stride[k] >= in + w->pads[k]) w->out[k]--;
        }
        if (w->out[k] < 1) return "the output would be empty";
    }
    return NULL;
}

/* The window's attributes as the language writes them. */
static const char *window_args(fe_imp_em *e, const window *w, bool kernel, bool dilation)
{
    int s = w->spatial;
    const char *t = "";
    if (kernel) t = fmt(e->p.arena, ", kernel=%s", fe_imp_int_list_text(e, w->kernel, s));
    t = fmt(e->p.arena, "%s, stride=%s, padding=%s", t, fe_imp_int_list_text(e, w->stride, s),
            fe_imp_int_list_text(e, w->pads, 2 * s));
    if (dilation)
        t = fmt(e->p.arena, "%s, dilation=%s", t, fe_imp_int_list_text(e, w->dilation, s));
    return t;
}

/* ---- shapes ---------------------------------------------------------------------- */

static void set_dims(fe_imp_value *o, const fe_imp_value *x, int rank, const int64_t *dims)
{
    o->dtype = x->dtype;
    o->rank = rank;
    memcpy(o->dims, dims, sizeof *dims * (size_t)rank);
}

/* Resize's or Upsample's output lengths from constant scales or sizes;
 * NULL, or why not. */
static const char *resize_dims(fe_imp *p, const fe_onnx_node *nd, int n, const fe_imp_value *x,
                               int64_t *dims, double *scales, bool *by_size)
{
    *by_size = false;
    bool upsample = !strcmp(nd->op_type, "Upsample");
    fe_imp_value *sv = NULL, *zv = NULL;
    const fe_onnx_attr *sa = fe_onnx_attr_find(nd, "scales");
    int k_scales = upsample ? 1 : nd->opset >= 11 ? 2 : 1, k_sizes = nd->opset >= 11 ? 3 : -1;
    int vi;
    if ((vi = fe_imp_in(p, n, k_scales)) >= 0) sv = fe_imp_v(p, vi);
    if (!upsample && k_sizes > 0 && (vi = fe_imp_in(p, n, k_sizes)) >= 0) zv = fe_imp_v(p, vi);
    if (sv && fe_imp_count(sv) == 0) sv = NULL; /* an empty scales beside sizes */
    const fe_onnx_attr *axes = fe_onnx_attr_find(nd, "axes");
    if (axes) return "the axes attribute";
    for (int d = 0; d < x->rank; d++) dims[d] = x->dims[d], scales[d] = 1;
    if (zv) {
        const int64_t *z = zv->is_const ? fe_imp_const_i(p, zv) : NULL;
        if (!z || fe_imp_count(zv) != x->rank) return "its sizes are not constants, one per axis";
        const fe_onnx_attr *kr = fe_onnx_attr_find(nd, "keep_aspect_ratio_policy");
        if (kr && kr->type == FE_ONNX_ATTR_STRING && strcmp(kr->s, "stretch"))
            return "keep_aspect_ratio_policy other than stretch";
        for (int d = 0; d < x->rank; d++) {
            if (z[d] < 1) return "a size is not positive";
            dims[d] = z[d];
            scales[d] = (double)z[d] / (double)x->dims[d];
        }
        *by_size = true;
        return NULL;
    }
    if (upsample && sa && sa->type == FE_ONNX_ATTR_FLOATS && sa->n == x->rank) {
        for (int d = 0; d < x->rank; d++) scales[d] = sa->floats[d];
    } else {
        const double *f = sv && sv->is_const ? fe_imp_const_f(p, sv) : NULL;
        if (!f || fe_imp_count(sv) != x->rank) return "its scales are not constants, one per axis";
        for (int d = 0; d < x->rank; d++) scales[d] = f[d];
    }
    for (int d = 0; d < x->rank; d++) {
        if (!(scales[d] > 0)) return "a scale is not positive";
        dims[d] = (int64_t)floor((double)x->dims[d] * (double)(float)scales[d]);
        if (dims[d] < 1) return "an output axis would be empty";
    }
    return NULL;
}

/* Pad's pads (2 per axis), from the attribute (before opset 11) or a
 * constant input, over the axes given (opset 18); NULL, or why not. */
static const char *pad_amounts(fe_imp *p, const fe_onnx_node *nd, int n, const fe_imp_value *x,
                               int64_t *pads)
{
    int r = x->rank;
    memset(pads, 0, sizeof *pads * (size_t)(2 * r));
    if (nd->opset > 0 && nd->opset < 11) {
        const fe_onnx_attr *a = fe_onnx_attr_find(nd, "pads");
        if (!a || a->type != FE_ONNX_ATTR_INTS || a->n != 2 * r) return "pads needs 2 per axis";
        memcpy(pads, a->ints, sizeof *pads * (size_t)(2 * r));
    } else {
        int vi = fe_imp_in(p, n, 1);
        fe_imp_value *pv = vi >= 0 ? fe_imp_v(p, vi) : NULL;
        const int64_t *pa = pv && pv->is_const ? fe_imp_const_i(p, pv) : NULL;
        if (!pa) return "its pads are not constants";
        int ax[2 * FE_IMP_MAX_RANK], na = r;
        vi = fe_imp_in(p, n, 3);
        fe_imp_value *av = vi >= 0 ? fe_imp_v(p, vi) : NULL;
        if (av) {
            const int64_t *a = av->is_const ? fe_imp_const_i(p, av) : NULL;
            if (!a || fe_imp_count(av) > r) return "its axes are not constants";
            na = (int)fe_imp_count(av);
            for (int k = 0; k < na; k++) {
                ax[k] = (int)(a[k] < 0 ? a[k] + r : a[k]);
                if (ax[k] < 0 || ax[k] >= r) return "an axis is out of range";
            }
        } else {
            for (int k = 0; k < r; k++) ax[k] = k;
        }
        if (fe_imp_count(pv) != 2 * na) return "pads needs 2 per axis";
        for (int k = 0; k < na; k++) pads[ax[k]] = pa[k], pads[r + ax[k]] = pa[na + k];
    }
    for (int k = 0; k < 2 * r; k++)
        if (pads[k] < 0) return "negative pads (cropping)";
    return NULL;
}

bool fe_imp_cnn_fold(fe_imp *p, int n)
{
    const fe_onnx_node *nd = &p->m->nodes[n];
    const char *op = nd->op_type;
    if (*nd->domain || nd->value || nd->n_outputs < 1 || !*nd->outputs[0] || !fe_imp_cnn_op(nd))
        return false;
    int xi = fe_imp_in(p, n, 0);
    if (xi < 0) return false;
    fe_imp_value *x = fe_imp_v(p, xi), *o = fe_imp_v(p, fe_imp_out(p, n, 0));
    if (x->rank < 0) return false;
    int64_t dims[FE_IMP_MAX_RANK];
    window w;
    bool conv = !strcmp(op, "Conv"), convt = !strcmp(op, "ConvTranspose");
    if (conv || convt) {
        int wi = fe_imp_in(p, n, 1);
        fe_imp_value *wt = wi >= 0 ? fe_imp_v(p, wi) : NULL;
        if (!wt || wt->rank != x->rank || x->rank < 3) return true;
        if (window_of(nd, x, wt->dims + 2, convt, false, &w)) return true;
        int64_t groups = fe_imp_attr_int(nd, "group", 1);
        dims[0] = x->dims[0];
        dims[1] = convt ? wt->dims[1] * groups : wt->dims[0];
        for (int k = 0; k < w.spatial; k++) dims[2 + k] = w.out[k];
        set_dims(o, x, x->rank, dims);
        return true;
    }
    bool maxpool = !strcmp(op, "MaxPool");
    if (maxpool || !strcmp(op, "AveragePool")) {
        if (window_of(nd, x, NULL, false, true, &w)) return true;
        memcpy(dims, x->dims, sizeof dims);
        for (int k = 0; k < w.spatial; k++) dims[2 + k] = w.out[k];
        set_dims(o, x, x->rank, dims);
        return true;
    }
    if (!strcmp(op, "GlobalAveragePool") || !strcmp(op, "GlobalMaxPool")) {
        if (x->rank < 3) return true;
        memcpy(dims, x->dims, sizeof dims);
        for (int k = 2; k < x->rank; k++) dims[k] = 1;
        set_dims(o, x, x->rank, dims);
        return true;
    }
    if (!strcmp(op, "BatchNormalization")) {
        set_dims(o, x, x->rank, x->dims);
        return true;
    }
    if (!strcmp(op, "Resize") || !strcmp(op, "Upsample")) {
        double scales[FE_IMP_MAX_RANK];
        bool by_size;
        if (!resize_dims(p, nd, n, x, dims, scales, &by_size)) set_dims(o, x, x->rank, dims);
        return true;
    }
    if (!strcmp(op, "Pad")) {
        int64_t pads[2 * FE_IMP_MAX_RANK];
        if (pad_amounts(p, nd, n, x, pads)) return true;
        for (int d = 0; d < x->rank; d++) dims[d] = x->dims[d] + pads[d] + pads[x->rank + d];
        set_dims(o, x, x->rank, dims);
        return true;
    }
    return false;
}

/* ---- translation ------------------------------------------------------------------ */

static int out0(fe_imp_node *c) { return fe_imp_out(&c->e->p, c->n, 0); }

/* The float run-time input x (input 0) as a variable; NULL after setting why. */
static const char *image_in(fe_imp_node *c)
{
    const char *x = fe_imp_var_of(c, 0);
    if (!x) return NULL;
    if (!fe_imp_is_f32(fe_imp_val(c, 0))) return fe_imp_no_text(c, "the input is not float");
    return x;
}

/* Input k, a float constant, as a weight (flat: [count]); NULL after
 * setting why. */
static const char *const_weight(fe_imp_node *c, int k, bool flat, const char *what)
{
    fe_imp_value *v = fe_imp_val(c, k);
    if (!v || !v->is_const || !fe_imp_is_float(v->dtype))
        return fe_imp_no_text(c, fmt(c->e->p.arena, "its %s is not a float constant", what));
    return fe_imp_weight(c->e, v, false, flat);
}

/* An output other than the first that something reads. */
static bool extra_output_live(fe_imp_node *c)
{
    for (int k = 1; k < c->node->n_outputs; k++) {
        if (!*c->node->outputs[k]) continue;
        if (fe_imp_v(&c->e->p, fe_imp_out(&c->e->p, c->n, k))->live) return true;
    }
    return false;
}

static bool op_conv(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    sup_arena *a = e->p.arena;
    bool transposed = !strcmp(c->node->op_type, "ConvTranspose");
    const char *x = image_in(c);
    if (!x) return false;
    fe_imp_value *xv = fe_imp_val(c, 0), *wv = fe_imp_val(c, 1);
    if (!wv || !wv->is_const) return fe_imp_no(c, "its weight is not a constant");
    if (wv->rank != xv->rank) return fe_imp_no(c, "the weight's rank is not the input's");
    window w;
    const char *why = window_of(c->node, xv, wv->dims + 2, transposed, false, &w);
    if (why) return fe_imp_no(c, why);
    int64_t groups = fe_imp_attr_int(c->node, "group", 1);
    const char *wt = const_weight(c, 1, false, "weight");
    if (!wt) return false;
    const char *args = fmt(a, "%s, %s", x, wt);
    if (fe_imp_val(c, 2)) {
        const char *b = const_weight(c, 2, true, "bias");
        if (!b) return false;
        args = fmt(a, "%s, %s", args, b);
    }
    args = fmt(a, "%s%s", args, window_args(e, &w, false, true));
    if (groups != 1) args = fmt(a, "%s, groups=%lld", args, (long long)groups);
    bool out_pad = false;
    for (int k = 0; k < w.spatial; k++) out_pad |= w.out_pad[k] != 0;
    if (transposed && out_pad)
        args = fmt(a, "%s, output_padding=%s", args, fe_imp_int_list_text(e, w.out_pad, w.spatial));
    return fe_imp_emit(c, out0(c), fmt(a, "%s(%s)", transposed ? "conv_transpose" : "conv", args));
}

static bool op_batchnorm(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    const char *x = image_in(c);
    if (!x) return false;
    if (fe_imp_attr_int(c->node, "training_mode", 0) || extra_output_live(c))
        return fe_imp_no(c, "training mode (the running statistics are outputs)");
    if (fe_imp_val(c, 0)->rank < 2) return fe_imp_no(c, "the input is not [N, C, ...]");
    static const char *const what[] = {"scale", "bias", "mean", "variance"};
    const char *p[4];
    for (int k = 0; k < 4; k++)
        if (!(p[k] = const_weight(c, k + 1, true, what[k]))) return false;
    float eps = fe_imp_attr_float(c->node, "epsilon", 1e-5f);
    return fe_imp_emit(c, out0(c),
                       fmt(e->p.arena, "batchnorm(%s, %s, %s, %s, %s, eps=%s)", x, p[0], p[1], p[2],
                           p[3], fe_imp_number(e, eps)));
}

static bool op_pool(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    sup_arena *a = e->p.arena;
    bool max = !strcmp(c->node->op_type, "MaxPool");
    const char *x = image_in(c);
    if (!x) return false;
    if (extra_output_live(c)) return fe_imp_no(c, "its indices output");
    window w;
    const char *why = window_of(c->node, fe_imp_val(c, 0), NULL, false, true, &w);
    if (why) return fe_imp_no(c, why);
    for (int k = 0; k < 2 * w.spatial; k++)
        if (w.pads[k] >= w.kernel[k % w.spatial])
            return fe_imp_no(c, "a padding as large as the kernel");
    bool dilated = false;
    for (int k = 0; k < w.spatial; k++) dilated |= w.dilation[k] != 1;
    if (!max && dilated) return fe_imp_no(c, "a dilated average");
    /* the window's output already accounts for ceil_mode: make the
     * language's rule give it */
    bool ceil_mode = fe_imp_attr_int(c->node, "ceil_mode", 0) != 0;
    const char *args = fmt(a, "%s%s", x, window_args(e, &w, true, max && dilated));
    if (ceil_mode) args = fmt(a, "%s, ceil_mode=true", args);
    if (!max && fe_imp_attr_int(c->node, "count_include_pad", 0))
        args = fmt(a, "%s, count_include_pad=true", args);
    return fe_imp_emit(c, out0(c), fmt(a, "%s(%s)", max ? "maxpool" : "avgpool", args));
}

static bool op_global_pool(fe_imp_node *c)
{
    const char *x = image_in(c);
    if (!x) return false;
    fe_imp_value *xv = fe_imp_val(c, 0);
    if (xv->rank < 3) return fe_imp_no(c, "the input is not [N, C, ...]");
    if (!strcmp(c->node->op_type, "GlobalAveragePool") && xv->rank <= 4)
        return fe_imp_emit(c, out0(c), fmt(c->e->p.arena, "global_avgpool(%s)", x));
    const char *axes = "";
    for (int d = 2; d < xv->rank; d++)
        axes = fmt(c->e->p.arena, "%s%s%d", axes, d > 2 ? ", " : "", d);
    return fe_imp_emit(c, out0(c),
                       fmt(c->e->p.arena, "reduce_%s(%s, axes=[%s], keepdims=true)",
                           strcmp(c->node->op_type, "GlobalMaxPool") ? "mean" : "max", x, axes));
}

/* An attribute string (absent: dflt). */
static const char *str_attr(const fe_onnx_node *nd, const char *name, const char *dflt)
{
    const fe_onnx_attr *at = fe_onnx_attr_find(nd, name);
    return at && at->type == FE_ONNX_ATTR_STRING ? at->s : dflt;
}

static bool op_resize(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    sup_arena *a = e->p.arena;
    const fe_onnx_node *nd = c->node;
    const char *x = image_in(c);
    if (!x) return false;
    fe_imp_value *xv = fe_imp_val(c, 0);
    int64_t dims[FE_IMP_MAX_RANK];
    double scales[FE_IMP_MAX_RANK];
    bool by_size;
    const char *why = resize_dims(&e->p, nd, c->n, xv, dims, scales, &by_size);
    if (why) return fe_imp_no(c, why);
    bool upsample = !strcmp(nd->op_type, "Upsample");
    const char *mode = str_attr(nd, "mode", "nearest");
    if (!strcmp(mode, "bilinear")) mode = "linear"; /* Upsample-7's name */
    if (strcmp(mode, "nearest") && strcmp(mode, "linear"))
        return fe_imp_no(c, "only the nearest and linear modes");
    const char *coord =
        upsample ? "asymmetric"
                 : str_attr(nd, "coordinate_transformation_mode",
                            nd->opset > 0 && nd->opset < 11 ? "asymmetric" : "half_pixel");
    static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
                                         "asymmetric", NULL};
    if (!fe_imp_in_set(coord, coords))
        return fe_imp_no(c, fmt(a, "the coordinate transformation %s", coord));
    const char *nearest = upsample || (nd->opset > 0 && nd->opset < 11)
                              ? "floor"
                              : str_attr(nd, "nearest_mode", "round_prefer_floor");
    static const char *const nearests[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                           "ceil", NULL};
    if (!fe_imp_in_set(nearest, nearests))
        return fe_imp_no(c, fmt(a, "the nearest mode %s", nearest));
    if (fe_imp_attr_int(nd, "antialias", 0)) return fe_imp_no(c, "antialiasing");
    int scaled = 0;
    for (int d = 0; d < xv->rank; d++) scaled += dims[d] != xv->dims[d] || scales[d] != 1;
    if (!strcmp(mode, "linear"))
        for (int d = 0; d < xv->rank - 2; d++)
            if (dims[d] != xv->dims[d] || scales[d] != 1)
                return fe_imp_no(c, "linear resizing of an axis other than the last two");
    if (!scaled) return fe_imp_alias(c, out0(c), fe_imp_in_idx(c, 0));
    const char *args;
    if (by_size) {
        args = fmt(a, "%s, size=%s", x, fe_imp_int_list_text(e, dims, xv->rank));
    } else {
        const char *list = "";
        for (int d = 0; d < xv->rank; d++)
            list = fmt(a, "%s%s%s", list, d ? ", " : "", fe_imp_number(e, (float)scales[d]));
        args = fmt(a, "%s, scales=[%s]", x, list);
    }
    args = fmt(a, "%s, mode=\"%s\", coordinates=\"%s\"", args, mode, coord);
    if (!strcmp(mode, "nearest")) args = fmt(a, "%s, nearest=\"%s\"", args, nearest);
    return fe_imp_emit(c, out0(c), fmt(a, "resize(%s)", args));
}

static bool op_pad(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    sup_arena *a = e->p.arena;
    const fe_onnx_node *nd = c->node;
    const char *x = image_in(c);
    if (!x) return false;
    fe_imp_value *xv = fe_imp_val(c, 0);
    int64_t pads[2 * FE_IMP_MAX_RANK];
    const char *why = pad_amounts(&e->p, nd, c->n, xv, pads);
    if (why) return fe_imp_no(c, why);
    const char *mode = str_attr(nd, "mode", "constant");
    if (strcmp(mode, "constant") && strcmp(mode, "reflect") && strcmp(mode, "edge"))
        return fe_imp_no(c, fmt(a, "the %s mode", mode));
    double value = fe_imp_attr_float(nd, "value", 0);
    fe_imp_value *vv = nd->opset >= 11 ? fe_imp_val(c, 2) : NULL;
    if (vv && !(vv->is_const && fe_imp_const_scalar(&e->p, vv, &value)))
        return fe_imp_no(c, "its value is not a constant");
    bool any = false;
    for (int k = 0; k < 2 * xv->rank; k++) any |= pads[k] != 0;
    if (!any) return fe_imp_alias(c, out0(c), fe_imp_in_idx(c, 0));
    const char *args =
        fmt(a, "%s, %s, mode=\"%s\"", x, fe_imp_int_list_text(e, pads, 2 * xv->rank), mode);
    if (!strcmp(mode, "constant") && value != 0) {
        const char *v = fe_imp_number(e, value);
        if (!v) return fe_imp_no(c, "its value is not finite");
        args = fmt(a, "%s, value=%s", args, v);
    }
    return fe_imp_emit(c, out0(c), fmt(a, "pad(%s)", args));
}

static const struct {
    const char *op;
    fe_imp_op_fn fn;
} cnn_ops[] = {
    {"Conv", op_conv},
    {"ConvTranspose", op_conv},
    {"BatchNormalization", op_batchnorm},
    {"MaxPool", op_pool},
    {"AveragePool", op_pool},
    {"GlobalAveragePool", op_global_pool},
    {"GlobalMaxPool", op_global_pool},
    {"Resize", op_resize},
    {"Upsample", op_resize},
    {"Pad", op_pad},
};

fe_imp_op_fn fe_imp_cnn_op(const fe_onnx_node *nd)
{
    if (*nd->domain) return NULL;
    for (size_t i = 0; i < sizeof cnn_ops / sizeof cnn_ops[0]; i++)
        if (!strcmp(nd->op_type, cnn_ops[i].op)) return cnn_ops[i].fn;
    return NULL;
}
