/* emit_conv.c: convolutions (channels-last, after the layout pass) and
 * transposed convolutions.
 *
 * A conv's function first makes its input copy when it has one
 * (ir_conv_input_layout: the padding made explicit; with `:a8` each image
 * quantized with one scale, max|x| / 127 or the calibrated one, as
 * q_quantize_row_a8_ref), then runs one of three kernels over the thread
 * pool:
 *
 *   dense      output pixels x output channels as a matrix product over
 *              the window's taps and the group's input channels (implicit
 *              GEMM, no im2col): a tile of mr pixels x np panels of `lanes`
 *              output channels keeps its sums in registers; each input value
 *              is broadcast once for the np weight vectors, each weight
 *              vector meets the mr pixels. Weights are packed k-major per
 *              panel ([group][panel][tap·cg + c][lanes]), f32 or the codes of
 *              int8/FP8 decoded in registers (the channel's scale multiplies
 *              the finished sums). With int8 activations and integer dot
 *              products the input copy holds 4 channels to a word and the
 *              weights words of 4 codes: vpdpbusd multiplies the unsigned
 *              activations (codes + 128) with the signed weights, and the
 *              +128 comes back out as 128 · Σ w per output channel, computed
 *              at compile time (sdot on aarch64: signed with signed, no
 *              offset);
 *   depthwise  a vector of channels per pixel, a few pixels of a row at a
 *              time, the taps' weights [tap][channel];
 *   generic    per pixel, its output channels accumulated from each tap and
 *              input channel (weights [group][tap][c][channel]).
 *
 * Bias and the fused activation are applied as the sums are stored. The
 * results are the interpreter's (ref_cnn.c) up to the order of sums; `:a8`
 * integer sums are exact. */
#include <math.h>
#include <string.h>

#include "codegen.h"

enum { MAX_MR = 28, MAX_NP = 2 };

/* ---- packing -------------------------------------------------------------- */

/* The code of weight [row][col] (the matrix view's column order). */
static int32_t code_at(const ir_qweight *q, int64_t row, int64_t col)
{
    return (int32_t)(int8_t)q->codes[row * q->kp + col];
}

void cg_conv_layout(const ir_graph *g, const cg_target *t, int lanes, int32_t conv_node,
                    cg_conv_packed *p)
{
    const ir_node *conv = &g->nodes[conv_node], *w = &g->nodes[conv->inputs[1]];
    const ir_window *win = &conv->attr.win;
    memset(p, 0, sizeof *p);
    p->codes = p->scales = p->comp = -1;
    p->lanes = lanes;
    p->groups = win->groups;
    p->kh = win->kernel[0], p->kw = win->kernel[1];
    p->fmt = QFMT_F32;
    p->elem = 4;
    p->scale_factor = 1;
    ir_image xi = ir_image_of(g->nodes[conv->inputs[0]].shape, win->spatial, win->nhwc);
    p->cg = xi.c / p->groups;
    int64_t kk = p->kh * p->kw;
    if (conv->op == IR_OP_CONV_TRANSPOSE) {
        p->kernel = IR_CONV_GENERIC;
        p->transposed = true;
        p->m = w->shape[1] * p->groups;
        p->mg = w->shape[1];
        p->blocks = p->groups == 1;
        for (int k = 0; k < 2; k++)
            p->blocks &= win->stride[k] == win->kernel[k] && win->dilation[k] == 1 &&
                         win->pad[k] == 0 && win->pad[k + 2] == 0 && win->out_pad[k] == 0;
        p->code_bytes = (size_t)(p->groups * kk * p->cg * p->mg) * 4;
        return;
    }
    p->m = w->shape[0];
    p->mg = p->m / p->groups;
    p->kernel = ir_conv_kernel_of(g, conv);
    ir_conv_input in = ir_conv_input_layout(g, conv, cg_target_int8_dot(t));
    p->int8 = in.int8;
    p->vnni = in.int8 && t->arch != CG_ARCH_AARCH64;
    p->cgp = in.cgp;
    if (p->kernel == IR_CONV_DEPTHWISE) {
        int64_t cp = (p->m + lanes - 1) / lanes * lanes;
        p->code_bytes = (size_t)(kk * cp) * 4;
        return;
    }
    if (p->kernel == IR_CONV_GENERIC) {
        p->code_bytes = (size_t)(p->groups * kk * p->cg * p->mg) * 4;
        return;
    }
    const ir_qweight *q = w->qw;
    q_format f = q ? q->f.format : QFMT_F32;
    /* codes stay codes (decoded in registers) for per-channel int8 and FP8 */
    p->codes_kept =
        q && !q->f.group && !q->zero_point && (f == QFMT_INT8 || (!p->int8 && q_format_is_fp8(f)));
    p->fmt = p->codes_kept ? f : QFMT_F32;
    p->elem = p->codes_kept ? 1 : 4;
    if (q_format_is_fp8(p->fmt)) {
        p->fp8_via_half = t->arch == CG_ARCH_AARCH64 ||
                          (cg_target_has(t, "f16c") && !cg_target_has(t, "avx512f"));
        bool e4m3 = f == QFMT_FP8_E4M3;
        p->scale_factor = p->fp8_via_half ? (e4m3 ? 256.0f : 1.0f) : (e4m3 ? 0x1p120f : 0x1p112f);
    }
    p->panels = (p->mg + lanes - 1) / lanes;
    p->kcols = p->int8 ? kk * (p->cgp / 4) : kk * p->cg;
    p->code_bytes =
        (size_t)(p->groups * p->panels * p->kcols * lanes) * (size_t)(p->int8 ? 4 : p->elem);
    if (!p->codes_kept) return;
    size_t ns = (size_t)(p->groups * p->panels * lanes);
    p->scale_bytes = ns * 4;
    if (p->int8) p->comp_bytes = ns * 4;
}

/* Dense: [group][panel][tap·cg + c][lanes] of elem bytes (f32 values or
 * codes), or int8 words [group][panel][tap·cgp/4 + word][lanes][4]; per
 * channel the scale (times what the FP8 decoding leaves out) and, for
 * VNNI, 128 · Σ w (the activations' offset). */
static void pack_dense(const cg_conv_packed *p, const ir_qweight *q, const float *v, uint8_t *out,
                       float *sc, int32_t *comp)
{
    int L = p->lanes;
    memset(out, 0, p->code_bytes);
    int64_t kk = p->kh * p->kw, cols = p->cg * kk; /* the matrix view: [m][c][kh][kw] */
    for (int64_t g = 0; g < p->groups; g++)
        for (int64_t pn = 0; pn < p->panels; pn++)
            for (int64_t tap = 0; tap < kk; tap++)
                for (int64_t ci = 0; ci < (p->int8 ? p->cgp : p->cg); ci++)
                    for (int j = 0; j < L; j++) {
                        int64_t ch = pn * L + j, row = g * p->mg + ch, col = ci * kk + tap;
                        if (ch >= p->mg || ci >= p->cg) continue;
                        int64_t at;
                        if (p->int8) {
                            int64_t word = tap * (p->cgp / 4) + ci / 4;
                            at = (((g * p->panels + pn) * p->kcols + word) * L + j) * 4 + ci % 4;
                            out[at] = (uint8_t)(int8_t)code_at(q, row, col);
                            continue;
                        }
                        at = ((g * p->panels + pn) * p->kcols + tap * p->cg + ci) * L + j;
                        if (p->elem == 4)
                            memcpy(out + at * 4, &v[row * cols + col], 4);
                        else
                            out[at] = q->codes[row * q->kp + col];
                    }
    if (!p->codes_kept) return;
    memset(sc, 0, p->scale_bytes);
    if (comp) memset(comp, 0, p->comp_bytes);
    for (int64_t g = 0; g < p->groups; g++)
        for (int64_t pn = 0; pn < p->panels; pn++)
            for (int j = 0; j < L; j++) {
                int64_t ch = pn * L + j, row = g * p->mg + ch, at = (g * p->panels + pn) * L + j;
                if (ch >= p->mg) continue;
                sc[at] = q->scales[row * q->n_groups] * p->scale_factor;
                if (!comp) continue;
                int32_t sum = 0;
                for (int64_t col = 0; col < cols; col++) sum += code_at(q, row, col);
                comp[at] = p->vnni ? 128 * sum : 0;
            }
}

/* Depthwise: [tap][channels rounded up to lanes] f32. Generic: [group]
 * [tap][c][channel of the group] f32. conv_transpose ([C][M/g][kh][kw]):
 * generic's layout with its input and output channels' roles swapped. */
static void pack_float(const cg_conv_packed *p, const float *v, float *out)
{
    int64_t kk = p->kh * p->kw;
    memset(out, 0, p->code_bytes);
    if (p->kernel == IR_CONV_DEPTHWISE) {
        int64_t cp = (p->m + p->lanes - 1) / p->lanes * p->lanes;
        for (int64_t ch = 0; ch < p->m; ch++)
            for (int64_t tap = 0; tap < kk; tap++) out[tap * cp + ch] = v[ch * kk + tap];
        return;
    }
    if (p->blocks) { /* [C][M][kh][kw] -> [c][tap][m] */
        for (int64_t ci = 0; ci < p->cg; ci++)
            for (int64_t tap = 0; tap < kk; tap++)
                for (int64_t co = 0; co < p->m; co++)
                    out[(ci * kk + tap) * p->m + co] = v[(ci * p->m + co) * kk + tap];
        return;
    }
    for (int64_t g = 0; g < p->groups; g++)
        for (int64_t tap = 0; tap < kk; tap++)
            for (int64_t ci = 0; ci < p->cg; ci++)
                for (int64_t co = 0; co < p->mg; co++) {
                    int64_t src = p->transposed ? ((g * p->cg + ci) * p->mg + co) * kk + tap
                                                : ((g * p->mg + co) * p->cg + ci) * kk + tap;
                    out[((g * kk + tap) * p->cg + ci) * p->mg + co] = v[src];
                }
}

