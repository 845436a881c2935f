/* onnx_emit.c: what translating ONNX into qmc's language writes with:
 * identifiers and weight paths for ONNX names, numbers and lists, the
 * weights the text names (initializers kept, computed constants added),
 * operands and statements, and the patterns onnx_match.c found.
 *
 * Needs: values typed and folded (onnx_fold.c). Guarantees: every name it
 * makes is an identifier or path of the language that nothing else uses;
 * a weight holds exactly the ONNX values it stands for (linear's weight
 * transposed to [N, K]); a statement's comment names the ONNX node(s). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_import.h"

/* ---- names ------------------------------------------------------------------ */

const char *const fe_imp_reserved[] = {"model",
                                       "weights",
                                       "input",
                                       "output",
                                       "const",
                                       "def",
                                       "for",
                                       "in",
                                       "return",
                                       "true",
                                       "false",
                                       "linear",
                                       "matmul",
                                       "add",
                                       "sub",
                                       "mul",
                                       "div",
                                       "relu",
                                       "gelu",
                                       "silu",
                                       "tanh",
                                       "softmax",
                                       "layernorm",
                                       "rmsnorm",
                                       "embedding",
                                       "reshape",
                                       "transpose",
                                       "slice",
                                       "concat",
                                       "attention",
                                       "sqrt",
                                       "rope",
                                       "positions",
                                       "sequence",
                                       "exp",
                                       "log",
                                       "erf",
                                       "sigmoid",
                                       "abs",
                                       "floor",
                                       "ceil",
                                       "leaky_relu",
                                       "hard_sigmoid",
                                       "hard_swish",
                                       "clip",
                                       "pow",
                                       "maximum",
                                       "minimum",
                                       "equal",
                                       "less",
                                       "less_equal",
                                       "greater",
                                       "greater_equal",
                                       "where",
                                       "reduce_sum",
                                       "reduce_mean",
                                       "reduce_max",
                                       "reduce_min",
                                       "log_softmax",
                                       "expand",
                                       "gather",
                                       "to_f32",
                                       "to_i32",
                                       "conv",
                                       "conv_transpose",
                                       "batchnorm",
                                       "maxpool",
                                       "avgpool",
                                       "global_avgpool",
                                       "resize",
                                       "pad",
                                       "hardsigmoid",
                                       "hardswish",
                                       "prelu",
                                       NULL};
static const char *const keywords[] = {"model", "weights",  "input", "output", "const",
                                       "def",   "for",      "in",    "return", "true",
                                       "false", "sequence", NULL};

bool fe_imp_in_set(const char *s, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0) return true;
    return false;
}

bool fe_imp_is_ident(const char *s)
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
char *fe_imp_ident_base(sup_arena *a, const char *name)
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

static bool taken(fe_imp_em *e, const char *s)
{
    return fe_onnx_map_slot(e->p.arena, &e->used, s, false) != NULL;
}
void fe_imp_take(fe_imp_em *e, const char *s)
{
    *fe_onnx_map_slot(e->p.arena, &e->used, s, true) = 1;
}

/* An identifier not used yet: base, base_2, base_3, ... */
const char *fe_imp_unique_ident(fe_imp_em *e, const char *base)
{
    if (fe_imp_in_set(base, fe_imp_reserved)) base = sup_arena_printf(e->p.arena, "%s_", base);
    const char *s = base;
    for (int k = 2; taken(e, s); k++) s = sup_arena_printf(e->p.arena, "%s_%d", base, k);
    fe_imp_take(e, s);
    return s;
}

/* A weight path the language can write for an ONNX tensor name: dotted
 * segments of letters, digits and '_', integers without leading zeros, no
 * keyword, starting with an identifier that no input or output uses. */
static const char *weight_path(fe_imp_em *e, const char *name)
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
        if (fe_imp_in_set(start, keywords)) *o++ = '_', *o = 0;
        if (!seg[len]) break;
        *o++ = '.';
        seg += len + 1;
    }
    *o = 0;
    return buf;
}

static const char *first_segment(fe_imp_em *e, const char *path)
{
    return sup_arena_strndup(e->p.arena, path, strcspn(path, "."));
}

/* Reserves the weight name for a tensor (initializer or Constant output):
 * unique among weights, its first segment no input's or output's name. */
