/* Needs libt_tlsdep.so, found next to it but not loadable privately. */
extern int t_tls_next(void);
int t_usetls(void) { return t_tls_next(); }
void *t_usetls_dep_addr(void) { return (void *)&t_tls_next; }
