/* Python str operations that templates call as methods or filters: case mapping, strip,
 * replace, split, find. Strings are UTF-8; whitespace is Python's str.isspace() set, so
 * `trim` removes e.g. U+00A0 exactly as transformers does. */
#include "internal.h"

#include "vkft/error.h"

#include <string.h>

int jinja_is_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Simple case mapping for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic; other scripts
 * are left unchanged (a documented gap: Python maps all of Unicode). */
static uint32_t to_upper(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c < 0x80) return c;
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
  if (c == 0xFF) return 0x178;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 &&
      c != 0x17F) {
    int odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (odd_upper) return (c % 2 == 0) ? c - 1 : c;
    return (c % 2 == 1) ? c - 1 : c;
  }
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}

static uint32_t to_lower(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0x80) return c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x178) return 0xFF;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 &&
      c != 0x17F) {
    int odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (odd_upper) return (c % 2 == 1) ? c + 1 : c;
    return (c % 2 == 0) ? c + 1 : c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

static int is_cased(uint32_t c) {
  return to_upper(c) != c || to_lower(c) != c || c == 0xDF;
}

static int put_cp(vkft_strbuf *buf, uint32_t cp) {
  char enc[4];
  return vkft_strbuf_add(buf, enc, vkft_utf8_encode(cp, enc));
}

/* Jinja's title filter splits words at runs of "-", whitespace, "(", "{", "[", "<". */
static int title_filter_boundary(uint32_t c) {
  return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || jinja_is_space(c);
}

int jinja_str_case(jinja_state *st, jv s, int mode, jv *out) {
  vkft_strbuf buf = {.limit = st->max_output};
  size_t used;
  int word_start = 1, prev_cased = 0, first = 1;
  for (size_t i = 0; i < s.u.s.n; i += used) {
    uint32_t c = utf8_decode(s.u.s.p + i, s.u.s.n - i, &used), m = c;
    switch (mode) {
    case JCASE_UPPER:
      m = to_upper(c);
      break;
    case JCASE_LOWER:
      m = to_lower(c);
      break;
    case JCASE_CAPITALIZE:
      m = first ? to_upper(c) : to_lower(c);
      break;
    case JCASE_TITLE_FILTER:
      if (title_filter_boundary(c))
        word_start = 1;
      else {
        m = word_start ? to_upper(c) : to_lower(c);
        word_start = 0;
      }
      break;
    case JCASE_TITLE_METHOD: /* str.title(): upper after an uncased character */
      m = prev_cased ? to_lower(c) : to_upper(c);
      prev_cased = is_cased(c);
      break;
    }
    first = 0;
    if (put_cp(&buf, m)) {
      vkft_strbuf_free(&buf);
      return VKFT_ERR;
    }
  }
  return jv_str_from_buf(st, &buf, out);
}

static int in_chars(uint32_t c, const jv *chars) {
  if (!chars) return jinja_is_space(c);
  size_t used;
  for (size_t i = 0; i < chars->u.s.n; i += used)
    if (utf8_decode(chars->u.s.p + i, chars->u.s.n - i, &used) == c) return 1;
  return 0;
}

int jinja_str_strip(jinja_state *st, jv s, const jv *chars, int left, int right, jv *out) {
  (void)st;
  size_t begin = 0, end = s.u.s.n, used;
  if (left)
    while (begin < end && in_chars(utf8_decode(s.u.s.p + begin, end - begin, &used), chars))
      begin += used;
  if (right)
    while (end > begin) {
      size_t start = end - 1;
      while (start > begin && ((unsigned char)s.u.s.p[start] & 0xC0) == 0x80) start--;
      if (!in_chars(utf8_decode(s.u.s.p + start, end - start, &used), chars)) break;
      end = start;
    }
  *out = jv_str_ref(s.u.s.p + begin, end - begin);
  return VKFT_OK;
}

int jinja_str_replace(jinja_state *st, int line, jv s, jv old, jv replacement, int64_t count,
                      jv *out) {
  vkft_strbuf buf = {.limit = st->max_output};
  int rc = VKFT_OK;
  size_t i = 0, used;
  int64_t done = 0;
  if (old.u.s.n == 0) { /* Python inserts the replacement around every character */
    while (rc == VKFT_OK && (count < 0 || done < count) && i <= s.u.s.n) {
      rc = vkft_strbuf_add(&buf, replacement.u.s.p, replacement.u.s.n);
      done++;
      if (i == s.u.s.n) {
        i++;
        break;
      }
      utf8_decode(s.u.s.p + i, s.u.s.n - i, &used);
      if (rc == VKFT_OK) rc = vkft_strbuf_add(&buf, s.u.s.p + i, used);
      i += used;
    }
    if (rc == VKFT_OK && i < s.u.s.n) rc = vkft_strbuf_add(&buf, s.u.s.p + i, s.u.s.n - i);
  } else {
    while (rc == VKFT_OK && i < s.u.s.n) {
      if ((count < 0 || done < count) && i + old.u.s.n <= s.u.s.n &&
          memcmp(s.u.s.p + i, old.u.s.p, old.u.s.n) == 0) {
        rc = vkft_strbuf_add(&buf, replacement.u.s.p, replacement.u.s.n);
        i += old.u.s.n;
        done++;
      } else
        rc = vkft_strbuf_putc(&buf, s.u.s.p[i++]);
    }
  }
  if (rc) {
    vkft_strbuf_free(&buf);
    return jinja_fail(st, line, "%s", vkft_error_message());
  }
  return jv_str_from_buf(st, &buf, out);
}

static int push_piece(jinja_state *st, jv list, const char *p, size_t n, int front) {
  if (jv_list_push(st, list.u.list, jv_str_ref(p, n))) return VKFT_ERR;
  if (front) { /* rsplit collects from the right: keep the list in order */
    jv_list *l = list.u.list;
    memmove(l->items + 1, l->items, (l->len - 1) * sizeof(jv));
    l->items[0] = jv_str_ref(p, n);
  }
  return VKFT_OK;
}

/* The byte length of the whitespace character ending at end (0 if none). */
static size_t space_before(const char *p, size_t begin, size_t end) {
  size_t start = end - 1, used;
  while (start > begin && ((unsigned char)p[start] & 0xC0) == 0x80) start--;
  return jinja_is_space(utf8_decode(p + start, end - start, &used)) ? end - start : 0;
}

int jinja_str_split(jinja_state *st, int line, jv s, const jv *sep, int64_t maxsplit,
                    int from_right, jv *out) {
  if (jv_new_list(st, 0, out)) return VKFT_ERR;
  const char *p = s.u.s.p;
  size_t n = s.u.s.n, used;
  int64_t splits = 0;
  if (sep) {
    if (sep->u.s.n == 0) return jinja_fail(st, line, "split: empty separator");
    size_t k = sep->u.s.n;
    if (!from_right) {
      size_t start = 0, i = 0;
      while (i + k <= n && (maxsplit < 0 || splits < maxsplit)) {
        if (memcmp(p + i, sep->u.s.p, k) == 0) {
          if (push_piece(st, *out, p + start, i - start, 0)) return VKFT_ERR;
          i += k;
          start = i;
          splits++;
        } else
          i++;
      }
      return push_piece(st, *out, p + start, n - start, 0);
    }
    size_t end = n, i = n;
    while (i >= k && (maxsplit < 0 || splits < maxsplit)) {
      if (memcmp(p + i - k, sep->u.s.p, k) == 0) {
        if (push_piece(st, *out, p + i, end - i, 1)) return VKFT_ERR;
        i -= k;
        end = i;
        splits++;
      } else
        i--;
    }
    return push_piece(st, *out, p, end, 1);
  }
  /* whitespace: runs of spaces separate, empty pieces are dropped */
  if (!from_right) {
    size_t i = 0;
    for (;;) {
      while (i < n && jinja_is_space(utf8_decode(p + i, n - i, &used))) i += used;
      if (i >= n) return VKFT_OK;
      if (maxsplit >= 0 && splits >= maxsplit) return push_piece(st, *out, p + i, n - i, 0);
      size_t start = i;
      while (i < n && !jinja_is_space(utf8_decode(p + i, n - i, &used))) i += used;
      if (push_piece(st, *out, p + start, i - start, 0)) return VKFT_ERR;
      splits++;
    }
  }
  size_t i = n, w;
  for (;;) {
    while (i > 0 && (w = space_before(p, 0, i)) > 0) i -= w;
    if (i == 0) return VKFT_OK;
    if (maxsplit >= 0 && splits >= maxsplit) return push_piece(st, *out, p, i, 1);
    size_t end = i;
    while (i > 0 && space_before(p, 0, i) == 0) {
      i--;
      while (i > 0 && ((unsigned char)p[i] & 0xC0) == 0x80) i--;
    }
    if (push_piece(st, *out, p + i, end - i, 1)) return VKFT_ERR;
    splits++;
  }
}

int64_t jinja_str_find(jv s, jv sub, int from_right) {
  if (sub.u.s.n > s.u.s.n) return -1;
  size_t last = s.u.s.n - sub.u.s.n;
  for (size_t k = 0; k <= last; k++) {
    size_t i = from_right ? last - k : k;
    if (memcmp(s.u.s.p + i, sub.u.s.p, sub.u.s.n) == 0) return (int64_t)utf8_length(s.u.s.p, i);
  }
  return -1;
}
