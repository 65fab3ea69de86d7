// Causal grouped-query attention over packed sequences for GPUs: the flash-attention passes of
// attention.comp (same push constants, masks and outputs; src/ref/attention.c) with both sides
// staged through shared memory by a whole workgroup.
//   ATTN_FWD:     out and lse by online softmax (queries may start at q_offset: a KV cache).
//   ATTN_BWD_DQ:  delta = <dout, out> and dq.
//   ATTN_BWD_DKV: dk and dv of one kv head, summed over the group's query heads.
//
// A workgroup owns BR consecutive rows of one head (query rows for FWD and DQ, key rows of a kv
// head for DKV), stages them once, and walks the other side BC rows at a time. TPR = WG / BR
// invocations share an owned row: invocation t works on row t / TPR, on the tile columns
// c = t % TPR + TPR * k (k < BC / TPR) and on the head-dim elements d = t % TPR + TPR * j
// (interleaved, so neighbours read neighbouring shared words). A step stages the other side's
// rows (consecutive invocations load consecutive addresses; rows past the range read as 0),
// computes each invocation's scores as dot products over D from shared memory, combines the
// row's partial maxima through shared memory, stores the weights (or dS) as a BR x BC tile, and
// updates the owned rows' accumulators, held in registers, from the staged rows. Every sum runs
// in a fixed order and no float is summed atomically, so reruns give the same bits. Rows past
// the end shadow the last row: they compute what it computes and never store.
// Row strides in shared memory are D + 1 words (BC + 1 for tiles): the rows a warp reads at
// once fall into different banks.
//
// ATTN_COOPMAT: the two products of each step (scores, and weights times rows) on cooperative
// matrices (shaders/coopmat.glsl; COOPMAT_EMULATED: emulated, for tests). Every staged block of
// rows, and every tile of dS, is rounded to fp16 after scaling by the power of two that puts its
// largest |value| in [2^13, 2^14) (tiny gradients keep 11 bits instead of flushing); products
// are summed in fp32 into shared tiles and unscaled exactly; softmax, masks and the owned rows'
// accumulators stay fp32 as above. Weights p (<= 1) are rounded unscaled. Needs D, BR and BC
// multiples of the matrix shape, and WG a multiple of the subgroup size SG (required).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#if defined(ATTN_COOPMAT)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#if !defined(COOPMAT_EMULATED)
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#endif
#endif
#include "buffers.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
  uint64_t q, k, v, seq, out_, lse, dout, dq, dk, dv, delta;
  uint T, Hq, Hkv;
  float scale;
  uint q_offset;
} p;

layout(constant_id = 0) const uint WG = 128; // invocations, a multiple of BR
layout(constant_id = 1) const uint D = 64;   // head dimension
layout(constant_id = 2) const uint BR = 32;  // owned rows per workgroup
layout(constant_id = 3) const uint BC = 32;  // other-side rows per step, a multiple of WG / BR
const uint TPR = WG / BR;                    // invocations per owned row
const uint NC = BC / TPR;                    // tile columns per invocation
const uint ND = (D + TPR - 1) / TPR;         // head-dim elements per invocation
const uint DS = D + 1, PS = BC + 1;          // shared row strides
const float LOG2E = 1.4426950408889634;
const float NEG_INF = -1.0 / 0.0;

