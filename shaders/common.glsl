// Shared declarations: tensors are reached through buffer device addresses passed in push
// constants (see include/vkft/vk.h), viewed through one-element references at byte addresses (64-bit, so a tensor may exceed
// 4 G elements and maxStorageBufferRange alike).
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require

layout(buffer_reference, std430, buffer_reference_align = 4) buffer F32 { float v[]; };
layout(buffer_reference, std430, buffer_reference_align = 16) buffer F32x4 { vec4 v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer U32 { uint v[]; };
layout(buffer_reference, std430, buffer_reference_align = 8) buffer U32x2 { uvec2 v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer I32 { int v[]; };

// bf16 is the high half of an fp32: widening is a shift (no GL_EXT_bfloat16 needed).
float bf16_lo(uint w) { return uintBitsToFloat(w << 16); }
float bf16_hi(uint w) { return uintBitsToFloat(w & 0xffff0000u); }

// CPU drivers (lavapipe) load each component of each lane separately, so fewer, wider
// components are faster: four fp32 (or bf16/f16) values travel as 64-bit words.
layout(buffer_reference, std430, buffer_reference_align = 16) buffer U64x2 { u64vec2 v[]; };
layout(buffer_reference, std430, buffer_reference_align = 8) buffer U64 { uint64_t v[]; };
vec4 load_f32x4(uint64_t addr) {
  u64vec2 w = U64x2(addr).v[0];
  return vec4(uintBitsToFloat(unpackUint2x32(w.x)), uintBitsToFloat(unpackUint2x32(w.y)));
}
uvec2 load_u16x4(uint64_t addr) { return unpackUint2x32(U64(addr).v[0]); }
