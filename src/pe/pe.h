/* The PE layer: reading, checking, laying out and relocating one PE32+ DLL
 * (Windows x64), beside the ELF layer and of the same rank.
 *
 * On Windows an image section cannot replace a placeholder of the region, so
 * a DLL loaded privately is not mapped: its bytes are read whole and copied
 * into committed memory of the region.  This layer does the format's part
 * and needs no Windows call, so it is built, tested and fuzzed on Linux too:
 *
 *   check.c    DOS, NT and optional headers, the section table, the data
 *              directories: every field checked before anything is copied;
 *   layout.c   the image in a buffer of SizeOfImage bytes (headers and
 *              sections copied, the rest zero), and reads of RVA ranges;
 *   reloc.c    base relocations to the address the image will run at;
 *   imports.c  the import and delay-load directories as a list to bind;
 *   exports.c  the export directory: names, ordinals, forwarders;
 *   dirs.c     the TLS directory, .pdata, the load config (Control Flow Guard).
 *
 * Every range a field names is checked, with sums that cannot wrap, and
 * every refusal names the file, the field and its file offset, in the ELF
 * layer's form:
 *
 *     "NAME: WHAT (offset 0xBASE+0xDELTA): PROBLEM"
 *
 * -ENOEXEC for a file that is malformed or not a DLL for this machine,
 * -ENOTSUP naming the feature for a valid DLL this loader does not take.
 * The structures are declared here (not taken from <windows.h>), by the
 * PE/COFF specification's field offsets, so Linux builds read them too.
 */
#ifndef VMC_PE_H
#define VMC_PE_H

#include <stddef.h>
#include <stdint.h>

#define VMC_PE_MAX_SECTIONS  96          /* as the Windows loader caps them  */
#define VMC_PE_MAX_IMAGE     ((uint32_t)1 << 30)   /* SizeOfImage taken      */
#define VMC_PE_MAX_IMPORTS   65536       /* functions imported, all DLLs     */
#define VMC_PE_MAX_DLLS      1024        /* DLLs imported from               */
#define VMC_PE_MAX_NAME      4096        /* longest import or export name    */
#define VMC_PE_MAX_CALLBACKS 64          /* TLS callbacks                    */

/* IMAGE_FILE_HEADER.Characteristics (the Machine: arch/pe_reloc.h) */
#define VMC_PE_FILE_RELOCS_STRIPPED 0x0001
#define VMC_PE_FILE_EXECUTABLE   0x0002
#define VMC_PE_FILE_DLL          0x2000
/* IMAGE_OPTIONAL_HEADER64.Magic, .Subsystem, .DllCharacteristics */
#define VMC_PE_MAGIC_PE32PLUS    0x20b
#define VMC_PE_MAGIC_PE32        0x10b
#define VMC_PE_SUBSYSTEM_GUI     2
#define VMC_PE_SUBSYSTEM_CUI     3
#define VMC_PE_DLL_DYNAMIC_BASE  0x0040
#define VMC_PE_DLL_GUARD_CF      0x4000
/* IMAGE_SECTION_HEADER.Characteristics */
#define VMC_PE_SCN_CODE          0x00000020
#define VMC_PE_SCN_EXECUTE       0x20000000
#define VMC_PE_SCN_READ          0x40000000
#define VMC_PE_SCN_WRITE         0x80000000
/* data directory indices */
enum {
    VMC_PE_DIR_EXPORT = 0, VMC_PE_DIR_IMPORT = 1, VMC_PE_DIR_RESOURCE = 2, VMC_PE_DIR_EXCEPTION = 3,
    VMC_PE_DIR_SECURITY = 4, VMC_PE_DIR_BASERELOC = 5, VMC_PE_DIR_DEBUG = 6, VMC_PE_DIR_TLS = 9,
    VMC_PE_DIR_LOAD_CONFIG = 10, VMC_PE_DIR_BOUND_IMPORT = 11, VMC_PE_DIR_IAT = 12,
    VMC_PE_DIR_DELAY_IMPORT = 13, VMC_PE_DIR_COM = 14, VMC_PE_NDIRS = 16
};
/* IMAGE_LOAD_CONFIG_DIRECTORY64.GuardFlags */
#define VMC_PE_GUARD_CF_INSTRUMENTED 0x00000100

