/* frontend.h: the frontend's internal header, one section per source file.
 *
 * The frontend reads everything a user hands to qmc (model source, weights
 * files, JSON) and reports what is wrong with it as
 * `file:line:col: error: message` with the source line and a caret
 * (through compiler/support's diagnostics). */
#ifndef QMC_FRONTEND_H
#define QMC_FRONTEND_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qmc_runtime.h"
#include "rt.h"
#include "support.h"

/* ---- json.c: a strict JSON reader -------------------------------------- */

typedef enum fe_json_kind {
    FE_JSON_NULL,
    FE_JSON_BOOL,
    FE_JSON_NUMBER,
    FE_JSON_STRING,
    FE_JSON_ARRAY,
    FE_JSON_OBJECT,
} fe_json_kind;

typedef struct fe_json fe_json;
struct fe_json {
    fe_json_kind kind;
    bool boolean;
    bool is_integer; /* a number written without fraction or exponent */
    double number;
    int64_t integer;    /* valid when is_integer and it fits */
    const char *string; /* NUL-terminated, decoded */
    size_t string_len;
    int count;         /* array items or object members */
    fe_json **items;   /* array items / object values */
    const char **keys; /* object keys, in file order */
    size_t offset;     /* byte offset where the value starts */
};

/* Parses text[0..len). On failure returns NULL, writes a reason into err and
 * the byte offset of the problem into *err_offset. Duplicate object keys are
 * an error. Nesting deeper than 64 is an error. */
fe_json *fe_json_parse(sup_arena *arena, const char *text, size_t len, char *err, size_t err_size,
                       size_t *err_offset);
/* The member of an object with this key, or NULL. */
const fe_json *fe_json_get(const fe_json *object, const char *key);

/* ---- safetensors.c: the weights file ----------------------------------- */

/* A weight matrix that arrived quantized (an ONNX model's DequantizeLinear
 * of integer codes, com.microsoft.MatMulNBits, MatMulInteger): its codes
 * and scales for the [rows, cols] matrix the tensor holds (linear's
 * [N, K]), in one of the forms qmc's weight formats store: 8-bit signed
 * or FP8 codes with one scale per row, or 4-bit codes in groups of 32, 64 or 128
 * along a row (signed, or unsigned with a zero point per group). The
 * tensor's f32 data is exactly (code - zero point) * scale. */
typedef struct fe_quantized {
    int bits;                   /* 8 or 4 */
    int fp8;                    /* FP8 codes (8 bits): FE_ONNX_FLOAT8E4M3FN or _E5M2; else 0 */
    bool asym;                  /* codes 0..15 and a zero point per group (4 bits only) */
    int64_t group;              /* elements per scale along a row (cols for 8 bits) */
    const uint8_t *codes;       /* rows * cols, one per byte (signed ones as two's complement) */
    const float *scales;        /* rows * ceil(cols / group), any sign */
    const uint8_t *zero_points; /* asym: as scales; else NULL */
    bool scales_f32;            /* 4 bits: a scale that f16 does not hold exactly (qmc's groups then
                                 * keep f32 scales, :sf32) */
    bool act8;                  /* the model quantizes the matrix's input to 8 bits at run time */
    bool act_static;            /* ... with one scale and zero point of its own (QuantizeLinear ->
                                 * DequantizeLinear of the input: static quantization) */
    float act_scale;            /* act_static: the input's scale */
    int act_zero;               /* act_static: its zero point as an int8 code (a uint8 zero
                                 * point minus 128), in [-128, 127] */
    const char *how;            /* where the codes came from, for reports ("MatMulNBits, ...") */
} fe_quantized;

