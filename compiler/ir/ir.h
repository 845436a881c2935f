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
    IR_OP_UNARY,     /* elementwise function attr.fn (ir_unary) of x, with attr.alpha, beta */
    IR_OP_BINARY,    /* elementwise attr.fn (ir_binary) of a, b with broadcasting; the
                      * comparisons give 1.0 where true, 0.0 where false */
    IR_OP_WHERE,     /* cond, a, b broadcast: a where cond != 0, else b */
    IR_OP_REDUCE,    /* attr.fn (ir_reduce) over the axes in the mask attr.axes; kept as
                      * size 1 with attr.keepdims, else dropped */
    IR_OP_EXPAND,    /* x broadcast to the node's shape (any dtype) */
    IR_OP_GATHER,    /* data[..., idx, ...] along attr.axis by i32 indices (negative count
                      * from the end); data f32 or i32 */
    IR_OP_CAST,      /* x as dtype attr.fn (QMC_DTYPE_F32 or QMC_DTYPE_I32): i32 to f32
                      * rounds to nearest; f32 to i32 truncates toward zero, saturating
                      * (NaN gives 0) */
    /* convolutional networks (attr.win, attr.cnn; shape_cnn.c): x is [N, C, (H,) W], or
     * [N, (H,) W, C] when attr.win.nhwc (the layout pass's channels-last form) */
    IR_OP_CONV,           /* x, w [M, C/groups·kh·kw] (the matrix view of the file's [M, C/groups,
                           * kh, kw]), optional b [M] -> [N, M, OH, OW]; attr.win.act fused */
    IR_OP_CONV_TRANSPOSE, /* x, w [C, M/groups, kh, kw], optional b [M] -> [N, M, OH, OW] */
    IR_OP_BATCHNORM,      /* x, scale, bias, mean, var [C] (inference form); attr.eps */
    IR_OP_MAXPOOL,        /* x -> windows' maxima; attr.win */
    IR_OP_AVGPOOL,        /* x -> windows' means; attr.win (count_include_pad) */
    IR_OP_GLOBAL_AVGPOOL, /* x [N, C, ...] -> [N, C, 1, ...]: the mean over the spatial axes */
    IR_OP_RESIZE,         /* x -> each axis scaled by attr.cnn.scales, to the node's shape */
    IR_OP_PAD,            /* x -> attr.cnn.pads added around each axis (attr.cnn.pad_mode) */
    IR_OP_HARDSIGMOID,    /* max(0, min(1, alpha·x + beta)); attr.cnn.alpha, beta */
    IR_OP_HARDSWISH,      /* x · max(0, min(1, x/6 + 1/2)) */
    IR_OP_PRELU,          /* x, slope (broadcast to x) -> x < 0 ? slope·x : x */
    IR_OP_COUNT
} ir_op;

/* The functions of IR_OP_UNARY (attr.fn). */
typedef enum ir_unary {
    IR_UN_EXP,
    IR_UN_LOG,
    IR_UN_SQRT,
    IR_UN_ERF,
    IR_UN_SIGMOID,
    IR_UN_ABS,
    IR_UN_FLOOR,
    IR_UN_CEIL,
    IR_UN_LEAKY_RELU,   /* x < 0 ? alpha x : x */
    IR_UN_HARD_SIGMOID, /* max(0, min(1, alpha x + beta)) */
    IR_UN_HARD_SWISH,   /* x * max(0, min(1, x / 6 + 1/2)) */
    IR_UN_CLIP,         /* min(max(x, alpha), beta); NaN stays NaN */
    IR_UN_COUNT
} ir_unary;

/* The functions of IR_OP_BINARY (attr.fn). */
typedef enum ir_binary {
    IR_BIN_POW,
    IR_BIN_MAX, /* NaN if either is NaN; -0 < +0 */
    IR_BIN_MIN,
    IR_BIN_EQUAL,
    IR_BIN_LESS,
    IR_BIN_LESS_EQUAL,
    IR_BIN_GREATER,
    IR_BIN_GREATER_EQUAL,
    IR_BIN_COUNT
} ir_binary;

/* The reductions of IR_OP_REDUCE (attr.fn). */
typedef enum ir_reduce { IR_RED_SUM, IR_RED_MEAN, IR_RED_MAX, IR_RED_MIN, IR_RED_COUNT } ir_reduce;

/* An activation fused into a convolution's output (the layout pass). */
typedef enum ir_act {
    IR_ACT_NONE,
    IR_ACT_RELU,
    IR_ACT_CLIP, /* min(max(x, act_min), act_max) */
    IR_ACT_HARDSWISH,
} ir_act;

/* The window of a convolution or pooling, in two spatial dimensions (a
 * 1-D op has a height of 1: kernel, stride and dilation 1, no padding). */
