/* format.c: the element formats and their traits.
 *
 * Needs: nothing. Guarantees: one table describes every q_format; every
 * other file asks it rather than switching on the format itself. */
#include <string.h>

#include "quant.h"

typedef struct format_traits {
    const char *name;
    int bits;
    int32_t qmin, qmax; /* integer formats */
    float max;          /* largest finite value of a code */
    qmc_dtype code_dtype;
} format_traits;

static const format_traits traits[QFMT_COUNT] = {
    [QFMT_F32] = {"f32", 32, 0, 0, 3.40282347e38f, QMC_DTYPE_F32},
    [QFMT_INT8] = {"int8", 8, -128, 127, 127.0f, QMC_DTYPE_I8},
    [QFMT_UINT8] = {"uint8", 8, 0, 255, 255.0f, QMC_DTYPE_U8},
    [QFMT_INT4] = {"int4", 4, -8, 7, 7.0f, QMC_DTYPE_I8},
    [QFMT_UINT4] = {"uint4", 4, 0, 15, 15.0f, QMC_DTYPE_U8},
    [QFMT_FP8_E4M3] = {"fp8e4m3", 8, 0, 0, 448.0f, QMC_DTYPE_U8},
    [QFMT_FP8_E5M2] = {"fp8e5m2", 8, 0, 0, 57344.0f, QMC_DTYPE_U8},
    [QFMT_INT3] = {"int3", 3, -4, 3, 3.0f, QMC_DTYPE_I8},
    [QFMT_UINT3] = {"uint3", 3, 0, 7, 7.0f, QMC_DTYPE_U8},
    [QFMT_INT2] = {"int2", 2, -2, 1, 1.0f, QMC_DTYPE_I8},
    [QFMT_UINT2] = {"uint2", 2, 0, 3, 3.0f, QMC_DTYPE_U8},
    [QFMT_NF4] = {"nf4", 4, 0, 0, 1.0f, QMC_DTYPE_U8},
    [QFMT_BF16] = {"bf16", 16, 0, 0, 3.38953139e38f, QMC_DTYPE_BF16},
    [QFMT_F16] = {"f16", 16, 0, 0, 65504.0f, QMC_DTYPE_F16},
};

static const format_traits *get(q_format format)
{
    QMC_ASSERT(format >= 0 && format < QFMT_COUNT);
    return &traits[format];
}

const char *q_format_name(q_format format) { return get(format)->name; }

q_format q_format_from_name(const char *name)
{
    for (int f = 0; f < QFMT_COUNT; f++)
        if (strcmp(name, traits[f].name) == 0) return (q_format)f;
    return QFMT_COUNT;
}

int q_format_bits(q_format format) { return get(format)->bits; }

bool q_format_is_fp8(q_format format) { return format == QFMT_FP8_E4M3 || format == QFMT_FP8_E5M2; }

bool q_format_is_int(q_format format)
{
    return format == QFMT_INT8 || format == QFMT_UINT8 || q_format_is_low(format);
}

bool q_format_is_signed(q_format format)
{
    return q_format_is_int(format) && get(format)->qmin < 0;
}

bool q_format_is_low(q_format format)
{
    return format == QFMT_INT4 || format == QFMT_UINT4 || format == QFMT_INT3 ||
           format == QFMT_UINT3 || format == QFMT_INT2 || format == QFMT_UINT2;
}

/* The signed low formats and their twins with zero points. */
static const q_format twins[][2] = {
    {QFMT_INT4, QFMT_UINT4}, {QFMT_INT3, QFMT_UINT3}, {QFMT_INT2, QFMT_UINT2}};

q_format q_format_asym(q_format format)
{
    for (size_t i = 0; i < sizeof twins / sizeof twins[0]; i++)
        if (twins[i][0] == format) return twins[i][1];
    return format;
}

q_format q_format_sym(q_format format)
{
    for (size_t i = 0; i < sizeof twins / sizeof twins[0]; i++)
        if (twins[i][1] == format) return twins[i][0];
    return format;
}

int32_t q_format_qmin(q_format format)
{
    QMC_ASSERT(q_format_is_int(format));
    return get(format)->qmin;
}

int32_t q_format_qmax(q_format format)
{
    QMC_ASSERT(q_format_is_int(format));
    return get(format)->qmax;
}

float q_format_max(q_format format) { return get(format)->max; }

qmc_dtype q_format_code_dtype(q_format format) { return get(format)->code_dtype; }
