/* fold_scales.c: the channel-scaling pass, for `:awq` and `:smooth`.
 *
 * Needs: pass_plan_precision has resolved the formats; the calibrate pass
 * has run (each linear input's per-channel mean square and largest |x|,
 * and E[x xᵀ] where collected).
 * Guarantees: for every activation x read by a linear layer whose format
 * asks for :awq or :smooth, either
 *   - x is the output of a norm (rmsnorm, layernorm) whose weight (and
 *     bias) only it uses, or the elementwise product of a linear layer's
 *     output with something else (SwiGLU's up projection), whose weight
 *     (and bias) only it uses, or the output of an attention whose values
 *     are a linear layer's output only it reads (the value projection:
 *     softmax(q kᵀ) v is linear in v, so dividing the projection's rows
 *     divides x's channels; the query heads that share a key/value head
 *     share its scales, the geometric mean of theirs; not when a reader
 *     asks for GPTQ, with which it measured worse); every reader of x
 *     is a linear layer reading it as its input, with a weight only
 *     readers of x use; then per input channel scales s > 0 are searched
 *     (below), the norm's weight and bias (or the up or value projection's
 *     rows and bias) are divided by s and every reader's weight columns
 *     multiplied by s: the f32 model computes the
 *     same function, up to rounding, and the weights to quantize carry the
 *     scales. The changed weights are arena copies (the file is untouched),
 *     and the calibration is run again on the changed model, so every
 *     statistic that follows (GPTQ's E[x xᵀ], :imat's importance, :static
 *     scales) is that of the scaled activations;
 *   - or nothing changes, and each reader's decision says why (the report).
 * Each reader's decision records the scales chosen (d->scaling).
 *
 * Search. One strength α in 0, 0.05, .., 1 per activation (all its readers
 * share s, as they share x), the α whose readers' outputs are nearest
 * their f32 outputs on rows of x calibration kept (IR_CALIB_ROWS, evenly
 * spaced over the samples; fewer for wide layers): the sum over readers of
 * ||x Wᵀ - a(x diag(s)⁻¹) Q(W diag s)ᵀ||² / ||x Wᵀ||², Q each reader's
 * format (GPTQ's rounding replaced by its clip rule while searching, as
 * AWQ does), a the int8 rounding of each row for :a8 readers (dynamic, as
 * the search cannot know a :static scale yet), else nothing.
 *   awq (Lin et al. 2023): s_j = rms(x_j)^α, normalised so that
 *     max s · min s = 1.
 *   smooth (Xiao et al. 2023): s_j = max|x_j|^α / max_i |W_ij|^(1-α) over
 *     every reader's column j, and the same with rms(x_j) for max|x_j|
 *     (each α with both: on llama-dev the rms form predicts less noise on
 *     every activation, and lowers the calibration KL of int8:a8:smooth
 *     from 0.00068 to 0.00064).
 * No scaling (s = 1) is a candidate too, so the predicted noise never
 * grows. Deterministic: no randomness, fixed order. */
#include <math.h>
#include <string.h>

#include "passes.h"

enum { ALPHA_STEPS = 20 };
#define SEARCH_MACS 5e7 /* multiply-adds per strength tried, about */

/* An activation the scales fold into, its source and its readers. */
typedef struct fold {
    int32_t x;           /* the activation */
    int32_t src;         /* the norm producing it, or the linear whose rows are divided */
    int32_t scale_w;     /* the norm's weight or the linear's weight */
    int32_t bias_w;      /* the norm's bias or the linear's bias, or -1 */
    bool rows;           /* scale_w is a matrix whose rows are divided (else a vector) */
    int heads, kv_heads; /* attention: x's channels per value channel (else 0) */
    int64_t dv;          /* attention: a value head's size */
    int32_t readers[64];
    int n_readers;
    bool smooth;
} fold;

/* How many nodes read node v (each input counted). */
static int uses(const ir_graph *g, int32_t v)
{
    int n = 0;
    for (int i = v + 1; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_inputs; j++) n += g->nodes[i].inputs[j] == v;
    return n;
}

