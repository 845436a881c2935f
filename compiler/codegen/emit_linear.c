/* emit_linear.c: linear layers, y = x·Wᵀ + b, with the weight decoded in
 * registers inside the dot-product loop; the weights are never expanded to
 * f32 in memory.
 *
 * Layouts (cg_pack_layout, cg_pack_data): output rows are grouped in
 * panels of `lanes` rows. f32, int8 and FP8 weights (f32 activations) are
 * k-major within a panel: the panel's values of one input column are
 * adjacent, so one load brings a column for all its rows. int4, int3 and
 * int2 weights, and int8 weights for integer dot products, come in 4-byte
 * words per row (int3: steps of three words) with the panel's words
 * adjacent; for integer dot products the words hold parts of 4 columns
 * that a shift and a mask spread to bytes (pack_codes_a8). Scales (and zero points) per group are
 * vectors in panel order, in arrays of their own.
 *
 * This file lays out and packs weights (one at a time, for weights.c),
 * turns activation rows into int8 rows (`:a8` codes, or the three digits of
 * f32 rows for integer dot products), and emits the layer's function and
 * its panels function (run by the thread pool over blocks of panels), which
 * take the packed weight as arguments; emit_tile.c emits the register
 * tiles. Since shapes are known, every loop bound is a constant. */
#include <math.h>
#include <string.h>

#include "codegen.h"

/* ---- packing ------------------------------------------------------------ */

/* k-major: the panel's values of each column adjacent (f32, bf16/f16 or
 * code bytes); rows past n and columns past the data stay zero. */
static void pack_kmajor(const cg_packed *p, const ir_qweight *q, const float *w32, uint8_t *out)
{
    int L = p->lanes;
    int64_t cols = q ? q->kp : p->k, stride = cols;
    for (int64_t pn = 0; pn < p->panels; pn++) {
        int rows = (int)(p->n - pn * L < L ? p->n - pn * L : L);
        uint8_t *panel = out + pn * p->kcols * L * (size_t)p->elem_bytes;
        for (int j = 0; j < rows; j++) {
            int64_t row = pn * L + j;
            if (q && p->elem_bytes == 2) { /* bf16, f16 */
                const uint16_t *src = (const uint16_t *)(const void *)q->codes + row * stride;
                uint16_t *dst = (uint16_t *)(void *)panel;
                for (int64_t col = 0; col < cols; col++) dst[col * L + j] = src[col];
            } else if (q) {
                const uint8_t *src = q->codes + row * stride;
                for (int64_t col = 0; col < cols; col++) panel[col * L + j] = src[col];
            } else {
                const float *src = w32 + row * stride;
                float *dst = (float *)panel;
                for (int64_t col = 0; col < cols; col++) dst[col * L + j] = src[col];
            }
        }
    }
}

/* int4 words: 8 columns of a row per 4-byte word, element 2b in the low
 * nibble of byte b and 2b + 1 in the high one (ONNX's order). */
static void pack_nibbles(const cg_packed *p, const ir_qweight *q, uint8_t *out)
{
    int L = p->lanes;
    for (int64_t pn = 0; pn < p->panels; pn++)
        for (int64_t wd = 0; wd < p->words; wd++)
            for (int j = 0; j < L; j++) {
                int64_t row = pn * L + j;
                uint8_t *word = out + ((pn * p->words + wd) * L + j) * 4;
                if (row >= p->n) continue;
                const uint8_t *c = q->codes + row * q->kp + wd * 8;
                if (wd * 8 + 8 <= q->kp) { /* a whole word of columns */
                    for (int b = 0; b < 4; b++)
                        word[b] = (uint8_t)((c[2 * b] & 0xF) | (c[2 * b + 1] & 0xF) << 4);
                    continue;
                }
                for (int i = 0; wd * 8 + i < q->kp; i++)
                    word[i / 2] |= (uint8_t)((c[i] & 0xF) << (4 * (i % 2)));
            }
}

/* int2 and int3 steps (kp is a multiple of the step: groups are):
 *   int2, one word a step: column i of 16 at bits 2i;
 *   int3, three words a step of 32 columns: the low two bits of columns
 *   0-15 (bits 2i) and 16-31 (bits 2(i - 16)), then the high bit of each
 *   (bit i), so that a column takes two shifts and a bit select. */
static void pack_low_bits(const cg_packed *p, const ir_qweight *q, uint8_t *out)
{
    int L = p->lanes, S = p->step_words;
    int64_t steps = p->words / S;
    for (int64_t pn = 0; pn < p->panels; pn++)
        for (int64_t st = 0; st < steps; st++)
            for (int j = 0; j < L; j++) {
                int64_t row = pn * L + j;
                if (row >= p->n) continue;
                const uint8_t *c = q->codes + row * q->kp + st * p->per_word;
                uint32_t w[3] = {0, 0, 0};
                for (int i = 0; i < p->per_word; i++) {
                    uint32_t v = c[i] & (S == 3 ? 7u : 3u);
                    w[i / 16] |= (v & 3u) << (2 * (i % 16));
                    if (S == 3) w[2] |= (v >> 2) << i;
                }
                for (int s = 0; s < S; s++)
                    memcpy(out + ((pn * p->words + st * S + s) * L + j) * 4, &w[s], 4);
            }
}

static void pack_scales(const cg_packed *p, const ir_qweight *q, void *scales, uint8_t *zeros)
{
    int L = p->lanes;
    for (int64_t pn = 0; pn < p->panels; pn++)
        for (int64_t gi = 0; gi < p->n_groups; gi++)
            for (int j = 0; j < L; j++) {
                int64_t row = pn * L + j, at = (pn * p->n_groups + gi) * L + j;
                float s = row < p->n ? q->scales[row * q->n_groups + gi] * p->scale_factor : 0.0f;
                if (p->scales_f16)
                    ((uint16_t *)scales)[at] = q_f16_from_f32(s);
                else
                    ((float *)scales)[at] = s;
                if (zeros)
                    zeros[at] = row < p->n ? (uint8_t)q->zero_points[row * q->n_groups + gi] : 0;
            }
}

