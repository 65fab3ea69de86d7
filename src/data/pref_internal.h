/* Internal interfaces between the preference-data files: formats (pref_format.c), pairs of ids
 * (pref_example.c), loading (pref_dataset.c) and batches (pref_batch.c). */
#ifndef VKFT_PREF_INTERNAL_H
#define VKFT_PREF_INTERNAL_H

#include "internal.h"
#include "vkft/pref.h"

/* ---- pref_format.c: a parsed record -> a preference sample ---- */

enum { PREF_PROMPT, PREF_CHOSEN, PREF_REJECTED };

typedef struct pref_sample {
  vkft_pref_format format;
  int chat;
  /* chat: the messages of each part in OpenAI form (prompt also holds the tools; its format is
   * VKFT_FORMAT_ALPACA for alpaca_ranking, which picks the fallback alpaca template) */
  data_sample part[3];
  const cJSON *kwargs; /* chat_template_kwargs (borrowed from the record) or NULL */
  /* text: prompt, chosen, rejected (borrowed from the record, not NUL-terminated) */
  const char *text[3];
  size_t len[3];
  /* trl_tokenized: the ids as given, and the leading completion tokens given as not trained */
  int32_t *ids[3];
  size_t n_ids[3];
  uint32_t masked[3];
} pref_sample;

/* Format of one record from its keys; VKFT_PREF_FORMAT_AUTO if it is not a preference record. */
vkft_pref_format pref_detect_format(const cJSON *record);
/* Converts record (kept alive by the caller: strings are borrowed) in format fmt; implicit
 * prompts are extracted here. VKFT_ERR with a message naming the field otherwise. */
int pref_sample_from_json(const cJSON *record, vkft_pref_format fmt, pref_sample *s);
void pref_sample_free(pref_sample *s);
/* For the fallback templates: tool calls and reasoning folded into the content. */
int pref_sample_flatten(pref_sample *s);

/* ---- pref_example.c: sample -> pair of ids ---- */

typedef struct pref_builder {
  const data_builder *base; /* template, render context, post-processor, max_len, vocab */
  vkft_pref_style style;
  int max_prompt_len, max_completion_len;
} pref_builder;

/* Fills ex's ids, lengths, counts and status (OK or EMPTY). VKFT_ERR with a message if the
 * sample cannot be rendered or tokenized as the style needs. Thread-safe. */
int pref_build_example(const pref_builder *b, const pref_sample *s, vkft_pref_example *ex);

#endif
