/* Growable arrays and text (see vkft/buf.h). */
#include "vkft/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vkft_grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return VKFT_OK;
  size_t new_cap = *cap ? *cap : 16;
  while (new_cap < need) {
    if (new_cap > SIZE_MAX / 2) return vkft_error_nomem();
    new_cap *= 2;
  }
  if (new_cap > SIZE_MAX / elem) return vkft_error_nomem();
  void *grown = realloc(*p, new_cap * elem);
  if (!grown) return vkft_error_nomem();
  *p = grown;
  *cap = new_cap;
  return VKFT_OK;
}

/* Room for n more bytes and the NUL. */
static int reserve(vkft_strbuf *b, size_t n) {
  if (b->failed) return VKFT_ERR;
  if (b->limit && (n > b->limit || b->len > b->limit - n)) {
    b->failed = 1;
    return vkft_error("the text exceeds its limit of %zu bytes", b->limit);
  }
  if (n >= SIZE_MAX - b->len || vkft_grow((void **)&b->data, &b->cap, b->len + n + 1, 1)) {
    b->failed = 1;
    return vkft_error_nomem();
  }
  return VKFT_OK;
}

int vkft_strbuf_add(vkft_strbuf *b, const void *data, size_t n) {
  if (reserve(b, n) != VKFT_OK) return VKFT_ERR;
  if (n) memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = 0;
  return VKFT_OK;
}

int vkft_strbuf_puts(vkft_strbuf *b, const char *s) {
  return vkft_strbuf_add(b, s, strlen(s));
}

int vkft_strbuf_putc(vkft_strbuf *b, char c) {
  return vkft_strbuf_add(b, &c, 1);
}

int vkft_strbuf_printf(vkft_strbuf *b, const char *fmt, ...) {
  char small[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return vkft_error("a text format failed: %s", fmt);
  if ((size_t)n < sizeof small) return vkft_strbuf_add(b, small, (size_t)n);
  if (reserve(b, (size_t)n) != VKFT_OK) return VKFT_ERR;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return VKFT_OK;
}

char *vkft_strbuf_take(vkft_strbuf *b) {
  char *s = b->failed ? NULL : b->data ? b->data : calloc(1, 1);
  if (b->failed) free(b->data);
  *b = (vkft_strbuf){.limit = b->limit};
  return s;
}

void vkft_strbuf_free(vkft_strbuf *b) {
  free(b->data);
  *b = (vkft_strbuf){.limit = b->limit};
}
