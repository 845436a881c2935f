/* onnx_fold.c: types, shapes and constant values of an ONNX graph's values.
 *
 * Needs: the values of a node's inputs (types, shapes, constants) set by
 * the nodes before it, and graph inputs with static shapes.
 * Guarantees: after fe_imp_fold_node(n), each output of n has its element type
 * and shape when the operator is one qmc knows (rank at most 8), and is a
 * constant when all its inputs are constants or, for Shape and Size, when
 * the input's shape is known; what a model computes from shapes alone
 * (Shape -> Gather -> Concat -> Reshape, masks, ranges) is folded away
 * here. Constants of more than FE_IMP_FOLD_MAX elements are only ever viewed
 * (Identity, Cast, Reshape and the like, and 2-D Transpose), never copied,
 * so weights are not held twice. Unknown operators and malformed attributes
 * leave shapes unknown; the translation reports the node. */
#include <math.h>
#include <string.h>

#include "onnx_import.h"

/* ---- values ---------------------------------------------------------------- */

int fe_imp_find(const fe_imp *p, const char *name)
{
    if (!*name) return -1;
    int32_t *slot = fe_onnx_map_slot(p->arena, (fe_onnx_map *)&p->by_name, name, false);
    return slot ? *slot : -1;
}

int fe_imp_in(const fe_imp *p, int n, int k)
{
    const fe_onnx_node *nd = &p->m->nodes[n];
    return k < nd->n_inputs ? fe_imp_find(p, nd->inputs[k]) : -1;
}

bool fe_imp_is_float(int dtype)
{
    switch (dtype) {
    case FE_ONNX_FLOAT:
    case FE_ONNX_DOUBLE:
    case FE_ONNX_FLOAT16:
    case FE_ONNX_BFLOAT16:
    case FE_ONNX_FLOAT8E4M3FN:
    case FE_ONNX_FLOAT8E4M3FNUZ:
    case FE_ONNX_FLOAT8E5M2:
    case FE_ONNX_FLOAT8E5M2FNUZ: return true;
    default: return false;
    }
}

static bool is_numeric(int dtype)
{
    return dtype != FE_ONNX_STRING && dtype != FE_ONNX_COMPLEX64 && dtype != FE_ONNX_COMPLEX128 &&
           fe_onnx_dtype_name(dtype) != NULL;
}

int64_t fe_imp_count(const fe_imp_value *v)
{
    int64_t c = 1;
    for (int d = 0; d < v->rank; d++) c *= v->dims[d];
    return c;
}

/* Product of dims, false if negative, overflowing or past 2^40. */
static bool dims_count(int rank, const int64_t *dims, int64_t *out)
{
    int64_t c = 1;
    for (int d = 0; d < rank; d++)
        if (dims[d] < 0 || __builtin_mul_overflow(c, dims[d], &c) || c > ((int64_t)1 << 40))
            return false;
    *out = c;
    return true;
}

/* Rounds a number to what the dtype can hold (floats to f32 precision for
 * FLOAT and narrower; integers truncate as a cast does). */
static double round_to(int dtype, double x)
{
    if (dtype == FE_ONNX_DOUBLE) return x;
    return (double)(float)x;
}

static int64_t wrap_int(int dtype, int64_t x)
{
    switch (dtype) {
    case FE_ONNX_BOOL: return x != 0;
    case FE_ONNX_INT8: return (int8_t)x;
    case FE_ONNX_UINT8: return (uint8_t)x;
    case FE_ONNX_INT16: return (int16_t)x;
    case FE_ONNX_UINT16: return (uint16_t)x;
    case FE_ONNX_INT32: return (int32_t)x;
    case FE_ONNX_UINT32: return (uint32_t)x;
    default: return x;
    }
}

/* float -> integer as ONNX Cast does (truncation; out of range saturates here) */
static int64_t to_int(double x)
{
    if (isnan(x)) return 0;
    if (x >= 9.2233720368547758e18) return INT64_MAX;
    if (x <= -9.2233720368547758e18) return INT64_MIN;
    return (int64_t)x;
}

/* Element i of a tensor view, in the view's logical order. */
static double view_at(const fe_imp_value *v, int64_t i, bool *is_int, int64_t *iv)
{
    const fe_onnx_tensor *t = v->tensor;
    int64_t k = i;
    if (v->transposed) { /* logical [a, b] is the tensor's [b, a] */
        int64_t b = v->dims[1];
        k = (i % b) * v->dims[0] + i / b;
    }
    *is_int = !fe_imp_is_float(t->dtype);
    double x = 0;
    if (*is_int) {
        fe_onnx_tensor_get_int(t, k, iv);
        x = (double)*iv;
    } else {
        fe_onnx_tensor_get(t, k, &x);
        *iv = to_int(x);
    }
    return x;
}

double fe_imp_const_at(fe_imp *p, const fe_imp_value *v, int64_t i)
{
    (void)p;
    if (v->f) return v->f[i];
    if (v->i) return (double)v->i[i];
    bool is_int;
    int64_t iv;
    double x = view_at(v, i, &is_int, &iv);
    return fe_imp_is_float(v->dtype) ? round_to(v->dtype, x) : (double)wrap_int(v->dtype, iv);
}

/* Reads a view into f or i (by the value's dtype). */
static bool materialize(fe_imp *p, fe_imp_value *v)
{
    if (v->f || v->i) return true;
    if (!v->is_const || !v->tensor || !is_numeric(v->dtype) || !is_numeric(v->tensor->dtype))
        return false;
    int64_t n = fe_imp_count(v);
    if (n > FE_IMP_FOLD_MAX || n > p->budget) return false;
    p->budget -= n;
    if (fe_imp_is_float(v->dtype)) {
        double *f = sup_arena_alloc(p->arena, sizeof *f * (size_t)(n + 1));
        for (int64_t k = 0; k < n; k++) f[k] = fe_imp_const_at(p, v, k);
        v->f = f;
    } else {
        int64_t *o = sup_arena_alloc(p->arena, sizeof *o * (size_t)(n + 1));
        for (int64_t k = 0; k < n; k++) {
            bool is_int;
            int64_t iv;
            view_at(v, k, &is_int, &iv);
            o[k] = wrap_int(v->dtype, iv);
        }
        v->i = o;
    }
    return true;
}

const double *fe_imp_const_f(fe_imp *p, fe_imp_value *v)
{
    if (!fe_imp_is_float(v->dtype) || !materialize(p, v)) return NULL;
    return v->f;
}

const int64_t *fe_imp_const_i(fe_imp *p, fe_imp_value *v)
{
    if (fe_imp_is_float(v->dtype) || !materialize(p, v)) return NULL;
    return v->i;
}

bool fe_imp_const_scalar(fe_imp *p, fe_imp_value *v, double *out)
{
    if (!v->is_const || v->rank < 0 || fe_imp_count(v) != 1 || !is_numeric(v->dtype)) return false;
    *out = fe_imp_const_at(p, v, 0);
    return true;
}

/* ---- the node context -------------------------------------------------------- */

