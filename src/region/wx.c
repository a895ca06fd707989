/* W^X by dual mapping (see wx.h).
 *
 * One memory file backs the code region.  A page at region offset `off` is
 * file offset `off`, mapped read+execute at base+off (the executable view,
 * inside the region's reservation) and read+write at wbase+off (the writable
 * view, a second reservation of the same size).
 *
 * The writable view maps the whole file once, PROT_NONE; committing a range
 * opens it read+write with mprotect and decommitting closes it again.  The
 * executable view maps the file read+execute over a committed VMC_CODE range
 * only; elsewhere it is the region's PROT_NONE anonymous reservation (or
 * whatever the layers above put there: private data, a library image, a
 * file).  So a commit is mprotect + mmap and a decommit mprotect + mmap +
 * fallocate, and whichever step fails, the steps before it are undone with a
 * different kind of call: a failure changes nothing even when that kind of
 * call keeps failing.  The executable view gets its protection from mmap and
 * is never writable, so no address is ever writable and executable, and
 * hardened policies that allow execution only from memory mapped executable
 * are met.
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
 * the writable view's reservation, which the file's PROT_NONE mapping then
 * replaces (for a child's file, at a temporary mapping).
 *
 * Size.  The file grows (under r->file_lock) to cover the highest committed
 * offset, at least doubling each time, in whole GROW_STEP units.  It stays
 * sparse: decommitting punches a hole.  RLIMIT_FSIZE is checked before every
 * growth, because growing a file past it raises SIGXFSZ, which kills the
 * process by default: the commit fails with -EFBIG instead.
 *
 * fork.  Both views are MAP_SHARED, so a child would otherwise write into its
 * parent's code (and see the parent's frees).  pthread_atfork handlers give
 * the child of a fork() its own file: the prepare handler takes the list lock
 * and every region's file lock (so no commit or decommit is half done), and
 * makes for each W^X region a new file holding a copy of the committed pages
 * (only the data in them: SEEK_DATA/SEEK_HOLE skips holes, and the copy is
 * done in the kernel with copy_file_range where it can).  Copying in the
 * parent, before fork, means the parent cannot change the pages while they
 * are copied.  The child handler maps the new file over the whole writable
 * view and the executable view of every committed run, at the same addresses,
 * and opens the writable view of those runs, before fork() returns in the child;
 * the parent handler closes the parent's descriptor of it.  If the child
 * cannot get its own file, its writable view is made PROT_NONE (it can never
 * write into the parent's code) and its commits fail with a message saying
 * why; the code already mapped keeps running.  vfork, posix_spawn and raw
 * clone run no atfork handlers: they are for exec, which closes the file
 * (close-on-exec) and drops the mappings.
 */
#include "region/wx.h"
#include "base/error.h"
#include "os/os.h"

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

typedef struct vmc_wx_state {
    vmc_region_t *r;             /* the region this belongs to               */
    struct vmc_wx_state *next;   /* the list of open W^X regions (fork)      */
    uint64_t *committed;         /* one bit per page: VMC_CODE from the file */
    size_t npages;               /* pages in the region                      */
    int broken;                  /* after a failed fork copy: its -errno     */
    char why[160];               /* ... and what failed                      */
    int fork_fd;                 /* during fork: the child's file, or -1     */
    int fork_err;                /* ... or why it could not be made          */
} vmc_wx_state_t;

static pthread_mutex_t wx_list_lock = PTHREAD_MUTEX_INITIALIZER;
static vmc_wx_state_t *wx_list;

/* ---- committed-page bitmap (under r->file_lock) --------------------------- */

static void bits_set(vmc_wx_state_t *st, size_t first, size_t n, int on)
{
    for (size_t i = first; i < first + n; i++) {
        uint64_t m = (uint64_t)1 << (i % 64);
        if (on) st->committed[i / 64] |= m;
        else st->committed[i / 64] &= ~m;
    }
}

static int bits_any(const vmc_wx_state_t *st, size_t first, size_t n)
{
    for (size_t i = first; i < first + n; i++)
        if (st->committed[i / 64] >> (i % 64) & 1) return 1;
    return 0;
}

