/* gen_checkpoint.c: synthetic checkpoints of any size for bench/scale.sh.
 *
 *   gen_checkpoint model DIR --layout gpt|llama [--preset tiny|125m|1b|7b]
 *                  [--d-model D] [--layers L] [--heads H] [--kv-heads K] [--mlp F]
 *                  [--vocab V] [--context C] [--tied | --untied] [--seq T]
 *                  [--dtype f32|bf16|f16] [--shard-size SIZE] [--seed N] [--dry-run]
 *   gen_checkpoint tokens FILE.npy --samples N --seq T --vocab V [--seed N]
 *
 * `model` writes DIR/model.safetensors or, when --shard-size splits it,
 * Hugging Face's sharded form: DIR/model-0000k-of-0000n.safetensors and
 * DIR/model.safetensors.index.json. Beside it go DIR/model.qm (gpt: tiny-gpt's
 * model with this size's constants, `qmc compile DIR/model.qm` works) or
 * DIR/config.json (llama: a LlamaConfig), and DIR/gen_checkpoint.stamp (what
 * was generated, the parameter count and every file's size), written last.
 * `tokens` writes an int32 .npy [N, T] of uniform random tokens < V: a
 * calibration set for `--calib idx=FILE.npy`.
 *
 * Layouts. gpt: tiny-gpt's names and shapes (examples/tiny-gpt): tok_emb,
 * pos_emb, blocks.{i}.{ln1,ln2,q,k,v,o,fc1,fc2}.{weight,bias}, ln_f, lm_head.
 * llama: transformers' LlamaForCausalLM: model.embed_tokens,
 * model.layers.{i}.{input_layernorm, self_attn.{q,k,v,o}_proj,
 * post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm and, unless
 * the embeddings are tied, lm_head; k_proj and v_proj have kv_heads heads.
 *
 * What it guarantees:
 * - Deterministic: element i of a tensor is a function of the seed, the
 *   tensor's name and i only, so a sharded and a single-file checkpoint, or an
 *   f32 and a bf16 one, hold the same values (up to the dtype's rounding).
 *   Matrices and biases are ~N(0, 0.02) (like real initialisation: a sum of
 *   four uniforms, within ±3.5σ), norm weights ~1 + N(0, 0.02).
 * - Bounded memory: each tensor is generated in 1 Mi-element chunks and
 *   streamed to its file; the whole model is never held (peak RSS is printed).
 * - Files as transformers' save_pretrained writes them: tensors of a file in
 *   name order with increasing offsets, header {"__metadata__":{"format":"pt"}}
 *   padded with spaces to 8 bytes; shards filled greedily in state-dict order,
 *   a new one started when the next tensor would take the tensor data over
 *   SIZE (so a file exceeds SIZE by its header only; a larger tensor gets a
 *   shard of its own); one shard means a plain model.safetensors and no
 *   index; the index and config.json are JSON with sorted keys, indent 2.
 * - Refuses, before writing anything, when the file system lacks the space
 *   (statvfs): message and exit status 3. Bad usage: exit status 2.
 * - An existing checkpoint whose stamp says the same thing and whose files
 *   have the right sizes is kept ("up to date"); otherwise the old files are
 *   removed first. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define STAMP_VERSION "gen_checkpoint 1"
#define CHUNK (1u << 20)                  /* elements generated per write */
#define SPACE_MARGIN ((uint64_t)64 << 20) /* left free on the file system */

enum { LAYOUT_GPT, LAYOUT_LLAMA };
enum { DT_F32, DT_BF16, DT_F16 };
enum { INIT_NORMAL, INIT_ONE };

static const char *const dtype_st[] = {"F32", "BF16", "F16"};
static const char *const dtype_name[] = {"f32", "bf16", "f16"};
static const char *const dtype_torch[] = {"float32", "bfloat16", "float16"};
static const int dtype_size[] = {4, 2, 2};

typedef struct {
    int layout;
    int64_t d, layers, heads, kv_heads, mlp, vocab, context, seq;
    int tied, dtype;
    uint64_t shard_size; /* 0: one file */
    uint64_t seed;
    const char *preset;
} config;

typedef struct {
    char name[96];
    int64_t shape[2];
    int rank, init, shard;
    uint64_t offset; /* within its file's data */
} tensor;

typedef struct {
    char file[64];
    int *order; /* tensor indices, name order */
    int n;
    char *header; /* padded JSON */
    uint64_t header_len, data_bytes;
} shard;

typedef struct {
    config c;
    tensor *t;
    int nt;
    shard *s;
    int ns;
    uint64_t params, tensor_bytes;
} plan;

/* Prints "gen_checkpoint: MESSAGE" and exits with STATUS (1: failure, 2: usage, 3: no space). */
_Noreturn static void fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn static void fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gen_checkpoint: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(status);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) fail(1, "out of memory");
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- presets ------------------------------------------------------------------ */

/* gpt: tiny is the 4.9 M-parameter GPT, 1b the 1.0 B one (d 2048, 20 blocks,
 * MLP 8192); 7b is GPT-3 6.7B's width and depth with a 4× MLP. llama: tiny is llama-dev at d 256,
 * 125m SmolLM-135M's shape, 1b TinyLlama-1.1B's, 7b Llama-2-7B's. 7b defaults to bf16 in 5 GB
 * shards, what people download. */
