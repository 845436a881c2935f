/* build_builtins.c: the built-in operations of the model language
 * (linear, matmul, softmax, reshape, attention, ...).
 *
 * Each builtin checks its arguments (already matched to its parameters by
 * build_graph.c), computes its attributes (a negative axis counts from the
 * end, eps defaults per op, attention's scale defaults to 1/sqrt(head
 * size)) and adds its node with the shape inferred, or reports at the
 * argument that is wrong. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "passes.h"

static int rank_of(pass_builder *b, int32_t node) { return b->g->nodes[node].rank; }

/* Normalises a possibly negative axis against rank. */
static bool axis_arg(const pass_value *v, int rank, int *out)
{
    int64_t ax = 0;
    if (!pass_build_want_int(v, "the axis", &ax)) return false;
    if (ax < -rank || ax >= rank)
        return pass_build_fail(v->loc, "axis %lld is out of range for a tensor of %d dimensions",
                               (long long)ax, rank);
    *out = (int)(ax < 0 ? ax + rank : ax);
    return true;
}

static bool build_linear(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t in[3];
    int n = a->v[2].kind == PASS_VAL_NONE ? 2 : 3;
    for (int i = 0; i < n; i++)
        if (!pass_build_want_tensor(b, &a->v[i],
                                    i == 0   ? "the input"
                                    : i == 1 ? "the weight"
                                             : "the bias",
                                    &in[i]))
            return false;
    if (!pass_build_result(b, IR_OP_LINEAR, in, n, a, NULL, out)) return false;
    /* name a linear after its weight, as a user would look for it */
    ir_node *w = &b->g->nodes[in[1]];
    if (w->op == IR_OP_WEIGHT) {
        size_t len = strlen(w->name);
        const char *base = len > 7 && strcmp(w->name + len - 7, ".weight") == 0
                               ? sup_arena_strndup(b->arena, w->name, len - 7)
                               : w->name;
        b->g->nodes[out->node].name = pass_build_unique_name(b, base);
    }
    return true;
}

static bool build_binary(pass_builder *b, pass_call_args *a, pass_value *out, ir_op op)
{
    int32_t in[2];
    if (!pass_build_want_tensor(b, &a->v[0], "the first operand", &in[0]) ||
        !pass_build_want_tensor(b, &a->v[1], "the second operand", &in[1]))
        return false;
    return pass_build_result(b, op, in, 2, a, NULL, out);
}

static bool build_matmul(pass_builder *b, pass_call_args *a, pass_value *out)
{
    return build_binary(b, a, out, IR_OP_MATMUL);
}
static bool build_add(pass_builder *b, pass_call_args *a, pass_value *out)
{
    return build_binary(b, a, out, IR_OP_ADD);
}
static bool build_sub(pass_builder *b, pass_call_args *a, pass_value *out)
{
    return build_binary(b, a, out, IR_OP_SUB);
}
static bool build_mul(pass_builder *b, pass_call_args *a, pass_value *out)
{
    return build_binary(b, a, out, IR_OP_MUL);
}
static bool build_div(pass_builder *b, pass_call_args *a, pass_value *out)
{
    return build_binary(b, a, out, IR_OP_DIV);
}

static bool build_unary(pass_builder *b, pass_call_args *a, pass_value *out, ir_op op)
{
    int32_t x;
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x)) return false;
    return pass_build_result(b, op, &x, 1, a, NULL, out);
}

static bool build_relu(pass_builder *b, pass_call_args *a, pass_value *out)
{
    return build_unary(b, a, out, IR_OP_RELU);
}
static bool build_gelu(pass_builder *b, pass_call_args *a, pass_value *out)
{
    return build_unary(b, a, out, IR_OP_GELU);
}
static bool build_silu(pass_builder *b, pass_call_args *a, pass_value *out)
{
    return build_unary(b, a, out, IR_OP_SILU);
}
static bool build_tanh(pass_builder *b, pass_call_args *a, pass_value *out)
{
    return build_unary(b, a, out, IR_OP_TANH);
}

