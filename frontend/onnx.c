/* onnx.c: the ONNX model reader.
 *
 * Needs: a model file (a serialized onnx.ModelProto) and, for tensors with
 * EXTERNAL data, their files beside it. The protobuf is decoded by the
 * protobuf-c code generated at build time from Debian's onnx.proto; nothing
 * else in qmc sees protobuf-c's types.
 *
 * Guarantees: on success every tensor has a known data type, dims that are
 * non-negative and whose element count and byte size do not overflow, and
 * exactly the bytes its dims need (typed fields are converted to the packed
 * little-endian form of raw_data); external data lies inside its file, and
 * that file inside the model's folder; every attribute and graph input or
 * output has a name, initializer names are unique, and each value is
 * defined once, before the nodes that use it. Each problem is reported as
 * one `model.onnx: error: ...` naming the node or tensor.
 *
 * Memory: protobuf-c allocates through the arena; what it copies at unpack
 * (raw_data, and typed fields already in raw form: float, int64, double)
 * is the only copy the model keeps, tensors point into it, and the file's
 * mapping is released once decoded. External data stays mapped. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "onnx.pb-c.h"

struct fe_onnx_file {
    fe_onnx_file *next;
    const char *location; /* as the model names it */
    const char *path;     /* as opened */
    rt_mapped_file map;
};

typedef struct reader {
    sup_arena *arena;
    const char *path;
    const char *dir; /* the model's folder, NULL for an image in memory */
    fe_onnx_model *m;
    fe_onnx_map names; /* every value defined so far */
} reader;

static const struct {
    const char *name;
    int bits;
} dtypes[FE_ONNX_DTYPE_COUNT] = {
    [FE_ONNX_FLOAT] = {"float", 32},
    [FE_ONNX_UINT8] = {"uint8", 8},
    [FE_ONNX_INT8] = {"int8", 8},
    [FE_ONNX_UINT16] = {"uint16", 16},
    [FE_ONNX_INT16] = {"int16", 16},
    [FE_ONNX_INT32] = {"int32", 32},
    [FE_ONNX_INT64] = {"int64", 64},
    [FE_ONNX_STRING] = {"string", 0},
    [FE_ONNX_BOOL] = {"bool", 8},
    [FE_ONNX_FLOAT16] = {"float16", 16},
    [FE_ONNX_DOUBLE] = {"double", 64},
    [FE_ONNX_UINT32] = {"uint32", 32},
    [FE_ONNX_UINT64] = {"uint64", 64},
    [FE_ONNX_COMPLEX64] = {"complex64", 64},
    [FE_ONNX_COMPLEX128] = {"complex128", 128},
    [FE_ONNX_BFLOAT16] = {"bfloat16", 16},
    [FE_ONNX_FLOAT8E4M3FN] = {"float8e4m3fn", 8},
    [FE_ONNX_FLOAT8E4M3FNUZ] = {"float8e4m3fnuz", 8},
    [FE_ONNX_FLOAT8E5M2] = {"float8e5m2", 8},
    [FE_ONNX_FLOAT8E5M2FNUZ] = {"float8e5m2fnuz", 8},
    [FE_ONNX_UINT4] = {"uint4", 4},
    [FE_ONNX_INT4] = {"int4", 4},
};

const char *fe_onnx_dtype_name(int dtype)
{
    return dtype > 0 && dtype < FE_ONNX_DTYPE_COUNT ? dtypes[dtype].name : NULL;
}

int fe_onnx_dtype_bits(int dtype)
{
    return dtype > 0 && dtype < FE_ONNX_DTYPE_COUNT ? dtypes[dtype].bits : 0;
}

static bool fail(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_verror("error", (sup_loc){.file = r->path}, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- the name map -------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int32_t *fe_onnx_map_slot(sup_arena *arena, fe_onnx_map *m, const char *key, bool insert)
{
    if (m->cap) {
        for (size_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
            if (!m->keys[i]) break;
            if (strcmp(m->keys[i], key) == 0) return &m->vals[i];
        }
    }
    if (!insert) return NULL;
    if (2 * (m->count + 1) > m->cap) {
        fe_onnx_map old = *m;
        m->cap = old.cap ? 2 * old.cap : 64;
        m->keys = sup_arena_alloc(arena, sizeof *m->keys * m->cap);
        m->vals = sup_arena_alloc(arena, sizeof *m->vals * m->cap);
        m->count = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i]) *fe_onnx_map_slot(arena, m, old.keys[i], true) = old.vals[i];
    }
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->keys[i]) i = (i + 1) & (m->cap - 1);
    m->keys[i] = key;
    m->vals[i] = -1;
    m->count++;
    return &m->vals[i];
}

/* ---- tensors ------------------------------------------------------------- */

static const char *str_or_empty(const char *s) { return s ? s : ""; }

/* Expected bytes for count elements of dtype; false on overflow. */
static bool byte_size(int dtype, int64_t count, size_t *out)
{
    int64_t bits;
    if (__builtin_mul_overflow(count, (int64_t)fe_onnx_dtype_bits(dtype), &bits)) return false;
    *out = (size_t)((bits + 7) / 8);
    return true;
}

