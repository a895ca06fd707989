/* Host symbol look-up: the hash-table answers are the system loader's.
 *
 * The sweep: for each library of /usr/lib/x86_64-linux-gnu, this program is
 * run again with the library preloaded (LD_PRELOAD puts it and its
 * dependencies in the first part of the global scope, where the hash
 * look-up decides), and every dynamic symbol the library names (each
 * undefined one with the version it asks for, each defined one with its own)
 * is looked up both ways: the same address, or both absent.  make check
 * runs a sample (every 40th library, and a few fixed ones); the whole sweep:
 *
 *     VMC_HOSTSYM_SWEEP=all VMC_TEST_TIMEOUT_SCALE=100 VMC_TEST_BUILD=build build/tests/vmc-tests hostsym_sweep
 *
 * which writes its counts to build/hostsym-sweep.txt (the sample too).
 */
#include "test.h"
#include "lib/hostsym.h"
#include "lib/loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LIBDIR "/usr/lib/x86_64-linux-gnu"

/* ---- the dynamic symbols a library file names ---------------------------- */

typedef struct names {
    int fd;
    const uint8_t *map;
    size_t size;
    const Elf64_Sym *sym;
    size_t nsym;
    const char *str;
    size_t strsz;
    const uint16_t *versym;
    const char *ver[4096];       /* by version index (VERNEED and VERDEF)   */
} names_t;

static const void *at(const names_t *n, uint64_t off, uint64_t len)
{
    return off <= n->size && len <= n->size - off ? n->map + off : NULL;
}

/* 0, or -1 if the file is no 64-bit x86 ELF with the sections we need. */
static int names_open(names_t *n, const char *path)
{
    memset(n, 0, sizeof *n);
    n->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (n->fd < 0 || fstat(n->fd, &st) || st.st_size < (off_t)sizeof(Elf64_Ehdr)) return -1;
    n->size = (size_t)st.st_size;
    n->map = mmap(NULL, n->size, PROT_READ, MAP_PRIVATE, n->fd, 0);
    if (n->map == MAP_FAILED) return -1;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)n->map;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_machine != EM_X86_64 || eh->e_type != ET_DYN || eh->e_shentsize != sizeof(Elf64_Shdr))
        return -1;
    const Elf64_Shdr *sh = at(n, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof *sh);
    if (!sh) return -1;
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        const Elf64_Shdr *s = &sh[i];
        if (s->sh_type == SHT_DYNSYM && s->sh_link < eh->e_shnum) {
            n->sym = at(n, s->sh_offset, s->sh_size);
            n->nsym = s->sh_size / sizeof(Elf64_Sym);
            n->str = at(n, sh[s->sh_link].sh_offset, sh[s->sh_link].sh_size);
            n->strsz = sh[s->sh_link].sh_size;
        } else if (s->sh_type == SHT_GNU_versym) {
            n->versym = at(n, s->sh_offset, s->sh_size);
        }
    }
    if (!n->sym || !n->str) return -1;
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        const Elf64_Shdr *s = &sh[i];
        if (s->sh_type == SHT_GNU_verneed) {
            uint64_t off = s->sh_offset;
            for (unsigned k = 0; k < s->sh_info; k++) {
                const Elf64_Verneed *vn = at(n, off, sizeof *vn);
                if (!vn) return -1;
                uint64_t a = off + vn->vn_aux;
                for (unsigned j = 0; j < vn->vn_cnt; j++) {
                    const Elf64_Vernaux *va = at(n, a, sizeof *va);
                    if (!va) return -1;
                    unsigned ndx = va->vna_other & 0x7fff;
                    if (ndx < 4096 && va->vna_name < n->strsz) n->ver[ndx] = n->str + va->vna_name;
                    a += va->vna_next;
                }
                off += vn->vn_next;
            }
        } else if (s->sh_type == SHT_GNU_verdef) {
            uint64_t off = s->sh_offset;
            for (unsigned k = 0; k < s->sh_info; k++) {
                const Elf64_Verdef *vd = at(n, off, sizeof *vd);
                if (!vd) return -1;
                const Elf64_Verdaux *va = at(n, off + vd->vd_aux, sizeof *va);
                unsigned ndx = vd->vd_ndx & 0x7fff;
                if (va && !(vd->vd_flags & VER_FLG_BASE) && ndx < 4096 && va->vda_name < n->strsz)
                    n->ver[ndx] = n->str + va->vda_name;
                off += vd->vd_next;
            }
        }
    }
    return 0;
}

