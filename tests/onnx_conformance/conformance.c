/* conformance: ONNX's backend node tests (Debian's libonnx-testdata) through
 * qmc: each test's model.onnx is imported (fe_onnx_import, as `qmc import`
 * does), run by the interpreter (`qmc run`) and, for the tests chosen by
 * --compile, compiled (`qmc compile`) and run natively; every output is
 * compared with the test's expected output within ONNX's tolerance
 * (|got - want| <= atol + rtol |want|, rtol 1e-3, atol 1e-7; NaN matches
 * NaN).
 *
 * Inputs: input_K.pb is the K-th graph input. An input the test feeds but
 * that the graph only uses as an operator's parameter (Reshape's shape,
 * Slice's starts, ends, axes and steps, Expand's shape, Unsqueeze's and
 * the reductions' axes, Clip's bounds, Range's and ConstantOfShape's
 * inputs, Trilu's k, ...: the inputs ONNX's shape inference reads as
 * constants; a conv's weight and bias and a batchnorm's parameters, which
 * qmc reads from the weights: table `params` below) is bound as an
 * initializer with the
 * test's value, since qmc's shapes are static; every other input stays an
 * input of the model, with the shape of its .pb file (--shape). Bool inputs
 * are fed as floats 0 and 1 (the importer declares them f32), integer ones
 * as int64.
 *
 * Each test is PASS (every output within tolerance), FAIL (imported, but
 * qmc failed to run it or an output differs: a bug), or UNSUPPORTED (the
 * import refused it: an operator, type or use qmc does not translate; the
 * first error is kept). A test belongs to the operator of its first node
 * that is not a Constant (an _expanded test to its unexpanded twin's).
 *
 * usage: conformance --qmc QMC --work DIR [--data DIR] [--list FILE]
 *                    [--write-list FILE] [--table FILE] [--results FILE]
 *                    [--compile none|per-op|all] [--filter TEXT] [-v]
 *   --data DIR        the node tests (default /usr/share/libonnx-testdata/data/node)
 *   --list FILE       run only the tests named in FILE (one per line, # comments);
 *                     then every one of them must pass (the CI regression check)
 *   --write-list FILE write the names of the passing tests (the list CI runs)
 *   --table FILE      write the per-operator table (markdown)
 *   --results FILE    write one line per test: status, operator, name, reason
 *   --compile         which passing tests are also compiled and run natively:
 *                     none, the first of each operator (per-op, the default), all
 * Exit status: 0 if no listed test failed (without --list: if no test
 * FAILed), 1 otherwise, 2 for usage errors. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontend.h"
#include "rt.h"

enum { MAX_TESTS = 4096, MAX_IO = 64 };
#define RTOL 1e-3
#define ATOL 1e-7

typedef enum status { PASS, FAIL, UNSUPPORTED } status;
static const char *const status_names[] = {"PASS", "FAIL", "UNSUPPORTED"};

typedef struct test {
    const char *name, *op;
    status st;
    bool compiled;
    char why[256];
} test;

static struct {
    const char *qmc, *work, *data, *list, *write_list, *table, *results, *filter;
    int compile; /* 0 none, 1 per-op, 2 all */
    bool verbose;
} opt = {.data = "/usr/share/libonnx-testdata/data/node", .compile = 1};

/* ---- parameter inputs ------------------------------------------------------- */

/* (operator, input index): inputs ONNX reads as constants to know shapes
 * (and Clip's bounds, Dropout's ratio and mode, the scales and zero points
 * of QuantizeLinear and DequantizeLinear, which qmc takes as constants). */
