/* emit_tile.c: the register tiles of the linear kernels.
 *
 * A tile is mr rows of x times np panels of the packed weight (np * lanes
 * output columns): mr * np accumulator vectors stay in registers across
 * the whole input dimension, each broadcast of an activation feeds np
 * weight vectors and each weight vector feeds mr rows. Weights are decoded
 * in registers (emit_linear.c's layouts):
 *
 *   f32 activations: the column's codes become floats (sign extension, a
 *   nibble table, FP8 bit moves), grouped formats multiply them by the
 *   group's scale as they are decoded (with zero points: q * s - z * s, one
 *   FMA), per-channel formats scale the finished sums once;
 *   int8 rows of x (VNNI / sdot): integer dot products of 4 byte pairs
 *   per lane into int32 sums per group, corrected for the codes' offset and
 *   zero points with the row's code sums, then scaled into float. With
 *   `:a8` each row of x is one int8 row; f32 activations for int8, int4,
 *   int3 and int2 weights are three (its digits, q_split_row_a8x3_ref),
 *   the tile runs over all of them and each row of y adds its digits'
 *   scaled sums.
 *
 * When mr * np is small (GEMV) each accumulator is split into several
 * chains (columns mod chains) so that enough FMAs are in flight. */
#include <string.h>

#include "codegen.h"

enum { MAX_ROWS = 12, MAX_PANELS = 2, MAX_CHAINS = 8 };

/* ---- loading and decoding ------------------------------------------------ */

/* A GEMV with quantized weights and f32 activations (decoded to float, or
 * three int8 digits) computes longer on each weight than the weight takes
 * to arrive: prefetching the weights this far ahead keeps memory busy
 * meanwhile (with the hardware prefetcher alone, loading and arithmetic
 * take turns). Measured on Zen 4 (4096x4096, cold, one core, medians):
 * int4 digits ~700 -> ~490 us, FP8 ~1030 -> ~850, int4 and int8 decoded to
 * float (no VNNI) ~920 -> ~640 and ~1040 -> ~820; the `:a8` GEMVs, whose
 * arithmetic is lighter, ran 15-40% slower with it, so they go without, as
 * do f32 weights. Into L2 (locality 2) for all but int8 codes with int8
 * digits, whose loop is the lightest of these: its loads wait on L2, and
 * prefetching into L1 (locality 3) took 11008x4096 from ~2300 to ~1900 us
 * (int4 digits and FP8 ran 30-60% slower that way). */
enum { PREFETCH_BYTES = 16384 };

static void prefetch(cg_linear *lk, LLVMValueRef ptr, int locality)
{
    cg *c = lk->c;
    LLVMValueRef args[4] = {cg_gep(c, c->t_i8, ptr, cg_i64(c, PREFETCH_BYTES)), cg_i32(c, 0),
                            cg_i32(c, locality), cg_i32(c, 1)};
    cg_intrinsic(c, "llvm.prefetch", &c->t_ptr, 1, args, 4);
}

/* Word `step` of panel `panel` (word layouts; for int3, word `step` of
 * its steps' words). */
static LLVMValueRef load_word(cg_linear *lk, LLVMValueRef panel, LLVMValueRef step,
                              int prefetch_locality)
{
    cg *c = lk->c;
    LLVMValueRef at = cg_mul_k(c, cg_add(c, cg_mul_k(c, panel, lk->p->words), step), c->lanes);
    LLVMValueRef ptr = cg_gep(c, c->t_i32, lk->codes, at);
    if (prefetch_locality) prefetch(lk, ptr, prefetch_locality);
    return cg_load(c, lk->vi, ptr, 4);
}

/* word >> n (n may be negative: a left shift; 0: the word). */
static LLVMValueRef shift_right(cg *c, LLVMValueRef word, int n)
{
    if (n > 0) return LLVMBuildLShr(c->b, word, cg_vsplat_i32(c, n, c->lanes), "");
    if (n < 0) return LLVMBuildShl(c->b, word, cg_vsplat_i32(c, -n, c->lanes), "");
    return word;
}

/* Column i of a step's words (emit_linear.c's layouts) as an integer whose
 * low `bits` bits are the code and whose higher bits are anything: int4
 * and int2 one shift; int3 the two low bits from word i / 16 and the high
 * bit from word 2, merged by a bit select. */
