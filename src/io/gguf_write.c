/* GGUF writing (version 3, little-endian), byte for byte as gguf-py's GGUFWriter and ggml's
 * gguf.cpp write: the header, the key/value pairs in the order they were set (each serialized
 * when it is set), the tensor infos with offsets packed in order and padded to the alignment,
 * zero padding to the alignment, then each tensor's bytes followed by zero padding to the
 * alignment (the last one too). Tensor bytes come from a callback, one tensor at a time. */
#include "vkft/buf.h"
#include "vkft/gguf.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tensor_info {
  char name[VKFT_GGUF_MAX_NAME + 1];
  vkft_ggml_type type;
  int n_dims;
  int64_t ne[VKFT_GGUF_MAX_DIMS];
  uint64_t size, offset;
} tensor_info;

struct vkft_gguf_writer {
  vkft_strbuf kv; /* the serialized key/value pairs (appends unchecked: save reports a failure) */
  char **keys;    /* for duplicate checks */
  int64_t n_kv;
  size_t keys_cap;
  tensor_info *tensors;
  int64_t n_tensors;
  size_t tensors_cap;
  uint32_t alignment;
};

struct vkft_gguf_sink {
  vkft_atomic_file *af;
  uint64_t written;
};

static void put_le(vkft_strbuf *b, uint64_t v, int bytes) {
  uint8_t p[8];
  for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
  vkft_strbuf_add(b, p, (size_t)bytes);
}

static void put_string(vkft_strbuf *b, const char *s, uint64_t len) {
  put_le(b, len, 8);
  vkft_strbuf_add(b, s, (size_t)len);
}

int vkft_gguf_writer_create(vkft_gguf_writer **out) {
  *out = calloc(1, sizeof **out);
  if (!*out) return vkft_error_nomem();
  (*out)->alignment = VKFT_GGUF_DEFAULT_ALIGNMENT;
  return VKFT_OK;
}

