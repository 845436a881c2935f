/* unit.h: helpers shared by the cmocka unit tests (tests/<folder>/test_*.c).
 *
 * Diagnostics are captured into a string (sup_diag_set_stream on an
 * open_memstream) so tests can assert the exact messages. */
#ifndef QMC_TESTS_UNIT_H
#define QMC_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support.h"

/* Collects everything diagnostics print between begin and end. */
typedef struct capture {
    char *buf;
    size_t len;
    FILE *f;
} capture;

static inline void capture_begin(capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
    sup_diag_reset();
    sup_diag_set_stream(c->f);
}

/* The captured text (free it); diagnostics go back to stderr. */
static inline char *capture_end(capture *c)
{
    sup_diag_set_stream(NULL);
    fclose(c->f);
    return c->buf;
}

/* Asserts what was captured and frees it. */
#define assert_captured(c, expected)                                                               \
    do {                                                                                           \
        char *got_ = capture_end(c);                                                               \
        assert_string_equal(got_, (expected));                                                     \
        free(got_);                                                                                \
    } while (0)

#endif
