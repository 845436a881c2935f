/* test_ref_math.c: the interpreter's elementwise functions, reductions and
 * indexing (ref_math.c) on exact cases: ONNX's NaN and signed-zero rules of
 * maximum, minimum and clip, the parameters of the activations, broadcasting
 * of where and expand, reductions over non-adjacent axes, gather with
 * negative and out-of-range indices. */
#include <math.h>

#include "unit.h"

#include "interp.h"

static float un(ir_unary fn, float alpha, float beta, float x)
{
    ir_attrs a = {.fn = fn, .alpha = alpha, .beta = beta};
    return interp_ref_unary(&a, x);
}

static void test_unary(void **state)
{
    (void)state;
    assert_true(un(IR_UN_LEAKY_RELU, 0.1f, 0, -2) == -0.2f);
    assert_true(un(IR_UN_LEAKY_RELU, 0.1f, 0, 3) == 3);
    assert_true(un(IR_UN_HARD_SIGMOID, 0.2f, 0.5f, 1) == 0.2f * 1 + 0.5f);
    assert_true(un(IR_UN_HARD_SIGMOID, 0.2f, 0.5f, 10) == 1);
    assert_true(un(IR_UN_HARD_SIGMOID, 0.2f, 0.5f, -10) == 0);
    assert_true(un(IR_UN_HARD_SWISH, 0, 0, 3) == 3);
    assert_true(un(IR_UN_HARD_SWISH, 0, 0, -3) == 0);
    assert_true(un(IR_UN_HARD_SWISH, 0, 0, 1) == 1 * (1.0f / 6 + 0.5f));
    assert_true(un(IR_UN_CLIP, -1, 2, -5) == -1);
    assert_true(un(IR_UN_CLIP, -1, 2, 5) == 2);
    assert_true(isnan(un(IR_UN_CLIP, -1, 2, NAN)));
    assert_true(un(IR_UN_CLIP, -INFINITY, INFINITY, 1e30f) == 1e30f);
    assert_true(un(IR_UN_SIGMOID, 0, 0, -200) == 0 && un(IR_UN_SIGMOID, 0, 0, 200) == 1);
    assert_true(un(IR_UN_SIGMOID, 0, 0, 0) == 0.5f);
    assert_true(un(IR_UN_FLOOR, 0, 0, -1.5f) == -2 && un(IR_UN_CEIL, 0, 0, -1.5f) == -1);
    assert_true(isinf(un(IR_UN_LOG, 0, 0, 0)) && isnan(un(IR_UN_LOG, 0, 0, -1)));
}

static void test_binary(void **state)
{
    (void)state;
    assert_true(isnan(interp_ref_binary(IR_BIN_MAX, NAN, 1)));
    assert_true(isnan(interp_ref_binary(IR_BIN_MIN, 1, NAN)));
    assert_false(signbit(interp_ref_binary(IR_BIN_MAX, -0.0f, 0.0f)));
    assert_true(signbit(interp_ref_binary(IR_BIN_MIN, 0.0f, -0.0f)));
    assert_true(interp_ref_binary(IR_BIN_POW, -2, 3) == -8);
    assert_true(interp_ref_binary(IR_BIN_EQUAL, 1, 1) == 1 &&
                interp_ref_binary(IR_BIN_LESS, 1, 1) == 0);
    assert_true(interp_ref_binary(IR_BIN_LESS_EQUAL, 1, 1) == 1);
    assert_true(interp_ref_binary(IR_BIN_GREATER, NAN, 1) == 0);
    assert_true(interp_ref_binary(IR_BIN_GREATER_EQUAL, 2, 1) == 1);
}

static ir_node node(ir_op op, int rank, const int64_t *shape)
{
    ir_node n = {.op = op, .rank = rank};
    if (rank) memcpy(n.shape, shape, sizeof *shape * (size_t)rank);
    return n;
}

