/* header.c: the C header of a compiled model (--emit obj, lib, shared).
 *
 * The header alone is enough to call the model: it embeds the runtime's type
 * declarations (qmc_status, qmc_model_desc) under the same include guard as
 * qmc_runtime.h, states every input's and output's dtype and shape as
 * macros and in comments, the workspace size, and the status codes. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"

extern const char cg_runtime_types[];

const char *cg_symbol_prefix(sup_arena *arena, const ir_graph *g)
{
    char *p = sup_arena_strdup(arena, g->name);
    for (char *s = p; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_') *s = '_';
    if (isdigit((unsigned char)p[0])) p = sup_arena_printf(arena, "m_%s", p);
    return p;
}

static const char *upper(sup_arena *arena, const char *s)
{
    char *u = sup_arena_strdup(arena, s);
    for (char *p = u; *p; p++) *p = (char)toupper((unsigned char)*p);
    return u;
}

static const char *c_type(qmc_dtype d) { return d == QMC_DTYPE_I32 ? "int32_t" : "float"; }

static const char *dtype_macro(qmc_dtype d)
{
    return d == QMC_DTYPE_I32 ? "QMC_DTYPE_I32" : "QMC_DTYPE_F32";
}

static void port_macros(FILE *f, sup_arena *arena, const char *pfx, const char *kind,
                        const ir_port *p, bool rows)
{
    const char *m =
        sup_arena_printf(arena, "%s_%s_%s", pfx, kind,
                         upper(arena, cg_symbol_prefix(arena, &(ir_graph){.name = p->name})));
    int64_t count = 1;
    fprintf(f, "#define %s_DTYPE %s\n#define %s_RANK %d\n#define %s_SHAPE {", m,
            dtype_macro(p->dtype), m, p->rank, m);
    for (int d = 0; d < p->rank; d++)
        fprintf(f, "%s%lld", d ? ", " : "", (long long)p->shape[d]), count *= p->shape[d];
    fprintf(f, "}\n#define %s_COUNT %lld\n", m, (long long)count);
    if (rows) /* a model with a sequence: one row per token */
        fprintf(f, "#define %s_ROW %lld /* elements per token */\n", m,
                (long long)(count / p->shape[0]));
}

static void port_comment(FILE *f, const ir_port *p, const char *note)
{
    char shape[RT_SHAPE_STR_MAX];
    fprintf(f, " *   %-12s %s%s\n", p->name,
            rt_shape_str(p->dtype, p->rank, p->shape, shape, sizeof shape), note);
}

/* The usage comment and the entry points of a model without a sequence. */
static void run_api(FILE *f, const ir_graph *g, const char *px, const char *PX, bool comment)
{
    if (comment) {
        fprintf(
            f,
            " *\n * Usage:\n *   static _Alignas(64) unsigned char workspace[%s_WORKSPACE_SIZE];\n",
            PX);
        fprintf(f, " *   qmc_status st = %s_run(", px);
        for (int i = 0; i < g->n_inputs; i++) fprintf(f, "%s, ", g->inputs[i].name);
        for (int o = 0; o < g->n_outputs; o++) fprintf(f, "%s, ", g->outputs[o].name);
        fprintf(f,
                "workspace);\n *\n * Status: QMC_OK (0) on success; QMC_ERR_INVALID_ARGUMENT (1) "
                "for a null\n"
                " * pointer or an index input out of range; QMC_ERR_CPU (6) if this CPU lacks\n"
                " * a feature the code was compiled for; QMC_ERR_IO (2) if the weights file\n"
                " * of a --weights-file model is not loaded (qmc_load_weights).\n"
                " * The workspace must not be shared by concurrent runs. Link with the\n"
                " * runtime (libqmc_rt.a) unless it is inside the library. */\n");
        return;
    }
    fprintf(f,
            "\n/* The typed entry point: inputs, then outputs, then the workspace. */\nqmc_status "
            "%s_run(",
            px);
    for (int i = 0; i < g->n_inputs; i++)
        fprintf(f, "const %s *%s, ", c_type(g->inputs[i].dtype), g->inputs[i].name);
    for (int o = 0; o < g->n_outputs; o++)
        fprintf(f, "%s *%s, ", c_type(g->outputs[o].dtype), g->outputs[o].name);
    fprintf(f,
            "void *workspace);\n/* The same with arrays of pointers, in declaration order. */\n");
    fprintf(
        f,
        "qmc_status %s_run_v(const void *const *inputs, void *const *outputs, void *workspace);\n",
        px);
}

