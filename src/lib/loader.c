/* The library lifecycle: load, bind, initialise, look up, unload, the same
 * for every format.  The format's side (vmc_lib_fmt_t, loader.h) is picked
 * by the file's magic: elfload.c for an ELF object, peload.c for a DLL.
 *
 * A load (from a file or from memory, one code path) hands the file's first
 * bytes to the format, which validates the headers, places the image in a
 * block run and resolves the dependencies (loading private ones through
 * vmc__lib_load_file, below), each of them loaded the same way.  An ELF
 * object is relocated only once the whole group this load brings in is
 * mapped (relocate_group), each library after its dependencies, as the
 * system loader does: a library may then bind to any of the group, even one
 * it does not name in DT_NEEDED (libtheoraenc uses libtheoradec's
 * functions; libavcodec, which loads both, works); a DLL binds as it is
 * placed.  Then, once every library this load brought in is relocated,
 * constructors (DllMain) run, dependencies first.  A failure before that point undoes exactly what was
 * done: runs given back, dependencies released, descriptors closed.
 *
 * What follows is the ELF side's policy (elfload.c); the DLL side's is in
 * peload.c.
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
#include "base/attrs.h"
#include "lib/ldcache.h"
#include "pe/pe.h"
#include "base/error.h"
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HDR_READ 4096

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

VMC_LOAD_PATH void vmc__lib_list_add(vmc_lib_t *l) { list_add(l->v, l); }

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

/* ---- init and fini ---------------------------------------------------------- */

/* The library in `state` that entered it first (latest: last), or NULL:
 * the order of relocation, of constructors, and (reversed) of destructors. */
static vmc_lib_t *in_state(vmc_loader_t *v, int state, int latest)
{
    vmc_lib_t *pick = NULL;
    for (vmc_lib_t *l = v->libs; l; l = l->next)
        if (l->state == state && (!pick || (latest ? l->seq > pick->seq : l->seq < pick->seq))) pick = l;
    return pick;
}

static int run_init(vmc_lib_t *l)
{
    l->state = VMC_LIB_READY;
    l->seq = ++l->v->lib_seq;
    if (l->flags & VMC_LOAD_INERT) return 0;
    return l->fmt->init(l);
}

static void run_fini(vmc_lib_t *l)
{
    if (l->state != VMC_LIB_READY) return;
    l->state = VMC_LIB_FINISHED;
    if (l->flags & VMC_LOAD_INERT) return;
    l->fmt->fini(l);
}

/* ---- load -------------------------------------------------------------------- */

/* One reason formatted for a dependency (vmc__lib_why), on its library's
 * list. */
struct vmc_why {
    struct vmc_why *next;
    char text[];
};

const char *vmc__lib_why(vmc_lib_t *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    struct vmc_why *w = n < 0 ? NULL : malloc(sizeof *w + (size_t)n + 1);
    if (!w) return NULL;
    va_start(ap, fmt);
    vsnprintf(w->text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    w->next = l->whys;
    l->whys = w;
    return w->text;
}

/* Free the lifecycle's parts of a library that holds no run and no
 * dependencies any more (what a kept record does not need). */
VMC_LOAD_PATH static void lib_strip(vmc_lib_t *l)
{
    for (struct vmc_why *w = l->whys, *next; w; w = next) {
        next = w->next;
        free(w);
    }
    free(l->deps);
    free(l->name);
    free(l->dir);
    l->whys = NULL;
    l->deps = NULL;
    l->name = l->dir = NULL;
}

/* Free a library that holds no run and no dependencies any more. */
VMC_LOAD_PATH static void lib_free(vmc_lib_t *l)
{
    if (l->fmt) l->fmt->free(l);
    lib_strip(l);
    free(l);
}

static void release(vmc_lib_t *l);

/* Undo the format's registrations and give the run back, leave the list,
 * drop the dependencies, free. */
VMC_LOAD_PATH static void destroy(vmc_lib_t *l)
{
    vmc_loader_t *v = l->v;
    if (l->fmt) l->fmt->teardown(l);  /* on failure: inaccessible, re-reserved later */
    if (l->next || l->prev || v->libs == l) list_remove(v, l);
    for (size_t i = l->ndeps; i-- > 0;) {
        if (l->deps[i].kind != VMC_DEP_PRIVATE) l->fmt->dep_close(l, &l->deps[i]);
        else if (!l->deps[i].cycle) release(l->deps[i].lib);
    }
    l->ndeps = 0;
    /* What its load read of the file, for the next load of it: the record
     * itself, so that an unload allocates nothing.  Only now, after its
     * dependencies: keeping theirs may make room by dropping the oldest
     * record kept, which must not be this one while it is still in use. */
    if (vmc__kept_put(l)) lib_strip(l);
    else lib_free(l);
}

/* A library with no reference left that must stay loaded anyway (the
 * format says when: elfload.c). */
static int stays(vmc_lib_t *l)
{
    return l->fmt->stays && l->fmt->stays(l);
}

VMC_LOAD_PATH static void release(vmc_lib_t *l)
{
    if (--l->refs > 0 || stays(l)) return;
    run_fini(l);
    destroy(l);
}

void vmc__lib_release(vmc_lib_t *l) { release(l); }

void vmc__lib_unload_pending(vmc_lib_t *l)
{
    if (l->refs > 0 || stays(l)) return;
    run_fini(l);
    destroy(l);
}

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
    return l;
}

