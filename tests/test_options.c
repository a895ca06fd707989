/* Option parsing: good text, bad text with its message, struct checks. */
#include "test.h"
#include "vmcode.h"

TEST(options_defaults)
{
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_EQ(o.version, VMC_OPTIONS_VERSION);
    ASSERT_EQ(o.vm_size, (size_t)2 << 30);
    ASSERT_EQ(o.vmheap_size, (size_t)1 << 30);
    ASSERT_EQ(o.vm_base, 0);
    ASSERT_EQ(o.vm_max_offset, (size_t)256 << 20);
    ASSERT_EQ(o.near_app, 1);
    ASSERT_EQ(o.allow_smaller, 1);
    ASSERT_EQ(o.w_xor_x, 0);
}

TEST(options_parse_all)
{
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_OK(vmc_options_parse(&o, "-vm_size 1G -vmheap_size 512M -vm_base 0x7e0000000000 "
                                    "-vm_max_offset 256M -no_near_app -no_allow_smaller -w_xor_x"));
    ASSERT_EQ(o.vm_size, (size_t)1 << 30);
    ASSERT_EQ(o.vmheap_size, (size_t)512 << 20);
    ASSERT_EQ(o.vm_base, 0x7e0000000000);
    ASSERT_EQ(o.vm_max_offset, (size_t)256 << 20);
    ASSERT_EQ(o.near_app, 0);
    ASSERT_EQ(o.allow_smaller, 0);
    ASSERT_EQ(o.w_xor_x, 1);
    ASSERT_OK(vmc_options_parse(&o, "  -near_app\t-vmheap_size 0  -vm_size 65536 -vm_max_offset 64k "));
    ASSERT_EQ(o.near_app, 1);
    ASSERT_EQ(o.vmheap_size, 0);
    ASSERT_EQ(o.vm_size, 65536);
    ASSERT_EQ(o.vm_max_offset, 65536);
    ASSERT_OK(vmc_options_parse(&o, ""));
    ASSERT_OK(vmc_options_parse(&o, NULL));
    ASSERT_OK(vmc_options_parse(&o, "-reach_lo 0x400000 -reach_hi 0x500000 -vm_size 2g"));
    ASSERT_EQ(o.reach_lo, 0x400000);
    ASSERT_EQ(o.reach_hi, 0x500000);
}

static void expect_bad(const char *text, const char *msg)
{
    vmc_options_t o, before;
    vmc_options_init(&o);
    o.vm_size = (size_t)1 << 30;  /* something not default, to see it kept */
    before = o;
    int r = vmc_options_parse(&o, text);
    if (r != -EINVAL) vt_fail(__FILE__, __LINE__, "'%s' gave %d, not -EINVAL", text, r);
    if (!strstr(vmc_last_error(), msg))
        vt_fail(__FILE__, __LINE__, "'%s': message '%s' lacks '%s'", text, vmc_last_error(), msg);
    ASSERT(memcmp(&o, &before, sizeof o) == 0);
}

TEST(options_parse_bad)
{
    expect_bad("-vm_sise 2G", "unknown option '-vm_sise'");
    expect_bad("vm_size 2G", "expected an option starting with '-', got 'vm_size'");
    expect_bad("-vm_size", "'-vm_size' needs a value");
    expect_bad("-vm_size 2Q", "bad value '2Q' for '-vm_size'");
    expect_bad("-vm_size G", "bad value 'G' for '-vm_size'");
    expect_bad("-vm_size 0x", "bad value '0x' for '-vm_size'");
    expect_bad("-vm_size 99999999999999999999", "bad value '99999999999999999999'");
    expect_bad("-vm_size 16777216T", "bad value '16777216T'");
    expect_bad("-vm_size 3G", "vm_size 0xc0000000 is outside 4K..2G");
    expect_bad("-vm_size 0", "vm_size 0 is outside 4K..2G");
    expect_bad("-vm_size 5000", "vm_size 0x1388 is not a multiple of 4K");
    expect_bad("-vm_base 0x1001", "vm_base 0x1001 is not page aligned");
    expect_bad("-vm_base 4K", "bad value '4K' for '-vm_base'");
    expect_bad("-vm_base 0x7ffffff00000", "past the user address space");
    expect_bad("-no_vm_size 2G", "unknown option '-no_vm_size'");
    expect_bad("-w_xor_x -bogus", "unknown option '-bogus'");
    expect_bad("-w_xor_x 1", "option text: '-w_xor_x' is a boolean and takes no value (got '1'): write -w_xor_x to "
                             "turn it on, -no_w_xor_x to turn it off");
    expect_bad("-vm_size 64M -no_near_app  off", "option text: '-no_near_app' is a boolean and takes no value (got "
                                                 "'off'): write -near_app to turn it on, -no_near_app to turn it off");
    expect_bad("-reach_lo 0x2000 -reach_hi 0x1000", "reach_hi 0x1000 is not above reach_lo 0x2000");
    expect_bad("-reach_lo 0x1000 -reach_hi 0x100001000", "is 4G or wider");
    expect_bad("-vmheap_size 3000", "vmheap_size 0xbb8 is not a multiple of 4K");
    expect_bad("-vmheap_size 2T", "vmheap_size 0x20000000000 is over 1T");
    expect_bad("-", "expected an option starting with '-', got '-'");
}

TEST(options_struct_checked_by_open)
{
    vmc_options_t o;
    vmc_options_init(&o);
    o.vm_size = ((size_t)2 << 30) + 4096;
    vmc_t *v = (vmc_t *)1;
    ASSERT_EQ(vmc_open(&o, &v), -EINVAL);
    ASSERT(v == NULL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "vm_size 0x80001000 is outside 4K..2G");
    vmc_options_init(&o);
    o.version = 7;
    ASSERT_EQ(vmc_open(&o, &v), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "version 7");
}

