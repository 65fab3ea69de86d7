/* The learning-rate range test's arithmetic (include/vkft/lr_find.h) on curves whose answers are
 * known by construction: the ramp's rates, the smoothing, the minimum and the steepest slope, the
 * divergence rule, a non-finite loss, the warnings, and the page it writes. */
#include "check.h"

#include "vkft/lr_find.h"
#include "vkft/platform.h"

#include <math.h>

enum { N = 61 };

/* loss over x = log10(lr): a logistic drop centred at x = -4 (steepest there, slope -0.75 per
 * decade), then a parabola rising from x = -2 (the minimum, up to the logistic's last 0.0025) */
static double shape(double x) {
  return 2.0 - 1.0 / (1.0 + exp(-3.0 * (x + 4.0))) + (x > -2.0 ? 5.0 * (x + 2.0) * (x + 2.0) : 0);
}

static void ramp(vkft_lr_find_point *p, const vkft_lr_find_options *o) {
  for (int i = 0; i < o->steps; i++) {
    p[i].lr = vkft_lr_find_lr(o, i + 1);
    p[i].loss = shape(log10(p[i].lr));
  }
}

int main(void) {
  /* ten decades in 61 steps: x = -6 + 0.1 i */
  vkft_lr_find_options o = {1e-6, 1.0, N, 4.0};
  CHECK(vkft_lr_find_lr(&o, 1) == 1e-6);
  CHECKF(fabs(vkft_lr_find_lr(&o, N) - 1.0) < 1e-15, "%.17g", vkft_lr_find_lr(&o, N));
  CHECKF(fabs(vkft_lr_find_lr(&o, 31) / 1e-3 - 1) < 1e-13, "%.17g", vkft_lr_find_lr(&o, 31));
  CHECK(vkft_lr_find_smoothing(100) == 0.95);
  CHECK(vkft_lr_find_smoothing(10) == 0.6);
  CHECK(vkft_lr_find_smoothing(1000) == 0.98);

  /* unsmoothed (weight 0): the minimum at lr 1e-2 (i 40), the steepest slope at 1e-4 (i 20) */
  vkft_lr_find_point p[N];
  vkft_lr_find_result r;
  ramp(p, &o);
  vkft_lr_find_analyze(p, N, 0.0, &r);
  CHECKF(r.min_at == 40, "min_at %zu", r.min_at);
  CHECKF(r.steepest_at == 20, "steepest_at %zu", r.steepest_at);
  CHECKF(fabs(r.min_lr_div10 / 1e-3 - 1) < 1e-12, "suggestion %.17g", r.min_lr_div10);
  CHECK(!r.diverged && !r.never_fell && !r.still_falling);
  for (int i = 0; i < N; i++) CHECK(p[i].smoothed == p[i].loss);
  /* the divergence rule: the parabola passes 4 x the minimum (about 1.0) past x = -2 + sqrt(0.6) */
  size_t stop = 0;
  for (size_t n = 1; n <= N && !stop; n++)
    if (vkft_lr_find_diverged(p, n, 4.0)) stop = n;
  double x_stop = log10(p[stop - 1].lr), x_before = log10(p[stop - 2].lr);
  CHECKF(stop > 0 && shape(x_stop) > 4 * shape(-2.0) && shape(x_before) <= 4 * shape(-2.0),
         "stopped at point %zu (x %.2f)", stop, x_stop);

  /* smoothed (0.9): a constant curve stays constant (the EMA is debiased), and the lag moves the
   * minimum right of the raw one but not past where the raw curve has risen by 4x */
  vkft_lr_find_point c[20];
  for (int i = 0; i < 20; i++) c[i] = (vkft_lr_find_point){1e-5 * (i + 1), 2.5, 0};
  vkft_lr_find_analyze(c, 20, 0.9, &r);
  double worst = 0;
  for (int i = 0; i < 20; i++) worst = fmax(worst, fabs(c[i].smoothed - 2.5));
  CHECKF(worst < 1e-14, "constant curve smoothed off by %.3g", worst);
  ramp(p, &o);
  vkft_lr_find_analyze(p, N, 0.9, &r);
  CHECKF(r.min_at >= 40 && r.min_at < stop, "smoothed min_at %zu", r.min_at);
  CHECK(r.smoothing == 0.9);

  /* a non-finite loss ends the curve: it and what follows are out of the minimum */
  ramp(p, &o);
  p[30].loss = NAN;
  vkft_lr_find_analyze(p, N, 0.0, &r);
  CHECK(r.diverged && isnan(p[30].smoothed) && isnan(p[45].smoothed));
  CHECKF(r.min_at == 29 && r.still_falling == 0, "min_at %zu", r.min_at);
  CHECK(vkft_lr_find_diverged(p, 31, 4.0) && !vkft_lr_find_diverged(p, 30, 4.0));
  p[0].loss = INFINITY;
  vkft_lr_find_analyze(p, 1, 0.0, &r);
  CHECK(r.never_fell && r.diverged && r.min_lr_div10 == p[0].lr / 10);

  /* the warnings: a curve that only falls, one that only rises */
  for (int i = 0; i < 20; i++) c[i] = (vkft_lr_find_point){1e-5 * (i + 1), 3.0 - 0.1 * i, 0};
  vkft_lr_find_analyze(c, 20, 0.0, &r);
  CHECK(r.still_falling && !r.never_fell && r.min_at == 19);
  for (int i = 0; i < 20; i++) c[i].loss = 1.0 + 0.1 * i;
  vkft_lr_find_analyze(c, 20, 0.0, &r);
  CHECK(r.never_fell && !r.still_falling && r.min_at == 0);

  /* the page: written atomically, with the suggestion and a row per point */
  const char *dir = "test_lr_find_scratch";
  ramp(p, &o);
  vkft_lr_find_analyze(p, N, 0.9, &r);
  vkft_remove_tree(dir);
  CHECK(vkft_mkdirs(dir) == 0);
  CHECK(vkft_lr_find_write_html(dir, "a <test> model", p, N, &r) == 0);
  char *html = NULL;
  size_t size;
  CHECK(vkft_file_read("test_lr_find_scratch/lr_find.html", &html, &size) == 0);
  if (html) {
    CHECK(strstr(html, "a &lt;test&gt; model") != NULL);
    CHECK(strstr(html, "id=\"suggested\"") != NULL);
    CHECK(strstr(html, "id=\"chart-lr\"") != NULL);
    int rows = 0;
    for (const char *s = html; (s = strstr(s, "<tr")); s++) rows++;
    CHECKF(rows == N + 1, "%d table rows", rows);
    free(html);
  }
  vkft_remove_tree(dir);
  return check_summary();
}
