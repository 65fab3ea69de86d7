// Tiled matmul with fp32 accumulation: C = alpha * op(A) * op(B) + beta * C.
//   MATMUL_NT: C[M,N] = A[M,K] * B[N,K]^T  (forward x * W^T)
//   MATMUL_NN: C[M,N] = A[M,K] * B[K,N]    (input gradient dY * W)
//   MATMUL_TN: C[M,N] = A[K,M]^T * B[K,N]  (weight gradient dY^T * X)
// B (the weight operand) is stored as W_F32, W_F16 or W_BF16 (shaders/dtype.glsl), or
// quantized and dequantized as it is read: W_NF4 / W_FP4 (shaders/quant.glsl), W_Q8_0, W_Q4_0,
// W_Q5_0, W_Q4_K, W_Q5_K, W_Q6_K (ggml blocks, shaders/ggml.glsl). A quantized type plugs in
// through loadB (one element), QuantCache and loadB4q (four, keeping a block's decoded scale);
// A and C are fp32.
// MATMUL_TILED and MATMUL_COOPMAT are the GPU kernels (shaders/matmul_tiled.glsl); without
// either, the kernel below is the one for CPU drivers: each invocation owns an RM x RN register
// tile; the 64 invocations of a workgroup are laid out WN along n (fastest) and 64 / WN along m
// (src/ops/matmul.c chooses all three from the shape). The k loop takes 4 values at a time with
// vector loads when rows are 16-byte aligned. On CPU drivers (lavapipe) every per-lane load
// is expensive and spilled accumulators are cheap, so big register tiles pay off.
#version 450
#extension GL_GOOGLE_include_directive : require
#if defined(MATMUL_COOPMAT)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#if defined(COOPMAT_EMULATED)
#extension GL_EXT_control_flow_attributes : require
#else
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#endif
#endif
#include "dtype.glsl"
#include "quant.glsl"
#include "ggml.glsl"

#if !defined(MATMUL_TILED) && !defined(MATMUL_COOPMAT)
layout(local_size_x = 64) in;
#endif

layout(push_constant) uniform Push {
  uint64_t a, b, c;
  uint M, N, K;
  float alpha, beta;
  // quantized B: the block scales' parts (addresses), log2 of the block size, nested, offset
  uint64_t scales, nested_absmax, nested_code;
  uint block_shift, nested;
  float offset;
} p;

#if !defined(MATMUL_TILED) && !defined(MATMUL_COOPMAT)
layout(constant_id = 0) const uint RM = 4; // rows per invocation (multiple of 4)
layout(constant_id = 1) const uint RN = 4; // columns per invocation (multiple of 4)
layout(constant_id = 2) const bool VEC = true; // A and B start aligned for vector loads
layout(constant_id = 3) const uint WN = 16; // invocations along n (4, 8, 16, 32 or 64)
const uint BM = RM * (64 / WN);
const uint BN = RN * WN;
#endif

#if defined(W_NF4) || defined(W_FP4)
Bnb4 bnb() {
  return Bnb4(p.b, p.scales, p.nested_absmax, p.nested_code, p.block_shift, p.nested != 0u,
              p.offset);
}
float loadB(uint64_t i) { return bnb4_load(bnb(), i); }
#define QuantCache Bnb4Cache
QuantCache quant_cache_none() { return bnb4_cache_none(); }
vec4 loadB4q(uint64_t i, inout QuantCache c) { return bnb4_load4(bnb(), i, c); }
#define QUANT_B
#elif defined(GGML_W)
float loadB(uint64_t i) { return ggml_load(p.b, i); }
#define QuantCache GgmlCache
QuantCache quant_cache_none() { return ggml_cache_none(); }
vec4 loadB4q(uint64_t i, inout QuantCache c) { return ggml_load4(p.b, i, c); }
#define QUANT_B
#else
float loadB(uint64_t i) { return load_w(p.b, i); }
vec4 loadB4(uint64_t i) { return load_w4(p.b, i); }
#endif

float loadA(uint64_t i) { return F32(p.a + 4 * i).v[0]; }
vec4 loadA4(uint64_t i) { return load_f32x4(p.a + 4 * i); }

// Element (row, k) of op(A) and (col, k) of op(B), zero outside the matrix.
float elemA(uint m, uint k) {
  if (m >= p.M || k >= p.K) return 0.0;
#if defined(MATMUL_TN)
  return loadA(uint64_t(k) * p.M + m);
#else
  return loadA(uint64_t(m) * p.K + k);
#endif
}
float elemB(uint n, uint k) {
  if (n >= p.N || k >= p.K) return 0.0;
#if defined(MATMUL_NT)
  return loadB(uint64_t(n) * p.K + k);
#else
  return loadB(uint64_t(k) * p.N + n);
#endif
}

