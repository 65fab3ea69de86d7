/* OUT/lr_find.html: the learning-rate range test as one self-contained page — the loss (raw and
 * smoothed) over log10 of the learning rate, the suggestion with the rule that chose it, and the
 * points in a table. Drawn with the report's chart and style (src/report/chart.c). */
#include "internal.h"
#include "vkft/lr_find.h"
#include "vkft/platform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void number_cell(vkft_strbuf *b, double v) {
  char text[48];
  report_format_number(text, sizeof text, v);
  vkft_strbuf_printf(b, "<td>%s</td>", isfinite(v) ? text : "&mdash;");
}

static void body(vkft_strbuf *b, const vkft_lr_find_point *p, size_t n,
                 const vkft_lr_find_result *r, point *raw) {
  char sug[48], low[48], steep[48];
  report_format_number(sug, sizeof sug, r->min_lr_div10);
  report_format_number(low, sizeof low, p[r->min_at].lr);
  report_format_number(steep, sizeof steep, r->steepest_lr);
  vkft_strbuf_printf(
      b,
      "<section class=\"cards\"><div class=\"card\"><div class=\"label\">suggested "
      "learning rate</div><div class=\"value\" id=\"suggested\">%s</div><div "
      "class=\"sub\">the lowest smoothed loss's lr (%s) / 10</div></div>"
      "<div class=\"card\"><div class=\"label\">steepest descent</div><div "
      "class=\"value\">%s</div><div class=\"sub\">shown, not used</div></div>"
      "<div class=\"card\"><div class=\"label\">steps</div><div class=\"value\">%zu</div>"
      "<div class=\"sub\">%s</div></div></section>\n",
      sug, low, steep, n, r->diverged ? "stopped when the loss diverged" : "the whole ramp");
  if (r->never_fell || r->still_falling)
    vkft_strbuf_printf(b, "<p class=\"warn\">%s</p>\n",
                       r->never_fell
                           ? "The loss never fell below its first value: the ramp starts too "
                             "high (try a smaller --min)."
                           : "The loss was still falling at the ramp's end: its minimum lies "
                             "past --max (try a larger one).");
  double *smooth = malloc(n * sizeof *smooth);
  if (!smooth) {
    b->failed = 1;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    raw[i] = (point){log10(p[i].lr), p[i].loss};
    smooth[i] = p[i].smoothed;
  }
  /* the suggestion (fastai's plot marks it on the curve) and, when the ramp stopped there, the
   * learning rate at which the loss diverged; the x range reaches the suggestion, which lies
   * below the ramp's start when the loss was lowest at its first step */
  double x_sug = log10(r->min_lr_div10), x_end = raw[n - 1].x;
  char sug_label[64], div_label[64], div_lr[48];
  snprintf(sug_label, sizeof sug_label, "suggested %s", sug);
  report_format_number(div_lr, sizeof div_lr, p[n - 1].lr);
  snprintf(div_label, sizeof div_label, "diverged at %s", div_lr);
  chart c = {.id = "lr",
             .title = "loss over the learning rate",
             .lines = {{.label = "loss", .color = "#2563eb", .p = raw, .n = n, .smooth = smooth}},
             .n_lines = 1,
             .x_lo = fmin(raw[0].x, x_sug),
             .x_hi = x_end > raw[0].x ? x_end : raw[0].x + 1,
             .x_log = "lr",
             .marks = {{x_sug, "suggested", sug_label, "#16a34a"},
                       {x_end, "diverged", div_label, "#dc2626"}},
             .n_marks = r->diverged ? 2 : 1};
  snprintf(c.note, sizeof c.note, "log scale; smoothing: debiased EMA, weight %.3g", r->smoothing);
  chart_write(b, &c);
  free(smooth);
  vkft_strbuf_puts(b,
                   "<div class=\"details\"><table class=\"points\"><thead><tr><th>step</th><th>lr"
                   "</th><th>loss</th><th>smoothed</th></tr></thead><tbody>");
  for (size_t i = 0; i < n; i++) {
    vkft_strbuf_printf(b, "<tr%s><td>%zu</td>", i == r->min_at ? " class=\"min\"" : "", i + 1);
    number_cell(b, p[i].lr), number_cell(b, p[i].loss), number_cell(b, p[i].smoothed);
    vkft_strbuf_puts(b, "</tr>");
  }
  vkft_strbuf_puts(b, "</tbody></table></div>\n");
}

int vkft_lr_find_write_html(const char *out_dir, const char *title, const vkft_lr_find_point *p,
                            size_t n, const vkft_lr_find_result *r) {
  if (n == 0) return vkft_error("lr-find: no step to draw");
  point *raw = malloc(n * sizeof *raw);
  if (!raw) return vkft_error_nomem();
  vkft_strbuf b = {0};
  vkft_strbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                       "<title>vkft lr-find: ");
  report_html(&b, title);
  vkft_strbuf_printf(&b, "</title><style>%s</style></head>\n<body><main>\n", report_style);
  vkft_strbuf_puts(&b, "<header><div class=\"brand\">vkft learning-rate range test</div><h1>");
  report_html(&b, title);
  vkft_strbuf_puts(&b, "</h1><span class=\"where\">");
  report_html(&b, out_dir);
  vkft_strbuf_puts(&b, "</span></header>\n");
  body(&b, p, n, r, raw);
  vkft_strbuf_printf(
      &b,
      "<footer>Written by vkft lr-find: one optimizer step per learning rate on an "
      "exponential ramp, from a fresh start; nothing of the model was saved. The "
      "suggestion is the learning rate of the lowest smoothed loss divided by 10 (the "
      "loss still falls fast there, an order of magnitude below where it stops "
      "falling).</footer>\n</main>\n<script>%s</script>\n</body></html>\n",
      report_script);
  free(raw);
  int status = b.failed ? vkft_error_nomem() : VKFT_OK;
  char path[4096];
  snprintf(path, sizeof path, "%s/lr_find.html", out_dir);
  if (status == VKFT_OK) status = vkft_file_write_atomic(path, b.data, b.len);
  vkft_strbuf_free(&b);
  return status;
}
