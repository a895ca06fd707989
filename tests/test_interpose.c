/* Imports bound to vmcode's own functions (src/lib/interpose.c), and what
 * those answer: dl_iterate_phdr lists private libraries too. */
#include "test.h"
#include "lib/phdr.h"

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

static const char *objlib(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/tests/libs/libt_objects.so", vt_build_dir());
    ASSERT_MSG(access(p, R_OK) == 0, "test library %s is not built", p);
    return p;
}

/* An import on the list binds to vmcode's function; one that is not (malloc)
 * binds to the host's as before. */
TEST(interpose_listed_import_binds_to_vmcode)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l;
    ASSERT_OK(vmc_lib_load(v, objlib(), 0, &l));
    void *(*iter)(void) = (void *(*)(void))vmc_lib_sym(l, "t_obj_iterate_fn");
    void *(*mal)(void) = (void *(*)(void))vmc_lib_sym(l, "t_obj_malloc_fn");
    ASSERT(iter && mal);
    ASSERT(iter() == (void *)vmc__dl_iterate_phdr);
    ASSERT(iter() != dlsym(RTLD_DEFAULT, "dl_iterate_phdr"));
    ASSERT(mal() == dlsym(RTLD_DEFAULT, "malloc"));
    ASSERT_OK(vmc_lib_unload(l));
    /* an inert load binds the same way (it runs nothing, but its GOT says) */
    ASSERT_OK(vmc_lib_load(v, objlib(), VMC_LOAD_INERT, &l));
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}

static int host_sees(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t pc = *(uintptr_t *)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type == PT_LOAD && pc >= info->dlpi_addr + p->p_vaddr &&
            pc - (info->dlpi_addr + p->p_vaddr) < p->p_memsz)
            return 1;
    }
    return 0;
}

/* The library's own dl_iterate_phdr finds it, once, under its path and
 * bias, with its program headers; the host's walk does not. */
TEST(interpose_dl_iterate_phdr_lists_private_libraries)
{
    vmc_t *v = vt_open("");
    vmc_lib_t *l, *l2;
    ASSERT_OK(vmc_lib_load(v, objlib(), 0, &l));
    int (*find)(const char **, uintptr_t *, int *, unsigned long long *) =
        (int (*)(const char **, uintptr_t *, int *, unsigned long long *))vmc_lib_sym(l, "t_obj_find_self");
    const char *name;
    uintptr_t addr;
    int phnum;
    unsigned long long adds, adds2;
    ASSERT_EQ(find(&name, &addr, &phnum, &adds), 1);
    ASSERT_STR_EQ(name, objlib());
    vmc_lib_info_t in;
    ASSERT_OK(vmc_lib_info(l, &in));
    ASSERT_EQ(addr, in.bias);
    ASSERT_GE(phnum, in.nsegments + 1);
    uintptr_t pc = (uintptr_t)find;
    ASSERT_EQ(dl_iterate_phdr(host_sees, &pc), 0);
    /* a walk stopped by its callback returns the callback's value */
    int (*stop)(int *) = (int (*)(int *))vmc_lib_sym(l, "t_obj_stop_early");
    int calls;
    ASSERT_EQ(stop(&calls), 77);
    ASSERT_EQ(calls, 2);
    /* another private library coming counts as an object added (unwinders
     * drop their caches on it) */
    char other[512];
    snprintf(other, sizeof other, "%s/tests/libs/libt_basic.so", vt_build_dir());
    ASSERT_OK(vmc_lib_load(v, other, 0, &l2));
    ASSERT_EQ(find(&name, &addr, &phnum, &adds2), 1);
    ASSERT_GT(adds2, adds);
    ASSERT_OK(vmc_lib_unload(l2));
    ASSERT_OK(vmc_lib_unload(l));
    vmc_close(v);
}
