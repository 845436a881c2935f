/* cmd_quantize.c: `qmc quantize IN.npy --format F [options]` quantizes a
 * float32 tensor to one of the quantized formats and reports what that does
 * to it.
 *
 * With --scale (and --zero-point) the codes and dequantized values are those
 * of ONNX QuantizeLinear followed by DequantizeLinear with the same axis and
 * block size; without, qmc chooses the parameters (min-max or MSE clipping).
 * Everything is checked and computed before anything is written: an error
 * exits 1 and leaves no output file behind. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "quant.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmc quantize IN.npy --format F [--axis A] [--block B]\n"
            "                    [--symmetric|--asymmetric] [--clip minmax|mse] [--scale-type "
            "f32|f16]\n"
            "                    [--scale S.npy [--zero-point Z.npy]] [--no-saturate]\n"
            "                    [--codes OUT.npy] [--dequant OUT.npy]\n\n"
            "Quantizes a float32 tensor and prints one line: format, granularity, bits per\n"
            "element (scales and zero points included), RMSE, max |error| and SQNR.\n"
            "  --format F        int8 uint8 int4 uint4 fp8e4m3 fp8e5m2\n"
            "  --axis A          one scale per index along axis A (negative counts from the end)\n"
            "  --block B         one scale per B consecutive elements along the axis (default\n"
            "                    axis 1, as in ONNX; 0 for a 1-D tensor); B must divide it\n"
            "                    (neither: one scale for the whole tensor)\n"
            "  --scale S.npy     use these scales (float32 or float16, ONNX's layout): the result\n"
            "                    is ONNX QuantizeLinear + DequantizeLinear\n"
            "  --zero-point Z.npy  zero points, the shape of S; int8 for int8/int4, uint8 for\n"
            "                    uint8/uint4; FP8 zero points must be 0\n"
            "  --symmetric       zero point 0 (the middle code for uint formats); the default for\n"
            "                    signed formats and the only choice for FP8\n"
            "  --asymmetric      scale and zero point from the range, 0.0 exact; uint default\n"
            "  --clip minmax|mse the data's range (default), or the clipped range with the least\n"
            "                    mean squared error per group\n"
            "  --scale-type T    store chosen scales as f32 (default) or f16\n"
            "  --no-saturate     FP8: out-of-range values become NaN (E4M3) or inf (E5M2)\n"
            "                    instead of ±max; integer formats always saturate\n"
            "  --codes OUT.npy   the codes, one per element: int8 for int8/int4, uint8 for\n"
            "                    uint8/uint4, the raw byte for FP8\n"
            "  --dequant OUT.npy the dequantized values (float32)\n");
}

typedef struct quant_args {
    const char *in, *format, *axis, *block, *clip, *scale, *zero_point, *scale_type;
    const char *codes, *dequant;
    int symmetric; /* -1 not given */
    bool no_saturate;
} quant_args;

