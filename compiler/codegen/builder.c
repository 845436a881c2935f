/* builder.c: small helpers over the LLVM C API builder, so the emitters
 * read like the loops they generate. Mutable values live in allocas in the
 * entry block (SROA and mem2reg turn them into registers at -O1 and up);
 * loop induction variables are phis. */
#include <string.h>

#include "codegen.h"

LLVMValueRef cg_i32(cg *c, int64_t v) { return LLVMConstInt(c->t_i32, (unsigned long long)v, 1); }
LLVMValueRef cg_i64(cg *c, int64_t v) { return LLVMConstInt(c->t_i64, (unsigned long long)v, 1); }
LLVMValueRef cg_f32(cg *c, double v) { return LLVMConstReal(c->t_f32, v); }
LLVMTypeRef cg_vec(cg *c, LLVMTypeRef elem, int n)
{
    (void)c;
    return LLVMVectorType(elem, (unsigned)n);
}

LLVMValueRef cg_splat(cg *c, LLVMValueRef scalar, int n)
{
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(scalar), (unsigned)n);
    if (LLVMIsConstant(scalar)) {
        LLVMValueRef elems[64];
        for (int i = 0; i < n; i++) elems[i] = scalar;
        return LLVMConstVector(elems, (unsigned)n);
    }
    LLVMValueRef v = LLVMBuildInsertElement(c->b, LLVMGetPoison(vt), scalar, cg_i32(c, 0), "");
    LLVMValueRef mask = LLVMConstNull(LLVMVectorType(c->t_i32, (unsigned)n));
    return LLVMBuildShuffleVector(c->b, v, LLVMGetPoison(vt), mask, "");
}

LLVMValueRef cg_vsplat_i32(cg *c, int64_t v, int n) { return cg_splat(c, cg_i32(c, v), n); }

LLVMValueRef cg_function_begin(cg *c, const char *name, LLVMTypeRef type, bool exported,
                               bool kernel)
{
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, type);
    LLVMSetLinkage(fn, exported ? LLVMExternalLinkage : LLVMInternalLinkage);
    /* nothing compares the addresses of qmc's functions: equal ones merge */
    if (!exported) LLVMSetUnnamedAddress(fn, LLVMGlobalUnnamedAddr);
    unsigned idx = (unsigned)LLVMAttributeFunctionIndex;
    LLVMAddAttributeAtIndex(
        fn, idx,
        LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
    if (kernel) {
        /* one function per node stays visible in the IR and assembly (the
         * cost of a call per node is nothing next to its loops); kernels
         * may use every feature of the target CPU, entry points stay
         * baseline so they can check the CPU before calling them */
        LLVMAddAttributeAtIndex(
            fn, idx,
            LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
        LLVMAddAttributeAtIndex(fn, idx,
                                LLVMCreateStringAttribute(c->ctx, "target-cpu", 10, c->target->cpu,
                                                          (unsigned)strlen(c->target->cpu)));
        const char *f = c->target->llvm_features;
        if (f && *f)
            LLVMAddAttributeAtIndex(
                fn, idx,
                LLVMCreateStringAttribute(c->ctx, "target-features", 15, f, (unsigned)strlen(f)));
    }
    c->fn = fn;
    c->entry = LLVMAppendBasicBlockInContext(c->ctx, fn, "entry");
    LLVMPositionBuilderAtEnd(c->b, c->entry);
    return fn;
}

void cg_param_noalias(cg *c, LLVMValueRef fn, unsigned i)
{
    LLVMAddAttributeAtIndex(
        fn, i + 1,
        LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
    LLVMAddAttributeAtIndex(
        fn, i + 1,
        LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("nocapture", 9), 0));
}

LLVMValueRef cg_alloca(cg *c, LLVMTypeRef type, const char *name)
{
    LLVMBuilderRef tmp = LLVMCreateBuilderInContext(c->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(c->entry);
    if (first)
        LLVMPositionBuilderBefore(tmp, first);
    else
        LLVMPositionBuilderAtEnd(tmp, c->entry);
    LLVMValueRef a = LLVMBuildAlloca(tmp, type, name);
    LLVMDisposeBuilder(tmp);
    return a;
}

LLVMBasicBlockRef cg_block(cg *c, const char *name)
{
    return LLVMAppendBasicBlockInContext(c->ctx, c->fn, name);
}

cg_loop cg_loop_begin(cg *c, LLVMValueRef start, LLVMValueRef end, int64_t step, const char *name)
{
    cg_loop l = {.step = step};
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
    l.head = cg_block(c, name);
    LLVMBasicBlockRef body = cg_block(c, name);
    l.exit = cg_block(c, name);
    LLVMBuildBr(c->b, l.head);
    LLVMPositionBuilderAtEnd(c->b, l.head);
    l.iv = LLVMBuildPhi(c->b, c->t_i64, name);
    LLVMAddIncoming(l.iv, &start, &pre, 1);
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, l.iv, end, ""), body, l.exit);
    LLVMPositionBuilderAtEnd(c->b, body);
    return l;
}

