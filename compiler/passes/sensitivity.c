/* sensitivity.c: automatic precision selection, the measuring half of the
 * select-precision pass (allocate.c is the choosing half).
 *
 * Needs: pass_plan_precision has resolved every fixed format, marked the
 * other weight matrices IR_FROM_AUTO in g->selection and listed their
 * candidates (pass_sens_plan, below); the calibrate pass has run
 * (g->calib).
 * Guarantees: every weight matrix has its candidates (an auto matrix the
 * list below, a fixed one its own format), each with its proxy error;
 * after pass_sens_measure, the sensitivity of every candidate allocation
 * may choose; pass_sens_verify gives the output error of one whole
 * combination.
 *
 * Method.
 * 1. Candidates: f32, bf16, f16, int8 per channel, FP8 E4M3/E5M2 per
 *    channel, NF4 (min-max or MSE; not with :a8), int4, and int3 and int2
 *    (not with :a8) in
 *    groups of 32/64/128 (no larger than the row), symmetric or with zero
 *    points, min-max or MSE clipping, round to nearest or GPTQ (in column
 *    order: act-order lowers the calibration error but, on tiny-gpt,
 *    raises the validation perplexity, so it is a fixed modifier only), or
 *    the
 *    parameters of :imat (importance-weighted) or :hqq (half-quadratic); with
 *    auto:a8 the integer formats take int8 activations (dynamic, or
 *    :static from calibration). Each has a proxy: the noise it adds to the
 *    layer's own output relative to the output, tr(dW H dWᵀ) / tr(W H Wᵀ)
 *    with H = E[x xᵀ] of the layer's input, or its diagonal E[x_j^2] (an
 *    importance matrix, as llama.cpp's imatrix) when H is not collected.
 * 2. Sensitivity, the output error a candidate adds alone, two ways:
 *    exact: for each calibration sample (evenly spaced, enough to cover
 *    2048 output rows but at least 16; --sensitivity-samples overrides),
 *    one f32 run gives the reference; then for each matrix, from the last
 *    consumer to the first, each candidate worth it (the best proxy of
 *    each size, and int4:g32) replaces the weight and only the nodes from
 *    its first consumer on are re-run: the earlier nodes still hold this
 *    sample's f32 activations (the cache). Memory: every candidate's
 *    dequantized weights (about 28x the f32 weights).
 *    fast: the same re-runs for one candidate per matrix (int4:g32,
 *    min-max), on a batch of samples at once and on fewer samples (what
 *    costs about one calibration pass, at least one); that matrix's gain
 *    is the measured error over the candidate's proxy, and every other
 *    candidate's sensitivity is the gain times its own proxy. Proxies come
 *    from a deterministic sample of the matrix's rows (every format is
 *    chosen row by row, so a row's error does not depend on the others).
 *    While measuring, only the matrix being measured is held quantized;
 *    a combination being verified is held as codes (int4 two per byte:
 *    about 0.6 bytes per weight at 4.5 bits) and dequantized one matrix
 *    at a time as the interpreter reaches it.
 *    The output error is KL for @logits outputs and squared error relative
 *    to the output's energy otherwise, units in which independent errors
 *    add.
 * 3. Allocation: allocate.c (and quant/alloc.c).
 * 4. Verification: the chosen combination runs on every calibration sample
 *    (pass_sens_verify) against the f32 outputs calibration kept; fast
 *    measures the chosen candidates too where the check and the estimate
 *    disagree (pass_sens_refine, called by allocate.c).
 * Planning (pass_sens_plan, before calibration) picks the method: exact
 * when measuring every candidate is cheap (digits), fast otherwise
 * (tiny-gpt and anything larger), and leaves GPTQ candidates out of the
 * fast method when their second moments would not fit PASS_FAST_XX_BYTES
 * (they need E[x xᵀ], k^2 doubles per layer input, and O(n k^2) work).
 * Everything is deterministic: no randomness, fixed sample order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

enum {
    QP_SENS_SAMPLES = 16,    /* at least this many samples */
    QP_SENS_ROWS = 2048,     /* ... or enough for this many output rows */
    EXACT_MEASURED = 8,      /* candidates exact measures per matrix, about */
    PROXY_WEIGHTS = 1 << 15, /* fast: proxies on about this many weights a matrix */
    PROXY_MIN_ROWS = 32,     /* ... and at least this many rows */
};
/* auto: exact when measuring every candidate costs at most this many
 * floating-point operations, and every candidate's dequantized values fit */
#define EXACT_AUTO_FLOPS 1e10
#define EXACT_AUTO_BYTES ((size_t)512 << 20)
/* fast: the gain measurement may always cost this much */
#define FAST_MIN_FLOPS 2e10

/* ---- planning -------------------------------------------------------------- */

static int32_t first_consumer(const ir_graph *g, int32_t w)
{
    for (int32_t i = w + 1; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_inputs; j++)
            if (g->nodes[i].inputs[j] == w) return i;
    return g->n_nodes;
}

