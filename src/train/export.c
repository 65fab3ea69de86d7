/* The results of a run in the formats the ecosystem loads: the LoRA adapter as PEFT writes it
 * (src/model/peft.c), or a Hugging Face model folder for full fine-tuning, and the tokenizer
 * files when tokens.add grew the vocabulary. Also the fp32 tensor dump both use. */
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
    vkft_error_nomem();
    return NULL;
  }
  if (vkft_tensor_read_f32(t->be, x, host) == VKFT_OK) return host;
  free(host);
  return NULL;
}

/* Writes the listed tensors (fp32) to a safetensors file; names get `prefix`. */
int trainer_save_tensors(trainer *t, const char *path, const char *prefix, int trainable_only,
                         int with_moments) {
  vkft_st_writer *w;
  if (vkft_st_writer_create(&w) != VKFT_OK) return VKFT_ERR;
  float **blobs = calloc((size_t)t->n_params * 3, sizeof *blobs);
  char(*names)[200] = calloc((size_t)t->n_params * 3, sizeof *names);
  int nb = 0, status = blobs && names ? VKFT_OK : vkft_error_nomem();
  for (int i = 0; status == VKFT_OK && i < t->n_params; i++) {
    vkft_param *p = &t->params[i];
    if (trainable_only && !p->trainable) continue;
    const vkft_tensor *parts[3] = {p->value, &t->adam_m[i], &t->adam_v[i]};
    const char *suffix[3] = {"", ".exp_avg", ".exp_avg_sq"};
    for (int k = 0; status == VKFT_OK && k < (with_moments ? 3 : 1); k++) {
      /* ZeRO-1: the moments rank 0 gathered from every rank (vkft_dist_grads_gather_state) */
      if (k > 0 && t->reducer && t->cfg->train.zero)
        blobs[nb] = vkft_dist_grads_state_copy(t->reducer, i, k - 1);
      else
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
                            .use_dora = cfg->lora.use_dora,
                            .targets = cfg->lora.targets,
                            .modules_to_save = cfg->lora.modules_to_save};
  snprintf(info.base_model, sizeof info.base_model, "%s", cfg->model);
  if (vkft_model_save_adapter(t->model, &info, dir) != VKFT_OK) return VKFT_ERR;
  return export_tokenizer(t, dir);
}

static int write_text(const char *path, char *text) {
  if (!text) return vkft_error_nomem();
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

/* A Hugging Face folder: model.safetensors (fp32), config.json, tokenizer files. */
int export_full_model(trainer *t, const char *dir) {
  char path[2048], from[2048];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (trainer_save_tensors(t, path, "", 0, 0) != VKFT_OK) return VKFT_ERR;
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
        return vkft_error_nomem();
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
      return vkft_error_nomem();
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
    if (vkft_file_exists(from)) status = vkft_file_copy(from, path);
  }
  return status == VKFT_OK ? export_tokenizer(t, dir) : status;
}
