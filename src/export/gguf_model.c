/* The merged model as one GGUF file, laid out as llama.cpp's tools make it:
 *   - f32, f16, bf16, q8_0: as convert_hf_to_gguf.py --outtype writes them (metadata in its
 *     order, tensors in the source files' order, 1-D weights, norms and biases in F32, Q8_0
 *     falling back to F16 for rows that are not a multiple of 32);
 *   - q4_0, q4_k_m: as llama-quantize then makes of such a file (tensors sorted by name, the
 *     Q4_K_M mix: Q6_K for output.weight (or the tied token_embd) and for attn_v / ffn_down on
 *     the "more bits" layers, llama.cpp's fallbacks for rows the block size does not divide;
 *     general.quantization_version and general.file_type re-set, so they move to the end).
 * Weights are quantized from the merged fp32 values, row chunks in parallel, and streamed to
 * the writer one tensor at a time. docs/GGUF.md cites the llama.cpp code for each rule. */
#include "gguf_names.h"
#include "internal.h"

#include "vkft/error.h"
#include "vkft/json.h"
#include "vkft/platform.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGML_QUANT_VERSION 2
#define CHUNK_FLOATS (4 << 20) /* fp32 values merged and quantized per step: 16 MB */

/* --type: the ggml type most weights get, llama.cpp's llama_ftype number (general.file_type),
 * and whether llama-quantize's per-tensor rules apply (else convert_hf_to_gguf.py's). */
typedef struct file_type {
  const char *name;
  vkft_ggml_type type;
  uint32_t llama_ftype;
  int quantize_rules;
} file_type;

static const file_type file_types[] = {
    {"f32", VKFT_GGML_F32, 0, 0},    {"f16", VKFT_GGML_F16, 1, 0},
    {"bf16", VKFT_GGML_BF16, 32, 0}, {"q8_0", VKFT_GGML_Q8_0, 7, 0},
    {"q4_0", VKFT_GGML_Q4_0, 2, 1},  {"q4_k_m", VKFT_GGML_Q4_K, 15, 1},
};

typedef struct out_tensor {
  char name[VKFT_GGUF_MAX_NAME + 1];
  const export_tensor *src; /* NULL: generated (rope_freqs) */
  const float *generated;
  int n_dims;
  int64_t ne[2]; /* ggml order: ne[0] = row length */
  vkft_ggml_type type;
  int permute;
  char order_key[1200]; /* convert's order: source file, then name */
} out_tensor;

/* ---- the tensor types ---- */

static int is_f32_always(const out_tensor *o) {
  size_t len = strlen(o->name);
  int is_weight = len > 7 && !strcmp(o->name + len - 7, ".weight");
  int is_norm = len > 12 && !strcmp(o->name + len - 12, "_norm.weight");
  return !o->src || o->n_dims == 1 || is_norm || !is_weight;
}

/* convert_hf_to_gguf.py: the --outtype for 2-D weights, F32 for the rest; Q8_0 needs rows
 * that are a multiple of 32 (gguf-py raises QuantError and the converter falls back to F16) */
static vkft_ggml_type convert_type(const out_tensor *o, const file_type *f) {
  if (is_f32_always(o)) return VKFT_GGML_F32;
  if (f->type == VKFT_GGML_Q8_0 && o->ne[0] % 32) return VKFT_GGML_F16;
  return f->type;
}

/* llama-quantize's use_more_bits: the first and last eighth of the layers and every third
 * one in between */
