/* Encoding text to ids, in HF tokenizers' order: added tokens are cut out of the raw text
 * (leftmost-longest, AddedVocabulary::find_matches with its lstrip/rstrip/single_word rules), the
 * rest is normalized, normalized added tokens are cut out of that, the remainder is split into
 * pre-tokens and each pre-token goes through the BPE model; the post-processor adds its special
 * tokens last. Also the scratch pool that makes one tokenizer usable from many threads, and the
 * threaded batch encoder. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "vkft/error.h"

/* ---- added-token trie ---- */

static int trie_add(tok_trie *t, const char *s, size_t len, int32_t added) {
  if (t->count == 0) {
    if (vkft_grow((void **)&t->nodes, &t->cap, 1, sizeof *t->nodes) != VKFT_OK) return VKFT_ERR;
    t->nodes[0] = (tok_trie_node){-1, -1, -1, 0};
    t->count = 1;
  }
  int32_t node = 0;
  for (size_t i = 0; i < len; i++) {
    uint8_t byte = (uint8_t)s[i];
    int32_t child = t->nodes[node].first_child;
    while (child >= 0 && t->nodes[child].byte != byte) child = t->nodes[child].next_sibling;
    if (child < 0) {
      if (vkft_grow((void **)&t->nodes, &t->cap, t->count + 1, sizeof *t->nodes) != VKFT_OK)
        return VKFT_ERR;
      child = (int32_t)t->count++;
      t->nodes[child] = (tok_trie_node){-1, t->nodes[node].first_child, -1, byte};
      t->nodes[node].first_child = child;
    }
    node = child;
  }
  t->nodes[node].added = added;
  t->first_byte[(uint8_t)s[0]] = 1;
  return VKFT_OK;
}

int tok_trie_build(vkft_tokenizer *tok) {
  tok->trie_raw.count = tok->trie_normalized.count = 0;
  memset(tok->trie_raw.first_byte, 0, 256);
  memset(tok->trie_normalized.first_byte, 0, 256);
  for (size_t i = 0; i < tok->n_added; i++) {
    const tok_added *a = &tok->added[i];
    if (a->match_len == 0) continue; /* normalized away: can never match */
    tok_trie *t = a->normalized ? &tok->trie_normalized : &tok->trie_raw;
    if (trie_add(t, a->match, a->match_len, (int32_t)i) != VKFT_OK) return VKFT_ERR;
  }
  return VKFT_OK;
}

/* Leftmost-longest match at or after `from` (aho-corasick MatchKind::LeftmostLongest). */
static int trie_find(const tok_trie *t, const char *s, size_t len, size_t from, size_t *start,
                     size_t *end, int32_t *added) {
  if (t->count <= 1) return 0;
  for (size_t i = from; i < len; i++) {
    if (!t->first_byte[(uint8_t)s[i]]) continue;
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t j = i; j < len; j++) {
      int32_t child = t->nodes[node].first_child;
      while (child >= 0 && t->nodes[child].byte != (uint8_t)s[j])
        child = t->nodes[child].next_sibling;
      if (child < 0) break;
      node = child;
      if (t->nodes[node].added >= 0) best = t->nodes[node].added, best_end = j + 1;
    }
    if (best >= 0) {
      *start = i;
      *end = best_end;
      *added = best;
      return 1;
    }
  }
  return 0;
}

/* Last / first character of a string. */
static uint32_t last_char(const char *s, size_t len) {
  size_t i = len;
  while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
  uint32_t cp = 0;
  if (i > 0) vkft_utf8_decode(s + i - 1, len - i + 1, &cp);
  return cp;
}

static uint32_t first_char(const char *s, size_t len) {
  uint32_t cp = 0;
  vkft_utf8_decode(s, len, &cp);
  return cp;
}

static size_t whitespace_before(const char *s, size_t end) {
  size_t i = end;
  while (i > 0) {
    size_t j = i - 1;
    while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
    uint32_t cp;
    if (!(int)vkft_utf8_decode(s + j, i - j, &cp) || !tok_is_whitespace(cp)) break;
    i = j;
  }
  return i;
}

