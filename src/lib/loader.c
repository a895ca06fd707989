/* The library lifecycle: load, bind, initialise, look up, unload.
 *
 * A load (from a file or from memory, one code path) reads and validates the
 * headers (elf/check.c), maps the image over a block run (elf/map.c), reads
 * the dynamic section (elf/dyn.c) and resolves the dependencies, each of them
 * loaded the same way.  Only once the whole group this load brings in is
 * mapped does it relocate (elf/reloc.c) and make RELRO read-only, each
 * library after its dependencies, as the system loader does: a library may
 * then bind to any of the group, even one it does not name in DT_NEEDED
 * (libtheoraenc uses libtheoradec's functions; libavcodec, which loads both,
 * works).  Then constructors run, dependencies first.
 * A failure before that point undoes exactly what was done: runs given back
 * PROT_NONE, dependencies released, descriptors closed.
 *
 * Dependencies (DT_NEEDED), in this order: one the process already has or
 * a system library (libc, libm, libpthread, libdl, librt, ld-linux, ..., and
 * the compiler runtimes libstdc++ and libgcc_s) is the host's copy, held
 * with dlopen (never a private libc); one named by a path, found in the
 * library's own search path (search.c: DT_RPATH, LD_LIBRARY_PATH,
 * DT_RUNPATH, in the system loader's order) or in the same directory as the
 * library that needs it is loaded privately into the region (or, if the
 * private loader refuses it as unsupported, by the system loader from that
 * file); anything else goes through the system loader, outside the region.
 *
 * Binding, for each symbol a relocation names: the library itself first,
 * then its private dependencies, then every other private library (inert
 * ones only for inert loads), then vmcode's own definitions of the few
 * imports that must know about private libraries (interpose.c: such as
 * dl_iterate_phdr), then the host's global scope (hostsym.c: the
 * version VERNEED asks for, or an unversioned interposer), then the handles
 * of the system-loaded dependencies.  An undefined weak symbol is 0; a
 * missing strong one refuses the load naming symbol and version.
 *
 * A -z nodelete library stays loaded after its last unload, until
 * vmc_close, as the system loader keeps it.
 *
 * A second load of the same file (same device, inode and flags) returns the same
 * handle with one more reference, as dlopen does; each load is matched by
 * one vmc_lib_unload.  All of this runs under the handle's lock (taken
 * again by the thread that holds it, see vmc__loader_lock), so loads and
 * unloads from several threads are serialised, and a constructor may itself
 * load a library.
 */
#include "lib/loader.h"
#include "lib/ldcache.h"
#include "lib/interpose.h"
#include "lib/phdr.h"
#include "lib/tlsdtor.h"
#include "lib/unwinder.h"
#include "lib/cxxrt.h"
#include "pe/pe.h"
#include "base/error.h"
#include "os/os.h"

#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>

#define HDR_READ 4096

/* ---- the block layer of a region ---------------------------------------- */

/* ---- list and helpers ------------------------------------------------------ */

static void list_add(vmc_loader_t *v, vmc_lib_t *l)
{
    l->next = NULL;
    l->prev = v->libs_tail;
    if (v->libs_tail) v->libs_tail->next = l;
    else v->libs = l;
    v->libs_tail = l;
    v->nlibs++;
}

static void list_remove(vmc_loader_t *v, vmc_lib_t *l)
{
    if (l->prev) l->prev->next = l->next;
    else v->libs = l->next;
    if (l->next) l->next->prev = l->prev;
    else v->libs_tail = l->prev;
    l->next = l->prev = NULL;
    v->nlibs--;
}

void vmc__loader_lock(vmc_loader_t *v) { vmc__space_lock(v->sp); }
void vmc__loader_unlock(vmc_loader_t *v) { vmc__space_unlock(v->sp); }

size_t vmc__loader_count(vmc_loader_t *v)
{
    vmc__loader_lock(v);
    size_t n = v->nlibs;
    vmc__loader_unlock(v);
    return n;
}

/* The private library whose executable segment holds [a, a+1), or NULL. */
static vmc_lib_t *exec_owner(vmc_loader_t *v, uintptr_t a)
{
    for (vmc_lib_t *l = v->libs; l; l = l->next)
        if (vmc__elf_executable(&l->o, a)) return l;
    return NULL;
}

