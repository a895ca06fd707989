/* The ELF layer: reading, checking, mapping and relocating one ELF shared
 * object over a block run of the code region.
 *
 * The layer is split by job: check.c validates the ELF and program headers
 * before anything is mapped and summarises them in a vmc_elf_t; map.c maps
 * that summary over a block run; dyn.c reads the dynamic section of the
 * mapped image, its symbol, string, hash and version tables, and looks
 * symbols up; bind.c binds the symbol a relocation names; reloc.c applies
 * the relocations; unwind.c registers .eh_frame with the unwinder;
 * image.c drives one object through those steps for the lifecycle;
 * introspect.c answers what dl_iterate_phdr and dladdr need of an image;
 * hostscope.c looks a symbol up in one of the host's own objects.  Every range that a file field names is checked before
 * it is touched, and every refusal names the file, the field and its file
 * offset:
 *
 *     "NAME: WHAT (offset 0xBASE+0xDELTA): PROBLEM"
 *
 * What the layer needs from the library lifecycle above it (binding a
 * symbol in the right scope, calling an IFUNC resolver, finding a host
 * function) comes through the vmc_elf_env_t that each object carries: this
 * layer never includes the lifecycle's header.
 */
#ifndef VMC_ELF_H
#define VMC_ELF_H

#include "alloc/space.h"

#if __has_include(<elf.h>)
#include <elf.h>
#else
#include "elf/elfdefs.h"   /* Windows: the types alone */
#endif
#include <stdint.h>
#include <sys/types.h>

#define VMC_ELF_MAX_LOADS  32        /* PT_LOAD segments in one image       */
#define VMC_ELF_LOADS_IN   4         /* ... held in the record itself: every
                                        library here has 4 or 2            */
#define VMC_ELF_MAX_PHDRS  (65536 / sizeof(Elf64_Phdr))   /* as bionic caps it */
#define VMC_ELF_MAX_NEEDED 64        /* DT_NEEDED entries in one library    */
#define VMC_ELF_MAX_DEPTH  16        /* nesting of private dependencies     */
#define VMC_ELF_MAX_ALIGN  ((size_t)2 << 20)   /* largest run alignment honoured */
#define VMC_ELF_MAX_TLS_ALIGN ((uint64_t)1 << 16)  /* PT_TLS p_align honoured */
#define VMC_ELF_MAX_TLS_SIZE  ((uint64_t)1 << 30)  /* PT_TLS p_memsz accepted */

/* One PT_LOAD, as found in the file (validated). */
typedef struct vmc_seg {
    uint64_t vaddr, memsz;       /* where it goes, relative to the bias     */
    uint64_t offset, filesz;     /* where its bytes are in the file         */
    uint32_t flags;              /* PF_R | PF_W | PF_X                      */
    uint32_t index;              /* its program header number, for messages */
} vmc_seg_t;

/* What check.c learnt from the ELF header and program headers. */
typedef struct vmc_elf {
    const char *name;            /* for messages                            */
    uint64_t file_size;          /* bytes in the file (or memory image)     */
    uint64_t phoff;              /* program header table offset             */
    unsigned phnum;
    vmc_seg_t *load;             /* nload of them: load_in, or for more than
                                    fit there the loader's memory (image.c) */
    vmc_seg_t load_in[VMC_ELF_LOADS_IN];
    int nload;
    uint64_t dyn_vaddr, dyn_offset, dyn_size;   /* PT_DYNAMIC               */
    uint64_t relro_vaddr, relro_size;           /* PT_GNU_RELRO, or size 0  */
    uint64_t ehhdr_vaddr, ehhdr_size;           /* PT_GNU_EH_FRAME, or size 0 */
    int has_tls;                 /* a PT_TLS (checked: check.c)             */
    unsigned tls_index;          /* its program header number               */
    uint64_t tls_vaddr, tls_filesz, tls_memsz, tls_align;
    uint64_t lo, hi;             /* page-rounded span of the PT_LOADs       */
    size_t align;                /* alignment the run must have             */
} vmc_elf_t;

