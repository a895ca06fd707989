/* Where the dependencies of a private library are found: DT_RPATH (its own
 * and its loaders'), LD_LIBRARY_PATH, DT_RUNPATH, with $ORIGIN, $LIB and
 * $PLATFORM, in the system loader's order; each answer is compared with
 * what dlopen does in a fresh process (tests/libs/t_dlopen.c), and
 * vmc_lib_dep must say where each dependency was found. */
#include "test.h"
#include "vmcode.h"
#include "elfimg.h"
#include "lib/loader.h"
#include "os/os.h"
#include "arch/hwcaps.h"

#include <sys/auxv.h>
#include <unistd.h>

/* The system loader's answer for lib's function fn, from a fresh process
 * with this process's environment: its output line, in a static buffer. */
static const char *system_answer(const char *lib, const char *fn)
{
    static char line[1024];
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s/tests/libs/t_dlopen '%s' %s", vt_build_dir(), lib, fn);
    FILE *p = popen(cmd, "r");
    ASSERT(p);
    line[0] = 0;
    if (!fgets(line, sizeof line, p)) line[0] = 0;
    pclose(p);
    line[strcspn(line, "\n")] = 0;
    return line;
}

/* Load lib privately and call fn: its result as text, as t_dlopen prints
 * it; *out keeps the library loaded (NULL after a refusal). */
static const char *private_answer(vmc_t *v, const char *lib, const char *fn, vmc_lib_t **out)
{
    static char line[1024];
    *out = NULL;
    int r = vmc_lib_load(v, lib, 0, out);
    if (r) {
        snprintf(line, sizeof line, "error: %s", vmc_last_error());
        return line;
    }
    int (*f)(void) = (int (*)(void))vmc_lib_sym(*out, fn);
    ASSERT(f);
    snprintf(line, sizeof line, "%d", f());
    return line;
}

static vmc_lib_dep_t dep_named(vmc_lib_t *l, const char *name)
{
    vmc_lib_info_t in;
    ASSERT_OK(vmc_lib_info(l, &in));
    vmc_lib_dep_t d;
    for (unsigned i = 0; i < in.ndeps; i++) {
        ASSERT_OK(vmc_lib_dep(l, i, &d));
        if (!strcmp(d.name, name)) return d;
    }
    ASSERT_MSG(0, "%s has no dependency %s", in.path, name);
    return d;
}

static void check_found(vmc_t *v, const char *lib, int where, const char *why)
{
    vmc_lib_t *l;
    ASSERT_STR_EQ(private_answer(v, lib, "t_ruser", &l), "1");
    ASSERT_STR_EQ(system_answer(lib, "t_ruser"), "1");
    vmc_lib_dep_t d = dep_named(l, "libt_rdep.so");
    ASSERT_EQ(d.how, VMC_DEP_LOADED_PRIVATELY);
    ASSERT_EQ(d.where, where);
    ASSERT_STR_EQ(d.path, vt_tlib("sub/libt_rdep.so"));
    ASSERT_STR_EQ(d.why, why);
    ASSERT(d.lib && vt_in_code_region(v, vmc_lib_sym(d.lib, "t_rdep_value")));
    ASSERT_OK(vmc_lib_unload(l));
}

TEST(search_runpath_with_origin)
{
    unsetenv("LD_LIBRARY_PATH");
    vmc_t *v = vt_open("-vmheap_size 64M");
    check_found(v, vt_tlib("libt_runpath.so"), VMC_DEP_RUNPATH, "found in a DT_RUNPATH directory: loaded privately");
    vmc_close(v);
}

TEST(search_rpath_with_origin)
{
    unsetenv("LD_LIBRARY_PATH");
    vmc_t *v = vt_open("-vmheap_size 64M");
    check_found(v, vt_tlib("libt_rpath.so"), VMC_DEP_RPATH, "found in a DT_RPATH directory: loaded privately");
    vmc_close(v);
}

