// Preference objectives over one micro-batch of N pairs (src/ops/pref.c; the C reference and the
// rules: src/ref/pref.c, docs/PREFERENCE.md "Objectives"). One workgroup:
//   1. invocation s (and s + 64, ...) sums its sequence's token losses in token order: the
//      log-prob (ORPO: the mean), the completion's token count, and all its targets' losses;
//   2. invocation i (< N) turns pair i's log-probs into the derivatives of its loss;
//   3. every invocation writes the weights of a stride of tokens.
// Each sum is one invocation's loop in a fixed order, so results are the same every run.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "buffers.glsl"

layout(local_size_x = 64) in;

layout(push_constant) uniform Push {
  uint64_t row_loss; // (T) fp32
  uint64_t tok;      // (T) int32: 2 s + 1 completion target, 2 s other target, -1 none
  uint64_t ranges;   // (2N, 2) int32: [first, end) tokens of each sequence
  uint64_t ref;      // (2N) fp32 reference log-probs, or 0
  uint64_t seq;      // (4N + 2) fp32 out
  uint64_t weights;  // (T) fp32 out, or 0
  uint T, N, kind;
  float beta, label_smoothing, pair_scale, nll_scale;
} p;

const uint SIGMOID = 0, ROBUST = 1, HINGE = 2, IPO = 3, ORPO = 4;
const uint MAX_SEQ = 512; // 2 x VKFT_PREF_MAX_PAIRS

shared float logp[MAX_SEQ], count[MAX_SEQ], nll_part[MAX_SEQ], nll_count[MAX_SEQ];
shared float weight_of[MAX_SEQ]; // d(step loss)/d(token loss) for a completion token of s

float sigmoid(float x) { return x >= 0.0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }
float expm1_(float x) { // e^x - 1 without cancellation near 0 (GLSL has no expm1)
  if (abs(x) < 1.0e-5) return x + 0.5 * x * x;
  return exp(x) - 1.0;
}
float log1mexp(float x) { // log(1 - e^x), x <= 0: TRL's two branches
  return x < -0.6931471805599453 ? log(1.0 - exp(x)) : log(-expm1_(x));
}

void main() {
  const uint lid = gl_LocalInvocationID.x, S = 2 * p.N;
  const bool orpo = p.kind == ORPO;
  for (uint s = lid; s < S; s += 64) {
    int first = I32(p.ranges + 8 * uint64_t(s)).v[0], end = I32(p.ranges + 8 * uint64_t(s) + 4).v[0];
    float sum = 0.0, n = 0.0, all = 0.0, n_all = 0.0;
    for (int t = first; t < end; t++) {
      int k = I32(p.tok + 4 * uint64_t(t)).v[0];
      if (k < 0 || uint(k) / 2 != s) continue;
      float l = F32(p.row_loss + 4 * uint64_t(t)).v[0];
      all += l;
      n_all += 1.0;
      if ((k & 1) != 0) {
        sum += l;
        n += 1.0;
      }
    }
    logp[s] = orpo ? -sum / (n > 0.0 ? n : 1.0) : -sum;
    count[s] = n;
    nll_part[s] = all;
    nll_count[s] = n_all;
    F32(p.seq + 4 * uint64_t(s)).v[0] = logp[s];
    F32(p.seq + 4 * uint64_t(S + s)).v[0] = n;
  }
  barrier();
  if (lid == 0) { // the chosen sequences' NLL, in sequence order
    float nll = 0.0, n = 0.0;
    for (uint s = 0; s < p.N; s++) {
      nll += nll_part[s];
      n += nll_count[s];
    }
    F32(p.seq + 4 * uint64_t(2 * S)).v[0] = nll;
    F32(p.seq + 4 * uint64_t(2 * S + 1)).v[0] = n;
  }
  if (p.weights == 0) return; // uniform: the whole workgroup returns

  for (uint i = lid; i < p.N; i += 64) {
    const uint c = i, r = p.N + i;
    const float n_c = count[c] > 0.0 ? count[c] : 1.0, n_r = count[r] > 0.0 ? count[r] : 1.0;
    const float ref_c = p.ref != 0 ? F32(p.ref + 4 * uint64_t(c)).v[0] : 0.0;
    const float ref_r = p.ref != 0 ? F32(p.ref + 4 * uint64_t(r)).v[0] : 0.0;
    const float beta = p.beta, ls = p.label_smoothing;
    float dc, dr;
    if (orpo) {
      float odds = (logp[c] - logp[r]) - (log1mexp(logp[c]) - log1mexp(logp[r]));
      float g = -beta * sigmoid(-odds);
      dc = g / -expm1_(logp[c]);
      dr = -g / -expm1_(logp[r]);
    } else if (p.kind == IPO) {
      float d = (logp[c] - ref_c) / n_c - (logp[r] - ref_r) / n_r;
      float g = 2.0 * (d - 1.0 / (2.0 * beta));
      dc = g / n_c;
      dr = -g / n_r;
    } else {
      float x = beta * ((logp[c] - ref_c) - (logp[r] - ref_r)), g;
      if (p.kind == ROBUST)
        g = beta * (-(1.0 - ls) * sigmoid(-x) - ls * sigmoid(x)) / (1.0 - 2.0 * ls);
      else if (p.kind == HINGE)
        g = x < 1.0 ? -beta : 0.0;
      else
        g = -beta * sigmoid(-x);
      dc = g;
      dr = -g;
    }
    weight_of[c] = -p.pair_scale * dc / (orpo ? n_c : 1.0);
    weight_of[r] = -p.pair_scale * dr / (orpo ? n_r : 1.0);
  }
  barrier();
  for (uint t = lid; t < p.T; t += 64) {
    int k = I32(p.tok + 4 * uint64_t(t)).v[0];
    float w = 0.0;
    if (k >= 0 && uint(k) / 2 < S) {
      uint s = uint(k) / 2;
      if ((k & 1) != 0) w = weight_of[s];
      if (orpo && s < p.N) w += p.nll_scale;
    }
    F32(p.weights + 4 * uint64_t(t)).v[0] = w;
  }
}
