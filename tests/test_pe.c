/* The PE layer on Linux: MinGW-built DLLs (tests/pe/) read, laid out,
 * relocated, and their imports, exports, .pdata and relocations compared
 * with what `x86_64-w64-mingw32-objdump -p` says of the same file; broken
 * copies of a good DLL refused with their exact messages; random mutations
 * never crash the reader. */
#include "test.h"
#include "pe/pe.h"
#include "os/os.h"

#include <sys/stat.h>
#include <unistd.h>

#define OBJDUMP "x86_64-w64-mingw32-objdump"
#define BASE 0x7f3a12340000ull   /* never a MinGW DLL's preferred base */

static const char *dll_path(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/tests/libs/pe/%s", vt_build_dir(), name);
    if (access(path, R_OK)) SKIP("no MinGW-w64: the PE test DLLs are not built");
    return path;
}

static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ASSERT_MSG(f, "%s: %s", path, strerror(errno));
    uint8_t *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            b = realloc(b, cap + 1);
            ASSERT(b);
        }
        size_t got = fread(b + n, 1, cap - n, f);
        if (!got) break;
        n += got;
    }
    fclose(f);
    b[n] = 0;
    *size = n;
    return b;
}

static char *run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    ASSERT(p);
    char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 65536;
            b = realloc(b, cap);
            ASSERT(b);
        }
        size_t got = fread(b + n, 1, cap - n - 1, p);
        if (!got) break;
        n += got;
    }
    b[n] = 0;
    ASSERT_EQ(pclose(p), 0);
    return b;
}

static char *objdump(const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, OBJDUMP " -p '%s' 2>&1", path);
    if (system(OBJDUMP " --version >/dev/null 2>&1")) SKIP("no " OBJDUMP);
    return run(cmd);
}

/* Check, lay out (into *img, malloc'd) and read at `base`. */
static int pe_load(vmc_pe_obj_t *o, const char *name, const uint8_t *f, size_t n, uint64_t base, uint8_t **img)
{
    memset(o, 0, sizeof *o);
    o->name = name;
    *img = NULL;
    int e = vmc__pe_check(o, f, n);
    if (e) return e;
    ASSERT((*img = calloc(1, o->pe.size_of_image)));
    vmc__pe_layout(o, f, *img);
    return vmc__pe_read(o, base);
}

static unsigned long long field(const char *dump, const char *key)
{
    const char *p = strstr(dump, key);
    ASSERT_MSG(p, "objdump has no %s", key);
    return strtoull(p + strlen(key), NULL, 16);
}

/* The next line of *p (advanced past it), in line (truncated). */
static int next_line(const char **p, char *line, size_t len)
{
    if (!**p) return 0;
    const char *e = strchr(*p, '\n');
    size_t n = e ? (size_t)(e - *p) : strlen(*p);
    snprintf(line, len, "%.*s", (int)n, *p);
    *p += n + (e ? 1 : 0);
    return 1;
}

static void compare_headers(const vmc_pe_obj_t *o, const char *d)
{
    ASSERT_EQ(o->pe.image_base, field(d, "ImageBase\t\t"));
    ASSERT_EQ(o->pe.size_of_image, field(d, "SizeOfImage\t\t"));
    ASSERT_EQ(o->pe.size_of_headers, field(d, "SizeOfHeaders\t\t"));
    ASSERT_EQ(o->pe.entry, field(d, "AddressOfEntryPoint\t"));
    ASSERT_EQ(o->pe.subsystem, field(d, "Subsystem\t\t"));
    ASSERT_EQ(o->pe.sect_align, field(d, "SectionAlignment\t"));
    ASSERT_EQ(o->pe.file_align, field(d, "FileAlignment\t\t"));
    for (int i = 0; i < VMC_PE_NDIRS; i++) {
        char key[32];
        snprintf(key, sizeof key, "\nEntry %x ", i);
        const char *p = strstr(d, key);
        ASSERT_MSG(p, "objdump has no data directory %d", i);
        char *end;
        unsigned long long rva = strtoull(p + strlen(key), &end, 16);
        unsigned long long size = strtoull(end, NULL, 16);
        ASSERT_EQ(o->pe.dir[i].rva, rva);
        ASSERT_EQ(o->pe.dir[i].size, size);
    }
}

/* The import tables objdump prints, in order, against o->imp. */
static void compare_imports(const vmc_pe_obj_t *o, const char *d)
{
    const char *p = d;
    char line[512];
    size_t dll = 0, fn = 0;
    while ((p = strstr(p, "\tDLL Name: "))) {
        next_line(&p, line, sizeof line);
        ASSERT_LT(dll, o->imp.ndlls);
        const vmc_pe_dll_t *x = &o->imp.dlls[dll];
        ASSERT_STR_EQ(x->name, line + strlen("\tDLL Name: "));
        ASSERT_EQ(x->delay, 0);
        ASSERT_EQ(x->first, fn);
        next_line(&p, line, sizeof line);  /* vma:  Hint/Ord Member-Name Bound-To */
        while (next_line(&p, line, sizeof line) && line[0] == '\t') {
            char *end;
            unsigned long long v = strtoull(line + 1, &end, 16);
            unsigned long long h = strtoull(end, &end, v >> 63 ? 16 : 10);
            while (*end == ' ') end++;
            ASSERT_LT(fn, x->first + x->count);
            const vmc_pe_import_t *f = &o->imp.fn[fn++];
            ASSERT_EQ(f->dll, dll);
            if (v >> 63) {
                ASSERT(f->name == NULL);
                ASSERT_EQ(f->hint, v & 0xffff);
                ASSERT_EQ(h, v & 0xffff);
            } else {
                ASSERT_STR_EQ(f->name, end);
                ASSERT_EQ(f->hint, h);
            }
        }
        ASSERT_EQ(fn, x->first + x->count);
        dll++;
    }
    while (dll < o->imp.ndlls) ASSERT_EQ(o->imp.dlls[dll++].delay, 1);
}

