/* onnx_import.c: an ONNX model as a model file in qmc's language.
 *
 * Pipeline: values (one per ONNX name) -> types, shapes and constants
 * (onnx_fold.c) -> patterns (onnx_match.c) -> liveness from the graph
 * outputs -> one statement per live node or pattern, in the file's order.
 *
 * Needs: a model read by onnx.c (checked names, tensors and topological
 * order). Guarantees: on success the text is a complete model (`weights`,
 * `input`s, `output`s and statements) whose names are identifiers of the
 * language; inputs and outputs keep their ONNX names (made identifiers if
 * they are not, the original in a comment), weights keep the names of the
 * initializers they hold where those are paths the language can write; a
 * weight holds exactly the ONNX values (linear's weight transposed to
 * [N, K]). Every live node the language cannot express is reported, each
 * operator type once, and nothing is produced. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_import.h"

/* The newest ai.onnx operator set whose operators' semantics qmc knows. */
enum { MAX_OPSET = 21 };

typedef struct em {
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
} em;

static bool err(em *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool err(em *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_verror("error", (sup_loc){.file = e->p.m->path}, fmt, ap);
    va_end(ap);
    e->failed = true;
    return false;
}

/* ---- names ------------------------------------------------------------------ */

static const char *const reserved[] = {
    "model",   "weights",   "input",   "output",    "const",     "def",       "for",
    "in",      "return",    "true",    "false",     "linear",    "matmul",    "add",
    "sub",     "mul",       "div",     "relu",      "gelu",      "silu",      "tanh",
    "softmax", "layernorm", "rmsnorm", "embedding", "reshape",   "transpose", "slice",
    "concat",  "attention", "sqrt",    "rope",      "positions", "sequence",  NULL};
static const char *const keywords[] = {"model", "weights",  "input", "output", "const",
                                       "def",   "for",      "in",    "return", "true",
                                       "false", "sequence", NULL};

static bool in_set(const char *s, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0) return true;
    return false;
}

static bool is_ident(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

static bool alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* "/blocks.0/q/Add_output_0" -> "blocks_0_q_Add" */
static char *ident_base(sup_arena *a, const char *name)
{
    size_t n = strlen(name);
    if (n > 9 && strcmp(name + n - 9, "_output_0") == 0) n -= 9;
    char *s = sup_arena_alloc(a, n + 4), *o = s + 2;
    for (size_t i = 0; i < n; i++) {
        char c = alnum(name[i]) ? name[i] : '_';
        if (c == '_' && (o == s + 2 || o[-1] == '_')) continue;
        *o++ = c;
    }
    while (o > s + 2 && o[-1] == '_') o--;
    *o = 0;
    if (o == s + 2) return strcpy(s, "v");
    if (s[2] >= '0' && s[2] <= '9') return s[0] = 'v', s[1] = '_', s;
    return s + 2;
}

static bool taken(em *e, const char *s)
{
    return fe_onnx_map_slot(e->p.arena, &e->used, s, false) != NULL;
}
static void take(em *e, const char *s) { *fe_onnx_map_slot(e->p.arena, &e->used, s, true) = 1; }

/* An identifier not used yet: base, base_2, base_3, ... */
static const char *unique_ident(em *e, const char *base)
{
    if (in_set(base, reserved)) base = sup_arena_printf(e->p.arena, "%s_", base);
    const char *s = base;
    for (int k = 2; taken(e, s); k++) s = sup_arena_printf(e->p.arena, "%s_%d", base, k);
    take(e, s);
    return s;
}

/* A weight path the language can write for an ONNX tensor name: dotted
 * segments of letters, digits and '_', integers without leading zeros, no
 * keyword, starting with an identifier that no input or output uses. */
static const char *weight_path(em *e, const char *name)
{
    size_t n = strlen(name);
    char *buf = sup_arena_alloc(e->p.arena, 2 * n + 16), *o = buf;
    const char *seg = name;
    for (int k = 0;; k++) {
        size_t len = strcspn(seg, ".");
        char *start = o;
        for (size_t i = 0; i < len; i++) *o++ = alnum(seg[i]) || seg[i] == '_' ? seg[i] : '_';
        if (len == 0) *o++ = '_';
        *o = 0;
        /* a segment is an identifier or an integer as the lexer reads it back */
        bool digits = strspn(start, "0123456789") == (size_t)(o - start);
        bool lead = start[0] >= '0' && start[0] <= '9';
        if (lead && (!digits || k == 0 || (start[0] == '0' && o - start > 1) || o - start > 15)) {
            memmove(start + 1, start, (size_t)(o - start) + 1);
            *start = k == 0 ? 'w' : 'n';
            o++;
        }
        if (in_set(start, keywords)) *o++ = '_', *o = 0;
        if (!seg[len]) break;
        *o++ = '.';
        seg += len + 1;
    }
    *o = 0;
    return buf;
}

static const char *first_segment(em *e, const char *path)
{
    return sup_arena_strndup(e->p.arena, path, strcspn(path, "."));
}

/* Reserves the weight name for a tensor (initializer or Constant output):
 * unique among weights, its first segment no input's or output's name. */
static void name_tensor(em *e, const char *onnx_name, bool path_like)
{
    if (fe_onnx_map_slot(e->p.arena, &e->tensor_name, onnx_name, false)) return;
    /* initializers keep their dotted names; Constant outputs
     * ("/blocks.0/Constant_output_0") become one identifier */
    const char *path = path_like ? weight_path(e, onnx_name) : ident_base(e->p.arena, onnx_name);
    const char *base;
    int32_t *first = fe_onnx_map_slot(e->p.arena, &e->used, first_segment(e, path), false);
    if (first && *first == 2) path = sup_arena_printf(e->p.arena, "w_%s", path);
    base = path;
    for (int k = 2; fe_onnx_map_slot(e->p.arena, &e->wnames, path, false); k++)
        path = sup_arena_printf(e->p.arena, "%s_%d", base, k);
    *fe_onnx_map_slot(e->p.arena, &e->wnames, path, true) = 1;
    int32_t *slot = fe_onnx_map_slot(e->p.arena, &e->used, first_segment(e, path), true);
    if (*slot < 0) *slot = 1;
    e->tnames = sup_arena_grow(e->p.arena, e->tnames, (size_t)e->n_tnames, (size_t)e->n_tnames + 1,
                               sizeof *e->tnames);
    e->tnames[e->n_tnames] = path;
    *fe_onnx_map_slot(e->p.arena, &e->tensor_name, onnx_name, true) = e->n_tnames++;
}

/* Replaces characters that would end or garble a comment. */
static const char *printable(em *e, const char *s)
{
    char *o = sup_arena_strdup(e->p.arena, s);
    for (char *c = o; *c; c++)
        if ((unsigned char)*c < 32 || *c == 127) *c = '?';
    return o;
}

/* ---- numbers and lists --------------------------------------------------------- */

/* The shortest text that reads back as the same f32, always with a '.' or
 * an exponent; negative numbers in parentheses. NULL if not finite. */
static const char *number(em *e, double x)
{
    float f = (float)x, a = fabsf(f);
    if (!isfinite(f)) return NULL;
    char buf[48];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)a);
        if (strtof(buf, NULL) == a) break;
    }
    if (!strpbrk(buf, ".e")) strcat(buf, ".0");
    return signbit(f) ? sup_arena_printf(e->p.arena, "(-%s)", buf)
                      : sup_arena_strdup(e->p.arena, buf);
}

