/* fp32 <-> fp16 / bf16 conversions done bit by bit, so they are exact and identical on every
 * compiler and C library (no reliance on _Float16). */
#include "vkft/dtype.h"

#include "vkft/error.h"

#include <string.h>

size_t vkft_dtype_size(vkft_dtype t) {
  switch (t) {
  case VKFT_F16:
  case VKFT_BF16:
    return 2;
  case VKFT_F32:
  case VKFT_I32:
    return 4;
  default:
    return 0;
  }
}

int vkft_dtype_is_quantized(vkft_dtype t) {
  return t >= VKFT_NF4 && t < VKFT_DTYPE_COUNT;
}

const char *vkft_dtype_name(vkft_dtype t) {
  switch (t) {
  case VKFT_F32:
    return "f32";
  case VKFT_F16:
    return "f16";
  case VKFT_BF16:
    return "bf16";
  case VKFT_I32:
    return "i32";
  case VKFT_NF4:
    return "nf4";
  case VKFT_FP4:
    return "fp4";
  case VKFT_Q8_0:
    return "q8_0";
  case VKFT_Q4_0:
    return "q4_0";
  case VKFT_Q5_0:
    return "q5_0";
  case VKFT_Q4_K:
    return "q4_k";
  case VKFT_Q5_K:
    return "q5_k";
  case VKFT_Q6_K:
    return "q6_k";
  case VKFT_DTYPE_COUNT:
    break;
  }
  return "?";
}

int vkft_dtype_parse(const char *name, vkft_dtype *out) {
  for (int t = 0; t < VKFT_DTYPE_COUNT; t++)
    if (!strcmp(name, vkft_dtype_name((vkft_dtype)t))) return *out = (vkft_dtype)t, 0;
  return -1;
}

int vkft_dtype_parse_torch(const char *name, vkft_dtype *out) {
  static const struct {
    const char *name;
    vkft_dtype dtype;
  } names[] = {{"float32", VKFT_F32},
               {"float", VKFT_F32},
               {"float16", VKFT_F16},
               {"half", VKFT_F16},
               {"bfloat16", VKFT_BF16}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(name, names[i].name)) return *out = names[i].dtype, VKFT_OK;
  return vkft_error("torch_dtype \"%s\" is not float32, float16 or bfloat16", name);
}

static uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float float_of(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

uint16_t vkft_f32_to_f16(float f) {
  uint32_t x = bits_of(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp = (x >> 23) & 0xffu;
  uint32_t man = x & 0x7fffffu;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
  int e = (int)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00u); /* overflow -> inf */
  if (e <= 0) {                                   /* subnormal half or zero */
    if (e < -10) return (uint16_t)sign;
    man |= 0x800000u;
    int shift = 14 - e;
    uint32_t half = man >> shift;
    uint32_t rest = man & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t half = ((uint32_t)e << 10) | (man >> 13);
  uint32_t rest = man & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1))) half++; /* may carry into inf: right */
  return (uint16_t)(sign | half);
}

float vkft_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return float_of(sign | 0x7f800000u | (man << 13));
  if (exp == 0) {
    if (man == 0) return float_of(sign);
    int e = -1;
    do {
      man <<= 1;
      e++;
    } while (!(man & 0x400u));
    return float_of(sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13));
  }
  return float_of(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

uint16_t vkft_f32_to_bf16(float f) {
  uint32_t x = bits_of(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet nan */
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

float vkft_bf16_to_f32(uint16_t h) {
  return float_of((uint32_t)h << 16);
}

void vkft_convert_from_f32(vkft_dtype t, const float *src, void *dst, size_t n) {
  uint16_t *d16 = dst;
  switch (t) {
  case VKFT_F32:
  case VKFT_I32:
    memcpy(dst, src, n * 4);
    break;
  case VKFT_F16:
    for (size_t i = 0; i < n; i++) d16[i] = vkft_f32_to_f16(src[i]);
    break;
  case VKFT_BF16:
    for (size_t i = 0; i < n; i++) d16[i] = vkft_f32_to_bf16(src[i]);
    break;
  default: /* quantized types are made by their quantizers (src/quant) */
    break;
  }
}

void vkft_convert_to_f32(vkft_dtype t, const void *src, float *dst, size_t n) {
  const uint16_t *s16 = src;
  switch (t) {
  case VKFT_F32:
  case VKFT_I32:
    memcpy(dst, src, n * 4);
    break;
  case VKFT_F16:
    for (size_t i = 0; i < n; i++) dst[i] = vkft_f16_to_f32(s16[i]);
    break;
  case VKFT_BF16:
    for (size_t i = 0; i < n; i++) dst[i] = vkft_bf16_to_f32(s16[i]);
    break;
  default: /* quantized types are read by their dequantizers (src/quant) */
    break;
  }
}
