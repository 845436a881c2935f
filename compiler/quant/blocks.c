/* blocks.c: the packed kernel formats and the scalar _ref functions that
 * define them.
 *
 * Needs: rows of K float weights (K a multiple of the group for blocked
 * formats). Guarantees: one generic implementation, driven by the table
 * below, defines every format; the typed functions at the end only name
 * it. The quantizer uses q_group_params and the ONNX rounding, so a packed
 * row holds exactly the codes and scales that q_choose_params (min-max,
 * axis 1, block = group) and q_quantize give for the same matrix. Dot
 * products accumulate in double so that the reference is as exact as a
 * float result can be; fast kernels are held to the Q_TOL_DOT_* bounds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

#define Q4(name_, fmt, grp, asym, sd, T)                                                           \
    {name_,                                                                                        \
     fmt,                                                                                          \
     grp,                                                                                          \
     asym,                                                                                         \
     sd,                                                                                           \
     sizeof(T),                                                                                    \
     asym ? (sd == QMC_DTYPE_F16 ? 2 : 4) : 0,                                                     \
     offsetof(T, qs),                                                                              \
     Q_TOL_DOT_Q4_F32,                                                                             \
     Q_TOL_DOT_Q4_A8}

/* NF4: no a8 dot (tol_dot_a8 0) */
#define NF4(name_, grp, T)                                                                         \
    {name_, QFMT_NF4, grp, false, QMC_DTYPE_F16, sizeof(T), 0, offsetof(T, qs), Q_TOL_DOT_Q4_F32, 0}

/* bf16, f16: K values, no header */
#define F16W(name_, fmt) {name_, fmt, 0, false, QMC_DTYPE_F32, 0, 0, 0, Q_TOL_DOT_F8_F32, 0}