static size_t whitespace_after(const char *s, size_t start, size_t len) {
  size_t i = start;
  while (i < len) {
    uint32_t cp;
    int n = (int)vkft_utf8_decode(s + i, len - i, &cp);
    if (!n || !tok_is_whitespace(cp)) break;
    i += (size_t)n;
  }
  return i;
}

static int push_segment(tok_segment **segs, size_t *n, size_t *cap, size_t off, size_t len,
                        int32_t added_id) {
  if (vkft_grow((void **)segs, cap, *n + 1, sizeof **segs) != VKFT_OK) return VKFT_ERR;
  (*segs)[(*n)++] = (tok_segment){off, len, added_id};
  return VKFT_OK;
}

/* AddedVocabulary::find_matches: segments of s, with added tokens as their own segments. */
static int split_added(const vkft_tokenizer *tok, const tok_trie *trie, const char *s, size_t len,
                       tok_segment **segs, size_t *n, size_t *cap) {
  *n = 0;
  size_t from = 0, done = 0, start, end;
  int32_t index;
  while (from < len && trie_find(trie, s, len, from, &start, &end, &index)) {
    const tok_added *a = &tok->added[index];
    from = end; /* the next search starts after this match even if it is discarded */
    if (a->single_word) {
      int space_before = start == 0 || !tok_is_alphanumeric(last_char(s, start));
      int space_after = end == len || !tok_is_alphanumeric(first_char(s + end, len - end));
      if (!space_before || !space_after) continue;
    }
    if (a->lstrip) {
      size_t new_start = whitespace_before(s, start);
      start = new_start > done ? new_start : done; /* an earlier match may own those spaces */
    }
    if (a->rstrip) end = whitespace_after(s, end, len);
    if (start > done && push_segment(segs, n, cap, done, start - done, -1) != VKFT_OK)
      return VKFT_ERR;
    if (push_segment(segs, n, cap, start, end - start, a->id) != VKFT_OK) return VKFT_ERR;
    done = end;
    if (from < end) from = end;
  }
  if (done < len && push_segment(segs, n, cap, done, len - done, -1) != VKFT_OK) return VKFT_ERR;
  return VKFT_OK;
}

/* ---- normalizers ---- */

static int is_ascii(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] >= 0x80) return 0;
  return 1;
}

/* A character that NFC leaves as it is whatever its neighbours, when they are such characters
 * too: below U+0300 (no combining marks there), or a starter that has no canonical
 * decomposition and takes part in no composition (Hangul jamo compose algorithmically, so they
 * are excluded by range). Checked exhaustively against utf8proc's data: each such character is
 * NFC-stable alone and none is the second element of a (non-excluded) composition. Text made
 * only of them skips utf8proc_map, which runs at about 30 MB/s. */
static int nfc_inert(uint32_t cp) {
  if (cp < 0x300) return 1;
  if (cp >= 0x1100 && cp <= 0x11FF) return 0;
  const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
  return p->combining_class == 0 && p->comb_index == UINT16_MAX &&
         (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0);
}

static int nfc_stable(const char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    if ((unsigned char)s[i] < 0x80) {
      i++;
      continue;
    }
    uint32_t cp;
    int k = (int)vkft_utf8_decode(s + i, len - i, &cp);
    if (!k || !nfc_inert(cp)) return 0;
    i += (size_t)k;
  }
  return 1;
}

/* One normalizer on in[0, len): *out receives a malloc'd result, or NULL if the text is
 * unchanged (the common case, which then costs no copy). */
