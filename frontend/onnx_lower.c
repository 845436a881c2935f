/* onnx_lower.c: the quantized matrix products of ONNX Runtime's quantizers
 * as DequantizeLinear + MatMul, the form QDQ models have, before the
 * import proper.
 *
 *   com.microsoft.MatMulNBits(A, B, scales[, zero_points][, g_idx][, bias])
 *     -> MatMul(A, DequantizeLinear(codes [K, N], scales [K/block, N],
 *                                   zero points, axis 0, block_size))
 *        [-> Add(., bias)]
 *   DynamicQuantizeLinear(x) -> (xq, xs, xz);
 *   MatMulInteger(xq, Wq, xz, Wz) -> Cast(float) -> Mul(., Mul(xs, Ws))
 *     -> MatMul(DequantizeLinear(xq, xs, xz), DequantizeLinear(Wq, Ws, Wz, axis 1))
 *        (the same products, summed in f32 rather than int32)
 *   DequantizeLinear(Gather(codes, idx), one scale)
 *     -> Gather(DequantizeLinear(codes), idx)   (a quantized embedding)
 *   QLinearMatMul, QLinearConv, com.microsoft.QLinearAdd, QLinearMul, QGemm
 *     -> QuantizeLinear(Op(DequantizeLinear(a), DequantizeLinear(b)))
 *
 * The weights' DequantizeLinear nodes made here carry an attribute of
 * their own, `qmc_how` (where the codes came from, for reports), which
 * onnx_fold.c records with the constant (fe_imp_quant). The dequantized weight is named
 * after the codes' initializer without its `_Q4`/`_quantized` suffix.
 *
 * Needs: a model read by onnx.c. Guarantees: a node is rewritten only when
 * every operand it needs is an initializer of the expected type and size
 * and every intermediate value has no other use; anything else is left as
 * it is (and reported unsupported by the import). Values stay defined once,
 * before their uses. */
#include <stdio.h>
#include <string.h>

#include "onnx_import.h"

typedef struct lower {
    sup_arena *a;
    const fe_onnx_model *m;
    fe_onnx_map names; /* every name defined -> 1 */
    fe_onnx_map inits; /* initializer name -> index */
    fe_onnx_map uses;  /* value name -> number of node inputs and graph outputs reading it */
    fe_onnx_map producer;
    fe_onnx_tensor *new_inits;
    int n_new, cap_new;
} lower;

static const fe_onnx_tensor *init_of(lower *l, const char *name)
{
    int32_t *s = *name ? fe_onnx_map_slot(l->a, &l->inits, name, false) : NULL;
    return s ? &l->m->initializers[*s] : NULL;
}

static int uses_of(lower *l, const char *name)
{
    int32_t *s = fe_onnx_map_slot(l->a, &l->uses, name, false);
    return s ? *s : 0;
}

static int producer_of(lower *l, const char *name)
{
    int32_t *s = *name ? fe_onnx_map_slot(l->a, &l->producer, name, false) : NULL;
    return s ? *s : -1;
}

static const char *in_name(const fe_onnx_node *n, int k)
{
    return k < n->n_inputs ? n->inputs[k] : "";
}

/* A name not used in the model: base, else base_2, base_3, ... */
static const char *fresh(lower *l, const char *base)
{
    const char *name = base;
    for (int k = 2; fe_onnx_map_slot(l->a, &l->names, name, false); k++)
        name = sup_arena_printf(l->a, "%s_%d", base, k);
    *fe_onnx_map_slot(l->a, &l->names, name, true) = 1;
    return name;
}

/* The dequantized weight's name: the codes' name without a suffix. */
static const char *weight_name(lower *l, const char *codes)
{
    static const char *const suffixes[] = {"_Q4", "_Q8", "_quantized"};
    size_t n = strlen(codes);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strcmp(codes + n - k, suffixes[i]) == 0)
            return fresh(l, sup_arena_strndup(l->a, codes, n - k));
    }
    return fresh(l, sup_arena_printf(l->a, "%s_dequantized", codes));
}

