/* Private state of the model shared by src/model/model.c (loading, planning) and
 * src/model/forward.c (forward and backward). */
#ifndef VKFT_MODEL_INTERNAL_H
#define VKFT_MODEL_INTERNAL_H

#include "vkft/gguf.h"
#include "vkft/model.h"
#include "vkft/modules.h"
#include "vkft/safetensors.h"

/* short names for the projection indices of vkft/modules.h */
enum {
  P_Q = VKFT_PROJ_Q,
  P_K = VKFT_PROJ_K,
  P_V = VKFT_PROJ_V,
  P_O = VKFT_PROJ_O,
  P_GATE = VKFT_PROJ_GATE,
  P_UP = VKFT_PROJ_UP,
  P_DOWN = VKFT_PROJ_DOWN,
  P_PROJ_COUNT = VKFT_PROJ_COUNT
};

typedef struct lora_pair {
  vkft_tensor a, b, ga, gb; /* A (r, in), B (out, r) and their gradients */
  vkft_tensor u;            /* saved A x (T, r) */
  vkft_tensor xd;           /* the input after dropout (T, in), with lora_dropout > 0 */
  /* DoRA (desc.use_dora): the magnitude m (out) and its gradient; the forward's norm
   * ||W + s B A|| and scale m / norm (out); yd (T, out) = xd W^T + s B A xd, which the scale
   * multiplies (kept for m's gradient) */
  vkft_tensor mag, gmag, norm, scale, yd;
  int on;
} lora_pair;

typedef struct layer {
  vkft_tensor attn_norm, mlp_norm, q_norm, k_norm;
  vkft_tensor proj[P_PROJ_COUNT], bias[3]; /* bias: q, k, v (Qwen2) */
  vkft_tensor g_attn_norm, g_mlp_norm, g_q_norm, g_k_norm, g_proj[P_PROJ_COUNT], g_bias[3];
  lora_pair lora[P_PROJ_COUNT];
  vkft_tensor kc, vc; /* KV cache (kv_slots * kv_len, KV*D) with desc.kv_cache */
  /* saved activations */
  vkft_tensor h1, rstd1, q_raw, k_raw, rstd_q, rstd_k, q, k, v, att, lse, x_mid, h2, rstd2, gate,
      up, act;
} layer;

struct vkft_model {
  vkft_backend *be;
  vkft_model_desc desc;
  vkft_model_config cfg;
  int64_t T; /* token capacity of a micro-batch */
  int64_t proj_in[P_PROJ_COUNT], proj_out[P_PROJ_COUNT];
  vkft_tensor embed, lm_head_own, final_norm, g_embed, g_lm_head_own, g_final_norm;
  vkft_tensor *lm_head, *g_lm_head; /* the embedding when tied */
  layer *layers;
  /* residual stream states X[0..L] (T, C), the final norm */
  vkft_tensor *x, hf, rstd_f;
  /* inputs per micro-batch slot and the loss slots */
  vkft_tensor ids, labels, pos, seq, loss, ones, emb_plan, rope_freqs;
  int64_t slot_T[64], emb_unique[64];
  /* scratch */
  /* (the gate/up gradients are written over the saved gate/up activations: no d_gate, d_up) */
  vkft_tensor d_x, d_h, d_tmp, d_q, d_k, d_v, d_att, d_act, d_u, delta, ce_scratch, tmp;
  int64_t ce_chunk;
  vkft_tensor d_drop; /* (T, max in): the LoRA branch's input gradient before the dropout mask */
  vkft_tensor d_dora; /* (T, max out), DoRA: the output gradient times the magnitude's scale */
  uint32_t dropout_seed;
  float noise_magnitude; /* NEFTune's, on the embedding output of training forwards */
  int dropout_on;        /* recording a training forward/backward */
  int adapter_off;       /* recording a forward of the base alone (DPO's reference) */
  /* desc.kv_cache: kv_slots sequences of kv_len positions (kv_rows rows of each layer's cache),
   * and the logits of a decode step (kv_slots, V) */
  int64_t kv_slots, kv_len, kv_rows;
  vkft_tensor decode_logits;
  /* preference objectives (desc.pref_pairs > 0): per slot the tokens' roles, the sequences'
   * ranges, the reference's and the policy's sequence values (vkft_pref_loss); per micro-batch
   * the tokens' losses and gradient weights */
  vkft_tensor pref_tok, pref_ranges, pref_ref_seq, pref_seq, row_loss, row_weight;
  int64_t slot_pairs[64];
  int trainable_embed, trainable_head;
  vkft_param *params;
  int param_count;
  int allocated_count;
  vkft_tensor **allocated; /* every tensor the model owns, to free them */
  size_t allocated_cap;
  uint64_t bytes_weights, bytes_trainable, bytes_grads, bytes_acts, bytes_scratch;
  vkft_dtype config_dtype; /* plan-only load of a folder without weights: config's torch_dtype */
  int bnb_checkpoint;      /* the folder holds bitsandbytes 4-bit projections */
  /* A frozen, untied embedding table stays in host memory (the file's memory map): a step
   * needs only its T rows, gathered on the host into emb_rows (slots x T x C, the file's dtype)
   * and widened on the device; the table's size is saved on the device (1 GB at Llama-3 8B). */
  int embed_on_host;
  vkft_st_set *st; /* kept open while the table is read from it */
  const uint8_t *embed_src;
  vkft_dtype embed_dtype;
  vkft_tensor emb_rows;
  uint64_t bytes_host;
  vkft_gguf *gguf; /* a GGUF base (model: FILE.gguf), kept open while the table is read */
};