static int use_more_bits(int i, int n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* llama-quantize's fallback for rows its block size does not divide (tensor_type_fallback);
 * Q4_0 has none there (llama-quantize stops): vkft writes F16, like the converter's Q8_0 */
static vkft_ggml_type fallback(vkft_ggml_type t, int64_t ne0, int *fell_back) {
  if (ne0 % vkft_ggml_block_size(t) == 0) return t;
  *fell_back = 1;
  vkft_ggml_type f = t == VKFT_GGML_Q4_K   ? VKFT_GGML_Q5_0
                     : t == VKFT_GGML_Q5_K ? VKFT_GGML_Q5_1
                     : t == VKFT_GGML_Q6_K ? VKFT_GGML_Q8_0
                                           : VKFT_GGML_F16;
  return ne0 % vkft_ggml_block_size(f) ? VKFT_GGML_F16 : f;
}

/* llama_tensor_get_type over the tensors in llama-quantize's order (sorted by name), which is
 * also the order its attn_v / ffn_down counters run in */
static int quantize_types(out_tensor *list, int n, const file_type *f, const export_source *s,
                          char *note, size_t note_size) {
  int n_attn_v = 0, i_attn_v = 0, i_ffn_down = 0, fell_back = 0, tied = 1;
  for (int i = 0; i < n; i++) {
    n_attn_v += strstr(list[i].name, "attn_v.weight") != NULL;
    tied &= strcmp(list[i].name, "output.weight") != 0;
  }
  const int n_layer = (int)s->cfg.num_layers, is_70b = n_layer == 80;
  const int q4_k_m = f->type == VKFT_GGML_Q4_K;
  for (int i = 0; i < n; i++) {
    out_tensor *o = &list[i];
    if (is_f32_always(o)) {
      o->type = VKFT_GGML_F32;
      continue;
    }
    vkft_ggml_type t = f->type;
    if (!strcmp(o->name, "output.weight") || (tied && !strcmp(o->name, "token_embd.weight"))) {
      t = o->ne[0] % vkft_ggml_block_size(f->type) ? VKFT_GGML_Q8_0
          : f->type != VKFT_GGML_Q8_0              ? VKFT_GGML_Q6_K
                                                   : f->type;
    } else if (strstr(o->name, "attn_v.weight")) {
      if (q4_k_m && use_more_bits(i_attn_v, n_attn_v)) t = VKFT_GGML_Q6_K;
      if (is_70b && t == VKFT_GGML_Q4_K) t = VKFT_GGML_Q5_K;
      i_attn_v++;
    } else if (strstr(o->name, "ffn_down")) {
      if (q4_k_m && use_more_bits(i_ffn_down, n_layer)) t = VKFT_GGML_Q6_K;
      i_ffn_down++;
    }
    o->type = fallback(t, o->ne[0], &fell_back);
    if (!vkft_ggml_can_quantize(o->type))
      return vkft_error("%s: llama-quantize's rules ask for %s, which vkft does not write", o->name,
                        vkft_ggml_type_name(o->type));
  }
  if (fell_back)
    snprintf(note, note_size,
             "some rows are not a multiple of the block size: those tensors "
             "use llama.cpp's fallback types (Q5_0, Q8_0 or F16)");
  return VKFT_OK;
}

/* ---- the tensor list ---- */

/* rope_freqs.weight for Llama 3 RoPE scaling, as LlamaModel.generate_extra_tensors computes it
 * (inverse frequencies in fp32, the factors in double, stored as fp32) */
static float *llama3_rope_factors(const vkft_model_config *c) {
  int64_t half = c->head_dim / 2;
  float *f = malloc((size_t)half * sizeof *f);
  if (!f) return NULL;
  const double low_wavelen = c->rope_original_max_position / c->rope_low_freq_factor;
  const double high_wavelen = c->rope_original_max_position / c->rope_high_freq_factor;
  for (int64_t i = 0; i < half; i++) {
    float freq = 1.0f / powf((float)c->rope_theta, (float)(2 * i) / (float)c->head_dim);
    double wavelen = 2 * 3.141592653589793 / freq; /* math.pi */
    if (wavelen < high_wavelen) {
      f[i] = 1.0f;
    } else if (wavelen > low_wavelen) {
      f[i] = (float)c->rope_factor;
    } else {
      double smooth = (c->rope_original_max_position / wavelen - c->rope_low_freq_factor) /
                      (c->rope_high_freq_factor - c->rope_low_freq_factor);
      f[i] = (float)(1 / ((1 - smooth) / c->rope_factor + smooth));
    }
  }
  return f;
}

static int by_order_key(const void *a, const void *b) {
  return strcmp(((const out_tensor *)a)->order_key, ((const out_tensor *)b)->order_key);
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const out_tensor *)a)->name, ((const out_tensor *)b)->name);
}

