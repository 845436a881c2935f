/* test_calibrate.c: the calibrate pass's histograms and observers on
 * distributions whose answers are known, and the pass on the digits model.
 *
 * Histograms: exact bin placement, growth that merges bins, counts that do
 * not depend on the order or chunking of the values (bit-identical
 * structs), a fixed size whatever is added. Observers: min-max is the
 * largest |x|; percentiles of a uniform grid; MSE clipping checked against
 * a brute-force search that quantizes every sample; KL keeps a uniform
 * distribution whole and clips far outliers. The pass: the statistics of
 * digits' activations, and the same histograms with the samples reversed. */
#include "unit.h"

#include <math.h>
#include <unistd.h>

#include "passes.h"

/* A deterministic generator (no libc rand: results must not vary). */
static uint64_t lcg_state;
static double uniform01(void)
{
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(lcg_state >> 11) / 9007199254740992.0;
}
static float gaussian(void)
{
    double u = uniform01(), v = uniform01();
    return (float)(sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v));
}

static void test_hist_exact_bins(void **state)
{
    (void)state;
    q_hist h;
    q_hist_init(&h);
    float a[] = {0.5f, 0, -0.5f};
    q_hist_add(&h, a, 3);
    /* 0.5 < 2^0: range [0, 1), bin 0.5 * 2048 */
    assert_int_equal(h.exp, 0);
    assert_int_equal(h.bins[1024], 2);
    assert_int_equal(h.zeros, 1);
    assert_int_equal(h.bins[0], 1);
    float b[] = {3.0f};
    q_hist_add(&h, b, 1);
    /* range [0, 4): the old bins merge by 4 */
    assert_int_equal(h.exp, 2);
    assert_int_equal(h.bins[256], 2);
    assert_int_equal(h.bins[1536], 1);
    assert_int_equal(h.bins[0], 1);
    assert_int_equal(q_hist_total(&h), 4);
    assert_true(q_hist_bin_width(&h) == 4.0 / 2048);
    assert_true(h.absmax == 3.0f);
}

static void fill_mixture(float *x, int n)
{
    lcg_state = 42;
    for (int i = 0; i < n; i++) {
        x[i] = gaussian() * (i % 3 == 0 ? 0.01f : 1.0f);
        if (i % 997 == 0) x[i] = 0;
        if (i % 20011 == 0) x[i] = -700.25f; /* an outlier that regrows the range */
    }
}

static void add_chunks(q_hist *h, const float *x, int n, int chunk)
{
    q_hist_init(h);
    for (int i = 0; i < n; i += chunk) q_hist_add(h, x + i, n - i < chunk ? n - i : chunk);
}

static int cmp_abs(const void *a, const void *b)
{
    float x = fabsf(*(const float *)a), y = fabsf(*(const float *)b);
    return (x > y) - (x < y);
}

static void test_hist_order_independent(void **state)
{
    (void)state;
    enum { N = 100000 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    fill_mixture(x, N);
    q_hist *ref = malloc(sizeof *ref), *h = malloc(sizeof *h);
    add_chunks(ref, x, N, N);
    /* the same values in pieces, reversed, sorted up and down */
    add_chunks(h, x, N, 7);
    assert_memory_equal(h, ref, sizeof *h);
    for (int i = 0; i < N; i++) y[i] = x[N - 1 - i];
    add_chunks(h, y, N, 1000);
    assert_memory_equal(h, ref, sizeof *h);
    memcpy(y, x, sizeof(float) * N);
    qsort(y, N, sizeof(float), cmp_abs);
    add_chunks(h, y, N, 1); /* small values first: the range grows many times */
    assert_memory_equal(h, ref, sizeof *h);
    for (int i = 0; i < N / 2; i++) {
        float t = y[i];
        y[i] = y[N - 1 - i], y[N - 1 - i] = t;
    }
    add_chunks(h, y, N, 333);
    assert_memory_equal(h, ref, sizeof *h);
    free(x), free(y), free(ref), free(h);
}

static void test_hist_bounded(void **state)
{
    (void)state;
    /* fixed storage whatever is added; the range holds the largest value */
    assert_true(sizeof(q_hist) <= 64 + sizeof(uint64_t) * Q_HIST_BINS);
    q_hist h;
    q_hist_init(&h);
    float v[1000];
    uint64_t added = 0;
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 1000; i++) v[i] = (float)ldexp(1.0 + i / 1000.0, round % 40 - 20);
        q_hist_add(&h, v, 1000);
        added += 1000;
        assert_true(ldexp(1, h.exp - 1) <= h.absmax && h.absmax < ldexp(1, h.exp));
    }
    uint64_t sum = 0;
    for (int i = 0; i < Q_HIST_BINS; i++) sum += h.bins[i];
    assert_int_equal(sum, added);
    assert_int_equal(q_hist_total(&h), (int64_t)added);
}

