/* Checkpoints. A checkpoint folder is written as "<dir>.tmp" (every file atomic), closed by a
 * manifest of every file's size and CRC-32, and renamed into place, so a crash leaves the
 * previous checkpoint intact and a resume can tell a finished checkpoint from a damaged one.
 * It holds the adapter (or model) files exactly as the final export, so it loads in PEFT as it
 * is, plus trainer_state.safetensors (trainable tensors and AdamW moments in fp32) and
 * trainer_state.json (step, data position, the configuration and a checksum of the data) to
 * resume bit for bit. */
#include "manifest.h"
#include "trainer_internal.h"

#include "vkft/buf.h"
#include "vkft/error.h"
#include "vkft/json.h"
#include "vkft/platform.h"
#include "vkft/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int trainer_save_tensors(trainer *t, const char *path, const char *prefix, int trainable_only,
                         int with_moments);

static int write_state_json(trainer *t, const char *path) {
  cJSON *s = cJSON_CreateObject();
  if (!s) return vkft_error_nomem();
  char crc[16];
  snprintf(crc, sizeof crc, "%08x", (unsigned)t->data_crc);
  cJSON_AddNumberToObject(s, "step", (double)t->step);
  cJSON_AddNumberToObject(s, "total_steps", (double)t->total_steps);
  cJSON_AddNumberToObject(s, "epoch", (double)t->epoch);
  cJSON_AddNumberToObject(s, "batch_index", (double)t->index);
  cJSON_AddNumberToObject(s, "tokens_seen", (double)t->tokens_seen);
  cJSON_AddNumberToObject(s, "elapsed_s", t->elapsed_before);
  if (t->best_step > 0) {
    cJSON_AddNumberToObject(s, "best_eval_loss", t->best_eval);
    cJSON_AddNumberToObject(s, "best_step", (double)t->best_step);
  }
  cJSON_AddNumberToObject(s, "evals_without_improvement", (double)t->evals_without_gain);
  cJSON_AddStringToObject(s, "data_crc32", crc);
  if (vkft_dist_size(t->dist) > 1) cJSON_AddNumberToObject(s, "ranks", vkft_dist_size(t->dist));
  char *config = vkft_train_config_to_json(t->cfg);
  cJSON *parsed = config ? cJSON_Parse(config) : NULL;
  free(config);
  int status = parsed ? VKFT_OK : vkft_error_nomem();
  if (parsed) cJSON_AddItemToObject(s, "config", parsed);
  if (status == VKFT_OK) status = vkft_json_write_file(path, s);
  cJSON_Delete(s);
  return status;
}

int checkpoint_save(trainer *t, const char *dir) {
  char tmp[2100], path[2200];
  snprintf(tmp, sizeof tmp, "%s.tmp", dir);
  if (vkft_remove_tree(tmp) != VKFT_OK || vkft_mkdirs(tmp) != VKFT_OK) return VKFT_ERR;
  int status = t->cfg->full ? export_full_model(t, tmp) : export_adapter(t, tmp);
  snprintf(path, sizeof path, "%s/trainer_state.safetensors", tmp);
  if (status == VKFT_OK) status = trainer_save_tensors(t, path, "", 1, 1);
  snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
  if (status == VKFT_OK) status = write_state_json(t, path);
  if (status == VKFT_OK) status = manifest_write(tmp, t->step);
  if (status == VKFT_OK) status = vkft_rename_replace(tmp, dir);
  if (status != VKFT_OK) {
    int code = vkft_error_code();
    char why[1024];
    snprintf(why, sizeof why, "%s", vkft_error_message());
    vkft_remove_tree(tmp);
    return vkft_error_with(code, "%s", why);
  }
  return VKFT_OK;
}

/* The N of a ".../checkpoint-N" folder name, or -1. */
static int64_t step_of_name(const char *dir) {
  const char *base = strrchr(dir, '/');
  base = base ? base + 1 : dir;
  if (strncmp(base, "checkpoint-", 11)) return -1;
  char *end;
  long long step = strtoll(base + 11, &end, 10);
  return *end == 0 && step >= 0 && base[11] >= '0' && base[11] <= '9' ? step : -1;
}

int checkpoint_verify(const char *dir, int64_t *step) {
  manifest m;
  if (!vkft_is_dir(dir)) return vkft_error("%s: not a checkpoint folder", dir);
  if (manifest_verify(dir, &m) != VKFT_OK) return VKFT_ERR;
  int64_t named = step_of_name(dir);
  if (named >= 0 && named != m.step)
    return vkft_error("%s: the manifest is of step %lld", dir, (long long)m.step);
  *step = m.step;
  return VKFT_OK;
}

