/* Windows: vmc_map_handle, a file HANDLE mapped as vmc_map_file maps a
 * descriptor: reachable and not, private and shared, the handle closed
 * while the view lives, and each refusal with its message and no hole left
 * in the region. */
#include "test.h"
#include "os/os.h"

#include <windows.h>
#include <inttypes.h>

#define G ((size_t)64 << 10)

/* A temporary file of two granules, 'x' then 'y', deleted when the last
 * handle to it closes; opened with `access`. */
static HANDLE temp_file(DWORD access, char path[MAX_PATH])
{
    char dir[MAX_PATH];
    ASSERT(GetTempPathA(sizeof dir, dir));
    ASSERT(GetTempFileNameA(dir, "vmc", 0, path));
    HANDLE h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_TEMPORARY, NULL);
    ASSERT(h != INVALID_HANDLE_VALUE);
    static char buf[2 * G];
    memset(buf, 'x', G);
    memset(buf + G, 'y', G);
    DWORD n;
    ASSERT(WriteFile(h, buf, sizeof buf, &n, NULL) && n == sizeof buf);
    if (access != (GENERIC_READ | GENERIC_WRITE)) {
        CloseHandle(h);
        h = CreateFileA(path, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
                        0, NULL);
        ASSERT(h != INVALID_HANDLE_VALUE);
    }
    return h;
}

TEST(win_map_handle_reachable_and_closed_after)
{
    char path[MAX_PATH];
    HANDLE h = temp_file(GENERIC_READ, path);
    vmc_t *v = vt_open("-vm_size 256M -vmheap_size 64M");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    void *p, *q;
    ASSERT_OK(vmc_map_handle(v, h, G, G, VMC_OS_READ, VMC_MAP_REACHABLE, &p));
    ASSERT((uintptr_t)p >= (uintptr_t)in.code_base && (uintptr_t)p < (uintptr_t)in.code_base + in.code_size);
    ASSERT_OK(vmc_map_handle(v, h, 0, G, VMC_OS_READ, 0, &q));
    ASSERT((uintptr_t)q >= (uintptr_t)in.heap_base && (uintptr_t)q < (uintptr_t)in.heap_base + in.heap_size);
    CloseHandle(h);   /* the views keep the file */
    ASSERT_EQ(((char *)p)[100], 'y');
    ASSERT_EQ(((char *)q)[100], 'x');
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.mapped_files, 2);
    ASSERT_OK(vmc_unmap_file(v, p, G));
    ASSERT_OK(vmc_unmap_file(v, q, G));
    ASSERT_EQ(vt_free_pieces((uintptr_t)in.code_base, in.code_size), 0);
    ASSERT_EQ(vt_free_pieces((uintptr_t)in.heap_base, in.heap_size), 0);
    vmc_close(v);
    DeleteFileA(path);
}

TEST(win_map_handle_shared_writes_reach_the_file)
{
    char path[MAX_PATH];
    HANDLE h = temp_file(GENERIC_READ | GENERIC_WRITE, path);
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
    void *p;
    ASSERT_OK(vmc_map_handle(v, h, G, G, VMC_OS_READ | VMC_OS_WRITE, VMC_MAP_SHARED, &p));
    memcpy(p, "shared", 6);
    ASSERT_OK(vmc_unmap_file(v, p, G));
    char buf[6];
    DWORD n;
    ASSERT(SetFilePointer(h, (LONG)G, NULL, FILE_BEGIN) == G);
    ASSERT(ReadFile(h, buf, sizeof buf, &n, NULL) && n == sizeof buf);
    ASSERT(!memcmp(buf, "shared", 6));
    /* Private: copy on write, the file unchanged. */
    ASSERT_OK(vmc_map_handle(v, h, 0, G, VMC_OS_READ | VMC_OS_WRITE, 0, &p));
    memcpy(p, "private", 7);
    ASSERT_OK(vmc_unmap_file(v, p, G));
    ASSERT(SetFilePointer(h, 0, NULL, FILE_BEGIN) == 0);
    ASSERT(ReadFile(h, buf, sizeof buf, &n, NULL) && n == sizeof buf);
    ASSERT(!memcmp(buf, "xxxxxx", 6));
    vmc_close(v);
    CloseHandle(h);
    DeleteFileA(path);
}

