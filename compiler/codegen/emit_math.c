/* emit_math.c: exp, erf, tanh and sigmoid as LLVM IR on vectors, so that
 * softmax, GELU, SiLU and tanh vectorise instead of calling libm per
 * element.
 *
 * exp: Cody-Waite reduction x = n ln2 + r with n = rint(x log2 e), the
 *   Cephes polynomial for e^r on |r| <= ln2/2, and 2^n built in the exponent
 *   bits; below -87.33 the result is 0 (e^-inf = 0 exactly, as softmax
 *   masks need), above 88.37 it is clamped; NaN stays NaN. Max relative
 *   error about 2 ulp against libm's expf.
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
    LLVMValueRef xc = binary_intrinsic(c, "llvm.minnum", x, splat_f(c, x, 88.3762626647949));
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
    LLVMValueRef e = LLVMBuildFPToSI(b, n, it, "");
    e = LLVMBuildShl(b, LLVMBuildAdd(b, e, splat_i(c, x, 127), ""), splat_i(c, x, 23), "");
    LLVMValueRef y = LLVMBuildFMul(b, p, LLVMBuildBitCast(b, e, LLVMTypeOf(x), ""), "exp");
    /* e^x for x below the clamp is 0 (exactly, for -inf); NaN stays NaN */
    LLVMValueRef tiny = LLVMBuildFCmp(b, LLVMRealOLT, x, splat_f(c, x, -87.3365478515625), "");
    y = LLVMBuildSelect(b, tiny, splat_f(c, x, 0.0), y, "");
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
