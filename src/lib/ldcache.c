/* /etc/ld.so.cache, read and searched as glibc's ld.so does.
 *
 * The format ldconfig writes since glibc 2.32 (Debian 12's default),
 * little-endian on x86-64:
 *   header (48 bytes): "glibc-ld.so.cache" "1.1", u32 nlibs, u32 length of
 *     the strings, u8 byte order (0 unset, 2 little), 3 bytes padding, u32
 *     offset of the extension directory (0: none), 12 bytes unused;
 *   nlibs entries (24 bytes): i32 flags, u32 key (the soname), u32 value
 *     (the path), u32 unused, u64 hwcap;
 *   strings; offsets are from the start of the file.
 *   extension directory: u32 magic 0xeaa42174, u32 count, then count
 *     sections of u32 tag, flags, offset, size.  Tag 1 is the list of
 *     glibc-hwcaps subdirectory names (u32 string offsets).
 *
 * What glibc takes for a name, among the entries with that key in file
 * order: flags 0x0303 (ELF, libc6, x86-64) or 1 (plain ELF) only; the
 * entries of glibc-hwcaps subdirectories come first (hwcap: bit 62 set and
 * nothing else in the upper half but the ISA level in its low 10 bits; the
 * lower half indexes the name list): one the processor cannot run (ISA
 * level, or a subdirectory it does not use) is passed over, and of the
 * rest the subdirectory glibc tries first wins; failing those, the first
 * ordinary entry.  Ordinary entries with legacy hardware-capability bits
 * (hwcap non-zero) are passed over here: Debian's ldconfig writes none.
 *
 * A cache that is missing, unreadable, in another format or inconsistent
 * (entries or extension outside the file) is no cache, as for glibc; an
 * entry whose strings lie outside the file is passed over.  Other OS
 * errors and running out of memory are errors, as everywhere in vmcode.
 *
 * Process-wide, under a lock: the file is read once into the C heap,
 * indexed by name, and kept until it changes (size, inode, modification
 * time; ldconfig renames a new file over the old one).  That is checked
 * (an open and an fstat, 3 us here) at the first look-up of each load
 * (vmc__ldcache_recheck), not at every one: glibc too takes the cache as
 * it is when a dlopen begins.  The lock is taken only inside a load, under the handle's
 * loader lock, which vmcode's fork handlers take (api.c): no thread holds
 * it across a fork. */
#include "lib/ldcache.h"
#include "base/attrs.h"
#include "arch/hwcaps.h"
#include "base/error.h"
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HDR_SIZE 48
#define ENTRY_SIZE 24
#define MAGIC "glibc-ld.so.cache1.1"
#define EXT_MAGIC 0xeaa42174u
#define EXT_TAG_HWCAPS 1u
#define FLAG_ELF 1
#define FLAG_X8664_LIBC6 0x0303
#define HWCAP_EXTENSION (1ull << 62)
#define ISA_LEVEL_MASK 0x3ffu
/* Not a cache anyone writes: taken as corrupt rather than read into memory. */
#define MAX_SIZE (64u << 20)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *file_name = "/etc/ld.so.cache";
static struct {
    int read;                 /* the fields below describe a file read   */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    char *data;               /* NULL: no usable cache in that file      */
    uint32_t nlibs;
    const uint32_t *hwcaps;   /* the glibc-hwcaps names (string offsets) */
    uint32_t nhwcaps;
    /* the entries by their key's hash: heads[h & mask] is the first entry
     * + 1 (0: none), next[i] the following one + 1, in file order */
    uint32_t *heads, *next, mask;
} c;
static unsigned long reads;
static int stale = 1;  /* check the file at the next look-up */

static uint32_t u32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t u64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* The NUL-terminated string at offset off, or NULL if it is not all in the file. */
static const char *str_at(uint32_t off)
{
    if ((off_t)off >= c.size) return NULL;
    return memchr(c.data + off, 0, (size_t)(c.size - off)) ? c.data + off : NULL;
}

