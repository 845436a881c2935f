/* emit_linear.c: linear layers, y = x·Wᵀ + b, with the weight dequantized
 * in registers inside the dot-product loop.
 *
 * Layout (cg_pack_weight): output rows are grouped in panels of `lanes`
 * rows; for each panel and each 4-byte word along the input dimension, the
 * words of the panel's rows are adjacent, so one vector load brings one
 * word of every row: 4 int8 or FP8 codes, 8 int4 codes, or one f32 weight.
 * Scales (and zero points) per group are vectors in the same panel order.
 * Since shapes are known, every loop bound is a constant.
 *
 * Kernel: for each panel (in parallel), for each block of MR rows of x, one
 * accumulator vector per row holds the panel's outputs; for each column k
 * the dequantized weight vector is multiplied by x[m, k] broadcast. Per
 * group: acc += scale * sum(x * q) (asymmetric: scale * (sum(x*q) - z*sum x)).
 * The weights are never expanded to f32 in memory. */
#include <math.h>
#include <string.h>

#include "codegen.h"

enum { MR = 4 };

/* ---- packing ------------------------------------------------------------ */

static void pack_codes(const cg *c, cg_packed *p, const ir_qweight *q, const float *w32, uint8_t *out)
{
    int L = c->lanes;
    for (int64_t pn = 0; pn < p->panels; pn++)
        for (int64_t wd = 0; wd < p->words; wd++)
            for (int j = 0; j < L; j++) {
                int64_t row = pn * L + j;
                uint8_t *word = out + ((pn * p->words + wd) * L + j) * 4;
                if (row >= p->n) continue;
                if (!q) {
                    if (wd < p->k) memcpy(word, &w32[row * p->k + wd], 4);
                    continue;
                }
                for (int i = 0; i < p->per_word; i++) {
                    int64_t col = wd * p->per_word + i;
                    uint8_t code = col < q->kp ? q->codes[row * q->kp + col] : 0;
                    if (p->per_word == 4) word[i] = code;
                    else word[i / 2] |= (uint8_t)((code & 0xF) << (4 * (i % 2)));
                }
            }
}

static void pack_scales(const cg *c, cg_packed *p, const ir_qweight *q, void *scales, uint8_t *zeros)
{
    int L = c->lanes;
    for (int64_t pn = 0; pn < p->panels; pn++)
        for (int64_t gi = 0; gi < p->n_groups; gi++)
            for (int j = 0; j < L; j++) {
                int64_t row = pn * L + j, at = (pn * p->n_groups + gi) * L + j;
                float s = row < p->n ? q->scales[row * q->n_groups + gi] * p->scale_factor : 0.0f;
                if (p->scales_f16) ((uint16_t *)scales)[at] = q_f16_from_f32(s);
                else ((float *)scales)[at] = s;
                if (zeros) zeros[at] = row < p->n ? (uint8_t)q->zero_points[row * q->n_groups + gi] : 0;
            }
}

/* a8 layouts: weight bytes are unsigned (code + 128 for int8 on VNNI,
 * code + 8 for symmetric int4, the code itself with zero points) so one
 * integer dot product instruction multiplies them with signed activation
 * bytes; int4 word bytes hold columns b (low nibble) and b + 4 (high), so
 * that masking and shifting give 4 consecutive columns each. */
static void pack_codes_a8(const cg *c, cg_packed *p, const ir_qweight *q, uint8_t *out)
{
    int L = c->lanes;
    bool int4 = p->per_word == 8;
    for (int64_t pn = 0; pn < p->panels; pn++)
        for (int64_t wd = 0; wd < p->words; wd++)
            for (int j = 0; j < L; j++) {
                int64_t row = pn * L + j;
                uint8_t *word = out + ((pn * p->words + wd) * L + j) * 4;
                if (row >= p->n) continue;
                for (int i = 0; i < p->per_word; i++) {
                    int64_t col = wd * p->per_word + i;
                    int32_t code = col < q->kp ? (int32_t)(int8_t)q->codes[row * q->kp + col] : 0;
                    if (q->f.format == QFMT_UINT4) code = col < q->kp ? q->codes[row * q->kp + col] : 0;
                    uint8_t u = (uint8_t)(code + p->code_offset);
                    if (!int4) word[i] = u;
                    else word[i % 4] |= (uint8_t)((u & 0xF) << (4 * (i / 4)));
                }
            }
}

static int a8_kind(const cg *c)
{
    if (c->target->arch == CG_ARCH_AARCH64) return cg_target_has(c->target, "dotprod") ? CG_A8_SDOT : CG_A8_EMULATE;
    return c->lanes == 16 && cg_target_has(c->target, "avx512vnni") ? CG_A8_VNNI : CG_A8_EMULATE;
}

