/* model_io.c: binding .npy files to a model's inputs and outputs.
 *
 * An input file holds exactly the declared shape, or one extra leading
 * dimension: then each slice along it is one run (a batch). Mismatches are
 * reported at the input's declaration in the model source, naming the file. */
#include <string.h>

#include "interp.h"

static bool split_spec(const char *spec, const char *what, char *name, size_t size,
                       const char **path)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) {
        sup_error_plain("expected %s NAME=FILE.npy, got '%s'", what, spec);
        return false;
    }
    snprintf(name, size, "%.*s", (int)(eq - spec), spec);
    *path = eq + 1;
    return true;
}

static int find_port(const ir_port *ports, int n, const char *name, const char *what)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ports[i].name, name) == 0) return i;
    const char *names[64] = {0};
    int k = 0;
    for (int i = 0; i < n && k < 64; i++) names[k++] = ports[i].name;
    const char *best = rt_closest(name, names, k);
    if (best)
        sup_error_plain("the model has no %s '%s'; did you mean '%s'?", what, name, best);
    else if (n)
        sup_error_plain("the model has no %s '%s' (its %ss: %s%s)", what, name, what, names[0],
                        n > 1 ? ", ..." : "");
    else
        sup_error_plain("the model has no %ss", what);
    return -1;
}

static bool dtype_accepted(qmc_dtype declared, qmc_dtype file)
{
    if (declared == QMC_DTYPE_F32) return file == QMC_DTYPE_F32;
    return file == QMC_DTYPE_I32 || file == QMC_DTYPE_I64;
}

static bool model_input_open(const ir_graph *g, const char *spec, interp_file *in)
{
    char name[128], err[256];
    memset(in, 0, sizeof *in);
    if (!split_spec(spec, "--input", name, sizeof name, &in->path)) return false;
    in->port = find_port(g->inputs, g->n_inputs, name, "input");
    if (in->port < 0) return false;
    const ir_port *p = &g->inputs[in->port];
    if (rt_file_map(in->path, &in->file, err, sizeof err) != QMC_OK) {
        sup_error_plain("cannot read '%s' for input '%s': %s", in->path, p->name, err);
        return false;
    }
    if (rt_npy_parse(in->file.data, in->file.size, &in->npy, err, sizeof err) != QMC_OK) {
        sup_error_plain("malformed .npy file '%s' for input '%s': %s", in->path, p->name, err);
        rt_file_unmap(&in->file);
        return false;
    }
    char want[RT_SHAPE_STR_MAX], have[RT_SHAPE_STR_MAX];
    rt_shape_str(p->dtype, p->rank, p->shape, want, sizeof want);
    rt_shape_str(in->npy.dtype, in->npy.rank, in->npy.shape, have, sizeof have);
    if (!dtype_accepted(p->dtype, in->npy.dtype)) {
        sup_error(p->loc, "input '%s' is %s but '%s' holds %s (%s)", p->name, want, in->path, have,
                  p->dtype == QMC_DTYPE_F32 ? "expected float32" : "expected int32 or int64");
        rt_file_unmap(&in->file);
        return false;
    }
    int extra = in->npy.rank - p->rank;
    bool match = (extra == 0 || extra == 1) &&
                 memcmp(in->npy.shape + extra, p->shape, sizeof p->shape[0] * (size_t)p->rank) == 0;
    if (!match) {
        sup_error(p->loc, "input '%s' is %s (or a batch [N, ...] of it) but '%s' holds %s", p->name,
                  want, in->path, have);
        rt_file_unmap(&in->file);
        return false;
    }
    in->batch = extra ? in->npy.shape[0] : -1;
    if (in->batch == 0) {
        sup_error(p->loc, "input '%s': '%s' holds an empty batch", p->name, in->path);
        rt_file_unmap(&in->file);
        return false;
    }
    return true;
}

