/* timing.c: how every case is timed, and the result records.
 *
 * One method for qmc and its peers: a few untimed warm-up runs, then timed
 * runs (CLOCK_MONOTONIC around the call alone) until the plan is met; the
 * min and the median of the runs are reported. A cold run first evicts the
 * weights of the implementation being timed from every cache level with
 * clflushopt (outside the timed region), so they stream from DRAM. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

const bench_plan bench_cold = {.warmup = 3,
                               .min_reps = 50,
                               .max_reps = 2000,
                               .min_seconds = 0.25,
                               .max_wall = 3.0,
                               .cold = true};
const bench_plan bench_warm = {.warmup = 3,
                               .min_reps = 20,
                               .max_reps = 5000,
                               .min_seconds = 0.5,
                               .max_wall = 4.0,
                               .cold = false};

double bench_other_cpu_seconds(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    unsigned long long v[8] = {0};
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                     &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (got < 8) return 0;
    double busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double own = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                 1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    return busy - own;
}

void bench_wait_quiet(double max_s)
{
    static double budget = 120; /* seconds of waiting for the whole run */
    uint64_t start = qmc_now_ns();
    bool told = false;
    for (;; budget -= 0.15) {
        double c0 = bench_other_cpu_seconds();
        uint64_t t0 = qmc_now_ns();
        bench_sleep_ms(150);
        double load = (bench_other_cpu_seconds() - c0) / ((double)(qmc_now_ns() - t0) * 1e-9);
        if (load < 0.1 || budget <= 0 || (double)(qmc_now_ns() - start) * 1e-9 > max_s) return;
        if (!told)
            printf("  (waiting for a quiet machine: other processes use %.1f CPUs)\n", load),
                fflush(stdout);
        told = true;
    }
}

void bench_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

__attribute__((target("clflushopt"))) void bench_evict(const bench_range *ranges, int n)
{
    for (int r = 0; r < n; r++) {
        if (!ranges[r].p) continue; /* nothing to evict (weights inside the code) */
        const char *p = (const char *)((uintptr_t)ranges[r].p & ~(uintptr_t)63);
        const char *end = (const char *)ranges[r].p + ranges[r].bytes;
        for (; p < end; p += 64) _mm_clflushopt((void *)p);
    }
    _mm_mfence();
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bench_stats bench_stats_of(double *us, int n)
{
    bench_stats st = {.reps = n};
    if (!n) return st;
    qsort(us, (size_t)n, sizeof *us, cmp_double);
    st.min_us = us[0];
    st.median_us = n % 2 ? us[n / 2] : 0.5 * (us[n / 2 - 1] + us[n / 2]);
    return st;
}

bench_stats bench_measure(const bench_plan *plan, bench_fn fn, void *ctx, const bench_range *evict,
                          int n_evict)
{
    bench_stats st = {0};
    bench_wait_quiet(10.0);
    for (int i = 0; i < plan->warmup; i++) {
        if (plan->cold) bench_evict(evict, n_evict);
        int rc = fn(ctx);
        if (rc) return st.failed = rc, st;
    }
    double *t = malloc(sizeof(double) * (size_t)plan->max_reps);
    double timed = 0;
    uint64_t wall0 = qmc_now_ns();
    double other0 = bench_other_cpu_seconds();
    int n = 0;
    while (n < plan->max_reps) {
        if (plan->cold) bench_evict(evict, n_evict);
        uint64_t t0 = qmc_now_ns();
        int rc = fn(ctx);
        uint64_t t1 = qmc_now_ns();
        if (rc) {
            st.failed = rc;
            break;
        }
        t[n++] = (double)(t1 - t0) * 1e-3;
        timed += (double)(t1 - t0) * 1e-9;
        double wall = (double)(t1 - wall0) * 1e-9;
        if (n >= plan->min_reps && (timed >= plan->min_seconds || wall >= plan->max_wall)) break;
    }
    int failed = st.failed;
    double load = bench_bg_load(other0, wall0);
    st = bench_stats_of(t, n);
    st.failed = failed;
    st.bg_load = load;
    free(t);
    return st;
}

void bench_measure_interleaved(const bench_plan *plan, const bench_interleave *il,
                               bench_contender *cs, int n)
{
    bench_wait_quiet(10.0);
    double **t = calloc((size_t)n, sizeof *t), *timed = calloc((size_t)n, sizeof *timed);
    int *reps = calloc((size_t)n, sizeof *reps);
    for (int i = 0; i < n; i++) {
        cs[i].st = (bench_stats){0};
        t[i] = malloc(sizeof(double) * (size_t)plan->max_reps);
        if (il->settle_ms) bench_sleep_ms(il->settle_ms);
        for (int w = 0; w < plan->warmup && !cs[i].st.failed; w++) {
            if (plan->cold) bench_evict(&cs[i].evict, 1);
            cs[i].st.failed = cs[i].fn(cs[i].ctx);
        }
    }
    uint64_t wall0 = qmc_now_ns();
    double other0 = bench_other_cpu_seconds();
    for (bool done = false; !done;) {
        done = true;
        for (int i = 0; i < n; i++) {
            if (cs[i].st.failed || reps[i] >= plan->max_reps) continue;
            if (il->settle_ms) bench_sleep_ms(il->settle_ms);
            if (il->warm_block) {
                if (plan->cold) bench_evict(&cs[i].evict, 1);
                cs[i].st.failed = cs[i].fn(cs[i].ctx);
            }
            for (int b = 0; b < il->block && !cs[i].st.failed && reps[i] < plan->max_reps; b++) {
                if (plan->cold) bench_evict(&cs[i].evict, 1);
                uint64_t t0 = qmc_now_ns();
                int rc = cs[i].fn(cs[i].ctx);
                uint64_t t1 = qmc_now_ns();
                if (rc)
                    cs[i].st.failed = rc;
                else
                    t[i][reps[i]++] = (double)(t1 - t0) * 1e-3,
                    timed[i] += (double)(t1 - t0) * 1e-9;
            }
            double wall = (double)(qmc_now_ns() - wall0) * 1e-9;
            bool enough = reps[i] >= plan->min_reps &&
                          (timed[i] >= plan->min_seconds || wall >= plan->max_wall * n);
            done &= enough || cs[i].st.failed || reps[i] >= plan->max_reps;
        }
    }
    double load = bench_bg_load(other0, wall0);
    for (int i = 0; i < n; i++) {
        int failed = cs[i].st.failed;
        cs[i].st = bench_stats_of(t[i], reps[i]);
        cs[i].st.failed = failed;
        cs[i].st.bg_load = load;
        free(t[i]);
    }
    free(t);
    free(timed);
    free(reps);
}

double bench_bg_load(double other0, uint64_t wall0)
{
    double wall = (double)(qmc_now_ns() - wall0) * 1e-9;
    double load = wall > 0 ? (bench_other_cpu_seconds() - other0) / wall : 0;
    return load > 0 ? load : 0;
}

int bench_qmc_run_once(void *ctx)
{
    bench_qmc_run *c = ctx;
    return (int)c->model->run(c->in, c->out, c->ws);
}

/* ---- records -------------------------------------------------------------- */

static FILE *out;

void bench_record_open(const char *path)
{
    out = fopen(path, "a");
    if (!out) {
        perror(path);
        exit(1);
    }
}

void bench_record_close(void)
{
    if (out) fclose(out);
    out = NULL;
}

static void json_str(FILE *f, const char *key, const char *s)
{
    if (!s) return;
    fprintf(f, ",\"%s\":\"", key);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f), fputc(*s, f);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, const char *key, double v)
{
    if (v > 0) fprintf(f, ",\"%s\":%.6g", key, v);
}

