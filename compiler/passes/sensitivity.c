/* sensitivity.c: automatic precision selection, the measuring half of the
 * select-precision pass.
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
 * Method.
 * 1. Candidates: f32, int8 per channel, FP8 E4M3/E5M2 per channel, int4 in
 *    groups of 32/64/128 (no larger than the row), symmetric or with zero
 *    points, min-max or MSE clipping; with auto:a8 the integer formats take
 *    int8 activations (dynamic, or :static from calibration).
 * 2. Sensitivity: for each calibration sample (evenly spaced, enough to
 *    cover 2048 output rows but at least 16: 16 sequences of tiny-gpt, all
 *    256 samples of digits; --sensitivity-samples overrides), one f32 run
 *    gives the reference; then for each matrix,
 *    from the last consumer to the first, each candidate replaces the weight
 *    and only the nodes from its first consumer on are re-run: the earlier
 *    nodes still hold this sample's f32 activations (the cache), because
 *    matrices are visited in decreasing order of their first consumer. The
 *    error this adds to the output (KL for @logits outputs, squared error
 *    relative to the output's energy otherwise) is the candidate's
 *    sensitivity. Memory: the candidates' dequantized weights (about 16x the
 *    f32 weights), not the samples.
 * 3. Allocation: errors of separately quantized tensors add up to first
 *    order, so the choice is a multiple-choice knapsack over bytes, solved
 *    exactly by a dynamic program over bytes in 4096 units (32 per tensor if
 *    that is more; each candidate's bytes rounded up, so the answer never
 *    exceeds the budget),
 *    then topped up greedily with the bytes rounding left over.
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

enum { QP_SENS_SAMPLES = 16, QP_SENS_ROWS = 2048, REPAIR_ROUNDS = 8 };

/* ---- measuring ------------------------------------------------------------ */

/* One weight matrix during selection. */
typedef struct sens_tensor {
    ir_decision *d;
    ir_node *w;
    bool automatic;
    int32_t first;        /* its first consumer */
    const float *orig;    /* the f32 values */
    int fixed;            /* !automatic: the candidate that is its format */
    int cur;              /* the candidate the interpreter has, -1: f32 */
    q_error_acc *acc;    /* [candidate][output] */
} sens_tensor;

typedef struct sens_ctx {
    ir_graph *g;
    sup_arena *tmp;
    interp *it;
    interp_file ins[PASS_MAX_CALIB];
    int n_ins;
    int64_t samples;
    int n_out;
    int64_t *out_count, *out_row;
    float **ref;
    double **ref_logp;
    q_error_acc *base; /* [output] */
    sens_tensor *t;
    int n_t;
} sens_ctx;

static int32_t first_consumer(const ir_graph *g, int32_t w)
{
    for (int32_t i = w + 1; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_inputs; j++)
            if (g->nodes[i].inputs[j] == w) return i;
    return g->n_nodes;
}

/* The additive error (mean over outputs of KL, or squared relative error). */
static double additive(const sens_ctx *c, const q_error_acc *acc)
{
    double e = 0;
    for (int o = 0; o < c->n_out; o++) e += acc[o].den > 0 ? acc[o].num / acc[o].den : 0;
    return e / c->n_out;
}

/* The error the user sees: mean over outputs of KL or relative RMS. */
static double user_error(const sens_ctx *c, const q_error_acc *acc)
{
    double e = 0;
    for (int o = 0; o < c->n_out; o++) e += q_error_value(&acc[o], c->g->outputs[o].logits);
    return e / c->n_out;
}

/* A user error target in additive units. */
static double additive_target(const sens_ctx *c, double e)
{
    double t = 0;
    for (int o = 0; o < c->n_out; o++) t += c->g->outputs[o].logits ? e : e * e;
    return t / c->n_out;
}

/* An additive error in the user's units (exact for a single output). */
static double user_from_additive(const sens_ctx *c, double e)
{
    int logits = 0;
    for (int o = 0; o < c->n_out; o++) logits += c->g->outputs[o].logits;
    return logits == 0 ? sqrt(e) : e;
}

static void set_candidate(sens_ctx *c, sens_tensor *t, int k)
{
    const ir_candidate *cand = &t->d->cands[k];
    if (!cand->dequant) k = -1;
    if (t->cur == k) return;
    interp_set_weight(c->it, t->d->node, cand->dequant ? cand->dequant : t->orig);
    interp_set_act8(c->it, t->d->node, cand->dequant && cand->f.act8, cand->f.act_scale);
    t->cur = k;
}