void cg_loop_end(cg *c, cg_loop *l)
{
    LLVMValueRef next = LLVMBuildNSWAdd(c->b, l->iv, cg_i64(c, l->step), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMAddIncoming(l->iv, &next, &latch, 1);
    LLVMBuildBr(c->b, l->head);
    LLVMPositionBuilderAtEnd(c->b, l->exit);
}

cg_loop cg_for(cg *c, int64_t start, int64_t end, int64_t step, const char *name)
{
    return cg_loop_begin(c, cg_i64(c, start), cg_i64(c, end), step, name);
}

LLVMValueRef cg_gep(cg *c, LLVMTypeRef elem, LLVMValueRef base, LLVMValueRef index)
{
    return LLVMBuildInBoundsGEP2(c->b, elem, base, &index, 1, "");
}

LLVMValueRef cg_load(cg *c, LLVMTypeRef type, LLVMValueRef ptr, unsigned align)
{
    LLVMValueRef v = LLVMBuildLoad2(c->b, type, ptr, "");
    LLVMSetAlignment(v, align);
    return v;
}

void cg_store(cg *c, LLVMValueRef value, LLVMValueRef ptr, unsigned align)
{
    LLVMValueRef s = LLVMBuildStore(c->b, value, ptr);
    LLVMSetAlignment(s, align);
}

LLVMValueRef cg_intrinsic(cg *c, const char *name, LLVMTypeRef *types, int n_types,
                          LLVMValueRef *args, int n_args)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    QMC_ASSERT(id != 0);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, types, (size_t)n_types);
    LLVMTypeRef ft = LLVMIntrinsicGetType(c->ctx, id, types, (size_t)n_types);
    return LLVMBuildCall2(c->b, ft, fn, args, (unsigned)n_args, "");
}

LLVMValueRef cg_fmuladd(cg *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc)
{
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef args[3] = {a, b, acc};
    return cg_intrinsic(c, "llvm.fmuladd", &t, 1, args, 3);
}

LLVMValueRef cg_add(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(c->b, a, b, ""); }

LLVMValueRef cg_mul_k(cg *c, LLVMValueRef a, int64_t k)
{
    return LLVMBuildMul(c->b, a, cg_i64(c, k), "");
}

void cg_memcpy(cg *c, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef bytes)
{
    LLVMTypeRef tys[3] = {c->t_ptr, c->t_ptr, c->t_i64};
    LLVMValueRef args[4] = {dst, src, bytes, LLVMConstInt(c->t_i1, 0, 0)};
    cg_intrinsic(c, "llvm.memcpy", tys, 3, args, 4);
}

LLVMValueRef cg_lane_mask(cg *c, int lanes, int64_t count)
{
    LLVMValueRef bits[64];
    for (int j = 0; j < lanes; j++) bits[j] = LLVMConstInt(c->t_i1, j < count, 0);
    return LLVMConstVector(bits, (unsigned)lanes);
}

