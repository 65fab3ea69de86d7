/* Storage types of tensors and exact conversions between them (host side). */
#ifndef VKFT_DTYPE_H
#define VKFT_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum vkft_dtype {
  VKFT_F32,
  VKFT_F16,
  VKFT_BF16,
  VKFT_I32,
  /* Quantized weights (frozen bases), read by the matmul that dequantizes them: stored in
   * blocks, so a tensor's bytes are not n times an element size (vkft_tensor_bytes). */
  VKFT_NF4, /* bitsandbytes 4-bit NormalFloat (include/vkft/quant.h: the device layout) */
  VKFT_FP4, /* bitsandbytes 4-bit float */
  /* ggml block types of GGUF files, stored as the file's blocks (include/vkft/ggml_quants.h) */
  VKFT_Q8_0,
  VKFT_Q4_0,
  VKFT_Q5_0,
  VKFT_Q4_K,
  VKFT_Q5_K,
  VKFT_Q6_K,
  VKFT_DTYPE_COUNT
} vkft_dtype;

/* Bytes of one element; 0 for the quantized types (their storage is in blocks). */
size_t vkft_dtype_size(vkft_dtype t);
int vkft_dtype_is_quantized(vkft_dtype t);
const char *vkft_dtype_name(vkft_dtype t);
/* "f32", "f16", "bf16", "i32", "nf4", "fp4", "q8_0", "q4_0", "q5_0", "q4_k", "q5_k", "q6_k";
 * -1 for anything else. */
int vkft_dtype_parse(const char *name, vkft_dtype *out);
/* config.json's torch_dtype: "float32", "float16", "bfloat16" (and "float", "half"). */
int vkft_dtype_parse_torch(const char *name, vkft_dtype *out);

uint16_t vkft_f32_to_f16(float f); /* round to nearest even, with subnormals and inf/nan */
float vkft_f16_to_f32(uint16_t h);
uint16_t vkft_f32_to_bf16(float f); /* round to nearest even; nan stays nan */
float vkft_bf16_to_f32(uint16_t h);

/* Converts n fp32 values into storage type t (dst holds n * vkft_dtype_size(t) bytes), and back. */
void vkft_convert_from_f32(vkft_dtype t, const float *src, void *dst, size_t n);
void vkft_convert_to_f32(vkft_dtype t, const void *src, float *dst, size_t n);

#endif
