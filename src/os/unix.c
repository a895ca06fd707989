/* The OS layer for Linux (see os.h for the contract; W^X pairs and the fork
 * hooks are unix_wx.c's, the hold list hold.c's).
 *
 * Each system call is reached through `os_calls[]`, a table of
 * { name, current, default } entries in the style of SQLite's os_unix.c, so a
 * test can replace an entry or make the Nth call of a kind fail.  The fault
 * check is a relaxed atomic load when no fault is set, which keeps the seam
 * free on the hot paths (none of which make system calls anyway).
 */
#include "os/os.h"
#include "base/attrs.h"
#include "os/hold.h"

#include <dlfcn.h>
#include <errno.h>
#include <sys/auxv.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <inttypes.h>

typedef void (*os_fn)(void);

static int sys_memfd_create(const char *name, unsigned flags)
{
    return (int)syscall(SYS_memfd_create, name, flags);
}
VMC_LOAD_PATH static int sys_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}
static int sys_fstatfs(int fd, struct statfs *st) { return fstatfs(fd, st); }
static int sys_getrlimit(int resource, struct rlimit *rl)
{
    return getrlimit((__rlimit_resource_t)resource, rl);
}

static struct {
    const char *name;
    os_fn current;
    os_fn dflt;
} os_calls[VMC_OS_CALL_COUNT] = {
    [VMC_OS_MMAP]         = {"mmap", (os_fn)mmap, (os_fn)mmap},
    [VMC_OS_MUNMAP]       = {"munmap", (os_fn)munmap, (os_fn)munmap},
    [VMC_OS_MPROTECT]     = {"mprotect", (os_fn)mprotect, (os_fn)mprotect},
    [VMC_OS_MADVISE]      = {"madvise", (os_fn)madvise, (os_fn)madvise},
    [VMC_OS_MEMFD_CREATE] = {"memfd_create", (os_fn)sys_memfd_create, (os_fn)sys_memfd_create},
    [VMC_OS_FTRUNCATE]    = {"ftruncate", (os_fn)ftruncate, (os_fn)ftruncate},
    [VMC_OS_FALLOCATE]    = {"fallocate", (os_fn)fallocate, (os_fn)fallocate},
    [VMC_OS_OPEN]         = {"open", (os_fn)sys_open, (os_fn)sys_open},
    [VMC_OS_CLOSE]        = {"close", (os_fn)close, (os_fn)close},
    [VMC_OS_PREAD]        = {"pread", (os_fn)pread, (os_fn)pread},
    [VMC_OS_PWRITE]       = {"pwrite", (os_fn)pwrite, (os_fn)pwrite},
    [VMC_OS_FSTAT]        = {"fstat", (os_fn)fstat, (os_fn)fstat},
    [VMC_OS_FSTATFS]      = {"fstatfs", (os_fn)sys_fstatfs, (os_fn)sys_fstatfs},
    [VMC_OS_GETRANDOM]    = {"getrandom", (os_fn)getrandom, (os_fn)getrandom},
    [VMC_OS_UNLINK]       = {"unlink", (os_fn)unlink, (os_fn)unlink},
    [VMC_OS_LSEEK]        = {"lseek", (os_fn)lseek, (os_fn)lseek},
    [VMC_OS_GETRLIMIT]    = {"getrlimit", (os_fn)sys_getrlimit, (os_fn)sys_getrlimit},
    [VMC_OS_COPY_FILE_RANGE] = {"copy_file_range", (os_fn)copy_file_range, (os_fn)copy_file_range},
};

#define CALL(kind, type) ((type)os_calls[kind].current)

/* ---- fault seam ------------------------------------------------------------ */

static struct {
    atomic_int armed;           /* a fault is set for this kind             */
    atomic_ulong seen;          /* calls since the fault was set            */
    unsigned long nth;          /* fail the nth call (1-based)              */
    int err;                    /* errno to return                          */
    int persistent;             /* fail every call from the nth on          */
} os_faults[VMC_OS_CALL_COUNT];
static atomic_ulong os_faults_hit;
static atomic_ulong os_call_counts[VMC_OS_CALL_COUNT];

