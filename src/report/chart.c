/* One chart of the report: a legend, an inline SVG (grid, ticks at 1-2-5 steps, the curves)
 * and the points its tooltip reads as JSON. Long runs stay fast and small: a curve of more
 * points than the plot has columns is drawn through each column's minimum and maximum (the
 * spikes stay visible) as a band, its smoothed curve and the tooltip through each column's last
 * point. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The SVG's coordinate system (viewBox); CSS scales it to the page's width. */
enum { W = 560, H = 236, ML = 54, MR = 14, MT = 10, MB = 28, PW = W - ML - MR, PH = H - MT - MB };
enum { COLUMNS = PW }; /* downsampling: one column per viewBox unit */

enum { MAX_TICKS = 40 };
/* Values past this are off any sensible chart; clamping them keeps every scale finite. */
#define LIMIT 1e15

typedef struct scale {
  double x_lo, x_hi, y_lo, y_hi, y_step, x_step;
} scale;

static double clamp(double v, double lo, double hi) {
  return v >= lo ? (v <= hi ? v : hi) : lo; /* NaN: lo */
}

static double nice_step(double span, int ticks) {
  if (!(span > 0 && isfinite(span))) return 1;
  double raw = span / ticks, magnitude = pow(10, floor(log10(raw)));
  double f = raw / magnitude;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude;
}

/* Positions in the viewBox, kept near it whatever the value (an SVG number stays short). */
static double px(const scale *s, double x) {
  return clamp(ML + (x - s->x_lo) / (s->x_hi - s->x_lo) * PW, -1e4, 1e4);
}

static double py(const scale *s, double y) {
  return clamp(MT + PH - (y - s->y_lo) / (s->y_hi - s->y_lo) * PH, -1e4, 1e4);
}

static int column(const scale *s, double x) {
  return (int)clamp((x - s->x_lo) / (s->x_hi - s->x_lo) * COLUMNS, 0, COLUMNS - 1);
}

static double value(const chart_line *l, size_t i, int smoothed) {
  return smoothed ? l->smooth[i] : l->p[i].y;
}

static int downsampled(const chart_line *l) {
  return l->n > 2 * COLUMNS;
}

/* The y range of every finite value drawn (and the threshold), widened to whole tick steps. */
static scale make_scale(const chart *c) {
  scale s = {.x_lo = clamp(c->x_lo, -LIMIT, LIMIT), .x_hi = clamp(c->x_hi, -LIMIT, LIMIT)};
  if (!(s.x_hi > s.x_lo)) s.x_hi = s.x_lo + 1;
  double lo = INFINITY, hi = -INFINITY;
  for (int k = 0; k < c->n_lines; k++)
    for (size_t i = 0; i < c->lines[k].n; i++)
      if (isfinite(c->lines[k].p[i].y))
        lo = fmin(lo, c->lines[k].p[i].y), hi = fmax(hi, c->lines[k].p[i].y);
  if (c->threshold > 0 && isfinite(lo)) lo = fmin(lo, c->threshold), hi = fmax(hi, c->threshold);
  if (!isfinite(lo)) lo = 0, hi = 1;
  lo = clamp(lo, -LIMIT, LIMIT), hi = clamp(hi, -LIMIT, LIMIT);
  if (!(hi > lo)) {
    double pad = lo != 0 ? fabs(lo) * 0.1 : 1;
    lo -= pad, hi += pad;
  }
  s.y_step = nice_step(hi - lo, 5);
  s.y_lo = floor(lo / s.y_step + 1e-9) * s.y_step;
  s.y_hi = ceil(hi / s.y_step - 1e-9) * s.y_step;
  if (!(s.y_hi > s.y_lo)) s.y_hi = s.y_lo + s.y_step;
  s.x_step = fmax(1, nice_step(s.x_hi - s.x_lo, 6));
  return s;
}

/* The tick values of an axis: multiples of step from lo to hi (at most MAX_TICKS). */
static int ticks(double lo, double hi, double step, double *out) {
  double first = ceil(lo / step - 1e-9) * step;
  int n = 0;
  while (n < MAX_TICKS && first + n * step <= hi + step * 1e-6) out[n] = first + n * step, n++;
  return n;
}

