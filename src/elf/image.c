/* One ELF object's life as the lifecycle drives it: read and map it
 * (vmc__elf_load), read what its dynamic section names (vmc__elf_dynamic,
 * the last step that reads the file), make it ready to run once its whole
 * group is mapped (vmc__elf_ready), run its constructors and destructors, find its exports,
 * describe it.  The lifecycle (src/lib/) decides when; this file knows how
 * for ELF.
 */
#include "elf/elf.h"
#include "base/attrs.h"
#include "base/error.h"
#include "os/os.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

extern char **environ;

/* After a copy of the record: its segments where the copy holds them. */
static void seg_moved(vmc_elf_t *to, const vmc_elf_t *from)
{
    if (from->load == from->load_in) to->load = to->load_in;
}

/* Is p inside the tables' copy? */
static int in_snap(const vmc_elf_obj_t *l, const void *p)
{
    const uint8_t *b = p;
    return b && b >= l->snap && b < l->snap + l->snap_len;
}

VMC_LOAD_PATH int vmc__elf_keep(const vmc_elf_obj_t *l)
{
    /* Every table this layer trusts after checking it once, in the copy:
     * vmc__elf_ptr gives a range wholly in the copy or wholly in the image,
     * so where a table starts says where all of it is.  The dynamic section
     * itself is in the image and found there again.  It stays where it
     * is, in the record: an unload allocates and copies nothing for it. */
    return l->checked && !l->run && l->snap && in_snap(l, l->strtab) && in_snap(l, l->symtab) &&
           (!l->versym || in_snap(l, l->versym)) && (!l->g_nbuckets || in_snap(l, l->g_bloom)) &&
           (!l->h_nbucket || in_snap(l, l->h_bucket));
}

/* Take over what an earlier load of these same bytes read and checked
 * (src->kept, that load's record, left with nothing of its own to free):
 * everything but what belongs to this load (its name, space, callbacks,
 * set before; its mapping and bindings, made after). */
static void take_kept(vmc_elf_obj_t *l, vmc_src_t *src)
{
    vmc_elf_obj_t *k = src->kept;
    vmc_elf_obj_t now = *l;
    src->kept = NULL;
    *l = *k;
    seg_moved(&l->elf, &k->elf);
    k->snap = k->snap_mem = NULL;   /* l's now */
    k->elf.load = NULL;
    k->elf.nload = 0;
    k->vers = NULL;
    k->binds = NULL;
    k->needed = NULL;
    l->name = l->elf.name = now.name;
    l->sp = now.sp;
    l->env = now.env;
    l->run = l->bias = 0;
    l->run_len = 0;
    l->dyn = NULL;   /* in the image: vmc__elf_dynamic */
    l->eh_frame = NULL;
    l->eh_unwinder = NULL;
    l->runtime_first = 0;
    memset(&l->counts, 0, sizeof l->counts);
    l->bound_from = 0;
    l->bound_obj = NULL;
    l->bound_final = 0;
    l->bound_hash = 0;
    l->reused = 1;   /* l->binds: the earlier load's bindings (reloc.c) */
}

/* Room in l->elf.load for the segments check.c will record from table ph:
 * its non-empty PT_LOADs (up to the most it takes; one more is refused
 * before it is recorded).  In the record itself when they fit, as in every
 * library here: a record with room for VMC_ELF_MAX_LOADS would be half
 * empty space, and an allocation here would come between the header's
 * buffer and the top of the heap, where it grows in place into the tables'
 * copy (vmc__elf_read_head). */
static int seg_room(vmc_elf_obj_t *l, const Elf64_Phdr *ph)
{
    size_t n = 0;
    for (unsigned i = 0; i < l->elf.phnum && n < VMC_ELF_MAX_LOADS; i++) {
        Elf64_Phdr p;
        memcpy(&p, &ph[i], sizeof p);
        n += p.p_type == PT_LOAD && p.p_memsz;
    }
    if (l->elf.load && l->elf.load != l->elf.load_in) free(l->elf.load);
    l->elf.load = n <= VMC_ELF_LOADS_IN ? l->elf.load_in : malloc(n * sizeof *l->elf.load);
    if (!l->elf.load) return vmc__fail(-ENOMEM, "%s: out of memory for its %zu segments", l->name, n);
    return 0;
}

static int check_phdrs(vmc_elf_obj_t *l, const Elf64_Phdr *ph)
{
    int e = seg_room(l, ph);
    return e ? e : vmc__elf_check_phdrs(&l->elf, ph);
}

