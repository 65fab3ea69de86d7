/* llama.cpp's names and layouts for a Llama-family model's weights (gguf-py's TensorNameMap
 * and convert_hf_to_gguf.py's LlamaModel.permute), shared by the model and LoRA exporters. */
#include "gguf_names.h"

#include <stdio.h>
#include <string.h>

static const char *const proj_names[VKFT_PROJ_COUNT] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

const char *gguf_arch_name(vkft_arch arch) {
  switch (arch) {
  case VKFT_ARCH_QWEN2:
    return "qwen2";
  case VKFT_ARCH_QWEN3:
    return "qwen3";
  default: /* Mistral ships as llama: convert_hf_to_gguf.py registers MistralForCausalLM there */
    return "llama";
  }
}

int gguf_tensor_name(const export_tensor *t, char *out, size_t n) {
  const char *name = t->name;
  if (!strcmp(name, "model.embed_tokens.weight")) return snprintf(out, n, "token_embd.weight"), 0;
  if (!strcmp(name, "model.norm.weight")) return snprintf(out, n, "output_norm.weight"), 0;
  if (!strcmp(name, "lm_head.weight")) return snprintf(out, n, "output.weight"), 0;
  if (t->layer < 0) return -1;
  if (t->proj >= 0)
    return snprintf(out, n, "blk.%d.%s.%s", t->layer, proj_names[t->proj],
                    t->is_bias ? "bias" : "weight"),
           0;
  static const struct {
    const char *hf, *gguf;
  } per_layer[] = {{"input_layernorm.weight", "attn_norm.weight"},
                   {"post_attention_layernorm.weight", "ffn_norm.weight"},
                   {"self_attn.q_norm.weight", "attn_q_norm.weight"},
                   {"self_attn.k_norm.weight", "attn_k_norm.weight"}};
  char prefix[48];
  int len = snprintf(prefix, sizeof prefix, "model.layers.%d.", t->layer);
  for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++)
    if (!strncmp(name, prefix, (size_t)len) && !strcmp(name + len, per_layer[i].hf))
      return snprintf(out, n, "blk.%d.%s", t->layer, per_layer[i].gguf), 0;
  return -1;
}

/* Llama-family GGUFs rotate adjacent pairs (llama.cpp's "normal" RoPE) where Hugging Face
 * rotates the two halves of each head: the converter undoes HF's permutation of the q and k
 * rows (weights and biases), per head: row 2i + half of the GGUF head is HF row
 * half * D/2 + i. Qwen2/Qwen3 use NeoX RoPE in llama.cpp and are not permuted. */
int gguf_needs_permute(const vkft_model_config *cfg, const export_tensor *t) {
  return gguf_arch_name(cfg->arch)[0] == 'l' && (t->proj == VKFT_PROJ_Q || t->proj == VKFT_PROJ_K);
}

int64_t gguf_permute_index(int64_t n, int64_t heads, int64_t i) {
  int64_t D = n / heads, head = i / D, w = i % D;
  return head * D + (w % 2) * (D / 2) + w / 2;
}

int64_t gguf_permuted_row(const export_tensor *t, int64_t row, const void *ctx) {
  const vkft_model_config *cfg = ctx;
  return gguf_permute_index(t->rows, gguf_heads(cfg, t), row);
}

int64_t gguf_heads(const vkft_model_config *cfg, const export_tensor *t) {
  return t->proj == VKFT_PROJ_Q ? cfg->num_heads : cfg->num_kv_heads;
}
