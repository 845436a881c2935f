/* plan.c: questions about the memory plan that the lower pass answers and
 * codegen relies on: how many int8 rows a linear layer makes of its input,
 * where they sit in its scratch, and which layers can share them.
 *
 * Needs: weight matrices quantized (node->qw) where they are not f32.
 * Guarantees: lower and codegen agree on every scratch layout, because
 * both ask these functions. Offsets are 64-byte aligned (ir_align64). */
#include <stdint.h>

#include "ir.h"

enum { ALIGN = 64 };

int64_t ir_align64(int64_t v) { return (v + ALIGN - 1) / ALIGN * ALIGN; }

int ir_act_int8_rows(const ir_qweight *q, bool int8_dot)
{
    if (!q) return 0;
    if (q->f.act8) return 1;
    /* a group's int32 sum of byte products (codes up to 255, digits down
     * to -128) must not overflow */
    bool fits = q->group * 255 * 128 < INT32_MAX;
    /* int8 and the grouped low-bit integers spread their codes to bytes */
    bool bytes = q_format_is_int(q->f.format) && (q_format_bits(q->f.format) >= 4 || q->f.group);
    return int8_dot && bytes && fits ? IR_A8X3_DIGITS : 0;
}

ir_act8_scratch ir_act8_scratch_layout(const ir_graph *g, const ir_node *n, bool int8_dot)
{
    const ir_qweight *q = g->nodes[n->inputs[1]].qw;
    int64_t m = ir_node_count(n) / q->n * ir_act_int8_rows(q, int8_dot), kp = (q->kp + 7) / 8 * 8;
    ir_act8_scratch s;
    s.scales = ir_align64(m * kp);
    s.sums = s.scales + ir_align64(4 * m);
    s.float_rows = s.sums + ir_align64(4 * m * q->n_groups);
    s.bytes = s.float_rows + (int8_dot ? 0 : ir_align64(4 * m * q->k));
    return s;
}

bool ir_same_act_rows(const ir_graph *g, const ir_node *a, const ir_node *b, bool int8_dot)
{
    if (a->op != IR_OP_LINEAR || b->op != IR_OP_LINEAR || a->inputs[0] != b->inputs[0])
        return false;
    const ir_qweight *qa = g->nodes[a->inputs[1]].qw, *qb = g->nodes[b->inputs[1]].qw;
    int rows = ir_act_int8_rows(qa, int8_dot);
    if (!rows || !qb || ir_act_int8_rows(qb, int8_dot) != rows) return false;
    /* the rows' layout (K padded to the group, the groups' code sums) and
     * values (the scale, the weights' code offset) follow from these */
    return ir_node_count(a) / qa->n == ir_node_count(b) / qb->n && qa->k == qb->k &&
           qa->kp == qb->kp && qa->group == qb->group && qa->f.format == qb->f.format &&
           qa->f.act8 == qb->f.act8 && qa->f.act_scale == qb->f.act_scale &&
           qa->f.act_model == qb->f.act_model && qa->f.act_zero == qb->f.act_zero &&
           qa->zero_point == qb->zero_point;
}

ir_attn_scratch ir_attention_scratch(const ir_graph *g, const ir_node *n)
{
    QMC_ASSERT(n->op == IR_OP_ATTENTION);
    const ir_node *q = &g->nodes[n->inputs[0]], *k = &g->nodes[n->inputs[1]];
    int64_t keys = n->attr.cached ? g->context : k->shape[0];
    int64_t stride = (keys + 15) / 16 * 16;
    if (stride / 16 % 2 == 0) stride += 16;
    int64_t hd = q->shape[1] / n->attr.heads, hv = n->shape[1] / n->attr.heads;
    int64_t rows = IR_ATTN_QUERY_BLOCK + hd;
    if (n->attr.cached && g->kv_format != RT_KV_F32) rows += hv;
    ir_attn_scratch a = {.stride = stride,
                         .per_kv_head = rows * stride,
                         .kv_heads = n->attr.kv_heads ? n->attr.kv_heads : n->attr.heads};
    return a;
}

ir_state ir_state_layout(sup_arena *arena, const ir_graph *g)
{
    ir_state st;
    size_t n = sizeof(int64_t) * (size_t)(g->n_caches + 1);
    st.k = sup_arena_alloc(arena, n), st.v = sup_arena_alloc(arena, n);
    st.k_scale = sup_arena_alloc(arena, n), st.v_scale = sup_arena_alloc(arena, n);
    bool quantized = g->kv_format != RT_KV_F32;
    int64_t elem = quantized ? 1 : (int64_t)sizeof(float), at = IR_STATE_HEADER;
    for (int c = 0; c < g->n_caches; c++) {
        const ir_cache *k = &g->caches[c];
        int64_t scales = g->context * k->kv_heads * (int64_t)sizeof(float);
        st.k[c] = at;
        at = ir_align64(at + g->context * k->k_dim * elem);
        st.k_scale[c] = at;
        at = quantized ? ir_align64(at + scales) : at;
        st.v[c] = at;
        at = ir_align64(at + g->context * k->v_dim * elem);
        st.v_scale[c] = at;
        at = quantized ? ir_align64(at + scales) : at;
    }
    st.size = at;
    return st;
}

ir_seq_workspace ir_sequence_workspace(sup_arena *arena, const ir_graph *g)
{
    ir_seq_workspace w = {0};
    int64_t tokens = 0;
    for (int s = 0; s < g->n_steps; s++) {
        if (g->steps[s].plan.workspace_size > w.size) w.size = g->steps[s].plan.workspace_size;
        if (g->steps[s].tokens > tokens) tokens = g->steps[s].tokens;
    }
    int n = g->n_inputs + g->n_outputs;
    w.staging = sup_arena_alloc(arena, sizeof *w.staging * (size_t)(n + 1));
    for (int p = 0; p < n; p++) {
        const ir_port *port = p < g->n_inputs ? &g->inputs[p] : &g->outputs[p - g->n_inputs];
        int64_t row = 4; /* f32 and i32 */
        for (int d = 1; d < port->rank; d++) row *= port->shape[d];
        w.staging[p] = w.size;
        w.size = ir_align64(w.size + tokens * row);
    }
    return w;
}