/* Floating-point operations of one node for one sample, roughly. */
static double node_flops(const ir_graph *g, const ir_node *n)
{
    double count = (double)ir_node_count(n);
    switch (n->op) {
    case IR_OP_INPUT:
    case IR_OP_WEIGHT:
    case IR_OP_CONST: return 0;
    case IR_OP_LINEAR: return 2 * count * (double)g->nodes[n->inputs[1]].shape[1];
    case IR_OP_MATMUL: {
        const ir_node *a = &g->nodes[n->inputs[0]];
        return 2 * count * (double)a->shape[a->rank - 1];
    }
    case IR_OP_ATTENTION: {
        const ir_node *q = &g->nodes[n->inputs[0]], *k = &g->nodes[n->inputs[1]],
                      *v = &g->nodes[n->inputs[2]];
        return 2.0 * (double)q->shape[0] * (double)k->shape[0] *
               (double)(q->shape[1] + v->shape[1]);
    }
    case IR_OP_GELU:
    case IR_OP_SILU:
    case IR_OP_TANH:
    case IR_OP_SOFTMAX:
    case IR_OP_LAYERNORM:
    case IR_OP_RMSNORM: return 10 * count;
    default: return count;
    }
}

/* The costs planning weighs, per sample: a forward pass, and the re-runs
 * from each matrix's first consumer. */
typedef struct costs {
    double forward;         /* one f32 run */
    double downstream_auto; /* the re-runs from every auto matrix's first consumer */
    double downstream_all;  /* ... from every matrix's */
    size_t candidate_bytes; /* exact: every auto candidate's dequantized values */
    int64_t out_rows;       /* the largest output's rows */
} costs;

static costs plan_costs(const ir_graph *g)
{
    costs c = {0};
    double *suffix = calloc((size_t)g->n_nodes + 1, sizeof *suffix);
    for (int i = g->n_nodes - 1; i >= 0; i--)
        suffix[i] = suffix[i + 1] + node_flops(g, &g->nodes[i]);
    c.forward = suffix[0];
    const ir_selection *sel = g->selection;
    for (int i = 0; i < sel->n; i++) {
        const ir_decision *d = &sel->d[i];
        double down = suffix[first_consumer(g, d->node)];
        c.downstream_all += down;
        if (d->origin != IR_FROM_AUTO) continue;
        c.downstream_auto += down;
        c.candidate_bytes +=
            sizeof(float) * (size_t)ir_node_count(&g->nodes[d->node]) * (size_t)d->n_cands;
    }
    free(suffix);
    c.out_rows = 1;
    for (int o = 0; o < g->n_outputs; o++) {
        const ir_node *n = &g->nodes[g->outputs[o].node];
        int64_t row = n->rank ? n->shape[n->rank - 1] : 1, rows = ir_node_count(n) / row;
        if (rows > c.out_rows) c.out_rows = rows;
    }
    return c;
}

/* The samples exact measures on: --sensitivity-samples, or enough to cover
 * QP_SENS_ROWS output rows, at least QP_SENS_SAMPLES, never more than
 * there are. */
static int exact_samples(const costs *k, int64_t samples, int given)
{
    int64_t n = (QP_SENS_ROWS + k->out_rows - 1) / k->out_rows;
    if (n < QP_SENS_SAMPLES) n = QP_SENS_SAMPLES;
    if (given > 0) n = given;
    return (int)(n < samples ? n : samples < 1 ? 1 : samples);
}

/* fast: as many of those as cost about one calibration pass (at least
 * FAST_MIN_FLOPS, at least one sample). */
static int fast_samples(const costs *k, int64_t samples, int given)
{
    int n = exact_samples(k, samples, given);
    if (given > 0) return n;
    double per = 2 * k->forward + k->downstream_auto;
    double cap = fmax(FAST_MIN_FLOPS, (double)samples * k->forward);
    double fit = per > 0 ? floor(cap / per) : n;
    return fit < 1 ? 1 : fit < n ? (int)fit : n;
}

/* Bytes of E[x xᵀ] of the inputs of the auto matrices that could have GPTQ
 * candidates (each input once). */
static size_t auto_xx_bytes(const ir_graph *g)
{
    size_t bytes = 0;
    const ir_selection *sel = g->selection;
    bool *seen = calloc((size_t)g->n_nodes, 1);
    for (int i = 0; i < sel->n; i++) {
        if (sel->d[i].origin != IR_FROM_AUTO) continue;
        int32_t w = sel->d[i].node;
        int64_t k = g->nodes[w].shape[1];
        for (int j = w + 1; j < g->n_nodes && k <= IR_CALIB_XX_MAX; j++) {
            const ir_node *l = &g->nodes[j];
            if (l->op != IR_OP_LINEAR || l->inputs[1] != w || seen[l->inputs[0]]) continue;
            seen[l->inputs[0]] = true;
            bytes += sizeof(double) * (size_t)(k * k);
        }
    }
    free(seen);
    return bytes;
}

static void add_candidate(sup_arena *a, ir_decision *d, q_precision f, const ir_node *w)
{
    d->cands =
        sup_arena_grow(a, d->cands, (size_t)d->n_cands, (size_t)d->n_cands + 1, sizeof *d->cands);
    size_t bytes = q_precision_bytes(&f, w->shape[0], w->shape[1]);
    d->cands[d->n_cands++] =
        (ir_candidate){.f = f,
                       .sensitivity = -1,
                       .bytes = bytes,
                       .bits_per_weight = 8.0 * (double)bytes / (double)ir_node_count(w),
                       .sqnr_db = INFINITY};
}

