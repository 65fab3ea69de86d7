/* Internal layout of vkft_tokenizer, shared by the tokenizer source files: the loaded
 * configuration (normalizer, pre-tokenizer, BPE model, post-processor, decoder trees), the hash
 * tables they use and the per-thread scratch space of an encode call. Not a public header. */
#ifndef VKFT_TOKENIZER_INTERNAL_H
#define VKFT_TOKENIZER_INTERNAL_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <stddef.h>
#include <stdint.h>

#include "vkft/platform.h"
#include "vkft/tokenizer.h"

/* ---- hash tables (tokenizer_bpe.c) ---- */

/* String -> int32 map with open addressing; keys are copied into an arena it owns. A slot
 * keeps hash, key place and value together so a lookup touches one cache line plus the key. */
typedef struct tok_strmap_slot {
  uint64_t hash; /* 0 marks an empty slot */
  uint32_t key_off, key_len;
  int32_t value;
} tok_strmap_slot;

typedef struct tok_strmap {
  tok_strmap_slot *slots;
  size_t cap, count; /* cap is a power of two */
  char *arena;
  size_t arena_len, arena_cap;
} tok_strmap;

int tok_strmap_init(tok_strmap *m, size_t expected);
void tok_strmap_free(tok_strmap *m);
void tok_strmap_clear(tok_strmap *m);
int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len);      /* -1 if absent */
int tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t value); /* overwrites */

/* (left id, right id) -> (merge rank, merged id), one 16-byte slot per pair. */
typedef struct tok_pair_slot {
  uint64_t key; /* left << 32 | right; UINT64_MAX marks an empty slot */
  int32_t rank, new_id;
} tok_pair_slot;

typedef struct tok_pairmap {
  tok_pair_slot *slots;
  size_t cap, count;
} tok_pairmap;

int tok_pairmap_init(tok_pairmap *m, size_t expected);
void tok_pairmap_free(tok_pairmap *m);
/* Later puts of the same pair overwrite earlier ones, as HF's HashMap collect does. */
int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t new_id);
const tok_pair_slot *tok_pairmap_find(const tok_pairmap *m, int32_t a, int32_t b); /* or NULL */

/* ---- configuration trees (parsed in tokenizer.c) ---- */

enum tok_pattern_kind { TOK_PAT_REGEX, TOK_PAT_STRING, TOK_PAT_NUMERIC };

/* HF SplitDelimiterBehavior. */
enum tok_split_behavior {
  TOK_SPLIT_REMOVED,
  TOK_SPLIT_ISOLATED,
  TOK_SPLIT_MERGED_PREV,
  TOK_SPLIT_MERGED_NEXT,
  TOK_SPLIT_CONTIGUOUS
};

enum tok_normalizer_type {
  TOK_NORM_SEQUENCE,
  TOK_NORM_NFC,
  TOK_NORM_NFD,
  TOK_NORM_NFKC,
  TOK_NORM_NFKD,
  TOK_NORM_LOWERCASE,
  TOK_NORM_PREPEND,
  TOK_NORM_REPLACE,
  TOK_NORM_STRIP
};

typedef struct tok_normalizer {
  int type;
  char *a, *b; /* Prepend: a = prefix; Replace: a = pattern, b = content */
  size_t a_len, b_len;
  int strip_left, strip_right;
  struct tok_normalizer *children;
  size_t n_children;
} tok_normalizer;

enum tok_pretok_type {
  TOK_PRE_SEQUENCE,
  TOK_PRE_BYTELEVEL,
  TOK_PRE_SPLIT,
  TOK_PRE_METASPACE,
  TOK_PRE_DIGITS
};

enum tok_prepend_scheme { TOK_PREPEND_ALWAYS, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER };

typedef struct tok_pretok {
  int type;
  int add_prefix_space, use_regex; /* ByteLevel */
  int pattern_kind, behavior;      /* Split; Digits uses TOK_PAT_NUMERIC */
  int invert;
  pcre2_code *regex; /* Split regex, or the GPT-2 regex of ByteLevel */
  char *literal;     /* Split string pattern */
  size_t literal_len;
  char replacement[8]; /* Metaspace, UTF-8 */
  size_t replacement_len;
  int prepend_scheme, split; /* Metaspace */
  struct tok_pretok *children;
  size_t n_children;
} tok_pretok;

