/* ggml's tensor types as GGUF files store them: the type ids and block sizes of every type a
 * GGUF file may name, the block layouts of the ones vkft computes with (F32, F16, BF16, Q8_0,
 * Q4_0, Q5_0, Q4_K, Q5_K, Q6_K) exactly as ggml's ggml-common.h lays them out, dequantization
 * to fp32 for all of those (the C reference for GPU kernels), and quantization that gives the
 * same bytes as ggml's reference quantizers (quantize_row_*_ref in ggml-quants.c, the path
 * llama-quantize takes without an importance matrix). docs/GGUF.md cites the sources.
 *
 * Quantization is only defined for finite input: callers check (vkft_ggml_all_finite) and
 * report the tensor, as ggml's own quantizers would write garbage for NaN or infinity. */
#ifndef VKFT_GGML_QUANTS_H
#define VKFT_GGML_QUANTS_H

#include "vkft/dtype.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ggml_type ids (ggml.h); the numbers are part of the GGUF format. */
typedef enum vkft_ggml_type {
  VKFT_GGML_F32 = 0,
  VKFT_GGML_F16 = 1,
  VKFT_GGML_Q4_0 = 2,
  VKFT_GGML_Q4_1 = 3,
  VKFT_GGML_Q5_0 = 6,
  VKFT_GGML_Q5_1 = 7,
  VKFT_GGML_Q8_0 = 8,
  VKFT_GGML_Q8_1 = 9,
  VKFT_GGML_Q2_K = 10,
  VKFT_GGML_Q3_K = 11,
  VKFT_GGML_Q4_K = 12,
  VKFT_GGML_Q5_K = 13,
  VKFT_GGML_Q6_K = 14,
  VKFT_GGML_Q8_K = 15,
  VKFT_GGML_IQ2_XXS = 16,
  VKFT_GGML_IQ2_XS = 17,
  VKFT_GGML_IQ3_XXS = 18,
  VKFT_GGML_IQ1_S = 19,
  VKFT_GGML_IQ4_NL = 20,
  VKFT_GGML_IQ3_S = 21,
  VKFT_GGML_IQ2_S = 22,
  VKFT_GGML_IQ4_XS = 23,
  VKFT_GGML_I8 = 24,
  VKFT_GGML_I16 = 25,
  VKFT_GGML_I32 = 26,
  VKFT_GGML_I64 = 27,
  VKFT_GGML_F64 = 28,
  VKFT_GGML_IQ1_M = 29,
  VKFT_GGML_BF16 = 30,
  VKFT_GGML_TQ1_0 = 34,
  VKFT_GGML_TQ2_0 = 35,
  VKFT_GGML_MXFP4 = 39,
  VKFT_GGML_TYPE_LIMIT = 40 /* ids below this may be known; see vkft_ggml_type_known */
} vkft_ggml_type;

/* ---- block layouts (little-endian bytes; fp16 fields are IEEE half bit patterns) ---- */

#define VKFT_QK4_0 32
#define VKFT_QK5_0 32
#define VKFT_QK8_0 32
#define VKFT_QK_K 256        /* super-block of the k-quants */
#define VKFT_K_SCALE_SIZE 12 /* 8 six-bit scales + 8 six-bit mins of Q4_K/Q5_K */

/* x[i] = d * q[i], q in -127..127 */
typedef struct vkft_block_q8_0 {
  uint16_t d;
  int8_t qs[VKFT_QK8_0];
} vkft_block_q8_0;

/* x[i] = d * (q[i] - 8); qs[j] holds element j (low nibble) and j + 16 (high nibble) */
typedef struct vkft_block_q4_0 {
  uint16_t d;
  uint8_t qs[VKFT_QK4_0 / 2];
} vkft_block_q4_0;

/* x[i] = d * (q[i] - 16), q 5 bits: low nibbles as Q4_0, bit 4 of element i in bit i of the
 * little-endian 32-bit word qh */
typedef struct vkft_block_q5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[VKFT_QK5_0 / 2];
} vkft_block_q5_0;

/* 8 sub-blocks of 32: x = d * sc[j] * q - dmin * m[j], q 4 bits, sc/m 6 bits packed in
 * scales[12] (vkft_ggml_k4_scale_min). qs: 4 chunks of 32 bytes; chunk c holds sub-block 2c in
 * the low nibbles and sub-block 2c + 1 in the high nibbles. */
typedef struct vkft_block_q4_K {
  uint16_t d, dmin;
  uint8_t scales[VKFT_K_SCALE_SIZE];
  uint8_t qs[VKFT_QK_K / 2];
} vkft_block_q4_K;

/* as Q4_K with 5-bit q: bit 4 of element l of sub-block j is bit j of qh[l] */
typedef struct vkft_block_q5_K {
  uint16_t d, dmin;
  uint8_t scales[VKFT_K_SCALE_SIZE];
  uint8_t qh[VKFT_QK_K / 8];
  uint8_t qs[VKFT_QK_K / 2];
} vkft_block_q5_K;

