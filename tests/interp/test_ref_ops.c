/* test_ref_ops.c: the interpreter's fp32 kernels against plain double
 * precision formulas: matmul and linear on odd shapes (not multiples of the
 * blocking), softmax, layernorm, rmsnorm, gelu, attention with causal
 * masking, grouped-query attention, rotary embeddings. */
#include <math.h>

#include "unit.h"

#include "interp.h"

/* Deterministic values in [-1, 1). */
static void fill(float *x, int64_t n, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 8) / 8388608.0 - 1.0);
    }
}

static void test_matmul_odd_shapes(void **state)
{
    (void)state;
    /* rows and columns around the blocks (matmul 4 x 256; linear 16 rows,
     * tiles of 4 outputs, panels of 64), and k = 1 */
    static const int64_t shapes[][3] = {{1, 1, 1},     {3, 5, 7},    {4, 1, 256}, {5, 7, 257},
                                        {9, 33, 513},  {13, 17, 3},  {2, 300, 1}, {16, 8, 64},
                                        {17, 19, 131}, {33, 64, 66}, {48, 3, 4}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        float *a = malloc(sizeof(float) * (size_t)(m * k)),
              *b = malloc(sizeof(float) * (size_t)(k * n));
        float *y = malloc(sizeof(float) * (size_t)(m * n)),
              *bias = malloc(sizeof(float) * (size_t)n);
        fill(a, m * k, 1 + (uint32_t)s);
        fill(b, k * n, 100 + (uint32_t)s);
        fill(bias, n, 7);
        interp_ref_matmul(a, b, y, m, k, n);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                /* the naive triple loop, summing k in order in float: the
                 * kernel promises exactly this order, so results are equal */
                float acc = 0;
                for (int64_t q = 0; q < k; q++) acc += a[i * k + q] * b[q * n + j];
                assert_true(y[i * n + j] == acc);
            }
        /* linear takes the weight as [n, k] */
        float *w = malloc(sizeof(float) * (size_t)(k * n)),
              *xt = malloc(sizeof(float) * interp_ref_linear_scratch(m, k));
        for (int64_t q = 0; q < k; q++)
            for (int64_t j = 0; j < n; j++) w[j * k + q] = b[q * n + j];
        interp_ref_linear(a, w, bias, y, m, k, n, xt);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                float acc = 0;
                for (int64_t q = 0; q < k; q++) acc += a[i * k + q] * b[q * n + j];
                assert_true(y[i * n + j] == acc + bias[j]);
            }
        free(a), free(b), free(y), free(bias), free(w), free(xt);
    }
}

static void test_transpose(void **state)
{
    (void)state;
    float x[6] = {1, 2, 3, 4, 5, 6}, y[6];
    interp_ref_transpose_2d(x, y, 2, 3);
    const float want[6] = {1, 4, 2, 5, 3, 6};
    assert_memory_equal(y, want, sizeof want);
}

static void test_softmax(void **state)
{
    (void)state;
    float x[3] = {1, 2, 3}, y[3];
    interp_ref_softmax(x, y, 1, 3, 1);
    double e1 = exp(-2.0), e2 = exp(-1.0), sum = e1 + e2 + 1;
    assert_float_equal(y[0], e1 / sum, 1e-7);
    assert_float_equal(y[1], e2 / sum, 1e-7);
    assert_float_equal(y[2], 1 / sum, 1e-7);
    /* large values do not overflow; -inf gets exactly 0; in place works */
    float big[4] = {1000, 1000, -INFINITY, 999};
    interp_ref_softmax(big, big, 1, 4, 1);
    double z = 2 + exp(-1.0);
    assert_float_equal(big[0], 1 / z, 1e-7);
    assert_true(big[2] == 0.0f);
    assert_float_equal(big[3], exp(-1.0) / z, 1e-7);
    /* a row of only -inf (fully masked) gives zeros, not NaN */
    float masked[2] = {-INFINITY, -INFINITY};
    interp_ref_softmax(masked, masked, 1, 2, 1);
    assert_true(masked[0] == 0.0f && masked[1] == 0.0f);
    /* over a middle axis: [2, 3, 2], softmax over the 3 */
    float t[12], u[12];
    fill(t, 12, 5);
    interp_ref_softmax(t, u, 2, 3, 2);
    for (int o = 0; o < 2; o++)
        for (int in = 0; in < 2; in++) {
            double s = 0, mx = -INFINITY;
            for (int i = 0; i < 3; i++) mx = fmax(mx, t[o * 6 + i * 2 + in]);
            for (int i = 0; i < 3; i++) s += exp(t[o * 6 + i * 2 + in] - mx);
            for (int i = 0; i < 3; i++)
                assert_float_equal(u[o * 6 + i * 2 + in], exp(t[o * 6 + i * 2 + in] - mx) / s,
                                   1e-6);
        }
}

