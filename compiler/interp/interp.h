/* interp.h: the reference interpreter's header, one section per source
 * file of compiler/interp.
 *
 * The interpreter evaluates a graph in fp32 (with quantized weights as
 * their dequantized values): the oracle generated code is tested against,
 * and the engine of `qmc run`, `qmc eval`, calibration and sensitivity
 * measurement. Prefix interp_. */
#ifndef QMC_INTERP_H
#define QMC_INTERP_H

#include "ir.h"

/* ---- ref_ops.c: fp32 reference kernels of the interpreter --------------- */

/* y[m, n] = sum_k x[m, k] * wt[k, n] + b[n]; wt is the weight transposed to
 * [K, N] (b may be NULL). */
void interp_ref_linear(const float *x, const float *wt, const float *b, float *y, int64_t m,
                       int64_t k, int64_t n);
/* y[m, n] = sum_k a[m, k] * b[k, n] for one matrix pair. */
void interp_ref_matmul(const float *a, const float *b, float *y, int64_t m, int64_t k, int64_t n);
void interp_ref_transpose_2d(const float *x, float *y, int64_t rows, int64_t cols);
void interp_ref_softmax(const float *x, float *y, int64_t outer, int64_t dim, int64_t inner);
void interp_ref_layernorm(const float *x, const float *w, const float *b, float *y, int64_t rows,
                          int64_t d, float eps);
void interp_ref_rmsnorm(const float *x, const float *w, float *y, int64_t rows, int64_t d,
                        float eps);
float interp_ref_gelu(float x);
float interp_ref_silu(float x);
/* Attention with kv_heads key/value heads shared by heads query heads:
 * q[t, d], k[s, d * kv_heads / heads], v[s, dv * kv_heads / heads] ->
 * y[t, dv]. */
typedef struct interp_attn {
    int64_t t, s, d, dv;
    int heads, kv_heads;
    bool causal;
    float scale;
} interp_attn;
void interp_ref_attention_grouped(const float *q, const float *k, const float *v, float *y,
                                  const interp_attn *a, float *scratch);
/* Rotary position embedding of x[rows, d] (heads of d / heads) at the
 * positions first .. first + rows - 1. */
void interp_ref_rope(const float *x, float *y, int64_t rows, int64_t d, int heads, float theta,
                     bool interleaved, int64_t first);
/* Multi-head attention of one sequence: q[t, d], k[s, d], v[s, dv]. */
void interp_ref_attention(const float *q, const float *k, const float *v, float *y, int64_t t,
                          int64_t s, int64_t d, int64_t dv, int heads, bool causal, float scale,
                          float *scratch);

/* ---- ref_cnn.c: the convolutional ops in fp32, and their evaluation ------- */

/* The fused activation of a conv (attr.win.act) applied to v. */
float interp_ref_act(const ir_window *w, float v);
float interp_ref_hardsigmoid(float x, float alpha, float beta);
float interp_ref_hardswish(float x);
/* Floats of scratch interp_ref_conv needs (m output channels). */
size_t interp_ref_conv_scratch(const ir_image *xi, const ir_image *yi, const ir_window *w,
                               int64_t m);
/* y = conv(x, wt [M, C/groups·kh·kw], b) with w's window and activation;
 * x and y through their images' strides. */
void interp_ref_conv(const float *x, const ir_image *xi, const float *wt, const float *b, float *y,
                     const ir_image *yi, const ir_window *w, float *scratch);
/* wt is [C, M/groups, kh, kw]. */
void interp_ref_conv_transpose(const float *x, const ir_image *xi, const float *wt, const float *b,
                               float *y, const ir_image *yi, const ir_window *w);
/* Max (NaN wins) or average pooling over w's windows. */
void interp_ref_pool(bool max, const float *x, const ir_image *xi, float *y, const ir_image *yi,
                     const ir_window *w);
void interp_ref_global_avgpool(const float *x, const ir_image *xi, float *y, const ir_image *yi);
/* A batch normalisation as y = x · mul + add per channel. */
void interp_ref_batchnorm_coeffs(const float *scale, const float *bias, const float *mean,
                                 const float *var, float eps, int64_t c, float *mul, float *add);
