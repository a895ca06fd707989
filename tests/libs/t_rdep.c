/* A dependency found only through a search path (DT_RPATH, DT_RUNPATH,
 * LD_LIBRARY_PATH): each copy in its own directory returns its own value. */
int t_rdep_value(void) { return T_RDEP_VALUE; }