shared int own_seq[BR];   // sequence ids of the owned rows
shared uint bound;        // the first key (FWD, DQ) or last query (DKV) the rows can meet
shared float red[BR * TPR]; // a row's partial maxima, sums or dot products
shared int seq_t[BC];     // sequence ids of the staged rows
#if defined(ATTN_BWD_DKV)
shared float lse_t[BC], delta_t[BC];
#endif
#if defined(ATTN_COOPMAT)
layout(constant_id = 4) const uint CM = 16; // cooperative matrix shape
layout(constant_id = 5) const uint CN = 16;
layout(constant_id = 6) const uint CK = 16;
layout(constant_id = 7) const uint SG = 32; // subgroup size (required at pipeline creation)
#include "coopmat.glsl"
const uint DH = D + 8, PH = BC + 8;        // fp16 row strides (16-byte multiples)
const uint TS = BC + 4, OS = D + 4;        // fp32 tile strides
shared float16_t own_h[BR * DH];   // q (FWD, DQ) or k (DKV) rows, scaled
shared float16_t oth_h[BC * DH];   // k (FWD, DQ) or q (DKV) rows, scaled
shared float16_t oth2_h[BC * DH];  // v (FWD, DQ) or dout (DKV) rows, scaled
shared float sco[BR * TS];         // scores
shared float16_t ph[BR * PH];      // weights (FWD, DKV) or dS (DQ), fp16
shared float prod[BR * OS];        // a tile times staged rows
#if defined(ATTN_BWD_DQ) || defined(ATTN_BWD_DKV)
shared float16_t own2_h[BR * DH];  // dout (DQ) or v (DKV) rows, scaled
shared float sco2[BR * TS];        // dp
#endif
#if defined(ATTN_BWD_DKV)
shared float16_t ph2[BR * PH];     // dS
#endif
// maxima (as bits) and inverse scales of the staged blocks: OWN, OWN2, OTH, OTH2, DS
shared uint tmax[5];
shared float tinv[5];
const uint OWN = 0, OWN2 = 1, OTH = 2, OTH2 = 3, DSB = 4;

// the largest |value| of rows row0 .. row0 + valid - 1 into tmax[slot] (a first pass)
#define MAX_H(ROWS, base, heads, head, row0, valid, slot)                                      \
  {                                                                                            \
    float mx_ = 0.0;                                                                           \
    [[dont_unroll]] for (uint e_ = gl_LocalInvocationID.x; e_ < (valid) * D; e_ += WG) {        \
      const uint r_ = e_ / D, d_ = e_ - r_ * D;                                                \
      mx_ = max(mx_, abs(F32(row_addr(base, (row0) + r_, heads, head)).v[d_]));                \
    }                                                                                          \
    atomicMax(tmax[slot], floatBitsToUint(mx_));                                               \
  }
// the rows scaled by tmax[slot]'s power of two into dst (stride DH), 0 from `valid` on;
// tinv[slot] = the inverse scale
#define STORE_H(dst, ROWS, base, heads, head, row0, valid, slot)                               \
  {                                                                                            \
    float inv_;                                                                                \
    const float sc_ = scale_of(tmax[slot], inv_);                                              \
    if (gl_LocalInvocationID.x == 0) tinv[slot] = inv_;                                        \
    [[dont_unroll]] for (uint e_ = gl_LocalInvocationID.x; e_ < (ROWS) * D; e_ += WG) {        \
      const uint r_ = e_ / D, d_ = e_ - r_ * D;                                                \
      dst[r_ * DH + d_] = float16_t(                                                           \
          r_ < (valid) ? F32(row_addr(base, (row0) + r_, heads, head)).v[d_] * sc_ : 0.0);     \
    }                                                                                          \
  }
// c (BR x N, stride ldc) = a (BR x K, fp16, stride lda) times b^T, b's rows holding N x K
// (stride ldb): "scores" of a's rows against b's. Subgroups take the CM x CN blocks in turn.
#define PRODUCT_NT(c, ldc, N, K, a, lda, b, ldb)                                               \
  for (uint f_ = gl_SubgroupID; f_ < (BR / CM) * ((N) / CN); f_ += gl_NumSubgroups) {          \
    const uint fm_ = f_ / ((N) / CN), fn_ = f_ % ((N) / CN);                                   \
    CM_C acc_ = CM_FILL(0.0);                                                                  \
    for (uint kb_ = 0; kb_ < (K); kb_ += CK) {                                                 \
      CM_A a_;                                                                                 \
      CM_B b_;                                                                                 \
      CM_LOAD_A(a_, a, fm_ * CM * (lda) + kb_, lda, CM_ROW_MAJOR);                             \
      CM_LOAD_B(b_, b, fn_ * CN * (ldb) + kb_, ldb, CM_COL_MAJOR);                             \
      CM_MULADD_TO(acc_, a_, a, b_, b);                                                        \
    }                                                                                          \
    CM_STORE_C(acc_, c, fm_ * CM * (ldc) + fn_ * CN, ldc, CM_ROW_MAJOR);                       \
  }