void cg_pack_weight(cg *c, int32_t node, cg_packed *p)
{
    const ir_node *w = &c->g->nodes[node];
    const ir_qweight *q = w->qw;
    fe_arena *a = c->arena;
    int L = c->lanes;
    memset(p, 0, sizeof *p);
    p->f = w->qformat;
    p->n = w->shape[0];
    p->k = w->shape[1];
    p->panels = (p->n + L - 1) / L;
    p->scale_factor = 1.0f;
    p->scales = p->zeros = -1;
    float *w32 = NULL;
    if (!q) {
        p->per_word = 1;
        w32 = fe_arena_alloc(a, sizeof(float) * (size_t)(p->n * p->k));
        fe_tensor_to_f32(w->tensor, w32);
    } else {
        p->per_word = q_format_bits(q->f.format) == 4 ? 8 : 4;
    }
    int64_t kp = q ? q->kp : p->k;
    p->words = (kp + p->per_word - 1) / p->per_word;
    p->n_groups = q ? q->n_groups : 1;
    p->group_words = q ? q->group / p->per_word : p->words;
    if (q && q_format_is_fp8(q->f.format)) {
        p->fp8_via_half = c->target->arch == CG_ARCH_AARCH64 || cg_target_has(c->target, "f16c");
        bool e4m3 = q->f.format == QFMT_FP8_E4M3;
        p->scale_factor = p->fp8_via_half ? (e4m3 ? 256.0f : 1.0f) : (e4m3 ? 0x1p120f : 0x1p112f);
    }
    size_t code_bytes = (size_t)(p->panels * p->words * L * 4);
    uint8_t *codes = fe_arena_alloc(a, code_bytes);
    p->a8 = q && q->f.act8 ? a8_kind(c) : CG_A8_NONE;
    if (p->a8 == CG_A8_VNNI || p->a8 == CG_A8_SDOT) {
        bool int8 = q->f.format == QFMT_INT8;
        p->code_offset = int8 ? (p->a8 == CG_A8_VNNI ? 128 : 0) : q->f.format == QFMT_INT4 ? 8 : 0;
        pack_codes_a8(c, p, q, codes);
    } else {
        pack_codes(c, p, q, w32, codes);
    }
    p->codes = cg_blob_add(c, w->name, codes, code_bytes);
    if (!q) return;
    p->scales_f16 = q->f.group != 0;
    size_t n_scales = (size_t)(p->panels * p->n_groups * L);
    void *scales = fe_arena_alloc(a, n_scales * (p->scales_f16 ? 2 : 4));
    uint8_t *zeros = q->zero_points ? fe_arena_alloc(a, n_scales) : NULL;
    pack_scales(c, p, q, scales, zeros);
    p->scales = cg_blob_add(c, fe_arena_printf(a, "%s.scale", w->name), scales, n_scales * (p->scales_f16 ? 2 : 4));
    if (zeros) p->zeros = cg_blob_add(c, fe_arena_printf(a, "%s.zero", w->name), zeros, n_scales);
}

/* ---- the kernel ----------------------------------------------------------- */

typedef struct linear_kernel {
    cg *c;
    const cg_packed *p;
    int64_t m, k, n; /* x is [m, k], y is [m, n] */
    int64_t kpx;     /* a8: bytes per row of quantized activations */
    LLVMValueRef x, y, codes, scales, zeros, bias;
    LLVMValueRef xscale, xsum; /* a8: per row scale, per row and group sum of codes */
    LLVMValueRef panel; /* i64 */
    LLVMTypeRef vf, vi; /* <L x float>, <L x i32> */
} linear_kernel;

/* Column i of a word vector as floats (codes as integers, before scaling). */
static LLVMValueRef dequant(linear_kernel *lk, LLVMValueRef word, int i)
{
    cg *c = lk->c;
    LLVMBuilderRef b = c->b;
    int L = c->lanes;
    q_format f = lk->p->f.format;
    if (lk->p->per_word == 1) return LLVMBuildBitCast(b, word, lk->vf, "w");
    if (f == QFMT_INT8 || f == QFMT_INT4) {
        int bits = f == QFMT_INT8 ? 8 : 4;
        LLVMValueRef v = LLVMBuildShl(b, word, cg_vsplat_i32(c, 32 - bits * (i + 1), L), "");
        v = LLVMBuildAShr(b, v, cg_vsplat_i32(c, 32 - bits, L), "q");
        return LLVMBuildSIToFP(b, v, lk->vf, "w");
    }
    if (f == QFMT_UINT4) {
        LLVMValueRef v = LLVMBuildLShr(b, word, cg_vsplat_i32(c, 4 * i, L), "");
        v = LLVMBuildAnd(b, v, cg_vsplat_i32(c, 15, L), "q");
        return LLVMBuildUIToFP(b, v, lk->vf, "w");
    }
    /* FP8: move sign, exponent and mantissa into a half (or float) whose
     * value is the code's times a power of two folded into the scale */
    LLVMValueRef byte = LLVMBuildAnd(b, LLVMBuildLShr(b, word, cg_vsplat_i32(c, 8 * i, L), ""), cg_vsplat_i32(c, 0xFF, L), "");
    bool e4m3 = f == QFMT_FP8_E4M3;
    LLVMValueRef sign = LLVMBuildAnd(b, byte, cg_vsplat_i32(c, 0x80, L), "");
    LLVMValueRef rest = LLVMBuildAnd(b, byte, cg_vsplat_i32(c, 0x7F, L), "");
    if (lk->p->fp8_via_half) {
        LLVMValueRef h = e4m3 ? LLVMBuildOr(b, LLVMBuildShl(b, sign, cg_vsplat_i32(c, 8, L), ""),
                                            LLVMBuildShl(b, rest, cg_vsplat_i32(c, 7, L), ""), "")
                              : LLVMBuildShl(b, byte, cg_vsplat_i32(c, 8, L), "");
        h = LLVMBuildTrunc(b, h, cg_vec(c, c->t_i16, L), "");
        h = LLVMBuildBitCast(b, h, cg_vec(c, c->t_f16, L), "");
        return LLVMBuildFPExt(b, h, lk->vf, "w");
    }
    LLVMValueRef bits = LLVMBuildOr(b, LLVMBuildShl(b, sign, cg_vsplat_i32(c, 24, L), ""),
                                    LLVMBuildShl(b, rest, cg_vsplat_i32(c, e4m3 ? 20 : 21, L), ""), "");
    return LLVMBuildBitCast(b, bits, lk->vf, "w");
}

/* x[row, col] broadcast to a vector. */
static LLVMValueRef x_at(linear_kernel *lk, LLVMValueRef row, int64_t col, LLVMValueRef *scalar)
{
    cg *c = lk->c;
    LLVMValueRef idx = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, row, cg_i64(c, lk->k), ""), cg_i64(c, col), "");
    *scalar = cg_load(c, c->t_f32, cg_gep(c, c->t_f32, lk->x, idx), 4);
    return cg_splat(c, *scalar, c->lanes);
}

/* One word column block: load the panel's word `wd` and accumulate its
 * first `cols` columns into gacc (and sum x into xs for zero points). */
