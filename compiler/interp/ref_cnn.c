/* ref_cnn.c: what the convolutional ops compute, in fp32 (the oracle of
 * their kernels), and their evaluation by the interpreter.
 *
 * Written for clarity first. A convolution is lowered per image and group
 * to a matrix product: its input windows as the columns of a matrix
 * [C/groups·kh·kw, OH·OW] (im2col, the weight's own column order), times
 * the weight [M/groups, C/groups·kh·kw] (interp_ref_matmul, sums in order
 * k = 0, 1, ...). Activations are read and written through ir_image
 * strides, so channels-first and channels-last layouts (attr.win.nhwc) are
 * the same code. Resize and pad follow ONNX's reference (edge-clamped
 * neighbours, per-axis coordinate transforms). With `:a8` on a conv's
 * weight its input is quantized to int8 (scale max|x| / 127 or the
 * calibrated one, codes x · (1/scale)) and dequantized before the product, as the
 * kernels compute: a pointwise conv (ir_conv_pointwise) quantizes each
 * pixel's channels with their own scale, any other conv each image. */
#include <math.h>
#include <string.h>

#include "interp.h"

static int64_t at(const ir_image *im, int64_t n, int64_t c, int64_t h, int64_t w)
{
    return n * im->sn + c * im->sc + h * im->sh + w * im->sw;
}

float interp_ref_act(const ir_window *w, float v)
{
    if (w->post) {
        ir_window a = *w;
        a.post = false;
        return interp_ref_act(&a, v) * w->post_mul + w->post_add;
    }
    switch (w->act) {
    case IR_ACT_RELU: return v > 0 ? v : 0;
    case IR_ACT_CLIP: { /* as clip: NaN stays NaN */
        float y = v < w->act_min ? w->act_min : v;
        return y > w->act_max ? w->act_max : y;
    }
    case IR_ACT_HARDSWISH: return interp_ref_hardswish(v);
    case IR_ACT_NONE: break;
    }
    return v;
}

float interp_ref_hardsigmoid(float x, float alpha, float beta)
{
    return fmaxf(0.0f, fminf(1.0f, alpha * x + beta));
}

float interp_ref_hardswish(float x) { return x * interp_ref_hardsigmoid(x, 1.0f / 6, 0.5f); }

/* ---- convolution ------------------------------------------------------------- */

size_t interp_ref_conv_scratch(const ir_image *xi, const ir_image *yi, const ir_window *w,
                               int64_t m)
{
    int64_t k = xi->c / w->groups * w->kernel[0] * w->kernel[1], p = yi->h * yi->w;
    return (size_t)(k * p + m / w->groups * p);
}

/* The windows of image n, group g as columns: col[k][p], k = (c, kh, kw). */
static void im2col(const float *x, const ir_image *xi, const ir_image *yi, const ir_window *w,
                   int64_t n, int64_t c0, int64_t cg, float *col)
{
    int64_t p = yi->h * yi->w, k = 0;
    for (int64_t c = 0; c < cg; c++)
        for (int64_t kh = 0; kh < w->kernel[0]; kh++)
            for (int64_t kw = 0; kw < w->kernel[1]; kw++, k++)
                for (int64_t oh = 0; oh < yi->h; oh++)
                    for (int64_t ow = 0; ow < yi->w; ow++) {
                        int64_t ih = oh * w->stride[0] - w->pad[0] + kh * w->dilation[0];
                        int64_t iw = ow * w->stride[1] - w->pad[1] + kw * w->dilation[1];
                        bool in = ih >= 0 && ih < xi->h && iw >= 0 && iw < xi->w;
                        col[k * p + oh * yi->w + ow] = in ? x[at(xi, n, c0 + c, ih, iw)] : 0.0f;
                    }
}

