/* rt.h: the runtime's internal header, one section per source file.
 *
 * The runtime is what compiled models link against. It is small and
 * dependency-free (libc and pthreads only). The compiler reuses some of it
 * (the .npy reader and writer, atomic file output) so that both read files
 * the same way. */
#ifndef QMC_RT_H
#define QMC_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qmc_runtime.h"

#define RT_MAX_RANK QMC_MAX_RANK

/* ---- status.c ---------------------------------------------------------- */

/* A dtype from its language name ("f32", "i32"); QMC_DTYPE_INVALID if none. */
qmc_dtype rt_dtype_from_name(const char *name);
/* "f32[128, 256]" into buf (RT_SHAPE_STR_MAX always suffices); returns buf. */
char *rt_shape_str(qmc_dtype dtype, int rank, const int64_t *shape, char *buf, size_t size);
#define RT_SHAPE_STR_MAX 160

/* ---- npy.c: NumPy .npy files ------------------------------------------- */

typedef struct rt_npy_header {
    qmc_dtype dtype;
    int rank;
    int64_t shape[RT_MAX_RANK];
    int64_t count;      /* number of elements, the product of shape */
    size_t data_offset; /* bytes from the start of the file to the data */
    size_t data_bytes;  /* count * element size */
} rt_npy_header;

/* Parses the header of an .npy file held in buf[0..len). On failure returns
 * QMC_ERR_FORMAT and writes a one-line reason (no file name) into err.
 * Accepts format versions 1-3, little-endian or byte-order-free dtypes,
 * C order; checks that the data the shape promises is present. */
qmc_status rt_npy_parse(const void *buf, size_t len, rt_npy_header *out, char *err,
                        size_t err_size);

/* Encodes an .npy (version 1) header for the given array into out (at most
 * out_size bytes; RT_NPY_HEADER_MAX always suffices). The length is a
 * multiple of 64 so the data that follows is aligned. Returns the header
 * length, 0 on error. */
#define RT_NPY_HEADER_MAX 256
size_t rt_npy_header_encode(qmc_dtype dtype, int rank, const int64_t *shape, char *out,
                            size_t out_size);

/* Writes an .npy file atomically (temporary file in the same directory, then
 * rename): a failure never leaves a partial file at path. */
qmc_status rt_npy_write(const char *path, qmc_dtype dtype, int rank, const int64_t *shape,
                        const void *data);
/* The same, with the reason for an I/O failure written into err. The
 * dtype and shape are not checked first: QMC_ERR_INVALID_ARGUMENT (err
 * untouched) says they have no .npy form. */
qmc_status rt_npy_write_err(const char *path, qmc_dtype dtype, int rank, const int64_t *shape,
                            const void *data, char *err, size_t err_size);

/* ---- file.c: whole files ------------------------------------------------ */

typedef struct rt_mapped_file {
    const uint8_t *data;
    size_t size;
    void *map_base; /* what to munmap, or NULL when size == 0 */
} rt_mapped_file;

/* Maps a file read-only. On failure returns QMC_ERR_IO with strerror text in
 * err. An empty file maps to data == NULL, size == 0. */
qmc_status rt_file_map(const char *path, rt_mapped_file *out, char *err, size_t err_size);
void rt_file_unmap(rt_mapped_file *file);

/* Writes n pieces to path atomically: a temporary file beside it, renamed
 * over path once complete. On failure nothing is left behind. */
typedef struct rt_write_piece {
    const void *data;
    size_t size;
} rt_write_piece;
qmc_status rt_file_write_atomic(const char *path, const rt_write_piece *pieces, int n, char *err,
                                size_t err_size);

/* ---- threads.c: the worker pool ----------------------------------------- */

/* Most threads qmc_set_num_threads accepts (the caller included). */
#define RT_MAX_THREADS 256

/* How long a waiting thread of the pool spins (yielding) before it sleeps,
 * by default (qmc_set_thread_spin_us changes it). Waking a sleeping worker
 * can take longer than a kernel runs (in a VM an idle vCPU is
 * descheduled): a 4096x4096 int4 GEMV called every 0.5 or 2 ms took
 * 290-310 us on two threads with workers that slept after 0.2 ms, as on
 * one, and 150 us with 3 ms of spinning. Like OpenMP's (libgomp spins
 * ~10 ms), it trades CPU time after a call for latency. */
#define RT_SPIN_NS 2000000
#define RT_MAX_SPIN_US 1000000

/* Workers asleep on the futex right now (for tests). */
int rt_pool_sleepers(void);

/* Chunks per thread qmc_parallel_for splits a range into (when it is long
 * enough): a thread that starts late or runs slowly leaves its share to
 * the others. */
