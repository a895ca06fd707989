/* A library whose private dependency (libt_basic.so) loads, and which then
 * fails: it calls a function nothing defines. */
int t_add(int, int);
int t_nothing_defines_this(void);
int t_faildep(void) { return t_add(1, 2) + t_nothing_defines_this(); }
