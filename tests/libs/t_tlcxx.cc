// thread_local objects with constructors and destructors, and a static
// object registered with __cxa_atexit: each reports to the host.
extern "C" void vt_tl_event(int what);

namespace {
struct Counted {
    int v;
    Counted() : v(7) { vt_tl_event(10); }
    ~Counted() { vt_tl_event(20); }
};
thread_local Counted tl;

struct Static {
    ~Static() { vt_tl_event(30); }
};
}  // namespace

// This thread's copy, after adding `add`.
extern "C" int t_tlx_use(int add)
{
    tl.v += add;
    return tl.v;
}

// A function-local static: its destructor is registered at the first call.
extern "C" int t_tlx_static(void)
{
    static Static s;
    (void)s;
    return 1;
}