typedef struct ir_window {
    int spatial;       /* 1 or 2: the spatial axes of x */
    int64_t kernel[2]; /* height, width */
    int64_t stride[2], dilation[2];
    int64_t pad[4];         /* top, left, bottom, right (explicit after building) */
    int64_t out_pad[2];     /* conv_transpose: added at the bottom and right */
    int64_t groups;         /* conv, conv_transpose */
    bool ceil_mode;         /* pooling: output size rounded up */
    bool count_include_pad; /* avgpool: padding counts in the divisor */
    bool nhwc;              /* channels last: x [N, (H,) W, C] */
    ir_act act;             /* conv: fused activation */
    float act_min, act_max; /* IR_ACT_CLIP */
    /* conv: y · post_mul + post_add after the activation (the layout pass
     * fuses an affine map by scalar constants that follows it) */
    bool post;
    float post_mul, post_add;
} ir_window;

typedef enum ir_resize_mode { IR_RESIZE_NEAREST, IR_RESIZE_LINEAR } ir_resize_mode;
/* How an output coordinate maps to an input one (ONNX's names). */
typedef enum ir_coord_mode {
    IR_COORD_HALF_PIXEL,         /* (o + 0.5) / scale - 0.5 */
    IR_COORD_PYTORCH_HALF_PIXEL, /* the same, but 0 when the output axis has length 1 */
    IR_COORD_ALIGN_CORNERS,      /* o · (in - 1) / (out - 1) */
    IR_COORD_ASYMMETRIC,         /* o / scale */
} ir_coord_mode;
typedef enum ir_nearest_mode {
    IR_NEAREST_ROUND_PREFER_FLOOR,
    IR_NEAREST_ROUND_PREFER_CEIL,
    IR_NEAREST_FLOOR,
    IR_NEAREST_CEIL,
} ir_nearest_mode;
typedef enum ir_pad_mode { IR_PAD_CONSTANT, IR_PAD_REFLECT, IR_PAD_EDGE } ir_pad_mode;

/* Attributes of resize, pad and the hard activations. */
typedef struct ir_cnn_attrs {
    float scales[IR_MAX_RANK]; /* resize: output / input length per axis */
    ir_resize_mode mode;
    ir_coord_mode coord;
    ir_nearest_mode nearest;
    int64_t pads[2 * IR_MAX_RANK]; /* pad: begin of each axis, then end (ONNX's order) */
    ir_pad_mode pad_mode;
    float pad_value;
    float alpha, beta; /* hardsigmoid */
} ir_cnn_attrs;

