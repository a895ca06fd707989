/* libFuzzer target: the private loader on arbitrary bytes.
 *
 * Each input is loaded with VMC_LOAD_INERT (mapped, checked, relocated and
 * bound, but none of its code run and nothing loaded through the system
 * loader), a few symbols are looked up, and it is unloaded; twice: from
 * memory, and from a file (a memfd written with the input), since a file
 * load reads its tables, its writable segments and DT_FINI its own way.  Any
 * crash, sanitizer report or leak is a bug in the loader: a hostile image
 * must be refused with an error, never trusted.
 *
 *   make fuzz                          build fuzz-out/fuzz_elf
 *   make fuzz-run FUZZ_SECONDS=60      seed from system libraries and run
 */
#include "vmcode.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static vmc_t *region;
static int file_fd = -1;
static char file_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    vmc_options_t o;
    vmc_options_init(&o);
    o.vm_size = (size_t)256 << 20;
    o.vmheap_size = 0;
    if (vmc_open(&o, &region)) {
        fprintf(stderr, "fuzz_elf: vmc_open: %s\n", vmc_last_error());
        abort();
    }
    file_fd = memfd_create("fuzz.so", MFD_CLOEXEC);
    if (file_fd < 0) {
        perror("fuzz_elf: memfd_create");
        abort();
    }
    snprintf(file_path, sizeof file_path, "/proc/self/fd/%d", file_fd);
    return 0;
}

static void check(int r, vmc_lib_t *l)
{
    static const char *const names[] = {"deflate", "ZSTD_compress", "t_add", "main", "", "_init"};
    if (r == 0) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) (void)vmc_lib_sym(l, names[i]);
        if (vmc_lib_unload(l)) abort();
        vmc_stats_t st;
        if (vmc_stats(region, &st) || st.libraries != 0) abort();
    } else if (r > 0 || !vmc_last_error()[0]) {
        abort();  /* errors are negative and always explained */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vmc_lib_t *l;
    check(vmc_lib_load_mem(region, data, size, "fuzz.so", VMC_LOAD_INERT, &l), l);
    if (ftruncate(file_fd, 0) || (size && pwrite(file_fd, data, size, 0) != (ssize_t)size)) abort();
    check(vmc_lib_load(region, file_path, VMC_LOAD_INERT, &l), l);
    return 0;
}
