/* vmcode: the command-line tool, on the public API only.
 *
 *   vmcode info [--json] [OPTIONS...]           what a region opened with OPTIONS got
 *   vmcode maps [--json] [OPTIONS...]           the annotated map of a fresh region
 *   vmcode load [--json] [--maps] [OPTIONS...] LIB... [--sym NAME]...
 *                                               load libraries privately, show where
 *   vmcode --version
 *
 * Every command takes the same arguments: OPTIONS are vmcode option words
 * (-vm_size 1G, -no_near_app; a size's or address's value is the next word),
 * anywhere on the line (before the command too), or as one text with --options TEXT; --flags are the
 * tool's own.  The command line is applied after VMCODE_OPTIONS.
 *
 * Exit status: 0 success, 1 the operation failed, 2 wrong usage.
 */
#include "vmcode.h"

#ifndef VMC_VERSION_TEXT
#define VMC_VERSION_TEXT "(version unknown)"  /* the Makefile passes VERSION */
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct cmd {
    const char *name;
    const char *args;
    const char *help;
    int (*run)(int argc, char **argv);
} cmd_t;

static const cmd_t *find_cmd(const char *name);

static void usage_cmd(FILE *f, const cmd_t *c)
{
    fprintf(f, "usage: vmcode %s %s\n\n%s\n", c->name, c->args, c->help);
}

static int usage_error(const cmd_t *c, const char *fmt, const char *arg)
{
    fprintf(stderr, "vmcode %s: ", c->name);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    fprintf(stderr, "usage: vmcode %s %s  (vmcode %s --help)\n", c->name, c->args, c->name);
    return 2;
}

static const char *placement_name(int p)
{
    switch (p) {
    case VMC_PLACED_NEAR_APP: return "near_app";
    case VMC_PLACED_VM_BASE: return "vm_base";
    case VMC_PLACED_ANYWHERE: return "anywhere";
    default: return "none";
    }
}

/* Parsed command line: --json, --help, option text, and (load) libraries and
 * symbols. */
typedef struct args {
    int json, help, maps;
    char text[4096];
    const char *libs[64];
    int nlibs;
    const char *syms[64];
    int nsyms;
} args_t;

static int add_text(const cmd_t *c, args_t *a, const char *s)
{
    size_t n = strlen(a->text);
    int w = snprintf(a->text + n, sizeof a->text - n, "%s%s", n ? " " : "", s);
    if (w < 0 || (size_t)w >= sizeof a->text - n) return usage_error(c, "option text too long at '%s'", s);
    return 0;
}

/* Does option word w ("-vm_size") take a value?  Asked of the library's
 * own parser, so the tool needs no table of options: a boolean parses
 * alone, a size or address says it needs a value. */
static int takes_value(const char *w)
{
    vmc_options_t o;
    vmc_options_init(&o);
    return vmc_options_parse(&o, w) != 0 && strstr(vmc_last_error(), "needs a value") != NULL;
}

/* After a boolean option word of `load`, is w meant as its value ("1",
 * "off") rather than a library?  Only if no file of that name exists. */
static int looks_like_value(const char *w)
{
    static const char *const words[] = {"0", "1", "true", "false", "on", "off", "yes", "no"};
    int known = 0;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) known |= !strcmp(w, words[i]);
    return known && access(w, F_OK) != 0;
}

/* The same for every command: --flags, option words (with the value that
 * follows a size or an address), --options TEXT, and, for load, libraries
 * and --sym NAME.  Any other word of info or maps goes into the option
 * text, whose parser says what is wrong with it ("-w_xor_x 1").  Returns
 * 0, or 2 after printing a usage error. */
