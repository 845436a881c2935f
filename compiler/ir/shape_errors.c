/* shape_errors.c: how the shape rules (shape.c, shape_cnn.c) report an
 * operand that does not fit.
 *
 * Needs: the graph's nodes, their shapes and origins.
 * Guarantees: one error at the node, then one note per distinct operand at
 * the place it came from, with its shape (and the weights file's shape when
 * the two differ). */
#include <stdarg.h>
#include <stdio.h>

#include "ir.h"

/* "input 'x'", "weight 'fc1.weight'", "the result of linear 'h'" */
const char *ir_node_describe(const ir_graph *g, int32_t i, char *buf, size_t size)
{
    const ir_node *n = &g->nodes[i];
    switch (n->op) {
    case IR_OP_INPUT: snprintf(buf, size, "input '%s'", n->name); break;
    case IR_OP_WEIGHT: snprintf(buf, size, "weight '%s'", n->name); break;
    case IR_OP_CONST: snprintf(buf, size, "the constant %g", n->attr.value); break;
    default:
        /* nodes of the statement being built are named when it completes */
        if (n->name)
            snprintf(buf, size, "the %s '%s'", ir_node_op_name(n), n->name);
        else
            snprintf(buf, size, "the result of %s", ir_node_op_name(n));
        break;
    }
    return buf;
}

/* A note at operand i's origin: "weight 'fc1.weight' has shape f32[256, 64]". */
static void note_operand(const ir_graph *g, int32_t i)
{
    const ir_node *n = &g->nodes[i];
    char what[160], shape[RT_SHAPE_STR_MAX];
    rt_shape_str(n->dtype, n->rank, n->shape, shape, sizeof shape);
    ir_node_describe(g, i, what, sizeof what);
    if (n->op == IR_OP_WEIGHT && n->tensor && n->tensor->rank != n->rank) {
        char file_shape[RT_SHAPE_STR_MAX];
        rt_shape_str(n->dtype, n->tensor->rank, n->tensor->shape, file_shape, sizeof file_shape);
        sup_note(n->loc, "%s has shape %s (%s in the weights file)", what, shape, file_shape);
    } else if (n->op == IR_OP_WEIGHT && g->weights) {
        sup_note(n->loc, "%s has shape %s in '%s'", what, shape, g->weights->path);
    } else {
        sup_note(n->loc, "%s has shape %s", what, shape);
    }
}

bool ir_shape_fail(const ir_graph *g, const ir_node *n, int n_ops, const int32_t *ops,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_verror("error", n->loc, fmt, ap);
    va_end(ap);
    for (int i = 0; i < n_ops; i++) {
        bool seen = false; /* one note per operand, also when it is used twice */
        for (int j = 0; j < i; j++) seen |= ops[j] == ops[i];
        if (!seen) note_operand(g, ops[i]);
    }
    return false;
}
