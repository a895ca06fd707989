/* Guards: the unused parts of both regions, and memory given back, fault on
 * access; nothing the library maps is ever rwx under W^X. */
#include "test.h"
#include "vmcode.h"

#include <signal.h>

TEST_SIGNAL(guard_unused_heap_region_faults, SIGSEGV)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 64M");
    vmc_info_t in;
    vmc_info(v, &in);
    volatile char *p = (char *)in.heap_base + (32 << 20);
    (void)*p;
}

TEST_SIGNAL(guard_freed_large_allocation_faults, SIGSEGV)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 0");
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 1 << 20, VMC_RDATA, &s));
    memset(s.w, 1, s.size);
    ASSERT_OK(vmc_free(v, s.x));
    volatile char *p = s.x;
    *p = 2;
}

TEST_SIGNAL(guard_past_the_end_of_code_region_faults, SIGSEGV)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 0");
    vmc_info_t in;
    vmc_info(v, &in);
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &s));
    volatile char *p = (char *)in.code_base + in.code_size - 1;
    (void)*p;
}

TEST_SIGNAL(guard_unused_writable_view_faults, SIGSEGV)
{
    vmc_t *v = vt_open("-vm_size 64M -vmheap_size 0 -w_xor_x");
    vmc_info_t in;
    vmc_info(v, &in);
    vmc_span_t s;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &s));
    volatile char *p = (char *)in.code_wbase + in.code_size / 2;
    *p = 1;
}

/* Without W^X code pages are rwx by design; with it, no mapping of the
 * process is rwx after any operation. */
TEST(guard_no_rwx_with_w_xor_x)
{
    vmc_t *v = vt_open("-vm_size 256M -vmheap_size 64M -w_xor_x");
    ASSERT_EQ(vt_rwx_count(), 0);
    vmc_span_t s[64];
    for (int i = 0; i < 64; i++) {
        ASSERT_OK(vmc_alloc(v, 32 + (size_t)i * 3000, i % 3 + 1, &s[i]));
        ASSERT_EQ(vt_rwx_count(), 0);
    }
    void *stub;
    ASSERT_OK(vmc_stub(v, (uintptr_t)&vmc_open, &stub));
    for (int i = 0; i < 64; i += 2) ASSERT_OK(vmc_free(v, s[i].x));
    ASSERT_EQ(vt_rwx_count(), 0);
    vmc_close(v);
    ASSERT_EQ(vt_rwx_count(), 0);
}
