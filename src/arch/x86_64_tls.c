/* x86-64's TLS descriptor resolvers (R_X86_64_TLSDESC, -mtls-dialect=gnu2),
 * declared in arch/tls.h; the table they read is lib/tls.c's.
 *
 * Code compiled for descriptors loads the descriptor's address into %rax and
 * calls its first word; the function returns in %rax the variable's address
 * minus the thread pointer and must preserve every other register, vector,
 * x87 and mask state included (the caller saved nothing: that is the point
 * of the dialect).  Two resolvers:
 *
 *   vmc__arch_tlsdesc_static  the argument is the offset itself (a host
 *                        variable in static TLS): one load.
 *   vmc__arch_tlsdesc_dyn  the argument is slot << 44 | offset: the fast path
 *                        reads this thread's block table as vmc__tls_get_addr
 *                        does, with two scratch registers pushed and popped;
 *                        the first access in a thread calls vmc__tls_slow
 *                        (C: a lock, malloc), which may use any caller-saved
 *                        register, vector ones included, so that path saves
 *                        the general caller-saved registers and the whole
 *                        extended state with XSAVEC (else XSAVE, else
 *                        FXSAVE), in a stack area sized once from CPUID leaf
 *                        0xD for the features the OS enabled.
 */
#include "arch/tls.h"

#include <cpuid.h>
#include <stdint.h>

/* Set by vmc__arch_tlsdesc_init before any descriptor can point at the resolver. */
__attribute__((visibility("hidden"))) uint64_t vmc__tls_xsave_size = 512 + 64;
__attribute__((visibility("hidden"))) uint32_t vmc__tls_xsave_mode;   /* 0 fxsave, 1 xsave, 2 xsavec */

void vmc__arch_tlsdesc_init(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return;  /* FXSAVE: 512 bytes */
    unsigned size0 = 0, size1 = 0;
    if (__get_cpuid_count(0xd, 0, &a, &b, &c, &d)) size0 = b;  /* standard layout, XCR0's features */
    if (!size0) return;
    uint32_t mode = 1;
    if (__get_cpuid_count(0xd, 1, &a, &b, &c, &d) && (a & 2)) {
        mode = 2;
        size1 = b;                             /* compacted, XCR0 | IA32_XSS: an upper bound */
    }
    uint64_t size = size0 > size1 ? size0 : size1;
    __atomic_store_n(&vmc__tls_xsave_size, size + 64, __ATOMIC_RELAXED);
    __atomic_store_n(&vmc__tls_xsave_mode, mode, __ATOMIC_RELAXED);
}

