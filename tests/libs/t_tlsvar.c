/* A TLS variable in a library the test opens with dlopen (RTLD_GLOBAL): the
 * host's, in dynamic (not static) TLS. */
__thread int t_tlsvar = 99;
int *t_tlsvar_addr(void) { return &t_tlsvar; }
