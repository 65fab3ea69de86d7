/* Decoding ids to text: the token strings go through the decoder chain of tokenizer.json as a
 * list of strings (HF `Decoder::decode_chain`), then are concatenated. Invalid UTF-8 becomes
 * U+FFFD exactly as HF does: Rust's String::from_utf8_lossy for ByteLevel (one U+FFFD per
 * maximal invalid subsequence) and one U+FFFD per byte token for ByteFallback. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "vkft/buf.h"
#include "vkft/error.h"

static const char replacement_char[] = "\xEF\xBF\xBD"; /* U+FFFD */

typedef struct strlist {
  char **s;
  size_t *len;
  size_t n, cap;
} strlist;

static void strlist_free(strlist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->s[i]);
  free(l->s);
  free(l->len);
  memset(l, 0, sizeof *l);
}

/* Takes ownership of s (malloc'd, len bytes, room for a NUL not required). */
static int strlist_push(strlist *l, char *s, size_t len) {
  if (l->n == l->cap) { /* two parallel arrays, grown to the same capacity */
    size_t c1 = l->cap, c2 = l->cap;
    if (vkft_grow((void **)&l->s, &c1, l->n + 1, sizeof *l->s) ||
        vkft_grow((void **)&l->len, &c2, l->n + 1, sizeof *l->len)) {
      free(s);
      return VKFT_ERR;
    }
    l->cap = c1;
  }
  l->s[l->n] = s;
  l->len[l->n] = len;
  l->n++;
  return VKFT_OK;
}

static int strlist_push_copy(strlist *l, const char *s, size_t len) {
  char *copy = malloc(len + 1);
  if (!copy) return vkft_error_with(VKFT_ERR_NOMEM, "tokenizer: out of host memory");
  memcpy(copy, s, len);
  return strlist_push(l, copy, len);
}

/* Length of the longest prefix of s that could start a valid UTF-8 sequence, following Rust's
 * Utf8Chunks: a bad sequence is replaced as a unit up to the first byte that cannot continue
 * it (the "maximal subpart" rule of Unicode §3.9). */
static size_t invalid_prefix(const unsigned char *s, size_t len) {
  unsigned char c = s[0];
  int width = c >= 0xC2 && c <= 0xDF   ? 2
              : c >= 0xE0 && c <= 0xEF ? 3
              : c >= 0xF0 && c <= 0xF4 ? 4
                                       : 0;
  if (width == 0 || len < 2) return 1;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c == 0xE0)
    lo = 0xA0;
  else if (c == 0xED)
    hi = 0x9F;
  else if (c == 0xF0)
    lo = 0x90;
  else if (c == 0xF4)
    hi = 0x8F;
  if (s[1] < lo || s[1] > hi) return 1;
  size_t i = 2;
  while (i < (size_t)width && i < len && (s[i] & 0xC0) == 0x80) i++;
  return i; /* i < width here, or the sequence would have been valid */
}

static int add_lossy(vkft_strbuf *out, const char *data, size_t len) {
  const unsigned char *s = (const unsigned char *)data;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    int k = (int)vkft_utf8_decode(data + i, len - i, &cp);
    if (k) {
      if (vkft_strbuf_add(out, s + i, (size_t)k) != VKFT_OK) return VKFT_ERR;
      i += (size_t)k;
    } else {
      if (vkft_strbuf_add(out, replacement_char, 3) != VKFT_OK) return VKFT_ERR;
      i += invalid_prefix(s + i, len - i);
    }
  }
  return VKFT_OK;
}

static int valid_utf8(const char *data, size_t len) {
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    int k = (int)vkft_utf8_decode(data + i, len - i, &cp);
    if (!k) return 0;
    i += (size_t)k;
  }
  return 1;
}

