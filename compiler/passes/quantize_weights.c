/* quantize_weights.c: the quantize-weights pass, and the stream of
 * quantized weights into a compiled model.
 *
 * Needs: select precision has run.
 * Guarantees: every weight matrix with a precision other than f32 has an
 * ir_qweight: codes, scales (and zero points) chosen by compiler/quant from
 * the weight's values, the dequantized matrix the interpreter uses to
 * simulate the generated code, and its error and size. int4 groups run
 * along the input dimension; a row whose length is not a multiple of the
 * group is padded with zeros, which leaves every group's parameters as they
 * would be without the padding (the range always includes 0).
 *
 * `qmc compile` keeps none of those arrays: pass_quantize_layouts gives
 * each matrix only its shape, groups and size (what lowering and codegen
 * plan with), and pass_stream_weights later quantizes one weight at a
 * time, hands it to codegen to pack and write, keeps its error statistics
 * for the report (measured only when there is one to write) and frees the
 * rest, and releases the weight's input pages: memory holds one weight,
 * whatever the model's size. */
#include <math.h>
#include <string.h>

#include "passes.h"

q_precision pass_given_precision(const fe_quantized *given)
{
    q_precision f = {.format = QFMT_INT8,
                     .clip = Q_CLIP_MINMAX,
                     .act8 = given->act8 || given->act_static,
                     .act_static = given->act_static,
                     .act_model = given->act_static,
                     .act_scale = given->act_static ? given->act_scale : 0,
                     .act_zero = given->act_static ? given->act_zero : 0};
    if (given->fp8) f.format = given->fp8 == FE_ONNX_FLOAT8E5M2 ? QFMT_FP8_E5M2 : QFMT_FP8_E4M3;
    if (given->bits == 4) {
        f.format = given->asym ? QFMT_UINT4 : QFMT_INT4;
        f.group = (int)given->group;
        f.scale_f32 = given->scales_f32; /* the model's scales, exactly */
    }
    return f;
}

/* f holds the given codes as they are (not changed by an override). */
static bool holds_given(const fe_quantized *given, const q_precision *f)
{
    if (!given) return false;
    q_precision g = pass_given_precision(given);
    return f->format == g.format && f->group == g.group && !f->gptq && !f->imat && !f->hqq &&
           !f->awq && !f->smooth;
}

/* The given codes and scales in q's layout (rows padded to kp with codes
 * of 0: the zero point for asym); scales rounded to the format's scale type. */
static void given_params(sup_arena *a, const fe_quantized *given, const q_choice *c,
                         const ir_qweight *q, q_params *p)
{
    int64_t ng = q->f.group ? q->kp / q->group : 1, gg = (q->k + given->group - 1) / given->group;
    p->scales = sup_arena_alloc(a, sizeof(float) * (size_t)(q->n * ng));
    p->zero_points = given->asym ? sup_arena_alloc(a, sizeof(int32_t) * (size_t)(q->n * ng)) : NULL;
    for (int64_t r = 0; r < q->n; r++)
        for (int64_t g = 0; g < ng; g++) {
            p->scales[r * ng + g] = q_scale_round(given->scales[r * gg + g], c->scale_dtype);
            if (p->zero_points) p->zero_points[r * ng + g] = given->zero_points[r * gg + g];
        }
    for (int64_t r = 0; r < q->n; r++)
        for (int64_t k = 0; k < q->kp; k++)
            q->codes[r * q->kp + k] =
                k < q->k ? given->codes[r * q->k + k]
                         : (uint8_t)(p->zero_points ? p->zero_points[r * ng + k / q->group] : 0);
}

/* The factor of weight node w (act: of act-order), computed once per
 * calibration. */
static bool gptq_prepare(const ir_graph *g, int32_t node, bool act)
{
    const ir_node *w = &g->nodes[node];
    ir_calibration *cal = g->calib;
    if (cal && (act ? cal->gptq_u_act : cal->gptq_u)[node]) return true;
    sup_arena tmp = {0};
    const double *h = cal ? pass_calib_second_moment(g, node, &tmp) : NULL;
    if (!h) {
        sup_arena_free(&tmp);
        sup_error(w->loc,
                  "quantizing '%s' by GPTQ needs the second moments of its input from calibration "
                  "(--calib)",
                  w->name);
        return false;
    }
    int64_t k = w->shape[1];
    double *u = sup_arena_alloc(g->arena, sizeof(double) * (size_t)(k * k));
    bool *dead = sup_arena_alloc(g->arena, sizeof(bool) * (size_t)k);
    int64_t *order = act ? sup_arena_alloc(g->arena, sizeof(int64_t) * (size_t)k) : NULL;
    if (act) h = q_gptq_act_order(&tmp, h, k, order);
    bool ok = q_gptq_factor(&tmp, h, k, u, dead);
    sup_arena_free(&tmp);
    if (!ok) {
        sup_error(w->loc,
                  "cannot quantize weight '%s' by GPTQ: its input's second moment is singular",
                  w->name);
        return false;
    }
    (act ? cal->gptq_u_act : cal->gptq_u)[node] = u;
    (act ? cal->gptq_dead_act : cal->gptq_dead)[node] = dead;
    if (act) cal->gptq_order[node] = order;
    return true;
}