static const char *int_list_text(em *e, const int64_t *v, int n)
{
    char *s = sup_arena_strdup(e->p.arena, "[");
    for (int i = 0; i < n; i++)
        s = sup_arena_printf(e->p.arena, "%s%s%lld", s, i ? ", " : "", (long long)v[i]);
    return sup_arena_printf(e->p.arena, "%s]", s);
}

/* ---- weights ----------------------------------------------------------------------- */

static const char *dims_key(em *e, int rank, const int64_t *dims)
{
    return int_list_text(e, dims, rank);
}

/* The weight holding value v (a float constant) in a layout: its logical
 * dims, their 2-D transpose, or flattened to [count] (a bias). */
static const char *weight(em *e, fe_imp_value *v, bool transpose, bool flat)
{
    int rank = v->rank;
    int64_t dims[FE_IMP_MAX_RANK];
    memcpy(dims, v->dims, sizeof dims);
    if (transpose) dims[0] = v->dims[1], dims[1] = v->dims[0];
    if (flat) rank = 1, dims[0] = fe_imp_count(v);
    bool view = v->tensor && !v->f && !v->i;
    const void *src = view ? (const void *)v->tensor : (const void *)v;
    bool rel = transpose != (view && v->transposed);
    const char *key = sup_arena_printf(e->p.arena, "%p/%d/%s", src, rel, dims_key(e, rank, dims));
    int32_t *slot = fe_onnx_map_slot(e->p.arena, &e->wkeys, key, true);
    if (*slot >= 0) return e->weights[*slot].name;
    const char *onnx = view ? v->tensor->name : v->name;
    int32_t *t = view ? fe_onnx_map_slot(e->p.arena, &e->tensor_name, onnx, false) : NULL;
    const char *base = t ? e->tnames[*t] : NULL, *name;
    if (!base) { /* a computed constant: named after its ONNX value */
        base = unique_ident(e, ident_base(e->p.arena, onnx));
        *fe_onnx_map_slot(e->p.arena, &e->wnames, base, true) = 1;
    }
    /* the first use keeps the name; other layouts of the same tensor get a suffix */
    int32_t *used = fe_onnx_map_slot(e->p.arena, &e->wnames, base, true);
    name = base;
    if (*used == 2) {
        const char *b2 = sup_arena_printf(e->p.arena, "%s%s", base, rel ? "_T" : "_r");
        name = b2;
        for (int k = 2; fe_onnx_map_slot(e->p.arena, &e->wnames, name, false); k++)
            name = sup_arena_printf(e->p.arena, "%s%d", b2, k);
        *fe_onnx_map_slot(e->p.arena, &e->wnames, name, true) = 2;
        take(e, first_segment(e, name));
    }
    *used = 2;
    if (e->n_weights == e->cap_weights) {
        int cap = e->cap_weights ? 2 * e->cap_weights : 64;
        e->weights = sup_arena_grow(e->p.arena, e->weights, (size_t)e->n_weights, (size_t)cap,
                                    sizeof *e->weights);
        e->cap_weights = cap;
    }
    fe_onnx_weight *w = &e->weights[e->n_weights];
    *w = (fe_onnx_weight){
        .name = name, .onnx_name = onnx, .rank = rank, .transposed = transpose, .value = v};
    memcpy(w->shape, dims, sizeof dims);
    *slot = e->n_weights++;
    return name;
}

/* A weight of d copies of x computed by the import (a norm's missing scale
 * or bias), named after node n's output. */
static const char *filled(em *e, int n, int64_t d, double x, const char *what)
{
    fe_imp_value *z = sup_arena_alloc(e->p.arena, sizeof *z);
    const char *base = fe_imp_v(&e->p, fe_imp_out(&e->p, n, 0))->name;
    *z = (fe_imp_value){.name = sup_arena_printf(e->p.arena, "%s_%s", base, what),
                        .dtype = FE_ONNX_FLOAT,
                        .rank = 1,
                        .dims = {d},
                        .producer = -1,
                        .is_const = true};
    z->f = sup_arena_alloc(e->p.arena, sizeof *z->f * (size_t)d);
    for (int64_t i = 0; i < d; i++) z->f[i] = x;
    return weight(e, z, false, false);
}

/* ---- operands -------------------------------------------------------------------------- */

typedef struct node_ctx {
    em *e;
    int n;
    const fe_onnx_node *node;
    const char *why; /* set when the node cannot be translated for a specific reason */
} node_ctx;

/* The node cannot be translated, for this reason. */
static const char *no_text(node_ctx *c, const char *why)
{
    c->why = why;
    return NULL;
}

static bool no(node_ctx *c, const char *why)
{
    c->why = why;
    return false;
}

static fe_imp_value *val(node_ctx *c, int k)
{
    int v = fe_imp_in(&c->e->p, c->n, k);
    return v >= 0 ? fe_imp_v(&c->e->p, v) : NULL;
}

/* A tensor operand: a run-time value's variable, or a float constant as a
 * weight. NULL (with a reason) otherwise. */
static const char *tensor(node_ctx *c, int vi)
{
    if (vi < 0) return no_text(c, "an input is missing");
    fe_imp_value *v = fe_imp_v(&c->e->p, vi);
    if (!v->is_const) return v->text ? v->text : no_text(c, NULL);
    if (!fe_imp_is_float(v->dtype))
        return no_text(c, "an integer constant is used as a tensor at run time");
    if (v->rank < 0) return no_text(c, "a constant has more dimensions than qmc's 8");
    if (fe_imp_count(v) == 0) return no_text(c, "a constant is empty");
    return weight(c->e, v, false, false);
}

/* An elementwise operand: a number when the constant is one element that
 * broadcasting would not add dims for, else a tensor. */
static const char *operand(node_ctx *c, int vi, int result_rank)
{
    fe_imp_value *v = vi >= 0 ? fe_imp_v(&c->e->p, vi) : NULL;
    double x;
    if (v && v->is_const && fe_imp_is_float(v->dtype) && v->rank <= result_rank &&
        fe_imp_const_scalar(&c->e->p, v, &x)) {
        const char *s = number(c->e, x);
        if (s) return s;
    }
    return tensor(c, vi);
}

static int in_idx(node_ctx *c, int k) { return fe_imp_in(&c->e->p, c->n, k); }

static const char *var_of(node_ctx *c, int k)
{
    fe_imp_value *v = val(c, k);
    if (!v || v->is_const) return tensor(c, in_idx(c, k));
    return v->text;
}

static bool is_f32(const fe_imp_value *v) { return v && v->dtype == FE_ONNX_FLOAT; }
static bool is_index(const fe_imp_value *v)
{
    return v && (v->dtype == FE_ONNX_INT64 || v->dtype == FE_ONNX_INT32);
}

static int64_t attr_int(const fe_onnx_node *n, const char *name, int64_t dflt)
{
    const fe_onnx_attr *a = fe_onnx_attr_find(n, name);
    return a && a->type == FE_ONNX_ATTR_INT ? a->i : dflt;
}

static float attr_float(const fe_onnx_node *n, const char *name, float dflt)
{
    const fe_onnx_attr *a = fe_onnx_attr_find(n, name);
    return a && a->type == FE_ONNX_ATTR_FLOAT ? a->f : dflt;
}

/* ---- statements ---------------------------------------------------------------------- */

