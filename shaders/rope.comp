// RoPE in the Hugging Face rotate_half layout (reference: src/ref/rope.c): in each head of D
// values, the pair (i, i + D/2) is rotated by angle = pos * inv_freq[i]; `inverse` rotates by
// -angle (the backward). One invocation owns one or four (vec) frequencies of one token and
// walks the H heads, so each cos/sin is computed once per token and frequency.
//
// Precision: the angle is never formed in fp32 (pos * inv_freq reaches 1e5 radians, where an
// fp32 angle is off by up to 4e-3). The host gives each frequency's rotation per position as
// a 64-bit fixed-point fraction of a turn; pos * turns in 64-bit integers wraps exactly modulo
// one turn, the top bits give the quadrant and the next 40 the remainder, and cos/sin of a
// remainder in [-pi/4, pi/4] are short polynomials (Cephes sinf/cosf): |error| < ~3e-7 at any
// position, with no reliance on the driver's sin/cos (Vulkan only bounds them on [-pi, pi]).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "buffers.glsl"
#include "grid.glsl"

layout(local_size_x = 64) in;

layout(push_constant) uniform Push {
  uint64_t x, out_, pos, turns; // turns: (D/2) uint64 as pairs of 32-bit words
  uint T, H, D;
  uint inverse;
  uint vec; // 1: D % 8 == 0 and x, out 16-byte aligned: four frequencies per invocation
} p;

// cos and sin of the angles (pi/2) * q + r, r in [-pi/4, pi/4]
void cos_sin(vec4 r, uvec4 q, out vec4 c, out vec4 s) {
  vec4 z = r * r;
  vec4 sr = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
  vec4 cr = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z -
            0.5 * z + 1.0;
  for (uint k = 0u; k < 4u; k++) {
    uint qk = q[k] & 3u;
    c[k] = qk == 0u ? cr[k] : qk == 1u ? -sr[k] : qk == 2u ? -cr[k] : sr[k];
    s[k] = qk == 0u ? sr[k] : qk == 1u ? cr[k] : qk == 2u ? -sr[k] : -cr[k];
  }
}

void main() {
  uint width = p.vec != 0u ? 4u : 1u;
  uint half_ = p.D / 2u;
  uint per_token = half_ / width;
  uint g = group_linear() * 64u + gl_LocalInvocationID.x;
  if (g >= p.T * per_token) return;
  uint t = g / per_token, i0 = (g % per_token) * width;
  uint64_t pos = uint64_t(int64_t(I32(p.pos + 4ul * t).v[0])); // two's complement: exact mod 2^64

  vec4 r = vec4(0.0);
  uvec4 q = uvec4(0u);
  for (uint k = 0u; k < width; k++) {
    U32 w = U32(p.turns + 8ul * (i0 + k));
    uint64_t turns = packUint2x32(uvec2(w.v[0], w.v[1]));
    // phase in turns * 2^64, shifted by 1/8 turn so the quadrant q = round(4 * turns)
    uint64_t phase = pos * turns + (1ul << 61);
    q[k] = uint(phase >> 62);
    int64_t rem = int64_t((phase << 2) >> 24) - (int64_t(1) << 39); // quarter turns * 2^40
    r[k] = float(rem) * (1.5707963267948966 / 1099511627776.0);
  }
  vec4 c, s;
  cos_sin(r, q, c, s);
  if (p.inverse != 0u) s = -s;

  for (uint h = 0u; h < p.H; h++) {
    uint64_t at = (uint64_t(t) * p.H + h) * p.D + i0;
    if (p.vec != 0u) {
      vec4 a = load_f32x4(p.x + 4ul * at), b = load_f32x4(p.x + 4ul * (at + half_));
      store_f32x4(p.out_ + 4ul * at, a * c - b * s);
      store_f32x4(p.out_ + 4ul * (at + half_), b * c + a * s);
    } else {
      float a = F32(p.x + 4ul * at).v[0], b = F32(p.x + 4ul * (at + half_)).v[0];
      F32(p.out_ + 4ul * at).v[0] = a * c.x - b * s.x;
      F32(p.out_ + 4ul * (at + half_)).v[0] = b * c.x + a * s.x;
    }
  }
}