/* Converts the typed field that holds dtype's elements into raw form. */
static bool read_typed(reader *r, const Onnx__TensorProto *tp, const char *what, fe_onnx_tensor *t)
{
    int dt = t->dtype;
    size_t n_expect = (size_t)t->count; /* elements of the field the dtype uses */
    if (dt == FE_ONNX_UINT4 || dt == FE_ONNX_INT4) n_expect = (size_t)(t->count + 1) / 2;
    if (dt == FE_ONNX_COMPLEX64 || dt == FE_ONNX_COMPLEX128) n_expect = 2 * (size_t)t->count;
    const char *field;
    size_t n;
    switch (dt) {
    case FE_ONNX_FLOAT:
    case FE_ONNX_COMPLEX64: field = "float_data", n = tp->n_float_data; break;
    case FE_ONNX_INT64: field = "int64_data", n = tp->n_int64_data; break;
    case FE_ONNX_DOUBLE:
    case FE_ONNX_COMPLEX128: field = "double_data", n = tp->n_double_data; break;
    case FE_ONNX_UINT32:
    case FE_ONNX_UINT64: field = "uint64_data", n = tp->n_uint64_data; break;
    case FE_ONNX_STRING: field = "string_data", n = tp->n_string_data; break;
    default: field = "int32_data", n = tp->n_int32_data; break;
    }
    size_t total = tp->n_float_data + tp->n_int32_data + tp->n_int64_data + tp->n_double_data +
                   tp->n_uint64_data + tp->n_string_data;
    if (total != n)
        return fail(r, "%s is %s but stores data in a field other than %s", what,
                    fe_onnx_dtype_name(dt), field);
    if (n != n_expect)
        return fail(r, "%s has %zu values in %s but its dims need %zu", what, n, field, n_expect);
    if (n == 0) return true;
    if (dt == FE_ONNX_STRING) {
        char **s = sup_arena_alloc(r->arena, sizeof *s * n);
        for (size_t i = 0; i < n; i++)
            s[i] = sup_arena_strndup(
                r->arena, tp->string_data[i].data ? (const char *)tp->string_data[i].data : "",
                tp->string_data[i].len);
        t->strings = (const char *const *)s;
        return true;
    }
    /* fields whose values are already the raw form are used in place (the
     * arena owns them), so typed weights are not held twice */
    switch (dt) {
    case FE_ONNX_FLOAT:
    case FE_ONNX_COMPLEX64: t->data = tp->float_data; return true;
    case FE_ONNX_INT64: t->data = tp->int64_data; return true;
    case FE_ONNX_DOUBLE:
    case FE_ONNX_COMPLEX128: t->data = tp->double_data; return true;
    case FE_ONNX_UINT64: t->data = tp->uint64_data; return true;
    default: break;
    }
    uint8_t *out = sup_arena_alloc(r->arena, t->size);
    int bytes = fe_onnx_dtype_bits(dt) / 8;
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case FE_ONNX_UINT32: {
            uint32_t v = (uint32_t)tp->uint64_data[i];
            memcpy(out + 4 * i, &v, 4);
            break;
        }
        case FE_ONNX_UINT4:
        case FE_ONNX_INT4: out[i] = (uint8_t)tp->int32_data[i]; break; /* two nibbles per value */
        default: {
            /* int32_data holds each value (bit patterns for 16- and 8-bit floats) */
            uint32_t v = (uint32_t)tp->int32_data[i];
            for (int b = 0; b < bytes; b++)
                out[(size_t)bytes * i + (size_t)b] = (uint8_t)(v >> (8 * b));
        }
        }
    }
    t->data = out;
    return true;
}

static bool parse_u64(const char *s, int64_t *out)
{
    if (!*s) return false;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s - '0', &v))
            return false;
    }
    *out = v;
    return true;
}

/* A location must name a file inside the model's folder: relative, without
 * '..' components, and still inside once symbolic links are resolved. */
static bool check_location(reader *r, const char *what, const char *loc, char **full)
{
    if (!*loc) return fail(r, "%s has external data with an empty location", what);
    if (loc[0] == '/')
        return fail(
            r,
            "%s has external data at the absolute path '%s' (refused: it must be inside the "
            "model's folder)",
            what, loc);
    for (const char *p = loc; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return fail(r, "%s has external data at '%s', outside the model's folder (refused)",
                        what, loc);
        p += n;
        while (*p == '/') p++;
    }
    *full = sup_arena_printf(r->arena, "%s/%s", r->dir, loc);
    char *real_dir = realpath(r->dir, NULL), *real_file = realpath(*full, NULL);
    bool inside = true;
    if (real_dir && real_file) {
        size_t n = strlen(real_dir);
        inside = strncmp(real_file, real_dir, n) == 0 && (real_file[n] == '/' || n == 1);
    }
    free(real_dir);
    free(real_file);
    if (!inside)
        return fail(
            r, "%s has external data at '%s', which links outside the model's folder (refused)",
            what, loc);
    return true;
}