VMC_LOAD_PATH int vmc__elf_load(vmc_elf_obj_t *l, vmc_src_t *src, const uint8_t *hdr, size_t hdrlen)
{
    if (src->kept) {
        take_kept(l, src);
        return vmc__elf_map(l, src);
    }
    int e = vmc__elf_check_ehdr(l->name, hdr, hdrlen, src->size, &l->elf.phoff, &l->elf.phnum);
    if (e) return e;
    l->elf.file_size = src->size;
    size_t phsize = l->elf.phnum * sizeof(Elf64_Phdr);
    if (l->elf.phoff + phsize <= hdrlen) {
        e = check_phdrs(l, (const Elf64_Phdr *)(hdr + l->elf.phoff));
    } else {
        size_t got;
        Elf64_Phdr *ph = malloc(phsize);
        if (!ph) return vmc__fail(-ENOMEM, "%s: out of memory for program headers", l->name);
        e = vmc__os_pread(src->fd, ph, phsize, (off_t)l->elf.phoff, &got);
        if (e) e = vmc__fail(e, "%s: reading program headers: %s", l->name, strerror(-e));
        else if (got != phsize) e = vmc__fail(-ENOEXEC, "%s: program headers: file shrank", l->name);
        else e = check_phdrs(l, ph);
        free(ph);
    }
    if (e || (e = vmc__elf_read_head(l, src))) return e;   /* hdr is stale from here */
    return vmc__elf_map(l, src);
}

/* ---- constructors and destructors ------------------------------------------- */

typedef void (*init_fn)(int, char **, char **);
typedef void (*fini_fn)(void);

VMC_LOAD_PATH static int fn_ok(vmc_elf_obj_t *l, uintptr_t f, const char *what, size_t i)
{
    if (f == 0 || f == UINTPTR_MAX) return 0;  /* empty slots, as glibc skips */
    if (vmc__elf_executable(l, f)) return 0;
    return vmc__fail(-ENOEXEC, "%s: %s[%zu] = 0x%lx is not inside an executable segment", l->name, what,
                     i, (unsigned long)(f - l->bias));
}

static const uintptr_t *array(vmc_elf_obj_t *l, uint64_t va, uint64_t size)
{
    return size ? vmc__elf_ptr(l, va, size) : NULL;
}

/* DT_FINI is, in nearly every library, crtn.o's empty function (sub $8,%rsp;
 * add $8,%rsp; ret; after endbr64 where CET is on) at the very end of the
 * text, on a page nothing else touches: calling it at unload costs a page
 * fault that maps up to 16 pages, to run three instructions that do
 * nothing.  Its bytes are read at load (from the file, or the memory
 * image); when they are exactly that, it is not called. */
static int note_empty_fini(vmc_elf_obj_t *l, const vmc_src_t *src)
{
    static const uint8_t empty[] = {0x48, 0x83, 0xec, 0x08, 0x48, 0x83, 0xc4, 0x08, 0xc3};
    static const uint8_t endbr64[] = {0xf3, 0x0f, 0x1e, 0xfa};
    uint8_t b[sizeof endbr64 + sizeof empty];
    const vmc_seg_t *s = l->fini ? vmc__elf_seg(&l->elf, l->fini, sizeof empty, 0) : NULL;
    if (!s) return 0;  /* none, or too near the end of its file bytes to be it: call it */
    uint64_t off = s->offset + (l->fini - s->vaddr);
    size_t want = s->offset + s->filesz - off < sizeof b ? (size_t)(s->offset + s->filesz - off) : sizeof b;
    size_t got = want;
    if (src->fd < 0) {
        memcpy(b, src->bytes + off, want);
    } else {
        int e = vmc__os_pread(src->fd, b, want, (off_t)off, &got);
        if (e) return vmc__fail(e, "%s: reading DT_FINI (offset 0x%lx): %s", l->name, (unsigned long)off,
                                strerror(-e));
    }
    size_t skip = got >= sizeof b && !memcmp(b, endbr64, sizeof endbr64) ? sizeof endbr64 : 0;
    l->fini_empty = got >= skip + sizeof empty && !memcmp(b + skip, empty, sizeof empty);
    return 0;
}

/* Every constructor and destructor address, before running any. */
static int check_init_fini(vmc_elf_obj_t *l)
{
    int e;
    const uintptr_t *a;
    if (l->init && (e = fn_ok(l, l->bias + l->init, "DT_INIT", 0))) return e;
    if (l->fini && (e = fn_ok(l, l->bias + l->fini, "DT_FINI", 0))) return e;
    if ((a = array(l, l->init_array, l->init_arraysz)))
        for (size_t i = 0; i < l->init_arraysz / 8; i++)
            if ((e = fn_ok(l, a[i], "DT_INIT_ARRAY", i))) return e;
    if ((a = array(l, l->fini_array, l->fini_arraysz)))
        for (size_t i = 0; i < l->fini_arraysz / 8; i++)
            if ((e = fn_ok(l, a[i], "DT_FINI_ARRAY", i))) return e;
    return 0;
}

