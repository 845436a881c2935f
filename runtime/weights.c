/* weights.c: external weights files (qmc compile --weights-file).
 *
 * Needs: a model description whose weights_base points at the pointer the
 * generated code reads its weights through.
 * Guarantees: the model is pointed at a file only when its size and
 * checksum (qmc_checksum) are those the model was compiled with; the file stays
 * mapped (read-only, page-aligned) for the life of the process. A failed
 * load leaves *weights_base as it was and nothing mapped. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rt.h"

/* The checksum: eight 64-bit lanes, each taking every eighth word of the
 * data's 64-byte blocks by FNV-1a's step (xor, multiply by its prime) and
 * a shift that folds the high half into the low; the bytes after the last
 * whole block go to the lanes in turn; the lanes and the length are then
 * folded by FNV-1a. Eight independent lanes check a file at the speed it
 * is read (byte-wise FNV-1a ran at ~250 MB/s: 2.5 s to start a 1 B model). */
enum { LANES = 8 };
static const uint64_t FNV_BASIS = 0xcbf29ce484222325u, FNV_PRIME = 0x100000001b3u;

static uint64_t mix(uint64_t lane, uint64_t v)
{
    lane = (lane ^ v) * FNV_PRIME;
    return lane ^ (lane >> 32);
}

void rt_checksum_begin(rt_checksum *c)
{
    for (int i = 0; i < LANES; i++) c->lane[i] = FNV_BASIS ^ (uint64_t)i;
    c->bytes = 0;
}

void rt_checksum_update(rt_checksum *c, const void *data, size_t size)
{
    const uint8_t *p = data;
    size_t blocks = size / RT_CHECKSUM_BLOCK;
    uint64_t lane[LANES];
    memcpy(lane, c->lane, sizeof lane);
    for (size_t b = 0; b < blocks; b++, p += RT_CHECKSUM_BLOCK)
        for (int i = 0; i < LANES; i++) {
            uint64_t w;
            memcpy(&w, p + 8 * i, 8); /* little-endian hosts only, as the weights */
            lane[i] = mix(lane[i], w);
        }
    for (size_t j = 0; j < size % RT_CHECKSUM_BLOCK; j++)
        lane[j % LANES] = mix(lane[j % LANES], p[j]);
    memcpy(c->lane, lane, sizeof lane);
    c->bytes += size;
}

uint64_t rt_checksum_end(const rt_checksum *c)
{
    uint64_t h = FNV_BASIS;
    for (int i = 0; i < LANES; i++) h = (h ^ c->lane[i]) * FNV_PRIME;
    return (h ^ c->bytes) * FNV_PRIME;
}

uint64_t qmc_checksum(const void *data, size_t size)
{
    rt_checksum c;
    rt_checksum_begin(&c);
    rt_checksum_update(&c, data, size);
    return rt_checksum_end(&c);
}

__attribute__((format(printf, 4, 5))) static qmc_status
weights_fail(qmc_status st, char *err, size_t err_size, const char *fmt, ...)
{
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return st;
}

qmc_status rt_load_weights(const qmc_model_desc *model, const char *path, char *err,
                           size_t err_size)
{
    if (!model || !model->weights_base)
        return weights_fail(QMC_ERR_INVALID_ARGUMENT, err, err_size,
                            "the model keeps its weights inside the binary");
    if (!path) path = model->weights_file;
    if (!path)
        return weights_fail(QMC_ERR_INVALID_ARGUMENT, err, err_size,
                            "no weights file given and the model names none");
    rt_mapped_file f;
    char why[200];
    if (rt_file_map(path, &f, why, sizeof why) != QMC_OK)
        return weights_fail(QMC_ERR_IO, err, err_size, "weights file '%s': %s", path, why);
    size_t size = f.size;
    if (size != model->weights_size) {
        rt_file_unmap(&f);
        return weights_fail(QMC_ERR_CHECKSUM, err, err_size,
                            "weights file '%s' has %zu bytes but the model '%s' was compiled "
                            "with one of %" PRIu64 " bytes",
                            path, size, model->name ? model->name : "", model->weights_size);
    }
    uint64_t sum = qmc_checksum(f.data, f.size);
    if (sum != model->weights_checksum) {
        rt_file_unmap(&f);
        return weights_fail(QMC_ERR_CHECKSUM, err, err_size,
                            "weights file '%s' does not match the model '%s' (checksum "
                            "0x%016" PRIx64 ", expected 0x%016" PRIx64 ")",
                            path, model->name ? model->name : "", sum, model->weights_checksum);
    }
    *model->weights_base = f.data;
    return QMC_OK;
}

qmc_status qmc_load_weights(const qmc_model_desc *model, const char *path)
{
    return rt_load_weights(model, path, NULL, 0);
}
