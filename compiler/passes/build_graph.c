/* build_graph.c: elaboration of the syntax tree into the graph IR.
 *
 * Needs: a syntactically valid tree (parse.c).
 * Guarantees: constants are evaluated, `for` loops unrolled, functions
 * inlined, every name resolved to a local value or a tensor of the weights
 * file (checked against its shape and dtype), every node's shape inferred
 * as it is created. Any error is reported at the expression that caused it
 * and NULL is returned.
 *
 * Values during elaboration are compile-time numbers, booleans, strings,
 * lists, tensors (graph nodes) or weight prefixes: `blocks.0` evaluates to a
 * prefix, so a function can take `blocks.{i}` and refer to `p.fc1.weight`. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

/* Limits that keep a small source from unrolling into an enormous graph,
 * or taking long or much memory to elaborate: calls nest at most
 * MAX_CALL_DEPTH deep, one loop runs at most MAX_LOOP_TRIPS times,
 * elaboration runs at most MAX_STATEMENTS statements (loop trips count),
 * evaluates at most MAX_EXPRESSIONS expressions and makes at most MAX_NODES
 * nodes. A real model needs a few thousand of each. */
enum {
    MAX_CALL_DEPTH = 64,
    MAX_LOOP_TRIPS = 1 << 20,
    MAX_STATEMENTS = 1 << 20,
    MAX_EXPRESSIONS = 1 << 22,
    MAX_NODES = 1 << 18,
    MAX_ARGS = 16
};

typedef enum val_kind {
    VAL_NONE,
    VAL_INT,
    VAL_FLOAT,
    VAL_BOOL,
    VAL_STRING,
    VAL_TENSOR, /* node */
    VAL_PREFIX, /* str: a weight-name prefix such as "blocks.0" */
    VAL_LIST,   /* items */
} val_kind;

typedef struct value value;
struct value {
    val_kind kind;
    int64_t i;
    double f;
    const char *str;
    int32_t node;
    value *items;
    int n_items;
    sup_loc loc; /* the expression it came from */
};

typedef struct binding {
    const char *name;
    value v;
    bool is_const, is_input, is_loop;
    sup_loc loc;
} binding;

/* A scope's bindings live in a malloc'd array freed when the scope ends
 * (scope_free): a loop calling a function a million times must not keep a
 * million dead scopes. Values themselves live in the arena. */
typedef struct scope scope;
struct scope {
    binding *b;
    int n, cap;
    scope *parent;
};

typedef struct builder {
    sup_arena *arena;
    ir_graph *g;
    const pass_build_options *opts;
    scope *globals;
    const fe_node **defs;
    int n_defs;
    int depth;            /* function call depth */
    sup_loc outer_call;    /* the call made from the model that led to the current depth */
    int64_t statements;   /* statements run so far */
    int64_t expressions;  /* expressions evaluated so far */
    const char *context;  /* name prefix for nodes made inside a call, or NULL */
    ir_name_map node_names;  /* node name -> uses */
    ir_name_map weight_nodes; /* tensor name -> node */
    const char **weight_names; /* all tensor names, for suggestions */
} builder;

static const char *const precision_names[] = {"f32",     "int8",    "int4",   "int4g64",
                                              "int4g128", "fp8e4m3", "fp8e5m2"};

/* ---- small utilities ---------------------------------------------------- */

static const char *kind_name(val_kind k)
{
    static const char *const names[] = {"nothing", "an integer", "a number", "a boolean",
                                        "a string", "a tensor", "a weight prefix", "a list"};
    return names[k];
}

