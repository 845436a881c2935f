/* codegen.h: the LLVM emission's internal header, one section per file.
 *
 * Emission works on a verified, lowered graph: every node has a buffer
 * (passes/lower.c, ir/plan.c) and every weight matrix a precision
 * (passes/precision.c) and, unless f32, its quantized form
 * (passes/quantize_weights.c: its layout; the codes themselves arrive one
 * weight at a time through weights.c). Each op becomes one LLVM function
 * named after its graph node; the weights are laid out in one block that
 * the code reads through a base pointer (weights.c, object.c); the entry
 * points call the node functions in order. Everything goes through the
 * LLVM C API (LLVM 19). */
#ifndef QMC_CODEGEN_H
#define QMC_CODEGEN_H

#include <llvm-c/Analysis.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "ir.h"

/* What `qmc compile` asks codegen for (--emit, -o, --target, ...). */
typedef enum cg_emit_kind {
    CG_EMIT_EXE,
    CG_EMIT_OBJ,    /* OUT.o + OUT.h */
    CG_EMIT_LIB,    /* static library with the runtime inside, + OUT.h */
    CG_EMIT_SHARED, /* shared library with the runtime inside, + OUT.h */
    CG_EMIT_LLVM,   /* textual IR */
    CG_EMIT_BC,     /* bitcode */
    CG_EMIT_ASM,    /* assembly */
} cg_emit_kind;

typedef struct cg_options {
    cg_emit_kind emit;
    const char *output; /* -o */
    const char *triple, *cpu, *features;
    int opt_level;            /* 0..3 */
    const char *weights_file; /* --weights-file: keep weights outside the code */
    bool print_target;
} cg_options;

/* ---- target.c: the machine code is generated for ------------------------ */

typedef enum cg_arch { CG_ARCH_X86_64, CG_ARCH_AARCH64 } cg_arch;

enum { CG_MAX_FEATURES = 40 };

typedef struct cg_target {
    cg_arch arch;
    const char *triple;        /* canonical LLVM triple */
    const char *cpu;           /* LLVM CPU name (native resolved to the host's) */
    const char *llvm_features; /* the feature string handed to LLVM */
    bool has[CG_MAX_FEATURES]; /* features of the CPU qmc knows about */
    bool host;                 /* the target is this machine's architecture */
} cg_target;

/* Resolves --target (NULL: host), --cpu (NULL: native on the host, the
 * architecture's baseline otherwise) and --features ("+a,-b", may be NULL).
 * Unknown values are reported with the valid choices; returns false. */
bool cg_target_resolve(sup_arena *arena, const char *triple, const char *cpu, const char *features,
                       cg_target *t);
bool cg_target_has(const cg_target *t, const char *feature);
/* The enabled features as "avx2,fma,..." (embedded for the runtime check). */
const char *cg_target_feature_list(sup_arena *arena, const cg_target *t);
/* `qmc targets`: architectures, CPUs and features. */
void cg_targets_print(FILE *out);
/* --print-target: the resolved triple, CPU and features. */
void cg_target_print(FILE *out, sup_arena *arena, const cg_target *t);
/* The features qmc's kernels choose from on arch (LLVM's names,
 * NULL-terminated): the only ones a compiled model asks the runtime for. */
const char *const *cg_arch_feature_names(cg_arch arch);
/* True if `:a8` layers get integer dot products on this target (AVX-512
 * VNNI, aarch64 dotprod); elsewhere they run in float on the int8 values. */
bool cg_target_int8_dot(const cg_target *t);
/* ---- builder.c: helpers over the LLVM builder -------------------------- */

/* The state of one module being emitted. */
typedef struct cg {
    sup_arena *arena;
    const ir_graph *g;
    const ir_plan *plan;
    const cg_target *target;
    const cg_options *opts;
    const struct cg_weights *w; /* the weights' layout (weights.c) */
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef t_void, t_i1, t_i8, t_i16, t_i32, t_i64, t_f16, t_f32, t_ptr;
    int lanes;                 /* f32 lanes of the vectors the kernels use (16, 8 or 4) */
    const char *prefix;        /* the model's symbol prefix (its name as a C identifier) */
    LLVMValueRef fn;           /* the function being emitted */
    LLVMBasicBlockRef entry;   /* its entry block (allocas go there) */
    LLVMValueRef *globals;     /* --emit llvm/bc/asm: per blob, its constant */
    LLVMValueRef weights_base; /* the pointer the code reads weights through, or NULL */
} cg;

