/* precision.c: the select-precision pass.
 *
 * Needs: a graph after shape inference.
 * Guarantees: every weight used as the weight matrix of a linear layer is
 * marked is_matrix and has a precision (qformat); no other node changes.
 * Precedence, lowest first: the spec's default, the model's annotation
 * (`fc1.weight @int4`), the spec's GLOB=FORMAT overrides in order. */
#include <fnmatch.h>
#include <string.h>

#include "compiler.h"

static const char valid_formats[] =
    "f32, int8, int4, int4:g64, int4:g128, fp8e4m3, fp8e5m2; modifiers :asym :mse :minmax :a8";

/* Splits "int4:g64:asym" at ':' and applies each modifier. */
static bool apply_modifier(const char *m, size_t n, qp_format *f, char *err, size_t err_size)
{
    bool int4 = f->format == QFMT_INT4 || f->format == QFMT_UINT4;
    if (n == 3 && !strncmp(m, "g32", 3) && int4) return f->group = 32, true;
    if (n == 3 && !strncmp(m, "g64", 3) && int4) return f->group = 64, true;
    if (n == 4 && !strncmp(m, "g128", 4) && int4) return f->group = 128, true;
    if (n == 4 && !strncmp(m, "asym", 4) && int4) return f->format = QFMT_UINT4, true;
    if (n == 3 && !strncmp(m, "mse", 3) && f->format != QFMT_F32) return f->clip = Q_CLIP_MSE, true;
    if (n == 6 && !strncmp(m, "minmax", 6) && f->format != QFMT_F32) return f->clip = Q_CLIP_MINMAX, true;
    if (n == 2 && !strncmp(m, "a8", 2) && (f->format == QFMT_INT8 || int4)) return f->act8 = true, true;
    snprintf(err, err_size, "modifier ':%.*s' does not apply here (formats: %s)", (int)n, m, valid_formats);
    return false;
}

bool qp_format_parse(const char *text, qp_format *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    size_t n = strcspn(text, ":");
    static const struct {
        const char *name;
        q_format format;
        int group;
    } bases[] = {{"f32", QFMT_F32, 0},          {"int8", QFMT_INT8, 0},           {"int4", QFMT_INT4, 32},
                 {"int4g64", QFMT_INT4, 64},    {"int4g128", QFMT_INT4, 128},     {"fp8e4m3", QFMT_FP8_E4M3, 0},
                 {"fp8e5m2", QFMT_FP8_E5M2, 0}};
    bool found = false;
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++)
        if (strlen(bases[i].name) == n && !strncmp(bases[i].name, text, n)) {
            out->format = bases[i].format;
            out->group = bases[i].group;
            found = true;
        }
    if (!found) {
        snprintf(err, err_size, "unknown format '%.*s' (formats: %s)", (int)n, text, valid_formats);
        return false;
    }
    for (const char *p = text + n; *p == ':';) {
        p++;
        size_t m = strcspn(p, ":");
        if (!apply_modifier(p, m, out, err, err_size)) return false;
        p += m;
    }
    return true;
}

const char *qp_format_name(fe_arena *arena, const qp_format *f)
{
    const char *base = f->format == QFMT_UINT4 ? "int4" : q_format_name(f->format);
    return fe_arena_printf(arena, "%s%s%s%s%s", base,
                           f->group ? fe_arena_printf(arena, ":g%d", f->group) : "",
                           f->format == QFMT_UINT4 ? ":asym" : "", f->clip == Q_CLIP_MSE ? ":mse" : "",
                           f->act8 ? ":a8" : "");
}

bool qp_spec_parse(fe_arena *arena, const char *text, qp_spec *out)
{
    memset(out, 0, sizeof *out);
    char err[256];
    int n = 1;
    for (const char *p = text; *p; p++) n += *p == ',';
    out->overrides = fe_arena_alloc(arena, sizeof *out->overrides * (size_t)n);
    bool have_default = false;
    for (const char *p = text;;) {
        size_t len = strcspn(p, ",");
        char *item = fe_arena_strndup(arena, p, len);
        char *eq = strchr(item, '=');
        if (!eq && have_default) {
            fe_error_plain("--precision: '%s' is a second default format; per-tensor overrides are GLOB=FORMAT", item);
            return false;
        }
        qp_format f;
        if (!qp_format_parse(eq ? eq + 1 : item, &f, err, sizeof err)) {
            fe_error_plain("--precision: %s", err);
            return false;
        }
        if (eq) {
            if (eq == item) return fe_error_plain("--precision: '%s' has an empty tensor name", item), false;
            *eq = 0;
            out->overrides[out->n_overrides++] = (qp_override){item, f, false};
        } else {
            out->dflt = f;
            have_default = true;
        }
        if (!p[len]) break;
        p += len + 1;
    }
    return true;
}

/* The precision an annotation such as @int4g64 asks for. */
static bool annotation_format(const ir_node *w, qp_format *f)
{
    char err[256];
    if (qp_format_parse(w->precision, f, err, sizeof err)) return true;
    fe_error(w->precision_loc, "%s", err);
    return false;
}

static void list_matrices(const ir_graph *g)
{
    fprintf(stderr, "  weight matrices of linear layers:");
    int shown = 0;
    for (int i = 0; i < g->n_nodes && shown < 40; i++)
        if (g->nodes[i].is_matrix) fprintf(stderr, " %s", g->nodes[i].name), shown++;
    fprintf(stderr, shown == 40 ? " ...\n" : "\n");
}

bool ir_select_precision(ir_graph *g, const qp_spec *spec)
{
    qp_spec none = {.dflt = {.format = QFMT_F32, .clip = Q_CLIP_MINMAX}};
    if (!spec) spec = &none;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == IR_OP_LINEAR) {
            ir_node *w = &g->nodes[g->nodes[i].inputs[1]];
            if (w->op == IR_OP_WEIGHT) w->is_matrix = true;
        }
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *w = &g->nodes[i];
        if (w->op == IR_OP_WEIGHT && w->precision && !w->is_matrix) {
            fe_error(w->precision_loc, "'@%s' asks to quantize '%s', but only weights used as a linear layer's "
                                       "weight matrix can be quantized", w->precision, w->name);
            return false;
        }
        if (!w->is_matrix) continue;
        w->qformat = spec->dflt;
        if (w->precision && !annotation_format(w, &w->qformat)) return false;
        for (int o = 0; o < spec->n_overrides; o++)
            if (fnmatch(spec->overrides[o].glob, w->name, 0) == 0) {
                w->qformat = spec->overrides[o].f;
                spec->overrides[o].used = true;
            }
    }
    for (int o = 0; o < spec->n_overrides; o++)
        if (!spec->overrides[o].used) {
            fe_error_plain("--precision: '%s' matches no weight matrix of a linear layer", spec->overrides[o].glob);
            list_matrices(g);
            return false;
        }
    return true;
}
