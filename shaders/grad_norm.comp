// Global gradient L2 norm and clip coefficient in two deterministic stages (reference:
// src/ref/grad_norm.c):
//   GN_PARTIAL  one dispatch per gradient tensor: workgroup w sums the squares of elements
//               [w * CHUNK, (w + 1) * CHUNK) into slots[w] (each thread a strided slice in
//               order, then a fixed shared-memory tree)
//   GN_FINAL    one workgroup sums all slots in a fixed order, then writes
//               out = {norm, clip coefficient} as torch's clip_grad_norm_:
//               coef = max_norm / (norm + 1e-6), clamped to at most 1 (NaN stays NaN);
//               max_norm <= 0: coefficient 1
// Same slots, same order, every run: the same bits, without float atomics.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "buffers.glsl"
#include "grid.glsl"
#include "reduce.glsl"

layout(local_size_x = 64) in;

const uint CHUNK = 16384u; // elements per slot: 64 threads x 64 quads

layout(push_constant) uniform Push {
  uint64_t src, dst; // partial: gradient, its first slot; final: slots, out
  uint64_t n;        // partial: elements; final: slots
  float max_norm;
  uint vec; // partial: 1 if the gradient is 16-byte aligned
} p;

void main() {
  uint l = gl_LocalInvocationID.x;
#if defined(GN_PARTIAL)
  uint w = group_linear();
  uint64_t first = uint64_t(w) * CHUNK;
  if (first >= p.n) return; // whole workgroup: uniform
  uint64_t end = min(first + CHUNK, p.n);
  vec4 acc = vec4(0.0);
  for (uint64_t i = first + 4ul * l; i < end; i += 256ul) {
    vec4 x = vec4(0.0);
    if (p.vec != 0u && i + 4ul <= end)
      x = load_f32x4(p.src + 4ul * i);
    else
      for (uint k = 0u; k < 4u && i + k < end; k++) x[k] = F32(p.src + 4ul * (i + k)).v[0];
    acc = fma(x, x, acc);
  }
  float total = reduce_sum((acc.x + acc.y) + (acc.z + acc.w));
  if (l == 0u) F32(p.dst + 4ul * w).v[0] = total;
#else
  float acc = 0.0;
  for (uint64_t i = l; i < p.n; i += 64ul) acc += F32(p.src + 4ul * i).v[0];
  float total = reduce_sum(acc);
  if (l == 0u) {
    float norm = sqrt(total);
    float coef = 1.0;
    if (p.max_norm > 0.0) {
      coef = p.max_norm / (norm + 1e-6);
      coef = coef > 1.0 ? 1.0 : coef; // a NaN norm gives a NaN coefficient, as in torch
    }
    F32(p.dst).v[0] = norm;
    F32(p.dst + 4ul).v[0] = coef;
  }
#endif
}
