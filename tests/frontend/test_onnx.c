/* test_onnx.c: the ONNX reader on the project's models (every initializer
 * checked against the examples' safetensors files), the ORT-quantized
 * peers, external data, every storage field and data type, and truncated
 * or empty images. The error messages of malformed files are golden files
 * (errors.sh). */
#include <math.h>

#include "frontend.h"
#include "unit.h"

static char *source_path(const char *rel)
{
    const char *src = getenv("QMC_SOURCE");
    static char buf[8][1024];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", src ? src : "../..", rel);
    return buf[k];
}

static const fe_onnx_tensor *find_init(const fe_onnx_model *m, const char *name)
{
    for (int i = 0; i < m->n_initializers; i++)
        if (strcmp(m->initializers[i].name, name) == 0) return &m->initializers[i];
    return NULL;
}

static const fe_onnx_node *find_node(const fe_onnx_model *m, const char *name)
{
    for (int i = 0; i < m->n_nodes; i++)
        if (strcmp(m->nodes[i].name, name) == 0) return &m->nodes[i];
    return NULL;
}

static void test_digits(void **state)
{
    (void)state;
    sup_arena a = {0};
    fe_onnx_model m;
    assert_true(fe_onnx_open(&a, source_path("examples/digits/digits-mlp.onnx"), &m));
    assert_int_equal(m.ir_version, 8);
    assert_string_equal(m.producer, "pytorch 2.11.0");
    assert_int_equal(m.n_opsets, 1);
    assert_string_equal(m.opsets[0].domain, "");
    assert_int_equal(m.opsets[0].version, 17);
    assert_int_equal(m.n_inputs, 1);
    assert_string_equal(m.inputs[0].name, "x");
    assert_int_equal(m.inputs[0].elem_type, FE_ONNX_FLOAT);
    assert_int_equal(m.inputs[0].rank, 2);
    assert_int_equal(m.inputs[0].dims[0].value, 1);
    assert_int_equal(m.inputs[0].dims[1].value, 64);
    assert_int_equal(m.n_outputs, 1);
    assert_string_equal(m.outputs[0].name, "logits");
    assert_int_equal(m.n_nodes, 5);
    const fe_onnx_node *g = &m.nodes[0];
    assert_string_equal(g->name, "/fc1/Gemm");
    assert_string_equal(g->op_type, "Gemm");
    assert_string_equal(g->domain, "");
    assert_int_equal(g->opset, 17);
    assert_int_equal(g->n_inputs, 3);
    assert_string_equal(g->inputs[1], "fc1.weight");
    const fe_onnx_attr *tb = fe_onnx_attr_find(g, "transB"), *al = fe_onnx_attr_find(g, "alpha");
    assert_non_null(tb);
    assert_int_equal(tb->type, FE_ONNX_ATTR_INT);
    assert_int_equal(tb->i, 1);
    assert_int_equal(al->type, FE_ONNX_ATTR_FLOAT);
    assert_true(al->f == 1.0f);
    assert_null(fe_onnx_attr_find(g, "transA"));
    /* every initializer is the PyTorch tensor of the example, bit for bit */
    fe_safetensors st;
    char err[256];
    assert_int_equal(fe_safetensors_open(&a, source_path("examples/digits/digits-mlp.safetensors"),
                                         &st, err, sizeof err),
                     QMC_OK);
    assert_int_equal(m.n_initializers, 6);
    for (int i = 0; i < m.n_initializers; i++) {
        const fe_onnx_tensor *t = &m.initializers[i];
        const fe_tensor *ref = fe_safetensors_find(&st, t->name);
        assert_non_null(ref);
        assert_int_equal(t->dtype, FE_ONNX_FLOAT);
        assert_int_equal(t->rank, ref->rank);
        for (int d = 0; d < t->rank; d++) assert_int_equal(t->dims[d], ref->shape[d]);
        assert_int_equal(t->size, ref->size);
        assert_false(t->external);
        assert_memory_equal(t->data, ref->data, ref->size);
    }
    fe_safetensors_close(&st);
    fe_onnx_close(&m);
    sup_arena_free(&a);
}