typedef struct {
    const char *name;
    int layout;
    int64_t d, layers, heads, kv_heads, mlp, vocab, context;
    int tied, dtype;
    uint64_t shard_size;
} preset;

static const preset presets[] = {
    {"tiny", LAYOUT_GPT, 256, 6, 4, 4, 1024, 256, 256, 0, DT_F32, 0},
    {"125m", LAYOUT_GPT, 768, 18, 12, 12, 3072, 256, 1024, 0, DT_F32, 0},
    {"1b", LAYOUT_GPT, 2048, 20, 16, 16, 8192, 256, 2048, 0, DT_F32, 0},
    {"7b", LAYOUT_GPT, 4096, 32, 32, 32, 16384, 256, 4096, 0, DT_BF16, 5000000000u},
    {"tiny", LAYOUT_LLAMA, 256, 6, 8, 2, 688, 256, 256, 1, DT_F32, 0},
    {"125m", LAYOUT_LLAMA, 576, 30, 9, 3, 1536, 49152, 2048, 1, DT_F32, 0},
    {"1b", LAYOUT_LLAMA, 2048, 22, 32, 4, 5632, 32000, 2048, 0, DT_F32, 0},
    {"7b", LAYOUT_LLAMA, 4096, 32, 32, 32, 11008, 32000, 4096, 0, DT_BF16, 5000000000u},
};

static int apply_preset(config *c, const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        const preset *p = &presets[i];
        if (p->layout != c->layout || strcmp(p->name, name)) continue;
        c->d = p->d, c->layers = p->layers, c->heads = p->heads, c->kv_heads = p->kv_heads;
        c->mlp = p->mlp, c->vocab = p->vocab, c->context = p->context;
        c->tied = p->tied, c->dtype = p->dtype, c->shard_size = p->shard_size;
        c->preset = p->name;
        return 0;
    }
    return -1;
}

/* ---- the tensors, in state-dict order ------------------------------------------ */