static const char *new_init(lower *l, const char *name, int dtype, int64_t d0, int64_t d1,
                            void *data, size_t size)
{
    if (l->n_new == l->cap_new) {
        int cap = l->cap_new ? 2 * l->cap_new : 16;
        l->new_inits =
            sup_arena_grow(l->a, l->new_inits, (size_t)l->n_new, (size_t)cap, sizeof *l->new_inits);
        l->cap_new = cap;
    }
    int64_t *dims = sup_arena_alloc(l->a, sizeof *dims * 2);
    dims[0] = d0, dims[1] = d1;
    name = fresh(l, name);
    l->new_inits[l->n_new++] = (fe_onnx_tensor){.name = name,
                                                .dtype = dtype,
                                                .rank = 2,
                                                .dims = dims,
                                                .count = d0 * d1,
                                                .data = data,
                                                .size = size};
    return name;
}

/* A new initializer of rank 0 (a float) or 1 (int64s). */
static const char *small_init(lower *l, const char *name, int rank, const void *v, int n)
{
    size_t size = rank ? sizeof(int64_t) * (size_t)n : sizeof(float);
    void *data = sup_arena_alloc(l->a, size);
    memcpy(data, v, size);
    const char *t =
        new_init(l, name, rank ? FE_ONNX_INT64 : FE_ONNX_FLOAT, rank ? n : 1, 1, data, size);
    fe_onnx_tensor *x = &l->new_inits[l->n_new - 1];
    x->rank = rank;
    x->count = rank ? n : 1;
    return t;
}

static fe_onnx_attr int_attr(const char *name, int64_t v)
{
    return (fe_onnx_attr){.name = name, .type = FE_ONNX_ATTR_INT, .i = v};
}

static fe_onnx_attr string_attr(const char *name, const char *s)
{
    return (fe_onnx_attr){.name = name, .type = FE_ONNX_ATTR_STRING, .s = s, .s_len = strlen(s)};
}

/* A node of the default domain with these inputs, output and attributes. */
static fe_onnx_node make_node(lower *l, const fe_onnx_node *like, const char *op, int n_in,
                              const char *const *ins, const char *out, const fe_onnx_attr *attrs,
                              int n_attrs)
{
    const char **i = sup_arena_alloc(l->a, sizeof *i * (size_t)n_in);
    memcpy(i, ins, sizeof *i * (size_t)n_in);
    const char **o = sup_arena_alloc(l->a, sizeof *o);
    o[0] = out;
    fe_onnx_attr *at = NULL;
    if (n_attrs) {
        at = sup_arena_alloc(l->a, sizeof *at * (size_t)n_attrs);
        memcpy(at, attrs, sizeof *at * (size_t)n_attrs);
    }
    return (fe_onnx_node){.name = like->name,
                          .op_type = op,
                          .domain = "",
                          .n_inputs = n_in,
                          .n_outputs = 1,
                          .n_attrs = n_attrs,
                          .inputs = i,
                          .outputs = o,
                          .attrs = at,
                          .opset = fe_onnx_opset_version(l->m, "")};
}

static int64_t node_int(const fe_onnx_node *n, const char *name, int64_t dflt)
{
    const fe_onnx_attr *a = fe_onnx_attr_find(n, name);
    return a && a->type == FE_ONNX_ATTR_INT ? a->i : dflt;
}

static uint8_t nibble(const uint8_t *p, int64_t i)
{
    return (uint8_t)(p[i / 2] >> (i % 2 * 4) & 15);
}

/* accuracy_level 4: ONNX Runtime's kernel quantizes the input to int8 in
 * blocks of bs along K, symmetric, scale = max|block| / 127, codes
 * rint(x * (127 / max|block|)) (MLAS's QuantizeARow_CompInt8: one
 * division, not the reciprocal of the scale, which can differ by an ulp
 * and move a code), and multiplies the codes in integers: a's blocks so
 * quantized and dequantized (equal to what it computes up to the order of
 * the sums), in nine nodes written to out from *n; returns the result's
 * name. */
