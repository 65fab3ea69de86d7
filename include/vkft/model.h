/* The Llama-family decoder (Llama 2/3, Mistral, Qwen2, Qwen3) written once against the op API
 * (vkft/ops.h), so the same code runs on the Vulkan backend (the product) and on the C
 * reference backend (the model-level reference). Explicit forward and backward, no autograd:
 * the forward saves what the backward needs (DESIGN.md). Memory is planned once at load for
 * a maximum number of tokens per micro-batch. */
#ifndef VKFT_MODEL_H
#define VKFT_MODEL_H

#include "vkft/model_config.h"
#include "vkft/modules.h"
#include "vkft/ops.h"

#include <stdint.h>

typedef struct vkft_model vkft_model;

typedef struct vkft_model_desc {
  const char *dir;       /* Hugging Face model folder (config.json + safetensors) */
  int64_t max_tokens;    /* tokens of one micro-batch (rows * max_len), flattened */
  int micro_batches;     /* micro-batches recorded into one step (grad_accum); >= 1 */
  int training;          /* allocate gradients and saved activations */
  int full;              /* full fine-tuning: every weight fp32 and trainable */
  int64_t lora_r;        /* LoRA (full == 0) */
  double lora_scale;     /* alpha / r, or alpha / sqrt(r) with rslora */
  unsigned lora_targets; /* VKFT_MOD_* of vkft/train_config.h */
  unsigned modules_to_save;
  uint64_t seed;          /* LoRA A initialisation */
  int64_t ce_chunk;       /* vocabulary chunk of the loss (0: chosen from memory) */
  int grad_checkpointing; /* keep only each layer's input; recompute the layer in backward */
  int64_t vocab_size;     /* > config's: grow the embeddings (tokens.add), new rows = mean row */
  double lora_dropout;    /* dropout on the LoRA branch's input while training (PEFT's) */
  int kv_cache;           /* keep the keys and values of generated sequences (decode steps) */
  int64_t kv_slots;       /* kv_cache: sequences the cache holds at once (0: 1; <= max_tokens) */
  int64_t kv_len;         /* kv_cache: positions per sequence (0: max_tokens) */
  int plan_only; /* count the memory plan, allocate and upload nothing (the backend may be NULL;
                    a folder with config.json alone is planned in its torch_dtype) */
  /* QLoRA: VKFT_NF4 / VKFT_FP4 quantizes the frozen projections at load (bit-identical to
   * bitsandbytes); anything else keeps them as stored. A bitsandbytes 4-bit checkpoint is read
   * as it is in any case. */
  vkft_dtype quant_dtype;
  int quant_block;    /* values per block scale (0: 64) */
  int quant_double;   /* double-quantize the block scales */
  int64_t pref_pairs; /* preference objectives: pairs per micro-batch (0: none) */
  /* DoRA (PEFT's use_dora): a trainable magnitude per output row of each adapted projection
   * ("...lora_magnitude_vector"; docs/LORA.md); bases of f32/f16/bf16 weights only */
  int use_dora;
} vkft_model_desc;

int vkft_model_load(vkft_backend *be, const vkft_model_desc *desc, vkft_model **out);
/* 1 if DIR has safetensors weights (model.safetensors or an index of shards). */
int vkft_model_has_weights(const char *dir);
void vkft_model_free(vkft_model *m);
const vkft_model_config *vkft_model_get_config(const vkft_model *m);

/* One micro-batch, flattened rows: T tokens with input ids, labels aligned with the ids (HF
 * convention: the model shifts; -100 = not trained), positions restarting at 0 for each packed
 * sequence, and a sequence id per token (distinct across rows). */
typedef struct vkft_model_batch {
  int64_t T;
  const int32_t *ids, *labels, *pos, *seq;
} vkft_model_batch;

