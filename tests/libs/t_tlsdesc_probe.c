/* A TLS descriptor call made between vector computations: every vector
 * register (ymm0-15) and the general registers a descriptor call must
 * preserve are loaded with known values, t_tls_int's descriptor is called,
 * and all of them are stored back for the test to compare.  Built with
 * -mtls-dialect=gnu2 beside t_tls.c's variables. */
#include <stdint.h>

__thread int t_probe_var = 1234;
/* too large a block for static TLS: the descriptors take the dynamic path */
__thread char t_probe_pad[512];
char *t_probe_pad_addr(void) { return t_probe_pad; }

/* t_tlsdesc_probe(in, out): in holds 16 x 32 bytes for ymm0-15 and 8
 * words for rcx, rdx, rsi, rdi, r8-r11... (8 of them: rcx rdx rsi rdi r8 r9
 * r10 r11); out receives the same after the call; returns the offset the
 * descriptor gave. */
long t_tlsdesc_probe(const void *in, void *out);
__asm__(
    "    .text\n"
    "    .globl t_tlsdesc_probe\n"
    "    .type t_tlsdesc_probe, @function\n"
    "t_tlsdesc_probe:\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %rbx\n"
    "    movq %rdi, %r12\n"
    "    movq %rsi, %r13\n"
    "    vmovdqu 0(%r12), %ymm0\n"
    "    vmovdqu 32(%r12), %ymm1\n"
    "    vmovdqu 64(%r12), %ymm2\n"
    "    vmovdqu 96(%r12), %ymm3\n"
    "    vmovdqu 128(%r12), %ymm4\n"
    "    vmovdqu 160(%r12), %ymm5\n"
    "    vmovdqu 192(%r12), %ymm6\n"
    "    vmovdqu 224(%r12), %ymm7\n"
    "    vmovdqu 256(%r12), %ymm8\n"
    "    vmovdqu 288(%r12), %ymm9\n"
    "    vmovdqu 320(%r12), %ymm10\n"
    "    vmovdqu 352(%r12), %ymm11\n"
    "    vmovdqu 384(%r12), %ymm12\n"
    "    vmovdqu 416(%r12), %ymm13\n"
    "    vmovdqu 448(%r12), %ymm14\n"
    "    vmovdqu 480(%r12), %ymm15\n"
    "    movq 512(%r12), %rcx\n"
    "    movq 520(%r12), %rdx\n"
    "    movq 528(%r12), %rsi\n"
    "    movq 536(%r12), %rdi\n"
    "    movq 544(%r12), %r8\n"
    "    movq 552(%r12), %r9\n"
    "    movq 560(%r12), %r10\n"
    "    movq 568(%r12), %r11\n"
    "    leaq t_probe_var@tlsdesc(%rip), %rax\n"
    "    call *t_probe_var@tlscall(%rax)\n"
    "    movq %rax, %rbx\n"
    "    vmovdqu %ymm0, 0(%r13)\n"
    "    vmovdqu %ymm1, 32(%r13)\n"
    "    vmovdqu %ymm2, 64(%r13)\n"
    "    vmovdqu %ymm3, 96(%r13)\n"
    "    vmovdqu %ymm4, 128(%r13)\n"
    "    vmovdqu %ymm5, 160(%r13)\n"
    "    vmovdqu %ymm6, 192(%r13)\n"
    "    vmovdqu %ymm7, 224(%r13)\n"
    "    vmovdqu %ymm8, 256(%r13)\n"
    "    vmovdqu %ymm9, 288(%r13)\n"
    "    vmovdqu %ymm10, 320(%r13)\n"
    "    vmovdqu %ymm11, 352(%r13)\n"
    "    vmovdqu %ymm12, 384(%r13)\n"
    "    vmovdqu %ymm13, 416(%r13)\n"
    "    vmovdqu %ymm14, 448(%r13)\n"
    "    vmovdqu %ymm15, 480(%r13)\n"
    "    movq %rcx, 512(%r13)\n"
    "    movq %rdx, 520(%r13)\n"
    "    movq %rsi, 528(%r13)\n"
    "    movq %rdi, 536(%r13)\n"
    "    movq %r8, 544(%r13)\n"
    "    movq %r9, 552(%r13)\n"
    "    movq %r10, 560(%r13)\n"
    "    movq %r11, 568(%r13)\n"
    "    vzeroupper\n"
    "    movq %rbx, %rax\n"
    "    popq %rbx\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    ret\n"
    "    .size t_tlsdesc_probe, .-t_tlsdesc_probe\n");

int *t_probe_var_addr(void) { return &t_probe_var; }
