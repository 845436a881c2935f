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

typedef struct fe_tensor {
    const char *name;
    qmc_dtype dtype; /* F32, F16 or BF16 */
    int rank;
    int64_t shape[RT_MAX_RANK];
    int64_t count;
    const void *data;   /* into the mapping (or an aligned copy if the file's data is misaligned) */
    size_t size;        /* bytes */
    size_t file_offset; /* where the data starts in the file */
} fe_tensor;

typedef struct fe_safetensors {
    const char *path;
    rt_mapped_file file;
    fe_tensor *tensors; /* sorted by name */
    int count;
} fe_safetensors;

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
void fe_safetensors_close(fe_safetensors *st);

/* Converts a tensor's elements to f32 (f32 copies, f16/bf16 widen). */
void fe_tensor_to_f32(const fe_tensor *t, float *out);

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

#endif
