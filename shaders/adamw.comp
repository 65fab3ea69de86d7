// One AdamW step in torch.optim.AdamW's order of operations (reference: src/ref/adamw.c), four
// elements per invocation. The gradient is multiplied by grad_scale[0] read from device memory
// (the clip coefficient written by grad_norm.comp), so clipping needs no host round trip.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "buffers.glsl"
#include "grid.glsl"

layout(local_size_x = 64) in;

layout(push_constant) uniform Push {
  uint64_t p, g, m, v, grad_scale; // grad_scale 0: no scaling
  uint64_t n;
  float decay, one_minus_beta1, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps;
  uint vec; // 1: all addresses 16-byte aligned
} p;

void adamw(uint64_t i, uint count, float scale) {
  vec4 grad = load_f32_n(p.g, i, count) * scale;
  vec4 param = load_f32_n(p.p, i, count) * p.decay;                      // param.mul_(1 - lr*wd)
  vec4 m = load_f32_n(p.m, i, count);
  m = m + p.one_minus_beta1 * (grad - m);                                // exp_avg.lerp_(grad, 1-b1)
  vec4 v = load_f32_n(p.v, i, count) * p.beta2 + p.one_minus_beta2 * grad * grad; // addcmul_
  vec4 denom = sqrt(v) / p.bias_correction2_sqrt + p.eps;
  param = param + -p.step_size * (m / denom);                            // addcdiv_(m, denom, -step)
  store_f32_n(p.p, i, count, param);
  store_f32_n(p.m, i, count, m);
  store_f32_n(p.v, i, count, v);
}

void main() {
  uint64_t i = (uint64_t(group_linear()) * 64ul + gl_LocalInvocationID.x) * 4ul;
  if (i >= p.n) return;
  float scale = p.grad_scale != 0ul ? F32(p.grad_scale).v[0] : 1.0;
  if (p.vec != 0u && i + 4ul <= p.n) {
    adamw(i, 4u, scale);
  } else {
    for (uint64_t k = i; k < min(i + 4ul, p.n); k++) adamw(k, 1u, scale);
  }
}
