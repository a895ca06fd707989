/* The loader against hostile input: libraries broken field by field from a
 * good one, truncated at many lengths, mutated at random, every OS call of
 * a load failing in turn, and the regression corpus in tests/elf-corpus.
 * Each is refused with its exact message, nothing crashes, nothing leaks. */
#include "test.h"
#include "vmcode.h"
#include "elfimg.h"
#include "os/os.h"

#include <dirent.h>
#include <sys/mman.h>
#include <unistd.h>

static vmc_t *open_region(void)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    return v;
}

/* "NAME" in `pattern` replaced by `name`. */
static void with_name(char *out, size_t len, const char *pattern, const char *name)
{
    const char *n = strstr(pattern, "NAME");
    ASSERT(n);
    snprintf(out, len, "%.*s%s%s", (int)(n - pattern), pattern, name, n + 4);
}

static char tmpdir[64];

/* Load m from memory (as "broken.so") and from a file; both must fail with
 * err and exactly the message `pattern` (NAME = the name or path). */
static void refused(vmc_t *v, const vt_img_t *m, int err, const char *pattern)
{
    char want[1024];
    vmc_lib_t *l = (vmc_lib_t *)1;
    int r = vmc_lib_load_mem(v, m->b, m->n, "broken.so", 0, &l);
    ASSERT_MSG(r == err, "from memory: %d (%s), expected %d: %s", r, vmc_strerror(r), err, vmc_last_error());
    ASSERT(l == NULL);
    with_name(want, sizeof want, pattern, "broken.so");
    ASSERT_STR_EQ(vmc_last_error(), want);
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/vmc-broken-XXXXXX");
        ASSERT(mkdtemp(tmpdir));
    }
    char path[128];
    snprintf(path, sizeof path, "%s/broken.so", tmpdir);
    ASSERT_OK(vt_img_write(m, path));
    r = vmc_lib_load(v, path, 0, &l);
    unlink(path);
    ASSERT_MSG(r == err, "from a file: %d (%s), expected %d: %s", r, vmc_strerror(r), err, vmc_last_error());
    with_name(want, sizeof want, pattern, path);
    ASSERT_STR_EQ(vmc_last_error(), want);
}

static void cleanup_tmpdir(void)
{
    if (tmpdir[0]) rmdir(tmpdir);
}

typedef struct ctx {
    vmc_t *v;
    vt_img_t good;
    vt_snapshot_t snap;
    uint64_t phoff;
    int l0, l1, l2, l3;     /* R, RX, R, RW PT_LOADs of libt_basic.so */
    int malloc_heavy;       /* the test grows the host look-up cache a lot */
} ctx_t;

static void setup(ctx_t *c)
{
    memset(c, 0, sizeof *c);
    ASSERT_OK(vt_img_read(vt_tlib("libt_basic.so"), &c->good));
    c->v = open_region();
    vmc_lib_t *l;  /* warm up: dlopen's caches, the block layer */
    ASSERT_OK(vmc_lib_load(c->v, vt_tlib("libt_basic.so"), 0, &l));
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT_OK(vmc_lib_load_mem(c->v, c->good.b, c->good.n, "good", 0, &l));
    ASSERT_OK(vmc_lib_unload(l));
    c->phoff = vt_ehdr(&c->good)->e_phoff;
    c->l0 = vt_phdr_find(&c->good, PT_LOAD, 0);
    c->l1 = vt_phdr_find(&c->good, PT_LOAD, 1);
    c->l2 = vt_phdr_find(&c->good, PT_LOAD, 2);
    c->l3 = vt_phdr_find(&c->good, PT_LOAD, 3);
    ASSERT(c->l3 > 0 && (vt_phdr(&c->good, c->l3)->p_flags & PF_W));
    ASSERT(vt_phdr(&c->good, c->l1)->p_flags & PF_X);
    vt_snap(&c->snap);
}

static void teardown(ctx_t *c)
{
    if (c->malloc_heavy && vt_sanitized()) {
        /* Thousands of distinct host look-ups grew the look-up cache, and a
         * sanitizer's allocator maps fresh memory for it where glibc's
         * would use the brk heap: check descriptors, and that the region is
         * one reservation again, instead of the whole map. */
        vt_snapshot_t now;
        vt_snap(&now);
        ASSERT_STR_EQ(now.fds, c->snap.fds);
        vt_snap_free(&now);
        vmc_info_t in;
        ASSERT_OK(vmc_info(c->v, &in));
        uintptr_t b = (uintptr_t)in.code_base;
        ASSERT(vt_maps_has(b, b + in.code_size, "---p"));
    } else {
        ASSERT_NO_LEAK(c->snap);
    }
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(c->v, &st));
    ASSERT_EQ(st.libraries, 0);
    vmc_close(c->v);
    vt_img_free(&c->good);
    cleanup_tmpdir();
}

/* "program header 3 (offset 0x40+0xa8): " */
static const char *ph(const ctx_t *c, int i)
{
    static char buf[4][96];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 96, "NAME: program header %d (offset 0x%lx+0x%lx): ", i, (unsigned long)c->phoff,
             (unsigned long)(i * sizeof(Elf64_Phdr)));
    return b;
}

static const char *dynent(const ctx_t *c, int64_t tag, const char *tname)
{
    static char buf[4][128];
    static int k;
    char *b = buf[k++ % 4];
    size_t i;
    ASSERT(vt_dyn(&c->good, tag, &i));
    snprintf(b, 128, "NAME: dynamic entry %zu %s (offset 0x%lx+0x%lx): ", i, tname,
             (unsigned long)vt_dyn_offset(&c->good), (unsigned long)(i * sizeof(Elf64_Dyn)));
    return b;
}

