/* test_rt_cpu.c: CPU feature detection. For every feature qmc's kernels can
 * be compiled for (codegen's list, which is also what a compiled model asks
 * the runtime for) the detection agrees with the kernel's /proc/cpuinfo
 * flags; amx-int8 is missing on a machine without AMX; and feature lists
 * are parsed by the documented policy (+/- prefixes, spaces, empty items,
 * harmless tuning names, unknown names, duplicates, truncation of the
 * missing list).
 *
 * Features qmc never compiles for may disagree without failing: the kernel
 * hides some that CPUID reports (RDSEED on AMD Zen 5, an erratum), and a
 * compiled model never asks for them. Those differences are printed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "codegen.h"
#include "rt.h"

/* The kernel's flags (x86 "flags", aarch64 "Features") of the first CPU,
 * space-separated with a space at both ends; false if there is none. */
static bool cpuinfo_flags(char *buf, size_t size)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) != 0 && strncmp(line, "Features", 8) != 0) continue;
        char *colon = strchr(line, ':');
        if (!colon) continue;
        line[strcspn(line, "\n")] = 0;
        snprintf(buf, size, "%s ", colon + 1);
        found = true;
    }
    fclose(f);
    return found;
}

static bool flag_in(const char *flags, const char *flag)
{
    char word[64];
    snprintf(word, sizeof word, " %s ", flag);
    return strstr(flags, word) != NULL;
}

typedef struct pair {
    const char *llvm, *kernel;
} pair;

#if defined(__x86_64__)
static const cg_arch host_arch = CG_ARCH_X86_64;
static const pair pairs[] = {
    {"sse", "sse"},
    {"sse2", "sse2"},
    {"sse3", "pni"},
    {"ssse3", "ssse3"},
    {"sse4.1", "sse4_1"},
    {"sse4.2", "sse4_2"},
    {"popcnt", "popcnt"},
    {"cx8", "cx8"},
    {"cx16", "cx16"},
    {"cmov", "cmov"},
    {"mmx", "mmx"},
    {"fxsr", "fxsr"},
    {"pclmul", "pclmulqdq"},
    {"aes", "aes"},
    {"movbe", "movbe"},
    {"xsave", "xsave"},
    {"avx", "avx"},
    {"f16c", "f16c"},
    {"fma", "fma"},
    {"rdrnd", "rdrand"},
    {"avx2", "avx2"},
    {"bmi", "bmi1"},
    {"bmi2", "bmi2"},
    {"adx", "adx"},
    {"rdseed", "rdseed"},
    {"clflushopt", "clflushopt"},
    {"clwb", "clwb"},
    {"sha", "sha_ni"},
    {"avx512f", "avx512f"},
    {"avx512dq", "avx512dq"},
    {"avx512cd", "avx512cd"},
    {"avx512bw", "avx512bw"},
    {"avx512vl", "avx512vl"},
    {"avx512ifma", "avx512ifma"},
    {"avx512vbmi", "avx512vbmi"},
    {"avx512vbmi2", "avx512_vbmi2"},
    {"avx512vnni", "avx512_vnni"},
    {"avx512bitalg", "avx512_bitalg"},
    {"avx512vpopcntdq", "avx512_vpopcntdq"},
    {"avx512bf16", "avx512_bf16"},
    {"avx512fp16", "avx512_fp16"},
    {"avxvnni", "avx_vnni"},
    {"gfni", "gfni"},
    {"vaes", "vaes"},
    {"vpclmulqdq", "vpclmulqdq"},
    {"amx-tile", "amx_tile"},
    {"amx-int8", "amx_int8"},
    {"amx-bf16", "amx_bf16"},
    {"rdpid", "rdpid"},
    {"xsaveopt", "xsaveopt"},
    {"xsavec", "xsavec"},
    {"xsaves", "xsaves"},
    {"sahf", "lahf_lm"},
    {"lzcnt", "abm"},
    {"sse4a", "sse4a"},
    {"prfchw", "3dnowprefetch"},
    {"clzero", "clzero"},
    {"64bit", "lm"},
    {"movdiri", "movdiri"},
    {"serialize", "serialize"},
};
static const char *const native[] = {"sse2", "+sse2", "64bit", "nopl", "x87"};
static const char *const foreign[] = {"neon", "sve", "fp-armv8", "dotprod"};
#elif defined(__aarch64__)
static const cg_arch host_arch = CG_ARCH_AARCH64;
static const pair pairs[] = {
    {"fp-armv8", "fp"},      {"neon", "asimd"}, {"crc", "crc32"},    {"lse", "atomics"},
    {"dotprod", "asimddp"},  {"rcpc", "lrcpc"}, {"sve", "sve"},      {"sve2", "sve2"},
    {"i8mm", "i8mm"},        {"bf16", "bf16"},  {"rdm", "asimdrdm"}, {"sb", "sb"},
    {"fullfp16", "asimdhp"},
};
static const char *const native[] = {"neon", "+fp-armv8", "v8a"};
static const char *const foreign[] = {"avx2", "sse2", "amx-int8"};
#else
static const pair pairs[] = {{"", ""}};
static const char *const native[] = {""};
static const char *const foreign[] = {"avx2", "neon"};
#endif

