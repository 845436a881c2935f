/* test_methods.c: the parameter methods of methods.c (:imat, :hqq) against
 * round to nearest and MSE clipping on the same matrix, measured here: a
 * fixed-seed matrix with heavy tails (some weights four times larger, as
 * real layers have) and an importance with outlier channels (E[x_j^2]
 * spread over three orders of magnitude, as activations are). Each method
 * must lower the error it minimises below both baselines (GPTQ's
 * act-order below GPTQ's column order, on inputs with that importance), keep the storage
 * layout (scale count, zero points in the code range, 0.0 exact), give the
 * same bits on every run, and its spelling must parse and print back;
 * GPTQ's group scales are refitted to its codes (no uniform change of a
 * row's scales lowers its output noise). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qtest.h"

enum { ROWS = 64, COLS = 256, SEED = 17 };

typedef struct fixture {
    sup_arena a;
    float *w;
    double *imp;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->w = qt_normal(&f->a, ROWS * COLS, SEED);
    for (int64_t i = 0; i < ROWS * COLS; i += 37) f->w[i] *= 4; /* heavy tails */
    f->w[5] = 0;                                                /* an exact zero */
    const float *g = qt_normal(&f->a, COLS, SEED + 1);
    f->imp = sup_arena_alloc(&f->a, sizeof(double) * COLS);
    for (int j = 0; j < COLS; j++) f->imp[j] = exp(1.5 * g[j]); /* outlier channels */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sup_arena_free(&f->a);
    free(f);
    return 0;
}

static q_precision parse(const char *text)
{
    q_precision p;
    char err[256];
    if (!q_precision_parse(text, &p, err, sizeof err)) fail_msg("%s: %s", text, err);
    return p;
}

static q_matrix quantize(fixture *f, const char *text)
{
    q_precision p = parse(text);
    q_matrix m;
    char err[256];
    if (!q_matrix_quantize(&f->a, f->w, ROWS, COLS, &p, NULL, NULL, NULL, p.imat ? f->imp : NULL,
                           &m, err, sizeof err))
        fail_msg("%s: %s", text, err);
    return m;
}

/* sum over the matrix of importance[j] * (w - dequant)^2 (importance NULL: 1). */
static double error_of(fixture *f, const q_matrix *m, const double *importance)
{
    float *y = sup_arena_alloc(&f->a, sizeof(float) * ROWS * COLS);
    q_matrix_dequantize_rows(m, 0, ROWS, y, sup_arena_alloc(&f->a, q_matrix_scratch(m)));
    double e = 0;
    for (int64_t i = 0; i < ROWS * COLS; i++) {
        double d = (double)y[i] - f->w[i];
        e += (importance ? importance[i % COLS] : 1) * d * d;
    }
    assert_true(y[5] == 0.0f); /* 0.0 stays exact */
    return e;
}

/* The base spelling of each storage the methods are tried on. */
static const char *const storages[] = {"int4", "int4:asym", "int4:g128", "int4:g64:asym", "int8"};

static void test_imat_beats_rtn_and_mse(void **state)
{
    fixture *f = *state;
    for (size_t s = 0; s < sizeof storages / sizeof storages[0]; s++) {
        char mse[64], imat[64];
        snprintf(mse, sizeof mse, "%s:mse", storages[s]);
        snprintf(imat, sizeof imat, "%s:imat", storages[s]);
        q_matrix r = quantize(f, storages[s]), m = quantize(f, mse), i = quantize(f, imat);
        double er = error_of(f, &r, f->imp), em = error_of(f, &m, f->imp),
               ei = error_of(f, &i, f->imp);
        print_message("%-16s weighted error: rtn %.5g, mse %.5g, imat %.5g\n", storages[s], er, em,
                      ei);
        /* the search starts at MSE clipping's parameters and keeps a group's
         * only when it is better, so it can only gain; it must gain clearly */
        assert_true(ei < 0.95 * em);
        assert_true(ei < 0.95 * er);
        assert_int_equal(i.p.scale_count, r.p.scale_count);
        assert_int_equal(i.p.zero_points != NULL, r.p.zero_points != NULL);
        for (int64_t g = 0; i.p.zero_points && g < i.p.scale_count; g++)
            assert_true(i.p.zero_points[g] >= 0 && i.p.zero_points[g] <= 15);
    }
}

