/* build_graph.c: elaboration of the syntax tree into the graph IR.
 *
 * Needs: a syntactically valid tree (parse.c).
 * Guarantees: constants are evaluated, `for` loops unrolled, functions
 * inlined, every name resolved to a local value or a tensor of the weights
 * file (checked against its shape and dtype), every node's shape inferred
 * as it is created. Any error is reported at the expression that caused it
 * and NULL is returned.
 *
 * This file holds scopes, expressions, statements and the model; values
 * and node creation are in build_values.c, the weights file in
 * build_weights.c, the built-in operations in build_builtins.c. A weight
 * prefix is a value: `blocks.0` evaluates to one, so a function can take
 * `blocks.{i}` and refer to `p.fc1.weight`. */
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
    MAX_CONTEXT = 1 << 20, /* tokens a KV cache holds */
};

typedef struct binding {
    const char *name;
    pass_value v;
    bool is_const, is_input, is_loop;
    sup_loc loc;
} binding;

/* A scope's bindings live in a malloc'd array freed when the scope ends
 * (scope_free): a loop calling a function a million times must not keep a
 * million dead scopes. Values themselves live in the arena. */
typedef struct pass_scope scope;
struct pass_scope {
    binding *b;
    int n, cap;
    scope *parent;
};

static const char *const precision_names[] = {"f32",      "int8",    "int4",   "int4g64",
                                              "int4g128", "fp8e4m3", "fp8e5m2"};

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

static binding *scope_bind(scope *s, const char *name, pass_value v, sup_loc loc)
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

/* ---- naming ------------------------------------------------------------- */

/* Names every node made since `first` that has none: the statement's result
 * gets `var`, the others `var.op`. */
static void name_new_nodes(pass_builder *b, int32_t first, int32_t result, const char *var)
{
    for (int32_t i = first; i < b->g->n_nodes; i++) {
        ir_node *n = &b->g->nodes[i];
        if (n->name) continue;
        const char *base =
            i == result ? var : sup_arena_printf(b->arena, "%s.%s", var, ir_node_op_name(n));
        if (b->context) base = sup_arena_printf(b->arena, "%s/%s", b->context, base);
        n->name = pass_build_unique_name(b, base);
    }
}

/* ---- expressions -------------------------------------------------------- */

static bool eval(pass_builder *b, scope *s, const fe_node *e, pass_value *out);
static bool run_stmts(pass_builder *b, scope *s, const fe_list *body, pass_value *ret,
                      bool *returned);

static bool check_annotation(pass_builder *b, const fe_node *e, pass_value *v)
{
    const char *a = e->name;
    for (size_t i = 0; i < sizeof precision_names / sizeof precision_names[0]; i++) {
        if (strcmp(a, precision_names[i]) != 0) continue;
        if (v->kind != PASS_VAL_TENSOR || b->g->nodes[v->node].op != IR_OP_WEIGHT)
            return pass_build_fail(
                e->loc, "the precision annotation '@%s' applies to a weight, not to %s", a,
                v->kind == PASS_VAL_TENSOR ? "a computed tensor" : pass_build_kind_name(v->kind));
        ir_node *w = &b->g->nodes[v->node];
        if (w->precision && strcmp(w->precision, a) != 0) {
            pass_build_fail(e->loc, "weight '%s' is annotated both '@%s' and '@%s'", w->name,
                            w->precision, a);
            sup_note(w->precision_loc, "the first annotation is here");
            return false;
        }
        w->precision = a;
        w->precision_loc = e->loc;
        return true;
    }
    if (strcmp(a, "logits") == 0)
        return pass_build_fail(e->loc, "'@logits' marks an output declaration, not an expression");
    const char *best =
        rt_closest(a, precision_names, sizeof precision_names / sizeof precision_names[0]);
    if (best)
        return pass_build_fail(e->loc, "unknown annotation '@%s'; did you mean '@%s'?", a, best);
    return pass_build_fail(
        e->loc,
        "unknown annotation '@%s' (precisions: f32, int8, int4, int4g64, int4g128, "
        "fp8e4m3, fp8e5m2)",
        a);
}

