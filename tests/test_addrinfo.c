/* vmc_addr_info: the library, path, nearest exported symbol and offset of
 * an address, for private libraries as dladdr gives them for the rest. */
#include "test.h"

#include <dlfcn.h>
#include <unistd.h>

TEST(addrinfo_exported_symbols_and_interior_addresses)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_basic.so"), 0, &l));
    vmc_lib_info_t li;
    ASSERT_OK(vmc_lib_info(l, &li));
    vmc_addr_info_t ai;
    char *add = vmc_lib_sym(l, "t_add");
    ASSERT_OK(vmc_addr_info(v, add, &ai));
    ASSERT(ai.lib == l);
    ASSERT_STR_EQ(ai.path, vt_tlib("libt_basic.so"));
    ASSERT(ai.base == li.base);
    ASSERT_STR_EQ(ai.sym_name, "t_add");
    ASSERT(ai.sym_addr == add);
    ASSERT_EQ(ai.sym_offset, 0);
    ASSERT_GT(ai.sym_size, 1);
    ASSERT_OK(vmc_addr_info(v, add + 1, &ai));
    ASSERT_STR_EQ(ai.sym_name, "t_add");
    ASSERT_EQ(ai.sym_offset, 1);
    /* data: an int, and the far end of a large array */
    char *counter = vmc_lib_sym(l, "t_counter"), *bss = vmc_lib_sym(l, "t_bss");
    ASSERT_OK(vmc_addr_info(v, counter + 2, &ai));
    ASSERT_STR_EQ(ai.sym_name, "t_counter");
    ASSERT_EQ(ai.sym_size, 4);
    ASSERT_EQ(ai.sym_offset, 2);
    ASSERT_OK(vmc_addr_info(v, bss + 5000, &ai));
    ASSERT_STR_EQ(ai.sym_name, "t_bss");
    ASSERT_EQ(ai.sym_offset, 5000);
    /* the first byte of the image: the ELF header, no symbol */
    ASSERT_OK(vmc_addr_info(v, li.base, &ai));
    ASSERT(ai.lib == l);
    ASSERT(ai.sym_name == NULL && ai.sym_addr == NULL && ai.sym_offset == 0);
    ASSERT_OK(vmc_lib_unload(l));
    /* gone: the address is nobody's */
    ASSERT_EQ(vmc_addr_info(v, add, &ai), -ENOENT);
    ASSERT_STR_CONTAINS(vmc_last_error(), "in no private library of this handle");
    vmc_close(v);
}

/* Hidden and static functions are not exported: the answer is an exported
 * symbol below them, whose size the offset passes, or none. */
TEST(addrinfo_unexported_code)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, vt_tlib("libt_addr.so"), 0, &l));
    void *(*st)(void) = (void *(*)(void))vmc_lib_sym(l, "t_addr_static");
    void *(*hid)(void) = (void *(*)(void))vmc_lib_sym(l, "t_addr_hidden_addr");
    void *targets[2] = {st(), hid()};
    ASSERT(vmc_lib_sym(l, "t_addr_hidden") == NULL);
    for (int i = 0; i < 2; i++) {
        vmc_addr_info_t ai;
        ASSERT_OK(vmc_addr_info(v, targets[i], &ai));
        ASSERT(ai.lib == l);
        if (ai.sym_name) {
            ASSERT(strcmp(ai.sym_name, "t_addr_hidden"));
            ASSERT_GE(ai.sym_offset, ai.sym_size);
            ASSERT((char *)ai.sym_addr + ai.sym_offset == targets[i]);
        }
    }
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

int vt_addr_host_fn(void);
int vt_addr_host_fn(void) { return 1; }

/* Host code is answered as dladdr answers it, without a library; the
 * region's own code (JIT) is nobody's; NULL arguments are refused. */
TEST(addrinfo_addresses_outside_private_libraries)
{
    vmc_t *v = vt_open("");
    vmc_addr_info_t ai;
    ASSERT_OK(vmc_addr_info(v, (char *)vt_addr_host_fn + 1, &ai));
    Dl_info di;
    ASSERT(dladdr((void *)vt_addr_host_fn, &di));
    ASSERT(ai.lib == NULL);
    ASSERT_STR_EQ(ai.path, di.dli_fname);
    ASSERT(ai.base == di.dli_fbase);
    ASSERT_STR_EQ(ai.sym_name, "vt_addr_host_fn");
    ASSERT_EQ(ai.sym_offset, 1);
    vmc_span_t code;
    ASSERT_OK(vmc_alloc(v, 64, VMC_CODE, &code));
    ASSERT_EQ(vmc_addr_info(v, code.x, &ai), -ENOENT);
    ASSERT_EQ(vmc_addr_info(NULL, code.x, &ai), -EINVAL);
    ASSERT_EQ(vmc_addr_info(v, code.x, NULL), -EINVAL);
    /* a library of another handle is not this handle's */
    vmc_t *w = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(w, vt_tlib("libt_basic.so"), 0, &l));
    ASSERT_EQ(vmc_addr_info(v, vmc_lib_sym(l, "t_add"), &ai), -ENOENT);
    ASSERT_OK(vmc_addr_info(w, vmc_lib_sym(l, "t_add"), &ai));
    ASSERT(ai.lib == l);
    vmc_close(w);
    vmc_close(v);
}