static void add(plan *p, int init, int64_t rows, int64_t cols, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void add(plan *p, int init, int64_t rows, int64_t cols, const char *fmt, ...)
{
    tensor *t = &p->t[p->nt++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->init = init;
    t->rank = cols ? 2 : 1;
    t->shape[0] = rows, t->shape[1] = cols;
    p->params += (uint64_t)rows * (uint64_t)(cols ? cols : 1);
}

static void tensors_gpt(plan *p)
{
    const config *c = &p->c;
    int64_t d = c->d, f = c->mlp;
    add(p, INIT_NORMAL, c->vocab, d, "tok_emb.weight");
    add(p, INIT_NORMAL, c->context, d, "pos_emb.weight");
    for (int64_t i = 0; i < c->layers; i++) {
        static const char *const lin[] = {"q", "k", "v", "o"};
        add(p, INIT_ONE, d, 0, "blocks.%" PRId64 ".ln1.weight", i);
        add(p, INIT_NORMAL, d, 0, "blocks.%" PRId64 ".ln1.bias", i);
        for (int j = 0; j < 4; j++) {
            add(p, INIT_NORMAL, d, d, "blocks.%" PRId64 ".%s.weight", i, lin[j]);
            add(p, INIT_NORMAL, d, 0, "blocks.%" PRId64 ".%s.bias", i, lin[j]);
        }
        add(p, INIT_ONE, d, 0, "blocks.%" PRId64 ".ln2.weight", i);
        add(p, INIT_NORMAL, d, 0, "blocks.%" PRId64 ".ln2.bias", i);
        add(p, INIT_NORMAL, f, d, "blocks.%" PRId64 ".fc1.weight", i);
        add(p, INIT_NORMAL, f, 0, "blocks.%" PRId64 ".fc1.bias", i);
        add(p, INIT_NORMAL, d, f, "blocks.%" PRId64 ".fc2.weight", i);
        add(p, INIT_NORMAL, d, 0, "blocks.%" PRId64 ".fc2.bias", i);
    }
    add(p, INIT_ONE, d, 0, "ln_f.weight");
    add(p, INIT_NORMAL, d, 0, "ln_f.bias");
    add(p, INIT_NORMAL, c->vocab, d, "lm_head.weight");
}

/* LlamaDecoderLayer registers self_attn, mlp, input_layernorm, post_attention_layernorm. */
static void tensors_llama(plan *p)
{
    const config *c = &p->c;
    int64_t d = c->d, kv = c->kv_heads * (c->d / c->heads), f = c->mlp;
    add(p, INIT_NORMAL, c->vocab, d, "model.embed_tokens.weight");
    for (int64_t i = 0; i < c->layers; i++) {
#define LAYER(s) "model.layers.%" PRId64 "." s
        add(p, INIT_NORMAL, d, d, LAYER("self_attn.q_proj.weight"), i);
        add(p, INIT_NORMAL, kv, d, LAYER("self_attn.k_proj.weight"), i);
        add(p, INIT_NORMAL, kv, d, LAYER("self_attn.v_proj.weight"), i);
        add(p, INIT_NORMAL, d, d, LAYER("self_attn.o_proj.weight"), i);
        add(p, INIT_NORMAL, f, d, LAYER("mlp.gate_proj.weight"), i);
        add(p, INIT_NORMAL, f, d, LAYER("mlp.up_proj.weight"), i);
        add(p, INIT_NORMAL, d, f, LAYER("mlp.down_proj.weight"), i);
        add(p, INIT_ONE, d, 0, LAYER("input_layernorm.weight"), i);
        add(p, INIT_ONE, d, 0, LAYER("post_attention_layernorm.weight"), i);
#undef LAYER
    }
    add(p, INIT_ONE, d, 0, "model.norm.weight");
    if (!c->tied) add(p, INIT_NORMAL, c->vocab, d, "lm_head.weight");
}

static uint64_t tensor_bytes(const plan *p, const tensor *t)
{
    uint64_t n = (uint64_t)t->shape[0] * (uint64_t)(t->rank == 2 ? t->shape[1] : 1);
    return n * (uint64_t)dtype_size[p->c.dtype];
}

/* huggingface_hub's split_torch_state_dict_into_shards: greedy in state-dict order. */
static void assign_shards(plan *p)
{
    uint64_t cur = 0;
    int cur_shard = -1, n = 0;
    for (int i = 0; i < p->nt; i++) {
        uint64_t b = tensor_bytes(p, &p->t[i]);
        p->tensor_bytes += b;
        if (p->c.shard_size && b > p->c.shard_size) { /* a shard of its own */
            p->t[i].shard = n++;
            continue;
        }
        if (cur_shard < 0 || (p->c.shard_size && cur + b > p->c.shard_size)) {
            cur_shard = n++;
            cur = 0;
        }
        p->t[i].shard = cur_shard;
        cur += b;
    }
    p->ns = n;
}

static const plan *sort_plan;
static int by_name(const void *a, const void *b)
{
    return strcmp(sort_plan->t[*(const int *)a].name, sort_plan->t[*(const int *)b].name);
}

/* A growing string. */
typedef struct {
    char *s;
    size_t len, cap;
} buf;

static void bputs(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bputs(buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (b->s && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = 2 * (b->cap + (size_t)n + 64);
        char *s = realloc(b->s, b->cap);
        if (!s) fail(1, "out of memory");
        b->s = s;
    }
}

/* Each shard's tensors in name order, their offsets and the padded header. */
static void layout_shards(plan *p)
{
    p->s = xmalloc(sizeof(shard) * (size_t)p->ns);
    for (int k = 0; k < p->ns; k++) {
        shard *s = &p->s[k];
        memset(s, 0, sizeof *s);
        if (p->ns == 1)
            snprintf(s->file, sizeof s->file, "model.safetensors");
        else
            snprintf(s->file, sizeof s->file, "model-%05d-of-%05d.safetensors", k + 1, p->ns);
        s->order = xmalloc(sizeof(int) * (size_t)p->nt);
        for (int i = 0; i < p->nt; i++)
            if (p->t[i].shard == k) s->order[s->n++] = i;
        sort_plan = p;
        qsort(s->order, (size_t)s->n, sizeof(int), by_name);
        buf h = {0};
        bputs(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
        for (int j = 0; j < s->n; j++) {
            tensor *t = &p->t[s->order[j]];
            t->offset = s->data_bytes;
            s->data_bytes += tensor_bytes(p, t);
            bputs(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%" PRId64, t->name,
                  dtype_st[p->c.dtype], t->shape[0]);
            if (t->rank == 2) bputs(&h, ",%" PRId64, t->shape[1]);
            bputs(&h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", t->offset, s->data_bytes);
        }
        bputs(&h, "}");
        while (h.len % 8) bputs(&h, " ");
        s->header = h.s;
        s->header_len = h.len;
    }
}

/* ---- side files: index, config.json, model.qm, stamp ------------------------------ */

static char *index_json(const plan *p)
{
    int *all = xmalloc(sizeof(int) * (size_t)p->nt);
    for (int i = 0; i < p->nt; i++) all[i] = i;
    sort_plan = p;
    qsort(all, (size_t)p->nt, sizeof(int), by_name);
    buf b = {0};
    bputs(&b, "{\n  \"metadata\": {\n    \"total_size\": %" PRIu64 "\n  },\n  \"weight_map\": {\n",
          p->tensor_bytes);
    for (int i = 0; i < p->nt; i++) {
        const tensor *t = &p->t[all[i]];
        bputs(&b, "    \"%s\": \"%s\"%s\n", t->name, p->s[t->shard].file, i + 1 < p->nt ? "," : "");
    }
    bputs(&b, "  }\n}\n");
    free(all);
    return b.s;
}

static char *llama_config(const config *c)
{
    buf b = {0};
    bputs(&b, "{\n  \"architectures\": [\n    \"LlamaForCausalLM\"\n  ],\n");
    bputs(&b, "  \"attention_bias\": false,\n  \"attention_dropout\": 0.0,\n");
    bputs(&b, "  \"head_dim\": %" PRId64 ",\n  \"hidden_act\": \"silu\",\n", c->d / c->heads);
    bputs(&b, "  \"hidden_size\": %" PRId64 ",\n  \"initializer_range\": 0.02,\n", c->d);
    bputs(&b, "  \"intermediate_size\": %" PRId64 ",\n", c->mlp);
    bputs(&b, "  \"max_position_embeddings\": %" PRId64 ",\n", c->context);
    bputs(&b, "  \"mlp_bias\": false,\n  \"model_type\": \"llama\",\n");
    bputs(&b, "  \"num_attention_heads\": %" PRId64 ",\n", c->heads);
    bputs(&b, "  \"num_hidden_layers\": %" PRId64 ",\n", c->layers);
    bputs(&b, "  \"num_key_value_heads\": %" PRId64 ",\n", c->kv_heads);
    bputs(&b, "  \"pretraining_tp\": 1,\n  \"rms_norm_eps\": 1e-05,\n  \"rope_scaling\": null,\n");
    bputs(&b, "  \"rope_theta\": 10000.0,\n  \"tie_word_embeddings\": %s,\n",
          c->tied ? "true" : "false");
    bputs(&b, "  \"torch_dtype\": \"%s\",\n  \"use_cache\": true,\n", dtype_torch[c->dtype]);
    bputs(&b, "  \"vocab_size\": %" PRId64 "\n}\n", c->vocab);
    return b.s;
}

/* tiny-gpt's model (examples/tiny-gpt/tiny-gpt.qm) with this checkpoint's constants. */
static char *gpt_qm(const plan *p)
{
    const config *c = &p->c;
    buf b = {0};
    bputs(
        &b,
        "# Generated by bench/gen_checkpoint: tiny-gpt's model (examples/tiny-gpt/tiny-gpt.qm)\n");
    bputs(&b,
          "# at d = %" PRId64 ", %" PRId64 " blocks, %" PRId64 " heads, MLP hidden %" PRId64
          " (implied by the weights),\n",
          c->d, c->layers, c->heads, c->mlp);
    bputs(&b, "# vocabulary %" PRId64 ", context %" PRId64 ": %" PRIu64 " parameters.\n", c->vocab,
          c->context, p->params);
    bputs(&b, "const T = %" PRId64 " # tokens per sequence\n", c->seq);
    bputs(&b, "const D = %" PRId64 " # model width\n", c->d);
    bputs(&b, "const HEADS = %" PRId64 "\nconst LAYERS = %" PRId64 "\nconst V = %" PRId64 "\n\n",
          c->heads, c->layers, c->vocab);
    bputs(&b, "%s",
          "# One transformer block; p is the weight prefix blocks.{i}.\n"
          "def block(x, p) {\n"
          "    h = layernorm(x, p.ln1.weight, p.ln1.bias, eps=1e-5)\n"
          "    q = linear(h, p.q.weight, p.q.bias)\n"
          "    k = linear(h, p.k.weight, p.k.bias)\n"
          "    v = linear(h, p.v.weight, p.v.bias)\n"
          "    a = attention(q, k, v, heads=HEADS, causal=true)\n"
          "    x = x + linear(a, p.o.weight, p.o.bias)\n"
          "    h = layernorm(x, p.ln2.weight, p.ln2.bias, eps=1e-5)\n"
          "    return x + linear(gelu(linear(h, p.fc1.weight, p.fc1.bias)), p.fc2.weight, "
          "p.fc2.bias)\n"
          "}\n\n"
          "model scale_gpt {\n");
    bputs(&b, "    weights \"%s\"\n\n",
          p->ns == 1 ? "model.safetensors" : "model.safetensors.index.json");
    bputs(&b, "%s",
          "    input  idx: i32[T]\n"
          "    output logits: f32[T, V] @logits\n\n"
          "    x = embedding(tok_emb.weight, idx) + slice(pos_emb.weight, 0, 0, T)\n"
          "    for i in 0..LAYERS {\n"
          "        x = block(x, blocks.{i})\n"
          "    }\n"
          "    logits = linear(layernorm(x, ln_f.weight, ln_f.bias, eps=1e-5), lm_head.weight)\n"
          "}\n");
    return b.s;
}

/* examples/llama/llama.qm with this checkpoint's constants: generation with a
 * KV cache of the context, by the Hugging Face tensor names. */
static char *llama_qm(const plan *p)
{
    const config *c = &p->c;
    buf b = {0};
    bputs(&b,
          "# Generated by bench/gen_checkpoint: examples/llama/llama.qm at d = %" PRId64
          ", %" PRId64 " layers,\n# %" PRId64 " heads (%" PRId64 " key/value), MLP %" PRId64
          ", vocabulary %" PRId64 ", context %" PRId64 ": %" PRIu64 " parameters.\n",
          c->d, c->layers, c->heads, c->kv_heads, c->mlp, c->vocab, c->context, p->params);
    bputs(&b,
          "const CTX = %" PRId64 "\nconst HEADS = %" PRId64 "\nconst KV_HEADS = %" PRId64
          "\nconst LAYERS = %" PRId64 "\nconst V = %" PRId64 "\nconst EPS = 1e-5\n\n",
          c->context, c->heads, c->kv_heads, c->layers, c->vocab);
    bputs(&b, "%s",
          "def layer(x, p) {\n"
          "    h = rmsnorm(x, p.input_layernorm.weight, eps=EPS)\n"
          "    q = rope(linear(h, p.self_attn.q_proj.weight), heads=HEADS, theta=10000)\n"
          "    k = rope(linear(h, p.self_attn.k_proj.weight), heads=KV_HEADS, theta=10000)\n"
          "    v = linear(h, p.self_attn.v_proj.weight)\n"
          "    a = attention(q, k, v, heads=HEADS, kv_heads=KV_HEADS, cache=true)\n"
          "    x = x + linear(a, p.self_attn.o_proj.weight)\n"
          "    h = rmsnorm(x, p.post_attention_layernorm.weight, eps=EPS)\n"
          "    m = silu(linear(h, p.mlp.gate_proj.weight)) * linear(h, p.mlp.up_proj.weight)\n"
          "    return x + linear(m, p.mlp.down_proj.weight)\n"
          "}\n\n"
          "model scale_llama {\n");
    bputs(&b, "    weights \"%s\"\n    sequence T <= CTX\n\n",
          p->ns == 1 ? "model.safetensors" : "model.safetensors.index.json");
    bputs(&b,
          "    input  idx: i32[T]\n    output logits: f32[T, V] @logits\n\n"
          "    x = embedding(model.embed_tokens.weight, idx)\n"
          "    for i in 0..LAYERS {\n        x = layer(x, model.layers.{i})\n    }\n"
          "    logits = linear(rmsnorm(x, model.norm.weight, eps=EPS), %s)\n}\n",
          c->tied ? "model.embed_tokens.weight" : "lm_head.weight");
    return b.s;
}

static char *stamp_text(const plan *p)
{
    const config *c = &p->c;
    buf b = {0};
    bputs(&b, "%s\nlayout %s\npreset %s\n", STAMP_VERSION,
          c->layout == LAYOUT_GPT ? "gpt" : "llama", c->preset ? c->preset : "-");
    bputs(&b,
          "d_model %" PRId64 "\nlayers %" PRId64 "\nheads %" PRId64 "\nkv_heads %" PRId64
          "\nmlp %" PRId64 "\nvocab %" PRId64 "\ncontext %" PRId64 "\n",
          c->d, c->layers, c->heads, c->kv_heads, c->mlp, c->vocab, c->context);
    bputs(&b, "tied %d\ndtype %s\nshard_size %" PRIu64 "\nseed %" PRIu64 "\n", c->tied,
          dtype_name[c->dtype], c->shard_size, c->seed);
    bputs(&b, "parameters %" PRIu64 "\ntensor_bytes %" PRIu64 "\nfiles %d\n", p->params,
          p->tensor_bytes, p->ns);
    for (int k = 0; k < p->ns; k++)
        bputs(&b, "file %s %" PRIu64 "\n", p->s[k].file,
              8 + p->s[k].header_len + p->s[k].data_bytes);
    return b.s;
}

/* ---- the values --------------------------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static uint64_t tensor_key(uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (const unsigned char *s = (const unsigned char *)name; *s; s++)
        h = (h ^ *s) * 0x100000001b3u;
    return mix64(h ^ mix64(seed));
}

/* Elements first .. first+n-1 of a tensor: splitmix64 of the element's index, whose four 16-bit
 * parts sum to an Irwin-Hall variate (mean 131070, sd 65536/√3), scaled to sd 0.02. */
static void fill(float *out, uint64_t key, uint64_t first, size_t n, float mean)
{
    const double scale = 0.02 * 1.7320508075688772 / 65536.0;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = mix64(key + (first + i + 1) * 0x9E3779B97F4A7C15u);
        int32_t s = (int32_t)(r & 0xffff) + (int32_t)((r >> 16) & 0xffff) +
                    (int32_t)((r >> 32) & 0xffff) + (int32_t)(r >> 48);
        out[i] = mean + (float)((s - 131070) * scale);
    }
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* NaN stays NaN */
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);                /* nearest, ties even */
}

static uint16_t f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, m = x & 0x7fffff;
    int32_t e = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    if (e == 128 + 15) return (uint16_t)(sign | 0x7c00 | (m ? 0x200 : 0)); /* inf, NaN */
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    uint32_t h, rem, half;
    if (e <= 0) { /* subnormal: value = h · 2^-24 */
        if (e < -10) return (uint16_t)sign;
        m |= 0x800000;
        int shift = 14 - e;
        h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    } else {
        h = ((uint32_t)e << 10) | (m >> 13), rem = m & 0x1fff, half = 0x1000;
    }
    if (rem > half || (rem == half && (h & 1))) h++; /* a carry into the exponent is right */
    return (uint16_t)(sign | h);
}

/* ---- writing ------------------------------------------------------------------ */

typedef struct {
    uint64_t done, total;
    double t0, last;
    int tty;
} progress;

static void show(progress *pr, int force)
{
    double t = now_s();
    if (!pr->tty || (!force && t - pr->last < 0.5)) return;
    pr->last = t;
    double rate = (double)pr->done / (t - pr->t0 + 1e-9);
    fprintf(stderr, "\rgen_checkpoint: %.2f / %.2f GB, %.0f MB/s, %.0f s left   ", pr->done / 1e9,
            pr->total / 1e9, rate / 1e6, rate > 0 ? (double)(pr->total - pr->done) / rate : 0.0);
}

static void write_or_die(FILE *f, const void *p, size_t n, const char *path)
{
    if (fwrite(p, 1, n, f) != n) fail(1, "%s: %s", path, strerror(errno));
}

static void write_shard(const plan *p, const shard *s, const char *dir, float *fb, uint16_t *hb,
                        progress *pr)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, s->file);
    FILE *f = fopen(path, "wb");
    if (!f) fail(1, "%s: %s", path, strerror(errno));
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(s->header_len >> (8 * i));
    write_or_die(f, le, 8, path);
    write_or_die(f, s->header, s->header_len, path);
    int dt = p->c.dtype;
    for (int j = 0; j < s->n; j++) {
        const tensor *t = &p->t[s->order[j]];
        uint64_t n = tensor_bytes(p, t) / (uint64_t)dtype_size[dt],
                 key = tensor_key(p->c.seed, t->name);
        for (uint64_t first = 0; first < n; first += CHUNK) {
            size_t m = (size_t)(n - first < CHUNK ? n - first : CHUNK);
            fill(fb, key, first, m, t->init == INIT_ONE ? 1.0f : 0.0f);
            if (dt == DT_F32) {
                write_or_die(f, fb, m * 4, path); /* little-endian hosts only, as qmc */
            } else {
                for (size_t i = 0; i < m; i++)
                    hb[i] = dt == DT_BF16 ? f32_to_bf16(fb[i]) : f32_to_f16(fb[i]);
                write_or_die(f, hb, m * 2, path);
            }
            pr->done += m * (uint64_t)dtype_size[dt];
            show(pr, 0);
        }
    }
    if (fclose(f) != 0) fail(1, "%s: %s", path, strerror(errno));
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) fail(1, "%s: %s", path, strerror(errno));
    write_or_die(f, text, strlen(text), path);
    if (fclose(f) != 0) fail(1, "%s: %s", path, strerror(errno));
}

