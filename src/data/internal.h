/* Internal interfaces between the dataset files: record splitting (read.c), the shared loading
 * machinery (load.c), formats (format.c), token byte offsets (offsets.c), example building
 * (example.c), epoch draws (pack.c); the preference files have theirs in pref_internal.h. */
#ifndef VKFT_DATASET_INTERNAL_H
#define VKFT_DATASET_INTERNAL_H

#include "vkft/chat_template.h"
#include "vkft/dataset.h"
#include "vkft/tokenizer.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* ---- read.c: a file's bytes -> record byte ranges ---- */

typedef struct data_span {
  size_t off, len;
  uint32_t line, index;
  const char *error; /* set (static text) when the record could not even be delimited */
} data_span;

/* Splits a JSON array or JSON Lines buffer into records. A buffer that is neither (or where no
 * line parses) is an error naming path. *is_array tells which it was. */
int data_split_records(const char *path, const char *buf, size_t size, data_span **spans, size_t *n,
                       int *is_array);

/* ---- load.c: the loading machinery SFT and preference datasets share ---- */

/* Reads path and splits it into records (see data_split_records); *data is the caller's. */
int data_read_file(const char *path, char **data, size_t *size, data_span **spans, size_t *n,
                   int *is_array);
/* The first non-zero detect(record) over the first 16 records, or 0. */
int data_detect_first(const char *data, const data_span *spans, size_t n,
                      int (*detect)(const cJSON *record));
/* Parses a record that must be exactly one JSON value; VKFT_ERR with the message otherwise. */
int data_parse_record(const char *raw, size_t len, cJSON **out);
/* "file:line: " ("file:line: record N: " in a JSON array) into out (snprintf's rules); returns
 * its length. */
int data_issue_location(const char *path, int is_array, uint32_t line, uint32_t index, char *out,
                        size_t n);
/* The location followed by msg, malloc'd (NULL if out of memory). */
char *data_issue_text(const char *path, int is_array, uint32_t line, uint32_t index,
                      const char *msg);
/* A dataset's issue list: the kept messages, how many, how many in all, and the most kept. */
typedef struct data_issues {
  char ***items;
  size_t *n, *total;
  size_t max;
} data_issues;
/* The per-record issues (issue[i]: NULL or record i's malloc'd text) in record order, one line
 * per distinct message: when many records fail the same way (a chat template that raises for
 * every record) the first is reported with the count of the others. location_len(ctx, i) is the
 * length of issue i's location prefix. Takes the strings it keeps (sets them NULL in issue). */
int data_add_record_issues(data_issues *list, char **issue, size_t n,
                           size_t (*location_len)(const void *ctx, size_t i), const void *ctx);

/* Runs fn(ctx, i, pool) for every i in [0, n) on up to `threads` threads (<= 0: one per CPU),
 * this thread working too. A record's work that fails for a reason that is not the record's
 * fault calls data_pool_fail_if_fatal, and the whole run then fails with that message: dropping
 * the record would silently train on other data. */
typedef struct data_pool data_pool;
typedef void (*data_pool_fn)(void *ctx, size_t i, data_pool *pool);
int data_pool_run(size_t n, int threads, data_pool_fn fn, void *ctx);
/* If the current error is an out-of-memory, keeps it (the first one) as "path:line: message". */
void data_pool_fail_if_fatal(data_pool *pool, const char *path, uint32_t line);

/* model_dir's tokenizer, needed for for_path's records of format for_format (named when the
 * folder has no tokenizer.json). */
int data_load_tokenizer(const char *model_dir, const char *for_path, const char *for_format,
                        vkft_tokenizer **out);
/* The pad token: a known pad token, else EOS, else 0. */
int32_t data_pad_id(const vkft_tokenizer *tok);
/* A seeded eval_fraction of ids to *eval (at least one when eval_fraction > 0 and n >= 2, never
 * all), the rest to *train; both malloc'd, both in input order. */
int data_split_ids(const uint32_t *ids, size_t n, double eval_fraction, uint64_t seed,
                   uint32_t **train, size_t *n_train, uint32_t **eval, size_t *n_eval);

/* ---- format.c: a parsed record -> a sample in one common shape ---- */

typedef struct data_sample {
  vkft_data_format format;
  int chat;               /* rendered through a chat template */
  cJSON *messages;        /* chat: OpenAI-form messages (owned) */
  cJSON *tools;           /* chat: tool schemas or NULL (owned) */
  unsigned char *trained; /* chat: per message, 1 = an assistant reply to train */
  size_t n_messages;
  const char *prompt, *completion; /* prompt_completion (strings) and text (prompt "") */
  size_t prompt_len, completion_len;
  int32_t *ids, *labels; /* tokens (owned); labels NULL when absent */
  size_t n_ids;
} data_sample;

/* Format of one record from its keys; VKFT_FORMAT_AUTO if none fits. */
vkft_data_format data_detect_format(const cJSON *record);
/* Converts record (which the sample borrows strings from: keep it alive) in format fmt. On a
 * missing or mistyped field returns VKFT_ERR with a message (without location). */
int data_sample_from_json(const cJSON *record, vkft_data_format fmt, data_sample *s);
void data_sample_free(data_sample *s);
/* Chat-building pieces, shared with the preference formats (pref_format.c): messages from a JSON
 * list (role/content or from/value; force_untrained marks them all untrained), one message, the
 * record's tools (a JSON string or list; bare function schemas wrapped), and alpaca's system,
 * history and user turn without the reply. Errors name the key but not the record. */