typedef struct fe_tensor {
    const char *name;
    qmc_dtype dtype; /* F32, F16 or BF16 */
    int rank;
    int64_t shape[RT_MAX_RANK];
    int64_t count;
    const void *data;          /* into the mapping; may be misaligned for the dtype */
    size_t size;               /* bytes */
    size_t file_offset;        /* where the data starts in its file */
    int file;                  /* which file holds it (fe_safetensors.files) */
    bool mapped;               /* data is in a file mapping (fe_tensor_release drops its pages) */
    const fe_quantized *given; /* the codes the model came with (an imported ONNX model) */
} fe_tensor;

/* The tensors of one safetensors file, or of every shard of a sharded
 * checkpoint (checkpoint.c), as one set. */
typedef struct fe_safetensors {
    const char *path;              /* as opened: the file, the index or the folder */
    rt_mapped_file *files;         /* the mapped files (one, or one per shard) */
    const char *const *file_names; /* ... as the index names them (the path for one file) */
    int n_files;
    const char *const *sources; /* every file read, as paths: the index if any, then the
                                 * files (for dependency lists) */
    int n_sources;
    fe_tensor *tensors; /* sorted by name */
    int count;
} fe_safetensors;

/* Some of the n scales is not exactly an IEEE binary16 value (f16 would
 * round it). */
bool fe_scales_need_f32(const float *scales, int64_t n);

/* Opens and fully validates a safetensors file: header length, JSON,
 * dtypes, shapes, offsets in range, no overlaps, sizes consistent. On
 * failure returns the status and a one-line reason in err (without the
 * file name). Tensor data stays memory-mapped. */
qmc_status fe_safetensors_open(sup_arena *arena, const char *path, fe_safetensors *out, char *err,
                               size_t err_size);
/* Validates a safetensors image held in memory (used by open and the fuzzer). */
qmc_status fe_safetensors_parse(sup_arena *arena, const uint8_t *data, size_t size,
                                fe_safetensors *out, char *err, size_t err_size);
const fe_tensor *fe_safetensors_find(const fe_safetensors *st, const char *name);
/* Unmaps every file (the tensors' data with them). */
void fe_safetensors_close(fe_safetensors *st);

/* Converts a tensor's elements to f32 (f32 copies, f16/bf16 widen), or
 * elements [begin, end) of it. */
void fe_tensor_to_f32(const fe_tensor *t, float *out);
void fe_tensor_to_f32_range(const fe_tensor *t, int64_t begin, int64_t end, float *out);
/* Done with a tensor for now: the pages of its mapping leave the process
 * (MADV_DONTNEED; they stay in the page cache and come back if it is read
 * again), so that reading a model one tensor at a time keeps the resident
 * set at one tensor. Nothing for data not mapped from a file. */
void fe_tensor_release(const fe_tensor *t);
/* The same for elements [begin, end) (a tensor read in chunks). */
void fe_tensor_release_range(const fe_tensor *t, int64_t begin, int64_t end);

/* ---- checkpoint.c: weights from a file, a sharded checkpoint or a folder */

/* Opens the weights a `weights` statement or --weights names:
 *   a safetensors file;
 *   the index of a Hugging Face sharded checkpoint (a path ending in .json,
 *   e.g. model.safetensors.index.json): {"weight_map": {tensor: shard}},
 *   each shard a file in the index's folder, validated as a single file;
 *   a folder: its model.safetensors.index.json, else its model.safetensors.
 * The result is one set of tensors whatever the form; every tensor the index
 * lists is in the shard it names and every tensor of a shard is listed
 * for that shard. On failure: QMC_ERR_IO or QMC_ERR_FORMAT and a one-line
 * reason (naming the shard) in err; nothing stays mapped. */
qmc_status fe_checkpoint_open(sup_arena *arena, const char *path, fe_safetensors *out, char *err,
                              size_t err_size);

/* ---- ast.c: the syntax tree -------------------------------------------- */

