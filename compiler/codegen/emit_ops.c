/* emit_ops.c: every op but linear, as loops over known shapes (and, for the
 * ops of a model with a sequence, its run-time position).
 *
 * These kernels are written as the scalar loops they compute, with every
 * bound a constant; LLVM's loop vectoriser turns the inner loops into
 * vector code (reductions carry reassoc so that they may be reordered).
 * Each matches the interpreter's definition of the op (ref_ops.c, interp.c);
 * only the order of floating-point sums may differ. */
#include <math.h>
#include <string.h>

#include "codegen.h"

typedef struct op_ctx {
    cg *c;
    const ir_node *n;
    LLVMValueRef out, *in, scratch;
    LLVMValueRef pos;              /* i64: the position of the first token (or NULL: 0) */
    LLVMValueRef cache_k, cache_v; /* a cached attention's keys and values ... */
    LLVMValueRef scale_k, scale_v; /* ... and their scales (quantized caches) */
} op_ctx;

static void split_axis(const ir_node *x, int axis, int64_t *outer, int64_t *dim, int64_t *inner)
{
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= x->shape[d];
    for (int d = axis + 1; d < x->rank; d++) *inner *= x->shape[d];
    *dim = x->shape[axis];
}

enum {
    PARALLEL_ELEMENTS = 16384 /* norms take the thread pool from this size */
};

/* ---- reductions over rows ------------------------------------------------- */

/* sum over i in [0, len) of f(i), with a vectorisable reduction. */
typedef LLVMValueRef (*term_fn)(cg *c, void *ctx, LLVMValueRef i);

static LLVMValueRef reduce_sum(cg *c, LLVMValueRef len, term_fn f, void *ctx)
{
    LLVMValueRef acc = cg_alloca(c, c->t_f32, "sum");
    cg_store(c, cg_f32(c, 0), acc, 4);
    cg_loop l = cg_loop_begin(c, cg_i64(c, 0), len, 1, "r");
    cg_store(c, cg_fast(LLVMBuildFAdd(c->b, cg_load(c, c->t_f32, acc, 4), f(c, ctx, l.iv), "")),
             acc, 4);
    cg_loop_end(c, &l);
    return cg_load(c, c->t_f32, acc, 4);
}

/* Softmax of len contiguous values (scaled by `scale` first) from in to
 * out (which may be in): a vector max, a vector pass of exp and sum, then
 * a pass of multiplication by 1/sum. */
typedef struct softmax_ctx {
    LLVMValueRef in, out, scale, acc, max;
} softmax_ctx;

static void max_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    softmax_ctx *s = ctx;
    LLVMValueRef x =
        LLVMBuildFMul(c->b, cg_vload(c, s->in, i, mask, lanes), cg_splat(c, s->scale, lanes), "");
    if (mask) x = LLVMBuildSelect(c->b, mask, x, cg_splat(c, cg_f32(c, -INFINITY), lanes), "");
    LLVMTypeRef vt = LLVMTypeOf(x);
    LLVMValueRef args[2] = {cg_load(c, vt, s->acc, 64), x};
    cg_store(c, cg_intrinsic(c, "llvm.maxnum", &vt, 1, args, 2), s->acc, 64);
}

static void exp_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    softmax_ctx *s = ctx;
    LLVMValueRef x =
        LLVMBuildFMul(c->b, cg_vload(c, s->in, i, mask, lanes), cg_splat(c, s->scale, lanes), "");
    LLVMValueRef e = cg_math_exp(c, LLVMBuildFSub(c->b, x, cg_splat(c, s->max, lanes), ""));
    if (mask) e = LLVMBuildSelect(c->b, mask, e, LLVMConstNull(LLVMTypeOf(e)), "");
    cg_vstore(c, e, s->out, i, mask);
    LLVMTypeRef vt = LLVMTypeOf(e);
    cg_store(c, LLVMBuildFAdd(c->b, cg_load(c, vt, s->acc, 64), e, ""), s->acc, 64);
}

static void scale_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    softmax_ctx *s = ctx;
    LLVMValueRef y =
        LLVMBuildFMul(c->b, cg_vload(c, s->out, i, mask, lanes), cg_splat(c, s->max, lanes), "");
    cg_vstore(c, y, s->out, i, mask);
}

static LLVMValueRef vreduce(cg *c, const char *name, LLVMValueRef v, LLVMValueRef start)
{
    LLVMTypeRef vt = LLVMTypeOf(v);
    if (start) {
        LLVMValueRef args[2] = {start, v};
        return cg_fast(cg_intrinsic(c, name, &vt, 1, args, 2));
    }
    return cg_fast(cg_intrinsic(c, name, &vt, 1, &v, 1));
}

/* The row's maximum from a vector of partial maxima; a row of -inf gives
 * 0s (as the interpreter does), not NaN. */
static LLVMValueRef softmax_max(cg *c, LLVMValueRef partial)
{
    LLVMValueRef m = vreduce(c, "llvm.vector.reduce.fmax", partial, NULL);
    return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOEQ, m, cg_f32(c, -INFINITY), ""),
                           cg_f32(c, 0), m, "");
}

/* out[i] = e^(in[i] * scale - max) for i < len; returns 1 / their sum (0
 * when the sum is not positive). */
static LLVMValueRef softmax_exp(cg *c, LLVMValueRef in, LLVMValueRef out, LLVMValueRef len,
                                LLVMValueRef scale, LLVMValueRef max, LLVMValueRef *sum_out)
{
    int L = c->lanes;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, L);
    softmax_ctx s = {in, out, scale, cg_alloca(c, vt, "acc"), max};
    cg_store(c, LLVMConstNull(vt), s.acc, 64);
    cg_vloop(c, len, L, exp_body, &s);
    LLVMValueRef sum =
        vreduce(c, "llvm.vector.reduce.fadd", cg_load(c, vt, s.acc, 64), cg_f32(c, 0));
    if (sum_out) *sum_out = sum;
    LLVMValueRef inv = LLVMBuildFDiv(c->b, cg_f32(c, 1), sum, "");
    return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, sum, cg_f32(c, 0), ""), inv,
                           cg_f32(c, 0), "");
}

/* log_softmax's last pass: y = x - (max + log(sum)), the shift in s->max. */
static void log_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    softmax_ctx *s = ctx;
    LLVMValueRef y =
        LLVMBuildFSub(c->b, cg_vload(c, s->in, i, mask, lanes), cg_splat(c, s->max, lanes), "");
    cg_vstore(c, y, s->out, i, mask);
}

static void softmax_contiguous(cg *c, LLVMValueRef in, LLVMValueRef out, LLVMValueRef len,
                               LLVMValueRef scale, bool log)
{
    int L = c->lanes;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, L);
    softmax_ctx s = {in, out, scale, cg_alloca(c, vt, "acc"), NULL};
    cg_store(c, cg_splat(c, cg_f32(c, -INFINITY), L), s.acc, 64);
    cg_vloop(c, len, L, max_body, &s);
    LLVMValueRef max = softmax_max(c, cg_load(c, vt, s.acc, 64)), sum;
    s.max = softmax_exp(c, in, out, len, scale, max, &sum);
    if (log) {
        s.max = LLVMBuildFAdd(c->b, max, cg_math_log(c, sum), "shift");
        cg_vloop(c, len, L, log_body, &s);
        return;
    }
    cg_vloop(c, len, L, scale_body, &s);
}