bool pass_gptq_act_factor(const ir_graph *g, int32_t node, const double **u, const bool **dead,
                          const int64_t **order)
{
    if (!gptq_prepare(g, node, true)) return false;
    *u = g->calib->gptq_u_act[node];
    *dead = g->calib->gptq_dead_act[node];
    *order = g->calib->gptq_order[node];
    return true;
}

const double *pass_imat_importance(const ir_graph *g, int32_t node, sup_arena *arena)
{
    const double *m = pass_calib_mean_sq(g, node, arena);
    if (!m)
        sup_error(g->nodes[node].loc,
                  "quantizing '%s' with importance weights (:imat) needs the mean squares of its "
                  "input from calibration (--calib)",
                  g->nodes[node].name);
    return m;
}

/* The shape, groups and size of f's quantized form of node's matrix. */
static void layout(const ir_graph *g, int32_t node, const q_precision *f, ir_qweight *q)
{
    const ir_node *w = &g->nodes[node];
    q->f = *f;
    q->n = w->shape[0];
    q->k = w->shape[1];
    int64_t group = q->f.group ? q->f.group : 0;
    q->kp = group ? (q->k + group - 1) / group * group : q->k;
    q->group = group ? group : q->kp;
    q->n_groups = q->kp / q->group;
    /* compiler/quant's rule: integer formats without a symmetric range
     * about 0 (uint4) have zero points */
    q_choice c = q_precision_choice(&q->f);
    q->zero_point = q_format_is_int(c.format) && (!c.symmetric || q_format_qmin(c.format) == 0);
    q->bytes = q_precision_bytes(&q->f, q->n, q->k);
    q->bits_per_weight = 8.0 * (double)q->bytes / (double)(q->n * q->k);
    q->stats = (q_error_stats){.count = -1}; /* not measured yet */
}

/* Seconds spent reading weights and measuring their errors (-v). */
typedef struct times {
    double read, measure;
} times;

/* The quantized form; without `measure`, neither the dequantized matrix nor
 * the error statistics (nobody will read them). The time spent reading
 * the weight and measuring its error is added to *t (if not NULL). */
