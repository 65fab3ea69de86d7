// ggml block types of GGUF files read by the fused dequantizing matmul, with the same bits as
// the C reference (vkft_dequantize_row_* in src/quant/ggml_quants.c). One of W_Q8_0, W_Q4_0,
// W_Q5_0, W_Q4_K, W_Q5_K, W_Q6_K selects the type (and defines GGML_W); the tensor holds the
// file's blocks as they are (include/vkft/ggml_quants.h lays each one out), rows of whole
// blocks, so element i is element i % GG_BLOCK of block i / GG_BLOCK.
//
// Every value is d * q - m for a sub-block's scale d and min m (m = 0 but for Q4_K / Q5_K) and an
// integer code q, in the reference's order: d is the fp16 block scale, or for the k-quants its
// product with the sub-block's integer scale (exact in fp32: 11 + 8 bits), m likewise; d * q is
// exact but for Q6_K (a 6-bit code times an 18-bit d may need 25 bits: one rounding, then
// m = 0), so where m is subtracted a fused multiply-add would give the same bits anyway;
// `precise` makes the order hold by construction rather than by that argument.
//
// Blocks of 34, 18, 22 and 210 bytes put fields at any even address, so multi-byte fields are
// read through the aligned 32-bit words that hold them (allocations are rounded to 256 bytes:
// the word never leaves the allocation).
#ifndef GGML_GLSL
#define GGML_GLSL
#include "dtype.glsl"

#if defined(W_Q8_0) || defined(W_Q4_0) || defined(W_Q5_0) || defined(W_Q4_K) ||                 \
    defined(W_Q5_K) || defined(W_Q6_K)
#define GGML_W

// values per block, bytes per block, log2 of the values sharing one scale (the cache's unit)
#if defined(W_Q8_0)
const uint GG_BLOCK = 32u, GG_BYTES = 34u, GG_SUB_SHIFT = 5u;
#elif defined(W_Q4_0)
const uint GG_BLOCK = 32u, GG_BYTES = 18u, GG_SUB_SHIFT = 5u;
#elif defined(W_Q5_0)
const uint GG_BLOCK = 32u, GG_BYTES = 22u, GG_SUB_SHIFT = 5u;
#elif defined(W_Q4_K)
const uint GG_BLOCK = 256u, GG_BYTES = 144u, GG_SUB_SHIFT = 5u;
#elif defined(W_Q5_K)
const uint GG_BLOCK = 256u, GG_BYTES = 176u, GG_SUB_SHIFT = 5u;
#else // W_Q6_K
const uint GG_BLOCK = 256u, GG_BYTES = 210u, GG_SUB_SHIFT = 4u;
#endif

// Four bytes at an even address, little-endian (one or two aligned words).
uint gg_u32(uint64_t addr) {
  if ((addr & 2ul) == 0ul) return U32(addr).v[0];
  return (U32(addr - 2ul).v[0] >> 16) | (U32(addr + 2ul).v[0] << 16);
}
float gg_f16(uint64_t addr) { return f16_bits_to_f32(load_u16(addr, 0ul)); }

// The block holding element i, and i's place in it.
uint64_t gg_block(uint64_t base, uint64_t i) { return base + uint64_t(GG_BYTES) * (i / GG_BLOCK); }

#if defined(W_Q4_K) || defined(W_Q5_K)
// 6-bit scale (x) and min (y) of sub-block j of 32 (vkft_ggml_k4_scale_min): 0..3 in the low
// six bits of scales[j] / scales[j + 4]; 4..7 from the nibbles of scales[j + 4] and the top two
// bits of scales[j - 4] / scales[j].
uvec2 gg_k4_scale_min(uint64_t scales, uint j) {
  if (j < 4u) return uvec2(load_u8(scales + j) & 63u, load_u8(scales + j + 4u) & 63u);
  uint packed = load_u8(scales + j + 4u);
  return uvec2((packed & 15u) | ((load_u8(scales + j - 4u) >> 6) << 4),
               (packed >> 4) | ((load_u8(scales + j) >> 6) << 4));
}
#endif

