/* cpu.c: does this CPU have the features a model was compiled for?
 *
 * Needs: the comma-separated list of LLVM target feature names the code was
 * built with ("avx2,fma", "+neon,+dotprod"). Guarantees: every name is
 * answered from tables, never by guessing:
 *   - a name in the architecture's detection table is present when the CPU
 *     reports it (x86: cpuid, plus xgetbv that the OS saves the AVX,
 *     AVX-512 or AMX registers, plus for AMX the Linux permission to use
 *     the tile data, which is requested here; aarch64: AT_HWCAP/AT_HWCAP2);
 *   - a name in the composite table ("crc32", "evex512", "v8.2a") is
 *     present when all the names it implies are;
 *   - a name in the harmless table (LLVM tuning flags such as "fast-gather"
 *     or "fuse-aes", which change no instruction) is always present;
 *   - any other name, including one of another architecture, is missing:
 *     refusing to start beats an illegal instruction.
 * A name with a leading '+' is the name; one with '-' (a disabled feature)
 * and empty items are ignored. The CPU is queried once per process. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "rt.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define RT_CPU_X86 1
#elif defined(__aarch64__)
#include <sys/auxv.h>
#define RT_CPU_ARM64 1
#endif

#define RT_FEATURE_NAME_MAX 64

typedef struct composite {
    const char *name;
    const char *implies; /* comma-separated; "" for always present */
} composite;

/* ---- x86: cpuid ---------------------------------------------------------- */
#if RT_CPU_X86

enum { L1, L7, L7_1, LD_1, L14, L19, LE1, LE8, N_LEAVES };
enum { EAX, EBX, ECX, EDX };
/* what the OS must save for the feature's registers to survive a switch */
enum { OS_NONE, OS_XSAVE, OS_AVX, OS_AVX512, OS_AMX };

static const struct {
    uint32_t leaf, subleaf;
} leaves[N_LEAVES] = {
    [L1] = {1, 0},     [L7] = {7, 0},     [L7_1] = {7, 1},         [LD_1] = {0xd, 1},
    [L14] = {0x14, 0}, [L19] = {0x19, 0}, [LE1] = {0x80000001, 0}, [LE8] = {0x80000008, 0},
};

typedef struct detect {
    const char *name;
    uint8_t leaf, reg, bit, os;
} detect;