void interp_ref_conv(const float *x, const ir_image *xi, const float *wt, const float *b, float *y,
                     const ir_image *yi, const ir_window *w, float *scratch)
{
    int64_t m = yi->c, mg = m / w->groups, cg = xi->c / w->groups;
    int64_t k = cg * w->kernel[0] * w->kernel[1], p = yi->h * yi->w;
    float *col = scratch, *prod = scratch + k * p;
    for (int64_t n = 0; n < xi->n; n++)
        for (int64_t g = 0; g < w->groups; g++) {
            im2col(x, xi, yi, w, n, g * cg, cg, col);
            interp_ref_matmul(wt + g * mg * k, col, prod, mg, k, p);
            for (int64_t j = 0; j < mg; j++) {
                int64_t co = g * mg + j;
                for (int64_t q = 0; q < p; q++) {
                    float v = prod[j * p + q] + (b ? b[co] : 0.0f);
                    y[at(yi, n, co, q / yi->w, q % yi->w)] = interp_ref_act(w, v);
                }
            }
        }
}

/* Each input pixel scatters into the output: y[oh, ow] += x[ih, iw] ·
 * w[c][m][kh][kw] at oh = ih·stride - pad + kh·dilation. */
void interp_ref_conv_transpose(const float *x, const ir_image *xi, const float *wt, const float *b,
                               float *y, const ir_image *yi, const ir_window *w)
{
    int64_t mg = yi->c / w->groups, cg = xi->c / w->groups, kk = w->kernel[0] * w->kernel[1];
    for (int64_t n = 0; n < yi->n; n++)
        for (int64_t co = 0; co < yi->c; co++)
            for (int64_t oh = 0; oh < yi->h; oh++)
                for (int64_t ow = 0; ow < yi->w; ow++) y[at(yi, n, co, oh, ow)] = b ? b[co] : 0;
    for (int64_t n = 0; n < xi->n; n++)
        for (int64_t c = 0; c < xi->c; c++)
            for (int64_t ih = 0; ih < xi->h; ih++)
                for (int64_t iw = 0; iw < xi->w; iw++) {
                    float v = x[at(xi, n, c, ih, iw)];
                    int64_t g = c / cg;
                    for (int64_t j = 0; j < mg; j++)
                        for (int64_t kh = 0; kh < w->kernel[0]; kh++)
                            for (int64_t kw = 0; kw < w->kernel[1]; kw++) {
                                int64_t oh = ih * w->stride[0] - w->pad[0] + kh * w->dilation[0];
                                int64_t ow = iw * w->stride[1] - w->pad[1] + kw * w->dilation[1];
                                if (oh < 0 || oh >= yi->h || ow < 0 || ow >= yi->w) continue;
                                y[at(yi, n, g * mg + j, oh, ow)] +=
                                    v * wt[(c * mg + j) * kk + kh * w->kernel[1] + kw];
                            }
                }
}

/* ---- pooling and normalisation ------------------------------------------------ */

void interp_ref_pool(bool max, const float *x, const ir_image *xi, float *y, const ir_image *yi,
                     const ir_window *w)
{
    for (int64_t n = 0; n < yi->n; n++)
        for (int64_t c = 0; c < yi->c; c++)
            for (int64_t oh = 0; oh < yi->h; oh++)
                for (int64_t ow = 0; ow < yi->w; ow++) {
                    float acc = max ? -INFINITY : 0.0f;
                    int64_t count = 0, padded = 0;
                    for (int64_t kh = 0; kh < w->kernel[0]; kh++)
                        for (int64_t kw = 0; kw < w->kernel[1]; kw++) {
                            int64_t ih = oh * w->stride[0] - w->pad[0] + kh * w->dilation[0];
                            int64_t iw = ow * w->stride[1] - w->pad[1] + kw * w->dilation[1];
                            /* count_include_pad counts the window inside the
                             * padded input, not beyond it (ceil mode) */
                            if (ih < xi->h + w->pad[2] && iw < xi->w + w->pad[3]) padded++;
                            if (ih < 0 || ih >= xi->h || iw < 0 || iw >= xi->w) continue;
                            float v = x[at(xi, n, c, ih, iw)];
                            acc = max ? (v > acc || isnan(v) ? v : acc) : acc + v;
                            count++;
                        }
                    if (!max) acc /= (float)(w->count_include_pad ? padded : count);
                    y[at(yi, n, c, oh, ow)] = acc;
                }
}

