/* onnx_import.c: an ONNX model as a model file in qmc's language.
 *
 * Pipeline: values (one per ONNX name) -> types, shapes and constants
 * (onnx_fold.c) -> patterns (onnx_match.c) -> liveness from the graph
 * outputs -> one statement per live node or pattern, in the file's order.
 *
 * Needs: a model read by onnx.c (checked names, tensors and topological
 * order). Guarantees: on success the text is a complete model (`weights`,
 * `input`s, `output`s and statements) whose names are identifiers of the
 * language; inputs and outputs keep their ONNX names (made identifiers if
 * they are not, the original in a comment), weights keep the names of the
 * initializers they hold where those are paths the language can write; a
 * weight holds exactly the ONNX values (linear's weight transposed to
 * [N, K]). Every live node the language cannot express is reported, each
 * operator type once, and nothing is produced. */
#include <stdlib.h>
#include <string.h>

#include "onnx_import.h"

/* The newest ai.onnx operator set whose operators' semantics qmc knows. */
enum { MAX_OPSET = 21 };

static bool err(fe_imp_em *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool err(fe_imp_em *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_verror("error", (sup_loc){.file = e->p.m->path}, fmt, ap);
    va_end(ap);
    e->failed = true;
    return false;
}

/* ---- the passes ---------------------------------------------------------------------------- */

static void report_bad(fe_imp_em *e, int n, const char *why)
{
    const fe_onnx_node *nd = &e->p.m->nodes[n];
    const char *type =
        *nd->domain ? sup_arena_printf(e->p.arena, "%s.%s", nd->domain, nd->op_type) : nd->op_type;
    int32_t *slot = fe_onnx_map_slot(e->p.arena, &e->bad_types, type, true);
    if (*slot >= 0) {
        e->bad[*slot].count++;
        return;
    }
    e->bad =
        sup_arena_grow(e->p.arena, e->bad, (size_t)e->n_bad, (size_t)e->n_bad + 1, sizeof *e->bad);
    e->bad[e->n_bad] = (struct bad){n, 1, why};
    *slot = e->n_bad++;
}

static bool setup_values(fe_imp_em *e)
{
    fe_imp *p = &e->p;
    const fe_onnx_model *m = p->m;
    int total = m->n_inputs + m->n_initializers;
    for (int n = 0; n < m->n_nodes; n++) total += m->nodes[n].n_outputs;
    p->values = sup_arena_alloc(p->arena, sizeof *p->values * (size_t)(total + 1));
    p->node_out = sup_arena_alloc(p->arena, sizeof *p->node_out * (size_t)(m->n_nodes + 1));
    p->matches = sup_arena_alloc(p->arena, sizeof *p->matches * (size_t)(m->n_nodes + 1));
    for (int i = 0; i < m->n_initializers; i++) {
        const fe_onnx_tensor *t = &m->initializers[i];
        fe_imp_value *v = &p->values[p->n_values];
        *v = (fe_imp_value){.name = t->name,
                            .dtype = t->dtype,
                            .rank = -1,
                            .producer = -1,
                            .tensor = t,
                            .is_const = t->dtype != FE_ONNX_STRING &&
                                        t->dtype != FE_ONNX_COMPLEX64 &&
                                        t->dtype != FE_ONNX_COMPLEX128};
        if (t->rank <= FE_IMP_MAX_RANK) {
            v->rank = t->rank;
            if (t->rank) memcpy(v->dims, t->dims, sizeof *t->dims * (size_t)t->rank);
        }
        *fe_onnx_map_slot(p->arena, &p->by_name, t->name, true) = p->n_values++;
    }
    for (int i = 0; i < m->n_inputs; i++) {
        fe_imp_value *v = &p->values[p->n_values];
        *v =
            (fe_imp_value){.name = m->inputs[i].name, .rank = -1, .producer = -1, .is_input = true};
        *fe_onnx_map_slot(p->arena, &p->by_name, v->name, true) = p->n_values++;
    }
    for (int n = 0; n < m->n_nodes; n++) {
        const fe_onnx_node *nd = &m->nodes[n];
        p->node_out[n] = p->n_values;
        for (int k = 0; k < nd->n_outputs; k++) {
            fe_imp_value *v = &p->values[p->n_values];
            *v = (fe_imp_value){
                .name = *nd->outputs[k] ? nd->outputs[k] : NULL, .rank = -1, .producer = n};
            if (v->name) *fe_onnx_map_slot(p->arena, &p->by_name, v->name, true) = p->n_values;
            p->n_values++;
        }
        for (int k = 0; k < nd->n_inputs; k++) {
            int vi = fe_imp_in(p, n, k);
            if (vi >= 0) p->values[vi].n_uses++;
        }
    }
    for (int i = 0; i < m->n_outputs; i++) {
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, m->outputs[i].name));
        v->is_output = true;
        v->n_uses++;
    }
    return true;
}

