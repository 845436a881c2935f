/* methods.c: better parameters for a weight matrix at the same storage:
 * importance-weighted search (`:imat`) and half-quadratic optimisation
 * (`:hqq`).
 *
 * Needs: the parameter choice of params.c (the starting point), the
 * integer encoding of intq.c (the codes q_quantize will compute).
 * Guarantees: every group keeps the layout of q_choose_params (the same
 * scale count, f16 scales for groups, integer zero points in the code
 * range, 0.0 exact), so the stored format does not change; only the
 * values of the scales and zero points do, and only where the method's
 * squared error (weighted by the importance for :imat) is less than the
 * clip rule's. No randomness: the same weights give the same bits.
 *
 * imat: llama.cpp's importance-matrix quantization (make_qx_quants with
 * quant_weights): each group's squared error is weighted by E[x_j^2] of
 * the input channel j it multiplies (plus a small floor, so that channels
 * calibration never saw still count a little); the search tries clip
 * ratios from 1.15 (a symmetric int4 scale can map a negative extreme to
 * -8) down to 0.50, then refits the best and the clip rule's scale, and
 * zero point, by weighted least squares given their codes.
 *
 * hqq: Badri and Shaji, "Half-Quadratic Quantization of Large Machine
 * Learning Models" (2023). The weights' error is split into a sparse part
 * e (the lp shrinkage, p = 0.7, of w - dequant(w)) and the rest; the
 * parameters are fitted by least squares to w - e, the codes re-rounded,
 * and beta (the split's weight) grows by 1.01 each of at most 20
 * iterations, stopping when the error no longer falls (HQQ's defaults).
 * HQQ's zero points are floats; here they stay integers (the format's),
 * rounded after each fit with the scale refitted for it. */
#include <math.h>
#include <string.h>

#include "quant.h"

enum { HQQ_ITERS = 20 };
#define HQQ_BETA 10.0
#define HQQ_KAPPA 1.01
#define HQQ_P 0.7
#define IMAT_FLOOR 1e-4 /* of the mean importance: every channel counts a little */

/* One group: n values (x), their weights (wt, NULL: 1), the code range. */
typedef struct group {
    const float *x;
    const double *wt;
    int64_t n;
    int32_t qmin, qmax;
    bool symmetric;
    qmc_dtype scale_dtype;
} group;

static int32_t code(const group *g, float x, float s, int32_t z)
{
    return q_int_encode(x / s, z, g->qmin, g->qmax);
}

/* Weighted squared error of (s, z), as q_quantize and q_dequantize compute. */
static double group_error(const group *g, float s, int32_t z)
{
    double e = 0;
    for (int64_t j = 0; j < g->n; j++) {
        double d = (double)((float)(code(g, g->x[j], s, z) - z) * s) - g->x[j];
        e += (g->wt ? g->wt[j] : 1) * d * d;
    }
    return e;
}

/* The scale (for zero point z) that fits y ~ (q - z) s best in the weighted
 * least-squares sense, with q the codes of (s, z); 0 if none. */
static double fit_scale(const group *g, const float *y, float s, int32_t z)
{
    double num = 0, den = 0;
    for (int64_t j = 0; j < g->n; j++) {
        double w = g->wt ? g->wt[j] : 1, q = code(g, g->x[j], s, z) - z;
        num += w * q * y[j];
        den += w * q * q;
    }
    return den > 0 ? num / den : 0;
}

/* Asymmetric: y ~ s q + b by weighted least squares, then the integer zero
 * point z = -b / s rounded into the code range, then the scale for it. */
static bool fit_affine(const group *g, const float *y, float *s, int32_t *z)
{
    double sw = 0, sq = 0, sy = 0, sqq = 0, sqy = 0;
    for (int64_t j = 0; j < g->n; j++) {
        double w = g->wt ? g->wt[j] : 1, q = code(g, g->x[j], *s, *z);
        sw += w, sq += w * q, sy += w * y[j], sqq += w * q * q, sqy += w * q * y[j];
    }
    double det = sw * sqq - sq * sq;
    if (!(det > 0)) return false;
    double a = (sw * sqy - sq * sy) / det, b = (sy - a * sq) / sw;
    if (!(a > 0)) return false;
    double zf = fmin(fmax(rint(-b / a), g->qmin), g->qmax);
    int32_t z0 = *z;
    *z = (int32_t)zf;
    double s1 = fit_scale(g, y, *s, *z);
    if (!(s1 > 0)) {
        *z = z0;
        return false;
    }
    *s = q_scale_round((float)s1, g->scale_dtype);
    return true;
}

