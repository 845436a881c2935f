/* quantize.c: ONNX QuantizeLinear / DequantizeLinear over tensor, axis and
 * block layouts.
 *
 * Needs: q_params with a layout from q_params_layout (scales finite and
 * nonzero, zero points inside the code range).
 * Guarantees: the codes and values of ONNX's reference implementation (opset
 * 21) bit for bit: x / scale is a float32 division, rounding is half to even,
 * dequantization is (code - zp) * scale in float32.
 *
 * The tensor is seen as [outer][n][inner] around the quantization axis.
 * q_walk_spans cuts it into contiguous spans that either share one scale or
 * use consecutive scales element by element, so the loops below run over
 * contiguous memory with no per-element dispatch and can be vectorised. */
#include <math.h>
#include <stdio.h>

#include "quant.h"

const char *q_granularity_name(q_granularity granularity)
{
    switch (granularity) {
    case Q_GRAN_TENSOR: return "tensor";
    case Q_GRAN_AXIS: return "axis";
    case Q_GRAN_BLOCK: return "block";
    }
    return "?";
}

bool q_params_layout(q_params *p, int rank, const int64_t *shape, char *err, size_t err_size)
{
    if (p->granularity == Q_GRAN_TENSOR) {
        p->axis = 0;
        p->scale_rank = 0;
        p->scale_count = 1;
        return true;
    }
    if (rank == 0) {
        snprintf(err, err_size,
                 "per-axis and blocked quantization need a tensor of rank 1 or more");
        return false;
    }
    if (p->axis < -rank || p->axis >= rank) {
        snprintf(err, err_size, "axis %d is out of range for a tensor of rank %d", p->axis, rank);
        return false;
    }
    if (p->axis < 0) p->axis += rank;
    int64_t n = shape[p->axis];
    if (p->granularity == Q_GRAN_AXIS) {
        p->scale_rank = 1;
        p->scale_shape[0] = n;
        p->scale_count = n;
        return true;
    }
    if (p->block <= 0) {
        snprintf(err, err_size, "block size %lld is not positive", (long long)p->block);
        return false;
    }
    if (n % p->block != 0) {
        snprintf(err, err_size, "block size %lld does not divide dimension %d (size %lld)",
                 (long long)p->block, p->axis, (long long)n);
        return false;
    }
    p->scale_rank = rank;
    p->scale_count = 1;
    for (int d = 0; d < rank; d++) {
        p->scale_shape[d] = d == p->axis ? n / p->block : shape[d];
        p->scale_count *= p->scale_shape[d];
    }
    return true;
}

void q_walk_spans(const q_params *p, int rank, const int64_t *shape, q_span_fn fn, void *ctx)
{
    int64_t outer = 1, n = 1, inner = 1;
    for (int d = 0; d < rank; d++) {
        if (p->granularity == Q_GRAN_TENSOR || d == p->axis)
            n *= shape[d];
        else if (d < p->axis)
            outer *= shape[d];
        else
            inner *= shape[d];
    }
    if (p->granularity == Q_GRAN_TENSOR) {
        fn(ctx, 0, n, 0, false);
    } else if (p->granularity == Q_GRAN_AXIS) {
        for (int64_t o = 0; o < outer; o++) {
            if (inner == 1) {
                fn(ctx, o * n, n, 0, true);
                continue;
            }
            for (int64_t i = 0; i < n; i++) fn(ctx, (o * n + i) * inner, inner, i, false);
        }
    } else {
        int64_t b = p->block, nb = n / b;
        for (int64_t o = 0; o < outer; o++) {
            if (inner == 1) {
                for (int64_t j = 0; j < nb; j++) fn(ctx, o * n + j * b, b, o * nb + j, false);
                continue;
            }
            for (int64_t i = 0; i < n; i++)
                fn(ctx, (o * n + i) * inner, inner, (o * nb + i / b) * inner, true);
        }
    }
}

/* ---- quantize ----------------------------------------------------------- */

typedef struct quant_ctx {
    const q_params *p;
    const float *x;
    uint8_t *codes;
} quant_ctx;

/* One element: x / s rounded into [lo, hi] (the code minus the zero point). */
static inline float quant_int_one(float x, float s, float lo, float hi)
{
    float v = x / s;
    v = v >= lo ? v : lo; /* NaN -> lo */
    v = v <= hi ? v : hi;
    return (v + Q_RNE_MAGIC) - Q_RNE_MAGIC;
}

/* len elements, one scale and zero point: the hot loop of int4 g32. Chunks
 * of 8 with a fixed trip count let gcc -O2 vectorise it. */
