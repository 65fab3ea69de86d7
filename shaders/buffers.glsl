// Tensors in shaders: they are reached through buffer device addresses passed in push
// constants (see include/vkft/vk.h), viewed through one-element references at byte addresses
// (64-bit, so a tensor may exceed 4 G elements and maxStorageBufferRange alike), with the
// vector loads and stores the fast paths use.
#ifndef BUFFERS_GLSL
#define BUFFERS_GLSL
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require

layout(buffer_reference, std430, buffer_reference_align = 4) buffer F32 { float v[]; };
layout(buffer_reference, std430, buffer_reference_align = 16) buffer F32x4 { vec4 v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer U32 { uint v[]; };
layout(buffer_reference, std430, buffer_reference_align = 8) buffer U32x2 { uvec2 v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer I32 { int v[]; };

// CPU drivers (lavapipe) load each component of each lane separately, so fewer, wider
// components are faster: four fp32 (or f16/bf16) values travel as 64-bit words. The address
// must be 16-byte (fp32) or 8-byte (16-bit) aligned: the host checks views before choosing a
// vector path.
layout(buffer_reference, std430, buffer_reference_align = 16) buffer U64x2 { u64vec2 v[]; };
layout(buffer_reference, std430, buffer_reference_align = 8) buffer U64 { uint64_t v[]; };
vec4 load_f32x4(uint64_t addr) {
  u64vec2 w = U64x2(addr).v[0];
  return vec4(uintBitsToFloat(unpackUint2x32(w.x)), uintBitsToFloat(unpackUint2x32(w.y)));
}
uvec2 load_u16x4(uint64_t addr) { return unpackUint2x32(U64(addr).v[0]); }

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

// The byte at byte address addr (through the 32-bit word that holds it).
uint load_u8(uint64_t addr) {
  uint w = U32(addr & ~uint64_t(3)).v[0];
  return (w >> (8u * uint(addr & 3ul))) & 0xffu;
}

// The 16-bit element at element index i of a tensor starting at byte address base (any
// 2-byte alignment): read through the 32-bit word that holds it (allocations are rounded to
// 256 bytes, so the word never leaves the allocation).
uint load_u16(uint64_t base, uint64_t i) {
  uint64_t addr = base + 2ul * i;
  uint w = U32(addr & ~uint64_t(3)).v[0];
  return (addr & 2ul) != 0ul ? w >> 16 : w & 0xffffu;
}
#endif