static bool build_softmax(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t x;
    ir_attrs attr = {.axis = -1};
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x)) return false;
    int rank = rank_of(b, x);
    if (a->v[1].kind != PASS_VAL_NONE && !axis_arg(&a->v[1], rank, &attr.axis)) return false;
    if (a->v[1].kind == PASS_VAL_NONE) attr.axis = rank - 1;
    return pass_build_result(b, IR_OP_SOFTMAX, &x, 1, a, &attr, out);
}

static bool eps_arg(const pass_value *v, double dflt, float *out)
{
    double eps = dflt;
    if (v->kind != PASS_VAL_NONE && !pass_build_want_number(v, "eps", &eps)) return false;
    if (!(eps >= 0) || !isfinite(eps))
        return pass_build_fail(v->loc, "eps must be a finite non-negative number");
    *out = (float)eps;
    return true;
}

static bool build_layernorm(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t in[3];
    ir_attrs attr = {0};
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &in[0]) ||
        !pass_build_want_tensor(b, &a->v[1], "the weight", &in[1]) ||
        !pass_build_want_tensor(b, &a->v[2], "the bias", &in[2]) ||
        !eps_arg(&a->v[3], 1e-5, &attr.eps))
        return false;
    return pass_build_result(b, IR_OP_LAYERNORM, in, 3, a, &attr, out);
}

static bool build_rmsnorm(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t in[2];
    ir_attrs attr = {0};
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &in[0]) ||
        !pass_build_want_tensor(b, &a->v[1], "the weight", &in[1]) ||
        !eps_arg(&a->v[2], 1e-6, &attr.eps))
        return false;
    return pass_build_result(b, IR_OP_RMSNORM, in, 2, a, &attr, out);
}

static bool build_embedding(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t in[2];
    if (!pass_build_want_tensor(b, &a->v[0], "the table", &in[0]) ||
        !pass_build_want_tensor(b, &a->v[1], "the indices", &in[1]))
        return false;
    return pass_build_result(b, IR_OP_EMBEDDING, in, 2, a, NULL, out);
}

static bool int_list(const pass_value *v, const char *what, int64_t *out, int *n)
{
    if (v->kind != PASS_VAL_LIST)
        return pass_build_fail(v->loc, "%s must be a list of integers like [2, 64]", what);
    if (v->n_items > IR_MAX_RANK)
        return pass_build_fail(v->loc, "%s has more than %d entries", what, IR_MAX_RANK);
    for (int i = 0; i < v->n_items; i++)
        if (!pass_build_want_int(&v->items[i], what, &out[i])) return false;
    *n = v->n_items;
    return true;
}

static bool build_reshape(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t x;
    int64_t dims[IR_MAX_RANK];
    int n = 0, infer = -1;
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x) ||
        !int_list(&a->v[1], "the new shape", dims, &n))
        return false;
    int64_t known = 1, total = ir_node_count(&b->g->nodes[x]);
    for (int i = 0; i < n; i++) {
        if (dims[i] == -1 && infer < 0) {
            infer = i;
            continue;
        }
        if (dims[i] < 1)
            return pass_build_fail(a->v[1].items[i].loc,
                                   "a dimension must be positive (or one -1)");
        if (__builtin_mul_overflow(known, dims[i], &known) || known > IR_MAX_ELEMENTS)
            return pass_build_fail(a->v[1].loc, "the new shape has more than %lld elements",
                                   (long long)IR_MAX_ELEMENTS);
    }
    if (infer >= 0) {
        if (total % known)
            return pass_build_fail(
                a->v[1].loc, "cannot infer the -1 dimension: %lld elements do not divide by %lld",
                (long long)total, (long long)known);
        dims[infer] = total / known;
    }
    return pass_build_shaped_result(b, IR_OP_RESHAPE, x, a, NULL, n, dims, out);
}