static int normalize_step(const tok_normalizer *n, const char *in, size_t len, char **out,
                          size_t *out_len) {
  *out = NULL;
  *out_len = len;
  utf8proc_option_t options = 0;
  switch (n->type) {
  case TOK_NORM_NFC:
    options = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    break;
  case TOK_NORM_NFD:
    options = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE;
    break;
  case TOK_NORM_NFKC:
    options = UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    break;
  case TOK_NORM_NFKD:
    options = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
    break;
  default:
    break;
  }
  /* ASCII text is in every normal form already; Prepend leaves an empty string alone (HF) */
  if ((options && is_ascii(in, len)) || (n->type == TOK_NORM_NFC && nfc_stable(in, len)) ||
      (n->type == TOK_NORM_PREPEND && len == 0))
    return VKFT_OK;
  if (options) {
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r =
        utf8proc_map((const utf8proc_uint8_t *)in, (utf8proc_ssize_t)len, &dst, options);
    if (r < 0) return vkft_error("tokenizer: normalization failed: %s", utf8proc_errmsg(r));
    *out = (char *)dst;
    *out_len = (size_t)r;
    return VKFT_OK;
  }
  size_t cap = 0, n_out = 0;
  char *res = NULL;
  /* every case reserves room for its whole output plus the NUL before writing */
  switch (n->type) {
  case TOK_NORM_LOWERCASE: /* simple case mapping; Rust's to_lowercase also has a few 1:n ones */
    if (vkft_grow((void **)&res, &cap, len * 4 + 1, 1) != VKFT_OK) return VKFT_ERR;
    for (size_t i = 0; i < len;) {
      uint32_t cp;
      int k = (int)vkft_utf8_decode(in + i, len - i, &cp);
      if (!k) k = 1, cp = (unsigned char)in[i];
      n_out += vkft_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), res + n_out);
      i += (size_t)k;
    }
    break;
  case TOK_NORM_PREPEND:
    if (vkft_grow((void **)&res, &cap, n->a_len + len + 1, 1) != VKFT_OK) return VKFT_ERR;
    memcpy(res, n->a, n->a_len);
    memcpy(res + n->a_len, in, len);
    n_out = n->a_len + len;
    break;
  case TOK_NORM_REPLACE: {
    size_t count = 0;
    for (size_t i = 0; n->a_len && i + n->a_len <= len;)
      if (memcmp(in + i, n->a, n->a_len) == 0)
        count++, i += n->a_len;
      else
        i++;
    if (vkft_grow((void **)&res, &cap, len + count * n->b_len + 1, 1) != VKFT_OK) return VKFT_ERR;
    for (size_t i = 0; i < len;) {
      if (n->a_len && i + n->a_len <= len && memcmp(in + i, n->a, n->a_len) == 0) {
        memcpy(res + n_out, n->b, n->b_len);
        n_out += n->b_len;
        i += n->a_len;
      } else {
        res[n_out++] = in[i++];
      }
    }
    break;
  }
  case TOK_NORM_STRIP: {
    size_t start = n->strip_left ? whitespace_after(in, 0, len) : 0;
    size_t end = n->strip_right ? whitespace_before(in, len) : len;
    if (end < start) end = start;
    if (vkft_grow((void **)&res, &cap, end - start + 1, 1) != VKFT_OK) return VKFT_ERR;
    memcpy(res, in + start, end - start);
    n_out = end - start;
    break;
  }
  default:
    return VKFT_OK; /* TOK_NORM_SEQUENCE is handled by normalize_tree */
  }
  res[n_out] = 0;
  *out = res;
  *out_len = n_out;
  return VKFT_OK;
}

/* Runs the normalizer tree over *s. *owned is the malloc'd buffer *s points into, or NULL
 * while *s is still the caller's text. */
static int normalize_tree(const tok_normalizer *n, const char **s, size_t *len, char **owned) {
  if (n->type == TOK_NORM_SEQUENCE) {
    for (size_t i = 0; i < n->n_children; i++)
      if (normalize_tree(&n->children[i], s, len, owned) != VKFT_OK) return VKFT_ERR;
    return VKFT_OK;
  }
  char *out;
  size_t out_len;
  if (normalize_step(n, *s, *len, &out, &out_len) != VKFT_OK) return VKFT_ERR;
  if (out) {
    free(*owned);
    *owned = out;
    *s = out;
    *len = out_len;
  }
  return VKFT_OK;
}

/* Normalizes without copying when nothing changes: *out is text or *owned (to be freed). */
static int normalize_view(const tok_normalizer *norm, const char *text, size_t len,
                          const char **out, size_t *out_len, char **owned) {
  *owned = NULL;
  *out = text;
  *out_len = len;
  if (normalize_tree(norm, out, out_len, owned) != VKFT_OK) {
    free(*owned);
    *owned = NULL;
    return VKFT_ERR;
  }
  return VKFT_OK;
}

