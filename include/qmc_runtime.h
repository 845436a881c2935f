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

/* QMC_TYPES_BEGIN: generated model headers embed the text up to QMC_TYPES_END */
#ifndef QMC_RUNTIME_TYPES_H
#define QMC_RUNTIME_TYPES_H

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
    QMC_ERR_CONTEXT = 8,          /* a sequence model's state has no room for the tokens */
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

#define QMC_MAX_RANK 8

typedef struct qmc_tensor_desc {
    const char *name;
    qmc_dtype dtype;
    int32_t rank;
    int64_t shape[QMC_MAX_RANK];
} qmc_tensor_desc;

typedef qmc_status (*qmc_run_fn)(const void *const *inputs, void *const *outputs, void *workspace);

/* A model with a sequence is compiled for calls of a few token counts (its
 * steps); each step function runs `tokens` tokens at position pos. */
typedef qmc_status (*qmc_step_fn)(const void *const *inputs, void *const *outputs, void *workspace,
                                  void *state, int64_t pos);
typedef struct qmc_step_desc {
    int64_t tokens;
    qmc_step_fn fn;
} qmc_step_desc;

typedef struct qmc_model_desc {
    const char *name;
    int32_t n_inputs, n_outputs;
    const qmc_tensor_desc *inputs;
    const qmc_tensor_desc *outputs;
    uint64_t workspace_size;   /* bytes */
    const char *target_triple; /* e.g. "x86_64-unknown-linux-gnu" */
    const char *cpu;           /* e.g. "znver4" */
    const char *features; /* CPU features the code needs, comma-separated LLVM names ("avx2,fma") */
    qmc_run_fn run;
    /* Weights kept outside the binary (qmc compile --weights-file), else all NULL/0:
     * the file the model was compiled with, its size and checksum, and the
     * pointer the generated code reads them through (set by qmc_load_weights). */
    const char *weights_file;
    uint64_t weights_size;
    uint64_t weights_checksum; /* qmc_checksum of the whole file */
    const void **weights_base;
    /* A model with a sequence (`sequence T <= N`), else all 0/NULL: every
     * input and output has T rows (shape[0] is the context N, the most T
     * can be), and qmc_model_step runs it; run is NULL. The state (KV
     * caches and the position) is state_size bytes, 64-byte aligned. */
    int64_t context;
    uint64_t state_size;
    int32_t n_steps;
    const qmc_step_desc *steps; /* by increasing tokens; steps[0].tokens == 1 */
    const uint64_t *staging;    /* per input, then per output: where a step's rows are
                                 * staged in the workspace (byte offsets) */
    const char *kv_cache;       /* the cache's element format: "f32", "int8", "fp8e4m3" */
} qmc_model_desc;
#endif /* QMC_TYPES_END */

/* The short name of a dtype as the model language spells it ("f32", "i64"). */
const char *qmc_dtype_name(qmc_dtype dtype);
/* Size of one element in bytes, 0 for QMC_DTYPE_INVALID. */
size_t qmc_dtype_size(qmc_dtype dtype);
/* A one-line English description of a status code. */
const char *qmc_status_string(qmc_status status);

/* ---- compiled models ----------------------------------------------------
 * qmc emits, for a model named NAME (non-identifier characters become '_'):
 *   qmc_status NAME_run(<inputs...>, <outputs...>, void *workspace);
 *       typed entry: one pointer per input then per output, in declaration
 *       order, each holding exactly the declared shape (C order);
 *   qmc_status NAME_run_v(const void *const *inputs, void *const *outputs,
 *                         void *workspace);
 *   extern const qmc_model_desc NAME_model;
 * and NAME.h with the shapes as macros. The workspace is NAME_WORKSPACE_SIZE
 * bytes, 64-byte aligned, owned by the caller, reused across runs; the run
 * path allocates nothing. One workspace must not be used by two concurrent
 * runs. */

/* ---- models with a sequence (generation) --------------------------------
 * A model declaring `sequence T <= N` keeps state between calls: per layer
 * the keys and values of every position so far, and the position. qmc
 * emits for it, instead of NAME_run:
 *   qmc_status NAME_reset(void *state);
 *   qmc_status NAME_step(void *state, <inputs...>, int64_t n, <outputs...>,
 *                        int64_t rows, void *workspace);
 *   qmc_status NAME_step_v(void *state, const void *const *inputs, int64_t n,
 *                          void *const *outputs, int64_t rows, void *workspace);
 * A step takes n tokens (each input holds n rows) at the current position
 * and advances it by n; each output receives the last `rows` of its n rows
 * (0 <= rows <= n; outputs may be NULL when rows is 0): n = prompt length
 * and rows = 1 to prefill a prompt, n = 1 to decode a token, rows = n for
 * every position's logits. The state is NAME_STATE_SIZE bytes, 64-byte
 * aligned, owned by the caller; reset it before the first step. A step that
 * would pass the context returns QMC_ERR_CONTEXT and changes nothing. */

/* Starts a sequence over: position 0. */
qmc_status qmc_model_reset(const qmc_model_desc *model, void *state);
/* One step, as NAME_step_v. */
qmc_status qmc_model_step(const qmc_model_desc *model, void *state, const void *const *inputs,
                          int64_t n, void *const *outputs, int64_t rows, void *workspace);
/* The position of the next token (the tokens stepped since the reset), or
 * -1 if the state was never reset. */
int64_t qmc_model_position(const qmc_model_desc *model, const void *state);

/* The CPU features of `features` (comma-separated) that this machine lacks,
 * written comma-separated into missing (which may be NULL); QMC_OK if none,
 * QMC_ERR_CPU if some. */
qmc_status qmc_check_cpu(const char *features, char *missing, size_t missing_size);

/* Maps an external weights file for a model compiled with --weights-file
 * (path NULL: the file named at compile time), checks its size and
 * checksum, and points the model at it. Call before the first run. */
qmc_status qmc_load_weights(const qmc_model_desc *model, const char *path);

/* The weights-file checksum: 64 bits, eight FNV-1a lanes over the data
 * (runtime/weights.c). */
uint64_t qmc_checksum(const void *data, size_t size);

/* A 64-byte aligned buffer of at least size bytes for a workspace (free with
 * qmc_workspace_free). Not for use on the run path. */
void *qmc_workspace_alloc(size_t size);
void qmc_workspace_free(void *workspace);

/* ---- threads ------------------------------------------------------------
 * Generated code splits its large loops over a pool of worker threads. The
 * pool is created here, not on the run path. Default: 1 (no extra threads). */
qmc_status qmc_set_num_threads(int n);
int qmc_get_num_threads(void);

/* How long, in microseconds, the pool's idle threads spin (yielding the
 * core to anything else runnable) before they sleep: 0 to 1,000,000,
 * default 2,000. Waking a sleeping thread can take longer than a small
 * model's layer runs, so calls less than this apart run at full speed;
 * less spinning saves CPU time between calls further apart. Takes effect
 * from the next wait; QMC_ERR_INVALID_ARGUMENT outside the range. */
qmc_status qmc_set_thread_spin_us(int us);
int qmc_get_thread_spin_us(void);

/* Calls fn(ctx, begin, end) over disjoint ranges covering [0, n) on the pool
 * (the calling thread takes part) and returns when all are done. Used by
 * generated code. */
void qmc_parallel_for(void (*fn)(void *ctx, int64_t begin, int64_t end), void *ctx, int64_t n);

/* Monotonic time in nanoseconds. */
uint64_t qmc_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif
