/* Mapping an image over a piece of the code region.
 *
 * The block layer hands out a run the size of the image's page-rounded span;
 * each PT_LOAD is then put over its part of the run with MAP_FIXED, so the
 * range never stops being ours: the holes between segments stay the run's
 * PROT_NONE reservation, and giving the run back re-reserves all of it
 * PROT_NONE (never munmap inside a region).
 *
 * From a file, a segment's file pages are mapped privately from the
 * descriptor, never a whole page past the end of the file (touching one
 * would raise SIGBUS): validation guaranteed p_offset + p_filesz <= size, and
 * only the pages holding those bytes are file-backed.  The tail of the last
 * file page of a segment with bss is zeroed (making it writable for that
 * moment if the segment is not), and the rest of the bss is anonymous.
 *
 * A small writable segment (up to POPULATE_MAX of file pages: most
 * libraries' are, docs/loader.md counts them) is mapped with MAP_POPULATE,
 * which for a private writable mapping makes every page a private copy
 * inside the mmap call.  Relocation writes nearly every page of such a
 * segment (GOT, .data.rel.ro), and the first write to each page of a
 * private file mapping is otherwise a copy-on-write fault, a few
 * microseconds each on a virtual machine (bench_load measures one);
 * reading the dynamic section first makes it two faults for that page
 * (docs/loader.md, "Cost").  A large writable segment (data tables) is not
 * populated: most of its pages are never written.  From
 * memory, each segment is an anonymous mapping the bytes are copied into.
 * Both end with the segment's own protection; PT_GNU_RELRO is made
 * read-only after relocation (vmc__elf_protect_relro).
 */
#include "elf/elf.h"
#include "base/attrs.h"
#include "base/error.h"
#include "os/os.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

static int seg_prot(uint32_t flags)
{
    return ((flags & PF_R) ? PROT_READ : 0) | ((flags & PF_W) ? PROT_WRITE : 0) |
           ((flags & PF_X) ? PROT_EXEC : 0);
}

static int map_fail(vmc_elf_obj_t *l, const vmc_seg_t *s, const char *call, int err)
{
    return vmc__fail(err, "%s: program header %u (offset 0x%lx+0x%lx): cannot map the segment: %s: %s%s",
                     l->name, s->index, (unsigned long)l->elf.phoff,
                     (unsigned long)(s->index * sizeof(Elf64_Phdr)), call, strerror(-err),
                     vmc__os_enomem_hint(err));
}

/* A writable segment up to this many bytes of file pages is populated. */
#define POPULATE_MAX (64 * 1024)

static int map_from_file(vmc_elf_obj_t *l, const vmc_seg_t *s, int fd, size_t page)
{
    uintptr_t pmask = ~(uintptr_t)(page - 1);
    uintptr_t start = (l->bias + s->vaddr) & pmask;
    uintptr_t fend = l->bias + s->vaddr + s->filesz;
    uintptr_t fend_page = (fend + page - 1) & pmask;
    uintptr_t mend_page = (l->bias + s->vaddr + s->memsz + page - 1) & pmask;
    int prot = seg_prot(s->flags);
    void *p;
    int e;
    if (s->filesz) {
        int zero = s->memsz > s->filesz && (fend & (page - 1));
        int populate = (prot & PROT_WRITE) && fend_page - start <= POPULATE_MAX ? MAP_POPULATE : 0;
        e = vmc__os_mmap((void *)start, fend_page - start, prot | (zero ? PROT_WRITE : 0),
                         MAP_PRIVATE | MAP_FIXED | populate, fd, (off_t)(s->offset & pmask), &p);
        if (e) return map_fail(l, s, "mmap", e);
        if (zero) {
            memset((void *)fend, 0, fend_page - fend);
            if (!(prot & PROT_WRITE)) {
                e = vmc__os_mprotect((void *)(fend_page - page), page, prot);
                if (e) return map_fail(l, s, "mprotect", e);
            }
        }
    } else {
        fend_page = start;
    }
    if (mend_page > fend_page) {
        e = vmc__os_mmap((void *)fend_page, mend_page - fend_page, prot,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0, &p);
        if (e) return map_fail(l, s, "mmap", e);
    }
    return 0;
}

/* Segments i.. that can share one file mapping with segment i: not
 * writable, no bss, the same protection, each starting on the page after
 * the last one ends, at the same distance from its file offset.  Returns
 * one past the last (i + 1 if none can).
 *
 * The same protection, because each segment must be mapped from the file
 * with its final protection by the mmap itself: valgrind reads a library's
 * symbols only when it sees such a mapping of each segment (a read-only
 * mapping of headers, text and rodata whose text is made executable
 * afterwards, or an executable one made read-only in part, stays "???" in
 * its reports: valgrind 3.19, checked here).  An mmap over part of the
 * reservation costs several times an mprotect (a new VMA, the file's
 * mapping tree), so the usual R / R+X / R layout costs one mmap more than
 * a shared mapping made R+X by mprotect would. */
