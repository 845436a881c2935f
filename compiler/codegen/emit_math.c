/* emit_math.c: exp, log, erf, tanh, sigmoid and pow as LLVM IR on
 * vectors, so that softmax, GELU, SiLU, tanh and the unary functions
 * vectorise instead of calling libm per element.
 *
 * exp: Cody-Waite reduction x = n ln2 + r with n = rint(x log2 e), the
 *   Cephes polynomial for e^r on |r| <= ln2/2, and 2^n built in the exponent
 *   bits of two factors 2^(n/2) 2^(n - n/2) (both normal for n up to 128);
 *   below -87.33 the result is 0 (e^-inf = 0 exactly, as softmax masks
 *   need), above 88.72 it is +inf; NaN stays NaN. Max relative error about
 *   2 ulp against libm's expf.
 * log: x = m 2^e with m in [sqrt(1/2), sqrt(2)) (subnormals scaled by 2^25
 *   first), Cephes' polynomial for log(1 + f), f = m - 1, and e ln 2 in two
 *   parts; within 2 ulp. log(0) = -inf, log(x < 0) = NaN, log(inf) = inf.
 * sigmoid: e = e^-|x|, then 1 / (1 + e) for x >= 0 and e / (1 + e) below,
 *   so nothing overflows; within 4 ulp.
 * pow(a, b): e^(b log|a|), negated for a < 0 and an odd integer b, NaN for
 *   a < 0 and b not an integer, and the special cases of C's powf (b = 0 or
 *   a = 1: 1; a = 0: 0 or inf). The error of b log|a| is carried into the
 *   result: relative error below (3 + 2 |b log|a||) ulp (about 1e-5 at the
 *   largest finite results); the importer turns constant exponents 2, 0.5
 *   and -1 into x * x, sqrt and 1 / x.
 * erf: x P(x^2) / Q(x^2) for |x| < 4, with P and Q of degree 5 (a
 *   rational fit to erf on [0, 4], made for this file by linear least
 *   squares with Lawson reweighting toward the minimax error: 2.1e-8 in
 *   exact arithmetic, all coefficients positive so the Horner sums do not
 *   cancel), and +-1 beyond (erf(4) = 1 - 1.5e-8). In float arithmetic,
 *   over [-6, 6] in steps of 1e-5 against double erf: error below 3.7e-7,
 *   so GELU(x) = x/2 (1 + erf(x / sqrt 2)) is within 2.2e-7 |x| of the
 *   exact value. 22 vector operations per GELU, where Abramowitz-Stegun
 *   7.1.26 with exp took 40 (and erred by 5.2e-7 near 0, where its
 *   1 - t P(t) e^{-x^2} cancels). NaN stays NaN.
 * tanh: 1 - 2 / (e^{2x} + 1) from |x| = 1 up, and x + x u P(u), u = x^2,
 *   below, where that subtraction cancels (P of degree 6, fitted for this
 *   file like erf's: relative error 4.6e-9 in exact arithmetic). In float,
 *   within 4 ulps (tests/kernels/math_check.c). */
#include <math.h>

#include "codegen.h"

static LLVMValueRef splat_f(cg *c, LLVMValueRef like, double v)
{
    LLVMTypeRef t = LLVMTypeOf(like);
    LLVMValueRef s = cg_f32(c, v);
    return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? cg_splat(c, s, (int)LLVMGetVectorSize(t)) : s;
}

static LLVMValueRef splat_i(cg *c, LLVMValueRef like, int64_t v)
{
    LLVMTypeRef t = LLVMTypeOf(like);
    LLVMValueRef s = cg_i32(c, v);
    return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? cg_splat(c, s, (int)LLVMGetVectorSize(t)) : s;
}

static LLVMTypeRef int_type_like(cg *c, LLVMValueRef like)
{
    LLVMTypeRef t = LLVMTypeOf(like);
    return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? LLVMVectorType(c->t_i32, LLVMGetVectorSize(t))
                                                    : c->t_i32;
}

