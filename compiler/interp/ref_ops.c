/* ref_ops.c: fp32 kernels of the reference interpreter.
 *
 * They define what every op computes, so they are written for clarity
 * first; the two matrix products are blocked (the inner loop runs over
 * contiguous output columns or rows, which compilers vectorise without
 * reordering any sum) so that a whole model runs in well under a second,
 * and a linear layer reads its weight in place, as [N, K] (no transposed
 * copy: a 1 B-parameter model's weights are read from the mapped file). Sums over a
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

/* ---- linear: x[m, k] · w[n, k]ᵀ ------------------------------------------ *
 * Rows of x are taken MB at a time, transposed into xt[k][MB], and each
 * tile of NB outputs keeps its MB x NB sums in registers while k runs in
 * order; panels of NP rows of w stay in cache across the row blocks. Each
 * sum is the same sequence of float multiplies and adds as the naive loop
 * (no fused multiply-add: the library is built with -ffp-contract=off), so
 * the clones for wider vectors give the same bits as the baseline one. */
enum { MB = 16, NB = 4, NP = 64 };

/* y[r][j] = sum over kk of xt[kk][r] * w[j][kk], for r < rows, j < nb. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
linear_tile(const float *xt, const float *w, int64_t k, int nb, float *y, int64_t ldy, int rows)
{
    float acc[NB][MB];
    memset(acc, 0, sizeof acc);
    if (nb == NB) {
        const float *w0 = w, *w1 = w + k, *w2 = w + 2 * k, *w3 = w + 3 * k;
        for (int64_t kk = 0; kk < k; kk++) {
            const float *xr = xt + kk * MB;
            float a0 = w0[kk], a1 = w1[kk], a2 = w2[kk], a3 = w3[kk];
            for (int r = 0; r < MB; r++) {
                acc[0][r] += xr[r] * a0;
                acc[1][r] += xr[r] * a1;
                acc[2][r] += xr[r] * a2;
                acc[3][r] += xr[r] * a3;
            }
        }
    } else {
        for (int j = 0; j < nb; j++)
            for (int64_t kk = 0; kk < k; kk++) {
                const float *xr = xt + kk * MB;
                float a = w[j * k + kk];
                for (int r = 0; r < MB; r++) acc[j][r] += xr[r] * a;
            }
    }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < nb; j++) y[r * ldy + j] = acc[j][r];
}

size_t interp_ref_linear_scratch(int64_t m, int64_t k)
{
    return (size_t)((m + MB - 1) / MB * MB * k);
}

void interp_ref_linear(const float *x, const float *w, const float *b, float *y, int64_t m,
                       int64_t k, int64_t n, float *xt)
{
    int64_t blocks = (m + MB - 1) / MB;
    for (int64_t bi = 0; bi < blocks; bi++) {
        float *t = xt + bi * k * MB;
        int64_t rows = m - bi * MB < MB ? m - bi * MB : MB;
        for (int64_t kk = 0; kk < k; kk++)
            for (int r = 0; r < MB; r++) t[kk * MB + r] = r < rows ? x[(bi * MB + r) * k + kk] : 0;
    }
    for (int64_t n0 = 0; n0 < n; n0 += NP) {
        int64_t n1 = n0 + NP < n ? n0 + NP : n;
        for (int64_t bi = 0; bi < blocks; bi++) {
            int rows = (int)(m - bi * MB < MB ? m - bi * MB : MB);
            for (int64_t j = n0; j < n1; j += NB)
                linear_tile(xt + bi * k * MB, w + j * k, k, (int)(n1 - j < NB ? n1 - j : NB),
                            y + bi * MB * n + j, n, rows);
        }
    }
    if (b)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) y[i * n + j] += b[j];
}

void interp_ref_transpose_2d(const float *x, float *y, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) y[c * rows + r] = x[r * cols + c];
}

/* The largest of a row of dim values inner apart (0 when all are -inf, so
 * that x - max stays -inf rather than NaN). */
static float row_max(const float *xs, int64_t dim, int64_t inner)
{
    float mx = -INFINITY;
    for (int64_t i = 0; i < dim; i++) mx = fmaxf(mx, xs[i * inner]);
    return mx == -INFINITY ? 0.0f : mx;
}

/* sum e^(x - mx) over the row, in double; each term also into es (if not NULL). */
static double row_exp_sum(const float *xs, int64_t dim, int64_t inner, float mx, float *es)
{
    double sum = 0;
    for (int64_t i = 0; i < dim; i++) {
        float e = expf(xs[i * inner] - mx);
        if (es) es[i * inner] = e;
        sum += e;
    }
    return sum;
}

void interp_ref_softmax(const float *x, float *y, int64_t outer, int64_t dim, int64_t inner)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            const float *xs = x + o * dim * inner + in;
            float *ys = y + o * dim * inner + in;
            double sum = row_exp_sum(xs, dim, inner, row_max(xs, dim, inner), ys);
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
            float mx = row_max(xs, dim, inner);
            float ls = logf((float)row_exp_sum(xs, dim, inner, mx, NULL));
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
 * reads. scratch holds t * s + s * d/heads floats (the scores, then k_g
 * transposed, so that a query's dot products with every key run over
 * contiguous keys, each still summed in order c = 0, 1, ...). Causal:
 * query i sees keys j <= i + (s - t) (the queries are the last t
 * positions). */
void interp_ref_attention_grouped(const float *q, const float *k, const float *v, float *y,
                                  const interp_attn *a, float *scratch)
{
    int64_t t = a->t, s = a->s, hd = a->d / a->heads, hv = a->dv / a->heads;
    int64_t kd = hd * a->kv_heads, vd = hv * a->kv_heads;
    int group = a->heads / a->kv_heads;
    float *kt = scratch + t * s;
    for (int h = 0; h < a->heads; h++) {
        int64_t kh = h / group;
        if (h % group == 0)
            for (int64_t j = 0; j < s; j++)
                for (int64_t c = 0; c < hd; c++) kt[c * s + j] = k[j * kd + kh * hd + c];
        for (int64_t i = 0; i < t; i++) {
            float *row = scratch + i * s;
            int64_t visible = a->causal ? i + (s - t) + 1 : s;
            if (visible > s) visible = s;
            if (visible < 0) visible = 0;
            for (int64_t j = 0; j < visible; j++) row[j] = 0;
            for (int64_t c = 0; c < hd; c++) {
                float qc = q[i * a->d + h * hd + c];
                const float *kc = kt + c * s;
                for (int64_t j = 0; j < visible; j++) row[j] += qc * kc[j];
            }
            for (int64_t j = 0; j < visible; j++) row[j] *= a->scale;
            for (int64_t j = visible; j < s; j++) row[j] = -INFINITY;
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