static void set_f32(sens_ctx *c, sens_tensor *t)
{
    if (t->cur < 0) return;
    interp_set_weight(c->it, t->d->node, t->orig);
    interp_set_act8(c->it, t->d->node, false, 0);
    t->cur = -1;
}

/* The reference of this sample: everything f32, a full run. */
static bool run_reference(sens_ctx *c, int64_t s)
{
    for (int i = 0; i < c->n_t; i++) set_f32(c, &c->t[i]);
    if (!interp_files_load(c->g, c->it, c->ins, c->n_ins, s) || !interp_run(c->it)) return false;
    for (int o = 0; o < c->n_out; o++) {
        memcpy(c->ref[o], interp_output(c->it, o), sizeof(float) * (size_t)c->out_count[o]);
        if (c->g->outputs[o].logits) q_log_softmax(c->ref[o], c->out_count[o], c->out_row[o], c->ref_logp[o]);
    }
    return true;
}

static void add_error(sens_ctx *c, q_error_acc *acc)
{
    for (int o = 0; o < c->n_out; o++)
        q_error_add(&acc[o], c->g->outputs[o].logits, c->ref[o], c->ref_logp[o], interp_output(c->it, o),
                     c->out_count[o], c->out_row[o]);
}

/* Sets every tensor to choice[i] (-1: f32) and re-runs from the first
 * changed consumer; adds the error to acc. */
static bool run_config(sens_ctx *c, const int *choice, q_error_acc *acc)
{
    int32_t first = c->g->n_nodes;
    for (int i = 0; i < c->n_t; i++) {
        if (choice[i] < 0 || !c->t[i].d->cands[choice[i]].dequant) continue;
        set_candidate(c, &c->t[i], choice[i]);
        if (c->t[i].first < first) first = c->t[i].first;
    }
    if (first < c->g->n_nodes && !interp_run_from(c->it, first)) return false;
    add_error(c, acc);
    return true;
}

/* Sensitivity of every candidate to measure on sample s. */
static bool measure_sample(sens_ctx *c, int64_t s, const int *base_choice)
{
    if (!run_reference(c, s) || !run_config(c, base_choice, c->base)) return false;
    /* matrices by decreasing first consumer: earlier nodes keep their values */
    for (int i = c->n_t - 1; i >= 0; i--) {
        sens_tensor *t = &c->t[i];
        if (!t->automatic && base_choice[i] >= 0) continue; /* part of the base: not measured alone */
        for (int k = 0; k < t->d->n_cands; k++) {
            if (!t->d->cands[k].dequant || (!t->automatic && k != t->fixed)) continue;
            if (t->automatic && !t->d->cands[k].measured) continue;
            set_candidate(c, t, k);
            if (!interp_run_from(c->it, t->first)) return false;
            add_error(c, t->acc + (size_t)k * (size_t)c->n_out);
        }
        if (t->automatic) set_f32(c, t);
        else if (base_choice[i] >= 0) set_candidate(c, t, base_choice[i]);
        else set_f32(c, t);
    }
    return true;
}

/* How many samples the sensitivity measurement uses: --sensitivity-samples,
 * or enough to cover QP_SENS_ROWS output rows (positions), at least
 * QP_SENS_SAMPLES, never more than there are. */
static int sens_count(const sens_ctx *c, const pass_spec *spec)
{
    int64_t rows = 1;
    for (int o = 0; o < c->n_out; o++)
        if (c->out_count[o] / c->out_row[o] > rows) rows = c->out_count[o] / c->out_row[o];
    int64_t n = (QP_SENS_ROWS + rows - 1) / rows;
    if (n < QP_SENS_SAMPLES) n = QP_SENS_SAMPLES;
    if (spec && spec->sens_samples > 0) n = spec->sens_samples;
    return (int)(n < c->samples ? n : c->samples);
}

/* Measures sensitivities over evenly spaced samples. base_choice: the
 * fixed tensors' formats in the base (-1: f32). */
