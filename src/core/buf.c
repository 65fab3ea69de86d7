/* Growable arrays and text (see vkft/buf.h). */
#include "vkft/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* realloc, counted at the caller's site in a fault-injection build */
static void *grow_realloc(void *p, size_t size, const char *site) {
#ifdef VKFT_FAULTS
  if (site) return vkft_fault_realloc(p, size, site);
#else
  (void)site;
#endif
  return realloc(p, size);
}

int vkft_grow_at(void **p, size_t *cap, size_t need, size_t elem, const char *site) {
  if (need <= *cap) return VKFT_OK;
  size_t new_cap = *cap ? *cap : 16;
  while (new_cap < need) {
    if (new_cap > SIZE_MAX / 2) return vkft_error_nomem();
    new_cap *= 2;
  }
  if (new_cap > SIZE_MAX / elem) return vkft_error_nomem();
  void *grown = grow_realloc(*p, new_cap * elem, site);
  if (!grown) return vkft_error_nomem();
  *p = grown;
  *cap = new_cap;
  return VKFT_OK;
}

/* Room for n more bytes and the NUL. */
static int reserve(vkft_strbuf *b, size_t n, const char *site) {
  if (b->failed) return VKFT_ERR;
  if (b->limit && (n > b->limit || b->len > b->limit - n)) {
    b->failed = 1;
    return vkft_error("the text exceeds its limit of %zu bytes", b->limit);
  }
  if (n >= SIZE_MAX - b->len || vkft_grow_at((void **)&b->data, &b->cap, b->len + n + 1, 1, site)) {
    b->failed = 1;
    return vkft_error_nomem();
  }
  return VKFT_OK;
}

int vkft_strbuf_add_at(vkft_strbuf *b, const void *data, size_t n, const char *site) {
  if (reserve(b, n, site) != VKFT_OK) return VKFT_ERR;
  if (n) memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = 0;
  return VKFT_OK;
}

int vkft_strbuf_puts_at(vkft_strbuf *b, const char *s, const char *site) {
  return vkft_strbuf_add_at(b, s, strlen(s), site);
}

int vkft_strbuf_putc_at(vkft_strbuf *b, char c, const char *site) {
  return vkft_strbuf_add_at(b, &c, 1, site);
}

int vkft_strbuf_printf_at(vkft_strbuf *b, const char *site, const char *fmt, ...) {
  char small[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return vkft_error("a text format failed: %s", fmt);
  if ((size_t)n < sizeof small) return vkft_strbuf_add_at(b, small, (size_t)n, site);
  if (reserve(b, (size_t)n, site) != VKFT_OK) return VKFT_ERR;
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