VMC_LOAD_PATH int vmc__elf_dynamic(vmc_elf_obj_t *l, vmc_src_t *src)
{
    int e;
    if (l->reused) {
        /* all read and checked by the earlier load; the section is where
         * it was then, in this image */
        l->dyn = vmc__elf_ptr(l, l->elf.dyn_vaddr, l->elf.dyn_size);
        return 0;
    }
    if ((e = vmc__elf_dyn(l, src)) || (e = note_empty_fini(l, src)) || (e = vmc__elf_unwind_read(l, src)))
        return e;
    l->checked = 1;
    return 0;
}

VMC_LOAD_PATH int vmc__elf_ready(vmc_elf_obj_t *l)
{
    int e;
    if ((e = vmc__elf_relocate(l))) return e;
    if ((e = l->env->relocated(l))) return e;
    if ((e = vmc__elf_protect_relro(l))) return e;
    return check_init_fini(l);
}

VMC_LOAD_PATH void vmc__elf_init(vmc_elf_obj_t *l)
{
    if (l->init) ((init_fn)(l->bias + l->init))(0, NULL, environ);
    const uintptr_t *a = array(l, l->init_array, l->init_arraysz);
    for (size_t i = 0; a && i < l->init_arraysz / 8; i++)
        if (a[i] && a[i] != UINTPTR_MAX) ((init_fn)a[i])(0, NULL, environ);
}

VMC_LOAD_PATH void vmc__elf_fini(vmc_elf_obj_t *l)
{
    const uintptr_t *a = array(l, l->fini_array, l->fini_arraysz);
    for (size_t i = a ? l->fini_arraysz / 8 : 0; i-- > 0;)
        if (a[i] && a[i] != UINTPTR_MAX) ((fini_fn)a[i])();
    if (l->fini && !l->fini_empty) ((fini_fn)(l->bias + l->fini))();
}

/* ---- what it is ---------------------------------------------------------------- */

int vmc__elf_executable(const vmc_elf_obj_t *l, uintptr_t a)
{
    if (!l->run || a < l->bias) return 0;
    const vmc_seg_t *s = vmc__elf_seg(&l->elf, a - l->bias, 1, 1);
    return s && (s->flags & PF_X);
}

VMC_LOAD_PATH int vmc__elf_nodelete(const vmc_elf_obj_t *l) { return (l->dt_flags_1 & DF_1_NODELETE) != 0; }

VMC_LOAD_PATH const char *vmc__elf_needed(const vmc_elf_obj_t *l, size_t i) { return vmc__elf_str(l, l->needed[i]); }

_Static_assert(VMC_LIB_MAX_SEGMENTS >= VMC_ELF_MAX_LOADS, "vmc_lib_info reports every PT_LOAD");

void vmc__elf_info(const vmc_elf_obj_t *l, vmc_lib_info_t *out)
{
    out->base = (void *)l->run;
    out->size = l->run_len;
    out->bias = l->bias;
    for (int i = 0; i < l->elf.nload; i++) {
        const vmc_seg_t *sg = &l->elf.load[i];
        out->segments[i].start = (void *)(l->bias + sg->vaddr);
        out->segments[i].size = sg->memsz;
        out->segments[i].prot = (sg->flags & PF_R ? PROT_READ : 0) |
                                (sg->flags & PF_W ? PROT_WRITE : 0) | (sg->flags & PF_X ? PROT_EXEC : 0);
        out->nsegments++;
    }
    out->relocs_relative = l->counts.relative;
    out->relocs_symbolic = l->counts.symbolic;
    out->relocs_irelative = l->counts.irelative;
    out->relocs_relr = l->counts.relr;
    out->bound_self = l->counts.bound[VMC_BOUND_SELF];
    out->bound_private = l->counts.bound[VMC_BOUND_PRIVATE];
    out->bound_host = l->counts.bound[VMC_BOUND_HOST];
    out->bound_weak_zero = l->counts.bound[VMC_BOUND_WEAK_ZERO];
    out->tables_copied = l->snap ? (size_t)l->snap_len : 0;
}

VMC_LOAD_PATH void vmc__elf_free(vmc_elf_obj_t *l)
{
    free(l->snap_mem);
    if (l->elf.load != l->elf.load_in) free(l->elf.load);
    free(l->needed);
    free(l->vers);
    free(l->binds);
    l->elf.load = NULL;
    l->elf.nload = 0;
    l->snap_mem = l->snap = NULL;
    l->vers = NULL;
    l->binds = NULL;
    l->needed = NULL;
    l->nneeded = 0;
}
