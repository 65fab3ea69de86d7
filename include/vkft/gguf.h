/* GGUF files (ggml-org/ggml docs/gguf.md, versions 2 and 3, little-endian): reading
 * (memory-mapped; every count, length, offset and size is checked against the file when it is
 * opened, so a damaged file is one error naming it and never an out-of-bounds read) and
 * writing (atomically, with the tensors streamed one at a time from a callback so that a model
 * never has to be in memory whole). The byte layout is the one ggml's gguf.cpp and gguf-py's
 * GGUFWriter produce: header, key/value pairs in the order they were added, tensor infos,
 * zero padding to the alignment, then each tensor's data padded to the alignment. */
#ifndef VKFT_GGUF_H
#define VKFT_GGUF_H

#include "vkft/ggml_quants.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* metadata value types (gguf_metadata_value_type) */
typedef enum vkft_gguf_type {
  VKFT_GGUF_UINT8 = 0,
  VKFT_GGUF_INT8 = 1,
  VKFT_GGUF_UINT16 = 2,
  VKFT_GGUF_INT16 = 3,
  VKFT_GGUF_UINT32 = 4,
  VKFT_GGUF_INT32 = 5,
  VKFT_GGUF_FLOAT32 = 6,
  VKFT_GGUF_BOOL = 7,
  VKFT_GGUF_STRING = 8,
  VKFT_GGUF_ARRAY = 9,
  VKFT_GGUF_UINT64 = 10,
  VKFT_GGUF_INT64 = 11,
  VKFT_GGUF_FLOAT64 = 12,
  VKFT_GGUF_TYPE_COUNT = 13
} vkft_gguf_type;

#define VKFT_GGUF_DEFAULT_ALIGNMENT 32
#define VKFT_GGUF_MAX_DIMS 4
#define VKFT_GGUF_MAX_NAME 63 /* bytes of a tensor name ggml can load (GGML_MAX_NAME - 1) */

const char *vkft_gguf_type_name(vkft_gguf_type t); /* "uint32", "string", "array" ... */

/* ---- reading ---- */

typedef struct vkft_gguf vkft_gguf;

/* A metadata value (or an array element) inside an open file. For scalars `data` holds the
 * little-endian bytes; for a string, its 8-byte length and then the bytes; for an array, the
 * first element (elem_type and count say what follows). Valid while the file is open. */
typedef struct vkft_gguf_value {
  vkft_gguf_type type;
  const uint8_t *data;
  vkft_gguf_type elem_type; /* arrays */
  uint64_t count;           /* arrays */
} vkft_gguf_value;

typedef struct vkft_gguf_tensor {
  char name[VKFT_GGUF_MAX_NAME + 2]; /* NUL-terminated; the spec allows 64 bytes */
  int n_dims;
  int64_t ne[VKFT_GGUF_MAX_DIMS]; /* ggml order: ne[0] is the row length (innermost) */
  vkft_ggml_type type;
  uint64_t offset; /* from the start of the data section */
  uint64_t size;   /* bytes */
  const uint8_t *data;
} vkft_gguf_tensor;

/* 1 if path is a file that starts with the GGUF magic (a model given as a GGUF file). */
int vkft_gguf_is_file(const char *path);
int vkft_gguf_open(const char *path, vkft_gguf **out);
void vkft_gguf_close(vkft_gguf *g);
const char *vkft_gguf_path(const vkft_gguf *g);
uint32_t vkft_gguf_version(const vkft_gguf *g);
uint32_t vkft_gguf_alignment(const vkft_gguf *g);
uint64_t vkft_gguf_data_offset(const vkft_gguf *g); /* file offset of the tensor data */

int64_t vkft_gguf_kv_count(const vkft_gguf *g);
const char *vkft_gguf_kv_key(const vkft_gguf *g, int64_t i); /* NUL-terminated copy */
const vkft_gguf_value *vkft_gguf_kv_value(const vkft_gguf *g, int64_t i);
int64_t vkft_gguf_find_key(const vkft_gguf *g, const char *key); /* -1 if absent */

/* Typed lookups by key: VKFT_ERR with "FILE: key \"K\" ..." when the key is absent or its
 * value does not fit. get_int accepts any integer type (and bool); get_float float32/64. */
