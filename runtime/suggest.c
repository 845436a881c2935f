/* suggest.c: "did you mean": the one edit distance of qmc and of compiled
 * models, so `qmc run --ipnut` and `./model --ipnut` suggest alike.
 *
 * Needs: nothing but libc (compiled models link it). Guarantees: a
 * suggestion is close (at most a third of the name's length in edits, at
 * least 1 allowed, never every character) and never the name itself. */
#include <string.h>

#include "rt.h"

/* Optimal string alignment distance: insertions, deletions, substitutions
 * and swaps of adjacent characters ("rleu" is one edit from "relu"). */
int rt_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 256 || lb > 256) return (int)(la > lb ? la : lb);
    int rows[3][257]; /* rows i-2, i-1 and i of the table */
    int *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        int *t = prev2;
        prev2 = prev, prev = cur, cur = t;
    }
    return prev[lb];
}

const char *rt_closest(const char *name, const char *const *candidates, int n)
{
    const char *best = NULL;
    int best_d = 0;
    for (int i = 0; i < n; i++) {
        int d = rt_edit_distance(name, candidates[i]);
        if (d == 0) continue; /* the name itself is no suggestion */
        if (!best || d < best_d) best = candidates[i], best_d = d;
    }
    /* close enough: at most a third of the name's length, and at least 1 edit allowed */
    int limit = (int)strlen(name) / 3;
    if (limit < 1) limit = 1;
    /* and not every character replaced ('z' is no typo of 'x') */
    return best && best_d <= limit && best_d < (int)strlen(name) ? best : NULL;
}