int data_sample_add_messages(data_sample *s, const cJSON *list, const char *key,
                             int force_untrained);
int data_sample_add_message(data_sample *s, const char *role, const char *content, int trained);
int data_sample_add_tools(data_sample *s, const cJSON *tools);
int data_sample_alpaca_prompt(const cJSON *record, data_sample *s);
/* For the fallback templates, which know no tools or reasoning: tool calls become JSON lines
 * in the content and reasoning a leading "<think>\n...\n</think>\n\n". */
int data_sample_flatten(data_sample *s);
/* keep_text views: roles joined by ",", untrained and trained contents joined by "\n". */
int data_sample_text(const data_sample *s, char **roles, char **prompt_text, char **reply_text);

/* ---- offsets.c: byte offset in the text of each token ---- */

/* offsets[i] = byte offset in text of token i's first byte. Tokens that the text cannot
 * account for (a normalizer changed the bytes) keep the running offset; returns the number of
 * such tokens (0 when the ids reproduce the text exactly). */
size_t data_token_offsets(const vkft_tokenizer *tok, const char *text, size_t len,
                          const int32_t *ids, size_t n, uint32_t *offsets);

/* ---- example.c: sample -> example ---- */

typedef struct data_builder {
  vkft_tokenizer *tok;
  int64_t vocab_size; /* ids of pre-tokenized records must be below it (0: the tokenizer's) */
  /* tmpl[0]: the chat template; for a model without one, the built-in chatml (TRL's
   * setup_chat_format), and tmpl[1] the built-in alpaca used for alpaca records. */
  vkft_chat_template *tmpl[2];
  char eot_text[2][64]; /* what closes an assistant turn in each ("<|im_end|>") */
  int fallback_template;
  const char *template_problem; /* the model's chat_template is unusable (the tokenizer's text) */
  cJSON *context;               /* special tokens and options passed to every render */
  int32_t *prefix_ids, *suffix_ids; /* what the post-processor adds around a text */
  size_t n_prefix, n_suffix;
  int32_t eos_id;
  int max_len;
  vkft_train_on train_on;
} data_builder;

int data_builder_init(data_builder *b, const vkft_dataset_desc *desc, vkft_tokenizer *tok);
void data_builder_free(data_builder *b);
/* Fills ex's ids, labels, len, full_len, n_trained and status (OK or EMPTY). VKFT_ERR with a
 * message if the sample cannot be rendered or encoded. Thread-safe for a shared builder. */
int data_build_example(const data_builder *b, const data_sample *s, vkft_example *ex);
/* Renders messages (any JSON array of OpenAI-form messages) through the template s's format uses,
 * with s's tools, the builder's context, kwargs (a JSON object or NULL: extra template variables,
 * TRL's chat_template_kwargs) and add_generation_prompt = gen. *out is malloc'd. */
int data_render_messages(const data_builder *b, const data_sample *s, const cJSON *messages,
                         const cJSON *kwargs, int gen, char **out, size_t *len);
/* Assistant spans [start, end) of a chat sample in its full render (exposed for tests);
 * *render and *spans (pairs) are malloc'd. */
int data_chat_spans(const data_builder *b, const data_sample *s, char **render, size_t *len,
                    size_t **spans, size_t *n_spans);

/* ---- pack.c: epoch draws and length grouping, shared with the preference batcher ---- */

/* Examples of a file an epoch draws at weight w from its n: floor(w) * n + round(frac(w) * n). */
size_t data_file_draws(double w, size_t n);
/* Weights (per file; files[i] is the file of example i) must draw something from every file
 * that has examples, and at most 2^28 examples in all. */
int data_check_mix(const uint32_t *files, size_t n_ids, const double *weights, size_t n_files,
                   const char *const *paths);
/* The ids an epoch draws: floor(w) copies of each, plus a seeded round(frac(w) * n) more of
 * each file (weights NULL: 1), shuffled by (seed, epoch) unless shuffle is 0. *order malloc'd. */
int data_epoch_draw(const uint32_t *ids, const uint32_t *files, size_t n_ids, const double *weights,
                    size_t n_files, int shuffle, uint64_t seed, uint64_t epoch, uint32_t **order,
                    size_t *n_order);
/* Batches of per_batch items of similar lengths: windows of 32 batches of items sorted longest
 * first (ties in the given order), cut into batches, the batches then in a seeded random order
 * (drawn from *state; given order when shuffle is 0). out: the n items batch after batch;
 * batch_start: the first item of each batch and n at the end (room for n / per_batch + 2). */
int data_group_by_length(const uint32_t *items, const uint32_t *lens, size_t n, size_t per_batch,
                         int shuffle, uint64_t *state, uint32_t *out, size_t *batch_start,
                         size_t *n_batches);

/* ---- seeded random numbers (splitmix64): the same seed gives the same data order on every
 * platform, which rand() does not ---- */

static inline uint64_t data_rng_next(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0, without modulo bias. */
static inline uint64_t data_rng_below(uint64_t *state, uint64_t n) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t r;
  do r = data_rng_next(state);
  while (r >= limit);
  return r % n;
}

static inline void data_shuffle_u32(uint32_t *a, size_t n, uint64_t *state) {
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)data_rng_below(state, i);
    uint32_t t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
  }
}

#endif
