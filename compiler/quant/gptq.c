/* gptq.c: GPTQ rounding of a weight matrix.
 *
 * Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative
 * Pre-trained Transformers" (2022). With H = E[x x^T] of the layer's input,
 * the columns are quantized in order; each column's rounding error, divided
 * by the pivot of the upper Cholesky factor U of H^-1, is subtracted from
 * the columns after it in proportion to U's row, which minimises the
 * increase of E||(W - Q) x||^2 given the earlier choices. A group's scale
 * (and zero point) is chosen, by the format's clip rule, from the updated
 * values when its first column is reached. 1% of the mean diagonal is
 * added to H (dampening); channels that never fire get weight 0.
 *
 * Act-order (`:act`, the GPTQ authors' "desc_act"): the columns are
 * visited by decreasing E[x_j^2], the most important first, with H and its
 * factor reordered likewise; every group's parameters are chosen from the
 * original weights before (static groups), so groups stay runs of
 * consecutive columns and the storage does not change.
 *
 * Scale refit (groups): GPTQ fixes each group's scale before it rounds the
 * group, from values the compensation has since moved. Given the codes,
 * each row's group scales s are then refitted for the least output noise
 * (w - D s)^T H (w - D s) (D: the codes minus the zero points, one column
 * per group; H dampened, rebuilt from the factor), a least-squares system
 * of one unknown per group; the refitted scales, rounded to their type,
 * replace GPTQ's where the noise falls and no sign changes. On llama-dev's
 * int4 g32 this lowers the calibration KL of :gptq from 0.0115 to 0.0111,
 * on tiny-gpt from 0.0063 to 0.0062 (:gptq:act 0.0061 to 0.0058).
 *
 * Needs: H from calibration (the caller's); a block layout (q_choice) that
 * q_choose_params accepts for the whole matrix. */
#include <math.h>
#include <string.h>

#include "quant.h"

/* The scale refit needs H (k x k) from the factor, k^3 / 2 multiply-adds:
 * skipped for wider inputs, where it would cost more than GPTQ itself. */
enum { REFIT_MAX_K = 2048 };

/* a = L L^T in place (lower triangle, row-major k x k). */
static bool cholesky(double *a, int64_t k)
{
    for (int64_t j = 0; j < k; j++) {
        double d = a[j * k + j];
        for (int64_t p = 0; p < j; p++) d -= a[j * k + p] * a[j * k + p];
        if (!(d > 0)) return false;
        a[j * k + j] = sqrt(d);
        for (int64_t i = j + 1; i < k; i++) {
            double v = a[i * k + j];
            for (int64_t p = 0; p < j; p++) v -= a[i * k + p] * a[j * k + p];
            a[i * k + j] = v / a[j * k + j];
        }
    }
    return true;
}

/* U, upper, with U^T U = H^-1: from H = L L^T, H^-1 = L^-T L^-1; its
 * Cholesky factor is computed directly on the inverse. */
bool q_gptq_factor(sup_arena *a, const double *h, int64_t k, double *u, bool *dead)
{
    double *m = sup_arena_alloc(a, sizeof(double) * (size_t)(k * k));
    memcpy(m, h, sizeof(double) * (size_t)(k * k));
    double mean = 0;
    for (int64_t i = 0; i < k; i++) {
        dead[i] = !(m[i * k + i] > 0);
        if (dead[i]) m[i * k + i] = 1;
        mean += m[i * k + i];
    }
    for (int64_t i = 0; i < k; i++) m[i * k + i] += 0.01 * mean / (double)k;
    if (!cholesky(m, k)) return false;
    /* inv = L^-1 (lower), by forward substitution, stored transposed
     * (invt[c][i] = inv[i][c]) so that every sum runs over contiguous
     * memory; each is still the same sequence of operations */
    double *invt = sup_arena_alloc(a, sizeof(double) * (size_t)(k * k));
    for (int64_t c = 0; c < k; c++) {
        double *col = invt + c * k;
        for (int64_t i = c; i < k; i++) {
            double v = i == c ? 1 : 0;
            const double *mi = m + i * k;
            for (int64_t p = c; p < i; p++) v -= mi[p] * col[p];
            col[i] = v / mi[i];
        }
    }
    /* H^-1 = inv^T inv, then its lower Cholesky factor, transposed */
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j <= i; j++) {
            double v = 0;
            const double *ci = invt + i * k, *cj = invt + j * k;
            for (int64_t p = i; p < k; p++) v += ci[p] * cj[p];
            m[i * k + j] = m[j * k + i] = v;
        }
    if (!cholesky(m, k)) return false;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) u[i * k + j] = j >= i ? m[j * k + i] : 0;
    return true;
}

