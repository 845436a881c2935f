/* calibrate.c: the calibrate pass.
 *
 * Needs: a graph after shape inference, and calibration samples
 * (--calib NAME=FILE.npy for every input; the leading dimension indexes
 * samples, or the file holds one sample).
 * Guarantees: g->calib describes every activation that feeds a linear
 * layer or a matmul: its range, a histogram of |x|, the mean square of each
 * channel (the last dimension), and the clip an observer chose for int8
 * (scale = clip / 127); when asked (for :gptq and auto), the second moment
 * E[x x^T] of every linear layer's input of at most IR_CALIB_XX_MAX channels
 * (8 K^2 bytes each). The graph itself does not change. Without --calib
 * the pass does nothing.
 *
 * Memory is bounded whatever the number of samples: they are read one at a
 * time from the mapped files and run through the interpreter (f32
 * weights), and every statistic has a fixed size. The histogram covers
 * [0, 2^e) in Q_HIST_BINS bins and doubles its range (merging pairs of
 * bins) when a larger value arrives, so its counts are exactly those a
 * histogram over the final range would hold: the result does not depend on
 * the order of the samples.
 *
 * Observers (--calib-method):
 *   minmax      the largest |x|;
 *   percentile  the smallest bin edge below which P% of |x| lie (99.99);
 *   mse         the clip c minimising the expected squared error of int8
 *               quantization: (c/127)^2/12 for every nonzero value inside,
 *               (|x| - c)^2 for every value beyond (bin centres);
 *   kl          TensorRT's entropy calibration, as in ONNX Runtime: the clip
 *               whose histogram folded into 128 levels is closest in
 *               KL divergence to the original.
 * The default is mse: it has no parameter, and on the example models it is
 * the best or within a few percent of the best for int8 and int4 weights,
 * where kl is the worst (docs/calibration.md has the measurements). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

/* ---- histograms ---------------------------------------------------------- */

enum { HIST_LOG2 = 11 }; /* Q_HIST_BINS == 1 << HIST_LOG2 */
_Static_assert(Q_HIST_BINS == 1 << HIST_LOG2, "Q_HIST_BINS is a power of two");

void q_hist_init(q_hist *h) { memset(h, 0, sizeof *h); }

/* Doubles the range until it holds a (a > 0, finite). */
static void hist_grow(q_hist *h, float a)
{
    int e = ilogbf(a) + 1; /* a < 2^e */
    if (h->nonzero == 0) {
        h->exp = e;
        return;
    }
    int shift = e - h->exp;
    if (shift <= 0) return;
    if (shift > HIST_LOG2) shift = HIST_LOG2 + 1;
    for (int i = 0; i < Q_HIST_BINS; i++) {
        uint64_t c = h->bins[i];
        h->bins[i] = 0;
        h->bins[shift > HIST_LOG2 ? 0 : i >> shift] += c;
    }
    h->exp = e;
}

void q_hist_add(q_hist *h, const float *x, int64_t n)
{
    double limit = h->nonzero ? ldexp(1, h->exp) : 0;
    double to_bin = h->nonzero ? ldexp(1, HIST_LOG2 - h->exp) : 0;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a == 0) {
            h->zeros++;
            h->bins[0]++;
            continue;
        }
        if (a >= limit) {
            hist_grow(h, a);
            limit = ldexp(1, h->exp);
            to_bin = ldexp(1, HIST_LOG2 - h->exp);
        }
        h->bins[(int64_t)((double)a * to_bin)]++; /* exact: a power-of-two scaling */
        h->nonzero++;
        if (a > h->absmax) h->absmax = a;
    }
}

double q_hist_bin_width(const q_hist *h) { return h->nonzero ? ldexp(1, h->exp - HIST_LOG2) : 0; }

int64_t q_hist_total(const q_hist *h) { return h->nonzero + h->zeros; }

/* One past the last nonempty bin. */
static int hist_top(const q_hist *h)
{
    int top = Q_HIST_BINS;
    while (top > 0 && h->bins[top - 1] == 0) top--;
    return top;
}