LLVMValueRef cg_fast(LLVMValueRef inst)
{
    if (LLVMCanValueUseFastMathFlags(inst))
        LLVMSetFastMathFlags(inst, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
    return inst;
}

LLVMValueRef cg_reduce_max_nonneg(cg *c, LLVMValueRef v)
{
    unsigned lanes = LLVMGetVectorSize(LLVMTypeOf(v));
    LLVMTypeRef it = LLVMVectorType(c->t_i32, lanes);
    LLVMValueRef bits = LLVMBuildBitCast(c->b, v, it, "");
    LLVMValueRef m = cg_intrinsic(c, "llvm.vector.reduce.umax", &it, 1, &bits, 1);
    return LLVMBuildBitCast(c->b, m, c->t_f32, "");
}

LLVMValueRef cg_blob_ptr(cg *c, int blob)
{
    QMC_ASSERT(blob >= 0 && blob < c->w->n_blobs);
    if (c->globals) return c->globals[blob];
    LLVMValueRef base = cg_load(c, c->t_ptr, c->weights_base, 8);
    return cg_gep(c, c->t_i8, base, cg_i64(c, c->w->blobs[blob].offset));
}

/* ---- vector loops ----------------------------------------------------------- */

LLVMValueRef cg_vload(cg *c, LLVMValueRef base, LLVMValueRef index, LLVMValueRef mask, int lanes)
{
    LLVMTypeRef vt = cg_vec(c, c->t_f32, lanes);
    LLVMValueRef p = cg_gep(c, c->t_f32, base, index);
    if (!mask) return cg_load(c, vt, p, 4);
    LLVMTypeRef tys[2] = {vt, c->t_ptr};
    LLVMValueRef args[4] = {p, cg_i32(c, 4), mask, LLVMConstNull(vt)};
    return cg_intrinsic(c, "llvm.masked.load", tys, 2, args, 4);
}

void cg_vstore(cg *c, LLVMValueRef v, LLVMValueRef base, LLVMValueRef index, LLVMValueRef mask)
{
    LLVMValueRef p = cg_gep(c, c->t_f32, base, index);
    if (!mask) {
        cg_store(c, v, p, 4);
        return;
    }
    LLVMTypeRef tys[2] = {LLVMTypeOf(v), c->t_ptr};
    LLVMValueRef args[4] = {v, p, cg_i32(c, 4), mask};
    cg_intrinsic(c, "llvm.masked.store", tys, 2, args, 4);
}

/* <0, 1, ..., lanes-1> < splat(rem) */
LLVMValueRef cg_lanes_below(cg *c, LLVMValueRef count, int lanes)
{
    LLVMValueRef iota[64];
    for (int i = 0; i < lanes; i++) iota[i] = cg_i64(c, i);
    LLVMValueRef v = LLVMConstVector(iota, (unsigned)lanes);
    return LLVMBuildICmp(c->b, LLVMIntSLT, v, cg_splat(c, count, lanes), "below");
}

bool cg_write_file(const char *path, const void *data, size_t len)
{
    char err[256];
    rt_write_piece piece = {data, len};
    if (rt_file_write_atomic(path, &piece, 1, err, sizeof err) != QMC_OK) {
        sup_error_plain("%s: %s", path, err);
        return false;
    }
    return true;
}

void cg_vloop(cg *c, LLVMValueRef count, int lanes, cg_vbody body, void *ctx)
{
    LLVMValueRef full = LLVMBuildAnd(c->b, count, cg_i64(c, ~(int64_t)(lanes - 1)), "");
    if (LLVMIsConstant(count)) full = cg_i64(c, LLVMConstIntGetSExtValue(count) / lanes * lanes);
    cg_loop l = cg_loop_begin(c, cg_i64(c, 0), full, lanes, "v");
    body(c, ctx, l.iv, NULL, lanes);
    cg_loop_end(c, &l);
    if (LLVMIsConstant(count)) {
        int64_t rem = LLVMConstIntGetSExtValue(count) % lanes;
        if (rem) body(c, ctx, full, cg_lanes_below(c, cg_i64(c, rem), lanes), lanes);
        return;
    }
    LLVMValueRef rem = LLVMBuildSub(c->b, count, full, "");
    LLVMBasicBlockRef tail = cg_block(c, "vtail"), done = cg_block(c, "vdone");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntNE, rem, cg_i64(c, 0), ""), tail, done);
    LLVMPositionBuilderAtEnd(c->b, tail);
    body(c, ctx, full, cg_lanes_below(c, rem, lanes), lanes);
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
}

/* ---- parallel loops ---------------------------------------------------------- */

static LLVMValueRef parallel_for_decl(cg *c, LLVMTypeRef *type)
{
    LLVMTypeRef args[3] = {c->t_ptr, c->t_ptr, c->t_i64};
    *type = LLVMFunctionType(c->t_void, args, 3, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, "qmc_parallel_for");
    return fn ? fn : LLVMAddFunction(c->mod, "qmc_parallel_for", *type);
}

