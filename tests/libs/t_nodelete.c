/* Linked with -z nodelete: stays loaded after its last unload. */
extern void vt_lib_log(const char *what);
__attribute__((constructor)) static void ctor(void) { vt_lib_log("nodelete+"); }
__attribute__((destructor)) static void dtor(void) { vt_lib_log("nodelete-"); }
int t_nodelete_value(void) { return 7; }
