// C interface to asmjit's JitAllocator (see asmjit_shim.h).
#include "asmjit_shim.h"

#include <asmjit/core.h>

#include <cerrno>
#include <cstdio>
#include <new>

struct ajs_allocator {
    asmjit::JitAllocator jit;
    explicit ajs_allocator(const asmjit::JitAllocator::CreateParams *p) : jit(p) {}
};

static thread_local const char *last_error = "";

static int fail(asmjit::Error e)
{
    last_error = asmjit::DebugUtils::errorAsString(e);
    switch (e) {
    case asmjit::kErrorOutOfMemory: return -ENOMEM;
    case asmjit::kErrorInvalidArgument:
    case asmjit::kErrorTooLarge: return -EINVAL;
    default: return -EIO;
    }
}

extern "C" ajs_alloc_t *ajs_create_ex(unsigned flags, uint32_t block_size, uint32_t granularity)
{
    using asmjit::JitAllocatorOptions;
    asmjit::JitAllocator::CreateParams p{};
    JitAllocatorOptions o = JitAllocatorOptions::kNone;
    if (flags & AJS_DUAL_MAPPING) o |= JitAllocatorOptions::kUseDualMapping;
    if (flags & AJS_MULTIPLE_POOLS) o |= JitAllocatorOptions::kUseMultiplePools;
    if (flags & AJS_FILL_UNUSED) o |= JitAllocatorOptions::kFillUnusedMemory;
    if (flags & AJS_IMMEDIATE_RELEASE) o |= JitAllocatorOptions::kImmediateRelease;
    p.options = o;
    p.blockSize = block_size;
    p.granularity = granularity;
    ajs_alloc_t *a = new (std::nothrow) ajs_allocator(&p);
    if (!a) last_error = "out of memory for the allocator";
    return a;
}

extern "C" ajs_alloc_t *ajs_create(unsigned flags)
{
    return ajs_create_ex(flags, 0, 0);
}

extern "C" void ajs_destroy(ajs_alloc_t *a)
{
    delete a;
}

extern "C" int ajs_alloc(ajs_alloc_t *a, size_t size, void **rx, void **rw)
{
    if (!a || !rx || !rw) return fail(asmjit::kErrorInvalidArgument);
    void *x = nullptr, *w = nullptr;
    asmjit::Error e = a->jit.alloc(&x, &w, size);
    if (e != asmjit::kErrorOk) return fail(e);
    *rx = x;
    *rw = w;
    return 0;
}

extern "C" int ajs_release(ajs_alloc_t *a, void *rx)
{
    if (!a) return fail(asmjit::kErrorInvalidArgument);
    asmjit::Error e = a->jit.release(rx);
    return e == asmjit::kErrorOk ? 0 : fail(e);
}

extern "C" int ajs_stats(ajs_alloc_t *a, size_t *reserved, size_t *used, size_t *allocations)
{
    if (!a) return fail(asmjit::kErrorInvalidArgument);
    asmjit::JitAllocator::Statistics s = a->jit.statistics();
    if (reserved) *reserved = s.reservedSize();
    if (used) *used = s.usedSize();
    if (allocations) *allocations = s.allocationCount();
    return 0;
}

extern "C" void ajs_flush(void *rx, size_t size)
{
    asmjit::VirtMem::flushInstructionCache(rx, size);
}

extern "C" const char *ajs_strerror(void)
{
    return last_error;
}

extern "C" const char *ajs_version(void)
{
    static char buf[32];
    if (!buf[0])
        std::snprintf(buf, sizeof buf, "%u.%u.%u", (ASMJIT_LIBRARY_VERSION >> 16) & 0xffu,
                      (ASMJIT_LIBRARY_VERSION >> 8) & 0xffu, ASMJIT_LIBRARY_VERSION & 0xffu);
    return buf;
}
