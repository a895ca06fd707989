/* PE validation: every header field checked before anything is copied.
 *
 * The file is in memory whole (the loader reads it once: sections are
 * copied, not mapped), so every check is against its size.  Order: the DOS
 * header ("MZ", e_lfanew), the NT signature, the file header (the machine, a DLL,
 * at most 96 sections), the PE32+ optional header (alignments, ImageBase,
 * SizeOfImage, SizeOfHeaders, subsystem, data directories), then each
 * section header: raw data inside the file, virtual range inside
 * SizeOfImage, both without a sum that can wrap; sections sorted by
 * address, each starting at or after the previous one's end rounded to
 * SectionAlignment, none over the headers.  A section both writable and
 * executable is refused (-ENOTSUP): the region keeps W^X for private code.
 * SectionAlignment must be at least the 4 KiB page (each section gets its
 * own protection); images in the low-alignment mode are refused as
 * unsupported.  A .NET assembly (the COR20 directory) is refused as
 * unsupported: it needs the runtime's loader.
 */
#include "pe/pe.h"
#include "arch/pe_reloc.h"
#include "base/error.h"

#include <errno.h>
#include <string.h>

#define PAGE 4096u

static int is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

int vmc__pe_magic(const uint8_t *file, size_t size)
{
    return size >= 2 && file[0] == 'M' && file[1] == 'Z';
}

/* "optional header SizeOfImage (offset 0x80+0x50)" */
#define OPT_FAIL(err, field, off, ...) \
    vmc__fail(err, "%s: optional header %s (offset 0x%x+0x%x): " __VA_ARGS__)  /* field, off: see OPT_ARGS */
#define OPT_ARGS(field, off) pe->name, field, pe->opt, (unsigned)(off)

static const char *dir_names[VMC_PE_NDIRS] = {
    "export", "import", "resource", "exception", "security", "base relocation", "debug",
    "architecture", "global pointer", "TLS", "load config", "bound import", "import address table",
    "delay import", "COM descriptor (COR20)", "reserved",
};

static int check_optional(vmc_pe_t *pe, const uint8_t *f, uint32_t optsize)
{
    const uint8_t *o = f + pe->opt;
    uint16_t magic = vmc__pe_u16(o);
    if (magic == VMC_PE_MAGIC_PE32)
        return OPT_FAIL(-ENOEXEC, "Magic", 0, "0x10b is PE32 (32-bit), not PE32+", OPT_ARGS("Magic", 0));
    if (magic != VMC_PE_MAGIC_PE32PLUS)
        return OPT_FAIL(-ENOEXEC, "Magic", 0, "0x%x is not PE32+ (0x20b)", OPT_ARGS("Magic", 0), magic);
    if (optsize < 112)
        return vmc__fail(-ENOEXEC, "%s: file header SizeOfOptionalHeader (offset 0x%x+0x14): %u is too "
                         "small for a PE32+ optional header (112 bytes before the data directories)",
                         pe->name, pe->nt, optsize);
    pe->entry = vmc__pe_u32(o + 16);
    pe->image_base = vmc__pe_u64(o + 24);
    pe->sect_align = vmc__pe_u32(o + 32);
    pe->file_align = vmc__pe_u32(o + 36);
    pe->size_of_image = vmc__pe_u32(o + 56);
    pe->size_of_headers = vmc__pe_u32(o + 60);
    pe->subsystem = vmc__pe_u16(o + 68);
    pe->dll_chars = vmc__pe_u16(o + 70);
    uint32_t ndirs = vmc__pe_u32(o + 108);

    if (!is_pow2(pe->file_align) || pe->file_align < 512 || pe->file_align > 65536)
        return OPT_FAIL(-ENOEXEC, "FileAlignment", 36, "0x%x is not a power of two from 0x200 to 0x10000",
                        OPT_ARGS("FileAlignment", 36), pe->file_align);
    if (!is_pow2(pe->sect_align) || pe->sect_align < pe->file_align)
        return OPT_FAIL(-ENOEXEC, "SectionAlignment", 32,
                        "0x%x is not a power of two at least FileAlignment (0x%x)",
                        OPT_ARGS("SectionAlignment", 32), pe->sect_align, pe->file_align);
    if (pe->sect_align < PAGE)
        return OPT_FAIL(-ENOTSUP, "SectionAlignment", 32,
                        "0x%x is below the page size (0x%x): images with sections not page aligned are not "
                        "supported", OPT_ARGS("SectionAlignment", 32), pe->sect_align, PAGE);
    if (pe->image_base % 65536 || pe->image_base > UINT64_MAX - pe->size_of_image)
        return OPT_FAIL(-ENOEXEC, "ImageBase", 24, "0x%llx is not a multiple of 64 KiB below 2^64 - SizeOfImage",
                        OPT_ARGS("ImageBase", 24), (unsigned long long)pe->image_base);
    if (pe->size_of_image == 0 || pe->size_of_image % pe->sect_align)
        return OPT_FAIL(-ENOEXEC, "SizeOfImage", 56, "0x%x is not a non-zero multiple of SectionAlignment (0x%x)",
                        OPT_ARGS("SizeOfImage", 56), pe->size_of_image, pe->sect_align);
    if (pe->size_of_image > VMC_PE_MAX_IMAGE)
        return OPT_FAIL(-ENOTSUP, "SizeOfImage", 56, "0x%x: images over 1 GiB are not supported",
                        OPT_ARGS("SizeOfImage", 56), pe->size_of_image);
    if (pe->subsystem != VMC_PE_SUBSYSTEM_GUI && pe->subsystem != VMC_PE_SUBSYSTEM_CUI)
        return OPT_FAIL(-ENOEXEC, "Subsystem", 68,
                        "subsystem %u is not a Windows user-mode one (2, GUI, or 3, console)",
                        OPT_ARGS("Subsystem", 68), pe->subsystem);
    if (ndirs > VMC_PE_NDIRS)
        return OPT_FAIL(-ENOEXEC, "NumberOfRvaAndSizes", 108, "%u is more than %d", OPT_ARGS("NumberOfRvaAndSizes", 108),
                        ndirs, VMC_PE_NDIRS);
    if (optsize < 112 + 8 * ndirs)
        return vmc__fail(-ENOEXEC, "%s: file header SizeOfOptionalHeader (offset 0x%x+0x14): %u does not hold "
                         "NumberOfRvaAndSizes (%u) data directories", pe->name, pe->nt, optsize, ndirs);
    memset(pe->dir, 0, sizeof pe->dir);
    for (uint32_t i = 0; i < ndirs; i++) {
        pe->dir[i].rva = vmc__pe_u32(o + 112 + 8 * i);
        pe->dir[i].size = vmc__pe_u32(o + 116 + 8 * i);
    }
    return 0;
}

