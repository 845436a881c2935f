/* gen_weights.c: writes the benchmark's synthetic weight matrices as
 * safetensors files for `qmc compile --weights`.
 *
 *   gen_weights DIR FORMAT:N:K...
 *
 * writes DIR/w_FORMAT_NxK.safetensors holding one float32 tensor "w" of
 * shape [N, K] (PyTorch's Linear layout), built by bench_data.h so that
 * FORMAT's quantization is lossless. An existing file of the right size is
 * kept (the data is deterministic). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_data.h"

static int parse_format(const char *name)
{
    for (int f = 0; f < BW_COUNT; f++)
        if (!strcmp(bench_wfmt_names[f], name)) return f;
    return -1;
}

/* The safetensors header, padded with spaces to a multiple of 8 bytes. */
static size_t header(char *buf, size_t size, int64_t n, int64_t k)
{
    int len = snprintf(
        buf, size, "{\"w\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],\"data_offsets\":[0,%lld]}}",
        (long long)n, (long long)k, (long long)(n * k * 4));
    while (len % 8) buf[len++] = ' ';
    buf[len] = 0;
    return (size_t)len;
}

static int write_one(const char *dir, int f, int64_t n, int64_t k)
{
    char path[4096], hdr[256], tmp[4200];
    snprintf(path, sizeof path, "%s/w_%s_%lldx%lld.safetensors", dir, bench_wfmt_names[f],
             (long long)n, (long long)k);
    size_t hlen = header(hdr, sizeof hdr, n, k);
    struct stat st;
    if (stat(path, &st) == 0 && (uint64_t)st.st_size == 8 + hlen + (uint64_t)(n * k * 4)) return 0;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "wb");
    if (!out) return fprintf(stderr, "gen_weights: %s: %s\n", tmp, strerror(errno)), 1;
    uint64_t hl = hlen;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hl >> (8 * i));
    fwrite(le, 1, 8, out);
    fwrite(hdr, 1, hlen, out);
    float *row = malloc(sizeof(float) * (size_t)k);
    for (int64_t r = 0; r < n; r++) {
        bench_weight_row((bench_wfmt)f, r, k, row);
        fwrite(row, sizeof(float), (size_t)k, out);
    }
    free(row);
    if (fclose(out) != 0 || rename(tmp, path) != 0)
        return fprintf(stderr, "gen_weights: %s: %s\n", path, strerror(errno)), 1;
    printf("gen_weights: %s\n", path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: gen_weights DIR FORMAT:N:K...\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        char name[32];
        long long n, k;
        int f;
        if (sscanf(argv[i], "%31[^:]:%lld:%lld", name, &n, &k) != 3 ||
            (f = parse_format(name)) < 0 || n <= 0 || k <= 0) {
            fprintf(stderr,
                    "gen_weights: bad spec '%s' (FORMAT:N:K, formats f32 int8 int4 int3 int2 nf4 "
                    "bf16 f16 fp8e4m3 fp8e5m2)\n",
                    argv[i]);
            return 2;
        }
        if (write_one(argv[1], f, n, k)) return 1;
    }
    return 0;
}
