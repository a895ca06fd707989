/* The OS layer: every system call vmcode makes on memory, files and
 * descriptors goes through here, and nowhere else.
 *
 * Contract, for every function below:
 *   - results are 0 on success or a negative errno value; outputs are written
 *     only on success;
 *   - addresses and lengths passed to the memory calls are page aligned and
 *     lengths are > 0 (callers round; the layer does not);
 *   - the calls go through a table of function pointers, one per kind, which
 *     tests can make fail: the Nth call of a kind (counting from when the
 *     fault is set) returns a chosen errno, once or from then on.  A failed
 *     call has no effect, as when the kernel refuses it (except close, which
 *     releases the descriptor whatever it reports, as Linux does).
 *   - MAP_FIXED (without NOREPLACE) is allowed only inside a range this
 *     library holds (vmc__os_hold).  With auditing on (test builds turn it on)
 *     a MAP_FIXED anywhere else aborts the process before the call is made.
 */
#ifndef VMC_OS_H
#define VMC_OS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>

enum vmc_os_call {
    VMC_OS_MMAP,
    VMC_OS_MUNMAP,
    VMC_OS_MPROTECT,
    VMC_OS_MADVISE,
    VMC_OS_MEMFD_CREATE,
    VMC_OS_FTRUNCATE,
    VMC_OS_FALLOCATE,
    VMC_OS_OPEN,
    VMC_OS_CLOSE,
    VMC_OS_PREAD,
    VMC_OS_PWRITE,
    VMC_OS_FSTAT,
    VMC_OS_FSTATFS,
    VMC_OS_GETRANDOM,
    VMC_OS_UNLINK,
    VMC_OS_LSEEK,
    VMC_OS_GETRLIMIT,
    VMC_OS_COPY_FILE_RANGE,
    /* Windows (windows.c); never counted on Linux. */
    VMC_OS_VIRTUALALLOC,        /* VirtualAlloc and VirtualAlloc2       */
    VMC_OS_VIRTUALFREE,
    VMC_OS_VIRTUALPROTECT,
    VMC_OS_CREATEFILEMAPPING,
    VMC_OS_MAPVIEW,             /* MapViewOfFile3                        */
    VMC_OS_UNMAPVIEW,           /* UnmapViewOfFile2                      */
    VMC_OS_FUNCTION_TABLE,      /* RtlAddFunctionTable                   */
    VMC_OS_MITIGATION,          /* GetProcessMitigationPolicy            */
    VMC_OS_LOADLIBRARY,         /* GetModuleHandleEx and LoadLibrary     */
    VMC_OS_GETPROCADDRESS,
    VMC_OS_CALL_COUNT
};

int vmc__os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off,
                 void **out);
int vmc__os_munmap(void *addr, size_t len);
int vmc__os_mprotect(void *addr, size_t len, int prot);
int vmc__os_madvise(void *addr, size_t len, int advice);
int vmc__os_memfd_create(const char *name, unsigned flags, int *fd);
int vmc__os_ftruncate(int fd, off_t len);
int vmc__os_fallocate(int fd, int mode, off_t off, off_t len);
int vmc__os_open(const char *path, int flags, mode_t mode, int *fd);
int vmc__os_close(int fd);
/* Reads exactly len bytes unless end of file: *got says how many. */
int vmc__os_pread(int fd, void *buf, size_t len, off_t off, size_t *got);
int vmc__os_pwrite(int fd, const void *buf, size_t len, off_t off);
int vmc__os_fstat(int fd, struct stat *st);
int vmc__os_fstatfs_flags(int fd, unsigned long *mount_flags);
int vmc__os_getrandom(void *buf, size_t len);
int vmc__os_unlink(const char *path);
/* lseek; for SEEK_DATA/SEEK_HOLE, -ENXIO means no data (or hole) at or
 * after `off` before the end of the file. */
