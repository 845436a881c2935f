/* math_check: the vector functions qmc emits (emit_math.c) against double
 * precision, for several targets (aarch64 under qemu): GELU, tanh, SiLU,
 * erf and sigmoid over [-10, 10] in steps of 1e-4 (sigmoid stretched to
 * [-100, 100]), exp over [-90, 90], log over every binade of the positive
 * floats (subnormals included), pow over bases in [1e-3, 1e3] (and their
 * negatives) and a set of exponents, plus special values.
 *
 * Bounds (measured maxima well inside them, see emit_math.c):
 *   gelu(x): within 3e-7 |x| + 2^-23 |gelu(x)| (the erf fit errs by at
 *     most 3.7e-7 in float); erf(x): within 3.7e-7;
 *   tanh, silu, exp, log, sigmoid: within 4 float ulps of the exact value,
 *     plus 1e-37 (results that underflow: exp flushes below e^-87.34);
 *   pow(a, b): within (3 + 2 |b ln|a||) ulps, plus 1e-37;
 * and NaN in gives NaN out, gelu(+inf) = +inf, tanh(+-inf) = +-1,
 * silu(+inf) = +inf, exp(+inf) = +inf, exp(-inf) = 0, log(0) = -inf,
 * log(-1) = NaN, log(inf) = inf, sigmoid(+-inf) = 1, 0.
 *
 * usage: math_check (reads QMC from the environment) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiled_check.h"

enum {
    STEPS = 200001,  /* the grid of x */
    N = STEPS + 6,   /* ... and the special values */
    BINADES = 277,   /* 2^-149 .. 2^127 */
    PER_BINADE = 64, /* values of p per binade */
    NP = BINADES * PER_BINADE + 4,
    NA = 4001, /* pow: bases (half of them negative) */
    NB = 12,   /* pow: exponents */
};

static const target targets[] = {
    {"", "", ""},                                /* this machine (native) */
    {"--cpu x86-64-v3", "", X86_64_V3_FEATURES}, /* AVX2 + FMA, 8 lanes */
    {"--cpu x86-64", "", ""},                    /* SSE, 4 lanes, no FMA */
    {"--target aarch64-linux-gnu --cpu neoverse-n1", "qemu-aarch64 ", ""},
};

static const float exponents[NB] = {-3.5f, -2, -1, -0.5f, 0, 0.5f, 1, 1.5f, 2, 3, 7.25f, 12};

static float x[N], p[NP], pa[NA];
static char dir[256];
static int failures;

static double gelu_exact(double v) { return 0.5 * v * (1 + erf(v / sqrt(2.0))); }
static double silu_exact(double v) { return v / (1 + exp(-v)); }
static double sigmoid_exact(double v) { return 1 / (1 + exp(-v)); }

static float *read_output(const char *name, int64_t count)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    return read_f32_npy(path, count);
}

/* The error bound of one result: kind 'g' gelu, 'e' erf, 'p' pow (arg:
 * |b ln|a||), else 4 ulps. */
static double bound_of(int kind, double in, double want, double arg)
{
    switch (kind) {
    case 'g': return 3e-7 * fabs(in) + 0x1p-23 * fabs(want);
    case 'e': return 3.7e-7;
    case 'p': return (3 + 2 * arg) * 0x1p-24 * fabs(want) + 1e-37;
    default: return 4 * 0x1p-24 * fabs(want) + 1e-37;
    }
}

/* Checks n results against exact(in[i] * scale); returns the worst error
 * over its bound (INFINITY after reporting a failure). */
static double check_fn(const char *what, const target *t, const float *got, const float *in, int n,
                       double scale, double (*exact)(double), int kind)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double v = (double)(float)(in[i] * scale), want = exact(v), err = fabs(got[i] - want);
        if ((isinf(want) || fabs(want) > 0x1.fffffep127) && isinf(got[i]) &&
            (got[i] > 0) == (want > 0))
            continue; /* beyond the largest float */
        double bound = bound_of(kind, v, want, 0);
        if (!(err <= bound)) {
            fprintf(stderr, "FAIL: %s %s: %s(%.9g) = %.9g, exact %.9g (error %.3g, bound %.3g)\n",
                    what, t->flags, what, v, got[i], want, err, bound);
            failures++;
            return INFINITY;
        }
        if (bound > 0 && err / bound > worst) worst = err / bound;
    }
    return worst;
}

static double check_pow(const target *t, const float *got)
{
    double worst = 0;
    for (int i = 0; i < NA; i++)
        for (int j = 0; j < NB; j++) {
            double a = pa[i], b = exponents[j], want = pow(a, b), g = got[i * NB + j];
            if (isnan(want) && isnan(g)) continue;
            double err = fabs(g - want), bound = bound_of('p', a, want, fabs(b * log(fabs(a))));
            if (!(err <= bound)) {
                fprintf(stderr, "FAIL: pow %s: pow(%.9g, %g) = %.9g, exact %.9g (bound %.3g)\n",
                        t->flags, a, b, g, want, bound);
                failures++;
                return INFINITY;
            }
            if (bound > 0 && err / bound > worst) worst = err / bound;
        }
    return worst;
}