static const detect detect_table[] = {
    {"x87", L1, EDX, 0, OS_NONE},
    {"cx8", L1, EDX, 8, OS_NONE},
    {"cmov", L1, EDX, 15, OS_NONE},
    {"mmx", L1, EDX, 23, OS_NONE},
    {"fxsr", L1, EDX, 24, OS_NONE},
    {"sse", L1, EDX, 25, OS_NONE},
    {"sse2", L1, EDX, 26, OS_NONE},
    {"sse3", L1, ECX, 0, OS_NONE},
    {"pclmul", L1, ECX, 1, OS_NONE},
    {"ssse3", L1, ECX, 9, OS_NONE},
    {"fma", L1, ECX, 12, OS_AVX},
    {"cx16", L1, ECX, 13, OS_NONE},
    {"sse4.1", L1, ECX, 19, OS_NONE},
    {"sse4.2", L1, ECX, 20, OS_NONE},
    {"movbe", L1, ECX, 22, OS_NONE},
    {"popcnt", L1, ECX, 23, OS_NONE},
    {"aes", L1, ECX, 25, OS_NONE},
    {"xsave", L1, ECX, 26, OS_XSAVE},
    {"avx", L1, ECX, 28, OS_AVX},
    {"f16c", L1, ECX, 29, OS_AVX},
    {"rdrnd", L1, ECX, 30, OS_NONE},
    {"fsgsbase", L7, EBX, 0, OS_NONE},
    {"sgx", L7, EBX, 2, OS_NONE},
    {"bmi", L7, EBX, 3, OS_NONE},
    {"hle", L7, EBX, 4, OS_NONE},
    {"avx2", L7, EBX, 5, OS_AVX},
    {"bmi2", L7, EBX, 8, OS_NONE},
    {"invpcid", L7, EBX, 10, OS_NONE},
    {"rtm", L7, EBX, 11, OS_NONE},
    {"avx512f", L7, EBX, 16, OS_AVX512},
    {"avx512dq", L7, EBX, 17, OS_AVX512},
    {"rdseed", L7, EBX, 18, OS_NONE},
    {"adx", L7, EBX, 19, OS_NONE},
    {"avx512ifma", L7, EBX, 21, OS_AVX512},
    {"clflushopt", L7, EBX, 23, OS_NONE},
    {"clwb", L7, EBX, 24, OS_NONE},
    {"avx512pf", L7, EBX, 26, OS_AVX512},
    {"avx512er", L7, EBX, 27, OS_AVX512},
    {"avx512cd", L7, EBX, 28, OS_AVX512},
    {"sha", L7, EBX, 29, OS_NONE},
    {"avx512bw", L7, EBX, 30, OS_AVX512},
    {"avx512vl", L7, EBX, 31, OS_AVX512},
    {"prefetchwt1", L7, ECX, 0, OS_NONE},
    {"avx512vbmi", L7, ECX, 1, OS_AVX512},
    {"pku", L7, ECX, 4, OS_NONE},
    {"waitpkg", L7, ECX, 5, OS_NONE},
    {"avx512vbmi2", L7, ECX, 6, OS_AVX512},
    {"shstk", L7, ECX, 7, OS_NONE},
    {"gfni", L7, ECX, 8, OS_NONE},
    {"vaes", L7, ECX, 9, OS_AVX},
    {"vpclmulqdq", L7, ECX, 10, OS_AVX},
    {"avx512vnni", L7, ECX, 11, OS_AVX512},
    {"avx512bitalg", L7, ECX, 12, OS_AVX512},
    {"avx512vpopcntdq", L7, ECX, 14, OS_AVX512},
    {"rdpid", L7, ECX, 22, OS_NONE},
    {"kl", L7, ECX, 23, OS_NONE},
    {"cldemote", L7, ECX, 25, OS_NONE},
    {"movdiri", L7, ECX, 27, OS_NONE},
    {"movdir64b", L7, ECX, 28, OS_NONE},
    {"enqcmd", L7, ECX, 29, OS_NONE},
    {"uintr", L7, EDX, 5, OS_NONE},
    {"avx512vp2intersect", L7, EDX, 8, OS_AVX512},
    {"serialize", L7, EDX, 14, OS_NONE},
    {"tsxldtrk", L7, EDX, 16, OS_NONE},
    {"pconfig", L7, EDX, 18, OS_NONE},
    {"amx-bf16", L7, EDX, 22, OS_AMX},
    {"avx512fp16", L7, EDX, 23, OS_AVX512},
    {"amx-tile", L7, EDX, 24, OS_AMX},
    {"amx-int8", L7, EDX, 25, OS_AMX},
    {"sha512", L7_1, EAX, 0, OS_AVX},
    {"sm3", L7_1, EAX, 1, OS_AVX},
    {"sm4", L7_1, EAX, 2, OS_AVX},
    {"raoint", L7_1, EAX, 3, OS_NONE},
    {"avxvnni", L7_1, EAX, 4, OS_AVX},
    {"avx512bf16", L7_1, EAX, 5, OS_AVX512},
    {"cmpccxadd", L7_1, EAX, 7, OS_NONE},
    {"amx-fp16", L7_1, EAX, 21, OS_AMX},
    {"hreset", L7_1, EAX, 22, OS_NONE},
    {"avxifma", L7_1, EAX, 23, OS_AVX},
    {"avxvnniint8", L7_1, EDX, 4, OS_AVX},
    {"avxneconvert", L7_1, EDX, 5, OS_AVX},
    {"amx-complex", L7_1, EDX, 8, OS_AMX},
    {"avxvnniint16", L7_1, EDX, 10, OS_AVX},
    {"prefetchi", L7_1, EDX, 14, OS_NONE},
    {"xsaveopt", LD_1, EAX, 0, OS_XSAVE},
    {"xsavec", LD_1, EAX, 1, OS_XSAVE},
    {"xsaves", LD_1, EAX, 3, OS_XSAVE},
    {"ptwrite", L14, EBX, 4, OS_NONE},
    {"widekl", L19, EBX, 2, OS_NONE},
    {"sahf", LE1, ECX, 0, OS_NONE},
    {"lzcnt", LE1, ECX, 5, OS_NONE},
    {"sse4a", LE1, ECX, 6, OS_NONE},
    {"prfchw", LE1, ECX, 8, OS_NONE},
    {"xop", LE1, ECX, 11, OS_AVX},
    {"lwp", LE1, ECX, 15, OS_NONE},
    {"fma4", LE1, ECX, 16, OS_AVX},
    {"tbm", LE1, ECX, 21, OS_NONE},
    {"mwaitx", LE1, ECX, 29, OS_NONE},
    {"64bit", LE1, EDX, 29, OS_NONE},
    {"clzero", LE8, EBX, 0, OS_NONE},
    {"rdpru", LE8, EBX, 4, OS_NONE},
    {"wbnoinvd", LE8, EBX, 9, OS_NONE},
};

