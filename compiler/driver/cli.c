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