static int parse_args(const cmd_t *c, int argc, char **argv, int takes_libs, args_t *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        int r = 0;
        if (!strcmp(s, "--json")) a->json = 1;
        else if (!strcmp(s, "--help") || !strcmp(s, "-h")) a->help = 1;
        else if (takes_libs && !strcmp(s, "--maps")) a->maps = 1;
        else if (!strcmp(s, "--options") || (takes_libs && !strcmp(s, "--sym"))) {
            if (i + 1 >= argc) return usage_error(c, "%s needs a value", s);
            if (s[2] == 'o') r = add_text(c, a, argv[++i]);
            else if (a->nsyms == 64) return usage_error(c, "too many %s", s);
            else a->syms[a->nsyms++] = argv[++i];
        } else if (s[0] == '-' && s[1] == '-') {
            return usage_error(c, "unknown flag '%s'", s);
        } else if (s[0] == '-') {
            r = add_text(c, a, s);
            if (!r && i + 1 < argc && !strchr(s, ' ') &&
                (takes_value(s) || (takes_libs && looks_like_value(argv[i + 1]))))
                r = add_text(c, a, argv[++i]);  /* a boolean's value: the parser refuses it */
        } else if (takes_libs) {
            if (a->nlibs == 64) return usage_error(c, "too many libraries at '%s'", s);
            a->libs[a->nlibs++] = s;
        } else {
            r = add_text(c, a, s);  /* the option parser says what is wrong with it */
        }
        if (r) return r;
    }
    return 0;
}

/* Options from VMCODE_OPTIONS, then the command line; opens the handle.
 * vmc_open applies VMCODE_OPTIONS on top of a program's options; here the
 * command line is to come last, so the variable is taken out of the
 * environment once read.  Returns 0, 1 (open failed) or 2 (bad options). */
static char env_text[4096];

/* Takes VMCODE_OPTIONS out of this process's environment: unsetenv is POSIX;
 * the Windows C runtime removes a variable set to nothing (_putenv "NAME="). */
static void env_unset_options(void)
{
#ifdef _WIN32
    _putenv("VMCODE_OPTIONS=");
#else
    unsetenv("VMCODE_OPTIONS");
#endif
}

static void json_str(const char *s);

/* A failure after the arguments were read: the message on stderr, as text;
 * with --json also one object on stdout, so that a program reading it always
 * gets JSON: {"error":{"command":..,"code":-errno,"reason":..,"message":..}}.
 * Returns the exit status. */
static int fail_cmd(const char *cmd, int json, int status, int code, const char *prefix)
{
    const char *msg = vmc_last_error();
    fprintf(stderr, "vmcode %s: %s%s", cmd, prefix, msg);
    if (code) fprintf(stderr, " (%s)", vmc_strerror(code));
    fputc('\n', stderr);
    if (json) {
        printf("{\"error\":{\"command\":\"%s\",\"code\":%d,\"reason\":", cmd, code);
        json_str(code ? vmc_strerror(code) : "invalid options");
        printf(",\"message\":");
        char full[2048];
        snprintf(full, sizeof full, "%s%s", prefix, msg);
        json_str(full);
        printf("}}\n");
        fflush(stdout);
    }
    return status;
}

static int open_with(const cmd_t *c, const args_t *a, vmc_t **v)
{
    vmc_options_t o;
    vmc_options_init(&o);
    const char *env = getenv("VMCODE_OPTIONS");
    snprintf(env_text, sizeof env_text, "%s", env ? env : "");
    int r = vmc_options_parse(&o, env);
    if (r) return fail_cmd(c->name, a->json, 2, r, "VMCODE_OPTIONS: ");
    if ((r = vmc_options_parse(&o, a->text))) return fail_cmd(c->name, a->json, 2, r, "");
    env_unset_options();
    r = vmc_open(&o, v);
    if (r) return fail_cmd(c->name, a->json, 1, r, "");
    return 0;
}

/* The common start of a command: arguments, --help, then the handle.
 * Returns -1 to go on (with *v open), else the exit status. */
static int start_cmd(const char *name, int argc, char **argv, int takes_libs, args_t *a, vmc_t **v)
{
    const cmd_t *c = find_cmd(name);
    int r = parse_args(c, argc, argv, takes_libs, a);
    if (r) return r;
    if (a->help) {
        usage_cmd(stdout, c);
        return 0;
    }
    if (takes_libs && !a->nlibs) return usage_error(c, "no library given%s", "");
    r = open_with(c, a, v);
    return r ? r : -1;
}

/* ---- info -------------------------------------------------------------------------- */

/* A size exactly, in the largest unit that divides it: the text shows the
 * same figures as --json, which gives bytes. */
static const char *fmt_size(size_t n, char *buf, size_t len)
{
    if (n && n % ((size_t)1 << 20) == 0) snprintf(buf, len, "%zu MiB", n >> 20);
    else if (n && n % 1024 == 0) snprintf(buf, len, "%zu KiB", n >> 10);
    else snprintf(buf, len, "%zu bytes", n);
    return buf;
}

