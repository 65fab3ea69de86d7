/* The one growable array and the one growable text buffer, shared by every module (the
 * tokenizer, the Jinja interpreter, datasets, GGUF and report writers, the CLI). */
#ifndef VKFT_BUF_H
#define VKFT_BUF_H

#include "vkft/error.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Makes the array *p of *cap elements of elem bytes hold at least need elements, doubling (from
 * 16 elements) so that n appends cost O(n). VKFT_ERR (NOMEM) when out of memory or when the size
 * overflows; *p and *cap are unchanged then. */
int vkft_grow(void **p, size_t *cap, size_t need, size_t elem);

/* Growable bytes, kept NUL-terminated (data is NULL until the first append). Appends return
 * VKFT_OK, or VKFT_ERR with the message set; a failure is also remembered in `failed`, so a
 * writer may append without checking each call and check once at the end. */
typedef struct vkft_strbuf {
  char *data;
  size_t len, cap;
  size_t limit; /* 0: none; else an append that would pass limit bytes fails (INPUT) */
  int failed;
} vkft_strbuf;

int vkft_strbuf_add(vkft_strbuf *b, const void *data, size_t n);
int vkft_strbuf_puts(vkft_strbuf *b, const char *s);
int vkft_strbuf_putc(vkft_strbuf *b, char c);
int vkft_strbuf_printf(vkft_strbuf *b, const char *fmt, ...) VKFT_PRINTF(2, 3);
/* The text, handed to the caller (who frees it; "" when nothing was appended; NULL when out of
 * memory); the buffer is empty again. */
char *vkft_strbuf_take(vkft_strbuf *b);
void vkft_strbuf_free(vkft_strbuf *b);

#ifdef __cplusplus
}
#endif
#endif
