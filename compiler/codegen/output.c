/* output.c: what `qmc compile` writes: the artefact --emit asks for, at -o
 * or at a name made from the model's.
 *
 *   exe, lib, shared  an object in a temporary file beside OUT, linked
 *                     (link.c), then for libraries OUT.h (header.c)
 *   obj               OUT.o and OUT.h
 *   llvm, bc, asm     the module as text IR, bitcode or assembly
 *
 * Guarantees: every artefact is written atomically, and a failed compile
 * leaves nothing behind (the temporary object is removed, a library whose
 * header cannot be written is removed). */
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

bool cg_write_output(sup_arena *arena, const ir_graph *g, const ir_plan *plan, const cg_target *t,
                     cg_options *o)
{
    cg_emit_kind k = o->emit;
    const char *out = o->output ? o->output : default_output(arena, g, k);
    o->output = out;
    if (k == CG_EMIT_LLVM || k == CG_EMIT_BC || k == CG_EMIT_ASM)
        return cg_emit_module(arena, g, plan, t, o, out, k);
    if (k == CG_EMIT_OBJ) {
        const char *base = strip(arena, out, ".o");
        return cg_emit_module(arena, g, plan, t, o, sup_arena_printf(arena, "%s.o", base),
                              CG_EMIT_OBJ) &&
               cg_write_header(arena, g, plan, t, sup_arena_printf(arena, "%s.h", base));
    }
    /* exe, lib, shared: an object in a temporary file, then link */
    char *obj = sup_arena_printf(arena, "%s.obj.XXXXXX", out);
    int fd = mkstemp(obj);
    if (fd < 0) {
        sup_error_plain("cannot create a temporary file beside '%s'", out);
        return false;
    }
    close(fd);
    bool ok =
        cg_emit_module(arena, g, plan, t, o, obj, CG_EMIT_OBJ) && cg_link(arena, t, k, obj, out);
    unlink(obj);
    if (ok && (k == CG_EMIT_LIB || k == CG_EMIT_SHARED)) {
        const char *base = strip(arena, strip(arena, out, ".a"), ".so");
        ok = cg_write_header(arena, g, plan, t, sup_arena_printf(arena, "%s.h", base));
        if (!ok) unlink(out);
    }
    return ok;
}
