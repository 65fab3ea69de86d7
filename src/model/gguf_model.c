/* A GGUF file as a model's weights (model: FILE.gguf): llama.cpp's tensor names read under the
 * Hugging Face names the model asks for, with llama.cpp's layout undone where it differs (the q
 * and k rows of llama-architecture models, which llama.cpp's converter permutes for its RoPE),
 * and every tensor type vkft computes with: F32, F16, BF16 as they are, ggml's block types kept
 * as the file's blocks (the matmul dequantizes them as it reads) or widened to fp32 where a
 * weight is trained. The config comes from the same file (src/model/config.c); what vkft cannot
 * do with a GGUF base is refused up front with one line. docs/GGUF.md, "GGUF bases". */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/ggml_quants.h"
#include "vkft/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* names inside a layer: Hugging Face's module path -> llama.cpp's (gguf-py's TensorNameMap) */
static const char *const proj_names[VKFT_PROJ_COUNT] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
static const struct {
  const char *hf, *gguf;
} layer_names[] = {{"input_layernorm.weight", "attn_norm.weight"},
                   {"post_attention_layernorm.weight", "ffn_norm.weight"},
                   {"self_attn.q_norm.weight", "attn_q_norm.weight"},
                   {"self_attn.k_norm.weight", "attn_k_norm.weight"}};
static const struct {
  const char *hf, *gguf;
} model_names[] = {{"model.embed_tokens.weight", "token_embd.weight"},
                   {"model.norm.weight", "output_norm.weight"},
                   {"lm_head.weight", "output.weight"}};

/* The GGUF name of a weight; *proj receives its projection (or -1). -1 if it has none. */
static int gguf_name(const char *hf, char *out, size_t n, int *proj) {
  *proj = -1;
  for (size_t i = 0; i < sizeof model_names / sizeof model_names[0]; i++)
    if (!strcmp(hf, model_names[i].hf)) return snprintf(out, n, "%s", model_names[i].gguf), 0;
  int layer, at = 0;
  if (sscanf(hf, "model.layers.%d.%n", &layer, &at) != 1 || !at) return -1;
  const char *rest = hf + at;
  for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++)
    if (!strcmp(rest, layer_names[i].hf))
      return snprintf(out, n, "blk.%d.%s", layer, layer_names[i].gguf), 0;
  for (int p = 0; p < VKFT_PROJ_COUNT; p++) {
    size_t len = strlen(vkft_proj_path(p));
    if (strncmp(rest, vkft_proj_path(p), len) || rest[len] != '.') continue;
    if (strcmp(rest + len, ".weight") && strcmp(rest + len, ".bias")) return -1;
    *proj = p;
    return snprintf(out, n, "blk.%d.%s%s", layer, proj_names[p], rest + len), 0;
  }
  return -1;
}

/* llama.cpp's converter reorders the q and k rows of llama-architecture models: within each
 * head of D rows, GGUF row 2j + h holds Hugging Face row h * D/2 + j (llama.cpp rotates
 * adjacent pairs where Hugging Face rotates the halves of a head). The GGUF row of HF row r: */
int64_t model_gguf_row(int64_t r, int64_t D) {
  int64_t head = r / D, w = r % D, half = D / 2;
  return head * D + 2 * (w % half) + w / half;
}

int model_gguf_open(vkft_model *m) {
  const vkft_model_desc *d = &m->desc;
  if (d->training && d->full)
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "%s: a GGUF base trains with LoRA (method \"lora\"), not full "
                           "fine-tuning (its weights are frozen, quantized ones cannot be "
                           "trained, and a full model is written as a Hugging Face folder)",
                           d->dir);
  if (d->vocab_size > m->cfg.vocab_size)
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "%s: new tokens (tokens.add) need the Hugging Face folder's tokenizer "
                           "files; they are not supported with a GGUF base",
                           d->dir);
  if (vkft_dtype_is_quantized(d->quant_dtype))
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "quant.base %s: a GGUF base keeps its own tensor types (remove "
                           "quant.base)",
                           vkft_dtype_name(d->quant_dtype));
  return vkft_gguf_open(d->dir, &m->gguf);
}

/* Every tensor of the file must be one the model reads: a tensor left over means a variant of
 * the architecture vkft would run wrongly (extra norms, other projections). */
