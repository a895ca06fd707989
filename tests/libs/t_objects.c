/* A library that asks the C library about loaded objects: it must find
 * itself although the system loader did not load it. */
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *t_obj_iterate_fn(void) { return (void *)&dl_iterate_phdr; }
void *t_obj_malloc_fn(void) { return (void *)&malloc; }

typedef struct found {
    uintptr_t pc;
    const char *name;
    uintptr_t addr;
    int phnum, hits, entries;
    unsigned long long adds;
} found_t;

static int cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    found_t *f = arg;
    if (f->entries++ == 0 && size >= offsetof(struct dl_phdr_info, dlpi_subs)) f->adds = info->dlpi_adds;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD) continue;
        uintptr_t lo = info->dlpi_addr + p->p_vaddr;
        if (f->pc >= lo && f->pc - lo < p->p_memsz) {
            f->hits++;
            f->name = info->dlpi_name;
            f->addr = info->dlpi_addr;
            f->phnum = info->dlpi_phnum;
        }
    }
    return 0;
}

/* How many objects hold this function's code (1), which one, at what bias. */
int t_obj_find_self(const char **name, uintptr_t *addr, int *phnum, unsigned long long *adds)
{
    found_t f = {(uintptr_t)&t_obj_find_self, NULL, 0, 0, 0, 0, 0};
    dl_iterate_phdr(cb, &f);
    *name = f.name;
    *addr = f.addr;
    *phnum = f.phnum;
    *adds = f.adds;
    return f.hits;
}

static int stop_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)info;
    (void)size;
    return ++*(int *)arg == 2 ? 77 : 0;
}

/* The callback's non-zero result ends the walk and is returned. */
int t_obj_stop_early(int *calls)
{
    *calls = 0;
    return dl_iterate_phdr(stop_cb, calls);
}
