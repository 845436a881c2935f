/* npy.c: reading and writing NumPy .npy files.
 *
 * Needs: a buffer holding the file (usually memory-mapped).
 * Guarantees: a header accepted here describes data that lies entirely inside
 * the buffer; every malformed header is rejected with a one-line reason. The
 * parser never reads past len and never allocates. */
#include <stdio.h>
#include <string.h>

#include "rt.h"

static qmc_status fail(char *err, size_t err_size, const char *msg)
{
    if (err && err_size) snprintf(err, err_size, "%s", msg);
    return QMC_ERR_FORMAT;
}

/* A cursor over the header's Python dict literal. */
typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool eat(cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* Reads a quoted string ('...' or "...") into out; false if malformed. */
static bool read_string(cursor *c, char *out, size_t out_size)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return false;
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (n + 1 >= out_size) return false;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return false;
    c->p++;
    out[n] = 0;
    return true;
}

static bool read_word(cursor *c, const char *word)
{
    skip_space(c);
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return false;
    c->p += n;
    return true;
}

static qmc_dtype dtype_from_descr(const char *d)
{
    static const struct {
        const char *code;
        qmc_dtype dtype;
    } table[] = {
        {"f4", QMC_DTYPE_F32}, {"f8", QMC_DTYPE_F64}, {"f2", QMC_DTYPE_F16}, {"i1", QMC_DTYPE_I8},
        {"u1", QMC_DTYPE_U8},  {"i2", QMC_DTYPE_I16}, {"u2", QMC_DTYPE_U16}, {"i4", QMC_DTYPE_I32},
        {"u4", QMC_DTYPE_U32}, {"i8", QMC_DTYPE_I64}, {"u8", QMC_DTYPE_U64}, {"b1", QMC_DTYPE_BOOL},
    };
    if (d[0] != '<' && d[0] != '|' && d[0] != '=') return QMC_DTYPE_INVALID;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(d + 1, table[i].code) == 0) {
            /* single-byte types are written with '|', wider ones need '<' */
            if (d[0] == '|' && qmc_dtype_size(table[i].dtype) != 1) return QMC_DTYPE_INVALID;
            return table[i].dtype;
        }
    return QMC_DTYPE_INVALID;
}

static const char *descr_of(qmc_dtype dtype)
{
    switch (dtype) {
    case QMC_DTYPE_F32: return "<f4";
    case QMC_DTYPE_F64: return "<f8";
    case QMC_DTYPE_F16: return "<f2";
    case QMC_DTYPE_I8: return "|i1";
    case QMC_DTYPE_U8: return "|u1";
    case QMC_DTYPE_I16: return "<i2";
    case QMC_DTYPE_U16: return "<u2";
    case QMC_DTYPE_I32: return "<i4";
    case QMC_DTYPE_U32: return "<u4";
    case QMC_DTYPE_I64: return "<i8";
    case QMC_DTYPE_U64: return "<u8";
    case QMC_DTYPE_BOOL: return "|b1";
    default: return NULL;
    }
}

/* Parses "(a, b, )" into shape; rejects negative or overflowing products. */
static qmc_status read_shape(cursor *c, rt_npy_header *h, char *err, size_t err_size)
{
    if (!eat(c, '(')) return fail(err, err_size, "'shape' is not a tuple");
    h->rank = 0;
    h->count = 1;
    for (;;) {
        skip_space(c);
        if (eat(c, ')')) break;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return fail(err, err_size, "'shape' holds something other than integers");
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return fail(err, err_size, "a dimension is too large");
            v = v * 10 + (*c->p++ - '0');
        }
        if (h->rank == RT_MAX_RANK) return fail(err, err_size, "more than 8 dimensions");
        h->shape[h->rank++] = v;
        if (v != 0 && h->count > INT64_MAX / v)
            return fail(err, err_size, "the shape is too large");
        h->count *= v;
        if (!eat(c, ',')) {
            if (!eat(c, ')')) return fail(err, err_size, "'shape' tuple is not closed");
            break;
        }
    }
    return QMC_OK;
}

