/* weights.c: the weights of a compiled model, laid out first and then
 * streamed one weight at a time.
 *
 * Needs: a graph whose weight matrices have their precision and quantized
 * layout (node->qw: shape and groups; the codes need not exist yet).
 * Guarantees: every weight the code reads is one or more blobs (a matrix
 * read by linear layers: its packed codes, scales and zero points,
 * emit_linear.c; a conv's weight: its values or codes packed for its
 * kernel, scales and offsets, emit_conv.c; a weight read as values: its
 * f32 values), laid out in node order at 64-byte aligned offsets, each
 * padded with zeros to 64 bytes;
 * cg_weights_open decides the layout from the graph alone, so code can be
 * generated against it before, after or without the bytes. cg_weights_put
 * then packs one node's blobs from its quantized form (passes/ quantize it
 * right before) and its tensor (converted to f32 a chunk at a time), writes
 * them and forgets them, so memory holds one weight, not the model:
 *
 *   CG_WEIGHTS_OBJECT  into the object file being made (object.c adds the
 *                      code and headers around them), from byte 64
 *   CG_WEIGHTS_FILE    into --weights-file's temporary file, renamed into
 *                      place last; its checksum is computed on the way
 *   CG_WEIGHTS_MEMORY  kept (--emit llvm/bc/asm make them constants)
 *
 * The file is written through an aligned staging buffer with O_DIRECT where
 * the file system takes it: big outputs then go to the disk without filling
 * the page cache (in the 2-core VM, 4 GB written through the page cache take
 * 20 s, directly 4 s); the last partial block, and whatever follows
 * (object.c), go through the page cache.
 *
 * On a terminal a progress bar shows the tensors written, the rate at which
 * their bytes are read and the time left. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen.h"

enum {
    CHUNK_ELEMENTS = 1 << 20, /* f32 values converted and written at a time */
    STAGE_BYTES = 8 << 20,    /* the staging buffer, a multiple of ... */
    DIRECT_ALIGN = 4096,      /* ... O_DIRECT's alignment of memory, offsets and sizes */
};

_Static_assert(STAGE_BYTES % RT_CHECKSUM_BLOCK == 0, "the checksum takes whole blocks");

static bool flush(cg_weights *w, bool last);

static int choose_lanes(const cg_target *t)
{
    if (t->arch == CG_ARCH_AARCH64) return 8;
    if (cg_target_has(t, "avx512f")) return 16;
    if (cg_target_has(t, "avx")) return 8;
    return 4;
}

static int add_blob(cg_weights *w, int *cap, int32_t node, const char *name, size_t bytes)
{
    if (w->n_blobs == *cap) {
        int grown = *cap ? *cap * 2 : 64;
        w->blobs =
            sup_arena_grow(w->arena, w->blobs, (size_t)*cap, (size_t)grown, sizeof *w->blobs);
        *cap = grown;
    }
    w->blobs[w->n_blobs] = (cg_blob){name, bytes, (int64_t)w->size, node, NULL};
    w->size += (bytes + 63) / 64 * 64;
    if (w->first[node] < 0) w->first[node] = w->n_blobs;
    return w->n_blobs++;
}

/* Which weights are read as f32 values: by any op but as a linear layer's
 * weight matrix or a conv's weight (packed instead), and as outputs; and
 * per weight the conv that reads it (-1: none). */
static bool *read_as_values(sup_arena *arena, const ir_graph *g, int32_t *conv)
{
    bool *raw = sup_arena_alloc(arena, (size_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++) conv[i] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_inputs; j++) {
            int32_t in = n->inputs[j];
            if (g->nodes[in].op != IR_OP_WEIGHT) continue;
            if (n->op == IR_OP_LINEAR && j == 1) continue; /* packed instead */
            if ((n->op == IR_OP_CONV || n->op == IR_OP_CONV_TRANSPOSE) && j == 1) {
                /* the verifier lets no other node read a conv's weight */
                conv[in] = i;
                continue;
            }
            raw[in] = true;
        }
    }
    for (int o = 0; o < g->n_outputs; o++)
        if (g->nodes[g->outputs[o].node].op == IR_OP_WEIGHT) raw[g->outputs[o].node] = true;
    return raw;
}