/* A counted loop `for (iv = start; iv < end; iv += step)` with the
 * induction variable as a phi; other loop-carried values live in allocas. */
typedef struct cg_loop {
    LLVMBasicBlockRef head, exit;
    LLVMValueRef iv;
    int64_t step;
} cg_loop;

LLVMValueRef cg_i32(cg *c, int64_t v);
LLVMValueRef cg_i64(cg *c, int64_t v);
LLVMValueRef cg_f32(cg *c, double v);
LLVMTypeRef cg_vec(cg *c, LLVMTypeRef elem, int n);
LLVMValueRef cg_splat(cg *c, LLVMValueRef scalar, int n);
LLVMValueRef cg_vsplat_i32(cg *c, int64_t v, int n);

/* Starts a function (internal unless exported) with the target's CPU and
 * features; positions the builder in its entry block. */
LLVMValueRef cg_function_begin(cg *c, const char *name, LLVMTypeRef type, bool exported,
                               bool kernel);
/* Marks pointer parameter i noalias nocapture. */
void cg_param_noalias(cg *c, LLVMValueRef fn, unsigned i);
LLVMValueRef cg_alloca(cg *c, LLVMTypeRef type, const char *name);
LLVMBasicBlockRef cg_block(cg *c, const char *name);

cg_loop cg_loop_begin(cg *c, LLVMValueRef start, LLVMValueRef end, int64_t step, const char *name);
void cg_loop_end(cg *c, cg_loop *l);
/* Constant-bounds form. */
cg_loop cg_for(cg *c, int64_t start, int64_t end, int64_t step, const char *name);

