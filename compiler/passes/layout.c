/* layout.c: the layout pass: convolutional networks in channels-last form.
 *
 * Needs: a graph with its precision decided and weights quantized (it runs
 * in qmc compile only, before lower).
 * Guarantees: every convolution, pooling and batchnorm works on
 * channels-last activations (attr.win.nhwc: [N, H, W, C], [N, L, C] in
 * 1-D), which is what their kernels want: a pixel's channels are adjacent,
 * so a convolution is a matrix product of pixels by output channels (each
 * broadcast input value meets a vector of 16 output channels; int8 values
 * come 4 channels to a word for vpdpbusd / sdot) and a depthwise one or a
 * pooling is a vector of channels per pixel. Activations made channels-
 * last stay so through the ops that do not care (the elementwise ops,
 * prelu, resize, pad, concat; a broadcast operand such as a bias [C, 1, 1]
 * is reshaped and transposed to match), and a transpose back to the
 * model's [N, C, H, W] is made only where an op needs it (reshape, linear,
 * matmul, ...) or an output is. Model inputs and outputs keep ONNX's
 * layout. A relu, clip (relu6) or hardswish that is a conv's only reader
 * becomes the conv's fused activation (attr.win.act), and multiplications,
 * additions, subtractions and divisions by scalar constants after that
 * (each the only reader of what it reads) its post affine map
 * (attr.win.post: PP-LCNet's learnable affine blocks after hardswish). The graph computes the same
 * values (the interpreter evaluates both forms), verified after the pass. */
#include <math.h>
#include <string.h>

#include "passes.h"

typedef struct layout {
    sup_arena *arena;
    const ir_graph *g;
    ir_rewrite rw;
    int32_t *nchw, *nhwc; /* per old node: its value in each layout in the new graph, or -1 */
    bool *native;         /* per old node: computed channels-last */
    int32_t *uses;
    ir_name_map names; /* every name in the new graph */
} layout;

static const int64_t TO_NHWC[2][4] = {{0, 2, 1}, {0, 2, 3, 1}},
                     TO_NCHW[2][4] = {{0, 2, 1}, {0, 3, 1, 2}};

static bool image_rank(int rank) { return rank == 3 || rank == 4; }

static const char *fresh(layout *l, const char *base)
{
    const char *name = base;
    for (int k = 2; ir_name_map_slot(l->arena, &l->names, name, false); k++)
        name = sup_arena_printf(l->arena, "%s#%d", base, k);
    *ir_name_map_slot(l->arena, &l->names, name, true) = 1;
    return name;
}

/* Adds node n (operands already new) to the new graph, its shape inferred. */
static int32_t add(layout *l, ir_node *n)
{
    int32_t idx = ir_rewrite_add(&l->rw, n);
    bool ok = ir_infer_node_shape(l->rw.dst, idx);
    QMC_ASSERT(ok); /* the rewritten op fits its operands by construction */
    return idx;
}

static int32_t transpose(layout *l, int32_t src, const int64_t *perm, const char *name)
{
    const ir_node *s = &l->rw.dst->nodes[src];
    ir_node t = {.op = IR_OP_TRANSPOSE, .n_inputs = 1, .inputs = &src, .loc = s->loc};
    memcpy(t.attr.perm, perm, sizeof(int64_t) * (size_t)s->rank);
    t.name = fresh(l, name);
    return add(l, &t);
}

/* A transpose from the model's layout to channels-last (to_nhwc), or back. */
static bool is_layout_transpose(const ir_node *n, bool to_nhwc)
{
    if (n->op != IR_OP_TRANSPOSE || !image_rank(n->rank)) return false;
    const int64_t *perm = to_nhwc ? TO_NHWC[n->rank == 4] : TO_NCHW[n->rank == 4];
    for (int d = 0; d < n->rank; d++)
        if (n->attr.perm[d] != perm[d]) return false;
    return true;
}

/* Old node i channels-last in the new graph (transposed on first need; a
 * transpose of the model's own from channels-last is undone). */
static int32_t get_nhwc(layout *l, int32_t i)
{
    const ir_node *n = &l->g->nodes[i];
    if (l->nhwc[i] < 0 && is_layout_transpose(n, false) && l->nchw[n->inputs[0]] >= 0)
        l->nhwc[i] = l->nchw[n->inputs[0]];
    if (l->nhwc[i] < 0) {
        const ir_node *n = &l->g->nodes[i];
        l->nhwc[i] = transpose(l, l->nchw[i], TO_NHWC[n->rank - 3],
                               sup_arena_printf(l->arena, "%s.nhwc", n->name));
    }
    return l->nhwc[i];
}

static int32_t get_nchw(layout *l, int32_t i)
{
    if (l->nchw[i] < 0) {
        const ir_node *n = &l->g->nodes[i];
        l->nchw[i] = transpose(l, l->nhwc[i], TO_NCHW[n->rank - 3],
                               sup_arena_printf(l->arena, "%s.nchw", n->name));
    }
    return l->nchw[i];
}

