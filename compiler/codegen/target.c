/* target.c: what machine the code is for.
 *
 * Resolves --target, --cpu and --features into an LLVM triple, CPU name and
 * feature string, and into the set of features qmc's kernels choose from
 * (vector width, FMA, F16C, AVX-512 VNNI, dotprod, ...). The same set, as a
 * list of LLVM feature names, is embedded in the compiled model so that the
 * runtime can refuse to run on a CPU that lacks any of them.
 *
 * LLVM's C API cannot list the features a named CPU implies, so the CPUs
 * qmc knows are described here (the features that matter to it); `native`
 * asks LLVM for the host's exact CPU and features. */
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>

#include "codegen.h"

/* Feature names as LLVM spells them, per architecture. */
static const char *const x86_feature_names[] = {"sse3",
                                                "ssse3",
                                                "sse4.1",
                                                "sse4.2",
                                                "popcnt",
                                                "avx",
                                                "avx2",
                                                "fma",
                                                "f16c",
                                                "bmi",
                                                "bmi2",
                                                "lzcnt",
                                                "movbe",
                                                "avx512f",
                                                "avx512bw",
                                                "avx512cd",
                                                "avx512dq",
                                                "avx512vl",
                                                "avx512vnni",
                                                "avx512bf16",
                                                "avx512vbmi",
                                                "avx512vbmi2",
                                                "avx512ifma",
                                                "avx512bitalg",
                                                "avx512vpopcntdq",
                                                "avx512fp16",
                                                "avxvnni",
                                                "gfni",
                                                "vaes",
                                                "vpclmulqdq",
                                                "amx-tile",
                                                "amx-int8",
                                                "amx-bf16",
                                                NULL};
static const char *const arm_feature_names[] = {"neon", "fp-armv8", "dotprod", "fullfp16",
                                                "i8mm", "bf16",     "sve",     "sve2",
                                                "rcpc", "lse",      "crc",     NULL};

#define X86_V2 "sse3,ssse3,sse4.1,sse4.2,popcnt"
#define X86_V3 X86_V2 ",avx,avx2,fma,f16c,bmi,bmi2,lzcnt,movbe"
#define X86_V4 X86_V3 ",avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
#define X86_ICL                                                                                    \
    X86_V4 ",avx512vnni,avx512vbmi,avx512vbmi2,avx512ifma,avx512bitalg,avx512vpopcntdq,gfni,vaes," \
           "vpclmulqdq"
#define X86_SPR X86_ICL ",avx512bf16,avx512fp16,avxvnni,amx-tile,amx-int8,amx-bf16"
#define X86_ZEN3 X86_V3 ",vaes,vpclmulqdq"
#define X86_ZEN4                                                                                   \
    X86_ZEN3 ",avx512f,avx512bw,avx512cd,avx512dq,avx512vl,avx512vnni,avx512bf16,avx512vbmi,"      \
             "avx512vbmi2,avx512ifma,avx512bitalg,avx512vpopcntdq,gfni"
#define ARM_V8 "neon,fp-armv8"
#define ARM_V82 ARM_V8 ",dotprod,fullfp16,rcpc,lse,crc"

typedef struct cpu_info {
    const char *name;
    const char *features; /* comma-separated, from the lists above */
} cpu_info;

static const cpu_info x86_cpus[] = {
    {"x86-64", ""},
    {"x86-64-v2", X86_V2},
    {"x86-64-v3", X86_V3},
    {"x86-64-v4", X86_V4},
    {"haswell", X86_V3},
    {"broadwell", X86_V3},
    {"skylake", X86_V3},
    {"skylake-avx512", X86_V4},
    {"cascadelake", X86_V4 ",avx512vnni"},
    {"cooperlake", X86_V4 ",avx512vnni,avx512bf16"},
    {"icelake-client", X86_ICL},
    {"icelake-server", X86_ICL},
    {"tigerlake", X86_ICL},
    {"sapphirerapids", X86_SPR},
    {"emeraldrapids", X86_SPR},
    {"graniterapids", X86_SPR},
    {"alderlake", X86_V3 ",avxvnni,gfni,vaes,vpclmulqdq"},
    {"raptorlake", X86_V3 ",avxvnni,gfni,vaes,vpclmulqdq"},
    {"meteorlake", X86_V3 ",avxvnni,gfni,vaes,vpclmulqdq"},
    {"znver1", X86_V3},
    {"znver2", X86_V3},
    {"znver3", X86_ZEN3},
    {"znver4", X86_ZEN4},
    {"znver5", X86_ZEN4 ",avxvnni"},
    {NULL, NULL},
};