static bool is_weight(const ir_graph *g, int32_t v)
{
    return v >= 0 && g->nodes[v].op == IR_OP_WEIGHT;
}

/* The readers of x: every one a linear layer with x as its input and a
 * weight matrix only readers of x use. NULL, or why not. */
static const char *find_readers(const ir_graph *g, fold *f)
{
    f->n_readers = 0;
    for (int i = f->x + 1; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        bool reads = false;
        for (int j = 0; j < n->n_inputs; j++) reads |= n->inputs[j] == f->x;
        if (!reads) continue;
        if (n->op != IR_OP_LINEAR || n->inputs[0] != f->x || n->inputs[1] == f->x ||
            !g->nodes[n->inputs[1]].is_matrix)
            return sup_arena_printf(g->arena, "'%s' reads the activation too (%s)", n->name,
                                    ir_op_name(n->op));
        if (f->n_readers == (int)(sizeof f->readers / sizeof f->readers[0]))
            return "too many linear layers read the activation";
        f->readers[f->n_readers++] = i;
    }
    for (int r = 0; r < f->n_readers; r++) {
        int32_t w = g->nodes[f->readers[r]].inputs[1], mine = 0;
        for (int q = 0; q < f->n_readers; q++) mine += g->nodes[f->readers[q]].inputs[1] == w;
        if (uses(g, w) != mine)
            return sup_arena_printf(g->arena, "its weight '%s' is used elsewhere too",
                                    g->nodes[w].name);
    }
    return NULL;
}

/* Where x's scales can be divided out: NULL, or why nowhere. */
static const char *find_source(const ir_graph *g, fold *f)
{
    const ir_node *x = &g->nodes[f->x];
    f->bias_w = -1;
    if (x->op == IR_OP_RMSNORM || x->op == IR_OP_LAYERNORM) {
        f->src = f->x;
        f->scale_w = x->inputs[1];
        f->bias_w = x->n_inputs > 2 ? x->inputs[2] : -1;
        f->rows = false;
    } else if (x->op == IR_OP_MUL && x->n_inputs == 2) {
        /* (act(gate) * up): up's rows take the scales, if its output has x's shape */
        int32_t up = -1;
        for (int j = 1; j >= 0 && up < 0; j--) {
            const ir_node *u = &g->nodes[x->inputs[j]];
            if (u->op == IR_OP_LINEAR && uses(g, x->inputs[j]) == 1 && u->rank == x->rank &&
                !memcmp(u->shape, x->shape, sizeof(int64_t) * (size_t)x->rank) &&
                is_weight(g, u->inputs[1]))
                up = x->inputs[j];
        }
        if (up < 0)
            return sup_arena_printf(g->arena,
                                    "its input '%s' is a product without a linear factor of its "
                                    "shape",
                                    x->name);
        f->src = up;
        f->scale_w = g->nodes[up].inputs[1];
        f->bias_w = g->nodes[up].n_inputs > 2 ? g->nodes[up].inputs[2] : -1;
        f->rows = true;
    } else if (x->op == IR_OP_ATTENTION) {
        /* softmax(q kᵀ) v is linear in v: the value projection's rows take
         * the scales, each shared by the query heads reading its head */
        int32_t v = x->inputs[2];
        const ir_node *vn = &g->nodes[v];
        int kvh = x->attr.kv_heads ? x->attr.kv_heads : x->attr.heads;
        if (vn->op != IR_OP_LINEAR || uses(g, v) != 1 || !is_weight(g, vn->inputs[1]) || kvh <= 0 ||
            x->attr.heads % kvh || vn->shape[vn->rank - 1] % kvh ||
            x->shape[x->rank - 1] != vn->shape[vn->rank - 1] / kvh * x->attr.heads)
            return sup_arena_printf(g->arena,
                                    "its input comes from attention whose values '%s' are not a "
                                    "linear layer's output read only there",
                                    vn->name);
        for (int r = 0; r < f->n_readers; r++)
            if (g->nodes[g->nodes[f->readers[r]].inputs[1]].qformat.gptq)
                return "its input comes from attention, and GPTQ rounds its readers (the "
                       "search predicts with round to nearest, and on tiny-gpt the value "
                       "projection's scales measured worse with GPTQ)";
        f->src = v;
        f->scale_w = vn->inputs[1];
        f->bias_w = vn->n_inputs > 2 ? vn->inputs[2] : -1;
        f->rows = true;
        f->heads = x->attr.heads, f->kv_heads = kvh;
        f->dv = vn->shape[vn->rank - 1] / kvh;
    } else {
        return sup_arena_printf(g->arena,
                                "its input comes from %s, which has no weight to take the scales",
                                ir_op_name(x->op));
    }
    if (!is_weight(g, f->scale_w) || uses(g, f->scale_w) != 1 ||
        (f->bias_w >= 0 && (!is_weight(g, f->bias_w) || uses(g, f->bias_w) != 1)))
        return sup_arena_printf(g->arena, "the weight of '%s' is shared", g->nodes[f->src].name);
    return NULL;
}