void interp_ref_global_avgpool(const float *x, const ir_image *xi, float *y, const ir_image *yi)
{
    for (int64_t n = 0; n < xi->n; n++)
        for (int64_t c = 0; c < xi->c; c++) {
            double sum = 0;
            for (int64_t h = 0; h < xi->h; h++)
                for (int64_t w = 0; w < xi->w; w++) sum += x[at(xi, n, c, h, w)];
            y[at(yi, n, c, 0, 0)] = (float)(sum / (double)(xi->h * xi->w));
        }
}

void interp_ref_batchnorm_coeffs(const float *scale, const float *bias, const float *mean,
                                 const float *var, float eps, int64_t c, float *mul, float *add)
{
    for (int64_t i = 0; i < c; i++) {
        mul[i] = scale[i] / sqrtf(var[i] + eps);
        add[i] = bias[i] - mean[i] * mul[i];
    }
}

/* ---- resize and pad --------------------------------------------------------------- */

size_t interp_ref_resize_scratch(const int64_t *yshape, int rank)
{
    size_t n = 0;
    for (int d = 0; d < rank; d++) n += (size_t)yshape[d] * 4;
    return n;
}

void interp_ref_resize(const float *x, const int64_t *xshape, float *y, const int64_t *yshape,
                       int rank, const ir_cnn_attrs *a, float *scratch)
{
    /* per axis and output index: i0, i1 (as floats) and the weight */
    float *tab[IR_MAX_RANK];
    int64_t xs[IR_MAX_RANK], s = 1, count = 1;
    for (int d = rank - 1; d >= 0; d--) xs[d] = s, s *= xshape[d];
    for (int d = 0; d < rank; d++) {
        tab[d] = scratch;
        scratch += yshape[d] * 3;
        count *= yshape[d];
        for (int64_t o = 0; o < yshape[d]; o++) {
            int64_t i0, i1;
            float f;
            ir_resize_source(a, d, xshape[d], o, &i0, &i1, &f);
            tab[d][o * 3] = (float)i0, tab[d][o * 3 + 1] = (float)i1, tab[d][o * 3 + 2] = f;
        }
    }
    int64_t idx[IR_MAX_RANK] = {0};
    for (int64_t e = 0; e < count; e++) {
        /* sum over the corners (2 per axis whose weight is not 0) */
        float v = 0;
        for (int corner = 0; corner < 1 << rank; corner++) {
            float wgt = 1;
            int64_t off = 0;
            for (int d = 0; d < rank && wgt != 0; d++) {
                const float *t = &tab[d][idx[d] * 3];
                bool hi = corner >> d & 1;
                if (hi && t[2] == 0) wgt = 0;
                wgt *= hi ? t[2] : 1 - t[2];
                off += (int64_t)t[hi ? 1 : 0] * xs[d];
            }
            if (wgt != 0) v += wgt * x[off];
        }
        y[e] = v;
        for (int d = rank - 1; d >= 0; d--) {
            if (++idx[d] < yshape[d]) break;
            idx[d] = 0;
        }
    }
}

