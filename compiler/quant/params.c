/* params.c: choosing quantization parameters from data.
 *
 * Needs: finite data; a q_choice whose layout fits the tensor.
 * Guarantees: every group (the elements sharing one scale) gets the
 * min-max parameters of q_group_params, or with MSE clipping the clip ratio
 * in (0, 1] whose quantization has the least squared error on that group,
 * measured with the scale rounded to its storage type, exactly as
 * q_quantize/q_dequantize will then compute. Asymmetric zero points are
 * integers in the code range, so 0.0 quantizes to the zero point and back
 * to exactly 0.0. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "quant.h"

float q_scale_round(float scale, qmc_dtype scale_dtype)
{
    if (scale_dtype != QMC_DTYPE_F16) return scale;
    uint16_t h = q_f16_from_f32(scale);
    uint16_t mag = h & 0x7FFF;
    if (mag == 0) h = (uint16_t)((h & 0x8000) | 1);           /* 2^-24 */
    if (mag >= 0x7C00) h = (uint16_t)((h & 0x8000) | 0x7BFF); /* 65504 */
    return q_f16_to_f32(h);
}

void q_group_params(q_format format, bool symmetric, qmc_dtype scale_dtype, float mn, float mx,
                    float c, float *scale, int32_t *zp)
{
    float amax = fmaxf(fabsf(mn), fabsf(mx)) * c;
    float s, lo = 0;
    int32_t z = 0;
    if (q_format_code_bytes(format) == 2) {
        *scale = 1.0f; /* bf16/f16: the values themselves */
        *zp = 0;
        return;
    }
    if (q_format_is_fp8(format) || format == QFMT_NF4) {
        s = amax / q_format_max(format); /* NF4: the largest magnitude is code 0 or 15 */
    } else if (symmetric && q_format_is_low(format) && q_format_qmin(format) < 0) {
        /* the value of largest magnitude, with its sign, becomes qmin: every
         * code is used and the step is max|x| / 8 for int4, not / 7 (the
         * scale is negative when that value is positive). int8 keeps
         * max|x| / 127: there the two measure the same (test_quant_params) */
        float m = (fabsf(mn) >= fabsf(mx) ? mn : mx) * c;
        s = m / (float)q_format_qmin(format);
    } else if (symmetric) {
        int32_t qmax = q_format_qmax(format);
        z = q_format_qmin(format) == 0 ? (qmax + 1) / 2 : 0; /* uint: the middle code */
        s = amax / (float)(qmax - z);
    } else {
        lo = fminf(mn, 0.0f) * c;
        float hi = fmaxf(mx, 0.0f) * c;
        s = (hi - lo) / (float)(q_format_qmax(format) - q_format_qmin(format));
    }
    if (!(fabsf(s) > 0)) s = 1.0f; /* an all-zero group */
    s = q_scale_round(s, scale_dtype);
    if (!symmetric && q_format_is_int(format)) {
        float zf = (float)q_format_qmin(format) - rintf(lo / s);
        zf = fminf(fmaxf(zf, (float)q_format_qmin(format)), (float)q_format_qmax(format));
        z = (int32_t)zf;
    }
    *scale = s;
    *zp = z;
}

double q_bits_per_element(const q_params *p, int64_t count)
{
    if (count <= 0) return 0;
    double code_bits = q_format_bits(p->format);
    double scale_bits = p->scale_dtype == QMC_DTYPE_F16 ? 16 : 32;
    double bits = code_bits * (double)count + scale_bits * (double)p->scale_count;
    if (p->zero_points && !q_format_is_fp8(p->format)) bits += code_bits * (double)p->scale_count;
    return bits / (double)count;
}

/* ---- the range of every group ------------------------------------------ */

typedef struct range_ctx {
    const float *x;
    float *mn, *mx;
} range_ctx;

/* Eight independent lanes so that the reduction vectorises without
 * reassociating float math. */
static void span_range(const float *restrict x, int64_t n, float *mn_out, float *mx_out)
{
    float mn[8], mx[8];
    for (int l = 0; l < 8; l++) mn[l] = mx[l] = 0.0f; /* groups always include 0 here */
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int l = 0; l < 8; l++) {
            float v = x[k + l];
            mn[l] = v < mn[l] ? v : mn[l];
            mx[l] = v > mx[l] ? v : mx[l];
        }
    for (; k < n; k++) {
        mn[0] = x[k] < mn[0] ? x[k] : mn[0];
        mx[0] = x[k] > mx[0] ? x[k] : mx[0];
    }
    float a = *mn_out, b = *mx_out;
    for (int l = 0; l < 8; l++) {
        a = mn[l] < a ? mn[l] : a;
        b = mx[l] > b ? mx[l] : b;
    }
    *mn_out = a;
    *mx_out = b;
}

static void range_span(void *vctx, int64_t off, int64_t len, int64_t sidx, bool per_element)
{
    range_ctx *c = vctx;
    const float *x = c->x + off;
    if (!per_element) {
        span_range(x, len, &c->mn[sidx], &c->mx[sidx]);
        return;
    }
    float *restrict mn = c->mn + sidx, *restrict mx = c->mx + sidx;
    for (int64_t k = 0; k < len; k++) {
        mn[k] = x[k] < mn[k] ? x[k] : mn[k];
        mx[k] = x[k] > mx[k] ? x[k] : mx[k];
    }
}