/* "DT_RELA entry 5", or the tag alone when index is (size_t)-1. */
static const char *what_text(char *buf, size_t len, const char *tag, size_t index)
{
    if (index == (size_t)-1) snprintf(buf, len, "%s", tag);
    else snprintf(buf, len, "%s entry %zu", tag, index);
    return buf;
}

int vmc__call_ifunc(vmc_lib_t *l, uintptr_t resolver, uintptr_t *out, const char *tag, size_t index)
{
    char what[64];
    if (!exec_owner(l->v, resolver))
        return vmc__fail(-ENOEXEC, "%s: %s: IFUNC resolver 0x%lx is not inside an executable segment",
                         l->name, what_text(what, sizeof what, tag, index),
                         (unsigned long)(resolver - l->o.bias));
    if (l->flags & VMC_LOAD_INERT) {
        *out = 0;
        return 0;
    }
    uintptr_t (*fn)(void) = (uintptr_t (*)(void))resolver;
    *out = fn();
    return 0;
}

/* ---- binding --------------------------------------------------------------- */

static int relocate(vmc_lib_t *l);

/* Is the symbol in d?  An IFUNC there is resolved by running d's code, so d
 * is relocated first if it is not yet (a library of the group that is not
 * l's dependency, which the group's order does not put before l).  In a
 * cycle of such libraries, one being relocated is called as it is, as the
 * system loader would. */
static int found_in(vmc_lib_t *l, vmc_lib_t *d, const vmc_name_t *name, const vmc_ver_t *ver,
                    uintptr_t *value, int *ifunc, int *err)
{
    if (!vmc__elf_find(&d->o, name, ver, value, ifunc)) return 0;
    if (*ifunc && d->state == VMC_LIB_MAPPED && (*err = relocate(d))) return 0;
    l->o.bound_obj = &d->o;  /* a TLS symbol's module (tlsbind.c) */
    return 1;
}

void *vmc__host_sym_for(const vmc_lib_t *l, const vmc_name_t *name, const char *version)
{
    void *p = vmc__host_sym(RTLD_DEFAULT, name, version);
    for (size_t i = 0; !p && i < l->ndeps; i++)
        if (l->deps[i].kind == VMC_DEP_SYSTEM) p = vmc__host_sym(l->deps[i].handle, name, version);
    return p;
}

/* The scope beyond the library itself, in order: its private dependencies,
 * every other private library (inert ones only for inert loads), vmcode's
 * own functions (interpose.c), the host. */
int vmc__resolve(vmc_lib_t *l, const vmc_name_t *key, const vmc_ver_t *ver, uintptr_t *value, int *ifunc,
                 const char *tag, size_t index)
{
    char what[64];
    int err = 0;
    l->o.bound_from = VMC_BOUND_PRIVATE;
    for (size_t i = 0; i < l->ndeps; i++)
        if (l->deps[i].kind == VMC_DEP_PRIVATE && found_in(l, l->deps[i].lib, key, ver, value, ifunc, &err))
            return 1;
    for (vmc_lib_t *o = l->v->libs; o && !err; o = o->next)
        if (o != l && o->state != VMC_LIB_LOADING && o->state != VMC_LIB_FINISHED &&
            (!(o->flags & VMC_LOAD_INERT) || (l->flags & VMC_LOAD_INERT)) &&
            found_in(l, o, key, ver, value, ifunc, &err))
            return 1;
    if (err) return err;
    l->o.bound_from = VMC_BOUND_HOST;
    l->o.bound_obj = NULL;
    void *own = vmc__interposed(key, ver);
    if (own) {
        *value = (uintptr_t)own;
        return 1;
    }
    if (ver && ver->hash0)  /* glibc's dlvsym would read a NULL name */
        return vmc__fail(-ENOTSUP, "%s: %s: symbol %s asks for version \"%s\", which is not supported "
                         "(its ELF hash is 0, and dlvsym cannot look that up)", l->name,
                         what_text(what, sizeof what, tag, index), key->str, ver->name);
    void *p = vmc__host_sym_for(l, key, ver ? ver->name : NULL);
    if (p) {
        *value = (uintptr_t)p;
        return 1;
    }
    return 0;
}

/* ---- dependencies ----------------------------------------------------------- */

