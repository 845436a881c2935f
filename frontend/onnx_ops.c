/* onnx_ops.c: single ONNX operators as statements of qmc's language.
 *
 * Needs: a live node whose operands are translated (onnx_import.c's
 * passes) and the statement writers of onnx_emit.c. Guarantees: a node is
 * either written as one statement computing exactly what ONNX defines, or
 * refused with the reason (why) qmc cannot express this use of it. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "onnx_import.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* The value index of output 0. */
static int out0(fe_imp_node *c) { return fe_imp_out(&c->e->p, c->n, 0); }

/* printf into the arena. */
static const char *fmt(fe_imp_node *c, const char *f, ...) __attribute__((format(printf, 2, 3)));
static const char *fmt(fe_imp_node *c, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char buf[512];
    int n = vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    if (n < (int)sizeof buf) return sup_arena_strdup(c->e->p.arena, buf);
    char *s = sup_arena_alloc(c->e->p.arena, (size_t)n + 1);
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

/* ---- single operators --------------------------------------------------------------------- */

static bool op_binary(fe_imp_node *c)
{
    static const char *const ops[] = {"Add", "Sub", "Mul", "Div"};
    static const char sym[] = "+-*/";
    fe_imp_value *o = fe_imp_v(&c->e->p, fe_imp_out(&c->e->p, c->n, 0)), *a = fe_imp_val(c, 0),
                 *b = fe_imp_val(c, 1);
    if (!fe_imp_is_f32(o) || !a || !b)
        return fe_imp_no(c, "only float arithmetic is supported at run time");
    int k = 0;
    while (strcmp(ops[k], c->node->op_type) != 0) k++;
    const char *x = fe_imp_operand(c, fe_imp_in_idx(c, 0), o->rank),
               *y = fe_imp_operand(c, fe_imp_in_idx(c, 1), o->rank);
    return x && y &&
           fe_imp_emit(c, fe_imp_out(&c->e->p, c->n, 0),
                       sup_arena_printf(c->e->p.arena, "%s %c %s", x, sym[k], y));
}

static bool op_unary(fe_imp_node *c, const char *fn)
{
    const char *x = fe_imp_var_of(c, 0);
    if (!x || !fe_imp_is_f32(fe_imp_val(c, 0)))
        return x ? fe_imp_no(c, "the input is not float") : false;
    return fe_imp_emit(c, fe_imp_out(&c->e->p, c->n, 0),
                       sup_arena_printf(c->e->p.arena, "%s(%s)", fn, x));
}

static bool op_matmul(fe_imp_node *c)
{
    const char *a = fe_imp_tensor(c, fe_imp_in_idx(c, 0)),
               *b = fe_imp_tensor(c, fe_imp_in_idx(c, 1));
    if (!a || !b) return false;
    if (!fe_imp_is_f32(fe_imp_val(c, 0)) || !fe_imp_is_f32(fe_imp_val(c, 1)))
        return fe_imp_no(c, "only float operands are supported");
    return fe_imp_emit(c, fe_imp_out(&c->e->p, c->n, 0),
                       sup_arena_printf(c->e->p.arena, "matmul(%s, %s)", a, b));
}

/* Gemm outside the linear pattern: alpha, beta, transA, or a run-time B. */
static bool op_gemm(fe_imp_node *c)
{
    sup_arena *ar = c->e->p.arena;
    const fe_onnx_node *nd = c->node;
    fe_imp_value *o = fe_imp_v(&c->e->p, fe_imp_out(&c->e->p, c->n, 0)), *b = fe_imp_val(c, 1);
    const char *a = fe_imp_tensor(c, fe_imp_in_idx(c, 0));
    if (!a || !b) return false;
    if (fe_imp_attr_int(nd, "transA", 0)) a = sup_arena_printf(ar, "transpose(%s)", a);
    bool tb = fe_imp_attr_int(nd, "transB", 0) != 0;
    const char *core;
    if (b->is_const) {
        if (!fe_imp_is_float(b->dtype)) return fe_imp_no(c, "B is not float");
        core = sup_arena_printf(ar, "linear(%s, %s)", a, fe_imp_weight(c->e, b, !tb, false));
    } else {
        const char *bt = fe_imp_tensor(c, fe_imp_in_idx(c, 1));
        if (!bt) return false;
        core = sup_arena_printf(ar, "matmul(%s, %s)", a,
                                tb ? sup_arena_printf(ar, "transpose(%s)", bt) : bt);
    }
    float alpha = fe_imp_attr_float(nd, "alpha", 1), beta = fe_imp_attr_float(nd, "beta", 1);
    if (alpha != 1) core = sup_arena_printf(ar, "%s * %s", core, fe_imp_number(c->e, alpha));
    if (fe_imp_in_idx(c, 2) >= 0 && beta != 0) {
        const char *cc = fe_imp_operand(c, fe_imp_in_idx(c, 2), o->rank);
        if (!cc) return false;
        core = beta == 1
                   ? sup_arena_printf(ar, "%s + %s", core, cc)
                   : sup_arena_printf(ar, "%s + %s * %s", core, cc, fe_imp_number(c->e, beta));
    }
    return fe_imp_emit(c, fe_imp_out(&c->e->p, c->n, 0), core);
}

static bool op_softmax(fe_imp_node *c)
{
    fe_imp_value *x = fe_imp_val(c, 0);
    const char *t = fe_imp_var_of(c, 0);
    if (!t) return false;
    if (!fe_imp_is_f32(x) || x->rank < 1) return fe_imp_no(c, "the input is not a float tensor");
    int64_t axis = fe_imp_attr_int(c->node, "axis", c->node->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank) return fe_imp_no(c, "the axis is out of range");
    sup_arena *a = c->e->p.arena;
    if (c->node->opset >= 13 || axis == x->rank - 1) {
        const char *ax =
            axis == x->rank - 1 ? "" : sup_arena_printf(a, ", axis=%lld", (long long)axis);
        return fe_imp_emit(c, fe_imp_out(&c->e->p, c->n, 0),
                           sup_arena_printf(a, "softmax(%s%s)", t, ax));
    }
    /* before opset 13: over the dims from axis on, flattened */
    int64_t d2[2] = {1, 1};
    for (int d = 0; d < x->rank; d++) d2[d >= axis] *= x->dims[d];
    return fe_imp_emit(c, fe_imp_out(&c->e->p, c->n, 0),
                       sup_arena_printf(a, "reshape(softmax(reshape(%s, %s)), %s)", t,
                                        fe_imp_int_list_text(c->e, d2, 2),
                                        fe_imp_int_list_text(c->e, x->dims, x->rank)));
}

/* A [D] parameter of a norm: a float constant of D elements, or a run-time [D]. */
static const char *norm_param(fe_imp_node *c, int k, int64_t d)
{
    int vi = fe_imp_in_idx(c, k);
    fe_imp_value *v = vi >= 0 ? fe_imp_v(&c->e->p, vi) : NULL;
    if (!v) return NULL;
    if (v->is_const && fe_imp_is_float(v->dtype) && fe_imp_count(v) == d)
        return fe_imp_weight(c->e, v, false, true);
    if (!v->is_const && fe_imp_is_f32(v) && fe_imp_count(v) == d && v->text)
        return v->rank == 1 ? v->text : fmt(c, "reshape(%s, [%lld])", v->text, (long long)d);
    return fe_imp_no_text(c, "the scale and bias must have the size of the last axis");
}

/* LayerNormalization's Mean and InvStdDev outputs, when used: the
 * statistics over the axes from `axis` on, kept as size 1. */
static bool layernorm_stats(fe_imp_node *c, const char *x, int64_t axis)
{
    fe_imp_em *e = c->e;
    const fe_imp_value *xv = fe_imp_val(c, 0);
    const char *axes = "";
    for (int64_t d = axis; d < xv->rank; d++)
        axes = fmt(c, "%s%s%lld", axes, d > axis ? ", " : "", (long long)d);
    int mean = c->node->n_outputs > 1 ? fe_imp_out(&e->p, c->n, 1) : -1,
        inv = c->node->n_outputs > 2 ? fe_imp_out(&e->p, c->n, 2) : -1;
    bool want_mean = mean >= 0 && fe_imp_v(&e->p, mean)->live,
         want_inv = inv >= 0 && fe_imp_v(&e->p, inv)->live;
    if (!want_mean && !want_inv) return true;
    const char *m = fmt(c, "reduce_mean(%s, axes=[%s], keepdims=true)", x, axes);
    if (want_mean) {
        if (!fe_imp_emit(c, mean, m)) return false;
        m = fe_imp_v(&e->p, mean)->text;
    }
    if (!want_inv) return true;
    const char *eps = fe_imp_number(e, fe_imp_attr_float(c->node, "epsilon", 1e-5f));
    return fe_imp_emit(
        c, inv,
        fmt(c, "1.0 / sqrt(reduce_mean((%s - %s) * (%s - %s), axes=[%s], keepdims=true) + %s)", x,
            m, x, m, axes, eps));
}

static bool op_layernorm(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    fe_imp_value *x = fe_imp_val(c, 0);
    const char *t = fe_imp_var_of(c, 0);
    if (!t) return false;
    int64_t axis = fe_imp_attr_int(c->node, "axis", -1);
    if (axis < 0) axis += x->rank;
    if (!fe_imp_is_f32(x) || axis < 0 || axis >= x->rank)
        return fe_imp_no(c, "the input is not float, or the axis is out of range");
    if (!layernorm_stats(c, t, axis)) return false;
    /* over the axes from `axis` on: flattened into one last axis of d */
    int64_t d = 1, d2[2];
    for (int k = (int)axis; k < x->rank; k++) d *= x->dims[k];
    d2[0] = fe_imp_count(x) / d, d2[1] = d;
    const char *w = norm_param(c, 1, d), *b;
    if (!w) return false;
    if (fe_imp_in_idx(c, 2) >= 0) {
        if (!(b = norm_param(c, 2, d))) return false;
    } else { /* the language's layernorm takes a bias: zeros */
        b = fe_imp_filled(e, c->n, d, 0, "bias");
    }
    const char *eps = fe_imp_number(e, fe_imp_attr_float(c->node, "epsilon", 1e-5f));
    if (axis == x->rank - 1)
        return fe_imp_emit(c, out0(c), fmt(c, "layernorm(%s, %s, %s, eps=%s)", t, w, b, eps));
    return fe_imp_emit(c, out0(c),
                       fmt(c, "reshape(layernorm(reshape(%s, %s), %s, %s, eps=%s), %s)", t,
                           fe_imp_int_list_text(e, d2, 2), w, b, eps,
                           fe_imp_int_list_text(e, x->dims, x->rank)));
}

/* concat of parts along axis, chained by 16 (the language's limit). */
static const char *concat_parts(fe_imp_node *c, const char *const *parts, int64_t n, int64_t axis)
{
    const char *acc = NULL;
    for (int64_t k = 0; k < n;) {
        const char *list = acc ? fmt(c, "[%s", acc) : fmt(c, "[%s", parts[k++]);
        for (int m = 1; m < 16 && k < n; m++) list = fmt(c, "%s, %s", list, parts[k++]);
        acc = fmt(c, "concat(%s], axis=%lld)", list, (long long)axis);
    }
    return acc;
}

/* Gather by constant indices of a run-time tensor: a slice when they are
 * consecutive, else a concat of one slice per index (up to 256). */
static bool gather_const(fe_imp_node *c, fe_imp_value *data, fe_imp_value *idx, int64_t axis)
{
    fe_imp_em *e = c->e;
    int out = out0(c);
    fe_imp_value *o = fe_imp_v(&e->p, out);
    const int64_t *iv = fe_imp_const_i(&e->p, idx);
    int64_t n = fe_imp_count(idx), dim = data->dims[axis];
    if (!iv || n == 0) return fe_imp_no(c, "its indices are not integer constants");
    bool consecutive = true;
    for (int64_t k = 0; k < n; k++) {
        int64_t i = iv[k] < 0 ? iv[k] + dim : iv[k];
        if (i < 0 || i >= dim) return fe_imp_no(c, "an index is out of range");
        consecutive &= i == (iv[0] < 0 ? iv[0] + dim : iv[0]) + k;
    }
    if (!consecutive && n > 256) return fe_imp_no(c, "more than 256 scattered constant indices");
    const char **parts = sup_arena_alloc(e->p.arena, sizeof *parts * (size_t)n);
    int64_t first = iv[0] < 0 ? iv[0] + dim : iv[0];
    for (int64_t k = 0; k < (consecutive ? 1 : n); k++) {
        int64_t i = iv[k] < 0 ? iv[k] + dim : iv[k];
        parts[k] = fmt(c, "slice(%s, %lld, %lld, %lld)", data->text, (long long)axis, (long long)i,
                       (long long)(consecutive ? first + n : i + 1));
    }
    const char *s = consecutive ? parts[0] : concat_parts(c, parts, n, axis);
    if (idx->rank != 1) s = fmt(c, "reshape(%s, %s)", s, fe_imp_int_list_text(e, o->dims, o->rank));
    return fe_imp_emit(c, out, s);
}

static bool op_gather(fe_imp_node *c)
{
    fe_imp_value *data = fe_imp_val(c, 0), *idx = fe_imp_val(c, 1);
    int out = out0(c);
    int64_t axis = fe_imp_attr_int(c->node, "axis", 0);
    if (!data || !idx) return false;
    if (axis < 0) axis += data->rank;
    if (axis < 0 || axis >= data->rank) return fe_imp_no(c, "the axis is out of range");
    if (!idx->is_const) { /* run-time indices */
        if (!fe_imp_is_index(idx)) return fe_imp_no(c, "its indices are not integers");
        if (data->is_const && !fe_imp_is_float(data->dtype))
            return fe_imp_no(c, "an integer constant table with run-time indices");
        const char *t = fe_imp_tensor(c, fe_imp_in_idx(c, 0));
        if (!t || !idx->text) return false;
        if (data->is_const && axis == 0 && data->rank == 2) /* a table lookup */
            return fe_imp_emit(c, out, fmt(c, "embedding(%s, %s)", t, idx->text));
        return fe_imp_emit(c, out,
                           fmt(c, "gather(%s, %s, axis=%lld)", t, idx->text, (long long)axis));
    }
    if (!data->is_const && data->text) return gather_const(c, data, idx, axis);
    return fe_imp_no(c, "its data and indices are not both known");
}

static bool op_transpose(fe_imp_node *c)
{
    fe_imp_value *x = fe_imp_val(c, 0), *o = fe_imp_v(&c->e->p, fe_imp_out(&c->e->p, c->n, 0));
    const fe_onnx_attr *a = fe_onnx_attr_find(c->node, "perm");
    int64_t perm[FE_IMP_MAX_RANK];
    bool identity = true;
    for (int d = 0; d < x->rank; d++) {
        perm[d] =
            a && a->type == FE_ONNX_ATTR_INTS && a->n == x->rank ? a->ints[d] : x->rank - 1 - d;
        if (perm[d] < 0) perm[d] += x->rank;
        identity &= perm[d] == d;
    }
    if (identity) return fe_imp_alias(c, fe_imp_out(&c->e->p, c->n, 0), fe_imp_in_idx(c, 0));
    const char *t = fe_imp_var_of(c, 0);
    (void)o;
    return t && fe_imp_emit(c, fe_imp_out(&c->e->p, c->n, 0),
                            sup_arena_printf(c->e->p.arena, "transpose(%s, %s)", t,
                                             fe_imp_int_list_text(c->e, perm, x->rank)));
}

static bool op_concat(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    fe_imp_value *o = fe_imp_v(&e->p, fe_imp_out(&e->p, c->n, 0));
    int64_t axis = fe_imp_attr_int(c->node, "axis", 0);
    if (axis < 0) axis += o->rank;
    const char *acc = NULL;
    int in_chunk = 0;
    char *list = NULL;
    for (int k = 0; k < c->node->n_inputs; k++) {
        fe_imp_value *v = fe_imp_val(c, k);
        if (!v) continue;
        if (fe_imp_count(v) == 0) continue; /* empty pieces add nothing */
        const char *t = fe_imp_tensor(c, fe_imp_in_idx(c, k));
        if (!t) return false;
        /* at most 16 operands per concat: chain them */
        if (in_chunk == 16) {
            acc = sup_arena_printf(e->p.arena, "concat(%s], axis=%lld)", list, (long long)axis);
            list = sup_arena_printf(e->p.arena, "[%s", acc);
            in_chunk = 1;
        }
        list = list ? sup_arena_printf(e->p.arena, "%s, %s", list, t)
                    : sup_arena_printf(e->p.arena, "[%s", t);
        in_chunk++;
    }
    if (!list) return fe_imp_no(c, "all its inputs are empty");
    return fe_imp_emit(
        c, fe_imp_out(&e->p, c->n, 0),
        sup_arena_printf(e->p.arena, "concat(%s], axis=%lld)", list, (long long)axis));
}

/* Slice with constant starts/ends/axes/steps: slice() per sliced axis. */
static bool op_slice(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    fe_imp_value *x = fe_imp_val(c, 0), *o = fe_imp_v(&e->p, fe_imp_out(&e->p, c->n, 0));
    const char *t = fe_imp_var_of(c, 0);
    if (!t) return false;
    /* the folded output shape tells each axis' length; recover starts from the parameters */
    int64_t starts[FE_IMP_MAX_RANK] = {0};
    const fe_onnx_attr *sa = fe_onnx_attr_find(c->node, "starts"),
                       *aa = fe_onnx_attr_find(c->node, "axes");
    bool attrs = c->node->opset > 0 && c->node->opset < 10;
    fe_imp_value *vs = attrs ? NULL : fe_imp_val(c, 1), *va = attrs ? NULL : fe_imp_val(c, 3),
                 *vt = attrs ? NULL : fe_imp_val(c, 4);
    const int64_t *s = attrs ? (sa ? sa->ints : NULL) : (vs ? fe_imp_const_i(&e->p, vs) : NULL);
    int ns = attrs ? (sa ? sa->n : 0) : (vs ? (int)fe_imp_count(vs) : 0);
    const int64_t *ax = attrs ? (aa ? aa->ints : NULL) : (va ? fe_imp_const_i(&e->p, va) : NULL);
    const int64_t *st = vt ? fe_imp_const_i(&e->p, vt) : NULL;
    if (!s || (va && !ax) || (vt && !st)) return fe_imp_no(c, "its parameters are not constants");
    for (int k = 0; k < ns; k++) {
        int64_t a = ax ? ax[k] : k;
        if (a < 0) a += x->rank;
        if (a < 0 || a >= x->rank) return fe_imp_no(c, "an axis is out of range");
        if (st && st[k] != 1 && o->dims[a] != x->dims[a]) return fe_imp_no(c, "steps other than 1");
        int64_t b = s[k], dim = x->dims[a];
        if (b < 0) b = b < -dim ? 0 : b + dim;
        starts[a] = b > dim ? dim : b;
    }
    for (int a = 0; a < x->rank; a++) {
        if (o->dims[a] == x->dims[a]) continue;
        if (o->dims[a] == 0) return fe_imp_no(c, "the result is empty");
        t = sup_arena_printf(e->p.arena, "slice(%s, %d, %lld, %lld)", t, a, (long long)starts[a],
                             (long long)(starts[a] + o->dims[a]));
    }
    if (fe_imp_same_dims(o, x))
        return fe_imp_alias(c, fe_imp_out(&e->p, c->n, 0), fe_imp_in_idx(c, 0));
    return fe_imp_emit(c, fe_imp_out(&e->p, c->n, 0), t);
}

static bool op_split(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    fe_imp_value *x = fe_imp_val(c, 0);
    const char *t = fe_imp_var_of(c, 0);
    if (!t) return false;
    int64_t axis = fe_imp_attr_int(c->node, "axis", 0), start = 0;
    if (axis < 0) axis += x->rank;
    for (int k = 0; k < c->node->n_outputs; k++) {
        int out = fe_imp_out(&e->p, c->n, k);
        fe_imp_value *o = fe_imp_v(&e->p, out);
        if (o->rank < 0) return fe_imp_no(c, "the split sizes are not known");
        int64_t len = o->dims[axis];
        if (o->live) {
            if (len == 0) return fe_imp_no(c, "a part is empty");
            fe_imp_emit(c, out,
                        sup_arena_printf(e->p.arena, "slice(%s, %lld, %lld, %lld)", t,
                                         (long long)axis, (long long)start,
                                         (long long)(start + len)));
        }
        start += len;
    }
    return true;
}

/* ---- functions, comparisons, selections, reductions ----------------------------------- */

/* A run-time mask: ONNX bool values, which qmc holds as floats 0 and 1. */
static bool is_mask(const fe_imp_value *v) { return v && v->dtype == FE_ONNX_BOOL; }

/* The float input x of a unary operator as a variable; NULL after
 * setting why. */
static const char *float_in(fe_imp_node *c)
{
    const char *x = fe_imp_var_of(c, 0);
    if (x && !fe_imp_is_f32(fe_imp_val(c, 0))) return fe_imp_no_text(c, "the input is not float");
    return x;
}

/* Elementwise functions of one float input, as builtins or short
 * expressions of them (x is a name, so it may be repeated). */
static bool op_function(fe_imp_node *c)
{
    const char *op = c->node->op_type, *x = float_in(c);
    fe_imp_em *e = c->e;
    if (!x) return false;
    static const char *const direct[][2] = {
        {"Sigmoid", "sigmoid"}, {"Exp", "exp"},   {"Log", "log"},
        {"Sqrt", "sqrt"},       {"Erf", "erf"},   {"Abs", "abs"},
        {"Floor", "floor"},     {"Ceil", "ceil"}, {"HardSwish", "hard_swish"}};
    for (size_t k = 0; k < sizeof direct / sizeof direct[0]; k++)
        if (!strcmp(op, direct[k][0]))
            return fe_imp_emit(c, out0(c), fmt(c, "%s(%s)", direct[k][1], x));
    const fe_onnx_node *nd = c->node;
    float alpha = fe_imp_attr_float(nd, "alpha", 1);
    if (!strcmp(op, "LeakyRelu"))
        return fe_imp_emit(c, out0(c),
                           fmt(c, "leaky_relu(%s, alpha=%s)", x,
                               fe_imp_number(e, fe_imp_attr_float(nd, "alpha", 0.01f))));
    if (!strcmp(op, "HardSigmoid"))
        return fe_imp_emit(c, out0(c),
                           fmt(c, "hard_sigmoid(%s, alpha=%s, beta=%s)", x,
                               fe_imp_number(e, fe_imp_attr_float(nd, "alpha", 0.2f)),
                               fe_imp_number(e, fe_imp_attr_float(nd, "beta", 0.5f))));
    if (!strcmp(op, "Elu"))
        return fe_imp_emit(c, out0(c),
                           fmt(c, "where(less(%s, 0.0), (exp(%s) - 1.0) * %s, %s)", x, x,
                               fe_imp_number(e, alpha), x));
    if (!strcmp(op, "Selu")) {
        float a = fe_imp_attr_float(nd, "alpha", 1.67326319217681884765625f),
              g = fe_imp_attr_float(nd, "gamma", 1.05070102214813232421875f);
        return fe_imp_emit(c, out0(c),
                           fmt(c, "where(greater(%s, 0.0), %s, (exp(%s) - 1.0) * %s) * %s", x, x, x,
                               fe_imp_number(e, a), fe_imp_number(e, g)));
    }
    if (!strcmp(op, "Celu"))
        return fe_imp_emit(c, out0(c),
                           fmt(c, "maximum(%s, 0.0) + minimum((exp(%s / %s) - 1.0) * %s, 0.0)", x,
                               x, fe_imp_number(e, alpha), fe_imp_number(e, alpha)));
    if (!strcmp(op, "Softplus")) return fe_imp_emit(c, out0(c), fmt(c, "log(exp(%s) + 1.0)", x));
    if (!strcmp(op, "Softsign"))
        return fe_imp_emit(c, out0(c), fmt(c, "%s / (abs(%s) + 1.0)", x, x));
    if (!strcmp(op, "ThresholdedRelu"))
        return fe_imp_emit(
            c, out0(c), fmt(c, "where(greater(%s, %s), %s, 0.0)", x, fe_imp_number(e, alpha), x));
    if (!strcmp(op, "Sign"))
        return fe_imp_emit(c, out0(c), fmt(c, "greater(%s, 0.0) - less(%s, 0.0)", x, x));
    if (!strcmp(op, "Round")) /* ties to even: (x + 1.5 * 2^23) - 1.5 * 2^23 below 2^22 */
        return fe_imp_emit(
            c, out0(c),
            fmt(c, "where(less(abs(%s), 4194304.0), (%s + 12582912.0) - 12582912.0, %s)", x, x, x));
    return false;
}

/* Clip: bounds from attributes (before opset 11) or constant inputs, as
 * clip(); run-time bounds as maximum and minimum. */
static bool op_clip(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    const char *x = float_in(c), *expr;
    if (!x) return false;
    if (c->node->opset > 0 && c->node->opset < 11) {
        float lo = fe_imp_attr_float(c->node, "min", -INFINITY),
              hi = fe_imp_attr_float(c->node, "max", INFINITY);
        expr = fmt(c, "clip(%s", x);
        if (isfinite(lo)) expr = fmt(c, "%s, min=%s", expr, fe_imp_number(e, lo));
        if (isfinite(hi)) expr = fmt(c, "%s, max=%s", expr, fe_imp_number(e, hi));
        return fe_imp_emit(c, out0(c), fmt(c, "%s)", expr));
    }
    expr = x;
    const char *kw = "";
    for (int k = 1; k <= 2; k++) {
        fe_imp_value *b = fe_imp_val(c, k);
        double v;
        if (!b) continue;
        if (b->is_const && fe_imp_const_scalar(&e->p, b, &v)) {
            if (isinf(v) && (k == 1) == (v < 0)) continue; /* no bound */
            kw = fmt(c, "%s, %s=%s", kw, k == 1 ? "min" : "max", fe_imp_number(e, v));
            continue;
        }
        const char *t = fe_imp_operand(c, fe_imp_in_idx(c, k), 0);
        if (!t || !fe_imp_is_f32(b)) return t ? fe_imp_no(c, "its bounds are not float") : false;
        expr = fmt(c, "%s(%s, %s)", k == 1 ? "maximum" : "minimum", expr, t);
    }
    return fe_imp_emit(c, out0(c), *kw || expr == x ? fmt(c, "clip(%s%s)", expr, kw) : expr);
}

/* Pow: constant exponents 1, 2, 0.5, -1 exactly as ONNX's reference; any
 * other exponent through pow(). */
static bool op_pow(fe_imp_node *c)
{
    double y;
    fe_imp_value *a = fe_imp_val(c, 0), *b = fe_imp_val(c, 1), *o = fe_imp_v(&c->e->p, out0(c));
    if (!a || !b || !fe_imp_is_f32(o) || !fe_imp_is_float(a->dtype) ||
        !(fe_imp_is_float(b->dtype) || fe_imp_is_index(b)))
        return fe_imp_no(c, "only float bases, and float or integer exponents");
    const char *x = a->is_const ? NULL : fe_imp_var_of(c, 0);
    if (x && b->is_const && fe_imp_const_scalar(&c->e->p, b, &y) && b->rank <= a->rank) {
        if (y == 1) return fe_imp_alias(c, out0(c), fe_imp_in_idx(c, 0));
        if (y == 2) return fe_imp_emit(c, out0(c), fmt(c, "%s * %s", x, x));
        if (y == 0.5) return fe_imp_emit(c, out0(c), fmt(c, "sqrt(%s)", x));
        if (y == -1) return fe_imp_emit(c, out0(c), fmt(c, "1.0 / %s", x));
    }
    const char *p = fe_imp_operand(c, fe_imp_in_idx(c, 0), o->rank),
               *q = b->is_const || fe_imp_is_float(b->dtype)
                        ? fe_imp_operand(c, fe_imp_in_idx(c, 1), o->rank)
                        : fe_imp_var_of(c, 1);
    if (q && !b->is_const && fe_imp_is_index(b)) q = fmt(c, "to_f32(%s)", q);
    return p && q && fe_imp_emit(c, out0(c), fmt(c, "pow(%s, %s)", p, q));
}

/* Max, Min, Sum, Mean of any number of float inputs; the comparisons of
 * two; And, Or, Xor of masks. */
static bool op_variadic(fe_imp_node *c)
{
    static const char *const fn[][2] = {{"Max", "maximum"},
                                        {"Min", "minimum"},
                                        {"Equal", "equal"},
                                        {"Less", "less"},
                                        {"LessOrEqual", "less_equal"},
                                        {"Greater", "greater"},
                                        {"GreaterOrEqual", "greater_equal"}};
    const char *op = c->node->op_type, *name = NULL, *acc = NULL;
    fe_imp_value *o = fe_imp_v(&c->e->p, out0(c));
    for (size_t k = 0; k < sizeof fn / sizeof fn[0]; k++)
        if (!strcmp(op, fn[k][0])) name = fn[k][1];
    bool logic = !strcmp(op, "And") || !strcmp(op, "Or") || !strcmp(op, "Xor");
    int n = 0;
    for (int k = 0; k < c->node->n_inputs; k++) {
        fe_imp_value *v = fe_imp_val(c, k);
        if (!v) continue;
        if (logic ? !is_mask(v) : !fe_imp_is_float(v->dtype))
            return fe_imp_no(c, logic ? "only bool operands" : "only float operands at run time");
        const char *t = fe_imp_operand(c, fe_imp_in_idx(c, k), o->rank);
        if (!t) return false;
        n++;
        if (!acc)
            acc = t;
        else if (name)
            acc = fmt(c, "%s(%s, %s)", name, acc, t);
        else if (!strcmp(op, "Sum") || !strcmp(op, "Mean"))
            acc = fmt(c, "%s + %s", acc, t);
        else if (!strcmp(op, "And"))
            acc = fmt(c, "%s * %s", acc, t);
        else if (!strcmp(op, "Or"))
            acc = fmt(c, "maximum(%s, %s)", acc, t);
        else
            acc = fmt(c, "abs(%s - %s)", acc, t);
    }
    if (!acc) return fe_imp_no(c, "it has no inputs");
    if (n == 1 && !name) /* Max, Min, Sum, Mean of one input: the input */
        return fe_imp_alias(c, out0(c), fe_imp_in_idx(c, 0));
    if (!strcmp(op, "Mean") && n > 1) acc = fmt(c, "(%s) / %d.0", acc, n);
    return fe_imp_emit(c, out0(c), acc);
}

static bool op_not(fe_imp_node *c)
{
    const char *x = fe_imp_var_of(c, 0);
    if (!x) return false;
    if (!is_mask(fe_imp_val(c, 0))) return fe_imp_no(c, "only a bool input");
    return fe_imp_emit(c, out0(c), fmt(c, "1.0 - %s", x));
}

/* Where with a run-time condition (a mask, or a float tensor of 0 and 1)
 * or run-time values. */
static bool op_where(fe_imp_node *c)
{
    fe_imp_value *cond = fe_imp_val(c, 0), *a = fe_imp_val(c, 1), *b = fe_imp_val(c, 2),
                 *o = fe_imp_v(&c->e->p, out0(c));
    if (!cond || !a || !b) return fe_imp_no(c, "an input is missing");
    if (!fe_imp_is_f32(o) && !is_mask(o)) return fe_imp_no(c, "only float values at run time");
    const char *t = fe_imp_operand(c, fe_imp_in_idx(c, 0), o->rank),
               *x = fe_imp_operand(c, fe_imp_in_idx(c, 1), o->rank),
               *y = fe_imp_operand(c, fe_imp_in_idx(c, 2), o->rank);
    return t && x && y && fe_imp_emit(c, out0(c), fmt(c, "where(%s, %s, %s)", t, x, y));
}

/* Cast at run time: between float types and between integer types the
 * operand itself (qmc's f32 and i32), a mask to float as it is (0 and 1);
 * between float (or a mask) and int32/int64 to_i32 and to_f32; to bool
 * x != 0. */
static bool op_cast(fe_imp_node *c)
{
    fe_imp_value *x = fe_imp_val(c, 0), *o = fe_imp_v(&c->e->p, out0(c));
    bool xf = fe_imp_is_f32(x) || is_mask(x), of = fe_imp_is_float(o->dtype);
    if ((xf && of) || (fe_imp_is_index(x) && fe_imp_is_index(o)) || (is_mask(x) && is_mask(o)))
        return fe_imp_alias(c, out0(c), fe_imp_in_idx(c, 0));
    const char *t = fe_imp_var_of(c, 0);
    if (!t) return false;
    if (xf && fe_imp_is_index(o)) return fe_imp_emit(c, out0(c), fmt(c, "to_i32(%s)", t));
    if (fe_imp_is_index(x) && of) return fe_imp_emit(c, out0(c), fmt(c, "to_f32(%s)", t));
    bool code = o->dtype == FE_ONNX_UINT8 || o->dtype == FE_ONNX_INT8;
    if (xf && code) /* 8-bit codes, held as floats: truncated, saturated */
        return fe_imp_emit(c, out0(c),
                           fmt(c, "clip(to_f32(to_i32(%s)), min=%s, max=%s)", t,
                               o->dtype == FE_ONNX_INT8 ? "(-128.0)" : "0.0",
                               o->dtype == FE_ONNX_INT8 ? "127.0" : "255.0"));
    if ((fe_imp_is_f32(x) || fe_imp_is_index(x)) && is_mask(o))
        return fe_imp_emit(
            c, out0(c),
            fmt(c, fe_imp_is_f32(x) ? "1.0 - equal(%s, 0.0)" : "1.0 - equal(to_f32(%s), 0.0)", t));
    return fe_imp_no(c, "only casts between float, int32, int64 and bool, and from float to "
                        "int8 and uint8 (codes), at run time");
}

/* A QuantizeLinear or DequantizeLinear's one scale and zero point (false
 * with a reason when they are per axis, blocked or computed at run time). */
static bool qdq_params(fe_imp_node *c, double *scale, double *zp, int64_t *lo, int64_t *hi)
{
    fe_imp_value *s = fe_imp_val(c, 1), *z = fe_imp_val(c, 2);
    bool dq = strcmp(c->node->op_type, "DequantizeLinear") == 0;
    int type = dq  ? fe_imp_val(c, 0)->dtype
               : z ? z->dtype
                   : (int)fe_imp_attr_int(c->node, "output_dtype", FE_ONNX_UINT8);
    if (!type) type = FE_ONNX_UINT8;
    switch (type) {
    case FE_ONNX_INT8: *lo = -128, *hi = 127; break;
    case FE_ONNX_UINT8: *lo = 0, *hi = 255; break;
    case FE_ONNX_INT4: *lo = -8, *hi = 7; break;
    case FE_ONNX_UINT4: *lo = 0, *hi = 15; break;
    default: return fe_imp_no(c, "only int8, uint8, int4 and uint4 codes at run time");
    }
    *zp = 0;
    if (!s || !s->is_const || !fe_imp_const_scalar(&c->e->p, s, scale) ||
        (z && (!z->is_const || !fe_imp_const_scalar(&c->e->p, z, zp))) ||
        fe_imp_attr_int(c->node, "block_size", 0) != 0)
        return fe_imp_no(c, "a value computed at run time takes one constant scale and zero point "
                            "(not per axis or blocked)");
    return true;
}

/* QuantizeLinear of a value computed at run time: the codes as floats,
 * rint(x / s) (ties to even, by adding and subtracting 1.5 * 2^23 in f32,
 * exact once clipped to the code range) + zero point, saturated. */
static bool op_quantize(fe_imp_node *c)
{
    double s, z;
    int64_t lo, hi;
    fe_imp_em *e = c->e;
    const char *x = float_in(c);
    if (!x) return false;
    fe_imp_value *sv = fe_imp_val(c, 1), *zv = fe_imp_val(c, 2);
    if (sv && !sv->is_const && sv->rank == 0 && zv && !zv->is_const && zv->rank == 0 &&
        (zv->dtype == FE_ONNX_UINT8 || zv->dtype == FE_ONNX_INT8)) {
        /* a scale and zero point computed at run time (DynamicQuantizeLinear's function) */
        const char *st = fe_imp_var_of(c, 1), *zt = fe_imp_var_of(c, 2);
        bool u = zv->dtype == FE_ONNX_UINT8;
        return st && zt &&
               fe_imp_emit(c, out0(c),
                           fmt(c,
                               "(minimum(maximum(%s / %s, %s - %s), %s - %s) + 12582912.0) - "
                               "12582912.0 + %s",
                               x, st, u ? "0.0" : "(-128.0)", zt, u ? "255.0" : "127.0", zt, zt));
    }
    if (!qdq_params(c, &s, &z, &lo, &hi)) return false;
    const char *v =
        fmt(c, "(clip(%s / %s, min=%s, max=%s) + 12582912.0) - 12582912.0", x, fe_imp_number(e, s),
            fe_imp_number(e, (double)lo - z), fe_imp_number(e, (double)hi - z));
    return fe_imp_emit(c, out0(c), z != 0 ? fmt(c, "%s + %s", v, fe_imp_number(e, z)) : v);
}

/* DequantizeLinear of codes computed at run time (by QuantizeLinear or
 * DynamicQuantizeLinear): (q - zero point) * scale, the scale and zero
 * point constants or (DynamicQuantizeLinear's) run-time scalars. Constant
 * codes are weights (onnx_fold.c). */
static bool op_dequantize(fe_imp_node *c)
{
    double s, z;
    int64_t lo, hi;
    fe_imp_em *e = c->e;
    const char *q = fe_imp_var_of(c, 0);
    if (!q) return false;
    fe_imp_value *sv = fe_imp_val(c, 1), *zv = fe_imp_val(c, 2);
    if (sv && !sv->is_const && sv->rank == 0 && (!zv || (!zv->is_const && zv->rank == 0))) {
        const char *st = fe_imp_var_of(c, 1), *zt = zv ? fe_imp_var_of(c, 2) : NULL;
        if (!st || (zv && !zt)) return false;
        return fe_imp_emit(c, out0(c),
                           zt ? fmt(c, "(%s - %s) * %s", q, zt, st) : fmt(c, "%s * %s", q, st));
    }
    if (!qdq_params(c, &s, &z, &lo, &hi)) return false;
    return fe_imp_emit(c, out0(c),
                       z != 0
                           ? fmt(c, "(%s - %s) * %s", q, fe_imp_number(e, z), fe_imp_number(e, s))
                           : fmt(c, "%s * %s", q, fe_imp_number(e, s)));
}

/* DynamicQuantizeLinear, as ONNX defines it: over the whole tensor,
 * scale = (max(x, 0) - min(x, 0)) / 255, zero point = rint(-min(x, 0) /
 * scale), codes = saturate(rint(x / scale) + zero point), as floats (the
 * roundings to even by adding and subtracting 1.5 * 2^23, exact in the
 * clipped ranges). */
static bool op_dynamic_quantize(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    const char *t = float_in(c);
    if (!t) return false;
    int p[3];
    for (int k = 0; k < 3; k++) p[k] = k < c->node->n_outputs ? fe_imp_out(&e->p, c->n, k) : -1;
    int sv = p[1] >= 0 && fe_imp_v(&e->p, p[1])->name ? p[1] : -1;
    int zv = p[2] >= 0 && fe_imp_v(&e->p, p[2])->name ? p[2] : -1;
    if (sv < 0 || zv < 0) return fe_imp_no(c, "its scale and zero point are not named");
    /* the scale and zero point first: the codes read them */
    const char *lo = fmt(c, "minimum(reduce_min(%s), 0.0)", t);
    if (!fe_imp_emit(c, sv, fmt(c, "(maximum(reduce_max(%s), 0.0) - %s) / 255.0", t, lo)))
        return false;
    const char *st = fe_imp_v(&e->p, sv)->text;
    if (!fe_imp_emit(c, zv,
                     fmt(c, "(clip((0.0 - %s) / %s, min=0.0, max=255.0) + 12582912.0) - 12582912.0",
                         lo, st)))
        return false;
    const char *zt = fe_imp_v(&e->p, zv)->text;
    return fe_imp_emit(c, p[0],
                       fmt(c,
                           "(minimum(maximum(%s / %s, 0.0 - %s), 255.0 - %s) + 12582912.0) - "
                           "12582912.0 + %s",
                           t, st, zt, zt, zt));
}

/* ReduceSum/Mean/Max/Min with constant axes (an attribute before opset 18,
 * ReduceSum's before 13; an input after). */
static bool op_reduce(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    const char *t = float_in(c), *op = c->node->op_type + 6;
    if (!t) return false;
    bool input = c->node->opset >= 18 || (!strcmp(op, "Sum") && c->node->opset >= 13);
    const fe_onnx_attr *aa = fe_onnx_attr_find(c->node, "axes");
    fe_imp_value *av = input ? fe_imp_val(c, 1) : NULL;
    const int64_t *axes = input ? (av ? fe_imp_const_i(&e->p, av) : NULL) : (aa ? aa->ints : NULL);
    int n = input ? (av ? (int)fe_imp_count(av) : 0) : (aa ? aa->n : 0);
    if (av && !axes) return fe_imp_no(c, "its axes are not constants");
    bool keep = fe_imp_attr_int(c->node, "keepdims", 1) != 0;
    if (n == 0 && fe_imp_attr_int(c->node, "noop_with_empty_axes", 0))
        return fe_imp_alias(c, out0(c), fe_imp_in_idx(c, 0));
    const char *args = n ? ", axes=[" : "";
    for (int k = 0; k < n; k++) args = fmt(c, "%s%s%lld", args, k ? ", " : "", (long long)axes[k]);
    args = fmt(c, "%s%s, keepdims=%s", args, n ? "]" : "", keep ? "true" : "false");
    /* the others as sums of something, then a function */
    static const char *const forms[][4] = {{"Sum", "reduce_sum", "%s", "%s"},
                                           {"Mean", "reduce_mean", "%s", "%s"},
                                           {"Max", "reduce_max", "%s", "%s"},
                                           {"Min", "reduce_min", "%s", "%s"},
                                           {"L1", "reduce_sum", "abs(%s)", "%s"},
                                           {"L2", "reduce_sum", "%s * %s", "sqrt(%s)"},
                                           {"SumSquare", "reduce_sum", "%s * %s", "%s"},
                                           {"LogSum", "reduce_sum", "%s", "log(%s)"},
                                           {"LogSumExp", "reduce_sum", "exp(%s)", "log(%s)"}};
    for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
        if (strcmp(op, forms[k][0]) != 0) continue;
        const char *arg =
            strstr(forms[k][2], "* %s") ? fmt(c, forms[k][2], t, t) : fmt(c, forms[k][2], t);
        return fe_imp_emit(c, out0(c),
                           fmt(c, forms[k][3], fmt(c, "%s(%s%s)", forms[k][1], arg, args)));
    }
    return fe_imp_no(c, "this reduction");
}

