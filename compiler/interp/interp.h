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

/* y[m, n] = sum_k x[m, k] * w[n, k] + b[n] (b may be NULL), w in PyTorch's
 * [N, K] layout, each sum in order k = 0, 1, ...; xt is scratch of
 * interp_ref_linear_scratch(m, k) floats. */
void interp_ref_linear(const float *x, const float *w, const float *b, float *y, int64_t m,
                       int64_t k, int64_t n, float *xt);
size_t interp_ref_linear_scratch(int64_t m, int64_t k);
/* y[m, n] = sum_k a[m, k] * b[k, n] for one matrix pair. */
void interp_ref_matmul(const float *a, const float *b, float *y, int64_t m, int64_t k, int64_t n);
void interp_ref_transpose_2d(const float *x, float *y, int64_t rows, int64_t cols);
void interp_ref_softmax(const float *x, float *y, int64_t outer, int64_t dim, int64_t inner);
void interp_ref_log_softmax(const float *x, float *y, int64_t outer, int64_t dim, int64_t inner);
void interp_ref_layernorm(const float *x, const float *w, const float *b, float *y, int64_t rows,
                          int64_t d, float eps);
void interp_ref_rmsnorm(const float *x, const float *w, float *y, int64_t rows, int64_t d,
                        float eps);
float interp_ref_gelu(float x);
float interp_ref_silu(float x);
/* Attention with kv_heads key/value heads shared by heads query heads:
 * q[t, d], k[s, d * kv_heads / heads], v[s, dv * kv_heads / heads] ->
 * y[t, dv]; scratch: t * s + s * d / heads floats. */
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
/* Multi-head attention of one sequence: q[t, d], k[s, d], v[s, dv];
 * scratch: t * s + s * d / heads floats. */
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
/* ---- ref_math.c: elementwise functions, reductions, indexing ------------ */

float interp_ref_sigmoid(float x);
/* The function attr->fn of IR_OP_UNARY (ir_unary) with its parameters. */
float interp_ref_unary(const ir_attrs *attr, float x);
/* The function of IR_OP_BINARY (comparisons give 1.0 or 0.0). */
float interp_ref_binary(ir_binary fn, float a, float b);
/* Node n (binary, where or expand) over its operands in[] with values
 * vals[], broadcast to n's shape, into out (expand copies 4-byte elements
 * of any dtype). */
void interp_ref_broadcast(const ir_node *n, const ir_node *const *in, const void *const *vals,
                          void *out);
/* Reduce node n of x's values xv into y. */
void interp_ref_reduce(const ir_node *x, const float *xv, const ir_node *n, float *y);
/* count elements of x (from) as to (i32 to f32 rounds; f32 to i32
 * truncates toward zero, saturating, NaN to 0). */
void interp_ref_cast(qmc_dtype from, qmc_dtype to, const void *x, void *y, int64_t count);
/* gather along axis of x (4-byte elements) by idx's values iv into y;
 * returns the position of the first index outside -dim .. dim - 1, or -1. */
int64_t interp_ref_gather(const ir_node *x, const void *xv, const ir_node *idx, const int32_t *iv,
                          int axis, void *y);

/* ---- interp.c: the reference interpreter -------------------------------- */

typedef struct interp interp;

/* Prepares to evaluate g: buffers for every node, weights read in place
 * (f32) or widened (others: small ones once, large ones per use). */
interp *interp_new(sup_arena *arena, const ir_graph *g);
/* The same for up to cap samples at once: slot b of an input, an output or
 * any computed node is at b times its element count from the start of its
 * buffer (interp_input, interp_output and interp_node_value give slot 0,
 * the slots follow it). Each slot computes exactly what a batch of one
 * would. */
interp *interp_new_batch(sup_arena *arena, const ir_graph *g, int cap);
/* How many slots the next runs evaluate (1..cap; cap at first). */
void interp_set_batch(interp *it, int batch);
int interp_batch(const interp *it);
/* The bytes of one slot: every computed node's buffer. */
size_t interp_slot_bytes(const ir_graph *g);
/* Replaces the f32 values a weight node evaluates to (simulated
 * quantization); data must outlive the interpreter. */
void interp_set_weight(interp *it, int32_t node, const float *data);
/* ... or computes them each time a node reads them: fn writes the weight's
 * values into out (its element count of floats). */
typedef void interp_weight_fn(void *ctx, int32_t node, float *out);
void interp_set_weight_fn(interp *it, int32_t node, interp_weight_fn *fn, void *ctx);
/* ... or back to the weights file's values. */
void interp_reset_weight(interp *it, int32_t node);
/* On: after the last node reading a weight of the weights file has run,
 * its mapped pages are dropped (interp_weight_release), so a run over a
 * model larger than memory keeps about one weight resident. */
void interp_release_weights(interp *it, bool on);
/* Drops the resident pages of weight node's data in the mapped weights
 * file (madvise MADV_DONTNEED; nothing for a copy). The data stays valid:
 * the next read faults the pages back in from the page cache. */
void interp_weight_release(const ir_graph *g, int32_t node);
/* The buffer of input port i (f32 or i32 as declared) to fill before a
 * run; _slot: of one slot. */
void *interp_input(interp *it, int port);
void *interp_input_slot(interp *it, int port, int slot);
/* A model with a sequence: the position of the next run's first token
 * (0 at first). The caches keep what earlier runs stored before it. */
void interp_set_position(interp *it, int64_t pos);
/* Evaluates the graph once. Reports a user error (e.g. an index out of
 * range) and returns false on failure; interp_failed_slot then says which
 * slot's values caused it (-1 before any failure). */
bool interp_run(interp *it);
int interp_failed_slot(const interp *it);
/* The f32 values of output port i after a run; _slot: of one slot. */
const float *interp_output(interp *it, int port);
const float *interp_output_slot(interp *it, int port, int slot);
/* Makes every quantized weight matrix evaluate to its dequantized values,
 * so the interpreter computes what the generated code computes. */
void interp_use_quantized_weights(interp *it, const ir_graph *g);
/* The f32 values of any node after a run (for calibration and tests): for
 * a computed node every slot in turn; for a weight the values it
 * evaluates to (a weight converted per use is converted into a copy kept
 * from then on). */
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
 * inputs as the declared dtypes; int64 values outside int32 are an error.
 * _slot: into slot `slot` of a batched interpreter. */
bool interp_files_load(const ir_graph *g, interp *it, const interp_file *ins, int n, int64_t s);
bool interp_files_load_slot(const ir_graph *g, interp *it, const interp_file *ins, int n, int64_t s,
                            int slot);
void interp_file_close(interp_file *in);
/* Runs the interpreter over `runs` batch items (1 if unbatched) and stacks
 * each output port o into stacked[o] (runs * its count floats). */
bool interp_run_batches(const ir_graph *g, interp *it, const interp_file *ins, int n, int64_t runs,
                        float *const *stacked);
/* Splits NAME=FILE for an output and finds the port; reports errors. */
bool interp_output_spec(const ir_graph *g, const char *spec, int *port, const char **path);

#endif