static const cpu_info arm_cpus[] = {
    {"generic", ARM_V8},
    {"cortex-a53", ARM_V8 ",crc"},
    {"cortex-a72", ARM_V8 ",crc"},
    {"cortex-a55", ARM_V82},
    {"cortex-a76", ARM_V82},
    {"cortex-a78", ARM_V82},
    {"cortex-x1", ARM_V82},
    {"neoverse-n1", ARM_V82},
    {"neoverse-n2", ARM_V82 ",i8mm,bf16,sve,sve2"},
    {"neoverse-v1", ARM_V82 ",i8mm,bf16,sve"},
    {"neoverse-v2", ARM_V82 ",i8mm,bf16,sve,sve2"},
    {"apple-m1", ARM_V82},
    {"apple-m2", ARM_V82 ",i8mm,bf16"},
    {NULL, NULL},
};

typedef struct arch_info {
    cg_arch arch;
    const char *names[4]; /* accepted spellings of the architecture in a triple */
    const char *triple;   /* canonical triple */
    const char *const *features;
    const cpu_info *cpus;
    const char *default_cpu;
} arch_info;

static const arch_info arches[] = {
    {CG_ARCH_X86_64,
     {"x86_64", "x86-64", "amd64", NULL},
     "x86_64-unknown-linux-gnu",
     x86_feature_names,
     x86_cpus,
     "x86-64"},
    {CG_ARCH_AARCH64,
     {"aarch64", "arm64", NULL, NULL},
     "aarch64-unknown-linux-gnu",
     arm_feature_names,
     arm_cpus,
     "generic"},
};

static const arch_info *arch_of(cg_arch a) { return &arches[a == CG_ARCH_X86_64 ? 0 : 1]; }

static int feature_index(const arch_info *ai, const char *name, size_t len)
{
    for (int i = 0; ai->features[i]; i++)
        if (strlen(ai->features[i]) == len && strncmp(ai->features[i], name, len) == 0) return i;
    return -1;
}

/* Sets has[] from a comma-separated list of known names (no signs). */
static void add_features(const arch_info *ai, const char *list, bool *has)
{
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        int i = feature_index(ai, p, n);
        QMC_ASSERT(i >= 0); /* the tables only name known features */
        has[i] = true;
        p += n + (p[n] == ',');
    }
}

/* Features that others imply: "+avx512vnni" brings avx512f, avx2, ...;
 * "-avx2" takes away everything built on it. */
static const char *const x86_deps[][2] = {{"avx512f", "avx2"},
                                          {"avx512f", "fma"},
                                          {"avx512f", "f16c"},
                                          {"avx512bw", "avx512f"},
                                          {"avx512dq", "avx512f"},
                                          {"avx512vl", "avx512f"},
                                          {"avx512cd", "avx512f"},
                                          {"avx512vnni", "avx512f"},
                                          {"avx512bf16", "avx512bw"},
                                          {"avx512fp16", "avx512bw"},
                                          {"avx512vbmi", "avx512bw"},
                                          {"avx512vbmi2", "avx512bw"},
                                          {"avx512ifma", "avx512f"},
                                          {"avx512bitalg", "avx512bw"},
                                          {"avx512vpopcntdq", "avx512f"},
                                          {"avx2", "avx"},
                                          {"fma", "avx"},
                                          {"f16c", "avx"},
                                          {"avx", "sse4.2"},
                                          {"sse4.2", "sse4.1"},
                                          {"sse4.1", "ssse3"},
                                          {"ssse3", "sse3"},
                                          {"avxvnni", "avx2"},
                                          {"amx-int8", "amx-tile"},
                                          {"amx-bf16", "amx-tile"},
                                          {"vaes", "avx"},
                                          {"vpclmulqdq", "avx"},
                                          {NULL, NULL}};
