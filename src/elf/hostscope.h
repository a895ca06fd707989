/* Symbols of the host's own objects (those the system loader mapped),
 * looked up through their hash tables with the system loader's matching
 * rules.  Which objects, in what order, and what to do when this cannot
 * decide, is lib/hostsym.c's business.
 */
#ifndef VMC_HOSTSCOPE_H
#define VMC_HOSTSCOPE_H

#include <elf.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>

/* A version index's meaning in a host object (VERDEF or VERNEED). */
typedef struct vmc_hver {
    const char *name;            /* NULL: none (index 0, 1, the base)       */
    uint32_t hash;               /* its ELF hash as the file stores it      */
} vmc_hver_t;

/* One host object's dynamic tables, read from memory the system loader
 * mapped (and may have relocated in place). */
typedef struct vmc_hobj {
    const char *path;            /* dlpi_name                               */
    uintptr_t base;              /* dlpi_addr: what st_value is relative to */
    uintptr_t lo, hi;            /* span of its PT_LOADs, as mapped         */
    const ElfW(Dyn) *dyn;        /* PT_DYNAMIC                              */
    const char *strtab;
    size_t strsz;
    const ElfW(Sym) *symtab;
    const uint32_t *hash;        /* DT_HASH: nbucket, nchain, buckets, chain */
    uint32_t g_nbuckets, g_symoffset, g_bloom_mask, g_shift;   /* DT_GNU_HASH */
    const uint64_t *g_bloom;
    const uint32_t *g_buckets, *g_chain;   /* g_chain indexed by symbol    */
    const uint16_t *versym;      /* DT_VERSYM, or NULL                      */
    const ElfW(Verdef) *verdef;
    size_t nverdef;
    const ElfW(Verneed) *verneed;
    size_t nverneed;
    vmc_hver_t *vers;            /* by index (vmc__hobj_versions), or NULL: */
    size_t nvers;                /*   the version lists are walked instead  */
    int index_on_use;            /* build vers at the first version asked   */
    const char *soname;          /* DT_SONAME, or NULL                      */
    const ElfW(Dyn) *needed, *needed_end;   /* the dynamic entries from the
                                    first DT_NEEDED to the last (or NULL)   */
    int filter;                  /* DT_FILTER or DT_AUXILIARY: another
                                    object answers for it first             */
} vmc_hobj_t;

/* What is asked for. */
typedef struct vmc_hquery {
    const char *name;
    uint32_t gnu;                /* DT_GNU_HASH hash of name                */
    uint32_t elf;                /* DT_HASH hash of name, if have_elf       */
    int have_elf;
    const char *version;         /* NULL: the default version, as dlsym     */
    uint32_t vhash;              /* ELF hash of version                     */
    int exact;                   /* the version exactly, as dlvsym; else as a
                                    relocation binds: a definition without a
                                    version answers too                     */
} vmc_hquery_t;

enum vmc_hfind {
    VMC_HFIND_NONE,              /* the object has no matching definition   */
    VMC_HFIND_FOUND,             /* this is the system loader's answer      */
    VMC_HFIND_UNSURE,            /* a definition the caller must ask the
                                    system loader about (see hostscope.c)   */
};

/* Read the tables of the object dl_iterate_phdr described.  -ENOEXEC if
 * they cannot be found or do not lie in the object's mapped span. */
int vmc__hobj_read(vmc_hobj_t *o, const struct dl_phdr_info *info);
/* Index the object's versions (o->vers, freed by the caller); -ENOMEM or
 * -ENOEXEC (the lists leave the object) leave o->vers NULL.  With
 * index_on_use set, vmc__hobj_find does this itself, once, under a lock. */
int vmc__hobj_versions(vmc_hobj_t *o);
/* Look q up in o: enum vmc_hfind; with VMC_HFIND_FOUND, *sym is the
 * definition and *addr its address (an IFUNC's resolver, not yet called). */
int vmc__hobj_find(const vmc_hobj_t *o, vmc_hquery_t *q, const ElfW(Sym) **sym, uintptr_t *addr);

#endif
