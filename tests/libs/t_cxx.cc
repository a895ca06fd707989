// A C++ library that throws and catches inside itself: the unwinder must
// find its frames although dl_iterate_phdr does not list it.
#include <stdexcept>
#include <string>
#include <vector>

static std::vector<std::string> *log_lines;

__attribute__((constructor)) static void start() { log_lines = new std::vector<std::string>; }
__attribute__((destructor)) static void stop() { delete log_lines; }

static void deep(int n)
{
    if (n == 0) throw std::runtime_error("boom");
    deep(n - 1);
}

// Thrown out of the library, through frames with a destructor each.
static int unwound;
struct counted {
    ~counted() { unwound++; }
};

static void deep_out(int n)
{
    counted c;
    if (n == 0) throw std::runtime_error("thrown out");
    deep_out(n - 1);
}

extern "C" void t_cxx_throw(int depth) { deep_out(depth); }
extern "C" int t_cxx_unwound(void) { return unwound; }

extern "C" int t_cxx_catch(int depth)
{
    try {
        deep(depth);
        return -1;
    } catch (const std::exception &e) {
        log_lines->push_back(e.what());
        return (int)log_lines->size();
    }
}

// The same, keeping nothing: for threads throwing at once.
extern "C" int t_cxx_catch_quietly(int depth)
{
    try {
        deep(depth);
        return -1;
    } catch (const std::exception &) {
        return 1;
    }
}
