/* allocate.c: automatic precision selection, the choosing half of the
 * select-precision pass (sensitivity.c measures).
 *
 * Needs: select precision has resolved every fixed format and marked the
 * other weight matrices IR_FROM_AUTO in g->selection; the calibrate pass
 * has run (g->calib).
 * Guarantees: every auto matrix gets a format from its candidates: the
 * least output error whose average bits per weight (over all weight
 * matrices, f32 counted as 32) is within --budget-bits, or the fewest bytes
 * whose output error on the calibration samples is within --max-error.
 * Each decision keeps its measurements and a one-line reason.
 *
 * Method (1 and 2, candidates and their sensitivity: sensitivity.c).
 * 3. Allocation: errors of separately quantized tensors add up to first
 *    order, so the choice is a multiple-choice knapsack over bytes, solved
 *    exactly by a dynamic program over bytes in 4096 units (32 per tensor if
 *    that is more; each candidate's bytes rounded up, so the answer never
 *    exceeds the budget),
 *    then topped up greedily with the bytes rounding left over (q_allocate).
 * 4. Verification: the chosen combination runs on every calibration sample.
 *    With --max-error, if it misses, the target is tightened by the ratio of
 *    measured to predicted error and the allocation re-run (or, when that
 *    changes nothing, the tensor with the best error saved per byte is
 *    upgraded) until it holds. With --budget-bits the best uniform format
 *    within the budget is measured too and wins if it is better.
 * Everything is deterministic: no randomness, fixed sample order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

enum { REPAIR_ROUNDS = 8 };
/* fast: a check this far (as a ratio) from the estimate makes the chosen
 * candidates worth measuring */
#define REFINE 1.1
/* fast, --budget-bits: a measured error this many times the predicted one
 * makes the uniform alternative worth a second check */
#define DISAGREE 1.25

/* ---- explaining ------------------------------------------------------------ */

/* Ranks the matrices by sensitivity at int4:g32 (or at their own format). */
static void rank_tensors(ir_selection *sel)
{
    for (int i = 0; i < sel->n; i++) {
        ir_decision *d = &sel->d[i];
        int r = pass_sens_ref_candidate(d);
        d->sensitivity_ref =
            r >= 0 && d->cands[r].sensitivity >= 0 ? d->cands[r].sensitivity : d->sensitivity;
    }
    for (int i = 0; i < sel->n; i++) {
        ir_decision *d = &sel->d[i];
        if (d->sensitivity_ref < 0) continue;
        d->rank = 1;
        for (int j = 0; j < sel->n; j++)
            if (sel->d[j].sensitivity_ref > d->sensitivity_ref ||
                (sel->d[j].sensitivity_ref == d->sensitivity_ref && j < i))
                d->rank++;
    }
}

static const char *origin_why(sup_arena *a, const ir_decision *d)
{
    switch (d->origin) {
    case IR_FROM_NONE: return "no --precision: f32";
    case IR_FROM_DEFAULT: return "the --precision default";
    case IR_FROM_ANNOTATION:
        return sup_arena_printf(a, "fixed by the model's annotation @%s", d->origin_text);
    case IR_FROM_OVERRIDE:
        return sup_arena_printf(a, "fixed by the --precision override '%s'", d->origin_text);
    case IR_FROM_MODEL: return d->origin_text; /* where the model's codes came from */
    case IR_FROM_AUTO: break;
    }
    return "";
}

/* The reason for an automatic choice: what the best smaller format would
 * cost in error, or what a larger one would save. */