#define PATTERN(...) (snprintf(pat, sizeof pat, __VA_ARGS__), pat)

TEST(broken_elf_header_fields)
{
    ctx_t c;
    setup(&c);
    char pat[512];
    vt_img_t m;

    m = vt_img_copy(&c.good); m.b[0] = 0x7e;
    refused(c.v, &m, -ENOEXEC, "NAME: ELF header e_ident (offset 0x0): not an ELF file");
    vt_img_free(&m);
    m = vt_img_copy(&c.good); m.b[EI_CLASS] = ELFCLASS32;
    refused(c.v, &m, -ENOEXEC, "NAME: ELF header e_ident[EI_CLASS] (offset 0x4): class 1 is not ELFCLASS64");
    vt_img_free(&m);
    m = vt_img_copy(&c.good); m.b[EI_DATA] = ELFDATA2MSB;
    refused(c.v, &m, -ENOEXEC, "NAME: ELF header e_ident[EI_DATA] (offset 0x5): encoding 2 is not little-endian");
    vt_img_free(&m);
    m = vt_img_copy(&c.good); vt_ehdr(&m)->e_type = ET_EXEC;
    refused(c.v, &m, -ENOEXEC, "NAME: ELF header e_type (offset 0x10): type 2 is not ET_DYN");
    vt_img_free(&m);
    m = vt_img_copy(&c.good); vt_ehdr(&m)->e_machine = EM_AARCH64;
    refused(c.v, &m, -ENOEXEC, "NAME: ELF header e_machine (offset 0x12): machine 183 is not EM_X86_64");
    vt_img_free(&m);
    m = vt_img_copy(&c.good); vt_ehdr(&m)->e_phentsize = 32;
    refused(c.v, &m, -ENOEXEC, "NAME: ELF header e_phentsize (offset 0x36): 32 is not 56");
    vt_img_free(&m);
    m = vt_img_copy(&c.good); vt_ehdr(&m)->e_phnum = 0xffff;
    refused(c.v, &m, -ENOTSUP,
            "NAME: ELF header e_phnum (offset 0x38): 65535 program headers are not supported (at most 1170)");
    vt_img_free(&m);
    m = vt_img_copy(&c.good); vt_ehdr(&m)->e_phnum = 0;
    refused(c.v, &m, -ENOEXEC, "NAME: ELF header e_phnum (offset 0x38): no program headers");
    vt_img_free(&m);
    m = vt_img_copy(&c.good); vt_ehdr(&m)->e_phnum = 1000;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("NAME: ELF header e_phoff (offset 0x20): program header table 0x%lx+0xdac0 is past the "
                    "end of the file (0x%zx bytes)", (unsigned long)c.phoff, c.good.n));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); vt_ehdr(&m)->e_phoff = UINT64_MAX - 8;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("NAME: ELF header e_phoff (offset 0x20): program header table 0xfffffffffffffff7+0x%lx is "
                    "past the end of the file (0x%zx bytes)",
                    (unsigned long)(vt_ehdr(&c.good)->e_phnum * sizeof(Elf64_Phdr)), c.good.n));
    vt_img_free(&m);
    teardown(&c);
}

