/* bench_load: private load+unload against the system loader.
 *
 * For each library (system libraries this program does not link, so that
 * every dlopen really loads and every dlclose really unloads), in one run,
 * the methods taking turns every round (A B C A B C):
 *   private   vmc_lib_load + vmc_lib_unload (into the code region)
 *   unkept    the same, with nothing kept from the last load of the file
 *             (src/lib/kept.c switched off): what a library costs the
 *             first time a warm process loads it, or after it changed
 *   dlopen    dlopen(RTLD_NOW | RTLD_LOCAL) + dlclose
 *   dlmopen   dlmopen(LM_ID_NEWLM, RTLD_NOW) + dlclose (a new namespace,
 *             the only system way to get a second private copy)
 * Prints a markdown table of medians (microseconds) and ratios.
 *
 *   make bench BENCH=load       (builds build/bench/bench_load and runs it), or
 *   build/bench/bench_load [--rounds N] [LIB...]     (default 1000 rounds)
 *
 * `--first METHOD PATH` is one load+unload in a fresh process (what the
 * first-load table runs); `--first METHOD PATH --after LIB` loads LIB the
 * same way first, untimed.
 *
 * With --only private (or dlopen), only that method runs, N times per
 * library, and nothing is printed: for counting instructions, e.g.
 *   valgrind --tool=callgrind build/bench/bench_load --only private --rounds 300 libzstd.so.1
 * which the last table does itself when valgrind is installed (callgrind,
 * counting only inside the load and unload calls of each method).
 */
#include "vmcode.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* libvmcode.a's switch (src/lib/loader.h): every load reads its file */
void vmc__kept_refuse(int on);