static const char *auto_why(sup_arena *a, const ir_selection *sel, const ir_decision *d,
                            int n_ranked)
{
    const ir_candidate *ch = &d->cands[d->chosen];
    const char *name = q_precision_name(a, &ch->f);
    int smaller = -1, larger = -1;
    for (int k = 0; k < d->n_cands; k++) {
        const ir_candidate *x = &d->cands[k];
        if (x->sensitivity < 0) continue;
        if (x->bytes < ch->bytes && (smaller < 0 || x->sensitivity < d->cands[smaller].sensitivity))
            smaller = k;
        if (x->bytes > ch->bytes && x->sensitivity < ch->sensitivity &&
            (larger < 0 || x->sensitivity < d->cands[larger].sensitivity))
            larger = k;
    }
    const char *rank =
        d->rank ? sup_arena_printf(a, " (sensitivity rank %d of %d)", d->rank, n_ranked) : "";
    if (smaller < 0 && larger < 0)
        return sup_arena_printf(a, "%s: the smallest format, and no larger one measures better%s",
                                name, rank);
    if (smaller < 0)
        return sup_arena_printf(
            a, "%s: the smallest format; %s would remove %.2g error for %zu more bytes%s", name,
            q_precision_name(a, &d->cands[larger].f),
            ch->sensitivity - d->cands[larger].sensitivity, d->cands[larger].bytes - ch->bytes,
            rank);
    const char *s = sup_arena_printf(a, "%s: %s, the best smaller format, would add %.2g error%s",
                                     name, q_precision_name(a, &d->cands[smaller].f),
                                     d->cands[smaller].sensitivity - ch->sensitivity, rank);
    if (larger >= 0 && sel->budget_bits > 0)
        s = sup_arena_printf(a, "%s; %s would remove %.2g more but does not fit the budget", s,
                             q_precision_name(a, &d->cands[larger].f),
                             ch->sensitivity - d->cands[larger].sensitivity);
    return s;
}

/* Why the chosen method: the best other method with the same storage
 * (format and group), or "" when none was weighed. */
static const char *method_why(sup_arena *a, const ir_decision *d)
{
    const ir_candidate *ch = &d->cands[d->chosen];
    const char *m = q_precision_method(&ch->f);
    int other = -1;
    for (int k = 0; k < d->n_cands && ch->sensitivity >= 0; k++) {
        const ir_candidate *x = &d->cands[k];
        if (x->sensitivity < 0 || x->f.format != ch->f.format || x->f.group != ch->f.group ||
            !strcmp(q_precision_method(&x->f), m))
            continue;
        if (other < 0 || x->sensitivity < d->cands[other].sensitivity) other = k;
    }
    if (other < 0 || ch->f.format == QFMT_F32) return "";
    return sup_arena_printf(a, "; method %s: %.2g error, the best other at this size %s %.2g", m,
                            ch->sensitivity, q_precision_method(&d->cands[other].f),
                            d->cands[other].sensitivity);
}

static void explain(ir_graph *g)
{
    ir_selection *sel = g->selection;
    rank_tensors(sel);
    int ranked = 0;
    for (int i = 0; i < sel->n; i++) ranked += sel->d[i].rank > 0;
    for (int i = 0; i < sel->n; i++) {
        ir_decision *d = &sel->d[i];
        d->why = d->origin == IR_FROM_AUTO
                     ? sup_arena_printf(g->arena, "%s%s", auto_why(g->arena, sel, d, ranked),
                                        method_why(g->arena, d))
                     : origin_why(g->arena, d);
        for (int k = 0; k < d->n_cands; k++)
            d->cands[k].dequant = NULL; /* freed with the scratch arena */
    }
}

/* ---- the search ------------------------------------------------------------ */

typedef struct search {
    pass_sens *c;
    q_alloc_item *items; /* auto tensors only, their measured candidates and f32 */
    int *auto_of;        /* items index -> c->t index */
    int **cand_of;       /* items index, choice -> candidate index */
    int n_items;
    int *config; /* per c->t: candidate, or -1 for f32 without a candidate */
    int *base;   /* per c->t: the fixed formats alone (what sensitivities add to) */
    size_t fixed_bytes;
    int64_t weights; /* all matrices */
} search;