/* One section, as found in the section table (validated). */
typedef struct vmc_pe_sect {
    char name[9];                /* the 8 bytes, NUL-terminated (for messages) */
    uint32_t index;              /* its number in the table                 */
    uint32_t va, vsize;          /* where it goes (RVA) and its size there  */
    uint32_t raw, rawsize;       /* where its bytes are in the file         */
    uint32_t copy;               /* bytes copied from the file: min(rawsize, vsize) */
    uint32_t chars;              /* Characteristics                         */
} vmc_pe_sect_t;

/* What check.c learnt from the headers. */
typedef struct vmc_pe {
    const char *name;            /* for messages                            */
    uint64_t file_size;
    uint32_t nt;                 /* e_lfanew: the NT headers' offset        */
    uint32_t opt;                /* the optional header's offset            */
    uint32_t sect_off;           /* the section table's offset              */
    uint16_t file_chars;         /* IMAGE_FILE_HEADER.Characteristics       */
    uint16_t subsystem, dll_chars;
    uint64_t image_base;         /* the preferred base                      */
    uint32_t size_of_image, size_of_headers;
    uint32_t sect_align, file_align;
    uint32_t entry;              /* AddressOfEntryPoint (DllMain), or 0     */
    struct { uint32_t rva, size; } dir[VMC_PE_NDIRS];   /* size 0: absent   */
    uint32_t nsect;
    vmc_pe_sect_t sect[VMC_PE_MAX_SECTIONS];
} vmc_pe_t;

/* One imported function: a slot of an import address table to fill. */
typedef struct vmc_pe_import {
    const char *name;            /* in the image, or NULL: by ordinal       */
    uint16_t hint;               /* the name's hint, or the ordinal         */
    uint16_t dll;                /* index into vmc_pe_imports_t.dlls        */
    uint32_t slot;               /* RVA of its 8-byte IAT entry             */
} vmc_pe_import_t;

/* One DLL imported from, by the import or the delay-load directory. */
typedef struct vmc_pe_dll {
    const char *name;            /* in the image                            */
    int delay;                   /* from the delay-load directory           */
    uint32_t handle_slot;        /* delay-load: RVA of its module handle, or 0 */
    size_t first, count;         /* its functions in vmc_pe_imports_t.fn    */
} vmc_pe_dll_t;

typedef struct vmc_pe_imports {
    vmc_pe_dll_t *dlls;          /* import directory first, then delay-load */
    size_t ndlls;
    vmc_pe_import_t *fn;
    size_t nfn;
} vmc_pe_imports_t;

/* An export found by vmc__pe_export. */
typedef struct vmc_pe_sym {
    uint32_t rva;                /* its address in the image (0: forwarded) */
    uint32_t ordinal;            /* biased, as "#N" names it                */
    const char *forward;         /* "DLL.name" or "DLL.#N" in the image, or NULL */
} vmc_pe_sym_t;

/* One DLL laid out in a buffer, and what its directories say. */
typedef struct vmc_pe_obj {
    const char *name;            /* for messages (owned above)              */
    vmc_pe_t pe;                 /* the validated headers                   */
    uint8_t *img;                /* SizeOfImage bytes: where it is written  */
    uint64_t base;               /* the address it runs at                  */
    size_t nrelocs;              /* DIR64 relocations applied               */
    vmc_pe_imports_t imp;
    /* export directory (0 names and functions: none) */
    uint32_t exp_base, exp_nfuncs, exp_nnames, exp_funcs, exp_names, exp_ords;
    const char *exp_dll;         /* its Name, or NULL                       */
    /* TLS directory: callbacks (RVAs, in order) and where the index goes */
    int has_tls;
    uint32_t tls_index, ncallbacks;
    uint32_t callbacks[VMC_PE_MAX_CALLBACKS];
    /* exception directory: RUNTIME_FUNCTION entries, for RtlAddFunctionTable */
    uint32_t pdata, npdata;
    /* load config: Control Flow Guard */
    int has_load_config;
    uint32_t guard_flags;        /* GuardFlags, or 0 when the config has none */
    uint32_t guard_check;        /* RVA of __guard_check_icall_fptr, or 0   */
    uint32_t guard_dispatch;     /* RVA of __guard_dispatch_icall_fptr, or 0 */
} vmc_pe_obj_t;

