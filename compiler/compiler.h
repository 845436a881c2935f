/* compiler.h: the compiler's internal header, one section per source file.
 *
 * Pipeline: parse (frontend) -> build graph -> infer shapes -> calibrate ->
 * select precision -> lower -> emit. The graph IR is an array of nodes
 * referenced by index; ir_verify runs after every pass. */
#ifndef QMC_COMPILER_H
#define QMC_COMPILER_H

#include "frontend.h"
#include "quant.h"

#define QMC_VERSION "0.1.0"

/* ---- cmd_*.c: the driver's subcommands (argv[0] is the command name) --- */

int cmd_inspect(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_targets(int argc, char **argv);


/* ---- ir.c: the graph IR ------------------------------------------------ */

#define IR_MAX_RANK RT_MAX_RANK
/* No tensor has more elements (keeps every size computation in range). */
#define IR_MAX_ELEMENTS ((int64_t)1 << 40)

typedef enum ir_op {
    IR_OP_INPUT,     /* a model input; name = input name */
    IR_OP_WEIGHT,    /* a tensor of the weights file, as f32; name = tensor name */
    IR_OP_CONST,     /* a scalar f32 constant (attr.value), shape [] */
    IR_OP_LINEAR,    /* x[..., K], W[N, K], optional b[N] -> x·Wᵀ + b [..., N] */
    IR_OP_MATMUL,    /* a[..., M, K] · b[..., K, N], batch dims broadcast */
    IR_OP_ADD,       /* elementwise with numpy broadcasting */
    IR_OP_SUB,
    IR_OP_MUL,
    IR_OP_DIV,
    IR_OP_RELU,
    IR_OP_GELU,      /* exact: x/2 * (1 + erf(x/sqrt 2)) */
    IR_OP_SILU,
    IR_OP_TANH,
    IR_OP_SOFTMAX,   /* over attr.axis */
    IR_OP_LAYERNORM, /* x, weight, bias over the last axis, attr.eps */
    IR_OP_RMSNORM,   /* x, weight over the last axis, attr.eps */
    IR_OP_EMBEDDING, /* table[V, D], indices[...] (i32) -> [..., D] */
    IR_OP_RESHAPE,   /* to the node's shape */
    IR_OP_TRANSPOSE, /* attr.perm */
    IR_OP_SLICE,     /* attr.axis, attr.start, attr.end (step 1) */
    IR_OP_CONCAT,    /* n inputs along attr.axis */
    IR_OP_ATTENTION, /* q, k, v [T, D] -> [T, D]; attr.heads, attr.causal, attr.scale */
    IR_OP_COUNT
} ir_op;

typedef struct ir_attrs {
    float eps;   /* layernorm, rmsnorm */
    float value; /* const */
    float scale; /* attention: multiplies q·kᵀ */
    int axis;    /* softmax, slice, concat (non-negative after building) */
    int heads;   /* attention */
    bool causal; /* attention */
    int64_t start, end; /* slice */
    int64_t perm[IR_MAX_RANK]; /* transpose */
} ir_attrs;

/* A weight's precision: how a linear layer's weight matrix is stored and
 * multiplied (precision.c parses it from --precision and annotations). */
typedef struct qp_format {
    q_format format; /* QFMT_F32, INT8, INT4 (symmetric), UINT4 (int4 with zero point), FP8_E4M3, FP8_E5M2 */
    int group;       /* int4: elements per scale along the input dimension (32, 64, 128); 0: per output channel */
    q_clip clip;     /* how the scales are chosen */
    bool act8;       /* activations quantized to int8 (":a8") */
    float act_scale; /* act8: a fixed scale for every row (from calibration), or 0:
                      * each row's own, max|row| / 127, computed as it runs */
} qp_format;

/* The quantized form of a weight matrix W[n, k], in ONNX's conventions:
 * one code byte per element (int8 two's complement, int4 sign-extended,
 * uint4 0..15, FP8 raw), k padded with zeros to a multiple of the group. */
typedef struct ir_qweight {
    qp_format f;
    int64_t n, k, kp;      /* rows, columns, columns padded to the group */
    int64_t group;         /* columns per scale (kp when per channel) */
    int64_t n_groups;      /* kp / group */
    uint8_t *codes;        /* [n][kp] */
    float *scales;         /* [n][n_groups] */
    int32_t *zero_points;  /* [n][n_groups], or NULL (symmetric) */
    float *dequant;        /* [n][k]: the values the interpreter multiplies with */
    q_error_stats stats;   /* dequant against the original weight */
    double bits_per_weight; /* codes + scales + zero points, per weight */
    size_t bytes;           /* storage of codes, scales and zero points */
} ir_qweight;

typedef struct ir_node {
    ir_op op;
    qmc_dtype dtype; /* f32 for activations and weights, i32 for index inputs */
    int rank;
    int64_t shape[IR_MAX_RANK];
    int n_inputs;
    int32_t *inputs; /* node indices, always smaller than this node's index */
    ir_attrs attr;
    const char *name; /* unique in the graph; weights and inputs keep their own names */
    fe_loc loc;       /* where the source created it */
    /* IR_OP_WEIGHT: the tensor in the weights file, and the precision the
     * source asked for with an annotation such as `@int4` (NULL if none) */
    const fe_tensor *tensor;
    const char *precision;
    fe_loc precision_loc;
    /* IR_OP_WEIGHT used as a linear layer's weight: the chosen precision
     * (select precision) and its quantized form (quantize weights) */
    bool is_matrix;
    qp_format qformat;
    ir_qweight *qw;
} ir_node;

/* A named model input or output. */
typedef struct ir_port {
    const char *name;
    int32_t node;
    qmc_dtype dtype;
    int rank;
    int64_t shape[IR_MAX_RANK];
    fe_loc loc;  /* the declaration */
    bool logits; /* `@logits`: the output holds logits (error measured as KL) */
} ir_port;

typedef struct ir_graph {
    fe_arena *arena;
    const char *name;   /* the model's name */
    const char *source; /* path of the model file */
    ir_node *nodes;
    int n_nodes, cap_nodes;
    ir_port *inputs, *outputs;
    int n_inputs, n_outputs;
    fe_safetensors *weights; /* NULL if the model uses none */
    const char *weights_spec; /* the file as written in the model (or --weights) */
    fe_loc weights_loc;      /* the `weights` statement */
} ir_graph;

const char *ir_op_name(ir_op op);
/* Appends a node (inputs copied); returns its index. Shape is not set. */
int32_t ir_add_node(ir_graph *g, ir_op op, const int32_t *inputs, int n_inputs, fe_loc loc);
int64_t ir_node_count(const ir_node *n); /* number of elements */
/* "f32[128, 256]" into buf; returns buf. */
char *ir_shape_str(qmc_dtype dtype, int rank, const int64_t *shape, char *buf, size_t size);
#define IR_SHAPE_STR_MAX 160

/* ---- build_graph.c: syntax tree -> graph (elaboration) ------------------ */

typedef struct ir_build_options {
    const char *weights_override; /* --weights FILE, or NULL */
} ir_build_options;

/* Evaluates constants, unrolls loops, inlines functions, resolves names and
 * weights, and infers every node's shape as it is created, so errors point
 * at the expression that caused them. Returns NULL after reporting errors. */
ir_graph *ir_build_graph(fe_arena *arena, const fe_node *file, const ir_build_options *opts);

/* ---- shape.c: shape inference ------------------------------------------ */

/* Computes the dtype and shape of node `index` from its inputs and
 * attributes. On a mismatch reports an error (with notes on where each
 * operand came from) and returns false. */
bool ir_infer_node_shape(ir_graph *g, int32_t index);
/* The pass: re-infers every node in order. */
bool ir_infer_shapes(ir_graph *g);

/* ---- verify.c: IR invariants ------------------------------------------- */

/* Checks the structural invariants every pass must keep (inputs defined
 * before use, arities, shapes consistent with inference, names unique,
 * ports valid). Reports an internal error and returns false if broken. */
bool ir_verify(const ir_graph *g, const char *after_pass);

/* ---- dump.c: the textual IR -------------------------------------------- */

/* Writes the graph in its readable text form (see docs/ir.md). */
void ir_dump(FILE *out, const ir_graph *g);

/* ---- pipeline.c: the passes in order ------------------------------------ */

typedef struct pipeline_options {
    const char *weights_override; /* --weights */
    const char *dump_after;       /* --dump-after=PASS: print the IR after that pass */
} pipeline_options;

/* parse -> build graph -> infer shapes, with ir_verify after each pass.
 * Returns NULL after reporting errors. */
ir_graph *pipeline_load(fe_arena *arena, const char *model_path, const pipeline_options *opts);
/* The names --dump-after accepts, NULL-terminated. */
extern const char *const pipeline_pass_names[];
struct qp_spec;
/* select precision -> quantize weights (spec NULL: everything f32). */
bool pipeline_quantize(ir_graph *g, const struct qp_spec *spec, const pipeline_options *opts);
/* The same from --precision text (NULL: f32), for `qmc run` and `qmc eval`. */
bool pipeline_simulate_precision(fe_arena *arena, ir_graph *g, const char *spec_text, const pipeline_options *opts);


/* ---- precision.c: the select-precision pass ----------------------------- */

/* --precision SPEC: a default format then GLOB=FORMAT overrides, e.g.
 * "int4,lm_head.weight=int8,*.fc2.weight=fp8e4m3". FORMAT is one of f32,
 * int8, int4 (groups of 32), int4:g64, int4:g128, fp8e4m3, fp8e5m2, with
 * optional modifiers :asym (int4 with zero points), :mse (MSE clipping),
 * :minmax, :a8 (int8 activations). */
typedef struct qp_override {
    const char *glob;
    qp_format f;
    bool used;
} qp_override;

typedef struct qp_spec {
    qp_format dflt;
    qp_override *overrides;
    int n_overrides;
} qp_spec;

/* Parses one FORMAT; on failure writes a reason listing the valid formats. */
bool qp_format_parse(const char *text, qp_format *out, char *err, size_t err_size);
/* The canonical spelling ("int4:g32", "int8", "fp8e4m3", "int4:g64:asym:mse"). */
const char *qp_format_name(fe_arena *arena, const qp_format *f);
bool qp_spec_parse(fe_arena *arena, const char *text, qp_spec *out);
/* The pass: marks the weights used as a linear layer's weight matrix and
 * chooses each one's precision: spec default < source annotation (@int4)
 * < spec override. An override that matches no such weight is an error
 * that lists them. */
bool ir_select_precision(ir_graph *g, const qp_spec *spec);

/* ---- quantize_weights.c: the quantize-weights pass ---------------------- */

/* Quantizes every weight matrix whose precision is not f32 (ir_qweight),
 * with the numerics of compiler/quant. */
bool ir_quantize_weights(ir_graph *g);


/* ---- lower.c: the lower pass (memory plan) ------------------------------ */

typedef enum ir_buffer_kind {
    IR_BUF_NONE,      /* constants: no storage */
    IR_BUF_WEIGHT,    /* data emitted with the code */
    IR_BUF_INPUT,     /* the caller's input pointer `port` */
    IR_BUF_OUTPUT,    /* the caller's output pointer `port` */
    IR_BUF_WORKSPACE, /* bytes [offset, offset + bytes) of the workspace */
} ir_buffer_kind;

typedef struct ir_buffer {
    ir_buffer_kind kind;
    int port;
    int64_t offset, bytes;
    int64_t scratch_offset, scratch_bytes; /* workspace the op needs while it runs */
} ir_buffer;

typedef struct ir_plan {
    ir_buffer *buf;             /* per node */
    int64_t workspace_size;     /* bytes, a multiple of 64 */
    int64_t peak_live_bytes;    /* the largest set of activations (and scratch) alive at once */
    int32_t *output_copies;     /* per output port: node to copy into it, or -1 */
} ir_plan;

/* Places every activation in the workspace by liveness: a buffer is reused
 * once the last node reading it has run (first fit, 64-byte aligned). The
 * node computing an output writes straight into the caller's buffer.
 * a8_float_rows: `:a8` layers need room for their rows in float (the
 * target has no integer dot product). */
bool ir_lower(ir_graph *g, ir_plan *plan, bool a8_float_rows);

/* ---- codegen/: LLVM emission (codegen/codegen.h has the details) -------- */

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
    const char *output;        /* -o */
    const char *triple, *cpu, *features;
    int opt_level;             /* 0..3 */
    const char *weights_file;  /* --weights-file: keep weights outside the code */
    bool print_target;
} cg_options;

