/* cli_precision.c: the flags of calibration and precision selection, which
 * `qmc compile`, `qmc run` and `qmc eval` share so that a choice can be
 * evaluated in the interpreter before it is compiled:
 *
 *   --precision SPEC            formats, or auto (see passes/precision.c)
 *   --calib NAME=FILE.npy       calibration samples for input NAME (repeatable)
 *   --calib-method M            minmax, percentile[=P], mse, kl
 *   --budget-bits B             auto: average bits per weight at most B
 *   --max-error E               auto: output error on the calibration set at most E
 *   --sensitivity-samples N     auto: samples the sensitivity measurement uses
 *   --sensitivity M             auto: fast, exact or auto (how it measures)
 *   --report FILE.json          write the decisions
 *   -v                          print them as a table on stderr
 *
 * Combinations are checked before any work is done, with messages that
 * say what is missing. */
#include <stdlib.h>
#include <string.h>

#include "driver.h"

static bool positive_number(const char *flag, const char *v, double *out)
{
    char *end;
    *out = strtod(v, &end);
    if (*end || end == v || !(*out > 0) || *out > 1e300) {
        sup_error_plain("%s needs a positive number, not '%s'", flag, v);
        return false;
    }
    return true;
}

bool cli_precision_flag(cli *c, pass_prec_options *o)
{
    const char *v;
    if (cli_value(c, "--precision", &o->precision) ||
        cli_value(c, "--calib-method", &o->calib_method) || cli_value(c, "--report", &o->report))
        return true;
    if (cli_flag(c, "-v")) return o->verbose = true, true;
    if (cli_value(c, "--calib", &v)) {
        if (o->n_calib == PASS_MAX_CALIB) {
            sup_error_plain("too many --calib options");
            c->failed = true;
            return true;
        }
        const char *eq = strchr(v, '=');
        if (!eq || eq == v || !eq[1]) {
            sup_error_plain("expected --calib NAME=FILE.npy, got '%s'", v);
            c->failed = true;
            return true;
        }
        o->calib[o->n_calib++] = v;
        return true;
    }
    if (cli_value(c, "--budget-bits", &v)) {
        if (!positive_number("--budget-bits", v, &o->budget_bits)) c->failed = true;
        return true;
    }
    if (cli_value(c, "--max-error", &v)) {
        if (!positive_number("--max-error", v, &o->max_error)) c->failed = true;
        return true;
    }
    if (cli_value(c, "--sensitivity", &v)) {
        static const char *const names[] = {"auto", "fast", "exact"};
        o->sens_method_given = true;
        for (int m = 0; m < 3; m++)
            if (!strcmp(v, names[m])) return o->sens_method = (pass_sens_method)m, true;
        sup_error_plain("unknown --sensitivity '%s' (methods: fast, exact, auto)", v);
        c->failed = true;
        return true;
    }
    if (cli_value(c, "--sensitivity-samples", &v)) {
        double n;
        if (!positive_number("--sensitivity-samples", v, &n) || n != (int)n) {
            if (n != (int)n)
                sup_error_plain("--sensitivity-samples needs a positive integer, not '%s'", v);
            c->failed = true;
        }
        o->sens_samples = (int)n;
        return true;
    }
    return false;
}

