/* A program linked with a stand-in libgcc_s.so.1 (tests/libs/t_fakegcc.c,
 * found through LD_LIBRARY_PATH): loads and unloads the library given and
 * prints the registration calls the stand-in saw. */
#include "vmcode.h"

#include <stdio.h>

const char *t_fake_log(void);

int main(int argc, char **argv)
{
    vmc_t *v;
    vmc_lib_t *l;
    if (argc != 2 || vmc_open(NULL, &v) || vmc_lib_load(v, argv[1], 0, &l) || vmc_lib_unload(l)) {
        fprintf(stderr, "%s\n", vmc_last_error());
        return 2;
    }
    vmc_close(v);
    printf("%s\n", t_fake_log());
    return 0;
}