/* Every export objdump lists, by ordinal and by name. */
static void compare_exports(const vmc_pe_obj_t *o, const char *d)
{
    const char *p = strstr(d, "Export Address Table -- Ordinal Base");
    if (!o->pe.dir[VMC_PE_DIR_EXPORT].size) {
        ASSERT(!p);
        return;
    }
    ASSERT(p);
    unsigned base = (unsigned)strtoul(p + strlen("Export Address Table -- Ordinal Base"), NULL, 10);
    ASSERT_EQ(o->exp_base, base);
    char line[512];
    uint32_t rvas[1024];
    char fwd[1024][64];
    unsigned n = 0;
    next_line(&p, line, sizeof line);
    while (next_line(&p, line, sizeof line) && strstr(line, "+base[")) {
        unsigned idx, ord;
        unsigned long rva;
        ASSERT_EQ(sscanf(line, "\t[%u] +base[%u] %lx", &idx, &ord, &rva), 3);
        ASSERT_EQ(idx, n);
        ASSERT_LT(n, 1024);
        fwd[n][0] = 0;
        const char *f = strstr(line, "Forwarder RVA -- ");
        if (f) snprintf(fwd[n], sizeof fwd[n], "%s", f + strlen("Forwarder RVA -- "));
        rvas[n++] = (uint32_t)rva;
        char hash[16];
        snprintf(hash, sizeof hash, "#%u", ord);
        vmc_pe_sym_t s;
        ASSERT_MSG(vmc__pe_export(o, hash, &s) == 1, "%s", hash);
        ASSERT_EQ(s.ordinal, ord);
        if (f) {
            ASSERT_STR_EQ(s.forward, fwd[idx]);
            ASSERT_EQ(s.rva, 0);
        } else {
            ASSERT(!s.forward);
            ASSERT_EQ(s.rva, rva);
        }
    }
    ASSERT_EQ(o->exp_nfuncs, n);
    p = strstr(p, "[Ordinal/Name Pointer] Table");
    ASSERT(p);
    next_line(&p, line, sizeof line);
    unsigned names = 0;
    while (next_line(&p, line, sizeof line) && line[0] == '\t') {
        unsigned idx;
        char name[256];
        ASSERT_EQ(sscanf(line, "\t[%u] %255s", &idx, name), 2);
        vmc_pe_sym_t s;
        ASSERT_MSG(vmc__pe_export(o, name, &s) == 1, "%s", name);
        ASSERT_EQ(s.ordinal, base + idx);
        if (fwd[idx][0]) ASSERT_STR_EQ(s.forward, fwd[idx]);
        else ASSERT_EQ(s.rva, rvas[idx]);
        names++;
    }
    ASSERT_EQ(o->exp_nnames, names);
    vmc_pe_sym_t s;
    ASSERT_EQ(vmc__pe_export(o, "t_no_such_export", &s), 0);
    ASSERT_EQ(vmc__pe_export(o, "", &s), 0);
    ASSERT_EQ(vmc__pe_export(o, "#65535", &s), 0);
    ASSERT_EQ(vmc__pe_export(o, "#x", &s), 0);
}

/* .pdata entries, and every DIR64 target moved by exactly base - ImageBase. */
static void compare_pdata_relocs(const vmc_pe_obj_t *o, const char *d, const uint8_t *file)
{
    const char *p = strstr(d, "The Function Table (interpreted .pdata section contents)");
    char line[512];
    unsigned n = 0;
    if (p) {
        next_line(&p, line, sizeof line);
        next_line(&p, line, sizeof line);  /* vma: BeginAddress ... */
        while (next_line(&p, line, sizeof line) && line[0] == ' ' && strchr(line, ':')) n++;
    }
    ASSERT_EQ(o->npdata, n);
    ASSERT_GT(n, 0);
    unsigned dir64 = 0;
    uint64_t delta = o->base - o->pe.image_base;
    for (p = d; (p = strstr(p, "\treloc ")); dir64 += strstr(line, "] DIR64") != NULL) {
        next_line(&p, line, sizeof line);
        unsigned long rva;
        const char *b = strchr(line, '[');
        ASSERT(b);
        rva = strtoul(b + 1, NULL, 16);
        if (!strstr(line, "] DIR64")) continue;
        uint64_t was = vmc__pe_u64(file + vmc__pe_offset(&o->pe, rva));
        ASSERT_EQ(vmc__pe_u64(o->img + rva), was + delta);
    }
    ASSERT_EQ(o->nrelocs, dir64);
    ASSERT_GT(dir64, 0);
}

static void check_dll(const char *name, uint64_t base)
{
    const char *path = dll_path(name);
    char *d = objdump(path);
    size_t n;
    uint8_t *f = slurp(path, &n), *img;
    vmc_pe_obj_t o;
    ASSERT_OK(pe_load(&o, name, f, n, base, &img));
    compare_headers(&o, d);
    compare_imports(&o, d);
    compare_exports(&o, d);
    compare_pdata_relocs(&o, d, f);
    /* every section's file bytes at its RVA, zero after them */
    for (uint32_t i = 0; i < o.pe.nsect; i++) {
        const vmc_pe_sect_t *s = &o.pe.sect[i];
        for (uint32_t k = s->copy; k < s->vsize; k++) ASSERT_EQ(img[s->va + k], 0);
    }
    /* MinGW's CRT: a TLS directory with callbacks and no data */
    ASSERT(o.has_tls);
    ASSERT_GT(o.ncallbacks, 0);
    for (uint32_t i = 0; i < o.ncallbacks; i++) ASSERT(vmc__pe_executable(&o.pe, o.callbacks[i]));
    ASSERT(!o.has_load_config);
    vmc__pe_free(&o);
    free(img);
    free(f);
    free(d);
}

