// Token embedding lookup and its backward (reference: src/ref/embedding.c). One invocation
// per (token or distinct id, 4 columns) with 64-bit vector loads when C % 4 == 0 and the rows
// are aligned, else per (token or id, column).
//   EMBEDDING_FWD  out[t, :] = table[ids[t], :], table stored as W_F32 / W_F16 / W_BF16; an id
//                  outside [0, V) reads nothing and writes NaN (the host validates ids; this
//                  only keeps a bad id from reading outside the table)
//   EMBEDDING_BWD  dtable[id, :] += dout[t, :] for the tokens t of each distinct id, summed by
//                  one invocation in increasing t, from the host-built plan
//                  (vkft_embedding_plan: order[T] | ids[T] | starts[T + 1]): fixed order, no
//                  atomics, the same bits as the fp32 reference
#version 450
#extension GL_GOOGLE_include_directive : require
#include "dtype.glsl"
#include "grid.glsl"

layout(local_size_x = 64) in;

layout(push_constant) uniform Push {
  uint64_t src, index, dst; // forward: table, ids, out; backward: dout, plan, dtable
  uint T, C;
  uint rows; // forward: V; backward: number of distinct ids
  uint vec;
} p;

void main() {
  uint width = p.vec != 0u ? 4u : 1u;
  uint chunks = p.C / width;
  uint g = group_linear() * 64u + gl_LocalInvocationID.x;
#if defined(EMBEDDING_FWD)
  if (g >= p.T * chunks) return;
  uint t = g / chunks, c0 = (g % chunks) * width;
  int id = I32(p.index + 4ul * t).v[0];
  uint64_t out_at = uint64_t(t) * p.C + c0;
  if (id < 0 || uint(id) >= p.rows) {
    for (uint k = 0u; k < width; k++) F32(p.dst + 4ul * (out_at + k)).v[0] = uintBitsToFloat(0x7fc00000u);
    return;
  }
  uint64_t at = uint64_t(id) * p.C + c0;
  if (p.vec != 0u)
    store_f32x4(p.dst + 4ul * out_at, load_w4(p.src, at));
  else
    F32(p.dst + 4ul * out_at).v[0] = load_w(p.src, at);
#else
  if (g >= p.rows * chunks) return;
  uint u = g / chunks, c0 = (g % chunks) * width;
  uint id = uint(I32(p.index + 4ul * (p.T + u)).v[0]);
  uint first = uint(I32(p.index + 4ul * (2u * p.T + u)).v[0]);
  uint last = uint(I32(p.index + 4ul * (2u * p.T + u + 1u)).v[0]);
  uint64_t at = uint64_t(id) * p.C + c0;
  if (p.vec != 0u) {
    vec4 acc = load_f32x4(p.dst + 4ul * at);
    for (uint k = first; k < last; k++) {
      uint t = uint(I32(p.index + 4ul * k).v[0]);
      acc += load_f32x4(p.src + 4ul * (uint64_t(t) * p.C + c0));
    }
    store_f32x4(p.dst + 4ul * at, acc);
  } else {
    float acc = F32(p.dst + 4ul * at).v[0];
    for (uint k = first; k < last; k++) {
      uint t = uint(I32(p.index + 4ul * k).v[0]);
      acc += F32(p.src + 4ul * (uint64_t(t) * p.C + c0)).v[0];
    }
    F32(p.dst + 4ul * at).v[0] = acc;
  }
#endif
}
