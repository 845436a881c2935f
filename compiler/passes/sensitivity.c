/* sensitivity.c: automatic precision selection, the measuring half of the
 * select-precision pass (allocate.c is the choosing half).
 *
 * Needs: select precision has resolved every fixed format and marked the
 * other weight matrices IR_FROM_AUTO in g->selection; the calibrate pass
 * has run (g->calib).
 * Guarantees: every weight matrix has its candidates (an auto matrix the
 * list below, a fixed one its own format), quantized, each with its proxy
 * error; after pass_sens_measure, the sensitivity of every candidate chosen
 * for measurement; pass_sens_verify gives the output error of one whole
 * combination.
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
 * 3. Allocation: allocate.c (and quant/alloc.c).
 * 4. Verification: the chosen combination runs on every calibration sample
 *    (pass_sens_verify).
 * Everything is deterministic: no randomness, fixed sample order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

enum { QP_SENS_SAMPLES = 16, QP_SENS_ROWS = 2048 };

/* ---- measuring ------------------------------------------------------------ */

static int32_t first_consumer(const ir_graph *g, int32_t w)
{
    for (int32_t i = w + 1; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_inputs; j++)
            if (g->nodes[i].inputs[j] == w) return i;
    return g->n_nodes;
}

/* The additive error (mean over outputs of KL, or squared relative error). */
double pass_sens_additive(const pass_sens *c, const q_error_acc *acc)
{
    double e = 0;
    for (int o = 0; o < c->n_out; o++) e += acc[o].den > 0 ? acc[o].num / acc[o].den : 0;
    return e / c->n_out;
}

/* The error the user sees: mean over outputs of KL or relative RMS. */
static double user_error(const pass_sens *c, const q_error_acc *acc)
{
    double e = 0;
    for (int o = 0; o < c->n_out; o++) e += q_error_value(&acc[o], c->g->outputs[o].logits);
    return e / c->n_out;
}

/* A user error target in additive units. */
double pass_sens_additive_target(const pass_sens *c, double e)
{
    double t = 0;
    for (int o = 0; o < c->n_out; o++) t += c->g->outputs[o].logits ? e : e * e;
    return t / c->n_out;
}

/* An additive error in the user's units (exact for a single output). */
double pass_sens_user_from_additive(const pass_sens *c, double e)
{
    int logits = 0;
    for (int o = 0; o < c->n_out; o++) logits += c->g->outputs[o].logits;
    return logits == 0 ? sqrt(e) : e;
}

static void set_candidate(pass_sens *c, pass_sens_tensor *t, int k)
{
    const ir_candidate *cand = &t->d->cands[k];
    if (!cand->dequant) k = -1;
    if (t->cur == k) return;
    interp_set_weight(c->it, t->d->node, cand->dequant ? cand->dequant : t->orig);
    interp_set_act8(c->it, t->d->node, cand->dequant && cand->f.act8, cand->f.act_scale);
    t->cur = k;
}

static void set_f32(pass_sens *c, pass_sens_tensor *t)
{
    if (t->cur < 0) return;
    interp_set_weight(c->it, t->d->node, t->orig);
    interp_set_act8(c->it, t->d->node, false, 0);
    t->cur = -1;
}

/* The reference of this sample: everything f32, a full run. */
static bool run_reference(pass_sens *c, int64_t s)
{
    for (int i = 0; i < c->n_t; i++) set_f32(c, &c->t[i]);
    if (!interp_files_load(c->g, c->it, c->data->ins, c->data->n, s) || !interp_run(c->it))
        return false;
    for (int o = 0; o < c->n_out; o++) {
        memcpy(c->ref[o], interp_output(c->it, o), sizeof(float) * (size_t)c->out_count[o]);
        if (c->g->outputs[o].logits)
            q_log_softmax(c->ref[o], c->out_count[o], c->out_row[o], c->ref_logp[o]);
    }
    return true;
}

