/* weights.c: external weights files (qmc compile --weights-file).
 *
 * Needs: a model description whose weights_base points at the pointer the
 * generated code reads its weights through.
 * Guarantees: the model is pointed at a file only when its size and 64-bit
 * FNV-1a checksum are those the model was compiled with; the file stays
 * mapped (read-only, page-aligned) for the life of the process. A failed
 * load leaves *weights_base as it was and nothing mapped. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "rt.h"

uint64_t qmc_checksum(const void *data, size_t size)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a 64-bit offset basis */
    for (size_t i = 0; i < size; i++) {
        h ^= p[i];
        h *= 0x100000001b3u; /* FNV prime */
    }
    return h;
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