/* ---- the search -------------------------------------------------------------- */

typedef struct reader {
    int64_t n, k;
    float *w;      /* the f32 weight */
    q_precision f; /* its format, GPTQ's rounding replaced by its clip rule */
    double energy; /* sum of its f32 outputs' squares on the rows */
    float *y;      /* its f32 outputs on the rows [rows][n] */
} reader;

typedef struct search {
    const ir_graph *g;
    const fold *f;
    const ir_calib_stats *st;
    const float *x; /* the sampled input rows [rows][k] */
    int64_t rows;
    reader *r;
    float *wmax; /* smooth: max_i |W_ij| over the readers */
} search;

/* Attention: the query heads reading one value head share its scales,
 * their geometric mean. */
static void tie(const fold *f, float *sc)
{
    if (!f->kv_heads) return;
    int per = f->heads / f->kv_heads;
    for (int kv = 0; kv < f->kv_heads; kv++)
        for (int64_t d = 0; d < f->dv; d++) {
            double lg = 0;
            for (int h = kv * per; h < (kv + 1) * per; h++) lg += log((double)sc[h * f->dv + d]);
            float m = (float)exp(lg / per);
            for (int h = kv * per; h < (kv + 1) * per; h++) sc[h * f->dv + d] = m;
        }
}

/* The scales of strength alpha (smooth: of x's rms, else its largest |x|). */
static void scales_of(const search *s, double alpha, bool rms, float *out)
{
    int64_t k = s->st->channels;
    double lo = INFINITY, hi = 0;
    for (int64_t j = 0; j < k; j++) {
        double v;
        if (s->f->smooth) {
            double a = fmax(rms ? sqrt(s->st->mean_sq[j]) : s->st->absmax[j], 1e-5),
                   w = fmax(s->wmax[j], 1e-5);
            v = pow(a, alpha) / pow(w, 1 - alpha);
        } else {
            v = pow(fmax(sqrt(s->st->mean_sq[j]), 1e-5), alpha);
        }
        out[j] = (float)v;
        lo = fmin(lo, v), hi = fmax(hi, v);
    }
    double norm = s->f->smooth || !(lo > 0) ? 1 : sqrt(lo * hi);
    for (int64_t j = 0; j < k; j++) out[j] = (float)fmax(out[j] / norm, 1e-6);
    tie(s->f, out);
}

/* y[rows][n] = x[rows][k] wᵀ, each dot in double. */
static void outputs(const float *x, int64_t rows, const float *w, int64_t n, int64_t k, float *y)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) {
            double acc = 0;
            for (int64_t j = 0; j < k; j++) acc += (double)x[r * k + j] * w[i * k + j];
            y[r * n + i] = (float)acc;
        }
}

/* The rows as the scaled layer reads them: x / s, and rounded to int8 per
 * row (as :a8 computes) when a8 (q: k bytes of scratch). */
static void scaled_rows(const search *s, const float *sc, bool a8, int8_t *q, float *out)
{
    int64_t k = s->st->channels;
    for (int64_t r = 0; r < s->rows; r++) {
        float *o = out + r * k;
        for (int64_t j = 0; j < k; j++) o[j] = s->x[r * k + j] / sc[j];
        if (!a8) continue;
        float xs;
        q_quantize_row_a8_ref(o, k, q, &xs);
        for (int64_t j = 0; j < k; j++) o[j] = (float)q[j] * xs;
    }
}

