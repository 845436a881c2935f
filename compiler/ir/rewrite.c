/* rewrite.c: making a new graph from an old one, for the passes that
 * change a graph's nodes (fold, layout).
 *
 * Nodes are copied in order into a graph with the old one's model
 * metadata (name, weights, sequence, caches), their operands renumbered
 * through a map from old indices to new ones; a pass may map an old node
 * to another one instead of copying it (a node removed), or add nodes of
 * its own between the copies. Ending the rewrite renumbers the ports and
 * the caches' owners. The old graph is left as it was. ir_prune drops the
 * nodes no output needs (inputs stay: they are the model's interface). */
#include <string.h>

#include "ir.h"

void ir_rewrite_begin(sup_arena *arena, const ir_graph *src, ir_rewrite *rw)
{
    rw->src = src;
    rw->dst = sup_arena_alloc(arena, sizeof *rw->dst);
    *rw->dst = *src;
    rw->dst->arena = arena;
    rw->dst->nodes = NULL;
    rw->dst->n_nodes = rw->dst->cap_nodes = 0;
    rw->dst->calib = NULL; /* indexed by the old nodes */
    rw->dst->selection = NULL;
    rw->map = sup_arena_alloc(arena, sizeof *rw->map * (size_t)(src->n_nodes + 1));
    for (int32_t i = 0; i < src->n_nodes; i++) rw->map[i] = -1;
}

int32_t ir_rewrite_add(ir_rewrite *rw, const ir_node *n)
{
    int32_t idx = ir_add_node(rw->dst, n->op, n->inputs, n->n_inputs, n->loc);
    int32_t *inputs = rw->dst->nodes[idx].inputs;
    rw->dst->nodes[idx] = *n;
    rw->dst->nodes[idx].inputs = inputs;
    return idx;
}

int32_t ir_rewrite_copy(ir_rewrite *rw, int32_t i)
{
    ir_node n = rw->src->nodes[i];
    int32_t in[64],
        *inputs = n.n_inputs <= 64
                      ? in
                      : sup_arena_alloc(rw->dst->arena, sizeof *inputs * (size_t)n.n_inputs);
    for (int j = 0; j < n.n_inputs; j++) {
        inputs[j] = rw->map[n.inputs[j]];
        QMC_ASSERT(inputs[j] >= 0); /* operands are copied (or mapped) first */
    }
    n.inputs = inputs;
    return rw->map[i] = ir_rewrite_add(rw, &n);
}

ir_graph *ir_rewrite_end(ir_rewrite *rw)
{
    ir_graph *g = rw->dst;
    sup_arena *a = g->arena;
    g->inputs = sup_arena_alloc(a, sizeof *g->inputs * (size_t)(g->n_inputs + 1));
    g->outputs = sup_arena_alloc(a, sizeof *g->outputs * (size_t)(g->n_outputs + 1));
    for (int i = 0; i < g->n_inputs; i++) {
        g->inputs[i] = rw->src->inputs[i];
        g->inputs[i].node = rw->map[g->inputs[i].node];
    }
    for (int i = 0; i < g->n_outputs; i++) {
        g->outputs[i] = rw->src->outputs[i];
        g->outputs[i].node = rw->map[g->outputs[i].node];
    }
    if (g->n_caches) {
        g->caches = sup_arena_alloc(a, sizeof *g->caches * (size_t)g->n_caches);
        for (int c = 0; c < g->n_caches; c++) {
            g->caches[c] = rw->src->caches[c];
            g->caches[c].node = rw->map[g->caches[c].node];
        }
    }
    return g;
}

ir_graph *ir_prune(sup_arena *arena, const ir_graph *g)
{
    bool *live = sup_arena_alloc(arena, (size_t)g->n_nodes + 1);
    for (int i = 0; i < g->n_outputs; i++) live[g->outputs[i].node] = true;
    for (int i = 0; i < g->n_inputs; i++) live[g->inputs[i].node] = true;
    for (int i = 0; i < g->n_caches; i++) live[g->caches[i].node] = true;
    for (int32_t i = g->n_nodes - 1; i >= 0; i--)
        for (int j = 0; live[i] && j < g->nodes[i].n_inputs; j++)
            live[g->nodes[i].inputs[j]] = true;
    ir_rewrite rw;
    ir_rewrite_begin(arena, g, &rw);
    rw.dst->calib = g->calib; /* kept valid below only if nothing moves */
    rw.dst->selection = g->selection;
    bool moved = false;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (live[i])
            moved |= ir_rewrite_copy(&rw, i) != i;
        else
            moved = true;
    if (moved) rw.dst->calib = NULL, rw.dst->selection = NULL;
    return ir_rewrite_end(&rw);
}

int32_t *ir_use_counts(sup_arena *arena, const ir_graph *g)
{
    int32_t *uses = sup_arena_alloc(arena, sizeof *uses * (size_t)(g->n_nodes + 1));
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_inputs; j++) uses[g->nodes[i].inputs[j]]++;
    for (int i = 0; i < g->n_outputs; i++) uses[g->outputs[i].node]++;
    return uses;
}
