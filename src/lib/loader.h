/* The library lifecycle: the handle's private libraries, their
 * dependencies, binding order, constructors and destructors, unloading
 * (loader.c, format-neutral); each format's side behind vmc_lib_fmt_t: ELF
 * objects (elfload.c, over src/elf/; what that layer needs back, binding and
 * IFUNC resolvers, it gets through the vmc_elf_env_t elfload.c hands it with
 * each object) and DLLs (peload.c, over src/pe/); host symbols through a
 * cache (hostsym.c).
 */
#ifndef VMC_LOADER_H
#define VMC_LOADER_H

#include "alloc/space.h"
#include "lib/libs.h"
#include "elf/elf.h"
#include "lib/debug_registry.h"

#include <stdint.h>
#include <sys/types.h>

/* A resolved dependency (DT_NEEDED). */
enum vmc_dep_kind {
    VMC_DEP_PRIVATE = 1,         /* loaded privately into the region        */
    VMC_DEP_SYSTEM,              /* through the system loader (dlopen)      */
};
typedef struct vmc_dep {
    int kind;
    int host_had_it;             /* VMC_DEP_SYSTEM: found already loaded    */
    vmc_lib_t *lib;              /* VMC_DEP_PRIVATE                         */
    void *handle;                /* VMC_DEP_SYSTEM: from dlopen (a DLL's:
                                    the module, one reference)             */
    int unowned;                 /* handle: vmc__host_startup_object's, no
                                    reference held (never dlclose'd)        */
    int cycle;                   /* VMC_DEP_PRIVATE: lib was still loading
                                    (they import from each other): no
                                    reference held                         */
    int where;                   /* enum vmc_dep_where: how it was found    */
    const char *why;             /* vmc_lib_dep_t.why: a constant sentence, or
                                    one the library owns (vmc__lib_why)    */
} vmc_dep_t;

enum vmc_lib_state {
    VMC_LIB_LOADING,             /* being mapped, its dependencies found    */
    VMC_LIB_MAPPED,              /* mapped with its dependencies; the rest of
                                    its load group still loading, or being
                                    relocated in turn                       */
    VMC_LIB_RELOCATING,          /* being relocated                         */
    VMC_LIB_RELOCATED,           /* constructors still to run               */
    VMC_LIB_READY,               /* constructors ran                        */
    VMC_LIB_FINISHED,            /* destructors ran; being released         */
};


struct vmc_lib_fmt;
struct vmc_pe_lib;

struct vmc_lib {
    vmc_elf_obj_t o;             /* the image, as the ELF layer keeps it    */
    const struct vmc_lib_fmt *fmt;   /* its format's side (elfload.c, peload.c);
                                    NULL until the magic is read          */
    struct vmc_pe_lib *pe;       /* a DLL: what peload.c keeps, else NULL   */
    vmc_loader_t *v;             /* the loader (of a handle) it lives in    */
    char *name;                  /* the path (or name) given, for messages  */
    char *dir;                   /* its directory, or NULL from memory      */
    uint64_t id[2];              /* file identity (vmc__os_file_id), to share
                                    a second load                           */
    int has_id;                  /* id is valid                             */
    uint64_t stamp[3];           /* size and times (vmc__os_file_settled)   */
    int settled;                 /* ... unchanged long enough that any change
                                    will show in stamp: what the load read
                                    may be kept (kept.c)                    */
    int refs;                    /* loads + dependents holding it           */
    int flags;                   /* VMC_LOAD_* it was loaded with           */
    int state;                   /* enum vmc_lib_state                      */
    int depth;                   /* nesting while loading                   */
    vmc_lib_t *loader;           /* the library whose dependency it was first
                                    loaded as (NULL: vmc_lib_load); for the
                                    DT_RPATH search, valid only while loading */
    int from_memory;             /* loaded from bytes, not a file           */
    unsigned long seq;           /* when it entered its state (v->lib_seq):
                                    among MAPPED ones the order of
                                    relocation, RELOCATED of init, READY of
                                    fini (reversed)                         */
    vmc_dep_t *deps;             /* resolved DT_NEEDED, in order            */
    size_t ndeps;
    struct vmc_why *whys;        /* the deps' reasons formatted for them (a
                                    refusal's message in it), freed with l */
    vmc_lib_t *next, *prev;      /* the handle's list, in load order        */

