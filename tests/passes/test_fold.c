/* test_fold.c: the channel-scaling pass (fold_scales.c) on the two example
 * language models. With the first block's matrices at int4:awq (tiny-gpt:
 * scales folded into the layer norms and the value projection) or
 * int8:a8:smooth (llama-dev: into the RMS norms, SwiGLU's up projection
 * and, through grouped-query attention, the value projection; the
 * embedding tied to the output cannot take them), the folded model computed in f32 gives
 * the outputs of the model before folding (the scales cancel), at least one
 * activation was scaled, every reader of a folded activation says where its
 * scales went, the others why none could be folded; and the search gives
 * the same scales on every run. */
#include "unit.h"

#include <math.h>

#include "passes.h"

static const char *source(sup_arena *a, const char *rel)
{
    const char *src = getenv("QMC_SOURCE");
    assert_non_null(src);
    return sup_arena_printf(a, "%s/%s", src, rel);
}

/* The model's logits on calibration sample 3 (of 8, or 4), in f32 (no weight quantized,
 * no activation rounded). */
static float *logits(sup_arena *a, ir_graph *g, const pass_calib_data *d)
{
    interp *it = interp_new(a, g);
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].is_matrix) interp_set_act8(it, i, false, 0); /* f32 throughout */
    assert_true(interp_files_load_slot(g, it, d->ins, d->n, 3, 0));
    assert_true(interp_run(it));
    int64_t n = ir_node_count(&g->nodes[g->outputs[0].node]);
    float *y = sup_arena_alloc(a, sizeof(float) * (size_t)n);
    memcpy(y, interp_output(it, 0), sizeof(float) * (size_t)n);
    return y;
}

/* Folds spec's scales into the model; returns how many readers were scaled. */
static int fold(sup_arena *a, const char *model, const char *weights, const char *calib,
                const char *spec_text, const char **notes)
{
    pass_options po = {0};
    sup_diag_reset();
    po.weights_override = weights ? source(a, weights) : NULL;
    ir_graph *g = pass_pipeline_load(a, source(a, model), &po);
    assert_non_null(g);
    pass_prec_options o = {.n_calib = 1};
    o.calib[0] = sup_arena_printf(a, "idx=%s", source(a, calib));
    pass_calib_data d;
    pass_spec spec;
    assert_true(pass_spec_parse(a, spec_text, &spec));
    assert_true(pass_calib_open(g, &o, &d));
    assert_true(pass_plan_precision(g, &spec, d.samples));
    float *before = logits(a, g, &d);
    assert_true(pass_calibrate(g, &d, g->selection->second_moments));
    assert_true(pass_fold_scales(g, &d));
    assert_true(ir_verify(g, "fold"));
    float *after = logits(a, g, &d);
    pass_calib_close(&d);
    int64_t n = ir_node_count(&g->nodes[g->outputs[0].node]);
    double worst = 0, big = 0;
    for (int64_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)after[i] - before[i]));
        big = fmax(big, fabs((double)before[i]));
    }
    print_message("%s: largest change of a logit %.3g (largest logit %.3g)\n", model, worst, big);
    assert_true(worst <= 1e-4 * big);
    int scaled = 0;
    const char *all = "";
    for (int i = 0; i < g->selection->n; i++) {
        const ir_decision *dd = &g->selection->d[i];
        if (!dd->scaling) continue; /* f32: nothing asked */
        scaled += strstr(dd->scaling, ": alpha ") != NULL;
        all = sup_arena_printf(a, "%s%s: %.*s\n", all, g->nodes[dd->node].name,
                               (int)strcspn(dd->scaling, "("), dd->scaling);
    }
    *notes = all;
    return scaled;
}

static void test_awq_tiny_gpt(void **state)
{
    (void)state;
    sup_arena a = {0};
    const char *notes, *again;
    int scaled = fold(&a, "examples/tiny-gpt/tiny-gpt.qm", "examples/tiny-gpt/lm-dev.safetensors",
                      "tests/data/tiny_gpt_calib8.npy", "f32,blocks.0.*=int4:awq", &notes);
    print_message("%s", notes);
    assert_true(scaled >= 3);
    assert_non_null(strstr(notes, "blocks.0.q.weight: awq: alpha"));
    assert_non_null(strstr(notes, "scales divided into 'blocks.0.ln1.weight'"));
    /* the attention's output: into the value projection's rows */
    assert_non_null(strstr(notes, "blocks.0.o.weight: awq: alpha"));
    assert_non_null(strstr(notes, "scales divided into the rows of 'blocks.0.v.weight'"));
    assert_non_null(strstr(
        notes, "blocks.0.fc2.weight: awq not applied: its input comes from gelu, which has no "
               "weight to take the scales"));
    fold(&a, "examples/tiny-gpt/tiny-gpt.qm", "examples/tiny-gpt/lm-dev.safetensors",
         "tests/data/tiny_gpt_calib8.npy", "f32,blocks.0.*=int4:awq", &again);
    assert_string_equal(notes, again); /* the same strengths on every run */
    sup_arena_free(&a);
}

static void test_smooth_llama(void **state)
{
    (void)state;
    sup_arena a = {0};
    const char *notes;
    int scaled = fold(
        &a, "examples/llama/llama.qm", NULL, "tests/data/llama_calib4.npy",
        "f32,model.layers.0.*=int8:a8:smooth,model.embed_tokens.weight=int8:a8:smooth", &notes);
    print_message("%s", notes);
    assert_true(scaled >= 3);
    assert_non_null(strstr(notes, "scales divided into the rows of "
                                  "'model.layers.0.mlp.up_proj.weight'"));
    /* grouped-query attention: two query heads share each value head's scales */
    assert_non_null(strstr(notes, "model.layers.0.self_attn.o_proj.weight: smooth: alpha"));
    assert_non_null(strstr(notes, "scales divided into the rows of "
                                  "'model.layers.0.self_attn.v_proj.weight'"));
    assert_non_null(strstr(notes, "model.embed_tokens.weight: smooth not applied: its weight "
                                  "'model.embed_tokens.weight' is used elsewhere too"));
    sup_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_awq_tiny_gpt),
        cmocka_unit_test(test_smooth_llama),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
