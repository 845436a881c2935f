/* safetensors.c: the weights file reader.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON mapping each
 * tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative
 * to the byte after the header), an optional "__metadata__" object of
 * strings, then the data.
 *
 * Guarantees: every tensor returned has a supported dtype (F32, F16, BF16),
 * a shape whose byte size equals end - begin, data wholly inside the file,
 * and no two tensors overlap. Tensor data is never copied: it stays in the
 * mapping, where it may be misaligned for its element type
 * (fe_tensor_to_f32 reads it either way), and fe_tensor_release gives a
 * tensor's pages back once it has been read. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frontend.h"

enum { HEADER_MAX = 100 * 1024 * 1024 };

static qmc_status fail(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static qmc_status fail(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && err_size) vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return QMC_ERR_FORMAT;
}

static qmc_dtype dtype_from_string(const char *s, bool *known)
{
    static const char *const other_known[] = {"F64", "I8",  "U8",  "I16",  "U16",     "I32",
                                              "U32", "I64", "U64", "BOOL", "F8_E4M3", "F8_E5M2"};
    *known = true;
    if (strcmp(s, "F32") == 0) return QMC_DTYPE_F32;
    if (strcmp(s, "F16") == 0) return QMC_DTYPE_F16;
    if (strcmp(s, "BF16") == 0) return QMC_DTYPE_BF16;
    *known = false;
    for (size_t i = 0; i < sizeof other_known / sizeof other_known[0]; i++)
        if (strcmp(s, other_known[i]) == 0) *known = true;
    return QMC_DTYPE_INVALID;
}

/* name ends in suffix after a weight's name */
static bool is_companion(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcmp(name + n - k, suffix) == 0;
}

static qmc_status read_tensor(const char *name, const fe_json *v, size_t data_size, fe_tensor *t,
                              char *err, size_t err_size)
{
    if (v->kind != FE_JSON_OBJECT) return fail(err, err_size, "entry '%s' is not an object", name);
    const fe_json *dt = fe_json_get(v, "dtype"), *shape = fe_json_get(v, "shape"),
                  *offs = fe_json_get(v, "data_offsets");
    if (!dt || dt->kind != FE_JSON_STRING)
        return fail(err, err_size, "tensor '%s' has no string 'dtype'", name);
    if (!shape || shape->kind != FE_JSON_ARRAY)
        return fail(err, err_size, "tensor '%s' has no 'shape' array", name);
    if (!offs || offs->kind != FE_JSON_ARRAY || offs->count != 2)
        return fail(err, err_size, "tensor '%s' has no 'data_offsets' pair", name);
    bool known;
    t->name = name;
    t->dtype = dtype_from_string(dt->string, &known);
    if (is_companion(name, ":codes") || is_companion(name, ":zero_points")) /* attach_given */
        t->dtype = strcmp(dt->string, "I8") == 0   ? QMC_DTYPE_I8
                   : strcmp(dt->string, "U8") == 0 ? QMC_DTYPE_U8
                                                   : QMC_DTYPE_INVALID;
    if (t->dtype == QMC_DTYPE_INVALID)
        return fail(err, err_size, "tensor '%s' has %s dtype '%s' (qmc reads F32, F16 and BF16)",
                    name, known ? "unsupported" : "unknown", dt->string);
    if (shape->count > RT_MAX_RANK)
        return fail(err, err_size, "tensor '%s' has more than %d dimensions", name, RT_MAX_RANK);
    t->rank = shape->count;
    t->count = 1;
    for (int i = 0; i < shape->count; i++) {
        const fe_json *d = shape->items[i];
        if (d->kind != FE_JSON_NUMBER || !d->is_integer || d->integer < 0)
            return fail(err, err_size,
                        "tensor '%s' has a dimension that is not a non-negative integer", name);
        t->shape[i] = d->integer;
        if (d->integer && t->count > (INT64_MAX / 8) / d->integer)
            return fail(err, err_size, "tensor '%s' is too large", name);
        t->count *= d->integer;
    }
    const fe_json *b = offs->items[0], *e = offs->items[1];
    if (b->kind != FE_JSON_NUMBER || !b->is_integer || b->integer < 0 ||
        e->kind != FE_JSON_NUMBER || !e->is_integer || e->integer < 0)
        return fail(err, err_size,
                    "tensor '%s' has data_offsets that are not non-negative integers", name);
    if (b->integer > e->integer)
        return fail(err, err_size,
                    "tensor '%s' has data_offsets [%lld, %lld] that end before they begin", name,
                    (long long)b->integer, (long long)e->integer);
    if ((uint64_t)e->integer > data_size)
        return fail(
            err, err_size,
            "tensor '%s' has data_offsets [%lld, %lld] beyond the %zu bytes of data in the file",
            name, (long long)b->integer, (long long)e->integer, data_size);
    size_t want = (size_t)t->count * qmc_dtype_size(t->dtype);
    if ((uint64_t)(e->integer - b->integer) != want)
        return fail(
            err, err_size,
            "tensor '%s' has data_offsets [%lld, %lld] (%lld bytes) but its shape and dtype "
            "need %zu bytes",
            name, (long long)b->integer, (long long)e->integer,
            (long long)(e->integer - b->integer), want);
    t->file_offset = (size_t)b->integer;
    t->size = want;
    return QMC_OK;
}

