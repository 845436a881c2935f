/* test_report.c: what precision selection builds on and what it reports.
 *
 * - interp_run_from after changing one weight gives bit for bit what a full
 *   run gives (the cache the sensitivity measurement relies on);
 * - the output error measures: KL and relative RMS on known values;
 * - --precision auto parses with its modifiers and rejects the others;
 * - the JSON report of digits (a fixed spec and auto) parses with
 *   fe_json_parse, its names and shapes are the model's, the bytes and
 *   bits add up to the totals, and its precision_spec reproduces the
 *   formats. */
#include "unit.h"

#include <math.h>
#include <unistd.h>

#include "passes.h"

static const char *source(sup_arena *a, const char *rel)
{
    const char *src = getenv("QMC_SOURCE");
    assert_non_null(src);
    return sup_arena_printf(a, "%s/%s", src, rel);
}

static ir_graph *digits(sup_arena *a)
{
    pass_options po = {0};
    sup_diag_reset(); /* sources registered by an earlier test lived in its arena */
    ir_graph *g = pass_pipeline_load(a, source(a, "examples/digits/digits.qm"), &po);
    assert_non_null(g);
    return g;
}

static int32_t node_named(const ir_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, name)) return i;
    fail_msg("no node %s", name);
    return -1;
}

static void test_run_from_matches_full_run(void **state)
{
    (void)state;
    sup_arena a = {0};
    ir_graph *g = digits(&a);
    interp *it = interp_new(&a, g), *fresh = interp_new(&a, g);
    float *x = interp_input(it, 0), *xf = interp_input(fresh, 0);
    for (int i = 0; i < 64; i++) x[i] = xf[i] = (float)((i * 7) % 17) / 16.0f;
    assert_true(interp_run(it));
    int32_t w = node_named(g, "fc2.weight"), first = node_named(g, "fc2");
    float *changed = sup_arena_alloc(&a, sizeof(float) * 128 * 256);
    const float *orig = interp_node_value(it, w);
    for (int i = 0; i < 128 * 256; i++) changed[i] = orig[i] * (i % 3 ? 1.25f : -0.5f);
    interp_set_weight(it, w, changed);
    interp_set_act8(it, w, true, 0.01f);
    assert_true(interp_run_from(it, first));
    interp_set_weight(fresh, w, changed);
    interp_set_act8(fresh, w, true, 0.01f);
    assert_true(interp_run(fresh));
    assert_memory_equal(interp_output(it, 0), interp_output(fresh, 0), sizeof(float) * 10);
    /* and back: the original weight re-run from the same node */
    interp_set_weight(it, w, orig);
    interp_set_act8(it, w, false, 0);
    assert_true(interp_run_from(it, first));
    interp *clean = interp_new(&a, g);
    memcpy(interp_input(clean, 0), x, sizeof(float) * 64);
    assert_true(interp_run(clean));
    assert_memory_equal(interp_output(it, 0), interp_output(clean, 0), sizeof(float) * 10);
    sup_arena_free(&a);
}

static void test_error_measures(void **state)
{
    (void)state;
    /* p = (1/2, 1/2), q = (3/4, 1/4): KL = ln 2 / 2 + ln(2/3) / 2 */
    float ref[4] = {0, 0, 5, 5}, q[4] = {(float)log(3.0), 0, 5, 5};
    double logp[4];
    q_log_softmax(ref, 4, 2, logp);
    q_error_acc acc = {0};
    q_error_add(&acc, true, ref, logp, q, 4, 2);
    assert_true(acc.den == 2);
    double want =
        (0.5 * log(0.5 / 0.75) + 0.5 * log(0.5 / 0.25)) / 2; /* the second row is unchanged */
    assert_true(fabs(q_error_value(&acc, true) - want) < 1e-7);
    q_error_acc same = {0};
    q_error_add(&same, true, ref, logp, ref, 4, 2);
    assert_true(q_error_value(&same, true) == 0);
    /* relative RMS of y against 2y is 1 */
    float y[3] = {1, -2, 3}, y2[3] = {2, -4, 6};
    q_error_acc r = {0};
    q_error_add(&r, false, y, NULL, y2, 3, 3);
    assert_true(fabs(q_error_value(&r, false) - 1.0) < 1e-12);
}

