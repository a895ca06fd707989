/* The private loader on real libraries: system libz and libzstd, and the
 * small libraries of tests/libs (IFUNC, versions, weak, constructors,
 * chains, host callbacks, DT_RELR). */
#include "test.h"
#include "vmcode.h"
#include "elfimg.h"
#include "os/os.h"
#include "lib/loader.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- host side: what the test libraries call back ------------------------ */

static char lib_log[1024];
void vt_lib_log(const char *what);
void vt_lib_log(const char *what)
{
    size_t n = strlen(lib_log);
    snprintf(lib_log + n, sizeof lib_log - n, "%s%s", n ? " " : "", what);
}
int vt_host_add(int a, int b);
int vt_host_add(int a, int b) { return a + b; }
/* An unversioned definition of a versioned libc function, interposing it
 * for every library as the program's own malloc or a sanitizer's
 * interceptors do. */
int getloadavg(double *loadavg, int nelem)
{
    (void)loadavg;
    (void)nelem;
    return 4242;
}

/* ---- helpers ----------------------------------------------------------------- */


/* A handle whose code region has had a library in it once: the block layer
 * maps its own tables at the first run taken, and dlopen fills its caches at
 * the first look-ups, so later snapshots see only what a load leaves. */
static vmc_t *open_region(void)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &l));
    ASSERT_OK(vmc_lib_unload(l));
    return v;
}

/* The system's copy of a library, or NULL. */
static const char *syslib(const char *name)
{
    static const char *const dirs[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                       "/usr/lib64", "/lib64", "/usr/lib"};
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, 512, "%s/%s", dirs[i], name);
        if (access(p, R_OK) == 0) return p;
    }
    return NULL;
}

static int in_lib(vmc_lib_t *l, const void *p)
{
    void *s;
    size_t n;
    if (vmc_lib_span(l, &s, &n)) return 0;
    return (uintptr_t)p >= (uintptr_t)s && (uintptr_t)p - (uintptr_t)s < n;
}

/* Every line of /proc/self/maps that is new since `before` lies inside the
 * code region (under a sanitizer, its allocator's anonymous mappings
 * excepted: they come and go with malloc). */
static void assert_new_maps_inside(vmc_t *v, const char *before)
{
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    uintptr_t lo = (uintptr_t)in.code_base, hi = lo + in.code_size;
    char *now = vt_read_file("/proc/self/maps");
    for (char *line = strtok(now, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(before, line) || strstr(line, "[heap]")) continue;
        unsigned long a, b;
        ASSERT(sscanf(line, "%lx-%lx", &a, &b) == 2);
        if (vt_sanitized() && !strchr(line, '/') && (a >= hi || b <= lo)) continue;
        ASSERT_MSG(a >= lo && b <= hi, "new mapping outside the code region: %s", line);
    }
    free(now);
}

/* Each GLOB_DAT/JUMP_SLOT/64 slot of the loaded library whose symbol the
 * library defines itself holds an address inside the library (self first);
 * the others hold an address outside the region (the host's). */
static int check_self_binding(vmc_t *v, vmc_lib_t *l, const char *path)
{
    vt_img_t m;
    ASSERT_OK(vt_img_read(path, &m));
    void *start;
    size_t len;
    ASSERT_OK(vmc_lib_span(l, &start, &len));
    uintptr_t bias = (uintptr_t)start - vt_img_lo(&m);
    Elf64_Dyn *symtab = vt_dyn(&m, DT_SYMTAB, NULL);
    Elf64_Sym *syms = (Elf64_Sym *)(m.b + vt_v2o(&m, symtab->d_un.d_ptr));
    int self = 0;
    int64_t tabs[2][2] = {{DT_RELA, DT_RELASZ}, {DT_JMPREL, DT_PLTRELSZ}};
    for (int t = 0; t < 2; t++) {
        Elf64_Dyn *a = vt_dyn(&m, tabs[t][0], NULL), *sz = vt_dyn(&m, tabs[t][1], NULL);
        if (!a || !sz) continue;
        Elf64_Rela *r = (Elf64_Rela *)(m.b + vt_v2o(&m, a->d_un.d_ptr));
        for (size_t i = 0; i < sz->d_un.d_val / sizeof *r; i++) {
            unsigned type = ELF64_R_TYPE(r[i].r_info);
            Elf64_Sym *s = &syms[ELF64_R_SYM(r[i].r_info)];
            if (type != R_X86_64_GLOB_DAT && type != R_X86_64_JUMP_SLOT && type != R_X86_64_64) continue;
            if (!ELF64_R_SYM(r[i].r_info)) continue;
            uintptr_t got = *(uintptr_t *)(bias + r[i].r_offset);
            if (s->st_shndx != SHN_UNDEF) {
                ASSERT_MSG(in_lib(l, (void *)got), "slot 0x%lx bound outside the library",
                           (unsigned long)r[i].r_offset);
                self++;
            } else if (got) {
                ASSERT_MSG(!vt_in_code_region(v, (void *)got), "undefined symbol's slot 0x%lx bound inside the region",
                           (unsigned long)r[i].r_offset);
            }
        }
    }
    vt_img_free(&m);
    return self;
}

/* ---- libz ------------------------------------------------------------------- */

typedef int (*z_compress2_t)(uint8_t *, unsigned long *, const uint8_t *, unsigned long, int);
typedef int (*z_uncompress_t)(uint8_t *, unsigned long *, const uint8_t *, unsigned long);
typedef unsigned long (*z_crc32_t)(unsigned long, const uint8_t *, unsigned);
typedef const char *(*z_version_t)(void);

static void fill(uint8_t *buf, size_t n)
{
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245 + 12345;
        buf[i] = (uint8_t)("the quick brown fox jumps over the lazy dog "[i % 44] ^ ((x >> 16) & 3));
    }
}

static void zlib_roundtrip(vmc_t *v, vmc_lib_t *l, void *host)
{
    z_compress2_t pc = (z_compress2_t)vmc_lib_sym(l, "compress2");
    z_uncompress_t pu = (z_uncompress_t)vmc_lib_sym(l, "uncompress");
    z_crc32_t pcrc = (z_crc32_t)vmc_lib_sym(l, "crc32");
    z_version_t pv = (z_version_t)vmc_lib_sym(l, "zlibVersion");
    ASSERT(pc && pu && pcrc && pv);
    ASSERT(in_lib(l, (void *)pc) && in_lib(l, (void *)pu) && in_lib(l, (void *)pcrc));
    ASSERT(vt_in_code_region(v, (void *)pv));
    ASSERT(vmc_lib_sym(l, "no_such_symbol") == NULL);
    z_compress2_t hc = (z_compress2_t)dlsym(host, "compress2");
    z_crc32_t hcrc = (z_crc32_t)dlsym(host, "crc32");
    z_version_t hv = (z_version_t)dlsym(host, "zlibVersion");
    ASSERT(hc && hcrc && hv && (void *)hc != (void *)pc);
    ASSERT_STR_EQ(pv(), hv());
    size_t n = 200000;
    uint8_t *src = malloc(n), *a = malloc(n * 2), *b = malloc(n * 2), *back = malloc(n);
    fill(src, n);
    unsigned long an = n * 2, bn = n * 2, backn = n;
    ASSERT_EQ(pc(a, &an, src, n, 9), 0);
    ASSERT_EQ(hc(b, &bn, src, n, 9), 0);
    ASSERT_EQ(an, bn);
    ASSERT(memcmp(a, b, an) == 0);
    ASSERT_EQ(pu(back, &backn, a, an), 0);
    ASSERT_EQ(backn, n);
    ASSERT(memcmp(back, src, n) == 0);
    ASSERT_EQ(pcrc(0, src, (unsigned)n), hcrc(0, src, (unsigned)n));
    free(src);
    free(a);
    free(b);
    free(back);
}

TEST(loader_libz_private_roundtrip)
{
    const char *path = syslib("libz.so.1");
    if (!path) SKIP("no libz.so.1 on this system");
    vmc_t *v = open_region();
    char *before = vt_read_file("/proc/self/maps");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    assert_new_maps_inside(v, before);
    free(before);
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 1);
    ASSERT_GT(check_self_binding(v, l, path), 0);
    void *host = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    ASSERT(host);
    zlib_roundtrip(v, l, host);
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 0);
    dlclose(host);
    vmc_close(v);
}

TEST(loader_libz_binds_itself_with_host_copy_global)
{
    const char *path = syslib("libz.so.1");
    if (!path) SKIP("no libz.so.1 on this system");
    void *host = dlopen("libz.so.1", RTLD_NOW | RTLD_GLOBAL);
    ASSERT(host);
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    ASSERT_GT(check_self_binding(v, l, path), 0);
    zlib_roundtrip(v, l, host);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
    dlclose(host);
}

typedef size_t (*zstd_bound_t)(size_t);
typedef size_t (*zstd_compress_t)(void *, size_t, const void *, size_t, int);
typedef size_t (*zstd_decompress_t)(void *, size_t, const void *, size_t);
typedef unsigned (*zstd_iserror_t)(size_t);
typedef unsigned (*zstd_version_t)(void);

