/* bench_reach: what reach buys a binary translator (issue 14).
 *
 * A translator copies blocks of the application's code into its code cache
 * and runs them there.  Application code is full of rip-relative operands
 * (globals) and rel32 calls (its own functions).  If the cache reaches the
 * application, a block is copied as it is with its displacements adjusted;
 * if not, every such operand must be rewritten to go through an absolute
 * address in a scratch register, and every call through a register.
 *
 * The "application" here is this program: six straight-line functions
 * (app_block0..5, below) written in assembly, so that the place and kind of
 * every rip-relative operand and call is known exactly (a real translator
 * decodes them).  They read, write and update the program's globals and call
 * its C functions app_mix and app_step.  A chain of n blocks (templates in a
 * fixed random order, laid out in the region in the order they run, as a
 * translator that translates each block when first reached lays them out;
 * each ending in `jmp rel32` to the next, the last in `ret`) is built three
 * ways:
 *
 *   A  default options: the region next to the program.  Bytes copied, every
 *      rel32 displacement adjusted to the block's new place
 *      (vmc_alloc_reaching keeps the block within reach of the image).
 *   B  -no_near_app -vm_base <64 GiB below the image>: nothing in the region
 *      reaches the program.  Each rip-relative operand becomes: spill r11 to
 *      a thread-local slot (%fs:disp32, as translators keep their spill slots
 *      in thread-local storage reached through a segment register), movabs
 *      the absolute address into r11, the same instruction on [r11], reload
 *      r11; a rip-relative lea becomes one movabs; each call becomes
 *      movabs r11, target; call r11 (r11 is free at a call).
 *   C  A's code, but every call goes to a vmc_stub (jmp [rip] + target).
 *
 * Before anything is timed, every chain runs from the same starting values
 * and must leave the globals exactly as the program's own functions, called
 * in the same order, leave them.  Then each round times every variant at
 * every chain length, in rotated order; figures are medians over rounds and
 * ratios are medians of per-round ratios.
 *
 *   bench_reach [--quick]      (--quick, or BENCH_QUICK=1: a smoke run)
 */
#include "vmcode.h"
#include "bench.h"

#include <signal.h>
#include <unistd.h>

/* ---- the application ------------------------------------------------------ */

/* Its globals: external linkage, so the compiler treats them as changed by
 * every call it cannot see into (the copied blocks write them). */
uint64_t app_data[16];
uint64_t app_table[64];
uint64_t app_calls;

uint64_t app_mix(uint64_t x);
uint64_t app_step(uint64_t a, uint64_t b);

__attribute__((noinline)) uint64_t app_mix(uint64_t x)
{
    app_calls++;
    x ^= x >> 31;
    return x * 0x9e3779b97f4a7c15ull;
}

__attribute__((noinline)) uint64_t app_step(uint64_t a, uint64_t b)
{
    app_calls += 2;
    return a * 3 + (b >> 1);
}

/* The blocks.  REACH_SITE wraps each instruction with a rip-relative operand
 * or a rel32 call and records {template, offset, length, kind} in
 * reach_sites[].  Rules the rewriter relies on: no r11 anywhere, no byte
 * registers, no branches inside a block; a block is entered with the stack
 * as at a function's entry, so those that call push rbx first to align it. */
enum { SITE_MEM = 1, SITE_CALL = 2, SITE_LEA = 3 };
#define NTPL 6

