/* test_blocks.c: the packed kernel formats. Each packed row holds exactly
 * what ONNX-layout quantization (q_choose_params min-max + q_quantize with
 * axis 1 and block = group, or per output channel) gives; the _ref dot
 * products agree with an independent long-double computation; the named
 * tolerances admit a float-accumulating kernel and reject a wrong one. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qtest.h"

enum { N = 6, K = 256 };

static void test_sizes(void **state)
{
    (void)state;
    assert_int_equal(q_row_size(Q_KFMT_Q4_G32, 4096), 128 * 18);
    assert_int_equal(q_row_size(Q_KFMT_Q4A_G128, 256), 2 * 68);
    assert_int_equal(q_row_size(Q_KFMT_Q4_G64_SF32, 128), 2 * 36);
    assert_int_equal(q_row_size(Q_KFMT_Q8, 5), 4 + 8); /* padded so rows stay aligned */
    assert_int_equal(q_row_size(Q_KFMT_F8E4M3, 4096), 4 + 4096);
    for (int f = 0; f < Q_KFMT_COUNT; f++) {
        const q_kfmt_info *fi = q_kfmt_get((q_kfmt)f);
        assert_non_null(fi->name);
        if (fi->group) { /* the group's codes, bits each, after the header, no gap */
            size_t code_bytes = (size_t)fi->group * (size_t)q_format_bits(fi->format) / 8;
            assert_int_equal(fi->block_bytes - fi->qs_offset, code_bytes);
        }
    }
    /* bits per weight of the f16 int4 formats */
    assert_true(q_row_size(Q_KFMT_Q4_G32, 32) * 8.0 / 32 == 4.5);
    assert_true(q_row_size(Q_KFMT_Q4A_G32, 32) * 8.0 / 32 == 5.0);
    assert_true(q_row_size(Q_KFMT_Q4_G128, 128) * 8.0 / 128 == 4.125);
    /* int3 and int2 */
    assert_true(q_row_size(Q_KFMT_Q3_G32, 32) * 8.0 / 32 == 3.5);
    assert_true(q_row_size(Q_KFMT_Q3A_G128, 128) * 8.0 / 128 == 3.25);
    assert_true(q_row_size(Q_KFMT_Q2_G32, 32) * 8.0 / 32 == 2.5);
    assert_true(q_row_size(Q_KFMT_Q2_G128, 128) * 8.0 / 128 == 2.125);
    assert_true(q_row_size(Q_KFMT_Q2A_G64, 64) * 8.0 / 64 == 2.5);
}

/* A weight matrix whose rows have different magnitudes, a few outliers,
 * and one all-positive row (asymmetric formats use it). */
static float *weights(sup_arena *a)
{
    float *w = qt_normal(a, N * K, 1234);
    for (int r = 0; r < N; r++)
        for (int j = 0; j < K; j++) w[r * K + j] *= 0.02f * (float)(r + 1);
    w[3 * K + 17] *= 20.0f;
    for (int j = 0; j < K; j++) w[5 * K + j] = fabsf(w[5 * K + j]) + 0.01f;
    return w;
}

/* Code j of a packed row, read independently of blocks.c. */
static int32_t code_at(const q_kfmt_info *fi, const uint8_t *row, int64_t j, int32_t *zp,
                       float *scale)
{
    int64_t g = fi->group ? j / fi->group : 0, jj = fi->group ? j % fi->group : j;
    const uint8_t *b = row + g * fi->block_bytes;
    if (fi->scale_dtype == QMC_DTYPE_F16) {
        uint16_t h;
        memcpy(&h, b, 2);
        *scale = q_f16_to_f32(h);
    } else {
        memcpy(scale, b, 4);
    }
    *zp = fi->asymmetric ? b[fi->z_offset] : 0;
    const uint8_t *qs = b + fi->qs_offset;
    if (fi->format == QFMT_BF16 || fi->format == QFMT_F16) { /* unscaled 16-bit values */
        *scale = 1.0f;
        return qs[2 * jj] | qs[2 * jj + 1] << 8;
    }
    if (!fi->group) return fi->format == QFMT_INT8 ? (int8_t)qs[jj] : qs[jj];
    /* bits b*jj .. b*jj + b - 1 of the stream, one at a time, low first */
    int nb = q_format_bits(fi->format);
    int32_t v = 0;
    for (int i = 0; i < nb; i++) {
        int64_t bit = nb * jj + i;
        v |= (qs[bit / 8] >> (bit % 8) & 1) << i;
    }
    bool is_signed = fi->format == QFMT_INT4 || fi->format == QFMT_INT3 || fi->format == QFMT_INT2;
    return is_signed && v >= 1 << (nb - 1) ? v - (1 << nb) : v;
}