/* Every format the search considers for this matrix; act: the :a8 and
 * :static modifiers of the `auto` that chose it (the static scale is set
 * after calibration); gptq: GPTQ rounding too, where the input has at most
 * IR_CALIB_XX_MAX channels. */
static void list_candidates(ir_graph *g, ir_decision *d, const q_precision *act, bool gptq)
{
    const ir_node *w = &g->nodes[d->node];
    static const int groups[] = {128, 64, 32};
    int rounding = gptq && w->shape[1] <= IR_CALIB_XX_MAX ? 2 : 1; /* rtn, gptq */
    /* int3 and int2 take no :a8 (the precision grammar allows it for int8 and int4) */
    static const q_format lows[] = {QFMT_INT4, QFMT_INT3, QFMT_INT2};
    int n_lows = act->act8 ? 1 : 3;
    for (int li = 0; li < n_lows; li++)
        for (int gi = 0; gi < 3; gi++) {
            if (groups[gi] > w->shape[1] && gi < 2)
                continue; /* a group wider than the row only pads */
            for (int asym = 0; asym < 2; asym++) {
                q_format format = asym ? q_format_asym(lows[li]) : lows[li];
                for (int mse = 0; mse < 2; mse++)
                    for (int r = 0; r < rounding; r++)
                        add_candidate(g->arena, d,
                                      (q_precision){.format = format,
                                                    .group = groups[gi],
                                                    .clip = mse ? Q_CLIP_MSE : Q_CLIP_MINMAX,
                                                    .gptq = r > 0,
                                                    .act8 = act->act8,
                                                    .act_static = act->act_static},
                                      w);
                /* the methods with the same storage: importance-weighted, HQQ */
                for (int m = 0; m < 2; m++)
                    add_candidate(g->arena, d,
                                  (q_precision){.format = format,
                                                .group = groups[gi],
                                                .clip = m ? Q_CLIP_MINMAX : Q_CLIP_MSE,
                                                .imat = !m,
                                                .hqq = m,
                                                .act8 = act->act8,
                                                .act_static = act->act_static},
                                  w);
            }
        }
    for (int gi = 0; gi < 3 && !act->act8; gi++) /* NF4: symmetric, round to nearest */
        for (int mse = 0; mse < 2; mse++)
            if (groups[gi] <= w->shape[1] || gi == 2)
                add_candidate(g->arena, d,
                              (q_precision){.format = QFMT_NF4,
                                            .group = groups[gi],
                                            .clip = mse ? Q_CLIP_MSE : Q_CLIP_MINMAX},
                              w);
    add_candidate(
        g->arena, d,
        (q_precision){.format = QFMT_INT8, .act8 = act->act8, .act_static = act->act_static}, w);
    add_candidate(g->arena, d, (q_precision){.format = QFMT_FP8_E4M3}, w);
    add_candidate(g->arena, d, (q_precision){.format = QFMT_FP8_E5M2}, w);
    add_candidate(g->arena, d, (q_precision){.format = QFMT_BF16}, w);
    add_candidate(g->arena, d, (q_precision){.format = QFMT_F16}, w);
    add_candidate(g->arena, d, (q_precision){.format = QFMT_F32}, w);
}

static const char *method_why(ir_graph *g, const pass_spec *spec, const costs *k, int64_t samples,
                              bool fast)
{
    int se = exact_samples(k, samples, spec->sens_samples);
    double exact = se * (k->forward + EXACT_MEASURED * k->downstream_auto) / 1e9;
    if (spec->sens_method != PASS_SENS_AUTO)
        return sup_arena_printf(g->arena, "%s: asked for (--sensitivity %s)",
                                fast ? "fast" : "exact", fast ? "fast" : "exact");
    if (!fast)
        return sup_arena_printf(g->arena,
                                "exact: measuring every candidate end to end costs about %.2g "
                                "GFLOP on %d samples (auto measures exhaustively up to %.0f)",
                                exact, se, EXACT_AUTO_FLOPS / 1e9);
    int sf = fast_samples(k, samples, spec->sens_samples);
    return sup_arena_printf(
        g->arena,
        "fast: measuring every candidate end to end would cost about %.3g GFLOP on %d samples "
        "and %.3g MB of candidates (auto measures exhaustively up to %.0f GFLOP and %zu MB); one "
        "measured perturbation per matrix on %d samples instead, about %.3g GFLOP",
        exact, se, (double)k->candidate_bytes / 1048576, EXACT_AUTO_FLOPS / 1e9,
        EXACT_AUTO_BYTES >> 20, sf, sf * (2 * k->forward + k->downstream_auto) / 1e9);
}

