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
    ASSERT_STR_CONTAINS(out, "reaching      0 bytes of 64 MiB (0.00 %)");
    free(out);
    ASSERT_EQ(vmcode("info --json -vm_size 64M -vmheap_size 0 -reach_lo 0xffff800000000000 "
                     "-reach_hi 0xffff800000001000", &out), 0);
    ASSERT(json_balanced(out));
    ASSERT_STR_CONTAINS(out, "\"placement\":\"vm_base\"");
    ASSERT_STR_CONTAINS(out, "\"code_reaching\":0,");
    ASSERT_STR_CONTAINS(out, "\"near_app_failed\":true,");
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
    ASSERT_STR_CONTAINS(out, "\"deps\":[{\"name\":\"libc.so.6\",\"bound\":\"host\",\"where\":\"in_process\",\"path\":\"/");
    ASSERT_STR_CONTAINS(out, "\"why\":\"the process has it already: the host's copy\"}]");
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
    ASSERT_EQ(vmcode("load /nonexistent.so -bogus", &out), 2);
    ASSERT_STR_CONTAINS(out, "vmcode load: option text: unknown option '-bogus'");
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

/* Every command takes option words the same way (a size's value is the
 * next word), and --options TEXT as well. */
TEST(cli_one_option_syntax_for_every_command)
{
    char *out, args[1024];
    const char *forms[] = {"-vm_size 256M -vmheap_size 0 -no_near_app", "--options \"-vm_size 256M -vmheap_size 0\" -no_near_app"};
    for (int f = 0; f < 2; f++) {
        snprintf(args, sizeof args, "info %s", forms[f]);
        ASSERT_EQ(vmcode(args, &out), 0);
        ASSERT_STR_CONTAINS(out, "256 MiB  (asked 256 MiB)");
        ASSERT_STR_CONTAINS(out, "heap region   none");
        ASSERT_STR_CONTAINS(out, "placement     vm_base");
        free(out);
        snprintf(args, sizeof args, "maps %s", forms[f]);
        ASSERT_EQ(vmcode(args, &out), 0);
        ASSERT_STR_CONTAINS(out, "256M  free");
        ASSERT_STR_CONTAINS(out, "heap region: none");
        free(out);
        snprintf(args, sizeof args, "load %s/tests/libs/libt_basic.so %s --maps", vt_build_dir(), forms[f]);
        ASSERT_EQ(vmcode(args, &out), 0);
        ASSERT_STR_CONTAINS(out, "256 MiB  (asked 256 MiB)");
        ASSERT_STR_CONTAINS(out, "placement     vm_base");
        free(out);
    }
    /* before the command as well */
    ASSERT_EQ(vmcode("-vm_size 256M -vmheap_size 0 info -no_near_app", &out), 0);
    ASSERT_STR_CONTAINS(out, "256 MiB  (asked 256 MiB)");
    ASSERT_STR_CONTAINS(out, "heap region   none");
    free(out);
    ASSERT_EQ(vmcode("-vm_size 256M", &out), 2);  /* no command at all */
    ASSERT_STR_CONTAINS(out, "unknown command '-vm_size'");
    free(out);
    ASSERT_EQ(vmcode("info -w_xor_x 1", &out), 2);
    ASSERT_STR_CONTAINS(out, "option text: '-w_xor_x' is a boolean and takes no value (got '1'): write -w_xor_x to "
                             "turn it on, -no_w_xor_x to turn it off");
    free(out);
    ASSERT_EQ(vmcode("info 256M", &out), 2);
    ASSERT_STR_CONTAINS(out, "vmcode info: option text: expected an option starting with '-', got '256M'");
    free(out);
}

TEST(cli_version)
{
    char *out;
    ASSERT_EQ(vmcode("--version", &out), 0);
    char want[64];
    snprintf(want, sizeof want, "(vmcode.h %d.%d)\n", VMCODE_VERSION_MAJOR, VMCODE_VERSION_MINOR);
    ASSERT_MSG(!strncmp(out, "vmcode 0.", 9), "%s", out);
    ASSERT_STR_CONTAINS(out, want);
    free(out);
}

