/* A PE test DLL at the top of a chain: it imports from t_pe_mid.dll, which
 * imports from t_pe_basic.dll; DllMain logs its calls after t_pe_mid's
 * (dependencies first) in VMC_PE_ORDER.  DllMain returns FALSE when
 * VMC_PE_REFUSE is set, for the test of a DLL that refuses to load. */
#include <windows.h>

int t_mid(int x);
int t_fwd_add(int a, int b);

__declspec(dllexport) int t_chain(int x) { return t_mid(x) + 1; }
__declspec(dllexport) int t_chain_fwd(int a, int b) { return t_fwd_add(a, b); }

static void log_it(const char *what)
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
    if (reason == DLL_PROCESS_ATTACH) {
        log_it("chain+ ");
        if (GetEnvironmentVariableA("VMC_PE_REFUSE", NULL, 0)) return FALSE;
    }
    if (reason == DLL_PROCESS_DETACH) log_it("chain- ");
    return TRUE;
}
