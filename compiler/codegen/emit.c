/* emit.c: the emit pass: one LLVM module per model.
 *
 * Needs: a lowered graph (every node has a buffer), a target and the
 * weights' layout (weights.c).
 * Guarantees: a module that passes LLVMVerifyModule, holding
 *   - no weight bytes (but with --emit llvm/bc/asm): the code reads every
 *     blob at its offset from one pointer, PREFIX.weights_base, which
 *     points at the object's weights section (the hidden symbol
 *     PREFIX.weights, object.c) or, with --weights-file, is set by the
 *     runtime to the mapped file; for llvm/bc/asm each blob is a 64-byte
 *     aligned constant named after its tensor ("blocks.0.fc1.weight",
 *     ".scale", ".zero");
 *   - one function per node, named after it (linear layers also get a
 *     "NAME.panels" function that the thread pool runs), with everything
 *     it reads, weights included, as parameters, so that the nodes of
 *     repeated blocks are equal functions, merged into one before the
 *     optimiser runs (mergefunc: a 20-block model costs LLVM about one
 *     block);
 *   - PREFIX_run_v, PREFIX_run and PREFIX_model (a qmc_model_desc), and for
 *     executables qmc_exe_model;
 * optimised with the new pass manager (default<O3> etc.) and written as an
 * object (appended to the weights already in its file), assembly, IR or
 * bitcode file, atomically. */
#include <stdlib.h>
#include <string.h>

#include "codegen.h"

/* ---- setup ------------------------------------------------------------------ */

static void init_llvm(void)
{
    static bool done;
    if (done) return;
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86Target();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86AsmPrinter();
    LLVMInitializeAArch64TargetInfo();
    LLVMInitializeAArch64Target();
    LLVMInitializeAArch64TargetMC();
    LLVMInitializeAArch64AsmPrinter();
    done = true;
}

static LLVMTargetMachineRef make_target_machine(const cg_target *t, int opt_level)
{
    init_llvm();
    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(t->triple, &target, &err)) {
        sup_error_plain("LLVM does not support target '%s': %s", t->triple, err);
        LLVMDisposeMessage(err);
        return NULL;
    }
    LLVMCodeGenOptLevel level = opt_level <= 0   ? LLVMCodeGenLevelNone
                                : opt_level == 1 ? LLVMCodeGenLevelLess
                                : opt_level == 2 ? LLVMCodeGenLevelDefault
                                                 : LLVMCodeGenLevelAggressive;
    /* medium code model on x86-64: big constant data goes to .lrodata */
    LLVMCodeModel cm = t->arch == CG_ARCH_X86_64 ? LLVMCodeModelMedium : LLVMCodeModelDefault;
    return LLVMCreateTargetMachine(target, t->triple, t->cpu,
                                   t->llvm_features ? t->llvm_features : "", level, LLVMRelocPIC,
                                   cm);
}

/* ---- weights ---------------------------------------------------------------- */

/* --emit llvm/bc/asm: each blob a constant named after its tensor. */
static void emit_blob_globals(cg *c)
{
    c->globals = sup_arena_alloc(c->arena, sizeof *c->globals * (size_t)(c->w->n_blobs + 1));
    for (int i = 0; i < c->w->n_blobs; i++) {
        const cg_blob *b = &c->w->blobs[i];
        QMC_ASSERT(b->data);
        LLVMValueRef init = LLVMConstStringInContext2(c->ctx, b->data, b->bytes, 1);
        LLVMValueRef gv = LLVMAddGlobal(c->mod, LLVMTypeOf(init), b->name);
        LLVMSetInitializer(gv, init);
        LLVMSetGlobalConstant(gv, 1);
        LLVMSetLinkage(gv, LLVMInternalLinkage);
        LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
        LLVMSetAlignment(gv, 64);
        c->globals[i] = gv;
    }
}

/* The pointer the code reads the weights through: set by the runtime
 * (--weights-file) or pointing at the object's weights section. */