static bool build_transpose(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t x;
    ir_attrs attr = {0};
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x)) return false;
    int rank = rank_of(b, x), n = 0;
    for (int i = 0; i < rank; i++) attr.perm[i] = i;
    if (a->v[1].kind == PASS_VAL_NONE) {
        if (rank < 2) return pass_build_fail(a->call->loc, "transpose needs at least 2 dimensions");
        attr.perm[rank - 2] = rank - 1, attr.perm[rank - 1] = rank - 2;
    } else {
        if (!int_list(&a->v[1], "the permutation", attr.perm, &n)) return false;
        if (n != rank)
            return pass_build_fail(
                a->v[1].loc, "the permutation has %d entries but the tensor has %d dimensions", n,
                rank);
        for (int i = 0; i < n; i++)
            if (attr.perm[i] < 0) attr.perm[i] += rank;
    }
    return pass_build_result(b, IR_OP_TRANSPOSE, &x, 1, a, &attr, out);
}

static bool build_slice(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t x;
    ir_attrs attr = {0};
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x)) return false;
    const ir_node *n = &b->g->nodes[x];
    if (!axis_arg(&a->v[1], n->rank, &attr.axis) ||
        !pass_build_want_int(&a->v[2], "the start", &attr.start) ||
        !pass_build_want_int(&a->v[3], "the end", &attr.end))
        return false;
    int64_t dim = n->shape[attr.axis];
    if (attr.start < 0) attr.start += dim;
    if (attr.end < 0) attr.end += dim;
    return pass_build_result(b, IR_OP_SLICE, &x, 1, a, &attr, out);
}

static bool build_concat(pass_builder *b, pass_call_args *a, pass_value *out)
{
    pass_value *items = a->variadic;
    int n = a->n_variadic;
    if (n == 1 && items[0].kind == PASS_VAL_LIST) n = items[0].n_items, items = items[0].items;
    if (n < 1) return pass_build_fail(a->call->loc, "concat needs at least one tensor");
    int32_t in[PASS_MAX_ARGS];
    if (n > PASS_MAX_ARGS)
        return pass_build_fail(a->call->loc, "concat takes at most %d tensors", PASS_MAX_ARGS);
    for (int i = 0; i < n; i++)
        if (!pass_build_want_tensor(b, &items[i], "an operand of concat", &in[i])) return false;
    ir_attrs attr = {0};
    int rank = rank_of(b, in[0]);
    if (a->v[0].kind != PASS_VAL_NONE) {
        if (!axis_arg(&a->v[0], rank, &attr.axis)) return false;
    } else {
        attr.axis = rank - 1;
    }
    return pass_build_result(b, IR_OP_CONCAT, in, n, a, &attr, out);
}

/* heads=: 1 to 4096 (unchanged when not given). */
static bool heads_arg(const pass_value *v, int64_t *heads)
{
    if (v->kind == PASS_VAL_NONE) return true;
    if (!pass_build_want_int(v, "heads", heads)) return false;
    if (*heads < 1 || *heads > 4096)
        return pass_build_fail(v->loc, "heads must be between 1 and 4096");
    return true;
}

/* A boolean keyword (unchanged when not given). */
static bool bool_arg(const pass_value *v, const char *what, bool *out)
{
    if (v->kind == PASS_VAL_NONE) return true;
    if (v->kind != PASS_VAL_BOOL) return pass_build_fail(v->loc, "%s must be true or false", what);
    *out = v->i != 0;
    return true;
}