static void lay_out(cg_weights *w)
{
    const ir_graph *g = w->g;
    int32_t *conv = sup_arena_alloc(w->arena, sizeof *conv * (size_t)(g->n_nodes + 1));
    bool *raw = read_as_values(w->arena, g, conv);
    int cap = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        w->node_blob[i] = w->first[i] = -1;
        w->packed[i].codes = w->packed[i].scales = w->packed[i].zeros = w->packed[i].shift = -1;
        w->conv[i].codes = w->conv[i].scales = w->conv[i].comp = -1;
        if (n->op != IR_OP_WEIGHT) continue;
        if (conv[i] >= 0) {
            cg_conv_packed *p = &w->conv[i];
            cg_conv_layout(g, w->target, w->lanes, conv[i], p);
            p->codes = add_blob(w, &cap, i, n->name, p->code_bytes);
            if (p->scale_bytes)
                p->scales = add_blob(w, &cap, i, sup_arena_printf(w->arena, "%s.scale", n->name),
                                     p->scale_bytes);
            if (p->comp_bytes)
                p->comp = add_blob(w, &cap, i, sup_arena_printf(w->arena, "%s.comp", n->name),
                                   p->comp_bytes);
        } else if (n->is_matrix) {
            cg_packed *p = &w->packed[i];
            cg_pack_layout(w->target, w->lanes, n, p);
            p->codes = add_blob(w, &cap, i, n->name, p->code_bytes);
            if (p->scale_bytes)
                p->scales = add_blob(w, &cap, i, sup_arena_printf(w->arena, "%s.scale", n->name),
                                     p->scale_bytes);
            if (p->zero_bytes)
                p->zeros = add_blob(w, &cap, i, sup_arena_printf(w->arena, "%s.zero", n->name),
                                    p->zero_bytes);
            if (p->shift_bytes)
                p->shift = add_blob(w, &cap, i, sup_arena_printf(w->arena, "%s.shift", n->name),
                                    p->shift_bytes);
        }
        if (raw[i]) {
            /* a matrix that is also read as plain data keeps both forms */
            const char *name =
                n->is_matrix ? sup_arena_printf(w->arena, "%s.f32", n->name) : n->name;
            w->node_blob[i] = add_blob(w, &cap, i, name, (size_t)n->tensor->count * 4);
        }
        if (w->first[i] >= 0) {
            w->n_nodes++;
            w->in_total += (double)n->tensor->size;
        }
    }
}

/* A temporary file beside path ("PATH.tmp.XXXXXX"), written directly if
 * the file system allows, through the staging buffer; OBJECT's bytes before
 * the data (the ELF header, written last) start out as zeros in it. */
static bool create_tmp(cg_weights *w, const char *path)
{
    w->tmp = sup_arena_printf(w->arena, "%s.tmp.XXXXXX", path);
    w->fd = mkstemp(w->tmp);
    if (w->fd < 0) {
        sup_error_plain("cannot create a temporary file beside '%s': %s", path, strerror(errno));
        w->tmp = NULL;
        return false;
    }
    w->stage = aligned_alloc(DIRECT_ALIGN, STAGE_BYTES);
    if (!w->stage) {
        sup_error_plain("out of memory for the weights' staging buffer");
        cg_weights_discard(w);
        return false;
    }
    int flags = fcntl(w->fd, F_GETFL);
    w->direct = flags >= 0 && fcntl(w->fd, F_SETFL, flags | O_DIRECT) == 0;
    w->fill = w->kind == CG_WEIGHTS_OBJECT ? CG_OBJECT_DATA_START : 0;
    memset(w->stage, 0, w->fill);
    return true;
}

bool cg_weights_open(sup_arena *arena, const ir_graph *g, const cg_target *t, cg_weights_kind kind,
                     const char *path, cg_weights *w)
{
    memset(w, 0, sizeof *w);
    w->kind = kind;
    w->arena = arena;
    w->g = g;
    w->target = t;
    w->lanes = choose_lanes(t);
    w->fd = -1;
    w->node_blob = sup_arena_alloc(arena, sizeof *w->node_blob * (size_t)(g->n_nodes + 1));
    w->first = sup_arena_alloc(arena, sizeof *w->first * (size_t)(g->n_nodes + 1));
    w->packed = sup_arena_alloc(arena, sizeof *w->packed * (size_t)(g->n_nodes + 1));
    w->conv = sup_arena_alloc(arena, sizeof *w->conv * (size_t)(g->n_nodes + 1));
    rt_checksum_begin(&w->sum);
    w->symbol = sup_arena_printf(arena, "%s.weights", cg_symbol_prefix(arena, g));
    w->path = path;
    lay_out(w);
    if (kind == CG_WEIGHTS_MEMORY) return true;
    if (!create_tmp(w, path)) return false;
    sup_progress_begin(&w->progress, "weights");
    if (!w->n_nodes && !flush(w, true)) {
        cg_weights_discard(w);
        return false;
    }
    return true;
}

bool cg_weights_wants(const cg_weights *w, int32_t node) { return w->first[node] >= 0; }

bool cg_weights_wants_dequant(const cg_weights *w, int32_t node)
{
    return w->conv[node].codes >= 0 && cg_conv_needs_dequant(&w->conv[node], w->g->nodes[node].qw);
}

