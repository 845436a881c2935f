/* onnx_weights.c: the weights an ONNX import produces, as a safetensors
 * file (`qmc import`) or as tensors in memory (`qmc compile|run|eval|inspect
 * MODEL.onnx`).
 *
 * Needs: a successful fe_onnx_import of a model that is still open (its
 * tensors' data is read here). Guarantees: the file is written atomically,
 * one tensor converted at a time; the in-memory set holds every weight once:
 * an f32 tensor of the file in its stored layout is used where it lies, a
 * transposed one is transposed where it lies when nothing else reads it,
 * and only the rest (other types, computed constants, tensors also used in
 * the other layout, external data) is converted into a copy. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx_import.h"

static bool view_of_tensor(const fe_imp_value *v) { return v->tensor && !v->f && !v->i; }

void fe_onnx_weight_read(const fe_onnx_weight *w, float *out)
{
    const fe_imp_value *v = w->value;
    int64_t n = 1;
    for (int d = 0; d < w->rank; d++) n *= w->shape[d];
    if (view_of_tensor(v) && v->tensor->dtype == FE_ONNX_FLOAT && w->transposed == v->transposed) {
        memcpy(out, v->tensor->data, sizeof(float) * (size_t)n); /* the tensor as the file has it */
        return;
    }
    if (!w->transposed) {
        for (int64_t i = 0; i < n; i++) out[i] = (float)fe_imp_const_at(NULL, v, i);
        return;
    }
    int64_t rows = v->dims[0], cols = v->dims[1]; /* logical [rows, cols] stored as [cols, rows] */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            out[c * rows + r] = (float)fe_imp_const_at(NULL, v, r * cols + c);
}

/* ---- in memory -------------------------------------------------------------------------- */

/* Transposes the rows x cols matrix a in place into cols x rows, following
 * each cycle of the permutation once (a bit per element marks the moved). */
static void transpose_in_place(float *a, int64_t rows, int64_t cols)
{
    int64_t n = rows * cols;
    uint8_t *done = calloc((size_t)(n + 7) / 8, 1);
    QMC_ASSERT(done);
    for (int64_t start = 0; start < n; start++) {
        if (done[start >> 3] & (1u << (start & 7))) continue;
        /* element p = r * cols + c goes to c * rows + r */
        int64_t p = start;
        float carry = a[p];
        do {
            int64_t to = (p % cols) * rows + p / cols;
            float t = a[to];
            a[to] = carry;
            carry = t;
            done[to >> 3] |= (uint8_t)(1u << (to & 7));
            p = to;
        } while (p != start);
    }
    free(done);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const fe_tensor *)a)->name, ((const fe_tensor *)b)->name);
}

/* How many weights read tensor t. */
static int readers(const fe_onnx_imported *imp, const fe_onnx_tensor *t)
{
    int n = 0;
    for (int i = 0; i < imp->n_weights; i++) {
        const fe_imp_value *v = imp->weights[i].value;
        n += view_of_tensor(v) && v->tensor == t;
    }
    return n;
}

/* Weight w's f32 elements in its stored layout: where the ONNX data lies,
 * or a copy. */
static const float *weight_data(sup_arena *arena, fe_onnx_imported *imp, const fe_onnx_weight *w,
                                int64_t n)
{
    const fe_imp_value *v = w->value;
    const fe_onnx_tensor *t = view_of_tensor(v) ? v->tensor : NULL;
    bool f32 = t && t->dtype == FE_ONNX_FLOAT && ((uintptr_t)t->data & 3) == 0;
    if (f32 && w->transposed == v->transposed) return t->data;
    /* the file's data lives in the import's arena unless external: a
     * tensor only this weight reads is turned around where it lies */
    if (f32 && !t->external && w->rank == 2 && readers(imp, t) == 1) {
        float *a = (float *)t->data;
        /* stored = the transpose of the data read as a matrix of the
         * value's dims (v->transposed: the data is already their transpose) */
        int64_t rows = v->transposed ? v->dims[1] : v->dims[0], cols = n / rows;
        transpose_in_place(a, rows, cols);
        ((fe_onnx_tensor *)t)->data = a; /* now in the weight's layout */
        ((fe_imp_value *)v)->transposed = w->transposed;
        return a;
    }
    float *copy = sup_arena_alloc(arena, sizeof(float) * (size_t)(n ? n : 1));
    fe_onnx_weight_read(w, copy);
    return copy;
}