/* Softmax over a strided axis (inner > 1): scalar loops. */
static void softmax_strided(cg *c, LLVMValueRef in, LLVMValueRef out, LLVMValueRef len,
                            int64_t stride, bool log)
{
    LLVMValueRef mx = cg_alloca(c, c->t_f32, "max");
    cg_store(c, cg_f32(c, -INFINITY), mx, 4);
    cg_loop l = cg_loop_begin(c, cg_i64(c, 0), len, 1, "r");
    LLVMValueRef x = cg_fload(c, in, cg_mul_k(c, l.iv, stride));
    LLVMTypeRef t = c->t_f32;
    LLVMValueRef args[2] = {cg_load(c, c->t_f32, mx, 4), x};
    cg_store(c, cg_intrinsic(c, "llvm.maxnum", &t, 1, args, 2), mx, 4);
    cg_loop_end(c, &l);
    LLVMValueRef m = cg_load(c, c->t_f32, mx, 4);
    m = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOEQ, m, cg_f32(c, -INFINITY), ""),
                        cg_f32(c, 0), m, "");
    LLVMValueRef sum = cg_alloca(c, c->t_f32, "sum");
    cg_store(c, cg_f32(c, 0), sum, 4);
    cg_loop e = cg_loop_begin(c, cg_i64(c, 0), len, 1, "e");
    LLVMValueRef at = cg_mul_k(c, e.iv, stride);
    LLVMValueRef ex = cg_math_exp(c, LLVMBuildFSub(c->b, cg_fload(c, in, at), m, ""));
    cg_fstore(c, ex, out, at);
    cg_store(c, LLVMBuildFAdd(c->b, cg_load(c, c->t_f32, sum, 4), ex, ""), sum, 4);
    cg_loop_end(c, &e);
    LLVMValueRef total = cg_load(c, c->t_f32, sum, 4);
    if (log) {
        LLVMValueRef shift = LLVMBuildFAdd(c->b, m, cg_math_log(c, total), "shift");
        cg_loop s = cg_loop_begin(c, cg_i64(c, 0), len, 1, "s");
        LLVMValueRef at2 = cg_mul_k(c, s.iv, stride);
        cg_fstore(c, LLVMBuildFSub(c->b, cg_fload(c, in, at2), shift, ""), out, at2);
        cg_loop_end(c, &s);
        return;
    }
    LLVMValueRef inv =
        LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, total, cg_f32(c, 0), ""),
                        LLVMBuildFDiv(c->b, cg_f32(c, 1), total, ""), cg_f32(c, 0), "");
    cg_loop s = cg_loop_begin(c, cg_i64(c, 0), len, 1, "s");
    LLVMValueRef at2 = cg_mul_k(c, s.iv, stride);
    cg_fstore(c, LLVMBuildFMul(c->b, cg_fload(c, out, at2), inv, ""), out, at2);
    cg_loop_end(c, &s);
}

static void emit_softmax(op_ctx *o)
{
    cg *c = o->c;
    int64_t outer, dim, inner;
    split_axis(o->n, o->n->attr.axis, &outer, &dim, &inner);
    cg_loop lo = cg_for(c, 0, outer, 1, "o");
    cg_loop li = cg_for(c, 0, inner, 1, "in");
    LLVMValueRef at = cg_add(c, cg_mul_k(c, lo.iv, dim * inner), li.iv);
    if (inner == 1)
        softmax_contiguous(c, cg_fptr(c, o->in[0], at), cg_fptr(c, o->out, at), cg_i64(c, dim),
                           cg_f32(c, 1), o->n->attr.log);
    else
        softmax_strided(c, cg_fptr(c, o->in[0], at), cg_fptr(c, o->out, at), cg_i64(c, dim), inner,
                        o->n->attr.log);
    cg_loop_end(c, &li);
    cg_loop_end(c, &lo);
}

typedef struct norm_ctx {
    LLVMValueRef row, mean;
} norm_ctx;

static LLVMValueRef term_x(cg *c, void *ctx, LLVMValueRef i)
{
    return cg_fload(c, ((norm_ctx *)ctx)->row, i);
}

static LLVMValueRef term_sq_dev(cg *c, void *ctx, LLVMValueRef i)
{
    norm_ctx *nc = ctx;
    LLVMValueRef d = cg_fload(c, nc->row, i);
    if (nc->mean) d = LLVMBuildFSub(c->b, d, nc->mean, "");
    return LLVMBuildFMul(c->b, d, d, "");
}

/* Rows [begin, end) (vals: x, scale, shift (rmsnorm: unused), y); each
 * row's sums in the same order whichever thread runs it. */
static void norm_rows(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end, void *user)
{
    const ir_node *n = user;
    int64_t d = n->shape[n->rank - 1];
    bool ln = n->op == IR_OP_LAYERNORM;
    cg_loop lr = cg_loop_begin(c, begin, end, 1, "row");
    norm_ctx nc = {cg_fptr(c, vals[0], cg_mul_k(c, lr.iv, d)), NULL};
    LLVMValueRef inv_d = cg_f32(c, 1.0 / (double)d);
    if (ln) nc.mean = LLVMBuildFMul(c->b, reduce_sum(c, cg_i64(c, d), term_x, &nc), inv_d, "mean");
    LLVMValueRef var =
        LLVMBuildFMul(c->b, reduce_sum(c, cg_i64(c, d), term_sq_dev, &nc), inv_d, "var");
    LLVMTypeRef t = c->t_f32;
    LLVMValueRef arg = LLVMBuildFAdd(c->b, var, cg_f32(c, n->attr.eps), "");
    LLVMValueRef inv =
        LLVMBuildFDiv(c->b, cg_f32(c, 1), cg_intrinsic(c, "llvm.sqrt", &t, 1, &arg, 1), "inv");
    LLVMValueRef yrow = cg_fptr(c, vals[3], cg_mul_k(c, lr.iv, d));
    cg_loop li = cg_for(c, 0, d, 1, "i");
    LLVMValueRef x = cg_fload(c, nc.row, li.iv);
    if (ln) x = LLVMBuildFSub(c->b, x, nc.mean, "");
    LLVMValueRef y =
        LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, x, inv, ""), cg_fload(c, vals[1], li.iv), "");
    if (ln) y = LLVMBuildFAdd(c->b, y, cg_fload(c, vals[2], li.iv), "");
    cg_fstore(c, y, yrow, li.iv);
    cg_loop_end(c, &li);
    cg_loop_end(c, &lr);
}

static void emit_norm(op_ctx *o)
{
    const ir_node *n = o->n;
    int64_t count = ir_node_count(n), rows = count / n->shape[n->rank - 1];
    LLVMValueRef vals[4] = {o->in[0], o->in[1], n->op == IR_OP_LAYERNORM ? o->in[2] : o->in[1],
                            o->out};
    cg_parallel(o->c, sup_arena_printf(o->c->arena, "%s.rows", n->name), vals, 4, rows,
                count >= PARALLEL_ELEMENTS, norm_rows, (void *)n);
}

/* reduce_*: per result element, a loop nest over the reduced axes (the
 * innermost contiguous when the last axes are reduced, so it vectorises:
 * sums carry reassoc). max and min propagate NaN (llvm.maximum/minimum). */