static void test_minmax(void **state)
{
    (void)state;
    q_hist h;
    q_hist_init(&h);
    float x[] = {0.25f, -7.5f, 3.0f, 1e-3f};
    q_hist_add(&h, x, 4);
    assert_true(q_observer_clip(&h, Q_OBS_MINMAX, 0) == 7.5);
    q_hist_init(&h);
    float z[] = {0, 0, 0};
    q_hist_add(&h, z, 3);
    assert_true(q_observer_clip(&h, Q_OBS_MINMAX, 0) == 0);
    assert_true(q_observer_clip(&h, Q_OBS_MSE, 0) == 0 && q_observer_clip(&h, Q_OBS_KL, 0) == 0);
}

/* |x| uniform on a grid over (0, 1]: a percentile P lands at P/100 (to the bin). */
static void uniform_grid(q_hist *h, int n)
{
    q_hist_init(h);
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) x[i] = (float)(i + 1) / (float)n * (i % 2 ? 1 : -1);
    q_hist_add(h, x, n);
    free(x);
}

static void test_percentile(void **state)
{
    (void)state;
    q_hist h;
    uniform_grid(&h, 200000);
    double w = q_hist_bin_width(&h); /* 1/2048 */
    assert_true(fabs(q_observer_clip(&h, Q_OBS_PERCENTILE, 99.99) - 0.9999) <= w);
    assert_true(fabs(q_observer_clip(&h, Q_OBS_PERCENTILE, 50) - 0.5) <= w);
    assert_true(fabs(q_observer_clip(&h, Q_OBS_PERCENTILE, 90) - 0.9) <= w);
    assert_true(q_observer_clip(&h, Q_OBS_PERCENTILE, 100) == 1.0);
}

/* Uniform on (0, 1]: noise (c/127)^2/12 inside against (1 - c)^3/3 of
 * clipping beyond c; the derivative vanishes where (1 - c)^2 = 2c/193548,
 * at c = 0.9968. */
static void test_mse_uniform(void **state)
{
    (void)state;
    q_hist h;
    uniform_grid(&h, 200000);
    double c = q_observer_clip(&h, Q_OBS_MSE, 0);
    assert_true(c > 0.993 && c < 0.9995);
}

/* The squared error of symmetric int8 with this clip, sample by sample. */
static double int8_sq_error(const float *x, int n, double clip)
{
    double s = clip / 127, e = 0;
    for (int i = 0; i < n; i++) {
        double q = rint(x[i] / s);
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        e += (x[i] - q * s) * (x[i] - q * s);
    }
    return e;
}

