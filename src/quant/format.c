/* A bitsandbytes 4-bit weight in a safetensors checkpoint, read and written in one place: the
 * tensors Linear4bit._save_to_state_dict adds under "<weight>." (QuantState.as_dict(packed=True))
 * and the quant_state JSON packed into a uint8 tensor (docs/QUANT-BNB.md, "Checkpoint layout"). */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *vkft_bnb_torch_dtype_name(vkft_dtype t) {
  return t == VKFT_F16 ? "float16" : t == VKFT_BF16 ? "bfloat16" : "float32";
}

static int torch_dtype_parse(const char *name, vkft_dtype *out) {
  static const vkft_dtype all[] = {VKFT_F32, VKFT_F16, VKFT_BF16};
  for (int i = 0; i < 3; i++)
    if (!strcmp(name, vkft_bnb_torch_dtype_name(all[i]))) return *out = all[i], 0;
  return -1;
}

char *vkft_bnb4_quant_state_json(const vkft_bnb4_weight *w) {
  /* json.dumps of the non-tensor items in as_dict's insertion order, default separators */
  char shape[128] = "", buf[512];
  for (int d = 0; d < w->rank; d++) {
    size_t len = strlen(shape);
    snprintf(shape + len, sizeof shape - len, "%s%lld", d ? ", " : "", (long long)w->shape[d]);
  }
  int len = snprintf(
      buf, sizeof buf,
      "{\"quant_type\": \"%s\", \"blocksize\": %d, \"dtype\": \"%s\", \"shape\": [%s]",
      vkft_bnb4_type_name(w->type), w->blocksize, vkft_bnb_torch_dtype_name(w->dtype), shape);
  if (w->nested) {
    /* nested_offset is offset.item(): the float32 widened to a Python float, printed by repr */
    cJSON *offset = vkft_json_float((double)w->offset);
    if (!offset) return NULL;
    len += snprintf(buf + len, sizeof buf - (size_t)len,
                    ", \"nested_blocksize\": %d, \"nested_dtype\": \"float32\", "
                    "\"nested_offset\": %s",
                    w->nested_blocksize, offset->valuestring);
    cJSON_Delete(offset);
  }
  snprintf(buf + len, sizeof buf - (size_t)len, "}");
  char *json = malloc(strlen(buf) + 1);
  return json ? strcpy(json, buf) : NULL;
}

static int add(vkft_st_writer *writer, const char *name, const char *suffix, vkft_st_dtype dtype,
               int64_t d0, int64_t d1, const void *data) {
  char key[512];
  snprintf(key, sizeof key, "%s%s", name, suffix);
  int64_t shape[2] = {d0, d1};
  return vkft_st_writer_add_raw(writer, key, dtype, d1 ? 2 : 1, shape, data);
}

int vkft_bnb4_writer_add_scales(vkft_st_writer *writer, const char *name, const vkft_bnb4_weight *w,
                                const char *state_json) {
  char state_key[64];
  snprintf(state_key, sizeof state_key, ".quant_state.bitsandbytes__%s",
           vkft_bnb4_type_name(w->type));
  int64_t nested_blocks =
      w->nested ? (w->blocks + w->nested_blocksize - 1) / w->nested_blocksize : 0;
  int status = w->nested ? add(writer, name, ".absmax", VKFT_ST_U8, w->blocks, 0, w->absmax_q)
                         : add(writer, name, ".absmax", VKFT_ST_F32, w->blocks, 0, w->absmax);
  if (!status) status = add(writer, name, ".quant_map", VKFT_ST_F32, 16, 0, w->quant_map);
  if (!status && w->nested)
    status = add(writer, name, ".nested_absmax", VKFT_ST_F32, nested_blocks, 0, w->nested_absmax);
  if (!status && w->nested)
    status = add(writer, name, ".nested_quant_map", VKFT_ST_F32, 256, 0, w->nested_code);
  if (!status)
    status = add(writer, name, state_key, VKFT_ST_U8, (int64_t)strlen(state_json), 0, state_json);
  return status;
}