static const char *int8_blocks(lower *l, const fe_onnx_node *nd, const char *a, int64_t bs,
                               fe_onnx_node *out, int *n)
{
    const char *base = sup_arena_printf(l->a, "%s_int8", nd->outputs[0]);
    int64_t rows[2] = {-1, bs}, axes[1] = {1};
    float f127 = 127.0f, tiny = 1e-30f;
    const char *shape = small_init(l, sup_arena_printf(l->a, "%s_blocks", base), 1, rows, 2);
    const char *c127 = small_init(l, sup_arena_printf(l->a, "%s_127", base), 0, &f127, 1);
    const char *ctiny = small_init(l, sup_arena_printf(l->a, "%s_tiny", base), 0, &tiny, 1);
    const char *ax = small_init(l, sup_arena_printf(l->a, "%s_axes", base), 1, axes, 1);
    const char *v[9];
    static const char *const what[] = {"r", "abs", "max", "scale", "safe", "inv", "v", "q", "d"};
    for (int i = 0; i < 9; i++) v[i] = fresh(l, sup_arena_printf(l->a, "%s_%s", base, what[i]));
    fe_onnx_attr keep = int_attr("keepdims", 1);
    /* r, |r|, max, scale = max / 127, safe = max(max, tiny), inv = 127 / safe,
     * v = r * inv, q = rint(v), d = q * scale (an all-zero block: codes 0) */
    const char *in[9][2] = {{a, shape},   {v[0], ""},   {v[1], ax}, {v[2], c127}, {v[2], ctiny},
                            {c127, v[4]}, {v[0], v[5]}, {v[6], ""}, {v[7], v[3]}};
    static const char *const ops[] = {"Reshape", "Abs", "ReduceMax", "Div", "Max",
                                      "Div",     "Mul", "Round",     "Mul"};
    static const int n_in[] = {2, 1, 2, 2, 2, 2, 2, 1, 2};
    for (int i = 0; i < 9; i++) {
        out[*n] = make_node(l, nd, ops[i], n_in[i], in[i], v[i], i == 2 ? &keep : NULL, i == 2);
        if (i == 2) out[*n].opset = 18; /* axes as an input */
        (*n)++;
    }
    /* back to a's shape */
    const char *sh = fresh(l, sup_arena_printf(l->a, "%s_shape", base)),
               *res = fresh(l, sup_arena_printf(l->a, "%s_dequantized", base));
    const char *shape_in[1] = {a}, *back_in[2] = {v[8], sh};
    out[(*n)++] = make_node(l, nd, "Shape", 1, shape_in, sh, NULL, 0);
    out[(*n)++] = make_node(l, nd, "Reshape", 2, back_in, res, NULL, 0);
    return res;
}

