/* Asks for an executable stack (built -z execstack), which the private
 * loader refuses and the system loader grants: when it is a dependency it
 * goes to the system loader instead.  It has thread-local storage too. */
static __thread int counter = 41;
int t_tls_next(void) { return ++counter; }