/* Renders a path's segments with interpolations evaluated ("blocks.0.fc1"). */
static bool path_string(pass_builder *b, scope *s, const fe_node *path, int from, char **out)
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
            if (part->kind == FE_PART_NAME) {
                fputs(part->str, f);
                continue;
            }
            if (part->kind == FE_PART_INT) {
                fprintf(f, "%lld", (long long)part->ival);
                continue;
            }
            pass_value v;
            int64_t k = 0;
            ok = eval(b, s, part->lhs, &v) &&
                 pass_build_want_int(&v, "an interpolated path segment", &k);
            if (ok) fprintf(f, "%lld", (long long)k);
        }
    }
    if (f) fclose(f);
    if (ok) *out = sup_arena_strndup(b->arena, buf, len);
    free(buf);
    return ok;
}

/* Reports an unknown name, suggesting the closest local or weight name. */
static bool unknown_name(pass_builder *b, scope *s, const char *name, sup_loc loc, bool dotted)
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
        return pass_build_fail(
            loc,
            "unknown weight '%s': the model has no weights file (add `weights \"FILE\"` to the "
            "model or pass --weights FILE)",
            name);
    if (best) return pass_build_fail(loc, "unknown %s '%s'; did you mean '%s'?", what, name, best);
    return pass_build_fail(loc, "unknown %s '%s'", what, name);
}

static bool eval_path(pass_builder *b, scope *s, const fe_node *e, pass_value *out)
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
        if (x && x->v.kind != PASS_VAL_PREFIX)
            return pass_build_fail(e->loc,
                                   "'%s' is %s, not a weight prefix, so '.' cannot follow it",
                                   x->name, pass_build_kind_name(x->v.kind));
        if (x) prefix = x->v.str;
    }
    char *tail;
    if (!path_string(b, s, e, prefix ? 1 : 0, &tail)) return false;
    rest = prefix ? sup_arena_printf(b->arena, "%s.%s", prefix, tail) : tail;
    const fe_tensor *t = b->g->weights ? fe_safetensors_find(b->g->weights, rest) : NULL;
    memset(out, 0, sizeof *out);
    out->loc = e->loc;
    if (t) {
        out->kind = PASS_VAL_TENSOR;
        out->node = pass_build_weight_node(b, t, e->loc);
        return out->node >= 0;
    }
    if (pass_build_is_weight_prefix(b, rest)) {
        out->kind = PASS_VAL_PREFIX;
        out->str = rest;
        return true;
    }
    return unknown_name(b, s, rest, e->loc, e->list.count > 1 || prefix);
}

static bool scalar_arith(char op, const pass_value *l, const pass_value *r, sup_loc loc,
                         pass_value *out)
{
    memset(out, 0, sizeof *out);
    out->loc = loc;
    if (l->kind == PASS_VAL_INT && r->kind == PASS_VAL_INT) {
        int64_t a = l->i, c = r->i, v;
        bool overflow = false;
        switch (op) {
        case '+': overflow = __builtin_add_overflow(a, c, &v); break;
        case '-': overflow = __builtin_sub_overflow(a, c, &v); break;
        case '*': overflow = __builtin_mul_overflow(a, c, &v); break;
        default:
            if (c == 0) return pass_build_fail(loc, "division by zero");
            if (c == -1) {
                overflow = __builtin_sub_overflow(0, a, &v);
                break;
            }
            if (a % c == 0) {
                v = a / c;
                break;
            }
            out->kind = PASS_VAL_FLOAT;
            out->f = (double)a / (double)c;
            return true;
        }
        if (overflow) return pass_build_fail(loc, "integer overflow in constant expression");
        out->kind = PASS_VAL_INT;
        out->i = v;
        return true;
    }
    double a = l->kind == PASS_VAL_INT ? (double)l->i : l->f,
           c = r->kind == PASS_VAL_INT ? (double)r->i : r->f;
    out->kind = PASS_VAL_FLOAT;
    switch (op) {
    case '+': out->f = a + c; break;
    case '-': out->f = a - c; break;
    case '*': out->f = a * c; break;
    default:
        if (c == 0) return pass_build_fail(loc, "division by zero");
        out->f = a / c;
    }
    return true;
}

