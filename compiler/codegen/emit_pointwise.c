/* emit_pointwise.c: the elementwise ops: add, sub, mul, div and the binary
 * functions (pow, maximum, minimum, comparisons) with numpy broadcasting,
 * where, expand, and the unary ones (relu, gelu, silu, tanh and the unary
 * functions).
 *
 * Operands that are whole (or a constant, folded in) run as one flat loop,
 * split over the thread pool when large; broadcast operands of add, sub,
 * mul and div run in rows (the dimensions merged where the operands allow,
 * each row a vector loop; rows_plan), others as nested loops over the
 * result's dimensions. Unary functions run as explicit
 * vector loops over emit_math.c's functions. Each computes what the
 * interpreter's definition (interp.c, ref_math.c) does. */
#include <math.h>

#include "codegen.h"

/* ---- broadcasting ops ------------------------------------------------------ */

enum {
    ELEMENTWISE_CHUNK = 4096,  /* elements per parallel task */
    PARALLEL_ELEMENTS = 16384, /* elementwise ops take the thread pool from this size */
    MAX_OPERANDS = 3,
};

/* An operand: its value at the current position. */
typedef struct operand {
    LLVMValueRef base; /* NULL for a constant */
    float value;       /* the constant */
    int64_t strides[IR_MAX_RANK];
} operand;

static void operand_init(cg *c, const ir_node *n, int i, LLVMValueRef base, operand *op)
{
    const ir_node *x = &c->g->nodes[n->inputs[i]];
    op->base = x->op == IR_OP_CONST ? NULL : base;
    op->value = x->attr.value;
    int64_t s = 1;
    for (int d = n->rank - 1; d >= 0; d--) {
        int xd = d - (n->rank - x->rank);
        op->strides[d] = xd < 0 || x->shape[xd] == 1 ? 0 : s;
        if (xd >= 0) s *= x->shape[xd];
    }
}

static LLVMValueRef operand_load(cg *c, const operand *op, LLVMValueRef *ivs, int rank)
{
    if (!op->base) return cg_f32(c, op->value);
    LLVMValueRef idx = cg_i64(c, 0);
    for (int d = 0; d < rank; d++)
        if (op->strides[d]) idx = cg_add(c, idx, cg_mul_k(c, ivs[d], op->strides[d]));
    return cg_fload(c, op->base, idx);
}

static LLVMValueRef binary_fn(cg *c, ir_binary fn, LLVMValueRef a, LLVMValueRef b)
{
    static const LLVMRealPredicate cmp[IR_BIN_COUNT] = {[IR_BIN_EQUAL] = LLVMRealOEQ,
                                                        [IR_BIN_LESS] = LLVMRealOLT,
                                                        [IR_BIN_LESS_EQUAL] = LLVMRealOLE,
                                                        [IR_BIN_GREATER] = LLVMRealOGT,
                                                        [IR_BIN_GREATER_EQUAL] = LLVMRealOGE};
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef args[2] = {a, b};
    switch (fn) {
    case IR_BIN_POW: return cg_math_pow(c, a, b);
    case IR_BIN_MAX: return cg_intrinsic(c, "llvm.maximum", &t, 1, args, 2);
    case IR_BIN_MIN: return cg_intrinsic(c, "llvm.minimum", &t, 1, args, 2);
    default:
        return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, cmp[fn], a, b, ""), cg_f32(c, 1),
                               cg_f32(c, 0), "");
    }
}

/* The result at one position from the operands' values there. */
static LLVMValueRef combine(cg *c, const ir_node *n, LLVMValueRef *v)
{
    switch (n->op) {
    case IR_OP_ADD: return LLVMBuildFAdd(c->b, v[0], v[1], "");
    case IR_OP_SUB: return LLVMBuildFSub(c->b, v[0], v[1], "");
    case IR_OP_MUL: return LLVMBuildFMul(c->b, v[0], v[1], "");
    case IR_OP_DIV: return LLVMBuildFDiv(c->b, v[0], v[1], "");
    case IR_OP_BINARY: return binary_fn(c, (ir_binary)n->attr.fn, v[0], v[1]);
    case IR_OP_WHERE:
        return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealUNE, v[0], cg_f32(c, 0), ""), v[1],
                               v[2], "");
    default: return v[0]; /* expand */
    }
}

/* A flat loop over chunks [begin, end) of ELEMENTWISE_CHUNK (vals: the
 * operands (a constant's entry unused), then out). */
typedef struct flat_job {
    const ir_node *n;
    int k;
    int64_t count;
    operand ops[MAX_OPERANDS];
} flat_job;

