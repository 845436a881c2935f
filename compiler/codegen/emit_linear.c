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
 * Kernel: for each panel (in parallel), for each block of rows of x, one
 * accumulator vector per row holds the panel's outputs; for each column k
 * the dequantized weight vector is multiplied by x[m, k] broadcast. Per
 * group: acc += scale * sum(x * q) (asymmetric: scale * (sum(x*q) - z*sum x)).
 * The weights are never expanded to f32 in memory. */
#include <math.h>
#include <string.h>

#include "codegen.h"

enum { MR_MAX = 8 };

/* ---- packing ------------------------------------------------------------ */

/* k-major: the panel's values of each column adjacent (f32 or code bytes). */
static void pack_kmajor(const cg *c, cg_packed *p, const ir_qweight *q, const float *w32, uint8_t *out)
{
    int L = c->lanes;
    for (int64_t pn = 0; pn < p->panels; pn++)
        for (int64_t col = 0; col < p->kcols; col++)
            for (int j = 0; j < L; j++) {
                int64_t row = pn * L + j;
                uint8_t *dst = out + ((pn * p->kcols + col) * L + j) * (size_t)p->elem_bytes;
                if (row >= p->n || col >= (q ? q->kp : p->k)) continue;
                if (q) *dst = q->codes[row * q->kp + col];
                else memcpy(dst, &w32[row * p->k + col], 4);
            }
}

static void pack_codes(const cg *c, cg_packed *p, const ir_qweight *q, const float *w32, uint8_t *out)
{
    int L = c->lanes;
    if (p->kmajor) {
        pack_kmajor(c, p, q, w32, out);
        return;
    }
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
        w32 = fe_arena_alloc(a, sizeof(float) * (size_t)(p->n * p->k));
        fe_tensor_to_f32(w->tensor, w32);
    }
    p->a8 = q && q->f.act8 ? a8_kind(c) : CG_A8_NONE;
    bool int_dot = p->a8 == CG_A8_VNNI || p->a8 == CG_A8_SDOT;
    bool four_bit = q && q_format_bits(q->f.format) == 4;
    p->per_word = four_bit ? 8 : 4;
    p->kmajor = !four_bit && !int_dot;
    p->elem_bytes = q ? 1 : 4;
    int64_t kp = q ? q->kp : p->k;
    p->words = (kp + p->per_word - 1) / p->per_word;
    p->kcols = p->words * p->per_word;
    p->n_groups = q ? q->n_groups : 1;
    p->group_words = q ? q->group / p->per_word : p->words;
    if (q && !q->f.group) p->group_words = p->words; /* per channel: one group */
    if (q && q_format_is_fp8(q->f.format)) {
        p->fp8_via_half = c->target->arch == CG_ARCH_AARCH64 || cg_target_has(c->target, "f16c");
        bool e4m3 = q->f.format == QFMT_FP8_E4M3;
        p->scale_factor = p->fp8_via_half ? (e4m3 ? 256.0f : 1.0f) : (e4m3 ? 0x1p120f : 0x1p112f);
    }
    size_t code_bytes = p->kmajor ? (size_t)(p->panels * p->kcols * L * p->elem_bytes) : (size_t)(p->panels * p->words * L * 4);
    uint8_t *codes = fe_arena_alloc(a, code_bytes);
    if (int_dot) {
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
    if (L == 16 && c->target->arch == CG_ARCH_X86_64) {
        /* vpermps reads only the low 4 bits of each index: the nibble
         * selects its value from a 16-entry table, no masking needed */
        LLVMValueRef table[16];
        for (int u = 0; u < 16; u++) table[u] = cg_f32(c, f == QFMT_INT4 && u >= 8 ? u - 16 : u);
        LLVMValueRef idx = i ? LLVMBuildLShr(b, word, cg_vsplat_i32(c, 4 * i, L), "") : word;
        LLVMValueRef args[2] = {LLVMConstVector(table, 16), idx};
        return cg_intrinsic(c, "llvm.x86.avx512.permvar.sf.512", NULL, 0, args, 2);
    }
    if (f == QFMT_INT4) {
        LLVMValueRef v = LLVMBuildShl(b, word, cg_vsplat_i32(c, 28 - 4 * i, L), "");
        v = LLVMBuildAShr(b, v, cg_vsplat_i32(c, 28, L), "q");
        return LLVMBuildSIToFP(b, v, lk->vf, "w");
    }
    LLVMValueRef v = LLVMBuildLShr(b, word, cg_vsplat_i32(c, 4 * i, L), "");
    v = LLVMBuildAnd(b, v, cg_vsplat_i32(c, 15, L), "q");
    return LLVMBuildUIToFP(b, v, lk->vf, "w");
}