static void emit_weights_base(cg *c)
{
    const cg_weights *w = c->w;
    c->weights_base =
        LLVMAddGlobal(c->mod, c->t_ptr, sup_arena_printf(c->arena, "%s.weights_base", c->prefix));
    LLVMSetLinkage(c->weights_base, LLVMInternalLinkage);
    if (w->kind == CG_WEIGHTS_FILE) {
        LLVMSetInitializer(c->weights_base, LLVMConstNull(c->t_ptr));
        return;
    }
    LLVMValueRef data = LLVMAddGlobal(c->mod, LLVMArrayType2(c->t_i8, w->size), w->symbol);
    LLVMSetLinkage(data, LLVMExternalLinkage);
    LLVMSetVisibility(data, LLVMHiddenVisibility);
    LLVMSetGlobalConstant(data, 1);
    if (c->target->arch == CG_ARCH_X86_64) LLVMSetSection(data, ".lrodata.qmc_weights");
    LLVMSetInitializer(c->weights_base, data);
    /* kept a load (one per layer call), not folded into the code as the
     * symbol's address: a 64-bit pointer reaches weights of any size from
     * code of any model (aarch64's ADRP reaches 4 GB) */
    LLVMSetExternallyInitialized(c->weights_base, 1);
}

static void emit_weights(cg *c)
{
    if (c->w->kind == CG_WEIGHTS_MEMORY)
        emit_blob_globals(c);
    else if (c->w->kind == CG_WEIGHTS_FILE || c->w->n_blobs)
        emit_weights_base(c); /* a weights file is loaded even when empty */
}

/* ---- node functions ------------------------------------------------------------ */

/* i32 NAME(ptr out, ptr operand..., [ptr scratch]); constants are folded in. */
static LLVMValueRef emit_node_fn(cg *c, int32_t i)
{
    const ir_node *n = &c->g->nodes[i];
    if (n->op == IR_OP_LINEAR) {
        cg_emit_linear(c, i, n->name);
        return c->fn;
    }
    LLVMTypeRef params[IR_MAX_RANK + 40];
    int np = 0;
    params[np++] = c->t_ptr;
    for (int j = 0; j < n->n_inputs; j++)
        if (cg_takes_operand(c, n, j)) params[np++] = c->t_ptr;
    if (cg_takes_scratch(c, i)) params[np++] = c->t_ptr;
    LLVMTypeRef ft = LLVMFunctionType(c->t_i32, params, (unsigned)np, 0);
    LLVMValueRef fn = cg_function_begin(c, n->name, ft, false, true);
    cg_param_noalias(c, fn, 0);
    LLVMValueRef operands[64] = {0};
    int p = 1;
    for (int j = 0; j < n->n_inputs && j < 64; j++)
        if (cg_takes_operand(c, n, j)) operands[j] = LLVMGetParam(fn, (unsigned)p++);
    LLVMValueRef scratch = cg_takes_scratch(c, i) ? LLVMGetParam(fn, (unsigned)p) : NULL;
    cg_emit_op(c, i, LLVMGetParam(fn, 0), operands, scratch);
    LLVMBuildRet(c->b, cg_i32(c, 0));
    return fn;
}

/* ---- entry points ------------------------------------------------------------- */

/* The pointer where node i's value lives, inside the entry function. */
static LLVMValueRef buffer_ptr(cg *c, int32_t i, LLVMValueRef ins, LLVMValueRef outs,
                               LLVMValueRef ws)
{
    const ir_buffer *b = &c->plan->buf[i];
    switch (b->kind) {
    case IR_BUF_INPUT: return cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, ins, cg_i64(c, b->port)), 8);
    case IR_BUF_OUTPUT:
        return cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, outs, cg_i64(c, b->port)), 8);
    case IR_BUF_WORKSPACE: return cg_gep(c, c->t_i8, ws, cg_i64(c, b->offset));
    case IR_BUF_WEIGHT: return cg_blob_ptr(c, c->w->node_blob[i]);
    case IR_BUF_NONE: break;
    }
    return LLVMConstNull(c->t_ptr);
}

static LLVMValueRef string_global(cg *c, const char *s, const char *name)
{
    LLVMValueRef init = LLVMConstStringInContext2(c->ctx, s, strlen(s), 0);
    LLVMValueRef gv = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
    return gv;
}