/* MatMulNBits: up to fourteen nodes into out; how many, 0 if it stays. */
static int lower_nbits(lower *l, const fe_onnx_node *nd, fe_onnx_node *out)
{
    int64_t k = node_int(nd, "K", 0), n = node_int(nd, "N", 0), bits = node_int(nd, "bits", 4),
            bs = node_int(nd, "block_size", 0);
    const fe_onnx_tensor *b = init_of(l, in_name(nd, 1)), *s = init_of(l, in_name(nd, 2)),
                         *z = init_of(l, in_name(nd, 3));
    const char *bias = in_name(nd, 5);
    if ((bits != 4 && bits != 8) || k < 1 || n < 1 || bs < 16 || (bs & (bs - 1)) || !b || !s ||
        nd->n_outputs != 1 || *in_name(nd, 4) || k > (1 << 20) || n > (1 << 20))
        return 0;
    if (*in_name(nd, 3) && !z) return 0;
    int64_t blocks = (k + bs - 1) / bs, blob = bs * bits / 8, zrow = (blocks * bits + 7) / 8;
    if (b->dtype != FE_ONNX_UINT8 || b->count != n * blocks * blob || s->dtype != FE_ONNX_FLOAT ||
        s->count != n * blocks || (z && (z->dtype != FE_ONNX_UINT8 || z->count != n * zrow)))
        return 0;
    const uint8_t *bd = b->data, *zd = z ? z->data : NULL;
    int code_type = bits == 4 ? FE_ONNX_UINT4 : FE_ONNX_UINT8;
    /* codes [K, N] */
    size_t csize = bits == 4 ? (size_t)(k * n + 1) / 2 : (size_t)(k * n);
    uint8_t *codes = sup_arena_alloc(l->a, csize);
    memset(codes, 0, csize);
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < k; c++) {
            const uint8_t *blk = bd + (r * blocks + c / bs) * blob;
            uint8_t q = bits == 4 ? nibble(blk, c % bs) : blk[c % bs];
            int64_t i = c * n + r;
            if (bits == 4)
                codes[i / 2] |= (uint8_t)(q << (i % 2 * 4));
            else
                codes[i] = q;
        }
    /* scales and zero points [K / block, N] */
    float *scales = sup_arena_alloc(l->a, sizeof *scales * (size_t)(blocks * n));
    size_t zsize = bits == 4 ? (size_t)(blocks * n + 1) / 2 : (size_t)(blocks * n);
    uint8_t *zps = sup_arena_alloc(l->a, zsize);
    memset(zps, 0, zsize);
    for (int64_t r = 0; r < n; r++)
        for (int64_t g = 0; g < blocks; g++) {
            float sc;
            memcpy(&sc, (const uint8_t *)s->data + 4 * (r * blocks + g), 4);
            scales[g * n + r] = sc;
            uint8_t q = (uint8_t)(1 << (bits - 1));
            if (zd) q = bits == 4 ? nibble(zd + r * zrow, g) : zd[r * zrow + g];
            int64_t i = g * n + r;
            if (bits == 4)
                zps[i / 2] |= (uint8_t)(q << (i % 2 * 4));
            else
                zps[i] = q;
        }
    const char *cn =
        new_init(l, sup_arena_printf(l->a, "%s_codes", b->name), code_type, k, n, codes, csize);
    const char *sn = new_init(l, sup_arena_printf(l->a, "%s_kn", s->name), FE_ONNX_FLOAT, blocks, n,
                              scales, sizeof *scales * (size_t)(blocks * n));
    const char *zn = new_init(l, sup_arena_printf(l->a, "%s_zero_points", b->name), code_type,
                              blocks, n, zps, zsize);
    const char *w = weight_name(l, b->name);
    const char *how =
        sup_arena_printf(l->a, "com.microsoft.MatMulNBits (%lld bits, blocks of %lld%s%s)",
                         (long long)bits, (long long)bs, zd ? ", zero points" : "",
                         node_int(nd, "accuracy_level", 0) == 4 && bits == 4 && k % bs == 0
                             ? "; accuracy_level 4: its input quantized to int8 in blocks"
                             : "");
    fe_onnx_attr at[3] = {int_attr("axis", 0), int_attr("block_size", bs),
                          string_attr("qmc_how", how)};
    const char *dq_in[3] = {cn, sn, zn};
    out[0] = make_node(l, nd, "DequantizeLinear", 3, dq_in, w, at, 3);
    const char *y = nd->outputs[0], *a = in_name(nd, 0);
    int n_out = 1;
    if (node_int(nd, "accuracy_level", 0) == 4 && bits == 4 && k % bs == 0)
        a = int8_blocks(l, nd, a, bs, out, &n_out);
    const char *mm = *bias ? fresh(l, sup_arena_printf(l->a, "%s_matmul", y)) : y;
    const char *mm_in[2] = {a, w};
    out[n_out++] = make_node(l, nd, "MatMul", 2, mm_in, mm, NULL, 0);
    if (!*bias) return n_out;
    const char *add_in[2] = {mm, bias};
    out[n_out++] = make_node(l, nd, "Add", 2, add_in, y, NULL, 0);
    return n_out;
}

/* QLinearMatMul and QLinearConv (ai.onnx), QLinearAdd, QLinearMul and
 * QGemm (com.microsoft: what quantize_static's QOperator format writes):
 * the float operator between DequantizeLinear of its two quantized
 * operands (x, scale, zero point at inputs 0-2 and 3-5; a MatMul's
 * per-column, a Conv's per-channel, a Gemm's per-column weight scales
 * along their axis) and QuantizeLinear of its result (scale and zero
 * point at inputs 6, 7; QGemm's at 7, 8, or none: a float result), which
 * is ONNX's definition of them up to the order of the sums; an int32 bias
 * (Conv's input 8, QGemm's 6) is dequantized with scale x_scale *
 * w_scale, zero point 0, into a float initializer. Into out: up to four
 * nodes; how many, 0 if it stays. */
