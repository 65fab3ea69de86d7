/* Checkpoints and exports. A checkpoint folder is written as "<dir>.tmp" (every file atomic)
 * and renamed into place, so a crash leaves the previous checkpoint intact. It holds the
 * adapter (or model) files exactly as the final export, so it loads in PEFT as it is, plus
 * trainer_state.safetensors (trainable tensors and AdamW moments in fp32) and
 * trainer_state.json (step, data position, configuration) to resume bit for bit. */
#include "trainer_internal.h"

#include "vkft/error.h"
#include "vkft/json.h"
#include "vkft/platform.h"
#include "vkft/safetensors.h"
#include "vkft/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *download(trainer *t, const vkft_tensor *x) {
  float *host = malloc((size_t)x->n * sizeof *host);
  if (!host) {
    vkft_error("out of host memory");
    return NULL;
  }
  if (vkft_tensor_read_f32(t->be, x, host) == VKFT_OK) return host;
  free(host);
  return NULL;
}

/* Writes the listed tensors (fp32) to a safetensors file; names get `prefix`. */
static int save_tensors(trainer *t, const char *path, const char *prefix, int trainable_only,
                        int with_moments) {
  vkft_st_writer *w;
  if (vkft_st_writer_create(&w) != VKFT_OK) return VKFT_ERR;
  float **blobs = calloc((size_t)t->n_params * 3, sizeof *blobs);
  char(*names)[200] = calloc((size_t)t->n_params * 3, sizeof *names);
  int nb = 0, status = blobs && names ? VKFT_OK : vkft_error("out of host memory");
  for (int i = 0; status == VKFT_OK && i < t->n_params; i++) {
    vkft_param *p = &t->params[i];
    if (trainable_only && !p->trainable) continue;
    const vkft_tensor *parts[3] = {p->value, &t->adam_m[i], &t->adam_v[i]};
    const char *suffix[3] = {"", ".exp_avg", ".exp_avg_sq"};
    for (int k = 0; status == VKFT_OK && k < (with_moments ? 3 : 1); k++) {
      blobs[nb] = download(t, parts[k]);
      if (!blobs[nb]) {
        status = VKFT_ERR;
        break;
      }
      snprintf(names[nb], sizeof names[nb], "%s%s%s", prefix, p->name, suffix[k]);
      status = vkft_st_writer_add(w, names[nb], VKFT_F32, p->rank, p->shape, blobs[nb]);
      nb++;
    }
  }
  if (status == VKFT_OK) status = vkft_st_writer_meta(w, "format", "pt");
  if (status == VKFT_OK) status = vkft_st_writer_save(w, path);
  for (int i = 0; i < nb; i++) free(blobs[i]);
  free(blobs);
  free(names);
  vkft_st_writer_free(w);
  return status;
}

/* The adapter as PEFT writes it (src/model/peft.c), and the tokenizer when it grew. */
int export_adapter(trainer *t, const char *dir) {
  const vkft_train_config *cfg = t->cfg;
  vkft_adapter_info info = {.r = cfg->lora.r,
                            .alpha = cfg->lora.alpha,
                            .dropout = cfg->lora.dropout,
                            .use_rslora = cfg->lora.use_rslora,
                            .targets = cfg->lora.targets,
                            .modules_to_save = cfg->lora.modules_to_save};
  snprintf(info.base_model, sizeof info.base_model, "%s", cfg->model);
  if (vkft_model_save_adapter(t->model, &info, dir) != VKFT_OK) return VKFT_ERR;
  return export_tokenizer(t, dir);
}

static int write_text(const char *path, char *text) {
  if (!text) return vkft_error("out of host memory");
  int status = vkft_file_write_atomic(path, text, strlen(text));
  free(text);
  return status;
}

/* The model's tokenizer files with the new tokens as HF's add_special_tokens saves them: an
 * "added_tokens" entry in tokenizer.json and an "added_tokens_decoder" entry in
 * tokenizer_config.json. */