void vmc__os_fault(enum vmc_os_call call, unsigned long nth, int err, int persistent)
{
    os_faults[call].nth = nth ? nth : 1;
    os_faults[call].err = err;
    os_faults[call].persistent = persistent;
    atomic_store(&os_faults[call].seen, 0);
    atomic_store(&os_faults[call].armed, 1);
}

void vmc__os_fault_clear(void)
{
    for (int i = 0; i < VMC_OS_CALL_COUNT; i++)
        atomic_store(&os_faults[i].armed, 0);
    atomic_store(&os_faults_hit, 0);
}

unsigned long vmc__os_faults_hit(void) { return atomic_load(&os_faults_hit); }

unsigned long vmc__os_calls(enum vmc_os_call call)
{
    return atomic_load_explicit(&os_call_counts[call], memory_order_relaxed);
}

void vmc__os_calls_reset(void)
{
    for (int i = 0; i < VMC_OS_CALL_COUNT; i++)
        atomic_store(&os_call_counts[i], 0);
}

const char *vmc__os_call_name(enum vmc_os_call call)
{
    return (unsigned)call < VMC_OS_CALL_COUNT ? os_calls[call].name : "?";
}

void vmc__os_set_call(enum vmc_os_call call, void (*fn)(void))
{
    os_calls[call].current = fn ? fn : os_calls[call].dflt;
}

/* Returns the negative errno to fail this call with, or 0 to make it. */
VMC_LOAD_PATH static int os_enter(enum vmc_os_call call)
{
    atomic_fetch_add_explicit(&os_call_counts[call], 1, memory_order_relaxed);
    if (!atomic_load_explicit(&os_faults[call].armed, memory_order_relaxed))
        return 0;
    unsigned long n = atomic_fetch_add(&os_faults[call].seen, 1) + 1;
    if (n == os_faults[call].nth || (os_faults[call].persistent && n > os_faults[call].nth)) {
        atomic_fetch_add(&os_faults_hit, 1);
        return -os_faults[call].err;
    }
    return 0;
}

/* ---- MAP_FIXED audit (the hold list is hold.c's) ----------------------------- */

static void os_audit_fixed(void *addr, size_t len, int flags)
{
    if ((flags & MAP_FIXED) && (flags & MAP_FIXED_NOREPLACE) != MAP_FIXED_NOREPLACE)
        vmc__os_audit_fixed_range((uintptr_t)addr, len, "MAP_FIXED");
}

/* ---- the calls ----------------------------------------------------------- */

VMC_LOAD_PATH int vmc__os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, void **out)
{
    os_audit_fixed(addr, len, flags);
    int e = os_enter(VMC_OS_MMAP);
    if (e) return e;
    void *p = CALL(VMC_OS_MMAP, void *(*)(void *, size_t, int, int, int, off_t))(
        addr, len, prot, flags, fd, off);
    if (p == MAP_FAILED) return -errno;
    *out = p;
    return 0;
}

#define RESERVE_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)

int vmc__os_reserve(uintptr_t at, size_t size, uintptr_t *out)
{
    void *p;
    int flags = RESERVE_FLAGS | (at ? MAP_FIXED_NOREPLACE : 0);
    int r = vmc__os_mmap((void *)at, size, PROT_NONE, flags, -1, 0, &p);
    if (r) return r;
    if (at && (uintptr_t)p != at) {
        /* A kernel before 4.17 takes NOREPLACE as a hint and puts it elsewhere. */
        vmc__os_munmap(p, size);
        return -EEXIST;
    }
    *out = (uintptr_t)p;
    return 0;
}

VMC_LOAD_PATH int vmc__os_rereserve(uintptr_t addr, size_t len)
{
    void *p;
    return vmc__os_mmap((void *)addr, len, PROT_NONE, RESERVE_FLAGS | MAP_FIXED, -1, 0, &p);
}

const char *vmc__os_rereserve_call(void) { return "mmap"; }

int vmc__os_munmap(void *addr, size_t len)
{
    int e = os_enter(VMC_OS_MUNMAP);
    if (e) return e;
    return CALL(VMC_OS_MUNMAP, int (*)(void *, size_t))(addr, len) ? -errno : 0;
}

VMC_LOAD_PATH int vmc__os_mprotect(void *addr, size_t len, int prot)
{
    int e = os_enter(VMC_OS_MPROTECT);
    if (e) return e;
    return CALL(VMC_OS_MPROTECT, int (*)(void *, size_t, int))(addr, len, prot) ? -errno : 0;
}

