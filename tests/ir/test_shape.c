/* test_shape.c: shape and dtype inference on graphs built from source text
 * (fe_parse_text + pass_build_graph, no weights file: weights are inputs),
 * and the exact errors for operands that do not fit. */
#include "unit.h"

#include <math.h>

#include "passes.h"

static sup_arena arena;

static ir_graph *build(const char *src)
{
    fe_node *file = fe_parse_text(&arena, "s.qm", src, strlen(src));
    assert_non_null(file);
    pass_build_options opts = {0};
    return pass_build_graph(&arena, file, &opts);
}

/* Builds a model and checks the graph is valid before and after the pass. */
static ir_graph *build_ok(const char *src)
{
    capture c;
    capture_begin(&c);
    ir_graph *g = build(src);
    if (g) {
        assert_true(ir_verify(g, "build"));
        assert_true(pass_infer_shapes(g));
        assert_true(ir_verify(g, "shape"));
    }
    assert_captured(&c, "");
    assert_non_null(g);
    return g;
}

static const ir_node *node(const ir_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0) return &g->nodes[i];
    fail_msg("no node '%s'", name);
    return NULL;
}

static void assert_shape(const ir_graph *g, const char *name, const char *expected)
{
    const ir_node *n = node(g, name);
    char buf[RT_SHAPE_STR_MAX];
    assert_string_equal(rt_shape_str(n->dtype, n->rank, n->shape, buf, sizeof buf), expected);
}

/* Expects the model to fail with exactly this first line of diagnostics. */
static void expect_error(const char *src, const char *first_line)
{
    capture c;
    capture_begin(&c);
    assert_null(build(src));
    char *got = capture_end(&c);
    char *nl = strchr(got, '\n');
    if (nl) *nl = 0;
    assert_string_equal(got, first_line);
    free(got);
}

#define MODEL(inputs, body)                                                                        \
    "model m {\n" inputs "\noutput y: f32[1]\n" body                                               \
    "\ny = reshape(slice(reshape(z, [-1]), 0, 0, 1), [1])\n}\n"

static void test_broadcasting(void **state)
{
    (void)state;
    ir_graph *g = build_ok(MODEL("input a: f32[4, 1, 3] input b: f32[2, 1] input c: f32[3]",
                                 "z = a + b\nu = c * a\nv = 2 - c\nw = a / 0.5\nt = -c"));
    assert_shape(g, "z", "f32[4, 2, 3]");
    assert_shape(g, "u", "f32[4, 1, 3]");
    assert_shape(g, "v", "f32[3]");
    assert_shape(g, "v.const", "f32[]");
    assert_shape(g, "w", "f32[4, 1, 3]");
    assert_shape(g, "t", "f32[3]");
    assert_int_equal(node(g, "t")->op, IR_OP_MUL); /* -x is x * -1 */
    g = build_ok(MODEL("input a: f32[1, 5] input b: f32[7, 1]",
                       "z = add(a, b)\nq = sub(a, b)\nr = mul(b, a)\ns = div(a, a)"));
    assert_shape(g, "z", "f32[7, 5]");
    assert_shape(g, "r", "f32[7, 5]");
    assert_shape(g, "s", "f32[1, 5]");
    expect_error(MODEL("input a: f32[2, 3] input b: f32[3, 2]", "z = a + b"),
                 "s.qm:4:7: error: add: shapes f32[2, 3] and f32[3, 2] do not broadcast");
    expect_error(MODEL("input a: f32[2, 3] input i: i32[3]", "z = a * i"),
                 "s.qm:4:7: error: mul needs a float tensor, but its operand is i32");
}