static int lower_qlinear(lower *l, const fe_onnx_node *nd, fe_onnx_node *out)
{
    bool ms = strcmp(nd->domain, "com.microsoft") == 0;
    const char *op = NULL;
    if (!*nd->domain && strcmp(nd->op_type, "QLinearMatMul") == 0) op = "MatMul";
    if (!*nd->domain && strcmp(nd->op_type, "QLinearConv") == 0) op = "Conv";
    if (ms && strcmp(nd->op_type, "QLinearAdd") == 0) op = "Add";
    if (ms && strcmp(nd->op_type, "QLinearMul") == 0) op = "Mul";
    if (ms && strcmp(nd->op_type, "QGemm") == 0) op = "Gemm";
    bool conv = op && strcmp(op, "Conv") == 0, gemm = op && strcmp(op, "Gemm") == 0;
    int ys = gemm ? 7 : 6; /* the output's scale and zero point */
    if (!op || nd->n_outputs != 1 || nd->n_inputs < (gemm ? 6 : 7) ||
        nd->n_inputs > (conv || gemm ? 9 : 8) || !*in_name(nd, 0) || !*in_name(nd, 1) ||
        !*in_name(nd, 3) || !*in_name(nd, 4) || (!gemm && !*in_name(nd, 6)))
        return 0;
    const fe_onnx_attr *alpha = fe_onnx_attr_find(nd, "alpha");
    if (gemm && (node_int(nd, "transA", 0) ||
                 (alpha && (alpha->type != FE_ONNX_ATTR_FLOAT || alpha->f != 1.0f))))
        return 0;
    int waxis = conv ? 0 : gemm ? (node_int(nd, "transB", 0) ? 0 : 1) : -1;
    const char *bias = conv ? in_name(nd, 8) : gemm ? in_name(nd, 6) : "";
    float *bf = NULL;
    int64_t m = 0;
    if (*bias) { /* B * x_scale * w_scale[m], as a float initializer */
        const fe_onnx_tensor *b = init_of(l, bias), *xs = init_of(l, in_name(nd, 1)),
                             *ws = init_of(l, in_name(nd, 4));
        if (!b || !xs || !ws || b->dtype != FE_ONNX_INT32 || b->rank != 1 ||
            xs->dtype != FE_ONNX_FLOAT || xs->count != 1 || ws->dtype != FE_ONNX_FLOAT ||
            (ws->count != 1 && ws->count != b->count))
            return 0;
        m = b->count;
        bf = sup_arena_alloc(l->a, sizeof *bf * (size_t)(m + 1));
        float x_scale;
        memcpy(&x_scale, xs->data, 4);
        for (int64_t i = 0; i < m; i++) {
            int32_t q;
            float w_scale;
            memcpy(&q, (const uint8_t *)b->data + 4 * i, 4);
            memcpy(&w_scale, (const uint8_t *)ws->data + 4 * (ws->count == 1 ? 0 : i), 4);
            bf[i] = (float)q * (x_scale * w_scale);
        }
    }
    const char *deq[3];
    int n = 0;
    for (int i = 0; i < 2; i++) {
        const char *codes = in_name(nd, 3 * i), *zp = in_name(nd, 3 * i + 2);
        deq[i] = init_of(l, codes) ? weight_name(l, codes)
                                   : fresh(l, sup_arena_printf(l->a, "%s_dequantized", codes));
        const char *dq_in[3] = {codes, in_name(nd, 3 * i + 1), zp};
        const fe_onnx_tensor *c = init_of(l, codes);
        const char *how = sup_arena_printf(l->a, "%s (%s codes)", nd->op_type,
                                           c ? fe_onnx_dtype_name(c->dtype) : "");
        fe_onnx_attr at[2] = {int_attr("axis", waxis), /* per channel / per column */
                              string_attr("qmc_how", how)};
        out[n++] = make_node(l, nd, "DequantizeLinear", *zp ? 3 : 2, dq_in, deq[i], at, c ? 2 : 1);
    }
    int n_in = 2;
    if (bf) {
        const char *bn = new_init(l, sup_arena_printf(l->a, "%s_dequantized", bias), FE_ONNX_FLOAT,
                                  m, 1, bf, sizeof *bf * (size_t)m);
        l->new_inits[l->n_new - 1].rank = 1;
        l->new_inits[l->n_new - 1].count = m;
        deq[n_in++] = bn;
    }
    bool quantized = *in_name(nd, ys);
    const char *r =
        quantized ? fresh(l, sup_arena_printf(l->a, "%s_float", nd->outputs[0])) : nd->outputs[0];
    fe_onnx_attr tb = int_attr("transB", node_int(nd, "transB", 0));
    out[n] = make_node(l, nd, op, n_in, deq, r,
                       conv   ? nd->attrs
                       : gemm ? &tb
                              : NULL,
                       conv ? nd->n_attrs : gemm);
    n++;
    if (!quantized) return n;
    const char *q_in[3] = {r, in_name(nd, ys), in_name(nd, ys + 1)};
    out[n++] = make_node(l, nd, "QuantizeLinear", *in_name(nd, ys + 1) ? 3 : 2, q_in,
                         nd->outputs[0], NULL, 0);
    return n;
}