static void emit_reduce(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *n = o->n, *x = &c->g->nodes[n->inputs[0]];
    int64_t xs[IR_MAX_RANK], s = 1, per = 1;
    for (int d = x->rank - 1; d >= 0; d--) xs[d] = s, s *= x->shape[d];
    cg_loop kept[IR_MAX_RANK], red[IR_MAX_RANK];
    int nk = 0, nr = 0;
    LLVMValueRef base = cg_i64(c, 0), dst = cg_i64(c, 0);
    for (int d = 0; d < x->rank; d++)
        if (!(n->attr.axes >> d & 1)) {
            kept[nk] = cg_for(c, 0, x->shape[d], 1, "k");
            base = cg_add(c, base, cg_mul_k(c, kept[nk].iv, xs[d]));
            dst = cg_add(c, cg_mul_k(c, dst, x->shape[d]), kept[nk].iv);
            nk++;
        }
    ir_reduce fn = (ir_reduce)n->attr.fn;
    LLVMValueRef acc = cg_alloca(c, c->t_f32, "acc");
    double init = fn == IR_RED_MAX ? -INFINITY : fn == IR_RED_MIN ? INFINITY : 0;
    cg_store(c, cg_f32(c, init), acc, 4);
    LLVMValueRef at = base;
    for (int d = 0; d < x->rank; d++)
        if (n->attr.axes >> d & 1) {
            red[nr] = cg_for(c, 0, x->shape[d], 1, "r");
            at = cg_add(c, at, cg_mul_k(c, red[nr].iv, xs[d]));
            per *= x->shape[d];
            nr++;
        }
    LLVMValueRef v = cg_fload(c, o->in[0], at), a = cg_load(c, c->t_f32, acc, 4), r;
    LLVMTypeRef t = c->t_f32;
    LLVMValueRef args[2] = {a, v};
    if (fn == IR_RED_MAX)
        r = cg_intrinsic(c, "llvm.maximum", &t, 1, args, 2);
    else if (fn == IR_RED_MIN)
        r = cg_intrinsic(c, "llvm.minimum", &t, 1, args, 2);
    else
        r = cg_fast(LLVMBuildFAdd(c->b, a, v, ""));
    cg_store(c, r, acc, 4);
    for (int d = nr - 1; d >= 0; d--) cg_loop_end(c, &red[d]);
    LLVMValueRef y = cg_load(c, c->t_f32, acc, 4);
    if (fn == IR_RED_MEAN) y = LLVMBuildFDiv(c->b, y, cg_f32(c, (double)per), "mean");
    cg_fstore(c, y, o->out, dst);
    for (int d = nk - 1; d >= 0; d--) cg_loop_end(c, &kept[d]);
}

/* ---- data movement -------------------------------------------------------- */

/* to_f32, to_i32: sitofp, or fptosi.sat (truncation, saturating, NaN to 0). */
static void emit_cast(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *n = o->n, *x = &c->g->nodes[n->inputs[0]];
    int64_t count = ir_node_count(n);
    if (x->dtype == n->dtype) {
        cg_memcpy(c, o->out, o->in[0], cg_i64(c, count * 4));
        return;
    }
    cg_loop l = cg_for(c, 0, count, 1, "i");
    LLVMValueRef y;
    if (n->dtype == QMC_DTYPE_F32) {
        LLVMValueRef v = cg_load(c, c->t_i32, cg_gep(c, c->t_i32, o->in[0], l.iv), 4);
        y = LLVMBuildSIToFP(c->b, v, c->t_f32, "");
    } else {
        LLVMValueRef v = cg_fload(c, o->in[0], l.iv);
        LLVMTypeRef types[2] = {c->t_i32, c->t_f32};
        y = cg_intrinsic(c, "llvm.fptosi.sat", types, 2, &v, 1);
    }
    cg_store(c, y, cg_gep(c, LLVMTypeOf(y), o->out, l.iv), 4);
    cg_loop_end(c, &l);
}

/* The index at ix[i] (i32) as i64; -dim .. -1 count from the end when
 * negatives_wrap. The model returns QMC_ERR_INVALID_ARGUMENT from here on
 * an index outside the table; code after this continues in bounds. */
static LLVMValueRef checked_index(cg *c, LLVMValueRef ix, LLVMValueRef i, int64_t dim,
                                  bool negatives_wrap)
{
    LLVMValueRef idx =
        LLVMBuildSExt(c->b, cg_load(c, c->t_i32, cg_gep(c, c->t_i32, ix, i), 4), c->t_i64, "");
    if (negatives_wrap) {
        LLVMValueRef neg = LLVMBuildICmp(c->b, LLVMIntSLT, idx, cg_i64(c, 0), "");
        idx = LLVMBuildSelect(c->b, neg, cg_add(c, idx, cg_i64(c, dim)), idx, "");
    }
    LLVMValueRef bad = LLVMBuildICmp(c->b, LLVMIntUGE, idx, cg_i64(c, dim), "");
    LLVMBasicBlockRef fail = cg_block(c, "bad_index"), ok = cg_block(c, "copy");
    LLVMBuildCondBr(c->b, bad, fail, ok);
    LLVMPositionBuilderAtEnd(c->b, fail);
    LLVMBuildRet(c->b, cg_i32(c, QMC_ERR_INVALID_ARGUMENT));
    LLVMPositionBuilderAtEnd(c->b, ok);
    return idx;
}

/* gather: per outer index and index, inner elements copied; an index
 * outside -dim .. dim - 1 makes the model fail (QMC_ERR_INVALID_ARGUMENT),
 * as embedding's do. */
static void emit_gather(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *n = o->n, *x = &c->g->nodes[n->inputs[0]], *ix = &c->g->nodes[n->inputs[1]];
    int64_t outer = 1, inner = 1, dim = x->shape[n->attr.axis], count = ir_node_count(ix);
    for (int d = 0; d < n->attr.axis; d++) outer *= x->shape[d];
    for (int d = n->attr.axis + 1; d < x->rank; d++) inner *= x->shape[d];
    cg_loop lo = cg_for(c, 0, outer, 1, "o");
    cg_loop li = cg_for(c, 0, count, 1, "i");
    LLVMValueRef idx = checked_index(c, o->in[1], li.iv, dim, true);
    LLVMValueRef src = cg_mul_k(c, cg_add(c, cg_mul_k(c, lo.iv, dim), idx), inner);
    LLVMValueRef dst = cg_mul_k(c, cg_add(c, cg_mul_k(c, lo.iv, count), li.iv), inner);
    cg_memcpy(c, cg_fptr(c, o->out, dst), cg_fptr(c, o->in[0], src), cg_i64(c, inner * 4));
    cg_loop_end(c, &li);
    cg_loop_end(c, &lo);
}

static void emit_embedding(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *t = &c->g->nodes[o->n->inputs[0]], *ix = &c->g->nodes[o->n->inputs[1]];
    int64_t rows = t->shape[0], d = t->shape[1];
    cg_loop l = cg_for(c, 0, ir_node_count(ix), 1, "i");
    LLVMValueRef idx = checked_index(c, o->in[1], l.iv, rows, false);
    cg_memcpy(c, cg_fptr(c, o->out, cg_mul_k(c, l.iv, d)),
              cg_fptr(c, o->in[0], cg_mul_k(c, idx, d)), cg_i64(c, d * 4));
    cg_loop_end(c, &l);
}

static void emit_transpose(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *n = o->n, *x = &c->g->nodes[n->inputs[0]];
    int64_t xs[IR_MAX_RANK], s = 1;
    for (int d = x->rank - 1; d >= 0; d--) xs[d] = s, s *= x->shape[d];
    cg_loop loops[IR_MAX_RANK];
    LLVMValueRef src = cg_i64(c, 0), dst = cg_i64(c, 0);
    for (int d = 0; d < n->rank; d++) {
        loops[d] = cg_for(c, 0, n->shape[d], 1, "d");
        src = cg_add(c, src, cg_mul_k(c, loops[d].iv, xs[n->attr.perm[d]]));
        dst = cg_add(c, cg_mul_k(c, dst, n->shape[d]), loops[d].iv);
    }
    cg_fstore(c, cg_fload(c, o->in[0], src), o->out, dst);
    for (int d = n->rank - 1; d >= 0; d--) cg_loop_end(c, &loops[d]);
}