static bool fail(sup_loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(sup_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_verror("error", loc, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- scopes ------------------------------------------------------------- */

static binding *scope_find_local(scope *s, const char *name)
{
    for (int i = s->n - 1; i >= 0; i--)
        if (strcmp(s->b[i].name, name) == 0) return &s->b[i];
    return NULL;
}

static binding *scope_find(scope *s, const char *name)
{
    for (; s; s = s->parent) {
        binding *x = scope_find_local(s, name);
        if (x) return x;
    }
    return NULL;
}

static binding *scope_bind(scope *s, const char *name, value v, sup_loc loc)
{
    binding *x = scope_find_local(s, name);
    if (!x) {
        if (s->n == s->cap) {
            int cap = s->cap ? s->cap * 2 : 8;
            binding *grown = realloc(s->b, sizeof *s->b * (size_t)cap);
            if (!grown) {
                fprintf(stderr, "qmc: error: out of memory\n");
                exit(1);
            }
            s->b = grown;
            s->cap = cap;
        }
        x = &s->b[s->n++];
        memset(x, 0, sizeof *x);
        x->name = name;
    }
    x->v = v;
    x->loc = loc;
    return x;
}

static void scope_free(scope *s)
{
    free(s->b);
    s->b = NULL;
    s->n = s->cap = 0;
}

static void scope_unbind(scope *s, const char *name)
{
    for (int i = s->n - 1; i >= 0; i--)
        if (strcmp(s->b[i].name, name) == 0) {
            s->b[i] = s->b[--s->n];
            return;
        }
}

/* ---- node creation ------------------------------------------------------ */

/* A unique node name: base, then base#2, base#3, ... */
static const char *unique_name(builder *b, const char *base)
{
    int32_t *uses = ir_name_map_slot(b->arena, &b->node_names, base, false);
    if (!uses) {
        *ir_name_map_slot(b->arena, &b->node_names, base, true) = 1;
        return base;
    }
    for (;;) {
        const char *name = sup_arena_printf(b->arena, "%s#%d", base, ++*uses);
        if (!ir_name_map_slot(b->arena, &b->node_names, name, false)) {
            *ir_name_map_slot(b->arena, &b->node_names, name, true) = 1;
            return name;
        }
    }
}

/* Adds an op node and infers its shape; -1 after reporting an error. */
static int32_t add_op(builder *b, ir_op op, const int32_t *inputs, int n, sup_loc loc,
                      const ir_attrs *attr)
{
    int32_t idx = ir_add_node(b->g, op, inputs, n, loc);
    if (attr) b->g->nodes[idx].attr = *attr;
    b->g->nodes[idx].name = NULL; /* named when its statement completes */
    if (!ir_infer_node_shape(b->g, idx)) return -1;
    return idx;
}

static int32_t add_const(builder *b, double v, sup_loc loc)
{
    int32_t idx = ir_add_node(b->g, IR_OP_CONST, NULL, 0, loc);
    b->g->nodes[idx].attr.value = (float)v;
    return idx;
}

/* Names every node made since `first` that has none: the statement's result
 * gets `var`, the others `var.op`. */
static void name_new_nodes(builder *b, int32_t first, int32_t result, const char *var)
{
    for (int32_t i = first; i < b->g->n_nodes; i++) {
        ir_node *n = &b->g->nodes[i];
        if (n->name) continue;
        const char *base = i == result ? var : sup_arena_printf(b->arena, "%s.%s", var, ir_op_name(n->op));
        if (b->context) base = sup_arena_printf(b->arena, "%s/%s", b->context, base);
        n->name = unique_name(b, base);
    }
}

/* ---- weights ------------------------------------------------------------ */

/* The weights file as written in the model, relative to the model's folder. */
static const char *weights_path(builder *b, const char *written)
{
    const char *slash = strrchr(b->g->source, '/');
    if (written[0] == '/' || !slash) return written;
    return sup_arena_printf(b->arena, "%.*s/%s", (int)(slash - b->g->source), b->g->source, written);
}

/* Opens the weights file: --weights if given, else the `weights` statement
 * (stmt, NULL when the model has none and --weights supplies the file). */
static bool open_weights(builder *b, const fe_node *stmt)
{
    ir_graph *g = b->g;
    const char *override = b->opts ? b->opts->weights_override : NULL;
    if (stmt && g->weights) {
        if (override && !g->weights_loc.line) { /* opened from --weights already */
            g->weights_loc = stmt->loc;
            return true;
        }
        fail(stmt->loc, "the model already has a weights file");
        return sup_note(g->weights_loc, "the first 'weights' statement is here"), false;
    }
    const char *path = override ? override : weights_path(b, stmt->str);
    g->weights = sup_arena_alloc(b->arena, sizeof *g->weights);
    if (stmt) g->weights_loc = stmt->loc;
    g->weights_spec = override ? override : stmt->str;
    char err[512];
    qmc_status st = fe_safetensors_open(b->arena, path, g->weights, err, sizeof err);
    if (st != QMC_OK) {
        const char *what = st == QMC_ERR_IO ? "cannot read" : "malformed";
        if (stmt)
            fail(stmt->loc, "%s weights file '%s'%s: %s", what, path, override ? " (given with --weights)" : "", err);
        else
            sup_error_plain("%s weights file '%s' (given with --weights): %s", what, path, err);
        g->weights = NULL;
        return false;
    }
    b->weight_names = sup_arena_alloc(b->arena, sizeof *b->weight_names * (size_t)(g->weights->count + 1));
    for (int i = 0; i < g->weights->count; i++) b->weight_names[i] = g->weights->tensors[i].name;
    return true;
}

/* The node of weight `name`, created on first use; -1 after reporting a
 * tensor the graph cannot hold (an empty dimension, too many elements). */
static int32_t weight_node(builder *b, const fe_tensor *t, sup_loc loc)
{
    int32_t *slot = ir_name_map_slot(b->arena, &b->weight_nodes, t->name, false);
    if (slot) return *slot;
    char shape[RT_SHAPE_STR_MAX];
    for (int d = 0; d < t->rank; d++)
        if (t->shape[d] < 1) {
            fail(loc, "weight '%s' is empty: it has shape %s in '%s'", t->name,
                 rt_shape_str(t->dtype, t->rank, t->shape, shape, sizeof shape), b->g->weights->path);
            return -1;
        }
    if (t->count > IR_MAX_ELEMENTS) {
        fail(loc, "weight '%s' has more than %lld elements", t->name, (long long)IR_MAX_ELEMENTS);
        return -1;
    }
    int32_t idx = ir_add_node(b->g, IR_OP_WEIGHT, NULL, 0, loc);
    ir_node *n = &b->g->nodes[idx];
    n->name = unique_name(b, t->name);
    n->tensor = t;
    n->dtype = QMC_DTYPE_F32;
    n->rank = t->rank;
    memcpy(n->shape, t->shape, sizeof n->shape);
    *ir_name_map_slot(b->arena, &b->weight_nodes, t->name, true) = idx;
    return idx;
}

/* true if some tensor name starts with `prefix.` */
static bool is_weight_prefix(builder *b, const char *prefix)
{
    if (!b->g->weights) return false;
    size_t n = strlen(prefix);
    for (int i = 0; i < b->g->weights->count; i++) {
        const char *name = b->g->weights->tensors[i].name;
        if (strncmp(name, prefix, n) == 0 && name[n] == '.') return true;
    }
    return false;
}

/* ---- expressions -------------------------------------------------------- */

static bool eval(builder *b, scope *s, const fe_node *e, value *out);
static bool run_stmts(builder *b, scope *s, const fe_list *body, value *ret, bool *returned);

static bool want_int(const value *v, const char *what, int64_t *out)
{
    if (v->kind == VAL_INT) return *out = v->i, true;
    return fail(v->loc, "%s must be an integer, not %s", what, kind_name(v->kind));
}

static bool want_number(const value *v, const char *what, double *out)
{
    if (v->kind == VAL_INT) return *out = (double)v->i, true;
    if (v->kind == VAL_FLOAT) return *out = v->f, true;
    return fail(v->loc, "%s must be a number, not %s", what, kind_name(v->kind));
}

/* A tensor operand; numbers become scalar constants. */
static bool want_tensor(builder *b, const value *v, const char *what, int32_t *out)
{
    if (v->kind == VAL_TENSOR) return *out = v->node, true;
    if (v->kind == VAL_INT || v->kind == VAL_FLOAT) {
        *out = add_const(b, v->kind == VAL_INT ? (double)v->i : v->f, v->loc);
        return true;
    }
    if (v->kind == VAL_PREFIX)
        return fail(v->loc, "%s must be a tensor, but '%s' is only a prefix of weight names", what, v->str);
    return fail(v->loc, "%s must be a tensor, not %s", what, kind_name(v->kind));
}

static bool check_annotation(builder *b, const fe_node *e, value *v)
{
    const char *a = e->name;
    for (size_t i = 0; i < sizeof precision_names / sizeof precision_names[0]; i++) {
        if (strcmp(a, precision_names[i]) != 0) continue;
        if (v->kind != VAL_TENSOR || b->g->nodes[v->node].op != IR_OP_WEIGHT)
            return fail(e->loc, "the precision annotation '@%s' applies to a weight, not to %s", a,
                        v->kind == VAL_TENSOR ? "a computed tensor" : kind_name(v->kind));
        ir_node *w = &b->g->nodes[v->node];
        if (w->precision && strcmp(w->precision, a) != 0) {
            fail(e->loc, "weight '%s' is annotated both '@%s' and '@%s'", w->name, w->precision, a);
            return sup_note(w->precision_loc, "the first annotation is here"), false;
        }
        w->precision = a;
        w->precision_loc = e->loc;
        return true;
    }
    if (strcmp(a, "logits") == 0)
        return fail(e->loc, "'@logits' marks an output declaration, not an expression");
    const char *best = rt_closest(a, precision_names, sizeof precision_names / sizeof precision_names[0]);
    if (best) return fail(e->loc, "unknown annotation '@%s'; did you mean '@%s'?", a, best);
    return fail(e->loc, "unknown annotation '@%s' (precisions: f32, int8, int4, int4g64, int4g128, "
                        "fp8e4m3, fp8e5m2)", a);
}

/* Renders a path's segments with interpolations evaluated ("blocks.0.fc1"). */
static bool path_string(builder *b, scope *s, const fe_node *path, int from, char **out)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    bool ok = f != NULL;
    for (int i = from; ok && i < path->list.count; i++) {
        const fe_node *seg = path->list.items[i];
        if (i > from) fputc('.', f);
        for (int j = 0; ok && j < seg->list.count; j++) {
            const fe_node *part = seg->list.items[j];
            if (part->kind == FE_PART_NAME) { fputs(part->str, f); continue; }
            if (part->kind == FE_PART_INT) { fprintf(f, "%lld", (long long)part->ival); continue; }
            value v;
            int64_t k = 0;
            ok = eval(b, s, part->lhs, &v) && want_int(&v, "an interpolated path segment", &k);
            if (ok) fprintf(f, "%lld", (long long)k);
        }
    }
    if (f) fclose(f);
    if (ok) *out = sup_arena_strndup(b->arena, buf, len);
    free(buf);
    return ok;
}

/* Reports an unknown name, suggesting the closest local or weight name. */
static bool unknown_name(builder *b, scope *s, const char *name, sup_loc loc, bool dotted)
{
    int n_weights = b->g->weights ? b->g->weights->count : 0;
    int n_cands = n_weights;
    for (scope *x = s; x; x = x->parent) n_cands += x->n;
    const char **cands = sup_arena_alloc(b->arena, sizeof *cands * (size_t)(n_cands + 1));
    int k = 0;
    for (int i = 0; i < n_weights; i++) cands[k++] = b->weight_names[i];
    if (!dotted)
        for (scope *x = s; x; x = x->parent)
            for (int i = 0; i < x->n; i++) cands[k++] = x->b[i].name;
    const char *best = rt_closest(name, cands, k);
    const char *what = dotted ? "weight" : "identifier";
    if (dotted && !b->g->weights)
        return fail(loc, "unknown weight '%s': the model has no weights file (add `weights \"FILE\"` to the "
                         "model or pass --weights FILE)", name);
    if (best) return fail(loc, "unknown %s '%s'; did you mean '%s'?", what, name, best);
    return fail(loc, "unknown %s '%s'", what, name);
}

static bool eval_path(builder *b, scope *s, const fe_node *e, value *out)
{
    const fe_node *first = e->list.items[0];
    bool simple_first = first->list.count == 1 && first->list.items[0]->kind == FE_PART_NAME;
    const char *rest = NULL, *prefix = NULL;
    if (simple_first) {
        binding *x = scope_find(s, first->list.items[0]->str);
        if (x && e->list.count == 1) {
            *out = x->v;
            out->loc = e->loc;
            return true;
        }
        if (x && x->v.kind != VAL_PREFIX)
            return fail(e->loc, "'%s' is %s, not a weight prefix, so '.' cannot follow it", x->name,
                        kind_name(x->v.kind));
        if (x) prefix = x->v.str;
    }
    char *tail;
    if (!path_string(b, s, e, prefix ? 1 : 0, &tail)) return false;
    rest = prefix ? sup_arena_printf(b->arena, "%s.%s", prefix, tail) : tail;
    const fe_tensor *t = b->g->weights ? fe_safetensors_find(b->g->weights, rest) : NULL;
    memset(out, 0, sizeof *out);
    out->loc = e->loc;
    if (t) {
        out->kind = VAL_TENSOR;
        out->node = weight_node(b, t, e->loc);
        return out->node >= 0;
    }
    if (is_weight_prefix(b, rest)) {
        out->kind = VAL_PREFIX;
        out->str = rest;
        return true;
    }
    return unknown_name(b, s, rest, e->loc, e->list.count > 1 || prefix);
}

static bool scalar_arith(char op, const value *l, const value *r, sup_loc loc, value *out)
{
    memset(out, 0, sizeof *out);
    out->loc = loc;
    if (l->kind == VAL_INT && r->kind == VAL_INT) {
        int64_t a = l->i, c = r->i, v;
        bool overflow = false;
        switch (op) {
        case '+': overflow = __builtin_add_overflow(a, c, &v); break;
        case '-': overflow = __builtin_sub_overflow(a, c, &v); break;
        case '*': overflow = __builtin_mul_overflow(a, c, &v); break;
        default:
            if (c == 0) return fail(loc, "division by zero");
            if (c == -1) { overflow = __builtin_sub_overflow(0, a, &v); break; }
            if (a % c == 0) { v = a / c; break; }
            out->kind = VAL_FLOAT;
            out->f = (double)a / (double)c;
            return true;
        }
        if (overflow) return fail(loc, "integer overflow in constant expression");
        out->kind = VAL_INT;
        out->i = v;
        return true;
    }
    double a = l->kind == VAL_INT ? (double)l->i : l->f, c = r->kind == VAL_INT ? (double)r->i : r->f;
    out->kind = VAL_FLOAT;
    switch (op) {
    case '+': out->f = a + c; break;
    case '-': out->f = a - c; break;
    case '*': out->f = a * c; break;
    default:
        if (c == 0) return fail(loc, "division by zero");
        out->f = a / c;
    }
    return true;
}

static bool is_number(const value *v) { return v->kind == VAL_INT || v->kind == VAL_FLOAT; }

static bool eval_binary(builder *b, scope *s, const fe_node *e, value *out)
{
    value l, r;
    if (!eval(b, s, e->lhs, &l) || !eval(b, s, e->rhs, &r)) return false;
    if (is_number(&l) && is_number(&r)) return scalar_arith(e->op, &l, &r, e->loc, out);
    static const char ops[] = "+-*/";
    static const ir_op irops[] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_DIV};
    int32_t in[2];
    const char *what = "an operand of an arithmetic operator";
    if (!want_tensor(b, &l, what, &in[0]) || !want_tensor(b, &r, what, &in[1])) return false;
    ir_op op = irops[strchr(ops, e->op) - ops];
    memset(out, 0, sizeof *out);
    out->kind = VAL_TENSOR;
    out->loc = e->loc;
    out->node = add_op(b, op, in, 2, e->loc, NULL);
    return out->node >= 0;
}

/* ---- builtin operations -------------------------------------------------- */

typedef struct call_args {
    const fe_node *call;
    value v[MAX_ARGS]; /* by parameter position; VAL_NONE when not given */
    int n_variadic;    /* concat: positional tensors */
    value variadic[MAX_ARGS];
} call_args;

typedef bool (*builtin_fn)(builder *b, call_args *a, value *out);

typedef struct builtin {
    const char *name;
    int n_required;
    const char *params[6]; /* parameter names in positional order */
    builtin_fn build;
    bool variadic; /* positional arguments are a list of tensors (concat) */
} builtin;

static bool tensor_result(builder *b, ir_op op, const int32_t *in, int n, call_args *a,
                          const ir_attrs *attr, value *out)
{
    memset(out, 0, sizeof *out);
    out->kind = VAL_TENSOR;
    out->loc = a->call->loc;
    out->node = add_op(b, op, in, n, a->call->loc, attr);
    return out->node >= 0;
}

static int rank_of(builder *b, int32_t node) { return b->g->nodes[node].rank; }

/* Normalises a possibly negative axis against rank. */
static bool axis_arg(const value *v, int rank, int *out)
{
    int64_t ax = 0;
    if (!want_int(v, "the axis", &ax)) return false;
    if (ax < -rank || ax >= rank)
        return fail(v->loc, "axis %lld is out of range for a tensor of %d dimensions", (long long)ax, rank);
    *out = (int)(ax < 0 ? ax + rank : ax);
    return true;
}

static bool build_linear(builder *b, call_args *a, value *out)
{
    int32_t in[3];
    int n = a->v[2].kind == VAL_NONE ? 2 : 3;
    for (int i = 0; i < n; i++)
        if (!want_tensor(b, &a->v[i], i == 0 ? "the input" : i == 1 ? "the weight" : "the bias", &in[i]))
            return false;
    if (!tensor_result(b, IR_OP_LINEAR, in, n, a, NULL, out)) return false;
    /* name a linear after its weight, as a user would look for it */
    ir_node *w = &b->g->nodes[in[1]];
    if (w->op == IR_OP_WEIGHT) {
        size_t len = strlen(w->name);
        const char *base = len > 7 && strcmp(w->name + len - 7, ".weight") == 0
                               ? sup_arena_strndup(b->arena, w->name, len - 7)
                               : w->name;
        b->g->nodes[out->node].name = unique_name(b, base);
    }
    return true;
}

static bool build_binary(builder *b, call_args *a, value *out, ir_op op)
{
    int32_t in[2];
    if (!want_tensor(b, &a->v[0], "the first operand", &in[0]) ||
        !want_tensor(b, &a->v[1], "the second operand", &in[1]))
        return false;
    return tensor_result(b, op, in, 2, a, NULL, out);
}

static bool build_matmul(builder *b, call_args *a, value *out) { return build_binary(b, a, out, IR_OP_MATMUL); }
static bool build_add(builder *b, call_args *a, value *out) { return build_binary(b, a, out, IR_OP_ADD); }
static bool build_sub(builder *b, call_args *a, value *out) { return build_binary(b, a, out, IR_OP_SUB); }
static bool build_mul(builder *b, call_args *a, value *out) { return build_binary(b, a, out, IR_OP_MUL); }
static bool build_div(builder *b, call_args *a, value *out) { return build_binary(b, a, out, IR_OP_DIV); }

static bool build_unary(builder *b, call_args *a, value *out, ir_op op)
{
    int32_t x;
    if (!want_tensor(b, &a->v[0], "the input", &x)) return false;
    return tensor_result(b, op, &x, 1, a, NULL, out);
}

static bool build_relu(builder *b, call_args *a, value *out) { return build_unary(b, a, out, IR_OP_RELU); }
static bool build_gelu(builder *b, call_args *a, value *out) { return build_unary(b, a, out, IR_OP_GELU); }
static bool build_silu(builder *b, call_args *a, value *out) { return build_unary(b, a, out, IR_OP_SILU); }
static bool build_tanh(builder *b, call_args *a, value *out) { return build_unary(b, a, out, IR_OP_TANH); }

static bool build_softmax(builder *b, call_args *a, value *out)
{
    int32_t x;
    ir_attrs attr = {.axis = -1};
    if (!want_tensor(b, &a->v[0], "the input", &x)) return false;
    int rank = rank_of(b, x);
    if (a->v[1].kind != VAL_NONE && !axis_arg(&a->v[1], rank, &attr.axis)) return false;
    if (a->v[1].kind == VAL_NONE) attr.axis = rank - 1;
    return tensor_result(b, IR_OP_SOFTMAX, &x, 1, a, &attr, out);
}

static bool eps_arg(const value *v, double dflt, float *out)
{
    double eps = dflt;
    if (v->kind != VAL_NONE && !want_number(v, "eps", &eps)) return false;
    if (!(eps >= 0) || !isfinite(eps)) return fail(v->loc, "eps must be a finite non-negative number");
    *out = (float)eps;
    return true;
}

static bool build_layernorm(builder *b, call_args *a, value *out)
{
    int32_t in[3];
    ir_attrs attr = {0};
    if (!want_tensor(b, &a->v[0], "the input", &in[0]) || !want_tensor(b, &a->v[1], "the weight", &in[1]) ||
        !want_tensor(b, &a->v[2], "the bias", &in[2]) || !eps_arg(&a->v[3], 1e-5, &attr.eps))
        return false;
    return tensor_result(b, IR_OP_LAYERNORM, in, 3, a, &attr, out);
}

static bool build_rmsnorm(builder *b, call_args *a, value *out)
{
    int32_t in[2];
    ir_attrs attr = {0};
    if (!want_tensor(b, &a->v[0], "the input", &in[0]) || !want_tensor(b, &a->v[1], "the weight", &in[1]) ||
        !eps_arg(&a->v[2], 1e-6, &attr.eps))
        return false;
    return tensor_result(b, IR_OP_RMSNORM, in, 2, a, &attr, out);
}

static bool build_embedding(builder *b, call_args *a, value *out)
{
    int32_t in[2];
    if (!want_tensor(b, &a->v[0], "the table", &in[0]) || !want_tensor(b, &a->v[1], "the indices", &in[1]))
        return false;
    return tensor_result(b, IR_OP_EMBEDDING, in, 2, a, NULL, out);
}

static bool int_list(const value *v, const char *what, int64_t *out, int *n)
{
    if (v->kind != VAL_LIST) return fail(v->loc, "%s must be a list of integers like [2, 64]", what);
    if (v->n_items > IR_MAX_RANK) return fail(v->loc, "%s has more than %d entries", what, IR_MAX_RANK);
    for (int i = 0; i < v->n_items; i++)
        if (!want_int(&v->items[i], what, &out[i])) return false;
    *n = v->n_items;
    return true;
}

static bool build_reshape(builder *b, call_args *a, value *out)
{
    int32_t x;
    int64_t dims[IR_MAX_RANK];
    int n, infer = -1;
    if (!want_tensor(b, &a->v[0], "the input", &x) || !int_list(&a->v[1], "the new shape", dims, &n))
        return false;
    int64_t known = 1, total = ir_node_count(&b->g->nodes[x]);
    for (int i = 0; i < n; i++) {
        if (dims[i] == -1 && infer < 0) { infer = i; continue; }
        if (dims[i] < 1) return fail(a->v[1].items[i].loc, "a dimension must be positive (or one -1)");
        if (__builtin_mul_overflow(known, dims[i], &known) || known > IR_MAX_ELEMENTS)
            return fail(a->v[1].loc, "the new shape has more than %lld elements", (long long)IR_MAX_ELEMENTS);
    }
    if (infer >= 0) {
        if (total % known) return fail(a->v[1].loc, "cannot infer the -1 dimension: %lld elements do not divide by %lld",
                                       (long long)total, (long long)known);
        dims[infer] = total / known;
    }
    int32_t idx = ir_add_node(b->g, IR_OP_RESHAPE, &x, 1, a->call->loc);
    ir_node *node = &b->g->nodes[idx];
    node->rank = n;
    memcpy(node->shape, dims, sizeof dims[0] * (size_t)n);
    memset(out, 0, sizeof *out);
    out->kind = VAL_TENSOR;
    out->loc = a->call->loc;
    out->node = idx;
    return ir_infer_node_shape(b->g, idx);
}

static bool build_transpose(builder *b, call_args *a, value *out)
{
    int32_t x;
    ir_attrs attr = {0};
    if (!want_tensor(b, &a->v[0], "the input", &x)) return false;
    int rank = rank_of(b, x), n;
    for (int i = 0; i < rank; i++) attr.perm[i] = i;
    if (a->v[1].kind == VAL_NONE) {
        if (rank < 2) return fail(a->call->loc, "transpose needs at least 2 dimensions");
        attr.perm[rank - 2] = rank - 1, attr.perm[rank - 1] = rank - 2;
    } else {
        if (!int_list(&a->v[1], "the permutation", attr.perm, &n)) return false;
        if (n != rank)
            return fail(a->v[1].loc, "the permutation has %d entries but the tensor has %d dimensions", n, rank);
        for (int i = 0; i < n; i++)
            if (attr.perm[i] < 0) attr.perm[i] += rank;
    }
    return tensor_result(b, IR_OP_TRANSPOSE, &x, 1, a, &attr, out);
}

static bool build_slice(builder *b, call_args *a, value *out)
{
    int32_t x;
    ir_attrs attr = {0};
    if (!want_tensor(b, &a->v[0], "the input", &x)) return false;
    const ir_node *n = &b->g->nodes[x];
    if (!axis_arg(&a->v[1], n->rank, &attr.axis) || !want_int(&a->v[2], "the start", &attr.start) ||
        !want_int(&a->v[3], "the end", &attr.end))
        return false;
    int64_t dim = n->shape[attr.axis];
    if (attr.start < 0) attr.start += dim;
    if (attr.end < 0) attr.end += dim;
    return tensor_result(b, IR_OP_SLICE, &x, 1, a, &attr, out);
}

static bool build_concat(builder *b, call_args *a, value *out)
{
    value *items = a->variadic;
    int n = a->n_variadic;
    if (n == 1 && items[0].kind == VAL_LIST) n = items[0].n_items, items = items[0].items;
    if (n < 1) return fail(a->call->loc, "concat needs at least one tensor");
    int32_t in[MAX_ARGS];
    if (n > MAX_ARGS) return fail(a->call->loc, "concat takes at most %d tensors", MAX_ARGS);
    for (int i = 0; i < n; i++)
        if (!want_tensor(b, &items[i], "an operand of concat", &in[i])) return false;
    ir_attrs attr = {0};
    int rank = rank_of(b, in[0]);
    if (a->v[0].kind != VAL_NONE) {
        if (!axis_arg(&a->v[0], rank, &attr.axis)) return false;
    } else {
        attr.axis = rank - 1;
    }
    return tensor_result(b, IR_OP_CONCAT, in, n, a, &attr, out);
}

static bool build_attention(builder *b, call_args *a, value *out)
{
    int32_t in[3];
    ir_attrs attr = {.heads = 1};
    for (int i = 0; i < 3; i++)
        if (!want_tensor(b, &a->v[i], i == 0 ? "q" : i == 1 ? "k" : "v", &in[i])) return false;
    int64_t heads = 1;
    if (a->v[3].kind != VAL_NONE && !want_int(&a->v[3], "heads", &heads)) return false;
    if (heads < 1 || heads > 4096) return fail(a->v[3].loc, "heads must be between 1 and 4096");
    attr.heads = (int)heads;
    if (a->v[4].kind != VAL_NONE) {
        if (a->v[4].kind != VAL_BOOL) return fail(a->v[4].loc, "causal must be true or false");
        attr.causal = a->v[4].i != 0;
    }
    const ir_node *q = &b->g->nodes[in[0]];
    double scale = q->rank == 2 && q->shape[1] % heads == 0 ? 1.0 / sqrt((double)(q->shape[1] / heads)) : 1.0;
    if (a->v[5].kind != VAL_NONE && !want_number(&a->v[5], "scale", &scale)) return false;
    attr.scale = (float)scale;
    return tensor_result(b, IR_OP_ATTENTION, in, 3, a, &attr, out);
}

static bool build_sqrt(builder *b, call_args *a, value *out)
{
    (void)b;
    double x = 0;
    if (!want_number(&a->v[0], "the argument of sqrt", &x)) return false;
    if (x < 0) return fail(a->v[0].loc, "sqrt of a negative number");
    memset(out, 0, sizeof *out);
    out->kind = VAL_FLOAT;
    out->f = sqrt(x);
    out->loc = a->call->loc;
    return true;
}

static const builtin builtins[] = {
    {"linear", 2, {"x", "weight", "bias"}, build_linear, false},
    {"matmul", 2, {"a", "b"}, build_matmul, false},
    {"add", 2, {"a", "b"}, build_add, false},
    {"sub", 2, {"a", "b"}, build_sub, false},
    {"mul", 2, {"a", "b"}, build_mul, false},
    {"div", 2, {"a", "b"}, build_div, false},
    {"relu", 1, {"x"}, build_relu, false},
    {"gelu", 1, {"x"}, build_gelu, false},
    {"silu", 1, {"x"}, build_silu, false},
    {"tanh", 1, {"x"}, build_tanh, false},
    {"softmax", 1, {"x", "axis"}, build_softmax, false},
    {"layernorm", 3, {"x", "weight", "bias", "eps"}, build_layernorm, false},
    {"rmsnorm", 2, {"x", "weight", "eps"}, build_rmsnorm, false},
    {"embedding", 2, {"table", "indices"}, build_embedding, false},
    {"reshape", 2, {"x", "shape"}, build_reshape, false},
    {"transpose", 1, {"x", "perm"}, build_transpose, false},
    {"slice", 4, {"x", "axis", "start", "end"}, build_slice, false},
    {"concat", 0, {"axis"}, build_concat, true},
    {"attention", 3, {"q", "k", "v", "heads", "causal", "scale"}, build_attention, false},
    {"sqrt", 1, {"x"}, build_sqrt, false},
};

static const builtin *find_builtin(const char *name)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
    return NULL;
}

