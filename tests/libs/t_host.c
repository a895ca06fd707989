/* Calls back into the host program (linked with -rdynamic). */
extern int vt_host_add(int a, int b);
int t_host_call(int a, int b) { return 2 * vt_host_add(a, b); }