__asm__(
    "    .text\n"
    "    .p2align 4\n"
    "    .globl vmc__arch_tlsdesc_static\n"
    "    .hidden vmc__arch_tlsdesc_static\n"
    "    .type vmc__arch_tlsdesc_static, @function\n"
    "vmc__arch_tlsdesc_static:\n"
    "    .cfi_startproc\n"
    "    endbr64\n"
    "    movq 8(%rax), %rax\n"
    "    ret\n"
    "    .cfi_endproc\n"
    "    .size vmc__arch_tlsdesc_static, .-vmc__arch_tlsdesc_static\n"
    "\n"
    "    .p2align 4\n"
    "    .globl vmc__arch_tlsdesc_dyn\n"
    "    .hidden vmc__arch_tlsdesc_dyn\n"
    "    .type vmc__arch_tlsdesc_dyn, @function\n"
    "vmc__arch_tlsdesc_dyn:\n"
    "    .cfi_startproc\n"
    "    endbr64\n"
    "    movq 8(%rax), %rax\n"                      /* slot << 44 | offset */
    "    pushq %rcx\n"
    "    .cfi_adjust_cfa_offset 8\n"
    "    pushq %rdx\n"
    "    .cfi_adjust_cfa_offset 8\n"
    "    movq %rax, %rcx\n"
    "    shrq $44, %rcx\n"                          /* slot */
    "    movq vmc__tls_nblocks@gottpoff(%rip), %rdx\n"
    "    cmpq %fs:(%rdx), %rcx\n"
    "    jae 1f\n"
    "    movq vmc__tls_blocks@gottpoff(%rip), %rdx\n"
    "    movq %fs:(%rdx), %rdx\n"
    "    movq (%rdx,%rcx,8), %rdx\n"
    "    testq %rdx, %rdx\n"
    "    jz 1f\n"
    "    shlq $20, %rax\n"                          /* the offset: low 44 bits */
    "    shrq $20, %rax\n"
    "    addq %rdx, %rax\n"
    "    subq %fs:0, %rax\n"
    "    popq %rdx\n"
    "    .cfi_adjust_cfa_offset -8\n"
    "    popq %rcx\n"
    "    .cfi_adjust_cfa_offset -8\n"
    "    ret\n"
    "    .cfi_adjust_cfa_offset 16\n"
    "1:\n"                                          /* first access in this thread */
    "    pushq %rbp\n"
    "    .cfi_adjust_cfa_offset 8\n"
    "    .cfi_rel_offset %rbp, 0\n"
    "    movq %rsp, %rbp\n"
    "    .cfi_def_cfa_register %rbp\n"
    "    pushq %rbx\n"
    "    pushq %rsi\n"
    "    pushq %rdi\n"
    "    pushq %r8\n"
    "    pushq %r9\n"
    "    pushq %r10\n"
    "    pushq %r11\n"
    "    pushq %rax\n"                              /* -64(%rbp): the argument */
    "    movq %rcx, %rbx\n"                         /* the slot, kept across the call */
    "    subq vmc__tls_xsave_size(%rip), %rsp\n"
    "    andq $-64, %rsp\n"
    "    movl vmc__tls_xsave_mode(%rip), %esi\n"
    "    testl %esi, %esi\n"
    "    jz 3f\n"
    "    movq $0, 512(%rsp)\n"                      /* the XSAVE header starts zeroed */
    "    movq $0, 520(%rsp)\n"
    "    movq $0, 528(%rsp)\n"
    "    movq $0, 536(%rsp)\n"
    "    movq $0, 544(%rsp)\n"
    "    movq $0, 552(%rsp)\n"
    "    movq $0, 560(%rsp)\n"
    "    movq $0, 568(%rsp)\n"
    "    movl $-1, %eax\n"
    "    movl $-1, %edx\n"
    "    cmpl $2, %esi\n"
    "    jne 2f\n"
    "    xsavec64 (%rsp)\n"
    "    jmp 4f\n"
    "2:  xsave64 (%rsp)\n"
    "    jmp 4f\n"
    "3:  fxsave64 (%rsp)\n"
    "4:  movq %rbx, %rdi\n"
    "    call vmc__tls_slow\n"
    "    movq %rax, %rbx\n"                         /* the block */
    "    movl vmc__tls_xsave_mode(%rip), %esi\n"
    "    testl %esi, %esi\n"
    "    jz 5f\n"
    "    movl $-1, %eax\n"
    "    movl $-1, %edx\n"
    "    xrstor64 (%rsp)\n"
    "    jmp 6f\n"
    "5:  fxrstor64 (%rsp)\n"
    "6:  leaq -64(%rbp), %rsp\n"
    "    popq %rax\n"
    "    shlq $20, %rax\n"
    "    shrq $20, %rax\n"
    "    addq %rbx, %rax\n"
    "    subq %fs:0, %rax\n"
    "    popq %r11\n"
    "    popq %r10\n"
    "    popq %r9\n"
    "    popq %r8\n"
    "    popq %rdi\n"
    "    popq %rsi\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    .cfi_def_cfa %rsp, 24\n"
    "    .cfi_restore %rbp\n"
    "    popq %rdx\n"
    "    .cfi_adjust_cfa_offset -8\n"
    "    popq %rcx\n"
    "    .cfi_adjust_cfa_offset -8\n"
    "    ret\n"
    "    .cfi_endproc\n"
    "    .size vmc__arch_tlsdesc_dyn, .-vmc__arch_tlsdesc_dyn\n");

