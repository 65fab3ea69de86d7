/* Force-included (-include) into every library source of a -DVKFT_FAULTS=ON build: routes the
 * C library's allocation functions through the fault counter (vkft/fault.h). The standard
 * headers are included first so their declarations are not rewritten. */
#ifndef VKFT_FAULT_ALLOC_H
#define VKFT_FAULT_ALLOC_H
#include <stdlib.h>
#include <string.h>

#include "vkft/fault.h"

#ifdef VKFT_FAULTS
#define malloc(n) vkft_fault_malloc((n), __FILE__ ":" VKFT_FAULT_STR(__LINE__))
#define calloc(c, n) vkft_fault_calloc((c), (n), __FILE__ ":" VKFT_FAULT_STR(__LINE__))
#define realloc(p, n) vkft_fault_realloc((p), (n), __FILE__ ":" VKFT_FAULT_STR(__LINE__))
#define strdup(s) vkft_fault_strdup((s), __FILE__ ":" VKFT_FAULT_STR(__LINE__))
#endif
#endif