static bool op_log_softmax(fe_imp_node *c)
{
    fe_imp_value *x = fe_imp_val(c, 0);
    const char *t = float_in(c);
    if (!t) return false;
    int64_t axis = fe_imp_attr_int(c->node, "axis", c->node->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank) return fe_imp_no(c, "the axis is out of range");
    if (c->node->opset >= 13 || axis == x->rank - 1)
        return fe_imp_emit(c, out0(c), fmt(c, "log_softmax(%s, axis=%lld)", t, (long long)axis));
    int64_t d2[2] = {1, 1};
    for (int d = 0; d < x->rank; d++) d2[d >= axis] *= x->dims[d];
    return fe_imp_emit(c, out0(c),
                       fmt(c, "reshape(log_softmax(reshape(%s, %s)), %s)", t,
                           fe_imp_int_list_text(c->e, d2, 2),
                           fe_imp_int_list_text(c->e, x->dims, x->rank)));
}

static bool op_expand(fe_imp_node *c)
{
    fe_imp_value *x = fe_imp_val(c, 0), *o = fe_imp_v(&c->e->p, out0(c));
    if (x && fe_imp_same_dims(x, o)) return fe_imp_alias(c, out0(c), fe_imp_in_idx(c, 0));
    const char *t = fe_imp_var_of(c, 0);
    if (!t) return false;
    if (!fe_imp_is_f32(x) && !fe_imp_is_index(x) && !is_mask(x))
        return fe_imp_no(c, "only float, integer and bool tensors");
    return fe_imp_emit(c, out0(c),
                       fmt(c, "expand(%s, %s)", t, fe_imp_int_list_text(c->e, o->dims, o->rank)));
}

