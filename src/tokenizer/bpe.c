/* The BPE model: the hash tables behind the vocabulary, the merge ranks and the per-thread word
 * cache, and the merge loop that turns one pre-token into ids. It follows HF tokenizers'
 * `BPE::tokenize_with_cache` / `merge_word` / `Word::merge_all`: a min-heap of adjacent pairs
 * ordered by (rank, position) over a linked list of symbols, so ties go to the leftmost pair and
 * nothing is rescanned. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "vkft/error.h"

/* Entries kept per thread before the word cache is emptied (HF keeps 10,000 words). */
#define CACHE_MAX_WORDS 65536
/* Pre-tokens this long or longer are not cached (HF's MAX_LENGTH). */
#define CACHE_MAX_KEY 256

/* 8 bytes at a time, then MurmurHash3's 64-bit finalizer so that every input bit reaches the
 * low bits the tables index with. */
uint64_t tok_hash(const char *s, size_t len) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)len;
  while (len >= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    s += 8;
    len -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, s, len);
  h ^= w;
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;
  return h | 1; /* 0 marks an empty slot */
}

/* ---- string map ---- */

static size_t pow2_at_least(size_t n) {
  size_t cap = 16;
  while (cap < n) cap <<= 1;
  return cap;
}

int tok_strmap_init(tok_strmap *m, size_t expected) {
  memset(m, 0, sizeof *m);
  m->cap = pow2_at_least(expected * 2 + 1);
  m->slots = calloc(m->cap, sizeof *m->slots);
  if (!m->slots) return vkft_error_with(VKFT_ERR_NOMEM, "tokenizer: out of host memory");
  return VKFT_OK;
}

void tok_strmap_free(tok_strmap *m) {
  free(m->slots);
  free(m->arena);
  memset(m, 0, sizeof *m);
}

void tok_strmap_clear(tok_strmap *m) {
  memset(m->slots, 0, m->cap * sizeof *m->slots);
  m->count = 0;
  m->arena_len = 0;
}

static size_t strmap_slot(const tok_strmap *m, uint64_t h, const char *key, size_t len) {
  size_t mask = m->cap - 1, i = (size_t)h & mask;
  while (m->slots[i].hash) {
    const tok_strmap_slot *s = &m->slots[i];
    if (s->hash == h && s->key_len == len && memcmp(m->arena + s->key_off, key, len) == 0) return i;
    i = (i + 1) & mask;
  }
  return i;
}

int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len) {
  if (!m->cap) return -1;
  size_t i = strmap_slot(m, tok_hash(key, len), key, len);
  return m->slots[i].hash ? m->slots[i].value : -1;
}

static int strmap_grow(tok_strmap *m) {
  size_t cap = m->cap * 2, mask = cap - 1;
  tok_strmap_slot *slots = calloc(cap, sizeof *slots);
  if (!slots) return vkft_error_with(VKFT_ERR_NOMEM, "tokenizer: out of host memory");
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->slots[i].hash) continue;
    size_t j = (size_t)m->slots[i].hash & mask;
    while (slots[j].hash) j = (j + 1) & mask;
    slots[j] = m->slots[i];
  }
  free(m->slots);
  m->slots = slots;
  m->cap = cap;
  return VKFT_OK;
}

int tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t value) {
  if (len > UINT32_MAX) return vkft_error("tokenizer: key too long");
  if ((m->count + 1) * 2 > m->cap && strmap_grow(m) != VKFT_OK) return VKFT_ERR;
  uint64_t h = tok_hash(key, len);
  size_t i = strmap_slot(m, h, key, len);
  if (m->slots[i].hash) {
    m->slots[i].value = value;
    return VKFT_OK;
  }
  if (m->arena_len + len + 1 > UINT32_MAX) return vkft_error("tokenizer: vocabulary too large");
  if (vkft_grow((void **)&m->arena, &m->arena_cap, m->arena_len + len + 1, 1) != VKFT_OK)
    return VKFT_ERR;
  memcpy(m->arena + m->arena_len, key, len);
  m->arena[m->arena_len + len] = 0;
  m->slots[i] = (tok_strmap_slot){h, (uint32_t)m->arena_len, (uint32_t)len, value};
  m->arena_len += len + 1;
  m->count++;
  return VKFT_OK;
}

/* ---- pair map ---- */