static int by_offset(const void *a, const void *b)
{
    const fe_tensor *x = a, *y = b;
    return x->file_offset < y->file_offset ? -1 : x->file_offset > y->file_offset;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const fe_tensor *)a)->name, ((const fe_tensor *)b)->name);
}

/* Overlap check on a copy sorted by offset; empty tensors overlap nothing. */
static qmc_status check_overlaps(sup_arena *arena, const fe_tensor *ts, int n, char *err,
                                 size_t err_size)
{
    fe_tensor *s = sup_arena_alloc(arena, sizeof *s * (size_t)(n ? n : 1));
    memcpy(s, ts, sizeof *s * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, by_offset);
    const fe_tensor *prev = NULL;
    for (int i = 0; i < n; i++) {
        if (s[i].size == 0) continue;
        if (prev && s[i].file_offset < prev->file_offset + prev->size)
            return fail(err, err_size, "tensors '%s' and '%s' overlap in the data section",
                        prev->name, s[i].name);
        prev = &s[i];
    }
    return QMC_OK;
}

static fe_tensor *find(fe_safetensors *set, const char *name)
{
    fe_tensor key = {.name = name};
    return bsearch(&key, set->tensors, (size_t)set->count, sizeof key, by_name);
}

static bool f16_exact(float x)
{
    if (x == 0) return true;
    float a = fabsf(x);
    if (!(a <= 65504.0f)) return false;
    int e;
    frexpf(a, &e); /* a = m * 2^e, m in [0.5, 1): 11 significant bits, or 2^-24 steps */
    int quantum = e - 11 < -24 ? -24 : e - 11;
    float t = ldexpf(a, -quantum);
    return t == floorf(t);
}

bool fe_scales_need_f32(const float *scales, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!f16_exact(scales[i])) return true;
    return false;
}

/* The codes a weight arrived with, which `qmc import` writes beside it:
 * "W:codes" (I8, or U8 with zero points) [rows, cols], "W:scales" (F32)
 * and "W:zero_points" (U8) [rows, ceil(cols / group)], described by the
 * metadata entry "qmc:quantized:W" = "bits=B group=G asym=A act8=X fp8=F; how"
 * (F: 0, or the ONNX type of FP8 codes, which are held as U8), with
 * " act_scale=S act_zero=Z" (S a C hexadecimal float) before the ';' when
 * the model quantizes the weight's input with that scale and zero point
 * (fe_quantized.act_static).
 * They become W's fe_tensor.given and leave the set. */
