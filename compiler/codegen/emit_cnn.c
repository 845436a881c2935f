/* emit_cnn.c: the convolutional ops but conv and conv_transpose
 * (emit_conv.c): pooling, global average pooling, batchnorm, resize, pad,
 * prelu, hardsigmoid, hardswish.
 *
 * The layout pass made the windowed ops channels-last, so a pixel's
 * channels are adjacent: pooling runs a vector of channels through each
 * window position (positions outside the input skipped, so the padding
 * never counts unless count_include_pad says so). Resize and pad work on
 * any layout: per axis, tables computed here (which input index each
 * output index reads, and the weight of the second neighbour) turn them
 * into gathers whose innermost axis is contiguous. Each computes what
 * ref_cnn.c defines; only the order of sums may differ (global average
 * pooling sums in float, the interpreter in double). */
#include <math.h>
#include <string.h>

#include "codegen.h"

typedef struct cnn_op {
    cg *c;
    const ir_node *n;
    LLVMValueRef out, *in, scratch;
} cnn_op;

static LLVMValueRef imin(cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, a, b, ""), a, b, "");
}

static LLVMValueRef imax(cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, a, b, ""), a, b, "");
}

/* Code under cond: returns the block to continue in (cnn_when_end). */
static LLVMBasicBlockRef when(cg *c, LLVMValueRef cond)
{
    LLVMBasicBlockRef then = cg_block(c, "then"), merge = cg_block(c, "merge");
    LLVMBuildCondBr(c->b, cond, then, merge);
    LLVMPositionBuilderAtEnd(c->b, then);
    return merge;
}

static void when_end(cg *c, LLVMBasicBlockRef merge)
{
    LLVMBuildBr(c->b, merge);
    LLVMPositionBuilderAtEnd(c->b, merge);
}

/* 0 <= v < n */
static LLVMValueRef inside(cg *c, LLVMValueRef v, int64_t n)
{
    return LLVMBuildICmp(c->b, LLVMIntULT, v, cg_i64(c, n), "inside");
}

/* A constant table of the module (64-byte aligned). */
static LLVMValueRef table(cg *c, const char *name, const void *data, size_t bytes)
{
    LLVMValueRef init = LLVMConstStringInContext2(c->ctx, data, bytes, 1);
    LLVMValueRef gv = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMInternalLinkage);
    LLVMSetAlignment(gv, 64);
    return gv;
}

/* ---- pooling --------------------------------------------------------------------- */

typedef struct pool_job {
    const ir_node *n;
    ir_image xi, yi;
    LLVMValueRef x, y, ih0, iw0, xrow, count;
} pool_job;

/* One vector of channels of one output pixel. */
static void pool_channels(cg *c, void *ctx, LLVMValueRef ci, LLVMValueRef mask, int lanes)
{
    pool_job *p = ctx;
    const ir_window *w = &p->n->attr.win;
    bool max = p->n->op == IR_OP_MAXPOOL;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, lanes);
    LLVMValueRef acc = cg_alloca(c, vt, "acc");
    cg_store(c, cg_splat(c, cg_f32(c, max ? -INFINITY : 0.0), lanes), acc, 64);
    for (int64_t kh = 0; kh < w->kernel[0]; kh++) {
        LLVMValueRef ih = cg_add(c, p->ih0, cg_i64(c, kh * w->dilation[0]));
        LLVMBasicBlockRef row_done = when(c, inside(c, ih, p->xi.h));
        for (int64_t kw = 0; kw < w->kernel[1]; kw++) {
            LLVMValueRef iw = cg_add(c, p->iw0, cg_i64(c, kw * w->dilation[1]));
            LLVMBasicBlockRef done = when(c, inside(c, iw, p->xi.w));
            LLVMValueRef at = cg_add(c, cg_add(c, p->xrow, cg_mul_k(c, ih, p->xi.sh)),
                                     cg_add(c, cg_mul_k(c, iw, p->xi.sw), ci));
            LLVMValueRef v = cg_vload(c, p->x, at, mask, lanes);
            LLVMValueRef args[2] = {cg_load(c, vt, acc, 64), v};
            cg_store(c,
                     max ? cg_intrinsic(c, "llvm.maximum", &vt, 1, args, 2)
                         : LLVMBuildFAdd(c->b, args[0], v, ""),
                     acc, 64);
            when_end(c, done);
        }
        when_end(c, row_done);
    }
    LLVMValueRef v = cg_load(c, vt, acc, 64);
    if (!max) v = LLVMBuildFDiv(c->b, v, cg_splat(c, p->count, lanes), "mean");
    cg_vstore(c, v, p->y, ci, mask);
}

