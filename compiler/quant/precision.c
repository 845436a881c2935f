/* precision.c: a weight matrix's precision: its spelling on the command
 * line and in annotations (`int4:g64:asym:mse`, `int8:a8:static`), its
 * canonical name, and the bytes it stores.
 *
 * Needs: nothing but the element formats (format.c).
 * Guarantees: q_precision_parse accepts exactly the formats and modifiers
 * valid_formats lists, and q_precision_name spells a parsed precision so
 * that it parses back to the same one. */
#include <stdio.h>
#include <string.h>

#include "quant.h"

static const char valid_formats[] =
    "f32, int8, int4, int4:g64, int4:g128, int3, int2, nf4, fp8e4m3, fp8e5m2, bf16, f16, auto; "
    "modifiers :g32 :g64 :g128 :asym :mse :minmax :gptq :a8 :static :imat :hqq :awq :smooth :act "
    ":sf32";

/* At most one of :imat, :hqq and :gptq chooses the codes; :imat's search is
 * MSE clipping weighted (so it implies :mse). */
static bool methods_compatible(q_precision *f, char *err, size_t err_size)
{
    const char *a = f->imat ? "imat" : f->hqq ? "hqq" : NULL;
    const char *b = f->gptq && a ? "gptq" : f->imat && f->hqq ? "hqq" : NULL;
    if (b) {
        snprintf(err, err_size,
                 "modifiers ':%s' and ':%s' are two ways to choose the codes; give one", a, b);
        return false;
    }
    if (f->awq && f->smooth) {
        snprintf(err, err_size,
                 "modifiers ':awq' and ':smooth' both scale the input channels; give one");
        return false;
    }
    if (f->smooth && !f->act8) {
        snprintf(err, err_size, "modifier ':smooth' needs ':a8' (it eases int8 activations)");
        return false;
    }
    if (f->act_order && !f->gptq) {
        snprintf(err, err_size, "modifier ':act' orders GPTQ's columns; it needs ':gptq'");
        return false;
    }
    if (f->imat) f->clip = Q_CLIP_MSE;
    return true;
}

/* Splits "int4:g64:asym" at ':' and applies each modifier. */
static bool apply_modifier(const char *m, size_t n, q_precision *f, char *err, size_t err_size)
{
    bool int4 = f->format == QFMT_INT4 || f->format == QFMT_UINT4;
    bool low = q_format_is_low(f->format); /* int4, int3, int2 */
    bool grouped = low || f->format == QFMT_NF4;
    if (n == 3 && !strncmp(m, "g32", 3) && grouped) return f->group = 32, true;
    if (n == 3 && !strncmp(m, "g64", 3) && grouped) return f->group = 64, true;
    if (n == 4 && !strncmp(m, "g128", 4) && grouped) return f->group = 128, true;
    if (n == 4 && !strncmp(m, "asym", 4) && low) return f->format = q_format_asym(f->format), true;
    if (n == 4 && !strncmp(m, "sf32", 4) && int4) return f->scale_f32 = true, true;
    bool scaled = f->format != QFMT_F32 && q_format_code_bytes(f->format) == 1;
    if (n == 3 && !strncmp(m, "mse", 3) && scaled) return f->clip = Q_CLIP_MSE, true;
    if (n == 6 && !strncmp(m, "minmax", 6) && scaled) return f->clip = Q_CLIP_MINMAX, true;
    if (n == 2 && !strncmp(m, "a8", 2) && (f->format == QFMT_INT8 || int4))
        return f->act8 = true, true;
    if (n == 6 && !strncmp(m, "static", 6) && (f->format == QFMT_INT8 || int4))
        return f->act_static = true, true;
    if (n == 4 && !strncmp(m, "gptq", 4) && low) return f->gptq = true, true;
    bool integer = f->format == QFMT_INT8 || low;
    if (n == 4 && !strncmp(m, "imat", 4) && integer) return f->imat = true, true;
    if (n == 3 && !strncmp(m, "hqq", 3) && integer) return f->hqq = true, true;
    if (n == 3 && !strncmp(m, "awq", 3) && integer) return f->awq = true, true;
    if (n == 6 && !strncmp(m, "smooth", 6) && integer) return f->smooth = true, true;
    if (n == 3 && !strncmp(m, "act", 3) && low) return f->act_order = true, true;
    snprintf(err, err_size, "modifier ':%.*s' does not apply here (formats: %s)", (int)n, m,
             valid_formats);
    return false;
}

