/* test_rt_threads.c: the worker pool. Every index is covered exactly once
 * with the deterministic split, for many sizes and thread counts; chunks
 * go to whichever thread is free; nested
 * calls run serially in the caller; resizing, thousands of dispatches,
 * sleeping workers and a sleeping caller, concurrent callers, fork. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rt.h"

#define MAX_N 20000
#define MAX_CHUNKS (RT_MAX_THREADS * RT_CHUNKS_PER_THREAD)

/* What one dispatch saw: every chunk, and how often each index came up. */
typedef struct record {
    atomic_int hits[MAX_N];
    int out[MAX_N]; /* plain writes, read after qmc_parallel_for returns */
    atomic_int n_chunks;
    int64_t begins[MAX_CHUNKS], ends[MAX_CHUNKS];
} record;

static void record_chunk(void *ctx, int64_t begin, int64_t end)
{
    record *r = ctx;
    int k = atomic_fetch_add(&r->n_chunks, 1);
    if (k < MAX_CHUNKS) r->begins[k] = begin, r->ends[k] = end;
    for (int64_t i = begin; i < end; i++) {
        atomic_fetch_add(&r->hits[i], 1);
        r->out[i] = (int)i * 3 + 1;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Dispatches [0, n) and checks the coverage and the split. */
static void check_dispatch(record *r, int64_t n)
{
    memset(r, 0, sizeof *r);
    qmc_parallel_for(record_chunk, r, n);
    int64_t k = rt_chunk_count(n, qmc_get_num_threads());
    assert_int_equal(atomic_load(&r->n_chunks), n > 0 ? k : 0);
    for (int64_t i = 0; i < n; i++) {
        assert_int_equal(atomic_load(&r->hits[i]), 1);
        assert_int_equal(r->out[i], (int)i * 3 + 1);
    }
    qsort(r->begins, (size_t)k, sizeof r->begins[0], cmp_i64);
    qsort(r->ends, (size_t)k, sizeof r->ends[0], cmp_i64);
    for (int64_t i = 0; i < k && n > 0; i++) {
        assert_int_equal(r->begins[i], rt_chunk_begin(n, k, i));
        assert_int_equal(r->ends[i], rt_chunk_begin(n, k, i + 1));
    }
}

static void test_coverage(void **state)
{
    (void)state;
    static record r;
    static const int threads[] = {1, 2, 3, 4, 7, 8};
    static const int64_t sizes[] = {0, 1, 2, 3, 5, 7, 8, 9, 16, 100, 1000, 12345, MAX_N};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        assert_int_equal(qmc_set_num_threads(threads[t]), QMC_OK);
        assert_int_equal(qmc_get_num_threads(), threads[t]);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) check_dispatch(&r, sizes[s]);
    }
    assert_int_equal(qmc_set_num_threads(1), QMC_OK);
}

static void test_split_is_balanced(void **state)
{
    (void)state;
    /* 10 over 4: 3, 3, 2, 2 */
    static const int64_t want[] = {0, 3, 6, 8, 10};
    for (int i = 0; i <= 4; i++) assert_int_equal(rt_chunk_begin(10, 4, i), want[i]);
    for (int64_t n = 1; n < 200; n++)
        for (int64_t k = 1; k <= 9 && k <= n; k++)
            for (int64_t i = 0; i < k; i++) {
                int64_t len = rt_chunk_begin(n, k, i + 1) - rt_chunk_begin(n, k, i);
                assert_true(len == n / k || len == n / k + 1);
            }
}

