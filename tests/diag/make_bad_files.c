/* make_bad_files: writes the weights and .npy files the diagnostics tests
 * use into a folder (a CTest fixture), so no opaque binaries are checked in.
 *
 *   make_bad_files OUTDIR
 *
 * Valid files: tiny.safetensors (small f32/f16/bf16 weights whose names
 * the cases use), x4.npy and friends. Every other file is wrong in exactly
 * one way, named after it. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rt.h"

static const char *outdir;

static void write_file(const char *name, const void *data, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "make_bad_files: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* ---- safetensors -------------------------------------------------------- */

/* header length (hlen, or strlen(json) when hlen is 0), the JSON, then
 * data_size bytes of data counting up from 0 */
static void st_file(const char *name, const char *json, uint64_t hlen, size_t data_size)
{
    size_t jlen = strlen(json);
    if (!hlen) hlen = jlen;
    size_t size = 8 + jlen + data_size;
    unsigned char *buf = malloc(size);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, json, jlen);
    for (size_t i = 0; i < data_size; i++) buf[8 + jlen + i] = (unsigned char)i;
    write_file(name, buf, size);
    free(buf);
}

/* A growing safetensors image: tensors are appended with their data. */
typedef struct st_builder {
    char json[8192];
    size_t jlen;
    unsigned char data[16384];
    size_t dlen;
} st_builder;

static void st_add(st_builder *b, const char *name, const char *dtype, int rank,
                   const int64_t *shape, const void *data, size_t size)
{
    char dims[128] = "";
    size_t n = 0;
    for (int i = 0; i < rank; i++)
        n += (size_t)snprintf(dims + n, sizeof dims - n, "%s%lld", i ? "," : "",
                              (long long)shape[i]);
    b->jlen +=
        (size_t)snprintf(b->json + b->jlen, sizeof b->json - b->jlen,
                         "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}",
                         b->jlen ? "," : "{", name, dtype, dims, b->dlen, b->dlen + size);
    if (size) memcpy(b->data + b->dlen, data, size);
    b->dlen += size;
}

static void st_add_f32(st_builder *b, const char *name, int rank, const int64_t *shape, float seed)
{
    float v[256];
    int64_t count = 1;
    for (int i = 0; i < rank; i++) count *= shape[i];
    for (int64_t i = 0; i < count; i++) v[i] = seed * (float)((i * 7) % 11 - 5) / 8.0f;
    st_add(b, name, "F32", rank, shape, v, sizeof(float) * (size_t)count);
}

static void st_write(st_builder *b, const char *name)
{
    /* pad the header with spaces so the data is 8-byte aligned, as writers do */
    b->json[b->jlen++] = '}';
    while ((8 + b->jlen) % 8) b->json[b->jlen++] = ' ';
    b->json[b->jlen] = 0;
    unsigned char *buf = malloc(8 + b->jlen + b->dlen);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)b->jlen >> (8 * i));
    memcpy(buf + 8, b->json, b->jlen);
    memcpy(buf + 8 + b->jlen, b->data, b->dlen);
    write_file(name, buf, 8 + b->jlen + b->dlen);
    free(buf);
}

