/* The training report (vkft/report.h) without a browser: the sparkline, the throttle, the page's
 * charts read back from its JSON (values, TensorBoard's EMA computed here independently, eval
 * curves, clipping), robustness (NaN/Infinity/null, bad lines, a single step, no steps, unsorted
 * steps), downsampling of a 100k-step run that keeps a one-step spike, TRL's preference metrics
 * and unknown keys, and `vkft report`'s sources on disk (the previous page, the newest
 * checkpoint). tests/report.sh renders pages in a real browser. */
#include "check.h"

#include "vkft/error.h"
#include "vkft/platform.h"
#include "vkft/report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DIR "test_report.tmp"

static void write_text(const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", DIR, name);
  CHECKF(vkft_file_write_atomic(path, text, strlen(text)) == VKFT_OK, "%s", vkft_error_message());
}

static void fresh_dir(void) {
  vkft_remove_tree(DIR);
  vkft_mkdirs(DIR);
}

/* report.html as text (malloc'd), "" when unreadable. */
static char *read_page(void) {
  char *text;
  if (vkft_file_read(DIR "/report.html", &text, NULL) != VKFT_OK) {
    text = calloc(1, 1);
    CHECKF(0, "%s", vkft_error_message());
  }
  return text;
}

/* The tooltip data of chart `id` (figure id "chart-ID"), parsed; NULL when the chart is absent. */
static cJSON *chart_data(const char *page, const char *id) {
  char mark[96];
  snprintf(mark, sizeof mark, "<figure class=\"chart\" id=\"chart-%s\">", id);
  const char *fig = strstr(page, mark);
  const char *start = fig ? strstr(fig, "class=\"chart-data\">") : NULL;
  const char *end = start ? strstr(start, "</script>") : NULL;
  if (!end) return NULL;
  start += strlen("class=\"chart-data\">");
  return cJSON_ParseWithLength(start, (size_t)(end - start));
}

/* Line `name` of a chart's data. */
static const cJSON *line_of(const cJSON *chart, const char *name) {
  const cJSON *lines = cJSON_GetObjectItemCaseSensitive(chart, "lines");
  for (const cJSON *l = lines ? lines->child : NULL; l; l = l->next) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(l, "name");
    if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return l;
  }
  return NULL;
}

static double at(const cJSON *line, const char *field, int i) {
  const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(line, field), i);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int count(const cJSON *line, const char *field) {
  return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(line, field));
}

static int close_to(double a, double b) {
  return fabs(a - b) <= 1e-6 * fmax(1, fabs(b));
}

