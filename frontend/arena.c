/* arena.c: bulk-freed memory for everything the compiler builds.
 *
 * Blocks of 64 KiB (larger requests get a block of their own); nothing is
 * freed individually. Passes allocate freely and the driver frees the arena
 * once at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

struct fe_arena_block {
    fe_arena_block *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

enum { ARENA_BLOCK_SIZE = 64 * 1024 };

_Noreturn void fe_assert_fail(const char *file, int line, const char *cond)
{
    fflush(stdout);
    fprintf(stderr, "qmc: internal error: %s:%d: assertion failed: %s\n", file, line, cond);
    abort();
}

void *fe_arena_alloc(fe_arena *arena, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    fe_arena_block *b = arena->head;
    if (!b || b->size - b->used < size) {
        size_t cap = size > ARENA_BLOCK_SIZE / 4 ? size : ARENA_BLOCK_SIZE;
        b = malloc(sizeof *b + cap);
        if (!b) {
            fprintf(stderr, "qmc: error: out of memory (%zu bytes)\n", size);
            exit(1);
        }
        b->size = cap;
        b->used = 0;
        if (cap != ARENA_BLOCK_SIZE && arena->head) {
            /* a big one-off block: keep the current small block in front */
            b->next = arena->head->next;
            arena->head->next = b;
        } else {
            b->next = arena->head;
            arena->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += size;
    arena->total += size;
    memset(p, 0, size);
    return p;
}

void *fe_arena_grow(fe_arena *arena, void *old, size_t n_old, size_t n_new, size_t elem)
{
    void *p = fe_arena_alloc(arena, n_new * elem);
    if (old && n_old) memcpy(p, old, n_old * elem);
    return p;
}

char *fe_arena_strndup(fe_arena *arena, const char *s, size_t n)
{
    char *p = fe_arena_alloc(arena, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *fe_arena_strdup(fe_arena *arena, const char *s)
{
    return fe_arena_strndup(arena, s, strlen(s));
}

char *fe_arena_printf(fe_arena *arena, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = fe_arena_alloc(arena, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void fe_arena_free(fe_arena *arena)
{
    fe_arena_block *b = arena->head;
    while (b) {
        fe_arena_block *next = b->next;
        free(b);
        b = next;
    }
    arena->head = NULL;
    arena->total = 0;
}