int vmc__os_madvise(void *addr, size_t len, int advice)
{
    int e = os_enter(VMC_OS_MADVISE);
    if (e) return e;
    return CALL(VMC_OS_MADVISE, int (*)(void *, size_t, int))(addr, len, advice) ? -errno : 0;
}

int vmc__os_memfd_create(const char *name, unsigned flags, int *fd)
{
    int e = os_enter(VMC_OS_MEMFD_CREATE);
    if (e) return e;
    int r = CALL(VMC_OS_MEMFD_CREATE, int (*)(const char *, unsigned))(name, flags);
    if (r < 0) return -errno;
    *fd = r;
    return 0;
}

int vmc__os_ftruncate(int fd, off_t len)
{
    int e = os_enter(VMC_OS_FTRUNCATE);
    if (e) return e;
    return CALL(VMC_OS_FTRUNCATE, int (*)(int, off_t))(fd, len) ? -errno : 0;
}

int vmc__os_fallocate(int fd, int mode, off_t off, off_t len)
{
    int e = os_enter(VMC_OS_FALLOCATE);
    if (e) return e;
    return CALL(VMC_OS_FALLOCATE, int (*)(int, int, off_t, off_t))(fd, mode, off, len) ? -errno : 0;
}

VMC_LOAD_PATH int vmc__os_open(const char *path, int flags, mode_t mode, int *fd)
{
    int e = os_enter(VMC_OS_OPEN);
    if (e) return e;
    int r;
    do r = CALL(VMC_OS_OPEN, int (*)(const char *, int, mode_t))(path, flags | O_CLOEXEC, mode);
    while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    *fd = r;
    return 0;
}

VMC_LOAD_PATH int vmc__os_close(int fd)
{
    /* Linux releases the descriptor whatever close reports, so an injected
     * failure closes it too and only the result differs. */
    int e = os_enter(VMC_OS_CLOSE);
    int r = CALL(VMC_OS_CLOSE, int (*)(int))(fd);
    if (e) return e;
    if (r && errno != EINTR) return -errno;
    return 0;
}