/* write_text, then frees text (made by bputs). */
static void write_owned(const char *dir, const char *name, char *text)
{
    write_text(dir, name, text);
    free(text);
}

static char *read_small(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    buf b = {0};
    char chunk[4096];
    size_t n;
    bputs(&b, "%s", "");
    while ((n = fread(chunk, 1, sizeof chunk - 1, f)) > 0) {
        chunk[n] = 0;
        bputs(&b, "%s", chunk);
    }
    fclose(f);
    return b.s;
}

/* The index, model.qm or config.json: small, rewritten every time (model.qm's T is not part of
 * the checkpoint). */
static void write_side_files(const plan *p, const char *dir)
{
    if (p->ns > 1) write_owned(dir, "model.safetensors.index.json", index_json(p));
    if (p->c.layout == LAYOUT_GPT) write_owned(dir, "model.qm", gpt_qm(p));
    if (p->c.layout == LAYOUT_LLAMA) {
        write_owned(dir, "config.json", llama_config(&p->c));
        write_owned(dir, "model.qm", llama_qm(p));
    }
}

static int64_t file_size(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* The files of an earlier checkpoint in DIR (any shard count): their names, for the space check
 * and removal. */
static int old_file(const char *name)
{
    int a, b;
    char tail[32];
    if (!strcmp(name, "model.safetensors") || !strcmp(name, "model.safetensors.index.json"))
        return 1;
    return sscanf(name, "model-%5d-of-%5d.safetensor%31s", &a, &b, tail) == 3 && !strcmp(tail, "s");
}

static uint64_t remove_old(const char *dir, int really)
{
    uint64_t bytes = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!old_file(e->d_name)) continue;
        int64_t sz = file_size(dir, e->d_name);
        if (sz > 0) bytes += (uint64_t)sz;
        if (really) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (unlink(path) != 0) fail(1, "%s: %s", path, strerror(errno));
        }
    }
    closedir(d);
    return bytes;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void describe(const plan *p, const char *dir)
{
    const config *c = &p->c;
    printf("gen_checkpoint: %s: %s", dir, c->layout == LAYOUT_GPT ? "gpt" : "llama");
    if (c->preset) printf(" %s", c->preset);
    printf(", d %" PRId64 ", %" PRId64 " layers, %" PRId64 " heads", c->d, c->layers, c->heads);
    if (c->layout == LAYOUT_LLAMA) printf(" (%" PRId64 " kv)", c->kv_heads);
    printf(", mlp %" PRId64 ", vocab %" PRId64 ", context %" PRId64 "%s: %" PRIu64
           " parameters (%.1f M), %s",
           c->mlp, c->vocab, c->context,
           c->layout == LAYOUT_LLAMA ? (c->tied ? ", tied" : ", untied") : "", p->params,
           p->params / 1e6, dtype_name[c->dtype]);
    uint64_t total = 0;
    for (int k = 0; k < p->ns; k++) total += 8 + p->s[k].header_len + p->s[k].data_bytes;
    printf(", %.3f GB in %d file%s\n", total / 1e9, p->ns, p->ns == 1 ? "" : "s");
}

