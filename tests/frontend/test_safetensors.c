/* test_safetensors.c: the weights reader on in-memory images: valid files
 * of every supported dtype, every rejection with its exact reason, the
 * misaligned data read in place, and f16/bf16 widening. */
#include <math.h>
#include <unistd.h>

#include "frontend.h"
#include "unit.h"

static sup_arena arena;

/* An image: 8-byte length, the header, then data. The buffer is 16-byte
 * aligned (malloc), so data alignment is decided by the header length. */
static uint8_t *image(const char *json, const void *data, size_t data_size, size_t *size)
{
    size_t hlen = strlen(json);
    *size = 8 + hlen + data_size;
    uint8_t *buf = malloc(*size + 1);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, json, hlen);
    if (data_size) memcpy(buf + 8 + hlen, data, data_size);
    return buf;
}

static qmc_status parse(const char *json, const void *data, size_t data_size, fe_safetensors *st,
                        char *err)
{
    size_t size;
    uint8_t *buf = image(json, data, data_size, &size);
    /* the image must outlive st: keep it in the arena */
    uint8_t *kept = sup_arena_alloc(&arena, size + 1);
    memcpy(kept, buf, size);
    free(buf);
    memset(st, 0, sizeof *st);
    return fe_safetensors_parse(&arena, kept, size, st, err, 256);
}

static void expect_reject(const char *json, size_t data_size, const char *reason)
{
    static const uint8_t zeros[64];
    fe_safetensors st;
    char err[256] = "";
    assert_int_equal(parse(json, zeros, data_size, &st, err), QMC_ERR_FORMAT);
    assert_string_equal(err, reason);
}

static void test_valid(void **state)
{
    (void)state;
    /* header padded to 40 bytes so the data (at 48) is aligned */
    const char *json = "{\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[16,20]},"
                       "\"__metadata__\":{\"format\":\"pt\"},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                       "\"c\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[20,22]},"
                       "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[22,22]}}     ";
    size_t hlen = strlen(json);
    assert_int_equal((8 + hlen) % 4, 0);
    uint8_t data[24] = {0};
    float a[4] = {1, -2, 0.5f, 3};
    uint16_t b[2] = {0x3c00, 0xc000}, c = 0x3f80;
    memcpy(data, a, 16);
    memcpy(data + 16, b, 4);
    memcpy(data + 20, &c, 2);
    fe_safetensors st;
    char err[256] = "";
    assert_int_equal(parse(json, data, 22, &st, err), QMC_OK);
    assert_string_equal(err, "");
    assert_int_equal(st.count, 4); /* __metadata__ is not a tensor */
    /* sorted by name */
    assert_string_equal(st.tensors[0].name, "a");
    assert_string_equal(st.tensors[1].name, "b");
    assert_string_equal(st.tensors[2].name, "c");
    assert_string_equal(st.tensors[3].name, "e");
    const fe_tensor *ta = fe_safetensors_find(&st, "a");
    assert_non_null(ta);
    assert_int_equal(ta->dtype, QMC_DTYPE_F32);
    assert_int_equal(ta->rank, 2);
    assert_int_equal(ta->shape[0], 2);
    assert_int_equal(ta->shape[1], 2);
    assert_int_equal(ta->count, 4);
    assert_int_equal(ta->size, 16);
    assert_int_equal(ta->file_offset, 8 + hlen);
    assert_memory_equal(ta->data, a, 16);
    const fe_tensor *tb = fe_safetensors_find(&st, "b");
    assert_int_equal(tb->dtype, QMC_DTYPE_F16);
    assert_int_equal(tb->file_offset, 8 + hlen + 16);
    float out[4];
    fe_tensor_to_f32(tb, out);
    assert_true(out[0] == 1.0f && out[1] == -2.0f);
    const fe_tensor *tc = fe_safetensors_find(&st, "c");
    assert_int_equal(tc->rank, 0);
    assert_int_equal(tc->count, 1);
    fe_tensor_to_f32(tc, out);
    assert_true(out[0] == 1.0f);
    const fe_tensor *te = fe_safetensors_find(&st, "e");
    assert_int_equal(te->count, 0);
    assert_int_equal(te->size, 0);
    assert_null(fe_safetensors_find(&st, "__metadata__"));
    assert_null(fe_safetensors_find(&st, "d"));
    /* an empty header */
    assert_int_equal(parse("{}", NULL, 0, &st, err), QMC_OK);
    assert_int_equal(st.count, 0);
}

