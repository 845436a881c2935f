/* test_interp.c: the reference interpreter on small graphs built from
 * source, each op checked against an index-by-index computation: numpy
 * broadcasting, batched matmul with broadcast batch dimensions, general
 * transposes, slices, concatenation, embedding, reshape, linear with a
 * computed weight; and on tiny-gpt, batches of samples, weight providers
 * and released weight pages giving bit for bit what single runs give. */
#include <math.h>

#include "unit.h"

#include "passes.h"

static sup_arena arena;

static ir_graph *build(const char *src)
{
    capture c;
    capture_begin(&c);
    fe_node *file = fe_parse_text(&arena, "i.qm", src, strlen(src));
    pass_build_options opts = {0};
    ir_graph *g = file ? pass_build_graph(&arena, file, &opts) : NULL;
    assert_captured(&c, "");
    assert_non_null(g);
    assert_true(pass_infer_shapes(g) && ir_verify(g, "shape"));
    return g;
}

static void fill(float *x, int64_t n, int seed)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)((i * 37 + seed * 11) % 23) / 4.0f - 2.5f;
}

/* Fills every f32 input deterministically and runs the graph. */
static interp *run(const ir_graph *g)
{
    interp *it = interp_new(&arena, g);
    for (int p = 0; p < g->n_inputs; p++)
        if (g->inputs[p].dtype == QMC_DTYPE_F32)
            fill(interp_input(it, p), ir_node_count(&g->nodes[g->inputs[p].node]), p + 1);
    return it;
}

static const float *in(interp *it, int port) { return interp_input(it, port); }

static void test_broadcast_elementwise(void **state)
{
    (void)state;
    ir_graph *g = build("model m { input a: f32[2, 1, 3] input b: f32[4, 1] input c: f32[3]\n"
                        "output y: f32[2, 4, 3] output z: f32[2, 4, 3] output w: f32[2, 1, 3]\n"
                        "y = a + b  z = (b - a) * c / 2  w = a * 3 - c }");
    interp *it = run(g);
    assert_true(interp_run(it));
    const float *a = in(it, 0), *b = in(it, 1), *c = in(it, 2);
    const float *y = interp_output(it, 0), *z = interp_output(it, 1), *w = interp_output(it, 2);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 3; k++) {
                float av = a[i * 3 + k], bv = b[j], cv = c[k];
                assert_true(y[(i * 4 + j) * 3 + k] == av + bv);
                assert_true(z[(i * 4 + j) * 3 + k] == (bv - av) * cv / 2);
            }
    for (int i = 0; i < 6; i++) assert_true(w[i] == a[i] * 3 - c[i % 3]);
}

static void test_matmul_batched(void **state)
{
    (void)state;
    ir_graph *g = build("model m { input a: f32[3, 1, 2, 5] input b: f32[4, 5, 6] input v: f32[5]\n"
                        "output y: f32[3, 4, 2, 6] output z: f32[3, 1, 2]\n"
                        "y = matmul(a, b)  z = matmul(a, v) }");
    interp *it = run(g);
    assert_true(interp_run(it));
    const float *a = in(it, 0), *b = in(it, 1), *v = in(it, 2), *y = interp_output(it, 0),
                *z = interp_output(it, 1);
    for (int p = 0; p < 3; p++)
        for (int q = 0; q < 4; q++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 6; j++) {
                    float acc = 0;
                    for (int k = 0; k < 5; k++)
                        acc += a[(p * 2 + i) * 5 + k] * b[(q * 5 + k) * 6 + j];
                    assert_true(y[((p * 4 + q) * 2 + i) * 6 + j] == acc);
                }
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < 2; i++) {
            float acc = 0;
            for (int k = 0; k < 5; k++) acc += a[(p * 2 + i) * 5 + k] * v[k];
            assert_true(z[p * 2 + i] == acc);
        }
}