/* The readers' output error on the rows with scales sc, each relative to
 * its output's energy, summed; false on an error. */
static bool noise_of(const search *s, const float *sc, double *out)
{
    int64_t k = s->st->channels;
    double total = 0;
    sup_arena tmp = {0};
    double *imp = sup_arena_alloc(&tmp, sizeof(double) * (size_t)k);
    for (int64_t j = 0; j < k; j++) imp[j] = s->st->mean_sq[j] / ((double)sc[j] * sc[j]);
    float *xs = sup_arena_alloc(&tmp, sizeof(float) * (size_t)(s->rows * k));
    int8_t *q8 = sup_arena_alloc(&tmp, (size_t)k);
    for (int i = 0; i < s->f->n_readers; i++) {
        const reader *r = &s->r[i];
        if (r->f.format == QFMT_F32 || !(r->energy > 0)) continue;
        float *ws = sup_arena_alloc(&tmp, sizeof(float) * (size_t)(r->n * k));
        for (int64_t a = 0; a < r->n; a++)
            for (int64_t j = 0; j < k; j++) ws[a * k + j] = r->w[a * k + j] * sc[j];
        q_matrix m;
        char err[256];
        if (!q_matrix_quantize(&tmp, ws, r->n, k, &r->f, NULL, NULL, NULL, r->f.imat ? imp : NULL,
                               &m, err, sizeof err)) {
            const ir_node *w = &s->g->nodes[s->g->nodes[s->f->readers[i]].inputs[1]];
            sup_error(w->loc, "cannot quantize weight '%s' to %s: %s", w->name,
                      q_precision_name(&tmp, &r->f), err);
            sup_arena_free(&tmp);
            return false;
        }
        q_matrix_dequantize_rows(&m, 0, r->n, ws, sup_arena_alloc(&tmp, q_matrix_scratch(&m)));
        scaled_rows(s, sc, r->f.act8, q8, xs);
        float *y = sup_arena_alloc(&tmp, sizeof(float) * (size_t)(s->rows * r->n));
        outputs(xs, s->rows, ws, r->n, k, y);
        double e = 0;
        for (int64_t v = 0; v < s->rows * r->n; v++) {
            double d = (double)y[v] - r->y[v];
            e += d * d;
        }
        total += e / r->energy;
    }
    sup_arena_free(&tmp);
    *out = total;
    return true;
}

/* The sampled rows (evenly spaced, fewer for large layers: about
 * SEARCH_MACS multiply-adds per strength), and the readers' weights,
 * formats and f32 outputs on them. */
static void load_readers(search *s, sup_arena *a)
{
    const ir_graph *g = s->g;
    int64_t k = s->st->channels, nsum = 0;
    s->r = sup_arena_alloc(a, sizeof *s->r * (size_t)s->f->n_readers);
    s->wmax = sup_arena_alloc(a, sizeof(float) * (size_t)k);
    for (int i = 0; i < s->f->n_readers; i++)
        nsum += g->nodes[g->nodes[s->f->readers[i]].inputs[1]].shape[0];
    int64_t want = (int64_t)(SEARCH_MACS / ((double)nsum * (double)k));
    want = want < 16 ? 16 : want;
    int64_t every = s->st->n_rows > want ? (s->st->n_rows + want - 1) / want : 1;
    float *x = sup_arena_alloc(a, sizeof(float) * (size_t)(s->st->n_rows * k));
    s->rows = 0;
    for (int64_t r = 0; r < s->st->n_rows; r += every)
        memcpy(x + s->rows++ * k, s->st->rows + r * k, sizeof(float) * (size_t)k);
    s->x = x;
    for (int i = 0; i < s->f->n_readers; i++) {
        const ir_node *w = &g->nodes[g->nodes[s->f->readers[i]].inputs[1]];
        reader *r = &s->r[i];
        r->n = w->shape[0], r->k = k;
        r->w = sup_arena_alloc(a, sizeof(float) * (size_t)(r->n * k));
        fe_tensor_to_f32(w->tensor, r->w);
        r->f = w->qformat;
        r->f.gptq = r->f.act_order = false;
        r->y = sup_arena_alloc(a, sizeof(float) * (size_t)(s->rows * r->n));
        outputs(s->x, s->rows, r->w, r->n, k, r->y);
        r->energy = 0;
        for (int64_t v = 0; v < s->rows * r->n; v++) r->energy += (double)r->y[v] * r->y[v];
        for (int64_t v = 0; v < r->n * k; v++)
            s->wmax[v % k] = fmaxf(s->wmax[v % k], fabsf(r->w[v]));
    }
}