static void test_lm_dev(void **state)
{
    (void)state;
    sup_arena a = {0};
    fe_onnx_model m;
    assert_true(fe_onnx_open(&a, source_path("examples/tiny-gpt/lm-dev.onnx"), &m));
    assert_int_equal(m.n_nodes, 97);
    assert_int_equal(m.n_initializers, 37);
    assert_int_equal(m.inputs[0].elem_type, FE_ONNX_INT64);
    int constants = 0;
    for (int i = 0; i < m.n_nodes; i++) constants += m.nodes[i].value != NULL;
    assert_int_equal(constants, 21);
    /* the head-split shape [1, 128, 4, 32] */
    const fe_onnx_node *c = find_node(&m, "/blocks.0/Constant");
    assert_non_null(c);
    assert_non_null(c->value);
    assert_string_equal(c->value->name, "/blocks.0/Constant_output_0");
    assert_int_equal(c->value->dtype, FE_ONNX_INT64);
    assert_int_equal(c->value->count, 4);
    static const int64_t want[4] = {1, 128, 4, 32};
    for (int i = 0; i < 4; i++) {
        int64_t v;
        assert_true(fe_onnx_tensor_get_int(c->value, i, &v));
        assert_int_equal(v, want[i]);
    }
    const fe_onnx_node *mask = find_node(&m, "/blocks.0/Constant_4");
    assert_int_equal(mask->value->dtype, FE_ONNX_BOOL);
    assert_int_equal(mask->value->count, 128 * 128);
    assert_int_equal(fe_onnx_attr_find(find_node(&m, "/blocks.0/Cast"), "to")->i, FE_ONNX_BOOL);
    /* MatMul weights are the PyTorch Linear weights transposed */
    fe_safetensors st;
    char err[256];
    assert_int_equal(fe_safetensors_open(&a, source_path("examples/tiny-gpt/lm-dev.safetensors"),
                                         &st, err, sizeof err),
                     QMC_OK);
    const fe_onnx_tensor *w = find_init(&m, "onnx::MatMul_220");
    const fe_tensor *q = fe_safetensors_find(&st, "blocks.0.q.weight");
    assert_non_null(w);
    assert_non_null(q);
    const float *qw = q->data;
    for (int r = 0; r < 128; r++)
        for (int col = 0; col < 128; col++) {
            double v;
            assert_true(fe_onnx_tensor_get(w, r * 128 + col, &v));
            assert_true((float)v == qw[col * 128 + r]);
        }
    const fe_onnx_tensor *b = find_init(&m, "blocks.1.fc1.bias");
    assert_memory_equal(b->data, fe_safetensors_find(&st, "blocks.1.fc1.bias")->data, 512 * 4);
    fe_safetensors_close(&st);
    fe_onnx_close(&m);
    sup_arena_free(&a);
}

static void test_peers(void **state)
{
    (void)state;
    sup_arena a = {0};
    fe_onnx_model m;
    assert_true(
        fe_onnx_open(&a, source_path("tests/data/onnx/lm-dev-peers/lm-dev.ort-dyn-int8.onnx"), &m));
    assert_int_equal(m.n_nodes, 146);
    /* scales and zero points are in typed fields */
    const fe_onnx_tensor *s = find_init(&m, "onnx::MatMul_220_scale"),
                         *z = find_init(&m, "tok_emb.weight_zero_point");
    assert_int_equal(s->dtype, FE_ONNX_FLOAT);
    assert_int_equal(s->count, 128);
    double v;
    for (int i = 0; i < 128; i++) assert_true(fe_onnx_tensor_get(s, i, &v) && v > 0 && v < 1);
    assert_int_equal(z->dtype, FE_ONNX_UINT8);
    assert_true(fe_onnx_tensor_get(z, 0, &v));
    assert_true(v == 128);
    fe_onnx_close(&m);
    assert_true(fe_onnx_open(
        &a, source_path("tests/data/onnx/lm-dev-peers/lm-dev.ort-int4-b32-acc4.onnx"), &m));
    assert_int_equal(fe_onnx_opset_version(&m, "com.microsoft"), 1);
    assert_int_equal(fe_onnx_opset_version(&m, "ai.onnx"), 17);
    const fe_onnx_node *q4 = find_node(&m, "/blocks.0/q/MatMul_Q4");
    assert_string_equal(q4->domain, "com.microsoft");
    assert_string_equal(q4->op_type, "MatMulNBits");
    assert_int_equal(q4->opset, 1);
    assert_int_equal(fe_onnx_attr_find(q4, "block_size")->i, 32);
    assert_int_equal(fe_onnx_attr_find(q4, "accuracy_level")->i, 4);
    const fe_onnx_tensor *b = find_init(&m, q4->inputs[1]);
    assert_int_equal(b->dtype, FE_ONNX_UINT8);
    assert_int_equal(b->rank, 3);
    assert_int_equal(b->dims[2], 16);
    fe_onnx_close(&m);
    sup_arena_free(&a);
}