TEST(pe_basic_dll_read_as_objdump_reads_it)
{
    check_dll("t_pe_basic.dll", BASE);
    /* at its own preferred base too: nothing moves, everything still checked */
    size_t n;
    uint8_t *f = slurp(dll_path("t_pe_basic.dll"), &n), *img;
    vmc_pe_obj_t o;
    memset(&o, 0, sizeof o);
    o.name = "t_pe_basic.dll";
    ASSERT_OK(vmc__pe_check(&o, f, n));
    uint64_t pref = o.pe.image_base;
    ASSERT_OK(pe_load(&o, "t_pe_basic.dll", f, n, pref, &img));
    for (uint32_t i = 0; i < o.pe.nsect; i++)
        ASSERT(!memcmp(img + o.pe.sect[i].va, f + o.pe.sect[i].raw, o.pe.sect[i].copy));
    ASSERT_GT(o.nrelocs, 0);
    vmc__pe_free(&o);
    free(img);
    free(f);
}

TEST(pe_basic_dll_exports_by_name_ordinal_and_forwarder)
{
    size_t n;
    uint8_t *f = slurp(dll_path("t_pe_basic.dll"), &n), *img;
    vmc_pe_obj_t o;
    ASSERT_OK(pe_load(&o, "t_pe_basic.dll", f, n, BASE, &img));
    ASSERT_STR_EQ(o.exp_dll, "t_pe_basic.dll");
    vmc_pe_sym_t s, t;
    ASSERT_EQ(vmc__pe_export(&o, "t_add", &s), 1);
    ASSERT(vmc__pe_executable(&o.pe, s.rva));
    ASSERT_EQ(vmc__pe_export(&o, "t_counter", &s), 1);  /* data: 5, in a writable section */
    ASSERT_EQ(vmc__pe_u32(img + s.rva), 5);
    /* t_secret is exported by ordinal 12 only */
    ASSERT_EQ(vmc__pe_export(&o, "t_secret", &s), 0);
    ASSERT_EQ(vmc__pe_export(&o, "#12", &s), 1);
    ASSERT(vmc__pe_executable(&o.pe, s.rva) && !s.forward);
    ASSERT_EQ(vmc__pe_export(&o, "t_tick_fwd", &t), 1);
    ASSERT_STR_EQ(t.forward, "KERNEL32.GetTickCount");
    ASSERT_EQ(vmc__pe_export(&o, "#2", &s), 0);   /* below the ordinal base (3) */
    ASSERT_EQ(vmc__pe_export(&o, "#13", &s), 0);  /* past the address table */
    /* a pointer in .data (t_ptr = &t_counter) moved with the image */
    ASSERT_EQ(o.imp.ndlls, 2);
    ASSERT_STR_EQ(o.imp.dlls[0].name, "KERNEL32.dll");
    ASSERT_STR_EQ(o.imp.dlls[1].name, "msvcrt.dll");
    vmc__pe_free(&o);
    free(img);
    free(f);
}

/* GNU ld leaves the delay import directory empty for dlltool's delay
 * import libraries: point it at the descriptor (found by its symbol), as a
 * linker that fills it would. */
static size_t delay_dll(uint8_t **out)
{
    const char *path = dll_path("t_pe_delay.dll");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "x86_64-w64-mingw32-nm '%s' | grep __DELAY_IMPORT_DESCRIPTOR_", path);
    if (system("x86_64-w64-mingw32-nm --version >/dev/null 2>&1")) SKIP("no x86_64-w64-mingw32-nm");
    char *nm = run(cmd);
    unsigned long long va = strtoull(nm, NULL, 16);
    free(nm);
    size_t n;
    uint8_t *f = slurp(path, &n);
    vmc_pe_obj_t o;
    memset(&o, 0, sizeof o);
    o.name = "t_pe_delay.dll";
    ASSERT_OK(vmc__pe_check(&o, f, n));
    ASSERT_EQ(o.pe.dir[VMC_PE_DIR_DELAY_IMPORT].size, 0);
    uint8_t *dir = f + o.pe.opt + 112 + 8 * VMC_PE_DIR_DELAY_IMPORT;
    uint32_t rva = (uint32_t)(va - o.pe.image_base), size = 32;
    memcpy(dir, &rva, 4);
    memcpy(dir + 4, &size, 4);
    *out = f;
    return n;
}

TEST(pe_delay_dll_imports_by_ordinal_and_delay_load)
{
    check_dll("t_pe_delay.dll", BASE);
    uint8_t *f, *img;
    size_t n = delay_dll(&f);
    vmc_pe_obj_t o;
    ASSERT_OK(pe_load(&o, "t_pe_delay.dll", f, n, BASE, &img));
    ASSERT_EQ(o.imp.ndlls, 4);
    const vmc_pe_dll_t *b = &o.imp.dlls[2], *dd = &o.imp.dlls[3];
    ASSERT_STR_EQ(b->name, "t_pe_basic.dll");
    ASSERT_EQ(b->count, 2);
    ASSERT_STR_EQ(o.imp.fn[b->first].name, "t_add");
    ASSERT(o.imp.fn[b->first + 1].name == NULL);
    ASSERT_EQ(o.imp.fn[b->first + 1].hint, 12);
    ASSERT_STR_EQ(dd->name, "t_pe_dep.dll");
    ASSERT_EQ(dd->delay, 1);
    ASSERT(dd->handle_slot && vmc__pe_in_image(&o.pe, dd->handle_slot, 8));
    ASSERT_EQ(dd->count, 2);
    ASSERT_STR_EQ(o.imp.fn[dd->first].name, "t_dep_other");  /* the import library's order */
    ASSERT_STR_EQ(o.imp.fn[dd->first + 1].name, "t_dep_value");
    ASSERT_EQ(o.imp.fn[dd->first + 1].slot, o.imp.fn[dd->first].slot + 8);
    vmc__pe_free(&o);
    free(img);
    free(f);
}

TEST(pe_dep_and_cxx_dlls_read_as_objdump_reads_them)
{
    check_dll("t_pe_dep.dll", BASE);
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/libs/pe/t_pe_cxx.dll", vt_build_dir());
    if (access(path, R_OK)) SKIP("no MinGW-w64 C++ compiler: t_pe_cxx.dll not built");
    check_dll("t_pe_cxx.dll", BASE + 0x10000000);
}

/* ---- broken copies of t_pe_basic.dll ---------------------------------------------- */

