/* Deduplication for `vkft data dedup`: exact duplicates by hash (confirmed by comparison), and
 * near-duplicates by MinHash over shingles of code points or token ids, with LSH banding whose
 * (bands, rows) minimise the false positive and negative areas around the threshold (as
 * datasketch does); candidates are confirmed by their signature similarity. Signatures are
 * computed on several threads; the keep/drop pass is sequential, so the result is the same
 * for any thread count: a record is dropped for the earliest kept record it duplicates. */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/platform.h"
#include "vkft/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t hash_units(const uint32_t *u, size_t n, uint64_t seed) {
  uint64_t h = seed ^ (n * 0x9E3779B97F4A7C15ull);
  for (size_t i = 0; i < n; i++) h = mix64(h ^ (u[i] + 0x632BE59BD9B4E019ull));
  return h;
}

int vkft_utf8_codepoints(const char *s, size_t len, uint32_t **out, size_t *n) {
  uint32_t *cp = malloc((len + 1) * sizeof *cp);
  if (!cp) return vkft_error_nomem();
  size_t k = 0;
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    uint32_t c;
    p += vkft_utf8_decode_lenient((const char *)p, (size_t)(end - p), &c);
    cp[k++] = c == VKFT_UTF8_BAD ? 0xFFFD : c; /* a malformed byte: U+FFFD, as Python's "replace" */
  }
  *out = cp;
  *n = k;
  return VKFT_OK;
}

/* ---- exact ---- */

typedef struct hash_index {
  uint64_t hash;
  size_t index;
} hash_index;

static int cmp_hash(const void *a, const void *b) {
  const hash_index *x = a, *y = b;
  if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static int add_pair(vkft_dedup_pair **pairs, size_t *n, size_t *cap, vkft_dedup_pair p) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 64;
    vkft_dedup_pair *q = realloc(*pairs, c * sizeof *q);
    if (!q) return vkft_error_nomem();
    *pairs = q;
    *cap = c;
  }
  (*pairs)[(*n)++] = p;
  return VKFT_OK;
}

static int exact_pass(const uint32_t *const *seqs, const size_t *lens, size_t n,
                      unsigned char *keep, vkft_dedup_pair **pairs, size_t *n_pairs, size_t *cap) {
  hash_index *h = malloc((n + 1) * sizeof *h);
  if (!h) return vkft_error_nomem();
  for (size_t i = 0; i < n; i++) h[i] = (hash_index){hash_units(seqs[i], lens[i], 0x5A17), i};
  qsort(h, n, sizeof *h, cmp_hash);
  int rc = VKFT_OK;
  for (size_t a = 0; a < n && rc == VKFT_OK;) {
    size_t b = a + 1;
    while (b < n && h[b].hash == h[a].hash) b++;
    /* Within a group of equal hashes (in index order), compare with the earlier kept ones. */
    for (size_t i = a + 1; i < b && rc == VKFT_OK; i++) {
      size_t x = h[i].index;
      if (!keep[x]) continue;
      for (size_t j = a; j < i; j++) {
        size_t y = h[j].index;
        if (keep[y] && lens[x] == lens[y] &&
            memcmp(seqs[x], seqs[y], lens[x] * sizeof *seqs[x]) == 0) {
          keep[x] = 0;
          rc = add_pair(pairs, n_pairs, cap, (vkft_dedup_pair){x, y, 1.0f, 1});
          break;
        }
      }
    }
    a = b;
  }
  free(h);
  return rc;
}

int vkft_dedup_exact(const uint32_t *const *seqs, const size_t *lens, size_t n, unsigned char *keep,
                     vkft_dedup_pair **pairs, size_t *n_pairs) {
  *pairs = NULL;
  *n_pairs = 0;
  size_t cap = 0;
  for (size_t i = 0; i < n; i++) keep[i] = 1;
  return exact_pass(seqs, lens, n, keep, pairs, n_pairs, &cap);
}

/* ---- MinHash ---- */