static void build_items(search *s)
{
    pass_sens *c = s->c;
    s->items = sup_arena_alloc(c->tmp, sizeof *s->items * (size_t)(c->n_t + 1));
    s->auto_of = sup_arena_alloc(c->tmp, sizeof(int) * (size_t)(c->n_t + 1));
    s->cand_of = sup_arena_alloc(c->tmp, sizeof(int *) * (size_t)(c->n_t + 1));
    s->config = sup_arena_alloc(c->tmp, sizeof(int) * (size_t)(c->n_t + 1));
    s->base = sup_arena_alloc(c->tmp, sizeof(int) * (size_t)(c->n_t + 1));
    for (int i = 0; i < c->n_t; i++) {
        pass_sens_tensor *t = &c->t[i];
        s->weights += t->w->shape[0] * t->w->shape[1];
        s->config[i] = s->base[i] = t->automatic ? -1 : t->fixed;
        if (!t->automatic) {
            s->fixed_bytes += t->d->cands[t->fixed].bytes;
            continue;
        }
        size_t *bytes = sup_arena_alloc(c->tmp, sizeof(size_t) * (size_t)t->d->n_cands);
        double *err = sup_arena_alloc(c->tmp, sizeof(double) * (size_t)t->d->n_cands);
        int *map = sup_arena_alloc(c->tmp, sizeof(int) * (size_t)t->d->n_cands), n = 0;
        /* exact: the measured candidates; fast: every one (all estimated) */
        for (int k = 0; k < t->d->n_cands; k++)
            if (c->fast || t->d->cands[k].measured || t->d->cands[k].f.format == QFMT_F32)
                map[n] = k, bytes[n++] = t->d->cands[k].bytes;
        s->auto_of[s->n_items] = i;
        s->cand_of[s->n_items] = map;
        s->items[s->n_items++] = (q_alloc_item){bytes, err, n};
    }
}

/* The measured sensitivities into the items. */
static void fill_errors(search *s)
{
    for (int j = 0; j < s->n_items; j++) {
        const ir_decision *d = s->c->t[s->auto_of[j]].d;
        double *err = (double *)s->items[j].error;
        for (int m = 0; m < s->items[j].n; m++) err[m] = d->cands[s->cand_of[j][m]].sensitivity;
    }
}

/* A remark on the search after the ones before it (base: the note before
 * this step, which a step of several rounds keeps). */
static void set_note(ir_selection *sel, sup_arena *a, const char *base, const char *text)
{
    sel->note = base ? sup_arena_printf(a, "%s; %s", base, text) : text;
}

static void apply_choice(search *s, const int *choice)
{
    for (int j = 0; j < s->n_items; j++) s->config[s->auto_of[j]] = s->cand_of[j][choice[j]];
}

static double bits_of(const search *s, const int *choice)
{
    return 8.0 * (double)(q_alloc_bytes(s->items, s->n_items, choice) + s->fixed_bytes) /
           (double)s->weights;
}

static bool same_format(const q_precision *a, const q_precision *b)
{
    return a->format == b->format && a->group == b->group && a->clip == b->clip &&
           a->act8 == b->act8 && a->act_static == b->act_static && a->gptq == b->gptq;
}

/* The choices of a uniform format f (measured on every auto tensor); false
 * if some tensor has no measurement of it. */
static bool uniform_choice(const search *s, const q_precision *f, int *uni)
{
    for (int j = 0; j < s->n_items; j++) {
        const ir_decision *d = s->c->t[s->auto_of[j]].d;
        uni[j] = -1;
        for (int m = 0; m < s->items[j].n; m++)
            if (same_format(&d->cands[s->cand_of[j][m]].f, f)) uni[j] = m;
        if (uni[j] < 0) return false;
    }
    return true;
}

/* --budget-bits: the uniform format with the least predicted error within
 * the budget is measured too, and kept if it does better. */