static const q_kfmt_info kinfo[Q_KFMT_COUNT] = {
    [Q_KFMT_Q8] = {"q8", QFMT_INT8, 0, false, QMC_DTYPE_F32, sizeof(q_row_q8), 0,
                   offsetof(q_row_q8, qs), Q_TOL_DOT_Q8_F32, Q_TOL_DOT_Q8_A8},
    [Q_KFMT_F8E4M3] = {"f8e4m3", QFMT_FP8_E4M3, 0, false, QMC_DTYPE_F32, sizeof(q_row_f8e4m3), 0,
                       offsetof(q_row_f8e4m3, qs), Q_TOL_DOT_F8_F32, 0},
    [Q_KFMT_F8E5M2] = {"f8e5m2", QFMT_FP8_E5M2, 0, false, QMC_DTYPE_F32, sizeof(q_row_f8e5m2), 0,
                       offsetof(q_row_f8e5m2, qs), Q_TOL_DOT_F8_F32, 0},
    [Q_KFMT_Q4_G32] = Q4("q4_g32", QFMT_INT4, 32, false, QMC_DTYPE_F16, q_block_q4_g32),
    [Q_KFMT_Q4_G64] = Q4("q4_g64", QFMT_INT4, 64, false, QMC_DTYPE_F16, q_block_q4_g64),
    [Q_KFMT_Q4_G128] = Q4("q4_g128", QFMT_INT4, 128, false, QMC_DTYPE_F16, q_block_q4_g128),
    [Q_KFMT_Q4A_G32] = Q4("q4a_g32", QFMT_UINT4, 32, true, QMC_DTYPE_F16, q_block_q4a_g32),
    [Q_KFMT_Q4A_G64] = Q4("q4a_g64", QFMT_UINT4, 64, true, QMC_DTYPE_F16, q_block_q4a_g64),
    [Q_KFMT_Q4A_G128] = Q4("q4a_g128", QFMT_UINT4, 128, true, QMC_DTYPE_F16, q_block_q4a_g128),
    [Q_KFMT_Q4_G32_SF32] =
        Q4("q4_g32_sf32", QFMT_INT4, 32, false, QMC_DTYPE_F32, q_block_q4_g32_sf32),
    [Q_KFMT_Q4_G64_SF32] =
        Q4("q4_g64_sf32", QFMT_INT4, 64, false, QMC_DTYPE_F32, q_block_q4_g64_sf32),
    [Q_KFMT_Q4_G128_SF32] =
        Q4("q4_g128_sf32", QFMT_INT4, 128, false, QMC_DTYPE_F32, q_block_q4_g128_sf32),
    [Q_KFMT_Q4A_G32_SF32] =
        Q4("q4a_g32_sf32", QFMT_UINT4, 32, true, QMC_DTYPE_F32, q_block_q4a_g32_sf32),
    [Q_KFMT_Q4A_G64_SF32] =
        Q4("q4a_g64_sf32", QFMT_UINT4, 64, true, QMC_DTYPE_F32, q_block_q4a_g64_sf32),
    [Q_KFMT_Q4A_G128_SF32] =
        Q4("q4a_g128_sf32", QFMT_UINT4, 128, true, QMC_DTYPE_F32, q_block_q4a_g128_sf32),
    [Q_KFMT_Q3_G32] = Q4("q3_g32", QFMT_INT3, 32, false, QMC_DTYPE_F16, q_block_q3_g32),
    [Q_KFMT_Q3_G64] = Q4("q3_g64", QFMT_INT3, 64, false, QMC_DTYPE_F16, q_block_q3_g64),
    [Q_KFMT_Q3_G128] = Q4("q3_g128", QFMT_INT3, 128, false, QMC_DTYPE_F16, q_block_q3_g128),
    [Q_KFMT_Q3A_G32] = Q4("q3a_g32", QFMT_UINT3, 32, true, QMC_DTYPE_F16, q_block_q3a_g32),
    [Q_KFMT_Q3A_G64] = Q4("q3a_g64", QFMT_UINT3, 64, true, QMC_DTYPE_F16, q_block_q3a_g64),
    [Q_KFMT_Q3A_G128] = Q4("q3a_g128", QFMT_UINT3, 128, true, QMC_DTYPE_F16, q_block_q3a_g128),
    [Q_KFMT_Q2_G32] = Q4("q2_g32", QFMT_INT2, 32, false, QMC_DTYPE_F16, q_block_q2_g32),
    [Q_KFMT_Q2_G64] = Q4("q2_g64", QFMT_INT2, 64, false, QMC_DTYPE_F16, q_block_q2_g64),
    [Q_KFMT_Q2_G128] = Q4("q2_g128", QFMT_INT2, 128, false, QMC_DTYPE_F16, q_block_q2_g128),
    [Q_KFMT_Q2A_G32] = Q4("q2a_g32", QFMT_UINT2, 32, true, QMC_DTYPE_F16, q_block_q2a_g32),
    [Q_KFMT_Q2A_G64] = Q4("q2a_g64", QFMT_UINT2, 64, true, QMC_DTYPE_F16, q_block_q2a_g64),
    [Q_KFMT_Q2A_G128] = Q4("q2a_g128", QFMT_UINT2, 128, true, QMC_DTYPE_F16, q_block_q2a_g128),
    [Q_KFMT_NF4_G32] = NF4("nf4_g32", 32, q_block_nf4_g32),
    [Q_KFMT_NF4_G64] = NF4("nf4_g64", 64, q_block_nf4_g64),
    [Q_KFMT_NF4_G128] = NF4("nf4_g128", 128, q_block_nf4_g128),
    [Q_KFMT_BF16] = F16W("bf16", QFMT_BF16),
    [Q_KFMT_F16] = F16W("f16", QFMT_F16),
};

const q_kfmt_info *q_kfmt_get(q_kfmt f)
{
    QMC_ASSERT(f >= 0 && f < Q_KFMT_COUNT);
    return &kinfo[f];
}

size_t q_row_size(q_kfmt f, int64_t k)
{
    const q_kfmt_info *fi = q_kfmt_get(f);
    QMC_ASSERT(k >= 0);
    size_t cb = (size_t)q_format_code_bytes(fi->format);
    if (fi->group == 0) return fi->block_bytes + ((size_t)k * cb + 3) / 4 * 4;
    QMC_ASSERT(k % fi->group == 0);
    return (size_t)(k / fi->group) * fi->block_bytes;
}

/* ---- one group: a scale, maybe a zero point, and its codes ------------- */

/* A row is ng groups of gsize elements; group g starts at block(g). */
typedef struct row_view {
    const q_kfmt_info *fi;
    int64_t ng, gsize;
} row_view;

static row_view view_of(q_kfmt f, int64_t k)
{
    const q_kfmt_info *fi = q_kfmt_get(f);
    QMC_ASSERT(k >= 0 && (fi->group == 0 || k % fi->group == 0));
    if (fi->group == 0) return (row_view){fi, 1, k};
    return (row_view){fi, k / fi->group, fi->group};
}

