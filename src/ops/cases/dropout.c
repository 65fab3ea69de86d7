/* Op-table family "dropout": the output against the fp32 reference, bit for bit (the mask is
 * the same integer hash on both sides and x * scale is one correctly rounded multiply), and the
 * dropped share of the reference against p. The backward is the same op (same seed and stream,
 * same mask). */
#include "case.h"

enum { X, OUT };
enum { SEED = 1234, STREAM = 7 };

typedef struct dropout_params {
  int64_t n;
  double p;
} dropout_params;

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  dropout_params *p = CASE_PARAMS(oc, dropout_params);
  if (!p) return VKFT_ERR;
  int64_t n = p->n = c->d[0];
  p->p = (double)c->d[1] / 100.0;
  case_shape(oc, "%lld p=%.2f", (long long)n, p->p);
  float *x = case_tensor_new(oc, X, "x", VKFT_F32, n, CASE_IN);
  case_poisoned(oc, OUT, "out", n);
  float *want = CASE_NEW(oc, float, n);
  if (oc->failed) return VKFT_ERR;
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
  return vkft_dropout(be, &t[X], &t[OUT], p->n, p->p, SEED, STREAM);
}

const case_family case_dropout = {{"dropout"}, setup, record};
