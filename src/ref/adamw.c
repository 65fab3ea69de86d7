/* Reference AdamW step in torch.optim.AdamW's order of operations (_single_tensor_adam with
 * decoupled weight decay), on scalars the host derived in double and rounded to fp32 once:
 *   p = p * (1 - lr*wd)
 *   m = m + (1 - beta1) * (g - m)                     exp_avg.lerp_(grad, 1 - beta1)
 *   v = v * beta2 + ((1 - beta2) * g) * g             exp_avg_sq.mul_(beta2).addcmul_(g, g,
 * 1-beta2) p = p + (-lr / bc1) * (m / (sqrt(v) / sqrt(bc2) + eps))     param.addcdiv_(m, denom,
 * -step_size) with bc1 = 1 - beta1^step, bc2 = 1 - beta2^step, and g = grad * grad_scale (the clip
 * coefficient, as clip_grad_norm_ scales grads in place before the step). */
#include "real.h"

#include <math.h>

/* p, g, m, v are (n) */
void REF(adamw)(real *p, const real *g, real *m, real *v, int64_t n, real grad_scale,
                const vkft_adamw_step *k) {
  real decay = k->decay, one_minus_beta1 = k->one_minus_beta1, beta2 = k->beta2;
  real one_minus_beta2 = k->one_minus_beta2, step_size = k->step_size;
  real bc2_sqrt = k->bias_correction2_sqrt, eps = k->eps;
  for (int64_t i = 0; i < n; i++) {
    real grad = g[i] * grad_scale;
    p[i] = p[i] * decay;
    m[i] = m[i] + one_minus_beta1 * (grad - m[i]);
    v[i] = v[i] * beta2 + one_minus_beta2 * grad * grad;
    real denom = sqrt(v[i]) / bc2_sqrt + eps;
    p[i] = p[i] + -step_size * (m[i] / denom);
  }
}
