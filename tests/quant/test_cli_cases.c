/* test_cli_cases.c: the reference vectors through `qmc quantize`, bit for
 * bit: every ONNX case in tests/data/refs/quantizelinear (whatever caseNNN
 * folders exist; --axis/--block/--no-saturate from case.json) and every FP8
 * file in tests/data/refs/fp8 (with scale 1, x / 1 = x, so the codes are
 * ONNX Cast's and ml_dtypes'). The output .npy files must equal the
 * reference files in dtype, shape and bytes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "onnx_case.h"

/* got and want hold the same array: dtype, shape and every byte. */
static void assert_same_npy(sup_arena *a, const char *got_path, const char *want_path)
{
    qt_npy got = qt_load(a, got_path), want = qt_load(a, want_path);
    if (got.h.dtype != want.h.dtype)
        fail_msg("%s: dtype %s, want %s", want_path, qmc_dtype_name(got.h.dtype),
                 qmc_dtype_name(want.h.dtype));
    assert_int_equal(got.h.rank, want.h.rank);
    assert_memory_equal(got.h.shape, want.h.shape, sizeof(int64_t) * (size_t)want.h.rank);
    const uint8_t *g = got.data, *w = want.data;
    size_t es = qmc_dtype_size(want.h.dtype);
    for (int64_t i = 0; i < want.h.count; i++)
        if (memcmp(g + i * es, w + i * es, es) != 0)
            fail_msg("%s: element %lld differs", want_path, (long long)i);
}

static void run_ok(sup_arena *a, const char *const *argv)
{
    char *out, *err;
    int status = qt_run_qmc(a, argv, &out, &err);
    if (status != 0) fail_msg("qmc quantize exited %d: %s", status, err);
    assert_non_null(strstr(out, "sqnr_db="));
}

static void test_onnx_cases_through_cli(void **state)
{
    (void)state;
    sup_arena a = {0};
    int n;
    onnx_case *cases = onnx_cases(&a, &n);
    char *dir = qt_tmpdir(&a);
    const char *qpath = sup_arena_printf(&a, "%s/q.npy", dir);
    const char *ypath = sup_arena_printf(&a, "%s/y.npy", dir);
    for (int i = 0; i < n; i++) {
        const onnx_case *c = &cases[i];
        const char *argv[24];
        int k = 0;
        argv[k++] = "quantize";
        argv[k++] = c->x_path;
        argv[k++] = "--format";
        argv[k++] = q_format_name(c->format);
        if (c->has_axis) argv[k++] = "--axis", argv[k++] = sup_arena_printf(&a, "%d", c->axis);
        if (c->block)
            argv[k++] = "--block", argv[k++] = sup_arena_printf(&a, "%lld", (long long)c->block);
        argv[k++] = "--scale";
        argv[k++] = c->scale_path;
        if (c->zp_path) argv[k++] = "--zero-point", argv[k++] = c->zp_path;
        if (!c->saturate) argv[k++] = "--no-saturate";
        argv[k++] = "--codes";
        argv[k++] = qpath;
        argv[k++] = "--dequant";
        argv[k++] = ypath;
        argv[k] = NULL;
        run_ok(&a, argv);
        assert_same_npy(&a, qpath, c->q_path);
        assert_same_npy(&a, ypath, c->y_path);
        print_message("%s through qmc quantize: ok\n", c->name);
    }
    qt_rmdir(dir);
    sup_arena_free(&a);
}

static const struct {
    const char *file, *format;
} fp8_kinds[] = {{"e4m3fn", "fp8e4m3"}, {"e5m2", "fp8e5m2"}};

/* Quantizes refs/fp8/IN with scale 1 into dir; returns the codes and
 * dequant paths. */
static void quantize_fp8(sup_arena *a, const char *dir, const char *in, const char *format,
                         bool saturate, const char **qpath, const char **ypath)
{
    const char *one = sup_arena_printf(a, "%s/one.npy", dir);
    float v = 1.0f;
    assert_int_equal(rt_npy_write(one, QMC_DTYPE_F32, 0, NULL, &v), QMC_OK);
    *qpath = sup_arena_printf(a, "%s/q.npy", dir);
    *ypath = sup_arena_printf(a, "%s/y.npy", dir);
    const char *argv[] = {"quantize",
                          qt_data(a, sup_arena_printf(a, "refs/fp8/%s", in)),
                          "--format",
                          format,
                          "--scale",
                          one,
                          "--codes",
                          *qpath,
                          "--dequant",
                          *ypath,
                          saturate ? NULL : "--no-saturate",
                          NULL};
    run_ok(a, argv);
}

static void test_fp8_encode_files_through_cli(void **state)
{
    (void)state;
    sup_arena a = {0};
    char *dir = qt_tmpdir(&a);
    static const struct {
        const char *set;
        bool saturate;
    } sets[] = {{"onnxcast_sat1", true}, {"onnxcast_sat0", false}, {"mldtypes", false}};
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < 3; s++) {
            const char *q, *y;
            quantize_fp8(&a, dir, sup_arena_printf(&a, "%s_encode_in.npy", fp8_kinds[t].file),
                         fp8_kinds[t].format, sets[s].saturate, &q, &y);
            const char *ref =
                sup_arena_printf(&a, "refs/fp8/%s_encode_%s", fp8_kinds[t].file, sets[s].set);
            assert_same_npy(&a, q, qt_data(&a, sup_arena_printf(&a, "%s.codes.npy", ref)));
            assert_same_npy(&a, y, qt_data(&a, sup_arena_printf(&a, "%s.f32.npy", ref)));
        }
    qt_rmdir(dir);
    sup_arena_free(&a);
}

/* The decode tables: quantizing the 256 decoded values gives back the
 * decoded values bit for bit and the codes, except that E5M2's six NaN
 * codes all decode to one NaN, which encodes to the canonical NaN code. */
static void test_fp8_decode_files_through_cli(void **state)
{
    (void)state;
    sup_arena a = {0};
    char *dir = qt_tmpdir(&a);
    for (int t = 0; t < 2; t++) {
        const char *q, *y;
        quantize_fp8(&a, dir, sup_arena_printf(&a, "%s_decode.f32.npy", fp8_kinds[t].file),
                     fp8_kinds[t].format, false, &q, &y);
        const char *ref = sup_arena_printf(&a, "refs/fp8/%s_decode", fp8_kinds[t].file);
        assert_same_npy(&a, y, qt_data(&a, sup_arena_printf(&a, "%s.f32.npy", ref)));
        qt_npy got = qt_load(&a, q);
        qt_npy want = qt_load(&a, qt_data(&a, sup_arena_printf(&a, "%s.codes.npy", ref)));
        assert_int_equal(got.h.dtype, QMC_DTYPE_U8);
        assert_int_equal(got.h.count, 256);
        q_format f = q_format_from_name(fp8_kinds[t].format);
        for (int i = 0; i < 256; i++) {
            uint8_t g = ((uint8_t *)got.data)[i], w = ((uint8_t *)want.data)[i];
            if (q_fp8_is_nan(f, w))
                assert_int_equal(g, (w & 0x80) | (t == 0 ? 0x7F : 0x7E));
            else
                assert_int_equal(g, w);
        }
    }
    qt_rmdir(dir);
    sup_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onnx_cases_through_cli),
        cmocka_unit_test(test_fp8_encode_files_through_cli),
        cmocka_unit_test(test_fp8_decode_files_through_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