int vmc__os_lseek(int fd, off_t off, int whence, off_t *out);
/* Copy len bytes at off from fd_in to the same offset of fd_out, in the
 * kernel; -EXDEV, -EINVAL, -ENOSYS, -EOPNOTSUPP: not possible here, copy by
 * other means.  *done says how many bytes were copied before a failure. */
int vmc__os_copy_file_range(int fd_in, int fd_out, off_t off, size_t len, size_t *done);
/* The soft limit of `resource` (RLIMIT_*); RLIM_INFINITY as UINT64_MAX. */
int vmc__os_getrlimit(int resource, uint64_t *soft);

/* ---- reservations: address space held inaccessible --------------------------
 * Built on the calls above (their faults count as those calls'). */
/* Reserve `size` bytes of inaccessible address space: at exactly `at`
 * (-EEXIST when something is there, never replacing it), or anywhere with
 * at == 0.  *out is the base. */
int vmc__os_reserve(uintptr_t at, size_t size, uintptr_t *out);
/* Turn [addr, addr+len), inside a held reservation, back into inaccessible
 * reserved address space in one step: there is no moment at which another
 * mapping could take the range. */
int vmc__os_rereserve(uintptr_t addr, size_t len);
/* The name of the call behind vmc__os_rereserve, for messages ("mmap"). */
const char *vmc__os_rereserve_call(void);

/* ---- the process: what placement needs to know ------------------------------ */
/* The main program's loaded image [lo, hi), page aligned; -ENOENT if unknown. */
int vmc__os_main_image(uintptr_t *lo, uintptr_t *hi);
/* The program break (where brk grows from), or 0 where there is none
 * (Windows). */
uintptr_t vmc__os_program_break(void);
/* Call gap(ctx, lo, hi) for each free range of the address space, in address
 * order.  Linux: from /proc/self/maps, streaming, no allocation; the space
 * below the main stack that it may grow into is not free.  Windows:
 * VirtualQuery.  Errors: reading the map. */
int vmc__os_free_gaps(void (*gap)(void *ctx, uintptr_t lo, uintptr_t hi), void *ctx);
/* The lowest address a reservation may start at (Linux: vm.mmap_min_addr,
 * at least 64 KiB, 64 KiB if unreadable; Windows: the lowest application
 * address, rounded up to the granularity). */
uintptr_t vmc__os_min_addr(void);
/* Private read-write memory outside every region, for metadata: zero filled,
 * pages taken on first touch where the system allows (Linux). */
int vmc__os_alloc(size_t len, void **out);
int vmc__os_free(void *p, size_t len);
/* The call behind vmc__os_commit, for messages ("mprotect"). */
const char *vmc__os_commit_call(void);

/* pthread_atfork where fork exists; 0 and nothing to do where it does not
 * (Windows). */
int vmc__os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/* This process's id (Linux: getpid; Windows: GetCurrentProcessId); no error. */
long vmc__os_pid(void);
/* The entry `type` (an AT_* number) of the auxiliary vector the kernel gave
 * the process, in *val (Linux: getauxval; a pointer for AT_PLATFORM).
 * -ENOENT if the kernel passed no such entry; -ENOTSUP where processes get
 * no auxiliary vector (Windows).  Not a system call: no fault seam. */
int vmc__os_auxval(unsigned long type, unsigned long *val);
/* A path that opens the file behind descriptor fd, from any process
 * (Linux: /proc/PID/fd/N, the PID written out since a debugger reads the
 * name from its own process, where "self" is itself): -ENAMETOOLONG if
 * buf's len bytes cannot hold it; -ENOTSUP where there is none (Windows). */
int vmc__os_fd_path(int fd, char *buf, size_t len);
/* A path that opens the running program's file (Linux: /proc/self/exe), or
 * NULL where there is none. */
const char *vmc__os_self_exe_path(void);

size_t vmc__os_page_size(void);
/* For messages: after -ENOMEM from mmap or mprotect, the likely cause. */
const char *vmc__os_enomem_hint(int err);