static bool write_at(cg_weights *w, const uint8_t *p, size_t size, uint64_t at)
{
    while (size) {
        ssize_t n = pwrite(w->fd, p, size, (off_t)at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EINVAL && w->direct) { /* O_DIRECT refused after all */
            int flags = fcntl(w->fd, F_GETFL);
            if (flags >= 0 && fcntl(w->fd, F_SETFL, flags & ~O_DIRECT) == 0) {
                w->direct = false;
                continue;
            }
        }
        if (n <= 0) {
            sup_error_plain("%s: cannot write: %s", w->kind == CG_WEIGHTS_FILE ? w->path : w->tmp,
                            strerror(n < 0 ? errno : EIO));
            return false;
        }
        p += n, size -= (size_t)n, at += (uint64_t)n;
    }
    return true;
}

/* Writes the staging buffer out: whole, or (last) its aligned part directly
 * and the rest through the page cache. */
static bool flush(cg_weights *w, bool last)
{
    size_t aligned = last ? w->fill / DIRECT_ALIGN * DIRECT_ALIGN : w->fill;
    if (w->kind == CG_WEIGHTS_FILE) { /* the file's bytes in order, 8 MB at a time */
        rt_checksum_update(&w->sum, w->stage, w->fill);
        if (last) w->checksum = rt_checksum_end(&w->sum);
    }
    if (!write_at(w, w->stage, aligned, w->flushed)) return false;
    if (last && w->fill > aligned) {
        int flags = fcntl(w->fd, F_GETFL);
        if (w->direct && flags >= 0) fcntl(w->fd, F_SETFL, flags & ~O_DIRECT);
        w->direct = false;
        if (!write_at(w, w->stage + aligned, w->fill - aligned, w->flushed + aligned)) return false;
    }
    w->flushed += w->fill;
    w->fill = 0;
    if (last) {
        int flags = fcntl(w->fd, F_GETFL); /* what follows goes through the page cache */
        if (flags >= 0) fcntl(w->fd, F_SETFL, flags & ~O_DIRECT);
        free(w->stage);
        w->stage = NULL;
    }
    return true;
}

static bool write_bytes(cg_weights *w, const void *data, size_t size)
{
    for (const uint8_t *p = data; size;) {
        size_t n = STAGE_BYTES - w->fill < size ? STAGE_BYTES - w->fill : size;
        memcpy(w->stage + w->fill, p, n);
        w->fill += n, p += n, size -= n;
        if (w->fill == STAGE_BYTES && !flush(w, false)) return false;
    }
    return true;
}

/* Blob b's bytes (all of them, or the first `size` when more follow), the
 * padding after them once done. */
static bool emit(cg_weights *w, cg_blob *b, const void *data, size_t size, bool done)
{
    static const uint8_t zeros[64];
    if (w->kind == CG_WEIGHTS_MEMORY) {
        QMC_ASSERT(done && size == b->bytes);
        void *copy = sup_arena_alloc(w->arena, size ? size : 1);
        memcpy(copy, data, size);
        b->data = copy;
        return true;
    }
    if (!write_bytes(w, data, size)) return false;
    w->at += size;
    if (!done) return true;
    QMC_ASSERT(w->at == (uint64_t)b->offset + b->bytes);
    size_t pad = (64 - b->bytes % 64) % 64;
    w->at += pad;
    return write_bytes(w, zeros, pad);
}

/* A weight's f32 values, a chunk at a time (f32 data goes straight from
 * the mapping), each chunk's input pages released once written. */
static bool put_values(cg_weights *w, sup_arena *tmp, cg_blob *b, const fe_tensor *t)
{
    int64_t count = t->count;
    if (w->kind == CG_WEIGHTS_MEMORY) {
        float *all = sup_arena_alloc(tmp, sizeof(float) * (size_t)(count + 1));
        fe_tensor_to_f32(t, all);
        return emit(w, b, all, b->bytes, true);
    }
    bool direct = t->dtype == QMC_DTYPE_F32;
    float *buf = direct ? NULL
                        : sup_arena_alloc(tmp, sizeof(float) * (size_t)(count < CHUNK_ELEMENTS
                                                                            ? count + 1
                                                                            : CHUNK_ELEMENTS));
    int64_t at = 0;
    do {
        int64_t end = count - at > CHUNK_ELEMENTS ? at + CHUNK_ELEMENTS : count;
        const void *data = (const uint8_t *)t->data + 4 * at;
        if (!direct) {
            fe_tensor_to_f32_range(t, at, end, buf);
            data = buf;
        }
        if (!emit(w, b, data, (size_t)(end - at) * 4, end == count)) return false;
        fe_tensor_release_range(t, at, end);
        at = end;
    } while (at < count);
    return true;
}

