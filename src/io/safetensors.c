/* safetensors reading (memory-mapped, single or sharded) and atomic writing. Every header
 * field is validated against the file so that a damaged file is an error naming it, never an
 * out-of-bounds read. */
#include "vkft/safetensors.h"

#include "vkft/buf.h"
#include "vkft/error.h"
#include "vkft/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADER (100u << 20) /* the Python library's own limit */
#define MAX_SHARDS 256

struct vkft_st_set {
  vkft_mmap maps[MAX_SHARDS];
  char *paths[MAX_SHARDS];
  int file_count;
  vkft_st_tensor *tensors;
  int count;
  size_t cap;
};

/* Every dtype the reader accepts, with its element size and its rank in the safetensors
 * library's Dtype enum (safetensors/src/tensor.rs), which orders the tensors of a written file. */
static const struct {
  const char *name;
  vkft_st_dtype dtype;
  int size;
  int order;
} dtypes[] = {
    {"BOOL", VKFT_ST_OTHER, 1, 0}, {"U8", VKFT_ST_U8, 1, 4},      {"I8", VKFT_ST_OTHER, 1, 5},
    {"I16", VKFT_ST_OTHER, 2, 11}, {"U16", VKFT_ST_OTHER, 2, 12}, {"F16", VKFT_ST_F16, 2, 13},
    {"BF16", VKFT_ST_BF16, 2, 14}, {"I32", VKFT_ST_I32, 4, 15},   {"F32", VKFT_ST_F32, 4, 17},
    {"F64", VKFT_ST_F64, 8, 19},   {"I64", VKFT_ST_I64, 8, 20}};

int vkft_st_to_dtype(vkft_st_dtype t, vkft_dtype *out) {
  switch (t) {
  case VKFT_ST_F32:
    *out = VKFT_F32;
    return 0;
  case VKFT_ST_F16:
    *out = VKFT_F16;
    return 0;
  case VKFT_ST_BF16:
    *out = VKFT_BF16;
    return 0;
  case VKFT_ST_I32:
    *out = VKFT_I32;
    return 0;
  default:
    return -1;
  }
}

static int parse_file(vkft_st_set *set, const char *path) {
  if (set->file_count == MAX_SHARDS) return vkft_error("%s: more than %d shards", path, MAX_SHARDS);
  int f = set->file_count;
  if (vkft_mmap_open(&set->maps[f], path) != VKFT_OK) return VKFT_ERR;
  set->paths[f] = malloc(strlen(path) + 1);
  if (!set->paths[f]) return vkft_error_nomem();
  strcpy(set->paths[f], path);
  set->file_count++;
  const uint8_t *bytes = set->maps[f].data;
  uint64_t file_size = set->maps[f].size;
  if (file_size < 8) return vkft_error("%s: not a safetensors file (too short)", path);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; i--) header_len = header_len << 8 | bytes[i];
  if (header_len > MAX_HEADER || header_len > file_size - 8)
    return vkft_error("%s: not a safetensors file (header length %llu)", path,
                      (unsigned long long)header_len);
  cJSON *header = cJSON_ParseWithLength((const char *)bytes + 8, (size_t)header_len);
  if (!cJSON_IsObject(header)) {
    cJSON_Delete(header);
    return vkft_error("%s: malformed safetensors header (not a JSON object)", path);
  }
  const uint8_t *data = bytes + 8 + header_len;
  uint64_t data_size = file_size - 8 - header_len;
  int status = VKFT_OK;
  for (cJSON *e = header->child; e && status == VKFT_OK; e = e->next) {
    if (!strcmp(e->string, "__metadata__")) continue;
    cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    cJSON *offsets = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offsets) ||
        cJSON_GetArraySize(offsets) != 2) {
      status =
          vkft_error("%s: tensor \"%s\": needs dtype, shape and data_offsets", path, e->string);
      break;
    }
    vkft_st_tensor t;
    memset(&t, 0, sizeof t);
    int esize = 0;
    t.dtype = VKFT_ST_OTHER;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
      if (!strcmp(dt->valuestring, dtypes[i].name))
        t.dtype = dtypes[i].dtype, esize = dtypes[i].size;
    if (!esize) {
      status =
          vkft_error("%s: tensor \"%s\": unsupported dtype %s", path, e->string, dt->valuestring);
      break;
    }
    snprintf(t.dtype_name, sizeof t.dtype_name, "%s", dt->valuestring);
    t.rank = cJSON_GetArraySize(shape);
    if (t.rank > VKFT_ST_MAX_DIMS) {
      status = vkft_error("%s: tensor \"%s\": rank %d", path, e->string, t.rank);
      break;
    }
    t.numel = 1;
    int d = 0;
    for (cJSON *s = shape->child; s; s = s->next, d++) {
      if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble > 1e15) {
        status = vkft_error("%s: tensor \"%s\": bad shape", path, e->string);
        break;
      }
      t.shape[d] = (int64_t)s->valuedouble;
      t.numel *= t.shape[d];
    }
    if (status != VKFT_OK) break;
    double begin = cJSON_GetArrayItem(offsets, 0)->valuedouble;
    double end = cJSON_GetArrayItem(offsets, 1)->valuedouble;
    if (!(begin >= 0 && end >= begin && end <= (double)data_size) ||
        (uint64_t)(end - begin) != (uint64_t)t.numel * (uint64_t)esize) {
      status = vkft_error("%s: tensor \"%s\": data_offsets [%.0f, %.0f] do not fit its shape or "
                          "the file (%llu data bytes)",
                          path, e->string, begin, end, (unsigned long long)data_size);
      break;
    }
    t.data = data + (uint64_t)begin;
    t.size = (uint64_t)(end - begin);
    t.file = f;
    if (vkft_st_find(set, e->string)) {
      status = vkft_error("%s: tensor \"%s\" appears twice", path, e->string);
      break;
    }
    t.name = malloc(strlen(e->string) + 1);
    if (!t.name) {
      status = vkft_error_nomem();
      break;
    }
    strcpy(t.name, e->string);
    if (vkft_grow((void **)&set->tensors, &set->cap, (size_t)set->count + 1,
                  sizeof *set->tensors)) {
      free(t.name);
      status = VKFT_ERR;
      break;
    }
    set->tensors[set->count++] = t;
  }
  cJSON_Delete(header);
  return status;
}