int vkft_bnb4_writer_add(vkft_st_writer *writer, const char *name, const vkft_bnb4_weight *w,
                         const char *state_json) {
  /* quantize_4bit's output: uint8 [(n + 1) / 2, 1] */
  if (add(writer, name, "", VKFT_ST_U8, (w->numel + 1) / 2, 1, w->packed) != VKFT_OK)
    return VKFT_ERR;
  return vkft_bnb4_writer_add_scales(writer, name, w, state_json);
}

/* ---- reading ---- */

static const vkft_st_tensor *state_tensor(const vkft_st_set *set, const char *name,
                                          vkft_bnb4_type *type) {
  char key[512];
  for (int t = VKFT_BNB4_NF4; t <= VKFT_BNB4_FP4; t++) {
    snprintf(key, sizeof key, "%s.quant_state.bitsandbytes__%s", name,
             vkft_bnb4_type_name((vkft_bnb4_type)t));
    const vkft_st_tensor *found = vkft_st_find(set, key);
    if (found) return *type = (vkft_bnb4_type)t, found;
  }
  return NULL;
}

int vkft_bnb4_is_quantized(const vkft_st_set *set, const char *name) {
  vkft_bnb4_type type;
  return state_tensor(set, name, &type) != NULL;
}

typedef struct reader {
  const vkft_st_set *set;
  const char *name, *file; /* for messages */
} reader;

/* The tensor name + suffix, checked to be dtype with n values (rank 1, or [n, 1] for the
 * packed weight); NULL with an error naming it otherwise. */
static const vkft_st_tensor *need(const reader *r, const char *suffix, vkft_st_dtype dtype,
                                  int64_t n) {
  char key[512];
  snprintf(key, sizeof key, "%s%s", r->name, suffix);
  const vkft_st_tensor *t = vkft_st_find(r->set, key);
  if (!t) {
    vkft_error("%s: \"%s\" is missing (bitsandbytes 4-bit weight \"%s\")", r->file, key, r->name);
    return NULL;
  }
  int shape_ok = t->numel == n && (t->rank == 1 || (t->rank == 2 && t->shape[1] == 1));
  if (t->dtype != dtype || !shape_ok) {
    vkft_error("%s: \"%s\" is %s with %lld values; the quant_state needs %s with %lld",
               vkft_st_file_of(r->set, t), key, t->dtype_name, (long long)t->numel,
               dtype == VKFT_ST_U8 ? "U8" : "F32", (long long)n);
    return NULL;
  }
  return t;
}

static int state_int(const reader *r, cJSON *state, const char *key, int64_t lo, int64_t hi,
                     int64_t *out) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive(state, key);
  if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble ||
      v->valuedouble < (double)lo || v->valuedouble > (double)hi)
    return vkft_error("%s: quant_state of \"%s\": \"%s\" is not an integer in [%lld, %lld]",
                      r->file, r->name, key, (long long)lo, (long long)hi);
  *out = (int64_t)v->valuedouble;
  return VKFT_OK;
}