bool cli_precision_check(const pass_prec_options *o)
{
    sup_arena tmp = {0};
    pass_spec spec = {0};
    bool ok = !o->precision || pass_spec_parse(&tmp, o->precision, &spec);
    bool is_auto = ok && o->precision && pass_spec_has_auto(&spec);
    bool is_static = ok && o->precision && pass_spec_has_static(&spec);
    bool is_gptq = ok && o->precision && pass_spec_has_gptq(&spec);
    bool is_imat = ok && o->precision && pass_spec_has_imat(&spec);
    bool is_scaling = ok && o->precision && pass_spec_has_scaling(&spec);
    sup_arena_free(&tmp);
    if (!ok) return false;
    q_observer m;
    double pct;
    if (o->calib_method && !q_observer_parse(o->calib_method, &m, &pct)) {
        sup_error_plain(
            "unknown --calib-method '%s' (methods: minmax, percentile, percentile=P, mse, kl)",
            o->calib_method);
        return false;
    }
    if (o->calib_method && !o->n_calib) {
        sup_error_plain("--calib-method needs --calib NAME=FILE.npy");
        return false;
    }
    if (!is_auto &&
        (o->budget_bits > 0 || o->max_error > 0 || o->sens_samples > 0 || o->sens_method_given)) {
        sup_error_plain("%s needs --precision auto", o->budget_bits > 0    ? "--budget-bits"
                                                     : o->max_error > 0    ? "--max-error"
                                                     : o->sens_samples > 0 ? "--sensitivity-samples"
                                                                           : "--sensitivity");
        return false;
    }
    if (is_auto && !o->n_calib) {
        sup_error_plain(
            "--precision auto needs --calib NAME=FILE.npy: calibration samples to measure on");
        return false;
    }
    if (is_gptq && !o->n_calib) {
        sup_error_plain(
            "--precision: ':gptq' needs --calib NAME=FILE.npy (the second moments of each layer's "
            "input)");
        return false;
    }
    if (is_imat && !o->n_calib) {
        sup_error_plain("--precision: ':imat' needs --calib NAME=FILE.npy (the mean square of each "
                        "layer's input channels)");
        return false;
    }
    if (is_scaling && !o->n_calib) {
        sup_error_plain("--precision: ':awq' and ':smooth' need --calib NAME=FILE.npy (the scales "
                        "are searched on each layer's input)");
        return false;
    }
    if (is_static && !o->n_calib) {
        sup_error_plain("--precision: ':static' activation scales need --calib NAME=FILE.npy");
        return false;
    }
    if (is_auto && o->budget_bits > 0 && o->max_error > 0) {
        sup_error_plain("--precision auto takes one of --budget-bits and --max-error, not both");
        return false;
    }
    if (is_auto && !(o->budget_bits > 0) && !(o->max_error > 0)) {
        sup_error_plain(
            "--precision auto needs a budget: --budget-bits B (average bits per weight) or "
            "--max-error E (output error on the calibration set)");
        return false;
    }
    return true;
}

void cli_precision_usage(FILE *f)
{
    fprintf(
        f,
        "  --precision auto    choose every weight matrix's format by measurement (auto:a8 adds "
        "int8\n"
        "                      activations, auto:a8:static with calibrated scales); GLOB=FORMAT\n"
        "                      overrides still fix single tensors. Format modifiers :asym :mse\n"
        "                      :minmax :a8; :gptq (GPTQ rounding) and :a8:static need "
        "--calib\n"
        "  --calib NAME=FILE   calibration samples for input NAME (.npy, leading dimension = "
        "samples)\n"
        "  --calib-method M    activation observer: mse (default), minmax, percentile (99.99),\n"
        "                      percentile=P, kl\n"
        "  --budget-bits B     auto: the least output error with at most B bits per weight on "
        "average\n"
        "  --max-error E       auto: the fewest bytes with output error at most E on the "
        "calibration\n"
        "                      set (mean KL for @logits outputs, else relative RMS)\n"
        "  --sensitivity M     auto: how sensitivities are measured: exact (every candidate end\n"
        "                      to end), fast (one measured perturbation per matrix, the others\n"
        "                      estimated from calibration statistics), auto (default: exact\n"
        "                      when that is cheap)\n"
        "  --sensitivity-samples N  auto: measure sensitivities on N samples (default: enough\n"
        "                      for 2048 output rows, at least 16; fast: at most about one\n"
        "                      calibration pass of work)\n"
        "  --report FILE.json  write every decision and its measurements (`qmc report` renders "
        "it)\n"
        "  -v                  print the decisions as a table on stderr (compile: and the "
        "kernels)\n");
}