/* Trilu of a run-time matrix: where(mask, x, 0.0) with the mask of the
 * kept triangle a constant [rows, cols] weight made here. */
static bool op_trilu(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    fe_imp_value *x = fe_imp_val(c, 0), *kv = fe_imp_val(c, 1);
    const char *t = fe_imp_var_of(c, 0);
    if (!t) return false;
    if (!fe_imp_is_f32(x) || x->rank < 2) return fe_imp_no(c, "only float matrices at run time");
    double k = 0;
    if (kv && !fe_imp_const_scalar(&e->p, kv, &k)) return fe_imp_no(c, "its k is not a constant");
    int64_t rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1];
    if (rows * cols > FE_IMP_FOLD_MAX) return fe_imp_no(c, "its matrix is too large");
    bool upper = fe_imp_attr_int(c->node, "upper", 1) != 0;
    fe_imp_value *m = sup_arena_alloc(e->p.arena, sizeof *m);
    *m = (fe_imp_value){.name = fmt(c, "%s_mask", fe_imp_v(&e->p, out0(c))->name),
                        .dtype = FE_ONNX_FLOAT,
                        .rank = 2,
                        .dims = {rows, cols},
                        .producer = -1,
                        .is_const = true};
    m->f = sup_arena_alloc(e->p.arena, sizeof *m->f * (size_t)(rows * cols));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t col = 0; col < cols; col++)
            m->f[r * cols + col] = upper ? col - r >= (int64_t)k : col - r <= (int64_t)k;
    return fe_imp_emit(c, out0(c),
                       fmt(c, "where(%s, %s, 0.0)", fe_imp_weight(e, m, false, false), t));
}