static bool is_number(const pass_value *v)
{
    return v->kind == PASS_VAL_INT || v->kind == PASS_VAL_FLOAT;
}

static bool eval_binary(pass_builder *b, scope *s, const fe_node *e, pass_value *out)
{
    pass_value l, r;
    if (!eval(b, s, e->lhs, &l) || !eval(b, s, e->rhs, &r)) return false;
    if (is_number(&l) && is_number(&r)) return scalar_arith(e->op, &l, &r, e->loc, out);
    static const char ops[] = "+-*/";
    static const ir_op irops[] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_DIV};
    int32_t in[2];
    const char *what = "an operand of an arithmetic operator";
    if (!pass_build_want_tensor(b, &l, what, &in[0]) ||
        !pass_build_want_tensor(b, &r, what, &in[1]))
        return false;
    ir_op op = irops[strchr(ops, e->op) - ops];
    memset(out, 0, sizeof *out);
    out->kind = PASS_VAL_TENSOR;
    out->loc = e->loc;
    out->node = pass_build_op(b, op, in, 2, e->loc, NULL);
    return out->node >= 0;
}

/* Matches positional and keyword arguments to the builtin's parameters. */
static bool bind_builtin_args(pass_builder *b, scope *s, const pass_builtin *bi,
                              const fe_node *call, pass_call_args *a)
{
    int np = pass_builtin_n_params(bi), pos = 0;
    bool seen_kwarg = false;
    memset(a, 0, sizeof *a);
    a->call = call;
    for (int i = 0; i < call->list.count; i++) {
        const fe_node *arg = call->list.items[i];
        if (arg->kind != FE_KWARG) {
            if (seen_kwarg)
                return pass_build_fail(arg->loc,
                                       "a positional argument cannot follow a keyword argument");
            if (bi->variadic) {
                if (a->n_variadic == PASS_MAX_ARGS)
                    return pass_build_fail(arg->loc, "too many arguments");
                if (!eval(b, s, arg, &a->variadic[a->n_variadic++])) return false;
                pos++;
                continue;
            }
            if (pos >= np) {
                char sig[160];
                return pass_build_fail(arg->loc, "%s takes at most %d argument%s: %s", bi->name, np,
                                       np == 1 ? "" : "s",
                                       pass_builtin_signature(bi, sig, sizeof sig));
            }
            if (!eval(b, s, arg, &a->v[pos++])) return false;
            continue;
        }
        seen_kwarg = true;
        int k = 0;
        while (k < np && strcmp(bi->params[k], arg->name) != 0) k++;
        if (k == np) {
            const char *best = rt_closest(arg->name, bi->params, np);
            if (best)
                return pass_build_fail(arg->loc, "%s has no parameter '%s'; did you mean '%s'?",
                                       bi->name, arg->name, best);
            return pass_build_fail(arg->loc, "%s has no parameter '%s'", bi->name, arg->name);
        }
        if (a->v[k].kind != PASS_VAL_NONE || (!bi->variadic && k < pos))
            return pass_build_fail(arg->loc, "%s: '%s' is given twice", bi->name, arg->name);
        if (!eval(b, s, arg->lhs, &a->v[k])) return false;
    }
    for (int k = 0; k < bi->n_required; k++)
        if (a->v[k].kind == PASS_VAL_NONE) {
            char sig[160];
            return pass_build_fail(call->loc, "%s needs argument '%s': %s", bi->name, bi->params[k],
                                   pass_builtin_signature(bi, sig, sizeof sig));
        }
    return true;
}

static const fe_node *find_def(pass_builder *b, const char *name)
{
    for (int i = 0; i < b->n_defs; i++)
        if (strcmp(b->defs[i]->name, name) == 0) return b->defs[i];
    return NULL;
}

/* Inlines a user function: binds its parameters in a fresh scope whose
 * parent is the globals, runs the body, returns the `return` value. */