/* a8 layouts: weight bytes are unsigned (code + 128 for int8 on VNNI,
 * code + 2^(bits - 1) for symmetric low-bit codes, the code itself with
 * zero points) so one integer dot product instruction multiplies them
 * with signed activation bytes. A step's words hold parts of 4
 * consecutive columns, part p's column 4p + b in byte b of every word,
 * which a shift and a mask (emit_tile.c) spread to the bytes:
 *   int8: one part, the bytes themselves;
 *   int4: part p at bits 4p (2 parts);
 *   int2: part p at bits 2p (4 parts);
 *   int3, three words a step of 32 columns (8 parts): parts 0-5 at bits
 *   3(p % 2) of word p / 2; parts 6 and 7 have their low two bits at bits
 *   6-7 of words 0 and 1 and their high bit at bit p of word 2. */
static void place_a8(uint8_t *words, int per_word, int i, uint32_t u)
{
    int part = i / 4, b = i % 4;
    switch (per_word) {
    case 4: words[b] = (uint8_t)u; return;
    case 8: words[b] |= (uint8_t)((u & 0xF) << (4 * part)); return;
    case 16: words[b] |= (uint8_t)((u & 3) << (2 * part)); return;
    default: break;
    }
    QMC_ASSERT(per_word == 32);
    if (part < 6) {
        words[part / 2 * 4 + b] |= (uint8_t)((u & 7) << (3 * (part % 2)));
        return;
    }
    words[(part - 6) * 4 + b] |= (uint8_t)((u & 3) << 6);
    words[8 + b] |= (uint8_t)((u >> 2 & 1) << part);
}

static void pack_codes_a8(const cg_packed *p, const ir_qweight *q, uint8_t *out)
{
    int L = p->lanes, S = p->step_words;
    bool is_signed = q_format_is_signed(q->f.format);
    for (int64_t pn = 0; pn < p->panels; pn++)
        for (int64_t st = 0; st < p->words / S; st++)
            for (int j = 0; j < L; j++) {
                int64_t row = pn * L + j;
                if (row >= p->n) continue;
                uint8_t w[12] = {0};
                for (int i = 0; i < p->per_word; i++) {
                    int64_t col = st * p->per_word + i;
                    const uint8_t *c = q->codes + row * q->kp + col;
                    int32_t code = col >= q->kp ? 0 : is_signed ? (int32_t)(int8_t)*c : *c;
                    place_a8(w, p->per_word, i, (uint32_t)(code + p->code_offset));
                }
                for (int s = 0; s < S; s++)
                    memcpy(out + ((pn * p->words + st * S + s) * L + j) * 4, w + 4 * s, 4);
            }
}

static int a8_kind(const cg_target *t)
{
    if (!cg_target_int8_dot(t)) return CG_A8_EMULATE;
    return t->arch == CG_ARCH_AARCH64 ? CG_A8_SDOT : CG_A8_VNNI;
}

void cg_print_kernels(FILE *f, sup_arena *arena, const ir_graph *g, const ir_plan *plan,
                      const cg_target *t)
{
    bool dot = cg_target_int8_dot(t);
    const char *instr = t->arch == CG_ARCH_AARCH64 ? "sdot" : "vpdpbusd";
    /* one line per kind of kernel, naming its layers' weights */
    const char **kinds = sup_arena_alloc(arena, sizeof *kinds * (size_t)g->n_nodes);
    int n_kinds = 0;
    int32_t *kind_of = sup_arena_alloc(arena, sizeof *kind_of * (size_t)g->n_nodes);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        kind_of[i] = -1;
        const ir_node *n = &g->nodes[i];
        if (n->op != IR_OP_LINEAR || g->nodes[n->inputs[1]].op != IR_OP_WEIGHT) continue;
        const ir_qweight *q = g->nodes[n->inputs[1]].qw;
        const char *fmt = q ? q_precision_name(arena, &q->f) : "f32";
        int rows = ir_act_int8_rows(q, dot);
        const char *k;
        if (!q)
            k = "f32 weights, FMA";
        else if (rows == IR_A8X3_DIGITS)
            k = sup_arena_printf(
                arena, "%s codes x f32 activations as three int8 digits (f32-accurate), %s", fmt,
                instr);
        else if (rows == 1)
            k = sup_arena_printf(arena, "%s codes x int8 activations (%s scale), %s", fmt,
                                 q->f.act_model       ? "the model's"
                                 : q->f.act_scale > 0 ? "calibrated"
                                                      : "per-row",
                                 dot ? instr : "in float (no integer dot product)");
        else
            k = sup_arena_printf(arena, "%s codes decoded to float in registers, FMA", fmt);
        int j = 0;
        while (j < n_kinds && strcmp(kinds[j], k)) j++;
        if (j == n_kinds) kinds[n_kinds++] = k;
        kind_of[i] = j;
    }
    if (!n_kinds) return;
    fprintf(f, "kernels for %s (%s):\n", t->cpu, t->triple);
    for (int j = 0; j < n_kinds; j++) {
        fprintf(f, "  %s:", kinds[j]);
        for (int32_t i = 0; i < g->n_nodes; i++)
            if (kind_of[i] == j) fprintf(f, " %s", g->nodes[g->nodes[i].inputs[1]].name);
        fprintf(f, "\n");
    }
    /* layers that read the int8 rows an earlier one made (lower.c decided:
     * their scratch is its scratch, which stays taken until the last of
     * them, so the nearest earlier maker at that offset is theirs) */
    bool any = false;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const ir_buffer *b = &plan->buf[i];
        if (kind_of[i] < 0 || !b->scratch_bytes || b->reuses_act_rows) continue;
        bool first = true;
        for (int32_t j = i + 1; j < g->n_nodes; j++) {
            const ir_buffer *bj = &plan->buf[j];
            if (bj->scratch_bytes && bj->scratch_offset == b->scratch_offset &&
                !bj->reuses_act_rows)
                break;
            if (!bj->reuses_act_rows || bj->scratch_offset != b->scratch_offset) continue;
            if (!any) fprintf(f, "  int8 rows made once for layers with the same input:");
            if (first) fprintf(f, " %s", g->nodes[g->nodes[i].inputs[1]].name);
            fprintf(f, "+%s", g->nodes[g->nodes[j].inputs[1]].name);
            any = true, first = false;
        }
    }
    if (any) fprintf(f, "\n");
}