/* Range and ConstantOfShape are evaluated when their inputs are constants;
 * otherwise their size depends on values the model computes. */
static bool op_sized(fe_imp_node *c)
{
    return fe_imp_no(c, "its size depends on values computed at run time");
}

/* Shape and Size are evaluated when their input's shape is known. */
static bool op_shape(fe_imp_node *c) { return fe_imp_no(c, "its input's shape is not known"); }

static bool op_relu(fe_imp_node *c) { return op_unary(c, "relu"); }
static bool op_tanh(fe_imp_node *c) { return op_unary(c, "tanh"); }

static bool op_gelu(fe_imp_node *c)
{
    const fe_onnx_attr *a = fe_onnx_attr_find(c->node, "approximate");
    if (a && a->type == FE_ONNX_ATTR_STRING && strcmp(a->s, "none") != 0)
        return fe_imp_no(c, "only the exact (erf) form");
    return op_unary(c, "gelu");
}

static bool op_neg(fe_imp_node *c)
{
    const char *x = float_in(c);
    return x && fe_imp_emit(c, out0(c), fmt(c, "-%s", x));
}

static bool op_reciprocal(fe_imp_node *c)
{
    const char *x = float_in(c);
    return x && fe_imp_emit(c, out0(c), fmt(c, "1.0 / %s", x));
}