static bool parse_args(int argc, char **argv, quant_args *a)
{
    static const char *const known[] = {"--format",     "--axis",
                                        "--block",      "--symmetric",
                                        "--asymmetric", "--clip",
                                        "--scale",      "--zero-point",
                                        "--scale-type", "--no-saturate",
                                        "--codes",      "--dequant",
                                        "--help",       NULL};
    cli c = {argc, argv, 1, "quantize", false};
    a->symmetric = -1;
    while (c.i < c.argc && !c.failed) {
        if (cli_flag(&c, "--help") || cli_flag(&c, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (cli_value(&c, "--format", &a->format) || cli_value(&c, "--axis", &a->axis) ||
            cli_value(&c, "--block", &a->block) || cli_value(&c, "--clip", &a->clip) ||
            cli_value(&c, "--scale", &a->scale) || cli_value(&c, "--zero-point", &a->zero_point) ||
            cli_value(&c, "--scale-type", &a->scale_type) || cli_value(&c, "--codes", &a->codes) ||
            cli_value(&c, "--dequant", &a->dequant))
            continue;
        if (cli_flag(&c, "--symmetric")) {
            a->symmetric = 1;
            continue;
        }
        if (cli_flag(&c, "--asymmetric")) {
            a->symmetric = 0;
            continue;
        }
        if (cli_flag(&c, "--no-saturate")) {
            a->no_saturate = true;
            continue;
        }
        if (c.failed) break;
        if (c.argv[c.i][0] == '-' || a->in) {
            cli_unknown(&c, known);
            continue;
        }
        a->in = c.argv[c.i++];
    }
    if (c.failed) return false;
    if (!a->in) {
        sup_error_plain("no input file (see 'qmc quantize --help')");
        return false;
    }
    if (!a->format) {
        sup_error_plain("--format is required (see 'qmc quantize --help')");
        return false;
    }
    return true;
}

static bool parse_int(const char *opt, const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) {
        sup_error_plain("%s takes an integer, not '%s'", opt, s);
        return false;
    }
    *out = v;
    return true;
}

/* ---- input files ---------------------------------------------------------- */

typedef struct npy_file {
    const char *path;
    rt_npy_header h;
    void *data; /* an aligned copy of the elements */
} npy_file;

static bool load_npy(sup_arena *arena, const char *path, npy_file *f)
{
    rt_mapped_file m;
    char err[256];
    f->path = path;
    if (rt_file_map(path, &m, err, sizeof err) != QMC_OK) {
        sup_error_plain("cannot read '%s': %s", path, err);
        return false;
    }
    if (rt_npy_parse(m.data, m.size, &f->h, err, sizeof err) != QMC_OK) {
        rt_file_unmap(&m);
        sup_error_plain("'%s' is not a valid .npy file: %s", path, err);
        return false;
    }
    f->data = sup_arena_alloc(arena, f->h.data_bytes + 16);
    if (f->h.data_bytes) memcpy(f->data, m.data + f->h.data_offset, f->h.data_bytes);
    rt_file_unmap(&m);
    return true;
}

static const char *shape_str(sup_arena *arena, int rank, const int64_t *shape)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "(");
    for (int d = 0; d < rank; d++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%lld%s", (long long)shape[d],
                      rank == 1      ? ","
                      : d + 1 < rank ? ", "
                                     : "");
    snprintf(buf + n, sizeof buf - (size_t)n, ")");
    return sup_arena_strdup(arena, buf);
}

static bool same_shape(const rt_npy_header *h, int rank, const int64_t *shape)
{
    if (h->rank != rank) return false;
    for (int d = 0; d < rank; d++)
        if (h->shape[d] != shape[d]) return false;
    return true;
}

/* ---- parameters from --scale / --zero-point ------------------------------ */

static bool read_scales(sup_arena *arena, const npy_file *s, q_params *p)
{
    if (s->h.dtype != QMC_DTYPE_F32 && s->h.dtype != QMC_DTYPE_F16) {
        sup_error_plain("'%s': scales must be float32 or float16, not %s", s->path,
                        qmc_dtype_name(s->h.dtype));
        return false;
    }
    p->scale_dtype = s->h.dtype;
    p->scales = sup_arena_alloc(arena, sizeof(float) * (size_t)s->h.count + 4);
    for (int64_t i = 0; i < s->h.count; i++) {
        float v = s->h.dtype == QMC_DTYPE_F32 ? ((const float *)s->data)[i]
                                              : q_f16_to_f32(((const uint16_t *)s->data)[i]);
        if (!isfinite(v) || v == 0) {
            sup_error_plain("'%s': scale %lld is %g; scales must be finite and nonzero", s->path,
                            (long long)i, v);
            return false;
        }
        p->scales[i] = v;
    }
    return true;
}

/* Granularity as ONNX finds it: --block blocks; a single scale is per
 * tensor; otherwise one scale per index along the axis. */
