/* Uses thread-local storage: refused by the private loader, so when it is a
 * dependency it goes to the system loader instead. */
static __thread int counter = 41;
int t_tls_next(void) { return ++counter; }
