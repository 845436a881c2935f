/* generate.c: main() of an executable compiled from a model with a
 * sequence (libqmc_main.a).
 *
 *   OUT --prompt TEXT | --prompt-file F | --prompt-tokens F.npy
 *       [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
 *       [--stop STRING] [--output-tokens F.npy]
 *   OUT --perplexity TOKENS.npy [--ctx N] [--chunk N]
 *   OUT --input NAME=FILE.npy [--output NAME=FILE.npy]
 *   and [--threads N] [--weights FILE] with each
 *
 * Needs: a model whose one input holds token ids (i32 [T]) and whose first
 * output holds logits (f32 [T, vocabulary]); text is bytes (a vocabulary
 * of 256: token b is byte b).
 * Guarantees: every option is checked before the model runs (a prompt
 * longer than the context, or with the generated tokens beyond it, a token
 * outside the vocabulary, a --top-p outside (0, 1]: a message, exit 1,
 * nothing written); generation streams the text to stdout as it is made
 * and prints the prefill and decode speeds to stderr; the same seed gives
 * the same text with any number of threads (the sampler is sequential and
 * the kernels give the same logits). Files are written atomically, only
 * when everything succeeded. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

typedef struct gen {
    const char *prog;
    const qmc_model_desc *m;
    /* options */
    const char *prompt, *prompt_file, *prompt_tokens, *stop, *output_tokens;
    const char *perplexity, *input, *output, *weights;
    long max_tokens, top_k, ctx, chunk, threads;
    double temperature, top_p;
    uint64_t seed;
    /* the model */
    int64_t vocab;
    void *state, *workspace;
    float *logits; /* [context][vocab] */
    int32_t *tokens;
    int64_t n_tokens;
} gen;

#define FAIL(g, ...) rt_exe_fail((g)->prog, __VA_ARGS__)

/* ---- the command line ------------------------------------------------------ */

static void usage(const gen *g, FILE *f)
{
    fprintf(f,
            "usage: %s --prompt TEXT | --prompt-file F | --prompt-tokens F.npy [--max-tokens N]\n"
            "          [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop STRING]\n"
            "          [--output-tokens F.npy] [--threads N]%s\n"
            "       %s --perplexity TOKENS.npy [--ctx N] [--chunk N]\n"
            "       %s --input NAME=FILE.npy [--output NAME=FILE.npy]\n\n",
            g->prog, g->m->weights_base ? " [--weights FILE]" : "", g->prog, g->prog);
    fprintf(
        f,
        "Runs the model '%s' (a context of %lld tokens) compiled by qmc for cpu '%s'.\n"
        "  --prompt TEXT         generate after this text (bytes are tokens)\n"
        "  --prompt-file F       ... after the bytes of file F\n"
        "  --prompt-tokens F.npy ... after these token ids (int32 or int64)\n"
        "  --max-tokens N        tokens to generate (default 128)\n"
        "  --temperature T       0 (the default) picks the likeliest token; above 0 samples\n"
        "  --top-k K             sample among the K likeliest tokens (default: all)\n"
        "  --top-p P             ... among the fewest whose probabilities reach P (0 < P <= 1)\n"
        "  --seed S              the sampler's seed (default 0): same seed, same text\n"
        "  --stop STRING         stop once the text ends with STRING\n"
        "  --output-tokens F.npy write the generated token ids (int32)\n"
        "  --perplexity F.npy    perplexity over windows of --ctx tokens (default: the\n"
        "                        context), each fed in steps of --chunk tokens (default: whole)\n"
        "  --input, --output     one step over the input's tokens; the outputs of every token\n"
        "  --threads N           worker threads (default: $QMC_NUM_THREADS, else every core)\n",
        g->m->name, (long long)g->m->context, g->m->cpu ? g->m->cpu : "generic");
}

static bool value(gen *g, int argc, char **argv, int *i, const char *name, const char **out)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0 || (a[n] != '=' && a[n] != 0)) return false;
    if (a[n] == '=') {
        *out = a + n + 1;
    } else if (*i + 1 < argc) {
        *out = argv[++*i];
    } else {
        FAIL(g, "option '%s' needs a value", name);
        *out = NULL;
    }
    ++*i;
    return true;
}

static bool number(gen *g, const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end;
    *out = v ? strtod(v, &end) : NAN;
    if (!v || !*v || *end || !(*out >= lo && *out <= hi))
        return FAIL(g, "%s wants a number from %g to %g, got '%s'", opt, lo, hi, v ? v : "");
    return true;
}

