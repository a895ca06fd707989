/* vmc_addr_info: the library, path, nearest exported symbol and offset of
 * an address, for private libraries as dladdr gives them for the rest; and
 * what a private library's own dladdr, dladdr1 and backtrace_symbols say
 * (src/lib/dladdr.c). */
#include "test.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <unistd.h>

TEST(addrinfo_exported_symbols_and_interior_addresses)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &l));
    vmc_lib_info_t li;
    ASSERT_OK(vmc_lib_info(l, &li));
    vmc_addr_info_t ai;
    char *add = vmc_lib_sym(l, "t_add");
    ASSERT_OK(vmc_addr_info(v, add, &ai));
    ASSERT(ai.lib == l);
    ASSERT_STR_EQ(ai.path, vt_tlib("libt_basic.so"));
    ASSERT(ai.base == li.base);
    ASSERT_STR_EQ(ai.sym_name, "t_add");
    ASSERT(ai.sym_addr == add);
    ASSERT_EQ(ai.sym_offset, 0);
    ASSERT_GT(ai.sym_size, 1);
    ASSERT_OK(vmc_addr_info(v, add + 1, &ai));
    ASSERT_STR_EQ(ai.sym_name, "t_add");
    ASSERT_EQ(ai.sym_offset, 1);
    /* data: an int, and the far end of a large array */
    char *counter = vmc_lib_sym(l, "t_counter"), *bss = vmc_lib_sym(l, "t_bss");
    ASSERT_OK(vmc_addr_info(v, counter + 2, &ai));
    ASSERT_STR_EQ(ai.sym_name, "t_counter");
    ASSERT_EQ(ai.sym_size, 4);
    ASSERT_EQ(ai.sym_offset, 2);
    ASSERT_OK(vmc_addr_info(v, bss + 5000, &ai));
    ASSERT_STR_EQ(ai.sym_name, "t_bss");
    ASSERT_EQ(ai.sym_offset, 5000);
    /* the first byte of the image: the ELF header, no symbol */
    ASSERT_OK(vmc_addr_info(v, li.base, &ai));
    ASSERT(ai.lib == l);
    ASSERT(ai.sym_name == NULL && ai.sym_addr == NULL && ai.sym_offset == 0);
    ASSERT_OK(vmc_lib_unload(l));
    /* gone: the address is nobody's */
    ASSERT_EQ(vmc_addr_info(v, add, &ai), -ENOENT);
    ASSERT_STR_CONTAINS(vmc_last_error(), "in no private library of this handle");
    vmc_close(v);
}

/* Hidden and static functions are not exported: the answer is an exported
 * symbol below them, whose size the offset passes, or none. */
TEST(addrinfo_unexported_code)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_addr.so"), 0, &l));
    void *(*st)(void) = (void *(*)(void))vmc_lib_sym(l, "t_addr_static");
    void *(*hid)(void) = (void *(*)(void))vmc_lib_sym(l, "t_addr_hidden_addr");
    void *targets[2] = {st(), hid()};
    ASSERT(vmc_lib_sym(l, "t_addr_hidden") == NULL);
    for (int i = 0; i < 2; i++) {
        vmc_addr_info_t ai;
        ASSERT_OK(vmc_addr_info(v, targets[i], &ai));
        ASSERT(ai.lib == l);
        if (ai.sym_name) {
            ASSERT(strcmp(ai.sym_name, "t_addr_hidden"));
            ASSERT_GE(ai.sym_offset, ai.sym_size);
            ASSERT((char *)ai.sym_addr + ai.sym_offset == targets[i]);
        }
    }
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

int vt_addr_host_fn(void);
int vt_addr_host_fn(void) { return 1; }

/* Host code is answered as dladdr answers it, without a library; the
 * region's own code (JIT) is nobody's; NULL arguments are refused. */
