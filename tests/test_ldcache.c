/* The ld.so cache and the default directories as steps of a dependency's
 * search (src/lib/ldcache.c, src/lib/search.c): the answers compared with
 * dlopen's in a fresh process for real system libraries, glibc's
 * preferences among a name's entries in caches written here, a broken or
 * missing cache skipped, DF_1_NODEFLIB, the file read once until it
 * changes, its read failures, and vmcode's own "beside" step only when the
 * system loader's search finds nothing. */
#include "test.h"
#include "vmcode.h"
#include "elfimg.h"
#include "lib/loader.h"
#include "lib/ldcache.h"
#include "os/os.h"
#include "arch/hwcaps.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define LDSO "/lib64/ld-linux-x86-64.so.2"

typedef struct {
    int32_t flags;
    const char *key, *value;
    uint64_t hwcap;
} ent_t;

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

/* A cache in glibc's "glibc-ld.so.cache1.1" format with these entries (in
 * this order) and, when nh > 0, a glibc-hwcaps name list. */
static void write_cache(const char *file, const ent_t *e, size_t n, const char *const *hw, size_t nh)
{
    static unsigned char b[65536];
    memset(b, 0, sizeof b);
    memcpy(b, "glibc-ld.so.cache1.1", 20);
    put32(b + 20, (uint32_t)n);
    b[28] = 2;
    size_t s = 48 + 24 * n;
    uint32_t hwoff[8];
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = b + 48 + 24 * i;
        put32(p, (uint32_t)e[i].flags);
        put32(p + 4, (uint32_t)s);
        strcpy((char *)b + s, e[i].key);
        s += strlen(e[i].key) + 1;
        put32(p + 8, (uint32_t)s);
        strcpy((char *)b + s, e[i].value);
        s += strlen(e[i].value) + 1;
        memcpy(p + 16, &e[i].hwcap, 8);
    }
    ASSERT(nh <= 8);
    for (size_t i = 0; i < nh; i++) {
        hwoff[i] = (uint32_t)s;
        strcpy((char *)b + s, hw[i]);
        s += strlen(hw[i]) + 1;
    }
    put32(b + 24, (uint32_t)(s - 48 - 24 * n));
    if (nh) {
        s = (s + 3) & ~(size_t)3;
        size_t list = s;
        for (size_t i = 0; i < nh; i++) put32(b + list + 4 * i, hwoff[i]);
        s += 4 * nh;
        put32(b + 32, (uint32_t)s);
        put32(b + s, 0xeaa42174u);
        put32(b + s + 4, 1);
        put32(b + s + 8, 1);  /* glibc-hwcaps */
        put32(b + s + 12, 0);
        put32(b + s + 16, (uint32_t)list);
        put32(b + s + 20, (uint32_t)(4 * nh));
        s += 24;
    }
    FILE *f = fopen(file, "wb");
    ASSERT(f);
    ASSERT_EQ(fwrite(b, 1, s, f), s);
    ASSERT_EQ(fclose(f), 0);
}

static char cache_file[64];

static void use_temp_cache(void)
{
    strcpy(cache_file, "/tmp/vmc-ldcache-XXXXXX");
    int fd = mkstemp(cache_file);
    ASSERT(fd >= 0);
    close(fd);
    vmc__ldcache_use(cache_file);
}

static void drop_temp_cache(void)
{
    unlink(cache_file);
    vmc__ldcache_use(NULL);
}

/* What the cache in use answers for name ("" for none), as the first
 * look-up of a load. */
