/* The training loop: dataset -> packed micro-batches -> one recorded stream per optimizer step
 * (forward, loss, backward for every micro-batch, global gradient norm and clipping, AdamW)
 * -> metrics.jsonl, checkpoints (atomic, resumable bit for bit) and the final adapter or model
 * in the formats PEFT and transformers load. Nothing here prints: progress goes to callbacks. */
#ifndef VKFT_TRAINER_H
#define VKFT_TRAINER_H

#include "vkft/model.h"
#include "vkft/ops.h"
#include "vkft/train_config.h"

typedef struct vkft_step_report {
  int64_t step, total_steps;
  double loss, lr, grad_norm;
  int64_t tokens, trained_tokens;
  double tokens_per_s, elapsed_s, eta_s;
  int is_eval; /* an eval line: loss is eval_loss, trained_tokens eval_tokens */
} vkft_step_report;

typedef struct vkft_train_options {
  const char *resume; /* NULL, "auto" (latest checkpoint in output.dir) or a checkpoint folder */
  int overwrite;      /* a fresh run may replace an earlier run's results in output.dir */
  int dry_run; /* print the memory plan (through on_message) and stop; allocates nothing on the
                  device, and the backend may be NULL (no device: the plan without a verdict) */
  int skip_selftest; /* skip the op self-check at start-up */
  void (*on_step)(const vkft_step_report *report, void *user);
  void (*on_message)(const char *line, void *user); /* one line of information */
  void *user;
  int64_t stop_after; /* tests: behave as if interrupted after this many steps (0: never) */
  /* the learning-rate range test instead of training (include/vkft/lr_find.h): the ramp's
   * steps, OUT/lr_find.jsonl and OUT/lr_find.html; no checkpoint, eval, adapter or report */
  const struct vkft_lr_find_options *lr_find;
  struct vkft_dist *dist; /* data parallel: the job this rank is part of (vkft/dist.h); NULL:
                             one process. Rank 0 writes the output folder, the others nothing. */
} vkft_train_options;

typedef struct vkft_train_result {
  int64_t steps_done;
  int interrupted; /* stopped early by vkft_interrupted(): the checkpoint to resume from is written
                    */
} vkft_train_result;

/* The model a run of cfg loads, for micro-batches of rows x max_len tokens (a preference pair is
 * two rows): vkft_train's, and `vkft plan`'s with plan_only set. */
vkft_model_desc vkft_train_model_desc(const vkft_train_config *cfg, int64_t rows, int64_t max_len);

/* The model a run of cfg loads at micro-batch mb (sequences; pairs for a preference objective)
 * of max_len tokens on `world` ranks: vkft_train_model_desc with the gradient accumulation the
 * run derives from train.batch_size (vkft_train_config_grad_accum: an error when the config cannot
 * run at mb) and the vocabulary grown to vocab_size by tokens.add (0: the model's own). What
 * train.micro_batch "auto" and `vkft plan` plan with; vkft_train loads the same model
 * (vkft_train_model_desc with the grad_accum it resolved and its vocabulary). */
int vkft_train_model_desc_at(const vkft_train_config *cfg, int64_t mb, int64_t max_len, int world,
                             int64_t vocab_size, vkft_model_desc *md);

/* The vocabulary a run of cfg trains with when tokens.add grows the model's (model_vocab, from its
 * config.json): the tokenizer's size with the new tokens added; 0 when nothing is added. */
int vkft_train_vocab_size(const vkft_train_config *cfg, int64_t model_vocab, int64_t *vocab);

/* The device bytes a run of the model desc holds (vkft_train_model_desc's, possibly changed):
 * its memory plan — weights, trainable tensors, gradients, activations, scratch — and AdamW's
 * two fp32 moments per trainable value, counted without allocating. */
int vkft_train_plan_bytes(const vkft_model_desc *desc, uint64_t *bytes);

/* Runs the whole job on the backend. Interruption (SIGINT/SIGTERM/SIGHUP through
 * vkft_interrupted()) finishes the current step, writes a checkpoint and returns VKFT_OK with
 * result->interrupted set — unless it was the last step: then the run finishes normally.
 * result may be NULL. */
int vkft_train(vkft_backend *be, const vkft_train_config *cfg, const vkft_train_options *opt,
               vkft_train_result *result);

#endif
