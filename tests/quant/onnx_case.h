/* onnx_case.h: one ONNX QuantizeLinear/DequantizeLinear reference case
 * (tests/data/refs/quantizelinear/caseNNN), read from its case.json. */
#ifndef QMC_ONNX_CASE_H
#define QMC_ONNX_CASE_H

#include "qtest.h"

typedef struct onnx_case {
    const char *name, *dir;
    q_format format;
    bool has_axis;
    int axis;                                                    /* attrs.axis, ONNX's default 1 */
    int64_t block;                                               /* attrs.block_size, 0 if absent */
    bool saturate;                                               /* attrs.saturate, default 1 */
    const char *x_path, *scale_path, *zp_path, *q_path, *y_path; /* zp_path may be NULL */
} onnx_case;

/* All cases present (whatever caseNNN folders exist); fails the test if
 * there are none. */
onnx_case *onnx_cases(sup_arena *arena, int *count);

#endif