static void flat_chunks(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end, void *user)
{
    const flat_job *f = user;
    LLVMValueRef hi = cg_mul_k(c, end, ELEMENTWISE_CHUNK);
    hi = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, hi, cg_i64(c, f->count), ""), hi,
                         cg_i64(c, f->count), "");
    cg_loop l = cg_loop_begin(c, cg_mul_k(c, begin, ELEMENTWISE_CHUNK), hi, 1, "i");
    LLVMValueRef v[MAX_OPERANDS];
    for (int j = 0; j < f->k; j++)
        v[j] = f->ops[j].base ? cg_fload(c, vals[j], l.iv) : cg_f32(c, f->ops[j].value);
    cg_fstore(c, combine(c, f->n, v), vals[f->k], l.iv);
    cg_loop_end(c, &l);
}

/* Broadcast operands in rows: the result's dimensions merged where every
 * operand walks them as one (contiguous, or not at all), the last merged
 * dimension a vector loop in which each operand is a vector (stride 1) or
 * one value (stride 0): a channel scale [1, 1, 1, C] times [N, H, W, C] is
 * N·H·W rows of C, not a scalar loop nest. */
typedef struct rows_job {
    const ir_node *n;
    int k, dims;               /* operands; merged dimensions (the last: a row) */
    int64_t size[IR_MAX_RANK]; /* of each merged dimension */
    int64_t stride[MAX_OPERANDS][IR_MAX_RANK];
    operand ops[MAX_OPERANDS];
    LLVMValueRef at[MAX_OPERANDS], base[MAX_OPERANDS + 1]; /* the current row's */
} rows_job;

static void row_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    rows_job *r = ctx;
    LLVMValueRef v[MAX_OPERANDS];
    for (int j = 0; j < r->k; j++) {
        if (!r->ops[j].base)
            v[j] = cg_splat(c, cg_f32(c, r->ops[j].value), lanes);
        else if (r->stride[j][r->dims - 1])
            v[j] = cg_vload(c, r->base[j], cg_add(c, r->at[j], i), mask, lanes);
        else
            v[j] = cg_splat(c, cg_fload(c, r->base[j], r->at[j]), lanes);
    }
    cg_vstore(c, combine(c, r->n, v), r->base[r->k], cg_add(c, r->at[r->k], i), mask);
}

/* rows [begin, end) (vals: the operands, then out) */
static void rows_range(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end, void *user)
{
    rows_job *r = user;
    int64_t row = r->size[r->dims - 1];
    cg_loop l = cg_loop_begin(c, begin, end, 1, "row");
    for (int j = 0; j <= r->k; j++) {
        r->base[j] = vals[j];
        r->at[j] = cg_i64(c, 0);
    }
    r->at[r->k] = cg_mul_k(c, l.iv, row);
    LLVMValueRef rest = l.iv; /* the row's index in the outer dimensions, last fastest */
    for (int d = r->dims - 2; d >= 0; d--) {
        LLVMValueRef id = d ? LLVMBuildURem(c->b, rest, cg_i64(c, r->size[d]), "") : rest;
        if (d) rest = LLVMBuildUDiv(c->b, rest, cg_i64(c, r->size[d]), "");
        for (int j = 0; j < r->k; j++)
            if (r->ops[j].base && r->stride[j][d])
                r->at[j] = cg_add(c, r->at[j], cg_mul_k(c, id, r->stride[j][d]));
    }
    cg_vloop(c, cg_i64(c, row), c->lanes, row_body, r);
    cg_loop_end(c, &l);
}

/* Whether n can run in rows (an arithmetic op whose merged last dimension
 * is a row of at least a few values); fills r. */
static bool rows_plan(cg *c, const ir_node *n, const operand *ops, rows_job *r)
{
    if (n->op != IR_OP_ADD && n->op != IR_OP_SUB && n->op != IR_OP_MUL && n->op != IR_OP_DIV)
        return false;
    int k = n->n_inputs;
    *r = (rows_job){.n = n, .k = k};
    for (int d = 0; d < n->rank; d++) {
        bool merge = r->dims > 0;
        for (int j = 0; j < k && merge; j++) {
            int64_t prev = r->stride[j][r->dims - 1], cur = ops[j].base ? ops[j].strides[d] : 0;
            merge = (prev == 0 && cur == 0) || (cur != 0 && prev == cur * n->shape[d]);
        }
        if (merge) {
            r->size[r->dims - 1] *= n->shape[d];
            for (int j = 0; j < k; j++)
                if (ops[j].base) r->stride[j][r->dims - 1] = ops[j].strides[d];
        } else {
            r->size[r->dims] = n->shape[d];
            for (int j = 0; j < k; j++) r->stride[j][r->dims] = ops[j].base ? ops[j].strides[d] : 0;
            r->dims++;
        }
    }
    if (r->dims < 2 || r->size[r->dims - 1] < 8) return false;
    for (int j = 0; j < k; j++) {
        r->ops[j] = ops[j];
        if (r->stride[j][r->dims - 1] > 1) return false;
    }
    (void)c;
    return true;
}