static float get_scale(const q_kfmt_info *fi, const uint8_t *b)
{
    if (q_format_code_bytes(fi->format) == 2) return 1.0f; /* bf16, f16: unscaled */
    if (fi->scale_dtype == QMC_DTYPE_F16) {
        uint16_t h;
        memcpy(&h, b, sizeof h);
        return q_f16_to_f32(h);
    }
    float s;
    memcpy(&s, b, sizeof s);
    return s;
}

static void set_scale(const q_kfmt_info *fi, uint8_t *b, float s)
{
    if (q_format_code_bytes(fi->format) == 2) return;
    if (fi->scale_dtype == QMC_DTYPE_F16) {
        uint16_t h = q_f16_from_f32(s); /* exact: s is already an f16 value */
        memcpy(b, &h, sizeof h);
    } else {
        memcpy(b, &s, sizeof s);
    }
}

static int32_t get_zp(const q_kfmt_info *fi, const uint8_t *b)
{
    return fi->asymmetric ? b[fi->z_offset] : 0;
}

/* Code j of a group as an integer (int formats) or raw byte (FP8). */
static int32_t get_code(const q_kfmt_info *fi, const uint8_t *qs, int64_t j)
{
    if (fi->format == QFMT_INT8) return (int8_t)qs[j];
    if (q_format_is_fp8(fi->format)) return qs[j];
    if (q_format_code_bytes(fi->format) == 2) return qs[2 * j] | qs[2 * j + 1] << 8;
    /* sub-byte codes: bits [b * j, b * j + b) of the little-endian stream */
    int b = q_format_bits(fi->format);
    int64_t bit = b * j;
    uint32_t two = qs[bit / 8] | (bit % 8 + b > 8 ? (uint32_t)qs[bit / 8 + 1] << 8 : 0);
    int32_t v = (int32_t)(two >> (bit % 8) & ((1u << b) - 1));
    return q_format_is_signed(fi->format) && v >= 1 << (b - 1) ? v - (1 << b) : v;
}

static void set_code(const q_kfmt_info *fi, uint8_t *qs, int64_t j, int32_t c)
{
    if (fi->format == QFMT_INT8 || q_format_is_fp8(fi->format)) {
        qs[j] = (uint8_t)c;
        return;
    }
    if (q_format_code_bytes(fi->format) == 2) { /* little-endian */
        qs[2 * j] = (uint8_t)c;
        qs[2 * j + 1] = (uint8_t)(c >> 8);
        return;
    }
    int b = q_format_bits(fi->format);
    int64_t bit = b * j;
    uint32_t v = ((uint32_t)c & ((1u << b) - 1)) << (bit % 8);
    qs[bit / 8] |= (uint8_t)v;
    if (bit % 8 + b > 8) qs[bit / 8 + 1] |= (uint8_t)(v >> 8);
}

/* The value code c stands for, before scaling. */
static double code_value(const q_kfmt_info *fi, int32_t c, int32_t z)
{
    if (q_format_is_fp8(fi->format)) return q_fp8_decode(fi->format, (uint8_t)c);
    if (fi->format == QFMT_NF4) return q_nf4_table[c];
    if (q_format_code_bytes(fi->format) == 2) return q_f16w_decode(fi->format, (uint16_t)c);
    return (double)(c - z);
}

/* The code of v = x / scale (FP8 saturating). */
static int32_t encode(const q_kfmt_info *fi, float v, int32_t z)
{
    if (q_format_is_fp8(fi->format)) return q_fp8_encode(fi->format, v, true);
    if (fi->format == QFMT_NF4) return q_nf4_encode(v);
    if (q_format_code_bytes(fi->format) == 2) return q_f16w_encode(fi->format, v);
    return q_int_encode(v, z, q_format_qmin(fi->format), q_format_qmax(fi->format));
}

/* ---- the generic _ref functions ----------------------------------------- */

void q_quantize_row_ref(q_kfmt f, const float *x, int64_t k, void *row)
{
    row_view v = view_of(f, k);
    const q_kfmt_info *fi = v.fi;
    memset(row, 0, q_row_size(f, k)); /* reserved bytes and padding are 0 */
    for (int64_t g = 0; g < v.ng; g++) {
        const float *xg = x + g * v.gsize;
        uint8_t *b = (uint8_t *)row + g * fi->block_bytes;
        float mn = 0, mx = 0;
        for (int64_t j = 0; j < v.gsize; j++) {
            mn = fminf(mn, xg[j]);
            mx = fmaxf(mx, xg[j]);
        }
        float s;
        int32_t z;
        q_group_params_data(fi->format, !fi->asymmetric, fi->scale_dtype, xg, v.gsize, mn, mx, 1.0f,
                            &s, &z);
        set_scale(fi, b, s);
        if (fi->asymmetric) b[fi->z_offset] = (uint8_t)z;
        for (int64_t j = 0; j < v.gsize; j++) {
            set_code(fi, b + fi->qs_offset, j, encode(fi, xg[j] / s, z));
        }
    }
}

