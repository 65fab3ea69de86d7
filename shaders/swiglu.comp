// SwiGLU (reference: src/ref/swiglu.c), four elements per invocation:
//   SWIGLU_FWD  out = silu(gate) * up, silu(g) = g * sigmoid(g)
//   SWIGLU_BWD  dgate = dout * up * sig * (1 + g * (1 - sig)), dup = dout * silu(gate)
// Outputs may alias inputs: each invocation reads its elements before writing them.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "buffers.glsl"
#include "grid.glsl"

layout(local_size_x = 64) in;

layout(push_constant) uniform Push {
  uint64_t gate, up, dout, out_, dgate, dup; // out_: forward output
  uint64_t n;
  uint vec; // 1: all addresses 16-byte aligned
} p;

// exp(-g) overflows to inf for g < -88: the sigmoid is then 0, as it should be.
vec4 sigmoid(vec4 g) { return 1.0 / (1.0 + exp(-g)); }

// Elements [i, i + count), count 4 (one aligned vector) or 1.
void process(uint64_t i, uint count) {
  vec4 g = load_f32_n(p.gate, i, count), u = load_f32_n(p.up, i, count);
  vec4 sig = sigmoid(g);
#if defined(SWIGLU_FWD)
  store_f32_n(p.out_, i, count, g * sig * u);
#else
  vec4 d = load_f32_n(p.dout, i, count);
  store_f32_n(p.dgate, i, count, d * u * sig * (1.0 + g * (1.0 - sig)));
  store_f32_n(p.dup, i, count, d * g * sig);
#endif
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
