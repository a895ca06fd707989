/* libFuzzer target: the PE reader on arbitrary bytes.
 *
 * Each input is checked as a PE32+ DLL; if its headers pass and its image
 * is at most 64 MiB, it is laid out into a buffer of exactly SizeOfImage
 * bytes (so AddressSanitizer sees any read or write past the image), read
 * at a base far from any preferred one (relocations, imports, exports,
 * TLS, .pdata, load config), a few exports are looked up, and everything
 * is freed.  The parser and relocator need no Windows call, so they are
 * fuzzed on Linux.  Any crash, sanitizer report or leak is a bug: a hostile
 * image must be refused with an error, never trusted.
 *
 *   make fuzz                          build fuzz-out/fuzz_pe (and fuzz_elf)
 *   make fuzz-run FUZZ_SECONDS=40      seed from the test DLLs and run both
 */
#include "pe/pe.h"
#include "vmcode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IMAGE ((uint32_t)64 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"t_add", "t_tick_fwd", "#12", "#1", "", "DllMain", "#65535"};
    vmc_pe_obj_t o;
    memset(&o, 0, sizeof o);
    o.name = "fuzz.dll";
    int r = vmc__pe_check(&o, data, size);
    if (r > 0 || (r && !vmc_last_error()[0])) abort();  /* errors are negative and explained */
    /* the loader checks the headers alone: vmc__pe_head_size's many bytes
     * (an exact copy, so a read past them is caught) say the same */
    size_t have = size < 4096 ? size : 4096, need;
    while ((need = vmc__pe_head_size(data, have, size)) > have) have = need;
    uint8_t *head = malloc(have ? have : 1);
    if (!head) abort();
    memcpy(head, data, have);
    vmc_pe_obj_t h;
    memset(&h, 0, sizeof h);
    h.name = "fuzz.dll";
    if (vmc__pe_check(&h, head, size) != r || (!r && have < h.pe.size_of_headers)) abort();
    free(head);
    if (r || o.pe.size_of_image > MAX_IMAGE) return 0;
    uint8_t *img = calloc(1, o.pe.size_of_image);
    if (!img) abort();
    vmc__pe_layout(&o, data, img);
    r = vmc__pe_read(&o, 0x7f0012340000ull);
    if (r > 0 || (r && !vmc_last_error()[0])) abort();
    if (r == 0) {
        vmc_pe_sym_t s;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) (void)vmc__pe_export(&o, names[i], &s);
        /* vmc_addr_info's question, at each section's start and end */
        for (uint32_t i = 0; i < o.pe.nsect; i++) {
            const char *name;
            uint32_t at;
            uint64_t rvas[2] = {o.pe.sect[i].va, (uint64_t)o.pe.sect[i].va + o.pe.sect[i].vsize - 1};
            for (int k = 0; k < 2; k++)
                if (vmc__pe_nearest(&o, rvas[k], &name, &at) && (at > rvas[k] || !name)) abort();
        }
        for (size_t i = 0; i < o.imp.nfn; i++)   /* every listed slot is inside the image */
            if (!vmc__pe_in_image(&o.pe, o.imp.fn[i].slot, 8)) abort();
        vmc__pe_free(&o);
    }
    free(img);
    return 0;
}
