/* conv.c: the conv group: single convolution layers of ResNet-50 and
 * MobileNet shapes (batch 1, bias and relu fused), qmc's builds against
 * oneDNN's convolution in the same process.
 *
 * Every implementation of a shape runs warm, one after the other with a
 * pause between (as the GEMM cases). The activations are channels-last:
 * qmc's model takes x [1, H, W, C] and gives y [1, OH, OW, M] (its layout
 * pass makes that a conv without transposes), oneDNN gets nhwc memory, and
 * again its own preferred layout (the reorder outside the timing); a qmc
 * row's peer is the faster of the two. qmc's `int8:a8` reads f32 input and
 * quantizes it per image inside the timed run, oneDNN u8s8 gets u8 input.
 * Outputs are checked against a double-precision convolution of the same
 * (losslessly quantized) weights: max |y - ref| over the largest Σ|x·w| of
 * an output, 1e-3 (3e-2 with int8 activations). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_data.h"

int64_t bench_conv_out(int64_t in, int64_t k, int64_t stride, int64_t pad)
{
    return (in + 2 * pad - k) / stride + 1;
}

typedef struct conv_dims {
    int64_t oh, ow, cg, mg, taps;
} conv_dims;

static conv_dims dims_of(const bench_conv_shape *s)
{
    conv_dims d = {bench_conv_out(s->h, s->kh, s->stride, s->pad),
                   bench_conv_out(s->w, s->kw, s->stride, s->pad), s->c / s->groups,
                   s->m / s->groups, s->kh * s->kw};
    return d;
}

/* y[p][m] (nhwc) of the convolution in double, and per output Σ|x·w|;
 * x nhwc f32 (or u8 with u8 true), w [m][c/g][kh][kw]; scale per channel
 * (int8) or NULL. Returns max |y - ref| / max Σ|x·w|. */
static double conv_error(const bench_conv_shape *s, const void *x, bool u8, const float *w,
                         const int8_t *codes, const float *scale, const float *bias, const float *y)
{
    conv_dims d = dims_of(s);
    double worst = 0, norm = 0;
    for (int64_t oh = 0; oh < d.oh; oh++)
        for (int64_t ow = 0; ow < d.ow; ow++)
            for (int64_t m = 0; m < s->m; m++) {
                int64_t g = m / d.mg;
                double acc = 0, mag = 0;
                for (int64_t ci = 0; ci < d.cg; ci++)
                    for (int64_t kh = 0; kh < s->kh; kh++)
                        for (int64_t kw = 0; kw < s->kw; kw++) {
                            int64_t ih = oh * s->stride - s->pad + kh,
                                    iw = ow * s->stride - s->pad + kw;
                            if (ih < 0 || ih >= s->h || iw < 0 || iw >= s->w) continue;
                            int64_t xi = (ih * s->w + iw) * s->c + g * d.cg + ci;
                            int64_t wi = ((m * d.cg + ci) * s->kh + kh) * s->kw + kw;
                            double xv = u8 ? ((const uint8_t *)x)[xi] : ((const float *)x)[xi];
                            double wv = codes ? codes[wi] * (double)scale[m] : w[wi];
                            acc += xv * wv, mag += fabs(xv * wv);
                        }
                acc += bias[m];
                if (s->relu && acc < 0) acc = 0;
                double e = fabs(y[(oh * d.ow + ow) * s->m + m] - acc);
                if (!(e <= worst)) worst = e;
                if (mag > norm) norm = mag;
            }
    return worst / (norm > 0 ? norm : 1);
}

/* One implementation of a shape (see harness.c's contender). */
typedef struct conv_contender {
    bench_record r;
    char impl[64], note[256];
    bool ready, int8, peer;
    bench_contender timing;
    double tol;
    const bench_conv_shape *s;
    dnnl_conv_peer *dnnl;
    bench_qmc_run q;
    void *x; /* f32, or u8 for oneDNN u8s8 */
    float *y, *w, *bias, *scales;
    int8_t *codes;
} conv_contender;

/* The shape's weights [m][c/g][kh][kw] (lossless in int8 per channel), bias
 * and input, as every implementation reads them. */