static long minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *find_lib(const char *name, char *buf, size_t len)
{
    static const char *const dirs[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                       "/usr/lib64", "/lib64", "/usr/lib"};
    if (strchr(name, '/')) return access(name, R_OK) ? NULL : name;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(buf, len, "%s/%s", dirs[i], name);
        if (access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

/* What one page fault costs here, which is what decides the comparison:
 * the file mapped read-only over part of a PROT_NONE reservation and
 * re-reserved (as a loader does), with and without one read in the middle,
 * for 1 page (the fault maps that page only) and for 16 (fault-around maps
 * all of them).  Medians of 21 rounds of 500. */
static void fault_cost(const char *path)
{
    int fd = path ? open(path, O_RDONLY) : -1;
    char *res = mmap(NULL, 1 << 24, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (fd < 0 || res == MAP_FAILED) return;
    char *at = res + (1 << 23);
    double t[4][21];
    for (int r = 0; r < 21; r++) {
        for (int k = 0; k < 4; k++) {
            size_t len = (k / 2 ? 16 : 1) * 4096;
            double t0 = now_us();
            for (int i = 0; i < 500; i++) {
                if (mmap(at, len, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED) return;
                if (k & 1) (void)*(volatile char *)(at + len / 2);
                mmap(at, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
            }
            t[k][r] = (now_us() - t0) / 500;
        }
    }
    double m[4];
    for (int k = 0; k < 4; k++) m[k] = median(t[k], 21);
    printf("\nPage-fault cost on this machine (map part of %s over a reservation, re-reserve; medians, us): "
           "1 page %.2f, with a read fault %.2f (the fault: %.2f); 16 pages %.2f, with a read fault that maps "
           "all 16 %.2f (the fault: %.2f).\n", path, m[0], m[1], m[1] - m[0], m[2], m[3], m[3] - m[2]);
    munmap(res, 1 << 24);
    close(fd);
}

/* One load+unload in this fresh process (after vmc_open, untimed): the
 * microseconds and page faults on stdout.  Run by first_load through
 * /proc/self/exe.  With `after`, that library is loaded and unloaded first
 * (the same way, untimed): what the timed load costs once the process's
 * one-time work is done (docs/loader.md, "Cost"). */
static int first_child(const char *method, const char *path, const char *after)
{
    vmc_t *v;
    if (vmc_open(NULL, &v)) return 1;
    if (after && !strcmp(method, "private")) {
        vmc_lib_t *l;
        if (vmc_lib_load(v, after, 0, &l)) return 1;
        vmc_lib_unload(l);
    } else if (after) {
        void *h = dlopen(after, RTLD_NOW | RTLD_LOCAL);
        if (!h) return 1;
        dlclose(h);
    }
    long f0 = minflt();
    double t0 = now_us();
    if (!strcmp(method, "private")) {
        vmc_lib_t *l;
        if (vmc_lib_load(v, path, 0, &l)) return 1;
        vmc_lib_unload(l);
    } else {
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) return 1;
        dlclose(h);
    }
    double us = now_us() - t0;
    printf("%.1f %ld\n", us, minflt() - f0);
    vmc_close(v);
    return 0;
}

static double first_run(const char *method, const char *path, double *faults)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/proc/%d/exe --first %s '%s'", (int)getpid(), method, path);
    FILE *p = popen(cmd, "r");
    double us = -1;
    long f = 0;
    if (p && fscanf(p, "%lf %ld", &us, &f) != 2) us = -1;
    if (p) pclose(p);
    *faults = (double)f;
    return us;
}

#define FIRST_RUNS 21

/* The first load of a library in a process, which is what a program that
 * loads each plug-in once pays: medians over FIRST_RUNS fresh processes
 * each, the methods taking turns.  One table row. */
static double first_load(const char *path)
{
    double tp[FIRST_RUNS], td[FIRST_RUNS], fp[FIRST_RUNS], fd[FIRST_RUNS];
    for (int r = 0; r < FIRST_RUNS; r++) {
        tp[r] = first_run("private", path, &fp[r]);
        td[r] = first_run("dlopen", path, &fd[r]);
        if (tp[r] < 0 || td[r] < 0) {
            fprintf(stderr, "bench_load: first load of %s failed\n", path);
            return -1;
        }
    }
    double mp = median(tp, FIRST_RUNS), md = median(td, FIRST_RUNS);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    printf("| %s | %.1f | %.1f | **%.2f** | %.0f | %.0f |\n", base, mp, md, md / mp, median(fp, FIRST_RUNS),
           median(fd, FIRST_RUNS));
    fflush(stdout);
    return md / mp;
}

/* The lowest of the goal libraries' ratios, and whose. */
typedef struct lowest { double ratio; const char *lib; } lowest_t;

static void note_ratio(lowest_t *w, const char *lib, double ratio)
{
    if (ratio >= 0 && (!w->lib || ratio < w->ratio)) {
        w->ratio = ratio;
        w->lib = lib;
    }
}

static void print_goal(const char *what, double want, const lowest_t *w)
{
    if (!w->lib) printf("%s: not measured", what);
    else printf("%s at least %.1fx: lowest %.2f (%s) — %s", what, want, w->ratio, w->lib,
                w->ratio >= want ? "met" : "not met");
}

/* Instructions executed inside one method's load and unload calls
 * (callgrind's count, toggled on those functions only) for `args` run by
 * this program under valgrind; -1 if that cannot be had. */
static long callgrind_count(const char *method, const char *args)
{
    char cmd[2048];
    const char *toggles = !strcmp(method, "private")
                              ? "--toggle-collect=vmc_lib_load --toggle-collect=vmc_lib_unload"
                              : "--toggle-collect=dlopen --toggle-collect=dlclose "
                                "--toggle-collect='dlopen@*' --toggle-collect='dlclose@*'";
    snprintf(cmd, sizeof cmd, "valgrind --tool=callgrind --callgrind-out-file=/dev/null %s /proc/%d/exe %s 2>&1",
             toggles, (int)getpid(), args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[512];
    long n = -1;
    while (fgets(line, sizeof line, p)) {
        const char *c = strstr(line, "Collected : ");
        if (c) n = atol(c + 12);
    }
    pclose(p);
    return n;
}

static void print_count(long n)
{
    if (n < 0) printf(" - |");
    else if (n >= 1000000) printf(" %ld,%03ld,%03ld |", n / 1000000, n / 1000 % 1000, n % 1000);
    else printf(" %ld,%03ld |", n / 1000, n % 1000);
}

/* The same libraries' instruction counts: the first load+unload of a fresh
 * process (as above), and one load+unload in the steady state (the
 * difference between 25 and 5 rounds of --only, divided by 20). */
static void instructions(const char *const *libs, size_t n)
{
    if (system("valgrind --version > /dev/null 2>&1")) {
        printf("\n(Instruction counts: valgrind is not installed.)\n");
        return;
    }
    printf("\nInstructions executed inside the load and unload calls (valgrind --tool=callgrind "
           "--toggle-collect=vmc_lib_load --toggle-collect=vmc_lib_unload, and for the system loader "
           "--toggle-collect=dlopen --toggle-collect=dlclose and their versioned names; the first load: "
           "`bench_load --first METHOD PATH`; the steady state: `bench_load --only METHOD --rounds 25 LIB` "
           "less the same with `--rounds 5`, divided by 20):\n\n");
    printf("| library | first load, private | first load, dlopen | steady state, private | steady state, dlopen |\n"
           "|---|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < n; i++) {
        char buf[512], args[1024];
        const char *path = find_lib(libs[i], buf, sizeof buf);
        if (!path) continue;
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        printf("| %s |", base);
        static const char *const methods[] = {"private", "dlopen"};
        for (int m = 0; m < 2; m++) {
            snprintf(args, sizeof args, "--first %s '%s'", methods[m], path);
            print_count(callgrind_count(methods[m], args));
        }
        for (int m = 0; m < 2; m++) {
            snprintf(args, sizeof args, "--only %s --rounds 25 '%s'", methods[m], path);
            long a = callgrind_count(methods[m], args);
            snprintf(args, sizeof args, "--only %s --rounds 5 '%s'", methods[m], path);
            long b = callgrind_count(methods[m], args);
            print_count(a < 0 || b < 0 || a < b ? -1 : (a - b) / 20);
        }
        printf("\n");
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--first")) return first_child(argv[2], argv[3], NULL);
    if (argc == 6 && !strcmp(argv[1], "--first") && !strcmp(argv[4], "--after"))
        return first_child(argv[2], argv[3], argv[5]);
    static const char *const defaults[] = {"libz.so.1", "libzstd.so.1", "libsqlite3.so.0", "libpcre2-8.so.0",
                                           "libbz2.so.1.0", "liblzma.so.5", "libexpat.so.1", "libffi.so.8"};
    /* the first load is measured for these (the goal's libraries) */
    static const char *const first_libs[] = {"libz.so.1", "libzstd.so.1", "libsqlite3.so.0", "libpcre2-8.so.0"};
    int rounds = 1000;
    lowest_t steady_low = {0, NULL}, unkept_low = {0, NULL};
    const char *only = NULL;
    const char *libs[64];
    int nlibs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (nlibs < 64) libs[nlibs++] = argv[i];
    }
    if (rounds < 5) rounds = 5;
    if (!nlibs)
        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) libs[nlibs++] = defaults[i];

    vmc_t *v;
    if (vmc_open(NULL, &v)) {
        fprintf(stderr, "bench_load: vmc_open: %s\n", vmc_last_error());
        return 1;
    }
    double *tp = malloc(sizeof(double) * (size_t)rounds), *td = malloc(sizeof(double) * (size_t)rounds),
           *tm = malloc(sizeof(double) * (size_t)rounds), *tu = malloc(sizeof(double) * (size_t)rounds);
    if (!only) {
        printf("| library | size (KiB) | private load+unload (us) | dlopen+dlclose (us) | dlmopen+dlclose (us) "
               "| dlopen / private | dlmopen / private | page faults, private | page faults, dlopen "
               "| private, nothing kept (us) | dlopen / nothing kept |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    }
    for (int k = 0; k < nlibs; k++) {
        char buf[512];
        const char *path = find_lib(libs[k], buf, sizeof buf);
        if (!path) {
            fprintf(stderr, "bench_load: %s not found, skipped\n", libs[k]);
            continue;
        }
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        if (dlopen(base, RTLD_NOW | RTLD_NOLOAD)) {
            fprintf(stderr, "bench_load: %s is already loaded in this process, skipped\n", base);
            continue;
        }
        struct stat st;
        stat(path, &st);
        /* warm the page cache and the loaders' own caches */
        vmc_lib_t *l;
        if (vmc_lib_load(v, path, 0, &l)) {
            fprintf(stderr, "bench_load: %s: %s\n", path, vmc_last_error());
            continue;
        }
        vmc_lib_unload(l);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "bench_load: dlopen %s: %s\n", path, dlerror());
            continue;
        }
        dlclose(h);
        if (dlopen(base, RTLD_NOW | RTLD_NOLOAD)) {
            fprintf(stderr, "bench_load: %s stays loaded after dlclose (NODELETE), skipped\n", base);
            continue;
        }
        if (only) {
            for (int r = 0; r < rounds; r++) {
                if (!strcmp(only, "private")) {
                    if (vmc_lib_load(v, path, 0, &l)) return 1;
                    vmc_lib_unload(l);
                } else {
                    if (!(h = dlopen(path, RTLD_NOW | RTLD_LOCAL))) return 1;
                    dlclose(h);
                }
            }
            continue;
        }
        /* The methods take turns every round (A B C A B C ...), so drift on
         * this shared machine falls on all of them alike and none runs in a
         * state of its own making (a dlopen between two private loads, as a
         * program loading plug-ins of both kinds would do).  Page faults are
         * counted over all rounds of each method (getrusage). */
        int dlm_ok = 1;
        long fp = 0, fd = 0;
        for (int r = 0; r < rounds; r++) {
            long f0 = minflt();
            double t0 = now_us();
            if (vmc_lib_load(v, path, 0, &l)) {
                fprintf(stderr, "bench_load: %s: %s\n", path, vmc_last_error());
                return 1;
            }
            vmc_lib_unload(l);
            double t1 = now_us();
            long f1 = minflt();
            h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
            if (!h) return 1;
            dlclose(h);
            double t2 = now_us();
            long f2 = minflt();
            tp[r] = t1 - t0;
            td[r] = t2 - t1;
            fp += f1 - f0;
            fd += f2 - f1;
            double t3 = now_us();
            if (dlm_ok) {
                h = dlmopen(LM_ID_NEWLM, path, RTLD_NOW);
                if (!h) {
                    fprintf(stderr, "bench_load: dlmopen %s: %s (column left empty)\n", path, dlerror());
                    dlm_ok = 0;
                } else {
                    dlclose(h);
                }
            }
            tm[r] = now_us() - t3;
            vmc__kept_refuse(1);
            double t4 = now_us();
            if (vmc_lib_load(v, path, 0, &l)) return 1;
            vmc_lib_unload(l);
            tu[r] = now_us() - t4;
            vmc__kept_refuse(0);   /* what the private rounds kept stays for the next */
        }
        double mp = median(tp, rounds), md = median(td, rounds), mm = median(tm, rounds),
               mu = median(tu, rounds);
        char dlm[64] = "-", dlm_ratio[32] = "-";
        if (dlm_ok) {
            snprintf(dlm, sizeof dlm, "%.1f", mm);
            snprintf(dlm_ratio, sizeof dlm_ratio, "%.2f", mm / mp);
        }
        printf("| %s | %ld | %.1f | %.1f | %s | **%.2f** | %s | %.1f | %.1f | %.1f | %.2f |\n", base,
               (long)(st.st_size / 1024), mp, md, dlm, md / mp, dlm_ratio, (double)fp / rounds,
               (double)fd / rounds, mu, md / mu);
        fflush(stdout);
        for (size_t i = 0; i < sizeof first_libs / sizeof first_libs[0]; i++)
            if (!strcmp(base, first_libs[i])) {
                note_ratio(&steady_low, first_libs[i], md / mp);
                note_ratio(&unkept_low, first_libs[i], md / mu);
            }
    }
    free(tp);
    free(td);
    free(tm);
    free(tu);
    vmc_close(v);
    if (only) return 0;
    printf("\nMedians of %d rounds per method, the methods taking turns every round (A B C A B C ...); page "
           "faults per load+unload, averaged; `bench_load --rounds %d`.  A ratio above 1 means the private load "
           "is faster.  \"private\" loads a file loaded before in the handle, whose headers, tables and host "
           "answers the last load kept (src/lib/kept.c); \"nothing kept\" is the same load with that switched "
           "off, as for a library the warm process loads for the first time or one that changed since (a fourth "
           "method in the same rotation).\n", rounds, rounds);
    const char *first = find_lib(libs[0], (char[512]){0}, 512);
    fault_cost(first);
    printf("\nFirst load+unload in a fresh process (after `vmc_open`, which is not timed; medians of %d "
           "processes per method, taking turns).  The first private load also pays for what later ones find "
           "ready: the host's global scope read (its objects' dynamic sections, once), the block map's first "
           "page, the heap and stack grown, the loader's code and the C library's open, mmap, "
           "dlopen... run for the first time; the system loader did the like while starting the process.\n\n", FIRST_RUNS);
    printf("| library | private (us) | dlopen (us) | dlopen / private | page faults, private | page faults, "
           "dlopen |\n|---|---:|---:|---:|---:|---:|\n");
    lowest_t first_low = {0, NULL};
    for (size_t i = 0; i < sizeof first_libs / sizeof first_libs[0]; i++) {
        char buf[512];
        const char *path = find_lib(first_libs[i], buf, sizeof buf);
        if (path) note_ratio(&first_low, first_libs[i], first_load(path));
    }
    instructions(first_libs, sizeof first_libs / sizeof first_libs[0]);
    printf("\nGoal (issue 14), `dlopen`'s time divided by the private load's for libz, libzstd, libsqlite3 "
           "and libpcre2-8: ");
    print_goal("first load in a fresh process", 1.0, &first_low);
    printf("; ");
    print_goal("steady state, the methods taking turns every round", 1.2, &steady_low);
    if (unkept_low.lib)
        printf(" for a library loaded again (with nothing kept: lowest %.2f, %s)", unkept_low.ratio, unkept_low.lib);
    printf(".  docs/loader.md, \"Cost\", says where the rest goes.\n");
    return 0;
}
