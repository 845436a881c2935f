/* emit_ops.c: every op but linear, as loops over known shapes.
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
} op_ctx;

static LLVMValueRef add(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(c->b, a, b, ""); }
static LLVMValueRef mul(cg *c, LLVMValueRef a, int64_t k) { return LLVMBuildMul(c->b, a, cg_i64(c, k), ""); }

static LLVMValueRef fptr(cg *c, LLVMValueRef base, LLVMValueRef idx) { return cg_gep(c, c->t_f32, base, idx); }
static LLVMValueRef fload(cg *c, LLVMValueRef base, LLVMValueRef idx) { return cg_load(c, c->t_f32, fptr(c, base, idx), 4); }
static void fstore(cg *c, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx) { cg_store(c, v, fptr(c, base, idx), 4); }

static void copy_bytes(cg *c, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef bytes)
{
    LLVMTypeRef tys[3] = {c->t_ptr, c->t_ptr, c->t_i64};
    LLVMValueRef args[4] = {dst, src, bytes, LLVMConstInt(c->t_i1, 0, 0)};
    cg_intrinsic(c, "llvm.memcpy", tys, 3, args, 4);
}

static void split_axis(const ir_node *x, int axis, int64_t *outer, int64_t *dim, int64_t *inner)
{
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= x->shape[d];
    for (int d = axis + 1; d < x->rank; d++) *inner *= x->shape[d];
    *dim = x->shape[axis];
}

/* ---- elementwise -------------------------------------------------------- */

/* An operand of an elementwise op: its value at the current position. */
typedef struct operand {
    LLVMValueRef base;   /* NULL for a constant */
    float value;         /* the constant */
    int64_t strides[IR_MAX_RANK];
} operand;

static void operand_init(op_ctx *o, int i, operand *op)
{
    const ir_node *x = &o->c->g->nodes[o->n->inputs[i]];
    op->base = o->in[i];
    op->value = x->attr.value;
    int rank = o->n->rank;
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        int xd = d - (rank - x->rank);
        op->strides[d] = xd < 0 || x->shape[xd] == 1 ? 0 : s;
        if (xd >= 0) s *= x->shape[xd];
    }
}

static LLVMValueRef operand_load(cg *c, const operand *op, LLVMValueRef *ivs, int rank)
{
    if (!op->base) return cg_f32(c, op->value);
    LLVMValueRef idx = cg_i64(c, 0);
    for (int d = 0; d < rank; d++)
        if (op->strides[d]) idx = add(c, idx, mul(c, ivs[d], op->strides[d]));
    return fload(c, op->base, idx);
}

static LLVMValueRef binary(cg *c, ir_op op, LLVMValueRef a, LLVMValueRef b)
{
    switch (op) {
    case IR_OP_ADD: return LLVMBuildFAdd(c->b, a, b, "");
    case IR_OP_SUB: return LLVMBuildFSub(c->b, a, b, "");
    case IR_OP_MUL: return LLVMBuildFMul(c->b, a, b, "");
    default: return LLVMBuildFDiv(c->b, a, b, "");
    }
}

static void emit_elementwise(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *n = o->n;
    operand a, b;
    operand_init(o, 0, &a);
    operand_init(o, 1, &b);
    /* one flat loop when both operands are whole or constant */
    int64_t count = ir_node_count(n);
    bool flat_a = !a.base || ir_node_count(&c->g->nodes[n->inputs[0]]) == count;
    bool flat_b = !b.base || ir_node_count(&c->g->nodes[n->inputs[1]]) == count;
    if (flat_a && flat_b) {
        cg_loop l = cg_for(c, 0, count, 1, "i");
        LLVMValueRef va = a.base ? fload(c, a.base, l.iv) : cg_f32(c, a.value);
        LLVMValueRef vb = b.base ? fload(c, b.base, l.iv) : cg_f32(c, b.value);
        fstore(c, binary(c, n->op, va, vb), o->out, l.iv);
        cg_loop_end(c, &l);
        return;
    }
    LLVMValueRef ivs[IR_MAX_RANK];
    cg_loop loops[IR_MAX_RANK];
    for (int d = 0; d < n->rank; d++) {
        loops[d] = cg_for(c, 0, n->shape[d], 1, "d");
        ivs[d] = loops[d].iv;
    }
    LLVMValueRef idx = cg_i64(c, 0);
    int64_t s = 1;
    for (int d = n->rank - 1; d >= 0; d--) idx = add(c, idx, mul(c, ivs[d], s)), s *= n->shape[d];
    LLVMValueRef v = binary(c, n->op, operand_load(c, &a, ivs, n->rank), operand_load(c, &b, ivs, n->rank));
    fstore(c, v, o->out, idx);
    for (int d = n->rank - 1; d >= 0; d--) cg_loop_end(c, &loops[d]);
}