static bool build_attention(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t in[3];
    ir_attrs attr = {.heads = 1};
    for (int i = 0; i < 3; i++)
        if (!pass_build_want_tensor(b, &a->v[i], i == 0 ? "q" : i == 1 ? "k" : "v", &in[i]))
            return false;
    int64_t heads = 1;
    if (!heads_arg(&a->v[3], &heads)) return false;
    attr.heads = (int)heads;
    if (!bool_arg(&a->v[4], "causal", &attr.causal)) return false;
    const ir_node *q = &b->g->nodes[in[0]];
    double scale =
        q->rank == 2 && q->shape[1] % heads == 0 ? 1.0 / sqrt((double)(q->shape[1] / heads)) : 1.0;
    if (a->v[5].kind != PASS_VAL_NONE && !pass_build_want_number(&a->v[5], "scale", &scale))
        return false;
    attr.scale = (float)scale;
    int64_t kv_heads = heads;
    if (a->v[6].kind != PASS_VAL_NONE && !pass_build_want_int(&a->v[6], "kv_heads", &kv_heads))
        return false;
    if (kv_heads < 1 || kv_heads > heads || heads % kv_heads)
        return pass_build_fail(a->v[6].loc, "kv_heads must divide heads (%lld)", (long long)heads);
    attr.kv_heads = (int)kv_heads;
    if (!bool_arg(&a->v[7], "cache", &attr.cached)) return false;
    if (attr.cached) {
        if (!b->g->context)
            return pass_build_fail(a->v[7].loc, "a cache needs the model to declare the tokens "
                                                "of a call: `sequence T <= N`");
        if (a->v[4].kind == PASS_VAL_NONE) attr.causal = true;
        if (!attr.causal)
            return pass_build_fail(a->v[4].loc,
                                   "attention with a cache is causal: each position sees the "
                                   "ones before it");
        attr.slot = b->g->n_caches;
    }
    if (!pass_build_result(b, IR_OP_ATTENTION, in, 3, a, &attr, out)) return false;
    if (attr.cached) {
        ir_graph *g = b->g;
        ir_cache c = {.node = out->node,
                      .k_dim = g->nodes[in[1]].shape[1],
                      .v_dim = g->nodes[in[2]].shape[1],
                      .kv_heads = attr.kv_heads};
        g->caches = sup_arena_grow(b->arena, g->caches, (size_t)g->n_caches,
                                   (size_t)g->n_caches + 1, sizeof c);
        g->caches[g->n_caches++] = c;
    }
    return true;
}

static bool build_rope(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t x;
    ir_attrs attr = {.heads = 1, .theta = 10000};
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x)) return false;
    int64_t heads = 1;
    if (!heads_arg(&a->v[1], &heads)) return false;
    attr.heads = (int)heads;
    double theta = 10000;
    if (a->v[2].kind != PASS_VAL_NONE && !pass_build_want_number(&a->v[2], "theta", &theta))
        return false;
    if (!(theta > 1) || !isfinite(theta) || theta > 1e12)
        return pass_build_fail(a->v[2].loc, "theta must be a number above 1");
    attr.theta = (float)theta;
    if (!bool_arg(&a->v[3], "interleaved", &attr.interleaved)) return false;
    return pass_build_result(b, IR_OP_ROPE, &x, 1, a, &attr, out);
}

static bool build_positions(pass_builder *b, pass_call_args *a, pass_value *out)
{
    if (!b->g->context)
        return pass_build_fail(a->call->loc, "positions() counts the tokens of a call: the model "
                                             "must declare them with `sequence T <= N`");
    return pass_build_result(b, IR_OP_POSITIONS, NULL, 0, a, NULL, out);
}

/* An optional number argument (dflt when not given). */
static bool number_arg(const pass_value *v, const char *what, double dflt, float *out)
{
    double x = dflt;
    if (v->kind != PASS_VAL_NONE && !pass_build_want_number(v, what, &x)) return false;
    if (isnan(x)) return pass_build_fail(v->loc, "%s is not a number", what);
    *out = (float)x;
    return true;
}

/* exp, log, sqrt, erf, sigmoid, abs, floor, ceil, leaky_relu, hard_sigmoid,
 * hard_swish, clip: IR_OP_UNARY with the function named by the call. sqrt
 * of a number is a number (constants: `1 / sqrt(64)`). */
