/* The report page: the header, summary cards, the charts (a table says which metrics keys each
 * chart draws; every other numeric key gets a chart of its own), the run's information lines
 * (with the memory plan as a bar) and the configuration as tables. The style sheet and the
 * script (tooltips) are in page_assets.c. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Series colours, in order, for the lines of one chart (readable on light and dark). */
static const char *const palette[] = {"#2563eb", "#ea580c", "#16a34a", "#dc2626",
                                      "#9333ea", "#0891b2", "#ca8a04", "#db2777"};

enum { SMOOTH = 1, CUMULATIVE = 2, CLIP = 4 };

typedef struct chart_def {
  const char *id, *title;
  const char *keys[2];
  int flags;
} chart_def;

/* vkft's metrics (README, "The output folder"), then TRL's preference metrics (DPO, ORPO:
 * trl/trainer/dpo_trainer.py and orpo_trainer.py, get_batch_loss_metrics). "eval_K" of a key K
 * is drawn on K's chart as the evaluation curve. */
static const chart_def chart_defs[] = {
    {"loss", "Loss", {"loss"}, SMOOTH},
    {"lr", "Learning rate", {"lr"}, 0},
    {"grad_norm", "Gradient norm (before clipping)", {"grad_norm"}, SMOOTH | CLIP},
    {"throughput", "Throughput (tokens/s)", {"tokens_per_s"}, SMOOTH},
    {"tokens", "Tokens (cumulative)", {"tokens", "trained_tokens"}, CUMULATIVE},
    {"rewards", "Rewards", {"rewards/chosen", "rewards/rejected"}, SMOOTH},
    {"margins", "Reward margin", {"rewards/margins"}, SMOOTH},
    {"accuracies", "Reward accuracy", {"rewards/accuracies"}, SMOOTH},
    {"logps", "Log-probabilities", {"logps/chosen", "logps/rejected"}, SMOOTH},
    {"logits", "Logits", {"logits/chosen", "logits/rejected"}, SMOOTH},
    {"nll_loss", "NLL loss (ORPO)", {"nll_loss"}, SMOOTH},
    {"log_odds", "Log odds (ORPO)", {"log_odds_ratio", "log_odds_chosen"}, SMOOTH},
};

/* Keys shown elsewhere (the x axis, the cards) rather than as charts. */
static const char *const not_charted[] = {"step", "elapsed_s", "eval_tokens", "epoch"};

static double number_at(const cJSON *root, const char *section, const char *key) {
  const cJSON *v =
      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, section), key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The chart being assembled, with the arrays it owns. */
typedef struct chart_build {
  chart c;
  point *owned_points[CHART_MAX_LINES];
  double *owned_smooth[CHART_MAX_LINES];
} chart_build;

static void build_free(chart_build *cb) {
  for (int k = 0; k < CHART_MAX_LINES; k++) free(cb->owned_points[k]), free(cb->owned_smooth[k]);
}

/* Adds series s to the chart (running sums for CUMULATIVE, an EMA for SMOOTH); 0 when empty. */
static int add_line(chart_build *cb, const series *s, int flags, int eval, int *failed) {
  if (!s || s->n == 0 || cb->c.n_lines == CHART_MAX_LINES) return 0;
  int k = cb->c.n_lines;
  chart_line *l = &cb->c.lines[k];
  *l = (chart_line){.label = s->name, .color = palette[k], .p = s->p, .n = s->n, .eval = eval};
  if (flags & CUMULATIVE) {
    point *sum = malloc(s->n * sizeof *sum);
    if (!sum) return *failed = 1, 0;
    double total = 0;
    for (size_t i = 0; i < s->n; i++) {
      if (isfinite(s->p[i].y)) total += s->p[i].y;
      sum[i] = (point){s->p[i].x, total};
    }
    cb->owned_points[k] = sum;
    l->p = sum;
  }
  if ((flags & SMOOTH) && !eval && s->n > 2) {
    double *smooth = malloc(s->n * sizeof *smooth);
    if (!smooth) return *failed = 1, 0;
    report_ema(s->p, s->n, report_smoothing_weight(s->n), smooth);
    cb->owned_smooth[k] = smooth;
    l->smooth = smooth;
  }
  cb->c.n_lines++;
  return 1;
}