static const fe_onnx_shape *shape_arg(fe_imp_em *e, const char *name)
{
    for (int i = 0; i < e->o->n_shapes; i++)
        if (strcmp(e->o->shapes[i].name, name) == 0) return &e->o->shapes[i];
    return NULL;
}

/* Types and static shapes of the graph inputs (with --shape). */
static bool setup_inputs(fe_imp_em *e)
{
    fe_imp *p = &e->p;
    const fe_onnx_model *m = p->m;
    for (int i = 0; i < e->o->n_shapes; i++) {
        bool found = false;
        for (int k = 0; k < m->n_inputs; k++)
            found |= strcmp(m->inputs[k].name, e->o->shapes[i].name) == 0;
        if (!found)
            err(e, "--shape %s: the model has no input '%s'", e->o->shapes[i].name,
                e->o->shapes[i].name);
    }
    for (int i = 0; i < m->n_inputs; i++) {
        const fe_onnx_value_info *vi = &m->inputs[i];
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, vi->name));
        const fe_onnx_shape *s = shape_arg(e, vi->name);
        int t = vi->elem_type;
        if (t != FE_ONNX_FLOAT && t != FE_ONNX_INT64 && t != FE_ONNX_INT32 && t != FE_ONNX_BOOL) {
            err(e,
                "input '%s' is %s; qmc takes float inputs, int64 or int32 indices and bool masks",
                fe_imp_printable(e, vi->name),
                t ? fe_onnx_dtype_name(t) : "not a tensor of a known type");
            continue;
        }
        v->dtype = t;
        if (vi->rank > FE_IMP_MAX_RANK) {
            err(e, "input '%s' has %d dimensions, more than %d", fe_imp_printable(e, vi->name),
                vi->rank, FE_IMP_MAX_RANK);
            continue;
        }
        if (s && vi->rank >= 0 && s->rank != vi->rank) {
            err(e, "--shape %s has %d dimensions but the input has %d", s->name, s->rank, vi->rank);
            continue;
        }
        if (s) {
            for (int d = 0; d < s->rank && vi->rank >= 0; d++)
                if (vi->dims[d].value > 0 && vi->dims[d].value != s->dims[d])
                    err(e, "--shape %s: dimension %d is %lld in the model", s->name, d,
                        (long long)vi->dims[d].value);
            v->rank = s->rank;
            memcpy(v->dims, s->dims, sizeof *s->dims * (size_t)s->rank);
            continue;
        }
        if (vi->rank < 0) {
            err(e,
                "input '%s' has no shape in the model; give it with --shape %s=1x128 (for example)",
                fe_imp_printable(e, vi->name), fe_imp_printable(e, vi->name));
            continue;
        }
        v->rank = vi->rank;
        for (int d = 0; d < vi->rank; d++) {
            v->dims[d] = vi->dims[d].value;
            if (vi->dims[d].value > 0) continue;
            /* suggest the known dims, N for the others */
            const char *dims = "";
            for (int k = 0; k < vi->rank; k++)
                dims = vi->dims[k].value > 0
                           ? sup_arena_printf(p->arena, "%s%s%lld", dims, k ? "x" : "",
                                              (long long)vi->dims[k].value)
                           : sup_arena_printf(p->arena, "%s%sN", dims, k ? "x" : "");
            err(e,
                "input '%s' has a %s dimension%s%s%s (dimension %d): give its size with --shape "
                "%s=%s",
                fe_imp_printable(e, vi->name), vi->dims[d].value == 0 ? "zero" : "dynamic",
                vi->dims[d].param ? " '" : "",
                vi->dims[d].param ? fe_imp_printable(e, vi->dims[d].param) : "",
                vi->dims[d].param ? "'" : "", d, fe_imp_printable(e, vi->name), dims);
            break;
        }
    }
    return !e->failed;
}

