/* onnx_import.h: what the ONNX importer's files share (private to
 * onnx_fold.c, onnx_match.c and onnx_import.c; users see frontend.h).
 *
 * The importer works on values: every name in the ONNX graph (graph input,
 * initializer, node output) is one `fe_imp_value` with its element type and,
 * once known, its shape. A value is either computed when the model runs
 * (it becomes a variable of the .qm text) or a constant known at import
 * time (an initializer, a Constant node, or a node whose inputs are all
 * constants or known shapes, evaluated by onnx_fold.c). */
#ifndef QMC_ONNX_IMPORT_H
#define QMC_ONNX_IMPORT_H

#include "frontend.h"

enum {
    FE_IMP_MAX_RANK = RT_MAX_RANK,
    /* constants up to this many elements are evaluated at import time */
    FE_IMP_FOLD_MAX = 1 << 22,
    /* and all of them together up to this many (bounds the memory) */
    FE_IMP_FOLD_BUDGET = 1 << 25,
};

/* How a constant was dequantized from integer codes (DequantizeLinear of
 * constants, and what onnx_lower.c makes of MatMulNBits and MatMulInteger):
 * value = (codes - zero_point) * scale with ONNX's layouts. */
typedef struct fe_imp_quant {
    const struct fe_imp_value *codes, *scale, *zero_point; /* zero_point may be NULL */
    int axis;      /* per-axis and blocked: the axis; -1: one scale */
    int64_t block; /* blocked: elements per scale along axis; 0 otherwise */
    bool act8;     /* its MatMul's input is quantized to 8 bits at run time */
    const char *how;
} fe_imp_quant;

typedef struct fe_imp_value {
    const char *name; /* the ONNX name */
    int dtype;        /* FE_ONNX_*; 0 if unknown */
    int rank;         /* -1 while unknown */
    int64_t dims[FE_IMP_MAX_RANK];
    int producer;   /* node index, -1 for graph inputs and initializers */
    int n_uses;     /* node operands plus graph outputs that read it */
    bool is_output; /* a graph output */
    bool is_input;  /* a graph input (run time) */
    /* constants: a view of a tensor of the file (same elements in the same
     * order, or the 2-D transpose when `transposed`), converted to dtype
     * when read; or values computed here (f for float types, i otherwise) */
    bool is_const;
    const fe_onnx_tensor *tensor;
    bool transposed;
    double *f;
    int64_t *i;
    const fe_imp_quant *quant; /* computed by DequantizeLinear from codes */
    /* emission */
    bool live;
    const char *text; /* how the .qm names it: a variable, a weight, a number */
} fe_imp_value;

/* What a matched pattern of several nodes becomes (onnx_match.c). */
typedef enum fe_imp_pattern {
    FE_IMP_PAT_NONE,
    FE_IMP_PAT_LINEAR,    /* MatMul(x, W) [+ bias], Gemm: linear(x, W, b) */
    FE_IMP_PAT_GELU,      /* x/2 * (1 + erf(x/sqrt2)) */
    FE_IMP_PAT_SILU,      /* x * sigmoid(x) */
    FE_IMP_PAT_ATTENTION, /* Reshape/Transpose/MatMul/scale/mask/Softmax/MatMul/Transpose/Reshape */
    FE_IMP_PAT_LAYERNORM, /* (x - mean) / sqrt(mean((x - mean)^2) + eps) [* w] [+ b] */
    FE_IMP_PAT_RMSNORM,   /* x / sqrt(mean(x^2) + eps) [* w] */
} fe_imp_pattern;

typedef struct fe_imp_match {
    fe_imp_pattern kind;
    int root;         /* the last node; its output 0 is the result */
    int first;        /* the earliest node covered (for comments) */
    int n_nodes;      /* nodes covered */
    int n_ops;        /* operand values */
    int ops[4];       /* linear: x, W, bias (-1 if none); attention: q, k, v */
    bool transpose_w; /* linear: W is [K, N] and must be stored as [N, K] */
    int heads;
    bool causal;
    double scale; /* attention: 0 when it is the default 1/sqrt(head size); norms: eps */
    /* linear: ops[0] came through QuantizeLinear -> DequantizeLinear nodes
     * act_q, act_dq (static quantization) into a weight whose codes are kept:
     * ops[0] is the QuantizeLinear's input, and the weight carries the pair's
     * scale and zero point (fe_onnx_weight.act_static) */
    bool act_static;
    float act_scale;
    int act_zero, act_type; /* as an int8 code; FE_ONNX_INT8 or FE_ONNX_UINT8 */
    int act_q, act_dq;
} fe_imp_match;