/* rows [begin, end) of the output: vals x, y */
static void pool_rows(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end, void *user)
{
    pool_job p = *(pool_job *)user;
    const ir_window *w = &p.n->attr.win;
    p.x = vals[0];
    cg_loop lr = cg_loop_begin(c, begin, end, 1, "row");
    LLVMValueRef n = LLVMBuildSDiv(c->b, lr.iv, cg_i64(c, p.yi.h), "n");
    LLVMValueRef oh = LLVMBuildSRem(c->b, lr.iv, cg_i64(c, p.yi.h), "oh");
    p.ih0 = LLVMBuildSub(c->b, cg_mul_k(c, oh, w->stride[0]), cg_i64(c, w->pad[0]), "ih0");
    p.xrow = cg_mul_k(c, n, p.xi.sn);
    cg_loop lw = cg_for(c, 0, p.yi.w, 1, "ow");
    p.iw0 = LLVMBuildSub(c->b, cg_mul_k(c, lw.iv, w->stride[1]), cg_i64(c, w->pad[1]), "iw0");
    if (p.n->op == IR_OP_AVGPOOL) {
        /* the window's positions inside the input (or the padded input) */
        LLVMValueRef lim_h = cg_i64(c, p.xi.h + (w->count_include_pad ? w->pad[2] : 0));
        LLVMValueRef lim_w = cg_i64(c, p.xi.w + (w->count_include_pad ? w->pad[3] : 0));
        LLVMValueRef h0 = w->count_include_pad ? p.ih0 : imax(c, p.ih0, cg_i64(c, 0));
        LLVMValueRef w0 = w->count_include_pad ? p.iw0 : imax(c, p.iw0, cg_i64(c, 0));
        LLVMValueRef hc =
            LLVMBuildSub(c->b, imin(c, cg_add(c, p.ih0, cg_i64(c, w->kernel[0])), lim_h), h0, "");
        LLVMValueRef wc =
            LLVMBuildSub(c->b, imin(c, cg_add(c, p.iw0, cg_i64(c, w->kernel[1])), lim_w), w0, "");
        p.count = LLVMBuildSIToFP(c->b, LLVMBuildMul(c->b, hc, wc, ""), c->t_f32, "count");
    }
    p.y = cg_gep(c, c->t_f32, vals[1],
                 cg_mul_k(c, cg_add(c, cg_mul_k(c, lr.iv, p.yi.w), lw.iv), p.yi.c));
    cg_vloop(c, cg_i64(c, p.yi.c), c->lanes, pool_channels, &p);
    cg_loop_end(c, &lw);
    cg_loop_end(c, &lr);
}

static void emit_pool(cnn_op *o)
{
    const ir_node *n = o->n;
    QMC_ASSERT(n->attr.win.nhwc); /* the layout pass made it channels-last */
    pool_job p = {.n = n};
    p.xi = ir_image_of(o->c->g->nodes[n->inputs[0]].shape, n->attr.win.spatial, true);
    p.yi = ir_image_of(n->shape, n->attr.win.spatial, true);
    LLVMValueRef vals[2] = {o->in[0], o->out};
    int64_t work = ir_node_count(n) * n->attr.win.kernel[0] * n->attr.win.kernel[1];
    cg_parallel(o->c, sup_arena_printf(o->c->arena, "%s.rows", n->name), vals, 2, p.yi.n * p.yi.h,
                work >= 1 << 16, pool_rows, &p);
}

typedef struct gap_job {
    ir_image xi;
    LLVMValueRef x, y;
} gap_job;

