/* cmd_compile.c: `qmc compile MODEL.qm -o OUT` runs the whole pipeline:
 *
 *   parse -> build graph -> infer shapes -> calibrate -> select precision
 *   -> quantize weights -> lower -> emit (LLVM) -> link
 *
 * and writes an executable (default), an object file and header, a static or
 * shared library with the runtime inside, or LLVM IR, bitcode or assembly.
 * Every artefact is written atomically: a failed compile leaves nothing. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"

typedef struct compile_args {
    const char *model, *output, *emit;
    cg_options cg;
    pass_options po;
    bool dump_ir;
} compile_args;

static const char *const emit_names[] = {"exe", "obj", "lib", "shared", "llvm", "bc", "asm", NULL};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmc compile MODEL.qm [-o OUT] [--emit exe|obj|lib|shared|llvm|bc|asm]\n"
            "                   [--target TRIPLE] [--cpu NAME] [--features +a,-b] [-O0|-O1|-O2|-O3]\n"
            "                   [--precision SPEC|auto] [--calib NAME=FILE.npy ...] [--budget-bits B | --max-error E]\n"
            "                   [--report FILE.json] [-v] [--weights FILE] [--weights-file FILE]\n"
            "                   [--print-target] [--dump-ir] [--dump-after PASS]\n\n"
            "  -o OUT              the output (exe: OUT; obj: OUT.o and OUT.h; lib: OUT.a and OUT.h;\n"
            "                      shared: OUT.so and OUT.h; llvm/bc/asm: OUT). Default: the model's name\n"
            "  --emit KIND         what to write (default exe)\n"
            "  --target TRIPLE     x86_64-linux-gnu (default on this machine) or aarch64-linux-gnu\n"
            "  --cpu NAME          an LLVM CPU name (znver4, sapphirerapids, x86-64-v3, neoverse-n1, ...)\n"
            "                      or native (the default for the host); see `qmc targets`\n"
            "  --features LIST     add or remove CPU features: +avx512vnni,-avx512f\n"
            "  -O0 .. -O3          optimisation level (default -O3)\n"
            "  --precision SPEC    weight precision: f32 (default), int8, int4, int4:g64, int4:g128,\n"
            "                      fp8e4m3, fp8e5m2, then GLOB=FORMAT overrides, e.g.\n"
            "                      int4,lm_head.weight=int8,*.fc2.weight=fp8e4m3\n");
    cli_precision_usage(f);
    fprintf(f,
            "  --weights FILE      use this safetensors file instead of the model's `weights`\n"
            "  --weights-file FILE keep the weights in FILE (mapped and checked at load) instead of\n"
            "                      inside the code\n"
            "  --print-target      print the resolved triple, CPU and features\n"
            "  --dump-ir           print the IR after the last pass\n"
            "  --dump-after PASS   print the IR after PASS (build, shape, calibrate, precision, quantize)\n");
}

static bool parse_args(int argc, char **argv, compile_args *a)
{
    static const char *const known[] = {"-o", "--emit", "--target", "--cpu", "--features", "--precision", "--weights",
                                        "--weights-file", "--print-target", "--dump-ir", "--dump-after", "--help",
                                        "-O0", "-O1", "-O2", "-O3", "--calib", "--calib-method", "--budget-bits",
                                        "--max-error", "--sensitivity-samples", "--report", "-v", NULL};
    cli c = {argc, argv, 1, "compile", false};
    a->cg.opt_level = 3;
    while (c.i < c.argc && !c.failed) {
        const char *arg = c.argv[c.i];
        if (cli_flag(&c, "--help")) return usage(stdout), exit(0), false;
        if (cli_value(&c, "-o", &a->output) || cli_value(&c, "--emit", &a->emit) ||
            cli_value(&c, "--target", &a->cg.triple) || cli_value(&c, "--cpu", &a->cg.cpu) ||
            cli_value(&c, "--features", &a->cg.features) || cli_precision_flag(&c, &a->po.prec) ||
            cli_value(&c, "--weights", &a->po.weights_override) ||
            cli_value(&c, "--weights-file", &a->cg.weights_file) || cli_value(&c, "--dump-after", &a->po.dump_after))
            continue;
        if (cli_flag(&c, "--print-target")) { a->cg.print_target = true; continue; }
        if (cli_flag(&c, "--dump-ir")) { a->dump_ir = true; continue; }
        if (strlen(arg) == 3 && arg[0] == '-' && arg[1] == 'O' && arg[2] >= '0' && arg[2] <= '3') {
            a->cg.opt_level = arg[2] - '0';
            c.i++;
            continue;
        }
        if (arg[0] == '-' || a->model) { if (!c.failed) cli_unknown(&c, known); continue; }
        a->model = c.argv[c.i++];
    }
    if (c.failed) return false;
    if (!a->model) return usage(stderr), false;
    a->cg.emit = CG_EMIT_EXE;
    if (a->emit) {
        int k = 0;
        while (emit_names[k] && strcmp(emit_names[k], a->emit)) k++;
        if (!emit_names[k])
            return sup_error_plain("unknown --emit '%s' (choices: exe, obj, lib, shared, llvm, bc, asm)", a->emit), false;
        a->cg.emit = (cg_emit_kind)k;
    }
    if (a->po.dump_after) {
        bool ok = false;
        for (int i = 0; pass_names[i]; i++) ok |= !strcmp(pass_names[i], a->po.dump_after);
        if (!ok) return sup_error_plain("unknown pass '%s' for --dump-after (passes: build, shape, calibrate, precision, "
                                       "quantize)", a->po.dump_after), false;
    }
    return cli_precision_check(&a->po.prec);
}

/* OUT without the extension `ext` if it has it. */
static const char *strip(sup_arena *arena, const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && !strcmp(path + n - e, ext) ? sup_arena_strndup(arena, path, n - e) : path;
}