static void test_spec_parse(void **state)
{
    (void)state;
    sup_arena a = {0};
    pass_spec s;
    assert_true(pass_spec_parse(&a, "auto", &s) && s.dflt_automatic && !s.dflt.act8);
    assert_true(pass_spec_parse(&a, "auto:a8:static,lm_head.weight=int8", &s) && s.dflt_automatic &&
                s.dflt.act8 && s.dflt.act_static && s.n_overrides == 1 &&
                !s.overrides[0].automatic);
    assert_true(pass_spec_parse(&a, "int8,blocks.*=auto", &s) && !s.dflt_automatic &&
                s.overrides[0].automatic);
    assert_true(pass_spec_has_auto(&s));
    assert_true(pass_spec_parse(&a, "int4:g64:mse:gptq", &s) && s.dflt.gptq &&
                pass_spec_has_gptq(&s));
    assert_string_equal(q_precision_name(&a, &s.dflt), "int4:g64:mse:gptq");
    capture c;
    capture_begin(&c);
    assert_false(pass_spec_parse(&a, "auto:mse", &s));
    assert_false(pass_spec_parse(&a, "int8:static", &s));
    assert_false(pass_spec_parse(&a, "int8:gptq", &s));
    assert_captured(
        &c,
        "qmc: error: --precision: modifier ':mse' does not apply to auto (auto takes :a8 and "
        ":a8:static)\n"
        "qmc: error: --precision: modifier ':static' needs ':a8' (int8 activations with one "
        "calibrated scale)\n"
        "qmc: error: --precision: modifier ':gptq' does not apply here (formats: f32, int8, int4, "
        "int4:g64, int4:g128, int3, int2, nf4, fp8e4m3, fp8e5m2, bf16, f16, auto; modifiers :g32 "
        ":g64 :g128 :asym :mse :minmax :gptq :a8 :static :imat :hqq :awq :smooth :act :sf32)\n");
    sup_arena_free(&a);
}

/* Runs the precision passes on digits with a report; returns the parsed JSON. */
static const fe_json *report_of(sup_arena *a, ir_graph **gp, const char *precision, double budget)
{
    char dir[] = "/tmp/qmc-report-XXXXXX";
    assert_true(mkdtemp(dir) != NULL);
    const char *path = sup_arena_printf(a, "%s/r.json", dir);
    pass_options po = {
        .prec = {.precision = precision, .n_calib = 1, .budget_bits = budget, .report = path}};
    po.prec.calib[0] = sup_arena_printf(a, "x=%s", source(a, "examples/digits/calib_x.npy"));
    ir_graph *g = digits(a);
    assert_true(pass_pipeline_precision(a, g, &po));
    rt_mapped_file f;
    char err[256];
    size_t at;
    assert_int_equal(rt_file_map(path, &f, err, sizeof err), QMC_OK);
    char *text = sup_arena_strndup(a, (const char *)f.data, f.size);
    size_t len = f.size;
    rt_file_unmap(&f);
    unlink(path);
    rmdir(dir);
    const fe_json *j = fe_json_parse(a, text, len, err, sizeof err, &at);
    if (!j) fail_msg("report is not JSON at %zu: %s", at, err);
    *gp = g;
    return j;
}

static double num(const fe_json *o, const char *key)
{
    const fe_json *v = fe_json_get(o, key);
    assert_non_null(v);
    assert_int_equal(v->kind, FE_JSON_NUMBER);
    return v->number;
}

static const char *str(const fe_json *o, const char *key)
{
    const fe_json *v = fe_json_get(o, key);
    assert_non_null(v);
    assert_int_equal(v->kind, FE_JSON_STRING);
    return v->string;
}

/* Names, shapes, bytes and bits against the graph; returns the total bytes. */
static void check_sums(const ir_graph *g, const fe_json *j)
{
    const fe_json *t = fe_json_get(j, "tensors");
    assert_non_null(t);
    int matrices = 0;
    double bytes = 0, weights = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *w = &g->nodes[i];
        if (!w->is_matrix) continue;
        assert_true(matrices < t->count);
        const fe_json *e = t->items[matrices++];
        assert_string_equal(str(e, "name"), w->name);
        const fe_json *shape = fe_json_get(e, "shape");
        assert_int_equal(shape->count, 2);
        assert_true(shape->items[0]->number == (double)w->shape[0] &&
                    shape->items[1]->number == (double)w->shape[1]);
        double n = num(e, "weights"), b = num(e, "bytes");
        assert_true(n == (double)(w->shape[0] * w->shape[1]));
        assert_true(fabs(num(e, "bits_per_weight") - 8 * b / n) < 1e-9);
        assert_true(b == (double)q_precision_bytes(&w->qformat, w->shape[0], w->shape[1]));
        sup_arena a = {0};
        assert_string_equal(str(e, "format"), q_precision_name(&a, &w->qformat));
        sup_arena_free(&a);
        assert_true(strlen(str(e, "why")) > 0);
        bytes += b, weights += n;
    }
    assert_int_equal(matrices, t->count);
    assert_true(num(j, "total_weight_bytes") == bytes);
    assert_true(num(j, "total_weights") == weights);
    assert_true(fabs(num(j, "avg_bits_per_weight") - 8 * bytes / weights) < 1e-9);
    assert_true(num(j, "calib_error") >= 0);
}