void pass_sens_plan(ir_graph *g, const pass_spec *spec, const q_precision *act, int64_t samples)
{
    ir_selection *sel = g->selection;
    /* the candidates with GPTQ, to weigh the exhaustive method */
    for (int i = 0; i < sel->n; i++)
        if (sel->d[i].origin == IR_FROM_AUTO) list_candidates(g, &sel->d[i], act, true);
    costs k = plan_costs(g);
    bool fast = spec->sens_method == PASS_SENS_FAST;
    if (spec->sens_method == PASS_SENS_AUTO) {
        int se = exact_samples(&k, samples, spec->sens_samples);
        double exact = se * (k.forward + EXACT_MEASURED * k.downstream_auto);
        fast = exact > EXACT_AUTO_FLOPS || k.candidate_bytes > EXACT_AUTO_BYTES;
    }
    sel->method = fast ? "fast" : "exact";
    sel->method_why = method_why(g, spec, &k, samples, fast);
    sel->gptq_candidates = true;
    size_t xx = auto_xx_bytes(g);
    if (fast && xx > PASS_FAST_XX_BYTES) {
        sel->gptq_candidates = false;
        sel->method_why = sup_arena_printf(
            g->arena,
            "%s; GPTQ candidates left out: the second moments of their inputs would take %.0f MB "
            "(more than %zu)",
            sel->method_why, (double)xx / 1048576, PASS_FAST_XX_BYTES >> 20);
        for (int i = 0; i < sel->n; i++)
            if (sel->d[i].origin == IR_FROM_AUTO) {
                sel->d[i].n_cands = 0;
                list_candidates(g, &sel->d[i], act, false);
            }
    }
    sel->second_moments |= sel->gptq_candidates;
}

/* ---- output errors ------------------------------------------------------------ */

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

/* ---- candidates in the interpreter ------------------------------------------------ */

/* A weight's values from the weights file: in place when they are f32,
 * else converted into tmp. */
static const float *weight_values(const ir_node *w, sup_arena *tmp)
{
    const fe_tensor *t = w->tensor;
    if (t->dtype == QMC_DTYPE_F32 && (uintptr_t)t->data % sizeof(float) == 0) return t->data;
    float *out = sup_arena_alloc(tmp, sizeof(float) * (size_t)t->count);
    fe_tensor_to_f32(t, out);
    return out;
}

/* The input of the one linear layer using weight node w, or -1. */
static int32_t only_input(const ir_graph *g, int32_t w)
{
    int32_t x = -1;
    for (int i = w + 1; i < g->n_nodes; i++) {
        const ir_node *l = &g->nodes[i];
        if (l->op != IR_OP_LINEAR || l->inputs[1] != w) continue;
        if (x >= 0) return -1;
        x = l->inputs[0];
    }
    return x;
}

/* Weight nodes whose only linear layer reads the same input as w's get
 * w's GPTQ factor too: the same second moment, the same factor (q, k and
 * v of attention). */
static void share_factor(const ir_graph *g, int32_t w)
{
    ir_calibration *cal = g->calib;
    int32_t x = only_input(g, w);
    for (int i = 0; x >= 0 && i < g->n_nodes; i++)
        if (i != w && g->nodes[i].is_matrix && !cal->gptq_u[i] &&
            g->nodes[i].shape[1] == g->nodes[w].shape[1] && only_input(g, i) == x) {
            cal->gptq_u[i] = cal->gptq_u[w];
            cal->gptq_dead[i] = cal->gptq_dead[w];
        }
}

/* GPTQ's factor of weight node w (cached on g->calib, where the
 * quantize-weights pass finds it). */
static bool gptq_factor(const ir_graph *g, int32_t node, const double **u, const bool **dead)
{
    ir_calibration *cal = g->calib;
    const ir_node *w = &g->nodes[node];
    if (!cal->gptq_u[node]) {
        sup_arena tmp = {0};
        const double *h = pass_calib_second_moment(g, node, &tmp);
        int64_t k = w->shape[1];
        double *uu = h ? sup_arena_alloc(g->arena, sizeof(double) * (size_t)(k * k)) : NULL;
        bool *dd = h ? sup_arena_alloc(g->arena, sizeof(bool) * (size_t)k) : NULL;
        bool ok = h && q_gptq_factor(&tmp, h, k, uu, dd);
        sup_arena_free(&tmp);
        if (!ok) {
            sup_error(w->loc,
                      h ? "cannot quantize weight '%s' by GPTQ: its input's second moment is "
                          "singular"
                        : "quantizing '%s' by GPTQ needs the second moments of its input from "
                          "calibration (--calib)",
                      w->name);
            return false;
        }
        cal->gptq_u[node] = uu;
        cal->gptq_dead[node] = dd;
        share_factor(g, node);
    }
    *u = cal->gptq_u[node];
    *dead = cal->gptq_dead[node];
    return true;
}

/* Quantizes rows[n][k] of weight node w to f into m (in keep). */
static bool quantize_rows(const ir_graph *g, int32_t node, const float *rows, int64_t n,
                          const q_precision *f, sup_arena *keep, q_matrix *m)
{
    const ir_node *w = &g->nodes[node];
    const double *u = NULL;
    const bool *dead = NULL;
    const int64_t *order = NULL;
    if (f->gptq && !(f->act_order ? pass_gptq_act_factor(g, node, &u, &dead, &order)
                                  : gptq_factor(g, node, &u, &dead)))
        return false;
    sup_arena tmp = {0};
    const double *imp = f->imat ? pass_imat_importance(g, node, &tmp) : NULL;
    if (f->imat && !imp) {
        sup_arena_free(&tmp);
        return false;
    }
    char err[256];
    bool ok =
        q_matrix_quantize(keep, rows, n, w->shape[1], f, u, dead, order, imp, m, err, sizeof err);
    sup_arena_free(&tmp);
    if (!ok) {
        sup_error(w->loc, "cannot quantize weight '%s' to %s: %s", w->name,
                  q_precision_name(keep, f), err);
        return false;
    }
    return true;
}

/* fast: t's weight quantized to candidate k, held as codes until another
 * candidate is asked for. */
