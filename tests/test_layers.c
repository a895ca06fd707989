/* The source tree's layers: no file includes a header of a layer above it
 * (scripts/check-layers.sh), checked on the tree itself and on copies with
 * one bad include. */
#include "test.h"

#include <sys/wait.h>

/* Runs the checker on `root`; its exit status, its output in buf. */
static int check_layers(const char *root, char *buf, size_t len)
{
    char cmd[2048], script[1024];
    snprintf(script, sizeof script, "%s", vt_src_path("scripts/check-layers.sh"));  /* one static buffer */
    snprintf(cmd, sizeof cmd, "sh %s %s 2>&1", script, root);
    FILE *p = popen(cmd, "r");
    ASSERT(p);
    size_t n = fread(buf, 1, len - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(layers_the_tree_includes_only_lower_layers)
{
    char out[8192];
    char root[1024];
    snprintf(root, sizeof root, "%s", vt_src_path("."));
    int rc = check_layers(root, out, sizeof out);
    ASSERT_MSG(rc == 0, "check-layers.sh exited %d:\n%s", rc, out);
}

/* A copy of src/ with one line added to one file; the checker's verdict. */
static int with_line(const char *file, const char *line, char *out, size_t len)
{
    char dir[] = "/tmp/vmc-layers-XXXXXX", cmd[4096];
    ASSERT(mkdtemp(dir));
    /* the file may be new, in a folder the tree does not have yet */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/tools && cp -r %s %s/ && mkdir -p $(dirname %s/%s) && echo '%s' >> %s/%s",
             dir, vt_src_path("src"), dir, dir, file, line, dir, file);
    ASSERT_EQ(system(cmd), 0);
    int rc = check_layers(dir, out, len);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
    return rc;
}

TEST(layers_an_upward_include_is_named)
{
    char out[8192];
    ASSERT_EQ(with_line("src/alloc/codeheap.c", "#include \"api/vmc.h\"", out, sizeof out), 1);
    ASSERT_MSG(strstr(out, "src/alloc/codeheap.c:") && strstr(out, "alloc includes \"api/vmc.h\" from the "
                                                                     "layer above it (api)"),
               "%s", out);
    ASSERT_EQ(with_line("src/elf/reloc.c", "#include \"lib/loader.h\"", out, sizeof out), 1);
    ASSERT_MSG(strstr(out, "elf includes \"lib/loader.h\" from the layer above it (lib)"), "%s", out);
    /* the PE layer sits beside the ELF one: neither includes the other */
    ASSERT_EQ(with_line("src/pe/check.c", "#include \"lib/loader.h\"", out, sizeof out), 1);
    ASSERT_MSG(strstr(out, "pe includes \"lib/loader.h\" from the layer above it (lib)"), "%s", out);
    ASSERT_EQ(with_line("src/pe/reloc.c", "#include \"elf/elf.h\"", out, sizeof out), 1);
    ASSERT_MSG(strstr(out, "src/pe/reloc.c:") && strstr(out, "pe includes \"elf/elf.h\" from a layer of the same "
                                                               "rank (elf)"), "%s", out);
    ASSERT_EQ(with_line("src/elf/dyn.c", "#include \"pe/pe.h\"", out, sizeof out), 1);
    ASSERT_EQ(with_line("src/pe/dirs.c", "#include \"alloc/space.h\"", out, sizeof out), 0);
    ASSERT_EQ(with_line("src/lib/loader.c", "#include \"pe/pe.h\"", out, sizeof out), 0);
    /* the OS layer sees nothing above it, not even the regions */
    ASSERT_EQ(with_line("src/os/unix.c", "#include \"region/region.h\"", out, sizeof out), 1);
    ASSERT_EQ(with_line("src/alloc/blocks.h", "#include \"base/error.h\"", out, sizeof out), 0);
}

TEST(layers_a_bare_include_or_a_private_header_in_a_program_is_refused)
{
    char out[8192];
    ASSERT_EQ(with_line("src/region/place.c", "#include \"blocks.h\"", out, sizeof out), 1);
    ASSERT_MSG(strstr(out, "does not name its layer"), "%s", out);
    ASSERT_EQ(with_line("tools/x.c", "#include \"api/vmc.h\"", out, sizeof out), 1);
    ASSERT_MSG(strstr(out, "tools/x.c:1: programs use the public header only"), "%s", out);
}

/* -Isrc lets <lib/loader.h> work as "lib/loader.h" does: the angle form is
 * checked as well; an angle include of a system header is not a layer's. */
TEST(layers_an_angle_include_of_a_layer_is_checked)
{
    char out[8192];
    ASSERT_EQ(with_line("src/elf/reloc.c", "#include <lib/loader.h>", out, sizeof out), 1);
    ASSERT_MSG(strstr(out, "src/elf/reloc.c:") && strstr(out, "elf includes <lib/loader.h> from the layer above it (lib)"),
               "%s", out);
    ASSERT_EQ(with_line("src/pe/reloc.c", "#include <elf/elf.h>", out, sizeof out), 1);
    ASSERT_MSG(strstr(out, "pe includes <elf/elf.h> from a layer of the same rank (elf)"), "%s", out);
    ASSERT_EQ(with_line("tools/x.c", "#include <api/vmc.h>", out, sizeof out), 1);
    ASSERT_MSG(strstr(out, "tools/x.c:1: programs use the public header only"), "%s", out);
    ASSERT_EQ(with_line("src/elf/reloc.c", "#include <sys/mman.h>", out, sizeof out), 0);
    ASSERT_EQ(with_line("src/alloc/space.c", "#include <os/os.h>", out, sizeof out), 0);
}

/* A folder inside a layer's folder is of that layer. */
TEST(layers_a_file_in_a_subfolder_is_checked)
{
    char out[8192];
    ASSERT_EQ(with_line("src/elf/sub/x.h", "#include \"lib/loader.h\"", out, sizeof out), 1);
    ASSERT_MSG(strstr(out, "src/elf/sub/x.h:1: elf includes \"lib/loader.h\" from the layer above it (lib)"), "%s",
               out);
    ASSERT_EQ(with_line("src/os/sub/deep/y.c", "#include <region/region.h>", out, sizeof out), 1);
    ASSERT_MSG(strstr(out, "src/os/sub/deep/y.c:1: os includes <region/region.h> from the layer above it (region)"),
               "%s", out);
    ASSERT_EQ(with_line("src/elf/sub/x.h", "#include \"x.h\"", out, sizeof out), 1);
    ASSERT_MSG(strstr(out, "does not name its layer (write \"elf/sub/x.h\")"), "%s", out);
    ASSERT_EQ(with_line("src/elf/sub/x.h", "#include \"alloc/space.h\"", out, sizeof out), 0);
}
