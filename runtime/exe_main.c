/* exe_main.c: main() of an executable made by qmc compile (libqmc_main.a).
 *
 *   OUT --input NAME=FILE.npy ... [--output NAME=FILE.npy ...]
 *       [--threads N] [--bench N] [--weights FILE] [--help]
 *
 * Needs: the generated object's `qmc_exe_model`, and libqmc_rt.a. This file
 * is compiled for the baseline ISA of the target, so that the CPU check
 * below runs, and fails politely, on any CPU of the architecture.
 * Guarantees, in order: the CPU has every feature the model was compiled
 * for (else a message naming the missing ones, exit 1, before anything
 * else); inputs follow `qmc run`'s conventions (.npy float32 for f32 inputs,
 * int32 or int64 range-checked for i32, the declared shape or a batch of it
 * with one extra leading dimension); outputs are written, each atomically,
 * only after every run succeeded. Exit status 0 on success, 1 on any error,
 * with `OUT: error: ...` on stderr. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"

extern const qmc_model_desc *const qmc_exe_model;

typedef struct exe_port {
    const char *path;
    int port;      /* index into the model's inputs or outputs */
    int64_t batch; /* inputs: items in the file, -1 when not batched */
} exe_port;

typedef struct exe {
    const char *prog;
    const qmc_model_desc *m;
    const char *weights;
    int threads;
    long bench;
    exe_port *ins, *outs; /* as given on the command line */
    int n_ins, n_outs;
    int64_t batch;        /* -1: no input is batched */
    void **in_data;       /* per model input: items back to back, 64-byte aligned */
    size_t *in_step;      /* per model input: bytes per batch item, 0 when not batched */
    void **out_data;      /* per model output */
    const void **in_ptrs; /* the pointers of one run */
    void **out_ptrs;
    void *workspace;
} exe;

__attribute__((format(printf, 2, 3))) static bool fail(const exe *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", e->prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return false;
}

/* ---- names and shapes ------------------------------------------------------ */

static int64_t tensor_count(const qmc_tensor_desc *t)
{
    int64_t c = 1;
    for (int i = 0; i < t->rank; i++) c *= t->shape[i];
    return c;
}

static size_t tensor_bytes(const qmc_tensor_desc *t)
{
    return (size_t)tensor_count(t) * qmc_dtype_size(t->dtype);
}

static int find_port(const exe *e, const qmc_tensor_desc *ports, int n, const char *name,
                     const char *what)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ports[i].name, name) == 0) return i;
    const char *names[64];
    int k = 0;
    for (int i = 0; i < n && k < 64; i++) names[k++] = ports[i].name;
    const char *best = rt_closest(name, names, k);
    if (best)
        fail(e, "the model has no %s '%s'; did you mean '%s'?", what, name, best);
    else if (n) {
        fprintf(stderr, "%s: error: the model has no %s '%s' (its %ss:", e->prog, what, name, what);
        for (int i = 0; i < n; i++) fprintf(stderr, "%s %s", i ? "," : "", ports[i].name);
        fprintf(stderr, ")\n");
    } else
        fail(e, "the model has no %ss", what);
    return -1;
}

/* ---- the command line ------------------------------------------------------ */

static void usage(const exe *e, FILE *f)
{
    const qmc_model_desc *m = e->m;
    char s[RT_SHAPE_STR_MAX];
    fprintf(f,
            "usage: %s --input NAME=FILE.npy ... [--output NAME=FILE.npy ...] [--threads N]\n"
            "          [--bench N]%s [--help]\n\n",
            e->prog, m->weights_base ? " [--weights FILE]" : "");
    fprintf(f, "Runs the model '%s' compiled by qmc for cpu '%s' (%s).\n", m->name,
            m->cpu ? m->cpu : "generic", m->target_triple ? m->target_triple : "host");
    fprintf(f, "inputs:\n");
    for (int i = 0; i < m->n_inputs; i++)
        fprintf(
            f, "  %-18s %s\n", m->inputs[i].name,
            rt_shape_str(m->inputs[i].dtype, m->inputs[i].rank, m->inputs[i].shape, s, sizeof s));
    fprintf(f, "outputs:\n");
    for (int i = 0; i < m->n_outputs; i++)
        fprintf(f, "  %-18s %s\n", m->outputs[i].name,
                rt_shape_str(m->outputs[i].dtype, m->outputs[i].rank, m->outputs[i].shape, s,
                             sizeof s));
    fprintf(f,
            "options:\n"
            "  --input NAME=FILE  an input (.npy: float32 for f32, int32 or int64 for i32); one\n"
            "                     extra leading dimension runs each slice and stacks the outputs\n"
            "  --output NAME=FILE write an output (.npy); without any, a summary is printed\n"
            "  --threads N        worker threads (default: $QMC_NUM_THREADS, else every core);\n"
            "                     idle ones spin $QMC_THREAD_SPIN_US microseconds (default "
            "2000)\n"
            "                     before sleeping\n"
            "  --bench N          after one warm-up run, time N runs of the first item\n");
    if (m->weights_base)
        fprintf(f, "  --weights FILE     the weights file (default: '%s')\n",
                m->weights_file ? m->weights_file : "");
}