/* VMCODE_OPTIONS first, then the command line; info says what it applied. */
TEST(cli_vmcode_options_environment)
{
    char *out;
    setenv("VMCODE_OPTIONS", "-vm_size 64M -vmheap_size 0", 1);
    ASSERT_EQ(vmcode("info -vm_size 128M", &out), 0);
    unsetenv("VMCODE_OPTIONS");
    ASSERT_STR_CONTAINS(out, "128 MiB  (asked 128 MiB)");
    ASSERT_STR_CONTAINS(out, "heap region   none");
    ASSERT_STR_CONTAINS(out, "VMCODE_OPTIONS -vm_size 64M -vmheap_size 0  (applied before the command line's options");
    free(out);
    setenv("VMCODE_OPTIONS", "-vmheap_size 0", 1);
    ASSERT_EQ(vmcode("info --json", &out), 0);
    unsetenv("VMCODE_OPTIONS");
    ASSERT_STR_CONTAINS(out, "\"heap_size\":0,");
    ASSERT_STR_CONTAINS(out, "\"vmcode_options\":\"-vmheap_size 0\"}");
    free(out);
}

/* load --maps: the map after the loads shows each library's run. */
TEST(cli_load_maps)
{
    char *out, args[1024];
    snprintf(args, sizeof args, "load --maps %s/tests/libs/libt_rtop.so -vmheap_size 0", vt_build_dir());
    ASSERT_EQ(vmcode(args, &out), 0);
    ASSERT_STR_CONTAINS(out, "code region 0x");
    ASSERT_STR_CONTAINS(out, "library    code, committed");
    ASSERT_STR_CONTAINS(out, "/tests/libs/libt_rtop.so\n");
    ASSERT_STR_CONTAINS(out, "/tests/libs/sub/libt_rmid.so\n");
    ASSERT_STR_CONTAINS(out, "/tests/libs/sub2/libt_rleaf.so\n");
    free(out);
    snprintf(args, sizeof args, "load --json --maps %s/tests/libs/libt_rtop.so -vmheap_size 0", vt_build_dir());
    ASSERT_EQ(vmcode_stdout(args, &out), 0);
    ASSERT(json_balanced(out));
    ASSERT_STR_CONTAINS(out, "\"map\":{\"info\":{\"code_base\":");
    ASSERT_STR_CONTAINS(out, "\"owner\":\"library\"");
    ASSERT_STR_CONTAINS(out, "libt_rleaf.so\"}");
    free(out);
}

static size_t json_num(const char *json, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(json, k);
    ASSERT_MSG(p, "no %s in %s", key, json);
    return (size_t)strtoull(p + strlen(k), NULL, 10);
}

/* The text and --json give the same figures. */
TEST(cli_text_and_json_give_the_same_figures)
{
    char *txt, *js, args[1024], want[256];
    snprintf(args, sizeof args, "load %s/tests/libs/libt_runpath.so -vm_size 100M -vmheap_size 12K", vt_build_dir());
    ASSERT_EQ(vmcode(args, &txt), 0);
    snprintf(args, sizeof args, "load --json --maps %s/tests/libs/libt_runpath.so -vm_size 100M -vmheap_size 12K",
             vt_build_dir());
    ASSERT_EQ(vmcode_stdout(args, &js), 0);
    snprintf(want, sizeof want, "  relocs    %zu relative, %zu symbolic, %zu irelative, %zu relr\n",
             json_num(js, "relative"), json_num(js, "symbolic"), json_num(js, "irelative"), json_num(js, "relr"));
    ASSERT_STR_CONTAINS(txt, want);
    snprintf(want, sizeof want, "  bound     %zu to itself, %zu to private libraries, %zu to the host, %zu weak to 0\n",
             json_num(js, "self"), json_num(js, "private"), json_num(js, "host"), json_num(js, "weak_zero"));
    ASSERT_STR_CONTAINS(txt, want);
    size_t size = json_num(js, "size");
    ASSERT_EQ(size % 4096, 0);
    snprintf(want, sizeof want, "  %zu KiB, inside the code region", size >> 10);
    ASSERT_STR_CONTAINS(txt, want);
    snprintf(want, sizeof want, "  tables    %zu bytes read", json_num(js, "tables_copied"));
    ASSERT_STR_CONTAINS(txt, want);
    ASSERT_STR_CONTAINS(js, "\"where\":\"runpath\"");
    ASSERT_STR_CONTAINS(txt, "(runpath): ");
    ASSERT_STR_CONTAINS(txt, "found in a DT_RUNPATH directory: loaded privately\n");
    ASSERT_STR_CONTAINS(js, "\"why\":\"found in a DT_RUNPATH directory: loaded privately\"");
    free(txt);
    /* sizes that are no whole MiB are given exactly, in the text as in JSON */
    ASSERT_EQ(json_num(js, "heap_size"), 12288);
    ASSERT_EQ(vmcode("info -vm_size 100M -vmheap_size 12K", &txt), 0);
    ASSERT_STR_CONTAINS(txt, "12 KiB  (asked 12 KiB)");
    ASSERT_STR_CONTAINS(txt, "100 MiB  (asked 100 MiB)");
    free(txt);
    free(js);
}

