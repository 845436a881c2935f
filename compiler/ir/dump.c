/* dump.c: the textual form of the graph IR (`qmc inspect`, --dump-ir,
 * --dump-after=PASS). One line per node:
 *
 *   %3 fc1 = linear %0, %1, %2 : f32[256]  {attrs}  ; 7:10
 *
 * Index, unique name, op, operands, result type, attributes, and the source
 * line:col the node came from. The format is stable: tests compare it. */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* The shortest decimal form that reads back as the same float. */
static const char *fmt_float(float v, char *buf, size_t size)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtof(buf, NULL) == v) break;
    }
    return buf;
}

/* A weight's annotation, the codes it came with (an imported quantized
 * model), and once the precision pass has run on a weight matrix its
 * chosen format, and once quantized its bits per weight. */
static void print_weight_attrs(FILE *out, const ir_node *n)
{
    char f[32];
    const char *sep = " {";
    if (n->precision) fprintf(out, "%sprecision=%s", sep, n->precision), sep = ", ";
    const fe_quantized *q = n->op == IR_OP_WEIGHT && n->tensor ? n->tensor->given : NULL;
    if (q) /* codes that came with the model (docs/onnx.md) */
        fprintf(out, "%scodes=\"%s%s%s: %s\"", sep,
                q->fp8         ? (q->fp8 == FE_ONNX_FLOAT8E5M2 ? "fp8e5m2" : "fp8e4m3")
                : q->bits == 8 ? "int8"
                               : "int4",
                q->bits == 4 ? (q->group == 32   ? ":g32"
                                : q->group == 64 ? ":g64"
                                                 : ":g128")
                             : "",
                q->asym ? ":asym" : "", q->how),
            sep = ", ";
    if (n->is_matrix) {
        sup_arena scratch = {0};
        fprintf(out, "%sformat=%s", sep, q_precision_name(&scratch, &n->qformat)), sep = ", ";
        sup_arena_free(&scratch);
    }
    if (n->is_matrix && n->qformat.act8 && n->qformat.act_scale > 0)
        fprintf(out, "%sact_scale=%s", sep, fmt_float(n->qformat.act_scale, f, sizeof f)),
            sep = ", ";
    if (n->qw)
        fprintf(out, "%sbits=%s", sep, fmt_float((float)n->qw->bits_per_weight, f, sizeof f)),
            sep = ", ";
    if (sep[0] == ',') fputc('}', out);
}

/* After calibration: the range an activation took and the int8 clip chosen. */
static void print_calib(FILE *out, const ir_graph *g, int i)
{
    const ir_calib_stats *s = g->calib ? g->calib->of_node[i] : NULL;
    if (!s) return;
    char a[32], b[32], c[32];
    fprintf(out, " {range=[%s, %s], clip=%s}", fmt_float(s->min, a, sizeof a),
            fmt_float(s->max, b, sizeof b), fmt_float((float)s->clip, c, sizeof c));
}

