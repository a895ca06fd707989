/* Calls a function of the program that loads it (tests/libs/t_nordynamic.c),
 * which the program exports only when linked with -rdynamic. */
int t_host_value(void);
int t_needhost(void) { return t_host_value() + 1; }
