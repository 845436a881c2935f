/* test_parser.c: the grammar (fe_parse_text + fe_ast_dump) and its error
 * messages, captured exactly. */
#include "frontend.h"
#include "unit.h"

static sup_arena arena;

/* Parses src and returns the tree dump (free it), or NULL on error. */
static char *parse_dump(const char *src)
{
    fe_node *root = fe_parse_text(&arena, "t.qm", src, strlen(src));
    if (!root) return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fe_ast_dump(f, root, 0);
    fclose(f);
    return buf;
}

static void expect_tree(const char *src, const char *expected)
{
    capture c;
    capture_begin(&c);
    char *got = parse_dump(src);
    assert_captured(&c, "");
    assert_non_null(got);
    assert_string_equal(got, expected);
    free(got);
}

static void expect_syntax_error(const char *src, const char *expected)
{
    capture c;
    capture_begin(&c);
    assert_null(fe_parse_text(&arena, "t.qm", src, strlen(src)));
    assert_captured(&c, expected);
    assert_int_equal(sup_error_count(), 1);
}

static void test_model(void **state)
{
    (void)state;
    expect_tree("model digits {\n"
                "    weights \"w.safetensors\"\n"
                "    input x: f32[64]\n"
                "    output logits: f32[10] @logits\n"
                "    h = x\n"
                "    for i in 1..3 {\n"
                "        h = relu(linear(h, fc{i}.weight, fc{i}.bias))\n"
                "    }\n"
                "    logits = linear(h, fc3.weight, fc3.bias)\n"
                "}\n",
                "file  @1:1\n"
                "  model digits  @1:7\n"
                "    weights \"w.safetensors\"  @2:13\n"
                "    input x: f32[64]  @3:11\n"
                "    output logits: f32[10] @logits  @4:12\n"
                "    assign h = x  @5:5\n"
                "    for i in 1 .. 3  @6:9\n"
                "      assign h = relu(linear(h, fc{i}.weight, fc{i}.bias))  @7:9\n"
                "    assign logits = linear(h, fc3.weight, fc3.bias)  @9:5\n");
}

static void test_items_and_expressions(void **state)
{
    (void)state;
    expect_tree(
        "const D = 2 * (3 + 4) - -1\n"
        "def block(x, p) { return x + linear(x, p.w) }\n"
        "model m{ y = attention(q, k, v, heads=4, causal=true) @int8; z = [1, 2.5, \"s\", false] }",
        "file  @1:1\n"
        "  const D = ((2 * (3 + 4)) - -1)  @1:7\n"
        "  def block(x, p)  @2:5\n"
        "    return (x + linear(x, p.w))  @2:19\n"
        "  model m  @3:7\n"
        "    assign y = attention(q, k, v, heads=4, causal=true) @int8  @3:10\n"
        "    assign z = [1, 2.5, \"s\", false]  @3:62\n");
    /* precedence: * over +, left associativity, unary minus binds tightest */
    expect_tree("model m { y = a - b - c * d / e + -f * g }",
                "file  @1:1\n"
                "  model m  @1:7\n"
                "    assign y = (((a - b) - ((c * d) / e)) + (-f * g))  @1:11\n");
    /* paths: integer segments, interpolations in any segment */
    expect_tree("model m { y = blocks.0.1.{i + 1}.w{j} }",
                "file  @1:1\n"
                "  model m  @1:7\n"
                "    assign y = blocks.0.1.{(i + 1)}.w{j}  @1:11\n");
    /* ';' separates optionally; empty blocks and files */
    expect_tree("model m { ; ; }", "file  @1:1\n  model m  @1:7\n");
    expect_tree("", "file  @1:1\n");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_syntax_error("model m {\n  y = relu(x)\n",
                        "t.qm:2:14: error: expected '}' at end of file\n"
                        "  y = relu(x)\n"
                        "             ^\n"
                        "t.qm:1:9: note: to match this '{'\n"
                        "model m {\n"
                        "        ^\n");
    expect_syntax_error("model m {\n  y relu(x)\n}\n",
                        "t.qm:2:5: error: expected '=', found identifier 'relu'\n"
                        "  y relu(x)\n"
                        "    ^~~~\n");
    expect_syntax_error(
        "model m {\n  for i in 0..L{\n    y = x\n  }\n}\n",
        "t.qm:3:7: error: expected '+', '-', '*', '/', '@' or '}', found '='\n"
        "    y = x\n"
        "      ^\n"
        "t.qm:2:16: note: '{' directly after a name starts an interpolation such as "
        "fc{i}.weight; put a space before it to open a block\n"
        "  for i in 0..L{\n"
        "               ^\n");
    expect_syntax_error("model m { y = f(x,) }",
                        "t.qm:1:19: error: expected an expression, found ')'\n"
                        "model m { y = f(x,) }\n"
                        "                  ^\n");
    expect_syntax_error("model m { input in: f32[4] }",
                        "t.qm:1:17: error: expected identifier, found 'in'\n"
                        "model m { input in: f32[4] }\n"
                        "                ^~\n");
    expect_syntax_error("const = 3", "t.qm:1:7: error: expected identifier, found '='\n"
                                     "const = 3\n"
                                     "      ^\n");
    /* a lexical error is reported once, without a parser error after it */
    expect_syntax_error("model m { y = x $ 2 }", "t.qm:1:17: error: unexpected character '$'\n"
                                                 "model m { y = x $ 2 }\n"
                                                 "                ^\n");
}