static const char *answer(const char *name)
{
    static char p[4096];
    vmc__ldcache_recheck();
    int r = vmc__ldcache_find(name, p, sizeof p);
    ASSERT_MSG(r == 0 || r == 1, "%s: %d %s", name, r, vmc_last_error());
    return r ? p : "";
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

/* The output of a command, in a static buffer. */
static const char *run(const char *cmd)
{
    static char out[65536];
    FILE *p = popen(cmd, "r");
    ASSERT(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    pclose(p);
    return out;
}

TEST(ldcache_isa_level_is_the_system_loaders)
{
    const char *help = run(LDSO " --help");
    if (!strstr(help, "glibc-hwcaps")) SKIP("ld.so --help does not list the glibc-hwcaps subdirectories");
    int level = 1;
    if (strstr(help, "x86-64-v2 (supported")) level = 2;
    if (strstr(help, "x86-64-v3 (supported")) level = 3;
    if (strstr(help, "x86-64-v4 (supported")) level = 4;
    ASSERT_EQ(vmc__arch_isa_level(), level);
}

TEST(ldcache_default_dirs_are_the_system_loaders)
{
    const char *help = run(LDSO " --help");
    char want[1024] = "", got[1024] = "", dir[512];
    for (const char *p = help; (p = strstr(p, " (system search path)")); p++) {
        const char *b = p;
        while (b > help && b[-1] != ' ' && b[-1] != '\n') b--;
        strncat(want, b, (size_t)(p - b));
        strcat(want, ":");
    }
    if (!*want) SKIP("ld.so --help does not list its system search path");
    for (size_t i = 0; vmc__dep_default_dir(i, dir, sizeof dir); i++) {
        strcat(got, dir);
        strcat(got, ":");
    }
    ASSERT_STR_EQ(got, want);
}

/* The real cache: each dependency of these libraries that is found through
 * the cache or a default directory is the file the system loader maps for
 * it in a fresh process (dlopen, then the link map through dlinfo). */
TEST(ldcache_system_libraries_get_the_files_dlopen_maps)
{
    unsetenv("LD_LIBRARY_PATH");
    static const char *const libs[] = {"/usr/lib/x86_64-linux-gnu/pulseaudio/libpulsecommon-16.1.so",
                                       "/usr/lib/x86_64-linux-gnu/libpulse.so.0",
                                       "/usr/lib/x86_64-linux-gnu/libX11.so.6",
                                       "/usr/lib/x86_64-linux-gnu/libavcodec.so.59"};
    int checked = 0;
    for (size_t i = 0; i < sizeof libs / sizeof *libs; i++) {
        if (access(libs[i], R_OK)) continue;
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "%s/tests/libs/t_dlopen '%s' --linkmap", vt_build_dir(), libs[i]);
        char maps[65536];
        snprintf(maps, sizeof maps, "\n%s", run(cmd));
        vmc_t *v = vt_open("-vmheap_size 64M");
        vmc_lib_t *l;
        ASSERT_MSG(vmc_lib_load(v, libs[i], 0, &l) == 0, "%s: %s", libs[i], vmc_last_error());
        vmc_lib_info_t in;
        ASSERT_OK(vmc_lib_info(l, &in));
        for (unsigned k = 0; k < in.ndeps; k++) {
            vmc_lib_dep_t d;
            ASSERT_OK(vmc_lib_dep(l, k, &d));
            if (d.where != VMC_DEP_LDSO_CACHE && d.where != VMC_DEP_DEFAULT_DIR) continue;
            ASSERT_EQ(d.how, VMC_DEP_LOADED_PRIVATELY);
            vmc_lib_info_t di;
            ASSERT_OK(vmc_lib_info(d.lib, &di));
            ASSERT(vt_in_code_region(v, di.base));
            char line[4200];
            snprintf(line, sizeof line, "\n%s\n", d.path);
            ASSERT_MSG(strstr(maps, line), "%s: dependency %s: privately %s, dlopen maps:%s", libs[i], d.name,
                       d.path, maps);
            ASSERT_STR_EQ(d.why, d.where == VMC_DEP_LDSO_CACHE ? "found through the ld.so cache: loaded privately"
                                                                : "found in a default directory of the system "
                                                                  "loader: loaded privately");
            checked++;
        }
        ASSERT_OK(vmc_lib_unload(l));
        vmc_close(v);
    }
    if (!checked) SKIP("none of the libraries compared is installed");
    ASSERT_GT(checked, 5);
}

/* libpulsecommon's dependencies: in the region, not the system loader's. */
TEST(ldcache_libpulsecommon_dependencies_load_privately)
{
    unsetenv("LD_LIBRARY_PATH");
    const char *lib = "/usr/lib/x86_64-linux-gnu/pulseaudio/libpulsecommon-16.1.so";
    if (access(lib, R_OK)) SKIP("libpulsecommon-16.1.so is not installed (the package libpulse0)");
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, lib, 0, &l));
    static const char *const names[] = {"libX11.so.6", "libdbus-1.so.3", "libsndfile.so.1", "libasyncns.so.0"};
    for (size_t i = 0; i < 4; i++) {
        vmc_lib_dep_t d = dep_named(l, names[i]);
        ASSERT_EQ(d.how, VMC_DEP_LOADED_PRIVATELY);
        ASSERT_EQ(d.where, VMC_DEP_LDSO_CACHE);
        vmc_lib_info_t in;
        ASSERT_OK(vmc_lib_info(d.lib, &in));
        ASSERT(vt_in_code_region(v, in.base));
    }
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* Among a name's entries: the x86-64 ones and plain ELF, the first of them;
 * before them the glibc-hwcaps entries, the subdirectory glibc tries first. */