static bool build_unary_fn(pass_builder *b, pass_call_args *a, pass_value *out)
{
    const char *name = a->call->name;
    ir_attrs attr = {.fn = 0};
    while (strcmp(ir_unary_name((ir_unary)attr.fn), name) != 0) attr.fn++;
    if (attr.fn == IR_UN_SQRT && (a->v[0].kind == PASS_VAL_INT || a->v[0].kind == PASS_VAL_FLOAT)) {
        double x = 0;
        pass_build_want_number(&a->v[0], "the argument of sqrt", &x);
        if (x < 0) return pass_build_fail(a->v[0].loc, "sqrt of a negative number");
        memset(out, 0, sizeof *out);
        out->kind = PASS_VAL_FLOAT;
        out->f = sqrt(x);
        out->loc = a->call->loc;
        return true;
    }
    int32_t x;
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x)) return false;
    bool ok = true;
    if (attr.fn == IR_UN_LEAKY_RELU) ok = number_arg(&a->v[1], "alpha", 0.01, &attr.alpha);
    if (attr.fn == IR_UN_HARD_SIGMOID)
        ok = number_arg(&a->v[1], "alpha", 0.2, &attr.alpha) &&
             number_arg(&a->v[2], "beta", 0.5, &attr.beta);
    if (attr.fn == IR_UN_CLIP) {
        ok = number_arg(&a->v[1], "min", -INFINITY, &attr.alpha) &&
             number_arg(&a->v[2], "max", INFINITY, &attr.beta);
        if (ok && attr.alpha > attr.beta)
            return pass_build_fail(a->call->loc, "clip: min %g is above max %g", (double)attr.alpha,
                                   (double)attr.beta);
    }
    return ok && pass_build_result(b, IR_OP_UNARY, &x, 1, a, &attr, out);
}

/* pow, maximum, minimum and the comparisons: IR_OP_BINARY. */
static bool build_binary_fn(pass_builder *b, pass_call_args *a, pass_value *out)
{
    ir_attrs attr = {.fn = 0};
    while (strcmp(ir_binary_name((ir_binary)attr.fn), a->call->name) != 0) attr.fn++;
    int32_t in[2];
    if (!pass_build_want_tensor(b, &a->v[0], "the first operand", &in[0]) ||
        !pass_build_want_tensor(b, &a->v[1], "the second operand", &in[1]))
        return false;
    return pass_build_result(b, IR_OP_BINARY, in, 2, a, &attr, out);
}

static bool build_where(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t in[3];
    if (!pass_build_want_tensor(b, &a->v[0], "the condition", &in[0]) ||
        !pass_build_want_tensor(b, &a->v[1], "the value where true", &in[1]) ||
        !pass_build_want_tensor(b, &a->v[2], "the value where false", &in[2]))
        return false;
    return pass_build_result(b, IR_OP_WHERE, in, 3, a, NULL, out);
}

/* reduce_sum, reduce_mean, reduce_max, reduce_min(x, axes=all, keepdims=false) */
static bool build_reduce(pass_builder *b, pass_call_args *a, pass_value *out)
{
    ir_attrs attr = {.fn = 0};
    while (strcmp(ir_reduce_name((ir_reduce)attr.fn), a->call->name) != 0) attr.fn++;
    int32_t x;
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x)) return false;
    int rank = rank_of(b, x);
    if (a->v[1].kind == PASS_VAL_NONE) {
        attr.axes = (1u << rank) - 1;
    } else {
        const pass_value *l = &a->v[1];
        if (l->kind != PASS_VAL_LIST)
            return pass_build_fail(l->loc, "the axes must be a list of integers like [-1]");
        for (int i = 0; i < l->n_items; i++) {
            int ax = 0;
            if (!axis_arg(&l->items[i], rank, &ax)) return false;
            if (attr.axes >> ax & 1)
                return pass_build_fail(l->items[i].loc, "axis %d is listed twice", ax);
            attr.axes |= 1u << ax;
        }
    }
    return bool_arg(&a->v[2], "keepdims", &attr.keepdims) &&
           pass_build_result(b, IR_OP_REDUCE, &x, 1, a, &attr, out);
}

static bool build_log_softmax(pass_builder *b, pass_call_args *a, pass_value *out)
{
    if (!build_softmax(b, a, out)) return false;
    ir_node *n = &b->g->nodes[out->node];
    n->attr.log = true;
    return true;
}

