// RMSNorm forward and backward (reference: src/ref/rmsnorm.c).
//   RMSNORM_FWD     y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps) per row
//   RMSNORM_BWD_DX  dx = rstd * (dy*w - x * rstd^2/C * sum(dy*w*x)) per row
//   RMSNORM_BWD_DW  dw += sum over rows of dy * (x * rstd), per column
// The weight is stored as W_F32, W_F16 or W_BF16 (the dw variant does not read it).
// Row kernels: TPR threads share a row (64/TPR rows per workgroup); each sums a strided slice
// and the slices are added by a fixed shared-memory tree (reduce.glsl), so the bits depend only
// on C.
// Column kernel: 64/RL column lanes x RL row lanes; each thread walks its rows in order and the
// RL partial sums are added in lane order: a fixed order without atomics or scratch memory.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "dtype.glsl"
#include "grid.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint TPR = 64; // threads per row (power of two); RL for dw

layout(push_constant) uniform Push {
  uint64_t x, w, rstd, dy, out_; // out_: y (forward), dx or dw (backward)
  uint R, C;
  float eps;
  uint vec; // 1: C % 4 == 0 and the rows are aligned for 64-bit vector loads
} p;

#if defined(RMSNORM_BWD_DW)
shared vec4 part[64];

void main() {
  const uint RL = TPR, CL = 64 / TPR;
  uint cl = gl_LocalInvocationID.x % CL, rl = gl_LocalInvocationID.x / CL;
  uint width = p.vec != 0u ? 4u : 1u;
  uint c0 = (group_linear() * CL + cl) * width;
  vec4 acc = vec4(0.0);
  if (c0 < p.C) {
    for (uint r = rl; r < p.R; r += RL) {
      float s = F32(p.rstd + 4ul * r).v[0];
      uint64_t at = uint64_t(r) * p.C + c0;
      if (p.vec != 0u)
        acc = fma(load_f32x4(p.dy + 4ul * at), load_f32x4(p.x + 4ul * at) * s, acc);
      else
        acc.x = fma(F32(p.dy + 4ul * at).v[0], F32(p.x + 4ul * at).v[0] * s, acc.x);
    }
  }
  part[gl_LocalInvocationID.x] = acc;
  barrier();
  if (rl != 0u || c0 >= p.C) return;
  vec4 sum = part[cl];
  for (uint k = 1u; k < RL; k++) sum += part[k * CL + cl];
  if (p.vec != 0u) {
    store_f32x4(p.out_ + 4ul * c0, load_f32x4(p.out_ + 4ul * c0) + sum);
  } else {
    F32 dw = F32(p.out_ + 4ul * c0);
    dw.v[0] = dw.v[0] + sum.x;
  }
}

#else
#include "reduce.glsl"

void main() {
  uint lane = gl_LocalInvocationID.x % TPR;
  uint row = group_linear() * (64u / TPR) + gl_LocalInvocationID.x / TPR;
  bool live = row < p.R; // no early return: every thread must reach the barriers
  uint64_t base = uint64_t(row) * p.C;

  // pass 1: the row's reduction (sum x^2, or sum dy*w*x for dx)
  vec4 acc = vec4(0.0);
  if (live) {
    if (p.vec != 0u) {
      for (uint c = 4u * lane; c < p.C; c += 4u * TPR) {
        vec4 xv = load_f32x4(p.x + 4ul * (base + c));
#if defined(RMSNORM_FWD)
        acc = fma(xv, xv, acc);
#else
        acc = fma(load_f32x4(p.dy + 4ul * (base + c)) * load_w4(p.w, c), xv, acc);
#endif
      }
    } else {
      for (uint c = lane; c < p.C; c += TPR) {
        float xv = F32(p.x + 4ul * (base + c)).v[0];
#if defined(RMSNORM_FWD)
        acc.x = fma(xv, xv, acc.x);
#else
        acc.x = fma(F32(p.dy + 4ul * (base + c)).v[0] * load_w(p.w, c), xv, acc.x);
#endif
      }
    }
  }
  // the sum over the TPR threads of this thread's row
  float total = reduce_groups((acc.x + acc.y) + (acc.z + acc.w), TPR, false);
  if (!live) return;

  // pass 2: the row's outputs
#if defined(RMSNORM_FWD)
  float s = inversesqrt(total / float(p.C) + p.eps);
  if (lane == 0u && p.rstd != 0ul) F32(p.rstd + 4ul * row).v[0] = s;
#else
  float s = F32(p.rstd + 4ul * row).v[0];
  float k = s * s * total / float(p.C);
#endif
  if (p.vec != 0u) {
    for (uint c = 4u * lane; c < p.C; c += 4u * TPR) {
      vec4 xv = load_f32x4(p.x + 4ul * (base + c));
#if defined(RMSNORM_FWD)
      vec4 o = xv * s * load_w4(p.w, c);
#else
      vec4 o = s * (load_f32x4(p.dy + 4ul * (base + c)) * load_w4(p.w, c) - xv * k);
#endif
      store_f32x4(p.out_ + 4ul * (base + c), o);
    }
  } else {
    for (uint c = lane; c < p.C; c += TPR) {
      float xv = F32(p.x + 4ul * (base + c)).v[0];
#if defined(RMSNORM_FWD)
      float o = xv * s * load_w(p.w, c);
#else
      float o = s * (F32(p.dy + 4ul * (base + c)).v[0] * load_w(p.w, c) - xv * k);
#endif
      F32(p.out_ + 4ul * (base + c)).v[0] = o;
    }
  }
}
#endif
