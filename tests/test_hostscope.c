/* One host object's look-up (elf/hostscope.c) on an object made up in
 * memory: the cases no library of the system has, which the sweep against
 * dlvsym (test_hostsym.c) therefore never meets.
 */
#include "test.h"
#include "elf/elf.h"
#include "elf/hostscope.h"

#include <stdlib.h>
#include <string.h>

/* Where each table lies in the made-up object (offsets from its start,
 * which is its base: its dynamic entries are bias-relative, as in a
 * library the system loader has not relocated). */
enum { DYN = 128, STR = 320, GNU = 448, VERSYM = 576, VERDEF = 640, SYM = 832, NSYM = 4, SIZE = SYM + NSYM * 24 };

#define BLOOM_SHIFT 40   /* past 32: the second bit is the hash's bit 0 */

typedef struct fake {
    _Alignas(8) unsigned char img[SIZE];   /* (its tables at their offsets) */
    ElfW(Phdr) ph[2];
    struct dl_phdr_info info;
} fake_t;

static const char strtab[] = "\0foo\0bar\0baz\0V1\0VBIG\0VBAD\0libfake.so";
enum { S_FOO = 1, S_BAR = 5, S_BAZ = 9, S_V1 = 13, S_VBIG = 16, S_VBAD = 21, S_SONAME = 26 };

/* Its symbols: foo@@V1 (index 2), bar@@VBIG (index 40, past what the
 * definitions' count makes room for), baz@@VBAD (index 3, whose hash as
 * the file stores it is not its name's: the system loader, comparing both,
 * never matches it). */
static void make(fake_t *f, size_t span)
{
    memset(f, 0, sizeof *f);
    unsigned char *b = f->img;
    ElfW(Dyn) *d = (ElfW(Dyn) *)(b + DYN);
    ElfW(Dyn) dyn[] = {{DT_STRTAB, {STR}},  {DT_STRSZ, {sizeof strtab}}, {DT_SYMTAB, {SYM}},
                       {DT_GNU_HASH, {GNU}}, {DT_VERSYM, {VERSYM}},      {DT_VERDEF, {VERDEF}},
                       {DT_VERDEFNUM, {4}},  {DT_SONAME, {S_SONAME}},    {DT_NULL, {0}}};
    memcpy(d, dyn, sizeof dyn);
    memcpy(b + STR, strtab, sizeof strtab);

    static const unsigned names[NSYM] = {0, S_FOO, S_BAR, S_BAZ};
    ElfW(Sym) *s = (ElfW(Sym) *)(b + SYM);
    uint32_t h[NSYM];
    uint64_t bloom = 0;
    for (int i = 1; i < NSYM; i++) {
        s[i].st_name = names[i];
        s[i].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC);
        s[i].st_shndx = 1;
        s[i].st_value = 0x10 * i;
        h[i] = vmc__elf_name(strtab + names[i]).gnu;
        bloom |= 1ull << (h[i] % 64) | 1ull << (((uint64_t)h[i] >> BLOOM_SHIFT) % 64);
    }
    uint32_t *g = (uint32_t *)(b + GNU);
    g[0] = 1;                    /* buckets */
    g[1] = 1;                    /* symoffset */
    g[2] = 1;                    /* bloom words */
    g[3] = BLOOM_SHIFT;
    memcpy(g + 4, &bloom, 8);
    g[6] = 1;                    /* the one bucket: symbol 1 */
    for (int i = 1; i < NSYM; i++) g[6 + i] = (h[i] & ~1u) | (i == NSYM - 1);

    uint16_t *vs = (uint16_t *)(b + VERSYM);
    vs[1] = 2, vs[2] = 40, vs[3] = 3;
    struct { uint16_t flags, ndx; unsigned name; uint32_t hash; } v[4] = {
        {VER_FLG_BASE, 1, S_SONAME, vmc__elf_hash(strtab + S_SONAME)},
        {0, 2, S_V1, vmc__elf_hash("V1")},
        {0, 40, S_VBIG, vmc__elf_hash("VBIG")},
        {0, 3, S_VBAD, vmc__elf_hash("VBAD") ^ 1},
    };
    for (int i = 0; i < 4; i++) {
        ElfW(Verdef) *e = (ElfW(Verdef) *)(b + VERDEF + 28 * i);
        *e = (ElfW(Verdef)){1, v[i].flags, v[i].ndx, 1, v[i].hash, sizeof *e, i < 3 ? 28 : 0};
        *(ElfW(Verdaux) *)(e + 1) = (ElfW(Verdaux)){v[i].name, 0};
    }

    f->ph[0] = (ElfW(Phdr)){.p_type = PT_LOAD, .p_vaddr = 0, .p_memsz = span};
    f->ph[1] = (ElfW(Phdr)){.p_type = PT_DYNAMIC, .p_vaddr = DYN, .p_memsz = sizeof dyn};
    f->info = (struct dl_phdr_info){.dlpi_addr = (uintptr_t)b, .dlpi_name = "libfake.so", .dlpi_phdr = f->ph,
                                    .dlpi_phnum = 2};
}

