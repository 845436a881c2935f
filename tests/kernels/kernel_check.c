/* kernel_check: the generated linear kernels against the scalar _ref
 * definitions of compiler/quant, on odd shapes, for every weight format and
 * several targets.
 *
 * One model holds a linear layer for each shape (M in 1, 3, 17; N in 1, 7,
 * 33; K in 40, 100, 256, 1000: K not a multiple of the groups, N not a
 * multiple of any vector width; 1000 gives 32 groups of 32, more than a
 * vector's lanes, which the activation split sums in batches). For each
 * (precision, target) it is compiled with qmc, run (aarch64 under
 * qemu-aarch64), and every output element is compared with the _ref dot
 * product of the same quantized row:
 *   f32 activations: q_dot_f32_ref, within q_dot_tolerance_f32 and
 *   within 2^-20 of (magnitude + max|x| * sum|w|), which holds for float
 *   arithmetic and for the three int8 digits of x that targets with
 *   integer dot products use, not for two (2^-16);
 *   int8 activations (:a8): q_dot_a8_ref of q_quantize_row_a8_ref's codes,
 *   within q_dot_tolerance_a8;
 *   f32 weights: a double-precision dot, within 1e-5 of its magnitude.
 * Rows are padded with zeros to a whole number of groups, as qmc does.
 * On this machine a row of x with a NaN or an inf must give NaN outputs
 * (and leave the other rows alone) with f32, bf16, f16, int8, int4, int3,
 * int2 and NF4 weights and dynamic `:a8`.
 *
 * usage: kernel_check (reads QMC and QMC_SOURCE from the environment) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiled_check.h"
#include "quant.h"

static const int64_t Ms[] = {1, 3, 17}, Ns[] = {1, 7, 33}, Ks[] = {40, 100, 256, 1000};
enum { NM = 3, NN = 3, NK = 4, MAXK = 1024 };

typedef struct precision {
    const char *spec;
    q_kfmt kfmt;
    int group; /* 0: per row */
    bool f32, a8;
} precision;

static const precision precisions[] = {
    {"f32", 0, 0, true, false},
    {"int8", Q_KFMT_Q8, 0, false, false},
    {"int4", Q_KFMT_Q4_G32, 32, false, false},
    {"int4:g64", Q_KFMT_Q4_G64, 64, false, false},
    {"int4:g128", Q_KFMT_Q4_G128, 128, false, false},
    {"int4:asym", Q_KFMT_Q4A_G32, 32, false, false},
    {"fp8e4m3", Q_KFMT_F8E4M3, 0, false, false},
    {"fp8e5m2", Q_KFMT_F8E5M2, 0, false, false},
    {"int8:a8", Q_KFMT_Q8, 0, false, true},
    {"int4:a8", Q_KFMT_Q4_G32, 32, false, true},
    {"int4:g128:a8", Q_KFMT_Q4_G128, 128, false, true},
    {"int4:asym:a8", Q_KFMT_Q4A_G32, 32, false, true},
    {"int3", Q_KFMT_Q3_G32, 32, false, false},
    {"int3:g64:asym", Q_KFMT_Q3A_G64, 64, false, false},
    {"int3:asym", Q_KFMT_Q3A_G32, 32, false, false},
    {"int3:g128", Q_KFMT_Q3_G128, 128, false, false},
    {"int2", Q_KFMT_Q2_G32, 32, false, false},
    {"int2:asym", Q_KFMT_Q2A_G32, 32, false, false},
    {"int2:g64", Q_KFMT_Q2_G64, 64, false, false},
    {"int2:g128:asym", Q_KFMT_Q2A_G128, 128, false, false},
    {"nf4", Q_KFMT_NF4_G32, 32, false, false},
    {"nf4:g128", Q_KFMT_NF4_G128, 128, false, false},
    {"bf16", Q_KFMT_BF16, 0, false, false},
    {"f16", Q_KFMT_F16, 0, false, false},
};

