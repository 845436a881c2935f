/* onnx_match.c: patterns of ONNX nodes that are one operation of qmc's
 * language.
 *
 * Exporters spell layers as several primitive nodes; qmc has them as one
 * built-in with a fast kernel. Each matcher looks at a node and walks up
 * through its inputs:
 *
 *   linear     MatMul(x, W) [+ Add(b)] with W a constant [K, N] and b [N];
 *              Gemm(x, W, b) with alpha = beta = 1 and no transA
 *   gelu       Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5) in any order
 *              of the operands (PyTorch's exact GELU)
 *   silu       Mul(x, Sigmoid(x))
 *   layernorm  d = x - ReduceMean(x); d / Sqrt(ReduceMean(d^2) + eps) [* w] [+ b]
 *              over the last axis (LayerNormalization before opset 17)
 *   rmsnorm    x * Reciprocal(Sqrt(ReduceMean(x^2) + eps)) [* w], or x / Sqrt(...)
 *   attention  Reshape(Transpose(MatMul(Softmax(mask(scale(MatMul(Q, K)))), V)))
 *              with Q, K, V each Reshape [1, T, H, D/H] + Transpose, the
 *              scale a Div or Mul by a constant, and the mask, if any, a
 *              Where or Add of a constant that hides exactly the future
 *              (causal) positions
 *
 * Needs: types, shapes and constants of every value (onnx_fold.c) and use
 * counts. Guarantees: a match covers only nodes whose intermediate values
 * are used only by the pattern's next nodes (once, except layernorm's
 * x - mean, used twice) and are not graph outputs, so replacing the nodes by
 * one operation changes nothing else. */
#include <math.h>
#include <string.h>

#include "onnx_import.h"

/* The node producing value v if it is `op` of the default domain, else -1. */
static int prod(const fe_imp *p, int v, const char *op)
{
    if (v < 0) return -1;
    int n = fe_imp_v(p, v)->producer;
    if (n < 0) return -1;
    const fe_onnx_node *nd = &p->m->nodes[n];
    return !*nd->domain && strcmp(nd->op_type, op) == 0 ? n : -1;
}

/* Used once, and not a graph output: its node can be folded into the next. */
static bool single(const fe_imp *p, int v)
{
    return v >= 0 && fe_imp_v(p, v)->n_uses == 1 && !fe_imp_v(p, v)->is_output;
}

static bool runtime_float(const fe_imp *p, int v)
{
    return v >= 0 && !fe_imp_v(p, v)->is_const && fe_imp_v(p, v)->dtype == FE_ONNX_FLOAT &&
           fe_imp_v(p, v)->rank >= 0;
}

static bool const_float(const fe_imp *p, int v)
{
    return v >= 0 && fe_imp_v(p, v)->is_const && fe_imp_is_float(fe_imp_v(p, v)->dtype) &&
           fe_imp_v(p, v)->rank >= 0;
}

/* Value v (-1 for an absent input) is a one-element constant: *x. */
static bool scalar(fe_imp *p, int v, double *x)
{
    return v >= 0 && fe_imp_const_scalar(p, fe_imp_v(p, v), x);
}

static bool scalar_near(fe_imp *p, int v, double want, double tol)
{
    double x;
    return scalar(p, v, &x) && fabs(x - want) <= tol;
}

static int64_t attr_int(const fe_onnx_node *n, const char *name, int64_t dflt)
{
    const fe_onnx_attr *a = fe_onnx_attr_find(n, name);
    return a && a->type == FE_ONNX_ATTR_INT ? a->i : dflt;
}

static float attr_float(const fe_onnx_node *n, const char *name, float dflt)
{
    const fe_onnx_attr *a = fe_onnx_attr_find(n, name);
    return a && a->type == FE_ONNX_ATTR_FLOAT ? a->f : dflt;
}

