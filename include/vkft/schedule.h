/* Learning-rate schedules equal to transformers' get_{constant,linear,cosine}_schedule_with_warmup,
 * and the host-side math of the optimizer (bias corrections), computed with our own code only
 * (no libm transcendental), so Linux and Windows builds give the same bits. */
#ifndef VKFT_SCHEDULE_H
#define VKFT_SCHEDULE_H

#include <stdint.h>

typedef enum vkft_schedule_kind {
  VKFT_SCHEDULE_CONSTANT,
  VKFT_SCHEDULE_LINEAR,
  VKFT_SCHEDULE_COSINE
} vkft_schedule_kind;

typedef struct vkft_schedule {
  vkft_schedule_kind kind;
  double lr;            /* peak learning rate */
  int64_t warmup_steps; /* see vkft_warmup_steps for warmup_ratio */
  int64_t total_steps;  /* optimizer steps of the whole run */
} vkft_schedule;

int vkft_schedule_parse(const char *name, vkft_schedule_kind *out); /* constant|linear|cosine */

/* The rate applied in optimizer update `step` (1-based), which is what transformers' LambdaLR
 * gives after step-1 scheduler steps: with warmup, update 1 runs at rate 0. */
double vkft_schedule_lr(const vkft_schedule *s, int64_t step);

/* warmup_ratio -> steps as transformers does: ceil(total_steps * ratio). */
int64_t vkft_warmup_steps(int64_t total_steps, double ratio);

/* 1 - beta^step by repeated multiplication (exact same bits everywhere). */
double vkft_bias_correction(double beta, int64_t step);

/* cos(x) for |x| <= pi, from a fixed series (platform-independent, within a few ulps). */
double vkft_cos(double x);

#endif
