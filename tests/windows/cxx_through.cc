// Windows tests: the C++ half of win_unwind_cxx_exception_passes_a_generated_frame
// (tests/windows/test_unwind.c).  A C++ exception thrown by a callee must
// unwind through a frame of generated code to the catch in its caller;
// MinGW's g++ raises it as an SEH exception (RaiseException) and its
// personality unwinds with RtlUnwindEx, through the system's unwinder.
// Also the catching half of pe_lib_cxx_exception_from_a_dll_passes_a_generated_frame
// (tests/windows/test_pe_lib.c).
#include <cstddef>
#include <cstring>
#include <exception>

extern "C" int vt_cxx_throw_42(void)
{
    throw 42;
}

extern "C" int vt_cxx_catch_through(int (*jit)(int (*)(void)), int (*callee)(void))
{
    try {
        return jit(callee);
    } catch (int x) {
        return x;
    }
}

// A std::exception (of another copy of the C++ runtime: a DLL's, linked
// into it) caught by its base class: what() copied into buf, 1; 0 if the
// call returned.
extern "C" int vt_cxx_catch_what(int (*jit)(int (*)(void)), int (*callee)(void), char *buf, size_t len)
{
    try {
        jit(callee);
        return 0;
    } catch (const std::exception &e) {
        std::strncpy(buf, e.what(), len - 1);
        buf[len - 1] = 0;
        return 1;
    }
}