static LLVMValueRef raw_code(cg_linear *lk, LLVMValueRef *words, int i, int bits)
{
    cg *c = lk->c;
    if (bits != 3) return shift_right(c, words[0], bits * i);
    LLVMValueRef lo = shift_right(c, words[i / 16], 2 * (i % 16));
    LLVMValueRef hi = shift_right(c, words[2], i - 2); /* the high bit at bit 2 */
    LLVMValueRef m = cg_vsplat_i32(c, 3, c->lanes);
    return LLVMBuildOr(c->b, LLVMBuildAnd(c->b, lo, m, ""),
                       LLVMBuildAnd(c->b, hi, LLVMBuildNot(c->b, m, ""), ""), "");
}

/* The NF4 values of raw's low 4 bits (L lanes) without AVX-512: AVX2 two
 * 8-entry vpermps and a blend on bit 3; aarch64 tbl over the table's 64
 * bytes (each lane's index becomes its value's 4 byte indices); otherwise
 * (SSE) a select per bit. */
static LLVMValueRef nf4_lookup(cg *c, LLVMValueRef raw)
{
    LLVMBuilderRef b = c->b;
    int L = c->lanes;
    LLVMTypeRef vf = cg_vec(c, c->t_f32, L);
    LLVMValueRef code = LLVMBuildAnd(b, raw, cg_vsplat_i32(c, 15, L), "");
    if (c->target->arch == CG_ARCH_AARCH64) {
        LLVMValueRef idx =
            LLVMBuildAdd(b, LLVMBuildMul(b, code, cg_vsplat_i32(c, 0x04040404, L), ""),
                         cg_vsplat_i32(c, 0x03020100, L), "");
        LLVMTypeRef b16 = cg_vec(c, c->t_i8, 16);
        LLVMValueRef bytes = LLVMBuildBitCast(b, idx, cg_vec(c, c->t_i8, 4 * L), "");
        LLVMValueRef tab[5], tbytes[16];
        for (int t = 0; t < 4; t++) {
            for (int j = 0; j < 16; j++) {
                uint32_t u;
                memcpy(&u, &q_nf4_table[t * 4 + j / 4], 4);
                tbytes[j] = LLVMConstInt(c->t_i8, (u >> (8 * (j % 4))) & 0xFF, 0);
            }
            tab[t] = LLVMConstVector(tbytes, 16);
        }
        QMC_ASSERT(L == 8); /* two tbl of 16 index bytes */
        LLVMValueRef parts[2], sel[32];
        for (int h = 0; h < 2; h++) {
            for (int j = 0; j < 16; j++) sel[j] = cg_i32(c, 16 * h + j);
            tab[4] = LLVMBuildShuffleVector(b, bytes, LLVMGetPoison(LLVMTypeOf(bytes)),
                                            LLVMConstVector(sel, 16), "");
            parts[h] = cg_intrinsic(c, "llvm.aarch64.neon.tbl4", &b16, 1, tab, 5);
        }
        for (int j = 0; j < 32; j++) sel[j] = cg_i32(c, j);
        LLVMValueRef out =
            LLVMBuildShuffleVector(b, parts[0], parts[1], LLVMConstVector(sel, 32), "");
        return LLVMBuildBitCast(b, out, vf, "w");
    }
    if (L == 8 && cg_target_has(c->target, "avx2")) {
        LLVMValueRef lo[8], hi[8];
        for (int u = 0; u < 8; u++)
            lo[u] = cg_f32(c, q_nf4_table[u]), hi[u] = cg_f32(c, q_nf4_table[8 + u]);
        LLVMValueRef a1[2] = {LLVMConstVector(lo, 8), code}, a2[2] = {LLVMConstVector(hi, 8), code};
        LLVMValueRef vlo = cg_intrinsic(c, "llvm.x86.avx2.permps", NULL, 0, a1, 2);
        LLVMValueRef vhi = cg_intrinsic(c, "llvm.x86.avx2.permps", NULL, 0, a2, 2);
        LLVMValueRef top =
            LLVMBuildICmp(b, LLVMIntNE, LLVMBuildAnd(b, code, cg_vsplat_i32(c, 8, L), ""),
                          cg_vsplat_i32(c, 0, L), "");
        return LLVMBuildSelect(b, top, vhi, vlo, "w");
    }
    /* a binary tree of selects, bit 0 first */
    LLVMValueRef level[16];
    for (int u = 0; u < 16; u++) level[u] = cg_splat(c, cg_f32(c, q_nf4_table[u]), L);
    for (int bit = 0, n = 16; n > 1; bit++, n /= 2) {
        LLVMValueRef set =
            LLVMBuildICmp(b, LLVMIntNE, LLVMBuildAnd(b, code, cg_vsplat_i32(c, 1 << bit, L), ""),
                          cg_vsplat_i32(c, 0, L), "");
        for (int u = 0; u < n / 2; u++)
            level[u] = LLVMBuildSelect(b, set, level[2 * u + 1], level[2 * u], "");
    }
    return level[0];
}

