/* metrics.jsonl as series: one list of (step, value) points per numeric key, whatever the keys
 * are (vkft's own, TRL's preference metrics, anything else a line carries). Lines that are not
 * JSON objects with a numeric "step" are counted and skipped; null, NaN and Infinity (which
 * Python's json module writes) are kept as NaN, a gap in the curve. Also TensorBoard's EMA
 * smoothing and the terminal sparkline. */
#include "internal.h"

#include "vkft/platform.h"
#include "vkft/report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const series *metrics_find(const metrics *m, const char *name) {
  for (int i = 0; i < m->n_series; i++)
    if (!strcmp(m->s[i].name, name)) return &m->s[i];
  return NULL;
}

static series *series_for(metrics *m, const char *name) {
  series *s = (series *)metrics_find(m, name);
  if (s) return s;
  if (m->n_series == REPORT_MAX_SERIES || strlen(name) >= sizeof s->name) {
    m->dropped_keys++;
    return NULL;
  }
  s = &m->s[m->n_series++];
  memset(s, 0, sizeof *s);
  strcpy(s->name, name);
  return s;
}

static int add_point(series *s, double x, double y) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 256;
    point *grown = realloc(s->p, cap * sizeof *grown);
    if (!grown) return vkft_error_nomem();
    s->p = grown;
    s->cap = cap;
  }
  s->p[s->n++] = (point){x, y};
  return VKFT_OK;
}

/* Python's json.dumps writes NaN, Infinity and -Infinity, which are not JSON: outside strings
 * they become null (the value is kept as NaN). */
static char *python_constants_to_null(const char *line, size_t len) {
  char *out = malloc(2 * len + 1); /* "NaN" -> "null" grows: at most 4/3 */
  if (!out) return NULL;
  size_t o = 0;
  int in_string = 0;
  for (size_t i = 0; i < len; i++) {
    char c = line[i];
    if (in_string) {
      if (c == '\\' && i + 1 < len)
        out[o++] = c, c = line[++i];
      else if (c == '"')
        in_string = 0;
      out[o++] = c;
      continue;
    }
    if (c == '"') in_string = 1;
    size_t rest = len - i;
    size_t skip = rest >= 3 && !memcmp(line + i, "NaN", 3)         ? 3
                  : rest >= 8 && !memcmp(line + i, "Infinity", 8)  ? 8
                  : rest >= 9 && !memcmp(line + i, "-Infinity", 9) ? 9
                                                                   : 0;
    if (skip) {
      memcpy(out + o, "null", 4), o += 4, i += skip - 1;
      continue;
    }
    out[o++] = c;
  }
  out[o] = 0;
  return out;
}

static cJSON *parse_line(const char *line, size_t len) {
  const char *end = NULL;
  cJSON *o = cJSON_ParseWithLengthOpts(line, len, &end, 0);
  if (o && end) { /* nothing but blanks after the object */
    while (end < line + len && strchr(" \t\r", *end) && *end) end++;
    if (end < line + len) cJSON_Delete(o), o = NULL;
  }
  if (o || !len) return o;
  char *fixed = python_constants_to_null(line, len);
  if (!fixed) return NULL;
  if (strlen(fixed) != len || memcmp(fixed, line, len)) o = cJSON_ParseWithOpts(fixed, NULL, 1);
  free(fixed);
  return o;
}

static int add_line(metrics *m, const char *line, size_t len) {
  cJSON *o = parse_line(line, len);
  const cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "step");
  if (!cJSON_IsObject(o) || !cJSON_IsNumber(step) || !isfinite(step->valuedouble)) {
    m->bad_lines++;
    cJSON_Delete(o);
    return VKFT_OK;
  }
  int status = VKFT_OK;
  for (const cJSON *e = o->child; e && status == VKFT_OK; e = e->next) {
    if (e == step || !e->string || !(cJSON_IsNumber(e) || cJSON_IsNull(e))) continue;
    series *s = series_for(m, e->string);
    if (s) status = add_point(s, step->valuedouble, cJSON_IsNumber(e) ? e->valuedouble : NAN);
  }
  cJSON_Delete(o);
  return status;
}

static int by_step(const void *a, const void *b) {
  const point *p = a, *q = b;
  return p->x < q->x ? -1 : p->x > q->x;
}

