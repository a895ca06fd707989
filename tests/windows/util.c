/* The helpers of test.h that the Windows tests use (tests/util.c holds the
 * Linux ones, which read /proc). */
#include "test.h"

int vt_sanitized(void) { return 0; }   /* MinGW has no sanitizers */

const char *vt_build_dir(void)
{
    const char *b = getenv("VMC_TEST_BUILD");
    return b ? b : "build/windows";
}