/* Uploads micro-batch `slot` (0 .. micro_batches-1) of the next step (outside a stream). */
int vkft_model_set_batch(vkft_model *m, int slot, const vkft_model_batch *batch);
/* Records the forward (and, if backward, the backward with gradients accumulated into the
 * parameters' gradient tensors, scaled by grad_scale = 1 / trained tokens of the step) of
 * micro-batch `slot` into the current stream. The loss sum and trained-token count land in
 * the model's loss slots (vkft_model_read_loss after the stream ends). */
int vkft_model_forward_backward(vkft_model *m, int slot, float grad_scale, int backward);
int vkft_model_read_loss(vkft_model *m, int slot, double *loss_sum, double *count);
/* The seed of the LoRA dropout masks of the next recorded forward/backward (each target module
 * of each layer draws its own mask from it). */
void vkft_model_set_dropout_seed(vkft_model *m, uint32_t seed);
/* NEFTune: in the next recorded training forwards, uniform noise in [-magnitude, magnitude)
 * (drawn from the dropout seed) is added to the embedding output, as TRL's hook adds it with
 * magnitude alpha / sqrt(row length * hidden size); 0: none. Evaluation never adds it. */
void vkft_model_set_noise(vkft_model *m, float magnitude);
/* Logits of micro-batch `slot`'s positions (T, V) into host memory (evaluation, generation,
 * tests); records and runs its own stream. */
int vkft_model_logits(vkft_model *m, int slot, float *logits);
/* Records into the current stream the forward of micro-batch `slot` (no loss) and out (1, C) =
 * weights (1, T) . hf (T, C): a weighted sum over the slot's T tokens of the final hidden state
 * after the final norm (weights 1/T: mean pooling; sequence embeddings). weights (>= T) and out
 * (>= C) are fp32 tensors or views the caller owns. */
int vkft_model_forward_pooled(vkft_model *m, int slot, const vkft_tensor *weights,
                              vkft_tensor *out);

/* ---- preference objectives (src/model/pref.c) ----
 * A micro-batch of N pairs is 2N sequences (s = i: the chosen completion of pair i, N + i: its
 * rejected one) set with vkft_model_set_batch; these say which targets count where (after the
 * model's shift: position t predicts token t + 1 of its sequence):
 *   tok (T): 2 s + 1 when position t's target is in sequence s's completion, 2 s when it is
 *     another target of s (ORPO's NLL over the prompt), -1 otherwise;
 *   ranges (2N x 2): the positions [first, end) of each sequence;
 *   ref (2N, optional): reference log-probs computed beforehand (full fine-tuning, or LoRA from
 *     an existing adapter); without it DPO's reference is the base with the adapter off, run in
 *     the same stream. */
typedef struct vkft_model_pref_batch {
  int64_t N;
  const int32_t *tok, *ranges;
  const float *ref;
} vkft_model_pref_batch;
int vkft_model_set_pref(vkft_model *m, int slot, const vkft_model_pref_batch *b);
/* Records, for micro-batch `slot`: [the reference forward (adapter off) when DPO has no given
 * reference,] the forward, the sequence log-probs and, with backward, the objective's gradient
 * accumulated into the parameters' gradients (its scales are in o: pair_scale, nll_scale). */
int vkft_model_pref_forward_backward(vkft_model *m, int slot, const vkft_pref_objective *o,
                                     int backward);
/* After the stream: the policy's sequence values of the slot (4N + 2 floats: vkft_pref_loss's
 * seq) and, when ref_seq is not NULL, the reference's log-probs (2N floats). */
int vkft_model_read_pref(vkft_model *m, int slot, float *seq, float *ref_seq);

/* One step of batched generation over the KV cache (desc.kv_cache): n <= max_tokens new tokens
 * of any of the kv_slots sequences. Token i has id ids[i] and is at position pos[i] <
 * kv_len of sequence slot[i]; the cache must hold that sequence's positions 0 .. pos[i] - 1
 * (from earlier steps, or earlier tokens of this step: a prompt may come in pieces). Its key
 * and value are stored for later steps. logits (n_out, V) receives the logits of the tokens
 * out[0 .. n_out) (indices into this step, n_out <= kv_slots: say the last token of each
 * sequence). A token's logits do not depend on the other tokens of the step. */
