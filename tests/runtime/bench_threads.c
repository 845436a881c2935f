/* bench_threads.c: what one qmc_parallel_for costs, from the caller's view.
 *
 *   bench_rt_threads [ITERATIONS]
 *
 * Prints the mean and median time per call of a dispatch of trivial work
 * (n = threads, one element per thread), for 1 thread (the serial path) and
 * 2 threads: back to back (workers hot), with 20 or 100 us of serial work
 * between calls (as between a model's layers), and after an idle pause
 * longer than the workers spin (RT_SPIN_NS: they sleep, a futex wake). Makes no claim about the
 * numbers: it only fails if a result is wrong. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "rt.h"

static void touch(void *ctx, int64_t begin, int64_t end)
{
    atomic_fetch_add((_Atomic int64_t *)ctx, end - begin);
}

static void spin_ns(uint64_t ns)
{
    uint64_t t0 = qmc_now_ns();
    while (qmc_now_ns() - t0 < ns) {
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Prints the mean and median us per dispatch, with gap_ns of serial work
 * (or sleep_us idle) before each call. */
static void measure(const char *what, int threads, long iters, uint64_t gap_ns, unsigned sleep_us,
                    int *bad)
{
    qmc_set_num_threads(threads);
    uint64_t *t = malloc(sizeof *t * (size_t)iters), total = 0;
    if (!t) exit(2);
    _Atomic int64_t count = 0;
    for (long i = 0; i < iters; i++) {
        if (gap_ns) spin_ns(gap_ns);
        if (sleep_us) usleep(sleep_us);
        uint64_t t0 = qmc_now_ns();
        qmc_parallel_for(touch, &count, threads);
        t[i] = qmc_now_ns() - t0;
        total += t[i];
    }
    if (atomic_load(&count) != (int64_t)iters * threads) (*bad)++;
    qsort(t, (size_t)iters, sizeof *t, cmp_u64);
    printf("  %-28s %8.3f us %8.3f us %8ld\n", what, (double)total / (double)iters / 1e3,
           (double)t[iters / 2] / 1e3, iters);
    free(t);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 100000;
    if (iters < 1) iters = 1;
    int bad = 0;
    long cold = iters / 20 > 0 ? iters / 20 : 1;
    printf("qmc_parallel_for dispatch        mean       median     calls\n");
    measure("1 thread (serial path)", 1, iters, 0, 0, &bad);
    measure("2 threads, back to back", 2, iters, 0, 0, &bad);
    measure("2 threads, 20 us apart", 2, iters, 20000, 0, &bad);
    measure("2 threads, 100 us apart", 2, cold * 4, 100000, 0, &bad);
    measure("2 threads, after 3 ms idle", 2, cold / 10 > 0 ? cold / 10 : 1, 0,
            RT_SPIN_NS / 1000 + 1000, &bad);
    qmc_set_num_threads(1);
    return bad ? 1 : 0;
}