static bool hold(pass_sens *c, pass_sens_tensor *t, int k)
{
    if (t->held == k) return true;
    sup_arena_free(&t->qa);
    t->held = -1;
    sup_arena tmp = {0};
    const float *orig = weight_values(t->w, &tmp);
    bool ok =
        quantize_rows(c->g, t->d->node, orig, t->w->shape[0], &t->d->cands[k].f, &t->qa, &t->q);
    sup_arena_free(&tmp);
    interp_weight_release(c->g, t->d->node);
    if (!ok) return false;
    t->deq_scratch = sup_arena_alloc(&t->qa, q_matrix_scratch(&t->q));
    t->held = k;
    return true;
}

/* The interpreter's provider of a held weight. */
static void provide_held(void *ctx, int32_t node, float *out)
{
    pass_sens_tensor *t = ctx;
    (void)node;
    q_matrix_dequantize_rows(&t->q, 0, t->q.n, out, t->deq_scratch);
}

static bool set_candidate(pass_sens *c, pass_sens_tensor *t, int k)
{
    const ir_candidate *cand = &t->d->cands[k];
    if (cand->f.format == QFMT_F32) k = -1;
    if (t->cur == k) return true;
    if (k < 0) {
        interp_reset_weight(c->it, t->d->node);
        interp_set_act8(c->it, t->d->node, false, 0);
    } else if (c->fast) {
        if (!hold(c, t, k)) return false;
        interp_set_weight_fn(c->it, t->d->node, provide_held, t);
        interp_set_act8(c->it, t->d->node, cand->f.act8, cand->f.act_scale);
    } else {
        interp_set_weight(c->it, t->d->node, cand->dequant);
        interp_set_act8(c->it, t->d->node, cand->f.act8, cand->f.act_scale);
    }
    t->cur = k;
    return true;
}

static void set_f32(pass_sens *c, pass_sens_tensor *t)
{
    if (t->cur < 0) return;
    interp_reset_weight(c->it, t->d->node);
    interp_set_act8(c->it, t->d->node, false, 0);
    t->cur = -1;
}

/* ---- runs ------------------------------------------------------------------------ */

/* Loads samples s0 .. s0 + n - 1 into the slots and makes their
 * references: the f32 outputs calibration kept, or an f32 run. full: the
 * interpreter holds every node's f32 values afterwards (the cache of the
 * re-runs), which needs the run. */
static bool load_reference(pass_sens *c, int64_t s0, int n, bool full)
{
    interp_set_batch(c->it, n);
    for (int b = 0; b < n; b++)
        if (!interp_files_load_slot(c->g, c->it, c->data->ins, c->data->n, s0 + b, b)) return false;
    float **kept = c->g->calib ? c->g->calib->ref_out : NULL;
    if (full || !kept) {
        for (int i = 0; i < c->n_t; i++) set_f32(c, &c->t[i]);
        if (!interp_run(c->it)) return false;
    }
    for (int o = 0; o < c->n_out; o++) {
        size_t count = (size_t)c->out_count[o] * (size_t)n;
        memcpy(c->ref[o], kept ? kept[o] + s0 * c->out_count[o] : interp_output(c->it, o),
               sizeof(float) * count);
        if (c->g->outputs[o].logits)
            q_log_softmax(c->ref[o], (int64_t)count, c->out_row[o], c->ref_logp[o]);
    }
    return true;
}

/* Adds the error of every slot's outputs, in slot order. */
static void add_error(pass_sens *c, q_error_acc *acc)
{
    int n = interp_batch(c->it);
    for (int b = 0; b < n; b++)
        for (int o = 0; o < c->n_out; o++) {
            size_t off = (size_t)c->out_count[o] * (size_t)b;
            q_error_add(&acc[o], c->g->outputs[o].logits, c->ref[o] + off, c->ref_logp[o] + off,
                        interp_output_slot(c->it, o, b), c->out_count[o], c->out_row[o]);
        }
}

/* Sets every tensor to choice[i] (-1: f32) and re-runs from the first
 * changed consumer (from the start: all of it); adds the error to acc. */
static bool run_config(pass_sens *c, const int *choice, bool from_start, q_error_acc *acc)
{
    int32_t first = c->g->n_nodes;
    for (int i = 0; i < c->n_t; i++) {
        pass_sens_tensor *t = &c->t[i];
        if (choice[i] < 0 || t->d->cands[choice[i]].f.format == QFMT_F32) {
            set_f32(c, t);
            continue;
        }
        if (!set_candidate(c, t, choice[i])) return false;
        if (t->first < first) first = t->first;
    }
    if (from_start) first = 0;
    if (first < c->g->n_nodes && !interp_run_from(c->it, first)) return false;
    add_error(c, acc);
    return true;
}

/* ---- exact: every candidate worth it, end to end ------------------------------------- */