static bool uniform_fallback(search *s, int *choice, double *err, double *err_add)
{
    const ir_decision *d0 = s->c->t[s->auto_of[0]].d;
    const q_precision *best = NULL;
    double best_pred = INFINITY;
    int *uni = sup_arena_alloc(s->c->tmp, sizeof(int) * (size_t)s->n_items);
    for (int k = 0; k < d0->n_cands; k++) {
        if (!uniform_choice(s, &d0->cands[k].f, uni) ||
            bits_of(s, uni) > s->c->g->selection->budget_bits)
            continue;
        double pred = q_alloc_error(s->items, s->n_items, uni);
        if (pred < best_pred) best_pred = pred, best = &d0->cands[k].f;
    }
    if (!best) return true;
    uniform_choice(s, best, uni);
    if (!memcmp(uni, choice, sizeof(int) * (size_t)s->n_items)) return true;
    double uerr, uerr_add;
    apply_choice(s, uni);
    if (!pass_sens_verify(s->c, s->config, &uerr, &uerr_add)) return false;
    if (uerr < *err) {
        memcpy(choice, uni, sizeof(int) * (size_t)s->n_items);
        ir_selection *sel = s->c->g->selection;
        set_note(
            sel, s->c->g->arena, sel->note,
            sup_arena_printf(
                s->c->g->arena,
                "uniform %s measured better than the allocation (%.4g against %.4g) and was kept",
                q_precision_name(s->c->g->arena, best), uerr, *err));
        *err = uerr, *err_add = uerr_add;
    }
    apply_choice(s, choice);
    return true;
}

/* Upgrades the tensor with the most predicted error saved per byte. */
static bool upgrade_one(search *s, int *choice)
{
    int bj = -1, bk = -1;
    double best = 0;
    for (int j = 0; j < s->n_items; j++) {
        const q_alloc_item *it = &s->items[j];
        for (int k = 0; k < it->n; k++) {
            double saved = it->error[choice[j]] - it->error[k];
            if (saved <= 0 || it->bytes[k] <= it->bytes[choice[j]]) continue;
            double per_byte = saved / (double)(it->bytes[k] - it->bytes[choice[j]]);
            if (per_byte > best) best = per_byte, bj = j, bk = k;
        }
    }
    if (bj < 0) return false;
    choice[bj] = bk;
    return true;
}

/* --max-error: tighten the target until the measured error holds. */
static bool repair(search *s, int *choice, double target_add, double *err, double *err_add)
{
    ir_selection *sel = s->c->g->selection;
    int *next = sup_arena_alloc(s->c->tmp, sizeof(int) * (size_t)s->n_items);
    const char *before = sel->note;
    for (int round = 0; round < REPAIR_ROUNDS && *err > sel->max_error; round++) {
        target_add *= fmin(
            0.9, *err_add > 0 ? pass_sens_additive_target(s->c, sel->max_error) / *err_add : 0.5);
        q_allocate(s->items, s->n_items, 0, target_add, next);
        if (!memcmp(next, choice, sizeof(int) * (size_t)s->n_items)) {
            if (!upgrade_one(s, next)) break;
        }
        memcpy(choice, next, sizeof(int) * (size_t)s->n_items);
        apply_choice(s, choice);
        if (!pass_sens_verify(s->c, s->config, err, err_add)) return false;
        set_note(sel, s->c->g->arena, before,
                 sup_arena_printf(s->c->g->arena,
                                  "repaired in %d round%s: the allocation missed --max-error",
                                  round + 1, round ? "s" : ""));
    }
    return true;
}

/* The allocation under the budget or the error target (additive units),
 * into choice; false if the target cannot be met (then the least error). */
static bool allocate_once(search *s, const pass_spec *spec, double target_add, int *choice)
{
    if (spec->budget_bits > 0) {
        size_t budget = (size_t)floor(spec->budget_bits * (double)s->weights / 8);
        q_allocate(s->items, s->n_items, budget - s->fixed_bytes, 0, choice);
        return true;
    }
    if (target_add > 0 && q_allocate(s->items, s->n_items, 0, target_add, choice)) return true;
    q_allocate(s->items, s->n_items, 0, 0, choice);
    return false;
}

static double predicted(const search *s, const int *choice)
{
    return pass_sens_user_from_additive(s->c, q_alloc_error(s->items, s->n_items, choice) +
                                                  s->c->g->selection->fixed_error);
}

/* fast: when the check is worse than the estimate by more than REFINE (or,
 * with --max-error, better by as much), the candidates chosen are measured
 * end to end, the allocation re-run with what that taught and verified,
 * and the better of the two kept (once). */
