/* Debuggers and profilers: the registry of private libraries that the gdb
 * script reads, real gdb in batch mode on tests/progs/debugee.c, names for
 * generated code (gdb's JIT interface, perf map, jitdump), how library
 * segments are mapped (perf and valgrind name them only when they are file
 * mappings with their final protection), valgrind and perf themselves. */
#include "test.h"
#include "lib/debug_registry.h"
#include "api/jitnames.h"
#include "os/os.h"

#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <limits.h>
#include <unistd.h>

extern vmc_debug_registry_t vmc_debug_registry;

/* The build directory, absolute (the commands below change directory). */
static const char *build(void)
{
    static char dir[PATH_MAX], *p;
    if (!p) ASSERT((p = realpath(vt_build_dir(), dir)));
    ASSERT_MSG(strlen(dir) < 900, "the build directory's path is too long for these tests");
    return dir;
}

/* The output (stdout and stderr) of a shell command; its exit status in *st. */
static char *run(const char *cmd, int *st)
{
    FILE *p = popen(cmd, "r");
    ASSERT(p);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    ASSERT(out);
    for (size_t r; (r = fread(out + n, 1, cap - n - 1, p)) > 0;) {
        n += r;
        if (cap - n < 4096) ASSERT((out = realloc(out, cap *= 2)));
    }
    out[n] = 0;
    int s = pclose(p);
    if (st) *st = WIFEXITED(s) ? WEXITSTATUS(s) : -1;
    return out;
}

/* The line of tests/libs/t_dbg.c holding `marker`. */
static int source_line(const char *marker)
{
    char *src = vt_read_file(vt_src_path("tests/libs/t_dbg.c"));
    ASSERT(src);
    char *at = strstr(src, marker);
    ASSERT(at);
    int line = 1;
    for (char *c = src; c < at; c++) line += *c == '\n';
    free(src);
    return line;
}

/* ---- the registry ---------------------------------------------------------------- */

/* tlib's path made absolute, as the registry holds it. */
static const char *abs_tlib(const char *name)
{
    static char path[4][4096];
    static int k;
    char *p = path[k++ % 4];
    ASSERT(realpath(vt_tlib(name), p));
    return p;
}

static const vmc_debug_lib_t *registered(const char *path)
{
    for (const vmc_debug_lib_t *e = vmc_debug_registry.first; e; e = e->next)
        if (!strcmp(e->path, path)) return e;
    return NULL;
}

TEST(debug_registry_lists_private_libraries)
{
    ASSERT_EQ(vmc_debug_registry.version, VMC_DEBUG_REGISTRY_VERSION);
    ASSERT_EQ(vmc_debug_registry.entry_size, sizeof(vmc_debug_lib_t));
    ASSERT_EQ(sizeof(vmc_debug_lib_t), 64);   /* the layout tools/vmcode-gdb.py reads */
    ASSERT_EQ(sizeof(vmc_debug_registry_t), 32);
    ASSERT_EQ(vmc__debug_count(), 0);
    vmc_t *v = vt_open("-vmheap_size 0");
    uint64_t gen = vmc_debug_registry.generation;
    vmc_lib_t *a, *c;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &a));
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_chain_a.so"), 0, &c));  /* + libt_chain_b.so, privately */
    ASSERT_EQ(vmc__debug_count(), 3);
    ASSERT_EQ(vmc_debug_registry.generation, gen + 3);
    const vmc_debug_lib_t *e = registered(abs_tlib("libt_basic.so"));
    ASSERT(e);
    ASSERT(registered(abs_tlib("libt_chain_b.so")));
    vmc_lib_info_t in;
    ASSERT_OK(vmc_lib_info(a, &in));
    ASSERT_EQ(e->bias, in.bias);
    ASSERT_EQ(e->start, (uintptr_t)in.base);
    ASSERT_EQ(e->size, in.size);
    ASSERT_EQ(e->flags, 0);
    int in_text = 0;
    for (unsigned i = 0; i < in.nsegments; i++)
        if ((in.segments[i].prot & PROT_EXEC) && e->text == (uintptr_t)in.segments[i].start) in_text = 1;
    ASSERT(in_text);
    /* a second load of the same file is the same library: no new entry */
    vmc_lib_t *a2;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &a2));
    ASSERT_EQ(vmc__debug_count(), 3);
    ASSERT_OK(vmc_lib_unload(a2));
    ASSERT_OK(vmc_lib_unload(a));
    ASSERT_EQ(vmc__debug_count(), 2);
    ASSERT(!registered(abs_tlib("libt_basic.so")));
    ASSERT_OK(vmc_lib_unload(c));
    ASSERT_EQ(vmc__debug_count(), 0);
    ASSERT(vmc_debug_registry.first == NULL);
    ASSERT_EQ(vmc_debug_registry.generation, gen + 6);
    /* vmc_close takes out what is still loaded */
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &a));
    vmc_close(v);
    ASSERT_EQ(vmc__debug_count(), 0);
}

