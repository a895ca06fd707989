/* File mappings inside the regions: vmc_map_file, vmc_unmap_file.
 *
 * A mapping takes a block run (owner VMC_OWNER_FILE) in the code region
 * with VMC_MAP_REACHABLE, otherwise in the heap region, and maps the file
 * over it with MAP_FIXED, private copy-on-write or shared.  The block layer
 * is the record of what was mapped: unmapping looks the run up and accepts
 * only the exact start and (page-rounded) size of a file run, so a wrong
 * address or size is an error and never punches a hole; giving the run back
 * re-reserves it PROT_NONE.  Writable and executable at once is refused, as
 * everywhere in the region, and so is a range past the file's last page
 * (touching it would raise SIGBUS).  On Windows a file HANDLE can be mapped
 * in place of a C runtime descriptor (vmc_map_handle): the same checks, the
 * file's size from the handle.  In the Windows slot fallback a view must
 * start on a slot boundary and replace whole slots, so the run is whole free
 * slots and the view its first part (the recorded committed size).
 */
#include "alloc/space.h"
#include "base/error.h"
#include "os/os.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <inttypes.h>

/* What is mapped: a descriptor, or a Windows file HANDLE (then fd is -1). */
typedef struct map_src {
    int fd;
    void *handle;
    char who[64];              /* "vmc_map_file: fd 3" / "vmc_map_handle: handle 0x1a4" */
} map_src_t;

static int map_any(vmc_space_t *v, map_src_t *src, uint64_t offset, size_t size, int prot, int flags,
                   void **out)
{
    const char *fn = src->handle ? "vmc_map_handle" : "vmc_map_file";
    if (out) *out = NULL;
    if (!v || !out) return vmc__fail(-EINVAL, "%s: NULL argument", fn);
    if (flags & ~(VMC_MAP_REACHABLE | VMC_MAP_SHARED))
        return vmc__fail(-EINVAL, "%s: unknown flags 0x%x", fn, flags);
    if (prot & ~(VMC_OS_READ | VMC_OS_WRITE | VMC_OS_EXEC))
        return vmc__fail(-EINVAL, "%s: unknown protection bits 0x%x", fn, prot);
    if ((prot & VMC_OS_WRITE) && (prot & VMC_OS_EXEC))
        return vmc__fail(-EINVAL, "%s: writable and executable at once is refused", fn);
    /* Views start and end at the OS layer's granularity: the page on Linux,
     * 64 KiB on Windows. */
    size_t page = vmc__os_granularity();
    if (size == 0) return vmc__fail(-EINVAL, "%s: size is 0", fn);
    if (offset % page)
        return vmc__fail(-EINVAL, "%s: offset 0x%" PRIx64 " is not a multiple of the %s 0x%zx", fn, offset,
                         page == vmc__os_page_size() ? "page size" : "granularity", page);
    if (size > SIZE_MAX - page || offset > (uint64_t)INT64_MAX - size)
        return vmc__fail(-EINVAL, "%s: offset 0x%" PRIx64 " + size 0x%zx overflows", fn, offset, size);
    uint64_t fsize = 0;
    int regular = 0, e;
    if (src->handle) {
        snprintf(src->who, sizeof src->who, "vmc_map_handle: handle %#" PRIxPTR, (uintptr_t)src->handle);
        if (!(vmc__os_caps() & VMC_OS_CAP_HANDLES))
            return vmc__fail(-ENOTSUP, "vmc_map_handle: file HANDLEs are Windows'; map a descriptor with "
                             "vmc_map_file");
        e = vmc__os_handle_size(src->handle, &fsize, &regular);
        if (e) return vmc__fail(e, "%s: %s: %s", src->who, vmc__os_handle_size_call(), strerror(-e));
    } else {
        if (src->fd < 0) return vmc__fail(-EBADF, "vmc_map_file: fd %d is not a descriptor", src->fd);
        snprintf(src->who, sizeof src->who, "vmc_map_file: fd %d", src->fd);
        struct stat st;
        e = vmc__os_fstat(src->fd, &st);
        if (e) return vmc__fail(e, "%s: fstat: %s", src->who, vmc__os_why(e));
        regular = S_ISREG(st.st_mode);
        fsize = (uint64_t)st.st_size;
    }
    if (regular) {
        uint64_t last = (fsize + page - 1) & ~(uint64_t)(page - 1);
        if (offset + size > last)
            return vmc__fail(-EINVAL, "%s: 0x%zx bytes at offset 0x%" PRIx64 " run past the end "
                             "of the file (0x%" PRIx64 " bytes)", src->who, size, offset, fsize);
        /* Windows maps whole granules of the section, and a file's section
         * ends at the file's size (a larger one would grow the file): a
         * partial last granule cannot be mapped. */
        if (page != vmc__os_page_size() && offset + ((size + page - 1) & ~(page - 1)) > fsize)
            return vmc__fail(-EINVAL, "%s: 0x%zx bytes at offset 0x%" PRIx64 " reach into the file's "
                             "last 0x%" PRIx64 " bytes (the file has 0x%" PRIx64 "), less than a whole "
                             "granule of 0x%zx: views on Windows are whole granules inside the file, "
                             "so at most the first 0x%" PRIx64 " bytes can be mapped",
                             src->who, size, offset, fsize % page, fsize, page, fsize - fsize % page);
    }
    vmc_region_t *r = (flags & VMC_MAP_REACHABLE) ? &v->code : &v->heap;
    if (!r->size)
        return vmc__fail(-EINVAL, "%s: there is no heap region (vmheap_size 0); "
                         "use VMC_MAP_REACHABLE for the code region", fn);
    size_t len = (size + page - 1) & ~(page - 1);
    vmc_blocks_t *b = vmc__blocks_of(v, r);
    uintptr_t at;
    /* In the Windows slot fallback a view replaces whole slots and starts on
     * one's boundary: the run is whole free slots, the view its first len
     * bytes (the OS layer keeps the rest of the last slot reserved). */
    size_t slot = vmc__os_slot_size();
    vmc__space_lock(v);
    if (slot) {
        size_t whole = len > SIZE_MAX - slot ? len : (len + slot - 1) / slot * slot;
        e = vmc__blocks_take_units(b, whole, slot, VMC_OWNER_FILE, NULL, &at);
    } else {
        e = vmc__blocks_take(b, len, 0, 0, 0, 0, VMC_OWNER_FILE, NULL, &at);
    }
    if (e) {
        vmc__space_unlock(v);
        return vmc__fail_wrap(e, "%s: 0x%zx bytes in the %s region", fn, len, r->name);
    }
    int shared = (flags & VMC_MAP_SHARED) != 0;
    e = src->handle ? vmc__os_map_view_handle(at, len, prot, src->handle, offset, shared)
                    : vmc__os_map_view(at, len, prot, src->fd, offset, shared);
    if (e) {
        e = vmc__fail(e, "%s: %s of 0x%zx bytes at offset 0x%" PRIx64 ": %s", src->who,
                      vmc__os_map_view_call(), len, offset, vmc__os_why(e));
        vmc__blocks_abandon(b, at);  /* adds to the message if it cannot re-reserve */
        vmc__space_unlock(v);
        return e;
    }
    vmc__blocks_mapped(b, at, len, (flags & VMC_MAP_REACHABLE) ? VMC_RDATA : VMC_DATA);
    vmc__space_unlock(v);
    *out = (void *)at;
    return 0;
}