static void emit_broadcast(cg *c, const ir_node *n, LLVMValueRef out, LLVMValueRef *in)
{
    int k = n->n_inputs;
    operand ops[MAX_OPERANDS];
    bool flat = true;
    int64_t count = ir_node_count(n);
    for (int j = 0; j < k; j++) {
        operand_init(c, n, j, in[j], &ops[j]);
        flat &= !ops[j].base || ir_node_count(&c->g->nodes[n->inputs[j]]) == count;
    }
    if (flat) { /* one flat loop when every operand is whole or constant */
        flat_job f = {n, k, count, {{0}}};
        LLVMValueRef vals[MAX_OPERANDS + 1];
        for (int j = 0; j < k; j++) f.ops[j] = ops[j], vals[j] = ops[j].base ? ops[j].base : out;
        vals[k] = out;
        cg_parallel(c, sup_arena_printf(c->arena, "%s.chunks", n->name), vals, k + 1,
                    (count + ELEMENTWISE_CHUNK - 1) / ELEMENTWISE_CHUNK, count >= PARALLEL_ELEMENTS,
                    flat_chunks, &f);
        return;
    }
    rows_job *r = sup_arena_alloc(c->arena, sizeof *r);
    if (rows_plan(c, n, ops, r)) {
        LLVMValueRef vals[MAX_OPERANDS + 1];
        for (int j = 0; j < k; j++) vals[j] = ops[j].base ? ops[j].base : out;
        vals[k] = out;
        int64_t row = r->size[r->dims - 1], rows = count / row;
        cg_parallel(c, sup_arena_printf(c->arena, "%s.rows", n->name), vals, k + 1, rows,
                    count >= PARALLEL_ELEMENTS, rows_range, r);
        return;
    }
    LLVMValueRef ivs[IR_MAX_RANK], v[MAX_OPERANDS];
    cg_loop loops[IR_MAX_RANK];
    for (int d = 0; d < n->rank; d++) {
        loops[d] = cg_for(c, 0, n->shape[d], 1, "d");
        ivs[d] = loops[d].iv;
    }
    LLVMValueRef idx = cg_i64(c, 0);
    int64_t s = 1;
    for (int d = n->rank - 1; d >= 0; d--)
        idx = cg_add(c, idx, cg_mul_k(c, ivs[d], s)), s *= n->shape[d];
    for (int j = 0; j < k; j++) v[j] = operand_load(c, &ops[j], ivs, n->rank);
    cg_fstore(c, combine(c, n, v), out, idx);
    for (int d = n->rank - 1; d >= 0; d--) cg_loop_end(c, &loops[d]);
}

/* ---- unary ops -------------------------------------------------------------- */

static LLVMValueRef splat(cg *c, LLVMValueRef like, double v)
{
    LLVMTypeRef t = LLVMTypeOf(like);
    LLVMValueRef s = cg_f32(c, v);
    return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? cg_splat(c, s, (int)LLVMGetVectorSize(t)) : s;
}

static LLVMValueRef intrinsic1(cg *c, const char *name, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    return cg_intrinsic(c, name, &t, 1, &x, 1);
}

/* y < lo ? lo : y > hi ? hi : y (NaN stays NaN, as the interpreter's) */
static LLVMValueRef clamp(cg *c, LLVMValueRef y, double lo, double hi)
{
    y = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOLT, y, splat(c, y, lo), ""),
                        splat(c, y, lo), y, "");
    return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, y, splat(c, y, hi), ""),
                           splat(c, y, hi), y, "");
}

