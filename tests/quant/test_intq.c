/* test_intq.c: integer rounding (ONNX QuantizeLinear's rint + zero point +
 * saturation) and int4 packing (ONNX's low-nibble-first layout). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "qtest.h"

static void test_round_half_even(void **state)
{
    (void)state;
    static const struct {
        float v;
        int32_t want;
    } cases[] = {{0.5f, 0},   {1.5f, 2},        {2.5f, 2},       {-0.5f, 0},    {-1.5f, -2},
                 {-2.5f, -2}, {0.49999997f, 0}, {2.5000002f, 3}, {126.5f, 126}, {-127.5f, -128}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(q_int_encode(cases[i].v, 0, -128, 127), cases[i].want);
    /* the zero point is added after rounding */
    assert_int_equal(q_int_encode(2.5f, 3, 0, 255), 5);
    assert_int_equal(q_int_encode(-3.5f, 10, 0, 255), 6);
}

static void test_saturation(void **state)
{
    (void)state;
    assert_int_equal(q_int_encode(1e30f, 0, -128, 127), 127);
    assert_int_equal(q_int_encode(INFINITY, 0, -8, 7), 7);
    assert_int_equal(q_int_encode(-INFINITY, 0, -8, 7), -8);
    assert_int_equal(q_int_encode(127.5f, 0, -128, 127), 127);
    assert_int_equal(q_int_encode(-300.0f, 128, 0, 255), 0);
    assert_int_equal(q_int_encode(200.0f, 128, 0, 255), 255);
    assert_int_equal(q_int_encode(16.0f, 0, 0, 15), 15);
    /* NaN: qmin, as ONNX's reference gives on x86 */
    assert_int_equal(q_int_encode(NAN, 0, -128, 127), -128);
    assert_int_equal(q_int_encode(NAN, 8, 0, 15), 0);
}

static void test_int4_layout(void **state)
{
    (void)state;
    uint8_t codes[3] = {1, (uint8_t)-2, 3}, packed[2] = {0xAA, 0xAA}, back[3];
    q_int4_pack(codes, 3, packed);
    assert_int_equal(packed[0], 0xE1); /* -2 = 0xE high, 1 low */
    assert_int_equal(packed[1], 0x03); /* odd count: high nibble 0 */
    q_int4_unpack(packed, 3, true, back);
    assert_memory_equal(back, codes, 3);
    assert_int_equal(q_int4_packed_size(0), 0);
    assert_int_equal(q_int4_packed_size(7), 4);
}

/* pack then unpack is the identity on every length, odd ones included. */
static void test_int4_round_trip(void **state)
{
    (void)state;
    uint8_t codes[1001], packed[501], back[1001];
    for (int signed_ = 0; signed_ < 2; signed_++)
        for (int64_t n = 0; n <= 1001; n += (n < 40 ? 1 : 97)) {
            for (int64_t i = 0; i < n; i++) {
                int v = (int)((i * 7 + n) % 16);
                codes[i] = signed_ ? (uint8_t)(int8_t)(v - 8) : (uint8_t)v;
            }
            memset(packed, 0xFF, sizeof packed);
            q_int4_pack(codes, n, packed);
            if (n & 1) assert_int_equal(packed[n / 2] >> 4, 0);
            q_int4_unpack(packed, n, signed_, back);
            if (n) assert_memory_equal(back, codes, (size_t)n);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_half_even),
        cmocka_unit_test(test_saturation),
        cmocka_unit_test(test_int4_layout),
        cmocka_unit_test(test_int4_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