static void emit_slice(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *x = &c->g->nodes[o->n->inputs[0]];
    int64_t outer, dim, inner, len = o->n->attr.end - o->n->attr.start;
    split_axis(x, o->n->attr.axis, &outer, &dim, &inner);
    cg_loop l = cg_for(c, 0, outer, 1, "o");
    LLVMValueRef src =
        cg_add(c, cg_mul_k(c, l.iv, dim * inner), cg_i64(c, o->n->attr.start * inner));
    cg_memcpy(c, cg_fptr(c, o->out, cg_mul_k(c, l.iv, len * inner)), cg_fptr(c, o->in[0], src),
              cg_i64(c, len * inner * 4));
    cg_loop_end(c, &l);
}

static void emit_concat(op_ctx *o)
{
    cg *c = o->c;
    int64_t outer, dim, inner, at = 0;
    split_axis(o->n, o->n->attr.axis, &outer, &dim, &inner);
    for (int i = 0; i < o->n->n_inputs; i++) {
        int64_t len = c->g->nodes[o->n->inputs[i]].shape[o->n->attr.axis];
        cg_loop l = cg_for(c, 0, outer, 1, "o");
        LLVMValueRef dst = cg_add(c, cg_mul_k(c, l.iv, dim * inner), cg_i64(c, at * inner));
        cg_memcpy(c, cg_fptr(c, o->out, dst), cg_fptr(c, o->in[i], cg_mul_k(c, l.iv, len * inner)),
                  cg_i64(c, len * inner * 4));
        cg_loop_end(c, &l);
        at += len;
    }
}

/* ---- matmul of two activations ------------------------------------------ */

static void emit_matmul(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *n = o->n;
    ir_node a = c->g->nodes[n->inputs[0]], b = c->g->nodes[n->inputs[1]];
    if (a.rank == 1) a.shape[1] = a.shape[0], a.shape[0] = 1, a.rank = 2;
    if (b.rank == 1) b.shape[1] = 1, b.rank = 2;
    int64_t m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], nn = b.shape[b.rank - 1];
    int brank = (a.rank > b.rank ? a.rank : b.rank) - 2;
    int64_t shape[IR_MAX_RANK], sa[IR_MAX_RANK], sb[IR_MAX_RANK], batches = 1;
    int64_t pa = m * k, pb = k * nn;
    for (int d = brank - 1; d >= 0; d--) {
        int ai = d - (brank - (a.rank - 2)), bi = d - (brank - (b.rank - 2));
        int64_t da = ai >= 0 ? a.shape[ai] : 1, db = bi >= 0 ? b.shape[bi] : 1;
        shape[d] = da > db ? da : db;
        sa[d] = da == 1 ? 0 : pa;
        sb[d] = db == 1 ? 0 : pb;
        pa *= da, pb *= db;
        batches *= shape[d];
    }
    cg_loop lb = cg_for(c, 0, batches, 1, "batch");
    LLVMValueRef oa = cg_i64(c, 0), ob = cg_i64(c, 0), rem = lb.iv;
    for (int d = brank - 1; d >= 0; d--) {
        LLVMValueRef i = LLVMBuildSRem(c->b, rem, cg_i64(c, shape[d]), "");
        rem = LLVMBuildSDiv(c->b, rem, cg_i64(c, shape[d]), "");
        oa = cg_add(c, oa, cg_mul_k(c, i, sa[d]));
        ob = cg_add(c, ob, cg_mul_k(c, i, sb[d]));
    }
    LLVMValueRef A = cg_fptr(c, o->in[0], oa), B = cg_fptr(c, o->in[1], ob),
                 Y = cg_fptr(c, o->out, cg_mul_k(c, lb.iv, m * nn));
    cg_loop lm = cg_for(c, 0, m, 1, "m");
    LLVMValueRef yrow = cg_fptr(c, Y, cg_mul_k(c, lm.iv, nn));
    cg_loop lz = cg_for(c, 0, nn, 1, "z");
    cg_fstore(c, cg_f32(c, 0), yrow, lz.iv);
    cg_loop_end(c, &lz);
    cg_loop lk = cg_for(c, 0, k, 1, "k");
    LLVMValueRef av = cg_fload(c, A, cg_add(c, cg_mul_k(c, lm.iv, k), lk.iv));
    LLVMValueRef brow = cg_fptr(c, B, cg_mul_k(c, lk.iv, nn));
    cg_loop ln = cg_for(c, 0, nn, 1, "n");
    cg_fstore(c, cg_fmuladd(c, av, cg_fload(c, brow, ln.iv), cg_fload(c, yrow, ln.iv)), yrow,
              ln.iv);
    cg_loop_end(c, &ln);
    cg_loop_end(c, &lk);
    cg_loop_end(c, &lm);
    cg_loop_end(c, &lb);
}

/* ---- attention -------------------------------------------------------------- */

/* Per head h and query i: scores over the visible keys (all, or j <= i +
 * s - t when causal) computed a vector of keys at a time from the head's
 * keys transposed into scratch (kT[c][j]), scaled, with the row's maximum
 * gathered on the way; e^(score - max) in place; then the output row as
 * the sum of value rows weighted by those, times 1 / their sum. Query head
 * h reads key/value head h / (heads / kv_heads). With a cache, the new keys
 * and values are stored at the model's position first, and the keys are
 * the cache's first pos + t: s is known only at run time (scratch rows are
 * laid out for the context). */
enum {
    QUERY_BLOCK = IR_ATTN_QUERY_BLOCK, /* queries whose scores are computed together */
    KEY_BLOCK = 16,                    /* keys transposed together */
    DIRECT_QUERIES = 4,                /* fewer queries read the keys as they lie (direct_query) */
};

typedef struct attn_ctx {
    int64_t t, d, dv, hd, hv, kd, vd; /* q, out row: d, dv; k, v row: kd, vd */
    int group;                        /* query heads per key/value head */
    int64_t stride;                   /* of a score row and a kT row: s, or the context */
    LLVMValueRef s, off;              /* keys, and s - t (the first query's position) */
    bool causal;
    float scale;
    int qb; /* queries in the current block */
    LLVMValueRef q, k, v, out, scores, kt;
    LLVMValueRef head, kv_head, query; /* query: the block's first */
    LLVMValueRef v_col;                /* the head's first column of v */
    rt_kv_format kv;                   /* a cached attention's format (f32 otherwise) */
    LLVMValueRef k_scale, v_scale;     /* quantized: per position and kv head */
    LLVMValueRef max[QUERY_BLOCK]; /* per query: a vector of partial maxima of its visible scores */
    LLVMValueRef inv_sum; /* per query: 1 / the sum of its exponentials (f32[QUERY_BLOCK]) */
} attn_ctx;

/* The number of keys query q0 + u sees. */
static LLVMValueRef visible_keys(cg *c, const attn_ctx *a, LLVMValueRef q0, int64_t u)
{
    if (!a->causal) return a->s;
    return cg_add(c, cg_add(c, q0, a->off), cg_i64(c, u + 1));
}

/* Scores of the block's queries against one vector of keys: each kT load
 * feeds every query of the block (independent FMA chains). Keys past the
 * ones a query sees (the block's later queries see more) are written but
 * left out of its maximum. */
