/* driver.h: the qmc driver's header, one section per source file of
 * compiler/driver.
 *
 * The driver parses the command line (in the style of clang) and calls the
 * pipeline (passes/pipeline.c) or, for `qmc quantize` and `qmc report`, the
 * numerics and the report directly. Prefix cli_. */
#ifndef QMC_DRIVER_H
#define QMC_DRIVER_H

#include "passes.h"

/* ---- cli.c: command-line options in the style of clang ------------------ */

typedef struct cli {
    int argc;
    char **argv;
    int i;           /* the argument being looked at */
    const char *cmd; /* "run", "compile", ... for messages */
    bool failed;
} cli;

/* True (and advances) if argv[i] is the flag `name` (e.g. "--ast"). */
bool cli_flag(cli *c, const char *name);
/* True (and advances) if argv[i] is `name VALUE` or `name=VALUE`; a missing
 * value is reported and sets c->failed. */
bool cli_value(cli *c, const char *name, const char **value);
/* Reports argv[i] as unknown, suggesting the closest of the known options. */
void cli_unknown(cli *c, const char *const *known);
/* True (and advances) if argv[i] is `--seq N`: a model with a sequence is
 * built for calls of N tokens (default: its context). */
bool cli_seq(cli *c, int64_t *seq_len);
/* True (and advances) if argv[i] is `--kv-cache FORMAT` (f32, int8, fp8e4m3). */
bool cli_kv_cache(cli *c, rt_kv_format *format);

/* True (and advances) if argv[i] is `--shape NAME=DIMS` or `--drop-batch`,
 * the options of an ONNX model's import (qmc import, and compile, run, eval
 * and inspect of MODEL.onnx); a malformed value is reported and sets
 * c->failed. cli_import_free releases the names. */
bool cli_import_flag(cli *c, pass_import_options *o);
void cli_import_free(pass_import_options *o);
/* The usage lines of those options. */
void cli_import_usage(FILE *f);

/* ---- cli_precision.c: the precision flags of compile, run and eval ------ */

/* True (and advances) if argv[i] is one of --calib, --calib-method,
 * --budget-bits, --max-error, --sensitivity, --sensitivity-samples,
 * --report, -v. */
bool cli_precision_flag(cli *c, pass_prec_options *o);
/* Checks the combination (auto needs --calib and a budget, ...). */
bool cli_precision_check(const pass_prec_options *o);
/* The usage lines of those flags. */
void cli_precision_usage(FILE *f);

/* ---- cmd_*.c: the driver's subcommands (argv[0] is the command name) --- */

int cli_inspect(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_quantize(int argc, char **argv);
int cli_compile(int argc, char **argv);
int cli_report(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_targets(int argc, char **argv);

#endif
