/* test_ref_cnn.c: the interpreter's convolutional kernels against direct
 * formulas written independently here: convolution (1-D and 2-D, strides,
 * dilations, asymmetric padding, groups and depthwise, odd sizes, fused
 * activations) as the literal sum over each window in double, in both
 * layouts; conv_transpose as a gather; pooling with and without
 * count_include_pad and ceil mode; resize and pad on hand-computed cases. */
#include <math.h>

#include "unit.h"

#include "interp.h"

static void fill(float *x, int64_t n, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 8) / 8388608.0 - 1.0);
    }
}

/* NCHW -> NHWC */
static void to_nhwc(const float *x, float *y, int64_t n, int64_t c, int64_t h, int64_t w)
{
    for (int64_t a = 0; a < n; a++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t i = 0; i < h * w; i++)
                y[(a * h * w + i) * c + k] = x[(a * c + k) * h * w + i];
}

typedef struct conv_case {
    int64_t n, c, h, w, m, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups;
    ir_act act;
} conv_case;

static double direct_conv(const conv_case *t, const float *x, const float *wt, const float *b,
                          int64_t n, int64_t co, int64_t oh, int64_t ow)
{
    int64_t cg = t->c / t->groups, mg = t->m / t->groups, g = co / mg;
    double acc = b[co];
    for (int64_t ci = 0; ci < cg; ci++)
        for (int64_t i = 0; i < t->kh; i++)
            for (int64_t j = 0; j < t->kw; j++) {
                int64_t ih = oh * t->sh - t->pt + i * t->dh, iw = ow * t->sw - t->pl + j * t->dw;
                if (ih < 0 || ih >= t->h || iw < 0 || iw >= t->w) continue;
                acc += (double)x[((n * t->c + g * cg + ci) * t->h + ih) * t->w + iw] *
                       wt[((co * cg + ci) * t->kh + i) * t->kw + j];
            }
    if (t->act == IR_ACT_RELU) acc = acc > 0 ? acc : 0;
    if (t->act == IR_ACT_CLIP) acc = fmin(fmax(acc, 0), 0.5);
    return acc;
}

static void check_conv(const conv_case *t, bool nhwc)
{
    ir_window w = {.spatial = t->kh == 1 && t->h == 1 ? 1 : 2,
                   .kernel = {t->kh, t->kw},
                   .stride = {t->sh, t->sw},
                   .dilation = {t->dh, t->dw},
                   .pad = {t->pt, t->pl, t->pb, t->pr},
                   .groups = t->groups,
                   .nhwc = nhwc,
                   .act = t->act,
                   .act_min = 0,
                   .act_max = 0.5f};
    int64_t oh = ir_window_out(t->h, t->kh, t->sh, t->dh, t->pt, t->pb, false);
    int64_t ow = ir_window_out(t->w, t->kw, t->sw, t->dw, t->pl, t->pr, false);
    int64_t xs[4] = {t->n, t->c, t->h, t->w}, ys[4] = {t->n, t->m, oh, ow};
    if (nhwc) xs[1] = t->h, xs[2] = t->w, xs[3] = t->c, ys[1] = oh, ys[2] = ow, ys[3] = t->m;
    if (w.spatial == 1 && nhwc) /* drop the height of 1 */
        xs[1] = xs[2], xs[2] = xs[3], ys[1] = ys[2], ys[2] = ys[3];
    else if (w.spatial == 1)
        xs[2] = xs[3], ys[2] = ys[3];
    ir_image xi = ir_image_of(xs, w.spatial, nhwc), yi = ir_image_of(ys, w.spatial, nhwc);
    int64_t nx = t->n * t->c * t->h * t->w, ny = t->n * t->m * oh * ow;
    int64_t nw = t->m * t->c / t->groups * t->kh * t->kw;
    float *x = malloc(sizeof(float) * (size_t)nx), *xl = malloc(sizeof(float) * (size_t)nx);
    float *wt = malloc(sizeof(float) * (size_t)nw), *b = malloc(sizeof(float) * (size_t)t->m);
    float *y = malloc(sizeof(float) * (size_t)ny);
    float *scratch = malloc(sizeof(float) * interp_ref_conv_scratch(&xi, &yi, &w, t->m));
    fill(x, nx, 3), fill(wt, nw, 5), fill(b, t->m, 9);
    if (nhwc)
        to_nhwc(x, xl, t->n, t->c, t->h, t->w);
    else
        memcpy(xl, x, sizeof(float) * (size_t)nx);
    interp_ref_conv(xl, &xi, wt, b, y, &yi, &w, scratch);
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t co = 0; co < t->m; co++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double want = direct_conv(t, x, wt, b, n, co, i, j);
                    float got = y[n * yi.sn + co * yi.sc + i * yi.sh + j * yi.sw];
                    if (!(fabs(got - want) <= 1e-5 * (1 + fabs(want))))
                        fail_msg(
                            "case c=%lld m=%lld g=%lld nhwc=%d at %lld,%lld,%lld,%lld: %g != %g",
                            (long long)t->c, (long long)t->m, (long long)t->groups, nhwc,
                            (long long)n, (long long)co, (long long)i, (long long)j, got, want);
                }
    free(x), free(xl), free(wt), free(b), free(y), free(scratch);
}