/* The leaf is found through the DT_RPATH of the library that loaded the
 * one needing it; a DT_RUNPATH is not passed down like that. */
TEST(search_rpath_of_the_loading_chain)
{
    unsetenv("LD_LIBRARY_PATH");
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_STR_EQ(private_answer(v, vt_tlib("libt_rtop.so"), "t_rtop", &l), "111");
    ASSERT_STR_EQ(system_answer(vt_tlib("libt_rtop.so"), "t_rtop"), "111");
    vmc_lib_dep_t mid = dep_named(l, "libt_rmid.so");
    ASSERT_EQ(mid.where, VMC_DEP_RPATH);
    ASSERT_STR_EQ(mid.path, vt_tlib("sub/libt_rmid.so"));
    vmc_lib_dep_t leaf = dep_named(mid.lib, "libt_rleaf.so");
    ASSERT_EQ(leaf.how, VMC_DEP_LOADED_PRIVATELY);
    ASSERT_EQ(leaf.where, VMC_DEP_RPATH);
    ASSERT_STR_EQ(leaf.path, vt_tlib("sub2/libt_rleaf.so"));
    ASSERT_OK(vmc_lib_unload(l));

    const char *top = vt_tlib("libt_rtopnew.so");
    char want[1200];
    snprintf(want, sizeof want, "error: %s: dependency libt_rmid.so: %s: dependency libt_rleaf.so: libt_rleaf.so: "
             "cannot open shared object file: No such file or directory", top, vt_tlib("sub/libt_rmid.so"));
    ASSERT_STR_EQ(private_answer(v, top, "t_rtop", &l), want);
    ASSERT_STR_EQ(system_answer(top, "t_rtop"),
                  "error: libt_rleaf.so: cannot open shared object file: No such file or directory");
    vmc_close(v);
}