/* Replaces the list by one string (Fuse, and the end of ByteLevel). */
static int replace_with_one(strlist *l, vkft_strbuf *b) {
  strlist fused = {0};
  if (!b->data && vkft_strbuf_add(b, "", 0) != VKFT_OK) return VKFT_ERR;
  int status = strlist_push(&fused, b->data, b->len);
  b->data = NULL; /* owned by fused now, or freed by the failed push */
  if (status != VKFT_OK) return VKFT_ERR;
  strlist_free(l);
  *l = fused;
  return VKFT_OK;
}

static int decode_bytelevel(const vkft_tokenizer *tok, strlist *l) {
  vkft_strbuf bytes = {0}, out = {0};
  int status = VKFT_OK;
  for (size_t t = 0; status == VKFT_OK && t < l->n; t++) {
    size_t start = bytes.len;
    int mappable = 1;
    for (size_t i = 0; i < l->len[t] && status == VKFT_OK;) {
      uint32_t cp;
      int k = (int)vkft_utf8_decode(l->s[t] + i, l->len[t] - i, &cp);
      if (!k || cp >= 324 || tok->char_byte[cp] < 0) {
        mappable = 0;
        break;
      }
      unsigned char byte = (unsigned char)tok->char_byte[cp];
      status = vkft_strbuf_add(&bytes, &byte, 1);
      i += (size_t)k;
    }
    /* a token with a char outside the table (an added token) contributes its own bytes */
    if (status == VKFT_OK && !mappable) {
      bytes.len = start;
      status = vkft_strbuf_add(&bytes, l->s[t], l->len[t]);
    }
  }
  if (status == VKFT_OK) status = add_lossy(&out, bytes.data ? bytes.data : "", bytes.len);
  free(bytes.data);
  if (status == VKFT_OK) status = replace_with_one(l, &out);
  if (status != VKFT_OK) free(out.data);
  return status;
}

