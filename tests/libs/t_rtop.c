/* The top of a chain: it needs libt_rmid.so (in sub/, no search path of its
 * own), which needs libt_rleaf.so (in sub2/): only this library's DT_RPATH
 * names sub2, so the system loader finds the leaf through the DT_RPATH of
 * the library that loaded the middle one, and not through a DT_RUNPATH. */
int t_rmid(void);
int t_rtop(void) { return t_rmid() + 100; }
