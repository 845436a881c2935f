/* stats.c: how far a quantized tensor is from the original, and how far a
 * quantized model's output is from the reference output.
 *
 * Needs: two arrays of the same length. Guarantees: sums in double, so the
 * figures do not depend on the tensor's size or order of elements beyond
 * double rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

q_error_stats q_measure(const float *x, const float *y, int64_t n)
{
    q_error_stats st = {.count = n};
    double signal = 0, noise = 0, max_abs = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)y[i];
        signal += (double)x[i] * x[i];
        noise += d * d;
        double a = fabs(d);
        if (a > max_abs || isnan(a)) max_abs = a;
        if (isnan(max_abs)) break;
    }
    if (isnan(max_abs) || isnan(noise) || isnan(signal)) {
        st.rmse = st.max_abs = st.sqnr_db = NAN;
        return st;
    }
    st.rmse = n > 0 ? sqrt(noise / (double)n) : 0;
    st.max_abs = max_abs;
    st.sqnr_db = noise > 0 ? 10 * log10(signal / noise) : INFINITY;
    return st;
}

void q_log_softmax(const float *x, int64_t count, int64_t row, double *out)
{
    for (int64_t r = 0; r < count / row; r++) {
        const float *v = x + r * row;
        double mx = v[0], sum = 0;
        for (int64_t i = 1; i < row; i++) mx = v[i] > mx ? v[i] : mx;
        for (int64_t i = 0; i < row; i++) sum += exp(v[i] - mx);
        double lse = mx + log(sum);
        for (int64_t i = 0; i < row; i++) out[r * row + i] = v[i] - lse;
    }
}

void q_error_add(q_error_acc *acc, bool logits, const float *ref, const double *ref_logp,
                 const float *q, int64_t count, int64_t row)
{
    if (!logits) {
        for (int64_t i = 0; i < count; i++) {
            double d = (double)q[i] - (double)ref[i];
            acc->num += d * d;
            acc->den += (double)ref[i] * ref[i];
        }
        return;
    }
    for (int64_t r = 0; r < count / row; r++) {
        const float *v = q + r * row;
        const double *lp = ref_logp + r * row;
        double mx = v[0], sum = 0, kl = 0;
        for (int64_t i = 1; i < row; i++) mx = v[i] > mx ? v[i] : mx;
        for (int64_t i = 0; i < row; i++) sum += exp(v[i] - mx);
        double lse = mx + log(sum);
        for (int64_t i = 0; i < row; i++) kl += exp(lp[i]) * (lp[i] - (v[i] - lse));
        acc->num += kl > 0 ? kl : 0;
        acc->den += 1;
    }
}

double q_error_value(const q_error_acc *acc, bool logits)
{
    if (acc->den <= 0) return acc->num > 0 ? INFINITY : 0;
    return logits ? acc->num / acc->den : sqrt(acc->num / acc->den);
}

/* ---- second moments ------------------------------------------------------- *
 * xx[i][j] (j >= i) += sum over rows r of x[r][i] * x[r][j], in tiles of
 * TI x TJ that stay in cache while a block of rows passes, so the matrix
 * is read once per block of rows instead of once per row. Each element still adds its
 * products in row order, in double, so the sums are the same bits as one
 * row at a time (and as the clones for wider vectors: no fused
 * multiply-add, see CMakeLists.txt). A zero product changes no sum: the
 * sums start at +0 and never become -0. */
enum { TI = 16, TJ = 256 };

__attribute__((target_clones("avx512f", "avx2", "default"))) static void
xx_tile(double *xx, const float *x, int64_t rows, int64_t k, int64_t i0, int64_t i1, int64_t j0,
        int64_t j1)
{
    double xj[4][TJ];
    int64_t r = 0;
    /* four rows at a time: each element's four products still added in row
     * order, without storing the sum in between */
    for (; r + 4 <= rows; r += 4) {
        for (int q = 0; q < 4; q++)
            for (int64_t j = j0; j < j1; j++) xj[q][j - j0] = x[(r + q) * k + j];
        for (int64_t i = i0; i < i1; i++) {
            double a0 = x[r * k + i], a1 = x[(r + 1) * k + i], a2 = x[(r + 2) * k + i],
                   a3 = x[(r + 3) * k + i];
            int64_t from = j0 > i ? j0 : i;
            double *out = xx + i * k;
            for (int64_t j = from; j < j1; j++) {
                double acc = out[j];
                acc += a0 * xj[0][j - j0];
                acc += a1 * xj[1][j - j0];
                acc += a2 * xj[2][j - j0];
                acc += a3 * xj[3][j - j0];
                out[j] = acc;
            }
        }
    }
    for (; r < rows; r++) {
        for (int64_t j = j0; j < j1; j++) xj[0][j - j0] = x[r * k + j];
        for (int64_t i = i0; i < i1; i++) {
            double a = x[r * k + i];
            int64_t from = j0 > i ? j0 : i;
            double *out = xx + i * k;
            for (int64_t j = from; j < j1; j++) out[j] += a * xj[0][j - j0];
        }
    }
}