__asm__(
    ".macro REACH_SITE tpl, kind, insn:vararg\n"
    "771:\n"
    "    \\insn\n"
    "772:\n"
    "    .pushsection .rodata.reach_sites,\"a\"\n"
    "    .long \\tpl, 771b - app_block\\tpl, 772b - 771b, \\kind\n"
    "    .popsection\n"
    ".endm\n"
    ".macro REACH_BLOCK tpl\n"
    "    .text\n"
    "    .p2align 4\n"
    "    .globl app_block\\tpl\n"
    "    .hidden app_block\\tpl\n"
    "    .type app_block\\tpl, @function\n"
    "app_block\\tpl:\n"
    ".endm\n"
    ".macro REACH_END tpl\n"
    "app_block\\tpl\\()_end:\n"
    "    ret\n"
    "    .size app_block\\tpl, . - app_block\\tpl\n"
    ".endm\n"

    "    .pushsection .rodata.reach_sites,\"a\"\n"
    "    .p2align 2\n"
    "    .globl reach_sites\n"
    "    .hidden reach_sites\n"
    "reach_sites:\n"
    "    .popsection\n"

    /* state update and a call: loads, a store, a read-modify-write */
    "REACH_BLOCK 0\n"
    "    push %rbx\n"
    "    REACH_SITE 0, 1, mov app_data+0(%rip), %rax\n"
    "    REACH_SITE 0, 1, mov app_data+8(%rip), %rbx\n"
    "    lea (%rax,%rbx,2), %rdi\n"
    "    REACH_SITE 0, 1, mov %rax, app_data+8(%rip)\n"
    "    REACH_SITE 0, 2, call app_mix\n"
    "    REACH_SITE 0, 1, add %rax, app_data+16(%rip)\n"
    "    pop %rbx\n"
    "REACH_END 0\n"

    /* counters: an immediate after the displacement, no REX, a 0F opcode */
    "REACH_BLOCK 1\n"
    "    REACH_SITE 1, 1, addq $1, app_data+24(%rip)\n"
    "    REACH_SITE 1, 1, mov app_data+32(%rip), %ecx\n"
    "    REACH_SITE 1, 1, imul app_data+40(%rip), %ecx\n"
    "    add $7, %ecx\n"
    "    REACH_SITE 1, 1, mov %ecx, app_data+32(%rip)\n"
    "REACH_END 1\n"

    /* a table lookup: the table's address by lea */
    "REACH_BLOCK 2\n"
    "    REACH_SITE 2, 3, lea app_table(%rip), %rdx\n"
    "    REACH_SITE 2, 1, mov app_data+48(%rip), %rax\n"
    "    mov %eax, %ecx\n"
    "    and $63, %ecx\n"
    "    add (%rdx,%rcx,8), %rax\n"
    "    REACH_SITE 2, 1, mov %rax, app_data+48(%rip)\n"
    "    REACH_SITE 2, 1, xor %rax, app_data+56(%rip)\n"
    "REACH_END 2\n"

    /* a call with two arguments, then a compare and a conditional count */
    "REACH_BLOCK 3\n"
    "    push %rbx\n"
    "    REACH_SITE 3, 1, mov app_data+64(%rip), %rdi\n"
    "    REACH_SITE 3, 1, mov app_data+72(%rip), %rsi\n"
    "    REACH_SITE 3, 2, call app_step\n"
    "    REACH_SITE 3, 1, mov %rax, app_data+64(%rip)\n"
    "    REACH_SITE 3, 1, cmp app_data+80(%rip), %rax\n"
    "    sbb %rbx, %rbx\n"
    "    REACH_SITE 3, 1, sub %rbx, app_data+80(%rip)\n"
    "    REACH_SITE 3, 1, add %rax, app_data+72(%rip)\n"
    "    pop %rbx\n"
    "REACH_END 3\n"

    /* a flag test and a conditional move from memory */
    "REACH_BLOCK 4\n"
    "    REACH_SITE 4, 1, mov app_data+88(%rip), %rax\n"
    "    REACH_SITE 4, 1, testq $1, app_data+96(%rip)\n"
    "    REACH_SITE 4, 1, cmovnz app_data+104(%rip), %rax\n"
    "    inc %rax\n"
    "    REACH_SITE 4, 1, mov %rax, app_data+88(%rip)\n"
    "    REACH_SITE 4, 1, xorq $1, app_data+96(%rip)\n"
    "REACH_END 4\n"

    /* little but a call */
    "REACH_BLOCK 5\n"
    "    push %rbx\n"
    "    REACH_SITE 5, 1, mov app_data+120(%rip), %rdi\n"
    "    REACH_SITE 5, 2, call app_mix\n"
    "    REACH_SITE 5, 1, mov %rax, app_data+120(%rip)\n"
    "    pop %rbx\n"
    "REACH_END 5\n"

    "    .pushsection .rodata.reach_sites,\"a\"\n"
    "    .globl reach_sites_end\n"
    "    .hidden reach_sites_end\n"
    "reach_sites_end:\n"
    "    .popsection\n"

    "    .section .rodata\n"
    "    .p2align 2\n"
    "    .globl reach_body_len\n"
    "    .hidden reach_body_len\n"
    "reach_body_len:\n"
    "    .long app_block0_end - app_block0, app_block1_end - app_block1\n"
    "    .long app_block2_end - app_block2, app_block3_end - app_block3\n"
    "    .long app_block4_end - app_block4, app_block5_end - app_block5\n"
    "    .text\n");