/* numpy broadcasting of a's and b's shapes into out; false if they don't. */
static bool broadcast_shapes(const ir_node *a, const ir_node *b, int *rank, int64_t *out)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) return false;
        out[i] = da == 1 ? db : da;
    }
    *rank = r;
    return true;
}

/* expand(x, shape): x broadcast (numpy's rules, both ways) with shape. */
static bool build_expand(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t x;
    int64_t dims[IR_MAX_RANK];
    int n = 0;
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x) ||
        !int_list(&a->v[1], "the shape", dims, &n))
        return false;
    for (int i = 0; i < n; i++)
        if (dims[i] < 1)
            return pass_build_fail(a->v[1].items[i].loc, "a dimension must be positive");
    ir_node target = {.rank = n};
    memcpy(target.shape, dims, sizeof dims[0] * (size_t)n);
    const ir_node *xn = &b->g->nodes[x];
    int rank;
    int64_t shape[IR_MAX_RANK];
    if (!broadcast_shapes(xn, &target, &rank, shape)) {
        char sx[RT_SHAPE_STR_MAX], st[RT_SHAPE_STR_MAX];
        return pass_build_fail(a->v[1].loc, "expand: %s does not broadcast with %s",
                               rt_shape_str(xn->dtype, xn->rank, xn->shape, sx, sizeof sx),
                               rt_shape_str(xn->dtype, n, dims, st, sizeof st));
    }
    return pass_build_shaped_result(b, IR_OP_EXPAND, x, a, NULL, rank, shape, out);
}

/* to_f32(x), to_i32(x) */
static bool build_cast(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t x;
    ir_attrs attr = {.fn = strcmp(a->call->name, "to_i32") == 0 ? QMC_DTYPE_I32 : QMC_DTYPE_F32};
    if (!pass_build_want_tensor(b, &a->v[0], "the input", &x)) return false;
    return pass_build_result(b, IR_OP_CAST, &x, 1, a, &attr, out);
}

static bool build_gather(pass_builder *b, pass_call_args *a, pass_value *out)
{
    int32_t in[2];
    ir_attrs attr = {0};
    if (!pass_build_want_tensor(b, &a->v[0], "the data", &in[0]) ||
        !pass_build_want_tensor(b, &a->v[1], "the indices", &in[1]))
        return false;
    if (a->v[2].kind != PASS_VAL_NONE && !axis_arg(&a->v[2], rank_of(b, in[0]), &attr.axis))
        return false;
    return pass_build_result(b, IR_OP_GATHER, in, 2, a, &attr, out);
}