static void test_report_fixed(void **state)
{
    (void)state;
    sup_arena a = {0};
    ir_graph *g;
    const fe_json *j = report_of(&a, &g, "int4,fc3.weight=int8", 0);
    check_sums(g, j);
    assert_string_equal(str(j, "mode"), "fixed");
    assert_string_equal(str(j, "error_metric"), "kl");
    /* int4 g32: 4.5 bits for fc1 (K 64) and fc2; int8 per channel 8 + 32/128 bits for fc3 */
    const fe_json *t = fe_json_get(j, "tensors");
    assert_true(num(t->items[0], "bits_per_weight") == 4.5);
    assert_true(num(t->items[2], "bits_per_weight") == 8.25);
    assert_string_equal(str(t->items[2], "origin"), "override");
    assert_string_equal(str(t->items[2], "why"), "fixed by the --precision override 'fc3.weight'");
    assert_string_equal(str(j, "precision_spec"),
                        "f32,fc1.weight=int4:g32,fc2.weight=int4:g32,fc3.weight=int8");
    /* each tensor's sensitivity was measured alone */
    for (int i = 0; i < 3; i++) assert_true(num(t->items[i], "sensitivity") >= 0);
    sup_arena_free(&a);
}

static void test_report_auto(void **state)
{
    (void)state;
    sup_arena a = {0};
    ir_graph *g;
    const fe_json *j = report_of(&a, &g, "auto", 4.5);
    check_sums(g, j);
    assert_string_equal(str(j, "mode"), "auto-budget-bits");
    assert_true(num(j, "avg_bits_per_weight") <= 4.5);
    assert_true(num(j, "budget_bits") == 4.5);
    const fe_json *t = fe_json_get(j, "tensors");
    for (int i = 0; i < t->count; i++) {
        assert_string_equal(str(t->items[i], "origin"), "auto");
        const fe_json *cands = fe_json_get(t->items[i], "candidates");
        assert_true(cands && cands->count >= 16);
        int rank = (int)num(t->items[i], "rank");
        assert_true(rank >= 1 && rank <= 3);
    }
    /* the reproducing spec gives the same formats without a search */
    const char *spec = str(j, "precision_spec");
    sup_arena b = {0};
    ir_graph *g2;
    const fe_json *j2 = report_of(&b, &g2, spec, 0);
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].is_matrix)
            assert_string_equal(q_precision_name(&a, &g->nodes[i].qformat),
                                q_precision_name(&b, &g2->nodes[i].qformat));
    assert_true(num(j2, "total_weight_bytes") == num(j, "total_weight_bytes"));
    /* and the same numerics: the final error on the calibration set */
    assert_true(fabs(num(j2, "calib_error") - num(j, "calib_error")) <=
                1e-12 * (1 + num(j, "calib_error")));
    sup_arena_free(&b);
    sup_arena_free(&a);
}

/* Overrides constrain the search: a fixed tensor keeps its format and its
 * bytes count in the budget; auto:a8:static gives the integer formats the
 * calibrated activation scale. */
static void test_report_auto_constrained(void **state)
{
    (void)state;
    sup_arena a = {0};
    ir_graph *g;
    /* fc3 at f32 alone takes 0.81 of the 5 bits per weight */
    const fe_json *j = report_of(&a, &g, "auto:a8:static,fc3.weight=f32", 5);
    check_sums(g, j);
    assert_true(num(j, "avg_bits_per_weight") <= 5);
    const fe_json *t = fe_json_get(j, "tensors");
    assert_string_equal(str(t->items[2], "format"), "f32");
    assert_string_equal(str(t->items[2], "origin"), "override");
    assert_true(num(t->items[2], "bytes") == 10 * 128 * 4);
    for (int i = 0; i < 2; i++) {
        const ir_node *w = &g->nodes[node_named(g, str(t->items[i], "name"))];
        assert_string_equal(str(t->items[i], "origin"), "auto");
        if (w->qformat.format == QFMT_INT8 || w->qformat.format == QFMT_INT4 ||
            w->qformat.format == QFMT_UINT4) {
            assert_true(w->qformat.act8 && w->qformat.act_static);
            assert_true(w->qformat.act_scale == pass_calib_act_scale(g, (int32_t)(w - g->nodes)));
            assert_string_equal(str(t->items[i], "activations"), "int8-static");
        }
    }
    sup_arena_free(&a);
}