typedef struct vkft_decode_step {
  int64_t n;
  const int32_t *ids, *slot, *pos;
  int64_t n_out;
  const int32_t *out;
} vkft_decode_step;
int vkft_model_decode_step(vkft_model *m, const vkft_decode_step *step, float *logits);
/* One sequence (slot 0): n new tokens at positions pos0 .. pos0 + n - 1 and the logits of the
 * last one (V floats). A prompt is one call with pos0 = 0, then one token per call. */
int vkft_model_decode(vkft_model *m, const int32_t *ids, int64_t n, int64_t pos0, float *logits);

/* Parameters: everything the optimizer, checkpoints and adapter export see. */
typedef struct vkft_param {
  char name[160]; /* Hugging Face name ("model.layers.0.self_attn.q_proj.weight") or, for
                     LoRA, the PEFT key without its prefix
                     ("model.layers.0.self_attn.q_proj.lora_A.weight") */
  int rank;
  int64_t shape[2];
  vkft_tensor *value;
  vkft_tensor *grad; /* NULL when frozen */
  int trainable;
  int decay; /* weight decay applies (2-D weights) */
} vkft_param;
int vkft_model_params(vkft_model *m, vkft_param **params, int *count);
/* Zeroes every gradient (records into the current stream). */
int vkft_model_zero_grads(vkft_model *m);

/* Bytes planned on the device: weights, trainable state, activations (for --dry-run). */
typedef struct vkft_model_memory {
  uint64_t weights, trainable, gradients, activations, scratch;
  uint64_t host; /* in host memory, not on the device: a frozen untied embedding table */
} vkft_model_memory;
void vkft_model_memory_plan(const vkft_model *m, vkft_model_memory *mem);

/* ---- PEFT adapters (src/model/peft.c): the adapter format, read and written in one place ----
 * adapter_config.json + adapter_model.safetensors with the keys PEFT uses
 * ("base_model.model." + the Hugging Face module path + ".lora_A.weight"; with DoRA also
 * ".lora_magnitude_vector", no ".weight", as PEFT's LoraModel._get_adapter_state_dict names it). */
typedef struct vkft_adapter_info {
  int64_t r;
  double alpha, dropout;
  int use_rslora;
  int use_dora; /* the adapter holds a lora_magnitude_vector (out) per adapted projection */
  unsigned targets, modules_to_save; /* VKFT_MOD_* */
  char base_model[1024];             /* base_model_name_or_path */
} vkft_adapter_info;
/* Reads DIR/adapter_config.json (a LoRA adapter as PEFT writes it). */
int vkft_adapter_read_config(const char *dir, vkft_adapter_info *info);
/* The LoRA scale s = alpha / r (or alpha / sqrt(r) with rsLoRA). */
double vkft_adapter_scale(const vkft_adapter_info *info);
/* Loads DIR/adapter_model.safetensors into a model loaded for LoRA with the same r and targets
 * (every PEFT key must match a parameter of the model, and every trainable parameter a key). */
int vkft_model_apply_adapter(vkft_model *m, const char *dir);
/* Writes the model's trainable parameters (fp32) as DIR/adapter_model.safetensors and `info`
 * as DIR/adapter_config.json, both byte for byte as PEFT's save_pretrained writes them. */
int vkft_model_save_adapter(vkft_model *m, const vkft_adapter_info *info, const char *dir);

/* Writes DIR/config.json (the given text) and DIR/model.safetensors with random weights of the
 * names and shapes that config implies, stored as dtype (tests and benchmarks). */
int vkft_model_write_random(const char *dir, const char *config_json, vkft_dtype dtype,
                            uint64_t seed);

#endif