static void test_nesting_limits(void **state)
{
    (void)state;
    /* levels count from the file (file, model, statement, the chain of
     * additions, the leaves' path, segment and name), so 900 additions are
     * fine and 1100 are not */
    for (int terms = 900; terms <= 1100; terms += 200) {
        size_t size = 64 + (size_t)terms * 4;
        char *src = malloc(size);
        size_t n = (size_t)snprintf(src, size, "model m { y = x");
        for (int i = 0; i < terms; i++) n += (size_t)snprintf(src + n, size - n, " + x");
        snprintf(src + n, size - n, " }");
        capture c;
        capture_begin(&c);
        fe_node *root = fe_parse_text(&arena, "t.qm", src, strlen(src));
        char *diag = capture_end(&c);
        if (terms == 900) {
            assert_non_null(root);
            assert_string_equal(diag, "");
        } else {
            assert_null(root);
            assert_non_null(
                strstr(diag, "error: the expression nests more than 1000 levels deep\n"));
        }
        free(diag);
        free(src);
    }
    /* 20000 open parentheses overflow the parser's stack: an error, not a crash */
    size_t depth = 20000;
    char *src = malloc(depth + 32);
    size_t n = (size_t)sprintf(src, "model m { y = ");
    memset(src + n, '(', depth);
    strcpy(src + n + depth, "x }");
    capture c;
    capture_begin(&c);
    assert_null(fe_parse_text(&arena, "t.qm", src, strlen(src)));
    char *diag = capture_end(&c);
    assert_non_null(strstr(diag, "error: the source nests too deeply"));
    free(diag);
    free(src);
}

static void test_path_text(void **state)
{
    (void)state;
    capture c;
    capture_begin(&c);
    const char *src = "model m { y = blocks.{i}.fc{j}.weight }";
    fe_node *root = fe_parse_text(&arena, "t.qm", src, strlen(src));
    assert_captured(&c, "");
    const fe_node *assign = root->body.items[0]->body.items[0];
    assert_int_equal(assign->kind, FE_ASSIGN);
    assert_int_equal(assign->lhs->kind, FE_PATH);
    assert_int_equal(assign->lhs->list.count, 4);
    assert_string_equal(fe_path_text(&arena, assign->lhs), "blocks.{i}.fc{j}.weight");
    /* the path's location spans all of it */
    assert_int_equal(assign->lhs->loc.col, 15);
    assert_int_equal(assign->lhs->loc.len, 23);
}

static int teardown(void **state)
{
    (void)state;
    sup_arena_free(&arena);
    sup_diag_reset();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),         cmocka_unit_test(test_items_and_expressions),
        cmocka_unit_test(test_syntax_errors), cmocka_unit_test(test_nesting_limits),
        cmocka_unit_test(test_path_text),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
