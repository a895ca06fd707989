/* A PE test DLL with implicit thread-local data, as a compiler with native
 * TLS makes it (__declspec(thread)): a variable in a .tls$ section, which
 * GNU ld sorts between MinGW's _tls_start (.tls) and _tls_end (.tls$ZZZ),
 * the template the TLS directory spans, read through the thread's
 * ThreadLocalStoragePointer[_tls_index].  The private loader refuses it
 * (-ENOTSUP); the system loader gives every thread a copy. */
#include <windows.h>

extern char _tls_start;
extern ULONG _tls_index;
__attribute__((section(".tls$"))) int t_tls_value = 1234;

__declspec(dllexport) int t_tls_get(void)
{
    char **slots;
    __asm__("movq %%gs:0x58, %0" : "=r"(slots));  /* TEB.ThreadLocalStoragePointer */
    return *(int *)(slots[_tls_index] + ((char *)&t_tls_value - &_tls_start));
}
