/* ELF image helpers for the loader tests (see elfimg.h). */
#include "elfimg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vt_img_read(const char *path, vt_img_t *m)
{
    FILE *f = fopen(path, "rbe");
    if (!f) return -errno;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    m->b = malloc(n > 0 ? (size_t)n : 1);
    m->n = fread(m->b, 1, (size_t)n, f);
    fclose(f);
    return m->n == (size_t)n ? 0 : -EIO;
}

vt_img_t vt_img_copy(const vt_img_t *m)
{
    vt_img_t c = {malloc(m->n ? m->n : 1), m->n};
    memcpy(c.b, m->b, m->n);
    return c;
}

void vt_img_free(vt_img_t *m)
{
    free(m->b);
    m->b = NULL;
    m->n = 0;
}

int vt_img_write(const vt_img_t *m, const char *path)
{
    FILE *f = fopen(path, "wbe");
    if (!f) return -errno;
    size_t w = fwrite(m->b, 1, m->n, f);
    fclose(f);
    return w == m->n ? 0 : -EIO;
}

Elf64_Ehdr *vt_ehdr(const vt_img_t *m) { return (Elf64_Ehdr *)m->b; }

Elf64_Phdr *vt_phdr(const vt_img_t *m, int i)
{
    return (Elf64_Phdr *)(m->b + vt_ehdr(m)->e_phoff) + i;
}

int vt_phdr_find(const vt_img_t *m, uint32_t type, int nth)
{
    for (int i = 0; i < vt_ehdr(m)->e_phnum; i++)
        if (vt_phdr(m, i)->p_type == type && nth-- == 0) return i;
    return -1;
}

int vt_file_phdr(const char *path, uint32_t type, Elf64_Phdr *out)
{
    vt_img_t m;
    int e = vt_img_read(path, &m);
    if (e) return e;
    int i = vt_phdr_find(&m, type, 0);
    if (i >= 0) *out = *vt_phdr(&m, i);
    vt_img_free(&m);
    return i >= 0 ? 0 : -ENOENT;
}

int vt_load_find(const vt_img_t *m, uint32_t flags, uint32_t without)
{
    for (int i = 0; i < vt_ehdr(m)->e_phnum; i++) {
        Elf64_Phdr *p = vt_phdr(m, i);
        if (p->p_type == PT_LOAD && (p->p_flags & flags) == flags && !(p->p_flags & without)) return i;
    }
    return -1;
}

uint64_t vt_v2o(const vt_img_t *m, uint64_t va)
{
    for (int i = 0; i < vt_ehdr(m)->e_phnum; i++) {
        Elf64_Phdr *p = vt_phdr(m, i);
        if (p->p_type == PT_LOAD && va >= p->p_vaddr && va < p->p_vaddr + p->p_filesz)
            return p->p_offset + (va - p->p_vaddr);
    }
    return (uint64_t)-1;
}

uint64_t vt_dyn_offset(const vt_img_t *m)
{
    return vt_phdr(m, vt_phdr_find(m, PT_DYNAMIC, 0))->p_offset;
}

Elf64_Dyn *vt_dyn(const vt_img_t *m, int64_t tag, size_t *idx)
{
    Elf64_Phdr *p = vt_phdr(m, vt_phdr_find(m, PT_DYNAMIC, 0));
    Elf64_Dyn *d = (Elf64_Dyn *)(m->b + p->p_offset);
    for (size_t i = 0; i < p->p_filesz / sizeof *d && d[i].d_tag != DT_NULL; i++) {
        if (d[i].d_tag == tag) {
            if (idx) *idx = i;
            return &d[i];
        }
    }
    return NULL;
}

uint64_t vt_img_hi(const vt_img_t *m)
{
    uint64_t hi = 0;
    for (int i = 0; i < vt_ehdr(m)->e_phnum; i++) {
        Elf64_Phdr *p = vt_phdr(m, i);
        if (p->p_type == PT_LOAD && p->p_vaddr + p->p_memsz > hi) hi = p->p_vaddr + p->p_memsz;
    }
    return (hi + 4095) & ~(uint64_t)4095;
}

uint64_t vt_img_lo(const vt_img_t *m)
{
    return vt_phdr(m, vt_phdr_find(m, PT_LOAD, 0))->p_vaddr & ~(uint64_t)4095;
}

int vt_img_copy_file(const char *from, const char *to)
{
    vt_img_t m;
    int e = vt_img_read(from, &m);
    if (e) return e;
    e = vt_img_write(&m, to);
    vt_img_free(&m);
    return e;
}