void cg_pack_layout(const cg_target *t, int lanes, const ir_node *w, cg_packed *p)
{
    const ir_qweight *q = w->qw;
    int L = lanes;
    memset(p, 0, sizeof *p);
    p->f = w->qformat;
    p->lanes = lanes;
    p->n = w->shape[0];
    p->k = w->shape[1];
    p->panels = (p->n + L - 1) / L;
    p->scale_factor = 1.0f;
    p->codes = p->scales = p->zeros = p->shift = -1;
    p->act_rows = ir_act_int8_rows(q, cg_target_int8_dot(t));
    p->a8 = p->act_rows ? a8_kind(t) : CG_A8_NONE;
    bool int_dot = cg_packed_int_dot(p);
    int bits = q ? q_format_bits(q->f.format) : 32;
    p->per_word = bits == 4 ? 8 : bits == 3 ? 32 : bits == 2 ? 16 : 4;
    p->step_words = bits == 3 ? 3 : 1;
    p->kmajor = bits >= 8 && !int_dot;
    p->elem_bytes = q ? q_format_code_bytes(q->f.format) : 4;
    int64_t kp = q ? q->kp : p->k;
    p->words = (kp + p->per_word - 1) / p->per_word * p->step_words;
    p->kcols = p->words / p->step_words * p->per_word;
    p->n_groups = q ? q->n_groups : 1;
    p->group_words = q ? q->group / p->per_word : p->words;
    if (q && !q->f.group) p->group_words = p->words; /* per channel: one group */
    if (q && q_format_is_fp8(q->f.format)) {
        /* AVX-512: the float bit moves (4 ops for 16 weights) beat a
         * 512-bit vcvtph2ps (measured 18% faster GEMV on Zen 4) */
        p->fp8_via_half = t->arch == CG_ARCH_AARCH64 ||
                          (cg_target_has(t, "f16c") && !cg_target_has(t, "avx512f"));
        bool e4m3 = q->f.format == QFMT_FP8_E4M3;
        p->scale_factor = p->fp8_via_half ? (e4m3 ? 256.0f : 1.0f) : (e4m3 ? 0x1p120f : 0x1p112f);
    }
    p->code_bytes = p->kmajor ? (size_t)(p->panels * p->kcols * L * p->elem_bytes)
                              : (size_t)(p->panels * p->words * L * 4);
    if (int_dot) {
        bool int8 = q->f.format == QFMT_INT8;
        p->code_offset = int8                              ? (p->a8 == CG_A8_VNNI ? 128 : 0)
                         : q_format_is_signed(q->f.format) ? 1 << (bits - 1)
                                                           : 0;
        QMC_ASSERT(bits >= 4 || q->f.group);            /* kp is a multiple of the step */
        QMC_ASSERT(!(p->code_offset && q->zero_point)); /* the sums of x serve one correction */
    }
    if (q && p->act_rows == 1 && q->f.act_model && q->f.act_zero != 0)
        p->shift_bytes = (size_t)(p->panels * L) * sizeof(float);
    if (!q || p->elem_bytes == 2) return; /* f32, bf16, f16: no scales */
    p->scales_f16 = q->f.group != 0 && !q->f.scale_f32;
    size_t n_scales = (size_t)(p->panels * p->n_groups * L);
    p->scale_bytes = n_scales * (p->scales_f16 ? 2 : 4);
    p->zero_bytes = q->zero_point ? n_scales : 0;
}

/* The model's activation zero point z (act_model): the kernels multiply
 * the codes c, whose values are (c - z) * s, so each output adds
 * -z * s * (the sum of its row of the quantized weight), computed here in
 * double from the codes, scales and zero points. */
static void pack_shift(const cg_packed *p, const ir_qweight *q, float *shift)
{
    int L = p->lanes;
    for (int64_t r = 0; r < p->panels * L; r++) {
        double sum = 0;
        for (int64_t g = 0; r < p->n && g < q->n_groups; g++) {
            int64_t part = 0, z = q->zero_points ? q->zero_points[r * q->n_groups + g] : 0;
            for (int64_t j = g * q->group; j < (g + 1) * q->group && j < q->kp; j++) {
                uint8_t b = q->codes[r * q->kp + j];
                part += (q->f.format == QFMT_UINT4 ? (int64_t)b : (int64_t)(int8_t)b) - z;
            }
            sum += (double)q->scales[r * q->n_groups + g] * (double)part;
        }
        shift[r] = (float)(-(double)q->f.act_zero * (double)q->f.act_scale * sum);
    }
}

void cg_pack_data(const cg_packed *p, const ir_qweight *q, const float *w32, uint8_t *codes,
                  void *scales, uint8_t *zeros, float *shift)
{
    QMC_ASSERT(q ? q->codes && q->scales && (q->zero_points != NULL) == (zeros != NULL) : !!w32);
    memset(codes, 0, p->code_bytes);
    if (cg_packed_int_dot(p))
        pack_codes_a8(p, q, codes);
    else if (p->kmajor)
        pack_kmajor(p, q, w32, codes);
    else if (p->per_word == 8)
        pack_nibbles(p, q, codes);
    else
        pack_low_bits(p, q, codes);
    if (q && p->scale_bytes) pack_scales(p, q, scales, zeros);
    QMC_ASSERT((shift != NULL) == (p->shift_bytes > 0));
    if (shift) pack_shift(p, q, shift);
}

/* ---- int8 activations (`:a8`) ------------------------------------------------- */

/* What a linear layer's function hands its panels function, by slot. */
enum {
    A8_CTX_X,
    A8_CTX_Y,
    A8_CTX_BIAS,
    A8_CTX_XSCALE,
    A8_CTX_XSUM,
    A8_CTX_CODES,
    A8_CTX_SCALES,
    A8_CTX_ZEROS,
    A8_CTX_SHIFT,
    A8_CTX_SIZE
};

enum { MAX_DIGITS = IR_A8X3_DIGITS };