static void add_error(pass_sens *c, q_error_acc *acc)
{
    for (int o = 0; o < c->n_out; o++)
        q_error_add(&acc[o], c->g->outputs[o].logits, c->ref[o], c->ref_logp[o],
                    interp_output(c->it, o), c->out_count[o], c->out_row[o]);
}

/* Sets every tensor to choice[i] (-1: f32) and re-runs from the first
 * changed consumer; adds the error to acc. */
static bool run_config(pass_sens *c, const int *choice, q_error_acc *acc)
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
static bool measure_sample(pass_sens *c, int64_t s, const int *base_choice)
{
    if (!run_reference(c, s) || !run_config(c, base_choice, c->base)) return false;
    /* matrices by decreasing first consumer: earlier nodes keep their values */
    for (int i = c->n_t - 1; i >= 0; i--) {
        pass_sens_tensor *t = &c->t[i];
        if (!t->automatic && base_choice[i] >= 0)
            continue; /* part of the base: not measured alone */
        for (int k = 0; k < t->d->n_cands; k++) {
            if (!t->d->cands[k].dequant || (!t->automatic && k != t->fixed)) continue;
            if (t->automatic && !t->d->cands[k].measured) continue;
            set_candidate(c, t, k);
            if (!interp_run_from(c->it, t->first)) return false;
            add_error(c, t->acc + (size_t)k * (size_t)c->n_out);
        }
        if (t->automatic)
            set_f32(c, t);
        else if (base_choice[i] >= 0)
            set_candidate(c, t, base_choice[i]);
        else
            set_f32(c, t);
    }
    return true;
}

/* How many samples the sensitivity measurement uses: --sensitivity-samples,
 * or enough to cover QP_SENS_ROWS output rows (positions), at least
 * QP_SENS_SAMPLES, never more than there are. */
int pass_sens_count(const pass_sens *c, const pass_spec *spec)
{
    int64_t rows = 1;
    for (int o = 0; o < c->n_out; o++)
        if (c->out_count[o] / c->out_row[o] > rows) rows = c->out_count[o] / c->out_row[o];
    int64_t n = (QP_SENS_ROWS + rows - 1) / rows;
    if (n < QP_SENS_SAMPLES) n = QP_SENS_SAMPLES;
    if (spec && spec->sens_samples > 0) n = spec->sens_samples;
    return (int)(n < c->data->samples ? n : c->data->samples);
}

/* Measures sensitivities over evenly spaced samples. base_choice: the
 * fixed tensors' formats in the base (-1: f32). */
bool pass_sens_measure(pass_sens *c, int n_samples, const int *base_choice)
{
    sup_progress pr;
    sup_progress_begin(&pr, "measuring sensitivity");
    for (int i = 0; i < n_samples; i++) {
        if (!measure_sample(c, (int64_t)i * c->data->samples / n_samples, base_choice))
            return false;
        sup_progress_update(&pr, i + 1, n_samples);
    }
    sup_progress_end(&pr);
    double base = pass_sens_additive(c, c->base);
    for (int i = 0; i < c->n_t; i++) {
        pass_sens_tensor *t = &c->t[i];
        for (int k = 0; k < t->d->n_cands; k++) {
            ir_candidate *cand = &t->d->cands[k];
            bool alone = t->automatic ? cand->measured : k == t->fixed && base_choice[i] < 0;
            if (!cand->dequant)
                cand->sensitivity = cand->f.format == QFMT_F32 ? 0 : -1;
            else if (alone)
                cand->sensitivity =
                    fmax(0, pass_sens_additive(c, t->acc + (size_t)k * (size_t)c->n_out) - base);
        }
    }
    return true;
}

/* The error of one combination over every calibration sample. */
bool pass_sens_verify(pass_sens *c, const int *choice, double *err, double *err_add)
{
    q_error_acc *acc = sup_arena_alloc(c->tmp, sizeof *acc * (size_t)c->n_out);
    sup_progress pr;
    sup_progress_begin(&pr, "verifying");
    for (int64_t s = 0; s < c->data->samples; s++) {
        if (!run_reference(c, s) || !run_config(c, choice, acc)) return false;
        sup_progress_update(&pr, s + 1, c->data->samples);
    }
    sup_progress_end(&pr);
    *err = user_error(c, acc);
    *err_add = pass_sens_additive(c, acc);
    c->g->selection->verify_runs++;
    return true;
}

