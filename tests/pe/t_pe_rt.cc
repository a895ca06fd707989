// A C++ PE test DLL linked against MinGW-w64's runtime DLLs instead of
// taking them in: libstdc++-6.dll, libgcc_s_seh-1.dll and, through
// pthread_self, libwinpthread-1.dll.  The suite lays it out beside copies of
// them (pe/rt/) and alone (pe/rt_alone/): tests/windows/test_pe_lib.c.
#include <pthread.h>
#include <stdexcept>
#include <string>

extern "C" __declspec(dllexport) int t_rt_catch(int x)
{
    try {
        if (x < 0) throw std::runtime_error("negative");
        return static_cast<int>(std::to_string(x).size());
    } catch (const std::exception &e) {
        return -static_cast<int>(std::string(e.what()).size());
    }
}

extern "C" __declspec(dllexport) int t_rt_thread() { return pthread_self() != 0; }