/* With --json a failure is JSON on stdout too (the text stays on stderr),
 * so a program reading the output never gets nothing. */
TEST(cli_json_failures_are_json)
{
    char *out;
    ASSERT_EQ(vmcode_stdout("load --json /nonexistent/libnope.so", &out), 1);
    ASSERT(json_balanced(out));
    ASSERT_STR_CONTAINS(out, "{\"error\":{\"command\":\"load\",\"code\":-2,");
    ASSERT_STR_CONTAINS(out, "\"message\":\"/nonexistent/libnope.so: cannot open: No such file or directory\"");
    free(out);
    ASSERT_EQ(vmcode_stdout("info --json -vm_size 3G", &out), 2);
    ASSERT(json_balanced(out));
    ASSERT_STR_CONTAINS(out, "\"code\":-22,");
    ASSERT_STR_CONTAINS(out, "vm_size");
    free(out);
    ASSERT_EQ(vmcode_stdout("maps --json -vm_size 1T", &out), 2);
    ASSERT(json_balanced(out));
    ASSERT_STR_CONTAINS(out, "\"command\":\"maps\"");
    free(out);
    /* without --json: nothing on stdout, the message on stderr */
    ASSERT_EQ(vmcode_stdout("load /nonexistent/libnope.so", &out), 1);
    ASSERT_STR_EQ(out, "");
    free(out);
    ASSERT_EQ(vmcode("load /nonexistent/libnope.so", &out), 1);
    ASSERT_STR_CONTAINS(out, "vmcode load: /nonexistent/libnope.so: cannot open: No such file or directory (");
    free(out);
}

/* `load -w_xor_x 1 lib.so`: the 1 is the boolean's value, refused as the
 * option parser refuses it, not taken for a library named "1". */
TEST(cli_load_boolean_with_a_value_is_refused)
{
    char *out;
    ASSERT_EQ(vmcode("load -w_xor_x 1 /nonexistent/lib.so", &out), 2);
    ASSERT_STR_CONTAINS(out, "'-w_xor_x' is a boolean and takes no value (got '1')");
    free(out);
    ASSERT_EQ(vmcode("load -no_near_app off /nonexistent/lib.so", &out), 2);
    ASSERT_STR_CONTAINS(out, "'-no_near_app' is a boolean and takes no value (got 'off')");
    free(out);
}

/* Where each dependency was found, in the text and in JSON: through the
 * ld.so cache (libpulsecommon's libX11), and the help says the order. */
TEST(cli_load_says_the_cache_and_the_order)
{
    const char *lib = "/usr/lib/x86_64-linux-gnu/pulseaudio/libpulsecommon-16.1.so";
    if (access(lib, R_OK)) SKIP("libpulsecommon-16.1.so is not installed (the package libpulse0)");
    unsetenv("LD_LIBRARY_PATH");
    char *out, args[512];
    snprintf(args, sizeof args, "load %s", lib);
    ASSERT_EQ(vmcode(args, &out), 0);
    ASSERT_STR_CONTAINS(out, "  needs     libX11.so.6              loaded privately into the region (ldso_cache): "
                             "/lib/x86_64-linux-gnu/libX11.so.6");
    ASSERT_STR_CONTAINS(out, "found through the ld.so cache: loaded privately\n");
    free(out);
    snprintf(args, sizeof args, "load --json %s", lib);
    ASSERT_EQ(vmcode_stdout(args, &out), 0);
    ASSERT_STR_CONTAINS(out, "{\"name\":\"libX11.so.6\",\"bound\":\"private\",\"where\":\"ldso_cache\",\"path\":"
                             "\"/lib/x86_64-linux-gnu/libX11.so.6\",\"why\":\"found through the ld.so cache: "
                             "loaded privately\"}");
    free(out);
    ASSERT_EQ(vmcode_stdout("load --help", &out), 0);
    ASSERT_STR_CONTAINS(out, "DT_RUNPATH, the ld.so cache, the default directories), and only when that finds\n"
                             "nothing beside the library that needs them.");
    free(out);
}