static void test_matmul(void **state)
{
    (void)state;
    ir_graph *g =
        build_ok(MODEL("input a: f32[2, 3] input b: f32[3, 4] input v: f32[3] input w: f32[2]",
                       "z = matmul(a, b)\nvm = matmul(v, b)\nmv = matmul(a, v)\nvv = matmul(v, v)\n"
                       "wm = matmul(w, a)"));
    assert_shape(g, "z", "f32[2, 4]");
    assert_shape(g, "vm", "f32[4]");
    assert_shape(g, "mv", "f32[2]");
    assert_shape(g, "vv", "f32[]");
    assert_shape(g, "wm", "f32[3]");
    /* batch dimensions broadcast, the matrix dimensions do not */
    g = build_ok(MODEL(
        "input a: f32[5, 1, 2, 3] input b: f32[4, 3, 6] input v: f32[3]",
        "z = matmul(a, b)\nbv = matmul(transpose(b), reshape(v, [3, 1]))\nav = matmul(a, v)"));
    assert_shape(g, "z", "f32[5, 4, 2, 6]");
    assert_shape(g, "bv", "f32[4, 6, 1]");
    assert_shape(g, "av", "f32[5, 1, 2]");
    expect_error(
        MODEL("input a: f32[2, 3] input b: f32[4, 5]", "z = matmul(a, b)"),
        "s.qm:4:5: error: matmul: the left operand has 3 columns but the right one has 4 rows");
    expect_error(MODEL("input a: f32[2, 2, 3] input b: f32[3, 3, 4]", "z = matmul(a, b)"),
                 "s.qm:4:5: error: matmul: the batch dimensions do not broadcast");
    expect_error(MODEL("input a: f32[2, 3]", "z = matmul(a, 2)"),
                 "s.qm:4:5: error: matmul needs operands of at least one dimension");
}

static void test_linear_norms_activations(void **state)
{
    (void)state;
    ir_graph *g =
        build_ok(MODEL("input x: f32[2, 5, 4] input w: f32[3, 4] input b: f32[3] input g: f32[4]",
                       "l = linear(x, w, b)\nln = layernorm(x, g, g)\nrn = rmsnorm(x, g)\n"
                       "r = relu(x)\ne = gelu(l)\ns = silu(l)\nt = tanh(l)\nsm = softmax(l)\n"
                       "z = softmax(l, axis=-2)"));
    assert_shape(g, "l", "f32[2, 5, 3]");
    assert_shape(g, "ln", "f32[2, 5, 4]");
    assert_true(node(g, "ln")->attr.eps == 1e-5f);
    assert_true(node(g, "rn")->attr.eps == 1e-6f);
    assert_shape(g, "e", "f32[2, 5, 3]");
    assert_int_equal(node(g, "sm")->attr.axis, 2);
    assert_int_equal(node(g, "z")->attr.axis, 1);
    g = build_ok(MODEL("input x: f32[4] input g: f32[4]",
                       "z = layernorm(x, g, g, eps=0.001)\nq = rmsnorm(x, g, eps=1)"));
    assert_true(node(g, "z")->attr.eps == 0.001f);
    assert_true(node(g, "q")->attr.eps == 1.0f);
    expect_error(MODEL("input x: f32[2, 5] input w: f32[3, 4]", "z = linear(x, w)"),
                 "s.qm:4:5: error: linear: the input has 5 features but the weight expects 4");
    expect_error(MODEL("input x: f32[4] input w: f32[3, 4] input b: f32[4]", "z = linear(x, w, b)"),
                 "s.qm:4:5: error: linear: the bias must have shape [3]");
    expect_error(MODEL("input x: f32[4] input w: f32[4]", "z = linear(x, w)"),
                 "s.qm:4:5: error: linear needs a 2-D weight [out, in], not 1-D");
    expect_error(
        MODEL("input x: f32[2, 4] input g: f32[2]", "z = rmsnorm(x, g)"),
        "s.qm:4:5: error: rmsnorm: the weight must have shape [4], the size of the last axis");
    expect_error(MODEL("input x: f32[4] input g: f32[4]", "z = layernorm(x, g, g, eps=-1)"),
                 "s.qm:4:28: error: eps must be a finite non-negative number");
    expect_error(MODEL("input x: f32[4]", "z = softmax(x, axis=1)"),
                 "s.qm:4:21: error: axis 1 is out of range for a tensor of 1 dimensions");
}

