// The GPU matmuls, included by matmul.comp (which owns the push constants, the orientation and
// the weight-load hook loadB / elemA / elemB): a workgroup computes a BM x BN tile of C, staging
// BK-deep slices of op(A) and op(B) through shared memory, so each value read from global memory
// serves BN (or BM) products instead of one.
//   MATMUL_TILED   fp32 SIMT: each invocation owns a TM x TN register tile, rows ty + i*(BM/TM)
//                  and columns tx + j*(BN/TN) (interleaved, so neighbouring invocations read
//                  neighbouring shared words and write neighbouring C elements).
//   MATMUL_COOPMAT VK_KHR_cooperative_matrix (or its emulation, COOPMAT_EMULATED: coopmat.glsl):
//                  each subgroup owns a WM x WN tile made of CM x CN
//                  accumulators (fp32), multiplying CM x CK and CK x CN fp16 matrices. op(A) and
//                  op(B) are staged as fp16 scaled per row of op(A) / per column of op(B) by a
//                  power of two (so activations and small gradients keep fp16's 11 bits instead
//                  of underflowing; fp16 weights are exact and unscaled); the scales are undone
//                  exactly on the fp32 result. No loss scaling is needed.
// Global loads: the i-th value a workgroup stages from an operand slice is element
// (row, k) = (i / BK, i % BK) when the operand is k-contiguous in memory, else (i % R, i / R):
// consecutive invocations read consecutive addresses either way, and an invocation meets the
// same rows in every slice (the scale pass relies on it). WG divides BM * BK and BN * BK.
// Slices are prefetched into registers while the previous one is multiplied.
// (Its extensions are enabled at the top of matmul.comp, before any declaration.)

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256; // invocations
layout(constant_id = 1) const uint BM = 64;  // tile rows (of C)
layout(constant_id = 2) const uint BN = 64;  // tile columns
layout(constant_id = 3) const uint BK = 16;  // depth of a staged slice
#if defined(MATMUL_COOPMAT)
layout(constant_id = 4) const uint CM = 16; // cooperative matrix shape (from the device's list)
layout(constant_id = 5) const uint CN = 16;
layout(constant_id = 6) const uint CK = 16;
layout(constant_id = 7) const uint WM = 32; // rows and columns of C per subgroup
layout(constant_id = 8) const uint WN = 32;
layout(constant_id = 9) const uint SG = 32; // subgroup size (required at pipeline creation)
const uint PAD = 8;                         // fp16 elements: rows stay 16-byte aligned
const uint LDS = BK + PAD;                  // row stride of the staged slices
#include "coopmat.glsl"
#else
layout(constant_id = 4) const uint TM = 4; // rows of C per invocation
layout(constant_id = 5) const uint TN = 4; // columns of C per invocation
const uint LDA = BM + 1, LDB = BN + 1;     // staged [k][row], padded against bank conflicts
#endif
const uint LA = BM * BK / WG, LB = BN * BK / WG; // values an invocation stages per slice

#if defined(MATMUL_TN)
const bool A_KCONTIG = false;
#else
const bool A_KCONTIG = true;
#endif
#if defined(MATMUL_NT)
const bool B_KCONTIG = true;
#else
const bool B_KCONTIG = false;
#endif

// (row, k) within the slice of the i-th staged value of this invocation
uvec2 slot(uint i, uint rows, bool kcontig) {
  uint idx = gl_LocalInvocationID.x + i * WG;
  return kcontig ? uvec2(idx / BK, idx % BK) : uvec2(idx % rows, idx / rows);
}

#if defined(MATMUL_COOPMAT)
shared float16_t As[BM * LDS]; // [m][k]
shared float16_t Bs[BN * LDS]; // [n][k]: a column-major CK x CN operand
shared uint a_max[BM], b_max[BN]; // |values| as bits (ordered like the floats)
shared float a_scale[BM], b_scale[BN]; // powers of two applied when staging
shared float a_inv[BM], b_inv[BN];     // and their inverses, applied to the result
shared float Cs[(BM / WM) * (BN / WN) * CM * CN];
#if defined(W_F16) && !defined(MATMUL_TN)
const bool SCALE_B = false; // fp16 weights are staged exactly
#else
const bool SCALE_B = true;
#endif

#else
shared float As[BK * LDA];
shared float Bs[BK * LDB];
#endif

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
  float ra[LA], rb[LB];

#if defined(MATMUL_COOPMAT)
  // Pass 1: the largest |value| of each staged row of op(A) and op(B) over all of K.
  for (uint r = tid; r < BM; r += WG) a_max[r] = 0u;
  for (uint r = tid; r < BN; r += WG) b_max[r] = 0u;
  barrier();
  for (uint i = 0; i < LA; i++) ra[i] = 0.0;
  for (uint i = 0; i < LB; i++) rb[i] = 0.0;
  for (uint k0 = 0; k0 < p.K; k0 += BK) {
    for (uint i = 0; i < LA; i++) {
      uvec2 s = slot(i, BM, A_KCONTIG);
      ra[i] = max(ra[i], abs(elemA(m0 + s.x, k0 + s.y)));
    }
    if (SCALE_B)
      for (uint i = 0; i < LB; i++) {
        uvec2 s = slot(i, BN, B_KCONTIG);
        rb[i] = max(rb[i], abs(elemB(n0 + s.x, k0 + s.y)));
      }
  }
  for (uint i = 0; i < LA; i++) atomicMax(a_max[slot(i, BM, A_KCONTIG).x], floatBitsToUint(ra[i]));
  if (SCALE_B)
    for (uint i = 0; i < LB; i++)
      atomicMax(b_max[slot(i, BN, B_KCONTIG).x], floatBitsToUint(rb[i]));
  barrier();
  for (uint r = tid; r < BM; r += WG) a_scale[r] = scale_of(a_max[r], a_inv[r]);
  for (uint r = tid; r < BN; r += WG) b_scale[r] = SCALE_B ? scale_of(b_max[r], b_inv[r]) : 1.0;
  if (!SCALE_B)
    for (uint r = tid; r < BN; r += WG) b_inv[r] = 1.0;

  const uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
  const uint sub_m = sg / (BN / WN), sub_n = sg % (BN / WN);
  const uint FM = WM / CM, FN = WN / CN;
  CM_C acc[FM * FN];
  for (uint f = 0; f < FM * FN; f++) acc[f] = CM_FILL(0.0);