/* The only node reading name, or -1. */
static int only_reader(lower *l, const char *name, int after)
{
    if (uses_of(l, name) != 1) return -1;
    for (int i = after + 1; i < l->m->n_nodes; i++)
        for (int k = 0; k < l->m->nodes[i].n_inputs; k++)
            if (strcmp(l->m->nodes[i].inputs[k], name) == 0) return i;
    return -1; /* a graph output */
}

static bool is_op(const fe_onnx_node *n, const char *op)
{
    return !*n->domain && strcmp(n->op_type, op) == 0;
}

/* MatMulInteger node i of a DynamicQuantizeLinear chain: sets the nodes it
 * replaces (the Cast, the Mul of the scales) in drop, writes the weight's
 * DequantizeLinear into *dq, and for the final Mul (*mul) the
 * DequantizeLinear of the input's codes and the MatMul into mm[0..1]. */
static bool lower_integer(lower *l, int i, bool *drop, fe_onnx_node *dq, int *mul, fe_onnx_node *mm)
{
    const fe_onnx_model *m = l->m;
    const fe_onnx_node *nd = &m->nodes[i];
    int q = producer_of(l, in_name(nd, 0));
    if (q < 0 || !is_op(&m->nodes[q], "DynamicQuantizeLinear") || m->nodes[q].n_outputs != 3 ||
        strcmp(m->nodes[q].outputs[0], in_name(nd, 0)) != 0 || nd->n_outputs != 1)
        return false;
    const fe_onnx_node *dql = &m->nodes[q];
    if (*in_name(nd, 2) && strcmp(in_name(nd, 2), dql->outputs[2]) != 0) return false;
    const fe_onnx_tensor *w = init_of(l, in_name(nd, 1)), *wz = init_of(l, in_name(nd, 3));
    if (!w || w->rank != 2 || (w->dtype != FE_ONNX_INT8 && w->dtype != FE_ONNX_UINT8)) return false;
    if (*in_name(nd, 3) && (!wz || wz->dtype != w->dtype)) return false;
    int cast = only_reader(l, nd->outputs[0], i);
    if (cast < 0 || !is_op(&m->nodes[cast], "Cast") || node_int(&m->nodes[cast], "to", 0) != 1)
        return false;
    int fm = only_reader(l, m->nodes[cast].outputs[0], cast);
    if (fm < 0 || !is_op(&m->nodes[fm], "Mul") || m->nodes[fm].n_inputs != 2) return false;
    const fe_onnx_node *fmul = &m->nodes[fm];
    int side = strcmp(fmul->inputs[0], m->nodes[cast].outputs[0]) == 0 ? 1 : 0;
    int sm = producer_of(l, fmul->inputs[side]);
    if (sm < 0 || !is_op(&m->nodes[sm], "Mul") || m->nodes[sm].n_inputs != 2 ||
        uses_of(l, m->nodes[sm].outputs[0]) != 1)
        return false;
    const fe_onnx_node *smul = &m->nodes[sm];
    int xs = strcmp(smul->inputs[0], dql->outputs[1]) == 0 ? 0 : 1;
    if (strcmp(smul->inputs[xs], dql->outputs[1]) != 0) return false;
    const fe_onnx_tensor *ws = init_of(l, smul->inputs[1 - xs]);
    int64_t n = w->dims[1];
    if (!ws || ws->dtype != FE_ONNX_FLOAT || (ws->count != 1 && ws->count != n) || ws->rank > 1)
        return false;
    if (wz && (wz->rank != ws->rank || wz->count != ws->count)) return false;
    bool per_axis = ws->count > 1 || ws->rank == 1;
    if (per_axis && ws->count != n) return false;
    const char *wn = weight_name(l, w->name);
    const char *how = sup_arena_printf(
        l->a, "MatMulInteger (%s codes, %s; its input quantized by DynamicQuantizeLinear)",
        w->dtype == FE_ONNX_INT8 ? "int8" : "uint8",
        per_axis ? "a scale per output channel" : "one scale");
    fe_onnx_attr at[2] = {int_attr("axis", 1), string_attr("qmc_how", how)};
    const char *dq_in[3] = {w->name, ws->name, wz ? wz->name : ""};
    *dq = make_node(l, nd, "DequantizeLinear", wz ? 3 : 2, dq_in, wn, at, 2);
    const char *xd = fresh(l, sup_arena_printf(l->a, "%s_dequantized", dql->outputs[0]));
    const char *xd_in[3] = {dql->outputs[0], dql->outputs[1], in_name(nd, 2)};
    mm[0] = make_node(l, dql, "DequantizeLinear", *in_name(nd, 2) ? 3 : 2, xd_in, xd, NULL, 0);
    const char *mm_in[2] = {xd, wn};
    mm[1] = make_node(l, fmul, "MatMul", 2, mm_in, fmul->outputs[0], NULL, 0);
    *mul = fm;
    drop[cast] = drop[sm] = true;
    return true;
}