/* ---- folding ------------------------------------------------------------------- */

/* Replaces weight node v's tensor by an f32 copy whose element e is
 * multiplied by mul[e % period / every] (every: 1 for columns, the row
 * length for rows). */
static void rescale(ir_graph *g, int32_t v, const float *mul, int64_t row, bool by_rows,
                    bool divide)
{
    ir_node *w = &g->nodes[v];
    fe_tensor *t = sup_arena_alloc(g->arena, sizeof *t);
    *t = *w->tensor;
    float *vals = sup_arena_alloc(g->arena, sizeof(float) * (size_t)t->count);
    fe_tensor_to_f32(w->tensor, vals);
    for (int64_t e = 0; e < t->count; e++) {
        float m = by_rows ? mul[e / row] : mul[e % row];
        vals[e] = divide ? vals[e] / m : vals[e] * m;
    }
    t->dtype = QMC_DTYPE_F32;
    t->data = vals;
    t->size = sizeof(float) * (size_t)t->count;
    t->mapped = false;
    w->tensor = t;
}

static void apply(ir_graph *g, const fold *f, const float *sc, int64_t k)
{
    const float *src = sc; /* the scales of the source's output channels */
    int64_t ks = k;
    if (f->kv_heads) {
        /* value channel (kv, d) is x's channel (kv * per, d), tied */
        int per = f->heads / f->kv_heads;
        float *sv = sup_arena_alloc(g->arena, sizeof(float) * (size_t)(f->kv_heads * f->dv));
        for (int kv = 0; kv < f->kv_heads; kv++)
            for (int64_t d = 0; d < f->dv; d++) sv[kv * f->dv + d] = sc[kv * per * f->dv + d];
        src = sv, ks = f->kv_heads * f->dv;
    }
    if (f->rows) {
        rescale(g, f->scale_w, src, g->nodes[f->scale_w].shape[1], true, true);
    } else {
        rescale(g, f->scale_w, src, ks, false, true);
    }
    if (f->bias_w >= 0) rescale(g, f->bias_w, src, ks, false, true);
    for (int i = 0; i < f->n_readers; i++) {
        int32_t w = g->nodes[f->readers[i]].inputs[1];
        bool seen = false; /* a weight two readers share is scaled once */
        for (int q = 0; q < i; q++) seen |= g->nodes[f->readers[q]].inputs[1] == w;
        if (!seen) rescale(g, w, sc, k, false, false);
    }
}

static ir_decision *decision_of(ir_graph *g, int32_t node)
{
    for (int i = 0; i < g->selection->n; i++)
        if (g->selection->d[i].node == node) return &g->selection->d[i];
    return NULL;
}

/* Every reader's note; its format says :awq or :smooth exactly when its
 * weight was scaled (a reader that did not ask takes the modifier when its
 * format allows it: :smooth needs :a8). */
static void note_readers(ir_graph *g, const fold *f, const char *text, bool scaled)
{
    for (int i = 0; i < f->n_readers; i++) {
        ir_node *w = &g->nodes[g->nodes[f->readers[i]].inputs[1]];
        ir_decision *d = decision_of(g, g->nodes[f->readers[i]].inputs[1]);
        if (d) d->scaling = text;
        w->qformat.awq = scaled && !f->smooth;
        w->qformat.smooth = scaled && f->smooth && w->qformat.act8;
    }
}