/* The parameters of the group starting at column c, from the current values. */
static void gptq_group_params(sup_arena *a, const double *w, int64_t n, int64_t k, int64_t c,
                              const q_choice *ch, float *scales, int32_t *zps, int64_t ng)
{
    int64_t g = ch->block;
    float *slice = sup_arena_alloc(a, sizeof(float) * (size_t)(n * g));
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < g; j++) slice[r * g + j] = c + j < k ? (float)w[r * k + c + j] : 0;
    q_params p;
    char err[128];
    int64_t shape[2] = {n, g};
    bool ok = q_choose_params(a, slice, 2, shape, ch, &p, err, sizeof err);
    QMC_ASSERT(ok); /* the same layout as the whole matrix's, which succeeded */
    for (int64_t r = 0; r < n; r++) {
        scales[r * ng + c / g] = p.scales[r];
        if (zps) zps[r * ng + c / g] = p.zero_points ? p.zero_points[r] : 0;
    }
}

const double *q_gptq_act_order(sup_arena *a, const double *h, int64_t k, int64_t *order)
{
    for (int64_t i = 0; i < k; i++) order[i] = i;
    /* insertion sort: stable, so ties keep their index order */
    for (int64_t i = 1; i < k; i++)
        for (int64_t j = i;
             j > 0 && h[order[j] * k + order[j]] > h[order[j - 1] * k + order[j - 1]]; j--) {
            int64_t t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    double *hp = sup_arena_alloc(a, sizeof(double) * (size_t)(k * k));
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) hp[i * k + j] = h[order[i] * k + order[j]];
    return hp;
}

/* act-order: the columns in order[], the groups' parameters chosen first. */
static void gptq_ordered(sup_arena *a, double *w, int64_t n, int64_t k, int64_t kp, const double *u,
                         const int64_t *order, const q_choice *ch, q_params *p, uint8_t *codes)
{
    int64_t ng = kp / ch->block;
    int32_t qmin = q_format_qmin(ch->format), qmax = q_format_qmax(ch->format);
    for (int64_t c = 0; c < k; c += ch->block)
        gptq_group_params(a, w, n, k, c, ch, p->scales, p->zero_points, ng);
    for (int64_t t = 0; t < k; t++) {
        int64_t c = order[t];
        const double *ur = u + t * k;
        for (int64_t r = 0; r < n; r++) {
            float s = p->scales[r * ng + c / ch->block];
            int32_t z = p->zero_points ? p->zero_points[r * ng + c / ch->block] : 0;
            double *wr = w + r * k;
            int32_t q = q_int_encode((float)wr[c] / s, z, qmin, qmax);
            codes[r * kp + c] = (uint8_t)q;
            double err = (wr[c] - (double)((float)(q - z) * s)) / ur[t];
            for (int64_t j = t + 1; j < k; j++) wr[order[j]] -= err * ur[j];
        }
    }
}

/* H (k x k, the columns' order) from the factor: u^T u = H^-1 gives
 * H = u^-1 u^-T, u^-1 upper by back substitution; with order, h[order[i]]
 * [order[j]] is the (reordered) factor's element (i, j). */
