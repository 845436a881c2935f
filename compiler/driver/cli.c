/* cli.c: option parsing shared by the subcommands. Options are long flags
 * (`--weights FILE` or `--weights=FILE`); errors look like clang's:
 * `qmc: error: unknown option '--wieghts'; did you mean '--weights'?` */
#include <stdlib.h>
#include <string.h>

#include "driver.h"

bool cli_flag(cli *c, const char *name)
{
    if (c->i >= c->argc || strcmp(c->argv[c->i], name) != 0) return false;
    c->i++;
    return true;
}

bool cli_value(cli *c, const char *name, const char **value)
{
    if (c->i >= c->argc) return false;
    const char *arg = c->argv[c->i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0) return false;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        c->i++;
        return true;
    }
    if (arg[n] != 0) return false;
    if (c->i + 1 >= c->argc) {
        sup_error_plain("option '%s' needs a value", name);
        c->failed = true;
        c->i++;
        return false;
    }
    *value = c->argv[c->i + 1];
    c->i += 2;
    return true;
}

void cli_unknown(cli *c, const char *const *known)
{
    const char *arg = c->argv[c->i];
    int n = 0;
    while (known[n]) n++;
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    const char *best = rt_closest(name, known, n);
    if (best)
        sup_error_plain("unknown option '%s' for 'qmc %s'; did you mean '%s'?", arg, c->cmd, best);
    else
        sup_error_plain("unknown option '%s' for 'qmc %s' (see 'qmc %s --help')", arg, c->cmd,
                        c->cmd);
    c->failed = true;
    c->i++;
}

bool cli_seq(cli *c, int64_t *seq_len)
{
    const char *v;
    if (!cli_value(c, "--seq", &v)) return false;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end || n < 1 || n > (1 << 20)) {
        sup_error_plain("--seq needs a number of tokens from 1 to %d, not '%s'", 1 << 20, v);
        c->failed = true;
    }
    *seq_len = n;
    return true;
}

bool cli_kv_cache(cli *c, rt_kv_format *format)
{
    const char *v;
    if (!cli_value(c, "--kv-cache", &v)) return false;
    if (!rt_kv_format_parse(v, format)) {
        sup_error_plain("--kv-cache: unknown format '%s' (formats: f32, int8, fp8e4m3)", v);
        c->failed = true;
    }
    return true;
}

/* "1x128" (or "1,128") into dims; false on anything else. */
static bool parse_dims(const char *s, fe_onnx_shape *out)
{
    out->rank = 0;
    while (*s) {
        if (out->rank == RT_MAX_RANK) return false;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 1 || v > ((long long)1 << 40)) return false;
        out->dims[out->rank++] = v;
        s = end;
        if (*s == 'x' || *s == ',') {
            s++;
            if (!*s) return false;
        } else if (*s) {
            return false;
        }
    }
    return out->rank > 0;
}

bool cli_import_flag(cli *c, pass_import_options *o)
{
    const char *v;
    if (cli_flag(c, "--drop-batch")) {
        o->drop_batch = true;
        return true;
    }
    if (!cli_value(c, "--shape", &v)) return false;
    const char *eq = strchr(v, '=');
    fe_onnx_shape *s = &o->shapes[o->n_shapes];
    if (o->n_shapes == PASS_MAX_SHAPES) {
        sup_error_plain("too many --shape options");
        c->failed = true;
        return true;
    }
    if (!eq || eq == v || !parse_dims(eq + 1, s)) {
        sup_error_plain("--shape '%s': expected NAME=DIMS such as input_ids=1x128", v);
        c->failed = true;
        return true;
    }
    char *name = malloc((size_t)(eq - v) + 1);
    QMC_ASSERT(name);
    memcpy(name, v, (size_t)(eq - v));
    name[eq - v] = 0;
    s->name = name;
    o->n_shapes++;
    return true;
}

void cli_import_free(pass_import_options *o)
{
    for (int i = 0; i < o->n_shapes; i++) free((char *)o->shapes[i].name);
    o->n_shapes = 0;
}

void cli_import_usage(FILE *f)
{
    fprintf(f,
            "MODEL may be an ONNX model (MODEL.onnx), imported in memory as `qmc import` would:\n"
            "  --shape NAME=DIMS  the static shape of an input with dynamic dimensions (1x128)\n"
            "  --drop-batch       inputs and outputs lose a leading dimension of size 1\n");
}