static int shared_mapping_end(const vmc_elf_obj_t *l, int i, size_t page)
{
    uint64_t pmask = ~(uint64_t)(page - 1);
    int j = i;
    for (; j < l->elf.nload; j++) {
        const vmc_seg_t *s = &l->elf.load[j];
        if ((s->flags & PF_W) || !s->filesz || s->filesz != s->memsz) break;
        if (seg_prot(s->flags) != seg_prot(l->elf.load[i].flags)) break;
        if (j > i) {
            const vmc_seg_t *p = &l->elf.load[j - 1];
            uint64_t p_end = (p->vaddr + p->filesz + page - 1) & pmask;
            if ((s->vaddr & pmask) != p_end || s->vaddr - p->vaddr != s->offset - p->offset) break;
        }
    }
    return j > i ? j : i + 1;
}

/* Segments [i, j) of shared_mapping_end, all of one protection: one mmap. */
static int map_shared(vmc_elf_obj_t *l, int i, int j, int fd, size_t page)
{
    uintptr_t pmask = ~(uintptr_t)(page - 1);
    const vmc_seg_t *first = &l->elf.load[i], *last = &l->elf.load[j - 1];
    uintptr_t start = (l->bias + first->vaddr) & pmask;
    uintptr_t end = (l->bias + last->vaddr + last->filesz + page - 1) & pmask;
    void *p;
    int e = vmc__os_mmap((void *)start, end - start, seg_prot(first->flags), MAP_PRIVATE | MAP_FIXED, fd,
                         (off_t)(first->offset & pmask), &p);
    return e ? map_fail(l, first, "mmap", e) : 0;
}

static int map_from_memory(vmc_elf_obj_t *l, const vmc_seg_t *s, const uint8_t *bytes, size_t page)
{
    uintptr_t pmask = ~(uintptr_t)(page - 1);
    uintptr_t start = (l->bias + s->vaddr) & pmask;
    uintptr_t mend_page = (l->bias + s->vaddr + s->memsz + page - 1) & pmask;
    int prot = seg_prot(s->flags);
    void *p;
    int e = vmc__os_mmap((void *)start, mend_page - start, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0, &p);
    if (e) return map_fail(l, s, "mmap", e);
    uint64_t from = s->offset & pmask;
    memcpy((void *)start, bytes + from, s->offset + s->filesz - from);
    if (prot != (PROT_READ | PROT_WRITE)) {
        e = vmc__os_mprotect((void *)start, mend_page - start, prot);
        if (e) return map_fail(l, s, "mprotect", e);
    }
    return 0;
}

VMC_LOAD_PATH int vmc__elf_map(vmc_elf_obj_t *l, const vmc_src_t *src)
{
    vmc_space_t *sp = l->sp;
    size_t page = vmc__os_page_size();
    size_t span = l->elf.hi - l->elf.lo;
    uintptr_t run;
    int e = vmc__blocks_take(vmc__blocks_of(sp, &sp->code), span, l->elf.align, 0, 0, 1,
                             VMC_OWNER_LIBRARY, l, &run);
    if (e) return vmc__fail_wrap(e, "%s: no room for its 0x%zx-byte image in the code region", l->name, span);
    l->run = run;
    l->run_len = span;
    l->bias = run - l->elf.lo;
    for (int i = 0, j; i < l->elf.nload; i = j) {
        const vmc_seg_t *s = &l->elf.load[i];
        j = src->fd >= 0 ? shared_mapping_end(l, i, page) : i + 1;
        e = j > i + 1 ? map_shared(l, i, j, src->fd, page)
            : src->fd >= 0 ? map_from_file(l, s, src->fd, page) : map_from_memory(l, s, src->bytes, page);
        if (e) {
            vmc__elf_unmap(l);
            return e;
        }
    }
    /* bookkeeping only: counts the image as committed code */
    vmc__blocks_mapped(vmc__blocks_of(sp, &sp->code), run, span, VMC_CODE);
    vmc__blocks_set_name(vmc__blocks_of(sp, &sp->code), run, l->name);  /* for maps and dumps */
    return 0;
}

VMC_LOAD_PATH int vmc__elf_protect_relro(vmc_elf_obj_t *l)
{
    if (!l->elf.relro_size) return 0;
    size_t page = vmc__os_page_size();
    uintptr_t pmask = ~(uintptr_t)(page - 1);
    uintptr_t start = (l->bias + l->elf.relro_vaddr) & pmask;
    uintptr_t end = (l->bias + l->elf.relro_vaddr + l->elf.relro_size) & pmask;
    if (end <= start) return 0;
    int e = vmc__os_mprotect((void *)start, end - start, PROT_READ);
    if (e)
        return vmc__fail(e, "%s: PT_GNU_RELRO 0x%lx+0x%lx: mprotect: %s", l->name,
                         (unsigned long)l->elf.relro_vaddr, (unsigned long)l->elf.relro_size,
                         strerror(-e));
    return 0;
}

VMC_LOAD_PATH int vmc__elf_unmap(vmc_elf_obj_t *l)
{
    if (!l->run) return 0;
    vmc_space_t *sp = l->sp;
    /* The image is dead either way (a failed load, or destructors ran): if
     * the range cannot be re-reserved now it is made inaccessible and
     * re-reserved later (vmc__blocks_abandon). */
    int e = vmc__blocks_abandon(vmc__blocks_of(sp, &sp->code), l->run);
    l->run = 0;
    return e;
}