static qmc_status attach_given(sup_arena *arena, fe_safetensors *set, const fe_json *meta,
                               char *err, size_t err_size)
{
    for (int i = 0; i < set->count; i++) {
        fe_tensor *c = &set->tensors[i];
        if (!is_companion(c->name, ":codes")) continue;
        size_t base_len = strlen(c->name) - strlen(":codes");
        const char *base = sup_arena_strndup(arena, c->name, base_len);
        fe_tensor *w = find(set, base);
        fe_tensor *sc = find(set, sup_arena_printf(arena, "%s:scales", base));
        fe_tensor *zp = find(set, sup_arena_printf(arena, "%s:zero_points", base));
        const fe_json *d =
            meta ? fe_json_get(meta, sup_arena_printf(arena, "qmc:quantized:%s", base)) : NULL;
        int bits, asym, act8, fp8, used = 0, act_used = 0, act_zero = 0;
        float act_scale = 0;
        long long group;
        bool parsed = d && d->kind == FE_JSON_STRING &&
                      sscanf(d->string, "bits=%d group=%lld asym=%d act8=%d fp8=%d%n", &bits,
                             &group, &asym, &act8, &fp8, &used) == 5 &&
                      used;
        /* the input's static quantization (an optional part) */
        if (parsed && strncmp(d->string + used, " act_scale=", 11) == 0)
            parsed = sscanf(d->string + used, " act_scale=%a act_zero=%d%n", &act_scale, &act_zero,
                            &act_used) == 2 &&
                     act_used && act_scale > 0 && isfinite(act_scale) && act_zero >= -128 &&
                     act_zero <= 127;
        used += act_used;
        parsed = parsed && d->string[used] == ';';
        used += parsed;
        if (!w || w->dtype != QMC_DTYPE_F32 || w->rank != 2 || !sc || sc->dtype != QMC_DTYPE_F32 ||
            !parsed)
            return fail(err, err_size,
                        "tensor '%s' holds codes but its weight '%s', scales or metadata "
                        "'qmc:quantized:%s' are missing or malformed",
                        c->name, base, base);
        int64_t rows = w->shape[0], cols = w->shape[1];
        int64_t ng = group > 0 ? (cols + group - 1) / group : 0;
        bool ok = (bits == 8 && !asym && group == cols) ||
                  (bits == 4 && !fp8 && (group == 32 || group == 64 || group == 128));
        ok = ok && (fp8 == 0 || fp8 == FE_ONNX_FLOAT8E4M3FN || fp8 == FE_ONNX_FLOAT8E5M2);
        ok = ok && (asym == 0 || asym == 1) && (act8 == 0 || act8 == 1) && c->rank == 2 &&
             c->shape[0] == rows && c->shape[1] == cols &&
             c->dtype == (asym || fp8 ? QMC_DTYPE_U8 : QMC_DTYPE_I8) && sc->rank == 2 &&
             sc->shape[0] == rows && sc->shape[1] == ng &&
             (!asym || (zp && zp->dtype == QMC_DTYPE_U8 && zp->rank == 2 && zp->shape[0] == rows &&
                        zp->shape[1] == ng));
        const uint8_t *codes = c->data;
        for (int64_t k = 0; ok && k < rows * cols; k++)
            ok = asym ? codes[k] < 16
                      : bits == 8 || ((int8_t)codes[k] >= -8 && (int8_t)codes[k] < 8);
        if (!ok)
            return fail(err, err_size,
                        "tensor '%s' does not hold %d-bit codes of weight '%s' [%lld, %lld] in "
                        "groups of %lld as its metadata says",
                        c->name, bits, base, (long long)rows, (long long)cols, group);
        fe_quantized *q = sup_arena_alloc(arena, sizeof *q);
        float *scales = sup_arena_alloc(arena, sizeof *scales * (size_t)(rows * ng + 1));
        memcpy(scales, sc->data, sizeof *scales * (size_t)(rows * ng)); /* may be unaligned */
        *q = (fe_quantized){
            .bits = bits,
            .fp8 = fp8,
            .asym = asym,
            .group = group,
            .codes = codes,
            .scales = scales,
            .zero_points = asym ? zp->data : NULL,
            .scales_f32 = bits == 4 && fe_scales_need_f32(scales, rows * ng),
            .act8 = act8 || act_used,
            .act_static = act_used > 0,
            .act_scale = act_scale,
            .act_zero = act_zero,
            .how = sup_arena_strdup(arena, d->string + used + (d->string[used] == ' '))};
        w->given = q;
    }
    int n = 0; /* the companions leave the set */
    for (int i = 0; i < set->count; i++) {
        const char *name = set->tensors[i].name;
        if (is_companion(name, ":codes") || is_companion(name, ":zero_points") ||
            (is_companion(name, ":scales") &&
             find(set, sup_arena_printf(arena, "%.*s:codes", (int)(strlen(name) - 7), name))))
            continue;
        set->tensors[n++] = set->tensors[i];
    }
    set->count = n;
    return QMC_OK;
}

