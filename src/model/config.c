/* A Llama-family model's configuration, parsed and checked: from a Hugging Face config.json,
 * or from a GGUF file's metadata (llama.cpp's "<arch>.*" keys; docs/GGUF.md, "GGUF bases"). */
#include "vkft/model_config.h"

#include "vkft/error.h"
#include "vkft/gguf.h"
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
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "%s: unsupported architecture \"%s\" (vkft supports LlamaForCausalLM, "
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
      return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                             "%s: unsupported rope_scaling type \"%s\" (only llama3)", file,
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

/* ---- GGUF metadata ----
 * The keys llama.cpp's loader reads for the llama, qwen2 and qwen3 architectures (the
 * converter writes them from config.json); what the file does not say is implied by the
 * architecture (SiLU, no MLP bias, Qwen3's q/k norms) or by its tensors (biases, a tied head). */

static const struct {
  const char *name, *hf;
  vkft_arch arch;
} gguf_archs[] = {{"llama", "LlamaForCausalLM", VKFT_ARCH_LLAMA},
                  {"qwen2", "Qwen2ForCausalLM", VKFT_ARCH_QWEN2},
                  {"qwen3", "Qwen3ForCausalLM", VKFT_ARCH_QWEN3}};

/* "<arch>.<key>" as an integer in [0, 2^31) (absent: required is an error, else fallback) */
static int gguf_int(const vkft_gguf *g, const char *arch, const char *key, int64_t *out,
                    int required, int64_t fallback) {
  char name[128];
  snprintf(name, sizeof name, "%s.%s", arch, key);
  if (vkft_gguf_find_key(g, name) < 0) {
    if (required) return vkft_error("%s: missing key \"%s\"", vkft_gguf_path(g), name);
    *out = fallback;
    return VKFT_OK;
  }
  if (vkft_gguf_get_int(g, name, out) != VKFT_OK) return VKFT_ERR;
  if (*out < 0 || *out > 2147483647)
    return vkft_error("%s: key \"%s\" must be an integer in [0, 2^31)", vkft_gguf_path(g), name);
  return VKFT_OK;
}

static int gguf_num(const vkft_gguf *g, const char *arch, const char *key, double *out,
                    int required, double fallback) {
  char name[128];
  snprintf(name, sizeof name, "%s.%s", arch, key);
  if (vkft_gguf_find_key(g, name) < 0) {
    if (required) return vkft_error("%s: missing key \"%s\"", vkft_gguf_path(g), name);
    *out = fallback;
    return VKFT_OK;
  }
  if (vkft_gguf_get_float(g, name, out) != VKFT_OK) return VKFT_ERR;
  if (!isfinite(*out)) return vkft_error("%s: key \"%s\" is not finite", vkft_gguf_path(g), name);
  return VKFT_OK;
}

/* tokenizer.ggml.<which>_token_id; -1 when absent or "none" (0xFFFFFFFF, as the llama2.c
 * converter writes an unused id) */
static int64_t gguf_token_id(const vkft_gguf *g, const char *which) {
  char name[64];
  int64_t id;
  snprintf(name, sizeof name, "tokenizer.ggml.%s_token_id", which);
  if (vkft_gguf_find_key(g, name) < 0 || vkft_gguf_get_int(g, name, &id) != VKFT_OK) return -1;
  return id >= 0 && id <= 2147483647 ? id : -1;
}

/* The factors of Llama 3 RoPE scaling as llama.cpp's converter stores them (rope_freqs.weight,
 * LlamaModel.generate_extra_tensors): 1 for wavelengths under L / high, `factor` above L / low,
 * 1 / ((1 - s) / factor + s) between, s = (L / wavelength - low) / (high - low). */
static double llama3_factor(const vkft_model_config *c, int64_t i) {
  float freq = 1.0f / powf((float)c->rope_theta, (float)(2 * i) / (float)c->head_dim);
  double wavelen = 2 * 3.141592653589793 / freq;
  double L = (double)c->rope_original_max_position;
  if (wavelen < L / c->rope_high_freq_factor) return 1.0;
  if (wavelen > L / c->rope_low_freq_factor) return c->rope_factor;
  double s = (L / wavelen - c->rope_low_freq_factor) /
             (c->rope_high_freq_factor - c->rope_low_freq_factor);
  return 1 / ((1 - s) / c->rope_factor + s);
}