/* Gather node i of constant codes read only by a DequantizeLinear with one
 * scale (ONNX Runtime's quantized embedding): the table dequantized, then
 * gathered, into out[0..1]; the DequantizeLinear's index into *dq. */
static bool lower_gather(lower *l, int i, int *dq, fe_onnx_node *out)
{
    const fe_onnx_model *m = l->m;
    const fe_onnx_node *nd = &m->nodes[i];
    const fe_onnx_tensor *t = init_of(l, in_name(nd, 0));
    if (!t || nd->n_outputs != 1 || (t->dtype != FE_ONNX_INT8 && t->dtype != FE_ONNX_UINT8))
        return false;
    int d = only_reader(l, nd->outputs[0], i);
    if (d < 0 || !is_op(&m->nodes[d], "DequantizeLinear") ||
        strcmp(in_name(&m->nodes[d], 0), nd->outputs[0]) != 0)
        return false;
    const fe_onnx_node *dn = &m->nodes[d];
    const fe_onnx_tensor *s = init_of(l, in_name(dn, 1)), *z = init_of(l, in_name(dn, 2));
    if (!s || s->count != 1 || (*in_name(dn, 2) && (!z || z->count != 1)) ||
        fe_onnx_attr_find(dn, "block_size"))
        return false;
    const char *table = fresh(l, sup_arena_printf(l->a, "%s_dequantized", t->name));
    const char *dq_in[3] = {t->name, s->name, z ? z->name : ""};
    out[0] = make_node(l, dn, "DequantizeLinear", z ? 3 : 2, dq_in, table, NULL, 0);
    out[1] = *nd;
    const char **g_in = sup_arena_alloc(l->a, sizeof *g_in * (size_t)nd->n_inputs);
    memcpy(g_in, nd->inputs, sizeof *g_in * (size_t)nd->n_inputs);
    g_in[0] = table;
    const char **g_out = sup_arena_alloc(l->a, sizeof *g_out);
    g_out[0] = dn->outputs[0];
    out[1].inputs = g_in;
    out[1].outputs = g_out;
    *dq = d;
    return true;
}