size_t interp_ref_resize_scratch(const int64_t *yshape, int rank);
void interp_ref_resize(const float *x, const int64_t *xshape, float *y, const int64_t *yshape,
                       int rank, const ir_cnn_attrs *a, float *scratch);
void interp_ref_pad(const float *x, const int64_t *xshape, float *y, const int64_t *yshape,
                    int rank, const ir_cnn_attrs *a);
/* Floats of scratch interp_eval_cnn needs for node n. */
size_t interp_cnn_scratch(const ir_graph *g, const ir_node *n);
/* Evaluates convolutional node n into y; buf holds every node's values.
 * act8: a conv whose input is quantized per image (act_scale: calibrated,
 * or 0 for each image's own). */
void interp_eval_cnn(const ir_graph *g, const ir_node *n, const void *const *buf, float *y,
                     float *scratch, bool act8, float act_scale);

/* ---- interp.c: the reference interpreter -------------------------------- */

typedef struct interp interp;

/* Prepares to evaluate g: weight views (f32 data is used in place), buffers
 * for every node. */
interp *interp_new(sup_arena *arena, const ir_graph *g);
/* Replaces the f32 values a weight node evaluates to (simulated
 * quantization); data must outlive the interpreter. */
void interp_set_weight(interp *it, int32_t node, const float *data);
/* The buffer of input port i (f32 or i32 as declared) to fill before a run. */
void *interp_input(interp *it, int port);
/* A model with a sequence: the position of the next run's first token
 * (0 at first). The caches keep what earlier runs stored before it. */
void interp_set_position(interp *it, int64_t pos);
/* Evaluates the graph once. Reports a user error (e.g. an index out of
 * range) and returns false on failure. */
bool interp_run(interp *it);
/* The f32 values of output port i after a run. */
const float *interp_output(interp *it, int port);
/* Makes every quantized weight matrix evaluate to its dequantized values,
 * so the interpreter computes what the generated code computes. */
void interp_use_quantized_weights(interp *it, const ir_graph *g);
/* The f32 values of any node after a run (for calibration and tests). */
const float *interp_node_value(interp *it, int32_t node);
/* Evaluates only nodes first .. n_nodes - 1: the earlier nodes must still
 * hold this input's values from a previous run. After changing one weight
 * (interp_set_weight), re-running from its first consumer gives exactly
 * what a full run would, at the cost of the downstream nodes only. */
bool interp_run_from(interp *it, int32_t first);
/* Simulated int8 activations for the linear layers whose weight is node w
 * (as q_precision's act8/act_scale; the graph's choice until changed). */
void interp_set_act8(interp *it, int32_t w, bool act8, float act_scale);

/* ---- model_io.c: .npy files for model inputs and outputs ---------------- */

typedef struct interp_file {
    int port; /* index into g->inputs */
    const char *path;
    rt_mapped_file file;
    rt_npy_header npy;
    int64_t batch; /* size of the extra leading dimension, or -1 */
} interp_file;

/* Opens the n NAME=FILE specs into ins: maps each file and checks it
 * against input NAME, dtype (f32 inputs take float32; i32 inputs take int32
 * or int64) and shape (the declared one, or one extra leading batch
 * dimension); checks that every input is given once and that batched
 * inputs agree. *batch gets the batch count (-1 if none is batched). On
 * failure reports why (at the input's declaration) and leaves none open;
 * on success close each with interp_file_close. */
bool interp_files_open(const ir_graph *g, const char *const *specs, int n, interp_file *ins,
                       int64_t *batch);
/* Loads batch item s (item 0 of unbatched inputs) into the interpreter's
 * inputs as the declared dtypes; int64 values outside int32 are an error. */
bool interp_files_load(const ir_graph *g, interp *it, const interp_file *ins, int n, int64_t s);
void interp_file_close(interp_file *in);
/* Runs the interpreter over `runs` batch items (1 if unbatched) and stacks
 * each output port o into stacked[o] (runs * its count floats). */
bool interp_run_batches(const ir_graph *g, interp *it, const interp_file *ins, int n, int64_t runs,
                        float *const *stacked);
/* Splits NAME=FILE for an output and finds the port; reports errors. */
bool interp_output_spec(const ir_graph *g, const char *spec, int *port, const char **path);

#endif