TEST(ldcache_prefers_what_glibc_prefers)
{
    use_temp_cache();
    int level = vmc__arch_isa_level();
    const char *const hw[] = {"x86-64-v2", "x86-64-v3", "x86-64-v4", "x86-64-v9"};
    const uint64_t ext = 1ull << 62;
    const ent_t e[] = {
        {0x0303, "libh.so.1", "/h/v2/libh.so.1", ext | 0},
        {0x0303, "libh.so.1", "/h/v4/libh.so.1", ext | 2},
        {0x0303, "libh.so.1", "/h/v3/libh.so.1", ext | 1},
        {0x0303, "libh.so.1", "/h/v9/libh.so.1", ext | 3},          /* not a subdirectory glibc uses */
        {0x0303, "libh.so.1", "/h/big/libh.so.1", ext | (9ull << 32) | 2},  /* ISA level 9 */
        {0x0303, "libh.so.1", "/h/libh.so.1", 0},
        {0x0003, "libi.so.1", "/i386/libi.so.1", 0},                /* 32-bit x86 */
        {0x0303, "libi.so.1", "/x86-64/libi.so.1", 0},
        {0x0303, "libi.so.1", "/second/libi.so.1", 0},
        {0x0001, "libp.so.1", "/plain/libp.so.1", 0},
        {0x0303, "libp.so.1", "/x86-64/libp.so.1", 0},
        {0x0303, "libl.so.1", "/legacy/libl.so.1", 0x4},            /* legacy hardware capability bits */
        {0x0303, "libl.so.1", "/lib/libl.so.1", 0},
        {0x0303, "libo.so.1", "/hwonly/v9/libo.so.1", ext | 3},
        {0x0303, "libo.so.1", "/other/libo.so.1", 0},
    };
    write_cache(cache_file, e, sizeof e / sizeof *e, hw, 4);
    ASSERT_STR_EQ(answer("libh.so.1"), level >= 4   ? "/h/v4/libh.so.1"
                                       : level == 3 ? "/h/v3/libh.so.1"
                                       : level == 2 ? "/h/v2/libh.so.1"
                                                    : "/h/libh.so.1");
    ASSERT_STR_EQ(answer("libi.so.1"), "/x86-64/libi.so.1");
    ASSERT_STR_EQ(answer("libp.so.1"), "/plain/libp.so.1");
    ASSERT_STR_EQ(answer("libl.so.1"), "/lib/libl.so.1");
    ASSERT_STR_EQ(answer("libo.so.1"), "/other/libo.so.1");
    ASSERT_STR_EQ(answer("libh.so"), "");
    ASSERT_STR_EQ(answer("libnone.so.1"), "");
    char small[8];
    ASSERT_EQ(vmc__ldcache_find("libi.so.1", small, sizeof small), -ENAMETOOLONG);
    char want[300];
    snprintf(want, sizeof want, "ld.so cache %s: the path for libi.so.1 is longer than 7 bytes", cache_file);
    ASSERT_STR_EQ(vmc_last_error(), want);
    drop_temp_cache();
}

static void write_bytes(const char *file, const void *p, size_t n)
{
    FILE *f = fopen(file, "wb");
    ASSERT(f);
    ASSERT_EQ(fwrite(p, 1, n, f), n);
    ASSERT_EQ(fclose(f), 0);
}