/* ---- address space: reservations and their pieces -------------------------
 * The region layer's verbs, one meaning on every system.  A reservation is
 * inaccessible address space this library holds; each piece of it is
 * reserved, committed (zero filled, accessible) or a view of a file, and no
 * piece ever becomes free address space until the whole reservation is
 * released.  Preconditions, for every call: addresses and lengths are
 * multiples of vmc__os_granularity() (the page on Linux; 64 KiB on Windows,
 * where reservations and views can only start and end there), lengths > 0,
 * and every range lies inside one reservation made by vmc__os_reserve
 * (above; on Windows vmc__os_rereserve is vmc__os_decommit).
 * Errors are negative errno values as above; on Windows, GetLastError's value
 * is kept for the message (vmc__os_last_detail).  A failed call changes
 * nothing. */
enum {
    VMC_OS_READ = 1, VMC_OS_WRITE = 2, VMC_OS_EXEC = 4,   /* = PROT_* on Linux */
};
enum {
    /* The system can place a file view over part of a reservation and give a
     * piece back as reserved space (Linux: MAP_FIXED; Windows 10 1803+:
     * placeholders). */
    VMC_OS_CAP_OVERLAY = 1,
    /* Windows without placeholders (before 1803, Wine before 9): the
     * reservation is many adjacent slot reservations; a file view replaces
     * a run of whole slots (see vmc__os_slot_size). */
    VMC_OS_CAP_SLOTS = 2,
    VMC_OS_CAP_FORK = 4,          /* fork() exists (W^X must handle children) */
    /* W^X pairs can be made (vmc__os_dual_map): Linux; Windows with
     * placeholders, not in the slot fallback. */
    VMC_OS_CAP_DUAL = 8,
    VMC_OS_CAP_PE = 16,           /* PE images run here (Windows): DLLs load  */
    /* Files are also reached by HANDLE (Windows): vmc__os_handle_size and
     * vmc__os_map_view_handle work. */
    VMC_OS_CAP_HANDLES = 32,
};
unsigned vmc__os_caps(void);
size_t vmc__os_granularity(void);
/* Windows fallback: bytes per slot (0 when not in that mode). */
size_t vmc__os_slot_size(void);

/* Release the whole reservation [base, base+len), whatever its pieces hold. */
int vmc__os_release(uintptr_t base, size_t len);
/* Make [addr, addr+len) accessible with `prot` (VMC_OS_*), zero filled if it
 * was reserved; already committed pages keep their contents. */
int vmc__os_commit(uintptr_t addr, size_t len, int prot);
/* Change the protection of committed pages.  The one verb that is page
 * granular rather than granule granular: addr and len are multiples of
 * vmc__os_page_size() (Windows protects committed pages one by one; a DLL's
 * sections are 4 KiB aligned and each gets its own protection). */
int vmc__os_protect(uintptr_t addr, size_t len, int prot);
/* Put [addr, addr+len) back to reserved (contents gone), never a hole: the
 * range may hold committed pages and views, each wholly inside the range. */
int vmc__os_decommit(uintptr_t addr, size_t len);
/* A view of `fd` (a C runtime descriptor) at `off`, len bytes, over the
 * reserved piece [at, at+len); `shared` writes go to the file, otherwise
 * copy on write.  Undo with vmc__os_decommit. */
