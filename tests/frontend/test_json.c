/* test_json.c: the strict JSON reader (fe_json_parse): values, escapes and
 * surrogates, rejection with the byte offset of the problem, duplicate
 * keys, the depth limit and integers beyond 64 bits. */
#include "frontend.h"
#include "unit.h"

static sup_arena arena;

static fe_json *parse(const char *text)
{
    char err[128];
    size_t off = 12345;
    fe_json *v = fe_json_parse(&arena, text, strlen(text), err, sizeof err, &off);
    assert_non_null(v);
    assert_int_equal(off, 12345); /* untouched on success */
    return v;
}

static void expect_fail(const char *text, size_t len, const char *reason, size_t offset)
{
    char err[128] = "";
    size_t off = 0;
    assert_null(fe_json_parse(&arena, text, len, err, sizeof err, &off));
    assert_string_equal(err, reason);
    assert_int_equal(off, offset);
}
#define FAIL(text, reason, offset) expect_fail(text, strlen(text), reason, offset)

static void test_values(void **state)
{
    (void)state;
    fe_json *v = parse(" {\"a\": [1, -2.5, 3e2, true, false, null, \"s\"], \"b\": {}, \"c\": []} ");
    assert_int_equal(v->kind, FE_JSON_OBJECT);
    assert_int_equal(v->count, 3);
    assert_string_equal(v->keys[0], "a");
    assert_string_equal(v->keys[1], "b");
    assert_string_equal(v->keys[2], "c");
    const fe_json *a = fe_json_get(v, "a");
    assert_int_equal(a->kind, FE_JSON_ARRAY);
    assert_int_equal(a->count, 7);
    assert_int_equal(a->offset, 7);
    assert_true(a->items[0]->is_integer);
    assert_int_equal(a->items[0]->integer, 1);
    assert_false(a->items[1]->is_integer);
    assert_true(a->items[1]->number == -2.5);
    assert_false(a->items[2]->is_integer); /* an exponent makes it a float */
    assert_true(a->items[2]->number == 300.0);
    assert_int_equal(a->items[3]->kind, FE_JSON_BOOL);
    assert_true(a->items[3]->boolean);
    assert_false(a->items[4]->boolean);
    assert_int_equal(a->items[5]->kind, FE_JSON_NULL);
    assert_string_equal(a->items[6]->string, "s");
    assert_int_equal(fe_json_get(v, "b")->count, 0);
    assert_null(fe_json_get(v, "missing"));
    assert_null(fe_json_get(a, "a")); /* not an object */
    assert_int_equal(parse("-0")->integer, 0);
    assert_int_equal(parse("0")->kind, FE_JSON_NUMBER);
}

static void test_integers(void **state)
{
    (void)state;
    fe_json *v = parse("[9223372036854775807, -9223372036854775807, 9223372036854775808, "
                       "18446744073709551616, "
                       "123456789012345678901234567890123456789012345678901234567890123456]");
    assert_true(v->items[0]->is_integer);
    assert_int_equal(v->items[0]->integer, INT64_MAX);
    assert_true(v->items[1]->is_integer);
    assert_int_equal(v->items[1]->integer, -INT64_MAX);
    /* beyond int64: still numbers, but not integers a reader may use */
    assert_false(v->items[2]->is_integer);
    assert_true(v->items[2]->number == 9223372036854775808.0);
    assert_false(v->items[3]->is_integer);
    assert_int_equal(v->items[4]->kind, FE_JSON_NUMBER);
    assert_false(v->items[4]->is_integer);
}

static void test_strings(void **state)
{
    (void)state;
    fe_json *v =
        parse("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u0041\\u00e9\\u20ac\", \"\\ud83d\\ude00\", "
              "\"\\u0000x\", \"caf\xc3\xa9\"]");
    assert_string_equal(v->items[0]->string, "a\"b\\c/d\b\f\n\r\t");
    assert_string_equal(v->items[1]->string, "A\xc3\xa9\xe2\x82\xac");
    assert_string_equal(v->items[2]->string,
                        "\xf0\x9f\x98\x80");      /* U+1F600 from a surrogate pair */
    assert_int_equal(v->items[3]->string_len, 2); /* an escaped NUL is kept */
    assert_memory_equal(v->items[3]->string, "\0x", 2);
    assert_string_equal(v->items[4]->string, "caf\xc3\xa9"); /* raw UTF-8 passes through */
}

