/* object.c: the object file of a compiled model, code and weights in one.
 *
 * LLVM compiles the code alone: the module refers to the weights by one
 * external symbol (PREFIX.weights, hidden) and never holds their bytes.
 * The weights are written first, streamed, into the object file at byte 64
 * (weights.c); this file then completes it as an ELF relocatable:
 *
 *   [ELF header][weights][LLVM's sections, copied][.shstrtab][section headers]
 *
 * The code object's sections keep their indices (relocations, groups and
 * the symbol table refer to sections by index, so none of them changes),
 * the weights become one more section, and the code's undefined symbol for
 * them becomes a definition at its start. Only file offsets, the section
 * name table and that one symbol are rewritten; memory holds the code
 * object, never the weights.
 *
 * The weights' section: on x86-64 .lrodata with SHF_X86_64_LARGE, which
 * linkers place after the small sections, so that weights of any size (over
 * 2 or 4 GB) leave the code's 32-bit references to its small data in
 * range (the code reaches the weights through a 64-bit pointer); on aarch64
 * .rodata. Both ELF64 little-endian, as qmc's hosts are. */
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "codegen.h"

#ifndef SHF_X86_64_LARGE
#define SHF_X86_64_LARGE 0x10000000
#endif

typedef struct elf_in {
    const uint8_t *data;
    size_t size;
    Elf64_Ehdr eh;
    Elf64_Shdr *sh;         /* copies, rewritten for the output */
    const Elf64_Shdr *orig; /* as LLVM wrote them */
    size_t n_sections, shstrndx;
} elf_in;

static bool bad(const char *what)
{
    sup_error_plain("internal error: LLVM's object file %s", what);
    return false;
}

static bool read_elf(sup_arena *arena, const void *code, size_t size, elf_in *in)
{
    in->data = code;
    in->size = size;
    if (size < sizeof in->eh) return bad("is too short");
    memcpy(&in->eh, code, sizeof in->eh);
    const unsigned char *id = in->eh.e_ident;
    if (memcmp(id, ELFMAG, SELFMAG) || id[EI_CLASS] != ELFCLASS64 || id[EI_DATA] != ELFDATA2LSB ||
        in->eh.e_type != ET_REL || in->eh.e_shentsize != sizeof(Elf64_Shdr))
        return bad("is not a 64-bit little-endian relocatable ELF file");
    uint64_t shoff = in->eh.e_shoff;
    if (shoff > size || size - shoff < sizeof(Elf64_Shdr)) return bad("has no section headers");
    Elf64_Shdr first;
    memcpy(&first, (const uint8_t *)code + shoff, sizeof first);
    in->n_sections = in->eh.e_shnum ? in->eh.e_shnum : first.sh_size;
    in->shstrndx = in->eh.e_shstrndx == SHN_XINDEX ? first.sh_link : in->eh.e_shstrndx;
    if ((size - shoff) / sizeof(Elf64_Shdr) < in->n_sections || in->shstrndx >= in->n_sections)
        return bad("has section headers out of range");
    in->sh = sup_arena_alloc(arena, sizeof *in->sh * (in->n_sections + 1));
    memcpy(in->sh, (const uint8_t *)code + shoff, sizeof *in->sh * in->n_sections);
    Elf64_Shdr *orig = sup_arena_alloc(arena, sizeof *orig * in->n_sections);
    memcpy(orig, in->sh, sizeof *orig * in->n_sections);
    in->orig = orig;
    for (size_t i = 1; i < in->n_sections; i++) {
        const Elf64_Shdr *s = &in->sh[i];
        if (s->sh_type != SHT_NOBITS && (s->sh_offset > size || size - s->sh_offset < s->sh_size))
            return bad("has a section out of range");
    }
    return true;
}

/* The code's undefined symbol `name` becomes the definition of the whole
 * section `shndx` (size bytes), in the copy of the symbol table. */
static bool define_symbol(const elf_in *in, uint8_t *symtab, const Elf64_Shdr *sym_sh,
                          const char *name, size_t shndx, uint64_t size)
{
    if (sym_sh->sh_link >= in->n_sections) return bad("has a symbol table without names");
    const Elf64_Shdr *str_sh = &in->orig[sym_sh->sh_link];
    const char *strtab = (const char *)in->data + str_sh->sh_offset;
    size_t n = sym_sh->sh_size / sizeof(Elf64_Sym);
    for (size_t i = 1; i < n; i++) {
        Elf64_Sym s;
        memcpy(&s, symtab + i * sizeof s, sizeof s);
        if (s.st_name >= str_sh->sh_size || strcmp(strtab + s.st_name, name) != 0) continue;
        if (s.st_shndx != SHN_UNDEF) return bad("defines the weights' symbol itself");
        s.st_shndx = (Elf64_Section)shndx;
        s.st_value = 0;
        s.st_size = size;
        s.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT);
        s.st_other = STV_HIDDEN;
        memcpy(symtab + i * sizeof s, &s, sizeof s);
        return true;
    }
    return true; /* no reference: nothing reads the weights by name */
}

