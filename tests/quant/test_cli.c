/* test_cli.c: `qmc quantize` as a user meets it: the summary line, the
 * codes and values it writes when it chooses the parameters (the library's,
 * byte for byte), and every kind of bad input: exit status 1, a
 * `qmc: error:` line that says what is wrong, and no output file left. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "qtest.h"

typedef struct fixture {
    sup_arena arena;
    char *dir;
} fixture;

static const char *path(fixture *f, const char *name)
{
    return sup_arena_printf(&f->arena, "%s/%s", f->dir, name);
}

static void write_f32(fixture *f, const char *name, int rank, const int64_t *shape, const float *v)
{
    assert_int_equal(rt_npy_write(path(f, name), QMC_DTYPE_F32, rank, shape, v), QMC_OK);
}

enum { R = 4, C = 64 };

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = qt_tmpdir(&f->arena);
    const int64_t xs[2] = {R, C}, s64[1] = {C}, s63[1] = {C - 1}, sb[2] = {R, 4}, sb2[2] = {R, 2};
    float *x = qt_normal(&f->arena, R * C, 11);
    write_f32(f, "x.npy", 2, xs, x);
    x[77] = NAN;
    write_f32(f, "xnan.npy", 2, xs, x);
    float tenth[C], zero = 0, nan = NAN, one = 1;
    for (int i = 0; i < C; i++) tenth[i] = 0.1f;
    write_f32(f, "s64.npy", 1, s64, tenth);
    write_f32(f, "s63.npy", 1, s63, tenth);
    write_f32(f, "sblock.npy", 2, sb, tenth);
    write_f32(f, "sblock2.npy", 2, sb2, tenth);
    write_f32(f, "szero.npy", 0, NULL, &zero);
    write_f32(f, "snan.npy", 0, NULL, &nan);
    write_f32(f, "sone.npy", 0, NULL, &one);
    write_f32(f, "scalar.npy", 0, NULL, &one);
    uint16_t inf16 = 0x7C00;
    assert_int_equal(rt_npy_write(path(f, "sinf16.npy"), QMC_DTYPE_F16, 0, NULL, &inf16), QMC_OK);
    int8_t xi8[R * C] = {0}, zp9[C];
    uint8_t zpu8[C] = {0}, one_u8 = 1;
    for (int i = 0; i < C; i++) zp9[i] = 9;
    assert_int_equal(rt_npy_write(path(f, "xi8.npy"), QMC_DTYPE_I8, 2, xs, xi8), QMC_OK);
    assert_int_equal(rt_npy_write(path(f, "zpu8.npy"), QMC_DTYPE_U8, 1, s64, zpu8), QMC_OK);
    assert_int_equal(rt_npy_write(path(f, "zp9.npy"), QMC_DTYPE_I8, 1, s64, zp9), QMC_OK);
    assert_int_equal(rt_npy_write(path(f, "zpfp8.npy"), QMC_DTYPE_U8, 0, NULL, &one_u8), QMC_OK);
    FILE *g = fopen(path(f, "garbage.npy"), "w");
    fputs("not an npy file\n", g);
    fclose(g);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    qt_rmdir(f->dir);
    sup_arena_free(&f->arena);
    free(f);
    return 0;
}

/* Runs `qmc quantize ARGS --codes c.npy --dequant d.npy`; returns stdout. */
static char *run(fixture *f, int want_status, char **err, const char *const *args)
{
    const char *argv[40];
    int k = 0;
    argv[k++] = "quantize";
    for (int i = 0; args[i]; i++) argv[k++] = args[i];
    argv[k++] = "--codes";
    argv[k++] = path(f, "c.npy");
    argv[k++] = "--dequant";
    argv[k++] = path(f, "d.npy");
    argv[k] = NULL;
    char *out, *e;
    int status = qt_run_qmc(&f->arena, argv, &out, &e);
    if (status != want_status)
        fail_msg("%s: exit %d, want %d; stderr: %s", args[1] ? args[1] : "", status, want_status,
                 e);
    if (err) *err = e;
    return out;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_errors(void **state)
{
    fixture *f = *state;
    const char *x = path(f, "x.npy");
    const struct {
        const char *const *args;
        const char *want;
    } cases[] = {
        {ARGS(path(f, "xi8.npy"), "--format", "int8"), "expected float32 data, not i8"},
        {ARGS(path(f, "scalar.npy"), "--format", "int8", "--axis", "0"), "is a scalar"},
        {ARGS(x, "--format", "int8", "--axis", "2"), "axis 2 is out of range"},
        {ARGS(x, "--format", "int8", "--axis", "-3"), "axis -3 is out of range"},
        {ARGS(x, "--format", "int8", "--block", "48"), "block size 48 does not divide dimension 1"},
        {ARGS(x, "--format", "int8", "--block", "0"), "positive integer"},
        {ARGS(x, "--format", "int8", "--block", "1x"), "takes an integer"},
        {ARGS(x, "--format", "int8", "--scale", path(f, "szero.npy")), "finite and nonzero"},
        {ARGS(x, "--format", "int8", "--scale", path(f, "snan.npy")), "finite and nonzero"},
        {ARGS(x, "--format", "fp8e4m3", "--scale", path(f, "sinf16.npy")), "finite and nonzero"},
        {ARGS(x, "--format", "int8", "--scale", path(f, "xi8.npy")), "float32 or float16"},
        {ARGS(x, "--format", "int8", "--axis", "1", "--scale", path(f, "s63.npy")),
         "does not fit x of shape (4, 64) with axis 1: expected (64,)"},
        {ARGS(x, "--format", "int8", "--axis", "0", "--scale", path(f, "s64.npy")),
         "expected (4,)"},
        {ARGS(x, "--format", "int4", "--block", "16", "--scale", path(f, "sblock2.npy")),
         "with axis 1 and block 16: expected (4, 4)"},
        {ARGS(x, "--format", "int8", "--block", "32", "--scale", path(f, "sblock.npy")),
         "expected (4, 2)"},
        {ARGS(x, "--format", "int8", "--axis", "1", "--scale", path(f, "s64.npy"), "--zero-point",
              path(f, "zpu8.npy")),
         "int8 zero points must be i8, not u8"},
        {ARGS(x, "--format", "int4", "--axis", "1", "--scale", path(f, "s64.npy"), "--zero-point",
              path(f, "zp9.npy")),
         "outside the int4 range"},
        {ARGS(x, "--format", "int8", "--axis", "1", "--scale", path(f, "s64.npy"), "--zero-point",
              path(f, "sone.npy")),
         "shape of the scales"},
        {ARGS(x, "--format", "fp8e4m3", "--scale", path(f, "sone.npy"), "--zero-point",
              path(f, "zpfp8.npy")),
         "zero points must be 0"},
        {ARGS(path(f, "missing.npy"), "--format", "int8"), "cannot read"},
        {ARGS(path(f, "garbage.npy"), "--format", "int8"), "is not a valid .npy file"},
        {ARGS(x, "--format", "int8", "--scale", path(f, "missing.npy")), "cannot read"},
        {ARGS(x, "--format", "int7"), "unknown format 'int7'"},
        {ARGS(x, "--format", "f32"), "unknown format 'f32'"},
        {ARGS(x, "--axis", "0"), "--format is required"},
        {ARGS("--format", "int8"), "no input file"},
        {ARGS(x, "--format", "int8", "--zero-point", path(f, "zpu8.npy")), "needs --scale"},
        {ARGS(x, "--format", "fp8e5m2", "--asymmetric"), "symmetric only"},
        {ARGS(path(f, "xnan.npy"), "--format", "int8"), "element 77 is nan"},
        {ARGS(x, "--format", "int8", "--scale", path(f, "sone.npy"), "--clip", "mse"),
         "cannot be combined with --scale"},
        {ARGS(x, "--format", "int8", "--clip", "max"), "--clip takes minmax or mse"},
        {ARGS(x, "--format", "int8", "--scale-type", "bf16"), "--scale-type takes f32 or f16"},
        {ARGS(x, "--format", "int8", "--scael", "s.npy"), "did you mean '--scale'"},
        {ARGS(x, "--format", "int8", "extra.npy"), "unknown option 'extra.npy'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err;
        run(f, 1, &err, cases[i].args);
        if (!strstr(err, "qmc: error: ") || !strstr(err, cases[i].want))
            fail_msg("case %zu: stderr '%s' lacks '%s'", i, err, cases[i].want);
        assert_false(qt_exists(path(f, "c.npy")));
        assert_false(qt_exists(path(f, "d.npy")));
    }
    /* the same file for both outputs */
    const char *argv[] = {"quantize",       x,           "--format",       "int8", "--codes",
                          path(f, "c.npy"), "--dequant", path(f, "c.npy"), NULL};
    char *err;
    assert_int_equal(qt_run_qmc(&f->arena, argv, NULL, &err), 1);
    assert_non_null(strstr(err, "name the same file"));
    assert_false(qt_exists(path(f, "c.npy")));
    /* the second output cannot be written: the first must not stay */
    const char *argv3[] = {"quantize",  x,
                           "--format",  "int8",
                           "--codes",   path(f, "c.npy"),
                           "--dequant", "/nonexistent-dir/d.npy",
                           NULL};
    assert_int_equal(qt_run_qmc(&f->arena, argv3, NULL, &err), 1);
    assert_non_null(strstr(err, "qmc: error: cannot write '/nonexistent-dir/d.npy'"));
    assert_false(qt_exists(path(f, "c.npy")));
    /* an option without its value */
    const char *argv2[] = {"quantize", x, "--format", NULL};
    assert_int_equal(qt_run_qmc(&f->arena, argv2, NULL, &err), 1);
    assert_non_null(strstr(err, "qmc: error: option '--format' needs a value"));
}

static void test_summary_line(void **state)
{
    fixture *f = *state;
    const char *x = path(f, "x.npy");
    char *out =
        run(f, 0, NULL, ARGS(x, "--format", "int4", "--block", "32", "--scale-type", "f16"));
    assert_non_null(strstr(out, "format=int4 granularity=block32(axis1) scale=f16 zero_point=no "
                                "bits_per_element=4.5000 rmse="));
    assert_non_null(strstr(out, " max_abs_error="));
    assert_non_null(strstr(out, " sqnr_db="));
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out)); /* one line */
    out = run(f, 0, NULL, ARGS(x, "--format", "uint8", "--axis", "-2"));
    assert_non_null(strstr(out, "format=uint8 granularity=axis0 scale=f32 zero_point=yes "
                                "bits_per_element=8.6250"));
    out = run(f, 0, NULL, ARGS(x, "--format", "fp8e5m2"));
    assert_non_null(strstr(out, "format=fp8e5m2 granularity=tensor scale=f32 zero_point=no"));
    /* with given scales: ONNX's per-axis layout */
    out =
        run(f, 0, NULL, ARGS(x, "--format", "int8", "--axis", "1", "--scale", path(f, "s64.npy")));
    assert_non_null(strstr(out, "format=int8 granularity=axis1 scale=f32 zero_point=no"));
    char *err;
    run(f, 0, &err, ARGS(x, "--format", "int8", "--no-saturate"));
    assert_non_null(strstr(err, "qmc: warning: --no-saturate has no effect on int8"));
}

