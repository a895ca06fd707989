/* vmcode: one reserved region for generated code and the libraries it calls.
 *
 * x86-64 direct branches and rip-relative operands carry a signed 32-bit
 * displacement.  vmcode reserves one code region of up to 2 GiB, placed next
 * to the main program by default, hands out code and data inside it, maps
 * plug-in libraries and files over pieces of it, and optionally keeps it W^X by
 * dual mapping.  Everything inside the code region reaches everything else in
 * it with a `call rel32`; nothing is ever silently placed outside it.
 *
 * Conventions: every `int` result is 0 on success or a negative errno value.
 * vmc_last_error() returns this thread's account of the last failure.
 * Nothing prints unless asked.  See docs/API.md for the full reference.
 */
#ifndef VMCODE_H
#define VMCODE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VMC_API __attribute__((visibility("default")))
#else
#define VMC_API
#endif

#define VMCODE_VERSION_MAJOR 0
#define VMCODE_VERSION_MINOR 1

typedef struct vmc     vmc_t;      /* one code region + one heap region      */
typedef struct vmc_lib vmc_lib_t;  /* a library loaded privately              */

#define VMC_OPTIONS_VERSION 2   /* 2 added brk_room; version 1 structs still work */
typedef struct vmc_options {
    uint32_t  version;       /* VMC_OPTIONS_VERSION                                  */
    size_t    vm_size;       /* code region; default 2 GiB on 64-bit                */
    size_t    vmheap_size;   /* unreachable data region; default 1 GiB; 0 = none    */
    uintptr_t vm_base;       /* preferred code-region base; 0 = choose             */
    size_t    vm_max_offset; /* random jitter added to vm_base; default 256 MiB     */
    uintptr_t reach_lo;      /* a range most of the region must reach by rel32;    */
    uintptr_t reach_hi;      /*   0,0 = the main program's image (the default)     */
    int       near_app;      /* place the region next to reach_lo..reach_hi; def. 1 */
    int       allow_smaller; /* halve the size until it can be reserved; default 1 */
    int       w_xor_x;       /* dual-map the code region; default 0                */
    int       perf_map;      /* vmc_name also appends to /tmp/perf-PID.map; def. 0 */
    int       jitdump;       /* vmc_name also appends to /tmp/jit-PID.dump; def. 0 */
    size_t    brk_room;      /* kept free for the program's brk heap past its break
                                at vmc_open (the region never goes there, so brk
                                can grow this far; glibc's malloc then goes on
                                with mmap); default 128 MiB                      */
} vmc_options_t;

/* Limits of the options.  The code region is at most 2 GiB so that any two
 * addresses inside it reach each other by rel32; allow_smaller halves sizes
 * down to VMC_MIN_SIZE and no further. */
#define VMC_MAX_VM_SIZE  ((size_t)2 << 30)
#define VMC_MIN_SIZE     ((size_t)64 << 20)

VMC_API void vmc_options_init(vmc_options_t *o);
/* DR-style option text: "-vm_size 2G -vmheap_size 512M -w_xor_x -no_near_app"
 * Sizes take K/M/G/T suffixes; booleans take -name / -no_name and no value
 * ("-w_xor_x 1" is refused, saying so).  On error
 * (-EINVAL) *o is unchanged and vmc_last_error() names the token.            */
VMC_API int  vmc_options_parse(vmc_options_t *o, const char *text);

/* The options o (NULL: the defaults), with the VMCODE_OPTIONS environment
 * variable applied on top: an option it names wins over the program's (as
 * DynamoRIO applies its options from the environment).  *o is not changed. */
VMC_API int  vmc_open(const vmc_options_t *o, vmc_t **out);
VMC_API void vmc_close(vmc_t *v);      /* unloads libraries, releases everything */

/* How the code region was placed (vmc_info_t.placement). */
enum vmc_placement {
    VMC_PLACED_NEAR_APP = 1,   /* next to reach_lo..reach_hi                    */
    VMC_PLACED_VM_BASE  = 2,   /* at vm_base (or a random base) plus jitter     */
    VMC_PLACED_ANYWHERE = 3,   /* wherever the kernel put it                    */
};