TEST(addrinfo_addresses_outside_private_libraries)
{
    vmc_t *v = vt_open("");
    vmc_addr_info_t ai;
    ASSERT_OK(vmc_addr_info(v, (char *)vt_addr_host_fn + 1, &ai));
    Dl_info di;
    ASSERT(dladdr((void *)vt_addr_host_fn, &di));
    ASSERT(ai.lib == NULL);
    ASSERT_STR_EQ(ai.path, di.dli_fname);
    ASSERT(ai.base == di.dli_fbase);
    ASSERT_STR_EQ(ai.sym_name, "vt_addr_host_fn");
    ASSERT_EQ(ai.sym_offset, 1);
    vmc_span_t code;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &code));
    ASSERT_EQ(vmc_addr_info(v, code.x, &ai), -ENOENT);
    ASSERT_EQ(vmc_addr_info(NULL, code.x, &ai), -EINVAL);
    ASSERT_EQ(vmc_addr_info(v, code.x, NULL), -EINVAL);
    /* a library of another handle is not this handle's */
    vmc_t *w = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(w, vt_tlib("libt_basic.so"), 0, &l));
    ASSERT_EQ(vmc_addr_info(v, vmc_lib_sym(l, "t_add"), &ai), -ENOENT);
    ASSERT_OK(vmc_addr_info(w, vmc_lib_sym(l, "t_add"), &ai));
    ASSERT(ai.lib == l);
    vmc_close(w);
    vmc_close(v);
}

/* ---- what a plug-in's dladdr, dladdr1 and backtrace_symbols say --------- */

typedef struct dl_api {
    const char *(*self_path)(void);
    int (*addr)(const void *, Dl_info *);
    int (*addr1)(const void *, Dl_info *, void **, int);
    char **(*stack)(void **, int, int *);
    char **(*symbols)(void *const *, int);
    void (*symbols_fd)(void *const *, int, int);
} dl_api_t;

static dl_api_t dl_api(vmc_lib_t *l)
{
    dl_api_t a;
    *(void **)&a.self_path = vmc_lib_sym(l, "t_dl_self_path");
    *(void **)&a.addr = vmc_lib_sym(l, "t_dl_addr");
    *(void **)&a.addr1 = vmc_lib_sym(l, "t_dl_addr1");
    *(void **)&a.stack = vmc_lib_sym(l, "t_dl_stack");
    *(void **)&a.symbols = vmc_lib_sym(l, "t_dl_symbols");
    *(void **)&a.symbols_fd = vmc_lib_sym(l, "t_dl_symbols_fd");
    ASSERT(a.self_path && a.addr && a.addr1 && a.stack && a.symbols && a.symbols_fd);
    return a;
}

/* A plug-in's dladdr names private code as the C library names what it
 * loaded (the same library opened with dlopen gives the same answer,
 * relative to its base); other code as the C library does; nothing once
 * the library is gone.  dladdr1 gives the symbol's entry; no link map. */
