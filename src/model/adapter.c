/* Reading PEFT LoRA adapters back: adapter_config.json and adapter_model.safetensors with
 * the keys PEFT writes ("base_model.model." + the Hugging Face module path). */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/json.h"
#include "vkft/platform.h"
#include "vkft/safetensors.h"

#include <cjson/cJSON.h>
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
  static const char *names[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                "gate_proj", "up_proj", "down_proj"};
  for (const cJSON *e = cJSON_IsArray(targets) ? targets->child : NULL; e && status == VKFT_OK;
       e = e->next) {
    int found = -1;
    for (int i = 0; i < 7 && cJSON_IsString(e); i++)
      if (!strcmp(e->valuestring, names[i])) found = i;
    if (found < 0)
      status = vkft_error("%s: unsupported target module %s", path,
                          cJSON_IsString(e) ? e->valuestring : "?");
    else
      info->targets |= 1u << found;
  }
  for (const cJSON *e = cJSON_IsArray(save) ? save->child : NULL; e && status == VKFT_OK;
       e = e->next) {
    if (cJSON_IsString(e) && !strcmp(e->valuestring, "embed_tokens"))
      info->modules_to_save |= VKFT_MOD_EMBED;
    else if (cJSON_IsString(e) && !strcmp(e->valuestring, "lm_head"))
      info->modules_to_save |= VKFT_MOD_LM_HEAD;
    else
      status = vkft_error("%s: unsupported module to save", path);
  }
  if (status == VKFT_OK) {
    info->r = (int64_t)r->valuedouble;
    info->alpha = alpha->valuedouble;
    info->use_rslora = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "use_rslora"));
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
      status = vkft_error("out of host memory");
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