static LLVMValueRef unary_intrinsic(cg *c, const char *name, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    return cg_intrinsic(c, name, &t, 1, &x, 1);
}

static LLVMValueRef binary_intrinsic(cg *c, const char *name, LLVMValueRef a, LLVMValueRef b)
{
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef args[2] = {a, b};
    return cg_intrinsic(c, name, &t, 1, args, 2);
}

LLVMValueRef cg_math_exp(cg *c, LLVMValueRef x)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef xc = binary_intrinsic(c, "llvm.minnum", x, splat_f(c, x, 88.72283935546875));
    xc = binary_intrinsic(c, "llvm.maxnum", xc, splat_f(c, x, -87.3365478515625));
    LLVMValueRef n = unary_intrinsic(c, "llvm.rint",
                                     LLVMBuildFMul(b, xc, splat_f(c, x, 1.44269504088896341), ""));
    LLVMValueRef r = cg_fmuladd(c, n, splat_f(c, x, -0.693359375), xc);
    r = cg_fmuladd(c, n, splat_f(c, x, 2.12194440e-4), r);
    LLVMValueRef p = splat_f(c, x, 1.9875691500e-4);
    p = cg_fmuladd(c, p, r, splat_f(c, x, 1.3981999507e-3));
    p = cg_fmuladd(c, p, r, splat_f(c, x, 8.3334519073e-3));
    p = cg_fmuladd(c, p, r, splat_f(c, x, 4.1665795894e-2));
    p = cg_fmuladd(c, p, r, splat_f(c, x, 1.6666665459e-1));
    p = cg_fmuladd(c, p, r, splat_f(c, x, 5.0000001201e-1));
    LLVMValueRef r2 = LLVMBuildFMul(b, r, r, "");
    p = cg_fmuladd(c, p, r2, LLVMBuildFAdd(b, r, splat_f(c, x, 1.0), ""));
    LLVMTypeRef it = int_type_like(c, x);
    /* 2^n as 2^h 2^(n-h), h = n >> 1: both factors normal for n in [-126, 128] */
    LLVMValueRef e = LLVMBuildFPToSI(b, n, it, "");
    LLVMValueRef h = LLVMBuildAShr(b, e, splat_i(c, x, 1), "");
    LLVMValueRef e1 =
        LLVMBuildShl(b, LLVMBuildAdd(b, h, splat_i(c, x, 127), ""), splat_i(c, x, 23), "");
    LLVMValueRef e2 =
        LLVMBuildShl(b, LLVMBuildAdd(b, LLVMBuildSub(b, e, h, ""), splat_i(c, x, 127), ""),
                     splat_i(c, x, 23), "");
    LLVMValueRef y =
        LLVMBuildFMul(b, LLVMBuildFMul(b, p, LLVMBuildBitCast(b, e1, LLVMTypeOf(x), ""), ""),
                      LLVMBuildBitCast(b, e2, LLVMTypeOf(x), ""), "exp");
    /* e^x for x below the clamp is 0 (exactly, for -inf), above it +inf;
     * NaN stays NaN */
    LLVMValueRef tiny = LLVMBuildFCmp(b, LLVMRealOLT, x, splat_f(c, x, -87.3365478515625), "");
    y = LLVMBuildSelect(b, tiny, splat_f(c, x, 0.0), y, "");
    LLVMValueRef huge = LLVMBuildFCmp(b, LLVMRealOGT, x, splat_f(c, x, 88.72283935546875), "");
    y = LLVMBuildSelect(b, huge, splat_f(c, x, INFINITY), y, "");
    LLVMValueRef nan = LLVMBuildFCmp(b, LLVMRealUNO, x, x, "");
    return LLVMBuildSelect(b, nan, x, y, "");
}