// c (BR x N) = a (BR x K) times b (K x N, row-major, stride ldb): a tile times staged rows
#define PRODUCT_NN(c, ldc, N, K, a, lda, b, ldb)                                               \
  for (uint f_ = gl_SubgroupID; f_ < (BR / CM) * ((N) / CN); f_ += gl_NumSubgroups) {          \
    const uint fm_ = f_ / ((N) / CN), fn_ = f_ % ((N) / CN);                                   \
    CM_C acc_ = CM_FILL(0.0);                                                                  \
    for (uint kb_ = 0; kb_ < (K); kb_ += CK) {                                                 \
      CM_A a_;                                                                                 \
      CM_B b_;                                                                                 \
      CM_LOAD_A(a_, a, fm_ * CM * (lda) + kb_, lda, CM_ROW_MAJOR);                             \
      CM_LOAD_B(b_, b, kb_ * (ldb) + fn_ * CN, ldb, CM_ROW_MAJOR);                             \
      CM_MULADD_TO(acc_, a_, a, b_, b);                                                        \
    }                                                                                          \
    CM_STORE_C(acc_, c, fm_ * CM * (ldc) + fn_ * CN, ldc, CM_ROW_MAJOR);                       \
  }
#else
shared float tile[BR * PS]; // weights (FWD), dS (DQ, DKV)
#if defined(ATTN_FWD) || defined(ATTN_BWD_DQ)
shared float own_a[BR * DS]; // q rows
shared float oth_a[BC * DS]; // k rows
shared float oth_b[BC * DS]; // v rows
#endif
#if defined(ATTN_BWD_DQ)
shared float own_b[BR * DS]; // dout rows
#endif
#if defined(ATTN_BWD_DKV)
shared float own_a[BR * DS]; // k rows
shared float own_b[BR * DS]; // v rows
shared float oth_a[BC * DS]; // q rows
shared float oth_b[BC * DS]; // dout rows
shared float tile_p[BR * PS]; // weights
#endif
#endif

// Byte address of row `token` of head `head` in a (T, heads, D) fp32 tensor.
uint64_t row_addr(uint64_t base, uint token, uint heads, uint head) {
  return base + 4 * ((uint64_t(token) * heads + head) * D);
}

int seq_of(uint token) { return I32(p.seq + 4 * uint64_t(token)).v[0]; }

// Rows row0 .. row0 + ROWS - 1 of head `head` into `dst` (stride DS); those from `valid` on
// read as 0. (A macro: shared arrays cannot be passed to functions.)
#define STAGE(dst, ROWS, base, heads, head, row0, valid)                                       \
  [[dont_unroll]] for (uint e_ = gl_LocalInvocationID.x; e_ < (ROWS) * D; e_ += WG) {         \
    const uint r_ = e_ / D, d_ = e_ - r_ * D;                                                  \
    dst[r_ * DS + d_] = r_ < (valid) ? F32(row_addr(base, (row0) + r_, heads, head)).v[d_] : 0.0; \
  }

// The dot product of owned row r of `a` with staged row c of `b`, over D.
#define DOT(res, a, r, b, c)                                                                   \
  {                                                                                            \
    float s_ = 0.0;                                                                            \
    [[dont_unroll]] for (uint d_ = 0; d_ < D; d_++) s_ += a[(r) * DS + d_] * b[(c) * DS + d_]; \
    res = s_;                                                                                  \
  }