/* The kernel's name for an LLVM feature name, or NULL if pairs lacks it. */
static const char *kernel_name(const char *llvm)
{
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        if (strcmp(pairs[i].llvm, llvm) == 0) return pairs[i].kernel;
    return NULL;
}

static bool compiled_for(const char *llvm)
{
#if defined(__x86_64__) || defined(__aarch64__)
    for (const char *const *f = cg_arch_feature_names(host_arch); *f; f++)
        if (strcmp(*f, llvm) == 0) return true;
#endif
    (void)llvm;
    return false;
}

/* Every feature qmc compiles for: the runtime says present exactly when the
 * kernel does. A CPU whose kernel hides such a feature must not run code
 * that uses it, and one that has it must not be refused. */
static void test_agrees_with_cpuinfo(void **state)
{
    (void)state;
    static char flags[8192];
    if (!pairs[0].llvm[0] || !cpuinfo_flags(flags, sizeof flags)) skip();
#if defined(__x86_64__) || defined(__aarch64__)
    int checked = 0;
    for (const char *const *f = cg_arch_feature_names(host_arch); *f; f++) {
        const char *kernel = kernel_name(*f);
        if (!kernel)
            fail_msg("%s: qmc compiles for it, but this test does not know its /proc/cpuinfo name",
                     *f);
        bool in_kernel = flag_in(flags, kernel), ours = rt_cpu_has(*f);
        if (in_kernel != ours)
            fail_msg("%s: the runtime says %s, /proc/cpuinfo's '%s' says %s", *f,
                     ours ? "present" : "missing", kernel, in_kernel ? "present" : "missing");
        checked++;
    }
    assert_true(checked > 0);
#endif
}

/* The features qmc never compiles for: printed when the two disagree (the
 * kernel may hide what CPUID reports), never a failure. */
static void test_other_features_reported(void **state)
{
    (void)state;
    static char flags[8192];
    if (!pairs[0].llvm[0] || !cpuinfo_flags(flags, sizeof flags)) skip();
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        if (compiled_for(pairs[i].llvm)) continue;
        bool in_kernel = flag_in(flags, pairs[i].kernel), ours = rt_cpu_has(pairs[i].llvm);
        if (in_kernel != ours)
            print_message("note: %s: cpuid says %s, /proc/cpuinfo's '%s' says %s (qmc never "
                          "compiles for it)\n",
                          pairs[i].llvm, ours ? "present" : "missing", pairs[i].kernel,
                          in_kernel ? "present" : "missing");
    }
}

static void test_native_and_foreign(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof native / sizeof native[0]; i++)
        if (native[i][0]) assert_true(rt_cpu_has(native[i]));
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        assert_false(rt_cpu_has(foreign[i]));
    assert_false(rt_cpu_has("no-such-feature"));
    assert_false(rt_cpu_has(""));
    assert_false(rt_cpu_has(NULL));
}

static void test_amx_missing_here(void **state)
{
    (void)state;
#if defined(__x86_64__)
    static char flags[8192];
    if (!cpuinfo_flags(flags, sizeof flags) || flag_in(flags, "amx_int8")) skip();
    char missing[128];
    assert_int_equal(qmc_check_cpu("sse2,amx-int8,sse4.1,amx-tile", missing, sizeof missing),
                     QMC_ERR_CPU);
    assert_string_equal(missing, "amx-int8,amx-tile");
#else
    skip();
#endif
}

