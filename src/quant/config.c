/* config.json's quantization_config: what a model folder's quantization is (bitsandbytes 4-bit
 * is read; everything else is one clear error naming its quant_method), the object transformers
 * writes for bitsandbytes 4-bit, and config.json rewritten the way transformers prints it. */
#include "internal.h"

#include "vkft/error.h"
#include "vkft/json.h"
#include "vkft/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int flag(const cJSON *qc, const char *key, const char *private_key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(qc, key);
  if (!v) v = cJSON_GetObjectItemCaseSensitive(qc, private_key); /* to_dict keeps both */
  return cJSON_IsTrue(v);
}

static int string_field(const char *file, const cJSON *qc, const char *key, const char *fallback,
                        const char *const *allowed, char *out, size_t size) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(qc, key);
  if (!v || cJSON_IsNull(v)) {
    snprintf(out, size, "%s", fallback);
    return VKFT_OK;
  }
  for (int i = 0; cJSON_IsString(v) && allowed[i]; i++)
    if (!strcmp(v->valuestring, allowed[i])) {
      snprintf(out, size, "%s", v->valuestring);
      return VKFT_OK;
    }
  return vkft_error_with(VKFT_ERR_UNSUPPORTED, "%s: quantization_config.%s: unsupported value",
                         file, key);
}

static int inspect_bnb(const char *file, const cJSON *qc, vkft_quant_info *info) {
  if (flag(qc, "load_in_8bit", "_load_in_8bit"))
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "%s: 8-bit bitsandbytes (load_in_8bit) is not supported; vkft reads "
                           "bitsandbytes 4-bit (nf4/fp4) checkpoints",
                           file);
  if (!flag(qc, "load_in_4bit", "_load_in_4bit"))
    return vkft_error("%s: quantization_config (bitsandbytes) has neither load_in_4bit nor "
                      "load_in_8bit set",
                      file);
  static const char *const types[] = {"nf4", "fp4", NULL};
  static const char *const dtypes[] = {"float32", "float16", "bfloat16", NULL};
  static const char *const storages[] = {
      "uint8",   "int8",     "float16", "float32",
      "float64", "bfloat16", NULL}; /* BitsAndBytesConfig's list */
  char type[8];
  /* BitsAndBytesConfig's defaults: fp4, no double quant, float32 compute, uint8 storage */
  if (string_field(file, qc, "bnb_4bit_quant_type", "fp4", types, type, sizeof type) ||
      string_field(file, qc, "bnb_4bit_compute_dtype", "float32", dtypes, info->compute_dtype,
                   sizeof info->compute_dtype) ||
      string_field(file, qc, "bnb_4bit_quant_storage", "uint8", storages, info->quant_storage,
                   sizeof info->quant_storage))
    return VKFT_ERR;
  vkft_bnb4_type_parse(type, &info->type);
  info->double_quant =
      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(qc, "bnb_4bit_use_double_quant"));
  info->kind = VKFT_QUANT_BNB4;
  return VKFT_OK;
}

int vkft_quant_inspect(const char *path, vkft_quant_info *info) {
  memset(info, 0, sizeof *info);
  char file[4096];
  snprintf(file, sizeof file, vkft_is_dir(path) ? "%s/config.json" : "%s", path);
  cJSON *config = vkft_json_read_file(file);
  if (!config) return VKFT_ERR;
  const cJSON *qc = cJSON_GetObjectItemCaseSensitive(config, "quantization_config");
  int status = VKFT_OK;
  if (qc && !cJSON_IsNull(qc)) {
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(qc, "quant_method");
    int bnb_flags = cJSON_GetObjectItemCaseSensitive(qc, "load_in_4bit") ||
                    cJSON_GetObjectItemCaseSensitive(qc, "load_in_8bit");
    if (!cJSON_IsObject(qc))
      status = vkft_error("%s: quantization_config is not an object", file);
    else if (cJSON_IsString(method) ? !strcmp(method->valuestring, "bitsandbytes") : bnb_flags)
      status = inspect_bnb(file, qc, info);
    else if (cJSON_IsString(method))
      status = vkft_error_with(VKFT_ERR_UNSUPPORTED,
                               "%s: quantization_config.quant_method \"%s\" is not supported; vkft "
                               "reads bitsandbytes 4-bit (nf4/fp4) checkpoints",
                               file, method->valuestring);
    else
      status = vkft_error("%s: quantization_config has no quant_method", file);
  }
  cJSON_Delete(config);
  return status;
}