static void test_reshape_transpose(void **state)
{
    (void)state;
    ir_graph *g =
        build_ok(MODEL("input x: f32[4, 6] input i: i32[2, 3]",
                       "z = reshape(x, [-1, 3])\nr = reshape(x, [2, -1, 4])\ns = reshape(x, [24])\n"
                       "ri = reshape(i, [6])\nt = transpose(r)\np = transpose(r, [2, 0, 1])\n"
                       "q = transpose(r, [-1, 0, 1])\nti = transpose(i)"));
    assert_shape(g, "z", "f32[8, 3]");
    assert_shape(g, "r", "f32[2, 3, 4]");
    assert_shape(g, "s", "f32[24]");
    assert_shape(g, "ri", "i32[6]");
    assert_shape(g, "t", "f32[2, 4, 3]");
    assert_shape(g, "p", "f32[4, 2, 3]");
    assert_shape(g, "q", "f32[4, 2, 3]");
    assert_int_equal(node(g, "q")->attr.perm[0], 2);
    assert_shape(g, "ti", "i32[3, 2]");
    expect_error(MODEL("input x: f32[4, 6]", "z = reshape(x, [5, -1])"),
                 "s.qm:4:16: error: cannot infer the -1 dimension: 24 elements do not divide by 5");
    expect_error(MODEL("input x: f32[4, 6]", "z = reshape(x, [-1, -1])"),
                 "s.qm:4:21: error: a dimension must be positive (or one -1)");
    expect_error(MODEL("input x: f32[4, 6]", "z = reshape(x, [0, 3])"),
                 "s.qm:4:17: error: a dimension must be positive (or one -1)");
    expect_error(
        MODEL("input x: f32[4, 6]", "z = reshape(x, [5, 5])"),
        "s.qm:4:5: error: reshape from f32[4, 6] to f32[5, 5] changes the number of elements");
    expect_error(
        MODEL("input x: f32[4, 6]", "z = reshape(x, [9007199254740992, 9007199254740992])"),
        "s.qm:4:16: error: the new shape has more than 1099511627776 elements");
    expect_error(MODEL("input x: f32[4, 6]", "z = reshape(x, 24)"),
                 "s.qm:4:16: error: the new shape must be a list of integers like [2, 64]");
    expect_error(MODEL("input x: f32[4, 6]", "z = transpose(x, [0, 0])"),
                 "s.qm:4:5: error: transpose: the permutation is not a permutation of 2 axes");
    expect_error(MODEL("input x: f32[4, 6]", "z = transpose(x, [1])"),
                 "s.qm:4:18: error: the permutation has 1 entries but the tensor has 2 dimensions");
    expect_error(MODEL("input x: f32[4]", "z = transpose(x)"),
                 "s.qm:4:5: error: transpose needs at least 2 dimensions");
}

static void test_slice_concat(void **state)
{
    (void)state;
    ir_graph *g =
        build_ok(MODEL("input x: f32[4, 6] input a: f32[2, 3] input b: f32[4, 3]",
                       "z = slice(x, -1, -3, -1)\nf = slice(x, 0, 1, 4)\nc = concat(a, b, axis=0)\n"
                       "l = concat([b, b, b])\nn = concat(b, axis=-1)"));
    const ir_node *z = node(g, "z");
    assert_shape(g, "z", "f32[4, 2]");
    assert_int_equal(z->attr.axis, 1);
    assert_int_equal(z->attr.start, 3);
    assert_int_equal(z->attr.end, 5);
    assert_shape(g, "f", "f32[3, 6]");
    assert_shape(g, "c", "f32[6, 3]");
    assert_shape(g, "l", "f32[4, 9]");
    assert_int_equal(node(g, "l")->n_inputs, 3);
    assert_shape(g, "n", "f32[4, 3]");
    expect_error(MODEL("input x: f32[4, 6]", "z = slice(x, 1, 4, 4)"),
                 "s.qm:4:5: error: slice: [4, 4) is empty or outside axis 1 of size 6");
    expect_error(MODEL("input x: f32[4, 6]", "z = slice(x, 1, -9, 2)"),
                 "s.qm:4:5: error: slice: [-3, 2) is empty or outside axis 1 of size 6");
    expect_error(MODEL("input x: f32[4, 6]", "z = slice(x, 2, 0, 1)"),
                 "s.qm:4:14: error: axis 2 is out of range for a tensor of 2 dimensions");
    expect_error(MODEL("input a: f32[2, 3] input b: f32[2, 4]", "z = concat(a, b, axis=0)"),
                 "s.qm:4:5: error: concat: operand 2 does not match operand 1 outside axis 0");
    expect_error(MODEL("input a: f32[2, 3]", "z = concat(axis=0)"),
                 "s.qm:4:5: error: concat needs at least one tensor");
    expect_error(
        MODEL("input a: f32[2]", "z = a\nfor i in 0..60 {\nz = concat(z, z)\n}"),
        "s.qm:6:5: error: the result of concat would have more than 1099511627776 elements");
}

