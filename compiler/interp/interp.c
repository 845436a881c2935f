/* interp.c: the reference interpreter, the oracle for generated code.
 *
 * Needs: a verified graph.
 * Guarantees: evaluates the nodes in array order in fp32 for `batch`
 * samples at once, each node into its own buffer (allocated once, at
 * interp_new): slot b of a node's buffer starts b times its element count
 * in; weights and constants are shared by the slots. A linear layer
 * multiplies the rows of every slot in one call; other nodes run slot by
 * slot. Results do not depend on the batch: every slot computes exactly
 * what a batch of one would. Nothing is allocated by interp_run.
 *
 * Weights: f32 tensors of the weights file are read in place from the
 * mapping; small tensors of other dtypes are widened once; larger ones, and
 * weights a provider computes (interp_set_weight_fn), are converted into a
 * scratch buffer each time a node reads them, so the interpreter never
 * holds a whole model's weights as f32. With interp_release_weights, the
 * mapped pages of a weight are dropped (madvise) once the last node that
 * reads it has run, so the resident set stays about one weight, whatever
 * the model's size; the next run reads them back from the page cache.
 *
 * A model with a sequence runs at a position (0 unless set): its cached
 * attentions write their keys and values there and attend to every
 * position before. The caches are the interpreter's, one set for all
 * slots: slots run one after another through an attention, so at
 * position 0 each slot sees only its own keys; past position 0 the
 * batch is one. */
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "interp.h"

/* Weights of other dtypes up to this many elements are widened once. */
enum { SMALL_WEIGHT = 1 << 20 };

struct interp {
    sup_arena *arena;
    const ir_graph *g;
    int cap, batch;         /* slots allocated, slots evaluated */
    int failed_slot;        /* the slot whose evaluation failed last, or -1 */
    void **buf;             /* per node: its slots (f32, or i32 for i32 inputs); per
                             * weight node: its f32 values in place or widened once,
                             * or NULL (converted per use) */
    const float **wset;     /* per weight node: values set by interp_set_weight, or NULL */
    interp_weight_fn **wfn; /* per weight node: a provider, or NULL */
    void **wctx;
    float **wcopy;     /* per weight node: a copy made for interp_node_value */
    int32_t *last_use; /* per weight node: the last node reading it */
    bool release;      /* drop mapped pages after the last use */
    bool *act8;        /* per weight node: simulate int8 activations (qformat.act8) */
    float *act_scale;  /* ... with this fixed scale, or 0 per row */
    int32_t *act_zero; /* ... and the model's zero point, codes in [-128, 127] (act_model),
                        * or INT32_MIN: symmetric codes in [-127, 127] */
    const void **view; /* per node, while a node runs: the slot it works on */
    float **use;       /* per-use conversion buffers, one per weight operand */
    int n_use;
    size_t use_floats;
    float *scratch; /* attention scores, int8 activations */
    size_t scratch_floats;
    float *xt; /* the linear kernel's transposed rows */
    size_t xt_floats;
    int64_t pos;                /* a model with a sequence: the position of the first token */
    float **cache_k, **cache_v; /* per cache: [context][k_dim], [context][v_dim] */
};

static size_t node_floats(const ir_node *n) { return (size_t)ir_node_count(n); }

static bool batched(const ir_node *n) { return n->op != IR_OP_WEIGHT && n->op != IR_OP_CONST; }

static bool linear_of_weight(const ir_graph *g, const ir_node *n)
{
    return n->op == IR_OP_LINEAR && g->nodes[n->inputs[1]].op == IR_OP_WEIGHT;
}

/* Scratch needed by node n beyond its own buffer, for cap slots. */
static size_t scratch_need(const ir_graph *g, const ir_node *n, int cap)
{
    if (n->op == IR_OP_ATTENTION) {
        const ir_node *q = &g->nodes[n->inputs[0]], *k = &g->nodes[n->inputs[1]];
        int64_t s = n->attr.cached ? g->context : k->shape[0];
        return (size_t)(q->shape[0] * s + s * q->shape[1] / n->attr.heads);
    }
    if (linear_of_weight(g, n)) {
        /* the activations quantized to int8 and back, and one row's codes
         * (reserved for every weight matrix: interp_set_act8 may turn it on) */
        int64_t k = g->nodes[n->inputs[1]].shape[1];
        return node_floats(&g->nodes[n->inputs[0]]) * (size_t)cap + (size_t)(k + 3) / 4;
    }
    if (ir_is_cnn_op(n->op)) return interp_cnn_scratch(g, n);
    return 0;
}