static bool perm_is(const fe_onnx_node *n, const int64_t *want, int len)
{
    const fe_onnx_attr *a = fe_onnx_attr_find(n, "perm");
    if (!a || a->type != FE_ONNX_ATTR_INTS || a->n != len) return false;
    for (int i = 0; i < len; i++)
        if (a->ints[i] != want[i]) return false;
    return true;
}

static void cover(fe_imp_match *m, int n)
{
    m->n_nodes++;
    if (n < m->first) m->first = n;
}

/* ---- linear ---------------------------------------------------------------- */

/* A bias for an output of n features: a float constant of n elements whose
 * other dims are 1 and whose rank does not exceed the result's. */
static bool bias_like(const fe_imp *p, int b, int64_t n, int result_rank)
{
    if (!const_float(p, b)) return false;
    const fe_imp_value *v = fe_imp_v(p, b);
    if (v->rank < 1 || v->rank > result_rank || v->dims[v->rank - 1] != n) return false;
    return fe_imp_count(v) == n;
}

static bool weight_like(const fe_imp *p, int w)
{
    return const_float(p, w) && fe_imp_v(p, w)->rank == 2;
}

/* Static quantization of a linear layer's input: ops[0] is
 * DequantizeLinear(QuantizeLinear(x0, s, z), s, z) of run-time int8 or
 * uint8 codes with one constant scale and zero point, the same in both,
 * and the weight (read by nothing else) keeps its integer codes. Then the
 * layer reads x0 and its weight carries s and z (`:a8:static`); the two
 * nodes stay only if something else reads them. */
static void match_act_qdq(fe_imp *p, fe_imp_match *m)
{
    int dq = prod(p, m->ops[0], "DequantizeLinear");
    int codes = dq >= 0 ? fe_imp_in(p, dq, 0) : -1;
    int q = prod(p, codes, "QuantizeLinear");
    if (q < 0 || !runtime_float(p, fe_imp_in(p, q, 0))) return;
    const fe_imp_value *cv = fe_imp_v(p, codes), *w = fe_imp_v(p, m->ops[1]);
    if (cv->dtype != FE_ONNX_INT8 && cv->dtype != FE_ONNX_UINT8) return;
    double s[2], z[2] = {0, 0};
    int nodes[2] = {q, dq};
    for (int i = 0; i < 2; i++) {
        int zi = fe_imp_in(p, nodes[i], 2);
        if (!scalar(p, fe_imp_in(p, nodes[i], 1), &s[i]) || (zi >= 0 && !scalar(p, zi, &z[i])) ||
            (zi >= 0 && fe_imp_v(p, zi)->dtype != cv->dtype) ||
            attr_int(&p->m->nodes[nodes[i]], "block_size", 0) != 0)
            return;
    }
    if (s[0] != s[1] || z[0] != z[1] || !(s[0] > 0) || !isfinite(s[0]) || (float)s[0] <= 0 ||
        w->n_uses != 1 || w->is_output || !fe_imp_keeps_int_codes(w, m->transpose_w))
        return;
    m->act_static = true;
    m->act_scale = (float)s[0];
    m->act_type = cv->dtype;
    m->act_zero = (int)z[0] - (cv->dtype == FE_ONNX_UINT8 ? 128 : 0);
    m->act_q = q;
    m->act_dq = dq;
    m->ops[0] = fe_imp_in(p, q, 0);
}

static bool match_matmul(fe_imp *p, int n, fe_imp_match *m)
{
    int x = fe_imp_in(p, n, 0), w = fe_imp_in(p, n, 1);
    if (!runtime_float(p, x) || !weight_like(p, w) || fe_imp_v(p, x)->rank < 1) return false;
    *m = (fe_imp_match){.kind = FE_IMP_PAT_LINEAR,
                        .root = n,
                        .first = n,
                        .n_nodes = 1,
                        .n_ops = 3,
                        .ops = {x, w, -1},
                        .transpose_w = true};
    match_act_qdq(p, m);
    return true;
}

