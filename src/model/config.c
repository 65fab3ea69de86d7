/* Parsing and checking a Hugging Face config.json for the Llama family. */
#include "vkft/model_config.h"

#include "vkft/error.h"
#include "vkft/modules.h"
#include "vkft/platform.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *name;
  vkft_arch arch;
} architectures[] = {{"LlamaForCausalLM", VKFT_ARCH_LLAMA},
                     {"MistralForCausalLM", VKFT_ARCH_MISTRAL},
                     {"Qwen2ForCausalLM", VKFT_ARCH_QWEN2},
                     {"Qwen3ForCausalLM", VKFT_ARCH_QWEN3}};

static int get_int(const char *file, const cJSON *root, const char *key, int64_t *out, int required,
                   int64_t fallback) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v || cJSON_IsNull(v)) {
    if (required) return vkft_error("%s: missing field \"%s\"", file, key);
    *out = fallback;
    return VKFT_OK;
  }
  /* every size and id fits int32 (token ids are int32 on the device), so products of two of
   * them cannot overflow int64 */
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 2147483647.0) ||
      v->valuedouble != floor(v->valuedouble))
    return vkft_error("%s: field \"%s\" must be an integer in [0, 2^31)", file, key);
  *out = (int64_t)v->valuedouble;
  return VKFT_OK;
}

static int get_num(const char *file, const cJSON *root, const char *key, double *out,
                   double fallback) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v || cJSON_IsNull(v)) return *out = fallback, VKFT_OK;
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
    return vkft_error("%s: field \"%s\" must be a finite number", file, key);
  *out = v->valuedouble;
  return VKFT_OK;
}

static int get_bool(const char *file, const cJSON *root, const char *key, int *out, int fallback) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v || cJSON_IsNull(v)) return *out = fallback, VKFT_OK;
  if (!cJSON_IsBool(v)) return vkft_error("%s: field \"%s\" must be true or false", file, key);
  *out = cJSON_IsTrue(v);
  return VKFT_OK;
}

/* eos_token_id may be a list (Llama 3.1 Instruct): the first is the one we report. */
static int get_token_id(const char *file, const cJSON *root, const char *key, int64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, 0);
  if (!v || cJSON_IsNull(v)) return *out = -1, VKFT_OK;
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 2147483647.0))
    return vkft_error("%s: field \"%s\" must be a token id", file, key);
  *out = (int64_t)v->valuedouble;
  return VKFT_OK;
}