/* The linear kernel's scratch for node n. */
static size_t xt_need(const ir_graph *g, const ir_node *n, int cap)
{
    if (n->op != IR_OP_LINEAR) return 0;
    const ir_node *w = &g->nodes[n->inputs[1]];
    int64_t rows = ir_node_count(n) / w->shape[0];
    return interp_ref_linear_scratch(rows * (linear_of_weight(g, n) ? cap : 1), w->shape[1]);
}

/* `:a8`: each row of x quantized to int8 with its own scale (as the
 * generated kernels do, q_quantize_row_a8_ref) or the fixed calibrated
 * one, and dequantized, into scratch; returns the rows to multiply. With
 * a model's zero point (zero > INT32_MIN): ONNX's QuantizeLinear to
 * [-128, 127] and DequantizeLinear, (code - zero) * scale. */
static const float *act8_rows(interp *it, const float *x, int64_t rows, int64_t k,
                              float fixed_scale, int32_t zero)
{
    float *xs = it->scratch;
    int8_t *xq = (int8_t *)(it->scratch + rows * k);
    bool model = zero != INT32_MIN;
    for (int64_t m = 0; m < rows; m++) {
        float scale = fixed_scale;
        if (fixed_scale > 0)
            for (int64_t j = 0; j < k; j++)
                xq[j] = (int8_t)q_int_encode(x[m * k + j] / scale, model ? zero : 0,
                                             model ? -128 : -127, 127);
        else
            q_quantize_row_a8_ref(x + m * k, k, xq, &scale);
        for (int64_t j = 0; j < k; j++)
            xs[m * k + j] = (float)((int32_t)xq[j] - (model ? zero : 0)) * scale;
    }
    return xs;
}

/* A weight's values if they can be held: in place, or widened once if
 * small; NULL if they are converted per use. */
static const float *weight_f32(interp *it, const ir_node *n)
{
    const fe_tensor *t = n->tensor;
    if (t->dtype == QMC_DTYPE_F32 && (uintptr_t)t->data % sizeof(float) == 0) return t->data;
    if (t->count > SMALL_WEIGHT) return NULL;
    float *copy = sup_arena_alloc(it->arena, sizeof(float) * (size_t)(t->count ? t->count : 1));
    fe_tensor_to_f32(t, copy);
    return copy;
}

static void plan_weights(interp *it)
{
    const ir_graph *g = it->g;
    int64_t largest = 1;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        int weights = 0;
        for (int j = 0; j < n->n_inputs; j++)
            if (g->nodes[n->inputs[j]].op == IR_OP_WEIGHT) {
                it->last_use[n->inputs[j]] = i;
                weights++;
            }
        if (weights > it->n_use) it->n_use = weights;
        if (n->op == IR_OP_WEIGHT && ir_node_count(n) > largest) largest = ir_node_count(n);
    }
    it->use = sup_arena_alloc(it->arena, sizeof *it->use * (size_t)(it->n_use + 1));
    it->use_floats = (size_t)largest;
}