static bool op_reshape(fe_imp_node *c)
{
    return fe_imp_reshape_to(c, out0(c), fe_imp_in_idx(c, 0));
}
static bool op_identity(fe_imp_node *c) { return fe_imp_alias(c, out0(c), fe_imp_in_idx(c, 0)); }

/* Dropout for inference: the input, and a mask of ones; training mode
 * (random) is refused. */
static bool op_dropout(fe_imp_node *c)
{
    fe_imp_value *mode = fe_imp_val(c, 2);
    double on = 0;
    if (mode && !(mode->is_const && fe_imp_const_scalar(&c->e->p, mode, &on)))
        return fe_imp_no(c, "its training mode is decided at run time");
    if (on != 0 ||
        (c->node->opset > 0 && c->node->opset < 7 && fe_imp_attr_int(c->node, "is_test", 0) == 0))
        return fe_imp_no(c, "training mode drops values at random");
    if (c->node->n_outputs > 1) {
        int mask = fe_imp_out(&c->e->p, c->n, 1);
        fe_imp_value *m = fe_imp_v(&c->e->p, mask);
        if (m->live &&
            !fe_imp_emit(c, mask,
                         fmt(c, "expand(1.0, %s)", fe_imp_int_list_text(c->e, m->dims, m->rank))))
            return false;
    }
    return op_identity(c);
}

