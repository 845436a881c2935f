/* parser.y: grammar of the qmc model language.
 *
 * A file holds constants, functions and one model:
 *
 *   const D = 128
 *   def mlp(x, p) { return linear(gelu(linear(x, p.fc1.weight, p.fc1.bias)), ...) }
 *   model gpt {
 *     weights "lm.safetensors"
 *     input  idx: i32[T]
 *     output logits: f32[T, 256] @logits
 *     for i in 0..L { x = x + mlp(x, blocks.{i}) }
 *     logits = ...
 *   }
 *
 * A model that generates text declares the tokens of one call with
 *   sequence T <= 256            (T is 1..256 at run time; a KV cache keeps the rest)
 *
 * Statements need no separator (an optional ';' is allowed): every statement
 * starts with a keyword or `name =`. The parser only builds the tree; names,
 * shapes and weights are resolved when the graph is built. */
%define api.pure full
%define api.prefix {fe_yy}
%define parse.error custom
%locations
%param {void *scanner}
%parse-param {fe_lex_state *st}

%code requires {
#include "lex_state.h"
}

%code provides {
/* the scanner (flex) knows the types by their unprefixed names */
#define YYSTYPE FE_YYSTYPE
#define YYLTYPE FE_YYLTYPE
int fe_yylex(FE_YYSTYPE *lval, FE_YYLTYPE *lloc, void *scanner);
}

%code {
#include <string.h>

#define LOC(yl) FE_LOC_OF(st, yl)
#define NODE(kind, yl) fe_node_new(st->arena, (kind), LOC(yl))
#define PUSH(list, n) fe_list_push(st->arena, &(list), (n))

static void fe_yyerror(FE_YYLTYPE *loc, void *scanner, fe_lex_state *st, const char *msg)
{
    (void)scanner;
    if (st->lex_error) return;
    /* the only message bison reports itself is its stack overflowing */
    if (strcmp(msg, "memory exhausted") == 0)
        msg = "the source nests too deeply (more than 10000 open brackets or operators)";
    sup_error(FE_LOC_OF(st, *loc), "%s", msg);
}

/* Joins two locations on one line into one span. */
static sup_loc span(fe_lex_state *st, FE_YYLTYPE a, FE_YYLTYPE b)
{
    sup_loc l = FE_LOC_OF(st, a);
    if (a.first_line == b.last_line) l.len = b.last_column - a.first_column;
    return l;
}

static fe_node *binary(fe_lex_state *st, char op, fe_node *l, fe_node *r, FE_YYLTYPE at)
{
    fe_node *n = fe_node_new(st->arena, FE_BINARY, FE_LOC_OF(st, at));
    n->op = op;
    n->lhs = l;
    n->rhs = r;
    return n;
}
}

%union {
    int64_t ival;
    double fval;
    const char *str;
    fe_node *node;
}

%token <str> IDENT "identifier"
%token <str> STRING "string"
%token <ival> INT "integer"
%token <fval> FLOAT "number"
%token MODEL "'model'" WEIGHTS "'weights'" INPUT "'input'" OUTPUT "'output'"
%token CONST "'const'" DEF "'def'" FOR "'for'" IN "'in'" RETURN "'return'"
%token TRUE "'true'" FALSE "'false'"
%token SEQUENCE "'sequence'"
%token LE "'<='"
%token DOTDOT "'..'"
%token GLUE_LBRACE "'{' directly after a name"

%type <node> file item model def const_decl stmt stmts block params param_list
%type <node> type annots expr primary call args arg_list arg exprs expr_list
%type <node> path path_first seg seg_first

%left '+' '-'
%left '*' '/'
%precedence NEG
%precedence '@'

%%

file:
    %empty              { $$ = st->root = NODE(FE_FILE, @$); }
  | file item           { $$ = $1; PUSH($$->body, $2); }
  ;

item:
    const_decl
  | def
  | model
  ;

/* const NAME = expr */
const_decl:
    CONST IDENT '=' expr
                        { $$ = NODE(FE_CONST, @2); $$->name = $2; $$->lhs = $4; }
  ;

/* def NAME(a, b) { stmts }   ('{' may touch the ')') */
def:
    DEF IDENT '(' params ')' block
                        { $$ = NODE(FE_DEF, @2); $$->name = $2; $$->list = $4->list; $$->body = $6->body; }
  ;

params:
    %empty              { $$ = NODE(FE_PARAM, @$); }
  | param_list
  ;

param_list:
    IDENT               { $$ = NODE(FE_PARAM, @$); fe_node *p = NODE(FE_PARAM, @1); p->name = $1; PUSH($$->list, p); }
  | param_list ',' IDENT
                        { $$ = $1; fe_node *p = NODE(FE_PARAM, @3); p->name = $3; PUSH($$->list, p); }
  ;

