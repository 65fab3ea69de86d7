/* The output folder's rules (README, "The output folder"): it is never the model folder; one
 * run at a time holds it (a lock naming the other process); a fresh run does not mix with an
 * earlier run's results (--resume continues it, --overwrite replaces it); metrics.jsonl keeps
 * complete lines only; and a save that fails for lack of space keeps the trained state and
 * tries again rather than losing the run. */
#include "trainer_internal.h"

#include "vkft/error.h"
#include "vkft/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCK_NAME ".vkft.lock"
#define FINAL_STAGE ".final.tmp"

/* What a run writes directly in output.dir (checkpoint-N/ folders aside). */
static const char *const run_files[] = {
    "metrics.jsonl",          "adapter_config.json",          "adapter_model.safetensors",
    "model.safetensors",      "model.safetensors.index.json", "config.json",
    "tokenizer.json",         "tokenizer_config.json",        "special_tokens_map.json",
    "generation_config.json", "chat_template.jinja",          "report.html"};
enum { RESULT_FILES = 3 }; /* the first three mark a folder as holding a run's results */

static int same_folder(const char *a, const char *b) {
  char ra[4096], rb[4096];
  if (!vkft_is_dir(a) || !vkft_is_dir(b)) return 0;
  if (vkft_realpath(a, ra, sizeof ra) != VKFT_OK || vkft_realpath(b, rb, sizeof rb) != VKFT_OK)
    return 0;
  return !strcmp(ra, rb);
}

typedef struct stale_list {
  char names[64][256];
  int count;
} stale_list;

static void collect_stale(const char *name, void *user) {
  stale_list *l = user;
  size_t n = strlen(name);
  int tmp_checkpoint = !strncmp(name, "checkpoint-", 11) && n > 4 && !strcmp(name + n - 4, ".tmp");
  int tmp_report = !strcmp(name, "report.html.tmp"); /* a report write cut short */
  if ((tmp_checkpoint || tmp_report || !strcmp(name, FINAL_STAGE)) && l->count < 64 && n < 256)
    snprintf(l->names[l->count++], sizeof l->names[0], "%s", name);
}

/* Half-written folders of a process that died (we hold the lock, so none is being written). */
static int remove_stale(const char *out) {
  stale_list *l = calloc(1, sizeof *l);
  if (!l) return vkft_error_nomem();
  int status = vkft_list_dir(out, collect_stale, l);
  for (int i = 0; status == VKFT_OK && i < l->count; i++) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", out, l->names[i]);
    status = vkft_remove_tree(path);
  }
  free(l);
  return status;
}

static int remove_results(const char *out) {
  int64_t *steps;
  int count;
  if (checkpoint_list(out, &steps, &count) != VKFT_OK) return VKFT_ERR;
  int status = VKFT_OK;
  for (int i = 0; i < count && status == VKFT_OK; i++) {
    char path[2048];
    snprintf(path, sizeof path, "%s/checkpoint-%lld", out, (long long)steps[i]);
    status = vkft_remove_tree(path);
  }
  free(steps);
  for (size_t i = 0; status == VKFT_OK && i < sizeof run_files / sizeof run_files[0]; i++) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", out, run_files[i]);
    if (vkft_file_exists(path)) status = vkft_remove_tree(path);
  }
  return status;
}

int outdir_prepare(trainer *t, int resuming, int overwrite) {
  const char *out = t->cfg->output.dir;
  if (same_folder(out, t->cfg->model))
    return vkft_error("config: \"output.dir\" %s is the model folder: vkft would overwrite the "
                      "base model; choose another folder",
                      out);
  if (vkft_mkdirs(out) != VKFT_OK) return VKFT_ERR;
  char path[2048];
  snprintf(path, sizeof path, "%s/%s", out, LOCK_NAME);
  if (vkft_lock_acquire(path, &t->lock) != VKFT_OK)
    return vkft_error_prefix("%s is used by another training run (wait for it, or choose "
                             "another output.dir)",
                             out);
  snprintf(t->metrics_path, sizeof t->metrics_path, "%s/metrics.jsonl", out);
  if (remove_stale(out) != VKFT_OK) return VKFT_ERR;
  if (resuming) return VKFT_OK;
  int64_t *steps;
  int count;
  if (checkpoint_list(out, &steps, &count) != VKFT_OK) return VKFT_ERR;
  free(steps);
  const char *found = count ? "checkpoints" : NULL;
  for (int i = 0; !found && i < RESULT_FILES; i++) {
    snprintf(path, sizeof path, "%s/%s", out, run_files[i]);
    if (vkft_file_exists(path)) found = run_files[i];
  }
  if (!found) return VKFT_OK;
  if (!overwrite)
    return vkft_error("%s already holds a run's results (%s): use --resume auto to continue that "
                      "run, --overwrite to replace it, or another output.dir",
                      out, found);
  trainer_message(t, "--overwrite: removing the earlier run's results in %s", out);
  return remove_results(out);
}

