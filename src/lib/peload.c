/* The lifecycle's DLL side (vmc__lib_pe_fmt, the format seam of loader.h):
 * a PE32+ DLL loaded privately into the code region, on Windows.
 *
 * An image section cannot replace a placeholder, so the DLL is not mapped:
 * its headers are read and checked by the PE layer before anything is
 * placed, a run of the region of SizeOfImage bytes is taken (at the OS
 * layer's 64 KiB granularity) and committed read-write, the headers are
 * copied in and the sections' bytes read from the file straight into the
 * run (lay_out: no buffer of the whole file; what lies past the sections,
 * the COFF symbols, is never read), the rest stays zero as committed
 * memory is,
 * base relocations move it there (it never runs at its preferred base: the
 * region chooses), the imports are bound, then each section gets its own
 * protection (vmc__os_protect is page granular: sections are 4 KiB aligned;
 * never writable and executable, pe/check.c refuses such sections; the
 * whole image read-only in one call, then one call for each run of
 * adjacent sections that are writable or executable alike), the
 * instruction cache is flushed and .pdata is registered with
 * RtlAddFunctionTable so that exceptions and stack walks cross the DLL.
 * TLS callbacks, then DllMain(DLL_PROCESS_ATTACH) run once every library
 * the load brought in is bound, dependencies first (loader.c's finish);
 * unloading runs DllMain(DLL_PROCESS_DETACH), then the TLS callbacks, in
 * the reverse order, takes the function table back and gives the run back
 * (a placeholder again, never free address space).  DLL_THREAD_ATTACH and
 * DLL_THREAD_DETACH are not called: the system calls them only for the
 * DLLs its own loader knows (docs/loader.md says what that means).
 *
 * Where each imported DLL comes from, in this order: the process has it
 * already (GetModuleHandleEx: the host's copy, one reference held); a
 * system DLL (kernel32, ntdll, the C runtimes, api-ms-win-*: one copy per
 * process) through LoadLibrary; a compiler runtime (libgcc_s_seh-1,
 * libstdc++-6, libwinpthread-1: one copy per process too) from beside the
 * importing DLL by its full path if it is there, so that the process has
 * it once, else through LoadLibrary's search; a file of that name
 * beside the DLL that imports it is loaded privately, dependencies first
 * (if the private loader refuses it as unsupported, LoadLibrary loads that
 * file, outside the region); anything else through LoadLibrary's own
 * search, outside the region (a dependency need not be reachable).  A
 * function is bound by name or by ordinal, GetProcAddress for the system's
 * modules and the export directory (binary search) for private ones,
 * forwarders followed.  Delay-load imports are bound at load like the
 * others, their module-handle slot written too, so the DLL's delay-load
 * helper never runs and a missing one refuses the load.  A missing DLL or
 * function refuses the load naming both.
 *
 * Two private DLLs that import from each other: the one loaded second finds
 * the first still loading (it is laid out and relocated, so its exports can
 * be bound) and holds no reference to it, or neither could ever unload.
 *
 * On Linux the DLL is checked and then refused (-ENOTSUP): its code needs
 * Windows to run.  Under -w_xor_x the image is private memory at the code
 * region's (executable view's) addresses only, as ELF images are: read-write
 * while it is copied and bound, then each section its own protection, so
 * no page is ever writable and executable, and it has no writable alias
 * (vmc_writable gives NULL for it).
 */
#include "lib/loader.h"
#include "pe/pe.h"
#include "base/error.h"
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FORWARDS 16          /* a forwarder chain longer than this is refused */

/* What a DLL's load keeps. */
typedef struct vmc_pe_lib {
    vmc_pe_obj_t o;              /* the headers and directories (pe.h)      */
    uintptr_t run;               /* the run holding the image               */
    size_t run_len;
    int unwind;                  /* .pdata registered                       */
    int attached;                /* DllMain(ATTACH) was called: DETACH is due */
    void **extra;                /* modules forwarders led to, one reference each */
    size_t nextra, capextra;
    size_t bound_private, bound_host;   /* imports bound, by where      */
    unsigned nsegments;          /* for vmc_lib_info: the sections          */
    struct pe_seg { uintptr_t start; size_t size; int prot; } seg[VMC_LIB_MAX_SEGMENTS];
} vmc_pe_lib_t;

/* DLL_PROCESS_ATTACH and friends (winnt.h's values). */
enum { REASON_DETACH = 0, REASON_ATTACH = 1 };

