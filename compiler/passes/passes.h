/* passes.h: the passes' header, one section per source file of
 * compiler/passes.
 *
 * One file per pass, and pipeline.c that runs them in order:
 *   parse -> build graph -> infer shapes -> fold -> calibrate -> select precision
 *   -> quantize weights -> layout -> lower -> emit,
 * with ir_verify after each. Each pass reads and changes the graph
 * (compiler/ir) using the numerics of compiler/quant, the interpreter of
 * compiler/interp and the emitter of compiler/codegen. Prefix pass_. */
#ifndef QMC_PASSES_H
#define QMC_PASSES_H

#include "codegen.h"
#include "interp.h"

/* ---- pipeline.c: the passes in order ------------------------------------ */

/* How `auto` measures sensitivities (--sensitivity): exact re-runs the model
 * for every candidate; fast measures one perturbation per matrix and
 * scales it by each candidate's error on the layer's own output; auto
 * takes exact when that is cheap (sensitivity.c). */
typedef enum pass_sens_method {
    PASS_SENS_AUTO,
    PASS_SENS_FAST,
    PASS_SENS_EXACT,
} pass_sens_method;

/* What the precision flags of compile, run and eval ask for (cli_precision.c). */
#define PASS_MAX_CALIB 64
typedef struct pass_prec_options {
    const char *precision;             /* --precision SPEC, or NULL (f32) */
    const char *calib[PASS_MAX_CALIB]; /* --calib NAME=FILE.npy, one per input */
    int n_calib;
    const char *calib_method;     /* --calib-method, or NULL (the default) */
    double budget_bits;           /* --budget-bits B, or 0 */
    double max_error;             /* --max-error E, or 0 */
    int sens_samples;             /* --sensitivity-samples N, or 0 (the default) */
    pass_sens_method sens_method; /* --sensitivity fast|exact|auto */
    bool sens_method_given;       /* --sensitivity was given */
    const char *report;           /* --report FILE.json, or NULL */
    bool verbose; /* -v: the decisions as a table on stderr (compile: and the kernels) */
} pass_prec_options;

/* An ONNX model (`qmc compile|run|eval|inspect MODEL.onnx`) is imported in
 * memory as `qmc import` would write it; these are import's options. */
#define PASS_MAX_SHAPES 64
typedef struct pass_import_options {
    fe_onnx_shape shapes[PASS_MAX_SHAPES]; /* --shape NAME=DIMS */
    int n_shapes;
    bool drop_batch; /* --drop-batch */
} pass_import_options;

/* The most external data files a model names that the pipeline records. */
#define PASS_MAX_DATA_FILES 64

typedef struct pass_options {
    const char *weights_override; /* --weights */
    pass_import_options import;   /* an ONNX model: how to import it */
    int64_t seq_len;              /* --seq: a model with a sequence, built for that many tokens */
    const char *steps;            /* --steps: the token counts a compiled step takes, or NULL */
    rt_kv_format kv_format;       /* --kv-cache */
    const char *dump_after;       /* --dump-after=PASS: print the IR after that pass */
    pass_prec_options prec;       /* calibration and precision selection */
    cg_options cg;                /* emit only: what to write, for which target */
    bool dump_ir;                 /* emit only: --dump-ir, the IR after the last pass */
    /* filled by the pipeline: files the model was read from besides the
     * model file and its weights file (an ONNX model's external data) */
    const char *data_files[PASS_MAX_DATA_FILES];
    int n_data_files;
} pass_options;

/* How far pass_pipeline goes. */
typedef enum pass_until {
    PASS_UNTIL_SHAPE,    /* parse, build graph, infer shapes */
    PASS_UNTIL_QUANTIZE, /* ... calibrate, select precision, quantize weights (and the report) */
    PASS_UNTIL_EMIT,     /* ... lower, emit */
} pass_until;

/* The whole pipeline, with ir_verify after every pass:
 *   parse -> build graph -> infer shapes -> fold -> calibrate -> select precision
 *   -> quantize weights -> lower -> emit
 * up to `until`. Returns the graph, or NULL after reporting errors. For
 * EMIT the target is resolved (and printed, --print-target) first and
 * opts->cg.output gets the path written. */
ir_graph *pass_pipeline(sup_arena *arena, const char *model_path, pass_options *opts,
                        pass_until until);