/* Sensitivity of every candidate to measure on sample s. */
static bool measure_sample(pass_sens *c, int64_t s, const int *base_choice)
{
    if (!load_reference(c, s, 1, true) || !run_config(c, base_choice, false, c->base)) return false;
    /* matrices by decreasing first consumer: earlier nodes keep their values */
    for (int i = c->n_t - 1; i >= 0; i--) {
        pass_sens_tensor *t = &c->t[i];
        if (!t->automatic && base_choice[i] >= 0)
            continue; /* part of the base: not measured alone */
        for (int k = 0; k < t->d->n_cands; k++) {
            if (!t->d->cands[k].dequant || (!t->automatic && k != t->fixed)) continue;
            if (t->automatic && !t->d->cands[k].measured) continue;
            if (!set_candidate(c, t, k) || !interp_run_from(c->it, t->first)) return false;
            add_error(c, t->acc + (size_t)k * (size_t)c->n_out);
        }
        if (!t->automatic && base_choice[i] >= 0) {
            if (!set_candidate(c, t, base_choice[i])) return false;
        } else {
            set_f32(c, t);
        }
    }
    return true;
}

static bool measure_exact(pass_sens *c, int n_samples, const int *base_choice)
{
    sup_progress pr;
    sup_progress_begin(&pr, "measuring sensitivity");
    for (int i = 0; i < n_samples; i++) {
        if (!measure_sample(c, (int64_t)i * c->data->samples / n_samples, base_choice))
            return false;
        sup_progress_update(&pr, i + 1, n_samples);
    }
    sup_progress_end(&pr);
    return true;
}

/* ---- fast: one perturbation per matrix, scaled by proxies ------------------------------ */

/* The given samples: the reference, the base, then each matrix at the
 * candidate want[i] (-1: none), re-run from its first consumer for every
 * slot at once. */
static bool measure_batch(pass_sens *c, const int64_t *samples, int n, const int *base_choice,
                          const int *want)
{
    interp_set_batch(c->it, n);
    for (int b = 0; b < n; b++)
        if (!interp_files_load_slot(c->g, c->it, c->data->ins, c->data->n, samples[b], b))
            return false;
    for (int i = 0; i < c->n_t; i++) set_f32(c, &c->t[i]);
    if (!interp_run(c->it)) return false;
    for (int o = 0; o < c->n_out; o++) {
        size_t count = (size_t)c->out_count[o] * (size_t)n;
        memcpy(c->ref[o], interp_output(c->it, o), sizeof(float) * count);
        if (c->g->outputs[o].logits)
            q_log_softmax(c->ref[o], (int64_t)count, c->out_row[o], c->ref_logp[o]);
    }
    if (!run_config(c, base_choice, false, c->base)) return false;
    sup_progress pr;
    sup_progress_begin(&pr, "measuring sensitivity");
    for (int i = c->n_t - 1; i >= 0; i--) {
        pass_sens_tensor *t = &c->t[i];
        int k = want[i];
        if (k >= 0) {
            if (!set_candidate(c, t, k) || !interp_run_from(c->it, t->first)) return false;
            add_error(c, t->acc + (size_t)k * (size_t)c->n_out);
            set_f32(c, t);
            sup_arena_free(&t->qa);
            t->held = -1;
        }
        sup_progress_update(&pr, c->n_t - i, c->n_t);
    }
    sup_progress_end(&pr);
    return true;
}

/* One round over n_samples evenly spaced samples, measuring want[i] of
 * each matrix; the base's error starts again (the same samples give it the
 * same value). */
static bool measure_fast(pass_sens *c, int n_samples, const int *base_choice, const int *want)
{
    int64_t *samples = sup_arena_alloc(c->tmp, sizeof(int64_t) * (size_t)c->slots);
    memset(c->base, 0, sizeof *c->base * (size_t)c->n_out);
    for (int i = 0; i < n_samples; i += c->slots) {
        int n = n_samples - i < c->slots ? n_samples - i : c->slots;
        for (int b = 0; b < n; b++) samples[b] = (int64_t)(i + b) * c->data->samples / n_samples;
        if (!measure_batch(c, samples, n, base_choice, want)) return false;
    }
    return true;
}

/* fast: every candidate not measured gets the sensitivity of the gain
 * (measured sensitivity over proxy) of the measured candidate nearest to it
 * in proxy (by ratio), times its own proxy. d->gain: int4:g32's. */
static void estimate(pass_sens_tensor *t)
{
    ir_decision *d = t->d;
    int r = pass_sens_ref_candidate(d);
    if (r >= 0 && d->cands[r].sensitivity >= 0)
        d->gain = d->cands[r].proxy > 0 ? d->cands[r].sensitivity / d->cands[r].proxy : 0;
    for (int k = 0; k < d->n_cands; k++) {
        ir_candidate *x = &d->cands[k];
        if (x->measured || x->f.format == QFMT_F32) continue;
        int near = -1;
        double dist = INFINITY;
        for (int m = 0; m < d->n_cands; m++) {
            const ir_candidate *y = &d->cands[m];
            if (!y->measured || y->sensitivity < 0 || y->f.format == QFMT_F32) continue;
            double dm = fabs(log((y->proxy + 1e-30) / (x->proxy + 1e-30)));
            if (dm < dist) dist = dm, near = m;
        }
        if (near < 0) continue;
        const ir_candidate *y = &d->cands[near];
        x->sensitivity = y->proxy > 0 ? y->sensitivity / y->proxy * x->proxy : 0;
    }
}

/* The measured sensitivities of the candidates just measured (want), and
 * the estimates of the others. */
