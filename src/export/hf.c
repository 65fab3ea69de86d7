/* The merged Hugging Face folder, as transformers' save_pretrained writes it: safetensors
 * shards of at most max_shard_size (5 GB by default) cut in state-dict order the way
 * huggingface_hub's split_torch_state_dict_into_shards cuts them ("model.safetensors" when one
 * shard is enough, else "model-00001-of-0000N.safetensors" and model.safetensors.index.json),
 * each shard's header in the safetensors library's order (dtype descending, then name) with
 * {"format": "pt"} metadata; then config.json, generation_config.json and the tokenizer files.
 * Tensors are streamed: one chunk of rows is in memory at a time. */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/json.h"
#include "vkft/platform.h"
#include "vkft/safetensors.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SHARD_BYTES 5000000000ull /* "5GB" as transformers parses it */
#define CHUNK_FLOATS (4u << 20)           /* rows per write: about 16 MB of fp32 */

typedef struct planned {
  const export_tensor *t;
  vkft_dtype dtype;
  uint64_t bytes;
  int shard;
} planned;

static const char *st_dtype_name(vkft_dtype t) {
  return t == VKFT_F32 ? "F32" : t == VKFT_F16 ? "F16" : "BF16";
}

/* the safetensors library's order: dtype descending (F32 > BF16 > F16), then name */
static int dtype_rank(vkft_dtype t) {
  return t == VKFT_F32 ? 2 : t == VKFT_BF16 ? 1 : 0;
}

static int by_dtype_then_name(const void *a, const void *b) {
  const planned *x = *(planned *const *)a, *y = *(planned *const *)b;
  if (dtype_rank(x->dtype) != dtype_rank(y->dtype))
    return dtype_rank(y->dtype) - dtype_rank(x->dtype);
  return strcmp(x->t->name, y->t->name);
}

static int write_tensor(const export_source *s, const planned *p, vkft_atomic_file *af) {
  const export_tensor *t = p->t;
  /* unchanged bytes are copied as they are */
  if (!t->lora_a && !t->quant && p->dtype == t->dtype)
    return vkft_atomic_write(af, t->base->data, p->bytes);
  int64_t chunk = CHUNK_FLOATS / t->cols > 0 ? CHUNK_FLOATS / t->cols : 1;
  uint8_t *conv = malloc((size_t)chunk * (size_t)t->cols * vkft_dtype_size(p->dtype));
  float *rows = malloc((size_t)chunk * (size_t)t->cols * sizeof *rows);
  if (!conv || !rows) {
    free(conv), free(rows);
    return vkft_error_nomem();
  }
  int status = VKFT_OK;
  for (int64_t r = 0; r < t->rows && status == VKFT_OK; r += chunk) {
    int64_t n = t->rows - r < chunk ? t->rows - r : chunk;
    status = export_rows(s, t, r, n, NULL, NULL, rows);
    if (status != VKFT_OK) break;
    size_t count = (size_t)(n * t->cols), bytes = count * vkft_dtype_size(p->dtype);
    vkft_convert_from_f32(p->dtype, rows, conv, count);
    status = vkft_atomic_write(af, conv, bytes);
  }
  free(conv), free(rows);
  return status;
}

static int write_shard(const export_source *s, planned **items, int n, const char *path,
                       const vkft_export_desc *d, int *done) {
  cJSON *header = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(header, "__metadata__");
  cJSON_AddStringToObject(meta, "format", "pt");
  uint64_t offset = 0;
  for (int i = 0; i < n; i++) {
    const export_tensor *t = items[i]->t;
    cJSON *e = cJSON_AddObjectToObject(header, t->name);
    cJSON_AddStringToObject(e, "dtype", st_dtype_name(items[i]->dtype));
    cJSON *shape = cJSON_AddArrayToObject(e, "shape"), *offs;
    if (t->rank == 2) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->rows));
    cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->cols));
    offs = cJSON_AddArrayToObject(e, "data_offsets");
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(offset + items[i]->bytes)));
    offset += items[i]->bytes;
  }
  char *json = cJSON_PrintUnformatted(header);
  cJSON_Delete(header);
  if (!json) return vkft_error_nomem();
  vkft_atomic_file af;
  int status = vkft_st_file_begin(&af, path, json);
  free(json);
  if (status != VKFT_OK) return VKFT_ERR;
  for (int i = 0; i < n && status == VKFT_OK; i++) {
    status = write_tensor(s, items[i], &af);
    if (status != VKFT_OK) vkft_error_prefix("%s: %s", path, items[i]->t->name);
    ++*done;
    if (status == VKFT_OK && d->progress) d->progress(d->user, items[i]->t->name, *done, s->count);
  }
  if (status != VKFT_OK) {
    vkft_atomic_abort(&af);
    return VKFT_ERR;
  }
  return vkft_atomic_commit(&af);
}

