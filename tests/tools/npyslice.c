/* npyslice: writes rows [START, END) of an .npy file's first axis to a new
 * .npy file, for tests that need part of a shared data file.
 *
 *   npyslice IN.npy START END OUT.npy */
#include <stdio.h>
#include <stdlib.h>

#include "rt.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: npyslice IN.npy START END OUT.npy\n");
        return 2;
    }
    rt_mapped_file f;
    rt_npy_header h;
    char err[256];
    if (rt_file_map(argv[1], &f, err, sizeof err) != QMC_OK ||
        rt_npy_parse(f.data, f.size, &h, err, sizeof err) != QMC_OK) {
        fprintf(stderr, "npyslice: %s: %s\n", argv[1], err);
        return 2;
    }
    long long start = atoll(argv[2]), end = atoll(argv[3]);
    if (h.rank < 1 || start < 0 || end > h.shape[0] || start >= end) {
        fprintf(stderr, "npyslice: [%lld, %lld) is not inside the first axis\n", start, end);
        return 2;
    }
    int64_t row = h.count / h.shape[0];
    int64_t shape[RT_MAX_RANK];
    for (int i = 0; i < h.rank; i++) shape[i] = h.shape[i];
    shape[0] = end - start;
    const uint8_t *data = f.data + h.data_offset + (size_t)(start * row) * qmc_dtype_size(h.dtype);
    if (rt_npy_write(argv[4], h.dtype, h.rank, shape, data) != QMC_OK) {
        fprintf(stderr, "npyslice: cannot write %s\n", argv[4]);
        return 2;
    }
    return 0;
}
