/* npy.c: a minimal .npy reader (npy.h). */
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *npy_read(const char *path, const char *descr, size_t elem_size, size_t *count)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char head[10];
    char dict[4096];
    void *data = NULL;
    if (fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY\x01", 7) != 0) goto done;
    size_t hlen = (size_t)head[8] | (size_t)head[9] << 8;
    if (hlen >= sizeof dict || fread(dict, 1, hlen, f) != hlen) goto done;
    dict[hlen] = 0;
    if (!strstr(dict, descr)) goto done;
    long start = ftell(f);
    fseek(f, 0, SEEK_END);
    size_t bytes = (size_t)(ftell(f) - start);
    fseek(f, start, SEEK_SET);
    data = malloc(bytes ? bytes : 1);
    if (data && fread(data, 1, bytes, f) != bytes) {
        free(data);
        data = NULL;
    }
    *count = bytes / elem_size;
done:
    fclose(f);
    return data;
}