typedef struct vmc_info {
    void  *code_base;  size_t code_size;   /* executable view of the code region */
    void  *code_wbase;                     /* writable view (== code_base w/o W^X) */
    void  *heap_base;  size_t heap_size;
    int    w_xor_x;
    /* where the region went and what it reaches */
    int       placement;       /* enum vmc_placement                           */
    uintptr_t reach_lo;        /* the target range the region was placed for   */
    uintptr_t reach_hi;
    size_t    code_reaching;   /* bytes of the code region whose every byte
                                  reaches all of reach_lo..reach_hi by rel32   */
    size_t    requested_code_size;   /* before allow_smaller halved it         */
    size_t    requested_heap_size;
    int       near_app_failed; /* 1: near_app was on, but from no free place
                                  would any byte of the region reach
                                  reach_lo..reach_hi: the region went to step
                                  2 or 3 (code_reaching says what reaches
                                  anyway, usually 0; use vmc_stub)           */
    size_t    block_size;      /* the unit regions are committed, given back
                                  and file-mapped in (vmc_map_file offsets):
                                  the page on Linux, 64 KiB on Windows       */
    size_t    slot_size;       /* Windows without placeholders (before 10
                                  1803): each region is reservations of this
                                  many bytes, and a file mapping starts on
                                  one; 0: one reservation per region         */
    /* A -no-pie program's brk heap and the room it grows into, which the
     * code region spans around so that all of the region reaches the image
     * (the kernel starts brk up to 1 GiB after the data): the region is
     * [code_base, code_base + code_size) less these bytes, never used;
     * code_reaching leaves them out.  NULL, 0: no hole. */
    void  *brk_hole;   size_t brk_hole_size;
} vmc_info_t;
VMC_API int vmc_info(vmc_t *v, vmc_info_t *out);

/* ---- memory ---------------------------------------------------------------- */
enum vmc_kind {
    VMC_CODE  = 1,   /* executable, in the code region                       */
    VMC_RDATA = 2,   /* read-write data in the code region (rip-relative use) */
    VMC_DATA  = 3,   /* read-write data in the heap region (not reachable)    */
};
typedef struct vmc_span {
    void  *x;        /* where the memory is used / the code runs              */
    void  *w;        /* where to write it (== x unless W^X and VMC_CODE)      */
    size_t size;
} vmc_span_t;

/* Any size; 64-byte aligned; sizes of 4 KiB or more are page aligned. */
VMC_API int   vmc_alloc(vmc_t *v, size_t size, int kind, vmc_span_t *out);
/* Every byte of the result reaches every byte of [lo, hi) by rel32.
 * -ENOSPC when no free space inside the region satisfies it.                   */
VMC_API int   vmc_alloc_reaching(vmc_t *v, size_t size, int kind,
                                 uintptr_t lo, uintptr_t hi, vmc_span_t *out);
VMC_API int   vmc_free(vmc_t *v, void *p);                  /* p: either view  */
/* Where to write allocated memory at x: the writable view for VMC_CODE under
 * W^X, x itself for data and for code without W^X; NULL for anything that
 * is not a live allocation (library images, mapped files, free space). */
VMC_API void *vmc_writable(vmc_t *v, const void *x);
VMC_API void *vmc_executable(vmc_t *v, const void *w);

/* An address inside the code region that jumps to `target` (any 64-bit
 * address), so generated code can always emit `call rel32` to it.  Stubs for
 * one target are shared and live until vmc_close. */
VMC_API int   vmc_stub(vmc_t *v, uintptr_t target, void **x);

/* Print the map of both regions: runs of blocks, owner, size, commit state. */
VMC_API int   vmc_dump(vmc_t *v, FILE *f);

/* The same map, run by run, for programs: every run of both regions in
 * address order, free runs included.  Stops early if fn returns non-zero
 * (and returns that value).  fn must not call back into this handle. */