static bool match_linear_bias(fe_imp *p, int n, fe_imp_match *m)
{
    for (int side = 0; side < 2; side++) {
        int y = fe_imp_in(p, n, side), b = fe_imp_in(p, n, 1 - side);
        int mm = prod(p, y, "MatMul");
        if (mm < 0 || !single(p, y) || !match_matmul(p, mm, m)) continue;
        const fe_imp_value *w = fe_imp_v(p, m->ops[1]);
        if (!bias_like(p, b, w->dims[1], fe_imp_v(p, y)->rank)) continue;
        m->root = n;
        m->ops[2] = b;
        cover(m, n);
        return true;
    }
    return false;
}

static bool match_gemm(fe_imp *p, int n, fe_imp_match *m)
{
    const fe_onnx_node *nd = &p->m->nodes[n];
    int x = fe_imp_in(p, n, 0), w = fe_imp_in(p, n, 1), b = fe_imp_in(p, n, 2);
    if (attr_int(nd, "transA", 0) || attr_float(nd, "alpha", 1) != 1.0f) return false;
    if (!runtime_float(p, x) || !weight_like(p, w)) return false;
    bool tb = attr_int(nd, "transB", 0) != 0;
    int64_t n_out = fe_imp_v(p, w)->dims[tb ? 0 : 1];
    if (b >= 0 && (attr_float(nd, "beta", 1) != 1.0f || !bias_like(p, b, n_out, 2))) return false;
    *m = (fe_imp_match){.kind = FE_IMP_PAT_LINEAR,
                        .root = n,
                        .first = n,
                        .n_nodes = 1,
                        .n_ops = 3,
                        .ops = {x, w, b},
                        .transpose_w = !tb};
    match_act_qdq(p, m);
    return true;
}

/* ---- gelu, silu -------------------------------------------------------------- */

/* e = Add(Erf(x / sqrt 2), 1): sets *x and covers the three nodes. */
static bool erf_part(fe_imp *p, int e, int *x, fe_imp_match *m)
{
    int add = prod(p, e, "Add");
    if (add < 0 || !single(p, e)) return false;
    for (int side = 0; side < 2; side++) {
        int er = fe_imp_in(p, add, side);
        if (!scalar_near(p, fe_imp_in(p, add, 1 - side), 1.0, 1e-6)) continue;
        int erf = prod(p, er, "Erf");
        if (erf < 0 || !single(p, er)) continue;
        int d = fe_imp_in(p, erf, 0), dn;
        if (!single(p, d)) continue;
        if ((dn = prod(p, d, "Div")) >= 0 && scalar_near(p, fe_imp_in(p, dn, 1), sqrt(2.0), 1e-5)) {
            *x = fe_imp_in(p, dn, 0);
        } else if ((dn = prod(p, d, "Mul")) >= 0 &&
                   scalar_near(p, fe_imp_in(p, dn, 1), sqrt(0.5), 1e-6)) {
            *x = fe_imp_in(p, dn, 0);
        } else if (dn >= 0 && scalar_near(p, fe_imp_in(p, dn, 0), sqrt(0.5), 1e-6)) {
            *x = fe_imp_in(p, dn, 1);
        } else {
            continue;
        }
        cover(m, add), cover(m, erf), cover(m, dn);
        return true;
    }
    return false;
}

/* y = Mul(x, e) (either order) with e an erf part of the same x. */
static bool mul_x_erf(fe_imp *p, int y, int *x, fe_imp_match *m)
{
    int mul = prod(p, y, "Mul");
    if (mul < 0 || !single(p, y)) return false;
    for (int side = 0; side < 2; side++) {
        fe_imp_match t = *m;
        int xx = fe_imp_in(p, mul, side), ex;
        if (erf_part(p, fe_imp_in(p, mul, 1 - side), &ex, &t) && ex == xx) {
            *m = t;
            cover(m, mul);
            *x = xx;
            return true;
        }
    }
    return false;
}