static int n_params(const builtin *bi)
{
    int n = 0;
    while (n < 6 && bi->params[n]) n++;
    return n;
}

/* "layernorm(x, weight, bias, eps=...)": required parameters, then the
 * optional ones as keywords. */
static const char *signature(const builtin *bi, char *buf, size_t size)
{
    int np = n_params(bi);
    size_t n = (size_t)snprintf(buf, size, "%s(", bi->name);
    if (bi->variadic && n < size) n += (size_t)snprintf(buf + n, size - n, "tensors...%s", np ? ", " : "");
    for (int k = 0; k < np && n < size; k++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s%s", k ? ", " : "", bi->params[k],
                              k >= bi->n_required ? "=..." : "");
    if (n < size) snprintf(buf + n, size - n, ")");
    return buf;
}

/* Matches positional and keyword arguments to the builtin's parameters. */
static bool bind_builtin_args(builder *b, scope *s, const builtin *bi, const fe_node *call, call_args *a)
{
    int np = n_params(bi), pos = 0;
    bool seen_kwarg = false;
    memset(a, 0, sizeof *a);
    a->call = call;
    for (int i = 0; i < call->list.count; i++) {
        const fe_node *arg = call->list.items[i];
        if (arg->kind != FE_KWARG) {
            if (seen_kwarg) return fail(arg->loc, "a positional argument cannot follow a keyword argument");
            if (bi->variadic) {
                if (a->n_variadic == MAX_ARGS) return fail(arg->loc, "too many arguments");
                if (!eval(b, s, arg, &a->variadic[a->n_variadic++])) return false;
                pos++;
                continue;
            }
            if (pos >= np) {
                char sig[160];
                return fail(arg->loc, "%s takes at most %d argument%s: %s", bi->name, np, np == 1 ? "" : "s",
                            signature(bi, sig, sizeof sig));
            }
            if (!eval(b, s, arg, &a->v[pos++])) return false;
            continue;
        }
        seen_kwarg = true;
        int k = 0;
        while (k < np && strcmp(bi->params[k], arg->name) != 0) k++;
        if (k == np) {
            const char *best = rt_closest(arg->name, bi->params, np);
            if (best) return fail(arg->loc, "%s has no parameter '%s'; did you mean '%s'?", bi->name, arg->name, best);
            return fail(arg->loc, "%s has no parameter '%s'", bi->name, arg->name);
        }
        if (a->v[k].kind != VAL_NONE || (!bi->variadic && k < pos))
            return fail(arg->loc, "%s: '%s' is given twice", bi->name, arg->name);
        if (!eval(b, s, arg->lhs, &a->v[k])) return false;
    }
    for (int k = 0; k < bi->n_required; k++)
        if (a->v[k].kind == VAL_NONE) {
            char sig[160];
            return fail(call->loc, "%s needs argument '%s': %s", bi->name, bi->params[k],
                        signature(bi, sig, sizeof sig));
        }
    return true;
}