static const target targets[] = {
    {"", "", ""},                                /* this machine (native) */
    {"--cpu x86-64-v3", "", X86_64_V3_FEATURES}, /* AVX2, 8 lanes, no VNNI */
    {"--cpu x86-64", "", ""},                    /* SSE, 4 lanes, FP8 without F16C */
    {"--target aarch64-linux-gnu --cpu neoverse-n1", "qemu-aarch64 ", ""}, /* NEON + dotprod */
    {"--target aarch64-linux-gnu --cpu cortex-a72", "qemu-aarch64 ", ""},  /* NEON only */
};

static float w[NN][NK][33 * MAXK], x[NM][NK][17 * MAXK];
static char dir[256];
static int failures;

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float uniform(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) / (double)(1 << 24)) * 2 - 1;
}

static void write_npy(const char *path, int64_t m, int64_t k, const float *data)
{
    int64_t shape[2] = {m, k};
    if (rt_npy_write(path, QMC_DTYPE_F32, 2, shape, data) != QMC_OK) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

/* weights.safetensors with w_n{N}_k{K} [N, K] f32 */
static void write_weights(void)
{
    char header[4096];
    size_t hl = 0, off = 0;
    hl += (size_t)snprintf(header + hl, sizeof header - hl, "{");
    for (int n = 0; n < NN; n++)
        for (int k = 0; k < NK; k++) {
            size_t bytes = (size_t)(Ns[n] * Ks[k] * 4);
            hl += (size_t)snprintf(header + hl, sizeof header - hl,
                                   "%s\"w_n%lld_k%lld\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],"
                                   "\"data_offsets\":[%zu,%zu]}",
                                   hl > 1 ? "," : "", (long long)Ns[n], (long long)Ks[k],
                                   (long long)Ns[n], (long long)Ks[k], off, off + bytes);
            off += bytes;
        }
    hl += (size_t)snprintf(header + hl, sizeof header - hl, "}");
    while (hl % 8) header[hl++] = ' ';
    char path[512];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    FILE *f = fopen(path, "wb");
    uint64_t len = hl;
    fwrite(&len, 8, 1, f);
    fwrite(header, 1, hl, f);
    for (int n = 0; n < NN; n++)
        for (int k = 0; k < NK; k++) fwrite(w[n][k], 4, (size_t)(Ns[n] * Ks[k]), f);
    fclose(f);
}

static void write_model(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/kernels.qm", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "model kernels {\n    weights \"weights.safetensors\"\n");
    for (int m = 0; m < NM; m++)
        for (int k = 0; k < NK; k++)
            fprintf(f, "    input x_m%lld_k%lld: f32[%lld, %lld]\n", (long long)Ms[m],
                    (long long)Ks[k], (long long)Ms[m], (long long)Ks[k]);
    for (int m = 0; m < NM; m++)
        for (int n = 0; n < NN; n++)
            for (int k = 0; k < NK; k++)
                fprintf(f, "    output y_m%lld_n%lld_k%lld: f32[%lld, %lld]\n", (long long)Ms[m],
                        (long long)Ns[n], (long long)Ks[k], (long long)Ms[m], (long long)Ns[n]);
    for (int m = 0; m < NM; m++)
        for (int n = 0; n < NN; n++)
            for (int k = 0; k < NK; k++)
                fprintf(f, "    y_m%lld_n%lld_k%lld = linear(x_m%lld_k%lld, w_n%lld_k%lld)\n",
                        (long long)Ms[m], (long long)Ns[n], (long long)Ks[k], (long long)Ms[m],
                        (long long)Ks[k], (long long)Ns[n], (long long)Ks[k]);
    fprintf(f, "}\n");
    fclose(f);
}

/* Reference outputs of one linear and their tolerances. */
static void reference(const precision *p, int mi, int ni, int ki, float *ref, double *tol)
{
    int64_t M = Ms[mi], N = Ns[ni], K = Ks[ki];
    int64_t kp = p->group ? (K + p->group - 1) / p->group * p->group : K;
    float row[MAXK], xrow[MAXK];
    uint8_t packed[4096];
    int8_t xq[MAXK];
    for (int64_t n = 0; n < N; n++) {
        memset(row, 0, sizeof row);
        memcpy(row, &w[ni][ki][n * K], sizeof(float) * (size_t)K);
        if (!p->f32) q_quantize_row_ref(p->kfmt, row, kp, packed);
        for (int64_t m = 0; m < M; m++) {
            memset(xrow, 0, sizeof xrow);
            memcpy(xrow, &x[mi][ki][m * K], sizeof(float) * (size_t)K);
            float *out = &ref[m * N + n];
            double *t = &tol[m * N + n];
            if (p->f32) {
                double s = 0, mag = 0;
                for (int64_t k = 0; k < K; k++)
                    s += (double)row[k] * xrow[k], mag += fabs((double)row[k] * xrow[k]);
                *out = (float)s;
                *t = 1e-5 * mag + 1e-30;
            } else if (p->a8) {
                float xs;
                q_quantize_row_a8_ref(xrow, kp, xq, &xs);
                *out = q_dot_a8_ref(p->kfmt, packed, xq, xs, kp);
                *t = q_dot_tolerance_a8(p->kfmt, packed, xq, xs, kp) + 1e-30;
            } else {
                *out = q_dot_f32_ref(p->kfmt, packed, xrow, kp);
                float wrow[MAXK];
                q_dequantize_row_ref(p->kfmt, packed, kp, wrow);
                double amax = 0, wsum = 0;
                for (int64_t k = 0; k < K; k++)
                    amax = fmax(amax, fabs(xrow[k])), wsum += fabs(wrow[k]);
                double f32_accurate =
                    0x1p-20 * (q_dot_magnitude_f32(p->kfmt, packed, xrow, kp) + amax * wsum);
                *t = fmin(q_dot_tolerance_f32(p->kfmt, packed, xrow, kp), f32_accurate) + 1e-30;
            }
        }
    }
}

static void check(const precision *p, const target *t)
{
    char cmd[8192], path[512];
    snprintf(cmd, sizeof cmd, "cd %s && \"%s\" compile kernels.qm --precision %s %s -o k.exe", dir,
             getenv("QMC"), p->spec, t->flags);
    if (system(cmd) != 0) {
        fprintf(stderr, "FAIL: %s %s: compile failed\n", p->spec, t->flags);
        failures++;
        return;
    }
    size_t n = (size_t)snprintf(cmd, sizeof cmd, "cd %s && %s./k.exe", dir, t->runner);
    for (int m = 0; m < NM; m++)
        for (int k = 0; k < NK; k++)
            n += (size_t)snprintf(cmd + n, sizeof cmd - n,
                                  " --input x_m%lld_k%lld=x_m%lld_k%lld.npy", (long long)Ms[m],
                                  (long long)Ks[k], (long long)Ms[m], (long long)Ks[k]);
    for (int m = 0; m < NM; m++)
        for (int nn = 0; nn < NN; nn++)
            for (int k = 0; k < NK; k++)
                n += (size_t)snprintf(cmd + n, sizeof cmd - n,
                                      " --output y_m%lld_n%lld_k%lld=y%d%d%d.npy", (long long)Ms[m],
                                      (long long)Ns[nn], (long long)Ks[k], m, nn, k);
    if (system(cmd) != 0) {
        fprintf(stderr, "FAIL: %s %s: the compiled model failed\n", p->spec, t->flags);
        failures++;
        return;
    }
    double worst = 0;
    for (int m = 0; m < NM; m++)
        for (int nn = 0; nn < NN; nn++)
            for (int k = 0; k < NK; k++) {
                int64_t count = Ms[m] * Ns[nn];
                snprintf(path, sizeof path, "%s/y%d%d%d.npy", dir, m, nn, k);
                float *got = read_f32_npy(path, count), ref[17 * 33];
                double tol[17 * 33];
                reference(p, m, nn, k, ref, tol);
                for (int64_t i = 0; i < count; i++) {
                    double err = fabs((double)got[i] - ref[i]);
                    if (err / tol[i] > worst) worst = err / tol[i];
                    if (err > tol[i]) {
                        fprintf(stderr,
                                "FAIL: %s %s: M=%lld N=%lld K=%lld element %lld: %.9g, the _ref "
                                "gives %.9g (tolerance %.3g)\n",
                                p->spec, t->flags, (long long)Ms[m], (long long)Ns[nn],
                                (long long)Ks[k], (long long)i, got[i], ref[i], tol[i]);
                        failures++;
                        free(got);
                        return;
                    }
                }
                free(got);
            }
    printf("%-14s %-45s worst error %.3f of the tolerance\n", p->spec,
           *t->flags ? t->flags : "(host)", worst);
}

/* Row 1 of x_m3_k100 gets a NaN (then an inf): every output of that row
 * must be NaN (inf * 0 weights may give NaN too), rows 0 and 2 unchanged. */
static void check_nonfinite(const precision *p)
{
    static const float bad[2] = {NAN, INFINITY};
    for (int b = 0; b < 2; b++) {
        float xs[3 * 100];
        memcpy(xs, x[1][1], sizeof xs);
        xs[100 + 37] = bad[b];
        char path[512], cmd[1024];
        snprintf(path, sizeof path, "%s/xbad.npy", dir);
        write_npy(path, 3, 100, xs);
        snprintf(cmd, sizeof cmd,
                 "cd %s && ./k.exe --input x_m3_k100=xbad.npy --output y_m3_n33_k100=ybad.npy",
                 dir);
        /* the other inputs: their usual files */
        size_t n = strlen(cmd);
        for (int m = 0; m < NM; m++)
            for (int k = 0; k < NK; k++)
                if (!(m == 1 && k == 1))
                    n += (size_t)snprintf(
                        cmd + n, sizeof cmd - n, " --input x_m%lld_k%lld=x_m%lld_k%lld.npy",
                        (long long)Ms[m], (long long)Ks[k], (long long)Ms[m], (long long)Ks[k]);
        snprintf(path, sizeof path, "%s/ybad.npy", dir);
        char good[512];
        snprintf(good, sizeof good, "%s/y%d%d%d.npy", dir, 1, 2, 1);
        float *got = system(cmd) == 0 ? read_f32_npy(path, 3 * 33) : NULL,
              *want = read_f32_npy(good, 3 * 33);
        for (int i = 0; got && i < 3 * 33; i++) {
            bool row1 = i / 33 == 1;
            if (row1 ? !isnan(got[i]) && !isinf(got[i]) : got[i] != want[i]) {
                fprintf(stderr, "FAIL: %s: x with %s in row 1: output %d is %.9g (%s)\n", p->spec,
                        b ? "an inf" : "a NaN", i, got[i],
                        row1 ? "should not be finite" : "changed");
                failures++;
                break;
            }
        }
        if (!got)
            fprintf(stderr, "FAIL: %s: the model failed on non-finite input\n", p->spec),
                failures++;
        free(got);
        free(want);
    }
}

int main(void)
{
    if (!getenv("QMC")) return fprintf(stderr, "set QMC to the qmc binary\n"), 2;
    snprintf(dir, sizeof dir, "/tmp/qmc-kernels-XXXXXX");
    if (!mkdtemp(dir)) return 2;
    for (int n = 0; n < NN; n++)
        for (int k = 0; k < NK; k++)
            for (int64_t i = 0; i < Ns[n] * Ks[k]; i++) w[n][k][i] = uniform() * 0.5f;
    for (int m = 0; m < NM; m++)
        for (int k = 0; k < NK; k++) {
            for (int64_t i = 0; i < Ms[m] * Ks[k]; i++) x[m][k][i] = uniform() * 2;
            char path[512];
            snprintf(path, sizeof path, "%s/x_m%lld_k%lld.npy", dir, (long long)Ms[m],
                     (long long)Ks[k]);
            write_npy(path, Ms[m], Ks[k], x[m][k]);
        }
    write_weights();
    write_model();
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        if (!target_runs_here(&targets[t], &failures)) continue;
        for (size_t p = 0; p < sizeof precisions / sizeof precisions[0]; p++) {
            int before = failures;
            check(&precisions[p], &targets[t]);
            if (t == 0 && failures == before) check_nonfinite(&precisions[p]);
        }
    }
    remove_dir(dir);
    return failures ? 1 : 0;
}
