/* Names for generated code: vmc_name, vmc_name_flush.
 *
 * gdb learns about generated code through its JIT interface: the process
 * keeps a list of in-memory object files (__jit_debug_descriptor) and calls
 * __jit_debug_register_code() after each change, where gdb has a breakpoint
 * and reads the object that changed.  gdb takes every allocated section's
 * address in such an object as final, so the object vmcode builds is
 * minimal: an ELF relocatable file whose sections are SHT_NOBITS (no bytes,
 * only an address and a size), one per named piece of code, and a symbol
 * table with one function symbol per section.  The code itself is never
 * copied.  One section per name rather than one spanning all of them: a
 * section from the lowest named address to the highest would cover
 * whatever lies between (a private library), and gdb would then look for
 * that code's symbols in the JIT object.
 *
 * Every registration costs gdb time that grows with the number of objects
 * it holds (1,000 registrations 0.9 s, 2,000 3.0 s with gdb 13 here), so
 * names are batched: each handle fills one object with up to
 * VMC_NAME_BATCH names; vmc_name_flush re-registers the objects that
 * changed (the one filling, and any a name was forgotten from), and a full
 * object is flushed and a new one started.  A debugger sees a name from the
 * flush on.
 *
 * With the -perf_map option each name is also appended at once to
 * /tmp/perf-PID.map ("START SIZE name", hex), which perf reads for samples
 * in anonymous executable memory (docs/loader.md, "Debugging and
 * profiling", says where that holds).  A forked child writes its own file,
 * starting with every name it inherited.
 *
 * One lock for all handles: naming is rare next to running, and the JIT
 * descriptor is one per process anyway.
 */
#include "api/jitnames.h"
#include "base/attrs.h"
#include "api/vmc.h"
#include "arch/reloc.h"
#include "base/error.h"
#include "os/os.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <inttypes.h>

/* ---- gdb's JIT interface (the layout and names are gdb's) ------------------- */

enum { JIT_NOACTION = 0, JIT_REGISTER_FN, JIT_UNREGISTER_FN };

struct jit_code_entry {
    struct jit_code_entry *next_entry, *prev_entry;
    const char *symfile_addr;
    uint64_t symfile_size;
};

struct jit_descriptor {
    uint32_t version;
    uint32_t action_flag;
    struct jit_code_entry *relevant_entry, *first_entry;
};

/* Weak: a process with another JIT that defines them (LLVM's MCJIT, say)
 * links to one descriptor, as the interface means; gdb finds it by name. */
VMC_NOCLONE __attribute__((weak, noinline, used)) void __jit_debug_register_code(void);
VMC_NOCLONE __attribute__((weak, noinline, used)) void __jit_debug_register_code(void)
{
    __asm__ volatile("" ::: "memory");
}
__attribute__((weak)) struct jit_descriptor __jit_debug_descriptor = {1, JIT_NOACTION, NULL, NULL};

static void jit_register(struct jit_code_entry *e)
{
    e->prev_entry = NULL;
    e->next_entry = __jit_debug_descriptor.first_entry;
    if (e->next_entry) e->next_entry->prev_entry = e;
    __jit_debug_descriptor.first_entry = e;
    __jit_debug_descriptor.relevant_entry = e;
    __jit_debug_descriptor.action_flag = JIT_REGISTER_FN;
    __jit_debug_register_code();
    __jit_debug_descriptor.action_flag = JIT_NOACTION;
}

static void jit_unregister(struct jit_code_entry *e)
{
    if (e->prev_entry) e->prev_entry->next_entry = e->next_entry;
    else __jit_debug_descriptor.first_entry = e->next_entry;
    if (e->next_entry) e->next_entry->prev_entry = e->prev_entry;
    __jit_debug_descriptor.relevant_entry = e;
    __jit_debug_descriptor.action_flag = JIT_UNREGISTER_FN;
    __jit_debug_register_code();
    __jit_debug_descriptor.action_flag = JIT_NOACTION;
    e->next_entry = e->prev_entry = NULL;
}

/* ---- the handle's names ---------------------------------------------------------- */

typedef struct jn_sym {
    uintptr_t addr;              /* executable address                      */
    size_t size;
    char *name;
} jn_sym_t;

typedef struct jn_obj {
    struct jit_code_entry entry; /* symfile_addr: the registered image, or NULL */
    jn_sym_t syms[VMC_NAME_BATCH];
    size_t n;
    int dirty;                   /* differs from what gdb was given         */
    struct jn_obj *next;         /* the handle's objects, newest first      */
} jn_obj_t;

