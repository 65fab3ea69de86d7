/* The learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural Networks",
 * 2017, section 3.3; fastai's lr_find): from a fresh adapter or model, one optimizer step per
 * learning rate on an exponential ramp from min_lr to max_lr, the loss smoothed, the ramp stopped
 * when the smoothed loss exceeds diverge_factor times its minimum. The analysis suggests a
 * learning rate from the curve; `vkft lr-find` runs the test through vkft_train (options.lr_find)
 * and writes OUT/lr_find.jsonl and OUT/lr_find.html. Nothing of the model is saved. */
#ifndef VKFT_LR_FIND_H
#define VKFT_LR_FIND_H

#include <stddef.h>
#include <stdint.h>

typedef struct vkft_lr_find_options {
  double min_lr, max_lr; /* the ramp's ends: 0 < min_lr < max_lr */
  int64_t steps;         /* optimizer steps on the ramp (>= 5) */
  double diverge_factor; /* stop when smoothed loss > factor x its minimum (fastai: 4) */
} vkft_lr_find_options;

typedef struct vkft_lr_find_point {
  double lr, loss, smoothed; /* smoothed: filled by vkft_lr_find_analyze */
} vkft_lr_find_point;

typedef struct vkft_lr_find_result {
  size_t min_at;       /* the point of the smallest smoothed loss */
  size_t steepest_at;  /* the most negative slope of smoothed loss over log(lr), before min_at */
  double min_lr_div10; /* lr at min_at / 10: the suggestion (see vkft_lr_find_analyze) */
  double steepest_lr;  /* lr at steepest_at */
  double smoothing;    /* the EMA weight used */
  int diverged;        /* the last point broke the divergence rule (or was not finite) */
  int still_falling;   /* the minimum is at the ramp's end: max_lr was too small to see it */
  int never_fell;      /* the minimum is at the ramp's start: min_lr was too large */
} vkft_lr_find_result;

/* The learning rate of step `step` (1-based) of the ramp: min_lr * (max_lr/min_lr)^((step-1) /
 * (steps-1)). */
double vkft_lr_find_lr(const vkft_lr_find_options *o, int64_t step);

/* The EMA weight for a ramp of n steps: 1 - 5/n (a memory of about a fifth of the ramp, so a
 * short ramp is not all lag), within [0.6, 0.98] (0.98: fastai's). */
double vkft_lr_find_smoothing(int64_t steps);

/* 1 when the points so far should stop the ramp: the last loss is not finite, or the last
 * smoothed loss exceeds factor x the smallest smoothed loss so far. Call after analyze. */
int vkft_lr_find_diverged(const vkft_lr_find_point *p, size_t n, double factor);

/* Smooths p[].loss into p[].smoothed (debiased EMA with `smoothing`; a non-finite loss ends the
 * curve: it and what follows are left out of the minimum and the slope) and picks the points.
 * The suggestion is the minimum's learning rate / 10 ("the loss is still falling fast an order of
 * magnitude below where it stops falling"); the steepest slope is reported beside it, not used,
 * because the derivative of a short noisy curve jumps between neighbours. n >= 1. */
void vkft_lr_find_analyze(vkft_lr_find_point *p, size_t n, double smoothing,
                          vkft_lr_find_result *r);

/* Writes out_dir/lr_find.html: one self-contained page with the curve (raw and smoothed loss over
 * log10 of the learning rate), the suggestion and the rule behind it. Atomic. */
int vkft_lr_find_write_html(const char *out_dir, const char *title, const vkft_lr_find_point *p,
                            size_t n, const vkft_lr_find_result *r);

#endif
