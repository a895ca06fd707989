/* A C interface to asmjit's JitAllocator, for benchmarks that compare
 * vmcode with it.  Link with bench/asmjit_shim.cpp, -lasmjit and -lstdc++
 * (bench/bench.mk does this for every bench/bench_*.c).
 *
 * Usage:
 *
 *     ajs_alloc_t *a = ajs_create(AJS_DUAL_MAPPING);   // or AJS_DEFAULT
 *     void *rx, *rw;
 *     if (ajs_alloc(a, 256, &rx, &rw) == 0) {
 *         memcpy(rw, code, n);          // write through rw
 *         ajs_flush(rx, n);             // no-op on x86-64
 *         ((void (*)(void))rx)();       // run from rx
 *         ajs_release(a, rx);           // rx, as returned
 *     }
 *     ajs_destroy(a);                   // releases everything still held
 *
 * Without AJS_DUAL_MAPPING, rx == rw and the memory is read-write-execute
 * (asmjit's default); with it, rx is read+execute and rw is read+write, two
 * views of one shared memory object.  Results are 0 or a negative errno value
 * (-ENOMEM when asmjit runs out of memory, -EINVAL for a bad argument, -EIO for
 * any other asmjit error); ajs_strerror gives asmjit's text for the last
 * failure of this thread.  Thread-safety is asmjit's: alloc and release may be
 * called from several threads on one allocator.
 */
#ifndef VMC_BENCH_ASMJIT_SHIM_H
#define VMC_BENCH_ASMJIT_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ajs_allocator ajs_alloc_t;

/* Flags of ajs_create / ajs_create_ex, mapped onto JitAllocatorOptions. */
enum {
    AJS_DEFAULT           = 0,
    AJS_DUAL_MAPPING      = 1u << 0,   /* kUseDualMapping: W^X by two views     */
    AJS_MULTIPLE_POOLS    = 1u << 1,   /* kUseMultiplePools                     */
    AJS_FILL_UNUSED       = 1u << 2,   /* kFillUnusedMemory                     */
    AJS_IMMEDIATE_RELEASE = 1u << 3,   /* kImmediateRelease                     */
};

/* NULL if asmjit cannot be set up (see ajs_strerror). */
ajs_alloc_t *ajs_create(unsigned flags);
/* block_size: bytes per block asmjit maps (power of two >= page; 0 = 64 KiB);
 * granularity: allocation unit and alignment (0 = 64 bytes). */
ajs_alloc_t *ajs_create_ex(unsigned flags, uint32_t block_size, uint32_t granularity);
void ajs_destroy(ajs_alloc_t *a);

int  ajs_alloc(ajs_alloc_t *a, size_t size, void **rx, void **rw);
int  ajs_release(ajs_alloc_t *a, void *rx);
/* Bytes the allocator holds: blocks mapped and bytes in use. */
int  ajs_stats(ajs_alloc_t *a, size_t *reserved, size_t *used, size_t *allocations);

/* The instruction-cache flush asmjit does after writing code (a no-op on
 * x86-64; here so that emit-and-run loops are written the portable way). */
void ajs_flush(void *rx, size_t size);

/* asmjit's text for this thread's last failure ("" if none). */
const char *ajs_strerror(void);
/* The asmjit version the shim was built against, "major.minor.patch". */
const char *ajs_version(void);

#ifdef __cplusplus
}
#endif
#endif