#if defined(MATMUL_TILED) || defined(MATMUL_COOPMAT)
#include "matmul_tiled.glsl"
#else
void main() {
  const uint m0 = gl_WorkGroupID.y * BM + (gl_LocalInvocationID.x / WN) * RM;
  const uint n0 = gl_WorkGroupID.x * BN + (gl_LocalInvocationID.x % WN) * RN;
  float acc[RM][RN];
  for (uint i = 0; i < RM; i++)
    for (uint j = 0; j < RN; j++) acc[i][j] = 0.0;

  // An invocation whose rows are all below the matrix, or whose columns are all past it, has
  // nothing to write (no shared memory, no barriers: it may leave). Generation's steps have a
  // few rows (M = 1 at batch 1); a narrow N leaves lanes of a wide tile idle.
  if (m0 >= p.M || n0 >= p.N) return;
  // Vector loads need aligned starts (VEC, from the host), rows that stay aligned and a tile
  // inside the matrix. NT and NN read A by rows: rows past M read row M - 1 instead (a row's
  // sums use only its own A row, and rows past M are not written), so a tile cut by M keeps
  // the vector loop, with the same order of operations as the scalar one.
#if defined(MATMUL_NT)
  const bool vec_ok = VEC && (p.K % 4) == 0 && n0 + RN <= p.N;
#elif defined(MATMUL_NN)
  const bool vec_ok = VEC && (p.K % 4) == 0 && (p.N % 4) == 0 && n0 + RN <= p.N;
#else
  const bool vec_ok = VEC && (p.M % 4) == 0 && (p.N % 4) == 0 && m0 + RM <= p.M && n0 + RN <= p.N;
#endif
  const uint k_vec = vec_ok ? p.K / 4 * 4 : 0;

#if defined(QUANT_B) && defined(MATMUL_NT)
  QuantCache cache[RN];
  for (uint j = 0; j < RN; j++) cache[j] = quant_cache_none();
#elif defined(QUANT_B)
  QuantCache cache = quant_cache_none(); // a row's RN columns mostly share one block
#endif
  for (uint k = 0; k < k_vec; k += 4) {
#if defined(MATMUL_NT)
    // both operands are k-contiguous: one vector load gives 4 k-values of a row
    float a[RM][4], b[RN][4];
    for (uint i = 0; i < RM; i++) {
      vec4 v = loadA4(uint64_t(min(m0 + i, p.M - 1)) * p.K + k);
      for (uint kk = 0; kk < 4; kk++) a[i][kk] = v[kk];
    }
    for (uint j = 0; j < RN; j++) {
#if defined(QUANT_B)
      vec4 v = loadB4q(uint64_t(n0 + j) * p.K + k, cache[j]);
#else
      vec4 v = loadB4(uint64_t(n0 + j) * p.K + k);
#endif
      for (uint kk = 0; kk < 4; kk++) b[j][kk] = v[kk];
    }
    for (uint kk = 0; kk < 4; kk++)
      for (uint i = 0; i < RM; i++)
        for (uint j = 0; j < RN; j++) acc[i][j] = fma(a[i][kk], b[j][kk], acc[i][j]);
#else
    // B rows are n-contiguous: an outer product per k keeps only one row of B live
#if defined(MATMUL_NN)
    float a[RM][4];
    for (uint i = 0; i < RM; i++) {
      vec4 v = loadA4(uint64_t(min(m0 + i, p.M - 1)) * p.K + k);
      for (uint kk = 0; kk < 4; kk++) a[i][kk] = v[kk];
    }
#endif
    for (uint kk = 0; kk < 4; kk++) {
#if defined(MATMUL_TN)
      float a_col[RM];
      for (uint i = 0; i < RM; i += 4) {
        vec4 v = loadA4(uint64_t(k + kk) * p.M + m0 + i);
        for (uint q = 0; q < 4; q++) a_col[i + q] = v[q];
      }
#endif
      float b_row[RN];
      for (uint j = 0; j < RN; j += 4) {
#if defined(QUANT_B)
        vec4 v = loadB4q(uint64_t(k + kk) * p.N + n0 + j, cache);
#else
        vec4 v = loadB4(uint64_t(k + kk) * p.N + n0 + j);
#endif
        for (uint q = 0; q < 4; q++) b_row[j + q] = v[q];
      }
      for (uint i = 0; i < RM; i++)
        for (uint j = 0; j < RN; j++) {
#if defined(MATMUL_TN)
          acc[i][j] = fma(a_col[i], b_row[j], acc[i][j]);
#else
          acc[i][j] = fma(a[i][kk], b_row[j], acc[i][j]);
#endif
        }
    }
#endif
  }
  for (uint k = k_vec; k < p.K; k++) {
    float a[RM], b[RN];
    for (uint i = 0; i < RM; i++) a[i] = elemA(m0 + i, k);
    for (uint j = 0; j < RN; j++) b[j] = elemB(n0 + j, k);
    for (uint i = 0; i < RM; i++)
      for (uint j = 0; j < RN; j++) acc[i][j] = fma(a[i], b[j], acc[i][j]);
  }

  for (uint i = 0; i < RM; i++) {
    if (m0 + i >= p.M) break;
    for (uint j = 0; j < RN; j++) {
      if (n0 + j >= p.N) break;
      F32 c = F32(p.c + 4 * (uint64_t(m0 + i) * p.N + n0 + j));
      float v = p.alpha * acc[i][j];
      c.v[0] = p.beta != 0.0 ? v + p.beta * c.v[0] : v;
    }
  }
}
#endif
