/* compiler.h: the compiler's internal header, one section per source file.
 *
 * Pipeline: parse (frontend) -> build graph -> infer shapes -> calibrate ->
 * select precision -> lower -> emit. The graph IR is an array of nodes
 * referenced by index; ir_verify runs after every pass. */
#ifndef QMC_COMPILER_H
#define QMC_COMPILER_H

#include "frontend.h"
#include "quant.h"

/* ---- cmd_*.c: the driver's subcommands (argv[0] is the command name) --- */

int cli_inspect(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_quantize(int argc, char **argv);
int cli_compile(int argc, char **argv);
int cli_report(int argc, char **argv);
int cli_targets(int argc, char **argv);


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

/* The quantized form of a weight matrix W[n, k], in ONNX's conventions:
 * one code byte per element (int8 two's complement, int4 sign-extended,
 * uint4 0..15, FP8 raw), k padded with zeros to a multiple of the group. */
typedef struct ir_qweight {
    q_precision f;
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
    sup_loc loc;       /* where the source created it */
    /* IR_OP_WEIGHT: the tensor in the weights file, and the precision the
     * source asked for with an annotation such as `@int4` (NULL if none) */
    const fe_tensor *tensor;
    const char *precision;
    sup_loc precision_loc;
    /* IR_OP_WEIGHT used as a linear layer's weight: the chosen precision
     * (select precision) and its quantized form (quantize weights) */
    bool is_matrix;
    q_precision qformat;
    ir_qweight *qw;
} ir_node;

/* A named model input or output. */
typedef struct ir_port {
    const char *name;
    int32_t node;
    qmc_dtype dtype;
    int rank;
    int64_t shape[IR_MAX_RANK];
    sup_loc loc;  /* the declaration */
    bool logits; /* `@logits`: the output holds logits (error measured as KL) */
} ir_port;

typedef struct ir_graph {
    sup_arena *arena;
    const char *name;   /* the model's name */
    const char *source; /* path of the model file */
    ir_node *nodes;
    int n_nodes, cap_nodes;
    ir_port *inputs, *outputs;
    int n_inputs, n_outputs;
    fe_safetensors *weights; /* NULL if the model uses none */
    const char *weights_spec; /* the file as written in the model (or --weights) */
    sup_loc weights_loc;      /* the `weights` statement */
    struct ir_calibration *calib;   /* calibrate: activation statistics, or NULL */
    struct ir_selection *selection; /* select precision: why each matrix got its format */
} ir_graph;

const char *ir_op_name(ir_op op);
/* Appends a node (inputs copied); returns its index. Shape is not set. */
int32_t ir_add_node(ir_graph *g, ir_op op, const int32_t *inputs, int n_inputs, sup_loc loc);
int64_t ir_node_count(const ir_node *n); /* number of elements */

/* A string -> int32 map (open addressing, FNV-1a) in an arena; keys are
 * not copied. Zero-initialise it. */
typedef struct ir_name_map {
    const char **keys;
    int32_t *vals;
    int cap, n;
} ir_name_map;
/* The value slot of key: NULL if absent (insert false), else created. */
int32_t *ir_name_map_slot(sup_arena *arena, ir_name_map *m, const char *key, bool insert);

/* ---- build_graph.c: syntax tree -> graph (elaboration) ------------------ */

typedef struct pass_build_options {
    const char *weights_override; /* --weights FILE, or NULL */
} pass_build_options;

/* Evaluates constants, unrolls loops, inlines functions, resolves names and
 * weights, and infers every node's shape as it is created, so errors point
 * at the expression that caused them. Returns NULL after reporting errors. */
ir_graph *pass_build_graph(sup_arena *arena, const fe_node *file, const pass_build_options *opts);

/* ---- shape.c: shape inference ------------------------------------------ */

/* Computes the dtype and shape of node `index` from its inputs and
 * attributes. On a mismatch reports an error (with notes on where each
 * operand came from) and returns false. */
bool ir_infer_node_shape(ir_graph *g, int32_t index);
/* The pass: re-infers every node in order. */
bool pass_infer_shapes(ir_graph *g);

/* ---- verify.c: IR invariants ------------------------------------------- */

/* Checks the structural invariants every pass must keep (inputs defined
 * before use, arities, shapes consistent with inference, names unique,
 * ports valid). Reports an internal error and returns false if broken. */
bool ir_verify(const ir_graph *g, const char *after_pass);

/* ---- dump.c: the textual IR -------------------------------------------- */

/* Writes the graph in its readable text form (see docs/ir.md). */
void ir_dump(FILE *out, const ir_graph *g);

/* ---- pipeline.c: the passes in order ------------------------------------ */

/* What the precision flags of compile, run and eval ask for (cli_precision.c). */
#define PASS_MAX_CALIB 64
typedef struct pass_prec_options {
    const char *precision;            /* --precision SPEC, or NULL (f32) */
    const char *calib[PASS_MAX_CALIB];  /* --calib NAME=FILE.npy, one per input */
    int n_calib;
    const char *calib_method;         /* --calib-method, or NULL (the default) */
    double budget_bits;               /* --budget-bits B, or 0 */
    double max_error;                 /* --max-error E, or 0 */
    int sens_samples;                 /* --sensitivity-samples N, or 0 (the default) */
    const char *report;               /* --report FILE.json, or NULL */
    bool verbose;                     /* -v: the decisions as a table on stderr (compile: and the kernels) */
} pass_prec_options;

typedef struct pass_options {
    const char *weights_override; /* --weights */
    const char *dump_after;       /* --dump-after=PASS: print the IR after that pass */
    pass_prec_options prec;              /* calibration and precision selection */
} pass_options;

/* parse -> build graph -> infer shapes, with ir_verify after each pass.
 * Returns NULL after reporting errors. */
ir_graph *pass_pipeline_load(sup_arena *arena, const char *model_path, const pass_options *opts);
/* The names --dump-after accepts, NULL-terminated. */
extern const char *const pass_names[];
/* calibrate -> select precision -> quantize weights -> report, from
 * opts->prec (a NULL precision: everything f32). */
bool pass_pipeline_precision(sup_arena *arena, ir_graph *g, const pass_options *opts);



/* ---- precision.c: the select-precision pass ----------------------------- */

/* --precision SPEC: a default format then GLOB=FORMAT overrides, e.g.
 * "int4,lm_head.weight=int8,*.fc2.weight=fp8e4m3". FORMAT is one of f32,
 * int8, int4 (groups of 32), int4:g64, int4:g128, fp8e4m3, fp8e5m2, with
 * optional modifiers :asym (int4 with zero points), :mse (MSE clipping),
 * :minmax, :a8 (int8 activations), :static (with :a8, one calibrated
 * activation scale). FORMAT may also be `auto` (optionally auto:a8 or
 * auto:a8:static): those weights are chosen by measurement (sensitivity.c)
 * within --budget-bits or --max-error. */
typedef struct pass_override {
    const char *glob;
    q_precision f;
    bool automatic; /* FORMAT was auto; f holds its :a8/:static modifiers */
    bool used;
} pass_override;

typedef struct pass_spec {
    const char *text;
    q_precision dflt;
    bool dflt_automatic;
    pass_override *overrides;
    int n_overrides;
    /* for auto: exactly one of these is > 0 */
    double budget_bits;  /* average bits per weight over all weight matrices */
    double max_error;    /* output error on the calibration set */
    int sens_samples;    /* calibration samples the sensitivity measurement uses (0: default) */
} pass_spec;

bool pass_spec_parse(sup_arena *arena, const char *text, pass_spec *out);
bool pass_spec_has_auto(const pass_spec *spec);
bool pass_spec_has_static(const pass_spec *spec);
bool pass_spec_has_gptq(const pass_spec *spec);

/* Where a weight matrix's format came from. */
typedef enum ir_origin {
    IR_FROM_NONE,       /* no --precision: f32 */
    IR_FROM_DEFAULT,    /* the spec's default format */
    IR_FROM_ANNOTATION, /* the model's `@int4` */
    IR_FROM_OVERRIDE,   /* GLOB=FORMAT */
    IR_FROM_AUTO,       /* chosen by measurement */
} ir_origin;

/* One format measured for one weight matrix. */
typedef struct ir_candidate {
    q_precision f;
    size_t bytes;           /* codes + scales + zero points (4 per weight for f32) */
    double bits_per_weight;
    double sqnr_db;         /* of the weight itself (+inf for f32) */
    double proxy;           /* the layer's output noise relative to its signal,
                             * sum (dW_ij^2 E[x_j^2]) / sum (W_ij^2 E[x_j^2]) */
    bool measured;          /* chosen for end-to-end measurement (the best proxy
                             * among candidates of the same size, and int4:g32) */
    double sensitivity;     /* output error added on the calibration set when this
                             * matrix alone takes this format; < 0: not measured */
    const float *dequant;   /* [n][k] while selecting; NULL afterwards */
} ir_candidate;

/* The decision for one weight matrix. */
typedef struct ir_decision {
    int32_t node;
    ir_origin origin;
    const char *origin_text;  /* the override glob or annotation */
    ir_candidate *cands;      /* auto: every candidate; otherwise the one format */
    int n_cands, chosen;
    double sensitivity;       /* of the chosen format, or < 0 if not measured */
    double sensitivity_ref;   /* at the reference format int4:g32, for ranking, or < 0 */
    int rank;                 /* 1 = most sensitive at int4:g32; 0 unranked */
    const char *why;
} ir_decision;

/* What select precision decided and measured (the report's contents). */
typedef struct ir_selection {
    ir_decision *d;           /* one per weight matrix, in node order */
    int n;
    const char *spec_text;
    bool automatic;
    double budget_bits, max_error;
    const char *metric;       /* "kl", "rel_rms" or "mixed": how output error is measured */
    double calib_error;       /* of the final model on the calibration set; < 0 unknown */
    double predicted_error;   /* auto: what the allocation predicted; < 0 unknown */
    double fixed_error;       /* auto: the (additive) error of the formats the spec fixed, alone */
    int sens_samples;         /* samples the sensitivity measurement used */
    int verify_runs;          /* full runs to verify and repair */
    double seconds;           /* measuring and allocating */
    const char *note;         /* a remark on the search (repair, fallback), or NULL */
} ir_selection;

/* The pass: marks the weights used as a linear layer's weight matrix and
 * chooses each one's precision: spec default < source annotation (@int4)
 * < spec override. An override that matches no such weight is an error
 * that lists them. Weights whose format is `auto` are chosen by
 * pass_select_auto; `:static` activation scales come from g->calib. Records
 * every decision in g->selection. */
bool pass_select_precision(ir_graph *g, const pass_spec *spec);

/* ---- sensitivity.c: automatic precision selection ------------------------ */

/* Chooses the format of every matrix marked IR_FROM_AUTO in g->selection:
 * measures each candidate's end-to-end sensitivity on the calibration
 * samples (re-running only the nodes downstream of the changed weight),
 * allocates by a dynamic program over bytes (least predicted error within
 * the budget, or fewest bytes within the error), then verifies the result
 * with full runs and repairs it if it misses. */
bool pass_select_auto(ir_graph *g, const pass_spec *spec);
/* Measures the sensitivity of the formats already chosen and the final
 * output error on the calibration samples, for the report of a fixed spec. */
bool pass_measure_fixed(ir_graph *g);

/* ---- quantize_weights.c: the quantize-weights pass ---------------------- */

/* Quantizes weight matrix node w of g to format f (not f32) into arena;
 * reports an error at the weight and returns NULL if it cannot. :gptq
 * needs g->calib with second moments. */
ir_qweight *pass_quantize_matrix(sup_arena *arena, const ir_graph *g, int32_t w, const q_precision *f);
/* Quantizes every weight matrix whose precision is not f32 (ir_qweight),
 * with the numerics of compiler/quant. */
bool pass_quantize_weights(ir_graph *g);

/* ---- report.c: what precision selection decided --------------------------- */

/* Writes the JSON report (see docs/calibration.md for the fields). */
bool ir_report_write_json(const ir_graph *g, const char *path);
/* The readable table of -v. */
void ir_report_print_table(const ir_graph *g, FILE *out);

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
    /* a linear layer whose scratch holds the int8 rows an earlier linear
     * layer made of the same input (ir_same_act_rows): it reads them and
     * makes none */
    bool reuses_act_rows;
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
 * int8_dot: the target has integer dot products (AVX-512 VNNI, aarch64
 * dotprod), which decides the scratch of linear layers
 * (ir_act_int8_rows). */
bool pass_lower(ir_graph *g, ir_plan *plan, bool int8_dot);
/* Whether linear layers a and b turn their input into the very same int8
 * rows (same input node and rows, same weight format, K and groups, same
 * activation scale): then b reads a's, which pass_lower keeps alive until b
 * has run (q, k and v of attention read one normalised x). */
bool ir_same_act_rows(const ir_graph *g, const ir_node *a, const ir_node *b, bool int8_dot);

/* How many int8 rows a linear layer makes of each activation row before
 * its kernel runs: 1 with `:a8`; 3 (the digits of q_split_row_a8x3_ref,
 * as accurate as f32) for int8 and int4 weights with f32 activations when
 * the target has integer dot products, which then do in 3 instructions
 * (plus 1.5 to split int4 nibbles) what decoding to float does in 12 per
 * 64 weights;
 * else 0 (float activations: FP8, f32, or no integer dot products). */
enum { IR_A8X3_DIGITS = 3 };
int ir_act_int8_rows(const ir_qweight *q, bool int8_dot);

/* The scratch of a linear layer whose activations become int8 rows
 * (ir_act_int8_rows > 0), as byte offsets from its start, each 64-byte
 * aligned: the codes (m * rows rows of kp rounded up to 8 bytes) at 0, a
 * scale per int8 row, a sum per int8 row and group, then (`:a8` without
 * integer dot products) the rows in float. */
typedef struct ir_act8_scratch {
    int64_t scales, sums, float_rows, bytes;
} ir_act8_scratch;
ir_act8_scratch ir_act8_scratch_layout(const ir_graph *g, const ir_node *n, bool int8_dot);

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
void interp_ref_linear(const float *x, const float *wt, const float *b, float *y, int64_t m, int64_t k,
                int64_t n);
/* y[m, n] = sum_k a[m, k] * b[k, n] for one matrix pair. */
void interp_ref_matmul(const float *a, const float *b, float *y, int64_t m, int64_t k, int64_t n);
void interp_ref_transpose_2d(const float *x, float *y, int64_t rows, int64_t cols);
void interp_ref_softmax(const float *x, float *y, int64_t outer, int64_t dim, int64_t inner);
void interp_ref_layernorm(const float *x, const float *w, const float *b, float *y, int64_t rows, int64_t d,
                   float eps);
void interp_ref_rmsnorm(const float *x, const float *w, float *y, int64_t rows, int64_t d, float eps);
float interp_ref_gelu(float x);
float interp_ref_silu(float x);
/* Multi-head attention of one sequence: q[t, d], k[s, d], v[s, dv]. */
void interp_ref_attention(const float *q, const float *k, const float *v, float *y, int64_t t, int64_t s,
                   int64_t d, int64_t dv, int heads, bool causal, float scale, float *scratch);

/* ---- interp.c: the reference interpreter -------------------------------- */

typedef struct interp interp;

/* Prepares to evaluate g: weight views (f32 data is used in place), buffers
 * for every node. */
interp *interp_new(sup_arena *arena, const ir_graph *g);
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
/* Evaluates only nodes first .. n_nodes - 1: the earlier nodes must still
 * hold this input's values from a previous run. After changing one weight
 * (interp_set_weight), re-running from its first consumer gives exactly
 * what a full run would, at the cost of the downstream nodes only. */
bool interp_run_from(interp *it, int32_t first);
/* Simulated int8 activations for the linear layers whose weight is node w
 * (as q_precision's act8/act_scale; the graph's choice until changed). */
void interp_set_act8(interp *it, int32_t w, bool act8, float act_scale);

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

typedef struct interp_file {
    int port;         /* index into g->inputs */
    const char *path;
    rt_mapped_file file;
    rt_npy_header npy;
    int64_t batch;    /* size of the extra leading dimension, or -1 */
} interp_file;

/* Opens the n NAME=FILE specs into ins: maps each file and checks it
 * against input NAME, dtype (f32 inputs take float32; i32 inputs take int32
 * or int64) and shape (the declared one, or one extra leading batch
 * dimension); checks that every input is given once and that batched
 * inputs agree. *batch gets the batch count (-1 if none is batched). On
 * failure reports why (at the input's declaration) and leaves none open;
 * on success close each with interp_file_close. */
bool interp_files_open(const ir_graph *g, const char *const *specs, int n, interp_file *ins, int64_t *batch);
/* Loads batch item s (item 0 of unbatched inputs) into the interpreter's
 * inputs as the declared dtypes; int64 values outside int32 are an error. */
bool interp_files_load(const ir_graph *g, interp *it, const interp_file *ins, int n, int64_t s);
void interp_file_close(interp_file *in);
/* Runs the interpreter over `runs` batch items (1 if unbatched) and stacks
 * each output port o into stacked[o] (runs * its count floats). */
bool interp_run_batches(const ir_graph *g, interp *it, const interp_file *ins, int n, int64_t runs,
                       float *const *stacked);
/* Splits NAME=FILE for an output and finds the port; reports errors. */
bool interp_output_spec(const ir_graph *g, const char *spec, int *port, const char **path);

/* ---- cli_precision.c: the precision flags of compile, run and eval ------ */

/* True (and advances) if argv[i] is one of --calib, --calib-method,
 * --budget-bits, --max-error, --sensitivity-samples, --report, -v. */
bool cli_precision_flag(cli *c, pass_prec_options *o);
/* Checks the combination (auto needs --calib and a budget, ...). */
bool cli_precision_check(const pass_prec_options *o);
/* The usage lines of those flags. */
void cli_precision_usage(FILE *f);

/* ---- calibrate.c: the calibrate pass ------------------------------------ */

/* Statistics of one activation that feeds a linear layer or a matmul. */
typedef struct ir_calib_stats {
    int32_t node;
    int64_t count;     /* elements seen over all samples */
    float min, max;
    q_hist hist;     /* of |x| */
    int64_t channels;  /* size of the last dimension */
    double *mean_sq;   /* per channel: mean of x^2 over samples and rows */
    double *xx;        /* linear inputs, if second moments were asked for and
                        * channels <= IR_CALIB_XX_MAX: E[x x^T], channels^2 */
    double clip;       /* chosen by the method */
} ir_calib_stats;

#define IR_CALIB_XX_MAX 4096
typedef struct ir_calibration {
    bool second_moments;  /* xx collected (for :gptq and auto) */
    q_observer method;
    double percentile;
    int64_t samples;      /* calibration samples streamed */
    double seconds;
    const char *const *specs; /* the --calib NAME=FILE.npy, for later passes */
    int n_specs;
    ir_calib_stats **of_node;  /* per node: its statistics, or NULL */
    int n_observed;
    double **gptq_u;      /* per weight node: GPTQ's factor of its input's E[x x^T]^-1, cached */
    bool **gptq_dead;     /* ... and which input channels never fire */
} ir_calibration;

/* The pass: streams every calibration sample through the interpreter (f32
 * weights) and fills g->calib. No-op without --calib. Memory does not grow
 * with the number of samples. */
bool pass_calibrate(ir_graph *g, const pass_prec_options *o, bool second_moments);
/* E[x x^T] (k x k) of the inputs of the linear layers using weight node w,
 * averaged over them, in arena; NULL if not collected. */
const double *pass_calib_second_moment(const ir_graph *g, int32_t w, sup_arena *arena);
/* The int8 activation scale calibration gives the input of the linear
 * layers using weight node w: the largest clip over them / 127 (1 if the
 * activation was all zeros). */
float pass_calib_act_scale(const ir_graph *g, int32_t w);
/* Opens the calibration files (NAME=FILE.npy) for every input of g, as
 * interp_files_open; *samples gets the number of samples. */
bool pass_calib_open(const ir_graph *g, const char *const *specs, int n, interp_file *ins, int64_t *samples);

#endif