void cg_conv_pack_data(const cg_conv_packed *p, const ir_qweight *q, const float *v, uint8_t *codes,
                       float *scales, int32_t *comp)
{
    QMC_ASSERT(p->codes_kept ? q && q->codes : v != NULL);
    if (p->kernel == IR_CONV_DENSE)
        pack_dense(p, q, v, codes, scales, comp);
    else
        pack_float(p, v, (float *)codes);
}

int cg_conv_weight_count(const cg *c, int32_t node)
{
    const ir_node *n = &c->g->nodes[node];
    if (n->op != IR_OP_CONV && n->op != IR_OP_CONV_TRANSPOSE) return 0;
    const cg_conv_packed *p = &c->w->conv[n->inputs[1]];
    return 1 + (p->scales >= 0) + (p->comp >= 0);
}

int cg_conv_weight_args(cg *c, int32_t node, LLVMValueRef *args)
{
    int na = cg_conv_weight_count(c, node);
    if (!na) return 0;
    const cg_conv_packed *p = &c->w->conv[c->g->nodes[node].inputs[1]];
    int k = 0;
    args[k++] = cg_blob_ptr(c, p->codes);
    if (p->scales >= 0) args[k++] = cg_blob_ptr(c, p->scales);
    if (p->comp >= 0) args[k++] = cg_blob_ptr(c, p->comp);
    return na;
}

/* ---- the input copy ----------------------------------------------------------- */

typedef struct conv_job {
    const ir_node *n;
    const cg_conv_packed *p;
    ir_conv_input in;
    ir_image xi, yi;
    int64_t sh, sw; /* the source's element strides of a row and a pixel */
    int mr, np;     /* dense: the tile */
    int rpt;        /* dense: output rows per tile (several when a row is short) */
    bool vnni;
    bool has_bias; /* vals carry a bias pointer */
} conv_job;

/* max |x| over chunks of IR_CONV_MAX_ROWS rows of each image (vals: x,
 * partial maxima) */
static void max_chunks(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end, void *user)
{
    const conv_job *j = user;
    int64_t chunks = (j->xi.h + IR_CONV_MAX_ROWS - 1) / IR_CONV_MAX_ROWS, row = j->xi.w * j->xi.c;
    int L = c->lanes;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, L);
    cg_loop l = cg_loop_begin(c, begin, end, 1, "chunk");
    LLVMValueRef n = LLVMBuildSDiv(c->b, l.iv, cg_i64(c, chunks), "");
    LLVMValueRef h0 =
        cg_mul_k(c, LLVMBuildSRem(c->b, l.iv, cg_i64(c, chunks), ""), IR_CONV_MAX_ROWS);
    LLVMValueRef h1 = cg_add(c, h0, cg_i64(c, IR_CONV_MAX_ROWS));
    h1 = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, h1, cg_i64(c, j->xi.h), ""), h1,
                         cg_i64(c, j->xi.h), "");
    LLVMValueRef base = cg_add(c, cg_mul_k(c, n, j->xi.sn), cg_mul_k(c, h0, row));
    LLVMValueRef count = cg_mul_k(c, LLVMBuildSub(c->b, h1, h0, ""), row);
    LLVMValueRef acc = cg_alloca(c, vt, "amax");
    cg_store(c, LLVMConstNull(vt), acc, 64);
    LLVMValueRef full = LLVMBuildAnd(c->b, count, cg_i64(c, ~(int64_t)(L - 1)), "");
    cg_loop lv = cg_loop_begin(c, cg_i64(c, 0), full, L, "v");
    LLVMValueRef x = cg_vload(c, vals[0], cg_add(c, base, lv.iv), NULL, L);
    LLVMValueRef ax = cg_intrinsic(c, "llvm.fabs", &vt, 1, &x, 1);
    LLVMValueRef old = cg_load(c, vt, acc, 64); /* maxnum as acc (never NaN) has it */
    cg_store(c, LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, ax, old, ""), ax, old, ""),
             acc, 64);
    cg_loop_end(c, &lv);
    LLVMValueRef av = cg_load(c, vt, acc, 64);
    LLVMValueRef m = cg_reduce_max_nonneg(c, av);
    LLVMValueRef mp = cg_alloca(c, c->t_f32, "m");
    cg_store(c, m, mp, 4);
    cg_loop lt = cg_loop_begin(c, full, count, 1, "t");
    LLVMValueRef xs = cg_load(c, c->t_f32, cg_gep(c, c->t_f32, vals[0], cg_add(c, base, lt.iv)), 4);
    LLVMTypeRef ft = c->t_f32;
    LLVMValueRef a2[2] = {cg_load(c, c->t_f32, mp, 4),
                          cg_intrinsic(c, "llvm.fabs", &ft, 1, &xs, 1)};
    cg_store(c, cg_intrinsic(c, "llvm.maxnum", &ft, 1, a2, 2), mp, 4);
    cg_loop_end(c, &lt);
    cg_store(c, cg_load(c, c->t_f32, mp, 4), cg_gep(c, c->t_f32, vals[1], l.iv), 4);
    cg_loop_end(c, &l);
}

/* the scale of each image from its chunks' maxima (vals: partial, scales) */
static void image_scales(cg *c, const conv_job *j, LLVMValueRef partial, LLVMValueRef scales)
{
    int64_t chunks = (j->xi.h + IR_CONV_MAX_ROWS - 1) / IR_CONV_MAX_ROWS;
    float fixed = c->g->nodes[j->n->inputs[1]].qformat.act_scale;
    cg_loop ln = cg_for(c, 0, j->xi.n, 1, "n");
    LLVMValueRef s;
    if (fixed > 0) {
        s = cg_f32(c, fixed);
    } else {
        LLVMValueRef mp = cg_alloca(c, c->t_f32, "m");
        cg_store(c, cg_f32(c, 0), mp, 4);
        cg_loop lc = cg_for(c, 0, chunks, 1, "chunk");
        LLVMTypeRef ft = c->t_f32;
        LLVMValueRef a[2] = {
            cg_load(c, ft, mp, 4),
            cg_load(c, ft, cg_gep(c, ft, partial, cg_add(c, cg_mul_k(c, ln.iv, chunks), lc.iv)),
                    4)};
        cg_store(c, cg_intrinsic(c, "llvm.maxnum", &ft, 1, a, 2), mp, 4);
        cg_loop_end(c, &lc);
        LLVMValueRef m = cg_load(c, ft, mp, 4);
        s = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, m, cg_f32(c, 0), ""),
                            LLVMBuildFDiv(c->b, m, cg_f32(c, 127), ""), cg_f32(c, 1), "scale");
    }
    cg_store(c, s, cg_gep(c, c->t_f32, scales, ln.iv), 4);
    cg_loop_end(c, &ln);
}

/* x quantized: clamp(rint(x · inv), -127, 127), inv = 1 / scale (the
 * interpreter's ref_cnn.c quantize_row). */
static LLVMValueRef quantize(cg *c, LLVMValueRef x, LLVMValueRef inv, int lanes)
{
    LLVMTypeRef vt = LLVMTypeOf(x);
    LLVMValueRef v = LLVMBuildFMul(c->b, x, cg_splat(c, inv, lanes), "");
    v = cg_intrinsic(c, "llvm.rint", &vt, 1, &v, 1);
    LLVMValueRef hi[2] = {v, cg_splat(c, cg_f32(c, 127), lanes)};
    v = cg_intrinsic(c, "llvm.minnum", &vt, 1, hi, 2);
    LLVMValueRef lo[2] = {v, cg_splat(c, cg_f32(c, -127), lanes)};
    return cg_intrinsic(c, "llvm.maxnum", &vt, 1, lo, 2);
}

typedef struct copy_pixel {
    const conv_job *j;
    LLVMValueRef src, dst, scale, inv; /* scale (and 1 / scale): NULL without :a8 */
    int zero;                          /* int8: the code of 0 */
} copy_pixel;

/* One pixel's channels (group by group for an int8 copy's padded groups). */
static void copy_channels(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    copy_pixel *cp = ctx;
    const conv_job *j = cp->j;
    LLVMValueRef x = cg_vload(c, cp->src, i, mask, lanes);
    if (!cp->scale) {
        cg_vstore(c, x, cp->dst, i, mask);
        return;
    }
    LLVMValueRef q = quantize(c, x, cp->inv, lanes);
    if (!j->in.int8) {
        cg_vstore(c, LLVMBuildFMul(c->b, q, cg_splat(c, cp->scale, lanes), ""), cp->dst, i, mask);
        return;
    }
    LLVMValueRef qi = LLVMBuildFPToSI(c->b, q, cg_vec(c, c->t_i32, lanes), "");
    if (cp->zero) qi = LLVMBuildAdd(c->b, qi, cg_vsplat_i32(c, cp->zero, lanes), "");
    LLVMValueRef b8 = LLVMBuildTrunc(c->b, qi, cg_vec(c, c->t_i8, lanes), "");
    LLVMValueRef ptr = cg_gep(c, c->t_i8, cp->dst, i);
    if (mask) {
        LLVMTypeRef tys[2] = {LLVMTypeOf(b8), c->t_ptr};
        LLVMValueRef args[4] = {b8, ptr, cg_i32(c, 1), mask};
        cg_intrinsic(c, "llvm.masked.store", tys, 2, args, 4);
    } else {
        cg_store(c, b8, ptr, 1);
    }
}