cJSON *vkft_bnb4_quantization_config(vkft_bnb4_type type, int double_quant,
                                     const char *compute_dtype) {
  /* BitsAndBytesConfig.to_dict(): its __dict__ in assignment order, then the two properties */
  cJSON *qc = cJSON_CreateObject();
  if (!qc) return NULL;
  cJSON_AddStringToObject(qc, "quant_method", "bitsandbytes");
  cJSON_AddFalseToObject(qc, "_load_in_8bit");
  cJSON_AddTrueToObject(qc, "_load_in_4bit");
  cJSON_AddItemToObject(qc, "llm_int8_threshold", vkft_json_float(6.0));
  cJSON_AddNullToObject(qc, "llm_int8_skip_modules");
  cJSON_AddFalseToObject(qc, "llm_int8_enable_fp32_cpu_offload");
  cJSON_AddFalseToObject(qc, "llm_int8_has_fp16_weight");
  cJSON_AddStringToObject(qc, "bnb_4bit_quant_type", vkft_bnb4_type_name(type));
  cJSON_AddBoolToObject(qc, "bnb_4bit_use_double_quant", double_quant);
  cJSON_AddStringToObject(qc, "bnb_4bit_compute_dtype", compute_dtype);
  cJSON_AddStringToObject(qc, "bnb_4bit_quant_storage", "uint8");
  cJSON_AddTrueToObject(qc, "load_in_4bit");
  if (!cJSON_AddFalseToObject(qc, "load_in_8bit")) {
    cJSON_Delete(qc);
    return NULL;
  }
  return qc;
}

/* ---- config.json as transformers prints it ---- */

/* Python keeps 500000.0 a float and 500000 an int, cJSON keeps only the double: every number
 * written with a '.' or an exponent becomes a raw Python float repr, in document order (a number
 * token's place among the text's number tokens is its place in a walk of the parsed tree). */
static const char *next_number(const char *s, int *is_float) {
  int in_string = 0;
  for (; *s; s++) {
    if (in_string) {
      if (*s == '\\' && s[1])
        s++;
      else if (*s == '"')
        in_string = 0;
    } else if (*s == '"') {
      in_string = 1;
    } else if (*s == '-' || (*s >= '0' && *s <= '9')) {
      *is_float = 0;
      for (; *s && strchr("+-0123456789.eE", *s); s++)
        *is_float |= *s == '.' || *s == 'e' || *s == 'E';
      return s;
    }
  }
  return NULL;
}

static int mark_floats(cJSON *item, const char **text) {
  for (cJSON *c = item->child; c; c = c->next) {
    if (cJSON_IsNumber(c)) {
      int is_float;
      if (!(*text = next_number(*text, &is_float))) return VKFT_ERR;
      if (!is_float) continue;
      cJSON *raw = vkft_json_float(c->valuedouble);
      if (!raw) return VKFT_ERR;
      c->type = cJSON_Raw;
      c->valuestring = raw->valuestring;
      raw->valuestring = NULL;
      cJSON_Delete(raw);
    } else if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && mark_floats(c, text)) {
      return VKFT_ERR;
    }
  }
  return VKFT_OK;
}

cJSON *vkft_quant_read_config(const char *file) {
  char *text;
  size_t size;
  if (vkft_file_read(file, &text, &size) != VKFT_OK) return NULL;
  cJSON *config = cJSON_ParseWithLength(text, size);
  const char *cursor = text;
  if (!cJSON_IsObject(config) || mark_floats(config, &cursor)) {
    cJSON_Delete(config);
    config = NULL;
    vkft_error("%s: not a JSON object", file);
  }
  free(text);
  return config;
}
