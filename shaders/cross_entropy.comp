// The row-wise parts of the chunked LM-head cross-entropy (src/ops/cross_entropy.c); the
// logits of a vocabulary chunk, (T, vc) fp32 with row stride vc, come from the tiled matmul.
//   CE_STATS: merge the chunk into each row's running max m and sum of exp(logit - m) (online
//             softmax) and pick the label's logit z when the label lies in the chunk.
//   CE_GRAD:  overwrite the chunk's logits with dlogits = (softmax - onehot) * scale (times the
//             row's weight when row_weight is given), 0 for rows not trained.
//   CE_LOSS:  one workgroup: loss = sum over trained rows of (m + log s - z) and their count, in
//             a fixed order (deterministic); each row's loss too when row_loss is given.
// One workgroup per row for STATS and GRAD: neighbouring invocations read neighbouring 16-byte
// words of the row (what CPU drivers vectorise), and the reductions go through shared memory in
// a fixed tree (reduce.glsl), so results are bit-identical run to run and independent of the
// subgroup size.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "buffers.glsl"
#include "reduce.glsl"

layout(local_size_x = 64) in;

layout(push_constant) uniform Push {
  uint64_t logits; // (T, vc) chunk of logits (STATS, GRAD)
  uint64_t stats;  // m (T), s (T), z (T)
  uint64_t labels; // (T) int32
  uint64_t loss;   // fp32 [2] (LOSS)
  uint64_t row_loss;   // (T) fp32 or 0: each row's loss (LOSS)
  uint64_t row_weight; // (T) fp32 or 0: each row's gradient weight (GRAD)
  uint T, V, vc, v0;
  uint first; // STATS: first chunk (no running values yet)
  float scale;
  uint aligned; // the logits start 16-byte aligned
} p;

const uint WG = REDUCE_SIZE;
const uint ROWS_PER_Y = 32768; // rows are laid out over (x, y) workgroups: x < 65535 anywhere

bool is_trained(int label) { return label >= 0 && uint(label) < p.V; }

#if defined(CE_STATS) || defined(CE_GRAD)
void main() {
  const uint row = gl_WorkGroupID.y * ROWS_PER_Y + gl_WorkGroupID.x;
  if (row >= p.T) return; // uniform over the workgroup: no barrier is skipped by a part of it
  const uint lid = gl_LocalInvocationID.x;
  const uint64_t base = p.logits + 4 * uint64_t(row) * p.vc;
  // 16-byte words when rows are 16-byte aligned (aligned start, vc % 4 == 0), else single values
  const bool vec = p.aligned != 0 && (p.vc % 4) == 0;
  const uint step = vec ? 4 * WG : WG;
  const uint j0 = vec ? 4 * lid : lid;
  const int label = I32(p.labels + 4 * uint64_t(row)).v[0];
  F32 m_ref = F32(p.stats + 4 * uint64_t(row));
  F32 s_ref = F32(p.stats + 4 * (uint64_t(p.T) + row));
  F32 z_ref = F32(p.stats + 4 * (2 * uint64_t(p.T) + row));

#if defined(CE_STATS)
  float mx = -3.0e38;
  for (uint j = j0; j < p.vc; j += step) {
    if (vec) {
      vec4 x = load_f32x4(base + 4 * j);
      mx = max(mx, max(max(x.x, x.y), max(x.z, x.w)));
    } else {
      mx = max(mx, F32(base + 4 * j).v[0]);
    }
  }
  mx = reduce_max(mx);
  float sum = 0.0;
  for (uint j = j0; j < p.vc; j += step) {
    if (vec) {
      vec4 e = exp(load_f32x4(base + 4 * j) - mx);
      sum += (e.x + e.y) + (e.z + e.w);
    } else {
      sum += exp(F32(base + 4 * j).v[0] - mx);
    }
  }
  sum = reduce_sum(sum);
  if (lid == 0) {
    float m = mx, s = sum;
    if (p.first == 0) { // merge with the running values of the earlier chunks
      float m_old = m_ref.v[0], s_old = s_ref.v[0];
      m = max(m_old, mx);
      s = s_old * exp(m_old - m) + sum * exp(mx - m);
    }
    m_ref.v[0] = m;
    s_ref.v[0] = s;
    if (label >= int(p.v0) && uint(label) < p.v0 + p.vc && is_trained(label))
      z_ref.v[0] = F32(base + 4 * uint64_t(uint(label) - p.v0)).v[0];
  }
#else // CE_GRAD
  const bool trained = is_trained(label);
  const float lse = trained ? m_ref.v[0] + log(s_ref.v[0]) : 0.0;
  const float weight = p.row_weight != 0 ? F32(p.row_weight + 4 * uint64_t(row)).v[0] : 1.0;
  // the label's column in this chunk, or none (a trained label elsewhere, or not trained)
  const uint hot = trained && uint(label) >= p.v0 ? uint(label) - p.v0 : 0xffffffffu;
  for (uint j = j0; j < p.vc; j += step) {
    if (vec) {
      vec4 d = vec4(0.0);
      if (trained) {
        d = exp(load_f32x4(base + 4 * j) - lse);
        for (uint q = 0; q < 4; q++)
          if (j + q == hot) d[q] -= 1.0;
        d *= p.scale;
        if (p.row_weight != 0) d *= weight;
      }
      F32x4(base + 4 * j).v[0] = d;
    } else {
      float d = 0.0;
      if (trained) {
        d = exp(F32(base + 4 * j).v[0] - lse);
        if (j == hot) d -= 1.0;
        d *= p.scale;
        if (p.row_weight != 0) d *= weight;
      }
      F32(base + 4 * j).v[0] = d;
    }
  }
#endif
}
#endif

#if defined(CE_LOSS)
void main() {
  const uint lid = gl_LocalInvocationID.x;
  float sum = 0.0, count = 0.0;
  for (uint t = lid; t < p.T; t += WG) {
    int label = I32(p.labels + 4 * uint64_t(t)).v[0];
    float l = 0.0;
    if (is_trained(label)) {
      float m = F32(p.stats + 4 * uint64_t(t)).v[0];
      float s = F32(p.stats + 4 * (uint64_t(p.T) + t)).v[0];
      float z = F32(p.stats + 4 * (2 * uint64_t(p.T) + t)).v[0];
      l = (m - z) + log(s);
      sum += l;
      count += 1.0;
    }
    if (p.row_loss != 0) F32(p.row_loss + 4 * uint64_t(t)).v[0] = l;
  }
  sum = reduce_sum(sum);
  count = reduce_sum(count);
  if (lid == 0) {
    F32(p.loss).v[0] = sum;
    F32(p.loss + 4).v[0] = count;
  }
}
#endif