static void mark_live(fe_imp_em *e)
{
    fe_imp *p = &e->p;
    for (int i = 0; i < p->m->n_outputs; i++)
        fe_imp_v(p, fe_imp_find(p, p->m->outputs[i].name))->live = true;
    for (int n = p->m->n_nodes - 1; n >= 0; n--) {
        const fe_onnx_node *nd = &p->m->nodes[n];
        bool live = false;
        for (int k = 0; k < nd->n_outputs; k++) {
            fe_imp_value *v = fe_imp_v(p, fe_imp_out(p, n, k));
            live |= v->live && !v->is_const;
        }
        if (!live) continue;
        const fe_imp_match *mt = &p->matches[n];
        if (mt->kind != FE_IMP_PAT_NONE) {
            for (int k = 0; k < mt->n_ops; k++)
                if (mt->ops[k] >= 0) fe_imp_v(p, mt->ops[k])->live = true;
            continue;
        }
        for (int k = 0; k < nd->n_inputs; k++) {
            int vi = fe_imp_in(p, n, k);
            if (vi >= 0) fe_imp_v(p, vi)->live = true;
        }
    }
}

/* With --drop-batch, a port whose leading dimension is 1 loses it. */
static bool drops(const fe_imp_em *e, const fe_imp_value *v)
{
    return e->o->drop_batch && v->rank >= 1 && v->dims[0] == 1;
}

/* Names of inputs and outputs (their ONNX names where those are
 * identifiers) and of the weights, fe_imp_reserved before any variable. A value
 * that is an output is computed under the output's name, unless the port
 * drops its batch dimension or the value has a name already (an input, an
 * earlier output): emit_outputs assigns those at the end. */
static void reserve_names(fe_imp_em *e)
{
    fe_imp *p = &e->p;
    const fe_onnx_model *m = p->m;
    for (int i = 0; fe_imp_reserved[i]; i++) fe_imp_take(e, fe_imp_reserved[i]);
    e->in_decl = sup_arena_alloc(p->arena, sizeof *e->in_decl * (size_t)(m->n_inputs + 1));
    e->out_decl = sup_arena_alloc(p->arena, sizeof *e->out_decl * (size_t)(m->n_outputs + 1));
    for (int i = 0; i < m->n_inputs; i++) {
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, m->inputs[i].name));
        const char *name =
            fe_imp_is_ident(v->name) ? v->name : fe_imp_ident_base(p->arena, v->name);
        v->text = e->in_decl[i] = fe_imp_unique_ident(e, name);
        *fe_onnx_map_slot(p->arena, &e->used, v->text, true) = 2;
    }
    for (int i = 0; i < m->n_outputs; i++) {
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, m->outputs[i].name));
        const char *name =
            fe_imp_is_ident(v->name) ? v->name : fe_imp_ident_base(p->arena, v->name);
        if (v->is_input && !drops(e, v) && strcmp(v->text, name) == 0 &&
            v->dtype != FE_ONNX_INT64 && v->dtype != FE_ONNX_INT32) {
            e->out_decl[i] = v->text; /* an input that is also an output */
            continue;
        }
        e->out_decl[i] = fe_imp_unique_ident(e, name);
        *fe_onnx_map_slot(p->arena, &e->used, e->out_decl[i], true) = 2;
        bool index = v->dtype == FE_ONNX_INT64 || v->dtype == FE_ONNX_INT32;
        if (!v->text && !drops(e, v) && !index) v->text = e->out_decl[i];
    }
    /* inputs that drop their batch dimension are reshaped back first */
    for (int i = 0; i < m->n_inputs; i++) {
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, m->inputs[i].name));
        if (v->rank < 0 || !drops(e, v)) continue;
        v->text = fe_imp_unique_ident(e, sup_arena_printf(p->arena, "%s_1", e->in_decl[i]));
        fprintf(e->body, "    %s = reshape(%s, %s)\n", v->text, e->in_decl[i],
                fe_imp_int_list_text(e, v->dims, v->rank));
    }
    for (int i = 0; i < m->n_initializers; i++)
        fe_imp_name_tensor(e, m->initializers[i].name, true);
    for (int n = 0; n < m->n_nodes; n++)
        if (m->nodes[n].value) fe_imp_name_tensor(e, m->nodes[n].value->name, false);
}

static void emit_nodes(fe_imp_em *e)
{
    fe_imp *p = &e->p;
    for (int n = 0; n < p->m->n_nodes; n++) {
        const fe_onnx_node *nd = &p->m->nodes[n];
        bool live = false, runtime_inputs_ok = true;
        for (int k = 0; k < nd->n_outputs; k++) {
            fe_imp_value *v = fe_imp_v(p, fe_imp_out(p, n, k));
            live |= v->live && !v->is_const;
        }
        if (!live) continue;
        fe_imp_node c = {e, n, nd, NULL};
        /* a node after an untranslatable one is not reported again */
        const fe_imp_match *mt = &p->matches[n];
        for (int k = 0; k < (mt->kind ? mt->n_ops : nd->n_inputs); k++) {
            int vi = mt->kind ? mt->ops[k] : fe_imp_in(p, n, k);
            if (vi >= 0 && !fe_imp_v(p, vi)->is_const && !fe_imp_v(p, vi)->text)
                runtime_inputs_ok = false;
        }
        if (!runtime_inputs_ok) {
            /* an operator qmc never translates is still listed */
            if (!fe_imp_known_op(nd) && !mt->kind) report_bad(e, n, NULL);
            continue;
        }
        if (!fe_imp_translate(&c)) report_bad(e, n, c.why);
    }
}