/* "section header 3 .data (offset 0x188+0x78)" */
#define SEC_FAIL(err, ...) vmc__fail(err, "%s: section header %u %s (offset 0x%x+0x%x): " __VA_ARGS__)
#define SEC_ARGS(s) pe->name, (s)->index, (s)->name, pe->sect_off, (unsigned)((s)->index * 40)

static int check_section(vmc_pe_t *pe, const uint8_t *h, uint32_t i)
{
    vmc_pe_sect_t *s = &pe->sect[i];
    memcpy(s->name, h, 8);
    s->name[8] = 0;
    for (int k = 0; k < 8; k++)  /* names are for messages: printable only */
        if (s->name[k] && (s->name[k] < 0x20 || s->name[k] > 0x7e)) s->name[k] = '?';
    s->index = i;
    uint32_t vsize = vmc__pe_u32(h + 8);
    s->va = vmc__pe_u32(h + 12);
    s->rawsize = vmc__pe_u32(h + 16);
    s->raw = vmc__pe_u32(h + 20);
    s->chars = vmc__pe_u32(h + 36);
    s->vsize = vsize ? vsize : s->rawsize;  /* 0: the raw size, as Windows takes it */
    s->copy = s->rawsize < s->vsize ? s->rawsize : s->vsize;
    if (s->rawsize && (uint64_t)s->raw + s->rawsize > pe->file_size)
        return SEC_FAIL(-ENOEXEC, "PointerToRawData 0x%x + SizeOfRawData 0x%x is past the end of the file "
                        "(0x%llx bytes)", SEC_ARGS(s), s->raw, s->rawsize, (unsigned long long)pe->file_size);
    if (s->rawsize && s->raw % pe->file_align)
        return SEC_FAIL(-ENOEXEC, "PointerToRawData 0x%x is not a multiple of FileAlignment (0x%x)",
                        SEC_ARGS(s), s->raw, pe->file_align);
    if (s->va % pe->sect_align)
        return SEC_FAIL(-ENOEXEC, "VirtualAddress 0x%x is not a multiple of SectionAlignment (0x%x)",
                        SEC_ARGS(s), s->va, pe->sect_align);
    if ((uint64_t)s->va + s->vsize > pe->size_of_image)
        return SEC_FAIL(-ENOEXEC, "VirtualAddress 0x%x + VirtualSize 0x%x is past SizeOfImage (0x%x)",
                        SEC_ARGS(s), s->va, s->vsize, pe->size_of_image);
    uint64_t floor = ((uint64_t)pe->size_of_headers + pe->sect_align - 1) & ~(uint64_t)(pe->sect_align - 1);
    if (i) {
        const vmc_pe_sect_t *p = &pe->sect[i - 1];
        floor = ((uint64_t)p->va + p->vsize + pe->sect_align - 1) & ~(uint64_t)(pe->sect_align - 1);
        if (s->va < p->va)
            return SEC_FAIL(-ENOEXEC, "VirtualAddress 0x%x is below section %u's 0x%x (not sorted)",
                            SEC_ARGS(s), s->va, p->index, p->va);
        if (s->va < floor)
            return SEC_FAIL(-ENOEXEC, "VirtualAddress 0x%x overlaps section %u (up to 0x%llx)", SEC_ARGS(s),
                            s->va, p->index, (unsigned long long)floor);
    } else if (s->va < floor) {
        return SEC_FAIL(-ENOEXEC, "VirtualAddress 0x%x overlaps the headers (SizeOfHeaders 0x%x)",
                        SEC_ARGS(s), s->va, pe->size_of_headers);
    }
    if ((s->chars & VMC_PE_SCN_WRITE) && (s->chars & VMC_PE_SCN_EXECUTE))
        return SEC_FAIL(-ENOTSUP, "a writable and executable section (Characteristics 0x%x) is not supported",
                        SEC_ARGS(s), s->chars);
    return 0;
}