static const pass_builtin builtins[] = {
    {"linear", 2, {"x", "weight", "bias"}, build_linear, false},
    {"matmul", 2, {"a", "b"}, build_matmul, false},
    {"add", 2, {"a", "b"}, build_add, false},
    {"sub", 2, {"a", "b"}, build_sub, false},
    {"mul", 2, {"a", "b"}, build_mul, false},
    {"div", 2, {"a", "b"}, build_div, false},
    {"relu", 1, {"x"}, build_relu, false},
    {"gelu", 1, {"x"}, build_gelu, false},
    {"silu", 1, {"x"}, build_silu, false},
    {"tanh", 1, {"x"}, build_tanh, false},
    {"softmax", 1, {"x", "axis"}, build_softmax, false},
    {"layernorm", 3, {"x", "weight", "bias", "eps"}, build_layernorm, false},
    {"rmsnorm", 2, {"x", "weight", "eps"}, build_rmsnorm, false},
    {"embedding", 2, {"table", "indices"}, build_embedding, false},
    {"reshape", 2, {"x", "shape"}, build_reshape, false},
    {"transpose", 1, {"x", "perm"}, build_transpose, false},
    {"slice", 4, {"x", "axis", "start", "end"}, build_slice, false},
    {"concat", 0, {"axis"}, build_concat, true},
    {"attention",
     3,
     {"q", "k", "v", "heads", "causal", "scale", "kv_heads", "cache"},
     build_attention,
     false},
    {"rope", 1, {"x", "heads", "theta", "interleaved"}, build_rope, false},
    {"positions", 0, {NULL}, build_positions, false},
    {"exp", 1, {"x"}, build_unary_fn, false},
    {"log", 1, {"x"}, build_unary_fn, false},
    {"sqrt", 1, {"x"}, build_unary_fn, false},
    {"erf", 1, {"x"}, build_unary_fn, false},
    {"sigmoid", 1, {"x"}, build_unary_fn, false},
    {"abs", 1, {"x"}, build_unary_fn, false},
    {"floor", 1, {"x"}, build_unary_fn, false},
    {"ceil", 1, {"x"}, build_unary_fn, false},
    {"leaky_relu", 1, {"x", "alpha"}, build_unary_fn, false},
    {"hard_sigmoid", 1, {"x", "alpha", "beta"}, build_unary_fn, false},
    {"hard_swish", 1, {"x"}, build_unary_fn, false},
    {"clip", 1, {"x", "min", "max"}, build_unary_fn, false},
    {"pow", 2, {"a", "b"}, build_binary_fn, false},
    {"maximum", 2, {"a", "b"}, build_binary_fn, false},
    {"minimum", 2, {"a", "b"}, build_binary_fn, false},
    {"equal", 2, {"a", "b"}, build_binary_fn, false},
    {"less", 2, {"a", "b"}, build_binary_fn, false},
    {"less_equal", 2, {"a", "b"}, build_binary_fn, false},
    {"greater", 2, {"a", "b"}, build_binary_fn, false},
    {"greater_equal", 2, {"a", "b"}, build_binary_fn, false},
    {"where", 3, {"cond", "a", "b"}, build_where, false},
    {"reduce_sum", 1, {"x", "axes", "keepdims"}, build_reduce, false},
    {"reduce_mean", 1, {"x", "axes", "keepdims"}, build_reduce, false},
    {"reduce_max", 1, {"x", "axes", "keepdims"}, build_reduce, false},
    {"reduce_min", 1, {"x", "axes", "keepdims"}, build_reduce, false},
    {"log_softmax", 1, {"x", "axis"}, build_log_softmax, false},
    {"expand", 2, {"x", "shape"}, build_expand, false},
    {"gather", 2, {"x", "indices", "axis"}, build_gather, false},
    {"to_f32", 1, {"x"}, build_cast, false},
    {"to_i32", 1, {"x"}, build_cast, false},
};

const pass_builtin *pass_builtin_find(const char *name)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
    for (int i = 0; i < pass_n_cnn_builtins; i++)
        if (strcmp(pass_cnn_builtins[i].name, name) == 0) return &pass_cnn_builtins[i];
    return NULL;
}

int pass_builtin_n_params(const pass_builtin *bi)
{
    int n = 0;
    while (n < 8 && bi->params[n]) n++;
    return n;
}

/* "layernorm(x, weight, bias, eps=...)": required parameters, then the
 * optional ones as keywords. */
const char *pass_builtin_signature(const pass_builtin *bi, char *buf, size_t size)
{
    int np = pass_builtin_n_params(bi);
    size_t n = (size_t)snprintf(buf, size, "%s(", bi->name);
    if (bi->variadic && n < size)
        n += (size_t)snprintf(buf + n, size - n, "tensors...%s", np ? ", " : "");
    for (int k = 0; k < np && n < size; k++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s%s", k ? ", " : "", bi->params[k],
                              k >= bi->n_required ? "=..." : "");
    if (n < size) snprintf(buf + n, size - n, ")");
    return buf;
}

int pass_builtin_names(const char **names, int max)
{
    int n = 0;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0] && n < max; i++)
        names[n++] = builtins[i].name;
    for (int i = 0; i < pass_n_cnn_builtins && n < max; i++) names[n++] = pass_cnn_builtins[i].name;
    return n;
}