LLVMValueRef cg_math_erf(cg *c, LLVMValueRef x)
{
    static const double p[] = {1.1283789765293522,  0.1962474300087803,    0.053467269692381844,
                               0.00400357814108141, 0.0002880396529123008, 1.9748387432734665e-06};
    static const double q[] = {1.0,
                               0.5072509161221767,
                               0.11647578291939759,
                               0.01544428700093395,
                               0.0012163429994585084,
                               3.748085967369522e-05};
    LLVMBuilderRef b = c->b;
    /* |x| < 4 or NaN: the fit (NaN flows through it); else +-1 */
    LLVMValueRef inside =
        LLVMBuildFCmp(b, LLVMRealULT, unary_intrinsic(c, "llvm.fabs", x), splat_f(c, x, 4.0), "");
    LLVMValueRef z = LLVMBuildSelect(b, inside, x, splat_f(c, x, 0.0), "");
    LLVMValueRef u = LLVMBuildFMul(b, z, z, "");
    LLVMValueRef pu = splat_f(c, x, p[5]), qu = splat_f(c, x, q[5]);
    for (int k = 4; k >= 0; k--) {
        pu = cg_fmuladd(c, pu, u, splat_f(c, x, p[k]));
        qu = cg_fmuladd(c, qu, u, splat_f(c, x, q[k]));
    }
    LLVMValueRef r = LLVMBuildFDiv(b, LLVMBuildFMul(b, z, pu, ""), qu, "erf");
    return LLVMBuildSelect(b, inside, r,
                           binary_intrinsic(c, "llvm.copysign", splat_f(c, x, 1.0), x), "");
}

LLVMValueRef cg_math_tanh(cg *c, LLVMValueRef x)
{
    static const double p[] = {-0.33333295464924906,  0.13332345183244165,   -0.053879840699263326,
                               0.021486767164271336,  -0.007946267202302276, 0.0023014811118628213,
                               -0.0003584851283759335};
    LLVMBuilderRef b = c->b;
    /* 1 - 2 / (e^{2x} + 1) saturates to +-1 through exp's clamps */
    LLVMValueRef e = cg_math_exp(c, LLVMBuildFMul(b, x, splat_f(c, x, 2.0), ""));
    LLVMValueRef y = LLVMBuildFSub(
        b, splat_f(c, x, 1.0),
        LLVMBuildFDiv(b, splat_f(c, x, 2.0), LLVMBuildFAdd(b, e, splat_f(c, x, 1.0), ""), ""), "");
    LLVMValueRef u = LLVMBuildFMul(b, x, x, "");
    LLVMValueRef pu = splat_f(c, x, p[6]);
    for (int k = 5; k >= 0; k--) pu = cg_fmuladd(c, pu, u, splat_f(c, x, p[k]));
    LLVMValueRef small = cg_fmuladd(c, LLVMBuildFMul(b, x, u, ""), pu, x);
    LLVMValueRef is_small =
        LLVMBuildFCmp(b, LLVMRealOLT, unary_intrinsic(c, "llvm.fabs", x), splat_f(c, x, 1.0), "");
    return LLVMBuildSelect(b, is_small, small, y, "");
}

LLVMValueRef cg_math_gelu(cg *c, LLVMValueRef x)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef e = cg_math_erf(c, LLVMBuildFMul(b, x, splat_f(c, x, 0.70710678118654752), ""));
    return LLVMBuildFMul(b, LLVMBuildFMul(b, x, splat_f(c, x, 0.5), ""),
                         LLVMBuildFAdd(b, e, splat_f(c, x, 1.0), ""), "");
}

LLVMValueRef cg_math_silu(cg *c, LLVMValueRef x)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef e = cg_math_exp(c, LLVMBuildFNeg(b, x, ""));
    return LLVMBuildFDiv(b, x, LLVMBuildFAdd(b, e, splat_f(c, x, 1.0), ""), "");
}