static bool call_def(pass_builder *b, scope *s, const fe_node *def, const fe_node *call,
                     pass_value *out)
{
    int np = def->list.count;
    if (call->list.count != np) {
        pass_build_fail(call->loc, "'%s' takes %d argument%s but %d %s given", def->name, np,
                        np == 1 ? "" : "s", call->list.count,
                        call->list.count == 1 ? "was" : "were");
        sup_note(def->loc, "'%s' is defined here", def->name);
        return false;
    }
    if (b->depth >= MAX_CALL_DEPTH) {
        pass_build_fail(call->loc,
                        "calls to functions nest more than %d deep; does '%s' call itself?",
                        MAX_CALL_DEPTH, def->name);
        sup_note(b->outer_call, "the outermost of these calls is here");
        return false;
    }
    if (b->depth == 0) b->outer_call = call->loc;
    scope inner = {.parent = b->globals};
    const char *context = b->context;
    bool ok = true, returned = false;
    for (int i = 0; ok && i < np; i++) {
        const fe_node *arg = call->list.items[i];
        pass_value v;
        if (arg->kind == FE_KWARG) {
            ok = pass_build_fail(arg->loc, "user functions take positional arguments only");
        } else if ((ok = eval(b, s, arg, &v))) {
            if (v.kind == PASS_VAL_PREFIX && b->context == context) b->context = v.str;
            scope_bind(&inner, def->list.items[i]->name, v, arg->loc);
        }
    }
    if (ok) {
        b->depth++;
        int32_t first = b->g->n_nodes;
        ok = run_stmts(b, &inner, &def->body, out, &returned);
        /* the return expression's nodes are named after the function */
        if (ok && returned)
            name_new_nodes(b, first, out->kind == PASS_VAL_TENSOR ? out->node : -1, def->name);
        b->depth--;
    }
    b->context = context;
    scope_free(&inner);
    if (ok && !returned) {
        pass_build_fail(call->loc, "'%s' does not return a value", def->name);
        sup_note(def->loc, "'%s' is defined here", def->name);
        return false;
    }
    out->loc = call->loc;
    return ok;
}

static bool eval_call(pass_builder *b, scope *s, const fe_node *e, pass_value *out)
{
    const fe_node *def = find_def(b, e->name);
    if (def) return call_def(b, s, def, e, out);
    const pass_builtin *bi = pass_builtin_find(e->name);
    if (!bi) {
        const char *names[128];
        int n = pass_builtin_names(names, 128);
        for (int i = 0; i < b->n_defs && n < 128; i++) names[n++] = b->defs[i]->name;
        const char *best = rt_closest(e->name, names, n);
        sup_loc l = e->loc;
        l.len = (int)strlen(e->name);
        if (best)
            return pass_build_fail(l, "unknown function '%s'; did you mean '%s'?", e->name, best);
        return pass_build_fail(l, "unknown function '%s'", e->name);
    }
    pass_call_args a;
    if (!bind_builtin_args(b, s, bi, e, &a)) return false;
    return bi->build(b, &a, out);
}

