/* `vkft quantize`: an f32/f16/bf16 Hugging Face folder written as the folder that
 * save_pretrained() writes after loading it with load_in_4bit — each layer's seven projections
 * as bnb 4-bit weights, everything else as it was — streaming one weight at a time.
 *
 * Each output shard holds the converted tensors of the source shard of the same name. The
 * safetensors layout orders tensors by dtype then name, so one weight's pieces are far apart in
 * the file (its fp32 scales early, its uint8 nibbles late): the block scales of a shard are
 * computed first and kept (1/16 byte per weight, 1/64 with double quantization), and the packed
 * nibbles are produced while the file is written, one weight at a time. */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/json.h"
#include "vkft/model_config.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct qweight {
  const vkft_st_tensor *src;
  vkft_bnb4_weight w; /* scales only: the nibbles are produced while saving */
  char *state_json;
  struct job *job;
} qweight;

typedef struct job {
  const vkft_quantize_desc *desc;
  vkft_st_set *set;
  qweight *weights;
  int count, done;
  int *weight_of; /* per tensor of the set: its index in weights, or -1 */
  float dynamic_map[256];
  vkft_quantize_stats *stats;
  void (*progress)(void *user, int done, int total);
  void *user;
} job;

static void free_scales(qweight *q) {
  vkft_bnb4_weight_free(&q->w);
  free(q->state_json);
  q->state_json = NULL;
}

/* Block scales (double-quantized if asked) and the quant_state JSON of one weight. */
static int prepare_scales(job *j, qweight *q) {
  const vkft_quantize_desc *d = j->desc;
  const vkft_st_tensor *t = q->src;
  vkft_bnb4_weight *w = &q->w;
  double start = vkft_time_s();
  *w = (vkft_bnb4_weight){.type = d->type, .blocksize = d->blocksize, .rank = 2};
  w->shape[0] = t->shape[0];
  w->shape[1] = t->shape[1];
  w->numel = t->numel;
  w->blocks = (t->numel + d->blocksize - 1) / d->blocksize;
  vkft_st_to_dtype(t->dtype, &w->dtype);
  vkft_bnb4_code(d->type, w->code);
  vkft_bnb4_quant_map(d->type, w->quant_map);
  int64_t nested_blocks = (w->blocks + VKFT_BNB_NESTED_BLOCKSIZE - 1) / VKFT_BNB_NESTED_BLOCKSIZE;
  float *absmax = malloc((size_t)w->blocks * sizeof(float));
  float *nested =
      d->double_quant ? malloc((size_t)nested_blocks * sizeof(float) + (size_t)w->blocks) : NULL;
  if (!absmax || (d->double_quant && !nested)) {
    free(absmax);
    free(nested);
    return vkft_error_with(VKFT_ERR_NOMEM, "%s: out of host memory", t->name);
  }
  vkft_bnb4_absmax(w->blocksize, w->dtype, t->data, t->numel, absmax);
  if (d->double_quant) {
    uint8_t *absmax_q = (uint8_t *)(nested + nested_blocks);
    w->offset = vkft_bnb_absmax_offset(absmax, w->blocks);
    vkft_bnb_double_quant(absmax, w->blocks, w->offset, absmax_q, nested);
    free(absmax); /* the nibbles' pass recomputes it rather than keeping 4 bytes per block */
    w->nested = 1;
    w->absmax_q = absmax_q;
    w->nested_absmax = nested;
    w->nested_code = j->dynamic_map;
    w->nested_blocksize = VKFT_BNB_NESTED_BLOCKSIZE;
    w->owned = nested;
  } else {
    w->absmax = absmax;
    w->owned = absmax;
  }
  q->state_json = vkft_bnb4_quant_state_json(w);
  j->stats->seconds_quantizing += vkft_time_s() - start;
  return q->state_json ? VKFT_OK : vkft_error_nomem();
}

