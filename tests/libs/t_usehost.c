/* Calls host functions that the program interposes (malloc_trim) or that
 * are IFUNCs in the C library (strlen, memcpy). */
#include <malloc.h>
#include <string.h>
int t_trim(void) { return malloc_trim(0); }
size_t t_strlen(const char *s) { return strlen(s); }
void *t_memcpy(void *d, const void *s, size_t n) { return memcpy(d, s, n); }
