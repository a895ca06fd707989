/* Blocks in glibc's static TLS for private modules (initial-exec TLS).
 *
 * Initial-exec code reads a variable at a fixed offset from the thread
 * pointer, the same in every thread, so its block must sit in the static
 * TLS area glibc lays out below each thread's TCB.  glibc hands out room
 * there (its surplus, about 1,600 bytes by default) only to objects it
 * loads itself, and has no interface to allocate from it.  So vmcode makes
 * glibc load one: a tiny shared object, written into a memory file, whose
 * PT_TLS mirrors the private library's (size, alignment, and the relocated
 * .tdata as its image) and which carries one static-TLS (TPOFF64) relocation
 * against its own block.  glibc must then give it static TLS, initialise
 * the block in every existing thread from the image, do the same for every
 * thread created later, and free it (and reclaim the room when it is the
 * last one) at dlclose.  The relocated word says where the block is:
 * thread pointer + that value.
 *
 * It is opened by the OS layer's path for the descriptor (vmc__os_fd_path:
 * one a debugger can open too, since it reads the names in the link map
 * from its own process).  When the surplus has no room, dlopen says so ("cannot allocate
 * memory in static TLS block"); the caller refuses with -ENOTSUP naming the
 * size and the tunable that enlarges the surplus at process start.
 *
 * The object's layout (one read-write PT_LOAD from offset 0, vaddr 0):
 * ELF header, program headers (LOAD, DYNAMIC, TLS, GNU_STACK), the null
 * symbol, the string table, a one-bucket DT_HASH, the relocation, the
 * relocated word, the dynamic section, then the image at an offset
 * congruent to the private library's p_vaddr modulo p_align, so the block
 * keeps the alignment of every variable in it.
 */
#include "lib/tls.h"
#include "base/attrs.h"
#include "arch/reloc.h"
#include "base/error.h"
#include "os/os.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { NPH = 4, NDYN = 11 };

typedef struct layout {
    Elf64_Ehdr eh;
    Elf64_Phdr ph[NPH];
    Elf64_Sym sym[1];
    char str[32];
    uint32_t hash[4];            /* nbucket 1, nchain 1, bucket, chain    */
    Elf64_Rela rela[1];
    uint64_t word;               /* TPOFF64 of the block: where it is     */
    Elf64_Dyn dyn[NDYN];
} layout_t;

static const char soname[] = "vmcode-static-tls";

int vmc__tls_static_new(const char *name, const vmc_tls_image_t *img, void **handle, int64_t *tpoff)
{
    uint64_t align = img->align ? img->align : 1;
    uint64_t t = sizeof(layout_t);
    t += (img->vaddr - t) & (align - 1);          /* t = vaddr (mod align) */
    size_t size = (size_t)(t + img->filesz);
    uint8_t *b = calloc(1, size);
    if (!b) return vmc__fail(-ENOMEM, "%s: out of memory for its static TLS object", name);
    layout_t *L = (layout_t *)b;
    memcpy(L->eh.e_ident, ELFMAG, SELFMAG);
    L->eh.e_ident[EI_CLASS] = ELFCLASS64;
    L->eh.e_ident[EI_DATA] = ELFDATA2LSB;
    L->eh.e_ident[EI_VERSION] = EV_CURRENT;
    L->eh.e_type = ET_DYN;
    L->eh.e_machine = (Elf64_Half)vmc__arch_elf_machine();
    L->eh.e_version = EV_CURRENT;
    L->eh.e_phoff = offsetof(layout_t, ph);
    L->eh.e_ehsize = sizeof L->eh;
    L->eh.e_phentsize = sizeof(Elf64_Phdr);
    L->eh.e_phnum = NPH;
    L->ph[0] = (Elf64_Phdr){PT_LOAD, PF_R | PF_W, 0, 0, 0, size, size, 0x1000};
    L->ph[1] = (Elf64_Phdr){PT_DYNAMIC, PF_R | PF_W, offsetof(layout_t, dyn), offsetof(layout_t, dyn),
                            offsetof(layout_t, dyn), sizeof L->dyn, sizeof L->dyn, 8};
    L->ph[2] = (Elf64_Phdr){PT_TLS, PF_R, t, t, t, img->filesz, img->memsz, align};
    L->ph[3] = (Elf64_Phdr){PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 0, 16};
    memcpy(L->str + 1, soname, sizeof soname);
    L->hash[0] = 1;                                /* one empty bucket, one chain: the null symbol */
    L->hash[1] = 1;
    L->rela[0] = (Elf64_Rela){offsetof(layout_t, word), ELF64_R_INFO(0, vmc__arch_elf_tpoff_type()), 0};
    const Elf64_Dyn dyn[NDYN] = {
        {DT_HASH, {offsetof(layout_t, hash)}},
        {DT_STRTAB, {offsetof(layout_t, str)}},
        {DT_SYMTAB, {offsetof(layout_t, sym)}},
        {DT_STRSZ, {sizeof L->str}},
        {DT_SYMENT, {sizeof(Elf64_Sym)}},
        {DT_RELA, {offsetof(layout_t, rela)}},
        {DT_RELASZ, {sizeof L->rela}},
        {DT_RELAENT, {sizeof(Elf64_Rela)}},
        {DT_SONAME, {1}},
        {DT_FLAGS, {DF_STATIC_TLS | DF_BIND_NOW}},
        {DT_NULL, {0}},
    };
    memcpy(L->dyn, dyn, sizeof dyn);
    memcpy(b + t, img->init, (size_t)img->filesz);

    int fd, e = vmc__os_memfd_create(soname, MFD_CLOEXEC, &fd);
    if (e) {
        free(b);
        return vmc__fail(e, "%s: static TLS object: memfd_create: %s", name, strerror(-e));
    }
    e = vmc__os_pwrite(fd, b, size, 0);
    free(b);
    if (e) {
        vmc__os_close(fd);
        return vmc__fail(e, "%s: static TLS object: write: %s", name, strerror(-e));
    }
    char path[64];
    if ((e = vmc__os_fd_path(fd, path, sizeof path))) {
        vmc__os_close(fd);
        return vmc__fail(e, "%s: static TLS object: no path to its memory file: %s", name, strerror(-e));
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    vmc__os_close(fd);  /* the mapping holds the file */
    if (!h) {
        const char *why = dlerror();
        if (why && strstr(why, "static TLS"))
            return vmc__fail(-ENOTSUP, "%s: initial-exec TLS: its %lu-byte block (alignment %lu) does not fit in "
                             "the C library's static TLS surplus; start the process with "
                             "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=BYTES to enlarge it", name,
                             (unsigned long)img->memsz, (unsigned long)align);
        return vmc__fail(-ENOTSUP, "%s: initial-exec TLS: the C library refused its static TLS object: %s", name,
                         why ? why : "(no reason given)");
    }
    struct link_map *lm = NULL;
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm) || !lm) {
        dlclose(h);
        return vmc__fail(-ENOTSUP, "%s: initial-exec TLS: no link map for its static TLS object", name);
    }
    int64_t off;
    memcpy(&off, (const uint8_t *)lm->l_addr + offsetof(layout_t, word), sizeof off);
    *handle = h;
    *tpoff = off;
    return 0;
}

VMC_LOAD_PATH void vmc__tls_static_free(void *handle)
{
    if (handle) dlclose(handle);
}