int tok_normalize(const tok_normalizer *norm, const char *in, size_t len, char **out,
                  size_t *out_len) {
  const char *view;
  char *owned;
  if (normalize_view(norm, in, len, &view, out_len, &owned) != VKFT_OK) return VKFT_ERR;
  if (!owned) {
    if (!(owned = malloc(len + 1)))
      return vkft_error_with(VKFT_ERR_NOMEM, "tokenizer: out of host memory");
    memcpy(owned, in, len);
    owned[len] = 0;
  }
  *out = owned;
  return VKFT_OK;
}

/* ---- pre-tokenizers ---- */

static int push_span(tok_scratch *s, size_t *n, size_t start, size_t end, int is_match) {
  if (vkft_grow((void **)&s->spans, &s->spans_cap, *n + 1, sizeof *s->spans) != VKFT_OK)
    return VKFT_ERR;
  s->spans[(*n)++] = (tok_span){start, end, is_match};
  return VKFT_OK;
}

/* Pattern::find_matches: the whole string as alternating non-match / match spans. */
static int find_spans(const tok_pretok *p, tok_scratch *s, const char *text, size_t len,
                      size_t *n_spans) {
  size_t n = 0, prev = 0;
  if (p->pattern_kind == TOK_PAT_REGEX) {
    size_t pos = 0;
    while (pos < len) {
      int rc = pcre2_match(p->regex, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, s->match_data,
                           s->match_context);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return vkft_error("tokenizer: pre_tokenizer regex failed: %s", (const char *)msg);
      }
      PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->match_data);
      size_t start = ov[0], end = ov[1];
      if (end == start) { /* an empty match splits nothing; step over one character */
        uint32_t cp;
        int k = (int)vkft_utf8_decode(text + end, len - end, &cp);
        pos = end + (size_t)(k ? k : 1);
        continue;
      }
      if (start > prev && push_span(s, &n, prev, start, 0) != VKFT_OK) return VKFT_ERR;
      if (push_span(s, &n, start, end, 1) != VKFT_OK) return VKFT_ERR;
      prev = pos = end;
    }
  } else if (p->pattern_kind == TOK_PAT_STRING) {
    for (size_t i = 0; p->literal_len && i + p->literal_len <= len;) {
      if (memcmp(text + i, p->literal, p->literal_len) == 0) {
        if (i > prev && push_span(s, &n, prev, i, 0) != VKFT_OK) return VKFT_ERR;
        if (push_span(s, &n, i, i + p->literal_len, 1) != VKFT_OK) return VKFT_ERR;
        prev = i = i + p->literal_len;
      } else {
        i++;
      }
    }
  } else { /* TOK_PAT_NUMERIC: each numeric character is a match of its own */
    for (size_t i = 0; i < len;) {
      uint32_t cp;
      int k = (int)vkft_utf8_decode(text + i, len - i, &cp);
      if (!k) k = 1, cp = 0;
      if (tok_is_numeric(cp)) {
        if (i > prev && push_span(s, &n, prev, i, 0) != VKFT_OK) return VKFT_ERR;
        if (push_span(s, &n, i, i + (size_t)k, 1) != VKFT_OK) return VKFT_ERR;
        prev = i + (size_t)k;
      }
      i += (size_t)k;
    }
  }
  if (prev < len && push_span(s, &n, prev, len, 0) != VKFT_OK) return VKFT_ERR;
  *n_spans = n;
  return VKFT_OK;
}

