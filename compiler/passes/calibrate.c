/* calibrate.c: the calibrate pass.
 *
 * Needs: a graph after shape inference, and calibration samples
 * (--calib NAME=FILE.npy for every input; the leading dimension indexes
 * samples, or the file holds one sample).
 * Guarantees: g->calib describes every activation that feeds a linear
 * layer or a matmul: its range, a histogram of |x|, the mean square of each
 * channel (the last dimension), and the clip an observer chose for int8
 * (scale = clip / 127); when asked (for :gptq and auto), the second moment
 * E[x x^T] of every linear layer's input of at most IR_CALIB_XX_MAX channels
 * (8 K^2 bytes each). The graph itself does not change. Without --calib
 * the pass does nothing.
 *
 * Memory is bounded whatever the number of samples and the model's size:
 * samples are read from the mapped files a batch at a time (as many as
 * PASS_BATCH_BYTES of activations hold) and run through the interpreter
 * (f32 weights, each weight's mapped pages dropped once read, so a model
 * larger than memory streams through), and every statistic has a fixed
 * size. The f32 outputs of every sample are kept too when they are small
 * (the precision search compares with them instead of re-running). The histograms and the
 * observers that choose the clip (--calib-method: minmax, percentile, mse,
 * kl) are compiler/quant's (hist.c): their counts, and so the result, do
 * not depend on the order of the samples.
 * The default is mse: it has no parameter, and on the example models it is
 * the best or within a few percent of the best for int8 and int4 weights,
 * where kl is the worst (docs/calibration.md has the measurements). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

/* ---- the pass ------------------------------------------------------------ */

/* Registers node x (an operand of a linear or matmul) for observation. */
static void observe(ir_graph *g, ir_calibration *c, int32_t x, bool linear_input)
{
    ir_calib_stats *s = c->of_node[x];
    if (!s) {
        const ir_node *n = &g->nodes[x];
        if (n->dtype != QMC_DTYPE_F32) return;
        s = sup_arena_alloc(g->arena, sizeof *s);
        s->node = x;
        s->min = INFINITY;
        s->max = -INFINITY;
        q_hist_init(&s->hist);
        s->channels = n->rank ? n->shape[n->rank - 1] : 1;
        s->mean_sq = sup_arena_alloc(g->arena, sizeof(double) * (size_t)s->channels);
        s->absmax = sup_arena_alloc(g->arena, sizeof(float) * (size_t)s->channels);
        c->of_node[x] = s;
        c->n_observed++;
    }
    /* a node may be seen first as another operand, then as a linear's input */
    if (linear_input && c->second_moments && !s->xx && s->channels <= IR_CALIB_XX_MAX)
        s->xx = sup_arena_alloc(g->arena, sizeof(double) * (size_t)(s->channels * s->channels));
}

/* Keeps evenly spaced rows of s's node (the input of an :awq or :smooth
 * layer): every row_stride-th of all the samples' rows. */
static void want_rows(ir_graph *g, ir_calibration *c, ir_calib_stats *s)
{
    if (!s || s->rows) return;
    int64_t per = ir_node_count(&g->nodes[s->node]) / s->channels, total = per * c->samples;
    s->row_stride = (total + IR_CALIB_ROWS - 1) / IR_CALIB_ROWS;
    if (s->row_stride < 1) s->row_stride = 1;
    s->rows = sup_arena_alloc(g->arena, sizeof(float) * (size_t)(IR_CALIB_ROWS * s->channels));
}

/* Adds one sample's values of s's node (the second moments: below, for
 * the whole batch at once). */
static bool accumulate(const ir_graph *g, ir_calib_stats *s, const float *x, int64_t sample)
{
    int64_t n = ir_node_count(&g->nodes[s->node]), ch = s->channels;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            sup_error(g->nodes[s->node].loc,
                      "'%s' is %g at element %lld on calibration sample %lld",
                      g->nodes[s->node].name, x[i], (long long)i, (long long)sample);
            return false;
        }
    for (int64_t r = 0; r < n / ch; r++)
        for (int64_t j = 0; j < ch; j++) {
            float v = x[r * ch + j];
            s->min = fminf(s->min, v);
            s->max = fmaxf(s->max, v);
            s->mean_sq[j] += (double)v * v; /* sums until the end */
            s->absmax[j] = fmaxf(s->absmax[j], fabsf(v));
        }
    for (int64_t r = 0; s->rows && r < n / ch; r++)
        if ((sample * (n / ch) + r) % s->row_stride == 0 && s->n_rows < IR_CALIB_ROWS)
            memcpy(s->rows + s->n_rows++ * ch, x + r * ch, sizeof(float) * (size_t)ch);
    q_hist_add(&s->hist, x, n);
    s->count += n;
    return true;
}