/* Column i of a step of int4, int3, int2 or NF4 codes as floats. */
static LLVMValueRef nibble(cg_linear *lk, LLVMValueRef *words, int i)
{
    cg *c = lk->c;
    LLVMBuilderRef b = c->b;
    int L = c->lanes;
    q_format f = lk->p->f.format;
    int bits = q_format_bits(f);
    bool is_signed = q_format_is_signed(f), nf4 = f == QFMT_NF4;
    LLVMValueRef raw = raw_code(lk, words, i, bits);
    if (nf4 && !(L == 16 && c->target->arch == CG_ARCH_X86_64)) return nf4_lookup(c, raw);
    if (L == 16 && c->target->arch == CG_ARCH_X86_64) {
        /* vpermps reads only the low 4 bits of each index: the code
         * selects its value from a 16-entry table (repeated every 2^bits
         * entries, so the bits above the code do not matter), no masking */
        LLVMValueRef table[16];
        for (int u = 0; u < 16; u++) {
            int v = u & ((1 << bits) - 1);
            table[u] = nf4 ? cg_f32(c, q_nf4_table[u])
                           : cg_f32(c, is_signed && v >= 1 << (bits - 1) ? v - (1 << bits) : v);
        }
        LLVMValueRef args[2] = {LLVMConstVector(table, 16), raw};
        return cg_intrinsic(c, "llvm.x86.avx512.permvar.sf.512", NULL, 0, args, 2);
    }
    if (is_signed) {
        LLVMValueRef v = LLVMBuildShl(b, raw, cg_vsplat_i32(c, 32 - bits, L), "");
        v = LLVMBuildAShr(b, v, cg_vsplat_i32(c, 32 - bits, L), "q");
        return LLVMBuildSIToFP(b, v, lk->vf, "w");
    }
    LLVMValueRef v = LLVMBuildAnd(b, raw, cg_vsplat_i32(c, (1 << bits) - 1, L), "q");
    return LLVMBuildUIToFP(b, v, lk->vf, "w");
}

/* Where column col of a panel starts in the k-major layout. */
static LLVMValueRef column_ptr(cg_linear *lk, LLVMValueRef panel, LLVMValueRef col)
{
    cg *c = lk->c;
    LLVMValueRef at =
        cg_mul_k(c, cg_add(c, cg_mul_k(c, panel, lk->p->kcols), col), c->lanes * lk->p->elem_bytes);
    return cg_gep(c, c->t_i8, lk->codes, at);
}

/* Column col of a panel in the k-major layout (f32, int8, FP8) as floats.
 * FP8 codes become halves (or floats) whose value is the code's times a
 * power of two that the scales absorb: E4M3 s.eeee.mmm -> half
 * s.0eeee.mmm0000000 by a shift of the sign-extended byte and a mask; E5M2
 * is the top byte of a half. */
