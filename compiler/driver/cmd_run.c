/* cmd_run.c: `qmc run MODEL.qm --input NAME=FILE.npy ... --output NAME=FILE.npy ...`
 * evaluates the model with the reference interpreter (fp32).
 *
 * An input with one extra leading dimension is a batch: each slice is run
 * and the outputs are stacked. Outputs are written only after every run
 * succeeded, each atomically. */
#include <stdlib.h>
#include <string.h>

#include "driver.h"

enum { MAX_PORTS = 64 };

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: qmc run MODEL.qm --input NAME=FILE.npy ... [--output NAME=FILE.npy ...] [--weights "
        "FILE]\n\n"
        "Evaluates the model in fp32 with the reference interpreter.\n"
        "  --input NAME=FILE   an input (.npy float32, int32 or int64); one extra leading\n"
        "                      dimension runs each slice and stacks the outputs\n"
        "  --output NAME=FILE  write an output (.npy float32); without any, a summary is printed\n"
        "  --weights FILE      use this safetensors file instead of the model's `weights`\n"
        "  --seq N             a model with `sequence T <= C`: calls of N tokens (default C)\n"
        "  --kv-cache FORMAT   ... its KV caches: f32 (default), int8 or fp8e4m3\n"
        "  --precision SPEC    simulate the weight precision `qmc compile --precision SPEC` "
        "uses\n");
    cli_precision_usage(f);
    cli_import_usage(f);
}

typedef struct run_args {
    const char *model;
    pass_options po;
    const char *inputs[MAX_PORTS], *outputs[MAX_PORTS];
    int n_inputs, n_outputs;
} run_args;

static bool parse_args(int argc, char **argv, run_args *a)
{
    static const char *const known[] = {"--input",       "--output",     "--weights",
                                        "--seq",         "--kv-cache",   "--precision",
                                        "--help",        "--calib",      "--calib-method",
                                        "--budget-bits", "--max-error",  "--sensitivity-samples",
                                        "--sensitivity", "--report",     "-v",
                                        "--shape",       "--drop-batch", NULL};
    cli c = {argc, argv, 1, "run", false};
    const char *v;
    while (c.i < c.argc && !c.failed) {
        if (cli_flag(&c, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (cli_value(&c, "--weights", &a->po.weights_override) || cli_seq(&c, &a->po.seq_len) ||
            cli_kv_cache(&c, &a->po.kv_format) || cli_precision_flag(&c, &a->po.prec) ||
            cli_import_flag(&c, &a->po.import))
            continue;
        if (cli_value(&c, "--input", &v)) {
            if (a->n_inputs == MAX_PORTS) {
                sup_error_plain("too many --input options");
                return false;
            }
            a->inputs[a->n_inputs++] = v;
            continue;
        }
        if (cli_value(&c, "--output", &v)) {
            if (a->n_outputs == MAX_PORTS) {
                sup_error_plain("too many --output options");
                return false;
            }
            a->outputs[a->n_outputs++] = v;
            continue;
        }
        if (c.failed) break; /* an option lacked its value */
        if (c.argv[c.i][0] == '-' || a->model) {
            cli_unknown(&c, known);
            continue;
        }
        a->model = c.argv[c.i++];
    }
    if (!c.failed && !a->model) usage(stderr);
    return !c.failed && a->model && cli_precision_check(&a->po.prec);
}

static void print_summary(const ir_port *p, const float *y, int64_t count, int64_t batch)
{
    double mn = y[0], mx = y[0], sum = 0;
    for (int64_t i = 0; i < count; i++) {
        mn = y[i] < mn ? y[i] : mn;
        mx = y[i] > mx ? y[i] : mx;
        sum += y[i];
    }
    char shape[RT_SHAPE_STR_MAX];
    rt_shape_str(p->dtype, p->rank, p->shape, shape, sizeof shape);
    printf("%s: %s%s min %.6g max %.6g mean %.6g\n", p->name, batch >= 0 ? "batch of " : "", shape,
           mn, mx, sum / (double)count);
}

/* Writes one f32 output atomically; on failure nothing is left at path. */
static bool write_output(const char *path, int rank, const int64_t *shape, const float *data)
{
    char err[256];
    qmc_status st = rt_npy_write_err(path, QMC_DTYPE_F32, rank, shape, data, err, sizeof err);
    if (st == QMC_ERR_INVALID_ARGUMENT) {
        sup_error_plain("cannot write '%s': %d dimensions are too many for .npy", path, rank);
        return false;
    }
    if (st != QMC_OK) {
        sup_error_plain("cannot write '%s': %s", path, err);
        return false;
    }
    return true;
}

static int run(run_args *a, sup_arena *arena)
{
    ir_graph *g = pass_pipeline(arena, a->model, &a->po, PASS_UNTIL_QUANTIZE);
    if (!g) return 1;
    interp_file ins[MAX_PORTS];
    int n_open = 0, status = 1;
    int out_ports[MAX_PORTS];
    const char *out_paths[MAX_PORTS];
    int64_t batch;
    for (int i = 0; i < a->n_outputs; i++)
        if (!interp_output_spec(g, a->outputs[i], &out_ports[i], &out_paths[i])) return 1;
    float **stacked = calloc((size_t)g->n_outputs, sizeof *stacked);
    if (!stacked) {
        sup_error_plain("out of memory");
        return 1;
    }
    if (!interp_files_open(g, a->inputs, a->n_inputs, ins, &batch)) goto done;
    n_open = a->n_inputs;
    interp *it = interp_new(arena, g);
    interp_use_quantized_weights(it, g);
    int64_t runs = batch < 0 ? 1 : batch;
    for (int o = 0; o < g->n_outputs; o++) {
        int64_t count = ir_node_count(&g->nodes[g->outputs[o].node]), total;
        if (!__builtin_mul_overflow(count, runs, &total) && total <= IR_MAX_ELEMENTS)
            stacked[o] = malloc(sizeof(float) * (size_t)total);
        if (!stacked[o]) {
            sup_error_plain("out of memory for output '%s' of %lld runs", g->outputs[o].name,
                            (long long)runs);
            goto done;
        }
    }
    if (!interp_run_batches(g, it, ins, n_open, runs, stacked)) goto done;
    for (int i = 0; i < a->n_outputs; i++) {
        const ir_port *p = &g->outputs[out_ports[i]];
        int64_t shape[IR_MAX_RANK + 1];
        int rank = 0;
        if (batch >= 0) shape[rank++] = batch;
        for (int d = 0; d < p->rank; d++) shape[rank++] = p->shape[d];
        if (!write_output(out_paths[i], rank, shape, stacked[out_ports[i]])) goto done;
    }
    if (a->n_outputs == 0)
        for (int o = 0; o < g->n_outputs; o++)
            print_summary(&g->outputs[o], stacked[o],
                          ir_node_count(&g->nodes[g->outputs[o].node]) * runs, batch);
    status = 0;
done:
    for (int i = 0; i < n_open; i++) interp_file_close(&ins[i]);
    for (int o = 0; o < g->n_outputs; o++) free(stacked[o]);
    free(stacked);
    return status;
}

int cli_run(int argc, char **argv)
{
    run_args a = {0};
    if (!parse_args(argc, argv, &a)) return 1;
    sup_arena arena = {0};
    int status = run(&a, &arena);
    sup_arena_free(&arena);
    cli_import_free(&a.po.import);
    return status;
}