static void scores_body(cg *c, void *ctx, LLVMValueRef j, LLVMValueRef mask, int lanes)
{
    attn_ctx *a = ctx;
    LLVMValueRef acc[QUERY_BLOCK], qrow[QUERY_BLOCK];
    for (int u = 0; u < a->qb; u++) {
        acc[u] = LLVMConstNull(cg_vec(c, c->t_f32, lanes));
        qrow[u] = cg_fptr(c, a->q,
                          cg_add(c, cg_mul_k(c, cg_add(c, a->query, cg_i64(c, u)), a->d),
                                 cg_mul_k(c, a->head, a->hd)));
    }
    for (int64_t ch = 0; ch < a->hd; ch++) {
        LLVMValueRef kv = cg_vload(c, a->kt, cg_add(c, cg_i64(c, ch * a->stride), j), mask, lanes);
        for (int u = 0; u < a->qb; u++)
            acc[u] =
                cg_fmuladd(c, cg_splat(c, cg_fload(c, qrow[u], cg_i64(c, ch)), lanes), kv, acc[u]);
    }
    LLVMTypeRef vt = cg_vec(c, c->t_f32, lanes);
    for (int u = 0; u < a->qb; u++) {
        LLVMValueRef x =
            LLVMBuildFMul(c->b, acc[u], cg_splat(c, cg_f32(c, a->scale), lanes), "score");
        cg_vstore(c, x, a->scores, cg_add(c, cg_i64(c, u * a->stride), j), mask);
        LLVMValueRef seen = mask;
        if (a->causal) {
            LLVMValueRef visible = visible_keys(c, a, a->query, u);
            LLVMValueRef m = cg_lanes_below(c, LLVMBuildSub(c->b, visible, j, ""), lanes);
            seen = seen ? LLVMBuildAnd(c->b, seen, m, "") : m;
        }
        if (seen) x = LLVMBuildSelect(c->b, seen, x, cg_splat(c, cg_f32(c, -INFINITY), lanes), "");
        LLVMValueRef args[2] = {cg_load(c, vt, a->max[u], 64), x};
        cg_store(c, cg_intrinsic(c, "llvm.maxnum", &vt, 1, args, 2), a->max[u], 64);
    }
}

/* out[q0 + u, head cols c0 .. c0 + n_cv * lanes) for the block's queries u
 * = sum over the keys u sees of p[u][key] * v[key, cols]: over the keys all
 * of them see (vis0, the first query's count), each value vector loaded
 * once feeds every query; then each query's remaining keys (causal: key
 * vis0 + i is seen by the queries after the i-th). */
enum { PV_VECTORS = 2 }; /* value vectors per pass: qb * PV_VECTORS sums in registers */

static void pv_block(cg *c, attn_ctx *a, LLVMValueRef q0, int qb, LLVMValueRef vis0, bool causal,
                     int64_t c0, int n_cv)
{
    int L = c->lanes;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, L);
    LLVMValueRef acc[QUERY_BLOCK][PV_VECTORS], mask[PV_VECTORS];
    for (int cv = 0; cv < n_cv; cv++) {
        int64_t left = a->hv - (c0 + cv * L);
        mask[cv] = left < L ? cg_lane_mask(c, L, left) : NULL;
        for (int u = 0; u < qb; u++) {
            acc[u][cv] = cg_alloca(c, vt, "pv");
            cg_store(c, LLVMConstNull(vt), acc[u][cv], 64);
        }
    }
    LLVMValueRef in_col = cg_add(c, a->v_col, cg_i64(c, c0));
    LLVMValueRef out_col = cg_add(c, cg_mul_k(c, a->head, a->hv), cg_i64(c, c0));
    /* queries u0 .. qb - 1 over keys [from, to) (causal attention has at
     * least as many keys as queries: vis0 >= 1) */
    for (int tail = 0; tail < (causal ? qb : 1); tail++) {
        int u0 = causal ? tail : 0;
        LLVMValueRef from = tail ? cg_add(c, vis0, cg_i64(c, tail - 1)) : cg_i64(c, 0);
        LLVMValueRef to = tail ? cg_add(c, vis0, cg_i64(c, tail)) : vis0;
        cg_loop lj = cg_loop_begin(c, from, to, 1, tail ? "key.tail" : "key");
        LLVMValueRef vv[PV_VECTORS];
        for (int cv = 0; cv < n_cv; cv++)
            vv[cv] = cg_vload(
                c, a->v, cg_add(c, cg_mul_k(c, lj.iv, a->vd), cg_add(c, in_col, cg_i64(c, cv * L))),
                mask[cv], L);
        for (int u = u0; u < qb; u++) {
            LLVMValueRef p =
                cg_splat(c, cg_fload(c, a->scores, cg_add(c, cg_i64(c, u * a->stride), lj.iv)), L);
            for (int cv = 0; cv < n_cv; cv++)
                cg_store(c, cg_fmuladd(c, p, vv[cv], cg_load(c, vt, acc[u][cv], 64)), acc[u][cv],
                         64);
        }
        cg_loop_end(c, &lj);
    }
    for (int u = 0; u < qb; u++) {
        LLVMValueRef inv = cg_splat(c, cg_fload(c, a->inv_sum, cg_i64(c, u)), L);
        for (int cv = 0; cv < n_cv; cv++)
            cg_vstore(c, LLVMBuildFMul(c->b, cg_load(c, vt, acc[u][cv], 64), inv, ""), a->out,
                      cg_add(c, cg_mul_k(c, cg_add(c, q0, cg_i64(c, u)), a->dv),
                             cg_add(c, out_col, cg_i64(c, cv * L))),
                      mask[cv]);
    }
}

/* The output rows of queries q0 .. q0 + qb - 1 of the current head from
 * their exponentials (pv_block, PV_VECTORS value vectors at a time). */
static void weighted_values(cg *c, attn_ctx *a, LLVMValueRef q0, int qb)
{
    int L = c->lanes;
    LLVMValueRef vis0 = visible_keys(c, a, q0, 0);
    int64_t n_vectors = (a->hv + L - 1) / L;
    for (int64_t c0 = 0; c0 < n_vectors; c0 += PV_VECTORS)
        pv_block(c, a, q0, qb, vis0, a->causal, c0 * L,
                 (int)(n_vectors - c0 < PV_VECTORS ? n_vectors - c0 : PV_VECTORS));
}

/* Queries q0 .. q0 + qb - 1 of the current head: their scores and maxima
 * together (over the keys the last of them sees), then each one's
 * exponentials, then their weighted sums of values together. Query i sees
 * keys j <= i + s - t when causal. */
static void attention_queries(cg *c, attn_ctx *a, LLVMValueRef q0, int qb)
{
    int L = c->lanes;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, L);
    LLVMValueRef scores = a->scores,
                 maxima = cg_alloca(c, LLVMArrayType(c->t_f32, QUERY_BLOCK), "maxima");
    a->qb = qb;
    a->query = q0;
    for (int u = 0; u < qb; u++) cg_store(c, cg_splat(c, cg_f32(c, -INFINITY), L), a->max[u], 64);
    cg_vloop(c, visible_keys(c, a, q0, qb - 1), L, scores_body, a);
    for (int u = 0; u < qb; u++)
        cg_fstore(c, softmax_max(c, cg_load(c, vt, a->max[u], 64)), maxima, cg_i64(c, u));
    /* a loop, not unrolled: the code of one query's exponentials is large */
    cg_loop lu = cg_for(c, 0, qb, 1, "query");
    LLVMValueRef visible = visible_keys(c, a, cg_add(c, q0, lu.iv), 0);
    LLVMValueRef row = cg_fptr(c, scores, cg_mul_k(c, lu.iv, a->stride));
    cg_fstore(c, softmax_exp(c, row, row, visible, cg_f32(c, 1), cg_fload(c, maxima, lu.iv), NULL),
              a->inv_sum, lu.iv);
    cg_loop_end(c, &lu);
    weighted_values(c, a, q0, qb);
}