static void test_external(void **state)
{
    (void)state;
    sup_arena a = {0};
    fe_onnx_model m;
    const char *path = source_path("tests/data/onnx/ext/ext-mlp.onnx");
    assert_true(fe_onnx_open(&a, path, &m));
    rt_mapped_file f;
    char err[256];
    assert_int_equal(
        rt_file_map(source_path("tests/data/onnx/ext/ext-mlp.data"), &f, err, sizeof err), QMC_OK);
    size_t offset = 0;
    assert_int_equal(m.n_initializers, 3);
    for (int i = 0; i < m.n_initializers; i++) {
        const fe_onnx_tensor *t = &m.initializers[i];
        assert_true(t->external);
        assert_int_equal(t->size, (size_t)t->count * 4);
        /* python3-onnx 1.12 writes the tensors one after another */
        assert_true(offset + t->size <= f.size);
        assert_memory_equal(t->data, f.data + offset, t->size);
        offset += t->size;
    }
    assert_int_equal(offset, f.size);
    rt_file_unmap(&f);
    fe_onnx_close(&m);
    /* in memory there is no folder to read external data from */
    rt_mapped_file mf;
    assert_int_equal(rt_file_map(path, &mf, err, sizeof err), QMC_OK);
    capture c;
    capture_begin(&c);
    assert_false(fe_onnx_parse(&a, "mem.onnx", mf.data, mf.size, &m));
    assert_captured(
        &c, "mem.onnx: error: initializer 'w1' has external data, which needs the model's folder "
            "(not available in memory)\n");
    rt_file_unmap(&mf);
    sup_arena_free(&a);
}

static double get(const fe_onnx_model *m, const char *name, int64_t i)
{
    double v = NAN;
    assert_true(fe_onnx_tensor_get(find_init(m, name), i, &v));
    return v;
}

