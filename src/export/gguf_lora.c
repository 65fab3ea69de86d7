/* The LoRA adapter alone as a GGUF adapter for llama.cpp (--lora, createContext({lora})), as
 * convert_lora_to_gguf.py writes it and src/llama-adapter.cpp reads it: general.type "adapter",
 * adapter.type "lora", adapter.lora.alpha, the base model's hyperparameters, and for each
 * adapted weight W (ne [in, out]) the pair "W.lora_a" (ne [in, r], PEFT's A) and "W.lora_b"
 * (ne [r, out], PEFT's B), in the adapter file's (sorted) order. llama.cpp scales the product
 * by alpha / r with r read from the tensors, so an rsLoRA adapter (s = alpha / sqrt(r)) is
 * written with alpha * sqrt(r); the converter itself ignores use_rslora. For Llama-family
 * models the q/k rows of B are permuted like the base weights (A is unchanged). llama.cpp's
 * adapters carry only low-rank pairs: modules_to_save (whole embedding or head) cannot be
 * expressed and is refused. */
#include "gguf_names.h"
#include "internal.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lora_pair {
  const export_tensor *t;
  char name[VKFT_GGUF_MAX_NAME + 1]; /* the base weight's GGUF name */
} lora_pair;

typedef struct lora_ctx {
  const export_source *s;
  lora_pair *pairs;
  int count;
  const vkft_export_desc *d;
} lora_ctx;

static int by_hf_name(const void *a, const void *b) {
  return strcmp(((const lora_pair *)a)->t->name, ((const lora_pair *)b)->t->name);
}

/* tensor 2k is pair k's A (r rows of `in`), 2k + 1 its B (out rows of r) */
static int produce(void *user, int64_t index, vkft_gguf_sink *sink) {
  lora_ctx *c = user;
  const lora_pair *p = &c->pairs[index / 2];
  const vkft_st_tensor *src = index % 2 ? p->t->lora_b : p->t->lora_a;
  const int64_t rows = src->shape[0], cols = src->shape[1];
  const int permute = index % 2 && gguf_needs_permute(&c->s->cfg, p->t);
  float *row = malloc((size_t)cols * sizeof *row);
  if (!row) return vkft_error_nomem();
  vkft_dtype dt = VKFT_F32;
  vkft_st_to_dtype(src->dtype, &dt);
  int status = VKFT_OK;
  for (int64_t r = 0; r < rows && status == VKFT_OK; r++) {
    int64_t from = permute ? gguf_permute_index(rows, gguf_heads(&c->s->cfg, p->t), r) : r;
    vkft_convert_to_f32(dt, src->data + (size_t)(from * cols) * vkft_dtype_size(dt), row,
                        (size_t)cols);
    status = vkft_ggml_all_finite(row, cols)
                 ? vkft_gguf_sink_write(sink, row, (size_t)cols * sizeof *row)
                 : vkft_error("%s: the adapter holds a value that is not finite", p->t->name);
  }
  free(row);
  if (status == VKFT_OK && c->d->progress)
    c->d->progress(c->d->user, p->name, (int)index + 1, 2 * c->count);
  return status;
}

int export_gguf_lora(const export_source *s, const vkft_export_desc *d, vkft_export_report *r) {
  if (!s->has_adapter) return vkft_error("--to gguf-lora needs --adapter DIR");
  if (s->info.use_dora)
    return vkft_error_with(
        VKFT_ERR_UNSUPPORTED,
        "the adapter is DoRA (use_dora): a llama.cpp LoRA adapter has no place for its "
        "magnitude vectors; export a merged model (--to hf, or --to gguf) instead");
  if (s->info.modules_to_save)
    return vkft_error_with(
        VKFT_ERR_UNSUPPORTED,
        "the adapter saves whole modules (modules_to_save: embed_tokens/lm_head), "
        "which a llama.cpp LoRA adapter cannot carry; export a merged model with "
        "--to gguf instead");
  if (d->type && strcmp(d->type, "f32"))
    return vkft_error("--type %s: LoRA tensors are written as f32 (llama.cpp's converter writes "
                      "every tensor whose name does not end in .weight as F32)",
                      d->type);
  lora_ctx c = {.s = s, .d = d};
  c.pairs = calloc((size_t)s->count, sizeof *c.pairs);
  if (!c.pairs) return vkft_error_nomem();
  int status = VKFT_OK;
  for (int i = 0; i < s->count && status == VKFT_OK; i++) {
    const export_tensor *t = &s->tensors[i];
    if (!t->lora_a) continue;
    c.pairs[c.count].t = t;
    if (gguf_tensor_name(t, c.pairs[c.count].name, sizeof c.pairs[c.count].name) != 0)
      status = vkft_error("%s has no llama.cpp name", t->name);
    if (strlen(c.pairs[c.count].name) + 7 > VKFT_GGUF_MAX_NAME)
      status = vkft_error("%s: the GGUF name is too long", t->name);
    c.count++;
  }
  if (status == VKFT_OK && !c.count)
    status = vkft_error("the adapter has no LoRA weights to export");
  qsort(c.pairs, (size_t)c.count, sizeof *c.pairs, by_hf_name);
  vkft_gguf_writer *w = NULL;
  if (status == VKFT_OK) status = vkft_gguf_writer_create(&w);
  /* llama.cpp: scale = alpha / r (r = lora_a's ne[1]); rsLoRA's s = alpha / sqrt(r) */
  const float alpha =
      (float)(s->info.use_rslora ? s->info.alpha * sqrt((double)s->info.r) : s->info.alpha);
  if (s->info.use_rslora)
    snprintf(r->note, sizeof r->note,
             "rsLoRA: adapter.lora.alpha is alpha * sqrt(r) = %g so that llama.cpp's alpha / r "
             "gives the adapter's scale alpha / sqrt(r) = %g",
             alpha, vkft_adapter_scale(&s->info));
  if (status == VKFT_OK) status = export_gguf_hparams(w, s, "adapter", 0, 0, 0, &alpha);
  uint64_t bytes = 0;
  for (int k = 0; k < c.count && status == VKFT_OK; k++) {
    char name[VKFT_GGUF_MAX_NAME + 1];
    const vkft_st_tensor *A = c.pairs[k].t->lora_a, *B = c.pairs[k].t->lora_b;
    snprintf(name, sizeof name, "%s.lora_a", c.pairs[k].name);
    status = vkft_gguf_add_tensor(w, name, VKFT_GGML_F32, 2, (int64_t[]){A->shape[1], A->shape[0]});
    snprintf(name, sizeof name, "%s.lora_b", c.pairs[k].name);
    if (status == VKFT_OK)
      status =
          vkft_gguf_add_tensor(w, name, VKFT_GGML_F32, 2, (int64_t[]){B->shape[1], B->shape[0]});
    bytes += 4 * (uint64_t)(A->shape[0] * A->shape[1] + B->shape[0] * B->shape[1]);
  }
  if (status == VKFT_OK) status = vkft_gguf_writer_save(w, d->out, produce, &c);
  vkft_gguf_writer_free(w);
  free(c.pairs);
  if (status != VKFT_OK) return VKFT_ERR;
  r->tensors = 2 * c.count;
  r->bytes = bytes;
  if (d->no_modelfile) return VKFT_OK;
  char tok_dir[1024];
  export_tokenizer_dir(s, tok_dir, sizeof tok_dir);
  return export_modelfile(s->model_dir, d->out, tok_dir, r->modelfile, sizeof r->modelfile);
}