static void test_conv_against_direct_sums(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        /* n c  h  w  m kh kw sh sw dh dw pt pl pb pr g */
        {1, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, IR_ACT_NONE},   /* 3x3 same */
        {2, 5, 9, 11, 7, 3, 3, 2, 2, 1, 1, 1, 1, 0, 1, 1, IR_ACT_RELU},  /* stride 2, asymmetric */
        {1, 6, 8, 7, 9, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 3, IR_ACT_NONE},   /* 1x1, groups 3 */
        {1, 8, 10, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8, IR_ACT_CLIP},  /* depthwise */
        {1, 4, 11, 13, 4, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 4, IR_ACT_NONE}, /* depthwise 5x5 s2 */
        {1, 3, 12, 10, 5, 3, 2, 1, 2, 2, 3, 2, 0, 1, 3, 1, IR_ACT_NONE}, /* dilations */
        {1, 4, 1, 17, 6, 1, 3, 1, 2, 1, 2, 0, 2, 0, 1, 2, IR_ACT_NONE},  /* 1-D */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_conv(&cases[i], false);
        check_conv(&cases[i], true);
    }
}

static void test_conv_transpose_as_gather(void **state)
{
    (void)state;
    /* y[o] = sum over (i, k) with o = i*s - p + k*d of x[i] w[k], one axis */
    int64_t c = 2, m = 3, h = 1, w = 6, k = 3, s = 2, d = 2, p = 1, op = 1;
    ir_window win = {.spatial = 1,
                     .kernel = {1, k},
                     .stride = {1, s},
                     .dilation = {1, d},
                     .pad = {0, p, 0, p},
                     .out_pad = {0, op},
                     .groups = 1};
    int64_t ow = s * (w - 1) + op + d * (k - 1) + 1 - 2 * p;
    int64_t xs[3] = {1, c, w}, ys[3] = {1, m, ow};
    ir_image xi = ir_image_of(xs, 1, false), yi = ir_image_of(ys, 1, false);
    float x[12], wt[18], b[3], y[64];
    fill(x, c * w, 1), fill(wt, c * m * k, 2), fill(b, m, 3);
    (void)h;
    interp_ref_conv_transpose(x, &xi, wt, b, y, &yi, &win);
    for (int64_t co = 0; co < m; co++)
        for (int64_t o = 0; o < ow; o++) {
            double want = b[co];
            for (int64_t ci = 0; ci < c; ci++)
                for (int64_t i = 0; i < w; i++)
                    for (int64_t j = 0; j < k; j++)
                        if (i * s - p + j * d == o)
                            want += (double)x[ci * w + i] * wt[(ci * m + co) * k + j];
            assert_true(fabs(y[co * ow + o] - want) < 1e-5);
        }
}