/* ---- candidates ----------------------------------------------------------- */

static void add_candidate(sup_arena *a, ir_decision *d, q_precision f)
{
    d->cands =
        sup_arena_grow(a, d->cands, (size_t)d->n_cands, (size_t)d->n_cands + 1, sizeof *d->cands);
    d->cands[d->n_cands++] = (ir_candidate){.f = f, .sensitivity = -1};
}

/* Every format the search considers for this matrix; act: the :a8 and
 * :static modifiers of the `auto` that chose it. */
void pass_sens_list_candidates(ir_graph *g, ir_decision *d, const q_precision *act)
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
                    add_candidate(g->arena, d,
                                  (q_precision){.format = asym ? QFMT_UINT4 : QFMT_INT4,
                                                .group = groups[gi],
                                                .clip = mse ? Q_CLIP_MSE : Q_CLIP_MINMAX,
                                                .gptq = gptq,
                                                .act8 = act->act8,
                                                .act_static = act->act_static,
                                                .act_scale = scale});
    }
    add_candidate(g->arena, d,
                  (q_precision){.format = QFMT_INT8,
                                .act8 = act->act8,
                                .act_static = act->act_static,
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
static double quad(const float *a, const float *b, const double *h, const double *m, int64_t n,
                   int64_t k, double *row)
{
    double sum = 0;
    for (int64_t r = 0; r < n; r++) {
        for (int64_t j = 0; j < k; j++)
            row[j] = (double)a[r * k + j] - (b ? (double)b[r * k + j] : 0.0);
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

static double proxy_of(const float *orig, const float *deq, const double *h, const double *m,
                       int64_t n, int64_t k, sup_arena *a)
{
    double *row = sup_arena_alloc(a, sizeof(double) * (size_t)(2 * k));
    return quad(orig, deq, h, m, n, k, row);
}

/* Quantizes each candidate (dequantized values into c->tmp) and measures
 * its SQNR and output-noise proxy. */
bool pass_sens_prepare_candidates(pass_sens *c, ir_decision *d, const float *orig)
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

/* The reference candidate of the ranking, int4:g32 (min-max), or -1. */
int pass_sens_ref_candidate(const ir_decision *d)
{
    for (int k = 0; k < d->n_cands; k++)
        if (d->cands[k].f.format == QFMT_INT4 && d->cands[k].f.group == 32 &&
            d->cands[k].f.clip == Q_CLIP_MINMAX)
            return k;
    return -1;
}

/* Which candidates are worth a measurement: at each size the one with the
 * least proxy error unless a smaller candidate has less, and int4:g32 (the
 * reference of the ranking). */
void pass_sens_choose_measured(ir_decision *d)
{
    int ref = pass_sens_ref_candidate(d);
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

/* The one candidate of a fixed matrix: its own format. */
void pass_sens_fixed_candidate(ir_graph *g, pass_sens_tensor *t)
{
    add_candidate(g->arena, t->d, t->w->qformat);
    t->fixed = t->d->n_cands - 1;
}

/* ---- setting up ------------------------------------------------------------ */

bool pass_sens_open(pass_sens *c, ir_graph *g, const pass_calib_data *data, sup_arena *tmp)
{
    memset(c, 0, sizeof *c);
    c->g = g;
    c->tmp = tmp;
    c->data = data;
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
        pass_sens_tensor *t = &c->t[c->n_t++];
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
            pass_sens_tensor tt = c->t[j];
            c->t[j] = c->t[j - 1], c->t[j - 1] = tt;
        }
    return true;
}

void pass_sens_alloc_acc(pass_sens *c)
{
    for (int i = 0; i < c->n_t; i++)
        c->t[i].acc = sup_arena_alloc(c->tmp, sizeof(q_error_acc) * (size_t)c->n_out *
                                                  (size_t)c->t[i].d->n_cands);
}
