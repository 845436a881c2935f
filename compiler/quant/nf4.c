/* nf4.c: QLoRA's NormalFloat-4 codebook.
 *
 * Needs: v = x / scale already computed in float32, the scale being the
 * group's largest magnitude (params.c).
 * Guarantees: the 16 values are bitsandbytes' NF4 table (the quantiles of
 * N(0, 1) scaled to [-1, 1], with an exact 0); a value is encoded as the
 * code of the nearest entry, a tie going to the smaller code, by counting
 * the midpoints below it, which a vector kernel can do the same way. */
#include "quant.h"

const float q_nf4_table[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

uint8_t q_nf4_encode(float v)
{
    uint8_t code = 0;
    for (int i = 0; i < 15; i++) {
        float mid = (q_nf4_table[i] + q_nf4_table[i + 1]) * 0.5f;
        code = (uint8_t)(code + (v > mid)); /* NaN: code 0 */
    }
    return code;
}
