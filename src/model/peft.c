/* PEFT LoRA adapters, read and written: adapter_config.json and adapter_model.safetensors with
 * the keys PEFT writes ("base_model.model." + the Hugging Face module path). The one home of
 * the adapter format: the trainer's exports and checkpoints, generate and eval all go through
 * here. */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/json.h"
#include "vkft/platform.h"
#include "vkft/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vkft_adapter_read_config(const char *dir, vkft_adapter_info *info) {
  memset(info, 0, sizeof *info);
  char path[2048];
  snprintf(path, sizeof path, "%s/adapter_config.json", dir);
  cJSON *c = vkft_json_read_file(path);
  if (!c) return VKFT_ERR;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(c, "peft_type");
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(c, "r");
  const cJSON *alpha = cJSON_GetObjectItemCaseSensitive(c, "lora_alpha");
  const cJSON *targets = cJSON_GetObjectItemCaseSensitive(c, "target_modules");
  const cJSON *save = cJSON_GetObjectItemCaseSensitive(c, "modules_to_save");
  int status = VKFT_OK;
  if (!cJSON_IsString(type) || strcmp(type->valuestring, "LORA"))
    status = vkft_error("%s: only LORA adapters are supported (peft_type)", path);
  else if (!cJSON_IsNumber(r) || r->valuedouble < 1 || !cJSON_IsNumber(alpha))
    status = vkft_error("%s: missing or invalid \"r\" / \"lora_alpha\"", path);
  else if (!cJSON_IsArray(targets))
    status =
        vkft_error("%s: \"target_modules\" must be a list (regex strings are not supported)", path);
  for (const cJSON *e = cJSON_IsArray(targets) ? targets->child : NULL; e && status == VKFT_OK;
       e = e->next) {
    int found = cJSON_IsString(e) ? vkft_module_find(e->valuestring) : -1;
    if (found < 0 || found >= VKFT_PROJ_COUNT)
      status = vkft_error("%s: unsupported target module %s", path,
                          cJSON_IsString(e) ? e->valuestring : "?");
    else
      info->targets |= 1u << found;
  }
  for (const cJSON *e = cJSON_IsArray(save) ? save->child : NULL; e && status == VKFT_OK;
       e = e->next) {
    int found = cJSON_IsString(e) ? vkft_module_find(e->valuestring) : -1;
    if (found < VKFT_PROJ_COUNT)
      status = vkft_error("%s: unsupported module to save %s (supported: embed_tokens, lm_head)",
                          path, cJSON_IsString(e) ? e->valuestring : "?");
    else
      info->modules_to_save |= 1u << found;
  }
  if (status == VKFT_OK) {
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(c, "lora_dropout");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(c, "base_model_name_or_path");
    info->r = (int64_t)r->valuedouble;
    info->alpha = alpha->valuedouble;
    info->dropout = cJSON_IsNumber(dropout) ? dropout->valuedouble : 0.0;
    info->use_rslora = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "use_rslora"));
    info->use_dora = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "use_dora"));
    if (cJSON_IsString(base))
      snprintf(info->base_model, sizeof info->base_model, "%s", base->valuestring);
  }
  cJSON_Delete(c);
  return status;
}

int vkft_model_apply_adapter(vkft_model *m, const char *dir) {
  char path[2048];
  snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
  vkft_st_set *st;
  if (vkft_st_open(path, &st) != VKFT_OK) return VKFT_ERR;
  int status = VKFT_OK, used = 0;
  for (int i = 0; status == VKFT_OK && i < m->param_count; i++) {
    vkft_param *p = &m->params[i];
    if (!p->trainable) continue;
    char key[220];
    snprintf(key, sizeof key, "base_model.model.%s", p->name);
    const vkft_st_tensor *t = vkft_st_find(st, key);
    if (!t) {
      status = vkft_error("%s: missing tensor \"%s\"", path, key);
      break;
    }
    int64_t numel = p->shape[0] * (p->rank == 2 ? p->shape[1] : 1);
    vkft_dtype dt;
    if (t->numel != numel || vkft_st_to_dtype(t->dtype, &dt) != 0 || dt == VKFT_I32) {
      status = vkft_error("%s: tensor \"%s\" has the wrong shape or dtype", path, key);
      break;
    }
    float *buf = malloc((size_t)numel * sizeof *buf);
    if (!buf) {
      status = vkft_error_nomem();
      break;
    }
    vkft_convert_to_f32(dt, t->data, buf, (size_t)numel);
    status = vkft_tensor_write(m->be, p->value, buf);
    free(buf);
    used++;
  }
  if (status == VKFT_OK && used != vkft_st_count(st))
    status = vkft_error("%s: %d tensors do not belong to this model and adapter configuration",
                        path, vkft_st_count(st) - used);
  vkft_st_close(st);
  return status;
}