VMC_LOAD_PATH int vmc__os_pread(int fd, void *buf, size_t len, off_t off, size_t *got)
{
    int e = os_enter(VMC_OS_PREAD);
    if (e) return e;
    size_t done = 0;
    while (done < len) {
        ssize_t r = CALL(VMC_OS_PREAD, ssize_t (*)(int, void *, size_t, off_t))(
            fd, (char *)buf + done, len - done, off + (off_t)done);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

int vmc__os_pwrite(int fd, const void *buf, size_t len, off_t off)
{
    int e = os_enter(VMC_OS_PWRITE);
    if (e) return e;
    size_t done = 0;
    while (done < len) {
        ssize_t r = CALL(VMC_OS_PWRITE, ssize_t (*)(int, const void *, size_t, off_t))(
            fd, (const char *)buf + done, len - done, off + (off_t)done);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) return -EIO;
        done += (size_t)r;
    }
    return 0;
}

VMC_LOAD_PATH int vmc__os_fstat(int fd, struct stat *st)
{
    int e = os_enter(VMC_OS_FSTAT);
    if (e) return e;
    return CALL(VMC_OS_FSTAT, int (*)(int, struct stat *))(fd, st) ? -errno : 0;
}

int vmc__os_fstatfs_flags(int fd, unsigned long *mount_flags)
{
    int e = os_enter(VMC_OS_FSTATFS);
    if (e) return e;
    struct statfs st;
    if (CALL(VMC_OS_FSTATFS, int (*)(int, struct statfs *))(fd, &st)) return -errno;
    *mount_flags = (unsigned long)st.f_flags;
    return 0;
}

int vmc__os_getrandom(void *buf, size_t len)
{
    int e = os_enter(VMC_OS_GETRANDOM);
    if (e) return e;
    size_t done = 0;
    while (done < len) {
        ssize_t r = CALL(VMC_OS_GETRANDOM, ssize_t (*)(void *, size_t, unsigned))(
            (char *)buf + done, len - done, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        done += (size_t)r;
    }
    return 0;
}

int vmc__os_unlink(const char *path)
{
    int e = os_enter(VMC_OS_UNLINK);
    if (e) return e;
    return CALL(VMC_OS_UNLINK, int (*)(const char *))(path) ? -errno : 0;
}

int vmc__os_lseek(int fd, off_t off, int whence, off_t *out)
{
    int e = os_enter(VMC_OS_LSEEK);
    if (e) return e;
    off_t r = CALL(VMC_OS_LSEEK, off_t (*)(int, off_t, int))(fd, off, whence);
    if (r < 0) return -errno;
    *out = r;
    return 0;
}

int vmc__os_copy_file_range(int fd_in, int fd_out, off_t off, size_t len, size_t *done)
{
    *done = 0;
    int e = os_enter(VMC_OS_COPY_FILE_RANGE);
    if (e) return e;
    while (*done < len) {
        off_t in = off + (off_t)*done, out = in;
        ssize_t r = CALL(VMC_OS_COPY_FILE_RANGE,
                         ssize_t (*)(int, off_t *, int, off_t *, size_t, unsigned))(
            fd_in, &in, fd_out, &out, len - *done, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) return -EIO;  /* the source ended early */
        *done += (size_t)r;
    }
    return 0;
}

int vmc__os_getrlimit(int resource, uint64_t *soft)
{
    int e = os_enter(VMC_OS_GETRLIMIT);
    if (e) return e;
    struct rlimit rl;
    if (CALL(VMC_OS_GETRLIMIT, int (*)(int, struct rlimit *))(resource, &rl)) return -errno;
    *soft = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    return 0;
}

const char *vmc__os_enomem_hint(int err)
{
    return err == -ENOMEM ? " (too many mappings? see vm.max_map_count)" : "";
}

VMC_LOAD_PATH size_t vmc__os_page_size(void)
{
    static size_t page;
    if (!page) page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

/* ---- address space ------------------------------------------------------------
 * Linux maps anything over part of a mapping with MAP_FIXED, so each verb is
 * one call, made through the table above (fault injection counts them as
 * the mmap/mprotect/munmap calls they are). */

_Static_assert(VMC_OS_READ == PROT_READ && VMC_OS_WRITE == PROT_WRITE && VMC_OS_EXEC == PROT_EXEC,
               "the contract's protections are Linux's");

static _Thread_local unsigned long os_detail;

static int detail(int e)
{
    os_detail = e < 0 ? (unsigned long)-e : 0;
    return e;
}

VMC_LOAD_PATH unsigned vmc__os_caps(void) { return VMC_OS_CAP_OVERLAY | VMC_OS_CAP_FORK | VMC_OS_CAP_DUAL; }
VMC_LOAD_PATH size_t vmc__os_granularity(void) { return vmc__os_page_size(); }
size_t vmc__os_slot_size(void) { return 0; }
unsigned long vmc__os_last_detail(void) { return os_detail; }
/* errno is the detail here, and strerror already says it. */
const char *vmc__os_why(int e) { return strerror(-e); }

int vmc__os_release(uintptr_t base, size_t len)
{
    return detail(vmc__os_munmap((void *)base, len));
}

int vmc__os_commit(uintptr_t addr, size_t len, int prot)
{
    return detail(vmc__os_mprotect((void *)addr, len, prot));
}

int vmc__os_protect(uintptr_t addr, size_t len, int prot)
{
    return detail(vmc__os_mprotect((void *)addr, len, prot));
}

int vmc__os_decommit(uintptr_t addr, size_t len)
{
    return detail(vmc__os_rereserve(addr, len));
}

int vmc__os_map_view(uintptr_t at, size_t len, int prot, int fd, uint64_t off, int shared)
{
    void *p;
    return detail(vmc__os_mmap((void *)at, len, prot, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED,
                               fd, (off_t)off, &p));
}

/* ---- the process ------------------------------------------------------------------ */

static int image_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t *range = arg, lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
        if (s < lo) lo = s;
        if (e > hi) hi = e;
    }
    range[0] = lo;
    range[1] = hi;
    return 1;  /* the first object is the main program */
}

int vmc__os_main_image(uintptr_t *lo, uintptr_t *hi)
{
    uintptr_t range[2] = {0, 0};
    dl_iterate_phdr(image_cb, range);
    if (range[1] <= range[0]) return -ENOENT;
    size_t page = vmc__os_page_size();
    *lo = range[0] & ~(uintptr_t)(page - 1);
    *hi = (range[1] + page - 1) & ~(uintptr_t)(page - 1);
    return 0;
}

uintptr_t vmc__os_program_break(void) { return (uintptr_t)sbrk(0); }

#define OS_USER_TOP  ((uintptr_t)1 << 47)     /* 4-level paging user space        */
#define STACK_GUARD  ((uintptr_t)256 << 20)   /* room for the main stack to grow  */

typedef struct gaps {
    void (*gap)(void *, uintptr_t, uintptr_t);
    void *ctx;
    uintptr_t prev_end;     /* end of the previous mapping */
} gaps_t;

static uintptr_t parse_hex(const char **p, const char *end)
{
    uintptr_t v = 0;
    while (*p < end) {
        char c = **p;
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else break;
        v = v << 4 | (uintptr_t)d;
        (*p)++;
    }
    return v;
}

static void report(gaps_t *g, uintptr_t lo, uintptr_t hi)
{
    if (hi > lo) g->gap(g->ctx, lo, hi);
}

/* One line of /proc/self/maps: "start-end perms offset dev inode   path". */
static void maps_line(gaps_t *g, const char *p, const char *end)
{
    uintptr_t start = parse_hex(&p, end);
    if (p >= end || *p != '-') return;
    p++;
    uintptr_t stop = parse_hex(&p, end);
    if (end - p >= 7 && memmem(p, (size_t)(end - p), "[stack]", 7))
        start = start > STACK_GUARD ? start - STACK_GUARD : 0;
    if (start > g->prev_end) report(g, g->prev_end, start);
    if (stop > g->prev_end) g->prev_end = stop;
}

int vmc__os_free_gaps(void (*gap)(void *ctx, uintptr_t lo, uintptr_t hi), void *ctx)
{
    gaps_t g = {gap, ctx, 0};
    int fd, r = vmc__os_open("/proc/self/maps", O_RDONLY, 0, &fd);
    if (r) return r;
    char buf[4096];
    size_t have = 0;
    off_t off = 0;
    for (;;) {
        size_t got;
        r = vmc__os_pread(fd, buf + have, sizeof buf - have, off, &got);
        if (r) break;
        off += (off_t)got;
        have += got;
        char *p = buf, *end = buf + have, *nl;
        while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
            maps_line(&g, p, nl);
            p = nl + 1;
        }
        have = (size_t)(end - p);
        memmove(buf, p, have);
        if (got == 0) {
            if (have) maps_line(&g, buf, buf + have);
            break;
        }
        if (have == sizeof buf) have = 0;  /* a line longer than the buffer: skip it */
    }
    vmc__os_close(fd);
    if (r) return r;
    if (g.prev_end < OS_USER_TOP) report(&g, g.prev_end, OS_USER_TOP);
    return 0;
}

