/* alloc.c: the allocation problem of automatic precision selection: per
 * tensor a list of (bytes, error) choices; the least total error within a
 * byte budget, or the fewest bytes within an error.
 *
 * Errors of separately quantized tensors add up to first order, so the
 * choice is a multiple-choice knapsack over bytes, solved exactly by a
 * dynamic program over bytes in 4096 units (32 per tensor if that is more;
 * each candidate's bytes rounded up, so the answer never exceeds the
 * budget), then topped up greedily with the bytes rounding left over.
 * Deterministic: ties go to fewer bytes, then to the earlier choice. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "quant.h"

enum { ALLOC_UNITS = 4096 };

/* Lexicographic: less error, then fewer units. */
static bool better(double e1, int64_t u1, double e2, int64_t u2)
{
    return e1 < e2 || (e1 == e2 && u1 < u2);
}

/* The DP: best[x] = least error of items 0..t with at most x units;
 * arg[t][x] the choice of item t there. Returns the table of choices. */
static uint8_t *alloc_dp(const q_alloc_item *items, int n, size_t unit, int64_t cap,
                         double **best_out, int64_t **units_out)
{
    size_t w = (size_t)cap + 1;
    double *best = calloc(w, sizeof *best), *next = malloc(w * sizeof *next);
    int64_t *used = calloc(w, sizeof *used), *next_used = malloc(w * sizeof *next_used);
    uint8_t *arg = malloc((size_t)n * w);
    QMC_ASSERT(best && next && used && next_used && arg);
    for (int t = 0; t < n; t++) {
        for (size_t x = 0; x < w; x++) {
            next[x] = INFINITY;
            next_used[x] = 0;
            arg[(size_t)t * w + x] = 0;
            for (int c = 0; c < items[t].n; c++) {
                int64_t cost = (int64_t)((items[t].bytes[c] + unit - 1) / unit);
                if (cost > (int64_t)x || best[x - (size_t)cost] == INFINITY) continue;
                double e = best[x - (size_t)cost] + items[t].error[c];
                int64_t u = used[x - (size_t)cost] + cost;
                if (better(e, u, next[x], next_used[x]))
                    next[x] = e, next_used[x] = u, arg[(size_t)t * w + x] = (uint8_t)c;
            }
        }
        double *tb = best;
        best = next, next = tb;
        int64_t *tu = used;
        used = next_used, next_used = tu;
    }
    free(next);
    free(next_used);
    *best_out = best;
    *units_out = used;
    return arg;
}

static void alloc_backtrack(const q_alloc_item *items, int n, size_t unit, int64_t cap,
                            const uint8_t *arg, int64_t x, int *choice)
{
    for (int t = n - 1; t >= 0; t--) {
        int c = arg[(size_t)t * ((size_t)cap + 1) + (size_t)x];
        choice[t] = c;
        x -= (int64_t)((items[t].bytes[c] + unit - 1) / unit);
    }
}

size_t q_alloc_bytes(const q_alloc_item *items, int n, const int *choice)
{
    size_t b = 0;
    for (int t = 0; t < n; t++) b += items[t].bytes[choice[t]];
    return b;
}

double q_alloc_error(const q_alloc_item *items, int n, const int *choice)
{
    double e = 0;
    for (int t = 0; t < n; t++) e += items[t].error[choice[t]];
    return e;
}

/* Spends what the rounding left: the change with the most error saved,
 * repeatedly, while it fits. */
static void fill_budget(const q_alloc_item *items, int n, size_t budget, int *choice)
{
    for (;;) {
        size_t used = q_alloc_bytes(items, n, choice);
        int bt = -1, bc = -1;
        double gain = 0;
        for (int t = 0; t < n; t++)
            for (int c = 0; c < items[t].n; c++) {
                double g = items[t].error[choice[t]] - items[t].error[c];
                if (g > gain && used - items[t].bytes[choice[t]] + items[t].bytes[c] <= budget)
                    gain = g, bt = t, bc = c;
            }
        if (bt < 0) return;
        choice[bt] = bc;
    }
}

/* Saves what bytes it can while the error stays within max_error: the
 * change saving the most bytes, and of those the one adding the least
 * error, repeatedly. */
static void trim_bytes(const q_alloc_item *items, int n, double max_error, int *choice)
{
    for (;;) {
        double err = q_alloc_error(items, n, choice), best_err = INFINITY;
        int bt = -1, bc = -1;
        size_t saved = 0;
        for (int t = 0; t < n; t++)
            for (int c = 0; c < items[t].n; c++) {
                size_t cur = items[t].bytes[choice[t]];
                if (items[t].bytes[c] >= cur) continue;
                double e = err - items[t].error[choice[t]] + items[t].error[c];
                if (e > max_error) continue;
                if (cur - items[t].bytes[c] > saved ||
                    (cur - items[t].bytes[c] == saved && e < best_err))
                    saved = cur - items[t].bytes[c], best_err = e, bt = t, bc = c;
            }
        if (bt < 0) return;
        choice[bt] = bc;
    }
}

bool q_allocate(const q_alloc_item *items, int n, size_t budget_bytes, double max_error,
                int *choice)
{
    size_t min_bytes = 0, max_bytes = 0;
    for (int t = 0; t < n; t++) {
        QMC_ASSERT(items[t].n > 0 && items[t].n <= 256);
        size_t lo = SIZE_MAX, hi = 0;
        for (int c = 0; c < items[t].n; c++) {
            lo = items[t].bytes[c] < lo ? items[t].bytes[c] : lo;
            hi = items[t].bytes[c] > hi ? items[t].bytes[c] : hi;
        }
        min_bytes += lo, max_bytes += hi;
    }
    /* each tensor may lose up to a unit to the rounding: keep units fine
     * against the number of tensors */
    size_t limit = budget_bytes ? budget_bytes : max_bytes;
    size_t units = (size_t)n * 32 > ALLOC_UNITS ? (size_t)n * 32 : ALLOC_UNITS;
    size_t unit = limit / units + 1;
    int64_t cap = (int64_t)(limit / unit);
    double *best;
    int64_t *used;
    uint8_t *arg = alloc_dp(items, n, unit, cap, &best, &used);
    bool ok = true;
    int64_t x = cap;
    if (!budget_bytes) { /* the fewest units whose error fits */
        x = -1;
        for (int64_t i = 0; i <= cap && x < 0; i++)
            if (best[i] <= max_error) x = i;
        if (x < 0) x = cap, ok = false;
    }
    if (best[x] == INFINITY) { /* the rounding ate the budget: cheapest everywhere */
        for (int t = 0; t < n; t++) {
            choice[t] = 0;
            for (int c = 1; c < items[t].n; c++)
                if (items[t].bytes[c] < items[t].bytes[choice[t]]) choice[t] = c;
        }
        ok = min_bytes <= limit;
    } else {
        alloc_backtrack(items, n, unit, cap, arg, x, choice);
    }
    free(best);
    free(used);
    free(arg);
    if (budget_bytes && ok) fill_budget(items, n, budget_bytes, choice);
    if (!budget_bytes && ok) trim_bytes(items, n, max_error, choice);
    return ok;
}