/* A matrix's packed blobs: codes, scales, zero points. */
static bool put_packed(cg_weights *w, sup_arena *tmp, int32_t node, const ir_qweight *q)
{
    const ir_node *n = &w->g->nodes[node];
    const cg_packed *p = &w->packed[node];
    QMC_ASSERT((q != NULL) == (n->qw != NULL));
    float *w32 = NULL;
    if (!q) {
        w32 = sup_arena_alloc(tmp, sizeof(float) * (size_t)(p->n * p->k));
        fe_tensor_to_f32(n->tensor, w32);
    }
    uint8_t *codes = sup_arena_alloc(tmp, p->code_bytes);
    void *scales = p->scale_bytes ? sup_arena_alloc(tmp, p->scale_bytes) : NULL;
    uint8_t *zeros = p->zero_bytes ? sup_arena_alloc(tmp, p->zero_bytes) : NULL;
    float *shift = p->shift_bytes ? sup_arena_alloc(tmp, p->shift_bytes) : NULL;
    cg_pack_data(p, q, w32, codes, scales, zeros, shift);
    return emit(w, &w->blobs[p->codes], codes, p->code_bytes, true) &&
           (!scales || emit(w, &w->blobs[p->scales], scales, p->scale_bytes, true)) &&
           (!zeros || emit(w, &w->blobs[p->zeros], zeros, p->zero_bytes, true)) &&
           (!shift || emit(w, &w->blobs[p->shift], shift, p->shift_bytes, true));
}

/* A conv's weight: its codes (and scales, offsets) or values packed for
 * its kernel. */
static bool put_conv(cg_weights *w, sup_arena *tmp, int32_t node, const ir_qweight *q)
{
    const ir_node *n = &w->g->nodes[node];
    const cg_conv_packed *p = &w->conv[node];
    QMC_ASSERT((q != NULL) == (n->qw != NULL));
    const float *v = NULL;
    if (cg_conv_needs_dequant(p, q)) {
        QMC_ASSERT(q->dequant);
        v = q->dequant;
    } else if (!q) {
        float *f = sup_arena_alloc(tmp, sizeof(float) * (size_t)(n->tensor->count + 1));
        fe_tensor_to_f32(n->tensor, f);
        v = f;
    }
    uint8_t *codes = sup_arena_alloc(tmp, p->code_bytes + 1);
    float *scales = p->scale_bytes ? sup_arena_alloc(tmp, p->scale_bytes) : NULL;
    int32_t *comp = p->comp_bytes ? sup_arena_alloc(tmp, p->comp_bytes) : NULL;
    cg_conv_pack_data(p, q, v, codes, scales, comp);
    return emit(w, &w->blobs[p->codes], codes, p->code_bytes, true) &&
           (!scales || emit(w, &w->blobs[p->scales], scales, p->scale_bytes, true)) &&
           (!comp || emit(w, &w->blobs[p->comp], comp, p->comp_bytes, true));
}

bool cg_weights_put(cg_weights *w, sup_arena *tmp, int32_t node, const ir_qweight *q)
{
    QMC_ASSERT(cg_weights_wants(w, node));
    /* in order: the next blob to write is this node's first */
    QMC_ASSERT(w->kind == CG_WEIGHTS_MEMORY || (uint64_t)w->blobs[w->first[node]].offset == w->at);
    const ir_node *n = &w->g->nodes[node];
    if (w->conv[node].codes >= 0) {
        if (!put_conv(w, tmp, node, q)) return false;
    } else if (n->is_matrix && !put_packed(w, tmp, node, q)) {
        return false;
    }
    if (w->node_blob[node] >= 0 && !put_values(w, tmp, &w->blobs[w->node_blob[node]], n->tensor))
        return false;
    w->n_put++;
    w->in_bytes += (double)n->tensor->size;
    sup_progress_update_bytes(&w->progress, w->n_put, w->n_nodes, w->in_bytes, w->in_total);
    if (w->n_put < w->n_nodes) return true;
    sup_progress_end(&w->progress);
    return w->kind == CG_WEIGHTS_MEMORY || flush(w, true);
}

bool cg_weights_rename(cg_weights *w, const char *path)
{
    QMC_ASSERT(w->tmp && w->n_put == w->n_nodes && w->at == w->size);
    /* mkstemp creates 0600; give the file the usual permissions */
    mode_t mask = umask(0);
    umask(mask);
    int e = 0;
    if (fchmod(w->fd, 0666 & ~mask) != 0) e = errno;
    if (close(w->fd) != 0 && !e) e = errno;
    w->fd = -1;
    if (!e && rename(w->tmp, path) != 0) e = errno;
    if (e) {
        sup_error_plain("%s: cannot write: %s", path, strerror(e));
        cg_weights_discard(w);
        return false;
    }
    w->tmp = NULL;
    return true;
}

void cg_weights_discard(cg_weights *w)
{
    free(w->stage);
    w->stage = NULL;
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (w->tmp) unlink(w->tmp);
    w->tmp = NULL;
}