bool pass_calib_open(const ir_graph *g, const pass_prec_options *o, pass_calib_data *d)
{
    memset(d, 0, sizeof *d);
    if (!o || o->n_calib == 0) return true;
    d->method = Q_OBS_MSE;
    d->percentile = 99.99;
    if (o->calib_method && !q_observer_parse(o->calib_method, &d->method, &d->percentile)) {
        sup_error_plain(
            "unknown --calib-method '%s' (methods: minmax, percentile, percentile=P, mse, kl)",
            o->calib_method);
        return false;
    }
    int64_t batch;
    if (!interp_files_open(g, o->calib, o->n_calib, d->ins, &batch)) return false;
    d->n = o->n_calib;
    d->samples = batch < 0 ? 1 : batch;
    return true;
}

void pass_calib_close(pass_calib_data *d)
{
    for (int i = 0; i < d->n; i++) interp_file_close(&d->ins[i]);
    d->n = 0;
}

/* Samples per run: as many as PASS_BATCH_BYTES of activations hold. */
int pass_batch_slots(const ir_graph *g, int64_t samples)
{
    size_t slot = interp_slot_bytes(g);
    int64_t n = slot ? (int64_t)(PASS_BATCH_BYTES / slot) : samples;
    if (n > PASS_BATCH_MAX) n = PASS_BATCH_MAX;
    if (n > samples) n = samples;
    return n < 1 ? 1 : (int)n;
}

/* The f32 outputs of every sample are kept for the precision search when
 * they take at most this much. */
#define REF_OUT_MAX_BYTES ((size_t)256 << 20)

static void keep_outputs(ir_graph *g, ir_calibration *c)
{
    size_t bytes = 0;
    for (int o = 0; o < g->n_outputs; o++)
        bytes += sizeof(float) * (size_t)ir_node_count(&g->nodes[g->outputs[o].node]);
    if (bytes * (size_t)c->samples > REF_OUT_MAX_BYTES) return;
    c->ref_out = sup_arena_alloc(g->arena, sizeof *c->ref_out * (size_t)g->n_outputs);
    for (int o = 0; o < g->n_outputs; o++)
        c->ref_out[o] =
            sup_arena_alloc(g->arena, sizeof(float) * (size_t)c->samples *
                                          (size_t)ir_node_count(&g->nodes[g->outputs[o].node]));
}

/* Runs samples s0 .. s0 + n - 1 (one per slot) and adds their statistics,
 * in sample order. */
static bool stream_batch(ir_graph *g, ir_calibration *c, interp *it, const interp_file *ins,
                         int n_ins, int64_t s0, int n)
{
    interp_set_batch(it, n);
    for (int b = 0; b < n; b++)
        if (!interp_files_load_slot(g, it, ins, n_ins, s0 + b, b)) return false;
    if (!interp_run(it)) {
        int b = interp_failed_slot(it);
        if (b >= 0)
            sup_note(g->inputs[ins[0].port].loc, "on calibration sample %lld of '%s'",
                     (long long)(s0 + b), ins[0].path);
        return false;
    }
    for (int b = 0; b < n; b++)
        for (int i = 0; i < g->n_nodes; i++) {
            ir_calib_stats *st = c->of_node[i];
            if (!st) continue;
            int64_t count = ir_node_count(&g->nodes[i]);
            if (!accumulate(g, st, interp_node_value(it, i) + count * b, s0 + b)) return false;
        }
    /* E[x x^T]: every slot's rows in order, as one product */
    for (int i = 0; i < g->n_nodes; i++) {
        ir_calib_stats *st = c->of_node[i];
        if (st && st->xx)
            q_second_moment_add(st->xx, interp_node_value(it, i),
                                ir_node_count(&g->nodes[i]) * n / st->channels, st->channels);
    }
    for (int o = 0; c->ref_out && o < g->n_outputs; o++) {
        int64_t count = ir_node_count(&g->nodes[g->outputs[o].node]);
        memcpy(c->ref_out[o] + s0 * count, interp_output(it, o),
               sizeof(float) * (size_t)(count * n));
    }
    return true;
}

static bool stream(ir_graph *g, ir_calibration *c, const interp_file *ins, int n_ins)
{
    sup_arena scratch = {0};
    int slots = pass_batch_slots(g, c->samples);
    interp *it = interp_new_batch(&scratch, g, slots);
    interp_release_weights(it, true);
    sup_progress pr;
    sup_progress_begin(&pr, "calibrating");
    bool ok = true;
    for (int64_t s = 0; s < c->samples && ok; s += slots) {
        int n = (int)(c->samples - s < slots ? c->samples - s : slots);
        ok = stream_batch(g, c, it, ins, n_ins, s, n);
        sup_progress_update(&pr, s + n, c->samples);
    }
    sup_progress_end(&pr);
    sup_arena_free(&scratch);
    return ok;
}