/* ---- ref_ops.c: fp32 reference kernels of the interpreter --------------- */

/* y[m, n] = sum_k x[m, k] * wt[k, n] + b[n]; wt is the weight transposed to
 * [K, N] (b may be NULL). */
void ref_linear(const float *x, const float *wt, const float *b, float *y, int64_t m, int64_t k,
                int64_t n);
/* y[m, n] = sum_k a[m, k] * b[k, n] for one matrix pair. */
void ref_matmul(const float *a, const float *b, float *y, int64_t m, int64_t k, int64_t n);
void ref_transpose_2d(const float *x, float *y, int64_t rows, int64_t cols);
void ref_softmax(const float *x, float *y, int64_t outer, int64_t dim, int64_t inner);
void ref_layernorm(const float *x, const float *w, const float *b, float *y, int64_t rows, int64_t d,
                   float eps);
void ref_rmsnorm(const float *x, const float *w, float *y, int64_t rows, int64_t d, float eps);
float ref_gelu(float x);
float ref_silu(float x);
/* Multi-head attention of one sequence: q[t, d], k[s, d], v[s, dv]. */
void ref_attention(const float *q, const float *k, const float *v, float *y, int64_t t, int64_t s,
                   int64_t d, int64_t dv, int heads, bool causal, float scale, float *scratch);