static void names_close(names_t *n)
{
    if (n->map && n->map != MAP_FAILED) munmap((void *)n->map, n->size);
    if (n->fd >= 0) close(n->fd);
}

/* ---- one library, in a process that preloaded it ------------------------- */

/* Compare every symbol the library names; lines into out. */
static void compare_all(const char *lib, FILE *out)
{
    names_t n;
    if (names_open(&n, lib)) {
        fprintf(out, "unreadable\n");
        names_close(&n);
        return;
    }
    long decided = 0, undecided = 0, found = 0, bad = 0, endsym = 0;
    for (size_t i = 1; i < n.nsym; i++) {
        const Elf64_Sym *s = &n.sym[i];
        unsigned bind = ELF64_ST_BIND(s->st_info), type = ELF64_ST_TYPE(s->st_info);
        if (s->st_name >= n.strsz || !n.str[s->st_name] || bind == STB_LOCAL || type == STT_SECTION ||
            type == STT_FILE)
            continue;
        const char *name = n.str + s->st_name;
        unsigned ndx = n.versym ? n.versym[i] & 0x7fff : 0;
        const char *ver = ndx >= 2 && ndx < 4096 ? n.ver[ndx] : NULL;
        void *mine, *sys = vmc__host_sym_system(RTLD_DEFAULT, name, ver);
        if (!vmc__host_scope_find(name, ver, &mine)) {
            undecided++;
            continue;
        }
        decided++;
        found += mine != NULL;
        Dl_info in;
        if (mine != sys && mine == dlsym(RTLD_DEFAULT, name) && !dladdr(mine, &in)) {
            /* An unversioned definition at its object's very end (_end,
             * which dladdr places in no object): the system loader binds a
             * versioned reference to it, but the reference's dladdr test
             * cannot see that it is unversioned. */
            endsym++;
        } else if (mine != sys) {
            bad++;
            fprintf(out, "MISMATCH %s %s@%s: hash look-up %p, system loader %p\n", lib, name, ver ? ver : "",
                    mine, sys);
        }
    }
    fprintf(out, "done %ld %ld %ld %ld %ld\n", decided, undecided, found, bad, endsym);
    names_close(&n);
}

TEST(hostsym_sweep_child)
{
    const char *lib = getenv("VMC_SWEEP_LIB"), *outp = getenv("VMC_SWEEP_OUT");
    if (!lib || !outp) return;  /* only as the sweep's child */
    FILE *out = fopen(outp, "w");
    ASSERT(out);
    fprintf(out, "started\n");
    fflush(out);
    void *h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
    if (!h) fprintf(out, "not preloaded\n");
    else if (!vmc__host_scope_size()) fprintf(out, "no scope\n");
    else compare_all(lib, out);
    fclose(out);
}

/* ---- the sweep -------------------------------------------------------------- */

typedef struct tally {
    long libs, skipped, decided, undecided, found, bad, endsym;
} tally_t;