static int is_system_library(const char *n)
{
    /* the C library's parts, and the compiler's runtimes: one copy per
     * process (two libstdc++ would disagree on every type_info and global) */
    static const char *const sys[] = {"libc.so", "libm.so", "libpthread.so", "libdl.so", "librt.so",
                                      "ld-linux", "libresolv.so", "libutil.so", "libanl.so",
                                      "libmvec.so", "libBrokenLocale.so", "libnsl.so", "ld64.so",
                                      "libstdc++.so", "libgcc_s.so", "libatomic.so", "libgomp.so"};
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
        if (!strncmp(n, sys[i], strlen(sys[i]))) return 1;
    return 0;
}

static int load_file(vmc_loader_t *v, const char *path, int flags, int depth, vmc_lib_t *loader, vmc_lib_t **out);

static void release(vmc_lib_t *l);

static const char *where_text(int where)
{
    switch (where) {
    case VMC_DEP_BY_PATH: return "DT_NEEDED is a path";
    case VMC_DEP_RPATH: return "found in a DT_RPATH directory";
    case VMC_DEP_LD_LIBRARY_PATH: return "found in a directory of LD_LIBRARY_PATH";
    case VMC_DEP_RUNPATH: return "found in a DT_RUNPATH directory";
    case VMC_DEP_LDSO_CACHE: return "found through the ld.so cache";
    case VMC_DEP_DEFAULT_DIR: return "found in a default directory of the system loader";
    case VMC_DEP_BESIDE: return "not found by the system loader's search, found beside the library that needs it";
    default: return "found";
    }
}

/* Dependency n of l, found at path (where: enum vmc_dep_where), loaded
 * privately; or, if the private loader does not support it (it uses TLS,
 * say), by the system loader from that path, outside the region: it need
 * not be reachable.  Not when nothing may be run. */