struct vmc_names {
    jn_obj_t *objs;
    int perf_fd;                 /* /tmp/perf-PID.map, or -1                */
    pid_t perf_pid;              /* the process that opened it              */
    vmc_jitdump_t jd;            /* -jitdump                                */
};

static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t names_once = PTHREAD_ONCE_INIT;
static void names_lock_take(void) { pthread_mutex_lock(&names_lock); }
static void names_lock_give(void) { pthread_mutex_unlock(&names_lock); }
/* A fork while another thread names code must not leave the lock held in
 * the child. */
static void names_atfork(void) { (void)vmc__os_atfork(names_lock_take, names_lock_give, names_lock_give); }

/* The ELF object gdb reads for `o`: header, symbol table, string tables,
 * then the section headers (one SHT_NOBITS section per name). */
static int build_image(jn_obj_t *o, char **out, size_t *size)
{
    static const char shstr[] = "\0.text\0.symtab\0.strtab\0.shstrtab";
    enum { SH_TEXT = 1, SH_SYMTAB = 7, SH_STRTAB = 15, SH_SHSTRTAB = 23 };
    size_t strsz = 1;
    for (size_t i = 0; i < o->n; i++) strsz += strlen(o->syms[i].name) + 1;
    size_t nsec = o->n + 4;  /* null, the names', .symtab, .strtab, .shstrtab */
    size_t symoff = sizeof(Elf64_Ehdr), symsz = (o->n + 1) * sizeof(Elf64_Sym);
    size_t stroff = symoff + symsz, shstroff = stroff + strsz;
    size_t shoff = (shstroff + sizeof shstr + 7) & ~(size_t)7;
    size_t total = shoff + nsec * sizeof(Elf64_Shdr);
    char *img = calloc(1, total);
    if (!img) return vmc__fail(-ENOMEM, "vmc_name_flush: out of memory for a %zu-byte debug object", total);

    Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_REL;
    eh->e_machine = (Elf64_Half)vmc__arch_elf_machine();
    eh->e_version = EV_CURRENT;
    eh->e_shoff = shoff;
    eh->e_ehsize = sizeof(Elf64_Ehdr);
    eh->e_shentsize = sizeof(Elf64_Shdr);
    eh->e_shnum = (uint16_t)nsec;
    eh->e_shstrndx = (uint16_t)(nsec - 1);

    Elf64_Sym *sym = (Elf64_Sym *)(img + symoff);
    char *str = img + stroff;
    Elf64_Shdr *sh = (Elf64_Shdr *)(img + shoff);
    size_t at = 1;
    for (size_t i = 0; i < o->n; i++) {
        const jn_sym_t *s = &o->syms[i];
        size_t len = strlen(s->name) + 1;
        memcpy(str + at, s->name, len);
        sym[i + 1].st_name = (uint32_t)at;
        sym[i + 1].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC);
        sym[i + 1].st_shndx = (uint16_t)(i + 1);
        sym[i + 1].st_value = 0;  /* relative to its section, which is at the code */
        sym[i + 1].st_size = s->size;
        at += len;
        sh[i + 1].sh_name = SH_TEXT;
        sh[i + 1].sh_type = SHT_NOBITS;
        sh[i + 1].sh_flags = SHF_ALLOC | SHF_EXECINSTR;
        sh[i + 1].sh_addr = s->addr;
        sh[i + 1].sh_size = s->size;
        sh[i + 1].sh_addralign = 1;
    }
    Elf64_Shdr *st = &sh[o->n + 1], *ss = &sh[o->n + 2], *sss = &sh[o->n + 3];
    st->sh_name = SH_SYMTAB;
    st->sh_type = SHT_SYMTAB;
    st->sh_offset = symoff;
    st->sh_size = symsz;
    st->sh_link = (uint32_t)(o->n + 2);
    st->sh_info = 1;  /* the first global symbol */
    st->sh_addralign = 8;
    st->sh_entsize = sizeof(Elf64_Sym);
    ss->sh_name = SH_STRTAB;
    ss->sh_type = SHT_STRTAB;
    ss->sh_offset = stroff;
    ss->sh_size = strsz;
    ss->sh_addralign = 1;
    memcpy(img + shstroff, shstr, sizeof shstr);
    sss->sh_name = SH_SHSTRTAB;
    sss->sh_type = SHT_STRTAB;
    sss->sh_offset = shstroff;
    sss->sh_size = sizeof shstr;
    sss->sh_addralign = 1;
    *out = img;
    *size = total;
    return 0;
}