/* Address of element `index` (i64) of an array of `elem` at base. */
LLVMValueRef cg_gep(cg *c, LLVMTypeRef elem, LLVMValueRef base, LLVMValueRef index);
LLVMValueRef cg_load(cg *c, LLVMTypeRef type, LLVMValueRef ptr, unsigned align);
/* &base[idx], base[idx] and base[idx] = v for an f32 array (align 4). */
LLVMValueRef cg_fptr(cg *c, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef cg_fload(cg *c, LLVMValueRef base, LLVMValueRef idx);
void cg_fstore(cg *c, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx);
/* acc (i32 lanes) += the sums over 4-byte groups of a (unsigned with
 * vnni: vpdpbusd; signed otherwise: sdot, 4 lanes at a time) times b (signed). */
LLVMValueRef cg_int_dot(cg *c, bool vnni, LLVMValueRef acc, LLVMValueRef a, LLVMValueRef b);
void cg_store(cg *c, LLVMValueRef value, LLVMValueRef ptr, unsigned align);
/* Calls an intrinsic by name with overloaded types. */
LLVMValueRef cg_intrinsic(cg *c, const char *name, LLVMTypeRef *types, int n_types,
                          LLVMValueRef *args, int n_args);
LLVMValueRef cg_fmuladd(cg *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc);
/* Index arithmetic: a + b, and a * k for a constant k (i64). */
LLVMValueRef cg_add(cg *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_mul_k(cg *c, LLVMValueRef a, int64_t k);
/* llvm.memcpy of `bytes` (i64) bytes. */
void cg_memcpy(cg *c, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef bytes);
/* The constant <lanes x i1> with the first `count` lanes set. */
LLVMValueRef cg_lane_mask(cg *c, int lanes, int64_t count);
/* lanes i < count of a vector of `lanes` (count an i64 value; none when
 * count <= 0) */
LLVMValueRef cg_lanes_below(cg *c, LLVMValueRef count, int lanes);
/* Writes data to path atomically; reports "path: reason" on failure. */
bool cg_write_file(const char *path, const void *data, size_t len);
/* A libm function float(float) (expf, erff, tanhf), declared on first use. */
/* Adds reassoc/contract so a reduction may be vectorised. */
LLVMValueRef cg_fast(LLVMValueRef inst);
/* The largest lane of a vector of floats that are >= 0 (absolute values)
 * or NaN, compared as integers: a tree of vector maxima (reduce.fmax
 * without nnan is a chain of NaN-checking scalar steps); a NaN lane wins. */
LLVMValueRef cg_reduce_max_nonneg(cg *c, LLVMValueRef v);
/* The address of a blob's data in the function being emitted: the
 * weights' base pointer plus the blob's offset, or (weights in memory) its
 * constant. */
LLVMValueRef cg_blob_ptr(cg *c, int blob);

/* A loop over [0, count) in steps of `lanes`: body runs on full vectors
 * (mask NULL), then once on the remainder with a lane mask (masked loads
 * and stores). count may be a constant or a value. */
typedef void (*cg_vbody)(cg *c, void *ctx, LLVMValueRef index, LLVMValueRef mask, int lanes);
void cg_vloop(cg *c, LLVMValueRef count, int lanes, cg_vbody body, void *ctx);
/* lanes floats at base[index] (masked lanes read as 0), and the store. */
LLVMValueRef cg_vload(cg *c, LLVMValueRef base, LLVMValueRef index, LLVMValueRef mask, int lanes);
void cg_vstore(cg *c, LLVMValueRef v, LLVMValueRef base, LLVMValueRef index, LLVMValueRef mask);

/* Runs fn(ctx, begin, end) over [0, n): through qmc_parallel_for when
 * parallel (and n > 1), else as one direct call. */
void cg_call_range(cg *c, LLVMValueRef fn, LLVMValueRef ctx, int64_t n, bool parallel);
/* Emits `void NAME(ptr ctx, i64 begin, i64 end)` whose body() sees vals
 * (pointers, at most 16) reloaded from the context, and calls it over
 * [0, n) from the function being emitted (see cg_call_range). */
typedef void (*cg_range_body)(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end,
                              void *user);
void cg_parallel(cg *c, const char *name, LLVMValueRef *vals, int n_vals, int64_t n, bool parallel,
                 cg_range_body body, void *user);

/* ---- emit_math.c: vectorisable transcendental functions ------------------ */

/* Each works on a float or a vector of floats (see emit_math.c for the
 * methods and error bounds). */
LLVMValueRef cg_math_exp(cg *c, LLVMValueRef x);
LLVMValueRef cg_math_erf(cg *c, LLVMValueRef x);
LLVMValueRef cg_math_tanh(cg *c, LLVMValueRef x);
LLVMValueRef cg_math_gelu(cg *c, LLVMValueRef x);
LLVMValueRef cg_math_silu(cg *c, LLVMValueRef x);
/* max(0, min(1, alpha·x + beta)), times x if times_x (hardswish with 1/6
 * and 1/2), in the interpreter's order of operations. */
LLVMValueRef cg_math_hard_sigmoid(cg *c, LLVMValueRef x, float alpha, float beta, bool times_x);
LLVMValueRef cg_math_log(cg *c, LLVMValueRef x);
LLVMValueRef cg_math_sigmoid(cg *c, LLVMValueRef x);
LLVMValueRef cg_math_pow(cg *c, LLVMValueRef a, LLVMValueRef y);

/* ---- emit_linear.c: linear layers with fused dequantization ------------- */

/* A weight matrix laid out for the kernels: output rows in panels of
 * `lanes` rows; within a panel, input columns in words of 4 bytes per row
 * (4 int8/fp8 codes, 8 int4 codes, or one f32) so that one vector load
 * gives one word for each of the panel's rows; scales (and zero points)
 * per group and row in separate arrays of the same panel order. */
typedef struct cg_packed {
    q_precision f;
    int lanes;
    int64_t n, k, panels;
    int per_word;        /* columns per step: 4 (k-major, 8-bit words), 8 (4-bit words), 16
                          * (2-bit words), 32 (int3: three words a step) */
    int step_words;      /* 4-byte words per step and row: 1, or 3 for int3 */
    bool kmajor;         /* codes [panels][kcols][lanes] of elem_bytes (f32, int8, FP8 with f32
                          * activations); else 4-byte words [panels][words][lanes] */
    int elem_bytes;      /* k-major: 4 (f32) or 1 */
    int64_t kcols;       /* k-major: columns stored per panel (a multiple of per_word) */
    int64_t words;       /* 4-byte words per row: ceil(kp / per_word) * step_words */
    int64_t group_words; /* steps per group */
    int64_t n_groups;
    int codes, scales,
        zeros;                                  /* blobs: codes [panels][words][lanes] 4-byte words;
                                                 * scales [panels][n_groups][lanes] f32, or f16 for int4 groups (-1 for f32);
                                                 * zero points [panels][n_groups][lanes] uint8 (-1 if symmetric) */
    size_t code_bytes, scale_bytes, zero_bytes; /* their sizes (0: none) */
    int shift;          /* blob: with the model's activation zero point z (act_model), what
                         * each output adds: -z * act_scale * (the row of the quantized
                         * weight summed), f32 [panels][lanes]; -1 if none */
    size_t shift_bytes; /* its size (0: none) */
    bool scales_f16;
    float scale_factor; /* multiplies every scale (FP8 decoding folds 2^8 into it) */
    bool fp8_via_half;  /* FP8 decoded through half precision (F16C / aarch64) */
    int a8;             /* activations as int8 rows: how the integer dot products are done */
    int act_rows; /* int8 rows per activation row (ir_act_int8_rows): 1 `:a8`, 3 digits of f32 */
    int32_t code_offset; /* a8: what was added to every code so it is unsigned (128 int8, 8 int4) */
} cg_packed;

enum {
    CG_A8_NONE,
    CG_A8_VNNI,    /* AVX-512 VNNI vpdpbusd: unsigned weight bytes x signed activations */
    CG_A8_SDOT,    /* aarch64 dotprod sdot: signed x signed bytes */
    CG_A8_EMULATE, /* no integer dot product: the activations' int8 values in float math */
};

/* What the kernel of one linear layer reads: x is [m, k] (or its int8
 * rows, p->kcols bytes each, p->act_rows per row of x, with a8), y is
 * [m, n]. */
typedef struct cg_linear {
    cg *c;
    const cg_packed *p;
    int64_t m, k, n;
    LLVMValueRef x, y, codes, scales, zeros, bias;
    LLVMValueRef shift;        /* cg_packed.shift, or NULL */
    LLVMValueRef xscale, xsum; /* a8: per int8 row scale; per int8 row and group sums of the codes
                                * (times code_offset when the weights have one) */
    LLVMTypeRef vf, vi;        /* <lanes x float>, <lanes x i32> */
} cg_linear;

/* The layer multiplies int8 activations with integer dot products. */
static inline bool cg_packed_int_dot(const cg_packed *p)
{
    return p->a8 == CG_A8_VNNI || p->a8 == CG_A8_SDOT;
}
/* -v: how the linear layers' kernels multiply on this target, one line
 * per kind (the format, how activations enter, the instruction) with the
 * weights that use it, and which layers share int8 rows in the plan. */
void cg_print_kernels(FILE *f, sup_arena *arena, const ir_graph *g, const ir_plan *plan,
                      const cg_target *t);
/* The packed layout of weight matrix w (f32, or quantized: w->qw gives
 * its shape and groups) for the target and lane count: everything but the
 * blobs' indices, which weights.c assigns. */
void cg_pack_layout(const cg_target *t, int lanes, const ir_node *w, cg_packed *p);
/* Packs the values: q's codes, scales and zero points, or (f32) w32
 * [n][k]; codes, scales, zeros and shift hold p's code_bytes, scale_bytes,
 * zero_bytes and shift_bytes. */
void cg_pack_data(const cg_packed *p, const ir_qweight *q, const float *w32, uint8_t *codes,
                  void *scales, uint8_t *zeros, float *shift);
/* Emits the function of a linear node: y[m, :] = x[m, :]·Wᵀ + b. */
void cg_emit_linear(cg *c, int32_t node, const char *name);
/* The arguments a linear node's call passes after its others: its packed
 * weight's codes, scales and zero points (those it has); returns how many
 * (0 for other nodes). */
int cg_linear_weight_args(cg *c, int32_t node, LLVMValueRef *args);

/* ---- emit_tile.c: register tiles of the linear kernels ----------------- */

/* Rows and panels per tile for this target, format and number of rows. */
void cg_tile_shape(const cg *c, const cg_packed *p, int64_t m, int *mr, int *np);
/* Emits rows m0 .. m0 + mr - 1 against panels p0 .. p0 + np - 1 over the
 * whole input dimension, and stores them (with the bias). */
void cg_tile(cg_linear *lk, LLVMValueRef m0, int mr, LLVMValueRef p0, int np);

/* ---- emit_conv.c: convolutions --------------------------------------------- */

/* A conv's (or conv_transpose's) weight laid out for its kernel
 * (ir_conv_kernel_of): dense [group][panel][tap·cg + c][lanes] of f32 or
 * codes (int8 activations: words of 4 codes, [group][panel][tap·cgp/4 +
 * word][lanes][4]); depthwise [tap][channel]; generic and conv_transpose
 * [group][tap][c][channel of the group], f32. */
typedef struct cg_conv_packed {
    ir_conv_kernel kernel;
    int lanes;
    int64_t m, groups, mg, cg, cgp, kh, kw;
    int64_t panels, kcols; /* dense: panels of lanes channels per group; columns (int8: words) */
    bool transposed;       /* a conv_transpose's weight [C][M/g][kh][kw] */
    bool blocks;     /* ... whose stride is its kernel (no padding, dilation or groups): [c][tap·M],
                      * each input pixel making its own block */
    bool int8;       /* int8 codes for integer dot products with int8 activations */
    bool vnni;       /* ... by vpdpbusd: unsigned activations, the +128 taken back out */
    bool codes_kept; /* quantized codes (int8, FP8) decoded in registers, else f32 */
    q_format fmt;    /* of the codes (QFMT_F32 for values) */
    int elem;        /* bytes per packed value: 4, or 1 for codes */
    bool fp8_via_half;       /* FP8 decoded through half precision */
    float scale_factor;      /* multiplies every channel scale (FP8 decoding) */
    int codes, scales, comp; /* blobs: the values or codes; per channel (panel order) scales, and
                              * 128 · Σ codes (VNNI's offset), int32; -1 if none */
    size_t code_bytes, scale_bytes, comp_bytes; /* their sizes (0: none) */
} cg_conv_packed;

/* The layout of the weight read by conv (or conv_transpose) node `conv`
 * of g (after the layout pass) for the target and lane count: everything
 * but the blobs' indices, which weights.c assigns. */
void cg_conv_layout(const ir_graph *g, const cg_target *t, int lanes, int32_t conv,
                    cg_conv_packed *p);
/* Whether packing needs the weight's values although it is quantized
 * (codes that are not kept: the dequantized matrix, q->dequant). */
static inline bool cg_conv_needs_dequant(const cg_conv_packed *p, const ir_qweight *q)
{
    return q && !p->codes_kept;
}
/* Packs the weight: q's codes and scales when p keeps codes, else the
 * values v (the dequantized matrix, or the tensor's [M][C/g·kh·kw], a
 * conv_transpose's [C][M/g·kh·kw]); codes, scales and comp hold p's
 * code_bytes, scale_bytes and comp_bytes. */
void cg_conv_pack_data(const cg_conv_packed *p, const ir_qweight *q, const float *v, uint8_t *codes,
                       float *scales, int32_t *comp);
/* The arguments a conv's (or conv_transpose's) call passes after its
 * others: its packed weight's codes, scales and offsets (those it has);
 * returns how many (0 for other nodes); cg_conv_weight_count without
 * emitting them. */
int cg_conv_weight_args(cg *c, int32_t node, LLVMValueRef *args);
int cg_conv_weight_count(const cg *c, int32_t node);
/* The functions' bodies: out, the operands (those cg_takes_operand), the
 * scratch (ir_conv_input_layout), the packed weight's pointers
 * (cg_conv_weight_args). */
void cg_emit_conv(cg *c, int32_t node, LLVMValueRef out, LLVMValueRef *in, LLVMValueRef scratch,
                  LLVMValueRef *weight);
void cg_emit_conv_transpose(cg *c, int32_t node, LLVMValueRef out, LLVMValueRef *in,
                            LLVMValueRef *weight);
/* -v: one line per kind of conv kernel (dense, depthwise, generic; the
 * weights' format; how activations enter) with the weights using it. */
void cg_print_conv_kernels(FILE *f, sup_arena *arena, const ir_graph *g, const cg_target *t);

/* ---- emit_cnn.c: pooling, batchnorm, resize, pad, prelu, hard activations -- */

void cg_emit_cnn_op(cg *c, int32_t node, LLVMValueRef out, LLVMValueRef *in, LLVMValueRef scratch);
/* ---- emit_pointwise.c: elementwise ops ------------------------------------- */

/* Emits node n (add, sub, mul, div, binary, where, expand, relu, gelu,
 * silu, tanh, unary) writing out from its operands in[] (a constant's entry
 * may be anything: its value is folded in). */
void cg_emit_pointwise(cg *c, const ir_node *n, LLVMValueRef out, LLVMValueRef *in);

/* ---- emit_ops.c: every other op ----------------------------------------- */

/* What the ops of a model with a sequence read besides their operands: the
 * position of the call's first token (i64), and a cached attention's keys
 * and values (its regions of the caller's state). */
typedef struct cg_state_args {
    LLVMValueRef pos, cache_k, cache_v, scale_k, scale_v;
} cg_state_args;
/* Emits the body of node `node`'s function; parameters are (out, operands...,
 * scratch, [cache_k, cache_v], [pos]) as emit.c declares them; state is
 * NULL for a node that takes no position. */
void cg_emit_op(cg *c, int32_t node, LLVMValueRef out, LLVMValueRef *operands, LLVMValueRef scratch,
                const cg_state_args *state);
/* Whether node's function takes input j as a parameter: constants are
 * folded in, a linear's packed weight comes as cg_linear_weight_args. */
bool cg_takes_operand(const cg *c, const ir_node *node, int j);
/* Whether node's function takes a scratch pointer (after its operands). */
bool cg_takes_scratch(const cg *c, int32_t node);
/* Whether node's function takes the position (rope, positions, cached
 * attention; the last parameter), and, for a cached attention, its cache's
 * keys and values before it. */
bool cg_takes_position(const ir_node *node);

/* ---- weights.c: the weights, laid out and streamed ---------------------- */

/* A piece of constant data the code reads: a weight's f32 values or a
 * packed matrix's codes, scales or zero points, at a 64-byte aligned
 * offset in the weights (named after its tensor: "fc1.weight",
 * "fc1.weight.scale", ".zero", ".f32" for a matrix also read as values). */
typedef struct cg_blob {
    const char *name;
    size_t bytes;
    int64_t offset;
    int32_t node;     /* the weight node it comes from */
    const void *data; /* CG_WEIGHTS_MEMORY: its bytes, once put */
} cg_blob;

/* Where the weights go. */
typedef enum cg_weights_kind {
    CG_WEIGHTS_OBJECT, /* the data section of the object (object.c), written first */
    CG_WEIGHTS_FILE,   /* --weights-file */
    CG_WEIGHTS_MEMORY, /* --emit llvm/bc/asm: per-blob constants of the module */
} cg_weights_kind;

/* The bytes before the data in CG_WEIGHTS_OBJECT's file: the ELF header. */
enum { CG_OBJECT_DATA_START = 64 };

typedef struct cg_weights {
    cg_weights_kind kind;
    sup_arena *arena;
    const ir_graph *g;
    const cg_target *target;
    int lanes;
    cg_blob *blobs; /* in offset order */
    int n_blobs;
    int32_t *node_blob;   /* per node: the blob of a weight's f32 values, or -1 */
    cg_packed *packed;    /* per node: a weight matrix's packed form (codes -1: none) */
    cg_conv_packed *conv; /* per node: a conv's weight's packed form (codes -1: none) */
    int32_t *first;       /* per node: its first blob, or -1 (a node's blobs are adjacent) */
    int n_nodes, n_put;   /* weight nodes with blobs, and how many are written */
    uint64_t size;        /* all blobs, each padded to 64 bytes */
    uint64_t checksum;    /* qmc_checksum of those bytes, once every node is put (FILE) */
    rt_checksum sum;      /* ... as it is computed, a staging buffer at a time */
    const char *symbol;   /* CG_WEIGHTS_OBJECT: the data's symbol ("PREFIX.weights") */
    /* the file being written (OBJECT, FILE) */
    const char *path; /* FILE: where it goes once committed */
    char *tmp;        /* the temporary file */
    int fd;           /* open on tmp, or -1 */
    uint64_t at;      /* bytes of blobs written */
    uint8_t *stage;   /* the staging buffer: the file's bytes [flushed, flushed + fill) */
    size_t fill;
    uint64_t flushed;
    bool direct;     /* fd writes with O_DIRECT */
    double in_bytes; /* bytes of the tensors read, and all of them */
    double in_total;
    sup_progress progress;
} cg_weights;

/* Lays out the weights of g for target t and, for OBJECT and FILE, creates
 * the temporary file they are written to, beside `path` (the object or
 * the weights file). False after reporting an error. */
bool cg_weights_open(sup_arena *arena, const ir_graph *g, const cg_target *t, cg_weights_kind kind,
                     const char *path, cg_weights *w);
/* Whether weight node `node` has blobs to put. */
bool cg_weights_wants(const cg_weights *w, int32_t node);
/* Whether cg_weights_put needs node's quantized form with its dequantized
 * matrix (q->dequant): a conv's weight whose codes are not kept. */
bool cg_weights_wants_dequant(const cg_weights *w, int32_t node);
/* Packs and writes node's blobs, the next ones in order: a matrix from q
 * (its codes, scales and zero points; NULL when it stays f32) and f32
 * values read from the node's tensor. Temporary buffers come from tmp.
 * Shows progress on a terminal. False after reporting a write error. */
bool cg_weights_put(cg_weights *w, sup_arena *tmp, int32_t node, const ir_qweight *q);
/* The temporary file, complete (every node put; OBJECT: the object too),
 * renamed to path with the usual permissions. False after reporting. */
bool cg_weights_rename(cg_weights *w, const char *path);
/* Closes the temporary file and removes it (on failure, or once linked). */
void cg_weights_discard(cg_weights *w);

/* ---- emit.c: the module --------------------------------------------------- */

/* Builds, verifies and optimises the module reading the weights w (all put)
 * and writes the requested artefact: assembly, IR or bitcode to path, or
 * for CG_EMIT_OBJ the object, appended to the weights' file when they are
 * in it (object.c), else to path. */
bool cg_emit_module(sup_arena *arena, const ir_graph *g, const ir_plan *plan, const cg_target *t,
                    const cg_options *opts, const cg_weights *w, const char *path,
                    cg_emit_kind what);

/* ---- header.c: the C header of a compiled model ------------------------- */

/* The model's C identifier prefix ("tiny_gpt"). */
const char *cg_symbol_prefix(sup_arena *arena, const ir_graph *g);
bool cg_write_header(sup_arena *arena, const ir_graph *g, const ir_plan *plan, const cg_target *t,
                     const char *path);

/* ---- link.c: executables and libraries ---------------------------------- */

/* Links object `obj` into an executable or library at `out` (atomically). */
bool cg_link(sup_arena *arena, const cg_target *t, cg_emit_kind kind, const char *obj,
             const char *out);

/* ---- object.c: the model's object file: code and weights -------------- */

/* Completes the object in w's file: LLVM's relocatable object `code`
 * (size bytes) appended after the weights already written at
 * CG_OBJECT_DATA_START, the weights becoming a section of their own (x86-64:
 * .lrodata, a large section, so that any size links with the medium code
 * model; aarch64: .rodata) that defines the symbol the code refers to
 * them by (w->symbol), then the section headers and the ELF header. The
 * code object's sections keep their indices. False after reporting. */
bool cg_object_finish(const cg_weights *w, const void *code, size_t size);

/* ---- output.c: the artefacts of qmc compile ---------------------------- */

/* The output: o->output, or a name made from the model's (then set in
 * o->output); and where the weights go, as cg_weights_open takes them. */
void cg_output_weights(sup_arena *arena, const ir_graph *g, cg_options *o, cg_weights_kind *kind,
                       const char **path);
/* Writes what o->emit asks for (exe, obj + header, lib/shared + header,
 * llvm, bc, asm) at o->output, from the weights w (all put, from
 * cg_output_weights' kind and path). Atomic: on failure nothing is left,
 * w's temporary file included; false after reporting errors. */
bool cg_write_output(sup_arena *arena, const ir_graph *g, const ir_plan *plan, const cg_target *t,
                     cg_options *o, cg_weights *w);

#endif