static bool refine(search *s, const pass_spec *spec, int *choice, double target_add, double *err,
                   double *err_add)
{
    pass_sens *c = s->c;
    ir_selection *sel = c->g->selection;
    double pred = sel->predicted_error;
    /* (with a budget, a check better than the estimate needs nothing; with
     * an error target it may leave bytes to save) */
    if (*err <= pred * REFINE && (spec->budget_bits > 0 || *err * REFINE >= pred)) return true;
    int measured = pass_sens_refine(c, sel->sens_samples, s->base, s->config);
    if (measured < 0) return false;
    if (measured == 0) return true;
    fill_errors(s);
    int *next = sup_arena_alloc(c->tmp, sizeof(int) * (size_t)(s->n_items + 1));
    allocate_once(s, spec, target_add, next);
    const char *what = sup_arena_printf(
        c->g->arena,
        "the check (%.4g) was %.0f%% off the estimate (%.4g): %d chosen candidate%s measured", *err,
        100 * fabs(*err / pred - 1), pred, measured, measured > 1 ? "s" : "");
    if (!memcmp(next, choice, sizeof(int) * (size_t)s->n_items)) {
        sel->predicted_error = predicted(s, choice);
        set_note(sel, c->g->arena, sel->note,
                 sup_arena_printf(c->g->arena, "%s; the allocation stayed", what));
        return true;
    }
    double e2, e2_add;
    apply_choice(s, next);
    if (!pass_sens_verify(c, s->config, &e2, &e2_add)) return false;
    bool better = spec->budget_bits > 0 ? e2 < *err
                  : *err > spec->max_error
                      ? e2 < *err
                      : e2 <= spec->max_error && q_alloc_bytes(s->items, s->n_items, next) <
                                                     q_alloc_bytes(s->items, s->n_items, choice);
    set_note(sel, c->g->arena, sel->note,
             sup_arena_printf(c->g->arena, "%s; the new allocation measured %.4g and was %s", what,
                              e2, better ? "kept" : "dropped"));
    if (better) {
        memcpy(choice, next, sizeof(int) * (size_t)s->n_items);
        *err = e2, *err_add = e2_add;
    }
    sel->predicted_error = predicted(s, choice);
    apply_choice(s, choice);
    return true;
}

static bool allocate(search *s, const pass_spec *spec)
{
    pass_sens *c = s->c;
    ir_selection *sel = c->g->selection;
    int *choice = sup_arena_alloc(c->tmp, sizeof(int) * (size_t)(s->n_items + 1));
    double target_add = 0;
    if (spec->max_error > 0)
        target_add = pass_sens_additive_target(c, spec->max_error) - sel->fixed_error;
    if (!allocate_once(s, spec, target_add, choice))
        fprintf(stderr,
                "qmc: warning: --max-error %g cannot be met: the predicted error stays above it; "
                "choosing the least error\n",
                spec->max_error);
    sel->predicted_error = predicted(s, choice);
    apply_choice(s, choice);
    double err, err_add;
    if (!pass_sens_verify(c, s->config, &err, &err_add)) return false;
    if (c->fast && !refine(s, spec, choice, target_add, &err, &err_add)) return false;
    /* exact: the best uniform format is always measured too; fast: when the
     * check still disagrees with the estimate */
    bool disagree = err > DISAGREE * sel->predicted_error;
    if (spec->budget_bits > 0 && (!c->fast || disagree) &&
        !uniform_fallback(s, choice, &err, &err_add))
        return false;
    if (spec->max_error > 0 && err > spec->max_error &&
        !repair(s, choice, target_add, &err, &err_add))
        return false;
    if (spec->max_error > 0 && err > spec->max_error)
        fprintf(
            stderr,
            "qmc: warning: the chosen formats give output error %.4g on the calibration set, above "
            "--max-error %g\n",
            err, spec->max_error);
    sel->calib_error = err;
    apply_choice(s, choice);
    return true;
}

/* Sets every matrix's format from the configuration. */
static void commit(search *s)
{
    for (int i = 0; i < s->c->n_t; i++) {
        pass_sens_tensor *t = &s->c->t[i];
        int k = s->config[i];
        t->d->chosen = k;
        t->d->sensitivity = k >= 0 ? t->d->cands[k].sensitivity : 0;
        if (t->automatic) t->w->qformat = t->d->cands[k].f;
    }
}