typedef struct quant_row {
    LLVMValueRef src, qf, scale, amax; /* row in; floats out (emulation); its scale; max |x| */
    LLVMValueRef inv;                  /* three digits: units of scale / 65536 per unit of x */
    LLVMValueRef total;                /* sum of x * 0: 0, or NaN when x has a NaN or an inf */
    int digits;                        /* int8 rows made of the row (ir_act_int8_rows) */
    int32_t lo, hi, zero;              /* `:a8` codes: clamp(rint(x / scale) + zero, lo, hi) */
    LLVMValueRef q8[MAX_DIGITS], acc[MAX_DIGITS]; /* int8 codes out and their sums, per digit */
} quant_row;

static void amax_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    quant_row *qr = ctx;
    LLVMValueRef x = cg_vload(c, qr->src, i, mask, lanes);
    LLVMTypeRef vt = LLVMTypeOf(x);
    LLVMValueRef ax = cg_intrinsic(c, "llvm.fabs", &vt, 1, &x, 1);
    LLVMValueRef args[2] = {cg_load(c, vt, qr->amax, 64), ax};
    /* a plain vmaxps: NaN and inf reach the scales through the total */
    LLVMValueRef m = cg_intrinsic(c, "llvm.maxnum", &vt, 1, args, 2);
    LLVMSetFastMathFlags(m, LLVMFastMathNoNaNs);
    cg_store(c, m, qr->amax, 64);
    LLVMValueRef zero_or_nan =
        LLVMBuildFMul(c->b, x, LLVMConstNull(vt), ""); /* no overflow, unlike a sum of x */
    cg_store(c, LLVMBuildFAdd(c->b, cg_load(c, vt, qr->total, 64), zero_or_nan, ""), qr->total, 64);
}

/* clamp(rint(v), -limit, limit), still in float (NaN becomes limit). */
static LLVMValueRef round_clamp(cg *c, LLVMValueRef v, int lanes, int32_t limit)
{
    LLVMTypeRef vt = LLVMTypeOf(v);
    v = cg_intrinsic(c, "llvm.rint", &vt, 1, &v, 1);
    LLVMValueRef hi[2] = {v, cg_splat(c, cg_f32(c, (float)limit), lanes)};
    v = cg_intrinsic(c, "llvm.minnum", &vt, 1, hi, 2);
    LLVMValueRef lo[2] = {v, cg_splat(c, cg_f32(c, (float)-limit), lanes)};
    return cg_intrinsic(c, "llvm.maxnum", &vt, 1, lo, 2);
}

static LLVMValueRef to_int(cg *c, LLVMValueRef v, LLVMValueRef mask, int lanes)
{
    LLVMValueRef q = LLVMBuildFPToSI(c->b, v, cg_vec(c, c->t_i32, lanes), "q");
    return mask ? LLVMBuildSelect(c->b, mask, q, LLVMConstNull(LLVMTypeOf(q)), "") : q;
}

static void store_bytes(cg *c, LLVMValueRef q, LLVMValueRef base, LLVMValueRef i, LLVMValueRef mask,
                        int lanes)
{
    LLVMValueRef b8 = LLVMBuildTrunc(c->b, q, cg_vec(c, c->t_i8, lanes), "");
    LLVMValueRef ptr = cg_gep(c, c->t_i8, base, i);
    if (mask) {
        LLVMTypeRef tys[2] = {LLVMTypeOf(b8), c->t_ptr};
        LLVMValueRef args[4] = {b8, ptr, cg_i32(c, 1), mask};
        cg_intrinsic(c, "llvm.masked.store", tys, 2, args, 4);
    } else {
        cg_store(c, b8, ptr, 1);
    }
}

/* x's `:a8` codes, clamp(rint(x / scale), -127, 127), or with the model's
 * zero point z clamp(rint(x / scale) + z, -128, 127), as i32 lanes. */
static LLVMValueRef a8_codes(cg *c, const quant_row *qr, LLVMValueRef x, LLVMValueRef mask,
                             int lanes)
{
    LLVMValueRef v = LLVMBuildFDiv(c->b, x, cg_splat(c, qr->scale, lanes), "");
    if (qr->lo == -127 && qr->zero == 0)
        return to_int(c, round_clamp(c, v, lanes, 127), mask, lanes);
    /* clamped to [lo - z, hi - z] first (integers: the same as after
     * rounding), NaN to lo - z as q_int_encode */
    LLVMTypeRef vt = LLVMTypeOf(v);
    v = cg_intrinsic(c, "llvm.rint", &vt, 1, &v, 1);
    LLVMValueRef hi[2] = {v, cg_splat(c, cg_f32(c, (float)(qr->hi - qr->zero)), lanes)};
    v = cg_intrinsic(c, "llvm.minnum", &vt, 1, hi, 2);
    LLVMValueRef lo[2] = {v, cg_splat(c, cg_f32(c, (float)(qr->lo - qr->zero)), lanes)};
    v = cg_intrinsic(c, "llvm.maxnum", &vt, 1, lo, 2);
    LLVMValueRef q = LLVMBuildAdd(c->b, LLVMBuildFPToSI(c->b, v, cg_vec(c, c->t_i32, lanes), ""),
                                  cg_vsplat_i32(c, qr->zero, lanes), "q");
    return mask ? LLVMBuildSelect(c->b, mask, q, LLVMConstNull(LLVMTypeOf(q)), "") : q;
}

/* One int8 row (`:a8`: q_quantize_row_a8_ref) or three digits
 * (q_split_row_a8x3_ref) of the row, and per digit the sum of what it
 * accumulates (the codes; for digits the partial numbers t, t >> 8 and
 * t >> 16 of which quantize_groups makes the digits' sums). */
static void quant_i8_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    quant_row *qr = ctx;
    LLVMValueRef x = cg_vload(c, qr->src, i, mask, lanes);
    LLVMValueRef t =
        qr->digits == 1
            ? a8_codes(c, qr, x, mask, lanes)
            : to_int(c,
                     round_clamp(c, LLVMBuildFMul(c->b, x, cg_splat(c, qr->inv, lanes), ""), lanes,
                                 Q_SPLIT_A8X3_TMAX),
                     mask, lanes);
    for (int d = qr->digits - 1; d >= 0; d--) {
        store_bytes(c, t, qr->q8[d], i, mask, lanes); /* the low byte */
        cg_store(c, LLVMBuildAdd(c->b, cg_load(c, LLVMTypeOf(t), qr->acc[d], 64), t, ""),
                 qr->acc[d], 64);
        if (d)
            t = LLVMBuildAShr(c->b, LLVMBuildAdd(c->b, t, cg_vsplat_i32(c, 128, lanes), ""),
                              cg_vsplat_i32(c, 8, lanes), "");
    }
}

