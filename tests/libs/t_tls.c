/* Thread-local variables of every kind a library has: exported and
 * initialised (.tdata), a structure with an initialiser, a local one in
 * .tbss (local-dynamic), a 64-byte aligned block, and a pointer in .tdata
 * that needs a relocation.  Built three ways (tests/libs.mk): the default
 * -fPIC dialect (general/local dynamic, __tls_get_addr), TLS descriptors
 * (-mtls-dialect=gnu2) and initial-exec, with T_TLS_BIG bytes in the aligned
 * block. */
#include <stdint.h>

#ifndef T_TLS_BIG
#define T_TLS_BIG 8192
#endif

__thread int t_tls_int = 5;
__thread struct t_tls_pair {
    int a;
    char s[12];
} t_tls_pair = {7, "hello"};
static __thread int t_tls_local;
_Alignas(64) __thread char t_tls_big[T_TLS_BIG];
static int t_tls_target;
__thread int *t_tls_ptr = &t_tls_target;

int *t_tls_int_addr(void) { return &t_tls_int; }
int t_tls_get(void) { return t_tls_int; }
int t_tls_bump(void) { return ++t_tls_int; }
int t_tls_local_bump(void) { return ++t_tls_local; }
int t_tls_pair_a(void) { return t_tls_pair.a; }
const char *t_tls_pair_s(void) { return t_tls_pair.s; }
char *t_tls_big_addr(void) { return t_tls_big; }
/* the block's size seen from inside: nonzero bytes of t_tls_big (all zero at start) */
int t_tls_big_dirty(void)
{
    int n = 0;
    for (unsigned i = 0; i < sizeof t_tls_big; i++) n += t_tls_big[i] != 0;
    return n;
}
int t_tls_ptr_ok(void) { return t_tls_ptr == &t_tls_target; }
