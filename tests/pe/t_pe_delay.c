/* A PE test DLL importing t_pe_dep.dll's functions through the delay-load
 * directory (linked with dlltool's delay import library), t_pe_basic.dll's
 * t_secret by ordinal only and t_add by name, and kernel32 as usual. */
#include <windows.h>

int t_dep_value(int x);
int t_dep_other(void);
int t_secret(void);
int t_add(int a, int b);

__declspec(dllexport) int t_delay_call(int x) { return t_dep_value(x) + t_dep_other(); }
__declspec(dllexport) int t_delay_secret(void) { return t_add(t_secret(), 1); }
__declspec(dllexport) DWORD t_delay_pid(void) { return GetCurrentProcessId(); }