void vkft_gguf_writer_free(vkft_gguf_writer *w) {
  if (!w) return;
  for (int64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
  free(w->keys);
  free(w->kv.data);
  free(w->tensors);
  free(w);
}

/* Starts a key/value pair: checks the key is new and writes it and the value type. */
static int begin_kv(vkft_gguf_writer *w, const char *key, vkft_gguf_type type) {
  for (int64_t i = 0; i < w->n_kv; i++)
    if (!strcmp(w->keys[i], key)) return vkft_error("gguf: metadata key \"%s\" set twice", key);
  if (vkft_grow((void **)&w->keys, &w->keys_cap, (size_t)w->n_kv + 1, sizeof *w->keys))
    return VKFT_ERR;
  w->keys[w->n_kv] = malloc(strlen(key) + 1);
  if (!w->keys[w->n_kv]) return vkft_error_nomem();
  strcpy(w->keys[w->n_kv++], key);
  put_string(&w->kv, key, strlen(key));
  put_le(&w->kv, (uint64_t)type, 4);
  return VKFT_OK;
}

static int set_scalar(vkft_gguf_writer *w, const char *key, vkft_gguf_type type, uint64_t bits,
                      int bytes) {
  if (begin_kv(w, key, type) != VKFT_OK) return VKFT_ERR;
  put_le(&w->kv, bits, bytes);
  return VKFT_OK;
}

int vkft_gguf_set_u32(vkft_gguf_writer *w, const char *key, uint32_t value) {
  if (!strcmp(key, "general.alignment")) {
    if (!value || (value & (value - 1)))
      return vkft_error("gguf: general.alignment %u is not a power of two", value);
    w->alignment = value;
  }
  return set_scalar(w, key, VKFT_GGUF_UINT32, value, 4);
}

int vkft_gguf_set_i32(vkft_gguf_writer *w, const char *key, int32_t value) {
  return set_scalar(w, key, VKFT_GGUF_INT32, (uint32_t)value, 4);
}

int vkft_gguf_set_u64(vkft_gguf_writer *w, const char *key, uint64_t value) {
  return set_scalar(w, key, VKFT_GGUF_UINT64, value, 8);
}

int vkft_gguf_set_f32(vkft_gguf_writer *w, const char *key, float value) {
  uint32_t bits;
  memcpy(&bits, &value, 4);
  return set_scalar(w, key, VKFT_GGUF_FLOAT32, bits, 4);
}

int vkft_gguf_set_bool(vkft_gguf_writer *w, const char *key, int value) {
  return set_scalar(w, key, VKFT_GGUF_BOOL, value ? 1 : 0, 1);
}

int vkft_gguf_set_str(vkft_gguf_writer *w, const char *key, const char *value) {
  if (begin_kv(w, key, VKFT_GGUF_STRING) != VKFT_OK) return VKFT_ERR;
  put_string(&w->kv, value, strlen(value));
  return VKFT_OK;
}

static const uint8_t fixed_sizes[VKFT_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

int vkft_gguf_set_array(vkft_gguf_writer *w, const char *key, vkft_gguf_type elem_type,
                        const void *values, uint64_t n) {
  if ((unsigned)elem_type >= VKFT_GGUF_TYPE_COUNT || !fixed_sizes[elem_type])
    return vkft_error("gguf: %s: arrays of %s need their own setter", key,
                      vkft_gguf_type_name(elem_type));
  if (begin_kv(w, key, VKFT_GGUF_ARRAY) != VKFT_OK) return VKFT_ERR;
  put_le(&w->kv, (uint64_t)elem_type, 4);
  put_le(&w->kv, n, 8);
  int size = fixed_sizes[elem_type];
  const uint8_t *p = values;
  for (uint64_t i = 0; i < n; i++, p += size) {
    uint64_t v = 0;
    if (elem_type == VKFT_GGUF_BOOL) {
      v = *p ? 1 : 0;
    } else if (size == 1) {
      v = *p;
    } else if (size == 2) { /* host values to little-endian bytes */
      uint16_t x;
      memcpy(&x, p, 2);
      v = x;
    } else if (size == 4) {
      uint32_t x;
      memcpy(&x, p, 4);
      v = x;
    } else {
      memcpy(&v, p, 8);
    }
    put_le(&w->kv, v, size);
  }
  return VKFT_OK;
}

int vkft_gguf_set_str_array(vkft_gguf_writer *w, const char *key, const char *const *strings,
                            const uint64_t *lens, uint64_t n) {
  if (begin_kv(w, key, VKFT_GGUF_ARRAY) != VKFT_OK) return VKFT_ERR;
  put_le(&w->kv, VKFT_GGUF_STRING, 4);
  put_le(&w->kv, n, 8);
  for (uint64_t i = 0; i < n; i++)
    put_string(&w->kv, strings[i], lens ? lens[i] : strlen(strings[i]));
  return VKFT_OK;
}

/* the payload of a value read from a file, re-serialized (arrays element by element) */
static void put_value(vkft_strbuf *b, const vkft_gguf_value *v) {
  if (v->type == VKFT_GGUF_STRING) {
    const char *s;
    uint64_t len;
    vkft_gguf_value_str(v, &s, &len);
    put_string(b, s, len);
  } else if (v->type == VKFT_GGUF_ARRAY) {
    put_le(b, (uint64_t)v->elem_type, 4);
    put_le(b, v->count, 8);
    vkft_gguf_iter it;
    vkft_gguf_value e;
    vkft_gguf_array_begin(v, &it);
    while (vkft_gguf_array_next(&it, &e)) put_value(b, &e);
  } else {
    vkft_strbuf_add(b, v->data, fixed_sizes[v->type]);
  }
}

int vkft_gguf_set_value(vkft_gguf_writer *w, const char *key, const vkft_gguf_value *value) {
  if (!strcmp(key, "general.alignment")) {
    int64_t a;
    if (value->type != VKFT_GGUF_UINT32 || vkft_gguf_value_int(value, &a) != VKFT_OK)
      return vkft_error("gguf: general.alignment must be a uint32");
    return vkft_gguf_set_u32(w, key, (uint32_t)a);
  }
  if (begin_kv(w, key, value->type) != VKFT_OK) return VKFT_ERR;
  put_value(&w->kv, value);
  return VKFT_OK;
}

int vkft_gguf_add_tensor(vkft_gguf_writer *w, const char *name, vkft_ggml_type type, int n_dims,
                         const int64_t *ne) {
  if (strlen(name) > VKFT_GGUF_MAX_NAME)
    return vkft_error("gguf: tensor name \"%s\" is longer than %d bytes", name, VKFT_GGUF_MAX_NAME);
  if (n_dims < 1 || n_dims > VKFT_GGUF_MAX_DIMS)
    return vkft_error("gguf: tensor \"%s\": %d dimensions", name, n_dims);
  if (!vkft_ggml_type_known((uint32_t)type))
    return vkft_error("gguf: tensor \"%s\": unknown type %d", name, (int)type);
  if (ne[0] < 0 || ne[0] % vkft_ggml_block_size(type))
    return vkft_error("gguf: tensor \"%s\": row of %lld is not a multiple of %s's block", name,
                      (long long)ne[0], vkft_ggml_type_name(type));
  for (int64_t i = 0; i < w->n_tensors; i++)
    if (!strcmp(w->tensors[i].name, name))
      return vkft_error("gguf: tensor \"%s\" added twice", name);
  if (vkft_grow((void **)&w->tensors, &w->tensors_cap, (size_t)w->n_tensors + 1,
                sizeof *w->tensors))
    return VKFT_ERR;
  tensor_info *t = &w->tensors[w->n_tensors++];
  memset(t, 0, sizeof *t);
  strcpy(t->name, name);
  t->type = type;
  t->n_dims = n_dims;
  uint64_t rows = 1;
  for (int d = 0; d < VKFT_GGUF_MAX_DIMS; d++) {
    t->ne[d] = d < n_dims ? ne[d] : 1;
    if (d > 0) rows *= (uint64_t)t->ne[d];
  }
  t->size = vkft_ggml_row_size(type, t->ne[0]) * rows;
  return VKFT_OK;
}

int vkft_gguf_sink_write(vkft_gguf_sink *sink, const void *data, size_t n) {
  if (vkft_atomic_write(sink->af, data, n) != VKFT_OK) return VKFT_ERR;
  sink->written += n;
  return VKFT_OK;
}

static int write_zeros(vkft_atomic_file *af, uint64_t n) {
  static const uint8_t zeros[64];
  while (n) {
    size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
    if (vkft_atomic_write(af, zeros, k) != VKFT_OK) return VKFT_ERR;
    n -= k;
  }
  return VKFT_OK;
}

static uint64_t pad_to(uint64_t n, uint32_t alignment) {
  return (alignment - n % alignment) % alignment;
}

/* the header, metadata and tensor infos, with the offsets assigned */
static int build_head(vkft_gguf_writer *w, vkft_strbuf *head) {
  vkft_strbuf_add(head, "GGUF", 4);
  put_le(head, 3, 4);
  put_le(head, (uint64_t)w->n_tensors, 8);
  put_le(head, (uint64_t)w->n_kv, 8);
  vkft_strbuf_add(head, w->kv.data, w->kv.len);
  uint64_t offset = 0;
  for (int64_t i = 0; i < w->n_tensors; i++) {
    tensor_info *t = &w->tensors[i];
    put_string(head, t->name, strlen(t->name));
    put_le(head, (uint64_t)t->n_dims, 4);
    for (int d = 0; d < t->n_dims; d++) put_le(head, (uint64_t)t->ne[d], 8);
    put_le(head, (uint64_t)t->type, 4);
    t->offset = offset;
    put_le(head, offset, 8);
    offset += t->size + pad_to(t->size, w->alignment);
  }
  return head->failed || w->kv.failed ? vkft_error_nomem() : VKFT_OK;
}

int vkft_gguf_writer_save(vkft_gguf_writer *w, const char *path, vkft_gguf_produce_fn produce,
                          void *user) {
  vkft_strbuf head = {0};
  if (build_head(w, &head) != VKFT_OK) {
    free(head.data);
    return VKFT_ERR;
  }
  vkft_atomic_file af;
  if (vkft_atomic_begin(&af, path) != VKFT_OK) {
    free(head.data);
    return VKFT_ERR;
  }
  int status = vkft_atomic_write(&af, head.data, head.len);
  if (status == VKFT_OK) status = write_zeros(&af, pad_to(head.len, w->alignment));
  free(head.data);
  for (int64_t i = 0; status == VKFT_OK && i < w->n_tensors; i++) {
    const tensor_info *t = &w->tensors[i];
    vkft_gguf_sink sink = {.af = &af};
    status = produce(user, i, &sink);
    if (status == VKFT_OK && sink.written != t->size)
      status = vkft_error_with(
          VKFT_ERR_INTERNAL, "%s: tensor \"%s\": %llu bytes written, %llu expected", path, t->name,
          (unsigned long long)sink.written, (unsigned long long)t->size);
    if (status == VKFT_OK) status = write_zeros(&af, pad_to(t->size, w->alignment));
  }
  if (status != VKFT_OK) {
    vkft_atomic_abort(&af);
    return VKFT_ERR;
  }
  return vkft_atomic_commit(&af);
}
