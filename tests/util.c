/* Test utilities: process snapshots for leak checks, /proc readers. */
#include "test.h"
#include "vmcode.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char *vt_read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) buf = realloc(buf, cap *= 2);
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        if (r == 0) break;
        n += r;
    }
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* Lines that are not the library's business: the [heap] (malloc moving brk)
 * and, under AddressSanitizer, its shadow and its allocator's space, which
 * change whenever the test itself mallocs. */
static int line_ignored(const char *line, size_t len)
{
    if (memmem(line, len, "[heap]", 6)) return 1;
    if (!vt_sanitized()) return 0;
    uintptr_t start = (uintptr_t)strtoull(line, NULL, 16);
    return start < 0x10007fff8000ull || (start >= 0x600000000000ull && start < 0x640000000000ull);
}

static char *maps_normalised(void)
{
    char *m = vt_read_file("/proc/self/maps");
    if (!m) return NULL;
    char *out = malloc(strlen(m) + 1), *o = out;
    for (char *line = m; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
        if (!line_ignored(line, len)) {
            memcpy(o, line, len);
            o += len;
        }
        line += len;
    }
    *o = 0;
    free(m);
    return out;
}

static char *fd_list(void)
{
    char *out = calloc(1, 1 << 16);
    size_t n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return out;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == self) continue;
        char target[256] = "", link[300];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t r = readlink(link, target, sizeof target - 1);
        if (r > 0) target[r] = 0;
        n += (size_t)snprintf(out + n, (1 << 16) - n, "%s->%s\n", e->d_name, target);
        if (n > (1 << 16) - 400) break;
    }
    closedir(d);
    return out;
}

/* AddressSanitizer keeps freed blocks in a quarantine; large ones stay
 * mapped (outside its allocator space) until they leave it, which would look
 * like a leak.  Draining it before each snapshot keeps use-after-free
 * detection and takes that noise away.  A weak reference: absent otherwise. */
extern void __sanitizer_purge_allocator(void) __attribute__((weak));

void vt_snap(vt_snapshot_t *s)
{
    if (vt_sanitized() && __sanitizer_purge_allocator) __sanitizer_purge_allocator();
    s->maps = maps_normalised();
    s->fds = fd_list();
}

void vt_snap_free(vt_snapshot_t *s)
{
    free(s->maps);
    free(s->fds);
    s->maps = s->fds = NULL;
}

/* Print lines of a that are not in b. */
static void diff_lines(const char *label, const char *a, const char *b)
{
    const char *line = a;
    while (*line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
        char *copy = strndup(line, len);
        if (!strstr(b, copy)) fprintf(stderr, "  %s %s", label, copy);
        free(copy);
        line += len;
    }
}

void vt_snap_same(vt_snapshot_t *s, const char *file, int line)
{
    vt_snapshot_t now;
    vt_snap(&now);
    int maps_same = !strcmp(s->maps, now.maps), fds_same = !strcmp(s->fds, now.fds);
    if (maps_same && fds_same) {
        vt_snap_free(&now);
        return;
    }
    if (!maps_same) {
        fprintf(stderr, "maps changed:\n");
        diff_lines("-", s->maps, now.maps);
        diff_lines("+", now.maps, s->maps);
    }
    if (!fds_same) {
        fprintf(stderr, "fds changed:\n");
        diff_lines("-", s->fds, now.fds);
        diff_lines("+", now.fds, s->fds);
    }
    vt_fail(file, line, "process state differs from the snapshot (leak)");
}

int vt_maps_count(const char *needle)
{
    char *m = vt_read_file("/proc/self/maps");
    int n = 0;
    for (char *line = m; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
        if (!line_ignored(line, len) && (!needle || memmem(line, len, needle, strlen(needle)))) n++;
        line += len;
    }
    free(m);
    return n;
}

int vt_rwx_count(void) { return vt_maps_count(" rwx"); }

int vt_maps_has(uintptr_t lo, uintptr_t hi, const char *perms)
{
    char want[96];
    snprintf(want, sizeof want, "%" PRIxPTR "-%" PRIxPTR " %s", lo, hi, perms);
    char *m = vt_read_file("/proc/self/maps");
    int found = m && strstr(m, want) != NULL;
    free(m);
    return found;
}

