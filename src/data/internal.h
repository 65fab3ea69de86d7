/* Internal interfaces between the dataset files: record splitting (dataset_read.c), formats
 * (dataset_format.c), token byte offsets (dataset_offsets.c) and example building
 * (dataset_example.c). */
#ifndef VKFT_DATASET_INTERNAL_H
#define VKFT_DATASET_INTERNAL_H

#include "vkft/chat_template.h"
#include "vkft/dataset.h"
#include "vkft/tokenizer.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* ---- dataset_read.c: a file's bytes -> record byte ranges ---- */

typedef struct data_span {
  size_t off, len;
  uint32_t line, index;
  const char *error; /* set (static text) when the record could not even be delimited */
} data_span;

/* Splits a JSON array or JSON Lines buffer into records. A buffer that is neither (or where no
 * line parses) is an error naming path. *is_array tells which it was. */
int data_split_records(const char *path, const char *buf, size_t size, data_span **spans, size_t *n,
                       int *is_array);

/* ---- dataset_format.c: a parsed record -> a sample in one common shape ---- */

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
/* For the fallback templates, which know no tools or reasoning: tool calls become JSON lines
 * in the content and reasoning a leading "<think>\n...\n</think>\n\n". */
int data_sample_flatten(data_sample *s);
/* keep_text views: roles joined by ",", untrained and trained contents joined by "\n". */
int data_sample_text(const data_sample *s, char **roles, char **prompt_text, char **reply_text);

/* ---- dataset_offsets.c: byte offset in the text of each token ---- */

/* offsets[i] = byte offset in text of token i's first byte. Tokens that the text cannot
 * account for (a normalizer changed the bytes) keep the running offset; returns the number of
 * such tokens (0 when the ids reproduce the text exactly). */
size_t data_token_offsets(const vkft_tokenizer *tok, const char *text, size_t len,
                          const int32_t *ids, size_t n, uint32_t *offsets);

/* ---- dataset_example.c: sample -> example ---- */

typedef struct data_builder {
  vkft_tokenizer *tok;
  int64_t vocab_size; /* ids of pre-tokenized records must be below it (0: the tokenizer's) */
  /* tmpl[0]: the chat template; for a model without one, the built-in chatml (TRL's
   * setup_chat_format), and tmpl[1] the built-in alpaca used for alpaca records. */
  vkft_chat_template *tmpl[2];
  char eot_text[2][64]; /* what closes an assistant turn in each ("<|im_end|>") */
  int fallback_template;
  const char *template_problem; /* the model's chat_template is unusable (the tokenizer's text) */
  cJSON *context;                   /* special tokens and options passed to every render */
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
/* Assistant spans [start, end) of a chat sample in its full render (exposed for tests);
 * *render and *spans (pairs) are malloc'd. */
int data_chat_spans(const data_builder *b, const data_sample *s, char **render, size_t *len,
                    size_t **spans, size_t *n_spans);

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
