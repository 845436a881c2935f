/* onnx_ops.c: single ONNX operators as statements of qmc's language.
 *
 * Needs: a live node whose operands are translated (onnx_import.c's
 * passes) and the statement writers of onnx_emit.c. Guarantees: a node is
 * either written as one statement computing exactly what ONNX defines, or
 * refused with the reason (why) qmc cannot express this use of it. */
#include <math.h>
#include <string.h>

#include "onnx_import.h"

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
    if (!v->is_const && fe_imp_is_f32(v) && v->rank == 1 && v->dims[0] == d) return v->text;
    return fe_imp_no_text(c, "the scale and bias must have the size of the last axis");
}

static bool op_layernorm(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    fe_imp_value *x = fe_imp_val(c, 0);
    const char *t = fe_imp_var_of(c, 0);
    if (!t) return false;
    for (int k = 1; k < c->node->n_outputs && k < 3; k++) {
        fe_imp_value *o = fe_imp_v(&e->p, fe_imp_out(&e->p, c->n, k));
        if (o->live) return fe_imp_no(c, "its Mean and InvStdDev outputs are used");
    }
    int64_t axis = fe_imp_attr_int(c->node, "axis", -1);
    if (!fe_imp_is_f32(x) || (axis != -1 && axis != x->rank - 1))
        return fe_imp_no(c, "only normalization over the last axis");
    int64_t d = x->dims[x->rank - 1];
    const char *w = norm_param(c, 1, d), *b;
    if (!w) return false;
    if (fe_imp_in_idx(c, 2) >= 0) {
        if (!(b = norm_param(c, 2, d))) return false;
    } else { /* the language's layernorm takes a bias: zeros */
        b = fe_imp_filled(e, c->n, d, 0, "bias");
    }
    const char *eps = fe_imp_number(e, fe_imp_attr_float(c->node, "epsilon", 1e-5f));
    return fe_imp_emit(c, fe_imp_out(&e->p, c->n, 0),
                       sup_arena_printf(e->p.arena, "layernorm(%s, %s, %s, eps=%s)", t, w, b, eps));
}

