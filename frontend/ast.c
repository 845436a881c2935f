/* ast.c: syntax tree nodes, paths as text, and the tree dump used by the
 * parser's tests. */
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

fe_node *fe_node_new(sup_arena *arena, fe_kind kind, sup_loc loc)
{
    fe_node *n = sup_arena_alloc(arena, sizeof *n);
    n->kind = kind;
    n->loc = loc;
    return n;
}

void fe_list_push(sup_arena *arena, fe_list *list, fe_node *node)
{
    if (list->count == list->cap) {
        int cap = list->cap ? list->cap * 2 : 4;
        list->items =
            sup_arena_grow(arena, list->items, (size_t)list->cap, (size_t)cap, sizeof *list->items);
        list->cap = cap;
    }
    list->items[list->count++] = node;
}

const char *fe_kind_name(fe_kind kind)
{
    static const char *const names[] = {
        [FE_INT] = "int",
        [FE_FLOAT] = "float",
        [FE_BOOL] = "bool",
        [FE_STRING] = "string",
        [FE_PATH] = "path",
        [FE_CALL] = "call",
        [FE_KWARG] = "kwarg",
        [FE_BINARY] = "binary",
        [FE_NEG] = "neg",
        [FE_LIST] = "list",
        [FE_ANNOT] = "annot",
        [FE_SEG] = "seg",
        [FE_PART_NAME] = "name",
        [FE_PART_INT] = "index",
        [FE_PART_EXPR] = "interp",
        [FE_TYPE] = "type",
        [FE_WEIGHTS] = "weights",
        [FE_INPUT] = "input",
        [FE_OUTPUT] = "output",
        [FE_CONST] = "const",
        [FE_ASSIGN] = "assign",
        [FE_FOR] = "for",
        [FE_RETURN] = "return",
        [FE_SEQUENCE] = "sequence",
        [FE_ANNOT_NAME] = "annotation",
        [FE_DEF] = "def",
        [FE_PARAM] = "param",
        [FE_MODEL] = "model",
        [FE_FILE] = "file",
    };
    return (unsigned)kind < sizeof names / sizeof names[0] && names[kind] ? names[kind] : "?";
}

static void expr_text(FILE *f, const fe_node *n);

static void path_text(FILE *f, const fe_node *path)
{
    for (int i = 0; i < path->list.count; i++) {
        const fe_node *seg = path->list.items[i];
        if (i) fputc('.', f);
        for (int j = 0; j < seg->list.count; j++) {
            const fe_node *part = seg->list.items[j];
            if (part->kind == FE_PART_NAME)
                fputs(part->str, f);
            else if (part->kind == FE_PART_INT)
                fprintf(f, "%lld", (long long)part->ival);
            else
                fputc('{', f), expr_text(f, part->lhs), fputc('}', f);
        }
    }
}

/* The expression in source-like form (fully parenthesised binaries). */
static void expr_text(FILE *f, const fe_node *n)
{
    switch (n->kind) {
    case FE_INT: fprintf(f, "%lld", (long long)n->ival); break;
    case FE_FLOAT: fprintf(f, "%.9g", n->fval); break;
    case FE_BOOL: fputs(n->ival ? "true" : "false", f); break;
    case FE_STRING: fprintf(f, "\"%s\"", n->str); break;
    case FE_PATH: path_text(f, n); break;
    case FE_BINARY:
        fputc('(', f), expr_text(f, n->lhs), fprintf(f, " %c ", n->op), expr_text(f, n->rhs);
        fputc(')', f);
        break;
    case FE_NEG: fputs("-", f), expr_text(f, n->lhs); break;
    case FE_ANNOT: expr_text(f, n->lhs), fprintf(f, " @%s", n->name); break;
    case FE_KWARG: fprintf(f, "%s=", n->name), expr_text(f, n->lhs); break;
    case FE_CALL:
    case FE_LIST:
        if (n->kind == FE_CALL) fputs(n->name, f);
        fputc(n->kind == FE_CALL ? '(' : '[', f);
        for (int i = 0; i < n->list.count; i++) {
            if (i) fputs(", ", f);
            expr_text(f, n->list.items[i]);
        }
        fputc(n->kind == FE_CALL ? ')' : ']', f);
        break;
    default: fprintf(f, "<%s>", fe_kind_name(n->kind)); break;
    }
}

const char *fe_path_text(sup_arena *arena, const fe_node *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return "?";
    path_text(f, path);
    fclose(f);
    const char *s = sup_arena_strndup(arena, buf, len);
    free(buf);
    return s;
}

static void type_text(FILE *f, const fe_node *t)
{
    fprintf(f, "%s[", t->name);
    for (int i = 0; i < t->list.count; i++) {
        if (i) fputs(", ", f);
        expr_text(f, t->list.items[i]);
    }
    fputc(']', f);
}

void fe_ast_dump(FILE *out, const fe_node *n, int indent)
{
    fprintf(out, "%*s%s", indent * 2, "", fe_kind_name(n->kind));
    switch (n->kind) {
    case FE_FILE: break;
    case FE_MODEL: fprintf(out, " %s", n->name); break;
    case FE_DEF:
        fprintf(out, " %s(", n->name);
        for (int i = 0; i < n->list.count; i++)
            fprintf(out, "%s%s", i ? ", " : "", n->list.items[i]->name);
        fputc(')', out);
        break;
    case FE_WEIGHTS: fprintf(out, " \"%s\"", n->str); break;
    case FE_INPUT:
    case FE_OUTPUT:
        fprintf(out, " %s: ", n->name);
        type_text(out, n->type);
        for (int i = 0; i < n->list.count; i++) fprintf(out, " @%s", n->list.items[i]->name);
        break;
    case FE_CONST:
    case FE_ASSIGN: fprintf(out, " %s = ", n->name), expr_text(out, n->lhs); break;
    case FE_RETURN: fputc(' ', out), expr_text(out, n->lhs); break;
    case FE_SEQUENCE: fprintf(out, " %s <= ", n->name), expr_text(out, n->lhs); break;
    case FE_FOR:
        fprintf(out, " %s in ", n->name), expr_text(out, n->lhs), fputs(" .. ", out);
        expr_text(out, n->rhs);
        break;
    default: fputc(' ', out), expr_text(out, n); break;
    }
    fprintf(out, "  @%d:%d\n", n->loc.line, n->loc.col);
    for (int i = 0; i < n->body.count; i++) fe_ast_dump(out, n->body.items[i], indent + 1);
}