#define OS_MIN_ADDR ((uintptr_t)64 << 10)    /* never lower, whatever vm.mmap_min_addr */

/* vm.mmap_min_addr (below it mmap fails with EPERM), at least OS_MIN_ADDR;
 * OS_MIN_ADDR, the usual value, if the file cannot be read. */
uintptr_t vmc__os_min_addr(void)
{
    int fd;
    if (vmc__os_open("/proc/sys/vm/mmap_min_addr", O_RDONLY, 0, &fd)) return OS_MIN_ADDR;
    char buf[32];
    size_t got = 0;
    int r = vmc__os_pread(fd, buf, sizeof buf, 0, &got);
    vmc__os_close(fd);
    uintptr_t v = 0;
    for (size_t i = 0; !r && i < got && buf[i] >= '0' && buf[i] <= '9' && v < ((uintptr_t)1 << 40); i++)
        v = v * 10 + (uintptr_t)(buf[i] - '0');
    return v > OS_MIN_ADDR ? v : OS_MIN_ADDR;
}

VMC_LOAD_PATH int vmc__os_alloc(size_t len, void **out)
{
    return vmc__os_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                        -1, 0, out);
}

int vmc__os_free(void *p, size_t len) { return vmc__os_munmap(p, len); }

const char *vmc__os_commit_call(void) { return "mprotect"; }

int vmc__os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
    return -pthread_atfork(prepare, parent, child);
}