static void quant_f32_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    quant_row *qr = ctx;
    LLVMValueRef q = a8_codes(c, qr, cg_vload(c, qr->src, i, mask, lanes), mask, lanes);
    LLVMValueRef f = LLVMBuildFMul(c->b, LLVMBuildSIToFP(c->b, q, cg_vec(c, c->t_f32, lanes), ""),
                                   cg_splat(c, qr->scale, lanes), "");
    cg_vstore(c, f, qr->qf, i, mask);
}

/* Quantizes the columns [col, col + len) of one row into its int8 rows
 * (row_q: the first, kcols bytes apart); part[d] gets digit d's sums per
 * lane. */
static void quantize_span(cg *c, quant_row *qr, const cg_packed *p, LLVMValueRef row_x,
                          LLVMValueRef row_q, LLVMValueRef col, int64_t len, LLVMValueRef *part)
{
    int L = c->lanes;
    LLVMTypeRef it = cg_vec(c, c->t_i32, L);
    qr->src = cg_gep(c, c->t_f32, row_x, col);
    for (int d = 0; d < qr->digits; d++) {
        qr->q8[d] = cg_gep(c, c->t_i8, row_q, cg_add(c, col, cg_i64(c, d * p->kcols)));
        cg_store(c, LLVMConstNull(it), qr->acc[d], 64);
    }
    cg_vloop(c, cg_i64(c, len), L, quant_i8_body, qr);
    for (int d = 0; d < qr->digits; d++) part[d] = cg_load(c, it, qr->acc[d], 64);
}

enum { MAX_LANES = 16 };

/* One vector whose lane g is the sum of the lanes of v[g] (n <= lanes;
 * missing vectors count as zero): log2(lanes) rounds of pairing, each
 * halving the lanes a vector spends on one of its sums (two shuffles and an
 * add per pair), instead of a full reduction per vector. */
static LLVMValueRef sum_lanes(cg *c, const LLVMValueRef *v, int n, int lanes)
{
    LLVMValueRef cur[MAX_LANES];
    for (int i = 0; i < lanes; i++)
        cur[i] = i < n ? v[i] : LLVMConstNull(cg_vec(c, c->t_i32, lanes));
    int nv = lanes;
    for (int cw = lanes / 2; cw >= 1; cw /= 2, nv /= 2) /* lanes per sum after this round */
        for (int i = 0; i < nv / 2; i++) {
            LLVMValueRef lo[MAX_LANES], hi[MAX_LANES];
            int at = 0;
            for (int src = 0; src < 2; src++)
                for (int blk = 0; blk < lanes / (2 * cw); blk++)
                    for (int j = 0; j < cw; j++, at++) {
                        lo[at] = cg_i32(c, src * lanes + blk * 2 * cw + j);
                        hi[at] = cg_i32(c, src * lanes + blk * 2 * cw + cw + j);
                    }
            LLVMValueRef a = LLVMBuildShuffleVector(c->b, cur[2 * i], cur[2 * i + 1],
                                                    LLVMConstVector(lo, (unsigned)lanes), "");
            LLVMValueRef b = LLVMBuildShuffleVector(c->b, cur[2 * i], cur[2 * i + 1],
                                                    LLVMConstVector(hi, (unsigned)lanes), "");
            cur[i] = LLVMBuildAdd(c->b, a, b, "");
        }
    return cur[0];
}

/* Groups g0 .. g0 + count - 1 (count <= lanes; len[i] columns each, the
 * groups glen apart) of one row into its int8 rows, and each digit's sums
 * of them into sums[d * n_groups + g] (times the codes' offset, which the
 * kernel subtracts). */
static void quantize_groups(cg *c, quant_row *qr, const cg_packed *p, LLVMValueRef row_x,
                            LLVMValueRef row_q, LLVMValueRef sums, LLVMValueRef g0, int count,
                            const int64_t *len, int64_t glen)
{
    int L = c->lanes;
    LLVMValueRef part[MAX_DIGITS][MAX_LANES], per_span[MAX_DIGITS];
    for (int i = 0; i < count; i++) {
        quantize_span(c, qr, p, row_x, row_q, cg_mul_k(c, cg_add(c, g0, cg_i64(c, i)), glen),
                      len[i], per_span);
        for (int d = 0; d < qr->digits; d++) part[d][i] = per_span[d];
    }
    LLVMValueRef sum[MAX_DIGITS];
    for (int d = 0; d < qr->digits; d++) sum[d] = sum_lanes(c, part[d], count, L);
    /* digits: the sums of t >> 8(2 - d) make the digits' sums (wrapping
     * int32 arithmetic, exact since the results fit) */
    for (int d = qr->digits - 1; d > 0; d--)
        sum[d] = LLVMBuildSub(c->b, sum[d],
                              LLVMBuildShl(c->b, sum[d - 1], cg_vsplat_i32(c, 8, L), ""), "");
    for (int d = 0; d < qr->digits; d++) {
        LLVMValueRef v = sum[d];
        if (p->code_offset) v = LLVMBuildMul(c->b, v, cg_vsplat_i32(c, p->code_offset, L), "");
        LLVMValueRef ptr = cg_gep(c, c->t_i32, sums, cg_add(c, g0, cg_i64(c, d * p->n_groups)));
        if (count == L) {
            cg_store(c, v, ptr, 4);
        } else {
            LLVMTypeRef tys[2] = {LLVMTypeOf(v), c->t_ptr};
            LLVMValueRef args[4] = {v, ptr, cg_i32(c, 4), cg_lane_mask(c, L, count)};
            cg_intrinsic(c, "llvm.masked.store", tys, 2, args, 4);
        }
    }
}