int export_tokenizer(trainer *t, const char *dir) {
  if (!t->n_added) return VKFT_OK;
  char path[2048];
  snprintf(path, sizeof path, "%s/tokenizer.json", t->cfg->model);
  cJSON *tj = vkft_json_read_file(path);
  if (!tj) return VKFT_ERR;
  cJSON *added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
  if (!cJSON_IsArray(added)) added = cJSON_AddArrayToObject(tj, "added_tokens");
  snprintf(path, sizeof path, "%s/tokenizer_config.json", t->cfg->model);
  cJSON *tc = vkft_file_exists(path) ? vkft_json_read_file(path) : cJSON_CreateObject();
  cJSON *decoder = tc ? cJSON_GetObjectItemCaseSensitive(tc, "added_tokens_decoder") : NULL;
  if (tc && !cJSON_IsObject(decoder)) decoder = cJSON_AddObjectToObject(tc, "added_tokens_decoder");
  for (int i = 0; tc && added && decoder && i < t->n_added; i++) {
    const char *content = vkft_tokenizer_token_str(t->tok, t->added_ids[i]);
    cJSON *e = cJSON_CreateObject(), *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "id", t->added_ids[i]);
    cJSON_AddStringToObject(e, "content", content ? content : "");
    const char *flags[] = {"single_word", "lstrip", "rstrip", "normalized"};
    for (int k = 0; k < 4; k++)
      cJSON_AddBoolToObject(e, flags[k], 0), cJSON_AddBoolToObject(d, flags[k], 0);
    cJSON_AddBoolToObject(e, "special", 1);
    cJSON_AddStringToObject(d, "content", content ? content : "");
    cJSON_AddBoolToObject(d, "special", 1);
    cJSON_AddItemToArray(added, e);
    char key[32];
    snprintf(key, sizeof key, "%d", (int)t->added_ids[i]);
    cJSON_AddItemToObject(decoder, key, d);
  }
  int status = tc && added && decoder ? VKFT_OK : vkft_error("%s: cannot add the new tokens", path);
  if (status == VKFT_OK) {
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    status = write_text(path, cJSON_PrintUnformatted(tj));
  }
  if (status == VKFT_OK) {
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    status = write_text(path, cJSON_Print(tc));
  }
  cJSON_Delete(tj);
  cJSON_Delete(tc);
  return status;
}

static int copy_file(const char *from, const char *to) {
  char *data;
  size_t size;
  if (vkft_file_read(from, &data, &size) != VKFT_OK) return VKFT_ERR;
  int status = vkft_file_write_atomic(to, data, size);
  free(data);
  return status;
}

