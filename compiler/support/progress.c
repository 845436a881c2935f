/* progress.c: a progress bar on stderr for the long passes (calibration,
 * sensitivity measurement, writing the weights), the monotonic clock they
 * time themselves with, and the stages of a compile with their time and
 * memory (-v).
 *
 * Guarantees: nothing is printed unless stderr is a terminal and the work
 * has taken a second; the bar is erased at the end. */
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

double sup_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

void sup_progress_begin(sup_progress *p, const char *what)
{
    p->what = what;
    p->shown = false;
    p->tty = isatty(2);
    p->start = p->last = sup_now();
}

void sup_progress_update(sup_progress *p, int64_t done, int64_t total)
{
    if (!p->tty || sup_now() - p->start < 1.0) return;
    int width = 30, fill = (int)(width * done / (total ? total : 1));
    fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld", p->what, fill,
            "==============================", width - fill, "", (long long)done, (long long)total);
    fflush(stderr);
    p->shown = true;
}

void sup_progress_update_bytes(sup_progress *p, int64_t done, int64_t total, double bytes,
                               double total_bytes)
{
    double now = sup_now(), t = now - p->start;
    if (!p->tty || t < 1.0 || (now - p->last < 0.2 && done < total)) return;
    p->last = now;
    int width = 30, fill = (int)(width * (total_bytes > 0 ? bytes / total_bytes : 1));
    double rate = bytes / t, left = rate > 0 ? (total_bytes - bytes) / rate : 0;
    fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld, %.0f MB/s, %d:%02d left ", p->what, fill,
            "==============================", width - fill, "", (long long)done, (long long)total,
            rate / 1e6, (int)left / 60, (int)left % 60);
    fflush(stderr);
    p->shown = true;
}

void sup_progress_end(sup_progress *p)
{
    if (p->shown) fprintf(stderr, "\r%*s\r", (int)strlen(p->what) + 80, "");
    p->shown = false;
}

/* ---- stages ----------------------------------------------------------------- */

enum { MAX_STAGES = 32 };

static struct {
    double start, last;
    int n;
    struct {
        const char *name;
        double seconds;
        double rss_mb, peak_mb; /* at its end, and the highest so far */
    } s[MAX_STAGES];
} stages;

/* The resident set now (statm) and its peak so far (getrusage), in MB. */
static void memory_mb(double *now, double *peak)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    *now = (double)resident * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *peak = (double)ru.ru_maxrss / 1024.0;
    if (*peak < *now) *peak = *now; /* the kernel updates the peak lazily */
}

void sup_stages_begin(void)
{
    memset(&stages, 0, sizeof stages);
    stages.start = stages.last = sup_now();
}

void sup_stage_end(const char *name)
{
    if (!stages.start || stages.n == MAX_STAGES) return;
    double now = sup_now();
    stages.s[stages.n].name = name;
    stages.s[stages.n].seconds = now - stages.last;
    memory_mb(&stages.s[stages.n].rss_mb, &stages.s[stages.n].peak_mb);
    stages.n++;
    stages.last = now;
}

void sup_stage_part(const char *name, double seconds)
{
    if (!stages.start || stages.n == MAX_STAGES) return;
    stages.s[stages.n].name = name;
    stages.s[stages.n].seconds = seconds;
    stages.s[stages.n].rss_mb = -1; /* a part of the stage before it */
    stages.n++;
}

void sup_stages_print(FILE *out)
{
    if (!stages.start) return;
    fprintf(out, "\n%-14s %9s %12s %12s\n", "stage", "seconds", "resident MB", "peak MB");
    for (int i = 0; i < stages.n; i++)
        if (stages.s[i].rss_mb < 0)
            fprintf(out, "  %-12s %9.2f\n", stages.s[i].name, stages.s[i].seconds);
        else
            fprintf(out, "%-14s %9.2f %12.0f %12.0f\n", stages.s[i].name, stages.s[i].seconds,
                    stages.s[i].rss_mb, stages.s[i].peak_mb);
    double rss, peak;
    memory_mb(&rss, &peak);
    fprintf(out, "%-14s %9.2f %12s %12.0f\n", "total", sup_now() - stages.start, "", peak);
}