/* ---- MSE clipping -------------------------------------------------------- */

/* Squared error of quantizing x[0..n) with (s, zp), as q_quantize and
 * q_dequantize compute it. Float lanes over chunks, summed in double. */
static double sse_int(const float *restrict x, int64_t n, float s, int32_t zp, int32_t qmin,
                      int32_t qmax)
{
    const float lo = (float)(qmin - zp), hi = (float)(qmax - zp);
    double total = 0;
    for (int64_t k = 0; k < n;) {
        int64_t end = n - k > 4096 ? k + 4096 : n;
        float acc[8] = {0};
        for (; k + 8 <= end; k += 8)
            for (int l = 0; l < 8; l++) {
                float v = x[k + l] / s;
                v = v >= lo ? v : lo;
                v = v <= hi ? v : hi;
                v = (v + Q_RNE_MAGIC) - Q_RNE_MAGIC;
                float d = v * s - x[k + l];
                acc[l] += d * d;
            }
        for (; k < end; k++) {
            float d = (float)(q_int_encode(x[k] / s, zp, qmin, qmax) - zp) * s - x[k];
            acc[0] += d * d;
        }
        for (int l = 0; l < 8; l++) total += acc[l];
    }
    return total;
}

static double sse_nf4(const float *x, int64_t n, float s)
{
    double total = 0;
    for (int64_t k = 0; k < n; k++) {
        double d = (double)(q_nf4_table[q_nf4_encode(x[k] / s)] * s) - x[k];
        total += d * d;
    }
    return total;
}

static double sse_fp8(const float *x, int64_t n, float s, q_format format)
{
    double total = 0;
    for (int64_t k = 0; k < n; k++) {
        double d = (double)(q_fp8_decode(format, q_fp8_encode(format, x[k] / s, true)) * s) - x[k];
        total += d * d;
    }
    return total;
}

typedef struct group_job {
    q_format format;
    bool symmetric;
    qmc_dtype scale_dtype;
    float mn, mx;
} group_job;

/* Symmetric int4/int3/int2 have two min-max scales: the signed maximum on
 * code qmin (q_group_params) and max|x| / qmax (the range symmetric about
 * 0, code qmin unused). */
static bool two_scales(q_format format, bool symmetric)
{
    return symmetric && q_format_is_low(format) && q_format_qmin(format) < 0;
}

/* The parameters of the group x[0..n) with clip ratio c, and their squared
 * error: with two scales, the one of less error (a tie: the signed
 * maximum's). */
static double best_params(const group_job *j, const float *x, int64_t n, float c, float *s,
                          int32_t *zp)
{
    q_group_params(j->format, j->symmetric, j->scale_dtype, j->mn, j->mx, c, s, zp);
    int32_t qmin = q_format_qmin(j->format), qmax = q_format_qmax(j->format);
    double e = sse_int(x, n, *s, 0, qmin, qmax);
    if (!two_scales(j->format, j->symmetric)) return e;
    float alt = fmaxf(fabsf(j->mn), fabsf(j->mx)) * c / (float)qmax;
    if (!(alt > 0)) return e; /* an all-zero group */
    alt = q_scale_round(alt, j->scale_dtype);
    double ea = sse_int(x, n, alt, 0, qmin, qmax);
    if (ea < e) *s = alt, e = ea;
    return e;
}

void q_group_params_data(q_format format, bool symmetric, qmc_dtype scale_dtype, const float *x,
                         int64_t n, float mn, float mx, float c, float *scale, int32_t *zp)
{
    group_job j = {format, symmetric || !q_format_is_int(format), scale_dtype, mn, mx};
    if (two_scales(format, j.symmetric))
        best_params(&j, x, n, c, scale, zp);
    else
        q_group_params(format, j.symmetric, scale_dtype, mn, mx, c, scale, zp);
}

static double try_clip(const group_job *j, const float *x, int64_t n, float c, float *s,
                       int32_t *zp)
{
    if (two_scales(j->format, j->symmetric)) return best_params(j, x, n, c, s, zp);
    q_group_params(j->format, j->symmetric, j->scale_dtype, j->mn, j->mx, c, s, zp);
    if (q_format_code_bytes(j->format) == 2) return 0; /* nothing to clip */
    if (q_format_is_fp8(j->format)) return sse_fp8(x, n, *s, j->format);
    if (j->format == QFMT_NF4) return sse_nf4(x, n, *s);
    return sse_int(x, n, *s, *zp, q_format_qmin(j->format), q_format_qmax(j->format));
}

/* A coarse grid 1.00, 0.95, ..., 0.10, left once four steps in a row do
 * worse than the best (the error grows again once clipping dominates),
 * then the 0.01 steps around the best. */