static void test_layout_ops(void **state)
{
    (void)state;
    ir_graph *g =
        build("model m { input x: f32[2, 3, 4] input u: f32[2, 5, 4]\n"
              "output t: f32[4, 2, 3] output s: f32[2, 2, 4] output c: f32[2, 11, 4] output r: "
              "f32[6, 4]\n"
              "t = transpose(x, [2, 0, 1])  s = slice(x, 1, -2, 3)  c = concat(x, u, x, axis=1)\n"
              "r = reshape(x, [-1, 4]) }");
    interp *it = run(g);
    assert_true(interp_run(it));
    const float *x = in(it, 0), *u = in(it, 1);
    const float *t = interp_output(it, 0), *s = interp_output(it, 1), *c = interp_output(it, 2),
                *r = interp_output(it, 3);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                assert_true(t[(k * 2 + i) * 3 + j] == x[(i * 3 + j) * 4 + k]);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 4; k++)
                assert_true(s[(i * 2 + j) * 4 + k] == x[(i * 3 + j + 1) * 4 + k]);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 11; j++)
            for (int k = 0; k < 4; k++) {
                float want = j < 3   ? x[(i * 3 + j) * 4 + k]
                             : j < 8 ? u[(i * 5 + j - 3) * 4 + k]
                                     : x[(i * 3 + j - 8) * 4 + k];
                assert_true(c[(i * 11 + j) * 4 + k] == want);
            }
    assert_memory_equal(r, x, sizeof(float) * 24);
}

static void test_embedding_and_linear(void **state)
{
    (void)state;
    ir_graph *g = build("model m { input table: f32[5, 3] input idx: i32[2, 2] input x: f32[2, 3] "
                        "input w: f32[4, 3]\n"
                        "output e: f32[2, 2, 3] output l: f32[2, 4] output n: f32[2, 4]\n"
                        "e = embedding(table, idx)  l = linear(x, w)  n = linear(x, w * 2, "
                        "slice(reshape(w, [12]), 0, 0, 4) * 0 + 1) }");
    interp *it = run(g);
    int32_t *idx = interp_input(it, 1);
    idx[0] = 4, idx[1] = 0, idx[2] = 2, idx[3] = 4;
    assert_true(interp_run(it));
    const float *table = in(it, 0), *x = in(it, 2), *w = in(it, 3);
    const float *e = interp_output(it, 0), *l = interp_output(it, 1), *n = interp_output(it, 2);
    for (int i = 0; i < 4; i++)
        assert_memory_equal(e + i * 3, table + idx[i] * 3, sizeof(float) * 3);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            float acc = 0;
            for (int k = 0; k < 3; k++) acc += x[i * 3 + k] * w[j * 3 + k];
            assert_true(l[i * 4 + j] == acc);
            float acc2 = 0;
            for (int k = 0; k < 3; k++) acc2 += x[i * 3 + k] * (w[j * 3 + k] * 2);
            assert_true(n[i * 4 + j] == acc2 + 1);
        }
    /* an index outside the table is a user error at the embedding */
    idx[2] = 5;
    capture c;
    capture_begin(&c);
    assert_false(interp_run(it));
    /* (capture_begin forgets the registered sources: no quoted line) */
    assert_captured(
        &c, "i.qm:3:5: error: embedding: index 5 at position 2 is outside the table's 5 rows\n");
    idx[2] = -1;
    capture_begin(&c);
    assert_false(interp_run(it));
    free(capture_end(&c));
}

static void test_softmax_norm_attention_nodes(void **state)
{
    (void)state;
    ir_graph *g =
        build("model m { input x: f32[3, 4] input g: f32[4]\n"
              "output s: f32[3, 4] output n: f32[3, 4] output a: f32[3, 4] output h: f32[3, 4]\n"
              "s = softmax(x, axis=0)  n = layernorm(x, g, g)  a = attention(x, x, x, heads=2, "
              "causal=true)\n"
              "h = gelu(x) + silu(x) + tanh(x) + relu(x) }");
    interp *it = run(g);
    assert_true(interp_run(it));
    const float *x = in(it, 0), *g0 = in(it, 1);
    const float *s = interp_output(it, 0), *n = interp_output(it, 1), *a = interp_output(it, 2),
                *h = interp_output(it, 3);
    float want[12], scratch[9 + 3 * 2];
    interp_ref_softmax(x, want, 1, 3, 4);
    assert_memory_equal(s, want, sizeof want);
    interp_ref_layernorm(x, g0, g0, want, 3, 4, 1e-5f);
    assert_memory_equal(n, want, sizeof want);
    interp_ref_attention(x, x, x, want, 3, 3, 4, 4, 2, true, (float)(1 / sqrt(2.0)), scratch);
    assert_memory_equal(a, want, sizeof want);
    for (int i = 0; i < 12; i++)
        assert_true(h[i] == ((interp_ref_gelu(x[i]) + interp_ref_silu(x[i])) + tanhf(x[i])) +
                                (x[i] > 0 ? x[i] : 0));
}