TEST(broken_program_headers)
{
    ctx_t c;
    setup(&c);
    char pat[512];
    vt_img_t m;
    Elf64_Phdr *p;

    m = vt_img_copy(&c.good); p = vt_phdr(&m, c.l3); p->p_offset += 0x100000;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%sp_offset 0x%lx + p_filesz 0x%lx is past the end of the file (0x%zx bytes)", ph(&c, c.l3),
                    (unsigned long)p->p_offset, (unsigned long)p->p_filesz, m.n));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, c.l3); p->p_filesz = UINT64_MAX - 0x10;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%sp_offset 0x%lx + p_filesz 0xffffffffffffffef is past the end of the file (0x%zx bytes)",
                    ph(&c, c.l3), (unsigned long)p->p_offset, m.n));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, c.l0); p->p_filesz = p->p_memsz + 8;
    refused(c.v, &m, -ENOEXEC, PATTERN("%sp_filesz 0x%lx > p_memsz 0x%lx", ph(&c, c.l0),
                                       (unsigned long)p->p_filesz, (unsigned long)p->p_memsz));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, c.l3); p->p_memsz = UINT64_MAX - 0x100;
    refused(c.v, &m, -ENOEXEC, PATTERN("%sp_vaddr 0x%lx + p_memsz 0xfffffffffffffeff is past the address space",
                                       ph(&c, c.l3), (unsigned long)p->p_vaddr));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, c.l1); p->p_align = 0x1001;
    refused(c.v, &m, -ENOEXEC, PATTERN("%sp_align 0x1001 is not a power of two", ph(&c, c.l1)));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, c.l1); p->p_offset += 0x10;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%sp_offset 0x%lx and p_vaddr 0x%lx are not congruent modulo p_align 0x1000", ph(&c, c.l1),
                    (unsigned long)p->p_offset, (unsigned long)p->p_vaddr));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, c.l1); p->p_offset += 0x10; p->p_align = 0x10;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%sp_offset 0x%lx and p_vaddr 0x%lx are not congruent modulo the page size 0x1000",
                    ph(&c, c.l1), (unsigned long)p->p_offset, (unsigned long)p->p_vaddr));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, c.l1); p->p_flags |= PF_W;
    refused(c.v, &m, -ENOTSUP,
            PATTERN("%sa writable and executable segment (p_flags 0x7) is not supported", ph(&c, c.l1)));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, c.l1);
    ASSERT((p->p_flags & PF_X) && (p->p_vaddr + p->p_filesz) % 0x1000);  /* text ends inside a page */
    p->p_memsz = p->p_filesz + 0x10;
    refused(c.v, &m, -ENOTSUP,
            PATTERN("%san executable segment with a zero-filled tail in its last file page (p_filesz 0x%lx, "
                    "p_memsz 0x%lx) is not supported: zeroing it would make the page writable and executable",
                    ph(&c, c.l1), (unsigned long)p->p_filesz, (unsigned long)p->p_memsz));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, c.l2); p->p_vaddr = 0; p->p_offset = 0;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%sPT_LOAD p_vaddr 0x0 is below the previous one's 0x%lx (not sorted)", ph(&c, c.l2),
                    (unsigned long)vt_phdr(&c.good, c.l1)->p_vaddr));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, c.l2); p->p_vaddr = vt_phdr(&m, c.l1)->p_vaddr;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%sPT_LOAD p_vaddr 0x%lx overlaps program header %d's pages (up to 0x%lx)", ph(&c, c.l2),
                    (unsigned long)p->p_vaddr, c.l1, (unsigned long)p->p_vaddr + 0x1000));
    vt_img_free(&m);
    int note = vt_phdr_find(&c.good, PT_NOTE, 0);
    ASSERT(note >= 0);
    vt_img_free(&m);
    int stack = vt_phdr_find(&c.good, PT_GNU_STACK, 0);
    ASSERT(stack >= 0);
    /* PT_TLS (the note's header made one: its bytes lie in the first PT_LOAD) */
    m = vt_img_copy(&c.good); p = vt_phdr(&m, note); p->p_type = PT_TLS; p->p_align = 3;
    refused(c.v, &m, -ENOEXEC, PATTERN("%sPT_TLS p_align 0x3 is not a power of two up to 0x10000", ph(&c, note)));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, note); p->p_type = PT_TLS; p->p_align = 0x20000;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%sPT_TLS p_align 0x20000 is not a power of two up to 0x10000", ph(&c, note)));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, note); p->p_type = PT_TLS; p->p_memsz = p->p_filesz - 1;
    refused(c.v, &m, -ENOEXEC, PATTERN("%sPT_TLS p_filesz 0x%lx > p_memsz 0x%lx", ph(&c, note),
                                       (unsigned long)p->p_filesz, (unsigned long)p->p_memsz));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, note); p->p_type = PT_TLS; p->p_memsz = (uint64_t)1 << 31;
    refused(c.v, &m, -ENOEXEC, PATTERN("%sPT_TLS p_memsz 0x80000000 is over the 0x40000000 bytes accepted",
                                       ph(&c, note)));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, note); p->p_type = PT_TLS; p->p_vaddr += 0x10000000;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%sPT_TLS 0x%lx+0x%lx (its .tdata) is not inside the file part of a readable PT_LOAD", ph(&c, note),
                    (unsigned long)p->p_vaddr, (unsigned long)p->p_filesz));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); p = vt_phdr(&m, note); p->p_type = PT_TLS; p->p_offset += 8;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%sPT_TLS 0x%lx+0x%lx (its .tdata) is not inside the file part of a readable PT_LOAD", ph(&c, note),
                    (unsigned long)p->p_vaddr, (unsigned long)p->p_filesz));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); vt_phdr(&m, note)->p_type = PT_TLS; *vt_phdr(&m, stack) = *vt_phdr(&m, note);
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%sa second PT_TLS (the first is program header %d)", ph(&c, note > stack ? note : stack),
                    note < stack ? note : stack));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); vt_phdr(&m, stack)->p_flags |= PF_X;
    refused(c.v, &m, -ENOTSUP,
            PATTERN("%san executable stack (PT_GNU_STACK with PF_X) is not supported", ph(&c, stack)));
    vt_img_free(&m);
    int dyn = vt_phdr_find(&c.good, PT_DYNAMIC, 0);
    m = vt_img_copy(&c.good); vt_phdr(&m, note)->p_type = PT_DYNAMIC;
    refused(c.v, &m, -ENOEXEC, PATTERN("%sa second PT_DYNAMIC", ph(&c, note > dyn ? note : dyn)));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); vt_phdr(&m, dyn)->p_type = PT_NULL;
    refused(c.v, &m, -ENOEXEC, PATTERN("NAME: program headers (offset 0x%lx): no PT_DYNAMIC segment",
                                       (unsigned long)c.phoff));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); vt_phdr(&m, dyn)->p_vaddr = 0x100000;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%sPT_DYNAMIC 0x100000+0x%lx is not inside the file part of a PT_LOAD", ph(&c, dyn),
                    (unsigned long)vt_phdr(&c.good, dyn)->p_filesz));
    vt_img_free(&m);
    m = vt_img_copy(&c.good);
    for (int i = 0; i < vt_ehdr(&m)->e_phnum; i++)
        if (vt_phdr(&m, i)->p_type == PT_LOAD) vt_phdr(&m, i)->p_type = PT_NULL;
    refused(c.v, &m, -ENOEXEC, PATTERN("NAME: program headers (offset 0x%lx): no PT_LOAD segment",
                                       (unsigned long)c.phoff));
    vt_img_free(&m);
    teardown(&c);
}

