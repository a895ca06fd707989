/* Does the program define a symbol it does not export?  For the message of
 * an undefined symbol: a plug-in that calls a function of its host finds it
 * only if the program exports it (-rdynamic), and the usual cause of such a
 * miss is a program linked without.  The program's own symbol table
 * (.symtab, which the system loader never reads) is read from
 * the program's file (vmc__os_self_exe_path), on this failure path only; a stripped program has none,
 * and then nothing is said.  Any failure to read it means "do not know":
 * no error of its own is recorded, the message stays the loader's. */
#include "lib/loader.h"
#include "base/attrs.h"
#include "os/os.h"

#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MAX ((uint64_t)256 << 20)   /* larger tables: do not know */

static int read_at(int fd, void *buf, uint64_t len, uint64_t off, uint64_t file_size)
{
    size_t got;
    if (off > file_size || len > file_size - off) return -1;
    return vmc__os_pread(fd, buf, (size_t)len, (off_t)off, &got) || got != len ? -1 : 0;
}

/* 1 if the program's .symtab has a global or weak, default-visibility
 * definition of name; 0 if not, or if that cannot be told. */
VMC_LOAD_PATH static int search(int fd, uint64_t size, const char *name)
{
    Elf64_Ehdr eh;
    if (read_at(fd, &eh, sizeof eh, 0, size) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) || !eh.e_shnum)
        return 0;
    uint64_t shlen = (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr);
    Elf64_Shdr *sh = malloc(shlen);
    if (!sh) return 0;
    int found = 0;
    if (read_at(fd, sh, shlen, eh.e_shoff, size)) goto out;
    for (unsigned i = 0; i < eh.e_shnum && !found; i++) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh.e_shnum) continue;
        const Elf64_Shdr *st = &sh[sh[i].sh_link];
        if (sh[i].sh_size > TABLE_MAX || st->sh_size > TABLE_MAX || !st->sh_size) continue;
        Elf64_Sym *syms = malloc(sh[i].sh_size ? sh[i].sh_size : 1);
        char *strs = malloc(st->sh_size + 1);
        if (syms && strs && !read_at(fd, syms, sh[i].sh_size, sh[i].sh_offset, size) &&
            !read_at(fd, strs, st->sh_size, st->sh_offset, size)) {
            strs[st->sh_size] = 0;
            for (uint64_t k = 0; k < sh[i].sh_size / sizeof *syms; k++) {
                const Elf64_Sym *s = &syms[k];
                int b = ELF64_ST_BIND(s->st_info);
                if (s->st_shndx == SHN_UNDEF || (b != STB_GLOBAL && b != STB_WEAK) ||
                    ELF64_ST_VISIBILITY(s->st_other) != STV_DEFAULT || s->st_name >= st->sh_size)
                    continue;
                if (!strcmp(strs + s->st_name, name)) {
                    found = 1;
                    break;
                }
            }
        }
        free(syms);
        free(strs);
    }
out:
    free(sh);
    return found;
}

int vmc__prog_defines(const char *name)
{
    int fd;
    const char *exe = vmc__os_self_exe_path();
    if (!exe || vmc__os_open(exe, O_RDONLY, 0, &fd)) return 0;
    struct stat st;
    int found = !vmc__os_fstat(fd, &st) && search(fd, (uint64_t)st.st_size, name);
    vmc__os_close(fd);
    return found;
}
