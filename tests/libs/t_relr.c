/* Many pointers in data: with -z pack-relative-relocs they become DT_RELR. */
static int vals[64];
#define P8(i) &vals[i], &vals[i + 1], &vals[i + 2], &vals[i + 3], &vals[i + 4], &vals[i + 5], \
    &vals[i + 6], &vals[i + 7]
int *t_ptrs[64] = {P8(0), P8(8), P8(16), P8(24), P8(32), P8(40), P8(48), P8(56)};
int *t_far = &vals[5];
int t_relr_check(void)
{
    for (int i = 0; i < 64; i++)
        if (t_ptrs[i] != &vals[i]) return 0;
    return t_far == &vals[5];
}