static void test_budget_below_minimum(void **state)
{
    (void)state;
    sup_arena a = {0};
    ir_graph *g = digits(&a);
    pass_options po = {.prec = {.precision = "auto", .n_calib = 1, .budget_bits = 2}};
    po.prec.calib[0] = sup_arena_printf(&a, "x=%s", source(&a, "examples/digits/calib_x.npy"));
    capture c;
    capture_begin(&c);
    assert_false(pass_pipeline_precision(&a, g, &po));
    /* fc1 (K 64) at int2:g64, fc2 and fc3 at int2:g128: 13652 bytes of 50432 weights (at int4,
     * the smallest before int3 and int2, 26260) */
    assert_captured(
        &c,
        "qmc: error: --budget-bits 2 is below the smallest achievable 2.166 bits per weight (every "
        "searched weight matrix at its smallest format)\n");
    sup_arena_free(&a);
}

static void test_held_matrix_matches_pass(void **state)
{
    (void)state;
    sup_arena a = {0};
    ir_graph *g = digits(&a);
    pass_prec_options o = {.n_calib = 1};
    o.calib[0] = sup_arena_printf(&a, "x=%s", source(&a, "examples/digits/calib_x.npy"));
    pass_calib_data d;
    assert_true(pass_calib_open(g, &o, &d) && pass_calibrate(g, &d, true));
    pass_calib_close(&d);
    static const char *const formats[] = {"int4",
                                          "int4:g64:asym:mse",
                                          "int4:g128:mse:gptq",
                                          "int4:asym:gptq",
                                          "int8",
                                          "fp8e4m3",
                                          "fp8e5m2:mse",
                                          "int4:g128:asym",
                                          "int4:imat",
                                          "int4:g64:asym:imat",
                                          "int8:imat",
                                          "int4:hqq",
                                          "int4:gptq:act",
                                          "int4:g64:asym:gptq:act",
                                          "int4:g128:asym:hqq",
                                          "int8:hqq"};
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *w = &g->nodes[i];
        if (w->op != IR_OP_WEIGHT || w->rank != 2 || strstr(w->name, "bias")) continue;
        w->is_matrix = true;
        int64_t n = w->shape[0], k = w->shape[1];
        float *orig = sup_arena_alloc(&a, sizeof(float) * (size_t)(n * k));
        fe_tensor_to_f32(w->tensor, orig);
        for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
            q_precision p;
            char err[256];
            assert_true(q_precision_parse(formats[f], &p, err, sizeof err));
            ir_qweight *q = pass_quantize_matrix(&a, g, i, &p);
            assert_non_null(q);
            q_matrix m;
            const double *imp = p.imat ? pass_imat_importance(g, i, &a) : NULL;
            const double *u = g->calib->gptq_u[i];
            const bool *dead = g->calib->gptq_dead[i];
            const int64_t *order = NULL;
            if (p.act_order) assert_true(pass_gptq_act_factor(g, i, &u, &dead, &order));
            assert_true(
                q_matrix_quantize(&a, orig, n, k, &p, u, dead, order, imp, &m, err, sizeof err));
            float *y = sup_arena_alloc(&a, sizeof(float) * (size_t)(n * k));
            q_matrix_dequantize_rows(&m, 0, n, y, sup_arena_alloc(&a, q_matrix_scratch(&m)));
            assert_memory_equal(y, q->dequant, sizeof(float) * (size_t)(n * k));
            /* and rows taken alone (the search quantizes a sample of rows) */
            q_matrix_dequantize_rows(&m, n / 2, 1, y, sup_arena_alloc(&a, q_matrix_scratch(&m)));
            assert_memory_equal(y, q->dequant + n / 2 * k, sizeof(float) * (size_t)k);
            q_matrix one;
            assert_true(q_matrix_quantize(&a, orig + n / 2 * k, 1, k, &p, u, dead, order, imp, &one,
                                          err, sizeof err));
            q_matrix_dequantize_rows(&one, 0, 1, y, sup_arena_alloc(&a, q_matrix_scratch(&one)));
            assert_memory_equal(y, q->dequant + n / 2 * k, sizeof(float) * (size_t)k);
        }
    }
    sup_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_from_matches_full_run),
        cmocka_unit_test(test_error_measures),
        cmocka_unit_test(test_spec_parse),
        cmocka_unit_test(test_report_fixed),
        cmocka_unit_test(test_report_auto),
        cmocka_unit_test(test_report_auto_constrained),
        cmocka_unit_test(test_budget_below_minimum),
        cmocka_unit_test(test_held_matrix_matches_pass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