typedef struct cli {
    int argc, i;
    char **argv;
    bool failed;
} cli;

/* `--name VALUE` or `--name=VALUE`. */
static bool cli_value(const exe *e, cli *c, const char *name, const char **value)
{
    if (c->failed || c->i >= c->argc) return false;
    const char *arg = c->argv[c->i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0 || (arg[n] != '=' && arg[n] != 0)) return false;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        c->i++;
        return true;
    }
    if (c->i + 1 >= c->argc) {
        fail(e, "option '%s' needs a value", name);
        c->failed = true;
        c->i++;
        return false;
    }
    *value = c->argv[c->i + 1];
    c->i += 2;
    return true;
}

static void cli_unknown(const exe *e, cli *c)
{
    static const char *const known[] = {"--input", "--output",  "--threads",
                                        "--bench", "--weights", "--help"};
    const char *arg = c->argv[c->i++];
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    const char *best = rt_closest(name, known, (int)(sizeof known / sizeof known[0]));
    if (best)
        fail(e, "unknown option '%s'; did you mean '%s'?", arg, best);
    else
        fail(e, "unknown option '%s' (see '%s --help')", arg, e->prog);
    c->failed = true;
}

static bool set_count(const exe *e, const char *opt, const char *v, long hi, long *out)
{
    *out = rt_parse_count(v, 1, hi);
    if (*out < 0) return fail(e, "%s wants a whole number from 1 to %ld, got '%s'", opt, hi, v);
    return true;
}

/* Parses argv into e; 1 on error, 0 to go on, -1 after --help. */
static int parse_args(exe *e, int argc, char **argv)
{
    cli c = {argc, 1, argv, false};
    const char *v;
    long n;
    while (c.i < c.argc && !c.failed) {
        if (strcmp(argv[c.i], "--help") == 0 || strcmp(argv[c.i], "-h") == 0) {
            usage(e, stdout);
            return -1;
        }
        if (cli_value(e, &c, "--input", &v))
            e->ins[e->n_ins++].path = v;
        else if (cli_value(e, &c, "--output", &v))
            e->outs[e->n_outs++].path = v;
        else if (cli_value(e, &c, "--weights", &v))
            e->weights = v;
        else if (cli_value(e, &c, "--threads", &v)) {
            if (!set_count(e, "--threads", v, RT_MAX_THREADS, &n)) return 1;
            e->threads = (int)n;
        } else if (cli_value(e, &c, "--bench", &v)) {
            if (!set_count(e, "--bench", v, 1000000, &e->bench)) return 1;
        } else if (!c.failed && argv[c.i][0] != '-') {
            fail(e, "unexpected argument '%s' (inputs are given as --input NAME=FILE.npy)",
                 argv[c.i]);
            return 1;
        } else if (!c.failed)
            cli_unknown(e, &c);
    }
    return c.failed;
}

/* Splits NAME=PATH (PATH stays in argv) and finds the port; -1 on error. */
static int bind_spec(const exe *e, const char *opt, const char *spec, const qmc_tensor_desc *ports,
                     int n, const char **path)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) {
        fail(e, "expected %s NAME=FILE.npy, got '%s'", opt, spec);
        return -1;
    }
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
    *path = eq + 1;
    return find_port(e, ports, n, name, opt[2] == 'i' ? "input" : "output");
}

/* ---- inputs ------------------------------------------------------------------ */

static bool dtype_accepted(qmc_dtype declared, qmc_dtype file)
{
    if (declared == QMC_DTYPE_I32) return file == QMC_DTYPE_I32 || file == QMC_DTYPE_I64;
    return file == declared;
}

static const char *dtype_hint(qmc_dtype declared)
{
    switch (declared) {
    case QMC_DTYPE_F32: return "expected float32";
    case QMC_DTYPE_I32: return "expected int32 or int64";
    default: return "expected the same dtype";
    }
}