static const fe_node *find_def(builder *b, const char *name)
{
    for (int i = 0; i < b->n_defs; i++)
        if (strcmp(b->defs[i]->name, name) == 0) return b->defs[i];
    return NULL;
}

/* Inlines a user function: binds its parameters in a fresh scope whose
 * parent is the globals, runs the body, returns the `return` value. */
static bool call_def(builder *b, scope *s, const fe_node *def, const fe_node *call, value *out)
{
    int np = def->list.count;
    if (call->list.count != np) {
        fail(call->loc, "'%s' takes %d argument%s but %d %s given", def->name, np, np == 1 ? "" : "s",
             call->list.count, call->list.count == 1 ? "was" : "were");
        return sup_note(def->loc, "'%s' is defined here", def->name), false;
    }
    if (b->depth >= MAX_CALL_DEPTH) {
        fail(call->loc, "calls to functions nest more than %d deep; does '%s' call itself?", MAX_CALL_DEPTH,
             def->name);
        return sup_note(b->outer_call, "the outermost of these calls is here"), false;
    }
    if (b->depth == 0) b->outer_call = call->loc;
    scope inner = {.parent = b->globals};
    const char *context = b->context;
    bool ok = true, returned = false;
    for (int i = 0; ok && i < np; i++) {
        const fe_node *arg = call->list.items[i];
        value v;
        if (arg->kind == FE_KWARG) {
            ok = fail(arg->loc, "user functions take positional arguments only");
        } else if ((ok = eval(b, s, arg, &v))) {
            if (v.kind == VAL_PREFIX && b->context == context) b->context = v.str;
            scope_bind(&inner, def->list.items[i]->name, v, arg->loc);
        }
    }
    if (ok) {
        b->depth++;
        int32_t first = b->g->n_nodes;
        ok = run_stmts(b, &inner, &def->body, out, &returned);
        /* the return expression's nodes are named after the function */
        if (ok && returned) name_new_nodes(b, first, out->kind == VAL_TENSOR ? out->node : -1, def->name);
        b->depth--;
    }
    b->context = context;
    scope_free(&inner);
    if (ok && !returned) {
        fail(call->loc, "'%s' does not return a value", def->name);
        return sup_note(def->loc, "'%s' is defined here", def->name), false;
    }
    out->loc = call->loc;
    return ok;
}