TEST(debug_registry_paths_are_absolute_and_memory_loads_flagged)
{
    vmc_t *v = vt_open("-vmheap_size 0");
    char dir[512], cwd[4096];
    snprintf(dir, sizeof dir, "%s/tests/libs", vt_build_dir());
    ASSERT(getcwd(cwd, sizeof cwd));
    ASSERT_EQ(chdir(dir), 0);
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, "./libt_basic.so", 0, &l));
    ASSERT_EQ(chdir(cwd), 0);
    char want[8192];
    ASSERT(realpath(dir, want));
    strcat(want, "/./libt_basic.so");
    ASSERT(vmc_debug_registry.first);
    ASSERT_STR_EQ(vmc_debug_registry.first->path, want);
    ASSERT_OK(vmc_lib_unload(l));

    char *bytes;
    size_t len;
    {
        int fd = open(vt_tlib("libt_basic.so"), O_RDONLY);
        ASSERT(fd >= 0);
        len = (size_t)lseek(fd, 0, SEEK_END);
        ASSERT((bytes = malloc(len)));
        ASSERT_EQ(pread(fd, bytes, len, 0), (ssize_t)len);
        close(fd);
    }
    ASSERT_OK(vmc_lib_load_mem(v, bytes, len, "in-memory", 0, &l));
    free(bytes);
    ASSERT(vmc_debug_registry.first);
    ASSERT_STR_EQ(vmc_debug_registry.first->path, "in-memory");
    ASSERT_EQ(vmc_debug_registry.first->flags, VMC_DEBUG_FROM_MEMORY);
    ASSERT_OK(vmc_lib_unload(l));
    ASSERT_EQ(vmc__debug_count(), 0);
    vmc_close(v);
}

/* Every OS call of a load with a private dependency fails in turn: each
 * failed load leaves nothing in the registry, and the next one works. */
TEST_TIMEOUT(debug_registry_failed_loads_leave_nothing, 120)
{
    static const enum vmc_os_call calls[] = {VMC_OS_MMAP, VMC_OS_MPROTECT, VMC_OS_OPEN, VMC_OS_PREAD,
                                             VMC_OS_FSTAT, VMC_OS_CLOSE};
    vmc_t *v = vt_open("-vmheap_size 0");
    int failed = 0;
    for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
        for (unsigned long nth = 1;; nth++) {
            vmc_lib_t *l = NULL;
            uint64_t gen = vmc_debug_registry.generation;
            vmc__os_fault(calls[c], nth, EIO, 0);
            int r = vmc_lib_load(v, vt_tlib("libt_chain_a.so"), 0, &l);
            unsigned long hit = vmc__os_faults_hit();
            vmc__os_fault_clear();
            if (r) {
                failed++;
                ASSERT_EQ(vmc__debug_count(), 0);
                ASSERT(vmc_debug_registry.first == NULL);
                /* a dependency entered and taken out again: an even number of changes */
                ASSERT_EQ((vmc_debug_registry.generation - gen) % 2, 0);
            } else {
                ASSERT_EQ(vmc__debug_count(), 2);
                ASSERT_OK(vmc_lib_unload(l));
                ASSERT_EQ(vmc__debug_count(), 0);
            }
            if (!hit) break;
        }
    }
    ASSERT_GT(failed, 10);
    vmc_close(v);
}

static vmc_t *shared_handle;
static char *thread_paths[4];   /* made before the threads start: tlib is not thread-safe */

static void *load_loop(void *arg)
{
    uintptr_t k = (uintptr_t)arg;
    vmc_t *own = vt_open("-vm_size 64M -vmheap_size 0");
    for (int i = 0; i < 40; i++) {
        vmc_t *v = i % 2 ? own : shared_handle;
        vmc_lib_t *l;
        ASSERT_OK(vmc_lib_load(v, thread_paths[(k + (uintptr_t)i) % 4], 0, &l));
        ASSERT_GE(vmc__debug_count(), 1);
        ASSERT_OK(vmc_lib_unload(l));
    }
    vmc_close(own);
    return NULL;
}