static bool measure(sens_ctx *c, int n_samples, const int *base_choice)
{
    sup_progress pr;
    sup_progress_begin(&pr, "measuring sensitivity");
    for (int i = 0; i < n_samples; i++) {
        if (!measure_sample(c, (int64_t)i * c->samples / n_samples, base_choice)) return false;
        sup_progress_update(&pr, i + 1, n_samples);
    }
    sup_progress_end(&pr);
    double base = additive(c, c->base);
    for (int i = 0; i < c->n_t; i++) {
        sens_tensor *t = &c->t[i];
        for (int k = 0; k < t->d->n_cands; k++) {
            ir_candidate *cand = &t->d->cands[k];
            bool alone = t->automatic ? cand->measured : k == t->fixed && base_choice[i] < 0;
            if (!cand->dequant) cand->sensitivity = cand->f.format == QFMT_F32 ? 0 : -1;
            else if (alone)
                cand->sensitivity = fmax(0, additive(c, t->acc + (size_t)k * (size_t)c->n_out) - base);
        }
    }
    return true;
}

/* The error of one combination over every calibration sample. */
static bool verify(sens_ctx *c, const int *choice, double *err, double *err_add)
{
    q_error_acc *acc = sup_arena_alloc(c->tmp, sizeof *acc * (size_t)c->n_out);
    sup_progress pr;
    sup_progress_begin(&pr, "verifying");
    for (int64_t s = 0; s < c->samples; s++) {
        if (!run_reference(c, s) || !run_config(c, choice, acc)) return false;
        sup_progress_update(&pr, s + 1, c->samples);
    }
    sup_progress_end(&pr);
    *err = user_error(c, acc);
    *err_add = additive(c, acc);
    c->g->selection->verify_runs++;
    return true;
}

/* ---- candidates ----------------------------------------------------------- */

static void add_candidate(sup_arena *a, ir_decision *d, q_precision f)
{
    d->cands = sup_arena_grow(a, d->cands, (size_t)d->n_cands, (size_t)d->n_cands + 1, sizeof *d->cands);
    d->cands[d->n_cands++] = (ir_candidate){.f = f, .sensitivity = -1};
}

/* Every format the search considers for this matrix; act: the :a8 and
 * :static modifiers of the `auto` that chose it. */
static void list_candidates(ir_graph *g, ir_decision *d, const q_precision *act)
{
    const ir_node *w = &g->nodes[d->node];
    float scale = act->act_static ? pass_calib_act_scale(g, d->node) : 0;
    static const int groups[] = {128, 64, 32};
    int rounding = g->calib->second_moments && w->shape[1] <= IR_CALIB_XX_MAX ? 2 : 1;
    for (int gi = 0; gi < 3; gi++) {
        if (groups[gi] > w->shape[1] && gi < 2) continue; /* a group wider than the row only pads */
        for (int asym = 0; asym < 2; asym++)
            for (int mse = 0; mse < 2; mse++)
                for (int gptq = 0; gptq < rounding; gptq++)
                    add_candidate(g->arena, d, (q_precision){.format = asym ? QFMT_UINT4 : QFMT_INT4,
                                                           .group = groups[gi], .clip = mse ? Q_CLIP_MSE : Q_CLIP_MINMAX,
                                                           .gptq = gptq, .act8 = act->act8,
                                                           .act_static = act->act_static, .act_scale = scale});
    }
    add_candidate(g->arena, d, (q_precision){.format = QFMT_INT8, .act8 = act->act8, .act_static = act->act_static,
                                           .act_scale = scale});
    add_candidate(g->arena, d, (q_precision){.format = QFMT_FP8_E4M3});
    add_candidate(g->arena, d, (q_precision){.format = QFMT_FP8_E5M2});
    add_candidate(g->arena, d, (q_precision){.format = QFMT_F32});
}

/* E[x_j^2] of the activations multiplying the columns of w (averaged over
 * its linear layers), or NULL if calibration did not see them. */
static const double *input_mean_sq(const ir_graph *g, int32_t w, sup_arena *a)
{
    int64_t k = g->nodes[w].shape[1];
    double *m = NULL;
    int n = 0;
    for (int i = w + 1; i < g->n_nodes; i++) {
        const ir_node *l = &g->nodes[i];
        if (l->op != IR_OP_LINEAR || l->inputs[1] != w) continue;
        const ir_calib_stats *st = g->calib->of_node[l->inputs[0]];
        if (!st || st->channels != k) continue;
        if (!m) m = sup_arena_alloc(a, sizeof(double) * (size_t)k);
        for (int64_t j = 0; j < k; j++) m[j] += st->mean_sq[j];
        n++;
    }
    for (int64_t j = 0; m && j < k; j++) m[j] /= n;
    return m;
}

