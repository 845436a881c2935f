/* precision.c: the select-precision pass.
 *
 * Needs: a graph after shape inference; pass_plan_precision runs before
 * calibration, pass_select_precision after it.
 * Guarantees: every weight used as the weight matrix of a linear layer is
 * marked is_matrix and has a precision (qformat); no other node changes.
 * Every error of the spec (an override matching nothing, a budget below
 * what the candidates reach) is reported by the plan, before calibration.
 * Precedence, lowest first: the spec's default, the model's annotation
 * (`fc1.weight @int4`), the spec's GLOB=FORMAT overrides in order.
 * Weights whose format resolves to `auto` are chosen by measurement
 * (sensitivity.c, allocate.c); a format with `:a8:static` gets its activation scale
 * from the calibrate pass. g->selection records where every matrix's
 * format came from, for the report. */
#include <fnmatch.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "passes.h"

/* "auto", "auto:a8", "auto:a8:static": the modifiers land in *f. */
static bool parse_auto(const char *text, bool *is_auto, q_precision *f, char *err, size_t err_size)
{
    *is_auto = strncmp(text, "auto", 4) == 0 && (text[4] == 0 || text[4] == ':');
    if (!*is_auto) return true;
    /* parse the modifiers as if on int8, the format that accepts both */
    char buf[64];
    if (strlen(text) + 1 > sizeof buf) {
        snprintf(err, err_size, "'%s' is not a format", text);
        return false;
    }
    snprintf(buf, sizeof buf, "int8%s", text + 4);
    for (const char *p = text + 4; *p == ':';) {
        p++;
        size_t m = strcspn(p, ":");
        if (!(m == 2 && !strncmp(p, "a8", 2)) && !(m == 6 && !strncmp(p, "static", 6))) {
            snprintf(err, err_size,
                     "modifier ':%.*s' does not apply to auto (auto takes :a8 and :a8:static)",
                     (int)m, p);
            return false;
        }
        p += m;
    }
    if (!q_precision_parse(buf, f, err, err_size)) return false;
    f->format = QFMT_F32; /* a placeholder until the search chooses */
    return true;
}

bool pass_spec_parse(sup_arena *arena, const char *text, pass_spec *out)
{
    memset(out, 0, sizeof *out);
    out->text = sup_arena_strdup(arena, text);
    char err[256];
    int n = 1;
    for (const char *p = text; *p; p++) n += *p == ',';
    out->overrides = sup_arena_alloc(arena, sizeof *out->overrides * (size_t)n);
    bool have_default = false;
    for (const char *p = text;;) {
        size_t len = strcspn(p, ",");
        char *item = sup_arena_strndup(arena, p, len);
        char *eq = strchr(item, '=');
        if (!eq && have_default) {
            sup_error_plain("--precision: '%s' is a second default format; per-tensor overrides "
                            "are GLOB=FORMAT",
                            item);
            return false;
        }
        q_precision f;
        bool is_auto;
        const char *ftext = eq ? eq + 1 : item;
        if (!parse_auto(ftext, &is_auto, &f, err, sizeof err) ||
            (!is_auto && !q_precision_parse(ftext, &f, err, sizeof err))) {
            sup_error_plain("--precision: %s", err);
            return false;
        }
        if (eq) {
            if (eq == item) {
                sup_error_plain("--precision: '%s' has an empty tensor name", item);
                return false;
            }
            *eq = 0;
            out->overrides[out->n_overrides++] = (pass_override){item, f, is_auto, false};
        } else {
            out->dflt = f;
            out->dflt_automatic = is_auto;
            have_default = true;
        }
        if (!p[len]) break;
        p += len + 1;
    }
    return true;
}

bool pass_spec_has_auto(const pass_spec *spec)
{
    bool any = spec->dflt_automatic;
    for (int o = 0; o < spec->n_overrides; o++) any |= spec->overrides[o].automatic;
    return any;
}

