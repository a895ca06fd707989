/* The OS layer for Windows x64, the part the PE load path uses (see os.h):
 * reading the DLL's file and the system loader's modules a private DLL
 * binds its imports to.
 *
 * Every call goes through the fault seam of windows.c (vmc__os_win_enter),
 * so tests make each one fail in turn; GetLastError's value is kept for
 * messages (a DLL's .pdata goes through windows.c's vmc__os_unwind_add).
 * Module handles always carry a reference (GetModuleHandleEx
 * without GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT): a module the
 * process had when a private DLL bound to it must not go away under it if
 * the host frees its own handle later.
 */
#include "os/os.h"

#include <windows.h>
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdlib.h>
#include <string.h>

int vmc__os_win_enter(enum vmc_os_call call);   /* windows.c */
int vmc__os_win_error(void);

/* GetLastError as an errno value, with "not found" as -ENOENT. */
static int load_error(void)
{
    int e = vmc__os_win_error();
    unsigned long d = vmc__os_last_detail();
    return d == ERROR_MOD_NOT_FOUND || d == ERROR_PROC_NOT_FOUND || d == ERROR_FILE_NOT_FOUND ||
                   d == ERROR_PATH_NOT_FOUND
               ? -ENOENT
               : e;
}

/* ---- the file ---------------------------------------------------------------- */

int vmc__os_open(const char *path, int flags, mode_t mode, int *fd)
{
    int e = vmc__os_win_enter(VMC_OS_OPEN);
    if (e) return e;
    int f = _open(path, flags | _O_BINARY | _O_NOINHERIT, mode);
    if (f < 0) return -errno;
    *fd = f;
    return 0;
}

int vmc__os_close(int fd)
{
    int e = vmc__os_win_enter(VMC_OS_CLOSE);
    _close(fd);   /* released whatever is reported, as os.h says */
    return e;
}

/* ReadFile at an offset (OVERLAPPED), so the descriptor's position is not
 * used: the same contract as pread. */
int vmc__os_pread(int fd, void *buf, size_t len, off_t off, size_t *got)
{
    int e = vmc__os_win_enter(VMC_OS_PREAD);
    if (e) return e;
    intptr_t fh = _get_osfhandle(fd);
    if (fh == -1) return -EBADF;
    size_t done = 0;
    uint64_t at = (uint64_t)off;
    while (done < len) {
        DWORD want = len - done > 0x40000000 ? 0x40000000 : (DWORD)(len - done), n = 0;
        OVERLAPPED ov = {0};
        ov.Offset = (DWORD)(at + done);
        ov.OffsetHigh = (DWORD)((at + done) >> 32);
        if (!ReadFile((HANDLE)fh, (char *)buf + done, want, &n, &ov)) {
            if (GetLastError() == ERROR_HANDLE_EOF) break;
            vmc__os_win_error();   /* the code, for messages */
            return -EIO;
        }
        if (!n) break;
        done += n;
    }
    *got = done;
    return 0;
}

int vmc__os_file_exists(const char *path, int *there)
{
    int e = vmc__os_win_enter(VMC_OS_OPEN);
    if (e) return e;
    DWORD a = GetFileAttributesA(path);
    *there = a != INVALID_FILE_ATTRIBUTES && !(a & FILE_ATTRIBUTE_DIRECTORY);
    if (a == INVALID_FILE_ATTRIBUTES) {
        DWORD d = GetLastError();
        if (d != ERROR_FILE_NOT_FOUND && d != ERROR_PATH_NOT_FOUND && d != ERROR_INVALID_NAME) {
            vmc__os_win_error();   /* the code, for messages */
            return d == ERROR_ACCESS_DENIED ? -EACCES : -EIO;
        }
    }
    return 0;
}

int vmc__os_file_id(int fd, const struct stat *st, uint64_t id[2])
{
    (void)st;   /* MinGW's st_ino is always 0 */
    int e = vmc__os_win_enter(VMC_OS_FSTAT);
    if (e) return e;
    intptr_t fh = _get_osfhandle(fd);
    BY_HANDLE_FILE_INFORMATION fi;
    if (fh == -1) return -EBADF;
    if (!GetFileInformationByHandle((HANDLE)fh, &fi)) return vmc__os_win_error();
    id[0] = fi.dwVolumeSerialNumber;
    id[1] = (uint64_t)fi.nFileIndexHigh << 32 | fi.nFileIndexLow;
    return 0;
}