static const rt_mapped_file *map_file(reader *r, const char *what, const char *loc)
{
    for (fe_onnx_file *f = r->m->files; f; f = f->next)
        if (strcmp(f->location, loc) == 0) return &f->map;
    char *full = NULL;
    if (!check_location(r, what, loc, &full)) return NULL;
    fe_onnx_file *f = sup_arena_alloc(r->arena, sizeof *f);
    char err[256];
    if (rt_file_map(full, &f->map, err, sizeof err) != QMC_OK) {
        fail(r, "%s has external data in '%s': %s", what, loc, err);
        return NULL;
    }
    f->location = loc;
    f->path = full;
    f->next = r->m->files;
    r->m->files = f;
    return &f->map;
}

static bool read_external(reader *r, const Onnx__TensorProto *tp, const char *what,
                          fe_onnx_tensor *t)
{
    if (!r->dir)
        return fail(
            r, "%s has external data, which needs the model's folder (not available in memory)",
            what);
    if (tp->has_raw_data || tp->n_float_data || tp->n_int32_data || tp->n_int64_data ||
        tp->n_double_data || tp->n_uint64_data || tp->n_string_data)
        return fail(r, "%s has external data and data in the file as well", what);
    if (t->dtype == FE_ONNX_STRING)
        return fail(r, "%s is a string tensor with external data", what);
    const char *loc = NULL;
    int64_t offset = 0, length = -1;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const char *k = str_or_empty(tp->external_data[i]->key),
                   *v = str_or_empty(tp->external_data[i]->value);
        for (size_t j = 0; j < i; j++)
            if (strcmp(k, str_or_empty(tp->external_data[j]->key)) == 0)
                return fail(r, "%s gives the external data key '%s' twice", what, k);
        if (strcmp(k, "location") == 0) {
            loc = v;
        } else if (strcmp(k, "offset") == 0 || strcmp(k, "length") == 0) {
            int64_t x;
            if (!parse_u64(v, &x))
                return fail(r, "%s has external data %s '%s', not a non-negative integer", what, k,
                            v);
            *(k[0] == 'o' ? &offset : &length) = x;
        }
    }
    if (!loc) return fail(r, "%s has external data without a location", what);
    const rt_mapped_file *f = map_file(r, what, loc);
    if (!f) return false;
    if ((uint64_t)offset > f->size)
        return fail(r, "%s has external data at offset %lld, beyond the end of '%s' (%zu bytes)",
                    what, (long long)offset, loc, f->size);
    if (length >= 0 && (uint64_t)length != t->size)
        return fail(r, "%s has external data of length %lld but its dims need %zu bytes", what,
                    (long long)length, t->size);
    if (t->size > f->size - (size_t)offset)
        return fail(r, "%s needs bytes %lld..%llu of '%s', which has %zu bytes", what,
                    (long long)offset, (unsigned long long)((uint64_t)offset + t->size), loc,
                    f->size);
    t->data = t->size ? f->data + offset : NULL;
    t->external = true;
    return true;
}

static bool read_tensor(reader *r, const Onnx__TensorProto *tp, const char *what, fe_onnx_tensor *t)
{
    memset(t, 0, sizeof *t);
    t->name = str_or_empty(tp->name);
    if (!tp->has_data_type || tp->data_type == 0) return fail(r, "%s has no data type", what);
    t->dtype = tp->data_type;
    if (!fe_onnx_dtype_name(t->dtype))
        return fail(r, "%s has unknown data type %d (qmc knows ONNX types 1-%d)", what,
                    (int)tp->data_type, FE_ONNX_DTYPE_COUNT - 1);
    if (tp->n_dims > FE_ONNX_MAX_RANK)
        return fail(r, "%s has %zu dims, more than %d", what, tp->n_dims, FE_ONNX_MAX_RANK);
    if (tp->segment) return fail(r, "%s is a segment of a split tensor (not supported)", what);
    t->rank = (int)tp->n_dims;
    t->dims = tp->dims;
    t->count = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0)
            return fail(r, "%s has a negative dimension (%lld)", what, (long long)t->dims[i]);
        if (__builtin_mul_overflow(t->count, t->dims[i], &t->count) || t->count > (INT64_MAX >> 8))
            return fail(r, "%s is too large: its dims overflow", what);
    }
    if (!byte_size(t->dtype, t->count, &t->size))
        return fail(r, "%s is too large: its dims overflow", what);
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return read_external(r, tp, what, t);
    if (!tp->has_raw_data) return read_typed(r, tp, what, t);
    if (tp->n_float_data || tp->n_int32_data || tp->n_int64_data || tp->n_double_data ||
        tp->n_uint64_data || tp->n_string_data)
        return fail(r, "%s has both raw_data and typed data fields", what);
    if (t->dtype == FE_ONNX_STRING)
        return fail(r, "%s is a string tensor in raw_data (not allowed)", what);
    if (tp->raw_data.len != t->size)
        return fail(r, "%s has %zu bytes of raw_data but its dims need %zu", what, tp->raw_data.len,
                    t->size);
    t->data = t->size ? tp->raw_data.data : NULL;
    return true;
}