static uint64_t file_bytes(const shard *s) { return 8 + s->header_len + s->data_bytes; }

/* An earlier run left this very checkpoint (its stamp is written last). */
static int up_to_date(const plan *p, const char *dir, const char *stamp)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/gen_checkpoint.stamp", dir);
    char *old = read_small(path);
    int same = old && !strcmp(old, stamp);
    for (int k = 0; same && k < p->ns; k++)
        same = file_size(dir, p->s[k].file) == (int64_t)file_bytes(&p->s[k]);
    free(old);
    return same;
}

/* Refuses (status 3) unless the free space plus the earlier checkpoint's files hold this one. */
static uint64_t check_space(const plan *p, const char *dir)
{
    uint64_t need = 0;
    for (int k = 0; k < p->ns; k++) need += file_bytes(&p->s[k]);
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0) fail(1, "%s: %s", dir, strerror(errno));
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize + remove_old(dir, 0);
    if (avail < need + SPACE_MARGIN)
        fail(3,
             "%s: not enough disk space: the checkpoint needs %.2f GB (+%.2f GB margin), the file "
             "system has %.2f GB free",
             dir, need / 1e9, SPACE_MARGIN / 1e9, avail / 1e9);
    return need;
}

static void generate(plan *p, const char *dir, int dry_run)
{
    p->t = xmalloc(sizeof(tensor) * (size_t)(16 * p->c.layers + 8));
    if (p->c.layout == LAYOUT_GPT)
        tensors_gpt(p);
    else
        tensors_llama(p);
    assign_shards(p);
    layout_shards(p);
    describe(p, dir);
    if (dry_run) return;
    char *stamp = stamp_text(p);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) fail(1, "%s: %s", dir, strerror(errno));
    if (up_to_date(p, dir, stamp)) {
        write_side_files(p, dir);
        printf("gen_checkpoint: %s: up to date\n", dir);
        free(stamp);
        return;
    }
    uint64_t need = check_space(p, dir);
    char stamp_path[4096];
    snprintf(stamp_path, sizeof stamp_path, "%s/gen_checkpoint.stamp", dir);
    unlink(stamp_path);
    remove_old(dir, 1);

    float *fb = xmalloc(sizeof(float) * CHUNK);
    uint16_t *hb = xmalloc(sizeof(uint16_t) * CHUNK);
    progress pr = {0, p->tensor_bytes, now_s(), 0, isatty(2)};
    for (int k = 0; k < p->ns; k++) write_shard(p, &p->s[k], dir, fb, hb, &pr);
    show(&pr, 1);
    if (pr.tty) fprintf(stderr, "\n");
    write_side_files(p, dir);
    write_owned(dir, "gen_checkpoint.stamp", stamp);
    free(fb);
    free(hb);
    double dt = now_s() - pr.t0;
    printf("gen_checkpoint: wrote %.3f GB in %.1f s (%.0f MB/s), peak RSS %.1f MB\n", need / 1e9,
           dt, need / 1e6 / (dt + 1e-9), peak_rss_kb() / 1024.0);
}