bool pass_calibrate(ir_graph *g, const pass_calib_data *d, bool second_moments)
{
    if (!d || d->n == 0) return true;
    double t0 = sup_now();
    ir_calibration *c = sup_arena_alloc(g->arena, sizeof *c);
    c->second_moments = second_moments;
    c->method = d->method;
    c->percentile = d->percentile;
    c->samples = d->samples;
    c->of_node = sup_arena_alloc(g->arena, sizeof *c->of_node * (size_t)g->n_nodes);
    c->gptq_u = sup_arena_alloc(g->arena, sizeof *c->gptq_u * (size_t)g->n_nodes);
    c->gptq_dead = sup_arena_alloc(g->arena, sizeof *c->gptq_dead * (size_t)g->n_nodes);
    c->gptq_u_act = sup_arena_alloc(g->arena, sizeof *c->gptq_u_act * (size_t)g->n_nodes);
    c->gptq_dead_act = sup_arena_alloc(g->arena, sizeof *c->gptq_dead_act * (size_t)g->n_nodes);
    c->gptq_order = sup_arena_alloc(g->arena, sizeof *c->gptq_order * (size_t)g->n_nodes);
    keep_outputs(g, c);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        bool weight_matrix = n->op == IR_OP_LINEAR && g->nodes[n->inputs[1]].op == IR_OP_WEIGHT;
        if (n->op == IR_OP_LINEAR) observe(g, c, n->inputs[0], weight_matrix);
        if (n->op == IR_OP_CONV) observe(g, c, n->inputs[0], false);
        if (weight_matrix &&
            (g->nodes[n->inputs[1]].qformat.awq || g->nodes[n->inputs[1]].qformat.smooth))
            want_rows(g, c, c->of_node[n->inputs[0]]);
        if (n->op == IR_OP_MATMUL)
            observe(g, c, n->inputs[0], false), observe(g, c, n->inputs[1], false);
    }
    if (!stream(g, c, d->ins, d->n)) return false;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_calib_stats *s = c->of_node[i];
        if (!s) continue;
        double rows = (double)s->count / (double)s->channels;
        for (int64_t j = 0; j < s->channels; j++) s->mean_sq[j] /= rows;
        int64_t k = s->channels;
        for (int64_t a = 0; s->xx && a < k; a++)
            for (int64_t b = a; b < k; b++)
                s->xx[a * k + b] = s->xx[b * k + a] = s->xx[a * k + b] / rows;
        s->clip = q_observer_clip(&s->hist, c->method, c->percentile);
    }
    c->seconds = sup_now() - t0;
    g->calib = c;
    return true;
}

float pass_calib_act_scale(const ir_graph *g, int32_t w)
{
    double clip = 0;
    for (int i = 0; g->calib && i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        if ((n->op != IR_OP_LINEAR && n->op != IR_OP_CONV) || n->inputs[1] != w ||
            !g->calib->of_node[n->inputs[0]])
            continue;
        clip = fmax(clip, g->calib->of_node[n->inputs[0]]->clip);
    }
    return clip > 0 ? (float)(clip / 127) : 1.0f;
}

const double *pass_calib_second_moment(const ir_graph *g, int32_t w, sup_arena *arena)
{
    int64_t k = g->nodes[w].shape[1];
    double *h = NULL;
    int n = 0;
    for (int i = w + 1; g->calib && i < g->n_nodes; i++) {
        const ir_node *l = &g->nodes[i];
        if (l->op != IR_OP_LINEAR || l->inputs[1] != w) continue;
        const ir_calib_stats *s = g->calib->of_node[l->inputs[0]];
        if (!s || !s->xx || s->channels != k) return NULL;
        if (!h) h = sup_arena_alloc(arena, sizeof(double) * (size_t)(k * k));
        for (int64_t j = 0; j < k * k; j++) h[j] += s->xx[j];
        n++;
    }
    for (int64_t j = 0; h && j < k * k; j++) h[j] /= n;
    return h;
}

const double *pass_calib_mean_sq(const ir_graph *g, int32_t w, sup_arena *arena)
{
    int64_t k = g->nodes[w].shape[1];
    double *m = NULL;
    int n = 0;
    for (int i = w + 1; g->calib && i < g->n_nodes; i++) {
        const ir_node *l = &g->nodes[i];
        if (l->op != IR_OP_LINEAR || l->inputs[1] != w) continue;
        const ir_calib_stats *st = g->calib->of_node[l->inputs[0]];
        if (!st || st->channels != k) continue;
        if (!m) m = sup_arena_alloc(arena, sizeof(double) * (size_t)k);
        for (int64_t j = 0; j < k; j++) m[j] += st->mean_sq[j];
        n++;
    }
    for (int64_t j = 0; m && j < k; j++) m[j] /= n;
    return m;
}