LLVMValueRef cg_math_hard_sigmoid(cg *c, LLVMValueRef x, float alpha, float beta, bool times_x)
{
    LLVMTypeRef vt = LLVMTypeOf(x);
    int lanes = LLVMGetTypeKind(vt) == LLVMVectorTypeKind ? (int)LLVMGetVectorSize(vt) : 0;
    LLVMValueRef a = cg_f32(c, alpha), b = cg_f32(c, beta), one = cg_f32(c, 1), zero = cg_f32(c, 0);
    if (lanes)
        a = cg_splat(c, a, lanes), b = cg_splat(c, b, lanes), one = cg_splat(c, one, lanes),
        zero = cg_splat(c, zero, lanes);
    LLVMValueRef v = LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, a, x, ""), b, "");
    LLVMValueRef lo[2] = {v, one};
    v = cg_intrinsic(c, "llvm.minnum", &vt, 1, lo, 2);
    LLVMValueRef hi[2] = {v, zero};
    v = cg_intrinsic(c, "llvm.maxnum", &vt, 1, hi, 2);
    return times_x ? LLVMBuildFMul(c->b, x, v, "") : v;
}

LLVMValueRef cg_math_log(cg *c, LLVMValueRef x)
{
    static const double p[] = {3.3333331174E-1,  -2.4999993993E-1, 2.0000714765E-1,
                               -1.6668057665E-1, 1.4249322787E-1,  -1.2420140846E-1,
                               1.1676998740E-1,  -1.1514610310E-1, 7.0376836292E-2};
    LLVMBuilderRef b = c->b;
    LLVMTypeRef it = int_type_like(c, x), ft = LLVMTypeOf(x);
    /* subnormals: scaled by 2^25 into the normal range, the exponent corrected */
    LLVMValueRef sub = LLVMBuildFCmp(b, LLVMRealOLT, x, splat_f(c, x, 0x1p-126), "");
    LLVMValueRef xs =
        LLVMBuildSelect(b, sub, LLVMBuildFMul(b, x, splat_f(c, x, 0x1p25), ""), x, "");
    LLVMValueRef bits = LLVMBuildBitCast(b, xs, it, "");
    /* x = m 2^e with m in [0.5, 1) */
    LLVMValueRef e =
        LLVMBuildSub(b, LLVMBuildLShr(b, bits, splat_i(c, x, 23), ""), splat_i(c, x, 126), "");
    e = LLVMBuildSub(b, e, LLVMBuildSelect(b, sub, splat_i(c, x, 25), splat_i(c, x, 0), ""), "");
    LLVMValueRef mbits = LLVMBuildOr(b, LLVMBuildAnd(b, bits, splat_i(c, x, 0x007fffff), ""),
                                     splat_i(c, x, 0x3f000000), "");
    LLVMValueRef m = LLVMBuildBitCast(b, mbits, ft, "");
    /* m < sqrt(1/2): m = 2m - 1, e - 1; else m - 1 */
    LLVMValueRef low = LLVMBuildFCmp(b, LLVMRealOLT, m, splat_f(c, x, 0.707106781186547524), "");
    LLVMValueRef f = LLVMBuildFSub(b, LLVMBuildSelect(b, low, LLVMBuildFAdd(b, m, m, ""), m, ""),
                                   splat_f(c, x, 1.0), "");
    LLVMValueRef ef = LLVMBuildSIToFP(
        b, LLVMBuildSub(b, e, LLVMBuildSelect(b, low, splat_i(c, x, 1), splat_i(c, x, 0), ""), ""),
        ft, "");
    LLVMValueRef z = LLVMBuildFMul(b, f, f, "");
    LLVMValueRef y = splat_f(c, x, p[8]);
    for (int k = 7; k >= 0; k--) y = cg_fmuladd(c, y, f, splat_f(c, x, p[k]));
    y = LLVMBuildFMul(b, LLVMBuildFMul(b, y, f, ""), z, "");
    y = cg_fmuladd(c, ef, splat_f(c, x, -2.12194440e-4), y);
    y = cg_fmuladd(c, z, splat_f(c, x, -0.5), y);
    LLVMValueRef r = LLVMBuildFAdd(b, f, y, "");
    r = cg_fmuladd(c, ef, splat_f(c, x, 0.693359375), r);
    /* log(0) = -inf, log(inf) = inf, log(x < 0) and log(NaN) = NaN */
    r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOEQ, x, splat_f(c, x, 0.0), ""),
                        splat_f(c, x, -INFINITY), r, "");
    r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOEQ, x, splat_f(c, x, INFINITY), ""),
                        splat_f(c, x, INFINITY), r, "");
    return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGE, x, splat_f(c, x, 0.0), ""), r,
                           splat_f(c, x, NAN), "log");
}

