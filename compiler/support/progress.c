/* progress.c: a progress bar on stderr for the long passes (calibration,
 * sensitivity measurement), and the monotonic clock they time themselves
 * with.
 *
 * Guarantees: nothing is printed unless stderr is a terminal and the work
 * has taken a second; the bar is erased at the end. */
#include <string.h>
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
    p->start = sup_now();
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

void sup_progress_end(sup_progress *p)
{
    if (p->shown) fprintf(stderr, "\r%*s\r", (int)strlen(p->what) + 50, "");
}
