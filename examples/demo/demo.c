/* vmcode demo: a small Brainfuck JIT whose code calls its plug-in with rel32.
 *
 * The runtime opens a W^X region, loads its plug-in (libbfplug.so: I/O and a
 * profiling hook called at every loop head) privately into that region, then
 * compiles Brainfuck programs into many small code fragments: one per
 * straight-line run and one per loop, calling each other and the plug-in with
 * direct `call rel32`.  It checks its own claims (every rel32 call site is
 * decoded and must land on its target; no rwx mapping exists), times a hot
 * program against the same code with every plug-in call emitted as
 * `movabs r11, target; call r11`, and prints the region's map and stats.
 *
 *   demo [--quick] [--plugin PATH]
 */
#include <vmcode.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the plug-in's entry points ---------------------------------------------- */

typedef struct plugin {
    vmc_lib_t *lib;
    uintptr_t putchar_, getchar_, loop_head;       /* called by generated code */
    void (*set_input)(const char *);
    void (*set_quiet)(int);
    void (*reset)(void);
    unsigned long (*loop_heads)(void);
    unsigned long (*hottest)(unsigned *);
} plugin_t;

/* ---- parsing ------------------------------------------------------------------ */

enum op { OP_ADD, OP_MOVE, OP_OUT, OP_IN, OP_LOOP };

typedef struct node {
    enum op op;
    int n;                      /* ADD / MOVE amount                       */
    struct node *body;          /* LOOP: children                          */
    int nbody;
} node_t;

static const char *parse(const char *p, node_t **out, int *count, int depth)
{
    int cap = 16, n = 0;
    node_t *v = malloc((size_t)cap * sizeof *v);
    for (; *p; p++) {
        if (n + 1 >= cap) v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
        node_t nd = {0};
        switch (*p) {
        case '+': case '-':
            if (n && v[n - 1].op == OP_ADD) {
                v[n - 1].n += *p == '+' ? 1 : -1;
                continue;
            }
            nd.op = OP_ADD;
            nd.n = *p == '+' ? 1 : -1;
            break;
        case '>': case '<':
            if (n && v[n - 1].op == OP_MOVE) {
                v[n - 1].n += *p == '>' ? 1 : -1;
                continue;
            }
            nd.op = OP_MOVE;
            nd.n = *p == '>' ? 1 : -1;
            break;
        case '.': nd.op = OP_OUT; break;
        case ',': nd.op = OP_IN; break;
        case '[':
            nd.op = OP_LOOP;
            p = parse(p + 1, &nd.body, &nd.nbody, depth + 1);
            if (*p != ']') {
                fprintf(stderr, "demo: unbalanced '['\n");
                exit(1);
            }
            break;
        case ']':
            if (depth == 0) {
                fprintf(stderr, "demo: unbalanced ']'\n");
                exit(1);
            }
            *out = v;
            *count = n;
            return p;
        default: continue;
        }
        v[n++] = nd;
    }
    *out = v;
    *count = n;
    return p;
}

static void free_nodes(node_t *v, int n)
{
    for (int i = 0; i < n; i++)
        if (v[i].op == OP_LOOP) free_nodes(v[i].body, v[i].nbody);
    free(v);
}

/* ---- code generation ----------------------------------------------------------- */

typedef struct site { uintptr_t x, target; } site_t;

typedef struct jit {
    vmc_t *v;
    const plugin_t *pl;
    int far;                    /* plug-in calls as movabs r11; call r11    */
    unsigned next_loop_id;
    size_t fragments, code_bytes;
    size_t code_bytes_mode[2];  /* per far setting                          */
    size_t plugin_calls[2];     /* plug-in call sites emitted, per setting  */
    site_t *sites;              /* every rel32 call emitted, for checking  */
    size_t nsites, capsites;
    void **frags;               /* to free them all                         */
    size_t nfrags, capfrags;
    uintptr_t fflush_stub;
} jit_t;

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
    struct { size_t off; uintptr_t target; } rel[4096];
    size_t nrel;
} buf_t;

static void put(buf_t *b, const void *bytes, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, bytes, n);
    b->n += n;
}

static void put_u8(buf_t *b, unsigned v) { unsigned char c = (unsigned char)v; put(b, &c, 1); }
static void put_u32(buf_t *b, uint32_t v) { put(b, &v, 4); }