static bool scale_layout(sup_arena *arena, const npy_file *x, const npy_file *s, q_params *p)
{
    char err[256];
    p->granularity = p->block ? Q_GRAN_BLOCK : s->h.count == 1 ? Q_GRAN_TENSOR : Q_GRAN_AXIS;
    if (!q_params_layout(p, x->h.rank, x->h.shape, err, sizeof err)) {
        sup_error_plain("%s", err);
        return false;
    }
    if (p->granularity == Q_GRAN_TENSOR || same_shape(&s->h, p->scale_rank, p->scale_shape))
        return true;
    const char *why =
        p->granularity == Q_GRAN_BLOCK
            ? sup_arena_printf(arena, "axis %d and block %lld", p->axis, (long long)p->block)
            : sup_arena_printf(arena, "axis %d", p->axis);
    sup_error_plain("'%s' has shape %s, which does not fit x of shape %s with %s: expected %s%s",
                    s->path, shape_str(arena, s->h.rank, s->h.shape),
                    shape_str(arena, x->h.rank, x->h.shape), why,
                    shape_str(arena, p->scale_rank, p->scale_shape),
                    p->granularity == Q_GRAN_AXIS ? " or a single scale" : "");
    return false;
}

static bool read_zero_points(sup_arena *arena, const npy_file *z, const npy_file *s, q_params *p)
{
    if (!same_shape(&z->h, s->h.rank, s->h.shape)) {
        sup_error_plain("'%s' has shape %s; zero points have the shape of the scales, %s", z->path,
                        shape_str(arena, z->h.rank, z->h.shape),
                        shape_str(arena, s->h.rank, s->h.shape));
        return false;
    }
    if (q_format_is_fp8(p->format)) {
        /* ONNX DequantizeLinear rejects nonzero FP8 zero points; accept the
         * raw codes (uint8) or the decoded values (float32) */
        bool ok = z->h.dtype == QMC_DTYPE_U8 || z->h.dtype == QMC_DTYPE_F32;
        const uint8_t *b = z->data;
        for (size_t i = 0; ok && i < z->h.data_bytes; i++) ok = b[i] == 0;
        if (!ok) {
            sup_error_plain("'%s': %s zero points must be 0 (uint8 codes or float32)", z->path,
                            q_format_name(p->format));
            return false;
        }
        return true;
    }
    qmc_dtype want = q_format_code_dtype(p->format);
    if (z->h.dtype != want) {
        sup_error_plain("'%s': %s zero points must be %s, not %s", z->path,
                        q_format_name(p->format), qmc_dtype_name(want), qmc_dtype_name(z->h.dtype));
        return false;
    }
    p->zero_points = sup_arena_alloc(arena, sizeof(int32_t) * (size_t)z->h.count + 4);
    for (int64_t i = 0; i < z->h.count; i++) {
        int32_t v =
            want == QMC_DTYPE_I8 ? ((const int8_t *)z->data)[i] : ((const uint8_t *)z->data)[i];
        if (v < q_format_qmin(p->format) || v > q_format_qmax(p->format)) {
            sup_error_plain("'%s': zero point %lld is %d, outside the %s range [%d, %d]", z->path,
                            (long long)i, v, q_format_name(p->format), q_format_qmin(p->format),
                            q_format_qmax(p->format));
            return false;
        }
        p->zero_points[i] = v;
    }
    return true;
}

static bool params_from_files(sup_arena *arena, const quant_args *a, const npy_file *x, q_params *p)
{
    npy_file s, z;
    if (!load_npy(arena, a->scale, &s) || !read_scales(arena, &s, p)) return false;
    if (!scale_layout(arena, x, &s, p)) return false;
    if (a->zero_point &&
        (!load_npy(arena, a->zero_point, &z) || !read_zero_points(arena, &z, &s, p)))
        return false;
    return true;
}

/* ---- parameters chosen from the data ---------------------------------------- */

