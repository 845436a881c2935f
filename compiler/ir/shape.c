/* shape.c: shape and dtype inference.
 *
 * Needs: a node whose inputs already have shapes, and its attributes.
 * Guarantees: on success the node's dtype, rank and shape are set and its
 * operands fit the op; on failure the error names the op, shows both shapes
 * and adds a note at the place each operand came from. */
#include <string.h>

#include "ir.h"

static void set_shape(ir_node *n, qmc_dtype dtype, int rank, const int64_t *shape)
{
    n->dtype = dtype;
    n->rank = rank;
    memmove(n->shape, shape, sizeof n->shape[0] * (size_t)rank);
}

static bool need_f32(const ir_graph *g, ir_node *n, int32_t op)
{
    if (g->nodes[op].dtype == QMC_DTYPE_F32) return true;
    return ir_shape_fail(g, n, 1, &op, "%s needs a float tensor, but its operand is %s",
                         ir_node_op_name(n), qmc_dtype_name(g->nodes[op].dtype));
}

static bool infer_linear(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]], *w = &g->nodes[n->inputs[1]];
    if (!need_f32(g, n, n->inputs[0])) return false;
    if (w->rank != 2)
        return ir_shape_fail(g, n, 1, &n->inputs[1],
                             "linear needs a 2-D weight [out, in], not %d-D", w->rank);
    if (x->rank < 1 || x->shape[x->rank - 1] != w->shape[1])
        return ir_shape_fail(
            g, n, 2, n->inputs, "linear: the input has %lld features but the weight expects %lld",
            x->rank ? (long long)x->shape[x->rank - 1] : 0LL, (long long)w->shape[1]);
    if (n->n_inputs == 3) {
        const ir_node *b = &g->nodes[n->inputs[2]];
        if (b->rank != 1 || b->shape[0] != w->shape[0]) {
            int32_t ops[2] = {n->inputs[1], n->inputs[2]};
            return ir_shape_fail(g, n, 2, ops, "linear: the bias must have shape [%lld]",
                                 (long long)w->shape[0]);
        }
    }
    int64_t shape[IR_MAX_RANK];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->rank - 1] = w->shape[0];
    set_shape(n, QMC_DTYPE_F32, x->rank, shape);
    return true;
}

/* numpy broadcasting of a's and b's batch dimensions (all but the last
 * `core` dimensions) into out; false if they don't broadcast */
static bool broadcast(const ir_node *a, const ir_node *b, int core, int *rank, int64_t *out)
{
    int ra = a->rank - core, rb = b->rank - core;
    int r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) {
        int64_t da = i - (r - ra) >= 0 ? a->shape[i - (r - ra)] : 1;
        int64_t db = i - (r - rb) >= 0 ? b->shape[i - (r - rb)] : 1;
        if (da != db && da != 1 && db != 1) return false;
        out[i] = da == 1 ? db : da;
    }
    *rank = r;
    return true;
}

/* Elementwise ops of two or three float operands (where), broadcast. */
static bool infer_elementwise(ir_graph *g, ir_node *n)
{
    int rank = 0;
    int64_t shape[IR_MAX_RANK];
    for (int i = 0; i < n->n_inputs; i++) {
        const ir_node *x = &g->nodes[n->inputs[i]];
        if (!need_f32(g, n, n->inputs[i])) return false;
        ir_node acc = {.rank = rank};
        memcpy(acc.shape, shape, sizeof shape);
        if (i && !broadcast(&acc, x, 0, &rank, shape)) {
            char sa[RT_SHAPE_STR_MAX], sb[RT_SHAPE_STR_MAX];
            return ir_shape_fail(g, n, n->n_inputs, n->inputs,
                                 "%s: shapes %s and %s do not broadcast", ir_node_op_name(n),
                                 rt_shape_str(QMC_DTYPE_F32, acc.rank, acc.shape, sa, sizeof sa),
                                 rt_shape_str(x->dtype, x->rank, x->shape, sb, sizeof sb));
        }
        if (!i) rank = x->rank, memcpy(shape, x->shape, sizeof shape);
    }
    set_shape(n, QMC_DTYPE_F32, rank, shape);
    return true;
}

