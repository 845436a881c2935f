/* test_fp8.c: FP8 and binary16 conversions against tests/data/refs/fp8
 * (ONNX Cast and ml_dtypes), bit for bit, NaN codes included; and the
 * round-trip properties of every code. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "qtest.h"

static uint32_t bits_of(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

typedef struct fp8_kind {
    const char *file; /* "e4m3fn" */
    q_format format;
} fp8_kind;

static const fp8_kind kinds[] = {{"e4m3fn", QFMT_FP8_E4M3}, {"e5m2", QFMT_FP8_E5M2}};

static qt_npy load_ref(sup_arena *a, const char *name, qmc_dtype dtype)
{
    qt_npy r = qt_load(a, qt_data(a, sup_arena_printf(a, "refs/fp8/%s", name)));
    assert_int_equal(r.h.dtype, dtype);
    return r;
}

/* Decoding: all 256 codes give the reference float32 bits (NaN: the quiet
 * NaN with the code's sign). */
static void test_decode_all_codes(void **state)
{
    (void)state;
    sup_arena a = {0};
    for (size_t t = 0; t < 2; t++) {
        qt_npy codes =
            load_ref(&a, sup_arena_printf(&a, "%s_decode.codes.npy", kinds[t].file), QMC_DTYPE_U8);
        qt_npy vals =
            load_ref(&a, sup_arena_printf(&a, "%s_decode.f32.npy", kinds[t].file), QMC_DTYPE_F32);
        assert_int_equal(codes.h.count, 256);
        assert_int_equal(vals.h.count, 256);
        const uint8_t *c = codes.data;
        const float *v = vals.data;
        for (int i = 0; i < 256; i++) {
            float got = q_fp8_decode(kinds[t].format, c[i]);
            if (bits_of(got) != bits_of(v[i]))
                fail_msg("%s decode 0x%02x: got %a (0x%08x), want %a (0x%08x)", kinds[t].file, c[i],
                         got, bits_of(got), v[i], bits_of(v[i]));
        }
    }
    sup_arena_free(&a);
}

/* Encoding: every input of every reference set gives the reference code,
 * and the decoded code the reference float32 bits. */
static void check_encode(sup_arena *a, const fp8_kind *k, const char *set, bool saturate,
                         bool plain)
{
    qt_npy in = load_ref(a, sup_arena_printf(a, "%s_encode_in.npy", k->file), QMC_DTYPE_F32);
    qt_npy codes =
        load_ref(a, sup_arena_printf(a, "%s_encode_%s.codes.npy", k->file, set), QMC_DTYPE_U8);
    qt_npy vals =
        load_ref(a, sup_arena_printf(a, "%s_encode_%s.f32.npy", k->file, set), QMC_DTYPE_F32);
    assert_int_equal(in.h.count, codes.h.count);
    assert_int_equal(in.h.count, vals.h.count);
    assert_true(in.h.count > 1000);
    const float *x = in.data, *v = vals.data;
    const uint8_t *c = codes.data;
    int64_t bad = 0;
    for (int64_t i = 0; i < in.h.count; i++) {
        uint8_t got = plain ? (k->format == QFMT_FP8_E4M3 ? q_fp8_e4m3_encode_plain(x[i])
                                                          : q_fp8_e5m2_encode_plain(x[i]))
                            : q_fp8_encode(k->format, x[i], saturate);
        float back = q_fp8_decode(k->format, got);
        if (got != c[i] || bits_of(back) != bits_of(v[i])) {
            if (bad++ < 5)
                print_error("%s %s: input %a (0x%08x): got 0x%02x, want 0x%02x\n", k->file, set,
                            x[i], bits_of(x[i]), got, c[i]);
        }
    }
    if (bad) fail_msg("%s %s: %lld mismatches", k->file, set, (long long)bad);
}

static void test_encode_onnx_cast_saturate(void **state)
{
    (void)state;
    sup_arena a = {0};
    for (size_t t = 0; t < 2; t++) check_encode(&a, &kinds[t], "onnxcast_sat1", true, false);
    sup_arena_free(&a);
}

static void test_encode_onnx_cast_no_saturate(void **state)
{
    (void)state;
    sup_arena a = {0};
    for (size_t t = 0; t < 2; t++) check_encode(&a, &kinds[t], "onnxcast_sat0", false, false);
    sup_arena_free(&a);
}

static void test_encode_mldtypes(void **state)
{
    (void)state;
    sup_arena a = {0};
    for (size_t t = 0; t < 2; t++) check_encode(&a, &kinds[t], "mldtypes", false, true);
    sup_arena_free(&a);
}

