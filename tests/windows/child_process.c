/* One test in a child process, where there is no fork (see child.h): the
 * runner starts itself again with --run-one NAME, its output through a pipe,
 * inside a job object so that processes the test started die with it, and
 * kills it at the timeout.  A child that dies of an exception is reported as
 * the signal the same fault raises on Linux, so TEST_SIGNAL works alike. */
#include "child.h"

#include <windows.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double vt_now_ms(void)
{
    static LARGE_INTEGER freq;
    LARGE_INTEGER now;
    if (!freq.QuadPart) QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (double)now.QuadPart * 1e3 / (double)freq.QuadPart;
}

const char *vt_signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "access violation";
    case SIGILL: return "illegal instruction";
    case SIGABRT: return "abort";
    case SIGFPE: return "arithmetic exception";
    default: return "exception";
    }
}

/* A fault ends the test's process at once, its code as the exit status,
 * instead of starting the system's debugger (Wine's winedbg). */
static LONG WINAPI die_of(EXCEPTION_POINTERS *ep)
{
    fflush(stdout);
    fflush(stderr);
    TerminateProcess(GetCurrentProcess(), ep->ExceptionRecord->ExceptionCode);
    return EXCEPTION_CONTINUE_SEARCH;
}

void vt_child_enter(const vt_test_t *t)
{
    (void)t;
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
    SetUnhandledExceptionFilter(die_of);
}

static int signal_of(DWORD code)
{
    switch (code) {
    case 0xC0000005: return SIGSEGV;          /* EXCEPTION_ACCESS_VIOLATION       */
    case 0xC000001D: return SIGILL;           /* EXCEPTION_ILLEGAL_INSTRUCTION    */
    case 0xC0000094: return SIGFPE;           /* EXCEPTION_INT_DIVIDE_BY_ZERO     */
    case 3:                                   /* abort() in the C runtime         */
    case 0xC0000409: return SIGABRT;          /* __fastfail                       */
    default: return code >= 0xC0000000 ? SIGSEGV : 0;
    }
}

int vt_child_run(const vt_test_t *t, const char *argv0, int timeout_ms, vt_outcome_t *o)
{
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    HANDLE rd, wr;
    if (!CreatePipe(&rd, &wr, &sa, 1 << 16)) {
        fprintf(stderr, "CreatePipe: error %lu\n", GetLastError());
        return -1;
    }
    SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
    /* This very program, whatever path it was started by. */
    char self[MAX_PATH], cmd[MAX_PATH + 256];
    if (!GetModuleFileNameA(NULL, self, sizeof self)) snprintf(self, sizeof self, "%s", argv0);
    snprintf(cmd, sizeof cmd, "\"%s\" --run-one %s", self, t->name);
    STARTUPINFOA si = {.cb = sizeof si, .dwFlags = STARTF_USESTDHANDLES};
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = si.hStdError = wr;
    PROCESS_INFORMATION pi;
    HANDLE job = CreateJobObjectA(NULL, NULL);
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim = {0};
    lim.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE |
                                           JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
    if (job) SetInformationJobObject(job, JobObjectExtendedLimitInformation, &lim, sizeof lim);
    double t0 = vt_now_ms();
    if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, CREATE_SUSPENDED, NULL, NULL, &si, &pi)) {
        fprintf(stderr, "CreateProcess %s: error %lu\n", self, GetLastError());
        CloseHandle(rd);
        CloseHandle(wr);
        if (job) CloseHandle(job);
        return -1;
    }
    if (job) AssignProcessToJobObject(job, pi.hProcess);
    ResumeThread(pi.hThread);
    CloseHandle(pi.hThread);
    CloseHandle(wr);
    vt_buf_t out = {0};
    int exited = 0;
    for (;;) {
        DWORD avail = 0;
        char tmp[4096];
        DWORD n;
        while (PeekNamedPipe(rd, NULL, 0, NULL, &avail, NULL) && avail &&
               ReadFile(rd, tmp, sizeof tmp, &n, NULL) && n)
            vt_buf_add(&out, tmp, n);
        if (exited) break;
        int left = timeout_ms - (int)(vt_now_ms() - t0);
        if (left <= 0) {
            o->timed_out = 1;
            TerminateProcess(pi.hProcess, 1);
            WaitForSingleObject(pi.hProcess, INFINITE);
            break;
        }
        /* Poll: the pipe has no wait that also watches the process. */
        exited = WaitForSingleObject(pi.hProcess, left < 20 ? (DWORD)left : 20) == WAIT_OBJECT_0;
    }
    DWORD code = 0;
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    CloseHandle(rd);
    if (job) CloseHandle(job);   /* kills what the test left running */
    o->ms = vt_now_ms() - t0;
    o->out = out.p;
    if (!o->timed_out) {
        o->signal = signal_of(code);
        if (!o->signal) o->status = (int)code;
    }
    return 0;
}