static LLVMValueRef column(cg_linear *lk, LLVMValueRef panel, LLVMValueRef col)
{
    cg *c = lk->c;
    LLVMBuilderRef b = c->b;
    int L = c->lanes;
    const cg_packed *p = lk->p;
    LLVMValueRef ptr = column_ptr(lk, panel, col);
    if (p->elem_bytes == 4) return cg_load(c, lk->vf, ptr, 4);
    if (p->elem_bytes == 2) { /* bf16: the top half of a float; f16: vcvtph2ps / fcvtl */
        LLVMValueRef h = cg_load(c, cg_vec(c, c->t_i16, L), ptr, 2);
        if (p->f.format == QFMT_F16)
            return LLVMBuildFPExt(b, LLVMBuildBitCast(b, h, cg_vec(c, c->t_f16, L), ""), lk->vf,
                                  "w");
        LLVMValueRef u =
            LLVMBuildShl(b, LLVMBuildZExt(b, h, lk->vi, ""), cg_vsplat_i32(c, 16, L), "");
        return LLVMBuildBitCast(b, u, lk->vf, "w");
    }
    LLVMValueRef bytes = cg_load(c, cg_vec(c, c->t_i8, L), ptr, 1);
    q_format f = p->f.format;
    if (f == QFMT_INT8) return LLVMBuildSIToFP(b, LLVMBuildSExt(b, bytes, lk->vi, ""), lk->vf, "w");
    bool e4m3 = f == QFMT_FP8_E4M3;
    if (p->fp8_via_half) {
        LLVMTypeRef h16 = cg_vec(c, c->t_i16, L);
        LLVMValueRef h =
            e4m3 ? LLVMBuildAnd(b,
                                LLVMBuildShl(b, LLVMBuildSExt(b, bytes, h16, ""),
                                             cg_splat(c, LLVMConstInt(c->t_i16, 7, 0), L), ""),
                                cg_splat(c, LLVMConstInt(c->t_i16, 0xBF80, 0), L), "")
                 : LLVMBuildShl(b, LLVMBuildZExt(b, bytes, h16, ""),
                                cg_splat(c, LLVMConstInt(c->t_i16, 8, 0), L), "");
        return LLVMBuildFPExt(b, LLVMBuildBitCast(b, h, cg_vec(c, c->t_f16, L), ""), lk->vf, "w");
    }
    LLVMValueRef s = LLVMBuildShl(b, LLVMBuildSExt(b, bytes, lk->vi, ""),
                                  cg_vsplat_i32(c, e4m3 ? 20 : 21, L), "");
    s = LLVMBuildAnd(b, s, cg_vsplat_i32(c, e4m3 ? (int32_t)0x87F00000 : (int32_t)0x8FE00000, L),
                     "");
    return LLVMBuildBitCast(b, s, lk->vf, "w");
}

/* The scale (f32/f16) or zero point (u8) vector of group gi in a panel. */
static LLVMValueRef group_vec(cg_linear *lk, LLVMValueRef base, LLVMValueRef panel, LLVMValueRef gi,
                              bool u8)
{
    cg *c = lk->c;
    int L = c->lanes;
    LLVMValueRef at = cg_mul_k(c, cg_add(c, cg_mul_k(c, panel, lk->p->n_groups), gi), L);
    if (u8)
        return LLVMBuildZExt(
            c->b, cg_load(c, cg_vec(c, c->t_i8, L), cg_gep(c, c->t_i8, base, at), 1), lk->vi, "z");
    if (lk->p->scales_f16)
        return LLVMBuildFPExt(c->b,
                              cg_load(c, cg_vec(c, c->t_f16, L), cg_gep(c, c->t_f16, base, at), 2),
                              lk->vf, "s");
    return cg_load(c, lk->vf, cg_gep(c, c->t_f32, base, at), 4);
}

/* x[row, col] as a scalar. */
static LLVMValueRef x_at(cg_linear *lk, LLVMValueRef row, LLVMValueRef col)
{
    cg *c = lk->c;
    return cg_load(c, c->t_f32, cg_gep(c, c->t_f32, lk->x, cg_add(c, cg_mul_k(c, row, lk->k), col)),
                   4);
}

/* ---- the output ------------------------------------------------------------- */

/* Bias and store of one row of one panel (masked in the last panel when n
 * is not a multiple of the lanes). */
static void store(cg_linear *lk, LLVMValueRef row, LLVMValueRef panel, LLVMValueRef v)
{
    cg *c = lk->c;
    int L = c->lanes;
    int64_t rem = lk->n % L;
    LLVMValueRef col = cg_mul_k(c, panel, L);
    LLVMValueRef yp = cg_gep(c, c->t_f32, lk->y, cg_add(c, cg_mul_k(c, row, lk->n), col));
    LLVMValueRef bp = lk->bias ? cg_gep(c, c->t_f32, lk->bias, col) : NULL;
    if (lk->shift) /* the model's activation zero point (act_model), whole panels */
        v = LLVMBuildFAdd(c->b, v, cg_load(c, lk->vf, cg_gep(c, c->t_f32, lk->shift, col), 4), "");
    if (!rem) {
        if (bp) v = LLVMBuildFAdd(c->b, v, cg_load(c, lk->vf, bp, 4), "");
        cg_store(c, v, yp, 4);
        return;
    }
    LLVMValueRef last = LLVMBuildICmp(c->b, LLVMIntEQ, panel, cg_i64(c, lk->p->panels - 1), "");
    LLVMBasicBlockRef bfull = cg_block(c, "store.full"), bpart = cg_block(c, "store.part"),
                      bdone = cg_block(c, "store.done");
    LLVMBuildCondBr(c->b, last, bpart, bfull);
    LLVMPositionBuilderAtEnd(c->b, bfull);
    cg_store(c, bp ? LLVMBuildFAdd(c->b, v, cg_load(c, lk->vf, bp, 4), "") : v, yp, 4);
    LLVMBuildBr(c->b, bdone);
    LLVMPositionBuilderAtEnd(c->b, bpart);
    LLVMValueRef mask = cg_lane_mask(c, L, rem);
    LLVMTypeRef tys[2] = {lk->vf, c->t_ptr};
    if (bp) {
        LLVMValueRef args[4] = {bp, cg_i32(c, 4), mask, LLVMConstNull(lk->vf)};
        v = LLVMBuildFAdd(c->b, v, cg_intrinsic(c, "llvm.masked.load", tys, 2, args, 4), "");
    }
    LLVMValueRef sargs[4] = {v, yp, cg_i32(c, 4), mask};
    cg_intrinsic(c, "llvm.masked.store", tys, 2, sargs, 4);
    LLVMBuildBr(c->b, bdone);
    LLVMPositionBuilderAtEnd(c->b, bdone);
}

