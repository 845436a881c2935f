/* ref_ops.c: fp32 kernels of the reference interpreter.
 *
 * They define what every op computes, so they are written for clarity
 * first; the two matrix products are blocked (the inner loop runs over
 * contiguous output columns, which compilers vectorise without reordering
 * any sum) so that a whole model runs in well under a second. Sums over a
 * reduction axis run in order k = 0, 1, ...; statistics of normalisations
 * are accumulated in double. */
#include <math.h>
#include <string.h>

#include "interp.h"

enum { ROWS = 4, COLS = 256 };

/* y[m0..m0+rows, n0..n0+cols] for the blocked products below. */
static void block_product(const float *x, int64_t ldx, const float *w, int64_t ldw, float *y,
                          int64_t ldy, int64_t rows, int64_t k, int64_t cols)
{
    float acc[ROWS][COLS];
    memset(acc, 0, sizeof acc);
    for (int64_t kk = 0; kk < k; kk++) {
        const float *wr = w + kk * ldw;
        for (int64_t r = 0; r < rows; r++) {
            float a = x[r * ldx + kk];
            for (int64_t j = 0; j < cols; j++) acc[r][j] += a * wr[j];
        }
    }
    for (int64_t r = 0; r < rows; r++) memcpy(y + r * ldy, acc[r], sizeof(float) * (size_t)cols);
}

void interp_ref_matmul(const float *a, const float *b, float *y, int64_t m, int64_t k, int64_t n)
{
    for (int64_t m0 = 0; m0 < m; m0 += ROWS)
        for (int64_t n0 = 0; n0 < n; n0 += COLS) {
            int64_t rows = m - m0 < ROWS ? m - m0 : ROWS, cols = n - n0 < COLS ? n - n0 : COLS;
            block_product(a + m0 * k, k, b + n0, n, y + m0 * n + n0, n, rows, k, cols);
        }
}

void interp_ref_linear(const float *x, const float *wt, const float *b, float *y, int64_t m,
                       int64_t k, int64_t n)
{
    interp_ref_matmul(x, wt, y, m, k, n);
    if (b)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) y[i * n + j] += b[j];
}

void interp_ref_transpose_2d(const float *x, float *y, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) y[c * rows + r] = x[r * cols + c];
}

void interp_ref_softmax(const float *x, float *y, int64_t outer, int64_t dim, int64_t inner)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            const float *xs = x + o * dim * inner + in;
            float *ys = y + o * dim * inner + in;
            float mx = -INFINITY;
            for (int64_t i = 0; i < dim; i++) mx = fmaxf(mx, xs[i * inner]);
            double sum = 0;
            for (int64_t i = 0; i < dim; i++) {
                float e = mx == -INFINITY ? 0.0f : expf(xs[i * inner] - mx);
                ys[i * inner] = e;
                sum += e;
            }
            float inv = sum > 0 ? (float)(1.0 / sum) : 0.0f;
            for (int64_t i = 0; i < dim; i++) ys[i * inner] *= inv;
        }
}

/* log(softmax(x)) = x - max - log(sum e^(x - max)), the sum in double. */
void interp_ref_log_softmax(const float *x, float *y, int64_t outer, int64_t dim, int64_t inner)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            const float *xs = x + o * dim * inner + in;
            float *ys = y + o * dim * inner + in;
            float mx = -INFINITY;
            for (int64_t i = 0; i < dim; i++) mx = fmaxf(mx, xs[i * inner]);
            if (mx == -INFINITY) mx = 0;
            double sum = 0;
            for (int64_t i = 0; i < dim; i++) sum += expf(xs[i * inner] - mx);
            float ls = logf((float)sum);
            for (int64_t i = 0; i < dim; i++) ys[i * inner] = xs[i * inner] - mx - ls;
        }
}

void interp_ref_layernorm(const float *x, const float *w, const float *b, float *y, int64_t rows,
                          int64_t d, float eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < d; i++) mean += xr[i];
        mean /= (double)d;
        for (int64_t i = 0; i < d; i++) var += (xr[i] - mean) * (xr[i] - mean);
        var /= (double)d;
        float inv = (float)(1.0 / sqrt(var + eps));
        for (int64_t i = 0; i < d; i++) y[r * d + i] = (float)(xr[i] - mean) * inv * w[i] + b[i];
    }
}

