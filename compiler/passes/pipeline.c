/* pipeline.c: the compiler's passes, in the order the design names them.
 *
 *   parse -> build graph -> infer shapes -> fold -> calibrate -> select precision
 *   -> quantize weights -> (report) -> layout -> lower -> emit
 *
 * ir_verify runs after every pass that produces or changes the graph;
 * --dump-after=PASS prints the IR at that point. The calibration samples
 * are opened once, here, and handed to the passes that read them. The
 * driver parses options and calls pass_pipeline; `qmc run`, `eval` and
 * `inspect` stop before lower.
 *
 * `qmc compile` quantizes late: the quantize pass gives the matrices only
 * their layout, lower and codegen plan with it, then the weights stream
 * into the output one at a time (quantize, pack, write, forget), and only
 * then is the report (which shows their errors) written. Each stretch ends
 * a stage (-v prints their times and memory).
 *
 * An ONNX model is imported first, in memory: the text `qmc import` would
 * write is parsed from memory (diagnostics name it "MODEL.onnx (imported)")
 * and its weights are a tensor set in memory over the ONNX data. */
#include <string.h>

#include "passes.h"

const char *const pass_names[] = {"build",     "shape",    "fold", "calibrate",
                                  "precision", "quantize", NULL};
const char *const pass_compile_names[] = {"layout", "lower", NULL};

static bool after_pass(const ir_graph *g, const char *pass, const pass_options *opts)
{
    if (!ir_verify(g, pass)) return false;
    if (opts && opts->dump_after && strcmp(opts->dump_after, pass) == 0) ir_dump(stdout, g);
    return true;
}