static bool match_gelu(fe_imp *p, int n, fe_imp_match *m)
{
    for (int side = 0; side < 2; side++) {
        int a = fe_imp_in(p, n, side), b = fe_imp_in(p, n, 1 - side), x;
        fe_imp_match t = {.kind = FE_IMP_PAT_GELU, .root = n, .first = n, .n_nodes = 1, .n_ops = 1};
        /* (x * (1 + erf)) * 0.5 */
        if (scalar_near(p, a, 0.5, 1e-7) && mul_x_erf(p, b, &x, &t) && runtime_float(p, x)) {
            t.ops[0] = x;
            *m = t;
            return true;
        }
        /* (x * 0.5) * (1 + erf) */
        int h = prod(p, a, "Mul"), ex;
        if (h < 0 || !single(p, a)) continue;
        for (int hs = 0; hs < 2; hs++) {
            fe_imp_match u = t;
            x = fe_imp_in(p, h, hs);
            if (scalar_near(p, fe_imp_in(p, h, 1 - hs), 0.5, 1e-7) && erf_part(p, b, &ex, &u) &&
                ex == x && runtime_float(p, x)) {
                cover(&u, h);
                u.ops[0] = x;
                *m = u;
                return true;
            }
        }
    }
    return false;
}

static bool match_silu(fe_imp *p, int n, fe_imp_match *m)
{
    for (int side = 0; side < 2; side++) {
        int x = fe_imp_in(p, n, side), s = fe_imp_in(p, n, 1 - side), sg = prod(p, s, "Sigmoid");
        if (sg < 0 || !single(p, s) || fe_imp_in(p, sg, 0) != x || !runtime_float(p, x)) continue;
        *m = (fe_imp_match){.kind = FE_IMP_PAT_SILU,
                            .root = n,
                            .first = sg < n ? sg : n,
                            .n_nodes = 2,
                            .n_ops = 1,
                            .ops = {x}};
        return true;
    }
    return false;
}

/* ---- layernorm, rmsnorm ------------------------------------------------------ */

/* v = ReduceMean(x) over the last axis only, keeping it: sets *x. */
static bool mean_last(fe_imp *p, int v, int *x)
{
    int rm = prod(p, v, "ReduceMean");
    if (rm < 0 || !single(p, v)) return false;
    const fe_onnx_node *nd = &p->m->nodes[rm];
    *x = fe_imp_in(p, rm, 0);
    if (*x < 0 || fe_imp_v(p, *x)->rank < 1 || attr_int(nd, "keepdims", 1) != 1) return false;
    int64_t axis, rank = fe_imp_v(p, *x)->rank;
    const fe_onnx_attr *a = fe_onnx_attr_find(nd, "axes");
    int ax = fe_imp_in(p, rm, 1);
    double c;
    if (a && a->type == FE_ONNX_ATTR_INTS && a->n == 1)
        axis = a->ints[0];
    else if (!a && ax >= 0 && scalar(p, ax, &c))
        axis = (int64_t)c;
    else
        return false;
    return axis == -1 || axis == rank - 1;
}

/* s = Sqrt(ReduceMean(sq) + eps) with sq = Pow(y, 2) or Mul(y, y): sets *y,
 * *eps and *square (the Pow or Mul node), covers the four nodes. */
