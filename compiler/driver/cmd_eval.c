/* cmd_eval.c: `qmc eval` measures a model's quality on labelled data with
 * the reference interpreter, so the cost of a precision choice can be read
 * as a number a user cares about:
 *
 *   qmc eval MODEL.qm --metric accuracy --input x=X.npy --labels Y.npy
 *       top-1 accuracy of a classifier over a batch (or, with
 *       --predictions P.npy, of outputs computed elsewhere: by a compiled
 *       model)
 *   qmc eval MODEL.qm --metric perplexity --tokens TOKENS.npy
 *       next-token perplexity of a language model whose input is T token
 *       ids and whose output is [T, V] logits, over consecutive sequences
 *       tokens[sT : sT+T] predicting tokens[sT+1 : sT+T+1]
 *   qmc eval MODEL.qm --metric error --input NAME=X.npy ... --precision SPEC
 *       how far the outputs of the chosen precision are from f32 on these
 *       inputs: mean KL for @logits outputs, relative RMS otherwise (the
 *       measure --max-error uses on the calibration set) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

enum { MAX_INPUTS = 64 };

typedef struct eval_args {
    const char *model, *metric, *labels, *tokens, *output, *predictions;
    pass_options po;
    const char *inputs[MAX_INPUTS];
    int n_inputs;
    int64_t max_sequences;
} eval_args;

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: qmc eval MODEL.qm --metric accuracy --input NAME=X.npy ... --labels Y.npy "
        "[--output NAME]\n"
        "       qmc eval MODEL.qm --metric accuracy --predictions OUT.npy --labels Y.npy [--output "
        "NAME]\n"
        "       qmc eval MODEL.qm --metric perplexity --tokens TOKENS.npy [--sequences N]\n"
        "       qmc eval MODEL.qm --metric error --input NAME=X.npy ... [--output NAME]\n\n"
        "Measures top-1 accuracy of a classifier, next-token perplexity of a language model, or\n"
        "the output error of the chosen precision against f32, with the reference interpreter.\n"
        "  --weights FILE   use this safetensors file instead of the model's `weights`\n"
        "  --seq N          a model with `sequence T <= C`: calls of N tokens (default C)\n"
        "  --kv-cache FORMAT... its KV caches: f32 (default), int8 or fp8e4m3\n"
        "  --precision SPEC simulate the weight precision `qmc compile --precision SPEC` "
        "uses\n");
    cli_precision_usage(f);
    cli_import_usage(f);
}

static bool parse_args(int argc, char **argv, eval_args *a)
{
    static const char *const known[] = {"--metric",
                                        "--input",
                                        "--labels",
                                        "--tokens",
                                        "--output",
                                        "--predictions",
                                        "--sequences",
                                        "--weights",
                                        "--seq",
                                        "--kv-cache",
                                        "--precision",
                                        "--help",
                                        "--calib",
                                        "--calib-method",
                                        "--budget-bits",
                                        "--max-error",
                                        "--sensitivity-samples",
                                        "--sensitivity",
                                        "--report",
                                        "-v",
                                        "--shape",
                                        "--drop-batch",
                                        NULL};
    cli c = {argc, argv, 1, "eval", false};
    const char *v;
    while (c.i < c.argc && !c.failed) {
        if (cli_flag(&c, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (cli_value(&c, "--metric", &a->metric) || cli_value(&c, "--labels", &a->labels) ||
            cli_value(&c, "--tokens", &a->tokens) || cli_value(&c, "--output", &a->output) ||
            cli_value(&c, "--predictions", &a->predictions) ||
            cli_value(&c, "--weights", &a->po.weights_override) || cli_seq(&c, &a->po.seq_len) ||
            cli_kv_cache(&c, &a->po.kv_format) || cli_precision_flag(&c, &a->po.prec) ||
            cli_import_flag(&c, &a->po.import))
            continue;
        if (cli_value(&c, "--sequences", &v)) {
            char *end;
            a->max_sequences = strtoll(v, &end, 10);
            if (*end || a->max_sequences < 1) {
                sup_error_plain("--sequences needs a positive integer, not '%s'", v);
                return false;
            }
            continue;
        }
        if (cli_value(&c, "--input", &v)) {
            if (a->n_inputs == MAX_INPUTS) {
                sup_error_plain("too many --input options");
                return false;
            }
            a->inputs[a->n_inputs++] = v;
            continue;
        }
        if (c.failed) break; /* an option lacked its value */
        if (c.argv[c.i][0] == '-' || a->model) {
            cli_unknown(&c, known);
            continue;
        }
        a->model = c.argv[c.i++];
    }
    if (c.failed) return false;
    if (!a->model || !a->metric) {
        usage(stderr);
        return false;
    }
    if (strcmp(a->metric, "accuracy") && strcmp(a->metric, "perplexity") &&
        strcmp(a->metric, "error")) {
        sup_error_plain("unknown metric '%s' (metrics: accuracy, perplexity, error)", a->metric);
        return false;
    }
    if (!strcmp(a->metric, "accuracy") && !a->labels) {
        sup_error_plain("--metric accuracy needs --labels Y.npy");
        return false;
    }
    if (a->predictions && strcmp(a->metric, "accuracy")) {
        sup_error_plain("--predictions goes with --metric accuracy");
        return false;
    }
    if (a->predictions && a->n_inputs) {
        sup_error_plain("--predictions replaces running the model: give it or --input, not both");
        return false;
    }
    if (!strcmp(a->metric, "perplexity") && !a->tokens) {
        sup_error_plain("--metric perplexity needs --tokens TOKENS.npy");
        return false;
    }
    if (!strcmp(a->metric, "error") && !a->n_inputs) {
        sup_error_plain("--metric error needs --input NAME=X.npy");
        return false;
    }
    return cli_precision_check(&a->po.prec);
}

