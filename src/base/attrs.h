/* Compiler attributes the code uses where gcc and clang differ. */
#ifndef VMC_ATTRS_H
#define VMC_ATTRS_H

/* A function that must stay one function at one address (a debugger's
 * breakpoint): gcc may otherwise make specialised clones of it; clang
 * makes none and does not know the attribute. */
#if defined(__clang__) || !defined(__GNUC__)
#define VMC_NOCLONE
#else
#define VMC_NOCLONE __attribute__((noclone))
#endif
#endif
