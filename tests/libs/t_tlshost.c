/* TLS variables of the host: glibc's errno (the variable itself, not
 * __errno_location) and the test program's own vt_host_tls.  Built with the
 * default dialect, with TLS descriptors and initial-exec (tests/libs.mk). */
extern __thread int errno;
extern __thread int vt_host_tls;

int *t_tlshost_errno_addr(void) { return &errno; }
void t_tlshost_set_errno(int e) { errno = e; }
int *t_tlshost_var_addr(void) { return &vt_host_tls; }
int t_tlshost_var_bump(void) { return ++vt_host_tls; }
