/* The fault counters behind vkft/fault.h (only compiled with -DVKFT_FAULTS=ON). Thread-safe:
 * the tokenizer allocates from worker threads. Nothing here allocates, so the allocation
 * wrappers cannot recurse. */
#ifdef VKFT_FAULTS
#include "vkft/fault.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[VKFT_FAULT_KIND_COUNT] = {"alloc",  "write",    "fsync",
                                                              "rename", "devalloc", "submit"};

typedef struct fault_plan {
  long long at;   /* the call number that fails (1-based); 0: none */
  char site[256]; /* or: the first call at this site ("file:line") fails */
  int kill;       /* kill the process instead of failing */
  atomic_int fired;
} fault_plan;

static atomic_int initialized; /* 0 no, 1 in progress, 2 done */
static fault_plan plans[VKFT_FAULT_KIND_COUNT];
static atomic_llong counts[VKFT_FAULT_KIND_COUNT];
static const char *trace_path;

/* Allocation sites already traced: a fixed open-addressing table of site-string pointers (each
 * site is a string literal, so its address identifies it). */
#define SITE_SLOTS 16384
static const char *_Atomic seen[VKFT_FAULT_KIND_COUNT][SITE_SLOTS];

static void *cjson_malloc(size_t size) {
  return vkft_fault_malloc(size, "cJSON");
}

static void parse_plan(const char *spec) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", spec);
  for (char *item = strtok(buf, ","); item; item = strtok(NULL, ",")) {
    /* KIND:N[:kill] or KIND@FILE:LINE[:kill] */
    char *at = strchr(item, '@'), *colon = strchr(item, ':');
    char *sep = at && (!colon || at < colon) ? at : colon;
    if (!sep) continue;
    char mark = *sep;
    *sep = 0;
    for (int k = 0; k < VKFT_FAULT_KIND_COUNT; k++) {
      if (strcmp(item, kind_names[k])) continue;
      size_t len = strlen(sep + 1);
      plans[k].kill = len > 5 && !strcmp(sep + 1 + len - 5, ":kill");
      if (plans[k].kill) sep[1 + len - 5] = 0;
      if (mark == '@')
        snprintf(plans[k].site, sizeof plans[k].site, "%s", sep + 1);
      else
        plans[k].at = strtoll(sep + 1, NULL, 10);
    }
  }
}

static void init(void) {
  int expected = 0;
  if (atomic_compare_exchange_strong(&initialized, &expected, 1)) {
    const char *spec = getenv("VKFT_FAULT");
    if (spec) parse_plan(spec);
    trace_path = getenv("VKFT_FAULT_TRACE");
    /* cJSON's own allocations count as host allocations too */
    cJSON_Hooks hooks = {cjson_malloc, free};
    cJSON_InitHooks(&hooks);
    atomic_store(&initialized, 2);
  }
  while (atomic_load(&initialized) != 2) {
  }
}

/* Allocations: the first call of each site (there are millions of calls). The other kinds are
 * few: every call, since one site (the platform's write) serves every file. */
static void trace(vkft_fault_kind kind, long long n, const char *site, const char *what) {
  size_t h = ((size_t)site >> 3) % SITE_SLOTS;
  for (size_t probe = 0; kind == VKFT_FAULT_ALLOC && probe < SITE_SLOTS;
       probe++, h = (h + 1) % SITE_SLOTS) {
    const char *expected = NULL;
    if (atomic_compare_exchange_strong(&seen[kind][h], &expected, site)) break; /* new site */
    if (expected == site) return;                                               /* seen */
  }
  FILE *f = fopen(trace_path, "a"); /* FILE may allocate: only on the first call of a site */
  if (f) {
    fprintf(f, "%s %lld %s%s%s\n", kind_names[kind], n, site, what ? " " : "", what ? what : "");
    fclose(f);
  }
}

int vkft_fault_hit(vkft_fault_kind kind, const char *site) {
  return vkft_fault_hit_on(kind, site, NULL);
}

int vkft_fault_hit_on(vkft_fault_kind kind, const char *site, const char *what) {
  if (atomic_load(&initialized) != 2) init();
  long long n = atomic_fetch_add(&counts[kind], 1) + 1;
  if (trace_path) trace(kind, n, site, what);
  fault_plan *p = &plans[kind];
  if (p->site[0]) {
    /* the first call at the site only, whichever thread makes it */
    if (strcmp(p->site, site) || atomic_exchange(&p->fired, 1)) return 0;
  } else if (p->at != n) {
    return 0;
  }
  if (p->kill) {
    fflush(NULL);
#ifdef SIGKILL
    raise(SIGKILL);
#endif
    _Exit(137);
  }
  return 1;
}

/* The real functions: this file is not compiled with fault_alloc.h. */
void *vkft_fault_malloc(size_t size, const char *site) {
  return vkft_fault_hit(VKFT_FAULT_ALLOC, site) ? NULL : malloc(size);
}

void *vkft_fault_calloc(size_t count, size_t size, const char *site) {
  return vkft_fault_hit(VKFT_FAULT_ALLOC, site) ? NULL : calloc(count, size);
}

void *vkft_fault_realloc(void *p, size_t size, const char *site) {
  return vkft_fault_hit(VKFT_FAULT_ALLOC, site) ? NULL : realloc(p, size);
}

char *vkft_fault_strdup(const char *s, const char *site) {
  if (vkft_fault_hit(VKFT_FAULT_ALLOC, site)) return NULL;
  size_t n = strlen(s) + 1;
  char *copy = malloc(n);
  if (copy) memcpy(copy, s, n);
  return copy;
}
#else
/* ISO C forbids an empty translation unit. */
typedef int vkft_fault_disabled;
#endif