/* ---- element access -------------------------------------------------------- */

static float half_to_f32(uint16_t h)
{
    int e = h >> 10 & 0x1f, m = h & 0x3ff;
    float v = e == 0    ? ldexpf((float)m, -24)
              : e == 31 ? (m ? NAN : INFINITY)
                        : ldexpf((float)(m | 0x400), e - 25);
    return h & 0x8000 ? -v : v;
}

/* FP8 with e exponent bits, m mantissa bits and bias b. fnuz: no negative
 * zero (0x80 is NaN), no infinities; e4m3fn: only S.1111.111 is NaN. */
static float fp8_to_f32(uint8_t x, int dtype)
{
    bool e4 = dtype == FE_ONNX_FLOAT8E4M3FN || dtype == FE_ONNX_FLOAT8E4M3FNUZ;
    bool uz = dtype == FE_ONNX_FLOAT8E4M3FNUZ || dtype == FE_ONNX_FLOAT8E5M2FNUZ;
    int mbits = e4 ? 3 : 2, ebits = e4 ? 4 : 5;
    int bias = (e4 ? 7 : 15) + (uz ? 1 : 0);
    if (uz && x == 0x80) return NAN;
    int e = x >> mbits & ((1 << ebits) - 1), m = x & ((1 << mbits) - 1);
    if (!uz && e4 && (x & 0x7f) == 0x7f) return NAN;
    if (!uz && !e4 && e == 31) return m ? NAN : (x & 0x80 ? -INFINITY : INFINITY);
    float v = e == 0 ? ldexpf((float)m, 1 - bias - mbits)
                     : ldexpf((float)(m | 1 << mbits), e - bias - mbits);
    return x & 0x80 ? -v : v;
}

bool fe_onnx_tensor_get(const fe_onnx_tensor *t, int64_t i, double *out)
{
    if (i < 0 || i >= t->count || !t->data) return false;
    const uint8_t *p =
        (const uint8_t *)t->data + (size_t)i * (size_t)(fe_onnx_dtype_bits(t->dtype) / 8);
    union {
        float f;
        double d;
        uint16_t u16;
        uint32_t u32;
    } u;
    switch (t->dtype) {
    case FE_ONNX_FLOAT:
        memcpy(&u.f, p, 4);
        *out = u.f;
        return true;
    case FE_ONNX_DOUBLE:
        memcpy(&u.d, p, 8);
        *out = u.d;
        return true;
    case FE_ONNX_FLOAT16:
        memcpy(&u.u16, p, 2);
        *out = half_to_f32(u.u16);
        return true;
    case FE_ONNX_BFLOAT16: {
        uint16_t h;
        memcpy(&h, p, 2);
        uint32_t bits = (uint32_t)h << 16;
        memcpy(&u.f, &bits, 4);
        *out = u.f;
        return true;
    }
    case FE_ONNX_FLOAT8E4M3FN:
    case FE_ONNX_FLOAT8E4M3FNUZ:
    case FE_ONNX_FLOAT8E5M2:
    case FE_ONNX_FLOAT8E5M2FNUZ: *out = fp8_to_f32(*p, t->dtype); return true;
    case FE_ONNX_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        *out = (double)v;
        return true;
    }
    default: {
        int64_t v;
        if (!fe_onnx_tensor_get_int(t, i, &v)) return false;
        *out = (double)v;
        return true;
    }
    }
}

bool fe_onnx_tensor_get_int(const fe_onnx_tensor *t, int64_t i, int64_t *out)
{
    if (i < 0 || i >= t->count || !t->data) return false;
    const uint8_t *b = t->data;
    const uint8_t *p = b + (size_t)i * (size_t)(fe_onnx_dtype_bits(t->dtype) / 8);
    switch (t->dtype) {
    case FE_ONNX_UINT8: *out = *p; return true;
    case FE_ONNX_BOOL: *out = *p != 0; return true;
    case FE_ONNX_INT8: *out = (int8_t)*p; return true;
    case FE_ONNX_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        *out = v;
        return true;
    }
    case FE_ONNX_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        *out = v;
        return true;
    }
    case FE_ONNX_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        *out = v;
        return true;
    }
    case FE_ONNX_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        *out = v;
        return true;
    }
    case FE_ONNX_INT64:
    case FE_ONNX_UINT64: memcpy(out, p, 8); return true;
    case FE_ONNX_UINT4:
    case FE_ONNX_INT4: {
        int v = b[i / 2] >> (i % 2 ? 4 : 0) & 0xf;
        *out = t->dtype == FE_ONNX_INT4 && v >= 8 ? v - 16 : v;
        return true;
    }
    default: return false;
    }
}

/* ---- graph ----------------------------------------------------------------- */

