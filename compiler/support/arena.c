/* arena.c: bulk-freed memory for everything the compiler builds.
 *
 * Blocks of 64 KiB (larger requests get a block of their own); nothing is
 * freed individually. Passes allocate freely and the driver frees the arena
 * once at the end. A loop that needs the same kind of memory over and over
 * (one weight after another) resets its arena instead: the blocks are kept
 * and handed out again (the smallest that fits), so their pages are not
 * faulted in anew each time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

struct sup_arena_block {
    sup_arena_block *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

enum { ARENA_BLOCK_SIZE = 64 * 1024 };

/* The smallest block kept by sup_arena_reset with room for cap bytes,
 * taken off the list, or NULL. */
static sup_arena_block *spare_block(sup_arena *arena, size_t cap)
{
    sup_arena_block **best = NULL;
    for (sup_arena_block **p = &arena->spare; *p; p = &(*p)->next)
        if ((*p)->size >= cap && (!best || (*p)->size < (*best)->size)) best = p;
    if (!best) return NULL;
    sup_arena_block *b = *best;
    *best = b->next;
    return b;
}

void *sup_arena_alloc(sup_arena *arena, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    sup_arena_block *b = arena->head;
    if (!b || b->size - b->used < size) {
        size_t cap = size > ARENA_BLOCK_SIZE / 4 ? size : ARENA_BLOCK_SIZE;
        b = spare_block(arena, cap);
        if (!b) {
            b = malloc(sizeof *b + cap);
            if (!b) {
                fprintf(stderr, "qmc: error: out of memory (%zu bytes)\n", size);
                exit(1);
            }
            b->size = cap;
        }
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

void *sup_arena_grow(sup_arena *arena, void *old, size_t n_old, size_t n_new, size_t elem)
{
    void *p = sup_arena_alloc(arena, n_new * elem);
    if (old && n_old) memcpy(p, old, n_old * elem);
    return p;
}

char *sup_arena_strndup(sup_arena *arena, const char *s, size_t n)
{
    char *p = sup_arena_alloc(arena, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *sup_arena_strdup(sup_arena *arena, const char *s)
{
    return sup_arena_strndup(arena, s, strlen(s));
}

char *sup_arena_printf(sup_arena *arena, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = sup_arena_alloc(arena, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static void free_blocks(sup_arena_block *b)
{
    while (b) {
        sup_arena_block *next = b->next;
        free(b);
        b = next;
    }
}

void sup_arena_reset(sup_arena *arena)
{
    sup_arena_block *b = arena->head;
    while (b) {
        sup_arena_block *next = b->next;
        b->next = arena->spare;
        arena->spare = b;
        b = next;
    }
    arena->head = NULL;
    arena->total = 0;
}

void sup_arena_free(sup_arena *arena)
{
    free_blocks(arena->head);
    free_blocks(arena->spare);
    arena->head = arena->spare = NULL;
    arena->total = 0;
}