interp *interp_new_batch(sup_arena *arena, const ir_graph *g, int cap)
{
    QMC_ASSERT(cap >= 1);
    interp *it = sup_arena_alloc(arena, sizeof *it);
    it->arena = arena;
    it->g = g;
    it->cap = it->batch = cap;
    it->failed_slot = -1;
    size_t nn = (size_t)g->n_nodes;
    it->buf = sup_arena_alloc(arena, sizeof *it->buf * nn);
    it->wset = sup_arena_alloc(arena, sizeof *it->wset * nn);
    it->wfn = sup_arena_alloc(arena, sizeof *it->wfn * nn);
    it->wctx = sup_arena_alloc(arena, sizeof *it->wctx * nn);
    it->wcopy = sup_arena_alloc(arena, sizeof *it->wcopy * nn);
    it->last_use = sup_arena_alloc(arena, sizeof *it->last_use * nn);
    it->act8 = sup_arena_alloc(arena, sizeof *it->act8 * nn);
    it->act_scale = sup_arena_alloc(arena, sizeof *it->act_scale * nn);
    it->act_zero = sup_arena_alloc(arena, sizeof *it->act_zero * nn);
    it->view = sup_arena_alloc(arena, sizeof *it->view * nn);
    plan_weights(it);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        size_t need = scratch_need(g, n, cap), xt = xt_need(g, n, cap);
        if (need > it->scratch_floats) it->scratch_floats = need;
        if (xt > it->xt_floats) it->xt_floats = xt;
        if (n->op == IR_OP_WEIGHT) {
            it->buf[i] = (void *)weight_f32(it, n);
            it->act8[i] = n->qformat.act8;
            it->act_scale[i] = n->qformat.act_scale;
            it->act_zero[i] = n->qformat.act_model ? n->qformat.act_zero : INT32_MIN;
        } else if (n->op == IR_OP_CONST) {
            float *c = sup_arena_alloc(arena, sizeof(float));
            *c = n->attr.value;
            it->buf[i] = c;
        } else {
            it->buf[i] = sup_arena_alloc(arena, 4 * node_floats(n) * (size_t)cap); /* f32 or i32 */
        }
    }
    it->scratch = sup_arena_alloc(arena, sizeof(float) * (it->scratch_floats + 1));
    it->cache_k = sup_arena_alloc(arena, sizeof *it->cache_k * (size_t)(g->n_caches + 1));
    it->cache_v = sup_arena_alloc(arena, sizeof *it->cache_v * (size_t)(g->n_caches + 1));
    for (int c = 0; c < g->n_caches; c++) {
        it->cache_k[c] =
            sup_arena_alloc(arena, sizeof(float) * (size_t)(g->context * g->caches[c].k_dim));
        it->cache_v[c] =
            sup_arena_alloc(arena, sizeof(float) * (size_t)(g->context * g->caches[c].v_dim));
    }
    it->xt = sup_arena_alloc(arena, sizeof(float) * (it->xt_floats + 1));
    return it;
}

interp *interp_new(sup_arena *arena, const ir_graph *g) { return interp_new_batch(arena, g, 1); }

void interp_set_batch(interp *it, int batch)
{
    QMC_ASSERT(batch >= 1 && batch <= it->cap);
    it->batch = batch;
}

int interp_batch(const interp *it) { return it->batch; }

int interp_failed_slot(const interp *it) { return it->failed_slot; }

size_t interp_slot_bytes(const ir_graph *g)
{
    size_t bytes = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (batched(&g->nodes[i])) bytes += 4 * node_floats(&g->nodes[i]);
    return bytes;
}

void interp_set_position(interp *it, int64_t pos)
{
    QMC_ASSERT(pos == 0 || it->batch == 1);
    it->pos = pos;
}

void interp_set_weight(interp *it, int32_t node, const float *data)
{
    QMC_ASSERT(it->g->nodes[node].op == IR_OP_WEIGHT);
    it->wset[node] = data;
    it->wfn[node] = NULL;
}

void interp_set_weight_fn(interp *it, int32_t node, interp_weight_fn *fn, void *ctx)
{
    QMC_ASSERT(it->g->nodes[node].op == IR_OP_WEIGHT);
    it->wset[node] = NULL;
    it->wfn[node] = fn;
    it->wctx[node] = ctx;
}

void interp_reset_weight(interp *it, int32_t node)
{
    QMC_ASSERT(it->g->nodes[node].op == IR_OP_WEIGHT);
    it->wset[node] = NULL;
    it->wfn[node] = NULL;
}

void interp_set_act8(interp *it, int32_t w, bool act8, float act_scale)
{
    QMC_ASSERT(it->g->nodes[w].op == IR_OP_WEIGHT);
    it->act8[w] = act8;
    it->act_scale[w] = act_scale;
    it->act_zero[w] = INT32_MIN;
}