/* A Hugging Face folder: model.safetensors (fp32), config.json, tokenizer files. */
int export_full_model(trainer *t, const char *dir) {
  char path[2048], from[2048];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (save_tensors(t, path, "", 0, 0) != VKFT_OK) return VKFT_ERR;
  /* config.json as it was (numbers keep their int/float spelling), but the weights are now
   * written in fp32 */
  snprintf(from, sizeof from, "%s/config.json", t->cfg->model);
  char *text;
  size_t size;
  if (vkft_file_read(from, &text, &size) != VKFT_OK) return VKFT_ERR;
  snprintf(path, sizeof path, "%s/config.json", dir);
  int status;
  if (t->vocab_size) { /* tokens.add grew the vocabulary: "vocab_size": N */
    char *v = strstr(text, "\"vocab_size\"");
    char *num = v ? strpbrk(v + 12, "0123456789") : NULL;
    if (num) {
      size_t digits = strspn(num, "0123456789");
      char repl[32];
      int rl = snprintf(repl, sizeof repl, "%lld", (long long)t->vocab_size);
      char *grown = malloc(size + 32);
      if (!grown) {
        free(text);
        return vkft_error("out of host memory");
      }
      size_t head = (size_t)(num - text);
      memcpy(grown, text, head);
      memcpy(grown + head, repl, (size_t)rl);
      memcpy(grown + head + rl, num + digits, size - head - digits + 1);
      size = size - digits + (size_t)rl;
      free(text);
      text = grown;
    }
  }
  char *key = strstr(text, "\"torch_dtype\"");
  char *open = key ? strchr(key + 13, '"') : NULL;
  char *close = open ? strchr(open + 1, '"') : NULL;
  if (close) {
    size_t head = (size_t)(open + 1 - text), tail = size - (size_t)(close - text);
    char *patched = malloc(head + 7 + tail + 1);
    if (!patched) {
      free(text);
      return vkft_error("out of host memory");
    }
    memcpy(patched, text, head);
    memcpy(patched + head, "float32", 7);
    memcpy(patched + head + 7, close, tail);
    status = vkft_file_write_atomic(path, patched, head + 7 + tail);
    free(patched);
  } else {
    status = vkft_file_write_atomic(path, text, size);
  }
  free(text);
  const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                         "generation_config.json", "chat_template.jinja"};
  for (size_t i = 0; status == VKFT_OK && i < sizeof files / sizeof files[0]; i++) {
    snprintf(from, sizeof from, "%s/%s", t->cfg->model, files[i]);
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    if (t->n_added && i < 2) continue; /* written with the new tokens below */
    if (vkft_file_exists(from)) status = copy_file(from, path);
  }
  return status == VKFT_OK ? export_tokenizer(t, dir) : status;
}

int checkpoint_save(trainer *t, const char *dir) {
  char tmp[2100], path[2200];
  snprintf(tmp, sizeof tmp, "%s.tmp", dir);
  if (vkft_remove_tree(tmp) != VKFT_OK || vkft_mkdirs(tmp) != VKFT_OK) return VKFT_ERR;
  int status = t->cfg->full ? export_full_model(t, tmp) : export_adapter(t, tmp);
  snprintf(path, sizeof path, "%s/trainer_state.safetensors", tmp);
  if (status == VKFT_OK) status = save_tensors(t, path, "", 1, 1);
  if (status == VKFT_OK) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddNumberToObject(s, "step", (double)t->step);
    cJSON_AddNumberToObject(s, "total_steps", (double)t->total_steps);
    cJSON_AddNumberToObject(s, "epoch", (double)t->epoch);
    cJSON_AddNumberToObject(s, "batch_index", (double)t->index);
    cJSON_AddNumberToObject(s, "tokens_seen", (double)t->tokens_seen);
    cJSON_AddNumberToObject(s, "elapsed_s", t->elapsed_before);
    char *config = vkft_train_config_to_json(t->cfg);
    cJSON *parsed = config ? cJSON_Parse(config) : NULL;
    free(config);
    if (parsed) cJSON_AddItemToObject(s, "config", parsed);
    snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
    status = vkft_json_write_file(path, s);
    cJSON_Delete(s);
  }
  if (status == VKFT_OK) status = vkft_rename_replace(tmp, dir);
  if (status != VKFT_OK) vkft_remove_tree(tmp);
  return status;
}

