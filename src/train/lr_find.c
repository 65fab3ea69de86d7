/* The learning-rate range test (vkft_train with options.lr_find): the ramp's learning rates, the
 * smoothing and the choice of a suggestion (include/vkft/lr_find.h), and the loop that runs the
 * ramp with the trainer's own step, writing OUT/lr_find.jsonl and OUT/lr_find.html. Nothing of
 * the model is saved: no checkpoint, no adapter, no metrics.jsonl or report.html. */
#include "vkft/lr_find.h"
#include "trainer_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double vkft_lr_find_lr(const vkft_lr_find_options *o, int64_t step) {
  double f = o->steps > 1 ? (double)(step - 1) / (double)(o->steps - 1) : 0;
  return o->min_lr * pow(o->max_lr / o->min_lr, f);
}

double vkft_lr_find_smoothing(int64_t steps) {
  double w = 1.0 - 5.0 / (double)(steps > 0 ? steps : 1);
  return w < 0.6 ? 0.6 : w > 0.98 ? 0.98 : w;
}

/* the points of the curve: up to (not including) the first non-finite loss */
static size_t finite_prefix(const vkft_lr_find_point *p, size_t n) {
  size_t k = 0;
  while (k < n && isfinite(p[k].loss)) k++;
  return k;
}

int vkft_lr_find_diverged(const vkft_lr_find_point *p, size_t n, double factor) {
  size_t k = finite_prefix(p, n);
  if (k < n) return 1;
  double best = INFINITY;
  for (size_t i = 0; i < k; i++) best = fmin(best, p[i].smoothed);
  return k > 1 && p[k - 1].smoothed > factor * best;
}

void vkft_lr_find_analyze(vkft_lr_find_point *p, size_t n, double smoothing,
                          vkft_lr_find_result *r) {
  memset(r, 0, sizeof *r);
  r->smoothing = smoothing;
  size_t k = finite_prefix(p, n);
  double avg = 0, debias = 1;
  for (size_t i = 0; i < n; i++) {
    if (i >= k) {
      p[i].smoothed = NAN;
      continue;
    }
    avg = smoothing * avg + (1 - smoothing) * p[i].loss;
    debias *= smoothing;
    p[i].smoothed = avg / (1 - debias);
  }
  r->diverged = k < n;
  if (k == 0) { /* not one finite loss: the minimum is the ramp's start, too large already */
    r->never_fell = 1;
    r->min_lr_div10 = p[0].lr / 10;
    r->steepest_lr = p[0].lr;
    return;
  }
  for (size_t i = 1; i < k; i++)
    if (p[i].smoothed < p[r->min_at].smoothed) r->min_at = i;
  /* central differences over log(lr), at points strictly inside [0, min_at] */
  double steepest = INFINITY;
  r->steepest_at = r->min_at;
  for (size_t i = 1; i + 1 <= r->min_at; i++) {
    double slope = (p[i + 1].smoothed - p[i - 1].smoothed) / (log(p[i + 1].lr) - log(p[i - 1].lr));
    if (slope < steepest) steepest = slope, r->steepest_at = i;
  }
  r->min_lr_div10 = p[r->min_at].lr / 10;
  r->steepest_lr = p[r->steepest_at].lr;
  r->never_fell = r->min_at == 0;
  r->still_falling = !r->diverged && r->min_at + 1 == k && k > 1;
  if (r->still_falling && k >= 2) /* the last smoothed loss may equal its minimum at the end */
    r->still_falling = p[k - 1].smoothed < p[k - 2].smoothed;
}

static void write_number(char *out, size_t size, double v) {
  if (isfinite(v))
    snprintf(out, size, "%.9g", v);
  else
    snprintf(out, size, "null");
}

