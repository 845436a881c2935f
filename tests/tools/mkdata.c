/* mkdata: deterministic pseudo-random tensors for tests, as a safetensors
 * weights file or an .npy array.
 *
 *   mkdata OUT.safetensors NAME=D0xD1x...[@LO,HI] ...
 *   mkdata OUT.npy D0xD1x...[@LO,HI] [SEED]
 *
 * Values are f32, uniform in [LO, HI] (default [-1, 1]); each depends only
 * on the tensor's name (or the seed) and its index, so a test's data is
 * the same on every machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

typedef struct spec {
    const char *name;
    int rank;
    int64_t shape[RT_MAX_RANK], count;
    double lo, hi;
} spec;

static bool parse_shape(const char *s, spec *out)
{
    char *end;
    out->rank = 0;
    out->count = 1;
    out->lo = -1, out->hi = 1;
    while (*s && *s != '@') {
        if (out->rank == RT_MAX_RANK) return false;
        long long d = strtoll(s, &end, 10);
        if (end == s || d < 1) return false;
        out->shape[out->rank++] = d;
        out->count *= d;
        s = end;
        if (*s == 'x') s++;
    }
    if (*s == '@') {
        out->lo = strtod(s + 1, &end);
        if (*end != ',') return false;
        out->hi = strtod(end + 1, &end);
        if (*end) return false;
    }
    return out->rank > 0;
}

static uint64_t hash(const char *s, uint64_t seed)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void fill(const spec *sp, uint64_t seed, float *out)
{
    uint64_t x = hash(sp->name ? sp->name : "", seed) | 1;
    for (int64_t i = 0; i < sp->count; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        double u = (double)(x >> 11) / (double)(1ull << 53);
        out[i] = (float)(sp->lo + (sp->hi - sp->lo) * u);
    }
}

static int write_npy(const char *path, const char *shape, uint64_t seed)
{
    spec sp = {0};
    if (!parse_shape(shape, &sp)) {
        fprintf(stderr, "mkdata: bad shape '%s'\n", shape);
        return 2;
    }
    float *v = malloc(sizeof(float) * (size_t)sp.count);
    fill(&sp, seed, v);
    qmc_status st = rt_npy_write(path, QMC_DTYPE_F32, sp.rank, sp.shape, v);
    free(v);
    if (st != QMC_OK) fprintf(stderr, "mkdata: cannot write %s\n", path);
    return st == QMC_OK ? 0 : 2;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mkdata OUT.safetensors NAME=SHAPE[@LO,HI] ...\n"
                        "       mkdata OUT.npy SHAPE[@LO,HI] [SEED]\n");
        return 2;
    }
    size_t len = strlen(argv[1]);
    if (len > 4 && strcmp(argv[1] + len - 4, ".npy") == 0)
        return write_npy(argv[1], argv[2], argc > 3 ? strtoull(argv[3], NULL, 10) : 0);
    int n = argc - 2;
    spec *sp = calloc((size_t)n, sizeof *sp);
    size_t json_cap = 256 + (size_t)n * 256, json_len = 0;
    char *json = malloc(json_cap);
    int64_t offset = 0;
    json_len += (size_t)snprintf(json, json_cap, "{");
    for (int i = 0; i < n; i++) {
        char *eq = strchr(argv[i + 2], '=');
        if (!eq || !parse_shape(eq + 1, &sp[i])) {
            fprintf(stderr, "mkdata: bad tensor '%s' (NAME=D0xD1...[@LO,HI])\n", argv[i + 2]);
            return 2;
        }
        *eq = 0;
        sp[i].name = argv[i + 2];
        json_len +=
            (size_t)snprintf(json + json_len, json_cap - json_len,
                             "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[", i ? "," : "", sp[i].name);
        for (int d = 0; d < sp[i].rank; d++)
            json_len += (size_t)snprintf(json + json_len, json_cap - json_len, "%s%lld",
                                         d ? "," : "", (long long)sp[i].shape[d]);
        json_len += (size_t)snprintf(json + json_len, json_cap - json_len,
                                     "],\"data_offsets\":[%lld,%lld]}", (long long)offset,
                                     (long long)(offset + sp[i].count * 4));
        offset += sp[i].count * 4;
    }
    json_len += (size_t)snprintf(json + json_len, json_cap - json_len, "}");
    while (json_len % 8) json[json_len++] = ' ';
    FILE *f = fopen(argv[1], "wb");
    if (!f) {
        fprintf(stderr, "mkdata: cannot write %s\n", argv[1]);
        return 2;
    }
    uint64_t hlen = json_len;
    uint8_t h8[8];
    for (int i = 0; i < 8; i++) h8[i] = (uint8_t)(hlen >> (8 * i));
    fwrite(h8, 1, 8, f);
    fwrite(json, 1, json_len, f);
    for (int i = 0; i < n; i++) {
        float *v = malloc(sizeof(float) * (size_t)sp[i].count);
        fill(&sp[i], 0, v);
        fwrite(v, 4, (size_t)sp[i].count, f);
        free(v);
    }
    bool ok = fclose(f) == 0;
    free(json);
    free(sp);
    return ok ? 0 : 2;
}
