/* The record-loading machinery that SFT datasets (dataset.c) and preference datasets
 * (pref_dataset.c) share: a file's records and the format its first records show, one record
 * parsed as exactly one JSON value, per-record work on a pool of threads (where an out-of-memory
 * fails the whole load instead of dropping the record), the "file:line: message" issue list, the
 * tokenizer of a model folder, the pad token, and the seeded train/eval split. */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int data_read_file(const char *path, char **data, size_t *size, data_span **spans, size_t *n,
                   int *is_array) {
  *data = NULL;
  *spans = NULL;
  *n = 0;
  if (vkft_file_read(path, data, size)) return VKFT_ERR;
  if (data_split_records(path, *data, *size, spans, n, is_array)) {
    free(*data);
    *data = NULL;
    return VKFT_ERR;
  }
  return VKFT_OK;
}

int data_detect_first(const char *data, const data_span *spans, size_t n,
                      int (*detect)(const cJSON *record)) {
  int found = 0;
  for (size_t i = 0; i < n && i < 16 && !found; i++) {
    if (spans[i].error) continue;
    cJSON *json = cJSON_ParseWithLength(data + spans[i].off, spans[i].len);
    found = detect(json);
    cJSON_Delete(json);
  }
  return found;
}

int data_parse_record(const char *raw, size_t len, cJSON **out) {
  /* "{...} {...}" on a line is an error, not the first object with the rest dropped */
  const char *end = NULL;
  *out = cJSON_ParseWithLengthOpts(raw, len, &end, 0);
  if (!*out) return vkft_error("not valid JSON");
  while (end && end < raw + len && strchr(" \t\r\n", *end)) end++;
  if (end && end < raw + len) {
    cJSON_Delete(*out);
    *out = NULL;
    return vkft_error("text after the record's JSON value (one record per line)");
  }
  return VKFT_OK;
}

int data_issue_location(const char *path, int is_array, uint32_t line, uint32_t index, char *out,
                        size_t n) {
  if (is_array) return snprintf(out, n, "%s:%u: record %u: ", path, line, index);
  return snprintf(out, n, "%s:%u: ", path, line);
}

char *data_issue_text(const char *path, int is_array, uint32_t line, uint32_t index,
                      const char *msg) {
  size_t at = (size_t)data_issue_location(path, is_array, line, index, NULL, 0);
  size_t n = at + strlen(msg) + 1;
  char *s = malloc(n);
  if (!s) return NULL;
  data_issue_location(path, is_array, line, index, s, n);
  memcpy(s + at, msg, n - at);
  return s;
}