static const char *metric_name(const ir_graph *g)
{
    int logits = 0;
    for (int o = 0; o < g->n_outputs; o++) logits += g->outputs[o].logits;
    return logits == g->n_outputs ? "kl" : logits ? "mixed" : "rel_rms";
}

static bool select_with(ir_graph *g, const pass_spec *spec, const pass_calib_data *data,
                        sup_arena *tmp)
{
    ir_selection *sel = g->selection;
    pass_sens c;
    if (!pass_sens_open(&c, g, data, tmp)) return false;
    bool ok = true;
    sup_progress pr;
    sup_progress_begin(&pr, c.fast ? "estimating candidates" : "quantizing candidates");
    for (int i = 0; i < c.n_t && ok; i++) {
        pass_sens_tensor *t = &c.t[i];
        if (!t->automatic) pass_sens_fixed_candidate(g, t);
        ok = pass_sens_prepare_candidates(&c, t);
        if (t->automatic && !c.fast) pass_sens_choose_measured(t->d);
        sup_progress_update(&pr, i + 1, c.n_t);
    }
    sup_progress_end(&pr);
    search s = {.c = &c};
    if (ok) {
        pass_sens_alloc_acc(&c);
        build_items(&s);
        sel->sens_samples = pass_sens_count(&c, spec);
        ok = pass_sens_measure(&c, sel->sens_samples, s.config);
    }
    if (ok) {
        fill_errors(&s);
        sel->fixed_error = pass_sens_additive(&c, c.base);
        if (s.n_items)
            ok = allocate(&s, spec);
        else
            ok = pass_sens_verify(&c, s.config, &sel->calib_error, &(double){0});
    }
    if (ok) commit(&s);
    pass_sens_close(&c);
    return ok;
}

bool pass_select_auto(ir_graph *g, const pass_spec *spec, const pass_calib_data *data)
{
    ir_selection *sel = g->selection;
    if (!g->calib) {
        sup_error_plain(
            "--precision auto needs --calib NAME=FILE.npy: calibration samples to measure on");
        return false;
    }
    if ((spec->budget_bits > 0) == (spec->max_error > 0)) {
        sup_error_plain("--precision auto needs one of --budget-bits B or --max-error E");
        return false;
    }
    double t0 = sup_now();
    sel->automatic = true;
    sel->budget_bits = spec->budget_bits;
    sel->max_error = spec->max_error;
    sel->metric = metric_name(g);
    sup_arena tmp = {0};
    bool ok = select_with(g, spec, data, &tmp);
    sup_arena_free(&tmp);
    if (!ok) return false;
    explain(g);
    sel->seconds = sup_now() - t0;
    return true;
}

bool pass_measure_fixed(ir_graph *g, const pass_calib_data *data)
{
    ir_selection *sel = g->selection;
    if (!g->calib || !sel) return true;
    double t0 = sup_now();
    sel->metric = metric_name(g);
    sup_arena tmp = {0};
    pass_sens c;
    bool ok = pass_sens_open(&c, g, data, &tmp);
    for (int i = 0; ok && i < c.n_t; i++) {
        pass_sens_fixed_candidate(g, &c.t[i]);
        ok = pass_sens_prepare_candidates(&c, &c.t[i]);
    }
    if (ok) {
        search s = {.c = &c};
        pass_sens_alloc_acc(&c);
        build_items(&s);
        int *none = sup_arena_alloc(&tmp, sizeof(int) * (size_t)(c.n_t + 1));
        for (int i = 0; i < c.n_t; i++) none[i] = -1;
        sel->sens_samples = pass_sens_count(&c, NULL);
        double e_add;
        ok = pass_sens_measure(&c, sel->sens_samples, none) &&
             pass_sens_verify(&c, s.config, &sel->calib_error, &e_add);
        if (ok) commit(&s);
    }
    pass_sens_close(&c);
    sup_arena_free(&tmp);
    if (!ok) return false;
    explain(g);
    sel->seconds = sup_now() - t0;
    return true;
}