/* The format by the magic, then its load.  `hdr` holds the file's first
 * bytes (the whole image from memory). */
VMC_LOAD_PATH static int load_image(vmc_lib_t *l, vmc_src_t *src, const uint8_t *hdr, size_t hdrlen)
{
    l->from_memory = src->fd < 0;
    if (!src->kept) l->fmt = vmc__pe_magic(hdr, hdrlen) ? &vmc__lib_pe_fmt : &vmc__lib_elf_fmt;
    return l->fmt->load(l, src, hdr, hdrlen);
}

/* Relocate what this load mapped (VMC_LIB_MAPPED), in the order it was
 * mapped (each library after its dependencies).  On failure the caller
 * destroys the load's top library, which releases the rest. */
VMC_LOAD_PATH static int relocate_group(vmc_loader_t *v)
{
    if (vmc__lib_elf_fmt.relocate_start) vmc__lib_elf_fmt.relocate_start();
    if (vmc__lib_pe_fmt.relocate_start) vmc__lib_pe_fmt.relocate_start();
    for (vmc_lib_t *next; (next = in_state(v, VMC_LIB_MAPPED, 0));) {
        int e = next->fmt->relocate(next);
        if (e) return e;
    }
    return 0;
}

/* The directory of path ("." for a bare name), where dependencies found
 * beside a library are looked for; NULL when out of memory.  On Windows a
 * backslash separates too. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (vmc__os_caps() & VMC_OS_CAP_PE) {
        const char *bs = strrchr(path, '\\');
        if (bs && (!slash || bs > slash)) slash = bs;
    }
    if (!slash) return strdup(".");
    size_t n = (size_t)(slash - path + (slash == path));
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = 0;
    }
    return d;
}

VMC_LOAD_PATH int vmc__lib_load_file(vmc_loader_t *v, const char *path, int flags, int depth, vmc_lib_t *loader,
                       vmc_lib_t **out)
{
    int fd, e = vmc__os_open(path, O_RDONLY, 0, &fd);
    if (e)
        return vmc__fail(e, "%s: cannot open: %s%s", path, strerror(-e),
                         e == -ENOENT && !strchr(path, '/') ? " (the path is opened as given, in the current "
                                                              "directory: there is no search path)" : "");
    struct stat st;
    uint64_t id[2];
    e = vmc__os_fstat(fd, &st);
    if (!e && (e = vmc__os_file_id(fd, &st, id))) {
        vmc__os_close(fd);
        return vmc__fail(e, "%s: file identity: %s", path, strerror(-e));
    }
    if (e) {
        vmc__os_close(fd);
        return vmc__fail(e, "%s: fstat: %s", path, strerror(-e));
    }
    if (!S_ISREG(st.st_mode)) {
        vmc__os_close(fd);
        return vmc__fail(-ENOEXEC, "%s: not a regular file", path);
    }
    for (vmc_lib_t *o = v->libs; o; o = o->next) {
        if (o->has_id && o->id[0] == id[0] && o->id[1] == id[1] && o->flags == flags &&
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
    l->id[0] = id[0];
    l->id[1] = id[1];
    l->has_id = 1;
    l->settled = vmc__os_file_settled(&st, l->stamp);
    l->dir = dir_of(path);
    /* The first bytes in the C heap, not on the stack: the segment that
     * starts the file usually holds the dynamic tables too, and this buffer
     * becomes their copy (elf/dyn.c); and a first load in a fresh process
     * reaches deeper into the stack than anything before it, one page
     * fault per new page. */
    vmc_src_t src = {fd, NULL, (uint64_t)st.st_size, NULL, 0, NULL};
    vmc_lib_t *k = l->settled && l->dir ? vmc__kept_take(v, id, l->stamp) : NULL;
    if (k) {
        l->fmt = k->fmt;
        src.kept = &k->o;
    }
    if (!l->dir) e = vmc__fail(-ENOMEM, "%s: out of memory", path);
    else if (src.kept) e = load_image(l, &src, NULL, 0);   /* nothing to read again (kept.c) */
    else if (!(src.head = malloc(HDR_READ))) e = vmc__fail(-ENOMEM, "%s: out of memory", path);
    else if ((e = vmc__os_pread(fd, src.head, HDR_READ, 0, &src.head_len)))
        e = vmc__fail(e, "%s: reading the ELF header: %s", path, strerror(-e));
    else
        e = load_image(l, &src, src.head, src.head_len);
    free(src.head);   /* NULL if the tables' copy took it */
    if (k) vmc__kept_drop(k);   /* what the load took over is no longer k's */
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
 * (dependencies first).  A failed load has released all of it already.  An
 * initialiser that fails (a DllMain returning FALSE) fails the load: the
 * library that was asked for is released, and with it what it brought in
 * (those initialised get their destructors, as the system loader does). */
