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

/* i32 NAME(ptr out, ptr operand..., [ptr scratch], [conv weight...], ...): constants
 * are folded in, a conv's packed weight comes as cg_conv_weight_args. */
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
    int n_weight = cg_conv_weight_count(c, i);
    for (int k = 0; k < n_weight; k++) params[np++] = c->t_ptr;
    bool cached = n->op == IR_OP_ATTENTION && n->attr.cached;
    for (int k = 0; cached && k < 4; k++) params[np++] = c->t_ptr; /* keys, values, scales */
    if (cg_takes_position(n)) params[np++] = c->t_i64;
    LLVMTypeRef ft = LLVMFunctionType(c->t_i32, params, (unsigned)np, 0);
    LLVMValueRef fn = cg_function_begin(c, n->name, ft, false, true);
    cg_param_noalias(c, fn, 0);
    LLVMValueRef operands[64] = {0};
    int p = 1;
    for (int j = 0; j < n->n_inputs && j < 64; j++)
        if (cg_takes_operand(c, n, j)) operands[j] = LLVMGetParam(fn, (unsigned)p++);
    LLVMValueRef scratch = cg_takes_scratch(c, i) ? LLVMGetParam(fn, (unsigned)p++) : NULL;
    LLVMValueRef weight[4] = {0};
    for (int k = 0; k < n_weight; k++) weight[k] = LLVMGetParam(fn, (unsigned)p++);
    cg_state_args state = {0};
    if (cached) {
        state.cache_k = LLVMGetParam(fn, (unsigned)p++);
        state.cache_v = LLVMGetParam(fn, (unsigned)p++);
        state.scale_k = LLVMGetParam(fn, (unsigned)p++);
        state.scale_v = LLVMGetParam(fn, (unsigned)p++);
    }
    if (cg_takes_position(n)) state.pos = LLVMGetParam(fn, (unsigned)p++);
    if (n->op == IR_OP_CONV)
        cg_emit_conv(c, i, LLVMGetParam(fn, 0), operands, scratch, weight);
    else if (n->op == IR_OP_CONV_TRANSPOSE)
        cg_emit_conv_transpose(c, i, LLVMGetParam(fn, 0), operands, weight);
    else
        cg_emit_op(c, i, LLVMGetParam(fn, 0), operands, scratch,
                   cg_takes_position(n) ? &state : NULL);
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

/* With --weights-file, returns QMC_ERR_IO unless the runtime mapped it
 * (an empty file maps to null). */
static void check_weights_mapped(cg *c)
{
    if (c->weights_base && c->w->kind == CG_WEIGHTS_FILE && c->w->n_blobs)
        check_or_return(c, LLVMBuildIsNotNull(c->b, cg_load(c, c->t_ptr, c->weights_base, 8), ""),
                        cg_i32(c, QMC_ERR_IO));
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

/* A step's view of the state: its base pointer and the position. */
typedef struct state_view {
    LLVMValueRef base, pos;
    const ir_state *layout;
} state_view;

static void call_node(cg *c, int32_t i, LLVMValueRef fn, LLVMValueRef ins, LLVMValueRef outs,
                      LLVMValueRef ws, const state_view *sv)
{
    const ir_node *n = &c->g->nodes[i];
    LLVMValueRef args[64];
    int na = 0;
    args[na++] = buffer_ptr(c, i, ins, outs, ws);
    for (int j = 0; j < n->n_inputs && na < 60; j++)
        if (cg_takes_operand(c, n, j)) args[na++] = buffer_ptr(c, n->inputs[j], ins, outs, ws);
    if (cg_takes_scratch(c, i))
        args[na++] = cg_gep(c, c->t_i8, ws, cg_i64(c, c->plan->buf[i].scratch_offset));
    na += cg_linear_weight_args(c, i, args + na);
    na += cg_conv_weight_args(c, i, args + na);
    if (n->op == IR_OP_ATTENTION && n->attr.cached) {
        const ir_state *l = sv->layout;
        int s = n->attr.slot;
        int64_t at[4] = {l->k[s], l->v[s], l->k_scale[s], l->v_scale[s]};
        for (int i = 0; i < 4; i++) args[na++] = cg_gep(c, c->t_i8, sv->base, cg_i64(c, at[i]));
    }
    if (cg_takes_position(n)) args[na++] = sv ? sv->pos : cg_i64(c, 0);
    LLVMValueRef st = LLVMBuildCall2(c->b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)na, "");
    check_or_return(c, LLVMBuildICmp(c->b, LLVMIntEQ, st, cg_i32(c, 0), ""), st);
}