static bool count(gen *g, const char *opt, const char *v, long lo, long hi, long *out)
{
    *out = v ? rt_parse_count(v, lo, hi) : -1;
    if (*out < 0)
        return FAIL(g, "%s wants a whole number from %ld to %ld, got '%s'", opt, lo, hi, v);
    return true;
}

static const char *const known[] = {
    "--prompt", "--prompt-file", "--prompt-tokens", "--max-tokens",    "--temperature", "--top-k",
    "--top-p",  "--seed",        "--stop",          "--output-tokens", "--perplexity",  "--ctx",
    "--chunk",  "--input",       "--output",        "--threads",       "--weights",     "--help"};

/* 0 to go on, 1 on an error, -1 after --help. */
static int parse_args(gen *g, int argc, char **argv)
{
    for (int i = 1; i < argc;) {
        const char *v = NULL;
        double d;
        bool ok = true;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(g, stdout);
            return -1;
        }
        if (value(g, argc, argv, &i, "--prompt-tokens", &v))
            g->prompt_tokens = v;
        else if (value(g, argc, argv, &i, "--prompt-file", &v))
            g->prompt_file = v;
        else if (value(g, argc, argv, &i, "--prompt", &v))
            g->prompt = v;
        else if (value(g, argc, argv, &i, "--max-tokens", &v))
            ok = count(g, "--max-tokens", v, 1, 1L << 30, &g->max_tokens);
        else if (value(g, argc, argv, &i, "--temperature", &v))
            ok = number(g, "--temperature", v, 0, 100, &g->temperature);
        else if (value(g, argc, argv, &i, "--top-k", &v))
            ok = count(g, "--top-k", v, 1, 1L << 30, &g->top_k);
        else if (value(g, argc, argv, &i, "--top-p", &v)) {
            ok = number(g, "--top-p", v, 0, 1, &g->top_p);
            if (ok && !(g->top_p > 0))
                ok = FAIL(g, "--top-p must be above 0 and at most 1, got '%s'", v);
        } else if (value(g, argc, argv, &i, "--seed", &v)) {
            ok = number(g, "--seed", v, 0, 9007199254740992.0, &d);
            g->seed = (uint64_t)d;
        } else if (value(g, argc, argv, &i, "--stop", &v))
            g->stop = v;
        else if (value(g, argc, argv, &i, "--output-tokens", &v))
            g->output_tokens = v;
        else if (value(g, argc, argv, &i, "--perplexity", &v))
            g->perplexity = v;
        else if (value(g, argc, argv, &i, "--ctx", &v))
            ok = count(g, "--ctx", v, 2, (long)g->m->context, &g->ctx);
        else if (value(g, argc, argv, &i, "--chunk", &v))
            ok = count(g, "--chunk", v, 1, (long)g->m->context, &g->chunk);
        else if (value(g, argc, argv, &i, "--input", &v))
            g->input = v;
        else if (value(g, argc, argv, &i, "--output", &v))
            g->output = v;
        else if (value(g, argc, argv, &i, "--threads", &v))
            ok = count(g, "--threads", v, 1, RT_MAX_THREADS, &g->threads);
        else if (value(g, argc, argv, &i, "--weights", &v))
            g->weights = v;
        else {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(argv[i], "="), argv[i]);
            const char *best = rt_closest(name, known, (int)(sizeof known / sizeof known[0]));
            if (best) return FAIL(g, "unknown option '%s'; did you mean '%s'?", argv[i], best), 1;
            return FAIL(g, "unknown option '%s' (see '%s --help')", argv[i], g->prog), 1;
        }
        if (!ok || !v) return 1;
    }
    return 0;
}

/* Exactly one way to run, and the options of the others not given. */
static bool check_modes(gen *g)
{
    int prompts = !!g->prompt + !!g->prompt_file + !!g->prompt_tokens;
    int modes = (prompts > 0) + !!g->perplexity + !!g->input;
    if (prompts > 1) return FAIL(g, "give one of --prompt, --prompt-file and --prompt-tokens");
    if (modes == 0)
        return FAIL(g,
                    "nothing to do: give a prompt (--prompt TEXT), --perplexity TOKENS.npy or "
                    "--input NAME=FILE.npy (see '%s --help')",
                    g->prog);
    if (modes > 1) return FAIL(g, "a prompt, --perplexity and --input are separate runs: give one");
    if (g->output && !g->input) return FAIL(g, "--output goes with --input");
    if ((g->ctx || g->chunk) && !g->perplexity)
        return FAIL(g, "--ctx and --chunk go with --perplexity");
    const qmc_model_desc *m = g->m;
    bool tokens_in =
        m->n_inputs == 1 && m->inputs[0].dtype == QMC_DTYPE_I32 && m->inputs[0].rank == 1;
    bool logits_out =
        m->n_outputs >= 1 && m->outputs[0].dtype == QMC_DTYPE_F32 && m->outputs[0].rank == 2;
    if (!g->input && !(tokens_in && logits_out))
        return FAIL(g,
                    "generation and perplexity need a model with one input of token ids (i32[T]) "
                    "and logits as its first output (f32[T, vocabulary])");
    if (m->n_inputs != 1)
        return FAIL(g, "the model has %d inputs; this driver runs models of one", m->n_inputs);
    g->vocab = logits_out ? m->outputs[0].shape[1] : 0;
    return true;
}

