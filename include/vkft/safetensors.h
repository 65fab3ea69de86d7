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
/* The same with a file dtype (e.g. VKFT_ST_U8; not VKFT_ST_OTHER). */
int vkft_st_writer_add_raw(vkft_st_writer *w, const char *name, vkft_st_dtype dtype, int rank,
                           const int64_t *shape, const void *data);
/* A tensor of an open set, written under `name` as it is (any dtype the reader accepts). */
int vkft_st_writer_add_tensor(vkft_st_writer *w, const char *name, const vkft_st_tensor *t);
/* A tensor whose bytes are produced while saving: fill(user, dst, size) is called once, in file
 * order, to write the tensor's `size` bytes into dst; returns VKFT_OK or VKFT_ERR with a message.
 * Lets a writer stream a file larger than memory, one tensor at a time. */
typedef int (*vkft_st_fill_fn)(void *user, void *dst, uint64_t size);
int vkft_st_writer_add_deferred(vkft_st_writer *w, const char *name, vkft_st_dtype dtype, int rank,
                                const int64_t *shape, vkft_st_fill_fn fill, void *user);
/* Optional "__metadata__" string entries (e.g. {"format": "pt"} as PEFT writes). */
int vkft_st_writer_meta(vkft_st_writer *w, const char *key, const char *value);
/* Writes to path atomically (temp file, flush, rename) in the Python library's layout: the
 * tensors ordered by dtype (widest first, as its Dtype enum ranks them: I64, F64, F32, I32,
 * BF16, F16, U8...) then by name, offsets packed in that order, header padded to 8 bytes. */
int vkft_st_writer_save(vkft_st_writer *w, const char *path);
void vkft_st_writer_free(vkft_st_writer *w);

/* Begins a safetensors file at path (vkft_atomic_begin): the header's length (8 bytes, little
 * endian), header_json, and the spaces that pad it to a multiple of 8 bytes, as the Python
 * library writes them. The tensors' bytes follow through vkft_atomic_write, then the caller
 * commits or aborts *af. On failure nothing is left behind. */
struct vkft_atomic_file;
int vkft_st_file_begin(struct vkft_atomic_file *af, const char *path, const char *header_json);

#endif
