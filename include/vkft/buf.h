/* The one growable array and the one growable text buffer, shared by every module (the
 * tokenizer, the Jinja interpreter, datasets, GGUF and report writers, the CLI). */
#ifndef VKFT_BUF_H
#define VKFT_BUF_H

#include "vkft/error.h"
#include "vkft/fault.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Makes the array *p of *cap elements of elem bytes hold at least need elements, doubling (from
 * 16 elements) so that n appends cost O(n). VKFT_ERR (NOMEM) when out of memory or when the size
 * overflows; *p and *cap are unchanged then. */
int vkft_grow_at(void **p, size_t *cap, size_t need, size_t elem, const char *site);

/* Growable bytes, kept NUL-terminated (data is NULL until the first append). Appends return
 * VKFT_OK, or VKFT_ERR with the message set; a failure is also remembered in `failed`, so a
 * writer may append without checking each call and check once at the end. */
typedef struct vkft_strbuf {
  char *data;
  size_t len, cap;
  size_t limit; /* 0: none; else an append that would pass limit bytes fails (INPUT) */
  int failed;
} vkft_strbuf;

int vkft_strbuf_add_at(vkft_strbuf *b, const void *data, size_t n, const char *site);
int vkft_strbuf_puts_at(vkft_strbuf *b, const char *s, const char *site);
int vkft_strbuf_putc_at(vkft_strbuf *b, char c, const char *site);
int vkft_strbuf_printf_at(vkft_strbuf *b, const char *site, const char *fmt, ...) VKFT_PRINTF(3, 4);
/* The text, handed to the caller (who frees it; "" when nothing was appended; NULL when out of
 * memory); the buffer is empty again. */
char *vkft_strbuf_take(vkft_strbuf *b);
void vkft_strbuf_free(vkft_strbuf *b);

/* The calls: the _at forms take the caller's place in the source, where a -DVKFT_FAULTS=ON build
 * counts the allocation (tests/faults.sh fails each place on its own: a growth in the tokenizer
 * and one in the report are two failure points, not one in this file). */
#ifdef VKFT_FAULTS
#define VKFT_BUF_SITE __FILE__ ":" VKFT_FAULT_STR(__LINE__)
#else
#define VKFT_BUF_SITE NULL
#endif
#define vkft_grow(p, cap, need, elem) vkft_grow_at((p), (cap), (need), (elem), VKFT_BUF_SITE)
#define vkft_strbuf_add(b, data, n) vkft_strbuf_add_at((b), (data), (n), VKFT_BUF_SITE)
#define vkft_strbuf_puts(b, s) vkft_strbuf_puts_at((b), (s), VKFT_BUF_SITE)
#define vkft_strbuf_putc(b, c) vkft_strbuf_putc_at((b), (c), VKFT_BUF_SITE)
#define vkft_strbuf_printf(b, ...) vkft_strbuf_printf_at((b), VKFT_BUF_SITE, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
