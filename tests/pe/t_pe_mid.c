/* A PE test DLL between t_pe_chain.dll and t_pe_basic.dll: it imports
 * t_add from t_pe_basic.dll (beside it: loaded privately), forwards
 * t_fwd_add to it (t_pe_mid.def), and logs DllMain's calls in the
 * environment variable VMC_PE_ORDER, for the order test. */
#include <windows.h>

int t_add(int a, int b);

__declspec(dllexport) int t_mid(int x) { return t_add(x, 10); }

void t_pe_log(const char *what)
{
    char buf[512] = "";
    DWORD n = GetEnvironmentVariableA("VMC_PE_ORDER", buf, sizeof buf - 64);
    if (n >= sizeof buf - 64) n = 0;
    lstrcpyA(buf + n, what);
    SetEnvironmentVariableA("VMC_PE_ORDER", buf);
}

BOOL WINAPI DllMain(HINSTANCE h, DWORD reason, LPVOID reserved)
{
    (void)h, (void)reserved;
    if (reason == DLL_PROCESS_ATTACH) t_pe_log("mid+ ");
    if (reason == DLL_PROCESS_DETACH) t_pe_log("mid- ");
    return TRUE;
}