typedef int(__attribute__((ms_abi)) * dllmain_fn)(void *module, uint32_t reason, void *reserved);
typedef void(__attribute__((ms_abi)) * tls_callback_fn)(void *module, uint32_t reason, void *reserved);

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* The file's base name, for messages and to match imports by name. */
static const char *base_name(const char *path)
{
    const char *b = path;
    for (const char *p = path; *p; p++)
        if (*p == '/' || *p == '\\') b = p + 1;
    return b;
}

/* ---- reading and placing the image ------------------------------------------ */

/* The file's headers (vmc__pe_head_size's many leading bytes) into *head:
 * the bytes loader.c read already when they hold them (a DLL's headers are
 * usually 1 KiB), else read into *buf; from memory, the bytes given. */
static int read_headers(vmc_lib_t *l, const vmc_src_t *src, const uint8_t *hdr, size_t hdrlen,
                        const uint8_t **head, uint8_t **buf)
{
    *buf = NULL;
    *head = src->fd < 0 ? src->bytes : hdr;
    if (src->fd < 0) return 0;
    if (src->size > VMC_PE_MAX_IMAGE)
        return vmc__fail(-ENOTSUP, "%s: PE file of 0x%llx bytes: files over 1 GiB are not supported", l->name,
                         (unsigned long long)src->size);
    size_t have = hdrlen, need;
    while ((need = vmc__pe_head_size(*head, have, src->size)) > have) {
        uint8_t *b = realloc(*buf, need);
        if (!b) return vmc__fail(-ENOMEM, "%s: out of memory for the PE headers", l->name);
        *buf = b;
        size_t got = 0;
        int e = vmc__os_pread(src->fd, b, need, 0, &got);
        if (e) return vmc__fail(e, "%s: reading the PE headers: %s", l->name, strerror(-e));
        if (got != need) return vmc__fail(-ENOEXEC, "%s: reading the PE headers: the file shrank", l->name);
        *head = b;
        have = need;
    }
    return 0;
}

/* The file's bytes up to the end of its last section's, when one read of
 * them to the start of the run can be followed by moving each section up
 * to its RVA: the sections in the file in the order of the image, after
 * the headers, each at or below its RVA (so moving the last first never
 * overwrites one still to move), and all of it inside the image.  What
 * linkers make; 0 otherwise. */
static uint64_t one_read_span(const vmc_pe_t *pe)
{
    uint64_t end = pe->size_of_headers;
    for (uint32_t i = 0; i < pe->nsect; i++) {
        const vmc_pe_sect_t *s = &pe->sect[i];
        if (!s->copy) continue;
        if (s->raw < end || s->raw > s->va) return 0;
        end = (uint64_t)s->raw + s->copy;
    }
    return end <= pe->size_of_image ? end : 0;
}

/* Fault [p, p+len) in before a read lands there: under Wine a ReadFile into
 * committed pages not yet touched costs about twice what touching them
 * first and then reading does (176 KiB: 160 us against 65 + 8 under Wine
 * 10, 189 against 83 + 20 under Wine 8).  The pages are zero already; one
 * zero written to each leaves them so. */
static void touch(uint8_t *p, size_t len)
{
    size_t page = vmc__os_page_size();
    for (size_t at = 0; at < len; at += page) ((volatile uint8_t *)p)[at] = 0;
}

/* The image into its run, which is zero: the file's bytes read straight
 * into it, no buffer of the whole file.  Usually one read of everything up
 * to the last section's end (what follows, MinGW's COFF symbols, is never
 * read), each section then moved up to its RVA, last first, the checked
 * headers copied over the ones read and everything between zeroed again;
 * else one read per section.  One ReadFile is a server round trip under
 * Wine 8 (some 50 us), so twenty of them cost more than the copy. */
