/* make install: an outside program builds against the installed prefix with
 * pkg-config and nothing else, statically and dynamically. */
#include "test.h"

#include <unistd.h>

TEST_TIMEOUT(install_and_build_outside, 300)
{
    const char *src = getenv("VMC_TEST_SRC");
    if (!src) SKIP("VMC_TEST_SRC not set (run through make check)");
    if (system("command -v pkg-config >/dev/null 2>&1")) SKIP("pkg-config is not installed");
    char prefix[] = "/tmp/vmcode-prefix-XXXXXX";
    ASSERT(mkdtemp(prefix));
    char cmd[4096];
    /* A build of its own: plain flags, whatever the caller's make was given. */
    snprintf(cmd, sizeof cmd,
             "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -j2 -C %s B=%s/build SAN= "
             "PREFIX=%s install >/dev/null 2>&1",
             src, prefix, prefix);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "cd %s && export PKG_CONFIG_PATH=%s/lib/pkgconfig && "
             "cc -std=c11 -Wall -Werror $(pkg-config --cflags vmcode) %s/examples/hello.c "
             "$(pkg-config --libs --static vmcode) -static-libgcc -o %s/hello-dyn && "
             "cc -std=c11 $(pkg-config --cflags vmcode) %s/examples/hello.c "
             "%s/lib/libvmcode.a $(pkg-config --libs-only-l --static vmcode | sed 's/-lvmcode//') "
             "-o %s/hello-static",
             prefix, prefix, src, prefix, src, prefix, prefix);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "LD_LIBRARY_PATH=%s/lib %s/hello-dyn | grep -q 'returned 42; reaches main by rel32: yes'",
             prefix, prefix);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/hello-static | grep -q 'returned 42'", prefix);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/bin/vmcode info --json | grep -q '\"code_size\":2147483648'", prefix);
    ASSERT_EQ(system(cmd), 0);
    /* gdb's script, where gdb looks for one by the library's real name */
    snprintf(cmd, sizeof cmd, "cmp %s/tools/vmcode-gdb.py %s/share/gdb/auto-load%s/lib/libvmcode.so.0.1.0-gdb.py && "
             "cmp %s/tools/vmcode-gdb.py %s/share/gdb/auto-load/vmcode-gdb.py", src, prefix, prefix, src, prefix);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", prefix);
    ASSERT_EQ(system(cmd), 0);
}