/* ---- calibration tokens ---------------------------------------------------------- */

static void write_tokens(const char *path, int64_t samples, int64_t seq, int64_t vocab,
                         uint64_t seed)
{
    char hdr[128];
    int len =
        snprintf(hdr, sizeof hdr,
                 "{'descr': '<i4', 'fortran_order': False, 'shape': (%" PRId64 ", %" PRId64 "), }",
                 samples, seq);
    while ((10 + len + 1) % 64) hdr[len++] = ' ';
    hdr[len++] = '\n';
    FILE *f = fopen(path, "wb");
    if (!f) fail(1, "%s: %s", path, strerror(errno));
    unsigned char le[2] = {(unsigned char)(len & 0xff), (unsigned char)(len >> 8)};
    write_or_die(f, "\x93NUMPY\x01\x00", 8, path); /* format version 1.0 */
    write_or_die(f, le, 2, path);
    write_or_die(f, hdr, (size_t)len, path);
    uint64_t key = tensor_key(seed, "calibration tokens");
    for (int64_t i = 0; i < samples * seq; i++) {
        int32_t v =
            (int32_t)(mix64(key + ((uint64_t)i + 1) * 0x9E3779B97F4A7C15u) % (uint64_t)vocab);
        write_or_die(f, &v, 4, path);
    }
    if (fclose(f) != 0) fail(1, "%s: %s", path, strerror(errno));
    printf("gen_checkpoint: %s: %" PRId64 " × %" PRId64 " tokens < %" PRId64 "\n", path, samples,
           seq, vocab);
}

