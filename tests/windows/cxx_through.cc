// Windows tests: the C++ half of win_unwind_cxx_exception_passes_a_generated_frame
// (tests/windows/test_unwind.c).  A C++ exception thrown by a callee must
// unwind through a frame of generated code to the catch in its caller;
// MinGW's g++ raises it as an SEH exception (RaiseException) and its
// personality unwinds with RtlUnwindEx, through the system's unwinder.
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