static void accumulate_word(linear_kernel *lk, LLVMValueRef wd_index, int64_t col0_const, LLVMValueRef col0,
                            int cols, LLVMValueRef m0, int mr, LLVMValueRef *gacc, LLVMValueRef *xs)
{
    cg *c = lk->c;
    int L = c->lanes;
    LLVMValueRef at = LLVMBuildMul(c->b, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lk->panel, cg_i64(c, lk->p->words), ""),
                                                       wd_index, ""), cg_i64(c, L), "");
    LLVMValueRef word = cg_load(c, lk->vi, cg_gep(c, c->t_i32, lk->codes, at), 4);
    for (int i = 0; i < cols; i++) {
        LLVMValueRef w = dequant(lk, word, i);
        for (int r = 0; r < mr; r++) {
            LLVMValueRef row = LLVMBuildAdd(c->b, m0, cg_i64(c, r), "");
            LLVMValueRef xs_scalar, xv;
            if (col0) {
                LLVMValueRef idx = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, row, cg_i64(c, lk->k), ""),
                                                LLVMBuildAdd(c->b, col0, cg_i64(c, i), ""), "");
                xs_scalar = cg_load(c, c->t_f32, cg_gep(c, c->t_f32, lk->x, idx), 4);
                xv = cg_splat(c, xs_scalar, L);
            } else {
                xv = x_at(lk, row, col0_const + i, &xs_scalar);
            }
            LLVMValueRef acc = cg_load(c, lk->vf, gacc[r], 64);
            cg_store(c, cg_fmuladd(c, xv, w, acc), gacc[r], 64);
            if (xs) cg_store(c, LLVMBuildFAdd(c->b, cg_load(c, c->t_f32, xs[r], 4), xs_scalar, ""), xs[r], 4);
        }
    }
}

/* Scale vector of group gi (an i64 value) for the current panel. */
static LLVMValueRef group_vec(linear_kernel *lk, LLVMValueRef base, LLVMValueRef gi, bool f16, bool u8)
{
    cg *c = lk->c;
    int L = c->lanes;
    LLVMValueRef at = LLVMBuildMul(c->b, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lk->panel, cg_i64(c, lk->p->n_groups), ""),
                                                       gi, ""), cg_i64(c, L), "");
    if (u8) {
        LLVMValueRef z = cg_load(c, cg_vec(c, c->t_i8, L), cg_gep(c, c->t_i8, base, at), 1);
        return LLVMBuildUIToFP(c->b, z, lk->vf, "z");
    }
    if (f16) {
        LLVMValueRef h = cg_load(c, cg_vec(c, c->t_f16, L), cg_gep(c, c->t_f16, base, at), 2);
        return LLVMBuildFPExt(c->b, h, lk->vf, "s");
    }
    return cg_load(c, lk->vf, cg_gep(c, c->t_f32, base, at), 4);
}

/* acc[r] += scale_g * (gacc[r] - z_g * xs[r]) for group gi; f32 weights: acc += gacc. */
static void close_group(linear_kernel *lk, LLVMValueRef gi, int mr, LLVMValueRef *acc, LLVMValueRef *gacc,
                        LLVMValueRef *xs)
{
    cg *c = lk->c;
    const cg_packed *p = lk->p;
    LLVMValueRef s = p->scales >= 0 ? group_vec(lk, lk->scales, gi, p->scales_f16, false) : NULL;
    LLVMValueRef z = p->zeros >= 0 ? group_vec(lk, lk->zeros, gi, false, true) : NULL;
    for (int r = 0; r < mr; r++) {
        LLVMValueRef g = cg_load(c, lk->vf, gacc[r], 64);
        if (z) {
            LLVMValueRef sx = cg_splat(c, cg_load(c, c->t_f32, xs[r], 4), c->lanes);
            g = LLVMBuildFSub(c->b, g, LLVMBuildFMul(c->b, z, sx, ""), "");
        }
        LLVMValueRef a = cg_load(c, lk->vf, acc[r], 64);
        cg_store(c, s ? cg_fmuladd(c, g, s, a) : LLVMBuildFAdd(c->b, g, a, ""), acc[r], 64);
    }
}

static void zero_all(linear_kernel *lk, LLVMValueRef *slots, int mr, bool vec)
{
    for (int r = 0; r < mr; r++)
        cg_store(lk->c, LLVMConstNull(vec ? lk->vf : lk->c->t_f32), slots[r], vec ? 64 : 4);
}

/* The columns of group gi: full words in a loop, then the partial last word. */
static void group_columns(linear_kernel *lk, int64_t w_begin, int64_t w_end, int tail_cols, LLVMValueRef m0, int mr,
                          LLVMValueRef *gacc, LLVMValueRef *xs, LLVMValueRef w_offset)
{
    cg *c = lk->c;
    int pw = lk->p->per_word;
    if (w_end > w_begin) {
        cg_loop l = cg_for(c, w_begin, w_end, 1, "word");
        LLVMValueRef wd = w_offset ? LLVMBuildAdd(c->b, l.iv, w_offset, "") : l.iv;
        LLVMValueRef col0 = LLVMBuildMul(c->b, wd, cg_i64(c, pw), "col");
        accumulate_word(lk, wd, 0, col0, pw, m0, mr, gacc, xs);
        cg_loop_end(c, &l);
    }
    if (tail_cols) {
        LLVMValueRef wd = cg_i64(c, w_end);
        if (w_offset) wd = LLVMBuildAdd(c->b, wd, w_offset, "");
        accumulate_word(lk, wd, 0, LLVMBuildMul(c->b, wd, cg_i64(c, pw), ""), tail_cols, m0, mr, gacc, xs);
    }
}

/* Bias and store of one row's accumulator into y (masked in the last panel
 * when n is not a multiple of the lanes). */
