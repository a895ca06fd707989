/* Exported, hidden and static code for vmc_addr_info. */
int t_addr_data[4] = {1, 2, 3, 4};

__attribute__((noinline)) static int helper(int x) { return x * 7 + t_addr_data[x & 3]; }
__attribute__((noinline, visibility("hidden"))) int t_addr_hidden(int x) { return helper(x) + 1; }

int t_addr_fn(int x) { return t_addr_hidden(x) * 3; }
void *t_addr_static(void) { return (void *)helper; }
void *t_addr_hidden_addr(void) { return (void *)t_addr_hidden; }