static int dep_private(vmc_lib_t *l, vmc_dep_t *d, const char *n, const char *path, int where)
{
    if (l->depth + 1 > VMC_ELF_MAX_DEPTH)
        return vmc__fail(-ELOOP, "%s: dependency %s: nested more than %d deep", l->name, n, VMC_ELF_MAX_DEPTH);
    vmc_lib_t *dep;
    d->where = where;
    int e = load_file(l->v, path, l->flags, l->depth + 1, l, &dep);
    if (!e) {
        d->kind = VMC_DEP_PRIVATE;
        d->lib = dep;
        snprintf(d->why, sizeof d->why, "%s: loaded privately", where_text(where));
        return 0;
    }
    void *h = NULL;
    if (e != -ENOTSUP || (l->flags & VMC_LOAD_INERT) || !(h = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
        return vmc__fail_wrap(e, "%s: dependency %s", l->name, n);
    d->kind = VMC_DEP_SYSTEM;
    d->handle = h;
    snprintf(d->why, sizeof d->why, "%s; loaded by the system loader because the private loader refuses it: %s",
             where_text(where), vmc_last_error());
    return 0;
}

/* Dependency n, which the process does not have and is no system library:
 * by its path, or searched for as the system loader does (vmc__dep_find),
 * and only if that finds nothing beside the library (so that a private load
 * uses the file dlopen would); what is found is loaded privately (*loaded = 1).
 * Otherwise *where and d->why say so.  Out of line, with the path buffer:
 * the usual dependencies (the C library) never need its stack page. */
static __attribute__((noinline)) int dep_find(vmc_lib_t *l, vmc_dep_t *d, const char *n, int *where, int *loaded)
{
    char path[4096];
    int r;
    *loaded = 0;
    if (strchr(n, '/')) {
        if (snprintf(path, sizeof path, "%s", n) >= (int)sizeof path)
            return vmc__fail(-ENAMETOOLONG, "%s: dependency %s: path too long", l->name, n);
        *where = VMC_DEP_BY_PATH;
        r = 0;
    } else {
        r = vmc__dep_find(l, n, path, sizeof path, where);
        if (r < 0) return vmc__fail_wrap(r, "%s: dependency %s", l->name, n);
        if (r == 1 && l->dir) {
            int len = snprintf(path, sizeof path, "%s/%s", l->dir, n);
            if (len < 0 || (size_t)len >= sizeof path)
                return vmc__fail(-ENAMETOOLONG, "%s: dependency %s: path too long", l->name, n);
            /* Is it there?  Through the OS layer, like every other call. */
            int fd, there = vmc__os_open(path, O_RDONLY, 0, &fd);
            if (there == 0) vmc__os_close(fd);
            else if (there != -ENOENT && there != -ENOTDIR)
                return vmc__fail(there, "%s: dependency %s: open %s: %s", l->name, n, path, strerror(-there));
            if (there == 0) {
                r = 0;
                *where = VMC_DEP_BESIDE;
            }
        }
        if (r) {
            *where = VMC_DEP_SYSTEM_SEARCH;
            snprintf(d->why, sizeof d->why, "not found by the system loader's search (DT_RPATH, LD_LIBRARY_PATH, "
                     "DT_RUNPATH, ld.so cache, default directories) nor beside the library: left to the system "
                     "loader, outside the region");
            /* dlopen by name would search the cache and the default directories */
            if (l->o.dt_flags_1 & DF_1_NODEFLIB)
                return vmc__fail(-ENOENT, "%s: dependency %s: not found in its search path (DF_1_NODEFLIB "
                                 "excludes the default directories and their ld.so cache entries)", l->name, n);
        }
    }
    if (r) return 0;
    int e = dep_private(l, d, n, path, *where);
    if (!e) *loaded = 1;
    return e;
}

/* Each DT_NEEDED, as docs/loader.md "Dependencies" lays out: the host's
 * copy if the process has it or it is a system library; else searched for
 * and loaded privately if found (dep_find); the rest is left to the system
 * loader. */
static int resolve_deps(vmc_lib_t *l)
{
    if (!l->o.nneeded) return 0;
    l->deps = calloc(l->o.nneeded, sizeof *l->deps);
    if (!l->deps) return vmc__fail(-ENOMEM, "%s: out of memory for dependencies", l->name);
    int inert = l->flags & VMC_LOAD_INERT;
    for (size_t i = 0; i < l->o.nneeded; i++) {
        const char *n = vmc__elf_needed(&l->o, i);
        vmc_dep_t *d = &l->deps[l->ndeps];
        if (!*n) return vmc__fail(-ENOEXEC, "%s: DT_NEEDED %zu is an empty name", l->name, i);
        /* an object the process started with (the C library, nearly
         * always) without asking the system loader: its lock, its
         * error-catching path and a reference to drop again at unload */
        void *h = strchr(n, '/') ? NULL : vmc__host_startup_object(n);
        d->unowned = h != NULL;
        if (!h) h = dlopen(n, RTLD_NOW | RTLD_NOLOAD);
        d->host_had_it = h != NULL;
        int where = VMC_DEP_SYSTEM_SEARCH;
        if (h) {
            where = VMC_DEP_IN_PROCESS;
            snprintf(d->why, sizeof d->why, "the process has it already: the host's copy");
        } else if (is_system_library(n)) {
            where = VMC_DEP_SYSTEM_LIBRARY;
            snprintf(d->why, sizeof d->why, "a system library (one copy per process): the system loader's");
        } else {
            int loaded, e = dep_find(l, d, n, &where, &loaded);
            if (e) return e;
            if (loaded) {
                l->ndeps++;
                continue;
            }
        }
        d->where = where;
        if (!h && !inert) h = dlopen(n, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *why = dlerror();
            return vmc__fail(-ENOENT, "%s: dependency %s: %s", l->name, n,
                             inert ? "not in the process (VMC_LOAD_INERT loads nothing else)"
                                   : why ? why : "not found");
        }
        d->kind = VMC_DEP_SYSTEM;
        d->handle = h;
        l->ndeps++;
    }
    return 0;
}

/* ---- init and fini ---------------------------------------------------------- */

static void run_init(vmc_lib_t *l)
{
    l->state = VMC_LIB_READY;
    l->init_seq = ++l->v->lib_seq;
    if (l->flags & VMC_LOAD_INERT) return;
    vmc__elf_init(&l->o);
}

static void run_fini(vmc_lib_t *l)
{
    if (l->state != VMC_LIB_READY) return;
    l->state = VMC_LIB_FINISHED;
    if (l->flags & VMC_LOAD_INERT) return;
    vmc__elf_fini(&l->o);
}

/* ---- load -------------------------------------------------------------------- */

/* Free a library that holds no run and no dependencies any more. */
static void lib_free(vmc_lib_t *l)
{
    vmc__elf_free(&l->o);
    free(l->dbg_path);
    free(l->deps);
    free(l->name);
    free(l->dir);
    free(l);
}

/* Drop the dependencies, give the run back, leave the list, free. */
static void destroy(vmc_lib_t *l)
{
    vmc_loader_t *v = l->v;
    vmc__debug_remove(&l->dbg);  /* while the image is still there */
    vmc__phdr_withdraw(l);
    vmc__elf_unwind_deregister(&l->o);
    vmc__lib_tls_remove(l);  /* every thread's block, before the image goes */
    vmc__elf_unmap(&l->o);  /* on failure: inaccessible, re-reserved later */
    if (l->next || l->prev || v->libs == l) list_remove(v, l);
    for (size_t i = l->ndeps; i-- > 0;) {
        if (l->deps[i].kind == VMC_DEP_PRIVATE) release(l->deps[i].lib);
        else if (!l->deps[i].unowned) dlclose(l->deps[i].handle);
    }
    l->ndeps = 0;
    lib_free(l);
}

/* A library with no reference left that must stay loaded anyway. */
static int stays(vmc_lib_t *l)
{
    /* -z nodelete (DF_1_NODELETE): the library registers itself where it
     * cannot be taken back (GLib's type system, say); it stays loaded, with
     * no reference, until vmc_close, as the system loader keeps it.  (An
     * inert library ran nothing that could have registered it.) */
    if (vmc__elf_nodelete(&l->o) && l->state == VMC_LIB_READY && !(l->flags & VMC_LOAD_INERT))
        return 1;
    /* A thread that used its thread_local objects has their destructors
     * still to run: its code, and the static objects they may use, stay
     * until the last of them has run (tlsdtor.c), and then go. */
    return vmc__tlsdtor_pending(l) > 0;
}

static void release(vmc_lib_t *l)
{
    if (--l->refs > 0 || stays(l)) return;
    run_fini(l);
    destroy(l);
}

void vmc__lib_unload_pending(vmc_lib_t *l)
{
    if (l->refs > 0 || stays(l)) return;
    run_fini(l);
    destroy(l);
}

/* What the ELF layer calls back for (see elf.h). */
static int env_resolve(vmc_elf_obj_t *o, const vmc_name_t *name, const vmc_ver_t *ver, uintptr_t *value,
                       int *ifunc, const char *tag, size_t index)
{
    return vmc__resolve(vmc__lib_of(o), name, ver, value, ifunc, tag, index);
}

static int env_call_ifunc(vmc_elf_obj_t *o, uintptr_t resolver, uintptr_t *out, const char *tag,
                          size_t index)
{
    return vmc__call_ifunc(vmc__lib_of(o), resolver, out, tag, index);
}

/* A symbol the program defines but does not export is the usual cause of a
 * plug-in's missing host function (progsym.c). */
static const char *env_missing_hint(const vmc_elf_obj_t *o, const char *name)
{
    static _Thread_local char hint[320];
    (void)o;
    if (!vmc__prog_defines(name)) return "";
    snprintf(hint, sizeof hint, " (the program defines it but does not export it: link the program with "
             "-rdynamic, or -Wl,--export-dynamic-symbol=%.160s)", name);
    return hint;
}

static int env_tls(vmc_elf_obj_t *o, int kind, unsigned type, size_t symidx, int64_t addend, uint64_t at,
                   uint64_t out[2], const char *tag, size_t index)
{
    return vmc__lib_tls_reloc(vmc__lib_of(o), kind, type, symidx, addend, at, out, tag, index);
}

static int env_relocated(vmc_elf_obj_t *o) { return vmc__lib_tls_finish(vmc__lib_of(o)); }

static const vmc_elf_env_t elf_env = {
    .resolve = env_resolve,
    .call_ifunc = env_call_ifunc,
    .missing_hint = env_missing_hint,
    .tls = env_tls,
    .relocated = env_relocated,
    .runtime = vmc__lib_runtime_sym,
};

static vmc_lib_t *lib_new(vmc_loader_t *v, const char *name, int flags, int depth)
{
    vmc_lib_t *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->v = v;
    l->refs = 1;
    l->flags = flags;
    l->depth = depth;
    l->name = strdup(name);
    if (!l->name) {
        free(l);
        return NULL;
    }
    l->o.elf.name = l->name;
    l->o.name = l->name;
    l->o.sp = v->sp;
    l->o.env = &elf_env;
    return l;
}

/* Enter l in the debuggers' registry (debug_registry.h) once it is mapped
 * and relocated, before its constructors run, so that a breakpoint in one
 * hits.  A relative path is made absolute: the debugger may run in another
 * directory, or read the list after this process changed its own.  If
 * that takes more memory than there is, the path stays as given. */
static __attribute__((noinline)) void debug_absolute_path(vmc_lib_t *l)
{
    char cwd[4096];   /* out of line: an absolute path needs no stack page for it */
    const char *path = l->name;
    if (!getcwd(cwd, sizeof cwd)) return;
    size_t a = strlen(cwd), b = strlen(path);
    if ((l->dbg_path = malloc(a + b + 2))) {
        memcpy(l->dbg_path, cwd, a);
        l->dbg_path[a] = '/';
        memcpy(l->dbg_path + a + 1, path, b + 1);
    }
}

static void debug_register(vmc_lib_t *l)
{
    if (!l->from_memory && l->name[0] != '/') debug_absolute_path(l);
    const char *path = l->dbg_path ? l->dbg_path : l->name;
    l->dbg.path = path;
    l->dbg.bias = l->o.bias;
    l->dbg.start = l->o.run;
    l->dbg.size = l->o.run_len;
    l->dbg.flags = l->from_memory ? VMC_DEBUG_FROM_MEMORY : 0;
    for (int i = 0; i < l->o.elf.nload && !l->dbg.text; i++)
        if (l->o.elf.load[i].flags & PF_X) l->dbg.text = l->o.bias + l->o.elf.load[i].vaddr;
    vmc__debug_add(&l->dbg);
}

/* Validate, map, read the dynamic section, load the dependencies (mapped
 * the same way).  `hdr` holds the file's first bytes (the whole image from
 * memory).  Relocation waits for the whole group (relocate_group). */
static int load_image(vmc_lib_t *l, vmc_src_t *src, const uint8_t *hdr, size_t hdrlen)
{
    if (vmc__pe_magic(hdr, hdrlen)) return vmc__lib_pe_load(l, src);  /* a DLL: peload.c */
    l->from_memory = src->fd < 0;
    int e = vmc__elf_load(&l->o, src, hdr, hdrlen);
    if (e) return e;
    list_add(l->v, l);
    if ((e = vmc__lib_tls_add(l))) return e;
    if ((e = vmc__elf_dynamic(&l->o, src))) return e;
    if ((e = resolve_deps(l))) return e;
    l->state = VMC_LIB_MAPPED;
    l->map_seq = ++l->v->lib_seq;  /* dependencies are mapped first */
    return 0;
}

/* Relocate one mapped library of the group, publish it, register it. */
static int relocate(vmc_lib_t *l)
{
    l->state = VMC_LIB_RELOCATING;
    vmc__lib_runtime_check(l);  /* one C++ runtime per process */
    int e = vmc__elf_ready(&l->o);
    if (e) return e;
    vmc__phdr_publish(l);      /* inert ones are not: nothing of theirs may run */
    vmc__unwinder_register(l);
    debug_register(l);
    l->state = VMC_LIB_RELOCATED;
    l->init_seq = ++l->v->lib_seq;  /* dependencies finish first */
    return 0;
}

/* Relocate what this load mapped, in the order it was mapped (each library
 * after its dependencies).  On failure the caller destroys the load's top
 * library, which releases the rest. */
static int relocate_group(vmc_loader_t *v)
{
    vmc__host_sym_sync();  /* resolving dependencies may have loaded objects */
    for (;;) {
        vmc_lib_t *next = NULL;
        for (vmc_lib_t *l = v->libs; l; l = l->next)
            if (l->state == VMC_LIB_MAPPED && (!next || l->map_seq < next->map_seq)) next = l;
        if (!next) return 0;
        int e = relocate(next);
        if (e) return e;
    }
}

static int load_file(vmc_loader_t *v, const char *path, int flags, int depth, vmc_lib_t *loader, vmc_lib_t **out)
{
    int fd, e = vmc__os_open(path, O_RDONLY, 0, &fd);
    if (e)
        return vmc__fail(e, "%s: cannot open: %s%s", path, strerror(-e),
                         e == -ENOENT && !strchr(path, '/') ? " (the path is opened as given, in the current "
                                                              "directory: there is no search path)" : "");
    struct stat st;
    e = vmc__os_fstat(fd, &st);
    if (e) {
        vmc__os_close(fd);
        return vmc__fail(e, "%s: fstat: %s", path, strerror(-e));
    }
    if (!S_ISREG(st.st_mode)) {
        vmc__os_close(fd);
        return vmc__fail(-ENOEXEC, "%s: not a regular file", path);
    }
    for (vmc_lib_t *o = v->libs; o; o = o->next) {
        if (o->has_id && o->dev == st.st_dev && o->ino == st.st_ino && o->flags == flags &&
            o->state != VMC_LIB_FINISHED) {
            vmc__os_close(fd);
            o->refs++;
            *out = o;
            return 0;
        }
    }
    vmc_lib_t *l = lib_new(v, path, flags, depth);
    if (!l) {
        vmc__os_close(fd);
        return vmc__fail(-ENOMEM, "%s: out of memory", path);
    }
    l->loader = loader;
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    l->has_id = 1;
    const char *slash = strrchr(path, '/');
    l->dir = slash ? strndup(path, (size_t)(slash - path + (slash == path))) : strdup(".");
    /* The first bytes in the C heap, not on the stack: the segment that
     * starts the file usually holds the dynamic tables too, and this buffer
     * becomes their copy (elf/dyn.c); and a first load in a fresh process
     * reaches deeper into the stack than anything before it, one page
     * fault per new page. */
    vmc_src_t src = {fd, NULL, (uint64_t)st.st_size, NULL, 0};
    if (!l->dir || !(src.head = malloc(HDR_READ))) e = vmc__fail(-ENOMEM, "%s: out of memory", path);
    else if ((e = vmc__os_pread(fd, src.head, HDR_READ, 0, &src.head_len)))
        e = vmc__fail(e, "%s: reading the ELF header: %s", path, strerror(-e));
    else
        e = load_image(l, &src, src.head, src.head_len);
    free(src.head);   /* NULL if the tables' copy took it */
    vmc__os_close(fd);
    if (e) {
        destroy(l);
        return e;
    }
    *out = l;
    return 0;
}

/* Run the constructors of what this load brought in: every library that is
 * relocated but not yet initialised, in the order their relocation finished
 * (dependencies first).  A failed load has released all of it already. */
static int finish(vmc_loader_t *v, int e, vmc_lib_t *top, vmc_lib_t **out)
{
    if (e) return e;
    vmc__unwinder_ready();  /* constructors may throw or walk the stack */
    for (;;) {
        vmc_lib_t *first = NULL;
        for (vmc_lib_t *l = v->libs; l; l = l->next)
            if (l->state == VMC_LIB_RELOCATED && (!first || l->init_seq < first->init_seq)) first = l;
        if (!first) break;
        run_init(first);
    }
    *out = top;
    vmc__clear_error();
    return 0;
}

int vmc__lib_load(vmc_loader_t *v, const char *path, int flags, vmc_lib_t **out)
{
    if (out) *out = NULL;
    if (!v || !path || !out) return vmc__fail(-EINVAL, "vmc_lib_load: NULL argument");
    if (flags & ~VMC_LOAD_INERT) return vmc__fail(-EINVAL, "vmc_lib_load: unknown flags 0x%x", flags);
    vmc__loader_lock(v);
    vmc__ldcache_recheck();  /* the ld.so cache as it is now, for this load's dependencies */
    vmc_lib_t *l = NULL;
    int e = load_file(v, path, flags, 0, NULL, &l);
    if (!e && (e = relocate_group(v))) release(l);
    e = finish(v, e, l, out);
    vmc__loader_unlock(v);
    return e;
}

int vmc__lib_load_mem(vmc_loader_t *v, const void *bytes, size_t len, const char *name, int flags,
                     vmc_lib_t **out)
{
    if (out) *out = NULL;
    if (!v || !bytes || !out) return vmc__fail(-EINVAL, "vmc_lib_load_mem: NULL argument");
    if (flags & ~VMC_LOAD_INERT) return vmc__fail(-EINVAL, "vmc_lib_load_mem: unknown flags 0x%x", flags);
    if (!name) name = "(memory)";
    vmc__loader_lock(v);
    vmc__ldcache_recheck();
    vmc_lib_t *l = lib_new(v, name, flags, 0);
    int e;
    if (!l) {
        e = vmc__fail(-ENOMEM, "%s: out of memory", name);
    } else {
        vmc_src_t src = {-1, bytes, len, NULL, 0};
        e = load_image(l, &src, bytes, len);
        if (!e) e = relocate_group(v);
        if (e) destroy(l);
    }
    e = finish(v, e, l, out);
    vmc__loader_unlock(v);
    return e;
}

void *vmc_lib_sym(vmc_lib_t *l, const char *name)
{
    if (!l || !name) {
        vmc__fail(-EINVAL, "vmc_lib_sym: NULL argument");
        return NULL;
    }
    const vmc_name_t key = vmc__elf_name(name);
    uintptr_t a;
    int ifunc;
    const Elf64_Sym *s = vmc__elf_lookup(&l->o, &key, NULL);
    if (s && ELF64_ST_TYPE(s->st_info) == STT_TLS) return vmc__lib_tls_sym(l, s);  /* as dlsym: this thread's */
    if (!vmc__elf_find(&l->o, &key, NULL, &a, &ifunc)) {
        vmc__fail(-ENOENT, "%s: exports no symbol %s (in its default version)", l->name, name);
        return NULL;
    }
    if (ifunc) {
        vmc__loader_lock(l->v);
        int e = vmc__call_ifunc(l, a, &a, "vmc_lib_sym", (size_t)-1);
        vmc__loader_unlock(l->v);
        if (e) return NULL;
    }
    return (void *)a;
}

int vmc_lib_span(vmc_lib_t *l, void **start, size_t *len)
{
    if (!l || !start || !len) return vmc__fail(-EINVAL, "vmc_lib_span: NULL argument");
    *start = (void *)l->o.run;
    *len = l->o.run_len;
    return 0;
}

int vmc_lib_info(vmc_lib_t *l, vmc_lib_info_t *out)
{
    if (!l || !out) return vmc__fail(-EINVAL, "vmc_lib_info: NULL argument");
    memset(out, 0, sizeof *out);
    out->path = l->name;
    vmc__elf_info(&l->o, out);
    out->ndeps = (unsigned)l->ndeps;
    return 0;
}

int vmc_lib_dep(vmc_lib_t *l, unsigned i, vmc_lib_dep_t *out)
{
    if (!l || !out) return vmc__fail(-EINVAL, "vmc_lib_dep: NULL argument");
    if (i >= l->ndeps)
        return vmc__fail(-ENOENT, "vmc_lib_dep: %s has %zu dependencies, not %u", l->name, l->ndeps, i + 1);
    const vmc_dep_t *d = &l->deps[i];
    out->name = vmc__elf_needed(&l->o, i);
    out->lib = d->kind == VMC_DEP_PRIVATE ? d->lib : NULL;
    out->how = d->kind == VMC_DEP_PRIVATE ? VMC_DEP_LOADED_PRIVATELY
               : d->host_had_it          ? VMC_DEP_HOST_COPY
                                         : VMC_DEP_SYSTEM_LOADER;
    out->where = d->where;
    out->why = d->why;
    out->path = NULL;
    struct link_map *lm;
    if (d->kind == VMC_DEP_PRIVATE) out->path = d->lib->name;
    else if (dlinfo(d->handle, RTLD_DI_LINKMAP, &lm) == 0 && lm->l_name && lm->l_name[0]) out->path = lm->l_name;
    return 0;
}

int vmc_lib_unload(vmc_lib_t *l)
{
    if (!l) return vmc__fail(-EINVAL, "vmc_lib_unload: NULL library");
    vmc_loader_t *v = l->v;
    vmc__loader_lock(v);
    if (l->refs <= 0) {  /* a -z nodelete library already unloaded as often as loaded */
        vmc__loader_unlock(v);
        return vmc__fail(-EINVAL, "vmc_lib_unload: %s is not loaded (more unloads than loads)", l->name);
    }
    release(l);
    vmc__loader_unlock(v);
    return 0;
}

void vmc__loader_close(vmc_loader_t *v)
{
    vmc__tlsdtor_close(v);
    vmc__loader_lock(v);
    /* destructors first, in the reverse of the order constructors ran */
    for (;;) {
        vmc_lib_t *last = NULL;
        for (vmc_lib_t *l = v->libs; l; l = l->next)
            if (l->state == VMC_LIB_READY && (!last || l->init_seq > last->init_seq)) last = l;
        if (!last) break;
        run_fini(last);
    }
    while (v->libs) {
        vmc_lib_t *l = v->libs;
        vmc__debug_remove(&l->dbg);
        vmc__phdr_withdraw(l);
        vmc__elf_unwind_deregister(&l->o);  /* while the unwinder it came from is held */
        for (size_t i = 0; i < l->ndeps; i++)
            if (l->deps[i].kind == VMC_DEP_SYSTEM && !l->deps[i].unowned) dlclose(l->deps[i].handle);
        l->ndeps = 0;
        vmc__lib_tls_remove(l);
        vmc__elf_unmap(&l->o);
        list_remove(v, l);
        lib_free(l);
    }
    vmc__loader_unlock(v);
}