/* SplitDelimiterBehavior applied to spans, in place; returns the new count. */
static size_t apply_behavior(tok_span *sp, size_t n, int behavior, int invert) {
  if (invert)
    for (size_t i = 0; i < n; i++) sp[i].is_match = !sp[i].is_match;
  size_t out = 0;
  int previous_match = 0;
  switch (behavior) {
  case TOK_SPLIT_ISOLATED:
    return n;
  case TOK_SPLIT_REMOVED:
    for (size_t i = 0; i < n; i++)
      if (!sp[i].is_match) sp[out++] = sp[i];
    return out;
  case TOK_SPLIT_MERGED_PREV:
    for (size_t i = 0; i < n; i++) {
      if (sp[i].is_match && !previous_match && out > 0)
        sp[out - 1].end = sp[i].end;
      else
        sp[out++] = sp[i];
      previous_match = sp[i].is_match;
    }
    return out;
  case TOK_SPLIT_MERGED_NEXT: /* HF walks backwards, merging a match into what follows it */
    out = n;
    for (size_t k = n; k-- > 0;) {
      if (sp[k].is_match && !previous_match && out < n)
        sp[out].start = sp[k].start;
      else
        sp[--out] = sp[k];
      previous_match = sp[k].is_match;
    }
    memmove(sp, sp + out, (n - out) * sizeof *sp);
    return n - out;
  case TOK_SPLIT_CONTIGUOUS:
    for (size_t i = 0; i < n; i++) {
      if (out > 0 && sp[i].is_match == previous_match)
        sp[out - 1].end = sp[i].end;
      else
        sp[out++] = sp[i];
      previous_match = sp[i].is_match;
    }
    return out;
  default:
    return n;
  }
}

static int push_piece(tok_piece **pieces, size_t *n, size_t *cap, size_t off, size_t len,
                      int first) {
  if (len == 0) return VKFT_OK; /* HF drops empty pieces */
  if (vkft_grow((void **)pieces, cap, *n + 1, sizeof **pieces) != VKFT_OK) return VKFT_ERR;
  (*pieces)[(*n)++] = (tok_piece){(uint32_t)off, (uint32_t)len, (uint8_t)first};
  return VKFT_OK;
}

static void swap_pieces(tok_scratch *s) {
  tok_piece *p = s->pieces;
  size_t n = s->n_pieces, cap = s->pieces_cap;
  s->pieces = s->pieces_tmp, s->n_pieces = s->n_pieces_tmp, s->pieces_cap = s->pieces_tmp_cap;
  s->pieces_tmp = p, s->n_pieces_tmp = n, s->pieces_tmp_cap = cap;
}

/* Splits every current piece by the step's pattern and behaviour. */
static int split_pieces(const tok_pretok *p, tok_scratch *s, int behavior) {
  s->n_pieces_tmp = 0;
  for (size_t i = 0; i < s->n_pieces; i++) {
    tok_piece piece = s->pieces[i];
    size_t n_spans;
    if (find_spans(p, s, s->arena + piece.off, piece.len, &n_spans) != VKFT_OK) return VKFT_ERR;
    n_spans = apply_behavior(s->spans, n_spans, behavior, p->invert);
    for (size_t k = 0; k < n_spans; k++) {
      const tok_span *sp = &s->spans[k];
      if (push_piece(&s->pieces_tmp, &s->n_pieces_tmp, &s->pieces_tmp_cap, piece.off + sp->start,
                     sp->end - sp->start, piece.first && sp->start == 0) != VKFT_OK)
        return VKFT_ERR;
    }
  }
  swap_pieces(s);
  return VKFT_OK;
}

static int arena_append(tok_scratch *s, const char *data, size_t len) {
  if (vkft_grow((void **)&s->arena, &s->arena_cap, s->arena_len + len + 1, 1) != VKFT_OK)
    return VKFT_ERR;
  memcpy(s->arena + s->arena_len, data, len);
  s->arena_len += len;
  return VKFT_OK;
}

/* ByteLevel's add_prefix_space, Metaspace's replace-and-prepend: rewrites each piece's content
 * into new arena space. */
