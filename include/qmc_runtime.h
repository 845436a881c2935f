/* qmc_runtime.h: what code that calls a qmc-compiled model needs besides the
 * model's own generated header: status codes and element types.
 *
 * Everything here is plain C99 and has no dependencies. */
#ifndef QMC_RUNTIME_H
#define QMC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes returned by every runtime and model entry point. */
typedef enum qmc_status {
    QMC_OK = 0,
    QMC_ERR_INVALID_ARGUMENT = 1, /* a null pointer, a wrong size, a bad option */
    QMC_ERR_IO = 2,               /* a file could not be opened, read or written */
    QMC_ERR_FORMAT = 3,           /* a file is malformed (npy, weights file) */
    QMC_ERR_SHAPE = 4,            /* dtype or shape does not match the model */
    QMC_ERR_NO_MEMORY = 5,        /* an allocation failed (never on the run path) */
    QMC_ERR_CPU = 6,              /* the CPU lacks a feature the code was built for */
    QMC_ERR_CHECKSUM = 7,         /* a weights file does not match the model */
} qmc_status;

/* Element types of tensors in files and at a model's interface. */
typedef enum qmc_dtype {
    QMC_DTYPE_INVALID = 0,
    QMC_DTYPE_F32,
    QMC_DTYPE_F64,
    QMC_DTYPE_F16,
    QMC_DTYPE_BF16,
    QMC_DTYPE_I8,
    QMC_DTYPE_U8,
    QMC_DTYPE_I16,
    QMC_DTYPE_U16,
    QMC_DTYPE_I32,
    QMC_DTYPE_U32,
    QMC_DTYPE_I64,
    QMC_DTYPE_U64,
    QMC_DTYPE_BOOL,
    QMC_DTYPE_COUNT
} qmc_dtype;

/* The short name of a dtype as the model language spells it ("f32", "i64"). */
const char *qmc_dtype_name(qmc_dtype dtype);
/* Size of one element in bytes, 0 for QMC_DTYPE_INVALID. */
size_t qmc_dtype_size(qmc_dtype dtype);
/* A one-line English description of a status code. */
const char *qmc_status_string(qmc_status status);

#ifdef __cplusplus
}
#endif
#endif