static qmc_status parse_dict(cursor *c, rt_npy_header *h, char *err, size_t err_size)
{
    bool have_descr = false, have_order = false, have_shape = false;
    char key[32], descr[32];
    if (!eat(c, '{')) return fail(err, err_size, "header is not a dictionary");
    while (!eat(c, '}')) {
        if (!read_string(c, key, sizeof key) || !eat(c, ':'))
            return fail(err, err_size, "header dictionary is malformed");
        if (strcmp(key, "descr") == 0) {
            if (!read_string(c, descr, sizeof descr))
                return fail(err, err_size, "'descr' is not a simple type string");
            h->dtype = dtype_from_descr(descr);
            if (h->dtype == QMC_DTYPE_INVALID) {
                char msg[96];
                snprintf(msg, sizeof msg, "unsupported dtype '%s' (big-endian or structured)",
                         descr);
                return fail(err, err_size, msg);
            }
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (read_word(c, "True"))
                return fail(err, err_size, "Fortran-ordered arrays are not supported");
            if (!read_word(c, "False")) return fail(err, err_size, "'fortran_order' is not a bool");
            have_order = true;
        } else if (strcmp(key, "shape") == 0) {
            qmc_status st = read_shape(c, h, err, err_size);
            if (st != QMC_OK) return st;
            have_shape = true;
        } else {
            return fail(err, err_size, "header has an unknown key");
        }
        if (!eat(c, ',')) {
            if (!eat(c, '}')) return fail(err, err_size, "header dictionary is not closed");
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return fail(err, err_size, "header lacks 'descr', 'fortran_order' or 'shape'");
    return QMC_OK;
}

qmc_status rt_npy_parse(const void *buf, size_t len, rt_npy_header *out, char *err, size_t err_size)
{
    const uint8_t *b = buf;
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return fail(err, err_size, "not an .npy file (bad magic)");
    size_t header_len, prefix;
    if (b[6] == 1) {
        header_len = (size_t)b[8] | (size_t)b[9] << 8;
        prefix = 10;
    } else if (b[6] == 2 || b[6] == 3) {
        if (len < 12) return fail(err, err_size, "truncated header");
        header_len = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        prefix = 12;
    } else {
        return fail(err, err_size, "unsupported .npy format version");
    }
    if (header_len > len - prefix) return fail(err, err_size, "truncated header");
    cursor c = {(const char *)b + prefix, (const char *)b + prefix + header_len};
    qmc_status st = parse_dict(&c, out, err, err_size);
    if (st != QMC_OK) return st;
    out->data_offset = prefix + header_len;
    size_t esize = qmc_dtype_size(out->dtype);
    if ((uint64_t)out->count > (uint64_t)SIZE_MAX / esize)
        return fail(err, err_size, "the shape is too large");
    out->data_bytes = (size_t)out->count * esize;
    if (out->data_bytes > len - out->data_offset) {
        char msg[128];
        snprintf(msg, sizeof msg, "truncated data: the shape needs %zu bytes, the file has %zu",
                 out->data_bytes, len - out->data_offset);
        return fail(err, err_size, msg);
    }
    return QMC_OK;
}

size_t rt_npy_header_encode(qmc_dtype dtype, int rank, const int64_t *shape, char *out,
                            size_t out_size)
{
    const char *descr = descr_of(dtype);
    if (!descr || rank < 0 || rank > RT_MAX_RANK || out_size < RT_NPY_HEADER_MAX) return 0;
    /* the longest dict (8 dimensions of 19 digits) is 232 characters */
    char dict[RT_NPY_HEADER_MAX];
    int n =
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0) return 0;
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)shape[i],
                      i + 1 < rank ? " " : "");
    }
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    if ((size_t)n >= sizeof dict) return 0;
    size_t total = 10 + (size_t)n + 1; /* magic + dict + '\n' */
    size_t padded = (total + 63) / 64 * 64;
    if (padded > out_size) return 0;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    size_t header_len = padded - 10;
    out[8] = (char)(header_len & 0xff);
    out[9] = (char)(header_len >> 8);
    memcpy(out + 10, dict, (size_t)n);
    memset(out + 10 + n, ' ', padded - 10 - (size_t)n - 1);
    out[padded - 1] = '\n';
    return padded;
}

qmc_status rt_npy_write_err(const char *path, qmc_dtype dtype, int rank, const int64_t *shape,
                            const void *data, char *err, size_t err_size)
{
    char header[RT_NPY_HEADER_MAX];
    size_t hlen = rt_npy_header_encode(dtype, rank, shape, header, sizeof header);
    if (!hlen) return QMC_ERR_INVALID_ARGUMENT;
    size_t count = 1;
    for (int i = 0; i < rank; i++) count *= (size_t)shape[i];
    rt_write_piece pieces[2] = {{header, hlen}, {data, count * qmc_dtype_size(dtype)}};
    return rt_file_write_atomic(path, pieces, 2, err, err_size);
}

qmc_status rt_npy_write(const char *path, qmc_dtype dtype, int rank, const int64_t *shape,
                        const void *data)
{
    return rt_npy_write_err(path, dtype, rank, shape, data, NULL, 0);
}
