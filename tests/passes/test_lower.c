/* test_lower.c: how lowering decides the int8 rows a linear layer makes of
 * its activations (ir_act_int8_rows), which layers share them
 * (ir_same_act_rows) and the scratch they take. */
#include "unit.h"

#include "passes.h"

static ir_qweight weight(q_format format, int64_t kp, int64_t group, bool act8)
{
    ir_qweight q = {.f = {.format = format, .group = (int)(group == kp ? 0 : group), .act8 = act8},
                    .n = 16,
                    .k = kp,
                    .kp = kp,
                    .group = group,
                    .n_groups = kp / group};
    return q;
}

static void test_act_int8_rows(void **state)
{
    (void)state;
    assert_int_equal(ir_act_int8_rows(NULL, true), 0); /* f32 weights */
    ir_qweight int4 = weight(QFMT_INT4, 4096, 32, false),
               int8 = weight(QFMT_INT8, 4096, 4096, false);
    ir_qweight asym = weight(QFMT_UINT4, 4096, 32, false),
               fp8 = weight(QFMT_FP8_E4M3, 4096, 4096, false);
    /* f32 activations: three digits with integer dot products, else floats */
    assert_int_equal(ir_act_int8_rows(&int4, true), IR_A8X3_DIGITS);
    assert_int_equal(ir_act_int8_rows(&int8, true), IR_A8X3_DIGITS);
    assert_int_equal(ir_act_int8_rows(&asym, true), IR_A8X3_DIGITS);
    assert_int_equal(ir_act_int8_rows(&int4, false), 0);
    assert_int_equal(ir_act_int8_rows(&fp8, true), 0);
    /* int3 and int2 (grouped) spread their codes to bytes too; NF4 decodes to float */
    ir_qweight int3 = weight(QFMT_INT3, 4096, 32, false),
               int2 = weight(QFMT_UINT2, 4096, 128, false), nf4 = weight(QFMT_NF4, 4096, 32, false);
    assert_int_equal(ir_act_int8_rows(&int3, true), IR_A8X3_DIGITS);
    assert_int_equal(ir_act_int8_rows(&int2, true), IR_A8X3_DIGITS);
    assert_int_equal(ir_act_int8_rows(&int3, false), 0);
    assert_int_equal(ir_act_int8_rows(&nf4, true), 0);
    /* :a8: one int8 row with or without integer dot products */
    ir_qweight a8 = weight(QFMT_INT4, 4096, 32, true);
    assert_int_equal(ir_act_int8_rows(&a8, true), 1);
    assert_int_equal(ir_act_int8_rows(&a8, false), 1);
    /* a group whose int32 sums could overflow: 65,800 * 255 * 128 > 2^31 */
    ir_qweight wide = weight(QFMT_INT8, 65800, 65800, false),
               fits = weight(QFMT_INT8, 65792, 65792, false);
    assert_int_equal(ir_act_int8_rows(&wide, true), 0);
    assert_int_equal(ir_act_int8_rows(&fits, true), IR_A8X3_DIGITS);
}

/* A graph: input x [4, 64], then one linear layer per weight (each with
 * its own format) reading x, then their sum chain; every output alive to
 * the end. */
static sup_arena arena;

static int32_t node(ir_graph *g, ir_op op, const int32_t *in, int n_in, int64_t rows, int64_t cols)
{
    int32_t i = ir_add_node(g, op, in, n_in, (sup_loc){0});
    g->nodes[i].rank = 2;
    g->nodes[i].shape[0] = rows;
    g->nodes[i].shape[1] = cols;
    return i;
}