typedef struct good {
    uint8_t *f;
    size_t n;
    vmc_pe_obj_t o;              /* its headers, read once                 */
    uint8_t *img;                /* laid out at BASE                       */
} good_t;

/* vmc__pe_check given only the leading bytes vmc__pe_head_size asks for
 * (a heap copy of exactly that many, so that a read past them is caught
 * under ASan), starting from the 4 KiB the loader reads first, says what
 * it says given the whole file. */
static void same_from_the_head(const uint8_t *f, size_t n)
{
    vmc_pe_obj_t whole, part;
    memset(&whole, 0, sizeof whole);
    memset(&part, 0, sizeof part);
    whole.name = part.name = "t_pe_basic.dll";
    int e = vmc__pe_check(&whole, f, n);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", e ? vmc_last_error() : "");
    size_t have = n < 4096 ? n : 4096, need;
    int rounds = 0;
    while ((need = vmc__pe_head_size(f, have, n)) > have) {
        ASSERT(need <= n);
        have = need;
        ASSERT(++rounds <= 4);
    }
    uint8_t *head = malloc(have ? have : 1);
    ASSERT(head);
    memcpy(head, f, have);
    ASSERT_EQ(vmc__pe_check(&part, head, n), e);
    if (e) ASSERT_STR_EQ(vmc_last_error(), msg);
    else ASSERT(!memcmp(&part.pe.sect, &whole.pe.sect, sizeof whole.pe.sect) &&
                part.pe.size_of_headers == whole.pe.size_of_headers && have >= whole.pe.size_of_headers);
    free(head);
}

static void good_open(good_t *g)
{
    g->f = slurp(dll_path("t_pe_basic.dll"), &g->n);
    same_from_the_head(g->f, g->n);
    ASSERT_OK(pe_load(&g->o, "t_pe_basic.dll", g->f, g->n, BASE, &g->img));
}

static void good_close(good_t *g)
{
    vmc__pe_free(&g->o);
    free(g->img);
    free(g->f);
}

/* f (n bytes) is refused with err and exactly `want`. */
static void refused(const uint8_t *f, size_t n, int err, const char *want)
{
    vmc_pe_obj_t o;
    uint8_t *img;
    same_from_the_head(f, n);
    int e = pe_load(&o, "t_pe_basic.dll", f, n, BASE, &img);
    ASSERT_MSG(e == err, "%d (%s), not %d", e, e ? vmc_last_error() : "accepted", err);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT(o.imp.dlls == NULL && o.imp.fn == NULL);  /* nothing kept */
    free(img);
}