bool pass_spec_has_static(const pass_spec *spec)
{
    bool any = spec->dflt.act_static;
    for (int o = 0; o < spec->n_overrides; o++) any |= spec->overrides[o].f.act_static;
    return any;
}

bool pass_spec_has_gptq(const pass_spec *spec)
{
    bool any = spec->dflt.gptq;
    for (int o = 0; o < spec->n_overrides; o++) any |= spec->overrides[o].f.gptq;
    return any;
}

bool pass_spec_has_imat(const pass_spec *spec)
{
    bool any = spec->dflt.imat;
    for (int o = 0; o < spec->n_overrides; o++) any |= spec->overrides[o].f.imat;
    return any;
}

bool pass_spec_has_scaling(const pass_spec *spec)
{
    bool any = spec->dflt.awq || spec->dflt.smooth;
    for (int o = 0; o < spec->n_overrides; o++)
        any |= spec->overrides[o].f.awq || spec->overrides[o].f.smooth;
    return any;
}

/* The precision an annotation such as @int4g64 asks for. */
static bool annotation_format(const ir_node *w, q_precision *f)
{
    char err[256];
    if (q_precision_parse(w->precision, f, err, sizeof err)) return true;
    sup_error(w->precision_loc, "%s", err);
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

/* Marks the weight matrices of linear layers and convs (a conv's weight
 * is the matrix [M, C/groups·kh·kw]); returns how many. */
static int mark_matrices(ir_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == IR_OP_LINEAR || g->nodes[i].op == IR_OP_CONV) {
            ir_node *w = &g->nodes[g->nodes[i].inputs[1]];
            if (w->op == IR_OP_WEIGHT) w->is_matrix = true;
        }
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].is_matrix;
    return n;
}

/* Resolves one matrix's format by precedence; d records where it came from. */
static bool resolve(ir_node *w, const pass_spec *spec, bool have_spec, ir_decision *d,
                    bool *is_auto)
{
    w->qformat = spec->dflt;
    *is_auto = spec->dflt_automatic;
    d->origin = have_spec ? IR_FROM_DEFAULT : IR_FROM_NONE;
    const fe_quantized *given = w->tensor ? w->tensor->given : NULL;
    if (given) { /* the codes the model came with, not quantized again */
        w->qformat = pass_given_precision(given);
        *is_auto = false;
        d->origin = IR_FROM_MODEL;
        d->origin_text = d->why = given->how;
    }
    if (w->precision) {
        if (!annotation_format(w, &w->qformat)) return false;
        *is_auto = false;
        d->origin = IR_FROM_ANNOTATION;
        d->origin_text = w->precision;
    }
    for (int o = 0; o < spec->n_overrides; o++)
        if (fnmatch(spec->overrides[o].glob, w->name, 0) == 0) {
            w->qformat = spec->overrides[o].f;
            *is_auto = spec->overrides[o].automatic;
            spec->overrides[o].used = true;
            d->origin = IR_FROM_OVERRIDE;
            d->origin_text = spec->overrides[o].glob;
        }
    if (*is_auto) d->origin = IR_FROM_AUTO;
    return true;
}

/* `:a8:static`: the activation scale calibration measured. */
static bool static_scales(ir_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *w = &g->nodes[i];
        /* (auto's placeholder is f32: the search sets the scale) */
        if (!w->is_matrix || !w->qformat.act_static || w->qformat.format == QFMT_F32 ||
            w->qformat.act_model) /* the model's scale */
            continue;
        if (!g->calib) {
            sup_error_plain("--precision: '%s' needs a calibrated activation scale for '%s'; pass "
                            "--calib NAME=FILE.npy",
                            q_precision_name(g->arena, &w->qformat), w->name);
            return false;
        }
        w->qformat.act_scale = pass_calib_act_scale(g, i);
    }
    return true;
}