/* The same for a model with a sequence: reset and step over a state. */
static void step_api(FILE *f, const ir_graph *g, const char *px, const char *PX, bool comment)
{
    if (comment) {
        fprintf(f,
                " *\n * A model with a sequence: each step takes n tokens (1 to what is left of\n"
                " * the %lld-token context) at the state's position and advances it; each output\n"
                " * receives the last `rows` of its n rows. Usage (generation):\n"
                " *   static _Alignas(64) unsigned char state[%s_STATE_SIZE];\n"
                " *   static _Alignas(64) unsigned char workspace[%s_WORKSPACE_SIZE];\n"
                " *   %s_reset(state);\n"
                " *   %s_step(state, prompt, n, ..., last_row, 1, workspace);   prefill\n"
                " *   %s_step(state, &token, 1, ..., last_row, 1, workspace);   each new token\n"
                " *\n * Status: QMC_OK (0) on success; QMC_ERR_INVALID_ARGUMENT (1) for a null\n"
                " * pointer, a state never reset, n < 1, rows outside 0..n or a token out of\n"
                " * range; QMC_ERR_CONTEXT (8) when the tokens do not fit in the context (the\n"
                " * state is then unchanged); QMC_ERR_CPU (6) if this CPU lacks a feature the\n"
                " * code was compiled for; QMC_ERR_IO (2) if the weights file of a\n"
                " * --weights-file model is not loaded. A state and a workspace serve one\n"
                " * caller at a time. Link with the runtime (libqmc_rt.a) unless it is\n"
                " * inside the library. */\n",
                (long long)g->context, PX, PX, px, px, px);
        return;
    }
    fprintf(f,
            "\n/* Starts the sequence over (position 0). */\nqmc_status %s_reset(void *state);\n",
            px);
    fprintf(f,
            "/* n tokens at the state's position: inputs of n rows, then outputs that get\n"
            " * their last `rows` rows (0 <= rows <= n). */\nqmc_status %s_step(void *state, ",
            px);
    for (int i = 0; i < g->n_inputs; i++)
        fprintf(f, "const %s *%s, ", c_type(g->inputs[i].dtype), g->inputs[i].name);
    fprintf(f, "int64_t n, ");
    for (int o = 0; o < g->n_outputs; o++)
        fprintf(f, "%s *%s, ", c_type(g->outputs[o].dtype), g->outputs[o].name);
    fprintf(f, "int64_t rows, void *workspace);\n/* The same with arrays of pointers. */\n");
    fprintf(f,
            "qmc_status %s_step_v(void *state, const void *const *inputs, int64_t n, void *const "
            "*outputs,\n    int64_t rows, void *workspace);\n",
            px);
    fprintf(f, "/* The position of the next token (-1 before the first reset). */\n"
               "int64_t qmc_model_position(const qmc_model_desc *model, const void *state);\n");
}