static bool eval(pass_builder *b, scope *s, const fe_node *e, pass_value *out)
{
    memset(out, 0, sizeof *out);
    out->loc = e->loc;
    if (++b->expressions > MAX_EXPRESSIONS)
        return pass_build_fail(e->loc, "the model unrolls into more than %d expressions",
                               MAX_EXPRESSIONS);
    switch (e->kind) {
    case FE_INT: out->kind = PASS_VAL_INT, out->i = e->ival; return true;
    case FE_FLOAT: out->kind = PASS_VAL_FLOAT, out->f = e->fval; return true;
    case FE_BOOL: out->kind = PASS_VAL_BOOL, out->i = e->ival; return true;
    case FE_STRING: out->kind = PASS_VAL_STRING, out->str = e->str; return true;
    case FE_PATH: return eval_path(b, s, e, out);
    case FE_BINARY: return eval_binary(b, s, e, out);
    case FE_CALL: return eval_call(b, s, e, out);
    case FE_NEG: {
        pass_value v;
        if (!eval(b, s, e->lhs, &v)) return false;
        if (v.kind == PASS_VAL_INT) {
            if (__builtin_sub_overflow(0, v.i, &out->i))
                return pass_build_fail(e->loc, "integer overflow in constant expression");
            return out->kind = PASS_VAL_INT, true;
        }
        if (v.kind == PASS_VAL_FLOAT) return out->kind = PASS_VAL_FLOAT, out->f = -v.f, true;
        int32_t in[2];
        if (!pass_build_want_tensor(b, &v, "the operand of '-'", &in[0])) return false;
        in[1] = pass_build_const(b, -1.0, e->loc);
        out->kind = PASS_VAL_TENSOR;
        out->node = pass_build_op(b, IR_OP_MUL, in, 2, e->loc, NULL);
        return out->node >= 0;
    }
    case FE_LIST:
        out->kind = PASS_VAL_LIST;
        out->n_items = e->list.count;
        out->items = sup_arena_alloc(b->arena, sizeof *out->items * (size_t)(e->list.count + 1));
        for (int i = 0; i < e->list.count; i++)
            if (!eval(b, s, e->list.items[i], &out->items[i])) return false;
        return true;
    case FE_ANNOT: return eval(b, s, e->lhs, out) && check_annotation(b, e, out);
    case FE_KWARG: return pass_build_fail(e->loc, "a keyword argument is only allowed in a call");
    default: break;
    }
    QMC_ASSERT(!"unexpected expression kind");
    return false;
}

/* ---- statements --------------------------------------------------------- */

static bool eval_type(pass_builder *b, scope *s, const fe_node *t, qmc_dtype *dtype, int *rank,
                      int64_t *shape)
{
    *dtype = rt_dtype_from_name(t->name);
    if (*dtype != QMC_DTYPE_F32 && *dtype != QMC_DTYPE_I32)
        return pass_build_fail(t->loc, "unsupported dtype '%s' (inputs and outputs are f32 or i32)",
                               t->name);
    if (t->list.count > IR_MAX_RANK)
        return pass_build_fail(t->loc, "more than %d dimensions", IR_MAX_RANK);
    *rank = t->list.count;
    int64_t count = 1;
    for (int i = 0; i < t->list.count; i++) {
        pass_value v;
        if (!eval(b, s, t->list.items[i], &v) || !pass_build_want_int(&v, "a dimension", &shape[i]))
            return false;
        if (shape[i] < 1)
            return pass_build_fail(v.loc, "a dimension must be positive, not %lld",
                                   (long long)shape[i]);
        if (__builtin_mul_overflow(count, shape[i], &count) || count > IR_MAX_ELEMENTS)
            return pass_build_fail(t->loc, "the type has more than %lld elements",
                                   (long long)IR_MAX_ELEMENTS);
    }
    return true;
}

static bool declare_input(pass_builder *b, scope *s, const fe_node *st)
{
    ir_graph *g = b->g;
    if (scope_find_local(s, st->name))
        return pass_build_fail(st->loc, "'%s' is already defined", st->name);
    ir_port p = {.name = st->name, .loc = st->loc};
    if (!eval_type(b, s, st->type, &p.dtype, &p.rank, p.shape)) return false;
    if (st->list.count)
        return pass_build_fail(st->list.items[0]->loc, "inputs take no annotations");
    p.node = ir_add_node(g, IR_OP_INPUT, NULL, 0, st->loc);
    ir_node *n = &g->nodes[p.node];
    n->name = pass_build_unique_name(b, st->name);
    n->dtype = p.dtype;
    n->rank = p.rank;
    memcpy(n->shape, p.shape, sizeof n->shape);
    g->inputs =
        sup_arena_grow(b->arena, g->inputs, (size_t)g->n_inputs, (size_t)g->n_inputs + 1, sizeof p);
    g->inputs[g->n_inputs++] = p;
    pass_value v = {.kind = PASS_VAL_TENSOR, .node = p.node, .loc = st->loc};
    scope_bind(s, st->name, v, st->loc)->is_input = true;
    return true;
}