TEST(broken_dynamic_section)
{
    ctx_t c;
    setup(&c);
    char pat[512];
    vt_img_t m;
    Elf64_Dyn *d;

    m = vt_img_copy(&c.good); d = vt_dyn(&m, DT_FLAGS_1, NULL); d->d_tag = DT_TEXTREL;
    refused(c.v, &m, -ENOTSUP,
            PATTERN("%stext relocations (DT_TEXTREL) are not supported", dynent(&c, DT_FLAGS_1, "DT_TEXTREL")));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); d = vt_dyn(&m, DT_FLAGS, NULL); d->d_un.d_val |= DF_TEXTREL;
    refused(c.v, &m, -ENOTSUP,
            PATTERN("%stext relocations (DF_TEXTREL) are not supported", dynent(&c, DT_FLAGS, "DT_FLAGS")));
    vt_img_free(&m);
    /* DF_STATIC_TLS alone is no refusal: the TPOFF64 relocations decide */
    m = vt_img_copy(&c.good); d = vt_dyn(&m, DT_FLAGS, NULL); d->d_un.d_val |= DF_STATIC_TLS;
    {
        vmc_lib_t *l;
        ASSERT_OK(vmc_lib_load_mem(c.v, m.b, m.n, "static-tls.so", 0, &l));
        ASSERT_OK(vmc_lib_unload(l));
    }
    vt_img_free(&m);
    /* a position-independent executable: refused as the system loader refuses it */
    m = vt_img_copy(&c.good); d = vt_dyn(&m, DT_FLAGS_1, NULL); d->d_un.d_val |= DF_1_PIE;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%sDF_1_PIE: a position-independent executable cannot be loaded as a library",
                    dynent(&c, DT_FLAGS_1, "DT_FLAGS_1")));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); d = vt_dyn(&m, DT_FLAGS_1, NULL); d->d_tag = DT_FILTER;
    refused(c.v, &m, -ENOTSUP,
            PATTERN("%sfilters (DT_FILTER, DT_AUXILIARY) are not supported", dynent(&c, DT_FLAGS_1, "DT_FILTER")));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); d = vt_dyn(&m, DT_FLAGS_1, NULL); d->d_tag = DT_PREINIT_ARRAY;
    refused(c.v, &m, -ENOTSUP,
            PATTERN("%sDT_PREINIT_ARRAY (run before an executable's constructors) is not supported",
                    dynent(&c, DT_FLAGS_1, "DT_PREINIT_ARRAY")));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); d = vt_dyn(&m, DT_STRTAB, NULL); d->d_un.d_ptr = 0x100000;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%s0x100000+0x%lx is not inside the file part of a readable PT_LOAD",
                    dynent(&c, DT_STRTAB, "DT_STRTAB"), (unsigned long)vt_dyn(&c.good, DT_STRSZ, NULL)->d_un.d_val));
    vt_img_free(&m);
    /* a table checked once and trusted after, in a segment relocations write */
    m = vt_img_copy(&c.good); d = vt_dyn(&m, DT_STRTAB, NULL);
    d->d_un.d_ptr = vt_phdr(&m, vt_load_find(&m, PF_W, 0))->p_vaddr;
    vt_dyn(&m, DT_STRSZ, NULL)->d_un.d_val = 16;
    refused(c.v, &m, -ENOTSUP,
            PATTERN("%s0x%lx+0x10 is in a writable PT_LOAD, which is not supported (a relocation could change it "
                    "after it is checked)",
                    dynent(&c, DT_STRTAB, "DT_STRTAB"), (unsigned long)d->d_un.d_ptr));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); d = vt_dyn(&m, DT_SYMENT, NULL); d->d_un.d_val = 16;
    refused(c.v, &m, -ENOEXEC, PATTERN("%ssymbol size is not 24", dynent(&c, DT_SYMENT, "DT_SYMENT")));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); d = vt_dyn(&m, DT_RELASZ, NULL); d->d_un.d_val += 5;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%s0x%lx is not a multiple of 24", dynent(&c, DT_RELASZ, "DT_RELASZ"),
                    (unsigned long)d->d_un.d_val));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); d = vt_dyn(&m, DT_RELASZ, NULL); d->d_un.d_val = 24 * 100000;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%s0x%lx+0x249f00 is not inside the file part of a readable PT_LOAD",
                    dynent(&c, DT_RELA, "DT_RELA"), (unsigned long)vt_dyn(&c.good, DT_RELA, NULL)->d_un.d_ptr));
    vt_img_free(&m);

    /* GNU hash with zero buckets */
    uint64_t gh = vt_v2o(&c.good, vt_dyn(&c.good, DT_GNU_HASH, NULL)->d_un.d_ptr);
    m = vt_img_copy(&c.good); memset(m.b + gh, 0, 4);
    refused(c.v, &m, -ENOEXEC, PATTERN("NAME: DT_GNU_HASH (offset 0x%lx): nbuckets is 0", (unsigned long)gh));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); m.b[gh + 8] = 3; m.b[gh + 9] = m.b[gh + 10] = m.b[gh + 11] = 0;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("NAME: DT_GNU_HASH (offset 0x%lx+0x8): bloom size 3 is not a power of two", (unsigned long)gh));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); m.b[gh + 12] = 41; m.b[gh + 13] = m.b[gh + 14] = m.b[gh + 15] = 0;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("NAME: DT_GNU_HASH (offset 0x%lx+0xc): bloom shift 41 is not below 32", (unsigned long)gh));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); memset(m.b + gh + 8, 0xff, 3); m.b[gh + 11] = 0;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("NAME: DT_GNU_HASH (offset 0x%lx+0x8): bloom size 16777215 is not a power of two",
                    (unsigned long)gh));
    vt_img_free(&m);

    /* symbol name outside the string table */
    uint64_t symoff = vt_v2o(&c.good, vt_dyn(&c.good, DT_SYMTAB, NULL)->d_un.d_ptr);
    uint64_t strsz = vt_dyn(&c.good, DT_STRSZ, NULL)->d_un.d_val;
    m = vt_img_copy(&c.good); ((Elf64_Sym *)(m.b + symoff))[1].st_name = (uint32_t)strsz + 5;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("NAME: symbol 1 (offset 0x%lx+0x18): st_name 0x%lx is outside the string table (DT_STRSZ 0x%lx)",
                    (unsigned long)symoff, (unsigned long)strsz + 5, (unsigned long)strsz));
    vt_img_free(&m);
    /* string table without its final NUL */
    uint64_t stroff = vt_v2o(&c.good, vt_dyn(&c.good, DT_STRTAB, NULL)->d_un.d_ptr);
    m = vt_img_copy(&c.good); m.b[stroff + strsz - 1] = 'x';
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%sthe string table does not end in a NUL", dynent(&c, DT_STRSZ, "DT_STRSZ")));
    vt_img_free(&m);
    /* a version index nobody defines */
    uint64_t vsoff = vt_v2o(&c.good, vt_dyn(&c.good, DT_VERSYM, NULL)->d_un.d_ptr);
    m = vt_img_copy(&c.good); ((uint16_t *)(m.b + vsoff))[2] = 0x77;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("NAME: DT_VERSYM entry 2 (offset 0x%lx+0x4): version index 119 is defined by neither "
                    "DT_VERDEF nor DT_VERNEED", (unsigned long)vsoff));
    vt_img_free(&m);
    teardown(&c);
}