static uint64_t pair_key(int32_t a, int32_t b) {
  return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

static size_t pair_hash(uint64_t key) { /* MurmurHash3's finalizer */
  key ^= key >> 33;
  key *= 0xFF51AFD7ED558CCDull;
  key ^= key >> 33;
  key *= 0xC4CEB9FE1A85EC53ull;
  key ^= key >> 33;
  return (size_t)key;
}

int tok_pairmap_init(tok_pairmap *m, size_t expected) {
  memset(m, 0, sizeof *m);
  m->cap = pow2_at_least(expected * 2 + 1);
  m->slots = malloc(m->cap * sizeof *m->slots);
  if (!m->slots) return vkft_error_with(VKFT_ERR_NOMEM, "tokenizer: out of host memory");
  for (size_t i = 0; i < m->cap; i++) m->slots[i].key = UINT64_MAX;
  return VKFT_OK;
}

void tok_pairmap_free(tok_pairmap *m) {
  free(m->slots);
  memset(m, 0, sizeof *m);
}

const tok_pair_slot *tok_pairmap_find(const tok_pairmap *m, int32_t a, int32_t b) {
  if (!m->cap) return NULL;
  uint64_t key = pair_key(a, b);
  size_t mask = m->cap - 1, i = pair_hash(key) & mask;
  while (m->slots[i].key != UINT64_MAX) {
    if (m->slots[i].key == key) return &m->slots[i];
    i = (i + 1) & mask;
  }
  return NULL;
}

int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t new_id) {
  if ((m->count + 1) * 2 > m->cap) {
    tok_pairmap bigger;
    if (tok_pairmap_init(&bigger, m->cap) != VKFT_OK) return VKFT_ERR;
    size_t mask = bigger.cap - 1;
    for (size_t i = 0; i < m->cap; i++) {
      if (m->slots[i].key == UINT64_MAX) continue;
      size_t j = pair_hash(m->slots[i].key) & mask;
      while (bigger.slots[j].key != UINT64_MAX) j = (j + 1) & mask;
      bigger.slots[j] = m->slots[i];
    }
    bigger.count = m->count;
    tok_pairmap_free(m);
    *m = bigger;
  }
  uint64_t key = pair_key(a, b);
  size_t mask = m->cap - 1, i = pair_hash(key) & mask;
  while (m->slots[i].key != UINT64_MAX && m->slots[i].key != key) i = (i + 1) & mask;
  if (m->slots[i].key == UINT64_MAX) m->count++;
  m->slots[i] = (tok_pair_slot){key, rank, new_id};
  return VKFT_OK;
}

/* ---- merge loop ---- */

static int merge_less(const tok_merge *x, const tok_merge *y) {
  return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void heap_push(tok_merge *heap, size_t *n, tok_merge m) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!merge_less(&m, &heap[parent])) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = m;
}

static tok_merge heap_pop(tok_merge *heap, size_t *n) {
  tok_merge top = heap[0], last = heap[--(*n)];
  size_t i = 0;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= *n) break;
    if (child + 1 < *n && merge_less(&heap[child + 1], &heap[child])) child++;
    if (!merge_less(&heap[child], &last)) break;
    heap[i] = heap[child];
    i = child;
  }
  if (*n) heap[i] = last;
  return top;
}

/* Word::merge_all: repeatedly merge the lowest-ranked adjacent pair (leftmost on ties). Every
 * merge can add at most two heap entries, so the heap never exceeds 3 * n_symbols. */
static int merge_all(const vkft_tokenizer *tok, tok_scratch *s, size_t n_symbols) {
  if (vkft_grow((void **)&s->heap, &s->heap_cap, 3 * n_symbols + 1, sizeof *s->heap) != VKFT_OK)
    return VKFT_ERR;
  tok_symbol *sym = s->symbols;
  tok_merge *heap = s->heap;
  size_t n_heap = 0;
  for (size_t i = 0; i + 1 < n_symbols; i++) {
    const tok_pair_slot *pair = tok_pairmap_find(&tok->merges, sym[i].id, sym[i + 1].id);
    if (pair) heap_push(heap, &n_heap, (tok_merge){pair->rank, (int32_t)i, pair->new_id});
  }
  while (n_heap) {
    tok_merge top = heap_pop(heap, &n_heap);
    tok_symbol *left = &sym[top.pos];
    if (left->len == 0 || left->next < 0) continue;
    tok_symbol *right = &sym[left->next];
    /* An entry is stale if either side changed since it was pushed. */
    const tok_pair_slot *pair = tok_pairmap_find(&tok->merges, left->id, right->id);
    if (!pair || pair->new_id != top.new_id) continue;
    left->id = top.new_id;
    left->len += right->len;
    left->next = right->next;
    right->len = 0;
    if (left->next >= 0) sym[left->next].prev = top.pos;
    if (left->prev >= 0) {
      pair = tok_pairmap_find(&tok->merges, sym[left->prev].id, left->id);
      if (pair) heap_push(heap, &n_heap, (tok_merge){pair->rank, left->prev, pair->new_id});
    }
    if (left->next >= 0) {
      pair = tok_pairmap_find(&tok->merges, left->id, sym[left->next].id);
      if (pair) heap_push(heap, &n_heap, (tok_merge){pair->rank, top.pos, pair->new_id});
    }
  }
  return VKFT_OK;
}