/* model NAME { stmts } */
model:
    MODEL IDENT block   { $$ = NODE(FE_MODEL, @2); $$->name = $2; $$->body = $3->body; }
  ;

block:
    '{' stmts '}'       { $$ = $2; }
  | GLUE_LBRACE stmts '}' { $$ = $2; }
  ;

stmts:
    %empty              { $$ = NODE(FE_FILE, @$); }
  | stmts stmt          { $$ = $1; if ($2) PUSH($$->body, $2); }
  ;

stmt:
    WEIGHTS STRING      { $$ = NODE(FE_WEIGHTS, @2); $$->str = $2; }
  | INPUT IDENT ':' type annots
                        { $$ = NODE(FE_INPUT, @2); $$->name = $2; $$->type = $4; $$->list = $5->list; }
  | OUTPUT IDENT ':' type annots
                        { $$ = NODE(FE_OUTPUT, @2); $$->name = $2; $$->type = $4; $$->list = $5->list; }
  | const_decl
  | IDENT '=' expr      { $$ = NODE(FE_ASSIGN, @1); $$->name = $1; $$->lhs = $3; }
  | FOR IDENT IN expr DOTDOT expr '{' stmts '}'
                        { $$ = NODE(FE_FOR, @2); $$->name = $2; $$->lhs = $4; $$->rhs = $6; $$->body = $8->body; }
  | RETURN expr         { $$ = NODE(FE_RETURN, @1); $$->lhs = $2; }
  | SEQUENCE IDENT LE expr
                        { $$ = NODE(FE_SEQUENCE, @2); $$->name = $2; $$->lhs = $4; }
  | ';'                 { $$ = NULL; }
  ;

/* f32[T, D] */
type:
    IDENT '[' exprs ']' { $$ = NODE(FE_TYPE, @1); $$->name = $1; $$->list = $3->list; }
  ;

annots:
    %empty              { $$ = NODE(FE_ANNOT_NAME, @$); }
  | annots '@' IDENT    { $$ = $1; fe_node *a = NODE(FE_ANNOT_NAME, @3); a->name = $3; PUSH($$->list, a); }
  ;

expr:
    primary
  | expr '+' expr       { $$ = binary(st, '+', $1, $3, @2); }
  | expr '-' expr       { $$ = binary(st, '-', $1, $3, @2); }
  | expr '*' expr       { $$ = binary(st, '*', $1, $3, @2); }
  | expr '/' expr       { $$ = binary(st, '/', $1, $3, @2); }
  | '-' expr %prec NEG  { $$ = NODE(FE_NEG, @1); $$->lhs = $2; }
  | expr '@' IDENT      { $$ = NODE(FE_ANNOT, @3); $$->lhs = $1; $$->name = $3; }
  ;

primary:
    INT                 { $$ = NODE(FE_INT, @1); $$->ival = $1; }
  | FLOAT               { $$ = NODE(FE_FLOAT, @1); $$->fval = $1; }
  | TRUE                { $$ = NODE(FE_BOOL, @1); $$->ival = 1; }
  | FALSE               { $$ = NODE(FE_BOOL, @1); $$->ival = 0; }
  | STRING              { $$ = NODE(FE_STRING, @1); $$->str = $1; }
  | path                { $$ = $1; $$->loc = span(st, @1, @1); }
  | call
  | '(' expr ')'        { $$ = $2; }
  | '[' exprs ']'       { $$ = NODE(FE_LIST, @1); $$->list = $2->list; }
  ;

/* NAME(args), args positional then keyword: f(x, w, eps=1e-5) */
call:
    IDENT '(' args ')'  { $$ = NODE(FE_CALL, @1); $$->name = $1; $$->list = $3->list; }
  ;

args:
    %empty              { $$ = NODE(FE_LIST, @$); }
  | arg_list
  ;

arg_list:
    arg                 { $$ = NODE(FE_LIST, @$); PUSH($$->list, $1); }
  | arg_list ',' arg    { $$ = $1; PUSH($$->list, $3); }
  ;

arg:
    expr
  | IDENT '=' expr      { $$ = NODE(FE_KWARG, @1); $$->name = $1; $$->lhs = $3; }
  ;

exprs:
    %empty              { $$ = NODE(FE_LIST, @$); }
  | expr_list
  ;

expr_list:
    expr                { $$ = NODE(FE_LIST, @$); PUSH($$->list, $1); }
  | expr_list ',' expr  { $$ = $1; PUSH($$->list, $3); }
  ;