static void store_row(linear_kernel *lk, LLVMValueRef row, LLVMValueRef accv)
{
    cg *c = lk->c;
    int L = c->lanes;
    int64_t rem = lk->n % L;
    LLVMValueRef col = LLVMBuildMul(c->b, lk->panel, cg_i64(c, L), "");
    LLVMValueRef at = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, row, cg_i64(c, lk->n), ""), col, "");
    LLVMValueRef yp = cg_gep(c, c->t_f32, lk->y, at);
    LLVMValueRef bp = lk->bias ? cg_gep(c, c->t_f32, lk->bias, col) : NULL;
    LLVMTypeRef mask_t = cg_vec(c, c->t_i1, L);
    LLVMValueRef full_bias = NULL;
    if (!rem) {
        if (bp) accv = LLVMBuildFAdd(c->b, accv, cg_load(c, lk->vf, bp, 4), "");
        cg_store(c, accv, yp, 4);
        return;
    }
    LLVMValueRef last = LLVMBuildICmp(c->b, LLVMIntEQ, lk->panel, cg_i64(c, lk->p->panels - 1), "");
    LLVMBasicBlockRef bfull = cg_block(c, "store.full"), bpart = cg_block(c, "store.part"), bdone = cg_block(c, "store.done");
    LLVMBuildCondBr(c->b, last, bpart, bfull);
    LLVMPositionBuilderAtEnd(c->b, bfull);
    full_bias = bp ? LLVMBuildFAdd(c->b, accv, cg_load(c, lk->vf, bp, 4), "") : accv;
    cg_store(c, full_bias, yp, 4);
    LLVMBuildBr(c->b, bdone);
    LLVMPositionBuilderAtEnd(c->b, bpart);
    LLVMValueRef bits[64];
    for (int j = 0; j < L; j++) bits[j] = LLVMConstInt(c->t_i1, j < rem, 0);
    LLVMValueRef mask = LLVMConstVector(bits, (unsigned)L);
    LLVMValueRef v = accv;
    LLVMTypeRef tys[2] = {lk->vf, c->t_ptr};
    if (bp) {
        LLVMValueRef args[4] = {bp, cg_i32(c, 4), mask, LLVMConstNull(lk->vf)};
        v = LLVMBuildFAdd(c->b, v, cg_intrinsic(c, "llvm.masked.load", tys, 2, args, 4), "");
    }
    LLVMValueRef sargs[4] = {v, yp, cg_i32(c, 4), mask};
    cg_intrinsic(c, "llvm.masked.store", tys, 2, sargs, 4);
    (void)mask_t;
    LLVMBuildBr(c->b, bdone);
    LLVMPositionBuilderAtEnd(c->b, bdone);
}


/* ---- int8 activations (`:a8`) ------------------------------------------------- */

enum { A8_CTX_X, A8_CTX_Y, A8_CTX_BIAS, A8_CTX_XSCALE, A8_CTX_XSUM, A8_CTX_SIZE };

static int64_t align64(int64_t v) { return (v + 63) / 64 * 64; }

typedef struct quant_row {
    LLVMValueRef src, q8, qf, scale, acc; /* row in, int8 codes out, or floats out; sum */
    LLVMValueRef amax;
} quant_row;

static void amax_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    quant_row *qr = ctx;
    LLVMValueRef x = cg_vload(c, qr->src, i, mask, lanes);
    LLVMTypeRef vt = LLVMTypeOf(x);
    LLVMValueRef ax = cg_intrinsic(c, "llvm.fabs", &vt, 1, &x, 1);
    LLVMValueRef args[2] = {cg_load(c, vt, qr->amax, 64), ax};
    cg_store(c, cg_intrinsic(c, "llvm.maxnum", &vt, 1, args, 2), qr->amax, 64);
}

/* clamp(rint(x / scale), -127, 127) as i32 lanes (masked lanes 0). */
static LLVMValueRef quantize_lanes(cg *c, quant_row *qr, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    LLVMValueRef x = cg_vload(c, qr->src, i, mask, lanes);
    LLVMTypeRef vt = LLVMTypeOf(x);
    LLVMValueRef v = LLVMBuildFDiv(c->b, x, cg_splat(c, qr->scale, lanes), "");
    v = cg_intrinsic(c, "llvm.rint", &vt, 1, &v, 1);
    LLVMValueRef hi[2] = {v, cg_splat(c, cg_f32(c, 127), lanes)};
    v = cg_intrinsic(c, "llvm.minnum", &vt, 1, hi, 2);
    LLVMValueRef lo[2] = {v, cg_splat(c, cg_f32(c, -127), lanes)};
    v = cg_intrinsic(c, "llvm.maxnum", &vt, 1, lo, 2);
    LLVMValueRef q = LLVMBuildFPToSI(c->b, v, cg_vec(c, c->t_i32, lanes), "q");
    if (mask) q = LLVMBuildSelect(c->b, mask, q, LLVMConstNull(LLVMTypeOf(q)), "");
    return q;
}

static void quant_i8_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    quant_row *qr = ctx;
    LLVMValueRef q = quantize_lanes(c, qr, i, mask, lanes);
    LLVMValueRef b8 = LLVMBuildTrunc(c->b, q, cg_vec(c, c->t_i8, lanes), "");
    LLVMValueRef ptr = cg_gep(c, c->t_i8, qr->q8, i);
    if (mask) {
        LLVMTypeRef tys[2] = {LLVMTypeOf(b8), c->t_ptr};
        LLVMValueRef args[4] = {b8, ptr, cg_i32(c, 1), mask};
        cg_intrinsic(c, "llvm.masked.store", tys, 2, args, 4);
    } else {
        cg_store(c, b8, ptr, 1);
    }
    LLVMTypeRef it = LLVMTypeOf(q);
    cg_store(c, LLVMBuildAdd(c->b, cg_load(c, it, qr->acc, 64), q, ""), qr->acc, 64);
}

static void quant_f32_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    quant_row *qr = ctx;
    LLVMValueRef q = quantize_lanes(c, qr, i, mask, lanes);
    LLVMValueRef f = LLVMBuildFMul(c->b, LLVMBuildSIToFP(c->b, q, cg_vec(c, c->t_f32, lanes), ""),
                                   cg_splat(c, qr->scale, lanes), "");
    cg_vstore(c, f, qr->qf, i, mask);
}