typedef struct ctx {
    fe_imp *p;
    int n;
    const fe_onnx_node *node;
    int n_in;
    fe_imp_value **in; /* NULL for an absent input */
    fe_imp_value *out; /* output 0 */
    bool known;        /* every present input has a known shape */
    bool consts;       /* every present input is a constant */
} ctx;

static fe_imp_value *in(const ctx *c, int k) { return k < c->n_in ? c->in[k] : NULL; }

static int64_t attr_int(const ctx *c, const char *name, int64_t dflt)
{
    const fe_onnx_attr *a = fe_onnx_attr_find(c->node, name);
    return a && a->type == FE_ONNX_ATTR_INT ? a->i : dflt;
}

/* An int list from attribute `name` or, when absent, from constant input
 * k (k < 0: none). *n = -1 when neither is given; false if the input is
 * given but not a constant, or the list is too long. */
static bool int_list(ctx *c, const char *name, int k, int64_t *out, int *n, int max)
{
    const fe_onnx_attr *a = name ? fe_onnx_attr_find(c->node, name) : NULL;
    *n = -1;
    if (a && a->type == FE_ONNX_ATTR_INTS) {
        if (a->n > max) return false;
        if (a->n) memcpy(out, a->ints, sizeof *out * (size_t)a->n);
        *n = a->n;
        return true;
    }
    fe_imp_value *v = k >= 0 ? in(c, k) : NULL;
    if (!v) return true;
    if (!v->is_const || v->rank > 1 || fe_imp_count(v) > max || fe_imp_is_float(v->dtype))
        return false;
    const int64_t *x = fe_imp_const_i(c->p, v);
    if (!x) return false;
    *n = (int)fe_imp_count(v);
    if (*n) memcpy(out, x, sizeof *out * (size_t)*n);
    return true;
}

static bool norm_axis(int64_t axis, int rank, int *out)
{
    if (axis < -rank || axis >= rank) return false;
    *out = (int)(axis < 0 ? axis + rank : axis);
    return true;
}

static bool set_shape(fe_imp_value *v, int dtype, int rank, const int64_t *dims)
{
    int64_t count;
    if (rank < 0 || rank > FE_IMP_MAX_RANK || !dims_count(rank, dims, &count)) return false;
    v->dtype = dtype;
    v->rank = rank;
    if (rank) memmove(v->dims, dims, sizeof *dims * (size_t)rank);
    return true;
}

/* Gives out (already shaped) room for its elements; false if too large. */
static bool alloc_const(fe_imp *p, fe_imp_value *v)
{
    int64_t n = fe_imp_count(v);
    if (n > FE_IMP_FOLD_MAX || n > p->budget || !is_numeric(v->dtype)) return false;
    p->budget -= n;
    if (fe_imp_is_float(v->dtype))
        v->f = sup_arena_alloc(p->arena, sizeof *v->f * (size_t)(n + 1));
    else
        v->i = sup_arena_alloc(p->arena, sizeof *v->i * (size_t)(n + 1));
    v->is_const = true;
    return true;
}

/* Copies element k of a (materialized) constant to element j of out (same dtype). */
static void copy_elem(fe_imp_value *out, int64_t j, const fe_imp_value *a, int64_t k)
{
    if (out->f)
        out->f[j] = a->f[k];
    else
        out->i[j] = a->i[k];
}

/* A view of a constant with new dims (same elements, same order). */
static void view_of(fe_imp_value *out, const fe_imp_value *a, int dtype)
{
    out->is_const = true;
    out->tensor = a->tensor;
    out->transposed = a->transposed;
    out->f = a->f;
    out->i = a->i;
    if (dtype != a->dtype) { /* a cast: computed values are converted again */
        out->f = NULL, out->i = NULL;
    }
}

/* ---- broadcasting ------------------------------------------------------------ */

static bool broadcast(fe_imp_value *const *vs, int n, int *rank, int64_t *dims)
{
    int r = 0;
    for (int i = 0; i < n; i++)
        if (vs[i]->rank > r) r = vs[i]->rank;
    for (int d = 0; d < r; d++) {
        int64_t o = 1;
        for (int i = 0; i < n; i++) {
            int k = d - (r - vs[i]->rank);
            int64_t x = k >= 0 ? vs[i]->dims[k] : 1;
            if (x == 1) continue;
            if (o != 1 && o != x) return false;
            o = x;
        }
        dims[d] = o;
    }
    *rank = r;
    return true;
}

/* Index into v of the broadcast element at coordinates co (of rank r). */
static int64_t bcast_index(const fe_imp_value *v, int r, const int64_t *co)
{
    int64_t idx = 0;
    for (int d = 0; d < v->rank; d++) {
        int64_t x = co[d + r - v->rank];
        idx = idx * v->dims[d] + (v->dims[d] == 1 ? 0 : x);
    }
    return idx;
}

static void next_coord(int r, const int64_t *dims, int64_t *co)
{
    for (int d = r - 1; d >= 0; d--) {
        if (++co[d] < dims[d]) return;
        co[d] = 0;
    }
}

/* ---- elementwise operators ------------------------------------------------------ */

typedef enum ew_kind { EW_ARITH, EW_COMPARE, EW_LOGIC } ew_kind;

#define OP(name) (strcmp(op, name) == 0)

/* a op b (or op a) on numbers; comparisons and logic give 0 or 1 */
static bool ew_float(const char *op, double a, double b, double *r)
{
    if (OP("Add"))
        *r = a + b;
    else if (OP("Sub"))
        *r = a - b;
    else if (OP("Mul"))
        *r = a * b;
    else if (OP("Div"))
        *r = a / b;
    else if (OP("Pow"))
        *r = pow(a, b);
    else if (OP("Max"))
        *r = a > b ? a : b;
    else if (OP("Min"))
        *r = a < b ? a : b;
    else if (OP("Equal"))
        *r = a == b;
    else if (OP("Less"))
        *r = a < b;
    else if (OP("Greater"))
        *r = a > b;
    else if (OP("LessOrEqual"))
        *r = a <= b;
    else if (OP("GreaterOrEqual"))
        *r = a >= b;
    else if (OP("Neg"))
        *r = -a;
    else if (OP("Abs"))
        *r = fabs(a);
    else if (OP("Sign"))
        *r = (a > 0) - (a < 0);
    else if (OP("Sqrt"))
        *r = sqrt(a);
    else if (OP("Exp"))
        *r = exp(a);
    else if (OP("Log"))
        *r = log(a);
    else if (OP("Reciprocal"))
        *r = 1 / a;
    else if (OP("Floor"))
        *r = floor(a);
    else if (OP("Ceil"))
        *r = ceil(a);
    else if (OP("Round"))
        *r = nearbyint(a);
    else if (OP("Erf"))
        *r = erf(a);
    else if (OP("Relu"))
        *r = a > 0 ? a : 0;
    else if (OP("Sigmoid"))
        *r = 1 / (1 + exp(-a));
    else if (OP("Tanh"))
        *r = tanh(a);
    else if (OP("Sin"))
        *r = sin(a);
    else if (OP("Cos"))
        *r = cos(a);
    else
        return false;
    return true;
}