/* ---- options -------------------------------------------------------------------- */

_Noreturn static void usage(void)
{
    fprintf(stderr,
            "usage: gen_checkpoint model DIR --layout gpt|llama [--preset tiny|125m|1b|7b]\n"
            "         [--d-model D] [--layers L] [--heads H] [--kv-heads K] [--mlp F] [--vocab V]\n"
            "         [--context C] [--tied | --untied] [--seq T] [--dtype f32|bf16|f16]\n"
            "         [--shard-size SIZE (5GB, 500MB, 2GiB, bytes; 0: one file)] [--seed N] "
            "[--dry-run]\n"
            "       gen_checkpoint tokens FILE.npy --samples N --seq T --vocab V [--seed N]\n");
    exit(2);
}

static int64_t number(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0) fail(2, "%s: bad number '%s'", opt, s);
    return v;
}

static uint64_t size_arg(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    static const struct {
        const char *suffix;
        double mul;
    } units[] = {{"", 1},     {"B", 1},        {"KB", 1e3},        {"MB", 1e6},
                 {"GB", 1e9}, {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (end != s && v >= 0 && !strcmp(end, units[i].suffix))
            return (uint64_t)(v * units[i].mul);
    fail(2, "--shard-size: bad size '%s' (e.g. 5GB, 500MB, 2GiB)", s);
}

static void check(const config *c)
{
    const char *err = NULL;
    if (c->d <= 0 || c->layers <= 0 || c->heads <= 0 || c->mlp <= 0 || c->vocab <= 0 ||
        c->context <= 0)
        err = "d-model, layers, heads, mlp, vocab and context must be positive (or come from "
              "--preset)";
    else if (c->d % c->heads)
        err = "heads must divide d-model";
    else if (c->layout == LAYOUT_LLAMA && (c->kv_heads <= 0 || c->heads % c->kv_heads))
        err = "kv-heads must divide heads";
    else if (c->layout == LAYOUT_LLAMA && (c->d / c->heads) % 2)
        err = "the head size (d-model / heads) must be even for RoPE";
    else if (c->seq <= 0 || c->seq > c->context)
        err = "seq must be 1 .. context";
    else if (c->layers > 100000)
        err = "too many layers";
    if (err) fail(2, "%s", err);
}

/* The options of `model`; -1: not given (the preset or the default decides). */
typedef struct {
    const char *dir, *preset;
    int layout, tied, dtype, dry_run;
    int64_t dims[7], seq;
    uint64_t seed;
    int64_t shard_size; /* bytes */
} model_opts;

static const char *const dim_options[7] = {"--d-model", "--layers", "--heads",  "--kv-heads",
                                           "--mlp",     "--vocab",  "--context"};

static int choice(const char *opt, const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) return i;
    fail(2, "%s: '%s' is not one of the choices (see usage)", opt, v);
}

static void parse_model_opts(int argc, char **argv, model_opts *o)
{
    static const char *const layouts[] = {"gpt", "llama"};
    *o = (model_opts){argv[2], NULL, -1, -1, -1, 0, {-1, -1, -1, -1, -1, -1, -1}, 16, 1, -1};
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int dim = -1;
        for (int k = 0; k < 7; k++)
            if (!strcmp(a, dim_options[k])) dim = k;
        if (!strcmp(a, "--dry-run"))
            o->dry_run = 1;
        else if (!strcmp(a, "--tied"))
            o->tied = 1;
        else if (!strcmp(a, "--untied"))
            o->tied = 0;
        if (!strcmp(a, "--dry-run") || !strcmp(a, "--tied") || !strcmp(a, "--untied")) continue;
        if (!v) usage();
        i++;
        if (dim >= 0)
            o->dims[dim] = number(a, v);
        else if (!strcmp(a, "--layout"))
            o->layout = choice(a, v, layouts, 2);
        else if (!strcmp(a, "--preset"))
            o->preset = v;
        else if (!strcmp(a, "--seq"))
            o->seq = number(a, v);
        else if (!strcmp(a, "--seed"))
            o->seed = (uint64_t)number(a, v);
        else if (!strcmp(a, "--shard-size"))
            o->shard_size = (int64_t)size_arg(v);
        else if (!strcmp(a, "--dtype"))
            o->dtype = choice(a, v, dtype_name, 3);
        else
            fail(2, "unknown option '%s' (gen_checkpoint without arguments: usage)", a);
    }
    if (o->layout < 0) fail(2, "--layout gpt|llama is required");
}

