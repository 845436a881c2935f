/* build_values.c: the values of elaboration and the nodes they become.
 *
 * Values during elaboration are compile-time numbers, booleans, strings,
 * lists, tensors (graph nodes) or weight prefixes (pass_value). Here: the
 * checks that turn a value into the integer, number or tensor an operation
 * wants (numbers become scalar constants), the error helper they share, and
 * the creation of op nodes, each with its shape inferred as it is made and
 * a name unique in the graph. Used by build_weights.c, build_builtins.c and
 * build_graph.c. */
#include <string.h>

#include "passes.h"

const char *pass_build_kind_name(pass_val_kind k)
{
    static const char *const names[] = {"nothing",  "an integer", "a number",        "a boolean",
                                        "a string", "a tensor",   "a weight prefix", "a list"};
    return names[k];
}

bool pass_build_fail(sup_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_verror("error", loc, fmt, ap);
    va_end(ap);
    return false;
}

/* A unique node name: base, then base#2, base#3, ... */
const char *pass_build_unique_name(pass_builder *b, const char *base)
{
    int32_t *uses = ir_name_map_slot(b->arena, &b->node_names, base, false);
    if (!uses) {
        *ir_name_map_slot(b->arena, &b->node_names, base, true) = 1;
        return base;
    }
    for (;;) {
        const char *name = sup_arena_printf(b->arena, "%s#%d", base, ++*uses);
        if (!ir_name_map_slot(b->arena, &b->node_names, name, false)) {
            *ir_name_map_slot(b->arena, &b->node_names, name, true) = 1;
            return name;
        }
    }
}

/* Adds an op node and infers its shape; -1 after reporting an error. */
int32_t pass_build_op(pass_builder *b, ir_op op, const int32_t *inputs, int n, sup_loc loc,
                      const ir_attrs *attr)
{
    int32_t idx = ir_add_node(b->g, op, inputs, n, loc);
    if (attr) b->g->nodes[idx].attr = *attr;
    b->g->nodes[idx].name = NULL; /* named when its statement completes */
    if (!ir_infer_node_shape(b->g, idx)) return -1;
    return idx;
}

bool pass_build_result(pass_builder *b, ir_op op, const int32_t *in, int n, pass_call_args *a,
                       const ir_attrs *attr, pass_value *out)
{
    memset(out, 0, sizeof *out);
    out->kind = PASS_VAL_TENSOR;
    out->loc = a->call->loc;
    out->node = pass_build_op(b, op, in, n, a->call->loc, attr);
    return out->node >= 0;
}

bool pass_build_shaped_result(pass_builder *b, ir_op op, int32_t x, pass_call_args *a,
                              const ir_attrs *attr, int rank, const int64_t *shape, pass_value *out)
{
    int32_t idx = ir_add_node(b->g, op, &x, 1, a->call->loc);
    ir_node *node = &b->g->nodes[idx];
    if (attr) node->attr = *attr;
    node->rank = rank;
    memcpy(node->shape, shape, sizeof shape[0] * (size_t)rank);
    memset(out, 0, sizeof *out);
    out->kind = PASS_VAL_TENSOR;
    out->loc = a->call->loc;
    out->node = idx;
    return ir_infer_node_shape(b->g, idx);
}

int32_t pass_build_const(pass_builder *b, double v, sup_loc loc)
{
    int32_t idx = ir_add_node(b->g, IR_OP_CONST, NULL, 0, loc);
    b->g->nodes[idx].attr.value = (float)v;
    return idx;
}

bool pass_build_want_int(const pass_value *v, const char *what, int64_t *out)
{
    if (v->kind == PASS_VAL_INT) return *out = v->i, true;
    return pass_build_fail(v->loc, "%s must be an integer, not %s", what,
                           pass_build_kind_name(v->kind));
}

bool pass_build_want_number(const pass_value *v, const char *what, double *out)
{
    if (v->kind == PASS_VAL_INT) return *out = (double)v->i, true;
    if (v->kind == PASS_VAL_FLOAT) return *out = v->f, true;
    return pass_build_fail(v->loc, "%s must be a number, not %s", what,
                           pass_build_kind_name(v->kind));
}

/* A tensor operand; numbers become scalar constants. */
bool pass_build_want_tensor(pass_builder *b, const pass_value *v, const char *what, int32_t *out)
{
    if (v->kind == PASS_VAL_TENSOR) return *out = v->node, true;
    if (v->kind == PASS_VAL_INT || v->kind == PASS_VAL_FLOAT) {
        *out = pass_build_const(b, v->kind == PASS_VAL_INT ? (double)v->i : v->f, v->loc);
        return true;
    }
    if (v->kind == PASS_VAL_PREFIX)
        return pass_build_fail(
            v->loc, "%s must be a tensor, but '%s' is only a prefix of weight names", what, v->str);
    return pass_build_fail(v->loc, "%s must be a tensor, not %s", what,
                           pass_build_kind_name(v->kind));
}