void outdir_release(trainer *t) {
  vkft_lock_release(t->lock);
  t->lock = NULL;
}

int metrics_append(trainer *t, const char *line) {
  size_t n = strlen(line);
  char *buf = malloc(n + 2);
  if (!buf) return vkft_error_nomem();
  memcpy(buf, line, n);
  buf[n] = '\n';
  int status = vkft_file_append(t->metrics_path, buf, n + 1);
  free(buf);
  return status;
}

int metrics_truncate(trainer *t, int64_t step, int drop_eval_at_step) {
  if (!vkft_file_exists(t->metrics_path)) return VKFT_OK;
  char *text;
  size_t size;
  if (vkft_file_read(t->metrics_path, &text, &size) != VKFT_OK) return VKFT_ERR;
  char *out = malloc(size + 1), *w = out;
  if (!out) {
    free(text);
    return vkft_error_nomem();
  }
  for (char *line = text; line < text + size;) {
    char *end = memchr(line, '\n', (size_t)(text + size - line));
    if (!end) break; /* a line cut short by a crash */
    size_t len = (size_t)(end - line + 1);
    cJSON *json = cJSON_ParseWithLength(line, len - 1);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(json, "step");
    int is_eval = cJSON_GetObjectItemCaseSensitive(json, "eval_loss") != NULL;
    int keep = cJSON_IsNumber(s) && s->valuedouble <= (double)step;
    if (keep && is_eval && drop_eval_at_step && s->valuedouble == (double)step) keep = 0;
    cJSON_Delete(json);
    if (keep) memcpy(w, line, len), w += len;
    line = end + 1;
  }
  int status = vkft_file_write_atomic(t->metrics_path, out, (size_t)(w - out));
  free(out);
  free(text);
  return status;
}

int save_with_retries(trainer *t, const char *what, int (*save)(trainer *, const char *),
                      const char *dir) {
  for (int64_t attempt = 0;; attempt++) {
    if (save(t, dir) == VKFT_OK) return VKFT_OK;
    if (vkft_error_code() != VKFT_ERR_IO || attempt >= t->cfg->output.save_retries)
      return vkft_error_prefix("saving %s", what);
    trainer_message(t,
                    "saving %s failed: %s; the trained state is kept: trying again in %g s "
                    "(%lld of %lld) - free some space, or press Ctrl-C to give up",
                    what, vkft_error_message(), t->cfg->output.save_retry_wait,
                    (long long)attempt + 1, (long long)t->cfg->output.save_retries);
    char why[1024];
    snprintf(why, sizeof why, "%s", vkft_error_message());
    for (double waited = 0; waited < t->cfg->output.save_retry_wait; waited += 0.05) {
      if (vkft_interrupted())
        return vkft_error_with(VKFT_ERR_IO, "saving %s: %s (interrupted while waiting to retry)",
                               what, why);
      vkft_sleep_ms(50);
    }
  }
}

typedef struct file_list {
  char names[64][256];
  int count;
} file_list;

static void collect_file(const char *name, void *user) {
  file_list *l = user;
  if (l->count < 64 && strlen(name) < 256) snprintf(l->names[l->count++], 256, "%s", name);
}

int save_final(trainer *t, const char *dir) {
  char stage[2048];
  snprintf(stage, sizeof stage, "%s/%s", dir, FINAL_STAGE);
  if (vkft_remove_tree(stage) != VKFT_OK || vkft_mkdirs(stage) != VKFT_OK) return VKFT_ERR;
  int status = t->cfg->full ? export_full_model(t, stage) : export_adapter(t, stage);
  file_list *l = status == VKFT_OK ? calloc(1, sizeof *l) : NULL;
  if (status == VKFT_OK && !l) status = vkft_error_nomem();
  if (status == VKFT_OK) status = vkft_list_dir(stage, collect_file, l);
  /* every file is complete and on disk before the first one moves: the folder never holds a
   * new adapter beside an old or missing config */
  for (int i = 0; status == VKFT_OK && l && i < l->count; i++) {
    char from[2400], to[2400];
    snprintf(from, sizeof from, "%s/%s", stage, l->names[i]);
    snprintf(to, sizeof to, "%s/%s", dir, l->names[i]);
    status = vkft_rename_replace(from, to);
  }
  free(l);
  if (status != VKFT_OK) {
    vkft_errcode code = vkft_error_code();
    char why[1024];
    snprintf(why, sizeof why, "%s", vkft_error_message());
    vkft_remove_tree(stage);
    return vkft_error_with(code, "%s", why);
  }
  return vkft_remove_tree(stage);
}