static void quant_int_uniform(const float *restrict x, int64_t len, float s, int32_t zp,
                              int32_t qmin, int32_t qmax, uint8_t *restrict out)
{
    const float lo = (float)(qmin - zp), hi = (float)(qmax - zp);
    int64_t k = 0;
    for (; k + 8 <= len; k += 8)
        for (int l = 0; l < 8; l++)
            out[k + l] = (uint8_t)((int32_t)quant_int_one(x[k + l], s, lo, hi) + zp);
    for (; k < len; k++) out[k] = (uint8_t)((int32_t)quant_int_one(x[k], s, lo, hi) + zp);
}

static void quant_span(void *vctx, int64_t off, int64_t len, int64_t sidx, bool per_element)
{
    quant_ctx *c = vctx;
    const q_params *p = c->p;
    const float *x = c->x + off;
    const float *s = p->scales + sidx;
    const int32_t *z = p->zero_points ? p->zero_points + sidx : NULL;
    uint8_t *out = c->codes + off;
    if (q_format_code_bytes(p->format) == 2) { /* two-byte codes: element off at 2 off */
        uint16_t *o = (uint16_t *)(void *)c->codes + off;
        for (int64_t k = 0; k < len; k++)
            o[k] = q_f16w_encode(p->format, x[k] / s[per_element ? k : 0]);
        return;
    }
    if (q_format_is_fp8(p->format)) {
        for (int64_t k = 0; k < len; k++)
            out[k] = q_fp8_encode(p->format, x[k] / s[per_element ? k : 0], p->saturate);
        return;
    }
    if (p->format == QFMT_NF4) {
        for (int64_t k = 0; k < len; k++) out[k] = q_nf4_encode(x[k] / s[per_element ? k : 0]);
        return;
    }
    int32_t qmin = q_format_qmin(p->format), qmax = q_format_qmax(p->format);
    if (!per_element) {
        quant_int_uniform(x, len, s[0], z ? z[0] : 0, qmin, qmax, out);
        return;
    }
    for (int64_t k = 0; k < len; k++)
        out[k] = (uint8_t)q_int_encode(x[k] / s[k], z ? z[k] : 0, qmin, qmax);
}

void q_quantize(const float *x, int rank, const int64_t *shape, const q_params *p, uint8_t *codes)
{
    QMC_ASSERT(p->format != QFMT_F32 && p->format < QFMT_COUNT && p->scales);
    QMC_ASSERT(q_format_is_int(p->format) || !p->zero_points);
    quant_ctx c = {p, x, codes};
    q_walk_spans(p, rank, shape, quant_span, &c);
}

/* ---- dequantize --------------------------------------------------------- */

typedef struct dequant_ctx {
    const q_params *p;
    const uint8_t *codes;
    float *y;
} dequant_ctx;

static void dequant_span(void *vctx, int64_t off, int64_t len, int64_t sidx, bool per_element)
{
    dequant_ctx *c = vctx;
    const q_params *p = c->p;
    const uint8_t *q = c->codes + off;
    const float *s = p->scales + sidx;
    const int32_t *z = p->zero_points ? p->zero_points + sidx : NULL;
    float *y = c->y + off;
    int64_t step = per_element ? 1 : 0;
    if (q_format_code_bytes(p->format) == 2) {
        const uint16_t *h = (const uint16_t *)(const void *)c->codes + off;
        for (int64_t k = 0; k < len; k++) y[k] = q_f16w_decode(p->format, h[k]) * s[k * step];
    } else if (q_format_is_fp8(p->format)) {
        for (int64_t k = 0; k < len; k++) y[k] = q_fp8_decode(p->format, q[k]) * s[k * step];
    } else if (p->format == QFMT_NF4) {
        for (int64_t k = 0; k < len; k++) y[k] = q_nf4_table[q[k] & 15] * s[k * step];
    } else if (q_format_is_signed(p->format)) { /* codes are two's-complement bytes */
        for (int64_t k = 0; k < len; k++)
            y[k] = (float)((int8_t)q[k] - (z ? z[k * step] : 0)) * s[k * step];
    } else {
        for (int64_t k = 0; k < len; k++)
            y[k] = (float)(q[k] - (z ? z[k * step] : 0)) * s[k * step];
    }
}

void q_dequantize(const uint8_t *codes, int rank, const int64_t *shape, const q_params *p, float *y)
{
    QMC_ASSERT(p->format != QFMT_F32 && p->format < QFMT_COUNT && p->scales);
    dequant_ctx c = {p, codes, y};
    q_walk_spans(p, rank, shape, dequant_span, &c);
}
