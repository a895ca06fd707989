/* Options: defaults, parsing of "-vm_size 2G -no_near_app ..." text, checks.
 *
 * The text form follows DynamoRIO's option strings: `-name value` for sizes
 * and addresses, `-name` / `-no_name` for booleans.  Parsing works on a copy
 * and writes the caller's struct only when the whole text was good, so a bad
 * token never leaves half-applied options behind.
 */
#include "api/options.h"
#include "arch/arch.h"
#include "base/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

void vmc_options_init(vmc_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->version = VMC_OPTIONS_VERSION;
    o->vm_size = VMC_MAX_VM_SIZE;
    o->vmheap_size = VMC_DEFAULT_VMHEAP_SIZE;
    o->vm_max_offset = VMC_DEFAULT_MAX_OFFSET;
    o->near_app = 1;
    o->allow_smaller = 1;
    o->brk_room = VMC_DEFAULT_BRK_ROOM;
}

/* A caller's struct may be of version 1 (before brk_room): only that much of
 * it is read or written; the fields it lacks keep their defaults. */
#define OPTIONS_V1_SIZE offsetof(vmc_options_t, brk_room)

static size_t caller_size(const vmc_options_t *o)
{
    return o->version == VMC_OPTIONS_VERSION ? sizeof *o : OPTIONS_V1_SIZE;  /* unknown: read least */
}

void vmc__options_load(vmc_options_t *dst, const vmc_options_t *src)
{
    vmc_options_init(dst);
    size_t n = caller_size(src);
    memcpy(dst, src, n);
    if (src->version == 1) dst->version = VMC_OPTIONS_VERSION;
}

enum opt_type { OPT_SIZE, OPT_ADDR, OPT_BOOL };

static const struct opt_desc {
    const char *name;
    enum opt_type type;
    size_t offset;
} opt_table[] = {
    {"vm_size", OPT_SIZE, offsetof(vmc_options_t, vm_size)},
    {"vmheap_size", OPT_SIZE, offsetof(vmc_options_t, vmheap_size)},
    {"vm_base", OPT_ADDR, offsetof(vmc_options_t, vm_base)},
    {"vm_max_offset", OPT_SIZE, offsetof(vmc_options_t, vm_max_offset)},
    {"reach_lo", OPT_ADDR, offsetof(vmc_options_t, reach_lo)},
    {"reach_hi", OPT_ADDR, offsetof(vmc_options_t, reach_hi)},
    {"near_app", OPT_BOOL, offsetof(vmc_options_t, near_app)},
    {"allow_smaller", OPT_BOOL, offsetof(vmc_options_t, allow_smaller)},
    {"w_xor_x", OPT_BOOL, offsetof(vmc_options_t, w_xor_x)},
    {"perf_map", OPT_BOOL, offsetof(vmc_options_t, perf_map)},
    {"jitdump", OPT_BOOL, offsetof(vmc_options_t, jitdump)},
    {"brk_room", OPT_SIZE, offsetof(vmc_options_t, brk_room)},
};
#define OPT_COUNT (sizeof opt_table / sizeof opt_table[0])

/* Parses "123", "0x7e0000000000", "64K", "2G" (suffixes K, M, G, T, either
 * case; sizes only).  Returns 0 or -EINVAL. */
static int parse_number(const char *s, size_t n, int allow_suffix, uint64_t *out)
{
    if (n == 0) return -EINVAL;
    uint64_t v = 0, base = 10;
    size_t i = 0;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    size_t digits = 0;
    for (; i < n; i++, digits++) {
        int c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (base == 16 && isxdigit(c)) d = tolower(c) - 'a' + 10;
        else break;
        if (v > (UINT64_MAX - (uint64_t)d) / base) return -EINVAL;
        v = v * base + (uint64_t)d;
    }
    if (digits == 0) return -EINVAL;
    if (i < n) {
        if (!allow_suffix || i + 1 != n) return -EINVAL;
        unsigned shift;
        switch (toupper((unsigned char)s[i])) {
        case 'K': shift = 10; break;
        case 'M': shift = 20; break;
        case 'G': shift = 30; break;
        case 'T': shift = 40; break;
        default: return -EINVAL;
        }
        if (v > (UINT64_MAX >> shift)) return -EINVAL;
        v <<= shift;
    }
    *out = v;
    return 0;
}

