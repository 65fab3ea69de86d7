/* Batched generation (src/gen): many prompts at once over the model's slotted KV cache, with
 * continuous batching (a finished sequence's slot takes the next prompt at once) and sampling
 * settings of its own for every request.
 *
 *   vkft_gen_plan plan;   // how many sequences fit in the device's memory
 *   vkft_gen_plan_cache(&(vkft_gen_plan_desc){.model = {.dir = dir}, .slots = 32, .ctx = 512,
 *                                             .budget_bytes = vkft_gen_device_budget(dev)},
 *                       &plan);
 *   vkft_model_load(be, &plan.model, &m);
 *   vkft_gen_run(&(vkft_gen_desc){.model = m, .plan = &plan, .tokenizer = tok, ...},
 *                requests, n, emit, ctx, &stats);
 *
 * Every step is one forward over the new tokens of every active sequence: one token of each
 * sequence that is generating, and pieces of the prompts of sequences that are starting (a
 * prompt longer than what is left of the step's token budget continues in the next step). A
 * token's logits do not depend on the other tokens of its step (vkft_model_decode_step), so a
 * request's greedy output is the same whatever else is in the batch. */
#ifndef VKFT_GEN_H
#define VKFT_GEN_H

#include "vkft/chat_template.h"
#include "vkft/dataset.h"
#include "vkft/model.h"
#include "vkft/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

/* ---- sampling (src/gen/sampler.c) ----
 * The logits processors in the order transformers applies them (generate(): the repetition
 * penalty, then temperature, top-k, top-p, min-p), then one draw. */
typedef struct vkft_sampling {
  double temperature;        /* 0: greedy (the highest logit, the lowest id on ties) */
  int64_t top_k;             /* keep the k most probable ids; 0: off */
  double top_p;              /* keep the fewest most probable ids whose mass reaches p; 1: off */
  double min_p;              /* drop ids less probable than min_p x the top one; 0: off */
  double repetition_penalty; /* CTRL's: the logit of every id already in the sequence (prompt
                                included) divided by it when positive, multiplied when negative;
                                1: off */
  uint64_t seed;             /* sample i of a request draws from its own stream of seed, i */
  int64_t max_new_tokens;
  int n;                   /* samples of the request (each its own sequence) */
  const char *const *stop; /* strings that end the generation (not included in the text) */
  int n_stop;
} vkft_sampling;

/* The defaults: greedy, no filter, 128 new tokens, one sample, seed 42. */
vkft_sampling vkft_sampling_default(void);
/* Checks the ranges (temperature >= 0, top_p in (0, 1], min_p in [0, 1), penalty > 0, ...);
 * `where` prefixes the message. */
int vkft_sampling_check(const vkft_sampling *s, const char *where);

typedef struct vkft_sampler_scratch vkft_sampler_scratch;
int vkft_sampler_scratch_new(int64_t V, vkft_sampler_scratch **out);
void vkft_sampler_scratch_free(vkft_sampler_scratch *w);
/* The stream of sample `index` of a request with this seed (index 0: the seed itself). */
uint64_t vkft_sampler_stream(uint64_t seed, int index);
/* Draws the next id from logits (V, modified in place by the penalty) given the sequence so far
 * (history: prompt and generated ids); rng advances by one draw when sampling. */
int32_t vkft_sample(const vkft_sampling *s, float *logits, int64_t V, const int32_t *history,
                    int64_t n_history, uint64_t *rng, vkft_sampler_scratch *w);

/* ---- the cache plan (src/gen/plan.c) ---- */
typedef struct vkft_gen_plan_desc {
  vkft_model_desc model; /* dir, the adapter's LoRA fields, vocab_size; the rest is planned */
  int64_t slots;         /* sequences wanted at once */
  int64_t ctx;           /* positions per sequence: longest prompt + max_new_tokens */
  int64_t step_tokens;   /* tokens per step (0: max(slots, 256)) */
  uint64_t budget_bytes; /* device memory to plan within (0: unlimited) */
} vkft_gen_plan_desc;

typedef struct vkft_gen_plan {
  int64_t slots, ctx, step_tokens;
  uint64_t cache_bytes;  /* keys and values of every layer, all slots */
  uint64_t other_bytes;  /* weights, activations of one step, scratch */
  vkft_model_desc model; /* desc.model with the KV cache, slots, ctx and step tokens set */
} vkft_gen_plan;

/* The most slots (<= desc.slots) whose KV cache fits beside the rest of the model in the
 * budget; fails when not even one does. */
int vkft_gen_plan_cache(const vkft_gen_plan_desc *desc, vkft_gen_plan *plan);
/* What to plan within on a device: 90% of its largest device-local heap. */
uint64_t vkft_gen_device_budget(const vkft_device *dev);