static int lay_out(vmc_lib_t *l, vmc_pe_lib_t *p, const vmc_src_t *src, const uint8_t *head)
{
    const vmc_pe_t *pe = &p->o.pe;
    uint8_t *img = (uint8_t *)p->run;
    if (src->fd < 0) {
        vmc__pe_layout(&p->o, src->bytes, img);
        return 0;
    }
    p->o.img = img;
    uint64_t span = one_read_span(pe);
    size_t got = 0;
    if (span) {
        touch(img, span);
        int e = vmc__os_pread(src->fd, img, span, 0, &got);
        if (e)
            return vmc__fail(e, "%s: reading its headers and sections (0x%llx bytes): %s", l->name,
                             (unsigned long long)span, strerror(-e));
        if (got != span)
            return vmc__fail(-ENOEXEC, "%s: reading its headers and sections (0x%llx bytes): the file shrank",
                             l->name, (unsigned long long)span);
        for (uint32_t i = pe->nsect; i-- > 0;) {
            const vmc_pe_sect_t *s = &pe->sect[i];
            if (s->copy && s->va != s->raw) memmove(img + s->va, img + s->raw, s->copy);
        }
        memcpy(img, head, pe->size_of_headers);
        uint64_t at = pe->size_of_headers;   /* zero what is no section's now */
        for (uint32_t i = 0; i < pe->nsect; i++) {
            const vmc_pe_sect_t *s = &pe->sect[i];
            if (!s->copy) continue;
            if (s->va > at) memset(img + at, 0, s->va - at);
            at = (uint64_t)s->va + s->copy;
        }
        if (span > at) memset(img + at, 0, span - at);
        return 0;
    }
    memcpy(img, head, pe->size_of_headers);
    for (uint32_t i = 0; i < pe->nsect; i++) {
        const vmc_pe_sect_t *s = &pe->sect[i];
        if (!s->copy) continue;
        touch(img + s->va, s->copy);
        int e = vmc__os_pread(src->fd, img + s->va, s->copy, s->raw, &got);
        if (e)
            return vmc__fail(e, "%s: section %u %s: reading 0x%x bytes at file offset 0x%x: %s", l->name,
                             s->index, s->name, s->copy, s->raw, strerror(-e));
        if (got != s->copy)
            return vmc__fail(-ENOEXEC, "%s: section %u %s: reading 0x%x bytes at file offset 0x%x: the file "
                             "shrank", l->name, s->index, s->name, s->copy, s->raw);
    }
    return 0;
}

/* A run of the code region for SizeOfImage bytes, committed read-write. */
static int place(vmc_lib_t *l, vmc_pe_lib_t *p)
{
    vmc_space_t *sp = l->v->sp;
    vmc_blocks_t *b = vmc__blocks_of(sp, &sp->code);
    size_t len = round_up(p->o.pe.size_of_image, vmc__os_granularity());
    uintptr_t run;
    int e = vmc__blocks_take(b, len, 0, 0, 0, 1, VMC_OWNER_LIBRARY, l, &run);
    if (e) return vmc__fail_wrap(e, "%s: no room for its 0x%zx-byte image in the code region", l->name, len);
    p->run = run;
    p->run_len = len;
    if ((e = vmc__blocks_commit(b, run, len, VMC_RDATA)))
        return vmc__fail_wrap(e, "%s: committing its 0x%zx-byte image", l->name, len);
    vmc__blocks_set_name(b, run, l->name);  /* for maps and dumps */
    return 0;
}

static int section_prot(uint32_t chars)
{
    int prot = VMC_OS_READ;
    if (chars & VMC_PE_SCN_EXECUTE) prot |= VMC_OS_EXEC;
    if (chars & VMC_PE_SCN_WRITE) prot |= VMC_OS_WRITE;
    return prot;
}

/* Headers read-only, each section its own protection, the gaps and the
 * tail read-only; then the instruction cache.  Sections that touch, page
 * rounded, and want the same protection (.idata, .CRT and .tls: writable)
 * take one call: each call costs a system call and, under Wine, a walk of
 * its pages. */
static int protect(vmc_lib_t *l, vmc_pe_lib_t *p)
{
    size_t page = vmc__os_page_size();
    const vmc_pe_t *pe = &p->o.pe;
    int e = vmc__os_protect(p->run, p->run_len, VMC_OS_READ);
    if (e) return vmc__fail(e, "%s: headers: VirtualProtect: %s", l->name, strerror(-e));
    for (uint32_t i = 0; i < pe->nsect;) {
        const int prot = section_prot(pe->sect[i].chars);
        const vmc_pe_sect_t *first = NULL, *last = NULL;
        uintptr_t end = 0;
        for (; i < pe->nsect && section_prot(pe->sect[i].chars) == prot; i++) {
            const vmc_pe_sect_t *t = &pe->sect[i];
            size_t size = round_up(t->vsize, page);
            if (!size) continue;
            if (first && p->run + t->va != end) break;  /* a gap between: read-only */
            if (!first) first = t;
            last = t;
            end = p->run + t->va + size;
            if (p->nsegments < VMC_LIB_MAX_SEGMENTS)
                p->seg[p->nsegments++] = (struct pe_seg){p->run + t->va, size, prot};
        }
        if (!first || prot == VMC_OS_READ) continue;
        uintptr_t start = p->run + first->va;
        if ((e = vmc__os_protect(start, end - start, prot))) {
            if (first == last)
                return vmc__fail(e, "%s: section %u %s: VirtualProtect: %s", l->name, first->index, first->name,
                                 strerror(-e));
            return vmc__fail(e, "%s: sections %u %s to %u %s: VirtualProtect: %s", l->name, first->index,
                             first->name, last->index, last->name, strerror(-e));
        }
    }
    vmc__os_flush_icache(p->run, p->run_len);
    return 0;
}

