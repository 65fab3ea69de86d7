/* Writing a model folder with random weights for a given config.json text: the tiny models of
 * each architecture the tests compare backends on, and the benchmark's model. */
#include "vkft/model.h"

#include "vkft/error.h"
#include "vkft/platform.h"
#include "vkft/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct blobs {
  void *items[4096];
  int count;
} blobs;

static float next_uniform(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int add(vkft_st_writer *w, blobs *b, uint64_t *rng, vkft_dtype dt, const char *name,
               int rank, int64_t d0, int64_t d1, double mean, double spread) {
  int64_t n = d0 * (rank == 2 ? d1 : 1);
  if (b->count == 4096) return vkft_error("synthetic model: too many tensors");
  float *f = malloc((size_t)n * sizeof *f);
  void *blob = malloc((size_t)n * vkft_dtype_size(dt));
  if (!f || !blob) {
    free(f);
    free(blob);
    return vkft_error_nomem();
  }
  for (int64_t i = 0; i < n; i++) f[i] = (float)(mean + spread * next_uniform(rng));
  vkft_convert_from_f32(dt, f, blob, (size_t)n);
  free(f);
  b->items[b->count++] = blob;
  return vkft_st_writer_add(w, name, dt, rank, (int64_t[]){d0, d1}, blob);
}

int vkft_model_write_random(const char *dir, const char *config_json, vkft_dtype dtype,
                            uint64_t seed) {
  char path[2048];
  if (vkft_mkdirs(dir) != VKFT_OK) return VKFT_ERR;
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (vkft_file_write_atomic(path, config_json, strlen(config_json)) != VKFT_OK) return VKFT_ERR;
  vkft_model_config c;
  if (vkft_model_config_load(dir, &c) != VKFT_OK) return VKFT_ERR;
  int64_t C = c.hidden_size, V = c.vocab_size, D = c.head_dim;
  vkft_st_writer *w;
  if (vkft_st_writer_create(&w) != VKFT_OK) return VKFT_ERR;
  blobs *b = calloc(1, sizeof *b);
  uint64_t rng = seed;
  int status = b ? VKFT_OK : vkft_error_nomem();
  if (!status) status = add(w, b, &rng, dtype, "model.embed_tokens.weight", 2, V, C, 0, 0.5);
  if (!status) status = add(w, b, &rng, dtype, "model.norm.weight", 1, C, 0, 1, 0.2);
  if (!status && !c.tie_word_embeddings)
    status = add(w, b, &rng, dtype, "lm_head.weight", 2, V, C, 0, 0.3);
  for (int l = 0; !status && l < c.num_layers; l++) {
    char n[160];
    for (int p = 0; !status && p < VKFT_PROJ_COUNT; p++) {
      int64_t out, in;
      vkft_model_proj_shape(&c, p, &out, &in);
      snprintf(n, sizeof n, "model.layers.%d.%s.weight", l, vkft_proj_path(p));
      status = add(w, b, &rng, dtype, n, 2, out, in, 0, 1.0 / sqrt((double)in));
      if (!status && vkft_proj_has_bias(p) && c.attention_bias) {
        snprintf(n, sizeof n, "model.layers.%d.%s.bias", l, vkft_proj_path(p));
        status = add(w, b, &rng, dtype, n, 1, out, 0, 0, 0.1);
      }
    }
    snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l);
    if (!status) status = add(w, b, &rng, dtype, n, 1, C, 0, 1, 0.2);
    snprintf(n, sizeof n, "model.layers.%d.post_attention_layernorm.weight", l);
    if (!status) status = add(w, b, &rng, dtype, n, 1, C, 0, 1, 0.2);
    if (!status && c.qk_norm) {
      snprintf(n, sizeof n, "model.layers.%d.self_attn.q_norm.weight", l);
      status = add(w, b, &rng, dtype, n, 1, D, 0, 1, 0.2);
      snprintf(n, sizeof n, "model.layers.%d.self_attn.k_norm.weight", l);
      if (!status) status = add(w, b, &rng, dtype, n, 1, D, 0, 1, 0.2);
    }
  }
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (!status) status = vkft_st_writer_save(w, path);
  vkft_st_writer_free(w);
  for (int i = 0; b && i < b->count; i++) free(b->items[i]);
  free(b);
  return status;
}
