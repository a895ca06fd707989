/* Needs libt_rdep.so, which is not beside it: built with DT_RPATH or
 * DT_RUNPATH $ORIGIN/sub (or a path with $LIB and $PLATFORM). */
int t_rdep_value(void);
int t_ruser(void) { return t_rdep_value(); }