/* Query q0 of the current head with its scores straight from the key rows
 * (decode: a query or two per head, too few to pay for transposing the
 * keys): each key's dot product a vector of channels at a time, summed
 * across lanes; then its exponentials and weighted sum of values as
 * attention_queries does. */
static void direct_query(cg *c, attn_ctx *a, LLVMValueRef q0)
{
    int L = c->lanes;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, L), ft = c->t_f32;
    LLVMValueRef qrow =
        cg_fptr(c, a->q, cg_add(c, cg_mul_k(c, q0, a->d), cg_mul_k(c, a->head, a->hd)));
    LLVMValueRef kcol = cg_mul_k(c, a->kv_head, a->hd), visible = visible_keys(c, a, q0, 0);
    LLVMValueRef maxp = cg_alloca(c, ft, "max");
    cg_store(c, cg_f32(c, -INFINITY), maxp, 4);
    cg_loop lj = cg_loop_begin(c, cg_i64(c, 0), visible, 1, "key");
    LLVMValueRef krow = cg_fptr(c, a->k, cg_add(c, cg_mul_k(c, lj.iv, a->kd), kcol));
    LLVMValueRef acc = LLVMConstNull(vt);
    for (int64_t c0 = 0; c0 < a->hd; c0 += L) {
        LLVMValueRef mask = a->hd - c0 < L ? cg_lane_mask(c, L, a->hd - c0) : NULL;
        acc = cg_fmuladd(c, cg_vload(c, qrow, cg_i64(c, c0), mask, L),
                         cg_vload(c, krow, cg_i64(c, c0), mask, L), acc);
    }
    LLVMValueRef x = LLVMBuildFMul(c->b, vreduce(c, "llvm.vector.reduce.fadd", acc, cg_f32(c, 0)),
                                   cg_f32(c, a->scale), "score");
    cg_fstore(c, x, a->scores, lj.iv);
    LLVMValueRef args[2] = {cg_load(c, ft, maxp, 4), x};
    cg_store(c, cg_intrinsic(c, "llvm.maxnum", &ft, 1, args, 2), maxp, 4);
    cg_loop_end(c, &lj);
    LLVMValueRef m = cg_load(c, ft, maxp, 4);
    m = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOEQ, m, cg_f32(c, -INFINITY), ""),
                        cg_f32(c, 0), m, "");
    cg_fstore(c, softmax_exp(c, a->scores, a->scores, visible, cg_f32(c, 1), m, NULL), a->inv_sum,
              cg_i64(c, 0));
    weighted_values(c, a, q0, 1);
}

/* The shapes of attention node n (s, off: as run-time values). */
static attn_ctx attention_shape(cg *c, const ir_node *n, LLVMValueRef pos)
{
    const ir_node *q = &c->g->nodes[n->inputs[0]], *k = &c->g->nodes[n->inputs[1]],
                  *v = &c->g->nodes[n->inputs[2]];
    int kvh = n->attr.kv_heads ? n->attr.kv_heads : n->attr.heads;
    attn_ctx a = {.t = q->shape[0],
                  .d = q->shape[1],
                  .dv = n->shape[1],
                  .kd = k->shape[1],
                  .vd = v->shape[1],
                  .group = n->attr.heads / kvh,
                  .causal = n->attr.causal,
                  .scale = n->attr.scale};
    a.hd = a.d / n->attr.heads;
    a.hv = a.dv / n->attr.heads;
    a.stride = ir_attention_scratch(c->g, n).stride;
    if (n->attr.cached) {
        a.off = pos;
        a.s = cg_add(c, pos, cg_i64(c, a.t));
    } else {
        a.off = cg_i64(c, k->shape[0] - a.t);
        a.s = cg_i64(c, k->shape[0]);
    }
    return a;
}

/* The value of a quantized cache at byte `at` of position j: its code
 * decoded (int8 as is, FP8 E4M3 through a table of the 256 codes) times the
 * scale of j's key/value head, as the interpreter reads it. */
static LLVMValueRef cache_value(cg *c, const attn_ctx *a, LLVMValueRef codes, LLVMValueRef scales,
                                LLVMValueRef j, LLVMValueRef at)
{
    LLVMValueRef code = cg_load(c, c->t_i8, cg_gep(c, c->t_i8, codes, at), 1), v;
    if (a->kv == RT_KV_INT8) {
        v = LLVMBuildSIToFP(c->b, code, c->t_f32, "");
    } else {
        LLVMValueRef table = LLVMGetNamedGlobal(c->mod, "kv.fp8e4m3");
        if (!table) {
            float t[256];
            for (int i = 0; i < 256; i++) t[i] = rt_kv_decode(RT_KV_FP8E4M3, (uint8_t)i);
            LLVMValueRef init = LLVMConstStringInContext2(c->ctx, (const char *)t, sizeof t, 1);
            table = LLVMAddGlobal(c->mod, LLVMTypeOf(init), "kv.fp8e4m3");
            LLVMSetInitializer(table, init);
            LLVMSetGlobalConstant(table, 1);
            LLVMSetLinkage(table, LLVMInternalLinkage);
            LLVMSetAlignment(table, 64);
        }
        v = cg_fload(c, table, LLVMBuildZExt(c->b, code, c->t_i64, ""));
    }
    LLVMValueRef s = cg_fload(c, scales, cg_add(c, cg_mul_k(c, j, a->kd / a->hd), a->kv_head));
    return LLVMBuildFMul(c->b, v, s, "");
}

/* The current head's queries in blocks (attention_queries). */
static void head_queries(cg *c, attn_ctx *a)
{
    int qb = c->lanes == 16 ? QUERY_BLOCK : QUERY_BLOCK / 2;
    int64_t full = a->t / qb * qb;
    if (full) {
        cg_loop li = cg_for(c, 0, full, qb, "queries");
        attention_queries(c, a, li.iv, qb);
        cg_loop_end(c, &li);
    }
    if (a->t % qb) attention_queries(c, a, cg_i64(c, full), (int)(a->t % qb));
}

/* kT[ch][j] = k[j][kv_head*hd + ch] (a quantized cache's keys decoded),
 * KEY_BLOCK keys at a time: their rows stay in L1 while every channel of
 * them is stored, and the stores of a channel are contiguous (storing a
 * key's channels at once makes scatters; a channel of every key at once
 * reads the keys from L2 hd times). */
static void transpose_keys(cg *c, attn_ctx *a, bool quantized)
{
    cg_loop lb = cg_loop_begin(c, cg_i64(c, 0), a->s, KEY_BLOCK, "keys");
    LLVMValueRef block_end = cg_add(c, lb.iv, cg_i64(c, KEY_BLOCK));
    block_end = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, block_end, a->s, ""),
                                block_end, a->s, "keys.end");
    cg_loop lc = cg_for(c, 0, a->hd, 1, "ch");
    cg_loop lj = cg_loop_begin(c, lb.iv, block_end, 1, "key");
    LLVMValueRef at =
        cg_add(c, cg_mul_k(c, lj.iv, a->kd), cg_add(c, cg_mul_k(c, a->kv_head, a->hd), lc.iv));
    cg_fstore(c, quantized ? cache_value(c, a, a->k, a->k_scale, lj.iv, at) : cg_fload(c, a->k, at),
              a->kt, cg_add(c, cg_mul_k(c, lc.iv, a->stride), lj.iv));
    cg_loop_end(c, &lj);
    cg_loop_end(c, &lc);
    cg_loop_end(c, &lb);
}