/* Is the file read into c.data a usable cache?  Sets nlibs and the hwcaps list. */
static int parse(void)
{
    size_t size = (size_t)c.size;
    if (size < HDR_SIZE || memcmp(c.data, MAGIC, strlen(MAGIC))) return 0;
    unsigned order = (unsigned char)c.data[28];
    if (order != 0 && order != 2) return 0;  /* byte order unset, or little-endian */
    uint32_t n = u32(c.data + 20);
    if (n > (size - HDR_SIZE) / ENTRY_SIZE) return 0;
    c.nlibs = n;
    c.hwcaps = NULL;
    c.nhwcaps = 0;
    uint32_t ext = u32(c.data + 32);
    if (!ext) return 1;
    /* an extension directory that does not fit: no cache, as glibc decides */
    if (ext % 4 || ext > size || size - ext < 8 || u32(c.data + ext) != EXT_MAGIC) return 0;
    uint32_t count = u32(c.data + ext + 4);
    if (count > (size - ext - 8) / 16) return 0;
    for (uint32_t i = 0; i < count; i++) {
        const char *s = c.data + ext + 8 + 16 * (size_t)i;
        uint32_t tag = u32(s), off = u32(s + 8), len = u32(s + 12);
        if (off > size || len > size - off) return 0;
        if (tag == EXT_TAG_HWCAPS) {
            if (off % 4 || len % 4) return 0;
            c.hwcaps = (const uint32_t *)(c.data + off);
            c.nhwcaps = len / 4;
        }
    }
    return 1;
}

static uint32_t hash(const char *k)
{
    uint32_t h = 2166136261u;  /* FNV-1a */
    for (; *k; k++) h = (h ^ (unsigned char)*k) * 16777619u;
    return h;
}

/* The index of the entries by key (a lookup would otherwise compare the
 * name with every entry's: 10 us for Debian's 776).  0, or -ENOMEM. */
static int index_keys(void)
{
    uint32_t size = 16;
    while (size < 2 * c.nlibs) size *= 2;
    c.heads = calloc(size, sizeof *c.heads);
    c.next = calloc(c.nlibs ? c.nlibs : 1, sizeof *c.next);
    if (!c.heads || !c.next) return -ENOMEM;
    c.mask = size - 1;
    for (uint32_t i = c.nlibs; i-- > 0;) {  /* from the last, so that each chain is in file order */
        const char *key = str_at(u32(c.data + HDR_SIZE + (size_t)i * ENTRY_SIZE + 4));
        if (!key) continue;  /* passed over, as glibc's look-up does */
        uint32_t *head = &c.heads[hash(key) & c.mask];
        c.next[i] = *head;
        *head = i + 1;
    }
    return 0;
}

static void drop(void)
{
    free(c.data);
    free(c.heads);
    free(c.next);
    memset(&c, 0, sizeof c);
}

/* Make c describe the file as it is now.  0, or an error. */
static int refresh(void)
{
    if (c.read && !stale) return 0;
    int fd, e = vmc__os_open(file_name, O_RDONLY | O_CLOEXEC, 0, &fd);
    if (e == -ENOENT || e == -ENOTDIR || e == -EACCES || e == -ELOOP || e == -ENAMETOOLONG) {
        drop();  /* no cache */
        c.read = 1;
        stale = 0;
        return 0;
    }
    if (e) return vmc__fail(e, "ld.so cache %s: open: %s", file_name, strerror(-e));
    struct stat st;
    if ((e = vmc__os_fstat(fd, &st))) {
        vmc__os_close(fd);
        return vmc__fail(e, "ld.so cache %s: fstat: %s", file_name, strerror(-e));
    }
    if (c.read && st.st_dev == c.dev && st.st_ino == c.ino && st.st_size == c.size &&
        st.st_mtim.tv_sec == c.mtime.tv_sec && st.st_mtim.tv_nsec == c.mtime.tv_nsec) {
        vmc__os_close(fd);
        stale = 0;
        return 0;
    }
    drop();
    char *data = NULL;
    int usable = 0;
    if (S_ISREG(st.st_mode) && st.st_size >= HDR_SIZE && st.st_size <= MAX_SIZE) {
        if (!(data = malloc((size_t)st.st_size))) {
            vmc__os_close(fd);
            return vmc__fail(-ENOMEM, "ld.so cache %s: out of memory for its %lld bytes", file_name,
                             (long long)st.st_size);
        }
        size_t done = 0, got = 0;
        while (done < (size_t)st.st_size) {
            if ((e = vmc__os_pread(fd, data + done, (size_t)st.st_size - done, (off_t)done, &got))) {
                free(data);
                vmc__os_close(fd);
                return vmc__fail(e, "ld.so cache %s: read at offset %zu: %s", file_name, done, strerror(-e));
            }
            if (!got) break;  /* shorter than fstat said: being replaced, no cache for now */
            done += got;
        }
        usable = done == (size_t)st.st_size;
    }
    vmc__os_close(fd);
    reads++;
    c.read = 1;
    c.dev = st.st_dev;
    c.ino = st.st_ino;
    c.size = st.st_size;
    c.mtime = st.st_mtim;
    c.data = data;
    if (!usable || !parse()) {
        free(c.data);
        c.data = NULL;
    } else if (index_keys()) {
        long long n = (long long)c.nlibs;
        drop();
        return vmc__fail(-ENOMEM, "ld.so cache %s: out of memory for the index of its %lld entries", file_name, n);
    }
    stale = 0;
    return 0;
}