typedef enum fe_kind {
    /* expressions */
    FE_INT,    /* ival */
    FE_FLOAT,  /* fval */
    FE_BOOL,   /* ival 0/1 */
    FE_STRING, /* str */
    FE_PATH,   /* list: segments (FE_SEG); a name or a dotted weight path */
    FE_CALL,   /* name(list); items may be FE_KWARG */
    FE_KWARG,  /* name = lhs */
    FE_BINARY, /* lhs op rhs, op one of + - * / */
    FE_NEG,    /* -lhs */
    FE_LIST,   /* [list] */
    FE_ANNOT,  /* lhs @name */
    /* path segments: a segment is a sequence of parts glued together */
    FE_SEG,       /* list: parts */
    FE_PART_NAME, /* str */
    FE_PART_INT,  /* ival */
    FE_PART_EXPR, /* {lhs} */
    /* types */
    FE_TYPE, /* name = dtype, list = dimension expressions */
    /* statements */
    FE_WEIGHTS,    /* weights "str" */
    FE_INPUT,      /* input name : type, list = annotations (FE_ANNOT_NAME) */
    FE_OUTPUT,     /* output name : type, list = annotations */
    FE_CONST,      /* const name = lhs */
    FE_ASSIGN,     /* name = lhs */
    FE_FOR,        /* for name in lhs .. rhs { body } */
    FE_RETURN,     /* return lhs */
    FE_SEQUENCE,   /* sequence name <= lhs */
    FE_ANNOT_NAME, /* @name on a declaration */
    /* top level */
    FE_DEF,   /* def name(list of FE_PARAM) { body } */
    FE_PARAM, /* name */
    FE_MODEL, /* model name { body } */
    FE_FILE,  /* body = items */
} fe_kind;

typedef struct fe_node fe_node;
typedef struct fe_list {
    fe_node **items;
    int count, cap;
} fe_list;

struct fe_node {
    fe_kind kind;
    sup_loc loc;
    const char *name;
    const char *str;
    int64_t ival;
    double fval;
    char op;
    fe_node *lhs, *rhs, *type;
    fe_list list; /* arguments, segments, parts, dims, params, annotations */
    fe_list body; /* statements */
};

fe_node *fe_node_new(sup_arena *arena, fe_kind kind, sup_loc loc);
void fe_list_push(sup_arena *arena, fe_list *list, fe_node *node);
/* Name of a node kind for dumps and internal errors. */
const char *fe_kind_name(fe_kind kind);
/* Prints a path like `blocks.{i}.q.weight` (as written) into the arena. */
const char *fe_path_text(sup_arena *arena, const fe_node *path);
/* Writes the tree in an indented, one-node-per-line form (for tests). */
void fe_ast_dump(FILE *out, const fe_node *node, int indent);

/* ---- parse.c: source file to syntax tree ------------------------------- */

/* Reads and parses a model file. On syntax errors, reports them (as many as
 * can be recovered) and returns NULL. The source text is registered with
 * diagnostics. */
fe_node *fe_parse_file(sup_arena *arena, const char *path);
/* Parses text already in memory; path names it in diagnostics. */
fe_node *fe_parse_text(sup_arena *arena, const char *path, const char *text, size_t len);

/* ---- lexer.l: tokens (for tests) --------------------------------------- */

/* Tokenises text and writes one token per line (kind, text, line:col) into
 * out; returns the number of tokens, or -1 after reporting a lexical error. */
int fe_lex_dump(sup_arena *arena, const char *path, const char *text, size_t len, FILE *out);

/* ---- onnx.c: ONNX model files ------------------------------------------ */

/* ONNX's TensorProto.DataType codes, including those newer than the 1.12
 * schema qmc is built with (17-22). */