/* decode then encode gives the code back for all 256 codes, with and
 * without saturation (with it, E5M2's ±inf become ±max, as they must). E5M2 has six NaN codes that
 * all decode to the one quiet NaN the references use, so those come back as the canonical NaN code
 * of their sign (0x7E / 0xFE); E4M3FN's two NaN codes are exact. */
static void test_decode_encode_identity(void **state)
{
    (void)state;
    for (size_t t = 0; t < 2; t++) {
        q_format f = kinds[t].format;
        int nans = 0;
        for (int c = 0; c < 256; c++) {
            float v = q_fp8_decode(f, (uint8_t)c);
            for (int sat = 0; sat < 2; sat++) {
                uint8_t back = q_fp8_encode(f, v, sat);
                if (q_fp8_is_nan(f, (uint8_t)c)) {
                    assert_true(isnan(v));
                    uint8_t canon = (uint8_t)((c & 0x80) | (f == QFMT_FP8_E4M3 ? 0x7F : 0x7E));
                    assert_int_equal(back, canon);
                } else if (sat && isinf(v)) {
                    assert_int_equal(back, (c & 0x80) | 0x7B); /* saturation: ±inf -> ±max */
                } else if (back != c) {
                    fail_msg("%s: code 0x%02x -> %a -> 0x%02x (saturate=%d)", kinds[t].file, c, v,
                             back, sat);
                }
            }
            nans += q_fp8_is_nan(f, (uint8_t)c);
        }
        assert_int_equal(nans, f == QFMT_FP8_E4M3 ? 2 : 6);
    }
}

/* Spot checks that name the rules: ties to even, saturation, overflow. */
static void test_fp8_rules(void **state)
{
    (void)state;
    assert_int_equal(q_fp8_e4m3_encode(448.0f, false), 0x7E);
    assert_int_equal(q_fp8_e4m3_encode(464.0f, false), 0x7E);    /* tie -> even 448 */
    assert_int_equal(q_fp8_e4m3_encode(464.0001f, false), 0x7F); /* NaN */
    assert_int_equal(q_fp8_e4m3_encode(1e9f, true), 0x7E);
    assert_int_equal(q_fp8_e4m3_encode(-INFINITY, true), 0xFE);
    assert_int_equal(q_fp8_e4m3_encode(-INFINITY, false), 0xFF);
    assert_int_equal(q_fp8_e4m3_encode(ldexpf(1.0f, -10), false), 0x00); /* tie -> even 0 */
    assert_int_equal(q_fp8_e4m3_encode(ldexpf(3.0f, -10), false), 0x02); /* tie -> even 2 */
    assert_int_equal(q_fp8_e4m3_encode(-0.0f, false), 0x80);
    assert_int_equal(q_fp8_e5m2_encode(61440.0f, false), 0x7C); /* tie -> even: inf */
    assert_int_equal(q_fp8_e5m2_encode(61440.0f, true), 0x7B);
    assert_int_equal(q_fp8_e5m2_encode(NAN, true), 0x7E);
    assert_true(q_fp8_e4m3_decode(0x01) == ldexpf(1.0f, -9));
    assert_true(q_fp8_e5m2_decode(0x01) == ldexpf(1.0f, -16));
    assert_true(q_fp8_e5m2_decode(0xFC) == -INFINITY);
}

/* binary16: every finite half survives f16 -> f32 -> f16; ties to even. */
static void test_f16(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = q_f16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        assert_int_equal(q_f16_from_f32(f), h);
    }
    assert_int_equal(q_f16_from_f32(1.0f + ldexpf(1.0f, -11)), 0x3C00); /* tie -> even */
    assert_int_equal(q_f16_from_f32(1.0f + ldexpf(3.0f, -11)), 0x3C02); /* tie -> even */
    assert_int_equal(q_f16_from_f32(65519.996f), 0x7BFF);
    assert_int_equal(q_f16_from_f32(65520.0f), 0x7C00);
    assert_int_equal(q_f16_from_f32(ldexpf(1.0f, -25)), 0x0000); /* tie -> 0 */
    assert_int_equal(q_f16_from_f32(ldexpf(3.0f, -25)), 0x0002);
    assert_int_equal(q_f16_from_f32(-NAN) & 0x7E00, 0x7E00);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_all_codes),
        cmocka_unit_test(test_encode_onnx_cast_saturate),
        cmocka_unit_test(test_encode_onnx_cast_no_saturate),
        cmocka_unit_test(test_encode_mldtypes),
        cmocka_unit_test(test_decode_encode_identity),
        cmocka_unit_test(test_fp8_rules),
        cmocka_unit_test(test_f16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
