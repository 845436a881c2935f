/* onnx_case.c: reads the ONNX reference cases. See onnx_case.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "onnx_case.h"

static q_format format_of_qtype(const char *qtype)
{
    static const struct {
        const char *qtype;
        q_format format;
    } map[] = {
        {"INT8", QFMT_INT8},   {"UINT8", QFMT_UINT8},           {"INT4", QFMT_INT4},
        {"UINT4", QFMT_UINT4}, {"FLOAT8E4M3FN", QFMT_FP8_E4M3}, {"FLOAT8E5M2", QFMT_FP8_E5M2}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(qtype, map[i].qtype) == 0) return map[i].format;
    fail_msg("unknown qtype %s", qtype);
    return QFMT_COUNT;
}

/* The file of a tensor entry: the only one, or the .codes.npy of a pair. */
static const char *file_of(sup_arena *a, const onnx_case *c, const fe_json *j, const char *key)
{
    const fe_json *t = fe_json_get(j, key);
    if (!t) return NULL;
    const fe_json *files = fe_json_get(t, "files");
    if (!files || files->kind != FE_JSON_ARRAY || files->count < 1)
        fail_msg("%s: %s has no files", c->name, key);
    const char *pick = files->items[0]->string;
    for (int i = 0; i < files->count; i++)
        if (strstr(files->items[i]->string, ".codes.npy")) pick = files->items[i]->string;
    return sup_arena_printf(a, "%s/%s", c->dir, pick);
}

static int64_t attr_int(const fe_json *attrs, const char *key, int64_t dflt)
{
    const fe_json *v = attrs ? fe_json_get(attrs, key) : NULL;
    if (!v) return dflt;
    assert_true(v->kind == FE_JSON_NUMBER && v->is_integer);
    return v->integer;
}

onnx_case *onnx_cases(sup_arena *a, int *count)
{
    const char *root = qt_data(a, "refs/quantizelinear");
    char **names = qt_list_dirs(a, root, "case", count);
    if (*count == 0) fail_msg("no cases in %s", root);
    onnx_case *cases = sup_arena_alloc(a, sizeof *cases * (size_t)*count);
    for (int i = 0; i < *count; i++) {
        onnx_case *c = &cases[i];
        c->name = names[i];
        c->dir = sup_arena_printf(a, "%s/%s", root, names[i]);
        const fe_json *j = qt_read_json(a, sup_arena_printf(a, "%s/case.json", c->dir));
        const fe_json *qtype = fe_json_get(j, "qtype");
        assert_non_null(qtype);
        c->format = format_of_qtype(qtype->string);
        const fe_json *attrs = fe_json_get(j, "attrs");
        c->has_axis = attrs && fe_json_get(attrs, "axis");
        c->axis = (int)attr_int(attrs, "axis", 1);
        c->block = attr_int(attrs, "block_size", 0);
        c->saturate = attr_int(attrs, "saturate", 1) != 0;
        c->x_path = file_of(a, c, j, "x");
        c->scale_path = file_of(a, c, j, "scale");
        c->zp_path = file_of(a, c, j, "zero_point");
        c->q_path = file_of(a, c, j, "q");
        c->y_path = file_of(a, c, j, "y");
        assert_non_null(c->x_path);
        assert_non_null(c->scale_path);
        assert_non_null(c->q_path);
        assert_non_null(c->y_path);
    }
    return cases;
}
