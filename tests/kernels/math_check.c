/* math_check: the vector GELU, tanh and SiLU that qmc emits (emit_math.c)
 * against double precision, over [-10, 10] in steps of 1e-4 plus special
 * values, for several targets (aarch64 under qemu).
 *
 * Bounds (measured maxima well inside them, see emit_math.c):
 *   gelu(x): within 3e-7 |x| + 2^-23 |gelu(x)| (the erf fit errs by at
 *     most 3.7e-7 in float);
 *   tanh(x), silu(x): within 4 float ulps of the exact value, plus 1e-37
 *     (results that underflow);
 * and NaN in gives NaN out, gelu(+inf) = +inf, tanh(+-inf) = +-1,
 * silu(+inf) = +inf.
 *
 * usage: math_check (reads QMC from the environment) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiled_check.h"

enum { STEPS = 200001, N = STEPS + 6 };

static const target targets[] = {
    {"", "", ""},                                /* this machine (native) */
    {"--cpu x86-64-v3", "", X86_64_V3_FEATURES}, /* AVX2 + FMA, 8 lanes */
    {"--cpu x86-64", "", ""},                    /* SSE, 4 lanes, no FMA */
    {"--target aarch64-linux-gnu --cpu neoverse-n1", "qemu-aarch64 ", ""},
};

static float x[N];
static char dir[256];
static int failures;

static double gelu_exact(double v) { return 0.5 * v * (1 + erf(v / sqrt(2.0))); }
static double silu_exact(double v) { return v / (1 + exp(-v)); }

static float *read_output(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    return read_f32_npy(path, N);
}

/* Checks one function's outputs; returns the worst error over its bound. */
static double check_fn(const char *what, const target *t, const float *got, double (*exact)(double),
                       bool gelu)
{
    double worst = 0;
    for (int i = 0; i < STEPS; i++) {
        double want = exact(x[i]), err = fabs(got[i] - want);
        double bound =
            gelu ? 3e-7 * fabs(x[i]) + 0x1p-23 * fabs(want) : 4 * 0x1p-24 * fabs(want) + 1e-37;
        if (!(err <= bound)) {
            fprintf(stderr, "FAIL: %s %s: %s(%.9g) = %.9g, exact %.9g (error %.3g, bound %.3g)\n",
                    what, t->flags, what, x[i], got[i], want, err, bound);
            failures++;
            return INFINITY;
        }
        if (bound > 0 && err / bound > worst) worst = err / bound;
    }
    return worst;
}

static void check(const target *t)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s compile %s/m.qm %s -o %s/m.exe", getenv("QMC"), dir, t->flags,
             dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "FAIL: %s: compile failed\n", t->flags);
        failures++;
        return;
    }
    snprintf(
        cmd, sizeof cmd,
        "cd %s && %s./m.exe --input x=x.npy --output g=g.npy --output t=t.npy --output s=s.npy",
        dir, t->runner);
    if (system(cmd) != 0) {
        fprintf(stderr, "FAIL: %s: the compiled model failed\n", t->flags);
        failures++;
        return;
    }
    float *g = read_output("g"), *th = read_output("t"), *s = read_output("s");
    double wg = check_fn("gelu", t, g, gelu_exact, true), wt = check_fn("tanh", t, th, tanh, false),
           ws = check_fn("silu", t, s, silu_exact, false);
    /* the special values after the grid: +inf, -inf, NaN, -0, 1e30, -1e30 */
    bool ok = isinf(g[STEPS]) && g[STEPS] > 0 && th[STEPS] == 1 && th[STEPS + 1] == -1 &&
              isinf(s[STEPS]) && s[STEPS] > 0 && isnan(g[STEPS + 2]) && isnan(th[STEPS + 2]) &&
              isnan(s[STEPS + 2]) && g[STEPS + 3] == 0 && th[STEPS + 3] == 0 && s[STEPS + 3] == 0 &&
              g[STEPS + 4] == 1e30f && th[STEPS + 4] == 1 && s[STEPS + 4] == 1e30f &&
              g[STEPS + 5] == 0 && th[STEPS + 5] == -1;
    if (!ok) {
        fprintf(stderr,
                "FAIL: %s: special values: gelu %g %g %g %g %g %g, tanh %g %g %g %g %g %g, silu %g "
                "%g %g %g %g %g\n",
                t->flags, g[STEPS], g[STEPS + 1], g[STEPS + 2], g[STEPS + 3], g[STEPS + 4],
                g[STEPS + 5], th[STEPS], th[STEPS + 1], th[STEPS + 2], th[STEPS + 3], th[STEPS + 4],
                th[STEPS + 5], s[STEPS], s[STEPS + 1], s[STEPS + 2], s[STEPS + 3], s[STEPS + 4],
                s[STEPS + 5]);
        failures++;
    }
    printf("%-45s worst error / bound: gelu %.2f, tanh %.2f, silu %.2f\n",
           *t->flags ? t->flags : "(this machine)", wg, wt, ws);
    free(g);
    free(th);
    free(s);
}

int main(void)
{
    if (!getenv("QMC")) return fprintf(stderr, "set QMC to the qmc binary\n"), 2;
    snprintf(dir, sizeof dir, "/tmp/qmc-math-XXXXXX");
    if (!mkdtemp(dir)) return 2;
    for (int i = 0; i < STEPS; i++) x[i] = (float)(-10 + 1e-4 * i);
    const float special[] = {INFINITY, -INFINITY, NAN, -0.0f, 1e30f, -1e30f};
    memcpy(x + STEPS, special, sizeof special);
    char path[512];
    snprintf(path, sizeof path, "%s/x.npy", dir);
    int64_t shape[1] = {N};
    if (rt_npy_write(path, QMC_DTYPE_F32, 1, shape, x) != QMC_OK)
        return fprintf(stderr, "cannot write %s\n", path), 2;
    snprintf(path, sizeof path, "%s/m.qm", dir);
    FILE *f = fopen(path, "w");
    if (!f) return 2;
    fprintf(f,
            "model m {\n    input x: f32[%d]\n    output g: f32[%d]\n    output t: f32[%d]\n    "
            "output s: f32[%d]\n"
            "    g = gelu(x)\n    t = tanh(x)\n    s = silu(x)\n}\n",
            N, N, N, N);
    fclose(f);
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++)
        if (target_runs_here(&targets[t], &failures)) check(&targets[t]);
    remove_dir(dir);
    return failures ? 1 : 0;
}