static int rewrite_pieces(const tok_pretok *p, tok_scratch *s) {
  for (size_t i = 0; i < s->n_pieces; i++) {
    tok_piece *piece = &s->pieces[i];
    size_t new_off = s->arena_len;
    if (p->type == TOK_PRE_BYTELEVEL) {
      if (s->arena[piece->off] == ' ') continue;
      if (arena_append(s, " ", 1) != VKFT_OK) return VKFT_ERR;
      if (arena_append(s, s->arena + piece->off, piece->len) != VKFT_OK) return VKFT_ERR;
    } else { /* Metaspace */
      int starts = piece->len >= p->replacement_len &&
                   memcmp(s->arena + piece->off, p->replacement, p->replacement_len) == 0;
      int prepend = p->prepend_scheme == TOK_PREPEND_ALWAYS ||
                    (p->prepend_scheme == TOK_PREPEND_FIRST && piece->first);
      /* a replaced leading space also counts as starting with the replacement */
      if (piece->len && s->arena[piece->off] == ' ') starts = 1;
      if (prepend && !starts && arena_append(s, p->replacement, p->replacement_len) != VKFT_OK)
        return VKFT_ERR;
      for (size_t k = 0; k < piece->len; k++) {
        char c = s->arena[piece->off + k];
        int ok =
            c == ' ' ? arena_append(s, p->replacement, p->replacement_len) : arena_append(s, &c, 1);
        if (ok != VKFT_OK) return VKFT_ERR;
      }
    }
    piece->off = (uint32_t)new_off;
    piece->len = (uint32_t)(s->arena_len - new_off);
  }
  return VKFT_OK;
}

static int pretokenize(const tok_pretok *p, tok_scratch *s) {
  switch (p->type) {
  case TOK_PRE_SEQUENCE:
    for (size_t i = 0; i < p->n_children; i++)
      if (pretokenize(&p->children[i], s) != VKFT_OK) return VKFT_ERR;
    return VKFT_OK;
  case TOK_PRE_BYTELEVEL:
    /* the byte -> char mapping itself is done by the model (tok_bpe_encode_piece) */
    if (p->add_prefix_space && rewrite_pieces(p, s) != VKFT_OK) return VKFT_ERR;
    return p->use_regex ? split_pieces(p, s, TOK_SPLIT_ISOLATED) : VKFT_OK;
  case TOK_PRE_SPLIT:
  case TOK_PRE_DIGITS:
    return split_pieces(p, s, p->behavior);
  case TOK_PRE_METASPACE: {
    if (rewrite_pieces(p, s) != VKFT_OK) return VKFT_ERR;
    if (!p->split) return VKFT_OK;
    tok_pretok on_replacement = {.pattern_kind = TOK_PAT_STRING,
                                 .literal = (char *)p->replacement,
                                 .literal_len = p->replacement_len};
    return split_pieces(&on_replacement, s, TOK_SPLIT_MERGED_NEXT);
  }
  default:
    return VKFT_OK;
  }
}

/* ---- scratch pool ---- */

void tok_scratch_free(tok_scratch *s) {
  if (!s) return;
  pcre2_match_data_free(s->match_data);
  pcre2_match_context_free(s->match_context);
  pcre2_jit_stack_free(s->jit_stack);
  tok_strmap_free(&s->cache);
  free(s->cache_ids);
  free(s->arena);
  free(s->mapped);
  free(s->segments);
  free(s->subsegments);
  free(s->spans);
  free(s->pieces);
  free(s->pieces_tmp);
  free(s->symbols);
  free(s->heap);
  free(s);
}

static tok_scratch *scratch_acquire(const vkft_tokenizer *tok) {
  vkft_tokenizer *mut = (vkft_tokenizer *)tok; /* the pool is the only mutable part */
  vkft_mutex_lock(mut->pool_lock);
  tok_scratch *s = mut->pool;
  if (s) mut->pool = s->next_free;
  vkft_mutex_unlock(mut->pool_lock);
  if (s) return s;
  s = calloc(1, sizeof *s);
  if (!s) {
    vkft_error_with(VKFT_ERR_NOMEM, "tokenizer: out of host memory");
    return NULL;
  }
  s->match_data = pcre2_match_data_create(8, NULL);
  s->match_context = pcre2_match_context_create(NULL);
  /* long runs of whitespace or punctuation need more than the 32 KiB default JIT stack */
  s->jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
  if (!s->match_data || !s->match_context || !s->jit_stack ||
      tok_strmap_init(&s->cache, 4096) != VKFT_OK) {
    tok_scratch_free(s);
    vkft_error_with(VKFT_ERR_NOMEM, "tokenizer: out of host memory");
    return NULL;
  }
  pcre2_jit_stack_assign(s->match_context, NULL, s->jit_stack);
  return s;
}