/* The same on integers and booleans (wrapping like two's complement). */
static bool ew_int(const char *op, int64_t a, int64_t b, int64_t *r)
{
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    if (OP("Add"))
        *r = (int64_t)(ua + ub);
    else if (OP("Sub"))
        *r = (int64_t)(ua - ub);
    else if (OP("Mul"))
        *r = (int64_t)(ua * ub);
    else if (OP("Div") || OP("Mod")) {
        if (b == 0 || (a == INT64_MIN && b == -1)) return false;
        int64_t m = a % b; /* Mod with fmod=0 takes the divisor's sign */
        if (m != 0 && (m < 0) != (b < 0)) m += b;
        *r = OP("Div") ? a / b : m;
    } else if (OP("Max"))
        *r = a > b ? a : b;
    else if (OP("Min"))
        *r = a < b ? a : b;
    else if (OP("Equal"))
        *r = a == b;
    else if (OP("Less"))
        *r = a < b;
    else if (OP("Greater"))
        *r = a > b;
    else if (OP("LessOrEqual"))
        *r = a <= b;
    else if (OP("GreaterOrEqual"))
        *r = a >= b;
    else if (OP("And"))
        *r = a && b;
    else if (OP("Or"))
        *r = a || b;
    else if (OP("Xor"))
        *r = (a != 0) != (b != 0);
    else if (OP("Not"))
        *r = !a;
    else if (OP("Neg"))
        *r = (int64_t)(0 - ua);
    else if (OP("Abs"))
        *r = a < 0 ? (int64_t)(0 - ua) : a;
    else if (OP("Sign"))
        *r = (a > 0) - (a < 0);
    else
        return false;
    return true;
}
#undef OP

static const char *const unary_ops[] = {
    "Neg", "Abs", "Sign", "Sqrt", "Exp", "Log", "Reciprocal", "Floor", "Ceil", "Round", "Erf",
    "Relu", "Sigmoid", "Tanh", "Sin", "Cos", "Not",
    /* shape only */
    "Gelu", "LeakyRelu", "Elu", "Selu", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Mish",
    "ThresholdedRelu", "Celu", "IsNaN", "IsInf", "Softmax", "LogSoftmax", "Hardmax", "Clip",
    "CumSum", "LpNormalization", "Shrink", "MeanVarianceNormalization", NULL};
static const char *const binary_ops[] = {"Add",
                                         "Sub",
                                         "Mul",
                                         "Div",
                                         "Mod",
                                         "Pow",
                                         "Max",
                                         "Min",
                                         "Equal",
                                         "Less",
                                         "Greater",
                                         "LessOrEqual",
                                         "GreaterOrEqual",
                                         "And",
                                         "Or",
                                         "Xor",
                                         "Sum",
                                         "Mean",
                                         "PRelu",
                                         "BitShift",
                                         NULL};

static bool in_list(const char *s, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0) return true;
    return false;
}

static int result_dtype(const char *op, int dtype)
{
    static const char *const cmp[] = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
                                      "And",   "Or",   "Xor",     "Not",         "IsNaN",
                                      "IsInf", NULL};
    return in_list(op, cmp) ? FE_ONNX_BOOL : dtype;
}

static void op_elementwise(ctx *c)
{
    const char *op = c->node->op_type;
    fe_imp_value *xs[16];
    int nx = 0;
    int limit = strcmp(op, "Clip") == 0 || strcmp(op, "CumSum") == 0 ? 1 : 16;
    for (int k = 0; k < c->n_in && nx < limit; k++)
        if (c->in[k]) xs[nx++] = c->in[k];
    if (nx == 0 || nx > 16) return;
    int rank;
    int64_t dims[FE_IMP_MAX_RANK];
    if (!broadcast(xs, nx, &rank, dims)) return;
    int dtype = result_dtype(op, xs[0]->dtype);
    if (!set_shape(c->out, dtype, rank, dims)) return;
    bool foldable = in_list(op, unary_ops)
                        ? nx == 1
                        : nx == 2 || strcmp(op, "Max") == 0 || strcmp(op, "Min") == 0;
    if (!c->consts || !foldable || !is_numeric(xs[0]->dtype)) return;
    for (int k = 0; k < nx; k++)
        if (!materialize(c->p, xs[k])) return;
    fe_imp_value tmp = *c->out;
    if (!alloc_const(c->p, &tmp)) return;
    bool fl = fe_imp_is_float(xs[0]->dtype);
    int64_t co[FE_IMP_MAX_RANK] = {0}, total = fe_imp_count(&tmp);
    for (int64_t j = 0; j < total; j++, next_coord(rank, dims, co)) {
        double f = 0, fv;
        int64_t i = 0, iv;
        for (int k = 0; k < nx; k++) { /* variadic Max and Min fold pairwise */
            int64_t idx = bcast_index(xs[k], rank, co);
            fv = xs[k]->f ? xs[k]->f[idx] : (double)xs[k]->i[idx];
            iv = xs[k]->i ? xs[k]->i[idx] : to_int(fv);
            if (k == 0 && nx > 1) {
                f = fv, i = iv;
                continue;
            }
            bool ok =
                fl ? ew_float(op, nx == 1 ? fv : f, fv, &f) : ew_int(op, nx == 1 ? iv : i, iv, &i);
            if (!ok) return;
        }
        if (tmp.f)
            tmp.f[j] = round_to(dtype, f);
        else
            tmp.i[j] = wrap_int(dtype, fl ? to_int(f) : i);
    }
    *c->out = tmp;
}

static void op_where(ctx *c)
{
    fe_imp_value *xs[3] = {in(c, 0), in(c, 1), in(c, 2)};
    if (!xs[0] || !xs[1] || !xs[2]) return;
    int rank;
    int64_t dims[FE_IMP_MAX_RANK];
    if (!broadcast(xs, 3, &rank, dims) || !set_shape(c->out, xs[1]->dtype, rank, dims)) return;
    if (!c->consts || !materialize(c->p, xs[0]) || !materialize(c->p, xs[1]) ||
        !materialize(c->p, xs[2]))
        return;
    if (xs[1]->dtype != xs[2]->dtype || !xs[0]->i) return;
    fe_imp_value tmp = *c->out;
    if (!alloc_const(c->p, &tmp)) return;
    int64_t co[FE_IMP_MAX_RANK] = {0}, total = fe_imp_count(&tmp);
    for (int64_t j = 0; j < total; j++, next_coord(rank, dims, co)) {
        const fe_imp_value *src = xs[0]->i[bcast_index(xs[0], rank, co)] ? xs[1] : xs[2];
        copy_elem(&tmp, j, src, bcast_index(src, rank, co));
    }
    *c->out = tmp;
}

static void op_cast(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    int64_t to = attr_int(c, "to", 0);
    if (!x || !fe_onnx_dtype_name((int)to) || !set_shape(c->out, (int)to, x->rank, x->dims)) return;
    if (!c->consts || !is_numeric((int)to) || !is_numeric(x->dtype)) return;
    if (x->tensor && !x->f && !x->i) { /* a view converts when read */
        view_of(c->out, x, (int)to);
        return;
    }
    fe_imp_value tmp = *c->out;
    if (!alloc_const(c->p, &tmp)) return;
    for (int64_t j = 0; j < fe_imp_count(&tmp); j++) {
        if (tmp.f)
            tmp.f[j] = round_to((int)to, x->f ? x->f[j] : (double)x->i[j]);
        else
            tmp.i[j] = wrap_int((int)to, x->i ? x->i[j] : to_int(x->f[j]));
    }
    *c->out = tmp;
}