static void call_rel32(buf_t *b, uintptr_t target)
{
    if (b->nrel == sizeof b->rel / sizeof b->rel[0]) {
        fprintf(stderr, "demo: fragment has too many calls\n");
        exit(1);
    }
    b->rel[b->nrel].off = b->n;
    b->rel[b->nrel++].target = target;
    put_u8(b, 0xe8);
    put_u32(b, 0);
}

/* A call into the plug-in: rel32, or the sequence a runtime must emit when the
 * plug-in is out of reach. */
static void call_plugin(jit_t *j, buf_t *b, uintptr_t target)
{
    j->plugin_calls[j->far]++;
    if (!j->far) {
        call_rel32(b, target);
        return;
    }
    put(b, "\x49\xbb", 2);          /* movabs r11, imm64 */
    put(b, &target, 8);
    put(b, "\x41\xff\xd3", 3);      /* call r11 */
}

/* Copy the buffer into a new fragment, patching its rel32 calls. */
static uintptr_t finish(jit_t *j, buf_t *b)
{
    vmc_span_t s;
    int e = vmc_alloc(j->v, b->n, VMC_CODE, &s);
    if (e) {
        fprintf(stderr, "demo: vmc_alloc: %s\n", vmc_last_error());
        exit(1);
    }
    uintptr_t x = (uintptr_t)s.x;
    for (size_t i = 0; i < b->nrel; i++) {
        uintptr_t site = x + b->rel[i].off, next = site + 5;
        if (!vmc_reaches(next, b->rel[i].target)) {
            fprintf(stderr, "demo: call at %#lx cannot reach %#lx\n", (unsigned long)site,
                    (unsigned long)b->rel[i].target);
            exit(1);
        }
        int32_t rel = (int32_t)((intptr_t)b->rel[i].target - (intptr_t)next);
        memcpy(b->p + b->rel[i].off + 1, &rel, 4);
        if (j->nsites == j->capsites) {
            j->capsites = j->capsites ? j->capsites * 2 : 1024;
            j->sites = realloc(j->sites, j->capsites * sizeof *j->sites);
        }
        j->sites[j->nsites++] = (site_t){site, b->rel[i].target};
    }
    memcpy(s.w, b->p, b->n);        /* written through the writable view */
    if (j->nfrags == j->capfrags) {
        j->capfrags = j->capfrags ? j->capfrags * 2 : 1024;
        j->frags = realloc(j->frags, j->capfrags * sizeof *j->frags);
    }
    j->frags[j->nfrags++] = s.x;
    j->fragments++;
    j->code_bytes += b->n;
    j->code_bytes_mode[j->far] += b->n;
    free(b->p);
    return x;
}

static void prologue(buf_t *b) { put(b, "\x48\x83\xec\x08", 4); }        /* sub rsp, 8 */
static void epilogue(buf_t *b) { put(b, "\x48\x83\xc4\x08\xc3", 5); }    /* add rsp, 8; ret */

/* A straight-line run of ADD/MOVE/OUT/IN: one fragment. */
static uintptr_t compile_run(jit_t *j, const node_t *v, int n)
{
    buf_t *b = calloc(1, sizeof *b);
    prologue(b);
    for (int i = 0; i < n; i++) {
        switch (v[i].op) {
        case OP_ADD:                                  /* add byte [rbx], imm8 */
            put(b, "\x80\x03", 2);
            put_u8(b, (unsigned)v[i].n & 0xff);
            break;
        case OP_MOVE:                                 /* add rbx, imm32 */
            put(b, "\x48\x81\xc3", 3);
            put_u32(b, (uint32_t)v[i].n);
            break;
        case OP_OUT:                                  /* movzx edi, byte [rbx] */
            put(b, "\x0f\xb6\x3b", 3);
            call_plugin(j, b, j->pl->putchar_);
            break;
        case OP_IN:
            call_plugin(j, b, j->pl->getchar_);
            put(b, "\x88\x03", 2);                    /* mov [rbx], al */
            break;
        default: break;
        }
    }
    epilogue(b);
    uintptr_t x = finish(j, b);
    free(b);
    return x;
}

static uintptr_t compile_loop(jit_t *j, const node_t *loop);

/* A sequence (loop body or program): calls to run and loop fragments. */
static void compile_seq(jit_t *j, buf_t *b, const node_t *v, int n)
{
    for (int i = 0; i < n;) {
        if (v[i].op == OP_LOOP) {
            uintptr_t f = compile_loop(j, &v[i]);
            put(b, "\x80\x3b\x00\x74\x05", 5);        /* cmp byte [rbx], 0; je +5 */
            call_rel32(b, f);
            i++;
            continue;
        }
        int k = i;
        while (k < n && v[k].op != OP_LOOP) k++;
        call_rel32(b, compile_run(j, v + i, k - i));
        i = k;
    }
}