/* rows [begin, end) of the copy (n·hp + row): padding, or the input's
 * row (vals: x, copy, scales) */
static void copy_rows(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end, void *user)
{
    const conv_job *j = user;
    const ir_window *w = &j->n->attr.win;
    int esize = j->in.int8 ? 1 : 4;
    int zero = j->in.int8 && c->target->arch != CG_ARCH_AARCH64 ? 128 : 0;
    int64_t row_bytes = j->in.wp * j->in.cs * esize;
    cg_loop l = cg_loop_begin(c, begin, end, 1, "row");
    LLVMValueRef n = LLVMBuildSDiv(c->b, l.iv, cg_i64(c, j->in.hp), "");
    LLVMValueRef ih = LLVMBuildSub(c->b, LLVMBuildSRem(c->b, l.iv, cg_i64(c, j->in.hp), ""),
                                   cg_i64(c, w->pad[0]), "ih");
    LLVMValueRef dst = cg_gep(c, c->t_i8, vals[1], cg_mul_k(c, l.iv, row_bytes));
    LLVMTypeRef mt[2] = {c->t_ptr, c->t_i64};
    /* the whole row to "zero" first when it is padding or the pixels have
     * padding (at the sides, or the channels of an int8 copy's groups) */
    LLVMValueRef zargs[4] = {dst, LLVMConstInt(c->t_i8, (unsigned)zero, 0), cg_i64(c, row_bytes),
                             LLVMConstInt(c->t_i1, 0, 0)};
    bool pads = w->pad[0] || w->pad[1] || w->pad[2] || w->pad[3];
    if (pads || j->in.cgp != j->p->cg) cg_intrinsic(c, "llvm.memset", mt, 2, zargs, 4);
    LLVMBasicBlockRef in_row = cg_block(c, "in"), done = cg_block(c, "done");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntULT, ih, cg_i64(c, j->xi.h), ""), in_row,
                    done);
    LLVMPositionBuilderAtEnd(c->b, in_row);
    copy_pixel cp = {.j = j, .zero = zero};
    if (j->in.act8) {
        cp.scale = cg_load(c, c->t_f32, cg_gep(c, c->t_f32, vals[2], n), 4);
        cp.inv = LLVMBuildFDiv(c->b, cg_f32(c, 1), cp.scale, "inv");
    }
    cg_loop lw = cg_for(c, 0, j->xi.w, 1, "iw");
    LLVMValueRef src =
        cg_gep(c, c->t_f32, vals[0],
               cg_add(c, cg_mul_k(c, n, j->xi.sn),
                      cg_add(c, cg_mul_k(c, ih, j->xi.sh), cg_mul_k(c, lw.iv, j->xi.sw))));
    LLVMValueRef px = cg_gep(c, c->t_i8, dst,
                             cg_mul_k(c, cg_add(c, lw.iv, cg_i64(c, w->pad[1])), j->in.cs * esize));
    if (j->in.cgp == j->p->cg) {
        cp.src = src, cp.dst = px;
        cg_vloop(c, cg_i64(c, j->xi.c), c->lanes, copy_channels, &cp);
    } else {
        /* an int8 copy's groups start every cgp channels */
        cg_loop lg = cg_for(c, 0, j->p->groups, 1, "g");
        cp.src = cg_gep(c, c->t_f32, src, cg_mul_k(c, lg.iv, j->p->cg));
        cp.dst = cg_gep(c, c->t_i8, px, cg_mul_k(c, lg.iv, j->in.cgp));
        cg_vloop(c, cg_i64(c, j->p->cg), c->lanes, copy_channels, &cp);
        cg_loop_end(c, &lg);
    }
    cg_loop_end(c, &lw);
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
    cg_loop_end(c, &l);
}

/* max |x| over count floats at src (a pixel's channels) */
typedef struct pixel_max {
    LLVMValueRef src, acc;
} pixel_max;

static void pixel_max_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    pixel_max *m = ctx;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, lanes);
    LLVMValueRef x = cg_vload(c, m->src, i, mask, lanes);
    LLVMValueRef acc = cg_load(c, vt, m->acc, 64), ax = cg_intrinsic(c, "llvm.fabs", &vt, 1, &x, 1);
    /* maxnum as the accumulator (never NaN) has it: a NaN lane keeps acc; one vmaxps */
    LLVMValueRef gt = LLVMBuildFCmp(c->b, LLVMRealOGT, ax, acc, "");
    cg_store(c, LLVMBuildSelect(c->b, gt, ax, acc, ""), m->acc, 64);
}

/* Where the copy's pixel lw of row l (n·hp + oh) reads, and the copy's
 * pixel index (*q). */
static LLVMValueRef pixel_src(cg *c, const conv_job *j, LLVMValueRef x, LLVMValueRef row,
                              LLVMValueRef lw, LLVMValueRef *q)
{
    const ir_window *w = &j->n->attr.win;
    LLVMValueRef n = LLVMBuildUDiv(c->b, row, cg_i64(c, j->in.hp), "");
    LLVMValueRef ih = cg_mul_k(c, LLVMBuildURem(c->b, row, cg_i64(c, j->in.hp), ""), w->stride[0]);
    *q = cg_add(c, cg_mul_k(c, row, j->in.wp), lw);
    return cg_gep(
        c, c->t_f32, x,
        cg_add(c, cg_mul_k(c, n, j->xi.sn),
               cg_add(c, cg_mul_k(c, ih, j->xi.sh), cg_mul_k(c, lw, w->stride[1] * j->xi.sw))));
}

/* rows [begin, end) of a pointwise conv's per-pixel copy (n·hp + oh): each
 * pixel the output reads, quantized with its own scale max|x| / 127 (or
 * the calibrated one), which goes to scales (vals: x, copy, scales). A row's
 * scales are all found first, then its pixels quantized: the maximum's
 * reduction and the divisions are then no chain from one pixel's loads to
 * its stores, which would stall every pixel of few channels. */
static void copy_pixels(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end, void *user)
{
    const conv_job *j = user;
    int esize = j->in.int8 ? 1 : 4, L = c->lanes;
    int zero = j->in.int8 && c->target->arch != CG_ARCH_AARCH64 ? 128 : 0;
    float fixed = c->g->nodes[j->n->inputs[1]].qformat.act_scale;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, L);
    LLVMValueRef acc = cg_alloca(c, vt, "amax"), q;
    cg_loop l = cg_loop_begin(c, begin, end, 1, "row");
    if (fixed <= 0) {
        cg_loop lm = cg_for(c, 0, j->in.wp, 1, "ow");
        pixel_max m = {pixel_src(c, j, vals[0], l.iv, lm.iv, &q), acc};
        cg_store(c, LLVMConstNull(vt), acc, 64);
        cg_vloop(c, cg_i64(c, j->xi.c), L, pixel_max_body, &m);
        LLVMValueRef mx = cg_reduce_max_nonneg(c, cg_load(c, vt, acc, 64));
        LLVMValueRef s =
            LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, mx, cg_f32(c, 0), ""),
                            LLVMBuildFDiv(c->b, mx, cg_f32(c, 127), ""), cg_f32(c, 1), "");
        cg_store(c, s, cg_gep(c, c->t_f32, vals[2], q), 4);
        cg_loop_end(c, &lm);
    }
    cg_loop lw = cg_for(c, 0, j->in.wp, 1, "ow");
    copy_pixel cp = {.j = j, .zero = zero};
    cp.src = pixel_src(c, j, vals[0], l.iv, lw.iv, &q);
    cp.dst = cg_gep(c, c->t_i8, vals[1], cg_mul_k(c, q, j->in.cs * esize));
    LLVMValueRef sp = cg_gep(c, c->t_f32, vals[2], q);
    if (fixed > 0) {
        cp.scale = cg_f32(c, fixed);
        cg_store(c, cp.scale, sp, 4);
    } else {
        cp.scale = cg_load(c, c->t_f32, sp, 4);
    }
    cp.inv = LLVMBuildFDiv(c->b, cg_f32(c, 1), cp.scale, "inv");
    if (j->in.cgp != j->p->cg) { /* channels beyond C: zero codes */
        for (int64_t k = j->p->cg; k < j->in.cgp; k++)
            cg_store(c, LLVMConstInt(c->t_i8, (unsigned)zero, 0),
                     cg_gep(c, c->t_i8, cp.dst, cg_i64(c, k)), 1);
    }
    cg_vloop(c, cg_i64(c, j->xi.c), L, copy_channels, &cp);
    cg_loop_end(c, &lw);
    cg_loop_end(c, &l);
}