/* ---- dependencies ------------------------------------------------------------- */

/* One copy per process: the system's DLLs, the C runtimes, the compiler's
 * runtimes (two libstdc++ would disagree on every type_info). */
static int is_system_dll(const char *n)
{
    static const char *const prefix[] = {"api-ms-win-", "ext-ms-win-"};
    static const char *const sys[] = {
        "kernel32.dll", "kernelbase.dll", "ntdll.dll", "msvcrt.dll", "ucrtbase.dll", "user32.dll",
        "gdi32.dll", "advapi32.dll", "ws2_32.dll", "ole32.dll", "oleaut32.dll", "shell32.dll",
        "shlwapi.dll", "bcrypt.dll", "crypt32.dll", "winmm.dll", "comctl32.dll", "comdlg32.dll",
        "version.dll", "psapi.dll", "dbghelp.dll", "rpcrt4.dll", "secur32.dll", "sechost.dll",
        "imm32.dll", "setupapi.dll", "iphlpapi.dll", "userenv.dll", "winspool.drv",
        "libgcc_s_seh-1.dll", "libstdc++-6.dll", "libwinpthread-1.dll"};
    for (size_t i = 0; i < sizeof prefix / sizeof prefix[0]; i++)
        if (!strncasecmp(n, prefix[i], strlen(prefix[i]))) return 1;
    if (!strncasecmp(n, "vcruntime", 9) || !strncasecmp(n, "msvcp", 5)) return 1;
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
        if (!strcasecmp(n, sys[i])) return 1;
    return 0;
}

/* The compiler's runtime DLLs (MinGW-w64's GCC): one copy per process like
 * the system's, but not part of the system: shipped beside the program or
 * the plug-in that needs them. */
static int is_compiler_runtime(const char *n)
{
    return !strcasecmp(n, "libgcc_s_seh-1.dll") || !strcasecmp(n, "libstdc++-6.dll") ||
           !strcasecmp(n, "libwinpthread-1.dll");
}

/* path = the directory of l, then n, joined with the separator the
 * directory uses (the one of the path l was loaded by; a directory with
 * none, ".", takes '\\'): Z:\dir\sub\dep.dll, not Z:\dir\sub/dep.dll. */
static int beside(vmc_lib_t *l, const char *n, char *path, size_t size)
{
    const char *fs = strrchr(l->dir, '/'), *bs = strrchr(l->dir, '\\');
    size_t dl = strlen(l->dir);
    const char *sep = fs && (!bs || fs > bs) ? "/" : "\\";
    if (dl && (l->dir[dl - 1] == '/' || l->dir[dl - 1] == '\\')) sep = "";   /* "C:\\", "/" */
    int len = snprintf(path, size, "%s%s%s", l->dir, sep, n);
    if (len < 0 || (size_t)len >= size)
        return vmc__fail(-ENAMETOOLONG, "%s: imported DLL %s: path too long", l->name, n);
    return 0;
}

/* Is there a file at path?  Through the OS layer, like every other call. */
static int file_there(vmc_lib_t *l, const char *n, const char *path, int *there)
{
    int e = vmc__os_file_exists(path, there);
    if (e) return vmc__fail(e, "%s: imported DLL %s: looking for %s: %s", l->name, n, path, vmc__os_why(e));
    return 0;
}

/* d is a DLL the system loader holds (handle h), found `where`, for the
 * reason given (a constant, or one l owns: vmc__lib_why). */
static int by_system(vmc_dep_t *d, void *h, int where, const char *why)
{
    d->kind = VMC_DEP_SYSTEM;
    d->handle = h;
    d->where = where;
    d->why = why;
    return 0;
}

