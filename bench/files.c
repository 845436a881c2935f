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

int64_t npy_load(const char *path, char dtype, void **data)
{
    FILE *f = fopen(path, "rb");
    if (!f) return perror(path), -1;
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        fclose(f);
        return fprintf(stderr, "%s: not a .npy file\n", path), -1;
    }
    size_t hlen = pre[8] | (size_t)pre[9] << 8, pos = 10;
    if (pre[6] >= 2) { /* version 2 and 3: a 4-byte header length */
        unsigned char more[2];
        if (fread(more, 1, 2, f) != 2) return fclose(f), -1;
        hlen |= (size_t)more[0] << 16 | (size_t)more[1] << 24;
        pos = 12;
    }
    char *hdr = calloc(1, hlen + 1);
    if (fread(hdr, 1, hlen, f) != hlen) return free(hdr), fclose(f), -1;
    char want[8];
    snprintf(want, sizeof want, "'<%c4'", dtype);
    bool ok = strstr(hdr, want) && strstr(hdr, "'fortran_order': False");
    free(hdr);
    if (!ok) {
        fclose(f);
        return fprintf(stderr, "%s: expected a C-order <%c4 array\n", path, dtype), -1;
    }
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    int64_t count = (end - (long)(pos + hlen)) / 4;
    *data = malloc((size_t)count * 4 + 4);
    fseek(f, (long)(pos + hlen), SEEK_SET);
    size_t got = fread(*data, 4, (size_t)count, f);
    fclose(f);
    return (int64_t)got == count ? count : -1;
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
    unsigned char *p = st.st_size > 8 ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (p == MAP_FAILED) return fprintf(stderr, "%s: cannot map\n", path), NULL;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)p[i] << (8 * i);
    if (8 + hlen + (uint64_t)(n * k * 4) != (uint64_t)st.st_size)
        return fprintf(stderr, "%s: not a [%lld, %lld] f32 file of gen_weights\n", path, (long long)n, (long long)k),
               NULL;
    return (const float *)(p + 8 + hlen);
}