/* The deferred fill of a weight's packed nibbles. */
static int fill_packed(void *user, void *dst, uint64_t size) {
  qweight *q = user;
  job *j = q->job;
  const vkft_bnb4_weight *w = &q->w;
  double start = vkft_time_s();
  if (w->absmax) {
    vkft_bnb4_quantize_scaled(w->type, w->blocksize, w->dtype, q->src->data, w->numel, w->absmax,
                              dst);
  } else {
    float *absmax = malloc((size_t)w->blocks * sizeof(float));
    if (!absmax) return vkft_error_with(VKFT_ERR_NOMEM, "%s: out of host memory", q->src->name);
    vkft_bnb4_quantize(w->type, w->blocksize, w->dtype, q->src->data, w->numel, dst, absmax);
    free(absmax);
  }
  j->stats->seconds_quantizing += vkft_time_s() - start;
  j->stats->weights_quantized++;
  j->stats->bytes_in += q->src->size;
  j->stats->bytes_out += size + (w->nested ? (uint64_t)w->blocks : (uint64_t)w->blocks * 4);
  if (j->progress) j->progress(j->user, ++j->done, j->count);
  return VKFT_OK;
}

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/'), *back = strrchr(path, '\\');
  if (back > slash) slash = back;
  return slash ? slash + 1 : path;
}

/* The seven projections of every layer, checked: present, [out, in] as config.json implies,
 * stored as f32/f16/bf16. */
static int find_weights(job *j, const vkft_model_config *cfg) {
  int n = vkft_st_count(j->set);
  j->count = (int)cfg->num_layers * VKFT_PROJ_COUNT;
  j->weights = calloc((size_t)j->count, sizeof *j->weights);
  j->weight_of = malloc((size_t)n * sizeof *j->weight_of);
  if (!j->weights || !j->weight_of) return vkft_error_nomem();
  for (int i = 0; i < n; i++) j->weight_of[i] = -1;
  for (int k = 0; k < j->count; k++) {
    int layer = k / VKFT_PROJ_COUNT, p = k % VKFT_PROJ_COUNT;
    char name[256];
    snprintf(name, sizeof name, "model.layers.%d.%s.weight", layer, vkft_proj_path(p));
    const vkft_st_tensor *t = vkft_st_find(j->set, name);
    int64_t out, in;
    vkft_model_proj_shape(cfg, p, &out, &in);
    vkft_dtype dtype;
    if (!t) return vkft_error("%s: no tensor \"%s\"", j->desc->model_dir, name);
    if (vkft_st_to_dtype(t->dtype, &dtype) || dtype == VKFT_I32)
      return vkft_error("%s: \"%s\" is %s; only F32, F16 and BF16 weights quantize",
                        vkft_st_file_of(j->set, t), name, t->dtype_name);
    if (t->rank != 2 || t->shape[0] != out || t->shape[1] != in)
      return vkft_error("%s: \"%s\" is not [%lld, %lld] as config.json implies",
                        vkft_st_file_of(j->set, t), name, (long long)out, (long long)in);
    if (t->numel > INT32_MAX)
      return vkft_error("%s: \"%s\" has more than 2^31 - 1 values (bitsandbytes' limit)",
                        vkft_st_file_of(j->set, t), name);
    j->weights[k] = (qweight){.src = t, .job = j};
    j->weight_of[t - vkft_st_at(j->set, 0)] = k;
  }
  return VKFT_OK;
}

/* Writes shard `file` of the source as dir/<its name>; adds its tensors to weight_map. */
static int write_shard(job *j, int file, const char *dir, cJSON *weight_map, uint64_t *total) {
  const char *shard_name = NULL;
  vkft_st_writer *writer;
  if (vkft_st_writer_create(&writer) != VKFT_OK) return VKFT_ERR;
  int status = vkft_st_writer_meta(writer, "format", "pt"); /* as transformers saves */
  for (int i = 0; status == VKFT_OK && i < vkft_st_count(j->set); i++) {
    const vkft_st_tensor *t = vkft_st_at(j->set, i);
    if (t->file != file) continue;
    shard_name = base_name(vkft_st_file_of(j->set, t));
    if (j->weight_of[i] < 0) {
      status = vkft_st_writer_add_tensor(writer, t->name, t);
      j->stats->tensors_copied++;
      continue;
    }
    qweight *q = &j->weights[j->weight_of[i]];
    int64_t packed_shape[2] = {(t->numel + 1) / 2, 1};
    status = prepare_scales(j, q);
    if (!status)
      status =
          vkft_st_writer_add_deferred(writer, t->name, VKFT_ST_U8, 2, packed_shape, fill_packed, q);
    if (!status) status = vkft_bnb4_writer_add_scales(writer, t->name, &q->w, q->state_json);
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, shard_name ? shard_name : "model.safetensors");
  if (status == VKFT_OK && shard_name) status = vkft_st_writer_save(writer, path);
  vkft_st_writer_free(writer);
  for (int k = 0; k < j->count; k++)
    if (j->weights[k].src->file == file) free_scales(&j->weights[k]);
  if (status != VKFT_OK || !shard_name) return status;
  /* read back what was written: the index lists exactly the file's tensors */
  vkft_st_set *written;
  if (vkft_st_open(path, &written) != VKFT_OK) return VKFT_ERR;
  for (int i = 0; i < vkft_st_count(written); i++) {
    const vkft_st_tensor *t = vkft_st_at(written, i);
    cJSON_AddStringToObject(weight_map, t->name, shard_name);
    *total += t->size;
  }
  vkft_st_close(written);
  return VKFT_OK;
}