/* The extents the checks below read, in their order: the DOS header, the
 * NT headers' first 24 bytes, the optional header and the section table
 * after it, and SizeOfHeaders (which check_optional makes sure covers the
 * table): a field past `have` asks for the bytes up to it.  A value that
 * will fail a check asks for nothing more (or for the whole file, when
 * the extent is past it: the check then says so). */
size_t vmc__pe_head_size(const uint8_t *f, size_t have, uint64_t size)
{
    uint64_t need = 64;
    if (size <= need || have < need) return (size_t)(size < need ? size : need);
    uint32_t nt = vmc__pe_u32(f + 0x3c);
    if (nt < 64 || nt % 8) return (size_t)need;
    need = (uint64_t)nt + 24;
    if (need >= size || have < need) return (size_t)(need < size ? need : size);
    uint64_t opt = need, table = opt + vmc__pe_u16(f + nt + 20) + 40ull * vmc__pe_u16(f + nt + 6);
    need = table > opt + 64 ? table : opt + 64;   /* SizeOfHeaders: opt+60 */
    if (need >= size || have < need) return (size_t)(need < size ? need : size);
    uint64_t headers = vmc__pe_u32(f + opt + 60);
    if (headers > need) need = headers;
    return (size_t)(need < size ? need : size);
}