/* An operand of a channels-last elementwise op of rank r: its
 * channels-last value, or it reshaped to rank r (leading 1s, numpy's
 * broadcasting) and transposed. */
static int32_t broadcast_operand(layout *l, int32_t i, int r)
{
    const ir_node *n = &l->g->nodes[i];
    if (l->nhwc[i] >= 0 && n->rank == r) return l->nhwc[i];
    if (ir_node_count(n) == 1) return l->nchw[i]; /* broadcasts alike in any layout */
    int32_t src = l->nchw[i];
    if (n->rank != r) {
        ir_node re = {.op = IR_OP_RESHAPE, .n_inputs = 1, .inputs = &src, .loc = n->loc};
        re.rank = r;
        for (int d = 0; d < r; d++) re.shape[d] = d < r - n->rank ? 1 : n->shape[d - (r - n->rank)];
        re.name = fresh(l, sup_arena_printf(l->arena, "%s.rank%d", n->name, r));
        src = add(l, &re);
    }
    return transpose(l, src, TO_NHWC[r - 3], sup_arena_printf(l->arena, "%s.nhwc", n->name));
}

static bool pointwise_unary(ir_op op)
{
    return op == IR_OP_RELU || op == IR_OP_GELU || op == IR_OP_SILU || op == IR_OP_TANH ||
           op == IR_OP_HARDSIGMOID || op == IR_OP_HARDSWISH || op == IR_OP_UNARY;
}

/* elementwise ops of several operands, broadcast */
static bool pointwise_binary(ir_op op)
{
    return op == IR_OP_ADD || op == IR_OP_SUB || op == IR_OP_MUL || op == IR_OP_DIV ||
           op == IR_OP_PRELU || op == IR_OP_BINARY || op == IR_OP_WHERE;
}

/* old node i with new operands in and attributes changed by the caller */
static ir_node with_inputs(const ir_node *n, int32_t *in)
{
    ir_node c = *n;
    c.inputs = in;
    return c;
}

/* The activation a conv can take in for node n, or IR_ACT_NONE. */
static ir_act activation_of(const ir_node *n)
{
    if (n->op == IR_OP_RELU) return IR_ACT_RELU;
    if (n->op == IR_OP_HARDSWISH) return IR_ACT_HARDSWISH;
    if (n->op != IR_OP_UNARY) return IR_ACT_NONE;
    if (n->attr.fn == IR_UN_HARD_SWISH) return IR_ACT_HARDSWISH;
    if (n->attr.fn == IR_UN_CLIP) return IR_ACT_CLIP;
    return IR_ACT_NONE;
}

/* A relu, clip or hardswish reading only a conv without an activation:
 * fused. */
static bool fuse_activation(layout *l, int32_t i)
{
    const ir_node *n = &l->g->nodes[i];
    ir_act act = activation_of(n);
    if (act == IR_ACT_NONE) return false;
    int32_t c = n->inputs[0];
    if (l->g->nodes[c].op != IR_OP_CONV || l->uses[c] != 1 || !l->native[c]) return false;
    ir_node *conv = &l->rw.dst->nodes[l->nhwc[c]];
    if (conv->attr.win.act != IR_ACT_NONE) return false;
    conv->attr.win.act = act;
    if (act == IR_ACT_CLIP)
        conv->attr.win.act_min = n->attr.alpha, conv->attr.win.act_max = n->attr.beta;
    l->nhwc[i] = l->nhwc[c];
    l->native[i] = true;
    return true;
}

/* A multiplication, addition, subtraction or division by a scalar
 * constant whose other operand is a conv's value that nothing else reads
 * (after its fused activation): fused into the conv as its post affine
 * map (attr.win.post). */
static bool fuse_post(layout *l, int32_t i)
{
    const ir_node *n = &l->g->nodes[i];
    if (n->n_inputs != 2 ||
        (n->op != IR_OP_MUL && n->op != IR_OP_ADD && n->op != IR_OP_SUB && n->op != IR_OP_DIV))
        return false;
    int side = l->g->nodes[n->inputs[1]].op == IR_OP_CONST ? 0 : 1; /* where x is */
    int32_t x = n->inputs[side];
    const ir_node *k = &l->g->nodes[n->inputs[1 - side]];
    if (k->op != IR_OP_CONST || !isfinite(k->attr.value) || !l->native[x] || l->uses[x] != 1)
        return false;
    if (side == 1 && (n->op == IR_OP_SUB || n->op == IR_OP_DIV)) return false;
    if (n->op == IR_OP_DIV && k->attr.value == 0) return false;
    ir_node *conv = &l->rw.dst->nodes[l->nhwc[x]];
    if (conv->op != IR_OP_CONV) return false;
    ir_window *w = &conv->attr.win;
    if (!w->post) w->post = true, w->post_mul = 1, w->post_add = 0;
    float v = k->attr.value;
    switch (n->op) {
    case IR_OP_MUL: w->post_mul *= v, w->post_add *= v; break;
    case IR_OP_DIV: w->post_mul /= v, w->post_add /= v; break;
    case IR_OP_ADD: w->post_add += v; break;
    default: w->post_add -= v; break;
    }
    l->nhwc[i] = l->nhwc[x];
    l->native[i] = true;
    return true;
}

