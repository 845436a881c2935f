/* diag.c: user-facing diagnostics in the format of clang and cproc.
 *
 *   model.qm:7:14: error: unknown weight 'fc4.weight'; did you mean 'fc3.weight'?
 *       h = linear(x, fc4.weight)
 *                     ^~~~~~~~~~
 *
 * Sources are registered once loaded so a diagnostic found in any later pass
 * can quote the line its location points at. */
#include <stdlib.h>
#include <string.h>

#include "support.h"

typedef struct diag_source {
    const char *path, *text;
    size_t len;
} diag_source;

static struct {
    FILE *stream;
    diag_source sources[16];
    int n_sources;
    int errors;
} diag;

void sup_diag_add_source(const char *path, const char *text, size_t len)
{
    for (int i = 0; i < diag.n_sources; i++)
        if (strcmp(diag.sources[i].path, path) == 0) {
            diag.sources[i].text = text;
            diag.sources[i].len = len;
            return;
        }
    if (diag.n_sources == (int)(sizeof diag.sources / sizeof diag.sources[0])) return;
    diag.sources[diag.n_sources++] = (diag_source){path, text, len};
}

void sup_diag_set_stream(FILE *stream) { diag.stream = stream; }

void sup_diag_reset(void)
{
    diag.n_sources = 0;
    diag.errors = 0;
}

int sup_error_count(void) { return diag.errors; }

static FILE *out(void) { return diag.stream ? diag.stream : stderr; }

/* Prints source line `line` of the registered file and a caret under col. */
static void quote_line(sup_loc loc)
{
    const diag_source *src = NULL;
    for (int i = 0; i < diag.n_sources; i++)
        if (strcmp(diag.sources[i].path, loc.file) == 0) src = &diag.sources[i];
    if (!src) return;
    const char *p = src->text, *end = src->text + src->len;
    for (int l = 1; l < loc.line; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return;
        p = nl + 1;
    }
    if (p == end && loc.line > 1) return; /* the line after the last one */
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    if (eol > p && eol[-1] == '\r') eol--;
    FILE *f = out();
    fprintf(f, "%.*s\n", (int)(eol - p), p);
    for (int c = 1; c < loc.col && p + c - 1 < eol; c++) fputc(p[c - 1] == '\t' ? '\t' : ' ', f);
    fputc('^', f);
    for (int c = 1; c < loc.len && p + loc.col - 1 + c < eol; c++) fputc('~', f);
    fputc('\n', f);
}

void sup_verror(const char *kind, sup_loc loc, const char *fmt, va_list ap)
{
    FILE *f = out();
    fflush(stdout);
    if (loc.file && loc.line > 0)
        fprintf(f, "%s:%d:%d: %s: ", loc.file, loc.line, loc.col, kind);
    else if (loc.file)
        fprintf(f, "%s: %s: ", loc.file, kind);
    else
        fprintf(f, "qmc: %s: ", kind);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    if (loc.file && loc.line > 0) quote_line(loc);
    if (strcmp(kind, "error") == 0) diag.errors++;
}

void sup_error(sup_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_verror("error", loc, fmt, ap);
    va_end(ap);
}

void sup_note(sup_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_verror("note", loc, fmt, ap);
    va_end(ap);
}

void sup_warning(sup_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_verror("warning", loc, fmt, ap);
    va_end(ap);
}

void sup_error_plain(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_verror("error", (sup_loc){0}, fmt, ap);
    va_end(ap);
}

_Noreturn void sup_assert_fail(const char *file, int line, const char *cond)
{
    fflush(stdout);
    fprintf(stderr, "qmc: internal error: %s:%d: assertion failed: %s\n", file, line, cond);
    abort();
}