/* ---- tokens ------------------------------------------------------------------ */

/* The token ids of an .npy file (int32 or int64, one dimension), checked
 * against the vocabulary. */
static bool read_tokens(gen *g, const char *path, int32_t **out, int64_t *n)
{
    rt_mapped_file f;
    rt_npy_header h;
    char err[512];
    if (rt_file_map(path, &f, err, sizeof err) != QMC_OK) return FAIL(g, "%s", err);
    bool ok = rt_npy_parse(f.data, f.size, &h, err, sizeof err) == QMC_OK;
    if (!ok)
        FAIL(g, "%s: %s", path, err);
    else if ((h.dtype != QMC_DTYPE_I32 && h.dtype != QMC_DTYPE_I64) || h.rank != 1)
        ok = FAIL(g, "%s: expected token ids int32 or int64 [N], got %s", path,
                  rt_shape_str(h.dtype, h.rank, h.shape, err, sizeof err));
    *out = ok ? malloc(sizeof **out * (size_t)(h.count + 1)) : NULL;
    for (int64_t i = 0; ok && i < h.count; i++) {
        const uint8_t *p = (const uint8_t *)f.data + h.data_offset;
        int64_t t = h.dtype == QMC_DTYPE_I32 ? ((const int32_t *)p)[i] : ((const int64_t *)p)[i];
        if (t < 0 || t >= g->vocab)
            ok = FAIL(g, "%s: token %lld at position %lld is outside the vocabulary (0 to %lld)",
                      path, (long long)t, (long long)i, (long long)g->vocab - 1);
        else
            (*out)[i] = (int32_t)t;
    }
    *n = h.count;
    rt_file_unmap(&f);
    return ok;
}

static bool read_prompt(gen *g)
{
    if (g->prompt_tokens) return read_tokens(g, g->prompt_tokens, &g->tokens, &g->n_tokens);
    const char *text = g->prompt;
    size_t len = text ? strlen(text) : 0;
    rt_mapped_file f = {0};
    char err[512];
    if (g->prompt_file) {
        if (rt_file_map(g->prompt_file, &f, err, sizeof err) != QMC_OK) return FAIL(g, "%s", err);
        text = (const char *)f.data, len = f.size;
    }
    bool ok = g->vocab == 256 || FAIL(g,
                                      "the model's vocabulary has %lld tokens, not the 256 "
                                      "bytes of text: give --prompt-tokens",
                                      (long long)g->vocab);
    g->tokens = ok ? malloc(sizeof *g->tokens * (len + 1)) : NULL;
    for (size_t i = 0; ok && i < len; i++) g->tokens[i] = (uint8_t)text[i];
    g->n_tokens = (int64_t)len;
    if (g->prompt_file) rt_file_unmap(&f);
    return ok;
}

/* ---- sampling ---------------------------------------------------------------- */

/* splitmix64: a uniform number in [0, 1) from the state. */
static double uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

typedef struct cand {
    float logit;
    int32_t token;
} cand;

static int by_logit(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->token - y->token; /* ties: the lower id first, so the order is total */
}

/* The next token: the likeliest at temperature 0 (the lowest id on a tie),
 * else a draw from softmax(logits / T) over the top-k, then top-p tokens. */
static int32_t sample(const gen *g, const float *logits, cand *c, uint64_t *rng)
{
    int64_t v = g->vocab, best = 0;
    for (int64_t i = 1; i < v; i++)
        if (logits[i] > logits[best]) best = i;
    if (g->temperature == 0) return (int32_t)best;
    for (int64_t i = 0; i < v; i++) c[i] = (cand){logits[i], (int32_t)i};
    qsort(c, (size_t)v, sizeof *c, by_logit);
    int64_t keep = g->top_k && g->top_k < v ? g->top_k : v;
    double total = 0;
    for (int64_t i = 0; i < keep; i++) total += exp((c[i].logit - c[0].logit) / g->temperature);
    double mass = 0, cut = g->top_p * total;
    int64_t n = 0;
    while (n < keep && (n == 0 || mass < cut))
        mass += exp((c[n].logit - c[0].logit) / g->temperature), n++;
    double r = uniform(rng) * mass, acc = 0;
    for (int64_t i = 0; i < n; i++) {
        acc += exp((c[i].logit - c[0].logit) / g->temperature);
        if (r < acc) return c[i].token;
    }
    return c[n - 1].token;
}