static double clip_percentile(const q_hist *h, double percentile)
{
    double want = percentile / 100.0 * (double)q_hist_total(h), w = q_hist_bin_width(h);
    uint64_t cum = 0;
    for (int i = 0; i < Q_HIST_BINS; i++) {
        cum += h->bins[i];
        if ((double)cum >= want) return fmin((i + 1) * w, h->absmax);
    }
    return h->absmax;
}

/* Expected squared error of symmetric int8 with clip c, from prefix sums
 * over bins [0, i) (count, sum of centres, sum of squared centres). */
static double clip_mse(const q_hist *h)
{
    int top = hist_top(h);
    double w = q_hist_bin_width(h), n_all = 0, s_all = 0, q_all = 0;
    for (int i = 0; i < top; i++) {
        double c = (i + 0.5) * w, n = (double)h->bins[i] - (i == 0 ? (double)h->zeros : 0);
        n_all += n, s_all += n * c, q_all += n * c * c;
    }
    double best = h->absmax, best_err = INFINITY, n_in = 0;
    for (int i = 0; i < top; i++) {
        double c = (i + 0.5) * w, n = (double)h->bins[i] - (i == 0 ? (double)h->zeros : 0);
        n_in += n, s_all -= n * c, q_all -= n * c * c;
        double clip = (i + 1) * w, step = clip / 127;
        double n_out = n_all - n_in;
        /* beyond: sum (x - clip)^2 = q - 2 clip s + clip^2 n */
        double err = n_in * step * step / 12 + fmax(0, q_all - 2 * clip * s_all + clip * clip * n_out);
        if (err < best_err) best_err = err, best = clip;
    }
    return fmin(best, h->absmax);
}

/* ONNX Runtime's smooth_distribution: zeros get eps, taken from the rest. */
static bool smooth(double *p, int n)
{
    const double eps = 1e-4;
    int zeros = 0;
    for (int i = 0; i < n; i++) zeros += p[i] == 0;
    if (zeros == n) return false;
    double take = eps * zeros / (double)(n - zeros);
    for (int i = 0; i < n; i++) p[i] += p[i] == 0 ? eps : -take;
    return true;
}

/* KL(p || q) of two unnormalised distributions (scipy.stats.entropy). */
static double kl_div(const double *p, const double *q, int n)
{
    double sp = 0, sq = 0, kl = 0;
    for (int i = 0; i < n; i++) sp += p[i], sq += q[i];
    for (int i = 0; i < n; i++)
        if (p[i] > 0) kl += p[i] / sp * log((p[i] / sp) / (q[i] / sq));
    return kl;
}

/* The KL divergence of keeping bins [0, i) and folding them into `levels`. */
static double kl_at(const q_hist *h, int i, int levels, double *p, double *q)
{
    double outliers = 0;
    for (int j = i; j < Q_HIST_BINS; j++) outliers += (double)h->bins[j];
    for (int j = 0; j < i; j++) p[j] = (double)h->bins[j];
    p[i - 1] += outliers;
    int merged = i / levels;
    for (int l = 0; l < levels; l++) {
        int start = l * merged, end = l == levels - 1 ? i : start + merged;
        double sum = 0;
        int nonzero = 0;
        for (int j = start; j < end; j++) sum += (double)h->bins[j], nonzero += p[j] != 0;
        for (int j = start; j < end; j++) q[j] = nonzero && p[j] != 0 ? sum / nonzero : 0;
    }
    if (!smooth(p, i) || !smooth(q, i)) return INFINITY;
    return kl_div(p, q, i);
}

static double clip_kl(const q_hist *h)
{
    enum { LEVELS = 128 };
    int top = hist_top(h);
    if (top <= LEVELS) return h->absmax;
    double p[Q_HIST_BINS], q[Q_HIST_BINS], w = q_hist_bin_width(h);
    double best = h->absmax, best_kl = INFINITY;
    for (int i = LEVELS; i <= top; i++) {
        double kl = kl_at(h, i, LEVELS, p, q);
        if (kl < best_kl) best_kl = kl, best = i * w;
    }
    return fmin(best, h->absmax);
}

double q_observer_clip(const q_hist *h, q_observer m, double percentile)
{
    if (h->nonzero == 0) return 0;
    switch (m) {
    case Q_OBS_MINMAX: return h->absmax;
    case Q_OBS_PERCENTILE: return clip_percentile(h, percentile);
    case Q_OBS_MSE: return clip_mse(h);
    case Q_OBS_KL: return clip_kl(h);
    }
    return h->absmax;
}

