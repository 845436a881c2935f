/* lex_state.h: state shared by the flex scanner and the bison parser. */
#ifndef QMC_LEX_STATE_H
#define QMC_LEX_STATE_H

#include "frontend.h"

typedef struct fe_lex_state {
    sup_arena *arena;
    const char *path;
    int line, col;  /* where the next character is (1-based) */
    int last_token; /* kind of the previous token, 0 at the start */
    int last_end_line, last_end_col;
    bool lex_error;   /* a lexical error was reported */
    fe_node *root;    /* the parser's result */
    const char *text; /* the whole source */
    size_t text_len;
    /* braces still open, innermost last, for "to match this '{'" notes;
     * glue[i] marks an interpolation brace (`fc{`), not a block */
    int depth;
    sup_loc brace[64];
    bool glue[64];
} fe_lex_state;

/* The innermost open brace, or NULL (nesting deeper than 64 is not tracked). */
static inline const sup_loc *fe_lex_open_brace(const fe_lex_state *st, bool *glue)
{
    int i = st->depth < 64 ? st->depth - 1 : 63;
    if (i < 0) return NULL;
    *glue = st->glue[i];
    return &st->brace[i];
}

/* The source text a token at loc spans (one line at most), in the arena. */
struct FE_YYLTYPE;
const char *fe_lex_token_text(fe_lex_state *st, const void *loc);

/* Converts a bison location to a diagnostic location. */
#define FE_LOC_OF(st, yl)                                                                          \
    ((sup_loc){(st)->path, (yl).first_line, (yl).first_column,                                     \
               (yl).first_line == (yl).last_line ? (yl).last_column - (yl).first_column : 1})

#endif
