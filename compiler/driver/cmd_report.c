/* cmd_report.c: `qmc report FILE.json --html OUT.html | --svg OUT.svg`
 * turns a precision report (--report of compile, run or eval) into one
 * self-contained page: per weight matrix a bar as long as its bytes,
 * coloured by format, beside a bar of its end-to-end sensitivity on a log
 * scale, with the reason on hover; the totals above; for HTML a table of
 * every number below. Nothing is loaded from elsewhere, so it works
 * offline. Written atomically. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

typedef struct row {
    const char *name, *shape, *format, *base, *why, *origin;
    int group;
    double bits, bytes, sqnr, sens;
} row;

typedef struct report {
    const char *model, *mode, *metric, *precision;
    double avg_bits, bytes, f32_bytes, calib_error, budget_bits, max_error;
    row *rows;
    int n;
} report;

static double num(const fe_json *o, const char *key, double dflt)
{
    const fe_json *v = fe_json_get(o, key);
    return v && v->kind == FE_JSON_NUMBER ? v->number : dflt;
}

static const char *str(const fe_json *o, const char *key, const char *dflt)
{
    const fe_json *v = fe_json_get(o, key);
    return v && v->kind == FE_JSON_STRING ? v->string : dflt;
}

static const char *shape_text(sup_arena *a, const fe_json *v)
{
    if (!v || v->kind != FE_JSON_ARRAY) return "";
    const char *s = "[";
    for (int i = 0; i < v->count; i++)
        s = sup_arena_printf(a, "%s%s%.0f", s, i ? ", " : "", v->items[i]->number);
    return sup_arena_printf(a, "%s]", s);
}

static bool load(sup_arena *a, const char *path, report *r)
{
    rt_mapped_file f;
    char err[256];
    size_t at;
    if (rt_file_map(path, &f, err, sizeof err) != QMC_OK) {
        sup_error_plain("cannot read '%s': %s", path, err);
        return false;
    }
    fe_json *j = fe_json_parse(a, (const char *)f.data, f.size, err, sizeof err, &at);
    rt_file_unmap(&f);
    if (!j) {
        sup_error_plain("%s: not JSON at byte %zu: %s", path, at, err);
        return false;
    }
    const fe_json *tensors = j->kind == FE_JSON_OBJECT ? fe_json_get(j, "tensors") : NULL;
    if (!tensors || tensors->kind != FE_JSON_ARRAY || !fe_json_get(j, "qmc_report")) {
        sup_error_plain("%s is not a qmc precision report (no 'qmc_report' and 'tensors')", path);
        return false;
    }
    r->model = str(j, "model", "?");
    r->mode = str(j, "mode", "?");
    r->metric = str(j, "error_metric", "");
    r->precision = str(j, "precision", "f32");
    r->avg_bits = num(j, "avg_bits_per_weight", 0);
    r->bytes = num(j, "total_weight_bytes", 0);
    r->f32_bytes = num(j, "f32_weight_bytes", 0);
    r->calib_error = num(j, "calib_error", -1);
    r->budget_bits = num(j, "budget_bits", -1);
    r->max_error = num(j, "max_error", -1);
    r->rows = sup_arena_alloc(a, sizeof *r->rows * (size_t)(tensors->count + 1));
    for (int i = 0; i < tensors->count; i++) {
        const fe_json *t = tensors->items[i];
        if (t->kind != FE_JSON_OBJECT) continue;
        r->rows[r->n++] = (row){str(t, "name", "?"),      shape_text(a, fe_json_get(t, "shape")),
                                str(t, "format", "?"),    str(t, "base", "f32"),
                                str(t, "why", ""),        str(t, "origin", ""),
                                (int)num(t, "group", 0),  num(t, "bits_per_weight", 0),
                                num(t, "bytes", 0),       num(t, "sqnr_db", -1),
                                num(t, "sensitivity", -1)};
    }
    return true;
}

/* ---- drawing ----------------------------------------------------------------- */

