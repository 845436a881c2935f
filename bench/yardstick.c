/* yardstick.c: the machine's own limits, measured in the same run as the
 * kernels: the read bandwidth of a buffer far larger than the caches (one
 * pass of AVX-512 loads split evenly over the threads, OpenMP), and the
 * vpdpbusd peak (vnni_peak.c). */
#include <immintrin.h>
#include <omp.h>

#include "bench.h"

__attribute__((target("avx512f"))) static double read_sum(const float *p, size_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 64 <= n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

volatile double yard_sink;

double yard_stream_read(const void *buf, size_t bytes, int threads)
{
    size_t n = bytes / sizeof(float), chunk = n / (size_t)threads / 64 * 64;
    double sum = 0;
    uint64_t t0 = qmc_now_ns();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
    {
        size_t i = (size_t)omp_get_thread_num();
        sum += read_sum((const float *)buf + i * chunk, chunk);
    }
    uint64_t t1 = qmc_now_ns();
    yard_sink = sum;
    return (double)(t1 - t0) * 1e-9;
}
