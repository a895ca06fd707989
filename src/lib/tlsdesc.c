/* TLS descriptors (tlsdesc.c): the resolvers a private library's
 * descriptors point at.  Their code is the instruction set's
 * (arch/x86_64_tls.c): what this file gives lib/ is their addresses, and
 * the save area sized once before the first module. */
#include "lib/tls.h"
#include "arch/tls.h"

#include <stdint.h>

void vmc__tlsdesc_init(void) { vmc__arch_tlsdesc_init(); }

uintptr_t vmc__tlsdesc_resolver(void) { return (uintptr_t)vmc__arch_tlsdesc_dyn; }
uintptr_t vmc__tlsdesc_static_resolver(void) { return (uintptr_t)vmc__arch_tlsdesc_static; }
