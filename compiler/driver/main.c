/* main.c: the qmc driver. Each subcommand lives in its own cmd_*.c file and
 * reads like the design: parse, build the graph, run the passes, emit. */
#include <stdio.h>
#include <string.h>

#include "driver.h"
#include "qmc_version.h" /* generated at build time: QMC_GIT_COMMIT, QMC_LLVM_VERSION */

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"compile", cli_compile, "compile a model to an executable, object, library, IR or assembly"},
    {"run", cli_run, "evaluate a model with the reference interpreter"},
    {"eval", cli_eval, "measure accuracy or perplexity on labelled data"},
    {"import", cli_import, "translate an ONNX model into a model file and weights"},
    {"inspect", cli_inspect, "print a model's graph IR, syntax tree or tokens"},
    {"quantize", cli_quantize, "quantize a tensor (.npy) and measure the error"},
    {"report", cli_report, "draw a precision report (--report FILE.json) as HTML or SVG"},
    {"targets", cli_targets, "list the target architectures, CPUs and features"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: qmc <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`qmc <command> --help` describes a command's options; `qmc --version` prints\n"
               "the version, the LLVM version and the git commit.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("qmc %s\nLLVM %s\ncommit %s\n", QMC_VERSION, QMC_LLVM_VERSION, QMC_GIT_COMMIT);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "qmc: error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 1;
}