/* Quantizes the columns [col, col + len) of one row into xq (and their sum
 * into *sum_slot). */
static void quantize_span(cg *c, quant_row *qr, LLVMValueRef row_x, LLVMValueRef row_q, LLVMValueRef col, int64_t len,
                          LLVMValueRef sum_slot)
{
    int L = c->lanes;
    LLVMTypeRef it = cg_vec(c, c->t_i32, L);
    qr->src = cg_gep(c, c->t_f32, row_x, col);
    qr->q8 = cg_gep(c, c->t_i8, row_q, col);
    cg_store(c, LLVMConstNull(it), qr->acc, 64);
    cg_vloop(c, cg_i64(c, len), L, quant_i8_body, qr);
    LLVMValueRef v = cg_load(c, it, qr->acc, 64);
    cg_store(c, cg_intrinsic(c, "llvm.vector.reduce.add", &it, 1, &v, 1), sum_slot, 4);
}

/* Each row of x quantized to int8 with its own scale, max|x| / 127 (as
 * q_quantize_row_a8_ref), or with the calibrated scale when the precision
 * has one: codes (zero-padded to kpx) and the sum of each group's codes,
 * or for CG_A8_EMULATE the dequantized row in float. */
static void emit_quantize_rows(linear_kernel *lk, LLVMValueRef x, LLVMValueRef xq, LLVMValueRef xf)
{
    cg *c = lk->c;
    const cg_packed *p = lk->p;
    int L = c->lanes;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, L);
    quant_row qr = {.amax = cg_alloca(c, vt, "amax"), .acc = cg_alloca(c, cg_vec(c, c->t_i32, L), "qsum")};
    cg_loop lm = cg_for(c, 0, lk->m, 1, "row");
    LLVMValueRef row_x = cg_gep(c, c->t_f32, x, LLVMBuildMul(c->b, lm.iv, cg_i64(c, lk->k), ""));
    qr.src = row_x;
    if (p->f.act_scale > 0) {
        qr.scale = cg_f32(c, p->f.act_scale); /* calibrated, the same for every row */
    } else {
        cg_store(c, LLVMConstNull(vt), qr.amax, 64);
        cg_vloop(c, cg_i64(c, lk->k), L, amax_body, &qr);
        LLVMValueRef av = cg_load(c, vt, qr.amax, 64);
        LLVMValueRef amax = cg_fast(cg_intrinsic(c, "llvm.vector.reduce.fmax", &vt, 1, &av, 1));
        qr.scale = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, amax, cg_f32(c, 0), ""),
                                   LLVMBuildFDiv(c->b, amax, cg_f32(c, 127), ""), cg_f32(c, 1), "scale");
    }
    cg_store(c, qr.scale, cg_gep(c, c->t_f32, lk->xscale, lm.iv), 4);
    if (p->a8 == CG_A8_EMULATE) {
        qr.qf = cg_gep(c, c->t_f32, xf, LLVMBuildMul(c->b, lm.iv, cg_i64(c, lk->k), ""));
        cg_vloop(c, cg_i64(c, lk->k), L, quant_f32_body, &qr);
        cg_loop_end(c, &lm);
        return;
    }
    LLVMValueRef row_q = cg_gep(c, c->t_i8, xq, LLVMBuildMul(c->b, lm.iv, cg_i64(c, lk->kpx), ""));
    LLVMValueRef sums = cg_gep(c, c->t_i32, lk->xsum, LLVMBuildMul(c->b, lm.iv, cg_i64(c, p->n_groups), ""));
    int64_t glen = p->group_words * p->per_word, last = p->n_groups - 1;
    if (last > 0) {
        cg_loop lg = cg_for(c, 0, last, 1, "group");
        quantize_span(c, &qr, row_x, row_q, LLVMBuildMul(c->b, lg.iv, cg_i64(c, glen), ""), glen,
                      cg_gep(c, c->t_i32, sums, lg.iv));
        cg_loop_end(c, &lg);
    }
    quantize_span(c, &qr, row_x, row_q, cg_i64(c, last * glen), lk->k - last * glen, cg_gep(c, c->t_i32, sums, cg_i64(c, last)));
    for (int64_t col = lk->k; col < lk->kpx; col++) cg_store(c, LLVMConstInt(c->t_i8, 0, 0), cg_gep(c, c->t_i8, row_q, cg_i64(c, col)), 1);
    cg_loop_end(c, &lm);
}

/* acc += sum over 4-byte groups of a (unsigned for VNNI) times b (signed). */
static LLVMValueRef int_dot(linear_kernel *lk, LLVMValueRef acc, LLVMValueRef a, LLVMValueRef b)
{
    cg *c = lk->c;
    int L = c->lanes;
    if (lk->p->a8 == CG_A8_VNNI) {
        LLVMValueRef args[3] = {acc, a, b};
        return cg_intrinsic(c, "llvm.x86.avx512.vpdpbusd.512", NULL, 0, args, 3);
    }
    /* sdot works on 4 lanes: split the vector */
    LLVMTypeRef b16 = cg_vec(c, c->t_i8, 16), i4 = cg_vec(c, c->t_i32, 4);
    LLVMValueRef out = LLVMGetPoison(LLVMTypeOf(acc));
    for (int h = 0; h < L / 4; h++) {
        LLVMValueRef idx[4], half[3];
        for (int j = 0; j < 4; j++) idx[j] = cg_i32(c, h * 4 + j);
        LLVMValueRef sel = LLVMConstVector(idx, 4);
        half[0] = LLVMBuildShuffleVector(c->b, acc, LLVMGetPoison(LLVMTypeOf(acc)), sel, "");
        half[1] = LLVMBuildBitCast(c->b, LLVMBuildShuffleVector(c->b, a, LLVMGetPoison(LLVMTypeOf(a)), sel, ""), b16, "");
        half[2] = LLVMBuildBitCast(c->b, LLVMBuildShuffleVector(c->b, b, LLVMGetPoison(LLVMTypeOf(b)), sel, ""), b16, "");
        LLVMTypeRef tys[2] = {i4, b16};
        LLVMValueRef r = cg_intrinsic(c, "llvm.aarch64.neon.sdot", tys, 2, half, 3);
        for (int j = 0; j < 4; j++) out = LLVMBuildInsertElement(c->b, out, LLVMBuildExtractElement(c->b, r, cg_i32(c, j), ""), cg_i32(c, h * 4 + j), "");
    }
    return out;
}