static void test_layernorm_rmsnorm(void **state)
{
    (void)state;
    enum { ROWS = 3, D = 37 };
    float x[ROWS * D], w[D], b[D], y[ROWS * D];
    fill(x, ROWS * D, 11);
    fill(w, D, 12);
    fill(b, D, 13);
    for (int i = 0; i < D; i++)
        x[D + i] = x[D + i] * 100 + 1000; /* large mean: the double statistics matter */
    interp_ref_layernorm(x, w, b, y, ROWS, D, 1e-5f);
    for (int r = 0; r < ROWS; r++) {
        double mean = 0, var = 0;
        for (int i = 0; i < D; i++) mean += x[r * D + i];
        mean /= D;
        for (int i = 0; i < D; i++) var += (x[r * D + i] - mean) * (x[r * D + i] - mean);
        var /= D;
        for (int i = 0; i < D; i++)
            assert_float_equal(y[r * D + i], (x[r * D + i] - mean) / sqrt(var + 1e-5) * w[i] + b[i],
                               2e-5);
    }
    interp_ref_rmsnorm(x, w, y, ROWS, D, 1e-6f);
    for (int r = 0; r < ROWS; r++) {
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)x[r * D + i] * x[r * D + i];
        for (int i = 0; i < D; i++)
            assert_float_equal(y[r * D + i], x[r * D + i] / sqrt(ss / D + 1e-6) * w[i], 2e-6);
    }
    /* a constant row normalises to the bias */
    float c[4] = {5, 5, 5, 5}, ones[4] = {1, 1, 1, 1}, bias[4] = {1, 2, 3, 4}, out[4];
    interp_ref_layernorm(c, ones, bias, out, 1, 4, 1e-5f);
    assert_memory_equal(out, bias, sizeof bias);
}

static void test_activations(void **state)
{
    (void)state;
    for (double x = -6; x <= 6; x += 0.25) {
        assert_float_equal(interp_ref_gelu((float)x), 0.5 * x * (1 + erf(x / sqrt(2.0))), 2e-6);
        assert_float_equal(interp_ref_silu((float)x), x / (1 + exp(-x)), 2e-6);
    }
    assert_true(interp_ref_gelu(0) == 0);
}

/* softmax(scale q_h k_h^T + mask) v_h per head, in double. */
static void naive_attention(const float *q, const float *k, const float *v, double *y, int t, int s,
                            int d, int dv, int heads, bool causal, double scale)
{
    int hd = d / heads, hv = dv / heads;
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < t; i++) {
            double sc[64], mx = -INFINITY, sum = 0;
            int visible = causal ? i + (s - t) + 1 : s;
            for (int j = 0; j < visible; j++) {
                double dot = 0;
                for (int c = 0; c < hd; c++)
                    dot += (double)q[i * d + h * hd + c] * k[j * d + h * hd + c];
                sc[j] = dot * scale;
                mx = fmax(mx, sc[j]);
            }
            for (int j = 0; j < visible; j++) sum += sc[j] = exp(sc[j] - mx);
            for (int c = 0; c < hv; c++) {
                double acc = 0;
                for (int j = 0; j < visible; j++) acc += sc[j] / sum * v[j * dv + h * hv + c];
                y[i * dv + h * hv + c] = acc;
            }
        }
}

static void test_attention(void **state)
{
    (void)state;
    enum { T = 5, S = 7, D = 12, DV = 6, H = 3 };
    float q[T * D], k[S * D], v[S * DV], y[T * DV], scratch[T * S + S * D / H];
    double want[T * DV];
    fill(q, T * D, 21);
    fill(k, S * D, 22);
    fill(v, S * DV, 23);
    for (int causal = 0; causal <= 1; causal++) {
        interp_ref_attention(q, k, v, y, T, S, D, DV, H, causal, 0.5f, scratch);
        naive_attention(q, k, v, want, T, S, D, DV, H, causal, 0.5);
        for (int i = 0; i < T * DV; i++) assert_float_equal(y[i], want[i], 1e-6);
    }
    /* causal with t == s: the first query sees only the first key, so its
     * output is exactly v's first row whatever q and k are */
    float y2[S * DV], scratch2[S * S + S * D];
    interp_ref_attention(k, k, v, y2, S, S, D, DV, 1, true, 1.0f, scratch2);
    assert_memory_equal(y2, v, sizeof(float) * DV);
    /* and changing a later key or value does not change earlier rows */
    float y3[S * DV];
    float k2[S * D], v2[S * DV];
    memcpy(k2, k, sizeof k2);
    memcpy(v2, v, sizeof v2);
    for (int c = 0; c < D; c++) k2[(S - 1) * D + c] += 3;
    for (int c = 0; c < DV; c++) v2[(S - 1) * DV + c] -= 5;
    interp_ref_attention(k, k2, v2, y3, S, S, D, DV, 1, true, 1.0f, scratch2);
    assert_memory_equal(y3, y2, sizeof(float) * (S - 1) * DV);
    assert_memory_not_equal(y3 + (S - 1) * DV, y2 + (S - 1) * DV, sizeof(float) * DV);
}

