/* The 2-D picture of `vkft data explore`: the top two principal components of the rows by power
 * iteration (vkft/explore.h). With Xc the centred rows (n, d), v <- Xc^T (Xc v) / |.| converges to
 * the top eigenvector of the covariance at the rate lambda2 / lambda1 per step; the second
 * component is the same iteration kept orthogonal to the first (deflation by Gram-Schmidt).
 * Xc is never formed: Xc v = X v - <mean, v>. Sums are in double (n can be large). */
#include "vkft/explore.h"

#include "vkft/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_STEPS = 100 }; /* the picture needs no more; close eigenvalues converge slowly */

static void normalize(double *v, size_t d) {
  double s = 0;
  for (size_t t = 0; t < d; t++) s += v[t] * v[t];
  s = sqrt(s);
  for (size_t t = 0; t < d; t++) v[t] = s > 0 ? v[t] / s : 0;
}

static void orthogonalize(double *v, const double *u, size_t d) {
  double p = 0;
  for (size_t t = 0; t < d; t++) p += v[t] * u[t];
  for (size_t t = 0; t < d; t++) v[t] -= p * u[t];
}

/* out = Xc^T (Xc v) */
static void cov_times(const float *x, size_t n, size_t d, const double *mean, const double *v,
                      double *out) {
  double mv = 0;
  for (size_t t = 0; t < d; t++) mv += mean[t] * v[t];
  memset(out, 0, d * sizeof *out);
  for (size_t i = 0; i < n; i++) {
    const float *row = x + i * d;
    double p = -mv;
    for (size_t t = 0; t < d; t++) p += row[t] * v[t];
    for (size_t t = 0; t < d; t++) out[t] += p * row[t];
  }
  /* the mean's part: sum_i p_i (x_i - mean) = sum_i p_i x_i - (sum_i p_i) mean, and
   * sum_i p_i = <sum_i x_i - n mean, v> = 0 */
}

/* one component by power iteration, orthogonal to prev (NULL: none) */
static void power(const float *x, size_t n, size_t d, const double *mean, const double *prev,
                  uint64_t seed, double *v, double *w) {
  uint64_t s = seed;
  for (size_t t = 0; t < d; t++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v[t] = (double)(s >> 11) / 9007199254740992.0 - 0.5;
  }
  if (prev) orthogonalize(v, prev, d);
  normalize(v, d);
  for (int step = 0; step < MAX_STEPS; step++) {
    cov_times(x, n, d, mean, v, w);
    if (prev) orthogonalize(w, prev, d);
    normalize(w, d);
    double change = 0;
    for (size_t t = 0; t < d; t++) change += fabs(w[t] - v[t]);
    memcpy(v, w, d * sizeof *v);
    if (change < 1e-10 * (double)d) break;
  }
  /* the sign: the largest-magnitude entry positive (the first of equal ones) */
  size_t big = 0;
  for (size_t t = 1; t < d; t++)
    if (fabs(v[t]) > fabs(v[big]) * (1 + 1e-9)) big = t;
  if (v[big] < 0)
    for (size_t t = 0; t < d; t++) v[t] = -v[t];
}

int vkft_pca2(const float *x, size_t n, size_t d, uint64_t seed, float *xy, float *components) {
  if (n == 0 || d == 0) return vkft_error("pca: %zu rows of dimension %zu", n, d);
  double *mean = calloc(d, sizeof *mean), *v = malloc(2 * d * sizeof *v);
  double *w = malloc(d * sizeof *w);
  if (!mean || !v || !w) {
    free(mean), free(v), free(w);
    return vkft_error_nomem();
  }
  for (size_t i = 0; i < n; i++)
    for (size_t t = 0; t < d; t++) mean[t] += x[i * d + t];
  for (size_t t = 0; t < d; t++) mean[t] /= (double)n;
  power(x, n, d, mean, NULL, seed ^ 0x50434131ull, v, w);
  if (d > 1) {
    power(x, n, d, mean, v, seed ^ 0x50434132ull, v + d, w);
  } else {
    v[d] = 0;
  }
  for (size_t i = 0; i < n; i++)
    for (int c = 0; c < 2; c++) {
      double p = 0;
      for (size_t t = 0; t < d; t++) p += ((double)x[i * d + t] - mean[t]) * v[c * d + t];
      xy[2 * i + c] = (float)p;
    }
  if (components)
    for (size_t t = 0; t < 2 * d; t++) components[t] = (float)v[t];
  free(mean), free(v), free(w);
  return VKFT_OK;
}