/* Each row of x as int8 rows: `:a8` quantizes it with its own scale,
 * max|x| / 127 (as q_quantize_row_a8_ref), or with the calibrated scale
 * when the precision has one; f32 activations for integer dot products
 * become three digits (q_split_row_a8x3_ref). Writes the codes
 * (zero-padded to kcols), a scale per int8 row and the sum of each group's
 * codes, or for CG_A8_EMULATE the dequantized row in float. */
static void emit_quantize_rows(cg_linear *lk, LLVMValueRef x, LLVMValueRef xq, LLVMValueRef xf,
                               LLVMValueRef begin, LLVMValueRef end)
{
    cg *c = lk->c;
    const cg_packed *p = lk->p;
    int L = c->lanes, D = p->act_rows;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, L);
    quant_row qr = {.amax = cg_alloca(c, vt, "amax"),
                    .total = cg_alloca(c, vt, "total"),
                    .digits = D,
                    .lo = p->f.act_model ? -128 : -127,
                    .hi = 127,
                    .zero = p->f.act_model ? p->f.act_zero : 0};
    for (int d = 0; d < D; d++) qr.acc[d] = cg_alloca(c, cg_vec(c, c->t_i32, L), "qsum");
    cg_loop lm = cg_loop_begin(c, begin, end, 1, "row");
    LLVMValueRef row_x = cg_gep(c, c->t_f32, x, LLVMBuildMul(c->b, lm.iv, cg_i64(c, lk->k), ""));
    LLVMValueRef first = cg_mul_k(c, lm.iv, D); /* the row's first int8 row */
    qr.src = row_x;
    LLVMValueRef nonfinite = cg_f32(c, 0);      /* 0, or NaN when x has a NaN or an inf */
    QMC_ASSERT(!(D > 1 && p->f.act_scale > 0)); /* digits are for f32 activations */
    if (p->f.act_scale > 0) {
        qr.scale = cg_f32(c, p->f.act_scale); /* calibrated, the same for every row */
    } else {
        cg_store(c, LLVMConstNull(vt), qr.amax, 64);
        cg_store(c, LLVMConstNull(vt), qr.total, 64);
        cg_vloop(c, cg_i64(c, lk->k), L, amax_body, &qr);
        LLVMValueRef av = cg_load(c, vt, qr.amax, 64), tv = cg_load(c, vt, qr.total, 64);
        LLVMValueRef amax = cg_fast(cg_intrinsic(c, "llvm.vector.reduce.fmax", &vt, 1, &av, 1));
        LLVMValueRef targs[2] = {cg_f32(c, 0), tv};
        nonfinite = cg_fast(cg_intrinsic(c, "llvm.vector.reduce.fadd", &vt, 1, targs, 2));
        LLVMValueRef positive = LLVMBuildFCmp(c->b, LLVMRealOGT, amax, cg_f32(c, 0), "");
        qr.scale = LLVMBuildSelect(c->b, positive, LLVMBuildFDiv(c->b, amax, cg_f32(c, 127), ""),
                                   cg_f32(c, 1), "scale");
        qr.inv = LLVMBuildSelect(c->b, positive,
                                 LLVMBuildFDiv(c->b, cg_f32(c, Q_SPLIT_A8X3_UNITS), amax, ""),
                                 cg_f32(c, 0), "inv");
    }
    /* the scales of the int8 rows; a row of x with a NaN or an inf gets NaN
     * scales, so that its outputs are NaN as in float arithmetic */
    static const float digit_weight[MAX_DIGITS] = {1, 256, 65536};
    for (int d = 0; d < D; d++) {
        LLVMValueRef sd =
            d ? LLVMBuildFDiv(c->b, qr.scale, cg_f32(c, digit_weight[d]), "") : qr.scale;
        cg_store(c, LLVMBuildFAdd(c->b, sd, nonfinite, ""),
                 cg_gep(c, c->t_f32, lk->xscale, cg_add(c, first, cg_i64(c, d))), 4);
    }
    if (p->a8 == CG_A8_EMULATE) {
        qr.scale = LLVMBuildFAdd(c->b, qr.scale, nonfinite, "");
        qr.qf = cg_gep(c, c->t_f32, xf, LLVMBuildMul(c->b, lm.iv, cg_i64(c, lk->k), ""));
        cg_vloop(c, cg_i64(c, lk->k), L, quant_f32_body, &qr);
        cg_loop_end(c, &lm);
        return;
    }
    LLVMValueRef row_q = cg_gep(c, c->t_i8, xq, cg_mul_k(c, first, lk->p->kcols));
    LLVMValueRef sums = cg_gep(c, c->t_i32, lk->xsum, cg_mul_k(c, first, p->n_groups));
    /* groups in batches of L (their sums reduced together), the last
     * (shorter) group in the final batch */
    QMC_ASSERT(L <= MAX_LANES);
    int64_t glen = p->group_words * p->per_word, full = p->n_groups - 1, batches = full / L;
    int64_t len[MAX_LANES];
    for (int i = 0; i < L; i++) len[i] = glen;
    if (batches > 0) {
        cg_loop lb = cg_for(c, 0, batches, 1, "groups");
        quantize_groups(c, &qr, p, row_x, row_q, sums, cg_mul_k(c, lb.iv, L), L, len, glen);
        cg_loop_end(c, &lb);
    }
    int rest = (int)(full % L);
    len[rest] = lk->k - full * glen;
    quantize_groups(c, &qr, p, row_x, row_q, sums, cg_i64(c, batches * L), rest + 1, len, glen);
    for (int d = 0; d < D; d++)
        for (int64_t col = lk->k; col < lk->p->kcols; col++)
            cg_store(c, LLVMConstInt(c->t_i8, 0, 0),
                     cg_gep(c, c->t_i8, row_q, cg_i64(c, d * p->kcols + col)), 1);
    cg_loop_end(c, &lm);
}

/* All rows of x against the np panels from p0: tiles of mr rows, then the
 * remaining rows. */
static void emit_block_rows(cg_linear *lk, LLVMValueRef p0, int mr, int np)
{
    cg *c = lk->c;
    int64_t full = lk->m / mr * mr;
    if (full) {
        cg_loop ml = cg_for(c, 0, full, mr, "rows");
        cg_tile(lk, ml.iv, mr, p0, np);
        cg_loop_end(c, &ml);
    }
    if (lk->m % mr) cg_tile(lk, cg_i64(c, full), (int)(lk->m % mr), p0, np);
}

