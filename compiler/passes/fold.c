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
 * Then the elementwise chains exporters write after convs: multiplications,
 * additions, subtractions and divisions by scalar constants that are a
 * conv's only reader, one after another (y = s · conv(x) + t, PP-LCNet's
 * learnable affine blocks), folded the same way (W' = W · s, b' = b · s +
 * t; the conv as above: no fused activation, weight and bias read by no
 * other node); and x · clip(x + 3, 0, 6) / 6 (or · 1/6), each step read
 * only by the next, made one hardswish op (interp_ref_hardswish: x ·
 * max(0, min(1, x/6 + 1/2)), the same up to rounding), which the layout
 * pass fuses into a conv before it. Nodes nothing reads any more are
 * dropped. */
#include <math.h>
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

/* Copies conv c with its weight (and bias) folded with y = y · mul[m] +
 * add[m] per output channel (mul NULL: 1), as node at (loc: where the
 * folded op was); returns its new index. */
static int32_t fold_into(sup_arena *arena, ir_rewrite *rw, int32_t c, const float *mul,
                         const float *add, sup_loc loc)
{
    const ir_graph *g = rw->src;
    const ir_node *conv = &g->nodes[c], *w = &g->nodes[conv->inputs[1]];
    int64_t m = w->shape[0], k = w->shape[1];
    const float *wv = values(arena, w);
    float *fw = sup_arena_alloc(arena, sizeof(float) * (size_t)(m * k));
    for (int64_t r = 0; r < m; r++)
        for (int64_t j = 0; j < k; j++) fw[r * k + j] = wv[r * k + j] * (mul ? mul[r] : 1.0f);
    const float *bv = conv->n_inputs == 3 ? values(arena, &g->nodes[conv->inputs[2]]) : NULL;
    float *fb = sup_arena_alloc(arena, sizeof(float) * (size_t)m);
    for (int64_t r = 0; r < m; r++) fb[r] = (bv ? bv[r] : 0.0f) * (mul ? mul[r] : 1.0f) + add[r];
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
                     .loc = loc};
        b.tensor = memory_tensor(arena, NULL, name, fb, m);
        bias = ir_rewrite_add(rw, &b);
    }
    ir_node nc = *conv;
    int32_t in[3] = {rw->map[conv->inputs[0]], rw->map[conv->inputs[1]], bias};
    nc.inputs = in;
    nc.n_inputs = 3;
    return ir_rewrite_add(rw, &nc);
}

/* Copies conv c with its weight (and bias) folded with batchnorm bn. */
static void fold_one(sup_arena *arena, ir_rewrite *rw, const ir_node *bn, int32_t c)
{
    const ir_graph *g = rw->src;
    int64_t m = g->nodes[g->nodes[c].inputs[1]].shape[0];
    float *mul = sup_arena_alloc(arena, sizeof(float) * (size_t)m);
    float *add = sup_arena_alloc(arena, sizeof(float) * (size_t)m);
    const float *p[4];
    for (int i = 0; i < 4; i++) p[i] = values(arena, &g->nodes[bn->inputs[i + 1]]);
    interp_ref_batchnorm_coeffs(p[0], p[1], p[2], p[3], bn->attr.eps, m, mul, add);
    rw->map[c] = fold_into(arena, rw, c, mul, add, bn->loc);
}

static ir_graph *fold_batchnorms(sup_arena *arena, ir_graph *g)
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

/* The value of a scalar constant operand (a const, or a weight of one
 * element), in *v; false if node i is none. */
static bool scalar_of(const ir_graph *g, int32_t i, float *v)
{
    const ir_node *n = &g->nodes[i];
    if (n->op == IR_OP_CONST) {
        *v = n->attr.value;
        return true;
    }
    if (n->op != IR_OP_WEIGHT || ir_node_count(n) != 1 || !n->tensor) return false;
    fe_tensor_to_f32(n->tensor, v);
    return true;
}

/* Node u, an elementwise op with a scalar constant, applied to x: the
 * affine map it is, y = x · *mul + *add; false if it is none. */