/* Every node in order, then the outputs no node writes directly. */
static void call_nodes(cg *c, LLVMValueRef *node_fns, LLVMValueRef ins, LLVMValueRef outs,
                       LLVMValueRef ws, const state_view *sv)
{
    for (int i = 0; i < c->g->n_nodes; i++)
        if (node_fns[i]) call_node(c, i, node_fns[i], ins, outs, ws, sv);
    for (int o = 0; o < c->g->n_outputs; o++) {
        int32_t src = c->plan->output_copies[o];
        if (src < 0) continue;
        LLVMValueRef dst = cg_load(c, c->t_ptr, cg_gep(c, c->t_ptr, outs, cg_i64(c, o)), 8);
        cg_memcpy(c, dst, buffer_ptr(c, src, ins, outs, ws),
                  cg_i64(c, ir_node_count(&c->g->nodes[src]) * 4));
    }
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
    check_weights_mapped(c);
    call_nodes(c, node_fns, ins, outs, ws, NULL);
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

/* PREFIX.what: an internal constant of the model's descriptor. */
static LLVMValueRef model_global(cg *c, LLVMValueRef init, const char *what)
{
    LLVMValueRef gv = LLVMAddGlobal(c->mod, LLVMTypeOf(init),
                                    sup_arena_printf(c->arena, "%s.%s", c->prefix, what));
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMInternalLinkage);
    return gv;
}

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
    return model_global(c, LLVMConstArray2(td, items, (uint64_t)n), what);
}

/* What a model with a sequence adds to its descriptor. */
typedef struct seq_desc {
    int64_t context, state_size;
    int n_steps;
    LLVMValueRef steps, staging, kv_cache;
} seq_desc;

/* The descriptor's LLVM type (struct qmc_model_desc). */
static LLVMTypeRef model_desc_type(cg *c)
{
    LLVMTypeRef f[20] = {c->t_ptr, c->t_i32, c->t_i32, c->t_ptr, c->t_ptr, c->t_i64, c->t_ptr,
                         c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64, c->t_i64, c->t_ptr,
                         c->t_i64, c->t_i64, c->t_i32, c->t_ptr, c->t_ptr, c->t_ptr};
    return LLVMStructTypeInContext(c->ctx, f, 20, 0);
}

/* The ports as the descriptor states them: a model with a sequence has
 * up to `context` rows. */
static const ir_port *desc_ports(cg *c, const ir_port *ports, int n)
{
    if (!c->g->context) return ports;
    ir_port *p = sup_arena_alloc(c->arena, sizeof *p * (size_t)(n + 1));
    for (int i = 0; i < n; i++) p[i] = ports[i], p[i].shape[0] = c->g->context;
    return p;
}