#else
  const uint tx = tid % (BN / TN), ty = tid / (BN / TN);
  float acc[TM][TN];
  for (uint i = 0; i < TM; i++)
    for (uint j = 0; j < TN; j++) acc[i][j] = 0.0;
#endif

  // Pass 2: slices through shared memory, the next one loaded while this one is multiplied.
  for (uint i = 0; i < LA; i++) {
    uvec2 s = slot(i, BM, A_KCONTIG);
    ra[i] = elemA(m0 + s.x, s.y);
  }
  for (uint i = 0; i < LB; i++) {
    uvec2 s = slot(i, BN, B_KCONTIG);
    rb[i] = elemB(n0 + s.x, s.y);
  }
  for (uint k0 = 0; k0 < p.K; k0 += BK) {
    barrier(); // the previous slice is no longer read
    for (uint i = 0; i < LA; i++) {
      uvec2 s = slot(i, BM, A_KCONTIG);
#if defined(MATMUL_COOPMAT)
      As[s.x * LDS + s.y] = float16_t(ra[i] * a_scale[s.x]);
#else
      As[s.y * LDA + s.x] = ra[i];
#endif
    }
    for (uint i = 0; i < LB; i++) {
      uvec2 s = slot(i, BN, B_KCONTIG);
#if defined(MATMUL_COOPMAT)
      Bs[s.x * LDS + s.y] = float16_t(rb[i] * b_scale[s.x]);
#else
      Bs[s.y * LDB + s.x] = rb[i];
#endif
    }
    barrier();
    if (k0 + BK < p.K) {
      for (uint i = 0; i < LA; i++) {
        uvec2 s = slot(i, BM, A_KCONTIG);
        ra[i] = elemA(m0 + s.x, k0 + BK + s.y);
      }
      for (uint i = 0; i < LB; i++) {
        uvec2 s = slot(i, BN, B_KCONTIG);
        rb[i] = elemB(n0 + s.x, k0 + BK + s.y);
      }
    }
#if defined(MATMUL_COOPMAT)
    for (uint kk = 0; kk < BK; kk += CK) {
      CM_A ma[FM];
      for (uint fm = 0; fm < FM; fm++)
        CM_LOAD_A(ma[fm], As, (sub_m * WM + fm * CM) * LDS + kk, LDS, CM_ROW_MAJOR);
      for (uint fn = 0; fn < FN; fn++) {
        CM_B mb;
        CM_LOAD_B(mb, Bs, (sub_n * WN + fn * CN) * LDS + kk, LDS, CM_COL_MAJOR);
        for (uint fm = 0; fm < FM; fm++)
          CM_MULADD_TO(acc[fm * FN + fn], ma[fm], As, mb, Bs);
      }
    }
#else
    for (uint k = 0; k < BK; k++) {
      float a[TM], b[TN];
      for (uint i = 0; i < TM; i++) a[i] = As[k * LDA + ty + i * (BM / TM)];
      for (uint j = 0; j < TN; j++) b[j] = Bs[k * LDB + tx + j * (BN / TN)];
      for (uint i = 0; i < TM; i++)
        for (uint j = 0; j < TN; j++) acc[i][j] = fma(a[i], b[j], acc[i][j]);
    }
#endif
  }

#if defined(MATMUL_COOPMAT)
  // each accumulator through this subgroup's corner of shared memory, then out with the
  // scales undone (exact: powers of two) and alpha, beta applied
  const uint cs = sg * CM * CN;
  for (uint fm = 0; fm < FM; fm++)
    for (uint fn = 0; fn < FN; fn++) {
      CM_STORE_C(acc[fm * FN + fn], Cs, cs, CN, CM_ROW_MAJOR);
      subgroupMemoryBarrierShared();
      subgroupBarrier();
      for (uint e = lane; e < CM * CN; e += SG) {
        uint r = sub_m * WM + fm * CM + e / CN, c = sub_n * WN + fn * CN + e % CN;
        uint m = m0 + r, n = n0 + c;
        if (m >= p.M || n >= p.N) continue;
        F32 out_c = F32(p.c + 4 * (uint64_t(m) * p.N + n));
        float v = p.alpha * (Cs[cs + e] * a_inv[r] * b_inv[c]);
        out_c.v[0] = p.beta != 0.0 ? v + p.beta * out_c.v[0] : v;
      }
      subgroupBarrier(); // Cs is rewritten by the next accumulator
    }
#else
  for (uint i = 0; i < TM; i++) {
    uint m = m0 + ty + i * (BM / TM);
    if (m >= p.M) break;
    for (uint j = 0; j < TN; j++) {
      uint n = n0 + tx + j * (BN / TN);
      if (n >= p.N) continue;
      F32 c = F32(p.c + 4 * (uint64_t(m) * p.N + n));
      float v = p.alpha * acc[i][j];
      c.v[0] = p.beta != 0.0 ? v + p.beta * c.v[0] : v;
    }
  }
#endif
}