/* The names --dump-after accepts, NULL-terminated; and those only
 * qmc compile runs. */
extern const char *const pass_names[];
extern const char *const pass_compile_names[];
/* Its three stretches. parse (or import, for a path ending in .onnx) ->
 * build graph -> infer shapes. */
ir_graph *pass_pipeline_load(sup_arena *arena, const char *model_path, pass_options *opts);
/* True for a model path qmc imports from ONNX (ending in .onnx). */
bool pass_is_onnx(const char *model_path);
/* calibrate -> select precision -> quantize weights -> report, from
 * opts->prec (a NULL precision: everything f32). */
bool pass_pipeline_precision(sup_arena *arena, ir_graph *g, const pass_options *opts);
/* lower -> write the weights (quantizing them, pass_stream_weights) ->
 * report -> emit, for target t, as opts->cg asks; the graph's matrices
 * have their quantized layouts (or whole quantized forms). */
bool pass_pipeline_emit(sup_arena *arena, ir_graph *g, const cg_target *t, pass_options *opts);

/* ---- build_values.c: values during elaboration -------------------------- */

typedef struct pass_build_options {
    const char *weights_override; /* --weights FILE, or NULL */
    fe_safetensors *weights_set;  /* the weights, open already (an imported ONNX model), or NULL */
    int64_t seq_len;              /* a model with `sequence T <= N`: the T to build it for (0: N) */
    rt_kv_format kv_format;       /* ... and how its caches hold keys and values */
} pass_build_options;

/* The most arguments a builtin call takes (and tensors concat joins). */
enum { PASS_MAX_ARGS = 16 };

typedef enum pass_val_kind {
    PASS_VAL_NONE,
    PASS_VAL_INT,
    PASS_VAL_FLOAT,
    PASS_VAL_BOOL,
    PASS_VAL_STRING,
    PASS_VAL_TENSOR, /* node */
    PASS_VAL_PREFIX, /* str: a weight-name prefix such as "blocks.0" */
    PASS_VAL_LIST,   /* items */
} pass_val_kind;

typedef struct pass_value pass_value;
struct pass_value {
    pass_val_kind kind;
    int64_t i;
    double f;
    const char *str;
    int32_t node;
    pass_value *items;
    int n_items;
    sup_loc loc; /* the expression it came from */
};

/* The state of one elaboration. */
typedef struct pass_builder {
    sup_arena *arena;
    ir_graph *g;
    const pass_build_options *opts;
    struct pass_scope *globals; /* the file's constants (build_graph.c) */
    const fe_node **defs;
    int n_defs;
    int depth;                 /* function call depth */
    sup_loc outer_call;        /* the call made from the model that led to the current depth */
    int64_t statements;        /* statements run so far */
    int64_t expressions;       /* expressions evaluated so far */
    const char *context;       /* name prefix for nodes made inside a call, or NULL */
    ir_name_map node_names;    /* node name -> uses */
    ir_name_map weight_nodes;  /* tensor name -> node */
    const char **weight_names; /* all tensor names, for suggestions */
} pass_builder;

