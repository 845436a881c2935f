/* fuzz_npy: any bytes -> rt_npy_parse. An accepted header describes data
 * inside the buffer (all of it is read), and re-encoding it parses back to
 * the same dtype and shape. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rt_npy_header h;
    char err[256];
    if (rt_npy_parse(data, size, &h, err, sizeof err) != QMC_OK) {
        if (!err[0]) abort(); /* every rejection has a reason */
        return 0;
    }
    if (h.data_offset > size || h.data_bytes > size - h.data_offset) abort();
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < h.data_bytes; i++) sum += data[h.data_offset + i];
    char hdr[RT_NPY_HEADER_MAX];
    size_t n = rt_npy_header_encode(h.dtype, h.rank, h.shape, hdr, sizeof hdr);
    if (!n) abort();
    rt_npy_header back;
    uint8_t *copy = calloc(1, n + h.data_bytes + 1);
    memcpy(copy, hdr, n);
    if (rt_npy_parse(copy, n + h.data_bytes, &back, err, sizeof err) != QMC_OK) abort();
    if (back.dtype != h.dtype || back.rank != h.rank || back.count != h.count ||
        memcmp(back.shape, h.shape, sizeof h.shape[0] * (size_t)h.rank) != 0)
        abort();
    free(copy);
    return 0;
}