static void test_mse_matches_brute_force(void **state)
{
    (void)state;
    enum { N = 200000 };
    float *x = malloc(sizeof(float) * N);
    lcg_state = 7;
    for (int i = 0; i < N; i++) x[i] = gaussian();
    /* Laplace tails too: a mixture where clipping clearly pays */
    for (int i = 0; i < N; i += 4)
        x[i] = (float)(-log(uniform01() + 1e-12) * (uniform01() < 0.5 ? -1 : 1)) * 2;
    q_hist h;
    q_hist_init(&h);
    q_hist_add(&h, x, N);
    double c = q_observer_clip(&h, Q_OBS_MSE, 0);
    double best = INFINITY, best_c = 0;
    for (double t = 0.5; t <= h.absmax; t *= 1.01) {
        double e = int8_sq_error(x, N, t);
        if (e < best) best = e, best_c = t;
    }
    /* the histogram's answer is as good as the exhaustive one (within 2%) and clips */
    assert_true(int8_sq_error(x, N, c) <= best * 1.02);
    assert_true(c < h.absmax * 0.9);
    assert_true(fabs(c - best_c) / best_c < 0.15);
    free(x);
}

static void test_kl_uniform_keeps_range(void **state)
{
    (void)state;
    q_hist h;
    uniform_grid(&h, 400000);
    double c = q_observer_clip(&h, Q_OBS_KL, 0);
    assert_true(c >= 0.98 && c <= 1.0);
}

static void test_kl_clips_outliers(void **state)
{
    (void)state;
    enum { N = 200000 };
    float *x = malloc(sizeof(float) * N);
    lcg_state = 11;
    for (int i = 0; i < N; i++) x[i] = gaussian();
    for (int i = 0; i < 20; i++) x[i * 997] = 50.0f;
    q_hist h;
    q_hist_init(&h);
    q_hist_add(&h, x, N);
    double kl = q_observer_clip(&h, Q_OBS_KL, 0), mm = q_observer_clip(&h, Q_OBS_MINMAX, 0);
    assert_true(mm == 50.0);
    /* the Gaussian body spans about 4.5 sigma; KL keeps it and drops the outliers */
    assert_true(kl > 2.5 && kl < 10);
    assert_true(q_observer_clip(&h, Q_OBS_PERCENTILE, 99.99) < 10);
    free(x);
}

static void test_method_parse(void **state)
{
    (void)state;
    q_observer m;
    double p;
    assert_true(q_observer_parse("kl", &m, &p) && m == Q_OBS_KL && p == 99.99);
    assert_true(q_observer_parse("mse", &m, &p) && m == Q_OBS_MSE);
    assert_true(q_observer_parse("minmax", &m, &p) && m == Q_OBS_MINMAX);
    assert_true(q_observer_parse("percentile", &m, &p) && m == Q_OBS_PERCENTILE && p == 99.99);
    assert_true(q_observer_parse("percentile=99.9", &m, &p) && m == Q_OBS_PERCENTILE && p == 99.9);
    assert_false(q_observer_parse("percentile=", &m, &p));
    assert_false(q_observer_parse("percentile=101", &m, &p));
    assert_false(q_observer_parse("entropy", &m, &p));
    assert_string_equal(q_observer_name(Q_OBS_KL), "kl");
}

/* ---- the pass on digits -------------------------------------------------- */

static ir_graph *digits(sup_arena *a)
{
    const char *src = getenv("QMC_SOURCE");
    assert_non_null(src);
    pass_options po = {0};
    sup_diag_reset(); /* sources registered by an earlier test lived in its arena */
    return pass_pipeline_load(a, sup_arena_printf(a, "%s/examples/digits/digits.qm", src), &po);
}

