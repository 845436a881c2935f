/* ir.h: the graph IR's header, one section per source file of compiler/ir.
 *
 * The graph is an array of nodes referenced by index, each with op, dtype,
 * shape, inputs, attributes, precision and source location; the passes
 * (compiler/passes) build it and record on it what they decide
 * (calibration statistics, precision decisions). Here too: per-node shape
 * rules, the verifier every pass is followed by, the textual dump, the
 * precision report, and the memory plan that lower fills and codegen reads.
 * Prefix ir_ (IR_ for constants). */
#ifndef QMC_IR_H
#define QMC_IR_H

#include "frontend.h"
#include "quant.h"

/* ---- ir.c: the graph IR ------------------------------------------------ */

#define IR_MAX_RANK RT_MAX_RANK
/* No tensor has more elements (keeps every size computation in range). */
#define IR_MAX_ELEMENTS ((int64_t)1 << 40)

typedef enum ir_op {
    IR_OP_INPUT,  /* a model input; name = input name */
    IR_OP_WEIGHT, /* a tensor of the weights file, as f32; name = tensor name */
    IR_OP_CONST,  /* a scalar f32 constant (attr.value), shape [] */
    IR_OP_LINEAR, /* x[..., K], W[N, K], optional b[N] -> x·Wᵀ + b [..., N] */
    IR_OP_MATMUL, /* a[..., M, K] · b[..., K, N], batch dims broadcast */
    IR_OP_ADD,    /* elementwise with numpy broadcasting */
    IR_OP_SUB,
    IR_OP_MUL,
    IR_OP_DIV,
    IR_OP_RELU,
    IR_OP_GELU, /* exact: x/2 * (1 + erf(x/sqrt 2)) */
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
    IR_OP_ATTENTION, /* q [T, H*d], k [S, KVH*d], v [S, KVH*dv] -> [T, H*dv]; attr.heads,
                      * attr.kv_heads (query head h uses kv head h / (H/KVH)), attr.causal,
                      * attr.scale; attr.cached: k and v are appended to cache attr.slot
                      * at the model's position and the queries attend to the cache */
    IR_OP_ROPE,      /* x [T, H*d] -> rotary position embedding of each head at the
                      * absolute positions pos .. pos+T-1; attr.heads, attr.theta,
                      * attr.interleaved (GPT-J pairs) or not (rotate-half, as HF) */
    IR_OP_POSITIONS, /* no inputs -> i32 [T]: the absolute positions pos .. pos+T-1 */
    IR_OP_COUNT
} ir_op;

typedef struct ir_attrs {
    float eps;                 /* layernorm, rmsnorm */
    float value;               /* const */
    float scale;               /* attention: multiplies q·kᵀ */
    int axis;                  /* softmax, slice, concat (non-negative after building) */
    int heads;                 /* attention, rope */
    int kv_heads;              /* attention: key/value heads (heads when they are as many) */
    bool causal;               /* attention */
    bool cached;               /* attention: through the KV cache attr.slot */
    int slot;                  /* attention: its cache, 0 .. g->n_caches - 1 */
    bool interleaved;          /* rope: pairs (2i, 2i+1), else (i, i + d/2) */
    float theta;               /* rope: the base of the angles */
    int64_t start, end;        /* slice */
    int64_t perm[IR_MAX_RANK]; /* transpose */
} ir_attrs;

/* The quantized form of a weight matrix W[n, k], in ONNX's conventions:
 * one code byte per element (int8 two's complement, int4 sign-extended,
 * uint4 0..15, FP8 raw), k padded with zeros to a multiple of the group.
 * `qmc compile` keeps only its layout (the arrays NULL, stats.count -1
 * until the weight is streamed into the output: pass_stream_weights). */
typedef struct ir_qweight {
    q_precision f;
    int64_t n, k, kp;       /* rows, columns, columns padded to the group */
    int64_t group;          /* columns per scale (kp when per channel) */
    int64_t n_groups;       /* kp / group */
    bool zero_point;        /* has zero points (asymmetric formats) */
    uint8_t *codes;         /* [n][kp] */
    float *scales;          /* [n][n_groups] */
    int32_t *zero_points;   /* [n][n_groups], or NULL (symmetric) */
    float *dequant;         /* [n][k]: the values the interpreter multiplies with */
    q_error_stats stats;    /* dequant against the original weight */
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
    sup_loc loc;      /* where the source created it */
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
    sup_loc loc; /* the declaration */
    bool logits; /* `@logits`: the output holds logits (error measured as KL) */
} ir_port;

/* A model that keeps state between calls (`sequence T <= N`): each call
 * takes T tokens at positions pos .. pos+T-1 (T from 1 to the context at
 * run time; the graph is built for one value of T, seq_len), and each
 * cached attention keeps the keys and values of every position so far. */
typedef struct ir_cache {
    int32_t node;         /* the attention that owns it */
    int64_t k_dim, v_dim; /* features of a key and of a value (kv heads * head size) */
    int kv_heads;
} ir_cache;

