/* fold.c: the fold pass: batch normalisations folded into the
 * convolutions before them.
 *
 * Needs: a graph with shapes (before calibration and precision, so that
 * both see the folded weights).
 * Guarantees: every batchnorm whose input is a conv read by nothing else
 * (no fused activation, its weight and bias read by no other node, the
 * batchnorm's parameters weights of the file) is gone; the conv computes
 * what the pair did, with weight W'[m] = W[m] · s[m] and bias b'[m] =
 * b[m] · s[m] + t[m], where s = scale / sqrt(var + eps) and t = bias -
 * mean · s (interp_ref_batchnorm_coeffs, the interpreter's own
 * arithmetic). The conv's weight keeps its name and its node, now holding
 * the folded values (a tensor in memory); a conv without a bias gets one,
 * named after the conv. Other batchnorms stay and are computed as such.
 * Nodes nothing reads any more are dropped. */
#include <string.h>

#include "passes.h"

/* The weight node's values as f32 (its tensor converted if needed). */
static const float *values(sup_arena *arena, const ir_node *w)
{
    const fe_tensor *t = w->tensor;
    if (t->dtype == QMC_DTYPE_F32 && (uintptr_t)t->data % sizeof(float) == 0) return t->data;
    float *f = sup_arena_alloc(arena, sizeof(float) * (size_t)t->count);
    fe_tensor_to_f32(t, f);
    return f;
}

/* A tensor in memory holding data, shaped like `like`. */
static const fe_tensor *memory_tensor(sup_arena *arena, const fe_tensor *like, const char *name,
                                      float *data, int64_t count)
{
    fe_tensor *t = sup_arena_alloc(arena, sizeof *t);
    if (like) *t = *like;
    t->name = name;
    t->dtype = QMC_DTYPE_F32;
    if (!like) t->rank = 1, t->shape[0] = count;
    t->count = count;
    t->data = data;
    t->size = (size_t)count * sizeof(float);
    t->file_offset = 0;
    t->file = 0;
    t->mapped = false; /* nothing for fe_tensor_release to drop */
    return t;
}

/* The conv batchnorm bn can fold into, or -1. */
static int32_t foldable(const ir_graph *g, const int32_t *uses, const ir_node *bn)
{
    int32_t c = bn->inputs[0];
    const ir_node *conv = &g->nodes[c];
    if (conv->op != IR_OP_CONV || conv->attr.win.nhwc || conv->attr.win.act != IR_ACT_NONE ||
        uses[c] != 1 || bn->attr.win.nhwc)
        return -1;
    for (int i = 1; i < 5; i++)
        if (g->nodes[bn->inputs[i]].op != IR_OP_WEIGHT) return -1;
    if (uses[conv->inputs[1]] != 1 || g->nodes[conv->inputs[1]].op != IR_OP_WEIGHT) return -1;
    if (conv->n_inputs == 3 &&
        (uses[conv->inputs[2]] != 1 || g->nodes[conv->inputs[2]].op != IR_OP_WEIGHT))
        return -1;
    return c;
}

/* A name no node of g has: base, or base#2, ... */
static const char *fresh_name(sup_arena *arena, const ir_graph *g, const char *base)
{
    const char *name = base;
    for (int k = 2;; k++) {
        bool taken = false;
        for (int32_t i = 0; i < g->n_nodes && !taken; i++)
            taken = strcmp(g->nodes[i].name, name) == 0;
        if (!taken) return name;
        name = sup_arena_printf(arena, "%s#%d", base, k);
    }
}

/* Copies conv c with its weight (and bias) folded with batchnorm bn. */
static void fold_one(sup_arena *arena, ir_rewrite *rw, const ir_node *bn, int32_t c)
{
    const ir_graph *g = rw->src;
    const ir_node *conv = &g->nodes[c], *w = &g->nodes[conv->inputs[1]];
    int64_t m = w->shape[0], k = w->shape[1];
    float *mul = sup_arena_alloc(arena, sizeof(float) * (size_t)m);
    float *add = sup_arena_alloc(arena, sizeof(float) * (size_t)m);
    const float *p[4];
    for (int i = 0; i < 4; i++) p[i] = values(arena, &g->nodes[bn->inputs[i + 1]]);
    interp_ref_batchnorm_coeffs(p[0], p[1], p[2], p[3], bn->attr.eps, m, mul, add);
    const float *wv = values(arena, w);
    float *fw = sup_arena_alloc(arena, sizeof(float) * (size_t)(m * k));
    for (int64_t r = 0; r < m; r++)
        for (int64_t j = 0; j < k; j++) fw[r * k + j] = wv[r * k + j] * mul[r];
    const float *bv = conv->n_inputs == 3 ? values(arena, &g->nodes[conv->inputs[2]]) : NULL;
    float *fb = sup_arena_alloc(arena, sizeof(float) * (size_t)m);
    for (int64_t r = 0; r < m; r++) fb[r] = (bv ? bv[r] : 0.0f) * mul[r] + add[r];
    /* the weight node (copied already) now holds the folded values */
    ir_node *nw = &rw->dst->nodes[rw->map[conv->inputs[1]]];
    nw->tensor = memory_tensor(arena, w->tensor, w->tensor->name, fw, m * k);
    int32_t bias;
    if (bv) {
        bias = rw->map[conv->inputs[2]];
        const fe_tensor *bt = g->nodes[conv->inputs[2]].tensor;
        rw->dst->nodes[bias].tensor = memory_tensor(arena, bt, bt->name, fb, m);
    } else {
        const char *name = fresh_name(arena, g, sup_arena_printf(arena, "%s.bias", conv->name));
        ir_node b = {.op = IR_OP_WEIGHT,
                     .dtype = QMC_DTYPE_F32,
                     .rank = 1,
                     .shape = {m},
                     .name = name,
                     .loc = bn->loc};
        b.tensor = memory_tensor(arena, NULL, name, fb, m);
        bias = ir_rewrite_add(rw, &b);
    }
    ir_node nc = *conv;
    int32_t in[3] = {rw->map[conv->inputs[0]], rw->map[conv->inputs[1]], bias};
    nc.inputs = in;
    nc.n_inputs = 3;
    rw->map[c] = ir_rewrite_add(rw, &nc);
}

ir_graph *pass_fold(sup_arena *arena, ir_graph *g)
{
    sup_arena tmp = {0};
    int32_t *uses = ir_use_counts(&tmp, g);
    int32_t *into = sup_arena_alloc(&tmp, sizeof *into * (size_t)(g->n_nodes + 1));
    int n = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        into[i] = -1;
        if (g->nodes[i].op == IR_OP_BATCHNORM) into[i] = foldable(g, uses, &g->nodes[i]);
        if (into[i] >= 0) into[into[i]] = i, n++; /* the conv points at its batchnorm */
    }
    if (!n) {
        sup_arena_free(&tmp);
        return g;
    }
    ir_rewrite rw;
    ir_rewrite_begin(arena, g, &rw);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const ir_node *node = &g->nodes[i];
        if (node->op == IR_OP_CONV && into[i] >= 0)
            fold_one(arena, &rw, &g->nodes[into[i]], i);
        else if (node->op == IR_OP_BATCHNORM && into[i] >= 0)
            rw.map[i] = rw.map[into[i]];
        else
            ir_rewrite_copy(&rw, i);
    }
    sup_arena_free(&tmp);
    return ir_prune(arena, ir_rewrite_end(&rw));
}