static void test_types(void **state)
{
    (void)state;
    sup_arena a = {0};
    fe_onnx_model m;
    assert_true(fe_onnx_open(&a, source_path("tests/data/onnx/types/types.onnx"), &m));
    assert_true(get(&m, "f32_typed", 0) == 1.5 && get(&m, "f32_typed", 1) == -2.0 &&
                get(&m, "f32_typed", 2) == 0.25);
    assert_true(get(&m, "f64_typed", 0) == 0.1 && get(&m, "f64_typed", 1) == -3.0);
    int64_t iv;
    assert_true(fe_onnx_tensor_get_int(find_init(&m, "i64_typed"), 2, &iv));
    assert_int_equal(iv, (int64_t)1 << 40);
    assert_true(get(&m, "i64_typed", 0) == -1);
    assert_true(get(&m, "i8_typed", 0) == -128 && get(&m, "i8_typed", 2) == 127);
    assert_true(get(&m, "u16_typed", 0) == 65535 && get(&m, "u16_typed", 1) == 7);
    assert_true(get(&m, "bool_typed", 0) == 1 && get(&m, "bool_typed", 1) == 0);
    assert_true(get(&m, "f16_typed", 0) == 1.5 && get(&m, "f16_typed", 1) == -0.5);
    assert_true(get(&m, "u32_typed", 0) == 4000000000.0);
    assert_true(get(&m, "f16_raw", 0) == 65504 && get(&m, "f16_raw", 1) == -2);
    assert_true(get(&m, "bf16_raw", 0) == 1.0 && get(&m, "bf16_raw", 1) == -2.0);
    const fe_onnx_tensor *s = find_init(&m, "str_typed");
    assert_int_equal(s->dtype, FE_ONNX_STRING);
    assert_string_equal(s->strings[0], "ab");
    assert_string_equal(s->strings[1], "");
    const fe_onnx_tensor *e = find_init(&m, "empty");
    assert_int_equal(e->count, 0);
    assert_null(e->data);
    /* types the 1.12 schema does not name */
    assert_true(get(&m, "e4m3fn", 0) == 1.0 && get(&m, "e4m3fn", 1) == -1.0 &&
                get(&m, "e4m3fn", 2) == 448);
    assert_true(isnan(get(&m, "e4m3fn", 3)));
    assert_true(get(&m, "e4m3fnuz", 0) == 1.0 && isnan(get(&m, "e4m3fnuz", 1)));
    assert_true(get(&m, "e5m2", 0) == 1.0 && isinf(get(&m, "e5m2", 1)) &&
                get(&m, "e5m2", 2) == ldexp(1, -16));
    assert_true(get(&m, "e5m2fnuz", 0) == 1.0);
    assert_int_equal(find_init(&m, "uint4")->size, 2);
    assert_true(get(&m, "uint4", 0) == 1 && get(&m, "uint4", 1) == 2 && get(&m, "uint4", 2) == 15);
    assert_true(get(&m, "int4", 0) == 7 && get(&m, "int4", 1) == -1 && get(&m, "int4", 2) == -8);
    assert_true(get(&m, "int4_typed", 0) == 7 && get(&m, "int4_typed", 2) == -8);
    assert_string_equal(fe_onnx_dtype_name(FE_ONNX_FLOAT8E5M2FNUZ), "float8e5m2fnuz");
    assert_int_equal(fe_onnx_dtype_bits(FE_ONNX_INT4), 4);
    assert_null(fe_onnx_dtype_name(23));
    /* Constant nodes with value_float and value_ints */
    const fe_onnx_tensor *cf = m.nodes[0].value, *ci = m.nodes[1].value;
    assert_string_equal(cf->name, "cf");
    assert_int_equal(cf->dtype, FE_ONNX_FLOAT);
    assert_int_equal(cf->rank, 0);
    double v;
    assert_true(fe_onnx_tensor_get(cf, 0, &v) && v == 2.5);
    assert_int_equal(ci->dtype, FE_ONNX_INT64);
    assert_int_equal(ci->rank, 1);
    assert_int_equal(ci->dims[0], 3);
    assert_true(fe_onnx_tensor_get_int(ci, 2, &iv) && iv == 3);
    assert_null(m.nodes[2].value);
    fe_onnx_close(&m);
    sup_arena_free(&a);
}

/* Every prefix of a model either reads or gives exactly one error line. */
static void test_truncated(void **state)
{
    (void)state;
    rt_mapped_file f;
    char err[256];
    assert_int_equal(
        rt_file_map(source_path("examples/digits/digits-mlp.onnx"), &f, err, sizeof err), QMC_OK);
    int failed = 0;
    for (size_t n = 0; n < f.size; n += n < 512 ? 1 : 997) {
        sup_arena a = {0};
        fe_onnx_model m;
        uint8_t *copy = malloc(n + 1);
        memcpy(copy, f.data, n);
        capture c;
        capture_begin(&c);
        bool ok = fe_onnx_parse(&a, "cut.onnx", copy, n, &m);
        char *text = capture_end(&c);
        if (!ok) {
            failed++;
            assert_true(strncmp(text, "cut.onnx: error: ", 17) == 0);
            assert_non_null(strchr(text, '\n'));
            assert_null(strchr(text, '\n') + 1 < text + strlen(text) ? strchr(text, '\n') + 1
                                                                     : NULL);
        }
        if (n == 0)
            assert_string_equal(text, "cut.onnx: error: the file is empty, not an ONNX model\n");
        free(text);
        free(copy);
        sup_arena_free(&a);
    }
    assert_true(failed > 100);
    rt_file_unmap(&f);
}

static void test_map(void **state)
{
    (void)state;
    sup_arena a = {0};
    fe_onnx_map m = {0};
    char *keys[1000];
    for (int i = 0; i < 1000; i++) {
        keys[i] = sup_arena_printf(&a, "k%d", i);
        int32_t *s = fe_onnx_map_slot(&a, &m, keys[i], true);
        assert_int_equal(*s, -1);
        *s = i;
    }
    for (int i = 0; i < 1000; i++) assert_int_equal(*fe_onnx_map_slot(&a, &m, keys[i], false), i);
    assert_null(fe_onnx_map_slot(&a, &m, "nope", false));
    assert_int_equal(m.count, 1000);
    sup_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digits), cmocka_unit_test(test_lm_dev),
        cmocka_unit_test(test_peers),  cmocka_unit_test(test_external),
        cmocka_unit_test(test_types),  cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