TEST(options_environment)
{
    setenv("VMCODE_OPTIONS", "-vm_size 64M -vmheap_size 0 -no_near_app", 1);
    vmc_t *v;
    ASSERT_OK(vmc_open(NULL, &v));
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.code_size, (size_t)64 << 20);
    ASSERT_EQ(in.heap_size, 0);
    ASSERT(in.heap_base == NULL);
    ASSERT_EQ(in.placement, VMC_PLACED_VM_BASE);
    vmc_close(v);
    setenv("VMCODE_OPTIONS", "-vm_size 64M -frobnicate", 1);
    ASSERT_EQ(vmc_open(NULL, &v), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "VMCODE_OPTIONS: option text: unknown option '-frobnicate'");
}

/* VMCODE_OPTIONS applies on top of the options a program passes: what it
 * names wins, the rest is the program's. */
TEST(options_environment_on_top_of_the_program)
{
    vmc_options_t o;
    vmc_options_init(&o);
    o.vm_size = (size_t)128 << 20;
    o.vmheap_size = (size_t)32 << 20;
    setenv("VMCODE_OPTIONS", "-vm_size 64M -no_near_app", 1);
    vmc_t *v;
    ASSERT_OK(vmc_open(&o, &v));
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.code_size, (size_t)64 << 20);
    ASSERT_EQ(in.heap_size, (size_t)32 << 20);
    ASSERT_EQ(in.placement, VMC_PLACED_VM_BASE);
    vmc_close(v);
    ASSERT_EQ(o.vm_size, (size_t)128 << 20);  /* the program's struct is not changed */
    unsetenv("VMCODE_OPTIONS");
    ASSERT_OK(vmc_open(&o, &v));
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.code_size, (size_t)128 << 20);
    vmc_close(v);
    setenv("VMCODE_OPTIONS", "-w_xor_x 1", 1);
    ASSERT_EQ(vmc_open(&o, &v), -EINVAL);
    ASSERT_STR_EQ(vmc_last_error(), "VMCODE_OPTIONS: option text: '-w_xor_x' is a boolean and takes no value (got "
                                    "'1'): write -w_xor_x to turn it on, -no_w_xor_x to turn it off");
    unsetenv("VMCODE_OPTIONS");
}

TEST(strerror_names)
{
    ASSERT_STR_EQ(vmc_strerror(-ENOSPC), "no free space in the region satisfies the request");
    ASSERT_STR_EQ(vmc_strerror(-ENOEXEC), "not a loadable library (ELF shared object or PE32+ DLL): malformed, or "
                                          "refused by the system loader too");
    ASSERT_STR_EQ(vmc_strerror(-ECANCELED), "the library refused to load (its DllMain returned FALSE)");
    ASSERT_STR_EQ(vmc_strerror(0), "success");
    ASSERT_STR_EQ(vmc_strerror(-ENOTSUP), "a feature the private loader does not support");
    ASSERT(vmc_strerror(-EIO) != NULL);
}

/* brk_room: 128 MiB by default, any 4K multiple up to 1T. */
TEST(options_brk_room)
{
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_EQ(o.brk_room, (size_t)128 << 20);
    ASSERT_OK(vmc_options_parse(&o, "-brk_room 1G"));
    ASSERT_EQ(o.brk_room, (size_t)1 << 30);
    ASSERT_OK(vmc_options_parse(&o, "-brk_room 0"));
    ASSERT_EQ(o.brk_room, 0);
    ASSERT_EQ(vmc_options_parse(&o, "-brk_room 1000"), -EINVAL);
    ASSERT_STR_EQ(vmc_last_error(), "options: brk_room 0x3e8 is not a multiple of 4K");
    ASSERT_EQ(vmc_options_parse(&o, "-brk_room 2T"), -EINVAL);
    ASSERT_STR_EQ(vmc_last_error(), "options: brk_room 0x20000000000 is larger than 1T");
    ASSERT_EQ(o.brk_room, 0);
}

/* A program built with the version 1 header (no brk_room) still works:
 * only the version 1 part of its struct is read or written.  The struct is
 * allocated at exactly that size, so a sanitizer sees any access past it. */
TEST(options_version_1_struct_still_works)
{
    size_t v1 = offsetof(vmc_options_t, brk_room);
    vmc_options_t full;
    vmc_options_init(&full);
    void *volatile block = malloc(v1);   /* volatile: the compiler cannot see the size */
    vmc_options_t *o = block;
    ASSERT(o);
    memcpy(o, &full, v1);
    o->version = 1;
    ASSERT_OK(vmc_options_parse(o, "-vm_size 64M -vmheap_size 0"));
    ASSERT_EQ(o->version, 1);
    ASSERT_EQ(o->vm_size, (size_t)64 << 20);
    ASSERT_EQ(vmc_options_parse(o, "-brk_room 256M"), -EINVAL);
    ASSERT_STR_CONTAINS(vmc_last_error(), "-brk_room needs a version 2 vmc_options_t");
    vmc_t *v;
    ASSERT_OK(vmc_open(o, &v));
    vmc_info_t in;
    ASSERT_OK(vmc_info(v, &in));
    ASSERT_EQ(in.code_size, (size_t)64 << 20);
    vmc_close(v);
    o->version = 3;
    ASSERT_EQ(vmc_open(o, &v), -EINVAL);
    ASSERT_STR_EQ(vmc_last_error(), "options: version 3 is not 1 or 2 (call vmc_options_init first)");
    free(o);
}