static double *hessian_of(sup_arena *a, const double *u, int64_t k, const int64_t *order)
{
    /* vt[c] = column c of u^-1, rows 0 .. c (upper) */
    double *vt = sup_arena_alloc(a, sizeof(double) * (size_t)(k * k));
    memset(vt, 0, sizeof(double) * (size_t)(k * k));
    for (int64_t c = 0; c < k; c++) {
        double *col = vt + c * k;
        for (int64_t i = c; i >= 0; i--) {
            double v = i == c ? 1 : 0;
            const double *ui = u + i * k;
            for (int64_t p = i + 1; p <= c; p++) v -= ui[p] * col[p];
            col[i] = v / ui[i];
        }
    }
    /* H[i][j] = sum_p v[i][p] v[j][p], p >= max(i, j) */
    double *h = sup_arena_alloc(a, sizeof(double) * (size_t)(k * k));
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j <= i; j++) {
            double v = 0;
            for (int64_t p = i; p < k; p++) v += vt[p * k + i] * vt[p * k + j];
            int64_t oi = order ? order[i] : i, oj = order ? order[j] : j;
            h[oi * k + oj] = h[oj * k + oi] = v;
        }
    return h;
}

/* Solves a x = b (m x m, symmetric positive definite, overwritten) by
 * Cholesky; false if it is not. */
static bool solve_spd(double *a, double *b, int64_t m)
{
    for (int64_t j = 0; j < m; j++) {
        double d = a[j * m + j];
        for (int64_t p = 0; p < j; p++) d -= a[j * m + p] * a[j * m + p];
        if (!(d > 0)) return false;
        a[j * m + j] = sqrt(d);
        for (int64_t i = j + 1; i < m; i++) {
            double v = a[i * m + j];
            for (int64_t p = 0; p < j; p++) v -= a[i * m + p] * a[j * m + p];
            a[i * m + j] = v / a[j * m + j];
        }
    }
    for (int64_t i = 0; i < m; i++) {
        for (int64_t p = 0; p < i; p++) b[i] -= a[i * m + p] * b[p];
        b[i] /= a[i * m + i];
    }
    for (int64_t i = m - 1; i >= 0; i--) {
        for (int64_t p = i + 1; p < m; p++) b[i] -= a[p * m + i] * b[p];
        b[i] /= a[i * m + i];
    }
    return true;
}

/* The scales refitted to the codes: for each row, the group scales s that
 * minimise (w - D s)^T H (w - D s), D the codes minus the zero points, one
 * column per group; kept (rounded to the scale type) where all are positive
 * and the error is less than with GPTQ's scales. */
static void refit_scales(sup_arena *a, const double *w0, int64_t n, int64_t k, int64_t kp,
                         const double *h, const q_choice *ch, q_params *p, const uint8_t *codes)
{
    int64_t g = ch->block, ng = kp / g;
    bool is_signed = q_format_qmin(ch->format) < 0;
    double *d = sup_arena_alloc(a, sizeof(double) * (size_t)k);
    double *hw = sup_arena_alloc(a, sizeof(double) * (size_t)k);
    double *t = sup_arena_alloc(a, sizeof(double) * (size_t)(k * ng)); /* t[i][c] = (H D)[i][c] */
    double *am = sup_arena_alloc(a, sizeof(double) * (size_t)(ng * ng));
    double *chol = sup_arena_alloc(a, sizeof(double) * (size_t)(ng * ng));
    double *b = sup_arena_alloc(a, sizeof(double) * (size_t)ng);
    double *s = sup_arena_alloc(a, sizeof(double) * (size_t)ng);
    for (int64_t r = 0; r < n; r++) {
        const double *w = w0 + r * k;
        float *sc = p->scales + r * ng;
        for (int64_t j = 0; j < k; j++) {
            uint8_t c = codes[r * kp + j];
            int32_t z = p->zero_points ? p->zero_points[r * ng + j / g] : 0;
            d[j] = (double)((is_signed ? (int32_t)(int8_t)c : (int32_t)c) - z);
        }
        memset(t, 0, sizeof(double) * (size_t)(k * ng));
        for (int64_t i = 0; i < k; i++) {
            const double *hi = h + i * k;
            double v = 0;
            for (int64_t j = 0; j < k; j++) {
                t[i * ng + j / g] += hi[j] * d[j];
                v += hi[j] * w[j];
            }
            hw[i] = v;
        }
        memset(am, 0, sizeof(double) * (size_t)(ng * ng));
        memset(b, 0, sizeof(double) * (size_t)ng);
        double wHw = 0;
        for (int64_t i = 0; i < k; i++) {
            wHw += w[i] * hw[i];
            b[i / g] += d[i] * hw[i];
            for (int64_t c = 0; c < ng; c++) am[(i / g) * ng + c] += d[i] * t[i * ng + c];
        }
        /* the error of scales x: wHw - 2 x.b + x^T A x */
        double trace = 0;
        for (int64_t c = 0; c < ng; c++) trace += am[c * ng + c];
        memcpy(chol, am, sizeof(double) * (size_t)(ng * ng));
        for (int64_t c = 0; c < ng; c++) chol[c * ng + c] += 1e-9 * trace / (double)ng + 1e-30;
        memcpy(s, b, sizeof(double) * (size_t)ng);
        if (!solve_spd(chol, s, ng)) continue;
        bool same_sign = true; /* a scale's sign is the rounding's (params.c) */
        for (int64_t c = 0; c < ng && same_sign; c++) {
            s[c] = q_scale_round((float)s[c], ch->scale_dtype);
            same_sign = s[c] * sc[c] > 0 && isfinite(s[c]);
        }
        if (!same_sign) continue;
        double e_old = wHw, e_new = wHw;
        for (int64_t c = 0; c < ng; c++) {
            e_old -= 2 * (double)sc[c] * b[c], e_new -= 2 * s[c] * b[c];
            for (int64_t c2 = 0; c2 < ng; c2++) {
                e_old += (double)sc[c] * am[c * ng + c2] * sc[c2];
                e_new += s[c] * am[c * ng + c2] * s[c2];
            }
        }
        if (e_new < e_old)
            for (int64_t c = 0; c < ng; c++) sc[c] = (float)s[c];
    }
}