static bool rms_of(fe_imp *p, int s, int *y, double *eps, int *square, fe_imp_match *m)
{
    int sq = prod(p, s, "Sqrt");
    if (sq < 0 || !single(p, s)) return false;
    int a = fe_imp_in(p, sq, 0), add = prod(p, a, "Add");
    if (add < 0 || !single(p, a)) return false;
    int side = scalar(p, fe_imp_in(p, add, 1), eps) ? 0 : 1;
    if (side == 1 && !scalar(p, fe_imp_in(p, add, 0), eps)) return false;
    int v = fe_imp_in(p, add, side), pw;
    if (!(*eps >= 0) || !mean_last(p, v, &pw) || !single(p, pw)) return false;
    int pn = prod(p, pw, "Pow"), mn = prod(p, pw, "Mul");
    if (pn >= 0 && scalar_near(p, fe_imp_in(p, pn, 1), 2.0, 0))
        *y = fe_imp_in(p, pn, 0), *square = pn;
    else if (mn >= 0 && fe_imp_in(p, mn, 0) == fe_imp_in(p, mn, 1))
        *y = fe_imp_in(p, mn, 0), *square = mn;
    else
        return false;
    cover(m, sq), cover(m, add), cover(m, fe_imp_v(p, v)->producer), cover(m, *square);
    return true;
}

/* Root node n = op(v, c) or op(c, v) with c a float constant of d elements:
 * sets *c and returns v, else -1. */
static int affine(fe_imp *p, int n, const char *op, int64_t d, int *c)
{
    const fe_onnx_node *nd = &p->m->nodes[n];
    if (*nd->domain || strcmp(nd->op_type, op) != 0) return -1;
    for (int side = 0; side < 2; side++) {
        int v = fe_imp_in(p, n, side), k = fe_imp_in(p, n, 1 - side);
        if (runtime_float(p, v) && const_float(p, k) && fe_imp_count(fe_imp_v(p, k)) == d) {
            *c = k;
            return v;
        }
    }
    return -1;
}

static int64_t last_dim(const fe_imp *p, int v)
{
    const fe_imp_value *x = fe_imp_v(p, v);
    return x->rank >= 1 ? x->dims[x->rank - 1] : -1;
}

/* Strips an optional `op` by a [d] constant at node *node: *cur becomes its
 * other operand, *node that operand's producer. */
static void strip_affine(fe_imp *p, const char *op, int64_t d, int *node, int *cur, int *c,
                         fe_imp_match *m)
{
    int y;
    *c = -1;
    if (*node < 0 || (y = affine(p, *node, op, d, c)) < 0 || !single(p, y)) {
        *c = -1;
        return;
    }
    cover(m, *node);
    *cur = y;
    *node = fe_imp_v(p, y)->producer;
}

static bool match_layernorm(fe_imp *p, int n, fe_imp_match *m)
{
    int out = fe_imp_out(p, n, 0), cur = out, node = n, w, b, x, x2, sq, square;
    int64_t d = last_dim(p, out);
    *m = (fe_imp_match){.kind = FE_IMP_PAT_LAYERNORM, .root = n, .first = n, .n_ops = 3};
    strip_affine(p, "Add", d, &node, &cur, &b, m);
    strip_affine(p, "Mul", d, &node, &cur, &w, m);
    int dv = prod(p, cur, "Div");
    if (dv < 0 || (cur != out && !single(p, cur))) return false;
    cover(m, dv);
    int dd = fe_imp_in(p, dv, 0), sub = prod(p, dd, "Sub"),
        mean = sub >= 0 ? fe_imp_in(p, sub, 1) : -1;
    double eps;
    if (sub < 0 || fe_imp_v(p, dd)->is_output) return false;
    if (!rms_of(p, fe_imp_in(p, dv, 1), &sq, &eps, &square, m) || sq != dd) return false;
    /* x - mean is used by the Div and the square only */
    int square_uses = strcmp(p->m->nodes[square].op_type, "Mul") == 0 ? 2 : 1;
    if (fe_imp_v(p, dd)->n_uses != 1 + square_uses || !mean_last(p, mean, &x2)) return false;
    x = fe_imp_in(p, sub, 0);
    if (x != x2 || !runtime_float(p, x) || last_dim(p, x) != d) return false;
    cover(m, sub), cover(m, fe_imp_v(p, mean)->producer);
    m->ops[0] = x, m->ops[1] = w, m->ops[2] = b;
    m->scale = eps;
    return true;
}