static bool declare_output(pass_builder *b, scope *s, const fe_node *st)
{
    ir_graph *g = b->g;
    for (int i = 0; i < g->n_outputs; i++)
        if (strcmp(g->outputs[i].name, st->name) == 0)
            return pass_build_fail(st->loc, "output '%s' is declared twice", st->name);
    ir_port p = {.name = st->name, .loc = st->loc, .node = -1};
    if (!eval_type(b, s, st->type, &p.dtype, &p.rank, p.shape)) return false;
    if (p.dtype != QMC_DTYPE_F32)
        return pass_build_fail(st->type->loc,
                               "output '%s' is declared %s, but outputs are f32 tensors", st->name,
                               qmc_dtype_name(p.dtype));
    for (int i = 0; i < st->list.count; i++) {
        const fe_node *an = st->list.items[i];
        if (strcmp(an->name, "logits") != 0) {
            if (rt_edit_distance(an->name, "logits") <= 2)
                return pass_build_fail(
                    an->loc, "unknown output annotation '@%s'; did you mean '@logits'?", an->name);
            return pass_build_fail(
                an->loc, "unknown output annotation '@%s' (outputs take '@logits')", an->name);
        }
        p.logits = true;
    }
    g->outputs = sup_arena_grow(b->arena, g->outputs, (size_t)g->n_outputs,
                                (size_t)g->n_outputs + 1, sizeof p);
    g->outputs[g->n_outputs++] = p;
    return true;
}

static bool assign(pass_builder *b, scope *s, const fe_node *st)
{
    binding *old = scope_find(s, st->name);
    if (old && old->is_const) {
        pass_build_fail(st->loc, "cannot assign to %s '%s'",
                        old->is_loop ? "loop variable" : "constant", st->name);
        sup_note(old->loc, "'%s' is defined here", st->name);
        return false;
    }
    if (old && old->is_input) {
        pass_build_fail(st->loc, "cannot assign to input '%s'", st->name);
        sup_note(old->loc, "'%s' is declared here", st->name);
        return false;
    }
    int32_t first = b->g->n_nodes;
    pass_value v;
    if (!eval(b, s, st->lhs, &v)) return false;
    /* every node the statement made is named, also when the value is a list */
    name_new_nodes(b, first, v.kind == PASS_VAL_TENSOR ? v.node : -1, st->name);
    scope_bind(s, st->name, v, st->loc);
    return true;
}

static bool define_const(pass_builder *b, scope *s, const fe_node *st)
{
    binding *old = scope_find_local(s, st->name);
    if (old) {
        pass_build_fail(st->loc, "'%s' is already defined", st->name);
        sup_note(old->loc, "the previous definition is here");
        return false;
    }
    pass_value v;
    if (!eval(b, s, st->lhs, &v)) return false;
    if (v.kind != PASS_VAL_INT && v.kind != PASS_VAL_FLOAT && v.kind != PASS_VAL_BOOL)
        return pass_build_fail(st->lhs->loc, "a constant must be a number or a boolean, not %s",
                               pass_build_kind_name(v.kind));
    scope_bind(s, st->name, v, st->loc)->is_const = true;
    return true;
}

/* sequence T <= N: T is bound to the length this graph is built for. */
static bool declare_sequence(pass_builder *b, scope *s, const fe_node *st)
{
    ir_graph *g = b->g;
    if (g->context) {
        pass_build_fail(st->loc, "the model declares its sequence twice");
        sup_note(g->seq_loc, "the first declaration is here");
        return false;
    }
    if (scope_find_local(s, st->name))
        return pass_build_fail(st->loc, "'%s' is already defined", st->name);
    pass_value v;
    int64_t n = 0;
    if (!eval(b, s, st->lhs, &v) || !pass_build_want_int(&v, "the context", &n)) return false;
    if (n < 1 || n > MAX_CONTEXT)
        return pass_build_fail(v.loc, "the context must be between 1 and %d tokens, not %lld",
                               MAX_CONTEXT, (long long)n);
    int64_t t = b->opts && b->opts->seq_len ? b->opts->seq_len : n;
    if (t > n)
        return pass_build_fail(st->loc,
                               "--seq asks for calls of %lld tokens, but the context is %lld",
                               (long long)t, (long long)n);
    g->context = n;
    g->seq_len = t;
    g->seq_name = st->name;
    g->kv_format = b->opts ? b->opts->kv_format : RT_KV_F32;
    g->seq_loc = st->loc;
    pass_value tv = {.kind = PASS_VAL_INT, .i = t, .loc = st->loc};
    scope_bind(s, st->name, tv, st->loc)->is_const = true;
    return true;
}