enum {
    FE_ONNX_UNDEFINED = 0,
    FE_ONNX_FLOAT = 1,
    FE_ONNX_UINT8 = 2,
    FE_ONNX_INT8 = 3,
    FE_ONNX_UINT16 = 4,
    FE_ONNX_INT16 = 5,
    FE_ONNX_INT32 = 6,
    FE_ONNX_INT64 = 7,
    FE_ONNX_STRING = 8,
    FE_ONNX_BOOL = 9,
    FE_ONNX_FLOAT16 = 10,
    FE_ONNX_DOUBLE = 11,
    FE_ONNX_UINT32 = 12,
    FE_ONNX_UINT64 = 13,
    FE_ONNX_COMPLEX64 = 14,
    FE_ONNX_COMPLEX128 = 15,
    FE_ONNX_BFLOAT16 = 16,
    FE_ONNX_FLOAT8E4M3FN = 17,
    FE_ONNX_FLOAT8E4M3FNUZ = 18,
    FE_ONNX_FLOAT8E5M2 = 19,
    FE_ONNX_FLOAT8E5M2FNUZ = 20,
    FE_ONNX_UINT4 = 21,
    FE_ONNX_INT4 = 22,
    FE_ONNX_DTYPE_COUNT
};

/* Limits that keep a small file from describing an enormous object. */
#define FE_ONNX_MAX_RANK 64

/* The ONNX name of a data type ("float", "int64", "float8e4m3fn"), or NULL
 * for a code qmc does not know. */
const char *fe_onnx_dtype_name(int dtype);
/* Bits per element (4 for int4/uint4); 0 for strings and unknown codes. */
int fe_onnx_dtype_bits(int dtype);

/* A tensor: an initializer, the value of a Constant node or a tensor
 * attribute. Data is little-endian and packed as ONNX's raw_data is (int4:
 * element 2i in the low nibble of byte i), whatever field the file used. */
typedef struct fe_onnx_tensor {
    const char *name; /* "" for an unnamed attribute tensor */
    int dtype;        /* FE_ONNX_* */
    int rank;
    const int64_t *dims;
    int64_t count;              /* elements: the product of dims */
    const void *data;           /* NULL when count is 0; may be unaligned (external data) */
    size_t size;                /* bytes: ceil(count * bits / 8) */
    bool external;              /* read from an external data file */
    const char *const *strings; /* dtype STRING: count strings (NUL-terminated) */
} fe_onnx_tensor;

/* A dimension of a graph input or output: a number, or a symbolic name
 * (param != NULL), or unknown (value < 0 and param == NULL). */
typedef struct fe_onnx_dim {
    int64_t value;
    const char *param;
} fe_onnx_dim;

typedef struct fe_onnx_value_info {
    const char *name;
    int elem_type; /* FE_ONNX_*; 0 if not given or not a tensor */
    int rank;      /* -1 if the shape is not given */
    const fe_onnx_dim *dims;
} fe_onnx_value_info;

typedef enum fe_onnx_attr_type {
    FE_ONNX_ATTR_FLOAT = 1,
    FE_ONNX_ATTR_INT,
    FE_ONNX_ATTR_STRING,
    FE_ONNX_ATTR_TENSOR,
    FE_ONNX_ATTR_GRAPH,
    FE_ONNX_ATTR_FLOATS,
    FE_ONNX_ATTR_INTS,
    FE_ONNX_ATTR_STRINGS,
    FE_ONNX_ATTR_TENSORS,
    FE_ONNX_ATTR_GRAPHS,
    FE_ONNX_ATTR_SPARSE_TENSOR,
    FE_ONNX_ATTR_SPARSE_TENSORS,
    FE_ONNX_ATTR_TYPE_PROTO,
    FE_ONNX_ATTR_TYPE_PROTOS,
} fe_onnx_attr_type;

/* A node attribute. Graphs, sparse tensors and type protos are recorded by
 * type only (qmc translates no operator that needs them). */
typedef struct fe_onnx_attr {
    const char *name;
    fe_onnx_attr_type type;
    float f;
    int64_t i;
    const char *s; /* STRING: NUL-terminated (s_len bytes before the NUL) */
    size_t s_len;
    const fe_onnx_tensor *t;
    int n; /* FLOATS, INTS, STRINGS, TENSORS: items */
    const float *floats;
    const int64_t *ints;
    const char *const *strings;
    const fe_onnx_tensor *tensors;
} fe_onnx_attr;

