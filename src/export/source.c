/* The merged weights the exporters write: a base model folder and an optional PEFT LoRA
 * adapter (read with vkft_adapter_read_config and adapter_model.safetensors), listed in
 * Hugging Face state-dict order and read row by row in fp32 with W + s * B A merged (DoRA: times
 * m / ||W + s B A|| per row). */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_quantized(const vkft_st_set *set, const vkft_st_tensor *t, const char *name,
                          export_tensor *e) {
  vkft_bnb4_weight *w = calloc(1, sizeof *w);
  if (!w) return vkft_error_nomem();
  int status = vkft_bnb4_read(set, name, w);
  if (status == VKFT_OK && w->rank != 2)
    status = vkft_error("%s: 4-bit tensor \"%s\" is not a matrix", vkft_st_file_of(set, t), name);
  if (status != VKFT_OK) {
    vkft_bnb4_weight_free(w);
    free(w);
    return VKFT_ERR;
  }
  e->quant = w;
  e->dtype = w->dtype;
  e->rank = 2;
  e->rows = w->shape[0];
  e->cols = w->shape[1];
  return VKFT_OK;
}

/* whether `name` is one of the tensors bitsandbytes stores beside a 4-bit weight of the list
 * (its absmax, quant_map, nested scales and quant_state) */
static int quant_aux(const export_source *s, const char *name) {
  static const char *const suffixes[] = {".absmax", ".quant_map", ".nested_absmax",
                                         ".nested_quant_map", ".quant_state."};
  for (size_t k = 0; k < sizeof suffixes / sizeof *suffixes; k++) {
    const char *at = strstr(name, suffixes[k]);
    if (!at || (k < 4 && at[strlen(suffixes[k])] != 0)) continue;
    char weight[220];
    snprintf(weight, sizeof weight, "%.*s", (int)(at - name), name);
    const export_tensor *e = export_source_find(s, weight);
    if (e && e->quant) return 1;
  }
  return 0;
}

/* DoRA: the magnitude of projection `proj` of `layer`, PEFT's "...lora_magnitude_vector" of
 * (out) values (src/model/peft.c) */
static int find_magnitude(const export_source *s, int layer, int proj, export_tensor *e) {
  char key[220];
  snprintf(key, sizeof key, "base_model.model.model.layers.%d.%s.lora_magnitude_vector", layer,
           vkft_proj_path(proj));
  const vkft_st_tensor *m = e->lora_m = vkft_st_find(s->adapter, key);
  vkft_dtype dt;
  if (!m || m->rank != 1 || m->shape[0] != e->rows || vkft_st_to_dtype(m->dtype, &dt) ||
      dt == VKFT_I32)
    return vkft_error("adapter_model.safetensors: \"%s\" is missing or is not a float vector of "
                      "%lld values (adapter_config.json has use_dora)",
                      key, (long long)e->rows);
  return VKFT_OK;
}