/* ---- float activations ---------------------------------------------------------- */

typedef struct tile {
    cg_linear *lk;
    LLVMValueRef m0,
        panel[MAX_PANELS]; /* m0: the first row of x (of its int8 rows with int dots) */
    LLVMValueRef m0_out;   /* the first row of y */
    int mr, np, chains;    /* mr: rows of x (int8 rows: act_rows per row of y) */
    int prefetch; /* 0, or the locality to prefetch the weights with (see PREFETCH_BYTES) */
    LLVMValueRef acc[MAX_ROWS][MAX_PANELS][MAX_CHAINS + 1]; /* float sums (allocas) */
    LLVMValueRef isum[MAX_ROWS][MAX_PANELS];                /* int sums of a group (allocas) */
    LLVMValueRef scale[MAX_PANELS], neg_zs[MAX_PANELS]; /* the current group's, grouped formats */
    LLVMValueRef zero[MAX_PANELS];                      /* int: zero points of the group */
} tile;

static bool grouped(const cg_packed *p) { return p->f.group != 0; }

static LLVMValueRef row_of(tile *t, int r) { return cg_add(t->lk->c, t->m0, cg_i64(t->lk->c, r)); }

/* The group's scale (and -z * scale) vectors, for grouped float decoding. */
static void load_group(tile *t, LLVMValueRef gi)
{
    cg_linear *lk = t->lk;
    cg *c = lk->c;
    for (int j = 0; j < t->np; j++) {
        t->scale[j] = lk->scales ? group_vec(lk, lk->scales, t->panel[j], gi, false) : NULL;
        t->neg_zs[j] = NULL;
        if (lk->zeros) {
            LLVMValueRef z =
                LLVMBuildUIToFP(c->b, group_vec(lk, lk->zeros, t->panel[j], gi, true), lk->vf, "");
            t->neg_zs[j] = LLVMBuildFNeg(c->b, LLVMBuildFMul(c->b, z, t->scale[j], ""), "");
        }
    }
}

/* Grouped formats with few rows scale each group's sums (one multiply per
 * group) rather than each decoded weight vector (one per column). */
static bool scale_late(const tile *t)
{
    return grouped(t->lk->p) && !t->lk->zeros && t->mr * t->np < 4;
}

/* Accumulates columns col0 .. col0 + cols - 1 (one step) into the tile. */
static void float_step(tile *t, LLVMValueRef step, LLVMValueRef col0, int cols)
{
    cg_linear *lk = t->lk;
    cg *c = lk->c;
    const cg_packed *p = lk->p;
    LLVMValueRef words[MAX_PANELS][3] = {{0}};
    if (!p->kmajor)
        for (int j = 0; j < t->np; j++)
            for (int s = 0; s < p->step_words; s++) {
                LLVMValueRef at = p->step_words == 1
                                      ? step
                                      : cg_add(c, cg_mul_k(c, step, p->step_words), cg_i64(c, s));
                words[j][s] = load_word(lk, t->panel[j], at, s ? 0 : t->prefetch);
            }
    else if (t->prefetch) /* the step's columns: one prefetch per 64 bytes */
        for (int j = 0; j < t->np; j++)
            for (int at = 0; at < p->per_word * c->lanes * p->elem_bytes; at += 64)
                prefetch(lk, cg_gep(c, c->t_i8, column_ptr(lk, t->panel[j], col0), cg_i64(c, at)),
                         t->prefetch);
    for (int i = 0; i < cols; i++) {
        LLVMValueRef col = cg_add(c, col0, cg_i64(c, i)), w[MAX_PANELS];
        for (int j = 0; j < t->np; j++) {
            w[j] = p->kmajor ? column(lk, t->panel[j], col) : nibble(lk, words[j], i);
            if (grouped(p) && !scale_late(t))
                w[j] = t->neg_zs[j] ? cg_fmuladd(c, w[j], t->scale[j], t->neg_zs[j])
                                    : LLVMBuildFMul(c->b, w[j], t->scale[j], "");
        }
        int ch = scale_late(t) ? 1 + i % (t->chains - 1) : i % t->chains;
        for (int r = 0; r < t->mr; r++) {
            LLVMValueRef xb = cg_splat(c, x_at(lk, row_of(t, r), col), c->lanes);
            for (int j = 0; j < t->np; j++)
                cg_store(c, cg_fmuladd(c, xb, w[j], cg_load(c, lk->vf, t->acc[r][j][ch], 64)),
                         t->acc[r][j][ch], 64);
        }
    }
}