void interp_release_weights(interp *it, bool on) { it->release = on; }

void interp_weight_release(const ir_graph *g, int32_t node)
{
    const fe_tensor *t = g->nodes[node].tensor;
    if (t) fe_tensor_release(t);
}

void *interp_input(interp *it, int port) { return it->buf[it->g->inputs[port].node]; }

void *interp_input_slot(interp *it, int port, int slot)
{
    QMC_ASSERT(slot >= 0 && slot < it->cap);
    const ir_node *n = &it->g->nodes[it->g->inputs[port].node];
    return (char *)it->buf[it->g->inputs[port].node] + 4 * node_floats(n) * (size_t)slot;
}

const float *interp_output(interp *it, int port) { return it->buf[it->g->outputs[port].node]; }

const float *interp_output_slot(interp *it, int port, int slot)
{
    QMC_ASSERT(slot >= 0 && slot < it->cap);
    const ir_node *n = &it->g->nodes[it->g->outputs[port].node];
    return (const float *)it->buf[it->g->outputs[port].node] + node_floats(n) * (size_t)slot;
}

void interp_use_quantized_weights(interp *it, const ir_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].qw) interp_set_weight(it, i, g->nodes[i].qw->dequant);
}

/* A per-use conversion buffer. */
static float *use_buffer(interp *it, int u)
{
    QMC_ASSERT(u < it->n_use);
    if (!it->use[u]) it->use[u] = sup_arena_alloc(it->arena, sizeof(float) * it->use_floats);
    return it->use[u];
}

/* The values weight node w evaluates to now; u counts the per-use
 * buffers taken by the node being evaluated. */
static const float *weight_now(interp *it, int32_t w, int *u)
{
    if (it->wset[w]) return it->wset[w];
    if (it->wfn[w]) {
        float *dst = use_buffer(it, (*u)++);
        it->wfn[w](it->wctx[w], w, dst);
        return dst;
    }
    if (it->buf[w]) return it->buf[w];
    float *dst = use_buffer(it, (*u)++);
    fe_tensor_to_f32(it->g->nodes[w].tensor, dst);
    return dst;
}

const float *interp_node_value(interp *it, int32_t node)
{
    const ir_node *n = &it->g->nodes[node];
    if (n->op != IR_OP_WEIGHT) return it->buf[node];
    if (it->wset[node]) return it->wset[node];
    if (!it->wfn[node] && it->buf[node]) return it->buf[node];
    if (!it->wcopy[node])
        it->wcopy[node] = sup_arena_alloc(it->arena, sizeof(float) * node_floats(n));
    if (it->wfn[node])
        it->wfn[node](it->wctx[node], node, it->wcopy[node]);
    else
        fe_tensor_to_f32(n->tensor, it->wcopy[node]);
    return it->wcopy[node];
}

/* Strides of x's elements when x is broadcast to a shape of rank `rank`
 * (0 along broadcast dimensions). */
static void broadcast_strides(const ir_node *x, int rank, int64_t *strides)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        int xi = i - (rank - x->rank);
        if (xi < 0 || x->shape[xi] == 1) {
            strides[i] = 0;
        } else {
            strides[i] = s;
        }
        if (xi >= 0) s *= x->shape[xi];
    }
}

static float apply(ir_op op, float a, float b)
{
    switch (op) {
    case IR_OP_ADD: return a + b;
    case IR_OP_SUB: return a - b;
    case IR_OP_MUL: return a * b;
    default: return a / b;
    }
}