static void test_misaligned(void **state)
{
    (void)state;
    /* data at 8 + 61 = 69: f32 data there stays where it is (no copy of a
     * whole model when a header's length is odd) and converts all the same */
    const char *json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                       "\"h\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]}}      ";
    assert_int_equal((8 + strlen(json)) % 4, 1);
    uint8_t data[16];
    float w[3] = {1.5f, -0.25f, 1e30f};
    uint16_t h[2] = {0x3f80, 0xc040};
    memcpy(data, w, 12);
    memcpy(data + 12, h, 4);
    fe_safetensors st;
    char err[256];
    size_t size;
    uint8_t *buf = image(json, data, sizeof data, &size);
    memset(&st, 0, sizeof st);
    assert_int_equal(fe_safetensors_parse(&arena, buf, size, &st, err, sizeof err), QMC_OK);
    const fe_tensor *t = fe_safetensors_find(&st, "w");
    assert_ptr_equal(t->data, buf + 8 + strlen(json));
    assert_int_equal(t->file_offset, 8 + strlen(json));
    assert_false(t->mapped);
    float out[3];
    fe_tensor_to_f32(t, out);
    assert_memory_equal(out, w, sizeof w);
    fe_tensor_to_f32_range(t, 1, 3, out);
    assert_true(out[0] == -0.25f && out[1] == 1e30f);
    fe_tensor_to_f32(fe_safetensors_find(&st, "h"), out);
    assert_true(out[0] == 1.0f && out[1] == -3.0f);
    fe_tensor_release(t); /* not mapped: nothing happens to the buffer */
    assert_memory_equal(t->data, w, sizeof w);
    free(buf);
}

