/* bitsandbytes-compatible 4-bit weights on the host (QLoRA's frozen base): NF4/FP4 blockwise
 * quantization bit-identical to bitsandbytes' quantize_4bit (its CUDA kernels), double
 * quantization of the block scales, dequantization (the C reference of the fused shaders), and
 * the checkpoint layout that `save_pretrained()` writes after `load_in_4bit` and that
 * `*-bnb-4bit` repositories ship. The rules and their sources: docs/QUANT-BNB.md.
 *
 * Layout of one quantized weight W of n = out * in values (row-major, as nn.Linear stores it):
 *   packed   uint8 [(n + 1) / 2]  value 2i in the high nibble of byte i, value 2i+1 in the low;
 *                                 an odd n pads the last low nibble with the code of 0.0
 *   absmax   fp32 [blocks]        max |W| of each block of `blocksize` values, blocks =
 *                                 ceil(n / blocksize); value j decodes as code[nibble] *
 *                                 absmax[j / blocksize]
 *   or, with double quantization (bnb_4bit_use_double_quant):
 *   absmax   uint8 [blocks]       absmax - offset, 8-bit blockwise with the dynamic map
 *   nested_absmax fp32 [ceil(blocks / 256)], nested code fp32 [256], offset (mean absmax):
 *                                 absmax[j] = code8[q[j]] * nested_absmax[j / 256] + offset
 *
 * Proposed device layout for the fused dequant-matmul shader (a GPU kernel wants few bytes per
 * weight, and a matmul against a 4-bit base is bound by reading it):
 *   - packed nibbles uploaded as they are in the file and read as uint32 words, 8 weights per
 *     word: weight 8w + 2j is (word >> (8j + 4)) & 15 and weight 8w + 2j + 1 is
 *     (word >> 8j) & 15 (little-endian words over bnb's byte order; no repacking, the upload is
 *     a copy of the checkpoint bytes, padded to a multiple of 4 bytes);
 *   - double-quantized scales kept as uint8 + nested (not expanded to fp32): 4 + 8/64 + 32/16384
 *     = 4.127 bits per weight instead of 4 + 32/64 = 4.5 (8% fewer bytes read per matmul; 330 MB
 *     less at 8B parameters). The decode is one byte load, one lookup in the 256-entry code
 *     (1 KiB, in shared memory), one multiply and one add per block of 64 weights, i.e. nothing
 *     next to the block's 64 multiply-adds; written with `precise` (no fused multiply-add) it
 *     gives the same fp32 scale as vkft_bnb4_decode_absmax, so device and reference agree.
 *     Checkpoints without double quantization upload their fp32 absmax (a specialization
 *     constant selects the decode);
 *   - the 16-entry 4-bit code as a constant array (vkft_bnb4_code), the offset and blocksize as
 *     push constants; blocks are indexed by flat element index / blocksize, so blocks that span
 *     two rows (in % blocksize != 0) need nothing special. */
#ifndef VKFT_QUANT_H
#define VKFT_QUANT_H

#include "vkft/dtype.h"
#include "vkft/modules.h"
#include "vkft/safetensors.h"

#include <cjson/cJSON.h>

#include <stdint.h>

typedef enum vkft_bnb4_type { VKFT_BNB4_NF4, VKFT_BNB4_FP4 } vkft_bnb4_type;

#define VKFT_BNB_NESTED_BLOCKSIZE 256 /* bnb quantizes the absmax in blocks of 256 */
#define VKFT_BNB4_MAX_RANK 4

/* "nf4" / "fp4"; -1 for anything else. */
int vkft_bnb4_type_parse(const char *name, vkft_bnb4_type *out);
const char *vkft_bnb4_type_name(vkft_bnb4_type type);
/* 32, 64, ..., 4096: the block sizes bnb's quantize_4bit accepts. */
int vkft_bnb4_blocksize_valid(int blocksize);

/* The 16 values the 4-bit codes decode to, as bnb's dequantization kernels decode them (FP4's
 * code 8 is -0.0; the quant_map bnb stores has +0.0 there, see vkft_bnb4_quant_map). */