/* ---- interp.c: the reference interpreter -------------------------------- */

typedef struct interp interp;

/* Prepares to evaluate g: weight views (f32 data is used in place), buffers
 * for every node. */
interp *interp_new(fe_arena *arena, const ir_graph *g);
/* Replaces the f32 values a weight node evaluates to (simulated
 * quantization); data must outlive the interpreter. */
void interp_set_weight(interp *it, int32_t node, const float *data);
/* The buffer of input port i (f32 or i32 as declared) to fill before a run. */
void *interp_input(interp *it, int port);
/* Evaluates the graph once. Reports a user error (e.g. an index out of
 * range) and returns false on failure. */
bool interp_run(interp *it);
/* The f32 values of output port i after a run. */
const float *interp_output(interp *it, int port);
/* Makes every quantized weight matrix evaluate to its dequantized values,
 * so the interpreter computes what the generated code computes. */
void interp_use_quantized_weights(interp *it, const ir_graph *g);
/* The f32 values of any node after a run (for calibration and tests). */
const float *interp_node_value(interp *it, int32_t node);

/* ---- cli.c: command-line options in the style of clang ------------------ */

typedef struct cli {
    int argc;
    char **argv;
    int i;           /* the argument being looked at */
    const char *cmd; /* "run", "compile", ... for messages */
    bool failed;
} cli;

