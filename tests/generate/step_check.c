/* step_check.c: a compiled model with a sequence, through the runtime's
 * step API (qmc_model_step on the model's descriptor), against itself and
 * a reference:
 *   - one step over a sequence reproduces the reference logits (when given)
 *     within 1e-4 of their range;
 *   - the same tokens one at a time (decode), and in uneven chunks (100,
 *     37, rest), give the one step's logits within 1e-5 of their range;
 *   - two threads give the one-thread logits bit for bit;
 *   - a step past the context is QMC_ERR_CONTEXT, a bad token or rows > n
 *     QMC_ERR_INVALID_ARGUMENT, an unreset state too, and none of them moves
 *     the position.
 * A quantized cache rounds keys and values that differ in their last bits
 * between a step and decoding to different codes: $STEP_TOLERANCE (of the
 * range) replaces the 1e-5 there.
 * Build with -DMODEL_DESC=NAME_model (the header's descriptor).
 * usage: step_check TOKENS.npy N [REFERENCE_LOGITS.npy] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmc_runtime.h"

extern const qmc_model_desc MODEL_DESC;
static const qmc_model_desc *m = &MODEL_DESC;
static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL: " __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* The data of a little-endian .npy file (version 1 header) and its bytes. */
static void *read_npy(const char *path, long *bytes)
{
    FILE *f = fopen(path, "rb");
    unsigned char head[10];
    if (!f || fread(head, 1, 10, f) != 10) exit((fprintf(stderr, "cannot read %s\n", path), 2));
    long hlen = head[8] | head[9] << 8;
    fseek(f, 0, SEEK_END);
    *bytes = ftell(f) - 10 - hlen;
    fseek(f, 10 + hlen, SEEK_SET);
    void *data = malloc((size_t)*bytes);
    if (fread(data, 1, (size_t)*bytes, f) != (size_t)*bytes) exit(2);
    fclose(f);
    return data;
}

static double max_diff(const float *a, const float *b, long n, double *range)
{
    double d = 0, lo = b[0], hi = b[0];
    for (long i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        lo = fmin(lo, b[i]), hi = fmax(hi, b[i]);
    }
    *range = hi - lo;
    return d;
}

static qmc_status step(void *state, const int32_t *t, int64_t n, float *out, int64_t rows, void *ws)
{
    const void *in[1] = {t};
    void *o[1] = {out};
    return qmc_model_step(m, state, in, n, o, rows, ws);
}

int main(int argc, char **argv)
{
    if (argc < 3) return fprintf(stderr, "usage: step_check TOKENS.npy N [REF.npy]\n"), 2;
    long bytes, n = strtol(argv[2], NULL, 10), v = (long)m->outputs[0].shape[1];
    int32_t *tokens = read_npy(argv[1], &bytes);
    if (n < 3 || n > m->context || bytes < n * 4) return fprintf(stderr, "bad N\n"), 2;
    void *state = qmc_workspace_alloc(m->state_size), *ws = qmc_workspace_alloc(m->workspace_size);
    float *full = malloc(sizeof(float) * (size_t)(n * v)),
          *got = malloc(sizeof(float) * (size_t)(n * v));
    double range, d, tol = getenv("STEP_TOLERANCE") ? atof(getenv("STEP_TOLERANCE")) : 1e-5;

    CHECK(step(state, tokens, 1, got, 1, ws) == QMC_ERR_INVALID_ARGUMENT,
          "a state never reset runs");
    CHECK(qmc_model_reset(m, state) == QMC_OK && step(state, tokens, n, full, n, ws) == QMC_OK,
          "one step of %ld tokens fails", n);
    CHECK(qmc_model_position(m, state) == n, "the position after %ld tokens is %lld", n,
          (long long)qmc_model_position(m, state));
    if (argc > 3) {
        float *ref = read_npy(argv[3], &bytes);
        d = max_diff(full, ref, n * v, &range);
        printf("one step against the reference: max |diff| %.3g (range %.3g)\n", d, range);
        CHECK(d <= 1e-4 * range, "one step differs from the reference by %.3g", d);
    }
    qmc_model_reset(m, state);
    for (long t = 0; t < n; t++)
        CHECK(step(state, tokens + t, 1, got + t * v, 1, ws) == QMC_OK, "decode step %ld fails", t);
    d = max_diff(got, full, n * v, &range);
    printf("decode, one token at a time, against one step: max |diff| %.3g (range %.3g)\n", d,
           range);
    CHECK(d <= tol * range, "decode differs from one step by %.3g", d);
    long a = n < 150 ? n / 3 : 100, b = n < 150 ? n / 4 : 37;
    qmc_model_reset(m, state);
    CHECK(step(state, tokens, a, got, a, ws) == QMC_OK &&
              step(state, tokens + a, b, got + a * v, b, ws) == QMC_OK &&
              step(state, tokens + a + b, n - a - b, got + (a + b) * v, n - a - b, ws) == QMC_OK,
          "chunks of %ld, %ld and %ld fail", a, b, n - a - b);
    d = max_diff(got, full, n * v, &range);
    printf("chunks of %ld, %ld and %ld against one step: max |diff| %.3g\n", a, b, n - a - b, d);
    CHECK(d <= tol * range, "chunks differ from one step by %.3g", d);
    /* the last row only */
    qmc_model_reset(m, state);
    CHECK(step(state, tokens, n, got, 1, ws) == QMC_OK &&
              memcmp(got, full + (n - 1) * v, sizeof(float) * (size_t)v) == 0,
          "rows = 1 is not the last row");
    /* threads change nothing */
    qmc_set_num_threads(2);
    qmc_model_reset(m, state);
    CHECK(step(state, tokens, n, got, n, ws) == QMC_OK &&
              memcmp(got, full, sizeof(float) * (size_t)(n * v)) == 0,
          "two threads give other logits");
    qmc_set_num_threads(1);
    /* errors move nothing */
    qmc_model_reset(m, state);
    CHECK(step(state, tokens, 1, got, 1, ws) == QMC_OK, "one token fails");
    int64_t pos = qmc_model_position(m, state);
    int32_t bad[2] = {tokens[0], 1 << 30};
    CHECK(step(state, bad, 2, got, 1, ws) == QMC_ERR_INVALID_ARGUMENT,
          "a token outside the vocabulary is accepted");
    CHECK(qmc_model_position(m, state) == pos, "a failed step moved the position");
    CHECK(step(state, tokens, 1, got, 2, ws) == QMC_ERR_INVALID_ARGUMENT, "rows > n accepted");
    qmc_model_reset(m, state);
    CHECK(step(state, tokens, n, got, 0, ws) == QMC_OK, "rows = 0 fails");
    int64_t left = m->context - n;
    int32_t *many = calloc((size_t)(left + 1), sizeof *many);
    CHECK(step(state, many, left + 1, NULL, 0, ws) == QMC_ERR_CONTEXT, "the context overflows");
    CHECK(qmc_model_position(m, state) == n, "an overflowing step moved the position");
    if (left) CHECK(step(state, many, left, NULL, 0, ws) == QMC_OK, "filling the context fails");
    CHECK(qmc_model_position(m, state) == m->context, "the context is not full");
    CHECK(step(state, many, 1, NULL, 0, ws) == QMC_ERR_CONTEXT, "a full context takes a token");
    printf("%s\n", failures ? "FAILED" : "all step checks passed");
    return failures != 0;
}
