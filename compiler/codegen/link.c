/* link.c: turns the model's object file into an executable or a library
 * with the runtime inside.
 *
 * The runtime is prebuilt for each target (libqmc_rt.a, and libqmc_main.a
 * with the executable's main) in DIR/<arch>-linux-gnu, DIR the first of
 *   $QMC_RUNTIME_DIR   when set: an explicit choice
 *   PREFIX/lib/qmc     installed: the layout of `cmake --install` and the .deb
 *   PREFIX/runtime     the build tree (its qmc is build/compiler/qmc)
 * that holds the target's libqmc_rt.a, PREFIX being the folder above the
 * running qmc's (/proc/self/exe): an installed prefix or a build tree can
 * be moved, and an installed qmc never reads a build tree. Host
 * executables are linked with clang-19, aarch64 ones statically with
 * aarch64-linux-gnu-gcc (so qemu-aarch64 runs them without a sysroot).
 * Every artefact is produced under a temporary name and renamed into
 * place, so a failed link leaves nothing behind. */
#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen.h"

extern char **environ;

static const char *arch_dir(const cg_target *t)
{
    return t->arch == CG_ARCH_X86_64 ? "x86_64-linux-gnu" : "aarch64-linux-gnu";
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The directory holding libqmc_rt.a for the target, or NULL (reported). */
static const char *runtime_dir(sup_arena *arena, const cg_target *t)
{
    const char *candidates[3] = {getenv("QMC_RUNTIME_DIR"), NULL, NULL};
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    const char *why = n > 0 ? "" : strerror(errno);
    if (n > 0) {
        self[n] = 0;
        for (int up = 0; up < 2; up++) { /* PREFIX/bin/qmc -> PREFIX */
            char *slash = strrchr(self, '/');
            if (slash) *slash = 0;
        }
        candidates[1] = sup_arena_printf(arena, "%s/lib/qmc", self);
        candidates[2] = sup_arena_printf(arena, "%s/runtime", self);
    }
    const char *tried = "";
    for (int i = 0; i < 3; i++) {
        if (!candidates[i] || !*candidates[i]) continue;
        const char *dir = sup_arena_printf(arena, "%s/%s", candidates[i], arch_dir(t));
        if (exists(sup_arena_printf(arena, "%s/libqmc_rt.a", dir))) return dir;
        tried = sup_arena_printf(arena, "%s, %s", tried, dir);
    }
    if (*why)
        sup_error_plain(
            "cannot find the qmc runtime for %s: qmc cannot read /proc/self/exe to look "
            "beside itself (%s); set $QMC_RUNTIME_DIR to the folder holding %s/",
            t->triple, why, arch_dir(t));
    else
        sup_error_plain("cannot find the qmc runtime for %s: no libqmc_rt.a in %s (set "
                        "$QMC_RUNTIME_DIR to the folder holding %s/)",
                        t->triple, tried + 2, arch_dir(t));
    return NULL;
}

/* Runs argv (searched on PATH) and waits; reports failures. */
static bool run_tool(char *const *argv)
{
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0) {
        sup_error_plain("cannot run '%s': %s (is it installed?)", argv[0], strerror(rc));
        return false;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            sup_error_plain("waiting for '%s': %s", argv[0], strerror(errno));
            return false;
        }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        sup_error_plain("'%s' failed while linking", argv[0]);
        return false;
    }
    return true;
}

static bool copy_file(const char *from, const char *to)
{
    rt_mapped_file f;
    char err[256];
    if (rt_file_map(from, &f, err, sizeof err) != QMC_OK) {
        sup_error_plain("%s: %s", from, err);
        return false;
    }
    bool written = cg_write_file(to, f.data, f.size);
    rt_file_unmap(&f);
    return written;
}

bool cg_link(sup_arena *arena, const cg_target *t, cg_emit_kind kind, const char *obj,
             const char *out)
{
    const char *dir = runtime_dir(arena, t);
    if (!dir) return false;
    const char *rt = sup_arena_printf(arena, "%s/libqmc_rt.a", dir),
               *main_lib = sup_arena_printf(arena, "%s/libqmc_main.a", dir);
    char *tmp = sup_arena_printf(arena, "%s.link.XXXXXX", out);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        sup_error_plain("cannot create '%s': %s", tmp, strerror(errno));
        return false;
    }
    close(fd);
    bool host = t->arch == CG_ARCH_X86_64;
    const char *cc = host ? "clang-19" : "aarch64-linux-gnu-gcc";
    bool ok;
    if (kind == CG_EMIT_LIB) {
        /* the runtime archive with the model's object added */
        char *argv[] = {"llvm-ar-19", "qs", tmp, (char *)obj, NULL};
        ok = copy_file(rt, tmp) && run_tool(argv);
    } else if (kind == CG_EMIT_SHARED) {
        char *argv[] = {(char *)cc,  "-shared",
                        "-o",        tmp,
                        (char *)obj, "-Wl,--whole-archive",
                        (char *)rt,  "-Wl,--no-whole-archive",
                        "-lpthread", "-lm",
                        NULL};
        ok = run_tool(argv);
    } else if (host) {
        char *argv[] = {(char *)cc, "-o",        tmp,   (char *)obj, (char *)main_lib,
                        (char *)rt, "-lpthread", "-lm", NULL};
        ok = run_tool(argv);
    } else {
        char *argv[] = {(char *)cc,       "-static",  "-o",        tmp,   (char *)obj,
                        (char *)main_lib, (char *)rt, "-lpthread", "-lm", NULL};
        ok = run_tool(argv);
    }
    if (ok && kind == CG_EMIT_EXE) chmod(tmp, 0755);
    if (ok && rename(tmp, out) != 0)
        ok = false, sup_error_plain("cannot write '%s': %s", out, strerror(errno));
    if (!ok) unlink(tmp);
    return ok;
}
