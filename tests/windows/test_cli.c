/* Windows: the command-line tool (vmcode.exe, built beside the tests) run as
 * a user runs it: info and maps in text and JSON, addresses printed whole
 * (above 4 GiB: the image base is 0x140000000), VMCODE_OPTIONS applied
 * before the command line and taken out of the environment, and what it
 * refuses with its exit status. */
#include "test.h"

#include <windows.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs vmcode.exe with `args`; its stdout and stderr in *out (freed by the
 * caller), its exit status returned. */
static int vmcode(const char *args, char **out)
{
    char exe[MAX_PATH], cmd[2048];
    snprintf(exe, sizeof exe, "%s\\vmcode.exe", vt_build_dir());
    for (char *p = exe; *p; p++)
        if (*p == '/') *p = '\\';
    if (GetFileAttributesA(exe) == INVALID_FILE_ATTRIBUTES) SKIP("vmcode.exe not built (make windows)");
    snprintf(cmd, sizeof cmd, "\"%s\" %s", exe, args);
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    HANDLE rd, wr;
    ASSERT(CreatePipe(&rd, &wr, &sa, 1 << 16));
    SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
    STARTUPINFOA si = {.cb = sizeof si, .dwFlags = STARTF_USESTDHANDLES};
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = si.hStdError = wr;
    PROCESS_INFORMATION pi;
    ASSERT_MSG(CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi),
               "CreateProcess %s: error %lu", cmd, GetLastError());
    CloseHandle(wr);
    size_t n = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    ASSERT(buf);
    DWORD got;
    while (ReadFile(rd, buf + n, (DWORD)(cap - n - 1), &got, NULL) && got) {
        n += got;
        if (cap - n < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
            ASSERT(buf);
        }
    }
    buf[n] = 0;
    WaitForSingleObject(pi.hProcess, 30000);
    DWORD code = 99;
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    CloseHandle(pi.hThread);
    CloseHandle(rd);
    *out = buf;
    return (int)code;
}

/* The value of "key":"0x..." in JSON text, as a number. */
static uintptr_t json_addr(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    ASSERT_MSG(p, "no %s in %s", key, json);
    return (uintptr_t)strtoull(p + strlen(pat), NULL, 16);
}

TEST(win_cli_info_prints_whole_addresses)
{
    char *out;
    ASSERT_EQ(vmcode("info --json -vm_size 256M -vmheap_size 0", &out), 0);
    ASSERT_STR_CONTAINS(out, "\"code_size\":268435456");
    ASSERT_STR_CONTAINS(out, "\"placement\":\"near_app\"");
    /* Next to the main module of vmcode.exe, at 0x140000000 by default:
     * above 4 GiB, where 32-bit unsigned long would cut the address. */
    uintptr_t cb = json_addr(out, "code_base"), lo = json_addr(out, "reach_lo");
    ASSERT_GT(lo, (uintptr_t)UINT32_MAX);
    ASSERT_GT(cb, (uintptr_t)UINT32_MAX);
    ASSERT(cb + ((size_t)256 << 20) <= lo || cb >= json_addr(out, "reach_hi"));
    free(out);
    ASSERT_EQ(vmcode("info -vm_size 256M -vmheap_size 0", &out), 0);
    char line[128];
    snprintf(line, sizeof line, "code region   %#014" PRIxPTR "-%#014" PRIxPTR "   256 MiB", cb,
             cb + ((size_t)256 << 20));
    ASSERT_STR_CONTAINS(out, line);
    ASSERT_STR_CONTAINS(out, "heap region   none");
    ASSERT_STR_CONTAINS(out, "placement     near_app");
    free(out);
}

TEST(win_cli_maps_text_and_json)
{
    char *out;
    ASSERT_EQ(vmcode("maps -vm_size 64M -vmheap_size 0", &out), 0);
    ASSERT_STR_CONTAINS(out, "code region 0x");
    ASSERT_STR_CONTAINS(out, "64M  free");
    free(out);
    ASSERT_EQ(vmcode("maps --json -vm_size 64M -vmheap_size 0", &out), 0);
    ASSERT_STR_CONTAINS(out, "\"runs\":[{\"region\":\"code\",\"start\":\"0x");
    ASSERT_STR_CONTAINS(out, "\"owner\":\"free\"");
    free(out);
}

/* VMCODE_OPTIONS comes first and the command line wins; the tool takes the
 * variable out of its environment so that vmc_open does not apply it again
 * on top (on Windows through the C runtime's _putenv). */
TEST(win_cli_environment_then_command_line)
{
    char *out;
    ASSERT(SetEnvironmentVariableA("VMCODE_OPTIONS", "-vm_size 128M -vmheap_size 0"));
    int rc = vmcode("info --json -vm_size 64M", &out);
    SetEnvironmentVariableA("VMCODE_OPTIONS", NULL);
    ASSERT_EQ(rc, 0);
    ASSERT_STR_CONTAINS(out, "\"code_size\":67108864");
    ASSERT_STR_CONTAINS(out, "\"heap_size\":0");
    ASSERT_STR_CONTAINS(out, "\"vmcode_options\":\"-vm_size 128M -vmheap_size 0\"");
    free(out);
}

TEST(win_cli_refusals)
{
    char *out;
    ASSERT_EQ(vmcode("info -vm_size 3Q", &out), 2);
    ASSERT_STR_CONTAINS(out, "vmcode info: ");
    free(out);
    ASSERT_EQ(vmcode("frobnicate", &out), 2);
    ASSERT_STR_CONTAINS(out, "unknown command 'frobnicate'");
    free(out);
    /* A DLL that is not there: the library's message, exit status 1. */
    ASSERT_EQ(vmcode("load -vm_size 64M no-such-plugin.dll", &out), 1);
    ASSERT_STR_CONTAINS(out, "vmcode load: ");
    free(out);
    ASSERT_EQ(vmcode("--version", &out), 0);
    ASSERT_STR_CONTAINS(out, "vmcode 0.");
    free(out);
}
