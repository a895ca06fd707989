/* Where a dependency of a private library is: the system loader's search
 * order for a dependency of an object it loads (dlopen's too).
 *
 * For a DT_NEEDED name without a slash, glibc's ld.so tries, in order:
 *   1. unless the library that needs it has DT_RUNPATH: the DT_RPATH of that
 *      library, then of the library that loaded it, and so on up the chain,
 *      then the program's own DT_RPATH (an object's DT_RPATH is ignored when
 *      it also has DT_RUNPATH);
 *   2. LD_LIBRARY_PATH (not for a set-user-ID program);
 *   3. the DT_RUNPATH of the library that needs it (only that one);
 *   4. the ld.so cache (ldcache.c); with DF_1_NODEFLIB on the library that
 *      needs it, an entry in a default directory is not taken;
 *   5. the default directories (not with DF_1_NODEFLIB).
 * All of it is done here, so that a private load uses the file dlopen
 * would.  (The caller then tries vmcode's own last step: beside the library
 * that needs it.)
 *
 * Path elements are split on ':' (LD_LIBRARY_PATH also on ';'); an empty
 * one is the current directory.  $ORIGIN (the directory of the object whose
 * DT_RPATH/DT_RUNPATH it is), $LIB and $PLATFORM are expanded, also as
 * ${NAME}; any other '$' is kept as it is.  An element using $ORIGIN is
 * dropped when the object has no directory (loaded from memory) or the
 * program runs set-user-ID (glibc allows only trusted directories there).
 * Not searched: the glibc-hwcaps and legacy hardware-capability
 * subdirectories glibc also tries inside each directory (the cache's
 * glibc-hwcaps entries are taken, ldcache.c).
 */
#include "lib/loader.h"
#include "lib/ldcache.h"
#include "arch/hwcaps.h"
#include "base/error.h"
#include "os/os.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <elf.h>

/* $LIB: the system loader's library directory name, which is where libc
 * itself is, less the leading "/" or "/usr/" ("lib/x86_64-linux-gnu" on
 * Debian, "lib64" on Fedora).  A test checks that ld.so agrees. */
/* A set-user-id or set-group-id program (AT_SECURE): ld.so then ignores
 * $ORIGIN and LD_LIBRARY_PATH, and so does this search. */
static int secure(void)
{
    unsigned long v = 0;
    return vmc__os_auxval(AT_SECURE, &v) == 0 && v;
}

/* The kernel's AT_PLATFORM, or NULL (the processor's part: arch/hwcaps.c). */
static const char *kernel_platform(void)
{
    unsigned long v = 0;
    return vmc__os_auxval(AT_PLATFORM, &v) == 0 ? (const char *)v : NULL;
}

static const char *dst_lib(char *buf, size_t len)
{
    /* by name: the address of a libc function may be the program's PLT */
    void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    struct link_map *lm = NULL;
    char name[PATH_MAX];
    const char *p = NULL;
    if (h && dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm->l_name && lm->l_name[0] == '/' &&
        strlen(lm->l_name) < sizeof name)
        p = strcpy(name, lm->l_name);
    if (h) dlclose(h);
    const char *slash = p ? strrchr(p, '/') : NULL;
    if (!slash) return "lib";
    if (!strncmp(p, "/usr/", 5)) p += 5;
    else p += 1;
    if (slash <= p || (size_t)(slash - p) >= len) return "lib";
    memcpy(buf, p, (size_t)(slash - p));
    buf[slash - p] = 0;
    return buf;
}

/* Does s[0..n) start with $NAME or ${NAME}?  Returns the length of that. */
static size_t dst_match(const char *s, size_t n, const char *name)
{
    size_t k = strlen(name);
    if (n >= 1 + k && !strncmp(s + 1, name, k)) {
        char c = 1 + k < n ? s[1 + k] : 0;
        /* "$ORIGINAL" is not $ORIGIN */
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 1 + k;
    }
    if (n >= 3 + k && s[1] == '{' && !strncmp(s + 2, name, k) && s[2 + k] == '}') return 3 + k;
    return 0;
}