static void gap_channels(cg *c, void *ctx, LLVMValueRef ci, LLVMValueRef mask, int lanes)
{
    gap_job *p = ctx;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, lanes);
    LLVMValueRef acc = cg_alloca(c, vt, "acc");
    cg_store(c, LLVMConstNull(vt), acc, 64);
    cg_loop l = cg_for(c, 0, p->xi.h * p->xi.w, 1, "pixel");
    LLVMValueRef v = cg_vload(c, p->x, cg_add(c, cg_mul_k(c, l.iv, p->xi.c), ci), mask, lanes);
    cg_store(c, LLVMBuildFAdd(c->b, cg_load(c, vt, acc, 64), v, ""), acc, 64);
    cg_loop_end(c, &l);
    LLVMValueRef mean =
        LLVMBuildFDiv(c->b, cg_load(c, vt, acc, 64),
                      cg_splat(c, cg_f32(c, (double)(p->xi.h * p->xi.w)), lanes), "");
    cg_vstore(c, mean, p->y, ci, mask);
}

static void emit_global_avgpool(cnn_op *o)
{
    cg *c = o->c;
    const ir_node *n = o->n;
    QMC_ASSERT(n->attr.win.nhwc);
    gap_job p = {.xi = ir_image_of(c->g->nodes[n->inputs[0]].shape, n->attr.win.spatial, true)};
    cg_loop l = cg_for(c, 0, p.xi.n, 1, "n");
    p.x = cg_gep(c, c->t_f32, o->in[0], cg_mul_k(c, l.iv, p.xi.sn));
    p.y = cg_gep(c, c->t_f32, o->out, cg_mul_k(c, l.iv, p.xi.c));
    cg_vloop(c, cg_i64(c, p.xi.c), c->lanes, gap_channels, &p);
    cg_loop_end(c, &l);
}

/* ---- batchnorm ----------------------------------------------------------------- */

typedef struct bn_job {
    LLVMValueRef x, y, mul, add, coef; /* coef: the channel of a run of equal channels */
    bool by_channel;                   /* channels-last: lanes are channels */
} bn_job;

static void bn_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    bn_job *b = ctx;
    LLVMValueRef x = cg_vload(c, b->x, i, mask, lanes), m, a;
    if (b->by_channel) {
        m = cg_vload(c, b->mul, i, mask, lanes);
        a = cg_vload(c, b->add, i, mask, lanes);
    } else {
        m = cg_splat(c, cg_load(c, c->t_f32, cg_gep(c, c->t_f32, b->mul, b->coef), 4), lanes);
        a = cg_splat(c, cg_load(c, c->t_f32, cg_gep(c, c->t_f32, b->add, b->coef), 4), lanes);
    }
    cg_vstore(c, cg_fmuladd(c, x, m, a), b->y, i, mask);
}

/* y = x · mul + add per channel, mul = scale / sqrt(var + eps), add = bias
 * - mean · mul, computed at the start as the interpreter does. */
static void emit_batchnorm(cnn_op *o)
{
    cg *c = o->c;
    const ir_node *n = o->n;
    int64_t ch = c->g->nodes[n->inputs[1]].shape[0], count = ir_node_count(n);
    LLVMValueRef mul = cg_alloca(c, LLVMArrayType(c->t_f32, (unsigned)ch), "mul");
    LLVMValueRef add = cg_alloca(c, LLVMArrayType(c->t_f32, (unsigned)ch), "add");
    cg_loop l = cg_for(c, 0, ch, 1, "c");
    LLVMValueRef p[4];
    for (int i = 0; i < 4; i++)
        p[i] = cg_load(c, c->t_f32, cg_gep(c, c->t_f32, o->in[i + 1], l.iv), 4);
    LLVMValueRef v = LLVMBuildFAdd(c->b, p[3], cg_f32(c, n->attr.eps), "");
    LLVMTypeRef ft = c->t_f32;
    LLVMValueRef m = LLVMBuildFDiv(c->b, p[0], cg_intrinsic(c, "llvm.sqrt", &ft, 1, &v, 1), "");
    cg_store(c, m, cg_gep(c, c->t_f32, mul, l.iv), 4);
    cg_store(c, LLVMBuildFSub(c->b, p[1], LLVMBuildFMul(c->b, p[2], m, ""), ""),
             cg_gep(c, c->t_f32, add, l.iv), 4);
    cg_loop_end(c, &l);
    bn_job b = {.mul = mul, .add = add, .by_channel = n->attr.win.nhwc};
    if (b.by_channel) {
        cg_loop lp = cg_for(c, 0, count / ch, 1, "pixel");
        b.x = cg_gep(c, c->t_f32, o->in[0], cg_mul_k(c, lp.iv, ch));
        b.y = cg_gep(c, c->t_f32, o->out, cg_mul_k(c, lp.iv, ch));
        cg_vloop(c, cg_i64(c, ch), c->lanes, bn_body, &b);
        cg_loop_end(c, &lp);
        return;
    }
    int64_t inner = count / n->shape[0] / ch;
    cg_loop lr = cg_for(c, 0, count / inner, 1, "plane");
    b.coef = LLVMBuildSRem(c->b, lr.iv, cg_i64(c, ch), "");
    b.x = cg_gep(c, c->t_f32, o->in[0], cg_mul_k(c, lr.iv, inner));
    b.y = cg_gep(c, c->t_f32, o->out, cg_mul_k(c, lr.iv, inner));
    cg_vloop(c, cg_i64(c, inner), c->lanes, bn_body, &b);
    cg_loop_end(c, &lr);
}

