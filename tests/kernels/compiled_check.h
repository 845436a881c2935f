/* compiled_check.h: what the tests that compile a model with qmc and run
 * it on several targets share (kernel_check.c, math_check.c). */
#ifndef QMC_TESTS_COMPILED_CHECK_H
#define QMC_TESTS_COMPILED_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* A target: qmc compile flags, the command prefix that runs its code here
 * ("" or "qemu-aarch64 "), and the features the host needs to run it
 * natively (its CPU's, as target.c lists them; "" for the host's own). */
typedef struct target {
    const char *flags, *runner, *needs;
} target;

/* The x86-64-v3 level (AVX2, FMA, ...), as codegen's CPU table has it. */
#define X86_64_V3_FEATURES "sse3,ssse3,sse4.1,sse4.2,popcnt,avx,avx2,fma,f16c,bmi,bmi2,lzcnt,movbe"

/* An f32 .npy output of count values (malloc'd); exits on anything else. */
static float *read_f32_npy(const char *path, int64_t count)
{
    rt_mapped_file f;
    rt_npy_header h;
    char err[256];
    if (rt_file_map(path, &f, err, sizeof err) != QMC_OK ||
        rt_npy_parse(f.data, f.size, &h, err, sizeof err) != QMC_OK || h.count != count ||
        h.dtype != QMC_DTYPE_F32) {
        fprintf(stderr, "FAIL: %s: unreadable output\n", path);
        exit(1);
    }
    float *v = malloc(sizeof(float) * (size_t)count);
    memcpy(v, f.data + h.data_offset, sizeof(float) * (size_t)count);
    rt_file_unmap(&f);
    return v;
}

/* Whether t's code can run here; counts a failure when its runner
 * (qemu-aarch64) is missing. A native target whose CPU level this machine
 * lacks (x86-64-v3 code on a CPU without AVX2) is skipped, saying why. */
static bool target_runs_here(const target *t, int *failures)
{
    static int qemu = -1;
    if (!*t->runner) {
        char missing[256];
        if (t->needs && qmc_check_cpu(t->needs, missing, sizeof missing) != QMC_OK) {
            fprintf(stderr, "skipped '%s': this CPU lacks %s\n", t->flags, missing);
            return false;
        }
        return true;
    }
    if (qemu < 0) qemu = system("command -v qemu-aarch64 >/dev/null") == 0;
    if (!qemu) {
        fprintf(stderr, "FAIL: qemu-aarch64 is not installed\n");
        ++*failures;
    }
    return qemu;
}

static void remove_dir(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

#endif