/* ---- the runs ------------------------------------------------------------------ */

static bool step(gen *g, const int32_t *tokens, int64_t n, float *logits, int64_t rows)
{
    const void *in[1] = {tokens};
    void *out[8] = {logits};
    qmc_status st = qmc_model_step(g->m, g->state, in, n, out, rows, g->workspace);
    if (st == QMC_OK) return true;
    return FAIL(g, "the model failed at position %lld: %s",
                (long long)qmc_model_position(g->m, g->state), qmc_status_string(st));
}

static void emit(const gen *g, int32_t token)
{
    if (g->vocab == 256)
        fputc(token, stdout);
    else
        printf("%d ", token);
    fflush(stdout);
}

static bool ends_with(const int32_t *t, int64_t n, const char *s)
{
    int64_t k = (int64_t)strlen(s);
    if (!k || k > n) return false;
    for (int64_t i = 0; i < k; i++)
        if (t[n - k + i] != (uint8_t)s[i]) return false;
    return true;
}

static bool generate(gen *g)
{
    int64_t n = g->n_tokens, max = g->max_tokens ? g->max_tokens : 128, ctx = g->m->context;
    if (n == 0) return FAIL(g, "the prompt is empty");
    if (n > ctx)
        return FAIL(g, "the prompt has %lld tokens, but the model's context holds %lld",
                    (long long)n, (long long)ctx);
    /* the last generated token is not fed back: n + max - 1 positions */
    if (n + max - 1 > ctx)
        return FAIL(g,
                    "the prompt (%lld tokens) and --max-tokens %lld need %lld positions, but the "
                    "context holds %lld",
                    (long long)n, (long long)max, (long long)(n + max - 1), (long long)ctx);
    cand *c = malloc(sizeof *c * (size_t)g->vocab);
    int32_t *out = malloc(sizeof *out * (size_t)max);
    if (!c || !out) return free(c), free(out), FAIL(g, "out of memory");
    uint64_t rng = g->seed, t0 = qmc_now_ns();
    bool ok = qmc_model_reset(g->m, g->state) == QMC_OK && step(g, g->tokens, n, g->logits, 1);
    uint64_t t1 = qmc_now_ns();
    int64_t made = 0;
    while (ok && made < max) {
        int32_t next = sample(g, g->logits, c, &rng);
        out[made++] = next;
        emit(g, next);
        if (g->stop && ends_with(out, made, g->stop)) break;
        if (made < max) ok = step(g, &next, 1, g->logits, 1);
    }
    uint64_t t2 = qmc_now_ns();
    if (ok) {
        double pre = (double)(t1 - t0) / 1e6, dec = (double)(t2 - t1) / 1e6;
        fprintf(stderr,
                "\n%s: prefill %lld tokens in %.1f ms (%.1f tokens/s); decode %lld tokens "
                "in %.1f ms (%.1f tokens/s)\n",
                g->prog, (long long)n, pre, (double)n / (pre / 1e3), (long long)(made - 1), dec,
                made > 1 ? (double)(made - 1) / (dec / 1e3) : 0.0);
    }
    if (ok && g->output_tokens) {
        int64_t shape[1] = {made};
        char err[512];
        if (rt_npy_write_err(g->output_tokens, QMC_DTYPE_I32, 1, shape, out, err, sizeof err) !=
            QMC_OK)
            ok = FAIL(g, "%s", err);
    }
    free(c);
    free(out);
    return ok;
}

/* -log softmax(row)[target], in double precision. */
static double cross_entropy(const float *row, int64_t v, int32_t target)
{
    double mx = row[0], sum = 0;
    for (int64_t i = 1; i < v; i++) mx = row[i] > mx ? row[i] : mx;
    for (int64_t i = 0; i < v; i++) sum += exp(row[i] - mx);
    return mx + log(sum) - row[target];
}

/* Windows of ctx tokens (tokens[s*ctx ..] predicting the next ones), each
 * from a reset state, fed in steps of `chunk` tokens. */