/* MinHash by one-permutation hashing with optimal densification (Shrivastava 2017): each
 * shingle is hashed once, its hash picks one of the P bins and the bin keeps its minimum; an
 * empty bin borrows the value of a bin chosen by a hash sequence of its own index. The share
 * of equal bins estimates the Jaccard similarity like P independent permutations do, at the
 * cost of one hash per shingle instead of P. */
typedef struct sig_job {
  const uint32_t *const *seqs;
  const size_t *lens;
  size_t n;
  int P, k;
  uint64_t seed;
  uint32_t *sigs; /* n * P */
  size_t next;
  vkft_mutex *mutex;
} sig_job;

static uint64_t rotl(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

static void signature(const sig_job *j, size_t i) {
  enum { EMPTY = 0xFFFFFFFFu };
  uint32_t *sig = j->sigs + i * (size_t)j->P;
  uint32_t filled[1024];
  for (int p = 0; p < j->P; p++) filled[p] = EMPTY;
  const uint32_t *u = j->seqs[i];
  size_t len = j->lens[i], k = (size_t)j->k;
  size_t kk = len >= k ? k : len, shingles = len >= k ? len - k + 1 : 1;
  /* Each unit hashed once; a shingle combines its units' hashes rotated by position. */
  uint64_t local[1024], *hu = len <= 1024 ? local : malloc(len * sizeof *hu);
  for (size_t t = 0; hu && t < len; t++) hu[t] = mix64(u[t] + 0x9E37u);
  for (size_t s = 0; hu && s < shingles; s++) {
    uint64_t h = j->seed ^ kk;
    for (size_t t = 0; t < kk; t++) h ^= rotl(hu[s + t], (int)(t * 13 % 63) + 1);
    h = mix64(h);
    uint32_t bin = (uint32_t)(((h >> 32) * (uint64_t)j->P) >> 32);
    uint32_t v = (uint32_t)h & 0xFFFFFFFEu; /* never EMPTY */
    if (v < filled[bin]) filled[bin] = v;
  }
  if (hu != local) free(hu);
  for (int p = 0; p < j->P; p++) {
    uint32_t v = filled[p];
    for (uint64_t attempt = 0; v == EMPTY && attempt < 64u * (uint64_t)j->P; attempt++) {
      uint64_t h = mix64(j->seed ^ ((uint64_t)p << 32) ^ (attempt + 1));
      v = filled[(uint32_t)(((h >> 32) * (uint64_t)j->P) >> 32)];
    }
    sig[p] = v;
  }
}

static void sig_worker(void *arg) {
  sig_job *j = arg;
  for (;;) {
    vkft_mutex_lock(j->mutex);
    size_t from = j->next;
    j->next += 64;
    vkft_mutex_unlock(j->mutex);
    if (from >= j->n) return;
    for (size_t i = from; i < from + 64 && i < j->n; i++) signature(j, i);
  }
}

/* (bands, rows) minimising the areas of false positives below the threshold and false
 * negatives above it, for candidate probability 1 - (1 - s^r)^b. */
static void lsh_params(double t, int P, int *bands, int *rows) {
  double best = 1e9;
  *bands = P;
  *rows = 1;
  for (int b = 1; b <= P; b++)
    for (int r = 1; b * r <= P; r++) {
      double fp = 0, fn = 0;
      enum { STEPS = 64 };
      for (int i = 0; i < STEPS; i++) {
        double s0 = t * (i + 0.5) / STEPS, s1 = t + (1 - t) * (i + 0.5) / STEPS;
        fp += (1 - pow(1 - pow(s0, r), b)) * t / STEPS;
        fn += pow(1 - pow(s1, r), b) * (1 - t) / STEPS;
      }
      if (fp + fn < best) best = fp + fn, *bands = b, *rows = r;
    }
}

typedef struct bucket_entry {
  uint64_t key;
  uint32_t index, next;
} bucket_entry;

int vkft_dedup(const uint32_t *const *seqs, const size_t *lens, size_t n,
               const vkft_dedup_desc *desc, unsigned char *keep, vkft_dedup_pair **pairs,
               size_t *n_pairs) {
  vkft_dedup_desc d = desc ? *desc : (vkft_dedup_desc){0};
  double t = d.threshold > 0 ? d.threshold : 0.8;
  int P = d.num_perm > 0 ? d.num_perm : 128;
  if (P > 1024) P = 1024;
  *pairs = NULL;
  *n_pairs = 0;
  size_t cap = 0;
  for (size_t i = 0; i < n; i++) keep[i] = 1;
  if (exact_pass(seqs, lens, n, keep, pairs, n_pairs, &cap)) return VKFT_ERR;
  if (t >= 1 || n < 2) return VKFT_OK;
  sig_job j = {.seqs = seqs,
               .lens = lens,
               .n = n,
               .P = P,
               .k = d.shingle > 0 ? d.shingle : 5,
               .seed = mix64(d.seed ^ 0x3141592653589793ull)};
  j.sigs = malloc(n * (size_t)P * sizeof *j.sigs);
  int bands, rows;
  lsh_params(t, P, &bands, &rows);
  size_t n_heads = 1;
  while (n_heads < n * (size_t)bands * 2) n_heads *= 2;
  uint32_t *heads = malloc(n_heads * sizeof *heads);
  bucket_entry *entries = malloc((n * (size_t)bands + 1) * sizeof *entries);
  if (!j.sigs || !heads || !entries) {
    free(j.sigs), free(heads), free(entries);
    return vkft_error_with(VKFT_ERR_NOMEM, "out of host memory for %zu MinHash signatures", n);
  }
  j.mutex = vkft_mutex_create();
  int threads = d.threads > 0 ? d.threads : vkft_cpu_count();
  vkft_thread *th[64];
  int started = 0;
  for (int i = 1; i < threads && i < 64 && j.mutex; i++)
    if ((th[started] = vkft_thread_start(sig_worker, &j))) started++;
  if (j.mutex)
    sig_worker(&j);
  else
    for (size_t i = 0; i < n; i++) signature(&j, i);
  for (int i = 0; i < started; i++) vkft_thread_join(th[i]);
  vkft_mutex_destroy(j.mutex);
  /* Sequential pass: each record against the kept records sharing a band bucket. */
  memset(heads, 0xFF, n_heads * sizeof *heads);
  size_t n_entries = 0;
  int rc = VKFT_OK;
  for (size_t i = 0; i < n && rc == VKFT_OK; i++) {
    if (!keep[i]) continue;
    const uint32_t *si = j.sigs + i * (size_t)P;
    uint64_t keys[1024];
    size_t dup = SIZE_MAX;
    float best = 0;
    for (int b = 0; b < bands && dup == SIZE_MAX; b++) {
      uint64_t key = mix64((uint64_t)b * 0x9E3779B97F4A7C15ull);
      for (int r = 0; r < rows; r++) key = mix64(key ^ si[b * rows + r]);
      keys[b] = key;
      for (uint32_t e = heads[key & (n_heads - 1)]; e != UINT32_MAX; e = entries[e].next) {
        if (entries[e].key != key) continue;
        const uint32_t *sk = j.sigs + (size_t)entries[e].index * (size_t)P;
        int same = 0;
        for (int p = 0; p < P; p++) same += si[p] == sk[p];
        float sim = (float)same / (float)P;
        if (sim >= t) {
          dup = entries[e].index;
          best = sim;
          break;
        }
      }
    }
    if (dup != SIZE_MAX) {
      keep[i] = 0;
      rc = add_pair(pairs, n_pairs, &cap, (vkft_dedup_pair){i, dup, best, 0});
      continue;
    }
    for (int b = 0; b < bands; b++) {
      size_t h = keys[b] & (n_heads - 1);
      entries[n_entries] = (bucket_entry){keys[b], (uint32_t)i, heads[h]};
      heads[h] = (uint32_t)n_entries++;
    }
  }
  free(j.sigs);
  free(heads);
  free(entries);
  return rc;
}