static void axes(vkft_strbuf *b, const scale *s, const char *x_log) {
  double ys[MAX_TICKS], xs[MAX_TICKS];
  int n_y = ticks(s->y_lo, s->y_hi, s->y_step, ys), n_x = ticks(s->x_lo, s->x_hi, s->x_step, xs);
  char label[48];
  vkft_strbuf_puts(b, "<g class=\"grid\">");
  for (int i = 0; i < n_y; i++)
    vkft_strbuf_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>", ML, W - MR,
                       py(s, ys[i]), py(s, ys[i]));
  for (int i = 0; i < n_x; i++)
    vkft_strbuf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/>", px(s, xs[i]),
                       px(s, xs[i]), MT, MT + PH);
  vkft_strbuf_puts(b, "</g><g class=\"ticks\">");
  for (int i = 0; i < n_y; i++) {
    report_format_tick(label, sizeof label, ys[i], s->y_step, fmax(fabs(s->y_lo), fabs(s->y_hi)));
    vkft_strbuf_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>", ML - 6,
                       py(s, ys[i]) + 3.5, label);
  }
  for (int i = 0; i < n_x; i++) {
    if (x_log) /* a decade or a fraction of one: the value itself */
      snprintf(label, sizeof label, "%.2g", pow(10, xs[i]));
    else
      report_format_tick(label, sizeof label, xs[i], s->x_step, fmax(fabs(s->x_lo), fabs(s->x_hi)));
    vkft_strbuf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>",
                       px(s, xs[i]), MT + PH + 16, label);
  }
  vkft_strbuf_printf(b,
                     "</g><line class=\"frame\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>"
                     "<text class=\"axis-name\" x=\"%d\" y=\"%d\" text-anchor=\"end\">",
                     ML, W - MR, MT + PH, MT + PH, W - MR, H - 1);
  report_html(b, x_log ? x_log : "step");
  vkft_strbuf_puts(b, "</text>");
}

/* Appends one point of a path: a move after a gap, else a line. */
static void path_point(vkft_strbuf *b, const scale *s, double x, double y, int *pen_down) {
  vkft_strbuf_printf(b, "%c%.1f,%.1f", *pen_down ? 'L' : 'M', px(s, x), py(s, y));
  *pen_down = 1;
}

/* A curve through every point, or (a long one) through the first point and each column's last.
 * NaN values leave a gap. */
static void curve(vkft_strbuf *b, const scale *s, const chart_line *l, int smoothed,
                  const char *cls) {
  vkft_strbuf_printf(b, "<path class=\"%s\" stroke=\"%s\" d=\"", cls, l->color);
  int pen_down = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (i > 0 && downsampled(l) && i + 1 < l->n && column(s, l->p[i + 1].x) == column(s, l->p[i].x))
      continue;
    double y = value(l, i, smoothed);
    if (isfinite(y))
      path_point(b, s, l->p[i].x, y, &pen_down);
    else
      pen_down = 0;
  }
  vkft_strbuf_puts(b, "\"/>");
}

/* A long raw curve: each column's minimum and maximum, drawn as a filled band (spikes stay
 * visible); columns without a finite value break it. */
static void band(vkft_strbuf *b, const scale *s, const chart_line *l) {
  double lo[COLUMNS], hi[COLUMNS];
  for (int c = 0; c < COLUMNS; c++) lo[c] = INFINITY, hi[c] = -INFINITY;
  for (size_t i = 0; i < l->n; i++) {
    int c = column(s, l->p[i].x);
    if (isfinite(l->p[i].y)) lo[c] = fmin(lo[c], l->p[i].y), hi[c] = fmax(hi[c], l->p[i].y);
  }
  vkft_strbuf_printf(b, "<path class=\"band\" style=\"fill:%s\" d=\"", l->color);
  for (int c = 0; c < COLUMNS;) {
    if (!isfinite(lo[c])) {
      c++;
      continue;
    }
    int end = c;
    while (end < COLUMNS && isfinite(lo[end])) end++;
    for (int k = c; k < end; k++) /* along the top, back along the bottom */
      vkft_strbuf_printf(b, "%c%.1f,%.1f", k == c ? 'M' : 'L', ML + k + 0.5, py(s, hi[k]));
    for (int k = end; k-- > c;) vkft_strbuf_printf(b, "L%.1f,%.1f", ML + k + 0.5, py(s, lo[k]));
    vkft_strbuf_puts(b, "Z");
    c = end;
  }
  vkft_strbuf_puts(b, "\"/>");
}

