/* W^X pairs on Linux (see os.h, "W^X: two views of one memory object").
 *
 * One memory file backs a pair.  A page at offset `off` of the pair is file
 * offset `off`, mapped read+execute at x+off (the executable side, inside the
 * caller's reservation) and read+write at w+off (the writable side, a second
 * reservation of the same size).
 *
 * The writable side maps the whole file once, PROT_NONE; committing a range
 * opens it read+write with mprotect and decommitting closes it again.  The
 * executable side maps the file read+execute over a committed range only;
 * elsewhere it is the caller's PROT_NONE anonymous reservation (or whatever
 * the caller put there: private data, a library image, a file).  So a
 * commit is mprotect + mmap and a decommit mprotect + mmap + fallocate, and
 * whichever step fails, the steps before it are undone with a different kind
 * of call: a failure changes nothing even when that kind of call keeps
 * failing.  The executable side gets its protection from mmap and is never
 * writable, so no address is ever writable and executable, and hardened
 * policies that allow execution only from memory mapped executable are met.
 *
 * A hole (os.h: a -no-pie program's brk heap inside the code region's span).
 * The executable side is then the caller's two reservations around it.  This
 * file maps executable pages only over committed ranges, and a range that
 * meets the hole is refused, so nothing of the pair is ever mapped there,
 * nor in a forked child (which remaps committed runs only).  The writable
 * side stays one reservation with the whole file mapped over it PROT_NONE:
 * w - x stays one constant, and the file's range facing the hole is never
 * committed, so it is a sparse stretch that takes no memory.  That
 * reservation is made without an address, which on x86-64 Linux puts it
 * below mmap_base or above TASK_SIZE / 3, far above a hole, which lies below
 * 4 GiB.
 *
 * The file.  memfd_create(MFD_CLOEXEC | MFD_EXEC): kernels from 6.3 on know
 * MFD_EXEC and, under vm.memfd_noexec=1, seal a memfd created without it
 * against execution; older kernels reject the unknown flag with EINVAL, so
 * the call is retried without it.  Where memfd_create is missing or refused
 * (ENOSYS, EPERM, EACCES: seccomp filters, vm.memfd_noexec=2) a file is
 * created in /dev/shm with O_EXCL and unlinked at once; a noexec mount there
 * is refused with an error that says so.
 *
 * IMA.  With an IMA policy that measures executable mappings, the first
 * PROT_EXEC mapping of a file hashes the whole file; a memfd sized to 2 GiB
 * stalls there for seconds.  The file is therefore mapped executable once
 * while it is one page long, before it grows; the measurement is kept for
 * the life of the open file.  That first mapping is made at the first page of
 * the writable side's reservation, which the file's PROT_NONE mapping then
 * replaces (for a child's file, at a temporary mapping).
 *
 * Size.  The file grows (under the pair's lock) to cover the highest
 * committed offset, at least doubling each time, in whole GROW_STEP units.
 * It stays sparse: decommitting punches a hole.  RLIMIT_FSIZE is checked
 * before every growth, because growing a file past it raises SIGXFSZ, which
 * kills the process by default: the commit fails with -EFBIG instead.
 *
 * fork.  Both views are MAP_SHARED, so a child would otherwise write into its
 * parent's code (and see the parent's frees).  The fork hooks (called from
 * the library's pthread_atfork handlers, after every handle's own locks) give
 * the child of a fork() its own file: prepare takes the list lock and every
 * pair's lock (so no commit or decommit is half done), and makes for each
 * pair a new file holding a copy of the committed pages (only the data in
 * them: SEEK_DATA/SEEK_HOLE skips holes, and the copy is done in the kernel
 * with copy_file_range where it can).  Copying in the parent, before fork,
 * means the parent cannot change the pages while they are copied.  The
 * child hook maps the new file over the whole writable side and the
 * executable side of every committed run, at the same addresses, and opens
 * the writable side of those runs, before fork() returns in the child; the
 * parent hook closes the parent's descriptor of it.  If the child cannot get
 * its own file, its writable side is made PROT_NONE (it can never write into
 * the parent's code) and its commits fail with a message saying why; the
 * code already mapped keeps running.  vfork, posix_spawn and raw clone run
 * no atfork handlers: they are for exec, which closes the file (close-on-exec)
 * and drops the mappings.
 */
