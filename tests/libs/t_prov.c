/* Provides t_provided() to the host's global scope (dlopen RTLD_GLOBAL), for
 * libt_consumer.so to bind to. */
int t_provided(void) { return 42; }