typedef struct site {
    int32_t tpl, start, len, kind;
} site_t;
extern const site_t reach_sites[], reach_sites_end[];
extern const int32_t reach_body_len[NTPL];
/* Instructions in each body, ret excluded (counted from the source above;
 * only for the description of the workload). */
static const int tpl_insns[NTPL] = {8, 5, 7, 10, 6, 5};
void app_block0(void), app_block1(void), app_block2(void);
void app_block3(void), app_block4(void), app_block5(void);
static void (*const app_block[NTPL])(void) = {app_block0, app_block1, app_block2,
                                              app_block3, app_block4, app_block5};

/* ---- failing loudly ---------------------------------------------------------- */

static const char *volatile running = "setting up";

static _Noreturn void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "bench_reach: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static _Noreturn void die_vmc(const char *what, int err)
{
    fprintf(stderr, "bench_reach: %s: %s (%s)\n", what, vmc_strerror(err), vmc_last_error());
    exit(1);
}

/* A wrong displacement in copied code crashes rather than computing wrongly;
 * say which variant did it instead of dying silently. */
static void on_fault(int sig)
{
    const char *name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : "SIGILL";
    const char *msg[] = {"bench_reach: crashed (", name, ") while ", running, "\n"};
    for (size_t i = 0; i < sizeof msg / sizeof msg[0]; i++)
        if (write(2, msg[i], strlen(msg[i])) < 0) break;
    _exit(1);
}

/* ---- decoding the sites --------------------------------------------------------- */

/* One rip-relative instruction or rel32 call of a template, taken apart. */
typedef struct insn {
    const uint8_t *p;   /* its bytes in the program                          */
    int len;
    int kind;           /* SITE_*                                             */
    int npfx;           /* legacy prefixes (66, F2, F3) before REX/opcode     */
    int rex;            /* the REX byte, 0 if none                            */
    int op, nop;        /* offset and length of the opcode                    */
    int modrm;          /* offset of the ModRM byte (SITE_MEM, SITE_LEA)      */
    uintptr_t target;   /* the absolute address it refers to                  */
} insn_t;

static const uint8_t *template_bytes(int t)
{
    const uint8_t *p;
    void (*fn)(void) = app_block[t];
    memcpy(&p, &fn, sizeof p);
    return p;
}

static insn_t decode(const site_t *s)
{
    insn_t d = {0};
    d.p = template_bytes(s->tpl) + s->start;
    d.len = s->len;
    d.kind = s->kind;
    int32_t disp;
    if (s->kind == SITE_CALL) {
        if (d.len != 5 || d.p[0] != 0xe8) die("template %s: a call site is not call rel32", "app_block");
        memcpy(&disp, d.p + 1, 4);
        d.target = (uintptr_t)(d.p + 5) + (uintptr_t)(intptr_t)disp;
        return d;
    }
    int i = 0;
    while (i < d.len && (d.p[i] == 0x66 || d.p[i] == 0xf2 || d.p[i] == 0xf3)) i++;
    d.npfx = i;
    if (i < d.len && (d.p[i] & 0xf0) == 0x40) d.rex = d.p[i++];
    d.op = i;
    d.nop = i < d.len && d.p[i] == 0x0f ? 2 : 1;
    d.modrm = d.op + d.nop;
    if (d.modrm + 5 > d.len || (d.p[d.modrm] & 0xc7) != 0x05)
        die("template %s: a memory site has no rip-relative ModRM", "app_block");
    if ((d.rex & 4) && ((d.p[d.modrm] >> 3) & 7) == 3)
        die("template %s: a site uses r11, the rewrite's scratch register", "app_block");
    if (d.kind == SITE_LEA && ((d.rex & 0x48) != 0x48 || d.p[d.op] != 0x8d))
        die("template %s: a lea site is not a 64-bit lea", "app_block");
    memcpy(&disp, d.p + d.modrm + 1, 4);
    /* the displacement counts from the end of the instruction, immediate included */
    d.target = (uintptr_t)(d.p + d.len) + (uintptr_t)(intptr_t)disp;
    return d;
}

