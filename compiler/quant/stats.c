/* stats.c: how far a quantized tensor is from the original, and how far a
 * quantized model's output is from the reference output.
 *
 * Needs: two arrays of the same length. Guarantees: sums in double, so the
 * figures do not depend on the tensor's size or order of elements beyond
 * double rounding. */
#include <math.h>

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