/* Run the child for lib; add its counts; mismatch lines to rep. */
static void sweep_one(const char *lib, tally_t *t, FILE *rep)
{
    char outp[512], pre[1024], asan[1024];
    snprintf(outp, sizeof outp, "%s/hostsym-sweep-child.txt", vt_build_dir());
    unlink(outp);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lib);
        const char *a = getenv("ASAN_OPTIONS");
        /* the sanitizer runtime wants to come first; the preload is ahead */
        snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0", a ? a : "", a ? ":" : "");
        char lenv[600], oenv[600], benv[600];
        snprintf(lenv, sizeof lenv, "VMC_SWEEP_LIB=%s", lib);
        snprintf(oenv, sizeof oenv, "VMC_SWEEP_OUT=%s", outp);
        snprintf(benv, sizeof benv, "VMC_TEST_BUILD=%s", vt_build_dir());
        char *envp[] = {pre, asan, lenv, oenv, benv, NULL};
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execle("/proc/self/exe", "vmc-tests", "hostsym_sweep_child", (char *)NULL, envp);
        _exit(127);
    }
    int st = 0;
    for (int ms = 0; ms < 20000; ms += 5) {   /* a library whose constructor hangs */
        if (waitpid(pid, &st, WNOHANG) == pid) break;
        if (ms + 5 >= 20000) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    char *res = vt_read_file(outp);
    t->libs++;
    long d, u, f, b, e;
    const char *done = res ? strstr(res, "done ") : NULL;
    if (!res || !strstr(res, "started")) {
        t->skipped++;  /* the system loader refused to preload it, or its constructor failed */
    } else if (!done) {
        if (strstr(res, "not preloaded") || strstr(res, "unreadable")) t->skipped++;
        else {
            t->bad++;
            fprintf(rep, "FAILED %s: %s (status %d)\n", lib, res, st);
        }
    } else if (sscanf(done, "done %ld %ld %ld %ld %ld", &d, &u, &f, &b, &e) == 5) {
        t->endsym += e;
        t->decided += d;
        t->undecided += u;
        t->found += f;
        t->bad += b;
        if (b) fputs(res, rep);
    }
    free(res);
    unlink(outp);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

TEST_TIMEOUT(hostsym_sweep, 120)
{
    if (access(LIBDIR, R_OK)) SKIP(LIBDIR " is not there");
    int all = getenv("VMC_HOSTSYM_SWEEP") && !strcmp(getenv("VMC_HOSTSYM_SWEEP"), "all");
    /* every regular file named lib*.so*, one name per file */
    DIR *d = opendir(LIBDIR);
    ASSERT(d);
    char **libs = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "lib", 3) || !strstr(e->d_name, ".so")) continue;
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", LIBDIR, e->d_name);
        if (lstat(p, &st) || !S_ISREG(st.st_mode)) continue;
        /* sanitizer runtimes cannot be preloaded into another's process */
        if (strstr(e->d_name, "san.so")) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            libs = realloc(libs, cap * sizeof *libs);
            ASSERT(libs);
        }
        libs[n++] = strdup(p);
    }
    closedir(d);
    qsort(libs, n, sizeof *libs, cmp_str);
    static const char *const always[] = {"libz.so", "libstdc++.so", "libsqlite3.so", "libm.so", "libgcc_s.so"};
    char rp[512];
    snprintf(rp, sizeof rp, "%s/hostsym-sweep.txt", vt_build_dir());
    FILE *rep = fopen(rp, "w");
    ASSERT(rep);
    tally_t t = {0};
    for (size_t i = 0; i < n; i++) {
        int pick = all || i % 40 == 0;
        for (size_t k = 0; !pick && k < sizeof always / sizeof always[0]; k++)
            pick = strstr(libs[i], always[k]) != NULL;
        if (pick) sweep_one(libs[i], &t, rep);
        free(libs[i]);
    }
    free(libs);
    fprintf(rep, "%ld libraries (%ld could not be preloaded): %ld symbols decided by the hash look-up "
            "(%ld found, %ld absent), %ld left to the system loader, %ld mismatches (and %ld unversioned "
            "definitions at an object's end that only the hash look-up sees are unversioned)\n",
            t.libs, t.skipped, t.decided, t.found, t.decided - t.found, t.undecided, t.bad, t.endsym);
    fclose(rep);
    char *text = vt_read_file(rp);
    ASSERT_MSG(t.bad == 0, "%s", text);
    ASSERT_MSG(t.libs - t.skipped >= 5, "too few libraries checked: %s", text);
    /* the hash look-up, not the fallback, answers nearly everything */
    ASSERT_MSG(t.undecided * 50 < t.decided, "%s", text);
    free(text);
}

/* ---- interposition, versions, IFUNC, objects loaded later ----------------- */

/* The program's own malloc_trim (exported: the tests link with -rdynamic)
 * interposes libc's for every library, versioned references included.  It
 * trims nothing, which malloc_trim may always do. */
int malloc_trim(size_t pad)
{
    (void)pad;
    return 4242;
}

static const char *usehost(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/tests/libs/libt_usehost.so", vt_build_dir());
    ASSERT_MSG(access(p, R_OK) == 0, "test library %s is not built", p);
    return p;
}

static void *scope(const char *name, const char *ver)
{
    void *a = (void *)1;
    ASSERT_MSG(vmc__host_scope_find(name, ver, &a), "%s@%s: the hash look-up did not decide", name,
               ver ? ver : "");
    return a;
}

TEST(hostsym_scope_is_read)
{
    /* the program, libc, ld.so at least (and the sanitizer runtime) */
    ASSERT_GE(vmc__host_scope_size(), 3);
}

