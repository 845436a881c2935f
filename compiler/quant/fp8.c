/* fp8.c: FP8 (E4M3FN, E5M2) and IEEE binary16 conversions.
 *
 * Needs: float32 inputs in the default rounding mode (round to nearest even).
 * Guarantees: the codes ONNX's Cast and ml_dtypes produce, bit for bit, for
 * every float32 input including NaN, infinities and subnormals (checked
 * against tests/data/refs/fp8 by tests/quant/test_fp8.c), and exact decoding.
 *
 * Encoding works on the float32 bit pattern: in the normal range, adding
 * half a unit in the last kept place (minus one, plus the kept LSB) and
 * shifting rounds to nearest with ties to even, and a carry out of the
 * mantissa correctly bumps the exponent. Below the smallest normal the value
 * is an integer multiple of the smallest subnormal, found by an exact scaling
 * by a power of two and rintf; the multiple 2^M lands on the smallest normal's
 * code, so both ranges join without a special case. */
#include <math.h>
#include <string.h>

#include "quant.h"

static uint32_t bits_of(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static float float_of(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* One FP8 format: M mantissa bits, exponent bias, the largest finite code
 * (without sign), what an overflow becomes without saturation, the NaN code
 * ml_dtypes produces. */
typedef struct fp8_spec {
    int mbits;
    int bias;
    uint8_t max_code;
    uint8_t overflow_code;
    uint8_t nan_code;
    bool has_inf;
} fp8_spec;

static const fp8_spec e4m3 = {3, 7, 0x7E, 0x7F, 0x7F, false};
static const fp8_spec e5m2 = {2, 15, 0x7B, 0x7C, 0x7E, true};

static uint8_t fp8_encode(float x, bool saturate, const fp8_spec *s)
{
    uint32_t b = bits_of(x);
    uint8_t sign = (uint8_t)((b >> 24) & 0x80);
    uint32_t a = b & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return sign | s->nan_code;
    /* the largest finite value as float32 bits */
    uint32_t max_bits = (uint32_t)(s->max_code >> s->mbits) - (uint32_t)s->bias + 127;
    max_bits = max_bits << 23 | (uint32_t)(s->max_code & ((1 << s->mbits) - 1)) << (23 - s->mbits);
    if (saturate && a > max_bits) return sign | s->max_code; /* also ±inf (ONNX clips first) */
    uint32_t min_normal = (uint32_t)(127 + 1 - s->bias) << 23;
    if (a < min_normal) {
        /* multiples of the smallest subnormal 2^(1 - bias - M); exact scaling */
        float q = ldexpf(fabsf(x), s->bias + s->mbits - 1);
        return sign | (uint8_t)rintf(q);
    }
    int shift = 23 - s->mbits;
    uint32_t r = a + ((1u << (shift - 1)) - 1) + ((a >> shift) & 1);
    r >>= shift;
    r -= (uint32_t)(127 - s->bias) << s->mbits;          /* rebias the exponent */
    if (r > s->max_code) return sign | s->overflow_code; /* inf (E5M2) or NaN (E4M3FN) */
    return sign | (uint8_t)r;
}

static float fp8_decode(uint8_t code, const fp8_spec *s)
{
    uint32_t sign = (uint32_t)(code & 0x80) << 24;
    int e = (code & 0x7F) >> s->mbits;
    uint32_t m = code & ((1u << s->mbits) - 1);
    int emax = (1 << (7 - s->mbits)) - 1;
    if (s->has_inf && e == emax) return float_of(sign | (m ? 0x7FC00000u : 0x7F800000u));
    if (!s->has_inf && (code & 0x7F) == 0x7F) return float_of(sign | 0x7FC00000u);
    if (e == 0) {
        float v = ldexpf((float)m, 1 - s->bias - s->mbits);
        return sign ? -v : v;
    }
    return float_of(sign | (uint32_t)(e - s->bias + 127) << 23 | m << (23 - s->mbits));
}

uint8_t q_fp8_e4m3_encode(float x, bool saturate) { return fp8_encode(x, saturate, &e4m3); }
float q_fp8_e4m3_decode(uint8_t code) { return fp8_decode(code, &e4m3); }
uint8_t q_fp8_e5m2_encode(float x, bool saturate) { return fp8_encode(x, saturate, &e5m2); }
float q_fp8_e5m2_decode(uint8_t code) { return fp8_decode(code, &e5m2); }

static const fp8_spec *spec_of(q_format format)
{
    QMC_ASSERT(q_format_is_fp8(format));
    return format == QFMT_FP8_E4M3 ? &e4m3 : &e5m2;
}

uint8_t q_fp8_encode(q_format format, float x, bool saturate)
{
    return fp8_encode(x, saturate, spec_of(format));
}

float q_fp8_decode(q_format format, uint8_t code) { return fp8_decode(code, spec_of(format)); }

bool q_fp8_is_nan(q_format format, uint8_t code)
{
    if (format == QFMT_FP8_E4M3) return (code & 0x7F) == 0x7F;
    QMC_ASSERT(format == QFMT_FP8_E5M2);
    return (code & 0x7F) > 0x7C;
}

/* binary16: the same scheme with M = 10, bias 15, and IEEE overflow to inf. */
uint16_t q_f16_from_f32(float x)
{
    uint32_t b = bits_of(x);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000);
    uint32_t a = b & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return sign | 0x7E00;
    if (a >= 0x477FF000u) return sign | 0x7C00; /* >= 65520 rounds to inf */
    if (a < 0x38800000u) {                      /* below 2^-14: subnormal */
        float q = ldexpf(fabsf(x), 24);
        return sign | (uint16_t)rintf(q);
    }
    uint32_t r = (a + 0xFFFu + ((a >> 13) & 1)) >> 13;
    return sign | (uint16_t)(r - ((127 - 15) << 10));
}

uint16_t q_bf16_from_f32(float x)
{
    uint32_t b = bits_of(x);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((b >> 16) | 0x0040);
    return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1)) >> 16);
}

float q_bf16_to_f32(uint16_t h) { return float_of((uint32_t)h << 16); }

uint16_t q_f16w_encode(q_format format, float x)
{
    if (format == QFMT_BF16) return q_bf16_from_f32(x);
    uint16_t h = q_f16_from_f32(x);
    return (h & 0x7FFF) == 0x7C00 ? (uint16_t)((h & 0x8000) | 0x7BFF) : h;
}

float q_f16w_decode(q_format format, uint16_t code)
{
    return format == QFMT_BF16 ? q_bf16_to_f32(code) : q_f16_to_f32(code);
}

float q_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    int e = (h >> 10) & 0x1F;
    uint32_t m = h & 0x3FF;
    if (e == 0x1F) return float_of(sign | 0x7F800000u | m << 13);
    if (e == 0) {
        float v = ldexpf((float)m, -24);
        return sign ? -v : v;
    }
    return float_of(sign | (uint32_t)(e - 15 + 127) << 23 | m << 13);
}
