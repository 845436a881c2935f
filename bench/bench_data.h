/* bench_data.h: the synthetic weights and activations of the kernel
 * benchmark, shared by gen_weights.c (which writes them for qmc) and
 * harness.c (which reads them back for oneDNN and the reference check).
 *
 * Weights are built so that qmc's min-max quantization of each format is
 * lossless (docs/quantization.md: symmetric scale = max|w| / qmax per
 * output row, or per group of 32 with f16 scales for int4):
 *   int8:   w = c * s_n, c integer in [-127, 127], every row holds a ±127;
 *   int4:   w = c * s_n, c integer in [-7, 7], every group of 32 holds a ±7
 *           (so groups of 64 and 128 are lossless too);
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

typedef enum bench_wfmt { BW_F32, BW_INT8, BW_INT4, BW_E4M3, BW_E5M2, BW_COUNT } bench_wfmt;

static const char *const bench_wfmt_names[BW_COUNT] = {"f32", "int8", "int4", "fp8e4m3", "fp8e5m2"};

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

/* Row n of an [N, K] weight matrix of format f, into w[0..K). */
static inline void bench_weight_row(bench_wfmt f, int64_t n, int64_t k, float *w)
{
    bench_rng r = bench_rng_make(((uint64_t)f << 56) ^ ((uint64_t)k << 32) ^ (uint64_t)n);
    float s = 0;
    switch (f) {
    case BW_F32:
        for (int64_t i = 0; i < k; i++) w[i] = 0.02f * bench_gauss(&r);
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
        s = ldexpf(1.0f, -(8 + (int)(n % 3)));
        for (int64_t i = 0; i < k; i++) {
            float c = rintf(bench_gauss(&r) * 7.0f / 2.5f);
            w[i] = fminf(fmaxf(c, -7.0f), 7.0f);
        }
        for (int64_t g = 0; g < k; g += 32) {
            int64_t len = k - g < 32 ? k - g : 32;
            w[g + (int64_t)(bench_next(&r) % (uint64_t)len)] = (bench_next(&r) & 1) ? 7.0f : -7.0f;
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
