/* The report's entry points (vkft/report.h): gathering what the page shows — the metrics, and
 * the run's information from the trainer or, for `vkft report`, from the folder (the details the
 * previous report.html kept, the newest checkpoint's configuration) — then writing the page
 * atomically; the trainer's throttle; the loss line with its sparkline. */
#include "internal.h"

#include "vkft/platform.h"
#include "vkft/report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_SIZE 2048 /* output.dir is at most 900 bytes (VKFT_CFG_OUTPUT_DIR_MAX) */
#define RUN_MARK "<script type=\"application/json\" id=\"vkft-run\">"

void vkft_report_info_add_line(vkft_report_info *info, const char *line) {
  if (info->n_lines >= VKFT_REPORT_MAX_LINES) return;
  char *copy = info->lines[info->n_lines++];
  snprintf(copy, VKFT_REPORT_LINE, "%s", line);
  size_t len = strlen(copy);
  if (len == VKFT_REPORT_LINE - 1) { /* cut: not inside a UTF-8 sequence */
    while (len && ((unsigned char)copy[len - 1] & 0xc0) == 0x80) len--;
    if (len && (unsigned char)copy[len - 1] >= 0xc0) len--;
    copy[len] = 0;
  }
}

/* The run details the previous report.html embedded, or NULL. */
static cJSON *previous_run(const char *out_dir) {
  char path[PATH_SIZE];
  snprintf(path, sizeof path, "%s/report.html", out_dir);
  char *text;
  if (!vkft_file_exists(path) || vkft_file_read(path, &text, NULL) != VKFT_OK) {
    vkft_error_clear(); /* the page is derived data: without it, the folder still has the rest */
    return NULL;
  }
  char *start = strstr(text, RUN_MARK), *end = start ? strstr(start, "</script>") : NULL;
  cJSON *run = NULL;
  if (end) {
    *end = 0;
    run = cJSON_Parse(start + strlen(RUN_MARK));
  }
  free(text);
  if (run && !cJSON_IsObject(run)) cJSON_Delete(run), run = NULL;
  return run;
}

typedef struct step_list {
  int64_t steps[4096];
  int count;
} step_list;

static void collect_checkpoint(const char *name, void *user) {
  step_list *l = user;
  const char *digits = name + 11;
  if (strncmp(name, "checkpoint-", 11) || !*digits ||
      strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 15 || l->count == 4096)
    return;
  l->steps[l->count++] = strtoll(digits, NULL, 10);
}

static int by_step_desc(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x > y ? -1 : x < y;
}

/* trainer_state.json of the newest checkpoint that has a readable one, or NULL. */
static cJSON *newest_state(const char *out_dir) {
  step_list *l = calloc(1, sizeof *l);
  if (!l || vkft_list_dir(out_dir, collect_checkpoint, l) != VKFT_OK) {
    free(l);
    vkft_error_clear();
    return NULL;
  }
  qsort(l->steps, (size_t)l->count, sizeof l->steps[0], by_step_desc);
  cJSON *state = NULL;
  for (int i = 0; i < l->count && !state; i++) {
    char path[PATH_SIZE];
    snprintf(path, sizeof path, "%s/checkpoint-%lld/trainer_state.json", out_dir,
             (long long)l->steps[i]);
    char *text;
    if (vkft_file_exists(path) && vkft_file_read(path, &text, NULL) == VKFT_OK) {
      state = cJSON_Parse(text);
      free(text);
      if (state && !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(state, "config")))
        cJSON_Delete(state), state = NULL;
    }
  }
  vkft_error_clear();
  free(l);
  return state;
}

/* Moves item `key` of `from` into `to` when `to` lacks it. */
static void take(cJSON *to, cJSON *from, const char *key) {
  if (!from || cJSON_GetObjectItemCaseSensitive(to, key)) return;
  cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(from, key);
  if (item) cJSON_AddItemToObject(to, key, item);
}