static void eval_elementwise(interp *it, const ir_node *n, float *y)
{
    const ir_node *an = &it->g->nodes[n->inputs[0]], *bn = &it->g->nodes[n->inputs[1]];
    const float *a = it->view[n->inputs[0]], *b = it->view[n->inputs[1]];
    int64_t count = ir_node_count(n), ca = ir_node_count(an), cb = ir_node_count(bn);
    if (ca == count && cb == count) {
        for (int64_t i = 0; i < count; i++) y[i] = apply(n->op, a[i], b[i]);
        return;
    }
    if (ca == count && cb == 1) {
        for (int64_t i = 0; i < count; i++) y[i] = apply(n->op, a[i], b[0]);
        return;
    }
    int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK], idx[IR_MAX_RANK] = {0};
    broadcast_strides(an, n->rank, sa);
    broadcast_strides(bn, n->rank, sb);
    int64_t oa = 0, ob = 0;
    for (int64_t i = 0; i < count; i++) {
        y[i] = apply(n->op, a[oa], b[ob]);
        for (int d = n->rank - 1; d >= 0; d--) { /* odometer increment */
            idx[d]++;
            oa += sa[d];
            ob += sb[d];
            if (idx[d] < n->shape[d]) break;
            oa -= sa[d] * idx[d];
            ob -= sb[d] * idx[d];
            idx[d] = 0;
        }
    }
}

static void eval_matmul(interp *it, const ir_node *n, float *y)
{
    ir_node a = it->g->nodes[n->inputs[0]], b = it->g->nodes[n->inputs[1]];
    const float *pa = it->view[n->inputs[0]], *pb = it->view[n->inputs[1]];
    if (a.rank == 1) a.shape[1] = a.shape[0], a.shape[0] = 1, a.rank = 2;
    if (b.rank == 1) b.shape[1] = 1, b.rank = 2;
    int64_t m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], nn = b.shape[b.rank - 1];
    /* batch dims: everything of the output but the matrix dims */
    ir_node abatch = a, bbatch = b;
    abatch.rank -= 2, bbatch.rank -= 2;
    int brank = abatch.rank > bbatch.rank ? abatch.rank : bbatch.rank;
    int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK], shape[IR_MAX_RANK], batches = 1;
    broadcast_strides(&abatch, brank, sa);
    broadcast_strides(&bbatch, brank, sb);
    for (int d = 0; d < brank; d++) {
        int ai = d - (brank - abatch.rank), bi = d - (brank - bbatch.rank);
        int64_t da = ai >= 0 ? abatch.shape[ai] : 1, db = bi >= 0 ? bbatch.shape[bi] : 1;
        shape[d] = da > db ? da : db;
        batches *= shape[d];
    }
    for (int64_t bidx = 0; bidx < batches; bidx++) {
        int64_t rem = bidx, oa = 0, ob = 0;
        for (int d = brank - 1; d >= 0; d--) {
            int64_t i = rem % shape[d];
            rem /= shape[d];
            oa += i * sa[d];
            ob += i * sb[d];
        }
        interp_ref_matmul(pa + oa * m * k, pb + ob * k * nn, y + bidx * m * nn, m, k, nn);
    }
}

static void eval_transpose(interp *it, const ir_node *n, float *y)
{
    const ir_node *x = &it->g->nodes[n->inputs[0]];
    const float *px = it->view[n->inputs[0]];
    int64_t xs[IR_MAX_RANK], s = 1;
    for (int d = x->rank - 1; d >= 0; d--) xs[d] = s, s *= x->shape[d];
    int64_t idx[IR_MAX_RANK] = {0}, count = ir_node_count(n), off = 0;
    for (int64_t i = 0; i < count; i++) {
        y[i] = px[off];
        for (int d = n->rank - 1; d >= 0; d--) {
            int64_t stride = xs[n->attr.perm[d]];
            idx[d]++;
            off += stride;
            if (idx[d] < n->shape[d]) break;
            off -= stride * idx[d];
            idx[d] = 0;
        }
    }
}

/* Splits shape around axis: outer * dim * inner. */
static void around_axis(const ir_node *x, int axis, int64_t *outer, int64_t *dim, int64_t *inner)
{
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= x->shape[d];
    for (int d = axis + 1; d < x->rank; d++) *inner *= x->shape[d];
    *dim = x->shape[axis];
}

static void eval_slice(interp *it, const ir_node *n, float *y)
{
    const ir_node *x = &it->g->nodes[n->inputs[0]];
    const float *px = it->view[n->inputs[0]];
    int64_t outer, dim, inner, len = n->attr.end - n->attr.start;
    around_axis(x, n->attr.axis, &outer, &dim, &inner);
    for (int64_t o = 0; o < outer; o++)
        memcpy(y + o * len * inner, px + (o * dim + n->attr.start) * inner,
               sizeof(float) * (size_t)(len * inner));
}