/* expand: the node's shape is set when it is built; x must broadcast to it. */
static bool infer_expand(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]];
    bool ok = x->rank <= n->rank;
    for (int d = 0; ok && d < x->rank; d++) {
        int64_t xd = x->shape[d], nd = n->shape[d + n->rank - x->rank];
        ok = xd == nd || xd == 1;
    }
    if (!ok) {
        char sx[RT_SHAPE_STR_MAX], sn[RT_SHAPE_STR_MAX];
        return ir_shape_fail(g, n, 1, n->inputs, "expand: shape %s does not broadcast to %s",
                             rt_shape_str(x->dtype, x->rank, x->shape, sx, sizeof sx),
                             rt_shape_str(x->dtype, n->rank, n->shape, sn, sizeof sn));
    }
    n->dtype = x->dtype;
    return true;
}

static bool infer_reduce(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]];
    if (!need_f32(g, n, n->inputs[0])) return false;
    if (n->attr.axes >> x->rank)
        return ir_shape_fail(g, n, 1, n->inputs, "%s: an axis is out of range for %d dimensions",
                             ir_node_op_name(n), x->rank);
    int rank = 0;
    int64_t shape[IR_MAX_RANK];
    for (int d = 0; d < x->rank; d++) {
        if (!(n->attr.axes >> d & 1))
            shape[rank++] = x->shape[d];
        else if (n->attr.keepdims)
            shape[rank++] = 1;
    }
    set_shape(n, QMC_DTYPE_F32, rank, shape);
    return true;
}

static bool infer_gather(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]], *idx = &g->nodes[n->inputs[1]];
    int axis = n->attr.axis;
    if (idx->dtype != QMC_DTYPE_I32)
        return ir_shape_fail(g, n, 1, &n->inputs[1], "gather needs i32 indices, not %s",
                             qmc_dtype_name(idx->dtype));
    if (axis < 0 || axis >= x->rank)
        return ir_shape_fail(g, n, 1, n->inputs,
                             "gather: axis %d is out of range for %d dimensions", axis, x->rank);
    if (x->rank - 1 + idx->rank > IR_MAX_RANK)
        return ir_shape_fail(g, n, 2, n->inputs, "gather: the result has more than %d dimensions",
                             IR_MAX_RANK);
    int64_t shape[IR_MAX_RANK];
    int rank = 0;
    for (int d = 0; d < axis; d++) shape[rank++] = x->shape[d];
    for (int d = 0; d < idx->rank; d++) shape[rank++] = idx->shape[d];
    for (int d = axis + 1; d < x->rank; d++) shape[rank++] = x->shape[d];
    set_shape(n, x->dtype, rank, shape);
    return true;
}

static bool infer_matmul(ir_graph *g, ir_node *n)
{
    ir_node a = g->nodes[n->inputs[0]], b = g->nodes[n->inputs[1]];
    if (!need_f32(g, n, n->inputs[0]) || !need_f32(g, n, n->inputs[1])) return false;
    if (a.rank < 1 || b.rank < 1)
        return ir_shape_fail(g, n, 2, n->inputs, "matmul needs operands of at least one dimension");
    bool a_vec = a.rank == 1, b_vec = b.rank == 1;
    if (a_vec) a.shape[1] = a.shape[0], a.shape[0] = 1, a.rank = 2;
    if (b_vec) b.shape[1] = 1, b.rank = 2;
    int64_t k = a.shape[a.rank - 1];
    if (b.shape[b.rank - 2] != k)
        return ir_shape_fail(
            g, n, 2, n->inputs,
            "matmul: the left operand has %lld columns but the right one has %lld rows",
            (long long)k, (long long)b.shape[b.rank - 2]);
    int rank;
    int64_t shape[IR_MAX_RANK];
    if (!broadcast(&a, &b, 2, &rank, shape) || rank + 2 > IR_MAX_RANK)
        return ir_shape_fail(g, n, 2, n->inputs, "matmul: the batch dimensions do not broadcast");
    if (!a_vec) shape[rank++] = a.shape[a.rank - 2];
    if (!b_vec) shape[rank++] = b.shape[b.rank - 1];
    set_shape(n, QMC_DTYPE_F32, rank, shape);
    return true;
}