static bool choose_params(sup_arena *arena, const quant_args *a, const npy_file *x, q_params *p)
{
    const float *v = x->data;
    for (int64_t i = 0; i < x->h.count; i++)
        if (!isfinite(v[i])) {
            sup_error_plain("'%s': element %lld is %g; qmc chooses parameters only for "
                            "finite data (give --scale to quantize it as ONNX would)",
                            x->path, (long long)i, v[i]);
            return false;
        }
    q_choice c = {.format = p->format,
                  .axis = p->axis,
                  .block = p->block,
                  .granularity = p->block  ? Q_GRAN_BLOCK
                                 : a->axis ? Q_GRAN_AXIS
                                           : Q_GRAN_TENSOR,
                  .symmetric = a->symmetric >= 0
                                   ? a->symmetric
                                   : !q_format_is_int(p->format) || q_format_qmin(p->format) < 0,
                  .clip = a->clip && strcmp(a->clip, "mse") == 0 ? Q_CLIP_MSE : Q_CLIP_MINMAX,
                  .scale_dtype = a->scale_type && strcmp(a->scale_type, "f16") == 0
                                     ? QMC_DTYPE_F16
                                     : QMC_DTYPE_F32};
    char err[256];
    bool saturate = p->saturate;
    if (!q_choose_params(arena, x->data, x->h.rank, x->h.shape, &c, p, err, sizeof err)) {
        sup_error_plain("%s", err);
        return false;
    }
    p->saturate = saturate;
    return true;
}

/* ---- checks of the options against each other ------------------------------ */

static bool check_options(const quant_args *a, q_format f)
{
    if (a->zero_point && !a->scale) {
        sup_error_plain("--zero-point needs --scale");
        return false;
    }
    if (a->scale && (a->symmetric >= 0 || a->clip || a->scale_type)) {
        sup_error_plain("--%s chooses parameters; it cannot be combined with --scale",
                        a->symmetric >= 0 ? (a->symmetric ? "symmetric" : "asymmetric")
                        : a->clip         ? "clip"
                                          : "scale-type");
        return false;
    }
    if (a->symmetric == 0 && q_format_is_fp8(f)) {
        sup_error_plain("%s is symmetric only (its zero point is 0)", q_format_name(f));
        return false;
    }
    if (a->clip && strcmp(a->clip, "minmax") != 0 && strcmp(a->clip, "mse") != 0) {
        sup_error_plain("--clip takes minmax or mse, not '%s'", a->clip);
        return false;
    }
    if (a->scale_type && strcmp(a->scale_type, "f32") != 0 && strcmp(a->scale_type, "f16") != 0) {
        sup_error_plain("--scale-type takes f32 or f16, not '%s'", a->scale_type);
        return false;
    }
    if (a->codes && a->dequant && strcmp(a->codes, a->dequant) == 0) {
        sup_error_plain("--codes and --dequant name the same file '%s'", a->codes);
        return false;
    }
    if (a->no_saturate && q_format_is_int(f))
        fprintf(stderr,
                "qmc: warning: --no-saturate has no effect on %s: integer formats "
                "always saturate, as in ONNX\n",
                q_format_name(f));
    return true;
}

static bool parse_format(const char *name, q_format *f)
{
    *f = q_format_from_name(name);
    if (*f == QFMT_COUNT || *f == QFMT_F32 || *f > QFMT_FP8_E5M2) { /* ONNX's formats only */
        static const char *const names[] = {"int8", "uint8", "int4", "uint4", "fp8e4m3", "fp8e5m2"};
        const char *best = rt_closest(name, names, 6);
        sup_error_plain("unknown format '%s'%s%s%s (one of int8 uint8 int4 uint4 fp8e4m3 fp8e5m2)",
                        name, best ? "; did you mean '" : "", best ? best : "", best ? "'?" : "");
        return false;
    }
    return true;
}

/* ---- output ------------------------------------------------------------------ */