static int token_is(const char *tok, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(tok, name, n) == 0;
}

int vmc_options_parse(vmc_options_t *o, const char *text)
{
    if (!o) return vmc__fail(-EINVAL, "vmc_options_parse: options pointer is NULL");
    if (!text) return 0;
    if (o->version != VMC_OPTIONS_VERSION && o->version != 1)
        return vmc__options_check(o);  /* the message names the version */
    vmc_options_t tmp;
    vmc__options_load(&tmp, o);
    const char *p = text;
    for (;;) {
        while (isspace((unsigned char)*p)) p++;
        if (!*p) break;
        const char *tok = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        size_t n = (size_t)(p - tok);
        if (tok[0] != '-' || n < 2)
            return vmc__fail(-EINVAL, "option text: expected an option starting with '-', got '%.*s'",
                             (int)n, tok);
        const char *name = tok + 1;
        size_t nn = n - 1;
        int negated = 0;
        if (nn > 3 && memcmp(name, "no_", 3) == 0) {
            negated = 1;
            name += 3;
            nn -= 3;
        }
        const struct opt_desc *d = NULL;
        for (size_t i = 0; i < OPT_COUNT; i++)
            if (token_is(name, nn, opt_table[i].name)) d = &opt_table[i];
        if (!d || (negated && d->type != OPT_BOOL))
            return vmc__fail(-EINVAL, "option text: unknown option '%.*s'", (int)n, tok);
        char *field = (char *)&tmp + d->offset;
        if (d->type == OPT_BOOL) {
            *(int *)field = !negated;
            /* "-w_xor_x 1": the next word would otherwise be refused as not
             * an option, which does not say what is wrong */
            const char *q = p;
            while (isspace((unsigned char)*q)) q++;
            size_t qn = strcspn(q, " \t\n\r\f\v");
            if (qn && q[0] != '-')
                return vmc__fail(-EINVAL, "option text: '%.*s' is a boolean and takes no value (got '%.*s'): "
                                 "write -%.*s to turn it on, -no_%.*s to turn it off", (int)n, tok, (int)qn, q,
                                 (int)nn, name, (int)nn, name);
            continue;
        }
        while (isspace((unsigned char)*p)) p++;
        const char *val = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        size_t vn = (size_t)(p - val);
        if (vn == 0)
            return vmc__fail(-EINVAL, "option text: '%.*s' needs a value", (int)n, tok);
        uint64_t v;
        if (parse_number(val, vn, d->type == OPT_SIZE, &v) || v > UINTPTR_MAX)
            return vmc__fail(-EINVAL, "option text: bad value '%.*s' for '%.*s' (expected %s)",
                             (int)vn, val, (int)n, tok,
                             d->type == OPT_SIZE ? "a size such as 2G, 512M, 65536"
                                                 : "an address such as 0x7e0000000000");
        if (d->type == OPT_SIZE) *(size_t *)field = (size_t)v;
        else *(uintptr_t *)field = (uintptr_t)v;
    }
    int r = vmc__options_check(&tmp);
    if (r) return r;
    if (o->version == 1 && tmp.brk_room != VMC_DEFAULT_BRK_ROOM)
        return vmc__fail(-EINVAL, "option text: -brk_room needs a version %d vmc_options_t (this one is "
                         "version 1: rebuild with this vmcode.h)", VMC_OPTIONS_VERSION);
    uint32_t version = o->version;
    memcpy(o, &tmp, caller_size(o));
    o->version = version;
    return 0;
}

