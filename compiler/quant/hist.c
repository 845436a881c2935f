/* hist.c: histograms of activations and the observers that choose an int8
 * clip from them (calibration).
 *
 * The histogram covers [0, 2^e) in Q_HIST_BINS bins and doubles its range
 * (merging pairs of bins) when a larger value arrives, so its counts are
 * exactly those a histogram over the final range would hold: the result
 * does not depend on the order of the values.
 *
 * Observers (--calib-method):
 *   minmax      the largest |x|;
 *   percentile  the smallest bin edge below which P% of |x| lie (99.99);
 *   mse         the clip c minimising the expected squared error of int8
 *               quantization: (c/127)^2/12 for every nonzero value inside,
 *               (|x| - c)^2 for every value beyond (bin centres);
 *   kl          TensorRT's entropy calibration, as in ONNX Runtime: the clip
 *               whose histogram folded into 128 levels is closest in
 *               KL divergence to the original. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

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
        double err =
            n_in * step * step / 12 + fmax(0, q_all - 2 * clip * s_all + clip * clip * n_out);
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