/* Steps [s_begin, s_end) (plus s_offset) and then tail_cols columns of step s_end. */
static void float_steps(tile *t, LLVMValueRef s_offset, int64_t s_begin, int64_t s_end,
                        int tail_cols)
{
    cg *c = t->lk->c;
    int pw = t->lk->p->per_word;
    if (s_end > s_begin) {
        cg_loop l = cg_for(c, s_begin, s_end, 1, "step");
        LLVMValueRef st = s_offset ? cg_add(c, l.iv, s_offset) : l.iv;
        float_step(t, st, cg_mul_k(c, st, pw), pw);
        cg_loop_end(c, &l);
    }
    if (tail_cols) {
        LLVMValueRef st = cg_i64(c, s_end);
        if (s_offset) st = cg_add(c, st, s_offset);
        float_step(t, st, cg_mul_k(c, st, pw), tail_cols);
    }
}

/* acc[r][j][0] += scale * (the sum of the group's chains), late scaling. */
static void fold_group(tile *t)
{
    cg *c = t->lk->c;
    for (int r = 0; r < t->mr; r++)
        for (int j = 0; j < t->np; j++) {
            LLVMValueRef g = cg_load(c, t->lk->vf, t->acc[r][j][1], 64);
            for (int ch = 2; ch < t->chains; ch++)
                g = LLVMBuildFAdd(c->b, g, cg_load(c, t->lk->vf, t->acc[r][j][ch], 64), "");
            cg_store(c, cg_fmuladd(c, g, t->scale[j], cg_load(c, t->lk->vf, t->acc[r][j][0], 64)),
                     t->acc[r][j][0], 64);
            for (int ch = 1; ch < t->chains; ch++)
                cg_store(c, LLVMConstNull(t->lk->vf), t->acc[r][j][ch], 64);
        }
}

static void float_tile(tile *t)
{
    cg_linear *lk = t->lk;
    cg *c = lk->c;
    const cg_packed *p = lk->p;
    int64_t full_steps = lk->k / p->per_word, last = p->n_groups - 1;
    int tail = (int)(lk->k % p->per_word);
    bool late = scale_late(t);
    if (grouped(p) && last > 0) {
        cg_loop gl = cg_for(c, 0, last, 1, "group");
        load_group(t, gl.iv);
        float_steps(t, cg_mul_k(c, gl.iv, p->group_words), 0, p->group_words, 0);
        if (late) fold_group(t);
        cg_loop_end(c, &gl);
    }
    if (grouped(p)) load_group(t, cg_i64(c, last));
    float_steps(t, NULL, grouped(p) ? last * p->group_words : 0, full_steps, tail);
    if (late) fold_group(t);
    for (int j = 0; j < t->np; j++) {
        /* per-channel formats scale the finished sums */
        LLVMValueRef s = !grouped(p) && lk->scales
                             ? group_vec(lk, lk->scales, t->panel[j], cg_i64(c, 0), false)
                             : NULL;
        for (int r = 0; r < t->mr; r++) {
            LLVMValueRef v = cg_load(c, lk->vf, t->acc[r][j][0], 64);
            for (int ch = 1; ch < t->chains; ch++)
                v = LLVMBuildFAdd(c->b, v, cg_load(c, lk->vf, t->acc[r][j][ch], 64), "");
            if (s) v = LLVMBuildFMul(c->b, v, s, "");
            store(lk, row_of(t, r), t->panel[j], v);
        }
    }
}

/* ---- int8 activations ------------------------------------------------------------- */

