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

/* A function that every library load or unload runs.  gcc puts such
 * functions in .text.hot, which the linker gathers in one place: a
 * process's first load, whose code nothing has run before, then fetches it
 * from 15 pages instead of 29 (the same cache lines, nearer together), and
 * takes the time of fewer cold fetches (docs/loader.md, "Cost"). */
#if defined(__GNUC__)
#define VMC_LOAD_PATH __attribute__((hot))
#else
#define VMC_LOAD_PATH
#endif
#endif