static bool infer_norm(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]];
    if (!need_f32(g, n, n->inputs[0])) return false;
    if (x->rank < 1)
        return ir_shape_fail(g, n, 1, n->inputs, "%s needs at least one dimension",
                             ir_op_name(n->op));
    int64_t d = x->shape[x->rank - 1];
    for (int i = 1; i < n->n_inputs; i++) {
        const ir_node *p = &g->nodes[n->inputs[i]];
        if (p->rank != 1 || p->shape[0] != d) {
            int32_t ops[2] = {n->inputs[0], n->inputs[i]};
            return ir_shape_fail(g, n, 2, ops,
                                 "%s: the %s must have shape [%lld], the size of the last axis",
                                 ir_op_name(n->op), i == 1 ? "weight" : "bias", (long long)d);
        }
    }
    set_shape(n, QMC_DTYPE_F32, x->rank, x->shape);
    return true;
}

static bool infer_embedding(ir_graph *g, ir_node *n)
{
    const ir_node *t = &g->nodes[n->inputs[0]], *idx = &g->nodes[n->inputs[1]];
    if (t->rank != 2 || t->dtype != QMC_DTYPE_F32)
        return ir_shape_fail(g, n, 1, n->inputs, "embedding needs a 2-D float table [rows, dim]");
    if (idx->dtype != QMC_DTYPE_I32)
        return ir_shape_fail(g, n, 1, &n->inputs[1], "embedding needs i32 indices, not %s",
                             qmc_dtype_name(idx->dtype));
    if (idx->rank + 1 > IR_MAX_RANK)
        return ir_shape_fail(g, n, 1, &n->inputs[1], "embedding: too many index dimensions");
    int64_t shape[IR_MAX_RANK];
    memcpy(shape, idx->shape, sizeof shape[0] * (size_t)idx->rank);
    shape[idx->rank] = t->shape[1];
    set_shape(n, QMC_DTYPE_F32, idx->rank + 1, shape);
    return true;
}

static bool infer_reshape(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]];
    if (ir_node_count(x) != ir_node_count(n)) {
        char sx[RT_SHAPE_STR_MAX], sn[RT_SHAPE_STR_MAX];
        return ir_shape_fail(g, n, 1, n->inputs,
                             "reshape from %s to %s changes the number of elements",
                             rt_shape_str(x->dtype, x->rank, x->shape, sx, sizeof sx),
                             rt_shape_str(x->dtype, n->rank, n->shape, sn, sizeof sn));
    }
    n->dtype = x->dtype;
    return true;
}

static bool infer_transpose(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]];
    bool seen[IR_MAX_RANK] = {0};
    int64_t shape[IR_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        int64_t p = n->attr.perm[i];
        if (p < 0 || p >= x->rank || seen[p])
            return ir_shape_fail(g, n, 1, n->inputs,
                                 "transpose: the permutation is not a permutation of %d axes",
                                 x->rank);
        seen[p] = true;
        shape[i] = x->shape[p];
    }
    set_shape(n, x->dtype, x->rank, shape);
    return true;
}

static bool infer_slice(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]];
    int axis = n->attr.axis;
    if (axis < 0 || axis >= x->rank)
        return ir_shape_fail(g, n, 1, n->inputs, "slice: axis %d is out of range for %d dimensions",
                             axis, x->rank);
    if (n->attr.start < 0 || n->attr.end > x->shape[axis] || n->attr.start >= n->attr.end)
        return ir_shape_fail(
            g, n, 1, n->inputs, "slice: [%lld, %lld) is empty or outside axis %d of size %lld",
            (long long)n->attr.start, (long long)n->attr.end, axis, (long long)x->shape[axis]);
    int64_t shape[IR_MAX_RANK];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = n->attr.end - n->attr.start;
    set_shape(n, x->dtype, x->rank, shape);
    return true;
}