static void test_where_expand(void **state)
{
    (void)state;
    /* where(c[2, 1], a[3], b[]) -> [2, 3] */
    ir_node n = node(IR_OP_WHERE, 2, (int64_t[]){2, 3}),
            c = node(IR_OP_INPUT, 2, (int64_t[]){2, 1}), a = node(IR_OP_INPUT, 1, (int64_t[]){3}),
            b = node(IR_OP_CONST, 0, NULL);
    float cv[2] = {1, 0}, av[3] = {1, 2, 3}, bv[1] = {-1}, y[6];
    const ir_node *in[3] = {&c, &a, &b};
    const void *vals[3] = {cv, av, bv};
    interp_ref_broadcast(&n, in, vals, y);
    float want[6] = {1, 2, 3, -1, -1, -1};
    assert_memory_equal(y, want, sizeof want);
    /* expand of i32 [2, 1] to [2, 2]: words copied */
    ir_node e = node(IR_OP_EXPAND, 2, (int64_t[]){2, 2}),
            x = node(IR_OP_INPUT, 2, (int64_t[]){2, 1});
    int32_t xv[2] = {7, -9}, ey[4], ewant[4] = {7, 7, -9, -9};
    const ir_node *ein[1] = {&x};
    const void *evals[1] = {xv};
    interp_ref_broadcast(&e, ein, evals, ey);
    assert_memory_equal(ey, ewant, sizeof ewant);
}

static void test_reduce(void **state)
{
    (void)state;
    /* x[2, 3, 2] = 0..11, over axes 0 and 2 -> [3]: (0+1+6+7), (2+3+8+9), (4+5+10+11) */
    ir_node x = node(IR_OP_INPUT, 3, (int64_t[]){2, 3, 2});
    float xv[12], y[3];
    for (int i = 0; i < 12; i++) xv[i] = (float)i;
    ir_node n = node(IR_OP_REDUCE, 1, (int64_t[]){3});
    n.attr.axes = 1u | 4u;
    n.attr.fn = IR_RED_SUM;
    interp_ref_reduce(&x, xv, &n, y);
    assert_true(y[0] == 14 && y[1] == 22 && y[2] == 30);
    n.attr.fn = IR_RED_MEAN;
    interp_ref_reduce(&x, xv, &n, y);
    assert_true(y[0] == 3.5f && y[1] == 5.5f && y[2] == 7.5f);
    n.attr.fn = IR_RED_MAX;
    xv[8] = NAN;
    interp_ref_reduce(&x, xv, &n, y);
    assert_true(y[0] == 7 && isnan(y[1]) && y[2] == 11);
    n.attr.fn = IR_RED_MIN;
    interp_ref_reduce(&x, xv, &n, y);
    assert_true(y[0] == 0 && isnan(y[1]) && y[2] == 4);
}

static void test_gather(void **state)
{
    (void)state;
    /* x[2, 3] gathered along axis 1 by [-1, 0] -> [2, 2] */
    ir_node x = node(IR_OP_INPUT, 2, (int64_t[]){2, 3}), idx = node(IR_OP_INPUT, 1, (int64_t[]){2});
    float xv[6] = {1, 2, 3, 4, 5, 6}, y[4], want[4] = {3, 1, 6, 4};
    int32_t iv[2] = {-1, 0}, bad[2] = {0, 3};
    assert_int_equal(interp_ref_gather(&x, xv, &idx, iv, 1, y), -1);
    assert_memory_equal(y, want, sizeof want);
    assert_int_equal(interp_ref_gather(&x, xv, &idx, bad, 1, y), 1);
}

static void test_cast(void **state)
{
    (void)state;
    float x[6] = {1.9f, -1.9f, NAN, 3e9f, -3e9f, -0.5f};
    int32_t y[6], want[6] = {1, -1, 0, INT32_MAX, INT32_MIN, 0};
    interp_ref_cast(QMC_DTYPE_F32, QMC_DTYPE_I32, x, y, 6);
    assert_memory_equal(y, want, sizeof want);
    int32_t i[2] = {16777217, -3};
    float f[2];
    interp_ref_cast(QMC_DTYPE_I32, QMC_DTYPE_F32, i, f, 2);
    assert_true(f[0] == 16777216.0f && f[1] == -3.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary),        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_where_expand), cmocka_unit_test(test_reduce),
        cmocka_unit_test(test_gather),       cmocka_unit_test(test_cast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
