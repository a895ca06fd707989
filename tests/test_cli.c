/* The vmcode CLI: commands, --json, --help, and wrong usage (exit 2). */
#include "test.h"

#include <sys/wait.h>
#include <unistd.h>

/* Runs `vmcode ARGS` from the build directory; returns its exit status and
 * its stdout+stderr in *out (caller frees). */
/* Run build/vmcode with args; its output (stdout and stderr, or with
 * vmcode_stdout stdout alone) in *out, its exit status returned. */
static int run_vmcode(const char *args, const char *redirect, char **out)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/vmcode %s %s", vt_build_dir(), args, redirect);
    FILE *p = popen(cmd, "r");
    ASSERT(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int vmcode(const char *args, char **out) { return run_vmcode(args, "2>&1", out); }
static int vmcode_stdout(const char *args, char **out) { return run_vmcode(args, "2>/dev/null", out); }

/* Braces, brackets and quotes balance: enough to catch a broken printer. */
static int json_balanced(const char *s)
{
    int depth = 0, in_str = 0;
    for (; *s; s++) {
        if (in_str) {
            if (*s == '\\') s++;
            else if (*s == '"') in_str = 0;
            continue;
        }
        if (*s == '"') in_str = 1;
        else if (*s == '{' || *s == '[') depth++;
        else if (*s == '}' || *s == ']') {
            if (--depth < 0) return 0;
        }
    }
    return depth == 0 && !in_str;
}

TEST(cli_info)
{
    char *out;
    ASSERT_EQ(vmcode("info", &out), 0);
    ASSERT_STR_CONTAINS(out, "code region   0x");
    ASSERT_STR_CONTAINS(out, "2048 MiB  (asked 2048 MiB)");
    ASSERT_STR_CONTAINS(out, "placement     near_app");
    ASSERT_STR_CONTAINS(out, "reach all of it by rel32");
    free(out);
    ASSERT_EQ(vmcode("info -vm_size 256M -vmheap_size 0 -no_near_app", &out), 0);
    ASSERT_STR_CONTAINS(out, "256 MiB  (asked 256 MiB)");
    ASSERT_STR_CONTAINS(out, "heap region   none");
    ASSERT_STR_CONTAINS(out, "placement     vm_base");
    free(out);
    ASSERT_EQ(vmcode("info --json -vm_size 64M", &out), 0);
    ASSERT(json_balanced(out));
    ASSERT_STR_CONTAINS(out, "\"code_size\":67108864");
    ASSERT_STR_CONTAINS(out, "\"placement\":\"near_app\"");
    ASSERT_STR_CONTAINS(out, "\"w_xor_x\":false");
    ASSERT_STR_CONTAINS(out, "\"near_app_failed\":false");
    ASSERT(!strstr(out, "FAILED"));
    free(out);
    /* a target nothing can reach (kernel space): said plainly, both ways */
    ASSERT_EQ(vmcode("info -vm_size 64M -vmheap_size 0 -reach_lo 0xffff800000000000 "
                     "-reach_hi 0xffff800000001000", &out), 0);
    ASSERT_STR_CONTAINS(out, "placement     vm_base\nnear_app      FAILED: from no free place would "
                             "any of the region reach the target;");
    ASSERT_STR_CONTAINS(out, "reaching      0 MiB of 64 MiB (0.0 %)");
    free(out);
    ASSERT_EQ(vmcode("info --json -vm_size 64M -vmheap_size 0 -reach_lo 0xffff800000000000 "
                     "-reach_hi 0xffff800000001000", &out), 0);
    ASSERT(json_balanced(out));
    ASSERT_STR_CONTAINS(out, "\"placement\":\"vm_base\"");
    ASSERT_STR_CONTAINS(out, "\"code_reaching\":0,");
    ASSERT_STR_CONTAINS(out, "\"near_app_failed\":true}");
    free(out);
}

TEST(cli_maps)
{
    char *out;
    ASSERT_EQ(vmcode("maps -vm_size 64M -vmheap_size 16M", &out), 0);
    ASSERT_STR_CONTAINS(out, "code region 0x");
    ASSERT_STR_CONTAINS(out, "64M  free");
    ASSERT_STR_CONTAINS(out, "heap region 0x");
    free(out);
    ASSERT_EQ(vmcode("maps --json -vm_size 64M -vmheap_size 0", &out), 0);
    ASSERT(json_balanced(out));
    ASSERT_STR_CONTAINS(out, "\"runs\":[{\"region\":\"code\"");
    ASSERT_STR_CONTAINS(out, "\"owner\":\"free\"");
    free(out);
}

TEST(cli_help_and_bad_usage)
{
    char *out;
    ASSERT_EQ(vmcode("--help", &out), 0);
    ASSERT_STR_CONTAINS(out, "usage: vmcode COMMAND");
    ASSERT_STR_CONTAINS(out, "info [--json]");
    free(out);
    ASSERT_EQ(vmcode("info --help", &out), 0);
    ASSERT_STR_CONTAINS(out, "usage: vmcode info");
    ASSERT_STR_CONTAINS(out, "placement step");
    free(out);
    ASSERT_EQ(vmcode("", &out), 2);
    ASSERT_STR_CONTAINS(out, "usage: vmcode COMMAND");
    free(out);
    ASSERT_EQ(vmcode("frobnicate", &out), 2);
    ASSERT_STR_CONTAINS(out, "vmcode: unknown command 'frobnicate'");
    free(out);
    ASSERT_EQ(vmcode("info --bogus", &out), 2);
    ASSERT_STR_CONTAINS(out, "vmcode info: unknown flag '--bogus'");
    free(out);
    ASSERT_EQ(vmcode("info -vm_size 3G", &out), 2);
    ASSERT_STR_CONTAINS(out, "vm_size 0xc0000000 is outside 4K..2G");
    free(out);
    ASSERT_EQ(vmcode("maps -frob", &out), 2);
    ASSERT_STR_CONTAINS(out, "unknown option '-frob'");
    free(out);
}

TEST(cli_open_failure_exit_1)
{
    char *out;
    /* a 2G region with no room to halve, under a 1 GiB address-space limit */
    if (vt_sanitized()) SKIP("sanitizer shadow memory does not fit under RLIMIT_AS");
    char args[256];
    snprintf(args, sizeof args, "info -no_allow_smaller");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "sh -c 'ulimit -v 1048576; %s/vmcode %s' 2>&1", vt_build_dir(), args);
    FILE *p = popen(cmd, "r");
    char buf[1024] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    ASSERT_EQ(WEXITSTATUS(st), 1);
    ASSERT_STR_CONTAINS(buf, "code region: cannot reserve 2G: Cannot allocate memory");
    out = NULL;
    free(out);
}