enum vmc_run_owner {
    VMC_RUN_FREE = 0, VMC_RUN_CODE_HEAP, VMC_RUN_RDATA_HEAP, VMC_RUN_DATA_HEAP,
    VMC_RUN_LARGE, VMC_RUN_LIBRARY, VMC_RUN_FILE, VMC_RUN_STUBS,
    VMC_RUN_BRK_HEAP,        /* not the region's: a -no-pie program's brk heap
                                and its room, which the region spans around
                                (vmc_info_t.brk_hole)                        */
};
typedef struct vmc_run_info {
    void       *start;       /* executable view                               */
    size_t      size;
    int         region;      /* 0 = code region, 1 = heap region              */
    int         owner;       /* enum vmc_run_owner                            */
    const char *owner_name;  /* "free", "code heap", "library", ...          */
    int         kind;        /* VMC_CODE / VMC_RDATA / VMC_DATA, 0 = none     */
    size_t      committed;   /* bytes committed or mapped                     */
    const char *name;        /* library path for library runs, else NULL      */
} vmc_run_info_t;
typedef int (*vmc_run_fn)(const vmc_run_info_t *run, void *arg);
VMC_API int   vmc_walk(vmc_t *v, vmc_run_fn fn, void *arg);

/* ---- libraries --------------------------------------------------------------- */
/* A library is loaded privately into the code region: validated field by
 * field, mapped over a piece of the region, relocated with eager binding
 * (itself first, then other private libraries, then the host process by
 * versioned look-up), RELRO applied, constructors run dependencies first.
 * `path` is opened as given (a name without '/' is relative to the current
 * directory; there is no search path as dlopen has).  Loading the same file
 * again returns the same handle with one more reference.  Symbols of the
 * program itself are found only if it exports them (link it with -rdynamic).
 * On Windows `path` is a PE32+ DLL, loaded the same way (its sections read
 * into the region; imports bound to the process's system DLLs, DLLs beside
 * it loaded privately; TLS callbacks and DllMain run).  Refusals are -ENOEXEC
 * (malformed, or not a library, ELF shared object or DLL, the system loader
 * would load either), -ENOTSUP (a valid library using a feature this loader
 * does not take, named: dlopen or LoadLibrary may load it), -ENOENT (missing
 * file, dependency or symbol), -ENOSPC (region full), -ECANCELED (Windows: a
 * DllMain(DLL_PROCESS_ATTACH) returned FALSE); the message names the file,
 * the field and its offset.  See docs/loader.md. */
enum {
    VMC_LOAD_DEFAULT = 0,    /* into the code region                            */
    VMC_LOAD_INERT   = 1,    /* map, relocate and bind, but run none of the
                                library's code (no constructors, destructors or
                                IFUNC resolvers: IFUNC slots are 0) and load no
                                dependency through the system loader: for
                                inspection and fuzzing                          */
};
VMC_API int   vmc_lib_load(vmc_t *v, const char *path, int flags, vmc_lib_t **out);
/* The same from an image in memory (copied; `bytes` may be freed after).
 * `name` is used in messages.  Dependencies are found as for a file, except
 * that there is no directory to look in. */
VMC_API int   vmc_lib_load_mem(vmc_t *v, const void *bytes, size_t len, const char *name,
                               int flags, vmc_lib_t **out);
/* The library's own exported symbol, default version; IFUNCs resolved.
 * NULL if absent (vmc_last_error() says so).  For a function under
 * -Wpedantic: `*(void **)&fn = vmc_lib_sym(l, "f");`  A DLL (Windows): the
 * export of that name, or "#N" the export of ordinal N (decimal, 1 to
 * 65535, as GetProcAddress(MAKEINTRESOURCE(N)); a malformed one, "#", "#0",
 * "#7x", is refused as such); a forwarded export is followed to its target
 * (another private DLL of the handle by file name, else the system's
 * module, held until unload). */
VMC_API void *vmc_lib_sym(vmc_lib_t *l, const char *name);
/* The piece of the code region the image occupies. */
VMC_API int   vmc_lib_span(vmc_lib_t *l, void **start, size_t *len);
/* What a load did: where the image and its segments went, how many
 * relocations were applied, where its symbols were bound, its dependencies. */
