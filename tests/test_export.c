/* vkft export on small random models (the C reference backend, no device):
 *   - a merged Hugging Face folder gives the logits of base + adapter (plain LoRA, rsLoRA,
 *     modules_to_save), for Llama (q/k biases), Qwen2 and Qwen3 shapes; sharded output cut and
 *     indexed as transformers does;
 *   - a GGUF model holds llama.cpp's names, the q/k rows of Llama permuted (checked against the
 *     permutation written out by hand), every other weight bit-identical to the merged fp32,
 *     and the hyperparameters; a Q4_K_M export of a 16-layer model picks Q6_K for attn_v and
 *     ffn_down on exactly the layers llama-quantize picks (worked out by hand below), and its
 *     blocks dequantize to within Q4_K's error of the weights;
 *   - a GGUF LoRA adapter holds A and B in llama.cpp's shapes with rsLoRA's alpha rescaled;
 *   - what cannot be exported fails with one message.
 * With --write-random DIR ARCH TOKENIZER_DIR it only writes a random model of that
 * architecture sized for the tokenizer, with the tokenizer (tests/export.sh uses it to check
 * tokenizers in llama.cpp); ARCH may instead be a config.json file of the shape wanted. Runs in
 * about 2 s. */
#include "check.h"

#include "vkft/error.h"
#include "vkft/export.h"
#include "vkft/gguf.h"
#include "vkft/model.h"
#include "vkft/ops.h"
#include "vkft/platform.h"
#include "vkft/safetensors.h"
#include "vkft/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TMP "test_export.tmp"
#define STORIES VKFT_SOURCE_DIR "/models/stories260K"