/* Returns early with `status` unless cond holds. */
static void check_or_return(cg *c, LLVMValueRef cond, LLVMValueRef status)
{
    LLVMBasicBlockRef ok = cg_block(c, "ok"), bad = cg_block(c, "fail");
    LLVMBuildCondBr(c->b, cond, ok, bad);
    LLVMPositionBuilderAtEnd(c->b, bad);
    LLVMBuildRet(c->b, status);
    LLVMPositionBuilderAtEnd(c->b, ok);
}

/* Checks the CPU once (cached in a global) before any kernel runs. */
static void emit_cpu_check(cg *c, LLVMValueRef features)
{
    LLVMValueRef flag =
        LLVMAddGlobal(c->mod, c->t_i32, sup_arena_printf(c->arena, "%s.cpu_checked", c->prefix));
    LLVMSetInitializer(flag, cg_i32(c, 0));
    LLVMSetLinkage(flag, LLVMInternalLinkage);
    LLVMBasicBlockRef check = cg_block(c, "check_cpu"), go = cg_block(c, "cpu_ok");
    LLVMValueRef known =
        LLVMBuildICmp(c->b, LLVMIntEQ, cg_load(c, c->t_i32, flag, 4), cg_i32(c, 1), "");
    LLVMBuildCondBr(c->b, known, go, check);
    LLVMPositionBuilderAtEnd(c->b, check);
    LLVMTypeRef params[3] = {c->t_ptr, c->t_ptr, c->t_i64};
    LLVMTypeRef ft = LLVMFunctionType(c->t_i32, params, 3, 0);
    LLVMValueRef fn = LLVMAddFunction(c->mod, "qmc_check_cpu", ft);
    LLVMValueRef args[3] = {features, LLVMConstNull(c->t_ptr), cg_i64(c, 0)};
    LLVMValueRef st = LLVMBuildCall2(c->b, ft, fn, args, 3, "");
    LLVMValueRef good = LLVMBuildICmp(c->b, LLVMIntEQ, st, cg_i32(c, 0), "");
    cg_store(c, LLVMBuildZExt(c->b, good, c->t_i32, ""), flag, 4);
    check_or_return(c, good, cg_i32(c, QMC_ERR_CPU));
    LLVMBuildBr(c->b, go);
    LLVMPositionBuilderAtEnd(c->b, go);
}

static void call_node(cg *c, int32_t i, LLVMValueRef fn, LLVMValueRef ins, LLVMValueRef outs,
                      LLVMValueRef ws)
{
    const ir_node *n = &c->g->nodes[i];
    LLVMValueRef args[64];
    int na = 0;
    args[na++] = buffer_ptr(c, i, ins, outs, ws);
    for (int j = 0; j < n->n_inputs && na < 63; j++)
        if (cg_takes_operand(c, n, j)) args[na++] = buffer_ptr(c, n->inputs[j], ins, outs, ws);
    if (cg_takes_scratch(c, i))
        args[na++] = cg_gep(c, c->t_i8, ws, cg_i64(c, c->plan->buf[i].scratch_offset));
    na += cg_linear_weight_args(c, i, args + na);
    LLVMValueRef st = LLVMBuildCall2(c->b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)na, "");
    check_or_return(c, LLVMBuildICmp(c->b, LLVMIntEQ, st, cg_i32(c, 0), ""), st);
}