int lr_find_run(trainer *t) {
  const vkft_lr_find_options *o = t->opt->lr_find;
  vkft_lr_find_point *p = calloc((size_t)o->steps, sizeof *p);
  if (!p) return vkft_error_nomem();
  double smoothing = vkft_lr_find_smoothing(o->steps), t0 = vkft_time_s();
  vkft_lr_find_result r;
  size_t n = 0;
  int stopped = 0; /* by the divergence rule */
  /* the curve goes where metrics.jsonl would: a fresh file each time */
  snprintf(t->metrics_path, sizeof t->metrics_path, "%s/lr_find.jsonl", t->cfg->output.dir);
  int status = vkft_file_write_atomic(t->metrics_path, "", 0);
  trainer_message(t,
                  "lr-find: %lld steps from lr %g to %g, stopping when the smoothed loss "
                  "exceeds %g x its minimum",
                  (long long)o->steps, o->min_lr, o->max_lr, o->diverge_factor);
  while (status == VKFT_OK && t->step < o->steps && !vkft_interrupted()) {
    vkft_step_report rep = {0};
    double s0 = vkft_time_s();
    if ((status = train_step(t, &rep)) != VKFT_OK) break;
    double now = vkft_time_s();
    rep.tokens_per_s = (double)rep.tokens / (now - s0);
    rep.elapsed_s = now - t0;
    rep.eta_s = (now - t0) / (double)t->step * (double)(o->steps - t->step);
    p[n++] = (vkft_lr_find_point){rep.lr, rep.loss, 0};
    vkft_lr_find_analyze(p, n, smoothing, &r);
    char loss[32], smooth[32], line[256];
    write_number(loss, sizeof loss, rep.loss);
    write_number(smooth, sizeof smooth, p[n - 1].smoothed);
    snprintf(line, sizeof line,
             "{\"step\": %lld, \"lr\": %.9g, \"loss\": %s, \"smoothed_loss\": %s, "
             "\"grad_norm\": %.9g}",
             (long long)rep.step, rep.lr, loss, smooth, rep.grad_norm);
    if ((status = metrics_append(t, line)) != VKFT_OK) break;
    rep.total_steps = o->steps;
    if (t->opt->on_step) t->opt->on_step(&rep, t->opt->user);
    if (vkft_lr_find_diverged(p, n, o->diverge_factor)) {
      stopped = 1;
      break;
    }
  }
  if (status == VKFT_OK && n == 0)
    status = vkft_error("lr-find: interrupted before the first step");
  if (status == VKFT_OK) {
    vkft_lr_find_analyze(p, n, smoothing, &r);
    r.diverged |= stopped;
    char line[512];
    snprintf(line, sizeof line,
             "{\"suggested_lr\": %.9g, \"rule\": \"minimum/10\", \"min_loss_lr\": %.9g, "
             "\"steepest_lr\": %.9g, \"steps\": %zu, \"diverged\": %s, \"smoothing\": %.9g}",
             r.min_lr_div10, p[r.min_at].lr, r.steepest_lr, n, r.diverged ? "true" : "false",
             r.smoothing);
    status = metrics_append(t, line);
  }
  if (status == VKFT_OK)
    status = vkft_lr_find_write_html(t->cfg->output.dir, t->cfg->model, p, n, &r);
  if (status == VKFT_OK) {
    trainer_message(t, "lr-find: %zu steps%s; the smoothed loss is lowest (%.4g) at lr %.3g", n,
                    r.diverged ? ", stopped at divergence" : "", p[r.min_at].smoothed,
                    p[r.min_at].lr);
    trainer_message(t,
                    "lr-find: steepest descent at lr %.3g (shown, not used: the slope of a "
                    "short noisy curve jumps between neighbours)",
                    r.steepest_lr);
    if (r.never_fell)
      trainer_message(t, "warning: the loss never fell below its first value: try a smaller "
                         "--min");
    if (r.still_falling)
      trainer_message(t,
                      "warning: the loss was still falling at --max %g: the minimum is past "
                      "the ramp (try a larger --max)",
                      o->max_lr);
    trainer_message(t, "suggested lr: %.3g (the lowest loss's lr / 10)", r.min_lr_div10);
    trainer_message(t, "wrote %s/lr_find.jsonl and %s/lr_find.html", t->cfg->output.dir,
                    t->cfg->output.dir);
  }
  free(p);
  return status;
}