/* ---- shapes and layouts ------------------------------------------------------------ */

static void op_identity(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    if (!x || !set_shape(c->out, x->dtype, x->rank, x->dims)) return;
    if (c->consts) view_of(c->out, x, x->dtype);
    if (strcmp(c->node->op_type, "Dropout") == 0 && c->node->n_outputs > 1) {
        fe_imp_value *mask = fe_imp_v(c->p, fe_imp_out(c->p, c->n, 1));
        if (mask->name) set_shape(mask, FE_ONNX_BOOL, x->rank, x->dims);
    }
}

static void op_shape(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    if (!x || x->rank < 0) return;
    int64_t r = x->rank, start = attr_int(c, "start", 0), end = attr_int(c, "end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < 0 ? 0 : end > r ? r : end;
    int64_t n = end > start ? end - start : 0;
    if (!set_shape(c->out, FE_ONNX_INT64, 1, &n) || !alloc_const(c->p, c->out)) return;
    for (int64_t k = 0; k < n; k++) c->out->i[k] = x->dims[start + k];
}

static void op_size(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    if (!x || x->rank < 0 || !set_shape(c->out, FE_ONNX_INT64, 0, NULL) ||
        !alloc_const(c->p, c->out))
        return;
    c->out->i[0] = fe_imp_count(x);
}

/* Output dims computed, same elements in the same order. */
static void reshaped(ctx *c, fe_imp_value *x, int rank, const int64_t *dims)
{
    int64_t count;
    if (!dims_count(rank, dims, &count) || count != fe_imp_count(x)) return;
    if (!set_shape(c->out, x->dtype, rank, dims)) return;
    if (c->consts && x->is_const && !x->transposed)
        view_of(c->out, x, x->dtype);
    else if (c->consts && x->is_const && materialize(c->p, x)) {
        view_of(c->out, x, x->dtype);
        c->out->tensor = NULL, c->out->transposed = false;
    }
}

static void op_reshape(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    int64_t shape[FE_IMP_MAX_RANK];
    int n;
    if (!x || x->rank < 0 || !int_list(c, NULL, 1, shape, &n, FE_IMP_MAX_RANK) || n < 0) return;
    bool allowzero = attr_int(c, "allowzero", 0) != 0;
    int infer = -1;
    int64_t known = 1;
    for (int d = 0; d < n; d++) {
        if (shape[d] == 0 && !allowzero) {
            if (d >= x->rank) return;
            shape[d] = x->dims[d];
        }
        if (shape[d] == -1) {
            if (infer >= 0) return;
            infer = d;
            continue;
        }
        if (shape[d] < 0 || __builtin_mul_overflow(known, shape[d], &known)) return;
    }
    if (infer >= 0) {
        if (known == 0 || fe_imp_count(x) % known) return;
        shape[infer] = fe_imp_count(x) / known;
    }
    reshaped(c, x, n, shape);
}

static void op_flatten(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    if (!x || x->rank < 0) return;
    int64_t axis = attr_int(c, "axis", 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis > x->rank) return;
    int64_t dims[2] = {1, 1};
    for (int d = 0; d < x->rank; d++) dims[d >= axis] *= x->dims[d];
    reshaped(c, x, 2, dims);
}

static void op_squeeze(ctx *c, bool un)
{
    fe_imp_value *x = in(c, 0);
    int64_t axes[FE_IMP_MAX_RANK * 2];
    int n;
    if (!x || x->rank < 0 || !int_list(c, "axes", 1, axes, &n, FE_IMP_MAX_RANK * 2)) return;
    int64_t dims[FE_IMP_MAX_RANK];
    int rank = 0;
    if (un) {
        if (n < 0) return;
        int out_rank = x->rank + n, src = 0;
        if (out_rank > FE_IMP_MAX_RANK) return;
        bool mark[FE_IMP_MAX_RANK] = {0};
        for (int k = 0; k < n; k++) {
            int a;
            if (!norm_axis(axes[k], out_rank, &a) || mark[a]) return;
            mark[a] = true;
        }
        for (int d = 0; d < out_rank; d++) dims[rank++] = mark[d] ? 1 : x->dims[src++];
    } else {
        bool mark[FE_IMP_MAX_RANK] = {0};
        for (int k = 0; k < n; k++) {
            int a;
            if (!norm_axis(axes[k], x->rank, &a) || x->dims[a] != 1) return;
            mark[a] = true;
        }
        for (int d = 0; d < x->rank; d++)
            if (!(n < 0 ? x->dims[d] == 1 : mark[d])) dims[rank++] = x->dims[d];
    }
    reshaped(c, x, rank, dims);
}

static void op_transpose(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    if (!x || x->rank < 0) return;
    int64_t perm[FE_IMP_MAX_RANK];
    int n;
    if (!int_list(c, "perm", -1, perm, &n, FE_IMP_MAX_RANK)) return;
    if (n < 0) {
        n = x->rank;
        for (int d = 0; d < n; d++) perm[d] = n - 1 - d;
    }
    if (n != x->rank) return;
    int64_t dims[FE_IMP_MAX_RANK];
    bool seen[FE_IMP_MAX_RANK] = {0};
    for (int d = 0; d < n; d++) {
        int a;
        if (!norm_axis(perm[d], n, &a) || seen[a]) return;
        seen[a] = true;
        perm[d] = a;
        dims[d] = x->dims[a];
    }
    if (!set_shape(c->out, x->dtype, n, dims) || !c->consts) return;
    if (n == 2 && perm[0] == 1 && x->tensor && !x->f && !x->i) { /* a 2-D view flips */
        view_of(c->out, x, x->dtype);
        c->out->transposed = !x->transposed;
        return;
    }
    if (!materialize(c->p, x)) return;
    fe_imp_value tmp = *c->out;
    if (!alloc_const(c->p, &tmp)) return;
    int64_t co[FE_IMP_MAX_RANK] = {0}, strides[FE_IMP_MAX_RANK], s = 1;
    for (int d = n - 1; d >= 0; d--) strides[d] = s, s *= x->dims[d];
    for (int64_t j = 0; j < fe_imp_count(&tmp); j++, next_coord(n, dims, co)) {
        int64_t k = 0;
        for (int d = 0; d < n; d++) k += co[d] * strides[perm[d]];
        copy_elem(&tmp, j, x, k);
    }
    *c->out = tmp;
}

static void op_concat(ctx *c)
{
    fe_imp_value *x0 = in(c, 0);
    if (!x0 || x0->rank < 0 || c->n_in < 1) return;
    int axis;
    if (!norm_axis(attr_int(c, "axis", 0), x0->rank, &axis)) return;
    int64_t dims[FE_IMP_MAX_RANK];
    memcpy(dims, x0->dims, sizeof dims);
    dims[axis] = 0;
    for (int k = 0; k < c->n_in; k++) {
        fe_imp_value *x = c->in[k];
        if (!x || x->rank != x0->rank || x->dtype != x0->dtype) return;
        for (int d = 0; d < x->rank; d++)
            if (d != axis && x->dims[d] != x0->dims[d]) return;
        dims[axis] += x->dims[axis];
    }
    if (!set_shape(c->out, x0->dtype, x0->rank, dims) || !c->consts) return;
    for (int k = 0; k < c->n_in; k++)
        if (!materialize(c->p, c->in[k])) return;
    fe_imp_value tmp = *c->out;
    if (!alloc_const(c->p, &tmp)) return;
    if (fe_imp_count(&tmp) == 0) { /* dims around the axis may be huge: do not loop over them */
        *c->out = tmp;
        return;
    }
    int64_t outer = 1, inner = 1, j = 0;
    for (int d = 0; d < axis; d++) outer *= dims[d];
    for (int d = axis + 1; d < x0->rank; d++) inner *= dims[d];
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < c->n_in; k++) {
            int64_t len = c->in[k]->dims[axis] * inner;
            for (int64_t e = 0; e < len; e++) copy_elem(&tmp, j++, c->in[k], o * len + e);
        }
    *c->out = tmp;
}