static const struct {
    const char *op;
    int input;
} params[] = {
    {"Reshape", 1},
    {"Expand", 1},
    {"Slice", 1},
    {"Slice", 2},
    {"Slice", 3},
    {"Slice", 4},
    {"Unsqueeze", 1},
    {"Squeeze", 1},
    {"ReduceSum", 1},
    {"ReduceMean", 1},
    {"ReduceMax", 1},
    {"ReduceMin", 1},
    {"ReduceProd", 1},
    {"ReduceL1", 1},
    {"ReduceL2", 1},
    {"ReduceLogSum", 1},
    {"ReduceLogSumExp", 1},
    {"ReduceSumSquare", 1},
    {"Tile", 1},
    {"Pad", 1},
    {"Pad", 2},
    {"Pad", 3},
    {"Range", 0},
    {"Range", 1},
    {"Range", 2},
    {"ConstantOfShape", 0},
    {"Split", 1},
    {"Trilu", 1},
    {"TopK", 1},
    {"Resize", 1},
    {"Resize", 2},
    {"Resize", 3},
    {"Upsample", 1},
    {"OneHot", 1},
    {"Clip", 1},
    {"Clip", 2},
    {"CumSum", 1},
    {"Dropout", 1},
    {"Dropout", 2},
    {"QuantizeLinear", 1},
    {"QuantizeLinear", 2},
    {"DequantizeLinear", 1},
    {"DequantizeLinear", 2},
    {"Shape", 0},
    {"Size", 0},
    /* qmc's convolutions read their weights, and batchnorms their
     * parameters, from the weights (as inference models hold them) */
    {"Conv", 1},
    {"Conv", 2},
    {"ConvTranspose", 1},
    {"ConvTranspose", 2},
    {"BatchNormalization", 1},
    {"BatchNormalization", 2},
    {"BatchNormalization", 3},
    {"BatchNormalization", 4},
};

static bool is_param(const fe_onnx_node *n, int k)
{
    if (*n->domain) return false;
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        if (params[i].input == k && strcmp(params[i].op, n->op_type) == 0) return true;
    return false;
}

/* Whether graph input `name` is only used at parameter positions. */
static bool only_param(const fe_onnx_model *m, const char *name)
{
    bool used = false;
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_inputs; k++)
            if (strcmp(m->nodes[i].inputs[k], name) == 0) {
                if (!is_param(&m->nodes[i], k)) return false;
                used = true;
            }
    for (int i = 0; i < m->n_outputs; i++)
        if (strcmp(m->outputs[i].name, name) == 0) return false;
    return used;
}

/* ---- helpers ------------------------------------------------------------------- */

static char *str(sup_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *str(sup_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = sup_arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void set_why(test *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(test *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof t->why, fmt, ap);
    va_end(ap);
    for (char *c = t->why; *c; c++)
        if (*c == '\n' || *c == '\t') *c = ' ';
}

/* The first line of a file (a command's stderr), or "". */
static void first_line(const char *path, char *out, size_t size)
{
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(out, (int)size, f)) out[strcspn(out, "\n")] = 0;
    fclose(f);
}

/* The operator a model tests: its first node that is not a Constant. */
static const char *primary_op(sup_arena *a, const fe_onnx_model *m)
{
    for (int i = 0; i < m->n_nodes; i++)
        if (strcmp(m->nodes[i].op_type, "Constant") != 0)
            return *m->nodes[i].domain ? str(a, "%s.%s", m->nodes[i].domain, m->nodes[i].op_type)
                                       : m->nodes[i].op_type;
    return "Constant";
}

/* A .npy of tensor t as a model input: float32 (float; bool as 0 and 1) or
 * int64 (integers). */
static bool write_input(const char *path, const fe_onnx_tensor *t)
{
    int64_t shape[RT_MAX_RANK];
    if (t->rank > RT_MAX_RANK) return false;
    for (int d = 0; d < t->rank; d++) shape[d] = t->dims[d];
    bool fl = t->dtype == FE_ONNX_FLOAT || t->dtype == FE_ONNX_BOOL;
    size_t n = (size_t)t->count;
    void *buf = malloc((fl ? 4 : 8) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        double v = 0;
        int64_t iv = 0;
        if (fl) {
            fe_onnx_tensor_get(t, (int64_t)i, &v);
            ((float *)buf)[i] = (float)v;
        } else if (fe_onnx_tensor_get_int(t, (int64_t)i, &iv)) {
            ((int64_t *)buf)[i] = iv;
        }
    }
    bool ok = rt_npy_write(path, fl ? QMC_DTYPE_F32 : QMC_DTYPE_I64, t->rank, shape, buf) == QMC_OK;
    free(buf);
    return ok;
}

/* Compares output .npy `path` with the expected tensor; false with why. */
static bool compare(test *t, const char *path, const fe_onnx_tensor *want, const char *what)
{
    rt_mapped_file f;
    rt_npy_header h;
    char err[256];
    if (rt_file_map(path, &f, err, sizeof err) != QMC_OK ||
        rt_npy_parse(f.data, f.size, &h, err, sizeof err) != QMC_OK || h.dtype != QMC_DTYPE_F32) {
        set_why(t, "%s: unreadable output %s", what, path);
        return false;
    }
    bool ok = h.count == want->count && h.rank == want->rank;
    for (int d = 0; ok && d < h.rank; d++) ok = h.shape[d] == want->dims[d];
    if (!ok)
        set_why(t, "%s: output has %lld elements, ONNX %lld", what, (long long)h.count,
                (long long)want->count);
    const float *got = (const float *)(f.data + h.data_offset);
    for (int64_t i = 0; ok && i < h.count; i++) {
        double w = 0, g = got[i];
        if (!fe_onnx_tensor_get(want, i, &w)) {
            set_why(t, "%s: the expected output is not numeric", what);
            ok = false;
            break;
        }
        if ((isnan(w) && isnan(g)) || g == w) continue;
        if (!(fabs(g - w) <= ATOL + RTOL * fabs(w))) {
            set_why(t, "%s: element %lld is %.9g, ONNX %.9g", what, (long long)i, g, w);
            ok = false;
        }
    }
    rt_file_unmap(&f);
    return ok;
}

/* ---- one test -------------------------------------------------------------------- */

typedef struct prepared {
    const char *qm;              /* the imported model */
    const char *args;            /* --input ... --output ... of qmc run and the executable */
    const char *outs[MAX_IO];    /* output .npy paths */
    fe_onnx_tensor want[MAX_IO]; /* expected outputs */
    int n_outs;
} prepared;

/* The K-th .pb file of a data set ("input"/"output"); false if absent or
 * not a tensor (a sequence or an optional value: UNSUPPORTED). */
static bool read_pb(sup_arena *a, test *t, const char *set, const char *kind, int k,
                    fe_onnx_tensor *out)
{
    const char *path = str(a, "%s/%s_%d.pb", set, kind, k);
    struct stat st;
    if (stat(path, &st) != 0) {
        set_why(t, "no %s_%d.pb", kind, k);
        return false;
    }
    FILE *null = fopen("/dev/null", "w");
    sup_diag_set_stream(null);
    bool ok = fe_onnx_read_tensor(a, path, out);
    sup_diag_set_stream(NULL);
    fclose(null);
    if (!ok) {
        t->st = UNSUPPORTED;
        set_why(t, "%s_%d.pb is not a tensor (a sequence or optional value)", kind, k);
    }
    return ok;
}

/* The names `input`/`output` lines of the imported text declare, in order. */
static int declared(sup_arena *a, const char *text, const char *kind, const char **names)
{
    int n = 0;
    size_t kl = strlen(kind);
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        while (*l == ' ') l++;
        if (strncmp(l, kind, kl) != 0 || l[kl] != ' ' || n == MAX_IO) continue;
        const char *s = l + kl + 1, *e = strchr(s, ':');
        if (e) names[n++] = sup_arena_strndup(a, s, (size_t)(e - s));
    }
    return n;
}

