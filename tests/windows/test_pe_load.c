/* Windows only: a MinGW DLL laid out by the PE layer into committed memory
 * of a reservation, relocated there, its imports bound through the
 * system's DLLs (GetModuleHandle or LoadLibrary, then GetProcAddress by name
 * or ordinal), its sections given their protection, .pdata registered with
 * RtlAddFunctionTable, its TLS callbacks and DllMain run, its exports called;
 * then DllMain's detach and the reservation released.  These are the steps
 * the lifecycle's Windows load path is to take, done here by hand, to show
 * that what the PE layer produces runs.  Sections are 4 KiB aligned and
 * protected one by one (vmc__os_protect is page granular). */
#include "test.h"
#include "os/os.h"
#include "pe/pe.h"

#include <windows.h>

typedef struct loaded {
    uintptr_t resv, base;
    size_t len;
    vmc_pe_obj_t o;
    uint8_t *file;
} loaded_t;

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) SKIP("the PE test DLLs are not built (MinGW-w64)");
    ASSERT(!fseek(f, 0, SEEK_END));
    long sz = ftell(f);
    ASSERT(sz > 0 && !fseek(f, 0, SEEK_SET));
    uint8_t *b = malloc((size_t)sz);
    ASSERT(b && fread(b, 1, (size_t)sz, f) == (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static int prot_of(uint32_t chars)
{
    if (chars & VMC_PE_SCN_EXECUTE) return VMC_OS_READ | VMC_OS_EXEC;
    if (chars & VMC_PE_SCN_WRITE) return VMC_OS_READ | VMC_OS_WRITE;
    return VMC_OS_READ;
}

typedef BOOL(WINAPI *dllmain_t)(HINSTANCE, DWORD, LPVOID);
typedef void(NTAPI *tls_cb_t)(PVOID, DWORD, PVOID);

static void run_attach(loaded_t *L, DWORD reason)
{
    for (uint32_t i = 0; i < L->o.ncallbacks; i++)
        ((tls_cb_t)(L->base + L->o.callbacks[i]))((PVOID)L->base, reason, NULL);
    if (L->o.pe.entry) ASSERT(((dllmain_t)(L->base + L->o.pe.entry))((HINSTANCE)L->base, reason, NULL));
}

static void load(loaded_t *L, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/pe/%s", vt_build_dir(), name);
    size_t n;
    L->file = slurp(path, &n);
    memset(&L->o, 0, sizeof L->o);
    L->o.name = name;
    ASSERT_OK(vmc__pe_check(&L->o, L->file, n));
    size_t g = vmc__os_granularity();
    L->len = (L->o.pe.size_of_image + g - 1) & ~(g - 1);
    ASSERT_OK(vmc__os_reserve(0, L->len, &L->resv));
    L->base = L->resv;
    ASSERT_OK(vmc__os_commit(L->base, L->len, VMC_OS_READ | VMC_OS_WRITE));
    vmc__pe_layout(&L->o, L->file, (uint8_t *)L->base);
    ASSERT(L->base != L->o.pe.image_base);  /* it moves: relocations applied */
    ASSERT_OK(vmc__pe_read(&L->o, L->base));
    ASSERT_GT(L->o.nrelocs, 0);
    for (size_t i = 0; i < L->o.imp.nfn; i++) {
        const vmc_pe_import_t *f = &L->o.imp.fn[i];
        const char *dll = L->o.imp.dlls[f->dll].name;
        HMODULE h = GetModuleHandleA(dll);
        if (!h) h = LoadLibraryA(dll);
        ASSERT_MSG(h, "%s: %s not found", name, dll);
        FARPROC p = GetProcAddress(h, f->name ? f->name : (LPCSTR)(uintptr_t)f->hint);
        ASSERT_MSG(p, "%s: %s!%s not found", name, dll, f->name ? f->name : "(ordinal)");
        memcpy((void *)(L->base + f->slot), &p, sizeof p);
    }
    ASSERT_OK(vmc__os_protect(L->base, (L->o.pe.size_of_headers + 4095u) & ~(size_t)4095, VMC_OS_READ));
    for (uint32_t i = 0; i < L->o.pe.nsect; i++) {
        const vmc_pe_sect_t *s = &L->o.pe.sect[i];
        size_t sz = (s->vsize + 4095u) & ~(size_t)4095;
        ASSERT_OK(vmc__os_protect(L->base + s->va, sz, prot_of(s->chars)));
    }
    FlushInstructionCache(GetCurrentProcess(), (void *)L->base, L->len);
    if (L->o.npdata)
        ASSERT(RtlAddFunctionTable((PRUNTIME_FUNCTION)(L->base + L->o.pdata), L->o.npdata, L->base));
    run_attach(L, DLL_PROCESS_ATTACH);
}

static void *sym(loaded_t *L, const char *name)
{
    vmc_pe_sym_t s;
    if (!vmc__pe_export(&L->o, name, &s)) return NULL;
    if (!s.forward) return (void *)(L->base + s.rva);
    char dll[128];
    const char *dot = strchr(s.forward, '.');
    ASSERT(dot && (size_t)(dot - s.forward) < sizeof dll - 5);
    snprintf(dll, sizeof dll, "%.*s.dll", (int)(dot - s.forward), s.forward);
    return (void *)GetProcAddress(GetModuleHandleA(dll), dot + 1);
}

static void unload(loaded_t *L)
{
    run_attach(L, DLL_PROCESS_DETACH);
    if (L->o.npdata) ASSERT(RtlDeleteFunctionTable((PRUNTIME_FUNCTION)(L->base + L->o.pdata)));
    ASSERT_OK(vmc__os_release(L->resv, L->len));
    vmc__pe_free(&L->o);
    free(L->file);
}

TEST(pe_load_by_hand_runs_the_basic_dll)
{
    loaded_t L;
    load(&L, "t_pe_basic.dll");
    int (*add)(int, int) = (int (*)(int, int))sym(&L, "t_add");
    int *(*get)(void) = (int *(*)(void))sym(&L, "t_get");
    const char *(*nm)(int) = (const char *(*)(int))sym(&L, "t_name");
    int (*fmt)(char *, size_t, int) = (int (*)(char *, size_t, int))sym(&L, "t_fmt");
    int (*secret)(void) = (int (*)(void))sym(&L, "#12");
    int *attach = sym(&L, "t_attach");
    ASSERT(add && get && nm && fmt && secret && attach);
    ASSERT_EQ(add(2, 3), 5);
    ASSERT_EQ(*attach, 1);                 /* DllMain ran once */
    ASSERT(get() == sym(&L, "t_counter")); /* a pointer in .data, relocated */
    ASSERT_EQ(*get(), 5);
    ASSERT_STR_EQ(nm(2), "two");           /* pointers in .rdata, relocated */
    char buf[16];
    ASSERT_EQ(fmt(buf, sizeof buf, 1234), 4);  /* msvcrt's snprintf */
    ASSERT_STR_EQ(buf, "1234");
    ASSERT_EQ(secret(), 42);
    ASSERT(sym(&L, "t_tick_fwd") == (void *)GetProcAddress(GetModuleHandleA("kernel32.dll"), "GetTickCount"));
    /* every export lies inside the piece of the reservation */
    ASSERT((uintptr_t)add >= L.base && (uintptr_t)add < L.base + L.len);
    unload(&L);
}

TEST(pe_load_by_hand_cxx_exceptions_unwind_through_pdata)
{
    loaded_t L;
    load(&L, "t_pe_cxx.dll");
    int (*c)(int) = (int (*)(int))sym(&L, "t_cxx_catch");
    int (*g)(void) = (int (*)(void))sym(&L, "t_cxx_greeting_len");
    ASSERT(c && g);
    ASSERT_EQ(g(), 5);       /* a static constructor ran (DllMain's CRT init) */
    ASSERT_EQ(c(7), 49);
    ASSERT_EQ(c(-1), -8);    /* thrown and caught inside: "negative" */
    unload(&L);
}