TEST_THREADED(debug_registry_loads_from_threads)
{
    static const char *const names[] = {"libt_basic.so", "libt_weak.so", "libt_dbg2.so", "libt_sysv.so"};
    for (int i = 0; i < 4; i++) ASSERT((thread_paths[i] = strdup(vt_tlib(names[i]))));
    shared_handle = vt_open("-vm_size 256M -vmheap_size 0");
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++) ASSERT_EQ(pthread_create(&t[i], NULL, load_loop, (void *)i), 0);
    for (int i = 0; i < 4; i++) ASSERT_EQ(pthread_join(t[i], NULL), 0);
    ASSERT_EQ(vmc__debug_count(), 0);
    ASSERT(vmc_debug_registry.first == NULL);
    vmc_close(shared_handle);
}

/* ---- how segments are mapped -------------------------------------------------------- */

/* Every mmap and mprotect a load makes, in order. */
typedef struct mcall {
    int mmap;                    /* else mprotect                           */
    uintptr_t lo, hi;
    int prot, fd;
} mcall_t;
static mcall_t mcalls[256];
static int nmcalls;

static void *rec_mmap(void *a, size_t len, int prot, int flags, int fd, off_t off)
{
    if (nmcalls < 256) mcalls[nmcalls++] = (mcall_t){1, (uintptr_t)a, (uintptr_t)a + len, prot, fd};
    return mmap(a, len, prot, flags, fd, off);
}

static int rec_mprotect(void *a, size_t len, int prot)
{
    if (nmcalls < 256) mcalls[nmcalls++] = (mcall_t){0, (uintptr_t)a, (uintptr_t)a + len, prot, -1};
    return mprotect(a, len, prot);
}

/* The line of /proc/self/maps that holds addr (in a buffer the next call reuses). */
static const char *maps_line(uintptr_t addr)
{
    static char line[1024];
    FILE *f = fopen("/proc/self/maps", "r");
    ASSERT(f);
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && addr >= lo && addr < hi) {
            fclose(f);
            return line;
        }
    }
    fclose(f);
    return "";
}

/* Load path (and what it brings in); each executable segment of each
 * library loaded must be a mapping of its file, r-xp, made by an mmap with
 * that protection, and no call of the load ever made it writable. */
