/* test_npy.c: the .npy reader (rt_npy_parse: versions 1-3, every rejection
 * with its reason), the header encoder round trip, and rt_npy_write's
 * atomicity (no temporary file is ever left behind). */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"
#include "unit.h"

/* An .npy image: magic, version, dict padded with spaces to a multiple of
 * 64 and ended by '\n', then data_size bytes (0x5a). */
static uint8_t *npy(int version, const char *dict, size_t data_size, size_t *size)
{
    size_t prefix = version == 1 ? 10 : 12, dlen = strlen(dict);
    size_t total = (prefix + dlen + 1 + 63) / 64 * 64, hlen = total - prefix;
    *size = total + data_size;
    uint8_t *b = malloc(*size + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)version;
    b[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++) b[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(b + prefix, dict, dlen);
    memset(b + prefix + dlen, ' ', hlen - dlen - 1);
    b[total - 1] = '\n';
    memset(b + total, 0x5a, data_size);
    return b;
}

static void expect_ok(int version, const char *dict, size_t data_size, rt_npy_header *h)
{
    size_t size;
    uint8_t *b = npy(version, dict, data_size, &size);
    char err[256] = "";
    assert_int_equal(rt_npy_parse(b, size, h, err, sizeof err), QMC_OK);
    assert_string_equal(err, "");
    assert_int_equal(h->data_offset, size - data_size);
    free(b);
}

static void expect_reject_buf(const void *b, size_t size, const char *reason)
{
    rt_npy_header h;
    char err[256] = "";
    assert_int_equal(rt_npy_parse(b, size, &h, err, sizeof err), QMC_ERR_FORMAT);
    assert_string_equal(err, reason);
}

static void expect_reject(const char *dict, size_t data_size, const char *reason)
{
    size_t size;
    uint8_t *b = npy(1, dict, data_size, &size);
    expect_reject_buf(b, size, reason);
    free(b);
}

static void test_versions(void **state)
{
    (void)state;
    rt_npy_header h;
    for (int v = 1; v <= 3; v++) {
        expect_ok(v, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 48, &h);
        assert_int_equal(h.dtype, QMC_DTYPE_F32);
        assert_int_equal(h.rank, 2);
        assert_int_equal(h.shape[0], 3);
        assert_int_equal(h.shape[1], 4);
        assert_int_equal(h.count, 12);
        assert_int_equal(h.data_bytes, 48);
        assert_int_equal(h.data_offset, 128); /* padded to a multiple of 64 */
    }
    /* keys in any order, double quotes, no trailing comma, spare data */
    expect_ok(1, "{\"shape\": (5,), \"fortran_order\": False, \"descr\": \"<i8\"}", 48, &h);
    assert_int_equal(h.dtype, QMC_DTYPE_I64);
    assert_int_equal(h.rank, 1);
    assert_int_equal(h.data_bytes, 40);
    /* a scalar and an empty array */
    expect_ok(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (), }", 4, &h);
    assert_int_equal(h.rank, 0);
    assert_int_equal(h.count, 1);
    expect_ok(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 7), }", 0, &h);
    assert_int_equal(h.count, 0);
    /* every dtype code */
    static const struct {
        const char *descr;
        qmc_dtype dtype;
    } codes[] = {{"<f4", QMC_DTYPE_F32}, {"<f8", QMC_DTYPE_F64}, {"<f2", QMC_DTYPE_F16},
                 {"|i1", QMC_DTYPE_I8},  {"|u1", QMC_DTYPE_U8},  {"<i2", QMC_DTYPE_I16},
                 {"<u2", QMC_DTYPE_U16}, {"<i4", QMC_DTYPE_I32}, {"<u4", QMC_DTYPE_U32},
                 {"<i8", QMC_DTYPE_I64}, {"<u8", QMC_DTYPE_U64}, {"|b1", QMC_DTYPE_BOOL},
                 {"=f4", QMC_DTYPE_F32}, {"<i1", QMC_DTYPE_I8}};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }",
                 codes[i].descr);
        expect_ok(1, dict, 16, &h);
        assert_int_equal(h.dtype, codes[i].dtype);
    }
}