static ir_qweight *quantize(sup_arena *a, const ir_graph *g, int32_t node, const q_precision *f,
                            bool measure, times *t)
{
    const ir_node *w = &g->nodes[node];
    ir_qweight *q = sup_arena_alloc(a, sizeof *q);
    layout(g, node, f, q);
    float *orig = sup_arena_alloc(a, sizeof(float) * (size_t)(q->n * q->k));
    double t0 = sup_now();
    fe_tensor_to_f32(w->tensor, orig);
    if (t) t->read += sup_now() - t0;
    for (int64_t i = 0; i < q->n * q->k; i++)
        if (!isfinite(orig[i])) {
            sup_error(
                w->loc,
                "weight '%s' holds a non-finite value at element %lld and cannot be quantized",
                w->name, (long long)i);
            return NULL;
        }
    float *padded = orig;
    if (q->kp != q->k) {
        padded = sup_arena_alloc(a, sizeof(float) * (size_t)(q->n * q->kp));
        for (int64_t r = 0; r < q->n; r++)
            memcpy(padded + r * q->kp, orig + r * q->k, sizeof(float) * (size_t)q->k);
    }
    q_choice c = q_precision_choice(&q->f);
    q_params p;
    char err[256];
    int64_t shape[2] = {q->n, q->kp};
    const fe_quantized *given = w->tensor ? w->tensor->given : NULL;
    size_t code_bytes = (size_t)(q->n * q->kp) * (size_t)q_format_code_bytes(f->format);
    bool keep_given = holds_given(given, f); /* the model's codes, as they are */
    if (keep_given) {
        p = (q_params){.format = c.format,
                       .granularity = c.granularity,
                       .axis = c.axis,
                       .block = c.block,
                       .scale_dtype = c.scale_dtype};
        QMC_ASSERT(q_params_layout(&p, 2, shape, err, sizeof err));
        q->codes = sup_arena_alloc(a, code_bytes);
        given_params(a, given, &c, q, &p);
    } else if (!q_choose_params(a, padded, 2, shape, &c, &p, err, sizeof err)) {
        sup_error(w->loc, "cannot quantize weight '%s' to %s: %s", w->name,
                  q_precision_name(a, &q->f), err);
        return NULL;
    }
    QMC_ASSERT((p.zero_points != NULL) == q->zero_point);
    const double *imp = f->imat && !keep_given ? pass_imat_importance(g, node, a) : NULL;
    if (f->imat && !keep_given && !imp) return NULL;
    if (!keep_given) q_method_refine(a, padded, q->n, q->k, q->kp, f, imp, &p);
    if (keep_given) {
        /* the codes are in place */
    } else if (f->gptq) {
        q->codes = sup_arena_alloc(a, code_bytes);
        bool act = f->act_order;
        if (!gptq_prepare(g, node, act)) return NULL;
        ir_calibration *cal = g->calib;
        q_gptq_codes(a, orig, q->n, q->k, q->kp, (act ? cal->gptq_u_act : cal->gptq_u)[node],
                     (act ? cal->gptq_dead_act : cal->gptq_dead)[node],
                     act ? cal->gptq_order[node] : NULL, &c, &p, q->codes);
    } else {
        q->codes = sup_arena_alloc(a, code_bytes);
        q_quantize(padded, 2, shape, &p, q->codes);
    }
    q->scales = p.scales;
    q->zero_points = p.zero_points;
    if (!measure) return q;
    t0 = sup_now();
    /* the dequantized matrix, its rows closed up over the padding in place */
    float *deq = sup_arena_alloc(a, sizeof(float) * (size_t)(q->n * q->kp));
    q_dequantize(q->codes, 2, shape, &p, deq);
    for (int64_t r = 1; q->kp != q->k && r < q->n; r++)
        memmove(deq + r * q->k, deq + r * q->kp, sizeof(float) * (size_t)q->k);
    q->dequant = deq;
    q->stats = q_measure(orig, q->dequant, q->n * q->k);
    if (t) t->measure += sup_now() - t0;
    return q;
}

ir_qweight *pass_quantize_matrix(sup_arena *a, const ir_graph *g, int32_t node,
                                 const q_precision *f)
{
    return quantize(a, g, node, f, true, NULL);
}

bool pass_quantize_weights(ir_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *w = &g->nodes[i];
        if (w->is_matrix && w->qformat.format != QFMT_F32 && !w->qw &&
            !(w->qw = pass_quantize_matrix(g->arena, g, i, &w->qformat)))
            return false;
    }
    return true;
}

bool pass_quantize_layouts(ir_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *w = &g->nodes[i];
        if (!w->is_matrix || w->qformat.format == QFMT_F32 || w->qw) continue;
        w->qw = sup_arena_alloc(g->arena, sizeof *w->qw);
        layout(g, i, &w->qformat, w->qw);
    }
    return true;
}

bool pass_stream_weights(ir_graph *g, cg_weights *out, bool measure)
{
    sup_arena tmp = {0}; /* one weight's memory, reused by the next */
    bool ok = true;
    times t = {0, 0};
    double quantizing = 0, writing = 0; /* seconds, for -v */
    for (int i = 0; ok && i < g->n_nodes; i++) {
        if (!cg_weights_wants(out, i)) continue;
        ir_node *w = &g->nodes[i];
        const ir_qweight *q = NULL;
        double t0 = sup_now();
        if (w->qw) {
            /* the quantized form (a layout until now, or the one that was kept) */
            bool dequant = measure || cg_weights_wants_dequant(out, i);
            q = w->qw->codes ? w->qw : quantize(&tmp, g, i, &w->qformat, dequant, &t);
            if (q) w->qw->stats = q->stats;
        }
        double t1 = sup_now();
        ok = (!w->qw || q) && cg_weights_put(out, &tmp, i, q);
        writing += sup_now() - t1;
        quantizing += t1 - t0;
        sup_arena_reset(&tmp);
        fe_tensor_release(w->tensor);
    }
    sup_arena_free(&tmp);
    if (!ok) return false;
    sup_stage_end("weights");
    sup_stage_part("read", t.read);
    sup_stage_part("quantize", quantizing - t.read - t.measure);
    if (measure) sup_stage_part("error", t.measure);
    sup_stage_part("pack, write", writing);
    return true;
}