/* Imported DLL i of l into d (the order in this file's opening comment). */
static int resolve_dll(vmc_lib_t *l, const char *n, vmc_dep_t *d)
{
    void *h = NULL;
    int e = vmc__os_dll_find(n, &h);
    if (!e) {
        d->host_had_it = 1;
        return by_system(d, h, VMC_DEP_IN_PROCESS, "the process has it already: the host's copy");
    }
    if (e != -ENOENT) return vmc__fail(e, "%s: imported DLL %s: GetModuleHandleEx: %s", l->name, n, strerror(-e));
    char path[4096];
    int there = 0;
    if (is_system_dll(n)) {
        if (l->flags & VMC_LOAD_INERT)
            return vmc__fail(-ENOENT, "%s: imported DLL %s: not in the process (VMC_LOAD_INERT loads nothing "
                             "else)", l->name, n);
        /* A compiler runtime the process lacks: the copy beside the DLL,
         * by its full path (the system loader then finds the runtime's own
         * runtimes beside it too), so that every later importer shares it;
         * else the system's search. */
        int rt = is_compiler_runtime(n) && l->dir;
        if (rt && ((e = beside(l, n, path, sizeof path)) || (e = file_there(l, n, path, &there)))) return e;
        if (there) {
            if ((e = vmc__os_dll_load(path, &h)))
                return vmc__fail(e, "%s: imported DLL %s: a compiler runtime the process does not have, found "
                                 "beside it as %s: LoadLibraryEx: %s (system error %lu)", l->name, n, path,
                                 e == -ENOENT ? "not found" : strerror(-e), vmc__os_last_detail());
            return by_system(d, h, VMC_DEP_BESIDE, "a compiler runtime (one copy per process) the process did "
                             "not have, found beside the DLL that imports it: the system loader's, from there");
        }
        if ((e = vmc__os_dll_load(n, &h))) {
            if (rt)
                return vmc__fail(e, "%s: imported DLL %s: a compiler runtime, not in the process, not beside it "
                                 "(%s), and LoadLibrary's search: %s (system error %lu)", l->name, n, path,
                                 e == -ENOENT ? "not found" : strerror(-e), vmc__os_last_detail());
            return vmc__fail(e, "%s: imported DLL %s: LoadLibrary: %s (system error %lu)", l->name, n,
                             e == -ENOENT ? "not found" : strerror(-e), vmc__os_last_detail());
        }
        return by_system(d, h, VMC_DEP_SYSTEM_LIBRARY, "a system DLL (one copy per process): the system loader's");
    }
    if (l->dir) {
        if ((e = beside(l, n, path, sizeof path))) return e;
        if ((e = file_there(l, n, path, &there))) return e;
    }
    if (there) {
        if (l->depth + 1 > VMC_ELF_MAX_DEPTH)
            return vmc__fail(-ELOOP, "%s: imported DLL %s: nested more than %d deep", l->name, n,
                             VMC_ELF_MAX_DEPTH);
        vmc_lib_t *dep;
        d->where = VMC_DEP_BESIDE;
        e = vmc__lib_load_file(l->v, path, l->flags, l->depth + 1, l, &dep);
        if (!e) {
            d->kind = VMC_DEP_PRIVATE;
            d->lib = dep;
            if (dep->state == VMC_LIB_LOADING) {
                /* it imports from us, or from a DLL still loading that does:
                 * a cycle holds no reference (this file's opening comment) */
                dep->refs--;
                d->cycle = 1;
            }
            d->why = "found beside the DLL that imports it: loaded privately";
            return 0;
        }
        if (e != -ENOTSUP || (l->flags & VMC_LOAD_INERT))
            return vmc__fail_wrap(e, "%s: imported DLL %s", l->name, n);
        /* the refusal's message, before LoadLibraryEx (which may fail and leave it) */
        const char *why = vmc__lib_why(l, "found beside the DLL that imports it; loaded by the system loader "
                                       "because the private loader refuses it: %s", vmc_last_error());
        if (vmc__os_dll_load(path, &h)) return vmc__fail_wrap(e, "%s: imported DLL %s", l->name, n);
        if (!why) {
            vmc__os_dll_free(h);
            return vmc__fail(-ENOMEM, "%s: imported DLL %s: out of memory", l->name, n);
        }
        return by_system(d, h, VMC_DEP_BESIDE, why);
    }
    if (l->flags & VMC_LOAD_INERT)
        return vmc__fail(-ENOENT, "%s: imported DLL %s: not in the process (VMC_LOAD_INERT loads nothing else)",
                         l->name, n);
    if ((e = vmc__os_dll_load(n, &h)))
        return vmc__fail(e, "%s: imported DLL %s: %s (LoadLibrary, system error %lu)", l->name, n,
                         e == -ENOENT ? "not found beside it nor by the system's search" : strerror(-e),
                         vmc__os_last_detail());
    return by_system(d, h, VMC_DEP_SYSTEM_SEARCH, "not beside the DLL that imports it: the system loader's "
                     "search, outside the region");
}

/* A module a forwarder names ("KERNEL32" of "KERNEL32.GetTickCount"), held
 * in p->extra: the process's copy, else LoadLibrary's. */
