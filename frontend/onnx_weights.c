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

/* ---- codes that arrived with the model ------------------------------------------------------ */

/* Element (r, c) of the stored [rows, cols] matrix as coordinates of the
 * value (whose dims are [cols, rows] when the weight is transposed). */
static void value_coord(const fe_onnx_weight *w, int64_t r, int64_t c, int64_t *co)
{
    co[0] = w->transposed ? c : r;
    co[1] = w->transposed ? r : c;
}

static int64_t scale_index(const fe_imp_quant *q, const int64_t *co)
{
    if (q->axis < 0) return 0;
    if (q->block == 0) return co[q->axis];
    const int64_t *sd = q->scale->dims;
    return q->axis == 0 ? co[0] / q->block * sd[1] + co[1] : co[0] * sd[1] + co[1] / q->block;
}

const fe_quantized *fe_onnx_weight_given(sup_arena *arena, const fe_onnx_weight *w)
{
    const fe_imp_value *v = w->value;
    const fe_imp_quant *q = v->quant;
    if (!w->quantized || !q || w->rank != 2 || v->rank != 2) return NULL;
    int dt = q->codes->dtype;
    int fp8 = dt == FE_ONNX_FLOAT8E4M3FN || dt == FE_ONNX_FLOAT8E5M2 ? dt : 0;
    /* FP8: the raw bytes of an initializer read in its own order */
    const fe_imp_value *cv = q->codes;
    if (fp8 && (!cv->tensor || cv->tensor->dtype != dt || cv->transposed ||
                cv->tensor->count != fe_imp_count(cv)))
        return NULL;
    int bits = fp8 || dt == FE_ONNX_INT8 || dt == FE_ONNX_UINT8 ? 8
               : dt == FE_ONNX_INT4 || dt == FE_ONNX_UINT4      ? 4
                                                                : 0;
    bool is_signed = dt == FE_ONNX_INT8 || dt == FE_ONNX_INT4;
    int64_t rows = w->shape[0], cols = w->shape[1];
    int row_axis = w->transposed ? 1 : 0;
    /* how scales run along a stored row: one per row, or blocks of `group` */
    int64_t group = 0;
    if (q->axis < 0 || (q->axis == row_axis && q->block == 0))
        group = cols;
    else if (q->axis != row_axis && q->block > 0)
        group = q->block;
    if (!bits || !group || (bits == 8 && group != cols)) return NULL;
    if (bits == 4 && group == cols) /* one scale per row: groups that repeat it */
        group = cols % 128 == 0 ? 128 : cols % 64 == 0 ? 64 : 32;
    if (bits == 4 && group != 32 && group != 64 && group != 128) return NULL;
    int64_t ng = (cols + group - 1) / group;
    const double *sf = q->scale->f;
    if (!sf || (!fp8 && !q->codes->i) || (!fp8 && q->zero_point && !q->zero_point->i)) return NULL;
    uint8_t *codes = sup_arena_alloc(arena, (size_t)(rows * cols));
    float *scales = sup_arena_alloc(arena, sizeof *scales * (size_t)(rows * ng));
    uint8_t *zps = sup_arena_alloc(arena, (size_t)(rows * ng));
    bool symmetric = true; /* every zero point the middle (unsigned) or 0 (signed) */
    int64_t mid = is_signed ? 0 : bits == 4 ? 8 : 128;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            int64_t co[2];
            value_coord(w, r, c, co);
            int64_t s = scale_index(q, co), i = co[0] * v->dims[1] + co[1];
            int64_t u = fp8 ? ((const uint8_t *)cv->tensor->data)[i] : q->codes->i[i],
                    z = q->zero_point && !fp8 ? q->zero_point->i[s] : 0;
            int64_t g = r * ng + c / group;
            if (c % group == 0) {
                scales[g] = (float)sf[s];
                zps[g] = (uint8_t)(z + (is_signed ? 8 : 0));
            } else if (scales[g] != (float)sf[s] || zps[g] != (uint8_t)(z + (is_signed ? 8 : 0))) {
                return NULL; /* not one scale per group */
            }
            symmetric &= z == mid;
            if (fp8) {
                codes[r * cols + c] = (uint8_t)u; /* the byte as it is */
            } else if (bits == 8) {
                if (u - z < -128 || u - z > 127) return NULL;
                codes[r * cols + c] = (uint8_t)(int8_t)(u - z);
            } else {
                codes[r * cols + c] = (uint8_t)(u + (is_signed ? 8 : 0)); /* 0..15 */
            }
        }
    fe_quantized *out = sup_arena_alloc(arena, sizeof *out);
    *out = (fe_quantized){.bits = bits,
                          .fp8 = fp8,
                          .group = group,
                          .codes = codes,
                          .scales = scales,
                          .act8 = q->act8 || w->act_static,
                          .act_static = w->act_static,
                          .act_scale = w->act_scale,
                          .act_zero = w->act_zero,
                          .how = q->how};
    out->scales_f32 = bits == 4 && fe_scales_need_f32(scales, rows * ng);
    if (bits == 4 && symmetric) /* signed codes, no zero point */
        for (int64_t i = 0; i < rows * cols; i++) codes[i] = (uint8_t)(int8_t)(codes[i] - 8);
    else if (bits == 4)
        out->asym = true, out->zero_points = zps;
    if (!out->how)
        out->how = sup_arena_printf(
            arena, "DequantizeLinear of %s codes (%s)", fe_onnx_dtype_name(dt),
            q->axis < 0 ? "one scale"
            : q->block  ? sup_arena_printf(arena, "blocks of %lld", (long long)q->block)
                        : "a scale per output channel");
    if (w->act_static) {
        char sc[32];
        snprintf(sc, sizeof sc, "%.9g", (double)w->act_scale);
        out->how = sup_arena_printf(
            arena, "%s; its input quantized by QuantizeLinear (%s, scale %s, zero point %d)",
            out->how, w->act_type == FE_ONNX_UINT8 ? "uint8" : "int8", sc,
            w->act_zero + (w->act_type == FE_ONNX_UINT8 ? 128 : 0));
    }
    return out;
}

