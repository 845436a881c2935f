/* npytool: small .npy transformations the end-to-end tests need.
 *
 *   npytool reshape IN.npy OUT.npy D0 [D1 ...]   same data, new shape (-1 once)
 *   npytool i64 IN.npy OUT.npy                   int32 -> int64 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

static int load(const char *path, rt_mapped_file *f, rt_npy_header *h)
{
    char err[256];
    if (rt_file_map(path, f, err, sizeof err) != QMC_OK ||
        rt_npy_parse(f->data, f->size, h, err, sizeof err) != QMC_OK) {
        fprintf(stderr, "npytool: %s: %s\n", path, err);
        return 0;
    }
    return 1;
}

static int reshape(int argc, char **argv)
{
    rt_mapped_file f;
    rt_npy_header h;
    if (argc < 5 || argc - 4 > RT_MAX_RANK || !load(argv[2], &f, &h)) return 2;
    int64_t shape[RT_MAX_RANK], known = 1;
    int rank = argc - 4, infer = -1;
    for (int i = 0; i < rank; i++) {
        shape[i] = atoll(argv[4 + i]);
        if (shape[i] == -1)
            infer = i;
        else
            known *= shape[i];
    }
    if (infer >= 0 && known > 0) shape[infer] = h.count / known, known *= shape[infer];
    if (known != h.count) {
        fprintf(stderr, "npytool: %s has %lld elements, not %lld\n", argv[2], (long long)h.count,
                (long long)known);
        return 2;
    }
    return rt_npy_write(argv[3], h.dtype, rank, shape, f.data + h.data_offset) == QMC_OK ? 0 : 2;
}

static int to_i64(int argc, char **argv)
{
    rt_mapped_file f;
    rt_npy_header h;
    if (argc != 4 || !load(argv[2], &f, &h)) return 2;
    if (h.dtype != QMC_DTYPE_I32) return fprintf(stderr, "npytool: %s is not int32\n", argv[2]), 2;
    int64_t *v = malloc(sizeof *v * (size_t)(h.count + 1));
    for (int64_t i = 0; i < h.count; i++) {
        int32_t x;
        memcpy(&x, f.data + h.data_offset + 4 * i, 4);
        v[i] = x;
    }
    int rc = rt_npy_write(argv[3], QMC_DTYPE_I64, h.rank, h.shape, v) == QMC_OK ? 0 : 2;
    free(v);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "reshape") == 0) return reshape(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "i64") == 0) return to_i64(argc, argv);
    fprintf(stderr, "usage: npytool reshape IN OUT D0 [D1 ...] | npytool i64 IN OUT\n");
    return 2;
}
