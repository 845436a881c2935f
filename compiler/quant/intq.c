/* intq.c: integer codes and int4 packing.
 *
 * Needs: v = x / scale already computed in float32 (as ONNX does).
 * Guarantees: q_int_encode is ONNX QuantizeLinear's integer rounding
 * (round half to even, add the zero point, saturate), exact for every
 * float including ±inf; int4 packing is ONNX's (low nibble first). */
#include <math.h>

#include "quant.h"

int32_t q_int_encode(float v, int32_t zp, int32_t qmin, int32_t qmax)
{
    /* Clamping to the integers qmin - zp and qmax - zp before rounding gives
     * the same result as rounding first, and keeps |v| small enough for the
     * magic-number rounding. !(v >= lo) also catches NaN. */
    float lo = (float)(qmin - zp), hi = (float)(qmax - zp);
    if (!(v >= lo)) v = lo;
    if (v > hi) v = hi;
    v = (v + Q_RNE_MAGIC) - Q_RNE_MAGIC;
    return (int32_t)v + zp;
}

size_t q_int4_packed_size(int64_t n)
{
    QMC_ASSERT(n >= 0);
    return (size_t)(n + 1) / 2;
}

void q_int4_pack(const uint8_t *codes, int64_t n, uint8_t *packed)
{
    for (int64_t i = 0; i + 1 < n; i += 2)
        packed[i / 2] = (uint8_t)((codes[i] & 0x0F) | (codes[i + 1] & 0x0F) << 4);
    if (n & 1) packed[n / 2] = codes[n - 1] & 0x0F;
}

void q_int4_unpack(const uint8_t *packed, int64_t n, bool is_signed, uint8_t *codes)
{
    for (int64_t i = 0; i < n; i++) {
        uint8_t nib = (uint8_t)(i & 1 ? packed[i / 2] >> 4 : packed[i / 2] & 0x0F);
        codes[i] = is_signed && (nib & 0x08) ? (uint8_t)(nib | 0xF0) : nib;
    }
}