static const composite composite_table[] = {
    {"crc32", "sse4.2"},    /* LLVM splits CRC32 out of SSE4.2 */
    {"evex512", "avx512f"}, /* 512-bit EVEX forms, implied by AVX-512 since LLVM 18 */
    {"nopl", ""},           /* every x86-64 CPU */
};

/* LLVM x86 flags that only steer instruction selection or scheduling. */
static const char *const harmless_table[] = {
    "fast-*",
    "slow-*",
    "tuning-*",
    "prefer-*",
    "false-deps-*",
    "no-bypass-delay*",
    "idivl-to-divb",
    "idivq-to-divl",
    "lea-sp",
    "lea-uses-ag",
    "macrofusion",
    "branchfusion",
    "branch-hint",
    "pad-short-functions",
    "allow-light-256-bit",
    "ermsb",
    "fsrm",
    "sse-unaligned-mem",
    "vzeroupper",
    "use-glm-div-sqrt-costs",
    "use-slm-arith-costs",
    "retpoline*",
    "lvi-*",
    "harden-sls-*",
    "seses",
    "soft-float",
    "inline-asm-use-gpr32",
};

typedef struct cpu_state {
    uint32_t regs[N_LEAVES][4];
    uint64_t xcr0;
    bool amx_permitted;
} cpu_state;

static cpu_state cpu;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

