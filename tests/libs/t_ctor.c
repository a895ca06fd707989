/* Constructors and destructors of every kind, logged through the host. */
extern void vt_lib_log(const char *what);
__attribute__((constructor(101))) static void c101(void) { vt_lib_log("ctor101"); }
__attribute__((constructor(102))) static void c102(void) { vt_lib_log("ctor102"); }
__attribute__((constructor)) static void cdef(void) { vt_lib_log("ctor"); }
__attribute__((destructor(101))) static void d101(void) { vt_lib_log("dtor101"); }
__attribute__((destructor(102))) static void d102(void) { vt_lib_log("dtor102"); }
__attribute__((destructor)) static void ddef(void) { vt_lib_log("dtor"); }
void t_ctor_init(void) { vt_lib_log("init"); }
void t_ctor_fini(void) { vt_lib_log("fini"); }