/* One word of the panel times 4 or 8 activation columns for mr rows. */
static void a8_word(linear_kernel *lk, LLVMValueRef wd, LLVMValueRef m0, int mr, LLVMValueRef *isum)
{
    cg *c = lk->c;
    int L = c->lanes;
    LLVMValueRef at = LLVMBuildMul(c->b, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lk->panel, cg_i64(c, lk->p->words), ""), wd, ""),
                                   cg_i64(c, L), "");
    LLVMValueRef word = cg_load(c, lk->vi, cg_gep(c, c->t_i32, lk->codes, at), 4);
    LLVMValueRef parts[2] = {word, NULL};
    int n_parts = 1;
    if (lk->p->per_word == 8) {
        LLVMValueRef m = cg_vsplat_i32(c, 0x0F0F0F0F, L);
        parts[0] = LLVMBuildAnd(c->b, word, m, "lo");
        parts[1] = LLVMBuildAnd(c->b, LLVMBuildLShr(c->b, word, cg_vsplat_i32(c, 4, L), ""), m, "hi");
        n_parts = 2;
    }
    LLVMValueRef col = LLVMBuildMul(c->b, wd, cg_i64(c, lk->p->per_word), "");
    for (int pi = 0; pi < n_parts; pi++)
        for (int r = 0; r < mr; r++) {
            LLVMValueRef row = LLVMBuildAdd(c->b, m0, cg_i64(c, r), "");
            LLVMValueRef off = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, row, cg_i64(c, lk->kpx), ""),
                                            LLVMBuildAdd(c->b, col, cg_i64(c, 4 * pi), ""), "");
            LLVMValueRef xb = cg_splat(c, cg_load(c, c->t_i32, cg_gep(c, c->t_i8, lk->x, off), 1), L);
            cg_store(c, int_dot(lk, cg_load(c, lk->vi, isum[r], 64), parts[pi], xb), isum[r], 64);
        }
}

/* acc += scale_g * (isum - offset * xsum_g - z_g * xsum_g) */
static void a8_close_group(linear_kernel *lk, LLVMValueRef gi, LLVMValueRef m0, int mr, LLVMValueRef *acc, LLVMValueRef *isum)
{
    cg *c = lk->c;
    const cg_packed *p = lk->p;
    int L = c->lanes;
    LLVMValueRef s = group_vec(lk, lk->scales, gi, p->scales_f16, false);
    LLVMValueRef z = NULL;
    if (p->zeros >= 0) {
        LLVMValueRef at = LLVMBuildMul(c->b, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lk->panel, cg_i64(c, p->n_groups), ""), gi, ""),
                                       cg_i64(c, L), "");
        z = LLVMBuildZExt(c->b, cg_load(c, cg_vec(c, c->t_i8, L), cg_gep(c, c->t_i8, lk->zeros, at), 1), lk->vi, "z");
    }
    for (int r = 0; r < mr; r++) {
        LLVMValueRef v = cg_load(c, lk->vi, isum[r], 64);
        if (p->code_offset || z) {
            LLVMValueRef row = LLVMBuildAdd(c->b, m0, cg_i64(c, r), "");
            LLVMValueRef xs = cg_load(c, c->t_i32, cg_gep(c, c->t_i32, lk->xsum,
                                                          LLVMBuildAdd(c->b, LLVMBuildMul(c->b, row, cg_i64(c, p->n_groups), ""), gi, "")), 4);
            LLVMValueRef corr = cg_splat(c, LLVMBuildMul(c->b, xs, cg_i32(c, p->code_offset), ""), L);
            if (z) corr = LLVMBuildAdd(c->b, corr, LLVMBuildMul(c->b, z, cg_splat(c, xs, L), ""), "");
            v = LLVMBuildSub(c->b, v, corr, "");
        }
        LLVMValueRef f = LLVMBuildSIToFP(c->b, v, lk->vf, "");
        cg_store(c, cg_fmuladd(c, f, s, cg_load(c, lk->vf, acc[r], 64)), acc[r], 64);
    }
}

static void a8_group_words(linear_kernel *lk, LLVMValueRef w0, int64_t n_words, LLVMValueRef m0, int mr, LLVMValueRef *isum)
{
    cg *c = lk->c;
    for (int r = 0; r < mr; r++) cg_store(c, LLVMConstNull(lk->vi), isum[r], 64);
    cg_loop l = cg_for(c, 0, n_words, 1, "word");
    a8_word(lk, LLVMBuildAdd(c->b, l.iv, w0, ""), m0, mr, isum);
    cg_loop_end(c, &l);
}