// d (x) and m (y) of the sub-block holding element i.
vec2 gg_scale(uint64_t base, uint64_t i) {
  uint64_t b = gg_block(base, i);
#if defined(W_Q4_K) || defined(W_Q5_K)
  uvec2 sm = gg_k4_scale_min(b + 4ul, uint(i % GG_BLOCK) >> 5);
  precise float d = gg_f16(b) * float(sm.x);
  precise float m = gg_f16(b + 2ul) * float(sm.y);
  return vec2(d, m);
#elif defined(W_Q6_K)
  int sc = bitfieldExtract(int(load_u8(b + 192ul + ((i % GG_BLOCK) >> 4))), 0, 8);
  precise float d = gg_f16(b + 208ul) * float(sc);
  return vec2(d, 0.0);
#else
  return vec2(gg_f16(b), 0.0);
#endif
}

// The integer codes of elements i .. i+3 (i a multiple of 4: one sub-block, and the bytes of
// the four lie side by side), offset to be signed where the format is.
ivec4 gg_codes4(uint64_t base, uint64_t i) {
  uint64_t b = gg_block(base, i);
  uint j = uint(i % GG_BLOCK);
#if defined(W_Q8_0)
  uint w = gg_u32(b + 2ul + j);
  return ivec4(bitfieldExtract(int(w), 0, 8), bitfieldExtract(int(w), 8, 8),
               bitfieldExtract(int(w), 16, 8), bitfieldExtract(int(w), 24, 8));
#elif defined(W_Q4_0) || defined(W_Q5_0)
  // element j (< 16) in the low nibble of qs[j], element j + 16 in its high nibble
#if defined(W_Q4_0)
  uint w = gg_u32(b + 2ul + (j & 15u));
  const int zero = 8;
#else
  uint w = gg_u32(b + 6ul + (j & 15u));
  const int zero = 16;
#endif
  uvec4 q = (uvec4(w, w >> 8, w >> 16, w >> 24) >> (j < 16u ? 0u : 4u)) & 15u;
#if defined(W_Q5_0)
  q |= ((uvec4(gg_u32(b + 2ul)) >> (uvec4(0u, 1u, 2u, 3u) + j)) & 1u) << 4; // bit 4: qh, bit j
#endif
  return ivec4(q) - zero;
#elif defined(W_Q4_K) || defined(W_Q5_K)
  // sub-block s = j / 32: chunk s / 2 of 32 bytes, low nibbles for even s, high for odd
  uint s = j >> 5, l = j & 31u;
#if defined(W_Q4_K)
  uint w = gg_u32(b + 16ul + 32u * (s >> 1) + l);
#else
  uint w = gg_u32(b + 48ul + 32u * (s >> 1) + l);
#endif
  uvec4 q = (uvec4(w, w >> 8, w >> 16, w >> 24) >> (4u * (s & 1u))) & 15u;
#if defined(W_Q5_K)
  uint h = gg_u32(b + 16ul + l); // bit s of qh[l]
  q |= ((uvec4(h, h >> 8, h >> 16, h >> 24) >> s) & 1u) << 4;
#endif
  return ivec4(q);
#else // W_Q6_K: half j / 128, quarter k; low nibble in ql, two high bits in qh
  uint hf = j >> 7, k = (j >> 5) & 3u, l = j & 31u;
  uint lo = gg_u32(b + 64u * hf + 32u * (k & 1u) + l);
  uint hi = gg_u32(b + 128ul + 32u * hf + l);
  uvec4 q = ((uvec4(lo, lo >> 8, lo >> 16, lo >> 24) >> (4u * (k >> 1))) & 15u) |
            (((uvec4(hi, hi >> 8, hi >> 16, hi >> 24) >> (2u * k)) & 3u) << 4);
  return ivec4(q) - 32;
#endif
}

vec4 gg_values(vec2 dm, ivec4 q) {
  precise vec4 scaled = dm.x * vec4(q);
  precise vec4 v = scaled - dm.y;
  return v;
}

// Element i of the weight (the matmul's edges).
float ggml_load(uint64_t base, uint64_t i) {
  uint64_t first = i & ~3ul;
  return gg_values(gg_scale(base, i), gg_codes4(base, first))[uint(i - first)];
}

// A sub-block's scale, kept while the reads stay in it (the matmul reads a row in order).
struct GgmlCache {
  uint64_t sub;
  vec2 dm;
};

GgmlCache ggml_cache_none() { return GgmlCache(~0ul, vec2(0.0)); }

// Elements i .. i+3 (i a multiple of 4).
vec4 ggml_load4(uint64_t base, uint64_t i, inout GgmlCache c) {
  uint64_t sub = i >> GG_SUB_SHIFT;
  if (sub != c.sub) {
    c.sub = sub;
    c.dm = gg_scale(base, i);
  }
  return gg_values(c.dm, gg_codes4(base, i));
}
#endif
#endif
