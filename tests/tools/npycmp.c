/* npycmp: compares two .npy files for tests.
 *
 *   npycmp A.npy B.npy                 dtype, shape and bytes identical
 *   npycmp A.npy B.npy --atol X        float32 (or int) values within X
 *   npycmp A.npy B.npy --rtol R        |a-b| <= R * max(|b|, 1e-6 * max|B|)
 *   npycmp A.npy B.npy --rtol-max R    |a-b| <= R * max|B| (relative to the data's scale)
 *   npycmp A.npy B.npy --rtol-range R  |a-b| <= R * (max B - min B) (relative to its range)
 *   npycmp A.npy B.npy --top1 F        the largest value of each row (last axis) at the
 *                                      same index in at least the fraction F of the rows
 *
 * Prints `max_abs_diff=... max_rel_diff=... count=...` and exits 0 when the
 * files agree, 1 when they differ (with the first differing index), 2 on
 * usage or file errors. NaNs compare equal only to NaNs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

static int load(const char *path, rt_mapped_file *f, rt_npy_header *h)
{
    char err[256];
    if (rt_file_map(path, f, err, sizeof err) != QMC_OK ||
        rt_npy_parse(f->data, f->size, h, err, sizeof err) != QMC_OK) {
        fprintf(stderr, "npycmp: %s: %s\n", path, err);
        return 0;
    }
    return 1;
}

static double value_at(const rt_npy_header *h, const uint8_t *base, int64_t i)
{
    const uint8_t *p = base + h->data_offset + (size_t)i * qmc_dtype_size(h->dtype);
    switch (h->dtype) {
    case QMC_DTYPE_F32: {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    case QMC_DTYPE_F64: {
        double v;
        memcpy(&v, p, 8);
        return v;
    }
    case QMC_DTYPE_I8: return *(const int8_t *)p;
    case QMC_DTYPE_U8: return *p;
    case QMC_DTYPE_I32: {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case QMC_DTYPE_I64: {
        int64_t v;
        memcpy(&v, p, 8);
        return (double)v;
    }
    default: return NAN;
    }
}

/* Rows (the last axis) whose largest values are at the same index. */
static int top1(const rt_npy_header *ha, const uint8_t *a, const rt_npy_header *hb,
                const uint8_t *b, double min_agree)
{
    int64_t cols = ha->rank ? ha->shape[ha->rank - 1] : 1, rows = cols ? ha->count / cols : 0,
            agree = 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t ia = 0, ib = 0;
        for (int64_t j = 1; j < cols; j++) {
            if (value_at(ha, a, r * cols + j) > value_at(ha, a, r * cols + ia)) ia = j;
            if (value_at(hb, b, r * cols + j) > value_at(hb, b, r * cols + ib)) ib = j;
        }
        agree += ia == ib;
    }
    double f = rows ? (double)agree / (double)rows : 1;
    printf("top1_agree=%lld/%lld (%.4f)\n", (long long)agree, (long long)rows, f);
    if (f < min_agree) {
        fprintf(stderr, "npycmp: top-1 agreement %.4f is below %g\n", f, min_agree);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 5) {
        fprintf(stderr,
                "usage: npycmp A.npy B.npy [--atol X | --rtol R | --rtol-max R | --rtol-range R | "
                "--top1 F]\n");
        return 2;
    }
    rt_mapped_file fa, fb;
    rt_npy_header ha, hb;
    if (!load(argv[1], &fa, &ha) || !load(argv[2], &fb, &hb)) return 2;
    if (ha.rank != hb.rank ||
        memcmp(ha.shape, hb.shape, sizeof ha.shape[0] * (size_t)ha.rank) != 0) {
        fprintf(stderr, "npycmp: shapes differ\n");
        return 1;
    }
    bool exact = argc == 3;
    double tol = exact ? 0 : atof(argv[4]);
    if (!exact && strcmp(argv[3], "--top1") == 0) return top1(&ha, fa.data, &hb, fb.data, tol);
    bool relative = !exact && strcmp(argv[3], "--rtol") == 0;
    bool relative_max = !exact && strcmp(argv[3], "--rtol-max") == 0;
    bool relative_range = !exact && strcmp(argv[3], "--rtol-range") == 0;
    if (!exact && !relative && !relative_max && !relative_range && strcmp(argv[3], "--atol") != 0) {
        fprintf(stderr, "npycmp: unknown option %s\n", argv[3]);
        return 2;
    }
    if (exact) {
        if (ha.dtype != hb.dtype) {
            fprintf(stderr, "npycmp: dtypes differ: %s vs %s\n", qmc_dtype_name(ha.dtype),
                    qmc_dtype_name(hb.dtype));
            return 1;
        }
        for (int64_t i = 0; i < ha.count; i++) {
            size_t es = qmc_dtype_size(ha.dtype);
            if (memcmp(fa.data + ha.data_offset + i * es, fb.data + hb.data_offset + i * es, es)) {
                fprintf(stderr, "npycmp: first difference at flat index %lld: %g vs %g\n",
                        (long long)i, value_at(&ha, fa.data, i), value_at(&hb, fb.data, i));
                return 1;
            }
        }
        printf("identical count=%lld\n", (long long)ha.count);
        return 0;
    }
    double max_b = 0, hi = -INFINITY, lo = INFINITY;
    for (int64_t i = 0; i < hb.count; i++) {
        double b = value_at(&hb, fb.data, i);
        max_b = fmax(max_b, fabs(b)), hi = fmax(hi, b), lo = fmin(lo, b);
    }
    double max_abs = 0, max_rel = 0;
    int64_t first_bad = -1;
    for (int64_t i = 0; i < ha.count; i++) {
        double a = value_at(&ha, fa.data, i), b = value_at(&hb, fb.data, i);
        if (isnan(a) || isnan(b)) {
            if (isnan(a) != isnan(b) && first_bad < 0) first_bad = i;
            continue;
        }
        double d = fabs(a - b), rel = d / fmax(fabs(b), 1e-6 * max_b + 1e-30);
        max_abs = fmax(max_abs, d);
        max_rel = fmax(max_rel, rel);
        double limit = relative_max ? tol * max_b : relative_range ? tol * (hi - lo) : tol;
        if (first_bad < 0 && (relative ? rel > tol : d > limit)) first_bad = i;
    }
    printf("max_abs_diff=%.3g max_rel_diff=%.3g count=%lld", max_abs, max_rel, (long long)ha.count);
    if (relative_range)
        printf(" range=%.6g (max_abs_diff/range=%.3g)", hi - lo, max_abs / (hi - lo));
    printf("\n");
    if (first_bad >= 0) {
        fprintf(stderr, "npycmp: flat index %lld: %.9g vs %.9g exceeds %s %g\n",
                (long long)first_bad, value_at(&ha, fa.data, first_bad),
                value_at(&hb, fb.data, first_bad),
                relative         ? "rtol"
                : relative_max   ? "rtol-max"
                : relative_range ? "rtol-range"
                                 : "atol",
                tol);
        return 1;
    }
    return 0;
}