typedef struct fe_imp {
    sup_arena *arena;
    const fe_onnx_model *m;
    fe_imp_value *values;
    int n_values;
    fe_onnx_map by_name;
    int *node_out; /* per node: index of its first output's value (outputs are consecutive) */
    fe_imp_match *matches; /* per node: the pattern rooted there */
    int64_t budget;        /* elements constants may still take (FE_IMP_FOLD_BUDGET) */
} fe_imp;

/* The value of a name ("" -> -1). */
int fe_imp_find(const fe_imp *p, const char *name);
/* The value index of output k of node n. */
static inline int fe_imp_out(const fe_imp *p, int n, int k) { return p->node_out[n] + k; }
static inline fe_imp_value *fe_imp_v(const fe_imp *p, int v)
{
    QMC_ASSERT(v >= 0 && v < p->n_values);
    return &p->values[v];
}
/* The node's input k as a value, -1 if absent or empty. */
int fe_imp_in(const fe_imp *p, int n, int k);
bool fe_imp_is_float(int dtype);
int64_t fe_imp_count(const fe_imp_value *v);

/* ---- onnx_fold.c ------------------------------------------------------------ */

/* Infers node n's output types and shapes and, when its inputs are known,
 * evaluates it. Unknown operators leave their outputs' shapes unknown. */
void fe_imp_fold_node(fe_imp *p, int n);
/* The constant's elements as numbers (computed on first use); NULL when it
 * is too large or its type is not numeric. */
const double *fe_imp_const_f(fe_imp *p, fe_imp_value *v);
const int64_t *fe_imp_const_i(fe_imp *p, fe_imp_value *v);
/* A constant with one element: its value. */
bool fe_imp_const_scalar(fe_imp *p, fe_imp_value *v, double *out);
/* Element i of a constant (row-major over its logical dims), any size. */
double fe_imp_const_at(fe_imp *p, const fe_imp_value *v, int64_t i);

/* ---- onnx_lower.c ------------------------------------------------------------ */

/* The model with com.microsoft.MatMulNBits and the DynamicQuantizeLinear ->
 * MatMulInteger -> Cast -> Mul chains ONNX Runtime's quantizers write
 * replaced by DequantizeLinear of their constant codes followed by MatMul
 * (the form QDQ models have): *out shares everything else with m. */
void fe_imp_lower_quantized(sup_arena *arena, const fe_onnx_model *m, fe_onnx_model *out);

/* ---- onnx_weights.c ----------------------------------------------------------- */

/* The weight matrix that constant v (a dequantization of codes) becomes,
 * [N, K] (transpose: of v's [K, N]), keeps its codes in a qmc format of
 * integers (fe_onnx_weight_given, not FP8). */
bool fe_imp_keeps_int_codes(const fe_imp_value *v, bool transpose);

/* ---- onnx_match.c ------------------------------------------------------------- */

/* Looks for a pattern ending at node n; fills p->matches[n]. */
void fe_imp_match_node(fe_imp *p, int n);

/* ---- onnx_emit.c -------------------------------------------------------------- */

/* The state of one translation (onnx_import.c runs it). */
typedef struct fe_imp_em {
    fe_imp p;
    const fe_onnx_import_options *o;
    FILE *body;
    fe_onnx_map used;        /* identifiers and first path segments taken */
    fe_onnx_map wnames;      /* full weight names taken */
    fe_onnx_map wkeys;       /* source and layout -> weight index */
    fe_onnx_map tensor_name; /* ONNX tensor name -> index into tnames */
    const char **tnames;     /* the weight name chosen for each named tensor */
    int n_tnames;
    fe_onnx_weight *weights;
    int n_weights, cap_weights;
    const char **in_decl, **out_decl; /* the names the ports are declared with */
    fe_onnx_map bad_types;            /* op type -> index into bad */
    struct bad {
        int node, count;
        const char *why;
    } *bad;
    int n_bad;
    bool failed;
} fe_imp_em;

/* One node being translated. */
typedef struct fe_imp_node {
    fe_imp_em *e;
    int n;
    const fe_onnx_node *node;
    const char *why; /* set when the node cannot be translated for a specific reason */
} fe_imp_node;

