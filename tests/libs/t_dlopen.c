/* The system loader's answer, from a fresh process (so that it reads
 * LD_LIBRARY_PATH as given): dlopen argv[1], call the int function
 * argv[2] and print its result, or print the dlerror text.  With argv[2]
 * "--linkmap": print the path of every object in the process after the
 * dlopen (dlinfo RTLD_DI_LINKMAP), one a line. */
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("error: %s\n", dlerror());
        return 1;
    }
    if (!strcmp(argv[2], "--linkmap")) {
        struct link_map *m = NULL;
        if (dlinfo(h, RTLD_DI_LINKMAP, &m)) return 1;
        while (m->l_prev) m = m->l_prev;
        for (; m; m = m->l_next) printf("%s\n", m->l_name);
        return 0;
    }
    int (*f)(void) = (int (*)(void))dlsym(h, argv[2]);
    if (!f) {
        printf("error: %s\n", dlerror());
        return 1;
    }
    printf("%d\n", f());
    return 0;
}