/* ---- the engine (src/gen/engine.c) ---- */
typedef struct vkft_gen_request {
  const int32_t *prompt; /* token ids (at least one) */
  int64_t prompt_len;
  vkft_sampling sampling;
} vkft_gen_request;

typedef enum vkft_finish {
  VKFT_FINISH_EOS,    /* an end-of-sequence id (not included in the text) */
  VKFT_FINISH_STOP,   /* a stop string */
  VKFT_FINISH_LENGTH, /* max_new_tokens, or the context is full */
} vkft_finish;
/* "stop" for EOS and stop strings (OpenAI's finish_reason), "length" otherwise. */
const char *vkft_finish_name(vkft_finish f);

typedef struct vkft_gen_result {
  size_t request;
  int sample;
  const int32_t *ids; /* the generated ids (an EOS id not included) */
  int64_t n_ids;
  const char *text; /* their text, cut before a stop string; NUL-terminated */
  size_t text_len;
  vkft_finish finish;
} vkft_gen_result;

/* Receives each finished sequence (in the order they finish); the result's memory is the
 * engine's until the call returns. A non-zero return stops the run with that status. */
typedef int (*vkft_gen_emit)(void *ctx, const vkft_gen_result *r);

typedef struct vkft_gen_stats {
  int64_t steps, prompt_tokens, generated_tokens;
  double seconds;        /* the whole run */
  double device_seconds; /* inside decode steps (upload, forward, logits read back) */
  int64_t max_active;    /* most sequences in one step */
} vkft_gen_stats;

typedef struct vkft_gen_desc {
  vkft_model *model; /* loaded with vkft_gen_model_desc(plan) */
  const vkft_gen_plan *plan;
  const vkft_tokenizer *tokenizer;
  const int32_t *eos_ids; /* ids that end a sequence */
  int n_eos;
} vkft_gen_desc;

/* Generates every sample of every request. Requests must fit the plan: prompt_len +
 * max_new_tokens may exceed plan.ctx (generation then ends at the context, "length"), but a
 * prompt must leave room for one new token. */
int vkft_gen_run(const vkft_gen_desc *desc, const vkft_gen_request *requests, size_t n,
                 vkft_gen_emit emit, void *ctx, vkft_gen_stats *stats);

/* The ids that end generation for a model: the tokenizer's EOS, config.json's eos_token_id and
 * generation_config.json's (a number or a list), without repeats. *ids is malloc'd. */
int vkft_gen_eos_ids(const char *model_dir, const vkft_tokenizer *tok, int32_t **ids, int *n);

/* ---- prompts from records (src/gen/prompts.c) ----
 * A prompt record is one of
 *   {"messages": [{"role", "content"}, ...]}   chat: rendered with the chat template and its
 *                                              generation prompt (apply_chat_template with
 *                                              add_generation_prompt=True), no special tokens
 *                                              added by the tokenizer
 *   {"instruction", "input"?, "system"?}       alpaca: one user message (instruction + "\n" +
 *                                              input when input is not empty), then as chat
 *   {"prompt": "text"}                         plain text, encoded with the tokenizer's special
 *                                              tokens (the BOS of Llama/Mistral)
 * and may carry its own sampling: "temperature", "top_k", "top_p", "min_p",
 * "repetition_penalty", "seed", "max_new_tokens", "n" (numbers) and "stop" (a string or a list
 * of strings), overriding the defaults. */
typedef struct vkft_prompt_desc {
  const vkft_tokenizer *tokenizer;
  const vkft_chat_template *chat_template; /* NULL: chat records are refused */
  const cJSON *special_tokens;             /* bos_token, eos_token... for the template */
  const vkft_chat_template_options *options;
  vkft_sampling defaults;
} vkft_prompt_desc;

typedef struct vkft_prompt_set {
  vkft_gen_request *requests; /* one per record */
  size_t n;
  cJSON **messages; /* per record: the chat messages it was rendered from (NULL: text) */
  int32_t **ids;
  const char ***stops;
  int64_t longest; /* the most prompt + max_new_tokens of any record */
} vkft_prompt_set;

/* One chat (messages) rendered with the generation prompt into *text (malloc'd). */
int vkft_prompt_render_chat(const vkft_prompt_desc *d, const cJSON *messages, char **text,
                            size_t *len);
/* The requests of every record; errors name "path:line" and the field. */
int vkft_prompt_set_build(const vkft_prompt_desc *d, const vkft_records *records, const char *path,
                          vkft_prompt_set *out);
void vkft_prompt_set_free(vkft_prompt_set *p);

#endif
