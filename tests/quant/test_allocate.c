/* test_allocate.c: the allocator of automatic precision selection on
 * synthetic sensitivity tables: the least total error within a byte
 * budget, or the fewest bytes within an error, checked against exhaustive
 * search on hundreds of random small tables; a table shaped like a real
 * model (one sensitive tensor gets int8 when the budget allows); ties go to
 * fewer bytes; budgets below the minimum and unreachable errors are
 * reported; large tables never exceed the budget despite rounding. */
#include "unit.h"

#include <math.h>

#include "quant.h"

static uint64_t lcg_state;
static uint32_t next_u32(void)
{
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(lcg_state >> 33);
}

enum { MAX_T = 6, MAX_C = 5 };

typedef struct table {
    size_t bytes[MAX_T][MAX_C];
    double error[MAX_T][MAX_C];
    q_alloc_item items[MAX_T];
    int n;
} table;

static void random_table(table *t)
{
    t->n = 2 + (int)(next_u32() % (MAX_T - 1));
    for (int i = 0; i < t->n; i++) {
        int nc = 1 + (int)(next_u32() % MAX_C);
        for (int c = 0; c < nc; c++) {
            t->bytes[i][c] = 20 + next_u32() % 600;
            t->error[i][c] = (double)(next_u32() % 10000) / 1000.0;
        }
        t->items[i] = (q_alloc_item){t->bytes[i], t->error[i], nc};
    }
}

/* Exhaustive search: the best (error, bytes) under the rule. */
static void brute(const table *t, size_t budget, double max_error, double *best_err,
                  size_t *best_bytes)
{
    int idx[MAX_T] = {0};
    *best_err = INFINITY;
    *best_bytes = SIZE_MAX;
    for (;;) {
        size_t b = 0;
        double e = 0;
        for (int i = 0; i < t->n; i++) b += t->bytes[i][idx[i]], e += t->error[i][idx[i]];
        if (budget ? b <= budget && (e < *best_err || (e == *best_err && b < *best_bytes))
                   : e <= max_error && (b < *best_bytes || (b == *best_bytes && e < *best_err)))
            *best_err = e, *best_bytes = b;
        int i = 0;
        while (i < t->n && ++idx[i] == t->items[i].n) idx[i++] = 0;
        if (i == t->n) break;
    }
}

static void totals(const table *t, const int *choice, double *e, size_t *b)
{
    *e = 0, *b = 0;
    for (int i = 0; i < t->n; i++) *e += t->error[i][choice[i]], *b += t->bytes[i][choice[i]];
}

static void test_budget_matches_exhaustive(void **state)
{
    (void)state;
    lcg_state = 1;
    for (int round = 0; round < 400; round++) {
        table t;
        random_table(&t);
        size_t lo = 0, hi = 0;
        for (int i = 0; i < t.n; i++) {
            size_t mn = SIZE_MAX, mx = 0;
            for (int c = 0; c < t.items[i].n; c++)
                mn = t.bytes[i][c] < mn ? t.bytes[i][c] : mn,
                mx = t.bytes[i][c] > mx ? t.bytes[i][c] : mx;
            lo += mn, hi += mx;
        }
        size_t budget = lo + next_u32() % (hi - lo + 1);
        int choice[MAX_T];
        assert_true(q_allocate(t.items, t.n, budget, 0, choice));
        double e, be;
        size_t b, bb;
        totals(&t, choice, &e, &b);
        brute(&t, budget, 0, &be, &bb);
        assert_true(b <= budget);
        assert_true(fabs(e - be) < 1e-9); /* budgets under 4096 bytes: one byte per unit, exact */
    }
}

static void test_max_error_matches_exhaustive(void **state)
{
    (void)state;
    lcg_state = 2;
    for (int round = 0; round < 400; round++) {
        table t;
        random_table(&t);
        double min_err = 0, max_err = 0;
        for (int i = 0; i < t.n; i++) {
            double mn = INFINITY, mx = 0;
            for (int c = 0; c < t.items[i].n; c++)
                mn = fmin(mn, t.error[i][c]), mx = fmax(mx, t.error[i][c]);
            min_err += mn, max_err += mx;
        }
        double target = min_err + (max_err - min_err) * (double)(next_u32() % 1000) / 1000.0;
        int choice[MAX_T];
        assert_true(q_allocate(t.items, t.n, 0, target, choice));
        double e, be;
        size_t b, bb;
        totals(&t, choice, &e, &b);
        brute(&t, 0, target, &be, &bb);
        assert_true(e <= target);
        assert_true(b == bb); /* under 4096 bytes in all: exact */
    }
}