static double number(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15 ? v->valuedouble : -1;
}

/* A "train" section as it decides the bits: grad_accum counted over all ranks (N ranks with
 * grad_accum g give the bits of one process with N*g, vkft/dist.h), without train.zero (which
 * changes none). micro_batch and grad_accum are the run's ("auto" and batch_size resolved). */
static cJSON *train_bits(const cJSON *train, double ranks) {
  cJSON *copy = cJSON_Duplicate(train, 1);
  cJSON *ga = copy ? cJSON_GetObjectItemCaseSensitive(copy, "grad_accum") : NULL;
  if (cJSON_IsNumber(ga)) cJSON_SetNumberValue(ga, ga->valuedouble * ranks);
  if (copy) cJSON_DeleteItemFromObjectCaseSensitive(copy, "zero");
  /* nor train.batch_size: grad_accum (derived from it) is compared; a checkpoint made before
   * the key existed has none */
  if (copy) cJSON_DeleteItemFromObjectCaseSensitive(copy, "batch_size");
  return copy;
}

/* The same "train" section up to the number of ranks: a resume with other ranks continues the
 * same run when ranks x grad_accum is unchanged, else says what to change. */
static int check_same_train(trainer *t, const char *path, const cJSON *now, const cJSON *then,
                            double ranks) {
  cJSON *a = train_bits(now, (double)vkft_dist_size(t->dist)), *b = train_bits(then, ranks);
  int same = a && b && cJSON_Compare(a, b, 1), status = VKFT_OK;
  const cJSON *ga_item = b ? cJSON_GetObjectItemCaseSensitive(b, "grad_accum") : NULL;
  /* a copy: the item goes with the comparison below */
  double ga = cJSON_IsNumber(ga_item) ? ga_item->valuedouble : -1;
  if (!same && ga >= 0 && ga != (double)t->step_batches) {
    cJSON_DeleteItemFromObjectCaseSensitive(a, "grad_accum");
    cJSON_DeleteItemFromObjectCaseSensitive(b, "grad_accum");
    if (cJSON_Compare(a, b, 1))
      status = vkft_error("%s: the checkpoint's steps were of %.0f micro-batches (%.0f rank%s x "
                          "train.grad_accum %.0f), this run's are of %lld (%d x %lld): resume "
                          "with %.0f rank%s, or set train.grad_accum so that ranks x grad_accum "
                          "is %.0f (the run then continues bit for bit)",
                          path, ga, ranks, ranks == 1 ? "" : "s", ga / ranks,
                          (long long)t->step_batches, vkft_dist_size(t->dist),
                          (long long)t->cfg->train.grad_accum, ranks, ranks == 1 ? "" : "s", ga);
  }
  if (!same && status == VKFT_OK)
    status = vkft_error("%s: the checkpoint was made with a different \"train\" configuration "
                        "(start a new run in another output.dir, or use --overwrite)",
                        path);
  cJSON_Delete(a);
  cJSON_Delete(b);
  return status;
}

/* The run must be the same job: the configuration (without the output keys) and the data. */
static int check_same_job(trainer *t, const char *path, const cJSON *state) {
  char *mine = vkft_train_config_to_json(t->cfg);
  cJSON *now = mine ? cJSON_Parse(mine) : NULL;
  free(mine);
  if (!now) return vkft_error_nomem();
  const cJSON *then = cJSON_GetObjectItemCaseSensitive(state, "config");
  const char *sections[] = {"model", "method", "objective", "lora", "data",
                            "train", "tokens", "quant",     "pref"};
  int status = VKFT_OK;
  for (size_t i = 0; status == VKFT_OK && i < sizeof sections / sizeof sections[0]; i++) {
    cJSON *a = cJSON_GetObjectItemCaseSensitive(now, sections[i]);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(then, sections[i]);
    const cJSON *ranks = cJSON_GetObjectItemCaseSensitive(state, "ranks"); /* absent: one */
    /* a checkpoint from before lora.use_dora existed is a run without it */
    const cJSON *dora = cJSON_GetObjectItemCaseSensitive(a, "use_dora");
    if (b && !strcmp(sections[i], "lora") && cJSON_IsFalse(dora) &&
        !cJSON_GetObjectItemCaseSensitive(b, "use_dora"))
      cJSON_DeleteItemFromObjectCaseSensitive(a, "use_dora");
    if (b && !strcmp(sections[i], "train"))
      status = check_same_train(t, path, a, b, cJSON_IsNumber(ranks) ? ranks->valuedouble : 1);
    else if (!b || !cJSON_Compare(a, b, 1))
      status = vkft_error("%s: the checkpoint was made with a different \"%s\" configuration "
                          "(start a new run in another output.dir, or use --overwrite)",
                          path, sections[i]);
  }
  cJSON_Delete(now);
  const cJSON *crc = cJSON_GetObjectItemCaseSensitive(state, "data_crc32");
  char mine_crc[16];
  snprintf(mine_crc, sizeof mine_crc, "%08x", (unsigned)t->data_crc);
  if (status == VKFT_OK && (!cJSON_IsString(crc) || strcmp(crc->valuestring, mine_crc)))
    status = vkft_error("%s: the training data changed since the checkpoint was made (its "
                        "examples' checksum was %s, now %s)",
                        path, cJSON_IsString(crc) ? crc->valuestring : "absent", mine_crc);
  return status;
}