/* Checks the file's dtype and shape against input t; sets batch. */
static bool input_check(const exe *e, const qmc_tensor_desc *t, const char *path,
                        const rt_npy_header *h, int64_t *batch)
{
    char want[RT_SHAPE_STR_MAX], have[RT_SHAPE_STR_MAX];
    rt_shape_str(t->dtype, t->rank, t->shape, want, sizeof want);
    rt_shape_str(h->dtype, h->rank, h->shape, have, sizeof have);
    if (!dtype_accepted(t->dtype, h->dtype))
        return fail(e, "input '%s' is %s but '%s' holds %s (%s)", t->name, want, path, have,
                    dtype_hint(t->dtype));
    int extra = h->rank - t->rank;
    bool match = (extra == 0 || extra == 1) &&
                 memcmp(h->shape + extra, t->shape, sizeof t->shape[0] * (size_t)t->rank) == 0;
    if (!match)
        return fail(e, "input '%s' is %s (or a batch [N, ...] of it) but '%s' holds %s", t->name,
                    want, path, have);
    *batch = extra ? h->shape[0] : -1;
    if (*batch == 0) return fail(e, "input '%s': '%s' holds an empty batch", t->name, path);
    return true;
}

/* Copies (i64: narrows) count elements of the file's data into dst. */
static bool input_copy(const exe *e, const qmc_tensor_desc *t, const char *path,
                       const rt_npy_header *h, const uint8_t *src, void *dst)
{
    if (h->dtype == t->dtype) {
        memcpy(dst, src, h->data_bytes);
        return true;
    }
    int32_t *out = dst;
    for (int64_t i = 0; i < h->count; i++) {
        int64_t v;
        memcpy(&v, src + i * 8, 8);
        if (v < INT32_MIN || v > INT32_MAX)
            return fail(e, "input '%s': '%s' holds %lld, which does not fit in i32", t->name, path,
                        (long long)v);
        out[i] = (int32_t)v;
    }
    return true;
}

static bool input_load(exe *e, exe_port *in)
{
    const qmc_tensor_desc *t = &e->m->inputs[in->port];
    rt_mapped_file f;
    rt_npy_header h;
    char err[256];
    if (rt_file_map(in->path, &f, err, sizeof err) != QMC_OK)
        return fail(e, "%s: %s", in->path, err);
    bool ok = false;
    if (rt_npy_parse(f.data, f.size, &h, err, sizeof err) != QMC_OK)
        fail(e, "%s: malformed .npy file: %s", in->path, err);
    else if (input_check(e, t, in->path, &h, &in->batch)) {
        size_t items = in->batch < 0 ? 1 : (size_t)in->batch;
        e->in_data[in->port] = qmc_workspace_alloc(items * tensor_bytes(t));
        if (!e->in_data[in->port])
            fail(e, "out of memory for input '%s'", t->name);
        else
            ok = input_copy(e, t, in->path, &h, f.data + h.data_offset, e->in_data[in->port]);
    }
    rt_file_unmap(&f);
    return ok;
}

static bool inputs_bind(exe *e)
{
    const qmc_model_desc *m = e->m;
    for (int i = 0; i < e->n_ins; i++) {
        exe_port *in = &e->ins[i];
        in->port = bind_spec(e, "--input", in->path, m->inputs, m->n_inputs, &in->path);
        if (in->port < 0) return false;
        if (e->in_data[in->port])
            return fail(e, "input '%s' is given more than once", m->inputs[in->port].name);
        if (!input_load(e, in)) return false;
        e->in_step[in->port] = in->batch < 0 ? 0 : tensor_bytes(&m->inputs[in->port]);
    }
    for (int p = 0; p < m->n_inputs; p++)
        if (!e->in_data[p])
            return fail(e, "input '%s' is not given (pass --input %s=FILE.npy)", m->inputs[p].name,
                        m->inputs[p].name);
    e->batch = -1;
    for (int i = 0; i < e->n_ins; i++) {
        if (e->ins[i].batch < 0) continue;
        if (e->batch >= 0 && e->ins[i].batch != e->batch)
            return fail(e, "batched inputs disagree: '%s' has %lld items but another has %lld",
                        e->ins[i].path, (long long)e->ins[i].batch, (long long)e->batch);
        e->batch = e->ins[i].batch;
    }
    return true;
}

/* ---- set-up: CPU, threads, weights, buffers --------------------------------- */

