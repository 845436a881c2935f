/* ref_math.c: fp32 reference kernels of the elementwise functions,
 * reductions and indexing ops (unary, binary, where, reduce, expand,
 * gather).
 *
 * They define what those ops compute (codegen/emit_pointwise.c and
 * emit_ops.c match them): the functions through libm's float functions,
 * with ONNX's conventions where they differ from C's (maximum and minimum
 * propagate NaN; clip keeps NaN; comparisons give 1.0 or 0.0). Sums and
 * means accumulate in double in the order of the input's elements. */
#include <math.h>
#include <string.h>

#include "interp.h"

float interp_ref_sigmoid(float x)
{
    /* e^-|x| never overflows: 1 / (1 + e) for x >= 0, e / (1 + e) below */
    float e = expf(-fabsf(x)), r = 1.0f / (1.0f + e);
    return x >= 0 ? r : e * r;
}

float interp_ref_unary(const ir_attrs *a, float x)
{
    switch ((ir_unary)a->fn) {
    case IR_UN_EXP: return expf(x);
    case IR_UN_LOG: return logf(x);
    case IR_UN_SQRT: return sqrtf(x);
    case IR_UN_ERF: return erff(x);
    case IR_UN_SIGMOID: return interp_ref_sigmoid(x);
    case IR_UN_ABS: return fabsf(x);
    case IR_UN_FLOOR: return floorf(x);
    case IR_UN_CEIL: return ceilf(x);
    case IR_UN_LEAKY_RELU: return x < 0 ? a->alpha * x : x;
    case IR_UN_HARD_SIGMOID: {
        float y = a->alpha * x + a->beta;
        return y < 0 ? 0.0f : y > 1 ? 1.0f : y;
    }
    case IR_UN_HARD_SWISH: {
        float y = x * (1.0f / 6) + 0.5f;
        return x * (y < 0 ? 0.0f : y > 1 ? 1.0f : y);
    }
    case IR_UN_CLIP: {
        float y = x < a->alpha ? a->alpha : x;
        return y > a->beta ? a->beta : y;
    }
    case IR_UN_COUNT: break;
    }
    QMC_ASSERT(!"unknown unary function");
    return 0;
}

float interp_ref_binary(ir_binary fn, float a, float b)
{
    switch (fn) {
    case IR_BIN_POW: return powf(a, b);
    case IR_BIN_MAX:
        if (isnan(a) || isnan(b)) return NAN;
        return a > b || (a == b && !signbit(a)) ? a : b;
    case IR_BIN_MIN:
        if (isnan(a) || isnan(b)) return NAN;
        return a < b || (a == b && signbit(a)) ? a : b;
    case IR_BIN_EQUAL: return a == b ? 1.0f : 0.0f;
    case IR_BIN_LESS: return a < b ? 1.0f : 0.0f;
    case IR_BIN_LESS_EQUAL: return a <= b ? 1.0f : 0.0f;
    case IR_BIN_GREATER: return a > b ? 1.0f : 0.0f;
    case IR_BIN_GREATER_EQUAL: return a >= b ? 1.0f : 0.0f;
    case IR_BIN_COUNT: break;
    }
    QMC_ASSERT(!"unknown binary function");
    return 0;
}

/* Strides of x's elements when x is broadcast to rank dims (0 along
 * broadcast dimensions). */
static void strides_in(const ir_node *x, int rank, int64_t *strides)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        int xi = i - (rank - x->rank);
        strides[i] = xi < 0 || x->shape[xi] == 1 ? 0 : s;
        if (xi >= 0) s *= x->shape[xi];
    }
}

void interp_ref_broadcast(const ir_node *n, const ir_node *const *in, const void *const *vals,
                          void *out)
{
    int k = n->op == IR_OP_WHERE ? 3 : n->op == IR_OP_EXPAND ? 1 : 2;
    int64_t st[3][IR_MAX_RANK], off[3] = {0}, idx[IR_MAX_RANK] = {0}, count = ir_node_count(n);
    for (int j = 0; j < k; j++) strides_in(in[j], n->rank, st[j]);
    const float *f[3] = {vals[0], k > 1 ? vals[1] : NULL, k > 2 ? vals[2] : NULL};
    for (int64_t i = 0; i < count; i++) {
        if (n->op == IR_OP_EXPAND)
            ((uint32_t *)out)[i] = ((const uint32_t *)vals[0])[off[0]];
        else if (n->op == IR_OP_WHERE)
            ((float *)out)[i] = f[0][off[0]] != 0 ? f[1][off[1]] : f[2][off[2]];
        else
            ((float *)out)[i] =
                interp_ref_binary((ir_binary)n->attr.fn, f[0][off[0]], f[1][off[1]]);
        for (int d = n->rank - 1; d >= 0; d--) { /* odometer increment */
            idx[d]++;
            for (int j = 0; j < k; j++) off[j] += st[j][d];
            if (idx[d] < n->shape[d]) break;
            for (int j = 0; j < k; j++) off[j] -= st[j][d] * idx[d];
            idx[d] = 0;
        }
    }
}