static size_t count_above(const series *s, double threshold) {
  size_t n = 0;
  for (size_t i = 0; s && i < s->n; i++) n += s->p[i].y > threshold;
  return n;
}

static int is_not_charted(const char *name) {
  for (size_t i = 0; i < sizeof not_charted / sizeof not_charted[0]; i++)
    if (!strcmp(name, not_charted[i])) return 1;
  return 0;
}

/* Draws one chart of keys (and their eval_ curves); marks the series it used. */
static int draw_chart(vkft_strbuf *b, const page_input *in, const char *id, const char *title,
                      const char *const *keys, int n_keys, int flags, int *used) {
  chart_build cb = {.c = {.id = id, .title = title, .x_lo = in->x_lo, .x_hi = in->x_hi}};
  int failed = 0;
  const metrics *m = in->m;
  for (int pass = 0; pass < 2; pass++) /* the training curves first, then the evaluations */
    for (int k = 0; k < n_keys; k++) {
      char name[80];
      snprintf(name, sizeof name, "%s%s", pass ? "eval_" : "", keys[k]);
      const series *s = is_not_charted(name) ? NULL : metrics_find(m, name);
      if (s && add_line(&cb, s, flags, pass, &failed)) used[s - m->s] = 1;
    }
  if (cb.c.n_lines == 0 || failed) {
    build_free(&cb);
    return failed ? vkft_error_nomem() : VKFT_OK;
  }
  const chart_line *first = &cb.c.lines[0];
  if (first->smooth)
    snprintf(cb.c.note, sizeof cb.c.note,
             "bold: EMA-smoothed (TensorBoard's, weight %.3g); faint: raw",
             report_smoothing_weight(first->n));
  if ((flags & CLIP) && in->max_grad_norm > 0 && !first->eval) {
    size_t clipped = count_above(metrics_find(m, keys[0]), in->max_grad_norm);
    size_t len = strlen(cb.c.note);
    snprintf(cb.c.note + len, sizeof cb.c.note - len, "%sclipped at %zu of %zu steps",
             len ? "; " : "", clipped, first->n);
    cb.c.threshold = in->max_grad_norm;
    cb.c.threshold_label = "max_grad_norm";
  }
  chart_write(b, &cb.c);
  build_free(&cb);
  return VKFT_OK;
}

static int charts(vkft_strbuf *b, const page_input *in) {
  int used[REPORT_MAX_SERIES] = {0};
  const metrics *m = in->m;
  vkft_strbuf_puts(b, "<section class=\"charts\">\n");
  for (size_t i = 0; i < sizeof chart_defs / sizeof chart_defs[0]; i++) {
    const chart_def *d = &chart_defs[i];
    int n_keys = d->keys[1] ? 2 : 1;
    if (draw_chart(b, in, d->id, d->title, d->keys, n_keys, d->flags, used) != VKFT_OK)
      return VKFT_ERR;
  }
  /* every other numeric key: a chart of its own, with its eval_ twin when there is one */
  for (int i = 0; i < m->n_series; i++) {
    const char *name = m->s[i].name;
    if (used[i] || is_not_charted(name)) continue;
    if (!strncmp(name, "eval_", 5) && metrics_find(m, name + 5)) continue; /* drawn with it */
    char id[32];
    snprintf(id, sizeof id, "key-%d", i);
    const char *keys[1] = {name};
    if (draw_chart(b, in, id, name, keys, 1, SMOOTH, used) != VKFT_OK) return VKFT_ERR;
  }
  vkft_strbuf_puts(b, "</section>\n");
  return VKFT_OK;
}

