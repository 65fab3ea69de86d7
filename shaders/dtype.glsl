// Storage dtypes in shaders: f16 and bf16 converted to and from fp32 on the bits, exactly as
// the host does (src/core/dtype.c), on every driver (a driver's unpackHalf2x16 may flush f16
// subnormals, its packHalf2x16 may round toward zero); and a weight loader whose storage type
// is chosen by W_F32, W_F16 or W_BF16: load_w (one element, any alignment) and load_w4 (four,
// 16-byte aligned for fp32, 8-byte for 16-bit types).
#ifndef DTYPE_GLSL
#define DTYPE_GLSL
#include "buffers.glsl"

// bf16 is the high half of an fp32: widening is a shift (no GL_EXT_bfloat16 needed).
float bf16_bits_to_f32(uint h) { return uintBitsToFloat(h << 16); }
float bf16_lo(uint w) { return uintBitsToFloat(w << 16); }
float bf16_hi(uint w) { return uintBitsToFloat(w & 0xffff0000u); }

// fp16 bits -> fp32, exactly (vkft_f16_to_f32) with no subnormal on the way, so drivers that
// flush subnormals cannot lose one: the exponent is rebased by adding 112 (normals), 224
// (inf, nan); a subnormal half m * 2^-24 is (2^-14 + m * 2^-24) - 2^-14, an exact difference of
// normal numbers.
float f16_bits_to_f32(uint h) {
  uint bits = (h & 0x7fffu) << 13;
  float f = uintBitsToFloat(bits + 0x38000000u);
  if (bits < 0x00800000u) f = uintBitsToFloat(bits + 0x38800000u) - 6.103515625e-05;
  if (bits >= 0x0f800000u) f = uintBitsToFloat(bits + 0x70000000u);
  return uintBitsToFloat(floatBitsToUint(f) | ((h & 0x8000u) << 16));
}

// Four 16-bit values packed in two 32-bit words (a load_u16x4), low half first.
vec4 f16x4_to_f32(uvec2 w) {
  return vec4(f16_bits_to_f32(w.x & 0xffffu), f16_bits_to_f32(w.x >> 16),
              f16_bits_to_f32(w.y & 0xffffu), f16_bits_to_f32(w.y >> 16));
}
vec4 bf16x4_to_f32(uvec2 w) { return vec4(bf16_lo(w.x), bf16_hi(w.x), bf16_lo(w.y), bf16_hi(w.y)); }

// fp32 bits -> fp16 bits, round to nearest even: a port of vkft_f32_to_f16 (bit-identical).
uint f32_bits_to_f16(uint x) {
  uint sign = (x >> 16) & 0x8000u;
  uint exp = (x >> 23) & 0xffu;
  uint man = x & 0x7fffffu;
  if (exp == 0xffu) return sign | 0x7c00u | (man != 0u ? 0x200u | (man >> 13) : 0u);
  int e = int(exp) - 127 + 15;
  if (e >= 31) return sign | 0x7c00u;
  if (e <= 0) {
    if (e < -10) return sign;
    man |= 0x800000u;
    uint shift = uint(14 - e);
    uint half_ = man >> shift;
    uint rest = man & ((1u << shift) - 1u);
    uint halfway = 1u << (shift - 1u);
    if (rest > halfway || (rest == halfway && (half_ & 1u) != 0u)) half_++;
    return sign | half_;
  }
  uint half_ = (uint(e) << 10) | (man >> 13);
  uint rest = man & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half_ & 1u) != 0u)) half_++;
  return sign | half_;
}

// fp32 bits -> bf16 bits, round to nearest even, nan stays a quiet nan (vkft_f32_to_bf16).
uint f32_bits_to_bf16(uint x) {
  if ((x & 0x7fffffffu) > 0x7f800000u) return ((x >> 16) | 0x40u) & 0xffffu;
  x += 0x7fffu + ((x >> 16) & 1u);
  return x >> 16;
}

#if defined(W_F32)
float load_w(uint64_t base, uint64_t i) { return F32(base + 4ul * i).v[0]; }
vec4 load_w4(uint64_t base, uint64_t i) { return load_f32x4(base + 4ul * i); }
#elif defined(W_F16)
float load_w(uint64_t base, uint64_t i) { return f16_bits_to_f32(load_u16(base, i)); }
vec4 load_w4(uint64_t base, uint64_t i) { return f16x4_to_f32(load_u16x4(base + 2ul * i)); }
#elif defined(W_BF16)
float load_w(uint64_t base, uint64_t i) { return bf16_bits_to_f32(load_u16(base, i)); }
vec4 load_w4(uint64_t base, uint64_t i) { return bf16x4_to_f32(load_u16x4(base + 2ul * i)); }
#endif
#endif