static const char *default_output(sup_arena *arena, const ir_graph *g, cg_emit_kind k)
{
    const char *base = cg_symbol_prefix(arena, g);
    static const char *const ext[] = {"", "", ".a", ".so", ".ll", ".bc", ".s"};
    return sup_arena_printf(arena, "%s%s", base, ext[k]);
}

static void print_target(sup_arena *arena, const cg_target *t)
{
    printf("target: %s\ncpu: %s\nfeatures: %s\n", t->triple, t->cpu, cg_target_feature_list(arena, t));
}

static bool emit_artefacts(sup_arena *arena, compile_args *a, const ir_graph *g, const ir_plan *plan, const cg_target *t)
{
    cg_emit_kind k = a->cg.emit;
    const char *out = a->output ? a->output : default_output(arena, g, k);
    a->cg.output = out;
    if (k == CG_EMIT_LLVM || k == CG_EMIT_BC || k == CG_EMIT_ASM)
        return cg_emit_module(arena, g, plan, t, &a->cg, out, k);
    if (k == CG_EMIT_OBJ) {
        const char *base = strip(arena, out, ".o");
        return cg_emit_module(arena, g, plan, t, &a->cg, sup_arena_printf(arena, "%s.o", base), CG_EMIT_OBJ) &&
               cg_write_header(arena, g, plan, t, sup_arena_printf(arena, "%s.h", base));
    }
    /* exe, lib, shared: an object in a temporary file, then link */
    char *obj = sup_arena_printf(arena, "%s.obj.XXXXXX", out);
    int fd = mkstemp(obj);
    if (fd < 0) return sup_error_plain("cannot create a temporary file beside '%s'", out), false;
    close(fd);
    bool ok = cg_emit_module(arena, g, plan, t, &a->cg, obj, CG_EMIT_OBJ) && cg_link(arena, t, k, obj, out);
    unlink(obj);
    if (ok && (k == CG_EMIT_LIB || k == CG_EMIT_SHARED)) {
        const char *base = strip(arena, strip(arena, out, ".a"), ".so");
        ok = cg_write_header(arena, g, plan, t, sup_arena_printf(arena, "%s.h", base));
        if (!ok) unlink(out);
    }
    return ok;
}

static int compile(compile_args *a, sup_arena *arena)
{
    cg_target t;
    if (!cg_target_resolve(arena, a->cg.triple, a->cg.cpu, a->cg.features, &t)) return 1;
    if (a->cg.print_target) print_target(arena, &t);
    ir_graph *g = pass_pipeline_load(arena, a->model, &a->po);
    if (!g || !pass_pipeline_precision(arena, g, &a->po)) return 1;
    ir_plan plan;
    if (!pass_lower(g, &plan, cg_target_int8_dot(&t))) return 1;
    if (a->po.prec.verbose) cg_print_kernels(stderr, arena, g, &plan, &t);
    if (a->dump_ir) ir_dump(stdout, g);
    return emit_artefacts(arena, a, g, &plan, &t) ? 0 : 1;
}

int cli_compile(int argc, char **argv)
{
    compile_args a = {0};
    if (!parse_args(argc, argv, &a)) return 1;
    sup_arena arena = {0};
    int status = compile(&a, &arena);
    sup_arena_free(&arena);
    return status;
}

int cli_targets(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        sup_error_plain("'qmc targets' takes no arguments");
        return 1;
    }
    cg_targets_print(stdout);
    return 0;
}