qmc_status fe_safetensors_parse(sup_arena *arena, const uint8_t *data, size_t size,
                                fe_safetensors *out, char *err, size_t err_size)
{
    out->tensors = NULL;
    out->count = 0;
    if (size < 8)
        return fail(err, err_size, "file is %zu bytes, too short for a header length", size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | data[i];
    if (hlen > size - 8)
        return fail(err, err_size, "header length %llu exceeds the %zu bytes that follow it",
                    (unsigned long long)hlen, size - 8);
    if (hlen > HEADER_MAX)
        return fail(err, err_size, "header length %llu is larger than 100 MiB",
                    (unsigned long long)hlen);
    char jerr[96];
    size_t joff = 0;
    const fe_json *meta = NULL;
    fe_json *root =
        fe_json_parse(arena, (const char *)data + 8, (size_t)hlen, jerr, sizeof jerr, &joff);
    if (!root) return fail(err, err_size, "bad JSON in header at byte %zu: %s", joff + 8, jerr);
    if (root->kind != FE_JSON_OBJECT) return fail(err, err_size, "header is not a JSON object");
    size_t data_start = 8 + (size_t)hlen, data_size = size - data_start;
    out->tensors =
        sup_arena_alloc(arena, sizeof *out->tensors * (size_t)(root->count ? root->count : 1));
    for (int i = 0; i < root->count; i++) {
        const char *name = root->keys[i];
        if (strcmp(name, "__metadata__") == 0) {
            if (root->items[i]->kind != FE_JSON_OBJECT)
                return fail(err, err_size, "'__metadata__' is not an object");
            meta = root->items[i];
            continue;
        }
        fe_tensor *t = &out->tensors[out->count];
        qmc_status st = read_tensor(name, root->items[i], data_size, t, err, err_size);
        if (st != QMC_OK) return st;
        t->data = data + data_start + t->file_offset;
        t->file_offset += data_start;
        out->count++;
    }
    qmc_status st = check_overlaps(arena, out->tensors, out->count, err, err_size);
    if (st != QMC_OK) return st;
    qsort(out->tensors, (size_t)out->count, sizeof *out->tensors, by_name);
    return attach_given(arena, out, meta, err, err_size);
}

qmc_status fe_safetensors_open(sup_arena *arena, const char *path, fe_safetensors *out, char *err,
                               size_t err_size)
{
    memset(out, 0, sizeof *out);
    out->path = sup_arena_strdup(arena, path);
    out->files = sup_arena_alloc(arena, sizeof *out->files);
    const char **names = sup_arena_alloc(arena, sizeof *names);
    names[0] = out->path;
    out->file_names = out->sources = names;
    out->n_sources = 1;
    qmc_status st = rt_file_map(path, &out->files[0], err, err_size);
    if (st != QMC_OK) return st;
    out->n_files = 1;
    st = fe_safetensors_parse(arena, out->files[0].data, out->files[0].size, out, err, err_size);
    if (st != QMC_OK) {
        fe_safetensors_close(out);
        return st;
    }
    for (int i = 0; i < out->count; i++) out->tensors[i].mapped = true;
    return QMC_OK;
}

const fe_tensor *fe_safetensors_find(const fe_safetensors *st, const char *name)
{
    fe_tensor key = {.name = name};
    return bsearch(&key, st->tensors, (size_t)st->count, sizeof key, by_name);
}

void fe_safetensors_close(fe_safetensors *st)
{
    for (int i = 0; i < st->n_files; i++) rt_file_unmap(&st->files[i]);
    st->n_files = 0;
}

void fe_tensor_release_range(const fe_tensor *t, int64_t begin, int64_t end)
{
    size_t elem = qmc_dtype_size(t->dtype);
    if (!t->mapped || end <= begin) return;
    /* the whole pages inside the range: a neighbour's partial page stays */
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = (uintptr_t)t->data + (uintptr_t)begin * elem,
              to = (uintptr_t)t->data + (uintptr_t)end * elem;
    from = (from + page - 1) / page * page;
    to = to / page * page;
    if (to > from) madvise((void *)from, to - from, MADV_DONTNEED);
}

void fe_tensor_release(const fe_tensor *t) { fe_tensor_release_range(t, 0, t->count); }

static float half_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = h >> 10 & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | mant << 13;
    } else if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do mant <<= 1, e++;
            while (!(mant & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
        }
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Element i of 16-bit data that may be misaligned. */
static uint16_t load16(const uint8_t *p, int64_t i)
{
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return h;
}

void fe_tensor_to_f32_range(const fe_tensor *t, int64_t begin, int64_t end, float *out)
{
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case QMC_DTYPE_F32: memcpy(out, p + 4 * begin, (size_t)(end - begin) * 4); break;
    case QMC_DTYPE_F16:
        for (int64_t i = begin; i < end; i++) out[i - begin] = half_to_f32(load16(p, i));
        break;
    case QMC_DTYPE_BF16:
        for (int64_t i = begin; i < end; i++) {
            uint32_t bits = (uint32_t)load16(p, i) << 16;
            memcpy(&out[i - begin], &bits, 4);
        }
        break;
    default: QMC_ASSERT(!"unsupported tensor dtype");
    }
}

void fe_tensor_to_f32(const fe_tensor *t, float *out)
{
    fe_tensor_to_f32_range(t, 0, t->count, out);
}
