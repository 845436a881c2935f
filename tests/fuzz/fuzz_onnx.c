/* fuzz_onnx: any bytes -> fe_onnx_parse, then the import into qmc's
 * language. Every element of every tensor the reader accepts is read;
 * every weight the import produces is read in full, and the text it writes
 * must parse; then the weights become the in-memory set `qmc compile
 * MODEL.onnx` uses (transposed in place where they lie) and are read
 * again. Diagnostics go to /dev/null. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_tensor(const fe_onnx_tensor *t)
{
    volatile double sum = 0;
    if (t->count && !t->data && t->dtype != FE_ONNX_STRING) abort();
    if (t->size != (size_t)((t->count * fe_onnx_dtype_bits(t->dtype) + 7) / 8)) abort();
    for (int64_t i = 0; i < t->count; i++) {
        double v;
        if (fe_onnx_tensor_get(t, i, &v)) sum += v;
    }
}

/* A weight that arrived quantized holds exactly (code - zero point) * scale. */
static void check_given(const fe_tensor *t)
{
    const fe_quantized *q = t->given;
    int64_t rows = t->shape[0], cols = t->shape[1], ng = (cols + q->group - 1) / q->group;
    if (t->rank != 2 || (q->bits != 4 && q->bits != 8) || (q->asym && !q->zero_points)) abort();
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            int64_t g = r * ng + c / q->group;
            int code = q->asym ? q->codes[r * cols + c] : (int8_t)q->codes[r * cols + c];
            float want = (float)(code - (q->asym ? q->zero_points[g] : 0)) * q->scales[g],
                  got = ((const float *)t->data)[r * cols + c];
            if (memcmp(&want, &got, sizeof want) != 0 && !(want != want && got != got)) abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *null;
    if (!null) null = fopen("/dev/null", "w");
    sup_diag_reset();
    sup_diag_set_stream(null);
    sup_arena arena = {0};
    fe_onnx_model m;
    if (fe_onnx_parse(&arena, "fuzz.onnx", data, size, &m)) {
        for (int i = 0; i < m.n_initializers; i++) read_tensor(&m.initializers[i]);
        for (int n = 0; n < m.n_nodes; n++)
            if (m.nodes[n].value) read_tensor(m.nodes[n].value);
        fe_onnx_import_options o = {.model_name = "fuzz", .weights_file = "fuzz.safetensors"};
        fe_onnx_imported imp;
        if (fe_onnx_import(&arena, &m, &o, &imp)) {
            for (int i = 0; i < imp.n_weights; i++) {
                const fe_onnx_weight *w = &imp.weights[i];
                int64_t n = 1;
                for (int d = 0; d < w->rank; d++) n *= w->shape[d];
                float *buf = malloc(sizeof(float) * (size_t)(n + 1));
                fe_onnx_weight_read(w, buf);
                free(buf);
            }
            if (!fe_parse_text(&arena, "fuzz.qm", imp.text, imp.len)) abort();
            fe_safetensors set;
            fe_onnx_weights_source(&arena, &imp, "fuzz.onnx", &set);
            volatile float sum = 0;
            for (int i = 0; i < set.count; i++) {
                const fe_tensor *t = &set.tensors[i];
                if (t->size != sizeof(float) * (size_t)t->count) abort();
                for (int64_t k = 0; k < t->count; k++) sum += ((const float *)t->data)[k];
                if (t->given) check_given(t);
            }
        } else if (sup_error_count() == 0) {
            abort(); /* every failure is reported */
        }
        fe_onnx_close(&m);
    } else if (sup_error_count() != 1) {
        abort(); /* exactly one error for an unreadable file */
    }
    sup_diag_set_stream(NULL);
    sup_arena_free(&arena);
    return 0;
}
