/* A PE test DLL: exports by name (functions and data) and by ordinal only
 * (t_pe_basic.def), imports from kernel32 and msvcrt, pointers in data
 * (base relocations), a forwarded export, DllMain counting its calls. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__declspec(dllexport) int t_counter = 5;
static int *t_ptr = &t_counter;
static const char *const t_names[] = {"zero", "one", "two"};
__declspec(dllexport) int t_attach;

__declspec(dllexport) int t_add(int a, int b) { return a + b; }
__declspec(dllexport) int *t_get(void) { return t_ptr; }
__declspec(dllexport) const char *t_name(int i) { return i >= 0 && i < 3 ? t_names[i] : NULL; }
__declspec(dllexport) DWORD t_tick(void) { return GetTickCount(); }
__declspec(dllexport) int t_fmt(char *b, size_t n, int v) { return snprintf(b, n, "%d", v); }
__declspec(dllexport) char *t_dup(const char *s)
{
    char *d = malloc(strlen(s) + 1);
    return d ? strcpy(d, s) : NULL;
}
/* exported by ordinal only (NONAME in the .def) */
int t_secret(void) { return 42; }

BOOL WINAPI DllMain(HINSTANCE h, DWORD reason, LPVOID reserved)
{
    (void)h;
    (void)reserved;
    if (reason == DLL_PROCESS_ATTACH) t_attach++;
    return TRUE;
}