/* A missing, truncated or inconsistent cache is no cache: not an error. */
TEST(ldcache_broken_or_missing_cache_is_skipped)
{
    use_temp_cache();
    const ent_t e[] = {{0x0303, "libt_rdep.so", "/x/libt_rdep.so", 0}};
    const char *const hw[] = {"x86-64-v2"};
    write_cache(cache_file, e, 1, hw, 1);
    ASSERT_STR_EQ(answer("libt_rdep.so"), "/x/libt_rdep.so");
    char *good = vt_read_file(cache_file);
    struct stat st;
    ASSERT_EQ(stat(cache_file, &st), 0);
    size_t n = (size_t)st.st_size;
    unsigned char *b = malloc(n);
    ASSERT(b);
    /* each breakage, then the good file again (each write changes the size or the time) */
    for (int k = 0; k < 9; k++) {
        memcpy(b, good, n);
        size_t len = n;
        switch (k) {
        case 0: len = 47; break;                         /* shorter than the header */
        case 1: b[0] = 'G'; break;                       /* not the magic */
        case 2: memcpy(b, "ld.so-1.7.0", 11); break;     /* the old format */
        case 3: b[28] = 3; break;                        /* big-endian */
        case 4: put32(b + 20, 0x7fffffff); break;        /* more entries than the file holds */
        case 5: put32(b + 32, (uint32_t)n - 4); break;   /* extension directory past the end */
        case 6: put32(b + 32, 49); break;                /* misaligned extension directory */
        case 7: put32(b + 48 + 4, 0xfffffff0u); break;   /* the key outside the file: entry passed over */
        case 8: len = 0; break;                          /* empty */
        }
        write_bytes(cache_file, b, len);
        ASSERT_MSG(!strcmp(answer("libt_rdep.so"), ""), "breakage %d", k);
        unlink(cache_file);
        ASSERT_STR_EQ(answer("libt_rdep.so"), "");       /* missing */
        write_bytes(cache_file, good, n);
        ASSERT_STR_EQ(answer("libt_rdep.so"), "/x/libt_rdep.so");
    }
    /* a directory, unreadable: skipped too */
    unlink(cache_file);
    ASSERT_EQ(mkdir(cache_file, 0700), 0);
    ASSERT_STR_EQ(answer("libt_rdep.so"), "");
    rmdir(cache_file);
    free(b);
    free(good);

    /* a dependency in a default directory is found there without the cache */
    unsetenv("LD_LIBRARY_PATH");
    const char *lib = "/usr/lib/x86_64-linux-gnu/pulseaudio/libpulsecommon-16.1.so";
    if (!access(lib, R_OK)) {
        write_bytes(cache_file, "glibc-ld.so.cache1.1 broken", 27);
        vmc_t *v = vt_open("-vmheap_size 64M");
        vmc_lib_t *l;
        ASSERT_OK(vmc_lib_load(v, lib, 0, &l));
        vmc_lib_dep_t d = dep_named(l, "libX11.so.6");
        ASSERT_EQ(d.how, VMC_DEP_LOADED_PRIVATELY);
        ASSERT_EQ(d.where, VMC_DEP_DEFAULT_DIR);
        char dir[512], want[600];
        ASSERT(vmc__dep_default_dir(0, dir, sizeof dir));
        snprintf(want, sizeof want, "%s/libX11.so.6", dir);
        ASSERT_STR_EQ(d.path, want);
        ASSERT_STR_EQ(d.why, "found in a default directory of the system loader: loaded privately");
        ASSERT_OK(vmc_lib_unload(l));
        vmc_close(v);
    }
    drop_temp_cache();
}

/* Read once, reused until the file changes (ldconfig renames a new one over it). */
TEST(ldcache_read_once_until_it_changes)
{
    use_temp_cache();
    const ent_t a[] = {{0x0303, "liba.so.1", "/one/liba.so.1", 0}};
    const ent_t b[] = {{0x0303, "liba.so.1", "/two/liba.so.1", 0}};
    write_cache(cache_file, a, 1, NULL, 0);
    unsigned long reads = vmc__ldcache_reads();
    for (int i = 0; i < 5; i++) ASSERT_STR_EQ(answer("liba.so.1"), "/one/liba.so.1");
    ASSERT_EQ(vmc__ldcache_reads(), reads + 1);
    /* within one load, no OS call at all after the first look-up */
    char p[256];
    vmc__os_calls_reset();
    for (int i = 0; i < 5; i++) ASSERT_EQ(vmc__ldcache_find(i % 2 ? "liba.so.1" : "libb.so.1", p, sizeof p), i % 2);
    for (int k = 0; k < VMC_OS_CALL_COUNT; k++) ASSERT_EQ(vmc__os_calls(k), 0);
    /* a new load checks the file: one open and one fstat, not read again */
    vmc__ldcache_recheck();
    ASSERT_EQ(vmc__ldcache_find("liba.so.1", p, sizeof p), 1);
    ASSERT_EQ(vmc__os_calls(VMC_OS_OPEN), 1);
    ASSERT_EQ(vmc__os_calls(VMC_OS_FSTAT), 1);
    ASSERT_EQ(vmc__os_calls(VMC_OS_PREAD), 0);
    ASSERT_EQ(vmc__ldcache_reads(), reads + 1);
    /* the same size, another modification time */
    char next[80];
    snprintf(next, sizeof next, "%s.new", cache_file);
    write_cache(next, b, 1, NULL, 0);
    struct timespec t[2] = {{0, UTIME_OMIT}, {1000000000, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, next, t, 0), 0);
    ASSERT_EQ(rename(next, cache_file), 0);
    ASSERT_EQ(vmc__ldcache_find("liba.so.1", p, sizeof p), 1);
    ASSERT_STR_EQ(p, "/one/liba.so.1");  /* the same load: the cache it began with */
    ASSERT_STR_EQ(answer("liba.so.1"), "/two/liba.so.1");
    ASSERT_STR_EQ(answer("liba.so.1"), "/two/liba.so.1");
    ASSERT_EQ(vmc__ldcache_reads(), reads + 2);
    drop_temp_cache();
}