/* The comment after a statement: the ONNX node(s) it comes from. */
static const char *origin(em *e, int first, int root, int n_nodes)
{
    const fe_onnx_model *m = e->p.m;
    const char *r = printable(e, fe_onnx_node_label(e->p.arena, m, &m->nodes[root]));
    if (n_nodes <= 1) return sup_arena_printf(e->p.arena, "%s (%s)", r, m->nodes[root].op_type);
    const char *f = printable(e, fe_onnx_node_label(e->p.arena, m, &m->nodes[first]));
    return sup_arena_printf(e->p.arena, "%s .. %s (%d nodes)", f, r, n_nodes);
}

/* `name = expr` for output value vi; the value is then known by name. */
static void assign(node_ctx *c, int vi, const char *expr, const char *comment)
{
    fe_imp_value *v = fe_imp_v(&c->e->p, vi);
    if (!v->text) v->text = unique_ident(c->e, ident_base(c->e->p.arena, v->name));
    fprintf(c->e->body, "    %s = %s", v->text, expr);
    if (comment) fprintf(c->e->body, "    # %s", comment);
    fputc('\n', c->e->body);
}

/* Output vi is input value x under another name: no statement unless it
 * is a graph output (which must be assigned by its name). */
static bool alias(node_ctx *c, int vi, int x)
{
    const char *t = tensor(c, x);
    if (!t) return false;
    fe_imp_value *v = fe_imp_v(&c->e->p, vi);
    if (v->is_output)
        assign(c, vi, t, origin(c->e, c->n, c->n, 1));
    else
        v->text = t;
    return true;
}

static bool emit(node_ctx *c, int vi, const char *expr)
{
    if (!expr) return false;
    assign(c, vi, expr, origin(c->e, c->n, c->n, 1));
    return true;
}

static bool same_dims(const fe_imp_value *a, const fe_imp_value *b)
{
    return a->rank == b->rank && memcmp(a->dims, b->dims, sizeof *a->dims * (size_t)a->rank) == 0;
}

/* reshape(x, dims of out), or x itself when the dims are the same. */
static bool reshape_to(node_ctx *c, int out, int x)
{
    fe_imp_value *o = fe_imp_v(&c->e->p, out), *xv = fe_imp_v(&c->e->p, x);
    if (same_dims(o, xv)) return alias(c, out, x);
    const char *t = tensor(c, x);
    return t && emit(c, out,
                     sup_arena_printf(c->e->p.arena, "reshape(%s, %s)", t,
                                      int_list_text(c->e, o->dims, o->rank)));
}

/* ---- patterns ---------------------------------------------------------------------------- */

static bool emit_match(node_ctx *c, const fe_imp_match *m)
{
    em *e = c->e;
    sup_arena *a = e->p.arena;
    int out = fe_imp_out(&e->p, m->root, 0);
    const char *expr = NULL, *x = tensor(c, m->ops[0]);
    if (!x) return false;
    switch (m->kind) {
    case FE_IMP_PAT_LINEAR: {
        const char *w = weight(e, fe_imp_v(&e->p, m->ops[1]), m->transpose_w, false);
        expr = m->ops[2] >= 0 ? sup_arena_printf(a, "linear(%s, %s, %s)", x, w,
                                                 weight(e, fe_imp_v(&e->p, m->ops[2]), false, true))
                              : sup_arena_printf(a, "linear(%s, %s)", x, w);
        break;
    }
    case FE_IMP_PAT_GELU: expr = sup_arena_printf(a, "gelu(%s)", x); break;
    case FE_IMP_PAT_SILU: expr = sup_arena_printf(a, "silu(%s)", x); break;
    case FE_IMP_PAT_ATTENTION: {
        const char *qkv[3];
        for (int i = 0; i < 3; i++) {
            const fe_imp_value *v = fe_imp_v(&e->p, m->ops[i]);
            qkv[i] = tensor(c, m->ops[i]);
            if (!qkv[i]) return false;
            if (v->rank == 3) {
                int64_t d2[2] = {v->dims[1], v->dims[2]};
                qkv[i] = sup_arena_printf(a, "reshape(%s, %s)", qkv[i], int_list_text(e, d2, 2));
            }
        }
        expr = sup_arena_printf(a, "attention(%s, %s, %s, heads=%d, causal=%s", qkv[0], qkv[1],
                                qkv[2], m->heads, m->causal ? "true" : "false");
        if (m->scale != 0) expr = sup_arena_printf(a, "%s, scale=%s", expr, number(e, m->scale));
        expr = sup_arena_printf(a, "%s)", expr);
        const fe_imp_value *o = fe_imp_v(&e->p, out), *q = fe_imp_v(&e->p, m->ops[0]),
                           *v = fe_imp_v(&e->p, m->ops[2]);
        int64_t d2[2] = {q->dims[q->rank - 2], v->dims[v->rank - 1]};
        if (o->rank != 2 || o->dims[0] != d2[0] || o->dims[1] != d2[1])
            expr = sup_arena_printf(a, "reshape(%s, %s)", expr, int_list_text(e, o->dims, o->rank));
        break;
    }
    case FE_IMP_PAT_LAYERNORM:
    case FE_IMP_PAT_RMSNORM: {
        const fe_imp_value *xv = fe_imp_v(&e->p, m->ops[0]);
        int64_t d = xv->dims[xv->rank - 1];
        const char *w = m->ops[1] >= 0 ? weight(e, fe_imp_v(&e->p, m->ops[1]), false, true)
                                       : filled(e, m->root, d, 1, "weight");
        const char *eps = number(e, m->scale);
        if (m->kind == FE_IMP_PAT_RMSNORM) {
            expr = sup_arena_printf(a, "rmsnorm(%s, %s, eps=%s)", x, w, eps);
            break;
        }
        const char *b = m->ops[2] >= 0 ? weight(e, fe_imp_v(&e->p, m->ops[2]), false, true)
                                       : filled(e, m->root, d, 0, "bias");
        expr = sup_arena_printf(a, "layernorm(%s, %s, %s, eps=%s)", x, w, b, eps);
        break;
    }
    case FE_IMP_PAT_NONE: return false;
    }
    assign(c, out, expr, origin(e, m->first, m->root, m->n_nodes));
    return true;
}

/* ---- single operators --------------------------------------------------------------------- */

static bool op_binary(node_ctx *c)
{
    static const char *const ops[] = {"Add", "Sub", "Mul", "Div"};
    static const char sym[] = "+-*/";
    fe_imp_value *o = fe_imp_v(&c->e->p, fe_imp_out(&c->e->p, c->n, 0)), *a = val(c, 0),
                 *b = val(c, 1);
    if (!is_f32(o) || !a || !b) return no(c, "only float arithmetic is supported at run time");
    int k = 0;
    while (strcmp(ops[k], c->node->op_type) != 0) k++;
    const char *x = operand(c, in_idx(c, 0), o->rank), *y = operand(c, in_idx(c, 1), o->rank);
    return x && y &&
           emit(c, fe_imp_out(&c->e->p, c->n, 0),
                sup_arena_printf(c->e->p.arena, "%s %c %s", x, sym[k], y));
}

static bool op_unary(node_ctx *c, const char *fn)
{
    const char *x = var_of(c, 0);
    if (!x || !is_f32(val(c, 0))) return x ? no(c, "the input is not float") : false;
    return emit(c, fe_imp_out(&c->e->p, c->n, 0), sup_arena_printf(c->e->p.arena, "%s(%s)", fn, x));
}

