/* Fault injection for tests, in the manner of SQLite's: a build with -DVKFT_FAULTS=ON counts
 * every host allocation, file write, fsync, rename, device allocation and queue submission,
 * and VKFT_FAULT=KIND:N[:kill][,...] makes the Nth call of that kind fail (as if the OS or
 * driver had refused) or, with ":kill", kills the process there (as `kill -9` would);
 * KIND@FILE:LINE fails the first call at that source site instead (the data loader allocates
 * from several threads, so the Nth allocation is not always the same one).
 * KIND is alloc, write, fsync, rename, devalloc or submit. VKFT_FAULT_TRACE=FILE appends one
 * line "KIND N SITE [FILE]" for the first allocation at each source site and for every call of
 * the other kinds, so a test can sweep every place a run can fail. In a normal build
 * VKFT_FAULT_HIT() is the constant 0 and costs nothing. */
#ifndef VKFT_FAULT_H
#define VKFT_FAULT_H

#include <stddef.h>

typedef enum vkft_fault_kind {
  VKFT_FAULT_ALLOC,
  VKFT_FAULT_WRITE,
  VKFT_FAULT_FSYNC,
  VKFT_FAULT_RENAME,
  VKFT_FAULT_DEVALLOC,
  VKFT_FAULT_SUBMIT,
  VKFT_FAULT_KIND_COUNT
} vkft_fault_kind;

#ifdef VKFT_FAULTS
#define VKFT_FAULT_STR2(x) #x
#define VKFT_FAULT_STR(x) VKFT_FAULT_STR2(x)
/* 1 if this call must fail; counts the call. site: "file:line" of the caller. */
int vkft_fault_hit(vkft_fault_kind kind, const char *site);
#define VKFT_FAULT_HIT(kind) vkft_fault_hit(kind, __FILE__ ":" VKFT_FAULT_STR(__LINE__))
/* The same, naming what the call works on (a file) in the trace. */
int vkft_fault_hit_on(vkft_fault_kind kind, const char *site, const char *what);
#define VKFT_FAULT_HIT_ON(kind, what)                                                              \
  vkft_fault_hit_on(kind, __FILE__ ":" VKFT_FAULT_STR(__LINE__), what)
/* The allocation wrappers src/core/fault_alloc.h routes malloc & co. through. */
void *vkft_fault_malloc(size_t size, const char *site);
void *vkft_fault_calloc(size_t count, size_t size, const char *site);
void *vkft_fault_realloc(void *p, size_t size, const char *site);
char *vkft_fault_strdup(const char *s, const char *site);
#else
#define VKFT_FAULT_HIT(kind) 0
#define VKFT_FAULT_HIT_ON(kind, what) ((void)(what), 0)
#endif

#endif