const char *q_observer_name(q_observer m)
{
    static const char *const names[] = {"minmax", "percentile", "mse", "kl"};
    return names[m];
}

bool q_observer_parse(const char *text, q_observer *m, double *percentile)
{
    *percentile = 99.99;
    for (int i = 0; i <= Q_OBS_KL; i++)
        if (strcmp(text, q_observer_name((q_observer)i)) == 0) return *m = (q_observer)i, true;
    if (strncmp(text, "percentile=", 11) == 0) {
        char *end;
        *percentile = strtod(text + 11, &end);
        *m = Q_OBS_PERCENTILE;
        return *end == 0 && end != text + 11 && *percentile > 0 && *percentile <= 100;
    }
    return false;
}

/* ---- the pass ------------------------------------------------------------ */

/* Registers node x (an operand of a linear or matmul) for observation. */
static void observe(ir_graph *g, ir_calibration *c, int32_t x, bool linear_input)
{
    ir_calib_stats *s = c->of_node[x];
    if (!s) {
        const ir_node *n = &g->nodes[x];
        if (n->dtype != QMC_DTYPE_F32) return;
        s = sup_arena_alloc(g->arena, sizeof *s);
        s->node = x;
        s->min = INFINITY;
        s->max = -INFINITY;
        q_hist_init(&s->hist);
        s->channels = n->rank ? n->shape[n->rank - 1] : 1;
        s->mean_sq = sup_arena_alloc(g->arena, sizeof(double) * (size_t)s->channels);
        c->of_node[x] = s;
        c->n_observed++;
    }
    /* a node may be seen first as another operand, then as a linear's input */
    if (linear_input && c->second_moments && !s->xx && s->channels <= IR_CALIB_XX_MAX)
        s->xx = sup_arena_alloc(g->arena, sizeof(double) * (size_t)(s->channels * s->channels));
}

/* xx += sum over rows of x x^T (the upper triangle; mirrored at the end). */
static void add_outer(double *xx, const float *x, int64_t rows, int64_t k, double *row)
{
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < k; j++) row[j] = x[r * k + j];
        for (int64_t i = 0; i < k; i++) {
            double xi = row[i];
            double *out = xx + i * k;
            if (xi != 0)
                for (int64_t j = i; j < k; j++) out[j] += xi * row[j];
        }
    }
}

static bool accumulate(const ir_graph *g, ir_calib_stats *s, const float *x, int64_t sample, double *row)
{
    int64_t n = ir_node_count(&g->nodes[s->node]), ch = s->channels;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            sup_error(g->nodes[s->node].loc, "'%s' is %g at element %lld on calibration sample %lld",
                     g->nodes[s->node].name, x[i], (long long)i, (long long)sample);
            return false;
        }
    for (int64_t r = 0; r < n / ch; r++)
        for (int64_t j = 0; j < ch; j++) {
            float v = x[r * ch + j];
            s->min = fminf(s->min, v);
            s->max = fmaxf(s->max, v);
            s->mean_sq[j] += (double)v * v; /* sums until the end */
        }
    q_hist_add(&s->hist, x, n);
    s->count += n;
    if (s->xx) add_outer(s->xx, x, n / ch, ch, row);
    return true;
}

bool pass_calib_open(const ir_graph *g, const char *const *specs, int n, interp_file *ins, int64_t *samples)
{
    int64_t batch;
    if (!interp_files_open(g, specs, n, ins, &batch)) return false;
    *samples = batch < 0 ? 1 : batch;
    return true;
}

static bool stream(ir_graph *g, ir_calibration *c, interp_file *ins, int n_ins)
{
    sup_arena scratch = {0};
    interp *it = interp_new(&scratch, g);
    int64_t widest = 1;
    for (int i = 0; i < g->n_nodes; i++)
        if (c->of_node[i] && c->of_node[i]->channels > widest) widest = c->of_node[i]->channels;
    double *row = sup_arena_alloc(&scratch, sizeof(double) * (size_t)widest);
    sup_progress pr;
    sup_progress_begin(&pr, "calibrating");
    bool ok = true;
    for (int64_t s = 0; s < c->samples && ok; s++) {
        ok = interp_files_load(g, it, ins, n_ins, s) && interp_run(it);
        for (int i = 0; i < g->n_nodes && ok; i++)
            if (c->of_node[i]) ok = accumulate(g, c->of_node[i], interp_node_value(it, i), s, row);
        sup_progress_update(&pr, s + 1, c->samples);
    }
    sup_progress_end(&pr);
    sup_arena_free(&scratch);
    return ok;
}

