/* A writable segment larger than the loader reads with pread (64 KiB of
 * file pages): an initialized table of 96 KiB, pointers into it that need
 * relocating, and bss. */
#include <stddef.h>

#define N (24 * 1024)
int t_table[N] = {1, 2, 3, [N - 1] = 77};
int *t_table_ends[2] = {&t_table[0], &t_table[N - 1]};
char t_big_bss[5000];

long t_table_sum(void)
{
    long s = 0;
    for (size_t i = 0; i < N; i++) s += t_table[i];
    for (size_t i = 0; i < sizeof t_big_bss; i++) s += t_big_bss[i];
    return s;
}
int t_table_end(int which) { return *t_table_ends[which]; }