typedef struct fe_onnx_node {
    const char *name; /* "" when the file gives none (fe_onnx_node_label names it) */
    const char *op_type;
    const char *domain; /* "" for the default domain (ai.onnx) */
    int n_inputs, n_outputs, n_attrs;
    const char *const *inputs; /* "" for an omitted optional input */
    const char *const *outputs;
    const fe_onnx_attr *attrs;
    const fe_onnx_tensor *value; /* Constant nodes: the constant, named after the output */
    int64_t opset;               /* the version imported for the node's domain, 0 if none */
} fe_onnx_node;

typedef struct fe_onnx_opset {
    const char *domain; /* "" for ai.onnx */
    int64_t version;
} fe_onnx_opset;

typedef struct fe_onnx_file fe_onnx_file; /* a mapped external data file */

typedef struct fe_onnx_model {
    const char *path; /* as given; names the model in errors */
    int64_t ir_version;
    const char *producer; /* "pytorch 2.11.0", "" if none */
    int n_opsets, n_inputs, n_outputs, n_initializers, n_nodes;
    const fe_onnx_opset *opsets;
    const fe_onnx_value_info *inputs; /* graph inputs without an initializer */
    const fe_onnx_value_info *outputs;
    const fe_onnx_tensor *initializers;
    const fe_onnx_node *nodes; /* in the file's (topological) order */
    fe_onnx_file *files;       /* external data mappings, released by fe_onnx_close */
} fe_onnx_model;

/* Reads and checks an ONNX model file: the protobuf, every tensor's type,
 * dims and data size, external data (relative to the model's folder, inside
 * it, bounds-checked), names (present, initializers unique, every value
 * defined once and before its use). Errors are reported as
 * `PATH: error: ...`; returns false after the first. Everything lives in the
 * arena, external data files stay mapped until fe_onnx_close. */
bool fe_onnx_open(sup_arena *arena, const char *path, fe_onnx_model *out);
/* The same for a model image in memory (the fuzzer's entry point); path
 * names it in errors. External data is refused: there is no folder. */
bool fe_onnx_parse(sup_arena *arena, const char *path, const uint8_t *data, size_t size,
                   fe_onnx_model *out);
void fe_onnx_close(fe_onnx_model *model);
/* Reads a file holding one TensorProto (ONNX's test data, input_0.pb), as
 * fe_onnx_open reads initializers; external data is refused. Errors are
 * reported as `PATH: error: ...`. */
bool fe_onnx_read_tensor(sup_arena *arena, const char *path, fe_onnx_tensor *out);
/* The external data files the model's tensors are read from, as opened, in
 * the order first used: up to max into paths; returns how many there are. */
int fe_onnx_data_files(const fe_onnx_model *m, const char **paths, int max);

/* "'/blocks.0/q/MatMul'" or, for an unnamed node, "#12" (its index), into
 * the arena. */
const char *fe_onnx_node_label(sup_arena *arena, const fe_onnx_model *m, const fe_onnx_node *n);
/* The opset version imported for a domain ("" and "ai.onnx" are the same),
 * 0 if the model imports none. */
int64_t fe_onnx_opset_version(const fe_onnx_model *m, const char *domain);
/* A node's attribute by name, or NULL. */
const fe_onnx_attr *fe_onnx_attr_find(const fe_onnx_node *n, const char *name);
/* Element i of a tensor as a double (floats, integers, bool; fp8 and int4
 * decoded); false for strings and complex numbers. */
bool fe_onnx_tensor_get(const fe_onnx_tensor *t, int64_t i, double *out);
/* Element i of an integer or bool tensor. */
bool fe_onnx_tensor_get_int(const fe_onnx_tensor *t, int64_t i, int64_t *out);

/* A string -> int32 map in an arena (value names to indices). */
typedef struct fe_onnx_map {
    const char **keys;
    int32_t *vals;
    size_t cap, count;
} fe_onnx_map;
/* The slot for key: NULL if absent and !insert, else a pointer to its value
 * (a new key's value starts at -1). The key is not copied. */
