/* digits_app.c: the program of the external projects in tests/install
 * (CMake with find_package(qmc) and qmc_add_model(), a Makefile with
 * pkg-config). It knows the model only through its generated header,
 * MODEL_HEADER, and the runtime's public one: it checks the CPU, loads an
 * external weights file if the model has one, classifies every test image
 * and prints the accuracy; exit 1 below MIN_ACCURACY.
 * usage: digits_app TEST_X.npy TEST_Y.npy MIN_ACCURACY */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include MODEL_HEADER
#include <qmc_runtime.h>

#include "npy.h"

int main(int argc, char **argv)
{
    if (argc != 4)
        return fprintf(stderr, "usage: digits_app TEST_X.npy TEST_Y.npy MIN_ACCURACY\n"), 2;
    char missing[256];
    if (qmc_check_cpu(digits_model.features, missing, sizeof missing) != QMC_OK)
        return fprintf(stderr, "this CPU lacks %s\n", missing), 1;
    if (digits_model.weights_file && qmc_load_weights(&digits_model, NULL) != QMC_OK)
        return fprintf(stderr, "cannot load the weights file %s\n", digits_model.weights_file), 1;
    size_t nx, ny;
    float *x = npy_read(argv[1], "'<f4'", sizeof(float), &nx);
    int32_t *y = npy_read(argv[2], "'<i4'", sizeof(int32_t), &ny);
    if (!x || !y || nx != ny * DIGITS_INPUT_X_COUNT)
        return fprintf(stderr, "cannot read the test data\n"), 2;
    static _Alignas(64) unsigned char workspace[DIGITS_WORKSPACE_SIZE + 1];
    size_t right = 0;
    for (size_t i = 0; i < ny; i++) {
        float logits[DIGITS_OUTPUT_LOGITS_COUNT];
        qmc_status st = digits_run(x + i * DIGITS_INPUT_X_COUNT, logits, workspace);
        if (st != QMC_OK) return fprintf(stderr, "digits_run returned %d\n", (int)st), 1;
        int best = 0;
        for (int j = 1; j < DIGITS_OUTPUT_LOGITS_COUNT; j++)
            if (logits[j] > logits[best]) best = j;
        right += best == y[i];
    }
    double accuracy = (double)right / (double)ny;
    printf("accuracy %.4f (%zu/%zu) on %s\n", accuracy, right, ny, digits_model.target_triple);
    free(x);
    free(y);
    return accuracy >= atof(argv[3]) ? 0 : 1;
}