/* ---- emitting ------------------------------------------------------------------ */

enum { VA, VB, VC, NVAR };
static const char *const var_name[NVAR] = {
    "variant A (region next to the program, displacements adjusted)",
    "variant B (region far away, rip-relative operands rewritten)",
    "variant C (region next to the program, calls through vmc_stub)",
};

typedef struct out {
    uint8_t *w;      /* where to write; NULL: only count                     */
    uintptr_t x;     /* where the bytes will run                             */
    size_t n;
} out_t;

static void put(out_t *o, const void *b, size_t k)
{
    if (o->w) memcpy(o->w + o->n, b, k);
    o->n += k;
}
static void put8(out_t *o, uint8_t b) { put(o, &b, 1); }
static void put32(out_t *o, int32_t v) { put(o, &v, 4); }
static void put64(out_t *o, uint64_t v) { put(o, &v, 8); }

/* The rel32 from the end of an instruction ending k bytes from here. */
static void put_rel32(out_t *o, int k, uintptr_t target)
{
    uintptr_t end = o->x + o->n + (size_t)k;
    if (o->w && !vmc_reaches(end, target)) die("%s: a copied block does not reach its target", running);
    put32(o, (int32_t)(int64_t)(target - end));
}

static int32_t spill_slot;     /* %fs offset of the thread-local spill slot */
static __thread uint64_t spill_tls;

static void spill_r11(out_t *o, int restore)
{
    /* mov %r11, %fs:slot  /  mov %fs:slot, %r11 */
    const uint8_t b[] = {0x64, 0x4c, restore ? 0x8b : 0x89, 0x1c, 0x25};
    put(o, b, sizeof b);
    put32(o, spill_slot);
}

static void movabs(out_t *o, int reg, uint64_t imm)
{
    put8(o, (uint8_t)(0x48 | (reg >= 8)));
    put8(o, (uint8_t)(0xb8 + (reg & 7)));
    put64(o, imm);
}

typedef struct stubs {
    vmc_t *v;
    uintptr_t target[8], stub[8];
    int n;
} stubs_t;

static uintptr_t stub_for(stubs_t *s, uintptr_t target)
{
    for (int i = 0; i < s->n; i++)
        if (s->target[i] == target) return s->stub[i];
    if (s->n == 8) die("%s: more call targets than expected", running);
    void *x;
    int r = vmc_stub(s->v, target, &x);
    if (r) die_vmc("vmc_stub", r);
    s->target[s->n] = target;
    s->stub[s->n] = (uintptr_t)x;
    return s->stub[s->n++];
}

/* One site, the way variant var translates it. */
static void emit_site(out_t *o, int var, const insn_t *d, stubs_t *st)
{
    if (d->kind == SITE_CALL) {
        if (var == VB) {
            movabs(o, 11, d->target);
            const uint8_t call_r11[] = {0x41, 0xff, 0xd3};
            put(o, call_r11, sizeof call_r11);
        } else {
            put8(o, 0xe8);
            put_rel32(o, 4, var == VC && o->w ? stub_for(st, d->target) : d->target);
        }
        return;
    }
    if (var != VB) {                       /* same bytes, displacement adjusted */
        put(o, d->p, (size_t)d->modrm + 1);
        put_rel32(o, d->len - d->modrm - 1, d->target);
        put(o, d->p + d->modrm + 5, (size_t)(d->len - d->modrm - 5));
        return;
    }
    if (d->kind == SITE_LEA) {             /* the address itself: one movabs */
        movabs(o, ((d->p[d->modrm] >> 3) & 7) | ((d->rex & 4) ? 8 : 0), d->target);
        return;
    }
    spill_r11(o, 0);
    movabs(o, 11, d->target);
    put(o, d->p, (size_t)d->npfx);
    put8(o, (uint8_t)((d->rex ? d->rex : 0x40) | 0x01));          /* REX.B: r11 */
    put(o, d->p + d->op, (size_t)d->nop);
    put8(o, (uint8_t)((d->p[d->modrm] & 0x38) | 0x03));           /* [r11]      */
    put(o, d->p + d->modrm + 5, (size_t)(d->len - d->modrm - 5)); /* immediate  */
    spill_r11(o, 1);
}

