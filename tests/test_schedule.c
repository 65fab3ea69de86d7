/* LR schedules against values computed with transformers' lambdas in Python (math.cos, floats),
 * and the platform-independent cos against the C library's. */
#include "check.h"

#include "vkft/schedule.h"

#include <math.h>

int main(void) {
  /* vkft_cos agrees with libm to a few ulps over the range the cosine schedule uses */
  double worst = 0;
  for (int i = 0; i <= 10000; i++) {
    double x = 3.141592653589793 * i / 10000.0;
    double err = fabs(vkft_cos(x) - cos(x));
    if (err > worst) worst = err;
  }
  CHECKF(worst < 4e-16, "vkft_cos max error %.3e", worst);

  /* get_cosine_schedule_with_warmup(opt, num_warmup_steps=3, num_training_steps=10), lr 2e-4:
   * rates applied in updates 1..10 (LambdaLR starts at step 0) */
  vkft_schedule cosine = {VKFT_SCHEDULE_COSINE, 2e-4, 3, 10};
  const double cos_expect[10] = {0.0,
                                 6.666666666666667e-05,
                                 0.00013333333333333334,
                                 0.0002,
                                 0.0001900968867902419,
                                 0.00016234898018587337,
                                 0.00012225209339563145,
                                 7.774790660436858e-05,
                                 3.7651019814126654e-05,
                                 9.903113209758096e-06};
  for (int s = 1; s <= 10; s++) {
    double lr = vkft_schedule_lr(&cosine, s);
    CHECKF(fabs(lr - cos_expect[s - 1]) <= 1e-19, "cosine step %d: %.17g vs %.17g", s, lr,
           cos_expect[s - 1]);
  }
  /* get_linear_schedule_with_warmup(opt, 2, 6), lr 1e-3 */
  vkft_schedule linear = {VKFT_SCHEDULE_LINEAR, 1e-3, 2, 6};
  const double lin_expect[6] = {0.0, 0.0005, 0.001, 0.00075, 0.0005, 0.00025};
  for (int s = 1; s <= 6; s++)
    CHECKF(fabs(vkft_schedule_lr(&linear, s) - lin_expect[s - 1]) <= 1e-19, "linear step %d", s);
  /* constant with warmup 2, and without */
  vkft_schedule constant = {VKFT_SCHEDULE_CONSTANT, 1e-3, 2, 100};
  CHECK(vkft_schedule_lr(&constant, 1) == 0.0 && vkft_schedule_lr(&constant, 2) == 0.0005 &&
        vkft_schedule_lr(&constant, 3) == 1e-3 && vkft_schedule_lr(&constant, 99) == 1e-3);
  constant.warmup_steps = 0;
  CHECK(vkft_schedule_lr(&constant, 1) == 1e-3);
  /* no warmup: cosine starts at the peak and ends near 0 */
  vkft_schedule c0 = {VKFT_SCHEDULE_COSINE, 1.0, 0, 4};
  CHECK(vkft_schedule_lr(&c0, 1) == 1.0 && fabs(vkft_schedule_lr(&c0, 3) - 0.5) < 1e-16);
  /* warmup_ratio: ceil like transformers */
  CHECK(vkft_warmup_steps(100, 0.03) == 3 && vkft_warmup_steps(10, 0.25) == 3 &&
        vkft_warmup_steps(10, 0.0) == 0 && vkft_warmup_steps(7, 1.0) == 7);
  /* bias correction */
  CHECK(fabs(vkft_bias_correction(0.9, 1) - 0.1) < 1e-16);
  CHECK(fabs(vkft_bias_correction(0.999, 1000) - (1 - pow(0.999, 1000))) < 1e-13);
  vkft_schedule_kind k;
  CHECK(vkft_schedule_parse("cosine", &k) == 0 && k == VKFT_SCHEDULE_COSINE);
  CHECK(vkft_schedule_parse("cosine_with_restarts", &k) == -1);
  return check_summary();
}