static void obj_unpublish(jn_obj_t *o)
{
    if (!o->entry.symfile_addr) return;
    jit_unregister(&o->entry);
    free((void *)o->entry.symfile_addr);
    o->entry.symfile_addr = NULL;
    o->entry.symfile_size = 0;
}

static void obj_free(jn_obj_t *o)
{
    obj_unpublish(o);
    for (size_t i = 0; i < o->n; i++) free(o->syms[i].name);
    free(o);
}

/* Give gdb the current state of every changed object.  On failure an
 * object keeps its previous registration and stays marked changed. */
static int flush_locked(struct vmc_names *ns)
{
    for (jn_obj_t **p = &ns->objs; *p;) {
        jn_obj_t *o = *p;
        if (o->dirty && o->n == 0 && o != ns->objs) {  /* emptied, not the one filling */
            *p = o->next;
            obj_free(o);
            continue;
        }
        if (o->dirty) {
            char *img = NULL;
            size_t size = 0;
            if (o->n) {
                int e = build_image(o, &img, &size);
                if (e) return e;
            }
            obj_unpublish(o);
            if (img) {
                o->entry.symfile_addr = img;
                o->entry.symfile_size = size;
                jit_register(&o->entry);
            }
            o->dirty = 0;
        }
        p = &o->next;
    }
    return 0;
}

/* ---- /tmp/perf-PID.map ------------------------------------------------------------ */

static int perf_line(struct vmc_names *ns, const jn_sym_t *s)
{
    char line[64 + VMC_NAME_MAX];
    int n = snprintf(line, sizeof line, "%" PRIxPTR " %zx %s\n", (uintptr_t)s->addr, s->size, s->name);
    /* O_APPEND: every write lands at the end whatever the offset says, so
     * two handles (or a perf map writer of the host's own) never overwrite
     * each other's lines. */
    int e = vmc__os_pwrite(ns->perf_fd, line, (size_t)n, 0);
    return e ? vmc__fail(e, "vmc_name: writing /tmp/perf-%ld.map: %s", (long)ns->perf_pid, strerror(-e)) : 0;
}

/* The map file of this process, opened on first use and again in a forked
 * child (perf reads the file of the process it sampled), which then gets
 * every name it inherited. */
static int perf_open(struct vmc_names *ns, int *fresh)
{
    pid_t pid = (pid_t)vmc__os_pid();
    *fresh = 0;
    if (ns->perf_fd >= 0 && ns->perf_pid == pid) return 0;
    if (ns->perf_fd >= 0) vmc__os_close(ns->perf_fd);  /* the parent's */
    ns->perf_fd = -1;
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%ld.map", (long)pid);
    int fd, e = vmc__os_open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644, &fd);
    if (e) return vmc__fail(e, "vmc_name: -perf_map: cannot open %s: %s", path, strerror(-e));
    ns->perf_fd = fd;
    ns->perf_pid = pid;
    *fresh = 1;
    for (jn_obj_t *o = ns->objs; o; o = o->next)
        for (size_t i = 0; i < o->n; i++)
            if ((e = perf_line(ns, &o->syms[i]))) return e;
    return 0;
}

/* ---- jit-PID.dump (jitdump.c) ------------------------------------------------------ */

/* May the record copy [a, a + size)?  Only if both ends are in allocated
 * code or data: a name may cover anything in the region, and code freed
 * since it was named may be a PROT_NONE reservation again (a forked child
 * writes every name it inherited).  perf names the rest all the same; the
 * record then carries zeros. */
static int readable(vmc_t *v, uintptr_t a, size_t size)
{
    return vmc__codeheap_kind_at(&v->sp, a) && vmc__codeheap_kind_at(&v->sp, a + size - 1);
}

static int jitdump_open(vmc_t *v, struct vmc_names *ns, int *fresh)
{
    int e = vmc__jitdump_open(&ns->jd, fresh);
    if (e || !*fresh) return e;
    for (jn_obj_t *o = ns->objs; o; o = o->next)
        for (size_t i = 0; i < o->n; i++)
            if ((e = vmc__jitdump_record(&ns->jd, o->syms[i].addr, o->syms[i].size, o->syms[i].name,
                                         readable(v, o->syms[i].addr, o->syms[i].size))))
                return e;
    return 0;
}

/* ---- the calls ---------------------------------------------------------------------- */

