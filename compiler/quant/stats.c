/* stats.c: how far a quantized tensor is from the original.
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