bool pass_is_onnx(const char *model_path)
{
    size_t n = strlen(model_path);
    return n > 5 && strcmp(model_path + n - 5, ".onnx") == 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* `qmc import`, in memory: the syntax tree of the text it would write and
 * the weights, as a tensor set over the ONNX data (*weights). The model
 * stays open (the weights read its data) until the process ends. */
static fe_node *import_onnx(sup_arena *arena, const char *path, pass_options *opts,
                            fe_safetensors **weights)
{
    if (opts && opts->weights_override) {
        sup_error_plain("--weights cannot replace the weights of an ONNX model (its "
                        "initializers); `qmc import` it and compile the .qm with --weights");
        return NULL;
    }
    fe_onnx_model *m = sup_arena_alloc(arena, sizeof *m);
    if (!fe_onnx_open(arena, path, m)) return NULL;
    const char *base = base_name(path);
    const char *stem = sup_arena_strndup(arena, base, strlen(base) - 5);
    const pass_import_options *io = opts ? &opts->import : NULL;
    fe_onnx_import_options o = {.model_name = stem,
                                .weights_file = sup_arena_printf(arena, "%s.safetensors", stem),
                                .source_name = base,
                                .shapes = io ? io->shapes : NULL,
                                .n_shapes = io ? io->n_shapes : 0,
                                .drop_batch = io && io->drop_batch};
    fe_onnx_imported imp;
    if (!fe_onnx_import(arena, m, &o, &imp)) {
        fe_onnx_close(m);
        return NULL;
    }
    if (opts) opts->n_data_files = fe_onnx_data_files(m, opts->data_files, PASS_MAX_DATA_FILES);
    *weights = sup_arena_alloc(arena, sizeof **weights);
    fe_onnx_weights_source(arena, &imp, path, *weights);
    const char *name = sup_arena_printf(arena, "%s (imported)", path);
    fe_node *ast = fe_parse_text(arena, name, imp.text, imp.len);
    if (!ast) sup_note((sup_loc){.file = path}, "in the text `qmc import %s` writes", base);
    return ast;
}

ir_graph *pass_pipeline_load(sup_arena *arena, const char *model_path, pass_options *opts)
{
    bool onnx = pass_is_onnx(model_path);
    if (!onnx && opts && (opts->import.n_shapes || opts->import.drop_batch)) {
        sup_error_plain("--shape and --drop-batch apply to ONNX models (MODEL.onnx)");
        return NULL;
    }
    fe_safetensors *weights = NULL;
    fe_node *ast =
        onnx ? import_onnx(arena, model_path, opts, &weights) : fe_parse_file(arena, model_path);
    if (!ast) return NULL;
    pass_build_options bo = {.weights_override = opts ? opts->weights_override : NULL,
                             .weights_set = weights,
                             .seq_len = opts ? opts->seq_len : 0,
                             .kv_format = opts ? opts->kv_format : RT_KV_F32};
    ir_graph *g = pass_build_graph(arena, ast, &bo);
    if (g && after_pass(g, "build", opts) && pass_infer_shapes(g) && after_pass(g, "shape", opts)) {
        g = pass_fold(arena, g);
        return after_pass(g, "fold", opts) ? g : NULL;
    }
    if (onnx)
        sup_note((sup_loc){.file = model_path},
                 "the model as imported from ONNX: `qmc import %s` writes this text to a file",
                 base_name(model_path));
    return NULL;
}

/* calibrate -> select precision -> quantize weights, on the calibration
 * data the caller opened; only the quantized layouts when `late` (the
 * weights are quantized while they are written). The formats are resolved
 * and the search planned first, so that a spec that cannot work fails
 * before calibration. */
static bool precision_passes(ir_graph *g, const pass_spec *spec, const pass_calib_data *data,
                             const pass_options *opts, bool late)
{
    const pass_prec_options *o = &opts->prec;
    if (!pass_plan_precision(g, spec, data->n ? data->samples : 0)) return false;
    if (!pass_calibrate(g, data, g->selection->second_moments) || !pass_fold_scales(g, data) ||
        !after_pass(g, "calibrate", opts))
        return false;
    if (!pass_select_precision(g, spec, data)) return false;
    /* a fixed choice is measured too when someone will read the numbers */
    bool explain = o->report || o->verbose;
    if (explain && !g->selection->automatic && !pass_measure_fixed(g, data)) return false;
    if (!after_pass(g, "precision", opts)) return false;
    return (late ? pass_quantize_layouts(g) : pass_quantize_weights(g)) &&
           after_pass(g, "quantize", opts);
}

/* The decisions as a table (-v) and as JSON (--report). */
static bool report(const ir_graph *g, const pass_prec_options *o)
{
    if (o->verbose) ir_report_print_table(g, stderr);
    return !o->report || ir_report_write_json(g, o->report);
}

static bool precision_stage(sup_arena *arena, ir_graph *g, const pass_options *opts, bool late)
{
    const pass_prec_options *o = &opts->prec;
    pass_spec spec;
    if (o->precision && !pass_spec_parse(arena, o->precision, &spec)) return false;
    spec.budget_bits = o->budget_bits;
    spec.max_error = o->max_error;
    spec.sens_samples = o->sens_samples;
    spec.sens_method = o->sens_method;
    pass_calib_data data;
    if (!pass_calib_open(g, o, &data)) return false;
    bool ok = precision_passes(g, o->precision ? &spec : NULL, &data, opts, late);
    pass_calib_close(&data);
    if (!ok) return false;
    sup_stage_end("precision");
    return late || report(g, o);
}

bool pass_pipeline_precision(sup_arena *arena, ir_graph *g, const pass_options *opts)
{
    return precision_stage(arena, g, opts, false);
}

bool pass_pipeline_emit(sup_arena *arena, ir_graph *g, const cg_target *t, pass_options *opts)
{
    ir_plan plan;
    bool int8_dot = cg_target_int8_dot(t);
    g = pass_layout(arena, g);
    if (!after_pass(g, "layout", opts)) return false;
    if (!pass_lower(g, &plan, int8_dot) || !after_pass(g, "lower", opts)) return false;
    if (g->context) {
        if (!pass_specialize(arena, g, opts)) return false;
        for (int s = 0; s < g->n_steps; s++) {
            ir_step *st = &g->steps[s];
            st->g = pass_layout(arena, st->g);
            if (!ir_verify(st->g, "layout") || !pass_lower(st->g, &st->plan, int8_dot) ||
                !ir_verify(st->g, "lower"))
                return false;
        }
    }
    sup_stage_end("lower");
    cg_weights_kind kind;
    const char *path;
    cg_output_weights(arena, g, &opts->cg, &kind, &path);
    cg_weights w;
    if (!cg_weights_open(arena, g, t, kind, path, &w)) return false;
    bool ok = pass_stream_weights(g, &w, opts->prec.report || opts->prec.verbose);
    ok = ok && report(g, &opts->prec);
    if (!ok) {
        cg_weights_discard(&w);
        return false;
    }
    if (opts->prec.verbose) {
        cg_print_kernels(stderr, arena, g, &plan, t);
        cg_print_conv_kernels(stderr, arena, g, t);
    }
    if (opts->dump_ir) ir_dump(stdout, g);
    return cg_write_output(arena, g, &plan, t, &opts->cg, &w);
}

ir_graph *pass_pipeline(sup_arena *arena, const char *model_path, pass_options *opts,
                        pass_until until)
{
    cg_target t;
    if (until == PASS_UNTIL_EMIT) {
        const cg_options *cg = &opts->cg;
        if (!cg_target_resolve(arena, cg->triple, cg->cpu, cg->features, &t)) return NULL;
        if (cg->print_target) cg_target_print(stdout, arena, &t);
    }
    ir_graph *g = pass_pipeline_load(arena, model_path, opts);
    if (!g || until == PASS_UNTIL_SHAPE) return g;
    sup_stage_end("load");
    if (!precision_stage(arena, g, opts, until == PASS_UNTIL_EMIT)) return NULL;
    if (until == PASS_UNTIL_QUANTIZE) return g;
    return pass_pipeline_emit(arena, g, &t, opts) ? g : NULL;
}