#define VMC_LIB_MAX_SEGMENTS 32   /* the loader accepts at most 32 PT_LOADs */
typedef struct vmc_lib_info {
    const char *path;            /* as given to vmc_lib_load (or the name)    */
    void       *base;            /* the piece of the code region it occupies  */
    size_t      size;
    uintptr_t   bias;            /* added to every p_vaddr (a DLL: every RVA;
                                    the image's base)                         */
    unsigned    nsegments;       /* PT_LOADs (a DLL: its sections, one each)  */
    struct {
        void *start; size_t size;
        int   prot;              /* PROT_READ | PROT_WRITE | PROT_EXEC        */
    } segments[VMC_LIB_MAX_SEGMENTS];
    /* a DLL: relocs_relative is its IMAGE_REL_BASED_DIR64 relocations, the
     * other three 0 */
    size_t relocs_relative, relocs_symbolic, relocs_irelative, relocs_relr;
    size_t bound_self;           /* symbols bound to the library itself (a
                                    DLL: 0, it imports nothing from itself)   */
    size_t bound_private;        /* ... to other privately loaded libraries   */
    size_t bound_host;           /* ... to the host process (dlvsym; a DLL:
                                    GetProcAddress of a system module)        */
    size_t bound_weak_zero;      /* undefined weak symbols, bound to 0 (DLL: 0) */
    unsigned ndeps;              /* DT_NEEDED entries (a DLL: imported DLLs,
                                    delay-loaded ones included)               */
    size_t tables_copied;        /* bytes of the file read into the loader's
                                    memory at load to hold its symbol, string,
                                    hash, version and relocation tables
                                    (0: they are read in place; a DLL: 0)   */
} vmc_lib_info_t;
VMC_API int vmc_lib_info(vmc_lib_t *l, vmc_lib_info_t *out);

enum vmc_dep_how {
    VMC_DEP_LOADED_PRIVATELY = 1,  /* mapped into the region                     */
    VMC_DEP_HOST_COPY,             /* the host process already had it (libc...)  */
    VMC_DEP_SYSTEM_LOADER,         /* loaded by the system loader, outside       */
};
/* Where a dependency was found (the system loader's search order for a
 * dependency, docs/loader.md "Dependencies"). */
enum vmc_dep_where {
    VMC_DEP_IN_PROCESS = 1,        /* already loaded in the process, by name     */
    VMC_DEP_SYSTEM_LIBRARY,        /* libc, libm, libstdc++...: always the host's */
    VMC_DEP_BY_PATH,               /* DT_NEEDED is a path (contains '/')         */
    VMC_DEP_RPATH,                 /* a DT_RPATH directory: of the library, of a
                                      library that loaded it, of the program     */
    VMC_DEP_LD_LIBRARY_PATH,       /* a directory of LD_LIBRARY_PATH             */
    VMC_DEP_RUNPATH,               /* a DT_RUNPATH directory of the library      */
    VMC_DEP_BESIDE,                /* the directory of the library that needs it,
                                      when the system loader's search finds none */
    VMC_DEP_SYSTEM_SEARCH,         /* found by none of these: left to dlopen by
                                      name, outside the region                  */
    VMC_DEP_LDSO_CACHE,            /* the ld.so cache (/etc/ld.so.cache)         */
    VMC_DEP_DEFAULT_DIR,           /* a default directory (/usr/lib/<triplet>...) */
};
typedef struct vmc_lib_dep {
    const char *name;            /* the DT_NEEDED string                        */
    int         how;             /* enum vmc_dep_how                            */
    vmc_lib_t  *lib;             /* VMC_DEP_LOADED_PRIVATELY: the library       */
    int         where;           /* enum vmc_dep_where                          */
    const char *path;            /* the file: the private copy's path, or the
                                    system loader's name for it (NULL if it
                                    gives none; a DLL: NULL for a system
                                    module; a private DLL's is the importer's
                                    directory, its separator, the import's
                                    name as spelled there)                      */
    const char *why;             /* why it went where it went, one sentence:
                                    "found in DT_RUNPATH /opt/x/lib", or for the
                                    system loader why not privately            */
} vmc_lib_dep_t;
/* Dependency i (0 <= i < ndeps) of l. */
VMC_API int vmc_lib_dep(vmc_lib_t *l, unsigned i, vmc_lib_dep_t *out);

