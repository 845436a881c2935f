/* test_diag.c: the diagnostic format (location, quoted line, caret and
 * tildes, tabs, CRLF, messages without a line). */
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
    assert_int_equal(sup_error_count(),
                     4); /* since capture_begin; notes and warnings do not count */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