static const char *colour(const row *r)
{
    if (!strcmp(r->base, "int4"))
        return r->group == 32 ? "#2e7d32" : r->group == 64 ? "#66bb6a" : "#a5d6a7";
    if (!strcmp(r->base, "int3")) return r->group == 32 ? "#6a1b9a" : "#ab47bc";
    if (!strcmp(r->base, "int2")) return r->group == 32 ? "#c62828" : "#ef5350";
    if (!strcmp(r->base, "int8")) return "#1565c0";
    if (!strcmp(r->base, "fp8e4m3")) return "#ef6c00";
    if (!strcmp(r->base, "fp8e5m2")) return "#ffb74d";
    return "#9e9e9e";
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

static const char *human_bytes(sup_arena *a, double b)
{
    if (b >= 1 << 20) return sup_arena_printf(a, "%.2f MiB", b / (1 << 20));
    if (b >= 1 << 10) return sup_arena_printf(a, "%.1f KiB", b / (1 << 10));
    return sup_arena_printf(a, "%.0f B", b);
}

/* columns: name | format and bits | bytes bar and size | sensitivity bar and value */
enum {
    W = 1020,
    NAME_W = 180,
    FMT_X = 190,
    BYTES_X = 410,
    BYTES_W = 210,
    SENS_X = 700,
    SENS_W = 240,
    ROW_H = 22,
    TOP = 86
};

static void svg_legend(FILE *f, const report *r)
{
    static const struct {
        const char *label, *base;
        int group;
    } keys[] = {{"f32", "f32", 0},          {"int8", "int8", 0},      {"fp8 e4m3", "fp8e4m3", 0},
                {"fp8 e5m2", "fp8e5m2", 0}, {"int4 g32", "int4", 32}, {"int4 g64", "int4", 64},
                {"int4 g128", "int4", 128}};
    int x = FMT_X, y = TOP + r->n * ROW_H + 18;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        row k = {.base = keys[i].base, .group = keys[i].group};
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>", x, y,
                colour(&k));
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"small\">%s</text>\n", x + 16, y + 10,
                keys[i].label);
        x += 96;
    }
}

static void svg_row(FILE *f, sup_arena *a, const report *r, int i, double max_bytes, double lo,
                    double hi)
{
    const row *w = &r->rows[i];
    int y = TOP + i * ROW_H;
    fprintf(f, "<g><title>");
    xml_text(f, sup_arena_printf(
                    a, "%s %s: %s, %.4g bits/weight, %.0f bytes, SQNR %s, sensitivity %s. %s",
                    w->name, w->shape, w->format, w->bits, w->bytes,
                    w->sqnr >= 0 ? sup_arena_printf(a, "%.1f dB", w->sqnr) : "-",
                    w->sens >= 0 ? sup_arena_printf(a, "%.3g", w->sens) : "-", w->why));
    fprintf(f, "</title>\n<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", NAME_W, y + 15);
    xml_text(f, w->name);
    double bw = max_bytes > 0 ? BYTES_W * w->bytes / max_bytes : 0;
    fprintf(f, "</text><text x=\"%d\" y=\"%d\" class=\"small\">", FMT_X, y + 15);
    xml_text(f, sup_arena_printf(a, "%s  %.4g b/w", w->format, w->bits));
    fprintf(f, "</text><rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"16\" fill=\"%s\"/>", BYTES_X,
            y + 3, bw, colour(w));
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"small\">%s</text>", BYTES_X + bw + 4, y + 15,
            human_bytes(a, w->bytes));
    if (w->sens > 0 && hi > lo) {
        double sw = SENS_W * (log10(w->sens) - lo) / (hi - lo);
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"10\" fill=\"#c62828\" "
                "opacity=\"0.75\"/>",
                SENS_X, y + 6, sw < 2 ? 2 : sw);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"small\" text-anchor=\"end\">%s</text></g>\n", W - 6,
            y + 15, w->sens >= 0 ? sup_arena_printf(a, "%.2g", w->sens) : "-");
}

static void svg(FILE *f, sup_arena *a, const report *r)
{
    double max_bytes = 0, lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < r->n; i++) {
        max_bytes = fmax(max_bytes, r->rows[i].bytes);
        if (r->rows[i].sens > 0)
            lo = fmin(lo, log10(r->rows[i].sens)), hi = fmax(hi, log10(r->rows[i].sens));
    }
    if (hi > -INFINITY) lo = floor(lo) - (hi - lo < 1 ? 1 : 0), hi = ceil(hi);
    int h = TOP + r->n * ROW_H + 44;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d "
            "%d\" "
            "font-family=\"sans-serif\" font-size=\"13\">\n",
            W, h, W, h);
    fprintf(f, "<style>.small{font-size:11px;fill:#333}.head{font-size:12px;fill:#555}</style>\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"10\" y=\"22\" "
               "font-size=\"16\" "
               "font-weight=\"bold\">");
    const char *goal =
        r->budget_bits > 0 ? sup_arena_printf(a, " within %g bits per weight", r->budget_bits)
        : r->max_error > 0 ? sup_arena_printf(a, " within output error %g", r->max_error)
                           : "";
    xml_text(f, sup_arena_printf(a, "%s: --precision %s%s", r->model, r->precision, goal));
    fprintf(f, "</text>\n<text x=\"10\" y=\"44\">");
    const char *metric = !strcmp(r->metric, "kl")        ? "mean KL"
                         : !strcmp(r->metric, "rel_rms") ? "relative RMS"
                                                         : "error";
    const char *err = r->calib_error >= 0
                          ? sup_arena_printf(a, "; %s %.4g against f32 on the calibration set",
                                             metric, r->calib_error)
                          : "";
    xml_text(f, sup_arena_printf(a, "%.4g bits per weight, %s of weights (f32: %s)%s", r->avg_bits,
                                 human_bytes(a, r->bytes), human_bytes(a, r->f32_bytes), err));
    fprintf(f, "</text>\n<text x=\"%d\" y=\"%d\" class=\"head\">format</text>", FMT_X, TOP - 8);
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"head\">bytes, coloured by format</text>", BYTES_X,
            TOP - 8);
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"head\">", SENS_X, TOP - 8);
    if (hi > -INFINITY)
        fprintf(f, "sensitivity: error added alone (log, 1e%.0f to 1e%.0f)", lo, hi);
    else
        fprintf(f, "sensitivity (not measured)");
    fprintf(f, "</text>\n");
    for (int i = 0; i < r->n; i++) svg_row(f, a, r, i, max_bytes, lo, hi);
    svg_legend(f, r);
    fprintf(f, "</svg>\n");
}

