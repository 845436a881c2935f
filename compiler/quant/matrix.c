/* matrix.c: a weight matrix quantized to a precision, held compactly.
 *
 * Needs: the parameter choice (params.c, methods.c), ONNX quantize and dequantize
 * (quantize.c), GPTQ (gptq.c), int4 packing (intq.c).
 * Guarantees: q_matrix_quantize chooses codes, scales and zero points for
 * W[n, k] exactly as the quantize-weights pass does (rows padded with
 * zeros to the group, int4 groups along k, f16 scales per group or f32
 * per output channel, GPTQ codes when asked), and q_matrix_dequantize
 * gives the same dequantized values, bit for bit; int4 codes are kept two
 * per byte, so a quantized 1 B-parameter model fits in about 0.6 GB.
 * Precision selection keeps every matrix of a combination this way to
 * run it in the interpreter, dequantizing one matrix at a time. */
#include <math.h>
#include <string.h>

#include "quant.h"

q_choice q_precision_choice(const q_precision *f)
{
    q_choice c = {.format = f->format, .clip = f->clip, .symmetric = !q_format_is_asym(f->format)};
    if (f->group) {
        c.granularity = Q_GRAN_BLOCK;
        c.axis = 1;
        c.block = f->group;
        c.scale_dtype = f->scale_f32 ? QMC_DTYPE_F32 : QMC_DTYPE_F16;
    } else {
        c.granularity = Q_GRAN_AXIS;
        c.axis = 0;
        c.scale_dtype = QMC_DTYPE_F32;
    }
    return c;
}

static bool is_int4(q_format f) { return f == QFMT_INT4 || f == QFMT_UINT4 || f == QFMT_NF4; }

bool q_matrix_quantize(sup_arena *keep, const float *orig, int64_t n, int64_t k,
                       const q_precision *f, const double *u, const bool *dead,
                       const int64_t *order, const double *importance, q_matrix *out, char *err,
                       size_t err_size)
{
    QMC_ASSERT(f->format != QFMT_F32 && (!f->gptq || (u && dead)) && (!f->imat || importance));
    memset(out, 0, sizeof *out);
    out->f = *f;
    out->n = n;
    out->k = k;
    out->kp = f->group ? (k + f->group - 1) / f->group * f->group : k;
    int64_t kp = out->kp;
    sup_arena tmp = {0};
    float *padded = sup_arena_alloc(&tmp, sizeof(float) * (size_t)(n * kp));
    for (int64_t r = 0; r < n; r++)
        memcpy(padded + r * kp, orig + r * k, sizeof(float) * (size_t)k);
    q_choice c = q_precision_choice(f);
    int64_t shape[2] = {n, kp};
    /* (the choice's temporaries, a copy of the matrix for MSE clipping
     * among them, stay in tmp; the scales and zero points are copied out) */
    if (!q_choose_params(&tmp, padded, 2, shape, &c, &out->p, err, err_size)) {
        sup_arena_free(&tmp);
        return false;
    }
    q_method_refine(&tmp, padded, n, k, kp, f, importance, &out->p);
    size_t cb = (size_t)q_format_code_bytes(f->format);
    uint8_t *codes = sup_arena_alloc(&tmp, (size_t)(n * kp) * cb);
    if (f->gptq)
        q_gptq_codes(&tmp, orig, n, k, kp, u, dead, order, &c, &out->p, codes);
    else
        q_quantize(padded, 2, shape, &out->p, codes);
    size_t ng = (size_t)out->p.scale_count;
    float *scales = sup_arena_alloc(keep, sizeof(float) * ng);
    memcpy(scales, out->p.scales, sizeof(float) * ng);
    out->p.scales = scales;
    if (out->p.zero_points) {
        int32_t *zp = sup_arena_alloc(keep, sizeof(int32_t) * ng);
        memcpy(zp, out->p.zero_points, sizeof(int32_t) * ng);
        out->p.zero_points = zp;
    }
    out->packed = is_int4(f->format);
    out->row_bytes = out->packed ? q_int4_packed_size(kp) : (size_t)kp * cb;
    out->codes = sup_arena_alloc(keep, out->row_bytes * (size_t)n);
    for (int64_t r = 0; r < n; r++)
        if (out->packed)
            q_int4_pack(codes + r * kp, kp, out->codes + (size_t)r * out->row_bytes);
        else
            memcpy(out->codes + (size_t)r * out->row_bytes, codes + (size_t)r * out->row_bytes,
                   out->row_bytes);
    sup_arena_free(&tmp);
    return true;
}