/* Drop one reference; at the last, destructors run, the range is
 * re-reserved and the handle is freed (as with dlclose: do not use it
 * again).  A -z nodelete library's handle stays until vmc_close; unloading
 * it more often than it was loaded gives -EINVAL.  A library with thread_local
 * destructors still to run in a live thread stays loaded (destructors and
 * range too) until the last of them ran.  Libraries still loaded at
 * vmc_close are unloaded there. */
VMC_API int   vmc_lib_unload(vmc_lib_t *l);

/* What is at an address, as dladdr says it for system-loaded code: the
 * private library of v whose image holds addr (or, for any other address,
 * the system loader's object, with lib NULL), and the exported symbol at or
 * below addr nearest to it in the same segment.  -ENOENT: neither a private
 * library of v nor an object of the process holds addr.  The strings live
 * as long as the library. */
typedef struct vmc_addr_info {
    vmc_lib_t  *lib;             /* the private library, or NULL               */
    const char *path;            /* its path (vmc_lib_info's), or dli_fname    */
    void       *base;            /* where its image starts (dli_fbase)         */
    const char *sym_name;        /* nearest exported symbol, or NULL           */
    void       *sym_addr;        /* its address (dli_saddr)                    */
    size_t      sym_size;        /* its st_size (0 for a host object, and for
                                    a DLL's export: exports have no sizes, so
                                    sym_offset is only the distance)           */
    size_t      sym_offset;      /* addr - sym_addr: past sym_size when addr is
                                    in code no symbol covers (a static function) */
} vmc_addr_info_t;
VMC_API int vmc_addr_info(vmc_t *v, const void *addr, vmc_addr_info_t *info);

/* ---- files ------------------------------------------------------------------- */
/* prot for vmc_map_file / vmc_map_handle: equal to Linux's PROT_* values, for
 * Windows, which has no PROT_* (and anywhere else). */
enum {
    VMC_PROT_READ  = 1,   /* PROT_READ  */
    VMC_PROT_WRITE = 2,   /* PROT_WRITE */
    VMC_PROT_EXEC  = 4,   /* PROT_EXEC  */
};
enum {
    VMC_MAP_REACHABLE = 1,   /* inside the code region (else the heap region)   */
    VMC_MAP_SHARED    = 2,   /* MAP_SHARED (else private copy-on-write)         */
};
VMC_API int vmc_map_file(vmc_t *v, int fd, uint64_t offset, size_t size, int prot,
                         int flags, void **out);
/* Windows: the same with a file HANDLE (CreateFile's, passed as void *) for a
 * file that has no C runtime descriptor.  The handle needs the access the
 * mapping asks for (GENERIC_READ; GENERIC_WRITE for a writable shared one;
 * GENERIC_EXECUTE for an executable one) and may be closed after the call:
 * the view keeps the file.  Undo with vmc_unmap_file.  -ENOTSUP elsewhere
 * (map a descriptor with vmc_map_file). */
VMC_API int vmc_map_handle(vmc_t *v, void *handle, uint64_t offset, size_t size, int prot,
                           int flags, void **out);
VMC_API int vmc_unmap_file(vmc_t *v, void *addr, size_t size);