static bool affine_step(const ir_graph *g, int32_t u, int32_t x, float *mul, float *add)
{
    const ir_node *n = &g->nodes[u];
    if (n->n_inputs != 2 || n->rank != g->nodes[x].rank) return false;
    for (int d = 0; d < n->rank; d++)
        if (n->shape[d] != g->nodes[x].shape[d]) return false;
    int side = n->inputs[0] == x ? 0 : 1; /* where x is */
    if (n->inputs[side] != x || n->inputs[1 - side] == x) return false;
    float k;
    if (!scalar_of(g, n->inputs[1 - side], &k) || !isfinite(k)) return false;
    *mul = 1, *add = 0;
    switch (n->op) {
    case IR_OP_MUL: *mul = k; return true;
    case IR_OP_ADD: *add = k; return true;
    case IR_OP_SUB:
        if (side == 0)
            *add = -k;
        else
            *mul = -1, *add = k;
        return true;
    case IR_OP_DIV:
        if (side != 0 || k == 0) return false;
        *mul = 1 / k;
        return true;
    default: return false;
    }
}

/* Per node with one reader: that reader (else -1). */
static int32_t *single_users(sup_arena *arena, const ir_graph *g, const int32_t *uses)
{
    int32_t *user = sup_arena_alloc(arena, sizeof *user * (size_t)(g->n_nodes + 1));
    for (int32_t i = 0; i < g->n_nodes; i++) user[i] = -1;
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_inputs; j++) {
            int32_t x = g->nodes[i].inputs[j];
            if (uses[x] == 1) user[x] = i;
        }
    return user;
}

/* Whether conv c can take an affine map of its output into its weight and
 * bias: no fused activation, its weight and bias weights of the file that
 * nothing else reads. */
static bool affine_foldable(const ir_graph *g, const int32_t *uses, int32_t c)
{
    const ir_node *conv = &g->nodes[c];
    if (conv->op != IR_OP_CONV || conv->attr.win.act != IR_ACT_NONE) return false;
    for (int i = 1; i < conv->n_inputs; i++)
        if (uses[conv->inputs[i]] != 1 || g->nodes[conv->inputs[i]].op != IR_OP_WEIGHT ||
            !g->nodes[conv->inputs[i]].tensor)
            return false;
    return true;
}

/* Multiplications, additions, subtractions and divisions by scalar
 * constants after a conv (that are its only reader, one after another:
 * PP-LCNet's learnable affine blocks, y = s · conv(x) + t) folded into its
 * weight and bias: W' = W · s, b' = b · s + t. */
static ir_graph *fold_affine(sup_arena *arena, ir_graph *g)
{
    sup_arena tmp = {0};
    int32_t *uses = ir_use_counts(&tmp, g);
    int32_t *user = single_users(&tmp, g, uses);
    size_t n = (size_t)g->n_nodes + 1;
    int32_t *head = sup_arena_alloc(&tmp, sizeof *head * n); /* chain end: its conv */
    bool *inner = sup_arena_alloc(&tmp, n);                  /* conv or chain step not last */
    float *mul = sup_arena_alloc(&tmp, sizeof *mul * n),
          *add = sup_arena_alloc(&tmp, sizeof *add * n);
    int found = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) head[i] = -1;
    for (int32_t c = 0; c < g->n_nodes; c++) {
        if (!affine_foldable(g, uses, c)) continue;
        float s = 1, t = 0, ms, as;
        int32_t end = c;
        while (user[end] >= 0 && affine_step(g, user[end], end, &ms, &as)) {
            s *= ms, t = t * ms + as;
            end = user[end];
        }
        if (end == c) continue;
        for (int32_t x = c; x != end; x = user[x]) inner[x] = true;
        head[end] = c, mul[end] = s, add[end] = t;
        found++;
    }
    if (!found) {
        sup_arena_free(&tmp);
        return g;
    }
    ir_rewrite rw;
    ir_rewrite_begin(arena, g, &rw);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (inner[i]) continue; /* read only by the chain: nothing of it is needed */
        if (head[i] < 0) {
            ir_rewrite_copy(&rw, i);
            continue;
        }
        int32_t c = head[i];
        int64_t m = g->nodes[g->nodes[c].inputs[1]].shape[0];
        float *mv = sup_arena_alloc(arena, sizeof(float) * (size_t)m);
        float *av = sup_arena_alloc(arena, sizeof(float) * (size_t)m);
        for (int64_t r = 0; r < m; r++) mv[r] = mul[i], av[r] = add[i];
        rw.map[i] = fold_into(arena, &rw, c, mv, av, g->nodes[i].loc);
    }
    sup_arena_free(&tmp);
    return ir_prune(arena, ir_rewrite_end(&rw));
}