/* The cache's OS calls failing otherwise than "not there": the exact
 * error, no descriptor or mapping left, and the next lookup works. */
TEST(ldcache_read_failures)
{
    use_temp_cache();
    const ent_t e[] = {{0x0303, "libt_rdep.so", "/x/libt_rdep.so", 0}};
    write_cache(cache_file, e, 1, NULL, 0);
    struct {
        enum vmc_os_call call;
        int err;
        const char *what;
    } f[] = {{VMC_OS_OPEN, EMFILE, "open: Too many open files"},
             {VMC_OS_FSTAT, EIO, "fstat: Input/output error"},
             {VMC_OS_PREAD, EIO, "read at offset 0: Input/output error"},
             {VMC_OS_OPEN, EACCES, NULL},
             {VMC_OS_OPEN, ENOENT, NULL}};
    char p[256], want[300];
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        vmc__ldcache_use(cache_file);  /* not read yet */
        vt_snapshot_t snap;
        vt_snap(&snap);
        vmc__os_fault(f[i].call, 1, f[i].err, 0);
        int r = vmc__ldcache_find("libt_rdep.so", p, sizeof p);
        vmc__os_fault_clear();
        if (f[i].what) {
            ASSERT_EQ(r, -f[i].err);
            snprintf(want, sizeof want, "ld.so cache %s: %s", cache_file, f[i].what);
            ASSERT_STR_EQ(vmc_last_error(), want);
        } else {
            ASSERT_EQ(r, 0);  /* not there, or unreadable: no cache */
        }
        ASSERT_NO_LEAK(snap);
        vt_snap_free(&snap);
        ASSERT_STR_EQ(answer("libt_rdep.so"), "/x/libt_rdep.so");
    }
    /* the same failure inside a load names the library and the dependency */
    unsetenv("LD_LIBRARY_PATH");
    vmc__ldcache_use(cache_file);
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    vmc__os_fault(VMC_OS_FSTAT, 2, EIO, 0);  /* the library's own fstat, then the cache's */
    int r = vmc_lib_load(v, vt_tlib("libt_rplain.so"), 0, &l);
    vmc__os_fault_clear();
    ASSERT_EQ(r, -EIO);
    snprintf(want, sizeof want, "%s: dependency libt_rdep.so: ld.so cache %s: fstat: Input/output error",
             vt_tlib("libt_rplain.so"), cache_file);
    ASSERT_STR_EQ(vmc_last_error(), want);
    vmc_close(v);
    drop_temp_cache();
}

/* A library's dependency found through the cache is loaded privately; a
 * copy beside the library is taken only when the system loader's whole
 * search finds nothing. */