TEST(broken_relocations)
{
    ctx_t c;
    setup(&c);
    char pat[512];
    vt_img_t m;
    uint64_t rela = vt_v2o(&c.good, vt_dyn(&c.good, DT_RELA, NULL)->d_un.d_ptr);
    uint64_t hi = vt_img_hi(&c.good);
    Elf64_Rela *r;

    m = vt_img_copy(&c.good); r = (Elf64_Rela *)(m.b + rela); r[0].r_offset = 0x10000000;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("NAME: DT_RELA entry 0 (offset 0x%lx+0x0): target 0x10000000 is outside the image (0x0..0x%lx)",
                    (unsigned long)rela, (unsigned long)hi));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); r = (Elf64_Rela *)(m.b + rela); r[1].r_offset = hi - 4;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("NAME: DT_RELA entry 1 (offset 0x%lx+0x18): target 0x%lx is outside the image (0x0..0x%lx)",
                    (unsigned long)rela, (unsigned long)hi - 4, (unsigned long)hi));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); r = (Elf64_Rela *)(m.b + rela);
    r[2].r_offset = vt_phdr(&c.good, c.l1)->p_vaddr + 0x10;
    refused(c.v, &m, -ENOEXEC,
            PATTERN("NAME: DT_RELA entry 2 (offset 0x%lx+0x30): target 0x%lx is in read-only program header %d "
                    "(a text relocation)", (unsigned long)rela, (unsigned long)r[2].r_offset, c.l1));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); r = (Elf64_Rela *)(m.b + rela); r[0].r_info = ELF64_R_INFO(0, R_X86_64_COPY);
    refused(c.v, &m, -ENOTSUP,
            PATTERN("NAME: DT_RELA entry 0 (offset 0x%lx+0x0): relocation type 5 (R_X86_64_COPY: copy relocations, "
                    "for executables) is not supported", (unsigned long)rela));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); r = (Elf64_Rela *)(m.b + rela); r[0].r_info = ELF64_R_INFO(0, R_X86_64_TPOFF64);
    refused(c.v, &m, -ENOEXEC,
            PATTERN("NAME: DT_RELA entry 0: a TLS relocation without a symbol, and the library has no PT_TLS"));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); r = (Elf64_Rela *)(m.b + rela); r[0].r_info = ELF64_R_INFO(0, R_X86_64_PC32);
    refused(c.v, &m, -ENOTSUP,
            PATTERN("NAME: DT_RELA entry 0 (offset 0x%lx+0x0): relocation type 2 (R_X86_64_PC32: 32-bit "
                    "relocations) is not supported", (unsigned long)rela));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); r = (Elf64_Rela *)(m.b + rela); r[0].r_info = ELF64_R_INFO(0, R_X86_64_GOTTPOFF);
    refused(c.v, &m, -ENOEXEC,
            PATTERN("NAME: DT_RELA entry 0 (offset 0x%lx+0x0): relocation type 22 (R_X86_64_GOTTPOFF) is not a "
                    "dynamic relocation of EM_X86_64", (unsigned long)rela));
    vt_img_free(&m);
    m = vt_img_copy(&c.good); r = (Elf64_Rela *)(m.b + rela); r[0].r_info = ELF64_R_INFO(0, 200);
    refused(c.v, &m, -ENOEXEC,
            PATTERN("NAME: DT_RELA entry 0 (offset 0x%lx+0x0): relocation type 200 is not a dynamic relocation of "
                    "EM_X86_64",
                    (unsigned long)rela));
    vt_img_free(&m);
    /* a symbol index past the symbol table */
    size_t nrela = vt_dyn(&c.good, DT_RELASZ, NULL)->d_un.d_val / sizeof *r;
    size_t gd = nrela;
    for (size_t i = 0; i < nrela; i++)
        if (ELF64_R_TYPE(((Elf64_Rela *)(c.good.b + rela))[i].r_info) == R_X86_64_GLOB_DAT) { gd = i; break; }
    ASSERT(gd < nrela);
    {   /* a TLS relocation naming a symbol that is not STT_TLS (the GLOB_DAT's) */
        const Elf64_Rela *g = (const Elf64_Rela *)(c.good.b + rela) + gd;
        const Elf64_Sym *sy = (const Elf64_Sym *)(c.good.b + vt_dyn(&c.good, DT_SYMTAB, NULL)->d_un.d_ptr) +
                              ELF64_R_SYM(g->r_info);
        const char *nm = (const char *)c.good.b + vt_dyn(&c.good, DT_STRTAB, NULL)->d_un.d_ptr + sy->st_name;
        m = vt_img_copy(&c.good); r = (Elf64_Rela *)(m.b + rela);
        r[gd].r_info = ELF64_R_INFO(ELF64_R_SYM(g->r_info), R_X86_64_DTPMOD64);
        refused(c.v, &m, -ENOEXEC,
                PATTERN("NAME: DT_RELA entry %zu: a TLS relocation names symbol %s, which is not STT_TLS (type %u)",
                        gd, nm, ELF64_ST_TYPE(sy->st_info)));
        vt_img_free(&m);
    }
    m = vt_img_copy(&c.good); r = (Elf64_Rela *)(m.b + rela); r[gd].r_info = ELF64_R_INFO(0xfffff, R_X86_64_GLOB_DAT);
    refused(c.v, &m, -ENOEXEC,
            PATTERN("%s0x%lx+0x1800000 is not inside the file part of a readable PT_LOAD",
                    dynent(&c, DT_SYMTAB, "DT_SYMTAB"), (unsigned long)vt_dyn(&c.good, DT_SYMTAB, NULL)->d_un.d_ptr));
    vt_img_free(&m);
    /* a missing strong symbol: the JUMP_SLOT's symbol (strlen) renamed */
    uint64_t stroff = vt_v2o(&c.good, vt_dyn(&c.good, DT_STRTAB, NULL)->d_un.d_ptr);
    uint64_t strsz = vt_dyn(&c.good, DT_STRSZ, NULL)->d_un.d_val;
    uint64_t symoff = vt_v2o(&c.good, vt_dyn(&c.good, DT_SYMTAB, NULL)->d_un.d_ptr);
    uint64_t jmprel = vt_v2o(&c.good, vt_dyn(&c.good, DT_JMPREL, NULL)->d_un.d_ptr);
    m = vt_img_copy(&c.good);
    uint8_t *s = memmem(m.b + stroff, strsz, "_ITM_registerTMCloneTable", 25);
    ASSERT(s);
    size_t sym = ELF64_R_SYM(((Elf64_Rela *)(m.b + jmprel))[0].r_info);
    ((Elf64_Sym *)(m.b + symoff))[sym].st_name = (uint32_t)(s + 1 - (m.b + stroff));
    refused(c.v, &m, -ENOENT,
            "NAME: DT_JMPREL entry 0: undefined symbol ITM_registerTMCloneTable version GLIBC_2.2.5 (from libc.so.6)");
    vt_img_free(&m);
    /* a version name glibc cannot look up: memcpy's GLIBC_2.14 made "" */
    Elf64_Dyn *vn = vt_dyn(&c.good, DT_VERNEED, NULL);
    m = vt_img_copy(&c.good);
    uint64_t at = vt_v2o(&m, vn->d_un.d_ptr);
    Elf64_Verneed *need = (Elf64_Verneed *)(m.b + at);
    Elf64_Vernaux *aux = (Elf64_Vernaux *)(m.b + at + need->vn_aux);
    for (int k = 0; k < need->vn_cnt; k++) {
        if (!strcmp((char *)m.b + stroff + aux->vna_name, "GLIBC_2.14")) aux->vna_name = (uint32_t)strsz - 1;
        aux = (Elf64_Vernaux *)((uint8_t *)aux + aux->vna_next);
    }
    size_t mc = nrela;
    for (size_t i = 0; i < nrela; i++) {
        Elf64_Rela *e = (Elf64_Rela *)(c.good.b + rela) + i;
        Elf64_Sym *sy = (Elf64_Sym *)(c.good.b + symoff) + ELF64_R_SYM(e->r_info);
        if (ELF64_R_SYM(e->r_info) && !strcmp((char *)c.good.b + stroff + sy->st_name, "memcpy")) mc = i;
    }
    ASSERT(mc < nrela);
    refused(c.v, &m, -ENOTSUP,
            PATTERN("NAME: DT_RELA entry %zu: symbol memcpy asks for version \"\", which is not supported (its ELF "
                    "hash is 0, and dlvsym cannot look that up)", mc));
    vt_img_free(&m);
    teardown(&c);
}

