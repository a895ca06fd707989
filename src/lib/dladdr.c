/* dladdr, dladdr1, backtrace_symbols and backtrace_symbols_fd as private
 * libraries see them (dladdr.h says why).
 *
 * An address inside a published library (phdr.c's list, every handle's) is
 * answered from that library, as the C library answers for the objects it
 * loaded: dli_fname the path it was loaded by, dli_fbase the start of its
 * run, dli_sname and dli_saddr the exported symbol whose extent holds the
 * address (vmc__elf_covering; none: both NULL).  Everything else goes to
 * the C library's function.  The answers point into the library (its path,
 * its string table): valid while it stays loaded, as dladdr's are.
 *
 * The lines of backtrace_symbols are the C library's: "PATH(SYMBOL+0xOFF)
 * [0xADDR]", or "PATH(+0xOFF) [0xADDR]" with the offset from the load bias
 * when no symbol holds the address (what addr2line -e PATH takes);
 * backtrace_symbols_fd's have no space before the bracket, as the C
 * library's.
 * backtrace_symbols_fd may run in a signal handler, so the lines are
 * formatted here without malloc or stdio, and the publication lock is one
 * the same thread may take again.
 */
#include "lib/dladdr.h"
#include "lib/phdr.h"

#include <execinfo.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Under the publication lock: fill info for l and address a. */
static const Elf64_Sym *describe(const vmc_lib_t *l, const void *a, Dl_info *info)
{
    const Elf64_Sym *s = vmc__elf_covering(&l->o, (uintptr_t)a);
    info->dli_fname = l->name;
    info->dli_fbase = (void *)l->o.run;
    info->dli_sname = s ? l->o.strtab + s->st_name : NULL;
    info->dli_saddr = s ? (void *)(l->o.bias + s->st_value) : NULL;
    return s;
}

int vmc__dladdr(const void *addr, Dl_info *info)
{
    vmc__phdr_enter();
    vmc_lib_t *l = vmc__phdr_find((uintptr_t)addr);
    if (l) describe(l, addr, info);
    vmc__phdr_leave();
    return l ? 1 : dladdr(addr, info);
}

int vmc__dladdr1(const void *addr, Dl_info *info, void **extra, int flags)
{
    if (flags == RTLD_DL_LINKMAP) return dladdr1(addr, info, extra, flags);  /* dladdr.h says why */
    vmc__phdr_enter();
    vmc_lib_t *l = vmc__phdr_find((uintptr_t)addr);
    if (l) {
        const Elf64_Sym *s = describe(l, addr, info);
        if (flags == RTLD_DL_SYMENT) *extra = (void *)s;
    }
    vmc__phdr_leave();
    return l ? 1 : dladdr1(addr, info, extra, flags);
}

/* ---- lines ------------------------------------------------------------------ */

/* A bounded writer: counts everything, stores what fits. */
typedef struct out {
    char *p;
    size_t cap, n;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, o->n++)
        if (o->n < o->cap) o->p[o->n] = s[i];
}

static void put_str(out_t *o, const char *s) { put(o, s, strlen(s)); }

static void put_hex(out_t *o, uintptr_t v)
{
    char b[2 + 2 * sizeof v];
    size_t i = sizeof b;
    do {
        b[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    b[--i] = 'x';
    b[--i] = '0';
    put(o, b + i, sizeof b - i);
}

/* Under the publication lock: addr's line for library l, without the
 * newline; its length (stored up to cap bytes).  `sep` goes before the
 * bracketed address. */
static size_t line(const vmc_lib_t *l, void *addr, const char *sep, char *buf, size_t cap)
{
    Dl_info di;
    describe(l, addr, &di);
    out_t o = {buf, cap, 0};
    uintptr_t a = (uintptr_t)addr, from = di.dli_saddr ? (uintptr_t)di.dli_saddr : l->o.bias;
    put_str(&o, di.dli_fname);
    put_str(&o, "(");
    if (di.dli_sname) put_str(&o, di.dli_sname);
    put_str(&o, a >= from ? "+" : "-");
    put_hex(&o, a >= from ? a - from : from - a);
    put_str(&o, ")");
    put_str(&o, sep);
    put_str(&o, "[");
    put_hex(&o, a);
    put_str(&o, "]");
    return o.n;
}

char **vmc__backtrace_symbols(void *const *buf, int n)
{
    char **host = backtrace_symbols(buf, n);
    if (!host || n <= 0) return host;
    vmc__phdr_enter();
    size_t size = (size_t)n * sizeof(char *);
    int mine = 0;
    for (int i = 0; i < n; i++) {
        vmc_lib_t *l = vmc__phdr_find((uintptr_t)buf[i]);
        if (l) mine++;
        size += (l ? line(l, buf[i], " ", NULL, 0) : strlen(host[i])) + 1;
    }
    char **res = mine ? malloc(size) : NULL;
    if (res) {
        char *p = (char *)(res + n);
        for (int i = 0; i < n; i++) {
            vmc_lib_t *l = vmc__phdr_find((uintptr_t)buf[i]);
            size_t len = l ? line(l, buf[i], " ", p, (size_t)-1) : strlen(host[i]);
            if (!l) memcpy(p, host[i], len);
            p[len] = 0;
            res[i] = p;
            p += len + 1;
        }
    }
    vmc__phdr_leave();
    if (!mine) return host;
    free(host);
    return res;  /* NULL when out of memory, as the C library's */
}

void vmc__backtrace_symbols_fd(void *const *buf, int n, int fd)
{
    for (int i = 0; i < n; i++) {
        char text[4096 + 128];
        size_t len = 0;
        vmc__phdr_enter();
        vmc_lib_t *l = vmc__phdr_find((uintptr_t)buf[i]);
        if (l) {
            len = line(l, buf[i], "", text, sizeof text - 1);
            if (len > sizeof text - 1) len = sizeof text - 1;  /* a path longer than PATH_MAX: cut */
            text[len++] = '\n';
        }
        vmc__phdr_leave();
        if (!l) {
            backtrace_symbols_fd(&buf[i], 1, fd);
            continue;
        }
        for (size_t done = 0; done < len;) {
            ssize_t w = write(fd, text + done, len - done);
            if (w <= 0) return;
            done += (size_t)w;
        }
    }
}