static void test_rejections(void **state)
{
    (void)state;
    fe_safetensors st;
    char err[256];
    uint8_t tiny[8] = {4, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(fe_safetensors_parse(&arena, tiny, 7, &st, err, sizeof err), QMC_ERR_FORMAT);
    assert_string_equal(err, "file is 7 bytes, too short for a header length");
    assert_int_equal(fe_safetensors_parse(&arena, tiny, 8, &st, err, sizeof err), QMC_ERR_FORMAT);
    assert_string_equal(err, "header length 4 exceeds the 0 bytes that follow it");
    uint8_t huge[10] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    assert_int_equal(fe_safetensors_parse(&arena, huge, 10, &st, err, sizeof err), QMC_ERR_FORMAT);
    assert_string_equal(err,
                        "header length 9223372036854775808 exceeds the 2 bytes that follow it");

    /* a header over 100 MiB is refused before it is read (calloc: untouched pages) */
    size_t big = ((size_t)100 << 20) + 9;
    uint8_t *huge_file = calloc(1, big + 8);
    assert_non_null(huge_file);
    huge_file[0] = 0x01, huge_file[2] = 0x40, huge_file[3] = 0x06; /* 0x06400001: 100 MiB + 1 */
    assert_int_equal(fe_safetensors_parse(&arena, huge_file, big + 8, &st, err, sizeof err),
                     QMC_ERR_FORMAT);
    assert_string_equal(err, "header length 104857601 is larger than 100 MiB");
    free(huge_file);
    expect_reject("{\"w\": 1,}", 0, "bad JSON in header at byte 16: expected a string key");
    expect_reject("[]", 0, "header is not a JSON object");
    expect_reject("{\"__metadata__\": 3}", 0, "'__metadata__' is not an object");
    expect_reject("{\"w\": 3}", 0, "entry 'w' is not an object");
    expect_reject("{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w' has no string 'dtype'");
    expect_reject("{\"w\": {\"dtype\": 4, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w' has no string 'dtype'");
    expect_reject("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w' has no 'shape' array");
    expect_reject("{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4,
                  "tensor 'w' has no 'data_offsets' pair");
    expect_reject("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4,
                  "tensor 'w' has no 'data_offsets' pair");
    expect_reject("{\"w\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 8,
                  "tensor 'w' has unsupported dtype 'F64' (qmc reads F32, F16 and BF16)");
    expect_reject("{\"w\": {\"dtype\": \"I8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1,
                  "tensor 'w' has unsupported dtype 'I8' (qmc reads F32, F16 and BF16)");
    expect_reject("{\"w\": {\"dtype\": \"f32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w' has unknown dtype 'f32' (qmc reads F32, F16 and BF16)");
    expect_reject(
        "{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}",
        4, "tensor 'w' has more than 8 dimensions");
    expect_reject("{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w' has a dimension that is not a non-negative integer");
    expect_reject("{\"w\": {\"dtype\": \"F32\", \"shape\": [1.0], \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w' has a dimension that is not a non-negative integer");
    expect_reject("{\"w\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}}", 4,
                  "tensor 'w' has a dimension that is not a non-negative integer");
    expect_reject("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], "
                  "\"data_offsets\": [0, 4]}}",
                  4, "tensor 'w' is too large");
    expect_reject("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4,
                  "tensor 'w' has data_offsets that are not non-negative integers");
    expect_reject("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4.0]}}", 4,
                  "tensor 'w' has data_offsets that are not non-negative integers");
    expect_reject("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", 8,
                  "tensor 'w' has data_offsets [8, 4] that end before they begin");
    expect_reject("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 7,
                  "tensor 'w' has data_offsets [4, 8] beyond the 7 bytes of data in the file");
    expect_reject("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, "
                  "18446744073709551615]}}",
                  4, "tensor 'w' has data_offsets that are not non-negative integers");
    expect_reject(
        "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 20]}}", 20,
        "tensor 'w' has data_offsets [0, 20] (20 bytes) but its shape and dtype need 24 bytes");
    expect_reject(
        "{\"w\": {\"dtype\": \"BF16\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8,
        "tensor 'w' has data_offsets [0, 8] (8 bytes) but its shape and dtype need 6 bytes");
    expect_reject("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                  " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
                  12, "tensors 'a' and 'b' overlap in the data section");
    /* overlap found whatever the order in the header */
    expect_reject("{\"b\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [6, 10]},"
                  " \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
                  12, "tensors 'a' and 'b' overlap in the data section");
    expect_reject("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                  " \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
                  8, "bad JSON in header at byte 70: duplicate key in object");
}

static void test_no_overlap_edges(void **state)
{
    (void)state;
    /* adjacent tensors and empty tensors at the same offset are fine */
    fe_safetensors st;
    char err[256];
    static const uint8_t zeros[16];
    assert_int_equal(
        parse("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
              " \"z\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]},"
              " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}",
              zeros, 16, &st, err),
        QMC_OK);
    assert_int_equal(st.count, 3);
}

static float half(uint16_t h)
{
    fe_tensor t = {.dtype = QMC_DTYPE_F16, .rank = 1, .count = 1, .data = &h, .size = 2};
    float f;
    fe_tensor_to_f32(&t, &f);
    return f;
}

static float brain(uint16_t h)
{
    fe_tensor t = {.dtype = QMC_DTYPE_BF16, .rank = 1, .count = 1, .data = &h, .size = 2};
    float f;
    fe_tensor_to_f32(&t, &f);
    return f;
}

static void test_f16_widening(void **state)
{
    (void)state;
    assert_true(half(0x3c00) == 1.0f);
    assert_true(half(0xc000) == -2.0f);
    assert_true(half(0x3555) == 0x1.554p-2f);
    assert_true(half(0x7bff) == 65504.0f);     /* largest normal */
    assert_true(half(0x0400) == 0x1p-14f);     /* smallest normal */
    assert_true(half(0x0001) == 0x1p-24f);     /* smallest subnormal */
    assert_true(half(0x03ff) == 0x1.ff8p-15f); /* largest subnormal */
    assert_true(half(0x0200) == 0x1p-15f);
    assert_true(half(0x8001) == -0x1p-24f);
    float z = half(0x0000), nz = half(0x8000);
    assert_true(z == 0.0f && !signbit(z));
    assert_true(nz == 0.0f && signbit(nz));
    assert_true(isinf(half(0x7c00)) && half(0x7c00) > 0);
    assert_true(isinf(half(0xfc00)) && half(0xfc00) < 0);
    assert_true(isnan(half(0x7e00)));
    assert_true(isnan(half(0x7c01)));
    assert_true(isnan(half(0xfe00)));
    /* every finite f16 widens exactly: compare with a double computation */
    for (uint32_t h = 0; h < 0x10000; h++) {
        uint32_t e = h >> 10 & 0x1f, m = h & 0x3ff;
        if (e == 0x1f) continue;
        double v = e ? ldexp(1.0 + m / 1024.0, (int)e - 15) : ldexp(m / 1024.0, -14);
        if (h & 0x8000) v = -v;
        assert_true(half((uint16_t)h) == (float)v);
    }
}

static void test_bf16_widening(void **state)
{
    (void)state;
    assert_true(brain(0x3f80) == 1.0f);
    assert_true(brain(0xc040) == -3.0f);
    assert_true(brain(0x0001) == 0x1p-133f); /* subnormal */
    assert_true(brain(0x7f7f) == 0x1.fep127f);
    assert_true(isinf(brain(0x7f80)));
    assert_true(isnan(brain(0x7fc0)));
    assert_true(signbit(brain(0x8000)));
}

static void test_open(void **state)
{
    (void)state;
    char path[] = "/tmp/qmc-unit-st-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t size;
    float w[2] = {1, 2};
    uint8_t *buf =
        image("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   ", w, 8, &size);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    close(fd);
    free(buf);
    fe_safetensors st;
    char err[256] = "";
    assert_int_equal(fe_safetensors_open(&arena, path, &st, err, sizeof err), QMC_OK);
    assert_string_equal(st.path, path);
    assert_int_equal(st.count, 1);
    assert_memory_equal(fe_safetensors_find(&st, "w")->data, w, 8);
    fe_safetensors_close(&st);
    unlink(path);
    assert_int_equal(fe_safetensors_open(&arena, path, &st, err, sizeof err), QMC_ERR_IO);
    assert_string_equal(err, "cannot open: No such file or directory");
}

static int teardown(void **state)
{
    (void)state;
    sup_arena_free(&arena);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),        cmocka_unit_test(test_misaligned),
        cmocka_unit_test(test_rejections),   cmocka_unit_test(test_no_overlap_edges),
        cmocka_unit_test(test_f16_widening), cmocka_unit_test(test_bf16_widening),
        cmocka_unit_test(test_open),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