static bool buffers_alloc(exe *e)
{
    const qmc_model_desc *m = e->m;
    size_t items = e->batch < 0 ? 1 : (size_t)e->batch;
    for (int o = 0; o < m->n_outputs; o++) {
        e->out_data[o] = qmc_workspace_alloc(items * tensor_bytes(&m->outputs[o]));
        if (!e->out_data[o]) return fail(e, "out of memory for output '%s'", m->outputs[o].name);
    }
    e->workspace = qmc_workspace_alloc(m->workspace_size);
    if (!e->workspace)
        return fail(e, "out of memory for the workspace (%llu bytes)",
                    (unsigned long long)m->workspace_size);
    return true;
}

/* ---- runs ------------------------------------------------------------------ */

static qmc_status run_item(exe *e, int64_t b)
{
    const qmc_model_desc *m = e->m;
    for (int i = 0; i < m->n_inputs; i++)
        e->in_ptrs[i] = (const uint8_t *)e->in_data[i] + (size_t)b * e->in_step[i];
    for (int o = 0; o < m->n_outputs; o++)
        e->out_ptrs[o] = (uint8_t *)e->out_data[o] + (size_t)b * tensor_bytes(&m->outputs[o]);
    return m->run(e->in_ptrs, e->out_ptrs, e->workspace);
}