/* ---- unwinding through generated code (Windows x64) ------------------------------
 * Windows unwinds a frame (C++ and SEH exceptions, stack walks, debuggers,
 * crash dumps) from the unwind information of the function it is in.  A
 * frame of generated code nobody described is taken for a leaf function
 * (return address at [rsp], nothing saved): right for code that neither
 * pushes nor moves rsp, and for a stub; for any other, stack walks lose
 * its caller and what an exception passing through it does is undefined
 * (Windows: expect the process to be terminated; Wine pops stack slots until
 * one holds an address of described code, so it is caught or not by what
 * lies in the frame: README's Windows part).  Describe such
 * functions with vmc_unwind_add: n entries laid out as Windows'
 * RUNTIME_FUNCTION, each the function [code_base + begin, code_base + end)
 * whose UNWIND_INFO is at code_base + info, code_base being vmc_info's (the
 * executable view).  Every offset is from code_base, those inside
 * UNWIND_INFO too (an exception handler, a chained entry): the system
 * reports code_base as the image base (RtlLookupFunctionEntry).  Functions
 * must lie in live VMC_CODE memory, all of one table in one allocation (one
 * table per allocation; tables must not overlap: -EEXIST); UNWIND_INFO
 * (4-byte aligned) in allocated memory of the code region, written like the
 * code (through the writable view), for instance right after it; a handler
 * outside the region is reached through a vmc_stub.  The entries are copied
 * (any order) and registered as one table (RtlAddFunctionTable).
 * vmc_unwind_remove forgets every table whose functions lie in
 * [addr, addr + size): do so before that code is freed or rewritten.
 * vmc_close forgets the rest.  -ENOTSUP elsewhere (on Linux describe
 * generated code with DWARF CFI through __register_frame).  See docs/API.md. */
typedef struct vmc_unwind_entry {
    uint32_t begin;   /* the function's first byte, offset from code_base       */
    uint32_t end;     /* one past its last byte                                  */
    uint32_t info;    /* its UNWIND_INFO, offset from code_base                  */
} vmc_unwind_entry_t;
VMC_API int vmc_unwind_add(vmc_t *v, const vmc_unwind_entry_t *entries, size_t n);
VMC_API int vmc_unwind_remove(vmc_t *v, const void *addr, size_t size);

/* ---- names for debuggers and profilers ---------------------------------------- */
/* Name the generated code at [addr, addr + size) (either view of VMC_CODE
 * memory, or anything else inside the code region) for gdb backtraces and
 * perf reports.  gdb sees names through its JIT interface from the next
 * vmc_name_flush on (names are handed over in batches of 1,024, since each
 * hand-over costs gdb time that grows with the number it holds; a full
 * batch is handed over by itself); with the -perf_map option the name is
 * also appended at once to /tmp/perf-PID.map.  name NULL forgets the names
 * that start inside the range (do so before reusing freed code memory).
 * The name is copied; 1 to 1,023 bytes.  -EINVAL for a range outside the
 * code region.  Names last until forgotten or vmc_close.  See
 * docs/loader.md, "Debugging and profiling". */
VMC_API int vmc_name(vmc_t *v, const void *addr, size_t size, const char *name);
/* Hand every name given or forgotten since the last flush to gdb. */
VMC_API int vmc_name_flush(vmc_t *v);

/* ---- reach, status ----------------------------------------------------------- */
/* Can an instruction ending at `from` reach `to` with a rel32 displacement?
 * True iff  -2^31 <= (intptr_t)(to - from) <= 2^31 - 1.
 * A span [a, b) reaches a range [lo, hi) iff every instruction end in [a, b]
 * reaches every byte of [lo, hi), i.e.  hi - a <= 2^31  and  b - lo <= 2^31.
 * So any two points of a region of exactly 2 GiB reach each other.           */
VMC_API int vmc_reaches(uintptr_t from, uintptr_t to);
/* The span form above: 1 if [a, b) reaches all of [lo, hi), else 0. */
VMC_API int vmc_span_reaches(uintptr_t a, uintptr_t b, uintptr_t lo, uintptr_t hi);

typedef struct vmc_stats {
    /* code_largest_free: the largest request the code region can take now;
     * wholly free chunks the code heap keeps committed for reuse count as
     * free (they are given back before any request would fail), and empty
     * slabs kept by the calling thread and by exited threads are handed
     * back to the heap first */
    size_t code_size, code_used, code_committed, code_largest_free;
    size_t heap_size, heap_used, heap_committed;
    size_t allocations, libraries, mapped_files;
} vmc_stats_t;
VMC_API int vmc_stats(vmc_t *v, vmc_stats_t *out);

VMC_API const char *vmc_strerror(int err);
VMC_API const char *vmc_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* VMCODE_H */
