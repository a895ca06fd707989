/* IFUNC: a symbol resolved by a resolver, called internally and exported. */
static int impl_a(void) { return 1; }
static int impl_b(void) { return 2; }
static volatile int choose_b = 1;

static int (*resolve_t_which(void))(void) { return choose_b ? impl_b : impl_a; }
int t_which(void) __attribute__((ifunc("resolve_t_which")));

int (*t_which_ptr)(void) = t_which;
int t_call_which(void) { return t_which(); }