TEST(addrinfo_plugin_dladdr_names_private_code)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l, *b;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_dladdr.so"), 0, &l));
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &b));
    dl_api_t a = dl_api(l);
    ASSERT_STR_EQ(a.self_path(), vt_tlib("libt_dladdr.so"));
    vmc_lib_info_t bi;
    ASSERT_OK(vmc_lib_info(b, &bi));
    char *add = vmc_lib_sym(b, "t_add");
    Dl_info di, hi;
    memset(&di, 0, sizeof di);
    ASSERT_EQ(a.addr(add + 3, &di), 1);
    ASSERT_STR_EQ(di.dli_fname, vt_tlib("libt_basic.so"));
    ASSERT(di.dli_fbase == bi.base);
    ASSERT_STR_EQ(di.dli_sname, "t_add");
    ASSERT(di.dli_saddr == add);
    /* the system loader's answer for the same library */
    void *h = dlopen(vt_tlib("libt_basic.so"), RTLD_NOW | RTLD_LOCAL);
    ASSERT(h);
    char *hadd = dlsym(h, "t_add");
    ASSERT(dladdr(hadd + 3, &hi));
    ASSERT_STR_EQ(hi.dli_sname, di.dli_sname);
    ASSERT_EQ((char *)hi.dli_saddr - (char *)hi.dli_fbase, (char *)di.dli_saddr - (char *)di.dli_fbase);
    /* the ELF header: the library, no symbol (as the C library says) */
    ASSERT(dladdr(hi.dli_fbase, &hi) && hi.dli_sname == NULL);
    ASSERT_EQ(a.addr(bi.base, &di), 1);
    ASSERT(di.dli_fbase == bi.base && di.dli_sname == NULL && di.dli_saddr == NULL);
    dlclose(h);
    /* data of its own */
    char *data = vmc_lib_sym(l, "t_dl_data");
    ASSERT_EQ(a.addr(data + 5, &di), 1);
    ASSERT_STR_EQ(di.dli_fname, vt_tlib("libt_dladdr.so"));
    ASSERT_STR_EQ(di.dli_sname, "t_dl_data");
    /* dladdr1: the symbol's entry; RTLD_DL_LINKMAP: there is no link map */
    void *extra = NULL;
    ASSERT_EQ(a.addr1(add + 1, &di, &extra, RTLD_DL_SYMENT), 1);
    const Elf64_Sym *se = extra;
    ASSERT(se && (char *)bi.base + se->st_value == add && ELF64_ST_TYPE(se->st_info) == STT_FUNC);
    extra = NULL;
    ASSERT_EQ(a.addr1(bi.base, &di, &extra, RTLD_DL_SYMENT), 1);
    ASSERT(extra == NULL);
    ASSERT_EQ(a.addr1(add, &di, &extra, RTLD_DL_LINKMAP), 0);
    /* the host's code and the C library's: the C library's answers */
    ASSERT_EQ(a.addr((void *)vt_addr_host_fn, &di), 1);
    ASSERT(dladdr((void *)vt_addr_host_fn, &hi));
    ASSERT_STR_EQ(di.dli_fname, hi.dli_fname);
    ASSERT_STR_EQ(di.dli_sname, "vt_addr_host_fn");
    ASSERT_EQ(a.addr1((void *)vt_addr_host_fn, &di, &extra, RTLD_DL_LINKMAP), 1);
    ASSERT(extra != NULL);
    /* the region's own code is nobody's; an unloaded library neither */
    vmc_span_t code;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &code));
    ASSERT_EQ(a.addr(code.x, &di), 0);
    ASSERT_OK(vmc_lib_unload(b));
    ASSERT_EQ(a.addr(add, &di), 0);
    /* the host's own dladdr is the C library's: it knows no private code */
    ASSERT_EQ(dladdr(data, &hi), 0);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

int vt_dl_host_frame(dl_api_t *a, void **buf, int max, int *n, char ***out);
__attribute__((noinline)) int vt_dl_host_frame(dl_api_t *a, void **buf, int max, int *n, char ***out)
{
    *out = a->stack(buf, max, n);
    __asm__ volatile("" ::: "memory");  /* not a tail call */
    return 0;
}

/* What backtrace_symbols_fd writes for buf[0..n), the plug-in's (a) or the
 * C library's (NULL). */
static void fd_lines(dl_api_t *a, void *const *buf, int n, char *text, size_t cap)
{
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    if (a) a->symbols_fd(buf, n, fds[1]);
    else backtrace_symbols_fd(buf, n, fds[1]);
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got < cap - 1 && (r = read(fds[0], text + got, cap - 1 - got)) > 0) got += (size_t)r;
    close(fds[0]);
    text[got] = 0;
}

/* The plug-in's backtrace_symbols on its own stack: its frames named as
 * the C library names those of the objects it loaded, "PATH(SYMBOL+0xOFF)
 * [ADDR]", or "PATH(+0xOFF) [ADDR]" from the load bias for a static
 * function; the host's frames exactly as the C library's own call gives
 * them; backtrace_symbols_fd writes the same lines. */