static void test_rejections(void **state)
{
    (void)state;
    expect_reject_buf("\x93NUMPY\x01\x00\x00", 9, "not an .npy file (bad magic)");
    expect_reject_buf("\x93NUMPZ\x01\x00\x00\x00", 10, "not an .npy file (bad magic)");
    expect_reject_buf("", 0, "not an .npy file (bad magic)");
    expect_reject_buf("\x93NUMPY\x02\x00\x00\x00", 10, "truncated header");
    expect_reject_buf("\x93NUMPY\x04\x00\x00\x00\x00\x00", 12, "unsupported .npy format version");
    expect_reject_buf("\x93NUMPY\x01\x00\x10\x00{}", 12, "truncated header");
    expect_reject_buf("\x93NUMPY\x03\x00\xff\xff\xff\xff{}", 14, "truncated header");
    expect_reject("['descr']", 0, "header is not a dictionary");
    expect_reject("{descr: '<f4'}", 0, "header dictionary is malformed");
    expect_reject("{'descr' '<f4'}", 0, "header dictionary is malformed");
    expect_reject("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8,
                  "'descr' is not a simple type string");
    expect_reject("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8,
                  "unsupported dtype '>f4' (big-endian or structured)");
    expect_reject("{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", 8,
                  "unsupported dtype '|f4' (big-endian or structured)");
    expect_reject("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16,
                  "unsupported dtype '<c8' (big-endian or structured)");
    expect_reject("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8,
                  "Fortran-ordered arrays are not supported");
    expect_reject("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8,
                  "'fortran_order' is not a bool");
    expect_reject("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8,
                  "'shape' is not a tuple");
    expect_reject("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8,
                  "'shape' holds something other than integers");
    expect_reject("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}", 24,
                  "'shape' tuple is not closed");
    expect_reject("{'descr': '<f4', 'fortran_order': False, 'shape': (92233720368547758070,), }", 8,
                  "a dimension is too large");
    expect_reject("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4,
                  "more than 8 dimensions");
    expect_reject("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
                  8, "the shape is too large");
    expect_reject("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), }", 8,
                  "the shape is too large");
    expect_reject("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", 8,
                  "header has an unknown key");
    expect_reject("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) 'x'", 8,
                  "header dictionary is not closed");
    expect_reject("{'descr': '<f4', 'shape': (2,), }", 8,
                  "header lacks 'descr', 'fortran_order' or 'shape'");
    expect_reject("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20,
                  "truncated data: the shape needs 24 bytes, the file has 20");
    expect_reject("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 0,
                  "truncated data: the shape needs 4 bytes, the file has 0");
}

static void test_header_encode(void **state)
{
    (void)state;
    char out[RT_NPY_HEADER_MAX];
    int64_t shape[8] = {500, 64};
    size_t n = rt_npy_header_encode(QMC_DTYPE_F32, 2, shape, out, sizeof out);
    assert_int_equal(n, 128);
    static const char expect[] =
        "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (500, 64,), }";
    assert_memory_equal(out, expect, sizeof expect - 1);
    for (size_t i = sizeof expect - 1; i < 127; i++) assert_int_equal(out[i], ' ');
    assert_int_equal(out[127], '\n');
    /* the round trip through the parser, for every dtype and rank */
    const qmc_dtype dtypes[] = {QMC_DTYPE_F32, QMC_DTYPE_F64, QMC_DTYPE_F16, QMC_DTYPE_I8,
                                QMC_DTYPE_U8,  QMC_DTYPE_I16, QMC_DTYPE_U16, QMC_DTYPE_I32,
                                QMC_DTYPE_U32, QMC_DTYPE_I64, QMC_DTYPE_U64, QMC_DTYPE_BOOL};
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++)
        for (int rank = 0; rank <= 8; rank++) {
            int64_t s[8];
            int64_t count = 1;
            for (int i = 0; i < rank; i++) s[i] = i + 1, count *= s[i];
            n = rt_npy_header_encode(dtypes[d], rank, s, out, sizeof out);
            assert_true(n > 0 && n % 64 == 0);
            size_t bytes = (size_t)count * qmc_dtype_size(dtypes[d]);
            uint8_t *file = calloc(1, n + bytes);
            memcpy(file, out, n);
            rt_npy_header h;
            char err[256];
            assert_int_equal(rt_npy_parse(file, n + bytes, &h, err, sizeof err), QMC_OK);
            assert_int_equal(h.dtype, dtypes[d]);
            assert_int_equal(h.rank, rank);
            assert_memory_equal(h.shape, s, sizeof s[0] * (size_t)rank);
            assert_int_equal(h.data_offset, n);
            assert_int_equal(h.data_bytes, bytes);
            free(file);
        }
    /* the longest header: 8 dimensions of 19 digits fits, without overrunning */
    int64_t big[8];
    for (int i = 0; i < 8; i++) big[i] = INT64_MAX;
    n = rt_npy_header_encode(QMC_DTYPE_F32, 8, big, out, sizeof out);
    assert_int_equal(n, 256);
    assert_non_null(memmem(out, n, "9223372036854775807, 9223372036854775807,), }", 45));
    /* what cannot be encoded */
    assert_int_equal(rt_npy_header_encode(QMC_DTYPE_BF16, 1, shape, out, sizeof out), 0);
    assert_int_equal(rt_npy_header_encode(QMC_DTYPE_F32, 9, big, out, sizeof out), 0);
    assert_int_equal(rt_npy_header_encode(QMC_DTYPE_F32, -1, big, out, sizeof out), 0);
    assert_int_equal(rt_npy_header_encode(QMC_DTYPE_F32, 1, shape, out, 100), 0);
    int64_t negative[1] = {-1};
    assert_int_equal(rt_npy_header_encode(QMC_DTYPE_F32, 1, negative, out, sizeof out), 0);
}