/* Old node i channels-last if its op can be and an operand is; false if
 * it stays as it is. */
static bool to_channels_last(layout *l, int32_t i)
{
    const ir_node *n = &l->g->nodes[i];
    int32_t in[PASS_MAX_ARGS + 8];
    if (n->n_inputs > PASS_MAX_ARGS + 8 || !n->n_inputs) return false;
    const ir_node *x = &l->g->nodes[n->inputs[0]];
    ir_node c;
    if (ir_is_windowed(n->op) || n->op == IR_OP_BATCHNORM) {
        if (!image_rank(x->rank)) return false;
        in[0] = get_nhwc(l, n->inputs[0]);
        for (int j = 1; j < n->n_inputs; j++) in[j] = l->nchw[n->inputs[j]];
        c = with_inputs(n, in);
        c.attr.win.nhwc = true;
    } else if (pointwise_unary(n->op)) {
        if (!l->native[n->inputs[0]]) return false;
        if (fuse_activation(l, i)) return true;
        in[0] = l->nhwc[n->inputs[0]];
        c = with_inputs(n, in);
    } else if (pointwise_binary(n->op) || n->op == IR_OP_CONCAT) {
        if (fuse_post(l, i)) return true;
        bool any = false, fits = image_rank(n->rank);
        for (int j = 0; j < n->n_inputs; j++) {
            any |= l->native[n->inputs[j]];
            fits &= l->g->nodes[n->inputs[j]].rank <= n->rank;
        }
        if (!any || !fits) return false;
        for (int j = 0; j < n->n_inputs; j++) in[j] = broadcast_operand(l, n->inputs[j], n->rank);
        c = with_inputs(n, in);
        if (n->op == IR_OP_CONCAT)
            for (int d = 0; d < n->rank; d++)
                if (TO_NHWC[n->rank - 3][d] == n->attr.axis) c.attr.axis = d;
    } else if (n->op == IR_OP_RESIZE || n->op == IR_OP_PAD) {
        if (!l->native[n->inputs[0]]) return false;
        in[0] = l->nhwc[n->inputs[0]];
        c = with_inputs(n, in);
        const int64_t *perm = TO_NHWC[n->rank - 3];
        for (int d = 0; d < n->rank; d++) {
            c.shape[d] = n->shape[perm[d]];
            c.attr.cnn.scales[d] = n->attr.cnn.scales[perm[d]];
            c.attr.cnn.pads[d] = n->attr.cnn.pads[perm[d]];
            c.attr.cnn.pads[n->rank + d] = n->attr.cnn.pads[n->rank + perm[d]];
        }
    } else {
        return false;
    }
    *ir_name_map_slot(l->arena, &l->names, c.name, true) = 1;
    l->nhwc[i] = add(l, &c);
    l->native[i] = true;
    return true;
}

static bool has_windowed(const ir_graph *g)
{
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (ir_is_windowed(g->nodes[i].op) || g->nodes[i].op == IR_OP_BATCHNORM) return true;
    return false;
}

ir_graph *pass_layout(sup_arena *arena, ir_graph *g)
{
    if (!has_windowed(g)) return g;
    layout l = {.arena = arena, .g = g};
    size_t n = (size_t)g->n_nodes + 1;
    l.nchw = sup_arena_alloc(arena, sizeof *l.nchw * n);
    l.nhwc = sup_arena_alloc(arena, sizeof *l.nhwc * n);
    l.native = sup_arena_alloc(arena, n);
    l.uses = ir_use_counts(arena, g);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        l.nchw[i] = l.nhwc[i] = -1;
        *ir_name_map_slot(arena, &l.names, g->nodes[i].name, true) = 1;
    }
    ir_rewrite_begin(arena, g, &l.rw);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (to_channels_last(&l, i)) continue;
        const ir_node *node = &g->nodes[i];
        if (is_layout_transpose(node, true) && l.native[node->inputs[0]]) {
            l.nchw[i] = l.nhwc[node->inputs[0]]; /* the model's own transpose to channels-last */
            continue;
        }
        for (int j = 0; j < node->n_inputs; j++) /* operands back to the model's layout */
            if (l.nchw[node->inputs[j]] < 0) get_nchw(&l, node->inputs[j]);
        for (int j = 0; j < node->n_inputs; j++)
            l.rw.map[node->inputs[j]] = l.nchw[node->inputs[j]];
        l.nchw[i] = ir_rewrite_copy(&l.rw, i);
    }
    for (int o = 0; o < g->n_outputs; o++) {
        int32_t node = g->outputs[o].node;
        l.rw.map[node] = get_nchw(&l, node);
    }
    for (int i = 0; i < g->n_inputs; i++) l.rw.map[g->inputs[i].node] = l.nchw[g->inputs[i].node];
    for (int c = 0; c < g->n_caches; c++) l.rw.map[g->caches[c].node] = l.nchw[g->caches[c].node];
    return ir_prune(arena, ir_rewrite_end(&l.rw));
}