/* The article and name of a kind ("an integer"), for messages. */
const char *pass_build_kind_name(pass_val_kind k);
/* Reports an error at loc; returns false. */
bool pass_build_fail(sup_loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A unique node name: base, then base#2, base#3, ... */
const char *pass_build_unique_name(pass_builder *b, const char *base);
/* Adds an op node and infers its shape; -1 after reporting an error. */
int32_t pass_build_op(pass_builder *b, ir_op op, const int32_t *inputs, int n, sup_loc loc,
                      const ir_attrs *attr);
int32_t pass_build_const(pass_builder *b, double v, sup_loc loc);
/* The value as an integer, a number or a tensor (numbers become scalar
 * constants), or false after reporting that `what` is not one. */
bool pass_build_want_int(const pass_value *v, const char *what, int64_t *out);
bool pass_build_want_number(const pass_value *v, const char *what, double *out);
bool pass_build_want_tensor(pass_builder *b, const pass_value *v, const char *what, int32_t *out);

/* ---- build_weights.c: the weights file during elaboration ---------------- */

/* Opens the weights file: --weights if given, else the `weights` statement
 * (stmt, NULL when the model has none and --weights supplies the file). */
bool pass_build_open_weights(pass_builder *b, const fe_node *stmt);
/* The node of weight tensor t, created on first use; -1 after reporting a
 * tensor the graph cannot hold (an empty dimension, too many elements). */
int32_t pass_build_weight_node(pass_builder *b, const fe_tensor *t, sup_loc loc);
/* True if some tensor name starts with `prefix.` */
bool pass_build_is_weight_prefix(pass_builder *b, const char *prefix);

/* ---- build_builtins.c: the built-in operations --------------------------- */

typedef struct pass_call_args {
    const fe_node *call;
    pass_value v[PASS_MAX_ARGS]; /* by parameter position; PASS_VAL_NONE when not given */
    int n_variadic;              /* concat: positional tensors */
    pass_value variadic[PASS_MAX_ARGS];
} pass_call_args;

typedef bool (*pass_builtin_fn)(pass_builder *b, pass_call_args *a, pass_value *out);

/* (build_values.c) out = the tensor of a new op node on in[0..n) at the call (shape
 * inferred); false after reporting an error. */
bool pass_build_result(pass_builder *b, ir_op op, const int32_t *in, int n, pass_call_args *a,
                       const ir_attrs *attr, pass_value *out);
/* The same for an op on x whose result shape the builder computed
 * (reshape, expand, resize), checked by the shape rules. */
bool pass_build_shaped_result(pass_builder *b, ir_op op, int32_t x, pass_call_args *a,
                              const ir_attrs *attr, int rank, const int64_t *shape,
                              pass_value *out);

typedef struct pass_builtin {
    const char *name;
    int n_required;
    const char *params[8]; /* parameter names in positional order */
    pass_builtin_fn build;
    bool variadic; /* positional arguments are a list of tensors (concat) */
} pass_builtin;

/* The builtin called name, or NULL. */
const pass_builtin *pass_builtin_find(const char *name);
int pass_builtin_n_params(const pass_builtin *bi);
/* "layernorm(x, weight, bias, eps=...)": required parameters, then the
 * optional ones as keywords. */
const char *pass_builtin_signature(const pass_builtin *bi, char *buf, size_t size);
/* The builtins' names (at most max) into names; returns how many. */
int pass_builtin_names(const char **names, int max);

/* ---- build_cnn.c: the built-in operations of convolutional networks ------ */

/* conv, conv_transpose, batchnorm, maxpool, avgpool, global_avgpool,
 * resize, pad, hardsigmoid, hardswish, prelu (pass_builtin_find looks
 * here too). */
extern const pass_builtin pass_cnn_builtins[];
extern const int pass_n_cnn_builtins;

/* ---- build_graph.c: syntax tree -> graph (elaboration) ------------------ */

/* Evaluates constants, unrolls loops, inlines functions, resolves names and
 * weights, and infers every node's shape as it is created, so errors point
 * at the expression that caused them. Returns NULL after reporting errors. */
ir_graph *pass_build_graph(sup_arena *arena, const fe_node *file, const pass_build_options *opts);

/* ---- shape.c: the infer-shapes pass ------------------------------------- */

/* Re-infers every node in order (ir_infer_node_shape). */
bool pass_infer_shapes(ir_graph *g);

/* ---- fold.c: the fold pass ------------------------------------------------ */

/* Folds each batchnorm, and each chain of scalar multiplications and
 * additions, into the conv before it when nothing else reads the conv,
 * and makes the hardswish exporters write out as four ops one op (see
 * fold.c); returns the new graph, or g when nothing folds. */
ir_graph *pass_fold(sup_arena *arena, ir_graph *g);

/* ---- calibrate.c: the calibrate pass ------------------------------------ */

/* The calibration samples (--calib NAME=FILE.npy for every input), opened
 * once by the pipeline and read by calibrate, select precision and the
 * automatic selection. */
typedef struct pass_calib_data {
    interp_file ins[PASS_MAX_CALIB];
    int n;           /* 0: no --calib */
    int64_t samples; /* in every file (1 if none is batched) */
    q_observer method;
    double percentile;
} pass_calib_data;

/* Parses --calib-method and opens the calibration files for every input of
 * g (as interp_files_open); without --calib, n = 0 and nothing is checked.
 * On failure reports why and leaves nothing open; on success close with
 * pass_calib_close. */
bool pass_calib_open(const ir_graph *g, const pass_prec_options *o, pass_calib_data *d);
void pass_calib_close(pass_calib_data *d);
/* The pass: streams every calibration sample through the interpreter (f32
 * weights) and fills g->calib. No-op without calibration data. Memory does
 * not grow with the number of samples. */
bool pass_calibrate(ir_graph *g, const pass_calib_data *d, bool second_moments);
/* The interpreter's slots for a run over `samples` samples: as many as
 * PASS_BATCH_BYTES of activations hold, at most PASS_BATCH_MAX. */
#define PASS_BATCH_BYTES ((size_t)256 << 20)
#define PASS_BATCH_MAX 64
int pass_batch_slots(const ir_graph *g, int64_t samples);
/* E[x x^T] (k x k) of the inputs of the linear layers using weight node w,
 * averaged over them, in arena; NULL if not collected. */
const double *pass_calib_second_moment(const ir_graph *g, int32_t w, sup_arena *arena);
/* E[x_j^2] (k) of the same inputs, averaged likewise (the diagonal, always
 * collected: :imat's importance), in arena; NULL without calibration. */
const double *pass_calib_mean_sq(const ir_graph *g, int32_t w, sup_arena *arena);
/* The int8 activation scale calibration gives the input of the linear
 * layers using weight node w: the largest clip over them / 127 (1 if the
 * activation was all zeros). */
float pass_calib_act_scale(const ir_graph *g, int32_t w);

/* ---- fold_scales.c: the channel-scaling pass (:awq, :smooth) ------------ */

/* For the linear layers whose format asks for :awq or :smooth: per input
 * channel scales searched on the calibration statistics and folded into
 * the norm (or linear) before, the readers' weights multiplied by them,
 * then the calibration run again on data; each reader's decision says
 * what was done, or why nothing could be (d->scaling). Nothing without
 * calibration. */
bool pass_fold_scales(ir_graph *g, const pass_calib_data *data);

/* ---- precision.c: the select-precision pass ----------------------------- */

/* --precision SPEC: a default format then GLOB=FORMAT overrides, e.g.
 * "int4,lm_head.weight=int8,*.fc2.weight=fp8e4m3". FORMAT is one of f32,
 * int8, int4 (groups of 32), int4:g64, int4:g128, fp8e4m3, fp8e5m2, with
 * optional modifiers :asym (int4 with zero points), :mse (MSE clipping),
 * :minmax, :a8 (int8 activations), :static (with :a8, one calibrated
 * activation scale). FORMAT may also be `auto` (optionally auto:a8 or
 * auto:a8:static): those weights are chosen by measurement (sensitivity.c,
 * allocate.c)
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
    double budget_bits; /* average bits per weight over all weight matrices */
    double max_error;   /* output error on the calibration set */
    int sens_samples;   /* calibration samples the sensitivity measurement uses (0: default) */
    pass_sens_method sens_method;
} pass_spec;

