/* Reaches libt_tlsvar.so's variable, which the host loaded with dlopen. */
extern __thread int t_tlsvar;
int *t_tlsdyn_addr(void) { return &t_tlsvar; }
int t_tlsdyn_bump(void) { return ++t_tlsvar; }