static void emit_unary(op_ctx *o)
{
    cg *c = o->c;
    cg_loop l = cg_for(c, 0, ir_node_count(o->n), 1, "i");
    LLVMValueRef x = fload(c, o->in[0], l.iv), y;
    switch (o->n->op) {
    case IR_OP_RELU:
        y = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, x, cg_f32(c, 0), ""), x, cg_f32(c, 0), "");
        break;
    case IR_OP_GELU: {
        LLVMValueRef e = cg_call_libm(c, "erff", LLVMBuildFMul(c->b, x, cg_f32(c, 0.70710678118654752), ""));
        y = LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, cg_f32(c, 0.5), x, ""), LLVMBuildFAdd(c->b, cg_f32(c, 1), e, ""), "");
        break;
    }
    case IR_OP_SILU: {
        LLVMValueRef e = cg_call_libm(c, "expf", LLVMBuildFNeg(c->b, x, ""));
        y = LLVMBuildFDiv(c->b, x, LLVMBuildFAdd(c->b, cg_f32(c, 1), e, ""), "");
        break;
    }
    default: y = cg_call_libm(c, "tanhf", x); break;
    }
    fstore(c, y, o->out, l.iv);
    cg_loop_end(c, &l);
}

/* ---- reductions over rows ------------------------------------------------- */

/* sum over i in [0, len) of f(i), with a vectorisable reduction. */
typedef LLVMValueRef (*term_fn)(cg *c, void *ctx, LLVMValueRef i);

static LLVMValueRef reduce_sum(cg *c, LLVMValueRef len, term_fn f, void *ctx)
{
    LLVMValueRef acc = cg_alloca(c, c->t_f32, "sum");
    cg_store(c, cg_f32(c, 0), acc, 4);
    cg_loop l = cg_loop_begin(c, cg_i64(c, 0), len, 1, "r");
    cg_store(c, cg_fast(LLVMBuildFAdd(c->b, cg_load(c, c->t_f32, acc, 4), f(c, ctx, l.iv), "")), acc, 4);
    cg_loop_end(c, &l);
    return cg_load(c, c->t_f32, acc, 4);
}

/* softmax of len values at base[i * stride] in place into out (same layout) */
typedef struct strided {
    LLVMValueRef base;
    int64_t stride;
    LLVMValueRef shift; /* subtracted before exp */
} strided;

static LLVMValueRef exp_term(cg *c, void *ctx, LLVMValueRef i)
{
    strided *s = ctx;
    LLVMValueRef x = fload(c, s->base, mul(c, i, s->stride));
    return x; /* replaced by the caller's exp loop */
}

