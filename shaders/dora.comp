// DoRA's pieces (reference: src/ref/dora.c; how they compose: src/model/forward.c).
//   DORA_NORM      norm[o] = ||W[o, :] + s B[o, :] A||, scale[o] = m[o] / norm[o] (has_m), one
//                  workgroup per output row; W is W_F32, W_F16 or W_BF16 (shaders/dtype.glsl)
//   DORA_SCALE     y = beta y + (scale[o] - shift) x over (T, out), one element per invocation;
//                  y may be x (each invocation reads its element before writing it)
//   DORA_MAG_GRAD  dm[o] += sum_t dy[t, o] yd[t, o] / norm[o], one invocation per column
// The norm's row is summed by a strided slice per invocation and a fixed tree (reduce.glsl); the
// magnitude's gradient walks t in order: the bits depend only on the shapes (no atomics).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "dtype.glsl"
#include "grid.glsl"

layout(local_size_x = 64) in;

layout(push_constant) uniform Push {
  uint64_t w, a, b, m, norm, scale; // DORA_NORM
  uint64_t x, y, dy, yd, dm;        // DORA_SCALE (x, y), DORA_MAG_GRAD (dy, yd, dm; norm)
  uint T, out_, in_, r;
  float s, shift, beta;
  uint has_m;
} p;

#if defined(DORA_NORM)
#include "reduce.glsl"

void main() {
  uint o = group_linear();
  bool live = o < p.out_; // no early return: every invocation reaches the barriers
  float acc = 0.0;
  if (live) {
    uint64_t w_row = uint64_t(o) * p.in_, b_row = uint64_t(o) * p.r;
    for (uint i = gl_LocalInvocationID.x; i < p.in_; i += 64u) {
      float delta = 0.0;
      for (uint k = 0u; k < p.r; k++)
        delta = fma(F32(p.b + 4ul * (b_row + k)).v[0],
                    F32(p.a + 4ul * (uint64_t(k) * p.in_ + i)).v[0], delta);
      float v = fma(p.s, delta, load_w(p.w, w_row + i));
      acc = fma(v, v, acc);
    }
  }
  float sum = reduce_sum(acc);
  if (!live || gl_LocalInvocationID.x != 0u) return;
  float n = sqrt(sum), m = p.has_m != 0u ? F32(p.m + 4ul * o).v[0] : 0.0;
  F32(p.norm + 4ul * o).v[0] = n;
  // m == n (an untrained adapter: m was this norm) is exactly 1 as in IEEE division, which
  // Vulkan does not promise (2.5 ulp): the base model's forward, bit for bit, on every device
  if (p.has_m != 0u) F32(p.scale + 4ul * o).v[0] = m == n ? 1.0 : m / n;
}

#elif defined(DORA_SCALE)
void main() {
  uint64_t i = uint64_t(group_linear()) * 64ul + gl_LocalInvocationID.x;
  if (i >= uint64_t(p.T) * p.out_) return;
  float g = F32(p.scale + 4ul * (i % p.out_)).v[0] - p.shift;
  float x = F32(p.x + 4ul * i).v[0];
  F32 y = F32(p.y + 4ul * i);
  y.v[0] = p.beta != 0.0 ? fma(g, x, p.beta * y.v[0]) : g * x;
}

#else // DORA_MAG_GRAD
void main() {
  uint o = group_linear() * 64u + gl_LocalInvocationID.x;
  if (o >= p.out_) return;
  float sum = 0.0;
  for (uint t = 0u; t < p.T; t++) {
    uint64_t at = uint64_t(t) * p.out_ + o;
    sum = fma(F32(p.dy + 4ul * at).v[0], F32(p.yd + 4ul * at).v[0], sum);
  }
  F32 dm = F32(p.dm + 4ul * o);
  dm.v[0] = dm.v[0] + sum / F32(p.norm + 4ul * o).v[0];
}
#endif