/* glibc's order of preference for glibc-hwcaps subdirectory `name`: 1 is
 * the one tried first; 0 when it is not used on this processor. */
static unsigned hwcaps_priority(const char *name)
{
    static const char *const dirs[] = {"x86-64-v4", "x86-64-v3", "x86-64-v2"};
    int level = vmc__arch_isa_level();
    unsigned prio = 0;
    for (int i = 0; i < 3; i++) {
        if (4 - i > level) continue;
        prio++;
        if (!strcmp(name, dirs[i])) return prio;
    }
    return 0;
}

/* The path glibc takes for name from c, or NULL. */
static const char *lookup(const char *name)
{
    const char *best = NULL;
    unsigned best_prio = 0;
    for (uint32_t k = c.heads[hash(name) & c.mask]; k; k = c.next[k - 1]) {
        const char *e = c.data + HDR_SIZE + (size_t)(k - 1) * ENTRY_SIZE;
        const char *key = str_at(u32(e + 4));
        if (!key || strcmp(key, name)) continue;
        int32_t flags = (int32_t)u32(e);
        const char *value = str_at(u32(e + 8));
        if ((flags != FLAG_X8664_LIBC6 && flags != FLAG_ELF) || !value) continue;
        uint64_t hwcap = u64(e + 16);
        if (((hwcap >> 32) & ~(uint64_t)ISA_LEVEL_MASK) == HWCAP_EXTENSION >> 32) {
            /* a glibc-hwcaps subdirectory's copy: ISA level 0 is the
             * baseline, 1 x86-64-v2 and so on */
            unsigned isa = (unsigned)((hwcap >> 32) & ISA_LEVEL_MASK);
            uint32_t idx = (uint32_t)hwcap;
            if ((int)isa + 1 > vmc__arch_isa_level() || idx >= c.nhwcaps) continue;
            const char *dir = str_at(c.hwcaps[idx]);
            unsigned prio = dir ? hwcaps_priority(dir) : 0;
            if (!prio || (best && prio >= best_prio)) continue;
            best = value;
            best_prio = prio;
            continue;
        }
        if (best) break;  /* the subdirectories' entries come first: one of them wins */
        if (hwcap) continue;
        return value;
    }
    return best;
}

int vmc__ldcache_find(const char *name, char *path, size_t len)
{
    pthread_mutex_lock(&lock);
    int r = refresh();
    if (!r && c.data) {
        const char *p = lookup(name);
        if (p && strlen(p) >= len)
            r = vmc__fail(-ENAMETOOLONG, "ld.so cache %s: the path for %s is longer than %zu bytes", file_name,
                          name, len - 1);
        else if (p) {
            strcpy(path, p);
            r = 1;
        }
    }
    pthread_mutex_unlock(&lock);
    return r;
}

VMC_LOAD_PATH void vmc__ldcache_recheck(void)
{
    pthread_mutex_lock(&lock);
    stale = 1;
    pthread_mutex_unlock(&lock);
}

void vmc__ldcache_use(const char *file)
{
    pthread_mutex_lock(&lock);
    drop();
    stale = 1;
    file_name = file ? file : "/etc/ld.so.cache";
    pthread_mutex_unlock(&lock);
}

unsigned long vmc__ldcache_reads(void)
{
    pthread_mutex_lock(&lock);
    unsigned long n = reads;
    pthread_mutex_unlock(&lock);
    return n;
}