/* Grouped-query attention equals plain attention with each key/value head
 * repeated for the query heads that share it; a causal offset (queries at
 * the last t of s positions) masks the same keys. */
static void test_attention_grouped(void **state)
{
    (void)state;
    enum { T = 3, S = 5, H = 4, KVH = 2, HD = 6, D = H * HD, KD = KVH * HD };
    float q[T * D], k[S * KD], v[S * KD], kr[S * D], vr[S * D], y[T * D], want[T * D];
    float scratch[T * S + S * HD];
    fill(q, T * D, 1), fill(k, S * KD, 2), fill(v, S * KD, 3);
    for (int j = 0; j < S; j++)
        for (int h = 0; h < H; h++)
            for (int c = 0; c < HD; c++) {
                kr[j * D + h * HD + c] = k[j * KD + (h / (H / KVH)) * HD + c];
                vr[j * D + h * HD + c] = v[j * KD + (h / (H / KVH)) * HD + c];
            }
    interp_attn a = {T, S, D, D, H, KVH, true, 0.4f};
    interp_ref_attention_grouped(q, k, v, y, &a, scratch);
    interp_ref_attention(q, kr, vr, want, T, S, D, D, H, true, 0.4f, scratch);
    for (int i = 0; i < T * D; i++) assert_true(y[i] == want[i]);
}

/* Rotary embeddings: the angle of pair j at position p is p * theta^(-2j/hd)
 * (checked in double precision); position 0 changes nothing; the
 * interleaved layout rotates the pairs (2j, 2j+1) as the rotate-half layout
 * rotates (j, j + hd/2). */
static void test_rope(void **state)
{
    (void)state;
    enum { R = 3, H = 2, HD = 8, D = H * HD, HALF = HD / 2 };
    float x[R * D], y[R * D], xi[R * D], yi[R * D];
    fill(x, R * D, 7);
    interp_ref_rope(x, y, R, D, H, 10000, false, 5);
    for (int r = 0; r < R; r++)
        for (int h = 0; h < H; h++)
            for (int j = 0; j < HALF; j++) {
                double ang = (5.0 + r) * pow(10000.0, -2.0 * j / HD);
                double a = x[r * D + h * HD + j], b = x[r * D + h * HD + j + HALF];
                assert_true(fabs(y[r * D + h * HD + j] - (a * cos(ang) - b * sin(ang))) < 1e-6);
                assert_true(fabs(y[r * D + h * HD + j + HALF] - (b * cos(ang) + a * sin(ang))) <
                            1e-6);
            }
    interp_ref_rope(x, y, R, D, H, 10000, false, 0);
    for (int i = 0; i < D; i++) assert_true(y[i] == x[i]); /* row 0 is at position 0 */
    /* xi holds x's pairs interleaved */
    for (int r = 0; r < R; r++)
        for (int h = 0; h < H; h++)
            for (int j = 0; j < HALF; j++) {
                xi[r * D + h * HD + 2 * j] = x[r * D + h * HD + j];
                xi[r * D + h * HD + 2 * j + 1] = x[r * D + h * HD + j + HALF];
            }
    interp_ref_rope(x, y, R, D, H, 500000, false, 11);
    interp_ref_rope(xi, yi, R, D, H, 500000, true, 11);
    for (int r = 0; r < R; r++)
        for (int h = 0; h < H; h++)
            for (int j = 0; j < HALF; j++) {
                assert_true(yi[r * D + h * HD + 2 * j] == y[r * D + h * HD + j]);
                assert_true(yi[r * D + h * HD + 2 * j + 1] == y[r * D + h * HD + j + HALF]);
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_odd_shapes), cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_softmax),           cmocka_unit_test(test_layernorm_rmsnorm),
        cmocka_unit_test(test_activations),       cmocka_unit_test(test_attention),
        cmocka_unit_test(test_attention_grouped), cmocka_unit_test(test_rope),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