/* Linux (5.16+) gives a process AMX tile data only on request. */
static bool request_amx(void)
{
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

static void cpu_init(void)
{
    for (int i = 0; i < N_LEAVES; i++) {
        uint32_t *r = cpu.regs[i];
        if (!__get_cpuid_count(leaves[i].leaf, leaves[i].subleaf, &r[EAX], &r[EBX], &r[ECX],
                               &r[EDX]))
            memset(r, 0, sizeof cpu.regs[i]);
    }
    bool osxsave = cpu.regs[L1][ECX] >> 27 & 1;
    cpu.xcr0 = osxsave ? read_xcr0() : 0;
    bool amx_hw = (cpu.regs[L7][EDX] >> 24 & 1) && (cpu.xcr0 & 0x60000) == 0x60000;
    cpu.amx_permitted = amx_hw && request_amx();
}

static bool os_saves(uint8_t os)
{
    bool osxsave = cpu.regs[L1][ECX] >> 27 & 1;
    switch (os) {
    case OS_XSAVE: return osxsave;
    case OS_AVX: return osxsave && (cpu.xcr0 & 0x6) == 0x6;
    case OS_AVX512: return osxsave && (cpu.xcr0 & 0xe6) == 0xe6;
    case OS_AMX: return osxsave && cpu.amx_permitted;
    default: return true;
    }
}

static bool detect_present(const detect *d)
{
    pthread_once(&cpu_once, cpu_init);
    return (cpu.regs[d->leaf][d->reg] >> d->bit & 1) && os_saves(d->os);
}

/* ---- aarch64: the kernel's hwcaps ---------------------------------------- */
#elif RT_CPU_ARM64

typedef struct detect {
    const char *name;
    uint8_t word;  /* 1: AT_HWCAP, 2: AT_HWCAP2 */
    uint64_t mask; /* every bit must be set */
} detect;

#define B(n) ((uint64_t)1 << (n))
/* bit numbers from Linux's arch/arm64/include/uapi/asm/hwcap.h */
static const detect detect_table[] = {
    {"fp-armv8", 1, B(0)},
    {"neon", 1, B(1)},
    {"aes", 1, B(3) | B(4)},
    {"sha2", 1, B(5) | B(6)},
    {"crc", 1, B(7)},
    {"lse", 1, B(8)},
    {"fullfp16", 1, B(9) | B(10)},
    {"rdm", 1, B(12)},
    {"jsconv", 1, B(13)},
    {"complxnum", 1, B(14)},
    {"rcpc", 1, B(15)},
    {"ccpp", 1, B(16)},
    {"sha3", 1, B(17) | B(21)},
    {"sm4", 1, B(18) | B(19)},
    {"dotprod", 1, B(20)},
    {"sve", 1, B(22)},
    {"fp16fml", 1, B(23)},
    {"dit", 1, B(24)},
    {"lse2", 1, B(25)},
    {"rcpc-immo", 1, B(26)},
    {"flagm", 1, B(27)},
    {"ssbs", 1, B(28)},
    {"sb", 1, B(29)},
    {"pauth", 1, B(30) | B(31)},
    {"ccdp", 2, B(0)},
    {"sve2", 2, B(1)},
    {"sve2-aes", 2, B(2) | B(3)},
    {"sve2-bitperm", 2, B(4)},
    {"sve2-sha3", 2, B(5)},
    {"sve2-sm4", 2, B(6)},
    {"altnzcv", 2, B(7)},
    {"fptoint", 2, B(8)},
    {"f32mm", 2, B(10)},
    {"f64mm", 2, B(11)},
    {"i8mm", 2, B(13)},
    {"bf16", 2, B(14)},
    {"rand", 2, B(16)},
    {"bti", 2, B(17)},
    {"mte", 2, B(18)},
    {"ecv", 2, B(19)},
    {"sme", 2, B(23)},
    {"sme-i16i64", 2, B(24)},
    {"sme-f64f64", 2, B(25)},
    {"wfxt", 2, B(31)},
    {"cssc", 2, B(34)},
    {"sve2p1", 2, B(36)},
    {"sme2", 2, B(37)},
    {"sme2p1", 2, B(38)},
    {"mops", 2, B(43)},
    {"hbc", 2, B(44)},
};
#undef B

/* architecture versions: the optional-before, mandatory-since features that
 * Linux reports (LLVM's HasV8_*aOps) */
static const composite composite_table[] = {
    {"crypto", "aes,sha2"},
    {"v8a", "fp-armv8,neon"},
    {"v8.1a", "v8a,crc,lse,rdm"},
    {"v8.2a", "v8.1a,ccpp"},
    {"v8.3a", "v8.2a,rcpc,jsconv,complxnum,pauth"},
    {"v8.4a", "v8.3a,dotprod,dit,flagm,rcpc-immo,lse2"},
    {"v8.5a", "v8.4a,altnzcv,fptoint,sb,ssbs,ccdp,bti"},
    {"v8.6a", "v8.5a,bf16,i8mm,ecv"},
    {"v9a", "v8.5a,sve2"},
};

/* LLVM AArch64 flags that only steer instruction selection or scheduling. */
static const char *const harmless_table[] = {
    "fuse-*",
    "slow-*",
    "use-*",
    "zcz*",
    "no-zcz*",
    "balance-fp-ops",
    "predictable-select-expensive",
    "lsl-fast",
    "alu-lsl-fast",
    "addr-lsl-fast",
    "ascend-store-address",
    "enable-select-opt",
    "cmp-bcc-fusion",
    "arith-bcc-fusion",
    "arith-cbz-fusion",
    "custom-cheap-as-move",
    "exynos-cheap-as-move",
    "disable-latency-sched-heuristic",
    "store-pair-suppress",
    "no-neg-immediates",
    "strict-align",
    "reserve-x*",
    "call-saved-x*",
    "outline-atomics",
    "disable-ldp",
    "disable-stp",
    "ldp-aligned-only",
    "stp-aligned-only",
    "avoid-ldapur",
    "fix-cortex-a53-835769",
    "harden-sls-*",
    "no-sve-fp-ld1r",
    "force-32bit-jump-tables",
    "tagged-globals",
};

static bool detect_present(const detect *d)
{
    uint64_t caps = getauxval(d->word == 1 ? AT_HWCAP : AT_HWCAP2);
    return (caps & d->mask) == d->mask;
}

/* ---- anything else: nothing is known --------------------------------- */
#else

typedef struct detect {
    const char *name;
} detect;
static const detect detect_table[] = {{""}};
static const composite composite_table[] = {{"", ""}};
static const char *const harmless_table[] = {""};
static bool detect_present(const detect *d) { return d->name[0] == 0; }

#endif

/* ---- the policy, common to all architectures ------------------------------ */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool name_is(const char *pattern, const char *name)
{
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '*') return strncmp(pattern, name, n - 1) == 0;
    return strcmp(pattern, name) == 0;
}

