/* IFUNC: a symbol resolved by a resolver, called internally and exported,
 * and a hidden one (R_X86_64_IRELATIVE). */
static int impl_a(void) { return 1; }
static int impl_b(void) { return 2; }
static volatile int choose_b = 1;

static int (*resolve_t_which(void))(void) { return choose_b ? impl_b : impl_a; }
int t_which(void) __attribute__((ifunc("resolve_t_which")));

int (*t_which_ptr)(void) = t_which;
int t_call_which(void) { return t_which(); }

/* A hidden IFUNC: bound inside the library, so the linker emits
 * R_X86_64_IRELATIVE for it. */
static int (*resolve_hidden(void))(void) { return choose_b ? impl_a : impl_b; }
__attribute__((visibility("hidden"))) int t_hidden_which(void) __attribute__((ifunc("resolve_hidden")));
int (*t_hidden_ptr)(void) = t_hidden_which;
int t_call_hidden(void) { return t_hidden_which(); }
