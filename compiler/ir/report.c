/* report.c: what calibration and precision selection decided, for people
 * (-v: a table on stderr) and for tools (--report FILE.json, which
 * `qmc report` turns into a page).
 *
 * Needs: the quantize-weights pass has run (g->selection is set by select
 * precision; g->calib by calibrate if there was calibration data).
 * Guarantees: the JSON holds, per weight matrix, its name, shape, format,
 * bits per weight and bytes (which add up to the totals), SQNR,
 * sensitivity and the reason; totals; the output error of the final model
 * on the calibration set; and a --precision spec that reproduces the
 * choice. The fields are listed in docs/calibration.md. Numbers that are
 * unknown or infinite are null. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct totals {
    int64_t weights;
    size_t bytes, f32_bytes;
} totals;

static size_t matrix_bytes(const ir_node *w)
{
    return w->qw ? w->qw->bytes : q_precision_bytes(&w->qformat, w->shape[0], w->shape[1]);
}

static totals sum_up(const ir_graph *g)
{
    totals t = {0};
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *w = &g->nodes[i];
        if (!w->is_matrix) continue;
        t.weights += w->shape[0] * w->shape[1];
        t.bytes += matrix_bytes(w);
        t.f32_bytes += (size_t)(w->shape[0] * w->shape[1]) * 4;
    }
    return t;
}

static const char *mode_name(const ir_selection *sel)
{
    if (!sel || !sel->spec_text) return "f32";
    if (!sel->automatic) return "fixed";
    return sel->budget_bits > 0 ? "auto-budget-bits" : "auto-max-error";
}

static const char *act_name(const q_precision *f)
{
    return !f->act8 ? "f32" : f->act_scale > 0 ? "int8-static" : "int8-dynamic";
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* A number, or null when unknown (< 0 if negative_unknown) or not finite. */
static void json_num(FILE *f, double v, bool negative_unknown)
{
    if (!isfinite(v) || (negative_unknown && v < 0))
        fputs("null", f);
    else
        fprintf(f, "%.9g", v);
}

static void json_shape(FILE *f, const ir_node *n)
{
    fputc('[', f);
    for (int d = 0; d < n->rank; d++) fprintf(f, "%s%lld", d ? ", " : "", (long long)n->shape[d]);
    fputc(']', f);
}

static void json_format_fields(FILE *f, sup_arena *a, const q_precision *q)
{
    const char *base = q_format_name(q_format_sym(q->format));
    fprintf(f, "\"format\": ");
    json_str(f, q_precision_name(a, q));
    fprintf(f,
            ", \"base\": \"%s\", \"group\": %d, \"symmetric\": %s, \"clip\": \"%s\", "
            "\"method\": \"%s\", \"activations\": \"%s\"",
            base, q->group, q_format_is_asym(q->format) ? "false" : "true",
            q->format == QFMT_F32   ? "none"
            : q->clip == Q_CLIP_MSE ? "mse"
                                    : "minmax",
            q_precision_method(q), act_name(q));
    if (q->act8 && q->act_scale > 0) fprintf(f, ", \"act_scale\": %.9g", q->act_scale);
    if (q->act8 && q->act_model) /* the scale and zero point of the model's QuantizeLinear */
        fprintf(f, ", \"act_zero\": %d, \"act_origin\": \"model\"", q->act_zero);
}

static void json_candidates(FILE *f, sup_arena *a, const ir_decision *d)
{
    fprintf(f, ",\n      \"candidates\": [");
    for (int k = 0; k < d->n_cands; k++) {
        const ir_candidate *c = &d->cands[k];
        fprintf(f, "%s\n        {\"format\": ", k ? "," : "");
        json_str(f, q_precision_name(a, &c->f));
        fprintf(f,
                ", \"bits_per_weight\": %.12g, \"bytes\": %zu, \"sqnr_db\": ", c->bits_per_weight,
                c->bytes);
        json_num(f, c->sqnr_db, false);
        fprintf(f, ", \"proxy\": ");
        json_num(f, c->f.format == QFMT_F32 ? 0 : c->proxy, false);
        fprintf(f, ", \"sensitivity\": ");
        json_num(f, c->sensitivity, true);
        fprintf(f, ", \"measured\": %s}", c->measured ? "true" : "false");
    }
    fprintf(f, "]");
}

static const ir_decision *decision_of(const ir_graph *g, int32_t node)
{
    for (int i = 0; g->selection && i < g->selection->n; i++)
        if (g->selection->d[i].node == node) return &g->selection->d[i];
    return NULL;
}

static const char *origin_name(ir_origin o)
{
    static const char *const names[] = {"none",     "default", "annotation",
                                        "override", "auto",    "model"};
    return names[o];
}