static bool op_gather(fe_imp_node *c)
{
    fe_imp_em *e = c->e;
    fe_imp_value *data = fe_imp_val(c, 0), *idx = fe_imp_val(c, 1);
    int out = fe_imp_out(&e->p, c->n, 0);
    int64_t axis = fe_imp_attr_int(c->node, "axis", 0);
    if (!data || !idx) return false;
    if (axis < 0) axis += data->rank;
    if (data->is_const && !idx->is_const) { /* a table lookup */
        if (axis != 0 || data->rank != 2 || !fe_imp_is_float(data->dtype) || !fe_imp_is_index(idx))
            return fe_imp_no(c, "only rows of a 2-D float table by run-time indices");
        const char *t = fe_imp_tensor(c, fe_imp_in_idx(c, 0));
        return t && idx->text &&
               fe_imp_emit(c, out, sup_arena_printf(e->p.arena, "embedding(%s, %s)", t, idx->text));
    }
    if (!data->is_const && idx->is_const && idx->rank <= 1) { /* consecutive indices: a slice */
        const int64_t *iv = fe_imp_const_i(&e->p, idx);
        int64_t n = fe_imp_count(idx), dim = data->dims[axis],
                first = iv && n ? (iv[0] < 0 ? iv[0] + dim : iv[0]) : -1;
        for (int64_t k = 0; iv && k < n; k++)
            if ((iv[k] < 0 ? iv[k] + dim : iv[k]) != first + k) iv = NULL;
        if (!iv || first < 0 || first + n > dim || n == 0)
            return fe_imp_no(c, "only consecutive constant indices");
        const char *s = sup_arena_printf(e->p.arena, "slice(%s, %lld, %lld, %lld)", data->text,
                                         (long long)axis, (long long)first, (long long)(first + n));
        fe_imp_value *o = fe_imp_v(&e->p, out);
        if (idx->rank == 0)
            s = sup_arena_printf(e->p.arena, "reshape(%s, %s)", s,
                                 fe_imp_int_list_text(e, o->dims, o->rank));
        return fe_imp_emit(c, out, s);
    }
    return fe_imp_no(
        c, "only a constant table with run-time indices, or consecutive constant indices");
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

static bool op_cast(fe_imp_node *c)
{
    fe_imp_value *x = fe_imp_val(c, 0), *o = fe_imp_v(&c->e->p, fe_imp_out(&c->e->p, c->n, 0));
    if ((fe_imp_is_f32(x) && fe_imp_is_f32(o)) || (fe_imp_is_index(x) && fe_imp_is_index(o)))
        return fe_imp_alias(c, fe_imp_out(&c->e->p, c->n, 0), fe_imp_in_idx(c, 0));
    return fe_imp_no(c,
                     "only casts between float types or between integer index types at run time");
}

static bool op_pow(fe_imp_node *c)
{
    double y;
    fe_imp_value *e = fe_imp_val(c, 1);
    const char *x = fe_imp_var_of(c, 0);
    if (!x) return false;
    if (!e || !fe_imp_const_scalar(&c->e->p, e, &y) || !fe_imp_is_f32(fe_imp_val(c, 0)))
        return fe_imp_no(c, "only constant exponents 1 and 2");
    if (y == 1) return fe_imp_alias(c, fe_imp_out(&c->e->p, c->n, 0), fe_imp_in_idx(c, 0));
    if (y == 2)
        return fe_imp_emit(c, fe_imp_out(&c->e->p, c->n, 0),
                           sup_arena_printf(c->e->p.arena, "%s * %s", x, x));
    return fe_imp_no(c, "only constant exponents 1 and 2");
}

/* The operators translated one by one (others only inside patterns). */
static const char *const translated[] = {
    "Add",    "Sub",        "Mul",     "Div",      "Relu",      "Tanh",      "Gelu",
    "Neg",    "Reciprocal", "Pow",     "MatMul",   "Gemm",      "Softmax",   "LayerNormalization",
    "Gather", "Reshape",    "Flatten", "Squeeze",  "Unsqueeze", "Transpose", "Concat",
    "Slice",  "Split",      "Cast",    "Identity", "Dropout",   "Expand",    NULL};

bool fe_imp_known_op(const fe_onnx_node *nd)
{
    return !*nd->domain && fe_imp_in_set(nd->op_type, translated);
}

bool fe_imp_translate(fe_imp_node *c)
{
    const fe_onnx_node *nd = c->node;
    const char *op = nd->op_type;
    fe_imp_em *e = c->e;
    int out = fe_imp_out(&e->p, c->n, 0);
    if (e->p.matches[c->n].kind != FE_IMP_PAT_NONE)
        return fe_imp_emit_match(c, &e->p.matches[c->n]);
    if (!fe_imp_known_op(nd)) return false;
    fe_imp_value *o = fe_imp_v(&e->p, out);
    if (o->rank < 0) {
        for (int k = 1; k < nd->n_inputs; k++)
            if (fe_imp_val(c, k) && !fe_imp_val(c, k)->is_const)
                return fe_imp_no(c, "its parameters are computed at run time, not constants");
        return fe_imp_no(c, "its result's shape is not known");
    }
    for (int d = 0; d < o->rank; d++)
        if (o->dims[d] == 0) return fe_imp_no(c, "its result is empty");
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div"))
        return op_binary(c);
    if (!strcmp(op, "Relu")) return op_unary(c, "relu");
    if (!strcmp(op, "Tanh")) return op_unary(c, "tanh");
    if (!strcmp(op, "Gelu")) {
        const fe_onnx_attr *a = fe_onnx_attr_find(nd, "approximate");
        if (a && a->type == FE_ONNX_ATTR_STRING && strcmp(a->s, "none") != 0)
            return fe_imp_no(c, "only the exact (erf) form");
        return op_unary(c, "gelu");
    }
    if (!strcmp(op, "Neg")) {
        const char *x = fe_imp_var_of(c, 0);
        return x && fe_imp_is_f32(fe_imp_val(c, 0)) &&
               fe_imp_emit(c, out, sup_arena_printf(e->p.arena, "-%s", x));
    }
    if (!strcmp(op, "Reciprocal")) {
        const char *x = fe_imp_var_of(c, 0);
        return x && fe_imp_is_f32(fe_imp_val(c, 0)) &&
               fe_imp_emit(c, out, sup_arena_printf(e->p.arena, "1.0 / %s", x));
    }
    if (!strcmp(op, "Pow")) return op_pow(c);
    if (!strcmp(op, "MatMul")) return op_matmul(c);
    if (!strcmp(op, "Gemm")) return op_gemm(c);
    if (!strcmp(op, "Softmax")) return op_softmax(c);
    if (!strcmp(op, "LayerNormalization")) return op_layernorm(c);
    if (!strcmp(op, "Gather")) return op_gather(c);
    if (!strcmp(op, "Reshape") || !strcmp(op, "Flatten") || !strcmp(op, "Squeeze") ||
        !strcmp(op, "Unsqueeze"))
        return fe_imp_reshape_to(c, out, fe_imp_in_idx(c, 0));
    if (!strcmp(op, "Transpose")) return op_transpose(c);
    if (!strcmp(op, "Concat")) return op_concat(c);
    if (!strcmp(op, "Slice")) return op_slice(c);
    if (!strcmp(op, "Split")) return op_split(c);
    if (!strcmp(op, "Cast")) return op_cast(c);
    if (!strcmp(op, "Identity")) return fe_imp_alias(c, out, fe_imp_in_idx(c, 0));
    if (!strcmp(op, "Dropout")) {
        if (nd->n_outputs > 1 && fe_imp_v(&e->p, fe_imp_out(&e->p, c->n, 1))->live)
            return fe_imp_no(c, "its mask output is used");
        return fe_imp_alias(c, out, fe_imp_in_idx(c, 0));
    }
    if (!strcmp(op, "Expand")) {
        fe_imp_value *x = fe_imp_val(c, 0);
        if (x && fe_imp_same_dims(x, o)) return fe_imp_alias(c, out, fe_imp_in_idx(c, 0));
        return fe_imp_no(c, "only when the shape does not change");
    }
    return false;
}