/* ---- resize and pad ------------------------------------------------------------ */

/* Per axis of a gather (resize, pad): how an output index reads the
 * input. A table gives, per output index, the element offset of the input
 * it reads (-1: the pad value), and for a linear axis also the second
 * neighbour's offset and weight; an axis without a table is read as it is. */
typedef enum axis_kind { AXIS_SAME, AXIS_GATHER, AXIS_LINEAR } axis_kind;

typedef struct gather {
    const ir_node *n;
    axis_kind kind[IR_MAX_RANK];
    LLVMValueRef lo[IR_MAX_RANK], hi[IR_MAX_RANK], frac[IR_MAX_RANK];
    int64_t xstride[IR_MAX_RANK], ystride[IR_MAX_RANK];
    bool pad;
    float pad_value;
    LLVMValueRef x, y;
} gather;

enum { MAX_CORNERS = 16 };

typedef struct corners {
    LLVMValueRef off[MAX_CORNERS], w[MAX_CORNERS]; /* w NULL: 1 */
    int n;
} corners;

static LLVMValueRef table_at(cg *c, LLVMTypeRef t, LLVMValueRef tab, LLVMValueRef i)
{
    return cg_load(c, t, cg_gep(c, t, tab, i), 4);
}

/* The loops over axes d .. rank - 1, then each output element's sum. */
static void gather_loops(cg *c, const gather *gt, int d, const corners *cs, LLVMValueRef yoff,
                         LLVMValueRef valid)
{
    const ir_node *n = gt->n;
    if (d == n->rank) {
        LLVMValueRef v = NULL;
        for (int k = 0; k < cs->n; k++) {
            LLVMValueRef e = cg_load(c, c->t_f32, cg_gep(c, c->t_f32, gt->x, cs->off[k]), 4);
            if (cs->w[k]) e = LLVMBuildFMul(c->b, cs->w[k], e, "");
            v = v ? LLVMBuildFAdd(c->b, v, e, "") : e;
        }
        if (valid) v = LLVMBuildSelect(c->b, valid, v, cg_f32(c, gt->pad_value), "");
        cg_store(c, v, cg_gep(c, c->t_f32, gt->y, yoff), 4);
        return;
    }
    cg_loop l = cg_for(c, 0, n->shape[d], 1, "o");
    corners ns = {.n = cs->n};
    LLVMValueRef v2 = valid;
    if (gt->kind[d] == AXIS_SAME) {
        LLVMValueRef step = cg_mul_k(c, l.iv, gt->xstride[d]);
        for (int k = 0; k < cs->n; k++) ns.off[k] = cg_add(c, cs->off[k], step), ns.w[k] = cs->w[k];
    } else if (gt->kind[d] == AXIS_GATHER) {
        LLVMValueRef o = table_at(c, c->t_i64, gt->lo[d], l.iv);
        if (gt->pad) {
            LLVMValueRef ok = LLVMBuildICmp(c->b, LLVMIntSGE, o, cg_i64(c, 0), "");
            v2 = valid ? LLVMBuildAnd(c->b, valid, ok, "") : ok;
            o = imax(c, o, cg_i64(c, 0));
        }
        for (int k = 0; k < cs->n; k++) ns.off[k] = cg_add(c, cs->off[k], o), ns.w[k] = cs->w[k];
    } else {
        LLVMValueRef lo = table_at(c, c->t_i64, gt->lo[d], l.iv);
        LLVMValueRef hi = table_at(c, c->t_i64, gt->hi[d], l.iv);
        LLVMValueRef f = table_at(c, c->t_f32, gt->frac[d], l.iv);
        LLVMValueRef g = LLVMBuildFSub(c->b, cg_f32(c, 1), f, "");
        ns.n = 2 * cs->n;
        for (int k = 0; k < cs->n; k++) {
            ns.off[2 * k] = cg_add(c, cs->off[k], lo);
            ns.off[2 * k + 1] = cg_add(c, cs->off[k], hi);
            ns.w[2 * k] = cs->w[k] ? LLVMBuildFMul(c->b, cs->w[k], g, "") : g;
            ns.w[2 * k + 1] = cs->w[k] ? LLVMBuildFMul(c->b, cs->w[k], f, "") : f;
        }
    }
    gather_loops(c, gt, d + 1, &ns, cg_add(c, yoff, cg_mul_k(c, l.iv, gt->ystride[d])), v2);
    cg_loop_end(c, &l);
}