/* The key/value heads [begin, end), each with its own scratch, so that the
 * thread pool can take them in parallel (vals: q, k, v, out, scratch, pos,
 * k_scale, v_scale): the head's keys transposed once (and a quantized
 * cache's values decoded once), then the query heads that read them. */
static void attention_heads(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end,
                            void *user)
{
    const ir_node *n = user;
    attn_ctx a = attention_shape(c, n, LLVMBuildPtrToInt(c->b, vals[5], c->t_i64, "pos"));
    a.q = vals[0], a.k = vals[1], a.v = vals[2], a.out = vals[3];
    for (int u = 0; u < QUERY_BLOCK; u++)
        a.max[u] = cg_alloca(c, cg_vec(c, c->t_f32, c->lanes), "max");
    a.inv_sum = cg_alloca(c, LLVMArrayType(c->t_f32, QUERY_BLOCK), "inv_sum");
    bool quantized = n->attr.cached && c->g->kv_format != RT_KV_F32;
    a.kv = quantized ? c->g->kv_format : RT_KV_F32;
    a.k_scale = vals[6], a.v_scale = vals[7];
    cg_loop lh = cg_loop_begin(c, begin, end, 1, "kv_head");
    a.kv_head = lh.iv;
    a.scores = cg_fptr(c, vals[4], cg_mul_k(c, lh.iv, ir_attention_scratch(c->g, n).per_kv_head));
    a.kt = cg_fptr(c, a.scores, cg_i64(c, QUERY_BLOCK * a.stride));
    a.v_col = cg_mul_k(c, a.kv_head, a.hv);
    bool direct = !quantized && a.t < DIRECT_QUERIES;
    if (!direct) transpose_keys(c, &a, quantized);
    if (quantized) {
        /* the head's values decoded: vd[j][c] = v[j][kv_head*hv + c] */
        LLVMValueRef vd = cg_fptr(c, a.kt, cg_i64(c, a.hd * a.stride));
        cg_loop lk = cg_loop_begin(c, cg_i64(c, 0), a.s, 1, "key");
        cg_loop lv = cg_for(c, 0, a.hv, 1, "col");
        LLVMValueRef src = cg_add(c, cg_mul_k(c, lk.iv, a.vd), cg_add(c, a.v_col, lv.iv));
        cg_fstore(c, cache_value(c, &a, a.v, a.v_scale, lk.iv, src), vd,
                  cg_add(c, cg_mul_k(c, lk.iv, a.hv), lv.iv));
        cg_loop_end(c, &lv);
        cg_loop_end(c, &lk);
        a.v = vd, a.vd = a.hv, a.v_col = cg_i64(c, 0);
    }
    cg_loop lg = cg_for(c, 0, a.group, 1, "head");
    a.head = cg_add(c, cg_mul_k(c, lh.iv, a.group), lg.iv);
    if (direct) {
        cg_loop li = cg_for(c, 0, a.t, 1, "query");
        direct_query(c, &a, li.iv);
        cg_loop_end(c, &li);
    } else {
        head_queries(c, &a);
    }
    cg_loop_end(c, &lg);
    cg_loop_end(c, &lh);
}

/* Rows x[t][dim] into a quantized cache at position pos: each key/value
 * head's vector through the runtime's rt_kv_quantize (the codes at
 * codes[pos + r][...], the scale at scales[pos + r][head]). */
static void store_quantized(cg *c, LLVMValueRef codes, LLVMValueRef scales, LLVMValueRef x,
                            LLVMValueRef pos, int64_t t, int64_t dim, int kv_heads)
{
    LLVMTypeRef params[4] = {c->t_i32, c->t_ptr, c->t_i64, c->t_ptr};
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, "rt_kv_quantize");
    if (!fn)
        fn = LLVMAddFunction(c->mod, "rt_kv_quantize", LLVMFunctionType(c->t_f32, params, 4, 0));
    int64_t hd = dim / kv_heads;
    cg_loop lr = cg_for(c, 0, t, 1, "row");
    cg_loop lh = cg_for(c, 0, kv_heads, 1, "kv_head");
    LLVMValueRef at = cg_add(c, cg_mul_k(c, lr.iv, dim), cg_mul_k(c, lh.iv, hd));
    LLVMValueRef to = cg_add(c, cg_mul_k(c, cg_add(c, pos, lr.iv), dim), cg_mul_k(c, lh.iv, hd));
    LLVMValueRef args[4] = {cg_i32(c, c->g->kv_format), cg_fptr(c, x, at), cg_i64(c, hd),
                            cg_gep(c, c->t_i8, codes, to)};
    LLVMValueRef s = LLVMBuildCall2(c->b, LLVMGlobalGetValueType(fn), fn, args, 4, "");
    cg_fstore(c, s, scales, cg_add(c, cg_mul_k(c, cg_add(c, pos, lr.iv), kv_heads), lh.iv));
    cg_loop_end(c, &lh);
    cg_loop_end(c, &lr);
}

static void emit_attention(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *n = o->n, *q = &c->g->nodes[n->inputs[0]];
    LLVMValueRef k = o->in[1], v = o->in[2], pos = o->pos ? o->pos : cg_i64(c, 0);
    if (n->attr.cached) {
        /* the new keys and values go to the cache at pos; the heads read it */
        const ir_cache *cache = &c->g->caches[n->attr.slot];
        int64_t t = q->shape[0];
        if (c->g->kv_format == RT_KV_F32) {
            cg_memcpy(c, cg_fptr(c, o->cache_k, cg_mul_k(c, pos, cache->k_dim)), k,
                      cg_i64(c, t * cache->k_dim * 4));
            cg_memcpy(c, cg_fptr(c, o->cache_v, cg_mul_k(c, pos, cache->v_dim)), v,
                      cg_i64(c, t * cache->v_dim * 4));
        } else {
            store_quantized(c, o->cache_k, o->scale_k, k, pos, t, cache->k_dim, cache->kv_heads);
            store_quantized(c, o->cache_v, o->scale_v, v, pos, t, cache->v_dim, cache->kv_heads);
        }
        k = o->cache_k, v = o->cache_v;
    }
    LLVMValueRef null = LLVMConstNull(c->t_ptr);
    LLVMValueRef vals[8] = {o->in[0],
                            k,
                            v,
                            o->out,
                            o->scratch,
                            LLVMBuildIntToPtr(c->b, pos, c->t_ptr, ""),
                            o->scale_k ? o->scale_k : null,
                            o->scale_v ? o->scale_v : null};
    cg_parallel(c, sup_arena_printf(c->arena, "%s.heads", n->name), vals, 8,
                ir_attention_scratch(c->g, n).kv_heads, q->shape[0] >= 16, attention_heads,
                (void *)n);
}

/* ---- positions -------------------------------------------------------------- */

/* The positions of a call's tokens: pos, pos + 1, ... (i32). */
static void emit_positions(op_ctx *o)
{
    cg *c = o->c;
    cg_loop l = cg_for(c, 0, ir_node_count(o->n), 1, "i");
    LLVMValueRef p = LLVMBuildTrunc(c->b, cg_add(c, o->pos, l.iv), c->t_i32, "");
    cg_store(c, p, cg_gep(c, c->t_i32, o->out, l.iv), 4);
    cg_loop_end(c, &l);
}