static void softmax_row(cg *c, LLVMValueRef in, LLVMValueRef out, LLVMValueRef len, int64_t stride)
{
    LLVMValueRef mx = cg_alloca(c, c->t_f32, "max");
    cg_store(c, cg_f32(c, -INFINITY), mx, 4);
    cg_loop l = cg_loop_begin(c, cg_i64(c, 0), len, 1, "r");
    LLVMValueRef x = fload(c, in, mul(c, l.iv, stride));
    LLVMValueRef m = cg_load(c, c->t_f32, mx, 4);
    LLVMTypeRef t = c->t_f32;
    LLVMValueRef args[2] = {m, x};
    cg_store(c, cg_fast(cg_intrinsic(c, "llvm.maxnum", &t, 1, args, 2)), mx, 4);
    cg_loop_end(c, &l);
    LLVMValueRef m_final = cg_load(c, c->t_f32, mx, 4);
    LLVMValueRef sum = cg_alloca(c, c->t_f32, "sum");
    cg_store(c, cg_f32(c, 0), sum, 4);
    cg_loop e = cg_loop_begin(c, cg_i64(c, 0), len, 1, "e");
    LLVMValueRef at = mul(c, e.iv, stride);
    LLVMValueRef ex = cg_call_libm(c, "expf", LLVMBuildFSub(c->b, fload(c, in, at), m_final, ""));
    fstore(c, ex, out, at);
    cg_store(c, cg_fast(LLVMBuildFAdd(c->b, cg_load(c, c->t_f32, sum, 4), ex, "")), sum, 4);
    cg_loop_end(c, &e);
    LLVMValueRef inv = LLVMBuildFDiv(c->b, cg_f32(c, 1), cg_load(c, c->t_f32, sum, 4), "");
    cg_loop s = cg_loop_begin(c, cg_i64(c, 0), len, 1, "s");
    LLVMValueRef at2 = mul(c, s.iv, stride);
    fstore(c, LLVMBuildFMul(c->b, fload(c, out, at2), inv, ""), out, at2);
    cg_loop_end(c, &s);
}

static void emit_softmax(op_ctx *o)
{
    cg *c = o->c;
    int64_t outer, dim, inner;
    split_axis(o->n, o->n->attr.axis, &outer, &dim, &inner);
    cg_loop lo = cg_for(c, 0, outer, 1, "o");
    cg_loop li = cg_for(c, 0, inner, 1, "in");
    LLVMValueRef at = add(c, mul(c, lo.iv, dim * inner), li.iv);
    softmax_row(c, fptr(c, o->in[0], at), fptr(c, o->out, at), cg_i64(c, dim), inner);
    cg_loop_end(c, &li);
    cg_loop_end(c, &lo);
}

typedef struct norm_ctx {
    LLVMValueRef row, mean;
} norm_ctx;

static LLVMValueRef term_x(cg *c, void *ctx, LLVMValueRef i) { return fload(c, ((norm_ctx *)ctx)->row, i); }

static LLVMValueRef term_sq_dev(cg *c, void *ctx, LLVMValueRef i)
{
    norm_ctx *nc = ctx;
    LLVMValueRef d = fload(c, nc->row, i);
    if (nc->mean) d = LLVMBuildFSub(c->b, d, nc->mean, "");
    return LLVMBuildFMul(c->b, d, d, "");
}

static void emit_norm(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *n = o->n;
    int64_t d = n->shape[n->rank - 1], rows = ir_node_count(n) / d;
    bool ln = n->op == IR_OP_LAYERNORM;
    cg_loop lr = cg_for(c, 0, rows, 1, "row");
    norm_ctx nc = {fptr(c, o->in[0], mul(c, lr.iv, d)), NULL};
    LLVMValueRef inv_d = cg_f32(c, 1.0 / (double)d);
    if (ln) nc.mean = LLVMBuildFMul(c->b, reduce_sum(c, cg_i64(c, d), term_x, &nc), inv_d, "mean");
    LLVMValueRef var = LLVMBuildFMul(c->b, reduce_sum(c, cg_i64(c, d), term_sq_dev, &nc), inv_d, "var");
    LLVMTypeRef t = c->t_f32;
    LLVMValueRef arg = LLVMBuildFAdd(c->b, var, cg_f32(c, n->attr.eps), "");
    LLVMValueRef inv = LLVMBuildFDiv(c->b, cg_f32(c, 1), cg_intrinsic(c, "llvm.sqrt", &t, 1, &arg, 1), "inv");
    LLVMValueRef yrow = fptr(c, o->out, mul(c, lr.iv, d));
    cg_loop li = cg_for(c, 0, d, 1, "i");
    LLVMValueRef x = fload(c, nc.row, li.iv);
    if (ln) x = LLVMBuildFSub(c->b, x, nc.mean, "");
    LLVMValueRef y = LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, x, inv, ""), fload(c, o->in[1], li.iv), "");
    if (ln) y = LLVMBuildFAdd(c->b, y, fload(c, o->in[2], li.iv), "");
    fstore(c, y, yrow, li.iv);
    cg_loop_end(c, &li);
    cg_loop_end(c, &lr);
}