static void scratch_release(const vkft_tokenizer *tok, tok_scratch *s) {
  vkft_tokenizer *mut = (vkft_tokenizer *)tok;
  vkft_mutex_lock(mut->pool_lock);
  s->next_free = mut->pool;
  mut->pool = s;
  vkft_mutex_unlock(mut->pool_lock);
}

/* ---- encode ---- */

typedef struct out_ids {
  int32_t *ids;
  size_t n, cap;
} out_ids;

static int push_id(out_ids *out, int32_t id) {
  if (vkft_grow((void **)&out->ids, &out->cap, out->n + 1, sizeof *out->ids) != VKFT_OK)
    return VKFT_ERR;
  out->ids[out->n++] = id;
  return VKFT_OK;
}

/* Pre-tokenizes one plain segment and runs the model on each piece. */
static int encode_plain(const vkft_tokenizer *tok, tok_scratch *s, const char *text, size_t len,
                        int first, out_ids *out) {
  if (len == 0) return VKFT_OK;
  s->arena_len = 0;
  s->n_pieces = 0;
  if (arena_append(s, text, len) != VKFT_OK ||
      push_piece(&s->pieces, &s->n_pieces, &s->pieces_cap, 0, len, first) != VKFT_OK)
    return VKFT_ERR;
  if (tok->pretok && pretokenize(tok->pretok, s) != VKFT_OK) return VKFT_ERR;
  for (size_t i = 0; i < s->n_pieces; i++) {
    if (tok_bpe_encode_piece(tok, s, s->arena + s->pieces[i].off, s->pieces[i].len, &out->ids,
                             &out->n, &out->cap) != VKFT_OK)
      return VKFT_ERR;
  }
  return VKFT_OK;
}

/* A segment without raw added tokens: normalize, cut out normalized added tokens, encode. */
static int encode_segment(const vkft_tokenizer *tok, tok_scratch *s, const char *text, size_t len,
                          int first, out_ids *out) {
  char *norm = NULL;
  size_t norm_len = len;
  const char *src = text;
  if (tok->normalizer &&
      normalize_view(tok->normalizer, text, len, &src, &norm_len, &norm) != VKFT_OK)
    return VKFT_ERR;
  int status = VKFT_OK;
  if (tok->trie_normalized.count > 1) {
    size_t n_sub = 0;
    status = split_added(tok, &tok->trie_normalized, src, norm_len, &s->subsegments, &n_sub,
                         &s->subsegments_cap);
    for (size_t i = 0; status == VKFT_OK && i < n_sub; i++) {
      const tok_segment *sub = &s->subsegments[i];
      status = sub->added_id >= 0
                   ? push_id(out, sub->added_id)
                   : encode_plain(tok, s, src + sub->off, sub->len, first && sub->off == 0, out);
    }
  } else {
    status = encode_plain(tok, s, src, norm_len, first, out);
  }
  free(norm);
  return status;
}

static int validate_utf8(const char *text, size_t len) {
  for (size_t i = 0; i < len;) {
    if ((unsigned char)text[i] < 0x80) {
      i++;
      continue;
    }
    uint32_t cp;
    int k = (int)vkft_utf8_decode(text + i, len - i, &cp);
    if (!k) return vkft_error("tokenizer: text is not valid UTF-8 (byte %zu)", i);
    i += (size_t)k;
  }
  return VKFT_OK;
}