static void collect(pass_sens *c, const int *base_choice, const int *want)
{
    double base = pass_sens_additive(c, c->base);
    for (int i = 0; i < c->n_t; i++) {
        pass_sens_tensor *t = &c->t[i];
        for (int k = 0; k < t->d->n_cands; k++) {
            ir_candidate *cand = &t->d->cands[k];
            bool alone = want           ? k == want[i]
                         : t->automatic ? cand->measured
                                        : k == t->fixed && base_choice[i] < 0;
            if (cand->f.format == QFMT_F32)
                cand->sensitivity = 0;
            else if (alone)
                cand->sensitivity =
                    fmax(0, pass_sens_additive(c, t->acc + (size_t)k * (size_t)c->n_out) - base);
            if (alone && want && t->automatic) cand->measured = true;
        }
        if (c->fast && t->automatic) estimate(t);
    }
}

bool pass_sens_measure(pass_sens *c, int n_samples, const int *base_choice)
{
    if (!c->fast) {
        if (!measure_exact(c, n_samples, base_choice)) return false;
        collect(c, base_choice, NULL);
        return true;
    }
    /* an auto matrix at its reference candidate, a fixed one alone at its
     * format unless it is part of the base */
    int *want = sup_arena_alloc(c->tmp, sizeof(int) * (size_t)(c->n_t + 1));
    for (int i = 0; i < c->n_t; i++) {
        pass_sens_tensor *t = &c->t[i];
        want[i] = t->automatic ? pass_sens_ref_candidate(t->d) : base_choice[i] < 0 ? t->fixed : -1;
    }
    if (!measure_fast(c, n_samples, base_choice, want)) return false;
    collect(c, base_choice, want);
    return true;
}

int pass_sens_refine(pass_sens *c, int n_samples, const int *base_choice, const int *choice)
{
    int *want = sup_arena_alloc(c->tmp, sizeof(int) * (size_t)(c->n_t + 1)), n = 0;
    for (int i = 0; i < c->n_t; i++) {
        pass_sens_tensor *t = &c->t[i];
        int k = choice[i];
        want[i] = t->automatic && k >= 0 && !t->d->cands[k].measured &&
                          t->d->cands[k].f.format != QFMT_F32
                      ? k
                      : -1;
        n += want[i] >= 0;
    }
    if (n == 0) return 0;
    if (!measure_fast(c, n_samples, base_choice, want)) return -1;
    collect(c, base_choice, want);
    return n;
}

/* The error of one combination over every calibration sample. */
bool pass_sens_verify(pass_sens *c, const int *choice, double *err, double *err_add)
{
    q_error_acc *acc = sup_arena_alloc(c->tmp, sizeof *acc * (size_t)c->n_out);
    bool kept = c->g->calib && c->g->calib->ref_out;
    sup_progress pr;
    sup_progress_begin(&pr, "verifying");
    for (int64_t s = 0; s < c->data->samples; s += c->slots) {
        int n = (int)(c->data->samples - s < c->slots ? c->data->samples - s : c->slots);
        /* with the kept references one run per batch, else the f32 run first */
        if (!load_reference(c, s, n, false) || !run_config(c, choice, kept, acc)) return false;
        sup_progress_update(&pr, s + n, c->data->samples);
    }
    sup_progress_end(&pr);
    *err = user_error(c, acc);
    *err_add = pass_sens_additive(c, acc);
    c->g->selection->verify_runs++;
    return true;
}

/* ---- candidates' proxies ---------------------------------------------------------------- */

/* exact: every candidate quantized whole, its dequantized values kept. */
static bool prepare_exact(pass_sens *c, ir_decision *d, const float *orig, const double *h,
                          const double *m)
{
    ir_node *w = &c->g->nodes[d->node];
    int64_t count = w->shape[0] * w->shape[1];
    double signal = q_quad_error(orig, NULL, h, m, w->shape[0], w->shape[1]);
    if (!(signal > 0)) signal = 1;
    for (int k = 0; k < d->n_cands; k++) {
        ir_candidate *cand = &d->cands[k];
        if (cand->f.format == QFMT_F32) continue;
        sup_arena scratch = {0};
        ir_qweight *q = pass_quantize_matrix(&scratch, c->g, d->node, &cand->f);
        if (q) {
            float *keep = sup_arena_alloc(c->tmp, sizeof(float) * (size_t)count);
            memcpy(keep, q->dequant, sizeof(float) * (size_t)count);
            cand->dequant = keep;
            cand->sqnr_db = q->stats.sqnr_db;
            cand->proxy = q_quad_error(orig, keep, h, m, w->shape[0], w->shape[1]) / signal;
        }
        sup_arena_free(&scratch);
        if (!q) return false;
    }
    return true;
}

/* fast: the rows proxies are measured on: all of a small matrix, else
 * about PROXY_WEIGHTS weights in evenly spaced rows. */
static int64_t proxy_rows(int64_t n, int64_t k)
{
    int64_t rows = (PROXY_WEIGHTS + k - 1) / k;
    if (rows < PROXY_MIN_ROWS) rows = PROXY_MIN_ROWS;
    return rows < n ? rows : n;
}