static int byte_token_value(const char *s, size_t len) {
  if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/* Runs of <0xNN> tokens become their bytes if those form valid UTF-8, else one U+FFFD each. */
static int decode_bytefallback(strlist *l) {
  strlist out = {0};
  vkft_strbuf run = {0};
  size_t run_tokens = 0;
  int status = VKFT_OK;
  for (size_t t = 0; status == VKFT_OK && t <= l->n; t++) {
    int v = t < l->n ? byte_token_value(l->s[t], l->len[t]) : -1;
    if (v >= 0) {
      unsigned char byte = (unsigned char)v;
      status = vkft_strbuf_add(&run, &byte, 1);
      run_tokens++;
      continue;
    }
    if (run_tokens) {
      if (valid_utf8(run.data, run.len)) {
        status = strlist_push_copy(&out, run.data, run.len);
      } else {
        for (size_t i = 0; status == VKFT_OK && i < run_tokens; i++)
          status = strlist_push_copy(&out, replacement_char, 3);
      }
      run.len = 0;
      run_tokens = 0;
    }
    if (status == VKFT_OK && t < l->n) status = strlist_push_copy(&out, l->s[t], l->len[t]);
  }
  free(run.data);
  if (status != VKFT_OK) {
    strlist_free(&out);
    return VKFT_ERR;
  }
  strlist_free(l);
  *l = out;
  return VKFT_OK;
}

/* Replaces every occurrence of pat in each token; with drop_first, the first token loses its
 * occurrences instead (the Metaspace decoder removes every ▁ of token 0, not just a leading
 * one). */
static int decode_replace(strlist *l, const char *pat, size_t pat_len, const char *with,
                          size_t with_len, int drop_first) {
  if (pat_len == 0) return VKFT_OK;
  for (size_t t = 0; t < l->n; t++) {
    vkft_strbuf b = {0};
    int status = vkft_strbuf_add(&b, "", 0);
    const char *s = l->s[t];
    size_t len = l->len[t];
    for (size_t i = 0; status == VKFT_OK && i < len;) {
      if (i + pat_len <= len && memcmp(s + i, pat, pat_len) == 0) {
        if (!(drop_first && t == 0)) status = vkft_strbuf_add(&b, with, with_len);
        i += pat_len;
      } else {
        status = vkft_strbuf_add(&b, s + i, 1);
        i++;
      }
    }
    if (status != VKFT_OK) {
      free(b.data);
      return VKFT_ERR;
    }
    free(l->s[t]);
    l->s[t] = b.data;
    l->len[t] = b.len;
  }
  return VKFT_OK;
}

static int decode_fuse(strlist *l) {
  vkft_strbuf b = {0};
  for (size_t t = 0; t < l->n; t++) {
    if (vkft_strbuf_add(&b, l->s[t], l->len[t]) != VKFT_OK) {
      free(b.data);
      return VKFT_ERR;
    }
  }
  if (replace_with_one(l, &b) != VKFT_OK) {
    free(b.data);
    return VKFT_ERR;
  }
  return VKFT_OK;
}

/* Strip: removes up to `start` leading and `stop` trailing copies of the content char. */
static void decode_strip(strlist *l, const char *c, size_t c_len, int start, int stop) {
  for (size_t t = 0; t < l->n; t++) {
    char *s = l->s[t];
    size_t begin = 0, end = l->len[t];
    for (int i = 0; i < start && begin + c_len <= end && !memcmp(s + begin, c, c_len); i++)
      begin += c_len;
    for (int i = 0; i < stop && end >= begin + c_len && !memcmp(s + end - c_len, c, c_len); i++)
      end -= c_len;
    memmove(s, s + begin, end - begin);
    l->len[t] = end - begin;
  }
}

static int run_decoder(const vkft_tokenizer *tok, const tok_decoder *d, strlist *l) {
  switch (d->type) {
  case TOK_DEC_SEQUENCE:
    for (size_t i = 0; i < d->n_children; i++)
      if (run_decoder(tok, &d->children[i], l) != VKFT_OK) return VKFT_ERR;
    return VKFT_OK;
  case TOK_DEC_BYTELEVEL:
    return decode_bytelevel(tok, l);
  case TOK_DEC_METASPACE:
    return decode_replace(l, d->a, d->a_len, " ", 1, d->prepend_scheme != TOK_PREPEND_NEVER);
  case TOK_DEC_REPLACE:
    return decode_replace(l, d->a, d->a_len, d->b, d->b_len, 0);
  case TOK_DEC_BYTEFALLBACK:
    return decode_bytefallback(l);
  case TOK_DEC_FUSE:
    return decode_fuse(l);
  case TOK_DEC_STRIP:
    decode_strip(l, d->a, d->a_len, d->start, d->stop);
    return VKFT_OK;
  default:
    return VKFT_OK;
  }
}

int vkft_tokenizer_decode(const vkft_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
                          char **text, size_t *len) {
  *text = NULL;
  *len = 0;
  strlist l = {0};
  for (size_t i = 0; i < n; i++) {
    int32_t id = ids[i];
    if (id < 0 || (size_t)id >= tok->vocab_size || tok->id_str[id] < 0) {
      strlist_free(&l);
      return vkft_error("tokenizer: token id %ld is not in the vocabulary (size %zu)", (long)id,
                        tok->vocab_size);
    }
    if (skip_special && tok->id_special[id]) continue;
    const char *s = tok->strings + tok->id_str[id];
    if (strlist_push_copy(&l, s, strlen(s)) != VKFT_OK) {
      strlist_free(&l);
      return VKFT_ERR;
    }
  }
  int status = tok->decoder ? run_decoder(tok, tok->decoder, &l) : VKFT_OK;
  vkft_strbuf out = {0};
  if (status == VKFT_OK) status = vkft_strbuf_add(&out, "", 0);
  /* without a decoder HF joins the tokens with spaces */
  for (size_t t = 0; status == VKFT_OK && t < l.n; t++) {
    if (!tok->decoder && t > 0) status = vkft_strbuf_add(&out, " ", 1);
    if (status == VKFT_OK) status = vkft_strbuf_add(&out, l.s[t], l.len[t]);
  }
  strlist_free(&l);
  if (status != VKFT_OK) {
    free(out.data);
    return VKFT_ERR;
  }
  *text = out.data;
  *len = out.len;
  return VKFT_OK;
}
