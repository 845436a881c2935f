/* test_arena.c: arenas: zeroed, aligned memory; a reset keeps the blocks
 * and hands them out again, zeroed, the smallest that fits first. */
#include "unit.h"

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

static void test_alloc(void **state)
{
    (void)state;
    sup_arena a = {0};
    unsigned char *p = sup_arena_alloc(&a, 3), *q = sup_arena_alloc(&a, 1 << 20);
    assert_int_equal((uintptr_t)p % 16, 0);
    assert_int_equal((uintptr_t)q % 16, 0);
    assert_true(all_zero(q, 1 << 20));
    assert_int_equal(a.total, 16 + (1 << 20));
    sup_arena_free(&a);
    assert_null(a.head);
}

static void test_reset_reuses(void **state)
{
    (void)state;
    sup_arena a = {0};
    unsigned char *big = sup_arena_alloc(&a, 8 << 20), *small = sup_arena_alloc(&a, 1 << 20);
    memset(big, 0xab, 8 << 20);
    memset(small, 0xcd, 1 << 20);
    sup_arena_reset(&a);
    assert_int_equal(a.total, 0);
    /* the smallest kept block that fits: the 1 MiB one for 1 MiB, the 8 MiB
     * one for 2 MiB; both zeroed again */
    unsigned char *p = sup_arena_alloc(&a, 1 << 20), *r = sup_arena_alloc(&a, 2 << 20);
    assert_ptr_equal(p, small);
    assert_ptr_equal(r, big);
    assert_true(all_zero(p, 1 << 20) && all_zero(r, 2 << 20));
    /* nothing kept fits: a new block */
    unsigned char *s = sup_arena_alloc(&a, 16 << 20);
    assert_ptr_not_equal(s, big);
    assert_true(all_zero(s, 16 << 20));
    sup_arena_free(&a);
    assert_null(a.head);
    assert_null(a.spare);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_reset_reuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
