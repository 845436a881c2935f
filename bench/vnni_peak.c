/* vnni_peak.c: the vpdpbusd (AVX512-VNNI, u8 x s8 -> s32) peak: 16
 * independent zmm accumulators, so the loop is bound by the instruction's
 * throughput, not its latency. Each instruction does 64 multiply-adds,
 * 128 ops. Compiled with -mavx512vnni; the harness runs it only when the
 * CPU has the feature. */
#include <omp.h>

#include "bench.h"

static void vnni_loop(int64_t iters)
{
    __asm__ volatile("vpternlogd $0xff, %%zmm16, %%zmm16, %%zmm16\n\t"
                     "vpxord %%zmm17, %%zmm17, %%zmm17\n\t"
                     "1:\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm0\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm1\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm2\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm3\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm4\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm5\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm6\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm7\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm8\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm9\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm10\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm11\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm12\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm13\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm14\n\t"
                     "vpdpbusd %%zmm16, %%zmm17, %%zmm15\n\t"
                     "dec %0\n\t"
                     "jnz 1b\n\t"
                     : "+r"(iters)
                     :
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                       "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16",
                       "xmm17", "cc");
}

double yard_vnni_run(int64_t iters, int threads)
{
    uint64_t t0 = 0, t1 = 0;
#pragma omp parallel num_threads(threads)
    {
#pragma omp barrier
#pragma omp master
        t0 = qmc_now_ns();
        vnni_loop(iters);
#pragma omp barrier
#pragma omp master
        t1 = qmc_now_ns();
    }
    return (double)(t1 - t0) * 1e-9;
}