/* v = x * Reciprocal(s), Reciprocal(s) * x, x * (1 / s) or x / s with s the
 * root mean square of x. */
static bool rms_core(fe_imp *p, int v, int *x, double *eps, fe_imp_match *m)
{
    int mul = prod(p, v, "Mul"), dv = prod(p, v, "Div"), y, square;
    if (dv >= 0) {
        *x = fe_imp_in(p, dv, 0);
        if (!rms_of(p, fe_imp_in(p, dv, 1), &y, eps, &square, m) || y != *x) return false;
        cover(m, dv);
        return true;
    }
    if (mul < 0) return false;
    for (int side = 0; side < 2; side++) {
        fe_imp_match t = *m;
        int r = fe_imp_in(p, mul, 1 - side), rn = prod(p, r, "Reciprocal"), s;
        *x = fe_imp_in(p, mul, side);
        if (rn >= 0) {
            s = fe_imp_in(p, rn, 0);
        } else if ((rn = prod(p, r, "Div")) >= 0 && scalar_near(p, fe_imp_in(p, rn, 0), 1.0, 0)) {
            s = fe_imp_in(p, rn, 1);
        } else {
            continue;
        }
        if (!single(p, r) || !rms_of(p, s, &y, eps, &square, &t) || y != *x) continue;
        cover(&t, rn), cover(&t, mul);
        *m = t;
        return true;
    }
    return false;
}

static bool match_rmsnorm(fe_imp *p, int n, fe_imp_match *m)
{
    int out = fe_imp_out(p, n, 0), x;
    int64_t d = last_dim(p, out);
    double eps;
    /* with a weight: Mul(norm, w); without: the norm is the root */
    for (int with_w = 1; with_w >= 0; with_w--) {
        int cur = out, node = n, w = -1;
        *m = (fe_imp_match){.kind = FE_IMP_PAT_RMSNORM, .root = n, .first = n, .n_ops = 2};
        if (with_w) {
            strip_affine(p, "Mul", d, &node, &cur, &w, m);
            if (w < 0) continue;
        }
        if (!rms_core(p, cur, &x, &eps, m) || !runtime_float(p, x) || last_dim(p, x) != d) continue;
        m->ops[0] = x, m->ops[1] = w;
        m->scale = eps;
        return true;
    }
    return false;
}

/* ---- attention ------------------------------------------------------------------ */

/* v4 = Transpose(Reshape(x, [1, T, H, d]), perm) with x [1, T, H*d] or [T, H*d]. */
static bool head_split(fe_imp *p, int v4, const int64_t *perm, int *x, int64_t *heads,
                       fe_imp_match *m)
{
    int tr = prod(p, v4, "Transpose");
    if (tr < 0 || !single(p, v4) || !perm_is(&p->m->nodes[tr], perm, 4)) return false;
    int r = fe_imp_in(p, tr, 0), rs = prod(p, r, "Reshape");
    if (rs < 0 || !single(p, r)) return false;
    const fe_imp_value *rv = fe_imp_v(p, r);
    *x = fe_imp_in(p, rs, 0);
    if (!runtime_float(p, *x) || rv->rank != 4 || rv->dims[0] != 1) return false;
    const fe_imp_value *xv = fe_imp_v(p, *x);
    int64_t feat = rv->dims[2] * rv->dims[3];
    bool ok =
        (xv->rank == 3 && xv->dims[0] == 1 && xv->dims[1] == rv->dims[1] && xv->dims[2] == feat) ||
        (xv->rank == 2 && xv->dims[0] == rv->dims[1] && xv->dims[1] == feat);
    if (!ok) return false;
    *heads = rv->dims[2];
    cover(m, tr), cover(m, rs);
    return true;
}

/* Which positions a mask hides: masked(i, j) for a [.., T, S] constant whose
 * leading dims are 1. Returns false if the mask is not exactly causal or
 * empty; *causal says which. `hide` decides per element. */
