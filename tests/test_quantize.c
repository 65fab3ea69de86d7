/* `vkft quantize` (src/quant): the bundled stories260K and a sharded random model quantized to
 * bitsandbytes 4-bit folders, every projection checked against the rules (largest gap of the
 * code, the block scales), the folder's other files copied, refusals (an existing output, an
 * already quantized model, a bad block size). Split from test_quant.c. */
#include "check.h"
#include "safetensors_order.h"

#include "vkft/error.h"
#include "vkft/json.h"
#include "vkft/model.h"
#include "vkft/platform.h"
#include "vkft/quant.h"
#include "vkft/safetensors.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TMP "test_quantize.tmp"
#define STORIES VKFT_SOURCE_DIR "/models/stories260K"

static float largest_gap(const float *code, int n) {
  float sorted[256], gap = 0;
  memcpy(sorted, code, (size_t)n * sizeof *code);
  for (int i = 1; i < n; i++) /* insertion sort: n <= 256 */
    for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
      float t = sorted[j];
      sorted[j] = sorted[j - 1], sorted[j - 1] = t;
    }
  for (int i = 1; i < n; i++) gap = fmaxf(gap, sorted[i] - sorted[i - 1]);
  return gap;
}

/* One projection of the quantized folder against its source: the nibbles and scales are what
 * quantizing the source gives, and the dequantized weight is within the 4-bit error bound:
 * the nearest code is at most half the largest gap g4 of the code away from x / a, so
 * |code * a - x| <= a * (g4 / 2 + 1e-6) (1e-6: FP4's thresholds sit up to 3.4e-7 off the
 * midpoints, plus three float roundings); double quantization replaces a by a' with
 * |a' - a| <= nested * (g8 / 2 + 1e-6) + 2^-22 a (g8: the dynamic map's largest gap), which
 * adds |code| * |a' - a| <= |a' - a|. */
static int check_projection(const vkft_st_tensor *src, const vkft_bnb4_weight *w) {
  int bad = 0;
  vkft_dtype dtype;
  vkft_st_to_dtype(src->dtype, &dtype);
  int64_t n = src->numel;
  uint8_t *packed = malloc((size_t)(n + 1) / 2);
  float *absmax = malloc((size_t)w->blocks * 4), *decoded = malloc((size_t)w->blocks * 4);
  float *x = malloc((size_t)n * 4), *deq = malloc((size_t)n * 4);
  vkft_bnb4_quantize(w->type, w->blocksize, dtype, src->data, n, packed, absmax);
  bad += memcmp(packed, w->packed, (size_t)(n + 1) / 2) != 0;
  vkft_bnb4_weight_absmax(w, decoded);
  float dyn[256];
  vkft_bnb_dynamic_map(dyn);
  float g8 = largest_gap(dyn, 256), g4 = largest_gap(w->code, 16);
  if (w->nested) {
    uint8_t *q = malloc((size_t)w->blocks);
    float nested[64];
    bad += w->offset != vkft_bnb_absmax_offset(absmax, w->blocks);
    vkft_bnb_double_quant(absmax, w->blocks, w->offset, q, nested);
    bad += memcmp(q, w->absmax_q, (size_t)w->blocks) != 0;
    bad += memcmp(nested, w->nested_absmax, (size_t)(w->blocks + 255) / 256 * 4) != 0;
    free(q);
  } else {
    bad += memcmp(absmax, w->absmax, (size_t)w->blocks * 4) != 0;
  }
  vkft_convert_to_f32(dtype, src->data, x, (size_t)n);
  vkft_bnb4_dequantize(w, decoded, deq);
  for (int64_t b = 0; b < w->blocks; b++) {
    float a = absmax[b], scale_err = fabsf(decoded[b] - a);
    if (w->nested)
      bad += scale_err > w->nested_absmax[b / 256] * (g8 / 2 + 1e-6f) + ldexpf(a, -22);
    else
      bad += scale_err != 0;
    for (int64_t i = b * w->blocksize; i < n && i < (b + 1) * w->blocksize; i++)
      bad += fabsf(deq[i] - x[i]) > a * (g4 / 2 + 1e-6f) + scale_err;
  }
  free(packed), free(absmax), free(decoded), free(x), free(deq);
  return bad;
}