    /* tlsbind.c: thread-local storage */
    int has_tls_slot;            /* PT_TLS: a module of tls.c               */
    size_t tls_slot;             /* its slot (module id: VMC_TLS_MODID_BASE + slot) */
    struct vmc_tls_host_ref *tls_host;   /* host modules it reaches by TLSDESC */
    size_t ntls_host;
    void *tls_static;            /* its block is in static TLS: glibc's handle */
    int64_t tls_tpoff;           /* ... at this offset from the thread pointer */
    struct vmc_tls_later *tls_later;     /* relocations waiting for tls_tpoff */
    size_t ntls_later;
    int tls_needs_static;        /* one of them is initial-exec: no fallback */

    /* phdr.c: on the list dl_iterate_phdr and _dl_find_object report */
    int published;
    const Elf64_Phdr *phdr_mem;  /* the program headers in the image, or NULL */
    const void *ehhdr_mem;       /* PT_GNU_EH_FRAME in a readable segment, or NULL */
    vmc_lib_t *pub_next, *pub_prev;
    vmc_debug_lib_t dbg;         /* its entry in the debuggers' registry    */
    char *dbg_path;              /* the absolute path dbg names, or NULL    */

    /* tlsdtor.c: thread_local destructors registered and not yet finished
     * (under its lock); while any are, the last unload leaves the library
     * loaded and the last of them finishes it */
    struct tdtor *tls_dtor_list; /* those not yet started                   */
    size_t tls_dtors;            /* not started + running                   */
    size_t tls_running;
};

/* A format's side of the lifecycle: the format seam.  loader.c picks one by
 * the file's magic (an ELF object: elfload.c; a DLL, "MZ": peload.c) and
 * reaches the format only through it. */
typedef struct vmc_lib_fmt {
    /* Check the headers, place the image in the region, resolve the
     * dependencies (l->deps): on success l is on the handle's list
     * (vmc__lib_list_add) and either VMC_LIB_MAPPED with seq taken
     * after its dependencies' (relocated with its load group, below), or
     * already bound: VMC_LIB_RELOCATED with seq taken after its
     * dependencies' (a DLL).  On failure the lifecycle calls teardown and
     * free, which undo exactly what was done. */
    int (*load)(vmc_lib_t *l, vmc_src_t *src, const uint8_t *hdr, size_t hdrlen);
    /* Once a load's whole group is mapped: relocate_start (NULL: nothing),
     * then relocate for each VMC_LIB_MAPPED library in seq order: to
     * VMC_LIB_RELOCATED, seq taken (NULL where load binds itself). */
    void (*relocate_start)(void);
    int (*relocate)(vmc_lib_t *l);
    /* Before the first initialiser of a load runs (NULL: nothing). */
    void (*init_start)(void);
    int (*init)(vmc_lib_t *l);           /* constructors; DllMain(ATTACH):
                                            a failure fails the load     */
    void (*fini)(vmc_lib_t *l);          /* destructors; DllMain(DETACH)    */
    int (*stays)(vmc_lib_t *l);          /* loaded with no reference left   */
    /* Take back what load registered and give the image's run back, before
     * the dependencies are released (also for a load that failed part way). */
    void (*teardown)(vmc_lib_t *l);
    void (*dep_close)(vmc_lib_t *l, vmc_dep_t *d);   /* a VMC_DEP_SYSTEM one */
    /* After teardown, once the dependencies are released: 1 if what the
     * load read and checked of its file may stay in l's record, kept as it
     * is for the next load of the same unchanged file (which gets the
     * record, and hdr NULL, and takes that over: vmc_src_t.kept); the
     * format frees here what is not kept.  0: nothing kept.  NULL where
     * the format keeps nothing.  A kept record is dropped with free
     * (below), then the C library's free. */
    int (*keep)(vmc_lib_t *l);
    void (*free)(vmc_lib_t *l);          /* the format's memory             */
    void *(*sym)(vmc_lib_t *l, const char *name);   /* vmc_lib_sym         */
    void (*span)(vmc_lib_t *l, void **start, size_t *len);
    /* vmc_addr_info: the exported symbol nearest at or below a, inside the
     * image (in its segment or section): 1 with its name, address and size
     * (0: the format has none), 0 if none. */
    int (*nearest)(vmc_lib_t *l, uintptr_t a, const char **name, uintptr_t *at, size_t *size);
    void (*info)(vmc_lib_t *l, vmc_lib_info_t *out);
    const char *(*dep_name)(vmc_lib_t *l, size_t i);
    /* The system loader's name for a VMC_DEP_SYSTEM dependency, or NULL. */
    const char *(*dep_path)(vmc_lib_t *l, const vmc_dep_t *d);
    /* vmc_close, before any destructor runs and without the lock (NULL: none). */
    void (*close)(vmc_loader_t *v);
} vmc_lib_fmt_t;