/* (word >> shift) & the byte mask repeated in every byte. */
static LLVMValueRef byte_field(cg *c, LLVMValueRef word, int shift, uint8_t mask)
{
    return LLVMBuildAnd(c->b, shift_right(c, word, shift),
                        cg_vsplat_i32(c, (int32_t)(mask * 0x01010101u), c->lanes), "part");
}

/* Part p of a step's words (emit_linear.c's a8 layouts): 4 consecutive
 * columns' codes, one per byte. */
static LLVMValueRef int_part(cg *c, LLVMValueRef *words, int per_word, int p)
{
    switch (per_word) {
    case 4: return words[0];
    case 8: return byte_field(c, words[0], 4 * p, 0x0F);
    case 16: return byte_field(c, words[0], 2 * p, 0x03);
    default: break;
    }
    if (p < 6) return byte_field(c, words[p / 2], 3 * (p % 2), 0x07);
    return LLVMBuildOr(c->b, byte_field(c, words[p - 6], 6, 0x03),
                       byte_field(c, words[2], p - 2, 0x04), "");
}

/* One step: per_word columns of every row and panel into the int sums,
 * 4 columns (a part) per integer dot product. */
static void int_step(tile *t, LLVMValueRef step)
{
    cg_linear *lk = t->lk;
    cg *c = lk->c;
    const cg_packed *p = lk->p;
    int L = c->lanes, S = p->step_words, n_parts = p->per_word / 4;
    LLVMValueRef words[MAX_PANELS][3];
    for (int j = 0; j < t->np; j++)
        for (int s = 0; s < S; s++)
            words[j][s] = load_word(lk, t->panel[j],
                                    S == 1 ? step : cg_add(c, cg_mul_k(c, step, S), cg_i64(c, s)),
                                    t->prefetch);
    LLVMValueRef col = cg_mul_k(c, step, p->per_word);
    for (int pi = 0; pi < n_parts; pi++) {
        LLVMValueRef part[MAX_PANELS];
        for (int j = 0; j < t->np; j++) part[j] = int_part(c, words[j], p->per_word, pi);
        for (int r = 0; r < t->mr; r++) {
            LLVMValueRef off =
                cg_add(c, cg_mul_k(c, row_of(t, r), p->kcols), cg_add(c, col, cg_i64(c, 4 * pi)));
            LLVMValueRef xb =
                cg_splat(c, cg_load(c, c->t_i32, cg_gep(c, c->t_i8, lk->x, off), 1), L);
            for (int j = 0; j < t->np; j++)
                cg_store(c,
                         cg_int_dot(c, lk->p->a8 == CG_A8_VNNI,
                                    cg_load(c, lk->vi, t->isum[r][j], 64), part[j], xb),
                         t->isum[r][j], 64);
        }
    }
}

/* isum - offset * xsum - z * xsum as floats, for row r, panel j, group gi
 * (the prologue stored offset * xsum when the codes have an offset, the
 * plain sum with zero points). */
static LLVMValueRef corrected(tile *t, int r, int j, LLVMValueRef gi)
{
    cg_linear *lk = t->lk;
    cg *c = lk->c;
    const cg_packed *p = lk->p;
    LLVMValueRef v = cg_load(c, lk->vi, t->isum[r][j], 64);
    if (p->code_offset || lk->zeros) {
        LLVMValueRef at = cg_add(c, cg_mul_k(c, row_of(t, r), p->n_groups), gi);
        LLVMValueRef xs =
            cg_splat(c, cg_load(c, c->t_i32, cg_gep(c, c->t_i32, lk->xsum, at), 4), c->lanes);
        v = LLVMBuildSub(c->b, v, lk->zeros ? LLVMBuildMul(c->b, t->zero[j], xs, "") : xs, "");
    }
    return LLVMBuildSIToFP(c->b, v, lk->vf, "");
}

/* The int sums of group gi over its steps, folded into the float sums. */
static void int_group(tile *t, LLVMValueRef gi, LLVMValueRef s0, int64_t n_steps)
{
    cg_linear *lk = t->lk;
    cg *c = lk->c;
    for (int r = 0; r < t->mr; r++)
        for (int j = 0; j < t->np; j++) cg_store(c, LLVMConstNull(lk->vi), t->isum[r][j], 64);
    cg_loop l = cg_for(c, 0, n_steps, 1, "step");
    int_step(t, cg_add(c, l.iv, s0));
    cg_loop_end(c, &l);
    for (int j = 0; j < t->np; j++) {
        LLVMValueRef s = group_vec(lk, lk->scales, t->panel[j], gi, false);
        if (lk->zeros) t->zero[j] = group_vec(lk, lk->zeros, t->panel[j], gi, true);
        for (int r = 0; r < t->mr; r++)
            cg_store(
                c,
                cg_fmuladd(c, corrected(t, r, j, gi), s, cg_load(c, lk->vf, t->acc[r][j][0], 64)),
                t->acc[r][j][0], 64);
    }
}

