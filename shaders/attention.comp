// Causal grouped-query attention over packed sequences, flash style (never a T x T matrix).
// Token i attends to token j iff j <= i and seq_id[j] == seq_id[i] (src/ref/attention.c).
//   ATTN_FWD:     out, lse (the log-sum-exp of the scaled scores) by online softmax.
//   ATTN_BWD_DQ:  delta = <dout, out> and dq; an invocation owns R query rows of one head.
//   ATTN_BWD_DKV: dk, dv; an invocation owns R key rows of one kv head and sums over the query
//                 rows and the group's query heads in a fixed order (no float atomics, so
//                 reruns give the same bits). Reads the delta the DQ pass wrote.
//
// Each invocation owns R consecutive rows of one head (gl_WorkGroupID.y) and walks the other
// side's rows C at a time: a step is an R x C tile of scores (a small matmul over D, one vec4
// of D per iteration) followed by an R x D update of the owned rows with C rows of V (or K,
// Q, dout). So each row loaded serves R (or C) rows of work, and the loop bodies stay small:
// CPU drivers (lavapipe) pay for every load of every lane separately and turn fully unrolled
// D x R register tiles into minutes of LLVM compile time. The R x D accumulators live in the
// invocation's own output rows (read-modify-write per step, in program order, so no
// synchronisation); they stay in cache.
// The walk covers the invocation's causal window trimmed to the tokens that share an id with
// one of its rows; the mask is applied per pair, so non-contiguous ids are still right.
// Softmax runs in base 2 (scores times scale * log2(e)).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "buffers.glsl"

layout(local_size_x_id = 2) in;

layout(push_constant) uniform Push {
  uint64_t q, k, v, seq, out_, lse, dout, dq, dk, dv, delta;
  uint T, Hq, Hkv;
  float scale;
  uint q_offset; // ATTN_FWD: query row i is position q_offset + i (KV cache); 0 otherwise
} p;

layout(constant_id = 0) const uint D = 64;     // head dimension
layout(constant_id = 1) const bool VEC = true; // D % 4 == 0 and 16-byte aligned rows
layout(constant_id = 3) const uint R = 8;      // owned rows per invocation
layout(constant_id = 4) const uint C = 8;      // other-side rows per step
const uint DV = (D + 3) / 4;                   // vec4s per row (an odd D is zero-padded)
const float LOG2E = 1.4426950408889634;
const float NEG_INF = -1.0 / 0.0;

// The c-th vec4 of the fp32 row at byte address row (zero past D).
vec4 load_row4(uint64_t row, uint c) {
  if (VEC) return load_f32x4(row + 16 * c);
  vec4 r = vec4(0.0);
  [[unroll]] for (uint t = 0; t < 4; t++)
    if (4 * c + t < D) r[t] = F32(row + 4 * (4 * c + t)).v[0];
  return r;
}

void store_row4(uint64_t row, uint c, vec4 x) {
  if (VEC) {
    uvec4 u = floatBitsToUint(x);
    U64x2(row + 16 * c).v[0] = u64vec2(packUint2x32(u.xy), packUint2x32(u.zw));
    return;
  }
  [[unroll]] for (uint t = 0; t < 4; t++)
    if (4 * c + t < D) F32(row + 4 * (4 * c + t)).v[0] = x[t];
}

// Byte address of row `token` of head `head` in a (T, heads, D) fp32 tensor.
uint64_t row_addr(uint64_t base, uint token, uint heads, uint head) {
  return base + 4 * ((uint64_t(token) * heads + head) * D);
}

int seq_of(uint token) { return I32(p.seq + 4 * uint64_t(token)).v[0]; }