/* The copy and its scales in scratch; returns where the kernel reads. */
static LLVMValueRef make_copy(cg *c, conv_job *j, LLVMValueRef x, LLVMValueRef scratch)
{
    if (!j->in.copy) return x;
    const char *name = j->n->name;
    LLVMValueRef scales = cg_gep(c, c->t_i8, scratch, cg_i64(c, j->in.scales));
    int64_t work = ir_node_count(&c->g->nodes[j->n->inputs[0]]);
    if (j->in.per_pixel) {
        LLVMValueRef vals[3] = {x, scratch, scales};
        cg_parallel(c, sup_arena_printf(c->arena, "%s.copy", name), vals, 3, j->xi.n * j->in.hp,
                    work >= 1 << 15, copy_pixels, j);
        return scratch;
    }
    if (j->in.act8) {
        LLVMValueRef partial = cg_gep(c, c->t_i8, scratch, cg_i64(c, j->in.partial));
        if (c->g->nodes[j->n->inputs[1]].qformat.act_scale <= 0) {
            LLVMValueRef vals[2] = {x, partial};
            int64_t chunks = (j->xi.h + IR_CONV_MAX_ROWS - 1) / IR_CONV_MAX_ROWS;
            cg_parallel(c, sup_arena_printf(c->arena, "%s.max", name), vals, 2, j->xi.n * chunks,
                        work >= 1 << 15, max_chunks, j);
        }
        image_scales(c, j, partial, scales);
    }
    LLVMValueRef vals[3] = {x, scratch, scales};
    cg_parallel(c, sup_arena_printf(c->arena, "%s.copy", name), vals, 3, j->xi.n * j->in.hp,
                work >= 1 << 15, copy_rows, j);
    return scratch;
}

/* ---- shared: a pixel's place, the epilogue ------------------------------------- */

/* Where output pixel q (flat over n, oh, ow) reads its window's first tap,
 * in elements of the source; and its image. */
static LLVMValueRef window_base(cg *c, const conv_job *j, LLVMValueRef q, LLVMValueRef *image)
{
    int64_t per_image = j->yi.h * j->yi.w;
    LLVMValueRef n = LLVMBuildUDiv(c->b, q, cg_i64(c, per_image), "");
    LLVMValueRef rem = LLVMBuildURem(c->b, q, cg_i64(c, per_image), "");
    LLVMValueRef oh = LLVMBuildUDiv(c->b, rem, cg_i64(c, j->yi.w), "");
    LLVMValueRef ow = LLVMBuildURem(c->b, rem, cg_i64(c, j->yi.w), "");
    if (image) *image = n;
    return cg_add(c, cg_mul_k(c, n, j->in.hp * j->in.wp * j->in.cs),
                  cg_add(c, cg_mul_k(c, oh, j->in.sh * j->sh), cg_mul_k(c, ow, j->in.sw * j->sw)));
}

/* The fused activation of a vector. */
static LLVMValueRef activate(cg *c, const ir_window *w, LLVMValueRef v, int lanes)
{
    if (w->post) { /* then y · post_mul + post_add, rounded twice as the interpreter does */
        ir_window a = *w;
        a.post = false;
        v = LLVMBuildFMul(c->b, activate(c, &a, v, lanes),
                          cg_splat(c, cg_f32(c, w->post_mul), lanes), "");
        return LLVMBuildFAdd(c->b, v, cg_splat(c, cg_f32(c, w->post_add), lanes), "");
    }
    LLVMTypeRef vt = LLVMTypeOf(v);
    switch (w->act) {
    case IR_ACT_RELU: {
        LLVMValueRef zero = LLVMConstNull(vt);
        return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, v, zero, ""), v, zero, "");
    }
    case IR_ACT_CLIP: { /* as clip: NaN stays NaN */
        LLVMValueRef lo = cg_splat(c, cg_f32(c, w->act_min), lanes),
                     hi = cg_splat(c, cg_f32(c, w->act_max), lanes);
        v = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOLT, v, lo, ""), lo, v, "");
        return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, v, hi, ""), hi, v, "");
    }
    case IR_ACT_HARDSWISH: return cg_math_hard_sigmoid(c, v, 1.0f / 6, 0.5f, true);
    case IR_ACT_NONE: break;
    }
    return v;
}

/* ---- generic -------------------------------------------------------------------- */

typedef struct generic_px {
    const conv_job *j;
    LLVMValueRef y, bias;
} generic_px;

static void generic_init(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    generic_px *g = ctx;
    LLVMValueRef v =
        g->bias ? cg_vload(c, g->bias, i, mask, lanes) : LLVMConstNull(cg_vec(c, c->t_f32, lanes));
    cg_vstore(c, v, g->y, i, mask);
}

static void generic_act(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    generic_px *g = ctx;
    cg_vstore(c, activate(c, &g->j->n->attr.win, cg_vload(c, g->y, i, mask, lanes), lanes), g->y, i,
              mask);
}

typedef struct generic_acc {
    LLVMValueRef y, w, xv;
} generic_acc;

static void generic_fma(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    generic_acc *a = ctx;
    LLVMValueRef y = cg_vload(c, a->y, i, mask, lanes);
    LLVMValueRef w = cg_vload(c, a->w, i, mask, lanes);
    cg_vstore(c, cg_fmuladd(c, cg_splat(c, a->xv, lanes), w, y), a->y, i, mask);
}

/* output pixels [begin, end) (vals: source, y, weights, bias) */
static void generic_pixels(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end,
                           void *user)
{
    const conv_job *j = user;
    const cg_conv_packed *p = j->p;
    const ir_window *w = &j->n->attr.win;
    cg_loop lq = cg_loop_begin(c, begin, end, 1, "pixel");
    generic_px gp = {.j = j,
                     .y = cg_gep(c, c->t_f32, vals[1], cg_mul_k(c, lq.iv, p->m)),
                     .bias = j->has_bias ? vals[3] : NULL};
    cg_vloop(c, cg_i64(c, p->m), c->lanes, generic_init, &gp);
    LLVMValueRef base = window_base(c, j, lq.iv, NULL);
    for (int64_t kh = 0; kh < p->kh; kh++)
        for (int64_t kw = 0; kw < p->kw; kw++) {
            LLVMValueRef at = cg_add(
                c, base, cg_i64(c, kh * w->dilation[0] * j->sh + kw * w->dilation[1] * j->sw));
            cg_loop lg = cg_for(c, 0, p->groups, 1, "g");
            cg_loop lc = cg_for(c, 0, p->cg, 1, "c");
            LLVMValueRef ch = cg_add(c, cg_mul_k(c, lg.iv, j->in.cgp), lc.iv);
            generic_acc a = {
                .y = cg_gep(c, c->t_f32, gp.y, cg_mul_k(c, lg.iv, p->mg)),
                .xv = cg_load(c, c->t_f32, cg_gep(c, c->t_f32, vals[0], cg_add(c, at, ch)), 4)};
            LLVMValueRef wrow = cg_add(
                c, cg_mul_k(c, lg.iv, p->kh * p->kw * p->cg * p->mg),
                cg_add(c, cg_i64(c, (kh * p->kw + kw) * p->cg * p->mg), cg_mul_k(c, lc.iv, p->mg)));
            a.w = cg_gep(c, c->t_f32, vals[2], wrow);
            cg_vloop(c, cg_i64(c, p->mg), c->lanes, generic_fma, &a);
            cg_loop_end(c, &lc);
            cg_loop_end(c, &lg);
        }
    if (w->act != IR_ACT_NONE || w->post) cg_vloop(c, cg_i64(c, p->m), c->lanes, generic_act, &gp);
    cg_loop_end(c, &lq);
}

/* ---- depthwise -------------------------------------------------------------------- */

/* A depthwise conv reads x itself: each output row runs its taps' rows
 * inside the input (kh from kh0 to kh1, computed per row), the pixels of
 * the row whose windows lie inside the input DW_PIXELS at a time with every
 * column tap, the few at the borders one by one with the column taps
 * inside (known at compile time). Each pixel is a vector of channels. */
enum { DW_PIXELS = 8 };

typedef struct dw_step {
    const conv_job *j;
    LLVMValueRef src, y, w, bias;
    LLVMValueRef xrow;     /* the row's first input row (n · sn + ih0 · sh) */
    LLVMValueRef kh0, kh1; /* the row's taps inside the input */
    int64_t ow, kw0, kw1;  /* the first pixel, its column taps */
    int pixels;
} dw_step;

static void dw_channels(cg *c, void *ctx, LLVMValueRef ci, LLVMValueRef mask, int lanes)
{
    dw_step *d = ctx;
    const conv_job *j = d->j;
    const ir_window *w = &j->n->attr.win;
    const cg_conv_packed *p = j->p;
    int64_t cp = (p->m + c->lanes - 1) / c->lanes * c->lanes;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, lanes);
    LLVMValueRef acc[DW_PIXELS];
    LLVMValueRef b = d->bias ? cg_vload(c, d->bias, ci, mask, lanes) : LLVMConstNull(vt);
    for (int t = 0; t < d->pixels; t++) {
        acc[t] = cg_alloca(c, vt, "acc");
        cg_store(c, b, acc[t], 64);
    }
    cg_loop lk = cg_loop_begin(c, d->kh0, d->kh1, 1, "kh");
    LLVMValueRef row = cg_add(c, d->xrow, cg_mul_k(c, lk.iv, w->dilation[0] * j->xi.sh));
    LLVMValueRef wrow = cg_mul_k(c, lk.iv, p->kw * cp);
    for (int64_t kw = d->kw0; kw < d->kw1; kw++) {
        LLVMValueRef wv =
            cg_vload(c, d->w, cg_add(c, cg_add(c, wrow, cg_i64(c, kw * cp)), ci), NULL, lanes);
        for (int t = 0; t < d->pixels; t++) {
            int64_t iw = (d->ow + t) * w->stride[1] - w->pad[1] + kw * w->dilation[1];
            LLVMValueRef x = cg_vload(
                c, d->src, cg_add(c, cg_add(c, row, cg_i64(c, iw * j->xi.sw)), ci), mask, lanes);
            cg_store(c, cg_fmuladd(c, x, wv, cg_load(c, vt, acc[t], 64)), acc[t], 64);
        }
    }
    cg_loop_end(c, &lk);
    for (int t = 0; t < d->pixels; t++)
        cg_vstore(c, activate(c, w, cg_load(c, vt, acc[t], 64), lanes), d->y,
                  cg_add(c, cg_i64(c, (d->ow + t) * p->m), ci), mask);
}