static void op_gather(ctx *c)
{
    fe_imp_value *x = in(c, 0), *ix = in(c, 1);
    if (!x || !ix || x->rank < 0 || ix->rank < 0) return;
    int axis;
    if (!norm_axis(attr_int(c, "axis", 0), x->rank, &axis)) return;
    int64_t dims[FE_IMP_MAX_RANK];
    int rank = 0;
    if (x->rank - 1 + ix->rank > FE_IMP_MAX_RANK) return;
    for (int d = 0; d < axis; d++) dims[rank++] = x->dims[d];
    for (int d = 0; d < ix->rank; d++) dims[rank++] = ix->dims[d];
    for (int d = axis + 1; d < x->rank; d++) dims[rank++] = x->dims[d];
    if (!set_shape(c->out, x->dtype, rank, dims) || !c->consts) return;
    if (!materialize(c->p, x) || !materialize(c->p, ix) || !ix->i) return;
    fe_imp_value tmp = *c->out;
    if (!alloc_const(c->p, &tmp)) return;
    if (fe_imp_count(&tmp) == 0) {
        *c->out = tmp;
        return;
    }
    int64_t outer = 1, inner = 1, n_idx = fe_imp_count(ix), len = x->dims[axis], j = 0;
    for (int d = 0; d < axis; d++) outer *= x->dims[d];
    for (int d = axis + 1; d < x->rank; d++) inner *= x->dims[d];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < n_idx; k++) {
            int64_t i = ix->i[k] < 0 ? ix->i[k] + len : ix->i[k];
            if (i < 0 || i >= len) {
                c->out->is_const = false;
                return;
            }
            for (int64_t e = 0; e < inner; e++) copy_elem(&tmp, j++, x, (o * len + i) * inner + e);
        }
    *c->out = tmp;
}

/* Slice's starts/ends/axes/steps (inputs from opset 10, attributes before). */
typedef struct slice_spec {
    int n;
    int axis[FE_IMP_MAX_RANK];
    int64_t start[FE_IMP_MAX_RANK], end[FE_IMP_MAX_RANK], step[FE_IMP_MAX_RANK];
} slice_spec;

static bool slice_params(ctx *c, const fe_imp_value *x, slice_spec *s, int64_t *dims)
{
    int64_t starts[FE_IMP_MAX_RANK], ends[FE_IMP_MAX_RANK], axes[FE_IMP_MAX_RANK],
        steps[FE_IMP_MAX_RANK];
    int ns, ne, na, nt;
    bool attrs = c->node->opset > 0 && c->node->opset < 10;
    if (!int_list(c, attrs ? "starts" : NULL, attrs ? -1 : 1, starts, &ns, FE_IMP_MAX_RANK) ||
        !int_list(c, attrs ? "ends" : NULL, attrs ? -1 : 2, ends, &ne, FE_IMP_MAX_RANK) ||
        !int_list(c, attrs ? "axes" : NULL, attrs ? -1 : 3, axes, &na, FE_IMP_MAX_RANK) ||
        !int_list(c, NULL, attrs ? -1 : 4, steps, &nt, FE_IMP_MAX_RANK))
        return false;
    if (ns < 0 || ns != ne || (na >= 0 && na != ns) || (nt >= 0 && nt != ns)) return false;
    memcpy(dims, x->dims, sizeof *dims * (size_t)x->rank);
    bool seen[FE_IMP_MAX_RANK] = {0};
    s->n = ns;
    for (int k = 0; k < ns; k++) {
        int a;
        if (!norm_axis(na >= 0 ? axes[k] : k, x->rank, &a) || seen[a]) return false;
        seen[a] = true;
        int64_t step = nt >= 0 ? steps[k] : 1, dim = x->dims[a], b = starts[k], e = ends[k];
        if (step == 0) return false;
        /* numpy's clamping, as ONNX specifies it */
        if (b < 0) b = b < -dim ? 0 : b + dim;
        if (e < 0) e = e < -dim ? -1 : e + dim;
        if (step > 0) {
            b = b > dim ? dim : b;
            e = e > dim ? dim : e < 0 ? 0 : e;
        } else {
            b = b > dim - 1 ? dim - 1 : b;
            e = e > dim - 1 ? dim - 1 : e;
        }
        int64_t len = step > 0 ? (e > b ? (e - b + step - 1) / step : 0)
                               : (b > e ? (b - e - step - 1) / -step : 0);
        s->axis[k] = a, s->start[k] = b, s->end[k] = e, s->step[k] = step;
        dims[a] = len;
    }
    return true;
}

static void op_slice(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    slice_spec s;
    int64_t dims[FE_IMP_MAX_RANK];
    if (!x || x->rank < 0 || !slice_params(c, x, &s, dims)) return;
    if (!set_shape(c->out, x->dtype, x->rank, dims) || !c->consts || !materialize(c->p, x)) return;
    fe_imp_value tmp = *c->out;
    if (!alloc_const(c->p, &tmp)) return;
    int64_t start[FE_IMP_MAX_RANK] = {0}, step[FE_IMP_MAX_RANK], strides[FE_IMP_MAX_RANK], st = 1;
    for (int d = 0; d < x->rank; d++) step[d] = 1;
    for (int k = 0; k < s.n; k++) start[s.axis[k]] = s.start[k], step[s.axis[k]] = s.step[k];
    for (int d = x->rank - 1; d >= 0; d--) strides[d] = st, st *= x->dims[d];
    int64_t co[FE_IMP_MAX_RANK] = {0};
    for (int64_t j = 0; j < fe_imp_count(&tmp); j++, next_coord(x->rank, dims, co)) {
        int64_t k = 0;
        for (int d = 0; d < x->rank; d++) k += (start[d] + co[d] * step[d]) * strides[d];
        copy_elem(&tmp, j, x, k);
    }
    *c->out = tmp;
}