void interp_ref_reduce(const ir_node *x, const float *xv, const ir_node *n, float *y)
{
    /* the kept axes walk the output, the reduced ones each output's inputs */
    int64_t xs[IR_MAX_RANK], s = 1, kept[IR_MAX_RANK], kept_n[IR_MAX_RANK], red[IR_MAX_RANK],
                             red_n[IR_MAX_RANK], per = 1;
    int nk = 0, nr = 0;
    for (int d = x->rank - 1; d >= 0; d--) xs[d] = s, s *= x->shape[d];
    for (int d = 0; d < x->rank; d++) {
        if (n->attr.axes >> d & 1)
            red[nr] = xs[d], red_n[nr++] = x->shape[d], per *= x->shape[d];
        else
            kept[nk] = xs[d], kept_n[nk++] = x->shape[d];
    }
    int64_t count = ir_node_count(n), ki[IR_MAX_RANK] = {0}, base = 0;
    for (int64_t o = 0; o < count; o++) {
        int64_t ri[IR_MAX_RANK] = {0}, at = base;
        double acc = n->attr.fn == IR_RED_MAX ? -INFINITY : n->attr.fn == IR_RED_MIN ? INFINITY : 0;
        for (int64_t r = 0; r < per; r++) {
            float v = xv[at];
            if (n->attr.fn == IR_RED_MAX)
                acc = isnan(v) || isnan(acc) ? NAN : v > acc ? v : acc;
            else if (n->attr.fn == IR_RED_MIN)
                acc = isnan(v) || isnan(acc) ? NAN : v < acc ? v : acc;
            else
                acc += v;
            for (int d = nr - 1; d >= 0; d--) {
                ri[d]++;
                at += red[d];
                if (ri[d] < red_n[d]) break;
                at -= red[d] * ri[d];
                ri[d] = 0;
            }
        }
        y[o] = (float)(n->attr.fn == IR_RED_MEAN ? acc / (double)per : acc);
        for (int d = nk - 1; d >= 0; d--) {
            ki[d]++;
            base += kept[d];
            if (ki[d] < kept_n[d]) break;
            base -= kept[d] * ki[d];
            ki[d] = 0;
        }
    }
}

void interp_ref_cast(qmc_dtype from, qmc_dtype to, const void *x, void *y, int64_t count)
{
    for (int64_t i = 0; i < count; i++) {
        if (from == to) {
            ((uint32_t *)y)[i] = ((const uint32_t *)x)[i];
        } else if (to == QMC_DTYPE_F32) {
            ((float *)y)[i] = (float)((const int32_t *)x)[i];
        } else {
            float v = ((const float *)x)[i];
            ((int32_t *)y)[i] = isnan(v)              ? 0
                                : v >= 2147483648.0f  ? INT32_MAX
                                : v <= -2147483648.0f ? INT32_MIN
                                                      : (int32_t)v;
        }
    }
}

int64_t interp_ref_gather(const ir_node *x, const void *xv, const ir_node *idx, const int32_t *iv,
                          int axis, void *y)
{
    int64_t outer = 1, inner = 1, dim = x->shape[axis], count = ir_node_count(idx);
    for (int d = 0; d < axis; d++) outer *= x->shape[d];
    for (int d = axis + 1; d < x->rank; d++) inner *= x->shape[d];
    for (int64_t i = 0; i < count; i++)
        if (iv[i] < -dim || iv[i] >= dim) return i;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < count; i++) {
            int64_t at = iv[i] < 0 ? iv[i] + dim : iv[i];
            memcpy((char *)y + 4 * (o * count + i) * inner,
                   (const char *)xv + 4 * (o * dim + at) * inner, 4 * (size_t)inner);
        }
    return -1;
}