size_t vmc__dep_expand(const char *elem, size_t n, const char *origin, char *out, size_t len)
{
    char libbuf[256];
    size_t o = 0;
    if (n == 0) elem = ".", n = 1;  /* an empty element: the current directory */
    for (size_t i = 0; i < n;) {
        const char *sub = NULL;
        size_t k = 0;
        if (elem[i] == '$') {
            if ((k = dst_match(elem + i, n - i, "ORIGIN"))) {
                if (!origin || secure()) return 0;
                sub = origin;
            } else if ((k = dst_match(elem + i, n - i, "LIB"))) {
                sub = dst_lib(libbuf, sizeof libbuf);
            } else if ((k = dst_match(elem + i, n - i, "PLATFORM"))) {
                sub = vmc__arch_platform(kernel_platform());
            }
        }
        if (sub) {
            size_t sl = strlen(sub);
            if (o + sl >= len) return 0;
            memcpy(out + o, sub, sl);
            o += sl;
            i += k;
        } else {
            if (o + 1 >= len) return 0;
            out[o++] = elem[i++];
        }
    }
    out[o] = 0;
    return o;
}

/* Is the file there?  1, 0, or an OS error; as ld.so, a directory that is
 * missing or unreadable is passed over. */
static int there(const char *path)
{
    int fd, e = vmc__os_open(path, O_RDONLY, 0, &fd);
    if (e == 0) {
        vmc__os_close(fd);
        return 1;
    }
    if (e != -ENOENT && e != -ENOTDIR && e != -EACCES && e != -ENAMETOOLONG)
        return vmc__fail(e, "open %s: %s", path, strerror(-e));
    return 0;
}

/* Try name in each directory of `list` (unexpanded, ':'-separated, ';' too
 * with `semi`).  1 and the path if there, 0 if not, or an OS error. */
static int try_list(const char *list, int semi, const char *origin, const char *name, char *path, size_t len)
{
    const char *p = list;
    for (;;) {
        size_t n = strcspn(p, semi ? ":;" : ":");
        char dir[4096];
        size_t dl = vmc__dep_expand(p, n, origin, dir, sizeof dir);
        if (dl) {
            int w = snprintf(path, len, "%s%s%s", dir, dir[dl - 1] == '/' ? "" : "/", name);
            int r = w > 0 && (size_t)w < len ? there(path) : 0;
            if (r) return r;
        }
        if (!p[n]) return 0;
        p += n + 1;
    }
}

/* The program's DT_RPATH and DT_RUNPATH, from its dynamic section in memory
 * (the first object dl_iterate_phdr reports).  ld.so may have rewritten the
 * DT_STRTAB entry in place to an absolute address: a value below the load
 * address is taken as relative. */
typedef struct prog_paths {
    const char *rpath, *runpath;
} prog_paths_t;

static int prog_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    prog_paths_t *pp = arg;
    const Elf64_Dyn *dyn = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const Elf64_Dyn *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (!dyn) return 1;
    uintptr_t strtab = 0;
    uint64_t rpath = UINT64_MAX, runpath = UINT64_MAX;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_STRTAB) strtab = dyn->d_un.d_ptr;
        else if (dyn->d_tag == DT_RPATH) rpath = dyn->d_un.d_val;
        else if (dyn->d_tag == DT_RUNPATH) runpath = dyn->d_un.d_val;
    }
    if (!strtab) return 1;
    if (strtab < info->dlpi_addr) strtab += info->dlpi_addr;
    if (runpath != UINT64_MAX) pp->runpath = (const char *)strtab + runpath;
    else if (rpath != UINT64_MAX) pp->rpath = (const char *)strtab + rpath;
    return 1;  /* the program only */
}

/* The program's directory, for $ORIGIN in its own DT_RPATH: what ld.so
 * itself took for it (RTLD_DI_ORIGIN of the program's handle, which is
 * never closed: dlclose of it does nothing). */
