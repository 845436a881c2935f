/* quant.h: quantization numerics, one section per source file.
 *
 * Everything the compiler knows about number formats lives here: the
 * element formats (int8, uint8, int4, uint4, FP8 E4M3FN, FP8 E5M2), their
 * encodings bit-exact with ONNX QuantizeLinear/DequantizeLinear/Cast and
 * ml_dtypes, quantization over ONNX's tensor/axis/block layouts, parameter
 * choice (min-max and MSE clipping), a weight matrix's precision, GPTQ
 * rounding, error statistics (of tensors and of model outputs), activation
 * histograms and their observers, the bytes/error allocation of automatic
 * precision selection, and the packed block formats whose scalar `_ref`
 * functions define what generated kernels must compute.
 * docs/quantization.md is the user-facing description.
 *
 * Codes are one byte per element outside the packed formats: the
 * two's-complement byte for int8/int4/int3/int2 (sign-extended), the value
 * for uint8/uint4/uint3/uint2, the NF4 code, the raw FP8 byte; bf16 and f16
 * codes are two (q_format_code_bytes), in native byte order. int4/uint4
 * pack two per byte only through q_int4_pack and the block structs. */
#ifndef QMC_QUANT_H
#define QMC_QUANT_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rt.h"
#include "support.h"

/* ---- format.c: element formats ----------------------------------------- */

typedef enum q_format {
    QFMT_F32, /* not quantized; the other formats' reference point */
    QFMT_INT8,
    QFMT_UINT8,
    QFMT_INT4,
    QFMT_UINT4,
    QFMT_FP8_E4M3, /* ONNX FLOAT8E4M3FN: bias 7, max 448, no inf, NaN S.1111.111 */
    QFMT_FP8_E5M2, /* ONNX FLOAT8E5M2: bias 15, max 57344, IEEE inf and NaN */
    /* weight-only low-bit integers (groups along the input dimension) */
    QFMT_INT3,  /* [-4, 3] */
    QFMT_UINT3, /* [0, 7] (int3 with zero points) */
    QFMT_INT2,  /* [-2, 1] */
    QFMT_UINT2, /* [0, 3] (int2 with zero points) */
    QFMT_NF4,   /* QLoRA's NormalFloat-4: code c stands for q_nf4_table[c] in [-1, 1] */
    /* 16-bit float weight storage, unscaled (scale 1): two-byte codes */
    QFMT_BF16, /* bfloat16, round to nearest even */
    QFMT_F16,  /* IEEE binary16, round to nearest even, saturated to ±65504 */
    QFMT_COUNT
} q_format;

/* The command-line name ("int8", "fp8e4m3"); q_format_from_name returns
 * QFMT_COUNT for an unknown name. "f32" names QFMT_F32. */
const char *q_format_name(q_format format);
q_format q_format_from_name(const char *name);
/* Bits one code takes in storage (4 for int4/uint4, packed). */
int q_format_bits(q_format format);
bool q_format_is_fp8(q_format format);
bool q_format_is_int(q_format format); /* int8 uint8 int4 uint4 int3 uint3 int2 uint2 */
/* The grouped sub-byte integers (int4 uint4 int3 uint3 int2 uint2). */
bool q_format_is_low(q_format format);
/* A low format's twin with zero points (int4 -> uint4) and back (uint4 ->
 * int4); other formats are returned unchanged. */
q_format q_format_asym(q_format format);
q_format q_format_sym(q_format format);
/* Bytes of one code outside the packed formats: 2 for bf16/f16, else 1. */
static inline int q_format_code_bytes(q_format format)
{
    return format == QFMT_BF16 || format == QFMT_F16 ? 2 : 1;
}
/* Integer codes below zero (int8 int4 int3 int2): codes are two's-complement
 * bytes outside the packed formats. */
bool q_format_is_signed(q_format format);
/* A low format with zero points (uint4 uint3 uint2). */
static inline bool q_format_is_asym(q_format format) { return q_format_sym(format) != format; }
/* Integer code range, [-128,127], [0,255], [-8,7], [0,15]; integer formats only. */
int32_t q_format_qmin(q_format format);
int32_t q_format_qmax(q_format format);
/* The largest finite value a code stands for (before scaling): 127, 255,
 * 7, 15, 448, 57344. */
float q_format_max(q_format format);
/* The dtype --codes files use: int8 for int8/int4, uint8 for the rest. */
qmc_dtype q_format_code_dtype(q_format format);

/* ---- fp8.c: FP8 and binary16 conversions -------------------------------- */

/* ONNX Cast(float32 -> FLOAT8E4M3FN, saturate). Round to nearest, ties to
 * even. saturate: finite values beyond ±448 and ±inf become ±448.
 * !saturate: what ml_dtypes' astype does: a value that rounds beyond ±448
 * and ±inf become NaN (0x7F/0xFF by sign). NaN stays NaN, sign kept. */
uint8_t q_fp8_e4m3_encode(float x, bool saturate);
/* Exact value of a code; NaN codes give the quiet NaN 0x7FC00000 with the
 * code's sign (as ml_dtypes does). */
float q_fp8_e4m3_decode(uint8_t code);
/* ONNX Cast to FLOAT8E5M2: as above with max 57344; without saturation
 * out-of-range values and ±inf become ±inf (0x7C/0xFC), NaN becomes
 * 0x7E/0xFE (ml_dtypes' quiet NaN). */
uint8_t q_fp8_e5m2_encode(float x, bool saturate);
float q_fp8_e5m2_decode(uint8_t code);
/* ml_dtypes' plain conversion (`x.astype(float8_*)`) is ONNX Cast with
 * saturate=0: the reference vectors show the two agree on every input. */