static uintptr_t compile_loop(jit_t *j, const node_t *loop)
{
    buf_t *b = calloc(1, sizeof *b);
    prologue(b);
    size_t head = b->n;
    put_u8(b, 0xbf);                                  /* mov edi, loop id */
    put_u32(b, ++j->next_loop_id);
    call_plugin(j, b, j->pl->loop_head);
    compile_seq(j, b, loop->body, loop->nbody);
    put(b, "\x80\x3b\x00\x0f\x85", 5);                /* cmp byte [rbx], 0; jne head */
    put_u32(b, (uint32_t)((int32_t)head - (int32_t)(b->n + 4)));
    epilogue(b);
    uintptr_t x = finish(j, b);
    free(b);
    return x;
}

/* The entry point: void run(unsigned char *tape). */
static uintptr_t compile_program(jit_t *j, const char *src)
{
    node_t *v;
    int n;
    parse(src, &v, &n, 0);
    buf_t *body = calloc(1, sizeof *body);
    prologue(body);
    compile_seq(j, body, v, n);
    epilogue(body);
    uintptr_t main_frag = finish(j, body);
    free(body);
    free_nodes(v, n);
    buf_t *b = calloc(1, sizeof *b);
    put(b, "\x53\x48\x89\xfb", 4);                    /* push rbx; mov rbx, rdi */
    call_rel32(b, main_frag);
    put(b, "\x31\xff", 2);                            /* xor edi, edi */
    call_rel32(b, j->fflush_stub);                    /* fflush(NULL), far away in libc */
    put(b, "\x5b\xc3", 2);                            /* pop rbx; ret */
    uintptr_t x = finish(j, b);
    free(b);
    return x;
}

/* ---- our sample programs ---------------------------------------------------------- */

/* Brainfuck that prints `text`, one multiplication loop per character. */
static char *text_program(const char *text)
{
    size_t cap = strlen(text) * 64 + 16, n = 0;
    char *out = malloc(cap);
    int cur = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        int d = *p - cur, a = abs(d), f = 1;
        for (int k = 2; k * k <= a; k++)
            if (abs(a / k + k + a % k) < abs(a / f + f + a % f)) f = k;
        if (a >= 6) {
            /* >{f}[<{a/f}>-]< then the remainder */
            out[n++] = '>';
            for (int i = 0; i < f; i++) out[n++] = '+';
            out[n++] = '[';
            out[n++] = '<';
            for (int i = 0; i < a / f; i++) out[n++] = d > 0 ? '+' : '-';
            out[n++] = '>';
            out[n++] = '-';
            out[n++] = ']';
            out[n++] = '<';
            a %= f;
        }
        for (int i = 0; i < a; i++) out[n++] = d > 0 ? '+' : '-';
        out[n++] = '.';
        cur = *p;
    }
    out[n] = 0;
    return out;
}

static const char *banner_text =
    "                                       _\n"
    "   __   ___ __ ___   ___  ___   __| | ___\n"
    "   \\ \\ / / '_ ` _ \\ / __|/ _ \\ / _` |/ _ \\\n"
    "    \\ V /| | | | | | (__| (_) | (_| |  __/\n"
    "     \\_/ |_| |_| |_|\\___|\\___/ \\__,_|\\___|\n"
    "\n"
    "  Brainfuck compiled to x86-64 inside one reserved region: every '.' and\n"
    "  every loop head below is a direct call rel32 into a plug-in library that\n"
    "  vmcode mapped into the same region, so no call needs movabs + call r11.\n"
    "  (Each program is also compiled with movabs + call r11, to time both.)\n";

/* digits: cell0 = '0', cell1 = 10, print and bump ten times, newline */
static const char *digits_program = ">++++++++[<++++++>-]<>++++++++++[<.+>-]++++++++++.";
/* reads "HAL", prints each letter + 1, then a newline */
static const char *hal_program = ",[+.,]++++++++++.";
/* nested countdowns: 255^3 (or 255^2 in quick mode) innermost iterations */
static const char *hot_program = "-[>-[>-[>+<-]<-]<-]";
static const char *hot_quick = "-[>-[>+<-]<-]";

/* ---- checks --------------------------------------------------------------------- */