void fe_imp_name_tensor(fe_imp_em *e, const char *onnx_name, bool path_like)
{
    if (fe_onnx_map_slot(e->p.arena, &e->tensor_name, onnx_name, false)) return;
    /* initializers keep their dotted names; Constant outputs
     * ("/blocks.0/Constant_output_0") become one identifier */
    const char *path =
        path_like ? weight_path(e, onnx_name) : fe_imp_ident_base(e->p.arena, onnx_name);
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
const char *fe_imp_printable(fe_imp_em *e, const char *s)
{
    char *o = sup_arena_strdup(e->p.arena, s);
    for (char *c = o; *c; c++)
        if ((unsigned char)*c < 32 || *c == 127) *c = '?';
    return o;
}

/* ---- numbers and lists --------------------------------------------------------- */

/* The shortest text that reads back as the same f32, always with a '.' or
 * an exponent; negative numbers in parentheses. NULL if not finite. */
const char *fe_imp_number(fe_imp_em *e, double x)
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

const char *fe_imp_int_list_text(fe_imp_em *e, const int64_t *v, int n)
{
    char *s = sup_arena_strdup(e->p.arena, "[");
    for (int i = 0; i < n; i++)
        s = sup_arena_printf(e->p.arena, "%s%s%lld", s, i ? ", " : "", (long long)v[i]);
    return sup_arena_printf(e->p.arena, "%s]", s);
}

/* ---- weights ----------------------------------------------------------------------- */

static const char *dims_key(fe_imp_em *e, int rank, const int64_t *dims)
{
    return fe_imp_int_list_text(e, dims, rank);
}

/* The weight holding value v (a float constant) in a layout: its logical
 * dims, their 2-D transpose, or flattened to [count] (a bias). */
const char *fe_imp_weight(fe_imp_em *e, fe_imp_value *v, bool transpose, bool flat)
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
        base = fe_imp_unique_ident(e, fe_imp_ident_base(e->p.arena, onnx));
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
        fe_imp_take(e, first_segment(e, name));
    }
    *used = 2;
    if (e->n_weights == e->cap_weights) {
        int cap = e->cap_weights ? 2 * e->cap_weights : 64;
        e->weights = sup_arena_grow(e->p.arena, e->weights, (size_t)e->n_weights, (size_t)cap,
                                    sizeof *e->weights);
        e->cap_weights = cap;
    }
    fe_onnx_weight *w = &e->weights[e->n_weights];
    *w = (fe_onnx_weight){.name = name,
                          .onnx_name = onnx,
                          .rank = rank,
                          .transposed = transpose,
                          .value = v,
                          .quantized = v->quant && rank == 2};
    memcpy(w->shape, dims, sizeof dims);
    *slot = e->n_weights++;
    return name;
}

/* A weight of d copies of x computed by the import (a norm's missing scale
 * or bias), named after node n's output. */
const char *fe_imp_filled(fe_imp_em *e, int n, int64_t d, double x, const char *what)
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
    return fe_imp_weight(e, z, false, false);
}

/* ---- operands -------------------------------------------------------------------------- */

/* The node cannot be translated, for this reason. */
const char *fe_imp_no_text(fe_imp_node *c, const char *why)
{
    c->why = why;
    return NULL;
}

bool fe_imp_no(fe_imp_node *c, const char *why)
{
    c->why = why;
    return false;
}

fe_imp_value *fe_imp_val(fe_imp_node *c, int k)
{
    int v = fe_imp_in(&c->e->p, c->n, k);
    return v >= 0 ? fe_imp_v(&c->e->p, v) : NULL;
}

/* Float or bool: a constant the text can hold as a weight (bool as 0 and 1). */
static bool float_like(int dtype) { return fe_imp_is_float(dtype) || dtype == FE_ONNX_BOOL; }

/* A tensor operand: a run-time value's variable, or a float (or bool)
 * constant as a weight. NULL (with a reason) otherwise. */
const char *fe_imp_tensor(fe_imp_node *c, int vi)
{
    if (vi < 0) return fe_imp_no_text(c, "an input is missing");
    fe_imp_value *v = fe_imp_v(&c->e->p, vi);
    if (!v->is_const) return v->text ? v->text : fe_imp_no_text(c, NULL);
    if (!float_like(v->dtype))
        return fe_imp_no_text(c, "an integer constant is used as a tensor at run time");
    if (v->rank < 0) return fe_imp_no_text(c, "a constant has more dimensions than qmc's 8");
    if (fe_imp_count(v) == 0) return fe_imp_no_text(c, "a constant is empty");
    return fe_imp_weight(c->e, v, false, false);
}

/* An elementwise operand: a number when the constant is one element that
 * broadcasting would not add dims for (an integer one too: Pow's
 * exponent), else a tensor. */
const char *fe_imp_operand(fe_imp_node *c, int vi, int result_rank)
{
    fe_imp_value *v = vi >= 0 ? fe_imp_v(&c->e->p, vi) : NULL;
    double x;
    if (v && v->is_const && v->rank <= result_rank && fe_imp_const_scalar(&c->e->p, v, &x)) {
        const char *s = fe_imp_number(c->e, x);
        if (s) return s;
    }
    return fe_imp_tensor(c, vi);
}

