/* A GGUF file as the base of an export (a LoRA trained with model: FILE.gguf): the adapter's
 * pairs listed against the shapes the file's config implies, and the base's hyperparameters
 * copied from its own metadata into the GGUF adapter (general.architecture, general.name and
 * every "<arch>." key, as llama.cpp wrote them). Only --to gguf-lora: merging into a quantized
 * file would quantize twice, and llama.cpp's llama-export-lora merges a GGUF adapter into its
 * GGUF base itself. */
#include "internal.h"

#include "vkft/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int export_source_open_gguf(export_source *s, const char *model_path, const char *adapter_dir) {
  memset(s, 0, sizeof *s);
  snprintf(s->model_dir, sizeof s->model_dir, "%s", model_path);
  if (vkft_model_config_load(model_path, &s->cfg) != VKFT_OK ||
      vkft_gguf_open(model_path, &s->gguf) != VKFT_OK)
    return VKFT_ERR;
  if (!adapter_dir) return vkft_error("--to gguf-lora needs --adapter DIR");
  if (export_source_open_adapter(s, adapter_dir) != VKFT_OK) return VKFT_ERR;
  if (s->info.use_dora)
    return vkft_error_with(
        VKFT_ERR_UNSUPPORTED,
        "the adapter is DoRA (use_dora): a llama.cpp LoRA adapter has no place for its "
        "magnitude vectors; export a merged model (--to hf, or --to gguf) instead");
  char path[2048]; /* the adapter's tensors, for the messages */
  snprintf(path, sizeof path, "%s/adapter_model.safetensors", adapter_dir);
  s->vocab_rows = s->cfg.vocab_size;
  s->tied = s->cfg.tie_word_embeddings;
  const vkft_model_config *c = &s->cfg;
  int cap = (int)c->num_layers * VKFT_PROJ_COUNT;
  if (!(s->tensors = calloc((size_t)(cap ? cap : 1), sizeof *s->tensors)))
    return vkft_error_nomem();
  s->capacity = cap;
  for (int l = 0; l < c->num_layers; l++)
    for (int p = 0; p < VKFT_PROJ_COUNT; p++) {
      if (!(s->info.targets & (1u << p))) continue;
      export_tensor *e = &s->tensors[s->count];
      char a[220], b[220];
      snprintf(e->name, sizeof e->name, "model.layers.%d.%s.weight", l, vkft_proj_path(p));
      e->rank = 2;
      vkft_model_proj_shape(c, p, &e->rows, &e->cols);
      e->dtype = VKFT_F32;
      e->layer = l;
      e->proj = p;
      snprintf(a, sizeof a, "base_model.model.model.layers.%d.%s.lora_A.weight", l,
               vkft_proj_path(p));
      snprintf(b, sizeof b, "base_model.model.model.layers.%d.%s.lora_B.weight", l,
               vkft_proj_path(p));
      const vkft_st_tensor *A = e->lora_a = vkft_st_find(s->adapter, a);
      const vkft_st_tensor *B = e->lora_b = vkft_st_find(s->adapter, b);
      vkft_dtype da, db;
      if (!A || !B || A->rank != 2 || B->rank != 2 || A->shape[0] != s->info.r ||
          B->shape[1] != s->info.r || A->shape[1] != e->cols || B->shape[0] != e->rows ||
          vkft_st_to_dtype(A->dtype, &da) || vkft_st_to_dtype(B->dtype, &db) || da == VKFT_I32 ||
          db == VKFT_I32)
        return vkft_error("%s: \"%s\" or its lora_B is missing or does not fit %s (%lld x %lld) "
                          "with r = %lld",
                          path, a, model_path, (long long)e->rows, (long long)e->cols,
                          (long long)s->info.r);
      s->count++;
    }
  if (2 * s->count != vkft_st_count(s->adapter) && !s->info.modules_to_save)
    return vkft_error("%s: %d tensors are not LoRA weights of this model's target modules", path,
                      vkft_st_count(s->adapter) - 2 * s->count);
  return VKFT_OK;
}

int export_gguf_hparams_copy(vkft_gguf_writer *w, const export_source *s, const float *lora_alpha) {
  const vkft_gguf *g = s->gguf;
  const char *arch;
  uint64_t len;
  if (vkft_gguf_get_str(g, "general.architecture", &arch, &len) != VKFT_OK) return VKFT_ERR;
  char prefix[80], name[256];
  snprintf(prefix, sizeof prefix, "%.*s.", (int)(len < 70 ? len : 70), arch);
  const char *general_name;
  uint64_t name_len;
  if (vkft_gguf_find_key(g, "general.name") >= 0 &&
      vkft_gguf_get_str(g, "general.name", &general_name, &name_len) == VKFT_OK)
    snprintf(name, sizeof name, "%.*s", (int)(name_len < 255 ? name_len : 255), general_name);
  else
    snprintf(name, sizeof name, "%s", export_base_name(s->model_dir));
  int st =
      vkft_gguf_set_value(w, "general.architecture",
                          vkft_gguf_kv_value(g, vkft_gguf_find_key(g, "general.architecture")));
  st |= vkft_gguf_set_str(w, "general.type", "adapter");
  st |= vkft_gguf_set_str(w, "adapter.type", "lora");
  st |= vkft_gguf_set_str(w, "general.name", name);
  st |= vkft_gguf_set_f32(w, "adapter.lora.alpha", *lora_alpha);
  for (int64_t i = 0; !st && i < vkft_gguf_kv_count(g); i++) {
    const char *key = vkft_gguf_kv_key(g, i);
    if (!strncmp(key, prefix, strlen(prefix)))
      st |= vkft_gguf_set_value(w, key, vkft_gguf_kv_value(g, i));
  }
  return st ? VKFT_ERR : VKFT_OK;
}
