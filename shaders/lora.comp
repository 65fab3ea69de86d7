// The skinny products of LoRA (src/ops/lora.c), where one side of the output is the rank r
// (at most 64): C (M, R) = alpha * op(A) op(B) + beta * C with K large.
//   SKINNY_NT: C[m, j] = sum_k A[m, k] B[j, k]   u = x A^T         (A: M x K, B: R x K)
//   SKINNY_NN: C[m, j] = sum_k A[m, k] B[k, j]   du = s dy B       (A: M x K, B: K x R)
//   SKINNY_TN: C[m, j] = sum_k A[k, m] B[k, j]   dB = s dy^T u     (A: K x M, B: K x R)
//              with TRANSPOSE_C, C is stored (R, M):  dA = du^T x as (x^T du)^T
// The generic tiled matmul spreads its 64 invocations 16-wide along the output columns, so
// with 16 columns three quarters of them compute nothing (measured ~1 GFLOP/s on lavapipe).
// Here each invocation owns RM whole output rows (all R columns) and walks all of K: its
// B values are the same for every invocation (uniform loads), its A values are its own rows.
// Fixed summation order per output: deterministic.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "buffers.glsl"

layout(local_size_x_id = 3) in; // workgroup size: 16 on CPU drivers, 64 on GPUs (src/ops/lora.c)

layout(push_constant) uniform Push {
  uint64_t a, b, c;
  uint M, K;
  float alpha, beta;
}
p;

layout(constant_id = 0) const uint R = 16; // output columns (the rank)
layout(constant_id = 1) const uint RM = 4; // output rows per invocation
layout(constant_id = 2) const bool VEC = true; // A and B start 16-byte aligned

float loadA(uint64_t i) {
  return F32(p.a + 4 * i).v[0];
}
float loadB(uint64_t i) {
  return F32(p.b + 4 * i).v[0];
}

// Row k of a (K, R) operand B, the same for every invocation: 16-byte words when R % 4 == 0.
void load_b_row(uint k, out float b[R]) {
  if (VEC && (R % 4) == 0) {
    for (uint j = 0; j < R; j += 4) {
      vec4 v = load_f32x4(p.b + 4 * (uint64_t(k) * R + j));
      for (uint q = 0; q < 4; q++) b[j + q] = v[q];
    }
  } else {
    for (uint j = 0; j < R; j++) b[j] = loadB(uint64_t(k) * R + j);
  }
}

void main() {
  const uint m0 = gl_GlobalInvocationID.x * RM;
  if (m0 >= p.M) return;
  // rows past the end repeat the last row (valid memory, results not stored): no branches
  uint rows[RM];
  for (uint i = 0; i < RM; i++) rows[i] = min(m0 + i, p.M - 1);
  float acc[RM][R];
  for (uint i = 0; i < RM; i++)
    for (uint j = 0; j < R; j++) acc[i][j] = 0.0;

#if defined(SKINNY_NT) || defined(SKINNY_NN)
  // A rows are contiguous along k: four at a time when they are 16-byte aligned
  const uint k_vec = VEC && (p.K % 4) == 0 ? p.K : 0;
  for (uint k = 0; k < k_vec; k += 4) {
    vec4 a[RM];
    for (uint i = 0; i < RM; i++) a[i] = load_f32x4(p.a + 4 * (uint64_t(rows[i]) * p.K + k));
#if defined(SKINNY_NT)
    for (uint j = 0; j < R; j++) {
      vec4 b = load_f32x4(p.b + 4 * (uint64_t(j) * p.K + k));
      for (uint i = 0; i < RM; i++)
        acc[i][j] =
            fma(a[i].w, b.w, fma(a[i].z, b.z, fma(a[i].y, b.y, fma(a[i].x, b.x, acc[i][j]))));
    }
#else
    for (uint kk = 0; kk < 4; kk++) {
      float b[R];
      load_b_row(k + kk, b);
      for (uint j = 0; j < R; j++)
        for (uint i = 0; i < RM; i++) acc[i][j] = fma(a[i][kk], b[j], acc[i][j]);
    }
#endif
  }
  for (uint k = k_vec; k < p.K; k++) {
    float a[RM];
    for (uint i = 0; i < RM; i++) a[i] = loadA(uint64_t(rows[i]) * p.K + k);
    for (uint j = 0; j < R; j++) {
#if defined(SKINNY_NT)
      float b = loadB(uint64_t(j) * p.K + k);
#else
      float b = loadB(uint64_t(k) * R + j);
#endif
      for (uint i = 0; i < RM; i++) acc[i][j] = fma(a[i], b, acc[i][j]);
    }
  }
#else // SKINNY_TN: row k of A holds neighbouring invocations' values side by side
  const bool a_vec = VEC && (RM % 4) == 0 && (p.M % 4) == 0 && m0 + RM <= p.M;
  for (uint k = 0; k < p.K; k++) {
    float a[RM];
    if (a_vec) {
      for (uint i = 0; i < RM; i += 4) {
        vec4 v = load_f32x4(p.a + 4 * (uint64_t(k) * p.M + m0 + i));
        for (uint q = 0; q < 4; q++) a[i + q] = v[q];
      }
    } else {
      for (uint i = 0; i < RM; i++) a[i] = loadA(uint64_t(k) * p.M + rows[i]);
    }
    float b[R];
    load_b_row(k, b);
    for (uint j = 0; j < R; j++)
      for (uint i = 0; i < RM; i++) acc[i][j] = fma(a[i], b[j], acc[i][j]);
  }
#endif

  for (uint i = 0; i < RM; i++) {
    if (m0 + i >= p.M) break;
    for (uint j = 0; j < R; j++) {
#if defined(TRANSPOSE_C)
      F32 c = F32(p.c + 4 * (uint64_t(j) * p.M + m0 + i));
#else
      F32 c = F32(p.c + 4 * (uint64_t(m0 + i) * R + j));
#endif
      float v = p.alpha * acc[i][j];
      c.v[0] = p.beta != 0.0 ? v + p.beta * c.v[0] : v;
    }
  }
}