static bool perplexity(gen *g)
{
    int64_t ctx = g->ctx ? g->ctx : g->m->context, chunk = g->chunk ? g->chunk : ctx;
    if (!read_tokens(g, g->perplexity, &g->tokens, &g->n_tokens)) return false;
    int64_t windows = (g->n_tokens - 1) / ctx;
    if (windows < 1)
        return FAIL(g, "%s holds %lld tokens, fewer than one window of %lld plus its target",
                    g->perplexity, (long long)g->n_tokens, (long long)ctx);
    double total = 0;
    for (int64_t w = 0; w < windows; w++) {
        const int32_t *t = g->tokens + w * ctx;
        if (qmc_model_reset(g->m, g->state) != QMC_OK) return FAIL(g, "cannot reset the state");
        for (int64_t at = 0; at < ctx; at += chunk) {
            int64_t k = ctx - at < chunk ? ctx - at : chunk;
            if (!step(g, t + at, k, g->logits + at * g->vocab, k)) return false;
        }
        for (int64_t i = 0; i < ctx; i++)
            total += cross_entropy(g->logits + i * g->vocab, g->vocab, t[i + 1]);
    }
    double ce = total / (double)(windows * ctx);
    printf("perplexity %.4f (mean cross-entropy %.5f nats over %lld tokens in %lld windows of "
           "%lld)\n",
           exp(ce), ce, (long long)(windows * ctx), (long long)windows, (long long)ctx);
    return true;
}

/* One step over an input file's tokens; the first output's rows written. */
static bool run_input(gen *g)
{
    const qmc_tensor_desc *in = &g->m->inputs[0];
    const char *eq = strchr(g->input, '=');
    if (!eq || strncmp(g->input, in->name, (size_t)(eq - g->input)) ||
        strlen(in->name) != (size_t)(eq - g->input))
        return FAIL(g, "expected --input %s=FILE.npy, got '%s'", in->name, g->input);
    if (!read_tokens(g, eq + 1, &g->tokens, &g->n_tokens)) return false;
    if (g->n_tokens < 1 || g->n_tokens > g->m->context)
        return FAIL(g, "%s holds %lld tokens; a run takes 1 to %lld", eq + 1,
                    (long long)g->n_tokens, (long long)g->m->context);
    if (qmc_model_reset(g->m, g->state) != QMC_OK ||
        !step(g, g->tokens, g->n_tokens, g->logits, g->n_tokens))
        return false;
    if (!g->output) return true;
    const qmc_tensor_desc *out = &g->m->outputs[0];
    const char *oeq = strchr(g->output, '=');
    if (!oeq || strlen(out->name) != (size_t)(oeq - g->output) ||
        strncmp(g->output, out->name, (size_t)(oeq - g->output)))
        return FAIL(g, "expected --output %s=FILE.npy, got '%s'", out->name, g->output);
    int64_t shape[2] = {g->n_tokens, out->shape[1]};
    char err[512];
    if (rt_npy_write_err(oeq + 1, QMC_DTYPE_F32, 2, shape, g->logits, err, sizeof err) != QMC_OK)
        return FAIL(g, "%s", err);
    return true;
}

static bool setup(gen *g)
{
    if (!rt_exe_threads(g->prog, (int)g->threads) || !rt_exe_weights(g->prog, g->m, g->weights))
        return false;
    g->state = qmc_workspace_alloc(g->m->state_size);
    g->workspace = qmc_workspace_alloc(g->m->workspace_size);
    int64_t cols = g->m->n_outputs ? 1 : 0;
    for (int d = 1; g->m->n_outputs && d < g->m->outputs[0].rank; d++)
        cols *= g->m->outputs[0].shape[d];
    g->logits = qmc_workspace_alloc(sizeof(float) * (size_t)(g->m->context * (cols ? cols : 1)));
    if (!g->state || !g->workspace || !g->logits) return FAIL(g, "out of memory");
    return true;
}

int rt_generate_main(const char *prog, const qmc_model_desc *m, int argc, char **argv)
{
    gen g = {.prog = prog, .m = m, .top_p = 1};
    int parsed = parse_args(&g, argc, argv);
    bool ok =
        parsed == 0 && check_modes(&g) && (g.perplexity || g.input || read_prompt(&g)) && setup(&g);
    if (ok) ok = g.perplexity ? perplexity(&g) : g.input ? run_input(&g) : generate(&g);
    free(g.tokens);
    qmc_workspace_free(g.state);
    qmc_workspace_free(g.workspace);
    qmc_workspace_free(g.logits);
    if (fflush(stdout) != 0) return 1;
    return parsed < 0 ? 0 : !ok;
}