static inline uint8_t q_fp8_e4m3_encode_plain(float x) { return q_fp8_e4m3_encode(x, false); }
static inline uint8_t q_fp8_e5m2_encode_plain(float x) { return q_fp8_e5m2_encode(x, false); }
/* Dispatch on a format (QFMT_FP8_E4M3 or QFMT_FP8_E5M2). */
uint8_t q_fp8_encode(q_format format, float x, bool saturate);
float q_fp8_decode(q_format format, uint8_t code);
/* True if the code is a NaN of that format. */
bool q_fp8_is_nan(q_format format, uint8_t code);

/* IEEE binary16, round to nearest even; overflow gives inf, NaN a quiet NaN. */
uint16_t q_f16_from_f32(float x);
float q_f16_to_f32(uint16_t h);
/* bfloat16 (the top half of a float), round to nearest even; NaN stays a
 * quiet NaN with its sign. */
uint16_t q_bf16_from_f32(float x);
float q_bf16_to_f32(uint16_t h);
/* The code of x in a 16-bit weight format (bf16; f16 saturated to ±65504,
 * so that a weight never becomes inf) and its value. */
uint16_t q_f16w_encode(q_format format, float x);
float q_f16w_decode(q_format format, uint16_t code);

/* ---- intq.c: integer codes and int4 packing ---------------------------- */

/* 1.5 * 2^23: (v + M) - M rounds v to an integer, ties to even, for
 * |v| <= 2^22 in the default rounding mode. Loops use it because rintf
 * does not vectorize on baseline x86-64. */
#define Q_RNE_MAGIC 12582912.0f

/* The ONNX integer code of v = x / scale: clamp(rint(v) + zp, qmin, qmax).
 * NaN gives qmin, as the ONNX reference does on x86 (numpy's cast of NaN
 * to int32 is INT32_MIN, which the clip maps to qmin). */
int32_t q_int_encode(float v, int32_t zp, int32_t qmin, int32_t qmax);

/* Packs n int4/uint4 codes (one per byte, only the low nibble is used) two
 * per byte as ONNX does: element 2i in the low nibble of byte i, 2i+1 in the
 * high nibble; an odd count leaves the last high nibble 0. */
size_t q_int4_packed_size(int64_t n);
void q_int4_pack(const uint8_t *codes, int64_t n, uint8_t *packed);
/* Unpacks n codes; is_signed sign-extends each nibble (int4), else 0..15. */
void q_int4_unpack(const uint8_t *packed, int64_t n, bool is_signed, uint8_t *codes);

/* ---- nf4.c: the NormalFloat-4 codebook ---------------------------------- */

/* The 16 values of NF4 codes 0 .. 15, ascending, code 7 exactly 0. */
extern const float q_nf4_table[16];
/* The code of the entry nearest v (ties: the smaller code; NaN: 0). */
uint8_t q_nf4_encode(float v);

/* ---- quantize.c: ONNX-layout quantize and dequantize ------------------- */

typedef enum q_granularity {
    Q_GRAN_TENSOR, /* one scale */
    Q_GRAN_AXIS,   /* one scale per index along axis ("per channel") */
    Q_GRAN_BLOCK,  /* one scale per `block` consecutive elements along axis */
} q_granularity;

const char *q_granularity_name(q_granularity granularity);

/* Quantization parameters in ONNX's layout. scales has scale_shape:
 *   tensor: rank 0;  axis: [shape[axis]];
 *   block:  shape with dimension axis replaced by shape[axis] / block,
 * and element i along axis uses scale index i / block. zero_points has the
 * same shape, or is NULL for all zeros (always NULL for FP8). The scales
 * hold values already representable in scale_dtype (F32 or F16). */
typedef struct q_params {
    q_format format;
    q_granularity granularity;
    int axis;      /* 0 <= axis < rank; 0 for Q_GRAN_TENSOR */
    int64_t block; /* Q_GRAN_BLOCK only */
    bool saturate; /* FP8 only; integer formats always saturate (ONNX) */
    qmc_dtype scale_dtype;
    int scale_rank;
    int64_t scale_shape[RT_MAX_RANK];
    int64_t scale_count;
    float *scales;
    int32_t *zero_points;
} q_params;

/* Sets scale_rank/scale_shape/scale_count from granularity, axis and block
 * for a tensor of this shape. Normalises a negative axis (ONNX: counts from
 * the end). Fails with a one-line reason when the axis is out of range, the
 * block is not positive or does not divide the axis, or the tensor has rank
 * 0 for axis/block granularity. */
bool q_params_layout(q_params *p, int rank, const int64_t *shape, char *err, size_t err_size);

/* Cuts a tensor with layout p into contiguous spans and calls fn for each:
 * elements off .. off+len-1 all use scale index sidx (per_element false),
 * or element off+k uses scale index sidx+k (per_element true). Spans come
 * in memory order. Loops over a tensor's groups are built on this. */
typedef void (*q_span_fn)(void *ctx, int64_t off, int64_t len, int64_t sidx, bool per_element);
void q_walk_spans(const q_params *p, int rank, const int64_t *shape, q_span_fn fn, void *ctx);

/* ONNX QuantizeLinear: codes[i] = saturate(rint(x / scale) + zp) for the
 * integer formats, cast_fp8(x / scale, saturate) for FP8 (NF4, bf16 and f16
 * likewise with their own encodings); q_format_code_bytes per element (see
 * the top of this file). p must have a valid layout for shape. */
void q_quantize(const float *x, int rank, const int64_t *shape, const q_params *p, uint8_t *codes);
/* ONNX DequantizeLinear: y = (code - zp) * scale in float32. */
void q_dequantize(const uint8_t *codes, int rank, const int64_t *shape, const q_params *p,
                  float *y);

/* ---- params.c: choosing parameters from data --------------------------- */

typedef enum q_clip {
    Q_CLIP_MINMAX, /* the range of the data */
    Q_CLIP_MSE,    /* the clipped range that minimises each group's squared error */
} q_clip;

