/* The system loader's cache of library names (/etc/ld.so.cache), looked up
 * as glibc's ld.so does for a dependency (search.c, step 4). */
#ifndef VMC_LDCACHE_H
#define VMC_LDCACHE_H

#include <stddef.h>

/* The file glibc's cache names for `name` (a soname, no '/'): 1 and the
 * path, 0 when the cache has none (or there is no usable cache: missing,
 * unreadable, not the "glibc-ld.so.cache1.1" format, corrupt), or a
 * negative errno with the error set (an OS call that failed otherwise, out
 * of memory, a path longer than len).  The file is read once and kept
 * until its size, inode or modification time changes, which is checked at
 * the first look-up after vmc__ldcache_recheck. */
int vmc__ldcache_find(const char *name, char *path, size_t len);
/* A load begins: check the file again at its first look-up. */
void vmc__ldcache_recheck(void);

/* Tests: read `file` instead of /etc/ld.so.cache (NULL: that one again);
 * what was read is dropped.  How many times a cache file was read. */
void vmc__ldcache_use(const char *file);
unsigned long vmc__ldcache_reads(void);

#endif
