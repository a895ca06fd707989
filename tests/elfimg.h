/* Test helpers: read an ELF shared library into memory, find its parts,
 * and patch them to make broken variants. */
#ifndef VT_ELFIMG_H
#define VT_ELFIMG_H
#include <elf.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vt_img {
    uint8_t *b;          /* the file's bytes (malloc'd) */
    size_t n;
} vt_img_t;

int vt_img_read(const char *path, vt_img_t *m);        /* 0 or -errno          */
vt_img_t vt_img_copy(const vt_img_t *m);
void vt_img_free(vt_img_t *m);
int vt_img_write(const vt_img_t *m, const char *path);  /* 0 or -errno          */
int vt_img_copy_file(const char *from, const char *to); /* 0 or -errno          */

Elf64_Ehdr *vt_ehdr(const vt_img_t *m);
Elf64_Phdr *vt_phdr(const vt_img_t *m, int i);
/* Index of the nth (0-based) program header of `type`, or -1. */
int vt_phdr_find(const vt_img_t *m, uint32_t type, int nth);
/* The first program header of `type` in the file at path, into *out: 0,
 * -ENOENT if it has none, or vt_img_read's error. */
int vt_file_phdr(const char *path, uint32_t type, Elf64_Phdr *out);
/* Index of the first PT_LOAD whose flags include all of `flags` and none of
 * `without`, or -1. */
int vt_load_find(const vt_img_t *m, uint32_t flags, uint32_t without);
/* File offset of a file-backed virtual address, or (uint64_t)-1. */
uint64_t vt_v2o(const vt_img_t *m, uint64_t va);
/* The dynamic entry with `tag` (its index in *idx), or NULL. */
Elf64_Dyn *vt_dyn(const vt_img_t *m, int64_t tag, size_t *idx);
uint64_t vt_dyn_offset(const vt_img_t *m);                /* PT_DYNAMIC p_offset  */
/* Page-rounded end of the last PT_LOAD (the image's span from 0). */
uint64_t vt_img_hi(const vt_img_t *m);
/* Lowest page of the first PT_LOAD. */
uint64_t vt_img_lo(const vt_img_t *m);
#endif