TEST(cli_load)
{
    char *out, args[512];
    const char *libz = "/usr/lib/x86_64-linux-gnu/libz.so.1";
    if (access(libz, R_OK)) SKIP("no libz.so.1 on this system");
    snprintf(args, sizeof args, "load %s --sym compress2 --sym deflateEnd", libz);
    ASSERT_EQ(vmcode(args, &out), 0);
    ASSERT_STR_CONTAINS(out, "inside the code region, loaded in");
    ASSERT_STR_CONTAINS(out, "  segment   0x");
    ASSERT_STR_CONTAINS(out, " r-x\n");
    ASSERT_STR_CONTAINS(out, " relative, ");
    ASSERT_STR_CONTAINS(out, " to itself, 0 to private libraries, ");
    ASSERT_STR_CONTAINS(out, " bytes read into the loader's memory\n");
    ASSERT_STR_CONTAINS(out, "  needs     libc.so.6                the host's copy");
    ASSERT_STR_CONTAINS(out, "symbol compress2                0x");
    ASSERT_STR_CONTAINS(out, "symbol deflateEnd               0x");
    free(out);
    snprintf(args, sizeof args, "load --json --options \"-vm_size 256M\" %s --sym compress2 --sym nope", libz);
    ASSERT_EQ(vmcode(args, &out), 1);  /* a symbol not found */
    ASSERT(json_balanced(out));
    ASSERT_STR_CONTAINS(out, "\"inside_code_region\":true");
    ASSERT_STR_CONTAINS(out, "\"tables_copied\":");
    ASSERT_STR_CONTAINS(out, "\"deps\":[{\"name\":\"libc.so.6\",\"bound\":\"host\"}]");
    ASSERT_STR_CONTAINS(out, "{\"name\":\"nope\",\"address\":null,\"library\":null}");
    free(out);
}

TEST(cli_load_json_stays_json_when_the_library_prints)
{
    char *out, args[1024];
    snprintf(args, sizeof args, "load --json %s/tests/libs/libt_chatty.so --sym t_chatty", vt_build_dir());
    ASSERT_EQ(vmcode_stdout(args, &out), 0);
    ASSERT(json_balanced(out));
    ASSERT_MSG(out[0] == '{' && !strstr(out, "hello") && !strstr(out, "bye"), "stdout: %s", out);
    ASSERT_STR_CONTAINS(out, "\"name\":\"t_chatty\",\"address\":\"0x");
    free(out);
    /* the library's own output went to stderr, in its order */
    ASSERT_EQ(vmcode(args, &out), 0);
    char *hello = strstr(out, "hello from a constructor\n"), *bye = strstr(out, "bye from a destructor\n");
    ASSERT_MSG(hello && bye && hello < bye, "output: %s", out);
    free(out);
}

TEST(cli_load_errors)
{
    char *out;
    ASSERT_EQ(vmcode("load", &out), 2);
    ASSERT_STR_CONTAINS(out, "vmcode load: no library given");
    free(out);
    ASSERT_EQ(vmcode("load -vm_size 1G /nonexistent.so", &out), 2);
    ASSERT_STR_CONTAINS(out, "give vmcode options with --options");
    free(out);
    ASSERT_EQ(vmcode("load /nonexistent.so", &out), 1);
    ASSERT_STR_CONTAINS(out, "vmcode load: ");
    ASSERT_STR_CONTAINS(out, "/nonexistent.so");
    free(out);
    char path[] = "/tmp/vmcode-notelf-XXXXXX", args[128];
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    for (int i = 0; i < 10; i++) ASSERT_EQ(write(fd, "not an ELF file at all\n", 23), 23);
    close(fd);
    snprintf(args, sizeof args, "load %s", path);
    ASSERT_EQ(vmcode(args, &out), 1);
    ASSERT_STR_CONTAINS(out, "ELF header e_ident (offset 0x0): not an ELF file");
    free(out);
    unlink(path);
    ASSERT_EQ(vmcode("load --sym", &out), 2);
    ASSERT_STR_CONTAINS(out, "--sym needs a value");
    free(out);
    ASSERT_EQ(vmcode("load --help", &out), 0);
    ASSERT_STR_CONTAINS(out, "usage: vmcode load");
    free(out);
}