static void print_attrs(FILE *out, const ir_node *n)
{
    char f[32];
    switch (n->op) {
    case IR_OP_CONST: fprintf(out, " {value=%s}", fmt_float(n->attr.value, f, sizeof f)); break;
    case IR_OP_SOFTMAX:
    case IR_OP_GATHER: fprintf(out, " {axis=%d}", n->attr.axis); break;
    case IR_OP_UNARY:
        if (n->attr.fn == IR_UN_LEAKY_RELU)
            fprintf(out, " {alpha=%s}", fmt_float(n->attr.alpha, f, sizeof f));
        if (n->attr.fn == IR_UN_HARD_SIGMOID) {
            char g[32];
            fprintf(out, " {alpha=%s, beta=%s}", fmt_float(n->attr.alpha, f, sizeof f),
                    fmt_float(n->attr.beta, g, sizeof g));
        }
        if (n->attr.fn == IR_UN_CLIP) {
            char g[32];
            fprintf(out, " {min=%s, max=%s}", fmt_float(n->attr.alpha, f, sizeof f),
                    fmt_float(n->attr.beta, g, sizeof g));
        }
        break;
    case IR_OP_REDUCE: {
        const char *sep = "";
        fprintf(out, " {axes=[");
        for (int d = 0; d < IR_MAX_RANK; d++)
            if (n->attr.axes >> d & 1) fprintf(out, "%s%d", sep, d), sep = ", ";
        fprintf(out, "]%s}", n->attr.keepdims ? ", keepdims" : "");
        break;
    }
    case IR_OP_CONCAT: fprintf(out, " {axis=%d}", n->attr.axis); break;
    case IR_OP_LAYERNORM:
    case IR_OP_RMSNORM: fprintf(out, " {eps=%s}", fmt_float(n->attr.eps, f, sizeof f)); break;
    case IR_OP_SLICE:
        fprintf(out, " {axis=%d, start=%lld, end=%lld}", n->attr.axis, (long long)n->attr.start,
                (long long)n->attr.end);
        break;
    case IR_OP_TRANSPOSE:
        fprintf(out, " {perm=[");
        for (int i = 0; i < n->rank; i++)
            fprintf(out, "%s%lld", i ? ", " : "", (long long)n->attr.perm[i]);
        fprintf(out, "]}");
        break;
    case IR_OP_ATTENTION:
        fprintf(out, " {heads=%d", n->attr.heads);
        if (n->attr.kv_heads != n->attr.heads) fprintf(out, ", kv_heads=%d", n->attr.kv_heads);
        fprintf(out, ", causal=%s, scale=%s", n->attr.causal ? "true" : "false",
                fmt_float(n->attr.scale, f, sizeof f));
        if (n->attr.cached) fprintf(out, ", cache=%d", n->attr.slot);
        fputc('}', out);
        break;
    case IR_OP_ROPE:
        fprintf(out, " {heads=%d, theta=%s%s}", n->attr.heads,
                fmt_float(n->attr.theta, f, sizeof f), n->attr.interleaved ? ", interleaved" : "");
        break;
    case IR_OP_WEIGHT: print_weight_attrs(out, n); break;
    default: break;
    }
}

void ir_dump(FILE *out, const ir_graph *g)
{
    char shape[RT_SHAPE_STR_MAX];
    fprintf(out, "model %s\n", g->name);
    if (g->weights_spec) fprintf(out, "weights \"%s\"\n", g->weights_spec);
    if (g->context)
        fprintf(out, "sequence %s = %lld <= %lld, %d cache%s\n", g->seq_name, (long long)g->seq_len,
                (long long)g->context, g->n_caches, g->n_caches == 1 ? "" : "s");
    for (int i = 0; i < g->n_inputs; i++) {
        const ir_port *p = &g->inputs[i];
        fprintf(out, "input %s = %%%d : %s\n", p->name, p->node,
                rt_shape_str(p->dtype, p->rank, p->shape, shape, sizeof shape));
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        fprintf(out, "%%%d %s = %s", i, n->name ? n->name : "?", ir_node_op_name(n));
        for (int j = 0; j < n->n_inputs; j++) fprintf(out, "%s%%%d", j ? ", " : " ", n->inputs[j]);
        fprintf(out, " : %s", rt_shape_str(n->dtype, n->rank, n->shape, shape, sizeof shape));
        print_attrs(out, n);
        print_calib(out, g, i);
        if (n->loc.line) fprintf(out, "  ; %d:%d", n->loc.line, n->loc.col);
        fputc('\n', out);
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const ir_port *p = &g->outputs[i];
        fprintf(out, "output %s = %%%d : %s%s\n", p->name, p->node,
                rt_shape_str(p->dtype, p->rank, p->shape, shape, sizeof shape),
                p->logits ? " @logits" : "");
    }
}