static int build_list(const export_source *s, const file_type *f, out_tensor *list, int *count,
                      float *rope_factors, char *note, size_t note_size) {
  int n = 0;
  if (rope_factors) {
    out_tensor *o = &list[n++];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "rope_freqs.weight");
    o->generated = rope_factors;
    o->n_dims = 1;
    o->ne[0] = s->cfg.head_dim / 2;
    o->ne[1] = 1;
    /* generate_extra_tensors comes before the model's own tensors */
    snprintf(o->order_key, sizeof o->order_key, "%c", 1);
  }
  for (int i = 0; i < s->count; i++) {
    const export_tensor *t = &s->tensors[i];
    out_tensor *o = &list[n++];
    memset(o, 0, sizeof *o);
    o->src = t;
    if (gguf_tensor_name(t, o->name, sizeof o->name) != 0)
      return vkft_error("%s has no llama.cpp name", t->name);
    o->n_dims = t->rank;
    o->ne[0] = t->cols;
    o->ne[1] = t->rows;
    o->permute = gguf_needs_permute(&s->cfg, t);
    /* the converter reads the shards in file-name order, each in its header's (sorted) order */
    const vkft_st_tensor *in_base = vkft_st_find(s->base, t->name);
    snprintf(o->order_key, sizeof o->order_key, "%s%c%s",
             in_base ? vkft_st_file_of(s->base, in_base) : "", 2, t->name);
  }
  *count = n;
  if (f->quantize_rules) {
    qsort(list, (size_t)n, sizeof *list, by_name);
    return quantize_types(list, n, f, s, note, note_size);
  }
  qsort(list, (size_t)n, sizeof *list, by_order_key);
  int fell_back = 0;
  for (int i = 0; i < n; i++) {
    list[i].type = convert_type(&list[i], f);
    fell_back |= f->type == VKFT_GGML_Q8_0 && list[i].type == VKFT_GGML_F16;
  }
  if (fell_back)
    snprintf(note, note_size,
             "tensors whose rows are not a multiple of 32 are F16, as "
             "llama.cpp's converter writes them");
  return VKFT_OK;
}

/* ---- metadata ---- */

/* gguf-py's size label: the parameter count in K/M/B/T with at least two digits */
static void size_label(uint64_t params, char *out, size_t n) {
  double p = (double)params, scaled;
  const char *suffix;
  if (p > 1e12)
    scaled = p * 1e-12, suffix = "T";
  else if (p > 1e9)
    scaled = p * 1e-9, suffix = "B";
  else if (p > 1e6)
    scaled = p * 1e-6, suffix = "M";
  else
    scaled = p * 1e-3, suffix = "K";
  char digits[32];
  snprintf(digits, sizeof digits, "%.0f", round(scaled));
  const char *d = digits;
  while (*d == '0') d++;
  int fix = 2 - (int)strlen(d);
  snprintf(out, n, "%.*f%s", fix > 0 ? fix : 0, scaled, suffix);
}

static int has_key(const cJSON *config, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
  return v && !cJSON_IsNull(v);
}