static bool eval_call(builder *b, scope *s, const fe_node *e, value *out)
{
    const fe_node *def = find_def(b, e->name);
    if (def) return call_def(b, s, def, e, out);
    const builtin *bi = find_builtin(e->name);
    if (!bi) {
        const char *names[64];
        int n = 0;
        for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) names[n++] = builtins[i].name;
        for (int i = 0; i < b->n_defs && n < 64; i++) names[n++] = b->defs[i]->name;
        const char *best = rt_closest(e->name, names, n);
        sup_loc l = e->loc;
        l.len = (int)strlen(e->name);
        if (best) return fail(l, "unknown function '%s'; did you mean '%s'?", e->name, best);
        return fail(l, "unknown function '%s'", e->name);
    }
    call_args a;
    if (!bind_builtin_args(b, s, bi, e, &a)) return false;
    return bi->build(b, &a, out);
}

static bool eval(builder *b, scope *s, const fe_node *e, value *out)
{
    memset(out, 0, sizeof *out);
    out->loc = e->loc;
    if (++b->expressions > MAX_EXPRESSIONS)
        return fail(e->loc, "the model unrolls into more than %d expressions", MAX_EXPRESSIONS);
    switch (e->kind) {
    case FE_INT: out->kind = VAL_INT, out->i = e->ival; return true;
    case FE_FLOAT: out->kind = VAL_FLOAT, out->f = e->fval; return true;
    case FE_BOOL: out->kind = VAL_BOOL, out->i = e->ival; return true;
    case FE_STRING: out->kind = VAL_STRING, out->str = e->str; return true;
    case FE_PATH: return eval_path(b, s, e, out);
    case FE_BINARY: return eval_binary(b, s, e, out);
    case FE_CALL: return eval_call(b, s, e, out);
    case FE_NEG: {
        value v;
        if (!eval(b, s, e->lhs, &v)) return false;
        if (v.kind == VAL_INT) {
            if (__builtin_sub_overflow(0, v.i, &out->i)) return fail(e->loc, "integer overflow in constant expression");
            return out->kind = VAL_INT, true;
        }
        if (v.kind == VAL_FLOAT) return out->kind = VAL_FLOAT, out->f = -v.f, true;
        int32_t in[2];
        if (!want_tensor(b, &v, "the operand of '-'", &in[0])) return false;
        in[1] = add_const(b, -1.0, e->loc);
        out->kind = VAL_TENSOR;
        out->node = add_op(b, IR_OP_MUL, in, 2, e->loc, NULL);
        return out->node >= 0;
    }
    case FE_LIST:
        out->kind = VAL_LIST;
        out->n_items = e->list.count;
        out->items = sup_arena_alloc(b->arena, sizeof *out->items * (size_t)(e->list.count + 1));
        for (int i = 0; i < e->list.count; i++)
            if (!eval(b, s, e->list.items[i], &out->items[i])) return false;
        return true;
    case FE_ANNOT:
        return eval(b, s, e->lhs, out) && check_annotation(b, e, out);
    case FE_KWARG: return fail(e->loc, "a keyword argument is only allowed in a call");
    default: break;
    }
    QMC_ASSERT(!"unexpected expression kind");
    return false;
}

