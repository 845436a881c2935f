/* qtest.h: helpers shared by the quantization tests (tests/quant).
 *
 * Reads .npy and JSON files from tests/data, lists the ONNX reference cases,
 * generates normal random tensors from a fixed seed, and runs `qmc` as a
 * child process with its output captured. Everything lives in an arena. */
#ifndef QMC_QTEST_H
#define QMC_QTEST_H

#include <stdbool.h>
#include <stdint.h>

#include "frontend.h"
#include "quant.h"

typedef struct qt_npy {
    rt_npy_header h;
    void *data; /* an aligned copy of the elements */
} qt_npy;

/* $QMC_DATA (the repository's tests/data) joined with rel. */
const char *qt_data(sup_arena *arena, const char *rel);
/* Loads an .npy file; fails the test with a message if it cannot. */
qt_npy qt_load(sup_arena *arena, const char *path);
bool qt_exists(const char *path);
/* The names of the subdirectories of dir whose names start with prefix,
 * sorted; *count is set. */
char **qt_list_dirs(sup_arena *arena, const char *dir, const char *prefix, int *count);
/* Reads and parses a JSON file; fails the test if it cannot. */
const fe_json *qt_read_json(sup_arena *arena, const char *path);
/* n standard normal floats from seed (splitmix64 + Box-Muller). */
float *qt_normal(sup_arena *arena, int64_t n, uint64_t seed);
/* A fresh temporary directory (removed by qt_rmdir). */
char *qt_tmpdir(sup_arena *arena);
void qt_rmdir(const char *dir);

/* Runs $QMC with argv (argv[0] is the first argument after `qmc`, the list
 * ends with NULL), stdout and stderr captured into *out and *err (may be
 * NULL). Returns the exit status, or -1 if qmc could not run. */
int qt_run_qmc(sup_arena *arena, const char *const *argv, char **out, char **err);

#endif