static void test_rows_match_onnx_layout(void **state)
{
    (void)state;
    sup_arena a = {0};
    float *w = weights(&a);
    const int64_t shape[2] = {N, K};
    for (int f = 0; f < Q_KFMT_COUNT; f++) {
        const q_kfmt_info *fi = q_kfmt_get((q_kfmt)f);
        q_choice c = {fi->format,        fi->group ? Q_GRAN_BLOCK : Q_GRAN_AXIS,
                      fi->group ? 1 : 0, fi->group,
                      !fi->asymmetric,   Q_CLIP_MINMAX,
                      fi->scale_dtype};
        q_params p;
        char err[200];
        assert_true(q_choose_params(&a, w, 2, shape, &c, &p, err, sizeof err));
        uint8_t codes[2 * N * K]; /* bf16/f16: two bytes each */
        float y[N * K], yr[K];
        q_quantize(w, 2, shape, &p, codes);
        q_dequantize(codes, 2, shape, &p, y);
        size_t rs = q_row_size((q_kfmt)f, K);
        uint8_t *row = sup_arena_alloc(&a, rs);
        for (int r = 0; r < N; r++) {
            memset(row, 0xAB, rs);
            q_quantize_row_ref((q_kfmt)f, w + r * K, K, row);
            for (int64_t j = 0; j < K; j++) {
                int32_t zp;
                float s;
                int32_t code = code_at(fi, row, j, &zp, &s);
                int64_t g = fi->group ? r * (K / fi->group) + j / fi->group : r;
                if (s != p.scales[g] || zp != (p.zero_points ? p.zero_points[g] : 0) ||
                    (q_format_code_bytes(fi->format) == 2
                         ? code != ((uint16_t *)(void *)codes)[r * K + j]
                         : (uint8_t)code != codes[r * K + j]))
                    fail_msg("%s row %d element %lld: code %d scale %g zp %d; ONNX layout: "
                             "code %d scale %g",
                             fi->name, r, (long long)j, code, s, zp, codes[r * K + j], p.scales[g]);
            }
            if (fi->asymmetric) /* reserved bytes are zero */
                for (int64_t g = 0; g < K / fi->group; g++)
                    assert_int_equal(row[g * fi->block_bytes + fi->z_offset + 1], 0);
            q_dequantize_row_ref((q_kfmt)f, row, K, yr);
            assert_memory_equal(yr, y + r * K, sizeof yr);
        }
    }
    sup_arena_free(&a);
}

static void test_typed_forms(void **state)
{
    (void)state;
    sup_arena a = {0};
    float *w = weights(&a), *x = qt_normal(&a, K, 77), y1[K], y2[K];
    q_block_q4_g32 b32[K / 32];
    uint8_t generic[sizeof b32];
    q_quantize_row_q4_g32_ref(w, K, b32);
    q_quantize_row_ref(Q_KFMT_Q4_G32, w, K, generic);
    assert_memory_equal(b32, generic, sizeof b32);
    q_dequantize_row_q4_g32_ref(b32, K, y1);
    q_dequantize_row_ref(Q_KFMT_Q4_G32, generic, K, y2);
    assert_memory_equal(y1, y2, sizeof y1);
    assert_true(q_dot_q4_g32_f32_ref(b32, x, K) == q_dot_f32_ref(Q_KFMT_Q4_G32, generic, x, K));
    _Alignas(4) uint8_t q8[4 + K];
    q_quantize_row_q8_ref(w, K, (q_row_q8 *)q8);
    assert_true(((q_row_q8 *)q8)->d != 0); /* negative when the largest value is positive */
    int8_t xq[K];
    float xs;
    q_quantize_row_a8_ref(x, K, xq, &xs);
    assert_true(q_dot_q8_a8_ref((q_row_q8 *)q8, xq, xs, K) ==
                q_dot_a8_ref(Q_KFMT_Q8, q8, xq, xs, K));
    sup_arena_free(&a);
}