void fe_onnx_weights_source(sup_arena *arena, fe_onnx_imported *imp, const char *path,
                            fe_safetensors *out)
{
    memset(out, 0, sizeof *out);
    out->path = sup_arena_strdup(arena, path);
    out->tensors = sup_arena_alloc(arena, sizeof *out->tensors * (size_t)(imp->n_weights + 1));
    for (int i = 0; i < imp->n_weights; i++) {
        const fe_onnx_weight *w = &imp->weights[i];
        fe_tensor *t = &out->tensors[i];
        t->name = w->name;
        t->dtype = QMC_DTYPE_F32;
        t->rank = w->rank;
        t->count = 1;
        for (int d = 0; d < w->rank; d++) t->shape[d] = w->shape[d], t->count *= w->shape[d];
        t->size = sizeof(float) * (size_t)t->count;
        t->data = weight_data(arena, imp, w, t->count);
    }
    out->count = imp->n_weights;
    qsort(out->tensors, (size_t)out->count, sizeof *out->tensors, by_name);
}

/* ---- the weights file ------------------------------------------------------------------------ */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 32)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static bool write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n; }

bool fe_onnx_write_weights(const fe_onnx_imported *imp, const char *path, const char *source,
                           char *errbuf, size_t err_size)
{
    char *hdr = NULL;
    size_t hlen = 0, offset = 0, max_bytes = 0;
    FILE *h = open_memstream(&hdr, &hlen);
    if (!h) {
        snprintf(errbuf, err_size, "out of memory");
        return false;
    }
    fprintf(h, "{\"__metadata__\":{\"format\":\"pt\",\"generator\":\"qmc import\",\"source\":");
    json_string(h, source ? source : "");
    fputc('}', h);
    for (int i = 0; i < imp->n_weights; i++) {
        const fe_onnx_weight *w = &imp->weights[i];
        size_t bytes = sizeof(float);
        for (int d = 0; d < w->rank; d++) bytes *= (size_t)w->shape[d];
        fputc(',', h);
        json_string(h, w->name);
        fprintf(h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < w->rank; d++)
            fprintf(h, "%s%lld", d ? "," : "", (long long)w->shape[d]);
        fprintf(h, "],\"data_offsets\":[%zu,%zu]}", offset, offset + bytes);
        offset += bytes;
        if (bytes > max_bytes) max_bytes = bytes;
    }
    fputc('}', h);
    fflush(h);
    while ((8 + hlen) % 64) fputc(' ', h), fflush(h); /* aligns the data */
    fclose(h);
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    float *buf = malloc(max_bytes ? max_bytes : 1);
    int fd = -1;
    FILE *f = NULL;
    bool ok = tmp && buf;
    if (ok) {
        memcpy(tmp, path, len);
        memcpy(tmp + len, ".tmp.XXXXXX", 12);
        fd = mkstemp(tmp);
        ok = fd >= 0 && (f = fdopen(fd, "wb")) != NULL;
    }
    uint8_t lenbytes[8];
    for (int i = 0; i < 8; i++) lenbytes[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    ok = ok && write_all(f, lenbytes, 8) && write_all(f, hdr, hlen);
    for (int i = 0; ok && i < imp->n_weights; i++) {
        const fe_onnx_weight *w = &imp->weights[i];
        size_t n = 1;
        for (int d = 0; d < w->rank; d++) n *= (size_t)w->shape[d];
        fe_onnx_weight_read(w, buf);
        ok = write_all(f, buf, n * sizeof(float));
    }
    if (f && fclose(f) != 0) ok = false;
    if (!f && fd >= 0) close(fd);
    if (ok) {
        mode_t mask = umask(0);
        umask(mask);
        chmod(tmp, 0666 & ~mask);
        ok = rename(tmp, path) == 0;
    }
    if (!ok) {
        snprintf(errbuf, err_size, "cannot write '%s': %s", path, strerror(errno));
        if (tmp && fd >= 0) unlink(tmp);
    }
    free(tmp);
    free(buf);
    free(hdr);
    return ok;
}