/* Identifiers the text never uses for its variables: keywords, builtins. */
extern const char *const fe_imp_reserved[];
bool fe_imp_in_set(const char *s, const char *const *list);
bool fe_imp_is_ident(const char *s);
/* "/blocks.0/q/Add_output_0" -> "blocks_0_q_Add" */
char *fe_imp_ident_base(sup_arena *a, const char *name);
void fe_imp_take(fe_imp_em *e, const char *s);
/* An identifier not used yet: base, base_2, base_3, ... */
const char *fe_imp_unique_ident(fe_imp_em *e, const char *base);
/* Reserves the weight name for a tensor (initializer or Constant output). */
void fe_imp_name_tensor(fe_imp_em *e, const char *onnx_name, bool path_like);
/* s with characters that would end or garble a comment replaced. */
const char *fe_imp_printable(fe_imp_em *e, const char *s);
/* The shortest text that reads back as the same f32 (negative numbers in
 * parentheses); NULL if not finite. */
const char *fe_imp_number(fe_imp_em *e, double x);
/* "[1, 2, 3]" */
const char *fe_imp_int_list_text(fe_imp_em *e, const int64_t *v, int n);
/* The weight holding constant v: in its dims, their 2-D transpose, or
 * flattened; its name. */
const char *fe_imp_weight(fe_imp_em *e, fe_imp_value *v, bool transpose, bool flat);
/* A weight of d copies of x made by the import, named after node n's output
 * and `what`. */
const char *fe_imp_filled(fe_imp_em *e, int n, int64_t d, double x, const char *what);
/* The node cannot be translated for this reason (NULL, false). */
const char *fe_imp_no_text(fe_imp_node *c, const char *why);
bool fe_imp_no(fe_imp_node *c, const char *why);
/* The node's input k (NULL if absent) and its value index (-1). */
fe_imp_value *fe_imp_val(fe_imp_node *c, int k);
int fe_imp_in_idx(fe_imp_node *c, int k);
/* A tensor operand: a run-time value's variable, or a constant as a weight;
 * NULL (with a reason) otherwise. */
const char *fe_imp_tensor(fe_imp_node *c, int vi);
/* An elementwise operand: a number for a one-element constant that
 * broadcasting adds no dims for, else a tensor. */
const char *fe_imp_operand(fe_imp_node *c, int vi, int result_rank);
/* Input k as a tensor operand. */
const char *fe_imp_var_of(fe_imp_node *c, int k);
bool fe_imp_is_f32(const fe_imp_value *v);
bool fe_imp_is_index(const fe_imp_value *v);
int64_t fe_imp_attr_int(const fe_onnx_node *n, const char *name, int64_t dflt);
float fe_imp_attr_float(const fe_onnx_node *n, const char *name, float dflt);
/* Output vi is input value x under another name. */
bool fe_imp_alias(fe_imp_node *c, int vi, int x);
/* `name = expr` for output value vi (false if expr is NULL). */
bool fe_imp_emit(fe_imp_node *c, int vi, const char *expr);
bool fe_imp_same_dims(const fe_imp_value *a, const fe_imp_value *b);
/* reshape(x, dims of out), or x itself when the dims are the same. */
bool fe_imp_reshape_to(fe_imp_node *c, int out, int x);
/* The statement of a matched pattern. */
bool fe_imp_emit_match(fe_imp_node *c, const fe_imp_match *m);

/* ---- onnx_ops.c ------------------------------------------------------------------ */

/* An operator qmc translates on its own (others only inside patterns). */
bool fe_imp_known_op(const fe_onnx_node *nd);
/* Writes the statement of node c (its pattern's, or its own); false with
 * c->why set (or NULL) when it cannot. */
bool fe_imp_translate(fe_imp_node *c);

/* ---- onnx_conv.c ------------------------------------------------------------------ */

/* The output shape of node n when it is an operator of convolutional
 * networks (Conv, pooling, BatchNormalization, Resize, Pad, ...): true if
 * it is one (its shape set when it can be known), false for the others,
 * which fe_imp_fold_node infers. */
bool fe_imp_cnn_fold(fe_imp *p, int n);
/* The translation of an operator of convolutional networks, or NULL. */
typedef bool (*fe_imp_op_fn)(fe_imp_node *c);
fe_imp_op_fn fe_imp_cnn_op(const fe_onnx_node *nd);

#endif
