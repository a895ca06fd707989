/* The demonstration runs in its quick mode and checks its own claims; its
 * output is checked here too. */
#include "test.h"

#include <sys/wait.h>

TEST_TIMEOUT(demo_quick_runs_and_verifies, 120)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/examples/demo --quick 2>&1", vt_build_dir());
    FILE *p = popen(cmd, "r");
    ASSERT(p);
    static char out[1 << 16];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) SKIP("demo not built");
    ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "demo failed (%#x):\n%s", st, out);
    /* the programs' real output */
    ASSERT_STR_CONTAINS(out, "  Brainfuck compiled to x86-64 inside one reserved region");
    ASSERT_STR_CONTAINS(out, "\n0123456789\n");
    ASSERT_STR_CONTAINS(out, "\nIBM\n");
    ASSERT_STR_CONTAINS(out, "hot program: 65280 loop-head calls into the plug-in");
    /* its checks */
    ASSERT_STR_CONTAINS(out, "W^X on");
    ASSERT_STR_CONTAINS(out, "(inside the region: yes)");
    ASSERT_STR_CONTAINS(out, "rel32 call sites: each decodes to its intended target and reaches it");
    ASSERT_STR_CONTAINS(out, "rwx mappings in /proc/self/maps: 0 (W^X holds)");
    ASSERT_STR_CONTAINS(out, "far / direct");
    /* the map shows the code heap and the plug-in */
    ASSERT_STR_CONTAINS(out, "code heap  code, committed");
    ASSERT_STR_CONTAINS(out, "library    code, committed ");
    ASSERT_STR_CONTAINS(out, "/examples/libbfplug.so\n");
    ASSERT_STR_CONTAINS(out, "stubs      code, committed 4K");
    ASSERT_STR_CONTAINS(out, "plug-in segments:  0x");
    ASSERT_STR_CONTAINS(out, " r-x ");
    /* thousands of fragments */
    char *f = strstr(out, "fragments");
    ASSERT(f);
    while (f > out && f[-1] == ' ') f--;
    while (f > out && f[-1] >= '0' && f[-1] <= '9') f--;
    ASSERT_GE(atoi(f), 2000);
}

/* The README's example (examples/readme.c) and examples/hello.c run and say
 * what the README says they do. */
static void run_example(const char *name, const char *expect)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/examples/%s 2>&1", vt_build_dir(), name);
    FILE *p = popen(cmd, "r");
    ASSERT(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed (%#x): %s", name, st, out);
    ASSERT_STR_CONTAINS(out, expect);
}

TEST(examples_run)
{
    run_example("readme", "crc32(\"vmcode\") = 1531581191, through a jmp rel32\n");
    run_example("hello", "returned 42; reaches main by rel32: yes\n");
}

/* The example README.md shows is examples/readme.c, byte for byte (the
 * program examples_run builds and runs). */
TEST(readme_example_is_examples_readme_c)
{
    char *readme = vt_read_file(vt_src_path("README.md"));
    if (!readme) SKIP("no README.md (set VMC_TEST_SRC to the source tree)");
    char *prog = vt_read_file(vt_src_path("examples/readme.c"));
    ASSERT(prog);
    char *start = strstr(readme, "```c\n");
    ASSERT_MSG(start, "README.md has no ```c block");
    start += 5;
    char *end = strstr(start, "```\n");
    ASSERT(end);
    ASSERT_MSG((size_t)(end - start) == strlen(prog) && !memcmp(start, prog, strlen(prog)),
               "README.md's example differs from examples/readme.c");
    free(readme);
    free(prog);
}