static bool op_matmul(node_ctx *c)
{
    const char *a = tensor(c, in_idx(c, 0)), *b = tensor(c, in_idx(c, 1));
    if (!a || !b) return false;
    if (!is_f32(val(c, 0)) || !is_f32(val(c, 1))) return no(c, "only float operands are supported");
    return emit(c, fe_imp_out(&c->e->p, c->n, 0),
                sup_arena_printf(c->e->p.arena, "matmul(%s, %s)", a, b));
}

/* Gemm outside the linear pattern: alpha, beta, transA, or a run-time B. */
static bool op_gemm(node_ctx *c)
{
    sup_arena *ar = c->e->p.arena;
    const fe_onnx_node *nd = c->node;
    fe_imp_value *o = fe_imp_v(&c->e->p, fe_imp_out(&c->e->p, c->n, 0)), *b = val(c, 1);
    const char *a = tensor(c, in_idx(c, 0));
    if (!a || !b) return false;
    if (attr_int(nd, "transA", 0)) a = sup_arena_printf(ar, "transpose(%s)", a);
    bool tb = attr_int(nd, "transB", 0) != 0;
    const char *core;
    if (b->is_const) {
        if (!fe_imp_is_float(b->dtype)) return no(c, "B is not float");
        core = sup_arena_printf(ar, "linear(%s, %s)", a, weight(c->e, b, !tb, false));
    } else {
        const char *bt = tensor(c, in_idx(c, 1));
        if (!bt) return false;
        core = sup_arena_printf(ar, "matmul(%s, %s)", a,
                                tb ? sup_arena_printf(ar, "transpose(%s)", bt) : bt);
    }
    float alpha = attr_float(nd, "alpha", 1), beta = attr_float(nd, "beta", 1);
    if (alpha != 1) core = sup_arena_printf(ar, "%s * %s", core, number(c->e, alpha));
    if (in_idx(c, 2) >= 0 && beta != 0) {
        const char *cc = operand(c, in_idx(c, 2), o->rank);
        if (!cc) return false;
        core = beta == 1 ? sup_arena_printf(ar, "%s + %s", core, cc)
                         : sup_arena_printf(ar, "%s + %s * %s", core, cc, number(c->e, beta));
    }
    return emit(c, fe_imp_out(&c->e->p, c->n, 0), core);
}

static bool op_softmax(node_ctx *c)
{
    fe_imp_value *x = val(c, 0);
    const char *t = var_of(c, 0);
    if (!t) return false;
    if (!is_f32(x) || x->rank < 1) return no(c, "the input is not a float tensor");
    int64_t axis = attr_int(c->node, "axis", c->node->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank) return no(c, "the axis is out of range");
    sup_arena *a = c->e->p.arena;
    if (c->node->opset >= 13 || axis == x->rank - 1) {
        const char *ax =
            axis == x->rank - 1 ? "" : sup_arena_printf(a, ", axis=%lld", (long long)axis);
        return emit(c, fe_imp_out(&c->e->p, c->n, 0), sup_arena_printf(a, "softmax(%s%s)", t, ax));
    }
    /* before opset 13: over the dims from axis on, flattened */
    int64_t d2[2] = {1, 1};
    for (int d = 0; d < x->rank; d++) d2[d >= axis] *= x->dims[d];
    return emit(c, fe_imp_out(&c->e->p, c->n, 0),
                sup_arena_printf(a, "reshape(softmax(reshape(%s, %s)), %s)", t,
                                 int_list_text(c->e, d2, 2),
                                 int_list_text(c->e, x->dims, x->rank)));
}

/* A [D] parameter of a norm: a float constant of D elements, or a run-time [D]. */
static const char *norm_param(node_ctx *c, int k, int64_t d)
{
    int vi = in_idx(c, k);
    fe_imp_value *v = vi >= 0 ? fe_imp_v(&c->e->p, vi) : NULL;
    if (!v) return NULL;
    if (v->is_const && fe_imp_is_float(v->dtype) && fe_imp_count(v) == d)
        return weight(c->e, v, false, true);
    if (!v->is_const && is_f32(v) && v->rank == 1 && v->dims[0] == d) return v->text;
    return no_text(c, "the scale and bias must have the size of the last axis");
}

static bool op_layernorm(node_ctx *c)
{
    em *e = c->e;
    fe_imp_value *x = val(c, 0);
    const char *t = var_of(c, 0);
    if (!t) return false;
    for (int k = 1; k < c->node->n_outputs && k < 3; k++) {
        fe_imp_value *o = fe_imp_v(&e->p, fe_imp_out(&e->p, c->n, k));
        if (o->live) return no(c, "its Mean and InvStdDev outputs are used");
    }
    int64_t axis = attr_int(c->node, "axis", -1);
    if (!is_f32(x) || (axis != -1 && axis != x->rank - 1))
        return no(c, "only normalization over the last axis");
    int64_t d = x->dims[x->rank - 1];
    const char *w = norm_param(c, 1, d), *b;
    if (!w) return false;
    if (in_idx(c, 2) >= 0) {
        if (!(b = norm_param(c, 2, d))) return false;
    } else { /* the language's layernorm takes a bias: zeros */
        b = filled(e, c->n, d, 0, "bias");
    }
    const char *eps = number(e, attr_float(c->node, "epsilon", 1e-5f));
    return emit(c, fe_imp_out(&e->p, c->n, 0),
                sup_arena_printf(e->p.arena, "layernorm(%s, %s, %s, eps=%s)", t, w, b, eps));
}

static bool op_gather(node_ctx *c)
{
    em *e = c->e;
    fe_imp_value *data = val(c, 0), *idx = val(c, 1);
    int out = fe_imp_out(&e->p, c->n, 0);
    int64_t axis = attr_int(c->node, "axis", 0);
    if (!data || !idx) return false;
    if (axis < 0) axis += data->rank;
    if (data->is_const && !idx->is_const) { /* a table lookup */
        if (axis != 0 || data->rank != 2 || !fe_imp_is_float(data->dtype) || !is_index(idx))
            return no(c, "only rows of a 2-D float table by run-time indices");
        const char *t = tensor(c, in_idx(c, 0));
        return t && idx->text &&
               emit(c, out, sup_arena_printf(e->p.arena, "embedding(%s, %s)", t, idx->text));
    }
    if (!data->is_const && idx->is_const && idx->rank <= 1) { /* consecutive indices: a slice */
        const int64_t *iv = fe_imp_const_i(&e->p, idx);
        int64_t n = fe_imp_count(idx), dim = data->dims[axis],
                first = iv && n ? (iv[0] < 0 ? iv[0] + dim : iv[0]) : -1;
        for (int64_t k = 0; iv && k < n; k++)
            if ((iv[k] < 0 ? iv[k] + dim : iv[k]) != first + k) iv = NULL;
        if (!iv || first < 0 || first + n > dim || n == 0)
            return no(c, "only consecutive constant indices");
        const char *s = sup_arena_printf(e->p.arena, "slice(%s, %lld, %lld, %lld)", data->text,
                                         (long long)axis, (long long)first, (long long)(first + n));
        fe_imp_value *o = fe_imp_v(&e->p, out);
        if (idx->rank == 0)
            s = sup_arena_printf(e->p.arena, "reshape(%s, %s)", s,
                                 int_list_text(e, o->dims, o->rank));
        return emit(c, out, s);
    }
    return no(c, "only a constant table with run-time indices, or consecutive constant indices");
}

