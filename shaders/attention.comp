// Causal grouped-query attention over packed sequences, flash style (never a T x T matrix).
// Token i attends to token j iff j <= i and seq_id[j] == seq_id[i] (src/ref/attention.c).
//   ATTN_FWD:     out, lse (the log-sum-exp of the scaled scores) by online softmax.
//   ATTN_BWD_DQ:  delta = <dout, out> and dq; one invocation owns one query row of one head.
//   ATTN_BWD_DKV: dk, dv; one invocation owns one key row of one kv head and sums over the
//                 query rows and the group's query heads in a fixed order (no float atomics,
//                 so reruns give the same bits). Reads the delta the DQ pass wrote.
// A workgroup is WG consecutive rows of one head (gl_WorkGroupID.y). Every invocation keeps
// its row's D-vectors and accumulators in registers, and the loop over the other side's rows
// is uniform across the workgroup: all invocations read the same key (or query) row at the same
// time, the pattern CPU drivers (lavapipe) run fastest, since each lane otherwise pays for its
// own loads. The loop range is the workgroup's causal window, trimmed to the rows that share a
// sequence id with one of its rows; the mask is applied per pair, so non-contiguous ids are
// still right (only slower).
// Softmax runs in base 2: scores are scaled by scale * log2(e) once, in the registers.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 2) in;

layout(push_constant) uniform Push {
  uint64_t q, k, v, seq, out_, lse, dout, dq, dk, dv, delta;
  uint T, Hq, Hkv;
  float scale;
} p;

layout(constant_id = 0) const uint D = 64;      // head dimension
layout(constant_id = 1) const bool VEC = true; // D % 4 == 0 and 16-byte aligned rows
const uint WG = gl_WorkGroupSize.x;
const uint DV = (D + 3) / 4; // vec4s per row (the tail of an odd D is zero-padded)
const float LOG2E = 1.4426950408889634;

// The c-th vec4 of the fp32 row at byte address row (zero past D).
vec4 load_row4(uint64_t row, uint c) {
  if (VEC) return load_f32x4(row + 16 * c);
  vec4 r = vec4(0.0);
  for (uint t = 0; t < 4; t++)
    if (4 * c + t < D) r[t] = F32(row + 4 * (4 * c + t)).v[0];
  return r;
}

void store_row(uint64_t row, vec4 x[DV], float mul) {
  for (uint c = 0; c < DV; c++)
    for (uint t = 0; t < 4; t++)
      if (4 * c + t < D) F32(row + 4 * (4 * c + t)).v[0] = x[c][t] * mul;
}

// Byte address of row `token` of head `head` in a (T, heads, D) fp32 tensor.
uint64_t row_addr(uint64_t base, uint token, uint heads, uint head) {
  return base + 4 * ((uint64_t(token) * heads + head) * D);
}

int seq_of(uint token) { return I32(p.seq + 4 * uint64_t(token)).v[0]; }

float dot_row(vec4 x[DV], uint64_t row) {
  float s = 0.0;
  for (uint c = 0; c < DV; c++) s += dot(x[c], load_row4(row, c));
  return s;
}

shared uint window_shared;

// The uniform loop bound of the workgroup: the min (forward side) or max (key side) over its
// invocations of `mine`, through one shared word (integer min/max is order-independent).
uint workgroup_min(uint mine) {
  if (gl_LocalInvocationID.x == 0) window_shared = 0xffffffffu;
  barrier();
  atomicMin(window_shared, mine);
  barrier();
  return window_shared;
}
uint workgroup_max(uint mine) {
  if (gl_LocalInvocationID.x == 0) window_shared = 0u;
  barrier();
  atomicMax(window_shared, mine);
  barrier();
  return window_shared;
}