TEST(loader_libzstd_private_roundtrip)
{
    const char *path = syslib("libzstd.so.1");
    if (!path) SKIP("no libzstd.so.1 on this system");
    vmc_t *v = open_region();
    char *before = vt_read_file("/proc/self/maps");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    assert_new_maps_inside(v, before);
    free(before);
    ASSERT_GT(check_self_binding(v, l, path), 0);
    void *host = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
    ASSERT(host);
    zstd_bound_t pb = (zstd_bound_t)vmc_lib_sym(l, "ZSTD_compressBound");
    zstd_compress_t pc = (zstd_compress_t)vmc_lib_sym(l, "ZSTD_compress");
    zstd_decompress_t pd = (zstd_decompress_t)vmc_lib_sym(l, "ZSTD_decompress");
    zstd_iserror_t pe = (zstd_iserror_t)vmc_lib_sym(l, "ZSTD_isError");
    zstd_version_t pv = (zstd_version_t)vmc_lib_sym(l, "ZSTD_versionNumber");
    ASSERT(pb && pc && pd && pe && pv);
    ASSERT(in_lib(l, (void *)pc) && in_lib(l, (void *)pd) && vt_in_code_region(v, (void *)pb));
    zstd_compress_t hc = (zstd_compress_t)dlsym(host, "ZSTD_compress");
    zstd_version_t hv = (zstd_version_t)dlsym(host, "ZSTD_versionNumber");
    ASSERT(hc && hv);
    ASSERT_EQ(pv(), hv());
    size_t n = 300000, cap = pb(n);
    uint8_t *src = malloc(n), *a = malloc(cap), *b = malloc(cap), *back = malloc(n);
    fill(src, n);
    for (int level = 1; level <= 19; level += 6) {
        size_t an = pc(a, cap, src, n, level), bn = hc(b, cap, src, n, level);
        ASSERT(!pe(an));
        ASSERT_EQ(an, bn);
        ASSERT(memcmp(a, b, an) == 0);
        size_t backn = pd(back, n, a, an);
        ASSERT_EQ(backn, n);
        ASSERT(memcmp(back, src, n) == 0);
    }
    free(src);
    free(a);
    free(b);
    free(back);
    ASSERT_OK(vmc_lib_unload(l));
    dlclose(host);
    vmc_close(v);
}

/* A few more system libraries, with whatever dependencies they bring: all
 * loaded at once, looked into, unloaded; the second round leaves nothing. */
TEST(loader_system_libraries_together)
{
    static const struct { const char *lib, *sym; } libs[] = {
        {"libz.so.1", "deflate"}, {"libzstd.so.1", "ZSTD_compress"}, {"libbz2.so.1.0", "BZ2_bzCompress"},
        {"liblzma.so.5", "lzma_code"}, {"libexpat.so.1", "XML_ParserCreate"}, {"libffi.so.8", "ffi_call"},
        {"libpcre2-8.so.0", "pcre2_compile_8"}, {"libxml2.so.2", "xmlReadMemory"},
    };
    enum { N = sizeof libs / sizeof libs[0] };
    vmc_t *v = open_region();
    vt_snapshot_t snap = {0};
    int loaded = 0;
    for (int round = 0; round < 2; round++) {
        vmc_lib_t *l[N] = {0};
        for (int i = 0; i < N; i++) {
            const char *path = syslib(libs[i].lib);
            if (!path) continue;
            ASSERT_OK(vmc_lib_load(v, path, 0, &l[i]));
            void *p = vmc_lib_sym(l[i], libs[i].sym);
            ASSERT_MSG(p && in_lib(l[i], p), "%s: %s", libs[i].lib, libs[i].sym);
            loaded++;
        }
        for (int i = N; i-- > 0;)
            if (l[i]) ASSERT_OK(vmc_lib_unload(l[i]));
        vmc_stats_t st;
        ASSERT_OK(vmc_stats(v, &st));
        ASSERT_EQ(st.libraries, 0);
        if (round == 0) vt_snap(&snap);
        else ASSERT_NO_LEAK(snap);
    }
    if (!loaded) SKIP("none of the libraries is installed");
    vmc_close(v);
}

/* With W^X dual mapping, images still go over the executable view, with
 * their own protections; nothing is ever writable and executable. */
TEST(loader_under_w_xor_x)
{
    const char *path = syslib("libz.so.1");
    if (!path) SKIP("no libz.so.1 on this system");
    vmc_options_t o;
    vmc_options_init(&o);
    o.w_xor_x = 1;
    vmc_t *v;
    ASSERT_OK(vmc_open(&o, &v));
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.w_xor_x, 1);
    vmc_span_t code;
    ASSERT_OK(vmc_alloc(v, 4096, VMC_CODE, &code));  /* code heap pages dual mapped */
    vmc_lib_t *z, *a, *f;
    ASSERT_OK(vmc_lib_load(v, path, 0, &z));
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_chain_a.so"), 0, &a));
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_ifunc.so"), 0, &f));
    ASSERT_EQ(vt_rwx_count(), 0);
    void *host = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    zlib_roundtrip(v, z, host);
    dlclose(host);
    ASSERT_EQ(((int (*)(void))vmc_lib_sym(a, "t_a_value"))(), 42);
    ASSERT_EQ(((int (*)(void))vmc_lib_sym(f, "t_call_which"))(), 2);
    ASSERT(vmc_writable(v, vmc_lib_sym(z, "deflate")) == NULL);  /* not code-heap code */
    ASSERT_OK(vmc_lib_unload(f));
    ASSERT_OK(vmc_lib_unload(a));
    ASSERT_OK(vmc_lib_unload(z));
    ASSERT_EQ(vt_rwx_count(), 0);
    /* the same places can be loaded again */
    ASSERT_OK(vmc_lib_load(v, path, 0, &z));
    ASSERT_OK(vmc_lib_unload(z));
    ASSERT_OK(vmc_free(v, code.x));
    vmc_close(v);
}

TEST(loader_load_from_memory_matches_file)
{
    const char *path = syslib("libz.so.1");
    if (!path) SKIP("no libz.so.1 on this system");
    vt_img_t m;
    ASSERT_OK(vt_img_read(path, &m));
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load_mem(v, m.b, m.n, "libz-from-memory", 0, &l));
    vt_img_free(&m);  /* the image is copied */
    void *host = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    zlib_roundtrip(v, l, host);
    ASSERT_OK(vmc_lib_unload(l));
    dlclose(host);
    vmc_close(v);
}

TEST(loader_same_file_twice_shares_one_handle)
{
    vmc_t *v = open_region();
    vmc_lib_t *a, *b;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &a));
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &b));
    ASSERT(a == b);
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 1);
    ASSERT_OK(vmc_lib_unload(a));
    int (*add)(int, int) = (int (*)(int, int))vmc_lib_sym(b, "t_add");
    ASSERT_EQ(add(2, 3), 5);
    ASSERT_OK(vmc_lib_unload(b));
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 0);
    vmc_close(v);
}

/* ---- the small test libraries ---------------------------------------------- */

TEST(loader_basic_data_bss_and_host_calls)
{
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &l));
    int (*add)(int, int) = (int (*)(int, int))vmc_lib_sym(l, "t_add");
    const char *(*name)(int) = (const char *(*)(int))vmc_lib_sym(l, "t_name");
    int (*counter)(void) = (int (*)(void))vmc_lib_sym(l, "t_get_counter");
    size_t (*slen)(const char *) = (size_t (*)(const char *))vmc_lib_sym(l, "t_strlen");
    void *(*mc)(void) = (void *(*)(void))vmc_lib_sym(l, "t_memcpy_addr");
    int (*bss)(void) = (int (*)(void))vmc_lib_sym(l, "t_bss_sum");
    int *cnt = vmc_lib_sym(l, "t_counter");
    ASSERT(add && name && counter && slen && mc && bss && cnt);
    ASSERT(in_lib(l, cnt));
    ASSERT_EQ(add(40, 2), 42);
    ASSERT_STR_EQ(name(2), "two");
    ASSERT_EQ(counter(), 5);
    *cnt = 9;
    ASSERT_EQ(counter(), 9);
    ASSERT_EQ(slen("hello"), 5);
    /* host binding as the system loader binds the same library: memcpy is
     * memcpy@GLIBC_2.14 (not the old memcpy@2.2.5), or whatever interposes
     * it (a sanitizer's interceptor); getloadavg is the program's own */
    void *h = dlopen(vt_tlib("libt_basic.so"), RTLD_NOW | RTLD_LOCAL);
    ASSERT(h);
    void *(*sys_mc)(void) = (void *(*)(void))dlsym(h, "t_memcpy_addr");
    int (*sys_la)(void) = (int (*)(void))dlsym(h, "t_loadavg");
    int (*la)(void) = (int (*)(void))vmc_lib_sym(l, "t_loadavg");
    ASSERT(mc() == sys_mc());
    if (!vt_sanitized()) ASSERT(mc() == dlvsym(RTLD_DEFAULT, "memcpy", "GLIBC_2.14"));
    ASSERT_EQ(sys_la(), 4242);
    ASSERT_EQ(la(), 4242);
    dlclose(h);
    ASSERT_EQ(bss(), 0);
    ASSERT_EQ(bss(), 1);
    /* not exported: static, and a versioned-hidden name */
    ASSERT(vmc_lib_sym(l, "names") == NULL);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

