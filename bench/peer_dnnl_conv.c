/* peer_dnnl_conv.c: the oneDNN peer of the conv cases, a convolution
 * primitive through oneDNN 2.6's C API (OpenMP threading, created for
 * omp_get_max_threads()).
 *
 * f32: src and dst f32, weights f32; int8: src u8, weights s8, dst f32
 * with per-output-channel output scales (mask 1 << 1). Bias f32, a relu
 * post-op when the case has one. Activations are channels-last (nhwc, as
 * qmc's kernels read them) unless `blocked`, where oneDNN picks its own
 * layout (format_tag_any; the input is reordered once into it, outside the
 * timing). The weights are given as [M, C/groups, kh, kw] and reordered
 * once into the primitive's preferred layout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "bench.h"

struct dnnl_conv_peer {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, bias, dst, dst_user;
    dnnl_primitive_t dst_reorder;
    size_t wei_bytes;
    char impl[128];
};

#define CHECK(call)                                                                                \
    do {                                                                                           \
        dnnl_status_t s_ = (call);                                                                 \
        if (s_ != dnnl_success) {                                                                  \
            fprintf(stderr, "oneDNN: %s failed (%d)\n", #call, (int)s_);                           \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* One reorder from user memory into a new memory of md. */
static int reorder_into(dnnl_conv_peer *p, dnnl_memory_t from, const dnnl_memory_desc_t *md,
                        dnnl_memory_t *to)
{
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    int rc = 1;
    const dnnl_memory_desc_t *from_md;
    CHECK(dnnl_memory_get_memory_desc(from, &from_md));
    CHECK(dnnl_memory_create(to, md, p->engine, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, from_md, p->engine, md, p->engine, NULL));
    CHECK(dnnl_primitive_create(&r, rpd));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, *to}};
    CHECK(dnnl_primitive_execute(r, p->stream, 2, args));
    CHECK(dnnl_stream_wait(p->stream));
    rc = 0;
fail:
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    return rc;
}