static void test_a8_quantize(void **state)
{
    (void)state;
    float x[5] = {0.5f, -1.27f, 0.0f, 0.635f, 1.0f}, zero[5] = {0};
    int8_t xq[5];
    float xs;
    q_quantize_row_a8_ref(x, 5, xq, &xs);
    assert_true(xs == 1.27f / 127.0f);
    assert_int_equal(xq[1], -127);
    assert_int_equal(xq[2], 0);
    assert_int_equal(xq[0], 50);
    q_quantize_row_a8_ref(zero, 5, xq, &xs);
    assert_true(xs == 1.0f);
    for (int i = 0; i < 5; i++) assert_int_equal(xq[i], 0);
}

/* Three int8 digits carry an activation row to 2^-22 of its largest value;
 * two would not. */
static void test_a8x3_split(void **state)
{
    (void)state;
    sup_arena a = {0};
    enum { KS = 4096 };
    float *x = qt_normal(&a, KS, 77);
    x[5] = 40.0f; /* an outlier: the scale follows it */
    x[9] = 1e-9f; /* and values far below it */
    int8_t xq[3 * KS], a8[KS];
    float sc[3], xs;
    q_split_row_a8x3_ref(x, KS, xq, sc);
    q_quantize_row_a8_ref(x, KS, a8, &xs);
    assert_true(sc[0] == xs && sc[1] == xs / 256.0f && sc[2] == xs / 65536.0f);
    long double worst2 = 0, worst3 = 0;
    for (int j = 0; j < KS; j++) {
        assert_true(xq[j] >= -127 && xq[j] <= 127); /* digit 0: what one digit gives, to within 1 */
        assert_true(abs(xq[j] - a8[j]) <= 1);
        long double two = (long double)sc[0] * xq[j] + (long double)sc[1] * xq[KS + j];
        long double three = two + (long double)sc[2] * xq[2 * KS + j];
        worst2 = fmaxl(worst2, fabsl(two - x[j]));
        worst3 = fmaxl(worst3, fabsl(three - x[j]));
    }
    assert_true(worst3 <= Q_SPLIT_A8X3_ERROR * 40.0L);
    assert_true(worst2 > Q_SPLIT_A8X3_ERROR * 40.0L);
    /* the largest value and its negation: digit 0 at the edge, no overflow */
    float edge[3] = {40.0f, -40.0f, 40.0f * 8323071.0f / 8323072.0f};
    q_split_row_a8x3_ref(edge, 3, xq, sc);
    assert_int_equal(xq[0], 127);
    assert_int_equal(xq[1], -127);
    assert_int_equal(xq[3], 0);
    assert_int_equal(xq[6], 0);
    /* an odd number of units (beyond the magic-number rounding's 2^22) */
    assert_int_equal(xq[2], 127);
    assert_int_equal(xq[3 + 2], 0);
    assert_int_equal(xq[6 + 2], -1);
    float zero[4] = {0};
    q_split_row_a8x3_ref(zero, 4, xq, sc);
    assert_true(sc[0] == 1.0f);
    for (int j = 0; j < 12; j++) assert_int_equal(xq[j], 0);
    sup_arena_free(&a);
}

/* The _ref dots against long double sums of dequantized weights. */
static void test_dot_refs(void **state)
{
    (void)state;
    sup_arena a = {0};
    float *w = weights(&a), *x = qt_normal(&a, K, 99), y[K];
    int8_t xq[K];
    float xs;
    q_quantize_row_a8_ref(x, K, xq, &xs);
    for (int f = 0; f < Q_KFMT_COUNT; f++) {
        const q_kfmt_info *fi = q_kfmt_get((q_kfmt)f);
        uint8_t *row = sup_arena_alloc(&a, q_row_size((q_kfmt)f, K));
        for (int r = 0; r < N; r++) {
            q_quantize_row_ref((q_kfmt)f, w + r * K, K, row);
            q_dequantize_row_ref((q_kfmt)f, row, K, y);
            long double want = 0, want8 = 0;
            for (int j = 0; j < K; j++) {
                want += (long double)y[j] * x[j];
                want8 += (long double)y[j] * xq[j];
            }
            double m = q_dot_magnitude_f32((q_kfmt)f, row, x, K);
            assert_true(fabsl(q_dot_f32_ref((q_kfmt)f, row, x, K) - want) <= 1e-6 * m);
            if (!fi->tol_dot_a8) continue;
            double m8 = q_dot_magnitude_a8((q_kfmt)f, row, xq, xs, K);
            assert_true(fabsl(q_dot_a8_ref((q_kfmt)f, row, xq, xs, K) - want8 * xs) <= 1e-6 * m8);
        }
    }
    sup_arena_free(&a);
}