void vkft_bnb4_code(vkft_bnb4_type type, float code[16]);
/* The quant_map tensor bnb stores (get_4bit_type): NF4 as vkft_bnb4_code, FP4 with +0.0. */
void vkft_bnb4_quant_map(vkft_bnb4_type type, float code[16]);
/* bnb's signed 8-bit dynamic map, create_dynamic_map(signed=True): 256 sorted fp32 values,
 * bit-identical to what bnb computes (and stores as nested_quant_map). */
void vkft_bnb_dynamic_map(float map[256]);

/* ---- quantization (bit-identical to bnb's CUDA kernels, docs/QUANT-BNB.md) ---- */

/* The absmax of each block of n values of src (stored as dtype), as bnb's kernel reduces it:
 * max |x| ignoring NaNs, subnormals read as 0, the zeros padding a last partial block counted
 * (so a block of NaNs has -FLT_MAX if whole, 0 if partial). */
void vkft_bnb4_absmax(int blocksize, vkft_dtype dtype, const void *src, int64_t n, float *absmax);
/* Quantizes n values of src into packed[(n + 1) / 2] and absmax[ceil(n / blocksize)]. */
void vkft_bnb4_quantize(vkft_bnb4_type type, int blocksize, vkft_dtype dtype, const void *src,
                        int64_t n, uint8_t *packed, float *absmax);
/* The same with the block scales already known (from vkft_bnb4_absmax over the same values). */
void vkft_bnb4_quantize_scaled(vkft_bnb4_type type, int blocksize, vkft_dtype dtype,
                               const void *src, int64_t n, const float *absmax, uint8_t *packed);

/* bnb's 8-bit blockwise quantization (quantize_blockwise) of n fp32 values with a sorted
 * 256-entry code: q[n] and absmax[ceil(n / blocksize)]. */
void vkft_bnb8_quantize(const float code[256], int blocksize, const float *src, int64_t n,
                        uint8_t *q, float *absmax);

/* Double quantization as quantize_4bit(compress_statistics=True) does it: offset = mean of
 * absmax (in double, rounded once: within half an ulp of the exact mean where torch's fp32
 * mean may be an ulp or two off), then absmax - offset 8-bit quantized with the dynamic map in
 * blocks of 256 into q[blocks] and nested_absmax[ceil(blocks / 256)]. */
float vkft_bnb_absmax_offset(const float *absmax, int64_t blocks);
void vkft_bnb_double_quant(const float *absmax, int64_t blocks, float offset, uint8_t *q,
                           float *nested_absmax);
/* Undoes double quantization: absmax[j] = code[q[j]] * nested_absmax[j / nested_blocksize]
 * + offset, rounded after the multiply and after the add (as bnb's two steps). */
void vkft_bnb4_decode_absmax(const uint8_t *q, int64_t blocks, const float *nested_absmax,
                             int nested_blocksize, const float code[256], float offset,
                             float *absmax);

/* ---- one quantized weight ---- */

typedef struct vkft_bnb4_weight {
  vkft_bnb4_type type;
  int blocksize;
  int rank;
  int64_t shape[VKFT_BNB4_MAX_RANK]; /* quant_state "shape": the weight's shape */
  int64_t numel, blocks;
  vkft_dtype dtype;        /* quant_state "dtype": what the weight was quantized from */
  const uint8_t *packed;   /* (numel + 1) / 2 bytes */
  const float *absmax;     /* blocks values, or NULL when nested */
  int nested;              /* double quantization: */
  const uint8_t *absmax_q; /*   blocks codes */
  const float *nested_absmax;
  const float *nested_code; /*   256 values (a checkpoint's own nested_quant_map) */
  int nested_blocksize;
  float offset;
  float code[16];      /* vkft_bnb4_code(type): what the nibbles decode to */
  float quant_map[16]; /* vkft_bnb4_quant_map(type): the quant_map tensor */
  void *owned;         /* memory the struct owns (vkft_bnb4_weight_free) */
} vkft_bnb4_weight;