static bool check_mask(fe_imp *p, int mv, int64_t t, int64_t s, bool hide_when, bool additive,
                       bool *causal)
{
    fe_imp_value *v = fe_imp_v(p, mv);
    if (v->rank < 2 || v->dims[v->rank - 2] != t || v->dims[v->rank - 1] != s ||
        fe_imp_count(v) != t * s)
        return false;
    int n_hidden = 0;
    for (int64_t i = 0; i < t; i++)
        for (int64_t j = 0; j < s; j++) {
            double x = fe_imp_const_at(p, v, i * s + j);
            bool hidden;
            if (additive) {
                if (x != 0 && !(x <= -1e9)) return false;
                hidden = x != 0;
            } else {
                hidden = (x != 0) == hide_when;
            }
            if (hidden != (j > i + s - t)) return false;
            n_hidden += hidden;
        }
    *causal = n_hidden > 0;
    return true;
}

/* s = Where(mask, fill, x) / Where(mask, x, fill) / Add(x, mask) or x: the
 * scores before the mask in *x. */
static bool strip_mask(fe_imp *p, int s, int64_t t, int64_t len, int *x, bool *causal,
                       fe_imp_match *m)
{
    int w = prod(p, s, "Where"), add = prod(p, s, "Add");
    *causal = false;
    if (w >= 0 && single(p, s)) {
        int cond = fe_imp_in(p, w, 0), a = fe_imp_in(p, w, 1), b = fe_imp_in(p, w, 2);
        double f;
        for (int side = 0; side < 2; side++) {
            int fill = side ? b : a, other = side ? a : b;
            if (cond < 0 || !fe_imp_v(p, cond)->is_const || !scalar(p, fill, &f) || !(f <= -1e9))
                continue;
            if (!check_mask(p, cond, t, len, side == 0, false, causal)) return false;
            *x = other;
            cover(m, w);
            return true;
        }
        return false;
    }
    if (add >= 0 && single(p, s)) {
        for (int side = 0; side < 2; side++) {
            int mk = fe_imp_in(p, add, side);
            if (!const_float(p, mk) || !check_mask(p, mk, t, len, true, true, causal)) continue;
            *x = fe_imp_in(p, add, 1 - side);
            cover(m, add);
            return true;
        }
    }
    *x = s;
    return true;
}

/* Rows of a [1, T, D] or [T, D] value. */
static int64_t tokens(const fe_imp *p, int v)
{
    const fe_imp_value *x = fe_imp_v(p, v);
    return x->dims[x->rank - 2];
}