static void test_hqq_beats_rtn(void **state)
{
    fixture *f = *state;
    for (size_t s = 0; s < sizeof storages / sizeof storages[0]; s++) {
        char hqq[64];
        snprintf(hqq, sizeof hqq, "%s:hqq", storages[s]);
        q_matrix r = quantize(f, storages[s]), h = quantize(f, hqq);
        double er = error_of(f, &r, NULL), eh = error_of(f, &h, NULL);
        print_message("%-16s squared error: rtn %.5g, hqq %.5g\n", storages[s], er, eh);
        /* int8's 255 levels leave little to gain; int4's must gain clearly
         * (least, 2.6%, over symmetric groups of 32, whose default rounding
         * already spends all 16 levels) */
        assert_true(eh < (strncmp(storages[s], "int4", 4) ? 1.0 : 0.98) * er);
        assert_int_equal(h.p.scale_count, r.p.scale_count);
    }
}

/* GPTQ's act-order against GPTQ in column order and round to nearest, on
 * the output noise tr(dW H dWᵀ) with H = XᵀX / rows of inputs whose channel
 * scales follow the importance (so the order matters). */
static void test_gptq_act_order(void **state)
{
    fixture *f = *state;
    enum { XROWS = 512 };
    const float *z = qt_normal(&f->a, XROWS * COLS, SEED + 2);
    double *h = sup_arena_alloc(&f->a, sizeof(double) * COLS * COLS);
    float *x = sup_arena_alloc(&f->a, sizeof(float) * XROWS * COLS);
    for (int64_t i = 0; i < XROWS * COLS; i++) x[i] = z[i] * (float)sqrt(f->imp[i % COLS]);
    q_second_moment_add(h, x, XROWS, COLS);
    for (int a = 0; a < COLS; a++)
        for (int b = a; b < COLS; b++) h[a * COLS + b] = h[b * COLS + a] = h[a * COLS + b] / XROWS;
    double *u = sup_arena_alloc(&f->a, sizeof(double) * COLS * COLS),
           *ua = sup_arena_alloc(&f->a, sizeof(double) * COLS * COLS);
    bool *dead = sup_arena_alloc(&f->a, COLS), *deada = sup_arena_alloc(&f->a, COLS);
    int64_t *order = sup_arena_alloc(&f->a, sizeof(int64_t) * COLS);
    assert_true(q_gptq_factor(&f->a, h, COLS, u, dead));
    assert_true(q_gptq_factor(&f->a, q_gptq_act_order(&f->a, h, COLS, order), COLS, ua, deada));
    for (int j = 1; j < COLS; j++)
        assert_true(h[order[j] * COLS + order[j]] <= h[order[j - 1] * COLS + order[j - 1]]);
    static const char *const storages4[] = {"int4", "int4:asym", "int4:g128"};
    for (size_t s = 0; s < sizeof storages4 / sizeof storages4[0]; s++) {
        q_precision pr = parse(storages4[s]), pg = pr, pa = pr;
        pg.gptq = pa.gptq = pa.act_order = true;
        q_matrix mr, mg, ma;
        char err[256];
        assert_true(q_matrix_quantize(&f->a, f->w, ROWS, COLS, &pr, NULL, NULL, NULL, NULL, &mr,
                                      err, sizeof err));
        assert_true(q_matrix_quantize(&f->a, f->w, ROWS, COLS, &pg, u, dead, NULL, NULL, &mg, err,
                                      sizeof err));
        assert_true(q_matrix_quantize(&f->a, f->w, ROWS, COLS, &pa, ua, deada, order, NULL, &ma,
                                      err, sizeof err));
        double e[3];
        const q_matrix *ms[3] = {&mr, &mg, &ma};
        for (int i = 0; i < 3; i++) {
            float *y = sup_arena_alloc(&f->a, sizeof(float) * ROWS * COLS);
            q_matrix_dequantize_rows(ms[i], 0, ROWS, y,
                                     sup_arena_alloc(&f->a, q_matrix_scratch(ms[i])));
            e[i] = q_quad_error(f->w, y, h, NULL, ROWS, COLS);
        }
        print_message("%-10s output noise: rtn %.5g, gptq %.5g, gptq:act %.5g\n", storages4[s],
                      e[0], e[1], e[2]);
        assert_true(e[1] < e[0]);
        assert_true(e[2] < e[1]);
        /* the group scales are refitted to GPTQ's codes for the least
         * output noise (H dampened by 1%): no row's noise falls when all
         * its scales grow or shrink by 2% */
        for (int i = 1; i < 3; i++) {
            float *y = sup_arena_alloc(&f->a, sizeof(float) * COLS);
            float *y2 = sup_arena_alloc(&f->a, sizeof(float) * COLS);
            float *scratch = sup_arena_alloc(&f->a, q_matrix_scratch(ms[i]));
            for (int r = 0; r < ROWS; r++) {
                q_matrix_dequantize_rows(ms[i], r, 1, y, scratch);
                double e0 = q_quad_error(f->w + r * COLS, y, h, NULL, 1, COLS);
                for (int sign = -1; sign <= 1; sign += 2) {
                    for (int j = 0; j < COLS; j++) y2[j] = y[j] * (1.0f + 0.02f * (float)sign);
                    double e1 = q_quad_error(f->w + r * COLS, y2, h, NULL, 1, COLS);
                    if (!(e0 <= e1))
                        fail_msg("%s row %d: noise %.6g, %.6g with the scales times %.2f",
                                 storages4[s], r, e0, e1, 1 + 0.02 * sign);
                }
            }
        }
        assert_int_equal(ma.p.scale_count, mr.p.scale_count); /* the same storage */
    }
}