/* The preset, then the options over it. */
static config resolve(const model_opts *o)
{
    config c = {.layout = o->layout, .vocab = 256, .seq = o->seq, .seed = o->seed};
    if (o->preset && apply_preset(&c, o->preset))
        fail(2, "unknown preset '%s' (tiny, 125m, 1b, 7b)", o->preset);
    int64_t *field[7] = {&c.d, &c.layers, &c.heads, &c.kv_heads, &c.mlp, &c.vocab, &c.context};
    int changed = o->tied >= 0;
    for (int k = 0; k < 7; k++)
        if (o->dims[k] >= 0) *field[k] = o->dims[k], changed = 1;
    /* kv heads: given, else the preset's unless the heads changed, else one per head */
    if (c.layout == LAYOUT_GPT || (o->dims[3] < 0 && (!o->preset || o->dims[2] >= 0)))
        c.kv_heads = c.heads;
    if (o->tied >= 0) c.tied = o->tied;
    if (c.layout == LAYOUT_GPT) c.tied = 0; /* tiny-gpt has its own lm_head */
    if (o->dtype >= 0) c.dtype = o->dtype;
    if (o->shard_size >= 0) c.shard_size = (uint64_t)o->shard_size;
    if (changed) c.preset = NULL; /* no longer the preset's shape */
    return c;
}

static int main_model(int argc, char **argv)
{
    if (argc < 3 || argv[2][0] == '-') usage();
    model_opts o;
    parse_model_opts(argc, argv, &o);
    plan p = {.c = resolve(&o)};
    check(&p.c);
    generate(&p, o.dir, o.dry_run);
    for (int k = 0; k < p.ns; k++) free(p.s[k].order), free(p.s[k].header);
    free(p.s);
    free(p.t);
    return 0;
}

static int main_tokens(int argc, char **argv)
{
    if (argc < 3 || argv[2][0] == '-') usage();
    int64_t samples = -1, seq = -1, vocab = -1;
    uint64_t seed = 1;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--samples"))
            samples = number(argv[i], argv[i + 1]);
        else if (!strcmp(argv[i], "--seq"))
            seq = number(argv[i], argv[i + 1]);
        else if (!strcmp(argv[i], "--vocab"))
            vocab = number(argv[i], argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            seed = (uint64_t)number(argv[i], argv[i + 1]);
        else
            usage();
    }
    if (argc % 2 == 0 || samples <= 0 || seq <= 0 || vocab <= 0 || vocab > INT32_MAX) usage();
    write_tokens(argv[2], samples, seq, vocab, seed);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* stdout and stderr keep their order in a log */
    if (argc >= 2 && !strcmp(argv[1], "model")) return main_model(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "tokens")) return main_tokens(argc, argv);
    usage();
}