#include "os/os.h"
#include "os/hold.h"
#include "base/error.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U   /* Linux 6.3: executable memfd, stated explicitly */
#endif
#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef ST_NOEXEC
#define ST_NOEXEC 8
#endif

#define GROW_STEP     ((uint64_t)1 << 20)   /* the file grows in whole MiB      */
#define SHM_DIR       "/dev/shm"

struct vmc_os_dual {
    uintptr_t x, w;              /* the two sides                            */
    size_t len;
    uintptr_t hole_lo, hole_hi;  /* not ours, on the executable side (os.h)  */
    pthread_mutex_t lock;        /* commits, decommits, growth, fork         */
    int fd;                      /* the memory file, or -1 (broken by fork)  */
    size_t file_size;            /* its current size                         */
    uint64_t *committed;         /* one bit per page: code from the file     */
    size_t npages;
    int broken;                  /* after a failed fork copy: its -errno     */
    char why[160];               /* ... and what failed                      */
    int fork_fd;                 /* during fork: the child's file, or -1     */
    int fork_err;                /* ... or why it could not be made          */
    struct vmc_os_dual *next;    /* every open pair (fork)                   */
};

static pthread_mutex_t dual_list_lock = PTHREAD_MUTEX_INITIALIZER;
static vmc_os_dual_t *dual_list;

/* ---- committed-page bitmap (under the pair's lock) ------------------------- */

static void bits_set(vmc_os_dual_t *d, size_t first, size_t n, int on)
{
    for (size_t i = first; i < first + n; i++) {
        uint64_t m = (uint64_t)1 << (i % 64);
        if (on) d->committed[i / 64] |= m;
        else d->committed[i / 64] &= ~m;
    }
}

static int bits_any(const vmc_os_dual_t *d, size_t first, size_t n)
{
    for (size_t i = first; i < first + n; i++)
        if (d->committed[i / 64] >> (i % 64) & 1) return 1;
    return 0;
}

/* The next run of committed pages at or after page `from`: [*a, *b).
 * Returns 0 when there is none. */
static int bits_next_run(const vmc_os_dual_t *d, size_t from, size_t *a, size_t *b)
{
    size_t i = from;
    while (i < d->npages) {
        uint64_t w = d->committed[i / 64] >> (i % 64);
        if (!w) {
            i = (i / 64 + 1) * 64;
            continue;
        }
        i += (size_t)__builtin_ctzll(w);
        break;
    }
    if (i >= d->npages) return 0;
    size_t j = i;
    while (j < d->npages && (d->committed[j / 64] >> (j % 64) & 1)) j++;
    *a = i;
    *b = j;
    return 1;
}

/* ---- the memory file ---------------------------------------------------------- */

/* Check RLIMIT_FSIZE for a file of `size` bytes. */
static int file_size_allowed(uint64_t size, uint64_t *limit)
{
    int e = vmc__os_getrlimit(RLIMIT_FSIZE, limit);
    if (e) return e;
    return size > *limit ? -EFBIG : 0;
}

/* Map the file executable while it is one page long (IMA measures a file at
 * its first executable mapping).  With `at`, at that PROT_NONE page of the
 * writable side's reservation, which the caller then maps over; without, a
 * temporary mapping wherever the kernel likes, unmapped at once. */
static int file_prime_exec(int fd, uintptr_t at, char *why, size_t whylen)
{
    size_t page = vmc__os_page_size();
    uint64_t limit;
    int e = file_size_allowed(page, &limit);
    if (e) {
        if (e == -EFBIG)
            snprintf(why, whylen, "RLIMIT_FSIZE (%llu bytes; see ulimit -f) is below one page",
                     (unsigned long long)limit);
        else
            snprintf(why, whylen, "getrlimit: %s", strerror(-e));
        return e;
    }
    e = vmc__os_ftruncate(fd, (off_t)page);
    if (e) {
        snprintf(why, whylen, "cannot size the code file to one page: ftruncate: %s",
                 strerror(-e));
        return e;
    }
    void *p;
    e = vmc__os_mmap((void *)at, page, PROT_READ | PROT_EXEC, MAP_SHARED | (at ? MAP_FIXED : 0),
                     fd, 0, &p);
    if (e) {
        snprintf(why, whylen, "cannot map the code file executable: mmap: %s%s", strerror(-e),
                 e == -EPERM || e == -EACCES
                     ? " (a noexec mount, a vm.memfd_noexec policy or a security module refuses it)"
                     : "");
        return e;
    }
    if (!at) vmc__os_munmap(p, page);
    return 0;
}

