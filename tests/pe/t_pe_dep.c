/* A PE test DLL that t_pe_delay.dll imports from through its delay-load
 * directory. */
__declspec(dllexport) int t_dep_value(int x) { return x * 3; }
__declspec(dllexport) int t_dep_other(void) { return 7; }