/* i32 PREFIX_run_v(ptr inputs, ptr outputs, ptr workspace) */
static LLVMValueRef emit_run_v(cg *c, LLVMValueRef *node_fns, LLVMValueRef features)
{
    LLVMTypeRef params[3] = {c->t_ptr, c->t_ptr, c->t_ptr};
    LLVMTypeRef ft = LLVMFunctionType(c->t_i32, params, 3, 0);
    LLVMValueRef fn =
        cg_function_begin(c, sup_arena_printf(c->arena, "%s_run_v", c->prefix), ft, true, false);
    LLVMValueRef ins = LLVMGetParam(fn, 0), outs = LLVMGetParam(fn, 1), ws = LLVMGetParam(fn, 2);
    emit_cpu_check(c, features);
    LLVMValueRef bad_arg = cg_i32(c, QMC_ERR_INVALID_ARGUMENT);
    check_or_return(c,
                    LLVMBuildAnd(c->b, LLVMBuildIsNotNull(c->b, ins, ""),
                                 LLVMBuildIsNotNull(c->b, outs, ""), ""),
                    bad_arg);
    if (c->plan->workspace_size) check_or_return(c, LLVMBuildIsNotNull(c->b, ws, ""), bad_arg);
    for (int i = 0; i < c->g->n_inputs; i++)
        check_or_return(
            c,
            LLVMBuildIsNotNull(c->b,
                               cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, ins, cg_i64(c, i)), 8), ""),
            bad_arg);
    for (int o = 0; o < c->g->n_outputs; o++)
        check_or_return(
            c,
            LLVMBuildIsNotNull(
                c->b, cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, outs, cg_i64(c, o)), 8), ""),
            bad_arg);
    if (c->weights_base && c->w->kind == CG_WEIGHTS_FILE &&
        c->w->n_blobs) /* (an empty file maps to null) */
        check_or_return(c, LLVMBuildIsNotNull(c->b, cg_load(c, c->t_ptr, c->weights_base, 8), ""),
                        cg_i32(c, QMC_ERR_IO));
    for (int i = 0; i < c->g->n_nodes; i++)
        if (node_fns[i]) call_node(c, i, node_fns[i], ins, outs, ws);
    for (int o = 0; o < c->g->n_outputs; o++) {
        int32_t src = c->plan->output_copies[o];
        if (src < 0) continue;
        LLVMValueRef dst = cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, outs, cg_i64(c, o)), 8);
        cg_memcpy(c, dst, buffer_ptr(c, src, ins, outs, ws),
                  cg_i64(c, ir_node_count(&c->g->nodes[src]) * 4));
    }
    LLVMBuildRet(c->b, cg_i32(c, 0));
    return fn;
}

/* i32 PREFIX_run(ptr in0, ..., ptr out0, ..., ptr workspace): the typed entry. */
static void emit_run(cg *c, LLVMValueRef run_v)
{
    int ni = c->g->n_inputs, no = c->g->n_outputs;
    LLVMTypeRef *params = sup_arena_alloc(c->arena, sizeof *params * (size_t)(ni + no + 1));
    for (int i = 0; i < ni + no + 1; i++) params[i] = c->t_ptr;
    LLVMTypeRef ft = LLVMFunctionType(c->t_i32, params, (unsigned)(ni + no + 1), 0);
    LLVMValueRef fn =
        cg_function_begin(c, sup_arena_printf(c->arena, "%s_run", c->prefix), ft, true, false);
    LLVMValueRef ins = cg_alloca(c, LLVMArrayType(c->t_ptr, (unsigned)(ni ? ni : 1)), "inputs");
    LLVMValueRef outs = cg_alloca(c, LLVMArrayType(c->t_ptr, (unsigned)no), "outputs");
    for (int i = 0; i < ni; i++)
        cg_store(c, LLVMGetParam(fn, (unsigned)i), cg_gep(c, c->t_ptr, ins, cg_i64(c, i)), 8);
    for (int o = 0; o < no; o++)
        cg_store(c, LLVMGetParam(fn, (unsigned)(ni + o)), cg_gep(c, c->t_ptr, outs, cg_i64(c, o)),
                 8);
    LLVMValueRef args[3] = {ins, outs, LLVMGetParam(fn, (unsigned)(ni + no))};
    LLVMBuildRet(c->b, LLVMBuildCall2(c->b, LLVMGlobalGetValueType(run_v), run_v, args, 3, ""));
}

/* ---- the model descriptor (struct qmc_model_desc of qmc_runtime.h) ------------ */