/* Codes [n][kp] of orig [n][k] by GPTQ; fills p's scales and zero points. */
void q_gptq_codes(sup_arena *a, const float *orig, int64_t n, int64_t k, int64_t kp,
                  const double *u, const bool *dead, const int64_t *order, const q_choice *ch,
                  q_params *p, uint8_t *codes)
{
    double *w = sup_arena_alloc(a, sizeof(double) * (size_t)(n * k));
    bool *dead_at = sup_arena_alloc(a, sizeof(bool) * (size_t)k); /* by column */
    for (int64_t t = 0; t < k; t++) dead_at[order ? order[t] : t] = dead[t];
    for (int64_t i = 0; i < n * k; i++) w[i] = dead_at[i % k] ? 0 : orig[i];
    int64_t ng = kp / ch->block;
    int32_t qmin = q_format_qmin(ch->format), qmax = q_format_qmax(ch->format);
    memset(codes, 0, (size_t)(n * kp));
    double *w0 = NULL;
    if (ch->granularity == Q_GRAN_BLOCK && k <= REFIT_MAX_K) {
        w0 = sup_arena_alloc(a, sizeof(double) * (size_t)(n * k));
        memcpy(w0, w, sizeof(double) * (size_t)(n * k));
    }
    if (order) gptq_ordered(a, w, n, k, kp, u, order, ch, p, codes);
    for (int64_t c = 0; c < k && !order; c++) {
        if (c % ch->block == 0) gptq_group_params(a, w, n, k, c, ch, p->scales, p->zero_points, ng);
        for (int64_t r = 0; r < n; r++) {
            float s = p->scales[r * ng + c / ch->block];
            int32_t z = p->zero_points ? p->zero_points[r * ng + c / ch->block] : 0;
            int32_t q = q_int_encode((float)w[r * k + c] / s, z, qmin, qmax);
            codes[r * kp + c] = (uint8_t)q;
            double err = (w[r * k + c] - (double)((float)(q - z) * s)) / u[c * k + c];
            const double *ur = u + c * k;
            double *wr = w + r * k;
            for (int64_t j = c + 1; j < k; j++) wr[j] -= err * ur[j];
        }
    }
    if (w0) refit_scales(a, w0, n, k, kp, hessian_of(a, u, k, order), ch, p, codes);
    /* padding columns quantize 0 exactly */
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = k; c < kp; c++)
            codes[r * kp + c] =
                (uint8_t)(p->zero_points ? p->zero_points[r * ng + c / ch->block] : 0);
}
