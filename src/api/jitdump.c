/* perf's jitdump file for named code (the -jitdump option).
 *
 * perf names samples in anonymous executable memory from /tmp/perf-PID.map
 * (jitnames.c writes it with -perf_map), but not in a file mapping: under
 * W^X generated code runs from the memory file's executable view, which
 * perf 6.1 reports as "memfd:vmcode-code (deleted)" and never looks up in
 * the map.  The jitdump format covers both: the process appends one
 * JIT_CODE_LOAD record per name (address, size, name, a copy of the code)
 * to jit-PID.dump, and maps that file executable once so that the mmap
 * event in perf.data says where it is; `perf inject --jit` then writes a
 * small ELF file per record and points the samples at them.  Timestamps
 * are CLOCK_MONOTONIC, which `perf record -k 1` uses too.
 *
 * The record layout is perf's (tools/perf/util/jitdump.h); everything is
 * in native byte order.
 */
#include "api/jitnames.h"
#include "arch/reloc.h"
#include "base/error.h"
#include "os/os.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define JITDUMP_MAGIC   0x4A695444u   /* "JiTD" */
#define JITDUMP_VERSION 1
#define JIT_CODE_LOAD   0

struct jd_header {
    uint32_t magic, version, total_size, elf_mach, pad1, pid;
    uint64_t timestamp, flags;
};

struct jd_code_load {
    uint32_t id, total_size;
    uint64_t timestamp;
    uint32_t pid, tid;
    uint64_t vma, code_addr, code_size, code_index;
    /* then the name with its NUL, then code_size bytes of code */
};

static uint64_t stamp(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void vmc__jitdump_init(vmc_jitdump_t *d)
{
    d->fd = -1;
    d->pid = 0;
    d->marker = NULL;
    d->index = 0;
}

void vmc__jitdump_close(vmc_jitdump_t *d)
{
    /* The marker stays mapped in a forked child until it opens its own
     * file; the parent's is unmapped here (never inside a region). */
    if (d->marker && d->pid == (pid_t)vmc__os_pid()) vmc__os_munmap(d->marker, vmc__os_page_size());
    if (d->fd >= 0) vmc__os_close(d->fd);
    vmc__jitdump_init(d);
}

int vmc__jitdump_open(vmc_jitdump_t *d, int *fresh)
{
    pid_t pid = (pid_t)vmc__os_pid();
    *fresh = 0;
    if (d->fd >= 0 && d->pid == pid) return 0;
    if (d->fd >= 0) {  /* a forked child: the parent's file and marker */
        vmc__os_close(d->fd);
        d->fd = -1;
        d->marker = NULL;  /* the child's copy of the parent's marker stays: it names the parent's file */
    }
    char path[64];
    snprintf(path, sizeof path, "/tmp/jit-%ld.dump", (long)pid);
    int fd, e = vmc__os_open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644, &fd);
    if (e) return vmc__fail(e, "vmc_name: -jitdump: cannot open %s: %s", path, strerror(-e));
    struct jd_header h = {JITDUMP_MAGIC, JITDUMP_VERSION, sizeof h, vmc__arch_elf_machine(), 0, (uint32_t)pid, stamp(), 0};
    void *m = NULL;
    if ((e = vmc__os_pwrite(fd, &h, sizeof h, 0))) {
        e = vmc__fail(e, "vmc_name: -jitdump: writing %s: %s", path, strerror(-e));
    } else if ((e = vmc__os_mmap(NULL, vmc__os_page_size(), PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0, &m))) {
        e = vmc__fail(e, "vmc_name: -jitdump: mapping %s (perf finds the file by this mapping): %s", path,
                      strerror(-e));
    }
    if (e) {
        vmc__os_close(fd);
        vmc__os_unlink(path);
        return e;
    }
    d->fd = fd;
    d->pid = pid;
    d->marker = m;
    *fresh = 1;
    return 0;
}

int vmc__jitdump_record(vmc_jitdump_t *d, uintptr_t addr, size_t size, const char *name, int readable)
{
    size_t nlen = strlen(name) + 1;
    size_t total = sizeof(struct jd_code_load) + nlen + size;
    uint8_t *rec = malloc(total);
    if (!rec) return vmc__fail(-ENOMEM, "vmc_name: -jitdump: out of memory for a %zu-byte record", total);
    struct jd_code_load r = {JIT_CODE_LOAD, (uint32_t)total, stamp(), (uint32_t)d->pid, (uint32_t)gettid(),
                             addr, addr, size, d->index++};
    memcpy(rec, &r, sizeof r);
    memcpy(rec + sizeof r, name, nlen);
    if (readable) memcpy(rec + sizeof r + nlen, (const void *)addr, size);  /* the executable view is readable */
    else memset(rec + sizeof r + nlen, 0, size);
    int e = vmc__os_pwrite(d->fd, rec, total, 0);  /* O_APPEND: at the end */
    free(rec);
    return e ? vmc__fail(e, "vmc_name: -jitdump: writing /tmp/jit-%ld.dump: %s", (long)d->pid, strerror(-e)) : 0;
}
