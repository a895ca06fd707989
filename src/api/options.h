/* Options: defaults, the DR-style text form, and validation. */
#ifndef VMC_OPTIONS_H
#define VMC_OPTIONS_H
#include "vmcode.h"

#define VMC_DEFAULT_VMHEAP_SIZE  ((size_t)1 << 30)
#define VMC_DEFAULT_MAX_OFFSET   ((size_t)256 << 20)
#define VMC_DEFAULT_BRK_ROOM     ((size_t)128 << 20)
#define VMC_MAX_VMHEAP_SIZE      ((size_t)1 << 40)

/* Copies a caller's option set (version 1 or 2) into a full one. */
void vmc__options_load(vmc_options_t *dst, const vmc_options_t *src);
/* Checks a whole option set; -EINVAL with a message naming the field. */
int vmc__options_check(const vmc_options_t *o);
/* Writes the option set back as text that vmc_options_parse accepts. */
int vmc__options_format(const vmc_options_t *o, char *buf, size_t len);
#endif