TEST(hostsym_program_interposes_versioned_reference)
{
    void *mine = scope("malloc_trim", "GLIBC_2.2.5");
    ASSERT(mine == (void *)malloc_trim);
    ASSERT(mine == vmc__host_sym_system(RTLD_DEFAULT, "malloc_trim", "GLIBC_2.2.5"));
    /* dlvsym alone would pass over it, for libc's */
    ASSERT(dlvsym(RTLD_DEFAULT, "malloc_trim", "GLIBC_2.2.5") != (void *)malloc_trim);
    ASSERT(scope("malloc_trim", NULL) == (void *)malloc_trim);
    /* and a private library binds to it */
    vmc_t *v = vt_open(NULL);
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, usehost(), 0, &l));
    int (*trim)(void) = (int (*)(void))vmc_lib_sym(l, "t_trim");
    ASSERT(trim);
    ASSERT_EQ(trim(), 4242);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

/* The system loader's answer for a relocation at that version: dlvsym's,
 * unless an unversioned definition comes first (a sanitizer's interceptor). */
static void *system_answer(const char *name, const char *ver)
{
    void *a = vmc__host_sym_system(RTLD_DEFAULT, name, ver);
    if (!vt_sanitized()) ASSERT(a == (ver ? dlvsym(RTLD_DEFAULT, name, ver) : dlsym(RTLD_DEFAULT, name)));
    return a;
}

TEST(hostsym_versions)
{
    void *old = scope("memcpy", "GLIBC_2.2.5"), *neu = scope("memcpy", "GLIBC_2.14");
    ASSERT(old && neu);
    ASSERT(old == system_answer("memcpy", "GLIBC_2.2.5"));
    ASSERT(neu == system_answer("memcpy", "GLIBC_2.14"));
    ASSERT(scope("memcpy", NULL) == system_answer("memcpy", NULL));   /* the default version */
    void *cw_old = scope("pthread_cond_wait", "GLIBC_2.2.5"), *cw_new = scope("pthread_cond_wait", "GLIBC_2.3.2");
    ASSERT(cw_old && cw_new);
    ASSERT(cw_old == system_answer("pthread_cond_wait", "GLIBC_2.2.5"));
    ASSERT(cw_new == system_answer("pthread_cond_wait", "GLIBC_2.3.2"));
    ASSERT(scope("pthread_cond_wait", NULL) == system_answer("pthread_cond_wait", NULL));
    if (!vt_sanitized()) ASSERT(cw_old != cw_new);   /* libc's two implementations */
    /* a version nobody defines: absent, as in the system loader (unless an
     * unversioned interceptor answers every version) */
    ASSERT(scope("memcpy", "GLIBC_9.9") == system_answer("memcpy", "GLIBC_9.9"));
    if (!vt_sanitized()) ASSERT(scope("memcpy", "GLIBC_9.9") == NULL);
    ASSERT(scope("vt_no_such_symbol", NULL) == NULL);
}

TEST(hostsym_ifunc_resolved)
{
    size_t (*len)(const char *) = (size_t (*)(const char *))scope("strlen", "GLIBC_2.2.5");
    ASSERT(len == dlsym(RTLD_DEFAULT, "strlen"));
    ASSERT_EQ(len("hello"), 5);
    /* libc's strlen is an IFUNC: the answer is what its resolver chose, not
     * the resolver (a sanitizer's interceptor, when there is one, comes
     * first and is a plain function) */
    Dl_info in;
    ASSERT(dladdr((void *)len, &in));
    if (strstr(in.dli_fname, "libc.so")) ASSERT(!in.dli_sname || strcmp(in.dli_sname, "strlen"));
    vmc_t *v = vt_open(NULL);
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, usehost(), 0, &l));
    size_t (*t_len)(const char *) = (size_t (*)(const char *))vmc_lib_sym(l, "t_strlen");
    ASSERT(t_len);
    ASSERT_EQ(t_len("private"), 7);
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