long vmc__os_pid(void) { return (long)getpid(); }

VMC_LOAD_PATH int vmc__os_auxval(unsigned long type, unsigned long *val)
{
    errno = 0;
    unsigned long v = getauxval(type);
    if (!v && errno == ENOENT) return -ENOENT;
    *val = v;
    return 0;
}

int vmc__os_fd_path(int fd, char *buf, size_t len)
{
    int n = snprintf(buf, len, "/proc/%ld/fd/%d", (long)getpid(), fd);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

const char *vmc__os_self_exe_path(void) { return "/proc/self/exe"; }

/* No HANDLEs here (VMC_OS_CAP_HANDLES is not set): never asked. */
const char *vmc__os_handle_size_call(void) { return "GetFileSizeEx"; }

const char *vmc__os_map_view_call(void) { return "mmap"; }

/* ---- what only Windows has ------------------------------------------------------ */

int vmc__os_map_view_handle(uintptr_t at, size_t len, int prot, void *handle, uint64_t off, int shared)
{
    (void)at; (void)len; (void)prot; (void)handle; (void)off; (void)shared;
    return -ENOTSUP;   /* descriptors here: vmc__os_map_view */
}

int vmc__os_handle_size(void *handle, uint64_t *size, int *regular)
{
    (void)handle; (void)size; (void)regular;
    return -ENOTSUP;
}

/* Unwinding through generated code is DWARF CFI here (__register_frame),
 * which the user's code registers itself. */
int vmc__os_unwind_add(const void *table, uint32_t n, uintptr_t base)
{
    (void)table; (void)n; (void)base;
    return -ENOTSUP;
}

int vmc__os_unwind_remove(const void *table)
{
    (void)table;
    return -ENOTSUP;
}

/* No policy of Linux forbids the library's executable memory as a whole (an
 * SELinux execmem denial comes back from mmap/mprotect as EACCES). */
int vmc__os_dynamic_code_allowed(const char **why)
{
    *why = NULL;
    return 0;
}

/* ---- the system's own loader (os.h): the PE path's, Windows only -------------- */

int vmc__os_file_exists(const char *path, int *there)
{
    int e = os_enter(VMC_OS_OPEN);
    if (e) return e;
    struct stat st;
    *there = 0;
    if (stat(path, &st)) return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
    *there = !S_ISDIR(st.st_mode);
    return 0;
}

int vmc__os_addr_object(const void *addr, vmc_os_addr_t *out)
{
    Dl_info di;
    if (!dladdr(addr, &di)) return -ENOENT;
    out->path = di.dli_fname;
    out->base = di.dli_fbase;
    out->sym = di.dli_sname;
    out->sym_addr = di.dli_saddr;
    return 0;
}

int vmc__os_dll_find(const char *name, void **h)
{
    (void)name, (void)h;
    return -ENOTSUP;
}

int vmc__os_dll_load(const char *name, void **h)
{
    (void)name, (void)h;
    return -ENOTSUP;
}

void vmc__os_dll_free(void *h) { (void)h; }

int vmc__os_dll_sym(void *h, const char *name, unsigned ordinal, void **out)
{
    (void)h, (void)name, (void)ordinal, (void)out;
    return -ENOTSUP;
}

void vmc__os_flush_icache(uintptr_t addr, size_t len)
{
    __builtin___clear_cache((char *)addr, (char *)addr + len);
}

VMC_LOAD_PATH int vmc__os_file_id(int fd, const struct stat *st, uint64_t id[2])
{
    (void)fd;
    id[0] = (uint64_t)st->st_dev;
    id[1] = (uint64_t)st->st_ino;
    return 0;
}

VMC_LOAD_PATH int vmc__os_file_settled(const struct stat *st, uint64_t stamp[3])
{
    struct timespec now;
    stamp[0] = (uint64_t)st->st_size;
    stamp[1] = (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
    stamp[2] = (uint64_t)st->st_ctim.tv_sec * 1000000000u + (uint64_t)st->st_ctim.tv_nsec;
    /* st_ctime comes from the kernel's coarse clock: the same base */
    if (clock_gettime(CLOCK_REALTIME_COARSE, &now)) return 0;
    return st->st_ctim.tv_sec + 2 < now.tv_sec;
}