static void search_group(const group_job *j, const float *x, int64_t n, float *scale, int32_t *zp)
{
    float s;
    int32_t z;
    int best_pc = 100, worse = 0;
    double best = try_clip(j, x, n, 1.0f, scale, zp);
    for (int pc = 95; pc >= 10 && worse < 4; pc -= 5) {
        double e = try_clip(j, x, n, (float)pc / 100.0f, &s, &z);
        if (e < best)
            best = e, best_pc = pc, *scale = s, *zp = z, worse = 0;
        else
            worse++;
    }
    int centre = best_pc;
    for (int pc = centre - 4; pc <= centre + 4; pc++) {
        if (pc == centre || pc < 1 || pc > 100) continue;
        double e = try_clip(j, x, n, (float)pc / 100.0f, &s, &z);
        if (e < best) best = e, *scale = s, *zp = z;
    }
}

typedef struct gather_ctx {
    const float *x;
    float *buf;
    int64_t group_size;
    int64_t *fill;
} gather_ctx;

static void gather_span(void *vctx, int64_t off, int64_t len, int64_t sidx, bool per_element)
{
    gather_ctx *c = vctx;
    for (int64_t k = 0; k < len; k++) {
        int64_t g = sidx + (per_element ? k : 0);
        c->buf[g * c->group_size + c->fill[g]++] = c->x[off + k];
    }
}

/* x reordered so that each group's elements are contiguous, group after
 * group; x itself when they already are. */
static const float *groups_contiguous(sup_arena *arena, const float *x, int rank,
                                      const int64_t *shape, const q_params *p, int64_t count)
{
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < p->axis; d++) outer *= shape[d];
    for (int d = p->axis + 1; d < rank; d++) inner *= shape[d];
    if (p->granularity == Q_GRAN_TENSOR || (p->granularity == Q_GRAN_AXIS && outer == 1) ||
        (p->granularity == Q_GRAN_BLOCK && inner == 1))
        return x;
    gather_ctx c = {x, sup_arena_alloc(arena, (size_t)count * sizeof(float)),
                    count / p->scale_count,
                    sup_arena_alloc(arena, (size_t)p->scale_count * sizeof(int64_t))};
    q_walk_spans(p, rank, shape, gather_span, &c);
    return c.buf;
}

static bool check_choice(const q_choice *c, char *err, size_t err_size)
{
    if (c->format <= QFMT_F32 || c->format >= QFMT_COUNT) {
        snprintf(err, err_size, "no quantized format given");
        return false;
    }
    if (!q_format_is_int(c->format) && !c->symmetric) {
        snprintf(err, err_size, "%s is symmetric only (its zero point is 0)",
                 q_format_name(c->format));
        return false;
    }
    if (c->scale_dtype != QMC_DTYPE_F32 && c->scale_dtype != QMC_DTYPE_F16) {
        snprintf(err, err_size, "scales are stored as f32 or f16");
        return false;
    }
    return true;
}

bool q_choose_params(sup_arena *arena, const float *x, int rank, const int64_t *shape,
                     const q_choice *choice, q_params *out, char *err, size_t err_size)
{
    if (!check_choice(choice, err, err_size)) return false;
    memset(out, 0, sizeof *out);
    out->format = choice->format;
    out->granularity = choice->granularity;
    out->axis = choice->axis;
    out->block = choice->block;
    out->saturate = true;
    out->scale_dtype = choice->scale_dtype;
    if (!q_params_layout(out, rank, shape, err, err_size)) return false;
    int64_t ng = out->scale_count, count = 1;
    for (int d = 0; d < rank; d++) count *= shape[d];
    out->scales = sup_arena_alloc(arena, (size_t)ng * sizeof(float));
    bool need_zp = q_format_is_int(choice->format) &&
                   (!choice->symmetric || q_format_qmin(choice->format) == 0);
    if (need_zp) out->zero_points = sup_arena_alloc(arena, (size_t)ng * sizeof(int32_t));
    int32_t zdummy;
    range_ctx rc = {x, sup_arena_alloc(arena, (size_t)ng * sizeof(float)),
                    sup_arena_alloc(arena, (size_t)ng * sizeof(float))};
    q_walk_spans(out, rank, shape, range_span, &rc);
    group_job job = {choice->format, choice->symmetric || !q_format_is_int(choice->format),
                     choice->scale_dtype, 0, 0};
    bool two = two_scales(job.format, job.symmetric);
    const float *gx = (choice->clip == Q_CLIP_MSE || two) && ng > 0 && count > 0
                          ? groups_contiguous(arena, x, rank, shape, out, count)
                          : NULL;
    int64_t gsize = ng > 0 ? count / ng : 0;
    for (int64_t g = 0; g < ng; g++) {
        int32_t *zp = need_zp ? &out->zero_points[g] : &zdummy;
        job.mn = rc.mn[g];
        job.mx = rc.mx[g];
        if (gx && choice->clip == Q_CLIP_MSE)
            search_group(&job, gx + g * gsize, gsize, &out->scales[g], zp);
        else if (gx)
            best_params(&job, gx + g * gsize, gsize, 1.0f, &out->scales[g], zp);
        else
            q_group_params(job.format, job.symmetric, job.scale_dtype, job.mn, job.mx, 1.0f,
                           &out->scales[g], zp);
    }
    return true;
}