static void emit_model_desc(cg *c, LLVMValueRef gv, LLVMValueRef run_v, LLVMValueRef features,
                            int64_t workspace_size, const seq_desc *seq)
{
    LLVMTypeRef md = model_desc_type(c);
    /* a weights file of its own, even an empty one: the runtime loads and checks it */
    bool ext = c->w->kind == CG_WEIGHTS_FILE;
    uint64_t wsize = ext ? c->w->size : 0, wsum = ext ? c->w->checksum : 0;
    seq_desc none = {0};
    if (!seq) seq = &none;
    LLVMValueRef null = LLVMConstNull(c->t_ptr);
    LLVMValueRef v[20] = {
        string_global(c, c->g->name, ".name"),
        cg_i32(c, c->g->n_inputs),
        cg_i32(c, c->g->n_outputs),
        tensor_descs(c, desc_ports(c, c->g->inputs, c->g->n_inputs), c->g->n_inputs, "inputs"),
        tensor_descs(c, desc_ports(c, c->g->outputs, c->g->n_outputs), c->g->n_outputs, "outputs"),
        cg_i64(c, workspace_size),
        string_global(c, c->target->triple, ".triple"),
        string_global(c, c->target->cpu, ".cpu"),
        features,
        run_v ? run_v : null,
        ext ? string_global(c, c->opts->weights_file, ".weights_file") : LLVMConstNull(c->t_ptr),
        LLVMConstInt(c->t_i64, wsize, 0),
        LLVMConstInt(c->t_i64, wsum, 0),
        ext && c->weights_base ? c->weights_base : null,
        cg_i64(c, seq->context),
        cg_i64(c, seq->state_size),
        cg_i32(c, seq->n_steps),
        seq->steps ? seq->steps : null,
        seq->staging ? seq->staging : null,
        seq->kv_cache ? seq->kv_cache : null};
    LLVMSetInitializer(gv, LLVMConstNamedStruct(md, v, 20));
}

/* PREFIX_model, its initializer set once everything it names exists. */
static LLVMValueRef model_desc_global(cg *c)
{
    LLVMValueRef gv = LLVMAddGlobal(c->mod, model_desc_type(c),
                                    sup_arena_printf(c->arena, "%s_model", c->prefix));
    LLVMSetGlobalConstant(gv, 1);
    if (c->opts->emit == CG_EMIT_EXE) {
        LLVMValueRef p = LLVMAddGlobal(c->mod, c->t_ptr, "qmc_exe_model");
        LLVMSetInitializer(p, gv);
        LLVMSetGlobalConstant(p, 1);
    }
    return gv;
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

static bool verify_module(cg *c)
{
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

/* ---- a model with a sequence -------------------------------------------------- */

/* Step graphs read the model graph's weights: a view of its layout in
 * which each weight node of the step has the blobs and packed form of the
 * model's weight node of the same name. */
static const cg_weights *share_weights(cg *c, const cg_weights *model_w, const ir_graph *model,
                                       const ir_graph *step)
{
    ir_name_map by_name = {0};
    for (int32_t i = 0; i < model->n_nodes; i++)
        if (model->nodes[i].op == IR_OP_WEIGHT)
            *ir_name_map_slot(c->arena, &by_name, model->nodes[i].name, true) = i;
    cg_weights *v = sup_arena_alloc(c->arena, sizeof *v);
    *v = *model_w;
    size_t n = (size_t)step->n_nodes + 1;
    v->node_blob = sup_arena_alloc(c->arena, sizeof *v->node_blob * n);
    v->packed = sup_arena_alloc(c->arena, sizeof *v->packed * n);
    v->conv = sup_arena_alloc(c->arena, sizeof *v->conv * n);
    v->first = sup_arena_alloc(c->arena, sizeof *v->first * n);
    for (int32_t i = 0; i < step->n_nodes; i++) {
        v->node_blob[i] = v->first[i] = -1;
        v->packed[i].codes = v->packed[i].scales = v->packed[i].zeros = v->packed[i].shift = -1;
        v->conv[i].codes = v->conv[i].scales = v->conv[i].comp = -1;
        if (step->nodes[i].op != IR_OP_WEIGHT) continue;
        int32_t *m = ir_name_map_slot(c->arena, &by_name, step->nodes[i].name, false);
        QMC_ASSERT(m); /* the same source elaborated again names the same weights */
        v->node_blob[i] = model_w->node_blob[*m];
        v->packed[i] = model_w->packed[*m];
        v->conv[i] = model_w->conv[*m];
        v->first[i] = model_w->first[*m];
    }
    return v;
}

/* i32 PREFIX.stepT(ptr inputs, ptr outputs, ptr workspace, ptr state, i64 pos): the step
 * graph's nodes in order (qmc_step_fn). */
static LLVMValueRef emit_step_fn(cg *c, const ir_step *s, const state_view *layout)
{
    LLVMValueRef *fns = sup_arena_alloc(c->arena, sizeof *fns * (size_t)c->g->n_nodes);
    for (int i = 0; i < c->g->n_nodes; i++)
        if (c->plan->buf[i].kind == IR_BUF_WORKSPACE || c->plan->buf[i].kind == IR_BUF_OUTPUT)
            fns[i] = emit_node_fn(c, i);
    LLVMTypeRef params[5] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64};
    LLVMValueRef fn = cg_function_begin(
        c, sup_arena_printf(c->arena, "%s.step%lld", c->prefix, (long long)s->tokens),
        LLVMFunctionType(c->t_i32, params, 5, 0), false, false);
    state_view sv = *layout;
    sv.base = LLVMGetParam(fn, 3);
    sv.pos = LLVMGetParam(fn, 4);
    call_nodes(c, fns, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), &sv);
    LLVMBuildRet(c->b, cg_i32(c, 0));
    return fn;
}