LLVMValueRef cg_math_sigmoid(cg *c, LLVMValueRef x)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef e = cg_math_exp(c, LLVMBuildFNeg(b, unary_intrinsic(c, "llvm.fabs", x), ""));
    LLVMValueRef r =
        LLVMBuildFDiv(b, splat_f(c, x, 1.0), LLVMBuildFAdd(b, e, splat_f(c, x, 1.0), ""), "");
    LLVMValueRef neg = LLVMBuildFCmp(b, LLVMRealOLT, x, splat_f(c, x, 0.0), "");
    return LLVMBuildSelect(b, neg, LLVMBuildFMul(b, e, r, ""), r, "sigmoid");
}

LLVMValueRef cg_math_pow(cg *c, LLVMValueRef a, LLVMValueRef y)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef r =
        cg_math_exp(c, LLVMBuildFMul(b, y, cg_math_log(c, unary_intrinsic(c, "llvm.fabs", a)), ""));
    /* an integer exponent: y == floor(y); odd when y/2 is not an integer */
    LLVMValueRef is_int = LLVMBuildFCmp(b, LLVMRealOEQ, unary_intrinsic(c, "llvm.floor", y), y, "");
    LLVMValueRef half = LLVMBuildFMul(b, y, splat_f(c, y, 0.5), "");
    LLVMValueRef odd = LLVMBuildAnd(
        b, is_int, LLVMBuildFCmp(b, LLVMRealONE, unary_intrinsic(c, "llvm.floor", half), half, ""),
        "");
    LLVMValueRef neg = LLVMBuildFCmp(b, LLVMRealOLT, a, splat_f(c, a, 0.0), "");
    /* a < 0: +-|a|^y for an integer y, else NaN */
    LLVMValueRef signed_r = LLVMBuildSelect(b, odd, LLVMBuildFNeg(b, r, ""), r, "");
    r = LLVMBuildSelect(b, neg, LLVMBuildSelect(b, is_int, signed_r, splat_f(c, a, NAN), ""), r,
                        "");
    /* a = +-0: 0 for y > 0, inf for y < 0 (signed by -0 and an odd y) */
    LLVMValueRef zero = LLVMBuildFCmp(b, LLVMRealOEQ, a, splat_f(c, a, 0.0), "");
    LLVMValueRef z = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, y, splat_f(c, a, 0.0), ""),
                                     splat_f(c, a, INFINITY), splat_f(c, a, 0.0), "");
    z = LLVMBuildSelect(b, odd, binary_intrinsic(c, "llvm.copysign", z, a), z, "");
    r = LLVMBuildSelect(b, zero, z, r, "");
    /* y = 0 or a = 1: 1, whatever the other is (NaN included) */
    LLVMValueRef one = LLVMBuildOr(b, LLVMBuildFCmp(b, LLVMRealOEQ, y, splat_f(c, a, 0.0), ""),
                                   LLVMBuildFCmp(b, LLVMRealOEQ, a, splat_f(c, a, 1.0), ""), "");
    return LLVMBuildSelect(b, one, splat_f(c, a, 1.0), r, "pow");
}
