/* The lifecycle's ELF side (vmc__lib_elf_fmt, the format seam of loader.h):
 * an ELF shared object's load through the ELF layer (src/elf/: check, map,
 * dynamic section, relocation), its dependencies (where each DT_NEEDED goes:
 * the host's copy, a private load, the system loader), the binding scope it
 * hands the ELF layer (vmc_elf_env_t), constructors and destructors, symbol
 * look-up, and what the rest of src/lib/ registers for it (TLS modules,
 * dl_iterate_phdr, the unwinder, the debuggers' list).  The policy is in
 * loader.c's opening comment.
 */
#include "lib/loader.h"
#include "base/attrs.h"
#include "lib/cxxrt.h"
#include "lib/interpose.h"
#include "lib/phdr.h"
#include "lib/tlsdtor.h"
#include "lib/unwinder.h"
#include "base/error.h"
#include "os/os.h"

#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>

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

static int elf_relocate(vmc_lib_t *l);

/* Is the symbol in d?  An IFUNC there is resolved by running d's code, so d
 * is relocated first if it is not yet (a library of the group that is not
 * l's dependency, which the group's order does not put before l).  In a
 * cycle of such libraries, one being relocated is called as it is, as the
 * system loader would. */
static int found_in(vmc_lib_t *l, vmc_lib_t *d, const vmc_name_t *name, const vmc_ver_t *ver,
                    uintptr_t *value, int *ifunc, int *err)
{
    if (!vmc__elf_find(&d->o, name, ver, value, ifunc)) return 0;
    if (*ifunc && d->state == VMC_LIB_MAPPED && (*err = elf_relocate(d))) return 0;
    l->o.bound_obj = &d->o;  /* a TLS symbol's module (tlsbind.c) */
    return 1;
}

VMC_LOAD_PATH void *vmc__host_sym_for_final(const vmc_lib_t *l, const vmc_name_t *name, const char *version, int *final)
{
    void *p = vmc__host_sym_final(RTLD_DEFAULT, name, version, final);
    for (size_t i = 0; !p && i < l->ndeps; i++)
        if (l->deps[i].kind == VMC_DEP_SYSTEM) p = vmc__host_sym(l->deps[i].handle, name, version);
    return p;
}

VMC_LOAD_PATH void *vmc__host_sym_for(const vmc_lib_t *l, const vmc_name_t *name, const char *version)
{
    return vmc__host_sym_for_final(l, name, version, NULL);
}

/* The scope beyond the library itself, in order: its private dependencies,
 * every other private library (inert ones only for inert loads), vmcode's
 * own functions (interpose.c), the host. */
VMC_LOAD_PATH int vmc__resolve(vmc_lib_t *l, const vmc_name_t *key, const vmc_ver_t *ver, uintptr_t *value, int *ifunc,
                 const char *tag, size_t index)
{
    char what[64];
    int err = 0;
    l->o.bound_from = VMC_BOUND_PRIVATE;
    for (size_t i = 0; i < l->ndeps; i++)
        if (l->deps[i].kind == VMC_DEP_PRIVATE && found_in(l, l->deps[i].lib, key, ver, value, ifunc, &err))
            return 1;
    for (vmc_lib_t *o = l->v->libs; o && !err; o = o->next)
        if (o != l && o->fmt == l->fmt && o->state != VMC_LIB_LOADING && o->state != VMC_LIB_FINISHED &&
            (!(o->flags & VMC_LOAD_INERT) || (l->flags & VMC_LOAD_INERT)) &&
            found_in(l, o, key, ver, value, ifunc, &err))
            return 1;
    if (err) return err;
    l->o.bound_from = VMC_BOUND_HOST;
    l->o.bound_obj = NULL;
    void *own = vmc__interposed(key, ver);
    if (own) {
        *value = (uintptr_t)own;
        l->o.bound_final = 1;   /* vmcode's own function, for good */
        return 1;
    }
    if (ver && vmc__elf_ver_hash0(ver))  /* glibc's dlvsym would read a NULL name */
        return vmc__fail(-ENOTSUP, "%s: %s: symbol %s asks for version \"%s\", which is not supported "
                         "(its ELF hash is 0, and dlvsym cannot look that up)", l->name,
                         what_text(what, sizeof what, tag, index), key->str, ver->name);
    void *p = vmc__host_sym_for_final(l, key, ver ? ver->name : NULL, &l->o.bound_final);
    if (p) {
        *value = (uintptr_t)p;
        return 1;
    }
    return 0;
}

/* Does a private library other than l define name at ver?  Any of them
 * whose tables are read, inert or not, relocated or not: at least
 * vmc__resolve's scope, so that a "no" is sure (elf/reloc.c asks before
 * binding to an answer of an earlier load). */