int export_gguf_hparams(vkft_gguf_writer *w, const export_source *s, const char *general_type,
                        uint32_t llama_ftype, int file_type_last, uint64_t params,
                        const float *lora_alpha) {
  if (s->gguf) return export_gguf_hparams_copy(w, s, lora_alpha); /* an adapter of a GGUF */
  const vkft_model_config *c = &s->cfg;
  const char *arch = gguf_arch_name(c->arch);
  char path[2048], key[128], name[256], label[32];
  snprintf(path, sizeof path, "%s/config.json", s->model_dir);
  cJSON *config = vkft_json_read_file(path);
  if (!config) return VKFT_ERR;
  snprintf(name, sizeof name, "%s", s->model_dir);
  while (strlen(name) > 1 && (name[strlen(name) - 1] == '/' || name[strlen(name) - 1] == '\\'))
    name[strlen(name) - 1] = 0;
  const char *base = export_base_name(name);
  int st = vkft_gguf_set_str(w, "general.architecture", arch);
  st |= vkft_gguf_set_str(w, "general.type", general_type);
  if (lora_alpha) st |= vkft_gguf_set_str(w, "adapter.type", "lora");
  st |= vkft_gguf_set_str(w, "general.name", base);
  if (params) {
    size_label(params, label, sizeof label);
    st |= vkft_gguf_set_str(w, "general.size_label", label);
  }
  if (lora_alpha) st |= vkft_gguf_set_f32(w, "adapter.lora.alpha", *lora_alpha);
#define ARCH_KEY(k) (snprintf(key, sizeof key, "%s.%s", arch, k), key)
  st |= vkft_gguf_set_u32(w, ARCH_KEY("block_count"), (uint32_t)c->num_layers);
  st |= vkft_gguf_set_u32(w, ARCH_KEY("context_length"), (uint32_t)c->max_position_embeddings);
  st |= vkft_gguf_set_u32(w, ARCH_KEY("embedding_length"), (uint32_t)c->hidden_size);
  st |= vkft_gguf_set_u32(w, ARCH_KEY("feed_forward_length"), (uint32_t)c->intermediate_size);
  st |= vkft_gguf_set_u32(w, ARCH_KEY("attention.head_count"), (uint32_t)c->num_heads);
  if (has_key(config, "num_key_value_heads"))
    st |= vkft_gguf_set_u32(w, ARCH_KEY("attention.head_count_kv"), (uint32_t)c->num_kv_heads);
  if (has_key(config, "rope_theta"))
    st |= vkft_gguf_set_f32(w, ARCH_KEY("rope.freq_base"), (float)c->rope_theta);
  st |= vkft_gguf_set_f32(w, ARCH_KEY("attention.layer_norm_rms_epsilon"), (float)c->rms_norm_eps);
  if (has_key(config, "head_dim")) {
    st |= vkft_gguf_set_u32(w, ARCH_KEY("attention.key_length"), (uint32_t)c->head_dim);
    st |= vkft_gguf_set_u32(w, ARCH_KEY("attention.value_length"), (uint32_t)c->head_dim);
  }
  if (!file_type_last) st |= vkft_gguf_set_u32(w, "general.file_type", llama_ftype);
  if (!strcmp(arch, "llama")) {
    st |= vkft_gguf_set_u32(w, ARCH_KEY("vocab_size"), (uint32_t)s->vocab_rows);
    st |= vkft_gguf_set_u32(w, ARCH_KEY("rope.dimension_count"), (uint32_t)c->head_dim);
  }
#undef ARCH_KEY
  if (!file_type_last)
    st |= vkft_gguf_set_u32(w, "general.quantization_version", GGML_QUANT_VERSION);
  cJSON_Delete(config);
  return st ? VKFT_ERR : VKFT_OK;
}

/* ---- tensor data ---- */

typedef struct produce_ctx {
  const export_source *s;
  const out_tensor *list;
  int threads;
  const vkft_export_desc *d;
  int count;
  /* the chunk being made */
  const out_tensor *o;
  int64_t first, rows, block_rows;
  float *f32;
  uint8_t *out;
  uint64_t row_bytes;
} produce_ctx;

static int produce_block(int b, void *arg) {
  produce_ctx *p = arg;
  const out_tensor *o = p->o;
  const int64_t cols = o->ne[0];
  int64_t r0 = (int64_t)b * p->block_rows, n = p->rows - r0;
  if (n > p->block_rows) n = p->block_rows;
  if (n <= 0) return VKFT_OK;
  float *x = p->f32 + r0 * cols;
  int bias = o->src->is_bias && o->permute;
  if (export_rows(p->s, o->src, p->first + r0, n, o->permute && !bias ? gguf_permuted_row : NULL,
                  &p->s->cfg, x) != VKFT_OK)
    return VKFT_ERR;
  if (bias) { /* a q/k bias: permute its elements like the rows of the weight */
    float *tmp = malloc((size_t)cols * sizeof *tmp);
    if (!tmp) return vkft_error_nomem();
    int64_t heads = gguf_heads(&p->s->cfg, o->src);
    for (int64_t j = 0; j < cols; j++) tmp[j] = x[gguf_permute_index(cols, heads, j)];
    memcpy(x, tmp, (size_t)cols * sizeof *tmp);
    free(tmp);
  }
  if (!vkft_ggml_all_finite(x, n * cols))
    return vkft_error("%s: a weight in rows %lld..%lld is not finite (NaN or infinity)",
                      o->src->name, (long long)(p->first + r0), (long long)(p->first + r0 + n - 1));
  for (int64_t r = 0; r < n; r++)
    vkft_ggml_quantize_row(o->type, x + r * cols, p->out + (uint64_t)(r0 + r) * p->row_bytes, cols);
  return VKFT_OK;
}

