/* Private to src/report/: HTML/JSON escapes and number formats (buf.c), the metrics file as
 * one series of points per key (metrics.c), and one chart drawn as inline SVG (chart.c). */
#ifndef VKFT_REPORT_INTERNAL_H
#define VKFT_REPORT_INTERNAL_H

#include "vkft/buf.h"
#include "vkft/error.h"

#include <stddef.h>
#include <stdint.h>

/* ---- buf.c: escapes and number formats. The page is a vkft_strbuf (vkft/buf.h) written without
 * checking each append: a failed one is remembered in `failed` and reported once, at the end. */
void report_html(vkft_strbuf *b, const char *s); /* text or attribute value, escaped */
/* A JSON string literal that is also safe inside <script> (no "</", no U+2028/2029 issues). */
void report_json_string(vkft_strbuf *b, const char *s);
void report_json_number(vkft_strbuf *b, double v); /* 7 significant digits; null when not finite */

/* Numbers for people: 4 significant digits, k/M/G for large ones, exponents for tiny ones. */
void report_format_number(char *out, size_t size, double v);
/* An axis label at a multiple of step on an axis reaching |top|: as many digits as the step
 * needs, k/M/G on large axes, one shared exponent on small ones. */
void report_format_tick(char *out, size_t size, double v, double step, double top);
/* "1h02m", "3m05s", "12s" */
void report_format_duration(char *out, size_t size, double seconds);

/* ---- metrics.c */
typedef struct point {
  double x, y; /* step, value (NaN where the line had null, NaN or Infinity) */
} point;

typedef struct series {
  char name[64];
  point *p;
  size_t n, cap;
} series;

enum { REPORT_MAX_SERIES = 48 };

typedef struct metrics {
  series s[REPORT_MAX_SERIES];
  int n_series;
  size_t lines;        /* non-blank lines */
  size_t bad_lines;    /* not a JSON object with a numeric "step" */
  size_t dropped_keys; /* keys past REPORT_MAX_SERIES */
} metrics;

/* Reads OUT/metrics.jsonl; a missing file reads as no lines. */
int metrics_read(const char *path, metrics *m);
int metrics_parse(const char *text, size_t size, metrics *m);
void metrics_free(metrics *m);
const series *metrics_find(const metrics *m, const char *name);
/* The values of a series (NaN included), malloc'd; NULL when out of memory. */
double *series_values(const series *s);

/* TensorBoard's smoothing (a debiased EMA; non-finite values pass through; a constant series
 * stays as it is), into out[n]. */
void report_ema(const point *p, size_t n, double weight, double *out);
/* The EMA weight the report uses for a series of n points: 1 - 30/n (a memory of about n/30
 * steps, so the curve keeps its shape at any length), from 0.3 (short runs: little lag) to
 * 0.999. */
double report_smoothing_weight(size_t n);

/* ---- chart.c: one chart as SVG plus the JSON its tooltip reads */
enum { CHART_MAX_LINES = 8 };

typedef struct chart_line {
  const char *label, *color;
  const point *p;
  size_t n;
  const double *smooth; /* NULL: drawn as is; else p is drawn faint and smooth bold */
  int eval;             /* evaluation points: dashed, with markers */
} chart_line;

/* A vertical line across the plot at x, labelled (the learning rate lr-find suggests). */
typedef struct chart_mark {
  double x;          /* in the chart's x units (log10 of x_log's quantity) */
  const char *id;    /* the line's element id ("mark-" + id) */
  const char *label; /* drawn beside the line's top */
  const char *color;
} chart_mark;
enum { CHART_MAX_MARKS = 4 };

typedef struct chart {
  const char *id, *title;
  char note[256]; /* under the title: the smoothing used, clipped steps */
  chart_line lines[CHART_MAX_LINES];
  int n_lines;
  double x_lo, x_hi; /* the step range, the same for every chart */
  double threshold;  /* > 0: a dashed line there, and markers where lines[0] exceeds it */
  const char *threshold_label;
  const char *x_log; /* NULL: x is the step; else x is log10 of this quantity (the tooltip shows
                        "NAME 10^x") */
  chart_mark marks[CHART_MAX_MARKS];
  int n_marks;
} chart;

/* Appends <figure class="chart"> with the legend, the SVG and the tooltip's data. */
void chart_write(vkft_strbuf *b, const chart *c);

/* ---- page.c: the whole page */
typedef struct page_input {
  const metrics *m;
  const char *out_dir, *title, *status;
  int64_t total_steps;        /* 0: unknown */
  const struct cJSON *config; /* the run's configuration, or NULL */
  const char *const *lines;   /* the trainer's information lines */
  int n_lines;
  const char *run_json;             /* what `vkft report` reads back (page_write embeds it) */
  double x_lo, x_hi, max_grad_norm; /* set by page_write */
} page_input;
int page_write(vkft_strbuf *b, page_input *in);

/* page_assets.c */
extern const char report_style[];
extern const char report_script[];

#endif