static void add_symbol(tok_scratch *s, size_t *n, int32_t id, uint32_t len) {
  tok_symbol *sym = &s->symbols[*n];
  sym->id = id;
  sym->len = len;
  sym->prev = (int32_t)*n - 1;
  sym->next = -1;
  if (*n) s->symbols[*n - 1].next = (int32_t)*n;
  (*n)++;
}

/* BPE::merge_word's initial symbols: one per character (with the continuing-subword prefix on
 * all but the first and the end-of-word suffix on the last), unknown characters going to byte
 * fallback tokens or to (fused) unk. */
static int initial_symbols(const vkft_tokenizer *tok, tok_scratch *s, const char *word, size_t len,
                           size_t *n_symbols) {
  /* byte fallback can give 4 symbols for a 4-byte char, so len bounds the count */
  if (vkft_grow((void **)&s->symbols, &s->symbols_cap, len + 1, sizeof *s->symbols) != VKFT_OK)
    return VKFT_ERR;
  size_t n = 0;
  size_t prefix_len = tok->subword_prefix ? strlen(tok->subword_prefix) : 0;
  size_t suffix_len = tok->word_suffix ? strlen(tok->word_suffix) : 0;
  int unk_pending = 0;
  uint32_t unk_len = 0;
  char piece[80]; /* prefix + one char + suffix; both are limited to 32 bytes at load */
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    int char_len = (int)vkft_utf8_decode(word + i, len - i, &cp);
    if (char_len == 0) char_len = 1; /* cannot happen: input was validated */
    size_t end = i + (size_t)char_len;
    size_t piece_len = 0;
    if (prefix_len && i > 0) {
      memcpy(piece, tok->subword_prefix, prefix_len);
      piece_len = prefix_len;
    }
    memcpy(piece + piece_len, word + i, (size_t)char_len);
    piece_len += (size_t)char_len;
    if (suffix_len && end == len) {
      memcpy(piece + piece_len, tok->word_suffix, suffix_len);
      piece_len += suffix_len;
    }
    int32_t id = tok_strmap_get(&tok->vocab, piece, piece_len);
    if (id >= 0) {
      if (unk_pending) add_symbol(s, &n, tok->unk_id, unk_len);
      unk_pending = 0;
      add_symbol(s, &n, id, (uint32_t)char_len);
    } else {
      int fell_back = 0;
      if (tok->byte_fallback) {
        fell_back = 1;
        for (size_t b = i; b < end; b++)
          if (tok->byte_fallback_id[(unsigned char)word[b]] < 0) fell_back = 0;
        /* HF adds the byte tokens without flushing a pending unk first; kept for parity. */
        if (fell_back)
          for (size_t b = i; b < end; b++)
            add_symbol(s, &n, tok->byte_fallback_id[(unsigned char)word[b]], 1);
      }
      if (!fell_back && tok->unk_id >= 0) {
        if (unk_pending && tok->fuse_unk) {
          unk_len += (uint32_t)char_len;
        } else {
          if (unk_pending) add_symbol(s, &n, tok->unk_id, unk_len);
          unk_pending = 1;
          unk_len = (uint32_t)char_len;
        }
      }
      /* no unk token and no byte fallback: HF drops the character */
    }
    i = end;
  }
  if (unk_pending) add_symbol(s, &n, tok->unk_id, unk_len);
  *n_symbols = n;
  return VKFT_OK;
}

static int append_ids(int32_t **out, size_t *n, size_t *cap, const int32_t *ids, size_t count) {
  if (vkft_grow((void **)out, cap, *n + count, sizeof **out) != VKFT_OK) return VKFT_ERR;
  memcpy(*out + *n, ids, count * sizeof *ids);
  *n += count;
  return VKFT_OK;
}