/* Counts an issue and keeps msg (taking it) while fewer than max are kept. */
static int issue_add(data_issues *list, char *msg) {
  (*list->total)++;
  if (!msg) return VKFT_OK;
  if (*list->n >= list->max) {
    free(msg);
    return VKFT_OK;
  }
  char **p = realloc(*list->items, (*list->n + 1) * sizeof *p);
  if (!p) {
    free(msg);
    return vkft_error_nomem();
  }
  *list->items = p;
  (*list->items)[(*list->n)++] = msg;
  return VKFT_OK;
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

int data_add_record_issues(data_issues *list, char **issue, size_t n,
                           size_t (*location_len)(const void *ctx, size_t i), const void *ctx) {
  size_t first = *list->n, distinct = 0, max = list->max;
  uint64_t *hash = malloc((max + 1) * sizeof *hash);
  size_t *more = calloc(max + 1, sizeof *more), *msg_at = malloc((max + 1) * sizeof *msg_at);
  int rc = hash && more && msg_at ? VKFT_OK : vkft_error_nomem();
  for (size_t i = 0; rc == VKFT_OK && i < n; i++) {
    if (!issue[i]) continue;
    size_t at = location_len(ctx, i), k = 0;
    uint64_t h = fnv1a(issue[i] + at);
    while (k < distinct &&
           (hash[k] != h || strcmp((*list->items)[first + k] + msg_at[k], issue[i] + at)))
      k++;
    if (k < distinct) {
      more[k]++;
      (*list->total)++;
      continue;
    }
    if (*list->n < max && distinct < max) {
      hash[distinct] = h;
      msg_at[distinct++] = at;
    }
    rc = issue_add(list, issue[i]);
    issue[i] = NULL;
  }
  for (size_t k = 0; rc == VKFT_OK && k < distinct; k++) {
    if (!more[k]) continue;
    char **text = &(*list->items)[first + k], tail[96];
    int len = snprintf(tail, sizeof tail, " (and %zu more records with this error)", more[k]);
    char *p = realloc(*text, strlen(*text) + (size_t)len + 1);
    if (!p)
      rc = vkft_error_nomem();
    else
      strcat(*text = p, tail);
  }
  free(hash);
  free(more);
  free(msg_at);
  return rc;
}

/* ---- the worker pool ---- */

struct data_pool {
  data_pool_fn fn;
  void *ctx;
  size_t n, next;
  vkft_mutex *mutex;
  vkft_errcode fatal_code;
  char fatal[512];
};

void data_pool_fail_if_fatal(data_pool *pool, const char *path, uint32_t line) {
  if (vkft_error_code() != VKFT_ERR_NOMEM) return;
  vkft_mutex_lock(pool->mutex);
  if (!pool->fatal_code) {
    pool->fatal_code = VKFT_ERR_NOMEM;
    snprintf(pool->fatal, sizeof pool->fatal, "%s:%u: %s", path, line, vkft_error_message());
  }
  vkft_mutex_unlock(pool->mutex);
}

static void pool_worker(void *arg) {
  data_pool *pool = arg;
  enum { CHUNK = 8 };
  for (;;) {
    vkft_mutex_lock(pool->mutex);
    size_t from = pool->next;
    pool->next += CHUNK;
    vkft_mutex_unlock(pool->mutex);
    if (from >= pool->n) return;
    size_t to = from + CHUNK < pool->n ? from + CHUNK : pool->n;
    for (size_t i = from; i < to; i++) pool->fn(pool->ctx, i, pool);
  }
}

int data_pool_run(size_t n, int threads, data_pool_fn fn, void *ctx) {
  if (n == 0) return VKFT_OK;
  data_pool pool = {.fn = fn, .ctx = ctx, .n = n};
  pool.mutex = vkft_mutex_create();
  if (!pool.mutex) return vkft_error("cannot create a mutex");
  if (threads <= 0) threads = vkft_cpu_count();
  if (threads < 1) threads = 1;
  if ((size_t)threads > n / 8 + 1) threads = (int)(n / 8 + 1);
  vkft_thread *th[64];
  int started = 0;
  for (int t = 1; t < threads && t < 64; t++) {
    th[started] = vkft_thread_start(pool_worker, &pool);
    if (th[started]) started++;
  }
  pool_worker(&pool); /* this thread works too */
  for (int t = 0; t < started; t++) vkft_thread_join(th[t]);
  vkft_mutex_destroy(pool.mutex);
  if (pool.fatal_code) return vkft_error_with(pool.fatal_code, "%s", pool.fatal);
  return VKFT_OK;
}

/* ---- tokenizer, pad token ---- */

int data_load_tokenizer(const char *model_dir, const char *for_path, const char *for_format,
                        vkft_tokenizer **out) {
  char path[2048];
  snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
  if (vkft_is_dir(model_dir) && !vkft_file_exists(path))
    return vkft_error("%s: missing; it is needed to tokenize %s (%s records)", path, for_path,
                      for_format);
  return vkft_tokenizer_load(model_dir, out);
}

int32_t data_pad_id(const vkft_tokenizer *tok) {
  static const char *const pad_names[] = {"<|finetune_right_pad_id|>", "<pad>", "[PAD]",
                                          "<|endoftext|>"};
  int32_t id = -1;
  for (int k = 0; k < 4 && id < 0; k++) id = vkft_tokenizer_token_id(tok, pad_names[k]);
  if (id < 0) id = vkft_tokenizer_eos_id(tok);
  return id < 0 ? 0 : id;
}

/* ---- train/eval split ---- */

int data_split_ids(const uint32_t *ids, size_t n, double eval_fraction, uint64_t seed,
                   uint32_t **train, size_t *n_train, uint32_t **eval, size_t *n_eval) {
  *train = *eval = NULL;
  *n_train = *n_eval = 0;
  if (!(eval_fraction >= 0 && eval_fraction < 1))
    return vkft_error("eval_fraction must be in [0, 1), not %g", eval_fraction);
  size_t k = (size_t)(eval_fraction * (double)n + 0.5);
  if (eval_fraction > 0 && k == 0 && n >= 2) k = 1;
  if (k >= n && n > 0) k = n - 1;
  /* A seeded choice of k eval examples; both lists stay in input order. */
  uint32_t *tr = malloc((n + 1) * sizeof *tr), *ev = malloc((n + 1) * sizeof *ev);
  uint32_t *order = malloc((n + 1) * sizeof *order);
  unsigned char *is_eval = calloc(n + 1, 1);
  if (!tr || !ev || !order || !is_eval) {
    free(tr), free(ev), free(order), free(is_eval);
    return vkft_error_nomem();
  }
  for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
  uint64_t state = seed ^ 0x5EED5EED5EEDull;
  data_shuffle_u32(order, n, &state);
  for (size_t i = 0; i < k; i++) is_eval[order[i]] = 1;
  size_t nt = 0, ne = 0;
  for (size_t i = 0; i < n; i++) {
    if (is_eval[i])
      ev[ne++] = ids[i];
    else
      tr[nt++] = ids[i];
  }
  free(order);
  free(is_eval);
  *train = tr;
  *n_train = nt;
  *eval = ev;
  *n_eval = ne;
  return VKFT_OK;
}
