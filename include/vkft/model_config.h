/* A Hugging Face config.json of a supported Llama-family architecture, read into one struct:
 * the model families differ only in a few fields here (DESIGN.md: "a model family is a few
 * fields in a config struct"). */
#ifndef VKFT_MODEL_CONFIG_H
#define VKFT_MODEL_CONFIG_H

#include <stdint.h>

typedef enum vkft_arch {
  VKFT_ARCH_LLAMA,
  VKFT_ARCH_MISTRAL,
  VKFT_ARCH_QWEN2,
  VKFT_ARCH_QWEN3
} vkft_arch;

typedef struct vkft_model_config {
  vkft_arch arch;
  char architecture[64]; /* as in the file, e.g. "LlamaForCausalLM" */
  int64_t vocab_size;
  int64_t hidden_size;       /* C */
  int64_t intermediate_size; /* F */
  int64_t num_layers;        /* L */
  int64_t num_heads;         /* H */
  int64_t num_kv_heads;      /* KV */
  int64_t head_dim;          /* D: head_dim if given, else hidden_size / num_heads */
  int64_t max_position_embeddings;
  double rms_norm_eps;
  double rope_theta;
  /* rope_scaling {"rope_type": "llama3", ...}; rope_llama3 == 0 when absent */
  int rope_llama3;
  double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
  int64_t rope_original_max_position;
  int attention_bias; /* q/k/v projections have biases (Qwen2) */
  int qk_norm;        /* RMSNorm on q and k per head (Qwen3) */
  int tie_word_embeddings;
  int64_t bos_token_id, eos_token_id; /* -1 if absent */
  char torch_dtype[16];
} vkft_model_config;

/* Reads DIR/config.json (or a config.json path), or a GGUF file's metadata (general.architecture
 * llama, qwen2 or qwen3 and their "<arch>.*" keys, the tokenizer's bos/eos ids, a tied head when
 * there is no output.weight). Unsupported architectures, missing or inconsistent fields are one
 * error naming the file and field. */
int vkft_model_config_load(const char *path, vkft_model_config *cfg);

/* The weight shape (out, in) of projection p (vkft/modules.h) of a layer. */
void vkft_model_proj_shape(const vkft_model_config *cfg, int p, int64_t *out, int64_t *in);

#endif