static int cache_store(tok_scratch *s, const char *key, size_t len, const int32_t *ids,
                       size_t count) {
  if (s->cache.count >= CACHE_MAX_WORDS) {
    tok_strmap_clear(&s->cache);
    s->cache_ids_len = 0;
  }
  if (s->cache_ids_len + count + 1 > INT32_MAX) return VKFT_OK;
  if (vkft_grow((void **)&s->cache_ids, &s->cache_ids_cap, s->cache_ids_len + count + 1,
                sizeof *s->cache_ids) != VKFT_OK)
    return VKFT_ERR;
  int32_t off = (int32_t)s->cache_ids_len;
  s->cache_ids[off] = (int32_t)count;
  memcpy(s->cache_ids + off + 1, ids, count * sizeof *ids);
  s->cache_ids_len += count + 1;
  return tok_strmap_put(&s->cache, key, len, off);
}

/* One word through the model: word cache, ignore_merges, merges. */
static int encode_word(const vkft_tokenizer *tok, tok_scratch *s, const char *piece, size_t len,
                       int32_t **out, size_t *n, size_t *cap) {
  if (len == 0) return VKFT_OK;
  int cacheable = len < CACHE_MAX_KEY;
  if (cacheable) {
    int32_t off = tok_strmap_get(&s->cache, piece, len);
    if (off >= 0) return append_ids(out, n, cap, s->cache_ids + off + 1, (size_t)s->cache_ids[off]);
  }
  size_t start = *n;
  /* The model sees the byte-level chars ("Ġworld"), not the raw bytes. */
  const char *word = piece;
  size_t word_len = len;
  if (tok->bytelevel && (tok->ignore_merges || !tok->bytelevel_fast)) {
    if (vkft_grow((void **)&s->mapped, &s->mapped_cap, 2 * len, 1) != VKFT_OK) return VKFT_ERR;
    word_len = 0;
    for (size_t i = 0; i < len; i++) {
      unsigned char b = (unsigned char)piece[i];
      memcpy(s->mapped + word_len, tok->byte_char[b], tok->byte_char_len[b]);
      word_len += tok->byte_char_len[b];
    }
    word = s->mapped;
  }
  int32_t whole = tok->ignore_merges ? tok_strmap_get(&tok->vocab, word, word_len) : -1;
  if (whole >= 0) {
    /* Llama 3: a pre-token that already is a token is emitted as is, whatever the merges say */
    if (append_ids(out, n, cap, &whole, 1) != VKFT_OK) return VKFT_ERR;
  } else {
    size_t n_symbols = 0;
    if (tok->bytelevel_fast) {
      if (vkft_grow((void **)&s->symbols, &s->symbols_cap, len, sizeof *s->symbols) != VKFT_OK)
        return VKFT_ERR;
      for (size_t i = 0; i < len; i++)
        add_symbol(s, &n_symbols, tok->byte_token[(unsigned char)piece[i]], 1);
    } else if (initial_symbols(tok, s, word, word_len, &n_symbols) != VKFT_OK) {
      return VKFT_ERR;
    }
    if (merge_all(tok, s, n_symbols) != VKFT_OK) return VKFT_ERR;
    if (vkft_grow((void **)out, cap, *n + n_symbols, sizeof **out) != VKFT_OK) return VKFT_ERR;
    for (size_t i = 0; i < n_symbols; i++)
      if (s->symbols[i].len) (*out)[(*n)++] = s->symbols[i].id;
  }
  if (cacheable) return cache_store(s, piece, len, *out + start, *n - start);
  return VKFT_OK;
}

static int is_metaspace(const char *s) {
  return !memcmp(s, "\xE2\x96\x81", 3);
}

int tok_bpe_encode_piece(const vkft_tokenizer *tok, tok_scratch *s, const char *piece, size_t len,
                         int32_t **out, size_t *n, size_t *cap) {
  if (!tok->metaspace_words) return encode_word(tok, s, piece, len, out, n, cap);
  /* SentencePiece-style tokenizers without a pre-tokenizer hand the model a whole sentence as
   * one word, and merging it in one piece costs O(n log n) with no cache. When no token has a
   * "▁" after a character other than "▁" (checked at load), no merge can join a symbol to a
   * "▁" that follows another character, so cutting there gives the same ids: the merges of
   * each part are the same, in the same relative order. The parts then hit the word cache. */
  size_t start = 0;
  for (size_t i = 3; i + 3 <= len; i++) {
    if (is_metaspace(piece + i) && !is_metaspace(piece + i - 3)) {
      if (encode_word(tok, s, piece + start, i - start, out, n, cap) != VKFT_OK) return VKFT_ERR;
      start = i;
      i += 2;
    }
  }
  return encode_word(tok, s, piece + start, len - start, out, n, cap);
}