static void check_segments_mapped_final(const char *options, const char *path, const char *dep)
{
    vmc_t *v = vt_open(options);
    nmcalls = 0;
    vmc__os_set_call(VMC_OS_MMAP, (void (*)(void))rec_mmap);
    vmc__os_set_call(VMC_OS_MPROTECT, (void (*)(void))rec_mprotect);
    vmc_lib_t *l;
    int r = vmc_lib_load(v, path, 0, &l);
    vmc__os_set_call(VMC_OS_MMAP, NULL);
    vmc__os_set_call(VMC_OS_MPROTECT, NULL);
    ASSERT_OK(r);
    vmc_lib_t *libs[2] = {l, NULL};
    const char *paths[2] = {path, dep};
    if (dep) {
        vmc_lib_dep_t d;
        ASSERT_OK(vmc_lib_dep(l, 0, &d));
        ASSERT_EQ(d.how, VMC_DEP_LOADED_PRIVATELY);
        libs[1] = d.lib;
    }
    for (int k = 0; k < 2 && libs[k]; k++) {
        vmc_lib_info_t in;
        ASSERT_OK(vmc_lib_info(libs[k], &in));
        int texts = 0;
        for (unsigned i = 0; i < in.nsegments; i++) {
            uintptr_t lo = (uintptr_t)in.segments[i].start & ~(uintptr_t)4095;
            uintptr_t hi = ((uintptr_t)in.segments[i].start + in.segments[i].size + 4095) & ~(uintptr_t)4095;
            if (!(in.segments[i].prot & PROT_EXEC)) continue;
            texts++;
            char want[600];
            snprintf(want, sizeof want, "r-xp");
            const char *ml = maps_line(lo);
            ASSERT_STR_CONTAINS(ml, want);
            ASSERT_STR_CONTAINS(ml, paths[k]);
            int first = -1;
            for (int c = 0; c < nmcalls; c++) {
                if (mcalls[c].hi <= lo || mcalls[c].lo >= hi) continue;
                ASSERT_MSG(!(mcalls[c].prot & PROT_WRITE), "%s: call %d made the text writable", paths[k], c);
                if (first < 0 && mcalls[c].prot != PROT_NONE) first = c;
            }
            ASSERT_GE(first, 0);
            ASSERT_MSG(mcalls[first].mmap && mcalls[first].fd >= 0 &&
                           mcalls[first].prot == (PROT_READ | PROT_EXEC),
                       "%s: the text was first made accessible by %s with prot %d", paths[k],
                       mcalls[first].mmap ? "mmap" : "mprotect", mcalls[first].prot);
        }
        ASSERT_GE(texts, 1);
    }
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

TEST(debug_library_text_is_a_file_mapping_with_its_final_protection)
{
    check_segments_mapped_final("-vmheap_size 0", vt_tlib("libt_basic.so"), NULL);
    check_segments_mapped_final("-vmheap_size 0 -w_xor_x", vt_tlib("libt_basic.so"), NULL);
    check_segments_mapped_final("-vmheap_size 0", vt_tlib("libt_chain_a.so"), vt_tlib("libt_chain_b.so"));
    check_segments_mapped_final("-vmheap_size 0 -w_xor_x", vt_tlib("libt_dbg.so"), NULL);
    check_segments_mapped_final("-vmheap_size 0", "/usr/lib/x86_64-linux-gnu/libz.so.1", NULL);
}

/* ---- vmc_name ---------------------------------------------------------------------------- */

struct jit_code_entry {
    struct jit_code_entry *next_entry, *prev_entry;
    const char *symfile_addr;
    uint64_t symfile_size;
};
struct jit_descriptor {
    uint32_t version, action_flag;
    struct jit_code_entry *relevant_entry, *first_entry;
};
extern struct jit_descriptor __jit_debug_descriptor;

static int jit_objects(void)
{
    int n = 0;
    for (struct jit_code_entry *e = __jit_debug_descriptor.first_entry; e; e = e->next_entry) n++;
    return n;
}

/* The address of `name` in the registered objects (its section's address
 * plus its value, as gdb reads it), 0 if absent; *size its size. */
static uintptr_t jit_lookup(const char *name, uint64_t *size)
{
    for (struct jit_code_entry *e = __jit_debug_descriptor.first_entry; e; e = e->next_entry) {
        const char *img = e->symfile_addr;
        const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
        ASSERT(!memcmp(eh->e_ident, ELFMAG, SELFMAG));
        ASSERT_EQ(eh->e_type, ET_REL);
        ASSERT_EQ(eh->e_machine, EM_X86_64);
        const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
        for (int i = 0; i < eh->e_shnum; i++) {
            if (sh[i].sh_type != SHT_SYMTAB) continue;
            const Elf64_Sym *sym = (const Elf64_Sym *)(img + sh[i].sh_offset);
            const char *str = img + sh[sh[i].sh_link].sh_offset;
            for (size_t k = 1; k < sh[i].sh_size / sizeof *sym; k++) {
                if (strcmp(str + sym[k].st_name, name)) continue;
                const Elf64_Shdr *s = &sh[sym[k].st_shndx];
                ASSERT_EQ(s->sh_type, SHT_NOBITS);
                ASSERT(s->sh_flags & SHF_ALLOC);
                ASSERT_EQ(ELF64_ST_TYPE(sym[k].st_info), STT_FUNC);
                *size = sym[k].st_size;
                return s->sh_addr + sym[k].st_value;
            }
        }
    }
    return 0;
}

TEST(name_refuses_bad_arguments)
{
    vmc_t *v = vt_open("-vmheap_size 64M");
    vmc_span_t s, d;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &s));
    ASSERT_OK(vmc_alloc(v, 64, VMC_DATA, &d));
    ASSERT_EQ(vmc_name(NULL, s.x, 4, "f"), -EINVAL);
    ASSERT_EQ(vmc_name(v, NULL, 4, "f"), -EINVAL);
    ASSERT_EQ(vmc_name(v, s.x, 0, "f"), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "size 0");
    ASSERT_EQ(vmc_name(v, d.x, 4, "f"), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "is not inside the code region");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(vmc_name(v, (char *)in.code_base + in.code_size - 4, 8, "f"), -EINVAL);
    ASSERT_EQ(vmc_name(v, s.x, 4, ""), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "the name is 0 bytes (1 to 1023)");
    char longname[VMC_NAME_MAX + 1];
    memset(longname, 'a', sizeof longname - 1);
    longname[VMC_NAME_MAX] = 0;
    ASSERT_EQ(vmc_name(v, s.x, 4, longname), -EINVAL);
    longname[VMC_NAME_MAX - 1] = 0;
    ASSERT_OK(vmc_name(v, s.x, 4, longname));
    ASSERT_EQ(vmc_name_flush(NULL), -EINVAL);
    vmc_close(v);
}