static void emit_rows_a8(linear_kernel *lk, LLVMValueRef m0, int mr)
{
    cg *c = lk->c;
    const cg_packed *p = lk->p;
    LLVMValueRef acc[MR], isum[MR];
    for (int r = 0; r < mr; r++) {
        acc[r] = cg_alloca(c, lk->vf, "acc");
        isum[r] = cg_alloca(c, lk->vi, "isum");
        cg_store(c, LLVMConstNull(lk->vf), acc[r], 64);
    }
    int64_t last = p->n_groups - 1;
    if (last > 0) {
        cg_loop gl = cg_for(c, 0, last, 1, "group");
        a8_group_words(lk, LLVMBuildMul(c->b, gl.iv, cg_i64(c, p->group_words), ""), p->group_words, m0, mr, isum);
        a8_close_group(lk, gl.iv, m0, mr, acc, isum);
        cg_loop_end(c, &gl);
    }
    a8_group_words(lk, cg_i64(c, last * p->group_words), p->words - last * p->group_words, m0, mr, isum);
    a8_close_group(lk, cg_i64(c, last), m0, mr, acc, isum);
    for (int r = 0; r < mr; r++) {
        LLVMValueRef row = LLVMBuildAdd(c->b, m0, cg_i64(c, r), "");
        LLVMValueRef xs = cg_splat(c, cg_load(c, c->t_f32, cg_gep(c, c->t_f32, lk->xscale, row), 4), c->lanes);
        store_row(lk, row, LLVMBuildFMul(c->b, cg_load(c, lk->vf, acc[r], 64), xs, ""));
    }
}

/* The rows m0 .. m0 + mr - 1 of the current panel. */
static void emit_rows(linear_kernel *lk, LLVMValueRef m0, int mr)
{
    cg *c = lk->c;
    const cg_packed *p = lk->p;
    LLVMValueRef acc[MR], gacc[MR], xs[MR];
    bool asym = p->zeros >= 0;
    for (int r = 0; r < mr; r++) {
        acc[r] = cg_alloca(c, lk->vf, "acc");
        gacc[r] = cg_alloca(c, lk->vf, "gacc");
        xs[r] = cg_alloca(c, c->t_f32, "xsum");
    }
    zero_all(lk, acc, mr, true);
    int64_t full_words = lk->k / p->per_word;
    int tail_cols = (int)(lk->k % p->per_word);
    /* groups before the last one are full: a loop over them */
    int64_t last_group = p->n_groups - 1;
    if (last_group > 0) {
        cg_loop gl = cg_for(c, 0, last_group, 1, "group");
        zero_all(lk, gacc, mr, true);
        if (asym) zero_all(lk, xs, mr, false);
        LLVMValueRef w0 = LLVMBuildMul(c->b, gl.iv, cg_i64(c, p->group_words), "");
        group_columns(lk, 0, p->group_words, 0, m0, mr, gacc, asym ? xs : NULL, w0);
        close_group(lk, gl.iv, mr, acc, gacc, xs);
        cg_loop_end(c, &gl);
    }
    /* the last group, which holds the columns that do not fill a word */
    zero_all(lk, gacc, mr, true);
    if (asym) zero_all(lk, xs, mr, false);
    int64_t w_begin = last_group * p->group_words;
    group_columns(lk, w_begin, full_words, tail_cols, m0, mr, gacc, asym ? xs : NULL, NULL);
    close_group(lk, cg_i64(c, last_group), mr, acc, gacc, xs);
    for (int r = 0; r < mr; r++)
        store_row(lk, LLVMBuildAdd(c->b, m0, cg_i64(c, r), ""), cg_load(c, lk->vf, acc[r], 64));
}

/* void name.panels(ptr ctx, i64 begin, i64 end): the panels [begin, end). */
static LLVMValueRef emit_panels_fn(cg *c, const cg_packed *p, const ir_node *n, const char *name, int32_t bias_node)
{
    LLVMTypeRef params[3] = {c->t_ptr, c->t_i64, c->t_i64};
    LLVMTypeRef ft = LLVMFunctionType(c->t_void, params, 3, 0);
    LLVMValueRef fn = cg_function_begin(c, fe_arena_printf(c->arena, "%s.panels", name), ft, false, true);
    linear_kernel lk = {.c = c, .p = p, .n = p->n, .k = p->k};
    lk.m = ir_node_count(n) / p->n;
    lk.vf = cg_vec(c, c->t_f32, c->lanes);
    lk.vi = cg_vec(c, c->t_i32, c->lanes);
    LLVMValueRef ctx = LLVMGetParam(fn, 0);
    lk.x = cg_load(c, c->t_ptr, ctx, 8);
    lk.y = cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, ctx, cg_i64(c, 1)), 8);
    bool int_dot = p->a8 == CG_A8_VNNI || p->a8 == CG_A8_SDOT;
    if (int_dot) {
        lk.kpx = p->words * p->per_word;
        lk.xscale = cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_XSCALE)), 8);
        lk.xsum = cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_XSUM)), 8);
    }
    lk.bias = bias_node < 0 ? NULL
              : c->node_blob[bias_node] >= 0 ? cg_blob_ptr(c, c->node_blob[bias_node])
                                             : cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, ctx, cg_i64(c, 2)), 8);
    lk.codes = cg_blob_ptr(c, p->codes);
    lk.scales = p->scales >= 0 ? cg_blob_ptr(c, p->scales) : NULL;
    lk.zeros = p->zeros >= 0 ? cg_blob_ptr(c, p->zeros) : NULL;
    cg_loop pl = cg_loop_begin(c, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), 1, "panel");
    lk.panel = pl.iv;
    void (*rows)(linear_kernel *, LLVMValueRef, int) = int_dot ? emit_rows_a8 : emit_rows;
    int64_t full = lk.m / MR * MR;
    if (full) {
        cg_loop ml = cg_for(c, 0, full, MR, "rows");
        rows(&lk, ml.iv, MR);
        cg_loop_end(c, &ml);
    }
    if (lk.m % MR) rows(&lk, cg_i64(c, full), (int)(lk.m % MR));
    cg_loop_end(c, &pl);
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* Computed (non-weight) matrices: plain loops, y[m, n] = sum_k x[m, k] w[n, k] + b[n]. */
static void emit_plain_linear(cg *c, const ir_node *n, LLVMValueRef y, LLVMValueRef x, LLVMValueRef w, LLVMValueRef b)
{
    const ir_node *wn = &c->g->nodes[n->inputs[1]];
    int64_t nn = wn->shape[0], k = wn->shape[1], m = ir_node_count(n) / nn;
    cg_loop lm = cg_for(c, 0, m, 1, "m");
    cg_loop ln = cg_for(c, 0, nn, 1, "n");
    LLVMValueRef sum = cg_alloca(c, c->t_f32, "sum");
    cg_store(c, b ? cg_load(c, c->t_f32, cg_gep(c, c->t_f32, b, ln.iv), 4) : cg_f32(c, 0), sum, 4);
    cg_loop lk = cg_for(c, 0, k, 1, "k");
    LLVMValueRef xv = cg_load(c, c->t_f32, cg_gep(c, c->t_f32, x, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lm.iv, cg_i64(c, k), ""), lk.iv, "")), 4);
    LLVMValueRef wv = cg_load(c, c->t_f32, cg_gep(c, c->t_f32, w, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, ln.iv, cg_i64(c, k), ""), lk.iv, "")), 4);
    cg_store(c, cg_fast(LLVMBuildFAdd(c->b, cg_load(c, c->t_f32, sum, 4), LLVMBuildFMul(c->b, xv, wv, ""), "")), sum, 4);
    cg_loop_end(c, &lk);
    cg_store(c, cg_load(c, c->t_f32, sum, 4),
             cg_gep(c, c->t_f32, y, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lm.iv, cg_i64(c, nn), ""), ln.iv, "")), 4);
    cg_loop_end(c, &ln);
    cg_loop_end(c, &lm);
}