int vmc__options_check(const vmc_options_t *o)
{
    const size_t page = 4096;
    if (o->version != VMC_OPTIONS_VERSION && o->version != 1)
        return vmc__fail(-EINVAL, "options: version %u is not 1 or %u (call vmc_options_init first)",
                         o->version, VMC_OPTIONS_VERSION);
    if (o->vm_size == 0 || o->vm_size > VMC_MAX_VM_SIZE)
        return vmc__fail(-EINVAL,
                         "options: vm_size %#zx is outside 4K..2G (any two addresses of the code "
                         "region must reach each other by rel32)", o->vm_size);
    if (o->vm_size % page)
        return vmc__fail(-EINVAL, "options: vm_size %#zx is not a multiple of 4K", o->vm_size);
    if (o->vmheap_size > VMC_MAX_VMHEAP_SIZE)
        return vmc__fail(-EINVAL, "options: vmheap_size %#zx is over 1T", o->vmheap_size);
    if (o->vmheap_size % page)
        return vmc__fail(-EINVAL, "options: vmheap_size %#zx is not a multiple of 4K", o->vmheap_size);
    if (o->vm_base % page)
        return vmc__fail(-EINVAL, "options: vm_base %#" PRIxPTR " is not page aligned",
                         (uintptr_t)o->vm_base);
    if (o->brk_room > ((size_t)1 << 40))
        return vmc__fail(-EINVAL, "options: brk_room %#zx is larger than 1T", o->brk_room);
    if (o->brk_room % page)
        return vmc__fail(-EINVAL, "options: brk_room %#zx is not a multiple of 4K", o->brk_room);
    if (o->vm_max_offset > ((size_t)1 << 40))
        return vmc__fail(-EINVAL, "options: vm_max_offset %#zx is larger than 1T", o->vm_max_offset);
    if (o->vm_base && (o->vm_base > VMC_ARCH_USER_TOP ||
                       VMC_ARCH_USER_TOP - o->vm_base < o->vm_size + o->vm_max_offset))
        return vmc__fail(-EINVAL,
                         "options: vm_base %#" PRIxPTR " + vm_max_offset + vm_size is past the user address space",
                         (uintptr_t)o->vm_base);
    if ((o->reach_lo || o->reach_hi) && o->reach_hi <= o->reach_lo)
        return vmc__fail(-EINVAL, "options: reach_hi %#" PRIxPTR " is not above reach_lo %#" PRIxPTR,
                         (uintptr_t)o->reach_hi, (uintptr_t)o->reach_lo);
    if (o->reach_hi - o->reach_lo >= ((uintptr_t)1 << 32))
        return vmc__fail(-EINVAL, "options: reach range %#" PRIxPTR "..%#" PRIxPTR " is 4G or wider: nothing reaches all of it",
                         (uintptr_t)o->reach_lo, (uintptr_t)o->reach_hi);
    return 0;
}

int vmc__options_format(const vmc_options_t *o, char *buf, size_t len)
{
    int n = snprintf(buf, len,
                     "-vm_size %#zx -vmheap_size %#zx -vm_base %#" PRIxPTR " -vm_max_offset %#zx "
                     "-reach_lo %#" PRIxPTR " -reach_hi %#" PRIxPTR " -%snear_app -%sallow_smaller -%sw_xor_x -%sperf_map -%sjitdump "
                     "-brk_room %#zx",
                     o->vm_size, o->vmheap_size, (uintptr_t)o->vm_base, o->vm_max_offset,
                     (uintptr_t)o->reach_lo, (uintptr_t)o->reach_hi,
                     o->near_app ? "" : "no_", o->allow_smaller ? "" : "no_",
                     o->w_xor_x ? "" : "no_", o->perf_map ? "" : "no_",
                     o->jitdump ? "" : "no_", o->brk_room);
    return n < 0 || (size_t)n >= len ? -EOVERFLOW : 0;
}