typedef struct q_choice {
    q_format format;
    q_granularity granularity;
    int axis;       /* may be negative */
    int64_t block;  /* Q_GRAN_BLOCK */
    bool symmetric; /* FP8 is always symmetric */
    q_clip clip;
    qmc_dtype scale_dtype; /* QMC_DTYPE_F32 or QMC_DTYPE_F16 */
} q_choice;

/* Chooses scales (and zero points) for x, one group per scale:
 *   symmetric int4/int3/int2: scale = c * m / qmin where m is the group's
 *              value of largest magnitude, sign included (ties: the
 *              negative one), so that m is code qmin and every code is used
 *              (step max|x| / 8 for int4; the scale is negative when m is
 *              positive), or c * max|x| / qmax when that quantizes the
 *              group with less squared error (q_group_params_data);
 *   symmetric, int8 and uint8/uint4: scale = c * max|x| / (qmax - z0),
 *              z0 = 0 for int8, 128/8 (the middle) for uint8/uint4; FP8:
 *              c * max|x| / 448 or / 57344; NF4: c * max|x|;
 *   asymmetric: lo = c * min(min x, 0), hi = c * max(max x, 0),
 *              scale = (hi - lo) / (qmax - qmin), zp = qmin - rint(lo / scale)
 *              clamped to the code range, so 0.0 is exactly representable;
 * c = 1 for min-max; MSE clipping searches c in (0, 1] per group for the
 * least squared error after quantization. Scales are rounded to scale_dtype
 * (a zero or overflowing f16 scale is clamped to the f16 range) and an
 * all-zero group gets scale 1. x must be finite. Arrays live in arena.
 * Fails with a reason for a bad layout or FP8 with !symmetric. */
bool q_choose_params(sup_arena *arena, const float *x, int rank, const int64_t *shape,
                     const q_choice *choice, q_params *out, char *err, size_t err_size);
/* The min-max parameters of one group with range [mn, mx] and clip ratio c
 * (the formula above); what q_choose_params and the _ref row quantizers use. */
void q_group_params(q_format format, bool symmetric, qmc_dtype scale_dtype, float mn, float mx,
                    float c, float *scale, int32_t *zp);
/* What min-max (c = 1) or one step of the MSE search chooses for a group
 * x[0..n) with range [mn, mx]: q_group_params, except for symmetric int4,
 * int3 and int2, which take whichever of c * m / qmin (q_group_params) and
 * c * max|x| / qmax (code qmin unused) leaves the smaller squared error
 * after quantization, a tie going to the first. */
void q_group_params_data(q_format format, bool symmetric, qmc_dtype scale_dtype, const float *x,
                         int64_t n, float mn, float mx, float c, float *scale, int32_t *zp);
/* A scale rounded to scale_dtype (F16: nearest even, clamped to
 * [2^-24, 65504]; F32: unchanged). */
float q_scale_round(float scale, qmc_dtype scale_dtype);
/* Storage bits per element of a tensor of count elements: the codes plus
 * every scale (16 or 32 bits) plus every zero point (the code's width) if
 * p->zero_points is not NULL. */
double q_bits_per_element(const q_params *p, int64_t count);

/* ---- precision.c: a weight matrix's precision --------------------------- */

/* A weight's precision: how a linear layer's weight matrix is stored and
 * multiplied (from --precision and annotations). */
typedef struct q_precision {
    q_format format; /* QFMT_F32, INT8, INT4 (symmetric), UINT4 (int4 with zero point), FP8_E4M3,
                        FP8_E5M2 */
    int group;   /* int4: elements per scale along the input dimension (32, 64, 128); 0: per output
                    channel */
    q_clip clip; /* how the scales are chosen */
    bool act8;   /* activations quantized to int8 (":a8") */
    float act_scale; /* act8: a fixed scale for every row (from calibration), or 0:
                      * each row's own, max|row| / 127, computed as it runs */
    bool act_static; /* act8 with act_scale from calibration (":a8:static"); the
                      * select-precision pass sets act_scale */
    bool act_model;  /* act_static with the scale and zero point an imported model's
                      * QuantizeLinear gives (ONNX's static quantization): codes
                      * clamp(rint(x / act_scale) + act_zero, -128, 127), values
                      * (code - act_zero) * act_scale, as ONNX's QuantizeLinear and
                      * DequantizeLinear (uint8 codes are these plus 128) */
    int act_zero;    /* act_model: the zero point as an int8 code, in [-128, 127] */
    bool scale_f32;  /* grouped formats: f32 group scales (":sf32"; an imported model's
                      * scales exactly) instead of f16 */
    bool gptq;       /* int4 codes chosen by GPTQ (":gptq"): each column's rounding
                      * error compensated on the columns after it, using the
                      * calibrated second moments of the layer's input; the
                      * format and its storage are unchanged */
    /* methods (integer formats; the storage is unchanged, see methods.c) */
    bool imat;      /* ":imat": scales (and zero points) searched for the least squared
                     * error weighted by each input channel's E[x_j^2] from calibration
                     * (llama.cpp's importance matrix), then refitted; implies :mse */
    bool hqq;       /* ":hqq": half-quadratic optimisation of scales and zero points
                     * (no data) */
    bool awq;       /* ":awq": input channels scaled by AWQ's searched scales, folded
                     * into the op before (passes/fold_scales.c) */
    bool smooth;    /* ":smooth" (with :a8): SmoothQuant's migration of activation
                     * outliers into the weight, folded likewise */
    bool act_order; /* ":act" (with :gptq): GPTQ's columns by decreasing E[x_j^2],
                     * its groups' parameters chosen before (static groups) */
} q_precision;

/* Parses one FORMAT; on failure writes a reason listing the valid formats. */
bool q_precision_parse(const char *text, q_precision *out, char *err, size_t err_size);
/* The canonical spelling ("int4:g32", "int8", "fp8e4m3", "int4:g64:asym:mse"). */
const char *q_precision_name(sup_arena *arena, const q_precision *f);
/* The method that chose f's codes: "rtn", "mse", "imat", "hqq", "gptq",
 * "gptq-act", or
 * "none" for f32, after "awq+" or "smooth+" when the input channels are
 * scaled (the report's method column). */
