/* output.c: what `qmc compile` writes: the artefact --emit asks for, at -o
 * or at a name made from the model's.
 *
 *   obj               OUT.o (code and weights, object.c) and OUT.h
 *   exe, lib, shared  that object in a temporary file beside OUT, linked
 *                     (link.c), then for libraries OUT.h (header.c)
 *   llvm, bc, asm     the module as text IR, bitcode or assembly
 *   --weights-file    the weights in a file of their own, the object code
 *                     only
 *
 * The weights are written before the code (weights.c streams them into the
 * object's file, or the weights file): cg_output_weights says where.
 * Guarantees: every artefact is written atomically, and a failed compile
 * leaves nothing behind (temporary files are removed, a library whose
 * header cannot be written is removed, the weights file is renamed into
 * place last). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen.h"

/* OUT without the extension `ext` if it has it. */
static const char *strip(sup_arena *arena, const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && !strcmp(path + n - e, ext) ? sup_arena_strndup(arena, path, n - e) : path;
}

static const char *default_output(sup_arena *arena, const ir_graph *g, cg_emit_kind k)
{
    const char *base = cg_symbol_prefix(arena, g);
    static const char *const ext[] = {"", "", ".a", ".so", ".ll", ".bc", ".s"};
    return sup_arena_printf(arena, "%s%s", base, ext[k]);
}

static bool is_module_text(cg_emit_kind k)
{
    return k == CG_EMIT_LLVM || k == CG_EMIT_BC || k == CG_EMIT_ASM;
}

void cg_output_weights(sup_arena *arena, const ir_graph *g, cg_options *o, cg_weights_kind *kind,
                       const char **path)
{
    if (!o->output) o->output = default_output(arena, g, o->emit);
    *path = NULL;
    if (o->weights_file) {
        *kind = CG_WEIGHTS_FILE;
        *path = o->weights_file;
    } else if (is_module_text(o->emit)) {
        *kind = CG_WEIGHTS_MEMORY;
    } else {
        *kind = CG_WEIGHTS_OBJECT; /* the object's file, beside what is written */
        *path = o->emit == CG_EMIT_OBJ
                    ? sup_arena_printf(arena, "%s.o", strip(arena, o->output, ".o"))
                    : o->output;
    }
}

/* The object at `obj`: the weights' file completed by emission, or (weights
 * elsewhere) a file of its own. */
static bool write_object(sup_arena *arena, const ir_graph *g, const ir_plan *plan,
                         const cg_target *t, const cg_options *o, cg_weights *w, const char *obj)
{
    if (w->kind == CG_WEIGHTS_OBJECT)
        return cg_emit_module(arena, g, plan, t, o, w, NULL, CG_EMIT_OBJ) &&
               cg_weights_rename(w, obj);
    return cg_emit_module(arena, g, plan, t, o, w, obj, CG_EMIT_OBJ);
}

/* exe, lib, shared: an object in a temporary file, then link. */
static bool write_linked(sup_arena *arena, const ir_graph *g, const ir_plan *plan,
                         const cg_target *t, const cg_options *o, cg_weights *w)
{
    const char *out = o->output;
    bool ok;
    if (w->kind == CG_WEIGHTS_OBJECT) {
        ok = cg_emit_module(arena, g, plan, t, o, w, NULL, CG_EMIT_OBJ) &&
             cg_link(arena, t, o->emit, w->tmp, out);
    } else {
        char *obj = sup_arena_printf(arena, "%s.obj.XXXXXX", out);
        int fd = mkstemp(obj);
        if (fd < 0) {
            sup_error_plain("cannot create a temporary file beside '%s': %s", out, strerror(errno));
            return false;
        }
        close(fd);
        ok = cg_emit_module(arena, g, plan, t, o, w, obj, CG_EMIT_OBJ) &&
             cg_link(arena, t, o->emit, obj, out);
        unlink(obj);
    }
    if (ok) sup_stage_end("link");
    return ok;
}

static bool write_artefact(sup_arena *arena, const ir_graph *g, const ir_plan *plan,
                           const cg_target *t, cg_options *o, cg_weights *w)
{
    cg_emit_kind k = o->emit;
    const char *out = o->output;
    if (is_module_text(k)) return cg_emit_module(arena, g, plan, t, o, w, out, k);
    if (k == CG_EMIT_OBJ) {
        const char *base = strip(arena, out, ".o");
        return write_object(arena, g, plan, t, o, w, sup_arena_printf(arena, "%s.o", base)) &&
               cg_write_header(arena, g, plan, t, sup_arena_printf(arena, "%s.h", base));
    }
    if (!write_linked(arena, g, plan, t, o, w)) return false;
    if (k == CG_EMIT_LIB || k == CG_EMIT_SHARED) {
        const char *base = strip(arena, strip(arena, out, ".a"), ".so");
        if (!cg_write_header(arena, g, plan, t, sup_arena_printf(arena, "%s.h", base))) {
            unlink(out);
            return false;
        }
    }
    return true;
}

bool cg_write_output(sup_arena *arena, const ir_graph *g, const ir_plan *plan, const cg_target *t,
                     cg_options *o, cg_weights *w)
{
    bool ok = write_artefact(arena, g, plan, t, o, w);
    if (ok && w->kind == CG_WEIGHTS_FILE) ok = cg_weights_rename(w, w->path);
    cg_weights_discard(w);
    return ok;
}