static LLVMValueRef unary_fn(cg *c, const ir_attrs *a, LLVMValueRef x)
{
    LLVMBuilderRef b = c->b;
    switch ((ir_unary)a->fn) {
    case IR_UN_EXP: return cg_math_exp(c, x);
    case IR_UN_LOG: return cg_math_log(c, x);
    case IR_UN_SQRT: return intrinsic1(c, "llvm.sqrt", x);
    case IR_UN_ERF: return cg_math_erf(c, x);
    case IR_UN_SIGMOID: return cg_math_sigmoid(c, x);
    case IR_UN_ABS: return intrinsic1(c, "llvm.fabs", x);
    case IR_UN_FLOOR: return intrinsic1(c, "llvm.floor", x);
    case IR_UN_CEIL: return intrinsic1(c, "llvm.ceil", x);
    case IR_UN_LEAKY_RELU:
        return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, splat(c, x, 0), ""),
                               LLVMBuildFMul(b, x, splat(c, x, a->alpha), ""), x, "");
    case IR_UN_HARD_SIGMOID:
        return clamp(c,
                     LLVMBuildFAdd(b, LLVMBuildFMul(b, x, splat(c, x, a->alpha), ""),
                                   splat(c, x, a->beta), ""),
                     0, 1);
    case IR_UN_HARD_SWISH: {
        LLVMValueRef h =
            LLVMBuildFAdd(b, LLVMBuildFMul(b, x, splat(c, x, 1.0f / 6), ""), splat(c, x, 0.5), "");
        return LLVMBuildFMul(b, x, clamp(c, h, 0, 1), "");
    }
    case IR_UN_CLIP: return clamp(c, x, a->alpha, a->beta);
    case IR_UN_COUNT: break;
    }
    QMC_ASSERT(!"unknown unary function");
    return x;
}

typedef struct unary_ctx {
    const ir_node *n;
    LLVMValueRef in, out;
} unary_ctx;

static void unary_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    unary_ctx *u = ctx;
    LLVMValueRef x = cg_vload(c, u->in, i, mask, lanes), y;
    switch (u->n->op) {
    case IR_OP_RELU: {
        LLVMValueRef zero = LLVMConstNull(LLVMTypeOf(x));
        y = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, x, zero, ""), x, zero, "");
        break;
    }
    case IR_OP_GELU: y = cg_math_gelu(c, x); break;
    case IR_OP_SILU: y = cg_math_silu(c, x); break;
    case IR_OP_TANH: y = cg_math_tanh(c, x); break;
    default: y = unary_fn(c, &u->n->attr, x); break;
    }
    cg_vstore(c, y, u->out, i, mask);
}

enum { UNARY_CHUNK = 4096 }; /* elements per parallel task */

static void unary_chunks(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end,
                         void *user)
{
    const ir_node *n = user;
    int64_t count = ir_node_count(n);
    cg_loop l = cg_loop_begin(c, begin, end, 1, "chunk");
    LLVMValueRef at = cg_mul_k(c, l.iv, UNARY_CHUNK);
    LLVMValueRef rest = LLVMBuildSub(c->b, cg_i64(c, count), at, "");
    LLVMValueRef len =
        LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, rest, cg_i64(c, UNARY_CHUNK), ""),
                        rest, cg_i64(c, UNARY_CHUNK), "");
    unary_ctx u = {n, cg_fptr(c, vals[0], at), cg_fptr(c, vals[1], at)};
    cg_vloop(c, len, c->lanes, unary_body, &u);
    cg_loop_end(c, &l);
}

/* Functions that are a few instructions, not worth the thread pool. */
static bool cheap(const ir_node *n)
{
    if (n->op == IR_OP_RELU) return true;
    if (n->op != IR_OP_UNARY) return false;
    ir_unary fn = (ir_unary)n->attr.fn;
    return fn != IR_UN_EXP && fn != IR_UN_LOG && fn != IR_UN_ERF && fn != IR_UN_SIGMOID;
}

static void emit_unary(cg *c, const ir_node *n, LLVMValueRef out, LLVMValueRef in)
{
    int64_t count = ir_node_count(n);
    if (cheap(n) || count < 4 * UNARY_CHUNK) {
        unary_ctx u = {n, in, out};
        cg_vloop(c, cg_i64(c, count), c->lanes, unary_body, &u);
        return;
    }
    /* transcendental: worth spreading over the thread pool */
    LLVMValueRef vals[2] = {in, out};
    cg_parallel(c, sup_arena_printf(c->arena, "%s.chunks", n->name), vals, 2,
                (count + UNARY_CHUNK - 1) / UNARY_CHUNK, true, unary_chunks, (void *)n);
}

void cg_emit_pointwise(cg *c, const ir_node *n, LLVMValueRef out, LLVMValueRef *in)
{
    switch (n->op) {
    case IR_OP_RELU:
    case IR_OP_GELU:
    case IR_OP_SILU:
    case IR_OP_TANH:
    case IR_OP_UNARY: emit_unary(c, n, out, in[0]); break;
    default: emit_broadcast(c, n, out, in); break;
    }
}