static void test_rejections(void **state)
{
    (void)state;
    FAIL("", "unexpected end of JSON", 0);
    FAIL("   ", "unexpected end of JSON", 3);
    FAIL("{\"a\": 1,}", "expected a string key", 8);
    FAIL("{\"a\" 1}", "expected ':'", 5);
    FAIL("{\"a\": 1 \"b\": 2}", "expected ',' or '}' in object", 8);
    FAIL("[1 2]", "expected ',' or ']' in array", 3);
    FAIL("[1,]", "unexpected character", 3);
    FAIL("{\"a\": 1, \"a\": 2}", "duplicate key in object", 9);
    FAIL("{} x", "trailing characters after JSON value", 3);
    FAIL("\"abc", "unterminated string", 1);
    FAIL("\"ab\\", "unterminated string", 1);
    FAIL("\"a\nb\"", "control character in string", 2);
    FAIL("\"\\x\"", "bad escape in string", 2);
    FAIL("\"\\u12g4\"", "bad \\u escape", 3);
    FAIL("\"\\u12\"", "bad \\u escape", 3);
    FAIL("\"\\ud800\"", "unpaired surrogate in \\u escape", 7);
    FAIL("\"\\ud800\\u0041\"", "unpaired surrogate in \\u escape", 13);
    FAIL("\"\\udc00\"", "unpaired surrogate in \\u escape", 7);
    FAIL("01", "trailing characters after JSON value", 1);
    FAIL("-", "bad number", 1);
    FAIL("1.", "bad number", 2);
    FAIL("1e+", "bad number", 3);
    FAIL(".5", "unexpected character", 0);
    FAIL("tru", "unexpected character", 0);
    FAIL("nul", "unexpected character", 0);
    FAIL("+1", "unexpected character", 0);
    /* the length bounds the text: a valid prefix of a longer buffer */
    expect_fail("[1, 2]", 4, "unexpected end of JSON", 4);
    expect_fail("\"ab\"", 3, "unterminated string", 1);
    /* a NUL byte is not whitespace */
    expect_fail("[1]\0", 4, "trailing characters after JSON value", 3);
}

static void test_depth_limit(void **state)
{
    (void)state;
    char text[256];
    /* values nest at depths 0..64: 65 nested arrays parse, 66 do not */
    for (int depth = 65; depth <= 66; depth++) {
        int n = 0;
        for (int i = 0; i < depth; i++) text[n++] = '[';
        for (int i = 0; i < depth; i++) text[n++] = ']';
        char err[64] = "";
        size_t off = 0;
        fe_json *v = fe_json_parse(&arena, text, (size_t)n, err, sizeof err, &off);
        if (depth == 65) {
            assert_non_null(v);
        } else {
            assert_null(v);
            assert_string_equal(err, "nesting too deep");
            assert_int_equal(off, 65);
        }
    }
    /* a huge depth stops at the limit, costing no more stack */
    char *deep = malloc(200001);
    memset(deep, '[', 200000);
    deep[200000] = 0;
    expect_fail(deep, 200000, "nesting too deep", 65);
    free(deep);
}

static void test_error_buffer(void **state)
{
    (void)state;
    /* a small error buffer truncates; a NULL one is allowed */
    char err[8];
    size_t off = 0;
    assert_null(fe_json_parse(&arena, "[", 1, err, sizeof err, &off));
    assert_string_equal(err, "unexpec");
    assert_null(fe_json_parse(&arena, "[", 1, NULL, 0, NULL));
}

static int teardown(void **state)
{
    (void)state;
    sup_arena_free(&arena);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),      cmocka_unit_test(test_integers),
        cmocka_unit_test(test_strings),     cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_depth_limit), cmocka_unit_test(test_error_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
