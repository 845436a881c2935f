/* bench_quantize.c: how long quantizing a 4096 x 4096 float32 matrix to
 * int4 in groups of 32 takes on one core: parameter choice (min-max, then
 * MSE clipping) plus the ONNX-layout quantization to codes, and packing into
 * q_block_q4_g32 rows with the scalar _ref. Not a test; see README.md.
 *
 *   bench_quantize [ROWS COLS] [--repeat N]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmc_runtime.h"
#include "quant.h"

static double now_ms(void) { return (double)qmc_now_ns() / 1e6; }

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill_normal(float *x, int64_t n, uint64_t seed)
{
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ((double)(splitmix64(&seed) >> 11) + 1.0) / 9007199254740993.0;
        double u2 = (double)(splitmix64(&seed) >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1));
        x[i] = (float)(r * cos(2 * M_PI * u2));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(2 * M_PI * u2));
    }
}

typedef struct run {
    double choose_ms, quant_ms;
    double sqnr_db;
} run;

static run time_once(const float *x, int64_t rows, int64_t cols, q_clip clip, uint8_t *codes,
                     float *y)
{
    sup_arena arena = {0};
    int64_t shape[2] = {rows, cols};
    q_choice c = {QFMT_INT4, Q_GRAN_BLOCK, 1, 32, true, clip, QMC_DTYPE_F16};
    q_params p;
    char err[200];
    run r;
    double t0 = now_ms();
    if (!q_choose_params(&arena, x, 2, shape, &c, &p, err, sizeof err)) {
        fprintf(stderr, "bench_quantize: %s\n", err);
        exit(1);
    }
    double t1 = now_ms();
    q_quantize(x, 2, shape, &p, codes);
    double t2 = now_ms();
    r.choose_ms = t1 - t0;
    r.quant_ms = t2 - t1;
    q_dequantize(codes, 2, shape, &p, y);
    r.sqnr_db = q_measure(x, y, rows * cols).sqnr_db;
    sup_arena_free(&arena);
    return r;
}

static void report(const char *what, const float *x, int64_t rows, int64_t cols, q_clip clip,
                   int repeat, uint8_t *codes, float *y)
{
    run best = {1e30, 1e30, 0};
    for (int i = 0; i < repeat; i++) {
        run r = time_once(x, rows, cols, clip, codes, y);
        if (r.choose_ms + r.quant_ms < best.choose_ms + best.quant_ms) best = r;
    }
    printf("int4 g32 %-8s %8.1f ms  (choose %.1f + quantize %.1f; best of %d)  sqnr %.2f dB\n",
           what, best.choose_ms + best.quant_ms, best.choose_ms, best.quant_ms, repeat,
           best.sqnr_db);
}

int main(int argc, char **argv)
{
    int64_t rows = 4096, cols = 4096;
    int repeat = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (i + 1 < argc)
            rows = atoll(argv[i]), cols = atoll(argv[++i]);
    }
    if (rows <= 0 || cols <= 0 || cols % 32 || repeat <= 0) {
        fprintf(stderr,
                "usage: bench_quantize [ROWS COLS] [--repeat N]  (COLS a multiple of 32)\n");
        return 1;
    }
    int64_t n = rows * cols;
    float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
    uint8_t *codes = malloc((size_t)n);
    size_t row_bytes = q_row_size(Q_KFMT_Q4_G32, cols);
    uint8_t *packed = malloc(row_bytes * (size_t)rows);
    if (!x || !y || !codes || !packed) return 1;
    fill_normal(x, n, 42);
    memset(codes, 0, (size_t)n);
    memset(y, 0, sizeof(float) * (size_t)n);
    memset(packed, 0, row_bytes * (size_t)rows);
    printf("quantizing a %lld x %lld float32 matrix (N(0,1)) on one core\n", (long long)rows,
           (long long)cols);
    report("min-max", x, rows, cols, Q_CLIP_MINMAX, repeat, codes, y);
    report("mse-clip", x, rows, cols, Q_CLIP_MSE, repeat < 2 ? repeat : 2, codes, y);
    double t0 = now_ms();
    for (int64_t r = 0; r < rows; r++)
        q_quantize_row_q4_g32_ref(x + r * cols, cols, (q_block_q4_g32 *)(packed + r * row_bytes));
    printf("q_block_q4_g32 _ref rows  %8.1f ms  (scalar reference packer)\n", now_ms() - t0);
    free(x);
    free(y);
    free(codes);
    free(packed);
    return 0;
}