static void op_expand(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    int64_t shape[FE_IMP_MAX_RANK];
    int n;
    if (!x || x->rank < 0 || !int_list(c, NULL, 1, shape, &n, FE_IMP_MAX_RANK) || n < 0) return;
    fe_imp_value s = {.rank = n};
    memcpy(s.dims, shape, sizeof *shape * (size_t)n);
    fe_imp_value *xs[2] = {x, &s};
    int rank;
    int64_t dims[FE_IMP_MAX_RANK];
    if (!broadcast(xs, 2, &rank, dims) || !set_shape(c->out, x->dtype, rank, dims)) return;
    if (!c->consts || !materialize(c->p, x)) return;
    fe_imp_value tmp = *c->out;
    if (!alloc_const(c->p, &tmp)) return;
    int64_t co[FE_IMP_MAX_RANK] = {0};
    for (int64_t j = 0; j < fe_imp_count(&tmp); j++, next_coord(rank, dims, co))
        copy_elem(&tmp, j, x, bcast_index(x, rank, co));
    *c->out = tmp;
}

static void op_constant_of_shape(ctx *c)
{
    int64_t shape[FE_IMP_MAX_RANK];
    int n;
    if (!int_list(c, NULL, 0, shape, &n, FE_IMP_MAX_RANK) || n < 0) return;
    const fe_onnx_attr *a = fe_onnx_attr_find(c->node, "value");
    const fe_onnx_tensor *t = a && a->type == FE_ONNX_ATTR_TENSOR ? a->t : NULL;
    int dtype = t ? t->dtype : FE_ONNX_FLOAT;
    if (t && t->count != 1) return;
    if (!set_shape(c->out, dtype, n, shape) || !alloc_const(c->p, c->out)) return;
    double f = 0;
    int64_t i = 0;
    if (t && fe_imp_is_float(dtype)) fe_onnx_tensor_get(t, 0, &f);
    if (t && !fe_imp_is_float(dtype)) fe_onnx_tensor_get_int(t, 0, &i);
    for (int64_t j = 0; j < fe_imp_count(c->out); j++) {
        if (c->out->f)
            c->out->f[j] = f;
        else
            c->out->i[j] = i;
    }
}

static void op_range(ctx *c)
{
    fe_imp_value *s = in(c, 0), *l = in(c, 1), *d = in(c, 2);
    if (!s || !l || !d || !c->consts) return;
    double fs, fl, fd;
    if (!fe_imp_const_scalar(c->p, s, &fs) || !fe_imp_const_scalar(c->p, l, &fl) ||
        !fe_imp_const_scalar(c->p, d, &fd) || fd == 0)
        return;
    double n = ceil((fl - fs) / fd);
    if (!(n >= 0)) n = 0;
    if (n > FE_IMP_FOLD_MAX) return;
    int64_t len = (int64_t)n;
    if (!set_shape(c->out, s->dtype, 1, &len) || !alloc_const(c->p, c->out)) return;
    for (int64_t j = 0; j < len; j++) {
        if (c->out->f)
            c->out->f[j] = round_to(s->dtype, fs + (double)j * fd);
        else
            c->out->i[j] = (int64_t)fs + j * (int64_t)fd;
    }
}

static void op_trilu(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    if (!x || x->rank < 2 || !set_shape(c->out, x->dtype, x->rank, x->dims)) return;
    int64_t k = 0;
    if (in(c, 1)) {
        double kk;
        if (!fe_imp_const_scalar(c->p, in(c, 1), &kk)) return;
        k = (int64_t)kk;
    }
    if (!c->consts || !materialize(c->p, x)) return;
    bool upper = attr_int(c, "upper", 1) != 0;
    fe_imp_value tmp = *c->out;
    if (!alloc_const(c->p, &tmp)) return;
    int64_t rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1];
    for (int64_t j = 0; j < fe_imp_count(&tmp); j++) {
        int64_t col = j % cols, row = j / cols % rows;
        bool keep = upper ? col - row >= k : col - row <= k;
        if (keep) copy_elem(&tmp, j, x, j);
    }
    *c->out = tmp;
}

static void op_reduce(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    if (!x || x->rank < 0) return;
    int64_t axes[FE_IMP_MAX_RANK];
    int n;
    bool axes_input = c->node->opset >= 18 ||
                      (strcmp(c->node->op_type, "ReduceSum") == 0 && c->node->opset >= 13);
    if (!int_list(c, axes_input ? NULL : "axes", axes_input ? 1 : -1, axes, &n, FE_IMP_MAX_RANK))
        return;
    bool keep = attr_int(c, "keepdims", 1) != 0, noop = attr_int(c, "noop_with_empty_axes", 0) != 0;
    bool mark[FE_IMP_MAX_RANK] = {0};
    if (n <= 0 && noop) {
        op_identity(c);
        return;
    }
    for (int k = 0; k < (n < 0 ? 0 : n); k++) {
        int a;
        if (!norm_axis(axes[k], x->rank, &a)) return;
        mark[a] = true;
    }
    int64_t dims[FE_IMP_MAX_RANK];
    int rank = 0;
    for (int d = 0; d < x->rank; d++) {
        if (n <= 0) mark[d] = true;
        if (!mark[d])
            dims[rank++] = x->dims[d];
        else if (keep)
            dims[rank++] = 1;
    }
    if (!set_shape(c->out, x->dtype, rank, dims) || !c->consts || !materialize(c->p, x)) return;
    const char *op = c->node->op_type + 6; /* after "Reduce" */
    fe_imp_value tmp = *c->out;
    if (!alloc_const(c->p, &tmp)) return;
    int64_t total = fe_imp_count(&tmp), per = fe_imp_count(x) / (total ? total : 1);
    if (total > c->p->budget) return;
    c->p->budget -= total;
    double *acc = sup_arena_alloc(c->p->arena, sizeof *acc * (size_t)(total + 1));
    bool *seen = sup_arena_alloc(c->p->arena, (size_t)total + 1);
    int64_t co[FE_IMP_MAX_RANK] = {0};
    for (int64_t j = 0; j < fe_imp_count(x); j++, next_coord(x->rank, x->dims, co)) {
        int64_t o = 0;
        for (int d = 0; d < x->rank; d++)
            if (!mark[d]) o = o * x->dims[d] + co[d];
        double v = x->f ? x->f[j] : (double)x->i[j];
        if (!seen[o])
            acc[o] = strcmp(op, "Prod") == 0                            ? 1
                     : strcmp(op, "Max") == 0 || strcmp(op, "Min") == 0 ? v
                                                                        : 0;
        seen[o] = true;
        if (strcmp(op, "Sum") == 0 || strcmp(op, "Mean") == 0)
            acc[o] += v;
        else if (strcmp(op, "Prod") == 0)
            acc[o] *= v;
        else if (strcmp(op, "Max") == 0)
            acc[o] = v > acc[o] ? v : acc[o];
        else if (strcmp(op, "Min") == 0)
            acc[o] = v < acc[o] ? v : acc[o];
        else
            return;
    }
    for (int64_t o = 0; o < total; o++) {
        double v = strcmp(op, "Mean") == 0 && per ? acc[o] / (double)per : acc[o];
        if (tmp.f)
            tmp.f[o] = round_to(tmp.dtype, v);
        else
            tmp.i[o] = wrap_int(tmp.dtype, to_int(v));
    }
    *c->out = tmp;
}