int32_t *fe_onnx_map_slot(sup_arena *arena, fe_onnx_map *m, const char *key, bool insert);

/* ---- onnx_import.c: an ONNX graph as a model in qmc's language --------- */

/* A shape given on the command line for an input (`--shape NAME=1x128`). */
typedef struct fe_onnx_shape {
    const char *name;
    int rank;
    int64_t dims[RT_MAX_RANK];
} fe_onnx_shape;

typedef struct fe_onnx_import_options {
    const char *model_name;   /* `model NAME` (made an identifier); NULL: "imported" */
    const char *weights_file; /* what the text's `weights "..."` names */
    const char *source_name;  /* the ONNX file as the header comment names it */
    const fe_onnx_shape *shapes;
    int n_shapes;
    bool drop_batch; /* inputs and outputs lose a leading dimension of size 1 */
} fe_onnx_import_options;

/* A tensor of the weights file the import writes (always F32). */
typedef struct fe_onnx_weight {
    const char *name;      /* in the safetensors file and the text */
    const char *onnx_name; /* the ONNX initializer or value it holds */
    int rank;
    int64_t shape[RT_MAX_RANK];
    bool transposed;   /* the 2-D transpose of the ONNX value (linear's [N, K]) */
    const void *value; /* private: where the elements come from */
    bool quantized;    /* the value is a dequantization of integer codes (fe_onnx_weight_given) */
    /* the input of the linear layer it is the weight of arrives through a
     * QuantizeLinear -> DequantizeLinear pair (fe_quantized.act_static) */
    bool act_static;
    float act_scale;
    int act_zero; /* as an int8 code */
    int act_type; /* the codes' ONNX type: FE_ONNX_INT8 or FE_ONNX_UINT8 */
} fe_onnx_weight;

typedef struct fe_onnx_imported {
    const char *text; /* the model in qmc's language */
    size_t len;
    fe_onnx_weight *weights;
    int n_weights;
} fe_onnx_imported;

/* Translates the model into qmc's language: the text of a .qm file and the
 * weights it names (initializers keep their names where the language can
 * write them). Constant subgraphs and shape computations are evaluated;
 * node patterns become built-ins (linear, gelu, attention, ...). Reports
 * every problem (each unsupported operator type once) as
 * `model.onnx: error: ...` and returns false. */
bool fe_onnx_import(sup_arena *arena, const fe_onnx_model *m, const fe_onnx_import_options *o,
                    fe_onnx_imported *out);
/* ---- onnx_weights.c: the imported weights, in a file or in memory ----- */

/* A weight's elements as f32, in its stored layout. */
void fe_onnx_weight_read(const fe_onnx_weight *w, float *out);
/* The codes and scales of a weight that arrived quantized, when they have
 * a form qmc's formats store (fe_quantized); NULL otherwise (the weight is
 * then its dequantized f32 values, quantized again like any other). */
const fe_quantized *fe_onnx_weight_given(sup_arena *arena, const fe_onnx_weight *w);
/* Writes the weights as a safetensors file (F32), atomically: a temporary
 * file beside path, renamed once complete. One tensor is converted at a
 * time. `source` goes into the metadata. On failure, the reason is in err. */
bool fe_onnx_write_weights(const fe_onnx_imported *imp, const char *path, const char *source,
                           char *err, size_t err_size);
/* The weights as a set of F32 tensors in memory (no file: path names the
 * set in messages), for compiling an ONNX model directly. The ONNX data is
 * used where it lies; a transposed weight whose tensor nothing else reads
 * is transposed in place, so the model's tensors must not be read for
 * anything else afterwards (and the model must stay open while the set is
 * used); other weights are converted into copies in the arena. */
void fe_onnx_weights_source(sup_arena *arena, fe_onnx_imported *imp, const char *path,
                            fe_safetensors *out);

#endif
