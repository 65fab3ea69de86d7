/* Helpers shared by the ops-core case files (case_rmsnorm.c ... case_grad_norm.c): random
 * inputs, normalized errors, and keeping the worst of several outputs' (error, tolerance). */
#ifndef VKFT_OPS_CASE_CORE_H
#define VKFT_OPS_CASE_CORE_H

#include "harness.h"

#include "vkft/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* fp32 unit roundoff: the error unit every tolerance is expressed in */
#define CORE_U (1.0 / 16777216.0)

static inline void core_uniform(harness_rng *rng, float *a, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) a[i] = (float)harness_uniform(rng, lo, hi);
}

/* Rounds a to storage type t in place (what a frozen weight holds); *stored (malloc'd, may be
 * NULL) receives the stored bytes. */
static inline int core_round_to(vkft_dtype t, float *a, int64_t n, void **stored) {
  void *s = malloc((size_t)(n ? n : 1) * vkft_dtype_size(t));
  if (!s) return vkft_error("out of host memory");
  vkft_convert_from_f32(t, a, s, (size_t)n);
  vkft_convert_to_f32(t, s, a, (size_t)n);
  if (stored)
    *stored = s;
  else
    free(s);
  return VKFT_OK;
}

/* max_i |got_i - want_i| / scale_i (scale NULL: |want_i|), NaN if any term is NaN */
static inline double core_err(const float *got, const double *want, const double *scale,
                              int64_t n) {
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double s = (scale ? scale[i] : fabs(want[i])) + 1e-300;
    double e = fabs((double)got[i] - want[i]) / s;
    if (e != e) return e;
    if (e > worst) worst = e;
  }
  return worst;
}

/* Records one output's (err, tol) if it is the worst so far relative to its tolerance; the
 * row passes when every output is within its own tolerance. */
static inline void core_report(vkft_op_result *r, double err, double tol) {
  if (r->max_err != r->max_err) return; /* a NaN stays reported */
  double ratio = tol > 0 ? err / tol : (err > 0 ? INFINITY : 0);
  double cur = r->tol > 0 ? r->max_err / r->tol : (r->max_err > 0 ? INFINITY : -1);
  if (err != err || ratio > cur || (r->tol == 0 && r->max_err == 0)) {
    r->max_err = err;
    r->tol = tol;
  }
  r->ok = r->max_err <= r->tol;
}

/* Number of differing 32-bit words (exactness checks: conversions, copies, the embedding
 * backward against the fp32 reference). */
static inline int64_t core_bits_differ(const void *a, const void *b, int64_t bytes) {
  const unsigned char *x = a, *y = b;
  int64_t d = 0;
  for (int64_t i = 0; i < bytes; i++) d += x[i] != y[i];
  return d;
}

#endif