dnnl_conv_peer *dnnl_conv_create(bool int8, bool blocked, const bench_conv_shape *s, const void *w,
                                 const float *scales, const float *bias, const void *x)
{
    dnnl_conv_peer *p = calloc(1, sizeof *p);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_memory_t user_src = NULL, user_wei = NULL;
    int64_t g = s->groups, oh = bench_conv_out(s->h, s->kh, s->stride, s->pad),
            ow = bench_conv_out(s->w, s->kw, s->stride, s->pad);
    dnnl_dims_t sd = {1, s->c, s->h, s->w}, dd = {1, s->m, oh, ow}, bd = {s->m};
    dnnl_dims_t wd = {g, s->m / g, s->c / g, s->kh, s->kw};
    dnnl_dims_t strides = {s->stride, s->stride}, dil = {0, 0}, pad = {s->pad, s->pad};
    dnnl_data_type_t st = int8 ? dnnl_u8 : dnnl_f32, wt = int8 ? dnnl_s8 : dnnl_f32;
    dnnl_memory_desc_t src_md, wei_md, bias_md, dst_md, user_src_md, user_wei_md, user_dst_md;
    CHECK(dnnl_engine_create(&p->engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&p->stream, p->engine, dnnl_stream_default_flags));
    dnnl_format_tag_t act = blocked ? dnnl_format_tag_any : dnnl_nhwc;
    CHECK(dnnl_memory_desc_init_by_tag(&src_md, 4, sd, st, act));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, dd, dnnl_f32, act));
    CHECK(dnnl_memory_desc_init_by_tag(&user_src_md, 4, sd, st, dnnl_nhwc));
    CHECK(dnnl_memory_desc_init_by_tag(&user_dst_md, 4, dd, dnnl_f32, dnnl_nhwc));
    CHECK(dnnl_memory_desc_init_by_tag(&wei_md, 5, wd, wt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&user_wei_md, 5, wd, wt, dnnl_goihw));
    CHECK(dnnl_memory_desc_init_by_tag(&bias_md, 1, bd, dnnl_f32, dnnl_a));
    dnnl_convolution_desc_t cd;
    CHECK(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                     dnnl_convolution_direct, &src_md, &wei_md,
                                                     &bias_md, &dst_md, strides, dil, pad, pad));
    CHECK(dnnl_primitive_attr_create(&attr));
    if (int8) CHECK(dnnl_primitive_attr_set_output_scales(attr, s->m, 1 << 1, scales));
    if (s->relu) {
        CHECK(dnnl_post_ops_create(&ops));
        CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
        CHECK(dnnl_primitive_attr_set_post_ops(attr, ops));
    }
    CHECK(dnnl_primitive_desc_create(&pd, &cd, attr, p->engine, NULL));
    const char *impl = NULL;
    CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    snprintf(p->impl, sizeof p->impl, "%s%s", impl ? impl : "?", blocked ? " (own layout)" : "");
    const dnnl_memory_desc_t *pw = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *ps = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *pdst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    CHECK(dnnl_memory_create(&user_wei, &user_wei_md, p->engine, (void *)w));
    CHECK(dnnl_memory_create(&user_src, &user_src_md, p->engine, (void *)x));
    if (reorder_into(p, user_wei, pw, &p->wei) || reorder_into(p, user_src, ps, &p->src)) goto fail;
    p->wei_bytes = dnnl_memory_desc_get_size(pw);
    CHECK(dnnl_memory_create(&p->bias, &bias_md, p->engine, (void *)bias));
    CHECK(dnnl_memory_create(&p->dst, pdst, p->engine, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_memory_create(&p->dst_user, &user_dst_md, p->engine, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_primitive_create(&p->prim, pd));
    {
        dnnl_primitive_desc_t rpd = NULL;
        CHECK(dnnl_reorder_primitive_desc_create(&rpd, pdst, p->engine, &user_dst_md, p->engine,
                                                 NULL));
        dnnl_status_t rs = dnnl_primitive_create(&p->dst_reorder, rpd);
        dnnl_primitive_desc_destroy(rpd);
        CHECK(rs);
    }
    dnnl_memory_destroy(user_wei);
    dnnl_memory_destroy(user_src);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    if (ops) dnnl_post_ops_destroy(ops);
    return p;
fail:
    if (user_wei) dnnl_memory_destroy(user_wei);
    if (user_src) dnnl_memory_destroy(user_src);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (ops) dnnl_post_ops_destroy(ops);
    dnnl_conv_free(p);
    return NULL;
}

int dnnl_conv_run(void *ctx)
{
    dnnl_conv_peer *p = ctx;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, p->src},
                               {DNNL_ARG_WEIGHTS, p->wei},
                               {DNNL_ARG_BIAS, p->bias},
                               {DNNL_ARG_DST, p->dst}};
    if (dnnl_primitive_execute(p->prim, p->stream, 4, args) != dnnl_success) return 1;
    return dnnl_stream_wait(p->stream) != dnnl_success;
}

const float *dnnl_conv_output(dnnl_conv_peer *p)
{
    /* the output in nhwc (a reorder from the primitive's layout) */
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, p->dst}, {DNNL_ARG_TO, p->dst_user}};
    if (dnnl_primitive_execute(p->dst_reorder, p->stream, 2, args) != dnnl_success ||
        dnnl_stream_wait(p->stream) != dnnl_success)
        return NULL;
    void *h = NULL;
    dnnl_memory_get_data_handle(p->dst_user, &h);
    return h;
}

const char *dnnl_conv_impl(const dnnl_conv_peer *p) { return p->impl; }

void dnnl_conv_free(dnnl_conv_peer *p)
{
    if (!p) return;
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->dst_reorder) dnnl_primitive_destroy(p->dst_reorder);
    dnnl_memory_t ms[5] = {p->src, p->wei, p->bias, p->dst, p->dst_user};
    for (int i = 0; i < 5; i++)
        if (ms[i]) dnnl_memory_destroy(ms[i]);
    if (p->stream) dnnl_stream_destroy(p->stream);
    if (p->engine) dnnl_engine_destroy(p->engine);
    free(p);
}
