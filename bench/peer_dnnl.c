/* peer_dnnl.c: the oneDNN peer, a matmul primitive through oneDNN 2.6's C
 * API (Debian's libdnnl-dev, OpenMP threading: the thread count is
 * omp_get_max_threads() when the primitive is created and run).
 *
 * int8: src u8 [M, K] x weights s8 [K, N] -> dst f32 [M, N], with per-output
 * channel output scales (mask 1 << 1); f32: all f32. The weights are given
 * as qmc holds them, [N, K] row-major (tag `ba` of the [K, N] matrix), and
 * reordered once into the primitive's preferred blocked layout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "bench.h"

struct dnnl_peer {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst;
    size_t wei_bytes;
    const char *impl;
    char impl_buf[128];
};

#define CHECK(call)                                                                                \
    do {                                                                                           \
        dnnl_status_t s_ = (call);                                                                 \
        if (s_ != dnnl_success) {                                                                  \
            fprintf(stderr, "oneDNN: %s failed (%d)\n", #call, (int)s_);                           \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* Reorders the user's [N, K] weights into wei_md's layout. */
static int reorder_weights(dnnl_peer *p, const dnnl_memory_desc_t *user_md, const void *w,
                           const dnnl_memory_desc_t *wei_md)
{
    dnnl_memory_t user = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    int rc = 1;
    CHECK(dnnl_memory_create(&user, user_md, p->engine, (void *)w));
    CHECK(dnnl_memory_create(&p->wei, wei_md, p->engine, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, user_md, p->engine, wei_md, p->engine, NULL));
    CHECK(dnnl_primitive_create(&r, rpd));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, p->wei}};
    CHECK(dnnl_primitive_execute(r, p->stream, 2, args));
    CHECK(dnnl_stream_wait(p->stream));
    p->wei_bytes = dnnl_memory_desc_get_size(wei_md);
    rc = 0;
fail:
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (user) dnnl_memory_destroy(user);
    return rc;
}

dnnl_peer *dnnl_peer_create(bool int8, int64_t m, int64_t n, int64_t k, const void *w,
                            const float *scales, const void *x)
{
    dnnl_peer *p = calloc(1, sizeof *p);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_memory_desc_t src_md, wei_md, user_md, dst_md;
    dnnl_dims_t sd = {m, k}, wd = {k, n}, dd = {m, n};
    dnnl_data_type_t st = int8 ? dnnl_u8 : dnnl_f32, wt = int8 ? dnnl_s8 : dnnl_f32;
    CHECK(dnnl_engine_create(&p->engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&p->stream, p->engine, dnnl_stream_default_flags));
    CHECK(dnnl_memory_desc_init_by_tag(&src_md, 2, sd, st, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&wei_md, 2, wd, wt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&user_md, 2, wd, wt, dnnl_ba));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    CHECK(dnnl_matmul_desc_init(&md, &src_md, &wei_md, NULL, &dst_md));
    CHECK(dnnl_primitive_attr_create(&attr));
    if (int8) CHECK(dnnl_primitive_attr_set_output_scales(attr, n, 1 << 1, scales));
    CHECK(dnnl_primitive_desc_create(&pd, &md, attr, p->engine, NULL));
    const char *impl = NULL;
    CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    snprintf(p->impl_buf, sizeof p->impl_buf, "%s", impl ? impl : "?");
    p->impl = p->impl_buf;
    const dnnl_memory_desc_t *pref = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (reorder_weights(p, &user_md, w, pref)) goto fail;
    CHECK(dnnl_memory_create(&p->src, &src_md, p->engine, (void *)x));
    CHECK(dnnl_memory_create(&p->dst, &dst_md, p->engine, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_primitive_create(&p->prim, pd));
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return p;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    dnnl_peer_free(p);
    return NULL;
}

int dnnl_peer_run(void *ctx)
{
    dnnl_peer *p = ctx;
    dnnl_exec_arg_t args[3] = {
        {DNNL_ARG_SRC, p->src}, {DNNL_ARG_WEIGHTS, p->wei}, {DNNL_ARG_DST, p->dst}};
    if (dnnl_primitive_execute(p->prim, p->stream, 3, args) != dnnl_success) return 1;
    return dnnl_stream_wait(p->stream) != dnnl_success;
}

const float *dnnl_peer_output(const dnnl_peer *p)
{
    void *h = NULL;
    dnnl_memory_get_data_handle(p->dst, &h);
    return h;
}

bench_range dnnl_peer_weights(const dnnl_peer *p)
{
    void *h = NULL;
    dnnl_memory_get_data_handle(p->wei, &h);
    return (bench_range){h, p->wei_bytes};
}

const char *dnnl_peer_impl(const dnnl_peer *p) { return p->impl; }

void dnnl_peer_free(dnnl_peer *p)
{
    if (!p) return;
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->src) dnnl_memory_destroy(p->src);
    if (p->wei) dnnl_memory_destroy(p->wei);
    if (p->dst) dnnl_memory_destroy(p->dst);
    if (p->stream) dnnl_stream_destroy(p->stream);
    if (p->engine) dnnl_engine_destroy(p->engine);
    free(p);
}

const char *dnnl_version_string(void)
{
    static char buf[64];
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, sizeof buf, "oneDNN %d.%d.%d (%s)", v->major, v->minor, v->patch,
             v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other threading");
    return buf;
}
