/* Two PE test DLLs that import from each other (t_pe_ping.dll and
 * t_pe_pong.dll, built from this file with -DPONG): each one's function
 * calls the other's until n reaches 0. */
#ifdef PONG
int t_ping(int n);
__declspec(dllexport) int t_pong(int n) { return n > 0 ? t_ping(n - 1) + 100 : 0; }
#else
int t_pong(int n);
__declspec(dllexport) int t_ping(int n) { return n > 0 ? t_pong(n - 1) + 1 : 0; }
#endif