void q_second_moment_add(double *xx, const float *x, int64_t rows, int64_t k)
{
    /* blocks of about 256 KiB of rows stay in cache while the tiles pass */
    int64_t rb = ((int64_t)1 << 16) / k;
    if (rb < 1) rb = 1;
    for (int64_t r0 = 0; r0 < rows; r0 += rb) {
        int64_t n = rows - r0 < rb ? rows - r0 : rb;
        for (int64_t i0 = 0; i0 < k; i0 += TI) {
            int64_t i1 = i0 + TI < k ? i0 + TI : k;
            for (int64_t j0 = i0 / TJ * TJ; j0 < k; j0 += TJ)
                xx_tile(xx, x + r0 * k, n, k, i0, i1, j0, j0 + TJ < k ? j0 + TJ : k);
        }
    }
}

/* ---- a layer's output noise ------------------------------------------------ *
 * sum_r v_r^T H v_r for the rows v_r of a - b: y_r = H v_r for eight rows
 * at once, eight outputs at a time held in registers while j runs, so each
 * row of H is read once per eight rows; every y_r[i] is still summed in
 * order j = 0, 1, ... and the total in the order of one row at a time. */
enum { QR = 8, QI = 8 };

__attribute__((target_clones("avx512f", "avx2", "default"))) static double
quad_rows(double sum, const double *d, int nr, const double *h, int64_t k, double *y)
{
    int64_t i0 = 0;
    for (; i0 + QI <= k && nr == QR; i0 += QI) {
        double acc[QR][QI] = {{0}};
        for (int64_t j = 0; j < k; j++) {
            const double *hj = h + j * k + i0;
            for (int q = 0; q < QR; q++) {
                double v = d[q * k + j];
                for (int i = 0; i < QI; i++) acc[q][i] += hj[i] * v;
            }
        }
        for (int q = 0; q < QR; q++)
            for (int i = 0; i < QI; i++) y[q * k + i0 + i] = acc[q][i];
    }
    /* the rest: the columns left over, or all of them for fewer rows */
    for (int q = 0; q < nr; q++)
        for (int64_t i = i0; i < k; i++) y[q * k + i] = 0;
    for (int64_t j = 0; j < k && i0 < k; j++) {
        const double *hj = h + j * k;
        for (int q = 0; q < nr; q++) {
            double v = d[q * k + j];
            double *yq = y + q * k;
            for (int64_t i = i0; i < k; i++) yq[i] += hj[i] * v;
        }
    }
    for (int q = 0; q < nr; q++)
        for (int64_t i = 0; i < k; i++) sum += d[q * k + i] * y[q * k + i];
    return sum;
}

double q_quad_error(const float *a, const float *b, const double *h, const double *m, int64_t n,
                    int64_t k)
{
    double *d = malloc(sizeof(double) * (size_t)(2 * QR * k)); /* the rows, then H v */
    QMC_ASSERT(d);
    double sum = 0;
    for (int64_t r0 = 0; r0 < n; r0 += QR) {
        int nr = (int)(n - r0 < QR ? n - r0 : QR);
        for (int64_t e = 0; e < nr * k; e++)
            d[e] = (double)a[r0 * k + e] - (b ? (double)b[r0 * k + e] : 0.0);
        if (h) {
            sum = quad_rows(sum, d, nr, h, k, d + QR * k);
            continue;
        }
        for (int64_t e = 0; e < nr * k; e++) sum += d[e] * d[e] * (m ? m[e % k] : 1);
    }
    free(d);
    return sum;
}