const char *q_precision_method(const q_precision *f);
/* Storage of a matrix [n, k] in format f: codes (k padded to the group),
 * scales and zero points; 4 bytes per weight for f32. */
size_t q_precision_bytes(const q_precision *f, int64_t n, int64_t k);

/* ---- gptq.c: GPTQ rounding ------------------------------------------------ */

/* u (k x k, upper), with u^T u = (H + dampening)^-1 for H = E[x x^T] (k x k)
 * of a layer's input; dead[i]: input channel i never fires (its weights
 * become 0). Scratch in a. False if H is singular. */
bool q_gptq_factor(sup_arena *a, const double *h, int64_t k, double *u, bool *dead);
/* GPTQ's act-order: order[k], the columns by decreasing h[j][j] (ties by
 * index), and h with its rows and columns in that order (in a): the matrix
 * whose factor q_gptq_codes takes with that order. */
const double *q_gptq_act_order(sup_arena *a, const double *h, int64_t k, int64_t *order);
/* Codes [n][kp] of orig [n][k] by GPTQ with factor u (block layout ch);
 * fills p's scales and zero points (allocated like q_choose_params').
 * order NULL: columns in order, each group's parameters chosen from the
 * updated values when its first column is reached; else columns in
 * order[] (u and dead are then of the reordered H, q_gptq_act_order) and
 * every group's parameters chosen from orig first (static groups: the
 * storage keeps groups of consecutive columns). */
void q_gptq_codes(sup_arena *a, const float *orig, int64_t n, int64_t k, int64_t kp,
                  const double *u, const bool *dead, const int64_t *order, const q_choice *ch,
                  q_params *p, uint8_t *codes);

/* ---- methods.c: importance-weighted and half-quadratic parameters -------- */

/* Refines p, the parameters q_choose_params chose for W[n][kp] (rows of k
 * values padded with zeros to kp) by f's clip rule, group by group by f's
 * method: f->imat searches clip ratios and refits each scale (and zero
 * point) for the least sum over the group of importance[j] * err_j^2
 * (importance: E[x_j^2] of the k input channels; required); f->hqq runs
 * HQQ's half-quadratic iterations (a sparse lp<1 residual, then a
 * least-squares scale and integer zero point). Nothing else changes p: a
 * group keeps the clip rule's parameters unless the method's have less
 * (weighted) squared error. No method: p unchanged. Deterministic. */
void q_method_refine(sup_arena *a, const float *w, int64_t n, int64_t k, int64_t kp,
                     const q_precision *f, const double *importance, q_params *p);

/* ---- matrix.c: a weight matrix quantized, held compactly ------------------ */

/* How the parameters of a precision are chosen (q_choose_params): int4
 * groups along the input dimension with f16 scales, else one f32 scale per
 * output channel. */
q_choice q_precision_choice(const q_precision *f);

/* W[n, k] quantized to f: codes (int4 two per byte), scales and zero
 * points, rows padded with zeros to kp (a multiple of the group). */
typedef struct q_matrix {
    q_precision f;
    int64_t n, k, kp;
    q_params p; /* scales (and zero points): [n][kp / group], or [n] per channel */
    bool packed;
    size_t row_bytes;
    uint8_t *codes; /* n rows of row_bytes */
} q_matrix;

/* Quantizes orig[n][k] to f (not f32) exactly as the quantize-weights pass
 * does; u and dead are GPTQ's factor (q_gptq_factor) when f.gptq, else
 * NULL (order: GPTQ's act-order when f.act_order, else NULL);
 * importance[k] is E[x_j^2] of the input when f.imat, else NULL.
 * The result lives in keep (temporaries do not). False with a reason if
 * the layout is invalid. */
bool q_matrix_quantize(sup_arena *keep, const float *orig, int64_t n, int64_t k,
                       const q_precision *f, const double *u, const bool *dead,
                       const int64_t *order, const double *importance, q_matrix *out, char *err,
                       size_t err_size);
/* Rows r0 .. r0 + rows - 1 dequantized into out[rows][k], bit for bit what
 * the pass's dequantized matrix holds; scratch: q_matrix_scratch bytes. */
void q_matrix_dequantize_rows(const q_matrix *m, int64_t r0, int64_t rows, float *out,
                              void *scratch);
size_t q_matrix_scratch(const q_matrix *m);
/* The bytes it holds (codes, scales, zero points). */
size_t q_matrix_bytes_held(const q_matrix *m);

/* ---- stats.c: error statistics ----------------------------------------- */

typedef struct q_error_stats {
    int64_t count;
    double rmse;    /* sqrt(mean((x - y)^2)) */
    double max_abs; /* max |x - y| */
    double sqnr_db; /* 10 log10(sum x^2 / sum (x - y)^2); +inf if exact */
} q_error_stats;

/* Statistics of y as an approximation of x. NaN anywhere makes them NaN. */
q_error_stats q_measure(const float *x, const float *y, int64_t n);

/* Output error between a reference and a quantized output port. */
typedef struct q_error_acc {
    double num, den;
} q_error_acc;
/* Adds one run's output to acc: KL(softmax(ref) || softmax(q)) per row of
 * the last dimension for logits (num = sum of KL, den = rows), else
 * num = sum (q - ref)^2, den = sum ref^2. ref_logp: the log-softmax of ref
 * (logits only), from q_log_softmax. */
void q_error_add(q_error_acc *acc, bool logits, const float *ref, const double *ref_logp,
                 const float *q, int64_t count, int64_t row);