static LLVMValueRef ctx_load(cg *c, LLVMValueRef ctx, int slot)
{
    return cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, ctx, cg_i64(c, slot)), 8);
}

/* void name.panels(ptr ctx, i64 begin, i64 end): the blocks of np panels
 * [begin, end), each as tiles of mr rows (emit_tile.c). Everything it
 * reads comes through the context, the weights included, so that the
 * layers of a model's repeated blocks get one body (emit.c merges equal
 * functions). */
static LLVMValueRef emit_panels_fn(cg *c, const cg_packed *p, const ir_node *n, const char *name,
                                   bool bias, int64_t *blocks)
{
    LLVMTypeRef params[3] = {c->t_ptr, c->t_i64, c->t_i64};
    LLVMTypeRef ft = LLVMFunctionType(c->t_void, params, 3, 0);
    LLVMValueRef fn =
        cg_function_begin(c, sup_arena_printf(c->arena, "%s.panels", name), ft, false, true);
    cg_linear lk = {.c = c, .p = p, .n = p->n, .k = p->k};
    lk.m = ir_node_count(n) / p->n;
    lk.vf = cg_vec(c, c->t_f32, c->lanes);
    lk.vi = cg_vec(c, c->t_i32, c->lanes);
    LLVMValueRef ctx = LLVMGetParam(fn, 0);
    lk.x = cg_load(c, c->t_ptr, ctx, 8);
    lk.y = cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_Y)), 8);
    if (cg_packed_int_dot(p)) {
        lk.xscale = cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_XSCALE)), 8);
        lk.xsum = cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_XSUM)), 8);
    }
    lk.bias = bias ? ctx_load(c, ctx, A8_CTX_BIAS) : NULL;
    lk.codes = ctx_load(c, ctx, A8_CTX_CODES);
    lk.scales = p->scale_bytes ? ctx_load(c, ctx, A8_CTX_SCALES) : NULL;
    lk.zeros = p->zero_bytes ? ctx_load(c, ctx, A8_CTX_ZEROS) : NULL;
    lk.shift = p->shift_bytes ? ctx_load(c, ctx, A8_CTX_SHIFT) : NULL;
    int mr, np;
    cg_tile_shape(c, p, lk.m, &mr, &np);
    if (np > p->panels) np = (int)p->panels;
    *blocks = (p->panels + np - 1) / np;
    int rem = (int)(p->panels % np);
    cg_loop bl = cg_loop_begin(c, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), 1, "block");
    LLVMValueRef p0 = LLVMBuildMul(c->b, bl.iv, cg_i64(c, np), "panel");
    if (rem) {
        /* the last block has fewer panels: tiles of its own */
        LLVMBasicBlockRef bfull = cg_block(c, "block.full"), bshort = cg_block(c, "block.short"),
                          bdone = cg_block(c, "block.done");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, bl.iv, cg_i64(c, *blocks - 1), ""),
                        bshort, bfull);
        LLVMPositionBuilderAtEnd(c->b, bfull);
        emit_block_rows(&lk, p0, mr, np);
        LLVMBuildBr(c->b, bdone);
        LLVMPositionBuilderAtEnd(c->b, bshort);
        emit_block_rows(&lk, p0, mr, rem);
        LLVMBuildBr(c->b, bdone);
        LLVMPositionBuilderAtEnd(c->b, bdone);
    } else {
        emit_block_rows(&lk, p0, mr, np);
    }
    cg_loop_end(c, &bl);
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* Computed (non-weight) matrices: plain loops, y[m, n] = sum_k x[m, k] w[n, k] + b[n]. */
static void emit_plain_linear(cg *c, const ir_node *n, LLVMValueRef y, LLVMValueRef x,
                              LLVMValueRef w, LLVMValueRef b)
{
    const ir_node *wn = &c->g->nodes[n->inputs[1]];
    int64_t nn = wn->shape[0], k = wn->shape[1], m = ir_node_count(n) / nn;
    cg_loop lm = cg_for(c, 0, m, 1, "m");
    cg_loop ln = cg_for(c, 0, nn, 1, "n");
    LLVMValueRef sum = cg_alloca(c, c->t_f32, "sum");
    cg_store(c, b ? cg_load(c, c->t_f32, cg_gep(c, c->t_f32, b, ln.iv), 4) : cg_f32(c, 0), sum, 4);
    cg_loop lk = cg_for(c, 0, k, 1, "k");
    LLVMValueRef xv =
        cg_load(c, c->t_f32,
                cg_gep(c, c->t_f32, x,
                       LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lm.iv, cg_i64(c, k), ""), lk.iv, "")),
                4);
    LLVMValueRef wv =
        cg_load(c, c->t_f32,
                cg_gep(c, c->t_f32, w,
                       LLVMBuildAdd(c->b, LLVMBuildMul(c->b, ln.iv, cg_i64(c, k), ""), lk.iv, "")),
                4);
    cg_store(c,
             cg_fast(LLVMBuildFAdd(c->b, cg_load(c, c->t_f32, sum, 4),
                                   LLVMBuildFMul(c->b, xv, wv, ""), "")),
             sum, 4);
    cg_loop_end(c, &lk);
    cg_store(c, cg_load(c, c->t_f32, sum, 4),
             cg_gep(c, c->t_f32, y,
                    LLVMBuildAdd(c->b, LLVMBuildMul(c->b, lm.iv, cg_i64(c, nn), ""), ln.iv, "")),
             4);
    cg_loop_end(c, &ln);
    cg_loop_end(c, &lm);
}

typedef struct split_job {
    const cg_packed *p;
    int64_t m, k;
} split_job;

/* rows [begin, end) of x (vals: x, codes, float rows, scales, sums) */
static void split_rows_body(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end,
                            void *user)
{
    const split_job *job = user;
    cg_linear lk = {.c = c,
                    .p = job->p,
                    .n = job->p->n,
                    .k = job->k,
                    .m = job->m,
                    .xscale = vals[3],
                    .xsum = vals[4]};
    emit_quantize_rows(&lk, vals[0], vals[1], vals[2], begin, end);
}