/* Older linkers made DT_RELASZ cover .rela.plt too: the overlap with
 * DT_JMPREL is processed once, and the library works. */
TEST(loader_rela_covering_jmprel)
{
    ctx_t c;
    setup(&c);
    uint64_t rela = vt_dyn(&c.good, DT_RELA, NULL)->d_un.d_ptr;
    uint64_t relasz = vt_dyn(&c.good, DT_RELASZ, NULL)->d_un.d_val;
    uint64_t jmprel = vt_dyn(&c.good, DT_JMPREL, NULL)->d_un.d_ptr;
    uint64_t pltsz = vt_dyn(&c.good, DT_PLTRELSZ, NULL)->d_un.d_val;
    if (rela + relasz != jmprel) SKIP("DT_JMPREL does not follow DT_RELA in this build");
    vt_img_t m = vt_img_copy(&c.good);
    vt_dyn(&m, DT_RELASZ, NULL)->d_un.d_val = relasz + pltsz;
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load_mem(c.v, m.b, m.n, "overlap.so", 0, &l));
    size_t (*slen)(const char *) = (size_t (*)(const char *))vmc_lib_sym(l, "t_strlen");
    int (*counter)(void) = (int (*)(void))vmc_lib_sym(l, "t_get_counter");
    ASSERT_EQ(slen("overlap"), 7);
    ASSERT_EQ(counter(), 5);
    ASSERT_OK(vmc_lib_unload(l));
    vt_img_free(&m);
    teardown(&c);
}