/* Where the bytes come from: a file descriptor, or memory. */
typedef struct vmc_src {
    int fd;                      /* >= 0: map from this file                */
    const uint8_t *bytes;        /* else copy from here                     */
    uint64_t size;
    uint8_t *head;               /* from a file: its first head_len bytes, read
                                    once (malloc'ed); the tables' copy may take
                                    it over (then NULL)                     */
    size_t head_len;
    struct vmc_elf_obj *kept;    /* from a file: the record of an earlier load
                                    of these same bytes, what it checked and
                                    read (vmc__elf_keep), which this load takes
                                    over (moved out of it), or NULL        */
} vmc_src_t;

/* A symbol name being looked up, hashed once for every table it is looked
 * up in (the library itself, other private libraries, the host cache). */
typedef struct vmc_name {
    const char *str;
    uint32_t gnu;                /* its DT_GNU_HASH hash                    */
} vmc_name_t;

vmc_name_t vmc__elf_name(const char *str);

/* One version index's meaning (from VERDEF or VERNEED). */
typedef struct vmc_ver {
    const char *name;            /* "GLIBC_2.14", or NULL if unused         */
    const char *file;            /* VERNEED: the library named; VERDEF: NULL */
    uint32_t hash;               /* ELF hash of name                        */
    uint8_t defined;             /* from VERDEF (1) or VERNEED (0)          */
    uint8_t hash0;               /* VERNEED: its ELF hash is 0, dlvsym cannot
                                    look it up (vmc__elf_ver_hash0)        */
} vmc_ver_t;

/* Where a symbol was bound (vmc_lib_info_t counts these). */
enum vmc_bound { VMC_BOUND_SELF, VMC_BOUND_PRIVATE, VMC_BOUND_HOST, VMC_BOUND_WEAK_ZERO };

typedef struct vmc_lib_counts {
    size_t relative, symbolic, irelative, relr;   /* relocations applied     */
    size_t bound[4];                              /* by enum vmc_bound       */
} vmc_lib_counts_t;


/* a + b into *sum, or 0 if it would wrap: every file-given range is added
 * this way. */
static inline int add_ok(uint64_t a, uint64_t b, uint64_t *sum)
{
    if (a > UINT64_MAX - b) return 0;
    *sum = a + b;
    return 1;
}


struct vmc_elf_obj;

/* The lifecycle's side of binding, passed down with each object. */
typedef struct vmc_elf_env {
    /* Look `name` (at `ver`, NULL: unversioned) up in o's scope beyond o
     * itself: other private libraries, vmcode's own functions, the host.
     * 1 and *value, *ifunc (an IFUNC whose resolver is still to be called)
     * when found, setting o->bound_from; 0 when nothing defines it; a
     * negative errno with a message on error.  The relocation is entry
     * `index` of table `tag` ("DT_RELA"), for messages only. */
    int (*resolve)(struct vmc_elf_obj *o, const vmc_name_t *name, const vmc_ver_t *ver, uintptr_t *value,
                   int *ifunc, const char *tag, size_t index);
    /* 1 if a private library other than o now defines name at ver: then an
     * answer resolve gave an earlier load of o's file (o->bound_final) may
     * no longer be the one; NULL: answers are never reused. */
    int (*private_defines)(struct vmc_elf_obj *o, const vmc_name_t *name, const vmc_ver_t *ver);
    /* Call an IFUNC resolver at `resolver` (checked to be inside an
     * executable segment of a private library) into *out. */
    int (*call_ifunc)(struct vmc_elf_obj *o, uintptr_t resolver, uintptr_t *out, const char *tag,
                      size_t index);
    /* For the message of a strong symbol nothing defines: a hint to add
     * (" (the program defines it but does not export it: ...)"), or "". */
    const char *(*missing_hint)(const struct vmc_elf_obj *o, const char *name);
    /* A TLS relocation, of relocation kind `kind` (VMC_RELOC_DTPMOD, DTPOFF,
     * TPOFF or TLSDESC; `type` its number, for messages), naming symbol
     * symidx (< nsyms; 0: the object's own module) with `addend`, at vaddr
     * `at`: the word to store in out[0], and out[1] for a descriptor's
     * second word (the lifecycle may write `at` again before RELRO).
     * -ENOTSUP (with a message) for valid ones that cannot be served. */
    int (*tls)(struct vmc_elf_obj *o, int kind, unsigned type, size_t symidx, int64_t addend, uint64_t at,
               uint64_t out[2], const char *tag, size_t index);
    /* After relocation, before RELRO: the lifecycle's last writes to the
     * image (the static TLS offsets of initial-exec relocations). */
    int (*relocated)(struct vmc_elf_obj *o);
    /* Only for an object with runtime_first set: 1 and *value when a name
     * the object defines is to be bound elsewhere (the process's one C++
     * runtime, src/lib/cxxrt.c), 0 to bind the object's own. */
    int (*runtime)(const struct vmc_elf_obj *o, const char *name, const vmc_ver_t *ver, uintptr_t *value);
} vmc_elf_env_t;

