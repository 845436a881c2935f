/* parse.c: reads a model file and runs the scanner and parser over it.
 *
 * Guarantees: the returned tree is syntactically valid; on any lexical or
 * syntax error the errors have been reported and NULL is returned. */
#include <stdlib.h>
#include <string.h>

#include "lex_state.h"
#include "parser.h"
#include "lexer.h"

enum { MAX_NESTING = 1000 };

/* Every later stage walks the tree recursively; a chain like a + b + c + ...
 * nests one level per operator without growing the parser's stack, so deep
 * trees are rejected here (the walk itself stops at the limit). */
static bool check_nesting(const fe_node *n, int depth)
{
    if (!n) return true;
    if (depth > MAX_NESTING) {
        sup_error(n->loc, "the expression nests more than %d levels deep", MAX_NESTING);
        return false;
    }
    const fe_node *kids[] = {n->lhs, n->rhs, n->type};
    for (size_t i = 0; i < sizeof kids / sizeof kids[0]; i++)
        if (!check_nesting(kids[i], depth + 1)) return false;
    for (int i = 0; i < n->list.count; i++)
        if (!check_nesting(n->list.items[i], depth + 1)) return false;
    for (int i = 0; i < n->body.count; i++)
        if (!check_nesting(n->body.items[i], depth + 1)) return false;
    return true;
}

fe_node *fe_parse_text(sup_arena *arena, const char *path, const char *text, size_t len)
{
    sup_diag_add_source(path, text, len);
    fe_lex_state st = {
        .arena = arena, .path = path, .line = 1, .col = 1, .text = text, .text_len = len};
    yyscan_t scanner;
    if (fe_yylex_init_extra(&st, &scanner)) {
        sup_error_plain("cannot initialise the scanner");
        return NULL;
    }
    if (len > INT32_MAX) {
        sup_error_plain("%s: the source is too large", path);
        fe_yylex_destroy(scanner);
        return NULL;
    }
    YY_BUFFER_STATE buf = fe_yy_scan_bytes(text, (int)len, scanner);
    int rc = fe_yyparse(scanner, &st);
    fe_yy_delete_buffer(buf, scanner);
    fe_yylex_destroy(scanner);
    if (rc != 0 || st.lex_error) return NULL;
    if (!check_nesting(st.root, 0)) return NULL;
    return st.root;
}

fe_node *fe_parse_file(sup_arena *arena, const char *path)
{
    rt_mapped_file f;
    char err[256];
    if (rt_file_map(path, &f, err, sizeof err) != QMC_OK) {
        sup_error_plain("%s: %s", path, err);
        return NULL;
    }
    if (f.size > (size_t)1 << 30) {
        sup_error_plain("%s: model file is larger than 1 GiB", path);
        rt_file_unmap(&f);
        return NULL;
    }
    /* keep a copy in the arena: diagnostics quote it after the file is unmapped */
    char *text = sup_arena_strndup(arena, f.size ? (const char *)f.data : "", f.size);
    size_t len = f.size;
    rt_file_unmap(&f);
    return fe_parse_text(arena, sup_arena_strdup(arena, path), text, len);
}