/* Maps a 1-D int32/int64 .npy file and returns its values as int64. */
static int64_t *read_ints(const char *path, int64_t *count)
{
    rt_mapped_file f;
    rt_npy_header h;
    char err[256];
    if (rt_file_map(path, &f, err, sizeof err) != QMC_OK) {
        sup_error_plain("%s: %s", path, err);
        return NULL;
    }
    if (rt_npy_parse(f.data, f.size, &h, err, sizeof err) != QMC_OK) {
        sup_error_plain("%s: malformed .npy file: %s", path, err);
        rt_file_unmap(&f);
        return NULL;
    }
    if (h.rank != 1 || (h.dtype != QMC_DTYPE_I32 && h.dtype != QMC_DTYPE_I64)) {
        sup_error_plain("%s: expected a 1-D int32 or int64 array, found %s with %d dimensions",
                        path, qmc_dtype_name(h.dtype), h.rank);
        rt_file_unmap(&f);
        return NULL;
    }
    int64_t *v = malloc(sizeof *v * (size_t)(h.count + 1));
    if (!v) {
        sup_error_plain("%s: out of memory for %lld values", path, (long long)h.count);
        rt_file_unmap(&f);
        return NULL;
    }
    for (int64_t i = 0; i < h.count; i++) {
        if (h.dtype == QMC_DTYPE_I32) {
            int32_t x;
            memcpy(&x, f.data + h.data_offset + i * 4, 4);
            v[i] = x;
        } else {
            memcpy(&v[i], f.data + h.data_offset + i * 8, 8);
        }
    }
    *count = h.count;
    rt_file_unmap(&f);
    return v;
}

static int find_output(const ir_graph *g, const char *name)
{
    if (!name) return 0;
    for (int o = 0; o < g->n_outputs; o++)
        if (!strcmp(g->outputs[o].name, name)) return o;
    sup_error_plain("the model has no output '%s'", name);
    return -1;
}

/* Top-1 accuracy of [n][classes] scores against labels. */
static void print_accuracy(const float *scores, int64_t n, int64_t classes, const int64_t *labels)
{
    int64_t correct = 0;
    for (int64_t r = 0; r < n; r++) {
        const float *row = scores + r * classes;
        int64_t best = 0;
        for (int64_t c = 1; c < classes; c++)
            if (row[c] > row[best]) best = c;
        correct += best == labels[r];
    }
    printf("accuracy %.4f (%lld/%lld)\n", (double)correct / (double)n, (long long)correct,
           (long long)n);
}