static insn_t sites[64];
static int nsites, first_site[NTPL + 1];

static void decode_templates(void)
{
    int t = 0;
    for (const site_t *s = reach_sites; s < reach_sites_end; s++) {
        if (nsites == 64 || s->tpl < t || s->tpl >= NTPL) die("%s: the site table is out of order", "app_block");
        while (t < s->tpl) first_site[++t] = nsites;
        sites[nsites++] = decode(s);
    }
    while (t < NTPL) first_site[++t] = nsites;
}

/* One block: template t translated by var, then jmp to next (0: ret). */
static void emit_block(out_t *o, int var, int t, uintptr_t next, stubs_t *st)
{
    const uint8_t *src = template_bytes(t);
    int pos = 0;
    for (int i = first_site[t]; i < first_site[t + 1]; i++) {
        int start = (int)(sites[i].p - src);
        put(o, src + pos, (size_t)(start - pos));
        emit_site(o, var, &sites[i], st);
        pos = start + sites[i].len;
    }
    put(o, src + pos, (size_t)(reach_body_len[t] - pos));
    if (next) {
        put8(o, 0xe9);
        put_rel32(o, 4, next);
    } else {
        put8(o, 0xc3);
    }
}

/* ---- chains ------------------------------------------------------------------ */

typedef struct chain {
    void (*entry)(void);
    size_t bytes;          /* the blocks' code                                 */
} chain_t;

typedef struct setup {
    vmc_t *v;
    int near;              /* allocate within reach of the program image       */
    uintptr_t img_lo, img_hi;
    stubs_t stubs;
} setup_t;

static chain_t build_chain(setup_t *su, int var, const int *seq, size_t n)
{
    size_t *off = malloc(n * sizeof *off), total = 0;
    if (!off) die("%s: out of memory", "malloc");
    for (size_t i = 0; i < n; i++) {
        out_t o = {NULL, 0, 0};
        emit_block(&o, var, seq[i], i + 1 < n ? 1 : 0, NULL);
        off[i] = total;
        total += o.n;
    }
    vmc_span_t sp;
    int r = su->near ? vmc_alloc_reaching(su->v, total, VMC_CODE, su->img_lo, su->img_hi, &sp)
                     : vmc_alloc(su->v, total, VMC_CODE, &sp);
    if (r) die_vmc("vmc_alloc", r);
    uintptr_t x = (uintptr_t)sp.x;
    for (size_t i = 0; i < n; i++) {
        out_t o = {(uint8_t *)sp.w + off[i], x + off[i], 0};
        emit_block(&o, var, seq[i], i + 1 < n ? x + off[i + 1] : 0, &su->stubs);
    }
    chain_t c = {NULL, total};
    uintptr_t entry = x + off[0];
    memcpy(&c.entry, &entry, sizeof entry);
    free(off);
    return c;
}

/* ---- checking --------------------------------------------------------------- */

#define NSTATE 17      /* app_data[16] and app_calls */

static void app_reset(void)
{
    for (int i = 0; i < 16; i++) app_data[i] = 0x1234567u * (uint64_t)(i + 1) + (uint64_t)i;
    app_calls = 0;
}

static void app_state(uint64_t *s)
{
    memcpy(s, app_data, sizeof app_data);
    s[16] = app_calls;
}

static void check(const chain_t *c, int var, size_t n, const uint64_t *want, int passes)
{
    uint64_t got[NSTATE];
    running = var_name[var];
    app_reset();
    for (int p = 0; p < passes; p++) c->entry();
    app_state(got);
    for (int i = 0; i < NSTATE; i++) {
        if (got[i] == want[i]) continue;
        char name[32];
        snprintf(name, sizeof name, i < 16 ? "app_data[%d]" : "app_calls", i);
        fprintf(stderr,
                "bench_reach: %s: wrong result: after %d runs of the %zu-block chain %s is %#llx, "
                "the program's own code leaves %#llx\n",
                var_name[var], passes, n, name, (unsigned long long)got[i], (unsigned long long)want[i]);
        exit(1);
    }
}

