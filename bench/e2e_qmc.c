/* e2e_qmc.c: tiny-gpt end to end, qmc's side: each build of
 * examples/tiny-gpt (group "e2e" in cases.c: f32, int8, int4, ...) runs
 * one 128-token sequence (val_tokens[0:128]) warm, back to back, and its
 * logits are compared with PyTorch's f32 logits for that sequence.
 * ONNX Runtime's side is e2e_ort.mjs, in the same benchmark run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* The ONNX Runtime build each qmc build is compared with (see report.mjs):
 * the one with the same weights and the same activations. ORT's int4
 * models compute with f32 activations (accuracy level 0) or int8 ones
 * (level 4); its int8 model quantizes activations to int8 per tensor, as
 * qmc's `int8:a8` does per row. qmc's `int8` keeps f32-accurate
 * activations (three integer dot products where ORT does one): ORT has no
 * such build, so that row shows its ratio to ORT's int8 model but the goal
 * is the like-for-like `int8:a8`. */
static const char *peer_of(const char *precision, bool *like_for_like)
{
    bool a8 = strstr(precision, ":a8") != NULL;
    *like_for_like = true;
    if (!strcmp(precision, "f32")) return "ORT f32";
    if (!strncmp(precision, "int8", 4)) {
        *like_for_like = a8;
        return "ORT int8 dynamic";
    }
    if (!strncmp(precision, "int4", 4)) return a8 ? "ORT int4 acc4" : "ORT int4 acc0";
    *like_for_like = false;
    return NULL;
}

/* Relative RMS error and top-1 agreement of logits [t, v] against ref. */
static void compare_logits(const float *y, const float *ref, int64_t t, int64_t v, double *rel,
                           double *top1)
{
    double num = 0, den = 0;
    int agree = 0;
    for (int64_t i = 0; i < t; i++) {
        int64_t ay = 0, ar = 0;
        for (int64_t j = 0; j < v; j++) {
            double d = (double)y[i * v + j] - ref[i * v + j];
            num += d * d;
            den += (double)ref[i * v + j] * ref[i * v + j];
            if (y[i * v + j] > y[i * v + ay]) ay = j;
            if (ref[i * v + j] > ref[i * v + ar]) ar = j;
        }
        agree += ay == ar;
    }
    *rel = den > 0 ? sqrt(num / den) : INFINITY;
    if (isnan(*rel)) *rel = INFINITY;
    *top1 = (double)agree / (double)t;
}

static void run_one(const bench_qmc_case *c, const int32_t *tokens, const float *ref, int threads)
{
    char impl[64], note[256] = "";
    snprintf(impl, sizeof impl, "qmc %s", c->precision);
    bool f32 = !strcmp(c->precision, "f32"), like_for_like;
    bench_record r = {.group = "e2e",
                      .case_name = "tiny-gpt 128 tokens",
                      .impl = impl,
                      .threads = threads,
                      .peer = peer_of(c->precision, &like_for_like)};
    if (like_for_like) r.goal = f32 ? "speed>=1.0" : "speed>=1.5";
    if (!c->model) {
        r.status = "unsupported";
        r.note = c->error;
        bench_record_write(&r);
        return;
    }
    int64_t t = c->model->inputs[0].shape[0], v = c->model->outputs[0].shape[1];
    float *y = calloc((size_t)(t * v), sizeof(float));
    bench_qmc_run e = {c->model, {tokens}, {y}, qmc_workspace_alloc(c->model->workspace_size)};
    r.st = bench_measure(&bench_warm, bench_qmc_run_once, &e, NULL, 0);
    double rel, top1;
    compare_logits(y, ref, t, v, &rel, &top1);
    /* f32 must match PyTorch; quantized builds must stay near it (a broken
     * kernel gives errors of order 1) */
    double tol = f32 ? 1e-3 : 0.25;
    r.status = r.st.failed ? "failed" : rel <= tol ? "ok" : "wrong";
    snprintf(note, sizeof note,
             "logits vs PyTorch f32: rel RMS err %.2g, top-1 agree %.1f%%; workspace %llu B%s", rel,
             100 * top1, (unsigned long long)c->model->workspace_size,
             like_for_like ? ""
                           : "; f32-accurate activations, no ORT build alike (its int8 model has "
                             "int8 activations)");
    r.note = note;
    r.err = rel;
    bench_record_write(&r);
    qmc_workspace_free(e.ws);
    free(y);
    bench_sleep_ms(BENCH_SETTLE_MS);
}

void e2e_qmc_run(int threads, const char *tokens_npy, const char *logits_npy)
{
    int32_t *tokens = NULL;
    float *ref = NULL;
    if (npy_load(tokens_npy, 'i', (void **)&tokens) < 128 ||
        npy_load(logits_npy, 'f', (void **)&ref) < 128 * 256) {
        fprintf(stderr, "harness: cannot read %s or %s; skipping tiny-gpt\n", tokens_npy,
                logits_npy);
        return;
    }
    for (int i = 0; i < bench_n_qmc_cases; i++)
        if (!strcmp(bench_qmc_cases[i].group, "e2e"))
            run_one(&bench_qmc_cases[i], tokens, ref, threads);
    free(tokens);
    free(ref);
}
