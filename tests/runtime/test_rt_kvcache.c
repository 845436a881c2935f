/* test_rt_kvcache.c: the quantized KV cache's numbers against the
 * quantization numerics of compiler/quant (ONNX-exact, tested against
 * ONNX's reference): every FP8 E4M3 code decodes to q_fp8_e4m3_decode's
 * value; every float in range (ties included) encodes as
 * q_fp8_e4m3_encode(saturating); a row's scale is its largest magnitude
 * over 127 (int8) or 448 (FP8) and its codes round to the nearest even. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "quant.h"
#include "rt.h"

static void test_fp8_decode(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        if (c == 0x7F || c == 0xFF) continue; /* NaN: never in a cache */
        float want = q_fp8_e4m3_decode((uint8_t)c), got = rt_kv_decode(RT_KV_FP8E4M3, (uint8_t)c);
        if (memcmp(&want, &got, 4)) fail_msg("code 0x%02x: %g, want %g", c, got, want);
    }
}

static void test_fp8_encode(void **state)
{
    (void)state;
    /* every code's value, the midpoints between neighbours (ties), and
     * the floats right beside them, of both signs */
    for (int c = 0; c < 0x7E; c++) {
        float lo = q_fp8_e4m3_decode((uint8_t)c), hi = q_fp8_e4m3_decode((uint8_t)(c + 1));
        float xs[5] = {lo, (lo + hi) / 2, nextafterf((lo + hi) / 2, 0),
                       nextafterf((lo + hi) / 2, 1000), hi};
        for (int i = 0; i < 5; i++)
            for (int s = 0; s < 2; s++) {
                float x = s ? -xs[i] : xs[i];
                uint8_t want = q_fp8_e4m3_encode(x, true), codes[2];
                /* in a row whose largest value is 448: its scale is 1 */
                float row[2] = {x, 448};
                assert_true(rt_kv_quantize(RT_KV_FP8E4M3, row, 2, codes) == 1.0f);
                uint8_t code = codes[0];
                if (code != want && !(x == 0 && (code & 0x7F) == 0))
                    fail_msg("%.9g: 0x%02x, want 0x%02x", x, code, want);
            }
    }
}

static void test_int8_rows(void **state)
{
    (void)state;
    float x[5] = {0.5f, -1.27f, 0.635f, 0.0049f, -0.00501f};
    uint8_t q[5];
    float scale = rt_kv_quantize(RT_KV_INT8, x, 5, q);
    assert_true(scale == 1.27f / 127.0f);
    int8_t want[5] = {(int8_t)rintf(0.5f / scale), -127, (int8_t)rintf(0.635f / scale), 0, -1};
    for (int i = 0; i < 5; i++) assert_int_equal((int8_t)q[i], want[i]);
    float zero[3] = {0, -0.0f, 0};
    assert_true(rt_kv_quantize(RT_KV_INT8, zero, 3, q) == 0);
    for (int i = 0; i < 3; i++) assert_int_equal(q[i], 0);
    rt_kv_format f;
    assert_true(rt_kv_format_parse("fp8e4m3", &f) && f == RT_KV_FP8E4M3);
    assert_false(rt_kv_format_parse("int4", &f));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fp8_decode),
                                       cmocka_unit_test(test_fp8_encode),
                                       cmocka_unit_test(test_int8_rows)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