/* The next run of committed pages at or after page `from`: [*a, *b).
 * Returns 0 when there is none. */
static int bits_next_run(const vmc_wx_state_t *st, size_t from, size_t *a, size_t *b)
{
    size_t i = from;
    while (i < st->npages) {
        uint64_t w = st->committed[i / 64] >> (i % 64);
        if (!w) {
            i = (i / 64 + 1) * 64;
            continue;
        }
        i += (size_t)__builtin_ctzll(w);
        break;
    }
    if (i >= st->npages) return 0;
    size_t j = i;
    while (j < st->npages && (st->committed[j / 64] >> (j % 64) & 1)) j++;
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
 * writable view's reservation, which the caller then maps over; without, a
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

/* Grow the file to cover `end` (a region offset).  Under r->file_lock. */
static int file_grow(vmc_region_t *r, uint64_t end, uintptr_t addr, size_t len)
{
    if (end <= r->file_size) return 0;
    uint64_t limit;
    int e = file_size_allowed(end, &limit);
    if (e == -EFBIG)
        return vmc__fail(e,
                         "code region: cannot commit %#zx bytes at %#lx: the code file would "
                         "grow to %llu bytes, past RLIMIT_FSIZE (%llu bytes; see ulimit -f)",
                         len, (unsigned long)addr, (unsigned long long)end,
                         (unsigned long long)limit);
    if (e)
        return vmc__fail(e, "code region: cannot commit %#zx bytes at %#lx: getrlimit: %s", len,
                         (unsigned long)addr, strerror(-e));
    uint64_t want = (uint64_t)r->file_size * 2;
    if (want < end) want = end;
    want = (want + GROW_STEP - 1) & ~(GROW_STEP - 1);
    if (want > r->size) want = r->size;
    if (want > limit) want = limit & ~(uint64_t)(vmc__os_page_size() - 1);
    if (want < end) want = end;
    e = vmc__os_ftruncate(r->fd, (off_t)want);
    if (e)
        return vmc__fail(e, "code region: cannot commit %#zx bytes at %#lx: cannot grow the "
                            "code file to %llu bytes: ftruncate: %s%s",
                         len, (unsigned long)addr, (unsigned long long)want, strerror(-e),
                         e == -EFBIG ? " (see ulimit -f)" : "");
    r->file_size = (size_t)want;
    return 0;
}

/* ---- the writable view ------------------------------------------------------ */

/* The whole writable view maps the file PROT_NONE; committing a range makes
 * it read+write with mprotect, decommitting makes it PROT_NONE again.  So
 * every step of a commit or decommit can be undone with a different kind of
 * call than the one that failed (mprotect against mmap), and a failure
 * leaves nothing changed. */
static int wview_map_file(vmc_region_t *r, int fd)
{
    void *p;
    return vmc__os_mmap((void *)r->wbase, r->size, PROT_NONE, MAP_SHARED | MAP_FIXED, fd, 0, &p);
}

/* Apply `prot` to the writable view, or (exec) map the executable view from
 * the file, for each committed run inside [off, off+len).  Best effort: for
 * putting back what a failed step took away. */
static void runs_restore(vmc_wx_state_t *st, size_t off, size_t len, int exec)
{
    vmc_region_t *r = st->r;
    size_t page = vmc__os_page_size(), a, b, end = (off + len) / page;
    for (size_t from = off / page; bits_next_run(st, from, &a, &b) && a < end; from = b) {
        if (b > end) b = end;
        void *p;
        if (exec)
            vmc__os_mmap((void *)(r->base + a * page), (b - a) * page, PROT_READ | PROT_EXEC,
                         MAP_SHARED | MAP_FIXED, r->fd, (off_t)(a * page), &p);
        else
            vmc__os_mprotect((void *)(r->wbase + a * page), (b - a) * page,
                             PROT_READ | PROT_WRITE);
    }
}

/* ---- fork ------------------------------------------------------------------------ */

/* Copy [off, off+len) of the file to the same place in `nfd`: in the kernel
 * where it can, else through a buffer (prepare runs under wx_list_lock, so
 * one static buffer serves). */
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
static int fork_copy(vmc_wx_state_t *st, int nfd, char *why, size_t whylen)
{
    vmc_region_t *r = st->r;
    size_t page = vmc__os_page_size(), a, b;
    for (size_t from = 0; bits_next_run(st, from, &a, &b); from = b) {
        off_t pos = (off_t)(a * page), end = (off_t)(b * page);
        while (pos < end) {
            off_t d, h;
            int e = vmc__os_lseek(r->fd, pos, SEEK_DATA, &d);
            if (e == -ENXIO) break;          /* only holes from here to the end */
            if (e == -EINVAL) d = pos;       /* no SEEK_DATA here: copy it all  */
            else if (e) {
                snprintf(why, whylen, "lseek(SEEK_DATA): %s", strerror(-e));
                return e;
            }
            if (d >= end) break;
            e = vmc__os_lseek(r->fd, d, SEEK_HOLE, &h);
            if (e == -EINVAL) h = end;
            else if (e) {
                snprintf(why, whylen, "lseek(SEEK_HOLE): %s", strerror(-e));
                return e;
            }
            if (h > end) h = end;
            e = fork_copy_range(r->fd, nfd, d, (size_t)(h - d), why, whylen);
            if (e) return e;
            pos = h;
        }
    }
    return 0;
}

/* In the parent, before fork, under the file lock: make the child's file, a
 * copy of the committed pages as they are now.  Done here rather than in the
 * child so that the parent cannot change the pages while they are copied. */
static void fork_make_file(vmc_wx_state_t *st)
{
    vmc_region_t *r = st->r;
    st->fork_fd = -1;
    st->fork_err = 0;
    if (st->broken || r->fd < 0) return;
    char why[128] = "";
    int nfd = -1;
    uint64_t limit;
    int e = file_create(&nfd, why, sizeof why);
    if (e) goto fail;
    e = file_prime_exec(nfd, 0, why, sizeof why);
    if (e) goto fail;
    e = file_size_allowed(r->file_size, &limit);
    if (e) {
        snprintf(why, sizeof why, "the code file (%zu bytes) is past RLIMIT_FSIZE%s",
                 r->file_size, e == -EFBIG ? "" : ": getrlimit failed");
        goto fail;
    }
    e = vmc__os_ftruncate(nfd, (off_t)r->file_size);
    if (e) {
        snprintf(why, sizeof why, "ftruncate: %s", strerror(-e));
        goto fail;
    }
    e = fork_copy(st, nfd, why, sizeof why);
    if (e) goto fail;
    st->fork_fd = nfd;
    return;

fail:
    if (nfd >= 0) vmc__os_close(nfd);
    st->fork_err = e;
    snprintf(st->why, sizeof st->why, "%s", why);
}

/* In the child: the new file over the whole writable view and over the
 * executable view of every committed run; those runs opened read+write. */
static void fork_child_remap(vmc_wx_state_t *st)
{
    vmc_region_t *r = st->r;
    if (st->broken || r->fd < 0) return;
    int e = st->fork_err;
    if (!e) {
        size_t page = vmc__os_page_size(), a, b;
        e = wview_map_file(r, st->fork_fd);
        for (size_t from = 0; !e && bits_next_run(st, from, &a, &b); from = b) {
            size_t off = a * page, len = (b - a) * page;
            void *p;
            e = vmc__os_mprotect((void *)(r->wbase + off), len, PROT_READ | PROT_WRITE);
            if (!e)
                e = vmc__os_mmap((void *)(r->base + off), len, PROT_READ | PROT_EXEC,
                                 MAP_SHARED | MAP_FIXED, st->fork_fd, (off_t)off, &p);
        }
        if (e) snprintf(st->why, sizeof st->why, "remapping: %s", strerror(-e));
        if (!e) {
            vmc__os_close(r->fd);
            r->fd = st->fork_fd;
            st->fork_fd = -1;
            return;
        }
    }
    /* Never leave the child able to write into its parent's code: the whole
     * writable view goes back to PROT_NONE.  Pages of the executable view
     * still mapped from the parent's file stay readable and executable. */
    st->broken = e;
    vmc__os_rereserve(r->wbase, r->size);
    if (st->fork_fd >= 0) vmc__os_close(st->fork_fd);
    st->fork_fd = -1;
    vmc__os_close(r->fd);
    r->fd = -1;
}

void vmc__wx_fork_prepare(void)
{
    pthread_mutex_lock(&wx_list_lock);
    for (vmc_wx_state_t *st = wx_list; st; st = st->next) {
        pthread_mutex_lock(&st->r->file_lock);
        fork_make_file(st);
    }
    vmc__os_fork_prepare();
}

void vmc__wx_fork_parent(void)
{
    vmc__os_fork_parent();
    for (vmc_wx_state_t *st = wx_list; st; st = st->next) {
        if (st->fork_fd >= 0) vmc__os_close(st->fork_fd);
        st->fork_fd = -1;
        pthread_mutex_unlock(&st->r->file_lock);
    }
    pthread_mutex_unlock(&wx_list_lock);
}

void vmc__wx_fork_child(void)
{
    vmc__os_fork_child();
    for (vmc_wx_state_t *st = wx_list; st; st = st->next) {
        fork_child_remap(st);
        pthread_mutex_unlock(&st->r->file_lock);
    }
    pthread_mutex_unlock(&wx_list_lock);
}

/* ---- open, close ------------------------------------------------------------------- */

int vmc__wx_open(vmc_region_t *r)
{
    size_t page = vmc__os_page_size();
    char why[192];
    vmc_wx_state_t *st = calloc(1, sizeof *st);
    size_t npages = r->size / page;
    uint64_t *bits = calloc((npages + 63) / 64, sizeof *bits);
    if (!st || !bits) {
        free(st);
        free(bits);
        return vmc__fail(-ENOMEM, "w_xor_x: out of memory for the page map");
    }
    st->r = r;
    st->fork_fd = -1;
    st->committed = bits;
    st->npages = npages;

    int fd, e = file_create(&fd, why, sizeof why);
    if (e) {
        e = vmc__fail(e, "w_xor_x: cannot create the code file: %s", why);
        goto fail_state;
    }
    uintptr_t wbase;
    e = vmc__os_reserve(0, r->size, &wbase);
    if (e) {
        e = vmc__fail(e, "w_xor_x: cannot reserve the writable view (%zu bytes): mmap: %s%s",
                      r->size, strerror(-e),
                      e == -ENOMEM ? " (address space limit? see ulimit -v)" : "");
        goto fail_fd;
    }
    vmc__os_hold(wbase, wbase + r->size);
    e = file_prime_exec(fd, wbase, why, sizeof why);
    if (e) {
        e = vmc__fail(e, "w_xor_x: %s", why);
        goto fail_view;
    }
    r->wbase = wbase;   /* for wview_map_file; restored on failure */
    e = wview_map_file(r, fd);
    if (e) {
        r->wbase = r->base;
        e = vmc__fail(e, "w_xor_x: cannot map the code file at the writable view: mmap: %s",
                      strerror(-e));
        goto fail_view;
    }

    r->fd = fd;
    r->file_size = page;
    r->wbase = wbase;
    r->wxs = st;
    r->wx = 1;
    pthread_mutex_lock(&wx_list_lock);
    st->next = wx_list;
    wx_list = st;
    pthread_mutex_unlock(&wx_list_lock);
    return 0;

fail_view:
    vmc__os_unhold(wbase, wbase + r->size);
    vmc__os_munmap((void *)wbase, r->size);
fail_fd:
    vmc__os_close(fd);
fail_state:
    free(bits);
    free(st);
    return e;
}

void vmc__wx_close(vmc_region_t *r)
{
    vmc_wx_state_t *st = r->wxs;
    if (!st) return;
    pthread_mutex_lock(&wx_list_lock);
    for (vmc_wx_state_t **pp = &wx_list; *pp; pp = &(*pp)->next) {
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    }
    pthread_mutex_unlock(&wx_list_lock);
    vmc__os_unhold(r->wbase, r->wbase + r->size);
    vmc__os_munmap((void *)r->wbase, r->size);
    if (r->fd >= 0) vmc__os_close(r->fd);
    free(st->committed);
    free(st);
    r->wxs = NULL;
    r->wx = 0;
    r->fd = -1;
    r->file_size = 0;
    r->wbase = r->base;
}

/* ---- commit, decommit ------------------------------------------------------------- */

/* "code region: cannot commit 0x... bytes at 0x...: STEP: why" for a step of
 * a commit or decommit that failed with a mapping call. */
static int step_fail(int e, const char *what, uintptr_t addr, size_t len, const char *step)
{
    return vmc__fail(e, "code region: cannot %s %#zx bytes at %#lx: %s: %s%s", what, len,
                     (unsigned long)addr, step, strerror(-e), vmc__os_enomem_hint(e));
}

int vmc__wx_commit(vmc_region_t *r, uintptr_t addr, size_t len)
{
    vmc_wx_state_t *st = r->wxs;
    size_t page = vmc__os_page_size(), off = addr - r->base;
    uintptr_t w = r->wbase + off;
    void *p;
    pthread_mutex_lock(&r->file_lock);
    int e;
    if (st->broken) {
        e = vmc__fail(st->broken,
                      "code region: cannot commit %#zx bytes at %#lx: W^X code cannot be "
                      "written in this process: after fork it could not get its own copy of "
                      "the code file (%s)",
                      len, (unsigned long)addr, st->why);
        goto out;
    }
    size_t old_size = r->file_size;
    e = file_grow(r, (uint64_t)off + len, addr, len);
    if (e) goto out;
    e = vmc__os_mprotect((void *)w, len, PROT_READ | PROT_WRITE);
    if (e) {
        e = step_fail(e, "commit", addr, len, "opening the writable view: mprotect");
        goto undo_size;
    }
    e = vmc__os_mmap((void *)addr, len, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED, r->fd,
                     (off_t)off, &p);
    if (e) {
        e = step_fail(e, "commit", addr, len, "mapping the executable view: mmap");
        vmc__os_mprotect((void *)w, len, PROT_NONE);
        goto undo_size;
    }
    bits_set(st, off / page, len / page, 1);
    goto out;

undo_size:
    /* Give back what this call grew (nothing committed lies past old_size). */
    if (r->file_size != old_size && vmc__os_ftruncate(r->fd, (off_t)old_size) == 0)
        r->file_size = old_size;
out:
    pthread_mutex_unlock(&r->file_lock);
    return e;
}

int vmc__wx_decommit(vmc_region_t *r, uintptr_t addr, size_t len)
{
    vmc_wx_state_t *st = r->wxs;
    size_t page = vmc__os_page_size(), off = addr - r->base;
    uintptr_t w = r->wbase + off;
    pthread_mutex_lock(&r->file_lock);
    int code = bits_any(st, off / page, len / page), live = code && r->fd >= 0;
    int e = 0;
    /* The writable view first, so the code cannot change once it is going;
     * then the executable view; then the pages.  Each failure puts back what
     * the steps before it took away. */
    if (live) {
        e = vmc__os_mprotect((void *)w, len, PROT_NONE);
        if (e) {
            e = step_fail(e, "decommit", addr, len, "closing the writable view: mprotect");
            goto out;
        }
    }
    e = vmc__region_rereserve(r, addr, len);
    if (e) {
        if (live) runs_restore(st, off, len, 0);
        goto out;
    }
    if (live && off < r->file_size) {
        size_t n = r->file_size - off < len ? r->file_size - off : len;
        e = vmc__os_fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                              (off_t)n);
        if (e) {
            e = vmc__fail(e, "code region: cannot decommit %#zx bytes at %#lx: freeing the "
                             "code file's pages: fallocate(PUNCH_HOLE): %s",
                          len, (unsigned long)addr, strerror(-e));
            runs_restore(st, off, len, 1);
            runs_restore(st, off, len, 0);
            goto out;
        }
    }
    if (code) bits_set(st, off / page, len / page, 0);
out:
    pthread_mutex_unlock(&r->file_lock);
    return e;
}
