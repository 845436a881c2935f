/* specialize.c: the specialize pass: a model with a sequence, built again
 * for each token count a call can take (its steps).
 *
 * Needs: the model's graph with its precision decided and its weights
 * quantized (built for --seq or the context).
 * Guarantees: g->steps holds one graph per step size (1, and the other
 * sizes asked for, none beyond the context), each elaborated from the same
 * source with T bound to that size, sharing the model graph's precision
 * decisions and quantized weights by tensor name, its node names prefixed
 * by "tN/" so that the code of every step can live in one module, verified.
 * Each is lowered by the lower pass. */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

enum { MAX_STEPS = 8 };

/* "1,16,128" into sizes (each 1 .. context; 1 always included, sorted,
 * unique); false after reporting a malformed list. */
static int parse_steps(const char *list, int64_t context, int64_t *sizes)
{
    int n = 0;
    sizes[n++] = 1;
    for (const char *p = list; *p;) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || (*end && *end != ',')) {
            sup_error_plain("--steps: '%s' is not a list of token counts like 1,16,128", list);
            return 0;
        }
        if (v > context) v = context;
        bool seen = false;
        for (int i = 0; i < n; i++) seen |= sizes[i] == v;
        if (!seen) {
            if (n == MAX_STEPS) {
                sup_error_plain("--steps: at most %d sizes", MAX_STEPS);
                return 0;
            }
            int i = n++;
            while (i > 0 && sizes[i - 1] > v) sizes[i] = sizes[i - 1], i--;
            sizes[i] = (int64_t)v;
        }
        p = *end ? end + 1 : end;
    }
    return n;
}

/* The model graph's precision decisions and quantized weights, by name. */
static void share_precision(sup_arena *arena, const ir_graph *model, ir_graph *step)
{
    ir_name_map by_name = {0};
    for (int32_t i = 0; i < model->n_nodes; i++)
        if (model->nodes[i].op == IR_OP_WEIGHT)
            *ir_name_map_slot(arena, &by_name, model->nodes[i].name, true) = i;
    for (int32_t i = 0; i < step->n_nodes; i++) {
        ir_node *n = &step->nodes[i];
        if (n->op != IR_OP_WEIGHT) continue;
        int32_t *m = ir_name_map_slot(arena, &by_name, n->name, false);
        QMC_ASSERT(m); /* the same source names the same weights */
        const ir_node *w = &model->nodes[*m];
        n->is_matrix = w->is_matrix;
        n->qformat = w->qformat;
        n->qw = w->qw;
    }
}

static void prefix_names(sup_arena *arena, ir_graph *step, int64_t tokens)
{
    for (int32_t i = 0; i < step->n_nodes; i++)
        if (step->nodes[i].op != IR_OP_WEIGHT)
            step->nodes[i].name =
                sup_arena_printf(arena, "t%lld/%s", (long long)tokens, step->nodes[i].name);
}

bool pass_specialize(sup_arena *arena, ir_graph *g, const pass_options *opts)
{
    int64_t sizes[MAX_STEPS];
    int n = parse_steps(opts->steps ? opts->steps : PASS_DEFAULT_STEPS, g->context, sizes);
    if (!n) return false;
    g->steps = sup_arena_alloc(arena, sizeof *g->steps * (size_t)n);
    for (int s = 0; s < n; s++) {
        fe_node *ast = fe_parse_file(arena, g->source);
        pass_build_options bo = {.weights_override = opts->weights_override,
                                 .seq_len = sizes[s],
                                 .kv_format = opts->kv_format};
        ir_graph *sg = ast ? pass_build_graph(arena, ast, &bo) : NULL;
        if (!sg || !pass_infer_shapes(sg)) return false;
        sg = pass_fold(arena, sg);
        share_precision(arena, g, sg);
        prefix_names(arena, sg, sizes[s]);
        if (!ir_verify(sg, "specialize")) return false;
        g->steps[g->n_steps++] = (ir_step){.tokens = sizes[s], .g = sg};
    }
    return true;
}