int vmc__os_file_settled(const struct stat *st, uint64_t stamp[3])
{
    stamp[0] = (uint64_t)st->st_size;
    stamp[1] = stamp[2] = 0;
    return 0;   /* DLLs keep nothing across loads */
}

/* ---- modules of the system loader -------------------------------------------- */

int vmc__os_dll_find(const char *name, void **h)
{
    int e = vmc__os_win_enter(VMC_OS_LOADLIBRARY);
    if (e) return e;
    HMODULE m;
    if (!GetModuleHandleExA(0, name, &m)) return load_error();
    *h = m;
    return 0;
}

int vmc__os_dll_load(const char *name, void **h)
{
    int e = vmc__os_win_enter(VMC_OS_LOADLIBRARY);
    if (e) return e;
    HMODULE m;
    if (strpbrk(name, "/\\")) {
        /* by a path: its own dependencies are searched beside it first
         * (LOAD_WITH_ALTERED_SEARCH_PATH, not beside the program), which
         * the system defines for an absolute path with backslashes only */
        char full[MAX_PATH];
        if (strlen(name) >= sizeof full) return -ENAMETOOLONG;
        DWORD n = GetFullPathNameA(name, sizeof full, full, NULL);
        if (n >= sizeof full || (!n && GetLastError() == ERROR_FILENAME_EXCED_RANGE)) return -ENAMETOOLONG;
        if (!n) return load_error();
        for (char *c = full; *c; c++)
            if (*c == '/') *c = '\\';
        m = LoadLibraryExA(full, NULL, LOAD_WITH_ALTERED_SEARCH_PATH);
    } else {
        m = LoadLibraryA(name);
    }
    if (!m) return load_error();
    *h = m;
    return 0;
}

void vmc__os_dll_free(void *h)
{
    if (h) FreeLibrary((HMODULE)h);
}

int vmc__os_dll_sym(void *h, const char *name, unsigned ordinal, void **out)
{
    int e = vmc__os_win_enter(VMC_OS_GETPROCADDRESS);
    if (e) return e;
    FARPROC p = GetProcAddress((HMODULE)h, name ? name : (LPCSTR)(uintptr_t)ordinal);
    if (!p) return load_error();
    *out = (void *)p;
    return 0;
}

/* The paths vmc__os_addr_object hands out, one per module and path seen,
 * kept until the process exits: vmc_addr_info's strings must outlive the
 * call, and a module's path is not in its memory. */
typedef struct mod_path { struct mod_path *next; HMODULE m; char path[]; } mod_path_t;
static mod_path_t *mod_paths;
static SRWLOCK mod_paths_lock = SRWLOCK_INIT;

int vmc__os_addr_object(const void *addr, vmc_os_addr_t *out)
{
    int e = vmc__os_win_enter(VMC_OS_LOADLIBRARY);
    if (e) return e;
    HMODULE m;
    if (!GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                            (LPCSTR)addr, &m))
        return load_error();
    char buf[MAX_PATH * 4];
    DWORD n = GetModuleFileNameA(m, buf, sizeof buf);
    if (!n || n >= sizeof buf) return n ? -ENAMETOOLONG : vmc__os_win_error();
    AcquireSRWLockExclusive(&mod_paths_lock);
    mod_path_t *p = mod_paths;
    while (p && (p->m != m || strcmp(p->path, buf))) p = p->next;
    if (!p && (p = malloc(sizeof *p + n + 1))) {
        p->m = m;
        memcpy(p->path, buf, n + 1);
        p->next = mod_paths;
        mod_paths = p;
    }
    ReleaseSRWLockExclusive(&mod_paths_lock);
    if (!p) return -ENOMEM;
    out->path = p->path;
    out->base = (void *)m;   /* a module's handle is its base */
    out->sym = NULL;
    out->sym_addr = NULL;
    return 0;
}

/* ---- code written ------------------------------------------------------------- */

void vmc__os_flush_icache(uintptr_t addr, size_t len)
{
    FlushInstructionCache(GetCurrentProcess(), (void *)addr, len);
}