static void html(FILE *f, sup_arena *a, const report *r)
{
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"/><title>");
    xml_text(f, sup_arena_printf(a, "qmc precision report: %s", r->model));
    fprintf(f, "</"
               "title>\n<style>body{font-family:sans-serif;margin:20px;color:#222}table{border-"
               "collapse:collapse;"
               "font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}"
               "td.n{text-align:right;font-variant-numeric:tabular-nums}</style></head><body>\n");
    svg(f, a, r);
    fprintf(f, "<table><tr><th>tensor</th><th>shape</th><th>format</th><th>bits</th><th>bytes</"
               "th><th>SQNR dB</th>"
               "<th>sensitivity</th><th>why</th></tr>\n");
    for (int i = 0; i < r->n; i++) {
        const row *w = &r->rows[i];
        fprintf(f, "<tr><td>");
        xml_text(f, w->name);
        fprintf(f, "</td><td>%s</td><td>", w->shape);
        xml_text(f, w->format);
        fprintf(f,
                "</td><td class=\"n\">%.4g</td><td class=\"n\">%.0f</td><td class=\"n\">%s</td>"
                "<td class=\"n\">%s</td><td>",
                w->bits, w->bytes, w->sqnr >= 0 ? sup_arena_printf(a, "%.1f", w->sqnr) : "-",
                w->sens >= 0 ? sup_arena_printf(a, "%.3g", w->sens) : "-");
        xml_text(f, w->why);
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "</table></body></html>\n");
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmc report REPORT.json (--html OUT.html | --svg OUT.svg)\n\n"
            "Draws a precision report (written by --report of compile, run or eval) as one page:\n"
            "a bar per weight matrix, as long as its bytes and coloured by format, and its\n"
            "end-to-end sensitivity on a log scale. Viewable offline in any browser.\n");
}

static bool write(const char *path, sup_arena *a, const report *r, bool as_html)
{
    char *buf = NULL, err[256];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        sup_error_plain("out of memory");
        return false;
    }
    if (as_html)
        html(f, a, r);
    else
        svg(f, a, r);
    fclose(f);
    rt_write_piece piece = {buf, len};
    bool ok = rt_file_write_atomic(path, &piece, 1, err, sizeof err) == QMC_OK;
    if (!ok) sup_error_plain("cannot write '%s': %s", path, err);
    free(buf);
    return ok;
}

int cli_report(int argc, char **argv)
{
    static const char *const known[] = {"--html", "--svg", "--help", NULL};
    cli c = {argc, argv, 1, "report", false};
    const char *in = NULL, *html_out = NULL, *svg_out = NULL;
    while (c.i < c.argc && !c.failed) {
        if (cli_flag(&c, "--help")) {
            usage(stdout);
            return 0;
        }
        if (cli_value(&c, "--html", &html_out) || cli_value(&c, "--svg", &svg_out)) continue;
        if (c.failed) break;
        if (c.argv[c.i][0] == '-' || in) {
            cli_unknown(&c, known);
            continue;
        }
        in = c.argv[c.i++];
    }
    if (c.failed) return 1;
    if (!in) {
        usage(stderr);
        return 1;
    }
    if (!html_out && !svg_out) {
        sup_error_plain("qmc report needs --html OUT.html or --svg OUT.svg");
        return 1;
    }
    sup_arena a = {0};
    report r = {0};
    bool ok = load(&a, in, &r) && (!html_out || write(html_out, &a, &r, true)) &&
              (!svg_out || write(svg_out, &a, &r, false));
    sup_arena_free(&a);
    return ok ? 0 : 1;
}