/* A model-like table: int4:g128, int4:g32, int8, f32 per tensor (bytes of a
 * 128x128 matrix) and one tensor 20x more sensitive than the rest. */
static void test_sensitive_tensor_gets_int8(void **state)
{
    (void)state;
    size_t bytes[4] = {8448, 9216, 16896, 65536};
    double err[5][4] = {{4e-4, 3e-4, 2e-6, 0},
                        {5e-4, 4e-4, 3e-6, 0},
                        {1e-2, 8e-3, 2e-5, 0},
                        {3e-4, 2e-4, 1e-6, 0},
                        {6e-4, 5e-4, 4e-6, 0}};
    q_alloc_item items[5];
    for (int i = 0; i < 5; i++) items[i] = (q_alloc_item){bytes, err[i], 4};
    int choice[5];
    /* everything at g32 costs 46080 bytes; one int8 instead costs 7680 more */
    assert_true(q_allocate(items, 5, 46080 + 7680, 0, choice));
    assert_int_equal(choice[2], 2);
    for (int i = 0; i < 5; i++)
        if (i != 2) assert_true(choice[i] <= 1);
    /* the smallest budget: all at the smallest format */
    assert_true(q_allocate(items, 5, 5 * 8448, 0, choice));
    for (int i = 0; i < 5; i++) assert_int_equal(choice[i], 0);
    /* an error target that the sensitive tensor alone exceeds at int4 */
    assert_true(q_allocate(items, 5, 0, 5e-3, choice));
    assert_int_equal(choice[2], 2);
    for (int i = 0; i < 5; i++)
        if (i != 2) assert_int_equal(choice[i], 0); /* the rest fits at the smallest size */
}

static void test_ties_prefer_fewer_bytes(void **state)
{
    (void)state;
    size_t bytes[3] = {300, 100, 200};
    double err[3] = {0, 0, 0};
    q_alloc_item items[3] = {{bytes, err, 3}, {bytes, err, 3}, {bytes, err, 3}};
    int choice[3];
    assert_true(q_allocate(items, 3, 900, 0, choice));
    for (int i = 0; i < 3; i++) assert_int_equal(choice[i], 1);
    assert_true(q_allocate(items, 3, 0, 0, choice));
    for (int i = 0; i < 3; i++) assert_int_equal(choice[i], 1);
}

static void test_infeasible(void **state)
{
    (void)state;
    size_t bytes[2] = {100, 400};
    double err[2] = {1.0, 0.5};
    q_alloc_item items[2] = {{bytes, err, 2}, {bytes, err, 2}};
    int choice[2];
    assert_false(q_allocate(items, 2, 199, 0, choice));
    /* no error target below 1.0 is reachable: the least error is returned */
    assert_false(q_allocate(items, 2, 0, 0.9, choice));
    assert_int_equal(choice[0], 1);
    assert_int_equal(choice[1], 1);
}

static void test_large_table_respects_budget(void **state)
{
    (void)state;
    enum { N = 1000, C = 6 };
    static size_t bytes[N][C];
    static double err[N][C];
    static q_alloc_item items[N];
    static int choice[N];
    lcg_state = 3;
    size_t lo = 0;
    for (int i = 0; i < N; i++) {
        size_t base = 1000 + next_u32() % 100000;
        for (int c = 0; c < C; c++) {
            bytes[i][c] = base * (size_t)(c + 4) / 4 + next_u32() % 97;
            err[i][c] = (double)(next_u32() % 1000) * pow(0.3, c);
        }
        lo += bytes[i][0] < bytes[i][1] ? bytes[i][0] : bytes[i][1];
        items[i] = (q_alloc_item){bytes[i], err[i], C};
    }
    for (int k = 0; k < 5; k++) {
        size_t budget = lo + lo * (size_t)k / 4;
        assert_true(q_allocate(items, N, budget, 0, choice));
        size_t b = 0;
        for (int i = 0; i < N; i++) b += bytes[i][choice[i]];
        assert_true(b <= budget);
        assert_true(b >= budget - budget / 100); /* the rounding leaves little unspent */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_matches_exhaustive),
        cmocka_unit_test(test_max_error_matches_exhaustive),
        cmocka_unit_test(test_sensitive_tensor_gets_int8),
        cmocka_unit_test(test_ties_prefer_fewer_bytes),
        cmocka_unit_test(test_infeasible),
        cmocka_unit_test(test_large_table_respects_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
