// Quantized weights read by the fused dequantizing matmul, with the same bits as the C
// reference (src/quant/device.c): bitsandbytes 4-bit NF4 / FP4 (W_NF4, W_FP4) in vkft's device
// layout (include/vkft/quant.h): packed nibbles (value 2i in the high nibble of byte i), then
// the block scales, fp32, or double-quantized: an 8-bit code per block, decoded as
// code8[q] * nested_absmax[block / 256] + offset (two roundings, as bitsandbytes). A value is
// code4[nibble] * scale, flushed to zero when subnormal (bitsandbytes' kernels run with
// --use_fast_math). `precise` keeps the compiler from fusing what the reference rounds twice.
#ifndef QUANT_GLSL
#define QUANT_GLSL
#include "buffers.glsl"

struct Bnb4 {
  uint64_t packed, scales, nested_absmax, nested_code;
  uint block_shift; // log2 of the block size
  bool nested;
  float offset;
};

#if defined(W_NF4)
const uint BNB4_CODE[16] = uint[](
    0xbf800000u, 0xbf3239b1u, 0xbf066b30u, 0xbeca32a0u, 0xbe91a24du, 0xbe3d353fu, 0xbdba7871u,
    0x00000000u, 0x3da2faffu, 0x3e24cae3u, 0x3e7c04ddu, 0x3ead033au, 0x3ee1a4b8u, 0x3f1007abu,
    0x3f3913b3u, 0x3f800000u);
#else
const uint BNB4_CODE[16] = uint[](
    0x00000000u, 0x3baaaaabu, 0x3f2aaaabu, 0x3f800000u, 0x3eaaaaabu, 0x3f000000u, 0x3e2aaaabu,
    0x3e800000u, 0x80000000u, 0xbbaaaaabu, 0xbf2aaaabu, 0xbf800000u, 0xbeaaaaabu, 0xbf000000u,
    0xbe2aaaabu, 0xbe800000u);
#endif

// A subnormal becomes a zero of the same sign.
float bnb_ftz(float x) {
  return abs(x) < 1.17549435e-38 ? uintBitsToFloat(floatBitsToUint(x) & 0x80000000u) : x;
}

float bnb4_scale(Bnb4 q, uint64_t block) {
  if (!q.nested) return F32(q.scales + 4ul * block).v[0];
  uint code = load_u8(q.scales + block);
  precise float scaled =
      F32(q.nested_code + 4ul * code).v[0] * F32(q.nested_absmax + 4ul * (block >> 8)).v[0];
  precise float absmax = bnb_ftz(scaled) + q.offset;
  return absmax;
}

float bnb4_value(uint nibble, float scale) {
  precise float v = uintBitsToFloat(BNB4_CODE[nibble]) * scale;
  return bnb_ftz(v);
}

// Element i of the weight.
float bnb4_load(Bnb4 q, uint64_t i) {
  uint byte = load_u8(q.packed + (i >> 1));
  uint nibble = (i & 1ul) != 0ul ? byte & 15u : byte >> 4;
  return bnb4_value(nibble, bnb4_scale(q, i >> q.block_shift));
}

// A block's scale, kept while the reads stay in the block (the matmul reads a row in order):
// the decode of a double-quantized scale costs more than the 4 values it serves.
struct Bnb4Cache {
  uint64_t block;
  float scale;
  bool ftz; // values of this block can be subnormal: flush them (rare: tiny scales only)
};

Bnb4Cache bnb4_cache_none() { return Bnb4Cache(~0ul, 0.0, false); }

// Elements i .. i+3 (i a multiple of 4: one 16-bit load, one block, as blocks hold >= 32).
vec4 bnb4_load4(Bnb4 q, uint64_t i, inout Bnb4Cache c) {
  uint64_t block = i >> q.block_shift;
  if (block != c.block) {
    c.block = block;
    c.scale = bnb4_scale(q, block);
    // the smallest non-zero code magnitude is 2^-7.6 (FP4): code * scale is normal when
    // |scale| >= 2^-118, or zero when scale is
    c.ftz = c.scale != 0.0 && abs(c.scale) < 3.0e-36;
  }
  uint w = load_u16(q.packed, i >> 2);
  vec4 code = vec4(uintBitsToFloat(BNB4_CODE[(w >> 4) & 15u]), uintBitsToFloat(BNB4_CODE[w & 15u]),
                   uintBitsToFloat(BNB4_CODE[(w >> 12) & 15u]),
                   uintBitsToFloat(BNB4_CODE[(w >> 8) & 15u]));
  precise vec4 v = code * c.scale;
  if (c.ftz) v = vec4(bnb_ftz(v.x), bnb_ftz(v.y), bnb_ftz(v.z), bnb_ftz(v.w));
  return v;
}
#endif
