/* quantize_weights.c: the quantize-weights pass.
 *
 * Needs: select precision has run.
 * Guarantees: every weight matrix with a precision other than f32 has an
 * ir_qweight: codes, scales (and zero points) chosen by compiler/quant from
 * the weight's values, the dequantized matrix the interpreter uses to
 * simulate the generated code, and its error and size. int4 groups run
 * along the input dimension; a row whose length is not a multiple of the
 * group is padded with zeros, which leaves every group's parameters as they
 * would be without the padding (the range always includes 0). */
#include <math.h>
#include <string.h>

#include "compiler.h"

/* How compiler/quant is asked for a precision's parameters. */
static q_choice choice_of(const q_precision *f)
{
    q_choice c = {.format = f->format, .clip = f->clip, .symmetric = f->format != QFMT_UINT4};
    if (f->group) {
        c.granularity = Q_GRAN_BLOCK;
        c.axis = 1;
        c.block = f->group;
        c.scale_dtype = QMC_DTYPE_F16;
    } else {
        c.granularity = Q_GRAN_AXIS;
        c.axis = 0;
        c.scale_dtype = QMC_DTYPE_F32;
    }
    return c;
}

size_t q_precision_bytes(const q_precision *f, int64_t n, int64_t k)
{
    if (f->format == QFMT_F32) return (size_t)(n * k) * 4;
    int64_t kp = f->group ? (k + f->group - 1) / f->group * f->group : k;
    int64_t groups = n * (f->group ? kp / f->group : 1);
    size_t scale_bytes = f->group ? 2 : 4; /* f16 scales for groups, f32 per channel */
    return (size_t)(n * kp) * (size_t)q_format_bits(f->format) / 8 + (size_t)groups * scale_bytes +
           (f->format == QFMT_UINT4 ? (size_t)groups : 0);
}

/* ---- GPTQ -------------------------------------------------------------------
 * Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative
 * Pre-trained Transformers" (2022). With H = E[x x^T] of the layer's input,
 * the columns are quantized in order; each column's rounding error, divided
 * by the pivot of the upper Cholesky factor U of H^-1, is subtracted from
 * the columns after it in proportion to U's row, which minimises the
 * increase of E||(W - Q) x||^2 given the earlier choices. A group's scale
 * (and zero point) is chosen, by the format's clip rule, from the updated
 * values when its first column is reached. 1% of the mean diagonal is
 * added to H (dampening); channels that never fire get weight 0. */

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
static bool gptq_factor(sup_arena *a, const double *h, int64_t k, double *u, bool *dead)
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
    /* inv = L^-1 (lower), by forward substitution */
    double *inv = sup_arena_alloc(a, sizeof(double) * (size_t)(k * k));
    for (int64_t c = 0; c < k; c++)
        for (int64_t i = c; i < k; i++) {
            double v = i == c ? 1 : 0;
            for (int64_t p = c; p < i; p++) v -= m[i * k + p] * inv[p * k + c];
            inv[i * k + c] = v / m[i * k + i];
        }
    /* H^-1 = inv^T inv, then its lower Cholesky factor, transposed */
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j <= i; j++) {
            double v = 0;
            for (int64_t p = i; p < k; p++) v += inv[p * k + i] * inv[p * k + j];
            m[i * k + j] = m[j * k + i] = v;
        }
    if (!cholesky(m, k)) return false;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) u[i * k + j] = j >= i ? m[j * k + i] : 0;
    return true;
}

/* The parameters of the group starting at column c, from the current values. */
static void gptq_group_params(sup_arena *a, const double *w, int64_t n, int64_t k, int64_t c, const q_choice *ch,
                              float *scales, int32_t *zps, int64_t ng)
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

/* Codes [n][kp] of orig [n][k] by GPTQ; fills p's scales and zero points. */
static void gptq_codes(sup_arena *a, const float *orig, int64_t n, int64_t k, int64_t kp, const double *u,
                       const bool *dead, const q_choice *ch, q_params *p, uint8_t *codes)
{
    double *w = sup_arena_alloc(a, sizeof(double) * (size_t)(n * k));
    for (int64_t i = 0; i < n * k; i++) w[i] = dead[i % k] ? 0 : orig[i];
    int64_t ng = kp / ch->block;
    int32_t qmin = q_format_qmin(ch->format), qmax = q_format_qmax(ch->format);
    memset(codes, 0, (size_t)(n * kp));
    for (int64_t c = 0; c < k; c++) {
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
    /* padding columns quantize 0 exactly */
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = k; c < kp; c++) codes[r * kp + c] = (uint8_t)(p->zero_points ? p->zero_points[r * ng + c / ch->block] : 0);
}