/* sum_r v_r^T H v_r for the rows v_r of a (H = E[x x^T]), or with only H's
 * diagonal m, or neither (plain squares). */
static double quad(const float *a, const float *b, const double *h, const double *m, int64_t n, int64_t k,
                   double *row)
{
    double sum = 0;
    for (int64_t r = 0; r < n; r++) {
        for (int64_t j = 0; j < k; j++) row[j] = (double)a[r * k + j] - (b ? (double)b[r * k + j] : 0.0);
        if (!h) {
            for (int64_t j = 0; j < k; j++) sum += row[j] * row[j] * (m ? m[j] : 1);
            continue;
        }
        /* y = H v as a sum of H's rows (H is symmetric): no reduction in the
         * inner loop, so it vectorises */
        double *y = row + k;
        memset(y, 0, sizeof(double) * (size_t)k);
        for (int64_t j = 0; j < k; j++) {
            double v = row[j];
            const double *hj = h + j * k;
            for (int64_t i = 0; i < k; i++) y[i] += hj[i] * v;
        }
        for (int64_t i = 0; i < k; i++) sum += row[i] * y[i];
    }
    return sum;
}

static double proxy_of(const float *orig, const float *deq, const double *h, const double *m, int64_t n, int64_t k,
                       sup_arena *a)
{
    double *row = sup_arena_alloc(a, sizeof(double) * (size_t)(2 * k));
    return quad(orig, deq, h, m, n, k, row);
}

/* Quantizes each candidate (dequantized values into c->tmp) and measures
 * its SQNR and output-noise proxy. */
static bool prepare_candidates(sens_ctx *c, ir_decision *d, const float *orig)
{
    ir_node *w = &c->g->nodes[d->node];
    int64_t count = w->shape[0] * w->shape[1];
    const double *m = input_mean_sq(c->g, d->node, c->tmp);
    const double *h = pass_calib_second_moment(c->g, d->node, c->tmp);
    double signal = proxy_of(orig, NULL, h, m, w->shape[0], w->shape[1], c->tmp);
    if (!(signal > 0)) signal = 1;
    for (int k = 0; k < d->n_cands; k++) {
        ir_candidate *cand = &d->cands[k];
        cand->bytes = q_precision_bytes(&cand->f, w->shape[0], w->shape[1]);
        cand->bits_per_weight = 8.0 * (double)cand->bytes / (double)count;
        cand->sqnr_db = INFINITY;
        if (cand->f.format == QFMT_F32) continue;
        sup_arena scratch = {0};
        ir_qweight *q = pass_quantize_matrix(&scratch, c->g, d->node, &cand->f);
        if (q) {
            float *keep = sup_arena_alloc(c->tmp, sizeof(float) * (size_t)count);
            memcpy(keep, q->dequant, sizeof(float) * (size_t)count);
            cand->dequant = keep;
            cand->sqnr_db = q->stats.sqnr_db;
            cand->proxy = proxy_of(orig, keep, h, m, w->shape[0], w->shape[1], &scratch) / signal;
        }
        sup_arena_free(&scratch);
        if (!q) return false;
    }
    return true;
}

/* Which candidates are worth a measurement: at each size the one with the
 * least proxy error unless a smaller candidate has less, and int4:g32 (the
 * reference of the ranking). */
static int find_ref_candidate(const ir_decision *d);
static void choose_measured(ir_decision *d)
{
    int ref = find_ref_candidate(d);
    for (int k = 0; k < d->n_cands; k++) {
        ir_candidate *x = &d->cands[k];
        x->measured = k == ref;
        if (!x->dequant) continue;
        bool best = true;
        for (int j = 0; j < d->n_cands && best; j++)
            if (j != k && d->cands[j].dequant && d->cands[j].bytes == x->bytes)
                best = d->cands[j].proxy > x->proxy || (d->cands[j].proxy == x->proxy && j > k);
            else if (d->cands[j].dequant && d->cands[j].bytes < x->bytes)
                best = d->cands[j].proxy >= x->proxy;
        x->measured |= best;
    }
}

/* ---- setting up ------------------------------------------------------------ */

