/* support.h: what every layer of the compiler uses, one section per source
 * file: arenas, diagnostics and the assert, and the progress bar. It
 * depends on nothing but libc: every other folder may include it.
 * Prefix sup_ (and the project's QMC_ macros). */
#ifndef QMC_SUPPORT_H
#define QMC_SUPPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define QMC_VERSION "0.2.0"

/* Internal invariant check: prints where it failed and aborts. Never used
 * for user errors. */
#define QMC_ASSERT(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) sup_assert_fail(__FILE__, __LINE__, #cond);                                   \
    } while (0)

/* ---- arena.c: bulk-freed memory ---------------------------------------- */

typedef struct sup_arena_block sup_arena_block;
typedef struct sup_arena {
    sup_arena_block *head;
    size_t total;           /* bytes handed out, for statistics */
    sup_arena_block *spare; /* blocks kept by sup_arena_reset, for reuse */
} sup_arena;

/* Zeroed, 16-byte aligned memory that lives until sup_arena_free. Aborts on
 * out-of-memory (the compiler cannot continue without it). */
void *sup_arena_alloc(sup_arena *arena, size_t size);
/* Grows an array allocated in the arena: returns a new copy of n_old * elem
 * bytes with room for n_new elements. */
void *sup_arena_grow(sup_arena *arena, void *old, size_t n_old, size_t n_new, size_t elem);
char *sup_arena_strdup(sup_arena *arena, const char *s);
char *sup_arena_strndup(sup_arena *arena, const char *s, size_t n);
char *sup_arena_printf(sup_arena *arena, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sup_arena_free(sup_arena *arena);
/* Forgets everything allocated (as free) but keeps the blocks, which later
 * allocations reuse (the smallest block that fits); sup_arena_free
 * releases them. For loops that need similar memory each time. */
void sup_arena_reset(sup_arena *arena);

/* ---- diag.c: diagnostics ----------------------------------------------- */

/* A place in a source file. line == 0 means "no source position"; len is
 * the number of columns to underline (0 or 1: just the caret). */
typedef struct sup_loc {
    const char *file;
    int line, col, len;
} sup_loc;

/* Registers a source text so diagnostics can quote its lines. The text must
 * outlive all diagnostics (it lives in an arena or a mapping). */
void sup_diag_add_source(const char *path, const char *text, size_t len);
/* Where diagnostics go (stderr by default); tests redirect it. */
void sup_diag_set_stream(FILE *stream);
/* Forgets all sources and counts (between independent compilations). */
void sup_diag_reset(void);

/* `file:line:col: error: message`, the source line and a caret. */
void sup_error(sup_loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same shape with `note:`, for context after an error. */
void sup_note(sup_loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `file:line:col: warning: ...` */
void sup_warning(sup_loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An error about something that has no source position (a command-line flag,
 * a binary file): `qmc: error: message`. */
void sup_error_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sup_verror(const char *kind, sup_loc loc, const char *fmt, va_list ap);
int sup_error_count(void);
/* Reports a failed QMC_ASSERT (`qmc: internal error: file:line: assertion
 * failed: cond`) and aborts. */
_Noreturn void sup_assert_fail(const char *file, int line, const char *cond);

/* ---- progress.c: progress bars and the clock ----------------------------- */

/* A progress bar on stderr, shown once the work has taken a second and only
 * if stderr is a terminal. */
typedef struct sup_progress {
    const char *what;
    double start, last;
    bool shown, tty;
} sup_progress;
void sup_progress_begin(sup_progress *p, const char *what);
void sup_progress_update(sup_progress *p, int64_t done, int64_t total);
/* The same with the work measured in bytes as well, the bar by bytes:
 * "weights [====      ] 12/291, 812 MB/s, 0:41 left". */
void sup_progress_update_bytes(sup_progress *p, int64_t done, int64_t total, double bytes,
                               double total_bytes);
void sup_progress_end(sup_progress *p);
/* Seconds on a monotonic clock. */
double sup_now(void);

/* The stages of a compile, each with its time, the resident set at its
 * end and the peak so far (-v): sup_stages_begin starts the clock (before
 * it, sup_stage_end records nothing), each sup_stage_end(name) closes the
 * stage since the previous one, sup_stages_print writes the table. */
void sup_stages_begin(void);
void sup_stage_end(const char *name);
/* A part of the stage just ended, with its own time (printed indented
 * under it). */
void sup_stage_part(const char *name, double seconds);
void sup_stages_print(FILE *out);

#endif
