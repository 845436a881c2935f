/* cmd_import.c: `qmc import MODEL.onnx [-o OUT.qm] [--shape NAME=DIMS ...]`
 * translates an ONNX model into a model file in qmc's language (OUT.qm)
 * and the weights it names (OUT.safetensors), so the user can read and
 * edit what was imported. Nothing is written when the model cannot be
 * translated; both files are written atomically. The result is loaded
 * back (parse, graph, shapes) as a check of the importer. */
#include <stdlib.h>
#include <string.h>

#include "driver.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: qmc import MODEL.onnx [-o OUT.qm] [--shape NAME=DIMS ...] [--drop-batch] "
        "[--force]\n\n"
        "Translates an ONNX model into qmc's language: OUT.qm (default: the model's name\n"
        "with .qm, in the current folder) and the weights OUT.safetensors beside it.\n"
        "  -o OUT.qm            where to write the model\n"
        "  --shape NAME=DIMS    the static shape of an input with dynamic dimensions,\n"
        "                       e.g. --shape input_ids=1x128\n"
        "  --drop-batch         inputs and outputs lose a leading dimension of size 1, so the "
        "model\n"
        "                       takes one item and qmc's extra leading dimension makes the batch\n"
        "  --force              overwrite OUT.safetensors even if qmc import did not write it\n"
        "See docs/onnx.md for the operators and patterns qmc translates.\n");
}

/* True if path is a safetensors file written by qmc import (or absent). */
static bool ours_or_absent(sup_arena *arena, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return true;
    fclose(f);
    rt_mapped_file m;
    char err[256];
    if (rt_file_map(path, &m, err, sizeof err) != QMC_OK) return false;
    bool ours = false;
    if (m.size >= 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | m.data[i];
        size_t off;
        fe_json *j = n <= m.size - 8 ? fe_json_parse(arena, (const char *)m.data + 8, (size_t)n,
                                                     err, sizeof err, &off)
                                     : NULL;
        const fe_json *meta = j ? fe_json_get(j, "__metadata__") : NULL;
        const fe_json *gen = meta ? fe_json_get(meta, "generator") : NULL;
        ours = gen && gen->kind == FE_JSON_STRING && strcmp(gen->string, "qmc import") == 0;
    }
    rt_file_unmap(&m);
    return ours;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* "dir/name.qm" -> "dir/name" + suffix */
static char *with_suffix(sup_arena *arena, const char *path, const char *old, const char *suffix)
{
    size_t n = strlen(path), k = strlen(old);
    if (n > k && strcmp(path + n - k, old) == 0) n -= k;
    return sup_arena_printf(arena, "%.*s%s", (int)n, path, suffix);
}

typedef struct import_args {
    const char *model, *out;
    pass_import_options io;
    bool force;
} import_args;

static bool parse_args(int argc, char **argv, import_args *a)
{
    static const char *const known[] = {"-o", "--shape", "--drop-batch", "--force", "--help", NULL};
    cli c = {argc, argv, 1, "import", false};
    while (c.i < c.argc && !c.failed) {
        if (cli_flag(&c, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (cli_flag(&c, "--force")) {
            a->force = true;
            continue;
        }
        if (cli_value(&c, "-o", &a->out) || cli_import_flag(&c, &a->io)) continue;
        if (c.failed) break;
        if (c.argv[c.i][0] == '-' || a->model) {
            cli_unknown(&c, known);
            continue;
        }
        a->model = c.argv[c.i++];
    }
    if (!c.failed && !a->model) usage(stderr);
    return !c.failed && a->model;
}

static int import(const import_args *a, sup_arena *arena)
{
    const char *stem = with_suffix(arena, base_name(a->model), ".onnx", "");
    const char *out = a->out ? a->out : sup_arena_printf(arena, "%s.qm", stem);
    const char *wpath = with_suffix(arena, out, ".qm", ".safetensors");
    fe_onnx_model m;
    if (!fe_onnx_open(arena, a->model, &m)) return 1;
    fe_onnx_import_options o = {.model_name = stem,
                                .weights_file = base_name(wpath),
                                .source_name = base_name(a->model),
                                .shapes = a->io.shapes,
                                .n_shapes = a->io.n_shapes,
                                .drop_batch = a->io.drop_batch};
    fe_onnx_imported imp;
    int status = 1;
    char err[512];
    if (!fe_onnx_import(arena, &m, &o, &imp)) goto done;
    if (imp.n_weights && !a->force && !ours_or_absent(arena, wpath)) {
        sup_error_plain(
            "'%s' exists and was not written by qmc import; use --force to replace it, or -o",
            wpath);
        goto done;
    }
    if (imp.n_weights &&
        !fe_onnx_write_weights(&imp, wpath, base_name(a->model), err, sizeof err)) {
        sup_error_plain("%s", err);
        goto done;
    }
    rt_write_piece piece = {imp.text, imp.len};
    if (rt_file_write_atomic(out, &piece, 1, err, sizeof err) != QMC_OK) {
        sup_error_plain("cannot write '%s': %s", out, err);
        goto done;
    }
    /* the importer's result must read back: a failure here is its bug */
    fe_onnx_close(&m);
    if (!pass_pipeline_load(arena, out, NULL)) {
        sup_error_plain(
            "internal error: qmc import wrote '%s', which does not load (please report this)", out);
        return 1;
    }
    return 0;
done:
    fe_onnx_close(&m);
    return status;
}

int cli_import(int argc, char **argv)
{
    import_args a = {0};
    int status = 1;
    if (parse_args(argc, argv, &a)) {
        sup_arena arena = {0};
        status = import(&a, &arena);
        sup_arena_free(&arena);
    }
    cli_import_free(&a.io);
    return status;
}