/* Rotary embeddings read the cosine and sine of each position and pair
 * from a table computed here in double precision and rounded to float, as
 * the interpreter computes them ([positions][hd/2][2]: cos, sin). */
static LLVMValueRef rope_table(cg *c, const ir_node *n, int64_t positions)
{
    int64_t hd = n->shape[1] / n->attr.heads, half = hd / 2;
    const char *name = sup_arena_printf(c->arena, "rope.%g.%lld.%lld", (double)n->attr.theta,
                                        (long long)hd, (long long)positions);
    LLVMValueRef gv = LLVMGetNamedGlobal(c->mod, name);
    if (gv) return gv;
    float *t = sup_arena_alloc(c->arena, sizeof(float) * (size_t)(positions * half * 2));
    for (int64_t p = 0; p < positions; p++)
        for (int64_t j = 0; j < half; j++) {
            double angle = (double)p * pow((double)n->attr.theta, -2.0 * (double)j / (double)hd);
            t[(p * half + j) * 2] = (float)cos(angle);
            t[(p * half + j) * 2 + 1] = (float)sin(angle);
        }
    LLVMValueRef init = LLVMConstStringInContext2(
        c->ctx, (const char *)t, sizeof(float) * (size_t)(positions * half * 2), 1);
    gv = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMInternalLinkage);
    LLVMSetAlignment(gv, 64);
    return gv;
}

/* y = x with each head's pairs (j, j + hd/2), or (2j, 2j + 1), rotated by
 * the angle of the row's position: a = x0 cos - x1 sin, b = x1 cos + x0 sin. */
static void emit_rope(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *n = o->n;
    int64_t rows = n->shape[0], d = n->shape[1], hd = d / n->attr.heads, half = hd / 2;
    LLVMValueRef table = rope_table(c, n, c->g->context ? c->g->context : rows);
    LLVMValueRef pos = o->pos ? o->pos : cg_i64(c, 0);
    cg_loop lr = cg_for(c, 0, rows, 1, "row");
    LLVMValueRef trow = cg_mul_k(c, cg_add(c, pos, lr.iv), half * 2);
    cg_loop lh = cg_for(c, 0, n->attr.heads, 1, "head");
    LLVMValueRef base = cg_add(c, cg_mul_k(c, lr.iv, d), cg_mul_k(c, lh.iv, hd));
    cg_loop lj = cg_for(c, 0, half, 1, "pair");
    LLVMValueRef cs = cg_fload(c, table, cg_add(c, trow, cg_mul_k(c, lj.iv, 2)));
    LLVMValueRef sn =
        cg_fload(c, table, cg_add(c, trow, cg_add(c, cg_mul_k(c, lj.iv, 2), cg_i64(c, 1))));
    LLVMValueRef i0 =
        n->attr.interleaved ? cg_add(c, base, cg_mul_k(c, lj.iv, 2)) : cg_add(c, base, lj.iv);
    LLVMValueRef i1 = cg_add(c, i0, cg_i64(c, n->attr.interleaved ? 1 : half));
    LLVMValueRef x0 = cg_fload(c, o->in[0], i0), x1 = cg_fload(c, o->in[0], i1);
    cg_fstore(
        c,
        LLVMBuildFSub(c->b, LLVMBuildFMul(c->b, x0, cs, ""), LLVMBuildFMul(c->b, x1, sn, ""), ""),
        o->out, i0);
    cg_fstore(
        c,
        LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, x1, cs, ""), LLVMBuildFMul(c->b, x0, sn, ""), ""),
        o->out, i1);
    cg_loop_end(c, &lj);
    cg_loop_end(c, &lh);
    cg_loop_end(c, &lr);
}

/* A constant operand of an op that reads memory (relu(1.0), reduce_sum of
 * a number): its value as a global. */
static LLVMValueRef const_global(cg *c, const ir_node *k)
{
    const char *name = sup_arena_printf(c->arena, "const.%a", (double)k->attr.value);
    LLVMValueRef gv = LLVMGetNamedGlobal(c->mod, name);
    if (gv) return gv;
    gv = LLVMAddGlobal(c->mod, c->t_f32, name);
    LLVMSetInitializer(gv, cg_f32(c, k->attr.value));
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMInternalLinkage);
    return gv;
}

void cg_emit_op(cg *c, int32_t node, LLVMValueRef out, LLVMValueRef *operands, LLVMValueRef scratch,
                const cg_state_args *state)
{
    const ir_node *n = &c->g->nodes[node];
    for (int j = 0; j < n->n_inputs && j < 64; j++)
        if (!operands[j] && c->g->nodes[n->inputs[j]].op == IR_OP_CONST)
            operands[j] = const_global(c, &c->g->nodes[n->inputs[j]]);
    op_ctx o = {.c = c, .n = n, .out = out, .in = operands, .scratch = scratch};
    if (state) {
        o.pos = state->pos, o.cache_k = state->cache_k, o.cache_v = state->cache_v;
        o.scale_k = state->scale_k, o.scale_v = state->scale_v;
    }
    switch (o.n->op) {
    case IR_OP_ADD:
    case IR_OP_SUB:
    case IR_OP_MUL:
    case IR_OP_DIV:
    case IR_OP_BINARY:
    case IR_OP_WHERE:
    case IR_OP_EXPAND:
    case IR_OP_RELU:
    case IR_OP_GELU:
    case IR_OP_SILU:
    case IR_OP_TANH:
    case IR_OP_UNARY: cg_emit_pointwise(c, o.n, out, operands); break;
    case IR_OP_REDUCE: emit_reduce(&o); break;
    case IR_OP_GATHER: emit_gather(&o); break;
    case IR_OP_CAST: emit_cast(&o); break;
    case IR_OP_SOFTMAX: emit_softmax(&o); break;
    case IR_OP_LAYERNORM:
    case IR_OP_RMSNORM: emit_norm(&o); break;
    case IR_OP_EMBEDDING: emit_embedding(&o); break;
    case IR_OP_RESHAPE: cg_memcpy(c, out, operands[0], cg_i64(c, ir_node_count(o.n) * 4)); break;
    case IR_OP_TRANSPOSE: emit_transpose(&o); break;
    case IR_OP_SLICE: emit_slice(&o); break;
    case IR_OP_CONCAT: emit_concat(&o); break;
    case IR_OP_MATMUL: emit_matmul(&o); break;
    case IR_OP_ATTENTION: emit_attention(&o); break;
    case IR_OP_ROPE: emit_rope(&o); break;
    case IR_OP_POSITIONS: emit_positions(&o); break;
    default:
        QMC_ASSERT(ir_is_cnn_op(o.n->op));
        cg_emit_cnn_op(c, node, out, operands, scratch);
        break;
    }
}

bool cg_takes_operand(const cg *c, const ir_node *node, int j)
{
    const ir_node *in = &c->g->nodes[node->inputs[j]];
    if (in->op == IR_OP_CONST) return false;
    if ((node->op == IR_OP_CONV || node->op == IR_OP_CONV_TRANSPOSE) && j == 1)
        return false; /* packed: cg_conv_weight_args */
    if (node->op != IR_OP_LINEAR) return true;
    if (j == 1) return in->op != IR_OP_WEIGHT; /* packed: cg_linear_weight_args */
    return true;
}

bool cg_takes_scratch(const cg *c, int32_t node) { return c->plan->buf[node].scratch_bytes > 0; }

bool cg_takes_position(const ir_node *node)
{
    return node->op == IR_OP_ROPE || node->op == IR_OP_POSITIONS ||
           (node->op == IR_OP_ATTENTION && node->attr.cached);
}