TEST(loader_sysv_hash_only)
{
    vt_img_t m;
    ASSERT_OK(vt_img_read(vt_tlib("libt_sysv.so"), &m));
    ASSERT(vt_dyn(&m, DT_HASH, NULL) && !vt_dyn(&m, DT_GNU_HASH, NULL));
    vt_img_free(&m);
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_sysv.so"), 0, &l));
    int (*add)(int, int) = (int (*)(int, int))vmc_lib_sym(l, "t_add");
    size_t (*slen)(const char *) = (size_t (*)(const char *))vmc_lib_sym(l, "t_strlen");
    ASSERT(add && slen && vmc_lib_sym(l, "t_counter") && vmc_lib_sym(l, "t_bss"));
    ASSERT(vmc_lib_sym(l, "t_nothing") == NULL);
    ASSERT_EQ(add(1, 2), 3);
    ASSERT_EQ(slen("four"), 4);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

TEST(loader_ifunc)
{
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_ifunc.so"), 0, &l));
    int (*which)(void) = (int (*)(void))vmc_lib_sym(l, "t_which");
    int (*call)(void) = (int (*)(void))vmc_lib_sym(l, "t_call_which");
    int (**ptr)(void) = vmc_lib_sym(l, "t_which_ptr");
    ASSERT(which && call && ptr);
    ASSERT(in_lib(l, (void *)which));
    ASSERT_EQ(which(), 2);
    ASSERT_EQ(call(), 2);
    ASSERT((void *)*ptr == (void *)which);
    /* a hidden IFUNC: R_X86_64_IRELATIVE, resolved to impl_a */
    vt_img_t m;
    ASSERT_OK(vt_img_read(vt_tlib("libt_ifunc.so"), &m));
    int irel = 0;
    int64_t tabs[2][2] = {{DT_RELA, DT_RELASZ}, {DT_JMPREL, DT_PLTRELSZ}};
    for (int t = 0; t < 2; t++) {
        Elf64_Dyn *a = vt_dyn(&m, tabs[t][0], NULL), *sz = vt_dyn(&m, tabs[t][1], NULL);
        Elf64_Rela *r = a ? (Elf64_Rela *)(m.b + vt_v2o(&m, a->d_un.d_ptr)) : NULL;
        for (size_t i = 0; r && i < sz->d_un.d_val / sizeof *r; i++)
            irel += ELF64_R_TYPE(r[i].r_info) == R_X86_64_IRELATIVE;
    }
    vt_img_free(&m);
    ASSERT_GT(irel, 0);
    int (**hptr)(void) = vmc_lib_sym(l, "t_hidden_ptr");
    int (*hcall)(void) = (int (*)(void))vmc_lib_sym(l, "t_call_hidden");
    ASSERT(hptr && hcall && in_lib(l, (void *)*hptr));
    ASSERT_EQ((*hptr)(), 1);
    ASSERT_EQ(hcall(), 1);
    ASSERT(vmc_lib_sym(l, "t_hidden_which") == NULL);  /* hidden: not exported */
    ASSERT_OK(vmc_lib_unload(l));
    /* inert: no resolver runs, IFUNC slots stay 0 */
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_ifunc.so"), VMC_LOAD_INERT, &l));
    ptr = vmc_lib_sym(l, "t_which_ptr");
    ASSERT(ptr && *ptr == NULL);
    ASSERT(vmc_lib_sym(l, "t_which") == NULL);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

TEST(loader_symbol_versions)
{
    vmc_t *v = open_region();
    vmc_lib_t *ver, *use;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_ver.so"), 0, &ver));
    int (*def)(void) = (int (*)(void))vmc_lib_sym(ver, "t_ver");
    ASSERT(def);
    ASSERT_EQ(def(), 2);  /* the default version, t_ver@@VER_2 */
    ASSERT(vmc_lib_sym(ver, "t_ver_old") == NULL);  /* local by the version script */
    /* a user of both versions, loaded with libt_ver.so as a private dependency */
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_veruse.so"), 0, &use));
    int (*old)(void) = (int (*)(void))vmc_lib_sym(use, "t_use_old");
    int (*neu)(void) = (int (*)(void))vmc_lib_sym(use, "t_use_new");
    ASSERT_EQ(old(), 1);
    ASSERT_EQ(neu(), 2);
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 2);  /* libt_ver.so shared, not loaded twice */
    ASSERT_OK(vmc_lib_unload(use));
    ASSERT_OK(vmc_lib_unload(ver));
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 0);
    vmc_close(v);
}

TEST(loader_weak_undefined_is_zero)
{
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_weak.so"), 0, &l));
    int (*f)(void) = (int (*)(void))vmc_lib_sym(l, "t_weak_is_null");
    ASSERT_EQ(f(), 1);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

TEST(loader_ctor_dtor_order_matches_system_loader)
{
    /* what glibc does with the same library */
    lib_log[0] = 0;
    void *h = dlopen(vt_tlib("libt_ctor.so"), RTLD_NOW | RTLD_LOCAL);
    ASSERT(h);
    char sys_init[256];
    snprintf(sys_init, sizeof sys_init, "%s", lib_log);
    lib_log[0] = 0;
    dlclose(h);
    char sys_fini[256];
    snprintf(sys_fini, sizeof sys_fini, "%s", lib_log);
    ASSERT_STR_EQ(sys_init, "init ctor101 ctor102 ctor");
    ASSERT_STR_EQ(sys_fini, "dtor dtor102 dtor101 fini");

    vmc_t *v = open_region();
    vmc_lib_t *l;
    lib_log[0] = 0;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_ctor.so"), 0, &l));
    ASSERT_STR_EQ(lib_log, sys_init);
    lib_log[0] = 0;
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT_STR_EQ(lib_log, sys_fini);
    /* vmc_close unloads what is left, destructors included */
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_ctor.so"), 0, &l));
    lib_log[0] = 0;
    vmc_close(v);
    ASSERT_STR_EQ(lib_log, sys_fini);
}

TEST(loader_chain_of_two_private_libraries)
{
    vmc_t *v = open_region();
    vmc_lib_t *a;
    lib_log[0] = 0;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_chain_a.so"), 0, &a));
    ASSERT_STR_EQ(lib_log, "b+ a+");  /* dependencies first */
    int (*av)(void) = (int (*)(void))vmc_lib_sym(a, "t_a_value");
    void *(*bp)(void) = (void *(*)(void))vmc_lib_sym(a, "t_a_b_addr");
    ASSERT_EQ(av(), 42);
    ASSERT(vt_in_code_region(v, bp()));    /* libt_chain_b.so is private too */
    ASSERT(!in_lib(a, bp()));
    ASSERT(vmc_lib_sym(a, "t_b_value") == NULL);  /* only a's own symbols */
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 2);
    lib_log[0] = 0;
    ASSERT_OK(vmc_lib_unload(a));
    ASSERT_STR_EQ(lib_log, "a- b-");
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 0);
    /* close with the chain loaded: the same order */
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_chain_a.so"), 0, &a));
    lib_log[0] = 0;
    vmc_close(v);
    ASSERT_STR_EQ(lib_log, "a- b-");
}

TEST(loader_refused_dependency_goes_to_the_system_loader)
{
    vmc_t *v = open_region();
    vmc_lib_t *l;
    /* on its own it is refused: it asks for an executable stack */
    vt_img_t m;
    ASSERT_OK(vt_img_read(vt_tlib("libt_tlsdep.so"), &m));
    int stack = vt_phdr_find(&m, PT_GNU_STACK, 0);
    ASSERT(stack >= 0);
    char want[600];
    snprintf(want, sizeof want, "%s: program header %d (offset 0x%lx+0x%lx): an executable stack (PT_GNU_STACK "
             "with PF_X) is not supported", vt_tlib("libt_tlsdep.so"), stack, (unsigned long)vt_ehdr(&m)->e_phoff,
             (unsigned long)(stack * sizeof(Elf64_Phdr)));
    vt_img_free(&m);
    ASSERT_EQ(vmc_lib_load(v, vt_tlib("libt_tlsdep.so"), 0, &l), -ENOTSUP);
    ASSERT_STR_EQ(vmc_last_error(), want);
    /* as a dependency found next to its user it falls back to dlopen, and
     * vmc_lib_dep says so and why */
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_usetls.so"), 0, &l));
    vmc_lib_dep_t d;
    unsigned k = 0;
    do ASSERT_OK(vmc_lib_dep(l, k, &d));
    while (strcmp(d.name, "libt_tlsdep.so") && ++k);
    ASSERT_EQ(d.how, VMC_DEP_SYSTEM_LOADER);
    ASSERT_EQ(d.where, VMC_DEP_BESIDE);
    ASSERT(d.lib == NULL);
    ASSERT_STR_EQ(d.path, vt_tlib("libt_tlsdep.so"));
    char why[800];
    snprintf(why, sizeof why, "not found by the system loader's search, found beside the library that needs it; "
             "loaded by the system loader because the private loader refuses it: %s", want);
    ASSERT_STR_EQ(d.why, why);
    int (*f)(void) = (int (*)(void))vmc_lib_sym(l, "t_usetls");
    void *(*dep)(void) = (void *(*)(void))vmc_lib_sym(l, "t_usetls_dep_addr");
    ASSERT_EQ(f(), 42);
    ASSERT_EQ(f(), 43);
    ASSERT(!vt_in_code_region(v, dep()));
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 1);
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT(dlopen("libt_tlsdep.so", RTLD_NOW | RTLD_NOLOAD) == NULL);  /* dlclosed */
    /* inert loads never fall back */
    ASSERT_EQ(vmc_lib_load(v, vt_tlib("libt_usetls.so"), VMC_LOAD_INERT, &l), -ENOTSUP);
    vmc_close(v);
}

