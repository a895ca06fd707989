/* Reads a TLS variable of its private dependency libt_tls.so. */
extern __thread int t_tls_int;
int *t_tlsuse_addr(void) { return &t_tls_int; }
int t_tlsuse_bump(void) { return ++t_tls_int; }