TEST(name_registers_batched_objects_with_gdb)
{
    ASSERT_EQ(jit_objects(), 0);
    vmc_t *v = vt_open("-vmheap_size 0 -w_xor_x");
    vmc_span_t a, b;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &a));
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &b));
    ASSERT_OK(vmc_name(v, a.x, 16, "frag_a"));
    ASSERT_OK(vmc_name(v, b.w, 32, "frag_b"));  /* the writable view names the same code */
    ASSERT_EQ(jit_objects(), 0);                /* nothing until the flush */
    ASSERT_OK(vmc_name_flush(v));
    ASSERT_EQ(jit_objects(), 1);
    uint64_t size = 0;
    ASSERT_EQ(jit_lookup("frag_a", &size), (uintptr_t)a.x);
    ASSERT_EQ(size, 16);
    ASSERT_EQ(jit_lookup("frag_b", &size), (uintptr_t)b.x);
    ASSERT_EQ(size, 32);
    /* forgetting: re-registered without it at the next flush */
    ASSERT_OK(vmc_name(v, a.x, 64, NULL));
    ASSERT_NE(jit_lookup("frag_a", &size), 0);
    ASSERT_OK(vmc_name_flush(v));
    ASSERT_EQ(jit_lookup("frag_a", &size), 0);
    ASSERT_EQ(jit_lookup("frag_b", &size), (uintptr_t)b.x);
    /* a full batch goes to gdb by itself; the next one starts */
    for (int i = 0; i < VMC_NAME_BATCH; i++) {
        char n[32];
        snprintf(n, sizeof n, "many_%d", i);
        ASSERT_OK(vmc_name(v, (char *)a.x + i % 64, 1, n));
    }
    ASSERT_EQ(jit_objects(), 1);  /* the full one, handed over when the next name came */
    ASSERT_NE(jit_lookup("many_1022", &size), 0);
    ASSERT_EQ(jit_lookup("many_1023", &size), 0);
    ASSERT_OK(vmc_name_flush(v));
    ASSERT_EQ(jit_objects(), 2);
    ASSERT_EQ(jit_lookup("many_1023", &size), (uintptr_t)a.x + 1023 % 64);
    vmc_close(v);
    ASSERT_EQ(jit_objects(), 0);
    ASSERT(__jit_debug_descriptor.first_entry == NULL);
}

static char *read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    off_t n = lseek(fd, 0, SEEK_END);
    char *b = malloc((size_t)n + 1);
    ASSERT(b);
    ASSERT_EQ(pread(fd, b, (size_t)n, 0), n);
    b[n] = 0;
    close(fd);
    if (len) *len = (size_t)n;
    return b;
}

TEST(name_perf_map_lines_and_fork)
{
    vmc_t *v = vt_open("-vmheap_size 0 -perf_map");
    char path[64], line[128];
    snprintf(path, sizeof path, "/tmp/perf-%ld.map", (long)getpid());
    unlink(path);
    vmc_span_t a;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &a));
    ASSERT_OK(vmc_name(v, a.x, 0x30, "perf_frag"));
    char *m = read_all(path, NULL);
    ASSERT(m);
    snprintf(line, sizeof line, "%lx 30 perf_frag\n", (unsigned long)(uintptr_t)a.x);
    ASSERT_STR_EQ(m, line);
    free(m);
    pid_t pid = fork();
    if (pid == 0) {
        /* the child's own file holds what it inherited and what it adds */
        int r = vmc_name(v, (char *)a.x + 0x30, 0x10, "child_frag");
        char cpath[64];
        snprintf(cpath, sizeof cpath, "/tmp/perf-%ld.map", (long)getpid());
        char *cm = read_all(cpath, NULL);
        unlink(cpath);
        _exit(r || !cm || !strstr(cm, line) || !strstr(cm, " 10 child_frag\n") ? 1 : 0);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    m = read_all(path, NULL);
    ASSERT(!strstr(m, "child_frag"));
    free(m);
    vmc_close(v);
    unlink(path);
}

