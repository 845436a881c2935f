/* ir.c: graph IR nodes and names.
 *
 * Nodes live in one growable array and refer to their inputs by index; a
 * node's inputs always come before it, so the array order is a valid
 * evaluation order. */
#include <string.h>

#include "ir.h"

const char *ir_op_name(ir_op op)
{
    static const char *const names[IR_OP_COUNT] = {
        [IR_OP_INPUT] = "input",
        [IR_OP_WEIGHT] = "weight",
        [IR_OP_CONST] = "const",
        [IR_OP_LINEAR] = "linear",
        [IR_OP_MATMUL] = "matmul",
        [IR_OP_ADD] = "add",
        [IR_OP_SUB] = "sub",
        [IR_OP_MUL] = "mul",
        [IR_OP_DIV] = "div",
        [IR_OP_RELU] = "relu",
        [IR_OP_GELU] = "gelu",
        [IR_OP_SILU] = "silu",
        [IR_OP_TANH] = "tanh",
        [IR_OP_SOFTMAX] = "softmax",
        [IR_OP_LAYERNORM] = "layernorm",
        [IR_OP_RMSNORM] = "rmsnorm",
        [IR_OP_EMBEDDING] = "embedding",
        [IR_OP_RESHAPE] = "reshape",
        [IR_OP_TRANSPOSE] = "transpose",
        [IR_OP_SLICE] = "slice",
        [IR_OP_CONCAT] = "concat",
        [IR_OP_ATTENTION] = "attention",
        [IR_OP_ROPE] = "rope",
        [IR_OP_POSITIONS] = "positions",
        [IR_OP_CONV] = "conv",
        [IR_OP_CONV_TRANSPOSE] = "conv_transpose",
        [IR_OP_BATCHNORM] = "batchnorm",
        [IR_OP_MAXPOOL] = "maxpool",
        [IR_OP_AVGPOOL] = "avgpool",
        [IR_OP_GLOBAL_AVGPOOL] = "global_avgpool",
        [IR_OP_RESIZE] = "resize",
        [IR_OP_PAD] = "pad",
        [IR_OP_HARDSIGMOID] = "hardsigmoid",
        [IR_OP_HARDSWISH] = "hardswish",
        [IR_OP_PRELU] = "prelu",
        [IR_OP_UNARY] = "unary",
        [IR_OP_BINARY] = "binary",
        [IR_OP_WHERE] = "where",
        [IR_OP_REDUCE] = "reduce",
        [IR_OP_EXPAND] = "expand",
        [IR_OP_GATHER] = "gather",
        [IR_OP_CAST] = "cast",
    };
    return (unsigned)op < IR_OP_COUNT ? names[op] : "?";
}

const char *ir_unary_name(ir_unary fn)
{
    static const char *const names[IR_UN_COUNT] = {
        [IR_UN_EXP] = "exp",
        [IR_UN_LOG] = "log",
        [IR_UN_SQRT] = "sqrt",
        [IR_UN_ERF] = "erf",
        [IR_UN_SIGMOID] = "sigmoid",
        [IR_UN_ABS] = "abs",
        [IR_UN_FLOOR] = "floor",
        [IR_UN_CEIL] = "ceil",
        [IR_UN_LEAKY_RELU] = "leaky_relu",
        [IR_UN_HARD_SIGMOID] = "hard_sigmoid",
        [IR_UN_HARD_SWISH] = "hard_swish",
        [IR_UN_CLIP] = "clip",
    };
    return (unsigned)fn < IR_UN_COUNT ? names[fn] : "?";
}

const char *ir_binary_name(ir_binary fn)
{
    static const char *const names[IR_BIN_COUNT] = {
        [IR_BIN_POW] = "pow",         [IR_BIN_MAX] = "maximum",
        [IR_BIN_MIN] = "minimum",     [IR_BIN_EQUAL] = "equal",
        [IR_BIN_LESS] = "less",       [IR_BIN_LESS_EQUAL] = "less_equal",
        [IR_BIN_GREATER] = "greater", [IR_BIN_GREATER_EQUAL] = "greater_equal",
    };
    return (unsigned)fn < IR_BIN_COUNT ? names[fn] : "?";
}

const char *ir_reduce_name(ir_reduce fn)
{
    static const char *const names[IR_RED_COUNT] = {
        [IR_RED_SUM] = "reduce_sum",
        [IR_RED_MEAN] = "reduce_mean",
        [IR_RED_MAX] = "reduce_max",
        [IR_RED_MIN] = "reduce_min",
    };
    return (unsigned)fn < IR_RED_COUNT ? names[fn] : "?";
}

const char *ir_node_op_name(const ir_node *n)
{
    switch (n->op) {
    case IR_OP_UNARY: return ir_unary_name((ir_unary)n->attr.fn);
    case IR_OP_BINARY: return ir_binary_name((ir_binary)n->attr.fn);
    case IR_OP_REDUCE: return ir_reduce_name((ir_reduce)n->attr.fn);
    case IR_OP_SOFTMAX: return n->attr.log ? "log_softmax" : "softmax";
    case IR_OP_CAST: return n->attr.fn == QMC_DTYPE_I32 ? "to_i32" : "to_f32";
    default: return ir_op_name(n->op);
    }
}

int32_t ir_add_node(ir_graph *g, ir_op op, const int32_t *inputs, int n_inputs, sup_loc loc)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        g->nodes =
            sup_arena_grow(g->arena, g->nodes, (size_t)g->cap_nodes, (size_t)cap, sizeof *g->nodes);
        g->cap_nodes = cap;
    }
    int32_t index = g->n_nodes++;
    ir_node *n = &g->nodes[index];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->dtype = QMC_DTYPE_F32;
    n->loc = loc;
    n->n_inputs = n_inputs;
    if (n_inputs) {
        n->inputs = sup_arena_alloc(g->arena, sizeof *n->inputs * (size_t)n_inputs);
        memcpy(n->inputs, inputs, sizeof *n->inputs * (size_t)n_inputs);
    }
    return index;
}

int64_t ir_node_count(const ir_node *n)
{
    int64_t c = 1;
    for (int i = 0; i < n->rank; i++) c *= n->shape[i];
    return c;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int32_t *ir_name_map_slot(sup_arena *arena, ir_name_map *m, const char *key, bool insert)
{
    if (insert && (m->n + 1) * 2 > m->cap) {
        ir_name_map old = *m;
        m->cap = old.cap ? old.cap * 2 : 64;
        m->keys = sup_arena_alloc(arena, sizeof *m->keys * (size_t)m->cap);
        m->vals = sup_arena_alloc(arena, sizeof *m->vals * (size_t)m->cap);
        m->n = 0;
        for (int i = 0; i < old.cap; i++)
            if (old.keys[i]) *ir_name_map_slot(arena, m, old.keys[i], true) = old.vals[i];
    }
    if (!m->cap) return NULL;
    for (uint64_t h = hash_str(key);; h++) {
        int i = (int)(h & (uint64_t)(m->cap - 1));
        if (!m->keys[i]) {
            if (!insert) return NULL;
            m->keys[i] = key;
            m->n++;
            return &m->vals[i];
        }
        if (strcmp(m->keys[i], key) == 0) return &m->vals[i];
    }
}
