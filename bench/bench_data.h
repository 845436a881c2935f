/* bench_data.h: the synthetic weights and activations of the kernel
 * benchmark, shared by gen_weights.c (which writes them for qmc) and
 * harness.c (which reads them back for oneDNN and the reference check).
 *
 * Weights are built so that qmc's min-max quantization of each format is
 * lossless (docs/quantization.md: int4/int3/int2 per group of 32 with f16
 * scales take m / qmin, m the value of largest magnitude with its sign,
 * when that leaves no error; NF4: max|w|):
 *   int8:   w = c * s_n, c integer in [-127, 127], every row holds a ±127
 *           (int8's scale is max|w| / 127);
 *   int4:   w = c * s_n, c integer in [-7, 7] but one -8 in every group of
 *           32 (so groups of 64 and 128 are lossless too);
 *   int3, int2: the same with [-3, 3] and a -4, [-1, 1] and a -2;
 *   nf4:    w = t * s_n, t a value of the NF4 table, every group of 32
 *           holding a ±1;
 *   bf16, f16: 0.02 * gaussian rounded to the format (unscaled);
 *   fp8e4m3 / fp8e5m2: w = v * s_n, v a finite FP8 value, every row holds
 *           ±448 / ±57344;
 *   f32:    w = 0.02 * gaussian.
 * s_n is a power of two, so each row's scale is exactly s_n and the codes
 * are exactly c (or v). The float reference on these weights is therefore
 * the reference on qmc's quantized weights, and oneDNN's s8 peer runs on the
 * very codes and scales qmc's int8 build holds. */
#ifndef BENCH_DATA_H
#define BENCH_DATA_H

#include <math.h>
#include <stdint.h>
#include <string.h>

enum { BENCH_SEED = 20240611 };

typedef enum bench_wfmt {
    BW_F32,
    BW_INT8,
    BW_INT4,
    BW_E4M3,
    BW_E5M2,
    BW_INT3,
    BW_INT2,
    BW_NF4,
    BW_BF16,
    BW_F16,
    BW_COUNT
} bench_wfmt;

static const char *const bench_wfmt_names[BW_COUNT] = {"f32",  "int8", "int4", "fp8e4m3", "fp8e5m2",
                                                       "int3", "int2", "nf4",  "bf16",    "f16"};

/* splitmix64: a deterministic stream per (seed, tag) */
typedef struct bench_rng {
    uint64_t s;
} bench_rng;

