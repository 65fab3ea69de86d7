/* Learning-rate schedules (transformers' *_schedule_with_warmup) and optimizer host math. */
#include "vkft/schedule.h"

#include <string.h>

int vkft_schedule_parse(const char *name, vkft_schedule_kind *out) {
  if (!strcmp(name, "constant"))
    *out = VKFT_SCHEDULE_CONSTANT;
  else if (!strcmp(name, "linear"))
    *out = VKFT_SCHEDULE_LINEAR;
  else if (!strcmp(name, "cosine"))
    *out = VKFT_SCHEDULE_COSINE;
  else
    return -1;
  return 0;
}

/* Taylor series on [0, pi/2] summed from the smallest term up (less rounding); beyond pi/2
 * the reflection cos(x) = -cos(pi - x). */
double vkft_cos(double x) {
  const double pi = 3.14159265358979323846;
  double sign = 1.0;
  if (x < 0) x = -x;
  if (x > pi / 2) x = pi - x, sign = -1.0;
  double x2 = x * x, terms[12], term = 1.0;
  terms[0] = 1.0;
  for (int k = 1; k < 12; k++) { /* (pi/2)^24 / 24! ~ 1e-19: 12 terms suffice */
    term *= -x2 / (double)((2 * k - 1) * (2 * k));
    terms[k] = term;
  }
  double sum = 0.0;
  for (int k = 11; k >= 0; k--) sum += terms[k];
  return sign * sum;
}

double vkft_schedule_lr(const vkft_schedule *s, int64_t step) {
  int64_t t = step - 1; /* the scheduler has stepped once per earlier update */
  if (t < 0) t = 0;
  double factor;
  if (t < s->warmup_steps) {
    factor = (double)t / (double)(s->warmup_steps > 1 ? s->warmup_steps : 1);
  } else if (s->kind == VKFT_SCHEDULE_CONSTANT) {
    factor = 1.0;
  } else {
    int64_t span = s->total_steps - s->warmup_steps;
    double progress = (double)(t - s->warmup_steps) / (double)(span > 1 ? span : 1);
    if (s->kind == VKFT_SCHEDULE_LINEAR) {
      factor = (double)(s->total_steps - t) / (double)(span > 1 ? span : 1);
    } else {
      /* num_cycles = 0.5: 0.5 * (1 + cos(pi * 2 * 0.5 * progress)) */
      if (progress > 1.0) progress = 1.0;
      factor = 0.5 * (1.0 + vkft_cos(3.14159265358979323846 * progress));
    }
    if (factor < 0) factor = 0;
  }
  return s->lr * factor;
}

int64_t vkft_warmup_steps(int64_t total_steps, double ratio) {
  double w = (double)total_steps * ratio;
  int64_t n = (int64_t)w;
  return (double)n < w ? n + 1 : n;
}

double vkft_bias_correction(double beta, int64_t step) {
  double power = 1.0;
  for (int64_t i = 0; i < step; i++) power *= beta;
  return 1.0 - power;
}
