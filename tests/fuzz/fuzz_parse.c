/* fuzz_parse: model source text -> fe_parse_text, and when it parses,
 * elaboration (pass_build_graph), the verifier, the shape pass, the IR dump
 * and, for small graphs, the interpreter on zero inputs. Diagnostics are
 * formatted (into /dev/null) like real ones.
 *
 * Sources that mention `weights` get a small weights file (written once to
 * a temporary file, as --weights), so weight names, prefixes and precision
 * annotations are fuzzed too; the others run without one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "passes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *sink(void)
{
    static FILE *f;
    if (!f) f = fopen("/dev/null", "w");
    return f;
}

static char weights_path[64];

static void remove_weights(void) { unlink(weights_path); }

/* fc1.weight [4, 4], fc1.bias [4], blocks.{0,1}.w [4, 4], emb.weight [8, 4]
 * (f32), half.weight [4, 4] (f16), e [0] */
static const char *weights(void)
{
    if (weights_path[0]) return weights_path;
    static const char header[] =
        "{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,64]},"
        "\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[64,80]},"
        "\"blocks.0.w\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[80,144]},"
        "\"blocks.1.w\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[144,208]},"
        "\"emb.weight\":{\"dtype\":\"F32\",\"shape\":[8,4],\"data_offsets\":[208,336]},"
        "\"half.weight\":{\"dtype\":\"F16\",\"shape\":[4,4],\"data_offsets\":[336,368]},"
        "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[368,368]}}";
    strcpy(weights_path, "/tmp/qmc-fuzz-weights-XXXXXX");
    int fd = mkstemp(weights_path);
    if (fd < 0) abort();
    uint64_t hlen = sizeof header - 1;
    uint8_t len[8], data[368];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(hlen >> (8 * i));
    for (int i = 0; i < 368; i++)
        data[i] = (uint8_t)(i % 7 == 3 ? 0x3c : i % 5); /* small finite values */
    if (write(fd, len, 8) != 8 || write(fd, header, hlen) != (ssize_t)hlen ||
        write(fd, data, 368) != 368)
        abort();
    close(fd);
    atexit(remove_weights);
    return weights_path;
}

/* The interpreter allocates every node's buffer: only small graphs run. */
static bool small_enough(const ir_graph *g)
{
    int64_t total = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        total += ir_node_count(&g->nodes[i]);
        if (total > (1 << 18)) return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sup_arena arena = {0};
    sup_diag_reset();
    sup_diag_set_stream(sink());
    /* the parser takes any bytes; keep a copy it may quote from */
    char *text = sup_arena_strndup(&arena, (const char *)data, size);
    fe_node *file = fe_parse_text(&arena, "fuzz.qm", text, size);
    if (file) {
        pass_build_options opts = {0};
        if (memmem(data, size, "weights", 7)) opts.weights_override = weights();
        ir_graph *g = pass_build_graph(&arena, file, &opts);
        if (g && ir_verify(g, "build") && pass_infer_shapes(g) && ir_verify(g, "shape")) {
            ir_dump(sink(), g);
            if (small_enough(g)) {
                interp *it = interp_new(&arena, g);
                interp_run(it); /* inputs are zeros: embedding indices 0 are valid */
            }
        }
        if (g && g->weights) fe_safetensors_close(g->weights);
    }
    sup_arena_free(&arena);
    return 0;
}