bool pass_spec_parse(sup_arena *arena, const char *text, pass_spec *out);
bool pass_spec_has_auto(const pass_spec *spec);
bool pass_spec_has_static(const pass_spec *spec);
bool pass_spec_has_gptq(const pass_spec *spec);
bool pass_spec_has_imat(const pass_spec *spec);
bool pass_spec_has_scaling(const pass_spec *spec); /* :awq or :smooth */

/* Before calibration (spec NULL: everything f32): marks the weights used as
 * a linear layer's weight matrix and resolves each one's format: spec
 * default < source annotation (@int4) < spec override. An override that
 * matches no such weight is an error that lists them. For `auto` it lists
 * every matrix's candidates, refuses a --budget-bits below the smallest
 * achievable (before any calibration or measuring work) and plans the
 * search (pass_sens_plan), which decides whether calibration collects
 * second moments (g->selection->second_moments). Records every decision
 * in g->selection. `samples`: calibration samples there will be. */
bool pass_plan_precision(ir_graph *g, const pass_spec *spec, int64_t samples);
/* The pass, after calibration: `:static` activation scales from g->calib,
 * and the weights whose format is `auto` chosen by pass_select_auto. */
bool pass_select_precision(ir_graph *g, const pass_spec *spec, const pass_calib_data *data);
/* The :a8 / :static modifiers of the `auto` that applies (the default's,
 * else the first override's). */
q_precision pass_spec_auto_act(const pass_spec *spec);