/* The same weights give the same codes and parameters, bit for bit. */
static void test_reproducible(void **state)
{
    fixture *f = *state;
    static const char *const specs[] = {"int4:imat", "int4:g64:asym:imat", "int8:hqq",
                                        "int4:g32:asym:hqq"};
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        q_matrix a = quantize(f, specs[s]), b = quantize(f, specs[s]);
        assert_memory_equal(a.codes, b.codes, a.row_bytes * ROWS);
        assert_memory_equal(a.p.scales, b.p.scales, sizeof(float) * (size_t)a.p.scale_count);
        if (a.p.zero_points)
            assert_memory_equal(a.p.zero_points, b.p.zero_points,
                                sizeof(int32_t) * (size_t)a.p.scale_count);
    }
}

static void test_spelling(void **state)
{
    (void)state;
    sup_arena a = {0};
    static const char *const round_trips[][2] = {{"int4:imat", "int4:g32:imat"},
                                                 {"int4:mse:imat", "int4:g32:imat"},
                                                 {"int4:g64:asym:hqq", "int4:g64:asym:hqq"},
                                                 {"int4:mse:hqq", "int4:g32:mse:hqq"},
                                                 {"int8:imat:a8", "int8:imat:a8"},
                                                 {"int4:act:gptq", "int4:g32:gptq:act"},
                                                 {"int8:hqq", "int8:hqq"}};
    for (size_t i = 0; i < sizeof round_trips / sizeof round_trips[0]; i++) {
        q_precision p = parse(round_trips[i][0]);
        const char *name = q_precision_name(&a, &p);
        assert_string_equal(name, round_trips[i][1]);
        q_precision back = parse(name);
        assert_memory_equal(&back, &p, sizeof p);
    }
    assert_string_equal(q_precision_method(&(q_precision){.format = QFMT_INT4, .group = 32}),
                        "rtn");
    assert_string_equal(q_precision_method(&(q_precision){.format = QFMT_INT4, .imat = true}),
                        "imat");
    assert_string_equal(q_precision_method(&(q_precision){.format = QFMT_F32}), "none");
    static const char *const bad[][2] = {
        {"int4:gptq:imat", "modifiers ':imat' and ':gptq' are two ways to choose the codes; give "
                           "one"},
        {"int4:hqq:imat",
         "modifiers ':imat' and ':hqq' are two ways to choose the codes; give one"},
        {"fp8e4m3:imat", "modifier ':imat' does not apply here"},
        {"f32:hqq", "modifier ':hqq' does not apply here"},
        {"int4:act", "modifier ':act' orders GPTQ's columns; it needs ':gptq'"},
        {"int8:smooth", "modifier ':smooth' needs ':a8'"},
        {"int4:awq:smooth:a8", "modifiers ':awq' and ':smooth' both scale the input channels"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        q_precision p;
        char err[256];
        assert_false(q_precision_parse(bad[i][0], &p, err, sizeof err));
        if (strncmp(err, bad[i][1], strlen(bad[i][1])))
            fail_msg("%s: got '%s', want '%s...'", bad[i][0], err, bad[i][1]);
    }
    sup_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imat_beats_rtn_and_mse),
        cmocka_unit_test(test_hqq_beats_rtn),
        cmocka_unit_test(test_gptq_act_order),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_spelling),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