static double number(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

int checkpoint_load(trainer *t, const char *dir) {
  char path[2200];
  snprintf(path, sizeof path, "%s/trainer_state.json", dir);
  cJSON *s = vkft_json_read_file(path);
  if (!s) return VKFT_ERR;
  /* the run must be the same job: compare the configuration without the output/step keys */
  char *mine = vkft_train_config_to_json(t->cfg);
  cJSON *now = mine ? cJSON_Parse(mine) : NULL;
  free(mine);
  cJSON *then = cJSON_GetObjectItemCaseSensitive(s, "config");
  const char *sections[] = {"model", "method", "lora", "data", "train"};
  int status = VKFT_OK;
  for (size_t i = 0; status == VKFT_OK && i < sizeof sections / sizeof sections[0]; i++) {
    cJSON *a = cJSON_GetObjectItemCaseSensitive(now, sections[i]);
    cJSON *b = cJSON_GetObjectItemCaseSensitive(then, sections[i]);
    if (!b || !cJSON_Compare(a, b, 1))
      status = vkft_error("%s: the checkpoint was made with a different \"%s\" configuration", path,
                          sections[i]);
  }
  cJSON_Delete(now);
  int64_t step = (int64_t)number(s, "step");
  if (status == VKFT_OK && (step < 0 || number(s, "epoch") < 0 || number(s, "batch_index") < 0))
    status = vkft_error("%s: missing step or data position", path);
  if (status == VKFT_OK) {
    t->step = step;
    t->epoch = (uint64_t)number(s, "epoch");
    t->index = (uint64_t)number(s, "batch_index");
    t->tokens_seen = (int64_t)number(s, "tokens_seen");
    t->elapsed_before = number(s, "elapsed_s");
  }
  cJSON_Delete(s);
  if (status != VKFT_OK) return status;
  vkft_st_set *st;
  snprintf(path, sizeof path, "%s/trainer_state.safetensors", dir);
  if (vkft_st_open(path, &st) != VKFT_OK) return VKFT_ERR;
  for (int i = 0; status == VKFT_OK && i < t->n_params; i++) {
    vkft_param *p = &t->params[i];
    if (!p->trainable) continue;
    vkft_tensor *parts[3] = {p->value, &t->adam_m[i], &t->adam_v[i]};
    const char *suffix[3] = {"", ".exp_avg", ".exp_avg_sq"};
    for (int k = 0; status == VKFT_OK && k < 3; k++) {
      char name[220];
      snprintf(name, sizeof name, "%s%s", p->name, suffix[k]);
      const vkft_st_tensor *x = vkft_st_find(st, name);
      if (!x || x->dtype != VKFT_ST_F32 || x->numel != parts[k]->n)
        status = vkft_error("%s: tensor \"%s\" missing or of the wrong shape", path, name);
      else if (parts[k]->dtype == VKFT_F32)
        status = vkft_tensor_write(t->be, parts[k], x->data);
      else
        status = vkft_error("%s: \"%s\" is not an fp32 tensor in this run", path, name);
    }
  }
  vkft_st_close(st);
  return status;
}

typedef struct checkpoint_list {
  int64_t steps[4096];
  int count;
} checkpoint_list;

static void collect(const char *name, void *user) {
  checkpoint_list *l = user;
  if (strncmp(name, "checkpoint-", 11) || l->count == 4096) return;
  char *end;
  long long step = strtoll(name + 11, &end, 10);
  if (*end == 0 && step >= 0) l->steps[l->count++] = step;
}

int checkpoint_find_latest(const char *out_dir, char *dir, size_t size) {
  static checkpoint_list l;
  l.count = 0;
  if (!vkft_is_dir(out_dir) || vkft_list_dir(out_dir, collect, &l) != VKFT_OK) return VKFT_ERR;
  int64_t best = -1;
  for (int i = 0; i < l.count; i++)
    if (l.steps[i] > best) best = l.steps[i];
  if (best < 0) return VKFT_ERR;
  snprintf(dir, size, "%s/checkpoint-%lld", out_dir, (long long)best);
  return VKFT_OK;
}

int checkpoint_prune(const char *out_dir, int64_t keep_last) {
  static checkpoint_list l;
  l.count = 0;
  if (keep_last <= 0) return VKFT_OK;
  if (vkft_list_dir(out_dir, collect, &l) != VKFT_OK) return VKFT_ERR;
  for (int i = 0; i < l.count; i++) {
    int newer = 0;
    for (int j = 0; j < l.count; j++) newer += l.steps[j] > l.steps[i];
    if (newer >= keep_last) {
      char dir[2048];
      snprintf(dir, sizeof dir, "%s/checkpoint-%lld", out_dir, (long long)l.steps[i]);
      if (vkft_remove_tree(dir) != VKFT_OK) return VKFT_ERR;
    }
  }
  return VKFT_OK;
}