enum tok_decoder_type {
  TOK_DEC_SEQUENCE,
  TOK_DEC_BYTELEVEL,
  TOK_DEC_METASPACE,
  TOK_DEC_REPLACE,
  TOK_DEC_BYTEFALLBACK,
  TOK_DEC_FUSE,
  TOK_DEC_STRIP
};

typedef struct tok_decoder {
  int type;
  char *a, *b; /* Replace: pattern, content; Metaspace: a = replacement; Strip: a = content */
  size_t a_len, b_len;
  int start, stop;    /* Strip */
  int prepend_scheme; /* Metaspace */
  struct tok_decoder *children;
  size_t n_children;
} tok_decoder;

typedef struct tok_added {
  char *content;
  size_t content_len;
  char *match; /* what is searched for: content, or its normalized form if normalized */
  size_t match_len;
  int32_t id;
  uint8_t special, lstrip, rstrip, single_word, normalized;
} tok_added;

/* Byte trie over added-token strings for leftmost-longest matching. */
typedef struct tok_trie_node {
  int32_t first_child, next_sibling;
  int32_t added; /* index into tok->added or -1 */
  uint8_t byte;
} tok_trie_node;

typedef struct tok_trie {
  tok_trie_node *nodes; /* nodes[0] is the root */
  size_t count, cap;
  uint8_t first_byte[256]; /* 1 if some token starts with that byte: skips most positions */
} tok_trie;

/* ---- per-call scratch (tokenizer_encode.c) ---- */

typedef struct tok_piece {
  uint32_t off, len; /* into scratch->arena */
  uint8_t first;     /* starts at original offset 0 (Metaspace prepend_scheme "first") */
} tok_piece;

/* A piece of text after added-token splitting: plain text, or an added token. */
typedef struct tok_segment {
  size_t off, len;
  int32_t added_id; /* -1 for plain text */
} tok_segment;

/* Pattern split result: [start, end) and whether it matched. */
typedef struct tok_span {
  size_t start, end;
  int is_match;
} tok_span;

typedef struct tok_symbol {
  int32_t id, prev, next;
  uint32_t len; /* bytes covered; 0 = merged away */
} tok_symbol;

typedef struct tok_merge {
  int32_t rank, pos, new_id;
} tok_merge;

typedef struct tok_scratch {
  struct tok_scratch *next_free;
  pcre2_match_data *match_data;
  pcre2_match_context *match_context;
  pcre2_jit_stack *jit_stack;
  tok_strmap cache; /* pre-token bytes -> offset into cache_ids ([count, ids...]) */
  int32_t *cache_ids;
  size_t cache_ids_len, cache_ids_cap;
  char *arena; /* normalized text and pre-token content */
  size_t arena_len, arena_cap;
  char *mapped; /* byte-level mapped pre-token */
  size_t mapped_cap;
  tok_segment *segments, *subsegments;
  size_t segments_cap, subsegments_cap;
  tok_span *spans;
  size_t spans_cap;
  tok_piece *pieces, *pieces_tmp;
  size_t n_pieces, pieces_cap, n_pieces_tmp, pieces_tmp_cap;
  tok_symbol *symbols;
  size_t symbols_cap;
  tok_merge *heap;
  size_t heap_cap;
} tok_scratch;

struct vkft_tokenizer {
  char *path; /* tokenizer.json, for messages */

  /* id -> token string (NUL-terminated, in strings[]); added tokens override the model's. */
  char *strings;
  size_t strings_len, strings_cap;
  int64_t *id_str; /* offset into strings or -1 */
  uint8_t *id_special;
  size_t vocab_size; /* max id + 1 */

  /* BPE model */
  tok_strmap vocab; /* model vocabulary only */
  tok_pairmap merges;
  int32_t unk_id;
  int fuse_unk, byte_fallback, ignore_merges;
  char *subword_prefix, *word_suffix; /* NULL when absent or empty */
  int32_t byte_fallback_id[256];      /* "<0xNN>" or -1 */
  int metaspace_words; /* words may be cut before a "▁" that follows another char (tokenizer_bpe.c)
                        */