int vmc__pe_check(vmc_pe_obj_t *ob, const uint8_t *f, size_t size)
{
    vmc_pe_t *pe = &ob->pe;
    memset(pe, 0, sizeof *pe);
    pe->name = ob->name;
    pe->file_size = size;
    unsigned long long fsz = size;  /* for messages */
    if (size < 64)
        return vmc__fail(-ENOEXEC, "%s: DOS header (offset 0x0+0x40): file is 0x%llx bytes, too short", pe->name,
                         fsz);
    if (!vmc__pe_magic(f, size))
        return vmc__fail(-ENOEXEC, "%s: DOS header e_magic (offset 0x0): not MZ: not a PE file", pe->name);
    uint32_t nt = vmc__pe_u32(f + 0x3c);
    if (nt < 64 || nt % 8)
        return vmc__fail(-ENOEXEC, "%s: DOS header e_lfanew (offset 0x3c): 0x%x is inside the DOS header or "
                         "not 8-byte aligned", pe->name, nt);
    if ((uint64_t)nt + 24 > size)
        return vmc__fail(-ENOEXEC, "%s: DOS header e_lfanew (offset 0x3c): NT headers 0x%x+0x18 are past the "
                         "end of the file (0x%llx bytes)", pe->name, nt, fsz);
    pe->nt = nt;
    if (memcmp(f + nt, "PE\0\0", 4))
        return vmc__fail(-ENOEXEC, "%s: NT headers Signature (offset 0x%x): not PE\\0\\0", pe->name, nt);
    const uint8_t *fh = f + nt + 4;
    uint16_t machine = vmc__pe_u16(fh), nsect = vmc__pe_u16(fh + 2), optsize = vmc__pe_u16(fh + 16);
    pe->file_chars = vmc__pe_u16(fh + 18);
    if (machine != vmc__arch_pe_machine())
        return vmc__fail(-ENOEXEC, "%s: file header Machine (offset 0x%x+0x4): machine 0x%x is not %s "
                         "(0x%x)", pe->name, nt, machine, vmc__arch_pe_machine_name(), vmc__arch_pe_machine());
    if (!(pe->file_chars & VMC_PE_FILE_EXECUTABLE) || !(pe->file_chars & VMC_PE_FILE_DLL))
        return vmc__fail(-ENOEXEC, "%s: file header Characteristics (offset 0x%x+0x16): 0x%x is not an "
                         "executable DLL (IMAGE_FILE_EXECUTABLE_IMAGE and IMAGE_FILE_DLL)", pe->name, nt,
                         pe->file_chars);
    if (nsect == 0 || nsect > VMC_PE_MAX_SECTIONS)
        return vmc__fail(-ENOEXEC, "%s: file header NumberOfSections (offset 0x%x+0x6): %u is not 1 to %d",
                         pe->name, nt, nsect, VMC_PE_MAX_SECTIONS);
    pe->opt = nt + 24;
    if ((uint64_t)pe->opt + optsize > size || optsize < 2)
        return vmc__fail(-ENOEXEC, "%s: file header SizeOfOptionalHeader (offset 0x%x+0x14): optional header "
                         "0x%x+0x%x is past the end of the file (0x%llx bytes)", pe->name, nt, pe->opt,
                         optsize, fsz);
    int e = check_optional(pe, f, optsize);
    if (e) return e;
    pe->sect_off = pe->opt + optsize;
    pe->nsect = nsect;
    uint64_t table_end = (uint64_t)pe->sect_off + 40u * nsect;
    if (table_end > size)
        return vmc__fail(-ENOEXEC, "%s: section table (offset 0x%x): %u section headers (0x%x bytes) are past "
                         "the end of the file (0x%llx bytes)", pe->name, pe->sect_off, nsect, 40u * nsect, fsz);
    if (pe->size_of_headers < table_end)
        return OPT_FAIL(-ENOEXEC, "SizeOfHeaders", 60, "0x%x does not cover the section table (up to 0x%llx)",
                        OPT_ARGS("SizeOfHeaders", 60), pe->size_of_headers, (unsigned long long)table_end);
    if (pe->size_of_headers > size || pe->size_of_headers > pe->size_of_image)
        return OPT_FAIL(-ENOEXEC, "SizeOfHeaders", 60, "0x%x is past the end of the file (0x%llx bytes) or "
                        "SizeOfImage (0x%x)", OPT_ARGS("SizeOfHeaders", 60), pe->size_of_headers, fsz,
                        pe->size_of_image);
    if (pe->size_of_headers % pe->file_align)
        return OPT_FAIL(-ENOEXEC, "SizeOfHeaders", 60, "0x%x is not a multiple of FileAlignment (0x%x)",
                        OPT_ARGS("SizeOfHeaders", 60), pe->size_of_headers, pe->file_align);
    for (uint32_t i = 0; i < nsect; i++)
        if ((e = check_section(pe, f + pe->sect_off + 40 * i, i))) return e;

    for (int i = 0; i < VMC_PE_NDIRS; i++) {
        uint32_t rva = pe->dir[i].rva, sz = pe->dir[i].size;
        if (!sz) continue;
        /* the certificate table is the one directory given as a file offset */
        uint64_t limit = i == VMC_PE_DIR_SECURITY ? pe->file_size : pe->size_of_image;
        if ((uint64_t)rva + sz > limit)
            return OPT_FAIL(-ENOEXEC, "DataDirectory", 112 + 8 * i,
                            "the %s directory 0x%x+0x%x is outside the %s (0x%llx bytes)",
                            OPT_ARGS("DataDirectory", 112 + 8 * i), dir_names[i], rva, sz,
                            i == VMC_PE_DIR_SECURITY ? "file" : "image", (unsigned long long)limit);
    }
    if (pe->dir[VMC_PE_DIR_COM].size)
        return OPT_FAIL(-ENOTSUP, "DataDirectory", 112 + 8 * VMC_PE_DIR_COM,
                        "a .NET assembly (COR20 header) is not supported",
                        OPT_ARGS("DataDirectory", 112 + 8 * VMC_PE_DIR_COM));
    if (pe->entry && !vmc__pe_executable(pe, pe->entry))
        return OPT_FAIL(-ENOEXEC, "AddressOfEntryPoint", 16, "0x%x is not inside an executable section",
                        OPT_ARGS("AddressOfEntryPoint", 16), pe->entry);
    return 0;
}

int vmc__pe_executable(const vmc_pe_t *pe, uint64_t rva)
{
    const vmc_pe_sect_t *s = vmc__pe_sect(pe, rva, 1);
    return s && (s->chars & VMC_PE_SCN_EXECUTE);
}