static bool feature_present(const char *name, int depth);

/* Every name of the comma-separated list is present. */
static bool all_present(const char *list, int depth)
{
    char name[RT_FEATURE_NAME_MAX];
    while (*list) {
        size_t n = strcspn(list, ",");
        snprintf(name, sizeof name, "%.*s", (int)n, list);
        if (!feature_present(name, depth + 1)) return false;
        list += n + (list[n] == ',');
    }
    return true;
}

static bool feature_present(const char *name, int depth)
{
    if (depth > 8 || !name[0]) return false;
    for (size_t i = 0; i < COUNT(detect_table); i++)
        if (strcmp(detect_table[i].name, name) == 0) return detect_present(&detect_table[i]);
    for (size_t i = 0; i < COUNT(composite_table); i++)
        if (strcmp(composite_table[i].name, name) == 0)
            return all_present(composite_table[i].implies, depth);
    for (size_t i = 0; i < COUNT(harmless_table); i++)
        if (harmless_table[i][0] && name_is(harmless_table[i], name)) return true;
    return false;
}

bool rt_cpu_has(const char *feature)
{
    if (!feature) return false;
    if (feature[0] == '+') feature++;
    return feature_present(feature, 0);
}

/* Whether the list already holds name (so a repeated name is reported once). */
static bool list_has(const char *list, const char *name, size_t n)
{
    for (const char *p = list; *p;) {
        size_t m = strcspn(p, ",");
        if (m == n && memcmp(p, name, n) == 0) return true;
        p += m + (p[m] == ',');
    }
    return false;
}

typedef struct out_list {
    char *buf;
    size_t size, len;
    bool full;
} out_list;

/* Appends name[0..n) to the list; once one does not fit, appends "..." if
 * that fits and nothing more. */
static void out_append(out_list *o, const char *name, size_t n)
{
    if (!o->buf || !o->size || o->full || list_has(o->buf, name, n)) return;
    size_t sep = o->len ? 1 : 0;
    if (o->len + sep + n + 1 > o->size) {
        o->full = true;
        if (o->len + sep + 4 <= o->size) memcpy(o->buf + o->len, sep ? ",..." : "...", sep + 4);
        return;
    }
    if (sep) o->buf[o->len++] = ',';
    memcpy(o->buf + o->len, name, n);
    o->len += n;
    o->buf[o->len] = 0;
}

qmc_status qmc_check_cpu(const char *features, char *missing, size_t missing_size)
{
    out_list out = {missing, missing_size, 0, false};
    if (missing && missing_size) missing[0] = 0;
    bool all = true;
    for (const char *p = features ? features : ""; *p;) {
        size_t n = strcspn(p, ",");
        const char *item = p;
        p += n + (p[n] == ',');
        while (n && (*item == ' ' || *item == '\t')) item++, n--;
        while (n && (item[n - 1] == ' ' || item[n - 1] == '\t')) n--;
        if (n && *item == '+') item++, n--;
        if (!n || *item == '-') continue;
        char name[RT_FEATURE_NAME_MAX];
        bool present = false;
        if (n < sizeof name) {
            memcpy(name, item, n);
            name[n] = 0;
            present = feature_present(name, 0);
        }
        if (!present) {
            all = false;
            out_append(&out, item, n);
        }
    }
    return all ? QMC_OK : QMC_ERR_CPU;
}