static int env_private_defines(vmc_elf_obj_t *o, const vmc_name_t *key, const vmc_ver_t *ver)
{
    vmc_lib_t *l = vmc__lib_of(o);
    for (vmc_lib_t *p = l->v->libs; p; p = p->next)
        if (p != l && p->fmt == l->fmt && p->state != VMC_LIB_LOADING && vmc__elf_lookup(&p->o, key, ver))
            return 1;
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

/* How a dependency was found, for its reason (vmc_dep_t.why); each with
 * ": loaded privately" as a constant of its own, so that the usual reason
 * is not formatted at every load. */
#define WHERE_BY_PATH "DT_NEEDED is a path"
#define WHERE_RPATH "found in a DT_RPATH directory"
#define WHERE_LD_LIBRARY_PATH "found in a directory of LD_LIBRARY_PATH"
#define WHERE_RUNPATH "found in a DT_RUNPATH directory"
#define WHERE_LDSO_CACHE "found through the ld.so cache"
#define WHERE_DEFAULT_DIR "found in a default directory of the system loader"
#define WHERE_BESIDE "not found by the system loader's search, found beside the library that needs it"
#define WHERE_OTHER "found"
#define PRIVATELY ": loaded privately"

static const char *where_text(int where, int privately)
{
#define WHERE_CASE(w, text) case w: return privately ? text PRIVATELY : text
    switch (where) {
    WHERE_CASE(VMC_DEP_BY_PATH, WHERE_BY_PATH);
    WHERE_CASE(VMC_DEP_RPATH, WHERE_RPATH);
    WHERE_CASE(VMC_DEP_LD_LIBRARY_PATH, WHERE_LD_LIBRARY_PATH);
    WHERE_CASE(VMC_DEP_RUNPATH, WHERE_RUNPATH);
    WHERE_CASE(VMC_DEP_LDSO_CACHE, WHERE_LDSO_CACHE);
    WHERE_CASE(VMC_DEP_DEFAULT_DIR, WHERE_DEFAULT_DIR);
    WHERE_CASE(VMC_DEP_BESIDE, WHERE_BESIDE);
    default: return privately ? WHERE_OTHER PRIVATELY : WHERE_OTHER;
    }
#undef WHERE_CASE
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
    int e = vmc__lib_load_file(l->v, path, l->flags, l->depth + 1, l, &dep);
    if (!e) {
        d->kind = VMC_DEP_PRIVATE;
        d->lib = dep;
        d->why = where_text(where, 1);
        return 0;
    }
    if (e != -ENOTSUP || (l->flags & VMC_LOAD_INERT))
        return vmc__fail_wrap(e, "%s: dependency %s", l->name, n);
    /* the refusal's message, before dlopen (which may fail and leave it) */
    const char *why = vmc__lib_why(l, "%s; loaded by the system loader because the private loader refuses it: %s",
                                   where_text(where, 0), vmc_last_error());
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) return vmc__fail_wrap(e, "%s: dependency %s", l->name, n);
    if (!why) {
        dlclose(h);
        return vmc__fail(-ENOMEM, "%s: dependency %s: out of memory", l->name, n);
    }
    d->kind = VMC_DEP_SYSTEM;
    d->handle = h;
    d->why = why;
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
            d->why = "not found by the system loader's search (DT_RPATH, LD_LIBRARY_PATH, DT_RUNPATH, ld.so "
                     "cache, default directories) nor beside the library: left to the system loader, outside the "
                     "region";
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
            d->why = "the process has it already: the host's copy";
        } else if (is_system_library(n)) {
            where = VMC_DEP_SYSTEM_LIBRARY;
            d->why = "a system library (one copy per process): the system loader's";
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

/* What the ELF layer calls back for (see elf.h). */
VMC_LOAD_PATH static int env_resolve(vmc_elf_obj_t *o, const vmc_name_t *name, const vmc_ver_t *ver, uintptr_t *value,
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

VMC_LOAD_PATH static int env_relocated(vmc_elf_obj_t *o) { return vmc__lib_tls_finish(vmc__lib_of(o)); }

static const vmc_elf_env_t elf_env = {
    .resolve = env_resolve,
    .private_defines = env_private_defines,
    .call_ifunc = env_call_ifunc,
    .runtime = vmc__lib_runtime_sym,
    .missing_hint = env_missing_hint,
    .tls = env_tls,
    .relocated = env_relocated,
};


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

static void elf_setup(vmc_lib_t *l)
{
    l->o.elf.name = l->name;
    l->o.name = l->name;
    l->o.sp = l->v->sp;
    l->o.env = &elf_env;
}

/* Validate, map, read the dynamic section, load the dependencies (mapped
 * the same way).  Relocation waits for the whole group (loader.c's
 * relocate_group, then elf_relocate). */
VMC_LOAD_PATH static int elf_load(vmc_lib_t *l, vmc_src_t *src, const uint8_t *hdr, size_t hdrlen)
{
    elf_setup(l);
    int e = vmc__elf_load(&l->o, src, hdr, hdrlen);
    if (e) return e;
    vmc__lib_list_add(l);
    if ((e = vmc__lib_tls_add(l))) return e;
    if ((e = vmc__elf_dynamic(&l->o, src))) return e;
    if ((e = resolve_deps(l))) return e;
    l->state = VMC_LIB_MAPPED;
    l->seq = ++l->v->lib_seq;  /* dependencies are mapped first */
    return 0;
}

/* Relocate one mapped library of the group, publish it, register it. */
VMC_LOAD_PATH static int elf_relocate(vmc_lib_t *l)
{
    l->state = VMC_LIB_RELOCATING;
    vmc__lib_runtime_check(l);  /* one C++ runtime per process */
    int e = vmc__elf_ready(&l->o);
    if (e) return e;
    vmc__phdr_publish(l);      /* inert ones are not: nothing of theirs may run */
    vmc__unwinder_register(l);
    debug_register(l);
    l->state = VMC_LIB_RELOCATED;
    l->seq = ++l->v->lib_seq;  /* dependencies finish first */
    return 0;
}

/* Before a group is relocated: resolving dependencies may have loaded
 * objects. */
VMC_LOAD_PATH static void elf_relocate_start(void) { vmc__host_sym_sync(); }

/* Before the first constructor of a load: they may throw or walk the stack. */
VMC_LOAD_PATH static void elf_init_start(void) { vmc__unwinder_ready(); }

VMC_LOAD_PATH static int elf_init(vmc_lib_t *l)
{
    vmc__elf_init(&l->o);
    return 0;
}

VMC_LOAD_PATH static void elf_fini(vmc_lib_t *l) { vmc__elf_fini(&l->o); }

VMC_LOAD_PATH static int elf_stays(vmc_lib_t *l)
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

VMC_LOAD_PATH static void elf_teardown(vmc_lib_t *l)
{
    vmc__debug_remove(&l->dbg);  /* while the image is still there */
    vmc__phdr_withdraw(l);
    vmc__elf_unwind_deregister(&l->o);
    vmc__lib_tls_remove(l);  /* every thread's block, before the image goes */
    vmc__elf_unmap(&l->o);  /* on failure: inaccessible, re-reserved later */
}

VMC_LOAD_PATH static void elf_dep_close(vmc_lib_t *l, vmc_dep_t *d)
{
    (void)l;
    if (!d->unowned) dlclose(d->handle);
}

VMC_LOAD_PATH static int elf_keep(vmc_lib_t *l)
{
    if (!vmc__elf_keep(&l->o)) return 0;
    free(l->dbg_path);   /* this load's */
    l->dbg_path = NULL;
    return 1;
}

VMC_LOAD_PATH static void elf_free(vmc_lib_t *l)
{
    vmc__elf_free(&l->o);
    free(l->dbg_path);
}

static void *elf_sym(vmc_lib_t *l, const char *name)
{
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

static void elf_span(vmc_lib_t *l, void **start, size_t *len)
{
    *start = (void *)l->o.run;
    *len = l->o.run_len;
}

static int elf_nearest(vmc_lib_t *l, uintptr_t a, const char **name, uintptr_t *at, size_t *size)
{
    return vmc__elf_nearest(&l->o, a, name, at, size);
}

static void elf_info(vmc_lib_t *l, vmc_lib_info_t *out) { vmc__elf_info(&l->o, out); }

static const char *elf_dep_name(vmc_lib_t *l, size_t i) { return vmc__elf_needed(&l->o, i); }

static const char *elf_dep_path(vmc_lib_t *l, const vmc_dep_t *d)
{
    (void)l;
    struct link_map *lm;
    if (dlinfo(d->handle, RTLD_DI_LINKMAP, &lm) == 0 && lm->l_name && lm->l_name[0]) return lm->l_name;
    return NULL;
}

const vmc_lib_fmt_t vmc__lib_elf_fmt = {
    .load = elf_load,
    .relocate_start = elf_relocate_start,
    .relocate = elf_relocate,
    .init_start = elf_init_start,
    .init = elf_init,
    .fini = elf_fini,
    .stays = elf_stays,
    .teardown = elf_teardown,
    .dep_close = elf_dep_close,
    .keep = elf_keep,
    .free = elf_free,
    .sym = elf_sym,
    .span = elf_span,
    .nearest = elf_nearest,
    .info = elf_info,
    .dep_name = elf_dep_name,
    .dep_path = elf_dep_path,
    .close = vmc__tlsdtor_close,
};