static void gather_run(cnn_op *o, gather *gt)
{
    const ir_node *n = o->n, *x = &o->c->g->nodes[n->inputs[0]];
    int64_t xs = 1, ys = 1;
    for (int d = n->rank - 1; d >= 0; d--) {
        gt->xstride[d] = xs, gt->ystride[d] = ys;
        xs *= x->shape[d], ys *= n->shape[d];
    }
    gt->n = n;
    gt->x = o->in[0];
    gt->y = o->out;
    corners cs = {.n = 1, .off = {cg_i64(o->c, 0)}};
    gather_loops(o->c, gt, 0, &cs, cg_i64(o->c, 0), NULL);
}

static LLVMValueRef i64_table(cnn_op *o, const char *what, int d, const int64_t *v, int64_t n)
{
    return table(o->c, sup_arena_printf(o->c->arena, "%s.%s%d", o->n->name, what, d), v,
                 sizeof(int64_t) * (size_t)n);
}

static void emit_resize(cnn_op *o)
{
    const ir_node *n = o->n, *x = &o->c->g->nodes[n->inputs[0]];
    gather gt = {0};
    int linear = 0;
    int64_t stride = 1;
    for (int d = n->rank - 1; d >= 0; stride *= x->shape[d], d--) {
        int64_t len = n->shape[d];
        int64_t *lo = sup_arena_alloc(o->c->arena, sizeof(int64_t) * (size_t)len);
        int64_t *hi = sup_arena_alloc(o->c->arena, sizeof(int64_t) * (size_t)len);
        float *fr = sup_arena_alloc(o->c->arena, sizeof(float) * (size_t)len);
        bool same = len == x->shape[d], two = false;
        for (int64_t i = 0; i < len; i++) {
            int64_t i0, i1;
            ir_resize_source(&n->attr.cnn, d, x->shape[d], i, &i0, &i1, &fr[i]);
            lo[i] = i0 * stride, hi[i] = i1 * stride;
            same &= i0 == i && fr[i] == 0;
            two |= fr[i] != 0;
        }
        if (same) continue;
        gt.kind[d] = two && linear < 4 ? AXIS_LINEAR : AXIS_GATHER;
        linear += gt.kind[d] == AXIS_LINEAR;
        QMC_ASSERT(two ? gt.kind[d] == AXIS_LINEAR : true); /* at most 4 interpolated axes */
        gt.lo[d] = i64_table(o, "lo", d, lo, len);
        if (gt.kind[d] == AXIS_LINEAR) {
            gt.hi[d] = i64_table(o, "hi", d, hi, len);
            gt.frac[d] = table(o->c, sup_arena_printf(o->c->arena, "%s.frac%d", n->name, d), fr,
                               sizeof(float) * (size_t)len);
        }
    }
    gather_run(o, &gt);
}

static void emit_pad(cnn_op *o)
{
    const ir_node *n = o->n, *x = &o->c->g->nodes[n->inputs[0]];
    const ir_cnn_attrs *a = &n->attr.cnn;
    gather gt = {.pad = a->pad_mode == IR_PAD_CONSTANT, .pad_value = a->pad_value};
    int64_t stride = 1;
    for (int d = n->rank - 1; d >= 0; stride *= x->shape[d], d--) {
        if (!a->pads[d] && !a->pads[n->rank + d]) continue;
        int64_t len = n->shape[d];
        int64_t *lo = sup_arena_alloc(o->c->arena, sizeof(int64_t) * (size_t)len);
        for (int64_t i = 0; i < len; i++) {
            int64_t src = ir_pad_source(a->pad_mode, i, a->pads[d], x->shape[d]);
            lo[i] = src < 0 ? -1 : src * stride;
        }
        gt.kind[d] = AXIS_GATHER;
        gt.lo[d] = i64_table(o, "src", d, lo, len);
    }
    gather_run(o, &gt);
}