void q_log_softmax(const float *x, int64_t count, int64_t row, double *out);
/* The error the user sees: mean KL, or relative RMS sqrt(num / den). */
double q_error_value(const q_error_acc *acc, bool logits);
/* xx[i][j] += sum over the rows of x[rows][k] of x[r][i] * x[r][j], for
 * j >= i (the upper triangle of the k x k matrix), each sum in row order. */
void q_second_moment_add(double *xx, const float *x, int64_t rows, int64_t k);
/* The noise a change of a layer's weight a[n][k] to b adds to its output:
 * sum over rows of (a - b)_r H (a - b)_r^T with H = E[x x^T] (k x k) of its
 * input, or with only H's diagonal m when h is NULL, or plain squares when
 * both are NULL; b NULL: the output's own energy. */
double q_quad_error(const float *a, const float *b, const double *h, const double *m, int64_t n,
                    int64_t k);

/* ---- hist.c: activation histograms and observers ------------------------ */

typedef enum q_observer {
    Q_OBS_MINMAX,     /* the largest |x| seen */
    Q_OBS_PERCENTILE, /* that percentile of |x| (99.99 unless given) */
    Q_OBS_MSE,        /* the clip with the least expected int8 squared error (the default) */
    Q_OBS_KL,         /* the clip whose int8 histogram is closest in KL divergence (TensorRT) */
} q_observer;

/* A histogram of |x| over [0, 2^exp) in Q_HIST_BINS equal bins. When a
 * larger value arrives the range doubles (adjacent bins merge), so the
 * counts depend only on the multiset of values added, never their order. */
#define Q_HIST_BINS 2048
typedef struct q_hist {
    int exp;         /* the range is [0, 2^exp); meaningless while nonzero == 0 */
    int64_t nonzero; /* values added that are not 0 */
    int64_t zeros;   /* exact zeros (in bin 0 too) */
    float absmax;
    uint64_t bins[Q_HIST_BINS];
} q_hist;

void q_hist_init(q_hist *h);
void q_hist_add(q_hist *h, const float *x, int64_t n);
double q_hist_bin_width(const q_hist *h);
int64_t q_hist_total(const q_hist *h);
/* The clip value (symmetric int8, scale = clip / 127) the method chooses;
 * percentile is in percent. 0 for an all-zero histogram. */
double q_observer_clip(const q_hist *h, q_observer m, double percentile);
const char *q_observer_name(q_observer m);
/* "minmax", "percentile", "percentile=99.9", "mse", "kl". */
bool q_observer_parse(const char *text, q_observer *m, double *percentile);

/* ---- alloc.c: bytes against error ------------------------------------------ */

/* The allocation problem: per tensor a list of (bytes, error) choices.
 * Returns false if no choice fits; choice[t] gets the index chosen for t.
 * budget_bytes: least total error with total bytes <= budget (max_error
 * ignored); otherwise (budget_bytes == 0) fewest bytes with total error
 * <= max_error (least error if none fits). */
typedef struct q_alloc_item {
    const size_t *bytes;
    const double *error;
    int n;
} q_alloc_item;
bool q_allocate(const q_alloc_item *items, int n_items, size_t budget_bytes, double max_error,
                int *choice);
/* The total bytes and the total error of one choice per item. */
size_t q_alloc_bytes(const q_alloc_item *items, int n, const int *choice);
double q_alloc_error(const q_alloc_item *items, int n, const int *choice);

/* ---- blocks.c: packed kernel formats and their _ref functions ---------- *
 *
 * Weight matrices are row-major [N output channels][K inputs] (PyTorch's
 * layout) and are packed one row at a time; a packed row is q_row_size(f, K)
 * bytes and rows follow each other. The `_ref` functions are plain scalar
 * code that DEFINES each format: a generated kernel must produce the same
 * bytes as the row quantizer and dequantizer (bit-exact: they use the ONNX
 * rounding above, which vectorises exactly), and dot products within the
 * named tolerance of the `_ref` dot (see q_dot_tolerance_*).
 *
 * int4 nibbles are packed as ONNX packs them (element 2i low, 2i+1 high).
 * Symmetric int4 blocks hold int4 codes, zero point 0; asymmetric blocks
 * hold uint4 codes and a uint8 zero point in [0, 15]. Scales are IEEE
 * binary16 bits (uint16_t) unless the name ends in _sf32. */

/* Per output channel (any K): a float scale, then K codes. */
typedef struct q_row_q8 {
    float d;
    int8_t qs[];
} q_row_q8;
typedef struct q_row_f8e4m3 {
    float d;
    uint8_t qs[];
} q_row_f8e4m3;
typedef struct q_row_f8e5m2 {
    float d;
    uint8_t qs[];
} q_row_f8e5m2;
static_assert(sizeof(q_row_q8) == 4 && offsetof(q_row_q8, qs) == 4, "q_row_q8 header");
static_assert(sizeof(q_row_f8e4m3) == 4 && sizeof(q_row_f8e5m2) == 4, "q_row_f8 header");

/* int4 symmetric, f16 scale: 4.5 / 4.25 / 4.125 bits per weight. */
typedef struct q_block_q4_g32 {
    uint16_t d;
    uint8_t qs[16];
} q_block_q4_g32;
typedef struct q_block_q4_g64 {
    uint16_t d;
    uint8_t qs[32];
} q_block_q4_g64;
typedef struct q_block_q4_g128 {
    uint16_t d;
    uint8_t qs[64];
} q_block_q4_g128;
static_assert(sizeof(q_block_q4_g32) == 18, "q_block_q4_g32 size");
static_assert(sizeof(q_block_q4_g64) == 34, "q_block_q4_g64 size");
static_assert(sizeof(q_block_q4_g128) == 66, "q_block_q4_g128 size");