/* Every projection checked, every other tensor byte-identical, the tensor count right. */
static void check_folder(const char *src_dir, const char *out_dir, vkft_bnb4_type type, int bs,
                         int double_quant) {
  vkft_model_config cfg;
  vkft_st_set *src, *out;
  CHECK(vkft_model_config_load(src_dir, &cfg) == VKFT_OK);
  CHECK(vkft_st_open(src_dir, &src) == VKFT_OK);
  CHECKF(vkft_st_open(out_dir, &out) == VKFT_OK, "%s", vkft_error_message());
  int bad = 0, quantized = 0;
  for (int l = 0; l < cfg.num_layers; l++)
    for (int p = 0; p < VKFT_PROJ_COUNT; p++) {
      char name[160];
      snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, vkft_proj_path(p));
      vkft_bnb4_weight w;
      if (vkft_bnb4_read_proj(out, l, (vkft_proj)p, &w) != VKFT_OK) {
        CHECKF(0, "%s", vkft_error_message());
        continue;
      }
      const vkft_st_tensor *s = vkft_st_find(src, name);
      vkft_dtype dtype;
      vkft_st_to_dtype(s->dtype, &dtype);
      bad += w.type != type || w.blocksize != bs || w.nested != double_quant || w.rank != 2 ||
             w.shape[0] != s->shape[0] || w.shape[1] != s->shape[1] || w.dtype != dtype;
      bad += check_projection(s, &w);
      vkft_bnb4_weight_free(&w);
      quantized++;
    }
  for (int i = 0; i < vkft_st_count(src); i++) {
    const vkft_st_tensor *s = vkft_st_at(src, i), *o = vkft_st_find(out, s->name);
    if (vkft_bnb4_is_quantized(out, s->name)) continue;
    bad += !o || strcmp(o->dtype_name, s->dtype_name) || o->rank != s->rank || o->size != s->size ||
           memcmp(o->data, s->data, (size_t)s->size);
  }
  int pieces = double_quant ? 6 : 4;
  CHECKF(!bad && quantized == cfg.num_layers * VKFT_PROJ_COUNT &&
             vkft_st_count(out) == vkft_st_count(src) + quantized * (pieces - 1),
         "%s: %d mismatches", out_dir, bad);
  vkft_st_close(src);
  vkft_st_close(out);
}

static int same_file(const char *a, const char *b) {
  char *x, *y;
  size_t nx, ny;
  if (vkft_file_read(a, &x, &nx) != VKFT_OK) return 0;
  if (vkft_file_read(b, &y, &ny) != VKFT_OK) return free(x), 0;
  int same = nx == ny && !memcmp(x, y, nx);
  free(x), free(y);
  return same;
}