/* ---- sensitivity.c: measuring candidates for automatic selection -------- */

/* One weight matrix during selection. */
typedef struct pass_sens_tensor {
    ir_decision *d;
    ir_node *w;
    bool automatic;
    int32_t first;     /* its first consumer */
    const float *orig; /* exact: the f32 values (fast reads rows from the weights file) */
    int fixed;         /* !automatic: the candidate that is its format */
    int cur;           /* the candidate the interpreter has, -1: f32 */
    q_error_acc *acc;  /* [candidate][output] */
    /* fast: the candidate `held` quantized (q), in its own arena */
    int held;
    q_matrix q;
    sup_arena qa;
    void *deq_scratch;
} pass_sens_tensor;

typedef struct pass_sens {
    ir_graph *g;
    sup_arena *tmp;
    interp *it;
    int slots; /* samples per run */
    bool fast;
    const pass_calib_data *data; /* the calibration samples */
    int n_out;
    int64_t *out_count, *out_row;
    float **ref;       /* per output: the f32 values of every slot */
    double **ref_logp; /* ... their log-softmax (logits) */
    q_error_acc *base; /* [output] */
    pass_sens_tensor *t;
    int n_t;
} pass_sens;

/* Before calibration: chooses the method (spec->sens_method, or for auto
 * exact when measuring every candidate is cheap), whether GPTQ candidates
 * are searched (fast: when their second moments fit PASS_FAST_XX_BYTES),
 * and lists every auto matrix's candidates with their bytes. Fills
 * g->selection's method, method_why, gptq_candidates, second_moments. */
#define PASS_FAST_XX_BYTES ((size_t)128 << 20)
void pass_sens_plan(ir_graph *g, const pass_spec *spec, const q_precision *act, int64_t samples);
/* An interpreter over g reading the calibration data, and a tensor per
 * weight matrix of g->selection (in order of first consumer); tmp holds
 * everything (freeing tmp is the only clean-up). */
bool pass_sens_open(pass_sens *c, ir_graph *g, const pass_calib_data *data, sup_arena *tmp);
void pass_sens_close(pass_sens *c);
/* The one candidate of a fixed matrix: its own format. */
void pass_sens_fixed_candidate(ir_graph *g, pass_sens_tensor *t);
/* exact: quantizes every candidate of t (dequantized values kept) and its
 * proxy error. fast: the proxy error and SQNR of every candidate, from a
 * sample of the matrix's rows; nothing is kept. */
bool pass_sens_prepare_candidates(pass_sens *c, pass_sens_tensor *t);
/* The reference candidate of the ranking, int4:g32 (min-max), or -1. */
int pass_sens_ref_candidate(const ir_decision *d);
/* exact: marks the candidates worth an end-to-end measurement. */
void pass_sens_choose_measured(ir_decision *d);
/* Room for every tensor's per-candidate, per-output errors (after the
 * candidates are listed). */
void pass_sens_alloc_acc(pass_sens *c);
/* How many samples the measurement uses (--sensitivity-samples, or enough
 * to cover 2048 output rows, at least 16, at most all; fast: at most what
 * costs about one calibration pass, at least 1). */
int pass_sens_count(const pass_sens *c, const pass_spec *spec);
/* Measures sensitivities over n_samples evenly spaced samples; base_choice:
 * the fixed tensors' formats in the base (-1: f32). exact: every candidate
 * marked measured; fast: the reference candidate, and every other
 * candidate's sensitivity estimated from it by the ratio of their proxies. */
bool pass_sens_measure(pass_sens *c, int n_samples, const int *base_choice);
/* fast: measures, end to end on the same samples, the candidate choice[i]
 * of every auto matrix where it was estimated, and re-estimates each such
 * matrix's other candidates from its nearest measured one. Returns how
 * many were measured (0: nothing to refine), -1 after reporting an error. */
int pass_sens_refine(pass_sens *c, int n_samples, const int *base_choice, const int *choice);
/* The error of one combination over every calibration sample, in the
 * user's units (err) and additive ones (err_add). */
bool pass_sens_verify(pass_sens *c, const int *choice, double *err, double *err_add);
/* The additive error of acc (mean over outputs of KL, or squared relative
 * error), a user error target in additive units, and back. */
double pass_sens_additive(const pass_sens *c, const q_error_acc *acc);
double pass_sens_additive_target(const pass_sens *c, double e);
double pass_sens_user_from_additive(const pass_sens *c, double e);