double vkft_adapter_scale(const vkft_adapter_info *info) {
  return info->use_rslora ? info->alpha / sqrt((double)info->r) : info->alpha / (double)info->r;
}

/* adapter_config.json with every key PEFT 0.x's LoraConfig writes, in its sorted order */
static cJSON *adapter_config_json(const vkft_adapter_info *info) {
  cJSON *c = cJSON_CreateObject();
  cJSON_AddObjectToObject(c, "alpha_pattern");
  cJSON_AddNullToObject(c, "auto_mapping");
  cJSON_AddStringToObject(c, "base_model_name_or_path", info->base_model);
  cJSON_AddStringToObject(c, "bias", "none");
  cJSON_AddBoolToObject(c, "fan_in_fan_out", 0);
  cJSON_AddBoolToObject(c, "inference_mode", 1);
  cJSON_AddBoolToObject(c, "init_lora_weights", 1);
  cJSON_AddNullToObject(c, "layer_replication");
  cJSON_AddNullToObject(c, "layers_pattern");
  cJSON_AddNullToObject(c, "layers_to_transform");
  cJSON_AddObjectToObject(c, "loftq_config");
  cJSON_AddNumberToObject(c, "lora_alpha", info->alpha); /* integral: printed as an int */
  cJSON_AddItemToObject(c, "lora_dropout", vkft_json_float(info->dropout));
  cJSON_AddNullToObject(c, "megatron_config");
  cJSON_AddStringToObject(c, "megatron_core", "megatron.core");
  if (info->modules_to_save) {
    cJSON *m = cJSON_AddArrayToObject(c, "modules_to_save");
    for (int i = VKFT_PROJ_COUNT; i < VKFT_MOD_COUNT; i++)
      if (info->modules_to_save & (1u << i))
        cJSON_AddItemToArray(m, cJSON_CreateString(vkft_module_name(i)));
  } else {
    cJSON_AddNullToObject(c, "modules_to_save");
  }
  cJSON_AddStringToObject(c, "peft_type", "LORA");
  cJSON_AddNumberToObject(c, "r", (double)info->r);
  cJSON_AddObjectToObject(c, "rank_pattern");
  cJSON_AddNullToObject(c, "revision");
  cJSON *targets = cJSON_AddArrayToObject(c, "target_modules");
  for (int i = 0; i < VKFT_PROJ_COUNT; i++)
    if (info->targets & (1u << i))
      cJSON_AddItemToArray(targets, cJSON_CreateString(vkft_module_name(i)));
  cJSON_AddStringToObject(c, "task_type", "CAUSAL_LM");
  cJSON_AddBoolToObject(c, "use_dora", info->use_dora);
  cJSON_AddBoolToObject(c, "use_rslora", info->use_rslora);
  return c;
}

int vkft_model_save_adapter(vkft_model *m, const vkft_adapter_info *info, const char *dir) {
  vkft_st_writer *w;
  if (vkft_st_writer_create(&w) != VKFT_OK) return VKFT_ERR;
  float **blobs = calloc((size_t)m->param_count, sizeof *blobs);
  char(*names)[220] = calloc((size_t)m->param_count, sizeof *names);
  int status = blobs && names ? VKFT_OK : vkft_error_nomem();
  for (int i = 0; status == VKFT_OK && i < m->param_count; i++) {
    const vkft_param *p = &m->params[i];
    if (!p->trainable) continue;
    blobs[i] = malloc((size_t)p->value->n * sizeof **blobs);
    if (!blobs[i]) status = vkft_error_nomem();
    if (status == VKFT_OK) status = vkft_tensor_read_f32(m->be, p->value, blobs[i]);
    snprintf(names[i], sizeof names[i], "base_model.model.%s", p->name);
    if (status == VKFT_OK)
      status = vkft_st_writer_add(w, names[i], VKFT_F32, p->rank, p->shape, blobs[i]);
  }
  char path[2048];
  snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
  if (status == VKFT_OK) status = vkft_st_writer_meta(w, "format", "pt");
  if (status == VKFT_OK) status = vkft_st_writer_save(w, path);
  for (int i = 0; blobs && i < m->param_count; i++) free(blobs[i]);
  free(blobs);
  free(names);
  vkft_st_writer_free(w);
  if (status != VKFT_OK) return status;
  cJSON *c = adapter_config_json(info);
  if (!c) return vkft_error_nomem();
  snprintf(path, sizeof path, "%s/adapter_config.json", dir);
  status = vkft_json_write_file(path, c);
  cJSON_Delete(c);
  return status;
}