static void test_composites_and_harmless(void **state)
{
    (void)state;
#if defined(__x86_64__)
    assert_int_equal(rt_cpu_has("crc32"), rt_cpu_has("sse4.2"));
    assert_int_equal(rt_cpu_has("evex512"), rt_cpu_has("avx512f"));
    static const char *const tuning[] = {"fast-gather",       "slow-3ops-lea", "prefer-256-bit",
                                         "false-deps-popcnt", "macrofusion",   "idivq-to-divl"};
#elif defined(__aarch64__)
    assert_int_equal(rt_cpu_has("crypto"), rt_cpu_has("aes") && rt_cpu_has("sha2"));
    static const char *const tuning[] = {"fuse-aes", "slow-paired-128", "use-postra-scheduler"};
#else
    static const char *const tuning[] = {""};
    skip();
#endif
    for (size_t i = 0; i < sizeof tuning / sizeof tuning[0]; i++)
        assert_true(rt_cpu_has(tuning[i]));
    char missing[64];
    assert_int_equal(qmc_check_cpu(tuning[0], missing, sizeof missing), QMC_OK);
}

/* A feature this machine has, to build lists that must pass. */
static const char *present_feature(void) { return native[0][0] ? native[0] : NULL; }

static void test_parse_lists(void **state)
{
    (void)state;
    char missing[64];
    static const char *const ok_lists[] = {"", ",", ",,,", " ", " , ,", "-amx-int8", "-neon,,-x"};
    for (size_t i = 0; i < sizeof ok_lists / sizeof ok_lists[0]; i++) {
        strcpy(missing, "junk");
        assert_int_equal(qmc_check_cpu(ok_lists[i], missing, sizeof missing), QMC_OK);
        assert_string_equal(missing, "");
    }
    assert_int_equal(qmc_check_cpu(NULL, missing, sizeof missing), QMC_OK);
    assert_int_equal(qmc_check_cpu(NULL, NULL, 0), QMC_OK);
    const char *have = present_feature();
    if (!have) skip();
    char list[128];
    snprintf(list, sizeof list, "  %s ,+%s,\t%s\t", have, have + (have[0] == '+'), have);
    assert_int_equal(qmc_check_cpu(list, missing, sizeof missing), QMC_OK);
    /* unknown names are missing, reported once each, in order, trimmed */
    snprintf(list, sizeof list, "bogus-b, %s ,+bogus-a,bogus-b,bogus-a ", have);
    assert_int_equal(qmc_check_cpu(list, missing, sizeof missing), QMC_ERR_CPU);
    assert_string_equal(missing, "bogus-b,bogus-a");
    assert_int_equal(qmc_check_cpu(foreign[0], missing, sizeof missing), QMC_ERR_CPU);
    assert_string_equal(missing, foreign[0]);
}

static void test_missing_buffer_limits(void **state)
{
    (void)state;
    const char *list = "bogus-aa,bogus-bb,bogus-cc";
    char buf[64];
    assert_int_equal(qmc_check_cpu(list, NULL, 0), QMC_ERR_CPU);
    assert_int_equal(qmc_check_cpu(list, buf, 1), QMC_ERR_CPU);
    assert_string_equal(buf, "");
    assert_int_equal(qmc_check_cpu(list, buf, 9), QMC_ERR_CPU);
    assert_string_equal(buf, "bogus-aa"); /* no room for ",..." */
    assert_int_equal(qmc_check_cpu(list, buf, 13), QMC_ERR_CPU);
    assert_string_equal(buf, "bogus-aa,...");
    assert_int_equal(qmc_check_cpu(list, buf, 4), QMC_ERR_CPU);
    assert_string_equal(buf, "...");
    assert_int_equal(qmc_check_cpu(list, buf, sizeof buf), QMC_ERR_CPU);
    assert_string_equal(buf, "bogus-aa,bogus-bb,bogus-cc");
    /* a name longer than any feature name is missing, and written whole */
    char long_name[100];
    memset(long_name, 'x', 80);
    long_name[80] = 0;
    assert_int_equal(qmc_check_cpu(long_name, buf, sizeof buf), QMC_ERR_CPU);
    assert_int_equal(strlen(buf), 3); /* 80 chars do not fit 64: "..." */
    char big[128];
    assert_int_equal(qmc_check_cpu(long_name, big, sizeof big), QMC_ERR_CPU);
    assert_string_equal(big, long_name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agrees_with_cpuinfo),
        cmocka_unit_test(test_other_features_reported),
        cmocka_unit_test(test_native_and_foreign),
        cmocka_unit_test(test_amx_missing_here),
        cmocka_unit_test(test_composites_and_harmless),
        cmocka_unit_test(test_parse_lists),
        cmocka_unit_test(test_missing_buffer_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