/* MeanVarianceNormalization: (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9)
 * over `axes` (default 0, 2, 3), as ONNX's function body computes it. */
static bool op_mvn(fe_imp_node *c)
{
    const char *x = float_in(c), *axes = "0, 2, 3";
    const fe_onnx_attr *a = fe_onnx_attr_find(c->node, "axes");
    if (!x) return false;
    if (a && a->type == FE_ONNX_ATTR_INTS) {
        axes = "";
        for (int k = 0; k < a->n; k++)
            axes = fmt(c, "%s%s%lld", axes, k ? ", " : "", (long long)a->ints[k]);
    }
    const char *m = fmt(c, "reduce_mean(%s, axes=[%s], keepdims=true)", x, axes);
    return fe_imp_emit(
        c, out0(c),
        fmt(c,
            "(%s - %s) / (sqrt(reduce_mean(%s * %s, axes=[%s], keepdims=true) - %s * %s) + 1e-9)",
            x, m, x, x, axes, m, m));
}

static bool op_isnan(fe_imp_node *c)
{
    const char *x = float_in(c);
    return x && fe_imp_emit(c, out0(c), fmt(c, "1.0 - equal(%s, %s)", x, x));
}

static bool op_isinf(fe_imp_node *c)
{
    const char *x = float_in(c);
    bool pos = fe_imp_attr_int(c->node, "detect_positive", 1) != 0,
         neg = fe_imp_attr_int(c->node, "detect_negative", 1) != 0;
    if (!x) return false;
    const char *p = fmt(c, "greater(%s, 3.4028235e38)", x),
               *n = fmt(c, "less(%s, (-3.4028235e38))", x);
    return fe_imp_emit(c, out0(c),
                       pos && neg ? fmt(c, "%s + %s", p, n)
                       : pos      ? p
                       : neg      ? n
                                  : fmt(c, "%s * 0.0", p));
}