/* One ELF object mapped into the code region: everything this layer reads
 * and keeps about it. */
typedef struct vmc_elf_obj {
    const char *name;            /* for messages (owned above)              */
    vmc_space_t *sp;             /* the space it is mapped into             */
    const vmc_elf_env_t *env;    /* the lifecycle's callbacks               */
    vmc_elf_t elf;               /* the validated headers                   */
    uintptr_t run;               /* the block run holding the image         */
    size_t run_len;
    uintptr_t bias;              /* run - elf.lo: add to every p_vaddr      */

    /* The file part of the segment holding the tables the dynamic section
     * names (symbols, strings, hashes, versions, relocations), read once
     * into the loader's memory (dyn.c says why); vmc__elf_ptr serves
     * [snap_va, +snap_len) from here.  NULL: everything is read in the image. */
    uint8_t *snap, *snap_mem;    /* snap_mem: what to free (snap is inside) */
    uint64_t snap_va, snap_len;

    /* dynamic section (all pointers checked to lie inside the image) */
    const Elf64_Dyn *dyn;
    size_t ndyn;
    const char *strtab;
    size_t strsz;
    const Elf64_Sym *symtab;
    size_t nsyms;
    uint32_t h_nbucket, h_nchain;    /* DT_HASH                             */
    const uint32_t *h_bucket, *h_chain;
    uint32_t g_nbuckets, g_symoffset, g_bloom_size, g_bloom_shift;  /* DT_GNU_HASH */
    const uint64_t *g_bloom;
    const uint32_t *g_buckets, *g_chain;
    const uint16_t *versym;      /* DT_VERSYM, or NULL                      */
    vmc_ver_t *vers;             /* by version index                        */
    size_t nvers;
    uint64_t rela, relasz, jmprel, pltrelsz, relr, relrsz;   /* vaddrs, bytes */
    uint64_t init, fini, init_array, init_arraysz, fini_array, fini_arraysz;
    int fini_empty;              /* DT_FINI does nothing: not called        */
    int checked;                 /* headers and tables all read and checked */
    int reused;                  /* ... by an earlier load (vmc_src_t.kept)  */
    uint64_t dt_flags, dt_flags_1;
    uint32_t *needed;            /* DT_NEEDED strtab offsets, nneeded of them
                                    (room for as many as the section has)  */
    size_t nneeded;
    const char *soname;
    const char *rpath, *runpath; /* DT_RPATH, DT_RUNPATH (unexpanded), or NULL */

    uint64_t eh_frame_va;        /* .eh_frame (vmc__elf_unwind_read), or 0  */
    void *eh_frame;              /* .eh_frame as registered, or NULL        */
    const struct vmc_elf_unwinder *eh_unwinder;   /* the one it is with     */
    const void *eh_key;          /* what libgcc takes the record back by
                                    (eh_frame or eh_table), or NULL: the
                                    record is the unwinder's own            */
    void *eh_table[2];           /* .eh_frame, NULL: a table of one         */
    void *eh_ob[8];              /* libgcc's record of it (its struct
                                    object: 6 words from GCC 3 to 14, and
                                    fixed, as crtbegin.o reserves it in
                                    every program), ours until
                                    __deregister_frame_info_bases returns   */

    int runtime_first;           /* env->runtime decides its own names first */
    vmc_lib_counts_t counts;     /* relocations applied, symbols bound      */
    int bound_from;              /* where the last symbol bound was found   */
    const struct vmc_elf_obj *bound_obj;   /* ... in which object (this one, a
                                    private library), or NULL: the host    */
    int bound_final;             /* ... set by env->resolve: the answer holds
                                    for the life of the process unless a
                                    private library defines the name      */
    uint32_t bound_hash;         /* ... the name's DT_GNU_HASH hash         */
    struct vmc_elf_bound *binds; /* by symbol index: the last load's
                                    bindings (reloc.c), kept with the tables */
} vmc_elf_obj_t;

