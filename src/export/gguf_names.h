/* llama.cpp's tensor names and q/k row order for the Llama family (src/export/gguf_names.c). */
#ifndef VKFT_EXPORT_GGUF_NAMES_H
#define VKFT_EXPORT_GGUF_NAMES_H

#include "internal.h"

/* general.architecture: "llama" (Llama, Mistral), "qwen2", "qwen3" */
const char *gguf_arch_name(vkft_arch arch);
/* "blk.3.attn_q.weight" ... for a weight of the model; -1 if it has no GGUF name */
int gguf_tensor_name(const export_tensor *t, char *out, size_t n);
/* 1 if llama.cpp's converter permutes this weight's rows (q and k of llama-arch models) */
int gguf_needs_permute(const vkft_model_config *cfg, const export_tensor *t);
/* The source index of GGUF index i of a q/k projection of n rows split into `heads` heads. */
int64_t gguf_permute_index(int64_t n, int64_t heads, int64_t i);
int64_t gguf_heads(const vkft_model_config *cfg, const export_tensor *t);
/* export_row_map for a permuted weight (ctx: the vkft_model_config) */
int64_t gguf_permuted_row(const export_tensor *t, int64_t row, const void *ctx);

#endif