bool q_precision_parse(const char *text, q_precision *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    size_t n = strcspn(text, ":");
    static const struct {
        const char *name;
        q_format format;
        int group;
    } bases[] = {
        {"f32", QFMT_F32, 0},          {"int8", QFMT_INT8, 0},       {"int4", QFMT_INT4, 32},
        {"int4g64", QFMT_INT4, 64},    {"int4g128", QFMT_INT4, 128}, {"fp8e4m3", QFMT_FP8_E4M3, 0},
        {"fp8e5m2", QFMT_FP8_E5M2, 0}, {"int3", QFMT_INT3, 32},      {"int2", QFMT_INT2, 32},
        {"nf4", QFMT_NF4, 32},         {"bf16", QFMT_BF16, 0},       {"f16", QFMT_F16, 0}};
    bool found = false;
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++)
        if (strlen(bases[i].name) == n && !strncmp(bases[i].name, text, n)) {
            out->format = bases[i].format;
            out->group = bases[i].group;
            found = true;
        }
    if (!found) {
        snprintf(err, err_size, "unknown format '%.*s' (formats: %s)", (int)n, text, valid_formats);
        return false;
    }
    for (const char *p = text + n; *p == ':';) {
        p++;
        size_t m = strcspn(p, ":");
        if (!apply_modifier(p, m, out, err, err_size)) return false;
        p += m;
    }
    if (out->act_static && !out->act8) {
        snprintf(err, err_size,
                 "modifier ':static' needs ':a8' (int8 activations with one calibrated scale)");
        return false;
    }
    return methods_compatible(out, err, err_size);
}

const char *q_precision_name(sup_arena *arena, const q_precision *f)
{
    const char *base = q_format_name(q_format_sym(f->format));
    const char *method = f->imat ? ":imat" : f->hqq ? ":hqq" : "";
    const char *scaling = f->awq ? ":awq" : f->smooth ? ":smooth" : "";
    return sup_arena_printf(arena, "%s%s%s%s%s%s%s%s%s%s", base,
                            f->group ? sup_arena_printf(arena, ":g%d", f->group) : "",
                            q_format_is_asym(f->format) ? ":asym" : "",
                            f->scale_f32 && f->group ? ":sf32" : "",
                            f->clip == Q_CLIP_MSE && !f->imat ? ":mse" : "", scaling,
                            f->gptq ? (f->act_order ? ":gptq:act" : ":gptq") : "", method,
                            f->act8 ? ":a8" : "", f->act_static ? ":static" : "");
}

const char *q_precision_method(const q_precision *f)
{
    if (f->format == QFMT_F32) return "none";
    static const char *const names[3][6] = {
        {"gptq", "imat", "hqq", "mse", "rtn", "gptq-act"},
        {"awq+gptq", "awq+imat", "awq+hqq", "awq+mse", "awq+rtn", "awq+gptq-act"},
        {"smooth+gptq", "smooth+imat", "smooth+hqq", "smooth+mse", "smooth+rtn",
         "smooth+gptq-act"}};
    int m = f->act_order            ? 5
            : f->gptq               ? 0
            : f->imat               ? 1
            : f->hqq                ? 2
            : f->clip == Q_CLIP_MSE ? 3
                                    : 4;
    return names[f->awq ? 1 : f->smooth ? 2 : 0][m];
}

size_t q_precision_bytes(const q_precision *f, int64_t n, int64_t k)
{
    if (f->format == QFMT_F32) return (size_t)(n * k) * 4;
    if (q_format_code_bytes(f->format) == 2) return (size_t)(n * k) * 2; /* no scales */
    int64_t kp = f->group ? (k + f->group - 1) / f->group * f->group : k;
    int64_t groups = n * (f->group ? kp / f->group : 1);
    size_t scale_bytes = f->group && !f->scale_f32 ? 2 : 4; /* f16 for groups unless :sf32 */
    return (size_t)(n * kp) * (size_t)q_format_bits(f->format) / 8 + (size_t)groups * scale_bytes +
           (q_format_is_asym(f->format) ? (size_t)groups : 0);
}
