/* A small library: data, pointers (RELATIVE), host calls (versioned
 * GLOB_DAT/JUMP_SLOT), bss over more than a page. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

int t_counter = 5;
int *t_counter_ptr = &t_counter;
static const char *const names[] = {"zero", "one", "two"};
char t_bss[3 * 4096 + 100];

int t_add(int a, int b) { return a + b; }
const char *t_name(int i) { return i >= 0 && i < 3 ? names[i] : NULL; }
int t_get_counter(void) { return *t_counter_ptr; }
size_t t_strlen(const char *s) { return strlen(s); }
void *t_memcpy_addr(void) { return (void *)&memcpy; }
/* getloadavg@GLIBC_2.2.5, which the test program interposes unversioned */
int t_loadavg(void)
{
    double d[1];
    return getloadavg(d, 1);
}
int t_bss_sum(void)
{
    int s = 0;
    for (size_t i = 0; i < sizeof t_bss; i++) s += t_bss[i];
    t_bss[sizeof t_bss - 1] = 1;
    return s;
}