static bool ctx_open(sens_ctx *c, ir_graph *g, sup_arena *tmp)
{
    memset(c, 0, sizeof *c);
    c->g = g;
    c->tmp = tmp;
    c->n_ins = g->calib->n_specs;
    if (!pass_calib_open(g, g->calib->specs, c->n_ins, c->ins, &c->samples)) return false;
    c->n_out = g->n_outputs;
    c->out_count = sup_arena_alloc(tmp, sizeof(int64_t) * (size_t)c->n_out);
    c->out_row = sup_arena_alloc(tmp, sizeof(int64_t) * (size_t)c->n_out);
    c->ref = sup_arena_alloc(tmp, sizeof(float *) * (size_t)c->n_out);
    c->ref_logp = sup_arena_alloc(tmp, sizeof(double *) * (size_t)c->n_out);
    c->base = sup_arena_alloc(tmp, sizeof *c->base * (size_t)c->n_out);
    for (int o = 0; o < c->n_out; o++) {
        const ir_node *n = &g->nodes[g->outputs[o].node];
        c->out_count[o] = ir_node_count(n);
        c->out_row[o] = n->rank ? n->shape[n->rank - 1] : 1;
        c->ref[o] = sup_arena_alloc(tmp, sizeof(float) * (size_t)c->out_count[o]);
        c->ref_logp[o] = sup_arena_alloc(tmp, sizeof(double) * (size_t)c->out_count[o]);
    }
    c->it = interp_new(tmp, g);
    ir_selection *sel = g->selection;
    c->t = sup_arena_alloc(tmp, sizeof *c->t * (size_t)(sel->n + 1));
    for (int i = 0; i < sel->n; i++) {
        sens_tensor *t = &c->t[c->n_t++];
        t->d = &sel->d[i];
        t->w = &g->nodes[t->d->node];
        t->automatic = t->d->origin == IR_FROM_AUTO;
        t->first = first_consumer(g, t->d->node);
        t->orig = interp_node_value(c->it, t->d->node);
        t->cur = -1;
        /* the reference is f32 throughout (auto:a8's placeholder asks for a8) */
        interp_set_act8(c->it, t->d->node, false, 0);
    }
    /* in order of first consumer (node order almost always is) */
    for (int i = 1; i < c->n_t; i++)
        for (int j = i; j > 0 && c->t[j - 1].first > c->t[j].first; j--) {
            sens_tensor tt = c->t[j];
            c->t[j] = c->t[j - 1], c->t[j - 1] = tt;
        }
    return true;
}

static void ctx_close(sens_ctx *c)
{
    for (int i = 0; i < c->n_ins; i++) interp_file_close(&c->ins[i]);
}

static void alloc_acc(sens_ctx *c)
{
    for (int i = 0; i < c->n_t; i++)
        c->t[i].acc = sup_arena_alloc(c->tmp, sizeof(q_error_acc) * (size_t)c->n_out * (size_t)c->t[i].d->n_cands);
}

/* ---- explaining ------------------------------------------------------------ */

static int find_ref_candidate(const ir_decision *d)
{
    for (int k = 0; k < d->n_cands; k++)
        if (d->cands[k].f.format == QFMT_INT4 && d->cands[k].f.group == 32 && d->cands[k].f.clip == Q_CLIP_MINMAX)
            return k;
    return -1;
}

/* Ranks the matrices by sensitivity at int4:g32 (or at their own format). */
static void rank_tensors(ir_selection *sel)
{
    for (int i = 0; i < sel->n; i++) {
        ir_decision *d = &sel->d[i];
        int r = find_ref_candidate(d);
        d->sensitivity_ref = r >= 0 && d->cands[r].sensitivity >= 0 ? d->cands[r].sensitivity : d->sensitivity;
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
    case IR_FROM_ANNOTATION: return sup_arena_printf(a, "fixed by the model's annotation @%s", d->origin_text);
    case IR_FROM_OVERRIDE: return sup_arena_printf(a, "fixed by the --precision override '%s'", d->origin_text);
    case IR_FROM_AUTO: break;
    }
    return "";
}

/* The reason for an automatic choice: what the best smaller format would
 * cost in error, or what a larger one would save. */