static void weights_files(void)
{
    static st_builder b;
    st_add_f32(&b, "fc1.weight", 2, (int64_t[]){8, 4}, 1.0f);
    st_add_f32(&b, "fc1.bias", 1, (int64_t[]){8}, 0.5f);
    st_add_f32(&b, "fc2.weight", 2, (int64_t[]){3, 8}, 1.0f);
    st_add_f32(&b, "fc2.bias", 1, (int64_t[]){3}, 0.25f);
    st_add_f32(&b, "emb.weight", 2, (int64_t[]){10, 4}, 1.0f);
    st_add_f32(&b, "ln.weight", 1, (int64_t[]){4}, 1.0f);
    st_add_f32(&b, "ln.bias", 1, (int64_t[]){4}, 0.5f);
    st_add_f32(&b, "blocks.0.w", 2, (int64_t[]){4, 4}, 1.0f);
    st_add_f32(&b, "blocks.1.w", 2, (int64_t[]){4, 4}, -1.0f);
    uint16_t half[16], brain[16];
    for (int i = 0; i < 16; i++) {
        half[i] = (uint16_t)(0x3c00 + i);  /* 1.0 and a little more */
        brain[i] = (uint16_t)(0x3f80 + i); /* 1.0 and a little more */
    }
    st_add(&b, "half.weight", "F16", 2, (int64_t[]){4, 4}, half, sizeof half);
    st_add(&b, "brain.weight", "BF16", 2, (int64_t[]){4, 4}, brain, sizeof brain);
    st_add(&b, "empty.weight", "F32", 2, (int64_t[]){0, 4}, NULL, 0);
    st_write(&b, "tiny.safetensors");

    static st_builder nan;
    float w[32];
    for (int i = 0; i < 32; i++) w[i] = i == 13 ? 0.0f / 0.0f : (float)i / 32.0f;
    st_add(&nan, "fc1.weight", "F32", 2, (int64_t[]){8, 4}, w, sizeof w);
    st_add_f32(&nan, "fc1.bias", 1, (int64_t[]){8}, 0.5f);
    st_write(&nan, "nan-weight.safetensors");

    write_file("st-empty.safetensors", "", 0);
    write_file("st-short.safetensors", "\x10\0\0\0\0", 5);
    st_file("st-header-too-long.safetensors", "{}", 4096, 0);
    st_file("st-header-huge.safetensors", "{}", (uint64_t)1 << 63, 0);
    st_file("st-bad-json.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", 0, 4);
    st_file("st-not-object.safetensors", "[1, 2]", 0, 0);
    st_file("st-offsets-out-of-range.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", 0, 16);
    st_file("st-offsets-reversed.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 0, 16);
    st_file("st-overlap.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
            0, 24);
    st_file("st-f64.safetensors",
            "{\"w\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 0, 16);
    st_file("st-unknown-dtype.safetensors",
            "{\"w\":{\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8);
    st_file("st-size-mismatch.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 0, 20);
    st_file("st-negative-dim.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 0, 4);
    st_file("st-duplicate-name.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            0, 8);
    st_file("st-no-dtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4);
    /* codes `qmc import` writes beside a weight, without their metadata */
    st_file("st-codes-no-metadata.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,32],\"data_offsets\":[0,256]},"
            "\"w:codes\":{\"dtype\":\"I8\",\"shape\":[2,32],\"data_offsets\":[256,320]},"
            "\"w:scales\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[320,328]}}",
            0, 328);
}

/* ---- sharded checkpoints -------------------------------------------------- */

static void make_dir(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "make_bad_files: cannot create %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* DIR/model-00001-of-00002.safetensors (fc1.weight, fc1.bias, and `extra1`
 * if not NULL) and -00002 (fc2.weight, fc2.bias unless drop_fc2_bias, and
 * `extra2`), as tiny.safetensors holds them, and the index `index`. */
static void shard_set(const char *dir, const char *index, const char *extra1, const char *extra2,
                      bool drop_fc2_bias)
{
    static st_builder b1, b2;
    memset(&b1, 0, sizeof b1);
    memset(&b2, 0, sizeof b2);
    make_dir(dir);
    st_add_f32(&b1, "fc1.weight", 2, (int64_t[]){8, 4}, 1.0f);
    st_add_f32(&b1, "fc1.bias", 1, (int64_t[]){8}, 0.5f);
    if (extra1) st_add_f32(&b1, extra1, 1, (int64_t[]){8}, 0.5f);
    st_add_f32(&b2, "fc2.weight", 2, (int64_t[]){3, 8}, 1.0f);
    if (!drop_fc2_bias) st_add_f32(&b2, "fc2.bias", 1, (int64_t[]){3}, 0.25f);
    if (extra2) st_add_f32(&b2, extra2, 1, (int64_t[]){8}, 0.5f);
    char path[512];
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
    st_write(&b1, path);
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    st_write(&b2, path);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    write_file(path, index, strlen(index));
}

#define SHARD1 "\"model-00001-of-00002.safetensors\""
#define SHARD2 "\"model-00002-of-00002.safetensors\""
#define WEIGHT_MAP                                                                                 \
    "\"weight_map\": {\"fc1.bias\": " SHARD1 ", \"fc1.weight\": " SHARD1 ", \"fc2.bias\": " SHARD2 \
    ", \"fc2.weight\": " SHARD2 "}"

/* A good sharded copy of tiny.safetensors' fc1 and fc2, and sets that are
 * wrong in one way each (named after it). */
static void sharded_files(void)
{
    const char *good = "{\"metadata\": {\"total_size\": 268}, " WEIGHT_MAP "}\n";
    shard_set("sharded-good", good, NULL, NULL, false);
    shard_set("sharded-missing-shard", good, NULL, NULL, false);
    char path[512];
    snprintf(path, sizeof path, "%s/sharded-missing-shard/model-00002-of-00002.safetensors",
             outdir);
    remove(path);
    shard_set("sharded-tensor-absent", good, NULL, NULL, true);
    shard_set("sharded-tensor-twice", good, NULL, "fc1.bias", false);
    shard_set("sharded-unlisted", good, "fc1.extra", NULL, false);
    shard_set("sharded-bad-json", "{\"weight_map\": {\"fc1.weight\": " SHARD1 ",}}", NULL, NULL,
              false);
    shard_set("sharded-no-weight-map", "{\"metadata\": {\"total_size\": 268}}", NULL, NULL, false);
    shard_set("sharded-shard-path", "{\"weight_map\": {\"fc1.weight\": \"../tiny.safetensors\"}}",
              NULL, NULL, false);
    shard_set("sharded-bad-shard", good, NULL, NULL, false);
    snprintf(path, sizeof path, "sharded-bad-shard/model-00002-of-00002.safetensors");
    st_file(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", 0, 16);
    make_dir("sharded-empty-folder");
}

/* ---- .npy --------------------------------------------------------------- */

/* magic, version, a header dict padded to 64 bytes, then data_size bytes */
static void npy_file(const char *name, int version, const char *dict, const void *data,
                     size_t data_size)
{
    size_t prefix = version == 1 ? 10 : 12, dlen = strlen(dict);
    size_t total = (prefix + dlen + 1 + 63) / 64 * 64, hlen = total - prefix;
    unsigned char *buf = calloc(1, total + data_size);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)version;
    for (size_t i = 0; i < prefix - 8; i++) buf[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + prefix, dict, dlen);
    memset(buf + prefix + dlen, ' ', hlen - dlen - 1);
    buf[total - 1] = '\n';
    if (data_size) memcpy(buf + total, data, data_size);
    write_file(name, buf, total + data_size);
    free(buf);
}

static void npy_write(const char *name, qmc_dtype dtype, int rank, const int64_t *shape,
                      const void *data)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    if (rt_npy_write(path, dtype, rank, shape, data) != QMC_OK) {
        fprintf(stderr, "make_bad_files: cannot write %s\n", path);
        exit(1);
    }
}

static void npy_files(void)
{
    float x[12];
    for (int i = 0; i < 12; i++) x[i] = (float)(i % 5) - 2.0f;
    int32_t k[4] = {0, 3, 1, 9}, k_oob[4] = {0, 3, 10, 1}, k_gather[2] = {-3, -4};
    int64_t k64[4] = {0, 3, 1, 9}, k64_big[4] = {0, 1, (int64_t)1 << 40, 2};
    double x64[4] = {1, 2, 3, 4};
    npy_write("x4.npy", QMC_DTYPE_F32, 1, (int64_t[]){4}, x);
    npy_write("x5.npy", QMC_DTYPE_F32, 1, (int64_t[]){5}, x);
    npy_write("x2x2.npy", QMC_DTYPE_F32, 2, (int64_t[]){2, 2}, x);
    npy_write("xb2.npy", QMC_DTYPE_F32, 2, (int64_t[]){2, 4}, x);
    npy_write("xb3.npy", QMC_DTYPE_F32, 2, (int64_t[]){3, 4}, x);
    npy_write("xb0.npy", QMC_DTYPE_F32, 2, (int64_t[]){0, 4}, x);
    npy_write("x4-f64.npy", QMC_DTYPE_F64, 1, (int64_t[]){4}, x64);
    npy_write("k4.npy", QMC_DTYPE_I32, 1, (int64_t[]){4}, k);
    npy_write("k4-oob.npy", QMC_DTYPE_I32, 1, (int64_t[]){4}, k_oob);
    npy_write("gather_index.npy", QMC_DTYPE_I32, 1, (int64_t[]){2}, k_gather);
    npy_write("k4-i64.npy", QMC_DTYPE_I64, 1, (int64_t[]){4}, k64);
    npy_write("k4-i64-big.npy", QMC_DTYPE_I64, 1, (int64_t[]){4}, k64_big);
    write_file("npy-bad-magic.npy", "\x93NUMPX\x01\x00\x10\x00{}              ", 26);
    write_file("npy-short.npy", "\x93NUMPY", 6);
    write_file("npy-empty.npy", "", 0);
    npy_file("npy-truncated.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", x,
             8);
    npy_file("npy-fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", x,
             16);
    npy_file("npy-big-endian.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }",
             x, 16);
    npy_file("npy-version.npy", 7, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", x,
             16);
    npy_file("npy-unknown-key.npy", 1,
             "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", x, 16);
    npy_file("npy-bad-shape.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4.5,), }",
             x, 16);
    npy_file("npy-v2.npy", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", x, 16);
    /* a header length beyond the end of the file */
    write_file("npy-header-too-long.npy", "\x93NUMPY\x01\x00\xff\x7f{'descr'", 17);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_bad_files OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "make_bad_files: cannot create %s: %s\n", outdir, strerror(errno));
        return 1;
    }
    weights_files();
    sharded_files();
    npy_files();
    return 0;
}
