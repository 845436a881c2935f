/* mknpy: writes a small .npy file (or raw bytes) for the runtime's tests.
 *
 *   mknpy OUT.npy DTYPE SHAPE VALUES     SHAPE "3,4" ("" for a scalar),
 *   mknpy --raw OUT DTYPE SHAPE VALUES   VALUES "1,2.5,-3" or "arange"
 *
 * DTYPE is a model dtype name (f32, f64, i32, i64, u8, ...). The values are
 * repeated cyclically to fill the shape. Exit status 2 on usage errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* A number as given: integers keep all 64 bits. */
typedef struct value {
    double d;
    long long i;
} value;

static void store(qmc_dtype dtype, void *p, value v)
{
    switch (dtype) {
    case QMC_DTYPE_F32: {
        float f = (float)v.d;
        memcpy(p, &f, 4);
        break;
    }
    case QMC_DTYPE_F64: memcpy(p, &v.d, 8); break;
    case QMC_DTYPE_I8: *(int8_t *)p = (int8_t)v.i; break;
    case QMC_DTYPE_U8:
    case QMC_DTYPE_BOOL: *(uint8_t *)p = (uint8_t)v.i; break;
    case QMC_DTYPE_I16: {
        int16_t x = (int16_t)v.i;
        memcpy(p, &x, 2);
        break;
    }
    case QMC_DTYPE_I32: {
        int32_t x = (int32_t)v.i;
        memcpy(p, &x, 4);
        break;
    }
    case QMC_DTYPE_I64: {
        int64_t x = v.i;
        memcpy(p, &x, 8);
        break;
    }
    default: fprintf(stderr, "mknpy: unsupported dtype\n"); exit(2);
    }
}

/* "1,2.5,-3" into out; the count, -1 if malformed. */
static int parse_list(const char *s, value *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end, *iend;
        out[n].d = strtod(s, &end);
        out[n].i = strtoll(s, &iend, 10);
        if (end == s) return -1;
        if (iend != end) out[n].i = (long long)out[n].d;
        n++;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

int main(int argc, char **argv)
{
    bool raw = argc > 1 && strcmp(argv[1], "--raw") == 0;
    if (argc != 5 + raw) {
        fprintf(stderr, "usage: mknpy [--raw] OUT DTYPE SHAPE VALUES\n");
        return 2;
    }
    const char *out = argv[1 + raw], *values = argv[4 + raw];
    qmc_dtype dtype = rt_dtype_from_name(argv[2 + raw]);
    static value dims[RT_MAX_RANK + 1], vals[4096];
    int rank = parse_list(argv[3 + raw], dims, RT_MAX_RANK + 1);
    bool arange = strcmp(values, "arange") == 0;
    int nv = arange ? 0 : parse_list(values, vals, 4096);
    if (dtype == QMC_DTYPE_INVALID || rank < 0 || rank > RT_MAX_RANK || nv < 0 ||
        (!arange && !nv)) {
        fprintf(stderr, "mknpy: bad dtype, shape or values\n");
        return 2;
    }
    int64_t shape[RT_MAX_RANK], count = 1;
    for (int i = 0; i < rank; i++) count *= shape[i] = dims[i].i;
    size_t es = qmc_dtype_size(dtype);
    uint8_t *data = calloc((size_t)count + 1, es);
    for (int64_t i = 0; i < count; i++)
        store(dtype, data + i * es, arange ? (value){(double)i, i} : vals[i % nv]);
    qmc_status st;
    if (raw) {
        rt_write_piece piece = {data, (size_t)count * es};
        st = rt_file_write_atomic(out, &piece, 1, NULL, 0);
    } else {
        st = rt_npy_write(out, dtype, rank, shape, data);
    }
    free(data);
    if (st != QMC_OK) fprintf(stderr, "mknpy: cannot write %s: %s\n", out, qmc_status_string(st));
    return st == QMC_OK ? 0 : 2;
}