TEST(loader_nodelete_stays_until_close)
{
    vmc_t *v = open_region();
    vmc_lib_t *a, *b;
    lib_log[0] = 0;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_nodelete.so"), 0, &a));
    ASSERT_OK(vmc_lib_unload(a));
    ASSERT_STR_EQ(lib_log, "nodelete+");
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 1);
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_nodelete.so"), 0, &b));
    ASSERT(a == b);
    ASSERT_STR_EQ(lib_log, "nodelete+");  /* not initialised twice */
    int (*f)(void) = (int (*)(void))vmc_lib_sym(b, "t_nodelete_value");
    ASSERT_EQ(f(), 7);
    ASSERT_OK(vmc_lib_unload(b));
    ASSERT_EQ(vmc_lib_unload(b), -EINVAL);
    char want[600];
    snprintf(want, sizeof want, "vmc_lib_unload: %s is not loaded (more unloads than loads)",
             vt_tlib("libt_nodelete.so"));
    ASSERT_STR_EQ(vmc_last_error(), want);
    vmc_close(v);
    ASSERT_STR_EQ(lib_log, "nodelete+ nodelete-");
    /* loaded inert, it ran nothing and is not kept */
    v = open_region();
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_nodelete.so"), VMC_LOAD_INERT, &a));
    ASSERT_OK(vmc_lib_unload(a));
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 0);
    vmc_close(v);
}

/* Host look-ups are cached, answers "not found" included, but never across
 * a change of the loaded objects: once a provider is loaded RTLD_GLOBAL,
 * the next binding must see it.  (An object that dlsym(RTLD_DEFAULT) found a
 * symbol in is pinned by glibc, so an unload cannot strand a cached address.) */
TEST(loader_host_symbol_cache_follows_dlopen)
{
    vmc_t *v = open_region();
    vmc_lib_t *l;
    char want[600];
    snprintf(want, sizeof want, "%s: DT_JMPREL entry 0: undefined symbol t_provided", vt_tlib("libt_consumer.so"));
    for (int rep = 0; rep < 2; rep++) {
        ASSERT_EQ(vmc_lib_load(v, vt_tlib("libt_consumer.so"), 0, &l), -ENOENT);
        ASSERT_STR_EQ(vmc_last_error(), want);
    }
    void *h = dlopen(vt_tlib("libt_prov.so"), RTLD_NOW | RTLD_GLOBAL);
    ASSERT(h);
    for (int rep = 0; rep < 2; rep++) {  /* the second load is served from the cache */
        ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_consumer.so"), 0, &l));
        int (*f)(void) = (int (*)(void))vmc_lib_sym(l, "t_consume");
        ASSERT_EQ(f(), 42);
        ASSERT_OK(vmc_lib_unload(l));
    }
    vmc_close(v);
}

/* C++ exceptions thrown and caught inside a private library: its .eh_frame
 * is registered with the unwinder, and taken back at unload (a stale entry
 * would make the next unwind read an unmapped table). */
TEST(loader_cxx_exceptions_inside_a_private_library)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/libs/libt_cxx.so", vt_build_dir());
    if (access(path, R_OK)) SKIP("no C++ compiler: libt_cxx.so not built");
    vmc_t *v = open_region();
    vt_img_t spacer;
    ASSERT_OK(vt_img_read(vt_tlib("libt_basic.so"), &spacer));
    for (int i = 0; i < 200; i++) {
        vmc_lib_t *l, *s;
        ASSERT_OK(vmc_lib_load(v, path, 0, &l));
        int (*f)(int) = (int (*)(int))vmc_lib_sym(l, "t_cxx_catch");
        ASSERT(f && in_lib(l, (void *)f));
        ASSERT_EQ(f(i % 7), 1);
        ASSERT_EQ(f(3), 2);
        ASSERT_OK(vmc_lib_unload(l));
        /* something else takes the place it had: a stale unwind entry
         * would now point at another library's bytes */
        ASSERT_OK(vmc_lib_load_mem(v, spacer.b, spacer.n, "spacer", 0, &s));
    }
    vt_img_free(&spacer);
    /* the unwinder's own view: the library's frames are known while it is
     * loaded, and no longer once it is gone */
    void *gcc = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
    void *(*find_fde)(void *, void *) = gcc ? (void *(*)(void *, void *))dlsym(gcc, "_Unwind_Find_FDE") : NULL;
    if (find_fde) {
        struct { void *tbase, *dbase, *func; } bases;
        vmc_lib_t *l;
        ASSERT_OK(vmc_lib_load(v, path, 0, &l));
        char *f = vmc_lib_sym(l, "t_cxx_catch");
        ASSERT(find_fde(f + 1, &bases) != NULL);
        ASSERT(bases.func == f);
        ASSERT_OK(vmc_lib_unload(l));
        ASSERT(find_fde(f + 1, &bases) == NULL);
    }
    if (gcc) dlclose(gcc);
    vmc_close(v);
}

