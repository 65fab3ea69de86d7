/* Op-table family "rope" / "rope_bwd": packed sequences (positions restart at 0), Llama-3
 * frequency scaling, large positions (up to 131071), in place; against the double reference.
 * Tolerance: each output a*c - b*s (or b*c + a*s) is measured against |a| + |b|. The device's
 * cos/sin are within ~4 u of the exact values at any position (exact integer phase, 40-bit
 * remainder rounded to fp32, fp32 pi/2, polynomials of ~1 ulp; see shaders/rope.comp), and the
 * two products and the sum add 3 u: 10 u leaves a little room. The fp32 reference takes cos/sin
 * in double and rounds them, well inside that. */
#include "case.h"

enum { X, OUT, POS, FREQS };
enum { LLAMA3 = 1, LARGE_POS = 2, IN_PLACE = 4 }; /* d[3] */

typedef struct rope_params {
  int64_t T, H, D;
  int bwd, in_place;
} rope_params;

/* Packed sequences of random lengths, each restarting at 0 (or at a large position). */
static void positions(case_rng *rng, int32_t *pos, int64_t T, int large) {
  int32_t next = 0;
  for (int64_t t = 0; t < T; t++) {
    if (case_uniform(rng, 0, 1) < 4.0 / (double)(T + 3))
      next = large ? (int32_t)case_uniform(rng, 8000, 131000) : 0;
    if (t == 0 && large) next = 8191;
    pos[t] = next++;
  }
  if (large) pos[T - 1] = 131071;
}

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  rope_params *p = CASE_PARAMS(oc, rope_params);
  if (!p) return VKFT_ERR;
  int flags = (int)c->d[3];
  *p = (rope_params){c->d[0], c->d[1], c->d[2], oc->variant == 1, (flags & IN_PLACE) != 0};
  int64_t T = p->T, H = p->H, D = p->D, n = T * H * D, half = D / 2;
  case_shape(oc, "%lldx%lldx%lld%s%s%s", (long long)T, (long long)H, (long long)D,
             flags & LLAMA3 ? " llama3" : "", flags & LARGE_POS ? " pos>8k" : "",
             p->in_place ? " in place" : "");
  double *x = case_random(oc, X, "x", VKFT_F32, n, p->in_place ? CASE_OUT : CASE_IN, -1, 1);
  if (!p->in_place) case_poisoned(oc, OUT, "out", n);
  int32_t *pos = case_tensor_new(oc, POS, "pos", VKFT_I32, T, CASE_IN);
  int32_t *freqs = case_tensor_new(oc, FREQS, "freqs", VKFT_I32, vkft_rope_freqs_len(D), CASE_IN);
  double *want = CASE_NEW(oc, double, n), *scale = CASE_NEW(oc, double, n);
  if (oc->failed) return VKFT_ERR;
  vkft_rope_config cfg = {.theta = 10000};
  if (flags & LLAMA3)
    cfg = (vkft_rope_config){.theta = 500000,
                             .llama3 = 1,
                             .factor = 32,
                             .low_freq_factor = 1,
                             .high_freq_factor = 4,
                             .original_max_position_embeddings = 8192};
  if (vkft_rope_freqs(&cfg, D, freqs)) return VKFT_ERR;
  positions(&oc->rng, pos, T, flags & LARGE_POS);
  vkft_ref_rope_f64(x, want, pos, (const float *)(freqs + 2 * half), T, H, D, p->bwd);
  for (int64_t i = 0; i < n; i++)
    scale[i] = fabs(x[i]) + fabs(x[i % D < half ? i + half : i - half]);
  case_expect(oc, p->in_place ? X : OUT, want, scale, 10 * CASE_U);
  oc->bytes = 8.0 * n;
  return case_status(oc);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const rope_params *p = oc->params;
  vkft_tensor *out = &t[p->in_place ? X : OUT];
  return (p->bwd ? vkft_rope_bwd : vkft_rope)(be, &t[X], out, &t[POS], &t[FREQS], p->T, p->H, p->D);
}

const case_family case_rope = {{"rope", "rope_bwd"}, setup, record};
