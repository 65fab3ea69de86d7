/* Cluster labels for `vkft data explore`: a Unicode word splitter with a small English stop-word
 * list, and BERTopic's class-based TF-IDF over the words of each cluster (vkft/explore.h gives
 * the formula and its source). */
#include "vkft/explore.h"

#include "vkft/buf.h"
#include "vkft/error.h"
#include "vkft/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* Function words that would top every cluster of English text before the idf could cancel
 * them: articles, pronouns, auxiliaries, prepositions, conjunctions (a short list on purpose;
 * c-TF-IDF's idf takes care of the rest). Sorted for bsearch. */
static const char *const stop_words[] = {
    "about", "above", "after",   "again", "all",   "also",  "am",   "an",     "and",   "any",
    "are",   "as",    "at",      "be",    "been",  "being", "but",  "by",     "can",   "could",
    "did",   "do",    "does",    "doing", "for",   "from",  "had",  "has",    "have",  "he",
    "her",   "here",  "hers",    "him",   "his",   "how",   "if",   "in",     "into",  "is",
    "it",    "its",   "just",    "me",    "more",  "most",  "my",   "no",     "not",   "of",
    "on",    "or",    "our",     "ours",  "out",   "over",  "she",  "should", "so",    "some",
    "such",  "than",  "that",    "the",   "their", "them",  "then", "there",  "these", "they",
    "this",  "those", "through", "to",    "too",   "up",    "us",   "very",   "was",   "we",
    "were",  "what",  "when",    "where", "which", "while", "who",  "whom",   "why",   "will",
    "with",  "would", "you",     "your",  "yours"};

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_stop_word(const char *w) {
  return bsearch(&w, stop_words, sizeof stop_words / sizeof *stop_words, sizeof *stop_words,
                 cmp_str) != NULL;
}

static int is_letter(uint32_t cp) {
  utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
  return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}

static int is_word_char(uint32_t cp) {
  utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
  return is_letter(cp) || (c >= UTF8PROC_CATEGORY_MN && c <= UTF8PROC_CATEGORY_ME) ||
         (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

enum { MAX_WORD = 64 }; /* code points; longer runs (hashes, base64) are not words */

int vkft_words(const char *text, vkft_word_fn fn, void *arg) {
  const unsigned char *s = (const unsigned char *)text;
  char word[MAX_WORD * 4 + 1];
  size_t len = 0, cps = 0;
  int digits_only = 1;
  uint32_t prev = 0;
  for (;;) {
    uint32_t cp = *s ? vkft_utf8_next(&s) : 0;
    int in = cp && cp != VKFT_UTF8_BAD && is_word_char(cp);
    /* an apostrophe or hyphen between two letters stays inside the word (don't, well-known) */
    if (cp && !in && len && (cp == '\'' || cp == '-' || cp == 0x2019) && is_letter(prev)) {
      const unsigned char *next = s;
      uint32_t after = *next ? vkft_utf8_next(&next) : 0;
      in = after && after != VKFT_UTF8_BAD && is_letter(after);
    }
    if (in) {
      if (cps < MAX_WORD) {
        char enc[4];
        size_t k = vkft_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), enc);
        memcpy(word + len, enc, k);
        len += k;
      }
      cps++;
      if (!(cp >= '0' && cp <= '9') &&
          utf8proc_category((utf8proc_int32_t)cp) != UTF8PROC_CATEGORY_ND)
        digits_only = 0;
    } else {
      if (cps >= 2 && cps <= MAX_WORD && !digits_only) {
        word[len] = 0;
        if (!is_stop_word(word)) fn(word, len, arg);
      }
      len = cps = 0;
      digits_only = 1;
      if (!cp) break;
    }
    prev = cp;
  }
  return VKFT_OK;
}

/* ---- the vocabulary: an open-addressing hash of words to ids ---- */

typedef struct vocab {
  char **words;
  size_t n, cap_words;
  uint32_t *slots; /* id + 1, 0 = empty */
  size_t n_slots;
  int failed;
} vocab;

static uint64_t hash_bytes(const char *s, size_t len) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static int vocab_grow(vocab *v) {
  size_t n_slots = v->n_slots ? v->n_slots * 2 : 1024;
  uint32_t *slots = calloc(n_slots, sizeof *slots);
  if (!slots) return 0;
  for (size_t i = 0; i < v->n; i++) {
    size_t h = hash_bytes(v->words[i], strlen(v->words[i])) & (n_slots - 1);
    while (slots[h]) h = (h + 1) & (n_slots - 1);
    slots[h] = (uint32_t)i + 1;
  }
  free(v->slots);
  v->slots = slots;
  v->n_slots = n_slots;
  return 1;
}

/* the word's id, added when new; -1 when out of memory */
static int64_t vocab_id(vocab *v, const char *w, size_t len) {
  if ((v->n + 1) * 2 > v->n_slots && !vocab_grow(v)) return -1;
  size_t h = hash_bytes(w, len) & (v->n_slots - 1);
  for (; v->slots[h]; h = (h + 1) & (v->n_slots - 1)) {
    const char *o = v->words[v->slots[h] - 1];
    if (strlen(o) == len && !memcmp(o, w, len)) return v->slots[h] - 1;
  }
  if (vkft_grow((void **)&v->words, &v->cap_words, v->n + 1, sizeof *v->words)) return -1;
  char *copy = malloc(len + 1);
  if (!copy) return -1;
  memcpy(copy, w, len + 1);
  v->words[v->n] = copy;
  v->slots[h] = (uint32_t)++v->n;
  return (int64_t)v->n - 1;
}

/* occurrences as (cluster, word id) pairs, counted after sorting */
typedef struct occurrences {
  vocab *v;
  uint64_t *pairs; /* cluster << 32 | word id */
  size_t n, cap;
  uint32_t cls;
  int failed;
} occurrences;

static void add_word(const char *word, size_t len, void *arg) {
  occurrences *o = arg;
  if (o->failed) return;
  int64_t id = vocab_id(o->v, word, len);
  if (id < 0 || vkft_grow((void **)&o->pairs, &o->cap, o->n + 1, sizeof *o->pairs)) {
    o->failed = 1;
    return;
  }
  o->pairs[o->n++] = (uint64_t)o->cls << 32 | (uint64_t)id;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

typedef struct scored {
  double w;
  const char *word;
} scored;

static int cmp_scored(const void *a, const void *b) {
  const scored *x = a, *y = b;
  if (x->w != y->w) return x->w > y->w ? -1 : 1;
  return strcmp(x->word, y->word);
}

static void vocab_free(vocab *v) {
  for (size_t i = 0; i < v->n; i++) free(v->words[i]);
  free(v->words);
  free(v->slots);
}

/* the top terms of cluster c from its sorted run of pairs [a, b) */
static int rank_cluster(const uint64_t *pairs, size_t a, size_t b, const double *f, double A,
                        const vocab *v, vkft_topic_terms *out, int c) {
  size_t total = b - a, distinct = 0;
  scored *s = malloc((total + 1) * sizeof *s);
  if (!s) return vkft_error_nomem();
  for (size_t i = a; i < b;) {
    size_t j = i;
    while (j < b && pairs[j] == pairs[i]) j++;
    uint32_t id = (uint32_t)pairs[i];
    double tf = (double)(j - i) / (double)total;
    s[distinct++] = (scored){tf * log(1 + A / f[id]), v->words[id]};
    i = j;
  }
  qsort(s, distinct, sizeof *s, cmp_scored);
  int status = VKFT_OK;
  for (int t = 0; t < out->top && (size_t)t < distinct && status == VKFT_OK; t++) {
    size_t at = (size_t)c * (size_t)out->top + (size_t)t;
    out->terms[at] = malloc(strlen(s[t].word) + 1);
    if (!out->terms[at])
      status = vkft_error_nomem();
    else
      strcpy(out->terms[at], s[t].word);
    out->scores[at] = s[t].w;
  }
  free(s);
  return status;
}

int vkft_topic_terms_compute(const char *const *texts, const int32_t *cls, size_t n, int k, int top,
                             vkft_topic_terms *out) {
  *out = (vkft_topic_terms){.k = k, .top = top};
  if (k < 1 || top < 1) return vkft_error("topic terms: k = %d, top = %d", k, top);
  out->terms = calloc((size_t)k * (size_t)top, sizeof *out->terms);
  out->scores = calloc((size_t)k * (size_t)top, sizeof *out->scores);
  vocab v = {0};
  occurrences o = {.v = &v};
  int status = out->terms && out->scores ? VKFT_OK : vkft_error_nomem();
  for (size_t i = 0; i < n && status == VKFT_OK; i++) {
    if (cls[i] < 0) continue;
    if (cls[i] >= k) status = vkft_error("topic terms: text %zu in cluster %d of %d", i, cls[i], k);
    o.cls = (uint32_t)cls[i];
    if (status == VKFT_OK) vkft_words(texts[i], add_word, &o);
    if (o.failed) status = vkft_error_nomem();
  }
  double *f = status == VKFT_OK ? calloc(v.n + 1, sizeof *f) : NULL;
  if (status == VKFT_OK && !f) status = vkft_error_nomem();
  if (status == VKFT_OK) {
    qsort(o.pairs, o.n, sizeof *o.pairs, cmp_u64);
    for (size_t i = 0; i < o.n; i++) f[(uint32_t)o.pairs[i]] += 1;
    /* the average words per cluster, truncated as BERTopic's code does (int(X.sum(axis=1)
     * .mean()) in bertopic/vectorizers/_ctfidf.py), and at least 1 */
    double A = floor((double)o.n / (double)k);
    if (A < 1) A = 1;
    for (size_t i = 0; i < o.n && status == VKFT_OK;) {
      size_t j = i;
      while (j < o.n && o.pairs[j] >> 32 == o.pairs[i] >> 32) j++;
      status = rank_cluster(o.pairs, i, j, f, A, &v, out, (int)(o.pairs[i] >> 32));
      i = j;
    }
  }
  free(f);
  free(o.pairs);
  vocab_free(&v);
  if (status != VKFT_OK) vkft_topic_terms_free(out);
  return status;
}

void vkft_topic_terms_free(vkft_topic_terms *t) {
  for (size_t i = 0; t->terms && i < (size_t)t->k * (size_t)t->top; i++) free(t->terms[i]);
  free(t->terms);
  free(t->scores);
  t->terms = NULL;
  t->scores = NULL;
}