TEST(loader_calls_back_into_the_host)
{
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_host.so"), 0, &l));
    int (*f)(int, int) = (int (*)(int, int))vmc_lib_sym(l, "t_host_call");
    ASSERT_EQ(f(20, 1), 42);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

TEST(loader_relr)
{
    vt_img_t m;
    ASSERT_OK(vt_img_read(vt_tlib("libt_relr.so"), &m));
    int has = vt_dyn(&m, DT_RELR, NULL) != NULL;
    vt_img_free(&m);
    if (!has) SKIP("the linker has no -z pack-relative-relocs");
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_relr.so"), 0, &l));
    int (*check)(void) = (int (*)(void))vmc_lib_sym(l, "t_relr_check");
    int **ptrs = vmc_lib_sym(l, "t_ptrs");
    ASSERT_EQ(check(), 1);
    for (int i = 0; i < 64; i++) ASSERT(in_lib(l, ptrs[i]));
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

TEST(loader_relro_is_read_only_and_no_wx)
{
    const char *path = syslib("libz.so.1");
    if (!path) SKIP("no libz.so.1 on this system");
    vmc_t *v = open_region();
    int rwx = vt_rwx_count();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    ASSERT_EQ(vt_rwx_count(), rwx);
    vt_img_t m;
    ASSERT_OK(vt_img_read(path, &m));
    int r = vt_phdr_find(&m, PT_GNU_RELRO, 0);
    if (r >= 0) {
        void *s;
        size_t n;
        ASSERT_OK(vmc_lib_span(l, &s, &n));
        Elf64_Phdr *p = vt_phdr(&m, r);
        uintptr_t a = ((uintptr_t)s + p->p_vaddr - vt_img_lo(&m)) & ~(uintptr_t)4095;
        uintptr_t e = ((uintptr_t)s + p->p_vaddr + p->p_memsz - vt_img_lo(&m)) & ~(uintptr_t)4095;
        if (e > a) {
            char *maps = vt_read_file("/proc/self/maps");
            char want[64];
            snprintf(want, sizeof want, "%lx-", (unsigned long)a);
            char *line = strstr(maps, want);
            ASSERT_MSG(line, "no mapping starts at the RELRO page 0x%lx", (unsigned long)a);
            ASSERT_MSG(!strncmp(strchr(line, ' ') + 1, "r--p", 4), "RELRO is not read-only: %.60s", line);
            free(maps);
        }
    }
    vt_img_free(&m);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* Where the writable PT_LOAD of a loaded library starts, and its file size. */
static uintptr_t writable_segment(vmc_lib_t *l, const char *path, uint64_t *filesz)
{
    vt_img_t m;
    void *s;
    size_t n;
    if (vt_img_read(path, &m)) return 0;
    int i = vt_load_find(&m, PF_W, 0);
    uintptr_t at = 0;
    if (i >= 0 && !vmc_lib_span(l, &s, &n)) {
        at = (uintptr_t)s + vt_phdr(&m, i)->p_vaddr - vt_img_lo(&m);
        *filesz = vt_phdr(&m, i)->p_filesz;
    }
    vt_img_free(&m);
    return at;
}

/* Minor page faults taken by reading one byte of each page of [a, a+len). */
static long faults_reading(uintptr_t a, uint64_t len)
{
    struct rusage r0, r1;
    volatile unsigned char sink = 0;
    getrusage(RUSAGE_SELF, &r0);
    for (uintptr_t p = a & ~(uintptr_t)4095; p < a + len; p += 4096) sink ^= *(volatile unsigned char *)p;
    getrusage(RUSAGE_SELF, &r1);
    (void)sink;
    return r1.ru_minflt - r0.ru_minflt;
}

TEST(loader_small_writable_segment_is_populated_large_one_is_not)
{
    vmc_t *v = open_region();
    vmc_lib_t *l;
    uint64_t filesz = 0;
    /* a few KiB: every page is a private copy when the load returns */
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &l));
    uintptr_t w = writable_segment(l, vt_tlib("libt_basic.so"), &filesz);
    ASSERT(w && filesz > 0 && filesz < 64 * 1024);
    ASSERT_EQ(faults_reading(w, filesz), 0);
    int (*counter)(void) = (int (*)(void))vmc_lib_sym(l, "t_get_counter");
    int (*bss)(void) = (int (*)(void))vmc_lib_sym(l, "t_bss_sum");
    ASSERT(counter && bss);
    ASSERT_EQ(counter(), 5);
    ASSERT_EQ(bss(), 0);
    ASSERT_OK(vmc_lib_unload(l));
    /* 96 KiB of .data: pages are mapped as they are touched */
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_bigdata.so"), 0, &l));
    w = writable_segment(l, vt_tlib("libt_bigdata.so"), &filesz);
    ASSERT(w && filesz > 64 * 1024);
    ASSERT_GT(faults_reading(w, filesz), 0);
    long (*sum)(void) = (long (*)(void))vmc_lib_sym(l, "t_table_sum");
    int (*end)(int) = (int (*)(int))vmc_lib_sym(l, "t_table_end");
    ASSERT(sum && end);
    ASSERT_EQ(sum(), 1 + 2 + 3 + 77);
    ASSERT_EQ(end(0), 1);
    ASSERT_EQ(end(1), 77);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* The permissions ("r-xp") of the mapping holding a. */
static int perms_at(uintptr_t a, char out[5])
{
    char *maps = vt_read_file("/proc/self/maps");
    int found = 0;
    for (char *line = maps; line && *line && !found;) {
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && a >= lo && a < hi) {
            memcpy(out, perms, 5);
            found = 1;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    free(maps);
    return found;
}

/* Read-only segments next to each other in the file share one mapping,
 * then get their own protections: every page of every PT_LOAD must have
 * exactly its segment's (the RELRO part of the writable one: read-only). */
static void check_segment_protections(const char *path)
{
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    void *base;
    size_t len;
    ASSERT_OK(vmc_lib_span(l, &base, &len));
    vt_img_t m;
    ASSERT_OK(vt_img_read(path, &m));
    int relro = vt_phdr_find(&m, PT_GNU_RELRO, 0);
    uint64_t r_lo = relro >= 0 ? vt_phdr(&m, relro)->p_vaddr & ~(uint64_t)4095 : 0;
    uint64_t r_hi = relro >= 0 ? (vt_phdr(&m, relro)->p_vaddr + vt_phdr(&m, relro)->p_memsz) & ~(uint64_t)4095 : 0;
    int checked = 0;
    for (int i = 0; i < vt_ehdr(&m)->e_phnum; i++) {
        Elf64_Phdr *p = vt_phdr(&m, i);
        if (p->p_type != PT_LOAD) continue;
        /* whole pages of this segment only (a page shared with a neighbour
         * takes the later segment's protection, as with the system loader) */
        uint64_t lo = (p->p_vaddr + 4095) & ~(uint64_t)4095, hi = (p->p_vaddr + p->p_memsz) & ~(uint64_t)4095;
        for (uint64_t va = lo; va < hi; va += 4096) {
            char want[5] = "---p", got[5];
            want[0] = (p->p_flags & PF_R) ? 'r' : '-';
            want[1] = (p->p_flags & PF_W) && !(va >= r_lo && va < r_hi) ? 'w' : '-';
            want[2] = (p->p_flags & PF_X) ? 'x' : '-';
            ASSERT(perms_at((uintptr_t)base + va - vt_img_lo(&m), got));
            ASSERT_MSG(!strcmp(got, want), "%s: program header %d, page 0x%lx: %s, not %s", path, i,
                       (unsigned long)va, got, want);
            checked++;
        }
    }
    ASSERT_GT(checked, 2);
    vt_img_free(&m);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

TEST(loader_segments_get_their_own_protection)
{
    check_segment_protections(vt_tlib("libt_basic.so"));
    check_segment_protections(vt_tlib("libt_bigdata.so"));
    const char *z = syslib("libz.so.1");
    if (z) check_segment_protections(z);
    const char *zstd = syslib("libzstd.so.1");
    if (zstd) check_segment_protections(zstd);
}

/* A load of path whose nth `call` fails with err (or, with fn, whose `call`
 * is replaced by fn) is refused with exactly `want`, leaves nothing behind,
 * and the next load works. */
static void load_fails_exactly(const char *path, enum vmc_os_call call, unsigned long nth, int err,
                               void (*fn)(void), const char *want)
{
    vmc__kept_refuse(1);   /* every load reads the file (kept tables: loader_reload_...) */
    vmc_t *v = open_region();
    vmc_lib_t *l = NULL;
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    ASSERT_OK(vmc_lib_unload(l));
    vt_snapshot_t snap;
    vt_snap(&snap);
    if (fn) vmc__os_set_call(call, fn);
    else vmc__os_fault(call, nth, err, 0);
    int r = vmc_lib_load(v, path, 0, &l);
    if (fn) vmc__os_set_call(call, NULL);
    else vmc__os_fault_clear();
    ASSERT_EQ(r, -err);
    ASSERT(l == NULL);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_NO_LEAK(snap);
    vt_snap_free(&snap);
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
    vmc__kept_refuse(0);
}

TEST(loader_protection_failure_while_mapping_is_exact)
{
    /* the second mmap of a load: the text segment's own, with its final
     * protection, over the reservation (elf/map.c says why not mprotect) */
    char want[512];
    snprintf(want, sizeof want,
             "%s: program header 1 (offset 0x40+0x38): cannot map the segment: mmap: Permission denied",
             vt_tlib("libt_basic.so"));
    load_fails_exactly(vt_tlib("libt_basic.so"), VMC_OS_MMAP, 2, EACCES, NULL, want);
    /* the first mprotect: RELRO's */
    snprintf(want, sizeof want, "%s: PT_GNU_RELRO 0x3d80+0x280: mprotect: Permission denied", vt_tlib("libt_basic.so"));
    load_fails_exactly(vt_tlib("libt_basic.so"), VMC_OS_MPROTECT, 1, EACCES, NULL, want);
}

/* The file range the loader copies the dynamic tables from, as
 * docs/loader.md describes it: the file part of the segment holding the
 * lowest of them. */
static void table_range(const char *path, uint64_t *off, uint64_t *len)
{
    vt_img_t m;
    ASSERT_OK(vt_img_read(path, &m));
    static const int64_t starts[] = {DT_STRTAB, DT_SYMTAB, DT_HASH, DT_GNU_HASH, DT_VERSYM,
                                     DT_VERDEF, DT_VERNEED, DT_RELA, DT_JMPREL};
    uint64_t lo = UINT64_MAX;
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        Elf64_Dyn *d = vt_dyn(&m, starts[i], NULL);
        if (d && d->d_un.d_ptr < lo) lo = d->d_un.d_ptr;
    }
    *len = 0;
    for (int i = 0; i < vt_ehdr(&m)->e_phnum; i++) {
        Elf64_Phdr *p = vt_phdr(&m, i);
        if (p->p_type == PT_LOAD && lo >= p->p_vaddr && lo < p->p_vaddr + p->p_filesz) {
            *off = p->p_offset;
            *len = p->p_filesz;
        }
    }
    ASSERT_GT(*len, 0);
    vt_img_free(&m);
}

TEST(loader_tables_are_read_once_and_used_from_the_copy)
{
    /* a copy of libt_basic.so that is overwritten after the load: what the
     * loader checked is what it keeps using (a private file mapping would
     * show the new bytes in every page not yet copied) */
    char dir[] = "/tmp/vmc-tables-XXXXXX", path[600];
    ASSERT(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/libt_basic.so", dir);
    vt_img_t m;
    ASSERT_OK(vt_img_read(vt_tlib("libt_basic.so"), &m));
    ASSERT_OK(vt_img_write(&m, path));
    vt_img_free(&m);
    uint64_t off, len;
    table_range(path, &off, &len);
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    vmc_lib_info_t li;
    ASSERT_OK(vmc_lib_info(l, &li));
    ASSERT_EQ(li.tables_copied, len);
    void *add = vmc_lib_sym(l, "t_add");
    ASSERT(add);
    int fd = open(path, O_WRONLY);
    ASSERT(fd >= 0);
    char *junk = malloc(len);
    memset(junk, 0xa5, len);
    ASSERT_EQ(pwrite(fd, junk, len, (off_t)off), (ssize_t)len);
    close(fd);
    free(junk);
    ASSERT(vmc_lib_sym(l, "t_add") == add);
    const char *(*name)(int) = (const char *(*)(int))vmc_lib_sym(l, "t_name");
    ASSERT(name);
    ASSERT_STR_EQ(name(1), "one");
    ASSERT(vmc_lib_sym(l, "t_nothing") == NULL);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
    unlink(path);
    rmdir(dir);
}

TEST(loader_large_tables_are_read_in_place)
{
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_many.so"), 0, &l));
    vmc_lib_info_t li;
    ASSERT_OK(vmc_lib_info(l, &li));
    ASSERT_EQ(li.tables_copied, 0);
    int (*first)(void) = (int (*)(void))vmc_lib_sym(l, "t_fn_10000");
    int (*last)(void) = (int (*)(void))vmc_lib_sym(l, "t_fn_17777");
    ASSERT(first && last && in_lib(l, (void *)last));
    ASSERT_EQ(first(), 10000);
    ASSERT_EQ(last(), 17777);
    ASSERT(vmc_lib_sym(l, "t_fn_18000") == NULL);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* After the first read (the ELF header), the file seems to end: as when it
 * is truncated during the load. */
static int eof_calls;
static ssize_t eof_pread(int fd, void *buf, size_t len, off_t off)
{
    return eof_calls++ == 0 ? pread(fd, buf, len, off) : 0;
}

/* The first read takes the file's first 4 KiB; the tables' segment starts
 * the file, so those bytes start the copy and only the rest is read. */
TEST(loader_reading_the_tables_fails_cleanly)
{
    const char *path = vt_tlib("libt_cxxstatic.so");
    uint64_t off, len;
    table_range(path, &off, &len);
    ASSERT_EQ(off, 0);
    ASSERT_GT(len, 4096);
    char want[800];
    /* the second pread of a load: the rest of the tables */
    snprintf(want, sizeof want, "%s: reading its dynamic tables (offset 0x%lx, 0x%lx bytes): Input/output error",
             path, (unsigned long)off, (unsigned long)len);
    load_fails_exactly(path, VMC_OS_PREAD, 2, EIO, NULL, want);
    /* the file ends early */
    snprintf(want, sizeof want, "%s: reading its dynamic tables (offset 0x%lx, 0x%lx bytes): the file ends at "
             "0x1000 (it shrank while loading)", path, (unsigned long)off, (unsigned long)len);
    eof_calls = 0;
    load_fails_exactly(path, VMC_OS_PREAD, 0, ENOEXEC, (void (*)(void))eof_pread, want);
}

/* Tables within the first 4 KiB: no second read for them (the DT_FINI
 * read comes next); and what the load copied is the segment's file part. */
TEST(loader_small_tables_come_with_the_header)
{
    const char *path = vt_tlib("libt_basic.so");
    uint64_t off, len;
    table_range(path, &off, &len);
    ASSERT_EQ(off, 0);
    ASSERT_LE(len, 4096);
    vmc__kept_refuse(1);   /* the file is read (not what an earlier load kept) */
    vmc_t *v = open_region();
    vmc__os_calls_reset();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    ASSERT_EQ(vmc__os_calls(VMC_OS_PREAD), 3);   /* the header, DT_FINI's bytes, .eh_frame_hdr's */
    vmc_lib_info_t li;
    ASSERT_OK(vmc_lib_info(l, &li));
    ASSERT_EQ(li.tables_copied, len);
    ASSERT(vmc_lib_sym(l, "t_add"));
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
    vmc__kept_refuse(0);
}

/* ---- a load of a file loaded and unloaded before (lib/kept.c) --------------- */

#define OLD_LIB "/usr/lib/x86_64-linux-gnu/libz.so.1"   /* last changed long ago */

static void same_info(vmc_lib_t *a_lib, const vmc_lib_info_t *a)
{
    vmc_lib_info_t b;
    ASSERT_OK(vmc_lib_info(a_lib, &b));
    ASSERT_EQ(b.tables_copied, a->tables_copied);
    ASSERT_EQ(b.nsegments, a->nsegments);
    ASSERT_EQ(b.size, a->size);
    ASSERT_EQ(b.relocs_relative, a->relocs_relative);
    ASSERT_EQ(b.relocs_symbolic, a->relocs_symbolic);
    ASSERT_EQ(b.bound_self, a->bound_self);
    ASSERT_EQ(b.bound_host, a->bound_host);
    ASSERT_EQ(b.bound_weak_zero, a->bound_weak_zero);
}

/* The second load of an unchanged file reads nothing of it: what the first
 * read and checked (headers, tables, DT_FINI's bytes) was kept at its
 * unload.  It binds and runs the same; a load of it that fails gives the
 * tables back, with the message a first load gives; a new handle reads the
 * file again. */
TEST(loader_reload_reads_nothing_again)
{
    vmc_t *v = open_region();
    vmc_lib_t *l;
    vmc_lib_info_t first;
    ASSERT_OK(vmc_lib_load(v, OLD_LIB, 0, &l));
    ASSERT_OK(vmc_lib_info(l, &first));
    ASSERT_GT(first.tables_copied, 0);
    ASSERT_OK(vmc_lib_unload(l));
    for (int round = 0; round < 3; round++) {
        vmc__os_calls_reset();
        ASSERT_OK(vmc_lib_load(v, OLD_LIB, 0, &l));
        ASSERT_EQ(vmc__os_calls(VMC_OS_PREAD), 0);
        ASSERT_EQ(vmc__os_calls(VMC_OS_OPEN), 1);    /* the path may name another file now */
        ASSERT_EQ(vmc__os_calls(VMC_OS_FSTAT), 1);
        same_info(l, &first);
        const char *(*version)(void) = (const char *(*)(void))vmc_lib_sym(l, "zlibVersion");
        ASSERT(version);
        ASSERT_EQ(version()[0], '1');
        ASSERT_OK(vmc_lib_unload(l));
    }
    /* the second mmap fails: the same message as when the file was read */
    vt_snapshot_t snap;
    vt_snap(&snap);
    vmc__os_fault(VMC_OS_MMAP, 2, ENOMEM, 0);
    ASSERT_EQ(vmc_lib_load(v, OLD_LIB, 0, &l), -ENOMEM);
    vmc__os_fault_clear();
    char kept_msg[1024];
    snprintf(kept_msg, sizeof kept_msg, "%s", vmc_last_error());
    ASSERT_NO_LEAK(snap);
    vt_snap_free(&snap);
    vmc__os_calls_reset();
    ASSERT_OK(vmc_lib_load(v, OLD_LIB, 0, &l));
    ASSERT_EQ(vmc__os_calls(VMC_OS_PREAD), 0);
    same_info(l, &first);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
    /* a handle of its own: the file is read again */
    v = open_region();
    vmc__os_calls_reset();
    vmc__os_fault(VMC_OS_MMAP, 2, ENOMEM, 0);
    ASSERT_EQ(vmc_lib_load(v, OLD_LIB, 0, &l), -ENOMEM);
    vmc__os_fault_clear();
    ASSERT_GT(vmc__os_calls(VMC_OS_PREAD), 0);
    ASSERT_STR_EQ(vmc_last_error(), kept_msg);
    ASSERT_OK(vmc_lib_load(v, OLD_LIB, 0, &l));
    same_info(l, &first);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* Is the page holding p mapped in this process's page table? */
static int page_present(uintptr_t p)
{
    int fd = open("/proc/self/pagemap", O_RDONLY);
    ASSERT(fd >= 0);
    uint64_t e = 0;
    ASSERT_EQ(pread(fd, &e, 8, (off_t)(p / 4096 * 8)), 8);
    close(fd);
    return (int)(e >> 63);
}

/* Where a library's .eh_frame is comes from its file (PT_GNU_EH_FRAME's
 * first bytes, kept for the next load of the same file): the unwinder
 * finds the library's functions after a load that read it and after one
 * that took what the last load kept.  With a libgcc_s from before GCC 13,
 * whose registration reads nothing (elf/unwind.c), the page of the tables
 * is not mapped until an unwind searches them. */
TEST(loader_unwind_registration_from_the_file_and_kept)
{
    /* the unwinder is libgcc's: the one in the process, or the one the
     * first load brings (unwinder.c) */
    void *g = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (!g) g = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
    ASSERT(g);
    int reads_nothing = !dlsym(g, "__truncsfbf2");   /* GCC 13's first: elf/unwind.c */
    dlclose(g);
    Elf64_Phdr eh;
    ASSERT_OK(vt_file_phdr(OLD_LIB, PT_GNU_EH_FRAME, &eh));
    uint64_t hv = eh.p_vaddr;
    vmc_t *v = open_region();
    vmc_lib_t *l;
    for (int round = 0; round < 2; round++) {   /* read from the file, then kept */
        ASSERT_OK(vmc_lib_load(v, OLD_LIB, 0, &l));
        vmc_lib_info_t li;
        ASSERT_OK(vmc_lib_info(l, &li));
        ASSERT(li.bias + hv > (uintptr_t)li.base && li.bias + hv < (uintptr_t)li.base + li.size);
        if (reads_nothing) ASSERT_EQ(page_present(li.bias + hv), 0);
        /* a function of the library found by the unwinder */
        void *f = vmc_lib_sym(l, "deflate");
        ASSERT(f);
        void *h = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NOLOAD);
        ASSERT(h);
        void *(*find)(void *, void *) = (void *(*)(void *, void *))dlsym(h, "_Unwind_Find_FDE");
        ASSERT(find);
        struct { void *tbase, *dbase, *func; } bases;
        ASSERT(find((char *)f + 1, &bases));
        ASSERT(bases.func == f);
        ASSERT_EQ(page_present(li.bias + hv), 1);
        dlclose(h);
        ASSERT_OK(vmc_lib_unload(l));
    }
    vmc_close(v);
}

/* A host answer kept from an earlier load of the same file (elf/reloc.c) is
 * not taken again once a private library defines the name: that library
 * comes before the host in the scope; unloaded, the host's is taken again. */
TEST_TIMEOUT(loader_reload_binds_to_a_private_library_loaded_since, 60)
{
    const char *path = vt_tlib("libt_host.so");
    vt_wait_settled(path);
    vmc_t *v = open_region();
    vmc_lib_t *l, *dup;
    int (*call)(int, int);
    vmc_lib_info_t li;
    for (int round = 0; round < 2; round++) {   /* read, then kept */
        vmc__os_calls_reset();
        ASSERT_OK(vmc_lib_load(v, path, 0, &l));
        ASSERT_EQ(vmc__os_calls(VMC_OS_PREAD) == 0, round == 1);
        call = (int (*)(int, int))vmc_lib_sym(l, "t_host_call");
        ASSERT_EQ(call(2, 3), 10);
        ASSERT_OK(vmc_lib_info(l, &li));
        ASSERT_EQ(li.bound_private, 0);
        ASSERT_OK(vmc_lib_unload(l));
    }
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_hostdup.so"), 0, &dup));
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    call = (int (*)(int, int))vmc_lib_sym(l, "t_host_call");
    ASSERT_EQ(call(2, 3), 2 * 1005);
    ASSERT_OK(vmc_lib_info(l, &li));
    ASSERT_EQ(li.bound_private, 1);
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT_OK(vmc_lib_unload(dup));
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    call = (int (*)(int, int))vmc_lib_sym(l, "t_host_call");
    ASSERT_EQ(call(2, 3), 10);
    ASSERT_OK(vmc_lib_info(l, &li));
    ASSERT_EQ(li.bound_private, 0);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* Load path, unload it, load it again: the number of preads of the second load. */
static unsigned long reload_preads(vmc_t *v, const char *path)
{
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    ASSERT_OK(vmc_lib_unload(l));
    vmc__os_calls_reset();
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    unsigned long n = vmc__os_calls(VMC_OS_PREAD);
    ASSERT(vmc_lib_sym(l, "t_add"));
    ASSERT_OK(vmc_lib_unload(l));
    return n;
}

/* A file changed in the last two seconds is read at every load (a change
 * made later might not move its times on a file system that keeps whole
 * seconds); once settled it is kept; changed again, it is read again, and
 * a change that breaks it is refused as at a first load. */
TEST_TIMEOUT(loader_changed_file_is_read_again, 60)
{
    char dir[] = "/tmp/vmc-kept-XXXXXX", path[64];
    ASSERT(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/libt_basic.so", dir);
    ASSERT_OK(vt_img_copy_file(vt_tlib("libt_basic.so"), path));
    vmc_t *v = open_region();
    ASSERT_GT(reload_preads(v, path), 0);   /* just written */
    sleep(3);
    ASSERT_EQ(reload_preads(v, path), 0);
    /* the same bytes written again: its times move */
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    char c;
    ASSERT_EQ(pread(fd, &c, 1, 100), 1);
    ASSERT_EQ(pwrite(fd, &c, 1, 100), 1);
    vmc_lib_t *l;
    vmc__os_calls_reset();
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    ASSERT_GT(vmc__os_calls(VMC_OS_PREAD), 0);
    ASSERT_OK(vmc_lib_unload(l));
    /* kept again once settled; then broken in place (e_phentsize) */
    sleep(3);
    ASSERT_EQ(reload_preads(v, path), 0);
    uint16_t bad = 7;
    ASSERT_EQ(pwrite(fd, &bad, 2, offsetof(Elf64_Ehdr, e_phentsize)), 2);
    close(fd);
    ASSERT_NE(vmc_lib_load(v, path, 0, &l), 0);
    char kept_msg[1024];
    snprintf(kept_msg, sizeof kept_msg, "%s", vmc_last_error());
    vmc_close(v);
    v = vt_open("-vmheap_size 64M");
    ASSERT_NE(vmc_lib_load(v, path, 0, &l), 0);
    ASSERT_STR_EQ(kept_msg, vmc_last_error());
    ASSERT_STR_CONTAINS(kept_msg, "e_phentsize");
    vmc_close(v);
    unlink(path);
    rmdir(dir);
}

/* crtn.o's empty DT_FINI is recognised and not called: with its page made
 * inaccessible after the load, unloading still works (a call would fault).
 * A DT_FINI that does something is called (loader_ctor_dtor_order...). */
static void empty_fini_is_skipped(vmc_t *v, const char *path, int from_memory)
{
    vmc_lib_t *l;
    vt_img_t m;
    ASSERT_OK(vt_img_read(path, &m));
    if (from_memory) ASSERT_OK(vmc_lib_load_mem(v, m.b, m.n, "lib.so", 0, &l));
    else ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    void *s;
    size_t n;
    ASSERT_OK(vmc_lib_span(l, &s, &n));
    uintptr_t base = (uintptr_t)s - vt_img_lo(&m);
    Elf64_Dyn *fini = vt_dyn(&m, DT_FINI, NULL), *fa = vt_dyn(&m, DT_FINI_ARRAY, NULL),
              *fasz = vt_dyn(&m, DT_FINI_ARRAYSZ, NULL);
    ASSERT(fini && fa && fasz);
    uintptr_t page = (base + fini->d_un.d_ptr) & ~(uintptr_t)4095;
    const uintptr_t *arr = (const uintptr_t *)(base + fa->d_un.d_ptr);
    for (size_t i = 0; i < fasz->d_un.d_val / 8; i++)
        ASSERT_MSG((arr[i] & ~(uintptr_t)4095) != page, "DT_FINI_ARRAY[%zu] shares DT_FINI's page", i);
    ASSERT_EQ(mprotect((void *)page, 4096, PROT_NONE), 0);
    ASSERT_OK(vmc_lib_unload(l));
    vt_img_free(&m);
}

TEST(loader_empty_dt_fini_is_not_called)
{
    vmc_t *v = open_region();
    empty_fini_is_skipped(v, vt_tlib("libt_many.so"), 0);
    empty_fini_is_skipped(v, vt_tlib("libt_many.so"), 1);
    const char *z = syslib("libz.so.1");
    if (z) empty_fini_is_skipped(v, z, 0);
    vmc_close(v);
}

TEST(loader_reading_dt_fini_fails_cleanly)
{
    const char *path = vt_tlib("libt_basic.so");
    vt_img_t m;
    ASSERT_OK(vt_img_read(path, &m));
    Elf64_Dyn *fini = vt_dyn(&m, DT_FINI, NULL);
    ASSERT(fini);
    uint64_t off = vt_v2o(&m, fini->d_un.d_ptr);
    vt_img_free(&m);
    char want[600];
    snprintf(want, sizeof want, "%s: reading DT_FINI (offset 0x%lx): Input/output error", path, (unsigned long)off);
    /* the second pread of a load: header (the tables come with it), DT_FINI */
    load_fails_exactly(path, VMC_OS_PREAD, 2, EIO, NULL, want);
}

/* .eh_frame_hdr's first bytes (where .eh_frame is) come from the file, the
 * third pread of a load, not from the image (elf/unwind.c says why). */
TEST(loader_reading_eh_frame_hdr_fails_cleanly)
{
    const char *path = vt_tlib("libt_basic.so");
    Elf64_Phdr eh;
    ASSERT_OK(vt_file_phdr(path, PT_GNU_EH_FRAME, &eh));
    uint64_t off = eh.p_offset;
    char want[600];
    snprintf(want, sizeof want, "%s: reading PT_GNU_EH_FRAME (offset 0x%lx): Input/output error", path,
             (unsigned long)off);
    load_fails_exactly(path, VMC_OS_PREAD, 3, EIO, NULL, want);
}

TEST(loader_errors_for_missing_files_and_arguments)
{
    vmc_t *v = open_region();
    vmc_lib_t *l = (vmc_lib_t *)1;
    ASSERT_EQ(vmc_lib_load(v, "/nonexistent/libnope.so", 0, &l), -ENOENT);
    ASSERT(l == NULL);
    ASSERT_STR_EQ(vmc_last_error(), "/nonexistent/libnope.so: cannot open: No such file or directory");
    /* a bare name, as one would give dlopen */
    ASSERT_EQ(vmc_lib_load(v, "libnope-vmc.so.1", 0, &l), -ENOENT);
    ASSERT_STR_EQ(vmc_last_error(), "libnope-vmc.so.1: cannot open: No such file or directory (the path is "
                  "opened as given, in the current directory: there is no search path)");
    ASSERT_EQ(vmc_lib_load(v, "/tmp", 0, &l), -ENOEXEC);
    ASSERT_STR_EQ(vmc_last_error(), "/tmp: not a regular file");
    ASSERT_EQ(vmc_lib_load(v, NULL, 0, &l), -EINVAL);
    ASSERT_EQ(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0x100, &l), -EINVAL);
    ASSERT_EQ(vmc_lib_unload(NULL), -EINVAL);
    ASSERT(vmc_lib_sym(NULL, "x") == NULL);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_lib_sym: NULL argument");
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &l));
    ASSERT(vmc_lib_sym(l, "t_nothing") == NULL);
    char want[600];
    snprintf(want, sizeof want, "%s: exports no symbol t_nothing (in its default version)", vt_tlib("libt_basic.so"));
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

TEST(loader_missing_dependency_is_refused_cleanly)
{
    /* libt_chain_a.so copied alone into a directory: libt_chain_b.so is
     * neither next to it nor known to the system loader */
    char dir[] = "/tmp/vmc-dep-XXXXXX";
    ASSERT(mkdtemp(dir));
    char path[600];
    snprintf(path, sizeof path, "%s/libt_chain_a.so", dir);
    vt_img_t m;
    ASSERT_OK(vt_img_read(vt_tlib("libt_chain_a.so"), &m));
    ASSERT_OK(vt_img_write(&m, path));
    vt_img_free(&m);
    vmc_t *v = open_region();
    vt_snapshot_t snap;
    vt_snap(&snap);
    vmc_lib_t *l;
    ASSERT_EQ(vmc_lib_load(v, path, 0, &l), -ENOENT);
    char want[800];
    snprintf(want, sizeof want, "%s: dependency libt_chain_b.so: libt_chain_b.so: cannot open shared "
             "object file: No such file or directory", path);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_NO_LEAK(snap);
    vmc_close(v);
    unlink(path);
    rmdir(dir);
}

/* ---- many loads, threads ------------------------------------------------------- */

TEST_TIMEOUT(loader_load_unload_10000_times, 300)
{
    vmc_t *v = open_region();
    vmc_lib_t *l;
    const char *path = vt_tlib("libt_basic.so");
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));  /* warm up dlopen's caches */
    ASSERT_OK(vmc_lib_unload(l));
    vt_snapshot_t snap;
    vt_snap(&snap);
    int lines = vt_maps_count(NULL);
    for (int i = 0; i < 10000; i++) {
        ASSERT_OK(vmc_lib_load(v, path, 0, &l));
        if (i % 1000 == 0) {
            int (*add)(int, int) = (int (*)(int, int))vmc_lib_sym(l, "t_add");
            ASSERT_EQ(add(i, 1), i + 1);
        }
        ASSERT_OK(vmc_lib_unload(l));
    }
    ASSERT_EQ(vt_maps_count(NULL), lines);
    ASSERT_NO_LEAK(snap);
    vmc_close(v);
}

typedef struct hammer {
    atomic_int stop;
    long rounds;
    int bad;
} hammer_t;

/* mmap, fill, check, munmap outside the region, as fast as possible. */
static void *hammer_thread(void *arg)
{
    hammer_t *h = arg;
    while (!atomic_load(&h->stop)) {
        void *p[8];
        for (int i = 0; i < 8; i++) {
            p[i] = mmap(NULL, 4096 * (size_t)(i + 1), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p[i] == MAP_FAILED) {
                h->bad++;
                return NULL;
            }
            memset(p[i], 0x5a + i, 4096 * (size_t)(i + 1));
        }
        for (int i = 0; i < 8; i++) {
            uint8_t *b = p[i];
            for (size_t k = 0; k < 4096 * (size_t)(i + 1); k += 512)
                if (b[k] != 0x5a + i) h->bad++;
            munmap(p[i], 4096 * (size_t)(i + 1));
        }
        h->rounds++;
    }
    return NULL;
}

typedef struct loader_arg {
    vmc_t *v;
    const char *path;
    int n, bad;
} loader_arg_t;

static void *loader_thread(void *arg)
{
    loader_arg_t *a = arg;
    for (int i = 0; i < a->n; i++) {
        vmc_lib_t *l;
        if (vmc_lib_load(a->v, a->path, 0, &l)) {
            a->bad++;
            continue;
        }
        int (*add)(int, int) = (int (*)(int, int))vmc_lib_sym(l, "t_add");
        int *cnt = vmc_lib_sym(l, "t_counter");
        if (!add || add(i, 2) != i + 2 || !cnt || *cnt != 5) a->bad++;
        if (vmc_lib_unload(l)) a->bad++;
    }
    return NULL;
}

TEST_THREADED(loader_threads_load_while_another_maps)
{
    vmc_t *v = open_region();
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    hammer_t h = {0, 0, 0};
    loader_arg_t la = {v, vt_tlib("libt_basic.so"), 1500, 0}, lb = la;
    pthread_t th, t1, t2;
    ASSERT_EQ(pthread_create(&th, NULL, hammer_thread, &h), 0);
    ASSERT_EQ(pthread_create(&t1, NULL, loader_thread, &la), 0);
    ASSERT_EQ(pthread_create(&t2, NULL, loader_thread, &lb), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    atomic_store(&h.stop, 1);
    pthread_join(th, NULL);
    ASSERT_EQ(la.bad, 0);
    ASSERT_EQ(lb.bad, 0);
    ASSERT_EQ(h.bad, 0);
    ASSERT_GT(h.rounds, 0);
    /* the region is still one PROT_NONE reservation */
    uintptr_t b = (uintptr_t)in.code_base;
    ASSERT(vt_maps_has(b, b + in.code_size, "---p"));
    vmc_close(v);
}

/* PT_INTERP and an entry point do not make a library an executable: the
 * system loader loads such libraries (libc.so.6, libcap.so.2), and so does
 * the private one. */
TEST(loader_library_with_pt_interp)
{
    Elf64_Phdr interp;
    ASSERT_OK(vt_file_phdr(vt_tlib("libt_interp.so"), PT_INTERP, &interp));
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_interp.so"), 0, &l));
    int (*f)(void) = (int (*)(void))vmc_lib_sym(l, "t_interp_value");
    ASSERT(f && vt_in_code_region(v, (void *)f));
    ASSERT_EQ(f(), 7);
    ASSERT_OK(vmc_lib_unload(l));
    const char *cap = syslib("libcap.so.2");
    if (cap) {
        int e = vt_file_phdr(cap, PT_INTERP, &interp);
        ASSERT(e == 0 || e == -ENOENT);
        int has_interp = e == 0;
        ASSERT_OK(vmc_lib_load(v, cap, 0, &l));
        unsigned (*bits)(void) = (unsigned (*)(void))vmc_lib_sym(l, "cap_max_bits");
        void *h = dlopen(cap, RTLD_NOW | RTLD_LOCAL);
        ASSERT(h);
        unsigned (*sys_bits)(void) = (unsigned (*)(void))dlsym(h, "cap_max_bits");
        ASSERT(bits && sys_bits && vt_in_code_region(v, (void *)bits));
        ASSERT_EQ(bits(), sys_bits());
        dlclose(h);
        ASSERT_OK(vmc_lib_unload(l));
        if (!has_interp) fprintf(stderr, "note: %s has no PT_INTERP here\n", cap);
    }
    vmc_close(v);
}

/* A position-independent executable (DF_1_PIE) is refused, as the system
 * loader refuses it ("cannot dynamically load position-independent
 * executable"). */
TEST(loader_pie_is_refused_as_the_system_loader_refuses_it)
{
    const char *pie = vt_tlib("t_pie");
    ASSERT(dlopen(pie, RTLD_NOW | RTLD_LOCAL) == NULL);
    ASSERT_STR_CONTAINS(dlerror(), "cannot dynamically load position-independent executable");
    vt_img_t m;
    ASSERT_OK(vt_img_read(pie, &m));
    size_t idx;
    ASSERT(vt_dyn(&m, DT_FLAGS_1, &idx));
    char want[800];
    snprintf(want, sizeof want, "%s: dynamic entry %zu DT_FLAGS_1 (offset 0x%lx+0x%lx): DF_1_PIE: a "
             "position-independent executable cannot be loaded as a library", pie, idx,
             (unsigned long)vt_dyn_offset(&m), (unsigned long)(idx * sizeof(Elf64_Dyn)));
    vt_img_free(&m);
    vmc_t *v = open_region();
    vmc_lib_t *l;
    ASSERT_EQ(vmc_lib_load(v, pie, 0, &l), -ENOEXEC);
    ASSERT_STR_EQ(vmc_last_error(), want);
    vmc_close(v);
}

/* The output of a helper program (tests/libs/t_nordynamic.c) loading
 * libt_needhost.so, which calls the program's t_host_value. */
static char *run_helper(const char *prog)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", vt_tlib(prog), vt_tlib("libt_needhost.so"));
    FILE *p = popen(cmd, "r");
    ASSERT(p);
    static char out[2048];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    pclose(p);
    return out;
}

/* A symbol the program defines but does not export: the message says to
 * link the program with -rdynamic (known from its .symtab). */
TEST(loader_missing_program_symbol_suggests_rdynamic)
{
    char want[1200];
    ASSERT_STR_EQ(run_helper("t_rdynamic"), "ok 43\n");
    snprintf(want, sizeof want, "error -2: %s: DT_JMPREL entry 0: undefined symbol t_host_value (the program "
             "defines it but does not export it: link the program with -rdynamic, or "
             "-Wl,--export-dynamic-symbol=t_host_value)\n", vt_tlib("libt_needhost.so"));
    const char *got = run_helper("t_nordynamic");
    ASSERT_STR_EQ(got, want);
    /* stripped: no .symtab, nothing to tell */
    snprintf(want, sizeof want, "error -2: %s: DT_JMPREL entry 0: undefined symbol t_host_value\n",
             vt_tlib("libt_needhost.so"));
    ASSERT_STR_EQ(run_helper("t_nordynamic_stripped"), want);
}

/* The look-up in the program's .symtab (this test program's): what it
 * defines, what it does not, and "do not know" when reading fails. */
TEST(loader_program_symbol_table_lookup)
{
    ASSERT_EQ(vmc__prog_defines("vt_build_dir"), 1);
    ASSERT_EQ(vmc__prog_defines("no_such_function_anywhere"), 0);
    ASSERT_EQ(vmc__prog_defines("tlib"), 0);  /* static: -rdynamic would not export it */
    static const enum vmc_os_call calls[] = {VMC_OS_OPEN, VMC_OS_FSTAT, VMC_OS_PREAD};
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        vmc__os_fault(calls[i], 1, EIO, 1);
        ASSERT_EQ(vmc__prog_defines("vt_build_dir"), 0);
        vmc__os_fault_clear();
    }
    vmc__os_fault(VMC_OS_PREAD, 3, EIO, 0);  /* the symbol table itself */
    ASSERT_EQ(vmc__prog_defines("vt_build_dir"), 0);
    vmc__os_fault_clear();
    ASSERT_EQ(vmc__prog_defines("vt_build_dir"), 1);
}
