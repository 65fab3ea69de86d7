/* safetensors files: reading (memory-mapped, one file or a sharded set behind
 * model.safetensors.index.json) and writing (atomically), in the Hugging Face format:
 * 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
 * then the raw little-endian tensor bytes. */
#ifndef VKFT_SAFETENSORS_H
#define VKFT_SAFETENSORS_H

#include "vkft/dtype.h"

#include <stddef.h>
#include <stdint.h>

#define VKFT_ST_MAX_DIMS 8

typedef enum vkft_st_dtype {
  VKFT_ST_F32,
  VKFT_ST_F16,
  VKFT_ST_BF16,
  VKFT_ST_I32,
  VKFT_ST_I64,
  VKFT_ST_U8,
  VKFT_ST_F64,
  VKFT_ST_OTHER
} vkft_st_dtype;

typedef struct vkft_st_tensor {
  char *name;
  vkft_st_dtype dtype;
  char dtype_name[16]; /* as written in the file, e.g. "BF16" */
  int rank;
  int64_t shape[VKFT_ST_MAX_DIMS];
  int64_t numel;
  const uint8_t *data; /* into the memory map */
  uint64_t size;       /* bytes */
  int file;            /* index of the shard */
} vkft_st_tensor;

typedef struct vkft_st_set vkft_st_set;

/* Opens a model folder's weights (model.safetensors, or the shards named by
 * model.safetensors.index.json) or a single .safetensors file. */
int vkft_st_open(const char *path, vkft_st_set **out);
void vkft_st_close(vkft_st_set *set);
int vkft_st_count(const vkft_st_set *set);
const vkft_st_tensor *vkft_st_at(const vkft_st_set *set, int i);
const vkft_st_tensor *vkft_st_find(const vkft_st_set *set, const char *name); /* NULL if absent */
/* The file a tensor came from (for error messages). */
const char *vkft_st_file_of(const vkft_st_set *set, const vkft_st_tensor *t);
/* vkft's storage dtype for a file dtype (F32/F16/BF16); -1 if it has none. */
int vkft_st_to_dtype(vkft_st_dtype t, vkft_dtype *out);

/* Writing: collect tensors (name, dtype, shape, data pointer — not copied), then write. */
typedef struct vkft_st_writer vkft_st_writer;
int vkft_st_writer_create(vkft_st_writer **out);
int vkft_st_writer_add(vkft_st_writer *w, const char *name, vkft_dtype dtype, int rank,
                       const int64_t *shape, const void *data);
/* Optional "__metadata__" string entries (e.g. {"format": "pt"} as PEFT writes). */
int vkft_st_writer_meta(vkft_st_writer *w, const char *key, const char *value);
/* Writes to path atomically (temp file, flush, rename); tensors are sorted by name like the
 * Python library does, with offsets packed in that order. */
int vkft_st_writer_save(vkft_st_writer *w, const char *path);
void vkft_st_writer_free(vkft_st_writer *w);

#endif
