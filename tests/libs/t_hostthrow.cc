// Host-side C++ code (opened with dlopen, not loaded privately): throws
// through the frames of a private library and catches above them.  Opening
// it brings libstdc++ and libgcc_s into a C process.
typedef int (*walker_t)(void **, int);
typedef int (*hop_t)(walker_t, void **, int);

extern "C" int t_ht_thrower(void **, int)
{
    throw 42;
}

extern "C" int t_ht_catch(hop_t hop)
{
    try {
        hop(t_ht_thrower, nullptr, 0);
        return -1;
    } catch (int e) {
        return e;
    }
}
