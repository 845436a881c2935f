/* generate.c: text generation with the llama example through the C API
 * that `qmc compile --emit obj` writes (llama_model.h), greedy decoding:
 *
 *   qmc compile llama.qm --emit obj -o llama_model
 *   cc generate.c llama_model.o PATH/TO/libqmc_rt.a -lpthread -lm -o generate
 *   ./generate "#include <" 100
 *
 * The state (the KV caches) and the workspace are the caller's memory,
 * sized by the header; the model allocates nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama_model.h"

/* The likeliest token (the lowest id on a tie). */
static int32_t argmax(const float *logits, int n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

static int fail(const char *what, qmc_status st)
{
    fprintf(stderr, "generate: %s: %s\n", what, qmc_status_string(st));
    return 1;
}

int main(int argc, char **argv)
{
    const char *prompt = argc > 1 ? argv[1] : "#include <";
    long n_new = argc > 2 ? strtol(argv[2], NULL, 10) : 64;
    long n = (long)strlen(prompt);
    if (n < 1 || n + n_new > LLAMA_CONTEXT) {
        fprintf(stderr, "generate: a prompt of 1 to %d bytes, and room for the new tokens\n",
                LLAMA_CONTEXT);
        return 1;
    }
    void *state = qmc_workspace_alloc(LLAMA_STATE_SIZE);
    void *workspace = qmc_workspace_alloc(LLAMA_WORKSPACE_SIZE);
    int32_t *tokens = malloc(sizeof *tokens * (size_t)n);
    float logits[LLAMA_OUTPUT_LOGITS_ROW];
    if (!state || !workspace || !tokens) return fail("allocating", QMC_ERR_NO_MEMORY);
    for (long i = 0; i < n; i++) tokens[i] = (unsigned char)prompt[i];

    qmc_status st = llama_reset(state);
    if (st != QMC_OK) return fail("reset", st);
    /* prefill: the whole prompt in one call, keeping the last row's logits */
    st = llama_step(state, tokens, n, logits, 1, workspace);
    if (st != QMC_OK) return fail("prefill", st);
    fputs(prompt, stdout);
    for (long i = 0; i < n_new; i++) {
        int32_t next = argmax(logits, LLAMA_OUTPUT_LOGITS_ROW);
        putchar(next);
        /* decode: one token at the next position */
        if (i + 1 < n_new && (st = llama_step(state, &next, 1, logits, 1, workspace)) != QMC_OK)
            return fail("decode", st);
    }
    putchar('\n');
    free(tokens);
    qmc_workspace_free(state);
    qmc_workspace_free(workspace);
    return 0;
}