int vmc__map_file(vmc_space_t *v, int fd, uint64_t offset, size_t size, int prot, int flags, void **out)
{
    map_src_t src = {.fd = fd};
    return map_any(v, &src, offset, size, prot, flags, out);
}

int vmc__map_handle(vmc_space_t *v, void *handle, uint64_t offset, size_t size, int prot, int flags,
                    void **out)
{
    if (!handle) {
        if (out) *out = NULL;
        return vmc__fail(-EBADF, "vmc_map_handle: handle is NULL");
    }
    map_src_t src = {.fd = -1, .handle = handle};
    return map_any(v, &src, offset, size, prot, flags, out);
}

int vmc__unmap_file(vmc_space_t *v, void *addr, size_t size)
{
    if (!v) return vmc__fail(-EINVAL, "vmc_unmap_file: NULL handle");
    uintptr_t a = (uintptr_t)addr;
    size_t page = vmc__os_granularity();
    vmc_region_t *r = vmc__region_contains(&v->code, a, 1)   ? &v->code
                      : vmc__region_contains(&v->heap, a, 1) ? &v->heap
                                                             : NULL;
    if (!r) return vmc__fail(-EINVAL, "vmc_unmap_file: %p is in neither region", addr);
    vmc_blocks_t *b = vmc__blocks_of(v, r);
    vmc__space_lock(v);
    vmc_run_t run;
    int e = vmc__blocks_find(b, a, &run);
    if (e || run.owner != VMC_OWNER_FILE || run.start != a) {
        vmc__space_unlock(v);
        return vmc__fail(-EINVAL, "vmc_unmap_file: %p is not the start of a vmc_map_file mapping", addr);
    }
    /* The view's size is what was recorded as mapped: the run itself, or in
     * the slot fallback its first part. */
    if (size == 0 || size > SIZE_MAX - page || ((size + page - 1) & ~(page - 1)) != run.committed) {
        vmc__space_unlock(v);
        return vmc__fail(-EINVAL, "vmc_unmap_file: size 0x%zx does not match the mapping at %p (0x%zx bytes)",
                         size, addr, run.committed);
    }
    e = vmc__blocks_give(b, a);
    vmc__space_unlock(v);
    return e;
}
