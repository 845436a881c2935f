/* step.c: running a model with a sequence, a few tokens at a time.
 *
 * Needs: a model descriptor with steps (qmc compile of a model declaring
 * `sequence T <= N`): step functions compiled for calls of a few token
 * counts, and where each input's and output's rows are staged in the
 * workspace.
 * Guarantees: qmc_model_step runs any n tokens (1 .. what is left of the
 * context) as a series of steps: the largest step that fits, or the next
 * larger one padded with zero tokens when that wastes less than half of it
 * (a padded step's extra positions hold garbage keys that later tokens
 * overwrite before anything reads them: a position only sees the ones
 * before it). The state's position advances only when every step
 * succeeded. Nothing is allocated. */
#include <string.h>

#include "rt.h"

/* The state's header; the caches follow at byte 64. */
typedef struct state_header {
    uint64_t magic;
    int64_t pos;
    int64_t context;
} state_header;

enum { STATE_MAGIC = 0x716d637374617465ull }; /* "qmcstate" */
#define MAX_PORTS 64

static size_t row_bytes(const qmc_tensor_desc *t)
{
    size_t n = qmc_dtype_size(t->dtype);
    for (int d = 1; d < t->rank; d++) n *= (size_t)t->shape[d];
    return n;
}

qmc_status qmc_model_reset(const qmc_model_desc *m, void *state)
{
    if (!m || !state || !m->context) return QMC_ERR_INVALID_ARGUMENT;
    state_header *h = state;
    h->magic = STATE_MAGIC;
    h->pos = 0;
    h->context = m->context;
    return QMC_OK;
}

int64_t qmc_model_position(const qmc_model_desc *m, const void *state)
{
    const state_header *h = state;
    if (!m || !h || h->magic != STATE_MAGIC || h->context != m->context) return -1;
    return h->pos;
}

int64_t rt_step_choose(const qmc_model_desc *m, int64_t left, int64_t pos)
{
    int64_t best = 1, next = 0;
    for (int i = 0; i < m->n_steps; i++) {
        int64_t t = m->steps[i].tokens;
        if (t <= left && t > best) best = t;
        if (t > left && pos + t <= m->context && (!next || t < next)) next = t;
    }
    /* padding wastes next - left positions: worth it below half of next */
    return next && 2 * (next - left) < next ? next : best;
}

static const qmc_step_desc *step_of(const qmc_model_desc *m, int64_t tokens)
{
    for (int i = 0; i < m->n_steps; i++)
        if (m->steps[i].tokens == tokens) return &m->steps[i];
    return NULL;
}

static bool arguments_ok(const qmc_model_desc *m, const void *const *inputs, int64_t n,
                         void *const *outputs, int64_t rows, void *workspace)
{
    if (!m->context || m->n_inputs > MAX_PORTS || m->n_outputs > MAX_PORTS) return false;
    if (n < 1 || rows < 0 || rows > n || !workspace || (m->n_inputs && !inputs)) return false;
    for (int i = 0; i < m->n_inputs; i++)
        if (!inputs[i]) return false;
    if (rows && !outputs) return false;
    for (int o = 0; rows && o < m->n_outputs; o++)
        if (!outputs[o]) return false;
    return true;
}

/* One step: `take` tokens from token `done` of the call, as a step of
 * `tokens` (take <= tokens, the rest zero), at position pos; copies the
 * outputs' rows that belong to the call's last `rows`. */
static qmc_status run_step(const qmc_model_desc *m, const qmc_step_desc *s, void *state,
                           const void *const *inputs, int64_t done, int64_t take, int64_t n,
                           void *const *outputs, int64_t rows, void *workspace, int64_t pos)
{
    const void *ins[MAX_PORTS];
    void *outs[MAX_PORTS];
    uint8_t *ws = workspace;
    for (int i = 0; i < m->n_inputs; i++) {
        size_t rb = row_bytes(&m->inputs[i]);
        uint8_t *dst = ws + m->staging[i];
        memcpy(dst, (const uint8_t *)inputs[i] + (size_t)done * rb, (size_t)take * rb);
        memset(dst + (size_t)take * rb, 0, (size_t)(s->tokens - take) * rb);
        ins[i] = dst;
    }
    for (int o = 0; o < m->n_outputs; o++) outs[o] = ws + m->staging[m->n_inputs + o];
    qmc_status st = s->fn(ins, outs, workspace, state, pos);
    if (st != QMC_OK) return st;
    int64_t first = n - rows, lo = done > first ? done : first, hi = done + take;
    for (int o = 0; lo < hi && o < m->n_outputs; o++) {
        size_t rb = row_bytes(&m->outputs[o]);
        memcpy((uint8_t *)outputs[o] + (size_t)(lo - first) * rb,
               (const uint8_t *)outs[o] + (size_t)(lo - done) * rb, (size_t)(hi - lo) * rb);
    }
    return QMC_OK;
}

qmc_status qmc_model_step(const qmc_model_desc *m, void *state, const void *const *inputs,
                          int64_t n, void *const *outputs, int64_t rows, void *workspace)
{
    if (!m || !state || !arguments_ok(m, inputs, n, outputs, rows, workspace))
        return QMC_ERR_INVALID_ARGUMENT;
    state_header *h = state;
    if (h->magic != STATE_MAGIC || h->context != m->context) return QMC_ERR_INVALID_ARGUMENT;
    int64_t pos = h->pos;
    if (pos < 0 || n > m->context - pos) return QMC_ERR_CONTEXT;
    for (int64_t done = 0; done < n;) {
        int64_t tokens = rt_step_choose(m, n - done, pos);
        const qmc_step_desc *s = step_of(m, tokens);
        if (!s) return QMC_ERR_INVALID_ARGUMENT;
        int64_t take = tokens < n - done ? tokens : n - done;
        qmc_status st = run_step(m, s, state, inputs, done, take, n, outputs, rows, workspace, pos);
        if (st != QMC_OK) return st; /* the state's position is unchanged */
        pos += take;
        done += take;
    }
    h->pos = pos;
    return QMC_OK;
}
