// Helpers shared by the memory-bound op families (rmsnorm, rope, swiglu, embedding,
// elementwise, adamw, grad_norm): a linear workgroup index over a 2D grid, 64-bit vector
// stores, exact bit-level fp16/bf16 conversions, and weight loads in a storage dtype chosen by
// W_F32 / W_F16 / W_BF16. Include after common.glsl.

// Large 1D problems are dispatched as a 2D grid (maxComputeWorkGroupCount is 65535 per
// dimension on many devices); this is the workgroup's index in row-major order.
uint group_linear() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }

// Four fp32 stored as two 64-bit words (per-lane stores cost per component on CPU drivers).
void store_f32x4(uint64_t addr, vec4 v) {
  U64x2(addr).v[0] = u64vec2(packUint2x32(floatBitsToUint(v.xy)),
                             packUint2x32(floatBitsToUint(v.zw)));
}

// count = 4: one aligned vector; count < 4: that many elements one by one (the rest 0).
vec4 load_f32_n(uint64_t base, uint64_t i, uint count) {
  if (count == 4u) return load_f32x4(base + 4ul * i);
  vec4 v = vec4(0.0);
  for (uint k = 0u; k < count; k++) v[k] = F32(base + 4ul * (i + k)).v[0];
  return v;
}

void store_f32_n(uint64_t base, uint64_t i, uint count, vec4 v) {
  if (count == 4u) {
    store_f32x4(base + 4ul * i, v);
    return;
  }
  for (uint k = 0u; k < count; k++) F32(base + 4ul * (i + k)).v[0] = v[k];
}

// fp16 bits -> fp32 done on integers, so subnormal halves are exact on every driver (a
// driver may flush them in unpackHalf2x16); matches vkft_f16_to_f32 in src/ops/dtype.c.
float f16_bits_to_f32(uint h) {
  uint sign = (h & 0x8000u) << 16;
  uint e = (h >> 10) & 0x1fu;
  uint m = h & 0x3ffu;
  if (e == 0x1fu) return uintBitsToFloat(sign | 0x7f800000u | (m << 13));
  if (e == 0u) return uintBitsToFloat(sign | floatBitsToUint(float(m) * (1.0 / 16777216.0)));
  return uintBitsToFloat(sign | ((e + 112u) << 23) | (m << 13));
}

// fp32 bits -> fp16 bits, round to nearest even: a port of vkft_f32_to_f16 (bit-identical;
// the driver's own conversion may round toward zero).
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

// The 16-bit element at element index i of a tensor starting at byte address base (any
// 2-byte alignment): read through the 32-bit word that holds it (allocations are rounded to
// 256 bytes, so the word never leaves the allocation).
uint load_u16(uint64_t base, uint64_t i) {
  uint64_t addr = base + 2ul * i;
  uint w = U32(addr & ~uint64_t(3)).v[0];
  return (addr & 2ul) != 0ul ? w >> 16 : w & 0xffffu;
}

#if defined(W_F32)
float load_w(uint64_t base, uint64_t i) { return F32(base + 4ul * i).v[0]; }
vec4 load_w4(uint64_t base, uint64_t i) { return load_f32x4(base + 4ul * i); } // 16-byte aligned
#elif defined(W_F16)
float load_w(uint64_t base, uint64_t i) { return f16_bits_to_f32(load_u16(base, i)); }
vec4 load_w4(uint64_t base, uint64_t i) { // 8-byte aligned
  uvec2 w = load_u16x4(base + 2ul * i);
  return vec4(f16_bits_to_f32(w.x & 0xffffu), f16_bits_to_f32(w.x >> 16),
              f16_bits_to_f32(w.y & 0xffffu), f16_bits_to_f32(w.y >> 16));
}
#elif defined(W_BF16)
float load_w(uint64_t base, uint64_t i) { return uintBitsToFloat(load_u16(base, i) << 16); }
vec4 load_w4(uint64_t base, uint64_t i) { // 8-byte aligned
  uvec2 w = load_u16x4(base + 2ul * i);
  return vec4(bf16_lo(w.x), bf16_hi(w.x), bf16_lo(w.y), bf16_hi(w.y));
}
#endif