void q_dequantize_row_ref(q_kfmt f, const void *row, int64_t k, float *y)
{
    row_view v = view_of(f, k);
    for (int64_t g = 0; g < v.ng; g++) {
        const uint8_t *b = (const uint8_t *)row + g * v.fi->block_bytes;
        float s = get_scale(v.fi, b);
        int32_t z = get_zp(v.fi, b);
        for (int64_t j = 0; j < v.gsize; j++) {
            int32_t c = get_code(v.fi, b + v.fi->qs_offset, j);
            /* the same float32 operations as q_dequantize */
            y[g * v.gsize + j] = q_format_is_int(v.fi->format)
                                     ? (float)(c - z) * s
                                     : (float)code_value(v.fi, c, z) * s; /* exact in float */
        }
    }
}

float q_dot_f32_ref(q_kfmt f, const void *row, const float *x, int64_t k)
{
    row_view v = view_of(f, k);
    double total = 0;
    for (int64_t g = 0; g < v.ng; g++) {
        const uint8_t *b = (const uint8_t *)row + g * v.fi->block_bytes;
        int32_t z = get_zp(v.fi, b);
        double sum = 0;
        for (int64_t j = 0; j < v.gsize; j++)
            sum += code_value(v.fi, get_code(v.fi, b + v.fi->qs_offset, j), z) * x[g * v.gsize + j];
        total += (double)get_scale(v.fi, b) * sum;
    }
    return (float)total;
}

float q_dot_a8_ref(q_kfmt f, const void *row, const int8_t *xq, float x_scale, int64_t k)
{
    row_view v = view_of(f, k);
    QMC_ASSERT(q_format_is_int(v.fi->format));
    double total = 0;
    for (int64_t g = 0; g < v.ng; g++) {
        const uint8_t *b = (const uint8_t *)row + g * v.fi->block_bytes;
        int32_t z = get_zp(v.fi, b);
        int64_t isum = 0;
        for (int64_t j = 0; j < v.gsize; j++)
            isum += (int64_t)(get_code(v.fi, b + v.fi->qs_offset, j) - z) * xq[g * v.gsize + j];
        total += (double)get_scale(v.fi, b) * (double)isum;
    }
    return (float)(total * x_scale);
}

double q_dot_magnitude_f32(q_kfmt f, const void *row, const float *x, int64_t k)
{
    row_view v = view_of(f, k);
    double total = 0;
    for (int64_t g = 0; g < v.ng; g++) {
        const uint8_t *b = (const uint8_t *)row + g * v.fi->block_bytes;
        int32_t z = get_zp(v.fi, b);
        double sum = 0;
        for (int64_t j = 0; j < v.gsize; j++) {
            double w = code_value(v.fi, get_code(v.fi, b + v.fi->qs_offset, j), z);
            sum += (fabs(w) + abs(z)) * fabs(x[g * v.gsize + j]);
        }
        total += fabs(get_scale(v.fi, b)) * sum;
    }
    return total;
}

double q_dot_magnitude_a8(q_kfmt f, const void *row, const int8_t *xq, float x_scale, int64_t k)
{
    row_view v = view_of(f, k);
    QMC_ASSERT(q_format_is_int(v.fi->format));
    double total = 0;
    for (int64_t g = 0; g < v.ng; g++) {
        const uint8_t *b = (const uint8_t *)row + g * v.fi->block_bytes;
        int32_t z = get_zp(v.fi, b);
        double sum = 0;
        for (int64_t j = 0; j < v.gsize; j++) {
            int32_t c = get_code(v.fi, b + v.fi->qs_offset, j);
            sum += (double)(abs(c - z) + abs(z)) * abs(xq[g * v.gsize + j]);
        }
        total += fabs(get_scale(v.fi, b)) * sum;
    }
    return total * fabs(x_scale);
}

double q_dot_tolerance_f32(q_kfmt f, const void *row, const float *x, int64_t k)
{
    return q_kfmt_get(f)->tol_dot_f32 * q_dot_magnitude_f32(f, row, x, k);
}