/* The pixels ow .. ow + pixels - 1 of a row, column taps kw0 .. kw1 - 1 */
static void dw_pixels(cg *c, dw_step *d, int64_t ow, int pixels, int64_t kw0, int64_t kw1)
{
    d->ow = ow, d->pixels = pixels, d->kw0 = kw0, d->kw1 = kw1;
    cg_vloop(c, cg_i64(c, d->j->p->m), c->lanes, dw_channels, d);
}

/* output rows [begin, end) (n·oh) (vals: x, y, weights, bias) */
static void dw_rows(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end, void *user)
{
    const conv_job *j = user;
    const ir_window *w = &j->n->attr.win;
    const cg_conv_packed *p = j->p;
    int64_t sh = w->stride[0], dh = w->dilation[0], pt = w->pad[0];
    dw_step d = {.j = j, .src = vals[0], .w = vals[2], .bias = j->has_bias ? vals[3] : NULL};
    cg_loop lr = cg_loop_begin(c, begin, end, 1, "row");
    LLVMValueRef n = LLVMBuildUDiv(c->b, lr.iv, cg_i64(c, j->yi.h), "n");
    LLVMValueRef oh = LLVMBuildURem(c->b, lr.iv, cg_i64(c, j->yi.h), "oh");
    /* ih = oh·sh - pt + kh·dh inside [0, H): kh0 = ceil((pt - oh·sh) / dh),
     * kh1 = floor((H - 1 + pt - oh·sh) / dh) + 1, clamped to [0, KH] */
    LLVMValueRef top = LLVMBuildSub(c->b, cg_i64(c, pt), cg_mul_k(c, oh, sh), "");
    LLVMValueRef kh0 = LLVMBuildSDiv(c->b, cg_add(c, top, cg_i64(c, dh - 1)), cg_i64(c, dh), "");
    LLVMValueRef zero = cg_i64(c, 0), kk = cg_i64(c, p->kh);
    kh0 = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, top, zero, ""), kh0, zero, "kh0");
    LLVMValueRef last = cg_add(c, top, cg_i64(c, j->xi.h - 1));
    LLVMValueRef kh1 = cg_add(c, LLVMBuildSDiv(c->b, last, cg_i64(c, dh), ""), cg_i64(c, 1));
    kh1 = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, kh1, kk, ""), kh1, kk, "kh1");
    d.kh0 = kh0, d.kh1 = kh1;
    /* the row's input rows start at ih0 = oh·sh - pt (kh0 keeps them inside) */
    d.xrow = LLVMBuildSub(c->b, cg_add(c, cg_mul_k(c, n, j->xi.sn), cg_mul_k(c, oh, sh * j->xi.sh)),
                          cg_i64(c, pt * j->xi.sh), "xrow");
    d.y = cg_gep(c, c->t_f32, vals[1], cg_mul_k(c, cg_mul_k(c, lr.iv, j->yi.w), p->m));
    /* columns: ow whose taps are all inside [lo, hi); the others alone */
    int64_t sw = w->stride[1], dw = w->dilation[1], pl = w->pad[1];
    int64_t lo = (pl + sw - 1) / sw, hi = (j->xi.w - 1 + pl - (p->kw - 1) * dw) / sw + 1;
    if (hi > j->yi.w) hi = j->yi.w;
    if (hi < lo) hi = lo;
    for (int64_t ow = 0; ow < j->yi.w; ow++) {
        if (ow >= lo && ow < hi) {
            int64_t run = hi - lo, full = run / DW_PIXELS * DW_PIXELS;
            for (int64_t at = lo; at < lo + full; at += DW_PIXELS)
                dw_pixels(c, &d, at, DW_PIXELS, 0, p->kw);
            if (run % DW_PIXELS) dw_pixels(c, &d, lo + full, (int)(run % DW_PIXELS), 0, p->kw);
            ow = hi - 1;
            continue;
        }
        int64_t kw0 = 0, kw1 = p->kw, iw0 = ow * sw - pl;
        while (kw0 < kw1 && iw0 + kw0 * dw < 0) kw0++;
        while (kw1 > kw0 && iw0 + (kw1 - 1) * dw >= j->xi.w) kw1--;
        dw_pixels(c, &d, ow, 1, kw0, kw1);
    }
    cg_loop_end(c, &lr);
}

/* ---- dense ----------------------------------------------------------------------------- */

typedef struct tile {
    const conv_job *j;
    LLVMValueRef src, y, codes, scales, comp, bias, xscales;
    LLVMValueRef base[MAX_MR], q[MAX_MR], image;
    LLVMValueRef wbase[MAX_NP]; /* the panels' packed weights */
    LLVMValueRef acc[MAX_MR][MAX_NP];
    int mr, np;
    LLVMValueRef g, p0; /* group, first panel */
    LLVMTypeRef vf, vi;
} tile;

/* The weight vector of column k of panel j (f32 or decoded codes). */
static LLVMValueRef weight_column(cg *c, tile *t, int jp, LLVMValueRef k)
{
    const cg_conv_packed *p = t->j->p;
    int L = c->lanes;
    LLVMValueRef ptr = cg_gep(c, c->t_i8, t->wbase[jp], cg_mul_k(c, k, L * p->elem));
    if (p->elem == 4) return cg_load(c, t->vf, ptr, 4);
    LLVMValueRef bytes = cg_load(c, cg_vec(c, c->t_i8, L), ptr, 1);
    LLVMBuilderRef b = c->b;
    if (p->fmt == QFMT_INT8)
        return LLVMBuildSIToFP(b, LLVMBuildSExt(b, bytes, t->vi, ""), t->vf, "");
    bool e4m3 = p->fmt == QFMT_FP8_E4M3;
    if (p->fp8_via_half) {
        LLVMTypeRef h16 = cg_vec(c, c->t_i16, L);
        LLVMValueRef h =
            e4m3 ? LLVMBuildAnd(b,
                                LLVMBuildShl(b, LLVMBuildSExt(b, bytes, h16, ""),
                                             cg_splat(c, LLVMConstInt(c->t_i16, 7, 0), L), ""),
                                cg_splat(c, LLVMConstInt(c->t_i16, 0xBF80, 0), L), "")
                 : LLVMBuildShl(b, LLVMBuildZExt(b, bytes, h16, ""),
                                cg_splat(c, LLVMConstInt(c->t_i16, 8, 0), L), "");
        return LLVMBuildFPExt(b, LLVMBuildBitCast(b, h, cg_vec(c, c->t_f16, L), ""), t->vf, "");
    }
    LLVMValueRef s = LLVMBuildShl(b, LLVMBuildSExt(b, bytes, t->vi, ""),
                                  cg_vsplat_i32(c, e4m3 ? 20 : 21, L), "");
    s = LLVMBuildAnd(b, s, cg_vsplat_i32(c, e4m3 ? (int32_t)0x87F00000 : (int32_t)0x8FE00000, L),
                     "");
    return LLVMBuildBitCast(b, s, t->vf, "");
}

/* The sums over the group's input channels at tap offset `off`. */
static void tile_tap(cg *c, tile *t, int64_t tap, int64_t off)
{
    const cg_conv_packed *p = t->j->p;
    int L = c->lanes;
    LLVMValueRef choff = cg_mul_k(c, t->g, t->j->in.cgp);
    if (p->int8) {
        int64_t words = p->cgp / 4;
        cg_loop l = cg_for(c, 0, words, 1, "word");
        LLVMValueRef wv[MAX_NP];
        for (int jp = 0; jp < t->np; jp++)
            wv[jp] = cg_load(c, t->vi,
                             cg_gep(c, c->t_i32, t->wbase[jp],
                                    cg_mul_k(c, cg_add(c, cg_i64(c, tap * words), l.iv), L)),
                             4);
        for (int r = 0; r < t->mr; r++) {
            LLVMValueRef at = cg_add(c, cg_add(c, t->base[r], cg_i64(c, off)),
                                     cg_add(c, choff, cg_mul_k(c, l.iv, 4)));
            LLVMValueRef xb =
                cg_splat(c, cg_load(c, c->t_i32, cg_gep(c, c->t_i8, t->src, at), 1), L);
            for (int jp = 0; jp < t->np; jp++)
                cg_store(
                    c, cg_int_dot(c, t->j->vnni, cg_load(c, t->vi, t->acc[r][jp], 64), xb, wv[jp]),
                    t->acc[r][jp], 64);
        }
        cg_loop_end(c, &l);
        return;
    }
    cg_loop l = cg_for(c, 0, p->cg, 1, "c");
    LLVMValueRef k = cg_add(c, cg_i64(c, tap * p->cg), l.iv), wv[MAX_NP];
    for (int jp = 0; jp < t->np; jp++) wv[jp] = weight_column(c, t, jp, k);
    for (int r = 0; r < t->mr; r++) {
        LLVMValueRef at = cg_add(c, cg_add(c, t->base[r], cg_i64(c, off)), cg_add(c, choff, l.iv));
        LLVMValueRef xb = cg_splat(c, cg_load(c, c->t_f32, cg_gep(c, c->t_f32, t->src, at), 4), L);
        for (int jp = 0; jp < t->np; jp++)
            cg_store(c, cg_fmuladd(c, xb, wv[jp], cg_load(c, t->vf, t->acc[r][jp], 64)),
                     t->acc[r][jp], 64);
    }
    cg_loop_end(c, &l);
}