static int open_index(vkft_st_set *set, const char *dir, const char *index_path) {
  char *text;
  size_t size;
  if (vkft_file_read(index_path, &text, &size) != VKFT_OK) return VKFT_ERR;
  cJSON *index = cJSON_ParseWithLength(text, size);
  free(text);
  cJSON *map = cJSON_GetObjectItemCaseSensitive(index, "weight_map");
  if (!cJSON_IsObject(map)) {
    cJSON_Delete(index);
    return vkft_error("%s: missing or malformed \"weight_map\"", index_path);
  }
  int status = VKFT_OK;
  for (cJSON *e = map->child; e && status == VKFT_OK; e = e->next) {
    if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || strchr(e->valuestring, '\\')) {
      status = vkft_error("%s: weight_map[\"%s\"] is not a file name", index_path, e->string);
      break;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->valuestring);
    int seen = 0;
    for (int i = 0; i < set->file_count; i++) seen |= !strcmp(set->paths[i], path);
    if (!seen) status = parse_file(set, path);
  }
  /* every tensor named in the index must be in the shard the index names */
  for (cJSON *e = map->child; e && status == VKFT_OK; e = e->next) {
    const vkft_st_tensor *t = vkft_st_find(set, e->string);
    if (!t)
      status =
          vkft_error("%s: tensor \"%s\" is missing from %s", index_path, e->string, e->valuestring);
  }
  cJSON_Delete(index);
  return status;
}

int vkft_st_open(const char *path, vkft_st_set **out) {
  *out = NULL;
  vkft_st_set *set = calloc(1, sizeof *set);
  if (!set) return vkft_error_nomem();
  int status;
  if (vkft_is_dir(path)) {
    char single[4096], index[4096];
    snprintf(single, sizeof single, "%s/model.safetensors", path);
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", path);
    if (vkft_file_exists(single))
      status = parse_file(set, single);
    else if (vkft_file_exists(index))
      status = open_index(set, path, index);
    else
      status = vkft_error("%s: no model.safetensors or model.safetensors.index.json (only "
                          "safetensors weights are read)",
                          path);
  } else {
    status = parse_file(set, path);
  }
  if (status != VKFT_OK) {
    vkft_st_close(set);
    return VKFT_ERR;
  }
  *out = set;
  return VKFT_OK;
}

void vkft_st_close(vkft_st_set *set) {
  if (!set) return;
  for (int i = 0; i < set->count; i++) free(set->tensors[i].name);
  free(set->tensors);
  for (int i = 0; i < set->file_count; i++) {
    vkft_mmap_close(&set->maps[i]);
    free(set->paths[i]);
  }
  free(set);
}

int vkft_st_count(const vkft_st_set *set) {
  return set->count;
}

const vkft_st_tensor *vkft_st_at(const vkft_st_set *set, int i) {
  return &set->tensors[i];
}