TEST(hostsym_global_library_loaded_after_open)
{
    char ver[512], use[512];
    snprintf(ver, sizeof ver, "%s/tests/libs/libt_ver.so", vt_build_dir());
    snprintf(use, sizeof use, "%s/tests/libs/libt_veruse.so", vt_build_dir());
    vmc_t *v = vt_open(NULL);
    void *a;
    ASSERT(vmc__host_scope_find("t_ver", "VER_1", &a) && a == NULL);
    void *h = dlopen(ver, RTLD_NOW | RTLD_GLOBAL);
    ASSERT_MSG(h, "%s", dlerror());
    /* defined by an object loaded later: the system loader decides */
    ASSERT_EQ(vmc__host_scope_find("t_ver", "VER_1", &a), 0);
    ASSERT(vmc__host_sym_system(RTLD_DEFAULT, "t_ver", "VER_1") == dlvsym(h, "t_ver", "VER_1"));
    /* defined by nobody: still decided, with the later object searched */
    ASSERT(vmc__host_scope_find("vt_no_such_symbol", "VER_1", &a) && a == NULL);
    /* a private user of both versions binds to the system loader's copy */
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, use, 0, &l));
    int (*old)(void) = (int (*)(void))vmc_lib_sym(l, "t_use_old");
    int (*neu)(void) = (int (*)(void))vmc_lib_sym(l, "t_use_new");
    ASSERT(old && neu);
    ASSERT_EQ(old(), 1);
    ASSERT_EQ(neu(), 2);
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.libraries, 1);  /* libt_ver.so is the system loader's */
    ASSERT_OK(vmc_lib_unload(l));
    /* (libt_ver.so now stays loaded: a dlvsym from the program that finds
     * a symbol in a dlopen'ed object makes the system loader keep it) */
    ASSERT_EQ(dlclose(h), 0);
    vmc_close(v);
}

TEST(hostsym_later_object_unloaded)
{
    char basic[512];
    snprintf(basic, sizeof basic, "%s/tests/libs/libt_basic.so", vt_build_dir());
    void *a;
    ASSERT(vmc__host_scope_find("t_get_counter", NULL, &a) && a == NULL);
    void *h = dlopen(basic, RTLD_NOW | RTLD_GLOBAL);
    ASSERT_MSG(h, "%s", dlerror());
    ASSERT_EQ(vmc__host_scope_find("t_get_counter", NULL, &a), 0);
    ASSERT(vmc__host_scope_find("vt_no_such_symbol", NULL, &a) && a == NULL);
    ASSERT_EQ(dlclose(h), 0);
    ASSERT(!dlopen(basic, RTLD_NOW | RTLD_NOLOAD));
    /* gone again: the counters moved, the look-up decides */
    ASSERT(vmc__host_scope_find("t_get_counter", NULL, &a) && a == NULL);
}

/* The objects the process started with, found by DT_SONAME without the
 * system loader: the handle dlopen(RTLD_NOLOAD) returns; NULL for a name
 * no such object has (left to dlopen).  A library depending on the C
 * library gets the host's copy, and loads and unloads again and again. */
TEST(hostsym_startup_objects_by_soname)
{
    void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    ASSERT(h);
    ASSERT(vmc__host_startup_object("libc.so.6") == h);
    ASSERT_EQ(dlclose(h), 0);
    ASSERT(vmc__host_startup_object("libvt-no-such-object.so.1") == NULL);
    char basic[512];
    snprintf(basic, sizeof basic, "%s/tests/libs/libt_basic.so", vt_build_dir());
    void *later = dlopen(basic, RTLD_NOW | RTLD_LOCAL);
    ASSERT_MSG(later, "%s", dlerror());
    ASSERT(vmc__host_startup_object("libt_basic.so") == NULL);   /* not a startup object */
    ASSERT_EQ(dlclose(later), 0);
    vmc_t *v = vt_open(NULL);
    for (int round = 0; round < 3; round++) {
        vmc_lib_t *l;
        ASSERT_OK(vmc_lib_load(v, basic, 0, &l));
        vmc_lib_dep_t d;
        int found = 0;
        for (unsigned i = 0; vmc_lib_dep(l, i, &d) == 0; i++) {
            if (strcmp(d.name, "libc.so.6")) continue;
            found = 1;
            ASSERT_EQ(d.how, VMC_DEP_HOST_COPY);
            ASSERT_EQ(d.where, VMC_DEP_IN_PROCESS);
            ASSERT(d.path && strstr(d.path, "libc.so.6"));
        }
        ASSERT(found);
        ASSERT_OK(vmc_lib_unload(l));
    }
    vmc_close(v);
    ASSERT((h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD)));   /* still there, of course */
    ASSERT_EQ(dlclose(h), 0);
}
