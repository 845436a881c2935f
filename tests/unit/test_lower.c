/* test_lower.c: how lowering decides the int8 rows a linear layer makes of
 * its activations (ir_act_int8_rows) and the scratch they take. */
#include "unit.h"

#include "compiler.h"

static ir_qweight weight(q_format format, int64_t kp, int64_t group, bool act8)
{
    ir_qweight q = {.f = {.format = format, .group = (int)(group == kp ? 0 : group), .act8 = act8},
                    .n = 16, .k = kp, .kp = kp, .group = group, .n_groups = kp / group};
    return q;
}

static void test_act_int8_rows(void **state)
{
    (void)state;
    assert_int_equal(ir_act_int8_rows(NULL, true), 0); /* f32 weights */
    ir_qweight int4 = weight(QFMT_INT4, 4096, 32, false), int8 = weight(QFMT_INT8, 4096, 4096, false);
    ir_qweight asym = weight(QFMT_UINT4, 4096, 32, false), fp8 = weight(QFMT_FP8_E4M3, 4096, 4096, false);
    /* f32 activations: three digits with integer dot products, else floats */
    assert_int_equal(ir_act_int8_rows(&int4, true), IR_A8X3_DIGITS);
    assert_int_equal(ir_act_int8_rows(&int8, true), IR_A8X3_DIGITS);
    assert_int_equal(ir_act_int8_rows(&asym, true), IR_A8X3_DIGITS);
    assert_int_equal(ir_act_int8_rows(&int4, false), 0);
    assert_int_equal(ir_act_int8_rows(&fp8, true), 0);
    /* :a8: one int8 row with or without integer dot products */
    ir_qweight a8 = weight(QFMT_INT4, 4096, 32, true);
    assert_int_equal(ir_act_int8_rows(&a8, true), 1);
    assert_int_equal(ir_act_int8_rows(&a8, false), 1);
    /* a group whose int32 sums could overflow: 65,800 * 255 * 128 > 2^31 */
    ir_qweight wide = weight(QFMT_INT8, 65800, 65800, false), fits = weight(QFMT_INT8, 65792, 65792, false);
    assert_int_equal(ir_act_int8_rows(&wide, true), 0);
    assert_int_equal(ir_act_int8_rows(&fits, true), IR_A8X3_DIGITS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_act_int8_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