/* The parameters of row r alone. */
static q_params row_params(const q_params *p, int64_t r, int64_t groups)
{
    q_params row = *p;
    row.scales = p->scales + r * groups;
    row.zero_points = p->zero_points ? p->zero_points + r * groups : NULL;
    row.scale_count = groups;
    if (row.scale_rank == 2) row.scale_shape[0] = 1;
    if (row.scale_rank == 1) row.scale_shape[0] = 1;
    return row;
}

/* int4 (and NF4) rows, group by group: the arithmetic of q_dequantize (the
 * code minus the zero point, converted, times the scale; NF4 its table
 * value times the scale), without the per-group calls and the unpacked
 * copy. */
static void dequantize_int4_row(const q_matrix *m, int64_t r, float *y)
{
    int64_t g = m->f.group, groups = m->kp / g;
    const uint8_t *src = m->codes + (size_t)r * m->row_bytes;
    const float *sc = m->p.scales + r * groups;
    const int32_t *zp = m->p.zero_points ? m->p.zero_points + r * groups : NULL;
    bool is_signed = m->f.format == QFMT_INT4, nf4 = m->f.format == QFMT_NF4;
    for (int64_t gi = 0; gi < groups; gi++) {
        float s = sc[gi];
        int32_t z = zp ? zp[gi] : 0;
        int64_t c0 = gi * g, c1 = c0 + g < m->k ? c0 + g : m->k;
        for (int64_t c = c0; c < c1; c++) {
            int32_t nib = c & 1 ? src[c / 2] >> 4 : src[c / 2] & 0x0F;
            int32_t v = is_signed ? (nib ^ 8) - 8 : nib;
            y[c] = nf4 ? q_nf4_table[nib] * s : (float)(v - z) * s;
        }
    }
}

void q_matrix_dequantize_rows(const q_matrix *m, int64_t r0, int64_t rows, float *out,
                              void *scratch)
{
    if (m->packed && m->f.group) {
        for (int64_t r = r0; r < r0 + rows; r++) dequantize_int4_row(m, r, out + (r - r0) * m->k);
        return;
    }
    int64_t kp = m->kp, groups = m->f.group ? kp / m->f.group : 1;
    uint8_t *codes = scratch;
    float *y = (float *)((char *)scratch + (m->row_bytes + 63) / 64 * 64);
    int64_t shape[2] = {1, kp};
    for (int64_t r = r0; r < r0 + rows; r++) {
        const uint8_t *src = m->codes + (size_t)r * m->row_bytes;
        if (m->packed)
            q_int4_unpack(src, kp, m->f.format == QFMT_INT4, codes);
        else
            memcpy(codes, src, m->row_bytes);
        q_params p = row_params(&m->p, r, groups);
        q_dequantize(codes, 2, shape, &p, kp == m->k ? out + (r - r0) * m->k : y);
        if (kp != m->k) memcpy(out + (r - r0) * m->k, y, sizeof(float) * (size_t)m->k);
    }
}

size_t q_matrix_scratch(const q_matrix *m)
{
    size_t codes = (size_t)m->kp * (size_t)q_format_code_bytes(m->f.format);
    return (codes + 63) / 64 * 64 + sizeof(float) * (size_t)m->kp;
}

size_t q_matrix_bytes_held(const q_matrix *m)
{
    int64_t groups = m->f.group ? m->kp / m->f.group : 1;
    return m->row_bytes * (size_t)m->n +
           (size_t)(m->n * groups) * (sizeof(float) + (m->p.zero_points ? sizeof(int32_t) : 0));
}