static bool op_transpose(node_ctx *c)
{
    fe_imp_value *x = val(c, 0), *o = fe_imp_v(&c->e->p, fe_imp_out(&c->e->p, c->n, 0));
    const fe_onnx_attr *a = fe_onnx_attr_find(c->node, "perm");
    int64_t perm[FE_IMP_MAX_RANK];
    bool identity = true;
    for (int d = 0; d < x->rank; d++) {
        perm[d] =
            a && a->type == FE_ONNX_ATTR_INTS && a->n == x->rank ? a->ints[d] : x->rank - 1 - d;
        if (perm[d] < 0) perm[d] += x->rank;
        identity &= perm[d] == d;
    }
    if (identity) return alias(c, fe_imp_out(&c->e->p, c->n, 0), in_idx(c, 0));
    const char *t = var_of(c, 0);
    (void)o;
    return t && emit(c, fe_imp_out(&c->e->p, c->n, 0),
                     sup_arena_printf(c->e->p.arena, "transpose(%s, %s)", t,
                                      int_list_text(c->e, perm, x->rank)));
}

static bool op_concat(node_ctx *c)
{
    em *e = c->e;
    fe_imp_value *o = fe_imp_v(&e->p, fe_imp_out(&e->p, c->n, 0));
    int64_t axis = attr_int(c->node, "axis", 0);
    if (axis < 0) axis += o->rank;
    const char *acc = NULL;
    int in_chunk = 0;
    char *list = NULL;
    for (int k = 0; k < c->node->n_inputs; k++) {
        fe_imp_value *v = val(c, k);
        if (!v) continue;
        if (fe_imp_count(v) == 0) continue; /* empty pieces add nothing */
        const char *t = tensor(c, in_idx(c, k));
        if (!t) return false;
        /* at most 16 operands per concat: chain them */
        if (in_chunk == 16) {
            acc = sup_arena_printf(e->p.arena, "concat(%s], axis=%lld)", list, (long long)axis);
            list = sup_arena_printf(e->p.arena, "[%s", acc);
            in_chunk = 1;
        }
        list = list ? sup_arena_printf(e->p.arena, "%s, %s", list, t)
                    : sup_arena_printf(e->p.arena, "[%s", t);
        in_chunk++;
    }
    if (!list) return no(c, "all its inputs are empty");
    return emit(c, fe_imp_out(&e->p, c->n, 0),
                sup_arena_printf(e->p.arena, "concat(%s], axis=%lld)", list, (long long)axis));
}

/* Slice with constant starts/ends/axes/steps: slice() per sliced axis. */
static bool op_slice(node_ctx *c)
{
    em *e = c->e;
    fe_imp_value *x = val(c, 0), *o = fe_imp_v(&e->p, fe_imp_out(&e->p, c->n, 0));
    const char *t = var_of(c, 0);
    if (!t) return false;
    /* the folded output shape tells each axis' length; recover starts from the parameters */
    int64_t starts[FE_IMP_MAX_RANK] = {0};
    const fe_onnx_attr *sa = fe_onnx_attr_find(c->node, "starts"),
                       *aa = fe_onnx_attr_find(c->node, "axes");
    bool attrs = c->node->opset > 0 && c->node->opset < 10;
    fe_imp_value *vs = attrs ? NULL : val(c, 1), *va = attrs ? NULL : val(c, 3),
                 *vt = attrs ? NULL : val(c, 4);
    const int64_t *s = attrs ? (sa ? sa->ints : NULL) : (vs ? fe_imp_const_i(&e->p, vs) : NULL);
    int ns = attrs ? (sa ? sa->n : 0) : (vs ? (int)fe_imp_count(vs) : 0);
    const int64_t *ax = attrs ? (aa ? aa->ints : NULL) : (va ? fe_imp_const_i(&e->p, va) : NULL);
    const int64_t *st = vt ? fe_imp_const_i(&e->p, vt) : NULL;
    if (!s || (va && !ax) || (vt && !st)) return no(c, "its parameters are not constants");
    for (int k = 0; k < ns; k++) {
        int64_t a = ax ? ax[k] : k;
        if (a < 0) a += x->rank;
        if (a < 0 || a >= x->rank) return no(c, "an axis is out of range");
        if (st && st[k] != 1 && o->dims[a] != x->dims[a]) return no(c, "steps other than 1");
        int64_t b = s[k], dim = x->dims[a];
        if (b < 0) b = b < -dim ? 0 : b + dim;
        starts[a] = b > dim ? dim : b;
    }
    for (int a = 0; a < x->rank; a++) {
        if (o->dims[a] == x->dims[a]) continue;
        if (o->dims[a] == 0) return no(c, "the result is empty");
        t = sup_arena_printf(e->p.arena, "slice(%s, %d, %lld, %lld)", t, a, (long long)starts[a],
                             (long long)(starts[a] + o->dims[a]));
    }
    if (same_dims(o, x)) return alias(c, fe_imp_out(&e->p, c->n, 0), in_idx(c, 0));
    return emit(c, fe_imp_out(&e->p, c->n, 0), t);
}

static bool op_split(node_ctx *c)
{
    em *e = c->e;
    fe_imp_value *x = val(c, 0);
    const char *t = var_of(c, 0);
    if (!t) return false;
    int64_t axis = attr_int(c->node, "axis", 0), start = 0;
    if (axis < 0) axis += x->rank;
    for (int k = 0; k < c->node->n_outputs; k++) {
        int out = fe_imp_out(&e->p, c->n, k);
        fe_imp_value *o = fe_imp_v(&e->p, out);
        if (o->rank < 0) return no(c, "the split sizes are not known");
        int64_t len = o->dims[axis];
        if (o->live) {
            if (len == 0) return no(c, "a part is empty");
            emit(c, out,
                 sup_arena_printf(e->p.arena, "slice(%s, %lld, %lld, %lld)", t, (long long)axis,
                                  (long long)start, (long long)(start + len)));
        }
        start += len;
    }
    return true;
}

static bool op_cast(node_ctx *c)
{
    fe_imp_value *x = val(c, 0), *o = fe_imp_v(&c->e->p, fe_imp_out(&c->e->p, c->n, 0));
    if ((is_f32(x) && is_f32(o)) || (is_index(x) && is_index(o)))
        return alias(c, fe_imp_out(&c->e->p, c->n, 0), in_idx(c, 0));
    return no(c, "only casts between float types or between integer index types at run time");
}

static bool op_pow(node_ctx *c)
{
    double y;
    fe_imp_value *e = val(c, 1);
    const char *x = var_of(c, 0);
    if (!x) return false;
    if (!e || !fe_imp_const_scalar(&c->e->p, e, &y) || !is_f32(val(c, 0)))
        return no(c, "only constant exponents 1 and 2");
    if (y == 1) return alias(c, fe_imp_out(&c->e->p, c->n, 0), in_idx(c, 0));
    if (y == 2)
        return emit(c, fe_imp_out(&c->e->p, c->n, 0),
                    sup_arena_printf(c->e->p.arena, "%s * %s", x, x));
    return no(c, "only constant exponents 1 and 2");
}

/* The operators translated one by one (others only inside patterns). */
static const char *const translated[] = {
    "Add",    "Sub",        "Mul",     "Div",      "Relu",      "Tanh",      "Gelu",
    "Neg",    "Reciprocal", "Pow",     "MatMul",   "Gemm",      "Softmax",   "LayerNormalization",
    "Gather", "Reshape",    "Flatten", "Squeeze",  "Unsqueeze", "Transpose", "Concat",
    "Slice",  "Split",      "Cast",    "Identity", "Dropout",   "Expand",    NULL};