/* ---- the object's life, as the lifecycle drives it ----------------------------
 * These entry points are the format seam: the lifecycle (src/lib/) calls
 * only these (and vmc__elf_ptr/lookup for symbols), never the steps below. */
/* image.c: check the headers (`hdr`: the file's first `hdrlen` bytes, or the
 * whole image from memory) and map every PT_LOAD over a run. */
int vmc__elf_load(vmc_elf_obj_t *l, vmc_src_t *src, const uint8_t *hdr, size_t hdrlen);
/* image.c: read the dynamic section and what it names (dyn.c), and the
 * bytes of DT_FINI: the last step that reads the file, which may be closed
 * after it. */
int vmc__elf_dynamic(vmc_elf_obj_t *l, vmc_src_t *src);
/* image.c: once the object's whole load group is mapped (so that its
 * symbols can bind to any of it, as the system loader's can): relocate,
 * RELRO, check every constructor and destructor address. */
int vmc__elf_ready(vmc_elf_obj_t *l);
void vmc__elf_init(vmc_elf_obj_t *l);          /* DT_INIT, DT_INIT_ARRAY      */
void vmc__elf_fini(vmc_elf_obj_t *l);          /* DT_FINI_ARRAY, DT_FINI      */
/* Is a inside an executable segment of l? */
int vmc__elf_executable(const vmc_elf_obj_t *l, uintptr_t a);
int vmc__elf_nodelete(const vmc_elf_obj_t *l);  /* -z nodelete               */
const char *vmc__elf_needed(const vmc_elf_obj_t *l, size_t i);   /* DT_NEEDED i */
/* l's definition of name at ver (NULL: the default version): 1 with its
 * address and whether it is an IFUNC, or 0.  Inline (below): it runs for
 * every symbol a load binds. */
static inline int vmc__elf_find(const vmc_elf_obj_t *l, const vmc_name_t *name, const vmc_ver_t *ver,
                                uintptr_t *value, int *ifunc);
static inline uintptr_t vmc__elf_sym_addr(const vmc_elf_obj_t *l, const Elf64_Sym *s);
/* The image's part of vmc_lib_info (span, segments, counts). */
void vmc__elf_info(const vmc_elf_obj_t *l, vmc_lib_info_t *out);
/* unwind.c: where .eh_frame is, from PT_GNU_EH_FRAME's first bytes in the
 * file (src): part of vmc__elf_dynamic's reading. */
int vmc__elf_unwind_read(vmc_elf_obj_t *l, const vmc_src_t *src);
/* An unwinder's registration calls: __register_frame and
 * __deregister_frame; with libgcc's, the calls beneath them that take the
 * caller's storage for the record: __deregister_frame_info_bases, and
 * __register_frame_info_table_bases where its registration reads nothing
 * and it takes a record back by the pointer it was given (GCC 12 and
 * before), else __register_frame_info_bases (the other NULL; both NULL
 * for another unwinder).  unwind.c says why.  Set once, kept for the life
 * of the process. */
