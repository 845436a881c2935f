/* test_lexer.c: tokens of the model language (fe_lex_dump), in particular
 * the two context rules: digits after '.' are integers, and '{' glued to a
 * name, integer or '}' is an interpolation. */
#include "frontend.h"
#include "unit.h"

/* Lexes src; returns the dump (free it) and the count in *n. */
static char *lex(const char *src, int *n, char **diag)
{
    sup_arena arena = {0};
    capture c;
    capture_begin(&c);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *n = fe_lex_dump(&arena, "t.qm", src, strlen(src), f);
    fclose(f);
    char *d = capture_end(&c);
    if (diag)
        *diag = d;
    else
        free(d);
    sup_arena_free(&arena);
    return buf;
}

static void expect_tokens(const char *src, const char *expected)
{
    int n;
    char *diag;
    char *got = lex(src, &n, &diag);
    assert_string_equal(diag, "");
    assert_string_equal(got, expected);
    int lines = 0;
    for (const char *p = expected; *p; p++) lines += *p == '\n';
    assert_int_equal(n, lines);
    free(got);
    free(diag);
}

static void test_weight_paths(void **state)
{
    (void)state;
    /* blocks.0.1 is three segments, never the float 0.1 */
    expect_tokens("blocks.0.1",
                  "1:1 ident blocks\n1:7 punct .\n1:8 int 0\n1:9 punct .\n1:10 int 1\n");
    expect_tokens("a.0.5e3",
                  "1:1 ident a\n1:2 punct .\n1:3 int 0\n1:4 punct .\n1:5 int 5\n1:6 ident e3\n");
    expect_tokens("fc{i}.weight", "1:1 ident fc\n1:3 glue-'{' {\n1:4 ident i\n1:5 punct }\n"
                                  "1:6 punct .\n1:7 ident weight\n");
    expect_tokens("blocks.{i}.q", "1:1 ident blocks\n1:7 punct .\n1:8 punct {\n1:9 ident i\n"
                                  "1:10 punct }\n1:11 punct .\n1:12 ident q\n");
    /* glued after an integer and after '}' */
    expect_tokens("x.0{i}{j}", "1:1 ident x\n1:2 punct .\n1:3 int 0\n1:4 glue-'{' {\n1:5 ident i\n"
                               "1:6 punct }\n1:7 glue-'{' {\n1:8 ident j\n1:9 punct }\n");
}

static void test_numbers(void **state)
{
    (void)state;
    expect_tokens("0.5 1e-3 2.5E+2 7",
                  "1:1 float 0.5\n1:5 float 1e-3\n1:10 float 2.5E+2\n1:17 int 7\n");
    /* a '.' not followed by digits ends the integer */
    expect_tokens("2.", "1:1 int 2\n1:2 punct .\n");
    /* 0..L is a range, not the float 0. */
    expect_tokens("0..L", "1:1 int 0\n1:2 '..' ..\n1:4 ident L\n");
    expect_tokens("1..3", "1:1 int 1\n1:2 '..' ..\n1:4 int 3\n");
    expect_tokens("9007199254740992", "1:1 int 9007199254740992\n");
}

static void test_blocks_and_glue(void **state)
{
    (void)state;
    expect_tokens("model m{", "1:1 keyword model\n1:7 ident m\n1:8 glue-'{' {\n");
    expect_tokens("model m {", "1:1 keyword model\n1:7 ident m\n1:9 punct {\n");
    /* ')' never glues: def f(x){ opens a block */
    expect_tokens("f(x){", "1:1 ident f\n1:2 punct (\n1:3 ident x\n1:4 punct )\n1:5 punct {\n");
    /* the glued brace of `0..L{` is what makes that loop header an error */
    expect_tokens("0..L{", "1:1 int 0\n1:2 '..' ..\n1:4 ident L\n1:5 glue-'{' {\n");
    /* a newline between breaks the glue */
    expect_tokens("L\n{", "1:1 ident L\n2:1 punct {\n");
}

static void test_comments_strings_keywords(void **state)
{
    (void)state;
    expect_tokens("x # comment { \"\n  y", "1:1 ident x\n2:3 ident y\n");
    expect_tokens("\"a\\\"b\" \"w.safetensors\"",
                  "1:1 string \"a\\\"b\"\n1:8 string \"w.safetensors\"\n");
    expect_tokens(
        "model weights input output const def for in return true false modelx",
        "1:1 keyword model\n1:7 keyword weights\n1:15 keyword input\n1:21 keyword output\n"
        "1:28 keyword const\n1:34 keyword def\n1:38 keyword for\n1:42 keyword in\n"
        "1:45 keyword return\n1:52 keyword true\n1:57 keyword false\n1:63 ident modelx\n");
    expect_tokens(
        "(a)[b],c:d=e+f-g*h/i@j;k",
        "1:1 punct (\n1:2 ident a\n1:3 punct )\n1:4 punct [\n1:5 ident b\n1:6 punct ]\n"
        "1:7 punct ,\n1:8 ident c\n1:9 punct :\n1:10 ident d\n1:11 punct =\n1:12 ident e\n"
        "1:13 punct +\n1:14 ident f\n1:15 punct -\n1:16 ident g\n1:17 punct *\n1:18 ident h\n"
        "1:19 punct /\n1:20 ident i\n1:21 punct @\n1:22 ident j\n1:23 punct ;\n1:24 ident k\n");
    /* tabs count as one column, CRLF line ends */
    expect_tokens("\tx\r\ny", "1:2 ident x\n2:1 ident y\n");
}

static void expect_error(const char *src, int len, const char *diag_expected)
{
    sup_arena arena = {0};
    capture c;
    capture_begin(&c);
    FILE *devnull = fopen("/dev/null", "w");
    int n = fe_lex_dump(&arena, "t.qm", src, (size_t)len, devnull);
    fclose(devnull);
    assert_int_equal(n, -1);
    assert_captured(&c, diag_expected);
    sup_arena_free(&arena);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("x = \"abc", 8, "t.qm:1:5: error: missing closing '\"' in string\n");
    expect_error("\"a\\qb\"", 6, "t.qm:1:3: error: unknown escape sequence '\\q' in string\n");
    expect_error("x $ y", 5, "t.qm:1:3: error: unexpected character '$'\n");
    expect_error("x \x01", 3, "t.qm:1:3: error: unexpected byte 0x01\n");
    /* a NUL byte inside the text (the dump must not stop or overrun at it) */
    expect_error("a\0b\nc", 5, "t.qm:1:2: error: unexpected byte 0x00\n");
    expect_error("123456789012345678901", 21,
                 "t.qm:1:1: error: integer literal '123456789012345678901' is too large\n");
    expect_error("9007199254740993", 16,
                 "t.qm:1:1: error: integer literal '9007199254740993' is too large\n");
    expect_error("1e999", 5, "t.qm:1:1: error: number literal '1e999' is too large\n");
}

/* The text need not be NUL-terminated: lex only the first bytes of a buffer. */
static void test_length_bounded(void **state)
{
    (void)state;
    const char src[] = "ab cd";
    sup_arena arena = {0};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(fe_lex_dump(&arena, "t.qm", src, 2, f), 1);
    fclose(f);
    assert_string_equal(buf, "1:1 ident ab\n");
    free(buf);
    sup_arena_free(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weight_paths),    cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_blocks_and_glue), cmocka_unit_test(test_comments_strings_keywords),
        cmocka_unit_test(test_errors),          cmocka_unit_test(test_length_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