static void test_attention_embedding(void **state)
{
    (void)state;
    ir_graph *g =
        build_ok(MODEL("input q: f32[8, 12] input k: f32[10, 12] input v: f32[10, 6]\n"
                       "input t: f32[10, 4] input i: i32[2, 3]",
                       "z = attention(q, k, v, heads=3)\nc = attention(k, k, v, causal=true)\n"
                       "s = attention(q, k, v, scale=0.25)\ne = embedding(t, i)"));
    const ir_node *z = node(g, "z");
    assert_shape(g, "z", "f32[8, 6]");
    assert_int_equal(z->attr.heads, 3);
    assert_false(z->attr.causal);
    assert_true(z->attr.scale == 0.5f); /* 1/sqrt(12/3) */
    assert_true(node(g, "c")->attr.causal);
    assert_true(node(g, "c")->attr.scale == (float)(1 / sqrt(12.0)));
    assert_true(node(g, "s")->attr.scale == 0.25f);
    assert_shape(g, "e", "f32[2, 3, 4]");
    expect_error(
        MODEL("input q: f32[8, 12] input k: f32[4, 12]", "z = attention(q, k, k, causal=true)"),
        "s.qm:4:5: error: causal attention needs at least as many keys as queries");
    expect_error(MODEL("input q: f32[8, 12] input k: f32[8, 10]", "z = attention(q, k, k)"),
                 "s.qm:4:5: error: attention: q and k must have the same features and k and v the "
                 "same tokens");
    expect_error(MODEL("input q: f32[8, 12]", "z = attention(q, q, q, heads=0)"),
                 "s.qm:4:30: error: heads must be between 1 and 4096");
    expect_error(MODEL("input q: f32[8, 12]", "z = attention(q, q, q, causal=1)"),
                 "s.qm:4:31: error: causal must be true or false");
    expect_error(MODEL("input q: f32[2, 8, 12]", "z = attention(q, q, q)"),
                 "s.qm:4:5: error: attention needs 2-D q, k and v [tokens, features]");
    expect_error(MODEL("input t: f32[10] input i: i32[3]", "z = embedding(t, i)"),
                 "s.qm:4:5: error: embedding needs a 2-D float table [rows, dim]");
}

static void test_values_and_names(void **state)
{
    (void)state;
    /* constants fold; lists of tensors get named nodes; functions inline
     * with their results named after the function, inner nodes after the
     * prefix argument */
    ir_graph *g = build_ok("const D = 2 * 3 + 1\n"
                           "const H = D / 2\n"
                           "def f(x, s) { h = relu(x) return h * s }\n"
                           "model m {\n"
                           "input x: f32[7]\n"
                           "output y: f32[7]\n"
                           "l = [tanh(x), x]\n"
                           "y = f(concat(l), H)\n"
                           "y = slice(y, 0, 0, D)\n"
                           "}\n");
    assert_shape(g, "l.tanh", "f32[7]");
    assert_shape(g, "y.concat", "f32[14]");
    assert_shape(g, "h", "f32[14]");
    assert_shape(g, "f", "f32[14]");
    assert_true(node(g, "f.const")->attr.value == 3.5f);
    assert_shape(g, "y", "f32[7]");
    assert_int_equal(g->outputs[0].node, node(g, "y") - g->nodes);
    expect_error("model m { input x: f32[4]\noutput y: f32[4]\ny = x + z\n}",
                 "s.qm:3:9: error: unknown identifier 'z'");
    expect_error("model m { input x: f32[4]\noutput y: f32[4]\ny = sqrt(-1)\n}",
                 "s.qm:3:10: error: sqrt of a negative number");
    expect_error(
        "model m { input x: f32[4]\noutput y: f32[4]\ny = x + \"s\"\n}",
        "s.qm:3:9: error: an operand of an arithmetic operator must be a tensor, not a string");
    expect_error("model m { input x: f32[4]\noutput y: f32[4]\ny = relu(true)\n}",
                 "s.qm:3:10: error: the input must be a tensor, not a boolean");
    expect_error("model m { input x: f32[4]\noutput y: f32[4]\nfor x in 0..2 { }\n}",
                 "s.qm:3:5: error: the loop variable 'x' shadows a name in use");
}

static int teardown(void **state)
{
    (void)state;
    sup_arena_free(&arena);
    sup_diag_reset();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcasting),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_linear_norms_activations),
        cmocka_unit_test(test_reshape_transpose),
        cmocka_unit_test(test_slice_concat),
        cmocka_unit_test(test_attention_embedding),
        cmocka_unit_test(test_values_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