static int add_tensor(export_source *s, const char *name, int layer, int proj, int is_bias,
                      int required) {
  const vkft_st_tensor *t = vkft_st_find(s->base, name);
  const vkft_st_set *set = s->base;
  /* modules_to_save: the adapter holds the whole trained tensor under PEFT's key */
  char key[220];
  snprintf(key, sizeof key, "base_model.model.%s", name);
  const vkft_st_tensor *saved = s->adapter ? vkft_st_find(s->adapter, key) : NULL;
  if (saved) t = saved, set = s->adapter;
  if (!t) {
    if (!required) return VKFT_OK;
    return vkft_error("%s: the base model has no tensor \"%s\"", s->model_dir, name);
  }
  export_tensor *e = &s->tensors[s->count];
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "%s", name);
  e->base = t;
  e->base_set = set;
  e->layer = layer;
  e->proj = proj;
  e->is_bias = is_bias;
  if (set == s->base && vkft_bnb4_is_quantized(set, name)) {
    /* a 4-bit projection: dequantized as it is read, exported in the dtype it came from */
    if (read_quantized(set, t, name, e) != VKFT_OK) return VKFT_ERR;
    s->quantized = 1;
  } else {
    if (vkft_st_to_dtype(t->dtype, &e->dtype) != 0 || e->dtype == VKFT_I32 || t->rank < 1 ||
        t->rank > 2)
      return vkft_error("%s: tensor \"%s\" is %s of rank %d (expected a float matrix or vector)",
                        vkft_st_file_of(set, t), name, t->dtype_name, t->rank);
    e->rank = t->rank;
    e->rows = t->rank == 2 ? t->shape[0] : 1; /* a vector is one row */
    e->cols = t->rank == 2 ? t->shape[1] : t->shape[0];
  }
  if (s->adapter && proj >= 0 && !is_bias && (s->info.targets & (1u << proj))) {
    char a[220], b[220];
    snprintf(a, sizeof a, "base_model.model.model.layers.%d.%s.lora_A.weight", layer,
             vkft_proj_path(proj));
    snprintf(b, sizeof b, "base_model.model.model.layers.%d.%s.lora_B.weight", layer,
             vkft_proj_path(proj));
    e->lora_a = vkft_st_find(s->adapter, a);
    e->lora_b = vkft_st_find(s->adapter, b);
    if (!e->lora_a || !e->lora_b)
      return vkft_error("%s: adapter_model.safetensors lacks \"%s\" or its lora_B", s->model_dir,
                        a);
    const vkft_st_tensor *A = e->lora_a, *B = e->lora_b;
    vkft_dtype da, db;
    if (A->rank != 2 || B->rank != 2 || A->shape[0] != s->info.r || B->shape[1] != s->info.r ||
        A->shape[1] != e->cols || B->shape[0] != e->rows || vkft_st_to_dtype(A->dtype, &da) ||
        vkft_st_to_dtype(B->dtype, &db) || da == VKFT_I32 || db == VKFT_I32)
      return vkft_error("adapter tensor \"%s\" or its lora_B does not fit \"%s\" (%lld x %lld) "
                        "with r = %lld",
                        a, name, (long long)e->rows, (long long)e->cols, (long long)s->info.r);
    if (s->info.use_dora && find_magnitude(s, layer, proj, e) != VKFT_OK) return VKFT_ERR;
  }
  s->count++;
  return VKFT_OK;
}

/* The weights in the order transformers' state_dict lists them (module registration order),
 * which is also the order save_pretrained shards them in. */
static int list_tensors(export_source *s) {
  const vkft_model_config *c = &s->cfg;
  int cap = 8 + (int)c->num_layers * 16;
  s->tensors = calloc((size_t)cap, sizeof *s->tensors);
  if (!s->tensors) return vkft_error_nomem();
  s->capacity = cap;
  if (add_tensor(s, "model.embed_tokens.weight", -1, -1, 0, 1)) return VKFT_ERR;
  char n[160];
  for (int l = 0; l < c->num_layers; l++) {
    for (int p = 0; p < VKFT_PROJ_COUNT; p++) {
      snprintf(n, sizeof n, "model.layers.%d.%s.weight", l, vkft_proj_path(p));
      if (add_tensor(s, n, l, p, 0, 1)) return VKFT_ERR;
      snprintf(n, sizeof n, "model.layers.%d.%s.bias", l, vkft_proj_path(p));
      if (vkft_proj_has_bias(p) && add_tensor(s, n, l, p, 1, c->attention_bias)) return VKFT_ERR;
      if (p == VKFT_PROJ_O && c->qk_norm) {
        snprintf(n, sizeof n, "model.layers.%d.self_attn.q_norm.weight", l);
        if (add_tensor(s, n, l, -1, 0, 1)) return VKFT_ERR;
        snprintf(n, sizeof n, "model.layers.%d.self_attn.k_norm.weight", l);
        if (add_tensor(s, n, l, -1, 0, 1)) return VKFT_ERR;
      }
    }
    snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l);
    if (add_tensor(s, n, l, -1, 0, 1)) return VKFT_ERR;
    snprintf(n, sizeof n, "model.layers.%d.post_attention_layernorm.weight", l);
    if (add_tensor(s, n, l, -1, 0, 1)) return VKFT_ERR;
  }
  if (add_tensor(s, "model.norm.weight", -1, -1, 0, 1)) return VKFT_ERR;
  if (!c->tie_word_embeddings && add_tensor(s, "lm_head.weight", -1, -1, 0, 1)) return VKFT_ERR;
  s->tied = c->tie_word_embeddings;
  /* nothing in the base may be left behind unnoticed */
  for (int i = 0; i < vkft_st_count(s->base); i++) {
    const char *name = vkft_st_at(s->base, i)->name;
    if (!export_source_find(s, name) && !(s->tied && !strcmp(name, "lm_head.weight")) &&
        !strstr(name, "rotary_emb.inv_freq") && !quant_aux(s, name))
      return vkft_error("%s: tensor \"%s\" is not part of a %s model as vkft knows it",
                        vkft_st_file_of(s->base, vkft_st_at(s->base, i)), name,
                        s->cfg.architecture);
  }
  return VKFT_OK;
}

