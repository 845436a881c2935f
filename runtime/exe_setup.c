/* exe_setup.c: what the drivers of compiled executables share (exe_main.c
 * for models that map inputs to outputs, generate.c for models with a
 * sequence): messages, numbers on the command line, the CPU check, the
 * worker threads and the weights file. Part of libqmc_main.a. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>

#include "rt.h"

bool rt_exe_fail(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return false;
}

long rt_parse_count(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return -1;
    return v;
}

bool rt_exe_check_cpu(const char *prog, const qmc_model_desc *m)
{
    char missing[1024];
    if (qmc_check_cpu(m->features, missing, sizeof missing) == QMC_OK) return true;
    fprintf(stderr, "%s: error: this CPU lacks features the model was compiled for: ", prog);
    for (const char *p = missing; *p; p++) {
        fputc(*p, stderr);
        if (*p == ',') fputc(' ', stderr);
    }
    fprintf(stderr, " (compiled for cpu '%s', target %s)\n", m->cpu ? m->cpu : "generic",
            m->target_triple ? m->target_triple : "unknown");
    return false;
}

/* The cores this process may run on. */
static int available_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    int n = CPU_COUNT(&set);
    return n < 1 ? 1 : n > RT_MAX_THREADS ? RT_MAX_THREADS : n;
}

bool rt_exe_threads(const char *prog, int threads)
{
    if (!threads) {
        const char *env = getenv("QMC_NUM_THREADS");
        long n = env && *env ? rt_parse_count(env, 1, RT_MAX_THREADS) : available_cores();
        if (n < 0)
            return rt_exe_fail(prog, "QMC_NUM_THREADS wants a whole number from 1 to %d, got '%s'",
                               RT_MAX_THREADS, env);
        threads = (int)n;
    }
    const char *spin = getenv("QMC_THREAD_SPIN_US");
    if (spin && *spin) {
        long us = rt_parse_count(spin, 0, RT_MAX_SPIN_US);
        if (us < 0)
            return rt_exe_fail(prog,
                               "QMC_THREAD_SPIN_US wants a whole number from 0 to %d, got '%s'",
                               RT_MAX_SPIN_US, spin);
        qmc_set_thread_spin_us((int)us);
    }
    qmc_status st = qmc_set_num_threads(threads);
    if (st != QMC_OK)
        return rt_exe_fail(prog, "cannot start %d threads: %s", threads, qmc_status_string(st));
    return true;
}

/* The model's default weights file: as named, else beside the executable. */
static const char *default_weights(const char *named, char *buf, size_t size)
{
    if (!named || named[0] == '/' || access(named, F_OK) == 0) return named;
    char exe_path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
    if (n <= 0) return named;
    exe_path[n] = 0;
    char *slash = strrchr(exe_path, '/');
    const char *base = strrchr(named, '/');
    if (!slash) return named;
    *slash = 0;
    snprintf(buf, size, "%s/%s", exe_path, base ? base + 1 : named);
    return access(buf, F_OK) == 0 ? buf : named;
}

bool rt_exe_weights(const char *prog, const qmc_model_desc *m, const char *weights)
{
    if (!m->weights_base) {
        if (weights)
            return rt_exe_fail(
                prog, "the model '%s' has its weights built in; --weights is not used", m->name);
        return true;
    }
    char buf[PATH_MAX + 256], err[PATH_MAX + 256];
    const char *path = weights ? weights : default_weights(m->weights_file, buf, sizeof buf);
    if (rt_load_weights(m, path, err, sizeof err) == QMC_OK) return true;
    return rt_exe_fail(prog, "%s%s", err, weights ? "" : " (pass --weights FILE)");
}
