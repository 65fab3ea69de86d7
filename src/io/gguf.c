/* GGUF reading: the file is memory-mapped and walked once at open, checking every count,
 * length, type, offset and size against the bytes that are really there; afterwards the
 * accessors only follow what was checked. Layout: ggml-org/ggml docs/gguf.md. */
#include "vkft/gguf.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NESTING 16 /* arrays of arrays: deeper is treated as damage */

typedef struct kv {
  char *key;
  vkft_gguf_value value;
} kv;

struct vkft_gguf {
  vkft_mmap map;
  char *path;
  uint32_t version, alignment;
  uint64_t data_offset;
  kv *kvs;
  int64_t kv_count;
  vkft_gguf_tensor *tensors;
  int64_t tensor_count;
};

static const char *const type_names[VKFT_GGUF_TYPE_COUNT] = {
    "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
    "bool",  "string", "array",  "uint64", "int64",  "float64"};

const char *vkft_gguf_type_name(vkft_gguf_type t) {
  return (unsigned)t < VKFT_GGUF_TYPE_COUNT ? type_names[t] : "?";
}

/* bytes of a fixed-size value; 0 for string and array */
static uint64_t scalar_size(vkft_gguf_type t) {
  static const uint8_t sizes[VKFT_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  return sizes[t];
}

static uint64_t le(const uint8_t *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* ---- the checked walk ---- */

typedef struct cursor {
  const uint8_t *base;
  uint64_t pos, size;
  const char *path;
  char what[160]; /* what is being read, for messages */
} cursor;

static int past_end(cursor *c, uint64_t need) {
  return vkft_error("%s: %s: %llu bytes needed at offset %llu run past the end of the file "
                    "(%llu bytes; truncated or damaged)",
                    c->path, c->what, (unsigned long long)need, (unsigned long long)c->pos,
                    (unsigned long long)c->size);
}

static int take(cursor *c, uint64_t n, const uint8_t **p) {
  *p = NULL;
  if (n > c->size - c->pos) return past_end(c, n);
  *p = c->base + c->pos;
  c->pos += n;
  return VKFT_OK;
}

static int read_u32(cursor *c, uint32_t *v) {
  const uint8_t *p;
  *v = 0;
  if (take(c, 4, &p) != VKFT_OK) return VKFT_ERR;
  *v = (uint32_t)le(p, 4);
  return VKFT_OK;
}

static int read_u64(cursor *c, uint64_t *v) {
  const uint8_t *p;
  *v = 0;
  if (take(c, 8, &p) != VKFT_OK) return VKFT_ERR;
  *v = le(p, 8);
  return VKFT_OK;
}

static int read_string(cursor *c, const uint8_t **s, uint64_t *len) {
  *s = NULL;
  if (read_u64(c, len) != VKFT_OK) return VKFT_ERR;
  if (*len > c->size - c->pos) return past_end(c, *len);
  *s = c->base + c->pos;
  c->pos += *len;
  return VKFT_OK;
}

static int read_type(cursor *c, vkft_gguf_type *t) {
  uint32_t v;
  if (read_u32(c, &v) != VKFT_OK) return VKFT_ERR;
  if (v >= VKFT_GGUF_TYPE_COUNT)
    return vkft_error("%s: %s: unknown value type %u at offset %llu", c->path, c->what, v,
                      (unsigned long long)(c->pos - 4));
  *t = (vkft_gguf_type)v;
  return VKFT_OK;
}

/* Checks the payload of a value of type t at the cursor and moves past it. */
static int walk_value(cursor *c, vkft_gguf_type t, vkft_gguf_value *out, int depth) {
  out->type = t;
  out->data = c->base + c->pos;
  out->elem_type = 0;
  out->count = 0;
  if (t == VKFT_GGUF_STRING) {
    const uint8_t *s;
    uint64_t len;
    out->data = c->base + c->pos;
    return read_string(c, &s, &len);
  }
  if (t != VKFT_GGUF_ARRAY) {
    const uint8_t *p;
    if (take(c, scalar_size(t), &p) != VKFT_OK) return VKFT_ERR;
    if (t == VKFT_GGUF_BOOL && *p > 1)
      return vkft_error("%s: %s: bool value %u (must be 0 or 1)", c->path, c->what, *p);
    return VKFT_OK;
  }
  if (depth >= MAX_NESTING)
    return vkft_error("%s: %s: arrays nested more than %d deep", c->path, c->what, MAX_NESTING);
  if (read_type(c, &out->elem_type) != VKFT_OK || read_u64(c, &out->count) != VKFT_OK)
    return VKFT_ERR;
  out->data = c->base + c->pos;
  uint64_t left = c->size - c->pos, elem = scalar_size(out->elem_type);
  /* every element takes at least its fixed size, 8 bytes (string) or 12 (array): a count
   * that cannot fit is rejected before looping over it */
  uint64_t least = elem ? elem : out->elem_type == VKFT_GGUF_STRING ? 8 : 12;
  if (out->count > left / least)
    return vkft_error("%s: %s: array of %llu %s values does not fit in the %llu bytes left",
                      c->path, c->what, (unsigned long long)out->count,
                      vkft_gguf_type_name(out->elem_type), (unsigned long long)left);
  if (elem && out->elem_type != VKFT_GGUF_BOOL) {
    c->pos += out->count * elem;
    return VKFT_OK;
  }
  for (uint64_t i = 0; i < out->count; i++) {
    vkft_gguf_value element;
    if (walk_value(c, out->elem_type, &element, depth + 1) != VKFT_OK) return VKFT_ERR;
  }
  return VKFT_OK;
}

static int parse_kvs(vkft_gguf *g, cursor *c) {
  for (int64_t i = 0; i < g->kv_count; i++) {
    const uint8_t *key;
    uint64_t len;
    snprintf(c->what, sizeof c->what, "metadata key #%lld", (long long)i);
    if (read_string(c, &key, &len) != VKFT_OK) return VKFT_ERR;
    if (memchr(key, 0, (size_t)len))
      return vkft_error("%s: metadata key #%lld contains a NUL byte", c->path, (long long)i);
    g->kvs[i].key = malloc((size_t)len + 1);
    if (!g->kvs[i].key) return vkft_error_nomem();
    memcpy(g->kvs[i].key, key, (size_t)len);
    g->kvs[i].key[len] = 0;
    snprintf(c->what, sizeof c->what, "metadata \"%.100s\"", g->kvs[i].key);
    vkft_gguf_type t;
    if (read_type(c, &t) != VKFT_OK || walk_value(c, t, &g->kvs[i].value, 0) != VKFT_OK)
      return VKFT_ERR;
    for (int64_t j = 0; j < i; j++)
      if (!strcmp(g->kvs[j].key, g->kvs[i].key))
        return vkft_error("%s: metadata key \"%s\" appears twice", c->path, g->kvs[i].key);
  }
  int64_t a = vkft_gguf_find_key(g, "general.alignment");
  g->alignment = VKFT_GGUF_DEFAULT_ALIGNMENT;
  if (a >= 0) {
    const vkft_gguf_value *v = &g->kvs[a].value;
    uint32_t align = v->type == VKFT_GGUF_UINT32 ? (uint32_t)le(v->data, 4) : 0;
    if (!align || (align & (align - 1)))
      return vkft_error("%s: general.alignment must be a uint32 power of two", c->path);
    g->alignment = align;
  }
  return VKFT_OK;
}

static int parse_tensor_info(vkft_gguf *g, cursor *c, vkft_gguf_tensor *t, int64_t i) {
  const uint8_t *name;
  uint64_t len;
  uint32_t n_dims, type;
  snprintf(c->what, sizeof c->what, "tensor info #%lld", (long long)i);
  if (read_string(c, &name, &len) != VKFT_OK) return VKFT_ERR;
  if (len > VKFT_GGUF_MAX_NAME + 1 || memchr(name, 0, (size_t)len))
    return vkft_error("%s: tensor info #%lld: name of %llu bytes (at most 64, no NUL)", c->path,
                      (long long)i, (unsigned long long)len);
  memcpy(t->name, name, (size_t)len);
  t->name[len] = 0;
  snprintf(c->what, sizeof c->what, "tensor \"%s\"", t->name);
  if (read_u32(c, &n_dims) != VKFT_OK) return VKFT_ERR;
  if (n_dims < 1 || n_dims > VKFT_GGUF_MAX_DIMS)
    return vkft_error("%s: tensor \"%s\": %u dimensions (1 to %d)", c->path, t->name, n_dims,
                      VKFT_GGUF_MAX_DIMS);
  t->n_dims = (int)n_dims;
  uint64_t numel = 1;
  for (int d = 0; d < VKFT_GGUF_MAX_DIMS; d++) {
    uint64_t ne = 1;
    if (d < t->n_dims && read_u64(c, &ne) != VKFT_OK) return VKFT_ERR;
    if (ne > (uint64_t)INT64_MAX || (ne && numel > (uint64_t)INT64_MAX / ne))
      return vkft_error("%s: tensor \"%s\": dimension %d (%llu) overflows", c->path, t->name, d,
                        (unsigned long long)ne);
    t->ne[d] = (int64_t)ne;
    numel *= ne;
  }
  if (read_u32(c, &type) != VKFT_OK || read_u64(c, &t->offset) != VKFT_OK) return VKFT_ERR;
  if (!vkft_ggml_type_known(type))
    return vkft_error("%s: tensor \"%s\": unknown ggml type %u", c->path, t->name, type);
  t->type = (vkft_ggml_type)type;
  if (t->ne[0] % vkft_ggml_block_size(t->type))
    return vkft_error("%s: tensor \"%s\": row of %lld is not a multiple of %s's block of %lld",
                      c->path, t->name, (long long)t->ne[0], vkft_ggml_type_name(t->type),
                      (long long)vkft_ggml_block_size(t->type));
  uint64_t rows = numel / (t->ne[0] ? (uint64_t)t->ne[0] : 1),
           row = vkft_ggml_row_size(t->type, t->ne[0]);
  if (row && rows > UINT64_MAX / row)
    return vkft_error("%s: tensor \"%s\": size overflows", c->path, t->name);
  t->size = t->ne[0] ? rows * row : 0;
  if (t->offset % g->alignment)
    return vkft_error("%s: tensor \"%s\": offset %llu is not a multiple of the alignment %u",
                      c->path, t->name, (unsigned long long)t->offset, g->alignment);
  for (int64_t j = 0; j < i; j++)
    if (!strcmp(g->tensors[j].name, t->name))
      return vkft_error("%s: tensor \"%s\" appears twice", c->path, t->name);
  return VKFT_OK;
}

static int by_offset(const void *a, const void *b) {
  const vkft_gguf_tensor *x = *(vkft_gguf_tensor *const *)a, *y = *(vkft_gguf_tensor *const *)b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* every tensor's bytes inside the file, and no two overlapping */
static int place_tensors(vkft_gguf *g, cursor *c) {
  uint64_t pad = (g->alignment - c->pos % g->alignment) % g->alignment;
  g->data_offset = c->pos + pad;
  uint64_t data_size = g->data_offset <= c->size ? c->size - g->data_offset : 0;
  for (int64_t i = 0; i < g->tensor_count; i++) {
    vkft_gguf_tensor *t = &g->tensors[i];
    if (t->offset > data_size || t->size > data_size - t->offset)
      return vkft_error("%s: tensor \"%s\": data [%llu, +%llu) lies outside the file's %llu "
                        "data bytes (truncated or damaged)",
                        c->path, t->name, (unsigned long long)t->offset,
                        (unsigned long long)t->size, (unsigned long long)data_size);
    t->data = c->base + g->data_offset + t->offset;
  }
  if (g->tensor_count < 2) return VKFT_OK;
  vkft_gguf_tensor **order = malloc((size_t)g->tensor_count * sizeof *order);
  if (!order) return vkft_error_nomem();
  for (int64_t i = 0; i < g->tensor_count; i++) order[i] = &g->tensors[i];
  qsort(order, (size_t)g->tensor_count, sizeof *order, by_offset);
  int status = VKFT_OK;
  for (int64_t i = 1; i < g->tensor_count && status == VKFT_OK; i++)
    if (order[i - 1]->offset + order[i - 1]->size > order[i]->offset)
      status = vkft_error("%s: tensors \"%s\" and \"%s\" overlap", c->path, order[i - 1]->name,
                          order[i]->name);
  free(order);
  return status;
}

static int parse(vkft_gguf *g, cursor *c) {
  const uint8_t *magic;
  snprintf(c->what, sizeof c->what, "header");
  if (c->size < 24 || take(c, 4, &magic) != VKFT_OK || memcmp(magic, "GGUF", 4))
    return vkft_error("%s: not a GGUF file (no \"GGUF\" magic)", c->path);
  if (read_u32(c, &g->version) != VKFT_OK) return VKFT_ERR;
  if (g->version == 0x02000000u || g->version == 0x03000000u)
    return vkft_error("%s: a big-endian GGUF file (not supported)", c->path);
  if (g->version != 2 && g->version != 3)
    return vkft_error("%s: GGUF version %u is not supported (2 and 3 are)", c->path, g->version);
  uint64_t n_tensors, n_kv;
  if (read_u64(c, &n_tensors) != VKFT_OK || read_u64(c, &n_kv) != VKFT_OK) return VKFT_ERR;
  /* smallest possible entries: a key/value is 13 bytes, a tensor info 32 */
  uint64_t left = c->size - c->pos;
  if (n_kv > left / 13 || n_tensors > left / 32)
    return vkft_error("%s: header claims %llu metadata keys and %llu tensors, more than the "
                      "file can hold (damaged)",
                      c->path, (unsigned long long)n_kv, (unsigned long long)n_tensors);
  g->kv_count = (int64_t)n_kv;
  g->tensor_count = (int64_t)n_tensors;
  g->kvs = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kvs);
  g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
  if (!g->kvs || !g->tensors) return vkft_error_nomem();
  if (parse_kvs(g, c) != VKFT_OK) return VKFT_ERR;
  for (int64_t i = 0; i < g->tensor_count; i++)
    if (parse_tensor_info(g, c, &g->tensors[i], i) != VKFT_OK) return VKFT_ERR;
  return place_tensors(g, c);
}

int vkft_gguf_is_file(const char *path) {
  if (vkft_is_dir(path)) return 0;
  FILE *f = vkft_fopen(path, "rb");
  char magic[4] = {0};
  int is = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
  if (f) fclose(f);
  return is;
}

int vkft_gguf_open(const char *path, vkft_gguf **out) {
  *out = NULL;
  vkft_gguf *g = calloc(1, sizeof *g);
  if (!g) return vkft_error_nomem();
  g->path = malloc(strlen(path) + 1);
  if (!g->path) {
    free(g);
    return vkft_error_nomem();
  }
  strcpy(g->path, path);
  if (vkft_mmap_open(&g->map, path) != VKFT_OK) {
    free(g->path);
    free(g);
    return VKFT_ERR;
  }
  cursor c = {.base = g->map.data, .size = g->map.size, .path = path};
  if (parse(g, &c) != VKFT_OK) {
    vkft_gguf_close(g);
    return VKFT_ERR;
  }
  *out = g;
  return VKFT_OK;
}

void vkft_gguf_close(vkft_gguf *g) {
  if (!g) return;
  for (int64_t i = 0; g->kvs && i < g->kv_count; i++) free(g->kvs[i].key);
  free(g->kvs);
  free(g->tensors);
  vkft_mmap_close(&g->map);
  free(g->path);
  free(g);
}

const char *vkft_gguf_path(const vkft_gguf *g) {
  return g->path;
}

uint32_t vkft_gguf_version(const vkft_gguf *g) {
  return g->version;
}

uint32_t vkft_gguf_alignment(const vkft_gguf *g) {
  return g->alignment;
}

uint64_t vkft_gguf_data_offset(const vkft_gguf *g) {
  return g->data_offset;
}

int64_t vkft_gguf_kv_count(const vkft_gguf *g) {
  return g->kv_count;
}

const char *vkft_gguf_kv_key(const vkft_gguf *g, int64_t i) {
  return g->kvs[i].key;
}

const vkft_gguf_value *vkft_gguf_kv_value(const vkft_gguf *g, int64_t i) {
  return &g->kvs[i].value;
}

int64_t vkft_gguf_find_key(const vkft_gguf *g, const char *key) {
  for (int64_t i = 0; i < g->kv_count; i++)
    if (!strcmp(g->kvs[i].key, key)) return i;
  return -1;
}

int64_t vkft_gguf_tensor_count(const vkft_gguf *g) {
  return g->tensor_count;
}

const vkft_gguf_tensor *vkft_gguf_tensor_at(const vkft_gguf *g, int64_t i) {
  return &g->tensors[i];
}

const vkft_gguf_tensor *vkft_gguf_find_tensor(const vkft_gguf *g, const char *name) {
  for (int64_t i = 0; i < g->tensor_count; i++)
    if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
  return NULL;
}

/* ---- values ---- */

int vkft_gguf_value_int(const vkft_gguf_value *v, int64_t *out) {
  switch (v->type) {
  case VKFT_GGUF_UINT8:
  case VKFT_GGUF_BOOL:
    return *out = v->data[0], VKFT_OK;
  case VKFT_GGUF_INT8:
    return *out = (int8_t)v->data[0], VKFT_OK;
  case VKFT_GGUF_UINT16:
    return *out = (int64_t)le(v->data, 2), VKFT_OK;
  case VKFT_GGUF_INT16:
    return *out = (int16_t)le(v->data, 2), VKFT_OK;
  case VKFT_GGUF_UINT32:
    return *out = (int64_t)le(v->data, 4), VKFT_OK;
  case VKFT_GGUF_INT32:
    return *out = (int32_t)le(v->data, 4), VKFT_OK;
  case VKFT_GGUF_INT64:
    return *out = (int64_t)le(v->data, 8), VKFT_OK;
  case VKFT_GGUF_UINT64:
    if (le(v->data, 8) > (uint64_t)INT64_MAX) return vkft_error("uint64 value out of range");
    return *out = (int64_t)le(v->data, 8), VKFT_OK;
  default:
    return vkft_error("a %s value is not an integer", vkft_gguf_type_name(v->type));
  }
}

int vkft_gguf_value_float(const vkft_gguf_value *v, double *out) {
  if (v->type == VKFT_GGUF_FLOAT32) {
    uint32_t bits = (uint32_t)le(v->data, 4);
    float f;
    memcpy(&f, &bits, 4);
    return *out = f, VKFT_OK;
  }
  if (v->type == VKFT_GGUF_FLOAT64) {
    uint64_t bits = le(v->data, 8);
    double d;
    memcpy(&d, &bits, 8);
    return *out = d, VKFT_OK;
  }
  return vkft_error("a %s value is not a float", vkft_gguf_type_name(v->type));
}

int vkft_gguf_value_str(const vkft_gguf_value *v, const char **s, uint64_t *len) {
  if (v->type != VKFT_GGUF_STRING)
    return vkft_error("a %s value is not a string", vkft_gguf_type_name(v->type));
  *len = le(v->data, 8);
  *s = (const char *)v->data + 8;
  return VKFT_OK;
}

/* bytes of a value's payload (checked at open, so this only follows valid data) */
static uint64_t payload_size(const vkft_gguf_value *v) {
  if (v->type == VKFT_GGUF_STRING) return 8 + le(v->data, 8);
  if (v->type != VKFT_GGUF_ARRAY) return scalar_size(v->type);
  vkft_gguf_iter it;
  vkft_gguf_value e;
  vkft_gguf_array_begin(v, &it);
  while (vkft_gguf_array_next(&it, &e)) {
  }
  return 12 + (uint64_t)(it.next - v->data);
}

void vkft_gguf_array_begin(const vkft_gguf_value *array, vkft_gguf_iter *it) {
  it->next = array->data;
  it->left = array->type == VKFT_GGUF_ARRAY ? array->count : 0;
  it->type = array->elem_type;
}

int vkft_gguf_array_next(vkft_gguf_iter *it, vkft_gguf_value *element) {
  if (!it->left) return 0;
  it->left--;
  element->type = it->type;
  element->elem_type = 0;
  element->count = 0;
  if (it->type == VKFT_GGUF_ARRAY) {
    element->elem_type = (vkft_gguf_type)le(it->next, 4);
    element->count = le(it->next + 4, 8);
    element->data = it->next + 12;
    it->next += payload_size(element);
  } else {
    element->data = it->next;
    it->next += payload_size(element);
  }
  return 1;
}

/* ---- typed lookups ---- */

static const vkft_gguf_value *lookup(const vkft_gguf *g, const char *key) {
  int64_t i = vkft_gguf_find_key(g, key);
  if (i < 0) {
    vkft_error("%s: no metadata key \"%s\"", g->path, key);
    return NULL;
  }
  return &g->kvs[i].value;
}

int vkft_gguf_get_int(const vkft_gguf *g, const char *key, int64_t *out) {
  const vkft_gguf_value *v = lookup(g, key);
  if (!v) return VKFT_ERR;
  return vkft_gguf_value_int(v, out) == VKFT_OK ? VKFT_OK
                                                : vkft_error_prefix("%s: key \"%s\"", g->path, key);
}

int vkft_gguf_get_float(const vkft_gguf *g, const char *key, double *out) {
  const vkft_gguf_value *v = lookup(g, key);
  if (!v) return VKFT_ERR;
  return vkft_gguf_value_float(v, out) == VKFT_OK
             ? VKFT_OK
             : vkft_error_prefix("%s: key \"%s\"", g->path, key);
}

int vkft_gguf_get_str(const vkft_gguf *g, const char *key, const char **s, uint64_t *len) {
  const vkft_gguf_value *v = lookup(g, key);
  if (!v) return VKFT_ERR;
  return vkft_gguf_value_str(v, s, len) == VKFT_OK
             ? VKFT_OK
             : vkft_error_prefix("%s: key \"%s\"", g->path, key);
}

int vkft_gguf_get_array(const vkft_gguf *g, const char *key, vkft_gguf_value *out) {
  const vkft_gguf_value *v = lookup(g, key);
  if (!v) return VKFT_ERR;
  if (v->type != VKFT_GGUF_ARRAY)
    return vkft_error("%s: key \"%s\": a %s value, not an array", g->path, key,
                      vkft_gguf_type_name(v->type));
  *out = *v;
  return VKFT_OK;
}