/* every adapter tensor must be used: a LoRA pair of a target or a module to save */
static int check_adapter_used(const export_source *s) {
  int used = 0;
  for (int i = 0; i < s->count; i++)
    used += (s->tensors[i].lora_a != NULL) * 2 + (s->tensors[i].lora_m != NULL) +
            (s->tensors[i].base_set == s->adapter);
  if (used != vkft_st_count(s->adapter))
    return vkft_error("adapter_model.safetensors: %d tensors are not LoRA weights of this "
                      "model's target modules or modules to save",
                      vkft_st_count(s->adapter) - used);
  return VKFT_OK;
}

int export_source_open_adapter(export_source *s, const char *adapter_dir) {
  char path[2048];
  snprintf(s->adapter_dir, sizeof s->adapter_dir, "%s", adapter_dir);
  if (vkft_adapter_read_config(adapter_dir, &s->info) != VKFT_OK) return VKFT_ERR;
  snprintf(path, sizeof path, "%s/adapter_model.safetensors", adapter_dir);
  if (vkft_st_open(path, &s->adapter) != VKFT_OK) return VKFT_ERR;
  s->has_adapter = 1;
  s->scale = (float)vkft_adapter_scale(&s->info);
  return VKFT_OK;
}

int export_source_open(export_source *s, const char *model_dir, const char *adapter_dir) {
  memset(s, 0, sizeof *s);
  snprintf(s->model_dir, sizeof s->model_dir, "%s", model_dir);
  if (vkft_model_config_load(model_dir, &s->cfg) != VKFT_OK) return VKFT_ERR;
  if (vkft_st_open(model_dir, &s->base) != VKFT_OK) return VKFT_ERR;
  if (adapter_dir && export_source_open_adapter(s, adapter_dir) != VKFT_OK) return VKFT_ERR;
  if (list_tensors(s) != VKFT_OK) return VKFT_ERR;
  if (s->adapter && check_adapter_used(s) != VKFT_OK) return VKFT_ERR;
  const export_tensor *embed = export_source_find(s, "model.embed_tokens.weight");
  s->vocab_rows = embed->rows;
  const export_tensor *head = export_source_find(s, "lm_head.weight");
  if (embed->cols != s->cfg.hidden_size || (head && head->rows != embed->rows))
    return vkft_error("%s: the embedding (%lld x %lld) and the output head (%lld rows) do not "
                      "agree with hidden_size %lld",
                      model_dir, (long long)embed->rows, (long long)embed->cols,
                      (long long)(head ? head->rows : embed->rows), (long long)s->cfg.hidden_size);
  return VKFT_OK;
}

void export_source_close(export_source *s) {
  for (int i = 0; s->tensors && i < s->capacity; i++) { /* a failed add may hold one too */
    vkft_bnb4_weight_free(s->tensors[i].quant);
    free(s->tensors[i].quant);
  }
  free(s->tensors);
  vkft_st_close(s->base);
  vkft_st_close(s->adapter);
  vkft_gguf_close(s->gguf);
  memset(s, 0, sizeof *s);
}

const char *export_base_name(const char *path) {
  const char *base = path;
  for (const char *p = path; *p; p++)
    if ((*p == '/' || *p == '\\') && p[1]) base = p + 1;
  return base;
}

const export_tensor *export_source_find(const export_source *s, const char *name) {
  for (int i = 0; i < s->count; i++)
    if (!strcmp(s->tensors[i].name, name)) return &s->tensors[i];
  return NULL;
}

static void row_f32(const vkft_st_tensor *t, int64_t row, int64_t cols, float *out) {
  vkft_dtype dt = VKFT_F32;
  vkft_st_to_dtype(t->dtype, &dt);
  size_t esize = vkft_dtype_size(dt);
  vkft_convert_to_f32(dt, t->data + (size_t)row * (size_t)cols * esize, out, (size_t)cols);
}

/* DoRA's merge (PEFT's DoraLinearVariant.merge_safe): the merged row W + s B A times
 * m / ||W + s B A||, the norm summed in double over the fp32 row. */