/* Whether node i is the scalar constant v. */
static bool is_scalar(const ir_graph *g, int32_t i, float v)
{
    float k;
    return scalar_of(g, i, &k) && k == v;
}

/* x when node i is x · clip(x + 3, 0, 6) / 6 (or times 1/6), the
 * hardswish exporters write out, each step read only by the next; else
 * -1. */
static int32_t hardswish_of(const ir_graph *g, const int32_t *uses, int32_t i)
{
    const ir_node *n = &g->nodes[i];
    int32_t m;
    if (n->op == IR_OP_DIV && is_scalar(g, n->inputs[1], 6))
        m = n->inputs[0];
    else if (n->op == IR_OP_MUL && is_scalar(g, n->inputs[1], 1.0f / 6))
        m = n->inputs[0];
    else if (n->op == IR_OP_MUL && is_scalar(g, n->inputs[0], 1.0f / 6))
        m = n->inputs[1];
    else
        return -1;
    const ir_node *mn = &g->nodes[m];
    if (mn->op != IR_OP_MUL || uses[m] != 1) return -1;
    for (int side = 0; side < 2; side++) {
        int32_t x = mn->inputs[side], cl = mn->inputs[1 - side];
        const ir_node *cn = &g->nodes[cl];
        if (cn->op != IR_OP_UNARY || cn->attr.fn != IR_UN_CLIP || cn->attr.alpha != 0 ||
            cn->attr.beta != 6 || uses[cl] != 1)
            continue;
        int32_t a = cn->inputs[0];
        const ir_node *an = &g->nodes[a];
        if (an->op != IR_OP_ADD || uses[a] != 1) continue;
        bool plus3 = (an->inputs[0] == x && is_scalar(g, an->inputs[1], 3)) ||
                     (an->inputs[1] == x && is_scalar(g, an->inputs[0], 3));
        const ir_node *xn = &g->nodes[x];
        bool same = xn->rank == n->rank && xn->dtype == QMC_DTYPE_F32;
        for (int d = 0; same && d < n->rank; d++) same = xn->shape[d] == n->shape[d];
        if (plus3 && same) return x;
    }
    return -1;
}

/* The hardswish exporters write out as add, clip, mul and div made one
 * hardswish op (which the layout pass can fuse into the conv before). */
static ir_graph *fold_hardswish(sup_arena *arena, ir_graph *g)
{
    sup_arena tmp = {0};
    int32_t *uses = ir_use_counts(&tmp, g);
    int32_t *of = sup_arena_alloc(&tmp, sizeof *of * (size_t)(g->n_nodes + 1));
    int found = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) found += (of[i] = hardswish_of(g, uses, i)) >= 0;
    if (!found) {
        sup_arena_free(&tmp);
        return g;
    }
    ir_rewrite rw;
    ir_rewrite_begin(arena, g, &rw);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (of[i] < 0) {
            ir_rewrite_copy(&rw, i);
            continue;
        }
        ir_node h = g->nodes[i];
        int32_t x = rw.map[of[i]];
        h.op = IR_OP_HARDSWISH;
        memset(&h.attr, 0, sizeof h.attr);
        h.inputs = &x;
        h.n_inputs = 1;
        rw.map[i] = ir_rewrite_add(&rw, &h);
    }
    sup_arena_free(&tmp);
    return ir_prune(arena, ir_rewrite_end(&rw));
}

ir_graph *pass_fold(sup_arena *arena, ir_graph *g)
{
    g = fold_batchnorms(arena, g);
    g = fold_affine(arena, g);
    return fold_hardswish(arena, g);
}
