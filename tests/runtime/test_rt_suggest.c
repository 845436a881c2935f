/* test_rt_suggest.c: "did you mean" (suggest.c): the edit distance and
 * which candidate, if any, is close enough to suggest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "rt.h"

static void test_edit_distance(void **state)
{
    (void)state;
    assert_int_equal(rt_edit_distance("", ""), 0);
    assert_int_equal(rt_edit_distance("abc", ""), 3);
    assert_int_equal(rt_edit_distance("", "abc"), 3);
    assert_int_equal(rt_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(rt_edit_distance("relu", "rleu"), 1); /* a swap is one edit */
    assert_int_equal(rt_edit_distance("weight", "wieght"), 1);
    assert_int_equal(rt_edit_distance("ab", "ba"), 1);
    assert_int_equal(rt_edit_distance("abc", "ca"),
                     3); /* optimal string alignment, not full Damerau */
    assert_int_equal(rt_edit_distance("hidden", "hiden"), 1);
    char long_a[300], long_b[300];
    memset(long_a, 'a', 299), long_a[299] = 0;
    memset(long_b, 'a', 10), long_b[10] = 0;
    assert_int_equal(rt_edit_distance(long_a, long_b),
                     299); /* too long to compare: the longer length */
}

static void test_closest(void **state)
{
    (void)state;
    const char *const names[] = {"relu",       "gelu",     "layernorm", "linear",
                                 "fc1.weight", "fc1.bias", "x"};
    int n = sizeof names / sizeof names[0];
    assert_string_equal(rt_closest("rleu", names, n), "relu");
    assert_string_equal(rt_closest("layrnorm", names, n), "layernorm");
    assert_string_equal(rt_closest("fc1.wieght", names, n), "fc1.weight");
    assert_string_equal(rt_closest("liner", names, n), "linear");
    assert_null(rt_closest("softmax", names, n));
    assert_null(rt_closest("z", names, n));    /* one letter is no typo of another */
    assert_null(rt_closest("relu", names, 1)); /* the name itself is no suggestion */
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
        cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_closest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
