/* make install: an outside program builds against the installed prefix with
 * pkg-config and the README's lines, statically and dynamically, and starts
 * without LD_LIBRARY_PATH; make uninstall takes it all away again. */
#include "test.h"

#include <unistd.h>

/* The README's two build lines for a program against an installed prefix,
 * with app.c, app and app-static replaced; the test checks that the README
 * still has them word for word. */
static const char *const readme_lines[] = {
    "cc app.c $(pkg-config --cflags --libs vmcode) -Wl,-rpath,$(pkg-config --variable=libdir vmcode) -o app",
    "cc app.c $(pkg-config --cflags vmcode) $(pkg-config --variable=libdir vmcode)/libvmcode.a -ldl -lpthread "
    "-o app-static",
};

/* line with "app.c" -> src, "-o app" -> "-o out" */
static void recipe(char *buf, size_t len, const char *line, const char *src, const char *out)
{
    const char *c = strstr(line, "app.c"), *o = strstr(line, "-o app");
    ASSERT(c && o && c < o);
    snprintf(buf, len, "%.*s%s%.*s-o %s", (int)(c - line), line, src, (int)(o - (c + 5)), c + 5, out);
}

TEST_TIMEOUT(install_and_build_outside, 300)
{
    const char *src = getenv("VMC_TEST_SRC");
    if (!src) SKIP("VMC_TEST_SRC not set (run through make check)");
    if (system("command -v pkg-config >/dev/null 2>&1")) SKIP("pkg-config is not installed");
    char *readme = vt_read_file(vt_src_path("README.md"));
    ASSERT(readme);
    for (size_t i = 0; i < sizeof readme_lines / sizeof readme_lines[0]; i++)
        ASSERT_MSG(strstr(readme, readme_lines[i]), "README.md no longer has: %s", readme_lines[i]);
    free(readme);
    char prefix[] = "/tmp/vmcode-prefix-XXXXXX";
    ASSERT(mkdtemp(prefix));
    char cmd[8192], line[2][2048], hello[512], out[2][600];
    /* A build of its own: plain flags, whatever the caller's make was given. */
    snprintf(cmd, sizeof cmd,
             "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -j2 -C %s B=%s/build SAN= "
             "PREFIX=%s install >/dev/null 2>&1",
             src, prefix, prefix);
    ASSERT_EQ(system(cmd), 0);
    snprintf(hello, sizeof hello, "%s/examples/hello.c", src);
    snprintf(out[0], sizeof out[0], "%s/hello-dyn", prefix);
    snprintf(out[1], sizeof out[1], "%s/hello-static", prefix);
    recipe(line[0], sizeof line[0], readme_lines[0], hello, out[0]);
    recipe(line[1], sizeof line[1], readme_lines[1], hello, out[1]);
    snprintf(cmd, sizeof cmd, "cd %s && export PKG_CONFIG_PATH=%s/lib/pkgconfig && %s && %s", prefix, prefix,
             line[0], line[1]);
    ASSERT_EQ(system(cmd), 0);
    /* no LD_LIBRARY_PATH: the run path is what makes it start */
    snprintf(cmd, sizeof cmd, "env -u LD_LIBRARY_PATH %s | grep -q 'returned 42; reaches main by rel32: yes'",
             out[0]);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "ldd %s | grep -q '%s/lib/libvmcode.so.0'", out[0], prefix);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s | grep -q 'returned 42'", out[1]);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/bin/vmcode info --json | grep -q '\"code_size\":2147483648'", prefix);
    ASSERT_EQ(system(cmd), 0);
    /* gdb's script, where gdb looks for one by the library's real name, and
     * gdb loads it from there for the installed libvmcode.so */
    snprintf(cmd, sizeof cmd, "cmp %s/tools/vmcode-gdb.py %s/share/gdb/auto-load%s/lib/libvmcode.so.0.1.0-gdb.py && "
             "cmp %s/tools/vmcode-gdb.py %s/share/gdb/auto-load/vmcode-gdb.py", src, prefix, prefix, src, prefix);
    ASSERT_EQ(system(cmd), 0);
    if (!system("command -v gdb >/dev/null 2>&1")) {
        snprintf(cmd, sizeof cmd,
                 "gdb -nx -batch -iex 'set auto-load scripts-directory %s/share/gdb/auto-load' "
                 "-iex 'set auto-load safe-path %s/share' -ex 'set environment LD_LIBRARY_PATH=%s/lib' "
                 "-ex 'break vmc_open' -ex run -ex 'info vmcode-libraries' %s/hello-dyn 2>&1 | "
                 "grep -q 'No libraries loaded privately by vmcode.'",
                 prefix, prefix, prefix, prefix);
        ASSERT_EQ(system(cmd), 0);
    }
    /* make uninstall leaves no file or link of the installation, only the
     * prefix's standard directories (and the build directory and programs
     * of this test) */
    snprintf(cmd, sizeof cmd,
             "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C %s B=%s/build PREFIX=%s uninstall >/dev/null 2>&1",
             src, prefix, prefix);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "cd %s && find . -path ./build -prune -o ! -type d -print | grep -v '^./hello-' | "
             "grep -q .", prefix);
    ASSERT_MSG(system(cmd) != 0, "make uninstall left files in %s", prefix);
    snprintf(cmd, sizeof cmd, "cd %s && test -d include && test -d lib && test -d bin && ! test -e lib/pkgconfig && "
             "! test -e share/gdb", prefix);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", prefix);
    ASSERT_EQ(system(cmd), 0);
}
