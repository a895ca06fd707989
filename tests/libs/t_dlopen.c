/* The system loader's answer, from a fresh process (so that it reads
 * LD_LIBRARY_PATH as given): dlopen argv[1], call the int function
 * argv[2] and print its result, or print the dlerror text. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("error: %s\n", dlerror());
        return 1;
    }
    int (*f)(void) = (int (*)(void))dlsym(h, argv[2]);
    if (!f) {
        printf("error: %s\n", dlerror());
        return 1;
    }
    printf("%d\n", f());
    return 0;
}
