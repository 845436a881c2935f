/* cmd_inspect.c: `qmc inspect MODEL.qm` prints the graph IR (or the syntax
 * tree with --ast, the tokens with --tokens) so users and tests can see what
 * the compiler built. */
#include <string.h>

#include "driver.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmc inspect MODEL.qm [--weights FILE] [--precision SPEC] [--dump-after PASS] "
            "[--ast | --tokens]\n\n"
            "Prints the model's graph IR after shape inference (after precision selection and\n"
            "weight quantization with --precision, or after PASS).\n"
            "  --weights FILE     use this safetensors file instead of the model's `weights`\n"
            "  --seq N            a model with `sequence T <= C`: calls of N tokens (default C)\n"
            "  --precision SPEC   weight precisions, as for qmc compile (e.g. "
            "int4,lm_head.weight=int8);\n"
            "                     --calib and the other precision flags of qmc compile apply too\n"
            "  --dump-after PASS  print the IR after PASS (");
    for (int i = 0; pass_names[i]; i++) fprintf(f, "%s%s", i ? ", " : "", pass_names[i]);
    fprintf(f, ")\n"
               "  --ast              print the syntax tree instead\n"
               "  --tokens           print the tokens instead\n");
    cli_import_usage(f);
}

/* After the options: the tokens, the syntax tree or the IR. */
static int inspect(const char *model, pass_options *po, bool ast, bool tokens)
{
    const char *precision = po->prec.precision;
    if (!model) {
        usage(stderr);
        return 1;
    }
    if (po->dump_after) {
        bool ok = false;
        for (int i = 0; pass_names[i]; i++) ok |= strcmp(pass_names[i], po->dump_after) == 0;
        if (!ok) {
            char names[128] = "";
            int n = 0;
            for (; pass_names[n]; n++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", n ? ", " : "",
                         pass_names[n]);
            const char *best = rt_closest(po->dump_after, pass_names, n);
            if (best)
                sup_error_plain("unknown pass '%s' for --dump-after; did you mean '%s'?",
                                po->dump_after, best);
            else
                sup_error_plain("unknown pass '%s' for --dump-after (passes: %s)", po->dump_after,
                                names);
            return 1;
        }
    }
    sup_arena arena = {0};
    int status = 1;
    if ((tokens || ast) && pass_is_onnx(model)) {
        sup_error_plain("--ast and --tokens read a model file in qmc's language; `qmc import %s` "
                        "writes one",
                        model);
    } else if (tokens || ast) {
        fe_node *file = fe_parse_file(&arena, model);
        if (file && ast) fe_ast_dump(stdout, file, 0), status = 0;
        if (file && tokens) {
            /* re-lex the source the parser read */
            rt_mapped_file f;
            char err[256];
            if (rt_file_map(model, &f, err, sizeof err) == QMC_OK) {
                status = fe_lex_dump(&arena, model, f.size ? (const char *)f.data : "", f.size,
                                     stdout) < 0;
                rt_file_unmap(&f);
            }
        }
    } else {
        /* the precision passes run when asked for, or when their IR is */
        bool later =
            precision || po->prec.n_calib ||
            (po->dump_after && strcmp(po->dump_after, "build") && strcmp(po->dump_after, "shape"));
        ir_graph *g =
            pass_pipeline(&arena, model, po, later ? PASS_UNTIL_QUANTIZE : PASS_UNTIL_SHAPE);
        if (g) {
            if (!po->dump_after) ir_dump(stdout, g);
            status = 0;
        }
    }
    sup_arena_free(&arena);
    return status;
}

int cli_inspect(int argc, char **argv)
{
    static const char *const known[] = {"--weights",     "--seq",        "--precision",
                                        "--dump-after",  "--ast",        "--tokens",
                                        "--help",        "--calib",      "--calib-method",
                                        "--budget-bits", "--max-error",  "--sensitivity-samples",
                                        "--sensitivity", "--report",     "-v",
                                        "--shape",       "--drop-batch", NULL};
    cli c = {argc, argv, 1, "inspect", false};
    const char *model = NULL;
    pass_options po = {0};
    bool ast = false, tokens = false;
    while (c.i < c.argc && !c.failed) {
        if (cli_flag(&c, "--help")) {
            usage(stdout);
            return 0;
        }
        if (cli_value(&c, "--weights", &po.weights_override) || cli_seq(&c, &po.seq_len) ||
            cli_value(&c, "--dump-after", &po.dump_after) || cli_precision_flag(&c, &po.prec) ||
            cli_import_flag(&c, &po.import))
            continue;
        if (cli_flag(&c, "--ast")) {
            ast = true;
            continue;
        }
        if (cli_flag(&c, "--tokens")) {
            tokens = true;
            continue;
        }
        if (c.failed) break; /* an option lacked its value */
        if (c.argv[c.i][0] == '-' || model) {
            cli_unknown(&c, known);
            continue;
        }
        model = c.argv[c.i++];
    }
    if (c.failed || !cli_precision_check(&po.prec)) {
        cli_import_free(&po.import);
        return 1;
    }
    int status = inspect(model, &po, ast, tokens);
    cli_import_free(&po.import);
    return status;
}