int model_gguf_check_unused(const vkft_model *m) {
  for (int64_t i = 0; i < vkft_gguf_tensor_count(m->gguf); i++) {
    const char *name = vkft_gguf_tensor_at(m->gguf, i)->name;
    /* read by the config, and the table a step's rows are gathered from on the host */
    int known = !strcmp(name, "rope_freqs.weight") || !strcmp(name, "token_embd.weight");
    for (int k = 0; !known && k < m->param_count; k++) {
      char want[VKFT_GGUF_MAX_NAME + 2];
      int proj;
      known = gguf_name(m->params[k].name, want, sizeof want, &proj) == 0 && !strcmp(want, name);
    }
    if (!known)
      return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                             "%s: tensor \"%s\" is not part of a %s model as vkft reads it",
                             m->desc.dir, name, m->cfg.architecture);
  }
  return VKFT_OK;
}

int model_gguf_weight(vkft_model *m, const char *name, model_weight *w) {
  memset(w, 0, sizeof *w);
  const char *file = m->desc.dir;
  char gname[VKFT_GGUF_MAX_NAME + 2];
  int proj;
  if (gguf_name(name, gname, sizeof gname, &proj) != 0)
    return vkft_error_with(VKFT_ERR_INTERNAL, "%s: no GGUF name for \"%s\"", file, name);
  const vkft_gguf_tensor *t = vkft_gguf_find_tensor(m->gguf, gname);
  if (!t) return vkft_error("%s: missing tensor \"%s\" (%s)", file, gname, name);
  int dtype = vkft_dtype_of_ggml_type(t->type);
  if (dtype < 0)
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "%s: tensor \"%s\" is %s, which vkft does not read (F32, F16, BF16, "
                           "Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K)",
                           file, gname, vkft_ggml_type_name(t->type));
  if (t->n_dims > 2 || (t->n_dims == 2 && t->ne[1] < 1))
    return vkft_error("%s: tensor \"%s\" has %d dimensions", file, gname, t->n_dims);
  w->dtype = (vkft_dtype)dtype;
  w->rank = t->n_dims;
  /* ne is the Hugging Face shape reversed */
  w->shape[0] = t->n_dims == 2 ? t->ne[1] : t->ne[0];
  w->shape[1] = t->n_dims == 2 ? t->ne[0] : 0;
  w->data = t->data;
  w->size = t->size;
  w->file = file;
  const int permuted = (proj == VKFT_PROJ_Q || proj == VKFT_PROJ_K) &&
                       (m->cfg.arch == VKFT_ARCH_LLAMA || m->cfg.arch == VKFT_ARCH_MISTRAL);
  if (!permuted) return VKFT_OK;
  int64_t rows = w->shape[0], D = m->cfg.head_dim;
  int64_t heads = proj == VKFT_PROJ_Q ? m->cfg.num_heads : m->cfg.num_kv_heads;
  if (rows != heads * D) return VKFT_OK; /* the caller reports the shape */
  if (m->desc.plan_only) return VKFT_OK; /* only sizes are needed */
  uint64_t row_bytes = t->size / (uint64_t)rows;
  uint8_t *copy = malloc(t->size ? (size_t)t->size : 1);
  if (!copy) return vkft_error_nomem();
  for (int64_t r = 0; r < rows; r++)
    memcpy(copy + (size_t)(row_bytes * (uint64_t)r),
           t->data + (size_t)(row_bytes * (uint64_t)model_gguf_row(r, D)), (size_t)row_bytes);
  w->data = w->owned = copy;
  return VKFT_OK;
}

void model_weight_release(model_weight *w) {
  free(w->owned);
  w->owned = NULL;
}

int model_weight_to_f32(const model_weight *w, int64_t first, int64_t n, float *out) {
  if (!vkft_dtype_is_quantized(w->dtype)) {
    vkft_convert_to_f32(w->dtype, w->data + (size_t)first * vkft_dtype_size(w->dtype), out,
                        (size_t)n);
    return VKFT_OK;
  }
  vkft_ggml_type type = (vkft_ggml_type)vkft_ggml_type_of_dtype(w->dtype);
  uint64_t at = vkft_ggml_row_size(type, first);
  return vkft_ggml_dequantize_row(type, w->data + at, out, n);
}

void model_gguf_table_rows(const vkft_model *m, const int32_t *ids, int64_t n, float *dst) {
  int64_t C = m->cfg.hidden_size;
  vkft_ggml_type type = (vkft_ggml_type)vkft_ggml_type_of_dtype(m->embed_dtype);
  uint64_t row = vkft_ggml_row_size(type, C);
  /* ids were checked against V, rows of whole blocks at open: this cannot fail */
  for (int64_t t = 0; t < n; t++)
    vkft_ggml_dequantize_row(type, m->embed_src + (size_t)(row * (uint64_t)ids[t]), dst + t * C, C);
}
