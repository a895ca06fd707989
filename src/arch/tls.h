/* The instruction set's side of thread-local storage: the thread pointer,
 * and the code of the TLS descriptor resolvers (x86_64_tls.c), which must
 * be written in assembly since they may clobber no register.
 *
 * The dynamic resolver reads the per-thread block table lib/tls.c defines
 * (vmc__tls_blocks, vmc__tls_nblocks, initial-exec) and calls its
 * vmc__tls_slow on a thread's first access: those names are the contract
 * between the two files, declared in lib/tls.h and reached here only by
 * the assembler, so the arrow of the includes still points down. */
#ifndef VMC_ARCH_TLS_H
#define VMC_ARCH_TLS_H
#include <stdint.h>

/* The thread pointer: the address the TLS offsets count from. */
static inline uintptr_t vmc__arch_tp(void)
{
    uintptr_t tp;
#if defined(__x86_64__)
    __asm__("mov %%fs:0, %0" : "=r"(tp));   /* the TCB's first word points at itself */
#else
#error "vmcode: this architecture is not supported yet (see docs/design.md, AArch64)"
#endif
    return tp;
}

/* The descriptor resolvers (not C functions: their own calling rule, see
 * x86_64_tls.c).  _static: the argument is the offset from the thread
 * pointer.  _dyn: the argument is slot << 44 | offset into the slot's
 * block of lib/tls.c's table. */
extern char vmc__arch_tlsdesc_static[], vmc__arch_tlsdesc_dyn[];
/* Size the dynamic resolver's save area for the extended state the
 * processor and system enabled (CPUID); once, before any descriptor can
 * point at it. */
void vmc__arch_tlsdesc_init(void);
#endif
