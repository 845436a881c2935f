/* qtest.c: helpers shared by the quantization tests. See qtest.h. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "qtest.h"

extern char **environ;

const char *qt_data(sup_arena *arena, const char *rel)
{
    const char *root = getenv("QMC_DATA");
    if (!root) root = "tests/data";
    return sup_arena_printf(arena, "%s/%s", root, rel);
}

qt_npy qt_load(sup_arena *arena, const char *path)
{
    qt_npy r;
    rt_mapped_file f;
    char err[256];
    if (rt_file_map(path, &f, err, sizeof err) != QMC_OK ||
        rt_npy_parse(f.data, f.size, &r.h, err, sizeof err) != QMC_OK)
        fail_msg("%s: %s", path, err);
    r.data = sup_arena_alloc(arena, r.h.data_bytes + 1);
    memcpy(r.data, f.data + r.h.data_offset, r.h.data_bytes);
    rt_file_unmap(&f);
    return r;
}

bool qt_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **qt_list_dirs(sup_arena *arena, const char *dir, const char *prefix, int *count)
{
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open %s", dir);
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        const char *path = sup_arena_printf(arena, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        names = sup_arena_grow(arena, names, (size_t)n, (size_t)n + 1, sizeof *names);
        names[n++] = sup_arena_strdup(arena, e->d_name);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    *count = n;
    return names;
}

const fe_json *qt_read_json(sup_arena *arena, const char *path)
{
    rt_mapped_file f;
    char err[256];
    size_t off = 0;
    if (rt_file_map(path, &f, err, sizeof err) != QMC_OK) fail_msg("%s: %s", path, err);
    char *text = sup_arena_strndup(arena, (const char *)f.data, f.size);
    rt_file_unmap(&f);
    const fe_json *j = fe_json_parse(arena, text, strlen(text), err, sizeof err, &off);
    if (!j) fail_msg("%s: byte %zu: %s", path, off, err);
    return j;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float *qt_normal(sup_arena *arena, int64_t n, uint64_t seed)
{
    float *x = sup_arena_alloc(arena, (size_t)n * sizeof(float));
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ((double)(splitmix64(&s) >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
        double u2 = (double)(splitmix64(&s) >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1)), t = 2.0 * M_PI * u2;
        x[i] = (float)(r * cos(t));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(t));
    }
    return x;
}

char *qt_tmpdir(sup_arena *arena)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = sup_arena_printf(arena, "%s/qmc-quant-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(tmpl)) fail_msg("mkdtemp failed");
    return tmpl;
}

void qt_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static char *slurp(sup_arena *arena, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sup_arena_strdup(arena, "");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = sup_arena_alloc(arena, (size_t)n + 1);
    if (n > 0 && fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = 0;
    fclose(f);
    return s;
}

int qt_run_qmc(sup_arena *arena, const char *const *argv, char **out, char **err)
{
    const char *qmc = getenv("QMC");
    if (!qmc) fail_msg("QMC is not set (run the tests through ctest)");
    int argc = 0;
    while (argv[argc]) argc++;
    char **args = sup_arena_alloc(arena, sizeof(char *) * (size_t)(argc + 2));
    args[0] = (char *)qmc;
    for (int i = 0; i < argc; i++) args[i + 1] = (char *)argv[i];
    char *dir = qt_tmpdir(arena);
    char *opath = sup_arena_printf(arena, "%s/stdout", dir);
    char *epath = sup_arena_printf(arena, "%s/stderr", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, opath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, epath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, qmc, &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    int status = -1;
    if (rc == 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
        status = WEXITSTATUS(status);
    else
        status = -1;
    if (out) *out = slurp(arena, opath);
    if (err) *err = slurp(arena, epath);
    qt_rmdir(dir);
    return status;
}