TEST(addrinfo_plugin_backtrace_symbols_names_private_frames)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_dladdr.so"), 0, &l));
    dl_api_t a = dl_api(l);
    vmc_lib_info_t li;
    ASSERT_OK(vmc_lib_info(l, &li));
    const char *path = vt_tlib("libt_dladdr.so");
    void *buf[64];
    int n = 0;
    char **s = NULL;
    vt_dl_host_frame(&a, buf, 64, &n, &s);
    ASSERT(s);
    ASSERT_GT(n, 3);
    char want[1024];
    /* 0: inner, static; 1: t_dl_stack; 2: the host's frame */
    snprintf(want, sizeof want, "%s(+%#lx) [%p]", path, (unsigned long)((char *)buf[0] - (char *)li.base), buf[0]);
    ASSERT_STR_EQ(s[0], want);
    char *stack_fn = vmc_lib_sym(l, "t_dl_stack");
    snprintf(want, sizeof want, "%s(t_dl_stack+%#lx) [%p]", path, (unsigned long)((char *)buf[1] - stack_fn),
             buf[1]);
    ASSERT_STR_EQ(s[1], want);
    char **host = backtrace_symbols(buf, n);
    ASSERT(host);
    ASSERT_STR_CONTAINS(s[2], "vt_dl_host_frame+0x");
    for (int i = 2; i < n; i++) ASSERT_STR_EQ(s[i], host[i]);
    /* the host's own call is the C library's: no name for private frames */
    snprintf(want, sizeof want, "[%p]", buf[1]);
    ASSERT_STR_EQ(host[1], want);
    free(host);
    /* one line per frame on a descriptor, as the C library writes them
     * there (no space before the bracket): the host's frames exactly its */
    for (int i = 0; i < n; i++) {
        char mine[4096], theirs[4096];
        fd_lines(&a, buf + i, 1, mine, sizeof mine);
        if (i < 2) {
            const char *sp = strrchr(s[i], ' ');
            ASSERT(sp);
            snprintf(theirs, sizeof theirs, "%.*s%s\n", (int)(sp - s[i]), s[i], sp + 1);
        } else {
            fd_lines(NULL, buf + i, 1, theirs, sizeof theirs);
        }
        ASSERT_STR_EQ(mine, theirs);
    }
    char all[16384], one[4096];
    fd_lines(&a, buf, n, all, sizeof all);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        fd_lines(&a, buf + i, 1, one, sizeof one);
        ASSERT(!strncmp(all + off, one, strlen(one)));
        off += strlen(one);
    }
    ASSERT_EQ(all[off], 0);
    free(s);
    /* no private address: the C library's array as it is; none at all */
    char **only_host = a.symbols(buf + 2, n - 2);
    ASSERT(only_host);
    ASSERT_STR_CONTAINS(only_host[0], "vt_dl_host_frame+0x");
    free(only_host);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* A system library that asks dladdr where it is: OpenSSL's DSO_pathbyaddr
 * (NULL: its own code) gives the path the private copy was loaded from, and
 * for another object's address the C library's answer. */
TEST(addrinfo_system_libcrypto_finds_its_own_path)
{
    const char *path = "/usr/lib/x86_64-linux-gnu/libcrypto.so.3";
    if (access(path, R_OK)) SKIP("no libcrypto.so.3");
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, path, 0, &l));
    int (*by_addr)(void *, char *, int) = (int (*)(void *, char *, int))vmc_lib_sym(l, "DSO_pathbyaddr");
    ASSERT(by_addr);
    char got[4096];
    ASSERT_EQ(by_addr(NULL, got, sizeof got), (int)strlen(path) + 1);
    ASSERT_STR_EQ(got, path);
    Dl_info hi;
    ASSERT(dladdr((void *)strlen, &hi));
    ASSERT_GT(by_addr((void *)strlen, got, sizeof got), 0);
    ASSERT_STR_EQ(got, hi.dli_fname);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}