/* Quantizes a weight of the given shape stored as dtype (owned result). */
int vkft_bnb4_weight_quantize(vkft_bnb4_type type, int blocksize, int double_quant,
                              vkft_dtype dtype, const void *src, int rank, const int64_t *shape,
                              vkft_bnb4_weight *out);
void vkft_bnb4_weight_free(vkft_bnb4_weight *w);
/* The fp32 block scales of w (absmax, or decoded from the nested form) into absmax[blocks]. */
void vkft_bnb4_weight_absmax(const vkft_bnb4_weight *w, float *absmax);
/* The C reference of the dequantization (bnb's kDequantizeBlockwise): numel fp32 values.
 * absmax: w's fp32 block scales (vkft_bnb4_weight_absmax). */
void vkft_bnb4_dequantize(const vkft_bnb4_weight *w, const float *absmax, float *out);
/* Values [first, first + n) of w in fp32, the same bits as vkft_bnb4_dequantize, decoding only
 * the block scales the range touches (a merged export reads a weight a few rows at a time). */
void vkft_bnb4_dequantize_range(const vkft_bnb4_weight *w, int64_t first, int64_t n, float *out);

/* ---- the device layout (src/quant/device.c): how a tensor of dtype VKFT_NF4 / VKFT_FP4 holds
 * a weight on a backend, read by the fused dequantizing matmul (shaders/quant.glsl) and by the
 * reference backend. Byte offsets from the tensor's start, each part 16-byte aligned:
 *   [0, scales)              packed nibbles as in the checkpoint (bnb's byte order)
 *   not nested: [scales, ...) fp32 absmax[blocks]
 *   nested:     [scales, ...) uint8 absmax codes[blocks]; [nested_absmax, ...) fp32
 *               [ceil(blocks / 256)]; [nested_code, ...) fp32 [256] (the checkpoint's map)
 * plus, outside the bytes, the vkft_quant of the tensor (blocksize, nested, offset). ---- */

typedef struct vkft_bnb4_layout {
  int64_t blocks;
  uint64_t scales, nested_absmax, nested_code, bytes;
} vkft_bnb4_layout;

void vkft_bnb4_layout_of(int64_t n, int blocksize, int nested, vkft_bnb4_layout *out);
/* The layout's bytes of weight w into dst (vkft_bnb4_layout_of(w->numel, ...).bytes). */
void vkft_bnb4_pack_device(const vkft_bnb4_weight *w, void *dst);
/* The reference dequantization from the device bytes: n fp32 values, the same bits as the
 * shader's and as vkft_bnb4_dequantize. */
void vkft_bnb4_dequantize_device(vkft_bnb4_type type, const void *bytes, int64_t n, int blocksize,
                                 int nested, float offset, float *out);

/* ---- every quantized dtype (bitsandbytes NF4/FP4 in the layout above, or a ggml block type
 * holding a GGUF file's blocks, include/vkft/ggml_quants.h): what the backends need to size,
 * check and read a quantized tensor (src/quant/device.c). blocksize/nested/offset are the
 * tensor's vkft_quant (for ggml types blocksize is the type's block size). ---- */

/* Bytes of the tensor's storage. */
uint64_t vkft_quant_tensor_bytes(vkft_dtype dtype, int64_t n, int blocksize, int nested);
/* 1 if (dtype, n, blocksize) describes a valid quantized layout. */
int vkft_quant_tensor_valid(vkft_dtype dtype, int64_t n, int blocksize);
/* The reference dequantization: n fp32 values from the storage bytes, the bits the shaders
 * compute (shaders/quant.glsl, shaders/ggml.glsl). */
void vkft_quant_tensor_dequantize(vkft_dtype dtype, const void *bytes, int64_t n, int blocksize,
                                  int nested, float offset, float *out);

/* ---- checkpoints (src/quant/bnb_format.c) ---- */

/* The quant_state JSON bnb packs into "<weight>.quant_state.bitsandbytes__<type>" (json.dumps of
 * quant_type, blocksize, dtype, shape[, nested_blocksize, nested_dtype, nested_offset]);
 * malloc'd. */
