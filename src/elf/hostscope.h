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
    int hash_ok;                 /* hash is name's (1), is not (2), not yet
                                    known (0): worked out at the first
                                    look-up that names the version (atomic) */
} vmc_hver_t;

/* One host object's dynamic tables, read from memory the system loader
 * mapped (and may have relocated in place).  What a look-up that misses
 * reads comes first, in the struct's first cache line. */
typedef struct vmc_hobj {
    const uint64_t *g_bloom;     /* DT_GNU_HASH, or NULL                    */
    uint32_t g_bloom_mask, g_shift, g_nbuckets, g_symoffset;
    const uint32_t *g_buckets, *g_chain;   /* g_chain indexed by symbol    */
    /* Indices below these lie in the object's span: g_chain's (from
     * g_symoffset), the symbols' and DT_VERSYM's.  Capped at UINT32_MAX,
     * above every index a hash table holds but the largest, which is then
     * left to the system loader (VMC_HFIND_UNSURE) like one outside. */
    uint32_t g_chain_end, nsym_in, nversym_in;
    uint8_t index_on_use;        /* build vers at the first version asked   */
    uint8_t filter;              /* DT_FILTER or DT_AUXILIARY: another
                                    object answers for it first             */
    const uint32_t *hash;        /* DT_HASH: nbucket, nchain, buckets, chain */
    const ElfW(Sym) *symtab;
    const char *strtab;
    size_t strsz;
    uintptr_t lo, hi;            /* span of its PT_LOADs, as mapped         */
    uintptr_t base;              /* dlpi_addr: what st_value is relative to */
    const uint16_t *versym;      /* DT_VERSYM, or NULL                      */
    const ElfW(Verdef) *verdef;
    size_t nverdef;
    const ElfW(Verneed) *verneed;
    size_t nverneed;
    vmc_hver_t *vers;            /* by index (vmc__hobj_versions), or NULL: */
    size_t nvers;                /*   the version lists are walked instead  */
    const char *path;            /* dlpi_name                               */
    const ElfW(Dyn) *dyn;        /* PT_DYNAMIC                              */
    const char *soname;          /* DT_SONAME, or NULL                      */
    const ElfW(Dyn) *needed, *needed_end;   /* the dynamic entries from the
                                    first DT_NEEDED to the last (or NULL)   */
} vmc_hobj_t;

/* What is asked for. */
typedef struct vmc_hquery {
    const char *name;
    uint32_t gnu;                /* DT_GNU_HASH hash of name                */
    uint32_t elf;                /* DT_HASH hash of name, if have_elf       */
    int have_elf;
    const char *version;         /* NULL: the default version, as dlsym     */
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

/* 0 if o's DT_GNU_HASH bloom filter says it has no symbol of GNU hash h
 * (vmc__hobj_find would answer VMC_HFIND_NONE), else 1.  Inline: a search
 * of the host scope asks it of every object the name is not in. */
static inline int vmc__hobj_may_have(const vmc_hobj_t *o, uint32_t h)
{
    if (!o->g_bloom) return 1;
    uint64_t word = o->g_bloom[(h / 64) & o->g_bloom_mask];
    /* the second bit's shift as the system loader's 64-bit arithmetic has
     * it on x86-64, for any shift count a file gives */
    return (word >> (h % 64)) & (word >> (((uint64_t)h >> (o->g_shift & 63)) % 64)) & 1;
}

#endif