static bool known_op(const fe_onnx_node *nd)
{
    return !*nd->domain && in_set(nd->op_type, translated);
}

static bool translate(node_ctx *c)
{
    const fe_onnx_node *nd = c->node;
    const char *op = nd->op_type;
    em *e = c->e;
    int out = fe_imp_out(&e->p, c->n, 0);
    if (e->p.matches[c->n].kind != FE_IMP_PAT_NONE) return emit_match(c, &e->p.matches[c->n]);
    if (!known_op(nd)) return false;
    fe_imp_value *o = fe_imp_v(&e->p, out);
    if (o->rank < 0) {
        for (int k = 1; k < nd->n_inputs; k++)
            if (val(c, k) && !val(c, k)->is_const)
                return no(c, "its parameters are computed at run time, not constants");
        return no(c, "its result's shape is not known");
    }
    for (int d = 0; d < o->rank; d++)
        if (o->dims[d] == 0) return no(c, "its result is empty");
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div"))
        return op_binary(c);
    if (!strcmp(op, "Relu")) return op_unary(c, "relu");
    if (!strcmp(op, "Tanh")) return op_unary(c, "tanh");
    if (!strcmp(op, "Gelu")) {
        const fe_onnx_attr *a = fe_onnx_attr_find(nd, "approximate");
        if (a && a->type == FE_ONNX_ATTR_STRING && strcmp(a->s, "none") != 0)
            return no(c, "only the exact (erf) form");
        return op_unary(c, "gelu");
    }
    if (!strcmp(op, "Neg")) {
        const char *x = var_of(c, 0);
        return x && is_f32(val(c, 0)) && emit(c, out, sup_arena_printf(e->p.arena, "-%s", x));
    }
    if (!strcmp(op, "Reciprocal")) {
        const char *x = var_of(c, 0);
        return x && is_f32(val(c, 0)) && emit(c, out, sup_arena_printf(e->p.arena, "1.0 / %s", x));
    }
    if (!strcmp(op, "Pow")) return op_pow(c);
    if (!strcmp(op, "MatMul")) return op_matmul(c);
    if (!strcmp(op, "Gemm")) return op_gemm(c);
    if (!strcmp(op, "Softmax")) return op_softmax(c);
    if (!strcmp(op, "LayerNormalization")) return op_layernorm(c);
    if (!strcmp(op, "Gather")) return op_gather(c);
    if (!strcmp(op, "Reshape") || !strcmp(op, "Flatten") || !strcmp(op, "Squeeze") ||
        !strcmp(op, "Unsqueeze"))
        return reshape_to(c, out, in_idx(c, 0));
    if (!strcmp(op, "Transpose")) return op_transpose(c);
    if (!strcmp(op, "Concat")) return op_concat(c);
    if (!strcmp(op, "Slice")) return op_slice(c);
    if (!strcmp(op, "Split")) return op_split(c);
    if (!strcmp(op, "Cast")) return op_cast(c);
    if (!strcmp(op, "Identity")) return alias(c, out, in_idx(c, 0));
    if (!strcmp(op, "Dropout")) {
        if (nd->n_outputs > 1 && fe_imp_v(&e->p, fe_imp_out(&e->p, c->n, 1))->live)
            return no(c, "its mask output is used");
        return alias(c, out, in_idx(c, 0));
    }
    if (!strcmp(op, "Expand")) {
        fe_imp_value *x = val(c, 0);
        if (x && same_dims(x, o)) return alias(c, out, in_idx(c, 0));
        return no(c, "only when the shape does not change");
    }
    return false;
}

/* ---- the passes ---------------------------------------------------------------------------- */

static void report_bad(em *e, int n, const char *why)
{
    const fe_onnx_node *nd = &e->p.m->nodes[n];
    const char *type =
        *nd->domain ? sup_arena_printf(e->p.arena, "%s.%s", nd->domain, nd->op_type) : nd->op_type;
    int32_t *slot = fe_onnx_map_slot(e->p.arena, &e->bad_types, type, true);
    if (*slot >= 0) {
        e->bad[*slot].count++;
        return;
    }
    e->bad =
        sup_arena_grow(e->p.arena, e->bad, (size_t)e->n_bad, (size_t)e->n_bad + 1, sizeof *e->bad);
    e->bad[e->n_bad] = (struct bad){n, 1, why};
    *slot = e->n_bad++;
}

static bool setup_values(em *e)
{
    fe_imp *p = &e->p;
    const fe_onnx_model *m = p->m;
    int total = m->n_inputs + m->n_initializers;
    for (int n = 0; n < m->n_nodes; n++) total += m->nodes[n].n_outputs;
    p->values = sup_arena_alloc(p->arena, sizeof *p->values * (size_t)(total + 1));
    p->node_out = sup_arena_alloc(p->arena, sizeof *p->node_out * (size_t)(m->n_nodes + 1));
    p->matches = sup_arena_alloc(p->arena, sizeof *p->matches * (size_t)(m->n_nodes + 1));
    for (int i = 0; i < m->n_initializers; i++) {
        const fe_onnx_tensor *t = &m->initializers[i];
        fe_imp_value *v = &p->values[p->n_values];
        *v = (fe_imp_value){.name = t->name,
                            .dtype = t->dtype,
                            .rank = -1,
                            .producer = -1,
                            .tensor = t,
                            .is_const = t->dtype != FE_ONNX_STRING &&
                                        t->dtype != FE_ONNX_COMPLEX64 &&
                                        t->dtype != FE_ONNX_COMPLEX128};
        if (t->rank <= FE_IMP_MAX_RANK) {
            v->rank = t->rank;
            if (t->rank) memcpy(v->dims, t->dims, sizeof *t->dims * (size_t)t->rank);
        }
        *fe_onnx_map_slot(p->arena, &p->by_name, t->name, true) = p->n_values++;
    }
    for (int i = 0; i < m->n_inputs; i++) {
        fe_imp_value *v = &p->values[p->n_values];
        *v =
            (fe_imp_value){.name = m->inputs[i].name, .rank = -1, .producer = -1, .is_input = true};
        *fe_onnx_map_slot(p->arena, &p->by_name, v->name, true) = p->n_values++;
    }
    for (int n = 0; n < m->n_nodes; n++) {
        const fe_onnx_node *nd = &m->nodes[n];
        p->node_out[n] = p->n_values;
        for (int k = 0; k < nd->n_outputs; k++) {
            fe_imp_value *v = &p->values[p->n_values];
            *v = (fe_imp_value){
                .name = *nd->outputs[k] ? nd->outputs[k] : NULL, .rank = -1, .producer = n};
            if (v->name) *fe_onnx_map_slot(p->arena, &p->by_name, v->name, true) = p->n_values;
            p->n_values++;
        }
        for (int k = 0; k < nd->n_inputs; k++) {
            int vi = fe_imp_in(p, n, k);
            if (vi >= 0) p->values[vi].n_uses++;
        }
    }
    for (int i = 0; i < m->n_outputs; i++) {
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, m->outputs[i].name));
        v->is_output = true;
        v->n_uses++;
    }
    return true;
}

static const fe_onnx_shape *shape_arg(em *e, const char *name)
{
    for (int i = 0; i < e->o->n_shapes; i++)
        if (strcmp(e->o->shapes[i].name, name) == 0) return &e->o->shapes[i];
    return NULL;
}