int metrics_parse(const char *text, size_t size, metrics *m) {
  memset(m, 0, sizeof *m);
  for (size_t at = 0; at < size;) {
    const char *nl = memchr(text + at, '\n', size - at);
    size_t len = nl ? (size_t)(nl - (text + at)) : size - at;
    size_t blank = 0;
    while (blank < len && strchr(" \t\r", text[at + blank]) && text[at + blank]) blank++;
    if (blank < len) {
      m->lines++;
      if (add_line(m, text + at, len) != VKFT_OK) {
        metrics_free(m);
        return VKFT_ERR;
      }
    }
    at += len + 1;
  }
  /* a file put together from several runs may go back in steps: the curves go forward */
  for (int i = 0; i < m->n_series; i++) {
    series *s = &m->s[i];
    for (size_t k = 1; k < s->n; k++)
      if (s->p[k].x < s->p[k - 1].x) {
        qsort(s->p, s->n, sizeof *s->p, by_step);
        break;
      }
  }
  return VKFT_OK;
}

int metrics_read(const char *path, metrics *m) {
  memset(m, 0, sizeof *m);
  if (!vkft_file_exists(path)) return VKFT_OK;
  char *text;
  size_t size;
  if (vkft_file_read(path, &text, &size) != VKFT_OK) return VKFT_ERR;
  int status = metrics_parse(text, size, m);
  free(text);
  return status == VKFT_OK ? VKFT_OK : vkft_error_prefix("%s", path);
}

void metrics_free(metrics *m) {
  for (int i = 0; i < m->n_series; i++) free(m->s[i].p);
  memset(m, 0, sizeof *m);
}

double *series_values(const series *s) {
  double *v = malloc((s->n ? s->n : 1) * sizeof *v);
  for (size_t i = 0; v && i < s->n; i++) v[i] = s->p[i].y;
  return v;
}

/* As TensorBoard's line chart smooths (tensorboard/components/vz_line_chart2/line-chart.ts,
 * resmoothDataset): last = last * w + (1 - w) * value from last = 0, divided by 1 - w^k after
 * k finite values so the start is not pulled towards 0. */
void report_ema(const point *p, size_t n, double weight, double *out) {
  int constant = 1;
  for (size_t i = 1; i < n && constant; i++) constant = p[i].y == p[0].y;
  double last = 0;
  int accumulated = 0;
  for (size_t i = 0; i < n; i++) {
    double v = p[i].y;
    if (constant || !isfinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    accumulated++;
    out[i] = weight == 1 ? last : last / (1 - pow(weight, accumulated));
  }
}

double report_smoothing_weight(size_t n) {
  double w = n > 0 ? 1.0 - 30.0 / (double)n : 0;
  return w < 0.3 ? 0.3 : w > 0.999 ? 0.999 : w;
}

int vkft_report_sparkline(const double *values, size_t n, int width, char *out, size_t size) {
  static const char *const blocks[8] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                        "\u2585", "\u2586", "\u2587", "\u2588"};
  if (width < 1) width = 1;
  size_t cells = n < (size_t)width ? n : (size_t)width;
  if (size < cells * 3 + 1)
    return vkft_error_with(VKFT_ERR_INTERNAL, "sparkline: %zu bytes for %zu cells", size, cells);
  double mean[256];
  if (cells > sizeof mean / sizeof mean[0]) cells = sizeof mean / sizeof mean[0];
  double lo = INFINITY, hi = -INFINITY;
  for (size_t c = 0; c < cells; c++) { /* each cell: the mean of its share of the values */
    size_t from = c * n / cells, to = (c + 1) * n / cells;
    double sum = 0;
    size_t count = 0;
    for (size_t i = from; i < to; i++)
      if (isfinite(values[i])) sum += values[i], count++;
    mean[c] = count ? sum / (double)count : NAN;
    if (isfinite(mean[c])) lo = fmin(lo, mean[c]), hi = fmax(hi, mean[c]);
  }
  size_t len = 0;
  for (size_t c = 0; c < cells; c++) {
    if (!isfinite(mean[c])) {
      out[len++] = ' ';
      continue;
    }
    /* halves: hi - lo may not fit in a double */
    double t = hi > lo ? (mean[c] / 2 - lo / 2) / (hi / 2 - lo / 2) : 3.0 / 7;
    int level = (int)(fmin(fmax(t, 0), 1) * 7 + 0.5);
    memcpy(out + len, blocks[level], 3);
    len += 3;
  }
  out[len] = 0;
  return VKFT_OK;
}