static void eval_concat(interp *it, const ir_node *n, float *y)
{
    int64_t outer, dim, inner, at = 0;
    around_axis(n, n->attr.axis, &outer, &dim, &inner);
    for (int i = 0; i < n->n_inputs; i++) {
        const ir_node *x = &it->g->nodes[n->inputs[i]];
        const float *px = it->view[n->inputs[i]];
        int64_t len = x->shape[n->attr.axis];
        for (int64_t o = 0; o < outer; o++)
            memcpy(y + (o * dim + at) * inner, px + o * len * inner,
                   sizeof(float) * (size_t)(len * inner));
        at += len;
    }
}

static bool eval_embedding(interp *it, const ir_node *n, float *y)
{
    const ir_node *t = &it->g->nodes[n->inputs[0]], *ix = &it->g->nodes[n->inputs[1]];
    const float *table = it->view[n->inputs[0]];
    const int32_t *idx = it->view[n->inputs[1]];
    int64_t rows = t->shape[0], d = t->shape[1], count = ir_node_count(ix);
    for (int64_t i = 0; i < count; i++) {
        if (idx[i] < 0 || idx[i] >= rows) {
            sup_error(n->loc,
                      "embedding: index %d at position %lld is outside the table's %lld rows",
                      idx[i], (long long)i, (long long)rows);
            return false;
        }
        memcpy(y + i * d, table + (int64_t)idx[i] * d, sizeof(float) * (size_t)d);
    }
    return true;
}

static bool eval_gather(interp *it, const ir_node *n, float *y)
{
    const ir_node *x = &it->g->nodes[n->inputs[0]], *ix = &it->g->nodes[n->inputs[1]];
    const int32_t *idx = it->buf[n->inputs[1]];
    int64_t bad = interp_ref_gather(x, it->buf[n->inputs[0]], ix, idx, n->attr.axis, y);
    if (bad < 0) return true;
    sup_error(n->loc, "gather: index %d at position %lld is outside axis %d of size %lld", idx[bad],
              (long long)bad, n->attr.axis, (long long)x->shape[n->attr.axis]);
    return false;
}

/* n vectors of d values into a cache: as they are, or as a quantized
 * cache holds them (each vector's codes times its scale, as generated code
 * reads them back). */
static void store_rows(interp *it, float *dst, const float *src, int64_t n, int64_t d)
{
    rt_kv_format f = it->g->kv_format;
    if (f == RT_KV_F32) {
        memcpy(dst, src, sizeof(float) * (size_t)(n * d));
        return;
    }
    uint8_t *codes = (uint8_t *)it->scratch;
    for (int64_t r = 0; r < n; r++) {
        float scale = rt_kv_quantize(f, src + r * d, d, codes);
        for (int64_t i = 0; i < d; i++) dst[r * d + i] = rt_kv_decode(f, codes[i]) * scale;
    }
}

/* Attention, through its cache when it has one: the new keys and values
 * are stored at the model's position, and the queries (the last t
 * positions) attend to everything stored so far. */
static bool eval_attention(interp *it, const ir_node *n, float *y)
{
    const ir_graph *g = it->g;
    const ir_node *q = &g->nodes[n->inputs[0]], *k = &g->nodes[n->inputs[1]],
                  *v = &g->nodes[n->inputs[2]];
    interp_attn a = {.t = q->shape[0],
                     .s = k->shape[0],
                     .d = q->shape[1],
                     .dv = n->shape[1],
                     .heads = n->attr.heads,
                     .kv_heads = n->attr.kv_heads ? n->attr.kv_heads : n->attr.heads,
                     .causal = n->attr.causal,
                     .scale = n->attr.scale};
    const float *kp = it->view[n->inputs[1]], *vp = it->view[n->inputs[2]];
    if (n->attr.cached) {
        if (it->pos < 0 || it->pos + a.t > g->context) {
            sup_error(n->loc,
                      "the context is full: %lld tokens at position %lld do not fit in %lld",
                      (long long)a.t, (long long)it->pos, (long long)g->context);
            return false;
        }
        float *ck = it->cache_k[n->attr.slot], *cv = it->cache_v[n->attr.slot];
        store_rows(it, ck + it->pos * k->shape[1], kp, a.t * a.kv_heads, k->shape[1] / a.kv_heads);
        store_rows(it, cv + it->pos * v->shape[1], vp, a.t * a.kv_heads, v->shape[1] / a.kv_heads);
        kp = ck, vp = cv;
        a.s = it->pos + a.t;
    }
    interp_ref_attention_grouped(it->view[n->inputs[0]], kp, vp, y, &a, it->scratch);
    return true;
}

