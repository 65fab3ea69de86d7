/* Reference RMSNorm (Llama, Mistral, Qwen; also Qwen3's per-head q/k norm with R = T*H rows
 * of C = head_dim): y = x / sqrt(mean(x^2) + eps) * w, in the order transformers' LlamaRMSNorm
 * multiplies (x * rstd first, then the weight). */
#include "real.h"

#include <math.h>

/* x is (R, C), w is (C), y is (R, C), rstd is (R) (may be NULL): the saved 1/rms of each row */
void REF(rmsnorm)(const real *x, const real *w, real *y, real *rstd, int64_t R, int64_t C,
                  real eps) {
  for (int64_t r = 0; r < R; r++) {
    const real *x_r = x + r * C;
    real sum_sq = 0;
    for (int64_t c = 0; c < C; c++) sum_sq += x_r[c] * x_r[c];
    real s = 1 / sqrt(sum_sq / (real)C + eps);
    for (int64_t c = 0; c < C; c++) y[r * C + c] = x_r[c] * s * w[c];
    if (rstd) rstd[r] = s;
  }
}

/* With xhat = x * rstd and y = xhat * w:
 *   dx_j = rstd * (dy_j w_j - x_j * rstd^2 / C * sum_i dy_i w_i x_i)   (written)
 *   dw_j += sum_r dy_rj * xhat_rj                                       (accumulated)
 * x, dy, dx are (R, C); w, dw are (C); rstd is (R) from the forward; dw may be NULL (frozen). */
void REF(rmsnorm_backward)(const real *x, const real *w, const real *rstd, const real *dy, real *dx,
                           real *dw, int64_t R, int64_t C) {
  for (int64_t r = 0; r < R; r++) {
    const real *x_r = x + r * C, *dy_r = dy + r * C;
    real s = rstd[r];
    real dot = 0; /* sum_i dy_i w_i x_i */
    for (int64_t c = 0; c < C; c++) dot += dy_r[c] * w[c] * x_r[c];
    real k = s * s * dot / (real)C;
    for (int64_t c = 0; c < C; c++) dx[r * C + c] = s * (dy_r[c] * w[c] - x_r[c] * k);
  }
  if (dw)
    for (int64_t c = 0; c < C; c++) {
      real sum = 0;
      for (int64_t r = 0; r < R; r++) sum += dy[r * C + c] * (x[r * C + c] * rstd[r]);
      dw[c] += sum;
    }
}
