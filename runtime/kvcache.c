/* kvcache.c: the numbers of a quantized KV cache.
 *
 * A cache in int8 or FP8 E4M3 keeps, per position and key/value head, the
 * head's vector as one byte per value and one f32 scale (its largest
 * magnitude over 127, or over 448 for FP8: the format's largest value).
 * The interpreter and the generated code both write rows through
 * rt_kv_quantize and read value = rt_kv_decode(code) * scale, so they
 * agree bit for bit. */
#include <math.h>
#include <string.h>

#include "rt.h"

const char *rt_kv_format_name(rt_kv_format f)
{
    return f == RT_KV_INT8 ? "int8" : f == RT_KV_FP8E4M3 ? "fp8e4m3" : "f32";
}

bool rt_kv_format_parse(const char *name, rt_kv_format *out)
{
    for (int f = RT_KV_F32; f <= RT_KV_FP8E4M3; f++)
        if (strcmp(name, rt_kv_format_name((rt_kv_format)f)) == 0) {
            *out = (rt_kv_format)f;
            return true;
        }
    return false;
}

/* FP8 E4M3 (no infinities, largest 448) of x with |x| <= 448, rounded to
 * the nearest even: the sign, then 4 exponent bits (bias 7) and 3 bits of
 * mantissa; below 2^-6 the subnormals, steps of 2^-9. */
static uint8_t e4m3_encode(float x)
{
    uint8_t sign = signbit(x) ? 0x80 : 0;
    float a = fabsf(x);
    if (!(a < 448.0f)) return sign | 0x7E; /* 448 (and NaN, which no cache holds) */
    int e;
    frexpf(a, &e);                      /* a = m * 2^e, m in [0.5, 1) */
    int exp = e - 1 < -6 ? -6 : e - 1;  /* the binade, subnormals share -6 */
    float step = ldexpf(1.0f, exp - 3); /* 3 mantissa bits */
    float q = rintf(a / step) * step;   /* ties to even */
    if (q == 0) return sign;
    frexpf(q, &e);
    int be = e - 1 + 7;
    if (be <= 0) return sign | (uint8_t)rintf(q / ldexpf(1.0f, -9)); /* subnormal */
    int mant = (int)rintf((q / ldexpf(1.0f, e - 1) - 1.0f) * 8.0f);
    return sign | (uint8_t)(be << 3) | (uint8_t)mant;
}

float rt_kv_decode(rt_kv_format f, uint8_t code)
{
    if (f == RT_KV_INT8) return (float)(int8_t)code;
    float sign = code & 0x80 ? -1.0f : 1.0f;
    int e = (code >> 3) & 0xF, m = code & 7;
    if (e == 0) return sign * ldexpf((float)m, -9);
    return sign * ldexpf(1.0f + (float)m / 8.0f, e - 7);
}

float rt_kv_quantize(rt_kv_format f, const float *x, int64_t n, uint8_t *codes)
{
    float amax = 0;
    for (int64_t i = 0; i < n; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    float scale = amax / (f == RT_KV_INT8 ? 127.0f : 448.0f);
    for (int64_t i = 0; i < n; i++) {
        float v = scale > 0 ? x[i] / scale : 0.0f;
        if (f == RT_KV_INT8) {
            float r = rintf(v);
            codes[i] = (uint8_t)(int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
        } else {
            codes[i] = e4m3_encode(v);
        }
    }
    return scale;
}
