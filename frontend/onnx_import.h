/* onnx_import.h: what the ONNX importer's files share (private to
 * onnx_fold.c, onnx_match.c and onnx_import.c; users see frontend.h).
 *
 * The importer works on values: every name in the ONNX graph (graph input,
 * initializer, node output) is one `imp_value` with its element type and,
 * once known, its shape. A value is either computed when the model runs
 * (it becomes a variable of the .qm text) or a constant known at import
 * time (an initializer, a Constant node, or a node whose inputs are all
 * constants or known shapes, evaluated by onnx_fold.c). */
#ifndef QMC_ONNX_IMPORT_H
#define QMC_ONNX_IMPORT_H

#include "frontend.h"

enum {
    IMP_MAX_RANK = RT_MAX_RANK,
    /* constants up to this many elements are evaluated at import time */
    IMP_FOLD_MAX = 1 << 22,
    /* and all of them together up to this many (bounds the memory) */
    IMP_FOLD_BUDGET = 1 << 25,
};

typedef struct imp_value {
    const char *name; /* the ONNX name */
    int dtype;        /* FE_ONNX_*; 0 if unknown */
    int rank;         /* -1 while unknown */
    int64_t dims[IMP_MAX_RANK];
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
    /* emission */
    bool live;
    const char *text; /* how the .qm names it: a variable, a weight, a number */
} imp_value;

/* What a matched pattern of several nodes becomes (onnx_match.c). */
typedef enum imp_pattern {
    IMP_PAT_NONE,
    IMP_PAT_LINEAR,    /* MatMul(x, W) [+ bias], Gemm: linear(x, W, b) */
    IMP_PAT_GELU,      /* x/2 * (1 + erf(x/sqrt2)) */
    IMP_PAT_SILU,      /* x * sigmoid(x) */
    IMP_PAT_ATTENTION, /* Reshape/Transpose/MatMul/scale/mask/Softmax/MatMul/Transpose/Reshape */
} imp_pattern;

typedef struct imp_match {
    imp_pattern kind;
    int root;         /* the last node; its output 0 is the result */
    int first;        /* the earliest node covered (for comments) */
    int n_nodes;      /* nodes covered */
    int n_ops;        /* operand values */
    int ops[4];       /* linear: x, W, bias (-1 if none); attention: q, k, v */
    bool transpose_w; /* linear: W is [K, N] and must be stored as [N, K] */
    int heads;
    bool causal;
    double scale; /* attention: 0 when it is the default 1/sqrt(head size) */
} imp_match;

typedef struct imp {
    sup_arena *arena;
    const fe_onnx_model *m;
    imp_value *values;
    int n_values;
    fe_onnx_map by_name;
    int *node_out;      /* per node: index of its first output's value (outputs are consecutive) */
    imp_match *matches; /* per node: the pattern rooted there */
    int64_t budget;     /* elements constants may still take (IMP_FOLD_BUDGET) */
} imp;

/* The value of a name ("" -> -1). */
int imp_find(const imp *p, const char *name);
/* The value index of output k of node n. */
static inline int imp_out(const imp *p, int n, int k) { return p->node_out[n] + k; }
static inline imp_value *imp_v(const imp *p, int v) { return &p->values[v]; }
/* The node's input k as a value, -1 if absent or empty. */
int imp_in(const imp *p, int n, int k);
bool imp_is_float(int dtype);
int64_t imp_count(const imp_value *v);

/* ---- onnx_fold.c ------------------------------------------------------------ */

/* Infers node n's output types and shapes and, when its inputs are known,
 * evaluates it. Unknown operators leave their outputs' shapes unknown. */
void imp_fold_node(imp *p, int n);
/* The constant's elements as numbers (computed on first use); NULL when it
 * is too large or its type is not numeric. */
const double *imp_const_f(imp *p, imp_value *v);
const int64_t *imp_const_i(imp *p, imp_value *v);
/* A constant with one element: its value. */
bool imp_const_scalar(imp *p, imp_value *v, double *out);
/* Element i of a constant (row-major over its logical dims), any size. */
double imp_const_at(imp *p, const imp_value *v, int64_t i);

/* ---- onnx_match.c ------------------------------------------------------------- */

/* Looks for a pattern ending at node n; fills p->matches[n]. */
void imp_match_node(imp *p, int n);

#endif
