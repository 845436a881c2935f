/* fuzz_safetensors: any bytes -> fe_safetensors_parse; every tensor it
 * accepts is found by name and widened to f32 (which reads all its data). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sup_arena arena = {0};
    fe_safetensors st;
    char err[256];
    if (fe_safetensors_parse(&arena, data, size, &st, err, sizeof err) == QMC_OK) {
        for (int i = 0; i < st.count; i++) {
            const fe_tensor *t = &st.tensors[i];
            if (fe_safetensors_find(&st, t->name) != t) abort();
            if (t->size != (size_t)t->count * qmc_dtype_size(t->dtype)) abort();
            if (t->file_offset + t->size > size) abort();
            float *out = malloc(sizeof(float) * (size_t)(t->count + 1));
            fe_tensor_to_f32(t, out);
            free(out);
        }
    } else if (!memchr(err, 0, sizeof err) || !err[0]) {
        abort(); /* every rejection has a reason */
    }
    sup_arena_free(&arena);
    return 0;
}