/* More PT_LOADs than a library's record holds in itself (4): the rest of
 * the segments' room is allocated, and the library loads, runs, reports
 * every segment and unloads without a leak, from memory and from a file,
 * and again from the record of it kept at the unload. */
TEST_TIMEOUT(loader_more_segments_than_the_record_holds, 60)
{
    ctx_t c;
    setup(&c);
    vt_img_t m = vt_img_copy(&c.good);
    int st = vt_phdr_find(&m, PT_GNU_STACK, 0);
    ASSERT(st > c.l3);
    Elf64_Phdr *p = vt_phdr(&m, st);   /* a fifth PT_LOAD, all bss, a page past the image */
    p->p_type = PT_LOAD;
    p->p_flags = PF_R | PF_W;
    p->p_offset = 0;
    p->p_vaddr = p->p_paddr = vt_img_hi(&c.good) + 0x1000;
    p->p_filesz = 0;
    p->p_memsz = 0x1000;
    p->p_align = 0x1000;
    char path[128];
    snprintf(path, sizeof path, "/tmp/vmc-segs-%d.so", (int)getpid());
    ASSERT_OK(vt_img_write(&m, path));
    /* from memory, from the file just written, then from the file once
     * settled: its record is kept at each unload and taken over by the next
     * load, its fifth segment (held outside the record) with it */
    for (int round = 0; round < 5; round++) {
        if (round == 2) vt_wait_settled(path);
        vmc__os_calls_reset();
        vmc_lib_t *l;
        if (round) ASSERT_OK(vmc_lib_load(c.v, path, 0, &l));
        else ASSERT_OK(vmc_lib_load_mem(c.v, m.b, m.n, "segs.so", 0, &l));
        if (round >= 2) ASSERT_EQ(vmc__os_calls(VMC_OS_PREAD) == 0, round > 2);
        vmc_lib_info_t in;
        ASSERT_OK(vmc_lib_info(l, &in));
        ASSERT_EQ(in.nsegments, 5);
        ASSERT_EQ((uintptr_t)in.segments[4].start, in.bias + p->p_vaddr);
        ASSERT_EQ(in.segments[4].size, 0x1000);
        ASSERT_EQ(((volatile char *)in.segments[4].start)[0], 0);
        size_t (*slen)(const char *) = (size_t (*)(const char *))vmc_lib_sym(l, "t_strlen");
        ASSERT(slen);
        ASSERT_EQ(slen("segments"), 8);
        ASSERT_OK(vmc_lib_unload(l));
    }
    unlink(path);
    vt_img_free(&m);
    teardown(&c);
}

