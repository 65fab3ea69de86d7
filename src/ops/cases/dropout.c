/* Op-table family "dropout": the output against the fp32 reference, bit for bit (the mask is
 * the same integer hash on both sides and x * scale is one correctly rounded multiply), and the
 * dropped share of the reference against p. The backward is the same op (same seed and stream,
 * same mask).
 * Its variant "uniform_noise" (NEFTune): bit for bit too (the hash, an exact 2u - 1, then one
 * multiply and one add, never fused), and the reference's noise checked by hand: within
 * [-m, m), mean 0 and variance m^2/3 (a uniform distribution's) within 6 standard errors. */
#include "case.h"

#include <string.h>

enum { X, OUT };
enum { SEED = 1234, STREAM = 7 };

typedef struct dropout_params {
  int64_t n;
  double p;        /* dropout */
  float magnitude; /* uniform_noise */
  int noise;
} dropout_params;

/* uniform_noise: d = {n, magnitude in hundredths} */
static int setup_noise(op_case *oc, dropout_params *p, float *x, float *want) {
  int64_t n = p->n;
  for (int64_t i = 0; i < n; i++) x[i] = (float)case_uniform(&oc->rng, -2, 2);
  vkft_ref_uniform_noise_f32(x, want, n, p->magnitude, SEED, STREAM);
  case_expect_bits(oc, OUT, want);
  double m = p->magnitude, sum = 0, sum2 = 0, outside = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = vkft_uniform_noise_value(SEED, STREAM, (uint64_t)i, p->magnitude);
    outside += !(e >= -m && e < m);
    sum += e, sum2 += e * e;
  }
  double mean = sum / (double)n, var = sum2 / (double)n;
  /* a uniform on [-m, m): sd m/sqrt(3); the squares' sd is m^2 * sqrt(4/45) */
  case_require(oc, "noise outside [-m, m)", outside, 0);
  case_require(oc, "noise mean", fabs(mean), 6 * m / sqrt(3.0 * (double)n) + 1e-12);
  case_require(oc, "noise variance", fabs(var - m * m / 3),
               6 * m * m * sqrt(4.0 / 45.0 / (double)n) + 1e-12);
  return case_status(oc);
}

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  dropout_params *p = CASE_PARAMS(oc, dropout_params);
  if (!p) return VKFT_ERR;
  int64_t n = p->n = c->d[0];
  p->noise = !strcmp(c->op, "uniform_noise");
  p->p = p->noise ? 0 : (double)c->d[1] / 100.0;
  p->magnitude = p->noise ? (float)c->d[1] / 100.0f : 0;
  if (p->noise)
    case_shape(oc, "%lld m=%.2f", (long long)n, p->magnitude);
  else
    case_shape(oc, "%lld p=%.2f", (long long)n, p->p);
  float *x = case_tensor_new(oc, X, "x", VKFT_F32, n, CASE_IN);
  case_poisoned(oc, OUT, "out", n);
  float *want = CASE_NEW(oc, float, n);
  if (oc->failed) return VKFT_ERR;
  if (p->noise) return setup_noise(oc, p, x, want);
  for (int64_t i = 0; i < n; i++) {
    x[i] = (float)case_uniform(&oc->rng, -2, 2);
    x[i] += x[i] == 0 ? 1.0f : 0.0f; /* zeros only where dropped */
  }
  vkft_ref_dropout_f32(x, want, n, (uint32_t)(p->p * 16777216.0), (float)(1.0 / (1.0 - p->p)), SEED,
                       STREAM);
  case_expect_bits(oc, OUT, want);
  /* the dropped share is binomial: within 6 standard deviations of p */
  int64_t dropped = 0;
  for (int64_t i = 0; i < n; i++) dropped += want[i] == 0;
  double sd = sqrt(p->p * (1 - p->p) / (double)n);
  case_require(oc, "dropped share", fabs((double)dropped / (double)n - p->p), 6 * sd + 1e-12);
  oc->bytes = 8.0 * (double)n;
  return case_status(oc);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const dropout_params *p = oc->params;
  if (p->noise) return vkft_uniform_noise(be, &t[X], &t[OUT], p->n, p->magnitude, SEED, STREAM);
  return vkft_dropout(be, &t[X], &t[OUT], p->n, p->p, SEED, STREAM);
}

const case_family case_dropout = {{"dropout", "uniform_noise"}, setup, record};