/* ---- statements --------------------------------------------------------- */

static bool eval_type(builder *b, scope *s, const fe_node *t, qmc_dtype *dtype, int *rank, int64_t *shape)
{
    *dtype = rt_dtype_from_name(t->name);
    if (*dtype != QMC_DTYPE_F32 && *dtype != QMC_DTYPE_I32)
        return fail(t->loc, "unsupported dtype '%s' (inputs and outputs are f32 or i32)", t->name);
    if (t->list.count > IR_MAX_RANK) return fail(t->loc, "more than %d dimensions", IR_MAX_RANK);
    *rank = t->list.count;
    int64_t count = 1;
    for (int i = 0; i < t->list.count; i++) {
        value v;
        if (!eval(b, s, t->list.items[i], &v) || !want_int(&v, "a dimension", &shape[i])) return false;
        if (shape[i] < 1) return fail(v.loc, "a dimension must be positive, not %lld", (long long)shape[i]);
        if (__builtin_mul_overflow(count, shape[i], &count) || count > IR_MAX_ELEMENTS)
            return fail(t->loc, "the type has more than %lld elements", (long long)IR_MAX_ELEMENTS);
    }
    return true;
}

static bool declare_input(builder *b, scope *s, const fe_node *st)
{
    ir_graph *g = b->g;
    if (scope_find_local(s, st->name)) return fail(st->loc, "'%s' is already defined", st->name);
    ir_port p = {.name = st->name, .loc = st->loc};
    if (!eval_type(b, s, st->type, &p.dtype, &p.rank, p.shape)) return false;
    if (st->list.count) return fail(st->list.items[0]->loc, "inputs take no annotations");
    p.node = ir_add_node(g, IR_OP_INPUT, NULL, 0, st->loc);
    ir_node *n = &g->nodes[p.node];
    n->name = unique_name(b, st->name);
    n->dtype = p.dtype;
    n->rank = p.rank;
    memcpy(n->shape, p.shape, sizeof n->shape);
    g->inputs = sup_arena_grow(b->arena, g->inputs, (size_t)g->n_inputs, (size_t)g->n_inputs + 1, sizeof p);
    g->inputs[g->n_inputs++] = p;
    value v = {.kind = VAL_TENSOR, .node = p.node, .loc = st->loc};
    scope_bind(s, st->name, v, st->loc)->is_input = true;
    return true;
}