/* int4 asymmetric (uint4 codes, zero point z), f16 scale: 5.0 / 4.5 / 4.25 bits. */
typedef struct q_block_q4a_g32 {
    uint16_t d;
    uint8_t z, reserved; /* reserved is 0 */
    uint8_t qs[16];
} q_block_q4a_g32;
typedef struct q_block_q4a_g64 {
    uint16_t d;
    uint8_t z, reserved;
    uint8_t qs[32];
} q_block_q4a_g64;
typedef struct q_block_q4a_g128 {
    uint16_t d;
    uint8_t z, reserved;
    uint8_t qs[64];
} q_block_q4a_g128;
static_assert(sizeof(q_block_q4a_g32) == 20, "q_block_q4a_g32 size");
static_assert(sizeof(q_block_q4a_g64) == 36, "q_block_q4a_g64 size");
static_assert(sizeof(q_block_q4a_g128) == 68, "q_block_q4a_g128 size");

/* The same with a float scale. */
typedef struct q_block_q4_g32_sf32 {
    float d;
    uint8_t qs[16];
} q_block_q4_g32_sf32;
typedef struct q_block_q4_g64_sf32 {
    float d;
    uint8_t qs[32];
} q_block_q4_g64_sf32;
typedef struct q_block_q4_g128_sf32 {
    float d;
    uint8_t qs[64];
} q_block_q4_g128_sf32;
typedef struct q_block_q4a_g32_sf32 {
    float d;
    uint8_t z, reserved[3];
    uint8_t qs[16];
} q_block_q4a_g32_sf32;
typedef struct q_block_q4a_g64_sf32 {
    float d;
    uint8_t z, reserved[3];
    uint8_t qs[32];
} q_block_q4a_g64_sf32;
typedef struct q_block_q4a_g128_sf32 {
    float d;
    uint8_t z, reserved[3];
    uint8_t qs[64];
} q_block_q4a_g128_sf32;
static_assert(sizeof(q_block_q4_g32_sf32) == 20, "q_block_q4_g32_sf32 size");
static_assert(sizeof(q_block_q4_g64_sf32) == 36, "q_block_q4_g64_sf32 size");
static_assert(sizeof(q_block_q4_g128_sf32) == 68, "q_block_q4_g128_sf32 size");
static_assert(sizeof(q_block_q4a_g32_sf32) == 24, "q_block_q4a_g32_sf32 size");
static_assert(sizeof(q_block_q4a_g64_sf32) == 40, "q_block_q4a_g64_sf32 size");
static_assert(sizeof(q_block_q4a_g128_sf32) == 72, "q_block_q4a_g128_sf32 size");

/* int3 and int2 (symmetric, and with a zero point), f16 scale: codes are a
 * little-endian bit stream, code j at bits [b * j, b * j + b) of qs (b = 3
 * or 2; an int3 code may straddle two bytes). int3: 3.5 / 3.25 / 3.125
 * bits per weight (asymmetric 4.0 / 3.5 / 3.25); int2: 2.5 / 2.25 / 2.125
 * (3.0 / 2.5 / 2.25). */
typedef struct q_block_q3_g32 {
    uint16_t d;
    uint8_t qs[12];
} q_block_q3_g32;
typedef struct q_block_q3_g64 {
    uint16_t d;
    uint8_t qs[24];
} q_block_q3_g64;
typedef struct q_block_q3_g128 {
    uint16_t d;
    uint8_t qs[48];
} q_block_q3_g128;
typedef struct q_block_q3a_g32 {
    uint16_t d;
    uint8_t z, reserved;
    uint8_t qs[12];
} q_block_q3a_g32;
typedef struct q_block_q3a_g64 {
    uint16_t d;
    uint8_t z, reserved;
    uint8_t qs[24];
} q_block_q3a_g64;
typedef struct q_block_q3a_g128 {
    uint16_t d;
    uint8_t z, reserved;
    uint8_t qs[48];
} q_block_q3a_g128;
typedef struct q_block_q2_g32 {
    uint16_t d;
    uint8_t qs[8];
} q_block_q2_g32;
typedef struct q_block_q2_g64 {
    uint16_t d;
    uint8_t qs[16];
} q_block_q2_g64;
typedef struct q_block_q2_g128 {
    uint16_t d;
    uint8_t qs[32];
} q_block_q2_g128;
typedef struct q_block_q2a_g32 {
    uint16_t d;
    uint8_t z, reserved;
    uint8_t qs[8];
} q_block_q2a_g32;
typedef struct q_block_q2a_g64 {
    uint16_t d;
    uint8_t z, reserved;
    uint8_t qs[16];
} q_block_q2a_g64;
typedef struct q_block_q2a_g128 {
    uint16_t d;
    uint8_t z, reserved;
    uint8_t qs[32];
} q_block_q2a_g128;
static_assert(sizeof(q_block_q3_g32) == 14 && sizeof(q_block_q3_g64) == 26 &&
                  sizeof(q_block_q3_g128) == 50,
              "q_block_q3 sizes");
static_assert(sizeof(q_block_q3a_g32) == 16 && sizeof(q_block_q3a_g64) == 28 &&
                  sizeof(q_block_q3a_g128) == 52,
              "q_block_q3a sizes");
static_assert(sizeof(q_block_q2_g32) == 10 && sizeof(q_block_q2_g64) == 18 &&
                  sizeof(q_block_q2_g128) == 34,
              "q_block_q2 sizes");
static_assert(sizeof(q_block_q2a_g32) == 12 && sizeof(q_block_q2a_g64) == 20 &&
                  sizeof(q_block_q2a_g128) == 36,
              "q_block_q2a sizes");

/* NF4 (QLoRA's NormalFloat-4, q_nf4_table), f16 scale (the group's
 * largest magnitude), codes 0 .. 15 packed as int4's: 4.5 / 4.25 / 4.125
 * bits per weight. */
typedef struct q_block_nf4_g32 {
    uint16_t d;
    uint8_t qs[16];
} q_block_nf4_g32;
typedef struct q_block_nf4_g64 {
    uint16_t d;
    uint8_t qs[32];
} q_block_nf4_g64;
typedef struct q_block_nf4_g128 {
    uint16_t d;
    uint8_t qs[64];
} q_block_nf4_g128;
static_assert(sizeof(q_block_nf4_g32) == 18 && sizeof(q_block_nf4_g64) == 34 &&
                  sizeof(q_block_nf4_g128) == 66,
              "q_block_nf4 sizes");