int vkft_tokenizer_encode(const vkft_tokenizer *tok, const char *text, size_t len, int add_special,
                          int32_t **ids, size_t *n_ids) {
  *n_ids = 0;
  /* pre-token offsets are 32-bit, and Metaspace can triple a segment when it rewrites it */
  if (len > UINT32_MAX / 8) return vkft_error("tokenizer: text longer than 512 MiB");
  if (validate_utf8(text, len) != VKFT_OK) return VKFT_ERR;
  tok_scratch *s = scratch_acquire(tok);
  if (!s) return VKFT_ERR;
  out_ids out = {*ids, 0, 0};
  int status = VKFT_OK;
  for (size_t i = 0; add_special && status == VKFT_OK && i < tok->n_post_prefix; i++)
    status = push_id(&out, tok->post_prefix[i]);
  size_t n_seg = 0;
  if (status == VKFT_OK)
    status = split_added(tok, &tok->trie_raw, text, len, &s->segments, &n_seg, &s->segments_cap);
  for (size_t i = 0; status == VKFT_OK && i < n_seg; i++) {
    const tok_segment *seg = &s->segments[i];
    status = seg->added_id >= 0
                 ? push_id(&out, seg->added_id)
                 : encode_segment(tok, s, text + seg->off, seg->len, seg->off == 0, &out);
  }
  for (size_t i = 0; add_special && status == VKFT_OK && i < tok->n_post_suffix; i++)
    status = push_id(&out, tok->post_suffix[i]);
  scratch_release(tok, s);
  *ids = out.ids;
  *n_ids = status == VKFT_OK ? out.n : 0;
  return status;
}

/* ---- batch ---- */

typedef struct batch_ctx {
  const vkft_tokenizer *tok;
  const char *const *texts;
  const size_t *lens;
  size_t n, next;
  int add_special;
  int32_t **ids;
  size_t *n_ids;
  vkft_mutex *lock;
  int failed;
  size_t failed_index;
  char message[512];
} batch_ctx;

/* Texts are handed out in small chunks so threads stay busy when lengths differ. */
static void batch_worker(void *arg) {
  batch_ctx *b = arg;
  const size_t chunk = 8;
  for (;;) {
    vkft_mutex_lock(b->lock);
    size_t begin = b->failed ? b->n : b->next;
    size_t end = begin + chunk < b->n ? begin + chunk : b->n;
    b->next = end;
    vkft_mutex_unlock(b->lock);
    if (begin >= end) return;
    for (size_t i = begin; i < end; i++) {
      b->ids[i] = NULL;
      if (vkft_tokenizer_encode(b->tok, b->texts[i], b->lens[i], b->add_special, &b->ids[i],
                                &b->n_ids[i]) != VKFT_OK) {
        vkft_mutex_lock(b->lock);
        if (!b->failed || i < b->failed_index) {
          b->failed = 1;
          b->failed_index = i;
          snprintf(b->message, sizeof b->message, "%s", vkft_error_message());
        }
        vkft_mutex_unlock(b->lock);
        return;
      }
    }
  }
}

int vkft_tokenizer_encode_batch(const vkft_tokenizer *tok, const char *const *texts,
                                const size_t *lens, size_t n, int add_special, int threads,
                                int32_t **ids, size_t *n_ids) {
  for (size_t i = 0; i < n; i++) ids[i] = NULL, n_ids[i] = 0;
  if (threads <= 0) threads = vkft_cpu_count();
  if (threads < 1) threads = 1;
  if ((size_t)threads > n) threads = n ? (int)n : 1;
  batch_ctx b = {.tok = tok,
                 .texts = texts,
                 .lens = lens,
                 .n = n,
                 .add_special = add_special,
                 .ids = ids,
                 .n_ids = n_ids};
  if (!(b.lock = vkft_mutex_create())) return vkft_error("tokenizer: cannot create a mutex");
  vkft_thread **pool = calloc((size_t)threads, sizeof *pool);
  if (!pool) {
    vkft_mutex_destroy(b.lock);
    return vkft_error_with(VKFT_ERR_NOMEM, "tokenizer: out of host memory");
  }
  /* the calling thread works too; a thread that fails to start just leaves more for others */
  for (int t = 1; t < threads; t++) pool[t] = vkft_thread_start(batch_worker, &b);
  batch_worker(&b);
  for (int t = 1; t < threads; t++)
    if (pool[t]) vkft_thread_join(pool[t]);
  free(pool);
  vkft_mutex_destroy(b.lock);
  if (b.failed) {
    for (size_t i = 0; i < n; i++) {
      free(ids[i]);
      ids[i] = NULL;
      n_ids[i] = 0;
    }
    return vkft_error("text %zu: %s", b.failed_index, b.message);
  }
  return VKFT_OK;
}