static bool declare_output(builder *b, scope *s, const fe_node *st)
{
    ir_graph *g = b->g;
    for (int i = 0; i < g->n_outputs; i++)
        if (strcmp(g->outputs[i].name, st->name) == 0) return fail(st->loc, "output '%s' is declared twice", st->name);
    ir_port p = {.name = st->name, .loc = st->loc, .node = -1};
    if (!eval_type(b, s, st->type, &p.dtype, &p.rank, p.shape)) return false;
    if (p.dtype != QMC_DTYPE_F32)
        return fail(st->type->loc, "output '%s' is declared %s, but outputs are f32 tensors", st->name,
                    qmc_dtype_name(p.dtype));
    for (int i = 0; i < st->list.count; i++) {
        const fe_node *an = st->list.items[i];
        if (strcmp(an->name, "logits") != 0) {
            if (rt_edit_distance(an->name, "logits") <= 2)
                return fail(an->loc, "unknown output annotation '@%s'; did you mean '@logits'?", an->name);
            return fail(an->loc, "unknown output annotation '@%s' (outputs take '@logits')", an->name);
        }
        p.logits = true;
    }
    g->outputs = sup_arena_grow(b->arena, g->outputs, (size_t)g->n_outputs, (size_t)g->n_outputs + 1, sizeof p);
    g->outputs[g->n_outputs++] = p;
    return true;
}

static bool assign(builder *b, scope *s, const fe_node *st)
{
    binding *old = scope_find(s, st->name);
    if (old && old->is_const) {
        fail(st->loc, "cannot assign to %s '%s'", old->is_loop ? "loop variable" : "constant", st->name);
        return sup_note(old->loc, "'%s' is defined here", st->name), false;
    }
    if (old && old->is_input) {
        fail(st->loc, "cannot assign to input '%s'", st->name);
        return sup_note(old->loc, "'%s' is declared here", st->name), false;
    }
    int32_t first = b->g->n_nodes;
    value v;
    if (!eval(b, s, st->lhs, &v)) return false;
    /* every node the statement made is named, also when the value is a list */
    name_new_nodes(b, first, v.kind == VAL_TENSOR ? v.node : -1, st->name);
    scope_bind(s, st->name, v, st->loc);
    return true;
}

static bool define_const(builder *b, scope *s, const fe_node *st)
{
    binding *old = scope_find_local(s, st->name);
    if (old) {
        fail(st->loc, "'%s' is already defined", st->name);
        return sup_note(old->loc, "the previous definition is here"), false;
    }
    value v;
    if (!eval(b, s, st->lhs, &v)) return false;
    if (v.kind != VAL_INT && v.kind != VAL_FLOAT && v.kind != VAL_BOOL)
        return fail(st->lhs->loc, "a constant must be a number or a boolean, not %s", kind_name(v.kind));
    scope_bind(s, st->name, v, st->loc)->is_const = true;
    return true;
}