static bool infer_concat(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]];
    int axis = n->attr.axis;
    if (axis < 0 || axis >= x->rank)
        return ir_shape_fail(g, n, 1, n->inputs,
                             "concat: axis %d is out of range for %d dimensions", axis, x->rank);
    int64_t shape[IR_MAX_RANK];
    memcpy(shape, x->shape, sizeof shape);
    for (int i = 1; i < n->n_inputs; i++) {
        const ir_node *y = &g->nodes[n->inputs[i]];
        bool ok = y->rank == x->rank && y->dtype == x->dtype;
        for (int d = 0; ok && d < x->rank; d++) ok = d == axis || y->shape[d] == x->shape[d];
        if (!ok) {
            int32_t ops[2] = {n->inputs[0], n->inputs[i]};
            return ir_shape_fail(g, n, 2, ops,
                                 "concat: operand %d does not match operand 1 outside axis %d",
                                 i + 1, axis);
        }
        shape[axis] += y->shape[axis];
    }
    set_shape(n, x->dtype, x->rank, shape);
    return true;
}

static bool infer_attention(ir_graph *g, ir_node *n)
{
    const ir_node *q = &g->nodes[n->inputs[0]], *k = &g->nodes[n->inputs[1]],
                  *v = &g->nodes[n->inputs[2]];
    for (int i = 0; i < 3; i++)
        if (!need_f32(g, n, n->inputs[i])) return false;
    if (q->rank != 2 || k->rank != 2 || v->rank != 2)
        return ir_shape_fail(g, n, 3, n->inputs,
                             "attention needs 2-D q, k and v [tokens, features]");
    int h = n->attr.heads, kvh = n->attr.kv_heads ? n->attr.kv_heads : h;
    if (kvh == h && (q->shape[1] != k->shape[1] || k->shape[0] != v->shape[0]))
        return ir_shape_fail(
            g, n, 3, n->inputs,
            "attention: q and k must have the same features and k and v the same tokens");
    if (h < 1 || q->shape[1] % h)
        return ir_shape_fail(g, n, 3, n->inputs,
                             "attention: %d heads do not divide the %lld features of %s", h,
                             (long long)q->shape[1], kvh == h ? "q and k" : "q");
    if (kvh < 1 || h % kvh)
        return ir_shape_fail(g, n, 3, n->inputs,
                             "attention: %d key/value heads do not divide the %d query heads", kvh,
                             h);
    int64_t hd = q->shape[1] / h;
    if (k->shape[1] != hd * kvh)
        return ir_shape_fail(g, n, 3, n->inputs,
                             "attention: k must have %d heads of %lld features (%lld), like q's "
                             "heads, not %lld",
                             kvh, (long long)hd, (long long)(hd * kvh), (long long)k->shape[1]);
    if (v->shape[1] % kvh)
        return ir_shape_fail(g, n, 3, n->inputs,
                             "attention: %d %sheads do not divide the %lld features of v", kvh,
                             kvh == h ? "" : "key/value ", (long long)v->shape[1]);
    if (k->shape[0] != v->shape[0])
        return ir_shape_fail(g, n, 3, n->inputs, "attention: k and v must have the same tokens");
    if (n->attr.cached && k->shape[0] != q->shape[0])
        return ir_shape_fail(g, n, 3, n->inputs,
                             "attention with a cache needs as many new keys as queries");
    if (q->shape[0] > IR_MAX_ELEMENTS / k->shape[0])
        return ir_shape_fail(g, n, 2, n->inputs,
                             "attention: %lld queries and %lld keys are too many scores",
                             (long long)q->shape[0], (long long)k->shape[0]);
    if (n->attr.causal && q->shape[0] > k->shape[0])
        return ir_shape_fail(g, n, 2, n->inputs,
                             "causal attention needs at least as many keys as queries");
    int64_t shape[2] = {q->shape[0], v->shape[1] / kvh * h};
    set_shape(n, QMC_DTYPE_F32, 2, shape);
    return true;
}