static int parse(const char *file, const cJSON *root, vkft_model_config *cfg) {
  if (!cJSON_IsObject(root)) return vkft_error("%s: not a JSON object", file);
  const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
  const cJSON *first = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
  if (!cJSON_IsString(first))
    return vkft_error("%s: missing field \"architectures\" (a list with the model class)", file);
  int found = 0;
  for (size_t i = 0; i < sizeof architectures / sizeof architectures[0]; i++)
    if (!strcmp(first->valuestring, architectures[i].name))
      cfg->arch = architectures[i].arch, found = 1;
  if (!found)
    return vkft_error("%s: unsupported architecture \"%s\" (vkft supports LlamaForCausalLM, "
                      "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)",
                      file, first->valuestring);
  snprintf(cfg->architecture, sizeof cfg->architecture, "%s", first->valuestring);

  if (get_int(file, root, "vocab_size", &cfg->vocab_size, 1, 0) ||
      get_int(file, root, "hidden_size", &cfg->hidden_size, 1, 0) ||
      get_int(file, root, "intermediate_size", &cfg->intermediate_size, 1, 0) ||
      get_int(file, root, "num_hidden_layers", &cfg->num_layers, 1, 0) ||
      get_int(file, root, "num_attention_heads", &cfg->num_heads, 1, 0) ||
      get_int(file, root, "num_key_value_heads", &cfg->num_kv_heads, 0, -1) ||
      get_int(file, root, "head_dim", &cfg->head_dim, 0, -1) ||
      get_int(file, root, "max_position_embeddings", &cfg->max_position_embeddings, 0, 2048) ||
      get_num(file, root, "rms_norm_eps", &cfg->rms_norm_eps, 1e-6) ||
      get_num(file, root, "rope_theta", &cfg->rope_theta, 10000.0) ||
      get_bool(file, root, "tie_word_embeddings", &cfg->tie_word_embeddings, 0) ||
      get_token_id(file, root, "bos_token_id", &cfg->bos_token_id) ||
      get_token_id(file, root, "eos_token_id", &cfg->eos_token_id))
    return VKFT_ERR;
  /* Qwen2 always has q/k/v biases; Llama and Mistral may say so with attention_bias. */
  if (get_bool(file, root, "attention_bias", &cfg->attention_bias, cfg->arch == VKFT_ARCH_QWEN2))
    return VKFT_ERR;
  cfg->qk_norm = cfg->arch == VKFT_ARCH_QWEN3;
  if (cfg->num_kv_heads < 0) cfg->num_kv_heads = cfg->num_heads;
  if (cfg->num_heads == 0 || cfg->num_kv_heads == 0 || cfg->num_heads % cfg->num_kv_heads)
    return vkft_error("%s: num_attention_heads (%lld) must be a positive multiple of "
                      "num_key_value_heads (%lld)",
                      file, (long long)cfg->num_heads, (long long)cfg->num_kv_heads);
  if (cfg->head_dim < 0) {
    if (cfg->hidden_size % cfg->num_heads)
      return vkft_error("%s: hidden_size %lld is not a multiple of num_attention_heads %lld and no "
                        "head_dim is given",
                        file, (long long)cfg->hidden_size, (long long)cfg->num_heads);
    cfg->head_dim = cfg->hidden_size / cfg->num_heads;
  }
  if (!(cfg->rms_norm_eps > 0))
    return vkft_error("%s: field \"rms_norm_eps\" must be positive", file);
  if (!(cfg->rope_theta > 0)) return vkft_error("%s: field \"rope_theta\" must be positive", file);
  if (cfg->head_dim % 2)
    return vkft_error("%s: head_dim %lld must be even (RoPE)", file, (long long)cfg->head_dim);
  if (!cfg->vocab_size || !cfg->hidden_size || !cfg->intermediate_size || !cfg->num_layers)
    return vkft_error("%s: vocab_size, hidden_size, intermediate_size and num_hidden_layers must "
                      "be positive",
                      file);
  const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
  if (act && !(cJSON_IsString(act) && !strcmp(act->valuestring, "silu")))
    return vkft_error("%s: unsupported hidden_act (only \"silu\")", file);
  const cJSON *mlp_bias = cJSON_GetObjectItemCaseSensitive(root, "mlp_bias");
  if (cJSON_IsTrue(mlp_bias)) return vkft_error("%s: unsupported mlp_bias: true", file);

  const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
  if (scaling && !cJSON_IsNull(scaling)) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(scaling, "rope_type");
    if (!type) type = cJSON_GetObjectItemCaseSensitive(scaling, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "llama3"))
      return vkft_error("%s: unsupported rope_scaling type \"%s\" (only llama3)", file,
                        cJSON_IsString(type) ? type->valuestring : "?");
    cfg->rope_llama3 = 1;
    if (get_num(file, scaling, "factor", &cfg->rope_factor, 8.0) ||
        get_num(file, scaling, "low_freq_factor", &cfg->rope_low_freq_factor, 1.0) ||
        get_num(file, scaling, "high_freq_factor", &cfg->rope_high_freq_factor, 4.0) ||
        get_int(file, scaling, "original_max_position_embeddings", &cfg->rope_original_max_position,
                0, 8192))
      return vkft_error_prefix("rope_scaling");
  }
  const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(root, "torch_dtype");
  snprintf(cfg->torch_dtype, sizeof cfg->torch_dtype, "%s",
           cJSON_IsString(dtype) ? dtype->valuestring : "float32");
  return VKFT_OK;
}

void vkft_model_proj_shape(const vkft_model_config *c, int p, int64_t *out, int64_t *in) {
  int64_t C = c->hidden_size, F = c->intermediate_size;
  int64_t QD = c->num_heads * c->head_dim, KD = c->num_kv_heads * c->head_dim;
  const int64_t outs[VKFT_PROJ_COUNT] = {QD, KD, KD, C, F, F, C};
  const int64_t ins[VKFT_PROJ_COUNT] = {C, C, C, QD, C, C, F};
  *out = outs[p];
  *in = ins[p];
}

int vkft_model_config_load(const char *path, vkft_model_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  char file[4096];
  if (vkft_is_dir(path))
    snprintf(file, sizeof file, "%s/config.json", path);
  else
    snprintf(file, sizeof file, "%s", path);
  char *text;
  size_t size;
  if (vkft_file_read(file, &text, &size) != VKFT_OK) return VKFT_ERR;
  cJSON *root = cJSON_ParseWithLength(text, size);
  free(text);
  if (!root) return vkft_error("%s: not valid JSON", file);
  int status = parse(file, root, cfg);
  cJSON_Delete(root);
  return status;
}
