/* verify.c: invariants of the graph IR, checked after every pass.
 *
 * A broken invariant is a compiler bug, not a user error: it is reported as
 * an internal error naming the pass that broke it, and compilation stops. */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static bool broken(const char *pass, int node, const char *what)
{
    fprintf(stderr, "qmc: internal error: IR invariant broken after %s at node %%%d: %s\n", pass,
            node, what);
    return false;
}

static int arity_min(ir_op op)
{
    switch (op) {
    case IR_OP_INPUT:
    case IR_OP_WEIGHT:
    case IR_OP_CONST:
    case IR_OP_POSITIONS: return 0;
    case IR_OP_LINEAR: return 2;
    case IR_OP_MATMUL:
    case IR_OP_ADD:
    case IR_OP_SUB:
    case IR_OP_MUL:
    case IR_OP_DIV:
    case IR_OP_EMBEDDING:
    case IR_OP_RMSNORM:
    case IR_OP_BINARY:
    case IR_OP_GATHER: return 2;
    case IR_OP_LAYERNORM:
    case IR_OP_ATTENTION:
    case IR_OP_WHERE: return 3;
    case IR_OP_CONV:
    case IR_OP_CONV_TRANSPOSE:
    case IR_OP_PRELU: return 2;
    case IR_OP_BATCHNORM: return 5;
    case IR_OP_CONCAT: return 1;
    default: return 1;
    }
}

static int arity_max(ir_op op)
{
    switch (op) {
    case IR_OP_LINEAR:
    case IR_OP_CONV:
    case IR_OP_CONV_TRANSPOSE: return 3;
    case IR_OP_CONCAT: return 1 << 20;
    default: return arity_min(op);
    }
}

/* Node names are unique: one pass with a name map. */
static bool names_unique(const ir_graph *g, const char *after_pass)
{
    sup_arena tmp = {0};
    ir_name_map seen = {0};
    bool ok = true;
    for (int32_t i = 0; i < g->n_nodes && ok; i++) {
        if (ir_name_map_slot(&tmp, &seen, g->nodes[i].name, false))
            ok = broken(after_pass, i, "duplicate node name");
        else
            *ir_name_map_slot(&tmp, &seen, g->nodes[i].name, true) = i;
    }
    sup_arena_free(&tmp);
    return ok;
}

bool ir_verify(const ir_graph *g, const char *after_pass)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        if ((unsigned)n->op >= IR_OP_COUNT) return broken(after_pass, i, "unknown op");
        if (!n->name) return broken(after_pass, i, "node has no name");
        if (n->n_inputs < arity_min(n->op) || n->n_inputs > arity_max(n->op))
            return broken(after_pass, i, "wrong number of operands");
        for (int j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] < 0 || n->inputs[j] >= i)
                return broken(after_pass, i, "operand defined after use");
        if (n->rank < 0 || n->rank > IR_MAX_RANK) return broken(after_pass, i, "bad rank");
        for (int d = 0; d < n->rank; d++)
            if (n->shape[d] < 1) return broken(after_pass, i, "non-positive dimension");
        if (n->op == IR_OP_WEIGHT && !n->tensor)
            return broken(after_pass, i, "weight without a tensor");
        int n_fns = n->op == IR_OP_UNARY    ? IR_UN_COUNT
                    : n->op == IR_OP_BINARY ? IR_BIN_COUNT
                    : n->op == IR_OP_REDUCE ? IR_RED_COUNT
                                            : 1;
        if (n->op == IR_OP_CAST ? n->attr.fn != QMC_DTYPE_F32 && n->attr.fn != QMC_DTYPE_I32
                                : n->attr.fn < 0 || n->attr.fn >= n_fns)
            return broken(after_pass, i, "unknown function");
        if (n->op == IR_OP_ATTENTION && n->attr.cached &&
            (!g->context || n->attr.slot < 0 || n->attr.slot >= g->n_caches ||
             g->caches[n->attr.slot].node != i))
            return broken(after_pass, i, "a cached attention does not own its cache");
        if ((n->op == IR_OP_POSITIONS || n->op == IR_OP_ROPE) && g->context && g->seq_len < 1)
            return broken(after_pass, i, "a sequence of no tokens");
    }
    if (!names_unique(g, after_pass)) return false;
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i].node < 0 || g->inputs[i].node >= g->n_nodes ||
            g->nodes[g->inputs[i].node].op != IR_OP_INPUT)
            return broken(after_pass, -1, "an input port does not name an input node");
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i].node < 0 || g->outputs[i].node >= g->n_nodes)
            return broken(after_pass, -1, "an output port does not name a node");
    /* shapes must be what inference says; re-infer on a scratch copy */
    ir_graph copy = *g;
    sup_arena scratch = {0};
    copy.arena = &scratch;
    copy.nodes = sup_arena_alloc(&scratch, sizeof *copy.nodes * (size_t)(g->n_nodes + 1));
    memcpy(copy.nodes, g->nodes, sizeof *copy.nodes * (size_t)g->n_nodes);
    bool ok = true;
    for (int i = 0; i < g->n_nodes && ok; i++) {
        if (!ir_infer_node_shape(&copy, i))
            ok = broken(after_pass, i, "shape inference fails");
        else if (copy.nodes[i].rank != g->nodes[i].rank ||
                 copy.nodes[i].dtype != g->nodes[i].dtype ||
                 memcmp(copy.nodes[i].shape, g->nodes[i].shape,
                        sizeof g->nodes[i].shape[0] * (size_t)g->nodes[i].rank))
            ok = broken(after_pass, i, "shape differs from inference");
    }
    sup_arena_free(&scratch);
    return ok;
}