/* Scale, bias, activation and store of the tile's sums. */
static void tile_store(cg *c, tile *t)
{
    const conv_job *j = t->j;
    const cg_conv_packed *p = j->p;
    int L = c->lanes;
    int64_t rem = p->mg % L;
    for (int jp = 0; jp < t->np; jp++) {
        LLVMValueRef panel = cg_add(c, t->p0, cg_i64(c, jp));
        LLVMValueRef gp = cg_add(c, cg_mul_k(c, t->g, p->panels), panel); /* packed panel */
        LLVMValueRef ch = cg_add(c, cg_mul_k(c, t->g, p->mg), cg_mul_k(c, panel, L));
        LLVMValueRef mask = NULL;
        if (rem) {
            /* the group's last panel stores rem channels */
            LLVMValueRef left = LLVMBuildSub(c->b, cg_i64(c, p->mg), cg_mul_k(c, panel, L), "");
            mask = cg_lanes_below(c, left, L);
        }
        LLVMValueRef sc =
            p->scales >= 0 ? cg_vload(c, t->scales, cg_mul_k(c, gp, L), NULL, L) : NULL;
        LLVMValueRef comp =
            p->comp >= 0 ? cg_load(c, t->vi, cg_gep(c, c->t_i32, t->comp, cg_mul_k(c, gp, L)), 4)
                         : NULL;
        LLVMValueRef bias = t->bias ? cg_vload(c, t->bias, ch, mask, L) : NULL;
        for (int r = 0; r < t->mr; r++) {
            LLVMValueRef v = cg_load(c, p->int8 ? t->vi : t->vf, t->acc[r][jp], 64);
            if (p->int8) {
                if (comp) v = LLVMBuildSub(c->b, v, comp, "");
                v = LLVMBuildSIToFP(c->b, v, t->vf, "");
                LLVMValueRef xs = cg_load(
                    c, c->t_f32,
                    cg_gep(c, c->t_f32, t->xscales, j->in.per_pixel ? t->q[r] : t->image), 4);
                v = LLVMBuildFMul(c->b, v, LLVMBuildFMul(c->b, sc, cg_splat(c, xs, L), ""), "");
            } else if (sc) {
                v = LLVMBuildFMul(c->b, v, sc, "");
            }
            if (bias) v = LLVMBuildFAdd(c->b, v, bias, "");
            v = activate(c, &j->n->attr.win, v, L);
            cg_vstore(c, v, t->y, cg_add(c, cg_mul_k(c, t->q[r], p->m), ch), mask);
        }
    }
}

/* Pixels q0 .. q0 + mr - 1 of one output row (their windows start at
 * `base` and every stride · sw elements after: one address for all rows)
 * against panels p0 .. p0 + np - 1 of group g. */
static void dense_tile(cg *c, tile *t, LLVMValueRef q0, LLVMValueRef base, int mr, int np)
{
    const conv_job *j = t->j;
    const cg_conv_packed *p = j->p;
    const ir_window *w = &j->n->attr.win;
    int L = c->lanes;
    t->mr = mr, t->np = np;
    for (int r = 0; r < mr; r++) {
        t->q[r] = cg_add(c, q0, cg_i64(c, r));
        /* a tile of several rows takes whole rows: pixel r is at r / OW, r % OW */
        int64_t dr = j->rpt > 1 ? r / j->yi.w : 0, dc = j->rpt > 1 ? r % j->yi.w : r;
        t->base[r] = cg_add(c, base, cg_i64(c, dr * j->in.sh * j->sh + dc * j->in.sw * j->sw));
    }
    for (int jp = 0; jp < np; jp++) {
        LLVMValueRef gp = cg_add(c, cg_mul_k(c, t->g, p->panels), cg_add(c, t->p0, cg_i64(c, jp)));
        t->wbase[jp] =
            cg_gep(c, c->t_i8, t->codes, cg_mul_k(c, gp, p->kcols * L * (p->int8 ? 4 : p->elem)));
        for (int r = 0; r < mr; r++) {
            t->acc[r][jp] = cg_alloca(c, p->int8 ? t->vi : t->vf, "acc");
            cg_store(c, LLVMConstNull(p->int8 ? t->vi : t->vf), t->acc[r][jp], 64);
        }
    }
    for (int64_t kh = 0; kh < p->kh; kh++)
        for (int64_t kw = 0; kw < p->kw; kw++)
            tile_tap(c, t, kh * p->kw + kw,
                     kh * w->dilation[0] * j->sh + kw * w->dilation[1] * j->sw);
    tile_store(c, t);
}

/* Work items: an output row against a block of np panels of one group
 * (vals: source, y, codes, scales, comp, bias, image scales). */
typedef struct dense_plan {
    int64_t rows, blocks, blocks_per_group;
    bool rows_outer; /* items ordered row major (the weights fit in L2) */
} dense_plan;

static dense_plan plan_of(const cg *c, const conv_job *j)
{
    const cg_conv_packed *p = j->p;
    dense_plan d = {0};
    d.rows = j->yi.n * ((j->yi.h + j->rpt - 1) / j->rpt); /* groups of rpt rows */
    d.blocks_per_group = (p->panels + j->np - 1) / j->np;
    d.blocks = p->groups * d.blocks_per_group;
    int64_t wbytes = p->groups * p->panels * p->kcols * c->lanes * (p->int8 ? 4 : p->elem);
    d.rows_outer = wbytes <= 512 * 1024;
    return d;
}

/* One output row (or group of rpt rows): its tiles of mr pixels, then
 * the rest. */
static void dense_row(cg *c, tile *t, LLVMValueRef row, int np)
{
    const conv_job *j = t->j;
    int64_t groups = (j->yi.h + j->rpt - 1) / j->rpt;
    LLVMValueRef n = LLVMBuildUDiv(c->b, row, cg_i64(c, groups), "n");
    LLVMValueRef oh = cg_mul_k(c, LLVMBuildURem(c->b, row, cg_i64(c, groups), ""), j->rpt);
    LLVMValueRef base = cg_add(c, cg_mul_k(c, n, j->in.hp * j->in.wp * j->in.cs),
                               cg_mul_k(c, oh, j->in.sh * j->sh));
    LLVMValueRef q0 = cg_mul_k(c, cg_add(c, cg_mul_k(c, n, j->yi.h), oh), j->yi.w);
    t->image = n;
    if (j->rpt > 1) {
        /* rpt whole rows, fewer in an image's last group */
        int64_t last = j->yi.h % j->rpt;
        if (!last) {
            dense_tile(c, t, q0, base, j->mr, np);
            return;
        }
        LLVMValueRef short_group =
            LLVMBuildICmp(c->b, LLVMIntEQ, oh, cg_i64(c, j->yi.h - last), "");
        LLVMBasicBlockRef bfull = cg_block(c, "rows.full"), bshort = cg_block(c, "rows.short"),
                          bdone = cg_block(c, "rows.done");
        LLVMBuildCondBr(c->b, short_group, bshort, bfull);
        LLVMPositionBuilderAtEnd(c->b, bfull);
        dense_tile(c, t, q0, base, j->mr, np);
        LLVMBuildBr(c->b, bdone);
        LLVMPositionBuilderAtEnd(c->b, bshort);
        dense_tile(c, t, q0, base, (int)(last * j->yi.w), np);
        LLVMBuildBr(c->b, bdone);
        LLVMPositionBuilderAtEnd(c->b, bdone);
        return;
    }
    int64_t full = j->yi.w / j->mr, step = j->mr * j->in.sw * j->sw;
    int rest = (int)(j->yi.w % j->mr);
    if (full == 1) {
        dense_tile(c, t, q0, base, j->mr, np);
    } else if (full > 1) {
        cg_loop lt = cg_for(c, 0, full, 1, "tile");
        dense_tile(c, t, cg_add(c, q0, cg_mul_k(c, lt.iv, j->mr)),
                   cg_add(c, base, cg_mul_k(c, lt.iv, step)), j->mr, np);
        cg_loop_end(c, &lt);
    }
    if (rest)
        dense_tile(c, t, cg_add(c, q0, cg_i64(c, full * j->mr)),
                   cg_add(c, base, cg_i64(c, full * step)), rest, np);
}