/* s as a JSON string (quotes, backslashes and control characters escaped). */
static void json_str(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

static void print_info(vmc_t *v, int json)
{
    vmc_info_t in;
    vmc_info(v, &in);
    double pct = in.code_size ? 100.0 * (double)in.code_reaching / (double)in.code_size : 0;
    uintptr_t cb = (uintptr_t)in.code_base, hb = (uintptr_t)in.heap_base;
    char s1[32], s2[32];
    if (json) {
        printf("{\"code_base\":\"%#" PRIxPTR "\",\"code_size\":%zu,\"code_wbase\":\"%#" PRIxPTR "\","
               "\"heap_base\":\"%#" PRIxPTR "\",\"heap_size\":%zu,\"w_xor_x\":%s,"
               "\"placement\":\"%s\",\"reach_lo\":\"%#" PRIxPTR "\",\"reach_hi\":\"%#" PRIxPTR "\","
               "\"code_reaching\":%zu,\"reaching_percent\":%.2f,"
               "\"requested_code_size\":%zu,\"requested_heap_size\":%zu,"
               "\"near_app_failed\":%s,\"brk_hole\":\"%#" PRIxPTR "\",\"brk_hole_size\":%zu,"
               "\"vmcode_options\":",
               cb, in.code_size, (uintptr_t)in.code_wbase, hb, in.heap_size,
               in.w_xor_x ? "true" : "false", placement_name(in.placement),
               (uintptr_t)in.reach_lo, (uintptr_t)in.reach_hi, in.code_reaching, pct,
               in.requested_code_size, in.requested_heap_size,
               in.near_app_failed ? "true" : "false", (uintptr_t)in.brk_hole,
               in.brk_hole_size);
        json_str(env_text);
        printf("}\n");
        return;
    }
    printf("code region   %#014" PRIxPTR "-%#014" PRIxPTR "  %8s  (asked %s)\n", cb, cb + in.code_size,
           fmt_size(in.code_size, s1, sizeof s1), fmt_size(in.requested_code_size, s2, sizeof s2));
    if (in.w_xor_x)
        printf("writable view %#014" PRIxPTR "-%#014" PRIxPTR "  (W^X: the same memory file, mapped read+write)\n",
               (uintptr_t)in.code_wbase,
               (uintptr_t)in.code_wbase + in.code_size);
    if (in.heap_size)
        printf("heap region   %#014" PRIxPTR "-%#014" PRIxPTR "  %8s  (asked %s)\n", hb, hb + in.heap_size,
               fmt_size(in.heap_size, s1, sizeof s1), fmt_size(in.requested_heap_size, s2, sizeof s2));
    else
        printf("heap region   none\n");
    printf("W^X           %s\n", in.w_xor_x ? "on" : "off");
    printf("placement     %s\n", placement_name(in.placement));
    if (in.near_app_failed)
        printf("near_app      FAILED: from no free place would any of the region reach the target;\n"
               "              calls to it need a stub (vmc_stub)\n");
    printf("reach target  %#" PRIxPTR "-%#" PRIxPTR "\n", (uintptr_t)in.reach_lo, (uintptr_t)in.reach_hi);
    printf("reaching      %s of %s (%.2f %%) reach all of it by rel32\n",
           fmt_size(in.code_reaching, s1, sizeof s1), fmt_size(in.code_size, s2, sizeof s2), pct);
    if (in.brk_hole_size)
        printf("brk hole      %#014" PRIxPTR "-%#014" PRIxPTR "  %8s  (the program's brk heap and its room: not the "
               "region's)\n", (uintptr_t)in.brk_hole,
               (uintptr_t)in.brk_hole + in.brk_hole_size,
               fmt_size(in.brk_hole_size, s1, sizeof s1));
    if (env_text[0])
        printf("VMCODE_OPTIONS %s  (applied before the command line's options; vmc_open applies it on "
               "top of a program's own)\n", env_text);
}

static int cmd_info(int argc, char **argv)
{
    args_t a;
    vmc_t *v;
    int r = start_cmd("info", argc, argv, 0, &a, &v);
    if (r >= 0) return r;
    print_info(v, a.json);
    vmc_close(v);
    return 0;
}

/* ---- maps -------------------------------------------------------------------------- */

static int json_run(const vmc_run_info_t *ri, void *arg)
{
    int *first = arg;
    static const char *kinds[] = {"none", "code", "rdata", "data"};
    printf("%s{\"region\":\"%s\",\"start\":\"%#" PRIxPTR "\",\"end\":\"%#" PRIxPTR "\",\"size\":%zu,"
           "\"owner\":\"%s\",\"kind\":\"%s\",\"committed\":%zu",
           *first ? "" : ",", ri->region ? "heap" : "code", (uintptr_t)ri->start,
           (uintptr_t)ri->start + ri->size, ri->size, ri->owner_name,
           kinds[ri->kind & 3], ri->committed);
    if (ri->name) printf(",\"name\":\"%s\"", ri->name);
    putchar('}');
    *first = 0;
    return 0;
}

static int cmd_maps(int argc, char **argv)
{
    args_t a;
    vmc_t *v;
    int r = start_cmd("maps", argc, argv, 0, &a, &v);
    if (r >= 0) return r;
    if (a.json) {
        int first = 1;
        printf("{\"info\":");
        fflush(stdout);
        print_info(v, 1);
        printf(",\"runs\":[");
        vmc_walk(v, json_run, &first);
        printf("]}\n");
    } else {
        print_info(v, 0);
        putchar('\n');
        vmc_dump(v, stdout);
    }
    vmc_close(v);
    return 0;
}

/* ---- load -------------------------------------------------------------------------- */

static const char *dep_how(int how)
{
    switch (how) {
    case VMC_DEP_LOADED_PRIVATELY: return "loaded privately into the region";
    case VMC_DEP_HOST_COPY: return "the host's copy";
    case VMC_DEP_SYSTEM_LOADER: return "system loader, outside the region";
    default: return "?";
    }
}

static const char *dep_where(int where)
{
    switch (where) {
    case VMC_DEP_IN_PROCESS: return "in_process";
    case VMC_DEP_SYSTEM_LIBRARY: return "system_library";
    case VMC_DEP_BY_PATH: return "by_path";
    case VMC_DEP_RPATH: return "rpath";
    case VMC_DEP_LD_LIBRARY_PATH: return "ld_library_path";
    case VMC_DEP_RUNPATH: return "runpath";
    case VMC_DEP_BESIDE: return "beside";
    case VMC_DEP_SYSTEM_SEARCH: return "system_search";
    case VMC_DEP_LDSO_CACHE: return "ldso_cache";
    case VMC_DEP_DEFAULT_DIR: return "default_dir";
    default: return "?";
    }
}

static const char *dep_how_json(int how)
{
    switch (how) {
    case VMC_DEP_LOADED_PRIVATELY: return "private";
    case VMC_DEP_HOST_COPY: return "host";
    case VMC_DEP_SYSTEM_LOADER: return "system";
    default: return "?";
    }
}

static void prot_str(int prot, char out[4])
{
    out[0] = prot & 1 ? 'r' : '-';
    out[1] = prot & 2 ? 'w' : '-';
    out[2] = prot & 4 ? 'x' : '-';
    out[3] = 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void print_lib(vmc_t *v, vmc_lib_t *l, double ms, int json, int first)
{
    vmc_lib_info_t li;
    vmc_lib_info(l, &li);
    vmc_info_t in;
    vmc_info(v, &in);
    uintptr_t base = (uintptr_t)li.base;
    int inside = base >= (uintptr_t)in.code_base &&
                 base + li.size <= (uintptr_t)in.code_base + in.code_size;
    char p[4];
    if (json) {
        printf("%s{\"path\":\"%s\",\"base\":\"%#" PRIxPTR "\",\"size\":%zu,\"inside_code_region\":%s,"
               "\"load_ms\":%.3f,\"segments\":[",
               first ? "" : ",", li.path, (uintptr_t)base, li.size, inside ? "true" : "false", ms);
        for (unsigned i = 0; i < li.nsegments; i++) {
            prot_str(li.segments[i].prot, p);
            printf("%s{\"start\":\"%#" PRIxPTR "\",\"size\":%zu,\"prot\":\"%s\"}", i ? "," : "",
                   (uintptr_t)li.segments[i].start, li.segments[i].size, p);
        }
        printf("],\"relocations\":{\"relative\":%zu,\"symbolic\":%zu,\"irelative\":%zu,\"relr\":%zu},"
               "\"bound\":{\"self\":%zu,\"private\":%zu,\"host\":%zu,\"weak_zero\":%zu},"
               "\"tables_copied\":%zu,\"deps\":[",
               li.relocs_relative, li.relocs_symbolic, li.relocs_irelative, li.relocs_relr, li.bound_self,
               li.bound_private, li.bound_host, li.bound_weak_zero, li.tables_copied);
        for (unsigned i = 0; i < li.ndeps; i++) {
            vmc_lib_dep_t d;
            vmc_lib_dep(l, i, &d);
            printf("%s{\"name\":", i ? "," : "");
            json_str(d.name);
            printf(",\"bound\":\"%s\",\"where\":\"%s\",\"path\":", dep_how_json(d.how), dep_where(d.where));
            if (d.path) json_str(d.path);
            else printf("null");
            printf(",\"why\":");
            json_str(d.why);
            putchar('}');
        }
        printf("]}");
        return;
    }
    printf("%s\n", li.path);
    char sz[32];
    printf("  image     %#014" PRIxPTR "-%#014" PRIxPTR "  %s, %s the code region, loaded in %.3f ms\n",
           (uintptr_t)base, (uintptr_t)(base + li.size), fmt_size(li.size, sz, sizeof sz),
           inside ? "inside" : "OUTSIDE", ms);
    for (unsigned i = 0; i < li.nsegments; i++) {
        prot_str(li.segments[i].prot, p);
        uintptr_t s = (uintptr_t)li.segments[i].start;
        printf("  segment   %#014" PRIxPTR "-%#014" PRIxPTR "  %s\n", (uintptr_t)s,
               (uintptr_t)(s + li.segments[i].size), p);
    }
    printf("  relocs    %zu relative, %zu symbolic, %zu irelative, %zu relr\n", li.relocs_relative,
           li.relocs_symbolic, li.relocs_irelative, li.relocs_relr);
    printf("  bound     %zu to itself, %zu to private libraries, %zu to the host, %zu weak to 0\n",
           li.bound_self, li.bound_private, li.bound_host, li.bound_weak_zero);
    if (li.tables_copied) printf("  tables    %zu bytes read into the loader's memory\n", li.tables_copied);
    else printf("  tables    read in place\n");
    for (unsigned i = 0; i < li.ndeps; i++) {
        vmc_lib_dep_t d;
        vmc_lib_dep(l, i, &d);
        printf("  needs     %-24s %s (%s): %s\n", d.name, dep_how(d.how), dep_where(d.where),
               d.path ? d.path : "(no path)");
        printf("            %s\n", d.why);
    }
}

/* The libraries' own code (constructors, IFUNC resolvers, destructors) may
 * write to stdout: between quiet_begin and quiet_end it goes to stderr, so
 * that stdout holds only what vmcode prints (JSON a program can parse). */
static int quiet_begin(void)
{
    fflush(stdout);
    int saved = dup(1);
    if (saved >= 0 && dup2(2, 1) < 0) {
        close(saved);
        saved = -1;
    }
    return saved;
}

static void quiet_end(int saved)
{
    if (saved < 0) return;
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
}

static int cmd_load(int argc, char **argv)
{
    args_t a;
    vmc_t *v;
    int r = start_cmd("load", argc, argv, 1, &a, &v);
    if (r >= 0) return r;
    vmc_lib_t *libs[64];
    double ms[64];
    int quiet = quiet_begin();
    for (int i = 0; i < a.nlibs; i++) {
        double t0 = now_ms();
        r = vmc_lib_load(v, a.libs[i], VMC_LOAD_DEFAULT, &libs[i]);
        ms[i] = now_ms() - t0;
        if (r) {
            quiet_end(quiet);
            r = fail_cmd("load", a.json, 1, r, "");
            vmc_close(v);
            return r;
        }
    }
    void *addrs[64];
    int from[64];
    for (int k = 0; k < a.nsyms; k++) {  /* an IFUNC's resolver runs here */
        addrs[k] = NULL;
        from[k] = -1;
        for (int i = 0; i < a.nlibs && !addrs[k]; i++)
            if ((addrs[k] = vmc_lib_sym(libs[i], a.syms[k]))) from[k] = i;
    }
    quiet_end(quiet);
    int missing = 0;
    if (a.json) printf("{\"libraries\":[");
    for (int i = 0; i < a.nlibs; i++) {
        print_lib(v, libs[i], ms[i], a.json, i == 0);
        if (!a.json) putchar('\n');
    }
    if (a.json) printf("],\"symbols\":[");
    for (int k = 0; k < a.nsyms; k++) {
        void *addr = addrs[k];
        if (!addr) missing++;
        if (a.json && addr)
            printf("%s{\"name\":\"%s\",\"address\":\"%#" PRIxPTR "\",\"library\":\"%s\"}", k ? "," : "",
                   a.syms[k], (uintptr_t)addr, a.libs[from[k]]);
        else if (a.json)
            printf("%s{\"name\":\"%s\",\"address\":null,\"library\":null}", k ? "," : "", a.syms[k]);
        else if (addr)
            printf("symbol %-24s %#" PRIxPTR "  (%s)\n", a.syms[k], (uintptr_t)addr, a.libs[from[k]]);
        else
            printf("symbol %-24s not exported by any of them\n", a.syms[k]);
    }
    if (a.maps && a.json) {
        int first = 1;
        printf("],\"map\":{\"info\":");
        print_info(v, 1);
        printf(",\"runs\":[");
        vmc_walk(v, json_run, &first);
        printf("]}");
    } else if (a.maps) {
        putchar('\n');
        print_info(v, 0);
        putchar('\n');
        vmc_dump(v, stdout);
    }
    if (a.json) printf("%s}\n", a.maps ? "" : "]");
    quiet = quiet_begin();  /* destructors */
    vmc_close(v);
    quiet_end(quiet);
    return missing ? 1 : 0;
}

/* ---- the table ------------------------------------------------------------------------ */

static const cmd_t cmds[] = {
    {"info", "[--json] [OPTIONS...]",
     "Open a region with OPTIONS (vmcode option text, after VMCODE_OPTIONS) and print\n"
     "what it got: bases, sizes, W^X, the placement step that succeeded, and how much\n"
     "of the code region reaches the main program by rel32.",
     cmd_info},
    {"maps", "[--json] [OPTIONS...]",
     "Open a region with OPTIONS and print its map: every run of blocks of the code\n"
     "and heap regions with owner, kind, size and commit state.",
     cmd_maps},
    {"load", "[--json] [--maps] [OPTIONS...] LIB... [--sym NAME]...",
     "Load each library privately into a fresh code region and print where each segment\n"
     "landed, how many relocations were applied, where its symbols were bound (itself,\n"
     "other private libraries, the host), its dependencies (how each was bound, where it\n"
     "was found and why it went there), and the time taken; then the address of each\n"
     "--sym NAME; with --maps, the region's map after the loads.  Dependencies are\n"
     "searched for as the system loader searches them (DT_RPATH, LD_LIBRARY_PATH,\n"
     "DT_RUNPATH, the ld.so cache, the default directories), and only when that finds\n"
     "nothing beside the library that needs them.  Exit status 1 if a load fails or a\n"
     "symbol is not found.",
     cmd_load},
};

static const cmd_t *find_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmds[i].name, name)) return &cmds[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vmcode COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(f, "  %s %s\n", cmds[i].name, cmds[i].args);
    fprintf(f,
            "\nOPTIONS are vmcode option words, e.g. -vm_size 1G -vmheap_size 0 -no_near_app -w_xor_x\n"
            "(as in the VMCODE_OPTIONS environment variable, which comes first), anywhere on the\n"
            "line, or as one text with --options TEXT.  vmcode --version; vmcode COMMAND --help.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("vmcode %s (vmcode.h %d.%d)\n", VMC_VERSION_TEXT, VMCODE_VERSION_MAJOR, VMCODE_VERSION_MINOR);
        return 0;
    }
    /* Option words may come before the command too ("vmcode -vm_size 1G
     * info"): the first word that names a command is the command. */
    if (argv[1][0] == '-') {
        int ci = 2;
        while (ci < argc && !find_cmd(argv[ci])) ci++;
        if (ci < argc) {
            char *cmd = argv[ci];
            memmove(&argv[2], &argv[1], (size_t)(ci - 1) * sizeof *argv);
            argv[1] = cmd;
        }
    }
    const cmd_t *c = find_cmd(argv[1]);
    if (!c) {
        fprintf(stderr, "vmcode: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    return c->run(argc, argv);
}
