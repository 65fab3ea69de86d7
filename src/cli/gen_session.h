/* What every command that runs a model for generation or scoring opens, in one place: the
 * tokenizer (the adapter's when it brings one), the chat template, the device and backend, the
 * model with its adapter, and for generation the KV-cache plan and the end-of-sequence ids.
 * Used by generate, eval, bench generate and the data tools synth, judge, score, explore. */
#ifndef VKFT_CLI_GEN_SESSION_H
#define VKFT_CLI_GEN_SESSION_H

#include "commands.h"

#include "vkft/dataset.h"
#include "vkft/gen.h"

typedef struct gen_session {
  const char *model_dir, *adapter_dir;
  cli_device_opts dev_opts;
  vkft_model_config cfg; /* vocab_size grown to the tokenizer's (an adapter's added tokens) */
  vkft_tokenizer *tok;
  vkft_chat_template *tmpl; /* NULL when the model has none and none was named */
  cJSON *special;           /* the template's special tokens */
  vkft_chat_template_options chat_options;
  vkft_device *dev;
  vkft_backend *be;
  vkft_model *model;
  vkft_gen_plan plan;
  int32_t *eos;
  int n_eos;
} gen_session;

/* The config, tokenizer and chat template (template: a built-in name, a .jinja file or a model
 * folder; NULL: the model's own, or none). Prints nothing; VKFT_ERR with a message. */
int gen_session_open_text(gen_session *s, const cli_device_opts *dev_opts, const char *model_dir,
                          const char *adapter_dir, const char *template_name);
/* The model's description for inference (its adapter's LoRA fields filled in). */
int gen_session_model_desc(const gen_session *s, vkft_model_desc *desc);
/* The device and the model loaded by desc (its adapter applied). */
int gen_session_open_model(gen_session *s, const vkft_model_desc *desc);
/* Plans the KV cache for slots sequences of ctx positions within the device's memory and loads
 * the model for generation. */
int gen_session_open_generator(gen_session *s, int64_t slots, int64_t ctx);
/* The prompt description of the session (defaults: the given sampling). */
vkft_prompt_desc gen_session_prompts(const gen_session *s, const vkft_sampling *defaults);
void gen_session_close(gen_session *s);

/* What `vkft eval` and `vkft data score` read (cmd_eval.c): a model, its adapter and a dataset. */
typedef struct cli_eval_opts {
  const char *model, *adapter, *data, *format, *template_name, *train_on;
  int max_len;
  int keep_text; /* the examples keep their prompt and reply text (data explore) */
} cli_eval_opts;
/* Takes argv[*i] (and its value, moving *i on) when it is one of those options: 1 when taken,
 * 0 when not, -1 for a bad value (with a message). */
int cli_eval_take_opt(cli_eval_opts *o, int argc, char **argv, int *i);
/* The tokenizer (in s->tok; none when neither folder has one), the dataset (keep_raw: with
 * each record's bytes), the device and the model with its adapter, sized for the dataset's
 * longest example and micro_batches slots. On failure *ds may be set: free it before closing
 * the session (the dataset borrows the session's tokenizer). */
int cli_eval_open(const cli_eval_opts *o, const cli_device_opts *dev_opts, int keep_raw,
                  int micro_batches, gen_session *s, vkft_dataset **ds);

#endif