/* config.json: the base's, with torch_dtype and vocab_size changed when the export changes
 * them (rewritten the way transformers writes it: sorted keys, indent 2); else copied */
static int write_config(const export_source *s, const char *out, const char *type) {
  char from[2048], to[2048];
  snprintf(from, sizeof from, "%s/config.json", s->model_dir);
  snprintf(to, sizeof to, "%s/config.json", out);
  const char *torch_dtype = !type                  ? NULL
                            : !strcmp(type, "f32") ? "float32"
                            : !strcmp(type, "f16") ? "float16"
                                                   : "bfloat16";
  if (!torch_dtype && s->vocab_rows == s->cfg.vocab_size && !s->quantized)
    return vkft_file_copy(from, to);
  cJSON *c = vkft_json_read_file(from);
  if (!c) return VKFT_ERR;
  /* a 4-bit base exports dequantized: the result is a plain model */
  if (s->quantized) cJSON_DeleteItemFromObjectCaseSensitive(c, "quantization_config");
  if (torch_dtype) {
    cJSON_DeleteItemFromObjectCaseSensitive(c, "torch_dtype");
    cJSON_AddStringToObject(c, "torch_dtype", torch_dtype);
  }
  if (s->vocab_rows != s->cfg.vocab_size) {
    cJSON_DeleteItemFromObjectCaseSensitive(c, "vocab_size");
    cJSON_AddNumberToObject(c, "vocab_size", (double)s->vocab_rows);
  }
  int status = vkft_json_write_file(to, c);
  cJSON_Delete(c);
  return status;
}

static const char *const tokenizer_files[] = {
    "tokenizer.json",  "tokenizer_config.json", "special_tokens_map.json",
    "tokenizer.model", "added_tokens.json",     "vocab.json",
    "merges.txt",      "chat_template.jinja",   "chat_template.json"};

void export_tokenizer_dir(const export_source *s, char *out, size_t n) {
  snprintf(out, n, "%s", s->model_dir);
  if (!s->has_adapter) return;
  char probe[2048];
  snprintf(probe, sizeof probe, "%s/tokenizer.json", s->adapter_dir);
  if (vkft_file_exists(probe)) snprintf(out, n, "%s", s->adapter_dir);
}

/* removes shard files of an earlier export into the same folder that this one did not write */
typedef struct stale_ctx {
  const char *dir;
  int shards;
} stale_ctx;

static void remove_stale(const char *name, void *user) {
  const stale_ctx *c = user;
  int k = 0, total = 0;
  char path[2048];
  snprintf(path, sizeof path, "%s/%s", c->dir, name);
  if (sscanf(name, "model-%5d-of-%5d.safetensors", &k, &total) == 2 && strlen(name) == 32 &&
      (c->shards == 1 || total != c->shards))
    remove(path);
  else if (c->shards == 1 && !strcmp(name, "model.safetensors.index.json"))
    remove(path);
  else if (c->shards > 1 && !strcmp(name, "model.safetensors"))
    remove(path);
}