/* a8: quantizes the rows of x into the node's scratch; returns what the
 * panels read as x (the codes, or the dequantized rows when emulating) and
 * fills the context's scale and sum pointers. */
static LLVMValueRef emit_act8_prologue(cg *c, const ir_node *n, const cg_packed *p, LLVMValueRef x, LLVMValueRef scratch,
                                       LLVMValueRef ctx)
{
    linear_kernel lk = {.c = c, .p = p, .n = p->n, .k = p->k, .m = ir_node_count(n) / p->n};
    lk.kpx = p->words * p->per_word;
    int64_t off_scale = align64(lk.m * ((lk.kpx + 7) / 8 * 8)), off_sum = off_scale + align64(4 * lk.m);
    int64_t off_float = off_sum + align64(4 * lk.m * p->n_groups);
    LLVMValueRef xq = scratch, xf = cg_gep(c, c->t_i8, scratch, cg_i64(c, off_float));
    lk.xscale = cg_gep(c, c->t_i8, scratch, cg_i64(c, off_scale));
    lk.xsum = cg_gep(c, c->t_i8, scratch, cg_i64(c, off_sum));
    emit_quantize_rows(&lk, x, xq, xf);
    cg_store(c, lk.xscale, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_XSCALE)), 8);
    cg_store(c, lk.xsum, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_XSUM)), 8);
    return p->a8 == CG_A8_EMULATE ? xf : xq;
}

void cg_emit_linear(cg *c, int32_t node, const char *name)
{
    const ir_node *n = &c->g->nodes[node];
    int32_t wnode = n->inputs[1], bnode = n->n_inputs == 3 ? n->inputs[2] : -1;
    bool packed = c->g->nodes[wnode].op == IR_OP_WEIGHT;
    bool bias_param = bnode >= 0 && c->node_blob[bnode] < 0;
    const cg_packed *p = packed ? &c->packed[wnode] : NULL;
    bool act8 = p && p->a8 != CG_A8_NONE;
    /* i32 name(ptr y, ptr x [, ptr w] [, ptr b] [, ptr scratch]) */
    LLVMTypeRef params[5] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr};
    int np = 2 + !packed + bias_param + act8;
    LLVMValueRef panels_fn = NULL;
    if (packed) panels_fn = emit_panels_fn(c, p, n, name, bnode);
    LLVMTypeRef ft = LLVMFunctionType(c->t_i32, params, (unsigned)np, 0);
    LLVMValueRef fn = cg_function_begin(c, name, ft, false, true);
    for (int i = 0; i < np; i++) cg_param_noalias(c, fn, (unsigned)i);
    LLVMValueRef y = LLVMGetParam(fn, 0), x = LLVMGetParam(fn, 1);
    if (!packed) {
        LLVMValueRef b = bnode < 0 ? NULL : bias_param ? LLVMGetParam(fn, 3) : cg_blob_ptr(c, c->node_blob[bnode]);
        emit_plain_linear(c, n, y, x, LLVMGetParam(fn, 2), b);
        LLVMBuildRet(c->b, cg_i32(c, 0));
        return;
    }
    LLVMValueRef ctx = cg_alloca(c, LLVMArrayType(c->t_ptr, A8_CTX_SIZE), "ctx");
    if (act8) x = emit_act8_prologue(c, n, p, x, LLVMGetParam(fn, (unsigned)(np - 1)), ctx);
    cg_store(c, x, ctx, 8);
    cg_store(c, y, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_Y)), 8);
    if (bias_param) cg_store(c, LLVMGetParam(fn, 2), cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_BIAS)), 8);
    int64_t work = ir_node_count(n) * p->k;
    LLVMTypeRef pft = LLVMGlobalGetValueType(panels_fn);
    if (p->panels > 1 && work >= 1 << 16) {
        LLVMValueRef pf = LLVMGetNamedFunction(c->mod, "qmc_parallel_for");
        LLVMTypeRef pargs[3] = {c->t_ptr, c->t_ptr, c->t_i64};
        LLVMTypeRef pft2 = LLVMFunctionType(c->t_void, pargs, 3, 0);
        if (!pf) pf = LLVMAddFunction(c->mod, "qmc_parallel_for", pft2);
        LLVMValueRef args[3] = {panels_fn, ctx, cg_i64(c, p->panels)};
        LLVMBuildCall2(c->b, pft2, pf, args, 3, "");
    } else {
        LLVMValueRef args[3] = {ctx, cg_i64(c, 0), cg_i64(c, p->panels)};
        LLVMBuildCall2(c->b, pft, panels_fn, args, 3, "");
    }
    LLVMBuildRet(c->b, cg_i32(c, 0));
}