/* Types and static shapes of the graph inputs (with --shape). */
static bool setup_inputs(em *e)
{
    fe_imp *p = &e->p;
    const fe_onnx_model *m = p->m;
    for (int i = 0; i < e->o->n_shapes; i++) {
        bool found = false;
        for (int k = 0; k < m->n_inputs; k++)
            found |= strcmp(m->inputs[k].name, e->o->shapes[i].name) == 0;
        if (!found)
            err(e, "--shape %s: the model has no input '%s'", e->o->shapes[i].name,
                e->o->shapes[i].name);
    }
    for (int i = 0; i < m->n_inputs; i++) {
        const fe_onnx_value_info *vi = &m->inputs[i];
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, vi->name));
        const fe_onnx_shape *s = shape_arg(e, vi->name);
        int t = vi->elem_type;
        if (t != FE_ONNX_FLOAT && t != FE_ONNX_INT64 && t != FE_ONNX_INT32) {
            err(e, "input '%s' is %s; qmc takes float inputs, and int64 or int32 indices",
                printable(e, vi->name), t ? fe_onnx_dtype_name(t) : "not a tensor of a known type");
            continue;
        }
        v->dtype = t;
        if (vi->rank > FE_IMP_MAX_RANK) {
            err(e, "input '%s' has %d dimensions, more than %d", printable(e, vi->name), vi->rank,
                FE_IMP_MAX_RANK);
            continue;
        }
        if (s && vi->rank >= 0 && s->rank != vi->rank) {
            err(e, "--shape %s has %d dimensions but the input has %d", s->name, s->rank, vi->rank);
            continue;
        }
        if (s) {
            for (int d = 0; d < s->rank && vi->rank >= 0; d++)
                if (vi->dims[d].value > 0 && vi->dims[d].value != s->dims[d])
                    err(e, "--shape %s: dimension %d is %lld in the model", s->name, d,
                        (long long)vi->dims[d].value);
            v->rank = s->rank;
            memcpy(v->dims, s->dims, sizeof *s->dims * (size_t)s->rank);
            continue;
        }
        if (vi->rank < 0) {
            err(e,
                "input '%s' has no shape in the model; give it with --shape %s=1x128 (for example)",
                printable(e, vi->name), printable(e, vi->name));
            continue;
        }
        v->rank = vi->rank;
        for (int d = 0; d < vi->rank; d++) {
            v->dims[d] = vi->dims[d].value;
            if (vi->dims[d].value > 0) continue;
            /* suggest the known dims, N for the others */
            const char *dims = "";
            for (int k = 0; k < vi->rank; k++)
                dims = vi->dims[k].value > 0
                           ? sup_arena_printf(p->arena, "%s%s%lld", dims, k ? "x" : "",
                                              (long long)vi->dims[k].value)
                           : sup_arena_printf(p->arena, "%s%sN", dims, k ? "x" : "");
            err(e,
                "input '%s' has a %s dimension%s%s%s (dimension %d): give its size with --shape "
                "%s=%s",
                printable(e, vi->name), vi->dims[d].value == 0 ? "zero" : "dynamic",
                vi->dims[d].param ? " '" : "",
                vi->dims[d].param ? printable(e, vi->dims[d].param) : "",
                vi->dims[d].param ? "'" : "", d, printable(e, vi->name), dims);
            break;
        }
    }
    return !e->failed;
}

static void mark_live(em *e)
{
    fe_imp *p = &e->p;
    for (int i = 0; i < p->m->n_outputs; i++)
        fe_imp_v(p, fe_imp_find(p, p->m->outputs[i].name))->live = true;
    for (int n = p->m->n_nodes - 1; n >= 0; n--) {
        const fe_onnx_node *nd = &p->m->nodes[n];
        bool live = false;
        for (int k = 0; k < nd->n_outputs; k++) {
            fe_imp_value *v = fe_imp_v(p, fe_imp_out(p, n, k));
            live |= v->live && !v->is_const;
        }
        if (!live) continue;
        const fe_imp_match *mt = &p->matches[n];
        if (mt->kind != FE_IMP_PAT_NONE) {
            for (int k = 0; k < mt->n_ops; k++)
                if (mt->ops[k] >= 0) fe_imp_v(p, mt->ops[k])->live = true;
            continue;
        }
        for (int k = 0; k < nd->n_inputs; k++) {
            int vi = fe_imp_in(p, n, k);
            if (vi >= 0) fe_imp_v(p, vi)->live = true;
        }
    }
}

/* With --drop-batch, a port whose leading dimension is 1 loses it. */
static bool drops(const em *e, const fe_imp_value *v)
{
    return e->o->drop_batch && v->rank >= 1 && v->dims[0] == 1;
}

/* Names of inputs and outputs (their ONNX names where those are
 * identifiers) and of the weights, reserved before any variable. A value
 * that is an output is computed under the output's name, unless the port
 * drops its batch dimension or the value has a name already (an input, an
 * earlier output): emit_outputs assigns those at the end. */
static void reserve_names(em *e)
{
    fe_imp *p = &e->p;
    const fe_onnx_model *m = p->m;
    for (int i = 0; reserved[i]; i++) take(e, reserved[i]);
    e->in_decl = sup_arena_alloc(p->arena, sizeof *e->in_decl * (size_t)(m->n_inputs + 1));
    e->out_decl = sup_arena_alloc(p->arena, sizeof *e->out_decl * (size_t)(m->n_outputs + 1));
    for (int i = 0; i < m->n_inputs; i++) {
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, m->inputs[i].name));
        const char *name = is_ident(v->name) ? v->name : ident_base(p->arena, v->name);
        v->text = e->in_decl[i] = unique_ident(e, name);
        *fe_onnx_map_slot(p->arena, &e->used, v->text, true) = 2;
    }
    for (int i = 0; i < m->n_outputs; i++) {
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, m->outputs[i].name));
        const char *name = is_ident(v->name) ? v->name : ident_base(p->arena, v->name);
        if (v->is_input && !drops(e, v) && strcmp(v->text, name) == 0) {
            e->out_decl[i] = v->text; /* an input that is also an output */
            continue;
        }
        e->out_decl[i] = unique_ident(e, name);
        *fe_onnx_map_slot(p->arena, &e->used, e->out_decl[i], true) = 2;
        if (!v->text && !drops(e, v)) v->text = e->out_decl[i];
    }
    /* inputs that drop their batch dimension are reshaped back first */
    for (int i = 0; i < m->n_inputs; i++) {
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, m->inputs[i].name));
        if (v->rank < 0 || !drops(e, v)) continue;
        v->text = unique_ident(e, sup_arena_printf(p->arena, "%s_1", e->in_decl[i]));
        fprintf(e->body, "    %s = reshape(%s, %s)\n", v->text, e->in_decl[i],
                int_list_text(e, v->dims, v->rank));
    }
    for (int i = 0; i < m->n_initializers; i++) name_tensor(e, m->initializers[i].name, true);
    for (int n = 0; n < m->n_nodes; n++)
        if (m->nodes[n].value) name_tensor(e, m->nodes[n].value->name, false);
}