static int forward_module(vmc_lib_t *l, vmc_pe_lib_t *p, const char *dll, void **h)
{
    int e = vmc__os_dll_find(dll, h);
    if (e == -ENOENT) e = vmc__os_dll_load(dll, h);
    if (e) return e;
    for (size_t i = 0; i < p->nextra; i++)
        if (p->extra[i] == *h) {
            vmc__os_dll_free(*h);  /* held already */
            return 0;
        }
    if (p->nextra == p->capextra) {
        size_t n = p->capextra ? 2 * p->capextra : 4;
        void **x = realloc(p->extra, n * sizeof *x);
        if (!x) {
            vmc__os_dll_free(*h);
            return vmc__fail(-ENOMEM, "%s: out of memory for forwarded modules", l->name);
        }
        p->extra = x;
        p->capextra = n;
    }
    p->extra[p->nextra++] = *h;
    return 0;
}

/* The private library of l's handle whose file is named `dll` (without
 * ".dll" when `stem`), or NULL. */
static vmc_lib_t *private_named(vmc_lib_t *l, const char *dll, size_t len)
{
    for (vmc_lib_t *o = l->v->libs; o; o = o->next) {
        if (!o->pe || o->state == VMC_LIB_FINISHED) continue;
        const char *b = base_name(o->name);
        if (!strncasecmp(b, dll, len) && (!b[len] || !strcasecmp(b + len, ".dll"))) return o;
    }
    return NULL;
}

/* "#" and a decimal ordinal from 1 to 65535 (what GetProcAddress takes as
 * MAKEINTRESOURCE(N): a zero high word and a non-zero low word). */
static int ordinal_ok(const char *name)
{
    unsigned long v = 0;
    const char *p = name + 1;
    for (; *p >= '0' && *p <= '9' && p - name <= 5; p++) v = v * 10 + (unsigned long)(*p - '0');
    return p > name + 1 && !*p && v >= 1 && v <= 65535;
}

/* The address of export `name` ("#12": an ordinal) of private DLL t,
 * forwarders followed: 1 and *out, 0 if absent, or an error. */
static int export_addr(vmc_lib_t *l, vmc_lib_t *t, const char *name, void **out)
{
    char buf[VMC_PE_MAX_NAME + 8];
    for (int hop = 0; hop < MAX_FORWARDS; hop++) {
        vmc_pe_sym_t s;
        if (!vmc__pe_export(&t->pe->o, name, &s)) return 0;
        if (!s.forward) {
            *out = (void *)(t->pe->run + s.rva);
            return 1;
        }
        /* "DLL.name" or "DLL.#N": another private DLL first, else the system's */
        const char *dot = strrchr(s.forward, '.');
        if (!dot || dot == s.forward || !dot[1])
            return vmc__fail(-ENOEXEC, "%s: export %s is forwarded to \"%s\", which is not DLL.name", t->name,
                             name, s.forward);
        size_t dl = (size_t)(dot - s.forward);
        snprintf(buf, sizeof buf, "%s", dot + 1);
        if (buf[0] == '#' && !ordinal_ok(buf))
            return vmc__fail(-ENOEXEC, "%s: export %s is forwarded to \"%s\", whose ordinal is malformed (not # and "
                             "a decimal number from 1 to 65535)", t->name, name, s.forward);
        vmc_lib_t *next = private_named(l, s.forward, dl);
        if (!next) {
            char dll[VMC_PE_MAX_NAME + 8];
            void *h;
            snprintf(dll, sizeof dll, "%.*s.dll", (int)dl, s.forward);
            int e = forward_module(l, l->pe, dll, &h);
            if (e)
                return vmc__fail(e, "%s: export %s is forwarded to %s, whose DLL %s cannot be loaded: %s", t->name,
                                 name, s.forward, dll, strerror(-e));
            unsigned ord = buf[0] == '#' ? (unsigned)strtoul(buf + 1, NULL, 10) : 0;   /* checked above */
            e = vmc__os_dll_sym(h, ord ? NULL : buf, ord, out);
            if (e == -ENOENT) return 0;
            if (e) return vmc__fail(e, "%s: export %s: GetProcAddress: %s", t->name, name, strerror(-e));
            return 1;
        }
        t = next;
        name = buf;
    }
    return vmc__fail(-ELOOP, "%s: export %s: forwarded more than %d times", t->name, name, MAX_FORWARDS);
}

