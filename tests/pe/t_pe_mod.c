/* A PE test DLL asking the system's module calls about itself, from the
 * inside, as a plug-in does: its file name, the module of one of its
 * addresses, one of its own exports, a string of its resources.  Each
 * returns what the call did (tests/windows/test_pe_lib.c: loaded privately
 * the system loader does not know the DLL; through LoadLibrary it does);
 * and what of it runs at the end. */
#include <windows.h>

#include <stdlib.h>
#include <string.h>

static HINSTANCE self;

/* With VMC_PE_MOD_SAY set, what runs at the end says so on standard output
 * (tests/windows/test_pe_lib.c: what runs at the process's exit). */
static void say(const char *s)
{
    DWORD n;
    if (GetEnvironmentVariableA("VMC_PE_MOD_SAY", NULL, 0))
        WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), s, (DWORD)strlen(s), &n, NULL);
}

static void at_exit(void) { say("t_pe_mod: atexit\n"); }

BOOL WINAPI DllMain(HINSTANCE h, DWORD reason, LPVOID reserved)
{
    if (reason == DLL_PROCESS_ATTACH) {
        self = h;
        atexit(at_exit);   /* the DLL's own table, run after DllMain's DETACH */
    }
    if (reason == DLL_PROCESS_DETACH)
        say(reserved ? "t_pe_mod: detach, lpReserved non-NULL\n" : "t_pe_mod: detach, lpReserved NULL\n");
    return TRUE;
}

__declspec(dllexport) void *t_mod_self(void) { return self; }

/* GetModuleFileName's length, 0 and *err if it failed */
__declspec(dllexport) DWORD t_mod_file_name(char *buf, DWORD n, DWORD *err)
{
    SetLastError(0);
    DWORD r = GetModuleFileNameA(self, buf, n);
    *err = GetLastError();
    return r;
}

/* the module GetModuleHandleEx finds for this function, NULL and *err if none */
__declspec(dllexport) void *t_mod_from_address(DWORD *err)
{
    HMODULE m = NULL;
    SetLastError(0);
    if (!GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                            (LPCSTR)(void *)t_mod_from_address, &m))
        m = NULL;
    *err = GetLastError();
    return m;
}

/* GetProcAddress(self, "t_mod_self") */
__declspec(dllexport) void *t_mod_proc(DWORD *err)
{
    SetLastError(0);
    void *p = (void *)GetProcAddress(self, "t_mod_self");
    *err = GetLastError();
    return p;
}

/* LoadString of string 1 of its own resources (t_pe_mod.rc) */
__declspec(dllexport) int t_mod_string(char *buf, int n) { return LoadStringA(self, 1, buf, n); }