/* The fallback: a file in /dev/shm, created exclusively, unlinked at once. */
static int file_create_shm(int *out, char *why, size_t whylen)
{
    char path[64];
    int fd = -1, e = -EEXIST;
    for (int attempt = 0; attempt < 8 && e == -EEXIST; attempt++) {
        uint64_t rnd;
        e = vmc__os_getrandom(&rnd, sizeof rnd);
        if (e) {
            snprintf(why, whylen, "cannot name a file in " SHM_DIR ": getrandom: %s",
                     strerror(-e));
            return e;
        }
        snprintf(path, sizeof path, SHM_DIR "/vmcode-%016llx", (unsigned long long)rnd);
        e = vmc__os_open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600, &fd);
    }
    if (e) {
        snprintf(why, whylen, "cannot create %s: %s", path, strerror(-e));
        return e;
    }
    e = vmc__os_unlink(path);
    if (e) {
        snprintf(why, whylen, "cannot unlink %s: %s", path, strerror(-e));
        vmc__os_close(fd);
        vmc__os_unlink(path);  /* once more: leave nothing behind if we can */
        return e;
    }
    unsigned long mflags;
    e = vmc__os_fstatfs_flags(fd, &mflags);
    if (e) {
        snprintf(why, whylen, "cannot check the mount of " SHM_DIR ": fstatfs: %s", strerror(-e));
        vmc__os_close(fd);
        return e;
    }
    if (mflags & ST_NOEXEC) {
        snprintf(why, whylen,
                 SHM_DIR " is mounted noexec, so code cannot be mapped from a file there");
        vmc__os_close(fd);
        return -EACCES;
    }
    *out = fd;
    return 0;
}

/* Create the memory file, empty.  On failure `why` says what failed. */
static int file_create(int *out, char *why, size_t whylen)
{
    int fd;
    int e = vmc__os_memfd_create("vmcode-code", MFD_CLOEXEC | MFD_EXEC, &fd);
    if (e == -EINVAL)  /* a kernel before 6.3 does not know MFD_EXEC */
        e = vmc__os_memfd_create("vmcode-code", MFD_CLOEXEC, &fd);
    if (!e) {
        *out = fd;
        return 0;
    }
    if (e != -ENOSYS && e != -EPERM && e != -EACCES) {
        snprintf(why, whylen, "memfd_create: %s", strerror(-e));
        return e;
    }
    char why2[128];
    int e2 = file_create_shm(&fd, why2, sizeof why2);
    if (e2) {
        snprintf(why, whylen, "memfd_create: %s, and the fallback failed: %s", strerror(-e),
                 why2);
        return e2;
    }
    *out = fd;
    return 0;
}

/* Grow the file to cover `end` (an offset in the pair).  Under the lock. */
static int file_grow(vmc_os_dual_t *d, uint64_t end, uintptr_t addr, size_t len)
{
    if (end <= d->file_size) return 0;
    uint64_t limit;
    int e = file_size_allowed(end, &limit);
    if (e == -EFBIG)
        return vmc__fail(e,
                         "cannot commit %#zx bytes at %#llx: the code file would grow to %llu "
                         "bytes, past RLIMIT_FSIZE (%llu bytes; see ulimit -f)",
                         len, (unsigned long long)addr, (unsigned long long)end,
                         (unsigned long long)limit);
    if (e)
        return vmc__fail(e, "cannot commit %#zx bytes at %#llx: getrlimit: %s", len,
                         (unsigned long long)addr, strerror(-e));
    uint64_t want = (uint64_t)d->file_size * 2;
    if (want < end) want = end;
    want = (want + GROW_STEP - 1) & ~(GROW_STEP - 1);
    if (want > d->len) want = d->len;
    if (want > limit) want = limit & ~(uint64_t)(vmc__os_page_size() - 1);
    if (want < end) want = end;
    e = vmc__os_ftruncate(d->fd, (off_t)want);
    if (e)
        return vmc__fail(e, "cannot commit %#zx bytes at %#llx: cannot grow the code file to "
                            "%llu bytes: ftruncate: %s%s",
                         len, (unsigned long long)addr, (unsigned long long)want, strerror(-e),
                         e == -EFBIG ? " (see ulimit -f)" : "");
    d->file_size = (size_t)want;
    return 0;
}