const vkft_st_tensor *vkft_st_find(const vkft_st_set *set, const char *name) {
  for (int i = 0; i < set->count; i++)
    if (!strcmp(set->tensors[i].name, name)) return &set->tensors[i];
  return NULL;
}

const char *vkft_st_file_of(const vkft_st_set *set, const vkft_st_tensor *t) {
  return set->paths[t->file];
}

/* ---- writing ---- */

typedef struct pending {
  char *name;
  int type; /* index into dtypes[] */
  int rank;
  int64_t shape[VKFT_ST_MAX_DIMS];
  const void *data;     /* or NULL with fill */
  vkft_st_fill_fn fill; /* deferred: produces the bytes while saving */
  void *user;
  uint64_t size;
} pending;

struct vkft_st_writer {
  pending *items;
  int count;
  size_t cap;
  cJSON *meta;
};

int vkft_st_writer_create(vkft_st_writer **out) {
  *out = calloc(1, sizeof **out);
  return *out ? VKFT_OK : vkft_error_nomem();
}

void vkft_st_writer_free(vkft_st_writer *w) {
  if (!w) return;
  for (int i = 0; i < w->count; i++) free(w->items[i].name);
  free(w->items);
  cJSON_Delete(w->meta);
  free(w);
}

static int add_item(vkft_st_writer *w, const char *name, int type, int rank, const int64_t *shape,
                    const void *data, vkft_st_fill_fn fill, void *user) {
  if (rank < 0 || rank > VKFT_ST_MAX_DIMS)
    return vkft_error("safetensors: %s: rank %d", name, rank);
  if (vkft_grow((void **)&w->items, &w->cap, (size_t)w->count + 1, sizeof *w->items))
    return VKFT_ERR;
  pending *p = &w->items[w->count];
  memset(p, 0, sizeof *p);
  p->name = malloc(strlen(name) + 1);
  if (!p->name) return vkft_error_nomem();
  strcpy(p->name, name);
  p->type = type;
  p->rank = rank;
  uint64_t numel = 1;
  for (int i = 0; i < rank; i++) p->shape[i] = shape[i], numel *= (uint64_t)shape[i];
  p->data = data;
  p->fill = fill;
  p->user = user;
  p->size = numel * (uint64_t)dtypes[type].size;
  w->count++;
  return VKFT_OK;
}

static int type_of_name(const char *name) {
  for (int i = 0; i < (int)(sizeof dtypes / sizeof dtypes[0]); i++)
    if (!strcmp(dtypes[i].name, name)) return i;
  return -1;
}

/* The table entry of a file dtype; VKFT_ST_OTHER has none (it names several dtypes). */
static int type_of(vkft_st_dtype dtype) {
  for (int i = 0; i < (int)(sizeof dtypes / sizeof dtypes[0]); i++)
    if (dtypes[i].dtype == dtype && dtype != VKFT_ST_OTHER) return i;
  return -1;
}

static const char *file_dtype(vkft_dtype t) {
  switch (t) {
  case VKFT_F32:
    return "F32";
  case VKFT_F16:
    return "F16";
  case VKFT_BF16:
    return "BF16";
  case VKFT_I32:
    return "I32";
  default: /* quantized weights are written by their formats' writers (src/quant) */
    return "?";
  }
}

int vkft_st_writer_add(vkft_st_writer *w, const char *name, vkft_dtype dtype, int rank,
                       const int64_t *shape, const void *data) {
  return add_item(w, name, type_of_name(file_dtype(dtype)), rank, shape, data, NULL, NULL);
}

int vkft_st_writer_add_raw(vkft_st_writer *w, const char *name, vkft_st_dtype dtype, int rank,
                           const int64_t *shape, const void *data) {
  int type = type_of(dtype);
  if (type < 0) return vkft_error("safetensors: %s: no file dtype to write", name);
  return add_item(w, name, type, rank, shape, data, NULL, NULL);
}

int vkft_st_writer_add_tensor(vkft_st_writer *w, const char *name, const vkft_st_tensor *t) {
  int type = type_of_name(t->dtype_name);
  if (type < 0) return vkft_error("safetensors: %s: unsupported dtype %s", name, t->dtype_name);
  return add_item(w, name, type, t->rank, t->shape, t->data, NULL, NULL);
}

int vkft_st_writer_add_deferred(vkft_st_writer *w, const char *name, vkft_st_dtype dtype, int rank,
                                const int64_t *shape, vkft_st_fill_fn fill, void *user) {
  int type = type_of(dtype);
  if (type < 0) return vkft_error("safetensors: %s: no file dtype to write", name);
  return add_item(w, name, type, rank, shape, NULL, fill, user);
}