TEST(name_jitdump_records)
{
    vmc_t *v = vt_open("-vmheap_size 0 -jitdump -w_xor_x");
    char path[64];
    snprintf(path, sizeof path, "/tmp/jit-%ld.dump", (long)getpid());
    vmc_span_t a;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &a));
    static const unsigned char code[] = {0x31, 0xc0, 0xc3};  /* xor eax, eax; ret */
    memcpy(a.w, code, sizeof code);
    ASSERT_OK(vmc_name(v, a.x, sizeof code, "dump_frag"));
    size_t len;
    char *d = read_all(path, &len);
    ASSERT(d);
    uint32_t h[6];
    memcpy(h, d, sizeof h);
    ASSERT_EQ(h[0], 0x4A695444);      /* magic */
    ASSERT_EQ(h[1], 1);               /* version */
    ASSERT_EQ(h[2], 40);              /* header size */
    ASSERT_EQ(h[3], EM_X86_64);
    ASSERT_EQ(h[5], (uint32_t)getpid());
    /* one JIT_CODE_LOAD: 56 bytes of fields, the name, the code */
    ASSERT_EQ(len, 40 + 56 + sizeof "dump_frag" + sizeof code);
    uint32_t id, total;
    uint64_t vma, size;
    memcpy(&id, d + 40, 4);
    memcpy(&total, d + 44, 4);
    memcpy(&vma, d + 40 + 24, 8);
    memcpy(&size, d + 40 + 40, 8);
    ASSERT_EQ(id, 0);
    ASSERT_EQ(total, 56 + sizeof "dump_frag" + sizeof code);
    ASSERT_EQ(vma, (uintptr_t)a.x);
    ASSERT_EQ(size, sizeof code);
    ASSERT_STR_EQ(d + 40 + 56, "dump_frag");
    ASSERT(!memcmp(d + 40 + 56 + sizeof "dump_frag", code, sizeof code));
    free(d);
    /* code freed since (a large allocation's range is PROT_NONE again):
     * the record carries zeros instead of reading it */
    vmc_span_t big;
    ASSERT_OK(vmc_alloc(v, 300000, VMC_CODE, &big));
    ASSERT_OK(vmc_free(v, big.x));
    ASSERT_OK(vmc_name(v, big.x, 16, "gone"));
    size_t len2;
    d = read_all(path, &len2);
    ASSERT_EQ(len2, len + 56 + sizeof "gone" + 16);
    static const unsigned char zeros[16];
    ASSERT(!memcmp(d + len + 56 + sizeof "gone", zeros, 16));
    free(d);
    /* perf finds the file by an executable mapping of it */
    ASSERT_EQ(vt_maps_count(path), 1);
    vmc_close(v);
    ASSERT_EQ(vt_maps_count(path), 0);
    unlink(path);
}

/* The files -perf_map and -jitdump write cannot be opened, written or
 * mapped: exactly that error, named, and no descriptor or mapping left
 * once the handle is closed. */
TEST(name_profiler_files_fail_exactly)
{
    static const struct {
        enum vmc_os_call call;
        const char *opt, *want;
    } cases[] = {
        {VMC_OS_OPEN, "-perf_map", "vmc_name: -perf_map: cannot open /tmp/perf-"},
        {VMC_OS_PWRITE, "-perf_map", "vmc_name: writing /tmp/perf-"},
        {VMC_OS_OPEN, "-jitdump", "vmc_name: -jitdump: cannot open /tmp/jit-"},
        {VMC_OS_PWRITE, "-jitdump", "vmc_name: -jitdump: writing /tmp/jit-"},
        {VMC_OS_MMAP, "-jitdump", "(perf finds the file by this mapping)"},
    };
    char perf[64], jit[64];
    snprintf(perf, sizeof perf, "/tmp/perf-%ld.map", (long)getpid());
    snprintf(jit, sizeof jit, "/tmp/jit-%ld.dump", (long)getpid());
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char opts[128];
        snprintf(opts, sizeof opts, "-vmheap_size 0 %s", cases[i].opt);
        vt_snapshot_t snap;
        vt_snap(&snap);
        vmc_t *v = vt_open(opts);
        vmc_span_t a;
        ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &a));
        vmc__os_fault(cases[i].call, 1, EACCES, 0);
        int r = vmc_name(v, a.x, 8, "f");
        vmc__os_fault_clear();
        ASSERT_EQ(r, -EACCES);
        ASSERT_STR_CONTAINS(vmc_last_error(), cases[i].want);
        ASSERT_OK(vmc_name(v, a.x, 8, "f"));  /* works once the call does */
        vmc_close(v);
        unlink(perf);
        unlink(jit);
        ASSERT_NO_LEAK(snap);
        vt_snap_free(&snap);
    }
}

/* ---- real gdb, valgrind, perf -------------------------------------------------------------- */

/* gdb, if installed and allowed to trace here (else the test skips). */
static void need_gdb(void)
{
    if (system("command -v gdb >/dev/null 2>&1")) SKIP("gdb is not installed (make check installs it as root)");
    int st;
    char *out = run("gdb -nx -batch -ex run --args /bin/true 2>&1", &st);
    int ok = strstr(out, "exited normally") != NULL;
    if (!ok) {
        fprintf(stderr, "gdb cannot run a program here:\n%s\n", out);
        free(out);
        SKIP("gdb cannot trace a process here (ptrace refused: container or yama ptrace_scope)");
    }
    free(out);
}