int vmc__os_map_view(uintptr_t at, size_t len, int prot, int fd, uint64_t off, int shared);
/* ---- W^X: two views of one memory object -----------------------------------
 * A pair serves the range [x, x+len) of a reservation (the executable side,
 * made by vmc__os_reserve, reserved when the pair is made; two reservations
 * around a hole, below) with a writable
 * side [w, w+len) placed elsewhere and held like a reservation, a constant
 * offset apart: a byte written at w + k is the byte at x + k.  The pair
 * starts empty: the executable side stays whatever the caller makes of it
 * (reserved, committed private memory, file views, through the verbs
 * above), the writable side is inaccessible.  vmc__os_dual_commit makes a
 * reserved piece code: zero filled, read+execute at x, read+write at w;
 * vmc__os_dual_decommit puts a range back to reserved on both sides,
 * whatever it held (code of the pair, private memory, views), and gives the
 * code's memory back.  No address is ever writable and executable.
 * Preconditions as for the verbs above: whole multiples of
 * vmc__os_granularity(), inside the pair.
 *
 * A pair may have a hole (a -no-pie program's brk heap and its room inside
 * the code region's span): [hole_lo, hole_hi), 0, 0 for none, else both
 * multiples of vmc__os_granularity() with x < hole_lo < hole_hi < x + len.
 * The hole is not the caller's: the executable side is then two
 * reservations, [x, hole_lo) and [hole_hi, x + len), each made by
 * vmc__os_reserve, and other memory may live between them.  The pair never
 * maps anything in the hole on the executable side (nor in a forked child);
 * a commit or decommit of a range that meets it is -EINVAL, naming it.  The
 * writable side stays one reservation of len bytes, so w - x is one
 * constant on both sides of the hole; its part facing the hole stays
 * inaccessible and is never committed (on Linux the memory file's range
 * for it is never written, so it takes no memory).  -EINVAL for a hole that
 * is not aligned or not strictly inside.
 *
 * Errors: a negative errno, with a
 * sentence in vmc_last_error() that says what failed at which address and
 * why ("cannot commit 0x10000 bytes at 0x...: mapping the executable view:
 * ..."), without naming the region: the caller prefixes that.  Linux: a
 * failed call changes nothing, whichever kind of call fails, even for good
 * (each step is undone with a call of another kind).  Windows: a failed
 * commit changes nothing; a decommit that fails stops at the failing piece
 * (the pieces before it are reserved, it and those after it unchanged), so
 * doing it again finishes it.
 *
 * Where the systems differ:
 *  - Linux: one memory file behind the whole pair (memfd_create with
 *    MFD_EXEC, retried without it on a kernel before 6.3; an unlinked file
 *    in /dev/shm where memfd_create is missing or refused, -EACCES on a
 *    noexec mount), mapped PROT_NONE over the whole writable side and
 *    mapped executable once while one page long (IMA measures a file at its
 *    first executable mapping); it grows as pieces are committed, checked
 *    against RLIMIT_FSIZE first (-EFBIG rather than SIGXFSZ; below one page,
 *    vmc__os_dual_map fails with -EFBIG), and decommitting punches holes.
 *    A forked child gets its own copy of the committed pages
 *    (VMC_OS_CAP_FORK: vmc__os_fork_prepare/parent/child); if it cannot,
 *    its writable side is inaccessible and its commits fail saying why.
 *    -ENOMEM: no room for the writable side (ulimit -v) or too many
 *    mappings.
 *  - Windows: a pagefile-backed section per committed piece, its views
 *    replacing the piece's placeholders on both sides; a piece is
 *    decommitted whole (-EINVAL for a range that cuts one).  Needs
 *    placeholders (VMC_OS_CAP_DUAL): in the slot fallback vmc__os_dual_map
 *    is -ENOTSUP, naming them.  No fork. */
typedef struct vmc_os_dual vmc_os_dual_t;
int vmc__os_dual_map(uintptr_t x, size_t len, uintptr_t hole_lo, uintptr_t hole_hi,
                     vmc_os_dual_t **out, uintptr_t *w);
int vmc__os_dual_commit(vmc_os_dual_t *d, uintptr_t x, size_t len);
int vmc__os_dual_decommit(vmc_os_dual_t *d, uintptr_t x, size_t len);
/* The writable side goes; the executable side's code stays mapped (and
 * runs) until the caller decommits or releases its reservation. */