static bool read_value_info(reader *r, const Onnx__ValueInfoProto *vp, const char *kind, int index,
                            fe_onnx_value_info *out)
{
    memset(out, 0, sizeof *out);
    out->rank = -1;
    if (!vp->name || !*vp->name) return fail(r, "graph %s #%d has no name", kind, index);
    out->name = vp->name;
    const Onnx__TypeProto *tp = vp->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return true;
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != 0 && !fe_onnx_dtype_name(tt->elem_type))
        return fail(r, "graph %s '%s' has unknown element type %d", kind, out->name,
                    (int)tt->elem_type);
    out->elem_type = tt->has_elem_type ? tt->elem_type : 0;
    if (!tt->shape) return true;
    if (tt->shape->n_dim > FE_ONNX_MAX_RANK)
        return fail(r, "graph %s '%s' has %zu dims, more than %d", kind, out->name,
                    tt->shape->n_dim, FE_ONNX_MAX_RANK);
    fe_onnx_dim *dims = sup_arena_alloc(r->arena, sizeof *dims * (tt->shape->n_dim + 1));
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        dims[i].value = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0)
                return fail(r, "graph %s '%s' has a negative dimension (%lld)", kind, out->name,
                            (long long)d->dim_value);
            dims[i].value = d->dim_value;
        } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                   d->dim_param && *d->dim_param) {
            dims[i].param = d->dim_param;
        }
    }
    out->rank = (int)tt->shape->n_dim;
    out->dims = dims;
    return true;
}

static bool infer_attr_type(const Onnx__AttributeProto *a, fe_onnx_attr_type *t)
{
    if (a->has_type) {
        *t = (fe_onnx_attr_type)a->type;
        return true;
    }
    /* IR version 1 had no type: take the one field that is set */
    int n = 0;
    if (a->has_f) *t = FE_ONNX_ATTR_FLOAT, n++;
    if (a->has_i) *t = FE_ONNX_ATTR_INT, n++;
    if (a->has_s) *t = FE_ONNX_ATTR_STRING, n++;
    if (a->t) *t = FE_ONNX_ATTR_TENSOR, n++;
    if (a->g) *t = FE_ONNX_ATTR_GRAPH, n++;
    if (a->n_floats) *t = FE_ONNX_ATTR_FLOATS, n++;
    if (a->n_ints) *t = FE_ONNX_ATTR_INTS, n++;
    if (a->n_strings) *t = FE_ONNX_ATTR_STRINGS, n++;
    if (a->n_tensors) *t = FE_ONNX_ATTR_TENSORS, n++;
    if (a->n_graphs) *t = FE_ONNX_ATTR_GRAPHS, n++;
    return n == 1;
}

static bool read_attr(reader *r, const Onnx__AttributeProto *ap, const char *node, fe_onnx_attr *a)
{
    memset(a, 0, sizeof *a);
    if (!ap->name || !*ap->name) return fail(r, "node %s has an attribute without a name", node);
    a->name = ap->name;
    if (!infer_attr_type(ap, &a->type) || a->type < FE_ONNX_ATTR_FLOAT ||
        a->type > FE_ONNX_ATTR_TYPE_PROTOS)
        return fail(r, "node %s: attribute '%s' has no valid type", node, a->name);
    const char *what = sup_arena_printf(r->arena, "attribute '%s' of node %s", a->name, node);
    switch (a->type) {
    case FE_ONNX_ATTR_FLOAT: a->f = ap->f; break;
    case FE_ONNX_ATTR_INT: a->i = ap->i; break;
    case FE_ONNX_ATTR_STRING:
        a->s = sup_arena_strndup(r->arena, ap->s.data ? (const char *)ap->s.data : "", ap->s.len);
        a->s_len = ap->s.len;
        break;
    case FE_ONNX_ATTR_TENSOR: {
        if (!ap->t) return fail(r, "%s is a tensor attribute without a tensor", what);
        fe_onnx_tensor *t = sup_arena_alloc(r->arena, sizeof *t);
        if (!read_tensor(r, ap->t, what, t)) return false;
        a->t = t;
        break;
    }
    case FE_ONNX_ATTR_FLOATS: a->n = (int)ap->n_floats, a->floats = ap->floats; break;
    case FE_ONNX_ATTR_INTS: a->n = (int)ap->n_ints, a->ints = ap->ints; break;
    case FE_ONNX_ATTR_STRINGS: {
        char **s = sup_arena_alloc(r->arena, sizeof *s * (ap->n_strings + 1));
        for (size_t i = 0; i < ap->n_strings; i++)
            s[i] = sup_arena_strndup(r->arena,
                                     ap->strings[i].data ? (const char *)ap->strings[i].data : "",
                                     ap->strings[i].len);
        a->n = (int)ap->n_strings;
        a->strings = (const char *const *)s;
        break;
    }
    case FE_ONNX_ATTR_TENSORS: {
        fe_onnx_tensor *ts = sup_arena_alloc(r->arena, sizeof *ts * (ap->n_tensors + 1));
        for (size_t i = 0; i < ap->n_tensors; i++)
            if (!read_tensor(r, ap->tensors[i], what, &ts[i])) return false;
        a->n = (int)ap->n_tensors;
        a->tensors = ts;
        break;
    }
    default: break; /* graphs, sparse tensors, type protos: type only */
    }
    return true;
}