/* A rope_freqs.weight tensor means Llama 3 scaling, whose parameters the file does not keep:
 * the factor is the last (lowest-frequency) one, the others Llama 3.1's and 3.2's published
 * values (low 1, high 4, original context 8192, or the file's
 * rope.scaling.original_context_length); every stored factor must then be what those give, else the
 * file is refused rather than run with frequencies it does not describe. */
static int gguf_llama3_rope(const vkft_gguf *g, const char *arch, vkft_model_config *c) {
  const vkft_gguf_tensor *t = vkft_gguf_find_tensor(g, "rope_freqs.weight");
  if (!t) return VKFT_OK;
  int64_t half = c->head_dim / 2;
  if (t->type != VKFT_GGML_F32 || t->n_dims != 1 || t->ne[0] != half)
    return vkft_error("%s: rope_freqs.weight is not %lld F32 factors", vkft_gguf_path(g),
                      (long long)half);
  float *stored = malloc((size_t)half * sizeof *stored);
  if (!stored) return vkft_error_nomem();
  memcpy(stored, t->data, (size_t)half * sizeof *stored);
  c->rope_llama3 = 1;
  c->rope_factor = stored[half - 1];
  c->rope_low_freq_factor = 1.0;
  c->rope_high_freq_factor = 4.0;
  int status = gguf_int(g, arch, "rope.scaling.original_context_length",
                        &c->rope_original_max_position, 0, 8192);
  for (int64_t i = 0; status == VKFT_OK && i < half; i++) {
    double want = (float)llama3_factor(c, i);
    if (!(fabs(stored[i] - want) <= 1e-6 * want))
      status = vkft_error_with(VKFT_ERR_UNSUPPORTED,
                               "%s: rope_freqs.weight[%lld] = %.9g is not Llama 3 RoPE scaling "
                               "with factor %g, low 1, high 4, original context %lld (%.9g)",
                               vkft_gguf_path(g), (long long)i, stored[i], c->rope_factor,
                               (long long)c->rope_original_max_position, want);
  }
  free(stored);
  return status;
}