static const char *auto_why(sup_arena *a, const ir_selection *sel, const ir_decision *d, int n_ranked)
{
    const ir_candidate *ch = &d->cands[d->chosen];
    const char *name = q_precision_name(a, &ch->f);
    int smaller = -1, larger = -1;
    for (int k = 0; k < d->n_cands; k++) {
        const ir_candidate *x = &d->cands[k];
        if (x->sensitivity < 0) continue;
        if (x->bytes < ch->bytes && (smaller < 0 || x->sensitivity < d->cands[smaller].sensitivity)) smaller = k;
        if (x->bytes > ch->bytes && x->sensitivity < ch->sensitivity &&
            (larger < 0 || x->sensitivity < d->cands[larger].sensitivity))
            larger = k;
    }
    const char *rank = d->rank ? sup_arena_printf(a, " (sensitivity rank %d of %d)", d->rank, n_ranked) : "";
    if (smaller < 0 && larger < 0) return sup_arena_printf(a, "%s: the smallest format, and no larger one measures better%s", name, rank);
    if (smaller < 0)
        return sup_arena_printf(a, "%s: the smallest format; %s would remove %.2g error for %zu more bytes%s", name,
                               q_precision_name(a, &d->cands[larger].f), ch->sensitivity - d->cands[larger].sensitivity,
                               d->cands[larger].bytes - ch->bytes, rank);
    const char *s = sup_arena_printf(a, "%s: %s, the best smaller format, would add %.2g error%s", name,
                                    q_precision_name(a, &d->cands[smaller].f),
                                    d->cands[smaller].sensitivity - ch->sensitivity, rank);
    if (larger >= 0 && sel->budget_bits > 0)
        s = sup_arena_printf(a, "%s; %s would remove %.2g more but does not fit the budget", s,
                            q_precision_name(a, &d->cands[larger].f), ch->sensitivity - d->cands[larger].sensitivity);
    return s;
}

static void explain(ir_graph *g)
{
    ir_selection *sel = g->selection;
    rank_tensors(sel);
    int ranked = 0;
    for (int i = 0; i < sel->n; i++) ranked += sel->d[i].rank > 0;
    for (int i = 0; i < sel->n; i++) {
        ir_decision *d = &sel->d[i];
        d->why = d->origin == IR_FROM_AUTO ? auto_why(g->arena, sel, d, ranked) : origin_why(g->arena, d);
        for (int k = 0; k < d->n_cands; k++) d->cands[k].dequant = NULL; /* freed with the scratch arena */
    }
}

/* ---- the search ------------------------------------------------------------ */

typedef struct search {
    sens_ctx *c;
    q_alloc_item *items; /* auto tensors only, their measured candidates and f32 */
    int *auto_of;         /* items index -> c->t index */
    int **cand_of;        /* items index, choice -> candidate index */
    int n_items;
    int *config;          /* per c->t: candidate, or -1 for f32 without a candidate */
    size_t fixed_bytes;
    int64_t weights;      /* all matrices */
} search;

