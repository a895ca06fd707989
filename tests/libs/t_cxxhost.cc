// A C++ program that loads a C++ plug-in privately and catches what the
// plug-in throws (tests/test_tlsdtor.c runs it on the plug-in built with the
// shared libstdc++ and on the one built -static-libstdc++).  Prints
// "caught N uncaught U unwound D inside I": N of 3 exceptions caught here
// with the plug-in's message, U = std::uncaught_exceptions() afterwards, D
// the plug-in's destructors run on the way out (1 + 2 + 3), I the
// plug-in's own throw and catch.
#include "vmcode.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    vmc_t *v;
    vmc_lib_t *l;
    if (vmc_open(nullptr, &v) || vmc_lib_load(v, argv[1], 0, &l)) {
        std::fprintf(stderr, "%s\n", vmc_last_error());
        return 2;
    }
    void (*thrower)(int) = (void (*)(int))vmc_lib_sym(l, "t_cxx_throw");
    int (*inside)(int) = (int (*)(int))vmc_lib_sym(l, "t_cxx_catch");
    int (*unwound)(void) = (int (*)(void))vmc_lib_sym(l, "t_cxx_unwound");
    if (!thrower || !inside || !unwound) return 2;
    int caught = 0;
    for (int i = 0; i < 3; i++) {
        try {
            thrower(i);
        } catch (const std::exception &e) {
            caught += !std::strcmp(e.what(), "thrown out") && std::uncaught_exceptions() == 0;
        }
    }
    int in = inside(2);
    std::printf("caught %d uncaught %d unwound %d inside %d\n", caught, std::uncaught_exceptions(), unwound(), in);
    if (vmc_lib_unload(l)) return 2;
    vmc_close(v);
    return 0;
}