#define RT_CHUNKS_PER_THREAD 4

/* How many chunks qmc_parallel_for splits [0, n > 0) into for `threads`
 * threads: 1 for one thread, else min(n, threads * RT_CHUNKS_PER_THREAD). */
int64_t rt_chunk_count(int64_t n, int threads);

/* Where chunk i of n_chunks starts when [0, n) is split by qmc_parallel_for:
 * the first n % n_chunks chunks have one element more. */
int64_t rt_chunk_begin(int64_t n, int64_t n_chunks, int64_t i);

/* ---- cpu.c: CPU features -------------------------------------------------- */

/* Whether this machine has one LLVM feature name (a leading '+' is allowed),
 * by qmc_check_cpu's policy: harmless tuning names are present, names the
 * runtime cannot detect here are not. */
bool rt_cpu_has(const char *feature);

/* ---- weights.c: external weights files ----------------------------------- */

/* qmc_checksum over bytes that arrive in pieces: every piece but the last
 * a multiple of RT_CHECKSUM_BLOCK bytes. */
enum { RT_CHECKSUM_BLOCK = 64 };
typedef struct rt_checksum {
    uint64_t lane[8];
    uint64_t bytes;
} rt_checksum;
void rt_checksum_begin(rt_checksum *c);
void rt_checksum_update(rt_checksum *c, const void *data, size_t size);
uint64_t rt_checksum_end(const rt_checksum *c);

/* qmc_load_weights, with a one-line reason (naming the file) in err on
 * failure: QMC_ERR_IO (cannot open or map), QMC_ERR_CHECKSUM (size or
 * checksum differ), QMC_ERR_INVALID_ARGUMENT (the model has no external
 * weights, or no path). */
qmc_status rt_load_weights(const qmc_model_desc *model, const char *path, char *err,
                           size_t err_size);

/* ---- kvcache.c: the numbers of a quantized KV cache ---------------------- */

typedef enum rt_kv_format { RT_KV_F32, RT_KV_INT8, RT_KV_FP8E4M3 } rt_kv_format;
/* "f32", "int8", "fp8e4m3" */
const char *rt_kv_format_name(rt_kv_format format);
bool rt_kv_format_parse(const char *name, rt_kv_format *out);
/* One head's vector x[n] as codes (int8, or FP8 E4M3) and the scale it
 * returns: x ~ rt_kv_decode(code) * scale, with scale = max|x| / 127 (int8,
 * codes rounded to the nearest even, within +-127) or max|x| / 448 (FP8,
 * rounded to the nearest even); an all-zero vector has scale 0. */
float rt_kv_quantize(rt_kv_format format, const float *x, int64_t n, uint8_t *codes);
float rt_kv_decode(rt_kv_format format, uint8_t code);

/* ---- step.c: models with a sequence ------------------------------------ */

/* How many tokens the next step of a call takes when `left` tokens remain
 * at position pos: one of the model's step sizes (the next larger one when
 * padding it wastes less than half of it and it fits the context). */
int64_t rt_step_choose(const qmc_model_desc *model, int64_t left, int64_t pos);

/* ---- exe_setup.c: what the executables' drivers share (libqmc_main.a) --- */

/* "PROG: error: MESSAGE" on stderr; returns false. */
bool rt_exe_fail(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A whole number in [lo, hi], or -1. */
long rt_parse_count(const char *s, long lo, long hi);
/* The CPU has every feature the model needs, or a message says which lack. */
bool rt_exe_check_cpu(const char *prog, const qmc_model_desc *model);
/* Starts the worker threads: threads, else $QMC_NUM_THREADS, else one per
 * core this process may use; $QMC_THREAD_SPIN_US sets their spin. */
bool rt_exe_threads(const char *prog, int threads);
/* Maps the weights file of a --weights-file model (weights, else the file
 * named at compile time, else that name beside the executable). */
bool rt_exe_weights(const char *prog, const qmc_model_desc *model, const char *weights);

/* ---- generate.c: the driver of an executable with a sequence ------------ */

/* main() for a model with a sequence: generation, perplexity, full runs. */
int rt_generate_main(const char *prog, const qmc_model_desc *model, int argc, char **argv);

/* ---- suggest.c: "did you mean" ------------------------------------------- */

/* Optimal string alignment distance: Levenshtein where a swap of adjacent
 * characters is one edit ("rleu" is one edit from "relu"); strings longer
 * than 256 characters are not compared (the longer length). */
int rt_edit_distance(const char *a, const char *b);
/* The candidate closest to name if it is close enough to suggest, else NULL. */
const char *rt_closest(const char *name, const char *const *candidates, int n);

#endif