static void test_help(void **state)
{
    fixture *f = *state;
    const char *argv[] = {"quantize", "--help", NULL};
    char *out;
    assert_int_equal(qt_run_qmc(&f->arena, argv, &out, NULL), 0);
    assert_non_null(strstr(out, "usage: qmc quantize IN.npy --format F"));
    const char *top[] = {"--help", NULL};
    assert_int_equal(qt_run_qmc(&f->arena, top, &out, NULL), 0);
    assert_non_null(strstr(out, "quantize"));
}

/* Chosen parameters: the CLI writes what the library computes, codes one
 * per element in the documented dtype. */
static void test_choose_matches_library(void **state)
{
    fixture *f = *state;
    const int64_t shape[2] = {R, C};
    qt_npy x = qt_load(&f->arena, path(f, "x.npy"));
    static const struct {
        const char *format, *clip;
        bool symmetric;
    } runs[] = {{"int4", "mse", true},
                {"uint4", "minmax", false},
                {"int8", "mse", false},
                {"fp8e4m3", "mse", true}};
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        run(f, 0, NULL,
            ARGS(path(f, "x.npy"), "--format", runs[r].format, "--block", "16", "--clip",
                 runs[r].clip, runs[r].symmetric ? "--symmetric" : "--asymmetric", "--scale-type",
                 "f16"));
        q_choice c = {q_format_from_name(runs[r].format),
                      Q_GRAN_BLOCK,
                      1,
                      16,
                      runs[r].symmetric,
                      strcmp(runs[r].clip, "mse") == 0 ? Q_CLIP_MSE : Q_CLIP_MINMAX,
                      QMC_DTYPE_F16};
        q_params p;
        char err[200];
        assert_true(q_choose_params(&f->arena, x.data, 2, shape, &c, &p, err, sizeof err));
        uint8_t codes[R * C];
        float y[R * C];
        q_quantize(x.data, 2, shape, &p, codes);
        q_dequantize(codes, 2, shape, &p, y);
        qt_npy qc = qt_load(&f->arena, path(f, "c.npy")), qd = qt_load(&f->arena, path(f, "d.npy"));
        assert_int_equal(qc.h.dtype, q_format_code_dtype(c.format));
        assert_int_equal(qd.h.dtype, QMC_DTYPE_F32);
        assert_memory_equal(qc.data, codes, R * C);
        assert_memory_equal(qd.data, y, sizeof y);
        unlink(path(f, "c.npy"));
        unlink(path(f, "d.npy"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_summary_line),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_choose_matches_library),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