/* The record as one JSON line (malloc'd). */
static char *record_json(const bench_record *r)
{
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    const char *status = r->status ? r->status : "ok";
    fprintf(f, "{\"group\":\"%s\"", r->group);
    json_str(f, "case", r->case_name);
    json_str(f, "impl", r->impl);
    fprintf(f, ",\"threads\":%d", r->threads);
    json_str(f, "status", status);
    if (r->st.reps) {
        fprintf(f, ",\"reps\":%d,\"min_us\":%.3f,\"median_us\":%.3f", r->st.reps, r->st.min_us,
                r->st.median_us);
        if (r->weight_bytes > 0) fprintf(f, ",\"weight_bytes\":%.0f", r->weight_bytes);
        fprintf(f, ",\"bg_load\":%.2f", r->st.bg_load);
        json_num(f, "gbps", r->weight_bytes > 0 ? r->weight_bytes / (r->st.median_us * 1e3) : 0);
        json_num(f, "gops", r->ops > 0 ? r->ops / (r->st.median_us * 1e3) : 0);
    }
    json_str(f, "peer", r->peer);
    json_str(f, "goal", r->goal);
    json_str(f, "note", r->note);
    if (r->err > 0) fprintf(f, ",\"max_rel_err\":%.3g", r->err);
    fprintf(f, "}\n");
    fclose(f);
    return line;
}

/* A group's records are held back until bench_group_commit: the attempt
 * with the least background load wins. */
typedef struct attempt {
    char *lines;
    size_t len;
    double load;
} attempt;

static bool grouping;
static attempt current, best = {.load = -1};

static void attempt_free(attempt *a)
{
    free(a->lines);
    *a = (attempt){.load = -1};
}

void bench_group_begin(void)
{
    grouping = true;
    attempt_free(&current);
    current.load = 0;
}

double bench_group_end(void)
{
    double load = current.load;
    if (best.load < 0 || current.load < best.load) {
        attempt_free(&best);
        best = current;
    } else {
        attempt_free(&current);
    }
    current = (attempt){.load = -1};
    grouping = false;
    return load;
}

void bench_group_commit(void)
{
    if (out && best.lines) fwrite(best.lines, 1, best.len, out), fflush(out);
    attempt_free(&best);
}

void bench_record_write(const bench_record *r)
{
    bench_record_print(r);
    char *line = record_json(r);
    if (grouping) {
        size_t n = strlen(line);
        current.lines = realloc(current.lines, current.len + n + 1);
        memcpy(current.lines + current.len, line, n + 1);
        current.len += n;
        if (r->st.reps && r->st.bg_load > current.load) current.load = r->st.bg_load;
    } else if (out) {
        fputs(line, out);
        fflush(out);
    }
    free(line);
}

void bench_record_print(const bench_record *r)
{
    const char *status = r->status ? r->status : "ok";
    if (!r->st.reps) {
        printf("  %-24s %-22s %dT  %s%s%s\n", r->case_name, r->impl, r->threads, status,
               r->note ? ": " : "", r->note ? r->note : "");
    } else {
        double med = r->st.median_us;
        printf("  %-24s %-22s %dT  min %10.1f us  median %10.1f us", r->case_name, r->impl,
               r->threads, r->st.min_us, med);
        if (r->weight_bytes > 0) printf("  %7.2f GB/s", r->weight_bytes / (med * 1e3));
        if (r->ops > 0) printf("  %8.1f GOP/s", r->ops / (med * 1e3));
        if (strcmp(status, "ok")) printf("  [%s]", status);
        if (r->st.bg_load >= 0.1)
            printf("  [busy machine: %.1f CPUs of other work]", r->st.bg_load);
        if (r->note) printf("  (%s)", r->note);
        printf("\n");
    }
    fflush(stdout);
}