static int load_tensors(trainer *t, const char *path) {
  vkft_st_set *st;
  if (vkft_st_open(path, &st) != VKFT_OK) return VKFT_ERR;
  int status = VKFT_OK;
  for (int i = 0; status == VKFT_OK && i < t->n_params; i++) {
    vkft_param *p = &t->params[i];
    if (!p->trainable) continue;
    vkft_tensor *parts[3] = {p->value, &t->adam_m[i], &t->adam_v[i]};
    const char *suffix[3] = {"", ".exp_avg", ".exp_avg_sq"};
    for (int k = 0; status == VKFT_OK && k < 3; k++) {
      char name[220];
      snprintf(name, sizeof name, "%s%s", p->name, suffix[k]);
      const vkft_st_tensor *x = vkft_st_find(st, name);
      if (!x || x->dtype != VKFT_ST_F32 || x->numel != p->value->n) {
        status = vkft_error("%s: tensor \"%s\" missing or of the wrong shape", path, name);
        break;
      }
      int64_t offset = 0, n = x->numel; /* ZeRO-1: this rank holds a part of the moments */
      if (k > 0) vkft_dist_grads_state_range(t->reducer, i, x->numel, &offset, &n);
      if (n && parts[k]->dtype != VKFT_F32) {
        status = vkft_error("%s: \"%s\" is not an fp32 tensor in this run", path, name);
        break;
      }
      /* a state that diverged must not be resumed silently (it would train on NaN) */
      for (int64_t j = 0; j < x->numel && status == VKFT_OK; j++) {
        float v;
        memcpy(&v, x->data + 4 * j, 4);
        if (!isfinite(v))
          status = vkft_error_with(VKFT_ERR_NUMERIC, "%s: tensor \"%s\" holds %s at %lld", path,
                                   name, v != v ? "NaN" : "inf", (long long)j);
      }
      if (status == VKFT_OK && n) status = vkft_tensor_write(t->be, parts[k], x->data + 4 * offset);
    }
  }
  vkft_st_close(st);
  return status;
}

/* The trainer_state.json of a checkpoint that verifies (its step in *step, its path in path);
 * NULL with the error set otherwise. */
static cJSON *read_state(const char *dir, int64_t *step, char path[2200]) {
  if (checkpoint_verify(dir, step) != VKFT_OK) return NULL;
  snprintf(path, 2200, "%s/trainer_state.json", dir);
  return vkft_json_read_file(path);
}