/* ---- main --------------------------------------------------------------------- */

static double ns_per_block(const chain_t *c, size_t reps, size_t n)
{
    uint64_t t0 = bench_now_ns();
    for (size_t r = 0; r < reps; r++) c->entry();
    return (double)(bench_now_ns() - t0) / ((double)reps * (double)n);
}

static uintptr_t gap(uintptr_t a_lo, uintptr_t a_hi, uintptr_t b_lo, uintptr_t b_hi)
{
    return a_hi <= b_lo ? b_lo - a_hi : b_hi <= a_lo ? a_lo - b_hi : 0;
}

#define GiB ((uintptr_t)1 << 30)
#define NLEN 3

int main(int argc, char **argv)
{
    int quick = bench_quick();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else {
            fprintf(stderr, "usage: bench_reach [--quick]\n");
            return 2;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);

    uintptr_t tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    intptr_t slot = (intptr_t)((uintptr_t)&spill_tls - tp);
    if (slot < INT32_MIN || slot > INT32_MAX) die("%s: the spill slot is out of %%fs:disp32 reach", "tls");
    spill_slot = (int32_t)slot;
    for (int i = 0; i < 64; i++) app_table[i] = (uint64_t)i * 0x51ed27u + 1;
    decode_templates();

    /* A and C: one region, default options (next to the program). */
    vmc_options_t o;
    vmc_options_init(&o);
    setup_t near = {0};
    int r = vmc_open(&o, &near.v);
    if (r) die_vmc("vmc_open (default options)", r);
    vmc_info_t in;
    if ((r = vmc_info(near.v, &in))) die_vmc("vmc_info", r);
    near.near = 1;
    near.img_lo = in.reach_lo;
    near.img_hi = in.reach_hi;
    near.stubs.v = near.v;
    uintptr_t near_gap = gap((uintptr_t)in.code_base, (uintptr_t)in.code_base + in.code_size,
                             in.reach_lo, in.reach_hi);

    /* B: the same size of region, 64 GiB below the image. */
    uintptr_t far_base = ((in.reach_lo & ~(GiB - 1)) - 64 * GiB);
    char text[160];
    snprintf(text, sizeof text, "-no_near_app -vm_base %#lx -vm_max_offset 0", (unsigned long)far_base);
    vmc_options_init(&o);
    if ((r = vmc_options_parse(&o, text))) die_vmc("vmc_options_parse", r);
    setup_t far = {0};
    if ((r = vmc_open(&o, &far.v))) die_vmc("vmc_open (-no_near_app)", r);
    vmc_info_t fin;
    if ((r = vmc_info(far.v, &fin))) die_vmc("vmc_info", r);
    uintptr_t far_gap = gap((uintptr_t)fin.code_base, (uintptr_t)fin.code_base + fin.code_size,
                            in.reach_lo, in.reach_hi);
    if (far_gap <= 4 * GiB) die("%s: the far region landed within 4 GiB of the program", text);
    far.stubs.v = far.v;

    static const size_t lens[NLEN] = {64, 4096, 65536};
    int *seq[NLEN];
    chain_t ch[NLEN][NVAR];
    bench_rng_t rng = {0x7eac4b1d5eedull};
    size_t nsite_exec = 0, ncall_exec = 0, insn_exec = 0, body_bytes = 0;
    for (int l = 0; l < NLEN; l++) {
        size_t n = lens[l];
        seq[l] = malloc(n * sizeof *seq[l]);
        if (!seq[l]) die("%s: out of memory", "malloc");
        for (size_t i = 0; i < n; i++) seq[l][i] = (int)(bench_rand(&rng) % NTPL);
        ch[l][VA] = build_chain(&near, VA, seq[l], n);
        ch[l][VB] = build_chain(&far, VB, seq[l], n);
        ch[l][VC] = build_chain(&near, VC, seq[l], n);
        if (l == NLEN - 1) {
            for (size_t i = 0; i < n; i++) {
                int t = seq[l][i];
                body_bytes += (size_t)reach_body_len[t];
                insn_exec += (size_t)tpl_insns[t];
                for (int s = first_site[t]; s < first_site[t + 1]; s++)
                    *(sites[s].kind == SITE_CALL ? &ncall_exec : &nsite_exec) += 1;
            }
        }
    }

    /* Correctness, before any timing: the program's own functions in chain
     * order give the expected globals. */
    const int passes = 3;
    for (int l = 0; l < NLEN; l++) {
        uint64_t want[NSTATE];
        running = "running the program's own blocks";
        app_reset();
        for (int p = 0; p < passes; p++)
            for (size_t i = 0; i < lens[l]; i++) app_block[seq[l][i]]();
        app_state(want);
        for (int v = 0; v < NVAR; v++) check(&ch[l][v], v, lens[l], want, passes);
    }

    /* Timing: every variant at every length in each round, order rotated. */
    int rounds = quick ? 5 : 101;
    size_t per_sample = quick ? 20000 : 200000;
    double *ns[NLEN][NVAR], *ratio[NLEN][NVAR];
    for (int l = 0; l < NLEN; l++)
        for (int v = 0; v < NVAR; v++) {
            ns[l][v] = calloc((size_t)rounds, sizeof(double));
            ratio[l][v] = calloc((size_t)rounds, sizeof(double));
            if (!ns[l][v] || !ratio[l][v]) die("%s: out of memory", "calloc");
        }
    uint64_t t_start = bench_now_ns();
    for (int rd = 0; rd < rounds; rd++) {
        for (int l = 0; l < NLEN; l++) {
            size_t reps = per_sample / lens[l] ? per_sample / lens[l] : 1;
            for (int k = 0; k < NVAR; k++) {
                int v = (rd + k) % NVAR;
                running = var_name[v];
                ch[l][v].entry();               /* warm */
                ns[l][v][rd] = ns_per_block(&ch[l][v], reps, lens[l]);
            }
            for (int v = 0; v < NVAR; v++) ratio[l][v][rd] = ns[l][v][rd] / ns[l][VA][rd];
        }
    }
    double secs = (double)(bench_now_ns() - t_start) / 1e9;
    running = "reporting";

    size_t nlast = lens[NLEN - 1];
    double per_site = (double)nsite_exec / (double)nlast, per_call = (double)ncall_exec / (double)nlast;
    double per_insn = (double)insn_exec / (double)nlast;
    printf("## What reach buys: a translator's blocks next to the program or far from it (issue 14)\n\n");
    printf("Blocks of this program's own code (six straight-line functions written in assembly, "
           "so the place of every rip-relative operand is known) are copied into the code region "
           "as a binary translator would, chained (each ends in `jmp rel32` to the next), laid "
           "out in the order they run, and run: one execution of a chain runs every block once. "
           "Per block, on average: %.1f instructions, of which %.1f have a rip-relative operand "
           "(load, store, read-modify-write or `lea` of the program's globals) and %.1f are calls "
           "to the program's functions.\n\n",
           per_insn, per_site, per_call);
    char where[64] = "adjacent to its image";
    if (near_gap)
        snprintf(where, sizeof where, "%s %.0f %s of its image",
                 (uintptr_t)in.code_base < in.reach_lo ? "ending" : "starting",
                 (double)near_gap / (near_gap < (1u << 20) ? 1024.0 : 1048576.0),
                 near_gap < (1u << 20) ? "KiB short" : "MiB short");
    printf("- **A**: default options: vmcode placed the region next to the program (%s); "
           "blocks copied as they are, every rel32 displacement adjusted "
           "(`vmc_alloc_reaching` keeps them within reach of the image).\n",
           where);
    printf("- **B**: `%s`: the region %.0f GiB from the image, nothing in it reaches the "
           "program. Each rip-relative operand is rewritten as translators do: spill r11 to a "
           "thread-local slot (`%%fs:`), `movabs` the absolute address into r11, the same "
           "instruction on `[r11]`, reload r11; a `lea` becomes one `movabs`; each call becomes "
           "`movabs r11, target; call r11`.\n",
           text, (double)far_gap / (double)GiB);
    printf("- **C**: A's code with every call going through a `vmc_stub` in the region "
           "(`jmp [rip]` and the 8-byte target).\n\n");
    printf("Before timing, each variant's chains ran %d times from the same starting values "
           "and left the globals exactly as the program's own functions, called in the same "
           "order, leave them. Median over %d rounds; each round times every variant at every "
           "length (order rotated), about %zu block executions per sample; ratios are medians of "
           "the per-round ratios.\n\n",
           passes, rounds, per_sample);
    printf("| blocks in the chain | code, A | ns per block, A | B | C | A : B : C |\n");
    printf("|---:|---:|---:|---:|---:|---|\n");
    double med[NLEN][NVAR], rmed[NLEN][NVAR];
    for (int l = 0; l < NLEN; l++) {
        for (int v = 0; v < NVAR; v++) {
            med[l][v] = bench_median(ns[l][v], (size_t)rounds);
            rmed[l][v] = bench_median(ratio[l][v], (size_t)rounds);
        }
        double kib = (double)ch[l][VA].bytes / 1024.0;
        printf("| %zu | %.*f KiB | %.2f | %.2f | %.2f | 1 : **%.2f** : **%.2f** |\n", lens[l],
               kib < 10 ? 1 : 0, kib, med[l][VA], med[l][VB], med[l][VC], rmed[l][VB], rmed[l][VC]);
    }
    size_t stub_bytes = (size_t)near.stubs.n * 16;
    double a_b = (double)ch[NLEN - 1][VA].bytes / (double)nlast;
    double b_b = (double)ch[NLEN - 1][VB].bytes / (double)nlast;
    printf("\nCode size, bytes per block (mean over the %zu-block chain; the jump to the next block "
           "included):\n\n",
           nlast);
    printf("| | bytes per block | ÷ A |\n|---|---:|---:|\n");
    printf("| the program's own code (the function bodies) | %.1f | %.2f |\n",
           (double)body_bytes / (double)nlast, (double)body_bytes / (double)ch[NLEN - 1][VA].bytes);
    printf("| A | %.1f | 1.00 |\n", a_b);
    printf("| B | %.1f | **%.2f** |\n", b_b, b_b / a_b);
    printf("| C | %.1f, plus %zu bytes of stubs in all (%d targets) | 1.00 |\n\n", a_b, stub_bytes,
           near.stubs.n);

    printf("What the numbers mean. In the %zu-block chain (%.1f KiB, all of it in the first-level "
           "caches) B takes %.2f ns more per block than A: %.2f ns per rewritten operand, the cost of "
           "two more memory accesses, a `movabs` and 24 or 25 more bytes of code to fetch "
           "and decode for each. C takes %.2f ns more per call than A's direct `call rel32`: the "
           "stub's indirect jump. These blocks are dense (%.0f %% of their instructions touch a "
           "global), so B's ratio is an upper end: in code with fewer such operands per block it "
           "shrinks in proportion, at about the cost per operand above. The longer chains add the "
           "cost of fetching code from further away, and B has %.1f times as much of it: at %zu "
           "blocks B takes %.2f times A's time. A translator can skip the spill for a plain load "
           "into a register (the destination can hold the address); stores and "
           "read-modify-writes need it. C is the cost vmcode leaves for a call whose target is out "
           "of rel32 reach (a helper far from the region); next to the program, calls need no "
           "stub.\n\n",
           lens[0], (double)ch[0][VA].bytes / 1024.0, med[0][VB] - med[0][VA],
           (med[0][VB] - med[0][VA]) / per_site, (med[0][VC] - med[0][VA]) / per_call,
           100.0 * per_site / per_insn, b_b / a_b, nlast, rmed[NLEN - 1][VB]);
    fprintf(stderr, "bench_reach: timing took %.1f s\n", secs);

    for (int l = 0; l < NLEN; l++) {
        free(seq[l]);
        for (int v = 0; v < NVAR; v++) {
            free(ns[l][v]);
            free(ratio[l][v]);
        }
    }
    vmc_close(far.v);
    vmc_close(near.v);
    return 0;
}