static void dora_scale_row(const vkft_st_tensor *magnitude, int64_t row, float *o, int64_t C) {
  double sum = 0;
  for (int64_t j = 0; j < C; j++) sum += (double)o[j] * o[j];
  float m;
  row_f32(magnitude, row, 1, &m);
  float factor = m / (float)sqrt(sum);
  for (int64_t j = 0; j < C; j++) o[j] *= factor;
}

int export_rows(const export_source *s, const export_tensor *t, int64_t first, int64_t n,
                export_row_map row_of, const void *ctx, float *out) {
  if (first < 0 || n < 0 || first + n > t->rows) return vkft_error("export: bad row range");
  const int64_t C = t->cols, R = t->lora_a ? t->lora_a->shape[0] : 0;
  float *acc = NULL, *a = NULL, *b_row = NULL;
  if (t->lora_a) {
    acc = malloc((size_t)C * sizeof *acc);
    a = malloc((size_t)(R * C) * sizeof *a);
    b_row = malloc((size_t)R * sizeof *b_row);
    if (!acc || !a || !b_row) {
      free(acc), free(a), free(b_row);
      return vkft_error_nomem();
    }
    for (int64_t k = 0; k < R; k++) row_f32(t->lora_a, k, C, a + k * C);
  }
  for (int64_t i = 0; i < n; i++) {
    int64_t src = row_of ? row_of(t, first + i, ctx) : first + i;
    float *o = out + i * C;
    if (t->quant)
      vkft_bnb4_dequantize_range(t->quant, src * C, C, o);
    else
      row_f32(t->base, src, C, o);
    if (!t->lora_a) continue;
    /* delta = (B[src, :] . A) * s, accumulated in fp32 over k in order, as PEFT's merge
     * (delta_weight = B @ A * scaling) computes it */
    row_f32(t->lora_b, src, R, b_row);
    memset(acc, 0, (size_t)C * sizeof *acc);
    for (int64_t k = 0; k < R; k++) {
      const float b = b_row[k], *a_k = a + k * C;
      for (int64_t j = 0; j < C; j++) acc[j] += b * a_k[j];
    }
    for (int64_t j = 0; j < C; j++) o[j] += acc[j] * s->scale;
    if (t->lora_m) dora_scale_row(t->lora_m, src, o, C);
  }
  free(acc), free(a), free(b_row);
  return VKFT_OK;
}

/* ---- a small parallel-for over the platform's threads ---- */

typedef struct parallel_job {
  int n, next, status;
  int (*fn)(int i, void *arg);
  void *arg;
  vkft_mutex *lock;
  char message[512];
} parallel_job;

static void parallel_worker(void *p) {
  parallel_job *job = p;
  for (;;) {
    vkft_mutex_lock(job->lock);
    int i = job->status == VKFT_OK && job->next < job->n ? job->next++ : -1;
    vkft_mutex_unlock(job->lock);
    if (i < 0) return;
    if (job->fn(i, job->arg) != VKFT_OK) {
      vkft_mutex_lock(job->lock);
      if (job->status == VKFT_OK) /* messages are per thread: carry the first one over */
        snprintf(job->message, sizeof job->message, "%s", vkft_error_message());
      job->status = VKFT_ERR;
      vkft_mutex_unlock(job->lock);
    }
  }
}

int export_parallel(int threads, int n, int (*fn)(int i, void *arg), void *arg) {
  if (threads <= 0) threads = vkft_cpu_count();
  if (threads > n) threads = n;
  if (threads <= 1) {
    for (int i = 0; i < n; i++)
      if (fn(i, arg) != VKFT_OK) return VKFT_ERR;
    return VKFT_OK;
  }
  parallel_job job = {.n = n, .fn = fn, .arg = arg, .lock = vkft_mutex_create()};
  if (!job.lock) return vkft_error("cannot create a mutex");
  vkft_thread *pool[64];
  int started = 0;
  for (int t = 0; t < threads - 1 && t < 64; t++)
    if ((pool[started] = vkft_thread_start(parallel_worker, &job))) started++;
  parallel_worker(&job);
  for (int t = 0; t < started; t++) vkft_thread_join(pool[t]);
  vkft_mutex_destroy(job.lock);
  return job.status == VKFT_OK ? VKFT_OK : vkft_error("%s", job.message);
}