static void test_pooling(void **state)
{
    (void)state;
    /* 1 x 1 x 3 x 4, kernel 2, stride 2, pads 1 everywhere, ceil mode */
    float x[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, y[6];
    ir_window w = {.spatial = 2,
                   .kernel = {2, 2},
                   .stride = {2, 2},
                   .dilation = {1, 1},
                   .pad = {1, 1, 1, 1},
                   .ceil_mode = true};
    int64_t xs[4] = {1, 1, 3, 4};
    int64_t oh = ir_window_out(3, 2, 2, 1, 1, 1, true), ow = ir_window_out(4, 2, 2, 1, 1, 1, true);
    /* a third row of windows would start in the bottom padding: none */
    assert_int_equal(oh, 2);
    assert_int_equal(ow, 3); /* (4 + 2 - 2) / 2 + 1: the last window half in the padding */
    int64_t ys[4] = {1, 1, oh, ow};
    ir_image xi = ir_image_of(xs, 2, false), yi = ir_image_of(ys, 2, false);
    interp_ref_pool(true, x, &xi, y, &yi, &w);
    const float max[6] = {1, 3, 4, 9, 11, 12};
    assert_memory_equal(y, max, sizeof max);
    interp_ref_pool(false, x, &xi, y, &yi, &w);
    const float mean[6] = {1, 2.5f, 4, 7, 8.5f, 10};
    for (int i = 0; i < 6; i++) assert_true(fabsf(y[i] - mean[i]) < 1e-6f);
    /* counting the padding: every window here lies in the padded input, so
     * each divides by 4 */
    w.count_include_pad = true;
    interp_ref_pool(false, x, &xi, y, &yi, &w);
    const float incl[6] = {1.f / 4, 5.f / 4, 4.f / 4, 14.f / 4, 34.f / 4, 20.f / 4};
    for (int i = 0; i < 6; i++) assert_true(fabsf(y[i] - incl[i]) < 1e-6f);
    /* a window reaching past the padded input (kernel 3, stride 2 over 4
     * columns padded by 1: the last covers columns 3, 4, 5 of -1 .. 4)
     * counts only what is inside it */
    w.kernel[0] = 1, w.kernel[1] = 3, w.pad[0] = w.pad[2] = 0;
    assert_int_equal(ir_window_out(4, 3, 2, 1, 1, 1, true), 3);
    int64_t zs[4] = {1, 1, 3, 3};
    ir_image zi = ir_image_of(zs, 2, false);
    float z[9];
    interp_ref_pool(false, x, &xi, z, &zi, &w);
    assert_true(fabsf(z[2] - 4.f / 2) < 1e-6f);
}

static void test_resize_and_pad(void **state)
{
    (void)state;
    float x[4] = {1, 2, 3, 4}, y[16];
    int64_t xs[2] = {2, 2}, ys[2] = {4, 4};
    ir_cnn_attrs a = {.scales = {2, 2}, .mode = IR_RESIZE_LINEAR, .coord = IR_COORD_HALF_PIXEL};
    float scratch[64];
    interp_ref_resize(x, xs, y, ys, 2, &a, scratch);
    /* half-pixel: output 0 and 3 clamp to the edges, 1 and 2 read 0.25/0.75 */
    const float lin[16] = {1,    1.25f, 1.75f, 2,    1.5f, 1.75f, 2.25f, 2.5f,
                           2.5f, 2.75f, 3.25f, 3.5f, 3,    3.25f, 3.75f, 4};
    for (int i = 0; i < 16; i++) assert_true(fabsf(y[i] - lin[i]) < 1e-6f);
    a.mode = IR_RESIZE_NEAREST;
    a.coord = IR_COORD_ASYMMETRIC;
    a.nearest = IR_NEAREST_FLOOR;
    interp_ref_resize(x, xs, y, ys, 2, &a, scratch);
    const float near[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
    assert_memory_equal(y, near, sizeof near);
    /* pad [2, 3] by one column before and two after, in each mode */
    float p[2 * 6];
    int64_t ps[2] = {2, 3}, qs[2] = {2, 6};
    float src[6] = {1, 2, 3, 4, 5, 6};
    ir_cnn_attrs pa = {.pads = {0, 1, 0, 2}, .pad_mode = IR_PAD_CONSTANT, .pad_value = -1};
    interp_ref_pad(src, ps, p, qs, 2, &pa);
    const float cst[12] = {-1, 1, 2, 3, -1, -1, -1, 4, 5, 6, -1, -1};
    assert_memory_equal(p, cst, sizeof cst);
    pa.pad_mode = IR_PAD_REFLECT;
    interp_ref_pad(src, ps, p, qs, 2, &pa);
    const float refl[12] = {2, 1, 2, 3, 2, 1, 5, 4, 5, 6, 5, 4};
    assert_memory_equal(p, refl, sizeof refl);
    pa.pad_mode = IR_PAD_EDGE;
    interp_ref_pad(src, ps, p, qs, 2, &pa);
    const float edge[12] = {1, 1, 2, 3, 3, 3, 4, 4, 5, 6, 6, 6};
    assert_memory_equal(p, edge, sizeof edge);
}

static void test_activations(void **state)
{
    (void)state;
    assert_true(interp_ref_hardswish(-3.5f) == 0);
    assert_true(interp_ref_hardswish(3.5f) == 3.5f);
    assert_true(fabsf(interp_ref_hardswish(1) - 1 * (1.f / 6 + 0.5f)) < 1e-7f);
    assert_true(interp_ref_hardsigmoid(10, 0.2f, 0.5f) == 1);
    assert_true(interp_ref_hardsigmoid(-10, 0.2f, 0.5f) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_against_direct_sums),
        cmocka_unit_test(test_conv_transpose_as_gather),
        cmocka_unit_test(test_pooling),
        cmocka_unit_test(test_resize_and_pad),
        cmocka_unit_test(test_activations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