void main() {
  const uint t = gl_LocalInvocationID.x, r = t / TPR, lane = t % TPR;
  const uint head = gl_WorkGroupID.y; // query head (FWD, DQ) or kv head (DKV)
  const uint group = p.Hq / p.Hkv;
  const uint i0 = gl_WorkGroupID.x * BR;
  const uint nown = min(BR, p.T - i0);
  const bool own = r < nown;
  const uint row = i0 + min(r, nown - 1);
  const uint qo = p.q_offset; // FWD: query row i is position qo + i; 0 otherwise
  const uint my_pos = row + qo;
  const float score_scale = p.scale * LOG2E;
  const uint last = i0 + nown - 1 + qo; // the last owned position

  if (t < BR) own_seq[t] = seq_of(i0 + min(t, nown - 1) + qo);
#if defined(ATTN_COOPMAT)
  if (t < 5) tmax[t] = 0u;
#endif
#if defined(ATTN_BWD_DKV)
  if (t == 0) bound = last;
#else
  if (t == 0) bound = i0 + qo;
#endif
  barrier();
  const int my_seq = own_seq[r];

#if defined(ATTN_FWD) || defined(ATTN_BWD_DQ)
  // keys: from the first token sharing an id with an owned row; each invocation scans its
  // stride up to its first hit
  for (uint j = t; j < i0 + qo; j += WG) {
    const int s = seq_of(j);
    bool hit = false;
    for (uint x = 0; x < nown; x++) hit = hit || s == own_seq[x];
    if (hit) {
      atomicMin(bound, j);
      break;
    }
  }
  const uint g = head / group;
#if !defined(ATTN_COOPMAT)
  STAGE(own_a, BR, p.q, p.Hq, head, i0, nown);
#endif
#endif
#if defined(ATTN_BWD_DKV)
  // queries: up to the last token sharing an id with an owned key
  for (uint i = p.T - 1 - t; i > last && i < p.T; i -= WG) {
    const int s = seq_of(i);
    bool hit = false;
    for (uint x = 0; x < nown; x++) hit = hit || s == own_seq[x];
    if (hit) {
      atomicMax(bound, i);
      break;
    }
  }
#if !defined(ATTN_COOPMAT)
  STAGE(own_a, BR, p.k, p.Hkv, head, i0, nown);
  STAGE(own_b, BR, p.v, p.Hkv, head, i0, nown);
#endif
#endif
#if defined(ATTN_COOPMAT)
  // the owned rows, scaled to fp16 (tmax was zeroed before the first barrier)
#if defined(ATTN_BWD_DKV)
  MAX_H(BR, p.k, p.Hkv, head, i0, nown, OWN);
  MAX_H(BR, p.v, p.Hkv, head, i0, nown, OWN2);
#else
  MAX_H(BR, p.q, p.Hq, head, i0, nown, OWN);
#if defined(ATTN_BWD_DQ)
  MAX_H(BR, p.dout, p.Hq, head, i0, nown, OWN2);
#endif
#endif
  barrier();
#if defined(ATTN_BWD_DKV)
  STORE_H(own_h, BR, p.k, p.Hkv, head, i0, nown, OWN);
  STORE_H(own2_h, BR, p.v, p.Hkv, head, i0, nown, OWN2);
#else
  STORE_H(own_h, BR, p.q, p.Hq, head, i0, nown, OWN);
#if defined(ATTN_BWD_DQ)
  STORE_H(own2_h, BR, p.dout, p.Hq, head, i0, nown, OWN2);
#endif
#endif
#endif
  barrier();
  const uint other = bound;

#if defined(ATTN_FWD)
  float o[ND];
  [[unroll]] for (uint j = 0; j < ND; j++) o[j] = 0.0;
  float m = NEG_INF, l = 0.0; // running max (base-2 units), this invocation's part of the sum
  for (uint j0 = other; j0 <= last; j0 += BC) {
    const uint nk = min(BC, last + 1 - j0);
    barrier(); // the previous step's readers are done
#if defined(ATTN_COOPMAT)
    MAX_H(BC, p.k, p.Hkv, g, j0, nk, OTH);
    MAX_H(BC, p.v, p.Hkv, g, j0, nk, OTH2);
    if (t < BC) seq_t[t] = t < nk ? seq_of(j0 + t) : 0;
    barrier();
    STORE_H(oth_h, BC, p.k, p.Hkv, g, j0, nk, OTH);
    STORE_H(oth2_h, BC, p.v, p.Hkv, g, j0, nk, OTH2);
    barrier();
    if (t == 0) tmax[OTH] = tmax[OTH2] = 0u; // read above; set again after the next barrier
    PRODUCT_NT(sco, TS, BC, D, own_h, DH, oth_h, DH);
    barrier();
    const float unscale = tinv[OWN] * tinv[OTH];
#else
    STAGE(oth_a, BC, p.k, p.Hkv, g, j0, nk);
    STAGE(oth_b, BC, p.v, p.Hkv, g, j0, nk);
    if (t < BC) seq_t[t] = t < nk ? seq_of(j0 + t) : 0;
    barrier();
#endif
    float s[NC], mx = NEG_INF;
    [[unroll]] for (uint k = 0; k < NC; k++) {
      const uint c = lane + TPR * k;
      float dot_;
#if defined(ATTN_COOPMAT)
      dot_ = sco[r * TS + c] * unscale;
#else
      DOT(dot_, own_a, r, oth_a, c);
#endif
      s[k] = c < nk && j0 + c <= my_pos && seq_t[c] == my_seq ? dot_ * score_scale : NEG_INF;
      mx = max(mx, s[k]);
    }
    red[t] = mx;
    barrier();
    float step_max = m;
    [[unroll]] for (uint u = 0; u < TPR; u++) step_max = max(step_max, red[r * TPR + u]);
    const float alpha = step_max == m ? 1.0 : exp2(m - step_max);
    float sum = 0.0;
    [[unroll]] for (uint k = 0; k < NC; k++) {
      const float w = s[k] == NEG_INF ? 0.0 : exp2(s[k] - step_max);
#if defined(ATTN_COOPMAT)
      ph[r * PH + lane + TPR * k] = float16_t(w);
#else
      tile[r * PS + lane + TPR * k] = w;
#endif
      sum += w;
    }
    l = l * alpha + sum;
    m = step_max;
    barrier();
#if defined(ATTN_COOPMAT)
    PRODUCT_NN(prod, OS, D, BC, ph, PH, oth2_h, DH);
    barrier();
    const float vinv = tinv[OTH2];
#endif
    [[unroll]] for (uint j = 0; j < ND; j++) {
      const uint d = lane + TPR * j;
      if (d >= D) break;
      float acc = o[j] * alpha;
#if defined(ATTN_COOPMAT)
      acc += prod[r * OS + d] * vinv;
#else
      [[dont_unroll]] for (uint c = 0; c < BC; c++) acc += tile[r * PS + c] * oth_b[c * DS + d];
#endif
      o[j] = acc;
    }
  }
  red[t] = l; // every read of red is behind the barrier before the last update
  barrier();
  float total = 0.0;
  [[unroll]] for (uint u = 0; u < TPR; u++) total += red[r * TPR + u];
  if (own) {
    const uint64_t out_row = row_addr(p.out_, row, p.Hq, head);
    [[unroll]] for (uint j = 0; j < ND; j++) {
      const uint d = lane + TPR * j;
      if (d < D) F32(out_row).v[d] = o[j] * (1.0 / total);
    }
    if (lane == 0)
      F32(p.lse + 4 * (uint64_t(row) * p.Hq + head)).v[0] = (m + log2(total)) / LOG2E;
  }
#endif

#if defined(ATTN_BWD_DQ)
#if !defined(ATTN_COOPMAT)
  STAGE(own_b, BR, p.dout, p.Hq, head, i0, nown);
#endif
  // delta = <dout, out>: this invocation's head-dim elements, then the row's
  float part = 0.0;
  {
    const uint64_t o_row = row_addr(p.out_, row, p.Hq, head),
                   do_row = row_addr(p.dout, row, p.Hq, head);
    [[unroll]] for (uint j = 0; j < ND; j++) {
      const uint d = lane + TPR * j;
      if (d < D) part += F32(do_row).v[d] * F32(o_row).v[d];
    }
  }
  red[t] = part;
  barrier();
  float delta = 0.0;
  [[unroll]] for (uint u = 0; u < TPR; u++) delta += red[r * TPR + u];
  const uint64_t stat = 4 * (uint64_t(row) * p.Hq + head);
  const float lse2 = F32(p.lse + stat).v[0] * LOG2E;
  if (own && lane == 0) F32(p.delta + stat).v[0] = delta;
  float dq[ND];
  [[unroll]] for (uint j = 0; j < ND; j++) dq[j] = 0.0;
  for (uint j0 = other; j0 <= last; j0 += BC) {
    const uint nk = min(BC, last + 1 - j0);
    barrier();
#if defined(ATTN_COOPMAT)
    MAX_H(BC, p.k, p.Hkv, g, j0, nk, OTH);
    MAX_H(BC, p.v, p.Hkv, g, j0, nk, OTH2);
    if (t < BC) seq_t[t] = t < nk ? seq_of(j0 + t) : 0;
    barrier();
    STORE_H(oth_h, BC, p.k, p.Hkv, g, j0, nk, OTH);
    STORE_H(oth2_h, BC, p.v, p.Hkv, g, j0, nk, OTH2);
    barrier();
    if (t == 0) tmax[OTH] = tmax[OTH2] = 0u;
    PRODUCT_NT(sco, TS, BC, D, own_h, DH, oth_h, DH);
    PRODUCT_NT(sco2, TS, BC, D, own2_h, DH, oth2_h, DH);
    barrier();
    const float qk_inv = tinv[OWN] * tinv[OTH], dp_inv = tinv[OWN2] * tinv[OTH2];
    float ds[NC], ds_max = 0.0;
#else
    STAGE(oth_a, BC, p.k, p.Hkv, g, j0, nk);
    STAGE(oth_b, BC, p.v, p.Hkv, g, j0, nk);
    if (t < BC) seq_t[t] = t < nk ? seq_of(j0 + t) : 0;
    barrier();
#endif
    [[unroll]] for (uint k = 0; k < NC; k++) {
      const uint c = lane + TPR * k;
      float qk, dp;
#if defined(ATTN_COOPMAT)
      qk = sco[r * TS + c] * qk_inv;
      dp = sco2[r * TS + c] * dp_inv;
#else
      DOT(qk, own_a, r, oth_a, c);
      DOT(dp, own_b, r, oth_b, c);
#endif
      const bool ok = c < nk && j0 + c <= my_pos && seq_t[c] == my_seq;
      const float w = ok ? exp2(qk * score_scale - lse2) : 0.0;
#if defined(ATTN_COOPMAT)
      ds[k] = w * (dp - delta) * p.scale;
      ds_max = max(ds_max, abs(ds[k]));
#else
      tile[r * PS + c] = w * (dp - delta) * p.scale; // dL/ds times scale
#endif
    }
#if defined(ATTN_COOPMAT)
    // dS to fp16 under its tile's scale, then dS K
    atomicMax(tmax[DSB], floatBitsToUint(ds_max));
    barrier();
    {
      float inv_;
      const float sc_ = scale_of(tmax[DSB], inv_);
      if (t == 0) tinv[DSB] = inv_;
      [[unroll]] for (uint k = 0; k < NC; k++) ph[r * PH + lane + TPR * k] = float16_t(ds[k] * sc_);
    }
    barrier();
    if (t == 0) tmax[DSB] = 0u;
    PRODUCT_NN(prod, OS, D, BC, ph, PH, oth_h, DH);
    barrier();
    const float dq_inv = tinv[DSB] * tinv[OTH];
#else
    barrier();
#endif
    [[unroll]] for (uint j = 0; j < ND; j++) {
      const uint d = lane + TPR * j;
      if (d >= D) break;
      float acc = dq[j];
#if defined(ATTN_COOPMAT)
      acc += prod[r * OS + d] * dq_inv;
#else
      [[dont_unroll]] for (uint c = 0; c < BC; c++) acc += tile[r * PS + c] * oth_a[c * DS + d];
#endif
      dq[j] = acc;
    }
  }
  if (own) {
    const uint64_t dq_row = row_addr(p.dq, row, p.Hq, head);
    [[unroll]] for (uint j = 0; j < ND; j++) {
      const uint d = lane + TPR * j;
      if (d < D) F32(dq_row).v[d] = dq[j];
    }
  }
#endif

#if defined(ATTN_BWD_DKV)
  float dk[ND], dv[ND];
  [[unroll]] for (uint j = 0; j < ND; j++) dk[j] = 0.0, dv[j] = 0.0;
  // queries from the first owned key: earlier ones never see it
  for (uint c0 = i0; c0 <= other; c0 += BC) {
    const uint nq = min(BC, other + 1 - c0);
    for (uint h = head * group; h < (head + 1) * group; h++) {
      barrier();
#if defined(ATTN_COOPMAT)
      MAX_H(BC, p.q, p.Hq, h, c0, nq, OTH);
      MAX_H(BC, p.dout, p.Hq, h, c0, nq, OTH2);
#else
      STAGE(oth_a, BC, p.q, p.Hq, h, c0, nq);
      STAGE(oth_b, BC, p.dout, p.Hq, h, c0, nq);
#endif
      if (t < BC) {
        const uint64_t stat = 4 * (uint64_t(c0 + min(t, nq - 1)) * p.Hq + h);
        seq_t[t] = t < nq ? seq_of(c0 + t) : 0;
        lse_t[t] = F32(p.lse + stat).v[0] * LOG2E;
        delta_t[t] = F32(p.delta + stat).v[0];
      }
      barrier();
#if defined(ATTN_COOPMAT)
      STORE_H(oth_h, BC, p.q, p.Hq, h, c0, nq, OTH);
      STORE_H(oth2_h, BC, p.dout, p.Hq, h, c0, nq, OTH2);
      barrier();
      if (t == 0) tmax[OTH] = tmax[OTH2] = 0u;
      PRODUCT_NT(sco, TS, BC, D, own_h, DH, oth_h, DH);
      PRODUCT_NT(sco2, TS, BC, D, own2_h, DH, oth2_h, DH);
      barrier();
      const float qk_inv = tinv[OWN] * tinv[OTH], dp_inv = tinv[OWN2] * tinv[OTH2];
      float ds[NC], ds_max = 0.0;
#endif
      [[unroll]] for (uint k = 0; k < NC; k++) {
        const uint c = lane + TPR * k;
        float qk, dp;
#if defined(ATTN_COOPMAT)
        qk = sco[r * TS + c] * qk_inv;
        dp = sco2[r * TS + c] * dp_inv;
#else
        DOT(qk, own_a, r, oth_a, c);
        DOT(dp, own_b, r, oth_b, c);
#endif
        const bool ok = c < nq && c0 + c >= row && seq_t[c] == my_seq;
        const float w = ok ? exp2(qk * score_scale - lse_t[c]) : 0.0;
#if defined(ATTN_COOPMAT)
        ph[r * PH + c] = float16_t(w);
        ds[k] = w * (dp - delta_t[c]) * p.scale;
        ds_max = max(ds_max, abs(ds[k]));
#else
        tile_p[r * PS + c] = w;
        tile[r * PS + c] = w * (dp - delta_t[c]) * p.scale;
#endif
      }
#if defined(ATTN_COOPMAT)
      atomicMax(tmax[DSB], floatBitsToUint(ds_max));
      barrier();
      {
        float inv_;
        const float sc_ = scale_of(tmax[DSB], inv_);
        if (t == 0) tinv[DSB] = inv_;
        [[unroll]] for (uint k = 0; k < NC; k++)
          ph2[r * PH + lane + TPR * k] = float16_t(ds[k] * sc_);
      }
      barrier();
      if (t == 0) tmax[DSB] = 0u;
      PRODUCT_NN(prod, OS, D, BC, ph, PH, oth2_h, DH); // P dout
      barrier();
      [[unroll]] for (uint j = 0; j < ND; j++) {
        const uint d = lane + TPR * j;
        if (d < D) dv[j] += prod[r * OS + d] * tinv[OTH2];
      }
      barrier();
      PRODUCT_NN(prod, OS, D, BC, ph2, PH, oth_h, DH); // dS q
      barrier();
      [[unroll]] for (uint j = 0; j < ND; j++) {
        const uint d = lane + TPR * j;
        if (d < D) dk[j] += prod[r * OS + d] * (tinv[DSB] * tinv[OTH]);
      }
#else
      barrier();
      [[unroll]] for (uint j = 0; j < ND; j++) {
        const uint d = lane + TPR * j;
        if (d >= D) break;
        float a = dk[j], b = dv[j];
        [[dont_unroll]] for (uint c = 0; c < BC; c++) {
          a += tile[r * PS + c] * oth_a[c * DS + d];
          b += tile_p[r * PS + c] * oth_b[c * DS + d];
        }
        dk[j] = a, dv[j] = b;
      }
#endif
    }
  }
  if (own) {
    const uint64_t dk_row = row_addr(p.dk, row, p.Hkv, head),
                   dv_row = row_addr(p.dv, row, p.Hkv, head);
    [[unroll]] for (uint j = 0; j < ND; j++) {
      const uint d = lane + TPR * j;
      if (d < D) F32(dk_row).v[d] = dk[j], F32(dv_row).v[d] = dv[j];
    }
  }
#endif
}