static bool infer_rope(ir_graph *g, ir_node *n)
{
    const ir_node *x = &g->nodes[n->inputs[0]];
    if (!need_f32(g, n, n->inputs[0])) return false;
    if (x->rank != 2)
        return ir_shape_fail(g, n, 1, n->inputs, "rope needs a 2-D input [tokens, features]");
    int h = n->attr.heads;
    if (h < 1 || x->shape[1] % h || (x->shape[1] / h) % 2)
        return ir_shape_fail(g, n, 1, n->inputs,
                             "rope: %lld features are not %d heads of an even size",
                             (long long)x->shape[1], h);
    set_shape(n, QMC_DTYPE_F32, 2, x->shape);
    return true;
}

/* Rejects results with more than IR_MAX_ELEMENTS elements (concat in a
 * loop doubles a shape each time), so later size arithmetic cannot overflow. */
static bool check_size(ir_graph *g, ir_node *n)
{
    int64_t count = 1;
    for (int d = 0; d < n->rank; d++)
        if (__builtin_mul_overflow(count, n->shape[d], &count) || count > IR_MAX_ELEMENTS) {
            char what[160];
            return ir_shape_fail(g, n, 0, NULL, "%s would have more than %lld elements",
                                 ir_node_describe(g, (int32_t)(n - g->nodes), what, sizeof what),
                                 (long long)IR_MAX_ELEMENTS);
        }
    return true;
}

static bool infer_op(ir_graph *g, ir_node *n)
{
    switch (n->op) {
    case IR_OP_INPUT:
    case IR_OP_WEIGHT:
    case IR_OP_CONST: return true; /* set when created */
    case IR_OP_LINEAR: return infer_linear(g, n);
    case IR_OP_MATMUL: return infer_matmul(g, n);
    case IR_OP_ADD:
    case IR_OP_SUB:
    case IR_OP_MUL:
    case IR_OP_DIV:
    case IR_OP_BINARY:
    case IR_OP_WHERE: return infer_elementwise(g, n);
    case IR_OP_EXPAND: return infer_expand(g, n);
    case IR_OP_REDUCE: return infer_reduce(g, n);
    case IR_OP_GATHER: return infer_gather(g, n);
    case IR_OP_CAST:
        set_shape(n, (qmc_dtype)n->attr.fn, g->nodes[n->inputs[0]].rank,
                  g->nodes[n->inputs[0]].shape);
        return true;
    case IR_OP_RELU:
    case IR_OP_GELU:
    case IR_OP_SILU:
    case IR_OP_TANH:
    case IR_OP_UNARY:
        if (!need_f32(g, n, n->inputs[0])) return false;
        set_shape(n, QMC_DTYPE_F32, g->nodes[n->inputs[0]].rank, g->nodes[n->inputs[0]].shape);
        return true;
    case IR_OP_SOFTMAX: {
        const ir_node *x = &g->nodes[n->inputs[0]];
        if (!need_f32(g, n, n->inputs[0])) return false;
        if (n->attr.axis < 0 || n->attr.axis >= x->rank)
            return ir_shape_fail(g, n, 1, n->inputs,
                                 "%s: axis %d is out of range for %d dimensions",
                                 ir_node_op_name(n), n->attr.axis, x->rank);
        set_shape(n, QMC_DTYPE_F32, x->rank, x->shape);
        return true;
    }
    case IR_OP_LAYERNORM:
    case IR_OP_RMSNORM: return infer_norm(g, n);
    case IR_OP_EMBEDDING: return infer_embedding(g, n);
    case IR_OP_RESHAPE: return infer_reshape(g, n);
    case IR_OP_TRANSPOSE: return infer_transpose(g, n);
    case IR_OP_SLICE: return infer_slice(g, n);
    case IR_OP_CONCAT: return infer_concat(g, n);
    case IR_OP_ATTENTION: return infer_attention(g, n);
    case IR_OP_ROPE: return infer_rope(g, n);
    case IR_OP_POSITIONS: {
        int64_t t = g->seq_len;
        set_shape(n, QMC_DTYPE_I32, 1, &t);
        return true;
    }
    case IR_OP_COUNT: break;
    default: return ir_infer_cnn_shape(g, n);
    }
    QMC_ASSERT(!"unknown op");
    return false;
}

bool ir_infer_node_shape(ir_graph *g, int32_t index)
{
    ir_node *n = &g->nodes[index];
    return infer_op(g, n) && check_size(g, n);
}