static const char *const arm_deps[][2] = {
    {"dotprod", "neon"}, {"i8mm", "neon"}, {"bf16", "neon"},     {"fullfp16", "fp-armv8"},
    {"sve", "neon"},     {"sve2", "sve"},  {"neon", "fp-armv8"}, {NULL, NULL}};

/* Sets (on) or clears feature i and, transitively, what it implies (on) or
 * what depends on it (off). */
static void set_feature(const arch_info *ai, bool *has, int i, bool on)
{
    if (has[i] == on) return;
    has[i] = on;
    const char *const(*deps)[2] = ai->arch == CG_ARCH_X86_64 ? x86_deps : arm_deps;
    for (int d = 0; deps[d][0]; d++) {
        int a = feature_index(ai, deps[d][0], strlen(deps[d][0]));
        int b = feature_index(ai, deps[d][1], strlen(deps[d][1]));
        if (on && a == i) set_feature(ai, has, b, true);
        if (!on && b == i) set_feature(ai, has, a, false);
    }
}

/* Applies an LLVM-style "+a,-b" list. Unknown names are errors when strict
 * (the user's --features), skipped otherwise (LLVM's host list names many
 * features qmc does not use, and is complete and consistent as it is). */
static bool apply_feature_list(const arch_info *ai, const char *list, bool *has, bool strict)
{
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 0) {
            p++;
            continue;
        }
        char sign = *p;
        if (sign != '+' && sign != '-') {
            if (strict) {
                sup_error_plain(
                    "--features: '%.*s' must start with '+' or '-' (e.g. +avx512vnni,-avx512f)",
                    (int)n, p);
                return false;
            }
            p += n + (p[n] == ',');
            continue;
        }
        int i = feature_index(ai, p + 1, n - 1);
        if (i < 0 && strict) {
            char *list_text = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&list_text, &len);
            for (int k = 0; ai->features[k]; k++) fprintf(f, "%s%s", k ? " " : "", ai->features[k]);
            fclose(f);
            sup_error_plain("--features: unknown feature '%.*s' for %s (known: %s)", (int)(n - 1),
                            p + 1, ai->names[0], list_text);
            free(list_text);
            return false;
        }
        if (i >= 0) {
            if (strict)
                set_feature(ai, has, i, sign == '+');
            else
                has[i] = sign == '+';
        }
        p += n + (p[n] == ',');
    }
    return true;
}

/* The architecture of a Linux triple such as "aarch64-linux-gnu", or NULL. */
static const arch_info *find_arch(const char *triple)
{
    size_t n = strcspn(triple, "-");
    if (!strstr(triple, "-linux")) return NULL;
    for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++)
        for (int k = 0; arches[a].names[k]; k++)
            if (strlen(arches[a].names[k]) == n && strncmp(arches[a].names[k], triple, n) == 0)
                return &arches[a];
    return NULL;
}

static const char *host_triple(void)
{
#if defined(__x86_64__)
    return "x86_64-unknown-linux-gnu";
#elif defined(__aarch64__)
    return "aarch64-unknown-linux-gnu";
#else
    return "unknown";
#endif
}

static const char *cpu_list(sup_arena *arena, const arch_info *ai)
{
    const char *s = "";
    for (int i = 0; ai->cpus[i].name; i++)
        s = sup_arena_printf(arena, "%s%s%s", s, i ? " " : "", ai->cpus[i].name);
    return s;
}

/* The LLVM feature string: the CPU's own features come from LLVM's CPU
 * model, so only the user's modifications (or the host's list) are passed. */
static char *llvm_feature_string(sup_arena *arena, const char *base, const char *user)
{
    if (!base || !*base) return sup_arena_strdup(arena, user ? user : "");
    if (!user || !*user) return sup_arena_strdup(arena, base);
    return sup_arena_printf(arena, "%s,%s", base, user);
}