/* ---- data movement -------------------------------------------------------- */

static void emit_embedding(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *t = &c->g->nodes[o->n->inputs[0]], *ix = &c->g->nodes[o->n->inputs[1]];
    int64_t rows = t->shape[0], d = t->shape[1];
    cg_loop l = cg_for(c, 0, ir_node_count(ix), 1, "i");
    LLVMValueRef idx = LLVMBuildSExt(c->b, cg_load(c, c->t_i32, cg_gep(c, c->t_i32, o->in[1], l.iv), 4), c->t_i64, "");
    LLVMValueRef bad = LLVMBuildICmp(c->b, LLVMIntUGE, idx, cg_i64(c, rows), "");
    LLVMBasicBlockRef fail = cg_block(c, "bad_index"), ok = cg_block(c, "copy");
    LLVMBuildCondBr(c->b, bad, fail, ok);
    LLVMPositionBuilderAtEnd(c->b, fail);
    LLVMBuildRet(c->b, cg_i32(c, QMC_ERR_INVALID_ARGUMENT));
    LLVMPositionBuilderAtEnd(c->b, ok);
    copy_bytes(c, fptr(c, o->out, mul(c, l.iv, d)), fptr(c, o->in[0], mul(c, idx, d)), cg_i64(c, d * 4));
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
        src = add(c, src, mul(c, loops[d].iv, xs[n->attr.perm[d]]));
        dst = add(c, mul(c, dst, n->shape[d]), loops[d].iv);
    }
    fstore(c, fload(c, o->in[0], src), o->out, dst);
    for (int d = n->rank - 1; d >= 0; d--) cg_loop_end(c, &loops[d]);
}

static void emit_slice(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *x = &c->g->nodes[o->n->inputs[0]];
    int64_t outer, dim, inner, len = o->n->attr.end - o->n->attr.start;
    split_axis(x, o->n->attr.axis, &outer, &dim, &inner);
    cg_loop l = cg_for(c, 0, outer, 1, "o");
    LLVMValueRef src = add(c, mul(c, l.iv, dim * inner), cg_i64(c, o->n->attr.start * inner));
    copy_bytes(c, fptr(c, o->out, mul(c, l.iv, len * inner)), fptr(c, o->in[0], src), cg_i64(c, len * inner * 4));
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
        LLVMValueRef dst = add(c, mul(c, l.iv, dim * inner), cg_i64(c, at * inner));
        copy_bytes(c, fptr(c, o->out, dst), fptr(c, o->in[i], mul(c, l.iv, len * inner)), cg_i64(c, len * inner * 4));
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
        oa = add(c, oa, mul(c, i, sa[d]));
        ob = add(c, ob, mul(c, i, sb[d]));
    }
    LLVMValueRef A = fptr(c, o->in[0], oa), B = fptr(c, o->in[1], ob), Y = fptr(c, o->out, mul(c, lb.iv, m * nn));
    cg_loop lm = cg_for(c, 0, m, 1, "m");
    LLVMValueRef yrow = fptr(c, Y, mul(c, lm.iv, nn));
    cg_loop lz = cg_for(c, 0, nn, 1, "z");
    fstore(c, cg_f32(c, 0), yrow, lz.iv);
    cg_loop_end(c, &lz);
    cg_loop lk = cg_for(c, 0, k, 1, "k");
    LLVMValueRef av = fload(c, A, add(c, mul(c, lm.iv, k), lk.iv));
    LLVMValueRef brow = fptr(c, B, mul(c, lk.iv, nn));
    cg_loop ln = cg_for(c, 0, nn, 1, "n");
    fstore(c, cg_fmuladd(c, av, fload(c, brow, ln.iv), fload(c, yrow, ln.iv)), yrow, ln.iv);
    cg_loop_end(c, &ln);
    cg_loop_end(c, &lk);
    cg_loop_end(c, &lm);
    cg_loop_end(c, &lb);
}

/* ---- attention -------------------------------------------------------------- */

typedef struct dot_ctx {
    LLVMValueRef a, b;
} dot_ctx;

static LLVMValueRef term_dot(cg *c, void *ctx, LLVMValueRef i)
{
    dot_ctx *d = ctx;
    return LLVMBuildFMul(c->b, fload(c, d->a, i), fload(c, d->b, i), "");
}