/* Imports the model with the data set's parameters bound and writes the
 * model, its weights and inputs into dir. */
static bool prepare(sup_arena *a, test *t, fe_onnx_model *m, const char *set, const char *dir,
                    prepared *p)
{
    /* inputs: parameters become initializers, the others keep their shape */
    fe_onnx_tensor *inits =
        sup_arena_alloc(a, sizeof *inits * (size_t)(m->n_initializers + m->n_inputs + 1));
    memcpy(inits, m->initializers, sizeof *inits * (size_t)m->n_initializers);
    fe_onnx_value_info *ins = sup_arena_alloc(a, sizeof *ins * (size_t)(m->n_inputs + 1));
    fe_onnx_shape *shapes = sup_arena_alloc(a, sizeof *shapes * (size_t)(m->n_inputs + 1));
    fe_onnx_tensor *feed = sup_arena_alloc(a, sizeof *feed * (size_t)(m->n_inputs + 1));
    int n_inits = m->n_initializers, n_ins = 0, n_shapes = 0;
    for (int k = 0; k < m->n_inputs; k++) {
        fe_onnx_tensor v;
        if (!read_pb(a, t, set, "input", k, &v)) return false;
        if (only_param(m, m->inputs[k].name)) {
            v.name = m->inputs[k].name;
            inits[n_inits++] = v;
            continue;
        }
        feed[n_ins] = v;
        ins[n_ins++] = m->inputs[k];
        if (v.rank <= RT_MAX_RANK && v.rank > 0) {
            fe_onnx_shape *s = &shapes[n_shapes++];
            s->name = m->inputs[k].name, s->rank = v.rank;
            for (int d = 0; d < v.rank; d++) s->dims[d] = v.dims[d];
        }
    }
    fe_onnx_model bound = *m;
    bound.initializers = inits, bound.n_initializers = n_inits;
    bound.inputs = ins, bound.n_inputs = n_ins;
    fe_onnx_import_options o = {.model_name = t->name,
                                .weights_file = "w.safetensors",
                                .shapes = shapes,
                                .n_shapes = n_shapes};
    fe_onnx_imported imp;
    char *diag = NULL;
    size_t diag_len = 0;
    FILE *df = open_memstream(&diag, &diag_len);
    sup_diag_set_stream(df);
    bool ok = fe_onnx_import(a, &bound, &o, &imp);
    sup_diag_set_stream(NULL);
    fclose(df);
    if (!ok) {
        t->st = UNSUPPORTED;
        const char *msg = diag; /* the path of the test's folder goes */
        size_t dl = strlen(opt.data);
        if (strncmp(msg, opt.data, dl) == 0 && msg[dl] == '/') msg += dl + 1;
        set_why(t, "%.*s", (int)strcspn(msg, "\n"), msg);
        free(diag);
        return false;
    }
    free(diag);
    p->qm = str(a, "%s/m.qm", dir);
    char err[256];
    FILE *f = fopen(p->qm, "w");
    if (!f || fwrite(imp.text, 1, imp.len, f) != imp.len || fclose(f) != 0 ||
        (imp.n_weights &&
         !fe_onnx_write_weights(&imp, str(a, "%s/w.safetensors", dir), "test", err, sizeof err))) {
        set_why(t, "cannot write the model into %s", dir);
        return false;
    }
    const char *in_names[MAX_IO], *out_names[MAX_IO];
    int n_in = declared(a, imp.text, "input", in_names),
        n_out = declared(a, imp.text, "output", out_names);
    if (n_in != n_ins || n_out != m->n_outputs || n_out > MAX_IO) {
        set_why(t, "the text declares %d inputs and %d outputs", n_in, n_out);
        return false;
    }
    const char *args = "";
    for (int k = 0; k < n_in; k++) {
        const char *path = str(a, "%s/in%d.npy", dir, k);
        if (!write_input(path, &feed[k])) {
            set_why(t, "cannot write input %d", k);
            return false;
        }
        args = str(a, "%s --input %s=%s", args, in_names[k], path);
    }
    for (int k = 0; k < n_out; k++) {
        if (!read_pb(a, t, set, "output", k, &p->want[k])) return false;
        p->outs[k] = str(a, "%s/out%d.npy", dir, k);
        args = str(a, "%s --output %s=%s", args, out_names[k], p->outs[k]);
    }
    p->n_outs = n_out;
    p->args = args;
    return true;
}