/* Makes the int8 rows of x in the node's scratch (name.split, over the
 * thread pool when there are many rows), unless an earlier linear layer
 * left them there (make_rows false: ir_same_act_rows); returns what the
 * panels read as x (the codes, or the dequantized rows when emulating)
 * and fills the context's scale and sum pointers. */
static LLVMValueRef emit_act8_prologue(cg *c, const ir_node *n, const char *name,
                                       const cg_packed *p, LLVMValueRef x, LLVMValueRef scratch,
                                       LLVMValueRef ctx, bool make_rows)
{
    cg_linear lk = {.c = c, .p = p, .n = p->n, .k = p->k, .m = ir_node_count(n) / p->n};
    ir_act8_scratch at = ir_act8_scratch_layout(c->g, n, p->a8 != CG_A8_EMULATE);
    LLVMValueRef xq = scratch, xf = cg_gep(c, c->t_i8, scratch, cg_i64(c, at.float_rows));
    lk.xscale = cg_gep(c, c->t_i8, scratch, cg_i64(c, at.scales));
    lk.xsum = cg_gep(c, c->t_i8, scratch, cg_i64(c, at.sums));
    LLVMValueRef vals[5] = {x, xq, xf, lk.xscale, lk.xsum};
    split_job job = {.p = p, .m = lk.m, .k = lk.k};
    if (make_rows)
        cg_parallel(c, sup_arena_printf(c->arena, "%s.split", name), vals, 5, lk.m,
                    lk.m * lk.k >= 1 << 13, split_rows_body, &job);
    cg_store(c, lk.xscale, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_XSCALE)), 8);
    cg_store(c, lk.xsum, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_XSUM)), 8);
    return p->a8 == CG_A8_EMULATE ? xf : xq;
}

int cg_linear_weight_args(cg *c, int32_t node, LLVMValueRef *args)
{
    const ir_node *n = &c->g->nodes[node];
    if (n->op != IR_OP_LINEAR || cg_takes_operand(c, n, 1)) return 0;
    const cg_packed *p = &c->w->packed[n->inputs[1]];
    int na = 0;
    args[na++] = cg_blob_ptr(c, p->codes);
    if (p->scales >= 0) args[na++] = cg_blob_ptr(c, p->scales);
    if (p->zeros >= 0) args[na++] = cg_blob_ptr(c, p->zeros);
    if (p->shift >= 0) args[na++] = cg_blob_ptr(c, p->shift);
    return na;
}

void cg_emit_linear(cg *c, int32_t node, const char *name)
{
    const ir_node *n = &c->g->nodes[node];
    int32_t wnode = n->inputs[1], bnode = n->n_inputs == 3 ? n->inputs[2] : -1;
    bool packed = !cg_takes_operand(c, n, 1);
    bool bias_param = bnode >= 0 && cg_takes_operand(c, n, 2);
    QMC_ASSERT(bnode < 0 || bias_param);
    const cg_packed *p = packed ? &c->w->packed[wnode] : NULL;
    bool act8 = p && p->a8 != CG_A8_NONE, scratch = cg_takes_scratch(c, node);
    QMC_ASSERT(act8 == scratch); /* lower.c plans scratch for exactly these */
    /* i32 name(ptr y, ptr x [, ptr w] [, ptr b] [, ptr scratch]
     *          [, ptr codes [, ptr scales] [, ptr zeros] [, ptr shift]]): a packed weight
     * comes last (cg_linear_weight_args) */
    int n_weight =
        packed ? 1 + (p->scale_bytes > 0) + (p->zero_bytes > 0) + (p->shift_bytes > 0) : 0;
    int np = 2 + !packed + bias_param + scratch, at_weight = np;
    LLVMTypeRef params[8];
    for (int i = 0; i < np + n_weight; i++) params[i] = c->t_ptr;
    LLVMValueRef panels_fn = NULL;
    int64_t blocks = 0;
    if (packed) panels_fn = emit_panels_fn(c, p, n, name, bias_param, &blocks);
    LLVMTypeRef ft = LLVMFunctionType(c->t_i32, params, (unsigned)(np + n_weight), 0);
    LLVMValueRef fn = cg_function_begin(c, name, ft, false, true);
    for (int i = 0; i < np + n_weight; i++) cg_param_noalias(c, fn, (unsigned)i);
    LLVMValueRef y = LLVMGetParam(fn, 0), x = LLVMGetParam(fn, 1);
    LLVMValueRef b = bias_param ? LLVMGetParam(fn, packed ? 2 : 3) : NULL;
    if (!packed) {
        emit_plain_linear(c, n, y, x, LLVMGetParam(fn, 2), b);
        LLVMBuildRet(c->b, cg_i32(c, 0));
        return;
    }
    LLVMValueRef ctx = cg_alloca(c, LLVMArrayType(c->t_ptr, A8_CTX_SIZE), "ctx");
    if (act8) {
        x = emit_act8_prologue(c, n, name, p, x, LLVMGetParam(fn, (unsigned)(np - 1)), ctx,
                               !c->plan->buf[node].reuses_act_rows);
    }
    cg_store(c, x, ctx, 8);
    cg_store(c, y, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_Y)), 8);
    if (b) cg_store(c, b, cg_gep(c, c->t_ptr, ctx, cg_i64(c, A8_CTX_BIAS)), 8);
    int slot[4], ns = 0;
    slot[ns++] = A8_CTX_CODES;
    if (p->scale_bytes) slot[ns++] = A8_CTX_SCALES;
    if (p->zero_bytes) slot[ns++] = A8_CTX_ZEROS;
    if (p->shift_bytes) slot[ns++] = A8_CTX_SHIFT;
    QMC_ASSERT(ns == n_weight);
    for (int i = 0; i < n_weight; i++)
        cg_store(c, LLVMGetParam(fn, (unsigned)(at_weight + i)),
                 cg_gep(c, c->t_ptr, ctx, cg_i64(c, slot[i])), 8);
    int64_t work = ir_node_count(n) * p->k;
    cg_call_range(c, panels_fn, ctx, blocks, work >= 1 << 16);
    LLVMBuildRet(c->b, cg_i32(c, 0));
}