void interp_ref_rmsnorm(const float *x, const float *w, float *y, int64_t rows, int64_t d,
                        float eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        double ss = 0;
        for (int64_t i = 0; i < d; i++) ss += (double)xr[i] * xr[i];
        float inv = (float)(1.0 / sqrt(ss / (double)d + eps));
        for (int64_t i = 0; i < d; i++) y[r * d + i] = xr[i] * inv * w[i];
    }
}

float interp_ref_gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

float interp_ref_silu(float x) { return x / (1.0f + expf(-x)); }

/* Per head h: softmax(scale * q_h k_gᵀ + mask) v_g into columns h*hv... of
 * y, where g = h / (heads / kv_heads) is the key/value head query head h
 * reads. scratch holds t * s floats. Causal: query i sees keys
 * j <= i + (s - t) (the queries are the last t positions). */
void interp_ref_attention_grouped(const float *q, const float *k, const float *v, float *y,
                                  const interp_attn *a, float *scratch)
{
    int64_t t = a->t, s = a->s, hd = a->d / a->heads, hv = a->dv / a->heads;
    int64_t kd = hd * a->kv_heads, vd = hv * a->kv_heads;
    int group = a->heads / a->kv_heads;
    for (int h = 0; h < a->heads; h++) {
        int64_t kh = h / group;
        for (int64_t i = 0; i < t; i++) {
            float *row = scratch + i * s;
            int64_t visible = a->causal ? i + (s - t) + 1 : s;
            for (int64_t j = 0; j < s; j++) {
                if (j >= visible) {
                    row[j] = -INFINITY;
                    continue;
                }
                float dot = 0;
                for (int64_t c = 0; c < hd; c++)
                    dot += q[i * a->d + h * hd + c] * k[j * kd + kh * hd + c];
                row[j] = dot * a->scale;
            }
        }
        interp_ref_softmax(scratch, scratch, t, s, 1);
        for (int64_t i = 0; i < t; i++) {
            float *out = y + i * a->dv + h * hv;
            for (int64_t c = 0; c < hv; c++) out[c] = 0;
            for (int64_t j = 0; j < s; j++) {
                float p = scratch[i * s + j];
                if (p == 0) continue;
                for (int64_t c = 0; c < hv; c++) out[c] += p * v[j * vd + kh * hv + c];
            }
        }
    }
}

void interp_ref_attention(const float *q, const float *k, const float *v, float *y, int64_t t,
                          int64_t s, int64_t d, int64_t dv, int heads, bool causal, float scale,
                          float *scratch)
{
    interp_attn a = {t, s, d, dv, heads, heads, causal, scale};
    interp_ref_attention_grouped(q, k, v, y, &a, scratch);
}

/* Rotary position embedding of rows at positions first, first + 1, ...:
 * each head's pairs (j, j + hd/2), or (2j, 2j + 1) interleaved, turn by
 * the angle p * theta^(-2j/hd), whose cosine and sine are computed in
 * double precision and rounded to float (as Hugging Face's tables). */
void interp_ref_rope(const float *x, float *y, int64_t rows, int64_t d, int heads, float theta,
                     bool interleaved, int64_t first)
{
    int64_t hd = d / heads, half = hd / 2;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < half; j++) {
            double angle = (double)(first + r) * pow((double)theta, -2.0 * (double)j / (double)hd);
            float c = (float)cos(angle), sn = (float)sin(angle);
            for (int h = 0; h < heads; h++) {
                int64_t base = r * d + h * hd;
                int64_t i0 = interleaved ? base + 2 * j : base + j;
                int64_t i1 = interleaved ? i0 + 1 : i0 + half;
                float a = x[i0], b = x[i1];
                y[i0] = a * c - b * sn;
                y[i1] = b * c + a * sn;
            }
        }
}