typedef struct conv_data {
    float *w, *bias, *scales, *x;
    int8_t *codes;
    uint8_t *xu;
} conv_data;

static void data_make(const bench_conv_shape *s, conv_data *d)
{
    int64_t k = s->c / s->groups * s->kh * s->kw;
    d->w = malloc(sizeof(float) * (size_t)(s->m * k));
    d->codes = malloc((size_t)(s->m * k));
    d->scales = malloc(sizeof(float) * (size_t)s->m);
    d->bias = malloc(sizeof(float) * (size_t)s->m);
    for (int64_t m = 0; m < s->m; m++) {
        bench_weight_row(BW_INT8, m, k, d->w + m * k);
        float amax = 0;
        for (int64_t j = 0; j < k; j++) amax = fmaxf(amax, fabsf(d->w[m * k + j]));
        d->scales[m] = amax / 127;
        for (int64_t j = 0; j < k; j++)
            d->codes[m * k + j] = (int8_t)lrintf(d->w[m * k + j] / d->scales[m]);
        d->bias[m] = 0.01f * (float)(m % 7 - 3);
    }
    int64_t n = s->h * s->w * s->c;
    d->x = malloc(sizeof(float) * (size_t)n);
    bench_activations(s->h * s->w, s->c, d->x);
    d->xu = malloc((size_t)n);
    bench_rng r = bench_rng_make(91);
    for (int64_t i = 0; i < n; i++) d->xu[i] = (uint8_t)(bench_next(&r) >> 57); /* 0..127 */
}

static void data_free(conv_data *d)
{
    free(d->w), free(d->codes), free(d->scales), free(d->bias), free(d->x), free(d->xu);
}

static void record_base(conv_contender *k, const char *name, const char *impl, int threads)
{
    conv_dims d = dims_of(k->s);
    k->r = (bench_record){.group = "conv",
                          .case_name = name,
                          .impl = impl,
                          .threads = threads,
                          .ops = 2.0 * (double)(d.oh * d.ow * k->s->m * d.cg * d.taps)};
}

static void dnnl_open_conv(conv_contender *k, const bench_conv_shape *s, const conv_data *d,
                           bool int8, bool blocked, const char *name, int threads)
{
    memset(k, 0, sizeof *k);
    k->s = s, k->peer = true, k->int8 = int8;
    snprintf(k->impl, sizeof k->impl, "oneDNN %s%s", int8 ? "u8s8" : "f32", blocked ? " own" : "");
    record_base(k, name, k->impl, threads);
    k->dnnl = dnnl_conv_create(int8, blocked, s, int8 ? (const void *)d->codes : d->w, d->scales,
                               d->bias, int8 ? (const void *)d->xu : d->x);
    if (!k->dnnl) {
        k->r.status = "failed";
        k->r.note = "oneDNN primitive creation failed";
        return;
    }
    k->ready = true;
    k->timing = (bench_contender){.fn = dnnl_conv_run, .ctx = k->dnnl};
}

static void dnnl_close_conv(conv_contender *k, const conv_data *d)
{
    if (k->ready) {
        k->r.st = k->timing.st;
        const float *y = dnnl_conv_output(k->dnnl);
        k->r.err = !y        ? INFINITY
                   : k->int8 ? conv_error(k->s, d->xu, true, NULL, d->codes, d->scales, d->bias, y)
                             : conv_error(k->s, d->x, false, d->w, NULL, NULL, d->bias, y);
        k->r.status = k->r.st.failed ? "failed" : !(k->r.err <= 1e-3) ? "wrong" : "ok";
        snprintf(k->note, sizeof k->note, "%s", dnnl_conv_impl(k->dnnl));
        k->r.note = k->note;
        dnnl_conv_free(k->dnnl);
    }
    bench_record_write(&k->r);
}