TEST(ldcache_beside_only_when_the_system_search_finds_nothing)
{
    unsetenv("LD_LIBRARY_PATH");
    use_temp_cache();
    char dir[64] = "/tmp/vmc-beside-XXXXXX", lib[128], beside[128];
    ASSERT(mkdtemp(dir));
    snprintf(lib, sizeof lib, "%s/libt_rplain.so", dir);
    snprintf(beside, sizeof beside, "%s/libt_rdep.so", dir);
    ASSERT_OK(vt_img_copy_file(vt_tlib("libt_rplain.so"), lib));
    ASSERT_OK(vt_img_copy_file(vt_tlib("sub3/libt_rdep.so"), beside));  /* returns 3; sub/'s returns 1 */
    const ent_t e[] = {{0x0303, "libt_rdep.so", vt_tlib("sub/libt_rdep.so"), 0}};
    write_cache(cache_file, e, 1, NULL, 0);
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, lib, 0, &l));
    ASSERT_EQ(((int (*)(void))vmc_lib_sym(l, "t_ruser"))(), 1);
    vmc_lib_dep_t d = dep_named(l, "libt_rdep.so");
    ASSERT_EQ(d.how, VMC_DEP_LOADED_PRIVATELY);
    ASSERT_EQ(d.where, VMC_DEP_LDSO_CACHE);
    ASSERT_STR_EQ(d.path, vt_tlib("sub/libt_rdep.so"));
    ASSERT_STR_EQ(d.why, "found through the ld.so cache: loaded privately");
    ASSERT_OK(vmc_lib_unload(l));

    /* a cache entry whose file has gone: on to the default directories, then beside */
    const ent_t gone[] = {{0x0303, "libt_rdep.so", "/nonexistent/libt_rdep.so", 0}};
    write_cache(cache_file, gone, 1, NULL, 0);
    ASSERT_OK(vmc_lib_load(v, lib, 0, &l));
    ASSERT_EQ(((int (*)(void))vmc_lib_sym(l, "t_ruser"))(), 3);
    d = dep_named(l, "libt_rdep.so");
    ASSERT_EQ(d.where, VMC_DEP_BESIDE);
    ASSERT_STR_EQ(d.path, beside);
    ASSERT_STR_EQ(d.why, "not found by the system loader's search, found beside the library that needs it: "
                         "loaded privately");
    ASSERT_OK(vmc_lib_unload(l));

    /* LD_LIBRARY_PATH comes before the cache */
    char env[600];
    snprintf(env, sizeof env, "%s/tests/libs/sub3", vt_build_dir());
    setenv("LD_LIBRARY_PATH", env, 1);
    write_cache(cache_file, e, 1, NULL, 0);
    ASSERT_OK(vmc_lib_load(v, lib, 0, &l));
    ASSERT_EQ(dep_named(l, "libt_rdep.so").where, VMC_DEP_LD_LIBRARY_PATH);
    ASSERT_OK(vmc_lib_unload(l));
    unsetenv("LD_LIBRARY_PATH");
    vmc_close(v);
    unlink(beside);
    unlink(lib);
    rmdir(dir);
    drop_temp_cache();
}

/* DF_1_NODEFLIB: no default directory, and no cache entry inside one; a
 * cache entry elsewhere is still taken, as glibc does. */
TEST(ldcache_nodeflib)
{
    unsetenv("LD_LIBRARY_PATH");
    char dir[64] = "/tmp/vmc-nodeflib-XXXXXX", lib[128], want[600];
    ASSERT(mkdtemp(dir));
    snprintf(lib, sizeof lib, "%s/libt_rplain.so", dir);
    vt_img_t m;
    ASSERT_OK(vt_img_read(vt_tlib("libt_rplain.so"), &m));
    Elf64_Dyn *f = vt_dyn(&m, DT_FLAGS_1, NULL);
    ASSERT(f);
    f->d_un.d_val |= DF_1_NODEFLIB;
    ASSERT_OK(vt_img_write(&m, lib));
    vt_img_free(&m);
    use_temp_cache();
    const ent_t e[] = {{0x0303, "libt_rdep.so", vt_tlib("sub/libt_rdep.so"), 0}};
    write_cache(cache_file, e, 1, NULL, 0);
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, lib, 0, &l));
    ASSERT_EQ(dep_named(l, "libt_rdep.so").where, VMC_DEP_LDSO_CACHE);
    ASSERT_OK(vmc_lib_unload(l));
    /* the same file named under a default directory: not taken */
    char dd[512], indef[700];
    ASSERT(vmc__dep_default_dir(1, dd, sizeof dd));
    snprintf(indef, sizeof indef, "%s/../../..%s", dd, vt_tlib("sub/libt_rdep.so"));
    const ent_t in[] = {{0x0303, "libt_rdep.so", indef, 0}};
    write_cache(cache_file, in, 1, NULL, 0);
    ASSERT_EQ(vmc_lib_load(v, lib, 0, &l), -ENOENT);
    snprintf(want, sizeof want, "%s: dependency libt_rdep.so: not found in its search path (DF_1_NODEFLIB "
             "excludes the default directories and their ld.so cache entries)", lib);
    ASSERT_STR_EQ(vmc_last_error(), want);
    vmc_close(v);
    unlink(lib);
    rmdir(dir);
    drop_temp_cache();
}