static int find(const vmc_hobj_t *o, const char *name, const char *version, uintptr_t *addr)
{
    vmc_hquery_t q = {.name = name, .gnu = vmc__elf_name(name).gnu, .version = version, .exact = 1};
    const ElfW(Sym) *s;
    *addr = 0;
    if (!vmc__hobj_may_have(o, q.gnu)) return VMC_HFIND_NONE;
    return vmc__hobj_find(o, &q, &s, addr);
}

TEST(hostscope_made_up_object)
{
    fake_t *f = malloc(sizeof *f);
    ASSERT(f);
    make(f, SIZE);
    vmc_hobj_t o;
    ASSERT_EQ(vmc__hobj_read(&o, &f->info), 0);
    ASSERT(o.soname && !strcmp(o.soname, "libfake.so"));
    uintptr_t base = (uintptr_t)f->img, a;
    /* the second bloom bit as glibc's 64-bit arithmetic has it for a shift
     * past 32 (bit 0 of foo's hash, here), not the shift's low five bits */
    uint32_t hf = vmc__elf_name("foo").gnu;
    uint64_t bloom;
    memcpy(&bloom, f->img + GNU + 16, 8);
    ASSERT_EQ((bloom >> ((hf >> (BLOOM_SHIFT & 31)) % 64)) & 1, 0);

    /* first without an index (the lists walked), then with one built at
     * the first versioned look-up: the same answers */
    for (int indexed = 0; indexed < 2; indexed++) {
        o.index_on_use = (uint8_t)indexed;
        ASSERT_EQ(find(&o, "foo", "V1", &a), VMC_HFIND_FOUND);
        ASSERT_EQ(a, base + 0x10);
        ASSERT_EQ(find(&o, "foo", "VBIG", &a), VMC_HFIND_NONE);
        ASSERT_EQ(find(&o, "bar", "VBIG", &a), VMC_HFIND_FOUND);
        ASSERT_EQ(a, base + 0x20);
        ASSERT_EQ(find(&o, "baz", "VBAD", &a), VMC_HFIND_NONE);   /* twice: the hash's */
        ASSERT_EQ(find(&o, "baz", "VBAD", &a), VMC_HFIND_NONE);   /* verdict is kept */
        ASSERT_EQ(find(&o, "baz", NULL, &a), VMC_HFIND_FOUND);    /* its default version */
        ASSERT_EQ(a, base + 0x30);
        ASSERT_EQ(find(&o, "qux", NULL, &a), VMC_HFIND_NONE);
        ASSERT_EQ(!!o.vers, indexed);
    }
    /* the index grew past the room the definitions' count gave it */
    ASSERT_GE(o.nvers, 41);
    ASSERT(o.vers[40].name && !strcmp(o.vers[40].name, "VBIG"));
    ASSERT_EQ(o.vers[3].hash_ok, 2);
    ASSERT_EQ(o.vers[2].hash_ok, 1);
    free(o.vers);

    /* the span ending inside the symbol table: a symbol past it is the
     * system loader's to find, one before it still ours */
    make(f, SYM + 2 * 24 + 8);
    ASSERT_EQ(vmc__hobj_read(&o, &f->info), 0);
    ASSERT_EQ(o.nsym_in, 2);
    ASSERT_EQ(find(&o, "foo", "V1", &a), VMC_HFIND_FOUND);
    ASSERT_EQ(find(&o, "bar", "VBIG", &a), VMC_HFIND_UNSURE);
    free(o.vers);
    free(f);
}