static bool eval_slot(interp *it, int32_t i)
{
    const ir_graph *g = it->g;
    const ir_node *n = &g->nodes[i];
    float *y = (float *)it->view[i];
    const float *x = n->n_inputs ? it->view[n->inputs[0]] : NULL;
    int64_t count = ir_node_count(n);
    switch (n->op) {
    case IR_OP_INPUT:
    case IR_OP_WEIGHT:
    case IR_OP_CONST: return true;
    case IR_OP_LINEAR: {
        /* a computed right operand, slot by slot (a weight's: eval_linear) */
        const ir_node *w = &g->nodes[n->inputs[1]];
        int64_t nn = w->shape[0], k = w->shape[1];
        interp_ref_linear(x, it->view[n->inputs[1]],
                          n->n_inputs == 3 ? it->view[n->inputs[2]] : NULL, y, count / nn, k, nn,
                          it->xt);
        return true;
    }
    case IR_OP_MATMUL: eval_matmul(it, n, y); return true;
    case IR_OP_ADD:
    case IR_OP_SUB:
    case IR_OP_MUL:
    case IR_OP_DIV: eval_elementwise(it, n, y); return true;
    case IR_OP_RELU:
        for (int64_t j = 0; j < count; j++) y[j] = x[j] > 0 ? x[j] : 0;
        return true;
    case IR_OP_GELU:
        for (int64_t j = 0; j < count; j++) y[j] = interp_ref_gelu(x[j]);
        return true;
    case IR_OP_SILU:
        for (int64_t j = 0; j < count; j++) y[j] = interp_ref_silu(x[j]);
        return true;
    case IR_OP_TANH:
        for (int64_t j = 0; j < count; j++) y[j] = tanhf(x[j]);
        return true;
    case IR_OP_SOFTMAX: {
        int64_t outer, dim, inner;
        around_axis(n, n->attr.axis, &outer, &dim, &inner);
        if (n->attr.log)
            interp_ref_log_softmax(x, y, outer, dim, inner);
        else
            interp_ref_softmax(x, y, outer, dim, inner);
        return true;
    }
    case IR_OP_UNARY:
        for (int64_t j = 0; j < count; j++) y[j] = interp_ref_unary(&n->attr, x[j]);
        return true;
    case IR_OP_BINARY:
    case IR_OP_WHERE:
    case IR_OP_EXPAND: {
        const ir_node *in[3];
        const void *vals[3];
        for (int j = 0; j < n->n_inputs; j++)
            in[j] = &g->nodes[n->inputs[j]], vals[j] = it->buf[n->inputs[j]];
        interp_ref_broadcast(n, in, vals, y);
        return true;
    }
    case IR_OP_REDUCE: interp_ref_reduce(&g->nodes[n->inputs[0]], x, n, y); return true;
    case IR_OP_GATHER: return eval_gather(it, n, y);
    case IR_OP_CAST:
        interp_ref_cast(g->nodes[n->inputs[0]].dtype, n->dtype, x, y, count);
        return true;
    case IR_OP_LAYERNORM:
    case IR_OP_RMSNORM: {
        int64_t d = n->shape[n->rank - 1];
        if (n->op == IR_OP_LAYERNORM)
            interp_ref_layernorm(x, it->view[n->inputs[1]], it->view[n->inputs[2]], y, count / d, d,
                                 n->attr.eps);
        else
            interp_ref_rmsnorm(x, it->view[n->inputs[1]], y, count / d, d, n->attr.eps);
        return true;
    }
    case IR_OP_EMBEDDING: return eval_embedding(it, n, y);
    case IR_OP_RESHAPE: memcpy(y, x, 4 * (size_t)count); return true;
    case IR_OP_TRANSPOSE: eval_transpose(it, n, y); return true;
    case IR_OP_SLICE: eval_slice(it, n, y); return true;
    case IR_OP_CONCAT: eval_concat(it, n, y); return true;
    case IR_OP_ATTENTION: return eval_attention(it, n, y);
    case IR_OP_ROPE:
        interp_ref_rope(x, y, n->shape[0], n->shape[1], n->attr.heads, n->attr.theta,
                        n->attr.interleaved, it->pos);
        return true;
    case IR_OP_POSITIONS:
        for (int64_t j = 0; j < count; j++) ((int32_t *)y)[j] = (int32_t)(it->pos + j);
        return true;
    case IR_OP_COUNT: break;
    default: {
        int32_t w = n->op == IR_OP_CONV ? n->inputs[1] : 0;
        interp_eval_cnn(g, n, it->view, y, it->scratch,
                        n->op == IR_OP_CONV && it->act8[w] &&
                            ir_conv_kernel_of(g, n) != IR_CONV_DEPTHWISE,
                        it->act_scale[w]);
        return true;
    }
    }
    QMC_ASSERT(!"unknown op");
    return false;
}