static void test_pass_on_digits(void **state)
{
    (void)state;
    sup_arena a = {0};
    ir_graph *g = digits(&a);
    assert_non_null(g);
    const char *calib =
        sup_arena_printf(&a, "x=%s/examples/digits/calib_x.npy", getenv("QMC_SOURCE"));
    pass_prec_options o = {.calib = {calib}, .n_calib = 1, .calib_method = "percentile"};
    pass_calib_data d;
    assert_true(pass_calib_open(g, &o, &d) && pass_calibrate(g, &d, true));
    pass_calib_close(&d);
    assert_int_equal(g->calib->samples, 256);
    assert_int_equal(g->calib->n_observed, 3); /* x, h, h#2: the inputs of fc1, fc2, fc3 */
    const ir_calib_stats *x = g->calib->of_node[g->inputs[0].node];
    assert_non_null(x);
    assert_int_equal(x->count, 256 * 64);
    assert_true(x->min >= 0 && x->max <= 1 && x->max > 0.9); /* pixels scaled to [0, 1] */
    assert_non_null(x->xx);
    for (int i = 0; i < 64; i++) assert_true(fabs(x->xx[i * 64 + i] - x->mean_sq[i]) < 1e-9);
    /* the static scale of fc1 is its input's clip / 127 */
    int32_t fc1 = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, "fc1.weight")) fc1 = i;
    assert_true(pass_calib_act_scale(g, fc1) == (float)(x->clip / 127));
    sup_arena_free(&a);
}

static void test_pass_order_independent(void **state)
{
    (void)state;
    sup_arena a = {0};
    const char *src = getenv("QMC_SOURCE");
    /* the calibration samples reversed into a temporary file */
    rt_mapped_file f;
    rt_npy_header hd;
    char err[256];
    const char *path = sup_arena_printf(&a, "%s/examples/digits/calib_x.npy", src);
    assert_int_equal(rt_file_map(path, &f, err, sizeof err), QMC_OK);
    assert_int_equal(rt_npy_parse(f.data, f.size, &hd, err, sizeof err), QMC_OK);
    float *rev = malloc(sizeof(float) * (size_t)hd.count);
    const float *data = (const float *)(f.data + hd.data_offset);
    for (int64_t s = 0; s < 256; s++)
        memcpy(rev + s * 64, data + (255 - s) * 64, sizeof(float) * 64);
    char tmp[] = "/tmp/qmc-calib-XXXXXX";
    assert_true(mkdtemp(tmp) != NULL);
    const char *rpath = sup_arena_printf(&a, "%s/rev.npy", tmp);
    assert_int_equal(rt_npy_write(rpath, QMC_DTYPE_F32, hd.rank, hd.shape, rev), QMC_OK);
    rt_file_unmap(&f);
    ir_graph *g1 = digits(&a), *g2 = digits(&a);
    pass_prec_options o1 = {.calib = {sup_arena_printf(&a, "x=%s", path)}, .n_calib = 1};
    pass_prec_options o2 = {.calib = {sup_arena_printf(&a, "x=%s", rpath)}, .n_calib = 1};
    pass_calib_data d1, d2;
    assert_true(pass_calib_open(g1, &o1, &d1) && pass_calibrate(g1, &d1, false));
    assert_true(pass_calib_open(g2, &o2, &d2) && pass_calibrate(g2, &d2, false));
    pass_calib_close(&d1);
    pass_calib_close(&d2);
    for (int i = 0; i < g1->n_nodes; i++) {
        const ir_calib_stats *s1 = g1->calib->of_node[i], *s2 = g2->calib->of_node[i];
        assert_true((s1 == NULL) == (s2 == NULL));
        if (!s1) continue;
        assert_memory_equal(&s1->hist, &s2->hist, sizeof s1->hist);
        assert_true(s1->min == s2->min && s1->max == s2->max && s1->clip == s2->clip);
    }
    unlink(rpath);
    rmdir(tmp);
    free(rev);
    sup_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_exact_bins),
        cmocka_unit_test(test_hist_order_independent),
        cmocka_unit_test(test_hist_bounded),
        cmocka_unit_test(test_minmax),
        cmocka_unit_test(test_percentile),
        cmocka_unit_test(test_mse_uniform),
        cmocka_unit_test(test_mse_matches_brute_force),
        cmocka_unit_test(test_kl_uniform_keeps_range),
        cmocka_unit_test(test_kl_clips_outliers),
        cmocka_unit_test(test_method_parse),
        cmocka_unit_test(test_pass_on_digits),
        cmocka_unit_test(test_pass_order_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