/* ---- pointwise ------------------------------------------------------------------ */

typedef struct point_job {
    const ir_node *n;
    LLVMValueRef x, y;
} point_job;

static void hard_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    point_job *p = ctx;
    bool swish = p->n->op == IR_OP_HARDSWISH;
    float alpha = swish ? 1.0f / 6 : p->n->attr.cnn.alpha,
          beta = swish ? 0.5f : p->n->attr.cnn.beta;
    LLVMValueRef x = cg_vload(c, p->x, i, mask, lanes);
    cg_vstore(c, cg_math_hard_sigmoid(c, x, alpha, beta, swish), p->y, i, mask);
}

static void emit_hard(cnn_op *o)
{
    point_job p = {o->n, o->in[0], o->out};
    cg_vloop(o->c, cg_i64(o->c, ir_node_count(o->n)), o->c->lanes, hard_body, &p);
}

/* y = x < 0 ? slope · x : x, the slope broadcast (0 strides). */
static void prelu_loops(cnn_op *o, int d, const int64_t *ss, LLVMValueRef at, LLVMValueRef sat)
{
    cg *c = o->c;
    const ir_node *n = o->n;
    if (d == n->rank) {
        LLVMValueRef x = cg_load(c, c->t_f32, cg_gep(c, c->t_f32, o->in[0], at), 4);
        LLVMValueRef s = cg_load(c, c->t_f32, cg_gep(c, c->t_f32, o->in[1], sat), 4);
        LLVMValueRef neg = LLVMBuildFCmp(c->b, LLVMRealOLT, x, cg_f32(c, 0), "");
        cg_store(c, LLVMBuildSelect(c->b, neg, LLVMBuildFMul(c->b, s, x, ""), x, ""),
                 cg_gep(c, c->t_f32, o->out, at), 4);
        return;
    }
    int64_t inner = 1;
    for (int k = d + 1; k < n->rank; k++) inner *= n->shape[k];
    cg_loop l = cg_for(c, 0, n->shape[d], 1, "i");
    prelu_loops(o, d + 1, ss, cg_add(c, at, cg_mul_k(c, l.iv, inner)),
                ss[d] ? cg_add(c, sat, cg_mul_k(c, l.iv, ss[d])) : sat);
    cg_loop_end(c, &l);
}

static void emit_prelu(cnn_op *o)
{
    const ir_node *n = o->n, *s = &o->c->g->nodes[n->inputs[1]];
    int64_t ss[IR_MAX_RANK], st = 1;
    for (int d = n->rank - 1; d >= 0; d--) {
        int sd = d - (n->rank - s->rank);
        ss[d] = sd < 0 || s->shape[sd] == 1 ? 0 : st;
        if (sd >= 0) st *= s->shape[sd];
    }
    prelu_loops(o, 0, ss, cg_i64(o->c, 0), cg_i64(o->c, 0));
}

void cg_emit_cnn_op(cg *c, int32_t node, LLVMValueRef out, LLVMValueRef *in, LLVMValueRef scratch)
{
    cnn_op o = {.c = c, .n = &c->g->nodes[node], .out = out, .in = in, .scratch = scratch};
    switch (o.n->op) {
    case IR_OP_MAXPOOL:
    case IR_OP_AVGPOOL: emit_pool(&o); break;
    case IR_OP_GLOBAL_AVGPOOL: emit_global_avgpool(&o); break;
    case IR_OP_BATCHNORM: emit_batchnorm(&o); break;
    case IR_OP_RESIZE: emit_resize(&o); break;
    case IR_OP_PAD: emit_pad(&o); break;
    case IR_OP_HARDSIGMOID:
    case IR_OP_HARDSWISH: emit_hard(&o); break;
    case IR_OP_PRELU: emit_prelu(&o); break;
    default: QMC_ASSERT(!"not a convolutional op");
    }
}