/* Names in dir other than "." and "..", joined by spaces. */
static void list_dir(const char *dir, char *out, size_t size)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    out[0] = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? " " : "", e->d_name);
    closedir(d);
}

static void test_write_atomic(void **state)
{
    (void)state;
    char dir[] = "/tmp/qmc-unit-npy-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], names[512];
    snprintf(path, sizeof path, "%s/out.npy", dir);
    float data[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    assert_int_equal(rt_npy_write(path, QMC_DTYPE_F32, 2, shape, data), QMC_OK);
    list_dir(dir, names, sizeof names);
    assert_string_equal(names, "out.npy");
    rt_mapped_file f;
    char err[256];
    assert_int_equal(rt_file_map(path, &f, err, sizeof err), QMC_OK);
    rt_npy_header h;
    assert_int_equal(rt_npy_parse(f.data, f.size, &h, err, sizeof err), QMC_OK);
    assert_int_equal(f.size, 128 + sizeof data);
    assert_memory_equal(f.data + h.data_offset, data, sizeof data);
    rt_file_unmap(&f);
    /* the usual permissions, not mkstemp's 0600 */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0666 & ~mask);
    /* replacing an existing file */
    data[0] = 42;
    assert_int_equal(rt_npy_write(path, QMC_DTYPE_F32, 2, shape, data), QMC_OK);
    list_dir(dir, names, sizeof names);
    assert_string_equal(names, "out.npy");
    /* failures leave nothing: a missing folder, a path that is a folder */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/missing/out.npy", dir);
    assert_int_equal(rt_npy_write(bad, QMC_DTYPE_F32, 2, shape, data), QMC_ERR_IO);
    snprintf(bad, sizeof bad, "%s/sub", dir);
    assert_int_equal(mkdir(bad, 0777), 0);
    assert_int_equal(rt_npy_write(bad, QMC_DTYPE_F32, 2, shape, data), QMC_ERR_IO);
    list_dir(dir, names, sizeof names);
    assert_true(strcmp(names, "out.npy sub") == 0 || strcmp(names, "sub out.npy") == 0);
    list_dir(bad, names, sizeof names);
    assert_string_equal(names, "");
    /* an unencodable array is refused before anything is created */
    assert_int_equal(rt_npy_write(path, QMC_DTYPE_BF16, 2, shape, data), QMC_ERR_INVALID_ARGUMENT);
    rmdir(bad);
    unlink(path);
    assert_int_equal(rmdir(dir), 0); /* empty: nothing was left behind */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_header_encode),
        cmocka_unit_test(test_write_atomic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