/* A weight as its file stores it, under its Hugging Face name: from the safetensors (model.c)
 * or a GGUF base (gguf_model.c), rows in Hugging Face's order. */
typedef struct model_weight {
  const uint8_t *data;
  vkft_dtype dtype; /* F32, F16, BF16 or a ggml block dtype (VKFT_Q8_0 ...) */
  int rank;
  int64_t shape[2];
  uint64_t size;    /* bytes */
  const char *file; /* for messages */
  void *owned;      /* rows reordered from the file (a GGUF's llama q/k), or NULL */
} model_weight;
void model_weight_release(model_weight *w);
/* Values [first, first + n) in fp32 (for block types, first and n are whole blocks). */
int model_weight_to_f32(const model_weight *w, int64_t first, int64_t n, float *out);

/* model.c: a tensor the model owns (q: a quantized layout, NULL for plain dtypes), its bytes
 * counted in *bucket; in a plan-only load only counted. */
int model_own_quant(vkft_model *m, vkft_tensor *t, vkft_dtype dtype, int64_t n, const vkft_quant *q,
                    uint64_t *bucket);
/* forward.c: the forward of micro-batch `slot` (T tokens) up to the final norm (m->hf), and the
 * backward from m->d_h (dL/dhf) down to the weights' gradients */
int model_forward(vkft_model *m, int slot, int64_t T);
int model_backward(vkft_model *m, int slot, int64_t T);
int model_add_param(vkft_model *m, const char *name, int rank, int64_t d0, int64_t d1,
                    vkft_tensor *value, vkft_tensor *grad);
/* quant_weights.c: projection p of layer l as a 4-bit frozen base (QLoRA): read quantized from a
 * bitsandbytes checkpoint (m->bnb_checkpoint), or quantized here from the file's f32/f16/bf16
 * (desc.quant_dtype), one tensor at a time. */
int model_load_quantized_proj(vkft_model *m, const vkft_st_set *st, int l, int p, vkft_tensor *t);
/* gguf_model.c: opens desc.dir as a GGUF base (refusing what vkft cannot do with one); the
 * weight of a Hugging Face name; after loading, that the file holds nothing the model left
 * unread; the GGUF row holding Hugging Face row r of a q/k projection with heads of D rows. */
int model_gguf_open(vkft_model *m);
int model_gguf_weight(vkft_model *m, const char *name, model_weight *w);
int model_gguf_check_unused(const vkft_model *m);
int64_t model_gguf_row(int64_t r, int64_t D);
/* Rows ids[0..n) of a GGUF's block-typed embedding table (embed_on_host) in fp32: dst (n, C). */
void model_gguf_table_rows(const vkft_model *m, const int32_t *ids, int64_t n, float *dst);

#endif