/* The packed formats, for table-driven code and tests. */
typedef enum q_kfmt {
    Q_KFMT_Q8,
    Q_KFMT_F8E4M3,
    Q_KFMT_F8E5M2,
    Q_KFMT_Q4_G32,
    Q_KFMT_Q4_G64,
    Q_KFMT_Q4_G128,
    Q_KFMT_Q4A_G32,
    Q_KFMT_Q4A_G64,
    Q_KFMT_Q4A_G128,
    Q_KFMT_Q4_G32_SF32,
    Q_KFMT_Q4_G64_SF32,
    Q_KFMT_Q4_G128_SF32,
    Q_KFMT_Q4A_G32_SF32,
    Q_KFMT_Q4A_G64_SF32,
    Q_KFMT_Q4A_G128_SF32,
    Q_KFMT_Q3_G32,
    Q_KFMT_Q3_G64,
    Q_KFMT_Q3_G128,
    Q_KFMT_Q3A_G32,
    Q_KFMT_Q3A_G64,
    Q_KFMT_Q3A_G128,
    Q_KFMT_Q2_G32,
    Q_KFMT_Q2_G64,
    Q_KFMT_Q2_G128,
    Q_KFMT_Q2A_G32,
    Q_KFMT_Q2A_G64,
    Q_KFMT_Q2A_G128,
    Q_KFMT_NF4_G32,
    Q_KFMT_NF4_G64,
    Q_KFMT_NF4_G128,
    Q_KFMT_BF16, /* K bfloat16 values, no scale (rows padded to 4 bytes) */
    Q_KFMT_F16,  /* K binary16 values (saturated to ±65504), no scale */
    Q_KFMT_COUNT
} q_kfmt;

typedef struct q_kfmt_info {
    const char *name; /* "q4_g32", "q4a_g64_sf32", "q8", "f8e4m3", "q3_g32", "q2a_g64" */
    q_format format;  /* code format: INT8, INT4, UINT4 (asym), INT3, UINT3, INT2, UINT2, FP8_* */
    int group;        /* elements per scale along K; 0: the whole row */
    bool asymmetric;  /* has a zero point */
    qmc_dtype scale_dtype; /* F16 or F32 */
    size_t block_bytes;    /* sizeof the block struct (row formats: the header) */
    size_t z_offset;       /* where the uint8 zero point is (asymmetric) */
    size_t qs_offset;      /* where the codes start in a block */
    double tol_dot_f32;    /* the format's Q_TOL_DOT_*_F32 */
    double tol_dot_a8;     /* the format's Q_TOL_DOT_*_A8; 0 for FP8 (no a8 dot) */
} q_kfmt_info;

const q_kfmt_info *q_kfmt_get(q_kfmt f);
/* Bytes of one packed row of k weights. Blocked formats need k % group == 0;
 * per-channel rows are padded to a multiple of 4 so the next scale is aligned. */
size_t q_row_size(q_kfmt f, int64_t k);

/* Tolerances: a fast dot product `got` passes if
 *     |got - ref| <= TOL * magnitude
 * where ref is the `_ref` dot and magnitude is q_dot_magnitude_f32 (resp.
 * _a8): the sum of |scale| * (|q - z| + |z|) * |x| over the row, i.e. the
 * size of the terms a kernel adds up. f32 dots: 1e-4 allows float
 * accumulation in any order, with FMA, for the K of real models (error
 * grows like sqrt(K) * 2^-24 in practice). a8 dots: the integer sums are
 * exact; only the float combination of groups and scales may differ. */
#define Q_TOL_DOT_Q8_F32 1e-4
#define Q_TOL_DOT_Q4_F32 1e-4
#define Q_TOL_DOT_F8_F32 1e-4
#define Q_TOL_DOT_Q8_A8 1e-6
#define Q_TOL_DOT_Q4_A8 1e-5
/* Quantize and dequantize of a row have no tolerance: bytes and floats
 * must be identical to the _ref. */

/* Generic forms (f selects the format); row points at q_row_size(f, k) bytes. */
void q_quantize_row_ref(q_kfmt f, const float *x, int64_t k, void *row);
void q_dequantize_row_ref(q_kfmt f, const void *row, int64_t k, float *y);
/* sum_i w_i * x_i with w the dequantized row, accumulated in double as
 * sum over groups of scale * sum_j (q_j - z) * x_j; returned as float. */
float q_dot_f32_ref(q_kfmt f, const void *row, const float *x, int64_t k);
/* Activations quantized with q_quantize_row_a8_ref: x ~= x_scale * xq.
 * Integer formats only: x_scale * sum over groups of scale * sum_j (q_j - z) * xq_j,
 * the inner sums in exact integers. */
float q_dot_a8_ref(q_kfmt f, const void *row, const int8_t *xq, float x_scale, int64_t k);
double q_dot_magnitude_f32(q_kfmt f, const void *row, const float *x, int64_t k);
double q_dot_magnitude_a8(q_kfmt f, const void *row, const int8_t *xq, float x_scale, int64_t k);
/* The largest |got - ref| a fast kernel may show: TOL * magnitude. */
double q_dot_tolerance_f32(q_kfmt f, const void *row, const float *x, int64_t k);
double q_dot_tolerance_a8(q_kfmt f, const void *row, const int8_t *xq, float x_scale, int64_t k);

/* Dynamic symmetric int8 quantization of an activation row: x_scale =
 * max|x| / 127 (1 if the row is all zero), xq = clamp(rint(x / x_scale),
 * -127, 127). */
void q_quantize_row_a8_ref(const float *x, int64_t k, int8_t *xq, float *x_scale);

