/* test_rt_weights.c: the checksum (known values, pieces), loading
 * external weights files (success, default path, size and checksum
 * mismatches, missing file, models without external weights), workspace
 * alignment and the clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rt.h"

/* Known values from an independent implementation of the checksum (the
 * lanes, the tail and the fold as runtime/weights.c describes them, in
 * Python); pieces of whole blocks give what one call gives. */
static void test_checksum_known_values(void **state)
{
    (void)state;
    assert_true(qmc_checksum("", 0) == 0xcccfd0006df567cfu);
    assert_true(qmc_checksum(NULL, 0) == 0xcccfd0006df567cfu);
    assert_true(qmc_checksum("a", 1) == 0x3555a43113284603u);
    assert_true(qmc_checksum("foobar", 6) == 0xe3d7f6aeaaf7060au);
    /* the fake model's weights file: float32 0, 1, ..., 11 */
    float w[12];
    for (int i = 0; i < 12; i++) w[i] = (float)i;
    assert_true(qmc_checksum(w, sizeof w) == 0x1698c0840770b082u);
    /* three whole blocks and a tail of 8 bytes */
    uint8_t b[200];
    for (int i = 0; i < 200; i++) b[i] = (uint8_t)(i * 7 + 3);
    assert_true(qmc_checksum(b, sizeof b) == 0x56df90669c8fc2edu);
    rt_checksum c;
    rt_checksum_begin(&c);
    rt_checksum_update(&c, b, 64);
    rt_checksum_update(&c, b + 64, 128);
    rt_checksum_update(&c, b + 192, 8);
    assert_true(rt_checksum_end(&c) == qmc_checksum(b, sizeof b));
    /* one flipped bit anywhere changes it */
    for (int bit = 0; bit < 200 * 8; bit += 37) {
        b[bit / 8] ^= (uint8_t)(1u << bit % 8);
        assert_true(qmc_checksum(b, sizeof b) != 0x56df90669c8fc2edu);
        b[bit / 8] ^= (uint8_t)(1u << bit % 8);
    }
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static const char payload[] = "qmc weights: 0123456789abcdef";
static const void *base;

static qmc_model_desc weights_model(const char *file)
{
    qmc_model_desc m = {.name = "w",
                        .weights_file = file,
                        .weights_size = sizeof payload,
                        .weights_checksum = qmc_checksum(payload, sizeof payload),
                        .weights_base = &base};
    return m;
}

static void test_load_ok(void **state)
{
    (void)state;
    write_file("rt_weights_ok.bin", payload, sizeof payload);
    qmc_model_desc m = weights_model("rt_weights_ok.bin");
    base = NULL;
    assert_int_equal(qmc_load_weights(&m, NULL), QMC_OK); /* the compiled-in name */
    assert_non_null(base);
    assert_int_equal((uintptr_t)base % 4096, 0);
    assert_memory_equal(base, payload, sizeof payload);
    m.weights_file = "no-such-default.bin";
    base = NULL;
    assert_int_equal(qmc_load_weights(&m, "rt_weights_ok.bin"), QMC_OK); /* an explicit path */
    assert_memory_equal(base, payload, sizeof payload);
}

static void test_size_mismatch(void **state)
{
    (void)state;
    write_file("rt_weights_short.bin", payload, sizeof payload - 1);
    qmc_model_desc m = weights_model("rt_weights_short.bin");
    base = NULL;
    char err[256];
    assert_int_equal(qmc_load_weights(&m, NULL), QMC_ERR_CHECKSUM);
    assert_int_equal(rt_load_weights(&m, NULL, err, sizeof err), QMC_ERR_CHECKSUM);
    assert_null(base);
    assert_string_equal(err, "weights file 'rt_weights_short.bin' has 29 bytes but the model 'w' "
                             "was compiled with one of 30 bytes");
}

static void test_checksum_mismatch(void **state)
{
    (void)state;
    char other[sizeof payload];
    memcpy(other, payload, sizeof payload);
    other[3] ^= 1;
    write_file("rt_weights_bad.bin", other, sizeof other);
    qmc_model_desc m = weights_model("rt_weights_bad.bin");
    base = NULL;
    char err[256];
    assert_int_equal(qmc_load_weights(&m, NULL), QMC_ERR_CHECKSUM);
    assert_int_equal(rt_load_weights(&m, NULL, err, sizeof err), QMC_ERR_CHECKSUM);
    assert_null(base);
    assert_non_null(strstr(err, "weights file 'rt_weights_bad.bin' does not match the model 'w' "
                                "(checksum 0x"));
}

static void test_missing_file(void **state)
{
    (void)state;
    unlink("rt_weights_none.bin");
    qmc_model_desc m = weights_model("rt_weights_none.bin");
    base = NULL;
    char err[256];
    assert_int_equal(qmc_load_weights(&m, NULL), QMC_ERR_IO);
    assert_int_equal(rt_load_weights(&m, NULL, err, sizeof err), QMC_ERR_IO);
    assert_null(base);
    assert_string_equal(
        err, "weights file 'rt_weights_none.bin': cannot open: No such file or directory");
    assert_int_equal(rt_load_weights(&m, ".", err, sizeof err), QMC_ERR_IO);
    assert_string_equal(err, "weights file '.': cannot read: Is a directory");
}

static void test_bad_arguments(void **state)
{
    (void)state;
    qmc_model_desc built_in = {.name = "b"};
    assert_int_equal(qmc_load_weights(&built_in, "rt_weights_ok.bin"), QMC_ERR_INVALID_ARGUMENT);
    assert_int_equal(qmc_load_weights(NULL, NULL), QMC_ERR_INVALID_ARGUMENT);
    qmc_model_desc unnamed = weights_model(NULL);
    assert_int_equal(qmc_load_weights(&unnamed, NULL), QMC_ERR_INVALID_ARGUMENT);
}

static void test_workspace_alignment(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 63, 64, 65, 1000, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *w = qmc_workspace_alloc(sizes[i]);
        assert_non_null(w);
        assert_int_equal((uintptr_t)w % 64, 0);
        memset(w, 0xab, sizes[i]);
        qmc_workspace_free(w);
    }
    qmc_workspace_free(NULL);
    assert_null(qmc_workspace_alloc(SIZE_MAX - 10));
}

static void test_clock(void **state)
{
    (void)state;
    uint64_t a = qmc_now_ns();
    usleep(2000);
    uint64_t b = qmc_now_ns();
    assert_true(b - a >= 2000000);
    assert_true(b - a < 10000000000u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_known_values), cmocka_unit_test(test_load_ok),
        cmocka_unit_test(test_size_mismatch),         cmocka_unit_test(test_checksum_mismatch),
        cmocka_unit_test(test_missing_file),          cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_workspace_alignment),   cmocka_unit_test(test_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
