/* Windows: the tail of a file whose size is not a multiple of 64 KiB cannot
 * be mapped (views are whole granules inside the file's section): refused
 * before anything is taken, with the limit in the message; a descriptor
 * that is not open is refused the same way every time. */
#include "test.h"
#include "os/os.h"

#include <windows.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define G ((size_t)64 << 10)

TEST(win_map_partial_last_granule_refused)
{
    char dir[MAX_PATH], path[MAX_PATH];
    ASSERT(GetTempPathA(sizeof dir, dir));
    ASSERT(GetTempFileNameA(dir, "vmt", 0, path));
    FILE *f = fopen(path, "wb");
    ASSERT(f);
    static char buf[0x31000];
    memset(buf, 'z', sizeof buf);
    ASSERT_EQ(fwrite(buf, 1, sizeof buf, f), sizeof buf);
    fclose(f);
    int fd = open(path, O_RDONLY | O_BINARY);
    ASSERT(fd >= 0);
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
    vmc_stats_t st;
    void *p;
    ASSERT_EQ(vmc_map_file(v, fd, 0x30000, 0x1000, VMC_OS_READ, 0, &p), -EINVAL);
    char want[512];
    snprintf(want, sizeof want,
             "vmc_map_file: fd %d: 0x1000 bytes at offset 0x30000 reach into the file's last 0x1000 bytes "
             "(the file has 0x31000), less than a whole granule of 0x10000: views on Windows are whole "
             "granules inside the file, so at most the first 0x30000 bytes can be mapped", fd);
    ASSERT_STR_EQ(vmc_last_error(), want);
    ASSERT_EQ(vmc_map_file(v, fd, 0, 0x31000, VMC_OS_READ, VMC_MAP_REACHABLE, &p), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "0x31000 bytes at offset 0x0 reach into the file's last 0x1000");
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.mapped_files, 0);
    /* what fits is mapped */
    ASSERT_OK(vmc_map_file(v, fd, 0, 0x30000, VMC_OS_READ, 0, &p));
    ASSERT_EQ(((char *)p)[0x2ffff], 'z');
    ASSERT_OK(vmc_unmap_file(v, p, 0x30000));
    vmc_close(v);
    close(fd);
    DeleteFileA(path);
}

TEST(win_map_bad_descriptor_same_message_each_time)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
    void *p;
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(vmc_map_file(v, 57, 0, G, VMC_OS_READ, 0, &p), -EBADF);
        ASSERT_STR_EQ(vmc_last_error(), "vmc_map_file: fd 57: fstat: Bad file descriptor (error 6)");
    }
    vmc_close(v);
}