/* Runs a command with stderr into dir/err.txt; false with why. */
static bool run(sup_arena *a, test *t, const char *dir, const char *what, const char *cmd)
{
    const char *errf = str(a, "%s/err.txt", dir);
    if (opt.verbose) fprintf(stderr, "  %s\n", cmd);
    if (system(str(a, "%s 2>%s >/dev/null", cmd, errf)) == 0) return true;
    char line[200];
    first_line(errf, line, sizeof line);
    set_why(t, "%s failed: %s", what, line);
    return false;
}

static bool outputs_match(sup_arena *a, test *t, const prepared *p, const char *what)
{
    for (int k = 0; k < p->n_outs; k++)
        if (!compare(t, p->outs[k], &p->want[k], str(a, "%s output %d", what, k))) return false;
    return true;
}

static void run_test(test *t, bool compile)
{
    sup_arena a = {0};
    const char *dir = str(&a, "%s/%s", opt.work, t->name);
    mkdir(dir, 0777);
    const char *model = str(&a, "%s/%s/model.onnx", opt.data, t->name);
    fe_onnx_model m;
    t->st = FAIL;
    sup_diag_reset();
    FILE *null = fopen("/dev/null", "w");
    sup_diag_set_stream(null);
    bool opened = fe_onnx_open(&a, model, &m);
    sup_diag_set_stream(NULL);
    fclose(null);
    if (!opened) {
        t->st = UNSUPPORTED;
        set_why(t, "the reader refuses the model");
        sup_arena_free(&a);
        return;
    }
    for (int s = 0;; s++) {
        const char *set = str(&a, "%s/%s/test_data_set_%d", opt.data, t->name, s);
        struct stat st;
        if (stat(set, &st) != 0) {
            t->st = s ? PASS : FAIL;
            if (!s) set_why(t, "no test data");
            break;
        }
        prepared p = {0};
        if (!prepare(&a, t, &m, set, dir, &p)) break;
        if (!run(&a, t, dir, "qmc run", str(&a, "%s run %s%s", opt.qmc, p.qm, p.args)) ||
            !outputs_match(&a, t, &p, "interpreter"))
            break;
        if (compile) {
            const char *exe = str(&a, "%s/m.exe", dir);
            if (!run(&a, t, dir, "qmc compile",
                     str(&a, "%s compile %s -o %s", opt.qmc, p.qm, exe)) ||
                !run(&a, t, dir, "the executable", str(&a, "%s%s", exe, p.args)) ||
                !outputs_match(&a, t, &p, "compiled"))
                break;
            t->compiled = true;
        }
    }
    fe_onnx_close(&m);
    if (t->st == PASS) system(str(&a, "rm -rf %s", dir)); /* before dir is freed */
    sup_arena_free(&a);
}

