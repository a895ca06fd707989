/* The calls that exist for Windows x64 (vmc_map_handle, vmc_unwind_add,
 * vmc_unwind_remove) on Linux: refused with -ENOTSUP saying what to use
 * here, after the same argument checks, and leaving nothing behind. */
#include "test.h"
#include "vmcode.h"

#include <sys/mman.h>

TEST(winonly_map_handle_says_use_a_descriptor)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
    void *p = (void *)1;
    ASSERT_EQ(vmc_map_handle(v, (void *)0x44, 0, 4096, PROT_READ, 0, &p), -ENOTSUP);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_map_handle: file HANDLEs are Windows'; map a descriptor with vmc_map_file");
    ASSERT(!p);
    ASSERT_EQ(vmc_map_handle(v, NULL, 0, 4096, PROT_READ, 0, &p), -EBADF);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_map_handle: handle is NULL");
    ASSERT_EQ(vmc_map_handle(v, (void *)0x44, 0, 4096, PROT_READ, 0x80, &p), -EINVAL);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_map_handle: unknown flags 0x80");
    vmc_stats_t st;
    ASSERT_OK(vmc_stats(v, &st));
    ASSERT_EQ(st.mapped_files, 0);
    vmc_close(v);
}

TEST(winonly_unwind_tables_say_use_dwarf_cfi)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 0");
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 256, VMC_CODE, &s));
    /* A valid description: a 16-byte function, its UNWIND_INFO (version 1,
     * no codes) right after it. */
    static const unsigned char info[4] = {0x01, 0x00, 0x00, 0x00};
    memcpy((char *)s.w + 64, info, sizeof info);
    uint32_t at = (uint32_t)((uintptr_t)s.x - (uintptr_t)in.code_base);
    vmc_unwind_entry_t e = {at, at + 16, at + 64};
    ASSERT_EQ(vmc_unwind_add(v, &e, 1), -ENOTSUP);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_unwind_add: unwind tables are Windows x64's (RUNTIME_FUNCTION); on this "
                                    "system describe generated code with DWARF CFI (__register_frame)");
    /* The argument checks come first, as on Windows. */
    ASSERT_EQ(vmc_unwind_add(v, NULL, 1), -EINVAL);
    ASSERT_STR_EQ(vmc_last_error(), "vmc_unwind_add: NULL argument");
    e.info += 2;
    ASSERT_EQ(vmc_unwind_add(v, &e, 1), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "is not a 4-byte aligned offset inside the code region");
    ASSERT_OK(vmc_unwind_remove(v, s.x, s.size));   /* nothing was added */
    ASSERT_OK(vmc_free(v, s.x));
    vmc_close(v);
}