void vmc__os_dual_unmap(vmc_os_dual_t *d);
/* Linux: the memory file behind the pair and its current size (tests look
 * at both).  -ENOTSUP where there is no one file (Windows). */
int vmc__os_dual_file(vmc_os_dual_t *d, int *fd, size_t *size);

/* The same with a file HANDLE (Windows) in place of a descriptor; -ENOTSUP
 * where there are none (Linux). */
int vmc__os_map_view_handle(uintptr_t at, size_t len, int prot, void *handle, uint64_t off, int shared);
/* The size of the file behind a HANDLE; *regular 0 for anything that is not
 * a disk file (a pipe, a device: no size to check against).  -EBADF for an
 * invalid handle; -ENOTSUP where there are no HANDLEs.  Counts as fstat. */
int vmc__os_handle_size(void *handle, uint64_t *size, int *regular);
/* The call behind vmc__os_handle_size, for messages ("GetFileSizeEx"). */
const char *vmc__os_handle_size_call(void);

/* ---- generated code: what the system must know ---------------------------------
 * Unwinding (Windows x64): n RUNTIME_FUNCTION entries at `table` (12 bytes
 * each: begin, end and unwind-information offsets from `base`), sorted by
 * begin, not overlapping, which stay valid and unchanged until
 * vmc__os_unwind_remove(table): the system's unwinder (exceptions, stack
 * walks, debuggers) then finds them for code in their ranges.  -ENOTSUP
 * where unwinding has no such table (Linux: DWARF CFI, __register_frame). */
int vmc__os_unwind_add(const void *table, uint32_t n, uintptr_t base);
int vmc__os_unwind_remove(const void *table);
/* May this process make memory executable that it wrote at run time?  0,
 * or -EPERM with *why naming the policy that forbids it (Windows: Arbitrary
 * Code Guard, ProcessDynamicCodePolicy ProhibitDynamicCode, unless this
 * thread opted out).  A failed query of the policy is its error. */
int vmc__os_dynamic_code_allowed(const char **why);

/* The call behind vmc__os_map_view, for messages ("mmap"). */
const char *vmc__os_map_view_call(void);
/* The last system error code behind a failed call of this thread (Windows:
 * GetLastError; Linux: errno), for messages; 0 if none. */
unsigned long vmc__os_last_detail(void);
/* The text for a failed call's error e, for messages: strerror, and on
 * Windows GetLastError's code too ("Permission denied (error 5)") when a
 * real call failed.  Valid until this thread's next call of it. */
const char *vmc__os_why(int e);

/* ---- the system's own loader: what a privately loaded DLL binds to -------------
 * Windows (os/winload.c): the PE load path binds a DLL's imports to modules
 * the system loader holds.  Linux: the
 * calls are -ENOTSUP (the PE path stops before them there; the ELF path
 * uses dlopen itself).  Each module handle returned holds one reference,
 * given back with vmc__os_dll_free. */
/* The module `name` if the process has it already (GetModuleHandleEx,
 * taking a reference): -ENOENT if it has not. */
int vmc__os_dll_find(const char *name, void **h);
/* Load `name` (a path, or a name the system searches for) through the
 * system loader (LoadLibrary; a path: LoadLibraryEx with
 * LOAD_WITH_ALTERED_SEARCH_PATH, its dependencies found beside it): -ENOENT
 * if not found. */
int vmc__os_dll_load(const char *name, void **h);
void vmc__os_dll_free(void *h);
/* The export `name` of module h, or with name NULL its export `ordinal`
 * (GetProcAddress): -ENOENT if it has none. */
int vmc__os_dll_sym(void *h, const char *name, unsigned ordinal, void **out);
/* (A DLL's .pdata is registered with vmc__os_unwind_add, above.) */
/* Code was written at [addr, addr+len): make the processor see it. */
void vmc__os_flush_icache(uintptr_t addr, size_t len);
/* Is there a file (not a directory) at path?  *there 1 or 0; an error only
 * for a failure other than "not there".  Windows: GetFileAttributes, a
 * tenth of what an open and a close cost under Wine (the PE load path asks
 * it for every DLL that might lie beside the one importing it). */