/* fast: every candidate's proxy and SQNR on a sample of rows. */
static bool prepare_fast(pass_sens *c, ir_decision *d, const double *h, const double *m)
{
    const ir_graph *g = c->g;
    const ir_node *w = &g->nodes[d->node];
    int64_t n = w->shape[0], k = w->shape[1], ns = proxy_rows(n, k);
    sup_arena tmp = {0};
    float *rows = sup_arena_alloc(&tmp, sizeof(float) * (size_t)(ns * k));
    const fe_tensor *t = w->tensor;
    size_t elem = t->size / (size_t)t->count;
    for (int64_t i = 0; i < ns; i++) {
        fe_tensor view = *t;
        view.data = (const char *)t->data + (size_t)(i * n / ns * k) * elem;
        view.count = k;
        view.size = (size_t)k * elem;
        fe_tensor_to_f32(&view, rows + i * k);
    }
    interp_weight_release(g, d->node);
    double signal = q_quad_error(rows, NULL, h, m, ns, k);
    if (!(signal > 0)) signal = 1;
    float *deq = sup_arena_alloc(&tmp, sizeof(float) * (size_t)(ns * k));
    bool ok = true;
    for (int j = 0; j < d->n_cands && ok; j++) {
        ir_candidate *cand = &d->cands[j];
        if (cand->f.format == QFMT_F32) continue;
        sup_arena qa = {0};
        q_matrix q;
        ok = quantize_rows(g, d->node, rows, ns, &cand->f, &qa, &q);
        if (ok) {
            q_matrix_dequantize_rows(&q, 0, ns, deq, sup_arena_alloc(&qa, q_matrix_scratch(&q)));
            cand->sqnr_db = q_measure(rows, deq, ns * k).sqnr_db;
            cand->proxy = q_quad_error(rows, deq, h, m, ns, k) / signal;
        }
        sup_arena_free(&qa);
    }
    sup_arena_free(&tmp);
    return ok;
}

bool pass_sens_prepare_candidates(pass_sens *c, pass_sens_tensor *t)
{
    ir_decision *d = t->d;
    /* (the static activation scale, now that calibration has run) */
    float scale = 0;
    for (int k = 0; k < d->n_cands; k++)
        if (d->cands[k].f.act_static && d->cands[k].f.format != QFMT_F32)
            d->cands[k].f.act_scale = scale ? scale : (scale = pass_calib_act_scale(c->g, d->node));
    if (c->fast && !t->automatic) return true; /* its format is fixed: nothing to weigh */
    sup_arena hm = {0};
    const double *m = pass_calib_mean_sq(c->g, d->node, &hm);
    const double *h = pass_calib_second_moment(c->g, d->node, &hm);
    bool ok = c->fast ? prepare_fast(c, d, h, m) : prepare_exact(c, d, t->orig, h, m);
    sup_arena_free(&hm);
    return ok;
}

/* The reference candidate of the ranking, int4:g32 (min-max, round to
 * nearest), or -1. */
int pass_sens_ref_candidate(const ir_decision *d)
{
    for (int k = 0; k < d->n_cands; k++)
        if (d->cands[k].f.format == QFMT_INT4 && d->cands[k].f.group == 32 &&
            d->cands[k].f.clip == Q_CLIP_MINMAX && !d->cands[k].f.gptq)
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
    add_candidate(g->arena, t->d, t->w->qformat, t->w);
    t->fixed = t->d->n_cands - 1;
}

/* ---- setting up ------------------------------------------------------------ */

bool pass_sens_open(pass_sens *c, ir_graph *g, const pass_calib_data *data, sup_arena *tmp)
{
    memset(c, 0, sizeof *c);
    c->g = g;
    c->tmp = tmp;
    c->data = data;
    /* fixed formats (no method) are measured one perturbation per matrix,
     * as fast measures: held as codes, never the whole model dequantized */
    c->fast = !g->selection->method || !strcmp(g->selection->method, "fast");
    c->slots = pass_batch_slots(g, data->samples);
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
        size_t all = (size_t)c->out_count[o] * (size_t)c->slots;
        c->ref[o] = sup_arena_alloc(tmp, sizeof(float) * all);
        c->ref_logp[o] = sup_arena_alloc(tmp, sizeof(double) * all);
    }
    c->it = interp_new_batch(tmp, g, c->slots);
    interp_release_weights(c->it, true);
    ir_selection *sel = g->selection;
    c->t = sup_arena_alloc(tmp, sizeof *c->t * (size_t)(sel->n + 1));
    for (int i = 0; i < sel->n; i++) {
        pass_sens_tensor *t = &c->t[c->n_t++];
        t->d = &sel->d[i];
        t->w = &g->nodes[t->d->node];
        t->automatic = t->d->origin == IR_FROM_AUTO;
        t->first = first_consumer(g, t->d->node);
        t->orig = c->fast ? NULL : interp_node_value(c->it, t->d->node);
        t->cur = t->held = -1;
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

void pass_sens_close(pass_sens *c)
{
    for (int i = 0; i < c->n_t; i++) sup_arena_free(&c->t[i].qa);
}

void pass_sens_alloc_acc(pass_sens *c)
{
    for (int i = 0; i < c->n_t; i++)
        c->t[i].acc = sup_arena_alloc(c->tmp, sizeof(q_error_acc) * (size_t)c->n_out *
                                                  (size_t)c->t[i].d->n_cands);
}

int pass_sens_count(const pass_sens *c, const pass_spec *spec)
{
    costs k = plan_costs(c->g);
    int given = spec ? spec->sens_samples : 0;
    bool fast = c->fast && c->g->selection->automatic;
    return fast ? fast_samples(&k, c->data->samples, given)
                : exact_samples(&k, c->data->samples, given);
}