static void card(vkft_strbuf *b, const char *label, const char *value, const char *sub,
                 double progress) {
  vkft_strbuf_puts(b, "<div class=\"card\"><div class=\"label\">");
  report_html(b, label);
  vkft_strbuf_puts(b, "</div><div class=\"value\">");
  report_html(b, value);
  vkft_strbuf_puts(b, "</div>");
  if (sub && sub[0]) {
    vkft_strbuf_puts(b, "<div class=\"sub\">");
    report_html(b, sub);
    vkft_strbuf_puts(b, "</div>");
  }
  if (progress >= 0)
    vkft_strbuf_printf(b, "<div class=\"progress\"><i style=\"width:%.1f%%\"></i></div>",
                       100 * fmin(progress, 1));
  vkft_strbuf_puts(b, "</div>");
}

/* The last finite value of a series (NaN when none), and its index. */
static double last_value(const series *s, size_t *at) {
  for (size_t i = s ? s->n : 0; i-- > 0;)
    if (isfinite(s->p[i].y)) {
      if (at) *at = i;
      return s->p[i].y;
    }
  return NAN;
}

static double total_of(const series *s) {
  double sum = 0;
  for (size_t i = 0; s && i < s->n; i++)
    if (isfinite(s->p[i].y)) sum += s->p[i].y;
  return sum;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median_of(const series *s) {
  double *v = s && s->n ? malloc(s->n * sizeof *v) : NULL;
  size_t n = 0;
  for (size_t i = 0; v && i < s->n; i++)
    if (isfinite(s->p[i].y)) v[n++] = s->p[i].y;
  double median = NAN;
  if (n) {
    qsort(v, n, sizeof *v, by_value);
    median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  free(v);
  return median;
}

static void loss_card(vkft_strbuf *b, const metrics *m) {
  const series *loss = metrics_find(m, "loss");
  size_t at = 0;
  double last = last_value(loss, &at);
  if (!isfinite(last)) return;
  char value[32], raw[32], first[32], sub[128];
  report_format_number(raw, sizeof raw, last);
  size_t start = 0;
  while (start < at && !isfinite(loss->p[start].y)) start++;
  report_format_number(first, sizeof first, loss->p[start].y);
  if (loss->n > 2) {
    double *smooth = malloc(loss->n * sizeof *smooth);
    if (smooth) {
      report_ema(loss->p, loss->n, report_smoothing_weight(loss->n), smooth);
      report_format_number(value, sizeof value, smooth[at]);
      snprintf(sub, sizeof sub, "smoothed; last %s, first %s", raw, first);
      free(smooth);
      card(b, "Train loss", value, sub, -1);
      return;
    }
  }
  snprintf(sub, sizeof sub, "first %s", first);
  card(b, "Train loss", raw, sub, -1);
}

static void eval_card(vkft_strbuf *b, const metrics *m) {
  const series *eval = metrics_find(m, "eval_loss");
  double last = last_value(eval, NULL);
  if (!isfinite(last)) return;
  size_t best = 0;
  for (size_t i = 0; i < eval->n; i++)
    if (isfinite(eval->p[i].y) && !(eval->p[best].y <= eval->p[i].y)) best = i;
  char value[32], low[32], sub[128];
  report_format_number(value, sizeof value, last);
  report_format_number(low, sizeof low, eval->p[best].y);
  snprintf(sub, sizeof sub, "best %s at step %.0f; %zu evaluation%s", low, eval->p[best].x, eval->n,
           eval->n == 1 ? "" : "s");
  card(b, "Eval loss", value, sub, -1);
}

static void cards(vkft_strbuf *b, const page_input *in, double last_step) {
  const metrics *m = in->m;
  char value[64], sub[160], a[32], c[32];
  vkft_strbuf_puts(b, "<section class=\"cards\">");
  snprintf(value, sizeof value, "%.0f", last_step);
  if (in->total_steps > 0)
    snprintf(sub, sizeof sub, "of %lld planned", (long long)in->total_steps);
  else
    snprintf(sub, sizeof sub, "optimizer steps");
  card(b, "Step", value, sub, in->total_steps > 0 ? last_step / (double)in->total_steps : -1);
  loss_card(b, m);
  eval_card(b, m);
  const series *trained = metrics_find(m, "trained_tokens"), *tokens = metrics_find(m, "tokens");
  if (trained || tokens) {
    report_format_number(a, sizeof a, total_of(trained ? trained : tokens));
    report_format_number(c, sizeof c, total_of(tokens));
    snprintf(sub, sizeof sub, trained && tokens ? "of %s tokens seen" : "tokens", c);
    card(b, trained ? "Trained tokens" : "Tokens", a, sub, -1);
  }
  double median = median_of(metrics_find(m, "tokens_per_s"));
  if (isfinite(median)) {
    report_format_number(value, sizeof value, median);
    card(b, "Throughput", value, "tokens/s (median over steps)", -1);
  }
  double elapsed = last_value(metrics_find(m, "elapsed_s"), NULL);
  if (isfinite(elapsed)) {
    report_format_duration(value, sizeof value, elapsed);
    card(b, "Elapsed", value, "since the run started", -1);
  }
  const series *norm = metrics_find(m, "grad_norm");
  if (norm && norm->n && in->max_grad_norm > 0) {
    size_t clipped = count_above(norm, in->max_grad_norm);
    snprintf(value, sizeof value, "%.1f%%", 100.0 * (double)clipped / (double)norm->n);
    report_format_number(a, sizeof a, in->max_grad_norm);
    snprintf(sub, sizeof sub, "%zu of %zu steps had a gradient norm above %s", clipped, norm->n, a);
    card(b, "Clipped steps", value, sub, -1);
  }
  vkft_strbuf_puts(b, "</section>\n");
}

typedef struct memory_part {
  char name[32];
  double mib;
} memory_part;

/* "weights 1.0 MiB, trainable 0.4 MiB, ...: 30.9 MiB in all": the named sizes (not the total). */
static int parse_memory(const char *text, memory_part *parts, int max) {
  int n = 0;
  for (const char *p = text; *p && n < max;) {
    const char *name = p;
    while (*p && !(*p >= '0' && *p <= '9')) p++;
    size_t name_len = (size_t)(p - name);
    while (name_len && name[name_len - 1] == ' ') name_len--;
    char *end;
    double size = strtod(p, &end);
    if (end == p) break;
    double scale = !strncmp(end, " MiB", 4) ? 1 : !strncmp(end, " GiB", 4) ? 1024 : 0;
    if (scale && name_len && name_len < sizeof parts[0].name && isfinite(size) && size >= 0) {
      memcpy(parts[n].name, name, name_len);
      parts[n].name[name_len] = 0;
      parts[n++].mib = size * scale;
    }
    const char *next = strpbrk(end, ",:");
    if (!next) break;
    p = next + 1;
    while (*p == ' ') p++;
  }
  return n;
}

static void memory_bar(vkft_strbuf *b, const char *text) {
  memory_part parts[12];
  int n = parse_memory(text, parts, 12);
  double total = 0;
  for (int i = 0; i < n; i++) total += parts[i].mib;
  if (n < 2 || !(total > 0)) return;
  vkft_strbuf_puts(b, "<div class=\"membar\">");
  for (int i = 0; i < n; i++) {
    vkft_strbuf_printf(b, "<span style=\"flex-grow:%.4f;background:%s\" title=\"",
                       parts[i].mib / total, palette[i % 8]);
    report_html(b, parts[i].name);
    vkft_strbuf_printf(b, " %.1f MiB\"></span>", parts[i].mib);
  }
  vkft_strbuf_puts(b, "</div><div class=\"memlegend\">");
  for (int i = 0; i < n; i++) {
    vkft_strbuf_printf(b, "<span><i class=\"swatch\" style=\"background:%s\"></i>", palette[i % 8]);
    report_html(b, parts[i].name);
    vkft_strbuf_printf(b, " %.1f MiB</span>", parts[i].mib);
  }
  vkft_strbuf_puts(b, "</div>");
}

static void run_lines(vkft_strbuf *b, const page_input *in) {
  vkft_strbuf_puts(b, "<section class=\"box run\"><h2>Run</h2>");
  if (in->n_lines == 0) {
    vkft_strbuf_puts(b,
                     "<p class=\"muted\">No run information was recorded: the data statistics and "
                     "memory plan appear here when the trainer writes the report.</p></section>");
    return;
  }
  vkft_strbuf_puts(b, "<table>");
  for (int i = 0; i < in->n_lines; i++) {
    const char *line = in->lines[i], *colon = strstr(line, ": ");
    vkft_strbuf_puts(b, "<tr><th>");
    if (colon && colon - line < 40) {
      char label[48];
      snprintf(label, sizeof label, "%.*s", (int)(colon - line), line);
      report_html(b, label);
      line = colon + 2;
    }
    vkft_strbuf_puts(b, "</th><td>");
    report_html(b, line);
    if (colon && !strncmp(in->lines[i], "memory plan", 11)) memory_bar(b, line);
    vkft_strbuf_puts(b, "</td></tr>");
  }
  vkft_strbuf_puts(b, "</table></section>");
}

static void config_value(vkft_strbuf *b, const cJSON *v) {
  if (cJSON_IsString(v)) {
    if (v->valuestring[0])
      report_html(b, v->valuestring);
    else
      vkft_strbuf_puts(b, "<span class=\"muted\">\"\"</span>");
  } else if (cJSON_IsNumber(v)) {
    vkft_strbuf_printf(b, "%.10g", v->valuedouble);
  } else if (cJSON_IsArray(v) && !v->child) {
    vkft_strbuf_puts(b, "<span class=\"muted\">none</span>");
  } else if (cJSON_IsArray(v)) {
    for (const cJSON *e = v->child; e; e = e->next) {
      if (e != v->child) vkft_strbuf_puts(b, cJSON_IsString(e) ? ", " : "<br>");
      config_value(b, e);
    }
  } else if (cJSON_IsObject(v)) { /* {"path": ..., "weight": ...}: key value pairs */
    for (const cJSON *e = v->child; e; e = e->next) {
      if (e != v->child) vkft_strbuf_puts(b, " &middot; ");
      report_html(b, e->string ? e->string : "");
      vkft_strbuf_puts(b, " ");
      config_value(b, e);
    }
  } else {
    vkft_strbuf_printf(b, "<code>%s</code>",
                       cJSON_IsTrue(v)    ? "true"
                       : cJSON_IsFalse(v) ? "false"
                                          : "null");
  }
}

static void config_table(vkft_strbuf *b, const char *caption, const cJSON *object,
                         int scalars_only) {
  vkft_strbuf_puts(b, "<table><caption>");
  report_html(b, caption);
  vkft_strbuf_puts(b, "</caption>");
  for (const cJSON *e = object->child; e; e = e->next) {
    if (scalars_only && cJSON_IsObject(e)) continue;
    vkft_strbuf_puts(b, "<tr><th>");
    report_html(b, e->string ? e->string : "");
    vkft_strbuf_puts(b, "</th><td>");
    config_value(b, e);
    vkft_strbuf_puts(b, "</td></tr>");
  }
  vkft_strbuf_puts(b, "</table>");
}

static void config_tables(vkft_strbuf *b, const cJSON *config) {
  vkft_strbuf_puts(b, "<section class=\"box config\"><h2>Configuration</h2>");
  if (!cJSON_IsObject(config)) {
    vkft_strbuf_puts(b, "<p class=\"muted\">No configuration found (no checkpoint holds one).</p>"
                        "</section>");
    return;
  }
  vkft_strbuf_puts(b, "<div class=\"tables\">");
  config_table(b, "run", config, 1);
  for (const cJSON *e = config->child; e; e = e->next)
    if (cJSON_IsObject(e)) config_table(b, e->string ? e->string : "", e, 0);
  vkft_strbuf_puts(b, "</div></section>");
}

static const char *status_class(const char *status) {
  if (strstr(status, "interrupt") || strstr(status, "stopped") || strstr(status, "unfinished"))
    return "stopped";
  if (strstr(status, "fail") || strstr(status, "diverged") || strstr(status, "error"))
    return "failed";
  return strstr(status, "finished") ? "finished" : "running";
}

static void header(vkft_strbuf *b, const page_input *in) {
  vkft_strbuf_puts(b, "<header><div class=\"brand\">vkft training report</div><h1>");
  report_html(b, in->title);
  vkft_strbuf_puts(b, "</h1><span class=\"where\">");
  report_html(b, in->out_dir);
  vkft_strbuf_puts(b, "</span>");
  if (in->status && in->status[0]) {
    vkft_strbuf_printf(b, "<span class=\"badge %s\">", status_class(in->status));
    report_html(b, in->status);
    vkft_strbuf_puts(b, "</span>");
  }
  vkft_strbuf_puts(b, "</header>\n");
}

int page_write(vkft_strbuf *b, page_input *in) {
  const metrics *m = in->m;
  double x_min = INFINITY, x_max = -INFINITY;
  for (int i = 0; i < m->n_series; i++)
    if (m->s[i].n)
      x_min = fmin(x_min, m->s[i].p[0].x), x_max = fmax(x_max, m->s[i].p[m->s[i].n - 1].x);
  if (!isfinite(x_min)) x_min = 0, x_max = 0;
  in->x_lo = x_min >= 0 && x_min <= 1 ? 0 : x_min;
  in->x_hi = fmax(fmax(x_max, (double)in->total_steps), in->x_lo + 2); /* one step: mid-chart */
  in->max_grad_norm = number_at(in->config, "train", "max_grad_norm");
  vkft_strbuf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                      "<title>vkft report: ");
  report_html(b, in->title);
  vkft_strbuf_printf(b, "</title><style>%s</style></head>\n<body><main>\n", report_style);
  header(b, in);
  if (m->bad_lines || m->dropped_keys) {
    vkft_strbuf_puts(b, "<p class=\"warn\">");
    if (m->bad_lines)
      vkft_strbuf_printf(b,
                         "%zu line%s of metrics.jsonl %s not a JSON object with a \"step\" and "
                         "%s left out. ",
                         m->bad_lines, m->bad_lines == 1 ? "" : "s",
                         m->bad_lines == 1 ? "is" : "are", m->bad_lines == 1 ? "is" : "are");
    if (m->dropped_keys)
      vkft_strbuf_printf(b, "Keys past the first %d are not drawn.", REPORT_MAX_SERIES);
    vkft_strbuf_puts(b, "</p>");
  }
  cards(b, in, x_max);
  if (m->n_series == 0)
    vkft_strbuf_puts(b, "<p class=\"empty\">No step has been logged yet: metrics.jsonl is empty or "
                        "missing.</p>\n");
  else if (charts(b, in) != VKFT_OK)
    return VKFT_ERR;
  vkft_strbuf_puts(b, "<div class=\"details\">");
  run_lines(b, in);
  config_tables(b, in->config);
  vkft_strbuf_printf(
      b,
      "</div>\n<footer>Written by vkft from metrics.jsonl (%zu line%s). Hover a chart "
      "for its values. Smoothing is TensorBoard's debiased exponential moving "
      "average; its weight grows with the run's length (1 &minus; 30/steps, from 0.3 "
      "to 0.999). Long runs are drawn through each pixel column's minimum and "
      "maximum.</footer>\n</main>\n",
      m->lines, m->lines == 1 ? "" : "s");
  if (in->run_json) { /* '<' only occurs inside JSON strings, where \u003c means the same */
    vkft_strbuf_puts(b, "<script type=\"application/json\" id=\"vkft-run\">");
    for (const char *p = in->run_json; *p; p++)
      if (*p == '<')
        vkft_strbuf_puts(b, "\\u003c");
      else
        vkft_strbuf_printf(b, "%c", *p);
    vkft_strbuf_puts(b, "</script>\n");
  }
  vkft_strbuf_printf(b, "<script>%s</script>\n</body></html>\n", report_script);
  return VKFT_OK;
}
