/* Exporting a model where people run it, on the host (no Vulkan device), streaming one tensor
 * at a time so that peak memory stays near the largest tensor rather than the model:
 *   - a merged Hugging Face folder: LoRA merged into the base weights (W + s * B A in fp32),
 *     modules_to_save replacing the base's tensors, sharded safetensors as transformers'
 *     save_pretrained writes them, config, generation config and tokenizer files;
 *   - a merged GGUF model for llama.cpp / Ollama / LM Studio: llama.cpp's tensor names and
 *     layouts, the architecture's hyperparameters, the full tokenizer, the weights as
 *     f32/f16/bf16/q8_0/q4_0 or llama-quantize's Q4_K_M mix;
 *   - the LoRA adapter alone as a GGUF adapter for llama.cpp's --lora.
 * A Modelfile for Ollama is written beside a GGUF. docs/GGUF.md describes each choice and its
 * source in llama.cpp. */
#ifndef VKFT_EXPORT_H
#define VKFT_EXPORT_H

#include <stdint.h>

typedef enum vkft_export_target {
  VKFT_EXPORT_HF,       /* merged Hugging Face folder */
  VKFT_EXPORT_GGUF,     /* merged GGUF model file */
  VKFT_EXPORT_GGUF_LORA /* the adapter as a GGUF LoRA file */
} vkft_export_target;

typedef struct vkft_export_desc {
  vkft_export_target target;
  const char *model_dir;   /* the base model (Hugging Face folder) */
  const char *adapter_dir; /* a PEFT LoRA adapter folder, or NULL */
  const char *out;         /* folder (hf) or file (gguf, gguf-lora) */
  /* hf: f32 | f16 | bf16 (default: each tensor keeps the base's dtype);
   * gguf: f32 | f16 | bf16 | q8_0 | q4_0 | q4_k_m (default: f16, bf16 for a bf16 base) */
  const char *type;
  uint64_t max_shard_bytes; /* hf: 0 = 5 GB, transformers' default */
  int threads;              /* 0 = one per CPU */
  int no_modelfile;         /* gguf, gguf-lora: do not write the Ollama Modelfile */
  /* progress: called after each tensor (tensor index from 1 to count) */
  void (*progress)(void *user, const char *tensor, int index, int count);
  void *user;
} vkft_export_desc;

typedef struct vkft_export_report {
  int tensors;
  uint64_t bytes;       /* tensor bytes written */
  int shards;           /* hf */
  char modelfile[1024]; /* path of the Modelfile written, or "" */
  char note[512];       /* what the user should know (fallback types, rsLoRA scale), or "" */
} vkft_export_report;

int vkft_export(const vkft_export_desc *desc, vkft_export_report *report);

#endif