void main() {
  const uint head = gl_WorkGroupID.y; // query head (FWD, DQ) or kv head (DKV)
  const uint group = p.Hq / p.Hkv;
  const uint first = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * R;
  if (first >= p.T) return; // no barriers below
  // Owned rows. Those past T shadow the last token: they compute what it computes and never
  // store, so the accumulators they read are the last token's (a valid address).
  uint rows[R];
  int seqs[R];
  bool own[R];
  [[unroll]] for (uint r = 0; r < R; r++) {
    rows[r] = min(first + r, p.T - 1);
    own[r] = first + r < p.T;
  }
  // Positions of the owned rows: queries may start at q_offset (a KV cache holds the keys of
  // every earlier position); keys and sequence ids are indexed by position.
  const uint qo = p.q_offset;
  [[unroll]] for (uint r = 0; r < R; r++) seqs[r] = seq_of(rows[r] + qo);
  const uint last = rows[R - 1] + qo;
  const float score_scale = p.scale * LOG2E;

#if defined(ATTN_FWD) || defined(ATTN_BWD_DQ)
  const uint g = head / group;
  // keys: from the first token sharing an id with an own row, up to the last own row
  uint key_lo = first + qo;
  for (uint j = 0; j < first + qo; j++) {
    int s = seq_of(j);
    bool hit = false;
    [[unroll]] for (uint r = 0; r < R; r++) hit = hit || s == seqs[r];
    if (hit) {
      key_lo = j;
      break;
    }
  }
  uint64_t q_rows[R];
  [[unroll]] for (uint r = 0; r < R; r++) q_rows[r] = row_addr(p.q, rows[r], p.Hq, head);
#endif

#if defined(ATTN_FWD)
  uint64_t o_rows[R];
  float m[R], l[R]; // running max (base-2 units) and sum of 2^(s - m)
  [[unroll]] for (uint r = 0; r < R; r++) {
    o_rows[r] = row_addr(p.out_, rows[r], p.Hq, head);
    m[r] = NEG_INF;
    l[r] = 0.0;
    if (own[r])
      [[dont_unroll]] for (uint d = 0; d < DV; d++) store_row4(o_rows[r], d, vec4(0.0));
  }
  for (uint j0 = key_lo; j0 <= last; j0 += C) {
    uint64_t k_rows[C], v_rows[C];
    float s[C][R];
    [[unroll]] for (uint c = 0; c < C; c++) {
      const uint j = min(j0 + c, last);
      k_rows[c] = row_addr(p.k, j, p.Hkv, g);
      v_rows[c] = row_addr(p.v, j, p.Hkv, g);
      [[unroll]] for (uint r = 0; r < R; r++) s[c][r] = 0.0;
    }
    [[dont_unroll]] for (uint d = 0; d < DV; d++) {
      vec4 qv[R];
      [[unroll]] for (uint r = 0; r < R; r++) qv[r] = load_row4(q_rows[r], d);
      [[unroll]] for (uint c = 0; c < C; c++) {
        const vec4 kv = load_row4(k_rows[c], d);
        [[unroll]] for (uint r = 0; r < R; r++) s[c][r] += dot(qv[r], kv);
      }
    }
    // Online softmax: one rescale of the accumulators per step. The first step holding an
    // attended key makes the max finite (every row attends to itself).
    float w[C][R], alpha[R];
    [[unroll]] for (uint c = 0; c < C; c++) {
      const int sj = seq_of(min(j0 + c, last));
      [[unroll]] for (uint r = 0; r < R; r++)
        s[c][r] = j0 + c <= rows[r] + qo && sj == seqs[r] ? s[c][r] * score_scale : NEG_INF;
    }
    [[unroll]] for (uint r = 0; r < R; r++) {
      float step_max = m[r];
      [[unroll]] for (uint c = 0; c < C; c++) step_max = max(step_max, s[c][r]);
      alpha[r] = step_max == m[r] ? 1.0 : exp2(m[r] - step_max);
      l[r] *= alpha[r];
      [[unroll]] for (uint c = 0; c < C; c++) {
        w[c][r] = s[c][r] == NEG_INF ? 0.0 : exp2(s[c][r] - step_max);
        l[r] += w[c][r];
      }
      m[r] = step_max;
    }
    [[dont_unroll]] for (uint d = 0; d < DV; d++) {
      vec4 acc[R];
      [[unroll]] for (uint r = 0; r < R; r++) acc[r] = load_row4(o_rows[r], d) * alpha[r];
      [[unroll]] for (uint c = 0; c < C; c++) {
        const vec4 vv = load_row4(v_rows[c], d);
        [[unroll]] for (uint r = 0; r < R; r++) acc[r] += w[c][r] * vv;
      }
      [[unroll]] for (uint r = 0; r < R; r++)
        if (own[r]) store_row4(o_rows[r], d, acc[r]);
    }
  }
  [[unroll]] for (uint r = 0; r < R; r++) {
    if (!own[r]) break;
    [[dont_unroll]] for (uint d = 0; d < DV; d++)
      store_row4(o_rows[r], d, load_row4(o_rows[r], d) * (1.0 / l[r]));
    F32(p.lse + 4 * (uint64_t(rows[r]) * p.Hq + head)).v[0] = (m[r] + log2(l[r])) / LOG2E;
  }
#endif

#if defined(ATTN_BWD_DQ)
  uint64_t do_rows[R], dq_rows[R];
  float delta[R], lse2[R];
  [[unroll]] for (uint r = 0; r < R; r++) {
    do_rows[r] = row_addr(p.dout, rows[r], p.Hq, head);
    dq_rows[r] = row_addr(p.dq, rows[r], p.Hq, head);
    const uint64_t o_row = row_addr(p.out_, rows[r], p.Hq, head);
    delta[r] = 0.0;
    [[dont_unroll]] for (uint d = 0; d < DV; d++) delta[r] += dot(load_row4(do_rows[r], d), load_row4(o_row, d));
    const uint64_t stat = 4 * (uint64_t(rows[r]) * p.Hq + head);
    lse2[r] = F32(p.lse + stat).v[0] * LOG2E;
    if (own[r]) {
      F32(p.delta + stat).v[0] = delta[r];
      [[dont_unroll]] for (uint d = 0; d < DV; d++) store_row4(dq_rows[r], d, vec4(0.0));
    }
  }
  for (uint j0 = key_lo; j0 <= last; j0 += C) {
    uint64_t k_rows[C], v_rows[C];
    float qk[C][R], dp[C][R];
    [[unroll]] for (uint c = 0; c < C; c++) {
      const uint j = min(j0 + c, last);
      k_rows[c] = row_addr(p.k, j, p.Hkv, g);
      v_rows[c] = row_addr(p.v, j, p.Hkv, g);
      [[unroll]] for (uint r = 0; r < R; r++) qk[c][r] = 0.0, dp[c][r] = 0.0;
    }
    [[dont_unroll]] for (uint d = 0; d < DV; d++) {
      vec4 qv[R], dov[R];
      [[unroll]] for (uint r = 0; r < R; r++) {
        qv[r] = load_row4(q_rows[r], d);
        dov[r] = load_row4(do_rows[r], d);
      }
      [[unroll]] for (uint c = 0; c < C; c++) {
        const vec4 kv = load_row4(k_rows[c], d), vv = load_row4(v_rows[c], d);
        [[unroll]] for (uint r = 0; r < R; r++) {
          qk[c][r] += dot(qv[r], kv);
          dp[c][r] += dot(dov[r], vv);
        }
      }
    }
    float ds[C][R]; // dL/ds times scale (the chain rule through s = scale <q, k>)
    [[unroll]] for (uint c = 0; c < C; c++) {
      const int sj = seq_of(min(j0 + c, last));
      [[unroll]] for (uint r = 0; r < R; r++) {
        const bool ok = j0 + c <= rows[r] && sj == seqs[r];
        const float w = ok ? exp2(qk[c][r] * score_scale - lse2[r]) : 0.0;
        ds[c][r] = w * (dp[c][r] - delta[r]) * p.scale;
      }
    }
    [[dont_unroll]] for (uint d = 0; d < DV; d++) {
      vec4 acc[R];
      [[unroll]] for (uint r = 0; r < R; r++) acc[r] = load_row4(dq_rows[r], d);
      [[unroll]] for (uint c = 0; c < C; c++) {
        const vec4 kv = load_row4(k_rows[c], d);
        [[unroll]] for (uint r = 0; r < R; r++) acc[r] += ds[c][r] * kv;
      }
      [[unroll]] for (uint r = 0; r < R; r++)
        if (own[r]) store_row4(dq_rows[r], d, acc[r]);
    }
  }
#endif

#if defined(ATTN_BWD_DKV)
  // queries: from the first own key to the last token sharing an id with an own key
  uint query_hi = last;
  for (uint i = p.T - 1; i > last; i--) {
    int s = seq_of(i);
    bool hit = false;
    [[unroll]] for (uint r = 0; r < R; r++) hit = hit || s == seqs[r];
    if (hit) {
      query_hi = i;
      break;
    }
  }
  uint64_t k_rows[R], v_rows[R], dk_rows[R], dv_rows[R];
  [[unroll]] for (uint r = 0; r < R; r++) {
    k_rows[r] = row_addr(p.k, rows[r], p.Hkv, head);
    v_rows[r] = row_addr(p.v, rows[r], p.Hkv, head);
    dk_rows[r] = row_addr(p.dk, rows[r], p.Hkv, head);
    dv_rows[r] = row_addr(p.dv, rows[r], p.Hkv, head);
    if (own[r])
      [[dont_unroll]] for (uint d = 0; d < DV; d++) {
        store_row4(dk_rows[r], d, vec4(0.0));
        store_row4(dv_rows[r], d, vec4(0.0));
      }
  }
  for (uint i0 = first; i0 <= query_hi; i0 += C) {
    int si[C];
    [[unroll]] for (uint c = 0; c < C; c++) si[c] = seq_of(min(i0 + c, query_hi));
    for (uint h = head * group; h < (head + 1) * group; h++) {
      uint64_t q_rows[C], do_rows[C];
      float qk[C][R], dp[C][R];
      [[unroll]] for (uint c = 0; c < C; c++) {
        const uint i = min(i0 + c, query_hi);
        q_rows[c] = row_addr(p.q, i, p.Hq, h);
        do_rows[c] = row_addr(p.dout, i, p.Hq, h);
        [[unroll]] for (uint r = 0; r < R; r++) qk[c][r] = 0.0, dp[c][r] = 0.0;
      }
      [[dont_unroll]] for (uint d = 0; d < DV; d++) {
        vec4 kv[R], vv[R];
        [[unroll]] for (uint r = 0; r < R; r++) {
          kv[r] = load_row4(k_rows[r], d);
          vv[r] = load_row4(v_rows[r], d);
        }
        [[unroll]] for (uint c = 0; c < C; c++) {
          const vec4 qv = load_row4(q_rows[c], d), dov = load_row4(do_rows[c], d);
          [[unroll]] for (uint r = 0; r < R; r++) {
            qk[c][r] += dot(kv[r], qv);
            dp[c][r] += dot(vv[r], dov);
          }
        }
      }
      float w[C][R], ds[C][R];
      [[unroll]] for (uint c = 0; c < C; c++) {
        const uint64_t stat = 4 * (uint64_t(min(i0 + c, query_hi)) * p.Hq + h);
        const float lse2 = F32(p.lse + stat).v[0] * LOG2E, delta = F32(p.delta + stat).v[0];
        [[unroll]] for (uint r = 0; r < R; r++) {
          const bool ok = i0 + c <= query_hi && i0 + c >= rows[r] && si[c] == seqs[r];
          w[c][r] = ok ? exp2(qk[c][r] * score_scale - lse2) : 0.0;
          ds[c][r] = w[c][r] * (dp[c][r] - delta) * p.scale;
        }
      }
      // two passes over D (dk, then dv): half the live accumulators in each
      [[dont_unroll]] for (uint d = 0; d < DV; d++) {
        vec4 acc[R];
        [[unroll]] for (uint r = 0; r < R; r++) acc[r] = load_row4(dk_rows[r], d);
        [[unroll]] for (uint c = 0; c < C; c++) {
          const vec4 qv = load_row4(q_rows[c], d);
          [[unroll]] for (uint r = 0; r < R; r++) acc[r] += ds[c][r] * qv;
        }
        [[unroll]] for (uint r = 0; r < R; r++)
          if (own[r]) store_row4(dk_rows[r], d, acc[r]);
      }
      [[dont_unroll]] for (uint d = 0; d < DV; d++) {
        vec4 acc[R];
        [[unroll]] for (uint r = 0; r < R; r++) acc[r] = load_row4(dv_rows[r], d);
        [[unroll]] for (uint c = 0; c < C; c++) {
          const vec4 dov = load_row4(do_rows[c], d);
          [[unroll]] for (uint r = 0; r < R; r++) acc[r] += w[c][r] * dov;
        }
        [[unroll]] for (uint r = 0; r < R; r++)
          if (own[r]) store_row4(dv_rows[r], d, acc[r]);
      }
    }
  }
#endif
}