/* quant_type, blocksize, dtype, shape and the nested fields of the quant_state JSON. */
static int parse_state(const reader *r, cJSON *state, vkft_bnb4_type key_type,
                       vkft_bnb4_weight *w) {
  cJSON *qt = cJSON_GetObjectItemCaseSensitive(state, "quant_type");
  cJSON *dt = cJSON_GetObjectItemCaseSensitive(state, "dtype");
  cJSON *shape = cJSON_GetObjectItemCaseSensitive(state, "shape");
  if (!cJSON_IsString(qt) || vkft_bnb4_type_parse(qt->valuestring, &w->type) || w->type != key_type)
    return vkft_error("%s: quant_state of \"%s\": quant_type is not \"%s\" as its key says",
                      r->file, r->name, vkft_bnb4_type_name(key_type));
  int64_t blocksize = 0;
  if (state_int(r, state, "blocksize", 32, 4096, &blocksize)) return VKFT_ERR;
  w->blocksize = (int)blocksize;
  if (!vkft_bnb4_blocksize_valid(w->blocksize))
    return vkft_error("%s: quant_state of \"%s\": blocksize %d (32, 64, ..., 4096)", r->file,
                      r->name, w->blocksize);
  if (!cJSON_IsString(dt) || torch_dtype_parse(dt->valuestring, &w->dtype))
    return vkft_error("%s: quant_state of \"%s\": dtype is not float32, float16 or bfloat16",
                      r->file, r->name);
  w->rank = cJSON_GetArraySize(shape);
  if (!cJSON_IsArray(shape) || w->rank < 1 || w->rank > VKFT_BNB4_MAX_RANK)
    return vkft_error("%s: quant_state of \"%s\": shape is not a list of 1 to %d sizes", r->file,
                      r->name, VKFT_BNB4_MAX_RANK);
  w->numel = 1;
  for (int d = 0; d < w->rank; d++) {
    cJSON *dim = cJSON_GetArrayItem(shape, d);
    if (!cJSON_IsNumber(dim) || dim->valuedouble < 1 || dim->valuedouble > 1e12 ||
        dim->valuedouble != (double)(int64_t)dim->valuedouble)
      return vkft_error("%s: quant_state of \"%s\": shape[%d] is not a positive integer", r->file,
                        r->name, d);
    w->shape[d] = (int64_t)dim->valuedouble;
    w->numel *= w->shape[d];
  }
  if (w->numel > ((int64_t)1 << 40))
    return vkft_error("%s: quant_state of \"%s\": shape too large", r->file, r->name);
  w->blocks = (w->numel + w->blocksize - 1) / w->blocksize;
  w->nested = cJSON_GetObjectItemCaseSensitive(state, "nested_offset") != NULL;
  if (!w->nested) return VKFT_OK;
  int64_t nested_blocksize = 0;
  cJSON *ndt = cJSON_GetObjectItemCaseSensitive(state, "nested_dtype");
  cJSON *offset = cJSON_GetObjectItemCaseSensitive(state, "nested_offset");
  if (state_int(r, state, "nested_blocksize", 1, 1 << 20, &nested_blocksize)) return VKFT_ERR;
  if (!cJSON_IsString(ndt) || strcmp(ndt->valuestring, "float32") || !cJSON_IsNumber(offset))
    return vkft_error("%s: quant_state of \"%s\": nested_dtype must be \"float32\" and "
                      "nested_offset a number",
                      r->file, r->name);
  w->nested_blocksize = (int)nested_blocksize;
  /* from_dict: torch.tensor(float(nested_offset)), a float32 */
  w->offset = (float)offset->valuedouble;
  return VKFT_OK;
}

/* Copies the scales out of the map (aligned, owned): absmax, or q + nested absmax + code. */
static int read_scales(const reader *r, vkft_bnb4_weight *w) {
  if (!w->nested) {
    const vkft_st_tensor *absmax = need(r, ".absmax", VKFT_ST_F32, w->blocks);
    if (!absmax || !(w->owned = malloc((size_t)absmax->size)))
      return absmax ? vkft_error_nomem() : VKFT_ERR;
    memcpy(w->owned, absmax->data, (size_t)absmax->size);
    w->absmax = w->owned;
    return VKFT_OK;
  }
  int64_t nested_blocks = (w->blocks + w->nested_blocksize - 1) / w->nested_blocksize;
  const vkft_st_tensor *q = need(r, ".absmax", VKFT_ST_U8, w->blocks);
  const vkft_st_tensor *na = q ? need(r, ".nested_absmax", VKFT_ST_F32, nested_blocks) : NULL;
  const vkft_st_tensor *code = na ? need(r, ".nested_quant_map", VKFT_ST_F32, 256) : NULL;
  if (!code) return VKFT_ERR;
  float *mem = malloc((size_t)(256 + nested_blocks) * sizeof(float) + (size_t)w->blocks);
  if (!(w->owned = mem)) return vkft_error_nomem();
  memcpy(mem, code->data, 256 * sizeof(float));
  memcpy(mem + 256, na->data, (size_t)na->size);
  memcpy(mem + 256 + nested_blocks, q->data, (size_t)q->size);
  w->nested_code = mem;
  w->nested_absmax = mem + 256;
  w->absmax_q = (const uint8_t *)(mem + 256 + nested_blocks);
  return VKFT_OK;
}