static void test_chunk_count(void **state)
{
    (void)state;
    assert_int_equal(rt_chunk_count(0, 2), 0);
    assert_int_equal(rt_chunk_count(1000, 1), 1);
    assert_int_equal(rt_chunk_count(1, 2), 1);
    assert_int_equal(rt_chunk_count(2, 2), 2);
    assert_int_equal(rt_chunk_count(5, 2), 5);
    assert_int_equal(rt_chunk_count(8, 2), 8);
    assert_int_equal(rt_chunk_count(9, 2), 2 * RT_CHUNKS_PER_THREAD);
    assert_int_equal(rt_chunk_count(100000, 3), 3 * RT_CHUNKS_PER_THREAD);
    assert_int_equal(rt_chunk_count(1 << 30, RT_MAX_THREADS),
                     RT_MAX_THREADS * RT_CHUNKS_PER_THREAD);
    /* the chunk index and count fit pool.claim's 16-bit fields */
    assert_true(RT_MAX_THREADS * RT_CHUNKS_PER_THREAD < 1 << 16);
}

/* Chunks go to whoever is free: a worker stuck in its first chunk leaves
 * the rest to the caller (with one fixed chunk per thread the caller
 * would run half of them and then wait). */
typedef struct who_ran {
    pthread_t caller;
    atomic_int by_caller, by_worker;
} who_ran;

static void slow_on_workers(void *ctx, int64_t begin, int64_t end)
{
    who_ran *w = ctx;
    (void)begin, (void)end;
    if (pthread_equal(pthread_self(), w->caller)) {
        atomic_fetch_add(&w->by_caller, 1);
    } else {
        atomic_fetch_add(&w->by_worker, 1);
        usleep(100 * 1000);
    }
}

static void test_free_threads_take_chunks(void **state)
{
    (void)state;
    assert_int_equal(qmc_set_num_threads(2), QMC_OK);
    who_ran w = {.caller = pthread_self()};
    int64_t k = rt_chunk_count(1000, 2);
    qmc_parallel_for(slow_on_workers, &w, 1000);
    assert_int_equal(atomic_load(&w.by_caller) + atomic_load(&w.by_worker), k);
    /* the worker sleeps 100 ms in each chunk it takes; the caller's chunks
     * take microseconds */
    assert_true(atomic_load(&w.by_caller) >= k - 2);
    assert_int_equal(qmc_set_num_threads(1), QMC_OK);
}

static void never_called(void *ctx, int64_t begin, int64_t end)
{
    (void)ctx, (void)begin, (void)end;
    fail_msg("fn called for an empty range");
}

static void test_empty_and_negative(void **state)
{
    (void)state;
    for (int t = 1; t <= 3; t++) {
        assert_int_equal(qmc_set_num_threads(t), QMC_OK);
        qmc_parallel_for(never_called, NULL, 0);
        qmc_parallel_for(never_called, NULL, -5);
    }
    assert_int_equal(qmc_set_num_threads(1), QMC_OK);
}

/* Nested: each outer chunk calls the pool again; the inner call must run
 * serially, on the same thread, as one chunk. */
typedef struct nested {
    atomic_int hits[64 * 64];
    atomic_int inner_chunks, inner_bad;
} nested;

typedef struct inner_ctx {
    nested *n;
    int64_t row;
    pthread_t thread;
} inner_ctx;

static void inner(void *ctx, int64_t begin, int64_t end)
{
    inner_ctx *c = ctx;
    atomic_fetch_add(&c->n->inner_chunks, 1);
    if (!pthread_equal(c->thread, pthread_self()) || begin != 0 || end != 64)
        atomic_fetch_add(&c->n->inner_bad, 1);
    for (int64_t j = begin; j < end; j++) atomic_fetch_add(&c->n->hits[c->row * 64 + j], 1);
}

static void outer(void *ctx, int64_t begin, int64_t end)
{
    for (int64_t row = begin; row < end; row++) {
        inner_ctx c = {ctx, row, pthread_self()};
        qmc_parallel_for(inner, &c, 64);
    }
    /* resizing from inside a chunk would deadlock: refused */
    if (qmc_set_num_threads(3) != QMC_ERR_INVALID_ARGUMENT)
        atomic_fetch_add(&((nested *)ctx)->inner_bad, 1);
}

