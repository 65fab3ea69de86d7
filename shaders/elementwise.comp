// Memory-bound elementwise ops on flat tensors of n elements.
// fp32 (or 32-bit) destinations, four elements per invocation (64-bit vector loads/stores
// when every address is 16-byte aligned, else element by element):
//   EW_ADD      out = a + b           EW_SCALE    out = s * a (in place when out == a)
//   EW_COPY32   out = a (any 32-bit)  EW_FILL32   out = pattern
//   EW_WIDEN    out = f32(a) with a in f16 (W_F16) or bf16 (W_BF16), exact
// 16-bit destinations, one 32-bit word (two elements) per invocation:
//   EW_NARROW   out = f16/bf16(a) (OUT_F16 / OUT_BF16), round to nearest even, bit-identical
//               to src/ops/dtype.c
//   EW_COPY16   out = a (16-bit)      EW_FILL16   out = pattern (low 16 bits)
// A 16-bit tensor may start or end in the middle of a word; that word is shared with the
// memory next to the tensor, so only our half is changed, with integer atomics (and/or on
// disjoint bits commute with whatever the other half's owner does; no float atomics).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "dtype.glsl"
#include "grid.glsl"

layout(local_size_x = 64) in;

layout(push_constant) uniform Push {
  uint64_t a, b, out_;
  uint64_t n;
  float s;
  uint pattern;
  uint vec; // 1: all addresses 16-byte aligned (32-bit destinations)
} p;

#if defined(EW_NARROW) || defined(EW_COPY16) || defined(EW_FILL16)
uint element16(uint64_t e) {
#if defined(EW_NARROW) && defined(OUT_F16)
  return f32_bits_to_f16(U32(p.a + 4ul * e).v[0]);
#elif defined(EW_NARROW) && defined(OUT_BF16)
  return f32_bits_to_bf16(U32(p.a + 4ul * e).v[0]);
#elif defined(EW_COPY16)
  return load_u16(p.a, e);
#else
  return p.pattern & 0xffffu;
#endif
}

void main() {
  uint64_t w = uint64_t(group_linear()) * 64ul + gl_LocalInvocationID.x; // word index
  uint64_t first_word = p.out_ >> 2;
  uint64_t phase = (p.out_ >> 1) & 1ul; // 1: element 0 is the high half of its word
  uint64_t words = (phase + p.n + 1ul) >> 1;
  if (w >= words) return;
  // elements in the low and high halves of word w (phase shifts them by one)
  int64_t lo = int64_t(2ul * w) - int64_t(phase), hi = lo + 1;
  bool has_lo = lo >= 0, has_hi = uint64_t(hi) < p.n;
  U32 word = U32((first_word + w) << 2);
  if (has_lo && has_hi) {
    word.v[0] = element16(uint64_t(lo)) | (element16(uint64_t(hi)) << 16);
  } else if (has_lo) {
    atomicAnd(word.v[0], 0xffff0000u);
    atomicOr(word.v[0], element16(uint64_t(lo)));
  } else if (has_hi) {
    atomicAnd(word.v[0], 0x0000ffffu);
    atomicOr(word.v[0], element16(uint64_t(hi)) << 16);
  }
}

#else
float element(uint64_t i) {
#if defined(EW_ADD)
  return F32(p.a + 4ul * i).v[0] + F32(p.b + 4ul * i).v[0];
#elif defined(EW_SCALE)
  return p.s * F32(p.a + 4ul * i).v[0];
#elif defined(EW_COPY32)
  return F32(p.a + 4ul * i).v[0];
#elif defined(EW_FILL32)
  return uintBitsToFloat(p.pattern);
#elif defined(EW_WIDEN)
  return load_w(p.a, i);
#endif
}

vec4 element4(uint64_t i) {
#if defined(EW_ADD)
  return load_f32x4(p.a + 4ul * i) + load_f32x4(p.b + 4ul * i);
#elif defined(EW_SCALE)
  return p.s * load_f32x4(p.a + 4ul * i);
#elif defined(EW_COPY32)
  return load_f32x4(p.a + 4ul * i);
#elif defined(EW_FILL32)
  return vec4(uintBitsToFloat(p.pattern));
#elif defined(EW_WIDEN)
  return load_w4(p.a, i);
#endif
}

void main() {
  uint64_t i = (uint64_t(group_linear()) * 64ul + gl_LocalInvocationID.x) * 4ul;
  if (i >= p.n) return;
  if (p.vec != 0u && i + 4ul <= p.n) {
    store_f32x4(p.out_ + 4ul * i, element4(i));
  } else {
    for (uint64_t k = i; k < min(i + 4ul, p.n); k++) F32(p.out_ + 4ul * k).v[0] = element(k);
  }
}
#endif
