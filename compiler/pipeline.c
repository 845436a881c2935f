/* pipeline.c: the compiler's passes, in the order the design names them.
 *
 *   parse -> build graph -> infer shapes -> select precision -> quantize
 *   weights -> lower -> emit
 *
 * ir_verify runs after every pass that produces or changes the graph;
 * --dump-after=PASS prints the IR at that point. */
#include <string.h>

#include "compiler.h"

const char *const pipeline_pass_names[] = {"build", "shape", "precision", "quantize", NULL};

static bool after_pass(const ir_graph *g, const char *pass, const pipeline_options *opts)
{
    if (!ir_verify(g, pass)) return false;
    if (opts && opts->dump_after && strcmp(opts->dump_after, pass) == 0) ir_dump(stdout, g);
    return true;
}

ir_graph *pipeline_load(fe_arena *arena, const char *model_path, const pipeline_options *opts)
{
    fe_node *ast = fe_parse_file(arena, model_path);
    if (!ast) return NULL;
    ir_build_options bo = {.weights_override = opts ? opts->weights_override : NULL};
    ir_graph *g = ir_build_graph(arena, ast, &bo);
    if (!g || !after_pass(g, "build", opts)) return NULL;
    if (!ir_infer_shapes(g) || !after_pass(g, "shape", opts)) return NULL;
    return g;
}

bool pipeline_quantize(ir_graph *g, const qp_spec *spec, const pipeline_options *opts)
{
    if (!ir_select_precision(g, spec) || !after_pass(g, "precision", opts)) return false;
    if (!ir_quantize_weights(g) || !after_pass(g, "quantize", opts)) return false;
    return true;
}

bool pipeline_simulate_precision(fe_arena *arena, ir_graph *g, const char *spec_text, const pipeline_options *opts)
{
    qp_spec spec;
    if (spec_text && !qp_spec_parse(arena, spec_text, &spec)) return false;
    return pipeline_quantize(g, spec_text ? &spec : NULL, opts);
}