static void dense_items(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end, void *user)
{
    const conv_job *j = user;
    const cg_conv_packed *p = j->p;
    dense_plan d = plan_of(c, j);
    tile t = {.j = j,
              .src = vals[0],
              .y = vals[1],
              .codes = vals[2],
              .scales = vals[3],
              .comp = vals[4],
              .bias = j->has_bias ? vals[5] : NULL,
              .xscales = vals[6],
              .vf = cg_vec(c, c->t_f32, c->lanes),
              .vi = cg_vec(c, c->t_i32, c->lanes)};
    cg_loop li = cg_loop_begin(c, begin, end, 1, "item");
    LLVMValueRef row, blk;
    if (d.rows_outer) {
        row = LLVMBuildUDiv(c->b, li.iv, cg_i64(c, d.blocks), "");
        blk = LLVMBuildURem(c->b, li.iv, cg_i64(c, d.blocks), "");
    } else {
        blk = LLVMBuildUDiv(c->b, li.iv, cg_i64(c, d.rows), "");
        row = LLVMBuildURem(c->b, li.iv, cg_i64(c, d.rows), "");
    }
    t.g = LLVMBuildUDiv(c->b, blk, cg_i64(c, d.blocks_per_group), "g");
    t.p0 = cg_mul_k(c, LLVMBuildURem(c->b, blk, cg_i64(c, d.blocks_per_group), ""), j->np);
    int rem = (int)(p->panels % j->np);
    if (rem) {
        LLVMValueRef last = LLVMBuildICmp(
            c->b, LLVMIntEQ, LLVMBuildURem(c->b, blk, cg_i64(c, d.blocks_per_group), ""),
            cg_i64(c, d.blocks_per_group - 1), "");
        LLVMBasicBlockRef bfull = cg_block(c, "np.full"), bshort = cg_block(c, "np.short"),
                          bdone = cg_block(c, "np.done");
        LLVMBuildCondBr(c->b, last, bshort, bfull);
        LLVMPositionBuilderAtEnd(c->b, bfull);
        dense_row(c, &t, row, j->np);
        LLVMBuildBr(c->b, bdone);
        LLVMPositionBuilderAtEnd(c->b, bshort);
        dense_row(c, &t, row, rem);
        LLVMBuildBr(c->b, bdone);
        LLVMPositionBuilderAtEnd(c->b, bdone);
    } else {
        dense_row(c, &t, row, j->np);
    }
    cg_loop_end(c, &li);
}

/* The tile: np panels (2 when there are) and as many pixels mr as the
 * registers hold next to them (mr · np sums, np weight vectors, and the
 * decoding of codes), evened out over the output row (56 pixels: 4 tiles
 * of 14, not 4 of 12 and one of 8), or whole rows when they are short (7
 * pixels: tiles of 2 rows). */
static void tile_shape(const cg *c, const cg_conv_packed *p, int64_t ow, int *mr, int *np, int *rpt)
{
    *np = p->panels >= 2 ? 2 : 1;
    int most;
    if (c->lanes == 16)
        most =
            *np == 2 ? (p->elem == 1 && !p->int8 ? 12 : 14) : (p->elem == 1 && !p->int8 ? 24 : 28);
    else if (c->target->arch == CG_ARCH_AARCH64)
        most = *np == 2 ? 6 : 12;
    else
        most = *np == 2 ? 6 : 12;
    if (most > MAX_MR) most = MAX_MR;
    *rpt = 1;
    if (2 * ow <= most) { /* short rows: several per tile */
        *rpt = (int)(most / ow);
        *mr = (int)(*rpt * ow);
        return;
    }
    int64_t tiles = (ow + most - 1) / most;
    *mr = (int)((ow + tiles - 1) / tiles);
}

/* ---- the op -------------------------------------------------------------------------- */

void cg_emit_conv(cg *c, int32_t node, LLVMValueRef out, LLVMValueRef *in, LLVMValueRef scratch,
                  LLVMValueRef *weight)
{
    const ir_node *n = &c->g->nodes[node];
    const ir_window *w = &n->attr.win;
    QMC_ASSERT(w->nhwc); /* the layout pass made it channels-last */
    const cg_conv_packed *p = &c->w->conv[n->inputs[1]];
    conv_job j = {.n = n, .p = p};
    j.in = ir_conv_input_layout(c->g, n, cg_target_int8_dot(c->target));
    QMC_ASSERT(j.in.kernel == p->kernel && j.in.int8 == p->int8);
    j.xi = ir_image_of(c->g->nodes[n->inputs[0]].shape, w->spatial, true);
    j.yi = ir_image_of(n->shape, w->spatial, true);
    j.sh = j.in.wp * j.in.cs, j.sw = j.in.cs;
    j.vnni = c->target->arch != CG_ARCH_AARCH64;
    LLVMValueRef src = make_copy(c, &j, in[0], scratch);
    j.has_bias = n->n_inputs == 3;
    LLVMValueRef bias = j.has_bias ? in[2] : LLVMConstNull(c->t_ptr);
    QMC_ASSERT(bias);
    LLVMValueRef codes = weight[0];
    int k = 1;
    LLVMValueRef null = LLVMConstNull(c->t_ptr);
    LLVMValueRef scales = p->scales >= 0 ? weight[k++] : null;
    LLVMValueRef comp = p->comp >= 0 ? weight[k++] : null;
    int64_t pixels = j.yi.n * j.yi.h * j.yi.w;
    int64_t work = pixels * p->m * p->cg * p->kh * p->kw;
    const char *name = sup_arena_printf(c->arena, "%s.tiles", n->name);
    if (p->kernel == IR_CONV_DENSE) {
        tile_shape(c, p, j.yi.w, &j.mr, &j.np, &j.rpt);
        dense_plan d = plan_of(c, &j);
        LLVMValueRef vals[7] = {
            src,
            out,
            codes,
            scales,
            comp,
            bias,
            cg_gep(c, c->t_i8, scratch ? scratch : null, cg_i64(c, j.in.scales))};
        cg_parallel(c, name, vals, 7, d.rows * d.blocks, work >= 1 << 16, dense_items, &j);
        return;
    }
    LLVMValueRef vals[4] = {src, out, codes, bias};
    if (p->kernel == IR_CONV_DEPTHWISE)
        cg_parallel(c, name, vals, 4, j.yi.n * j.yi.h, work >= 1 << 16, dw_rows, &j);
    else
        cg_parallel(c, name, vals, 4, pixels, work >= 1 << 16, generic_pixels, &j);
}

/* ---- conv_transpose -------------------------------------------------------------------- */

typedef struct convt_job {
    const ir_node *n;
    const cg_conv_packed *p;
    ir_image xi, yi;
    bool has_bias;
} convt_job;

/* output pixels [begin, end): y = bias, then for every tap whose input
 * pixel lands here (oh = ih·stride - pad + kh·dilation), every input
 * channel of the group adds x · w (vals: x, y, weights, bias) */
static void convt_pixels(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end,
                         void *user)
{
    const convt_job *j = user;
    const cg_conv_packed *p = j->p;
    const ir_window *w = &j->n->attr.win;
    cg_loop lq = cg_loop_begin(c, begin, end, 1, "pixel");
    int64_t per_image = j->yi.h * j->yi.w;
    LLVMValueRef n = LLVMBuildUDiv(c->b, lq.iv, cg_i64(c, per_image), "");
    LLVMValueRef rem = LLVMBuildURem(c->b, lq.iv, cg_i64(c, per_image), "");
    LLVMValueRef oh = LLVMBuildUDiv(c->b, rem, cg_i64(c, j->yi.w), "");
    LLVMValueRef ow = LLVMBuildURem(c->b, rem, cg_i64(c, j->yi.w), "");
    conv_job dummy = {.n = j->n};
    generic_px gp = {.j = &dummy,
                     .y = cg_gep(c, c->t_f32, vals[1], cg_mul_k(c, lq.iv, p->m)),
                     .bias = j->has_bias ? vals[3] : NULL};
    cg_vloop(c, cg_i64(c, p->m), c->lanes, generic_init, &gp);
    for (int64_t kh = 0; kh < p->kh; kh++) {
        /* ih · stride = oh + pad - kh · dilation */
        LLVMValueRef th = LLVMBuildSub(c->b, cg_add(c, oh, cg_i64(c, w->pad[0])),
                                       cg_i64(c, kh * w->dilation[0]), "");
        LLVMValueRef ih = LLVMBuildSDiv(c->b, th, cg_i64(c, w->stride[0]), "ih");
        LLVMValueRef okh = LLVMBuildAnd(
            c->b, LLVMBuildICmp(c->b, LLVMIntSGE, th, cg_i64(c, 0), ""),
            LLVMBuildAnd(c->b,
                         LLVMBuildICmp(c->b, LLVMIntEQ,
                                       LLVMBuildSRem(c->b, th, cg_i64(c, w->stride[0]), ""),
                                       cg_i64(c, 0), ""),
                         LLVMBuildICmp(c->b, LLVMIntSLT, ih, cg_i64(c, j->xi.h), ""), ""),
            "");
        for (int64_t kw = 0; kw < p->kw; kw++) {
            LLVMValueRef tw = LLVMBuildSub(c->b, cg_add(c, ow, cg_i64(c, w->pad[1])),
                                           cg_i64(c, kw * w->dilation[1]), "");
            LLVMValueRef iw = LLVMBuildSDiv(c->b, tw, cg_i64(c, w->stride[1]), "iw");
            LLVMValueRef ok = LLVMBuildAnd(
                c->b, okh,
                LLVMBuildAnd(
                    c->b, LLVMBuildICmp(c->b, LLVMIntSGE, tw, cg_i64(c, 0), ""),
                    LLVMBuildAnd(c->b,
                                 LLVMBuildICmp(c->b, LLVMIntEQ,
                                               LLVMBuildSRem(c->b, tw, cg_i64(c, w->stride[1]), ""),
                                               cg_i64(c, 0), ""),
                                 LLVMBuildICmp(c->b, LLVMIntSLT, iw, cg_i64(c, j->xi.w), ""), ""),
                    ""),
                "");
            LLVMBasicBlockRef then = cg_block(c, "tap"), done = cg_block(c, "tap.done");
            LLVMBuildCondBr(c->b, ok, then, done);
            LLVMPositionBuilderAtEnd(c->b, then);
            LLVMValueRef xpix =
                cg_add(c, cg_mul_k(c, n, j->xi.sn),
                       cg_add(c, cg_mul_k(c, ih, j->xi.sh), cg_mul_k(c, iw, j->xi.sw)));
            cg_loop lg = cg_for(c, 0, p->groups, 1, "g");
            cg_loop lc = cg_for(c, 0, p->cg, 1, "c");
            generic_acc a = {.y = cg_gep(c, c->t_f32, gp.y, cg_mul_k(c, lg.iv, p->mg))};
            a.xv = cg_load(c, c->t_f32,
                           cg_gep(c, c->t_f32, vals[0],
                                  cg_add(c, xpix, cg_add(c, cg_mul_k(c, lg.iv, p->cg), lc.iv))),
                           4);
            LLVMValueRef wrow = cg_add(
                c, cg_mul_k(c, lg.iv, p->kh * p->kw * p->cg * p->mg),
                cg_add(c, cg_i64(c, (kh * p->kw + kw) * p->cg * p->mg), cg_mul_k(c, lc.iv, p->mg)));
            a.w = cg_gep(c, c->t_f32, vals[2], wrow);
            cg_vloop(c, cg_i64(c, p->mg), c->lanes, generic_fma, &a);
            cg_loop_end(c, &lc);
            cg_loop_end(c, &lg);
            LLVMBuildBr(c->b, done);
            LLVMPositionBuilderAtEnd(c->b, done);
        }
    }
    cg_loop_end(c, &lq);
}

