/* files.c: reading the harness's inputs: .npy arrays (tiny-gpt's tokens and
 * reference logits) and gen_weights' safetensors files (mapped). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "rt.h"

int64_t npy_load(const char *path, char dtype, void **data)
{
    rt_mapped_file f;
    rt_npy_header h;
    char err[256];
    if (rt_file_map(path, &f, err, sizeof err) != QMC_OK)
        return fprintf(stderr, "%s: %s\n", path, err), -1;
    if (rt_npy_parse(f.data, f.size, &h, err, sizeof err) != QMC_OK) {
        rt_file_unmap(&f);
        return fprintf(stderr, "%s: %s\n", path, err), -1;
    }
    if (h.dtype != (dtype == 'f' ? QMC_DTYPE_F32 : QMC_DTYPE_I32)) {
        rt_file_unmap(&f);
        return fprintf(stderr, "%s: expected a C-order <%c4 array\n", path, dtype), -1;
    }
    *data = malloc(h.data_bytes + 4);
    if (*data) memcpy(*data, f.data + h.data_offset, h.data_bytes);
    rt_file_unmap(&f);
    return *data ? h.count : -1;
}

static const float *st_map_uncached(const char *path, int64_t n, int64_t k);

/* Mapped once per path for the life of the process. */
const float *st_map_weights(const char *path, int64_t n, int64_t k)
{
    static struct {
        const char *path;
        const float *data;
    } cache[64];
    static int n_cache;
    for (int i = 0; i < n_cache; i++)
        if (!strcmp(cache[i].path, path)) return cache[i].data;
    const float *data = st_map_uncached(path, n, k);
    if (data && n_cache < 64) cache[n_cache].path = path, cache[n_cache++].data = data;
    return data;
}

static const float *st_map_uncached(const char *path, int64_t n, int64_t k)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return perror(path), NULL;
    struct stat st;
    fstat(fd, &st);
    unsigned char *p =
        st.st_size > 8 ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (p == MAP_FAILED) return fprintf(stderr, "%s: cannot map\n", path), NULL;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)p[i] << (8 * i);
    if (8 + hlen + (uint64_t)(n * k * 4) != (uint64_t)st.st_size)
        return fprintf(stderr, "%s: not a [%lld, %lld] f32 file of gen_weights\n", path,
                       (long long)n, (long long)k),
               NULL;
    return (const float *)(p + 8 + hlen);
}
