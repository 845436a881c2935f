/* cmd_compile.c: `qmc compile MODEL.qm -o OUT` parses its options and runs
 * the whole pipeline (passes/pipeline.c):
 *
 *   parse -> build graph -> infer shapes -> calibrate -> select precision
 *   -> quantize weights -> lower -> emit (LLVM) -> link
 *
 * which writes an executable (default), an object file and header, a static
 * or shared library with the runtime inside, or LLVM IR, bitcode or assembly
 * (codegen/output.c). Every artefact is written atomically: a failed compile
 * leaves nothing. --depfile FILE then writes a Make rule naming the files
 * the artefact was made from (the model, its weights, the calibration
 * data), for build systems (CMake's qmc_add_model, make's -include). */
#include <stdlib.h>
#include <string.h>

#include "driver.h"

typedef struct compile_args {
    const char *model, *emit, *depfile;
    pass_options po;
} compile_args;

static const char *const emit_names[] = {"exe", "obj", "lib", "shared", "llvm", "bc", "asm", NULL};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: qmc compile MODEL.qm [-o OUT] [--emit exe|obj|lib|shared|llvm|bc|asm]\n"
        "                   [--target TRIPLE] [--cpu NAME] [--features +a,-b] [-O0|-O1|-O2|-O3]\n"
        "                   [--precision SPEC|auto] [--calib NAME=FILE.npy ...] [--budget-bits B | "
        "--max-error E]\n"
        "                   [--report FILE.json] [-v] [--weights FILE] [--weights-file FILE]\n"
        "                   [--print-target] [--dump-ir] [--dump-after PASS] [--depfile FILE]\n"
        "                   [--seq N] [--steps LIST] [--kv-cache f32|int8|fp8e4m3]\n\n"
        "  -o OUT              the output (exe: OUT; obj: OUT.o and OUT.h; lib: OUT.a and OUT.h;\n"
        "                      shared: OUT.so and OUT.h; llvm/bc/asm: OUT). Default: the model's "
        "name\n"
        "  --emit KIND         what to write (default exe)\n"
        "  --target TRIPLE     x86_64-linux-gnu (default on this machine) or aarch64-linux-gnu\n"
        "  --cpu NAME          an LLVM CPU name (znver4, sapphirerapids, x86-64-v3, neoverse-n1, "
        "...)\n"
        "                      or native (the default for the host); see `qmc targets`\n"
        "  --features LIST     add or remove CPU features: +avx512vnni,-avx512f\n"
        "  -O0 .. -O3          optimisation level (default -O3)\n"
        "  --precision SPEC    weight precision: f32 (default), int8, int4, int4:g64, int4:g128,\n"
        "                      int3, int2 (groups :g32 :g64 :g128), fp8e4m3, fp8e5m2, then\n"
        "                      GLOB=FORMAT overrides, e.g.\n"
        "                      int4,lm_head.weight=int8,*.fc2.weight=fp8e4m3\n");
    cli_precision_usage(f);
    fprintf(
        f,
        "  --weights FILE      use this safetensors file instead of the model's `weights`\n"
        "  --weights-file FILE keep the weights in FILE (mapped and checked at load) instead of\n"
        "                      inside the code\n"
        "  --depfile FILE      also write a Make rule: the outputs depend on the model, its "
        "weights\n"
        "                      and the --calib files\n"
        "  --seq N             a model with `sequence T <= C`: calibrate on calls of N tokens\n"
        "  --steps LIST        ... the token counts its steps are compiled for "
        "(default " PASS_DEFAULT_STEPS ")\n"
        "  --kv-cache FORMAT   ... how its KV caches hold keys and values: f32 (default), int8 or\n"
        "                      fp8e4m3 (per position and head, one byte each and a scale)\n"
        "  --print-target      print the resolved triple, CPU and features\n"
        "  --dump-ir           print the IR after the last pass\n"
        "  --dump-after PASS   print the IR after PASS (build, shape, calibrate, precision, "
        "quantize)\n");
    cli_import_usage(f);
}

