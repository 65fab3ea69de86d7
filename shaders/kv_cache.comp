// The KV cache of batched generation (reference: src/ref/kv_cache.c). The cache is R rows of
// (Hkv, D) fp32; each sequence being generated owns a run of rows, one per position.
//   KV_STORE     cache[rows[t], :] = x[t, :]: one invocation per (token, 4 values), vector
//                loads and stores when every row is 16-byte aligned.
//   ATTN_DECODE  out[t, h, :] = softmax(scale q[t, h] . k[rows[t] - pos[t] .. rows[t]]) v[...]:
//                one workgroup per (query, head), whose 64 invocations walk the query's keys 64
//                at a time (flash decoding inside a workgroup): each invocation scores one key,
//                the block's maximum rescales the running sums (online softmax), then each
//                invocation adds the block's weighted values into the D/4 vec4s of the output
//                it owns. A decode step has few queries and long key runs, so the keys, not
//                the queries, are spread over the invocations (the training kernel,
//                attention.comp, does the opposite). The block layout starts at the query's
//                first key and every sum runs in a fixed order, so a query's result does not
//                depend on the other queries of the batch (batched generation gives the same
//                bits as one sequence at a time).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "buffers.glsl"
#include "grid.glsl"

layout(local_size_x = 64) in;

layout(push_constant) uniform Push {
  uint64_t q, k, v, rows, pos, out_; // KV_STORE: x = q, cache = out_
  uint T, Hq, Hkv, W;                // KV_STORE: W values per row
  float scale;
  uint vec; // KV_STORE: every row 16-byte aligned
} p;

layout(constant_id = 0) const uint D = 64;     // head dimension (ATTN_DECODE)
layout(constant_id = 1) const bool VEC = true; // D % 4 == 0 and 16-byte aligned rows
const uint WG = 64;
const uint DV = (D + 3) / 4;        // vec4s per row (an odd D is zero-padded)
const uint NC = (DV + WG - 1) / WG; // output vec4s an invocation owns
const float LOG2E = 1.4426950408889634;
const float NEG_INF = -1.0 / 0.0;

int rows_at(uint t) { return I32(p.rows + 4ul * t).v[0]; }

#if defined(KV_STORE)
void main() {
  const uint width = p.vec != 0u ? 4u : 1u, chunks = p.W / width;
  const uint g = group_linear() * WG + gl_LocalInvocationID.x;
  if (g >= p.T * chunks) return;
  const uint t = g / chunks, c0 = (g % chunks) * width;
  const uint64_t from = uint64_t(t) * p.W + c0, to = uint64_t(rows_at(t)) * p.W + c0;
  if (p.vec != 0u)
    store_f32x4(p.out_ + 4ul * to, load_f32x4(p.q + 4ul * from));
  else
    F32(p.out_ + 4ul * to).v[0] = F32(p.q + 4ul * from).v[0];
}
#endif

#if defined(ATTN_DECODE)
shared float block_score[WG], block_weight[WG];

// The c-th vec4 of the fp32 row at byte address row (zero past D).
vec4 load_row4(uint64_t row, uint c) {
  if (VEC) return load_f32x4(row + 16 * c);
  vec4 r = vec4(0.0);
  [[unroll]] for (uint i = 0; i < 4; i++)
    if (4 * c + i < D) r[i] = F32(row + 4 * (4 * c + i)).v[0];
  return r;
}

void main() {
  const uint t = gl_WorkGroupID.x, h = gl_WorkGroupID.y, lane = gl_LocalInvocationID.x;
  const uint g = h / (p.Hq / p.Hkv);
  const uint last = uint(rows_at(t)), first = last - uint(I32(p.pos + 4ul * t).v[0]);
  const uint64_t q_row = p.q + 4ul * (uint64_t(t) * p.Hq + h) * D;
  const float score_scale = p.scale * LOG2E; // softmax in base 2
  float m = NEG_INF, l = 0.0;                // running max and sum of 2^(s - m)
  vec4 acc[NC];
  [[unroll]] for (uint n = 0; n < NC; n++) acc[n] = vec4(0.0);
  // every invocation runs the same number of blocks: the barriers are in uniform control flow
  for (uint j0 = first; j0 <= last; j0 += WG) {
    const uint j = j0 + lane;
    float s = NEG_INF;
    if (j <= last) {
      const uint64_t k_row = p.k + 4ul * (uint64_t(j) * p.Hkv + g) * D;
      float dot_qk = 0.0;
      [[dont_unroll]] for (uint c = 0; c < DV; c++)
        dot_qk += dot(load_row4(q_row, c), load_row4(k_row, c));
      s = dot_qk * score_scale;
    }
    block_score[lane] = s;
    barrier();
    float block_max = m; // the same value in every invocation (same reads, same order)
    for (uint i = 0; i < WG; i++) block_max = max(block_max, block_score[i]);
    // the block's first key is always attended, so block_max is finite from the first block
    const float alpha = exp2(m - block_max);
    block_weight[lane] = s == NEG_INF ? 0.0 : exp2(s - block_max);
    barrier();
    const uint count = min(WG, last - j0 + 1);
    float block_sum = 0.0;
    for (uint i = 0; i < count; i++) block_sum += block_weight[i];
    l = l * alpha + block_sum;
    [[unroll]] for (uint n = 0; n < NC; n++) {
      const uint c = lane + n * WG;
      if (c >= DV) break;
      vec4 a = acc[n] * alpha;
      for (uint i = 0; i < count; i++)
        a += block_weight[i] * load_row4(p.v + 4ul * (uint64_t(j0 + i) * p.Hkv + g) * D, c);
      acc[n] = a;
    }
    m = block_max;
    barrier(); // the next block overwrites the shared scores
  }
  const uint64_t o_row = p.out_ + 4ul * (uint64_t(t) * p.Hq + h) * D;
  [[unroll]] for (uint n = 0; n < NC; n++) {
    const uint c = lane + n * WG;
    if (c >= DV) break;
    const vec4 o = acc[n] * (1.0 / l);
    if (VEC) {
      store_f32x4(o_row + 16 * c, o);
    } else {
      [[unroll]] for (uint i = 0; i < 4; i++)
        if (4 * c + i < D) F32(o_row + 4 * (4 * c + i)).v[0] = o[i];
    }
  }
}
#endif