/* ---- shapes of run-time operators ------------------------------------------------------ */

static void op_matmul(ctx *c)
{
    fe_imp_value *a = in(c, 0), *b = in(c, 1);
    if (!a || !b || a->rank < 1 || b->rank < 1) return;
    fe_imp_value x = *a, y = *b;
    if (x.rank == 1) x.dims[1] = x.dims[0], x.dims[0] = 1, x.rank = 2;
    if (y.rank == 1) y.dims[1] = 1, y.rank = 2;
    if (x.dims[x.rank - 1] != y.dims[y.rank - 2]) return;
    fe_imp_value bx = x, by = y;
    bx.rank -= 2, by.rank -= 2;
    fe_imp_value *xs[2] = {&bx, &by};
    int rank;
    int64_t dims[FE_IMP_MAX_RANK + 2];
    if (!broadcast(xs, 2, &rank, dims) || rank + 2 > FE_IMP_MAX_RANK) return;
    if (a->rank > 1) dims[rank++] = x.dims[x.rank - 2];
    if (b->rank > 1) dims[rank++] = y.dims[y.rank - 1];
    set_shape(c->out, a->dtype, rank, dims);
}

static void op_gemm(ctx *c)
{
    fe_imp_value *a = in(c, 0), *b = in(c, 1);
    if (!a || !b || a->rank != 2 || b->rank != 2) return;
    bool ta = attr_int(c, "transA", 0) != 0, tb = attr_int(c, "transB", 0) != 0;
    int64_t m = a->dims[ta ? 1 : 0], k = a->dims[ta ? 0 : 1], k2 = b->dims[tb ? 1 : 0],
            n = b->dims[tb ? 0 : 1];
    if (k != k2) return;
    int64_t dims[2] = {m, n};
    set_shape(c->out, a->dtype, 2, dims);
}

static void op_layernorm(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    if (!x || x->rank < 1 || !set_shape(c->out, x->dtype, x->rank, x->dims)) return;
    int axis;
    if (!norm_axis(attr_int(c, "axis", -1), x->rank, &axis)) return;
    int64_t dims[FE_IMP_MAX_RANK];
    for (int d = 0; d < x->rank; d++) dims[d] = d < axis ? x->dims[d] : 1;
    for (int k = 1; k < c->node->n_outputs && k < 3; k++) {
        fe_imp_value *o = fe_imp_v(c->p, fe_imp_out(c->p, c->n, k));
        if (o->name) set_shape(o, FE_ONNX_FLOAT, x->rank, dims);
    }
}

static void op_split(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    if (!x || x->rank < 0) return;
    int axis, n_out = c->node->n_outputs;
    if (!norm_axis(attr_int(c, "axis", 0), x->rank, &axis) || n_out < 1 || n_out > 64) return;
    int64_t split[64];
    int n;
    bool attr = c->node->opset > 0 && c->node->opset < 13;
    if (!int_list(c, attr ? "split" : NULL, attr ? -1 : 1, split, &n, 64)) return;
    int64_t dim = x->dims[axis];
    if (n < 0) { /* equal parts; the last may be smaller (opset 18) */
        int64_t part = (dim + n_out - 1) / n_out;
        for (int k = 0; k < n_out; k++) {
            int64_t left = dim - k * part;
            split[k] = left < 0 ? 0 : left < part ? left : part;
        }
        n = n_out;
    }
    if (n != n_out) return;
    int64_t sum = 0;
    for (int k = 0; k < n; k++) {
        if (split[k] < 0 || __builtin_add_overflow(sum, split[k], &sum)) return;
    }
    if (sum != dim) return;
    for (int k = 0; k < n_out; k++) {
        fe_imp_value *o = fe_imp_v(c->p, fe_imp_out(c->p, c->n, k));
        if (!o->name) continue;
        int64_t dims[FE_IMP_MAX_RANK];
        memcpy(dims, x->dims, sizeof dims);
        dims[axis] = split[k];
        set_shape(o, x->dtype, x->rank, dims);
    }
}

/* ---- QuantizeLinear and DequantizeLinear ---------------------------------------------- */

/* The integer range of a code type; false for other types. */
static bool code_range(int dtype, int64_t *lo, int64_t *hi)
{
    switch (dtype) {
    case FE_ONNX_INT8: *lo = -128, *hi = 127; return true;
    case FE_ONNX_UINT8: *lo = 0, *hi = 255; return true;
    case FE_ONNX_INT16: *lo = -32768, *hi = 32767; return true;
    case FE_ONNX_UINT16: *lo = 0, *hi = 65535; return true;
    case FE_ONNX_INT4: *lo = -8, *hi = 7; return true;
    case FE_ONNX_UINT4: *lo = 0, *hi = 15; return true;
    default: return false;
    }
}

/* The layout of a scale (and zero point) for x with attributes axis and
 * block_size: *axis -1 for one scale. False if the scale's shape fits none. */
static bool qdq_layout(ctx *c, const fe_imp_value *x, const fe_imp_value *s, int *axis,
                       int64_t *block)
{
    *block = attr_int(c, "block_size", 0);
    if (*block < 0 || x->rank < 0 || s->rank < 0) return false;
    if (fe_imp_count(s) == 1 && s->rank <= 1 && *block == 0) return *axis = -1, true;
    if (!norm_axis(attr_int(c, "axis", 1), x->rank, axis)) return false;
    if (*block == 0) return s->rank == 1 && s->dims[0] == x->dims[*axis];
    if (s->rank != x->rank) return false;
    for (int d = 0; d < x->rank; d++) {
        int64_t want = d == *axis ? (x->dims[d] + *block - 1) / *block : x->dims[d];
        if (s->dims[d] != want) return false;
    }
    return true;
}