void main() {
  const uint head = gl_WorkGroupID.y; // query head (FWD, DQ) or kv head (DKV)
  const uint group = p.Hq / p.Hkv;
  const uint first_row = gl_WorkGroupID.x * WG;
  const uint last_row = min(first_row + WG, p.T) - 1;
  const uint me = first_row + gl_LocalInvocationID.x;
  const bool in_range = me < p.T;
  const uint row = min(me, p.T - 1); // idle invocations shadow the last row and write nothing
  const int my_seq = seq_of(row);

#if defined(ATTN_FWD) || defined(ATTN_BWD_DQ)
  const uint g = head / group;
  // keys: from the first token of any of the workgroup's sequences up to its last row
  uint first_key = row;
  for (uint j = 0; j < row; j++)
    if (seq_of(j) == my_seq) {
      first_key = j;
      break;
    }
  const uint key_lo = workgroup_min(first_key), key_hi = last_row;

  vec4 qr[DV], acc[DV];
  const uint64_t q_row = row_addr(p.q, row, p.Hq, head);
  for (uint c = 0; c < DV; c++) {
    qr[c] = load_row4(q_row, c) * (p.scale * LOG2E);
    acc[c] = vec4(0.0);
  }
#endif

#if defined(ATTN_FWD)
  // Online softmax over chunks of KC keys: one rescale of the accumulators per chunk.
  const uint KC = 8;
  float m = -1.0 / 0.0, l = 0.0; // running max (base-2 units) and sum of 2^(s - m)
  for (uint j0 = key_lo; j0 <= key_hi; j0 += KC) {
    float s[KC];
    float chunk_max = m;
    for (uint c = 0; c < KC; c++) {
      uint j = min(j0 + c, key_hi);
      bool ok = j0 + c <= row && seq_of(j) == my_seq;
      s[c] = ok ? dot_row(qr, row_addr(p.k, j, p.Hkv, g)) : -1.0 / 0.0;
      chunk_max = max(chunk_max, s[c]);
    }
    // every row attends to itself, so chunk_max is finite once the row has seen a key
    float alpha = chunk_max == m ? 1.0 : exp2(m - chunk_max);
    l *= alpha;
    for (uint d = 0; d < DV; d++) acc[d] *= alpha;
    for (uint c = 0; c < KC; c++) {
      float w = s[c] == -1.0 / 0.0 ? 0.0 : exp2(s[c] - chunk_max);
      l += w;
      uint64_t v_row = row_addr(p.v, min(j0 + c, key_hi), p.Hkv, g);
      for (uint d = 0; d < DV; d++) acc[d] += w * load_row4(v_row, d);
    }
    m = chunk_max;
  }
  if (in_range) {
    store_row(row_addr(p.out_, row, p.Hq, head), acc, 1.0 / l);
    F32(p.lse + 4 * (uint64_t(row) * p.Hq + head)).v[0] = (m + log2(l)) / LOG2E;
  }
#endif

#if defined(ATTN_BWD_DQ)
  vec4 dor[DV];
  const uint64_t do_row = row_addr(p.dout, row, p.Hq, head);
  const uint64_t o_row = row_addr(p.out_, row, p.Hq, head);
  float delta = 0.0;
  for (uint c = 0; c < DV; c++) {
    dor[c] = load_row4(do_row, c);
    delta += dot(dor[c], load_row4(o_row, c));
  }
  const uint64_t stat = 4 * (uint64_t(row) * p.Hq + head);
  const float lse2 = F32(p.lse + stat).v[0] * LOG2E;
  if (in_range) F32(p.delta + stat).v[0] = delta;
  for (uint j = key_lo; j <= key_hi; j++) {
    bool ok = j <= row && seq_of(j) == my_seq;
    uint64_t k_row = row_addr(p.k, j, p.Hkv, g);
    float w = ok ? exp2(dot_row(qr, k_row) - lse2) : 0.0;
    float ds = w * (dot_row(dor, row_addr(p.v, j, p.Hkv, g)) - delta);
    for (uint c = 0; c < DV; c++) acc[c] += ds * load_row4(k_row, c);
  }
  if (in_range) store_row(row_addr(p.dq, row, p.Hq, head), acc, p.scale);
#endif

#if defined(ATTN_BWD_DKV)
  // queries: from the workgroup's first key to the last token of any of its sequences
  uint last_query = row;
  for (uint i = p.T - 1; i > row; i--)
    if (seq_of(i) == my_seq) {
      last_query = i;
      break;
    }
  const uint query_lo = first_row, query_hi = workgroup_max(last_query);

  vec4 kr[DV], vr[DV], dk[DV], dv[DV];
  const uint64_t k_row = row_addr(p.k, row, p.Hkv, head);
  const uint64_t v_row = row_addr(p.v, row, p.Hkv, head);
  for (uint c = 0; c < DV; c++) {
    kr[c] = load_row4(k_row, c) * (p.scale * LOG2E);
    vr[c] = load_row4(v_row, c);
    dk[c] = vec4(0.0);
    dv[c] = vec4(0.0);
  }
  for (uint i = query_lo; i <= query_hi; i++) {
    bool ok = i >= row && seq_of(i) == my_seq;
    for (uint h = head * group; h < (head + 1) * group; h++) {
      const uint64_t stat = 4 * (uint64_t(i) * p.Hq + h);
      const uint64_t q_row = row_addr(p.q, i, p.Hq, h), do_row = row_addr(p.dout, i, p.Hq, h);
      float w = ok ? exp2(dot_row(kr, q_row) - F32(p.lse + stat).v[0] * LOG2E) : 0.0;
      float ds = w * (dot_row(vr, do_row) - F32(p.delta + stat).v[0]);
      for (uint c = 0; c < DV; c++) {
        dv[c] += w * load_row4(do_row, c);
        dk[c] += ds * load_row4(q_row, c);
      }
    }
  }
  if (in_range) {
    store_row(row_addr(p.dk, row, p.Hkv, head), dk, p.scale);
    store_row(row_addr(p.dv, row, p.Hkv, head), dv, 1.0);
  }
#endif
}
