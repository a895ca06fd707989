/* A stand-in libgcc_s.so.1 that records which registration calls vmcode
 * makes (tests/test_unwind.c: unwind_registration_by_the_unwinder_the_host_has).
 * Built three ways: a list libgcc (GCC 12 and before), a b-tree libgcc
 * (-DFAKE_BTREE: defines GCC 13's __truncsfbf2) and LLVM's libunwind under
 * libgcc's name (-DFAKE_LLVM: defines unw_getcontext). */
#include <stdio.h>
#include <string.h>

static char log_[512];
static void *ob_of;

static void note(const char *what)
{
    size_t n = strlen(log_);
    snprintf(log_ + n, sizeof log_ - n, "%s%s", n ? " " : "", what);
}

const char *t_fake_log(void) { return log_; }

void __register_frame(void *begin) { (void)begin; note("register_frame"); }
void __deregister_frame(void *begin) { (void)begin; note("deregister_frame"); }

void __register_frame_info_bases(const void *begin, void *ob, void *t, void *d)
{
    (void)begin, (void)t, (void)d;
    ob_of = ob;
    note("info_bases");
}

void __register_frame_info_table_bases(void *begin, void *ob, void *t, void *d)
{
    (void)begin, (void)t, (void)d;
    ob_of = ob;
    note("info_table_bases");
}

void *__deregister_frame_info_bases(const void *begin)
{
    (void)begin;
    note("deregister_info_bases");
    void *ob = ob_of;
    ob_of = NULL;
    return ob;
}

#ifdef FAKE_BTREE
float __truncsfbf2(float f) { return f; }
#endif
#ifdef FAKE_LLVM
__attribute__((weak)) int unw_getcontext(void *ctx) { (void)ctx; return 0; }
#endif