int checkpoint_load(trainer *t, const char *dir) {
  int64_t step;
  char path[2200];
  cJSON *s = read_state(dir, &step, path);
  if (!s) return VKFT_ERR;
  int status = check_same_job(t, path, s);
  double epoch = number(s, "epoch"), index = number(s, "batch_index");
  if (status == VKFT_OK && (number(s, "step") != (double)step || epoch < 0 || index < 0))
    status =
        vkft_error("%s: the step or data position is missing or differs from the manifest", path);
  if (status == VKFT_OK && step > t->total_steps)
    status = vkft_error("%s: step %lld is past the run's %lld steps", path, (long long)step,
                        (long long)t->total_steps);
  size_t batches = 0;
  if (status == VKFT_OK) status = epoch_batches(t, (uint64_t)epoch, &batches);
  if (status == VKFT_OK && index > (double)batches)
    status = vkft_error("%s: batch %.0f is past the end of epoch %.0f", path, index, epoch);
  if (status == VKFT_OK) {
    t->step = step;
    t->epoch = (uint64_t)epoch;
    t->index = (uint64_t)index;
    t->tokens_seen = (int64_t)fmax(number(s, "tokens_seen"), 0);
    t->elapsed_before = fmax(number(s, "elapsed_s"), 0);
    double best = number(s, "best_eval_loss"), best_step = number(s, "best_step");
    t->best_eval = best >= 0 && best_step > 0 && best_step <= (double)step ? best : INFINITY;
    t->best_step = isfinite(t->best_eval) ? (int64_t)best_step : 0;
    t->evals_without_gain = (int64_t)fmax(number(s, "evals_without_improvement"), 0);
  }
  cJSON_Delete(s);
  if (status != VKFT_OK) return status;
  snprintf(path, sizeof path, "%s/trainer_state.safetensors", dir);
  return load_tensors(t, path);
}

int checkpoint_micro_batch(const char *dir, int64_t *micro_batch) {
  int64_t step;
  char path[2200];
  cJSON *s = read_state(dir, &step, path);
  if (!s) return VKFT_ERR;
  const cJSON *config = cJSON_GetObjectItemCaseSensitive(s, "config");
  const cJSON *train = cJSON_GetObjectItemCaseSensitive(config, "train");
  double v = number(train, "micro_batch");
  cJSON_Delete(s);
  if (!(v >= 1 && v <= 65536 && v == (double)(int64_t)v))
    return vkft_error("%s: the checkpoint's config has no train.micro_batch (a number)", path);
  *micro_batch = (int64_t)v;
  return VKFT_OK;
}

static int by_step_desc(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x > y ? -1 : x < y;
}

typedef struct step_list {
  int64_t *steps;
  int count, failed;
  size_t cap;
} step_list;

static void collect(const char *name, void *user) {
  step_list *l = user;
  int64_t step = step_of_name(name);
  if (step < 0 || l->failed) return;
  if (vkft_grow((void **)&l->steps, &l->cap, (size_t)l->count + 1, sizeof *l->steps)) {
    l->failed = 1;
    return;
  }
  l->steps[l->count++] = step;
}

int checkpoint_list(const char *out_dir, int64_t **steps, int *count) {
  step_list l = {0};
  *steps = NULL;
  *count = 0;
  if (!vkft_is_dir(out_dir)) return VKFT_OK;
  if (vkft_list_dir(out_dir, collect, &l) != VKFT_OK || l.failed) {
    free(l.steps);
    return l.failed ? vkft_error_nomem() : VKFT_ERR;
  }
  if (l.count) qsort(l.steps, (size_t)l.count, sizeof *l.steps, by_step_desc);
  *steps = l.steps;
  *count = l.count;
  return VKFT_OK;
}

int checkpoint_find_latest(trainer *t, char *dir, size_t size) {
  int64_t *steps;
  int count;
  dir[0] = 0;
  if (checkpoint_list(t->cfg->output.dir, &steps, &count) != VKFT_OK) return VKFT_ERR;
  for (int i = 0; i < count; i++) {
    int64_t step;
    snprintf(dir, size, "%s/checkpoint-%lld", t->cfg->output.dir, (long long)steps[i]);
    if (checkpoint_verify(dir, &step) == VKFT_OK) break;
    trainer_message(t, "resume: skipping %s: %s", dir, vkft_error_message());
    dir[0] = 0;
  }
  free(steps);
  return VKFT_OK;
}

int checkpoint_prune(const char *out_dir, int64_t keep_last, int64_t after, int64_t keep_step) {
  int64_t *steps;
  int count;
  if (checkpoint_list(out_dir, &steps, &count) != VKFT_OK) return VKFT_ERR;
  int status = VKFT_OK, kept = 0;
  for (int i = 0; i < count && status == VKFT_OK; i++) {
    int drop = after >= 0 && steps[i] > after;
    /* keep_step (the best evaluation's, load_best_model_at_end) stays beyond keep_last */
    if (!drop && steps[i] != keep_step) drop = keep_last > 0 && kept++ >= keep_last;
    if (!drop) continue;
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/checkpoint-%lld", out_dir, (long long)steps[i]);
    status = vkft_remove_tree(dir);
  }
  free(steps);
  return status;
}