void cg_call_range(cg *c, LLVMValueRef fn, LLVMValueRef ctx, int64_t n, bool parallel)
{
    if (parallel && n > 1) {
        LLVMTypeRef pt;
        LLVMValueRef pf = parallel_for_decl(c, &pt);
        LLVMValueRef args[3] = {fn, ctx, cg_i64(c, n)};
        LLVMBuildCall2(c->b, pt, pf, args, 3, "");
        return;
    }
    LLVMValueRef args[3] = {ctx, cg_i64(c, 0), cg_i64(c, n)};
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(fn), fn, args, 3, "");
}

void cg_parallel(cg *c, const char *name, LLVMValueRef *vals, int n_vals, int64_t n, bool parallel,
                 cg_range_body body, void *user)
{
    /* the context: the values, in an array on the caller's stack */
    LLVMValueRef ctx = cg_alloca(c, LLVMArrayType(c->t_ptr, (unsigned)n_vals), "ctx");
    for (int i = 0; i < n_vals; i++)
        cg_store(c, vals[i], cg_gep(c, c->t_ptr, ctx, cg_i64(c, i)), 8);
    LLVMValueRef caller = c->fn;
    LLVMBasicBlockRef caller_entry = c->entry, here = LLVMGetInsertBlock(c->b);
    LLVMTypeRef params[3] = {c->t_ptr, c->t_i64, c->t_i64};
    LLVMValueRef fn =
        cg_function_begin(c, name, LLVMFunctionType(c->t_void, params, 3, 0), false, true);
    LLVMValueRef inner[16];
    for (int i = 0; i < n_vals && i < 16; i++)
        inner[i] = cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, LLVMGetParam(fn, 0), cg_i64(c, i)), 8);
    body(c, inner, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), user);
    LLVMBuildRetVoid(c->b);
    c->fn = caller;
    c->entry = caller_entry;
    LLVMPositionBuilderAtEnd(c->b, here);
    cg_call_range(c, fn, ctx, n, parallel);
}

LLVMValueRef cg_int_dot(cg *c, bool vnni, LLVMValueRef acc, LLVMValueRef a, LLVMValueRef b)
{
    if (vnni) {
        LLVMValueRef args[3] = {acc, a, b};
        return cg_intrinsic(c, "llvm.x86.avx512.vpdpbusd.512", NULL, 0, args, 3);
    }
    /* sdot works on 4 lanes: split the vector */
    int L = c->lanes;
    LLVMTypeRef b16 = cg_vec(c, c->t_i8, 16), i4 = cg_vec(c, c->t_i32, 4);
    LLVMValueRef out = LLVMGetPoison(LLVMTypeOf(acc));
    for (int h = 0; h < L / 4; h++) {
        LLVMValueRef idx[4], part[3];
        for (int k = 0; k < 4; k++) idx[k] = cg_i32(c, h * 4 + k);
        LLVMValueRef sel = LLVMConstVector(idx, 4);
        part[0] = LLVMBuildShuffleVector(c->b, acc, LLVMGetPoison(LLVMTypeOf(acc)), sel, "");
        part[1] = LLVMBuildBitCast(
            c->b, LLVMBuildShuffleVector(c->b, a, LLVMGetPoison(LLVMTypeOf(a)), sel, ""), b16, "");
        part[2] = LLVMBuildBitCast(
            c->b, LLVMBuildShuffleVector(c->b, b, LLVMGetPoison(LLVMTypeOf(b)), sel, ""), b16, "");
        LLVMTypeRef tys[2] = {i4, b16};
        LLVMValueRef r = cg_intrinsic(c, "llvm.aarch64.neon.sdot", tys, 2, part, 3);
        for (int k = 0; k < 4; k++)
            out = LLVMBuildInsertElement(c->b, out,
                                         LLVMBuildExtractElement(c->b, r, cg_i32(c, k), ""),
                                         cg_i32(c, h * 4 + k), "");
    }
    return out;
}

LLVMValueRef cg_fptr(cg *c, LLVMValueRef base, LLVMValueRef idx)
{
    return cg_gep(c, c->t_f32, base, idx);
}

LLVMValueRef cg_fload(cg *c, LLVMValueRef base, LLVMValueRef idx)
{
    return cg_load(c, c->t_f32, cg_fptr(c, base, idx), 4);
}

void cg_fstore(cg *c, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx)
{
    cg_store(c, v, cg_fptr(c, base, idx), 4);
}