/* A Constant node's value, whichever attribute holds it, as a tensor named
 * after the node's output. */
static bool constant_value(reader *r, fe_onnx_node *n, const char *label)
{
    if (n->n_outputs != 1 || !*n->outputs[0])
        return fail(r, "node %s (Constant) must have exactly one output", label);
    const fe_onnx_attr *found = NULL;
    for (int i = 0; i < n->n_attrs; i++) {
        const char *k = n->attrs[i].name;
        if (strncmp(k, "value", 5) != 0 && strcmp(k, "sparse_value") != 0) continue;
        if (found)
            return fail(r, "node %s (Constant) has both '%s' and '%s'", label, found->name, k);
        found = &n->attrs[i];
    }
    if (!found) return fail(r, "node %s (Constant) has no value attribute", label);
    fe_onnx_tensor *t = sup_arena_alloc(r->arena, sizeof *t);
    const fe_onnx_attr *a = found;
    const char *k = a->name;
    int64_t *dims = sup_arena_alloc(r->arena, sizeof *dims);
    bool list = a->type == FE_ONNX_ATTR_FLOATS || a->type == FE_ONNX_ATTR_INTS ||
                a->type == FE_ONNX_ATTR_STRINGS;
    dims[0] = a->n;
    if (strcmp(k, "value") == 0 && a->type == FE_ONNX_ATTR_TENSOR) {
        *t = *a->t;
    } else if (strcmp(k, "value_float") == 0 && a->type == FE_ONNX_ATTR_FLOAT) {
        *t = (fe_onnx_tensor){.dtype = FE_ONNX_FLOAT, .count = 1, .data = &a->f, .size = 4};
    } else if (strcmp(k, "value_int") == 0 && a->type == FE_ONNX_ATTR_INT) {
        *t = (fe_onnx_tensor){.dtype = FE_ONNX_INT64, .count = 1, .data = &a->i, .size = 8};
    } else if (strcmp(k, "value_floats") == 0 && a->type == FE_ONNX_ATTR_FLOATS) {
        *t = (fe_onnx_tensor){.dtype = FE_ONNX_FLOAT,
                              .count = a->n,
                              .data = a->n ? a->floats : NULL,
                              .size = 4 * (size_t)a->n};
    } else if (strcmp(k, "value_ints") == 0 && a->type == FE_ONNX_ATTR_INTS) {
        *t = (fe_onnx_tensor){.dtype = FE_ONNX_INT64,
                              .count = a->n,
                              .data = a->n ? a->ints : NULL,
                              .size = 8 * (size_t)a->n};
    } else if (strcmp(k, "value_string") == 0 && a->type == FE_ONNX_ATTR_STRING) {
        *t = (fe_onnx_tensor){.dtype = FE_ONNX_STRING, .count = 1, .strings = &a->s};
    } else if (strcmp(k, "value_strings") == 0 && a->type == FE_ONNX_ATTR_STRINGS) {
        *t = (fe_onnx_tensor){.dtype = FE_ONNX_STRING, .count = a->n, .strings = a->strings};
    } else if (strcmp(k, "sparse_value") == 0) {
        return fail(r, "node %s (Constant) has a sparse value (not supported)", label);
    } else {
        return fail(r, "node %s (Constant) has an attribute '%s' of the wrong type", label, k);
    }
    if (list) t->rank = 1, t->dims = dims;
    t->name = n->outputs[0];
    n->value = t;
    return true;
}

const char *fe_onnx_node_label(sup_arena *arena, const fe_onnx_model *m, const fe_onnx_node *n)
{
    if (*n->name) return sup_arena_printf(arena, "'%s'", n->name);
    return sup_arena_printf(arena, "#%d", (int)(n - m->nodes));
}

/* Records a value definition; false (reported) if the name is taken. */
static bool define(reader *r, const char *name, const char *by)
{
    int32_t *slot = fe_onnx_map_slot(r->arena, &r->names, name, true);
    if (*slot >= 0) return fail(r, "%s defines '%s', which is already defined", by, name);
    *slot = 1;
    return true;
}