typedef struct vmc_elf_unwinder {
    void (*reg)(void *eh_frame);
    void (*dereg)(void *eh_frame);
    void (*reg_bases)(const void *eh_frame, void *ob, void *tbase, void *dbase);
    void (*reg_table_bases)(void *table, void *ob, void *tbase, void *dbase);
    void *(*dereg_bases)(const void *begin);
} vmc_elf_unwinder_t;
/* unwind.c: register the library's .eh_frame (if it has one, and not
 * already) with an unwinder; which unwinder, and when, the lifecycle
 * decides.  Take it back before the image goes. */
void vmc__elf_unwind_register(vmc_elf_obj_t *l, const vmc_elf_unwinder_t *u);
void vmc__elf_unwind_deregister(vmc_elf_obj_t *l);
/* introspect.c: what private-code introspection needs of the image: the
 * program headers inside it (the file bytes of the table lie in a PT_LOAD,
 * as linkers lay them out; else NULL), PT_GNU_EH_FRAME when it lies in a
 * readable segment (else NULL), and the exported symbol nearest at or
 * below address a in its segment (0 if none). */
const Elf64_Phdr *vmc__elf_image_phdrs(const vmc_elf_obj_t *l);
const void *vmc__elf_image_eh_hdr(const vmc_elf_obj_t *l);
int vmc__elf_nearest(const vmc_elf_obj_t *l, uintptr_t a, const char **name, uintptr_t *addr, size_t *size);
/* The exported symbol whose extent holds address a (a symbol of size 0:
 * a equal to its address), as dladdr chooses: the one starting highest;
 * NULL if none. */
const Elf64_Sym *vmc__elf_covering(const vmc_elf_obj_t *l, uintptr_t a);
/* Free what the object holds in the loader's memory (after vmc__elf_unmap). */
void vmc__elf_free(vmc_elf_obj_t *l);
/* image.c: after vmc__elf_unmap, 1 if what a load of l's file checked and
 * read (the headers, the tables' copy and everything found in it, DT_FINI's
 * bytes) may stay in l as it is, for a later load of the same unchanged
 * file to take over (vmc_src_t.kept) without reading or checking any of it
 * again; 0 when that cannot be (loaded from memory, or a table read in the
 * image: those pointers would not outlive it).  A kept l not taken is
 * freed with vmc__elf_free. */
int vmc__elf_keep(const vmc_elf_obj_t *l);
/* bind.c: resolve symbol `symidx` of l for a relocation: its address,
 * whether it is an IFUNC whose resolver is still to be called (*ifunc), 0
 * for an undefined weak; sets l->bound_from.  The relocation is entry
 * `index` of table `tag` ("DT_RELA"), for messages only. */
int vmc__elf_bind(vmc_elf_obj_t *l, size_t symidx, uintptr_t *value, int *ifunc, const char *tag,
                  size_t index);

/* ---- check.c ----------------------------------------------------------- */
/* Validate the ELF header and the program header table.  `hdr` holds the
 * first `hdrlen` bytes of the file and `ph` the table itself (phnum entries,
 * or NULL to take it from hdr); e->load has room for every non-empty
 * PT_LOAD of it, up to VMC_ELF_MAX_LOADS.  -ENOEXEC (malformed) or -ENOTSUP (a valid
 * feature this loader does not take) with a message. */
int vmc__elf_check_ehdr(const char *name, const uint8_t *hdr, size_t hdrlen, uint64_t file_size,
                        uint64_t *phoff, unsigned *phnum);
int vmc__elf_check_phdrs(vmc_elf_t *e, const Elf64_Phdr *ph);
/* The PT_LOAD that holds [vaddr, vaddr+size) in its file-backed part (or its
 * memory part with `mem`), or NULL. */
