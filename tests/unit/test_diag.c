/* test_diag.c: the diagnostic format (location, quoted line, caret and
 * tildes, tabs, CRLF, messages without a line) and "did you mean". */
#include "unit.h"

static void test_format(void **state)
{
    (void)state;
    static const char src[] = "model m {\n\ty = relu(x)\r\n  z\n";
    capture c;
    capture_begin(&c);
    sup_diag_add_source("d.qm", src, sizeof src - 1);
    sup_error((sup_loc){"d.qm", 2, 6, 4}, "bad %s", "call");
    /* the tab is kept so the caret lines up; the CR is not printed */
    assert_captured(&c, "d.qm:2:6: error: bad call\n\ty = relu(x)\n\t    ^~~~\n");
    assert_int_equal(sup_error_count(), 1);

    capture_begin(&c);
    sup_diag_add_source("d.qm", src, sizeof src - 1);
    sup_note((sup_loc){"d.qm", 3, 3, 20}, "here");
    sup_warning((sup_loc){"d.qm", 1, 1, 1}, "careful");
    sup_error((sup_loc){"d.qm", 9, 1, 1}, "past the end");
    sup_error((sup_loc){"d.qm", 0, 0, 0}, "whole file");
    sup_error_plain("no place %d", 7);
    sup_error((sup_loc){"other.qm", 1, 1, 1}, "unregistered");
    /* tildes stop at the end of the line; lines that do not exist are not quoted */
    assert_captured(&c, "d.qm:3:3: note: here\n  z\n  ^\n"
                        "d.qm:1:1: warning: careful\nmodel m {\n^\n"
                        "d.qm:9:1: error: past the end\n"
                        "d.qm: error: whole file\n"
                        "qmc: error: no place 7\n"
                        "other.qm:1:1: error: unregistered\n");
    assert_int_equal(sup_error_count(), 4); /* since capture_begin; notes and warnings do not count */
}

static void test_edit_distance(void **state)
{
    (void)state;
    assert_int_equal(rt_edit_distance("", ""), 0);
    assert_int_equal(rt_edit_distance("abc", ""), 3);
    assert_int_equal(rt_edit_distance("", "abc"), 3);
    assert_int_equal(rt_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(rt_edit_distance("relu", "rleu"), 1);   /* a swap is one edit */
    assert_int_equal(rt_edit_distance("weight", "wieght"), 1);
    assert_int_equal(rt_edit_distance("ab", "ba"), 1);
    assert_int_equal(rt_edit_distance("abc", "ca"), 3);      /* optimal string alignment, not full Damerau */
    assert_int_equal(rt_edit_distance("hidden", "hiden"), 1);
    char long_a[300], long_b[300];
    memset(long_a, 'a', 299), long_a[299] = 0;
    memset(long_b, 'a', 10), long_b[10] = 0;
    assert_int_equal(rt_edit_distance(long_a, long_b), 299); /* too long to compare: the longer length */
}

static void test_closest(void **state)
{
    (void)state;
    const char *const names[] = {"relu", "gelu", "layernorm", "linear", "fc1.weight", "fc1.bias", "x"};
    int n = sizeof names / sizeof names[0];
    assert_string_equal(rt_closest("rleu", names, n), "relu");
    assert_string_equal(rt_closest("layrnorm", names, n), "layernorm");
    assert_string_equal(rt_closest("fc1.wieght", names, n), "fc1.weight");
    assert_string_equal(rt_closest("liner", names, n), "linear");
    assert_null(rt_closest("softmax", names, n));
    assert_null(rt_closest("z", names, n));      /* one letter is no typo of another */
    assert_null(rt_closest("relu", names, 1));   /* the name itself is no suggestion */
    assert_string_equal(rt_closest("relu", names, n), "gelu");
    assert_null(rt_closest("abc", names, 0));
    /* a third of the length may differ */
    const char *const long_names[] = {"attention"};
    assert_string_equal(rt_closest("atention", long_names, 1), "attention");
    assert_string_equal(rt_closest("atentoin", long_names, 1), "attention");
    assert_null(rt_closest("atnton", long_names, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_closest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