/* --predictions: a float32 file of [n][classes] scores for the labels. */
static int accuracy_of_file(const eval_args *a, const ir_port *p, const int64_t *labels,
                            int64_t n_labels)
{
    rt_mapped_file f;
    rt_npy_header h;
    char err[256];
    if (rt_file_map(a->predictions, &f, err, sizeof err) != QMC_OK) {
        sup_error_plain("%s: %s", a->predictions, err);
        return 1;
    }
    int status = 1;
    if (rt_npy_parse(f.data, f.size, &h, err, sizeof err) != QMC_OK) {
        sup_error_plain("%s: malformed .npy file: %s", a->predictions, err);
    } else if (h.dtype != QMC_DTYPE_F32 || h.rank != 2 || h.shape[0] != n_labels ||
               h.shape[1] != p->shape[0]) {
        char found[RT_SHAPE_STR_MAX];
        sup_error_plain(
            "%s: expected f32[%lld, %lld] (output '%s' for each of the %lld labels), found %s",
            a->predictions, (long long)n_labels, (long long)p->shape[0], p->name,
            (long long)n_labels, rt_shape_str(h.dtype, h.rank, h.shape, found, sizeof found));
    } else {
        float *scores = malloc(h.data_bytes ? h.data_bytes : 1);
        if (scores) {
            memcpy(scores, f.data + h.data_offset, h.data_bytes);
            print_accuracy(scores, n_labels, p->shape[0], labels);
            free(scores);
            status = 0;
        }
    }
    rt_file_unmap(&f);
    return status;
}

static int eval_accuracy(const eval_args *a, ir_graph *g, interp *it)
{
    int o = find_output(g, a->output);
    if (o < 0) return 1;
    const ir_port *p = &g->outputs[o];
    if (p->rank != 1) {
        sup_error(p->loc, "accuracy needs a 1-D output of class scores");
        return 1;
    }
    interp_file ins[MAX_INPUTS];
    int n = 0, status = 1;
    int64_t batch, n_labels;
    int64_t *labels = read_ints(a->labels, &n_labels);
    if (!labels) return 1;
    if (a->predictions) {
        int st = accuracy_of_file(a, p, labels, n_labels);
        free(labels);
        return st;
    }
    float **stacked = calloc((size_t)g->n_outputs, sizeof *stacked);
    if (!stacked) {
        free(labels);
        sup_error_plain("out of memory");
        return 1;
    }
    if (!interp_files_open(g, a->inputs, a->n_inputs, ins, &batch)) goto done;
    n = a->n_inputs;
    int64_t runs = batch < 0 ? 1 : batch;
    if (runs != n_labels) {
        sup_error_plain("%s holds %lld labels but the inputs hold %lld samples", a->labels,
                        (long long)n_labels, (long long)runs);
        goto done;
    }
    for (int k = 0; k < g->n_outputs; k++) {
        int64_t total;
        if (!__builtin_mul_overflow(ir_node_count(&g->nodes[g->outputs[k].node]), runs, &total) &&
            total <= IR_MAX_ELEMENTS)
            stacked[k] = malloc(sizeof(float) * (size_t)total);
        if (!stacked[k]) {
            sup_error_plain("out of memory for the outputs of %lld samples", (long long)runs);
            goto done;
        }
    }
    if (!interp_run_batches(g, it, ins, n, runs, stacked)) goto done;
    print_accuracy(stacked[o], runs, p->shape[0], labels);
    status = 0;
done:
    for (int i = 0; i < n; i++) interp_file_close(&ins[i]);
    for (int k = 0; k < g->n_outputs; k++) free(stacked[k]);
    free(stacked);
    free(labels);
    return status;
}

/* Cross-entropy of row (length v) at target, computed in double. */
static double cross_entropy(const float *row, int64_t v, int64_t target)
{
    double mx = row[0];
    for (int64_t i = 1; i < v; i++) mx = row[i] > mx ? row[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < v; i++) sum += exp(row[i] - mx);
    return log(sum) + mx - row[target];
}