static void json_tensor(FILE *f, sup_arena *a, const ir_graph *g, const ir_node *w, bool first)
{
    const ir_decision *d = decision_of(g, (int32_t)(w - g->nodes));
    int64_t count = w->shape[0] * w->shape[1];
    size_t bytes = matrix_bytes(w);
    fprintf(f, "%s\n    {\"name\": ", first ? "" : ",");
    json_str(f, w->name);
    fprintf(f, ", \"shape\": ");
    json_shape(f, w);
    fprintf(f, ", ");
    json_format_fields(f, a, &w->qformat);
    fprintf(f,
            ",\n      \"weights\": %lld, \"bits_per_weight\": %.12g, \"bytes\": %zu, \"sqnr_db\": ",
            (long long)count, 8.0 * (double)bytes / (double)count, bytes);
    json_num(f, w->qw ? w->qw->stats.sqnr_db : INFINITY, false);
    fprintf(f, ", \"sensitivity\": ");
    json_num(f, d ? d->sensitivity : -1, true);
    fprintf(f, ", \"sensitivity_int4_g32\": ");
    json_num(f, d ? d->sensitivity_ref : -1, true);
    fprintf(f, ", \"gain\": ");
    json_num(f, d ? d->gain : -1, true);
    fprintf(f, ", \"rank\": %d, \"origin\": \"%s\", \"why\": ", d ? d->rank : 0,
            origin_name(d ? d->origin : IR_FROM_NONE));
    json_str(f, d && d->why ? d->why : "");
    fprintf(f, ", \"scaling\": ");
    if (d && d->scaling)
        json_str(f, d->scaling);
    else
        fputs("null", f);
    if (d && d->origin == IR_FROM_AUTO) json_candidates(f, a, d);
    fputc('}', f);
}

static void json_calibration(FILE *f, const ir_graph *g)
{
    const ir_calibration *c = g->calib;
    if (!c) return (void)fprintf(f, "null");
    fprintf(f, "{\"samples\": %lld, \"method\": \"%s\", \"percentile\": ", (long long)c->samples,
            q_observer_name(c->method));
    json_num(f, c->method == Q_OBS_PERCENTILE ? c->percentile : NAN, false);
    fprintf(f, ", \"seconds\": %.3f, \"activations\": [", c->seconds);
    bool first = true;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_calib_stats *s = c->of_node[i];
        if (!s) continue;
        fprintf(f, "%s\n    {\"name\": ", first ? "" : ",");
        json_str(f, g->nodes[i].name);
        fprintf(f, ", \"shape\": ");
        json_shape(f, &g->nodes[i]);
        fprintf(f,
                ", \"min\": %.9g, \"max\": %.9g, \"absmax\": %.9g, \"clip\": %.9g, \"int8_scale\": "
                "%.9g}",
                s->min, s->max, s->hist.absmax, s->clip, s->clip > 0 ? s->clip / 127 : 1.0);
        first = false;
    }
    fprintf(f, "]}");
}

/* A --precision spec that reproduces every matrix's format. */
static const char *reproduce_spec(sup_arena *a, const ir_graph *g)
{
    const char *s = "f32";
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *w = &g->nodes[i];
        if (!w->is_matrix || w->qformat.format == QFMT_F32) continue;
        char *name = sup_arena_alloc(a, 2 * strlen(w->name) + 1), *p = name;
        for (const char *q = w->name; *q; q++) {
            if (strchr("*?[]\\", *q)) *p++ = '\\';
            *p++ = *q;
        }
        s = sup_arena_printf(a, "%s,%s=%s", s, name, q_precision_name(a, &w->qformat));
    }
    return s;
}

static void json_report(FILE *f, sup_arena *a, const ir_graph *g)
{
    const ir_selection *sel = g->selection;
    totals t = sum_up(g);
    fprintf(f, "{\n  \"qmc_report\": 1,\n  \"model\": ");
    json_str(f, g->name);
    fprintf(f, ",\n  \"source\": ");
    json_str(f, g->source);
    fprintf(f, ",\n  \"precision\": ");
    if (sel && sel->spec_text)
        json_str(f, sel->spec_text);
    else
        fputs("null", f);
    fprintf(f, ",\n  \"mode\": \"%s\",\n  \"budget_bits\": ", mode_name(sel));
    json_num(f, sel && sel->budget_bits > 0 ? sel->budget_bits : NAN, false);
    fprintf(f, ",\n  \"max_error\": ");
    json_num(f, sel && sel->max_error > 0 ? sel->max_error : NAN, false);
    fprintf(f, ",\n  \"error_metric\": ");
    if (sel && sel->metric)
        json_str(f, sel->metric);
    else
        fputs("null", f);
    fprintf(f, ",\n  \"calib_error\": ");
    json_num(f, sel ? sel->calib_error : -1, true);
    fprintf(f, ",\n  \"predicted_error\": ");
    json_num(f, sel ? sel->predicted_error : -1, true);
    fprintf(f,
            ",\n  \"total_weights\": %lld,\n  \"total_weight_bytes\": %zu,\n  "
            "\"f32_weight_bytes\": %zu,\n"
            "  \"avg_bits_per_weight\": %.12g,\n  \"precision_spec\": ",
            (long long)t.weights, t.bytes, t.f32_bytes,
            t.weights ? 8.0 * (double)t.bytes / (double)t.weights : 0);
    json_str(f, reproduce_spec(a, g));
    fprintf(f, ",\n  \"selection\": ");
    if (sel && (sel->automatic || sel->sens_samples)) {
        fprintf(f, "{\"method\": ");
        json_str(f, sel->method ? sel->method : "exact");
        fprintf(f, ", \"method_why\": ");
        json_str(f, sel->method_why ? sel->method_why
                                    : "the formats are fixed: each is measured once");
        fprintf(f,
                ", \"gptq_candidates\": %s, \"sensitivity_samples\": %d, \"verify_runs\": %d, "
                "\"seconds\": %.3f, \"note\": ",
                sel->automatic && sel->gptq_candidates ? "true" : "false", sel->sens_samples,
                sel->verify_runs, sel->seconds);
        if (sel->note)
            json_str(f, sel->note);
        else
            fputs("null", f);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fprintf(f, ",\n  \"calibration\": ");
    json_calibration(f, g);
    fprintf(f, ",\n  \"tensors\": [");
    bool first = true;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].is_matrix) json_tensor(f, a, g, &g->nodes[i], first), first = false;
    fprintf(f, "\n  ]\n}\n");
}