/* Column col of the panel in the k-major layout (f32, int8, FP8: the
 * panel's values of one column are adjacent) as floats. FP8 codes become
 * halves (or floats) whose value is the code's times a power of two that
 * the scales absorb: E4M3 s.eeee.mmm -> half s.0eeee.mmm0000000 by a shift
 * of the sign-extended byte and a mask; E5M2 is the top byte of a half. */
static LLVMValueRef column(linear_kernel *lk, LLVMValueRef col)
{
    cg *c = lk->c;
    LLVMBuilderRef b = c->b;
    int L = c->lanes;
    const cg_packed *p = lk->p;
    LLVMValueRef at = LLVMBuildMul(c->b, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lk->panel, cg_i64(c, p->kcols), ""), col, ""),
                                   cg_i64(c, L), "");
    if (!lk->p->elem_bytes || p->elem_bytes == 4) return cg_load(c, lk->vf, cg_gep(c, c->t_f32, lk->codes, at), 4);
    LLVMValueRef bytes = cg_load(c, cg_vec(c, c->t_i8, L), cg_gep(c, c->t_i8, lk->codes, at), 1);
    q_format f = p->f.format;
    if (f == QFMT_INT8) return LLVMBuildSIToFP(b, LLVMBuildSExt(b, bytes, lk->vi, ""), lk->vf, "w");
    bool e4m3 = f == QFMT_FP8_E4M3;
    if (p->fp8_via_half) {
        LLVMTypeRef h16 = cg_vec(c, c->t_i16, L);
        LLVMValueRef h = e4m3 ? LLVMBuildAnd(b, LLVMBuildShl(b, LLVMBuildSExt(b, bytes, h16, ""), cg_splat(c, LLVMConstInt(c->t_i16, 7, 0), L), ""),
                                             cg_splat(c, LLVMConstInt(c->t_i16, 0xBF80, 0), L), "")
                              : LLVMBuildShl(b, LLVMBuildZExt(b, bytes, h16, ""), cg_splat(c, LLVMConstInt(c->t_i16, 8, 0), L), "");
        return LLVMBuildFPExt(b, LLVMBuildBitCast(b, h, cg_vec(c, c->t_f16, L), ""), lk->vf, "w");
    }
    LLVMValueRef s = LLVMBuildShl(b, LLVMBuildSExt(b, bytes, lk->vi, ""), cg_vsplat_i32(c, e4m3 ? 20 : 21, L), "");
    s = LLVMBuildAnd(b, s, cg_vsplat_i32(c, e4m3 ? (int32_t)0x87F00000 : (int32_t)0x8FE00000, L), "");
    return LLVMBuildBitCast(b, s, lk->vf, "w");
}

/* Accumulators of a row block: chains[r][ch] sums the columns with
 * (column mod chains) == ch, so that short row blocks (GEMV) still keep
 * several independent FMA chains in flight. */
enum { MAX_CHAINS = 8 };

typedef struct accumulators {
    int mr, chains;
    LLVMValueRef acc[MR_MAX], g[MR_MAX][MAX_CHAINS];
} accumulators;

/* One step of `cols` columns starting at col0 for rows m0.. of the block. */
static void accumulate_step(linear_kernel *lk, LLVMValueRef step, LLVMValueRef col0, int cols, LLVMValueRef m0,
                            accumulators *a)
{
    cg *c = lk->c;
    int L = c->lanes;
    LLVMValueRef word = NULL;
    if (!lk->p->kmajor) {
        LLVMValueRef at = LLVMBuildMul(c->b, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lk->panel, cg_i64(c, lk->p->words), ""), step, ""),
                                       cg_i64(c, L), "");
        word = cg_load(c, lk->vi, cg_gep(c, c->t_i32, lk->codes, at), 4);
    }
    for (int i = 0; i < cols; i++) {
        LLVMValueRef col = LLVMBuildAdd(c->b, col0, cg_i64(c, i), "");
        LLVMValueRef w = word ? dequant(lk, word, i) : column(lk, col);
        int ch = i % a->chains;
        for (int r = 0; r < a->mr; r++) {
            LLVMValueRef row = LLVMBuildAdd(c->b, m0, cg_i64(c, r), "");
            LLVMValueRef idx = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, row, cg_i64(c, lk->k), ""), col, "");
            LLVMValueRef xs = cg_load(c, c->t_f32, cg_gep(c, c->t_f32, lk->x, idx), 4);
            LLVMValueRef g = cg_load(c, lk->vf, a->g[r][ch], 64);
            cg_store(c, cg_fmuladd(c, cg_splat(c, xs, L), w, g), a->g[r][ch], 64);
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

static void open_group(linear_kernel *lk, accumulators *a)
{
    for (int r = 0; r < a->mr; r++)
        for (int ch = 0; ch < a->chains; ch++) cg_store(lk->c, LLVMConstNull(lk->vf), a->g[r][ch], 64);
}