/* Refits (s, z) to y given the codes of (s, z); false if no fit. */
static bool refit(const group *g, const float *y, float *s, int32_t *z)
{
    if (!g->symmetric) return fit_affine(g, y, s, z);
    double s1 = fit_scale(g, y, *s, *z);
    if (!(s1 > 0)) return false;
    *s = q_scale_round((float)s1, g->scale_dtype);
    return true;
}

/* Refits (s, z) from its codes twice, keeping the least weighted error. */
static void refine(const group *g, float s, int32_t z, double *best, float *bs, int32_t *bz)
{
    for (int r = 0; r < 2 && refit(g, g->x, &s, &z); r++) {
        double e = group_error(g, s, z);
        if (e < *best) *best = e, *bs = s, *bz = z;
    }
}

/* imat: the clip ratios 1.15 .. 0.50, then the best and the clip rule's
 * parameters refitted. */
static void imat_group(const group *g, q_format format, float mn, float mx, float *s, int32_t *z)
{
    float s0 = *s;
    int32_t z0 = *z;
    double best = group_error(g, *s, *z);
    for (int pc = 115; pc >= 50; pc--) {
        float ts;
        int32_t tz;
        q_group_params(format, g->symmetric, g->scale_dtype, mn, mx, (float)pc / 100.0f, &ts, &tz);
        double e = group_error(g, ts, tz);
        if (e < best) best = e, *s = ts, *z = tz;
    }
    refine(g, *s, *z, &best, s, z);
    refine(g, s0, z0, &best, s, z);
}

/* HQQ's shrinkage of a residual: sign(x) max(|x| - |x|^(p-1) / beta, 0). */
static float shrink_lp(float x, double beta)
{
    double a = fabs((double)x);
    if (a == 0) return 0;
    double v = a - pow(a, HQQ_P - 1) / beta;
    return v > 0 ? (float)copysign(v, x) : 0.0f;
}

/* hqq: y = w - e, e the shrunk residual, then (s, z) fitted to y. */
static void hqq_group(const group *g, float *y, float *s, int32_t *z)
{
    double best = group_error(g, *s, *z), beta = HQQ_BETA;
    float ts = *s;
    int32_t tz = *z;
    for (int it = 0; it < HQQ_ITERS; it++, beta *= HQQ_KAPPA) {
        for (int64_t j = 0; j < g->n; j++) {
            float r = (float)(code(g, g->x[j], ts, tz) - tz) * ts;
            y[j] = g->x[j] - shrink_lp(g->x[j] - r, beta);
        }
        if (!refit(g, y, &ts, &tz)) break;
        double e = group_error(g, ts, tz);
        if (!(e < best)) break;
        best = e, *s = ts, *z = tz;
    }
}

/* The group's minimum and maximum, 0 included (as q_choose_params has it). */
static void group_range(const float *x, int64_t n, float *mn, float *mx)
{
    *mn = *mx = 0;
    for (int64_t j = 0; j < n; j++) {
        *mn = x[j] < *mn ? x[j] : *mn;
        *mx = x[j] > *mx ? x[j] : *mx;
    }
}

void q_method_refine(sup_arena *a, const float *w, int64_t n, int64_t k, int64_t kp,
                     const q_precision *f, const double *importance, q_params *p)
{
    if (!f->imat && !f->hqq) return;
    QMC_ASSERT(q_format_is_int(f->format) && (!f->imat || importance));
    int64_t gsize = f->group ? f->group : kp, groups = kp / gsize;
    QMC_ASSERT(p->scale_count == n * groups);
    double *wt = NULL;
    if (f->imat) {
        /* the importance of every column, padding 0, with a floor */
        double mean = 0;
        for (int64_t j = 0; j < k; j++) mean += importance[j];
        mean = k ? mean / (double)k : 0;
        wt = sup_arena_alloc(a, sizeof(double) * (size_t)kp);
        for (int64_t j = 0; j < kp; j++)
            wt[j] = (j < k ? importance[j] : 0) + IMAT_FLOOR * (mean > 0 ? mean : 1);
    }
    float *y = sup_arena_alloc(a, sizeof(float) * (size_t)gsize);
    int32_t zdummy = 0;
    for (int64_t r = 0; r < n; r++)
        for (int64_t gi = 0; gi < groups; gi++) {
            int64_t idx = r * groups + gi;
            group g = {w + r * kp + gi * gsize,
                       wt ? wt + gi * gsize : NULL,
                       gsize,
                       q_format_qmin(f->format),
                       q_format_qmax(f->format),
                       p->zero_points == NULL,
                       p->scale_dtype};
            int32_t *z = p->zero_points ? &p->zero_points[idx] : &zdummy;
            if (f->imat) {
                float mn, mx;
                group_range(g.x, g.n, &mn, &mx);
                imat_group(&g, f->format, mn, mx, &p->scales[idx], z);
            } else {
                hqq_group(&g, y, &p->scales[idx], z);
            }
        }
}
