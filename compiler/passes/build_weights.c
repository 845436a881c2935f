/* build_weights.c: the weights file of elaboration.
 *
 * Opens the weights the model's `weights` statement (or --weights) names,
 * relative to the model's folder: a safetensors file, the index of a
 * sharded checkpoint or a folder (frontend/checkpoint.c), and turns their
 * tensors into weight nodes, one per tensor, created on first use: a model
 * may use a weight many times, and a dotted name that is only a prefix
 * (`blocks.0`) is a value of its own. */
#include <string.h>

#include "passes.h"

/* The weights file as written in the model, relative to the model's folder. */
static const char *weights_path(pass_builder *b, const char *written)
{
    const char *slash = strrchr(b->g->source, '/');
    if (written[0] == '/' || !slash) return written;
    return sup_arena_printf(b->arena, "%.*s/%s", (int)(slash - b->g->source), b->g->source,
                            written);
}

/* The tensor names, for suggestions. */
static bool remember_names(pass_builder *b)
{
    const fe_safetensors *w = b->g->weights;
    b->weight_names = sup_arena_alloc(b->arena, sizeof *b->weight_names * (size_t)(w->count + 1));
    for (int i = 0; i < w->count; i++) b->weight_names[i] = w->tensors[i].name;
    return true;
}

/* Opens the weights file: --weights if given, else the `weights` statement
 * (stmt, NULL when the model has none and --weights supplies the file);
 * an imported ONNX model's weights are a set in memory already. */
bool pass_build_open_weights(pass_builder *b, const fe_node *stmt)
{
    ir_graph *g = b->g;
    const char *override = b->opts ? b->opts->weights_override : NULL;
    if (stmt && g->weights) {
        if (override && !g->weights_loc.line) { /* opened from --weights already */
            g->weights_loc = stmt->loc;
            return true;
        }
        pass_build_fail(stmt->loc, "the model already has a weights file");
        sup_note(g->weights_loc, "the first 'weights' statement is here");
        return false;
    }
    if (stmt && b->opts && b->opts->weights_set) {
        g->weights = b->opts->weights_set;
        g->weights_loc = stmt->loc;
        g->weights_spec = g->weights->path;
        return remember_names(b);
    }
    const char *path = override ? override : weights_path(b, stmt->str);
    g->weights = sup_arena_alloc(b->arena, sizeof *g->weights);
    if (stmt) g->weights_loc = stmt->loc;
    g->weights_spec = override ? override : stmt->str;
    char err[512];
    qmc_status st = fe_checkpoint_open(b->arena, path, g->weights, err, sizeof err);
    if (st != QMC_OK) {
        const char *what = st == QMC_ERR_IO ? "cannot read" : "malformed";
        if (stmt)
            pass_build_fail(stmt->loc, "%s weights file '%s'%s: %s", what, path,
                            override ? " (given with --weights)" : "", err);
        else
            sup_error_plain("%s weights file '%s' (given with --weights): %s", what, path, err);
        g->weights = NULL;
        return false;
    }
    return remember_names(b);
}

/* The node of weight `name`, created on first use; -1 after reporting a
 * tensor the graph cannot hold (an empty dimension, too many elements). */
int32_t pass_build_weight_node(pass_builder *b, const fe_tensor *t, sup_loc loc)
{
    int32_t *slot = ir_name_map_slot(b->arena, &b->weight_nodes, t->name, false);
    if (slot) return *slot;
    char shape[RT_SHAPE_STR_MAX];
    for (int d = 0; d < t->rank; d++)
        if (t->shape[d] < 1) {
            pass_build_fail(loc, "weight '%s' is empty: it has shape %s in '%s'", t->name,
                            rt_shape_str(t->dtype, t->rank, t->shape, shape, sizeof shape),
                            b->g->weights->path);
            return -1;
        }
    if (t->count > IR_MAX_ELEMENTS) {
        pass_build_fail(loc, "weight '%s' has more than %lld elements", t->name,
                        (long long)IR_MAX_ELEMENTS);
        return -1;
    }
    int32_t idx = ir_add_node(b->g, IR_OP_WEIGHT, NULL, 0, loc);
    ir_node *n = &b->g->nodes[idx];
    n->name = pass_build_unique_name(b, t->name);
    n->tensor = t;
    n->dtype = QMC_DTYPE_F32;
    n->rank = t->rank;
    memcpy(n->shape, t->shape, sizeof n->shape);
    *ir_name_map_slot(b->arena, &b->weight_nodes, t->name, true) = idx;
    return idx;
}

/* true if some tensor name starts with `prefix.` */
bool pass_build_is_weight_prefix(pass_builder *b, const char *prefix)
{
    if (!b->g->weights) return false;
    size_t n = strlen(prefix);
    for (int i = 0; i < b->g->weights->count; i++) {
        const char *name = b->g->weights->tensors[i].name;
        if (strncmp(name, prefix, n) == 0 && name[n] == '.') return true;
    }
    return false;
}