/* Markers: an evaluation's points, or a lone point (one step) that a path cannot show. */
static void markers(vkft_strbuf *b, const scale *s, const chart_line *l) {
  size_t finite = 0;
  for (size_t i = 0; i < l->n; i++) finite += isfinite(l->p[i].y) != 0;
  if (!(l->eval && finite <= 400) && finite != 1) return;
  vkft_strbuf_printf(b, "<g class=\"pts\" fill=\"%s\">", l->color);
  for (size_t i = 0; i < l->n; i++)
    if (isfinite(l->p[i].y))
      vkft_strbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\"/>", px(s, l->p[i].x),
                         py(s, l->p[i].y));
  vkft_strbuf_puts(b, "</g>");
}

/* The threshold line and a marker over each column where lines[0] went above it. */
static void threshold(vkft_strbuf *b, const scale *s, const chart *c) {
  char label[32];
  report_format_number(label, sizeof label, c->threshold);
  double y = py(s, c->threshold);
  vkft_strbuf_printf(b,
                     "<line class=\"threshold\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
                     "<text class=\"threshold-label\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">",
                     ML, W - MR, y, y, W - MR - 2, y - 4);
  report_html(b, c->threshold_label ? c->threshold_label : "");
  vkft_strbuf_printf(b, " %s</text><path class=\"clip\" d=\"", label);
  const chart_line *l = &c->lines[0];
  for (size_t i = 0; i < l->n;) {
    int col = column(s, l->p[i].x);
    size_t top = SIZE_MAX;
    for (; i < l->n && column(s, l->p[i].x) == col; i++)
      if (l->p[i].y > c->threshold && (top == SIZE_MAX || l->p[i].y > l->p[top].y)) top = i;
    if (top != SIZE_MAX) /* a small triangle pointing down at the point */
      vkft_strbuf_printf(b, "M%.1f,%.1fl-3.5,-7h7z", px(s, l->p[top].x), py(s, l->p[top].y) - 1);
  }
  vkft_strbuf_puts(b, "\"/>");
}

/* The marks: a dashed vertical line each, its label beside the top (on the left of the line
 * when the line is in the plot's right half, so the text stays inside). */
static void marks(vkft_strbuf *b, const scale *s, const chart *c) {
  for (int k = 0; k < c->n_marks; k++) {
    const chart_mark *m = &c->marks[k];
    double x = px(s, m->x);
    int left = x > ML + PW / 2;
    vkft_strbuf_printf(b, "<g class=\"mark\" id=\"mark-%s\" data-x=\"", m->id);
    report_json_number(b, m->x);
    vkft_strbuf_printf(b,
                       "\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" style=\"stroke:%s\"/>"
                       "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\" style=\"fill:%s\">",
                       x, x, MT, MT + PH, m->color, left ? x - 4 : x + 4, MT + 11 + 13 * k,
                       left ? "end" : "start", m->color);
    report_html(b, m->label);
    vkft_strbuf_puts(b, "</text></g>");
  }
}

