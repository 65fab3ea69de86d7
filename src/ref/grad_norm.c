/* Reference global gradient norm and clip coefficient, as torch.nn.utils.clip_grad_norm_:
 * total_norm = ||all gradients||_2, clip_coef = max_norm / (total_norm + 1e-6) clamped to at
 * most 1 (a NaN norm gives a NaN coefficient). max_norm <= 0 means no clipping: coefficient 1. */
#include "real.h"

#include <math.h>

/* grads[k] is (n[k]) for k < count */
void REF(grad_norm)(const real *const *grads, const int64_t *n, int count, real max_norm,
                    real *norm, real *scale) {
  /* double even in the float build: a model has ~1e8 gradient values, too many for one
   * serial fp32 sum to stay a useful reference */
  double sum_sq = 0;
  for (int k = 0; k < count; k++)
    for (int64_t i = 0; i < n[k]; i++) sum_sq += (double)grads[k][i] * (double)grads[k][i];
  *norm = (real)sqrt(sum_sq);
  if (max_norm <= 0) {
    *scale = 1;
    return;
  }
  real coef = max_norm / (*norm + (real)1e-6); /* in real, as torch does in fp32 */
  *scale = coef > 1 ? 1 : coef;
}