int export_hf(const export_source *s, const vkft_export_desc *d, vkft_export_report *r) {
  vkft_dtype forced = VKFT_F32;
  if (d->type && (vkft_dtype_parse(d->type, &forced) != 0 || forced == VKFT_I32 ||
                  vkft_dtype_is_quantized(forced)))
    return vkft_error("--type %s: a Hugging Face folder holds f32, f16 or bf16 weights "
                      "(quantized types are for --to gguf)",
                      d->type);
  if (vkft_mkdirs(d->out) != VKFT_OK) return VKFT_ERR;
  uint64_t max_shard = d->max_shard_bytes ? d->max_shard_bytes : DEFAULT_SHARD_BYTES;
  planned *plan = calloc((size_t)s->count, sizeof *plan);
  planned **order = calloc((size_t)s->count, sizeof *order);
  int status = plan && order ? VKFT_OK : vkft_error_nomem();
  /* huggingface_hub's split: a tensor above the limit is appended as a shard of its own right
   * away; otherwise the open shard is closed (appended) when the tensor would tip it over */
  int shards = 0, open_count = 0;
  uint64_t open_bytes = 0, total = 0;
  for (int i = 0; status == VKFT_OK && i < s->count; i++) {
    planned *p = &plan[i];
    p->t = &s->tensors[i];
    p->dtype = d->type ? forced : p->t->dtype;
    p->bytes = (uint64_t)(p->t->rows * p->t->cols) * vkft_dtype_size(p->dtype);
    total += p->bytes;
    if (p->bytes > max_shard) {
      p->shard = shards++;
      continue;
    }
    if (open_count && open_bytes + p->bytes > max_shard) {
      for (int k = 0; k < open_count; k++) order[k]->shard = shards;
      shards++, open_count = 0, open_bytes = 0;
    }
    order[open_count++] = p;
    open_bytes += p->bytes;
  }
  if (open_count) {
    for (int k = 0; k < open_count; k++) order[k]->shard = shards;
    shards++;
  }
  cJSON *index = NULL, *weight_map = NULL;
  if (status == VKFT_OK && shards > 1) {
    index = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(index, "metadata");
    cJSON_AddNumberToObject(meta, "total_size", (double)total);
    weight_map = cJSON_AddObjectToObject(index, "weight_map");
  }
  int done = 0;
  for (int k = 0; status == VKFT_OK && k < shards; k++) {
    int n = 0;
    for (int i = 0; i < s->count; i++)
      if (plan[i].shard == k) order[n++] = &plan[i];
    qsort(order, (size_t)n, sizeof *order, by_dtype_then_name);
    char name[64], path[2048];
    if (shards == 1)
      snprintf(name, sizeof name, "model.safetensors");
    else
      snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", k + 1, shards);
    snprintf(path, sizeof path, "%s/%s", d->out, name);
    for (int i = 0; weight_map && i < n; i++)
      cJSON_AddStringToObject(weight_map, order[i]->t->name, name);
    status = write_shard(s, order, n, path, d, &done);
  }
  if (status == VKFT_OK && index) {
    char path[2048];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", d->out);
    status = vkft_json_write_file(path, index);
  }
  cJSON_Delete(index);
  free(plan), free(order);
  if (status != VKFT_OK) return VKFT_ERR;
  stale_ctx stale = {d->out, shards};
  vkft_list_dir(d->out, remove_stale, &stale);
  if (write_config(s, d->out, d->type) != VKFT_OK) return VKFT_ERR;
  char from[2048], to[2048], tok_dir[1024];
  snprintf(from, sizeof from, "%s/generation_config.json", s->model_dir);
  snprintf(to, sizeof to, "%s/generation_config.json", d->out);
  if (vkft_file_exists(from) && vkft_file_copy(from, to) != VKFT_OK) return VKFT_ERR;
  export_tokenizer_dir(s, tok_dir, sizeof tok_dir);
  for (size_t i = 0; i < sizeof tokenizer_files / sizeof tokenizer_files[0]; i++) {
    snprintf(from, sizeof from, "%s/%s", tok_dir, tokenizer_files[i]);
    snprintf(to, sizeof to, "%s/%s", d->out, tokenizer_files[i]);
    if (vkft_file_exists(from) && vkft_file_copy(from, to) != VKFT_OK) return VKFT_ERR;
  }
  r->tensors = s->count;
  r->bytes = total;
  r->shards = shards;
  return VKFT_OK;
}