/* {"title", "total_steps", "lines", "config"}: from info, else from the folder. */
static cJSON *run_details(const char *out_dir, const vkft_report_info *info) {
  cJSON *run = cJSON_CreateObject();
  if (!run) return NULL;
  if (info) {
    if (info->title) cJSON_AddStringToObject(run, "title", info->title);
    if (info->total_steps > 0)
      cJSON_AddNumberToObject(run, "total_steps", (double)info->total_steps);
    cJSON *lines = cJSON_AddArrayToObject(run, "lines");
    for (int i = 0; lines && i < info->n_lines; i++)
      cJSON_AddItemToArray(lines, cJSON_CreateString(info->lines[i]));
    cJSON *config = info->config_json ? cJSON_Parse(info->config_json) : NULL;
    if (config) cJSON_AddItemToObject(run, "config", config);
  } else {
    cJSON *previous = previous_run(out_dir);
    take(run, previous, "title");
    take(run, previous, "total_steps");
    take(run, previous, "lines");
    take(run, previous, "config");
    cJSON_Delete(previous);
  }
  if (!cJSON_GetObjectItemCaseSensitive(run, "config") ||
      !cJSON_GetObjectItemCaseSensitive(run, "total_steps")) {
    cJSON *state = newest_state(out_dir);
    take(run, state, "config");
    take(run, state, "total_steps");
    cJSON_Delete(state);
  }
  return run;
}

/* "stories260K (lora)" from the configuration, else the folder's name. */
static void default_title(const cJSON *config, const char *out_dir, char *out, size_t size) {
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(config, "model");
  const cJSON *method = cJSON_GetObjectItemCaseSensitive(config, "method");
  const char *name = cJSON_IsString(model) && model->valuestring[0] ? model->valuestring : out_dir;
  size_t len = strlen(name);
  while (len > 1 && (name[len - 1] == '/' || name[len - 1] == '\\')) len--;
  size_t start = len;
  while (start > 0 && name[start - 1] != '/' && name[start - 1] != '\\') start--;
  if (cJSON_IsString(method))
    snprintf(out, size, "%.*s (%s)", (int)(len - start), name + start, method->valuestring);
  else
    snprintf(out, size, "%.*s", (int)(len - start), name + start);
}

static const char *guess_status(const char *out_dir, const metrics *m) {
  static const char *const finals[] = {"adapter_model.safetensors", "model.safetensors",
                                       "model.safetensors.index.json"};
  for (size_t i = 0; i < sizeof finals / sizeof finals[0]; i++) {
    char path[PATH_SIZE];
    snprintf(path, sizeof path, "%s/%s", out_dir, finals[i]);
    if (vkft_file_exists(path)) return "finished";
  }
  return m->n_series ? "unfinished" : "no steps yet";
}