/* gdb in batch mode on debugee with these arguments and commands. */
static char *gdb_run(const char *commands, const char *prog, const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd %s && timeout 120 gdb -nx -batch -iex 'add-auto-load-safe-path %s' "
             "-ex 'set breakpoint pending on' %s --args %s/tests/%s %s %s/tests/libs 2>&1",
             build(), build(), commands, build(), prog, args, build());
    char *out = run(cmd, NULL);
    fprintf(stderr, "%s\n---- gdb said:\n%s\n", cmd, out);  /* shown when the test fails */
    return out;
}

static void gdb_basic(const char *prog, const char *args)
{
    need_gdb();
    char *out = gdb_run("-ex 'break t_dbg_leaf' -ex run -ex bt -ex up -ex 'info vmcode-libraries' "
                        "-ex finish -ex 'break dbg_after_unload' -ex continue -ex 'info address t_dbg_leaf' "
                        "-ex 'info vmcode-libraries' -ex 'break dbg_jit_target' -ex continue -ex bt",
                        prog, args);
    char want[256];
    /* the pending breakpoint resolved when the library was loaded, and hit */
    snprintf(want, sizeof want, "Breakpoint 1, t_dbg_leaf (x=3) at tests/libs/t_dbg.c:%d",
             source_line("T_DBG_LEAF_LINE"));
    ASSERT_STR_CONTAINS(out, want);
    ASSERT_STR_CONTAINS(out, "in t_dbg_entry (x=2) at tests/libs/t_dbg.c:");   /* bt, up */
    ASSERT_STR_CONTAINS(out, " in main (");
    ASSERT_STR_CONTAINS(out, "Value returned is $1 = 11");  /* finish, out of t_dbg_entry after up */
    snprintf(want, sizeof want, "Yes  %s", abs_tlib("libt_dbg.so"));              /* info */
    ASSERT_STR_CONTAINS(out, want);
    snprintf(want, sizeof want, "Yes  %s", abs_tlib("libt_dbg2.so"));
    ASSERT_STR_CONTAINS(out, want);
    /* after unload */
    ASSERT_STR_CONTAINS(out, "No symbol \"t_dbg_leaf\" in current context.");
    ASSERT_STR_CONTAINS(out, "No libraries loaded privately by vmcode.");
    /* the named fragment */
    ASSERT_STR_CONTAINS(out, " in vmc_test_fragment ()");
    ASSERT(!strstr(out, "vmcode: "));  /* the script reported no problem */
    free(out);
}

TEST_TIMEOUT(gdb_private_library_static_program, 180) { gdb_basic("debugee", "basic"); }
TEST_TIMEOUT(gdb_private_library_shared_library_wx, 180) { gdb_basic("debugee_so", "-w basic"); }

TEST_TIMEOUT(gdb_private_library_after_fork, 180)
{
    need_gdb();
    char *out = gdb_run("-ex 'set follow-fork-mode child' -ex 'break t_dbg2_fn' -ex 'break t_dbg_leaf' "
                        "-ex run -ex bt -ex continue -ex bt",
                        "debugee", "-w fork");
    ASSERT_STR_CONTAINS(out, "hit Breakpoint 1, t_dbg2_fn (x=10) at tests/libs/t_dbg2.c:");  /* loaded in the child */
    ASSERT_STR_CONTAINS(out, "hit Breakpoint 2, t_dbg_leaf (x=3) at tests/libs/t_dbg.c:");   /* before the fork */
    ASSERT_STR_CONTAINS(out, "in t_dbg_entry (x=2) at tests/libs/t_dbg.c:");
    free(out);
}