static bool run_for(pass_builder *b, scope *s, const fe_node *st, pass_value *ret, bool *returned)
{
    pass_value lo, hi;
    int64_t from = 0, to = 0;
    if (!eval(b, s, st->lhs, &lo) || !pass_build_want_int(&lo, "a loop bound", &from)) return false;
    if (!eval(b, s, st->rhs, &hi) || !pass_build_want_int(&hi, "a loop bound", &to)) return false;
    int64_t trips;
    if (__builtin_sub_overflow(to, from, &trips) || trips > MAX_LOOP_TRIPS)
        return pass_build_fail(st->loc, "the loop runs more than %d times", MAX_LOOP_TRIPS);
    if (scope_find(s, st->name))
        return pass_build_fail(st->loc, "the loop variable '%s' shadows a name in use", st->name);
    for (int64_t i = from; i < to && !*returned; i++) {
        /* each trip counts as a statement, so empty nested loops end too */
        if (++b->statements > MAX_STATEMENTS)
            return pass_build_fail(st->loc, "the model unrolls into more than %d statements",
                                   MAX_STATEMENTS);
        pass_value v = {.kind = PASS_VAL_INT, .i = i, .loc = st->loc};
        binding *x = scope_bind(s, st->name, v, st->loc);
        x->is_const = x->is_loop = true;
        if (!run_stmts(b, s, &st->body, ret, returned)) return false;
    }
    scope_unbind(s, st->name);
    return true;
}

static bool run_stmt(pass_builder *b, scope *s, const fe_node *st, pass_value *ret, bool *returned)
{
    bool in_model = b->depth == 0;
    if (++b->statements > MAX_STATEMENTS)
        return pass_build_fail(st->loc, "the model unrolls into more than %d statements",
                               MAX_STATEMENTS);
    if (b->g->n_nodes > MAX_NODES)
        return pass_build_fail(st->loc, "the model unrolls into more than %d graph nodes",
                               MAX_NODES);
    switch (st->kind) {
    case FE_WEIGHTS:
        if (!in_model)
            return pass_build_fail(st->loc, "'weights' belongs in the model, not in a function");
        return pass_build_open_weights(b, st);
    case FE_INPUT:
    case FE_OUTPUT:
        if (!in_model)
            return pass_build_fail(st->loc, "'%s' belongs in the model, not in a function",
                                   fe_kind_name(st->kind));
        return st->kind == FE_INPUT ? declare_input(b, s, st) : declare_output(b, s, st);
    case FE_SEQUENCE:
        if (!in_model)
            return pass_build_fail(st->loc, "'sequence' belongs in the model, not in a function");
        return declare_sequence(b, s, st);
    case FE_CONST: return define_const(b, s, st);
    case FE_ASSIGN: return assign(b, s, st);
    case FE_FOR: return run_for(b, s, st, ret, returned);
    case FE_RETURN:
        if (in_model) return pass_build_fail(st->loc, "'return' is only allowed in a function");
        *returned = true;
        return eval(b, s, st->lhs, ret);
    default: break;
    }
    QMC_ASSERT(!"unexpected statement kind");
    return false;
}

static bool run_stmts(pass_builder *b, scope *s, const fe_list *body, pass_value *ret,
                      bool *returned)
{
    for (int i = 0; i < body->count; i++) {
        if (*returned)
            return pass_build_fail(body->items[i]->loc, "statement after 'return' is never run");
        if (!run_stmt(b, s, body->items[i], ret, returned)) return false;
    }
    return true;
}

/* ---- the model ---------------------------------------------------------- */