static bool same_dims(const fe_imp_value *a, const fe_imp_value *b)
{
    if (a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return false;
    return true;
}

/* The scale index of element co of x (rank r) in that layout. */
static int64_t qdq_index(const fe_imp_value *s, int axis, int64_t block, int r, const int64_t *co)
{
    if (axis < 0) return 0;
    if (block == 0) return co[axis];
    int64_t idx = 0;
    for (int d = 0; d < r; d++) idx = idx * s->dims[d] + (d == axis ? co[d] / block : co[d]);
    return idx;
}

/* DequantizeLinear: y = (x - zero_point) * scale in f32; a constant's codes
 * are remembered (fe_imp_value.quant) for the weight it may become. */
static void op_dequantize(ctx *c)
{
    fe_imp_value *x = in(c, 0), *s = in(c, 1), *z = in(c, 2);
    int64_t lo, hi;
    if (!x || !s || s->dtype != FE_ONNX_FLOAT || !code_range(x->dtype, &lo, &hi)) return;
    if (z && z->dtype != x->dtype) return;
    int axis;
    int64_t block;
    if (!qdq_layout(c, x, s, &axis, &block) || (z && !same_dims(s, z))) return;
    if (!set_shape(c->out, FE_ONNX_FLOAT, x->rank, x->dims) || !c->consts) return;
    const int64_t *xi = fe_imp_const_i(c->p, x), *zi = z ? fe_imp_const_i(c->p, z) : NULL;
    const double *sf = fe_imp_const_f(c->p, s);
    if (!xi || !sf || (z && !zi)) return;
    fe_imp_value tmp = *c->out;
    if (!alloc_const(c->p, &tmp)) return;
    int64_t co[FE_IMP_MAX_RANK] = {0}, total = fe_imp_count(&tmp);
    for (int64_t j = 0; j < total; j++, next_coord(x->rank, x->dims, co)) {
        int64_t k = qdq_index(s, axis, block, x->rank, co);
        tmp.f[j] = (double)((float)(xi[j] - (zi ? zi[k] : 0)) * (float)sf[k]);
    }
    fe_imp_quant *q = sup_arena_alloc(c->p->arena, sizeof *q);
    const fe_onnx_attr *how = fe_onnx_attr_find(c->node, "qmc_how");
    *q = (fe_imp_quant){.codes = x,
                        .scale = s,
                        .zero_point = z,
                        .axis = axis,
                        .block = block,
                        .act8 = attr_int(c, "qmc_act8", 0) != 0,
                        .how = how && how->type == FE_ONNX_ATTR_STRING ? how->s : NULL};
    tmp.quant = q;
    *c->out = tmp;
}

/* QuantizeLinear: y = saturate(rint(x / scale) + zero_point), to the zero
 * point's type (uint8 without one; opset 21's output_dtype). */
static void op_quantize(ctx *c)
{
    fe_imp_value *x = in(c, 0), *s = in(c, 1), *z = in(c, 2);
    int to = z ? z->dtype : (int)attr_int(c, "output_dtype", 0);
    if (!to) to = FE_ONNX_UINT8;
    if (!x || !s || x->dtype != FE_ONNX_FLOAT || s->dtype != FE_ONNX_FLOAT) return;
    int axis;
    int64_t block, lo, hi;
    if (!qdq_layout(c, x, s, &axis, &block) || (z && !same_dims(s, z))) return;
    if (!set_shape(c->out, to, x->rank, x->dims) || !c->consts || !code_range(to, &lo, &hi)) return;
    const double *xf = fe_imp_const_f(c->p, x), *sf = fe_imp_const_f(c->p, s);
    const int64_t *zi = z ? fe_imp_const_i(c->p, z) : NULL;
    if (!xf || !sf || (z && !zi)) return;
    fe_imp_value tmp = *c->out;
    if (!alloc_const(c->p, &tmp)) return;
    int64_t co[FE_IMP_MAX_RANK] = {0}, total = fe_imp_count(&tmp);
    for (int64_t j = 0; j < total; j++, next_coord(x->rank, x->dims, co)) {
        int64_t k = qdq_index(s, axis, block, x->rank, co);
        float v = rintf((float)xf[j] / (float)sf[k]);
        double q = isnan(v) ? (double)lo : (double)v + (double)(zi ? zi[k] : 0);
        tmp.i[j] = q<(double)lo ? lo : q>(double) hi ? hi : (int64_t)q;
    }
    *c->out = tmp;
}

/* DynamicQuantizeLinear: uint8 codes of x's shape, a scale and a zero point. */
static void op_dynamic_quantize(ctx *c)
{
    fe_imp_value *x = in(c, 0);
    if (!x || x->dtype != FE_ONNX_FLOAT || !set_shape(c->out, FE_ONNX_UINT8, x->rank, x->dims))
        return;
    for (int k = 1; k < c->node->n_outputs && k < 3; k++) {
        fe_imp_value *o = fe_imp_v(c->p, fe_imp_out(c->p, c->n, k));
        if (o->name) set_shape(o, k == 1 ? FE_ONNX_FLOAT : FE_ONNX_UINT8, 0, NULL);
    }
}

/* ---- dispatch ---------------------------------------------------------------------- */

static const struct {
    const char *op;
    void (*fn)(ctx *c);
} handlers[] = {
    {"Identity", op_identity},
    {"Dropout", op_identity},
    {"Cast", op_cast},
    {"Where", op_where},
    {"Shape", op_shape},
    {"Size", op_size},
    {"Reshape", op_reshape},
    {"Flatten", op_flatten},
    {"Transpose", op_transpose},
    {"Concat", op_concat},
    {"Gather", op_gather},
    {"Slice", op_slice},
    {"Expand", op_expand},
    {"ConstantOfShape", op_constant_of_shape},
    {"Range", op_range},
    {"Trilu", op_trilu},
    {"ReduceSum", op_reduce},
    {"ReduceMean", op_reduce},
    {"ReduceMax", op_reduce},
    {"ReduceMin", op_reduce},
    {"ReduceProd", op_reduce},
    {"ReduceL1", op_reduce},
    {"ReduceL2", op_reduce},
    {"ReduceSumSquare", op_reduce},
    {"ReduceLogSum", op_reduce},
    {"ReduceLogSumExp", op_reduce},
    {"MatMul", op_matmul},
    {"Gemm", op_gemm},
    {"LayerNormalization", op_layernorm},
    {"Split", op_split},
    {"DequantizeLinear", op_dequantize},
    {"QuantizeLinear", op_quantize},
    {"DynamicQuantizeLinear", op_dynamic_quantize},
};

static void op_squeeze_fn(ctx *c) { op_squeeze(c, false); }
static void op_unsqueeze_fn(ctx *c) { op_squeeze(c, true); }

void fe_imp_fold_node(fe_imp *p, int n)
{
    const fe_onnx_node *nd = &p->m->nodes[n];
    if (nd->n_outputs < 1 || !*nd->outputs[0]) return;
    fe_imp_value *out = fe_imp_v(p, fe_imp_out(p, n, 0));
    if (nd->value) { /* Constant */
        const fe_onnx_tensor *t = nd->value;
        if (t->rank > FE_IMP_MAX_RANK) return;
        out->dtype = t->dtype;
        out->rank = t->rank;
        if (t->rank) memcpy(out->dims, t->dims, sizeof *t->dims * (size_t)t->rank);
        out->is_const = is_numeric(t->dtype);
        out->tensor = t;
        return;
    }
    if (*nd->domain) return;
    ctx c = {.p = p,
             .n = n,
             .node = nd,
             .n_in = nd->n_inputs,
             .out = out,
             .known = true,
             .consts = true};
    c.in = sup_arena_alloc(p->arena, sizeof *c.in * (size_t)(nd->n_inputs + 1));
    for (int k = 0; k < nd->n_inputs; k++) {
        int v = fe_imp_in(p, n, k);
        c.in[k] = v >= 0 ? fe_imp_v(p, v) : NULL;
        if (!c.in[k]) continue;
        c.known &= c.in[k]->rank >= 0;
        c.consts &= c.in[k]->is_const;
    }
    if (!c.known) return;
    const char *op = nd->op_type;
    if (strcmp(op, "Squeeze") == 0) return op_squeeze_fn(&c);
    if (strcmp(op, "Unsqueeze") == 0) return op_unsqueeze_fn(&c);
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
        if (strcmp(op, handlers[i].op) == 0) return handlers[i].fn(&c);
    if (in_list(op, unary_ops) || in_list(op, binary_ops)) op_elementwise(&c);
}