/* The special values after each grid. */
static bool specials_ok(const float *g, const float *th, const float *s, const float *e,
                        const float *sg, const float *l)
{
    const float *gs = g + STEPS, *ts = th + STEPS, *ss = s + STEPS, *es = e + STEPS,
                *sgs = sg + STEPS, *ls = l + NP - 4;
    /* x: +inf, -inf, NaN, -0, 1e30, -1e30; p: 0, inf, -1, NaN */
    return isinf(gs[0]) && gs[0] > 0 && ts[0] == 1 && ts[1] == -1 && isinf(ss[0]) && ss[0] > 0 &&
           isnan(gs[2]) && isnan(ts[2]) && isnan(ss[2]) && gs[3] == 0 && ts[3] == 0 && ss[3] == 0 &&
           gs[4] == 1e30f && ts[4] == 1 && ss[4] == 1e30f && gs[5] == 0 && ts[5] == -1 &&
           isinf(es[0]) && es[0] > 0 && es[1] == 0 && isnan(es[2]) && sgs[0] == 1 && sgs[1] == 0 &&
           isnan(sgs[2]) && isinf(ls[0]) && ls[0] < 0 && isinf(ls[1]) && ls[1] > 0 &&
           isnan(ls[2]) && isnan(ls[3]);
}

static const char *const outs[] = {"g", "t", "s", "er", "e", "sg", "l", "pw"};

static void check(const target *t)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s compile %s/m.qm %s -o %s/m.exe", getenv("QMC"), dir, t->flags,
             dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "FAIL: %s: compile failed\n", t->flags);
        failures++;
        return;
    }
    int n = snprintf(cmd, sizeof cmd,
                     "cd %s && %s./m.exe --input x=x.npy --input p=p.npy --input pa=pa.npy "
                     "--input pb=pb.npy",
                     dir, t->runner);
    for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " --output %s=%s.npy", outs[k], outs[k]);
    if (system(cmd) != 0) {
        fprintf(stderr, "FAIL: %s: the compiled model failed\n", t->flags);
        failures++;
        return;
    }
    float *g = read_output("g", N), *th = read_output("t", N), *s = read_output("s", N),
          *er = read_output("er", N), *e = read_output("e", N), *sg = read_output("sg", N),
          *l = read_output("l", NP), *pw = read_output("pw", NA * NB);
    double wg = check_fn("gelu", t, g, x, STEPS, 1, gelu_exact, 'g'),
           wt = check_fn("tanh", t, th, x, STEPS, 1, tanh, 'u'),
           ws = check_fn("silu", t, s, x, STEPS, 1, silu_exact, 'u'),
           wer = check_fn("erf", t, er, x, STEPS, 1, erf, 'e'),
           we = check_fn("exp", t, e, x, STEPS, 9, exp, 'u'),
           wsg = check_fn("sigmoid", t, sg, x, STEPS, 10, sigmoid_exact, 'u'),
           wl = check_fn("log", t, l, p, NP - 4, 1, log, 'u'), wp = check_pow(t, pw);
    if (!specials_ok(g, th, s, e, sg, l)) {
        fprintf(stderr, "FAIL: %s: special values\n", t->flags);
        failures++;
    }
    printf("%-45s worst error / bound: gelu %.2f, tanh %.2f, silu %.2f, erf %.2f, exp %.2f, "
           "sigmoid %.2f, log %.2f, pow %.2f\n",
           *t->flags ? t->flags : "(this machine)", wg, wt, ws, wer, we, wsg, wl, wp);
    free(g), free(th), free(s), free(er), free(e), free(sg), free(l), free(pw);
}

static bool write_input(const char *name, const float *v, int64_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    return rt_npy_write(path, QMC_DTYPE_F32, 1, &n, v) == QMC_OK;
}

int main(void)
{
    if (!getenv("QMC")) return fprintf(stderr, "set QMC to the qmc binary\n"), 2;
    snprintf(dir, sizeof dir, "/tmp/qmc-math-XXXXXX");
    if (!mkdtemp(dir)) return 2;
    for (int i = 0; i < STEPS; i++) x[i] = (float)(-10 + 1e-4 * i);
    const float special[] = {INFINITY, -INFINITY, NAN, -0.0f, 1e30f, -1e30f};
    memcpy(x + STEPS, special, sizeof special);
    for (int b = 0; b < BINADES; b++)
        for (int k = 0; k < PER_BINADE; k++)
            p[b * PER_BINADE + k] = ldexpf(1 + (k + 0.37f) / PER_BINADE, b - 149);
    const float pspecial[] = {0, INFINITY, -1, NAN};
    memcpy(p + NP - 4, pspecial, sizeof pspecial);
    for (int i = 0; i < NA; i++)
        pa[i] = (i % 2 ? -1.0f : 1.0f) * powf(10, -3 + 6.0f * i / (NA - 1));
    if (!write_input("x", x, N) || !write_input("p", p, NP) || !write_input("pa", pa, NA) ||
        !write_input("pb", exponents, NB))
        return fprintf(stderr, "cannot write the inputs in %s\n", dir), 2;
    char path[512];
    snprintf(path, sizeof path, "%s/m.qm", dir);
    FILE *f = fopen(path, "w");
    if (!f) return 2;
    fprintf(f,
            "model m {\n    input x: f32[%d]\n    input p: f32[%d]\n    input pa: f32[%d]\n"
            "    input pb: f32[%d]\n",
            N, NP, NA, NB);
    fprintf(f,
            "    output g: f32[%d]\n    output t: f32[%d]\n    output s: f32[%d]\n"
            "    output er: f32[%d]\n    output e: f32[%d]\n    output sg: f32[%d]\n"
            "    output l: f32[%d]\n    output pw: f32[%d, %d]\n",
            N, N, N, N, N, N, NP, NA, NB);
    fprintf(f,
            "    g = gelu(x)\n    t = tanh(x)\n    s = silu(x)\n    er = erf(x)\n"
            "    e = exp(x * 9.0)\n    sg = sigmoid(x * 10.0)\n    l = log(p)\n"
            "    pw = pow(reshape(pa, [%d, 1]), pb)\n}\n",
            NA);
    fclose(f);
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++)
        if (target_runs_here(&targets[t], &failures)) check(&targets[t]);
    remove_dir(dir);
    return failures ? 1 : 0;
}