/* Outputs not computed under their own name: constants, inputs, values
 * that are two outputs, ports that drop their batch dimension. */
static void emit_outputs(fe_imp_em *e)
{
    fe_imp *p = &e->p;
    for (int i = 0; i < p->m->n_outputs; i++) {
        int vi = fe_imp_find(p, p->m->outputs[i].name);
        fe_imp_value *v = fe_imp_v(p, vi);
        /* float outputs; bool ones as 0 and 1; int32 and int64 ones as
         * floats (to_f32 at run time) */
        bool index = v->dtype == FE_ONNX_INT64 || v->dtype == FE_ONNX_INT32;
        /* codes of QuantizeLinear and DynamicQuantizeLinear are held as floats */
        bool codes = v->dtype == FE_ONNX_UINT8 || v->dtype == FE_ONNX_INT8 ||
                     v->dtype == FE_ONNX_UINT4 || v->dtype == FE_ONNX_INT4;
        if (v->dtype != FE_ONNX_FLOAT && v->dtype != FE_ONNX_BOOL && v->dtype && !v->is_const &&
            !index && !codes) {
            err(e, "output '%s' is %s computed at run time; qmc's outputs are float",
                fe_imp_printable(e, v->name), fe_onnx_dtype_name(v->dtype));
            continue;
        }
        if (v->rank < 0) {
            if (!e->n_bad)
                err(e, "output '%s' has no shape qmc can infer", fe_imp_printable(e, v->name));
            continue;
        }
        const char *t = v->text;
        if (v->is_const) {
            fe_imp_node c = {e, -1, NULL, NULL};
            bool number = fe_imp_is_float(v->dtype) || v->dtype == FE_ONNX_BOOL;
            t = number                                        ? fe_imp_tensor(&c, vi)
                : fe_imp_count(v) > 0 && fe_imp_const_i(p, v) ? fe_imp_weight(e, v, false, false)
                                                              : NULL;
            if (!t) {
                err(e, "output '%s' is a constant that qmc cannot hold as floats",
                    fe_imp_printable(e, v->name));
                continue;
            }
        }
        if (t && index && !v->is_const) t = sup_arena_printf(p->arena, "to_f32(%s)", t);
        if (!t || (strcmp(t, e->out_decl[i]) == 0 && !v->is_const)) continue;
        if (drops(e, v))
            t = sup_arena_printf(p->arena, "reshape(%s, %s)", t,
                                 fe_imp_int_list_text(e, v->dims + 1, v->rank - 1));
        fprintf(e->body, "    %s = %s\n", e->out_decl[i], t);
    }
}

static void header(fe_imp_em *e, FILE *f)
{
    fe_imp *p = &e->p;
    const fe_onnx_model *m = p->m;
    const fe_onnx_import_options *o = e->o;
    fprintf(f, "# Imported from %s by `qmc import`.\n",
            fe_imp_printable(e, o->source_name ? o->source_name : m->path));
    fprintf(f, "# Producer: %s; IR version %lld; opsets:",
            *m->producer ? fe_imp_printable(e, m->producer) : "unknown", (long long)m->ir_version);
    for (int i = 0; i < m->n_opsets; i++)
        fprintf(f, "%s %s %lld", i ? "," : "",
                *m->opsets[i].domain ? fe_imp_printable(e, m->opsets[i].domain) : "ai.onnx",
                (long long)m->opsets[i].version);
    fputc('\n', f);
    bool any = false;
    for (int i = 0; i < e->n_weights; i++) {
        const fe_onnx_weight *w = &e->weights[i];
        if (strcmp(w->name, w->onnx_name) == 0 && !w->transposed) continue;
        if (!any) fprintf(f, "# Weights named or laid out differently from the ONNX file:\n");
        any = true;
        fprintf(f, "#   %s: ONNX '%s'%s\n", w->name, fe_imp_printable(e, w->onnx_name),
                w->transposed ? ", transposed to [out, in] for linear" : "");
    }
}

