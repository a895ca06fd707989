/* A PE test DLL built with Control Flow Guard (tests/pe/pe.mk: clang's
 * -cfguard, lld-link's /guard:cf): IMAGE_DLLCHARACTERISTICS_GUARD_CF, a
 * load config naming the guard slots and the table of valid targets, and
 * indirect calls made through __guard_dispatch_icall_fptr (x86-64's form:
 * the target in rax, the slot's function checks it and jumps to it).
 * MinGW-w64's CRT of Debian 12 has no load config and no default guard
 * functions, so this file has its own, as MSVC's CRT has: a dispatch that
 * counts its calls and jumps, a check that returns.  Whoever loads the DLL
 * may point the slots at a check of its own; the counter says whether the
 * DLL's default is still the one called. */
#include <windows.h>

typedef int (*fn_t)(int);
static int twice(int x) { return 2 * x; }
static int thrice(int x) { return 3 * x; }
/* volatile: the compiler must call through the table, not inline */
volatile fn_t t_cfg_table[2] = {twice, thrice};
__declspec(dllexport) volatile int t_cfg_dispatches;

__declspec(dllexport) int t_cfg_call(int i, int x) { return t_cfg_table[i & 1](x); }

void t_cfg_dispatch(void);
void t_cfg_check(void);
__asm__(".text\n"
        ".globl t_cfg_dispatch\n"
        "t_cfg_dispatch:\n"
        "    lock incl t_cfg_dispatches(%rip)\n"
        "    jmp *%rax\n"
        ".globl t_cfg_check\n"
        "t_cfg_check:\n"
        "    ret\n");

/* The slots, in .00cfg as MSVC's CRT puts them. */
void *const __guard_check_icall_fptr __attribute__((section(".00cfg"))) = (void *)t_cfg_check;
void *const __guard_dispatch_icall_fptr __attribute__((section(".00cfg"))) = (void *)t_cfg_dispatch;
__declspec(dllexport) void *t_cfg_dispatch_slot(void) { return (void *)&__guard_dispatch_icall_fptr; }
__declspec(dllexport) void *t_cfg_dispatch_default(void) { return (void *)t_cfg_dispatch; }

/* IMAGE_LOAD_CONFIG_DIRECTORY64 up to GuardFlags (0x94 bytes): the
 * linker's symbols __guard_fids_table, __guard_fids_count and
 * __guard_flags are values, not addresses (the last one 32 bits), which C
 * cannot say in an initialiser. */
__asm__(".section .rdata,\"dr\"\n"
        ".globl _load_config_used\n"
        ".p2align 3\n"
        "_load_config_used:\n"
        "    .long 0x94\n"                           /* Size */
        "    .fill 0x6c, 1, 0\n"                     /* up to GuardCFCheckFunctionPointer */
        "    .quad __guard_check_icall_fptr\n"
        "    .quad __guard_dispatch_icall_fptr\n"
        "    .quad __guard_fids_table\n"
        "    .quad __guard_fids_count\n"
        "    .long __guard_flags\n");
