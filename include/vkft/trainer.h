/* The training loop: dataset -> packed micro-batches -> one recorded stream per optimizer step
 * (forward, loss, backward for every micro-batch, global gradient norm and clipping, AdamW)
 * -> metrics.jsonl, checkpoints (atomic, resumable bit for bit) and the final adapter or model
 * in the formats PEFT and transformers load. Nothing here prints: progress goes to callbacks. */
#ifndef VKFT_TRAINER_H
#define VKFT_TRAINER_H

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
  int dry_run;        /* print the memory plan (through on_message) and stop */
  int skip_selftest;  /* skip the op self-check at start-up */
  void (*on_step)(const vkft_step_report *report, void *user);
  void (*on_message)(const char *line, void *user); /* one line of information */
  void *user;
  int64_t stop_after; /* tests: behave as if interrupted after this many steps (0: never) */
} vkft_train_options;

/* Runs the whole job on the backend. Returns VKFT_OK also when interrupted (SIGINT/SIGTERM
 * through vkft_interrupted(): the current step finishes, a checkpoint is written). */
int vkft_train(vkft_backend *be, const vkft_train_config *cfg, const vkft_train_options *opt);

#endif