int vkft_st_writer_meta(vkft_st_writer *w, const char *key, const char *value) {
  if (!w->meta && !(w->meta = cJSON_CreateObject())) return vkft_error_nomem();
  cJSON_DeleteItemFromObjectCaseSensitive(w->meta, key);
  return cJSON_AddStringToObject(w->meta, key, value) ? VKFT_OK : vkft_error_nomem();
}

/* The safetensors library's order (safetensors/src/tensor.rs, prepare): dtypes from the last of
 * its Dtype enum to the first (widest first, which keeps every tensor aligned), then names. */
static int file_order(const void *a, const void *b) {
  const pending *x = a, *y = b;
  int by_dtype = dtypes[y->type].order - dtypes[x->type].order;
  return by_dtype ? by_dtype : strcmp(x->name, y->name);
}

static char *header_json(vkft_st_writer *w) {
  cJSON *header = cJSON_CreateObject();
  if (!header) return NULL;
  if (w->meta) cJSON_AddItemToObject(header, "__metadata__", cJSON_Duplicate(w->meta, 1));
  uint64_t offset = 0;
  for (int i = 0; i < w->count; i++) {
    const pending *p = &w->items[i];
    /* key order as the Python library writes it: dtype, shape, data_offsets */
    cJSON *e = cJSON_AddObjectToObject(header, p->name);
    if (e) cJSON_AddStringToObject(e, "dtype", dtypes[p->type].name);
    cJSON *shape = e ? cJSON_AddArrayToObject(e, "shape") : NULL;
    cJSON *offsets = NULL;
    for (int d = 0; shape && d < p->rank; d++)
      cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)p->shape[d]));
    if (e) offsets = cJSON_AddArrayToObject(e, "data_offsets");
    if (!offsets) {
      cJSON_Delete(header);
      return NULL;
    }
    cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)offset));
    cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)(offset + p->size)));
    offset += p->size;
  }
  char *json = cJSON_PrintUnformatted(header);
  cJSON_Delete(header);
  return json;
}

/* Writes one tensor's bytes: its data, or what its fill function produces into scratch. */
static int write_item(const pending *p, vkft_atomic_file *af, void *scratch) {
  if (!p->size) return VKFT_OK;
  const void *bytes = p->data;
  if (p->fill) {
    if (p->fill(p->user, scratch, p->size) != VKFT_OK) return VKFT_ERR;
    bytes = scratch;
  }
  return vkft_atomic_write(af, bytes, p->size);
}

int vkft_st_file_begin(vkft_atomic_file *af, const char *path, const char *header_json) {
  size_t len = strlen(header_json), padded = (len + 7) / 8 * 8;
  uint8_t prefix[8];
  for (int i = 0; i < 8; i++) prefix[i] = (uint8_t)((uint64_t)padded >> (8 * i));
  if (vkft_atomic_begin(af, path) != VKFT_OK) return VKFT_ERR;
  static const char spaces[8] = "        ";
  int status = vkft_atomic_write(af, prefix, 8);
  if (status == VKFT_OK) status = vkft_atomic_write(af, header_json, len);
  if (status == VKFT_OK) status = vkft_atomic_write(af, spaces, padded - len);
  if (status != VKFT_OK) vkft_atomic_abort(af);
  return status;
}

int vkft_st_writer_save(vkft_st_writer *w, const char *path) {
  qsort(w->items, (size_t)w->count, sizeof *w->items, file_order);
  uint64_t scratch_size = 0;
  for (int i = 0; i < w->count; i++)
    if (w->items[i].fill && w->items[i].size > scratch_size) scratch_size = w->items[i].size;
  char *json = header_json(w);
  void *scratch = scratch_size ? malloc((size_t)scratch_size) : NULL;
  if (!json || (scratch_size && !scratch)) {
    free(json);
    free(scratch);
    return vkft_error_with(VKFT_ERR_NOMEM, "%s: out of host memory", path);
  }
  vkft_atomic_file af;
  int status = vkft_st_file_begin(&af, path, json);
  free(json);
  if (status != VKFT_OK) {
    free(scratch);
    return VKFT_ERR;
  }
  for (int i = 0; status == VKFT_OK && i < w->count; i++)
    status = write_item(&w->items[i], &af, scratch);
  free(scratch);
  if (status != VKFT_OK) {
    vkft_atomic_abort(&af);
    return VKFT_ERR; /* the message names the file and the reason */
  }
  return vkft_atomic_commit(&af);
}