static bool run_all(exe *e)
{
    int64_t items = e->batch < 0 ? 1 : e->batch;
    for (int64_t b = 0; b < items; b++) {
        qmc_status st = run_item(e, b);
        if (st != QMC_OK) {
            if (e->batch < 0) return fail(e, "the model failed: %s", qmc_status_string(st));
            return fail(e, "the model failed on batch item %lld: %s", (long long)b,
                        qmc_status_string(st));
        }
    }
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static bool bench(exe *e)
{
    uint64_t *t = malloc(sizeof *t * (size_t)e->bench);
    if (!t) return fail(e, "out of memory for --bench %ld", e->bench);
    qmc_status st = run_item(e, 0); /* warm-up */
    for (long i = 0; i < e->bench && st == QMC_OK; i++) {
        uint64_t t0 = qmc_now_ns();
        st = run_item(e, 0);
        t[i] = qmc_now_ns() - t0;
    }
    if (st != QMC_OK) {
        free(t);
        return fail(e, "the model failed: %s", qmc_status_string(st));
    }
    qsort(t, (size_t)e->bench, sizeof *t, cmp_u64);
    long h = e->bench / 2;
    double median = e->bench % 2 ? (double)t[h] : ((double)t[h - 1] + (double)t[h]) / 2;
    printf("bench: %ld runs, min %.3f ms, median %.3f ms\n", e->bench, (double)t[0] / 1e6,
           median / 1e6);
    free(t);
    return true;
}

/* ---- outputs ----------------------------------------------------------------- */

static double f16_to_double(uint16_t h)
{
    unsigned exp = h >> 10 & 0x1f, man = h & 0x3ff;
    double v;
    if (exp == 31)
        v = man ? NAN : INFINITY;
    else if (exp == 0)
        v = man / 16777216.0; /* man * 2^-24 */
    else
        v = (double)(1024 + man) * (double)(1u << exp) / 33554432.0; /* 2^(exp-25) */
    return h >> 15 ? -v : v;
}

static double value_at(qmc_dtype dtype, const uint8_t *base, int64_t i)
{
    const uint8_t *p = base + (size_t)i * qmc_dtype_size(dtype);
    union {
        float f;
        double d;
        int16_t i16;
        uint16_t u16;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        uint64_t u64;
    } v;
    memcpy(&v, p, qmc_dtype_size(dtype));
    switch (dtype) {
    case QMC_DTYPE_F32: return v.f;
    case QMC_DTYPE_F64: return v.d;
    case QMC_DTYPE_F16: return f16_to_double(v.u16);
    case QMC_DTYPE_BF16: {
        uint32_t bits = (uint32_t)v.u16 << 16;
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    case QMC_DTYPE_I8: return (int8_t)*p;
    case QMC_DTYPE_U8:
    case QMC_DTYPE_BOOL: return *p;
    case QMC_DTYPE_I16: return v.i16;
    case QMC_DTYPE_U16: return v.u16;
    case QMC_DTYPE_I32: return v.i32;
    case QMC_DTYPE_U32: return v.u32;
    case QMC_DTYPE_I64: return (double)v.i64;
    case QMC_DTYPE_U64: return (double)v.u64;
    default: return 0;
    }
}

static void print_summary(const exe *e, int o)
{
    const qmc_tensor_desc *t = &e->m->outputs[o];
    int64_t count = tensor_count(t) * (e->batch < 0 ? 1 : e->batch);
    double mn = 0, mx = 0, sum = 0;
    for (int64_t i = 0; i < count; i++) {
        double y = value_at(t->dtype, e->out_data[o], i);
        mn = i == 0 || y < mn ? y : mn;
        mx = i == 0 || y > mx ? y : mx;
        sum += y;
    }
    char shape[RT_SHAPE_STR_MAX];
    rt_shape_str(t->dtype, t->rank, t->shape, shape, sizeof shape);
    printf("%s: %s%s min %.6g max %.6g mean %.6g\n", t->name, e->batch >= 0 ? "batch of " : "",
           shape, mn, mx, count ? sum / (double)count : 0.0);
}

static bool write_output(const exe *e, const exe_port *out)
{
    const qmc_tensor_desc *t = &e->m->outputs[out->port];
    int64_t shape[QMC_MAX_RANK + 1];
    int rank = 0;
    if (e->batch >= 0) shape[rank++] = e->batch;
    for (int d = 0; d < t->rank; d++) shape[rank++] = t->shape[d];
    char err[256];
    qmc_status st =
        rt_npy_write_err(out->path, t->dtype, rank, shape, e->out_data[out->port], err, sizeof err);
    if (st == QMC_ERR_INVALID_ARGUMENT)
        return fail(e, "cannot write '%s': output '%s' has no .npy form", out->path, t->name);
    if (st != QMC_OK) return fail(e, "%s: %s", out->path, err);
    return true;
}

static bool outputs_bind(exe *e)
{
    const qmc_model_desc *m = e->m;
    for (int i = 0; i < e->n_outs; i++) {
        exe_port *out = &e->outs[i];
        out->port = bind_spec(e, "--output", out->path, m->outputs, m->n_outputs, &out->path);
        if (out->port < 0) return false;
        for (int k = 0; k < i; k++)
            if (e->outs[k].port == out->port)
                return fail(e, "output '%s' is given more than once", m->outputs[out->port].name);
    }
    return true;
}

/* ---- main -------------------------------------------------------------------- */

static bool exe_init(exe *e, int argc)
{
    const qmc_model_desc *m = e->m;
    e->ins = calloc((size_t)argc, sizeof *e->ins);
    e->outs = calloc((size_t)argc, sizeof *e->outs);
    e->in_data = calloc((size_t)m->n_inputs + 1, sizeof *e->in_data);
    e->out_data = calloc((size_t)m->n_outputs + 1, sizeof *e->out_data);
    e->in_step = calloc((size_t)m->n_inputs + 1, sizeof *e->in_step);
    e->in_ptrs = calloc((size_t)m->n_inputs + 1, sizeof *e->in_ptrs);
    e->out_ptrs = calloc((size_t)m->n_outputs + 1, sizeof *e->out_ptrs);
    if (e->ins && e->outs && e->in_data && e->in_step && e->out_data && e->in_ptrs && e->out_ptrs)
        return true;
    return fail(e, "out of memory");
}

static void exe_free(exe *e)
{
    for (int i = 0; e->in_data && i < e->m->n_inputs; i++) qmc_workspace_free(e->in_data[i]);
    for (int o = 0; e->out_data && o < e->m->n_outputs; o++) qmc_workspace_free(e->out_data[o]);
    qmc_workspace_free(e->workspace);
    free(e->ins);
    free(e->outs);
    free(e->in_data);
    free(e->in_step);
    free(e->out_data);
    free(e->in_ptrs);
    free(e->out_ptrs);
}

static bool exe_main(exe *e)
{
    if (!outputs_bind(e) || !rt_exe_threads(e->prog, e->threads) ||
        !rt_exe_weights(e->prog, e->m, e->weights) || !inputs_bind(e) || !buffers_alloc(e) ||
        !run_all(e))
        return false;
    if (e->bench && !bench(e)) return false;
    for (int i = 0; i < e->n_outs; i++)
        if (!write_output(e, &e->outs[i])) return false;
    if (e->n_outs == 0)
        for (int o = 0; o < e->m->n_outputs; o++) print_summary(e, o);
    return true;
}

int main(int argc, char **argv)
{
    exe e = {0};
    const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
    e.prog = argc > 0 ? (slash ? slash + 1 : argv[0]) : "model";
    e.m = qmc_exe_model;
    if (!rt_exe_check_cpu(e.prog, e.m)) return 1;
    if (e.m->context) return rt_generate_main(e.prog, e.m, argc, argv);
    int status = 1;
    if (exe_init(&e, argc)) {
        int parsed = parse_args(&e, argc, argv);
        status = parsed < 0 ? 0 : parsed > 0 ? 1 : !exe_main(&e);
    }
    exe_free(&e);
    if (fflush(stdout) != 0) return 1;
    return status;
}
