/* What hostsym.c offers besides binding (lib/loader.h has that): its two
 * ways of answering, separately, so that tests and tools can compare them.
 */
#ifndef VMC_HOSTSYM_H
#define VMC_HOSTSYM_H

#include <stddef.h>

/* Objects in the global scope's first part as rebuilt (0: it could not be,
 * and the system loader answers everything). */
size_t vmc__host_scope_size(void);
/* The hash-table look-up alone, for a relocation's version (NULL: the
 * default, as dlsym): 1 with *addr (NULL: absent) when it decides, 0 when
 * the system loader would be asked. */
int vmc__host_scope_find(const char *name, const char *version, void **addr);
/* The system loader's answer to the same question (dlvsym, dlsym and the
 * interposer rule), uncached. */
void *vmc__host_sym_system(void *handle, const char *name, const char *version);

#endif