/* acc[r] += scale_g * (sum of chains - z_g * xsum[row][g]) for group gi;
 * f32 weights: acc += sum of chains. */
static void close_group(linear_kernel *lk, LLVMValueRef gi, LLVMValueRef m0, accumulators *a)
{
    cg *c = lk->c;
    const cg_packed *p = lk->p;
    LLVMValueRef s = p->scales >= 0 ? group_vec(lk, lk->scales, gi, p->scales_f16, false) : NULL;
    LLVMValueRef z = p->zeros >= 0 ? group_vec(lk, lk->zeros, gi, false, true) : NULL;
    for (int r = 0; r < a->mr; r++) {
        LLVMValueRef g = cg_load(c, lk->vf, a->g[r][0], 64);
        for (int ch = 1; ch < a->chains; ch++) g = LLVMBuildFAdd(c->b, g, cg_load(c, lk->vf, a->g[r][ch], 64), "");
        if (z) {
            LLVMValueRef row = LLVMBuildAdd(c->b, m0, cg_i64(c, r), "");
            LLVMValueRef at = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, row, cg_i64(c, p->n_groups), ""), gi, "");
            LLVMValueRef sx = cg_splat(c, cg_load(c, c->t_f32, cg_gep(c, c->t_f32, lk->xsum, at), 4), c->lanes);
            g = LLVMBuildFSub(c->b, g, LLVMBuildFMul(c->b, z, sx, ""), "");
        }
        LLVMValueRef acc = cg_load(c, lk->vf, a->acc[r], 64);
        cg_store(c, s ? cg_fmuladd(c, g, s, acc) : LLVMBuildFAdd(c->b, g, acc, ""), a->acc[r], 64);
    }
}

/* Steps [s_begin, s_end) (+ w_offset) then `tail_cols` columns of step
 * s_end. A step is one word (int4) or per_word columns (k-major). */
static void group_columns(linear_kernel *lk, int64_t s_begin, int64_t s_end, int tail_cols, LLVMValueRef m0,
                          accumulators *a, LLVMValueRef s_offset)
{
    cg *c = lk->c;
    int pw = lk->p->per_word;
    if (s_end > s_begin) {
        cg_loop l = cg_for(c, s_begin, s_end, 1, "step");
        LLVMValueRef st = s_offset ? LLVMBuildAdd(c->b, l.iv, s_offset, "") : l.iv;
        accumulate_step(lk, st, LLVMBuildMul(c->b, st, cg_i64(c, pw), "col"), pw, m0, a);
        cg_loop_end(c, &l);
    }
    if (tail_cols) {
        LLVMValueRef st = cg_i64(c, s_end);
        if (s_offset) st = LLVMBuildAdd(c->b, st, s_offset, "");
        accumulate_step(lk, st, LLVMBuildMul(c->b, st, cg_i64(c, pw), ""), tail_cols, m0, a);
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
    LLVMValueRef acc[MR_MAX], isum[MR_MAX];
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
    accumulators a = {.mr = mr, .chains = 1};
    while (a.chains * 2 * mr <= MAX_CHAINS && a.chains * 2 <= p->per_word) a.chains *= 2;
    for (int r = 0; r < mr; r++) {
        a.acc[r] = cg_alloca(c, lk->vf, "acc");
        for (int ch = 0; ch < a.chains; ch++) a.g[r][ch] = cg_alloca(c, lk->vf, "gacc");
        cg_store(c, LLVMConstNull(lk->vf), a.acc[r], 64);
    }
    int64_t full_steps = lk->k / p->per_word;
    int tail_cols = (int)(lk->k % p->per_word);
    /* groups before the last one are full: a loop over them */
    int64_t last_group = p->n_groups - 1;
    if (last_group > 0) {
        cg_loop gl = cg_for(c, 0, last_group, 1, "group");
        open_group(lk, &a);
        group_columns(lk, 0, p->group_words, 0, m0, &a, LLVMBuildMul(c->b, gl.iv, cg_i64(c, p->group_words), ""));
        close_group(lk, gl.iv, m0, &a);
        cg_loop_end(c, &gl);
    }
    /* the last group, which holds the columns that do not fill a step */
    open_group(lk, &a);
    group_columns(lk, last_group * p->group_words, full_steps, tail_cols, m0, &a, NULL);
    close_group(lk, cg_i64(c, last_group), m0, &a);
    for (int r = 0; r < mr; r++)
        store_row(lk, LLVMBuildAdd(c->b, m0, cg_i64(c, r), ""), cg_load(c, lk->vf, a.acc[r], 64));
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
    }
    if (int_dot || p->zeros >= 0) lk.xsum = cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_XSUM)), 8);
    lk.bias = bias_node < 0 ? NULL
              : c->node_blob[bias_node] >= 0 ? cg_blob_ptr(c, c->node_blob[bias_node])
                                             : cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, ctx, cg_i64(c, 2)), 8);
    lk.codes = cg_blob_ptr(c, p->codes);
    lk.scales = p->scales >= 0 ? cg_blob_ptr(c, p->scales) : NULL;
    lk.zeros = p->zeros >= 0 ? cg_blob_ptr(c, p->zeros) : NULL;
    cg_loop pl = cg_loop_begin(c, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), 1, "panel");
    lk.panel = pl.iv;
    void (*rows)(linear_kernel *, LLVMValueRef, int) = int_dot ? emit_rows_a8 : emit_rows;
    int mr = c->lanes == 16 ? 8 : 4; /* rows per block: what the registers hold */
    int64_t full = lk.m / mr * mr;
    if (full) {
        cg_loop ml = cg_for(c, 0, full, mr, "rows");
        rows(&lk, ml.iv, mr);
        cg_loop_end(c, &ml);
    }
    if (lk.m % mr) rows(&lk, cg_i64(c, full), (int)(lk.m % mr));
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

