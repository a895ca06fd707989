/* The end of a chain of two private libraries. */
extern void vt_lib_log(const char *what);
__attribute__((constructor)) static void ctor(void) { vt_lib_log("b+"); }
__attribute__((destructor)) static void dtor(void) { vt_lib_log("b-"); }
int t_b_value(void) { return 40; }