static uint8_t *copy(const good_t *g)
{
    uint8_t *c = malloc(g->n);
    ASSERT(c);
    memcpy(c, g->f, g->n);
    return c;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

TEST(pe_broken_headers_refused_with_their_messages)
{
    good_t g;
    good_open(&g);
    const vmc_pe_t *pe = &g.o.pe;
    char want[512];
    uint8_t *c = copy(&g);

    refused(c, 0x30, -ENOEXEC, "t_pe_basic.dll: DOS header (offset 0x0+0x40): file is 0x30 bytes, too short");
    c[0] = 'Z';
    refused(c, g.n, -ENOEXEC, "t_pe_basic.dll: DOS header e_magic (offset 0x0): not MZ: not a PE file");
    c[0] = 'M';
    put32(c + 0x3c, (uint32_t)(g.n - 8) & ~7u);
    snprintf(want, sizeof want, "t_pe_basic.dll: DOS header e_lfanew (offset 0x3c): NT headers 0x%zx+0x18 are past "
             "the end of the file (0x%zx bytes)", (g.n - 8) & ~(size_t)7, g.n);
    refused(c, g.n, -ENOEXEC, want);
    put32(c + 0x3c, 0x44);
    refused(c, g.n, -ENOEXEC, "t_pe_basic.dll: DOS header e_lfanew (offset 0x3c): 0x44 is inside the DOS header "
            "or not 8-byte aligned");
    put32(c + 0x3c, 0x40);
    snprintf(want, sizeof want, "t_pe_basic.dll: NT headers Signature (offset 0x40): not PE\\0\\0");
    refused(c, g.n, -ENOEXEC, want);
    memcpy(c, g.f, g.n);

    c[pe->nt + 4] = 0x4c;  /* Machine: i386 */
    c[pe->nt + 5] = 0x01;
    snprintf(want, sizeof want, "t_pe_basic.dll: file header Machine (offset 0x%x+0x4): machine 0x14c is not AMD64 "
             "(0x8664)", pe->nt);
    refused(c, g.n, -ENOEXEC, want);
    memcpy(c, g.f, g.n);
    c[pe->opt] = 0x0b;  /* Magic: PE32 */
    c[pe->opt + 1] = 0x01;
    snprintf(want, sizeof want, "t_pe_basic.dll: optional header Magic (offset 0x%x+0x0): 0x10b is PE32 (32-bit), "
             "not PE32+", pe->opt);
    refused(c, g.n, -ENOEXEC, want);
    memcpy(c, g.f, g.n);
    c[pe->opt + 68] = 1;  /* Subsystem: native */
    snprintf(want, sizeof want, "t_pe_basic.dll: optional header Subsystem (offset 0x%x+0x44): subsystem 1 is not a "
             "Windows user-mode one (2, GUI, or 3, console)", pe->opt);
    refused(c, g.n, -ENOEXEC, want);
    memcpy(c, g.f, g.n);
    put32(c + pe->opt + 112 + 8 * 14, 0x2000);  /* a COR20 header */
    put32(c + pe->opt + 116 + 8 * 14, 0x48);
    snprintf(want, sizeof want, "t_pe_basic.dll: optional header DataDirectory (offset 0x%x+0xe0): a .NET assembly "
             "(COR20 header) is not supported", pe->opt);
    refused(c, g.n, -ENOTSUP, want);
    memcpy(c, g.f, g.n);
    put32(c + pe->opt + 116 + 8 * 1, pe->size_of_image);  /* import directory past the image */
    snprintf(want, sizeof want, "t_pe_basic.dll: optional header DataDirectory (offset 0x%x+0x78): the import "
             "directory 0x%x+0x%x is outside the image (0x%x bytes)", pe->opt, pe->dir[1].rva, pe->size_of_image,
             pe->size_of_image);
    refused(c, g.n, -ENOEXEC, want);
    memcpy(c, g.f, g.n);

    /* truncated just after the optional header: no room for the section table */
    snprintf(want, sizeof want, "t_pe_basic.dll: section table (offset 0x%x): %u section headers (0x%x bytes) are past "
             "the end of the file (0x%x bytes)", pe->sect_off, pe->nsect, 40 * pe->nsect, pe->sect_off + 40);
    refused(c, pe->sect_off + 40, -ENOEXEC, want);
    /* every shorter length is refused, none crashes; every length short of
     * the last section's raw end is refused */
    uint32_t raw_end = 0;
    for (uint32_t i = 0; i < pe->nsect; i++)
        if (pe->sect[i].rawsize && pe->sect[i].raw + pe->sect[i].rawsize > raw_end)
            raw_end = pe->sect[i].raw + pe->sect[i].rawsize;
    ASSERT_LE(raw_end, g.n);  /* a COFF symbol table may follow */
    for (size_t len = 0; len < raw_end; len += len < 4096 ? 1 : 509) {
        vmc_pe_obj_t o;
        uint8_t *img;
        int e = pe_load(&o, "t_pe_basic.dll", g.f, len, BASE, &img);
        ASSERT_MSG(e == -ENOEXEC, "length %zu: %d", len, e);
        ASSERT_STR_CONTAINS(vmc_last_error(), "t_pe_basic.dll: ");
        free(img);
    }
    free(c);
    good_close(&g);
}

TEST(pe_broken_sections_refused_with_their_messages)
{
    good_t g;
    good_open(&g);
    const vmc_pe_t *pe = &g.o.pe;
    char want[512];
    uint8_t *c = copy(&g);
    const vmc_pe_sect_t *t = &pe->sect[0], *s1 = &pe->sect[1];
    ASSERT_STR_EQ(t->name, ".text");
    uint8_t *h0 = c + pe->sect_off, *h1 = h0 + 40;

    put32(h0 + 16, (uint32_t)g.n);  /* SizeOfRawData past the file */
    snprintf(want, sizeof want, "t_pe_basic.dll: section header 0 .text (offset 0x%x+0x0): PointerToRawData 0x%x + "
             "SizeOfRawData 0x%zx is past the end of the file (0x%zx bytes)", pe->sect_off, t->raw, g.n, g.n);
    refused(c, g.n, -ENOEXEC, want);
    put32(h0 + 16, 0xffffffffu);  /* and where the sum wraps in 32 bits */
    snprintf(want, sizeof want, "t_pe_basic.dll: section header 0 .text (offset 0x%x+0x0): PointerToRawData 0x%x + "
             "SizeOfRawData 0xffffffff is past the end of the file (0x%zx bytes)", pe->sect_off, t->raw, g.n);
    refused(c, g.n, -ENOEXEC, want);
    memcpy(c, g.f, g.n);

    put32(h0 + 36, t->chars | VMC_PE_SCN_WRITE);  /* W+X */
    snprintf(want, sizeof want, "t_pe_basic.dll: section header 0 .text (offset 0x%x+0x0): a writable and "
             "executable section (Characteristics 0x%x) is not supported", pe->sect_off, t->chars | VMC_PE_SCN_WRITE);
    refused(c, g.n, -ENOTSUP, want);
    memcpy(c, g.f, g.n);

    put32(h1 + 12, t->va);  /* section 1 over section 0 */
    snprintf(want, sizeof want, "t_pe_basic.dll: section header 1 %s (offset 0x%x+0x28): VirtualAddress 0x%x overlaps "
             "section 0 (up to 0x%x)", s1->name, pe->sect_off, t->va, (t->va + t->vsize + 0xfff) & ~0xfffu);
    refused(c, g.n, -ENOEXEC, want);
    put32(h1 + 12, t->va - 0x1000);  /* below it: not sorted */
    snprintf(want, sizeof want, "t_pe_basic.dll: section header 1 %s (offset 0x%x+0x28): VirtualAddress 0x%x is below "
             "section 0's 0x%x (not sorted)", s1->name, pe->sect_off, t->va - 0x1000, t->va);
    refused(c, g.n, -ENOEXEC, want);
    put32(h1 + 12, s1->va + 0x10);  /* not aligned */
    snprintf(want, sizeof want, "t_pe_basic.dll: section header 1 %s (offset 0x%x+0x28): VirtualAddress 0x%x is not a "
             "multiple of SectionAlignment (0x1000)", s1->name, pe->sect_off, s1->va + 0x10);
    refused(c, g.n, -ENOEXEC, want);
    memcpy(c, g.f, g.n);
    const vmc_pe_sect_t *last = &pe->sect[pe->nsect - 1];
    put32(c + pe->sect_off + 40 * (pe->nsect - 1) + 8, 0xfffff000u);  /* VirtualSize past SizeOfImage */
    snprintf(want, sizeof want, "t_pe_basic.dll: section header %u %s (offset 0x%x+0x%x): VirtualAddress 0x%x + "
             "VirtualSize 0xfffff000 is past SizeOfImage (0x%x)", pe->nsect - 1, last->name, pe->sect_off,
             40 * (pe->nsect - 1), last->va, pe->size_of_image);
    refused(c, g.n, -ENOEXEC, want);
    free(c);
    good_close(&g);
}

TEST(pe_broken_directories_refused_with_their_messages)
{
    good_t g;
    good_open(&g);
    const vmc_pe_t *pe = &g.o.pe;
    char want[512];
    uint8_t *c = copy(&g);
    uint32_t rel = pe->dir[VMC_PE_DIR_BASERELOC].rva;
    uint64_t roff = vmc__pe_offset(pe, rel);

    put32(c + roff, pe->size_of_image);  /* relocation block past the image */
    snprintf(want, sizeof want, "t_pe_basic.dll: base relocation block 0 (offset 0x%llx+0x0): VirtualAddress 0x%x is "
             "past the image (SizeOfImage 0x%x)", (unsigned long long)roff, pe->size_of_image, pe->size_of_image);
    refused(c, g.n, -ENOEXEC, want);
    put32(c + roff, pe->size_of_image - 0x1000);  /* in the image, targets past it */
    uint16_t e0 = vmc__pe_u16(g.f + roff + 8);
    c[roff + 8] = 0xff;
    c[roff + 9] = 0xaf;  /* DIR64 at offset 0xfff */
    snprintf(want, sizeof want, "t_pe_basic.dll: base relocation block 0 entry 0 (offset 0x%llx+0x8): target 0x%llx+8 "
             "is past the image (SizeOfImage 0x%x)", (unsigned long long)roff,
             (unsigned long long)(pe->size_of_image - 1), pe->size_of_image);
    refused(c, g.n, -ENOEXEC, want);
    memcpy(c, g.f, g.n);
    c[roff + 9] = (uint8_t)(0x30 | ((e0 >> 8) & 0xf));  /* HIGHLOW */
    snprintf(want, sizeof want, "t_pe_basic.dll: base relocation block 0 entry 0 (offset 0x%llx+0x8): type 3 "
             "(IMAGE_REL_BASED_HIGHLOW) is not supported", (unsigned long long)roff);
    refused(c, g.n, -ENOTSUP, want);
    memcpy(c, g.f, g.n);
    put32(c + roff + 4, pe->dir[VMC_PE_DIR_BASERELOC].size + 8);  /* SizeOfBlock past the directory */
    snprintf(want, sizeof want, "t_pe_basic.dll: base relocation block 0 (offset 0x%llx+0x0): SizeOfBlock 0x%x is not "
             "an even size from 8 to the directory's end (0x%x bytes left)", (unsigned long long)roff,
             pe->dir[VMC_PE_DIR_BASERELOC].size + 8, pe->dir[VMC_PE_DIR_BASERELOC].size);
    refused(c, g.n, -ENOEXEC, want);
    memcpy(c, g.f, g.n);
    put32(c + pe->opt + 112 + 8 * 5, 0);  /* no relocations, and it must move */
    put32(c + pe->opt + 116 + 8 * 5, 0);
    snprintf(want, sizeof want, "t_pe_basic.dll: base relocation directory (offset 0x%x+0x98): the DLL is not "
             "relocatable (no relocations) and must move from ImageBase 0x%llx to 0x%llx", pe->opt,
             (unsigned long long)pe->image_base, BASE);
    refused(c, g.n, -ENOTSUP, want);
    memcpy(c, g.f, g.n);

    /* an import name outside the image */
    uint32_t imp = pe->dir[VMC_PE_DIR_IMPORT].rva;
    uint64_t ioff = vmc__pe_offset(pe, imp);
    put32(c + ioff + 12, pe->size_of_image + 0x10);
    snprintf(want, sizeof want, "t_pe_basic.dll: import descriptor 0 (offset 0x%llx+0x0): Name 0x%x is not a string "
             "inside the image (SizeOfImage 0x%x)", (unsigned long long)ioff, pe->size_of_image + 0x10,
             pe->size_of_image);
    refused(c, g.n, -ENOEXEC, want);
    memcpy(c, g.f, g.n);
    /* an imported function's hint/name outside the image */
    uint32_t look = vmc__pe_u32(g.f + ioff);
    uint64_t loff = vmc__pe_offset(pe, look);
    put32(c + loff + 8, pe->size_of_image - 1);
    snprintf(want, sizeof want, "t_pe_basic.dll: import descriptor 0 KERNEL32.dll lookup entry 1 (offset "
             "0x%llx+0x8): hint/name 0x%x is not a name inside the image (SizeOfImage 0x%x)",
             (unsigned long long)loff, pe->size_of_image - 1, pe->size_of_image);
    refused(c, g.n, -ENOEXEC, want);
    memcpy(c, g.f, g.n);

    /* export names out of order */
    uint32_t exp = pe->dir[VMC_PE_DIR_EXPORT].rva;
    uint64_t eoff = vmc__pe_offset(pe, exp);
    uint64_t noff = vmc__pe_offset(pe, vmc__pe_u32(g.f + eoff + 32));
    memcpy(c + noff, g.f + noff + 4, 4);
    memcpy(c + noff + 4, g.f + noff, 4);
    snprintf(want, sizeof want, "t_pe_basic.dll: export directory (offset 0x%llx+0x20): name 1 t_add is not after "
             "name 0 t_attach: the names are not sorted", (unsigned long long)eoff);
    refused(c, g.n, -ENOEXEC, want);
    memcpy(c, g.f, g.n);

    /* implicit TLS data: a byte of the template set */
    uint32_t tls = pe->dir[VMC_PE_DIR_TLS].rva;
    uint64_t toff = vmc__pe_offset(pe, tls);
    uint64_t start = vmc__pe_u64(g.f + toff), end = vmc__pe_u64(g.f + toff + 8);
    c[vmc__pe_offset(pe, start - pe->image_base)] = 1;
    snprintf(want, sizeof want, "t_pe_basic.dll: TLS directory (offset 0x%llx+0x0): implicit thread-local data "
             "(__declspec(thread): a 0x%llx-byte template, SizeOfZeroFill 0x0) is not supported",
             (unsigned long long)toff, (unsigned long long)(end - start));
    refused(c, g.n, -ENOTSUP, want);
    free(c);
    good_close(&g);
}

/* A load config with Control Flow Guard flags, written into the headers'
 * unused tail (MinGW's GCC cannot build a /guard:cf DLL). */
TEST(pe_load_config_guard_flags_reported)
{
    good_t g;
    good_open(&g);
    const vmc_pe_t *pe = &g.o.pe;
    uint8_t *c = copy(&g);
    uint32_t at = pe->size_of_headers - 0x100;
    ASSERT_GE(at, pe->sect_off + 40 * pe->nsect);
    memset(c + at, 0, 0x100);
    put32(c + at, 0x94);
    put32(c + at + 0x90, VMC_PE_GUARD_CF_INSTRUMENTED | 0x400);
    uint64_t slot = pe->image_base + at + 0xa0;  /* a slot inside the image */
    memcpy(c + at + 0x70, &slot, 8);
    put32(c + pe->opt + 112 + 8 * 10, at);
    put32(c + pe->opt + 116 + 8 * 10, 0x94);
    vmc_pe_obj_t o;
    uint8_t *img;
    /* at its preferred base: the slot's address needs no relocation */
    ASSERT_OK(pe_load(&o, "t_pe_basic.dll", c, g.n, pe->image_base, &img));
    ASSERT(o.has_load_config);
    ASSERT_EQ(o.guard_flags, VMC_PE_GUARD_CF_INSTRUMENTED | 0x400);
    ASSERT_EQ(o.guard_check, at + 0xa0);
    ASSERT_EQ(o.guard_dispatch, 0);
    vmc__pe_free(&o);
    free(img);
    slot = pe->image_base + pe->size_of_image;
    memcpy(c + at + 0x70, &slot, 8);
    char want[512];
    snprintf(want, sizeof want, "t_pe_basic.dll: load config GuardCFCheckFunctionPointer (offset 0x%x+0x70): 0x%llx "
             "is not inside the image", at, (unsigned long long)slot);
    vmc_pe_obj_t o2;
    ASSERT_EQ(pe_load(&o2, "t_pe_basic.dll", c, g.n, pe->image_base, &img), -ENOEXEC);
    ASSERT_STR_EQ(vmc_last_error(), want);
    free(img);
    free(c);
    good_close(&g);
}

/* Random byte changes in the headers and tables: refused or read, never a
 * crash or an out-of-bounds read (make check-asan). */
TEST(pe_random_mutations_never_crash)
{
    good_t g;
    good_open(&g);
    const vmc_pe_t *pe = &g.o.pe;
    uint32_t hot[] = {pe->dir[0].rva, pe->dir[1].rva, pe->dir[3].rva, pe->dir[5].rva, pe->dir[9].rva};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    uint8_t *c = copy(&g);
    int accepted = 0;
    for (int round = 0; round < 2000; round++) {
        memcpy(c, g.f, g.n);
        int k = 1 + (int)(vt_xorshift(&seed) % 8);
        for (int j = 0; j < k; j++) {
            uint64_t r = vt_xorshift(&seed);
            size_t at;
            if (r & 1) at = (r >> 8) % pe->size_of_headers;
            else at = vmc__pe_offset(pe, hot[(r >> 4) % 5] + (r >> 16) % 64) % g.n;
            c[at] = (uint8_t)(vt_xorshift(&seed) >> 32);
        }
        same_from_the_head(c, g.n);
        vmc_pe_obj_t o;
        uint8_t *img;
        int e = pe_load(&o, "m.dll", c, g.n, BASE, &img);
        if (!e) {
            accepted++;
            vmc_pe_sym_t s;
            (void)vmc__pe_export(&o, "t_add", &s);
            (void)vmc__pe_export(&o, "#12", &s);
            vmc__pe_free(&o);
        } else {
            ASSERT_MSG(e == -ENOEXEC || e == -ENOTSUP, "%d: %s", e, vmc_last_error());
            ASSERT_STR_CONTAINS(vmc_last_error(), "m.dll: ");
        }
        free(img);
    }
    ASSERT_GT(accepted, 0);
    free(c);
    good_close(&g);
}

/* vmc__pe_nearest (vmc_addr_info's answer for a DLL): the named export at
 * or below an RVA in its section; none in a section without exports or in
 * the headers; a forwarder never. */
TEST(pe_nearest_export_at_or_below)
{
    good_t g;
    good_open(&g);
    vmc_pe_sym_t add, counter;
    ASSERT(vmc__pe_export(&g.o, "t_add", &add) && vmc__pe_export(&g.o, "t_counter", &counter));
    const char *name;
    uint32_t at;
    ASSERT(vmc__pe_nearest(&g.o, add.rva, &name, &at));
    ASSERT_STR_EQ(name, "t_add");
    ASSERT_EQ(at, add.rva);
    ASSERT(vmc__pe_nearest(&g.o, add.rva + 1, &name, &at));
    ASSERT_STR_EQ(name, "t_add");
    ASSERT(vmc__pe_nearest(&g.o, counter.rva + 3, &name, &at));
    ASSERT_STR_EQ(name, "t_counter");
    ASSERT(!vmc__pe_nearest(&g.o, 0x10, &name, &at));   /* the headers */
    ASSERT(!vmc__pe_nearest(&g.o, g.o.pdata, &name, &at));   /* .pdata: no export */
    ASSERT(!vmc__pe_nearest(&g.o, g.o.pe.size_of_image, &name, &at));
    /* every answer is a named, not forwarded, export at or below */
    const vmc_pe_sect_t *text = &g.o.pe.sect[0];
    for (uint32_t r = text->va; r < text->va + text->vsize; r += 7)
        if (vmc__pe_nearest(&g.o, r, &name, &at)) {
            vmc_pe_sym_t s;
            ASSERT(vmc__pe_export(&g.o, name, &s) && !s.forward && s.rva == at && at <= r && at >= text->va);
        }
    good_close(&g);
}

/* t_pe_cfg.dll (clang -cfguard, lld-link /guard:cf): marked GUARD_CF, its
 * load config read at another base, both guard slots found and relocated
 * with the image to functions of its own executable code. */
TEST(pe_cfg_dll_read_with_its_guard_slots)
{
    size_t n;
    uint8_t *f = slurp(dll_path("t_pe_cfg.dll"), &n), *img;
    vmc_pe_obj_t o;
    ASSERT_OK(pe_load(&o, "t_pe_cfg.dll", f, n, BASE, &img));
    ASSERT(o.pe.dll_chars & VMC_PE_DLL_GUARD_CF);
    ASSERT(o.has_load_config);
    ASSERT(o.guard_flags & VMC_PE_GUARD_CF_INSTRUMENTED);
    ASSERT(o.guard_check && o.guard_dispatch);
    uint64_t check = vmc__pe_u64(img + o.guard_check), dispatch = vmc__pe_u64(img + o.guard_dispatch);
    ASSERT(check >= BASE && dispatch >= BASE);
    ASSERT(vmc__pe_executable(&o.pe, check - BASE) && vmc__pe_executable(&o.pe, dispatch - BASE));
    vmc__pe_free(&o);
    free(img);
    free(f);
}

/* t_pe_tls.dll: implicit thread-local data as a compiler with native TLS
 * makes it (an int in .tls$), refused once the image is relocated (the
 * TLS directory holds addresses), nothing kept. */
TEST(pe_implicit_tls_dll_refused)
{
    size_t n;
    uint8_t *f = slurp(dll_path("t_pe_tls.dll"), &n), *img;
    vmc_pe_obj_t o;
    memset(&o, 0, sizeof o);
    o.name = "t_pe_tls.dll";
    ASSERT_OK(vmc__pe_check(&o, f, n));
    uint64_t toff = vmc__pe_offset(&o.pe, o.pe.dir[VMC_PE_DIR_TLS].rva);
    uint64_t start = vmc__pe_u64(f + toff), end = vmc__pe_u64(f + toff + 8);
    ASSERT_GT(end - start, 8);
    char want[300];
    snprintf(want, sizeof want, "t_pe_tls.dll: TLS directory (offset 0x%llx+0x0): implicit thread-local data "
             "(__declspec(thread): a 0x%llx-byte template, SizeOfZeroFill 0x0) is not supported",
             (unsigned long long)toff, (unsigned long long)(end - start));
    ASSERT_EQ(pe_load(&o, "t_pe_tls.dll", f, n, BASE, &img), -ENOTSUP);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT(o.imp.dlls == NULL && o.imp.fn == NULL);
    free(img);
    free(f);
}

TEST(pe_magic_tells_pe_from_elf)
{
    ASSERT(vmc__pe_magic((const uint8_t *)"MZ\x90", 3));
    ASSERT(!vmc__pe_magic((const uint8_t *)"\x7f" "ELF", 4));
    ASSERT(!vmc__pe_magic((const uint8_t *)"M", 1));
}

/* The lifecycle picks the PE layer by the magic: on Linux a valid DLL is
 * refused as Windows-only, a broken one with the PE layer's message, from a
 * file and from memory, leaving nothing behind. */
TEST(pe_lib_load_picks_the_pe_layer_by_magic)
{
    const char *path = dll_path("t_pe_basic.dll");
    char p[1024];
    snprintf(p, sizeof p, "%s", path);
    size_t n;
    uint8_t *f = slurp(p, &n);
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 0");
    vt_snapshot_t snap;
    vt_snap(&snap);
    vmc_lib_t *l;
    ASSERT_EQ(vmc_lib_load_mem(v, f, n, "t_pe_basic.dll", 0, &l), -ENOTSUP);
    ASSERT_STR_EQ(vmc_last_error(), "t_pe_basic.dll: a PE32+ DLL (Windows x64): Windows DLLs are loaded "
                                    "privately on Windows only");
    ASSERT_EQ(vmc_lib_load(v, p, 0, &l), -ENOTSUP);
    char want[1600];
    snprintf(want, sizeof want, "%s: a PE32+ DLL (Windows x64): Windows DLLs are loaded privately on Windows only",
             p);
    ASSERT_STR_EQ(vmc_last_error(), want);
    uint8_t o_nt = f[0x3c];
    f[0x3c] = 0x44;
    ASSERT_EQ(vmc_lib_load_mem(v, f, n, "t_pe_basic.dll", VMC_LOAD_INERT, &l), -ENOEXEC);
    ASSERT_STR_EQ(vmc_last_error(), "t_pe_basic.dll: DOS header e_lfanew (offset 0x3c): 0x44 is inside the DOS "
                                    "header or not 8-byte aligned");
    /* headers past the first 4 KiB the lifecycle reads: read again, as
     * many as vmc__pe_head_size asks for (SizeOfHeaders 0x1200, which then
     * overlaps .text), and that second read failing */
    f[0x3c] = (uint8_t)o_nt;
    vmc_pe_obj_t o;
    memset(&o, 0, sizeof o);
    o.name = "x";
    ASSERT_OK(vmc__pe_check(&o, f, n));
    uint32_t soh = 0x1200;
    memcpy(f + o.pe.opt + 60, &soh, 4);
    char big[200];
    snprintf(big, sizeof big, "/tmp/vmc-t_pe_big_headers-%ld.dll", (long)getpid());
    FILE *out = fopen(big, "wb");
    ASSERT(out && fwrite(f, 1, n, out) == n && !fclose(out));
    vmc__os_fault(VMC_OS_PREAD, 2, EIO, 0);
    ASSERT_EQ(vmc_lib_load(v, big, 0, &l), -EIO);
    ASSERT_EQ(vmc__os_faults_hit(), 1);
    vmc__os_fault_clear();
    snprintf(want, sizeof want, "%s: reading the PE headers: %s", big, strerror(EIO));
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_EQ(vmc_lib_load(v, big, 0, &l), -ENOEXEC);
    snprintf(want, sizeof want, "%s: section header 0 .text (offset 0x%x+0x0): VirtualAddress 0x1000 overlaps the "
             "headers (SizeOfHeaders 0x1200)", big, o.pe.sect_off);
    ASSERT_STR_EQ(vmc_last_error(), want);
    remove(big);
    memcpy(f + o.pe.opt + 60, &o.pe.size_of_headers, 4);
    ASSERT_EQ(vmc_lib_load_mem(v, f, 0x20, "t_pe_basic.dll", 0, &l), -ENOEXEC);
    ASSERT_STR_EQ(vmc_last_error(), "t_pe_basic.dll: DOS header (offset 0x0+0x40): file is 0x20 bytes, too short");
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 0);
    ASSERT_NO_LEAK(snap);
    vt_snap_free(&snap);
    vmc_close(v);
    free(f);
}