typedef struct convt_store {
    LLVMValueRef y, acc, bias;
} convt_store;

static void convt_store_body(cg *c, void *ctx, LLVMValueRef i, LLVMValueRef mask, int lanes)
{
    convt_store *s = ctx;
    LLVMValueRef v = cg_vload(c, s->acc, i, mask, lanes);
    if (s->bias) v = LLVMBuildFAdd(c->b, v, cg_vload(c, s->bias, i, mask, lanes), "");
    cg_vstore(c, v, s->y, i, mask);
}

/* A stride equal to the kernel (no padding, dilation or groups): input
 * pixels [begin, end), each making its own kh x kw block of output pixels
 * as the product of its channels with the weight [c][tap·M]: the row of
 * tap·M sums in vector registers across the channels, then stored tap by
 * tap with the bias (vals: x, y, weights, bias). */
static void convt_blocks(cg *c, LLVMValueRef *vals, LLVMValueRef begin, LLVMValueRef end,
                         void *user)
{
    const convt_job *j = user;
    const cg_conv_packed *p = j->p;
    int L = c->lanes;
    int64_t kk = p->kh * p->kw, row = kk * p->m, nv = (row + L - 1) / L;
    LLVMTypeRef vt = cg_vec(c, c->t_f32, L);
    LLVMValueRef sums = cg_alloca(c, LLVMArrayType2(c->t_f32, (uint64_t)(nv * L)), "sums");
    LLVMValueRef *acc = sup_arena_alloc(c->arena, sizeof *acc * (size_t)nv);
    for (int64_t v = 0; v < nv; v++) acc[v] = cg_alloca(c, vt, "acc");
    cg_loop lq = cg_loop_begin(c, begin, end, 1, "pixel");
    int64_t per_image = j->xi.h * j->xi.w;
    LLVMValueRef n = LLVMBuildUDiv(c->b, lq.iv, cg_i64(c, per_image), "");
    LLVMValueRef rem = LLVMBuildURem(c->b, lq.iv, cg_i64(c, per_image), "");
    LLVMValueRef ih = LLVMBuildUDiv(c->b, rem, cg_i64(c, j->xi.w), "");
    LLVMValueRef iw = LLVMBuildURem(c->b, rem, cg_i64(c, j->xi.w), "");
    LLVMValueRef xpix = cg_add(c, cg_mul_k(c, n, j->xi.sn),
                               cg_add(c, cg_mul_k(c, ih, j->xi.sh), cg_mul_k(c, iw, j->xi.sw)));
    for (int64_t v = 0; v < nv; v++) cg_store(c, LLVMConstNull(vt), acc[v], 4);
    cg_loop lc = cg_for(c, 0, p->cg, 1, "c");
    LLVMValueRef xv = cg_splat(
        c, cg_load(c, c->t_f32, cg_gep(c, c->t_f32, vals[0], cg_add(c, xpix, lc.iv)), 4), L);
    LLVMValueRef w = cg_gep(c, c->t_f32, vals[2], cg_mul_k(c, lc.iv, row));
    for (int64_t v = 0; v < nv; v++) {
        LLVMValueRef mask = (v + 1) * L > row ? cg_lane_mask(c, L, row - v * L) : NULL;
        LLVMValueRef wv = cg_vload(c, w, cg_i64(c, v * L), mask, L);
        cg_store(c, cg_fmuladd(c, xv, wv, cg_load(c, vt, acc[v], 4)), acc[v], 4);
    }
    cg_loop_end(c, &lc);
    for (int64_t v = 0; v < nv; v++)
        cg_store(c, cg_load(c, vt, acc[v], 4), cg_gep(c, c->t_f32, sums, cg_i64(c, v * L)), 4);
    for (int64_t kh = 0; kh < p->kh; kh++)
        for (int64_t kw = 0; kw < p->kw; kw++) {
            LLVMValueRef oh = cg_add(c, cg_mul_k(c, ih, p->kh), cg_i64(c, kh)),
                         ow = cg_add(c, cg_mul_k(c, iw, p->kw), cg_i64(c, kw));
            LLVMValueRef ypix =
                cg_add(c, cg_mul_k(c, n, j->yi.sn),
                       cg_add(c, cg_mul_k(c, oh, j->yi.sh), cg_mul_k(c, ow, j->yi.sw)));
            convt_store st = {.y = cg_gep(c, c->t_f32, vals[1], ypix),
                              .acc = cg_gep(c, c->t_f32, sums, cg_i64(c, (kh * p->kw + kw) * p->m)),
                              .bias = j->has_bias ? vals[3] : NULL};
            cg_vloop(c, cg_i64(c, p->m), L, convt_store_body, &st);
        }
    cg_loop_end(c, &lq);
}

void cg_emit_conv_transpose(cg *c, int32_t node, LLVMValueRef out, LLVMValueRef *in,
                            LLVMValueRef *weight)
{
    const ir_node *n = &c->g->nodes[node];
    const ir_window *w = &n->attr.win;
    QMC_ASSERT(w->nhwc);
    convt_job j = {.n = n, .p = &c->w->conv[n->inputs[1]]};
    j.xi = ir_image_of(c->g->nodes[n->inputs[0]].shape, w->spatial, true);
    j.yi = ir_image_of(n->shape, w->spatial, true);
    j.has_bias = n->n_inputs == 3;
    LLVMValueRef bias = j.has_bias ? in[2] : LLVMConstNull(c->t_ptr);
    QMC_ASSERT(bias);
    LLVMValueRef vals[4] = {in[0], out, weight[0], bias};
    int64_t pixels = j.yi.n * j.yi.h * j.yi.w;
    if (j.p->blocks) {
        QMC_ASSERT(j.xi.sc == 1 && j.yi.sc == 1);
        int64_t inputs = j.xi.n * j.xi.h * j.xi.w;
        cg_parallel(c, sup_arena_printf(c->arena, "%s.blocks", n->name), vals, 4, inputs,
                    pixels * j.p->m * j.xi.c >= 1 << 16, convt_blocks, &j);
        return;
    }
    cg_parallel(c, sup_arena_printf(c->arena, "%s.pixels", n->name), vals, 4, pixels,
                pixels * j.p->m * j.xi.c * j.p->kh * j.p->kw >= 1 << 16, convt_pixels, &j);
}

/* ---- -v -------------------------------------------------------------------------------- */

/* One line per kind of conv kernel, with the weights that use it. */
void cg_print_conv_kernels(FILE *f, sup_arena *arena, const ir_graph *g, const cg_target *t)
{
    bool dot = cg_target_int8_dot(t);
    const char *instr = t->arch == CG_ARCH_AARCH64 ? "sdot" : "vpdpbusd";
    static const char *const kinds[] = {"dense (implicit GEMM)", "depthwise", "generic"};
    const char **lines = sup_arena_alloc(arena, sizeof *lines * (size_t)(g->n_nodes + 1));
    int32_t *line_of = sup_arena_alloc(arena, sizeof *line_of * (size_t)(g->n_nodes + 1));
    int n_lines = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        line_of[i] = -1;
        if (n->op != IR_OP_CONV) continue;
        ir_conv_input in = ir_conv_input_layout(g, n, dot);
        const ir_node *w = &g->nodes[n->inputs[1]];
        const char *fmt = w->qw ? q_precision_name(arena, &w->qw->f) : "f32";
        const char *acts = !in.act8 ? "f32 activations"
                           : in.int8
                               ? sup_arena_printf(arena, "int8 activations (%s), %s",
                                                  in.per_pixel ? "per pixel" : "per image", instr)
                               : "int8 activations in float";
        const char *line =
            sup_arena_printf(arena, "%s, %s weights, %s", kinds[in.kernel], fmt, acts);
        int k = 0;
        while (k < n_lines && strcmp(lines[k], line)) k++;
        if (k == n_lines) lines[n_lines++] = line;
        line_of[i] = k;
    }
    if (!n_lines) return;
    fprintf(f, "conv kernels for %s (%s):\n", t->cpu, t->triple);
    for (int k = 0; k < n_lines; k++) {
        fprintf(f, "  %s:", lines[k]);
        for (int32_t i = 0; i < g->n_nodes; i++)
            if (line_of[i] == k) fprintf(f, " %s", g->nodes[g->nodes[i].inputs[1]].name);
        fprintf(f, "\n");
    }
}