int fe_imp_in_idx(fe_imp_node *c, int k) { return fe_imp_in(&c->e->p, c->n, k); }

const char *fe_imp_var_of(fe_imp_node *c, int k)
{
    fe_imp_value *v = fe_imp_val(c, k);
    if (!v || v->is_const) return fe_imp_tensor(c, fe_imp_in_idx(c, k));
    return v->text;
}

bool fe_imp_is_f32(const fe_imp_value *v) { return v && v->dtype == FE_ONNX_FLOAT; }
bool fe_imp_is_index(const fe_imp_value *v)
{
    return v && (v->dtype == FE_ONNX_INT64 || v->dtype == FE_ONNX_INT32);
}

int64_t fe_imp_attr_int(const fe_onnx_node *n, const char *name, int64_t dflt)
{
    const fe_onnx_attr *a = fe_onnx_attr_find(n, name);
    return a && a->type == FE_ONNX_ATTR_INT ? a->i : dflt;
}

float fe_imp_attr_float(const fe_onnx_node *n, const char *name, float dflt)
{
    const fe_onnx_attr *a = fe_onnx_attr_find(n, name);
    return a && a->type == FE_ONNX_ATTR_FLOAT ? a->f : dflt;
}

/* ---- statements ---------------------------------------------------------------------- */

/* The comment after a statement: the ONNX node(s) it comes from. */
static const char *origin(fe_imp_em *e, int first, int root, int n_nodes)
{
    const fe_onnx_model *m = e->p.m;
    const char *r = fe_imp_printable(e, fe_onnx_node_label(e->p.arena, m, &m->nodes[root]));
    if (n_nodes <= 1) return sup_arena_printf(e->p.arena, "%s (%s)", r, m->nodes[root].op_type);
    const char *f = fe_imp_printable(e, fe_onnx_node_label(e->p.arena, m, &m->nodes[first]));
    return sup_arena_printf(e->p.arena, "%s .. %s (%d nodes)", f, r, n_nodes);
}

/* `name = expr` for output value vi; the value is then known by name. */
static void assign(fe_imp_node *c, int vi, const char *expr, const char *comment)
{
    fe_imp_value *v = fe_imp_v(&c->e->p, vi);
    if (!v->text) v->text = fe_imp_unique_ident(c->e, fe_imp_ident_base(c->e->p.arena, v->name));
    fprintf(c->e->body, "    %s = %s", v->text, expr);
    if (comment) fprintf(c->e->body, "    # %s", comment);
    fputc('\n', c->e->body);
}

/* Output vi is input value x under another name: no statement unless it
 * is a graph output (which must be assigned by its name). */
bool fe_imp_alias(fe_imp_node *c, int vi, int x)
{
    const char *t = fe_imp_tensor(c, x);
    if (!t) return false;
    fe_imp_value *v = fe_imp_v(&c->e->p, vi);
    if (v->is_output)
        assign(c, vi, t, origin(c->e, c->n, c->n, 1));
    else
        v->text = t;
    return true;
}

bool fe_imp_emit(fe_imp_node *c, int vi, const char *expr)
{
    if (!expr) return false;
    assign(c, vi, expr, origin(c->e, c->n, c->n, 1));
    return true;
}

bool fe_imp_same_dims(const fe_imp_value *a, const fe_imp_value *b)
{
    return a->rank == b->rank && memcmp(a->dims, b->dims, sizeof *a->dims * (size_t)a->rank) == 0;
}

/* reshape(x, dims of out), or x itself when the dims are the same. */
bool fe_imp_reshape_to(fe_imp_node *c, int out, int x)
{
    fe_imp_value *o = fe_imp_v(&c->e->p, out), *xv = fe_imp_v(&c->e->p, x);
    if (fe_imp_same_dims(o, xv)) return fe_imp_alias(c, out, x);
    const char *t = fe_imp_tensor(c, x);
    return t && fe_imp_emit(c, out,
                            sup_arena_printf(c->e->p.arena, "reshape(%s, %s)", t,
                                             fe_imp_int_list_text(c->e, o->dims, o->rank)));
}

/* ---- patterns ---------------------------------------------------------------------------- */