bool pass_calibrate(ir_graph *g, const pass_prec_options *o, bool second_moments)
{
    if (!o || o->n_calib == 0) return true;
    double t0 = sup_now();
    ir_calibration *c = sup_arena_alloc(g->arena, sizeof *c);
    c->second_moments = second_moments;
    c->method = Q_OBS_MSE;
    c->percentile = 99.99;
    if (o->calib_method && !q_observer_parse(o->calib_method, &c->method, &c->percentile)) {
        sup_error_plain("unknown --calib-method '%s' (methods: minmax, percentile, percentile=P, mse, kl)",
                       o->calib_method);
        return false;
    }
    c->specs = o->calib;
    c->n_specs = o->n_calib;
    c->of_node = sup_arena_alloc(g->arena, sizeof *c->of_node * (size_t)g->n_nodes);
    c->gptq_u = sup_arena_alloc(g->arena, sizeof *c->gptq_u * (size_t)g->n_nodes);
    c->gptq_dead = sup_arena_alloc(g->arena, sizeof *c->gptq_dead * (size_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        bool weight_matrix = n->op == IR_OP_LINEAR && g->nodes[n->inputs[1]].op == IR_OP_WEIGHT;
        if (n->op == IR_OP_LINEAR) observe(g, c, n->inputs[0], weight_matrix);
        if (n->op == IR_OP_MATMUL) observe(g, c, n->inputs[0], false), observe(g, c, n->inputs[1], false);
    }
    interp_file ins[PASS_MAX_CALIB];
    if (!pass_calib_open(g, o->calib, o->n_calib, ins, &c->samples)) return false;
    bool ok = stream(g, c, ins, o->n_calib);
    for (int i = 0; i < o->n_calib; i++) interp_file_close(&ins[i]);
    if (!ok) return false;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_calib_stats *s = c->of_node[i];
        if (!s) continue;
        double rows = (double)s->count / (double)s->channels;
        for (int64_t j = 0; j < s->channels; j++) s->mean_sq[j] /= rows;
        int64_t k = s->channels;
        for (int64_t a = 0; s->xx && a < k; a++)
            for (int64_t b = a; b < k; b++) s->xx[a * k + b] = s->xx[b * k + a] = s->xx[a * k + b] / rows;
        s->clip = q_observer_clip(&s->hist, c->method, c->percentile);
    }
    c->seconds = sup_now() - t0;
    g->calib = c;
    return true;
}

float pass_calib_act_scale(const ir_graph *g, int32_t w)
{
    double clip = 0;
    for (int i = 0; g->calib && i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        if (n->op != IR_OP_LINEAR || n->inputs[1] != w || !g->calib->of_node[n->inputs[0]]) continue;
        clip = fmax(clip, g->calib->of_node[n->inputs[0]]->clip);
    }
    return clip > 0 ? (float)(clip / 127) : 1.0f;
}

const double *pass_calib_second_moment(const ir_graph *g, int32_t w, sup_arena *arena)
{
    int64_t k = g->nodes[w].shape[1];
    double *h = NULL;
    int n = 0;
    for (int i = w + 1; g->calib && i < g->n_nodes; i++) {
        const ir_node *l = &g->nodes[i];
        if (l->op != IR_OP_LINEAR || l->inputs[1] != w) continue;
        const ir_calib_stats *s = g->calib->of_node[l->inputs[0]];
        if (!s || !s->xx || s->channels != k) return NULL;
        if (!h) h = sup_arena_alloc(arena, sizeof(double) * (size_t)(k * k));
        for (int64_t j = 0; j < k * k; j++) h[j] += s->xx[j];
        n++;
    }
    for (int64_t j = 0; h && j < k * k; j++) h[j] /= n;
    return h;
}
