/* Needs libt_chain_b.so, found next to it. */
extern void vt_lib_log(const char *what);
extern int t_b_value(void);
__attribute__((constructor)) static void ctor(void) { vt_lib_log("a+"); }
__attribute__((destructor)) static void dtor(void) { vt_lib_log("a-"); }
int t_a_value(void) { return t_b_value() + 2; }
void *t_a_b_addr(void) { return (void *)&t_b_value; }