bool fe_imp_emit_match(fe_imp_node *c, const fe_imp_match *m)
{
    fe_imp_em *e = c->e;
    sup_arena *a = e->p.arena;
    int out = fe_imp_out(&e->p, m->root, 0);
    const char *expr = NULL, *x = fe_imp_tensor(c, m->ops[0]);
    if (!x) return false;
    switch (m->kind) {
    case FE_IMP_PAT_LINEAR: {
        const char *w = fe_imp_weight(e, fe_imp_v(&e->p, m->ops[1]), m->transpose_w, false);
        for (int i = e->n_weights - 1; m->act_static && i >= 0; i--)
            if (e->weights[i].name == w) { /* its input's scale and zero point */
                e->weights[i].act_static = true;
                e->weights[i].act_scale = m->act_scale;
                e->weights[i].act_zero = m->act_zero;
                e->weights[i].act_type = m->act_type;
                break;
            }
        expr = m->ops[2] >= 0
                   ? sup_arena_printf(a, "linear(%s, %s, %s)", x, w,
                                      fe_imp_weight(e, fe_imp_v(&e->p, m->ops[2]), false, true))
                   : sup_arena_printf(a, "linear(%s, %s)", x, w);
        break;
    }
    case FE_IMP_PAT_GELU: expr = sup_arena_printf(a, "gelu(%s)", x); break;
    case FE_IMP_PAT_SILU: expr = sup_arena_printf(a, "silu(%s)", x); break;
    case FE_IMP_PAT_ATTENTION: {
        const char *qkv[3];
        for (int i = 0; i < 3; i++) {
            const fe_imp_value *v = fe_imp_v(&e->p, m->ops[i]);
            qkv[i] = fe_imp_tensor(c, m->ops[i]);
            if (!qkv[i]) return false;
            if (v->rank == 3) {
                int64_t d2[2] = {v->dims[1], v->dims[2]};
                qkv[i] =
                    sup_arena_printf(a, "reshape(%s, %s)", qkv[i], fe_imp_int_list_text(e, d2, 2));
            }
        }
        expr = sup_arena_printf(a, "attention(%s, %s, %s, heads=%d, causal=%s", qkv[0], qkv[1],
                                qkv[2], m->heads, m->causal ? "true" : "false");
        if (m->scale != 0)
            expr = sup_arena_printf(a, "%s, scale=%s", expr, fe_imp_number(e, m->scale));
        expr = sup_arena_printf(a, "%s)", expr);
        const fe_imp_value *o = fe_imp_v(&e->p, out), *q = fe_imp_v(&e->p, m->ops[0]),
                           *v = fe_imp_v(&e->p, m->ops[2]);
        int64_t d2[2] = {q->dims[q->rank - 2], v->dims[v->rank - 1]};
        if (o->rank != 2 || o->dims[0] != d2[0] || o->dims[1] != d2[1])
            expr = sup_arena_printf(a, "reshape(%s, %s)", expr,
                                    fe_imp_int_list_text(e, o->dims, o->rank));
        break;
    }
    case FE_IMP_PAT_LAYERNORM:
    case FE_IMP_PAT_RMSNORM: {
        const fe_imp_value *xv = fe_imp_v(&e->p, m->ops[0]);
        int64_t d = xv->dims[xv->rank - 1];
        const char *w = m->ops[1] >= 0 ? fe_imp_weight(e, fe_imp_v(&e->p, m->ops[1]), false, true)
                                       : fe_imp_filled(e, m->root, d, 1, "weight");
        const char *eps = fe_imp_number(e, m->scale);
        if (m->kind == FE_IMP_PAT_RMSNORM) {
            expr = sup_arena_printf(a, "rmsnorm(%s, %s, eps=%s)", x, w, eps);
            break;
        }
        const char *b = m->ops[2] >= 0 ? fe_imp_weight(e, fe_imp_v(&e->p, m->ops[2]), false, true)
                                       : fe_imp_filled(e, m->root, d, 0, "bias");
        expr = sup_arena_printf(a, "layernorm(%s, %s, %s, eps=%s)", x, w, b, eps);
        break;
    }
    case FE_IMP_PAT_NONE: return false;
    }
    const char *from = origin(e, m->first, m->root, m->n_nodes);
    if (m->act_static) { /* the QuantizeLinear -> DequantizeLinear pair it absorbed */
        const fe_onnx_model *om = e->p.m;
        from = sup_arena_printf(
            a, "%s; its input through %s, %s (%s, scale %s, zero point %d): :a8:static", from,
            fe_imp_printable(e, fe_onnx_node_label(a, om, &om->nodes[m->act_q])),
            fe_imp_printable(e, fe_onnx_node_label(a, om, &om->nodes[m->act_dq])),
            m->act_type == FE_ONNX_UINT8 ? "uint8" : "int8", fe_imp_number(e, m->act_scale),
            m->act_zero + (m->act_type == FE_ONNX_UINT8 ? 128 : 0));
    }
    assign(c, out, expr, from);
    return true;
}