/* config.json with quantization_config, printed as transformers prints a config. */
static int write_config(job *j, const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", j->desc->model_dir);
  cJSON *config = vkft_quant_read_config(path);
  if (!config) return VKFT_ERR;
  /* the compute dtype of the quantized layers: the dtype the weights come in */
  vkft_dtype dtype = VKFT_F32;
  vkft_st_to_dtype(j->weights[0].src->dtype, &dtype);
  cJSON *qc = vkft_bnb4_quantization_config(j->desc->type, j->desc->double_quant,
                                            vkft_bnb_torch_dtype_name(dtype));
  cJSON_DeleteItemFromObjectCaseSensitive(config, "quantization_config"); /* a null one */
  int status =
      qc && cJSON_AddItemToObject(config, "quantization_config", qc) ? VKFT_OK : vkft_error_nomem();
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (status == VKFT_OK) status = vkft_json_write_file(path, config);
  cJSON_Delete(config);
  return status;
}

typedef struct name_list {
  char **names;
  int count, cap, failed;
} name_list;

static void collect(const char *name, void *user) {
  name_list *l = user;
  if (l->count == l->cap) {
    int cap = l->cap ? 2 * l->cap : 32;
    char **grown = realloc(l->names, (size_t)cap * sizeof *grown);
    if (!grown) {
      l->failed = 1;
      return;
    }
    l->names = grown;
    l->cap = cap;
  }
  char *copy = malloc(strlen(name) + 1);
  if (!copy) {
    l->failed = 1;
    return;
  }
  l->names[l->count++] = strcpy(copy, name);
}

/* Files written anew (weights, their index, config.json) or weights in other formats, which a
 * quantized folder should not carry. */
static int replaced_or_weights(const char *name) {
  static const char *const suffixes[] = {".safetensors", ".bin",       ".pt",      ".pth",
                                         ".ckpt",        ".h5",        ".msgpack", ".gguf",
                                         ".onnx",        ".index.json"};
  if (!strcmp(name, "config.json")) return 1;
  size_t len = strlen(name);
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    size_t n = strlen(suffixes[i]);
    if (len >= n && !strcmp(name + len - n, suffixes[i])) return 1;
  }
  return 0;
}

/* The folder's other files (tokenizer, generation config, license...) copied as they are. */
static int copy_other_files(job *j, const char *dir) {
  name_list l = {0};
  int status = vkft_list_dir(j->desc->model_dir, collect, &l);
  if (status == VKFT_OK && l.failed) status = vkft_error_nomem();
  for (int i = 0; status == VKFT_OK && i < l.count; i++) {
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/%s", j->desc->model_dir, l.names[i]);
    snprintf(to, sizeof to, "%s/%s", dir, l.names[i]);
    if (vkft_is_dir(from) || replaced_or_weights(l.names[i])) continue;
    char *bytes;
    size_t size;
    status = vkft_file_read(from, &bytes, &size);
    if (status == VKFT_OK) {
      status = vkft_file_write_atomic(to, bytes, size);
      free(bytes);
    }
    j->stats->files_copied += status == VKFT_OK;
  }
  for (int i = 0; i < l.count; i++) free(l.names[i]);
  free(l.names);
  return status;
}