void fe_imp_lower_quantized(sup_arena *arena, const fe_onnx_model *m, fe_onnx_model *out)
{
    *out = *m;
    bool any = false;
    for (int i = 0; i < m->n_nodes && !any; i++)
        any = is_op(&m->nodes[i], "MatMulInteger") || is_op(&m->nodes[i], "DequantizeLinear") ||
              strncmp(m->nodes[i].op_type, "QLinear", 7) == 0 ||
              (strcmp(m->nodes[i].domain, "com.microsoft") == 0 &&
               strcmp(m->nodes[i].op_type, "MatMulNBits") == 0);
    if (!any) return;
    lower l = {.a = arena, .m = m};
    for (int i = 0; i < m->n_initializers; i++) {
        *fe_onnx_map_slot(arena, &l.inits, m->initializers[i].name, true) = i;
        *fe_onnx_map_slot(arena, &l.names, m->initializers[i].name, true) = 1;
    }
    for (int i = 0; i < m->n_inputs; i++)
        *fe_onnx_map_slot(arena, &l.names, m->inputs[i].name, true) = 1;
    for (int i = 0; i < m->n_nodes; i++) {
        const fe_onnx_node *nd = &m->nodes[i];
        for (int k = 0; k < nd->n_outputs; k++)
            if (*nd->outputs[k]) {
                *fe_onnx_map_slot(arena, &l.names, nd->outputs[k], true) = 1;
                *fe_onnx_map_slot(arena, &l.producer, nd->outputs[k], true) = i;
            }
        for (int k = 0; k < nd->n_inputs; k++)
            if (*nd->inputs[k]) {
                int32_t *u = fe_onnx_map_slot(arena, &l.uses, nd->inputs[k], true);
                *u = *u < 0 ? 1 : *u + 1;
            }
    }
    for (int i = 0; i < m->n_outputs; i++) {
        int32_t *u = fe_onnx_map_slot(arena, &l.uses, m->outputs[i].name, true);
        *u = *u < 0 ? 1 : *u + 1;
    }
    bool *drop = sup_arena_alloc(arena, (size_t)m->n_nodes + 1);
    memset(drop, 0, (size_t)m->n_nodes + 1);
    /* the MatMul that replaces a chain's final Mul, by that Mul's index */
    fe_onnx_node *at_mul = sup_arena_alloc(arena, sizeof *at_mul * (size_t)(2 * m->n_nodes + 1));
    bool *has_mul = sup_arena_alloc(arena, (size_t)m->n_nodes + 1);
    memset(has_mul, 0, (size_t)m->n_nodes + 1);
    fe_onnx_node *nodes = sup_arena_alloc(arena, sizeof *nodes * (size_t)(14 * m->n_nodes + 1));
    int n_out = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const fe_onnx_node *nd = &m->nodes[i];
        if (drop[i]) continue;
        if (has_mul[i]) {
            nodes[n_out++] = at_mul[2 * i];
            nodes[n_out++] = at_mul[2 * i + 1];
            continue;
        }
        if (strcmp(nd->domain, "com.microsoft") == 0 && strcmp(nd->op_type, "MatMulNBits") == 0) {
            int k = lower_nbits(&l, nd, nodes + n_out);
            if (k) {
                n_out += k;
                continue;
            }
        }
        int k = lower_qlinear(&l, nd, nodes + n_out);
        if (k) {
            n_out += k;
            continue;
        }
        int mul, dq;
        if (is_op(nd, "Gather") && lower_gather(&l, i, &dq, nodes + n_out)) {
            n_out += 2;
            drop[dq] = true;
            continue;
        }
        fe_onnx_node mm[2];
        if (is_op(nd, "MatMulInteger") && lower_integer(&l, i, drop, &nodes[n_out], &mul, mm)) {
            n_out++;
            at_mul[2 * mul] = mm[0];
            at_mul[2 * mul + 1] = mm[1];
            has_mul[mul] = true;
            continue;
        }
        nodes[n_out++] = *nd;
    }
    fe_onnx_tensor *inits =
        sup_arena_alloc(arena, sizeof *inits * (size_t)(m->n_initializers + l.n_new + 1));
    if (m->n_initializers)
        memcpy(inits, m->initializers, sizeof *inits * (size_t)m->n_initializers);
    if (l.n_new) memcpy(inits + m->n_initializers, l.new_inits, sizeof *inits * (size_t)l.n_new);
    out->nodes = nodes;
    out->n_nodes = n_out;
    out->initializers = inits;
    out->n_initializers = m->n_initializers + l.n_new;
}