void interp_ref_pad(const float *x, const int64_t *xshape, float *y, const int64_t *yshape,
                    int rank, const ir_cnn_attrs *a)
{
    int64_t xs[IR_MAX_RANK], s = 1, count = 1, idx[IR_MAX_RANK] = {0};
    for (int d = rank - 1; d >= 0; d--) xs[d] = s, s *= xshape[d], count *= yshape[d];
    for (int64_t e = 0; e < count; e++) {
        int64_t off = 0;
        for (int d = 0; d < rank && off >= 0; d++) {
            int64_t i = ir_pad_source(a->pad_mode, idx[d], a->pads[d], xshape[d]);
            off = i < 0 ? -1 : off + i * xs[d];
        }
        y[e] = off < 0 ? a->pad_value : x[off];
        for (int d = rank - 1; d >= 0; d--) {
            if (++idx[d] < yshape[d]) break;
            idx[d] = 0;
        }
    }
}

/* ---- evaluation ------------------------------------------------------------------- */

static ir_image image(const ir_node *n, const ir_node *op)
{
    return ir_image_of(n->shape, op->attr.win.spatial, op->attr.win.nhwc);
}

size_t interp_cnn_scratch(const ir_graph *g, const ir_node *n)
{
    const ir_node *x = n->n_inputs ? &g->nodes[n->inputs[0]] : NULL;
    switch (n->op) {
    case IR_OP_CONV: {
        ir_image xi = image(x, n), yi = image(n, n);
        /* the im2col matrix and product, and (:a8) the quantized input, a
         * row of it and its codes */
        return interp_ref_conv_scratch(&xi, &yi, &n->attr.win, yi.c) +
               (size_t)ir_node_count(x) * 9 / 4 + 1;
    }
    case IR_OP_BATCHNORM: return (size_t)(2 * g->nodes[n->inputs[1]].shape[0]);
    case IR_OP_RESIZE: return interp_ref_resize_scratch(n->shape, n->rank);
    default: return 0;
    }
}

/* One row of count values (stride apart) quantized to int8 and back, into
 * xs: scale s = max|x| / 127 (1 for a row of zeros; NaN is not a maximum)
 * or the fixed one, codes q_int_encode(x · (1/s)) (a multiplication by the
 * reciprocal, as the kernels compute it: a division per value would cost
 * them more than the convolution of a pointwise layer). */
static void quantize_row(const float *x, int64_t count, int64_t stride, float fixed_scale,
                         float *row, int8_t *codes, float *xs)
{
    float amax = 0;
    for (int64_t j = 0; j < count; j++) row[j] = x[j * stride], amax = fmaxf(amax, fabsf(row[j]));
    float scale = fixed_scale > 0 ? fixed_scale : amax > 0 ? amax / 127.0f : 1.0f;
    float inv = 1.0f / scale;
    for (int64_t j = 0; j < count; j++) codes[j] = (int8_t)q_int_encode(row[j] * inv, 0, -127, 127);
    for (int64_t j = 0; j < count; j++) xs[j * stride] = (float)codes[j] * scale;
}

/* `:a8`: x quantized to int8 and back, into xs: each pixel's channels
 * (pointwise convs), or each image. */
static const float *quantize_input(const float *x, const ir_image *xi, bool per_pixel,
                                   float fixed_scale, float *xs)
{
    float *row = xs + xi->n * xi->sn;
    int8_t *codes = (int8_t *)(row + xi->sn);
    for (int64_t n = 0; n < xi->n; n++) {
        if (!per_pixel) {
            quantize_row(x + n * xi->sn, xi->sn, 1, fixed_scale, row, codes, xs + n * xi->sn);
            continue;
        }
        for (int64_t h = 0; h < xi->h; h++)
            for (int64_t w = 0; w < xi->w; w++) {
                int64_t at = n * xi->sn + h * xi->sh + w * xi->sw;
                quantize_row(x + at, xi->c, xi->sc, fixed_scale, row, codes, xs + at);
            }
    }
    return xs;
}