/* Resident memory the process owns: anonymous plus shared memory (memory
 * files), not pages of mapped files such as the program's own text, which
 * the kernel maps 64 KiB at a time on first execution (fault-around) and
 * which would make the figure depend on how the code happens to be laid out. */
size_t vt_rss_kib(void)
{
    char *st = vt_read_file("/proc/self/status");
    size_t kib = 0;
    static const char *const keys[] = {"RssAnon:", "RssShmem:"};
    for (int i = 0; i < 2; i++) {
        char *p = st ? strstr(st, keys[i]) : NULL;
        if (p) kib += strtoul(p + strlen(keys[i]), NULL, 10);
    }
    free(st);
    return kib;
}

const char *vt_build_dir(void)
{
    const char *b = getenv("VMC_TEST_BUILD");
    return b ? b : "build";
}

void vt_wait_settled(const char *path)
{
    struct stat st;
    if (stat(path, &st)) return;
    time_t now = time(NULL);
    if (st.st_ctime + 3 > now) sleep((unsigned)(st.st_ctime + 3 - now));
}

const char *vt_tlib(const char *name)
{
    static char path[8][512];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 512, "%s/tests/libs/%s", vt_build_dir(), name);
    ASSERT_MSG(access(p, R_OK) == 0, "test library %s is not built", p);
    return p;
}

int vt_in_code_region(vmc_t *v, const void *p)
{
    vmc_info_t in;
    vmc_info(v, &in);
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)in.code_base;
    return a >= b && a - b < in.code_size;
}

const char *vt_src_path(const char *rel)
{
    static char path[1024];
    const char *src = getenv("VMC_TEST_SRC");
    snprintf(path, sizeof path, "%s/%s", src ? src : ".", rel);
    return path;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VT_SANITIZED 1
#endif
#endif
#ifndef VT_SANITIZED
#define VT_SANITIZED 0
#endif

int vt_sanitized(void) { return VT_SANITIZED; }

vmc_t *vt_open(const char *options)
{
    vmc_options_t o;
    vmc_options_init(&o);
    ASSERT_OK(vmc_options_parse(&o, options));
    vmc_t *v = NULL;
    ASSERT_OK(vmc_open(&o, &v));
    return v;
}

static size_t vm_size_kib(void)
{
    char *st = vt_read_file("/proc/self/status");
    char *p = st ? strstr(st, "VmSize:") : NULL;
    size_t kib = p ? strtoul(p + 7, NULL, 10) : 0;
    free(st);
    return kib;
}

vt_limited_t vt_open_limited(unsigned long limit, const char *options)
{
    vt_limited_t res;
    memset(&res, 0, sizeof res);
    int pfd[2];
    ASSERT_EQ(pipe(pfd), 0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        res.vm_before_kib = vm_size_kib();
        struct rlimit rl = {limit, limit};
        setrlimit(RLIMIT_AS, &rl);
        vmc_options_t o;
        vmc_options_init(&o);
        vmc_options_parse(&o, options);
        vmc_t *v;
        res.r = vmc_open(&o, &v);
        snprintf(res.msg, sizeof res.msg, "%s", vmc_last_error());
        if (!res.r) {
            vmc_info(v, &res.in);
            vmc_span_t c, s;
            res.alloc_ok = vmc_alloc(v, 100, VMC_CODE, &c) == 0 && vmc_alloc(v, 100, VMC_RDATA, &s) == 0 &&
                           (!res.in.heap_size || vmc_alloc(v, 100, VMC_DATA, &s) == 0);
            if (res.alloc_ok) {
                memcpy(c.w, "\xb8\x63\x00\x00\x00\xc3", 6);  /* mov eax, 99; ret */
                res.alloc_ok = ((int (*)(void))c.x)() == 99;
            }
            vmc_close(v);
        }
        ssize_t w = write(pfd[1], &res, sizeof res);
        _exit(w == (ssize_t)sizeof res ? 0 : 1);
    }
    close(pfd[1]);
    ssize_t n = read(pfd[0], &res, sizeof res);
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    if (n != (ssize_t)sizeof res || !WIFEXITED(st) || WEXITSTATUS(st)) res.r = -9999;
    return res;
}