static struct vmc_names *names_of(vmc_t *v)
{
    if (!v->names) {
        v->names = calloc(1, sizeof *v->names);
        if (v->names) {
            v->names->perf_fd = -1;
            vmc__jitdump_init(&v->names->jd);
        }
    }
    return v->names;
}

/* Forget the names that start inside [lo, hi). */
static void forget_locked(struct vmc_names *ns, uintptr_t lo, uintptr_t hi)
{
    for (jn_obj_t *o = ns->objs; o; o = o->next)
        for (size_t i = 0; i < o->n;) {
            if (o->syms[i].addr >= lo && o->syms[i].addr < hi) {
                free(o->syms[i].name);
                o->syms[i] = o->syms[--o->n];
                o->dirty = 1;
            } else {
                i++;
            }
        }
}

int vmc_name(vmc_t *v, const void *addr, size_t size, const char *name)
{
    if (!v || !addr) return vmc__fail(-EINVAL, "vmc_name: NULL argument");
    if (size == 0) return vmc__fail(-EINVAL, "vmc_name: size 0 (a name covers at least one byte)");
    const vmc_region_t *r = &v->sp.code;
    uintptr_t a = (uintptr_t)addr;
    if (r->wx && a >= r->wbase && a - r->wbase < r->size) a = a - r->wbase + r->base;  /* the writable view */
    if (a < r->base || a - r->base > r->size || size > r->size - (a - r->base))
        return vmc__fail(-EINVAL, "vmc_name: %p+%#zx is not inside the code region %#" PRIxPTR "+%#zx", addr, size,
                         (uintptr_t)r->base, r->size);
    size_t len = name ? strlen(name) : 0;
    if (name && (len == 0 || len >= VMC_NAME_MAX))
        return vmc__fail(-EINVAL, "vmc_name: the name is %zu bytes (1 to %d)", len, VMC_NAME_MAX - 1);
    pthread_once(&names_once, names_atfork);
    pthread_mutex_lock(&names_lock);
    int e = 0;
    struct vmc_names *ns = names_of(v);
    if (!ns) {
        e = vmc__fail(-ENOMEM, "vmc_name: out of memory");
        goto out;
    }
    if (!name) {
        forget_locked(ns, a, a + size);
        goto out;
    }
    if (!ns->objs || ns->objs->n == VMC_NAME_BATCH) {
        if (ns->objs && (e = flush_locked(ns))) goto out;  /* the full one goes to gdb now */
        jn_obj_t *o = calloc(1, sizeof *o);
        if (!o) {
            e = vmc__fail(-ENOMEM, "vmc_name: out of memory");
            goto out;
        }
        o->next = ns->objs;
        ns->objs = o;
    }
    jn_sym_t *s = &ns->objs->syms[ns->objs->n];
    if (!(s->name = strdup(name))) {
        e = vmc__fail(-ENOMEM, "vmc_name: out of memory");
        goto out;
    }
    s->addr = a;
    s->size = size;
    ns->objs->n++;
    ns->objs->dirty = 1;
    /* The files: a fresh one (the first name, or the first in a forked
     * child) gets every name, this one included; else this line. */
    int fresh;
    if (v->opt.perf_map && !(e = perf_open(ns, &fresh)) && !fresh) e = perf_line(ns, s);
    if (!e && v->opt.jitdump && !(e = jitdump_open(v, ns, &fresh)) && !fresh)
        e = vmc__jitdump_record(&ns->jd, a, size, name, readable(v, a, size));
out:
    pthread_mutex_unlock(&names_lock);
    if (!e) vmc__clear_error();
    return e;
}

int vmc_name_flush(vmc_t *v)
{
    if (!v) return vmc__fail(-EINVAL, "vmc_name_flush: NULL handle");
    pthread_mutex_lock(&names_lock);
    int e = v->names ? flush_locked(v->names) : 0;
    pthread_mutex_unlock(&names_lock);
    return e;
}

void vmc__names_close(vmc_t *v)
{
    if (!v->names) return;
    pthread_mutex_lock(&names_lock);
    while (v->names->objs) {
        jn_obj_t *o = v->names->objs;
        v->names->objs = o->next;
        obj_free(o);
    }
    if (v->names->perf_fd >= 0) vmc__os_close(v->names->perf_fd);
    vmc__jitdump_close(&v->names->jd);
    free(v->names);
    v->names = NULL;
    pthread_mutex_unlock(&names_lock);
}