/* ---- the writable side ------------------------------------------------------ */

/* The whole writable side maps the file PROT_NONE; committing a range makes
 * it read+write with mprotect, decommitting makes it PROT_NONE again.  So
 * every step of a commit or decommit can be undone with a different kind of
 * call than the one that failed (mprotect against mmap), and a failure
 * leaves nothing changed. */
static int wview_map_file(vmc_os_dual_t *d, int fd)
{
    void *p;
    return vmc__os_mmap((void *)d->w, d->len, PROT_NONE, MAP_SHARED | MAP_FIXED, fd, 0, &p);
}

/* Apply `prot` to the writable side, or (exec) map the executable side from
 * the file, for each committed run inside [off, off+len).  Best effort: for
 * putting back what a failed step took away. */
static void runs_restore(vmc_os_dual_t *d, size_t off, size_t len, int exec)
{
    size_t page = vmc__os_page_size(), a, b, end = (off + len) / page;
    for (size_t from = off / page; bits_next_run(d, from, &a, &b) && a < end; from = b) {
        if (b > end) b = end;
        void *p;
        if (exec)
            vmc__os_mmap((void *)(d->x + a * page), (b - a) * page, PROT_READ | PROT_EXEC,
                         MAP_SHARED | MAP_FIXED, d->fd, (off_t)(a * page), &p);
        else
            vmc__os_mprotect((void *)(d->w + a * page), (b - a) * page, PROT_READ | PROT_WRITE);
    }
}

/* ---- fork ------------------------------------------------------------------------ */

/* Copy [off, off+len) of the file to the same place in `nfd`: in the kernel
 * where it can, else through a buffer (prepare runs under dual_list_lock,
 * so one static buffer serves). */
static int fork_copy_range(int fd, int nfd, off_t off, size_t len, char *why, size_t whylen)
{
    static char buf[64 << 10];
    size_t done;
    int e = vmc__os_copy_file_range(fd, nfd, off, len, &done);
    if (!e) return 0;
    if (e != -EXDEV && e != -EINVAL && e != -ENOSYS && e != -EOPNOTSUPP) {
        snprintf(why, whylen, "copy_file_range: %s", strerror(-e));
        return e;
    }
    for (size_t at = done; at < len;) {
        size_t n = len - at < sizeof buf ? len - at : sizeof buf, got;
        e = vmc__os_pread(fd, buf, n, off + (off_t)at, &got);
        if (!e && got != n) e = -EIO;
        if (!e) e = vmc__os_pwrite(nfd, buf, n, off + (off_t)at);
        if (e) {
            snprintf(why, whylen, "copying the code file: %s", strerror(-e));
            return e;
        }
        at += n;
    }
    return 0;
}

/* Copy the data of committed pages to `nfd`; holes (committed, never
 * written) stay holes. */
static int fork_copy(vmc_os_dual_t *d, int nfd, char *why, size_t whylen)
{
    size_t page = vmc__os_page_size(), a, b;
    for (size_t from = 0; bits_next_run(d, from, &a, &b); from = b) {
        off_t pos = (off_t)(a * page), end = (off_t)(b * page);
        while (pos < end) {
            off_t s, h;
            int e = vmc__os_lseek(d->fd, pos, SEEK_DATA, &s);
            if (e == -ENXIO) break;          /* only holes from here to the end */
            if (e == -EINVAL) s = pos;       /* no SEEK_DATA here: copy it all  */
            else if (e) {
                snprintf(why, whylen, "lseek(SEEK_DATA): %s", strerror(-e));
                return e;
            }
            if (s >= end) break;
            e = vmc__os_lseek(d->fd, s, SEEK_HOLE, &h);
            if (e == -EINVAL) h = end;
            else if (e) {
                snprintf(why, whylen, "lseek(SEEK_HOLE): %s", strerror(-e));
                return e;
            }
            if (h > end) h = end;
            e = fork_copy_range(d->fd, nfd, s, (size_t)(h - s), why, whylen);
            if (e) return e;
            pos = h;
        }
    }
    return 0;
}