/* True (and advances) if argv[i] is the flag `name` (e.g. "--ast"). */
bool cli_flag(cli *c, const char *name);
/* True (and advances) if argv[i] is `name VALUE` or `name=VALUE`; a missing
 * value is reported and sets c->failed. */
bool cli_value(cli *c, const char *name, const char **value);
/* Reports argv[i] as unknown, suggesting the closest of the known options. */
void cli_unknown(cli *c, const char *const *known);

/* ---- model_io.c: .npy files for model inputs and outputs ---------------- */

typedef struct model_input {
    int port;         /* index into g->inputs */
    const char *path;
    rt_mapped_file file;
    rt_npy_header npy;
    int64_t batch;    /* size of the extra leading dimension, or -1 */
} model_input;

/* Parses NAME=FILE, maps the file and checks it against input NAME: dtype
 * (f32 inputs take float32; i32 inputs take int32 or int64) and shape,
 * which is the declared one or has one extra leading (batch) dimension.
 * Errors point at the input's declaration. */
bool model_input_open(const ir_graph *g, const char *spec, model_input *in);
/* Copies batch item b (0 if unbatched) into dst as the declared dtype;
 * int64 values outside int32 are an error. */
bool model_input_read(const ir_graph *g, const model_input *in, int64_t b, void *dst);
void model_input_close(model_input *in);
/* Checks that every input is given once and that batched inputs agree;
 * returns the batch count (-1 if none is batched) via *batch. */
bool model_inputs_check(const ir_graph *g, const model_input *ins, int n, int64_t *batch);
/* Runs the interpreter over `runs` batch items (1 if unbatched) and stacks
 * each output port o into stacked[o] (runs * its count floats). */
bool model_run_batches(const ir_graph *g, interp *it, const model_input *ins, int n, int64_t runs,
                       float *const *stacked);
/* Splits NAME=FILE for an output and finds the port; reports errors. */
bool model_output_spec(const ir_graph *g, const char *spec, int *port, const char **path);

#endif