/* Zero points with float activations: sums[m][g] = the sum of row m's
 * columns in group g, once per layer (not per panel). */
typedef struct sum_ctx {
    LLVMValueRef src, acc;
} sum_ctx;

static void sum_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    sum_ctx *s = ctx;
    LLVMValueRef v = cg_vload(c, s->src, i, mask, lanes);
    cg_store(c, LLVMBuildFAdd(c->b, cg_load(c, LLVMTypeOf(v), s->acc, 64), v, ""), s->acc, 64);
}

static void emit_group_sums(cg *c, const cg_packed *p, LLVMValueRef x, int64_t m, LLVMValueRef sums)
{
    int L = c->lanes;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, L);
    int64_t glen = p->group_words * p->per_word;
    sum_ctx sc = {NULL, cg_alloca(c, vt, "gsum")};
    cg_loop lm = cg_for(c, 0, m, 1, "row");
    cg_loop lg = cg_for(c, 0, p->n_groups, 1, "group");
    LLVMValueRef col = LLVMBuildMul(c->b, lg.iv, cg_i64(c, glen), "");
    sc.src = cg_gep(c, c->t_f32, x, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lm.iv, cg_i64(c, p->k), ""), col, ""));
    /* the last group may be short: its length is k - col */
    LLVMValueRef rest = LLVMBuildSub(c->b, cg_i64(c, p->k), col, "");
    LLVMValueRef len = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, rest, cg_i64(c, glen), ""), rest, cg_i64(c, glen), "");
    cg_store(c, LLVMConstNull(vt), sc.acc, 64);
    cg_vloop(c, len, L, sum_body, &sc);
    LLVMValueRef v = cg_load(c, vt, sc.acc, 64);
    LLVMValueRef args[2] = {cg_f32(c, 0), v};
    LLVMValueRef total = cg_fast(cg_intrinsic(c, "llvm.vector.reduce.fadd", &vt, 1, args, 2));
    cg_store(c, total, cg_gep(c, c->t_f32, sums, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lm.iv, cg_i64(c, p->n_groups), ""), lg.iv, "")), 4);
    cg_loop_end(c, &lg);
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
    if (p->a8 == CG_A8_EMULATE && p->zeros >= 0) emit_group_sums(c, p, xf, lk.m, lk.xsum); /* float sums of the rows used */
    return p->a8 == CG_A8_EMULATE ? xf : xq;
}

void cg_emit_linear(cg *c, int32_t node, const char *name)
{
    const ir_node *n = &c->g->nodes[node];
    int32_t wnode = n->inputs[1], bnode = n->n_inputs == 3 ? n->inputs[2] : -1;
    bool packed = c->g->nodes[wnode].op == IR_OP_WEIGHT;
    bool bias_param = bnode >= 0 && c->node_blob[bnode] < 0;
    const cg_packed *p = packed ? &c->packed[wnode] : NULL;
    bool act8 = p && p->a8 != CG_A8_NONE, scratch = act8 || (p && p->zeros >= 0);
    /* i32 name(ptr y, ptr x [, ptr w] [, ptr b] [, ptr scratch]) */
    LLVMTypeRef params[5] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr};
    int np = 2 + !packed + bias_param + scratch;
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
    if (act8) {
        x = emit_act8_prologue(c, n, p, x, LLVMGetParam(fn, (unsigned)(np - 1)), ctx);
    } else if (p->zeros >= 0) {
        LLVMValueRef sums = LLVMGetParam(fn, (unsigned)(np - 1));
        emit_group_sums(c, p, x, ir_node_count(n) / p->n, sums);
        cg_store(c, sums, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_XSUM)), 8);
    }
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