/* In the parent, before fork, under the pair's lock: make the child's file, a
 * copy of the committed pages as they are now.  Done here rather than in the
 * child so that the parent cannot change the pages while they are copied. */
static void fork_make_file(vmc_os_dual_t *d)
{
    d->fork_fd = -1;
    d->fork_err = 0;
    if (d->broken || d->fd < 0) return;
    char why[128] = "";
    int nfd = -1;
    uint64_t limit;
    int e = file_create(&nfd, why, sizeof why);
    if (e) goto fail;
    e = file_prime_exec(nfd, 0, why, sizeof why);
    if (e) goto fail;
    e = file_size_allowed(d->file_size, &limit);
    if (e) {
        snprintf(why, sizeof why, "the code file (%zu bytes) is past RLIMIT_FSIZE%s",
                 d->file_size, e == -EFBIG ? "" : ": getrlimit failed");
        goto fail;
    }
    e = vmc__os_ftruncate(nfd, (off_t)d->file_size);
    if (e) {
        snprintf(why, sizeof why, "ftruncate: %s", strerror(-e));
        goto fail;
    }
    e = fork_copy(d, nfd, why, sizeof why);
    if (e) goto fail;
    d->fork_fd = nfd;
    return;

fail:
    if (nfd >= 0) vmc__os_close(nfd);
    d->fork_err = e;
    snprintf(d->why, sizeof d->why, "%s", why);
}

/* In the child: the new file over the whole writable side and over the
 * executable side of every committed run; those runs opened read+write. */
static void fork_child_remap(vmc_os_dual_t *d)
{
    if (d->broken || d->fd < 0) return;
    int e = d->fork_err;
    if (!e) {
        size_t page = vmc__os_page_size(), a, b;
        e = wview_map_file(d, d->fork_fd);
        for (size_t from = 0; !e && bits_next_run(d, from, &a, &b); from = b) {
            size_t off = a * page, len = (b - a) * page;
            void *p;
            e = vmc__os_mprotect((void *)(d->w + off), len, PROT_READ | PROT_WRITE);
            if (!e)
                e = vmc__os_mmap((void *)(d->x + off), len, PROT_READ | PROT_EXEC,
                                 MAP_SHARED | MAP_FIXED, d->fork_fd, (off_t)off, &p);
        }
        if (e) snprintf(d->why, sizeof d->why, "remapping: %s", strerror(-e));
        if (!e) {
            vmc__os_close(d->fd);
            d->fd = d->fork_fd;
            d->fork_fd = -1;
            return;
        }
    }
    /* Never leave the child able to write into its parent's code: the whole
     * writable side goes back to PROT_NONE.  Pages of the executable side
     * still mapped from the parent's file stay readable and executable. */
    d->broken = e;
    vmc__os_rereserve(d->w, d->len);
    if (d->fork_fd >= 0) vmc__os_close(d->fork_fd);
    d->fork_fd = -1;
    vmc__os_close(d->fd);
    d->fd = -1;
}

/* The hold list's lock is taken last and released first: the child's
 * remapping is MAP_FIXED, which the audit checks against the list. */
void vmc__os_fork_prepare(void)
{
    pthread_mutex_lock(&dual_list_lock);
    for (vmc_os_dual_t *d = dual_list; d; d = d->next) {
        pthread_mutex_lock(&d->lock);
        fork_make_file(d);
    }
    vmc__os_hold_lock();
}

void vmc__os_fork_parent(void)
{
    vmc__os_hold_unlock();
    for (vmc_os_dual_t *d = dual_list; d; d = d->next) {
        if (d->fork_fd >= 0) vmc__os_close(d->fork_fd);
        d->fork_fd = -1;
        pthread_mutex_unlock(&d->lock);
    }
    pthread_mutex_unlock(&dual_list_lock);
}

void vmc__os_fork_child(void)
{
    vmc__os_hold_unlock();
    for (vmc_os_dual_t *d = dual_list; d; d = d->next) {
        fork_child_remap(d);
        pthread_mutex_unlock(&d->lock);
    }
    pthread_mutex_unlock(&dual_list_lock);
}