/* The factor of weight node w, computed once per calibration. */
static bool gptq_prepare(const ir_graph *g, int32_t node)
{
    const ir_node *w = &g->nodes[node];
    ir_calibration *cal = g->calib;
    if (cal && cal->gptq_u[node]) return true;
    sup_arena tmp = {0};
    const double *h = cal ? pass_calib_second_moment(g, node, &tmp) : NULL;
    if (!h) {
        sup_arena_free(&tmp);
        sup_error(w->loc, "quantizing '%s' by GPTQ needs the second moments of its input from calibration (--calib)",
                 w->name);
        return false;
    }
    int64_t k = w->shape[1];
    double *u = sup_arena_alloc(g->arena, sizeof(double) * (size_t)(k * k));
    bool *dead = sup_arena_alloc(g->arena, sizeof(bool) * (size_t)k);
    bool ok = gptq_factor(&tmp, h, k, u, dead);
    sup_arena_free(&tmp);
    if (!ok) {
        sup_error(w->loc, "cannot quantize weight '%s' by GPTQ: its input's second moment is singular", w->name);
        return false;
    }
    cal->gptq_u[node] = u;
    cal->gptq_dead[node] = dead;
    return true;
}

ir_qweight *pass_quantize_matrix(sup_arena *a, const ir_graph *g, int32_t node, const q_precision *f)
{
    const ir_node *w = &g->nodes[node];
    ir_qweight *q = sup_arena_alloc(a, sizeof *q);
    q->f = *f;
    q->n = w->shape[0];
    q->k = w->shape[1];
    int64_t group = q->f.group ? q->f.group : 0;
    q->kp = group ? (q->k + group - 1) / group * group : q->k;
    float *orig = sup_arena_alloc(a, sizeof(float) * (size_t)(q->n * q->k));
    fe_tensor_to_f32(w->tensor, orig);
    for (int64_t i = 0; i < q->n * q->k; i++)
        if (!isfinite(orig[i])) {
            sup_error(w->loc, "weight '%s' holds a non-finite value at element %lld and cannot be quantized", w->name,
                     (long long)i);
            return NULL;
        }
    float *padded = sup_arena_alloc(a, sizeof(float) * (size_t)(q->n * q->kp));
    for (int64_t r = 0; r < q->n; r++) memcpy(padded + r * q->kp, orig + r * q->k, sizeof(float) * (size_t)q->k);
    q_choice c = choice_of(&q->f);
    q_params p;
    char err[256];
    int64_t shape[2] = {q->n, q->kp};
    if (!q_choose_params(a, padded, 2, shape, &c, &p, err, sizeof err)) {
        sup_error(w->loc, "cannot quantize weight '%s' to %s: %s", w->name, q_precision_name(a, &q->f), err);
        return NULL;
    }
    q->codes = sup_arena_alloc(a, (size_t)(q->n * q->kp));
    if (f->gptq) {
        if (!gptq_prepare(g, node)) return NULL;
        gptq_codes(a, orig, q->n, q->k, q->kp, g->calib->gptq_u[node], g->calib->gptq_dead[node], &c, &p, q->codes);
    } else {
        q_quantize(padded, 2, shape, &p, q->codes);
    }
    float *deq = sup_arena_alloc(a, sizeof(float) * (size_t)(q->n * q->kp));
    q_dequantize(q->codes, 2, shape, &p, deq);
    q->dequant = sup_arena_alloc(a, sizeof(float) * (size_t)(q->n * q->k));
    for (int64_t r = 0; r < q->n; r++) memcpy(q->dequant + r * q->k, deq + r * q->kp, sizeof(float) * (size_t)q->k);
    q->group = group ? group : q->kp;
    q->n_groups = q->kp / q->group;
    q->scales = p.scales;
    q->zero_points = p.zero_points;
    q->stats = q_measure(orig, q->dequant, q->n * q->k);
    q->bytes = q_precision_bytes(&q->f, q->n, q->k);
    q->bits_per_weight = 8.0 * (double)q->bytes / (double)(q->n * q->k);
    return q;
}

bool pass_quantize_weights(ir_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *w = &g->nodes[i];
        if (w->is_matrix && w->qformat.format != QFMT_F32 && !w->qw && !(w->qw = pass_quantize_matrix(g->arena, g, i, &w->qformat)))
            return false;
    }
    return true;
}

void interp_use_quantized_weights(interp *it, const ir_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].qw) interp_set_weight(it, i, g->nodes[i].qw->dequant);
}
