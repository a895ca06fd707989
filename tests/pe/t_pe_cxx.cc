// A C++ PE test DLL: a throw caught inside it (SEH unwinding through
// .pdata), a virtual call, a static object with a constructor.
#include <stdexcept>
#include <string>

namespace {
struct Shape {
    virtual ~Shape() = default;
    virtual int area() const = 0;
};
struct Square : Shape {
    int s;
    explicit Square(int s) : s(s) {}
    int area() const override { return s * s; }
};
std::string greeting("hello");
}

extern "C" __declspec(dllexport) int t_cxx_catch(int x)
{
    try {
        if (x < 0) throw std::runtime_error("negative");
        Square q(x);
        const Shape &sh = q;
        return sh.area();
    } catch (const std::exception &e) {
        return -static_cast<int>(std::string(e.what()).size());
    }
}

extern "C" __declspec(dllexport) int t_cxx_greeting_len() { return static_cast<int>(greeting.size()); }

// Thrown out of the DLL, for a catch in the program that called it through
// generated code (tests/windows/test_pe_lib.c): an int, and a class the
// catch knows by its base (std::exception), its what() a call back into
// this DLL's copy of the C++ runtime.
extern "C" __declspec(dllexport) int t_cxx_throw_int()
{
    throw 42;
}

extern "C" __declspec(dllexport) int t_cxx_throw_error()
{
    throw std::runtime_error("thrown in t_pe_cxx.dll");
}

// A frame of this DLL between generated code and a function of the program
// (tests/windows/test_pe_lib.c walks the stack from there): calls the hook
// set before, not as a tail call.
namespace {
int (*hook)();
}
extern "C" __declspec(dllexport) void t_cxx_set_hook(int (*f)()) { hook = f; }
extern "C" __declspec(dllexport) int t_cxx_call_hook() { return hook() + 1; }