static LLVMValueRef tensor_descs(cg *c, const ir_port *ports, int n, const char *what)
{
    LLVMTypeRef fields[4] = {c->t_ptr, c->t_i32, c->t_i32, LLVMArrayType(c->t_i64, QMC_MAX_RANK)};
    LLVMTypeRef td = LLVMStructTypeInContext(c->ctx, fields, 4, 0);
    LLVMValueRef *items = sup_arena_alloc(c->arena, sizeof *items * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        LLVMValueRef dims[QMC_MAX_RANK];
        for (int d = 0; d < QMC_MAX_RANK; d++)
            dims[d] = cg_i64(c, d < ports[i].rank ? ports[i].shape[d] : 0);
        LLVMValueRef vals[4] = {string_global(c, ports[i].name, ".name"), cg_i32(c, ports[i].dtype),
                                cg_i32(c, ports[i].rank),
                                LLVMConstArray2(c->t_i64, dims, QMC_MAX_RANK)};
        items[i] = LLVMConstNamedStruct(td, vals, 4);
    }
    LLVMValueRef init = LLVMConstArray2(td, items, (uint64_t)n);
    LLVMValueRef gv = LLVMAddGlobal(c->mod, LLVMTypeOf(init),
                                    sup_arena_printf(c->arena, "%s.%s", c->prefix, what));
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMInternalLinkage);
    return gv;
}

static void emit_model_desc(cg *c, LLVMValueRef run_v, LLVMValueRef features)
{
    LLVMTypeRef f[14] = {c->t_ptr, c->t_i32, c->t_i32, c->t_ptr, c->t_ptr, c->t_i64, c->t_ptr,
                         c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64, c->t_i64, c->t_ptr};
    LLVMTypeRef md = LLVMStructTypeInContext(c->ctx, f, 14, 0);
    /* a weights file of its own, even an empty one: the runtime loads and checks it */
    bool ext = c->w->kind == CG_WEIGHTS_FILE;
    uint64_t wsize = ext ? c->w->size : 0, wsum = ext ? c->w->checksum : 0;
    LLVMValueRef v[14] = {string_global(c, c->g->name, ".name"),
                          cg_i32(c, c->g->n_inputs),
                          cg_i32(c, c->g->n_outputs),
                          tensor_descs(c, c->g->inputs, c->g->n_inputs, "inputs"),
                          tensor_descs(c, c->g->outputs, c->g->n_outputs, "outputs"),
                          cg_i64(c, c->plan->workspace_size),
                          string_global(c, c->target->triple, ".triple"),
                          string_global(c, c->target->cpu, ".cpu"),
                          features,
                          run_v,
                          ext ? string_global(c, c->opts->weights_file, ".weights_file")
                              : LLVMConstNull(c->t_ptr),
                          LLVMConstInt(c->t_i64, wsize, 0),
                          LLVMConstInt(c->t_i64, wsum, 0),
                          ext && c->weights_base ? c->weights_base : LLVMConstNull(c->t_ptr)};
    LLVMValueRef init = LLVMConstNamedStruct(md, v, 14);
    LLVMValueRef gv = LLVMAddGlobal(c->mod, md, sup_arena_printf(c->arena, "%s_model", c->prefix));
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    if (c->opts->emit == CG_EMIT_EXE) {
        LLVMValueRef p = LLVMAddGlobal(c->mod, c->t_ptr, "qmc_exe_model");
        LLVMSetInitializer(p, gv);
        LLVMSetGlobalConstant(p, 1);
    }
}

/* ---- optimisation and output ------------------------------------------------------ */

