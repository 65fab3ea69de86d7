/* Shared by the exporters: the merged weights of a base model and an optional LoRA adapter,
 * read row by row in fp32, and the weights' list in Hugging Face state-dict order. */
#ifndef VKFT_EXPORT_INTERNAL_H
#define VKFT_EXPORT_INTERNAL_H

#include "vkft/export.h"
#include "vkft/ggml_quants.h"
#include "vkft/gguf.h"
#include "vkft/model.h"
#include "vkft/model_config.h"
#include "vkft/quant.h"
#include "vkft/safetensors.h"

#include <stddef.h>
#include <stdint.h>

/* One weight of the merged model. */
typedef struct export_tensor {
  char name[160];                        /* Hugging Face name */
  int rank;                              /* 1 or 2 */
  int64_t rows, cols;                    /* (out, in) for 2-D; (n, 1) for 1-D */
  vkft_dtype dtype;                      /* the base file's dtype (or the replacement's) */
  const vkft_st_tensor *base;            /* the base weight (or the modules_to_save copy) */
  vkft_bnb4_weight *quant;               /* a bitsandbytes 4-bit base weight (owned), or NULL */
  const vkft_st_set *base_set;           /* where base lives */
  const vkft_st_tensor *lora_a, *lora_b; /* (r, in), (out, r) when LoRA applies */
  const vkft_st_tensor *lora_m;          /* DoRA's magnitude (out) with use_dora, or NULL */
  int layer;                             /* -1 outside the decoder layers */
  int proj;                              /* vkft_proj, or -1 */
  int is_bias;
} export_tensor;

typedef struct export_source {
  vkft_model_config cfg;
  char model_dir[1024], adapter_dir[1024];
  vkft_st_set *base, *adapter;
  int has_adapter;
  vkft_adapter_info info;
  float scale; /* s = alpha / r (or alpha / sqrt(r)) */
  export_tensor *tensors;
  int count, capacity;
  int64_t vocab_rows; /* rows of the (possibly replaced) embedding */
  int tied;           /* the output projection is the embedding */
  int quantized;      /* the base is a bitsandbytes 4-bit checkpoint (merged in its dtype) */
  vkft_gguf *gguf;    /* a GGUF base (gguf_base.c): base is NULL, only the LoRA pairs listed */
} export_source;

int export_source_open(export_source *s, const char *model_dir, const char *adapter_dir);
/* the PEFT adapter of adapter_dir into s (config, tensors, scale); export_source_open's part */
int export_source_open_adapter(export_source *s, const char *adapter_dir);
/* A GGUF file as the base (--to gguf-lora only): the config from its metadata, the adapter's
 * pairs checked against it (src/export/gguf_base.c). */
int export_source_open_gguf(export_source *s, const char *model_path, const char *adapter_dir);
/* The GGUF adapter's general.* and hyperparameter keys copied from a GGUF base's metadata. */
int export_gguf_hparams_copy(vkft_gguf_writer *w, const export_source *s, const float *lora_alpha);
void export_source_close(export_source *s);
const export_tensor *export_source_find(const export_source *s, const char *name);

/* Rows of a weight in fp32 with the LoRA update merged: out[i] = row(first + i) for i < n,
 * each of t->cols floats; row_of (NULL = identity) maps an output row to a source row (the
 * q/k permutation of llama.cpp's converter). */
typedef int64_t (*export_row_map)(const export_tensor *t, int64_t row, const void *ctx);
int export_rows(const export_source *s, const export_tensor *t, int64_t first, int64_t n,
                export_row_map row_of, const void *ctx, float *out);

/* Runs fn(i, arg) for i in [0, n) on up to `threads` threads (0 = one per CPU). */
int export_parallel(int threads, int n, int (*fn)(int i, void *arg), void *arg);

/* The exporters (src/export/hf.c, gguf_model.c, gguf_lora.c). */
int export_hf(const export_source *s, const vkft_export_desc *d, vkft_export_report *r);
int export_gguf_model(const export_source *s, const vkft_export_desc *d, vkft_export_report *r);
int export_gguf_lora(const export_source *s, const vkft_export_desc *d, vkft_export_report *r);

/* general.* and the architecture's hyperparameters, in convert_hf_to_gguf.py's order
 * (src/export/gguf_model.c); general.type "model" or "adapter" (then lora_alpha is written);
 * file_type_last: leave general.file_type / quantization_version to the caller (llama-quantize
 * files have them last); params > 0 adds general.size_label. */
int export_gguf_hparams(vkft_gguf_writer *w, const export_source *s, const char *general_type,
                        uint32_t llama_ftype, int file_type_last, uint64_t params,
                        const float *lora_alpha);

/* Tokenizer metadata (tokenizer.ggml.*, tokenizer.chat_template) from tokenizer.json and
 * tokenizer_config.json in dir (special ids also from model_dir/config.json), as llama.cpp's
 * converter writes it, for vocab_rows tokens (src/export/gguf_vocab.c). */
int export_gguf_vocab(vkft_gguf_writer *w, const char *dir, const char *model_dir,
                      int64_t vocab_rows);
/* The folder whose tokenizer files describe the merged model (the adapter's when it has
 * its own, as after tokens.add), into out. */
void export_tokenizer_dir(const export_source *s, char *out, size_t n);

/* The last component of a path ('/' or '\\' separated). */
const char *export_base_name(const char *path);

/* The Ollama Modelfile beside a GGUF file (src/export/modelfile.c). */
int export_modelfile(const char *gguf_path, const char *adapter_gguf, const char *tokenizer_dir,
                     char *written, size_t n);

#endif