static LLVMValueRef declare(cg *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int n)
{
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
    return fn ? fn : LLVMAddFunction(c->mod, name, LLVMFunctionType(ret, params, (unsigned)n, 0));
}

/* PREFIX_reset(ptr state), PREFIX_step_v(ptr state, ptr inputs, i64 n, ptr outputs, i64 rows,
 * ptr workspace) and the typed PREFIX_step(ptr state, ptr in..., i64 n, ptr out..., i64 rows,
 * ptr workspace): the runtime's qmc_model_reset and qmc_model_step on PREFIX_model, after the
 * CPU (and weights file) checks. */
static void emit_sequence_entries(cg *c, LLVMValueRef desc, LLVMValueRef features)
{
    LLVMTypeRef p2[2] = {c->t_ptr, c->t_ptr};
    LLVMValueRef reset = declare(c, "qmc_model_reset", c->t_i32, p2, 2);
    LLVMValueRef fn = cg_function_begin(c, sup_arena_printf(c->arena, "%s_reset", c->prefix),
                                        LLVMFunctionType(c->t_i32, &c->t_ptr, 1, 0), true, false);
    LLVMValueRef args[7] = {desc, LLVMGetParam(fn, 0)};
    LLVMBuildRet(c->b, LLVMBuildCall2(c->b, LLVMGlobalGetValueType(reset), reset, args, 2, ""));

    LLVMTypeRef p7[7] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64, c->t_ptr, c->t_i64, c->t_ptr};
    LLVMValueRef step = declare(c, "qmc_model_step", c->t_i32, p7, 7);
    LLVMValueRef step_v = cg_function_begin(c, sup_arena_printf(c->arena, "%s_step_v", c->prefix),
                                            LLVMFunctionType(c->t_i32, p7 + 1, 6, 0), true, false);
    emit_cpu_check(c, features);
    check_weights_mapped(c);
    args[0] = desc;
    for (int i = 0; i < 6; i++) args[i + 1] = LLVMGetParam(step_v, (unsigned)i);
    LLVMBuildRet(c->b, LLVMBuildCall2(c->b, LLVMGlobalGetValueType(step), step, args, 7, ""));

    int ni = c->g->n_inputs, no = c->g->n_outputs, np = ni + no + 4;
    LLVMTypeRef *params = sup_arena_alloc(c->arena, sizeof *params * (size_t)np);
    for (int i = 0; i < np; i++) params[i] = c->t_ptr;
    params[1 + ni] = params[2 + ni + no] = c->t_i64;
    fn = cg_function_begin(c, sup_arena_printf(c->arena, "%s_step", c->prefix),
                           LLVMFunctionType(c->t_i32, params, (unsigned)np, 0), true, false);
    LLVMValueRef ins = cg_alloca(c, LLVMArrayType(c->t_ptr, (unsigned)(ni ? ni : 1)), "inputs");
    LLVMValueRef outs = cg_alloca(c, LLVMArrayType(c->t_ptr, (unsigned)(no ? no : 1)), "outputs");
    for (int i = 0; i < ni; i++)
        cg_store(c, LLVMGetParam(fn, (unsigned)(1 + i)), cg_gep(c, c->t_ptr, ins, cg_i64(c, i)), 8);
    for (int o = 0; o < no; o++)
        cg_store(c, LLVMGetParam(fn, (unsigned)(2 + ni + o)),
                 cg_gep(c, c->t_ptr, outs, cg_i64(c, o)), 8);
    LLVMValueRef a6[6] = {LLVMGetParam(fn, 0),
                          ins,
                          LLVMGetParam(fn, (unsigned)(1 + ni)),
                          outs,
                          LLVMGetParam(fn, (unsigned)(2 + ni + no)),
                          LLVMGetParam(fn, (unsigned)(3 + ni + no))};
    LLVMBuildRet(c->b, LLVMBuildCall2(c->b, LLVMGlobalGetValueType(step_v), step_v, a6, 6, ""));
}