/* 16 sub-blocks of 16: x = d * scales[j] * (q - 32), q 6 bits (low 4 in ql, high 2 in qh),
 * scales signed 8-bit; layout in two halves of 128 elements, see the dequantizer */
typedef struct vkft_block_q6_K {
  uint8_t ql[VKFT_QK_K / 2];
  uint8_t qh[VKFT_QK_K / 4];
  int8_t scales[VKFT_QK_K / 16];
  uint16_t d;
} vkft_block_q6_K;

/* ---- type traits (every type id GGUF files use, so any file's sizes can be checked) ---- */

/* 1 if t is a ggml type id this table knows (0..39 except the removed 4, 5, 31..33, 36..38). */
int vkft_ggml_type_known(uint32_t t);
const char *vkft_ggml_type_name(vkft_ggml_type t); /* "Q4_K", "F16" ...; "?" if unknown */
int64_t vkft_ggml_block_size(vkft_ggml_type t);    /* elements per block */
size_t vkft_ggml_type_size(vkft_ggml_type t);      /* bytes per block */
/* Bytes of n elements (n a multiple of the block size). */
uint64_t vkft_ggml_row_size(vkft_ggml_type t, int64_t n);
/* 1 if vkft can dequantize t, and quantize to it (F32/F16/BF16 included). */
int vkft_ggml_can_dequantize(vkft_ggml_type t);
int vkft_ggml_can_quantize(vkft_ggml_type t);

/* ---- rows: n elements (a multiple of the type's block size) ---- */

/* fp32 -> type t (dst holds vkft_ggml_row_size(t, n) bytes); VKFT_ERR for an unsupported type
 * or a bad n. */
int vkft_ggml_quantize_row(vkft_ggml_type t, const float *src, void *dst, int64_t n);
/* type t -> fp32 */
int vkft_ggml_dequantize_row(vkft_ggml_type t, const void *src, float *dst, int64_t n);
/* 1 if every value is finite */
int vkft_ggml_all_finite(const float *x, int64_t n);

/* The per-type reference functions behind the two above (n a multiple of the block size). */
void vkft_quantize_row_q8_0(const float *x, vkft_block_q8_0 *y, int64_t n);
void vkft_quantize_row_q4_0(const float *x, vkft_block_q4_0 *y, int64_t n);
void vkft_quantize_row_q5_0(const float *x, vkft_block_q5_0 *y, int64_t n);
void vkft_quantize_row_q4_K(const float *x, vkft_block_q4_K *y, int64_t n);
void vkft_quantize_row_q5_K(const float *x, vkft_block_q5_K *y, int64_t n);
void vkft_quantize_row_q6_K(const float *x, vkft_block_q6_K *y, int64_t n);
void vkft_dequantize_row_q8_0(const vkft_block_q8_0 *x, float *y, int64_t n);
void vkft_dequantize_row_q4_0(const vkft_block_q4_0 *x, float *y, int64_t n);
void vkft_dequantize_row_q5_0(const vkft_block_q5_0 *x, float *y, int64_t n);
void vkft_dequantize_row_q4_K(const vkft_block_q4_K *x, float *y, int64_t n);
void vkft_dequantize_row_q5_K(const vkft_block_q5_K *x, float *y, int64_t n);
void vkft_dequantize_row_q6_K(const vkft_block_q6_K *x, float *y, int64_t n);

/* ---- ggml block types as vkft tensor dtypes (VKFT_Q8_0 ... VKFT_Q6_K): a tensor holds the
 * blocks exactly as a GGUF file stores them (a weight's rows are whole blocks, so element i is
 * element i % block of block i / block), read by the fused dequantizing matmul
 * (shaders/ggml.glsl) and by the reference backend (vkft_ggml_dequantize_row). ---- */

/* The ggml type of a ggml-block dtype (F32/F16/BF16 map to theirs); -1 for the others. */
int vkft_ggml_type_of_dtype(vkft_dtype dtype);
/* The dtype holding ggml type t on a device: F32, F16, BF16 or a block dtype; -1 when vkft has
 * none for it (the types vkft cannot dequantize). */
int vkft_dtype_of_ggml_type(vkft_ggml_type t);

/* Scale and min (6 bits each) of sub-block j (0..7) of a Q4_K/Q5_K block: sub-blocks 0..3 keep
 * them in the low 6 bits of scales[j] / scales[j + 4]; 4..7 keep their low 4 bits in the
 * nibbles of scales[j + 4] and their top 2 bits in bits 6..7 of scales[j - 4] / scales[j]. */
void vkft_ggml_k4_scale_min(const uint8_t scales[VKFT_K_SCALE_SIZE], int j, uint8_t *scale,
                            uint8_t *min);

#ifdef __cplusplus
}
#endif
#endif