/* ---- map, unmap --------------------------------------------------------------------- */

int vmc__os_dual_map(uintptr_t xat, size_t len, uintptr_t hole_lo, uintptr_t hole_hi,
                     vmc_os_dual_t **out, uintptr_t *wat)
{
    size_t page = vmc__os_page_size();
    char why[192];
    if ((hole_lo || hole_hi) &&
        (hole_lo % page || hole_hi % page || hole_lo <= xat || hole_hi <= hole_lo ||
         hole_hi - xat >= len))
        return vmc__fail(-EINVAL, "the W^X pair's hole %#llx-%#llx is not whole pages strictly "
                         "inside %#llx+%#zx", (unsigned long long)hole_lo,
                         (unsigned long long)hole_hi, (unsigned long long)xat, len);
    vmc_os_dual_t *d = calloc(1, sizeof *d);
    size_t npages = len / page;
    uint64_t *bits = calloc((npages + 63) / 64, sizeof *bits);
    if (!d || !bits) {
        free(d);
        free(bits);
        return vmc__fail(-ENOMEM, "out of memory for the page map");
    }
    d->x = xat;
    d->len = len;
    d->hole_lo = hole_lo;
    d->hole_hi = hole_hi;
    d->fork_fd = -1;
    d->committed = bits;
    d->npages = npages;

    int fd, e = file_create(&fd, why, sizeof why);
    if (e) {
        e = vmc__fail(e, "cannot create the code file: %s", why);
        goto fail_state;
    }
    uintptr_t w;
    e = vmc__os_reserve(0, len, &w);
    if (e) {
        e = vmc__fail(e, "cannot reserve the writable view (%zu bytes): mmap: %s%s", len,
                      strerror(-e), e == -ENOMEM ? " (address space limit? see ulimit -v)" : "");
        goto fail_fd;
    }
    vmc__os_hold(w, w + len);
    e = file_prime_exec(fd, w, why, sizeof why);
    if (e) {
        e = vmc__fail(e, "%s", why);
        goto fail_view;
    }
    d->w = w;
    e = wview_map_file(d, fd);
    if (e) {
        e = vmc__fail(e, "cannot map the code file at the writable view: mmap: %s", strerror(-e));
        goto fail_view;
    }
    d->fd = fd;
    d->file_size = page;
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_lock(&dual_list_lock);
    d->next = dual_list;
    dual_list = d;
    pthread_mutex_unlock(&dual_list_lock);
    *out = d;
    *wat = w;
    return 0;

fail_view:
    vmc__os_unhold(w, w + len);
    vmc__os_munmap((void *)w, len);
fail_fd:
    vmc__os_close(fd);
fail_state:
    free(bits);
    free(d);
    return e;
}