typedef struct elf_out {
    int fd;
    const char *path;
    uint64_t at;
} elf_out;

static bool put(elf_out *o, const void *data, size_t size, uint64_t align)
{
    static const uint8_t zeros[64];
    uint64_t pad = align > 1 ? (align - o->at % align) % align : 0;
    while (pad) {
        size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        if (pwrite(o->fd, zeros, n, (off_t)o->at) != (ssize_t)n) goto fail;
        o->at += n, pad -= n;
    }
    for (const uint8_t *p = data; size;) {
        ssize_t n = pwrite(o->fd, p, size, (off_t)o->at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) goto fail;
        p += n, size -= (size_t)n, o->at += (uint64_t)n;
    }
    return true;
fail:
    sup_error_plain("%s: cannot write: %s", o->path, strerror(errno ? errno : EIO));
    return false;
}

bool cg_object_finish(const cg_weights *w, const void *code, size_t size)
{
    QMC_ASSERT(w->kind == CG_WEIGHTS_OBJECT && w->fd >= 0 && w->at == w->size);
    sup_arena tmp = {0};
    elf_in in = {0};
    if (!read_elf(&tmp, code, size, &in)) {
        sup_arena_free(&tmp);
        return false;
    }
    bool ok = true, data = w->size > 0;
    size_t shndx = in.n_sections; /* the weights' section, when there are weights */
    if (ok && data && shndx + 1 >= SHN_LORESERVE) ok = bad("has too many sections");
    elf_out o = {w->fd, w->tmp, CG_OBJECT_DATA_START + w->size};
    const char *sname =
        w->target->arch == CG_ARCH_X86_64 ? ".lrodata.qmc_weights" : ".rodata.qmc_weights";
    for (size_t i = 1; ok && i < in.n_sections; i++) {
        Elf64_Shdr *s = &in.sh[i];
        if (s->sh_type == SHT_NOBITS) {
            s->sh_offset = o.at;
            continue;
        }
        const uint8_t *bytes = in.data + s->sh_offset;
        uint64_t align = s->sh_addralign > 8 ? s->sh_addralign : 8;
        if (i == in.shstrndx && data) {
            /* the names, and the weights' section's after them */
            o.at += (align - o.at % align) % align;
            s->sh_offset = o.at;
            ok = put(&o, bytes, s->sh_size, 1) && put(&o, sname, strlen(sname) + 1, 1);
            in.sh[in.n_sections].sh_name = (Elf64_Word)s->sh_size;
            s->sh_size += strlen(sname) + 1;
            continue;
        }
        if (s->sh_type == SHT_SYMTAB && data) {
            uint8_t *copy = sup_arena_alloc(&tmp, s->sh_size + 1);
            memcpy(copy, bytes, s->sh_size);
            ok = define_symbol(&in, copy, &in.orig[i], w->symbol, shndx, w->size);
            bytes = copy;
        }
        o.at += (align - o.at % align) % align;
        s->sh_offset = o.at;
        ok = ok && put(&o, bytes, s->sh_size, 1);
    }
    size_t n_out = in.n_sections + data;
    if (data) {
        Elf64_Shdr *s = &in.sh[shndx];
        s->sh_type = SHT_PROGBITS;
        s->sh_flags = SHF_ALLOC | (w->target->arch == CG_ARCH_X86_64 ? SHF_X86_64_LARGE : 0);
        s->sh_offset = CG_OBJECT_DATA_START;
        s->sh_size = w->size;
        s->sh_addralign = 64;
    }
    /* section headers, then the ELF header at 0 */
    Elf64_Ehdr eh = in.eh;
    if (ok) {
        if (eh.e_shnum == 0)
            in.sh[0].sh_size = n_out; /* extended numbering */
        else
            eh.e_shnum = (Elf64_Half)n_out;
        o.at += (8 - o.at % 8) % 8;
        eh.e_shoff = o.at;
        ok = put(&o, in.sh, sizeof *in.sh * n_out, 1);
    }
    if (ok) {
        o.at = 0;
        ok = put(&o, &eh, sizeof eh, 1);
    }
    sup_arena_free(&tmp);
    return ok;
}