/* A path: `x`, `fc1.weight`, `blocks.{i}.q.weight`, `fc{i}.bias`, `p.ln1`.
 * Each segment is a sequence of parts; a part is a name, an integer or an
 * interpolated {expr} glued to what precedes it. */
path:
    path_first          { $$ = NODE(FE_PATH, @1); PUSH($$->list, $1); }
  | path '.' seg        { $$ = $1; PUSH($$->list, $3); }
  ;

path_first:
    IDENT               { $$ = NODE(FE_SEG, @1); fe_node *p = NODE(FE_PART_NAME, @1); p->str = $1; PUSH($$->list, p); }
  | path_first GLUE_LBRACE expr '}'
                        { $$ = $1; fe_node *p = NODE(FE_PART_EXPR, @3); p->lhs = $3; PUSH($$->list, p); }
  ;

seg:
    seg_first
  | seg GLUE_LBRACE expr '}'
                        { $$ = $1; fe_node *p = NODE(FE_PART_EXPR, @3); p->lhs = $3; PUSH($$->list, p); }
  ;

seg_first:
    IDENT               { $$ = NODE(FE_SEG, @1); fe_node *p = NODE(FE_PART_NAME, @1); p->str = $1; PUSH($$->list, p); }
  | INT                 { $$ = NODE(FE_SEG, @1); fe_node *p = NODE(FE_PART_INT, @1); p->ival = $1; PUSH($$->list, p); }
  | '{' expr '}'        { $$ = NODE(FE_SEG, @2); fe_node *p = NODE(FE_PART_EXPR, @2); p->lhs = $2; PUSH($$->list, p); }
  ;

%%

/* Notes after a syntax error: where the innermost open brace is, when the
 * error is that it was never closed, and what a '{' glued to a name means. */
static void brace_notes(fe_lex_state *st, bool at_eof)
{
    bool glue = false;
    const sup_loc *open = fe_lex_open_brace(st, &glue);
    if (!open) return;
    if (glue)
        sup_note(*open, "'{' directly after a name starts an interpolation such as fc{i}.weight; "
                       "put a space before it to open a block");
    else if (at_eof)
        sup_note(*open, "to match this '{'");
}

/* "expected ')' or ',', found identifier 'foo'" at the offending token. */
static int yyreport_syntax_error(const yypcontext_t *ctx, void *scanner, fe_lex_state *st)
{
    (void)scanner;
    /* after a lexical error (already reported) the parser's complaint is noise */
    if (st->lex_error) return 0;
    enum { MAX_EXPECTED = 6 };
    yysymbol_kind_t expected[YYNTOKENS];
    int n = yypcontext_expected_tokens(ctx, expected, YYNTOKENS);
    yysymbol_kind_t found = yypcontext_token(ctx);
    const FE_YYLTYPE *loc = yypcontext_location(ctx);
    bool want_rbrace = false;
    for (int i = 0; i < n; i++) want_rbrace |= expected[i] == YYTRANSLATE('}');
    bool glue = false;
    if (found == YYSYMBOL_YYEOF && want_rbrace && fe_lex_open_brace(st, &glue) && !glue) {
        /* clang's wording: the block was never closed */
        sup_error(FE_LOC_OF(st, *loc), "expected '}' at end of file");
        brace_notes(st, true);
        return 0;
    }
    bool want_expr = false;
    for (int i = 0; i < n; i++) want_expr |= expected[i] == YYSYMBOL_INT;
    char msg[512];
    size_t len = 0;
    if (n > MAX_EXPECTED && want_expr) {
        len += (size_t)snprintf(msg + len, sizeof msg - len, "expected an expression, found ");
    } else if (n > 0 && n <= MAX_EXPECTED) {
        len += (size_t)snprintf(msg + len, sizeof msg - len, "expected ");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s",
                                    i == 0 ? "" : i + 1 == n ? " or " : ", ", yysymbol_name(expected[i]));
        len += (size_t)snprintf(msg + len, sizeof msg - len, ", found ");
    } else {
        len += (size_t)snprintf(msg + len, sizeof msg - len, "unexpected ");
    }
    if (found == YYSYMBOL_YYEOF)
        snprintf(msg + len, sizeof msg - len, "end of file");
    else if (found == YYSYMBOL_IDENT || found == YYSYMBOL_INT || found == YYSYMBOL_FLOAT)
        snprintf(msg + len, sizeof msg - len, "%s '%s'", yysymbol_name(found), fe_lex_token_text(st, loc));
    else
        snprintf(msg + len, sizeof msg - len, "%s", yysymbol_name(found));
    sup_error(FE_LOC_OF(st, *loc), "%s", msg);
    brace_notes(st, found == YYSYMBOL_YYEOF);
    return 0;
}