/* The tooltip's points: every one, or each column's last. */
static void tooltip_data(vkft_strbuf *b, const scale *s, const chart *c) {
  vkft_strbuf_printf(b, "{\"w\":%d,\"h\":%d,\"box\":[%d,%d,%d,%d],\"x\":[", W, H, ML, MT, PW, PH);
  report_json_number(b, s->x_lo), vkft_strbuf_puts(b, ","), report_json_number(b, s->x_hi);
  vkft_strbuf_puts(b, "],\"y\":["), report_json_number(b, s->y_lo), vkft_strbuf_puts(b, ",");
  report_json_number(b, s->y_hi), vkft_strbuf_puts(b, "]");
  if (c->x_log) vkft_strbuf_puts(b, ",\"xlog\":"), report_json_string(b, c->x_log);
  vkft_strbuf_puts(b, ",\"lines\":[");
  for (int k = 0; k < c->n_lines; k++) {
    const chart_line *l = &c->lines[k];
    vkft_strbuf_puts(b, k ? ",{\"name\":" : "{\"name\":"), report_json_string(b, l->label);
    vkft_strbuf_puts(b, ",\"color\":"), report_json_string(b, l->color);
    vkft_strbuf_printf(b, ",\"eval\":%d", l->eval != 0);
    for (int field = 0; field < (l->smooth ? 3 : 2); field++) {
      vkft_strbuf_puts(b, field == 0 ? ",\"x\":[" : field == 1 ? ",\"y\":[" : ",\"s\":[");
      int comma = 0;
      for (size_t i = 0; i < l->n; i++) {
        if (downsampled(l) && i + 1 < l->n && column(s, l->p[i + 1].x) == column(s, l->p[i].x))
          continue;
        if (comma) vkft_strbuf_puts(b, ",");
        report_json_number(b, field == 0 ? l->p[i].x : field == 1 ? l->p[i].y : l->smooth[i]);
        comma = 1;
      }
      vkft_strbuf_puts(b, "]");
    }
    vkft_strbuf_puts(b, "}");
  }
  vkft_strbuf_puts(b, "]}");
}

static void legend(vkft_strbuf *b, const chart *c) {
  vkft_strbuf_puts(b, "<div class=\"legend\">");
  for (int k = 0; k < c->n_lines; k++) {
    const chart_line *l = &c->lines[k];
    vkft_strbuf_printf(b, "<span class=\"key\"><i class=\"swatch%s\" style=\"background:%s\"></i>",
                       l->eval ? " eval" : "", l->color);
    report_html(b, l->label);
    vkft_strbuf_puts(b, "</span>");
  }
  if (c->threshold > 0) {
    char label[32];
    report_format_number(label, sizeof label, c->threshold);
    vkft_strbuf_printf(
        b, "<span class=\"key\"><i class=\"swatch clip\"></i>clipped (&gt; %s)</span>", label);
  }
  vkft_strbuf_puts(b, "</div>");
}

void chart_write(vkft_strbuf *b, const chart *c) {
  scale s = make_scale(c);
  vkft_strbuf_printf(
      b, "<figure class=\"chart\" id=\"chart-%s\"><figcaption><span class=\"title\">", c->id);
  report_html(b, c->title);
  vkft_strbuf_puts(b, "</span>");
  if (c->note[0]) {
    vkft_strbuf_puts(b, "<span class=\"note\">");
    report_html(b, c->note);
    vkft_strbuf_puts(b, "</span>");
  }
  vkft_strbuf_puts(b, "</figcaption>");
  legend(b, c);
  vkft_strbuf_printf(b, "<div class=\"plot\"><svg viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
                     W, H);
  report_html(b, c->title);
  vkft_strbuf_puts(b, "\">");
  axes(b, &s, c->x_log);
  for (int k = 0; k < c->n_lines; k++) {
    const chart_line *l = &c->lines[k];
    if (downsampled(l))
      band(b, &s, l);
    else if (l->smooth)
      curve(b, &s, l, 0, "raw");
    curve(b, &s, l, l->smooth != NULL, l->smooth ? "smooth" : l->eval ? "line eval" : "line");
    markers(b, &s, l);
  }
  if (c->threshold > 0 && c->n_lines > 0) threshold(b, &s, c);
  marks(b, &s, c);
  vkft_strbuf_printf(
      b,
      "<line class=\"guide\" x1=\"0\" x2=\"0\" y1=\"%d\" y2=\"%d\" visibility=\"hidden\"/>"
      "<g class=\"dots\"></g></svg><div class=\"tip\" hidden></div></div>"
      "<script type=\"application/json\" class=\"chart-data\">",
      MT, MT + PH);
  tooltip_data(b, &s, c);
  vkft_strbuf_puts(b, "</script></figure>\n");
}
