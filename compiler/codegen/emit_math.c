/* emit_math.c: exp, erf, tanh and sigmoid as LLVM IR on vectors, so that
 * softmax, GELU, SiLU and tanh vectorise instead of calling libm per
 * element.
 *
 * exp: Cody-Waite reduction x = n ln2 + r with n = rint(x log2 e), the
 *   Cephes polynomial for e^r on |r| <= ln2/2, and 2^n built in the exponent
 *   bits; below -87.33 the result is 0 (e^-inf = 0 exactly, as softmax
 *   masks need), above 88.37 it is clamped; NaN stays NaN. Max relative
 *   error about 2 ulp against libm's expf.
 * erf: Abramowitz and Stegun 7.1.26, erf(|x|) = 1 - t P(t) e^{-x^2} with
 *   t = 1 / (1 + 0.3275911 |x|): absolute error below 1.5e-7 (plus exp's).
 *   GELU(x) = x/2 (1 + erf(x / sqrt 2)) so its error is below 1e-7 |x|.
 * tanh: 1 - 2 / (e^{2x} + 1), with the odd polynomial x - x^3/3 + 2x^5/15
 *   below |x| = 0.01 where the subtraction would cancel. */
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
    return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? LLVMVectorType(c->t_i32, LLVMGetVectorSize(t)) : c->t_i32;
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
    LLVMValueRef n = unary_intrinsic(c, "llvm.rint", LLVMBuildFMul(b, xc, splat_f(c, x, 1.44269504088896341), ""));
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
    LLVMBuilderRef b = c->b;
    LLVMValueRef ax = unary_intrinsic(c, "llvm.fabs", x);
    LLVMValueRef t = LLVMBuildFDiv(b, splat_f(c, x, 1.0), cg_fmuladd(c, ax, splat_f(c, x, 0.3275911), splat_f(c, x, 1.0)), "");
    LLVMValueRef p = splat_f(c, x, 1.061405429);
    p = cg_fmuladd(c, p, t, splat_f(c, x, -1.453152027));
    p = cg_fmuladd(c, p, t, splat_f(c, x, 1.421413741));
    p = cg_fmuladd(c, p, t, splat_f(c, x, -0.284496736));
    p = cg_fmuladd(c, p, t, splat_f(c, x, 0.254829592));
    p = LLVMBuildFMul(b, p, t, "");
    LLVMValueRef e = cg_math_exp(c, LLVMBuildFNeg(b, LLVMBuildFMul(b, ax, ax, ""), ""));
    LLVMValueRef y = cg_fmuladd(c, LLVMBuildFNeg(b, p, ""), e, splat_f(c, x, 1.0));
    return binary_intrinsic(c, "llvm.copysign", y, x);
}

LLVMValueRef cg_math_tanh(cg *c, LLVMValueRef x)
{
    LLVMBuilderRef b = c->b;
    /* 1 - 2 / (e^{2x} + 1) saturates to +-1 through exp's clamps */
    LLVMValueRef e = cg_math_exp(c, LLVMBuildFMul(b, x, splat_f(c, x, 2.0), ""));
    LLVMValueRef y = LLVMBuildFSub(b, splat_f(c, x, 1.0),
                                   LLVMBuildFDiv(b, splat_f(c, x, 2.0), LLVMBuildFAdd(b, e, splat_f(c, x, 1.0), ""), ""), "");
    LLVMValueRef x2 = LLVMBuildFMul(b, x, x, "");
    LLVMValueRef small = cg_fmuladd(c, x2, splat_f(c, x, 2.0 / 15.0), splat_f(c, x, -1.0 / 3.0));
    small = cg_fmuladd(c, LLVMBuildFMul(b, x2, x, ""), small, x);
    LLVMValueRef is_small = LLVMBuildFCmp(b, LLVMRealOLT, unary_intrinsic(c, "llvm.fabs", x), splat_f(c, x, 0.01), "");
    return LLVMBuildSelect(b, is_small, small, y, "");
}

LLVMValueRef cg_math_gelu(cg *c, LLVMValueRef x)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef e = cg_math_erf(c, LLVMBuildFMul(b, x, splat_f(c, x, 0.70710678118654752), ""));
    return LLVMBuildFMul(b, LLVMBuildFMul(b, x, splat_f(c, x, 0.5), ""), LLVMBuildFAdd(b, e, splat_f(c, x, 1.0), ""), "");
}

LLVMValueRef cg_math_silu(cg *c, LLVMValueRef x)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef e = cg_math_exp(c, LLVMBuildFNeg(b, x, ""));
    return LLVMBuildFDiv(b, x, LLVMBuildFAdd(b, e, splat_f(c, x, 1.0), ""), "");
}