static int verify_sites(const jit_t *j, size_t *checked)
{
    for (size_t i = 0; i < j->nsites; i++) {
        const unsigned char *p = (const unsigned char *)j->sites[i].x;  /* read the RX view */
        int32_t rel;
        memcpy(&rel, p + 1, 4);
        uintptr_t next = j->sites[i].x + 5, target = next + (uintptr_t)(intptr_t)rel;
        if (p[0] != 0xe8 || target != j->sites[i].target || !vmc_reaches(next, target)) {
            fprintf(stderr, "demo: call site %#lx decodes to %#lx, wanted %#lx\n",
                    (unsigned long)j->sites[i].x, (unsigned long)target,
                    (unsigned long)j->sites[i].target);
            return -1;
        }
    }
    *checked = j->nsites;
    return 0;
}

static int rwx_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f) return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, " rwx")) n++;
    fclose(f);
    return n;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void free_fragments(jit_t *j)
{
    for (size_t i = 0; i < j->nfrags; i++) vmc_free(j->v, j->frags[i]);
    j->nfrags = 0;
}

typedef void (*entry_t)(unsigned char *tape);

static void run(const plugin_t *pl, uintptr_t entry, const char *input)
{
    static unsigned char tape[1 << 16];
    memset(tape, 0, sizeof tape);
    pl->set_input(input);
    ((entry_t)entry)(tape);
}

/* ---- main ------------------------------------------------------------------------ */

static int lookup(plugin_t *pl, const char *name, void *out)
{
    void *p = vmc_lib_sym(pl->lib, name);
    if (!p) {
        fprintf(stderr, "demo: the plug-in has no '%s'\n", name);
        return -1;
    }
    memcpy(out, &p, sizeof p);
    return 0;
}

