/* bench_threads.c: what one qmc_parallel_for costs, from the caller's view.
 *
 *   bench_rt_threads [ITERATIONS]
 *
 * Prints the mean time per call of a dispatch of trivial work (n = threads,
 * one element per thread), for 1 thread (the serial path) and 2 threads:
 * back to back (workers hot), with 20 us of serial work between calls (as
 * between a model's layers), and after 1 ms idle (workers asleep: a futex
 * wake). Makes no claim about the numbers: it only fails if a result is wrong. */
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

/* Mean ns per dispatch; gap_ns of serial work (or sleep_us idle) between calls. */
static double measure(int threads, long iters, uint64_t gap_ns, unsigned sleep_us, int *bad)
{
    qmc_set_num_threads(threads);
    _Atomic int64_t count = 0;
    uint64_t total = 0;
    for (long i = 0; i < iters; i++) {
        if (gap_ns) spin_ns(gap_ns);
        if (sleep_us) usleep(sleep_us);
        uint64_t t0 = qmc_now_ns();
        qmc_parallel_for(touch, &count, threads);
        total += qmc_now_ns() - t0;
    }
    if (atomic_load(&count) != (int64_t)iters * threads) (*bad)++;
    return (double)total / (double)iters;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 100000;
    if (iters < 1) iters = 1;
    int bad = 0;
    printf("qmc_parallel_for dispatch, mean of %ld calls:\n", iters);
    printf("  1 thread (serial path)      %8.3f us\n", measure(1, iters, 0, 0, &bad) / 1e3);
    printf("  2 threads, back to back     %8.3f us\n", measure(2, iters, 0, 0, &bad) / 1e3);
    printf("  2 threads, 20 us apart      %8.3f us\n", measure(2, iters, 20000, 0, &bad) / 1e3);
    long cold = iters / 20 > 0 ? iters / 20 : 1;
    printf("  2 threads, after 1 ms idle  %8.3f us (%ld calls)\n",
           measure(2, cold, 0, 1000, &bad) / 1e3, cold);
    qmc_set_num_threads(1);
    return bad ? 1 : 0;
}