/* A linear layer with a weight matrix: the rows of every slot at once. */
static void eval_linear(interp *it, const ir_node *n, float *y)
{
    const ir_node *w = &it->g->nodes[n->inputs[1]];
    int64_t nn = w->shape[0], k = w->shape[1], rows = ir_node_count(n) / nn * it->batch;
    const float *x = it->buf[n->inputs[0]];
    int32_t wi = n->inputs[1];
    if (it->act8[wi]) x = act8_rows(it, x, rows, k, it->act_scale[wi], it->act_zero[wi]);
    interp_ref_linear(x, it->view[n->inputs[1]], n->n_inputs == 3 ? it->view[n->inputs[2]] : NULL,
                      y, rows, k, nn, it->xt);
}

/* Points the views of node i and its computed inputs at slot b. */
static void view_slot(interp *it, const ir_node *n, int32_t i, int b)
{
    const ir_graph *g = it->g;
    for (int j = 0; j <= n->n_inputs; j++) {
        int32_t in = j < n->n_inputs ? n->inputs[j] : i;
        const ir_node *x = &g->nodes[in];
        if (batched(x)) it->view[in] = (const char *)it->buf[in] + 4 * node_floats(x) * (size_t)b;
    }
}

static bool eval_node(interp *it, int32_t i)
{
    const ir_graph *g = it->g;
    const ir_node *n = &g->nodes[i];
    if (!batched(n) || n->op == IR_OP_INPUT) return true;
    int u = 0;
    for (int j = 0; j < n->n_inputs; j++) {
        int32_t in = n->inputs[j];
        if (g->nodes[in].op == IR_OP_WEIGHT)
            it->view[in] = weight_now(it, in, &u);
        else if (g->nodes[in].op == IR_OP_CONST)
            it->view[in] = it->buf[in];
    }
    bool ok = true;
    if (linear_of_weight(g, n))
        eval_linear(it, n, it->buf[i]);
    else
        for (int b = 0; b < it->batch && ok; b++) {
            view_slot(it, n, i, b);
            ok = eval_slot(it, i);
            if (!ok) it->failed_slot = b;
        }
    for (int j = 0; it->release && j < n->n_inputs; j++) {
        int32_t in = n->inputs[j];
        if (g->nodes[in].op == IR_OP_WEIGHT && it->last_use[in] == i && !it->wset[in] &&
            !it->wfn[in])
            interp_weight_release(g, in);
    }
    return ok;
}

bool interp_run(interp *it) { return interp_run_from(it, 0); }

bool interp_run_from(interp *it, int32_t first)
{
    for (int32_t i = first; i < it->g->n_nodes; i++)
        if (!eval_node(it, i)) return false;
    return true;
}