/* ---- allocate.c: choosing formats for automatic selection ---------------- */

/* Chooses the format of every matrix marked IR_FROM_AUTO in g->selection:
 * measures each candidate's end-to-end sensitivity on the calibration
 * samples (re-running only the nodes downstream of the changed weight),
 * allocates by a dynamic program over bytes (least predicted error within
 * the budget, or fewest bytes within the error), then verifies the result
 * with full runs and repairs it if it misses. */
bool pass_select_auto(ir_graph *g, const pass_spec *spec, const pass_calib_data *data);
/* Measures the sensitivity of the formats already chosen and the final
 * output error on the calibration samples, for the report of a fixed spec. */
bool pass_measure_fixed(ir_graph *g, const pass_calib_data *data);

/* ---- quantize_weights.c: the quantize-weights pass ---------------------- */

/* The precision that holds a weight's given codes (fe_quantized) as they
 * are: int8 with a scale per row, or int4 (:asym with zero points) in the
 * given groups; act8 when the model quantizes the input at run time. */
q_precision pass_given_precision(const fe_quantized *given);
/* Quantizes weight matrix node w of g to format f (not f32) into arena;
 * reports an error at the weight and returns NULL if it cannot. :gptq
 * needs g->calib with second moments, :imat g->calib. */
ir_qweight *pass_quantize_matrix(sup_arena *arena, const ir_graph *g, int32_t w,
                                 const q_precision *f);
/* GPTQ's act-order factor of weight node w and its column order (cached
 * on g->calib); reports an error at the weight and returns false if it
 * cannot be had. */
bool pass_gptq_act_factor(const ir_graph *g, int32_t w, const double **u, const bool **dead,
                          const int64_t **order);
/* :imat's importance of weight node w, E[x_j^2] of its input, in arena;
 * reports an error at the weight and returns NULL without calibration. */
const double *pass_imat_importance(const ir_graph *g, int32_t w, sup_arena *arena);
/* Quantizes every weight matrix whose precision is not f32 (ir_qweight),
 * with the numerics of compiler/quant. */
bool pass_quantize_weights(ir_graph *g);
/* The same for `qmc compile`: each such matrix gets only the layout of its
 * quantized form (shape, groups, zero points, size; no arrays, no
 * statistics), which is all lowering and codegen plan with. */
bool pass_quantize_layouts(ir_graph *g);
/* Writes the weights into the compiled model, one weight node at a time in
 * out's order: quantizes it (a matrix whose form is only a layout), has
 * codegen pack and write it (cg_weights_put), records its error statistics
 * on its ir_qweight if `measure` (a report will show them; else they stay
 * unmeasured, stats.count -1), then frees everything of it and releases its
 * input pages. Ends the stage "weights", with its parts: reading the
 * matrices, quantizing them, measuring their errors, packing and writing
 * everything. False after
 * reporting (a weight that cannot be quantized, a write error). */
bool pass_stream_weights(ir_graph *g, cg_weights *out, bool measure);

/* ---- layout.c: the layout pass ------------------------------------------ */

/* Makes the convolutional ops work on channels-last activations, with
 * transposes where the rest of the model needs ONNX's layout, and fuses a
 * conv's relu or hardswish into it (see layout.c); returns the new graph,
 * or g when it has no convolutional op. */
ir_graph *pass_layout(sup_arena *arena, ir_graph *g);

/* ---- lower.c: the lower pass (memory plan) ------------------------------ */

/* Places every activation in the workspace by liveness: a buffer is reused
 * once the last node reading it has run (first fit, 64-byte aligned). The
 * node computing an output writes straight into the caller's buffer.
 * int8_dot: the target has integer dot products (AVX-512 VNNI, aarch64
 * dotprod), which decides the scratch of linear layers
 * (ir_act_int8_rows). */
bool pass_lower(ir_graph *g, ir_plan *plan, bool int8_dot);

/* ---- specialize.c: a model with a sequence, once per step size ---------- */

/* The step sizes when --steps is not given (capped at the context). */
#define PASS_DEFAULT_STEPS "1,16,128"
/* The pass: fills g->steps with the model built for calls of each size. */
bool pass_specialize(sup_arena *arena, ir_graph *g, const pass_options *opts);

#endif