void vmc__os_dual_unmap(vmc_os_dual_t *d)
{
    if (!d) return;
    pthread_mutex_lock(&dual_list_lock);
    for (vmc_os_dual_t **pp = &dual_list; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    pthread_mutex_unlock(&dual_list_lock);
    vmc__os_unhold(d->w, d->w + d->len);
    vmc__os_munmap((void *)d->w, d->len);
    if (d->fd >= 0) vmc__os_close(d->fd);
    pthread_mutex_destroy(&d->lock);
    free(d->committed);
    free(d);
}

int vmc__os_dual_file(vmc_os_dual_t *d, int *fd, size_t *size)
{
    pthread_mutex_lock(&d->lock);
    *fd = d->fd;
    *size = d->file_size;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

/* ---- commit, decommit ------------------------------------------------------------- */

/* 0 if [addr, addr+len) is whole pages of the pair clear of its hole; else
 * the failure, for `what` ("commit", "decommit"). */
static int check_range(const vmc_os_dual_t *d, uintptr_t addr, size_t len, const char *what)
{
    size_t page = vmc__os_page_size();
    if (!len || addr < d->x || len > d->len || addr - d->x > d->len - len || addr % page ||
        len % page)
        return vmc__fail(-EINVAL, "cannot %s %#zx bytes at %#llx: not whole pages of the W^X pair",
                         what, len, (unsigned long long)addr);
    /* Nothing of the pair is ever mapped in the hole: it is someone else's. */
    if (addr < d->hole_hi && addr + len > d->hole_lo)
        return vmc__fail(-EINVAL, "cannot %s %#zx bytes at %#llx: the range meets the hole "
                         "%#llx-%#llx, which is not the W^X pair's", what, len,
                         (unsigned long long)addr, (unsigned long long)d->hole_lo,
                         (unsigned long long)d->hole_hi);
    return 0;
}

/* "cannot commit 0x... bytes at 0x...: STEP: why" for a step of a commit or
 * decommit that failed with a mapping call. */
static int step_fail(int e, const char *what, uintptr_t addr, size_t len, const char *step)
{
    return vmc__fail(e, "cannot %s %#zx bytes at %#llx: %s: %s%s", what, len,
                     (unsigned long long)addr, step, strerror(-e), vmc__os_enomem_hint(e));
}

int vmc__os_dual_commit(vmc_os_dual_t *d, uintptr_t addr, size_t len)
{
    size_t page = vmc__os_page_size(), off = addr - d->x;
    int e = check_range(d, addr, len, "commit");
    if (e) return e;
    uintptr_t w = d->w + off;
    void *p;
    pthread_mutex_lock(&d->lock);
    if (d->broken) {
        e = vmc__fail(d->broken,
                      "cannot commit %#zx bytes at %#llx: W^X code cannot be written in this "
                      "process: after fork it could not get its own copy of the code file (%s)",
                      len, (unsigned long long)addr, d->why);
        goto out;
    }
    size_t old_size = d->file_size;
    e = file_grow(d, (uint64_t)off + len, addr, len);
    if (e) goto out;
    e = vmc__os_mprotect((void *)w, len, PROT_READ | PROT_WRITE);
    if (e) {
        e = step_fail(e, "commit", addr, len, "opening the writable view: mprotect");
        goto undo_size;
    }
    e = vmc__os_mmap((void *)addr, len, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED, d->fd,
                     (off_t)off, &p);
    if (e) {
        e = step_fail(e, "commit", addr, len, "mapping the executable view: mmap");
        vmc__os_mprotect((void *)w, len, PROT_NONE);
        goto undo_size;
    }
    bits_set(d, off / page, len / page, 1);
    goto out;

undo_size:
    /* Give back what this call grew (nothing committed lies past old_size). */
    if (d->file_size != old_size && vmc__os_ftruncate(d->fd, (off_t)old_size) == 0)
        d->file_size = old_size;
out:
    pthread_mutex_unlock(&d->lock);
    return e;
}

int vmc__os_dual_decommit(vmc_os_dual_t *d, uintptr_t addr, size_t len)
{
    size_t page = vmc__os_page_size(), off = addr - d->x;
    int e = check_range(d, addr, len, "decommit");
    if (e) return e;
    uintptr_t w = d->w + off;
    pthread_mutex_lock(&d->lock);
    int code = bits_any(d, off / page, len / page), live = code && d->fd >= 0;
    /* The writable side first, so the code cannot change once it is going;
     * then the executable side; then the pages.  Each failure puts back what
     * the steps before it took away. */
    if (live) {
        e = vmc__os_mprotect((void *)w, len, PROT_NONE);
        if (e) {
            e = step_fail(e, "decommit", addr, len, "closing the writable view: mprotect");
            goto out;
        }
    }
    e = vmc__os_rereserve(addr, len);
    if (e) {
        e = vmc__fail(e, "cannot re-reserve %#zx bytes at %#llx: %s: %s%s", len,
                      (unsigned long long)addr, vmc__os_rereserve_call(), strerror(-e),
                      vmc__os_enomem_hint(e));
        if (live) runs_restore(d, off, len, 0);
        goto out;
    }
    if (live && off < d->file_size) {
        size_t n = d->file_size - off < len ? d->file_size - off : len;
        e = vmc__os_fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                              (off_t)n);
        if (e) {
            e = vmc__fail(e, "cannot decommit %#zx bytes at %#llx: freeing the code file's pages: "
                             "fallocate(PUNCH_HOLE): %s",
                          len, (unsigned long long)addr, strerror(-e));
            runs_restore(d, off, len, 1);
            runs_restore(d, off, len, 0);
            goto out;
        }
    }
    if (code) bits_set(d, off / page, len / page, 0);
out:
    pthread_mutex_unlock(&d->lock);
    return e;
}
