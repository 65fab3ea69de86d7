/* UTF-8 decoding and encoding (see vkft/utf8.h). */
#include "vkft/utf8.h"

size_t vkft_utf8_encode(uint32_t cp, char out[4]) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

size_t vkft_utf8_decode(const char *str, size_t len, uint32_t *cp) {
  const unsigned char *s = (const unsigned char *)str;
  if (len == 0) return 0;
  unsigned char c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  /* the lead byte gives the length and the smallest code point that needs it (shorter forms
   * of the same code point are overlong); C0, C1 and F5..FF never start a sequence */
  size_t n;
  uint32_t min, v;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2, min = 0x80, v = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF)
    n = 3, min = 0x800, v = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4)
    n = 4, min = 0x10000, v = c & 0x07;
  else
    return 0;
  if (n > len) return 0;
  for (size_t i = 1; i < n; i++) { /* (stops at a NUL: it is no continuation byte) */
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return n;
}

size_t vkft_utf8_decode_lenient(const char *s, size_t len, uint32_t *cp) {
  size_t n = vkft_utf8_decode(s, len, cp);
  if (n) return n;
  *cp = VKFT_UTF8_BAD;
  return 1;
}

uint32_t vkft_utf8_next(const unsigned char **s) {
  uint32_t cp;
  /* 4 bytes at most are read, and none past a NUL (see vkft_utf8_decode) */
  *s += vkft_utf8_decode_lenient((const char *)*s, 4, &cp);
  return cp;
}