static void qmc_open_conv(conv_contender *k, const bench_conv_case *c, const conv_data *d,
                          const char *name, int threads)
{
    memset(k, 0, sizeof *k);
    k->s = &c->s;
    bool a8 = strstr(c->precision, ":a8") != NULL;
    k->tol = a8 ? 3e-2 : 1e-3;
    snprintf(k->impl, sizeof k->impl, "qmc %s", c->precision);
    record_base(k, name, k->impl, threads);
    k->r.peer = a8 ? "oneDNN u8s8|oneDNN u8s8 own" : "oneDNN f32|oneDNN f32 own";
    k->r.goal = "speed>=0.9";
    if (!c->model) {
        k->r.status = "unsupported";
        k->r.note = c->error;
        return;
    }
    conv_dims dd = dims_of(&c->s);
    k->y = malloc(sizeof(float) * (size_t)(dd.oh * dd.ow * c->s.m));
    k->q = (bench_qmc_run){c->model, {d->x}, {k->y}, qmc_workspace_alloc(c->model->workspace_size)};
    k->r.weight_bytes = (double)c->model->weights_size;
    k->ready = true;
    k->timing = (bench_contender){.fn = bench_qmc_run_once, .ctx = &k->q};
}

static void qmc_close_conv(conv_contender *k, const conv_data *d)
{
    if (k->ready) {
        k->r.st = k->timing.st;
        k->r.err = conv_error(k->s, d->x, false, d->w, NULL, NULL, d->bias, k->y);
        k->r.status = k->r.st.failed ? "failed" : !(k->r.err <= k->tol) ? "wrong" : "ok";
        if (!(k->r.err <= k->tol)) {
            snprintf(k->note, sizeof k->note, "max error %.3g exceeds %.0e", k->r.err, k->tol);
            k->r.note = k->note;
        }
        qmc_workspace_free(k->q.ws);
    }
    bench_record_write(&k->r);
    free(k->y);
}

typedef struct conv_job {
    const bench_conv_shape *s;
    int threads;
} conv_job;

static void run_conv_shape(void *ctx)
{
    conv_job *j = ctx;
    const bench_conv_shape *s = j->s;
    char name[96];
    snprintf(name, sizeof name, "%s %lldx%lld %lldx%lld/%lld %lld->%lld%s", s->name,
             (long long)s->h, (long long)s->w, (long long)s->kh, (long long)s->kw,
             (long long)s->stride, (long long)s->c, (long long)s->m,
             s->groups > 1 ? (s->groups == s->c ? " dw" : " grouped") : "");
    conv_data d;
    data_make(s, &d);
    enum { MAX = 12 };
    conv_contender *ks = calloc(MAX, sizeof *ks);
    int n = 0;
    bool any_f32 = false, any_a8 = false;
    for (int i = 0; i < bench_n_conv_cases; i++) {
        const bench_conv_case *c = &bench_conv_cases[i];
        if (strcmp(c->s.name, s->name)) continue;
        bool a8 = strstr(c->precision, ":a8") != NULL;
        any_a8 |= a8, any_f32 |= !a8;
    }
    for (int blocked = 0; blocked < 2; blocked++) {
        if (any_f32) dnnl_open_conv(&ks[n++], s, &d, false, blocked, name, j->threads);
        if (any_a8) dnnl_open_conv(&ks[n++], s, &d, true, blocked, name, j->threads);
    }
    for (int i = 0; i < bench_n_conv_cases && n < MAX; i++)
        if (!strcmp(bench_conv_cases[i].s.name, s->name))
            qmc_open_conv(&ks[n++], &bench_conv_cases[i], &d, name, j->threads);
    for (int i = 0; i < n; i++) {
        if (!ks[i].ready) continue;
        bench_contender *t = &ks[i].timing;
        t->st = bench_measure(&bench_warm, t->fn, t->ctx, NULL, 0);
        bench_sleep_ms(BENCH_SETTLE_MS);
    }
    for (int i = 0; i < n; i++)
        ks[i].peer ? dnnl_close_conv(&ks[i], &d) : qmc_close_conv(&ks[i], &d);
    free(ks);
    data_free(&d);
}

void conv_run_group(int threads, void (*measured)(void (*)(void *), void *))
{
    for (int i = 0; i < bench_n_conv_cases; i++) {
        const bench_conv_case *c = &bench_conv_cases[i];
        bool seen = false;
        for (int k = 0; k < i; k++) seen |= !strcmp(bench_conv_cases[k].s.name, c->s.name);
        if (seen) continue;
        conv_job j = {&c->s, threads};
        measured(run_conv_shape, &j);
    }
}