TEST(win_map_handle_refusals)
{
    char path[MAX_PATH];
    HANDLE h = temp_file(GENERIC_READ, path);
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    void *p = (void *)1;
    ASSERT_EQ(vmc_map_handle(v, NULL, 0, G, VMC_OS_READ, 0, &p), -EBADF);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_map_handle: handle is NULL");
    ASSERT(!p);
    ASSERT_EQ(vmc_map_handle(v, INVALID_HANDLE_VALUE, 0, G, VMC_OS_READ, 0, &p), -EBADF);
    ASSERT_STR_CONTAINS(vmc_last_error(), "vmc_map_handle: handle 0xffffffffffffffff: GetFileSizeEx: ");
    ASSERT_EQ(vmc_map_handle(v, h, G, 2 * G, VMC_OS_READ, 0, &p), -EINVAL);
    char want[160];
    snprintf(want, sizeof want, "vmc_map_handle: handle %#" PRIxPTR ": 0x20000 bytes at offset 0x10000 run past "
             "the end of the file (0x20000 bytes)", (uintptr_t)h);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_EQ(vmc_map_handle(v, h, 4096, G, VMC_OS_READ, 0, &p), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "vmc_map_handle: offset 0x1000 is not a multiple of the granularity");
    ASSERT_EQ(vmc_map_handle(v, h, 0, G, VMC_OS_READ | VMC_OS_WRITE | VMC_OS_EXEC, 0, &p), -EINVAL);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_map_handle: writable and executable at once is refused");
    /* Read-only handle, shared writable view: the system refuses. */
    ASSERT_EQ(vmc_map_handle(v, h, 0, G, VMC_OS_READ | VMC_OS_WRITE, VMC_MAP_SHARED, &p), -EACCES);
    snprintf(want, sizeof want, "vmc_map_handle: handle %#" PRIxPTR ": ", (uintptr_t)h);
    ASSERT_STR_CONTAINS(vmc_last_error(), want);
    /* The size query failing (counted as fstat). */
    vmc__os_fault(VMC_OS_FSTAT, 1, EIO, 0);
    ASSERT_EQ(vmc_map_handle(v, h, 0, G, VMC_OS_READ, 0, &p), -EIO);
    vmc__os_fault_clear();
    ASSERT_STR_CONTAINS(vmc_last_error(), "GetFileSizeEx: ");
    /* The view failing: the piece goes back, nothing counted. */
    vmc__os_fault(VMC_OS_MAPVIEW, 1, ENOMEM, 0);
    ASSERT_EQ(vmc_map_handle(v, h, 0, G, VMC_OS_READ, VMC_MAP_REACHABLE, &p), -ENOMEM);
    vmc__os_fault_clear();
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.mapped_files, 0);
    ASSERT_EQ(vt_free_pieces((uintptr_t)in.code_base, in.code_size), 0);
    ASSERT_EQ(vt_free_pieces((uintptr_t)in.heap_base, in.heap_size), 0);
    /* And the descriptor path still works beside it. */
    FILE *f = tmpfile();
    ASSERT(f);
    for (size_t k = 0; k < G; k++) fputc('z', f);
    fflush(f);
    ASSERT_OK(vmc_map_file(v, fileno(f), 0, G, VMC_OS_READ, 0, &p));
    ASSERT_EQ(((char *)p)[5], 'z');
    ASSERT_OK(vmc_unmap_file(v, p, G));
    fclose(f);
    vmc_close(v);
    CloseHandle(h);
    DeleteFileA(path);
}