/* Searches and folds the scales of activation f->x; *changed if it did. */
static bool fold_one(ir_graph *g, fold *f, bool *changed)
{
    sup_arena a = {0};
    search s = {g, f, g->calib->of_node[f->x], NULL, 0, NULL, NULL};
    load_readers(&s, &a);
    int64_t k = s.st->channels;
    float *sc = sup_arena_alloc(&a, sizeof(float) * (size_t)k);
    for (int64_t j = 0; j < k; j++) sc[j] = 1;
    double plain, best;
    if (!noise_of(&s, sc, &plain)) return sup_arena_free(&a), false;
    best = plain;
    int best_step = -1; /* none: no scaling */
    bool best_rms = false;
    for (int rms = 0; rms < (f->smooth ? 2 : 1); rms++)
        for (int step = f->smooth ? 0 : 1; step <= ALPHA_STEPS; step++) {
            double e;
            scales_of(&s, (double)step / ALPHA_STEPS, rms, sc);
            if (!noise_of(&s, sc, &e)) return sup_arena_free(&a), false;
            if (e < best) best = e, best_step = step, best_rms = rms;
        }
    const char *method = f->smooth ? "smooth" : "awq";
    const char *where =
        f->rows ? sup_arena_printf(g->arena, "the rows of '%s'", g->nodes[f->scale_w].name)
                : sup_arena_printf(g->arena, "'%s'", g->nodes[f->scale_w].name);
    if (best_step < 0) {
        note_readers(
            g, f,
            sup_arena_printf(g->arena, "%s: no scaling predicts less noise (%.3g)", method, plain),
            false);
    } else {
        scales_of(&s, (double)best_step / ALPHA_STEPS, best_rms, sc);
        apply(g, f, sc, k);
        *changed = true;
        note_readers(g, f,
                     sup_arena_printf(g->arena,
                                      "%s: alpha %.2f%s, scales divided into %s (predicted noise "
                                      "%.3g, unscaled %.3g)",
                                      method, (double)best_step / ALPHA_STEPS,
                                      !f->smooth ? ""
                                      : best_rms ? " of rms |x|"
                                                 : " of max |x|",
                                      where, best, plain),
                     true);
    }
    sup_arena_free(&a);
    return true;
}

bool pass_fold_scales(ir_graph *g, const pass_calib_data *data)
{
    if (!g->calib) return true;
    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *l = &g->nodes[i];
        if (l->op != IR_OP_LINEAR || !g->nodes[l->inputs[1]].is_matrix) continue;
        const q_precision *q = &g->nodes[l->inputs[1]].qformat;
        if (!q->awq && !q->smooth) continue;
        fold f = {.x = l->inputs[0], .smooth = q->smooth};
        /* the first reader asking decides for x; the others follow */
        bool first = true;
        for (int j = 0; j < i && first; j++)
            first = !(g->nodes[j].op == IR_OP_LINEAR && g->nodes[j].inputs[0] == f.x &&
                      g->nodes[g->nodes[j].inputs[1]].is_matrix &&
                      (g->nodes[g->nodes[j].inputs[1]].qformat.awq ||
                       g->nodes[g->nodes[j].inputs[1]].qformat.smooth));
        if (!first) continue;
        const char *why = find_readers(g, &f);
        if (!why && (!g->calib->of_node[f.x] || !g->calib->of_node[f.x]->n_rows))
            why = "calibration did not see its input";
        if (!why) why = find_source(g, &f);
        if (why) {
            /* every reader of x asking for scales: none, and why */
            const char *note =
                sup_arena_printf(g->arena, "%s not applied: %s", q->smooth ? "smooth" : "awq", why);
            for (int j = i; j < g->n_nodes; j++) {
                if (g->nodes[j].op != IR_OP_LINEAR || g->nodes[j].inputs[0] != f.x) continue;
                ir_node *w = &g->nodes[g->nodes[j].inputs[1]];
                if (!w->is_matrix || !(w->qformat.awq || w->qformat.smooth)) continue;
                ir_decision *d = decision_of(g, g->nodes[j].inputs[1]);
                if (d) d->scaling = note;
                w->qformat.awq = w->qformat.smooth = false;
            }
            continue;
        }
        if (!fold_one(g, &f, &changed)) return false;
    }
    return !changed || pass_calibrate(g, data, g->calib->second_moments);
}