static bool parse_args(int argc, char **argv, compile_args *a)
{
    static const char *const known[] = {"-o",
                                        "--emit",
                                        "--target",
                                        "--cpu",
                                        "--features",
                                        "--precision",
                                        "--weights",
                                        "--weights-file",
                                        "--print-target",
                                        "--dump-ir",
                                        "--dump-after",
                                        "--depfile",
                                        "--help",
                                        "-O0",
                                        "-O1",
                                        "-O2",
                                        "-O3",
                                        "--calib",
                                        "--calib-method",
                                        "--budget-bits",
                                        "--max-error",
                                        "--sensitivity-samples",
                                        "--sensitivity",
                                        "--report",
                                        "-v",
                                        "--seq",
                                        "--steps",
                                        "--kv-cache",
                                        "--shape",
                                        "--drop-batch",
                                        NULL};
    cli c = {argc, argv, 1, "compile", false};
    a->po.cg.opt_level = 3;
    while (c.i < c.argc && !c.failed) {
        const char *arg = c.argv[c.i];
        if (cli_flag(&c, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (cli_value(&c, "-o", &a->po.cg.output) || cli_value(&c, "--emit", &a->emit) ||
            cli_value(&c, "--target", &a->po.cg.triple) || cli_value(&c, "--cpu", &a->po.cg.cpu) ||
            cli_value(&c, "--features", &a->po.cg.features) ||
            cli_precision_flag(&c, &a->po.prec) ||
            cli_value(&c, "--weights", &a->po.weights_override) ||
            cli_value(&c, "--weights-file", &a->po.cg.weights_file) ||
            cli_value(&c, "--dump-after", &a->po.dump_after) ||
            cli_value(&c, "--depfile", &a->depfile) || cli_seq(&c, &a->po.seq_len) ||
            cli_value(&c, "--steps", &a->po.steps) || cli_kv_cache(&c, &a->po.kv_format) ||
            cli_import_flag(&c, &a->po.import))
            continue;
        if (cli_flag(&c, "--print-target")) {
            a->po.cg.print_target = true;
            continue;
        }
        if (cli_flag(&c, "--dump-ir")) {
            a->po.dump_ir = true;
            continue;
        }
        if (strlen(arg) == 3 && arg[0] == '-' && arg[1] == 'O' && arg[2] >= '0' && arg[2] <= '3') {
            a->po.cg.opt_level = arg[2] - '0';
            c.i++;
            continue;
        }
        if (arg[0] == '-' || a->model) {
            if (!c.failed) cli_unknown(&c, known);
            continue;
        }
        a->model = c.argv[c.i++];
    }
    if (c.failed) return false;
    if (!a->model) {
        usage(stderr);
        return false;
    }
    a->po.cg.emit = CG_EMIT_EXE;
    if (a->emit) {
        int k = 0;
        while (emit_names[k] && strcmp(emit_names[k], a->emit)) k++;
        if (!emit_names[k]) {
            sup_error_plain("unknown --emit '%s' (choices: exe, obj, lib, shared, llvm, bc, asm)",
                            a->emit);
            return false;
        }
        a->po.cg.emit = (cg_emit_kind)k;
    }
    if (a->po.dump_after) {
        bool ok = false;
        char names[160] = "";
        for (int i = 0; pass_names[i]; i++) {
            ok |= !strcmp(pass_names[i], a->po.dump_after);
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s, ", pass_names[i]);
        }
        for (int i = 0; pass_compile_names[i]; i++) {
            ok |= !strcmp(pass_compile_names[i], a->po.dump_after);
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     pass_compile_names[i]);
        }
        if (!ok) {
            sup_error_plain("unknown pass '%s' for --dump-after (passes: %s)", a->po.dump_after,
                            names);
            return false;
        }
    }
    return cli_precision_check(&a->po.prec);
}

/* Appends path to the rule, escaped for Make: "\ " for a space, "$$" for a
 * dollar, "\#" for a hash. */
static const char *make_path(sup_arena *arena, const char *rule, const char *path)
{
    size_t n = strlen(rule), len = n + 1;
    for (const char *p = path; *p; p++) len += 2;
    char *out = sup_arena_alloc(arena, len + 1), *o = out + n;
    memcpy(out, rule, n);
    *o++ = ' ';
    for (const char *p = path; *p; p++) {
        if (*p == ' ' || *p == '#') *o++ = '\\';
        if (*p == '$') *o++ = '$';
        *o++ = *p;
    }
    *o = 0;
    return out;
}

/* OUT without the extension ext if it has it (as codegen/output.c names files). */
static const char *strip(sup_arena *arena, const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && !strcmp(path + n - e, ext) ? sup_arena_strndup(arena, path, n - e) : path;
}

/* The --depfile rule: what was written, then what it was made from. */
static bool write_depfile(sup_arena *arena, const compile_args *a, const ir_graph *g)
{
    const char *out = a->po.cg.output, *rule = "";
    cg_emit_kind k = a->po.cg.emit;
    if (k == CG_EMIT_OBJ) {
        const char *base = strip(arena, out, ".o");
        rule = make_path(arena, make_path(arena, rule, sup_arena_printf(arena, "%s.o", base)),
                         sup_arena_printf(arena, "%s.h", base));
    } else {
        rule = make_path(arena, rule, out);
        if (k == CG_EMIT_LIB || k == CG_EMIT_SHARED)
            rule = make_path(
                arena, rule,
                sup_arena_printf(arena, "%s.h", strip(arena, strip(arena, out, ".a"), ".so")));
    }
    rule = sup_arena_printf(arena, "%s:", rule + 1);
    rule = make_path(arena, rule, a->model);
    for (int i = 0; g->weights && i < g->weights->n_sources; i++) /* a sharded one: each file */
        rule = make_path(arena, rule, g->weights->sources[i]);
    for (int i = 0; i < a->po.n_data_files; i++) rule = make_path(arena, rule, a->po.data_files[i]);
    for (int i = 0; i < a->po.prec.n_calib; i++) {
        const char *eq = strchr(a->po.prec.calib[i], '=');
        rule = make_path(arena, rule, eq ? eq + 1 : a->po.prec.calib[i]);
    }
    rule = sup_arena_printf(arena, "%s\n", rule);
    return cg_write_file(a->depfile, rule, strlen(rule));
}

int cli_compile(int argc, char **argv)
{
    compile_args a = {0};
    if (!parse_args(argc, argv, &a)) return 1;
    sup_arena arena = {0};
    sup_stages_begin();
    const ir_graph *g = pass_pipeline(&arena, a.model, &a.po, PASS_UNTIL_EMIT);
    int status = g && (!a.depfile || write_depfile(&arena, &a, g)) ? 0 : 1;
    if (a.po.prec.verbose && !status) sup_stages_print(stderr);
    sup_arena_free(&arena);
    cli_import_free(&a.po.import);
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