static int read_weight(const reader *r, const vkft_st_tensor *state_t, vkft_bnb4_type key_type,
                       vkft_bnb4_weight *w) {
  cJSON *state = state_t->rank == 1 && state_t->dtype == VKFT_ST_U8
                     ? cJSON_ParseWithLength((const char *)state_t->data, (size_t)state_t->size)
                     : NULL;
  int status = cJSON_IsObject(state) ? parse_state(r, state, key_type, w)
                                     : vkft_error("%s: \"%s\": quant_state is not a uint8 tensor "
                                                  "holding a JSON object",
                                                  r->file, state_t->name);
  cJSON_Delete(state);
  if (status) return VKFT_ERR;
  /* the packed weight: uint8 [(n + 1) / 2, 1]; another bnb_4bit_quant_storage is the same bytes
   * viewed as wider elements, [(n + 1) / (2 * itemsize), 1] */
  const vkft_st_tensor *packed = vkft_st_find(r->set, r->name);
  if (!packed) return vkft_error("%s: \"%s\" is missing", r->file, r->name);
  if (packed->size != (uint64_t)(w->numel + 1) / 2 || packed->rank != 2 || packed->shape[1] != 1)
    return vkft_error("%s: \"%s\" is %s [%lld, ...] (%llu bytes); its quant_state needs "
                      "(%lld + 1) / 2 = %lld bytes as [n, 1]",
                      vkft_st_file_of(r->set, packed), r->name, packed->dtype_name,
                      (long long)packed->shape[0], (unsigned long long)packed->size,
                      (long long)w->numel, (long long)(w->numel + 1) / 2);
  w->packed = packed->data;
  /* bnb's kernels decode with their own tables, not the stored quant_map: a checkpoint whose
   * map says otherwise would be read wrongly, so it is refused */
  const vkft_st_tensor *map = need(r, ".quant_map", VKFT_ST_F32, 16);
  if (!map) return VKFT_ERR;
  vkft_bnb4_code(w->type, w->code);
  vkft_bnb4_quant_map(w->type, w->quant_map);
  float stored[16];
  memcpy(stored, map->data, sizeof stored);
  for (int i = 0; i < 16; i++)
    if (stored[i] != w->quant_map[i])
      return vkft_error("%s: \"%s.quant_map\"[%d] is %g, not bitsandbytes' %s code value %g",
                        vkft_st_file_of(r->set, map), r->name, i, (double)stored[i],
                        vkft_bnb4_type_name(w->type), (double)w->quant_map[i]);
  return read_scales(r, w);
}

int vkft_bnb4_read(const vkft_st_set *set, const char *name, vkft_bnb4_weight *out) {
  memset(out, 0, sizeof *out);
  vkft_bnb4_type key_type;
  const vkft_st_tensor *state_t = state_tensor(set, name, &key_type);
  const vkft_st_tensor *weight = vkft_st_find(set, name);
  reader r = {.set = set, .name = name};
  r.file = state_t  ? vkft_st_file_of(set, state_t)
           : weight ? vkft_st_file_of(set, weight)
                    : "safetensors";
  if (!state_t)
    return vkft_error("%s: \"%s\" is not a bitsandbytes 4-bit weight (no "
                      "\"%s.quant_state.bitsandbytes__nf4\" or __fp4)",
                      r.file, name, name);
  if (read_weight(&r, state_t, key_type, out) != VKFT_OK) {
    vkft_bnb4_weight_free(out);
    return VKFT_ERR;
  }
  return VKFT_OK;
}

int vkft_bnb4_read_proj(const vkft_st_set *set, int layer, vkft_proj p, vkft_bnb4_weight *out) {
  char name[256];
  snprintf(name, sizeof name, "model.layers.%d.%s.weight", layer, vkft_proj_path(p));
  return vkft_bnb4_read(set, name, out);
}