TEST_TIMEOUT(gdb_attach_to_running_process, 180)
{
    need_gdb();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s/tests/debugee", build());
    char libs[600];
    snprintf(libs, sizeof libs, "%s/tests/libs", build());
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(cmd, cmd, "-w", "wait", libs, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char ready[64] = {0};
    ASSERT_GT(read(fds[0], ready, sizeof ready - 1), 0);
    ASSERT_STR_CONTAINS(ready, "ready");
    snprintf(cmd, sizeof cmd,
             "timeout 120 gdb -nx -batch -iex 'add-auto-load-safe-path %s' -p %ld "
             "-ex 'info vmcode-libraries' -ex 'break t_dbg_leaf' -ex continue -ex bt -ex detach 2>&1",
             build(), (long)pid);
    char *out = run(cmd, NULL);
    fprintf(stderr, "---- gdb said:\n%s\n", out);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    char want[4200];
    snprintf(want, sizeof want, "Yes  %s", abs_tlib("libt_dbg.so"));
    ASSERT_STR_CONTAINS(out, want);
    ASSERT_STR_CONTAINS(out, "Breakpoint 1, t_dbg_leaf (x=");
    ASSERT_STR_CONTAINS(out, "in t_dbg_entry (x=");
    free(out);
}

/* memcheck: no error from vmcode itself, and the one real error in the
 * private library named with its function and line. */
static void valgrind_case(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && timeout 200 valgrind -q %s/tests/debugee %s %s/tests/libs 2>&1",
             build(), build(), args, build());
    int st;
    char *out = run(cmd, &st);
    fprintf(stderr, "%s\n---- valgrind said:\n%s\n", cmd, out);
    ASSERT_EQ(st, 0);
    if (strstr(args, "uninit")) {
        char want[128];
        snprintf(want, sizeof want, "t_dbg_uninit (t_dbg.c:%d)", source_line("T_DBG_UNINIT_LINE"));
        ASSERT_STR_CONTAINS(out, "Conditional jump or move depends on uninitialised value(s)");
        ASSERT_STR_CONTAINS(out, want);
        /* that is the only error */
        char *first = strstr(out, "Conditional jump");
        ASSERT(!strstr(first + 1, "Conditional jump"));
        ASSERT(!strstr(out, "Invalid "));
    } else {
        ASSERT(!strstr(out, "==")); /* -q: nothing at all unless an error */
    }
    free(out);
}

TEST_TIMEOUT(valgrind_private_library_clean_and_named, 600)
{
    if (system("command -v valgrind >/dev/null 2>&1")) SKIP("valgrind is not installed");
    if (vt_sanitized()) SKIP("valgrind cannot run a sanitized program");
    valgrind_case("basic");
    valgrind_case("-w basic");
    valgrind_case("uninit");
    valgrind_case("-w uninit");
}

/* perf record on the hot loop: the private library's function by its
 * file, the fragment by /tmp/perf-PID.map without W^X, and by jitdump (perf
 * inject --jit) with it. */
static void perf_case(const char *args, int inject)
{
    char dir[] = "/tmp/vmc-perf-XXXXXX";
    ASSERT(mkdtemp(dir));
    char cmd[8192];
    /* perf inject works in the directory of perf.data */
    snprintf(cmd, sizeof cmd, "cd %s && perf record -q -e cpu-clock %s -o perf.data %s/tests/debugee %s hot %s/tests/libs 2>&1",
             dir, inject ? "-k 1" : "", build(), args, build());
    char *rec = run(cmd, NULL);
    fprintf(stderr, "%s\n---- perf record said:\n%s\n", cmd, rec);
    long pid = 0;
    const char *at = strstr(rec, "pid ");
    ASSERT(at && sscanf(at, "pid %ld", &pid) == 1);
    free(rec);
    snprintf(cmd, sizeof cmd, "cd %s && %s perf report -i %s --stdio --sort dso,sym 2>&1", dir,
             inject ? "perf inject --jit -i perf.data -o perf.jit.data &&" : "", inject ? "perf.jit.data" : "perf.data");
    char *out = run(cmd, NULL);
    fprintf(stderr, "%s\n---- perf said:\n%s\n", cmd, out);
    snprintf(cmd, sizeof cmd, "rm -rf %s /tmp/perf-%ld.map /tmp/jit-%ld.dump /tmp/jitted-%ld-*.so", dir, pid, pid, pid);
    ASSERT_EQ(system(cmd), 0);
    ASSERT_STR_CONTAINS(out, "libt_dbg.so");
    ASSERT_STR_CONTAINS(out, "[.] t_dbg_spin");
    ASSERT_STR_CONTAINS(out, "[.] vmc_hot_fragment");
    free(out);
}

TEST_TIMEOUT(perf_names_private_library_and_fragment, 300)
{
    if (system("command -v perf >/dev/null 2>&1")) SKIP("perf is not installed (make check installs linux-perf as root)");
    /* A software clock: a virtual machine without a PMU (perf stat -e
     * instructions says "not supported" here) still samples with it. */
    int st;
    char *out = run("perf record -q -e cpu-clock -o /tmp/vmc-perf-probe.data true 2>&1; "
                    "rm -f /tmp/vmc-perf-probe.data", &st);
    int ok = st == 0 && !strstr(out, "rror");
    if (!ok) fprintf(stderr, "perf record -e cpu-clock true:\n%s\n", out);
    free(out);
    if (!ok) SKIP("perf cannot record here (perf_event_paranoid, or no perf events in this container)");
    if (vt_sanitized()) SKIP("not under a sanitizer: the samples would be in its runtime");
    perf_case("-perf_map", 0);
    perf_case("-w -jitdump", 1);
    perf_case("-jitdump", 1);
}