static void test_nested(void **state)
{
    (void)state;
    static nested n;
    for (int t = 1; t <= 4; t++) {
        memset(&n, 0, sizeof n);
        assert_int_equal(qmc_set_num_threads(t), QMC_OK);
        qmc_parallel_for(outer, &n, 64);
        assert_int_equal(atomic_load(&n.inner_chunks), 64);
        assert_int_equal(atomic_load(&n.inner_bad), 0);
        for (int i = 0; i < 64 * 64; i++) assert_int_equal(atomic_load(&n.hits[i]), 1);
        assert_int_equal(qmc_get_num_threads(), t);
    }
    assert_int_equal(qmc_set_num_threads(1), QMC_OK);
}

static void test_resize(void **state)
{
    (void)state;
    static record r;
    static const int sizes[] = {1, 4, 2, 8, 3, 3, 1, 2, 16, 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        assert_int_equal(qmc_set_num_threads(sizes[i]), QMC_OK);
        assert_int_equal(qmc_get_num_threads(), sizes[i]);
        check_dispatch(&r, 1000);
        check_dispatch(&r, 3);
    }
    assert_int_equal(qmc_set_num_threads(0), QMC_ERR_INVALID_ARGUMENT);
    assert_int_equal(qmc_set_num_threads(-2), QMC_ERR_INVALID_ARGUMENT);
    assert_int_equal(qmc_set_num_threads(RT_MAX_THREADS + 1), QMC_ERR_INVALID_ARGUMENT);
    assert_int_equal(qmc_get_num_threads(), 1);
}

/* Many small dispatches: a sum over [0, n) that must be exact every time. */
static void add_range(void *ctx, int64_t begin, int64_t end)
{
    int64_t s = 0;
    for (int64_t i = begin; i < end; i++) s += i;
    atomic_fetch_add((_Atomic int64_t *)ctx, s);
}

static void test_many_dispatches(void **state)
{
    (void)state;
    for (int t = 2; t <= 4; t += 2) {
        assert_int_equal(qmc_set_num_threads(t), QMC_OK);
        for (int k = 0; k < 20000; k++) {
            _Atomic int64_t sum = 0;
            int64_t n = 1 + k % 37;
            qmc_parallel_for(add_range, &sum, n);
            assert_int_equal(atomic_load(&sum), n * (n - 1) / 2);
        }
    }
    assert_int_equal(qmc_set_num_threads(1), QMC_OK);
}

/* Workers asleep (gaps longer than their spin), and a caller that sleeps
 * while a worker's chunk is slow: the caller's first chunk waits until a
 * worker has taken one, which then takes longer than the caller spins. */
typedef struct slow_job {
    _Atomic int64_t sum;
    pthread_t caller;
    atomic_bool worker_started;
} slow_job;

static void slow_on_worker(void *ctx, int64_t begin, int64_t end)
{
    slow_job *j = ctx;
    if (!pthread_equal(pthread_self(), j->caller)) {
        atomic_store(&j->worker_started, true);
        usleep(RT_SPIN_NS / 1000 + 2000);
    } else {
        while (!atomic_load(&j->worker_started)) usleep(50);
    }
    add_range(&j->sum, begin, end);
}

static void test_sleep_and_wake(void **state)
{
    (void)state;
    assert_int_equal(qmc_set_num_threads(3), QMC_OK);
    for (int k = 0; k < 20; k++) {
        usleep(RT_SPIN_NS / 1000 + 1000);
        slow_job j = {.caller = pthread_self()};
        if (k % 2)
            qmc_parallel_for(slow_on_worker, &j, 100);
        else
            qmc_parallel_for(add_range, &j.sum, 100);
        assert_int_equal(atomic_load(&j.sum), 4950);
    }
    assert_int_equal(qmc_set_num_threads(1), QMC_OK);
}

/* The spin before sleeping is the caller's to choose: idle workers stay
 * awake that long after a dispatch (by the clock, however busy the
 * machine), and go to sleep at once with 0. */