int main(int argc, char **argv)
{
    int quick = 0;
    char plugin_path[PATH_MAX] = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--plugin") && i + 1 < argc) snprintf(plugin_path, sizeof plugin_path, "%s", argv[++i]);
        else {
            fprintf(stderr, "usage: demo [--quick] [--plugin PATH]\n");
            return 2;
        }
    }
    if (!plugin_path[0]) {  /* next to this executable */
        ssize_t n = readlink("/proc/self/exe", plugin_path, sizeof plugin_path - 32);
        if (n < 0) n = 0;
        plugin_path[n] = 0;
        char *slash = strrchr(plugin_path, '/');
        snprintf(slash ? slash + 1 : plugin_path, 32, "libbfplug.so");
    }

    vmc_options_t o;
    vmc_options_init(&o);
    o.w_xor_x = 1;
    vmc_t *v;
    if (vmc_open(&o, &v)) {
        fprintf(stderr, "demo: vmc_open: %s\n", vmc_last_error());
        return 1;
    }
    vmc_info_t in;
    vmc_info(v, &in);
    plugin_t pl = {0};
    if (vmc_lib_load(v, plugin_path, VMC_LOAD_DEFAULT, &pl.lib)) {
        fprintf(stderr, "demo: vmc_lib_load: %s\n", vmc_last_error());
        return 1;
    }
    if (lookup(&pl, "bf_putchar", &pl.putchar_) || lookup(&pl, "bf_getchar", &pl.getchar_) ||
        lookup(&pl, "bf_loop_head", &pl.loop_head) || lookup(&pl, "bf_set_input", &pl.set_input) ||
        lookup(&pl, "bf_set_quiet", &pl.set_quiet) ||
        lookup(&pl, "bf_reset", &pl.reset) || lookup(&pl, "bf_loop_heads", &pl.loop_heads) ||
        lookup(&pl, "bf_hottest", &pl.hottest))
        return 1;

    printf("vmcode demo: a Brainfuck JIT and its plug-in in one region\n\n");
    printf("code region  %p-%p  %zu MiB, W^X %s (writable view at %p)\n", in.code_base,
           (void *)((char *)in.code_base + in.code_size), in.code_size >> 20,
           in.w_xor_x ? "on" : "off", in.code_wbase);
    printf("             %.1f %% of it reaches this program by rel32\n",
           100.0 * (double)in.code_reaching / (double)in.code_size);
    printf("plug-in      %s loaded privately; bf_putchar at %#lx (inside the region: %s)\n\n",
           plugin_path, (unsigned long)pl.putchar_,
           pl.putchar_ - (uintptr_t)in.code_base < in.code_size ? "yes" : "NO");

    jit_t j = {.v = v, .pl = &pl};
    void *stub;
    if (vmc_stub(v, (uintptr_t)&fflush, &stub)) {
        fprintf(stderr, "demo: vmc_stub: %s\n", vmc_last_error());
        return 1;
    }
    j.fflush_stub = (uintptr_t)stub;

    /* Compile everything twice: with direct calls into the plug-in, and with
     * every plug-in call as movabs r11; call r11 (what a runtime must emit
     * when its plug-in is out of reach).  Thousands of fragments. */
    char *banner = text_program(banner_text);
    const char *programs[] = {banner, digits_program, hal_program, quick ? hot_quick : hot_program};
    const char *inputs[] = {"", "", "HAL", ""};
    enum { NPROG = 4 };
    uintptr_t entry[2][NPROG];
    for (int far = 0; far < 2; far++) {
        j.far = far;
        for (int i = 0; i < NPROG; i++) entry[far][i] = compile_program(&j, programs[i]);
    }
    j.far = 0;
    printf("compiled %d programs twice (direct and far plug-in calls): %zu fragments, %zu bytes "
           "of code, %zu rel32 call sites\n\n", NPROG, j.fragments, j.code_bytes, j.nsites);

    printf("--- program output ---\n");
    fflush(stdout);
    for (int i = 0; i < NPROG - 1; i++) run(&pl, entry[0][i], inputs[i]);
    pl.reset();
    run(&pl, entry[0][NPROG - 1], "");
    unsigned hot_id;
    unsigned long heads = pl.loop_heads(), hottest = pl.hottest(&hot_id);
    printf("hot program: %lu loop-head calls into the plug-in; hottest loop #%u ran %lu times\n\n",
           heads, hot_id, hottest);

    printf("--- checks ---\n");
    size_t checked = 0;
    if (verify_sites(&j, &checked)) return 1;
    printf("verified %zu rel32 call sites: each decodes to its intended target and reaches it\n",
           checked);
    int rwx = rwx_mappings();
    printf("rwx mappings in /proc/self/maps: %d%s\n\n", rwx, rwx == 0 ? " (W^X holds)" : "  <-- W^X VIOLATED");
    if (rwx != 0) return 1;

    printf("--- timing: all four programs, output muted ---\n");
    int reps = quick ? 3 : 7;
    double tn[16], tf[16];
    pl.set_quiet(1);
    for (int r = 0; r < reps; r++) {
        for (int far = 0; far < 2; far++) {
            double t0 = now_ms();
            for (int i = 0; i < NPROG; i++) run(&pl, entry[far][i], inputs[i]);
            (far ? tf : tn)[r] = now_ms() - t0;
        }
    }
    pl.set_quiet(0);
    qsort(tn, (size_t)reps, sizeof *tn, cmp_double);
    qsort(tf, (size_t)reps, sizeof *tf, cmp_double);
    double mn = tn[reps / 2], mf = tf[reps / 2];
    printf("direct call rel32          %8.2f ms  (median of %d runs)\n", mn, reps);
    printf("movabs r11; call r11       %8.2f ms  (median of %d runs)\n", mf, reps);
    printf("far / direct               %8.3f\n", mn > 0 ? mf / mn : 0);
    printf("code size                  %zu bytes direct, %zu bytes far (%zu plug-in call sites: "
           "5 bytes each as call rel32, 13 as movabs r11 + call r11)\n\n",
           j.code_bytes_mode[0], j.code_bytes_mode[1], j.plugin_calls[0]);

    printf("--- region map ---\n");
    vmc_dump(v, stdout);
    vmc_lib_info_t li;
    vmc_lib_info(pl.lib, &li);
    printf("plug-in segments:");
    for (unsigned i = 0; i < li.nsegments; i++) {
        int p = li.segments[i].prot;
        printf("  %p %c%c%c", li.segments[i].start, p & 1 ? 'r' : '-', p & 2 ? 'w' : '-', p & 4 ? 'x' : '-');
    }
    printf("\nstub for fflush (in libc, out of reach): %p\n", stub);
    vmc_stats_t st;
    vmc_stats(v, &st);
    printf("\n--- stats ---\n");
    printf("code region: %zu KiB used, %zu KiB committed, largest free run %zu MiB; live "
           "allocations: %zu; libraries: %zu\n",
           st.code_used >> 10, st.code_committed >> 10, st.code_largest_free >> 20,
           st.allocations, st.libraries);

    free_fragments(&j);
    free(banner);
    free(j.sites);
    free(j.frags);
    if (vmc_lib_unload(pl.lib)) {
        fprintf(stderr, "demo: vmc_lib_unload: %s\n", vmc_last_error());
        return 1;
    }
    vmc_close(v);
    return 0;
}
