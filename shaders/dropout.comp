// Dropout (reference: src/ref/dropout.c): out = x * scale where the counter-based mask keeps
// the element, else 0; four elements per invocation; out may be x.
// With NOISE (uniform_noise, NEFTune): out = x + scale * (2u - 1), u = (hash >> 8) / 2^24 from
// the same hash, so the noise lies in [-scale, scale); `precise` keeps the multiply and the add
// two roundings, as in C (no fused multiply-add).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "buffers.glsl"
#include "grid.glsl"

layout(local_size_x = 64) in;

layout(push_constant) uniform Push {
  uint64_t x, out_;
  uint64_t n;
  uint threshold, seed, stream, vec;
  float scale;
} p;

// the same integer hash as vkft_dropout_hash in include/vkft/ref.h
uint dropout_hash(uint64_t i) {
  uint x = p.seed ^ (p.stream * 0x9e3779b9u) ^ (uint(i) * 0x85ebca6bu) ^ (uint(i >> 32) * 0xc2b2ae35u);
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

void process(uint64_t i, uint count) {
  vec4 v = load_f32_n(p.x, i, count);
  for (uint k = 0; k < count; k++) {
#ifdef NOISE
    precise float unit = float(dropout_hash(i + k) >> 8) * (1.0 / 16777216.0) * 2.0 - 1.0;
    precise float noise = p.scale * unit;
    precise float sum = v[k] + noise;
    v[k] = sum;
#else
    v[k] = (dropout_hash(i + k) >> 8) >= p.threshold ? v[k] * p.scale : 0.0;
#endif
  }
  store_f32_n(p.out_, i, count, v);
}

void main() {
  uint64_t i = (uint64_t(group_linear()) * 64ul + gl_LocalInvocationID.x) * 4ul;
  if (i >= p.n) return;
  if (p.vec != 0u && i + 4ul <= p.n) {
    process(i, 4u);
  } else {
    for (uint64_t k = i; k < min(i + 4ul, p.n); k++) process(k, 1u);
  }
}