/* Fill every IAT slot (and each delay-load module-handle slot). */
static int bind_imports(vmc_lib_t *l, vmc_pe_lib_t *p)
{
    const vmc_pe_imports_t *im = &p->o.imp;
    if (!im->ndlls) return 0;
    if (!(l->deps = calloc(im->ndlls, sizeof *l->deps)))
        return vmc__fail(-ENOMEM, "%s: out of memory for its imports", l->name);
    for (size_t i = 0; i < im->ndlls; i++) {
        const vmc_pe_dll_t *dll = &im->dlls[i];
        vmc_dep_t *d = &l->deps[i];
        int e = resolve_dll(l, dll->name, d);
        if (e) return e;
        l->ndeps++;
        if (dll->handle_slot) {
            uintptr_t h = d->kind == VMC_DEP_PRIVATE ? d->lib->pe->run : (uintptr_t)d->handle;
            vmc__pe_put64(p->o.img + dll->handle_slot, h);
        }
        for (size_t k = dll->first; k < dll->first + dll->count; k++) {
            const vmc_pe_import_t *f = &im->fn[k];
            char ordname[16];
            void *a = NULL;
            int found;
            if (d->kind == VMC_DEP_PRIVATE) {
                const char *name = f->name;
                if (!name) snprintf(ordname, sizeof ordname, "#%u", f->hint), name = ordname;
                found = export_addr(l, d->lib, name, &a);
                if (found < 0) return found;
                p->bound_private += found;
            } else {
                e = vmc__os_dll_sym(d->handle, f->name, f->hint, &a);
                if (e && e != -ENOENT)
                    return vmc__fail(e, "%s: import %s!%s: GetProcAddress: %s", l->name, dll->name,
                                     f->name ? f->name : "(ordinal)", strerror(-e));
                found = !e;
                p->bound_host += found;
            }
            if (!found) {
                if (f->name)
                    return vmc__fail(-ENOENT, "%s: %simport %s from %s: %s does not export it", l->name,
                                     dll->delay ? "delay-load " : "", f->name, dll->name, dll->name);
                return vmc__fail(-ENOENT, "%s: %simport of ordinal %u from %s: %s does not export it", l->name,
                                 dll->delay ? "delay-load " : "", f->hint, dll->name, dll->name);
            }
            vmc__pe_put64(p->o.img + f->slot, (uint64_t)(uintptr_t)a);
        }
    }
    return 0;
}

/* ---- the format's entry points -------------------------------------------------- */

static int pe_load(vmc_lib_t *l, vmc_src_t *src, const uint8_t *hdr, size_t hdrlen)
{
    const uint8_t *head;
    uint8_t *buf;
    vmc_pe_lib_t *p = calloc(1, sizeof *p);
    if (!p) return vmc__fail(-ENOMEM, "%s: out of memory for the PE headers", l->name);
    l->pe = p;
    p->o.name = l->name;
    int e = read_headers(l, src, hdr, hdrlen, &head, &buf);
    if (!e) e = vmc__pe_check(&p->o, head, (size_t)src->size);
    if (!e && !(vmc__os_caps() & VMC_OS_CAP_PE))
        e = vmc__fail(-ENOTSUP, "%s: a PE32+ DLL (Windows x64): Windows DLLs are loaded privately on Windows only",
                      l->name);
    if (!e) e = place(l, p);
    if (!e) e = lay_out(l, p, src, head);
    if (!e) e = vmc__pe_read(&p->o, p->run);
    free(buf);
    if (e) return e;
    vmc__lib_list_add(l);
    if ((e = bind_imports(l, p))) return e;
    if ((e = protect(l, p))) return e;
    if (p->o.npdata) {
        if ((e = vmc__os_unwind_add((const void *)(p->run + p->o.pdata), p->o.npdata, p->run)))
            return vmc__fail(e, "%s: exception directory: RtlAddFunctionTable of %u entries failed", l->name,
                             p->o.npdata);
        p->unwind = 1;
    }
    l->state = VMC_LIB_RELOCATED;
    l->seq = ++l->v->lib_seq;  /* dependencies finish first */
    return 0;
}

static void tls_callbacks(vmc_pe_lib_t *p, uint32_t reason)
{
    for (uint32_t i = 0; i < p->o.ncallbacks; i++)
        ((tls_callback_fn)(p->run + p->o.callbacks[i]))((void *)p->run, reason, NULL);
}

static int pe_init(vmc_lib_t *l)
{
    vmc_pe_lib_t *p = l->pe;
    p->attached = 1;  /* the system loader calls DETACH even after a failed ATTACH */
    tls_callbacks(p, REASON_ATTACH);
    if (p->o.pe.entry && !((dllmain_fn)(p->run + p->o.pe.entry))((void *)p->run, REASON_ATTACH, NULL))
        return vmc__fail(-ECANCELED, "%s: DllMain(DLL_PROCESS_ATTACH) returned FALSE: the DLL refused to load",
                         l->name);
    return 0;
}