TEST(broken_truncated_at_many_lengths)
{
    ctx_t c;
    setup(&c);
    char pat[512], want[512];
    uint64_t need = 0;  /* the file bytes the PT_LOADs need */
    for (int i = 0; i < vt_ehdr(&c.good)->e_phnum; i++) {
        Elf64_Phdr *p = vt_phdr(&c.good, i);
        if (p->p_type == PT_LOAD && p->p_offset + p->p_filesz > need) need = p->p_offset + p->p_filesz;
    }
    for (size_t len = 0; len <= c.good.n; len += (len < 128 ? 1 : len < 4096 ? 61 : 127)) {
        vmc_lib_t *l;
        int r = vmc_lib_load_mem(c.v, c.good.b, len, "cut.so", 0, &l);
        if (len >= need) {
            ASSERT_MSG(r == 0, "cut at 0x%zx of 0x%zx: %s", len, c.good.n, vmc_last_error());
            ASSERT_OK(vmc_lib_unload(l));
            continue;
        }
        ASSERT_MSG(r == -ENOEXEC, "cut at 0x%zx: %d %s", len, r, vmc_last_error());
        ASSERT_MSG(!strncmp(vmc_last_error(), "cut.so: ", 8), "cut at 0x%zx: %s", len, vmc_last_error());
        if (len < sizeof(Elf64_Ehdr)) {
            with_name(want, sizeof want,
                      PATTERN("NAME: ELF header (offset 0x0+0x40): file is 0x%zx bytes, too short", len), "cut.so");
            ASSERT_STR_EQ(vmc_last_error(), want);
        }
    }
    /* the same through files: never a SIGBUS past the end of the file */
    char dir[] = "/tmp/vmc-cut-XXXXXX", path[64];
    ASSERT(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/cut.so", dir);
    for (size_t len = 0; len <= c.good.n; len += (len < 64 ? 16 : 251)) {
        vt_img_t m = {c.good.b, len};
        ASSERT_OK(vt_img_write(&m, path));
        vmc_lib_t *l;
        int r = vmc_lib_load(c.v, path, 0, &l);
        if (len >= need) {
            ASSERT_MSG(r == 0, "cut at 0x%zx: %s", len, vmc_last_error());
            ASSERT_OK(vmc_lib_unload(l));
        } else {
            ASSERT_MSG(r == -ENOEXEC, "cut at 0x%zx: %d %s", len, r, vmc_last_error());
        }
    }
    unlink(path);
    rmdir(dir);
    teardown(&c);
}

/* Random bytes flipped in the headers, tables and data of a good library,
 * loaded without running any of its code: refusal or success, never a
 * crash, nothing left behind. */
TEST_TIMEOUT(broken_random_mutations_inert, 300)
{
    ctx_t c;
    setup(&c);
    c.malloc_heavy = 1;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    size_t ok = 0, refused_n = 0;
    size_t span = c.good.n < 0x3100 ? c.good.n : 0x3100;  /* headers, dynsym, dynamic, GOT */
    for (int round = 0; round < 3000; round++) {
        vt_img_t m = vt_img_copy(&c.good);
        int flips = 1 + round % 8;
        for (int k = 0; k < flips; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t at = (size_t)(x % span);
            switch ((x >> 40) % 4) {
            case 0: m.b[at] ^= (uint8_t)(1u << ((x >> 32) % 8)); break;
            case 1: m.b[at] = 0xff; break;
            case 2: m.b[at] = 0; break;
            default: m.b[at] = (uint8_t)(x >> 48); break;
            }
        }
        vmc_lib_t *l;
        int r = vmc_lib_load_mem(c.v, m.b, m.n, "mutant.so", VMC_LOAD_INERT, &l);
        if (r == 0) {
            ok++;
            ASSERT_OK(vmc_lib_unload(l));
        } else {
            refused_n++;
            ASSERT_MSG(r < 0 && vmc_last_error()[0], "round %d: %d with no message", round, r);
        }
        vt_img_free(&m);
    }
    ASSERT_GT(refused_n, 100);
    ASSERT_GT(ok, 10);
    teardown(&c);
}

/* ---- every OS call of a load fails in turn ---------------------------------- */

static void fault_sweep(const char *path)
{
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    ASSERT_OK(vmc_lib_unload(l));
    static const struct { enum vmc_os_call call; int err; } calls[] = {
        {VMC_OS_OPEN, EMFILE}, {VMC_OS_FSTAT, EIO}, {VMC_OS_PREAD, EIO},
        {VMC_OS_MMAP, ENOMEM}, {VMC_OS_MPROTECT, ENOMEM}, {VMC_OS_CLOSE, EIO},
    };
    unsigned long made[sizeof calls / sizeof calls[0]];
    vmc__os_calls_reset();
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    for (size_t k = 0; k < sizeof calls / sizeof calls[0]; k++) made[k] = vmc__os_calls(calls[k].call);
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT_GT(made[3], 2);
    vt_snapshot_t snap;
    vt_snap(&snap);
    int failures = 0;
    for (size_t k = 0; k < sizeof calls / sizeof calls[0]; k++) {
        for (unsigned long n = 1; n <= made[k]; n++) {
            vmc__os_fault(calls[k].call, n, calls[k].err, 0);
            int r = vmc_lib_load(v, path, 0, &l);
            unsigned long hit = vmc__os_faults_hit();
            vmc__os_fault_clear();
            ASSERT_MSG(hit == 1, "%s #%lu was not reached", vmc__os_call_name(calls[k].call), n);
            if (r == 0) {
                /* only a failed close may let a load succeed */
                ASSERT_MSG(calls[k].call == VMC_OS_CLOSE, "%s #%lu failed but the load succeeded",
                           vmc__os_call_name(calls[k].call), n);
                ASSERT_OK(vmc_lib_unload(l));
            } else {
                failures++;
                ASSERT_EQ(r, -calls[k].err);
                ASSERT(l == NULL);
                ASSERT_MSG(strstr(vmc_last_error(), strerror(calls[k].err)), "%s #%lu: message '%s'",
                           vmc__os_call_name(calls[k].call), n, vmc_last_error());
            }
            ASSERT_NO_LEAK(snap);
            vmc_stats_t st;
            ASSERT_OK(vmc_stats(v, &st));
            ASSERT_EQ(st.libraries, 0);
        }
    }
    ASSERT_GT(failures, 5);
    /* and a good load still works afterwards */
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    ASSERT_OK(vmc_lib_unload(l));
    vt_snap_free(&snap);
    vmc_close(v);
}

TEST(loader_fault_sweep_single_library)
{
    fault_sweep(vt_tlib("libt_basic.so"));
}

TEST(loader_fault_sweep_chain)
{
    fault_sweep(vt_tlib("libt_chain_a.so"));
}

/* ---- the regression corpus (crashers the fuzzer found) ----------------------- */

TEST(loader_elf_corpus_refused_cleanly)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", vt_src_path("tests/elf-corpus"));
    DIR *d = opendir(dir);
    if (!d) SKIP("no tests/elf-corpus (set VMC_TEST_SRC to the source tree)");
    vmc_t *v = open_region();
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "README")) continue;
        char path[800];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        vt_img_t m;
        if (vt_img_read(path, &m)) continue;
        for (int from_file = 0; from_file < 2; from_file++) {
            vmc_lib_t *l;
            int r = from_file ? vmc_lib_load(v, path, VMC_LOAD_INERT, &l)
                              : vmc_lib_load_mem(v, m.b, m.n, e->d_name, VMC_LOAD_INERT, &l);
            if (r == 0) ASSERT_OK(vmc_lib_unload(l));
            else ASSERT_MSG(r < 0 && vmc_last_error()[0], "%s: %d with no message", path, r);
            vmc_stats_t st;
            ASSERT_OK(vmc_stats(v, &st));
            ASSERT_MSG(st.libraries == 0, "%s: still loaded after its unload", path);
        }
        vt_img_free(&m);
        n++;
    }
    closedir(d);
    vmc_close(v);
    if (!n) SKIP("tests/elf-corpus is empty");
}