static void write_body(FILE *f, sup_arena *arena, const ir_graph *g, const ir_plan *plan,
                       const cg_target *t, const char *name)
{
    const char *px = cg_symbol_prefix(arena, g), *PX = upper(arena, px);
    bool seq = g->n_steps > 0;
    ir_port *ins = sup_arena_alloc(arena, sizeof *ins * (size_t)(g->n_inputs + 1));
    ir_port *outs = sup_arena_alloc(arena, sizeof *outs * (size_t)(g->n_outputs + 1));
    for (int i = 0; i < g->n_inputs; i++)
        ins[i] = g->inputs[i], ins[i].shape[0] = seq ? g->context : ins[i].shape[0];
    for (int o = 0; o < g->n_outputs; o++)
        outs[o] = g->outputs[o], outs[o].shape[0] = seq ? g->context : outs[o].shape[0];
    int64_t workspace = seq ? ir_sequence_workspace(arena, g).size : plan->workspace_size;
    int64_t peak = plan->peak_live_bytes;
    for (int s = 0; s < g->n_steps; s++)
        if (g->steps[s].plan.peak_live_bytes > peak) peak = g->steps[s].plan.peak_live_bytes;
    fprintf(f, "/* %s: generated by qmc %s from %s; do not edit.\n *\n", name, QMC_VERSION,
            g->source);
    fprintf(f,
            " * Model '%s' compiled for %s, cpu %s.\n *\n * Inputs (C order, in this order%s):\n",
            g->name, t->triple, t->cpu, seq ? "; the first dimension is the tokens of a step" : "");
    for (int i = 0; i < g->n_inputs; i++) port_comment(f, &ins[i], "");
    fprintf(f, " * Outputs:\n");
    for (int o = 0; o < g->n_outputs; o++)
        port_comment(f, &outs[o], outs[o].logits ? "  (logits)" : "");
    (seq ? step_api : run_api)(f, g, px, PX, true);
    fprintf(f,
            "#ifndef QMC_MODEL_%s_H\n#define QMC_MODEL_%s_H\n\n#include <stddef.h>\n#include "
            "<stdint.h>\n\n",
            PX, PX);
    fprintf(f, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n%s\n\n", cg_runtime_types);
    fprintf(f,
            "/* Activations share the workspace by liveness: the most bytes alive at once\n"
            " * are %lld, the workspace is %lld. */\n",
            (long long)peak, (long long)workspace);
    fprintf(f, "#define %s_WORKSPACE_SIZE %lld /* bytes, 64-byte aligned */\n", PX,
            (long long)workspace);
    fprintf(f, "#define %s_PEAK_LIVE_BYTES %lld /* the most activation bytes alive at once */\n",
            PX, (long long)peak);
    if (seq) {
        fprintf(f, "#define %s_CONTEXT %lld /* the most tokens a sequence holds */\n", PX,
                (long long)g->context);
        fprintf(f, "#define %s_STATE_SIZE %lld /* bytes, 64-byte aligned: the KV caches (%s) */\n",
                PX, (long long)ir_state_layout(arena, g).size, rt_kv_format_name(g->kv_format));
    }
    fprintf(f, "#define %s_NUM_INPUTS %d\n#define %s_NUM_OUTPUTS %d\n", PX, g->n_inputs, PX,
            g->n_outputs);
    for (int i = 0; i < g->n_inputs; i++) port_macros(f, arena, PX, "INPUT", &ins[i], seq);
    for (int o = 0; o < g->n_outputs; o++) port_macros(f, arena, PX, "OUTPUT", &outs[o], seq);
    (seq ? step_api : run_api)(f, g, px, PX, false);
    fprintf(f,
            "/* The model's description (names, shapes, workspace, target). */\nextern const "
            "qmc_model_desc %s_model;\n\n",
            px);
    fprintf(f, "/* From the runtime: worker threads for the kernels (default 1), the loader\n"
               " * of a weights file kept outside the code (--weights-file), 64-byte aligned\n"
               " * buffers for a workspace or a state, and what a status means. */\n"
               "qmc_status qmc_set_num_threads(int n);\n"
               "qmc_status qmc_load_weights(const qmc_model_desc *model, const char *path);\n"
               "void *qmc_workspace_alloc(size_t size);\n"
               "void qmc_workspace_free(void *workspace);\n"
               "const char *qmc_status_string(qmc_status status);\n\n");
    fprintf(f, "#ifdef __cplusplus\n}\n#endif\n#endif\n");
}

bool cg_write_header(sup_arena *arena, const ir_graph *g, const ir_plan *plan, const cg_target *t,
                     const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        sup_error_plain("out of memory");
        return false;
    }
    const char *slash = strrchr(path, '/');
    write_body(f, arena, g, plan, t, slash ? slash + 1 : path);
    fclose(f);
    bool written = cg_write_file(path, buf, len);
    free(buf);
    return written;
}