static void quantize_stories(void) {
  vkft_quantize_stats stats;
  vkft_quantize_desc desc = {.model_dir = STORIES,
                             .out_dir = TMP "/stories-nf4",
                             .type = VKFT_BNB4_NF4,
                             .double_quant = 1};
  CHECKF(vkft_quantize_model(&desc, &stats, NULL, NULL) == VKFT_OK, "%s", vkft_error_message());
  CHECK(stats.weights_quantized == 35 && stats.files_copied == 4 &&
        !vkft_is_dir(TMP "/stories-nf4.tmp"));
  check_folder(STORIES, desc.out_dir, VKFT_BNB4_NF4, 64, 1);
  CHECK(same_file(STORIES "/tokenizer.json", TMP "/stories-nf4/tokenizer.json"));
  vkft_quant_info info;
  CHECK(vkft_quant_inspect(desc.out_dir, &info) == VKFT_OK && info.kind == VKFT_QUANT_BNB4 &&
        info.type == VKFT_BNB4_NF4 && info.double_quant && !strcmp(info.compute_dtype, "float32"));
  /* config.json printed as transformers prints it: sorted keys, ints stay ints, 1e-05 */
  char *config;
  size_t size;
  CHECK(vkft_file_read(TMP "/stories-nf4/config.json", &config, &size) == VKFT_OK);
  CHECK(strstr(config, "{\n  \"architectures\": [\n    \"LlamaForCausalLM\"\n  ],\n"));
  CHECK(strstr(config, "\"rms_norm_eps\": 1e-05,\n  \"rope_scaling\": null,\n  \"rope_theta\": "
                       "10000,\n"));
  CHECK(strstr(config, "  \"quantization_config\": {\n    \"_load_in_4bit\": true,\n    "
                       "\"_load_in_8bit\": false,\n    \"bnb_4bit_compute_dtype\": \"float32\","
                       "\n    \"bnb_4bit_quant_storage\": \"uint8\",\n    "
                       "\"bnb_4bit_quant_type\": \"nf4\",\n    \"bnb_4bit_use_double_quant\": "
                       "true,\n    \"llm_int8_enable_fp32_cpu_offload\": false,\n    "
                       "\"llm_int8_has_fp16_weight\": false,\n    \"llm_int8_skip_modules\": "
                       "null,\n    \"llm_int8_threshold\": 6.0,\n    \"load_in_4bit\": true,\n"
                       "    \"load_in_8bit\": false,\n    \"quant_method\": \"bitsandbytes\"\n"
                       "  },\n"));
  CHECK(size > 0 && config[size - 1] == '\n');
  free(config);
  /* FP4 with larger blocks, no double quantization */
  desc = (vkft_quantize_desc){
      .model_dir = STORIES, .out_dir = TMP "/stories-fp4", .type = VKFT_BNB4_FP4, .blocksize = 128};
  CHECKF(vkft_quantize_model(&desc, &stats, NULL, NULL) == VKFT_OK, "%s", vkft_error_message());
  check_folder(STORIES, desc.out_dir, VKFT_BNB4_FP4, 128, 0);
  /* refusals */
  CHECK_ERR(vkft_quantize_model(&desc, &stats, NULL, NULL), VKFT_ERR_INPUT, "already exists");
  desc = (vkft_quantize_desc){
      .model_dir = TMP "/stories-fp4", .out_dir = TMP "/again", .type = VKFT_BNB4_NF4};
  CHECK(vkft_quantize_model(&desc, &stats, NULL, NULL) == VKFT_ERR &&
        vkft_error_code() == VKFT_ERR_INPUT && strstr(vkft_error_message(), "already quantized") &&
        !vkft_is_dir(TMP "/again.tmp"));
  desc.model_dir = STORIES, desc.blocksize = 48;
  CHECK_ERR(vkft_quantize_model(&desc, &stats, NULL, NULL), VKFT_ERR_INPUT, "block size 48");
}

/* A bf16 Qwen2-like model (q/k/v biases, sizes that leave partial blocks) split into two shards
 * behind an index, with files that must and must not be copied. */