/* ---- the suite ------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The tests to run: every folder of --data, or the names in --list. */
static int collect(sup_arena *a, const char **names)
{
    int n = 0;
    if (opt.list) {
        FILE *f = fopen(opt.list, "r");
        if (!f) {
            fprintf(stderr, "conformance: cannot read %s\n", opt.list);
            exit(2);
        }
        char line[512];
        while (fgets(line, sizeof line, f) && n < MAX_TESTS) {
            line[strcspn(line, "\n#")] = 0;
            char *s = line;
            while (*s == ' ') s++;
            size_t len = strcspn(s, " ");
            if (len) names[n++] = sup_arena_strndup(a, s, len);
        }
        fclose(f);
        return n;
    }
    DIR *d = opendir(opt.data);
    if (!d) {
        fprintf(stderr, "conformance: cannot read %s (apt-get install libonnx-testdata)\n",
                opt.data);
        exit(2);
    }
    for (struct dirent *e; (e = readdir(d)) && n < MAX_TESTS;)
        if (strncmp(e->d_name, "test_", 5) == 0) names[n++] = sup_arena_strdup(a, e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    return n;
}

/* An _expanded test belongs to its twin's operator. */
static const char *op_of(sup_arena *a, const char *name)
{
    size_t n = strlen(name);
    const char *base =
        n > 9 && strcmp(name + n - 9, "_expanded") == 0 ? sup_arena_strndup(a, name, n - 9) : name;
    fe_onnx_model m;
    FILE *null = fopen("/dev/null", "w");
    sup_diag_set_stream(null);
    bool ok = fe_onnx_open(a, str(a, "%s/%s/model.onnx", opt.data, base), &m);
    sup_diag_set_stream(NULL);
    fclose(null);
    if (!ok) return "?";
    const char *op = primary_op(a, &m);
    fe_onnx_close(&m);
    return op;
}

static int by_op(const void *a, const void *b)
{
    const test *x = a, *y = b;
    int c = strcmp(x->op, y->op);
    return c ? c : strcmp(x->name, y->name);
}

/* The operators issue 15 asks for (bold in the table). */
static const char *const listed[] = {"MatMul",
                                     "Gemm",
                                     "Add",
                                     "Sub",
                                     "Mul",
                                     "Div",
                                     "Pow",
                                     "Sqrt",
                                     "Reciprocal",
                                     "Neg",
                                     "Exp",
                                     "Erf",
                                     "Tanh",
                                     "Sigmoid",
                                     "Relu",
                                     "LeakyRelu",
                                     "Gelu",
                                     "Clip",
                                     "HardSigmoid",
                                     "HardSwish",
                                     "Softmax",
                                     "LogSoftmax",
                                     "LayerNormalization",
                                     "ReduceMean",
                                     "ReduceSum",
                                     "ReduceMax",
                                     "Reshape",
                                     "Flatten",
                                     "Transpose",
                                     "Squeeze",
                                     "Unsqueeze",
                                     "Slice",
                                     "Split",
                                     "Concat",
                                     "Gather",
                                     "Expand",
                                     "Where",
                                     "Trilu",
                                     "Cast",
                                     "Shape",
                                     "Constant",
                                     "ConstantOfShape",
                                     "Range",
                                     "Identity",
                                     "Dropout",
                                     NULL};

static void write_table(const test *tests, int n)
{
    FILE *f = fopen(opt.table, "w");
    if (!f) return;
    fprintf(f, "| operator | tests | pass | fail | unsupported |\n|---|---:|---:|---:|---:|\n");
    for (int i = 0; i < n;) {
        int j = i, c[3] = {0};
        while (j < n && strcmp(tests[j].op, tests[i].op) == 0) c[tests[j++].st]++;
        bool bold = false;
        for (int k = 0; listed[k]; k++) bold |= strcmp(listed[k], tests[i].op) == 0;
        fprintf(f, "| %s%s%s | %d | %d | %d | %d |\n", bold ? "**" : "", tests[i].op,
                bold ? "**" : "", j - i, c[PASS], c[FAIL], c[UNSUPPORTED]);
        i = j;
    }
    fclose(f);
}

static void usage(void)
{
    fprintf(stderr, "usage: conformance --qmc QMC --work DIR [--data DIR] [--list FILE] "
                    "[--write-list FILE] [--table FILE] [--results FILE] "
                    "[--compile none|per-op|all] [--filter TEXT] [-v]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "-v")) {
            opt.verbose = true;
            continue;
        }
        if (!v) usage();
        if (!strcmp(argv[i], "--qmc"))
            opt.qmc = v;
        else if (!strcmp(argv[i], "--work"))
            opt.work = v;
        else if (!strcmp(argv[i], "--data"))
            opt.data = v;
        else if (!strcmp(argv[i], "--list"))
            opt.list = v;
        else if (!strcmp(argv[i], "--write-list"))
            opt.write_list = v;
        else if (!strcmp(argv[i], "--table"))
            opt.table = v;
        else if (!strcmp(argv[i], "--results"))
            opt.results = v;
        else if (!strcmp(argv[i], "--filter"))
            opt.filter = v;
        else if (!strcmp(argv[i], "--compile"))
            opt.compile = !strcmp(v, "none")     ? 0
                          : !strcmp(v, "all")    ? 2
                          : !strcmp(v, "per-op") ? 1
                                                 : -1;
        else
            usage();
        i++;
    }
    if (!opt.qmc || !opt.work || opt.compile < 0) usage();
    mkdir(opt.work, 0777);
    sup_arena a = {0};
    const char **names = sup_arena_alloc(&a, sizeof *names * MAX_TESTS);
    int n = collect(&a, names);
    test *tests = sup_arena_alloc(&a, sizeof *tests * (size_t)(n + 1));
    int nt = 0, count[3] = {0}, compiled = 0;
    for (int i = 0; i < n; i++) {
        if (opt.filter && !strstr(names[i], opt.filter)) continue;
        test *t = &tests[nt++];
        t->name = names[i];
        t->op = op_of(&a, names[i]);
    }
    qsort(tests, (size_t)nt, sizeof *tests, by_op);
    for (int i = 0; i < nt; i++) {
        test *t = &tests[i];
        /* per-op: until a test of the operator has passed compiled */
        bool any_compiled = false;
        for (int j = i - 1; j >= 0 && strcmp(tests[j].op, t->op) == 0; j--)
            any_compiled |= tests[j].compiled;
        bool compile = opt.compile == 2 || (opt.compile == 1 && !any_compiled);
        run_test(t, compile);
        count[t->st]++;
        compiled += t->compiled;
        if (opt.verbose || (opt.list && t->st != PASS))
            fprintf(stderr, "%s %s (%s)%s%s%s\n", status_names[t->st], t->name, t->op,
                    t->compiled ? " [compiled]" : "", *t->why ? ": " : "", t->why);
    }
    if (opt.results) {
        FILE *f = fopen(opt.results, "w");
        for (int i = 0; f && i < nt; i++)
            fprintf(f, "%s\t%s\t%s%s\t%s\n", status_names[tests[i].st], tests[i].op, tests[i].name,
                    tests[i].compiled ? " (compiled)" : "", tests[i].why);
        if (f) fclose(f);
    }
    if (opt.write_list) {
        FILE *f = fopen(opt.write_list, "w");
        if (f) {
            fprintf(f, "# ONNX node tests (Debian's libonnx-testdata) that qmc passes: CI runs\n"
                       "# these and fails on any regression. Regenerate with\n"
                       "# tests/onnx_conformance/update.sh (see its comment).\n");
            for (int i = 0; i < nt; i++)
                if (tests[i].st == PASS) fprintf(f, "%s\n", tests[i].name);
            fclose(f);
        }
    }
    if (opt.table) write_table(tests, nt);
    printf("%d tests: %d pass (%d compiled and run too), %d fail, %d unsupported\n", nt,
           count[PASS], compiled, count[FAIL], count[UNSUPPORTED]);
    sup_arena_free(&a);
    return opt.list ? (count[PASS] == nt ? 0 : 1) : (count[FAIL] ? 1 : 0);
}