static int write_index(const char *dir, cJSON *weight_map, uint64_t total) {
  /* {"metadata": {"total_size": bytes}, "weight_map": {...}}, json.dumps(indent=2, sort_keys) */
  cJSON *index = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(index, "metadata");
  int status = meta && cJSON_AddNumberToObject(meta, "total_size", (double)total) &&
                       cJSON_AddItemReferenceToObject(index, "weight_map", weight_map)
                   ? VKFT_OK
                   : vkft_error_nomem();
  char path[4096];
  snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
  if (status == VKFT_OK) status = vkft_json_write_file(path, index);
  cJSON_Delete(index);
  return status;
}

static int run(job *j, const char *dir) {
  vkft_quant_info info;
  vkft_model_config cfg;
  if (vkft_quant_inspect(j->desc->model_dir, &info) != VKFT_OK) return VKFT_ERR;
  if (info.kind != VKFT_QUANT_NONE)
    return vkft_error("%s/config.json: the model is already quantized (bitsandbytes 4-bit)",
                      j->desc->model_dir);
  if (vkft_model_config_load(j->desc->model_dir, &cfg) != VKFT_OK) return VKFT_ERR;
  if (vkft_st_open(j->desc->model_dir, &j->set) != VKFT_OK) return VKFT_ERR;
  if (find_weights(j, &cfg) != VKFT_OK) return VKFT_ERR;
  if (j->count == 0) return vkft_error("%s: config.json has no layers", j->desc->model_dir);
  if (vkft_mkdirs(dir) != VKFT_OK) return VKFT_ERR;
  int files = 0;
  for (int i = 0; i < vkft_st_count(j->set); i++)
    if (vkft_st_at(j->set, i)->file + 1 > files) files = vkft_st_at(j->set, i)->file + 1;
  cJSON *weight_map = cJSON_CreateObject();
  uint64_t total = 0;
  int status = weight_map ? VKFT_OK : vkft_error_nomem();
  for (int f = 0; status == VKFT_OK && f < files; f++)
    status = write_shard(j, f, dir, weight_map, &total);
  char single[4096];
  snprintf(single, sizeof single, "%s/model.safetensors", j->desc->model_dir);
  if (status == VKFT_OK && !vkft_file_exists(single)) /* read through an index: write one */
    status = write_index(dir, weight_map, total);
  cJSON_Delete(weight_map);
  if (status == VKFT_OK) status = write_config(j, dir);
  if (status == VKFT_OK) status = copy_other_files(j, dir);
  return status;
}

int vkft_quantize_model(const vkft_quantize_desc *desc, vkft_quantize_stats *stats,
                        void (*progress)(void *user, int done, int total), void *user) {
  vkft_quantize_desc d = *desc;
  if (!d.blocksize) d.blocksize = 64;
  memset(stats, 0, sizeof *stats);
  if (!vkft_bnb4_blocksize_valid(d.blocksize))
    return vkft_error("block size %d: bitsandbytes takes 32, 64, 128, ..., 4096", d.blocksize);
  if (!vkft_is_dir(d.model_dir))
    return vkft_error("%s: not a model folder (config.json and safetensors weights)", d.model_dir);
  if (vkft_file_exists(d.out_dir) || vkft_is_dir(d.out_dir))
    return vkft_error("%s already exists; give another --out or remove it", d.out_dir);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", d.out_dir);
  if (vkft_file_exists(tmp) || vkft_is_dir(tmp))
    return vkft_error("%s exists (left by an interrupted run?); remove it first", tmp);
  job j = {.desc = &d, .stats = stats, .progress = progress, .user = user};
  vkft_bnb_dynamic_map(j.dynamic_map);
  int status = run(&j, tmp);
  for (int k = 0; k < j.count && j.weights; k++) free_scales(&j.weights[k]);
  free(j.weights);
  free(j.weight_of);
  vkft_st_close(j.set);
  if (status == VKFT_OK) status = vkft_rename_replace(tmp, d.out_dir);
  if (status != VKFT_OK && vkft_is_dir(tmp)) vkft_remove_tree(tmp);
  return status;
}
