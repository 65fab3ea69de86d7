/* `vkft train --config cfg.json [--set section.key=value ...]`: the training configuration,
 * with the defaults of the example config. Unknown keys are errors that suggest the
 * closest valid key; every value is range-checked with a message naming the key. */
#ifndef VKFT_TRAIN_CONFIG_H
#define VKFT_TRAIN_CONFIG_H

#include "vkft/modules.h"

#include <stddef.h>
#include <stdint.h>

#define VKFT_CFG_PATH 1024
#define VKFT_CFG_MAX_LIST 16
#define VKFT_CFG_OUTPUT_DIR_MAX 900 /* leaves room for checkpoint file names below it */

typedef struct vkft_train_file {
  char path[VKFT_CFG_PATH];
  double weight;
} vkft_train_file;

typedef struct vkft_train_config {
  char model[VKFT_CFG_PATH];
  int full;          /* method: 0 lora, 1 full */
  char objective[8]; /* "sft", "dpo", "orpo" */
  struct {
    int64_t r;
    double alpha, dropout;
    unsigned targets;         /* VKFT_MOD_Q.. */
    unsigned modules_to_save; /* VKFT_MOD_EMBED | VKFT_MOD_LM_HEAD */
    int use_rslora;
    int use_dora;             /* DoRA: a trainable magnitude per output row (docs/LORA.md) */
    char init[VKFT_CFG_PATH]; /* "" = PEFT's default initialisation */
  } lora;
  struct {
    vkft_train_file train[VKFT_CFG_MAX_LIST];
    int train_count;
    char eval[VKFT_CFG_PATH];
    char format[32];
    char chat_template[VKFT_CFG_PATH]; /* data.template */
    int64_t max_len;                   /* 0 = min(2048, max_position_embeddings) */
    int packing;
    int train_on_all; /* train_on: "assistant" (0) or "all" (1) */
    double eval_fraction;
    double max_len_percentile;  /* max_len "auto" (-1): this percentile of the example lengths */
    int64_t max_prompt_len;     /* preference data: keep the prompt's last tokens (0: no cap) */
    int64_t max_completion_len; /* preference data: keep each completion's first (0: no cap) */
  } data;
  struct {
    /* micro_batch -1: "auto" (the largest that fits the device, probed by one step);
     * batch_size: the effective batch in sequences (pairs), micro_batch x grad_accum x ranks,
     * from which grad_accum is derived (0: not given); grad_accum_given: grad_accum was set by
     * the file or --set, not defaulted */
    int64_t micro_batch, grad_accum, batch_size, epochs, max_steps, warmup_steps;
    int grad_accum_given;
    double lr, warmup_ratio, weight_decay, max_grad_norm;
    double adam_beta1, adam_beta2, adam_epsilon;
    double neftune_noise_alpha; /* NEFTune (TRL's SFTConfig): 0 off */
    int weight_decay_all, shuffle, grad_checkpointing;
    char schedule[16];
    uint64_t seed;
    int64_t zero; /* data parallel: 1 shards the AdamW state across the ranks (ZeRO stage 1) */
  } train;
  struct {
    char dir[VKFT_CFG_PATH];
    int64_t save_every, eval_every, keep_last;
    /* when to evaluate and checkpoint (transformers' names): "steps" (every eval_every /
     * save_every steps; 0: eval at the end only, no checkpoints), "epoch", "no" */
    char eval_strategy[8], save_strategy[8];
    int64_t early_stopping_patience; /* stop after this many evals without improvement (0: off) */
    double early_stopping_threshold; /* an improvement must lower the eval loss by more */
    int load_best_model_at_end;      /* export the checkpoint of the lowest eval loss */
    int64_t save_retries;   /* a save that fails for lack of space is tried again this often */
    double save_retry_wait; /* seconds between those tries */
  } output;
  struct {
    char add[VKFT_CFG_MAX_LIST][128];
    int add_count;
  } tokens;
  struct {                  /* preference objectives (objective dpo / orpo), TRL's semantics */
    double beta;            /* DPO's beta (DPOConfig.beta) */
    char loss_type[16];     /* DPO: "sigmoid", "ipo", "hinge", "robust" */
    double label_smoothing; /* "robust" only, as TRL */
    double orpo_lambda;     /* ORPO's lambda (ORPOConfig.beta) */
    int precompute_ref;     /* LoRA: reference log-probs from a first pass, not the base in-step */
  } pref;
  struct {                 /* QLoRA: the frozen base in 4 bits (bitsandbytes' formats) */
    char base[8];          /* "none", "nf4", "fp4" */
    int double_quant;      /* double-quantize the block scales (bnb_4bit_use_double_quant) */
    int64_t block_size;    /* values per block scale (64, as bitsandbytes) */
    char compute_dtype[8]; /* "bf16", "f16", "f32": accepted for compatibility; vkft computes in
                              fp32 from the exact dequantized values */
  } quant;
} vkft_train_config;

/* Reads the config file (may be NULL: defaults only, then `model` must come from --set) and
 * applies the "section.key=value" overrides (value as JSON, else as a string). */
int vkft_train_config_load(const char *path, const char *const *sets, int set_count,
                           vkft_train_config *cfg);

/* train.grad_accum for micro-batches of micro_batch sequences (pairs) on `world` ranks: the
 * configured one, or with train.batch_size ceil(batch_size / (micro_batch x world)). Errors:
 * batch_size and an explicit grad_accum that disagree, a result above 64. When batch_size is
 * not a multiple of micro_batch x world, note (size > 0) gets a line naming the effective batch
 * that results; else note is "". */
int vkft_train_config_grad_accum(const vkft_train_config *cfg, int64_t micro_batch, int world,
                                 int64_t *grad_accum, char *note, size_t size);

/* The configuration as JSON (all keys, defaults filled in): saved next to checkpoints. */
char *vkft_train_config_to_json(const vkft_train_config *cfg);

#endif