double q_dot_tolerance_a8(q_kfmt f, const void *row, const int8_t *xq, float x_scale, int64_t k)
{
    return q_kfmt_get(f)->tol_dot_a8 * q_dot_magnitude_a8(f, row, xq, x_scale, k);
}

void q_quantize_row_a8_ref(const float *x, int64_t k, int8_t *xq, float *x_scale)
{
    float amax = 0;
    for (int64_t j = 0; j < k; j++) amax = fmaxf(amax, fabsf(x[j]));
    float s = amax > 0 ? amax / 127.0f : 1.0f;
    for (int64_t j = 0; j < k; j++) xq[j] = (int8_t)q_int_encode(x[j] / s, 0, -127, 127);
    *x_scale = s;
}

void q_split_row_a8x3_ref(const float *x, int64_t k, int8_t *xq, float scales[3])
{
    float amax = 0;
    for (int64_t j = 0; j < k; j++) amax = fmaxf(amax, fabsf(x[j]));
    float s = amax > 0 ? amax / 127.0f : 1.0f;
    float inv = amax > 0 ? Q_SPLIT_A8X3_UNITS / amax : 0.0f;
    for (int64_t j = 0; j < k; j++) {
        /* t = x / (s / 65536) in whole units; |t| <= Q_SPLIT_A8X3_TMAX
         * keeps digit 0 within [-127, 127] */
        float v = rintf(x[j] * inv), tmax = (float)Q_SPLIT_A8X3_TMAX;
        if (!(v <= tmax)) v = tmax; /* NaN too, as the kernels' min/max do */
        if (v < -tmax) v = -tmax;
        int32_t t = (int32_t)v;
        for (int d = 2; d >= 0; d--) {
            xq[d * k + j] = (int8_t)(uint8_t)(t & 0xFF); /* the low byte as -128..127 */
            t = (t + 128) >> 8;                          /* the rest, rounded */
        }
    }
    scales[0] = s;
    scales[1] = s / 256.0f;
    scales[2] = s / 65536.0f;
}

/* ---- typed forms -------------------------------------------------------- */

/* clang-format off */
void q_quantize_row_q8_ref(const float *x, int64_t k, q_row_q8 *w) { q_quantize_row_ref(Q_KFMT_Q8, x, k, w); }
void q_dequantize_row_q8_ref(const q_row_q8 *w, int64_t k, float *y) { q_dequantize_row_ref(Q_KFMT_Q8, w, k, y); }
float q_dot_q8_f32_ref(const q_row_q8 *w, const float *x, int64_t k) { return q_dot_f32_ref(Q_KFMT_Q8, w, x, k); }
float q_dot_q8_a8_ref(const q_row_q8 *w, const int8_t *xq, float xs, int64_t k) { return q_dot_a8_ref(Q_KFMT_Q8, w, xq, xs, k); }

void q_quantize_row_f8e4m3_ref(const float *x, int64_t k, q_row_f8e4m3 *w) { q_quantize_row_ref(Q_KFMT_F8E4M3, x, k, w); }
void q_dequantize_row_f8e4m3_ref(const q_row_f8e4m3 *w, int64_t k, float *y) { q_dequantize_row_ref(Q_KFMT_F8E4M3, w, k, y); }
float q_dot_f8e4m3_f32_ref(const q_row_f8e4m3 *w, const float *x, int64_t k) { return q_dot_f32_ref(Q_KFMT_F8E4M3, w, x, k); }
void q_quantize_row_f8e5m2_ref(const float *x, int64_t k, q_row_f8e5m2 *w) { q_quantize_row_ref(Q_KFMT_F8E5M2, x, k, w); }
void q_dequantize_row_f8e5m2_ref(const q_row_f8e5m2 *w, int64_t k, float *y) { q_dequantize_row_ref(Q_KFMT_F8E5M2, w, k, y); }
float q_dot_f8e5m2_f32_ref(const q_row_f8e5m2 *w, const float *x, int64_t k) { return q_dot_f32_ref(Q_KFMT_F8E5M2, w, x, k); }