/* f32 activations as three int8 digits, for integer dot products at f32
 * accuracy: with s = max|x| / 127 (1 if the row is all zero), each x is
 * t = clamp(rint(x * (127 * 65536 / max|x|)), -TMAX, TMAX) units of
 * s / 65536, written in base 256 with digits in [-128, 127]: digit 2 is
 * t's low byte read as signed, t <- (t + 128) >> 8, digit 1 likewise, and
 * what remains is digit 0 (within [-127, 127]); digit d lands at
 * xq[d * k + j], scales = {s, s / 256, s / 65536}. Then
 * |x - sum_d scales[d] * digit d| <= 2^-22 * max|x| (Q_SPLIT_A8X3_ERROR):
 * 23 bits of the row's largest value, as an f32 holds. */
#define Q_SPLIT_A8X3_ERROR 0x1p-22
#define Q_SPLIT_A8X3_UNITS 8323072.0f /* 127 * 65536 */
#define Q_SPLIT_A8X3_TMAX 8355711     /* 32639 * 256 + 127: digit 0 stays <= 127 */
void q_split_row_a8x3_ref(const float *x, int64_t k, int8_t *xq, float scales[3]);

/* Typed forms, one set per struct. Row quantizers choose min-max
 * parameters per group (q_group_params_data with c = 1): symmetric scale
 * the signed maximum / -8 or max|x| / 7 (int4, the better), max|x| / 127
 * (int8), / 448 or / 57344 (FP8); asymmetric (hi - lo) / 15 with zero
 * point -rint(lo / scale). FP8 rows saturate. */
void q_quantize_row_q8_ref(const float *x, int64_t k, q_row_q8 *w);
void q_dequantize_row_q8_ref(const q_row_q8 *w, int64_t k, float *y);
float q_dot_q8_f32_ref(const q_row_q8 *w, const float *x, int64_t k);
float q_dot_q8_a8_ref(const q_row_q8 *w, const int8_t *xq, float x_scale, int64_t k);

void q_quantize_row_f8e4m3_ref(const float *x, int64_t k, q_row_f8e4m3 *w);
void q_dequantize_row_f8e4m3_ref(const q_row_f8e4m3 *w, int64_t k, float *y);
float q_dot_f8e4m3_f32_ref(const q_row_f8e4m3 *w, const float *x, int64_t k);
void q_quantize_row_f8e5m2_ref(const float *x, int64_t k, q_row_f8e5m2 *w);
void q_dequantize_row_f8e5m2_ref(const q_row_f8e5m2 *w, int64_t k, float *y);
float q_dot_f8e5m2_f32_ref(const q_row_f8e5m2 *w, const float *x, int64_t k);

void q_quantize_row_q4_g32_ref(const float *x, int64_t k, q_block_q4_g32 *w);
void q_dequantize_row_q4_g32_ref(const q_block_q4_g32 *w, int64_t k, float *y);
float q_dot_q4_g32_f32_ref(const q_block_q4_g32 *w, const float *x, int64_t k);
float q_dot_q4_g32_a8_ref(const q_block_q4_g32 *w, const int8_t *xq, float x_scale, int64_t k);
void q_quantize_row_q4_g64_ref(const float *x, int64_t k, q_block_q4_g64 *w);
void q_dequantize_row_q4_g64_ref(const q_block_q4_g64 *w, int64_t k, float *y);
float q_dot_q4_g64_f32_ref(const q_block_q4_g64 *w, const float *x, int64_t k);
float q_dot_q4_g64_a8_ref(const q_block_q4_g64 *w, const int8_t *xq, float x_scale, int64_t k);
void q_quantize_row_q4_g128_ref(const float *x, int64_t k, q_block_q4_g128 *w);
void q_dequantize_row_q4_g128_ref(const q_block_q4_g128 *w, int64_t k, float *y);
float q_dot_q4_g128_f32_ref(const q_block_q4_g128 *w, const float *x, int64_t k);
float q_dot_q4_g128_a8_ref(const q_block_q4_g128 *w, const int8_t *xq, float x_scale, int64_t k);

void q_quantize_row_q4a_g32_ref(const float *x, int64_t k, q_block_q4a_g32 *w);
void q_dequantize_row_q4a_g32_ref(const q_block_q4a_g32 *w, int64_t k, float *y);
float q_dot_q4a_g32_f32_ref(const q_block_q4a_g32 *w, const float *x, int64_t k);
float q_dot_q4a_g32_a8_ref(const q_block_q4a_g32 *w, const int8_t *xq, float x_scale, int64_t k);
void q_quantize_row_q4a_g64_ref(const float *x, int64_t k, q_block_q4a_g64 *w);
void q_dequantize_row_q4a_g64_ref(const q_block_q4a_g64 *w, int64_t k, float *y);
float q_dot_q4a_g64_f32_ref(const q_block_q4a_g64 *w, const float *x, int64_t k);
float q_dot_q4a_g64_a8_ref(const q_block_q4a_g64 *w, const int8_t *xq, float x_scale, int64_t k);
void q_quantize_row_q4a_g128_ref(const float *x, int64_t k, q_block_q4a_g128 *w);
void q_dequantize_row_q4a_g128_ref(const q_block_q4a_g128 *w, int64_t k, float *y);
float q_dot_q4a_g128_f32_ref(const q_block_q4a_g128 *w, const float *x, int64_t k);
float q_dot_q4a_g128_a8_ref(const q_block_q4a_g128 *w, const int8_t *xq, float x_scale, int64_t k);
/* The _sf32, int3, int2, NF4, bf16 and f16 forms are reached through the
 * generic functions (Q_KFMT_*_SF32, Q_KFMT_Q3*, Q_KFMT_Q2*, Q_KFMT_NF4*,
 * Q_KFMT_BF16, Q_KFMT_F16). NF4, bf16 and f16 have no a8 dot. */

#endif
