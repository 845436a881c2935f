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
    if (n->is_matrix && n->qformat.act8 && n->qformat.act_model)
        fprintf(out, "%sact_zero=%d, act_origin=model", sep, n->qformat.act_zero), sep = ", ";
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

/* [a, b] of a window attribute, [b] for a 1-D op (whose height is 1). */
static void print_pair(FILE *out, const char *name, const int64_t *v, int spatial)
{
    if (spatial == 1)
        fprintf(out, "%s=[%lld]", name, (long long)v[1]);
    else
        fprintf(out, "%s=[%lld, %lld]", name, (long long)v[0], (long long)v[1]);
}

static void print_window(FILE *out, const ir_node *n)
{
    const ir_window *w = &n->attr.win;
    char f[32], g[32];
    if (n->op == IR_OP_GLOBAL_AVGPOOL && !w->nhwc) return;
    fputs(" {", out);
    if (n->op != IR_OP_GLOBAL_AVGPOOL) {
        print_pair(out, "kernel", w->kernel, w->spatial);
        print_pair(out, ", stride", w->stride, w->spatial);
        if (w->spatial == 1)
            fprintf(out, ", pads=[%lld, %lld]", (long long)w->pad[1], (long long)w->pad[3]);
        else
            fprintf(out, ", pads=[%lld, %lld, %lld, %lld]", (long long)w->pad[0],
                    (long long)w->pad[1], (long long)w->pad[2], (long long)w->pad[3]);
        if (w->dilation[0] != 1 || w->dilation[1] != 1)
            print_pair(out, ", dilation", w->dilation, w->spatial);
    }
    if (n->op == IR_OP_CONV || n->op == IR_OP_CONV_TRANSPOSE)
        fprintf(out, ", groups=%lld", (long long)w->groups);
    if (n->op == IR_OP_CONV_TRANSPOSE && (w->out_pad[0] || w->out_pad[1]))
        print_pair(out, ", output_padding", w->out_pad, w->spatial);
    if (w->ceil_mode) fputs(", ceil_mode", out);
    if (n->op == IR_OP_AVGPOOL && w->count_include_pad) fputs(", count_include_pad", out);
    if (w->act == IR_ACT_RELU) fputs(", act=relu", out);
    if (w->act == IR_ACT_HARDSWISH) fputs(", act=hardswish", out);
    if (w->act == IR_ACT_CLIP)
        fprintf(out, ", act=clip(%s, %s)", fmt_float(w->act_min, f, sizeof f),
                fmt_float(w->act_max, g, sizeof g));
    if (w->post)
        fprintf(out, ", post=(* %s + %s)", fmt_float(w->post_mul, f, sizeof f),
                fmt_float(w->post_add, g, sizeof g));
    if (w->nhwc) fprintf(out, "%slayout=nhwc", n->op == IR_OP_GLOBAL_AVGPOOL ? "" : ", ");
    fputc('}', out);
}

static void print_cnn_attrs(FILE *out, const ir_node *n)
{
    const ir_cnn_attrs *a = &n->attr.cnn;
    char f[32], g[32];
    static const char *const modes[] = {"nearest", "linear"};
    static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
                                         "asymmetric"};
    static const char *const nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"};
    static const char *const pad_modes[] = {"constant", "reflect", "edge"};
    switch (n->op) {
    case IR_OP_RESIZE:
        fprintf(out, " {scales=[");
        for (int d = 0; d < n->rank; d++)
            fprintf(out, "%s%s", d ? ", " : "", fmt_float(a->scales[d], f, sizeof f));
        fprintf(out, "], mode=%s, coordinates=%s", modes[a->mode], coords[a->coord]);
        if (a->mode == IR_RESIZE_NEAREST) fprintf(out, ", nearest=%s", nearest[a->nearest]);
        fputc('}', out);
        break;
    case IR_OP_PAD:
        fprintf(out, " {pads=[");
        for (int d = 0; d < 2 * n->rank; d++)
            fprintf(out, "%s%lld", d ? ", " : "", (long long)a->pads[d]);
        fprintf(out, "], mode=%s", pad_modes[a->pad_mode]);
        if (a->pad_mode == IR_PAD_CONSTANT)
            fprintf(out, ", value=%s", fmt_float(a->pad_value, f, sizeof f));
        fputc('}', out);
        break;
    case IR_OP_HARDSIGMOID:
        fprintf(out, " {alpha=%s, beta=%s}", fmt_float(a->alpha, f, sizeof f),
                fmt_float(a->beta, g, sizeof g));
        break;
    case IR_OP_BATCHNORM:
        fprintf(out, " {eps=%s%s}", fmt_float(n->attr.eps, f, sizeof f),
                n->attr.win.nhwc ? ", layout=nhwc" : "");
        break;
    default:
        if (ir_is_windowed(n->op)) print_window(out, n);
        break;
    }
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
    default:
        if (ir_is_cnn_op(n->op)) print_cnn_attrs(out, n);
        break;
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