typedef struct ir_graph {
    sup_arena *arena;
    const char *name;   /* the model's name */
    const char *source; /* path of the model file */
    ir_node *nodes;
    int n_nodes, cap_nodes;
    ir_port *inputs, *outputs;
    int n_inputs, n_outputs;
    fe_safetensors *weights;        /* NULL if the model uses none */
    const char *weights_spec;       /* the file as written in the model (or --weights) */
    sup_loc weights_loc;            /* the `weights` statement */
    struct ir_calibration *calib;   /* calibrate: activation statistics, or NULL */
    struct ir_selection *selection; /* select precision: why each matrix got its format */
    /* `sequence NAME <= N`: context N > 0, the graph built for T = seq_len */
    int64_t context, seq_len;
    const char *seq_name;
    sup_loc seq_loc;
    ir_cache *caches; /* one per cached attention, in node order */
    int n_caches;
    rt_kv_format kv_format; /* how the caches hold keys and values (--kv-cache) */
    /* compile: the graph specialised for calls of a few token counts (the
     * steps; filled by the pipeline, lowered each) */
    struct ir_step *steps;
    int n_steps;
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

/* What the calibrate pass records on the graph (g->calib): statistics of
 * one activation that feeds a linear layer or a matmul, ... */
typedef struct ir_calib_stats {
    int32_t node;
    int64_t count; /* elements seen over all samples */
    float min, max;
    q_hist hist;      /* of |x| */
    int64_t channels; /* size of the last dimension */
    double *mean_sq;  /* per channel: mean of x^2 over samples and rows */
    float *absmax;    /* per channel: the largest |x| (SmoothQuant's migration) */
    float *rows;      /* inputs of :awq / :smooth layers: every row_stride-th row over
                       * the samples, at most IR_CALIB_ROWS (their scales' search) */
    int64_t n_rows, row_stride;
    double *xx;  /* linear inputs, if second moments were asked for and
                  * channels <= IR_CALIB_XX_MAX: E[x x^T], channels^2 */
    double clip; /* chosen by the method */
} ir_calib_stats;

#define IR_CALIB_XX_MAX 4096
#define IR_CALIB_ROWS 512
/* ... and all of them. */
typedef struct ir_calibration {
    bool second_moments; /* xx collected (for :gptq and auto) */
    q_observer method;
    double percentile;
    int64_t samples; /* calibration samples streamed */
    double seconds;
    ir_calib_stats **of_node; /* per node: its statistics, or NULL */
    int n_observed;
    double **gptq_u;      /* per weight node: GPTQ's factor of its input's E[x x^T]^-1, cached */
    bool **gptq_dead;     /* ... and which input channels never fire */
    double **gptq_u_act;  /* ... the same for act-order (the reordered E[x x^T]), ... */
    bool **gptq_dead_act; /* ... (in that order) */
    int64_t **gptq_order; /* ... and the order */
    float **ref_out;      /* per output port: the f32 model's values on every sample
                           * (samples x its count), or NULL when too large to keep */
} ir_calibration;

/* What the select-precision pass records on the graph (g->selection):
 * where a weight matrix's format came from, ... */
typedef enum ir_origin {
    IR_FROM_NONE,       /* no --precision: f32 */
    IR_FROM_DEFAULT,    /* the spec's default format */
    IR_FROM_ANNOTATION, /* the model's `@int4` */
    IR_FROM_OVERRIDE,   /* GLOB=FORMAT */
    IR_FROM_AUTO,       /* chosen by measurement */
} ir_origin;

/* ... one format measured for one weight matrix, ... */
typedef struct ir_candidate {
    q_precision f;
    size_t bytes; /* codes + scales + zero points (4 per weight for f32) */
    double bits_per_weight;
    double sqnr_db;       /* of the weight itself (+inf for f32) */
    double proxy;         /* the layer's output noise relative to its signal,
                           * sum (dW_ij^2 E[x_j^2]) / sum (W_ij^2 E[x_j^2]) */
    bool measured;        /* measured end to end (exact: the best proxy among
                           * candidates of the same size, and int4:g32; fast:
                           * int4:g32 only) */
    double sensitivity;   /* output error added on the calibration set when this
                           * matrix alone takes this format (fast: measured, or
                           * estimated as gain x proxy); < 0: unknown */
    const float *dequant; /* [n][k] while selecting; NULL afterwards */
} ir_candidate;

/* ... the decision for one weight matrix, ... */
typedef struct ir_decision {
    int32_t node;
    ir_origin origin;
    const char *origin_text; /* the override glob or annotation */
    ir_candidate *cands;     /* auto: every candidate; otherwise the one format */
    int n_cands, chosen;
    double sensitivity;     /* of the chosen format, or < 0 if not measured */
    double sensitivity_ref; /* at the reference format int4:g32, for ranking, or < 0 */
    double gain;            /* fast: measured sensitivity / proxy at int4:g32, or < 0 */
    int rank;               /* 1 = most sensitive at int4:g32; 0 unranked */
    const char *why;
    const char *scaling; /* :awq / :smooth: the scales found and where they went, or why
                          * none could be folded (fold_scales.c); NULL otherwise */
} ir_decision;

/* ... and what it decided and measured (the report's contents). */
typedef struct ir_selection {
    ir_decision *d; /* one per weight matrix, in node order */
    int n;
    const char *spec_text;
    bool automatic;
    const char *method;     /* auto: "fast" or "exact" (how sensitivities were measured) */
    const char *method_why; /* ... and why, and whether GPTQ candidates were searched */
    bool gptq_candidates;   /* auto: GPTQ rounding among the candidates */
    bool second_moments;    /* calibration collects E[x x^T] (GPTQ needs it) */
    double budget_bits, max_error;
    const char *metric;     /* "kl", "rel_rms" or "mixed": how output error is measured */
    double calib_error;     /* of the final model on the calibration set; < 0 unknown */
    double predicted_error; /* auto: what the allocation predicted; < 0 unknown */
    double fixed_error;     /* auto: the (additive) error of the formats the spec fixed, alone */
    int sens_samples;       /* samples the sensitivity measurement used */
    int verify_runs;        /* full runs to verify and repair */
    double seconds;         /* measuring and allocating */
    const char *note;       /* a remark on the search (repair, fallback), or NULL */
} ir_selection;

/* ---- shape.c: shape inference ------------------------------------------ */

/* Computes the dtype and shape of node `index` from its inputs and
 * attributes. On a mismatch reports an error (with notes on where each
 * operand came from) and returns false. */
bool ir_infer_node_shape(ir_graph *g, int32_t index);

/* ---- verify.c: IR invariants ------------------------------------------- */

/* Checks the structural invariants every pass must keep (inputs defined
 * before use, arities, shapes consistent with inference, names unique,
 * ports valid). Reports an internal error and returns false if broken. */
bool ir_verify(const ir_graph *g, const char *after_pass);

/* ---- dump.c: the textual IR -------------------------------------------- */

/* Writes the graph in its readable text form (see docs/ir.md). */
void ir_dump(FILE *out, const ir_graph *g);

/* ---- report.c: what precision selection decided --------------------------- */

/* Writes the JSON report (see docs/calibration.md for the fields). */
bool ir_report_write_json(const ir_graph *g, const char *path);
/* The readable table of -v. */
void ir_report_print_table(const ir_graph *g, FILE *out);

/* ---- plan.c: the memory plan (filled by the lower pass) ------------------ */

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
    ir_buffer *buf;          /* per node */
    int64_t workspace_size;  /* bytes, a multiple of 64 */
    int64_t peak_live_bytes; /* the largest set of activations (and scratch) alive at once */
    int32_t *output_copies;  /* per output port: node to copy into it, or -1 */
} ir_plan;