static const char *prog_origin(char *buf)
{
    void *h = dlopen(NULL, RTLD_NOW);
    if (!h) return NULL;
    int r = dlinfo(h, RTLD_DI_ORIGIN, buf);
    dlclose(h);
    return r == 0 && buf[0] ? buf : NULL;
}

/* glibc's default directories, as its build configures them: with a
 * multiarch $LIB (Debian's "lib/x86_64-linux-gnu") /lib/<triplet>,
 * /usr/lib/<triplet>, /lib, /usr/lib; otherwise /$LIB, /usr/$LIB (Fedora's
 * /lib64, /usr/lib64).  A test compares them with ld.so --help. */
const char *vmc__dep_default_dir(size_t i, char *buf, size_t len)
{
    char libbuf[256];
    const char *lib = dst_lib(libbuf, sizeof libbuf);
    int multi = strchr(lib, '/') != NULL;
    if (i >= (multi ? 4u : 2u)) return NULL;
    if (i >= 2) lib = "lib";
    int w = snprintf(buf, len, "%s/%s", i % 2 ? "/usr" : "", lib);
    return w > 0 && (size_t)w < len ? buf : NULL;
}

/* Steps 4 and 5: the ld.so cache, the default directories. */
static int system_dirs(const vmc_lib_t *l, const char *name, char *path, size_t len, int *where)
{
    int nodeflib = (l->o.dt_flags_1 & DF_1_NODEFLIB) != 0;
    char dir[512];
    int r = vmc__ldcache_find(name, path, len);
    if (r < 0) return r;
    if (r == 1 && nodeflib)  /* as glibc: not an entry inside a default directory */
        for (size_t i = 0; r == 1 && vmc__dep_default_dir(i, dir, sizeof dir); i++) {
            size_t dl = strlen(dir);
            if (!strncmp(path, dir, dl) && path[dl] == '/') r = 0;
        }
    /* an entry whose file has gone: glibc goes on to the default directories */
    if (r == 1 && (r = there(path)) == 1) {
        *where = VMC_DEP_LDSO_CACHE;
        return 0;
    }
    if (r < 0 || nodeflib) return r < 0 ? r : 1;
    for (size_t i = 0; vmc__dep_default_dir(i, dir, sizeof dir); i++) {
        int w = snprintf(path, len, "%s/%s", dir, name);
        if (w < 0 || (size_t)w >= len) continue;
        if ((r = there(path))) {
            *where = VMC_DEP_DEFAULT_DIR;
            return r < 0 ? r : 0;
        }
    }
    return 1;
}

int vmc__dep_find(const vmc_lib_t *l, const char *name, char *path, size_t len, int *where)
{
    int r;
    if (!l->o.runpath) {
        for (const vmc_lib_t *c = l; c; c = c->loader)
            if (c->o.rpath && !c->o.runpath && (r = try_list(c->o.rpath, 0, c->dir, name, path, len))) {
                *where = VMC_DEP_RPATH;
                return r < 0 ? r : 0;
            }
        prog_paths_t pp = {NULL, NULL};
        dl_iterate_phdr(prog_cb, &pp);
        char origin[PATH_MAX];  /* what RTLD_DI_ORIGIN may write */
        if (pp.rpath && (r = try_list(pp.rpath, 0, prog_origin(origin), name, path, len))) {
            *where = VMC_DEP_RPATH;
            return r < 0 ? r : 0;
        }
    }
    const char *env = secure() ? NULL : getenv("LD_LIBRARY_PATH");
    if (env && *env && (r = try_list(env, 1, NULL, name, path, len))) {
        *where = VMC_DEP_LD_LIBRARY_PATH;
        return r < 0 ? r : 0;
    }
    if (l->o.runpath && (r = try_list(l->o.runpath, 0, l->dir, name, path, len))) {
        *where = VMC_DEP_RUNPATH;
        return r < 0 ? r : 0;
    }
    return system_dirs(l, name, path, len, where);
}