static bool read_node(reader *r, const Onnx__NodeProto *np, int index, fe_onnx_node *n)
{
    memset(n, 0, sizeof *n);
    n->name = str_or_empty(np->name);
    n->domain = str_or_empty(np->domain);
    if (strcmp(n->domain, "ai.onnx") == 0) n->domain = "";
    const char *label = *n->name ? sup_arena_printf(r->arena, "'%s'", n->name)
                                 : sup_arena_printf(r->arena, "#%d", index);
    if (!np->op_type || !*np->op_type) return fail(r, "node %s has no op_type", label);
    n->op_type = np->op_type;
    n->n_inputs = (int)np->n_input;
    n->n_outputs = (int)np->n_output;
    n->inputs = (const char *const *)np->input;
    n->outputs = (const char *const *)np->output;
    fe_onnx_attr *attrs = sup_arena_alloc(r->arena, sizeof *attrs * (np->n_attribute + 1));
    for (size_t i = 0; i < np->n_attribute; i++) {
        if (!read_attr(r, np->attribute[i], label, &attrs[i])) return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(attrs[j].name, attrs[i].name) == 0)
                return fail(r, "node %s has the attribute '%s' twice", label, attrs[i].name);
    }
    n->attrs = attrs;
    n->n_attrs = (int)np->n_attribute;
    n->opset = fe_onnx_opset_version(r->m, n->domain);
    if (!*n->domain && strcmp(n->op_type, "Constant") == 0 && !constant_value(r, n, label))
        return false;
    for (int i = 0; i < n->n_inputs; i++)
        if (*n->inputs[i] && !fe_onnx_map_slot(r->arena, &r->names, n->inputs[i], false))
            return fail(
                r,
                "node %s (%s) uses '%s', which no graph input, initializer or earlier node defines",
                label, n->op_type, n->inputs[i]);
    const char *by = sup_arena_printf(r->arena, "node %s (%s)", label, n->op_type);
    for (int i = 0; i < n->n_outputs; i++)
        if (*n->outputs[i] && !define(r, n->outputs[i], by)) return false;
    return true;
}

static bool read_opsets(reader *r, const Onnx__ModelProto *mp)
{
    fe_onnx_opset *ops = sup_arena_alloc(r->arena, sizeof *ops * (mp->n_opset_import + 1));
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        const char *d = str_or_empty(o->domain);
        if (strcmp(d, "ai.onnx") == 0) d = "";
        if (!o->has_version || o->version < 1)
            return fail(r, "the model imports domain '%s' without a valid version",
                        *d ? d : "ai.onnx");
        for (size_t j = 0; j < i; j++)
            if (strcmp(ops[j].domain, d) == 0)
                return fail(r, "the model imports domain '%s' twice", *d ? d : "ai.onnx");
        ops[i] = (fe_onnx_opset){d, o->version};
    }
    r->m->opsets = ops;
    r->m->n_opsets = (int)mp->n_opset_import;
    if (mp->n_opset_import == 0) {
        /* before IR version 3 the operator set was implicitly ai.onnx 1 */
        if (mp->has_ir_version && mp->ir_version >= 3)
            return fail(r, "the model imports no operator set (opset_import is empty)");
        ops[0] = (fe_onnx_opset){"", 1};
        r->m->n_opsets = 1;
    }
    return true;
}

static bool read_initializers(reader *r, const Onnx__GraphProto *g)
{
    if (g->n_sparse_initializer)
        return fail(r, "the graph has sparse initializers (not supported)");
    fe_onnx_tensor *ts = sup_arena_alloc(r->arena, sizeof *ts * (g->n_initializer + 1));
    fe_onnx_map seen = {0};
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *tp = g->initializer[i];
        if (!tp->name || !*tp->name) return fail(r, "initializer #%zu has no name", i);
        const char *what = sup_arena_printf(r->arena, "initializer '%s'", tp->name);
        if (!read_tensor(r, tp, what, &ts[i])) return false;
        int32_t *slot = fe_onnx_map_slot(r->arena, &seen, tp->name, true);
        if (*slot >= 0) return fail(r, "initializer name '%s' is used twice", tp->name);
        *slot = (int32_t)i;
    }
    r->m->initializers = ts;
    r->m->n_initializers = (int)g->n_initializer;
    return true;
}

static bool read_graph(reader *r, const Onnx__GraphProto *g)
{
    fe_onnx_model *m = r->m;
    if (g->n_node > INT32_MAX / 2 || g->n_initializer > INT32_MAX / 2 || g->n_input > INT32_MAX / 2)
        return fail(r, "the graph is too large");
    if (!read_initializers(r, g)) return false;
    fe_onnx_map inits = {0};
    for (int i = 0; i < m->n_initializers; i++)
        *fe_onnx_map_slot(r->arena, &inits, m->initializers[i].name, true) = i;
    fe_onnx_value_info *ins = sup_arena_alloc(r->arena, sizeof *ins * (g->n_input + 1));
    for (size_t i = 0; i < g->n_input; i++) {
        fe_onnx_value_info vi;
        if (!read_value_info(r, g->input[i], "input", (int)i, &vi)) return false;
        if (!define(r, vi.name, "graph input")) return false;
        /* an input that also has an initializer (IR < 4 style) is a constant */
        if (!fe_onnx_map_slot(r->arena, &inits, vi.name, false)) ins[m->n_inputs++] = vi;
    }
    m->inputs = ins;
    for (int i = 0; i < m->n_initializers; i++) {
        int32_t *slot = fe_onnx_map_slot(r->arena, &r->names, m->initializers[i].name, true);
        *slot = 1; /* an initializer may share its name with a graph input */
    }
    fe_onnx_node *nodes = sup_arena_alloc(r->arena, sizeof *nodes * (g->n_node + 1));
    for (size_t i = 0; i < g->n_node; i++)
        if (!read_node(r, g->node[i], (int)i, &nodes[i])) return false;
    m->nodes = nodes;
    m->n_nodes = (int)g->n_node;
    fe_onnx_value_info *outs = sup_arena_alloc(r->arena, sizeof *outs * (g->n_output + 1));
    for (size_t i = 0; i < g->n_output; i++) {
        if (!read_value_info(r, g->output[i], "output", (int)i, &outs[i])) return false;
        if (!fe_onnx_map_slot(r->arena, &r->names, outs[i].name, false))
            return fail(r, "graph output '%s' is not defined by any node, input or initializer",
                        outs[i].name);
    }
    m->outputs = outs;
    m->n_outputs = (int)g->n_output;
    if (m->n_outputs == 0) return fail(r, "the graph has no outputs");
    return true;
}

