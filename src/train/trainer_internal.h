/* Private state of the training loop shared by the files of src/train/: trainer.c (the loop),
 * checkpoint.c (save, verify, resume), export.c (the final adapter or model) and outdir.c (the
 * output folder's rules: lock, fresh run or resume, metrics file, saves that retry). */
#ifndef VKFT_TRAINER_INTERNAL_H
#define VKFT_TRAINER_INTERNAL_H

#include "vkft/dataset.h"
#include "vkft/dist.h"
#include "vkft/error.h"
#include "vkft/model.h"
#include "vkft/platform.h"
#include "vkft/pref.h"
#include "vkft/report.h"
#include "vkft/trainer.h"

#include <stdio.h>

typedef struct trainer {
  vkft_backend *be;
  const vkft_train_config *cfg; /* the configuration as run: `resolved` (vkft_train) */
  vkft_train_config *resolved;  /* the caller's, with micro_batch and grad_accum decided */
  const vkft_train_options *opt;
  vkft_dataset *ds;
  uint32_t *train_ids, *eval_ids;
  size_t n_train, n_eval;
  vkft_packer *packer;
  vkft_model *model;
  vkft_param *params;
  int n_params;
  vkft_tensor *adam_m, *adam_v; /* per parameter (unused for frozen ones) */
  vkft_tensor *grads;           /* the trainable gradients, for the global norm */
  int n_grads;
  vkft_tensor norm_slots, norm_out;
  /* data parallel (src/dist; both NULL for one process): the job, the gradient exchange */
  vkft_dist *dist;
  vkft_dist_grads *reducer;
  int64_t step_batches; /* micro-batches of one optimizer step over all ranks: grad_accum x N */
  int64_t max_len, rows;
  int64_t step, total_steps; /* step: optimizer updates done */
  uint64_t epoch;            /* data position: next batch is (epoch, index) */
  uint64_t index;
  int64_t tokens_seen;
  /* evaluations: the lowest eval loss and its step (0: none yet), evaluations since it improved
   * (early stopping), the step of the last one; kept in checkpoints */
  double best_eval;
  int64_t best_step, evals_without_gain, last_eval_step;
  int early_stopped;     /* the run ended by early stopping */
  double elapsed_before; /* seconds of training before this process started (resume) */
  uint32_t data_crc;     /* checksum of the examples (train and eval): a resume must match */
  vkft_batch batch;
  /* tokens.add: the tokenizer with the new tokens, which ids are new, the grown vocabulary */
  struct vkft_tokenizer *tok;
  int32_t added_ids[VKFT_CFG_MAX_LIST];
  int n_added;
  int64_t vocab_size;
  /* preference objectives (objective dpo / orpo; src/train/pref.c): the pairs, their batcher
   * (instead of ds and packer), the objective, the reference log-probs computed before training
   * (2 per pair example; NULL when DPO's reference is the base with the adapter off, in-step),
   * and the objective's metrics of the last step and eval as JSON members */
  vkft_pref_dataset *pds;
  vkft_pref_batcher *pbatcher;
  vkft_pref_batch pbatch;
  vkft_pref_objective objective;
  float *ref_logps;
  char step_extra[640], eval_extra[640];
  /* the base's quantization, for the plan and the metrics ("" when none) */
  char quant_note[128], quant_name[8];
  /* report.html: the run's lines worth keeping (trainer_message records them), its config */
  vkft_report_info *report;
  vkft_report_throttle report_throttle;
  char *config_json;
  /* --resume: the checkpoint to continue from (resume_locate; "" none) */
  char resume_dir[2048];
  /* autobatch.c's probe step: each SFT batch padded to max_len (the worst-case shape) */
  int probe;
  /* the output folder */
  vkft_lock *lock;
  char metrics_path[VKFT_CFG_PATH + 32];
} trainer;

/* One line of information through the caller's callback (printf-style). */
void trainer_message(const trainer *t, const char *fmt, ...) VKFT_PRINTF(2, 3);

/* data.eval's split (trainer.c): example i goes to eval when file_of(t, i) is eval_file, to
 * training for any other file, nowhere for -1 (unusable); `what` names an example in errors */
int trainer_split_by_file(trainer *t, size_t n, int (*file_of)(const trainer *t, size_t i),
                          int eval_file, const char *what);

/* trainer.c: the batches of t->cfg's micro_batch (packer, or pref batcher; quiet: without the
 * data-mix lines), the model and optimizer for them, and their release (the model, optimizer and
 * batcher; the data stays) */
int trainer_make_batcher(trainer *t, int quiet);
int trainer_load_model(trainer *t);
void trainer_free_model(trainer *t);