static void quantize_sharded_random(void) {
  const char *config =
      "{\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"qwen2\", \"vocab_size\": 64, "
      "\"hidden_size\": 48, \"intermediate_size\": 97, \"num_hidden_layers\": 2, "
      "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"max_position_embeddings\": 64, "
      "\"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0, \"tie_word_embeddings\": false, "
      "\"attention_bias\": true, \"torch_dtype\": \"bfloat16\"}";
  const char *one = TMP "/rand1", *dir = TMP "/rand";
  CHECKF(vkft_model_write_random(one, config, VKFT_BF16, 7) == VKFT_OK, "%s", vkft_error_message());
  vkft_st_set *set;
  CHECK(vkft_st_open(one, &set) == VKFT_OK);
  vkft_mkdirs(dir);
  cJSON *map = cJSON_CreateObject();
  for (int shard = 0; shard < 2; shard++) {
    char name[64], path[256];
    snprintf(name, sizeof name, "model-%05d-of-00002.safetensors", shard + 1);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    vkft_st_writer *w;
    vkft_st_writer_create(&w);
    for (int i = 0; i < vkft_st_count(set); i++)
      if (i % 2 == shard) {
        const vkft_st_tensor *t = vkft_st_at(set, i);
        vkft_st_writer_add_tensor(w, t->name, t);
        cJSON_AddStringToObject(map, t->name, name);
      }
    CHECK(vkft_st_writer_save(w, path) == VKFT_OK);
    vkft_st_writer_free(w);
  }
  cJSON *index = cJSON_CreateObject();
  cJSON_AddItemToObject(index, "weight_map", map);
  CHECK(vkft_json_write_file(TMP "/rand/model.safetensors.index.json", index) == VKFT_OK);
  cJSON_Delete(index);
  vkft_st_close(set);
  CHECK(vkft_file_write_atomic(TMP "/rand/config.json", config, strlen(config)) == VKFT_OK);
  CHECK(vkft_file_write_atomic(TMP "/rand/tokenizer_config.json", "{}", 2) == VKFT_OK);
  CHECK(vkft_file_write_atomic(TMP "/rand/pytorch_model.bin", "not copied", 10) == VKFT_OK);
  vkft_mkdirs(TMP "/rand/original");

  vkft_quantize_stats stats;
  vkft_quantize_desc desc = {.model_dir = dir,
                             .out_dir = TMP "/rand-nf4",
                             .type = VKFT_BNB4_NF4,
                             .blocksize = 128,
                             .double_quant = 1};
  CHECKF(vkft_quantize_model(&desc, &stats, NULL, NULL) == VKFT_OK, "%s", vkft_error_message());
  check_folder(dir, desc.out_dir, VKFT_BNB4_NF4, 128, 1);
  check_safetensors_order(TMP "/rand-nf4/model-00001-of-00002.safetensors");
  CHECK(vkft_file_exists(TMP "/rand-nf4/model-00002-of-00002.safetensors"));
  CHECK(vkft_file_exists(TMP "/rand-nf4/tokenizer_config.json"));
  CHECK(!vkft_file_exists(TMP "/rand-nf4/pytorch_model.bin") &&
        !vkft_file_exists(TMP "/rand-nf4/model.safetensors"));
  /* the index: every tensor of both shards, total_size their bytes */
  cJSON *written = vkft_json_read_file(TMP "/rand-nf4/model.safetensors.index.json");
  vkft_st_set *out;
  CHECK(vkft_st_open(desc.out_dir, &out) == VKFT_OK);
  uint64_t total = 0;
  for (int i = 0; i < vkft_st_count(out); i++) total += vkft_st_at(out, i)->size;
  cJSON *wm = cJSON_GetObjectItem(written, "weight_map");
  cJSON *ts = cJSON_GetObjectItem(cJSON_GetObjectItem(written, "metadata"), "total_size");
  CHECK(cJSON_GetArraySize(wm) == vkft_st_count(out) && ts && ts->valuedouble == (double)total);
  vkft_st_close(out);
  cJSON_Delete(written);
  vkft_quant_info info;
  CHECK(vkft_quant_inspect(desc.out_dir, &info) == VKFT_OK &&
        !strcmp(info.compute_dtype, "bfloat16"));
}

int main(void) {
  vkft_remove_tree(TMP);
  CHECK(vkft_mkdirs(TMP) == VKFT_OK);
  quantize_stories();
  quantize_sharded_random();
  vkft_remove_tree(TMP);
  return check_summary();
}
