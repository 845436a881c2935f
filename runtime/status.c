/* status.c: names of dtypes and status codes. */
#include <stdio.h>
#include <string.h>

#include "rt.h"

static const struct {
    const char *name;
    size_t size;
} dtype_info[QMC_DTYPE_COUNT] = {
    [QMC_DTYPE_INVALID] = {"invalid", 0}, [QMC_DTYPE_F32] = {"f32", 4},
    [QMC_DTYPE_F64] = {"f64", 8},         [QMC_DTYPE_F16] = {"f16", 2},
    [QMC_DTYPE_BF16] = {"bf16", 2},       [QMC_DTYPE_I8] = {"i8", 1},
    [QMC_DTYPE_U8] = {"u8", 1},           [QMC_DTYPE_I16] = {"i16", 2},
    [QMC_DTYPE_U16] = {"u16", 2},         [QMC_DTYPE_I32] = {"i32", 4},
    [QMC_DTYPE_U32] = {"u32", 4},         [QMC_DTYPE_I64] = {"i64", 8},
    [QMC_DTYPE_U64] = {"u64", 8},         [QMC_DTYPE_BOOL] = {"bool", 1},
};

const char *qmc_dtype_name(qmc_dtype dtype)
{
    if ((unsigned)dtype >= QMC_DTYPE_COUNT) return "invalid";
    return dtype_info[dtype].name;
}

size_t qmc_dtype_size(qmc_dtype dtype)
{
    if ((unsigned)dtype >= QMC_DTYPE_COUNT) return 0;
    return dtype_info[dtype].size;
}

char *rt_shape_str(qmc_dtype dtype, int rank, const int64_t *shape, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "%s[", qmc_dtype_name(dtype));
    for (int i = 0; i < rank && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

qmc_dtype rt_dtype_from_name(const char *name)
{
    for (int i = 1; i < QMC_DTYPE_COUNT; i++)
        if (strcmp(dtype_info[i].name, name) == 0) return (qmc_dtype)i;
    return QMC_DTYPE_INVALID;
}

const char *qmc_status_string(qmc_status status)
{
    switch (status) {
    case QMC_OK: return "ok";
    case QMC_ERR_INVALID_ARGUMENT: return "invalid argument";
    case QMC_ERR_IO: return "input/output error";
    case QMC_ERR_FORMAT: return "malformed file";
    case QMC_ERR_SHAPE: return "dtype or shape mismatch";
    case QMC_ERR_NO_MEMORY: return "out of memory";
    case QMC_ERR_CPU: return "CPU lacks a required feature";
    case QMC_ERR_CHECKSUM: return "weights file does not match the model";
    case QMC_ERR_CONTEXT: return "the sequence does not fit in the model's context";
    }
    return "unknown status";
}