static void pe_fini(vmc_lib_t *l)
{
    vmc_pe_lib_t *p = l->pe;
    if (!p->attached) return;
    p->attached = 0;
    if (p->o.pe.entry) ((dllmain_fn)(p->run + p->o.pe.entry))((void *)p->run, REASON_DETACH, NULL);
    tls_callbacks(p, REASON_DETACH);
}

static void pe_teardown(vmc_lib_t *l)
{
    vmc_pe_lib_t *p = l->pe;
    if (!p) return;
    if (p->unwind) vmc__os_unwind_remove((const void *)(p->run + p->o.pdata));
    p->unwind = 0;
    for (size_t i = 0; i < p->nextra; i++) vmc__os_dll_free(p->extra[i]);
    p->nextra = 0;
    if (p->run) {
        vmc_space_t *sp = l->v->sp;
        /* dead either way: if the run cannot become a placeholder now it is
         * made inaccessible and given back later (vmc__blocks_abandon) */
        vmc__blocks_abandon(vmc__blocks_of(sp, &sp->code), p->run);
        p->run = 0;
    }
}

static void pe_dep_close(vmc_lib_t *l, vmc_dep_t *d)
{
    (void)l;
    vmc__os_dll_free(d->handle);
}

static void pe_free(vmc_lib_t *l)
{
    vmc_pe_lib_t *p = l->pe;
    if (!p) return;
    vmc__pe_free(&p->o);
    free(p->extra);
    free(p);
    l->pe = NULL;
}

static void *pe_sym(vmc_lib_t *l, const char *name)
{
    void *a = NULL;
    /* a name starting with '#' is an ordinal (vmc_lib_sym's convention; no
     * export name is looked up that way): a malformed one is the caller's
     * mistake, not an absent export */
    if (name[0] == '#' && !ordinal_ok(name)) {
        vmc__fail(-EINVAL, "%s: \"%s\" is a malformed ordinal: write # and a decimal number from 1 to 65535 "
                  "(\"#12\")", l->name, name);
        return NULL;
    }
    vmc__loader_lock(l->v);  /* a forwarder may take a module reference */
    int found = export_addr(l, l, name, &a);
    vmc__loader_unlock(l->v);
    if (found < 0) return NULL;
    if (!found) {
        vmc__fail(-ENOENT, "%s: exports no symbol %s", l->name, name);
        return NULL;
    }
    return a;
}

static void pe_span(vmc_lib_t *l, void **start, size_t *len)
{
    *start = (void *)l->pe->run;
    *len = l->pe->run_len;
}

static int pe_nearest(vmc_lib_t *l, uintptr_t a, const char **name, uintptr_t *at, size_t *size)
{
    const vmc_pe_lib_t *p = l->pe;
    uint32_t rva;
    if (a < p->run || !vmc__pe_nearest(&p->o, a - p->run, name, &rva)) return 0;
    *at = p->run + rva;
    *size = 0;  /* a DLL's exports have no sizes */
    return 1;
}

static void pe_info(vmc_lib_t *l, vmc_lib_info_t *out)
{
    const vmc_pe_lib_t *p = l->pe;
    out->base = (void *)p->run;
    out->size = p->run_len;
    out->bias = p->run;  /* added to every RVA */
    out->nsegments = p->nsegments;
    for (unsigned i = 0; i < p->nsegments; i++) {
        out->segments[i].start = (void *)p->seg[i].start;
        out->segments[i].size = p->seg[i].size;
        out->segments[i].prot = p->seg[i].prot;   /* VMC_OS_* = PROT_* */
    }
    out->relocs_relative = p->o.nrelocs;
    out->bound_private = p->bound_private;
    out->bound_host = p->bound_host;
}

static const char *pe_dep_name(vmc_lib_t *l, size_t i) { return l->pe->o.imp.dlls[i].name; }

static const char *pe_dep_path(vmc_lib_t *l, const vmc_dep_t *d)
{
    (void)l, (void)d;
    return NULL;
}

const vmc_lib_fmt_t vmc__lib_pe_fmt = {
    .load = pe_load,
    .init = pe_init,
    .fini = pe_fini,
    .teardown = pe_teardown,
    .dep_close = pe_dep_close,
    .free = pe_free,
    .sym = pe_sym,
    .span = pe_span,
    .nearest = pe_nearest,
    .info = pe_info,
    .dep_name = pe_dep_name,
    .dep_path = pe_dep_path,
};