static void int_tile(tile *t)
{
    cg_linear *lk = t->lk;
    cg *c = lk->c;
    const cg_packed *p = lk->p;
    int64_t last = p->n_groups - 1;
    if (last > 0) {
        cg_loop gl = cg_for(c, 0, last, 1, "group");
        int_group(t, gl.iv, cg_mul_k(c, gl.iv, p->group_words), p->group_words);
        cg_loop_end(c, &gl);
    }
    int_group(t, cg_i64(c, last), cg_i64(c, last * p->group_words),
              p->words / p->step_words - last * p->group_words);
    /* each row of y: its int8 rows' sums times their scales, the smallest
     * digit first */
    int D = p->act_rows;
    for (int r0 = 0; r0 < t->mr; r0 += D)
        for (int j = 0; j < t->np; j++) {
            LLVMValueRef v = NULL;
            for (int r = r0 + D - 1; r >= r0; r--) {
                LLVMValueRef xs = cg_splat(
                    c, cg_load(c, c->t_f32, cg_gep(c, c->t_f32, lk->xscale, row_of(t, r)), 4),
                    c->lanes);
                LLVMValueRef a = cg_load(c, lk->vf, t->acc[r][j][0], 64);
                v = v ? cg_fmuladd(c, a, xs, v) : LLVMBuildFMul(c->b, a, xs, "");
            }
            store(lk, cg_add(c, t->m0_out, cg_i64(c, r0 / D)), t->panel[j], v);
        }
}

/* ---- the tile ----------------------------------------------------------------------- */

void cg_tile_shape(const cg *c, const cg_packed *p, int64_t m, int *mr, int *np)
{
    bool int_dot = cg_packed_int_dot(p);
    *np = c->lanes == 16 ? 2 : 1;
    /* registers: mr * np sums (twice that for grouped int8: int and float;
     * each row of y needs act_rows int8 rows' sums) */
    *mr = c->lanes == 16 ? (int_dot && p->f.group ? 4 : 8) : 4;
    if (int_dot && *mr / p->act_rows >= 1) *mr /= p->act_rows;
    /* a few rows (GEMV): one panel at a time, its weights streamed once,
     * several FMA chains per row instead */
    if (m < 4) *np = 1, *mr = (int)m;
}

void cg_tile(cg_linear *lk, LLVMValueRef m0, int mr, LLVMValueRef p0, int np)
{
    cg *c = lk->c;
    const cg_packed *p = lk->p;
    bool int_dot = cg_packed_int_dot(p);
    int rows = int_dot ? p->act_rows : 1; /* of x per row of y */
    tile t = {.lk = lk,
              .m0 = rows > 1 ? cg_mul_k(c, m0, rows) : m0,
              .m0_out = m0,
              .mr = mr * rows,
              .np = np,
              .chains = 1};
    if (lk->m < 4 && p->scales >= 0 && p->act_rows != 1) /* see PREFETCH_BYTES */
        t.prefetch = int_dot && p->per_word == 4 ? 3 : 2;
    QMC_ASSERT(t.mr <= MAX_ROWS);
    if (!int_dot)
        while (t.chains * 2 * mr * np <= MAX_CHAINS && t.chains * 2 <= p->per_word) t.chains *= 2;
    if (!int_dot && scale_late(&t)) t.chains += 1; /* chain 0 holds the scaled total */
    for (int j = 0; j < np; j++) t.panel[j] = cg_add(c, p0, cg_i64(c, j));
    for (int r = 0; r < t.mr; r++)
        for (int j = 0; j < np; j++) {
            for (int ch = 0; ch < t.chains; ch++) {
                t.acc[r][j][ch] = cg_alloca(c, lk->vf, "acc");
                cg_store(c, LLVMConstNull(lk->vf), t.acc[r][j][ch], 64);
            }
            if (int_dot) t.isum[r][j] = cg_alloca(c, lk->vi, "isum");
        }
    if (int_dot)
        int_tile(&t);
    else
        float_tile(&t);
}
