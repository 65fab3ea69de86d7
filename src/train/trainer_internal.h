/* Private state of the training loop shared by src/train/trainer.c and checkpoint.c. */
#ifndef VKFT_TRAINER_INTERNAL_H
#define VKFT_TRAINER_INTERNAL_H

#include "vkft/dataset.h"
#include "vkft/model.h"
#include "vkft/trainer.h"

#include <stdio.h>

typedef struct trainer {
  vkft_backend *be;
  const vkft_train_config *cfg;
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
  int64_t max_len, rows;
  int64_t step, total_steps; /* step: optimizer updates done */
  uint64_t epoch;            /* data position: next batch is (epoch, index) */
  uint64_t index;
  int64_t tokens_seen;
  double elapsed_before; /* seconds of earlier runs (resume) */
  vkft_batch batch;
  /* tokens.add: the tokenizer with the new tokens, which ids are new, the grown vocabulary */
  struct vkft_tokenizer *tok;
  int32_t added_ids[VKFT_CFG_MAX_LIST];
  int n_added;
  int64_t vocab_size;
} trainer;

/* checkpoint.c */
int checkpoint_save(trainer *t, const char *dir);
int checkpoint_load(trainer *t, const char *dir);
int checkpoint_find_latest(const char *out_dir, char *dir, size_t size); /* VKFT_ERR if none */
int checkpoint_prune(const char *out_dir, int64_t keep_last);
int export_adapter(trainer *t, const char *dir);
int export_full_model(trainer *t, const char *dir);
/* tokenizer.json / tokenizer_config.json with the tokens of tokens.add (when there are any) */
int export_tokenizer(trainer *t, const char *dir);

#endif