static bool op_prelu(fe_imp_node *c)
{
    fe_imp_value *o = fe_imp_v(&c->e->p, out0(c));
    const char *x = float_in(c),
               *slope = x ? fe_imp_operand(c, fe_imp_in_idx(c, 1), o->rank) : NULL;
    return x && slope &&
           fe_imp_emit(c, out0(c), fmt(c, "where(less(%s, 0.0), %s * %s, %s)", x, x, slope, x));
}

/* The operators translated one by one (others only inside patterns). */
static const struct {
    const char *op;
    bool (*fn)(fe_imp_node *c);
} translated[] = {
    {"Add", op_binary},
    {"Sub", op_binary},
    {"Mul", op_binary},
    {"Div", op_binary},
    {"Relu", op_relu},
    {"Tanh", op_tanh},
    {"Gelu", op_gelu},
    {"Neg", op_neg},
    {"Reciprocal", op_reciprocal},
    {"Pow", op_pow},
    {"Sigmoid", op_function},
    {"Exp", op_function},
    {"Log", op_function},
    {"Sqrt", op_function},
    {"Erf", op_function},
    {"Abs", op_function},
    {"Floor", op_function},
    {"Ceil", op_function},
    {"HardSwish", op_function},
    {"LeakyRelu", op_function},
    {"HardSigmoid", op_function},
    {"Elu", op_function},
    {"Selu", op_function},
    {"Celu", op_function},
    {"Softplus", op_function},
    {"Round", op_function},
    {"Softsign", op_function},
    {"ThresholdedRelu", op_function},
    {"Sign", op_function},
    {"Clip", op_clip},
    {"Max", op_variadic},
    {"Min", op_variadic},
    {"Sum", op_variadic},
    {"Mean", op_variadic},
    {"Equal", op_variadic},
    {"Less", op_variadic},
    {"LessOrEqual", op_variadic},
    {"Greater", op_variadic},
    {"GreaterOrEqual", op_variadic},
    {"And", op_variadic},
    {"Or", op_variadic},
    {"Xor", op_variadic},
    {"Not", op_not},
    {"Where", op_where},
    {"ReduceSum", op_reduce},
    {"ReduceMean", op_reduce},
    {"ReduceMax", op_reduce},
    {"ReduceMin", op_reduce},
    {"ReduceL1", op_reduce},
    {"ReduceL2", op_reduce},
    {"ReduceSumSquare", op_reduce},
    {"ReduceLogSum", op_reduce},
    {"ReduceLogSumExp", op_reduce},
    {"IsNaN", op_isnan},
    {"MeanVarianceNormalization", op_mvn},
    {"IsInf", op_isinf},
    {"PRelu", op_prelu},
    {"MatMul", op_matmul},
    {"Gemm", op_gemm},
    {"Softmax", op_softmax},
    {"LogSoftmax", op_log_softmax},
    {"LayerNormalization", op_layernorm},
    {"Gather", op_gather},
    {"Reshape", op_reshape},
    {"Flatten", op_reshape},
    {"Squeeze", op_reshape},
    {"Unsqueeze", op_reshape},
    {"Transpose", op_transpose},
    {"Concat", op_concat},
    {"Slice", op_slice},
    {"Split", op_split},
    {"Cast", op_cast},
    {"Identity", op_identity},
    {"Dropout", op_dropout},
    {"Expand", op_expand},
    {"Trilu", op_trilu},
    {"QuantizeLinear", op_quantize},
    {"DequantizeLinear", op_dequantize},
    {"DynamicQuantizeLinear", op_dynamic_quantize},
    {"Range", op_sized},
    {"ConstantOfShape", op_sized},
    {"Shape", op_shape},
    {"Size", op_shape},
};

