/* use_header.c: a program that knows the digits model only through the
 * header qmc generated (--emit obj): it includes nothing else from qmc,
 * runs the first test images through digits_run and checks the logits
 * against PyTorch's (logits_fp32.npy) and the status codes.
 * usage: use_header TEST_X.npy LOGITS.npy */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digits_model.h"

/* The data of a little-endian float32 .npy file (version 1 header). */
static float *read_npy(const char *path, long *count)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char head[10];
    if (fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6) != 0) return fclose(f), NULL;
    long hlen = head[8] | head[9] << 8;
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f) - 10 - hlen;
    fseek(f, 10 + hlen, SEEK_SET);
    float *data = malloc((size_t)bytes);
    if (!data || fread(data, 1, (size_t)bytes, f) != (size_t)bytes)
        return fclose(f), free(data), NULL;
    fclose(f);
    *count = bytes / 4;
    return data;
}

int main(int argc, char **argv)
{
    if (argc != 3) return fprintf(stderr, "usage: use_header TEST_X.npy LOGITS.npy\n"), 2;
    long nx, ny;
    float *x = read_npy(argv[1], &nx), *want = read_npy(argv[2], &ny);
    if (!x || !want) return fprintf(stderr, "cannot read the test data\n"), 2;
    static _Alignas(64) unsigned char workspace[DIGITS_WORKSPACE_SIZE + 1];
    const long per_x = DIGITS_INPUT_X_COUNT, per_y = DIGITS_OUTPUT_LOGITS_COUNT;
    int64_t shape[] = DIGITS_INPUT_X_SHAPE;
    if (shape[0] != 64 || DIGITS_INPUT_X_DTYPE != QMC_DTYPE_F32 || digits_model.n_inputs != 1)
        return fprintf(stderr, "the header describes the wrong model\n"), 1;
    double worst = 0;
    for (long i = 0; i < 20; i++) {
        float y[DIGITS_OUTPUT_LOGITS_COUNT];
        qmc_status st = digits_run(x + i * per_x, y, workspace);
        if (st != QMC_OK) return fprintf(stderr, "digits_run returned %d\n", st), 1;
        for (long j = 0; j < per_y; j++) worst = fmax(worst, fabs(y[j] - want[i * per_y + j]));
    }
    if (digits_run(NULL, want, workspace) != QMC_ERR_INVALID_ARGUMENT)
        return fprintf(stderr, "a null input was not rejected\n"), 1;
    printf("max |logits - pytorch| over 20 images: %.3g\n", worst);
    return worst <= 1e-4 ? 0 : 1;
}