static void emit_nodes(em *e)
{
    fe_imp *p = &e->p;
    for (int n = 0; n < p->m->n_nodes; n++) {
        const fe_onnx_node *nd = &p->m->nodes[n];
        bool live = false, runtime_inputs_ok = true;
        for (int k = 0; k < nd->n_outputs; k++) {
            fe_imp_value *v = fe_imp_v(p, fe_imp_out(p, n, k));
            live |= v->live && !v->is_const;
        }
        if (!live) continue;
        node_ctx c = {e, n, nd, NULL};
        /* a node after an untranslatable one is not reported again */
        const fe_imp_match *mt = &p->matches[n];
        for (int k = 0; k < (mt->kind ? mt->n_ops : nd->n_inputs); k++) {
            int vi = mt->kind ? mt->ops[k] : fe_imp_in(p, n, k);
            if (vi >= 0 && !fe_imp_v(p, vi)->is_const && !fe_imp_v(p, vi)->text)
                runtime_inputs_ok = false;
        }
        if (!runtime_inputs_ok) {
            /* an operator qmc never translates is still listed */
            if (!known_op(nd) && !mt->kind) report_bad(e, n, NULL);
            continue;
        }
        if (!translate(&c)) report_bad(e, n, c.why);
    }
}

/* Outputs not computed under their own name: constants, inputs, values
 * that are two outputs, ports that drop their batch dimension. */
static void emit_outputs(em *e)
{
    fe_imp *p = &e->p;
    for (int i = 0; i < p->m->n_outputs; i++) {
        int vi = fe_imp_find(p, p->m->outputs[i].name);
        fe_imp_value *v = fe_imp_v(p, vi);
        if (v->dtype != FE_ONNX_FLOAT && v->dtype) {
            err(e, "output '%s' is %s; qmc's outputs are float", printable(e, v->name),
                fe_onnx_dtype_name(v->dtype));
            continue;
        }
        if (v->rank < 0) {
            if (!e->n_bad) err(e, "output '%s' has no shape qmc can infer", printable(e, v->name));
            continue;
        }
        const char *t = v->text;
        if (v->is_const) {
            node_ctx c = {e, -1, NULL, NULL};
            if (!(t = tensor(&c, vi))) {
                err(e, "output '%s' is a constant that is not a float tensor",
                    printable(e, v->name));
                continue;
            }
        }
        if (!t || (strcmp(t, e->out_decl[i]) == 0 && !v->is_const)) continue;
        if (drops(e, v))
            t = sup_arena_printf(p->arena, "reshape(%s, %s)", t,
                                 int_list_text(e, v->dims + 1, v->rank - 1));
        fprintf(e->body, "    %s = %s\n", e->out_decl[i], t);
    }
}

static void header(em *e, FILE *f)
{
    fe_imp *p = &e->p;
    const fe_onnx_model *m = p->m;
    const fe_onnx_import_options *o = e->o;
    fprintf(f, "# Imported from %s by `qmc import`.\n",
            printable(e, o->source_name ? o->source_name : m->path));
    fprintf(f, "# Producer: %s; IR version %lld; opsets:",
            *m->producer ? printable(e, m->producer) : "unknown", (long long)m->ir_version);
    for (int i = 0; i < m->n_opsets; i++)
        fprintf(f, "%s %s %lld", i ? "," : "",
                *m->opsets[i].domain ? printable(e, m->opsets[i].domain) : "ai.onnx",
                (long long)m->opsets[i].version);
    fputc('\n', f);
    bool any = false;
    for (int i = 0; i < e->n_weights; i++) {
        const fe_onnx_weight *w = &e->weights[i];
        if (strcmp(w->name, w->onnx_name) == 0 && !w->transposed) continue;
        if (!any) fprintf(f, "# Weights named or laid out differently from the ONNX file:\n");
        any = true;
        fprintf(f, "#   %s: ONNX '%s'%s\n", w->name, printable(e, w->onnx_name),
                w->transposed ? ", transposed to [out, in] for linear" : "");
    }
}

static void declarations(em *e, FILE *f)
{
    fe_imp *p = &e->p;
    const fe_onnx_model *m = p->m;
    for (int i = 0; i < m->n_inputs; i++) {
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, m->inputs[i].name));
        int drop = drops(e, v);
        fprintf(f, "    input %s: %s%s", e->in_decl[i], v->dtype == FE_ONNX_FLOAT ? "f32" : "i32",
                int_list_text(e, v->dims + drop, v->rank - drop));
        if (v->dtype != FE_ONNX_FLOAT) fprintf(f, "    # ONNX %s", fe_onnx_dtype_name(v->dtype));
        if (strcmp(e->in_decl[i], v->name) != 0)
            fprintf(f, "    # ONNX name '%s'", printable(e, v->name));
        fputc('\n', f);
    }
    for (int i = 0; i < m->n_outputs; i++) {
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, m->outputs[i].name));
        int drop = drops(e, v);
        bool logits = strstr(v->name, "logits") != NULL;
        fprintf(f, "    output %s: f32%s%s", e->out_decl[i],
                int_list_text(e, v->dims + drop, v->rank - drop), logits ? " @logits" : "");
        if (strcmp(e->out_decl[i], v->name) != 0)
            fprintf(f, "    # ONNX name '%s'", printable(e, v->name));
        fputc('\n', f);
    }
}

static bool check_opsets(em *e)
{
    const fe_onnx_model *m = e->p.m;
    int64_t v = fe_onnx_opset_version(m, "");
    if (v > MAX_OPSET)
        return err(e, "the model uses operator set ai.onnx %lld; qmc handles ai.onnx 1 to %d",
                   (long long)v, MAX_OPSET);
    return true;
}

bool fe_onnx_import(sup_arena *arena, const fe_onnx_model *m, const fe_onnx_import_options *o,
                    fe_onnx_imported *out)
{
    memset(out, 0, sizeof *out);
    em e = {.p = {.arena = arena, .m = m, .budget = FE_IMP_FOLD_BUDGET}, .o = o};
    if (!check_opsets(&e) || !setup_values(&e) || !setup_inputs(&e)) return false;
    for (int n = 0; n < m->n_nodes; n++) fe_imp_fold_node(&e.p, n);
    for (int n = 0; n < m->n_nodes; n++) fe_imp_match_node(&e.p, n);
    mark_live(&e);
    char *body = NULL;
    size_t body_len = 0;
    e.body = open_memstream(&body, &body_len);
    if (!e.body) return err(&e, "out of memory");
    reserve_names(&e);
    emit_nodes(&e);
    emit_outputs(&e);
    fclose(e.body);
    for (int i = 0; i < e.n_bad; i++) {
        const fe_onnx_node *nd = &m->nodes[e.bad[i].node];
        err(&e, "node %s (%s%s%s, opset %lld): not supported%s%s",
            printable(&e, fe_onnx_node_label(arena, m, nd)),
            *nd->domain ? printable(&e, nd->domain) : "", *nd->domain ? "." : "", nd->op_type,
            (long long)nd->opset, e.bad[i].why ? ": " : "", e.bad[i].why ? e.bad[i].why : "");
    }
    if (e.failed) {
        free(body);
        return false;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        free(body);
        return err(&e, "out of memory");
    }
    header(&e, f);
    const char *name = o->model_name ? ident_base(arena, o->model_name) : "imported";
    if (in_set(name, reserved)) name = sup_arena_printf(arena, "%s_", name);
    fprintf(f, "model %s {\n", name);
    if (e.n_weights)
        fprintf(f, "    weights \"%s\"\n\n",
                o->weights_file ? o->weights_file : "weights.safetensors");
    declarations(&e, f);
    fprintf(f, "\n%s}\n", body);
    fclose(f);
    free(body);
    out->text = sup_arena_strndup(arena, text, len);
    out->len = len;
    free(text);
    out->weights = e.weights;
    out->n_weights = e.n_weights;
    return true;
}