static int parse_gguf(const vkft_gguf *g, vkft_model_config *cfg) {
  const char *file = vkft_gguf_path(g), *name;
  uint64_t len;
  if (vkft_gguf_get_str(g, "general.architecture", &name, &len) != VKFT_OK) return VKFT_ERR;
  char arch[64];
  snprintf(arch, sizeof arch, "%.*s", (int)(len < 63 ? len : 63), name);
  int found = 0;
  for (size_t i = 0; i < sizeof gguf_archs / sizeof gguf_archs[0]; i++)
    if (!strcmp(arch, gguf_archs[i].name)) {
      cfg->arch = gguf_archs[i].arch;
      snprintf(cfg->architecture, sizeof cfg->architecture, "%s", gguf_archs[i].hf);
      found = 1;
    }
  if (!found)
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "%s: general.architecture \"%s\" is not supported (vkft reads llama, "
                           "qwen2 and qwen3; Mistral ships as llama)",
                           file, arch);
  int64_t rope_dims, value_dim;
  if (gguf_int(g, arch, "block_count", &cfg->num_layers, 1, 0) ||
      gguf_int(g, arch, "embedding_length", &cfg->hidden_size, 1, 0) ||
      gguf_int(g, arch, "feed_forward_length", &cfg->intermediate_size, 1, 0) ||
      gguf_int(g, arch, "attention.head_count", &cfg->num_heads, 1, 0) ||
      gguf_int(g, arch, "attention.head_count_kv", &cfg->num_kv_heads, 0, -1) ||
      gguf_int(g, arch, "attention.key_length", &cfg->head_dim, 0, -1) ||
      gguf_int(g, arch, "attention.value_length", &value_dim, 0, -1) ||
      gguf_int(g, arch, "rope.dimension_count", &rope_dims, 0, -1) ||
      gguf_int(g, arch, "context_length", &cfg->max_position_embeddings, 0, 2048) ||
      gguf_num(g, arch, "attention.layer_norm_rms_epsilon", &cfg->rms_norm_eps, 1, 0) ||
      gguf_num(g, arch, "rope.freq_base", &cfg->rope_theta, 0, 10000.0))
    return VKFT_ERR;
  if (cfg->num_kv_heads < 0) cfg->num_kv_heads = cfg->num_heads;
  if (cfg->num_heads == 0 || cfg->num_kv_heads == 0 || cfg->num_heads % cfg->num_kv_heads)
    return vkft_error("%s: %s.attention.head_count (%lld) must be a positive multiple of "
                      "head_count_kv (%lld)",
                      file, arch, (long long)cfg->num_heads, (long long)cfg->num_kv_heads);
  if (cfg->head_dim < 0) {
    if (cfg->hidden_size % cfg->num_heads)
      return vkft_error("%s: embedding_length %lld is not a multiple of head_count %lld and no "
                        "attention.key_length is given",
                        file, (long long)cfg->hidden_size, (long long)cfg->num_heads);
    cfg->head_dim = cfg->hidden_size / cfg->num_heads;
  }
  if (value_dim >= 0 && value_dim != cfg->head_dim)
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "%s: attention.value_length %lld differs from key_length %lld", file,
                           (long long)value_dim, (long long)cfg->head_dim);
  if (rope_dims >= 0 && rope_dims != cfg->head_dim)
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "%s: %s.rope.dimension_count %lld: RoPE on part of a head (%lld) is "
                           "not supported",
                           file, arch, (long long)rope_dims, (long long)cfg->head_dim);
  char key[128];
  snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
  if (vkft_gguf_find_key(g, key) >= 0) {
    const char *type;
    if (vkft_gguf_get_str(g, key, &type, &len) != VKFT_OK) return VKFT_ERR;
    if (!(len == 4 && !memcmp(type, "none", 4)))
      return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                             "%s: %s \"%.*s\" is not supported (Llama 3 scaling, stored as "
                             "rope_freqs.weight, is)",
                             file, key, (int)(len < 40 ? len : 40), type);
  }
  if (!(cfg->rms_norm_eps > 0))
    return vkft_error("%s: %s.attention.layer_norm_rms_epsilon must be positive", file, arch);
  if (!(cfg->rope_theta > 0))
    return vkft_error("%s: %s.rope.freq_base must be positive", file, arch);
  if (cfg->head_dim % 2)
    return vkft_error("%s: head dimension %lld must be even (RoPE)", file,
                      (long long)cfg->head_dim);
  if (!cfg->hidden_size || !cfg->intermediate_size || !cfg->num_layers)
    return vkft_error("%s: embedding_length, feed_forward_length and block_count must be positive",
                      file);
  /* the embedding's rows are the vocabulary (the tokenizer may name fewer) */
  const vkft_gguf_tensor *embd = vkft_gguf_find_tensor(g, "token_embd.weight");
  if (!embd || embd->n_dims != 2 || embd->ne[0] != cfg->hidden_size)
    return vkft_error("%s: no token_embd.weight of %lld columns", file,
                      (long long)cfg->hidden_size);
  cfg->vocab_size = embd->ne[1];
  if (cfg->vocab_size <= 0 || cfg->vocab_size > 2147483647)
    return vkft_error("%s: token_embd.weight has %lld rows", file, (long long)cfg->vocab_size);
  cfg->tie_word_embeddings = vkft_gguf_find_tensor(g, "output.weight") == NULL;
  cfg->attention_bias = vkft_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
  cfg->qk_norm = cfg->arch == VKFT_ARCH_QWEN3;
  cfg->bos_token_id = gguf_token_id(g, "bos");
  cfg->eos_token_id = gguf_token_id(g, "eos");
  snprintf(cfg->torch_dtype, sizeof cfg->torch_dtype, "float32");
  return gguf_llama3_rope(g, arch, cfg);
}

int vkft_model_config_load(const char *path, vkft_model_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  if (vkft_gguf_is_file(path)) {
    vkft_gguf *g;
    if (vkft_gguf_open(path, &g) != VKFT_OK) return VKFT_ERR;
    int status = parse_gguf(g, cfg);
    vkft_gguf_close(g);
    return status;
  }
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