bool fe_imp_keeps_int_codes(const fe_imp_value *v, bool transpose)
{
    if (!v->quant || v->rank != 2) return false;
    fe_onnx_weight w = {.name = v->name,
                        .onnx_name = v->name,
                        .rank = 2,
                        .shape = {v->dims[transpose ? 1 : 0], v->dims[transpose ? 0 : 1]},
                        .transposed = transpose,
                        .value = v,
                        .quantized = true};
    sup_arena tmp = {0};
    const fe_quantized *q = fe_onnx_weight_given(&tmp, &w);
    bool ok = q && !q->fp8;
    sup_arena_free(&tmp);
    return ok;
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
        t->given = fe_onnx_weight_given(arena, w);
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
    /* the codes weights arrived with, written beside them (fe_safetensors_parse) */
    sup_arena qa = {0};
    const fe_quantized **given = sup_arena_alloc(&qa, sizeof *given * (size_t)(imp->n_weights + 1));
    fprintf(h, "{\"__metadata__\":{\"format\":\"pt\",\"generator\":\"qmc import\",\"source\":");
    json_string(h, source ? source : "");
    for (int i = 0; i < imp->n_weights; i++) {
        const fe_quantized *q = given[i] = fe_onnx_weight_given(&qa, &imp->weights[i]);
        if (!q) continue;
        fputc(',', h);
        json_string(h, sup_arena_printf(&qa, "qmc:quantized:%s", imp->weights[i].name));
        fputc(':', h);
        const char *act = q->act_static ? sup_arena_printf(&qa, " act_scale=%a act_zero=%d",
                                                           (double)q->act_scale, q->act_zero)
                                        : "";
        json_string(h, sup_arena_printf(&qa, "bits=%d group=%lld asym=%d act8=%d fp8=%d%s; %s",
                                        q->bits, (long long)q->group, q->asym, q->act8, q->fp8, act,
                                        q->how));
    }
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
        const fe_quantized *q = given[i];
        if (!q) continue;
        int64_t rows = w->shape[0], cols = w->shape[1], ng = (cols + q->group - 1) / q->group;
        static const char *const part[] = {"codes", "scales", "zero_points"};
        for (int k = 0; k < (q->asym ? 3 : 2); k++) {
            size_t n = k ? (size_t)(rows * ng) * (k == 1 ? 4 : 1) : (size_t)(rows * cols);
            fputc(',', h);
            json_string(h, sup_arena_printf(&qa, "%s:%s", w->name, part[k]));
            fprintf(h, ":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                    k == 1                          ? "F32"
                    : k == 0 && !q->asym && !q->fp8 ? "I8"
                                                    : "U8",
                    (long long)rows, (long long)(k ? ng : cols), offset, offset + n);
            offset += n;
        }
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
        const fe_quantized *q = given[i];
        if (!ok || !q) continue;
        size_t ng = (size_t)((w->shape[1] + q->group - 1) / q->group) * (size_t)w->shape[0];
        ok = write_all(f, q->codes, n) && write_all(f, q->scales, ng * sizeof(float)) &&
             (!q->asym || write_all(f, q->zero_points, ng));
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
    sup_arena_free(&qa);
    return ok;
}