static uint64_t rng = 99;
static float uniform(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static char *config_json(const char *arch, int vocab, int hidden, int inter, int layers, int heads,
                         int kv, int tied, int bias) {
  static char buf[1024];
  snprintf(buf, sizeof buf,
           "{\"architectures\": [\"%s\"], \"vocab_size\": %d, \"hidden_size\": %d, "
           "\"intermediate_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
           "\"num_key_value_heads\": %d, \"head_dim\": %d, \"max_position_embeddings\": 64, "
           "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"tie_word_embeddings\": %s, "
           "\"attention_bias\": %s, \"bos_token_id\": 1, \"eos_token_id\": 2, "
           "\"torch_dtype\": \"float32\"}",
           arch, vocab, hidden, inter, layers, heads, kv, hidden / heads, tied ? "true" : "false",
           bias ? "true" : "false");
  return buf;
}

static void copy_tokenizer(const char *from, const char *to) {
  static const char *const files[] = {"tokenizer.json", "tokenizer_config.json"};
  for (int i = 0; i < 2; i++) {
    char a[1024], b[1024], *data;
    size_t n;
    snprintf(a, sizeof a, "%s/%s", from, files[i]);
    snprintf(b, sizeof b, "%s/%s", to, files[i]);
    if (vkft_file_exists(a) && vkft_file_read(a, &data, &n) == VKFT_OK) {
      CHECK(vkft_file_write_atomic(b, data, n) == VKFT_OK);
      free(data);
    }
  }
}

/* A PEFT adapter with random A and B on every projection (B is non-zero: the merge must
 * matter), optionally rsLoRA and a trained copy of the embedding (modules_to_save). */
static void write_adapter(const char *dir, const vkft_model_config *c, int r, double alpha,
                          int rslora, int save_embed) {
  vkft_mkdirs(dir);
  vkft_st_writer *w;
  CHECK(vkft_st_writer_create(&w) == VKFT_OK);
  float *blobs[512];
  int nb = 0;
  char names[512][160];
  for (int l = 0; l < c->num_layers; l++) {
    for (int p = 0; p < VKFT_PROJ_COUNT; p++) {
      int64_t out, in;
      vkft_model_proj_shape(c, p, &out, &in);
      for (int ab = 0; ab < 2; ab++) {
        int64_t shape[2] = {ab ? out : r, ab ? r : in};
        float *x = blobs[nb] = malloc((size_t)(shape[0] * shape[1]) * sizeof *x);
        for (int64_t i = 0; i < shape[0] * shape[1]; i++) x[i] = 0.3f * uniform();
        snprintf(names[nb], sizeof names[nb], "base_model.model.model.layers.%d.%s.lora_%s.weight",
                 l, vkft_proj_path(p), ab ? "B" : "A");
        CHECK(vkft_st_writer_add(w, names[nb], VKFT_F32, 2, shape, x) == VKFT_OK);
        nb++;
      }
    }
  }
  if (save_embed) { /* one row more than the base: as after tokens.add */
    int64_t shape[2] = {c->vocab_size + 1, c->hidden_size};
    float *x = blobs[nb] = malloc((size_t)(shape[0] * shape[1]) * sizeof *x);
    for (int64_t i = 0; i < shape[0] * shape[1]; i++) x[i] = 0.5f * uniform();
    snprintf(names[nb], sizeof names[nb], "base_model.model.model.embed_tokens.weight");
    CHECK(vkft_st_writer_add(w, names[nb], VKFT_F32, 2, shape, x) == VKFT_OK);
    nb++;
  }
  char path[1024], json[1024];
  snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
  CHECK(vkft_st_writer_save(w, path) == VKFT_OK);
  vkft_st_writer_free(w);
  for (int i = 0; i < nb; i++) free(blobs[i]);
  snprintf(json, sizeof json,
           "{\"peft_type\": \"LORA\", \"r\": %d, \"lora_alpha\": %g, \"use_rslora\": %s, "
           "\"target_modules\": [\"q_proj\", \"k_proj\", \"v_proj\", \"o_proj\", \"gate_proj\", "
           "\"up_proj\", \"down_proj\"], \"modules_to_save\": %s}",
           r, alpha, rslora ? "true" : "false", save_embed ? "[\"embed_tokens\"]" : "null");
  snprintf(path, sizeof path, "%s/adapter_config.json", dir);
  CHECK(vkft_file_write_atomic(path, json, strlen(json)) == VKFT_OK);
}

/* logits (T, V) of a fixed token sequence, on the reference backend */
static float *logits_of(vkft_backend *be, const char *model, const char *adapter, int64_t T,
                        int64_t *V) {
  vkft_model_desc desc = {.dir = model, .max_tokens = T, .micro_batches = 1};
  vkft_adapter_info info;
  if (adapter) {
    if (vkft_adapter_read_config(adapter, &info) != VKFT_OK) return NULL;
    desc.training = 1;
    desc.lora_r = info.r;
    desc.lora_scale = vkft_adapter_scale(&info);
    desc.lora_targets = info.targets;
    desc.modules_to_save = info.modules_to_save;
    char st[1024];
    snprintf(st, sizeof st, "%s/adapter_model.safetensors", adapter);
    vkft_st_set *set;
    if (vkft_st_open(st, &set) != VKFT_OK) return NULL;
    const vkft_st_tensor *e = vkft_st_find(set, "base_model.model.model.embed_tokens.weight");
    if (e) desc.vocab_size = e->shape[0];
    vkft_st_close(set);
  }
  vkft_model *m;
  if (vkft_model_load(be, &desc, &m) != VKFT_OK) return NULL;
  if (adapter && vkft_model_apply_adapter(m, adapter) != VKFT_OK) {
    vkft_model_free(m);
    return NULL;
  }
  *V = vkft_model_get_config(m)->vocab_size;
  int32_t ids[16], labels[16], pos[16], seq[16];
  for (int t = 0; t < T; t++) ids[t] = (t * 7 + 3) % 30, labels[t] = -100, pos[t] = t, seq[t] = 0;
  vkft_model_batch b = {T, ids, labels, pos, seq};
  float *out = malloc((size_t)(T * *V) * sizeof *out);
  if (vkft_model_set_batch(m, 0, &b) != VKFT_OK || vkft_model_logits(m, 0, out) != VKFT_OK) {
    free(out);
    out = NULL;
  }
  vkft_model_free(m);
  return out;
}

static int export_to(vkft_export_target target, const char *model, const char *adapter,
                     const char *out, const char *type, uint64_t shard) {
  vkft_export_desc d = {.target = target,
                        .model_dir = model,
                        .adapter_dir = adapter,
                        .out = out,
                        .type = type,
                        .max_shard_bytes = shard,
                        .threads = 2,
                        .no_modelfile = 1};
  vkft_export_report r;
  return vkft_export(&d, &r);
}

/* merged HF folder == base + adapter, for three architectures and three kinds of adapter */
static void test_merge_logits(vkft_backend *be) {
  static const struct {
    const char *arch;
    int tied, bias, rslora, save_embed;
  } cases[] = {{"LlamaForCausalLM", 0, 1, 0, 0},
               {"Qwen2ForCausalLM", 0, 1, 1, 0},
               {"Qwen3ForCausalLM", 1, 0, 0, 1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char base[256], adapter[256], merged[256];
    snprintf(base, sizeof base, TMP "/base%zu", c);
    snprintf(adapter, sizeof adapter, TMP "/adapter%zu", c);
    snprintf(merged, sizeof merged, TMP "/merged%zu", c);
    const char *cfg_text =
        config_json(cases[c].arch, 32, 32, 48, 2, 4, 2, cases[c].tied, cases[c].bias);
    CHECK(vkft_model_write_random(base, cfg_text, VKFT_BF16, 7 + c) == VKFT_OK);
    vkft_model_config cfg;
    CHECK(vkft_model_config_load(base, &cfg) == VKFT_OK);
    write_adapter(adapter, &cfg, 4, 8, cases[c].rslora, cases[c].save_embed);
    /* a 2 kB shard limit: several shards and an index */
    CHECKF(export_to(VKFT_EXPORT_HF, base, adapter, merged, "f32", 2000) == VKFT_OK, "%s",
           vkft_error_message());
    int64_t V1 = 0, V2 = 0, T = 12;
    float *want = logits_of(be, base, adapter, T, &V1);
    float *got = logits_of(be, merged, NULL, T, &V2);
    CHECKF(want && got && V1 == V2, "%s: %s", cases[c].arch, vkft_error_message());
    double diff = 0, scale = 0;
    for (int64_t i = 0; want && got && V1 == V2 && i < T * V1; i++) {
      diff = fmax(diff, fabs((double)want[i] - got[i]));
      scale = fmax(scale, fabs((double)want[i]));
    }
    /* both paths are fp32 with the same inputs; they differ by summation order only: x(W+sBA)
     * against xW + s(xA)B. Each logit is a sum over a few hundred products through 2 layers;
     * fp32 rounding of that is ~1e-7 relative per term, so 1e-5 of the largest logit is
     * generous yet far below what a wrong merge (a missing or permuted B A) gives (O(1)). */
    printf("%s%s%s: merged HF logits vs base + adapter: max |diff| %.3g (max |logit| %.3g)\n",
           cases[c].arch, cases[c].rslora ? " rsLoRA" : "", cases[c].save_embed ? " +embed" : "",
           diff, scale);
    CHECKF(diff <= 1e-5 * scale, "%s: merged logits differ by %g", cases[c].arch, diff);
    free(want), free(got);
    if (c == 0) {
      /* 2 kB shards, in state-dict order: every 2-D weight (>= 2048 bytes in f32) is above the
       * limit and gets a shard of its own as it comes (16 of them: embedding, 7 per layer,
       * head), the 11 vectors (3 biases and 2 norms per layer, the final norm) share the
       * shard still open at the end: 17 shards */
      char path[512];
      snprintf(path, sizeof path, "%s/model-00017-of-00017.safetensors", merged);
      vkft_st_set *last = NULL, *set = NULL;
      CHECKF(vkft_st_open(path, &last) == VKFT_OK, "%s", vkft_error_message());
      CHECK(last && vkft_st_count(last) == 11 && vkft_st_find(last, "model.norm.weight"));
      snprintf(path, sizeof path, "%s/model-00016-of-00017.safetensors", merged);
      CHECK(vkft_st_open(path, &set) == VKFT_OK && vkft_st_count(set) == 1 &&
            vkft_st_find(set, "lm_head.weight"));
      vkft_st_close(last), vkft_st_close(set);
      CHECK(vkft_st_open(merged, &set) == VKFT_OK && vkft_st_count(set) == 27);
      vkft_st_close(set);
    }
  }
}

/* the q/k permutation written out by hand for D = 8: GGUF row order within a head is
 * HF rows 0, 4, 1, 5, 2, 6, 3, 7 (pairs (i, i + D/2) become adjacent) */
static const int hand_perm8[8] = {0, 4, 1, 5, 2, 6, 3, 7};

static void test_gguf_llama(void) {
  const char *base = TMP "/base0", *adapter = TMP "/adapter0", *out = TMP "/l.gguf";
  copy_tokenizer(STORIES, base); /* vocabulary of 32 < 512: the export must refuse */
  CHECK(export_to(VKFT_EXPORT_GGUF, base, adapter, out, "f32", 0) != VKFT_OK);
  CHECKF(vkft_error_code() == VKFT_ERR_INPUT &&
             strstr(vkft_error_message(), "outside the model's 32 embedding rows"),
         "%s", vkft_error_message());
  /* a model with the stories tokenizer's 512 tokens, D = 8 */
  const char *b2 = TMP "/llama512";
  CHECK(vkft_model_write_random(b2, config_json("LlamaForCausalLM", 512, 32, 48, 2, 4, 2, 0, 1),
                                VKFT_F32, 3) == VKFT_OK);
  copy_tokenizer(STORIES, b2);
  CHECKF(export_to(VKFT_EXPORT_GGUF, b2, NULL, out, "f32", 0) == VKFT_OK, "%s",
         vkft_error_message());
  vkft_gguf *g = NULL;
  vkft_st_set *st = NULL;
  CHECK(vkft_gguf_open(out, &g) == VKFT_OK && vkft_st_open(b2, &st) == VKFT_OK);
  if (!g || !st) return;
  const char *s;
  uint64_t len;
  int64_t v;
  CHECK(vkft_gguf_get_str(g, "general.architecture", &s, &len) == VKFT_OK && len == 5 &&
        !memcmp(s, "llama", 5));
  CHECK(!strcmp(vkft_gguf_kv_key(g, 0), "general.architecture"));
  CHECK(vkft_gguf_get_int(g, "llama.block_count", &v) == VKFT_OK && v == 2);
  CHECK(vkft_gguf_get_int(g, "llama.attention.head_count_kv", &v) == VKFT_OK && v == 2);
  CHECK(vkft_gguf_get_int(g, "llama.rope.dimension_count", &v) == VKFT_OK && v == 8);
  CHECK(vkft_gguf_get_int(g, "general.file_type", &v) == VKFT_OK && v == 0);
  CHECK(vkft_gguf_get_str(g, "tokenizer.ggml.model", &s, &len) == VKFT_OK && len == 5);
  CHECK(vkft_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &v) == VKFT_OK && v == 1);
  CHECK(vkft_gguf_get_int(g, "tokenizer.ggml.add_bos_token", &v) == VKFT_OK && v == 1);
  vkft_gguf_value tokens;
  CHECK(vkft_gguf_get_array(g, "tokenizer.ggml.tokens", &tokens) == VKFT_OK && tokens.count == 512);
  static const struct {
    const char *hf, *gguf;
    int perm;
  } names[] = {{"model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", 1},
               {"model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight", 1},
               {"model.layers.0.self_attn.q_proj.bias", "blk.0.attn_q.bias", 2},
               {"model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight", 0},
               {"model.layers.0.self_attn.v_proj.bias", "blk.0.attn_v.bias", 0},
               {"model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight", 0},
               {"model.layers.1.post_attention_layernorm.weight", "blk.1.ffn_norm.weight", 0},
               {"model.embed_tokens.weight", "token_embd.weight", 0},
               {"lm_head.weight", "output.weight", 0},
               {"model.norm.weight", "output_norm.weight", 0}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const vkft_st_tensor *h = vkft_st_find(st, names[i].hf);
    const vkft_gguf_tensor *t = vkft_gguf_find_tensor(g, names[i].gguf);
    CHECKF(h && t, "%s / %s", names[i].hf, names[i].gguf);
    if (!h || !t) continue;
    int64_t rows = h->rank == 2 ? h->shape[0] : 1, cols = h->rank == 2 ? h->shape[1] : h->shape[0];
    CHECK(t->type == VKFT_GGML_F32 && t->ne[0] == cols && t->ne[1] == rows && t->n_dims == h->rank);
    const float *a = (const float *)(const void *)h->data,
                *b = (const float *)(const void *)t->data;
    int bad = 0;
    for (int64_t r = 0; r < rows; r++)
      for (int64_t j = 0; j < cols; j++) {
        int64_t sr = r, sj = j; /* the HF element this GGUF element comes from */
        if (names[i].perm == 1) sr = r / 8 * 8 + hand_perm8[r % 8];
        if (names[i].perm == 2) sj = j / 8 * 8 + hand_perm8[j % 8];
        bad += b[r * cols + j] != a[sr * cols + sj];
      }
    CHECKF(!bad, "%s: %d values not where llama.cpp expects them", names[i].gguf, bad);
  }
  vkft_gguf_close(g);
  vkft_st_close(st);
}

/* Q4_K_M on 16 layers with rows of 256: llama-quantize visits tensors sorted by name (layers
 * 0, 1, 10, 11, 12, 13, 14, 15, 2, ..., 9) and gives attn_v / ffn_down Q6_K at visit indices
 * i < 2, i >= 14 or (i - 2) % 3 == 2, i.e. i in {0, 1, 4, 7, 10, 13, 14, 15}: layers
 * 0, 1, 12, 15, 4, 7, 8, 9. */
static void test_q4_k_m_mix(void) {
  static const int more_bits[16] = {1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1};
  const char *base = TMP "/deep", *out = TMP "/deep.gguf";
  CHECK(vkft_model_write_random(base, config_json("LlamaForCausalLM", 32, 256, 256, 16, 4, 1, 0, 0),
                                VKFT_BF16, 5) == VKFT_OK);
  copy_tokenizer(check_path("tokenizers/qwen3"), base); /* byte-level: merges, pre */
  /* the Qwen3 tokenizer has 151669 tokens: a 32-row model cannot hold them */
  CHECK(export_to(VKFT_EXPORT_GGUF, base, NULL, out, "q4_k_m", 0) != VKFT_OK);
  copy_tokenizer(STORIES, base);
  vkft_model_write_random(base, config_json("LlamaForCausalLM", 512, 256, 256, 16, 4, 1, 0, 0),
                          VKFT_BF16, 5);
  double t0 = vkft_time_s();
  CHECKF(export_to(VKFT_EXPORT_GGUF, base, NULL, out, "q4_k_m", 0) == VKFT_OK, "%s",
         vkft_error_message());
  printf("q4_k_m export of 6.0M weights: %.2f s\n", vkft_time_s() - t0);
  vkft_gguf *g = NULL;
  vkft_st_set *st = NULL;
  CHECK(vkft_gguf_open(out, &g) == VKFT_OK && vkft_st_open(base, &st) == VKFT_OK);
  if (!g || !st) return;
  int wrong = 0;
  for (int l = 0; l < 16; l++) {
    char name[64];
    vkft_ggml_type want = more_bits[l] ? VKFT_GGML_Q6_K : VKFT_GGML_Q4_K;
    snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
    wrong += vkft_gguf_find_tensor(g, name)->type != want;
    snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
    wrong += vkft_gguf_find_tensor(g, name)->type != want;
    snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
    wrong += vkft_gguf_find_tensor(g, name)->type != VKFT_GGML_Q4_K;
    snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
    wrong += vkft_gguf_find_tensor(g, name)->type != VKFT_GGML_F32;
  }
  CHECKF(!wrong, "%d tensors of the wrong type", wrong);
  CHECK(vkft_gguf_find_tensor(g, "output.weight")->type == VKFT_GGML_Q6_K);
  CHECK(vkft_gguf_find_tensor(g, "token_embd.weight")->type == VKFT_GGML_Q4_K);
  /* sorted by name, file type last */
  CHECK(!strcmp(vkft_gguf_tensor_at(g, 0)->name, "blk.0.attn_k.weight"));
  CHECK(!strcmp(vkft_gguf_kv_key(g, vkft_gguf_kv_count(g) - 1), "general.file_type"));
  int64_t v;
  CHECK(vkft_gguf_get_int(g, "general.file_type", &v) == VKFT_OK && v == 15);
  /* the blocks hold the weights: Q4_K's error is at most about one step, (max - min) / 15 of
   * a sub-block; the weights are within +-1/16 here, so 2/15/16 with room for the 6-bit
   * scales */
  const vkft_gguf_tensor *t = vkft_gguf_find_tensor(g, "blk.3.ffn_up.weight");
  const vkft_st_tensor *h = vkft_st_find(st, "model.layers.3.mlp.up_proj.weight");
  float *x = malloc(256 * 256 * sizeof *x), *y = malloc(256 * 256 * sizeof *y);
  vkft_convert_to_f32(VKFT_BF16, h->data, x, 256 * 256);
  CHECK(vkft_ggml_dequantize_row(t->type, t->data, y, 256 * 256) == VKFT_OK);
  double worst = 0;
  for (int i = 0; i < 256 * 256; i++) worst = fmax(worst, fabs((double)x[i] - y[i]));
  CHECKF(worst < 2.0 / 15 / 16 * 1.5, "Q4_K error %g", worst);
  free(x), free(y);
  vkft_gguf_close(g);
  vkft_st_close(st);
}

static void test_gguf_lora(void) {
  const char *base = TMP "/base1", *adapter = TMP "/adapter1", *out = TMP "/a.gguf";
  CHECKF(export_to(VKFT_EXPORT_GGUF_LORA, base, adapter, out, NULL, 0) == VKFT_OK, "%s",
         vkft_error_message());
  vkft_gguf *g = NULL;
  CHECK(vkft_gguf_open(out, &g) == VKFT_OK);
  if (!g) return;
  const char *s;
  uint64_t len;
  double alpha;
  CHECK(vkft_gguf_get_str(g, "general.type", &s, &len) == VKFT_OK && len == 7 &&
        !memcmp(s, "adapter", 7));
  CHECK(vkft_gguf_get_str(g, "adapter.type", &s, &len) == VKFT_OK && len == 4);
  /* rsLoRA alpha 8, r 4: llama.cpp's alpha / r must be 8 / sqrt(4) = 4, so alpha is 16 */
  CHECK(vkft_gguf_get_float(g, "adapter.lora.alpha", &alpha) == VKFT_OK && alpha == 16.0);
  const vkft_gguf_tensor *a = vkft_gguf_find_tensor(g, "blk.0.attn_q.weight.lora_a");
  const vkft_gguf_tensor *b = vkft_gguf_find_tensor(g, "blk.0.attn_q.weight.lora_b");
  /* llama.cpp: W ne [in, out]; A ne [in, r]; B ne [r, out] */
  CHECK(a && b && a->ne[0] == 32 && a->ne[1] == 4 && b->ne[0] == 4 && b->ne[1] == 32);
  CHECK(vkft_gguf_tensor_count(g) == 2 * 2 * 7);
  vkft_gguf_close(g);
  /* an adapter that saves the embedding cannot be a llama.cpp adapter */
  CHECK_ERR(export_to(VKFT_EXPORT_GGUF_LORA, TMP "/base2", TMP "/adapter2", out, NULL, 0),
            VKFT_ERR_UNSUPPORTED, "modules_to_save");
  CHECK_ERR(export_to(VKFT_EXPORT_HF, TMP "/base1", NULL, TMP "/x", "q4_0", 0), VKFT_ERR_INPUT,
            "--type q4_0");
  CHECK(export_to(VKFT_EXPORT_GGUF, TMP "/base1", NULL, out, "q3_k", 0) != VKFT_OK);
  /* an adapter of another model: shapes do not fit */
  CHECK_ERR(export_to(VKFT_EXPORT_GGUF, TMP "/deep", TMP "/adapter1", out, NULL, 0), VKFT_ERR_INPUT,
            "does not fit");
}

/* --write-random DIR ARCH TOKENIZER_DIR: a one-layer random model sized for the tokenizer */
static int write_random(const char *dir, const char *arch, const char *tokenizer_dir) {
  vkft_tokenizer *tok;
  if (vkft_tokenizer_load(tokenizer_dir, &tok) != VKFT_OK) {
    fprintf(stderr, "%s\n", vkft_error_message());
    return 1;
  }
  int vocab = (int)vkft_tokenizer_vocab_size(tok);
  vkft_tokenizer_free(tok);
  char *config = NULL;
  size_t n = strlen(arch);
  /* ARCH may be a config.json of the wanted shape instead (benchmarks) */
  if (n > 5 && !strcmp(arch + n - 5, ".json") && vkft_file_read(arch, &config, NULL) != VKFT_OK) {
    fprintf(stderr, "%s\n", vkft_error_message());
    return 1;
  }
  int status = vkft_model_write_random(
      dir, config ? config : config_json(arch, vocab, 16, 32, 1, 2, 1, 1, 0), VKFT_BF16, 1);
  free(config);
  if (status != VKFT_OK) {
    fprintf(stderr, "%s\n", vkft_error_message());
    return 1;
  }
  copy_tokenizer(tokenizer_dir, dir);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && !strcmp(argv[1], "--write-random"))
    return write_random(argv[2], argv[3], argv[4]);
  vkft_remove_tree(TMP);
  vkft_mkdirs(TMP);
  vkft_backend *be;
  if (vkft_backend_ref_create(&be) != VKFT_OK) return 1;
  test_merge_logits(be);
  test_gguf_llama();
  if (check_need_data("the q4_k_m mix (a byte-level tokenizer)")) test_q4_k_m_mix();
  test_gguf_lora();
  vkft_backend_destroy(be);
  vkft_remove_tree(TMP);
  return check_summary();
}