static bool optimise(cg *c, LLVMTargetMachineRef tm, int level)
{
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    char passes[48];
    /* equal functions (the layers of repeated blocks) merge first: the
     * optimiser and the code generator then see each once */
    snprintf(passes, sizeof passes, "mergefunc,default<O%d>",
             level < 0   ? 0
             : level > 3 ? 3
                         : level);
    LLVMErrorRef err = LLVMRunPasses(c->mod, passes, tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (err) {
        char *msg = LLVMGetErrorMessage(err);
        sup_error_plain("internal error: LLVM optimisation failed: %s", msg);
        LLVMDisposeErrorMessage(msg);
        return false;
    }
    sup_stage_end("optimise");
    return true;
}

static bool write_output(cg *c, LLVMTargetMachineRef tm, const char *path, cg_emit_kind what)
{
    if (what == CG_EMIT_LLVM) {
        char *s = LLVMPrintModuleToString(c->mod);
        bool ok = cg_write_file(path, s, strlen(s));
        LLVMDisposeMessage(s);
        return ok;
    }
    if (what == CG_EMIT_BC) {
        LLVMMemoryBufferRef mb = LLVMWriteBitcodeToMemoryBuffer(c->mod);
        bool ok = cg_write_file(path, LLVMGetBufferStart(mb), LLVMGetBufferSize(mb));
        LLVMDisposeMemoryBuffer(mb);
        return ok;
    }
    LLVMMemoryBufferRef mb;
    char *err = NULL;
    LLVMCodeGenFileType ft = what == CG_EMIT_ASM ? LLVMAssemblyFile : LLVMObjectFile;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, c->mod, ft, &err, &mb)) {
        sup_error_plain("internal error: LLVM code generation failed: %s", err);
        LLVMDisposeMessage(err);
        return false;
    }
    sup_stage_end("machine code");
    bool ok = what == CG_EMIT_OBJ && c->w->kind == CG_WEIGHTS_OBJECT
                  ? cg_object_finish(c->w, LLVMGetBufferStart(mb), LLVMGetBufferSize(mb))
                  : cg_write_file(path, LLVMGetBufferStart(mb), LLVMGetBufferSize(mb));
    LLVMDisposeMemoryBuffer(mb);
    return ok;
}

static void init_types(cg *c)
{
    c->t_void = LLVMVoidTypeInContext(c->ctx);
    c->t_i1 = LLVMInt1TypeInContext(c->ctx);
    c->t_i8 = LLVMInt8TypeInContext(c->ctx);
    c->t_i16 = LLVMInt16TypeInContext(c->ctx);
    c->t_i32 = LLVMInt32TypeInContext(c->ctx);
    c->t_i64 = LLVMInt64TypeInContext(c->ctx);
    c->t_f16 = LLVMHalfTypeInContext(c->ctx);
    c->t_f32 = LLVMFloatTypeInContext(c->ctx);
    c->t_ptr = LLVMPointerTypeInContext(c->ctx, 0);
}

static bool build_module(cg *c)
{
    const ir_graph *g = c->g;
    emit_weights(c);
    LLVMValueRef *fns = sup_arena_alloc(c->arena, sizeof *fns * (size_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++)
        if (c->plan->buf[i].kind == IR_BUF_WORKSPACE || c->plan->buf[i].kind == IR_BUF_OUTPUT)
            fns[i] = emit_node_fn(c, i);
    LLVMValueRef features =
        string_global(c, cg_target_feature_list(c->arena, c->target), ".features");
    LLVMValueRef run_v = emit_run_v(c, fns, features);
    emit_run(c, run_v);
    emit_model_desc(c, run_v, features);
    char *msg = NULL;
    if (LLVMVerifyModule(c->mod, LLVMReturnStatusAction, &msg)) {
        sup_error_plain("internal error: the generated module does not verify:\n%s", msg);
        LLVMDisposeMessage(msg);
        return false;
    }
    LLVMDisposeMessage(msg);
    sup_stage_end("module");
    return true;
}

bool cg_emit_module(sup_arena *arena, const ir_graph *g, const ir_plan *plan, const cg_target *t,
                    const cg_options *opts, const cg_weights *w, const char *path,
                    cg_emit_kind what)
{
    QMC_ASSERT(w->n_put == w->n_nodes);
    LLVMTargetMachineRef tm = make_target_machine(t, opts->opt_level);
    if (!tm) return false;
    cg c = {.arena = arena, .g = g, .plan = plan, .target = t, .opts = opts, .w = w};
    c.ctx = LLVMContextCreate();
    c.mod = LLVMModuleCreateWithNameInContext(g->name, c.ctx);
    c.b = LLVMCreateBuilderInContext(c.ctx);
    init_types(&c);
    c.lanes = w->lanes;
    c.prefix = cg_symbol_prefix(arena, g);
    LLVMSetTarget(c.mod, t->triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(c.mod, td);
    LLVMDisposeTargetData(td);
    bool ok =
        build_module(&c) && optimise(&c, tm, opts->opt_level) && write_output(&c, tm, path, what);
    LLVMDisposeBuilder(c.b);
    LLVMDisposeModule(c.mod);
    LLVMContextDispose(c.ctx);
    LLVMDisposeTargetMachine(tm);
    return ok;
}