/* Connects each declared output to the final value of its name. */
static bool bind_outputs(pass_builder *b, scope *s, const fe_node *model)
{
    ir_graph *g = b->g;
    if (g->n_outputs == 0)
        return pass_build_fail(model->loc, "model '%s' declares no outputs", model->name);
    for (int i = 0; i < g->n_outputs; i++) {
        ir_port *p = &g->outputs[i];
        binding *x = scope_find_local(s, p->name);
        if (!x) return pass_build_fail(p->loc, "output '%s' is never assigned", p->name);
        if (x->v.kind != PASS_VAL_TENSOR) {
            pass_build_fail(x->v.loc, "output '%s' must be a tensor, not %s", p->name,
                            pass_build_kind_name(x->v.kind));
            sup_note(p->loc, "'%s' is declared here", p->name);
            return false;
        }
        const ir_node *n = &g->nodes[x->v.node];
        if (n->dtype != p->dtype || n->rank != p->rank ||
            memcmp(n->shape, p->shape, sizeof p->shape[0] * (size_t)p->rank)) {
            char want[RT_SHAPE_STR_MAX], have[RT_SHAPE_STR_MAX];
            pass_build_fail(x->v.loc,
                            "output '%s' is declared %s but is assigned a value of shape %s",
                            p->name, rt_shape_str(p->dtype, p->rank, p->shape, want, sizeof want),
                            rt_shape_str(n->dtype, n->rank, n->shape, have, sizeof have));
            sup_note(p->loc, "'%s' is declared here", p->name);
            return false;
        }
        p->node = x->v.node;
    }
    return true;
}

static bool collect_items(pass_builder *b, const fe_node *file, const fe_node **model)
{
    *model = NULL;
    b->defs = sup_arena_alloc(b->arena, sizeof *b->defs * (size_t)(file->body.count + 1));
    for (int i = 0; i < file->body.count; i++) {
        const fe_node *it = file->body.items[i];
        if (it->kind == FE_MODEL) {
            if (*model)
                return pass_build_fail(it->loc, "a file holds one model; '%s' is the second",
                                       it->name);
            *model = it;
        } else if (it->kind == FE_DEF) {
            if (pass_builtin_find(it->name))
                return pass_build_fail(
                    it->loc, "'%s' is a built-in operation and cannot be redefined", it->name);
            if (find_def(b, it->name))
                return pass_build_fail(it->loc, "function '%s' is defined twice", it->name);
            for (int p = 0; p < it->list.count; p++)
                for (int q = 0; q < p; q++)
                    if (strcmp(it->list.items[p]->name, it->list.items[q]->name) == 0)
                        return pass_build_fail(it->list.items[p]->loc, "parameter '%s' is repeated",
                                               it->list.items[p]->name);
            b->defs[b->n_defs++] = it;
        } else if (it->kind == FE_CONST) {
            if (!define_const(b, b->globals, it)) return false;
        }
    }
    if (!*model) {
        sup_loc l = {sup_arena_strdup(b->arena, b->g->source), 0, 0, 0}; /* the file, no line */
        return pass_build_fail(l, "the file defines no model (expected `model NAME { ... }`)");
    }
    return true;
}

ir_graph *pass_build_graph(sup_arena *arena, const fe_node *file, const pass_build_options *opts)
{
    ir_graph *g = sup_arena_alloc(arena, sizeof *g);
    g->arena = arena;
    g->source = file->loc.file ? file->loc.file : "<input>";
    pass_builder b = {.arena = arena, .g = g, .opts = opts};
    scope globals = {0}, ms = {.parent = &globals};
    b.globals = &globals;
    const fe_node *model;
    pass_value ret;
    bool returned = false;
    bool ok = collect_items(&b, file, &model);
    if (ok) g->name = model->name;
    /* --weights supplies the weights even to a model without a `weights` statement */
    if (ok && opts && opts->weights_override) ok = pass_build_open_weights(&b, NULL);
    ok = ok && run_stmts(&b, &ms, &model->body, &ret, &returned) && bind_outputs(&b, &ms, model);
    scope_free(&ms);
    scope_free(&globals);
    if (!ok && g->weights) fe_safetensors_close(g->weights); /* unmapped: nobody else can */
    return ok ? g : NULL;
}