static int translation(const fe_onnx_node *nd)
{
    if (*nd->domain) return -1;
    for (int i = 0; i < (int)(sizeof translated / sizeof translated[0]); i++)
        if (!strcmp(nd->op_type, translated[i].op)) return i;
    return -1;
}

bool fe_imp_known_op(const fe_onnx_node *nd)
{
    return translation(nd) >= 0 || fe_imp_cnn_op(nd) != NULL;
}

bool fe_imp_translate(fe_imp_node *c)
{
    const fe_onnx_node *nd = c->node;
    fe_imp_em *e = c->e;
    if (e->p.matches[c->n].kind != FE_IMP_PAT_NONE)
        return fe_imp_emit_match(c, &e->p.matches[c->n]);
    int t = translation(nd);
    if (t < 0 && !strcmp(nd->op_type, "MatMulNBits") && !strcmp(nd->domain, "com.microsoft"))
        return fe_imp_no(c, "only 4- or 8-bit codes, scales and zero points in initializers as "
                            "ONNX Runtime writes them, without g_idx");
    if (t < 0 && !*nd->domain && !strcmp(nd->op_type, "MatMulInteger"))
        return fe_imp_no(c, "only as DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul by the "
                            "scales, with constant weights");
    fe_imp_op_fn fn = t >= 0 ? translated[t].fn : fe_imp_cnn_op(nd);
    if (!fn) return false;
    fe_imp_value *o = fe_imp_v(&e->p, out0(c));
    if (o->rank < 0) {
        if (fn == op_sized || fn == op_shape) return fn(c);
        for (int k = 1; k < nd->n_inputs; k++)
            if (fe_imp_val(c, k) && !fe_imp_val(c, k)->is_const)
                return fe_imp_no(c, "its parameters are computed at run time, not constants");
        return fe_imp_no(c, "its result's shape is not known");
    }
    for (int d = 0; d < o->rank; d++)
        if (o->dims[d] == 0) return fe_imp_no(c, "its result is empty");
    return fn(c);
}
