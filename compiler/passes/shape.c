/* shape.c: the infer-shapes pass.
 *
 * Needs: a built graph (every node's inputs come before it).
 * Guarantees: every node's dtype and shape are those the per-node rules of
 * ir/shape.c give (build already inferred them as it created each node;
 * this pass re-checks the whole graph, so a later change that breaks a
 * shape is caught here, with the user-facing error). */
#include "passes.h"

bool pass_infer_shapes(ir_graph *g)
{
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (!ir_infer_node_shape(g, i)) return false;
    return true;
}
