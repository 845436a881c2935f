/* test_onnx_cases.c: every ONNX QuantizeLinear + DequantizeLinear case in
 * tests/data/refs/quantizelinear (whatever caseNNN folders exist, read from
 * their case.json) reproduced bit for bit by the library: the codes of
 * q_quantize, and the float32 bits of q_dequantize applied both to the
 * reference codes and to ours. test_cli_cases.c does the same through
 * `qmc quantize`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "onnx_case.h"

/* The case's scale and zero point as q_params, granularity found as ONNX
 * finds it: block_size > 0 blocks; a one-element scale is per tensor;
 * otherwise per axis. */
static q_params case_params(sup_arena *a, const onnx_case *c, const qt_npy *x)
{
    q_params p = {.format = c->format, .axis = c->axis, .block = c->block, .saturate = c->saturate};
    qt_npy s = qt_load(a, c->scale_path);
    assert_true(s.h.dtype == QMC_DTYPE_F32 || s.h.dtype == QMC_DTYPE_F16);
    p.scale_dtype = s.h.dtype;
    p.granularity = c->block > 0 ? Q_GRAN_BLOCK : s.h.count == 1 ? Q_GRAN_TENSOR : Q_GRAN_AXIS;
    char err[200];
    if (!q_params_layout(&p, x->h.rank, x->h.shape, err, sizeof err))
        fail_msg("%s: %s", c->name, err);
    assert_int_equal(p.scale_count, s.h.count);
    if (p.granularity != Q_GRAN_TENSOR) {
        assert_int_equal(p.scale_rank, s.h.rank);
        assert_memory_equal(p.scale_shape, s.h.shape, sizeof(int64_t) * (size_t)s.h.rank);
    }
    p.scales = sup_arena_alloc(a, sizeof(float) * (size_t)s.h.count);
    for (int64_t i = 0; i < s.h.count; i++)
        p.scales[i] = s.h.dtype == QMC_DTYPE_F32 ? ((float *)s.data)[i]
                                                 : q_f16_to_f32(((uint16_t *)s.data)[i]);
    if (c->zp_path) {
        qt_npy z = qt_load(a, c->zp_path);
        assert_int_equal(z.h.count, s.h.count);
        assert_true(z.h.dtype == QMC_DTYPE_I8 || z.h.dtype == QMC_DTYPE_U8);
        if (q_format_is_fp8(c->format)) {
            for (int64_t i = 0; i < z.h.count; i++) assert_int_equal(((uint8_t *)z.data)[i], 0);
        } else {
            p.zero_points = sup_arena_alloc(a, sizeof(int32_t) * (size_t)z.h.count);
            for (int64_t i = 0; i < z.h.count; i++)
                p.zero_points[i] =
                    z.h.dtype == QMC_DTYPE_I8 ? ((int8_t *)z.data)[i] : ((uint8_t *)z.data)[i];
        }
    }
    return p;
}

static int64_t count_diff_bytes(const void *a, const void *b, int64_t n, size_t esize)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += memcmp((const char *)a + i * esize, (const char *)b + i * esize, esize) != 0;
    return bad;
}

static void check_case(sup_arena *a, const onnx_case *c)
{
    qt_npy x = qt_load(a, c->x_path), q = qt_load(a, c->q_path), y = qt_load(a, c->y_path);
    assert_int_equal(x.h.dtype, QMC_DTYPE_F32);
    assert_int_equal(y.h.dtype, QMC_DTYPE_F32);
    assert_int_equal(q.h.dtype, q_format_code_dtype(c->format));
    assert_int_equal(q.h.count, x.h.count);
    q_params p = case_params(a, c, &x);
    uint8_t *codes = sup_arena_alloc(a, (size_t)x.h.count + 1);
    float *out = sup_arena_alloc(a, sizeof(float) * (size_t)x.h.count + 1);
    q_quantize(x.data, x.h.rank, x.h.shape, &p, codes);
    int64_t bad = count_diff_bytes(codes, q.data, x.h.count, 1);
    if (bad)
        fail_msg("%s: %lld of %lld codes differ", c->name, (long long)bad, (long long)x.h.count);
    q_dequantize(q.data, x.h.rank, x.h.shape, &p, out);
    bad = count_diff_bytes(out, y.data, x.h.count, 4);
    if (bad) fail_msg("%s: %lld dequantized values differ", c->name, (long long)bad);
    q_dequantize(codes, x.h.rank, x.h.shape, &p, out);
    assert_int_equal(count_diff_bytes(out, y.data, x.h.count, 4), 0);
}

static void test_all_cases(void **state)
{
    (void)state;
    sup_arena a = {0};
    int n;
    onnx_case *cases = onnx_cases(&a, &n);
    for (int i = 0; i < n; i++) {
        check_case(&a, &cases[i]);
        print_message("%s %s: ok\n", cases[i].name, q_format_name(cases[i].format));
    }
    sup_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
