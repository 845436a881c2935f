/* checkpoint.c: a model's weights as one set of tensors, from a single
 * safetensors file, a Hugging Face sharded checkpoint or a folder.
 *
 * A sharded checkpoint is an index, model.safetensors.index.json:
 *
 *   {"metadata": {"total_size": N}, "weight_map": {"TENSOR": "SHARD", ...}}
 *
 * with each SHARD (model-00001-of-00003.safetensors) a safetensors file in
 * the index's folder. Each shard is mapped and validated exactly as a single
 * file (safetensors.c); then every tensor of a shard must be listed for
 * that shard and every listed tensor must be in its shard, so no tensor
 * comes from two places. The tensors of all shards are sorted by name as
 * one file's are; their data stays in the shards' mappings (never copied,
 * bf16 and f16 included: readers convert one tensor at a time). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontend.h"

static qmc_status fail(qmc_status st, char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static qmc_status fail(qmc_status st, char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && err_size) vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return st;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* One entry of the weight map. */
typedef struct listed {
    const char *name;
    int shard; /* into the sorted shard names */
    bool found;
} listed;

static int by_listed_name(const void *a, const void *b)
{
    return strcmp(((const listed *)a)->name, ((const listed *)b)->name);
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int by_tensor_name(const void *a, const void *b)
{
    return strcmp(((const fe_tensor *)a)->name, ((const fe_tensor *)b)->name);
}

/* A shard's name is a file in the index's folder. */
static bool plain_file_name(const char *s)
{
    return s[0] && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

/* The weight map: its entries sorted by tensor name, each with the index of
 * its shard among the distinct shard names (sorted). */
static qmc_status read_weight_map(sup_arena *arena, const fe_json *map, listed **entries,
                                  const char ***shards, int *n_shards, char *err, size_t err_size)
{
    listed *e = sup_arena_alloc(arena, sizeof *e * (size_t)(map->count + 1));
    const char **names = sup_arena_alloc(arena, sizeof *names * (size_t)(map->count + 1));
    for (int i = 0; i < map->count; i++) {
        const fe_json *v = map->items[i];
        if (v->kind != FE_JSON_STRING)
            return fail(QMC_ERR_FORMAT, err, err_size,
                        "the index maps tensor '%s' to something other than a file name",
                        map->keys[i]);
        if (!plain_file_name(v->string))
            return fail(QMC_ERR_FORMAT, err, err_size,
                        "the index maps tensor '%s' to '%s', which is not a file name in the "
                        "index's folder",
                        map->keys[i], v->string);
        e[i] = (listed){map->keys[i], -1, false};
        names[i] = v->string;
    }
    /* the distinct shard names, sorted */
    const char **sorted = sup_arena_alloc(arena, sizeof *sorted * (size_t)(map->count + 1));
    memcpy(sorted, names, sizeof *sorted * (size_t)map->count);
    qsort(sorted, (size_t)map->count, sizeof *sorted, by_string);
    int n = 0;
    for (int i = 0; i < map->count; i++)
        if (!n || strcmp(sorted[n - 1], sorted[i])) sorted[n++] = sorted[i];
    for (int i = 0; i < map->count; i++) {
        const char **at = bsearch(&names[i], sorted, (size_t)n, sizeof *sorted, by_string);
        e[i].shard = (int)(at - sorted);
    }
    qsort(e, (size_t)map->count, sizeof *e, by_listed_name);
    *entries = e;
    *shards = sorted;
    *n_shards = n;
    return QMC_OK;
}

/* Maps and validates every shard; out->tensors gets all their tensors. */
static qmc_status open_shards(sup_arena *arena, const char *dir, const char **shards, int n,
                              fe_safetensors *out, char *err, size_t err_size)
{
    char why[400];
    out->files = sup_arena_alloc(arena, sizeof *out->files * (size_t)(n + 1));
    out->file_names = shards;
    fe_safetensors *parts = sup_arena_alloc(arena, sizeof *parts * (size_t)(n + 1));
    const char **sources = sup_arena_alloc(arena, sizeof *sources * (size_t)(n + 2));
    sources[0] = out->sources[0]; /* the index */
    out->sources = sources;
    int total = 0;
    for (int s = 0; s < n; s++) {
        const char *path = !strcmp(dir, ".")   ? shards[s]
                           : !strcmp(dir, "/") ? sup_arena_printf(arena, "/%s", shards[s])
                                               : sup_arena_printf(arena, "%s/%s", dir, shards[s]);
        sources[out->n_sources++] = path;
        qmc_status st = rt_file_map(path, &out->files[s], why, sizeof why);
        if (st == QMC_OK) {
            out->n_files = s + 1;
            st = fe_safetensors_parse(arena, out->files[s].data, out->files[s].size, &parts[s], why,
                                      sizeof why);
        }
        if (st != QMC_OK) return fail(st, err, err_size, "shard '%s': %s", shards[s], why);
        total += parts[s].count;
    }
    out->tensors = sup_arena_alloc(arena, sizeof *out->tensors * (size_t)(total + 1));
    for (int s = 0; s < n; s++)
        for (int i = 0; i < parts[s].count; i++) {
            fe_tensor *t = &out->tensors[out->count++];
            *t = parts[s].tensors[i];
            t->file = s;
            t->mapped = true;
        }
    return QMC_OK;
}

/* Every tensor of a shard is listed for it; every listed tensor was found. */
static qmc_status check_listing(const fe_safetensors *out, listed *entries, int n_entries,
                                char *err, size_t err_size)
{
    for (int i = 0; i < out->count; i++) {
        const fe_tensor *t = &out->tensors[i];
        listed key = {.name = t->name};
        listed *e = bsearch(&key, entries, (size_t)n_entries, sizeof key, by_listed_name);
        const char *shard = out->file_names[t->file];
        if (!e)
            return fail(QMC_ERR_FORMAT, err, err_size,
                        "shard '%s' holds tensor '%s', which the index does not list", shard,
                        t->name);
        if (e->shard != t->file) {
            const char *listed = out->file_names[e->shard];
            for (int j = 0; j < out->count; j++)
                if (out->tensors[j].file == e->shard && !strcmp(out->tensors[j].name, t->name))
                    return fail(QMC_ERR_FORMAT, err, err_size,
                                "tensor '%s' is in two shards, '%s' and '%s' (the index lists it "
                                "in '%s')",
                                t->name, listed, shard, listed);
            return fail(QMC_ERR_FORMAT, err, err_size,
                        "shard '%s' holds tensor '%s', which the index lists in shard '%s'", shard,
                        t->name, listed);
        }
        e->found = true;
    }
    for (int i = 0; i < n_entries; i++)
        if (!entries[i].found)
            return fail(QMC_ERR_FORMAT, err, err_size,
                        "the index lists tensor '%s' in shard '%s', which does not hold it",
                        entries[i].name, out->file_names[entries[i].shard]);
    return QMC_OK;
}

static qmc_status open_index(sup_arena *arena, const char *path, fe_safetensors *out, char *err,
                             size_t err_size)
{
    rt_mapped_file f;
    qmc_status st = rt_file_map(path, &f, err, err_size);
    if (st != QMC_OK) return st;
    char jerr[96];
    size_t joff = 0;
    fe_json *root = fe_json_parse(arena, (const char *)f.data, f.size, jerr, sizeof jerr, &joff);
    rt_file_unmap(&f); /* the tree holds copies of its strings */
    if (!root)
        return fail(QMC_ERR_FORMAT, err, err_size, "bad JSON in the index at byte %zu: %s", joff,
                    jerr);
    const fe_json *map = root->kind == FE_JSON_OBJECT ? fe_json_get(root, "weight_map") : NULL;
    if (!map || map->kind != FE_JSON_OBJECT)
        return fail(QMC_ERR_FORMAT, err, err_size, "the index has no 'weight_map' object");
    listed *entries = NULL;
    const char **shards = NULL;
    int n_shards = 0;
    st = read_weight_map(arena, map, &entries, &shards, &n_shards, err, err_size);
    if (st != QMC_OK) return st;
    const char *slash = strrchr(path, '/');
    const char *dir = slash ? sup_arena_strndup(arena, path, (size_t)(slash - path)) : ".";
    if (slash == path) dir = "/";
    const char **index = sup_arena_alloc(arena, sizeof *index);
    index[0] = sup_arena_strdup(arena, path);
    out->sources = index;
    out->n_sources = 1;
    st = open_shards(arena, dir, shards, n_shards, out, err, err_size);
    if (st == QMC_OK) st = check_listing(out, entries, map->count, err, err_size);
    if (st != QMC_OK) {
        fe_safetensors_close(out);
        return st;
    }
    qsort(out->tensors, (size_t)out->count, sizeof *out->tensors, by_tensor_name);
    return QMC_OK;
}

qmc_status fe_checkpoint_open(sup_arena *arena, const char *path, fe_safetensors *out, char *err,
                              size_t err_size)
{
    memset(out, 0, sizeof *out);
    const char *file = path;
    if (is_dir(path)) {
        const char *index = sup_arena_printf(arena, "%s/model.safetensors.index.json", path),
                   *single = sup_arena_printf(arena, "%s/model.safetensors", path);
        file = is_file(index) ? index : is_file(single) ? single : NULL;
        if (!file)
            return fail(QMC_ERR_IO, err, err_size,
                        "the folder holds neither model.safetensors.index.json nor "
                        "model.safetensors");
    }
    qmc_status st = ends_with(file, ".json") ? open_index(arena, file, out, err, err_size)
                                             : fe_safetensors_open(arena, file, out, err, err_size);
    out->path = sup_arena_strdup(arena, path);
    return st;
}