static void emit_attention(op_ctx *o)
{
    cg *c = o->c;
    const ir_node *n = o->n, *q = &c->g->nodes[n->inputs[0]], *k = &c->g->nodes[n->inputs[1]],
                  *v = &c->g->nodes[n->inputs[2]];
    int64_t t = q->shape[0], s = k->shape[0], d = q->shape[1], dv = v->shape[1];
    int h = n->attr.heads;
    int64_t hd = d / h, hv = dv / h;
    cg_loop lh = cg_for(c, 0, h, 1, "head");
    cg_loop li = cg_for(c, 0, t, 1, "query");
    /* keys visible to query i: all, or j <= i + (s - t) when causal */
    LLVMValueRef visible = n->attr.causal ? add(c, li.iv, cg_i64(c, s - t + 1)) : cg_i64(c, s);
    LLVMValueRef scores = fptr(c, o->scratch, mul(c, li.iv, s));
    LLVMValueRef qrow = fptr(c, o->in[0], add(c, mul(c, li.iv, d), mul(c, lh.iv, hd)));
    cg_loop lj = cg_loop_begin(c, cg_i64(c, 0), visible, 1, "key");
    dot_ctx dc = {qrow, fptr(c, o->in[1], add(c, mul(c, lj.iv, d), mul(c, lh.iv, hd)))};
    LLVMValueRef dot = reduce_sum(c, cg_i64(c, hd), term_dot, &dc);
    fstore(c, LLVMBuildFMul(c->b, dot, cg_f32(c, n->attr.scale), ""), scores, lj.iv);
    cg_loop_end(c, &lj);
    softmax_row(c, scores, scores, visible, 1);
    LLVMValueRef yrow = fptr(c, o->out, add(c, mul(c, li.iv, dv), mul(c, lh.iv, hv)));
    cg_loop lz = cg_for(c, 0, hv, 1, "z");
    fstore(c, cg_f32(c, 0), yrow, lz.iv);
    cg_loop_end(c, &lz);
    cg_loop lp = cg_loop_begin(c, cg_i64(c, 0), visible, 1, "p");
    LLVMValueRef pj = fload(c, scores, lp.iv);
    LLVMValueRef vrow = fptr(c, o->in[2], add(c, mul(c, lp.iv, dv), mul(c, lh.iv, hv)));
    cg_loop lc = cg_for(c, 0, hv, 1, "c");
    fstore(c, cg_fmuladd(c, pj, fload(c, vrow, lc.iv), fload(c, yrow, lc.iv)), yrow, lc.iv);
    cg_loop_end(c, &lc);
    cg_loop_end(c, &lp);
    cg_loop_end(c, &li);
    cg_loop_end(c, &lh);
}

void cg_emit_op(cg *c, int32_t node, LLVMValueRef out, LLVMValueRef *operands, LLVMValueRef scratch)
{
    op_ctx o = {c, &c->g->nodes[node], out, operands, scratch};
    switch (o.n->op) {
    case IR_OP_ADD:
    case IR_OP_SUB:
    case IR_OP_MUL:
    case IR_OP_DIV: emit_elementwise(&o); break;
    case IR_OP_RELU:
    case IR_OP_GELU:
    case IR_OP_SILU:
    case IR_OP_TANH: emit_unary(&o); break;
    case IR_OP_SOFTMAX: emit_softmax(&o); break;
    case IR_OP_LAYERNORM:
    case IR_OP_RMSNORM: emit_norm(&o); break;
    case IR_OP_EMBEDDING: emit_embedding(&o); break;
    case IR_OP_RESHAPE: copy_bytes(c, out, operands[0], cg_i64(c, ir_node_count(o.n) * 4)); break;
    case IR_OP_TRANSPOSE: emit_transpose(&o); break;
    case IR_OP_SLICE: emit_slice(&o); break;
    case IR_OP_CONCAT: emit_concat(&o); break;
    case IR_OP_MATMUL: emit_matmul(&o); break;
    case IR_OP_ATTENTION: emit_attention(&o); break;
    default: QMC_ASSERT(!"op has no emitter");
    }
    (void)exp_term;
}