static void sparkline_cases(void) {
  char out[64 * 3 + 1];
  double ramp[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  CHECK(vkft_report_sparkline(ramp, 8, 50, out, sizeof out) == VKFT_OK &&
        !strcmp(out, "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"));
  double flat[3] = {2, 2, 2};
  CHECK(vkft_report_sparkline(flat, 3, 50, out, sizeof out) == VKFT_OK &&
        !strcmp(out, "\u2584\u2584\u2584"));
  double gap[3] = {1, NAN, 3}; /* a cell of no finite value is a blank */
  CHECK(vkft_report_sparkline(gap, 3, 50, out, sizeof out) == VKFT_OK &&
        !strcmp(out, "\u2581 \u2588"));
  double many[100]; /* 100 values in 10 cells: cell means 4.5, 14.5, ... rise evenly */
  for (int i = 0; i < 100; i++) many[i] = i;
  CHECK(vkft_report_sparkline(many, 100, 10, out, sizeof out) == VKFT_OK && strlen(out) == 30 &&
        !strncmp(out, "\u2581", 3) && !strcmp(out + 27, "\u2588"));
  CHECK(vkft_report_sparkline(many, 100, 10, out, 30) == VKFT_ERR); /* no room for the NUL */
}

static void throttle_cases(void) {
  vkft_report_throttle t = {.interval_s = 10};
  CHECK(vkft_report_due(&t, 0) == 1); /* the first write is always due */
  t.written = 1, t.last_s = 100, t.cost_s = 0.01;
  CHECK(!vkft_report_due(&t, 109.9) && vkft_report_due(&t, 110));
  t.cost_s = 1; /* a slow write waits 50 times its cost */
  CHECK(!vkft_report_due(&t, 149) && vkft_report_due(&t, 150));
  t.interval_s = 0, t.cost_s = 0; /* 0: 30 s */
  CHECK(!vkft_report_due(&t, 129) && vkft_report_due(&t, 130));
}

static void info_line_cases(void) {
  vkft_report_info *info = calloc(1, sizeof *info);
  if (!info) return;
  char long_line[600];
  memset(long_line, 'a', sizeof long_line);
  memcpy(long_line + 509, "\xc3\xa9", 2); /* "é" across the cut at 511 bytes */
  long_line[599] = 0;
  vkft_report_info_add_line(info, long_line);
  CHECK(info->n_lines == 1 && strlen(info->lines[0]) == 509);
  for (int i = 0; i < 40; i++) vkft_report_info_add_line(info, "data: x");
  CHECK(info->n_lines == VKFT_REPORT_MAX_LINES);
  free(info);
}

static const char *config_json =
    "{\"model\": \"models/stories260K\", \"method\": \"lora\", \"train\": {\"lr\": 0.005, "
    "\"max_grad_norm\": 1.0}, \"lora\": {\"targets\": [\"q_proj\", \"v_proj\"]}}";

/* Three steps with an eval: every value, the EMA, the eval curve, clipping, cards, details. */
static void small_run(void) {
  fresh_dir();
  write_text("metrics.jsonl",
             "{\"step\": 1, \"loss\": 1, \"lr\": 0.001, \"grad_norm\": 0.5, \"tokens\": 100, "
             "\"trained_tokens\": 90, \"tokens_per_s\": 50, \"elapsed_s\": 2}\n"
             "{\"step\": 2, \"loss\": 2, \"lr\": 0.002, \"grad_norm\": 2, \"tokens\": 100, "
             "\"trained_tokens\": 80, \"tokens_per_s\": 60, \"elapsed_s\": 4}\n"
             "{\"step\": 2, \"eval_loss\": 1.5, \"eval_tokens\": 70}\n"
             "{\"step\": 3, \"loss\": 3, \"lr\": 0.003, \"grad_norm\": 3, \"tokens\": 100, "
             "\"trained_tokens\": 70, \"tokens_per_s\": 70, \"elapsed_s\": 6}\n");
  vkft_report_info *info = calloc(1, sizeof *info);
  if (!info) return;
  info->config_json = config_json;
  info->status = "training";
  info->total_steps = 10;
  vkft_report_info_add_line(info, "data: 64 examples (0 skipped), 8298 tokens, 7914 trained");
  vkft_report_info_add_line(info, "memory plan: weights 1.0 MiB, trainable 0.4 MiB, gradients "
                                  "0.4 MiB: 1.8 MiB in all");
  vkft_report_info_add_line(info, "note: <b>escaped</b> & kept");
  CHECKF(vkft_report_write(DIR, info) == VKFT_OK, "%s", vkft_error_message());
  free(info);
  char *page = read_page();
  cJSON *loss = chart_data(page, "loss");
  const cJSON *train = line_of(loss, "loss"), *eval = line_of(loss, "eval_loss");
  CHECK(train && count(train, "x") == 3 && at(train, "x", 0) == 1 && at(train, "x", 2) == 3);
  CHECK(at(train, "y", 0) == 1 && at(train, "y", 1) == 2 && at(train, "y", 2) == 3);
  /* TensorBoard's EMA at the weight the report states for 3 points (0.3), debiased */
  double w = 0.3, last = 0;
  for (int i = 0; i < 3; i++) {
    last = last * w + (1 - w) * (i + 1);
    CHECKF(close_to(at(train, "s", i), last / (1 - pow(w, i + 1))), "EMA at %d: %g", i,
           at(train, "s", i));
  }
  CHECK(strstr(page, "TensorBoard&#39;s, weight 0.3") != NULL);
  CHECK(eval && count(eval, "x") == 1 && at(eval, "x", 0) == 2 && at(eval, "y", 0) == 1.5);
  cJSON *tokens = chart_data(page, "tokens"); /* running sums, and no eval_tokens curve */
  const cJSON *trained = line_of(tokens, "trained_tokens");
  CHECK(trained && at(trained, "y", 2) == 240 && !line_of(tokens, "eval_tokens"));
  /* clipping: 2 of 3 steps above max_grad_norm 1, two markers */
  CHECK(strstr(page, "clipped at 2 of 3 steps") != NULL);
  const char *clip = strstr(page, "<path class=\"clip\" d=\"");
  const char *clip_end = clip ? strchr(clip + 22, '"') : NULL;
  int markers = 0;
  for (const char *p = clip; p && p < clip_end; p++) markers += *p == 'M';
  CHECK(markers == 2);
  /* cards, status, details, configuration; text from files is escaped */
  CHECK(strstr(page, "of 10 planned") && strstr(page, "badge running\">training<"));
  CHECK(strstr(page, "<th>data</th><td>64 examples") && strstr(page, "class=\"membar\""));
  CHECK(strstr(page, "&lt;b&gt;escaped&lt;/b&gt; &amp; kept") && !strstr(page, "<b>escaped"));
  CHECK(strstr(page, "<th>max_grad_norm</th><td>1</td>") && strstr(page, "q_proj, v_proj"));
  CHECK(strstr(page, "<h1>stories260K (lora)</h1>") != NULL);
  cJSON_Delete(loss);
  cJSON_Delete(tokens);
  free(page);

  /* `vkft report` (info NULL) keeps what the page held: the lines, the configuration */
  CHECKF(vkft_report_write(DIR, NULL) == VKFT_OK, "%s", vkft_error_message());
  page = read_page();
  CHECK(strstr(page, "<th>data</th><td>64 examples") && strstr(page, "of 10 planned"));
  CHECK(strstr(page, "<th>max_grad_norm</th><td>1</td>") != NULL);
  CHECK(strstr(page, "badge stopped\">unfinished<") != NULL); /* no final adapter here */
  free(page);
  char line[512];
  CHECKF(vkft_report_loss_summary(DIR, 50, line, sizeof line) == VKFT_OK, "%s",
         vkft_error_message());
  CHECKF(!strcmp(line, "loss 1 \u2581\u2585\u2588 3 (3 steps; eval 1.5 at step 2)"), "%s", line);
}

/* What Python's json module writes, broken lines, gaps, steps out of order. */
static void messy_run(void) {
  fresh_dir();
  write_text("metrics.jsonl", "{\"step\": 3, \"loss\": 0.5, \"note\": \"NaN is text here\"}\r\n"
                              "\n"
                              "{\"step\": 1, \"loss\": NaN, \"grad_norm\": Infinity}\n"
                              "not json at all\n"
                              "{\"loss\": 1}\n"
                              "{\"step\": 2, \"loss\": null, \"grad_norm\": -Infinity}\n"
                              "{\"step\": 4, \"loss\": 0.25, \"rewards/chosen\": 1.5}\n"
                              "{\"step\": 5, \"loss\": 0.2");
  CHECKF(vkft_report_write(DIR, NULL) == VKFT_OK, "%s", vkft_error_message());
  char *page = read_page();
  cJSON *loss = chart_data(page, "loss");
  const cJSON *train = line_of(loss, "loss");
  CHECK(train && count(train, "x") == 4 && at(train, "x", 0) == 1 && at(train, "x", 3) == 4);
  CHECK(isnan(at(train, "y", 0)) && isnan(at(train, "y", 1)) && at(train, "y", 2) == 0.5);
  CHECK(strstr(page, "3 lines of metrics.jsonl are not a JSON object with a \"step\"") != NULL);
  CHECK(strstr(page, "No configuration found") && strstr(page, "No run information"));
  cJSON *rewards = chart_data(page, "rewards");
  CHECK(line_of(rewards, "rewards/chosen") != NULL);
  cJSON_Delete(loss);
  cJSON_Delete(rewards);
  free(page);
}

/* One step (a marker, since a path of one point draws nothing), and no step at all. */
static void tiny_runs(void) {
  fresh_dir();
  write_text("metrics.jsonl", "{\"step\": 1, \"loss\": 2.5, \"lr\": 0}\n");
  CHECKF(vkft_report_write(DIR, NULL) == VKFT_OK, "%s", vkft_error_message());
  char *page = read_page();
  const char *fig = strstr(page, "id=\"chart-loss\"");
  CHECK(fig && strstr(fig, "<g class=\"pts\"") && !strstr(page, "id=\"chart-eval"));
  free(page);
  fresh_dir();
  CHECKF(vkft_report_write(DIR, NULL) == VKFT_OK, "%s", vkft_error_message());
  page = read_page();
  CHECK(strstr(page, "No step has been logged yet") && !strstr(page, "<figure"));
  free(page);
  char line[256];
  CHECK(vkft_report_loss_summary(DIR, 50, line, sizeof line) == VKFT_ERR);
  CHECK_ERR(vkft_report_write(DIR "/missing", NULL), VKFT_ERR_INPUT, "missing: not a folder");
}

/* TRL's names (DPO, ORPO), their eval_ twins, and keys nobody planned for. */
static void preference_run(void) {
  fresh_dir();
  write_text(
      "metrics.jsonl",
      "{\"step\": 1, \"loss\": 0.69, \"rewards/chosen\": 0.1, \"rewards/rejected\": -0.1, "
      "\"rewards/accuracies\": 0.5, \"rewards/margins\": 0.2, \"logps/chosen\": -50, "
      "\"logps/rejected\": -60, \"nll_loss\": 2.1, \"log_odds_ratio\": -0.6, "
      "\"log_odds_chosen\": 0.3, \"kl\": 0.01, \"epoch\": 0.1}\n"
      "{\"step\": 2, \"loss\": 0.6, \"rewards/chosen\": 0.3, \"rewards/rejected\": -0.4, "
      "\"rewards/accuracies\": 0.75, \"rewards/margins\": 0.7, \"logps/chosen\": -48, "
      "\"logps/rejected\": -65, \"nll_loss\": 2.0, \"log_odds_ratio\": -0.5, "
      "\"log_odds_chosen\": 0.5, \"kl\": 0.02, \"epoch\": 0.2}\n"
      "{\"step\": 2, \"eval_loss\": 0.62, \"eval_rewards/chosen\": 0.25, \"eval_kl\": 0.03}\n");
  CHECKF(vkft_report_write(DIR, NULL) == VKFT_OK, "%s", vkft_error_message());
  char *page = read_page();
  static const char *const charts[][2] = {{"rewards", "rewards/rejected"},
                                          {"rewards", "eval_rewards/chosen"},
                                          {"accuracies", "rewards/accuracies"},
                                          {"margins", "rewards/margins"},
                                          {"logps", "logps/chosen"},
                                          {"nll_loss", "nll_loss"},
                                          {"log_odds", "log_odds_chosen"}};
  for (size_t i = 0; i < sizeof charts / sizeof charts[0]; i++) {
    cJSON *c = chart_data(page, charts[i][0]);
    CHECKF(line_of(c, charts[i][1]) != NULL, "chart %s has no %s", charts[i][0], charts[i][1]);
    cJSON_Delete(c);
  }
  const char *kl = strstr(page, "<span class=\"title\">kl</span>"); /* a key of its own */
  CHECK(kl && strstr(kl, "eval_kl") && !strstr(page, "<span class=\"title\">eval_kl<"));
  CHECK(!strstr(page, "<span class=\"title\">epoch<")); /* not drawn: the x axis is the step */
  free(page);
}

/* 100k steps: a small page, a tooltip of at most two points per column, a one-step spike kept
 * in the y range; the newest checkpoint (by number, not by name) gives the configuration. */
static void long_run(void) {
  fresh_dir();
  FILE *f = vkft_fopen(DIR "/metrics.jsonl", "wb");
  if (!f) return;
  for (int step = 1; step <= 100000; step++)
    fprintf(f, "{\"step\": %d, \"loss\": %.6f, \"lr\": 0.0002}\n", step,
            step == 50000 ? 100.0 : 2.0 + sin(step * 0.1));
  fclose(f);
  vkft_mkdirs(DIR "/checkpoint-9");
  vkft_mkdirs(DIR "/checkpoint-10");
  write_text("checkpoint-9/trainer_state.json",
             "{\"total_steps\": 9, \"config\": {\"model\": \"old\"}}");
  write_text("checkpoint-10/trainer_state.json",
             "{\"total_steps\": 100000, \"config\": {\"model\": \"m/newest\"}}");
  double t0 = vkft_time_s();
  CHECKF(vkft_report_write(DIR, NULL) == VKFT_OK, "%s", vkft_error_message());
  double seconds = vkft_time_s() - t0;
  CHECKF(seconds < 10, "100k steps took %.2f s", seconds); /* 0.1 s in a Release build */
  char *page = read_page();
  CHECKF(strlen(page) < 1000000, "%zu bytes", strlen(page));
  cJSON *loss = chart_data(page, "loss");
  const cJSON *y = cJSON_GetObjectItemCaseSensitive(loss, "y");
  CHECK(cJSON_GetArraySize(y) == 2 && cJSON_GetArrayItem(y, 1)->valuedouble >= 100);
  int points = count(line_of(loss, "loss"), "x");
  CHECKF(points > 400 && points < 1000, "%d tooltip points", points);
  CHECK(strstr(page, "class=\"band\"") && strstr(page, "<h1>newest (") == NULL &&
        strstr(page, "<h1>newest</h1>") && strstr(page, "of 100000 planned"));
  cJSON_Delete(loss);
  free(page);
}

int main(void) {
  sparkline_cases();
  throttle_cases();
  info_line_cases();
  small_run();
  messy_run();
  tiny_runs();
  preference_run();
  long_run();
  vkft_remove_tree(DIR);
  return check_summary();
}