extern const vmc_lib_fmt_t vmc__lib_elf_fmt;   /* elfload.c; noelf.c on Windows */
extern const vmc_lib_fmt_t vmc__lib_pe_fmt;    /* peload.c                     */

/* ---- loader.c: what the formats use of the lifecycle ------------------------- */
/* Put l on its handle's list (load order), once its image is placed. */
void vmc__lib_list_add(vmc_lib_t *l);
/* Load the file at path as a dependency of `loader` (NULL: for
 * vmc_lib_load), nested `depth` deep: a second load of one file shares it. */
int vmc__lib_load_file(vmc_loader_t *v, const char *path, int flags, int depth, vmc_lib_t *loader,
                       vmc_lib_t **out);
/* Drop one reference (a dependent going away). */
void vmc__lib_release(vmc_lib_t *l);
/* A dependency's reason (vmc_dep_t.why) that names something known only
 * now (the private loader's refusal), formatted into memory l owns until it
 * is freed; NULL when out of memory.  The usual reasons are constants: no
 * load formats or stores one. */
const char *vmc__lib_why(vmc_lib_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- kept.c: what unloaded libraries' loads read, for a load of the same file */
/* The record of an unloaded library kept for the file with this identity
 * and stamp, taken out; NULL if none. */
vmc_lib_t *vmc__kept_take(vmc_loader_t *v, const uint64_t id[2], const uint64_t stamp[3]);
/* After l's teardown: keep l's record as it is (its format says what of it
 * stays: fmt->keep), if its file was settled; the oldest entry makes room.
 * 1: l is kept, and the lifecycle frees only its own parts of it. */
int vmc__kept_put(vmc_lib_t *l);
/* A kept record goes (taken over by a load, or pushed out): what its
 * format left in it, then the record. */
void vmc__kept_drop(vmc_lib_t *l);
/* Drop everything kept (vmc_close). */
void vmc__kept_clear(vmc_loader_t *v);
/* Tests: keep nothing from now on (on), or again (0). */
void vmc__kept_refuse(int on);

/* The library an ELF object belongs to. */
static inline vmc_lib_t *vmc__lib_of(const vmc_elf_obj_t *o)
{
    return (vmc_lib_t *)((char *)o - offsetof(vmc_lib_t, o));
}

/* The host's definition of name (at version, or any with NULL): the
 * process's global scope first, then each dependency the system loader
 * loaded for l. */
void *vmc__host_sym_for(const vmc_lib_t *l, const vmc_name_t *name, const char *version);
/* The same, and *final as vmc__host_sym_final gives it. */
void *vmc__host_sym_for_final(const vmc_lib_t *l, const vmc_name_t *name, const char *version, int *final);


/* A host TLS module a library holds a tls.c slot for. */
typedef struct vmc_tls_host_ref {
    uint64_t modid;              /* glibc's module id                       */
    size_t slot;                 /* the tls.c slot standing for it          */
} vmc_tls_host_ref_t;

/* A relocation of l's own module that waits for its static TLS offset. */
typedef struct vmc_tls_later {
    uint64_t at;                 /* the target's vaddr                      */
    uint64_t offset;             /* in the block (symbol + addend)          */
    int desc;                    /* a descriptor (two words), else TPOFF64  */
} vmc_tls_later_t;

/* ---- tlsbind.c ------------------------------------------------------------ */
/* Take a TLS module for l's PT_TLS (none: nothing to do); give it back, and
 * the host slots l holds. */
int vmc__lib_tls_add(vmc_lib_t *l);
void vmc__lib_tls_remove(vmc_lib_t *l);
/* The words a TLS relocation of l stores (vmc_elf_env_t.tls says what). */
int vmc__lib_tls_reloc(vmc_lib_t *l, int kind, unsigned type, size_t symidx, int64_t addend, uint64_t at,
                       uint64_t out[2], const char *tag, size_t index);
/* After relocation, before RELRO: give l's module a block in static TLS if
 * a relocation waits for one (required by initial-exec ones; for
 * descriptors only a faster way, skipped when it does not fit) and patch
 * those relocations. */
int vmc__lib_tls_finish(vmc_lib_t *l);
/* The calling thread's copy of l's TLS symbol s (vmc_lib_sym, as dlsym). */
void *vmc__lib_tls_sym(vmc_lib_t *l, const Elf64_Sym *s);

/* ---- hostsym.c ------------------------------------------------------------ */
/* The host's definition of name at version (NULL: the default one), as the
 * system loader would bind it: RTLD_DEFAULT is the global scope (hostsym.c
 * says how it is searched); a dependency's handle is asked only after the
 * global scope had no answer.  vmc__host_sym_sync must precede a batch (it
 * notes objects loaded or unloaded since the last). */
void *vmc__host_sym(void *handle, const vmc_name_t *name, const char *version);
/* The same, and *final = 1 when the answer is one from the objects the
 * process started with, which holds for the life of the process. */
void *vmc__host_sym_final(void *handle, const vmc_name_t *name, const char *version, int *final);
void vmc__host_sym_sync(void);
/* The handle of the object the process started with whose DT_SONAME is
 * `name` (what dlopen(name, RTLD_NOLOAD) finds first), or NULL when there
 * is none or the scope could not be read.  Such an object is never
 * unloaded: no reference is taken, and none may be dropped (dlclose). */
void *vmc__host_startup_object(const char *name);
/* The handle of the object the process started with whose mapped span
 * holds addr, or NULL (not one of them, or the scope could not be read);
 * never unloaded, as above. */
void *vmc__host_startup_owner(const void *addr);
/* The default-version definition of name in that object itself (a handle
 * from one of the two above; the system loader's dlsym cannot take one it
 * did not give out), or NULL. */
void *vmc__host_startup_sym(void *handle, const char *name);

/* ---- progsym.c ------------------------------------------------------------- */
/* 1 if the program's own symbol table (.symtab of /proc/self/exe) has a
 * global, default-visibility definition of name; 0 if not or unknown
 * (stripped, unreadable).  Records no error. */
int vmc__prog_defines(const char *name);

/* ---- search.c -------------------------------------------------------------- */
/* Look for dependency `name` (no '/') of l where the system loader looks,
 * in its order: DT_RPATH (l's, its loaders', the program's; not when l has
 * DT_RUNPATH), LD_LIBRARY_PATH, l's DT_RUNPATH, the ld.so cache, the
 * default directories (DF_1_NODEFLIB: neither those nor the cache's entries
 * in them).  0 with the file in path and *where (enum vmc_dep_where), 1 if
 * in none of them, or an error. */
int vmc__dep_find(const vmc_lib_t *l, const char *name, char *path, size_t len, int *where);
/* Default directory i (0, 1...) of the system loader in buf, or NULL past the last. */
const char *vmc__dep_default_dir(size_t i, char *buf, size_t len);
/* One path element elem[0..n) with $ORIGIN (= origin), $LIB and $PLATFORM
 * expanded into out; its length, or 0 when it is to be dropped (no origin,
 * a set-user-ID program, too long). */
size_t vmc__dep_expand(const char *elem, size_t n, const char *origin, char *out, size_t len);

/* ---- loader.c -------------------------------------------------------------- */
/* Look name up in l's scope beyond l itself (see vmc_elf_env_t.resolve). */
int vmc__resolve(vmc_lib_t *l, const vmc_name_t *name, const vmc_ver_t *ver, uintptr_t *value, int *ifunc,
                 const char *tag, size_t index);
/* Call an IFUNC resolver at `resolver` (checked to be inside an executable
 * segment of l). */
int vmc__call_ifunc(vmc_lib_t *l, uintptr_t resolver, uintptr_t *out, const char *tag, size_t index);
/* Finish an unload left pending for thread_local destructors, now that
 * they have run (under the lock; nothing if the library was loaded again). */
void vmc__lib_unload_pending(vmc_lib_t *l);


#endif