static int eval_perplexity(const eval_args *a, ir_graph *g, interp *it)
{
    int o = find_output(g, a->output);
    if (o < 0) return 1;
    const ir_port *out = &g->outputs[o];
    if (g->n_inputs != 1) {
        sup_error(
            out->loc,
            "perplexity needs a model with one i32 input of T token ids, but '%s' has %d inputs",
            g->name, g->n_inputs);
        return 1;
    }
    const ir_port *in = &g->inputs[0];
    if (in->dtype != QMC_DTYPE_I32 || in->rank != 1) {
        sup_error(in->loc, "perplexity needs a model with one i32 input of T token ids");
        return 1;
    }
    int64_t t = in->shape[0];
    if (out->rank != 2 || out->shape[0] != t) {
        sup_error(out->loc, "perplexity needs an output of [%lld, vocabulary] logits",
                  (long long)t);
        return 1;
    }
    int64_t vocab = out->shape[1], n_tokens;
    int64_t *tokens = read_ints(a->tokens, &n_tokens);
    if (!tokens) return 1;
    int64_t seqs = (n_tokens - 1) / t;
    if (a->max_sequences && a->max_sequences < seqs) seqs = a->max_sequences;
    if (seqs < 1) {
        free(tokens);
        sup_error_plain("%s holds %lld tokens, fewer than one sequence of %lld plus its target",
                        a->tokens, (long long)n_tokens, (long long)t);
        return 1;
    }
    double total = 0;
    int32_t *ids = interp_input(it, 0);
    for (int64_t s = 0; s < seqs; s++) {
        for (int64_t i = 0; i <= t; i++) {
            int64_t tok = tokens[s * t + i];
            if (tok < 0 || tok >= vocab) {
                sup_error_plain("%s: token %lld at position %lld is outside the vocabulary of %lld",
                                a->tokens, (long long)tok, (long long)(s * t + i),
                                (long long)vocab);
                free(tokens);
                return 1;
            }
            if (i < t) ids[i] = (int32_t)tok;
        }
        if (!interp_run(it)) {
            free(tokens);
            return 1;
        }
        const float *logits = interp_output(it, o);
        for (int64_t i = 0; i < t; i++)
            total += cross_entropy(logits + i * vocab, vocab, tokens[s * t + i + 1]);
    }
    double mean = total / (double)(seqs * t);
    printf("perplexity %.4f (mean cross-entropy %.5f nats over %lld tokens in %lld sequences)\n",
           exp(mean), mean, (long long)(seqs * t), (long long)seqs);
    free(tokens);
    return 0;
}

/* The output error of the quantized interpreter `it` against an f32 one. */
static int eval_error(const eval_args *a, ir_graph *g, interp *it, sup_arena *arena)
{
    int only = a->output ? find_output(g, a->output) : -1;
    if (a->output && only < 0) return 1;
    interp *ref = interp_new(arena, g);
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].is_matrix) interp_set_act8(ref, i, false, 0);
    interp_file ins[MAX_INPUTS];
    int n = 0, status = 1;
    int64_t batch;
    q_error_acc *acc = sup_arena_alloc(arena, sizeof *acc * (size_t)g->n_outputs);
    double **logp = sup_arena_alloc(arena, sizeof *logp * (size_t)g->n_outputs);
    for (int o = 0; o < g->n_outputs; o++)
        logp[o] = sup_arena_alloc(arena, sizeof(double) *
                                             (size_t)ir_node_count(&g->nodes[g->outputs[o].node]));
    if (!interp_files_open(g, a->inputs, a->n_inputs, ins, &batch)) goto done;
    n = a->n_inputs;
    int64_t runs = batch < 0 ? 1 : batch;
    for (int64_t r = 0; r < runs; r++) {
        if (!interp_files_load(g, ref, ins, n, r) || !interp_files_load(g, it, ins, n, r))
            goto done;
        if (!interp_run(ref) || !interp_run(it)) goto done;
        for (int o = 0; o < g->n_outputs; o++) {
            const ir_node *on = &g->nodes[g->outputs[o].node];
            int64_t count = ir_node_count(on), row = on->rank ? on->shape[on->rank - 1] : 1;
            if (g->outputs[o].logits) q_log_softmax(interp_output(ref, o), count, row, logp[o]);
            q_error_add(&acc[o], g->outputs[o].logits, interp_output(ref, o), logp[o],
                        interp_output(it, o), count, row);
        }
    }
    for (int o = 0; o < g->n_outputs; o++) {
        if (only >= 0 && o != only) continue;
        bool lg = g->outputs[o].logits;
        printf("error %.6g (%s of '%s' against f32 over %.0f %s in %lld runs)\n",
               q_error_value(&acc[o], lg), lg ? "mean KL" : "relative RMS", g->outputs[o].name,
               lg ? acc[o].den : (double)runs, lg ? "rows" : "outputs", (long long)runs);
    }
    status = 0;
done:
    for (int i = 0; i < n; i++) interp_file_close(&ins[i]);
    return status;
}

int cli_eval(int argc, char **argv)
{
    eval_args a = {0};
    if (!parse_args(argc, argv, &a)) return 1;
    sup_arena arena = {0};
    int status = 1;
    ir_graph *g = pass_pipeline(&arena, a.model, &a.po, PASS_UNTIL_QUANTIZE);
    if (g) {
        interp *it = interp_new(&arena, g);
        interp_use_quantized_weights(it, g);
        status = strcmp(a.metric, "accuracy") == 0     ? eval_accuracy(&a, g, it)
                 : strcmp(a.metric, "perplexity") == 0 ? eval_perplexity(&a, g, it)
                                                       : eval_error(&a, g, it, &arena);
    }
    sup_arena_free(&arena);
    cli_import_free(&a.po.import);
    return status;
}