int vmc__os_file_exists(const char *path, int *there);
/* The system loader's object holding addr (for vmc_addr_info, outside the
 * private libraries): Linux, what dladdr says; Windows, the module
 * GetModuleHandleEx finds and its GetModuleFileName path, with no symbol
 * (sym NULL).  -ENOENT if no object holds it.  The strings live as long as
 * the object (on Windows each path is kept until the process exits). */
typedef struct vmc_os_addr {
    const char *path;
    void *base;
    const char *sym;             /* nearest exported symbol, or NULL        */
    void *sym_addr;
} vmc_os_addr_t;
int vmc__os_addr_object(const void *addr, vmc_os_addr_t *out);
/* A file's identity (device, file number), to know a second load of one
 * file: from *st where the system has it there (Linux), else from the
 * descriptor (Windows: the volume serial number and the file index). */
int vmc__os_file_id(int fd, const struct stat *st, uint64_t id[2]);
/* The file's size and times of last change (st_mtime, st_ctime, in ns) into
 * stamp, and 1 when its last change is more than two seconds old: then any
 * later change moves a time, even on a file system that keeps whole
 * seconds, so stamp (with the identity) tells whether the bytes are still
 * those read now.  0 (keep nothing) where the system cannot say (Windows). */
int vmc__os_file_settled(const struct stat *st, uint64_t stamp[3]);

/* Windows, tests: use the slot fallback (slots of `slot` bytes, a multiple of
 * the granularity; 0 = the default) for reservations made from now on, even
 * where placeholders exist.  Call it before the first reservation. */
void vmc__os_force_slots(size_t slot);
/* Windows, tests: answer the dynamic-code policy query as if Arbitrary Code
 * Guard were on (1) or as the system says (0); Wine does not enforce it. */
void vmc__os_simulate_acg(int on);

/* ---- fault seam (tests) ---------------------------------------------------- */
/* Make the nth call (1 = the next one) of `call` fail with -err; with
 * `persistent`, that call and every later one fail. */
void vmc__os_fault(enum vmc_os_call call, unsigned long nth, int err, int persistent);
void vmc__os_fault_clear(void);
/* How many injected failures have been returned since the last clear. */
unsigned long vmc__os_faults_hit(void);
/* Calls made of a kind since the process started (or the last reset). */
unsigned long vmc__os_calls(enum vmc_os_call call);
void vmc__os_calls_reset(void);
const char *vmc__os_call_name(enum vmc_os_call call);

/* Replace one entry of the table (NULL restores the default).  The pointer
 * has the real call's libc signature. */
void vmc__os_set_call(enum vmc_os_call call, void (*fn)(void));

/* ---- MAP_FIXED audit ------------------------------------------------------- */
void vmc__os_hold(uintptr_t lo, uintptr_t hi);     /* a reservation we own  */
void vmc__os_unhold(uintptr_t lo, uintptr_t hi);
int  vmc__os_holds(uintptr_t lo, uintptr_t hi);    /* 1 if inside one held  */
void vmc__os_set_audit(int on);

/* fork (Linux; nothing to do on Windows): called from the library's
 * pthread_atfork handlers (api.c) after every handle's own locks are taken,
 * so the lock order is the allocation paths' (blocks, then a pair's lock).
 * prepare takes every W^X pair's lock and makes each pair's copy for the
 * child, then the hold list's lock; parent and child release them, the child
 * after mapping its copies in place (MAP_FIXED, audited, so the hold list's
 * lock must not be held by a thread that is not there). */
void vmc__os_fork_prepare(void);
void vmc__os_fork_parent(void);
void vmc__os_fork_child(void);

#endif
