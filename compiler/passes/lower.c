/* lower.c: the lower pass: where every tensor lives while the model runs.
 *
 * Needs: a verified graph.
 * Guarantees: every node has a buffer: weights and constants are data of
 * the code, inputs are the caller's pointers, the node that computes an
 * output writes into the caller's output buffer, and every other activation
 * gets a 64-byte aligned range of the workspace, reused once the last node
 * that reads it has run (first fit). A node's buffer never overlaps its
 * operands' buffers, so kernels need not care about aliasing. Ops that need
 * temporary space (attention's scores, a linear layer's int8 rows) get
 * scratch for their duration; int8 rows that later linear layers can read
 * (ir_same_act_rows) stay until the last of them has run. */
#include <stdint.h>
#include <string.h>

#include "passes.h"

typedef struct span {
    int64_t offset, bytes;
} span;

typedef struct allocator {
    span *used; /* sorted by offset */
    int n, cap;
    int64_t high; /* the workspace size so far */
    int64_t live, peak;
    sup_arena *arena;
} allocator;

/* First fit: the lowest offset where bytes fit between used spans. */
static int64_t alloc_bytes(allocator *a, int64_t bytes)
{
    bytes = ir_align64(bytes ? bytes : 1);
    int64_t at = 0;
    int pos = 0;
    for (; pos < a->n; pos++) {
        if (a->used[pos].offset - at >= bytes) break;
        at = a->used[pos].offset + a->used[pos].bytes;
    }
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 32;
        a->used = sup_arena_grow(a->arena, a->used, (size_t)a->cap, (size_t)cap, sizeof *a->used);
        a->cap = cap;
    }
    memmove(&a->used[pos + 1], &a->used[pos], sizeof *a->used * (size_t)(a->n - pos));
    a->used[pos] = (span){at, bytes};
    a->n++;
    if (at + bytes > a->high) a->high = at + bytes;
    a->live += bytes;
    if (a->live > a->peak) a->peak = a->live;
    return at;
}

static void free_bytes(allocator *a, int64_t offset)
{
    for (int i = 0; i < a->n; i++)
        if (a->used[i].offset == offset) {
            a->live -= a->used[i].bytes;
            memmove(&a->used[i], &a->used[i + 1], sizeof *a->used * (size_t)(a->n - i - 1));
            a->n--;
            return;
        }
    QMC_ASSERT(!"freeing a span that is not allocated");
}

static int64_t scratch_bytes(const ir_graph *g, const ir_node *n, bool int8_dot)
{
    if (n->op == IR_OP_LINEAR && ir_act_int8_rows(g->nodes[n->inputs[1]].qw, int8_dot))
        return ir_act8_scratch_layout(g, n, int8_dot).bytes;

    if (n->op == IR_OP_ATTENTION) {
        ir_attn_scratch a = ir_attention_scratch(g, n);
        return (int64_t)sizeof(float) * a.kv_heads * a.per_kv_head;
    }
    return 0;
}

static bool has_storage(const ir_node *n)
{
    return n->op != IR_OP_INPUT && n->op != IR_OP_WEIGHT && n->op != IR_OP_CONST;
}

bool pass_lower(ir_graph *g, ir_plan *plan, bool int8_dot)
{
    sup_arena *arena = g->arena;
    memset(plan, 0, sizeof *plan);
    plan->buf = sup_arena_alloc(arena, sizeof *plan->buf * (size_t)g->n_nodes);
    plan->output_copies =
        sup_arena_alloc(arena, sizeof *plan->output_copies * (size_t)(g->n_outputs + 1));
    int32_t *last_use = sup_arena_alloc(arena, sizeof *last_use * (size_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++) {
        last_use[i] = i;
        for (int j = 0; j < g->nodes[i].n_inputs; j++) last_use[g->nodes[i].inputs[j]] = i;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        ir_buffer *b = &plan->buf[i];
        b->bytes = ir_node_count(n) * 4;
        b->kind = n->op == IR_OP_CONST    ? IR_BUF_NONE
                  : n->op == IR_OP_WEIGHT ? IR_BUF_WEIGHT
                                          : IR_BUF_WORKSPACE;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        plan->buf[g->inputs[i].node].kind = IR_BUF_INPUT;
        plan->buf[g->inputs[i].node].port = i;
    }
    for (int o = 0; o < g->n_outputs; o++) {
        int32_t node = g->outputs[o].node;
        plan->output_copies[o] = -1;
        if (has_storage(&g->nodes[node]) && plan->buf[node].kind == IR_BUF_WORKSPACE) {
            plan->buf[node].kind = IR_BUF_OUTPUT;
            plan->buf[node].port = o;
        } else {
            plan->output_copies[o] = node; /* an input, weight or another output's node */
        }
    }
    /* rows_die_after[i]: the layer whose shared int8 rows are free once
     * node i (their last reader) has run, or -1 */
    int32_t *rows_die_after = sup_arena_alloc(arena, sizeof *rows_die_after * (size_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++) rows_die_after[i] = -1;
    allocator a = {.arena = arena};
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        ir_buffer *b = &plan->buf[i];
        if (b->kind == IR_BUF_WORKSPACE) b->offset = alloc_bytes(&a, b->bytes);
        b->scratch_bytes = b->reuses_act_rows ? b->scratch_bytes : scratch_bytes(g, n, int8_dot);
        if (b->scratch_bytes && !b->reuses_act_rows) {
            b->scratch_offset = alloc_bytes(&a, b->scratch_bytes);
            int32_t last = i;
            for (int32_t j = i + 1; n->op == IR_OP_LINEAR && j <= last_use[n->inputs[0]]; j++)
                if (!plan->buf[j].reuses_act_rows &&
                    ir_same_act_rows(g, n, &g->nodes[j], int8_dot)) {
                    plan->buf[j].reuses_act_rows = true;
                    plan->buf[j].scratch_offset = b->scratch_offset;
                    plan->buf[j].scratch_bytes = b->scratch_bytes;
                    last = j;
                }
            if (last == i)
                free_bytes(&a, b->scratch_offset); /* for this node's run alone */
            else
                rows_die_after[last] = i;
        }
        if (rows_die_after[i] >= 0) free_bytes(&a, plan->buf[rows_die_after[i]].scratch_offset);
        /* operands whose last reader is this node are dead from here on */
        for (int j = 0; j < n->n_inputs; j++) {
            int32_t in = n->inputs[j];
            bool first = true;
            for (int k = 0; k < j; k++) first &= n->inputs[k] != in;
            if (first && last_use[in] == i && plan->buf[in].kind == IR_BUF_WORKSPACE)
                free_bytes(&a, plan->buf[in].offset);
        }
        if (last_use[i] == i && b->kind == IR_BUF_WORKSPACE)
            free_bytes(&a, b->offset); /* never read */
    }
    plan->workspace_size = ir_align64(a.high);
    plan->peak_live_bytes = a.peak;
    return true;
}