/* autobatch.c: train.micro_batch ("auto": the checkpoint's when resuming, else the largest the
 * memory plan fits, probed by one step and halved on running out of device memory) and
 * train.grad_accum (from train.batch_size) into t->resolved; sets t->rows and t->step_batches */
int trainer_resolve_batch(trainer *t);
/* Pads a batch's rows to T tokens (padding as the packer's: pad_id, ignored labels) */
int autobatch_pad(vkft_batch *b, int T, int32_t pad_id);

/* lr_find.c: the range test's loop, from a fresh start (t->opt->lr_find) */
int lr_find_run(trainer *t);

/* step.c */
int epoch_batches(trainer *t, uint64_t epoch, size_t *n); /* of the training data */
int count_steps(trainer *t,
                int64_t *steps); /* max_steps, or per epoch ceil(batches / grad_accum) */
/* the next micro-batch of the data stream into t->batch (t->pbatch), or *got = 0 at the end of
 * the epoch (a new epoch starts only when allow_new_epoch) */
int next_batch(trainer *t, int allow_new_epoch, int *got);
double step_lr(const trainer *t, int64_t step); /* the schedule's learning rate */
uint32_t step_dropout_seed(const trainer *t, int64_t step, int slot);
/* records the global gradient norm, clipping and AdamW of every trainable tensor */
int step_update(trainer *t, double lr, int64_t step);
int setup_optimizer(trainer *t); /* AdamW moments (zero) and the gradient-norm scratch */
int train_step(trainer *t, vkft_step_report *report);
int eval_loss(trainer *t, double *loss, int64_t *tokens); /* over the eval split */

/* pref.c: preference objectives */
int pref_load_data(trainer *t);               /* the pairs, split and checksum */
int pref_make_batcher(trainer *t, int quiet); /* the batcher of cfg's micro_batch pairs */
/* DPO: why the reference log-probs are computed before training (NULL: in each step) */
const char *pref_reference_why(const trainer *t);
int pref_reference(trainer *t); /* DPO: reference log-probs before training, when needed */
int pref_train_step(trainer *t, vkft_step_report *report);
int pref_eval(trainer *t, double *loss, int64_t *tokens);

/* checkpoint.c: checkpoint-STEP/ folders, written as checkpoint-STEP.tmp/ and renamed; the
 * last file written is manifest.json with every file's size and CRC-32. */
int checkpoint_save(trainer *t, const char *dir);
/* Checks a checkpoint folder against its manifest; VKFT_ERR says what is wrong. *step is the
 * step it holds. */
int checkpoint_verify(const char *dir, int64_t *step);
/* Restores a verified checkpoint of this job (same configuration and data, else an error). */
int checkpoint_load(trainer *t, const char *dir);
/* The micro_batch a verified checkpoint's run used (its trainer_state.json's config). */
int checkpoint_micro_batch(const char *dir, int64_t *micro_batch);
/* The newest checkpoint of the output folder that verifies, skipping (and naming) damaged
 * ones; dir[0] == 0 when there is none. */
int checkpoint_find_latest(trainer *t, char *dir, size_t size);
/* Steps of the checkpoint-N folders of out_dir, newest first (*steps malloc'd). */
int checkpoint_list(const char *out_dir, int64_t **steps, int *count);
/* Keeps the keep_last newest checkpoints; removes those newer than `after` (a resumed run's
 * abandoned future) when after >= 0. */
int checkpoint_prune(const char *out_dir, int64_t keep_last, int64_t after, int64_t keep_step);

/* export.c: the adapter (PEFT) or the model (HF folder), and the tokenizer when it grew */
int export_adapter(trainer *t, const char *dir);
int export_full_model(trainer *t, const char *dir);
int export_tokenizer(trainer *t, const char *dir);

/* outdir.c */
/* Checks output.dir (not the model folder), creates and locks it, removes what an earlier
 * process left half-written, and refuses a fresh run into a folder holding another run's
 * results unless `overwrite` (then removes them). */
int outdir_prepare(trainer *t, int resuming, int overwrite);
void outdir_release(trainer *t);
/* Appends one JSON line to metrics.jsonl. */
int metrics_append(trainer *t, const char *line);
/* Keeps the complete lines of steps <= step (a resumed run rewrites what came after); the
 * final eval line of a finished run is dropped too when drop_eval_at_step. */
int metrics_truncate(trainer *t, int64_t step, int drop_eval_at_step);
/* Runs save(t, dir) and, while it fails for lack of space or another I/O error, tries again
 * output.save_retries times output.save_retry_wait seconds apart (telling the user), so the
 * trained state is not lost to a full disk. */
int save_with_retries(trainer *t, const char *what, int (*save)(trainer *, const char *),
                      const char *dir);
/* The final adapter or model: written into a staging folder, then moved into output.dir. */
int save_final(trainer *t, const char *dir);

#endif