static void *pb_alloc(void *arena, size_t size) { return sup_arena_alloc(arena, size ? size : 1); }
static void pb_free(void *arena, void *p) { (void)arena, (void)p; /* the arena frees in bulk */ }

static bool parse(reader *r, const uint8_t *data, size_t size)
{
    fe_onnx_model *m = r->m;
    if (size == 0) return fail(r, "the file is empty, not an ONNX model");
    ProtobufCAllocator alloc = {pb_alloc, pb_free, r->arena};
    Onnx__ModelProto *mp = onnx__model_proto__unpack(&alloc, size, data);
    if (!mp) return fail(r, "not an ONNX model: the protobuf is truncated or malformed");
    m->ir_version = mp->has_ir_version ? mp->ir_version : 0;
    m->producer = sup_arena_printf(r->arena, "%s%s%s", str_or_empty(mp->producer_name),
                                   mp->producer_version && *mp->producer_version ? " " : "",
                                   str_or_empty(mp->producer_version));
    if (!mp->graph) return fail(r, "not an ONNX model: it has no graph");
    return read_opsets(r, mp) && read_graph(r, mp->graph);
}

bool fe_onnx_parse(sup_arena *arena, const char *path, const uint8_t *data, size_t size,
                   fe_onnx_model *out)
{
    memset(out, 0, sizeof *out);
    out->path = path;
    reader r = {.arena = arena, .path = path, .m = out};
    return parse(&r, data, size);
}

bool fe_onnx_open(sup_arena *arena, const char *path, fe_onnx_model *out)
{
    memset(out, 0, sizeof *out);
    out->path = path;
    reader r = {.arena = arena, .path = path, .m = out};
    const char *slash = strrchr(path, '/');
    r.dir = slash ? (slash == path ? "/" : sup_arena_strndup(arena, path, (size_t)(slash - path)))
                  : ".";
    rt_mapped_file f;
    char err[256];
    if (rt_file_map(path, &f, err, sizeof err) != QMC_OK) return fail(&r, "%s", err);
    bool ok = parse(&r, f.data, f.size);
    rt_file_unmap(&f); /* protobuf-c copied what it keeps */
    if (!ok) fe_onnx_close(out);
    return ok;
}

bool fe_onnx_read_tensor(sup_arena *arena, const char *path, fe_onnx_tensor *out)
{
    fe_onnx_model m = {.path = path};
    reader r = {.arena = arena, .path = path, .m = &m};
    rt_mapped_file f;
    char err[256];
    if (rt_file_map(path, &f, err, sizeof err) != QMC_OK) return fail(&r, "%s", err);
    ProtobufCAllocator alloc = {pb_alloc, pb_free, arena};
    Onnx__TensorProto *tp = f.size ? onnx__tensor_proto__unpack(&alloc, f.size, f.data) : NULL;
    rt_file_unmap(&f);
    if (!tp) return fail(&r, "not an ONNX tensor: the protobuf is empty, truncated or malformed");
    return read_tensor(&r, tp, "the tensor", out);
}

void fe_onnx_close(fe_onnx_model *model)
{
    for (fe_onnx_file *f = model->files; f; f = f->next) rt_file_unmap(&f->map);
    model->files = NULL;
}

int fe_onnx_data_files(const fe_onnx_model *m, const char **paths, int max)
{
    int n = 0;
    for (const fe_onnx_file *f = m->files; f; f = f->next) n++;
    int k = n;
    for (const fe_onnx_file *f = m->files; f; f = f->next)
        if (--k < max) paths[k] = f->path; /* the list is newest first */
    return n;
}

int64_t fe_onnx_opset_version(const fe_onnx_model *m, const char *domain)
{
    if (strcmp(domain, "ai.onnx") == 0) domain = "";
    for (int i = 0; i < m->n_opsets; i++)
        if (strcmp(m->opsets[i].domain, domain) == 0) return m->opsets[i].version;
    return 0;
}

const fe_onnx_attr *fe_onnx_attr_find(const fe_onnx_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}