static void declarations(fe_imp_em *e, FILE *f)
{
    fe_imp *p = &e->p;
    const fe_onnx_model *m = p->m;
    for (int i = 0; i < m->n_inputs; i++) {
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, m->inputs[i].name));
        int drop = drops(e, v);
        bool f32 = v->dtype == FE_ONNX_FLOAT || v->dtype == FE_ONNX_BOOL;
        fprintf(f, "    input %s: %s%s", e->in_decl[i], f32 ? "f32" : "i32",
                fe_imp_int_list_text(e, v->dims + drop, v->rank - drop));
        if (v->dtype != FE_ONNX_FLOAT)
            fprintf(f, "    # ONNX %s%s", fe_onnx_dtype_name(v->dtype),
                    v->dtype == FE_ONNX_BOOL ? ": 0 or 1" : "");
        if (strcmp(e->in_decl[i], v->name) != 0)
            fprintf(f, "    # ONNX name '%s'", fe_imp_printable(e, v->name));
        fputc('\n', f);
    }
    for (int i = 0; i < m->n_outputs; i++) {
        fe_imp_value *v = fe_imp_v(p, fe_imp_find(p, m->outputs[i].name));
        int drop = drops(e, v);
        bool logits = strstr(v->name, "logits") != NULL;
        fprintf(f, "    output %s: f32%s%s", e->out_decl[i],
                fe_imp_int_list_text(e, v->dims + drop, v->rank - drop), logits ? " @logits" : "");
        if (v->dtype != FE_ONNX_FLOAT && v->dtype)
            fprintf(f, "    # ONNX %s%s", fe_onnx_dtype_name(v->dtype),
                    v->dtype == FE_ONNX_BOOL ? ": 0 or 1" : ", as floats");
        if (strcmp(e->out_decl[i], v->name) != 0)
            fprintf(f, "    # ONNX name '%s'", fe_imp_printable(e, v->name));
        fputc('\n', f);
    }
}

static bool check_opsets(fe_imp_em *e)
{
    const fe_onnx_model *m = e->p.m;
    int64_t v = fe_onnx_opset_version(m, "");
    if (v > MAX_OPSET)
        return err(e, "the model uses operator set ai.onnx %lld; qmc handles ai.onnx 1 to %d",
                   (long long)v, MAX_OPSET);
    return true;
}

bool fe_onnx_import(sup_arena *arena, const fe_onnx_model *m, const fe_onnx_import_options *o,
                    fe_onnx_imported *out)
{
    memset(out, 0, sizeof *out);
    fe_onnx_model lowered;
    fe_imp_lower_quantized(arena, m, &lowered);
    m = &lowered;
    fe_imp_em e = {.p = {.arena = arena, .m = m, .budget = FE_IMP_FOLD_BUDGET}, .o = o};
    if (!check_opsets(&e) || !setup_values(&e) || !setup_inputs(&e)) return false;
    for (int n = 0; n < m->n_nodes; n++)
        if (!fe_imp_cnn_fold(&e.p, n)) fe_imp_fold_node(&e.p, n);
    for (int n = 0; n < m->n_nodes; n++) fe_imp_match_node(&e.p, n);
    mark_live(&e);
    char *body = NULL;
    size_t body_len = 0;
    e.body = open_memstream(&body, &body_len);
    if (!e.body) return err(&e, "out of memory");
    reserve_names(&e);
    emit_nodes(&e);
    emit_outputs(&e);
    fclose(e.body);
    for (int i = 0; i < e.n_bad; i++) {
        const fe_onnx_node *nd = &m->nodes[e.bad[i].node];
        err(&e, "node %s (%s%s%s, opset %lld): not supported%s%s",
            fe_imp_printable(&e, fe_onnx_node_label(arena, m, nd)),
            *nd->domain ? fe_imp_printable(&e, nd->domain) : "", *nd->domain ? "." : "",
            nd->op_type, (long long)nd->opset, e.bad[i].why ? ": " : "",
            e.bad[i].why ? e.bad[i].why : "");
    }
    if (e.failed) {
        free(body);
        return false;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        free(body);
        return err(&e, "out of memory");
    }
    header(&e, f);
    const char *name = o->model_name ? fe_imp_ident_base(arena, o->model_name) : "imported";
    if (fe_imp_in_set(name, fe_imp_reserved)) name = sup_arena_printf(arena, "%s_", name);
    fprintf(f, "model %s {\n", name);
    if (e.n_weights)
        fprintf(f, "    weights \"%s\"\n\n",
                o->weights_file ? o->weights_file : "weights.safetensors");
    declarations(&e, f);
    fprintf(f, "\n%s}\n", body);
    fclose(f);
    free(body);
    out->text = sup_arena_strndup(arena, text, len);
    out->len = len;
    free(text);
    out->weights = e.weights;
    out->n_weights = e.n_weights;
    return true;
}