int vkft_report_write(const char *out_dir, const vkft_report_info *info) {
  if (!vkft_is_dir(out_dir)) return vkft_error("%s: not a folder", out_dir);
  char path[PATH_SIZE];
  snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
  metrics *m = calloc(1, sizeof *m);
  if (!m) return vkft_error_nomem();
  if (metrics_read(path, m) != VKFT_OK) {
    free(m);
    return VKFT_ERR;
  }
  cJSON *run = run_details(out_dir, info);
  char *run_json = run ? cJSON_PrintUnformatted(run) : NULL;
  const cJSON *lines = cJSON_GetObjectItemCaseSensitive(run, "lines");
  int n_lines = cJSON_GetArraySize(lines);
  const char **line_text = calloc((size_t)n_lines + 1, sizeof *line_text);
  int status = run_json && line_text ? VKFT_OK : vkft_error_nomem();
  int n = 0;
  for (const cJSON *e = lines ? lines->child : NULL; line_text && e; e = e->next)
    if (cJSON_IsString(e)) line_text[n++] = e->valuestring;
  const cJSON *config = cJSON_GetObjectItemCaseSensitive(run, "config");
  const cJSON *title = cJSON_GetObjectItemCaseSensitive(run, "title");
  const cJSON *total = cJSON_GetObjectItemCaseSensitive(run, "total_steps");
  char fallback_title[256];
  default_title(config, out_dir, fallback_title, sizeof fallback_title);
  page_input in = {.m = m,
                   .out_dir = out_dir,
                   .title = cJSON_IsString(title) ? title->valuestring : fallback_title,
                   .status = info && info->status ? info->status : guess_status(out_dir, m),
                   .total_steps =
                       cJSON_IsNumber(total) && total->valuedouble > 0 && total->valuedouble < 1e15
                           ? (int64_t)total->valuedouble
                           : 0,
                   .config = config,
                   .lines = line_text,
                   .n_lines = n,
                   .run_json = run_json};
  vkft_strbuf page = {0};
  if (status == VKFT_OK) status = page_write(&page, &in);
  if (status == VKFT_OK && page.failed) status = vkft_error_nomem();
  snprintf(path, sizeof path, "%s/report.html", out_dir);
  if (status == VKFT_OK) status = vkft_file_write_atomic(path, page.data, page.len);
  vkft_strbuf_free(&page);
  free(line_text);
  free(run_json);
  cJSON_Delete(run);
  metrics_free(m);
  free(m);
  return status;
}

int vkft_report_due(const vkft_report_throttle *throttle, double now_s) {
  if (!throttle->written) return 1;
  double interval = throttle->interval_s > 0 ? throttle->interval_s : 30;
  return now_s - throttle->last_s >= fmax(interval, 50 * throttle->cost_s);
}

int vkft_report_update(vkft_report_throttle *throttle, const char *out_dir,
                       const vkft_report_info *info, int force) {
  double start = vkft_time_s();
  if (!force && !vkft_report_due(throttle, start)) return VKFT_OK;
  int status = vkft_report_write(out_dir, info);
  double end = vkft_time_s();
  /* a failed write counts too: a full disk is not retried (and reported) at every step */
  throttle->written = 1;
  throttle->last_s = end;
  throttle->cost_s = end - start;
  return status;
}

int vkft_report_loss_summary(const char *out_dir, int width, char *line, size_t size) {
  char path[PATH_SIZE];
  snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
  metrics *m = calloc(1, sizeof *m);
  if (!m) return vkft_error_nomem();
  if (metrics_read(path, m) != VKFT_OK) {
    free(m);
    return VKFT_ERR;
  }
  const series *loss = metrics_find(m, "loss");
  double *values = loss ? series_values(loss) : NULL;
  size_t first = SIZE_MAX, last = SIZE_MAX;
  for (size_t i = 0; values && i < loss->n; i++)
    if (isfinite(values[i])) last = i, first = first == SIZE_MAX ? i : first;
  int status = VKFT_OK;
  char spark[3 * 256 + 1];
  if (loss && !values)
    status = vkft_error_nomem();
  else if (last == SIZE_MAX)
    status = vkft_error("%s: no loss values", path);
  else
    status = vkft_report_sparkline(values, loss->n, width > 256 ? 256 : width, spark, sizeof spark);
  if (status == VKFT_OK) {
    char a[32], z[32], eval_part[96] = "";
    report_format_number(a, sizeof a, values[first]);
    report_format_number(z, sizeof z, values[last]);
    const series *eval = metrics_find(m, "eval_loss");
    if (eval && eval->n && isfinite(eval->p[eval->n - 1].y)) {
      char e[32];
      report_format_number(e, sizeof e, eval->p[eval->n - 1].y);
      snprintf(eval_part, sizeof eval_part, "; eval %s at step %.0f", e, eval->p[eval->n - 1].x);
    }
    snprintf(line, size, "loss %s %s %s (%zu step%s%s)", a, spark, z, loss->n,
             loss->n == 1 ? "" : "s", eval_part);
  }
  free(values);
  metrics_free(m);
  free(m);
  return status;
}
