/* What `vkft data synth` and `vkft data judge` share: their generation options, their prompt
 * templates (a file or the shipped one), and generating the replies to a list of prompt texts with
 * the session's model (each text the user message under the model's chat template when it has one,
 * else a plain text prompt), through the batched engine. */
#ifndef VKFT_CLI_DATAGEN_H
#define VKFT_CLI_DATAGEN_H

#include "gen_session.h"

#include "vkft/datagen.h"
#include "vkft/gen.h"

/* The options of a command that generates with a model: --model --adapter --chat-template
 * --temperature --top-p --max-new-tokens --seed --max-batch. */
typedef struct datagen_opts {
  const char *model, *adapter, *chat_template;
  vkft_sampling sampling;
  int64_t max_batch;
} datagen_opts;

/* vkft_sampling_default() with 256 new tokens, batches of 32. */
datagen_opts datagen_opts_default(void);
/* When opt is one of the options above: reads its value v (not NULL) into g and returns 1, or
 * VKFT_ERR for a bad value (the error names the option). 0 for any other option. */
int datagen_parse_option(datagen_opts *g, const char *opt, const char *v);

/* The template in file (NULL: the shipped one named builtin), its final newline dropped, with
 * every placeholder one of names and each of the first n_required names used. Errors name the
 * file (or option). *text malloc'd. */
int datagen_load_template(const char *file, const char *builtin, const char *option,
                          const char *const *names, size_t n_names, size_t n_required, char **text);

typedef struct datagen_prompt {
  const char *text;
  uint64_t seed;
  int64_t max_new_tokens;
} datagen_prompt;

typedef struct datagen_reply {
  char *text; /* malloc'd; NULL when the prompt did not fit the model's context */
  vkft_finish finish;
  int64_t prompt_tokens, completion_tokens;
} datagen_reply;

/* The prompt's tokens as it will be generated from (chat-rendered or plain). */
int datagen_prompt_tokens(const gen_session *s, const char *text, int64_t *n);
/* Generates a reply to every prompt with the sampling settings of defaults (and each prompt's
 * seed and max_new_tokens). The first call opens the generator (slots: max_batch, positions:
 * the longest prompt + its new tokens, at least min_ctx, at most the model's). A prompt that
 * leaves no room for a new token gets text NULL. Tokens and time add to *stats. */
int datagen_generate(gen_session *s, const vkft_sampling *defaults, const datagen_prompt *prompts,
                     size_t n, int64_t max_batch, int64_t min_ctx, datagen_reply *replies,
                     vkft_gen_stats *stats);
void datagen_replies_free(datagen_reply *replies, size_t n);

#endif