static bool model_input_read(const ir_graph *g, const interp_file *in, int64_t b, void *dst)
{
    const ir_port *p = &g->inputs[in->port];
    int64_t count = 1;
    for (int i = 0; i < p->rank; i++) count *= p->shape[i];
    size_t es = qmc_dtype_size(in->npy.dtype);
    const uint8_t *src = in->file.data + in->npy.data_offset + (size_t)(b * count) * es;
    if (in->npy.dtype != QMC_DTYPE_I64) {
        memcpy(dst, src, (size_t)count * es);
        return true;
    }
    int32_t *out = dst;
    for (int64_t i = 0; i < count; i++) {
        int64_t v;
        memcpy(&v, src + i * 8, 8);
        if (v < INT32_MIN || v > INT32_MAX) {
            sup_error(p->loc, "input '%s': '%s' holds %lld, which does not fit in i32", p->name,
                      in->path, (long long)v);
            return false;
        }
        out[i] = (int32_t)v;
    }
    return true;
}

void interp_file_close(interp_file *in) { rt_file_unmap(&in->file); }

static bool model_inputs_check(const ir_graph *g, const interp_file *ins, int n, int64_t *batch)
{
    *batch = -1;
    for (int p = 0; p < g->n_inputs; p++) {
        int given = 0;
        for (int i = 0; i < n; i++) given += ins[i].port == p;
        if (given == 0) {
            sup_error(g->inputs[p].loc, "input '%s' is not given (pass --input %s=FILE.npy)",
                      g->inputs[p].name, g->inputs[p].name);
            return false;
        }
        if (given > 1) {
            sup_error_plain("input '%s' is given more than once", g->inputs[p].name);
            return false;
        }
    }
    for (int i = 0; i < n; i++) {
        if (ins[i].batch < 0) continue;
        if (*batch >= 0 && ins[i].batch != *batch) {
            sup_error_plain("batched inputs disagree: '%s' has %lld items but another has %lld",
                            ins[i].path, (long long)ins[i].batch, (long long)*batch);
            return false;
        }
        *batch = ins[i].batch;
    }
    return true;
}

bool interp_files_open(const ir_graph *g, const char *const *specs, int n, interp_file *ins,
                       int64_t *batch)
{
    int opened = 0;
    for (; opened < n; opened++)
        if (!model_input_open(g, specs[opened], &ins[opened])) break;
    if (opened < n || !model_inputs_check(g, ins, n, batch)) {
        for (int i = 0; i < opened; i++) interp_file_close(&ins[i]);
        return false;
    }
    return true;
}

bool interp_files_load_slot(const ir_graph *g, interp *it, const interp_file *ins, int n, int64_t s,
                            int slot)
{
    for (int i = 0; i < n; i++)
        if (!model_input_read(g, &ins[i], ins[i].batch < 0 ? 0 : s,
                              interp_input_slot(it, ins[i].port, slot)))
            return false;
    return true;
}

bool interp_files_load(const ir_graph *g, interp *it, const interp_file *ins, int n, int64_t s)
{
    return interp_files_load_slot(g, it, ins, n, s, 0);
}

bool interp_output_spec(const ir_graph *g, const char *spec, int *port, const char **path)
{
    char name[128];
    if (!split_spec(spec, "--output", name, sizeof name, path)) return false;
    *port = find_port(g->outputs, g->n_outputs, name, "output");
    return *port >= 0;
}

bool interp_run_batches(const ir_graph *g, interp *it, const interp_file *ins, int n, int64_t runs,
                        float *const *stacked)
{
    for (int64_t r = 0; r < runs; r++) {
        if (!interp_files_load(g, it, ins, n, r) || !interp_run(it)) return false;
        for (int o = 0; o < g->n_outputs; o++) {
            int64_t count = ir_node_count(&g->nodes[g->outputs[o].node]);
            memcpy(stacked[o] + r * count, interp_output(it, o), sizeof(float) * (size_t)count);
        }
    }
    return true;
}