/* ---- the object's life ------------------------------------------------------
 * The lifecycle (or a test) calls: vmc__pe_check on the file's bytes, takes
 * SizeOfImage bytes where the image is to live, vmc__pe_layout into them,
 * then vmc__pe_read (relocate to `base`, then imports, exports, TLS, .pdata,
 * load config); vmc__pe_free at the end. */
/* Does the file start as a PE image would ("MZ")? */
int vmc__pe_magic(const uint8_t *file, size_t size);
/* check.c: validate every header of a file of `size` bytes into o->pe.
 * Only its first bytes are read, as many as vmc__pe_head_size says (the
 * headers: what the Windows loader maps before it looks at a section), so
 * the loader reads those, checks them, and reads each section's bytes
 * straight to where it goes. */
int vmc__pe_check(vmc_pe_obj_t *o, const uint8_t *file, size_t size);
/* How many leading bytes of a file of `size` bytes vmc__pe_check reads and
 * the layout copies as headers (at most size), judged from the `have`
 * bytes at head: when it returns more than have, read that many and ask
 * again (each answer reads one field further: at most four rounds). */
size_t vmc__pe_head_size(const uint8_t *head, size_t have, uint64_t size);
/* layout.c: write the headers and sections of file (its bytes in memory)
 * into img (size_of_image bytes, zero already: committed memory is). */
void vmc__pe_layout(vmc_pe_obj_t *o, const uint8_t *file, uint8_t *img);
/* The steps after layout, for an image that runs at `base`; on failure
 * what they allocated is freed. */
int vmc__pe_read(vmc_pe_obj_t *o, uint64_t base);
void vmc__pe_free(vmc_pe_obj_t *o);

/* ---- layout.c: reads of the laid-out image ------------------------------ */
/* Is [rva, rva+size) inside the image? */
int vmc__pe_in_image(const vmc_pe_t *pe, uint64_t rva, uint64_t size);
/* The section holding [rva, rva+size), or NULL (the headers, a gap, outside). */
const vmc_pe_sect_t *vmc__pe_sect(const vmc_pe_t *pe, uint64_t rva, uint64_t size);
/* The file offset of rva (for messages): inside a section's file bytes or
 * the headers; otherwise rva itself. */
uint64_t vmc__pe_offset(const vmc_pe_t *pe, uint64_t rva);
/* A NUL-terminated string at rva inside the image (at most
 * VMC_PE_MAX_NAME bytes), or NULL. */
const char *vmc__pe_str(const vmc_pe_obj_t *o, uint64_t rva);
static inline uint16_t vmc__pe_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t vmc__pe_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t vmc__pe_u64(const uint8_t *p)
{
    return (uint64_t)vmc__pe_u32(p) | (uint64_t)vmc__pe_u32(p + 4) << 32;
}
static inline void vmc__pe_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- the steps vmc__pe_read runs ------------------------------------------ */
int vmc__pe_relocate(vmc_pe_obj_t *o);            /* reloc.c                 */
int vmc__pe_imports(vmc_pe_obj_t *o);             /* imports.c               */
int vmc__pe_exports(vmc_pe_obj_t *o);             /* exports.c               */
int vmc__pe_tls(vmc_pe_obj_t *o);                 /* dirs.c                  */
int vmc__pe_pdata(vmc_pe_obj_t *o);
int vmc__pe_load_config(vmc_pe_obj_t *o);

/* exports.c: look `name` up ("#12": ordinal 12): 1 with *out, 0 if the DLL
 * does not export it.  Every read is bounds-checked again, so it is safe on
 * an image whose code has run and written its own tables. */
int vmc__pe_export(const vmc_pe_obj_t *o, const char *name, vmc_pe_sym_t *out);

/* exports.c: the named export at the highest address at or below rva in
 * rva's section (forwarders aside): 1 with its name and RVA, 0 if none. */
int vmc__pe_nearest(const vmc_pe_obj_t *o, uint64_t rva, const char **name, uint32_t *at);

/* Is rva inside an executable section? */
int vmc__pe_executable(const vmc_pe_t *pe, uint64_t rva);

#endif