q_precision pass_spec_auto_act(const pass_spec *spec)
{
    q_precision act = spec->dflt;
    for (int o = 0; o < spec->n_overrides && !spec->dflt_automatic; o++)
        if (spec->overrides[o].automatic) {
            act = spec->overrides[o].f;
            break;
        }
    return act;
}

/* The smallest bytes the candidates reach, against --budget-bits: an error
 * before anything is calibrated or measured. */
static bool check_budget(const ir_graph *g, const pass_spec *spec)
{
    const ir_selection *sel = g->selection;
    size_t min_bytes = 0, fixed_bytes = 0;
    int64_t weights = 0;
    for (int i = 0; i < sel->n; i++) {
        const ir_decision *d = &sel->d[i];
        const ir_node *w = &g->nodes[d->node];
        weights += w->shape[0] * w->shape[1];
        if (d->origin != IR_FROM_AUTO) {
            size_t b = q_precision_bytes(&w->qformat, w->shape[0], w->shape[1]);
            fixed_bytes += b, min_bytes += b;
            continue;
        }
        size_t lo = SIZE_MAX;
        for (int k = 0; k < d->n_cands; k++) lo = d->cands[k].bytes < lo ? d->cands[k].bytes : lo;
        min_bytes += lo;
    }
    if (spec->budget_bits <= 0 ||
        (size_t)floor(spec->budget_bits * (double)weights / 8) >= min_bytes)
        return true;
    sup_error_plain("--budget-bits %g is below the smallest achievable %.4g bits per weight (every "
                    "searched weight matrix at its smallest format%s)",
                    spec->budget_bits, 8.0 * (double)min_bytes / (double)weights,
                    fixed_bytes ? ", the others as --precision fixes them" : "");
    return false;
}

bool pass_plan_precision(ir_graph *g, const pass_spec *spec, int64_t samples)
{
    pass_spec none = {.dflt = {.format = QFMT_F32, .clip = Q_CLIP_MINMAX}};
    bool have_spec = spec != NULL;
    if (!spec) spec = &none;
    ir_selection *sel = sup_arena_alloc(g->arena, sizeof *sel);
    sel->spec_text = spec->text;
    sel->calib_error = sel->predicted_error = -1;
    sel->d = sup_arena_alloc(g->arena, sizeof *sel->d * (size_t)(mark_matrices(g) + 1));
    g->selection = sel;
    bool any_auto = false;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *w = &g->nodes[i];
        if (w->op == IR_OP_WEIGHT && w->precision && !w->is_matrix) {
            sup_error(w->precision_loc,
                      "'@%s' asks to quantize '%s', but only weights used as a linear layer's "
                      "or a conv's weight matrix can be quantized",
                      w->precision, w->name);
            return false;
        }
        if (!w->is_matrix) continue;
        ir_decision *d = &sel->d[sel->n++];
        d->node = i;
        d->sensitivity = d->sensitivity_ref = d->gain = -1;
        bool is_auto;
        if (!resolve(w, spec, have_spec, d, &is_auto)) return false;
        any_auto |= is_auto;
        sel->second_moments |= !is_auto && (w->qformat.gptq || w->qformat.awq || w->qformat.smooth);
    }
    for (int o = 0; o < spec->n_overrides; o++)
        if (!spec->overrides[o].used) {
            sup_error_plain("--precision: '%s' matches no weight matrix of a linear layer or conv",
                            spec->overrides[o].glob);
            list_matrices(g);
            return false;
        }
    if (!any_auto) return true;
    q_precision act = pass_spec_auto_act(spec);
    pass_sens_plan(g, spec, &act, samples);
    return check_budget(g, spec);
}

bool pass_select_precision(ir_graph *g, const pass_spec *spec, const pass_calib_data *data)
{
    if (!static_scales(g)) return false;
    bool any_auto = false;
    for (int i = 0; g->selection && i < g->selection->n; i++)
        any_auto |= g->selection->d[i].origin == IR_FROM_AUTO;
    return !any_auto || pass_select_auto(g, spec, data);
}