VMC_LOAD_PATH static int finish(vmc_loader_t *v, int e, vmc_lib_t *top, vmc_lib_t **out)
{
    if (e) return e;
    if (vmc__lib_elf_fmt.init_start) vmc__lib_elf_fmt.init_start();
    if (vmc__lib_pe_fmt.init_start) vmc__lib_pe_fmt.init_start();
    for (vmc_lib_t *first; (first = in_state(v, VMC_LIB_RELOCATED, 0));) {
        if ((e = run_init(first))) {
            release(top);
            return e;
        }
    }
    *out = top;
    vmc__clear_error();
    return 0;
}

VMC_LOAD_PATH int vmc__lib_load(vmc_loader_t *v, const char *path, int flags, vmc_lib_t **out)
{
    if (out) *out = NULL;
    if (!v || !path || !out) return vmc__fail(-EINVAL, "vmc_lib_load: NULL argument");
    if (flags & ~VMC_LOAD_INERT) return vmc__fail(-EINVAL, "vmc_lib_load: unknown flags 0x%x", flags);
    vmc__loader_lock(v);
    vmc__ldcache_recheck();  /* the ld.so cache as it is now, for this load's dependencies */
    vmc_lib_t *l = NULL;
    int e = vmc__lib_load_file(v, path, flags, 0, NULL, &l);
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
        vmc_src_t src = {-1, bytes, len, NULL, 0, NULL};
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
    return l->fmt->sym(l, name);
}

int vmc_lib_span(vmc_lib_t *l, void **start, size_t *len)
{
    if (!l || !start || !len) return vmc__fail(-EINVAL, "vmc_lib_span: NULL argument");
    l->fmt->span(l, start, len);
    return 0;
}

int vmc_lib_info(vmc_lib_t *l, vmc_lib_info_t *out)
{
    if (!l || !out) return vmc__fail(-EINVAL, "vmc_lib_info: NULL argument");
    memset(out, 0, sizeof *out);
    out->path = l->name;
    l->fmt->info(l, out);
    out->ndeps = (unsigned)l->ndeps;
    return 0;
}

int vmc_lib_dep(vmc_lib_t *l, unsigned i, vmc_lib_dep_t *out)
{
    if (!l || !out) return vmc__fail(-EINVAL, "vmc_lib_dep: NULL argument");
    if (i >= l->ndeps)
        return vmc__fail(-ENOENT, "vmc_lib_dep: %s has %zu dependencies, not %u", l->name, l->ndeps, i + 1);
    const vmc_dep_t *d = &l->deps[i];
    out->name = l->fmt->dep_name(l, i);
    out->lib = d->kind == VMC_DEP_PRIVATE ? d->lib : NULL;
    out->how = d->kind == VMC_DEP_PRIVATE ? VMC_DEP_LOADED_PRIVATELY
               : d->host_had_it          ? VMC_DEP_HOST_COPY
                                         : VMC_DEP_SYSTEM_LOADER;
    out->where = d->where;
    out->why = d->why ? d->why : "";
    out->path = d->kind == VMC_DEP_PRIVATE ? d->lib->name : l->fmt->dep_path(l, d);
    return 0;
}

VMC_LOAD_PATH int vmc_lib_unload(vmc_lib_t *l)
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

/* Under the lock: every ready library's destructors, in the reverse of the
 * order constructors ran. */
static void fini_all(vmc_loader_t *v)
{
    for (vmc_lib_t *last; (last = in_state(v, VMC_LIB_READY, 1));) run_fini(last);
}

void vmc__loader_exit(vmc_loader_t *v)
{
    vmc__loader_lock(v);
    fini_all(v);
    vmc__loader_unlock(v);
}

void vmc__loader_close(vmc_loader_t *v)
{
    if (vmc__lib_elf_fmt.close) vmc__lib_elf_fmt.close(v);
    if (vmc__lib_pe_fmt.close) vmc__lib_pe_fmt.close(v);
    vmc__loader_lock(v);
    fini_all(v);   /* destructors first */
    /* then every image, each library's system-loaded dependencies after it;
     * the private ones go by themselves, being on the list */
    while (v->libs) {
        vmc_lib_t *l = v->libs;
        l->fmt->teardown(l);
        for (size_t i = 0; i < l->ndeps; i++)
            if (l->deps[i].kind == VMC_DEP_SYSTEM) l->fmt->dep_close(l, &l->deps[i]);
        l->ndeps = 0;
        list_remove(v, l);
        lib_free(l);
    }
    vmc__kept_clear(v);
    vmc__loader_unlock(v);
}
