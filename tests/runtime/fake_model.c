/* fake_model.c: a hand-written stand-in for a qmc-compiled model, to test
 * the runtime and the executable driver without the compiler.
 *
 *   inputs  x f32[3, 4], ids i32[2]
 *   outputs y f32[3, 4] = 2 x + 1 (+ w, the 12 floats of the weights file,
 *           with -DFAKE_WEIGHTS), computed with qmc_parallel_for
 *           z i32[2] = ids + 100
 * A run fails with QMC_ERR_INVALID_ARGUMENT when ids[0] == -1 or the
 * workspace is not 64-byte aligned. FAKE_FEATURES and FAKE_CPU set the
 * description's CPU features and name. */
#include <stdint.h>

#include "qmc_runtime.h"

#ifndef FAKE_FEATURES
#define FAKE_FEATURES ""
#endif
#ifndef FAKE_CPU
#define FAKE_CPU "generic"
#endif
#if defined(__x86_64__)
#define FAKE_TRIPLE "x86_64-unknown-linux-gnu"
#elif defined(__aarch64__)
#define FAKE_TRIPLE "aarch64-unknown-linux-gnu"
#else
#define FAKE_TRIPLE "unknown"
#endif

static const void *weights; /* set by qmc_load_weights */

typedef struct fake_ctx {
    const float *x, *w;
    float *y;
} fake_ctx;

static void affine(void *ctx, int64_t begin, int64_t end)
{
    fake_ctx *c = ctx;
    for (int64_t i = begin; i < end; i++) c->y[i] = 2 * c->x[i] + 1 + (c->w ? c->w[i] : 0);
}

static qmc_status fake_run(const void *const *inputs, void *const *outputs, void *workspace)
{
    const int32_t *ids = inputs[1];
    int32_t *z = outputs[1];
    if ((uintptr_t)workspace % 64 != 0 || ids[0] == -1) return QMC_ERR_INVALID_ARGUMENT;
    ((char *)workspace)[0] = 1; /* the workspace is writable */
    fake_ctx c = {inputs[0], weights, outputs[0]};
    qmc_parallel_for(affine, &c, 12);
    for (int i = 0; i < 2; i++) z[i] = ids[i] + 100;
    return QMC_OK;
}

static const qmc_tensor_desc fake_inputs[] = {
    {"x", QMC_DTYPE_F32, 2, {3, 4}},
    {"ids", QMC_DTYPE_I32, 1, {2}},
};
static const qmc_tensor_desc fake_outputs[] = {
    {"y", QMC_DTYPE_F32, 2, {3, 4}},
    {"z", QMC_DTYPE_I32, 1, {2}},
};

const qmc_model_desc fake_model = {
    .name = "fake",
    .n_inputs = 2,
    .n_outputs = 2,
    .inputs = fake_inputs,
    .outputs = fake_outputs,
    .workspace_size = 256,
    .target_triple = FAKE_TRIPLE,
    .cpu = FAKE_CPU,
    .features = FAKE_FEATURES,
    .run = fake_run,
#ifdef FAKE_WEIGHTS
#define FAKE_WEIGHTS_CHECKSUM 0x1698c0840770b082u /* qmc_checksum, as test_rt_weights checks */
    /* 12 float32 0, 1, ..., 11 (mknpy --raw W f32 12 arange) */
    .weights_file = "fake_weights.bin",
    .weights_size = 48,
    .weights_checksum = FAKE_WEIGHTS_CHECKSUM,
    .weights_base = &weights,
#endif
};

const qmc_model_desc *const qmc_exe_model = &fake_model;