  /* byte-level mapping (GPT-2 bytes_to_unicode) */
  char byte_char[256][3]; /* UTF-8 of the char standing for each byte */
  uint8_t byte_char_len[256];
  int32_t byte_token[256]; /* vocab id of that single char, or -1 */
  int16_t char_byte[324];  /* the inverse: byte of each code point below 324, or -1 */
  int bytelevel;           /* the pre-tokenizer ends with ByteLevel */
  int bytelevel_fast;      /* bytelevel, all byte_token present, no prefix/suffix */

  tok_normalizer *normalizer; /* NULL if none */
  tok_pretok *pretok;         /* NULL if none */
  tok_decoder *decoder;       /* NULL if none: tokens joined by spaces, as HF */

  /* post-processor reduced to prefix + A + suffix */
  int32_t *post_prefix, *post_suffix;
  size_t n_post_prefix, n_post_suffix;

  tok_added *added;
  size_t n_added, added_cap;
  tok_strmap added_map; /* content -> index into added */
  tok_trie trie_raw, trie_normalized;

  char *bos_str, *eos_str, *chat_template;
  char chat_template_problem[1200]; /* why tokenizer_config.json's template is unusable */

  vkft_mutex *pool_lock;
  tok_scratch *pool;
};

/* ---- functions shared between the files ---- */

/* tokenizer_bpe.c: the BPE model on one pre-token (content bytes, byte-level mapped or not).
 * Appends ids to *out (capacity *cap, length *n). */
int tok_bpe_encode_piece(const vkft_tokenizer *tok, tok_scratch *s, const char *piece, size_t len,
                         int32_t **out, size_t *n, size_t *cap);
uint64_t tok_hash(const char *s, size_t len);

/* tokenizer_encode.c */
int tok_normalize(const tok_normalizer *norm, const char *in, size_t len, char **out,
                  size_t *out_len);
void tok_scratch_free(tok_scratch *s);
int tok_trie_build(vkft_tokenizer *tok);

/* tokenizer_pipeline.c: the stages of tokenizer.json; errors name `path`. */
struct cJSON;
const char *tok_json_str(const struct cJSON *obj, const char *key); /* NULL if not a string */
int tok_json_bool(const struct cJSON *obj, const char *key, int fallback);
int tok_json_id(const struct cJSON *item, int32_t *id); /* 1 if a valid token id */
char *tok_strdup(const char *s, size_t len);            /* NULL when out of memory */
int tok_parse_normalizer(const char *path, const struct cJSON *obj, tok_normalizer *n);
int tok_parse_pretok(const char *path, const struct cJSON *obj, tok_pretok *p);
int tok_parse_decoder(const char *path, const struct cJSON *obj, tok_decoder *d);
int tok_parse_post(const char *path, vkft_tokenizer *tok, const struct cJSON *obj);
/* 1 if the tree has a ByteLevel step; clears *last_ok if one is not the final step. */
int tok_pretok_bytelevel(const tok_pretok *p, int is_last, int *last_ok);
void tok_normalizer_free(tok_normalizer *n); /* these free the node itself too; NULL is fine */
void tok_pretok_free(tok_pretok *p);
void tok_decoder_free(tok_decoder *d);

/* tokenizer.c: a tokenizer.json tree into tok (tok->path names it in messages) */
int tok_load_json(vkft_tokenizer *tok, const struct cJSON *root);
/* gguf.c: a GGUF file's tokenizer metadata into tok (built as its tokenizer.json) */
int tok_load_gguf(vkft_tokenizer *tok, const char *path);

/* tokenizer.c: small helpers (arrays grow with vkft_grow, UTF-8 is decoded by vkft/utf8.h) */
#include "vkft/buf.h"
#include "vkft/utf8.h"
int tok_is_whitespace(uint32_t cp);
int tok_is_alphanumeric(uint32_t cp);
int tok_is_numeric(uint32_t cp);

#endif