static bool run_for(builder *b, scope *s, const fe_node *st, value *ret, bool *returned)
{
    value lo, hi;
    int64_t from = 0, to = 0;
    if (!eval(b, s, st->lhs, &lo) || !want_int(&lo, "a loop bound", &from)) return false;
    if (!eval(b, s, st->rhs, &hi) || !want_int(&hi, "a loop bound", &to)) return false;
    int64_t trips;
    if (__builtin_sub_overflow(to, from, &trips) || trips > MAX_LOOP_TRIPS)
        return fail(st->loc, "the loop runs more than %d times", MAX_LOOP_TRIPS);
    if (scope_find(s, st->name)) return fail(st->loc, "the loop variable '%s' shadows a name in use", st->name);
    for (int64_t i = from; i < to && !*returned; i++) {
        /* each trip counts as a statement, so empty nested loops end too */
        if (++b->statements > MAX_STATEMENTS)
            return fail(st->loc, "the model unrolls into more than %d statements", MAX_STATEMENTS);
        value v = {.kind = VAL_INT, .i = i, .loc = st->loc};
        binding *x = scope_bind(s, st->name, v, st->loc);
        x->is_const = x->is_loop = true;
        if (!run_stmts(b, s, &st->body, ret, returned)) return false;
    }
    scope_unbind(s, st->name);
    return true;
}

static bool run_stmt(builder *b, scope *s, const fe_node *st, value *ret, bool *returned)
{
    bool in_model = b->depth == 0;
    if (++b->statements > MAX_STATEMENTS)
        return fail(st->loc, "the model unrolls into more than %d statements", MAX_STATEMENTS);
    if (b->g->n_nodes > MAX_NODES)
        return fail(st->loc, "the model unrolls into more than %d graph nodes", MAX_NODES);
    switch (st->kind) {
    case FE_WEIGHTS:
        if (!in_model) return fail(st->loc, "'weights' belongs in the model, not in a function");
        return open_weights(b, st);
    case FE_INPUT:
    case FE_OUTPUT:
        if (!in_model) return fail(st->loc, "'%s' belongs in the model, not in a function", fe_kind_name(st->kind));
        return st->kind == FE_INPUT ? declare_input(b, s, st) : declare_output(b, s, st);
    case FE_CONST: return define_const(b, s, st);
    case FE_ASSIGN: return assign(b, s, st);
    case FE_FOR: return run_for(b, s, st, ret, returned);
    case FE_RETURN:
        if (in_model) return fail(st->loc, "'return' is only allowed in a function");
        *returned = true;
        return eval(b, s, st->lhs, ret);
    default: break;
    }
    QMC_ASSERT(!"unexpected statement kind");
    return false;
}

static bool run_stmts(builder *b, scope *s, const fe_list *body, value *ret, bool *returned)
{
    for (int i = 0; i < body->count; i++) {
        if (*returned) return fail(body->items[i]->loc, "statement after 'return' is never run");
        if (!run_stmt(b, s, body->items[i], ret, returned)) return false;
    }
    return true;
}

/* ---- the model ---------------------------------------------------------- */

/* Connects each declared output to the final value of its name. */
static bool bind_outputs(builder *b, scope *s, const fe_node *model)
{
    ir_graph *g = b->g;
    if (g->n_outputs == 0) return fail(model->loc, "model '%s' declares no outputs", model->name);
    for (int i = 0; i < g->n_outputs; i++) {
        ir_port *p = &g->outputs[i];
        binding *x = scope_find_local(s, p->name);
        if (!x) return fail(p->loc, "output '%s' is never assigned", p->name);
        if (x->v.kind != VAL_TENSOR) {
            fail(x->v.loc, "output '%s' must be a tensor, not %s", p->name, kind_name(x->v.kind));
            return sup_note(p->loc, "'%s' is declared here", p->name), false;
        }
        const ir_node *n = &g->nodes[x->v.node];
        if (n->dtype != p->dtype || n->rank != p->rank || memcmp(n->shape, p->shape, sizeof p->shape[0] * (size_t)p->rank)) {
            char want[RT_SHAPE_STR_MAX], have[RT_SHAPE_STR_MAX];
            fail(x->v.loc, "output '%s' is declared %s but is assigned a value of shape %s", p->name,
                 rt_shape_str(p->dtype, p->rank, p->shape, want, sizeof want),
                 rt_shape_str(n->dtype, n->rank, n->shape, have, sizeof have));
            return sup_note(p->loc, "'%s' is declared here", p->name), false;
        }
        p->node = x->v.node;
    }
    return true;
}

static bool collect_items(builder *b, const fe_node *file, const fe_node **model)
{
    *model = NULL;
    b->defs = sup_arena_alloc(b->arena, sizeof *b->defs * (size_t)(file->body.count + 1));
    for (int i = 0; i < file->body.count; i++) {
        const fe_node *it = file->body.items[i];
        if (it->kind == FE_MODEL) {
            if (*model) return fail(it->loc, "a file holds one model; '%s' is the second", it->name);
            *model = it;
        } else if (it->kind == FE_DEF) {
            if (find_builtin(it->name)) return fail(it->loc, "'%s' is a built-in operation and cannot be redefined", it->name);
            if (find_def(b, it->name)) return fail(it->loc, "function '%s' is defined twice", it->name);
            for (int p = 0; p < it->list.count; p++)
                for (int q = 0; q < p; q++)
                    if (strcmp(it->list.items[p]->name, it->list.items[q]->name) == 0)
                        return fail(it->list.items[p]->loc, "parameter '%s' is repeated", it->list.items[p]->name);
            b->defs[b->n_defs++] = it;
        } else if (it->kind == FE_CONST) {
            if (!define_const(b, b->globals, it)) return false;
        }
    }
    if (!*model) {
        sup_loc l = {sup_arena_strdup(b->arena, b->g->source), 0, 0, 0}; /* the file, no line */
        return fail(l, "the file defines no model (expected `model NAME { ... }`)");
    }
    return true;
}

ir_graph *pass_build_graph(sup_arena *arena, const fe_node *file, const pass_build_options *opts)
{
    ir_graph *g = sup_arena_alloc(arena, sizeof *g);
    g->arena = arena;
    g->source = file->loc.file ? file->loc.file : "<input>";
    builder b = {.arena = arena, .g = g, .opts = opts};
    scope globals = {0}, ms = {.parent = &globals};
    b.globals = &globals;
    const fe_node *model;
    value ret;
    bool returned = false;
    bool ok = collect_items(&b, file, &model);
    if (ok) g->name = model->name;
    /* --weights supplies the weights even to a model without a `weights` statement */
    if (ok && opts && opts->weights_override) ok = open_weights(&b, NULL);
    ok = ok && run_stmts(&b, &ms, &model->body, &ret, &returned) && bind_outputs(&b, &ms, model);
    scope_free(&ms);
    scope_free(&globals);
    if (!ok && g->weights) fe_safetensors_close(g->weights); /* unmapped: nobody else can */
    return ok ? g : NULL;
}