bool cg_target_resolve(sup_arena *arena, const char *triple, const char *cpu, const char *features,
                       cg_target *t)
{
    memset(t, 0, sizeof *t);
    const char *host = host_triple();
    const arch_info *ai = find_arch(triple ? triple : host);
    if (!ai) {
        sup_error_plain("unknown target '%s' (targets: x86_64-linux-gnu, aarch64-linux-gnu)",
                        triple ? triple : host);
        return false;
    }
    t->arch = ai->arch;
    t->triple = ai->triple;
    t->host = find_arch(host) == ai;
    if (!cpu) cpu = t->host ? "native" : ai->default_cpu;
    const char *base_features = NULL;
    if (strcmp(cpu, "native") == 0) {
        if (!t->host) {
            sup_error_plain(
                "--cpu native describes this %s machine, not target '%s'; name a CPU (%s: %s)",
                host, ai->triple, ai->names[0], cpu_list(arena, ai));
            return false;
        }
        char *name = LLVMGetHostCPUName(), *feats = LLVMGetHostCPUFeatures();
        t->cpu = sup_arena_strdup(arena, name);
        base_features = sup_arena_strdup(arena, feats);
        LLVMDisposeMessage(name);
        LLVMDisposeMessage(feats);
        apply_feature_list(ai, base_features, t->has, false);
    } else {
        const cpu_info *ci = NULL;
        for (int i = 0; ai->cpus[i].name; i++)
            if (strcmp(ai->cpus[i].name, cpu) == 0) ci = &ai->cpus[i];
        if (!ci) {
            const char *names[64];
            int n = 0;
            for (int i = 0; ai->cpus[i].name && n < 64; i++) names[n++] = ai->cpus[i].name;
            const char *best = rt_closest(cpu, names, n);
            sup_error_plain("unknown CPU '%s' for %s%s%s%s (CPUs: %s%s)", cpu, ai->names[0],
                            best ? "; did you mean '" : "", best ? best : "", best ? "'?" : "",
                            cpu_list(arena, ai), t->host ? " native" : "");
            return false;
        }
        t->cpu = ci->name;
        add_features(ai, ci->features, t->has);
    }
    if (features && !apply_feature_list(ai, features, t->has, true)) return false;
    t->llvm_features = llvm_feature_string(arena, base_features, features);
    return true;
}

bool cg_target_has(const cg_target *t, const char *feature)
{
    const arch_info *ai = arch_of(t->arch);
    int i = feature_index(ai, feature, strlen(feature));
    return i >= 0 && t->has[i];
}

const char *cg_target_feature_list(sup_arena *arena, const cg_target *t)
{
    const arch_info *ai = arch_of(t->arch);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int n = 0;
    for (int i = 0; ai->features[i]; i++)
        if (t->has[i]) fprintf(f, "%s%s", n++ ? "," : "", ai->features[i]);
    fclose(f);
    const char *s = sup_arena_strndup(arena, buf, len);
    free(buf);
    return s;
}

const char *const *cg_arch_feature_names(cg_arch arch) { return arch_of(arch)->features; }

void cg_targets_print(FILE *out)
{
    for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++) {
        const arch_info *ai = &arches[a];
        fprintf(out, "%s (--target %s-linux-gnu)%s\n  CPUs:", ai->triple, ai->names[0],
                find_arch(host_triple()) == ai ? " [host]" : "");
        for (int i = 0; ai->cpus[i].name; i++) fprintf(out, " %s", ai->cpus[i].name);
        fprintf(out, "%s\n  features:", find_arch(host_triple()) == ai ? " native" : "");
        for (int i = 0; ai->features[i]; i++) fprintf(out, " %s", ai->features[i]);
        fputc('\n', out);
    }
}

void cg_target_print(FILE *out, sup_arena *arena, const cg_target *t)
{
    fprintf(out, "target: %s\ncpu: %s\nfeatures: %s\n", t->triple, t->cpu,
            cg_target_feature_list(arena, t));
}

bool cg_target_int8_dot(const cg_target *t)
{
    if (t->arch == CG_ARCH_AARCH64) return cg_target_has(t, "dotprod");
    return cg_target_has(t, "avx512f") &&
           cg_target_has(t, "avx512vnni"); /* 16 lanes and vpdpbusd */
}
