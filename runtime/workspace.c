/* workspace.c: workspace buffers and the clock, for callers of models.
 *
 * Guarantees: qmc_workspace_alloc returns 64-byte aligned memory (a valid
 * pointer even for size 0) or NULL; qmc_now_ns is CLOCK_MONOTONIC. */
#include <stdlib.h>
#include <time.h>

#include "rt.h"

void *qmc_workspace_alloc(size_t size)
{
    /* aligned_alloc wants a multiple of the alignment */
    size_t rounded = size ? (size + 63) / 64 * 64 : 64;
    if (rounded < size) return NULL;
    return aligned_alloc(64, rounded);
}

void qmc_workspace_free(void *workspace) { free(workspace); }

uint64_t qmc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
