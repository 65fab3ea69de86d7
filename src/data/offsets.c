/* Byte offsets of tokens in the text they were encoded from, which the loss mask needs ("a
 * token is trained when its first byte lies inside an assistant span"). The tokenizer API has
 * no offsets, so each token's surface bytes are recovered from its vocabulary string — byte-level
 * BPE ("Ġworld" -> " world"), SentencePiece ("▁Hello" -> " Hello", "<0x0A>" -> "\n") or the
 * literal text of an added token — and aligned against the text from left to right. Where a
 * normalizer changed the bytes (NFC, a prepended "▁") the alignment tolerates the difference
 * and resynchronises on the next added token, whose text appears verbatim. */
#include "internal.h"

#include "vkft/utf8.h"

#include <stdint.h>
#include <string.h>

/* GPT-2's bytes_to_unicode, inverted: the byte a code point of a byte-level token stands for,
 * or -1. Printable Latin-1 maps to itself; the 68 other bytes map to U+0100.. in order. */
static int bytelevel_byte(uint32_t cp) {
  if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
    return (int)cp;
  if (cp >= 256 && cp < 256 + 68) {
    uint32_t n = cp - 256;
    if (n < 33) return (int)n;
    if (n < 67) return (int)(127 + n - 33);
    return 173;
  }
  return -1;
}

enum { SURFACE_MAX = 1024 };

/* Byte-level surface, or SIZE_MAX if the string has a character outside the alphabet. */
static size_t bytelevel_surface(const char *str, unsigned char *out) {
  const unsigned char *s = (const unsigned char *)str;
  size_t n = 0;
  while (*s) {
    int b = bytelevel_byte(vkft_utf8_next(&s));
    if (b < 0 || n == SURFACE_MAX) return SIZE_MAX;
    out[n++] = (unsigned char)b;
  }
  return n;
}

static int hexval(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                : -1;
}

/* SentencePiece surface: "<0xNN>" is one byte, "▁" (U+2581) a space. */
static size_t sp_surface(const char *s, unsigned char *out) {
  size_t len = strlen(s);
  if (len == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' && hexval(s[3]) >= 0 &&
      hexval(s[4]) >= 0) {
    out[0] = (unsigned char)(hexval(s[3]) * 16 + hexval(s[4]));
    return 1;
  }
  size_t n = 0;
  for (size_t i = 0; i < len && n < SURFACE_MAX; i++) {
    if (i + 2 < len && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
        (unsigned char)s[i + 2] == 0x81) {
      out[n++] = ' ';
      i += 2;
    } else {
      out[n++] = (unsigned char)s[i];
    }
  }
  return n;
}

static int matches(const char *text, size_t len, size_t p, const unsigned char *s, size_t n) {
  return n <= len - p && memcmp(text + p, s, n) == 0;
}

/* Finds needle in text[from, from + window) (window clipped to the text). */
static size_t find_near(const char *text, size_t len, size_t from, size_t window,
                        const char *needle, size_t n) {
  if (n == 0 || from >= len) return SIZE_MAX;
  size_t end = len - from > window ? from + window : len;
  for (size_t i = from; i + n <= end; i++)
    if (text[i] == needle[0] && memcmp(text + i, needle, n) == 0) return i;
  return SIZE_MAX;
}

size_t data_token_offsets(const vkft_tokenizer *tok, const char *text, size_t len,
                          const int32_t *ids, size_t n, uint32_t *offsets) {
  unsigned char bl[SURFACE_MAX], sp[SURFACE_MAX];
  size_t p = 0, misses = 0;
  for (size_t i = 0; i < n; i++) {
    const char *str = vkft_tokenizer_token_str(tok, ids[i]);
    offsets[i] = (uint32_t)p;
    if (!str) {
      misses++;
      continue;
    }
    size_t lit_n = strlen(str);
    size_t bl_n = bytelevel_surface(str, bl);
    size_t sp_n = sp_surface(str, sp);
    size_t adv = SIZE_MAX;
    if (bl_n != SIZE_MAX && matches(text, len, p, bl, bl_n))
      adv = bl_n;
    else if (matches(text, len, p, (const unsigned char *)str, lit_n))
      adv = lit_n;
    else if (matches(text, len, p, sp, sp_n))
      adv = sp_n;
    else if (sp_n > 0 && sp[0] == ' ' && matches(text, len, p, sp + 1, sp_n - 1))
      adv = sp_n - 1;
    if (adv != SIZE_MAX) {
      p += adv;
      continue;
    }
    /* An added token's text appears verbatim: resynchronise on it. */
    int added = vkft_tokenizer_is_special(tok, ids[i]) || bl_n == SIZE_MAX;
    size_t from = p > 32 ? p - 32 : 0;
    size_t at = added ? find_near(text, len, from, 4096, str, lit_n) : SIZE_MAX;
    if (at != SIZE_MAX) {
      offsets[i] = (uint32_t)at;
      p = at + lit_n;
      continue;
    }
    misses++;
    if (!vkft_tokenizer_is_special(tok, ids[i])) { /* unmatched special: zero width */
      size_t step = bl_n != SIZE_MAX ? bl_n : sp_n;
      p = step < len - p ? p + step : len;
    }
  }
  return misses;
}