static inline uint64_t bench_next(bench_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static inline bench_rng bench_rng_make(uint64_t tag)
{
    bench_rng r = {BENCH_SEED ^ (tag * 0xD1B54A32D192ED03u)};
    bench_next(&r);
    return r;
}

static inline double bench_uniform(bench_rng *r) { return (double)(bench_next(r) >> 11) * 0x1p-53; }

/* Irwin-Hall approximation of a standard normal: cheap and deterministic. */
static inline float bench_gauss(bench_rng *r)
{
    double s = 0;
    for (int i = 0; i < 12; i++) s += bench_uniform(r);
    return (float)(s - 6.0);
}

static inline float bench_fp8_decode(int e5m2, uint8_t code)
{
    int sign = code >> 7;
    float v;
    if (e5m2) {
        int e = (code >> 2) & 31, m = code & 3;
        v = e ? ldexpf(1.0f + (float)m / 4, e - 15) : ldexpf((float)m / 4, -14);
    } else {
        int e = (code >> 3) & 15, m = code & 7;
        v = e ? ldexpf(1.0f + (float)m / 8, e - 7) : ldexpf((float)m / 8, -6);
    }
    return sign ? -v : v;
}

/* QLoRA's NF4 values (compiler/quant/nf4.c). */
static const float bench_nf4[16] = {-1.0f,
                                    -0.6961928009986877f,
                                    -0.5250730514526367f,
                                    -0.39491748809814453f,
                                    -0.28444138169288635f,
                                    -0.18477343022823334f,
                                    -0.09105003625154495f,
                                    0.0f,
                                    0.07958029955625534f,
                                    0.16093020141124725f,
                                    0.24611230194568634f,
                                    0.33791524171829224f,
                                    0.44070982933044434f,
                                    0.5626170039176941f,
                                    0.7229568362236023f,
                                    1.0f};

/* Codes c in [-q, q] (gaussian, clamped), then in every group of 32 one
 * element set to -(q + 1), the value of largest magnitude: qmc's scale of
 * the group is then exactly 1 (times the row's power of two). */
static inline void bench_int_groups(bench_rng *r, int64_t k, int q, float *w)
{
    for (int64_t i = 0; i < k; i++) {
        float c = rintf(bench_gauss(r) * (float)q / 2.5f);
        w[i] = fminf(fmaxf(c, (float)-q), (float)q);
    }
    for (int64_t g = 0; g < k; g += 32) {
        int64_t len = k - g < 32 ? k - g : 32;
        w[g + (int64_t)(bench_next(r) % (uint64_t)len)] = (float)-(q + 1);
    }
}

/* Row n of an [N, K] weight matrix of format f, into w[0..K). */
static inline void bench_weight_row(bench_wfmt f, int64_t n, int64_t k, float *w)
{
    bench_rng r = bench_rng_make(((uint64_t)f << 56) ^ ((uint64_t)k << 32) ^ (uint64_t)n);
    float s = 0;
    switch (f) {
    case BW_F32:
        for (int64_t i = 0; i < k; i++) w[i] = 0.02f * bench_gauss(&r);
        return;
    case BW_BF16: /* keep the top 16 bits, rounded to nearest even */
        for (int64_t i = 0; i < k; i++) {
            float v = 0.02f * bench_gauss(&r);
            uint32_t u;
            memcpy(&u, &v, 4);
            u = (u + 0x7FFFu + ((u >> 16) & 1)) & 0xFFFF0000u;
            memcpy(&w[i], &u, 4);
        }
        return;
    case BW_F16: /* 11 significant bits, and 0 below f16's normal range */
        for (int64_t i = 0; i < k; i++) {
            int e;
            float v = 0.02f * bench_gauss(&r), m = frexpf(v, &e);
            w[i] = fabsf(v) < 0x1p-14f ? 0.0f : ldexpf(rintf(ldexpf(m, 11)), e - 11);
        }
        return;
    case BW_INT8:
        s = ldexpf(1.0f, -(12 + (int)(n % 3)));
        for (int64_t i = 0; i < k; i++) {
            float c = rintf(bench_gauss(&r) * 127.0f / 4.0f);
            w[i] = fminf(fmaxf(c, -127.0f), 127.0f);
        }
        w[bench_next(&r) % (uint64_t)k] = (bench_next(&r) & 1) ? 127.0f : -127.0f;
        break;
    case BW_INT4:
    case BW_INT3:
    case BW_INT2:
        s = ldexpf(1.0f, -(8 + (int)(n % 3)));
        bench_int_groups(&r, k, f == BW_INT4 ? 7 : f == BW_INT3 ? 3 : 1, w);
        break;
    case BW_NF4:
        s = ldexpf(1.0f, -(5 + (int)(n % 3)));
        for (int64_t i = 0; i < k; i++) w[i] = bench_nf4[bench_next(&r) % 16];
        for (int64_t g = 0; g < k; g += 32) {
            int64_t len = k - g < 32 ? k - g : 32;
            w[g + (int64_t)(bench_next(&r) % (uint64_t)len)] = (bench_next(&r) & 1) ? 1.0f : -1.0f;
        }
        break;
    case BW_E4M3:
    case BW_E5M2: {
        int e5 = f == BW_E5M2;
        uint8_t top = e5 ? 0x7B : 0x7E; /* the largest finite code */
        s = ldexpf(1.0f, e5 ? -(22 + (int)(n % 3)) : -(14 + (int)(n % 3)));
        for (int64_t i = 0; i < k; i++) {
            /* magnitudes spread over the upper codes, as trained weights are */
            uint8_t mag = (uint8_t)(top - (bench_next(&r) % 48));
            uint8_t code = (uint8_t)(mag | ((bench_next(&r) & 1) << 7));
            w[i] = bench_fp8_decode(e5, code);
        }
        w[bench_next(&r) % (uint64_t)k] =
            bench_fp8_decode(e5, (uint8_t)(top | ((bench_next(&r) & 1) << 7)));
        break;
    }
    default: break;
    }
    for (int64_t i = 0; i < k; i++) w[i] *= s;
}

/* The activations: x[M, K], one gaussian stream per (M, K). */
static inline void bench_activations(int64_t m, int64_t k, float *x)
{
    bench_rng r = bench_rng_make(0xA11CE000u ^ ((uint64_t)m << 20) ^ (uint64_t)k);
    for (int64_t i = 0; i < m * k; i++) x[i] = bench_gauss(&r);
}

#endif