typedef struct ir_attrs {
    float eps;                 /* layernorm, rmsnorm, batchnorm */
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
    ir_window win;             /* conv, conv_transpose, maxpool, avgpool, global_avgpool */
    ir_cnn_attrs cnn;          /* resize, pad, hardsigmoid */
    int fn;                    /* unary, binary, reduce: which function */
    float alpha, beta;         /* unary: the function's parameters (clip: min, max) */
    unsigned axes;             /* reduce: bit d set for each reduced axis d of the input */
    bool keepdims;             /* reduce: reduced axes stay, of size 1 */
    bool log;                  /* softmax: log of it (log_softmax) */
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
/* What the node computes as the language spells it: the op's name, or its
 * function's for unary, binary and reduce ("sigmoid", "pow",
 * "reduce_mean"), "log_softmax". */
const char *ir_node_op_name(const ir_node *n);
const char *ir_unary_name(ir_unary fn);
const char *ir_binary_name(ir_binary fn);
const char *ir_reduce_name(ir_reduce fn);
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
    IR_FROM_MODEL,      /* the codes the model came with (an imported quantized ONNX model) */
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
    const char
        *origin_text;    /* the override glob, annotation, or where the model's codes came from */
    ir_candidate *cands; /* auto: every candidate; otherwise the one format */
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
/* (shape_errors.c) "input 'x'", "weight 'fc1.weight'", "the result of
 * linear 'h'": node i as an error message names it, in buf. */
const char *ir_node_describe(const ir_graph *g, int32_t i, char *buf, size_t size);
/* (shape_errors.c) Reports fmt at node n, then a note at each distinct
 * operand ops[0..n_ops) with its shape and origin; returns false (for the
 * shape rules). */
bool ir_shape_fail(const ir_graph *g, const ir_node *n, int n_ops, const int32_t *ops,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- shape_cnn.c: shape rules of the convolutional ops -------------------- */

/* conv .. prelu: the ops of shape_cnn.c; and those of them with a window. */
bool ir_is_cnn_op(ir_op op);
bool ir_is_windowed(ir_op op);
/* An activation of a windowed op seen as images: batch, channels, height
 * (1 for a 1-D op), width, and the element stride of each. */
typedef struct ir_image {
    int64_t n, c, h, w;
    int64_t sn, sc, sh, sw;
} ir_image;
ir_image ir_image_of(const int64_t *shape, int spatial, bool nhwc);
/* How many windows of k (dilated by dil, sliding by stride) fit in in
 * padded by pb and pe; with ceil_mode a partial last window counts unless
 * it would start in the end padding. 0 if none fits. */
int64_t ir_window_out(int64_t in, int64_t k, int64_t stride, int64_t dil, int64_t pb, int64_t pe,
                      bool ceil_mode);
/* Where output index o of resize's axis d (of input length in) reads: the
 * neighbours i0 and i1, clamped to the axis, and the weight of i1 (0 for
 * nearest, where i0 = i1): ONNX's coordinate transforms and rounding. */
void ir_resize_source(const ir_cnn_attrs *a, int d, int64_t in, int64_t o, int64_t *i0, int64_t *i1,
                      float *frac);
/* The input index output index o of a padded axis of length n reads
 * (begin: the padding before it), or -1 for the constant. */
int64_t ir_pad_source(ir_pad_mode mode, int64_t o, int64_t begin, int64_t n);
/* The shape rule of a convolutional op (called by ir_infer_node_shape). */
bool ir_infer_cnn_shape(ir_graph *g, ir_node *n);

/* ---- plan_cnn.c: what a convolution's kernel reads ------------------------ */

typedef enum ir_conv_kernel {
    IR_CONV_DENSE,     /* tiles of pixels x output channels of a group */
    IR_CONV_DEPTHWISE, /* groups = C = M: vectors of channels */
    IR_CONV_GENERIC,   /* anything else (few output channels per group) */
} ir_conv_kernel;
ir_conv_kernel ir_conv_kernel_of(const ir_graph *g, const ir_node *n);

/* Rows of an image whose maximum one task takes (`:a8`'s scales). */
enum { IR_CONV_MAX_ROWS = 8 };
/* A channels-last conv's scratch: its input copied with the padding made
 * explicit and, with `:a8`, quantized (per pixel or per image). The copy
 * is [N][hp][wp][cs] of f32 or int8 codes (cs = groups · cgp, a group's
 * channels padded with zeros to cgp); the scales one f32 per image (per
 * copied pixel); the partial maxima one f32 per image and chunk of
 * IR_CONV_MAX_ROWS rows. Without a copy the kernel reads x as it is (hp,
 * wp, cs: x's). Offsets in bytes. */
typedef struct ir_conv_input {
    ir_conv_kernel kernel;
    bool act8;      /* quantized (the weight's precision has :a8) */
    bool per_pixel; /* ... each pixel read with its own scale (ir_conv_pointwise) */
    bool int8;      /* the copy holds int8 codes (integer dot products), else floats */
    bool copy;      /* the kernel reads the copy (padding or :a8), else x */
    int64_t hp, wp, cs, cgp;
    int64_t sh, sw; /* the stride of windows in the source (1 in a per-pixel copy) */
    int64_t scales, partial, bytes;
} ir_conv_input;
/* A conv that is a linear layer over pixels (1x1, one group, no padding):
 * `:a8` quantizes each pixel it reads with its own scale. */
bool ir_conv_pointwise(const ir_node *n);
/* Whether conv n quantizes its input to int8 (its weight's precision has
 * `:a8`, and it is not depthwise: those keep f32 activations). */
bool ir_conv_act8(const ir_graph *g, const ir_node *n);
ir_conv_input ir_conv_input_layout(const ir_graph *g, const ir_node *n, bool int8_dot);

/* ---- rewrite.c: a new graph made from an old one -------------------------- */

/* Copying src's nodes in order into dst (src's ports and model data; no
 * calibration or selection, which name src's nodes): map[old] is the new
 * index of an old node once copied, or what a pass made it stand for. */
typedef struct ir_rewrite {
    const ir_graph *src;
    ir_graph *dst;
    int32_t *map;
} ir_rewrite;
void ir_rewrite_begin(sup_arena *arena, const ir_graph *src, ir_rewrite *rw);
/* Copies old node i with its operands renumbered (they must be mapped). */
int32_t ir_rewrite_copy(ir_rewrite *rw, int32_t i);
/* Appends a node whose operands are already new indices. */
int32_t ir_rewrite_add(ir_rewrite *rw, const ir_node *n);
/* The new graph, its ports and caches renumbered. */
ir_graph *ir_rewrite_end(ir_rewrite *rw);
/* g without the nodes no output (or cache) needs; inputs stay. */
ir_graph *ir_prune(sup_arena *arena, const ir_graph *g);
/* Per node: how many operands and outputs refer to it. */
int32_t *ir_use_counts(sup_arena *arena, const ir_graph *g);

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