char *vkft_bnb4_quant_state_json(const vkft_bnb4_weight *w);
/* Adds the tensors of w under weight name `name` ("model.layers.0.self_attn.q_proj.weight"):
 * name, name.absmax, name.quant_map, [name.nested_absmax, name.nested_quant_map,]
 * name.quant_state.bitsandbytes__<type>. w and its JSON (state_json, from
 * vkft_bnb4_quant_state_json) must outlive the save. */
int vkft_bnb4_writer_add(vkft_st_writer *writer, const char *name, const vkft_bnb4_weight *w,
                         const char *state_json);
/* The same without the packed nibbles (a streaming writer adds those itself, deferred). */
int vkft_bnb4_writer_add_scales(vkft_st_writer *writer, const char *name, const vkft_bnb4_weight *w,
                                const char *state_json);
/* Whether `name` is a bnb 4-bit weight in the set (it has a quant_state tensor). */
int vkft_bnb4_is_quantized(const vkft_st_set *set, const char *name);
/* Reads weight `name` of a bnb 4-bit checkpoint: every tensor and the quant_state checked against
 * each other (one error line naming the file and tensor). packed points into the set's memory
 * map (valid while it is open); the scales are copied. */
int vkft_bnb4_read(const vkft_st_set *set, const char *name, vkft_bnb4_weight *out);
/* Projection p of layer `layer`: "model.layers.<layer>.<vkft_proj_path(p)>.weight". */
int vkft_bnb4_read_proj(const vkft_st_set *set, int layer, vkft_proj p, vkft_bnb4_weight *out);

/* ---- config.json's quantization_config ---- */

typedef enum vkft_quant_kind {
  VKFT_QUANT_NONE, /* no quantization_config */
  VKFT_QUANT_BNB4, /* bitsandbytes 4-bit */
} vkft_quant_kind;

typedef struct vkft_quant_info {
  vkft_quant_kind kind;
  vkft_bnb4_type type;    /* bnb_4bit_quant_type */
  int double_quant;       /* bnb_4bit_use_double_quant */
  char compute_dtype[16]; /* bnb_4bit_compute_dtype ("float32" when absent, as transformers) */
  char quant_storage[16]; /* bnb_4bit_quant_storage ("uint8" when absent) */
} vkft_quant_info;

/* Inspects DIR/config.json (or a config.json path): VKFT_OK with kind NONE or BNB4; VKFT_ERR
 * with one line naming the file and the quant_method for everything else (8-bit bitsandbytes,
 * gptq, awq, ...). */
int vkft_quant_inspect(const char *path, vkft_quant_info *info);
/* The quantization_config object transformers writes for BitsAndBytesConfig(load_in_4bit=True,
 * ...) (its to_dict(); json.dumps sorts the keys when config.json is written). */
cJSON *vkft_bnb4_quantization_config(vkft_bnb4_type type, int double_quant,
                                     const char *compute_dtype);

/* ---- vkft quantize: an f32/f16/bf16 Hugging Face folder to a bnb 4-bit folder ---- */

typedef struct vkft_quantize_desc {
  const char *model_dir, *out_dir;
  vkft_bnb4_type type;
  int blocksize;    /* 0: 64, as bnb's Linear4bit */
  int double_quant; /* bnb_4bit_use_double_quant */
} vkft_quantize_desc;

typedef struct vkft_quantize_stats {
  int weights_quantized, tensors_copied, files_copied;
  uint64_t bytes_in, bytes_out; /* of the quantized weights, source and packed + scales */
  double seconds_quantizing;
} vkft_quantize_stats;

/* Writes out_dir (which must not exist): every layer's seven projections quantized, the other
 * tensors as they are, config.json with quantization_config added (printed as transformers
 * prints a config: sorted keys, indent 2), the other files of the folder copied (weights in
 * other formats left out). Streams: one weight's packed nibbles at a time plus the block scales
 * of one shard in memory. Writes into out_dir.tmp and renames it at the end. progress (may be
 * NULL) is called after each weight. */
int vkft_quantize_model(const vkft_quantize_desc *desc, vkft_quantize_stats *stats,
                        void (*progress)(void *user, int done, int total), void *user);

#endif