int vkft_gguf_get_int(const vkft_gguf *g, const char *key, int64_t *out);
int vkft_gguf_get_float(const vkft_gguf *g, const char *key, double *out);
/* The string's bytes (not NUL-terminated) and length. */
int vkft_gguf_get_str(const vkft_gguf *g, const char *key, const char **s, uint64_t *len);
int vkft_gguf_get_array(const vkft_gguf *g, const char *key, vkft_gguf_value *out);

/* Values: the number of a scalar of any integer type / float type, a string's bytes. */
int vkft_gguf_value_int(const vkft_gguf_value *v, int64_t *out);
int vkft_gguf_value_float(const vkft_gguf_value *v, double *out);
int vkft_gguf_value_str(const vkft_gguf_value *v, const char **s, uint64_t *len);

/* Array elements in order (arrays of strings and nested arrays have no random access). */
typedef struct vkft_gguf_iter {
  const uint8_t *next;
  uint64_t left;
  vkft_gguf_type type;
} vkft_gguf_iter;
void vkft_gguf_array_begin(const vkft_gguf_value *array, vkft_gguf_iter *it);
int vkft_gguf_array_next(vkft_gguf_iter *it, vkft_gguf_value *element); /* 0 at the end */

int64_t vkft_gguf_tensor_count(const vkft_gguf *g);
const vkft_gguf_tensor *vkft_gguf_tensor_at(const vkft_gguf *g, int64_t i);
const vkft_gguf_tensor *vkft_gguf_find_tensor(const vkft_gguf *g, const char *name);

/* ---- writing ---- */

typedef struct vkft_gguf_writer vkft_gguf_writer;

int vkft_gguf_writer_create(vkft_gguf_writer **out);
void vkft_gguf_writer_free(vkft_gguf_writer *w);

/* Key/value pairs, written in the order they are set; a key set twice is an error. Setting
 * "general.alignment" (uint32, a power of two) changes the alignment of the tensor data. */
int vkft_gguf_set_u32(vkft_gguf_writer *w, const char *key, uint32_t value);
int vkft_gguf_set_i32(vkft_gguf_writer *w, const char *key, int32_t value);
int vkft_gguf_set_u64(vkft_gguf_writer *w, const char *key, uint64_t value);
int vkft_gguf_set_f32(vkft_gguf_writer *w, const char *key, float value);
int vkft_gguf_set_bool(vkft_gguf_writer *w, const char *key, int value);
int vkft_gguf_set_str(vkft_gguf_writer *w, const char *key, const char *value);
/* An array of n fixed-size values (host layout: uint8 .. float64, bool as 1 byte). */
int vkft_gguf_set_array(vkft_gguf_writer *w, const char *key, vkft_gguf_type elem_type,
                        const void *values, uint64_t n);
/* An array of n strings; lens may be NULL (each string NUL-terminated). */
int vkft_gguf_set_str_array(vkft_gguf_writer *w, const char *key, const char *const *strings,
                            const uint64_t *lens, uint64_t n);
/* Copies a value of an open file (any type, nested arrays included). */
int vkft_gguf_set_value(vkft_gguf_writer *w, const char *key, const vkft_gguf_value *value);

/* Tensor infos, in file order; ne in ggml order (ne[0] = row length, a multiple of the type's
 * block size). Names are at most VKFT_GGUF_MAX_NAME bytes and unique. */
int vkft_gguf_add_tensor(vkft_gguf_writer *w, const char *name, vkft_ggml_type type, int n_dims,
                         const int64_t *ne);

/* The tensor data: save calls produce(user, i, sink) for each tensor i in order, which writes
 * exactly the tensor's bytes through vkft_gguf_sink_write (in as many pieces as it likes). */
typedef struct vkft_gguf_sink vkft_gguf_sink;
int vkft_gguf_sink_write(vkft_gguf_sink *sink, const void *data, size_t n);
typedef int (*vkft_gguf_produce_fn)(void *user, int64_t index, vkft_gguf_sink *sink);

/* Writes the file atomically (temp file, flush, rename); on any error no file is left. */
int vkft_gguf_writer_save(vkft_gguf_writer *w, const char *path, vkft_gguf_produce_fn produce,
                          void *user);

#ifdef __cplusplus
}
#endif
#endif