static void build_items(search *s)
{
    sens_ctx *c = s->c;
    s->items = sup_arena_alloc(c->tmp, sizeof *s->items * (size_t)(c->n_t + 1));
    s->auto_of = sup_arena_alloc(c->tmp, sizeof(int) * (size_t)(c->n_t + 1));
    s->cand_of = sup_arena_alloc(c->tmp, sizeof(int *) * (size_t)(c->n_t + 1));
    s->config = sup_arena_alloc(c->tmp, sizeof(int) * (size_t)(c->n_t + 1));
    for (int i = 0; i < c->n_t; i++) {
        sens_tensor *t = &c->t[i];
        s->weights += t->w->shape[0] * t->w->shape[1];
        s->config[i] = t->automatic ? -1 : t->fixed;
        if (!t->automatic) {
            s->fixed_bytes += t->d->cands[t->fixed].bytes;
            continue;
        }
        size_t *bytes = sup_arena_alloc(c->tmp, sizeof(size_t) * (size_t)t->d->n_cands);
        double *err = sup_arena_alloc(c->tmp, sizeof(double) * (size_t)t->d->n_cands);
        int *map = sup_arena_alloc(c->tmp, sizeof(int) * (size_t)t->d->n_cands), n = 0;
        for (int k = 0; k < t->d->n_cands; k++)
            if (t->d->cands[k].measured || t->d->cands[k].f.format == QFMT_F32) map[n] = k, bytes[n++] = t->d->cands[k].bytes;
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

/* --budget-bits below what the candidates can reach is an error, before
 * anything is measured. */
static bool check_budget(const search *s, const pass_spec *spec)
{
    size_t min_bytes = s->fixed_bytes;
    for (int j = 0; j < s->n_items; j++) {
        size_t lo = SIZE_MAX;
        for (int k = 0; k < s->items[j].n; k++) lo = s->items[j].bytes[k] < lo ? s->items[j].bytes[k] : lo;
        min_bytes += lo;
    }
    if (spec->budget_bits <= 0 || (size_t)floor(spec->budget_bits * (double)s->weights / 8) >= min_bytes) return true;
    sup_error_plain("--budget-bits %g is below the smallest achievable %.4g bits per weight (every searched weight "
                   "matrix at its smallest format%s)", spec->budget_bits, 8.0 * (double)min_bytes / (double)s->weights,
                   s->fixed_bytes ? ", the others as --precision fixes them" : "");
    return false;
}

static void apply_choice(search *s, const int *choice)
{
    for (int j = 0; j < s->n_items; j++) s->config[s->auto_of[j]] = s->cand_of[j][choice[j]];
}

static double bits_of(const search *s, const int *choice)
{
    return 8.0 * (double)(q_alloc_bytes(s->items, s->n_items, choice) + s->fixed_bytes) / (double)s->weights;
}

static bool same_format(const q_precision *a, const q_precision *b)
{
    return a->format == b->format && a->group == b->group && a->clip == b->clip && a->act8 == b->act8 &&
           a->act_static == b->act_static && a->gptq == b->gptq;
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
        if (!uniform_choice(s, &d0->cands[k].f, uni) || bits_of(s, uni) > s->c->g->selection->budget_bits) continue;
        double pred = q_alloc_error(s->items, s->n_items, uni);
        if (pred < best_pred) best_pred = pred, best = &d0->cands[k].f;
    }
    if (!best) return true;
    uniform_choice(s, best, uni);
    if (!memcmp(uni, choice, sizeof(int) * (size_t)s->n_items)) return true;
    double uerr, uerr_add;
    apply_choice(s, uni);
    if (!verify(s->c, s->config, &uerr, &uerr_add)) return false;
    if (uerr < *err) {
        memcpy(choice, uni, sizeof(int) * (size_t)s->n_items);
        s->c->g->selection->note = sup_arena_printf(s->c->g->arena,
            "uniform %s measured better than the allocation (%.4g against %.4g) and was kept",
            q_precision_name(s->c->g->arena, best), uerr, *err);
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
    for (int round = 0; round < REPAIR_ROUNDS && *err > sel->max_error; round++) {
        target_add *= fmin(0.9, *err_add > 0 ? additive_target(s->c, sel->max_error) / *err_add : 0.5);
        q_allocate(s->items, s->n_items, 0, target_add, next);
        if (!memcmp(next, choice, sizeof(int) * (size_t)s->n_items)) {
            if (!upgrade_one(s, next)) break;
        }
        memcpy(choice, next, sizeof(int) * (size_t)s->n_items);
        apply_choice(s, choice);
        if (!verify(s->c, s->config, err, err_add)) return false;
        sel->note = sup_arena_printf(s->c->g->arena, "repaired in %d round%s: the first allocation missed --max-error",
                                    round + 1, round ? "s" : "");
    }
    return true;
}

static bool allocate(search *s, const pass_spec *spec)
{
    sens_ctx *c = s->c;
    ir_selection *sel = c->g->selection;
    int *choice = sup_arena_alloc(c->tmp, sizeof(int) * (size_t)(s->n_items + 1));
    double target_add = 0;
    if (spec->budget_bits > 0) {
        size_t budget = (size_t)floor(spec->budget_bits * (double)s->weights / 8);
        q_allocate(s->items, s->n_items, budget - s->fixed_bytes, 0, choice);
    } else {
        target_add = additive_target(c, spec->max_error) - sel->fixed_error;
        if (target_add <= 0 || !q_allocate(s->items, s->n_items, 0, target_add, choice)) {
            fprintf(stderr, "qmc: warning: --max-error %g cannot be met: the predicted error stays above it; "
                            "choosing the least error\n", spec->max_error);
            q_allocate(s->items, s->n_items, 0, 0, choice);
        }
    }
    sel->predicted_error = user_from_additive(c, q_alloc_error(s->items, s->n_items, choice) + sel->fixed_error);
    apply_choice(s, choice);
    double err, err_add;
    if (!verify(c, s->config, &err, &err_add)) return false;
    if (spec->budget_bits > 0 && !uniform_fallback(s, choice, &err, &err_add)) return false;
    if (spec->max_error > 0 && err > spec->max_error && !repair(s, choice, target_add, &err, &err_add)) return false;
    if (spec->max_error > 0 && err > spec->max_error)
        fprintf(stderr, "qmc: warning: the chosen formats give output error %.4g on the calibration set, above "
                        "--max-error %g\n", err, spec->max_error);
    sel->calib_error = err;
    apply_choice(s, choice);
    return true;
}

/* Sets every matrix's format from the configuration. */
static void commit(search *s)
{
    for (int i = 0; i < s->c->n_t; i++) {
        sens_tensor *t = &s->c->t[i];
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

/* The one candidate of a fixed matrix: its own format. */
static void fixed_candidate(ir_graph *g, sens_tensor *t)
{
    add_candidate(g->arena, t->d, t->w->qformat);
    t->fixed = t->d->n_cands - 1;
}

static bool select_with(ir_graph *g, const pass_spec *spec, const q_precision *act, sup_arena *tmp)
{
    ir_selection *sel = g->selection;
    sens_ctx c;
    if (!ctx_open(&c, g, tmp)) return false;
    bool ok = true;
    sup_progress pr;
    sup_progress_begin(&pr, "quantizing candidates");
    for (int i = 0; i < c.n_t && ok; i++) {
        sens_tensor *t = &c.t[i];
        if (t->automatic) list_candidates(g, t->d, act);
        else fixed_candidate(g, t);
        ok = prepare_candidates(&c, t->d, t->orig);
        if (t->automatic) choose_measured(t->d);
        sup_progress_update(&pr, i + 1, c.n_t);
    }
    sup_progress_end(&pr);
    search s = {.c = &c};
    if (ok) {
        alloc_acc(&c);
        build_items(&s);
        sel->sens_samples = sens_count(&c, spec);
        ok = check_budget(&s, spec) && measure(&c, sel->sens_samples, s.config);
    }
    if (ok) {
        fill_errors(&s);
        sel->fixed_error = additive(&c, c.base);
        if (s.n_items) ok = allocate(&s, spec);
        else ok = verify(&c, s.config, &sel->calib_error, &(double){0});
    }
    if (ok) commit(&s);
    ctx_close(&c);
    return ok;
}

bool pass_select_auto(ir_graph *g, const pass_spec *spec)
{
    ir_selection *sel = g->selection;
    if (!g->calib) {
        sup_error_plain("--precision auto needs --calib NAME=FILE.npy: calibration samples to measure on");
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
    /* the :a8 / :static of the auto that applies (the default's, else the first override's) */
    q_precision act = spec->dflt;
    for (int o = 0; o < spec->n_overrides && !spec->dflt_automatic; o++)
        if (spec->overrides[o].automatic) act = spec->overrides[o].f;
    sup_arena tmp = {0};
    bool ok = select_with(g, spec, &act, &tmp);
    sup_arena_free(&tmp);
    if (!ok) return false;
    explain(g);
    sel->seconds = sup_now() - t0;
    return true;
}

bool pass_measure_fixed(ir_graph *g)
{
    ir_selection *sel = g->selection;
    if (!g->calib || !sel) return true;
    double t0 = sup_now();
    sel->metric = metric_name(g);
    sup_arena tmp = {0};
    sens_ctx c;
    bool ok = ctx_open(&c, g, &tmp);
    for (int i = 0; ok && i < c.n_t; i++) {
        fixed_candidate(g, &c.t[i]);
        ok = prepare_candidates(&c, c.t[i].d, c.t[i].orig);
    }
    if (ok) {
        search s = {.c = &c};
        alloc_acc(&c);
        build_items(&s);
        int *none = sup_arena_alloc(&tmp, sizeof(int) * (size_t)(c.n_t + 1));
        for (int i = 0; i < c.n_t; i++) none[i] = -1;
        sel->sens_samples = sens_count(&c, NULL);
        double e_add;
        ok = measure(&c, sel->sens_samples, none) && verify(&c, s.config, &sel->calib_error, &e_add);
        if (ok) commit(&s);
    }
    ctx_close(&c);
    sup_arena_free(&tmp);
    if (!ok) return false;
    explain(g);
    sel->seconds = sup_now() - t0;
    return true;
}