static ir_graph *linears_of_one_input(ir_qweight *qs, int n, int32_t *lin)
{
    ir_graph *g = sup_arena_alloc(&arena, sizeof *g);
    memset(g, 0, sizeof *g);
    g->arena = &arena;
    int32_t x = node(g, IR_OP_INPUT, NULL, 0, 4, 64), sum = -1;
    g->inputs = sup_arena_alloc(&arena, sizeof *g->inputs);
    g->inputs[0] = (ir_port){.node = x};
    g->n_inputs = 1;
    for (int i = 0; i < n; i++) {
        int32_t w = node(g, IR_OP_WEIGHT, NULL, 0, qs[i].n, qs[i].k);
        g->nodes[w].qw = &qs[i];
        lin[i] = node(g, IR_OP_LINEAR, (int32_t[]){x, w}, 2, 4, qs[i].n);
        sum = sum < 0 ? lin[i] : node(g, IR_OP_ADD, (int32_t[]){sum, lin[i]}, 2, 4, qs[i].n);
    }
    g->outputs = sup_arena_alloc(&arena, sizeof *g->outputs);
    g->outputs[0] = (ir_port){.node = sum};
    g->n_outputs = 1;
    return g;
}

static bool overlap(int64_t a, int64_t an, int64_t b, int64_t bn)
{
    return a < b + bn && b < a + an;
}

static void test_shared_act_rows(void **state)
{
    (void)state;
    /* q, k, v alike; then one with int8 weights, one with a static scale,
     * one like q again */
    ir_qweight qs[6];
    for (int i = 0; i < 6; i++) qs[i] = weight(QFMT_INT4, 64, 32, false);
    qs[3] = weight(QFMT_INT8, 64, 64, false);
    qs[4] = weight(QFMT_INT4, 64, 32, true);
    qs[4].f.act_scale = 0.5f;
    int32_t lin[6];
    ir_graph *g = linears_of_one_input(qs, 6, lin);
    assert_true(ir_same_act_rows(g, &g->nodes[lin[0]], &g->nodes[lin[1]], true));
    assert_false(
        ir_same_act_rows(g, &g->nodes[lin[0]], &g->nodes[lin[3]], true)); /* other format */
    assert_false(ir_same_act_rows(g, &g->nodes[lin[0]], &g->nodes[lin[4]], true)); /* :a8 */
    assert_false(
        ir_same_act_rows(g, &g->nodes[lin[0]], &g->nodes[lin[1]], false)); /* floats: no rows */
    ir_plan plan;
    assert_true(pass_lower(g, &plan, true));
    const ir_buffer *b = plan.buf;
    assert_false(b[lin[0]].reuses_act_rows);
    assert_true(b[lin[0]].scratch_bytes > 0);
    for (int i = 1; i <= 5; i++) {
        bool shares = i != 3 && i != 4;
        assert_int_equal(b[lin[i]].reuses_act_rows, shares);
        assert_true(b[lin[i]].scratch_bytes > 0);
        if (shares)
            assert_int_equal(b[lin[i]].scratch_offset, b[lin[0]].scratch_offset);
        else
            assert_int_not_equal(b[lin[i]].scratch_offset, b[lin[0]].scratch_offset);
    }
    /* the shared rows stay intact until the last layer reading them: no
     * buffer or scratch computed in between lies on them */
    for (int32_t i = lin[0] + 1; i <= lin[5]; i++) {
        if (b[i].kind == IR_BUF_WORKSPACE)
            assert_false(overlap(b[i].offset, b[i].bytes, b[lin[0]].scratch_offset,
                                 b[lin[0]].scratch_bytes));
        if (b[i].scratch_bytes && !b[i].reuses_act_rows)
            assert_false(overlap(b[i].scratch_offset, b[i].scratch_bytes, b[lin[0]].scratch_offset,
                                 b[lin[0]].scratch_bytes));
    }
    /* without integer dot products f32 activations make no int8 rows */
    assert_true(pass_lower(g, &plan, false));
    for (int i = 1; i <= 5; i++) assert_false(plan.buf[lin[i]].reuses_act_rows);
    sup_arena_free(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_act_int8_rows),
        cmocka_unit_test(test_shared_act_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