static int teardown(void **state)
{
    (void)state;
    sup_arena_free(&arena);
    sup_diag_reset();
    return 0;
}

/* ---- batches and weights on tiny-gpt ------------------------------------ */

static ir_graph *tiny_gpt(sup_arena *a, interp_file *in)
{
    const char *src = getenv("QMC_SOURCE");
    assert_non_null(src);
    pass_options po = {0};
    sup_diag_reset();
    ir_graph *g =
        pass_pipeline_load(a, sup_arena_printf(a, "%s/examples/tiny-gpt/tiny-gpt.qm", src), &po);
    assert_non_null(g);
    const char *spec = sup_arena_printf(a, "idx=%s/examples/tiny-gpt/calib_tokens.npy", src);
    int64_t batch;
    assert_true(interp_files_open(g, &spec, 1, in, &batch));
    assert_int_equal(batch, 32);
    return g;
}

/* A provider that hands out the weights file's values, times 1 or 2. */
static void twice_lm_head(void *ctx, int32_t node, float *out)
{
    const ir_graph *g = ctx;
    fe_tensor_to_f32(g->nodes[node].tensor, out);
    if (!strcmp(g->nodes[node].name, "lm_head.weight"))
        for (int64_t i = 0; i < ir_node_count(&g->nodes[node]); i++) out[i] *= 2;
}

static void test_batch_matches_single_runs(void **state)
{
    (void)state;
    sup_arena a = {0};
    interp_file in;
    ir_graph *g = tiny_gpt(&a, &in);
    enum { B = 3 };
    interp *one = interp_new(&a, g), *many = interp_new_batch(&a, g, B);
    interp_release_weights(many, true);
    for (int s = 0; s < B; s++) assert_true(interp_files_load_slot(g, many, &in, 1, 5 + s, s));
    assert_true(interp_run(many));
    /* every node of every slot: a batch of three computes three single runs */
    for (int s = 0; s < B; s++) {
        assert_true(interp_files_load(g, one, &in, 1, 5 + s) && interp_run(one));
        for (int i = 0; i < g->n_nodes; i++) {
            const ir_node *n = &g->nodes[i];
            if (n->op == IR_OP_WEIGHT || n->op == IR_OP_CONST) continue;
            size_t count = (size_t)ir_node_count(n);
            assert_memory_equal(interp_node_value(many, i) + count * (size_t)s,
                                interp_node_value(one, i), 4 * count);
        }
        assert_memory_equal(interp_output_slot(many, 0, s), interp_output(one, 0),
                            4 * (size_t)ir_node_count(&g->nodes[g->outputs[0].node]));
    }
    /* fewer slots than allocated, re-run after the pages were released:
     * the same values; a provider doubling lm_head equals setting the
     * doubled weight */
    interp_set_batch(many, 1);
    int32_t head = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != IR_OP_WEIGHT) continue;
        interp_set_weight_fn(many, i, twice_lm_head, g);
        if (!strcmp(g->nodes[i].name, "lm_head.weight")) head = i;
    }
    assert_true(head >= 0);
    float *twice = sup_arena_alloc(&a, sizeof(float) * (size_t)ir_node_count(&g->nodes[head]));
    twice_lm_head(g, head, twice);
    interp_set_weight(one, head, twice);
    assert_true(interp_files_load(g, many, &in, 1, 7) && interp_run(many));
    assert_true(interp_run(one)); /* sample 7 is still loaded */
    assert_memory_equal(interp_output(many, 0), interp_output(one, 0), 4 * 128 * 256);
    /* and back to the file's values */
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == IR_OP_WEIGHT) interp_reset_weight(many, i);
    interp_reset_weight(one, head);
    assert_true(interp_run(many) && interp_run(one));
    assert_memory_equal(interp_output(many, 0), interp_output(one, 0), 4 * 128 * 256);
    interp_file_close(&in);
    sup_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast_elementwise),
        cmocka_unit_test(test_matmul_batched),
        cmocka_unit_test(test_layout_ops),
        cmocka_unit_test(test_embedding_and_linear),
        cmocka_unit_test(test_softmax_norm_attention_nodes),
        cmocka_unit_test(test_batch_matches_single_runs),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