static LLVMValueRef i64_array(cg *c, const int64_t *v, int n, const char *what)
{
    LLVMValueRef *items = sup_arena_alloc(c->arena, sizeof *items * (size_t)(n + 1));
    for (int i = 0; i < n; i++) items[i] = cg_i64(c, v[i]);
    return model_global(c, LLVMConstArray2(c->t_i64, items, (uint64_t)n), what);
}

static bool build_sequence_module(cg *c)
{
    const ir_graph *model = c->g;
    const ir_plan *model_plan = c->plan;
    const cg_weights *model_w = c->w;
    ir_state state = ir_state_layout(c->arena, model);
    state_view layout = {.layout = &state};
    ir_seq_workspace ws = ir_sequence_workspace(c->arena, model);
    LLVMTypeRef step_t = LLVMStructTypeInContext(c->ctx, (LLVMTypeRef[]){c->t_i64, c->t_ptr}, 2, 0);
    LLVMValueRef *steps = sup_arena_alloc(c->arena, sizeof *steps * (size_t)model->n_steps);
    for (int s = 0; s < model->n_steps; s++) {
        const ir_step *st = &model->steps[s];
        c->g = st->g;
        c->plan = &st->plan;
        c->w = share_weights(c, model_w, model, st->g);
        LLVMValueRef fn = emit_step_fn(c, st, &layout);
        LLVMValueRef f[2] = {cg_i64(c, st->tokens), fn};
        steps[s] = LLVMConstNamedStruct(step_t, f, 2);
    }
    c->g = model;
    c->plan = model_plan;
    c->w = model_w;
    LLVMValueRef steps_gv =
        model_global(c, LLVMConstArray2(step_t, steps, (uint64_t)model->n_steps), "steps");
    LLVMValueRef features =
        string_global(c, cg_target_feature_list(c->arena, c->target), ".features");
    LLVMValueRef desc = model_desc_global(c);
    emit_sequence_entries(c, desc, features);
    seq_desc seq = {.context = model->context,
                    .state_size = state.size,
                    .n_steps = model->n_steps,
                    .steps = steps_gv,
                    .staging =
                        i64_array(c, ws.staging, model->n_inputs + model->n_outputs, "staging"),
                    .kv_cache = string_global(c, rt_kv_format_name(model->kv_format), ".kv_cache")};
    emit_model_desc(c, desc, NULL, features, ws.size, &seq);
    return verify_module(c);
}

static bool build_module(cg *c)
{
    const ir_graph *g = c->g;
    emit_weights(c);
    if (g->n_steps) return build_sequence_module(c);
    LLVMValueRef *fns = sup_arena_alloc(c->arena, sizeof *fns * (size_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++)
        if (c->plan->buf[i].kind == IR_BUF_WORKSPACE || c->plan->buf[i].kind == IR_BUF_OUTPUT)
            fns[i] = emit_node_fn(c, i);
    LLVMValueRef features =
        string_global(c, cg_target_feature_list(c->arena, c->target), ".features");
    LLVMValueRef run_v = emit_run_v(c, fns, features);
    emit_run(c, run_v);
    emit_model_desc(c, model_desc_global(c), run_v, features, c->plan->workspace_size, NULL);
    return verify_module(c);
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