void q_quantize_row_q4_g32_ref(const float *x, int64_t k, q_block_q4_g32 *w) { q_quantize_row_ref(Q_KFMT_Q4_G32, x, k, w); }
void q_dequantize_row_q4_g32_ref(const q_block_q4_g32 *w, int64_t k, float *y) { q_dequantize_row_ref(Q_KFMT_Q4_G32, w, k, y); }
float q_dot_q4_g32_f32_ref(const q_block_q4_g32 *w, const float *x, int64_t k) { return q_dot_f32_ref(Q_KFMT_Q4_G32, w, x, k); }
float q_dot_q4_g32_a8_ref(const q_block_q4_g32 *w, const int8_t *xq, float xs, int64_t k) { return q_dot_a8_ref(Q_KFMT_Q4_G32, w, xq, xs, k); }
void q_quantize_row_q4_g64_ref(const float *x, int64_t k, q_block_q4_g64 *w) { q_quantize_row_ref(Q_KFMT_Q4_G64, x, k, w); }
void q_dequantize_row_q4_g64_ref(const q_block_q4_g64 *w, int64_t k, float *y) { q_dequantize_row_ref(Q_KFMT_Q4_G64, w, k, y); }
float q_dot_q4_g64_f32_ref(const q_block_q4_g64 *w, const float *x, int64_t k) { return q_dot_f32_ref(Q_KFMT_Q4_G64, w, x, k); }
float q_dot_q4_g64_a8_ref(const q_block_q4_g64 *w, const int8_t *xq, float xs, int64_t k) { return q_dot_a8_ref(Q_KFMT_Q4_G64, w, xq, xs, k); }
void q_quantize_row_q4_g128_ref(const float *x, int64_t k, q_block_q4_g128 *w) { q_quantize_row_ref(Q_KFMT_Q4_G128, x, k, w); }
void q_dequantize_row_q4_g128_ref(const q_block_q4_g128 *w, int64_t k, float *y) { q_dequantize_row_ref(Q_KFMT_Q4_G128, w, k, y); }
float q_dot_q4_g128_f32_ref(const q_block_q4_g128 *w, const float *x, int64_t k) { return q_dot_f32_ref(Q_KFMT_Q4_G128, w, x, k); }
float q_dot_q4_g128_a8_ref(const q_block_q4_g128 *w, const int8_t *xq, float xs, int64_t k) { return q_dot_a8_ref(Q_KFMT_Q4_G128, w, xq, xs, k); }

void q_quantize_row_q4a_g32_ref(const float *x, int64_t k, q_block_q4a_g32 *w) { q_quantize_row_ref(Q_KFMT_Q4A_G32, x, k, w); }
void q_dequantize_row_q4a_g32_ref(const q_block_q4a_g32 *w, int64_t k, float *y) { q_dequantize_row_ref(Q_KFMT_Q4A_G32, w, k, y); }
float q_dot_q4a_g32_f32_ref(const q_block_q4a_g32 *w, const float *x, int64_t k) { return q_dot_f32_ref(Q_KFMT_Q4A_G32, w, x, k); }
float q_dot_q4a_g32_a8_ref(const q_block_q4a_g32 *w, const int8_t *xq, float xs, int64_t k) { return q_dot_a8_ref(Q_KFMT_Q4A_G32, w, xq, xs, k); }
void q_quantize_row_q4a_g64_ref(const float *x, int64_t k, q_block_q4a_g64 *w) { q_quantize_row_ref(Q_KFMT_Q4A_G64, x, k, w); }
void q_dequantize_row_q4a_g64_ref(const q_block_q4a_g64 *w, int64_t k, float *y) { q_dequantize_row_ref(Q_KFMT_Q4A_G64, w, k, y); }
float q_dot_q4a_g64_f32_ref(const q_block_q4a_g64 *w, const float *x, int64_t k) { return q_dot_f32_ref(Q_KFMT_Q4A_G64, w, x, k); }
float q_dot_q4a_g64_a8_ref(const q_block_q4a_g64 *w, const int8_t *xq, float xs, int64_t k) { return q_dot_a8_ref(Q_KFMT_Q4A_G64, w, xq, xs, k); }
void q_quantize_row_q4a_g128_ref(const float *x, int64_t k, q_block_q4a_g128 *w) { q_quantize_row_ref(Q_KFMT_Q4A_G128, x, k, w); }
void q_dequantize_row_q4a_g128_ref(const q_block_q4a_g128 *w, int64_t k, float *y) { q_dequantize_row_ref(Q_KFMT_Q4A_G128, w, k, y); }
float q_dot_q4a_g128_f32_ref(const q_block_q4a_g128 *w, const float *x, int64_t k) { return q_dot_f32_ref(Q_KFMT_Q4A_G128, w, x, k); }
float q_dot_q4a_g128_a8_ref(const q_block_q4a_g128 *w, const int8_t *xq, float xs, int64_t k) { return q_dot_a8_ref(Q_KFMT_Q4A_G128, w, xq, xs, k); }
/* clang-format on */