/* What a fast kernel does: float lanes, zero point folded out of the sum
 * (sum q x - z sum x), groups combined in float. */
static float fast_dot(const q_kfmt_info *fi, const uint8_t *row, const float *x, int64_t k, int bug)
{
    int64_t gs = fi->group ? fi->group : k;
    float total = 0;
    for (int64_t g = 0; g < k / gs; g++) {
        float lanes[8] = {0}, xsum = 0, s = 0;
        int32_t zp = 0;
        for (int64_t j = 0; j < gs; j++) {
            int32_t c = code_at(fi, row, g * gs + j, &zp, &s);
            bool nf4 = fi->format == QFMT_NF4;
            bool wide = q_format_code_bytes(fi->format) == 2;
            if (bug == 1 && g == 0 && j == 3) /* a wrong code */
                c = nf4 ? c ^ 8 : wide ? c ^ 0x8000 : c + 1;
            float v = q_format_is_fp8(fi->format) ? q_fp8_decode(fi->format, (uint8_t)c)
                      : nf4                       ? q_nf4_table[c]
                      : q_format_code_bytes(fi->format) == 2
                          ? q_f16w_decode(fi->format, (uint16_t)c)
                          : (float)c;
            lanes[j % 8] += v * x[g * gs + j];
            xsum += x[g * gs + j];
        }
        float sum = 0;
        for (int l = 0; l < 8; l++) sum += lanes[l];
        if (bug != 2) sum -= (float)zp * xsum; /* bug 2: zero point forgotten */
        total += s * sum;
    }
    return total;
}

static void test_tolerances(void **state)
{
    (void)state;
    sup_arena a = {0};
    float *w = weights(&a), *x = qt_normal(&a, K, 5);
    for (int f = 0; f < Q_KFMT_COUNT; f++) {
        const q_kfmt_info *fi = q_kfmt_get((q_kfmt)f);
        uint8_t *row = sup_arena_alloc(&a, q_row_size((q_kfmt)f, K));
        for (int r = 0; r < N; r++) {
            q_quantize_row_ref((q_kfmt)f, w + r * K, K, row);
            double ref = q_dot_f32_ref((q_kfmt)f, row, x, K);
            double tol = q_dot_tolerance_f32((q_kfmt)f, row, x, K);
            assert_true(tol > 0);
            double ok = fast_dot(fi, row, x, K, 0);
            if (fabs(ok - ref) > tol)
                fail_msg("%s: a correct fast dot is off by %g > %g", fi->name, fabs(ok - ref), tol);
            if (!q_format_is_fp8(fi->format))
                assert_true(fabs(fast_dot(fi, row, x, K, 1) - ref) > tol);
            bool any_zp = false; /* the all-positive row has zero points 0 */
            for (int64_t j = 0; j < K; j++) {
                int32_t zp;
                float s;
                code_at(fi, row, j, &zp, &s);
                any_zp |= zp != 0;
            }
            if (any_zp) assert_true(fabs(fast_dot(fi, row, x, K, 2) - ref) > tol);
            assert_true(any_zp == (fi->asymmetric && r != 5));
        }
    }
    sup_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),       cmocka_unit_test(test_rows_match_onnx_layout),
        cmocka_unit_test(test_typed_forms), cmocka_unit_test(test_a8_quantize),
        cmocka_unit_test(test_a8x3_split),  cmocka_unit_test(test_dot_refs),
        cmocka_unit_test(test_tolerances),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
