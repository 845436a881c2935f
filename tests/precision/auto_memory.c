/* auto_memory: the memory automatic precision selection needs, against a
 * bound derived from its design.
 *
 *   auto_memory MODEL.qm CALIB.npy BUDGET_BITS
 *
 * Runs what `qmc compile --precision auto --budget-bits B --calib idx=CALIB`
 * runs before the weights are written: load, plan, calibrate, select
 * precision. Then compares the process's peak resident set (getrusage's
 * ru_maxrss, mapped weight pages included) with
 *
 *   base      the resident set once the model is loaded (qmc's code and
 *             libraries, the graph; the weights are mapped, not read)
 *   + batch   the interpreter's activations: a batch of samples
 *             (pass_batch_slots x interp_slot_bytes), one interpreter at a time
 *   + held    the combination being verified, held as codes: at most twice
 *             the bytes of the formats chosen (scales and zero points are
 *             held as f32 and int32, stored as f16 and uint8)
 *   + 24 x the largest matrix's elements: the matrix being quantized and
 *             measured (its mapped pages 4, a converted copy 4, the padded
 *             copy 4, MSE clipping's copy 4, codes 1, the dequantized values
 *             the interpreter multiplies with 4, slack 3)
 *   + stats   calibration's: a 16 KiB histogram and the mean squares per
 *             observed activation, the second moments if collected, the
 *             f32 outputs of every sample
 *   + 32 MiB  allocator slack
 *
 * and fails (exit 1) if the peak is above. A selection that kept the weights
 * resident, every candidate dequantized or a whole-model f32 copy would be
 * far above: the test's model has 203 MB of f32 weights against a bound of
 * about base + 190 MB, most of it the batch. Prints every term. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "passes.h"

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static long peak_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Calibration's statistics, in bytes. */
static size_t stats_bytes(const ir_graph *g)
{
    const ir_calibration *c = g->calib;
    size_t b = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_calib_stats *s = c->of_node[i];
        if (!s) continue;
        b += sizeof *s + sizeof(double) * (size_t)s->channels;
        if (s->xx) b += sizeof(double) * (size_t)(s->channels * s->channels);
    }
    for (int o = 0; c->ref_out && o < g->n_outputs; o++)
        b += sizeof(float) * (size_t)c->samples *
             (size_t)ir_node_count(&g->nodes[g->outputs[o].node]);
    return b;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: auto_memory MODEL.qm CALIB.npy BUDGET_BITS\n");
        return 2;
    }
    sup_arena arena = {0};
    pass_options po = {.prec = {.precision = "auto", .n_calib = 1, .budget_bits = atof(argv[3])}};
    po.prec.calib[0] = sup_arena_printf(&arena, "idx=%s", argv[2]);
    ir_graph *g = pass_pipeline_load(&arena, argv[1], &po);
    if (!g) return 2;
    long base = rss_kib();
    pass_spec spec;
    if (!pass_spec_parse(&arena, "auto", &spec)) return 2;
    spec.budget_bits = po.prec.budget_bits;
    pass_calib_data data;
    if (!pass_calib_open(g, &po.prec, &data)) return 2;
    if (!pass_plan_precision(g, &spec, data.samples) ||
        !pass_calibrate(g, &data, g->selection->second_moments) ||
        !pass_select_precision(g, &spec, &data))
        return 2;
    pass_calib_close(&data);
    long peak = peak_kib();

    size_t batch = (size_t)pass_batch_slots(g, g->calib->samples) * interp_slot_bytes(g);
    size_t chosen = 0, f32 = 0;
    int64_t params = 0, largest = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *w = &g->nodes[i];
        if (w->op == IR_OP_WEIGHT) params += ir_node_count(w);
        if (!w->is_matrix) continue;
        chosen += q_precision_bytes(&w->qformat, w->shape[0], w->shape[1]);
        f32 += sizeof(float) * (size_t)ir_node_count(w);
        if (ir_node_count(w) > largest) largest = ir_node_count(w);
    }
    size_t stats = stats_bytes(g);
    long bound =
        base + (long)((batch + 2 * chosen + 24 * (size_t)largest + stats) / 1024) + 32 * 1024;
    printf("model: %lld parameters, %zu MB of f32 weight matrices; %s sensitivity on %d "
           "samples, %.4g bits per weight\n",
           (long long)params, f32 >> 20, g->selection->method, g->selection->sens_samples,
           8.0 * (double)chosen / (double)(f32 / 4));
    printf("bound: base %ld MiB + batch %zu MiB + held 2 x %zu MiB + 24 x %lld elements (%lld "
           "MiB) + stats %zu MiB + 32 MiB = %ld MiB\n",
           base >> 10, batch >> 20, chosen >> 20, (long long)largest,
           (long long)(24 * largest) >> 20, stats >> 20, bound >> 10);
    printf("peak resident set: %ld MiB\n", peak >> 10);
    if (peak > bound) {
        printf("FAIL: the peak is over the bound\n");
        return 1;
    }
    sup_arena_free(&arena);
    return 0;
}