bool ir_report_write_json(const ir_graph *g, const char *path)
{
    char *buf = NULL, err[256];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        sup_error_plain("out of memory writing the report");
        return false;
    }
    sup_arena a = {0};
    json_report(f, &a, g);
    sup_arena_free(&a);
    fclose(f);
    rt_write_piece piece = {buf, len};
    bool ok = rt_file_write_atomic(path, &piece, 1, err, sizeof err) == QMC_OK;
    if (!ok) sup_error_plain("cannot write the report '%s': %s", path, err);
    free(buf);
    return ok;
}

/* ---- the table --------------------------------------------------------------- */

static const char *num_or_dash(sup_arena *a, double v, const char *fmt)
{
    return v < 0 || !isfinite(v) ? "-" : sup_arena_printf(a, fmt, v);
}

void ir_report_print_table(const ir_graph *g, FILE *out)
{
    const ir_selection *sel = g->selection;
    sup_arena a = {0};
    totals t = sum_up(g);
    fprintf(out, "precision of %s: %s", g->name, sel && sel->spec_text ? sel->spec_text : "f32");
    if (sel && sel->budget_bits > 0) fprintf(out, ", --budget-bits %g", sel->budget_bits);
    if (sel && sel->max_error > 0) fprintf(out, ", --max-error %g", sel->max_error);
    if (g->calib)
        fprintf(out, "; %lld calibration samples (%s, %.2f s)", (long long)g->calib->samples,
                q_observer_name(g->calib->method), g->calib->seconds);
    if (sel && sel->sens_samples)
        fprintf(out, ", sensitivity on %d (%s, %.2f s)", sel->sens_samples,
                sel->method ? sel->method : "exact", sel->seconds);
    int wn = 6, wf = 6;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].is_matrix) {
            wn = (int)fmax(wn, (double)strlen(g->nodes[i].name));
            wf = (int)fmax(wf, (double)strlen(q_precision_name(&a, &g->nodes[i].qformat)));
        }
    fprintf(out, "\n%-*s %-12s %-*s %-6s %6s %9s %8s %11s  %s\n", wn, "tensor", "shape", wf,
            "format", "method", "bits", "bytes", "SQNR dB", "sensitivity", "why");
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *w = &g->nodes[i];
        if (!w->is_matrix) continue;
        const ir_decision *d = decision_of(g, i);
        char shape[64];
        snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)w->shape[0],
                 (long long)w->shape[1]);
        size_t bytes = matrix_bytes(w);
        fprintf(out, "%-*s %-12s %-*s %-6s %6.3f %9zu %8s %11s  %s\n", wn, w->name, shape, wf,
                q_precision_name(&a, &w->qformat), q_precision_method(&w->qformat),
                8.0 * (double)bytes / (double)(w->shape[0] * w->shape[1]), bytes,
                num_or_dash(&a, w->qw ? w->qw->stats.sqnr_db : -1, "%.1f"),
                num_or_dash(&a, d ? d->sensitivity : -1, "%.3g"),
                sup_arena_printf(&a, "%s%s%s", d && d->why ? d->why : "",
                                 d && d->scaling ? "; " : "", d && d->scaling ? d->scaling : ""));
    }
    fprintf(out, "total: %lld weights in %zu bytes, %.4f bits per weight (f32: %zu bytes)",
            (long long)t.weights, t.bytes,
            t.weights ? 8.0 * (double)t.bytes / (double)t.weights : 0, t.f32_bytes);
    if (sel && sel->calib_error >= 0)
        fprintf(out, "; output error %.4g (%s) on the calibration set", sel->calib_error,
                !strcmp(sel->metric, "kl")        ? "mean KL"
                : !strcmp(sel->metric, "rel_rms") ? "relative RMS"
                                                  : "mixed");
    if (sel && sel->predicted_error >= 0) fprintf(out, ", predicted %.4g", sel->predicted_error);
    fputc('\n', out);
    if (sel && sel->method_why) fprintf(out, "method: %s\n", sel->method_why);
    if (sel && sel->note) fprintf(out, "note: %s\n", sel->note);
    sup_arena_free(&a);
}