/* One specialisation of a model with a sequence: the graph built for calls
 * of `tokens` tokens, with the precision decisions of the model's graph,
 * and its memory plan. */
typedef struct ir_step {
    int64_t tokens;
    ir_graph *g;
    ir_plan plan;
} ir_step;

/* Where a model with a sequence keeps its state (the caller's memory): a
 * 64-byte header (the position), then per cache its keys [context][k_dim]
 * and values [context][v_dim] in the cache's format (f32, or one byte per
 * value followed by the scales [context][kv_heads] f32), each range 64-byte
 * aligned. */
enum { IR_STATE_HEADER = 64 };
typedef struct ir_state {
    int64_t size;
    int64_t *k, *v;             /* per cache: its keys' and values' offsets */
    int64_t *k_scale, *v_scale; /* ... and their scales' (quantized formats) */
} ir_state;
ir_state ir_state_layout(sup_arena *arena, const ir_graph *g);

/* The workspace of a model with a sequence: any step's plan, then where a
 * step's rows of each input, then each output, are staged (staging[port]:
 * room for the largest step's rows), as qmc_model_step expects. */
typedef struct ir_seq_workspace {
    int64_t size;
    int64_t *staging; /* n_inputs + n_outputs byte offsets */
} ir_seq_workspace;
ir_seq_workspace ir_sequence_workspace(sup_arena *arena, const ir_graph *g);

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
/* The scratch of an attention node, per key/value head (the thread pool
 * takes key/value heads, each with the query heads that read it): the
 * scores of a block of up to IR_ATTN_QUERY_BLOCK queries, the head's keys
 * transposed (kT[hd][stride]) and, through a quantized cache, its values
 * decoded ([keys][hv]); every row `stride` floats apart: the keys (the
 * context through a cache) rounded up to an odd multiple of 16, so that the
 * rows of kT fall in different L1 sets (a multiple of 4 KB apart they all
 * share one). */
enum { IR_ATTN_QUERY_BLOCK = 8 };
typedef struct ir_attn_scratch {
    int64_t stride;      /* floats between score rows and kT rows */
    int64_t per_kv_head; /* floats of one key/value head's scratch */
    int kv_heads;
} ir_attn_scratch;
ir_attn_scratch ir_attention_scratch(const ir_graph *g, const ir_node *n);
/* v rounded up to a multiple of 64 (the plan's alignment). */
int64_t ir_align64(int64_t v);

#endif