static int produce(void *user, int64_t index, vkft_gguf_sink *sink) {
  produce_ctx *p = user;
  const out_tensor *o = &p->list[index];
  int status = VKFT_OK;
  if (o->generated) {
    status = vkft_gguf_sink_write(sink, o->generated, (size_t)o->ne[0] * sizeof(float));
  } else {
    const int64_t cols = o->ne[0], rows = o->n_dims == 2 ? o->ne[1] : 1;
    int64_t chunk = CHUNK_FLOATS / cols > 0 ? CHUNK_FLOATS / cols : 1;
    if (chunk > rows) chunk = rows;
    p->o = o;
    p->row_bytes = vkft_ggml_row_size(o->type, cols);
    p->f32 = malloc((size_t)(chunk * cols) * sizeof *p->f32);
    p->out = malloc((size_t)(chunk * (int64_t)p->row_bytes));
    if (!p->f32 || !p->out) status = vkft_error_nomem();
    int blocks = p->threads * 4;
    for (int64_t r = 0; r < rows && status == VKFT_OK; r += chunk) {
      p->first = r;
      p->rows = rows - r < chunk ? rows - r : chunk;
      p->block_rows = (p->rows + blocks - 1) / blocks;
      status = export_parallel(p->threads, blocks, produce_block, p);
      if (status == VKFT_OK)
        status = vkft_gguf_sink_write(sink, p->out, (size_t)(p->rows * (int64_t)p->row_bytes));
    }
    free(p->f32), free(p->out);
  }
  if (status == VKFT_OK && p->d->progress)
    p->d->progress(p->d->user, o->name, (int)index + 1, p->count);
  return status;
}

int export_gguf_model(const export_source *s, const vkft_export_desc *d, vkft_export_report *r) {
  const export_tensor *embed = export_source_find(s, "model.embed_tokens.weight");
  const char *type_name = d->type ? d->type : embed->dtype == VKFT_BF16 ? "bf16" : "f16";
  const file_type *f = NULL;
  for (size_t i = 0; i < sizeof file_types / sizeof file_types[0]; i++)
    if (!strcmp(type_name, file_types[i].name)) f = &file_types[i];
  if (!f)
    return vkft_error("--type %s: a GGUF export writes f32, f16, bf16, q8_0, q4_0 or q4_k_m",
                      type_name);
  float *rope = NULL;
  if (s->cfg.rope_llama3 && !(rope = llama3_rope_factors(&s->cfg))) return vkft_error_nomem();
  out_tensor *list = calloc((size_t)s->count + 1, sizeof *list);
  vkft_gguf_writer *w = NULL;
  int n = 0, status = list ? VKFT_OK : vkft_error_nomem();
  if (status == VKFT_OK) status = build_list(s, f, list, &n, rope, r->note, sizeof r->note);
  if (status == VKFT_OK) status = vkft_gguf_writer_create(&w);
  uint64_t params = 0, bytes = 0;
  for (int i = 0; status == VKFT_OK && i < n; i++) {
    status = vkft_gguf_add_tensor(w, list[i].name, list[i].type, list[i].n_dims, list[i].ne);
    params += (uint64_t)(list[i].ne[0] * (list[i].n_dims == 2 ? list[i].ne[1] : 1));
    bytes += vkft_ggml_row_size(list[i].type, list[i].ne[0]) *
             (uint64_t)(list[i].n_dims == 2 ? list[i].ne[1] : 1);
  }
  char tok_dir[1024];
  export_tokenizer_dir(s, tok_dir, sizeof tok_dir);
  if (status == VKFT_OK)
    status = export_gguf_hparams(w, s, "model", f->llama_ftype, f->quantize_rules, params, NULL);
  if (status == VKFT_OK) status = export_gguf_vocab(w, tok_dir, s->model_dir, s->vocab_rows);
  if (status == VKFT_OK && f->quantize_rules) { /* llama-quantize sets these two again */
    status = vkft_gguf_set_u32(w, "general.quantization_version", GGML_QUANT_VERSION) ||
             vkft_gguf_set_u32(w, "general.file_type", f->llama_ftype);
  }
  produce_ctx ctx = {.s = s, .list = list, .d = d, .count = n};
  ctx.threads = d->threads > 0 ? d->threads : vkft_cpu_count();
  if (status == VKFT_OK) status = vkft_gguf_writer_save(w, d->out, produce, &ctx);
  vkft_gguf_writer_free(w);
  free(list);
  free(rope);
  if (status != VKFT_OK) return VKFT_ERR;
  r->tensors = n;
  r->bytes = bytes;
  if (!d->no_modelfile)
    return export_modelfile(d->out, NULL, tok_dir, r->modelfile, sizeof r->modelfile);
  return VKFT_OK;
}