void interp_eval_cnn(const ir_graph *g, const ir_node *n, const void *const *buf, float *y,
                     float *scratch, bool act8, float act_scale)
{
    const ir_node *xn = &g->nodes[n->inputs[0]];
    const float *x = buf[n->inputs[0]];
    const float *in1 = n->n_inputs > 1 ? buf[n->inputs[1]] : NULL;
    int64_t count = ir_node_count(n);
    switch (n->op) {
    case IR_OP_CONV: {
        ir_image xi = image(xn, n), yi = image(n, n);
        float *conv_scratch = scratch;
        if (act8) {
            x = quantize_input(x, &xi, ir_conv_pointwise(n), act_scale, scratch);
            conv_scratch = scratch + ir_node_count(xn) * 9 / 4 + 1;
        }
        interp_ref_conv(x, &xi, in1, n->n_inputs == 3 ? buf[n->inputs[2]] : NULL, y, &yi,
                        &n->attr.win, conv_scratch);
        return;
    }
    case IR_OP_CONV_TRANSPOSE: {
        ir_image xi = image(xn, n), yi = image(n, n);
        interp_ref_conv_transpose(x, &xi, in1, n->n_inputs == 3 ? buf[n->inputs[2]] : NULL, y, &yi,
                                  &n->attr.win);
        return;
    }
    case IR_OP_BATCHNORM: {
        int64_t c = g->nodes[n->inputs[1]].shape[0];
        float *mul = scratch, *add = scratch + c;
        interp_ref_batchnorm_coeffs(in1, buf[n->inputs[2]], buf[n->inputs[3]], buf[n->inputs[4]],
                                    n->attr.eps, c, mul, add);
        int64_t inner = n->attr.win.nhwc ? 1 : count / xn->shape[0] / c;
        for (int64_t i = 0; i < count; i++) {
            int64_t ch = i / inner % c;
            y[i] = x[i] * mul[ch] + add[ch];
        }
        return;
    }
    case IR_OP_MAXPOOL:
    case IR_OP_AVGPOOL: {
        ir_image xi = image(xn, n), yi = image(n, n);
        interp_ref_pool(n->op == IR_OP_MAXPOOL, x, &xi, y, &yi, &n->attr.win);
        return;
    }
    case IR_OP_GLOBAL_AVGPOOL: {
        ir_image xi = image(xn, n), yi = image(n, n);
        interp_ref_global_avgpool(x, &xi, y, &yi);
        return;
    }
    case IR_OP_RESIZE:
        interp_ref_resize(x, xn->shape, y, n->shape, n->rank, &n->attr.cnn, scratch);
        return;
    case IR_OP_PAD: interp_ref_pad(x, xn->shape, y, n->shape, n->rank, &n->attr.cnn); return;
    case IR_OP_HARDSIGMOID:
        for (int64_t i = 0; i < count; i++)
            y[i] = interp_ref_hardsigmoid(x[i], n->attr.cnn.alpha, n->attr.cnn.beta);
        return;
    case IR_OP_HARDSWISH:
        for (int64_t i = 0; i < count; i++) y[i] = interp_ref_hardswish(x[i]);
        return;
    case IR_OP_PRELU: {
        /* the slope's trailing axes align with x's (numpy broadcasting) */
        const ir_node *sn = &g->nodes[n->inputs[1]];
        int64_t ss[IR_MAX_RANK], s = 1, idx[IR_MAX_RANK] = {0}, off = 0;
        for (int d = n->rank - 1; d >= 0; d--) {
            int sd = d - (n->rank - sn->rank);
            ss[d] = sd < 0 || sn->shape[sd] == 1 ? 0 : s;
            if (sd >= 0) s *= sn->shape[sd];
        }
        for (int64_t i = 0; i < count; i++) {
            y[i] = x[i] < 0 ? in1[off] * x[i] : x[i];
            for (int d = n->rank - 1; d >= 0; d--) {
                off += ss[d];
                if (++idx[d] < n->shape[d]) break;
                off -= ss[d] * idx[d];
                idx[d] = 0;
            }
        }
        return;
    }
    default: break;
    }
    QMC_ASSERT(!"not a convolutional op");
}