/* RPATH, then LD_LIBRARY_PATH, then RUNPATH: sub3's copy returns 3. */
TEST(search_ld_library_path_between_rpath_and_runpath)
{
    char dirs[1200];
    snprintf(dirs, sizeof dirs, "/nonexistent;%s/tests/libs/sub3:", vt_build_dir());
    setenv("LD_LIBRARY_PATH", dirs, 1);
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_STR_EQ(private_answer(v, vt_tlib("libt_runpath.so"), "t_ruser", &l), "3");
    ASSERT_STR_EQ(system_answer(vt_tlib("libt_runpath.so"), "t_ruser"), "3");
    vmc_lib_dep_t d = dep_named(l, "libt_rdep.so");
    ASSERT_EQ(d.where, VMC_DEP_LD_LIBRARY_PATH);
    ASSERT_STR_EQ(d.path, vt_tlib("sub3/libt_rdep.so"));
    ASSERT_STR_EQ(d.why, "found in a directory of LD_LIBRARY_PATH: loaded privately");
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT_STR_EQ(private_answer(v, vt_tlib("libt_rpath.so"), "t_ruser", &l), "1");
    ASSERT_STR_EQ(system_answer(vt_tlib("libt_rpath.so"), "t_ruser"), "1");
    ASSERT_EQ(dep_named(l, "libt_rdep.so").where, VMC_DEP_RPATH);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* DT_RUNPATH "${ORIGIN}/dst/$LIB/${PLATFORM}": the directory made from this
 * loader's expansion must be the one the system loader finds it in. */
TEST(search_lib_and_platform_as_the_system_loader_expands_them)
{
    unsetenv("LD_LIBRARY_PATH");
    char dst[256], root[64] = "/tmp/vmc-dst-XXXXXX", dir[600], path[700], cmd[800];
    ASSERT(vmc__dep_expand("$LIB/$PLATFORM", 14, NULL, dst, sizeof dst) > 0);
    ASSERT(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/dst/%s", root, dst);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    ASSERT_EQ(system(cmd), 0);
    snprintf(path, sizeof path, "%s/libt_rdep.so", dir);
    ASSERT_OK(vt_img_copy_file(vt_tlib("sub/libt_rdep.so"), path));
    char lib[600];
    snprintf(lib, sizeof lib, "%s/libt_rdst.so", root);
    ASSERT_OK(vt_img_copy_file(vt_tlib("libt_rdst.so"), lib));
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    const char *sys = system_answer(lib, "t_ruser");
    char sys_copy[1024];
    snprintf(sys_copy, sizeof sys_copy, "%s", sys);
    const char *priv = private_answer(v, lib, "t_ruser", &l);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    ASSERT_EQ(system(cmd), 0);
    ASSERT_MSG(!strcmp(sys_copy, "1"), "the system loader does not find %s in %s: %s", lib, dir, sys_copy);
    ASSERT_STR_EQ(priv, "1");
    vmc_lib_dep_t d = dep_named(l, "libt_rdep.so");
    ASSERT_EQ(d.where, VMC_DEP_RUNPATH);
    ASSERT_STR_EQ(d.path, path);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

TEST(search_path_element_expansion)
{
    char out[256];
#define EXPANDS(in, origin, want)                                                     \
    do {                                                                              \
        ASSERT_EQ(vmc__dep_expand(in, strlen(in), origin, out, sizeof out), strlen(want)); \
        ASSERT_STR_EQ(out, want);                                                     \
    } while (0)
    EXPANDS("$ORIGIN/a", "/o", "/o/a");
    EXPANDS("${ORIGIN}x", "/o", "/ox");
    EXPANDS("$ORIGINAL/$FOO", "/o", "$ORIGINAL/$FOO");  /* not $ORIGIN; unknown names are kept */
    EXPANDS("${ORIGIN", "/o", "${ORIGIN");
    EXPANDS("", "/o", ".");                             /* an empty element: the current directory */
    EXPANDS("$PLATFORM", NULL, vmc__arch_platform((const char *)getauxval(AT_PLATFORM)));
    /* without the kernel's name, the default one's rules */
    ASSERT_STR_EQ(vmc__arch_platform(NULL), vmc__arch_platform("x86_64"));
    ASSERT_STR_EQ(vmc__arch_platform(""), vmc__arch_platform("x86_64"));
    ASSERT_EQ(vmc__dep_expand("$ORIGIN/a", 9, NULL, out, sizeof out), 0);   /* no origin: dropped */
    ASSERT_EQ(vmc__dep_expand("$ORIGIN/abc", 11, "/o", out, 6), 0);         /* too long: dropped */
    ASSERT(vmc__dep_expand("$LIB", 4, NULL, out, sizeof out) > 0);
    ASSERT(out[0] != '/' && out[0] != '$' && strstr("/lib/x86_64-linux-gnu/lib64/usr/lib", out));
#undef EXPANDS
}

/* DF_1_NODEFLIB: nothing found in its own search path is an error, without
 * asking the system loader's directories. */
TEST(search_nodeflib_stops_before_the_system_directories)
{
    unsetenv("LD_LIBRARY_PATH");
    vt_img_t m;
    ASSERT_OK(vt_img_read(vt_tlib("libt_runpath.so"), &m));
    Elf64_Dyn *f = vt_dyn(&m, DT_FLAGS_1, NULL);
    ASSERT(f);
    f->d_un.d_val |= DF_1_NODEFLIB;
    char dir[64] = "/tmp/vmc-nodeflib-XXXXXX", path[128], want[400];
    ASSERT(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/libt_runpath.so", dir);
    ASSERT_OK(vt_img_write(&m, path));
    vt_img_free(&m);
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    int r = vmc_lib_load(v, path, 0, &l);
    unlink(path);
    rmdir(dir);
    ASSERT_EQ(r, -ENOENT);
    snprintf(want, sizeof want, "%s: dependency libt_rdep.so: not found in its search path (DF_1_NODEFLIB "
             "excludes the default directories and their ld.so cache entries)", path);
    ASSERT_STR_EQ(vmc_last_error(), want);
    vmc_close(v);
}

/* An open that fails for another reason than "not there" stops the search. */
TEST(search_open_failure_is_reported)
{
    unsetenv("LD_LIBRARY_PATH");
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    vmc__os_fault(VMC_OS_OPEN, 2, EMFILE, 0);  /* the library itself, then its dependency's directory */
    int r = vmc_lib_load(v, vt_tlib("libt_runpath.so"), 0, &l);
    vmc__os_fault_clear();
    ASSERT_EQ(r, -EMFILE);
    char want[1200];
    snprintf(want, sizeof want, "%s: dependency libt_rdep.so: open %s/tests/libs/sub/libt_rdep.so: Too many open "
             "files", vt_tlib("libt_runpath.so"), vt_build_dir());
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_runpath.so"), 0, &l));
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* A system library whose dependency is only in its DT_RUNPATH. */
TEST(search_system_library_with_runpath)
{
    unsetenv("LD_LIBRARY_PATH");
    const char *lib = "/usr/lib/x86_64-linux-gnu/libpulse-simple.so.0";
    if (access(lib, R_OK)) SKIP("libpulse-simple.so.0 is not installed (the package libpulse0)");
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, lib, 0, &l));
    vmc_lib_dep_t d = dep_named(l, "libpulse.so.0");
    ASSERT_EQ(d.how, VMC_DEP_LOADED_PRIVATELY);
    ASSERT_EQ(d.where, VMC_DEP_LDSO_CACHE);  /* beside it too, but the cache comes first */
    vmc_lib_info_t in;
    ASSERT_OK(vmc_lib_info(d.lib, &in));
    int seen = 0;
    for (unsigned i = 0; i < in.ndeps; i++) {
        vmc_lib_dep_t c;
        ASSERT_OK(vmc_lib_dep(d.lib, i, &c));
        if (strncmp(c.name, "libpulsecommon", 14)) continue;
        seen = 1;
        ASSERT_EQ(c.where, VMC_DEP_RUNPATH);
        ASSERT(c.path && !strncmp(c.path, "/usr/lib/x86_64-linux-gnu/pulseaudio/", 37));
    }
    ASSERT(seen);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* A dependency that calls another library of its load group without naming
 * it in DT_NEEDED (libtheoraenc and libtheoradec, under libavcodec): the
 * system loader maps the whole group before relocating any of it, and so
 * does the private loader; an IFUNC of the later library is resolved after
 * that library is relocated.  Constructors still run dependencies first. */
TEST(group_dependency_binds_to_a_library_it_does_not_name)
{
    const char *top = vt_tlib("libt_grp_top.so");
    ASSERT_STR_EQ(system_answer(top, "grp_top"), "157");
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_STR_EQ(private_answer(v, top, "grp_top", &l), "157");
    vmc_lib_dep_t user = dep_named(l, "libt_grp_user.so"), peer = dep_named(l, "libt_grp_peer.so");
    ASSERT_EQ(user.how, VMC_DEP_LOADED_PRIVATELY);
    ASSERT_EQ(peer.how, VMC_DEP_LOADED_PRIVATELY);
    ASSERT_OK(vmc_lib_unload(l));
    /* alone, the under-linked library is refused, naming what it misses */
    char want[1024];
    snprintf(want, sizeof want, "error: %s: ", vt_tlib("libt_grp_user.so"));
    ASSERT_STR_CONTAINS(private_answer(v, vt_tlib("libt_grp_user.so"), "grp_user", &l), want);
    ASSERT_STR_CONTAINS(vmc_last_error(), "grp_peer_");
    ASSERT(l == NULL);
    /* and the group loads again after that */
    ASSERT_STR_EQ(private_answer(v, top, "grp_top", &l), "157");
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}