static bool write_npy(const char *path, qmc_dtype dtype, const npy_file *x, const void *data)
{
    char err[256];
    qmc_status st = rt_npy_write_err(path, dtype, x->h.rank, x->h.shape, data, err, sizeof err);
    QMC_ASSERT(st != QMC_ERR_INVALID_ARGUMENT);
    if (st != QMC_OK) {
        sup_error_plain("cannot write '%s': %s", path, err);
        return false;
    }
    return true;
}

static void print_summary(const q_params *p, int64_t count, q_error_stats st)
{
    char gran[64];
    if (p->granularity == Q_GRAN_TENSOR)
        snprintf(gran, sizeof gran, "tensor");
    else if (p->granularity == Q_GRAN_AXIS)
        snprintf(gran, sizeof gran, "axis%d", p->axis);
    else
        snprintf(gran, sizeof gran, "block%lld(axis%d)", (long long)p->block, p->axis);
    printf("format=%s granularity=%s scale=%s zero_point=%s bits_per_element=%.4f rmse=%.6g "
           "max_abs_error=%.6g sqnr_db=%.2f\n",
           q_format_name(p->format), gran, p->scale_dtype == QMC_DTYPE_F16 ? "f16" : "f32",
           p->zero_points ? "yes" : "no", q_bits_per_element(p, count), st.rmse, st.max_abs,
           st.sqnr_db);
}

static int quantize(sup_arena *arena, const quant_args *a)
{
    q_params p = {.saturate = !a->no_saturate};
    npy_file x;
    if (!parse_format(a->format, &p.format) || !check_options(a, p.format)) return 1;
    if (!load_npy(arena, a->in, &x)) return 1;
    if (x.h.dtype != QMC_DTYPE_F32) {
        sup_error_plain("'%s': expected float32 data, not %s", a->in, qmc_dtype_name(x.h.dtype));
        return 1;
    }
    int64_t axis = x.h.rank >= 2 ? 1 : 0;
    if (a->axis && !parse_int("--axis", a->axis, &axis)) return 1;
    if (a->block && !parse_int("--block", a->block, &p.block)) return 1;
    if (a->block && p.block <= 0) {
        sup_error_plain("--block takes a positive integer, not '%s'", a->block);
        return 1;
    }
    if ((a->axis || a->block) && x.h.rank == 0) {
        sup_error_plain("'%s' is a scalar; --axis and --block need rank 1 or more", a->in);
        return 1;
    }
    if (axis < -x.h.rank || axis >= x.h.rank) {
        sup_error_plain("axis %lld is out of range for '%s' of shape %s", (long long)axis, a->in,
                        shape_str(arena, x.h.rank, x.h.shape));
        return 1;
    }
    p.axis = (int)axis;
    if (!(a->scale ? params_from_files(arena, a, &x, &p) : choose_params(arena, a, &x, &p)))
        return 1;
    uint8_t *codes = sup_arena_alloc(arena, (size_t)x.h.count + 16);
    float *y = sup_arena_alloc(arena, sizeof(float) * (size_t)x.h.count + 16);
    q_quantize(x.data, x.h.rank, x.h.shape, &p, codes);
    q_dequantize(codes, x.h.rank, x.h.shape, &p, y);
    q_error_stats st = q_measure(x.data, y, x.h.count);
    if (a->codes && !write_npy(a->codes, q_format_code_dtype(p.format), &x, codes)) return 1;
    if (a->dequant && !write_npy(a->dequant, QMC_DTYPE_F32, &x, y)) {
        if (a->codes) unlink(a->codes); /* write nothing on error */
        return 1;
    }
    print_summary(&p, x.h.count, st);
    return 0;
}

int cli_quantize(int argc, char **argv)
{
    quant_args a = {0};
    if (!parse_args(argc, argv, &a)) return 1;
    sup_arena arena = {0};
    int status = quantize(&arena, &a);
    sup_arena_free(&arena);
    return status;
}
