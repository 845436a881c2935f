/* gen_weights.c: writes the benchmark's synthetic weight matrices as
 * safetensors files for `qmc compile --weights`.
 *
 *   gen_weights DIR FORMAT:N:K... conv:M:CG:KH:KW...
 *
 * writes DIR/w_FORMAT_NxK.safetensors holding one float32 tensor "w" of
 * shape [N, K] (PyTorch's Linear layout), built by bench_data.h so that
 * FORMAT's quantization is lossless; for conv:..., DIR/c_MxCGxKHxKW
 * .safetensors holding a conv's weight "w" [M, CG, KH, KW] (each output
 * channel a row of int8-lossless values, as bench/conv.c builds them) and
 * bias "b" [M]; for act:H:W:C, DIR/x_HxWxC.npy, the conv cases' input
 * [1, H, W, C] (bench_activations of H·W rows of C, as bench/conv.c feeds
 * it), for calibration. An existing file of the right size is kept (the
 * data is deterministic). */
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

static int write_conv(const char *dir, int64_t m, int64_t cg, int64_t kh, int64_t kw)
{
    char path[4096], hdr[512], tmp[4200];
    int64_t k = cg * kh * kw;
    snprintf(path, sizeof path, "%s/c_%lldx%lldx%lldx%lld.safetensors", dir, (long long)m,
             (long long)cg, (long long)kh, (long long)kw);
    int len = snprintf(hdr, sizeof hdr,
                       "{\"b\":{\"dtype\":\"F32\",\"shape\":[%lld],\"data_offsets\":[0,%lld]},"
                       "\"w\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld,%lld,%lld],"
                       "\"data_offsets\":[%lld,%lld]}}",
                       (long long)m, (long long)(4 * m), (long long)m, (long long)cg, (long long)kh,
                       (long long)kw, (long long)(4 * m), (long long)(4 * m + 4 * m * k));
    while (len % 8) hdr[len++] = ' ';
    struct stat st;
    if (stat(path, &st) == 0 &&
        (uint64_t)st.st_size == 8 + (uint64_t)len + (uint64_t)(4 * m * (k + 1)))
        return 0;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "wb");
    if (!out) return fprintf(stderr, "gen_weights: %s: %s\n", tmp, strerror(errno)), 1;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)((uint64_t)len >> (8 * i));
    fwrite(le, 1, 8, out);
    fwrite(hdr, 1, (size_t)len, out);
    for (int64_t r = 0; r < m; r++) {
        float b = 0.01f * (float)(r % 7 - 3); /* as bench/conv.c */
        fwrite(&b, sizeof b, 1, out);
    }
    float *row = malloc(sizeof(float) * (size_t)k);
    for (int64_t r = 0; r < m; r++) {
        bench_weight_row(BW_INT8, r, k, row);
        fwrite(row, sizeof(float), (size_t)k, out);
    }
    free(row);
    if (fclose(out) != 0 || rename(tmp, path) != 0)
        return fprintf(stderr, "gen_weights: %s: %s\n", path, strerror(errno)), 1;
    printf("gen_weights: %s\n", path);
    return 0;
}

static int write_act(const char *dir, int64_t h, int64_t w, int64_t c)
{
    char path[4096], hdr[128];
    snprintf(path, sizeof path, "%s/x_%lldx%lldx%lld.npy", dir, (long long)h, (long long)w,
             (long long)c);
    int len = snprintf(hdr, sizeof hdr,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (1, %lld, %lld, %lld), }",
                       (long long)h, (long long)w, (long long)c);
    while ((10 + len + 1) % 64) hdr[len++] = ' ';
    hdr[len++] = '\n';
    FILE *out = fopen(path, "wb");
    if (!out) return fprintf(stderr, "gen_weights: %s: %s\n", path, strerror(errno)), 1;
    unsigned char pre[10] = {
        0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)len, (unsigned char)(len >> 8)};
    fwrite(pre, 1, 10, out);
    fwrite(hdr, 1, (size_t)len, out);
    float *x = malloc(sizeof(float) * (size_t)(h * w * c));
    bench_activations(h * w, c, x);
    fwrite(x, sizeof(float), (size_t)(h * w * c), out);
    free(x);
    return fclose(out) != 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: gen_weights DIR FORMAT:N:K...\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        char name[32];
        long long n, k, m, cg, kh, kw;
        int f;
        if (sscanf(argv[i], "act:%lld:%lld:%lld", &m, &cg, &kh) == 3) {
            if (m <= 0 || cg <= 0 || kh <= 0 || write_act(argv[1], m, cg, kh))
                return fprintf(stderr, "gen_weights: bad act spec '%s'\n", argv[i]), 1;
            continue;
        }
        if (sscanf(argv[i], "conv:%lld:%lld:%lld:%lld", &m, &cg, &kh, &kw) == 4) {
            if (m <= 0 || cg <= 0 || kh <= 0 || kw <= 0 || write_conv(argv[1], m, cg, kh, kw))
                return fprintf(stderr, "gen_weights: bad conv spec '%s'\n", argv[i]), 1;
            continue;
        }
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