const vmc_seg_t *vmc__elf_seg(const vmc_elf_t *e, uint64_t vaddr, uint64_t size, int mem);
/* File offset of a file-backed virtual address (for messages). */
uint64_t vmc__elf_offset(const vmc_elf_t *e, uint64_t vaddr);

/* ---- map.c ------------------------------------------------------------- */
/* Take a run and map every PT_LOAD over it (RELRO stays writable).  On
 * failure nothing is left: the run is given back. */
int vmc__elf_map(vmc_elf_obj_t *l, const vmc_src_t *src);
/* Make PT_GNU_RELRO read-only. */
int vmc__elf_protect_relro(vmc_elf_obj_t *l);
/* Give the run back (re-reserving it PROT_NONE). */
int vmc__elf_unmap(vmc_elf_obj_t *l);

/* ---- dyn.c ------------------------------------------------------------- */
/* Read and check the dynamic section and the tables it points to (from
 * src's file where it has one, see vmc_elf_obj_t.snap). */
int vmc__elf_dyn(vmc_elf_obj_t *l, vmc_src_t *src);
/* dyn.c: when the first PT_LOAD could hold the dynamic tables (read-only,
 * starting the file, small enough to copy), read the rest of its file part
 * into src->head, before anything is mapped or allocated after it (so the
 * buffer grows in place): the tables' copy is then that buffer. */
int vmc__elf_read_head(vmc_elf_obj_t *l, vmc_src_t *src);
/* Pointer to [vaddr, vaddr+size) of the image if it lies in the file-backed
 * part of one PT_LOAD, else NULL. */
const void *vmc__elf_ptr(const vmc_elf_obj_t *l, uint64_t vaddr, uint64_t size);
/* Find a definition of `name` exported by l, matching `ver` (NULL: the
 * default version).  Returns the symbol or NULL. */
const Elf64_Sym *vmc__elf_lookup(const vmc_elf_obj_t *l, const vmc_name_t *name, const vmc_ver_t *ver);
/* Does symbol i of l define `name` in version `ver` (NULL: the default)? */
int vmc__elf_defines(const vmc_elf_obj_t *l, size_t i, const char *name, const vmc_ver_t *ver);
/* The version a symbol of l carries (its versym index), or NULL. */
const vmc_ver_t *vmc__elf_sym_version(const vmc_elf_obj_t *l, size_t symidx);
uint32_t vmc__elf_hash(const char *name);
/* Is the ELF hash of version v's name 0 (dlvsym cannot look it up)?  Found
 * when the tables are read for VERNEED's versions, which references ask
 * for; for a VERDEF one (a library's own, seldom asked for by a reference
 * of its own) only when asked: a library defines many and hashing each
 * name at every first load is 3 % of libz's. */
static inline int vmc__elf_ver_hash0(const vmc_ver_t *v)
{
    return v->defined ? vmc__elf_hash(v->name) == 0 : v->hash0;
}
const char *vmc__elf_str(const vmc_elf_obj_t *l, uint32_t off);

/* ---- reloc.c ----------------------------------------------------------- */
/* Apply DT_RELR, DT_RELA and DT_JMPREL (IFUNC ones last). */
int vmc__elf_relocate(vmc_elf_obj_t *l);

static inline uintptr_t vmc__elf_sym_addr(const vmc_elf_obj_t *l, const Elf64_Sym *s)
{
    return s->st_shndx == SHN_ABS ? s->st_value : l->bias + s->st_value;
}

static inline int vmc__elf_find(const vmc_elf_obj_t *l, const vmc_name_t *name, const vmc_ver_t *ver,
                                uintptr_t *value, int *ifunc)
{
    const Elf64_Sym *s = vmc__elf_lookup(l, name, ver);
    if (!s) return 0;
    *value = vmc__elf_sym_addr(l, s);
    *ifunc = ELF64_ST_TYPE(s->st_info) == STT_GNU_IFUNC;
    return 1;
}
#endif
