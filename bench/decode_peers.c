/* decode_peers.c: the yardsticks of the decode benchmark (bench/decode.sh),
 * measured in the same run as qmc:
 *
 *   decode_peers bandwidth THREADS      stream read of 1 GB: GB/s (best of 7)
 *   decode_peers tokens N V OUT.npy     N token ids below V (int32, seeded)
 *   decode_peers gemm THREADS M NxK...  oneDNN u8s8 matmuls of M rows against
 *                                       each N x K weight: GOP/s over all of
 *                                       them (2*M*N*K per matmul; best of 5)
 *
 * The gemm shapes are one transformer layer's linear layers, so that
 * M / (time of one layer's matmuls * layers) is what oneDNN's GEMM alone
 * would give in tokens per second of prefill. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "rt.h"

static void *xalloc(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) exit((fprintf(stderr, "decode_peers: out of memory\n"), 2));
    memset(p, 1, bytes);
    return p;
}

static int bandwidth(int threads)
{
    size_t bytes = (size_t)1 << 30;
    void *buf = xalloc(bytes);
    double best = 1e30;
    for (int i = 0; i < 7; i++) {
        double s = yard_stream_read(buf, bytes, threads);
        if (s < best) best = s;
    }
    printf("%.2f\n", (double)bytes / best / 1e9);
    return 0;
}

static int gemm(int threads, int64_t m, int n_shapes, char **shapes)
{
    omp_set_num_threads(threads);
    dnnl_peer *peers[64];
    double ops = 0;
    for (int i = 0; i < n_shapes && i < 64; i++) {
        long long n, k;
        if (sscanf(shapes[i], "%lldx%lld", &n, &k) != 2)
            return fprintf(stderr, "bad shape %s\n", shapes[i]), 2;
        int8_t *w = xalloc((size_t)(n * k));
        float *scales = xalloc(sizeof(float) * (size_t)n);
        uint8_t *x = xalloc((size_t)(m * k));
        for (long long j = 0; j < n; j++) scales[j] = 0.01f;
        peers[i] = dnnl_peer_create(true, m, n, k, w, scales, x);
        if (!peers[i]) return fprintf(stderr, "oneDNN: no u8s8 matmul for %s\n", shapes[i]), 2;
        ops += 2.0 * (double)m * (double)n * (double)k;
    }
    double best = 1e30;
    for (int r = 0; r < 6; r++) {
        uint64_t t0 = qmc_now_ns();
        for (int i = 0; i < n_shapes; i++) dnnl_peer_run(peers[i]);
        double s = (double)(qmc_now_ns() - t0) * 1e-9;
        if (r && s < best) best = s; /* the first run warms up */
    }
    printf("%.2f %s\n", ops / best / 1e9, dnnl_peer_impl(peers[0]));
    return 0;
}

static int tokens(long n, long v, const char *path)
{
    int32_t *t = xalloc(sizeof *t * (size_t)n);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (long i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (int32_t)((s >> 33) % (uint64_t)v);
    }
    int64_t shape[1] = {n};
    return rt_npy_write(path, QMC_DTYPE_I32, 1, shape, t) == QMC_OK ? 0 : 2;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "tokens"))
        return tokens(atol(argv[2]), atol(argv[3]), argv[4]);
    if (argc >= 3 && !strcmp(argv[1], "bandwidth")) return bandwidth(atoi(argv[2]));
    if (argc >= 5 && !strcmp(argv[1], "gemm"))
        return gemm(atoi(argv[2]), atoll(argv[3]), argc - 4, argv + 4);
    fprintf(stderr, "usage: decode_peers bandwidth THREADS | gemm THREADS M NxK...\n");
    return 2;
}