static bool match_attention(fe_imp *p, int n, fe_imp_match *m)
{
    static const int64_t p0213[4] = {0, 2, 1, 3}, p0231[4] = {0, 2, 3, 1}, p0132[4] = {0, 1, 3, 2};
    *m = (fe_imp_match){
        .kind = FE_IMP_PAT_ATTENTION, .root = n, .first = n, .n_nodes = 1, .n_ops = 3};
    int t3 = fe_imp_in(p, n, 0), tr = prod(p, t3, "Transpose");
    if (tr < 0 || !single(p, t3) || !perm_is(&p->m->nodes[tr], p0213, 4)) return false;
    int o = fe_imp_in(p, tr, 0), mm2 = prod(p, o, "MatMul");
    if (mm2 < 0 || !single(p, o)) return false;
    int pr = fe_imp_in(p, mm2, 0), sm = prod(p, pr, "Softmax");
    if (sm < 0 || !single(p, pr)) return false;
    int64_t axis = attr_int(&p->m->nodes[sm], "axis", p->m->nodes[sm].opset >= 13 ? -1 : 1);
    if (axis != -1 && axis != 3) return false;
    cover(m, tr), cover(m, mm2), cover(m, sm);
    int64_t hq, hk, hv;
    if (!head_split(p, fe_imp_in(p, mm2, 1), p0213, &m->ops[2], &hv, m)) return false;
    /* the scores [1, H, T, S] */
    int sc = fe_imp_in(p, sm, 0);
    if (sc < 0 || fe_imp_v(p, sc)->rank != 4) return false;
    const fe_imp_value *sv = fe_imp_v(p, sc);
    int64_t t = sv->dims[2], len = sv->dims[3];
    int x, mm1, sn;
    if (!strip_mask(p, sc, t, len, &x, &m->causal, m)) return false;
    double scale = 1, c;
    if ((sn = prod(p, x, "Div")) >= 0 && single(p, x) && scalar(p, fe_imp_in(p, sn, 1), &c) &&
        c != 0) {
        scale = 1 / c, x = fe_imp_in(p, sn, 0), cover(m, sn);
    } else if ((sn = prod(p, x, "Mul")) >= 0 && single(p, x)) {
        int side = scalar(p, fe_imp_in(p, sn, 1), &c) ? 0 : 1;
        if (!scalar(p, fe_imp_in(p, sn, 1 - side), &c)) return false;
        scale = c, x = fe_imp_in(p, sn, side), cover(m, sn);
    }
    if ((mm1 = prod(p, x, "MatMul")) < 0 || !single(p, x)) return false;
    cover(m, mm1);
    if (!head_split(p, fe_imp_in(p, mm1, 0), p0213, &m->ops[0], &hq, m)) return false;
    int kt = fe_imp_in(p, mm1, 1), ktn = prod(p, kt, "Transpose");
    if (ktn >= 0 && perm_is(&p->m->nodes[ktn], p0132, 4) &&
        single(p, kt)) { /* K^T from K [1, H, S, d] */
        cover(m, ktn);
        if (!head_split(p, fe_imp_in(p, ktn, 0), p0213, &m->ops[1], &hk, m)) return false;
    } else if (!head_split(p, kt, p0231, &m->ops[1], &hk, m)) {
        return false;
    }
    if (hq != hk || hq != hv || hq < 1 || hq > 4096) return false;
    if (tokens(p, m->ops[0]) != t || tokens(p, m->ops[1]) != len || tokens(p, m->ops[2]) != len)
        return false;
    if (m->causal && t > len) return false;
    m->heads = (int)hq;
    const fe_imp_value *q = fe_imp_v(p, m->ops[0]);
    int64_t d = q->dims[q->rank - 1];
    if (d % hq) return false;
    double dflt = 1 / sqrt((double)(d / hq));
    m->scale = (float)scale == (float)dflt ? 0 : scale;
    return m->scale == 0 || isfinite(m->scale);
}

/* ---- dispatch ---------------------------------------------------------------------- */

void fe_imp_match_node(fe_imp *p, int n)
{
    const fe_onnx_node *nd = &p->m->nodes[n];
    fe_imp_match *m = &p->matches[n];
    m->kind = FE_IMP_PAT_NONE;
    if (*nd->domain || nd->n_outputs < 1) return;
    const char *op = nd->op_type;
    fe_imp_match t;
    if (strcmp(op, "Reshape") == 0 && match_attention(p, n, &t))
        *m = t;
    else if ((!strcmp(op, "Add") || !strcmp(op, "Mul") || !strcmp(op, "Div")) &&
             match_layernorm(p, n, &t))
        *m = t;
    else if ((!strcmp(op, "Mul") || !strcmp(op, "Div")) && match_rmsnorm(p, n, &t))
        *m = t;
    else if (strcmp(op, "Mul") == 0 && match_gelu(p, n, &t))
        *m = t;
    else if (strcmp(op, "Mul") == 0 && match_silu(p, n, &t))
        *m = t;
    else if (strcmp(op, "Add") == 0 && match_linear_bias(p, n, &t))
        *m = t;
    else if (strcmp(op, "MatMul") == 0 && match_matmul(p, n, &t))
        *m = t;
    else if (strcmp(op, "Gemm") == 0 && match_gemm(p, n, &t))
        *m = t;
}