static void dispatch(void)
{
    _Atomic int64_t sum = 0;
    qmc_parallel_for(add_range, &sum, 1000);
    assert_int_equal(atomic_load(&sum), 499500);
}

/* Waits up to 5 s for n sleeping workers. */
static bool sleepers_reach(int n)
{
    for (int i = 0; i < 5000 && rt_pool_sleepers() != n; i++) usleep(1000);
    return rt_pool_sleepers() == n;
}

static void test_spin_time(void **state)
{
    (void)state;
    assert_int_equal(qmc_get_thread_spin_us(), RT_SPIN_NS / 1000);
    assert_int_equal(qmc_set_thread_spin_us(-1), QMC_ERR_INVALID_ARGUMENT);
    assert_int_equal(qmc_set_thread_spin_us(RT_MAX_SPIN_US + 1), QMC_ERR_INVALID_ARGUMENT);
    assert_int_equal(qmc_get_thread_spin_us(), RT_SPIN_NS / 1000);
    assert_int_equal(qmc_set_num_threads(3), QMC_OK);
    assert_true(sleepers_reach(2)); /* idle since they started */
    assert_int_equal(qmc_set_thread_spin_us(RT_MAX_SPIN_US), QMC_OK);
    dispatch();
    assert_true(sleepers_reach(0)); /* woken (on a busy machine, maybe late) */
    usleep(20 * 1000);
    assert_int_equal(rt_pool_sleepers(), 0); /* still spinning: at most 20 ms into 1 s */
    assert_int_equal(qmc_set_thread_spin_us(0), QMC_OK);
    dispatch(); /* the workers' next wait takes the new spin */
    assert_true(sleepers_reach(2));
    assert_int_equal(qmc_set_thread_spin_us(RT_SPIN_NS / 1000), QMC_OK);
    assert_int_equal(qmc_set_num_threads(1), QMC_OK);
}

/* Two application threads dispatching at once: one gets the pool, the other
 * runs serially; both get exact results. */
static void *client(void *arg)
{
    int *bad = arg;
    for (int k = 0; k < 3000; k++) {
        _Atomic int64_t sum = 0;
        qmc_parallel_for(add_range, &sum, 1000);
        if (atomic_load(&sum) != 499500) (*bad)++;
    }
    return NULL;
}

static void test_concurrent_callers(void **state)
{
    (void)state;
    assert_int_equal(qmc_set_num_threads(2), QMC_OK);
    pthread_t a, b;
    int bad_a = 0, bad_b = 0;
    assert_int_equal(pthread_create(&a, NULL, client, &bad_a), 0);
    assert_int_equal(pthread_create(&b, NULL, client, &bad_b), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_int_equal(bad_a + bad_b, 0);
    assert_int_equal(qmc_set_num_threads(1), QMC_OK);
}

/* A child forked with a pool running has one thread and still works. */
static void test_fork(void **state)
{
    (void)state;
    assert_int_equal(qmc_set_num_threads(3), QMC_OK);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _Atomic int64_t sum = 0;
        qmc_parallel_for(add_range, &sum, 100);
        bool ok = atomic_load(&sum) == 4950 && qmc_get_num_threads() == 1 &&
                  qmc_set_num_threads(2) == QMC_OK;
        sum = 0;
        qmc_parallel_for(add_range, &sum, 100);
        _exit(ok && atomic_load(&sum) == 4950 ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(qmc_get_num_threads(), 3);
    assert_int_equal(qmc_set_num_threads(1), QMC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coverage),
        cmocka_unit_test(test_split_is_balanced),
        cmocka_unit_test(test_chunk_count),
        cmocka_unit_test(test_free_threads_take_chunks),
        cmocka_unit_test(test_spin_time),
        cmocka_unit_test(test_empty_and_negative),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_many_dispatches),
        cmocka_unit_test(test_sleep_and_wake),
        cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_fork),
    };
    const char *filter = getenv("RT_TEST_FILTER"); /* run some tests only: "test_nested" */
    if (filter) cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
