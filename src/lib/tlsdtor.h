/* Destructors of thread_local objects in private libraries.
 *
 * C++ registers a thread_local object's destructor with
 * __cxa_thread_atexit(dtor, obj, &__dso_handle) (libstdc++, which passes it
 * to the C library's __cxa_thread_atexit_impl).  The C library runs it when
 * the thread exits, and keeps the object named by __dso_handle loaded until
 * then; it does not know a private library's __dso_handle and takes it for
 * the main program's, so a thread exiting after the library was unloaded
 * would call into unmapped memory.  A private library's imports of both
 * names are bound here (interpose.c): each registration for a private
 * library is counted on it, and its last unload leaves it loaded, with its
 * destructors not yet run, until the count is back to zero (the C library's
 * own rule for dlclose); the thread whose destructor was the last one then
 * finishes the unload.
 */
#ifndef VMC_TLSDTOR_H
#define VMC_TLSDTOR_H

#include "lib/loader.h"

/* __cxa_thread_atexit_impl and __cxa_thread_atexit.  A dso that is not in a
 * private library goes to the C library's.  Out of memory: -1, and the
 * destructor will not run (the C library aborts the process instead). */
int vmc__cxa_thread_atexit(void (*dtor)(void *), void *obj, void *dso);

/* Registrations still to run for l (under the loader's lock: while it is
 * held, a finished destructor cannot bring this to zero). */
size_t vmc__tlsdtor_pending(vmc_lib_t *l);

/* vmc_close, before the loader's lock is taken: destructors registered for
 * v's libraries that have not started will never run (their code is about
 * to go); waits for those that are running.  Takes and drops the loader's
 * lock itself. */
void vmc__tlsdtor_close(vmc_loader_t *v);

/* Tests: the nth allocation of a registration from now fails (0: none). */
void vmc__tlsdtor_fault(unsigned long nth);

#endif
