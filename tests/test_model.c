/* The whole model: stories260K against the PyTorch reference of shared/data (loss, logits,
 * every gradient, one AdamW step), and the Vulkan backend against the C reference backend on
 * tiny random models of each architecture (Llama with llama3 RoPE scaling, Mistral, Qwen2
 * with q/k/v biases, Qwen3 with q/k norms), in full and LoRA fine-tuning. */
#include "backends.h"
#include "check.h"

#include "vkft/error.h"
#include "vkft/kernels.h"
#include "vkft/model.h"
#include "vkft/platform.h"
#include "vkft/safetensors.h"
#include "vkft/train_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORIES check_path("models/stories260K")
#define TMP "test_model.tmp"

typedef struct batch_data {
  int64_t T;
  int32_t ids[256], labels[256], pos[256], seq[256];
  int rows, row_len;
  int32_t mask[256];
} batch_data;

static int load_reference_batch(batch_data *b, double *loss, int *count) {
  char *text;
  size_t size;
  if (vkft_file_read(check_path("models/stories260K/reference/sft_step_reference.json"), &text,
                     &size) != VKFT_OK)
    return -1;
  cJSON *root = cJSON_Parse(text);
  free(text);
  cJSON *ids = cJSON_GetObjectItem(root, "input_ids"),
        *labels = cJSON_GetObjectItem(root, "labels");
  cJSON *mask = cJSON_GetObjectItem(root, "attention_mask");
  b->rows = cJSON_GetArraySize(ids);
  b->row_len = cJSON_GetArraySize(cJSON_GetArrayItem(ids, 0));
  b->T = 0;
  for (int r = 0; r < b->rows; r++)
    for (int t = 0; t < b->row_len; t++, b->T++) {
      b->ids[b->T] = cJSON_GetArrayItem(cJSON_GetArrayItem(ids, r), t)->valueint;
      b->labels[b->T] = cJSON_GetArrayItem(cJSON_GetArrayItem(labels, r), t)->valueint;
      b->mask[b->T] = cJSON_GetArrayItem(cJSON_GetArrayItem(mask, r), t)->valueint;
      b->pos[b->T] = t; /* HF's default position_ids with right padding */
      b->seq[b->T] = r;
    }
  *loss = cJSON_GetObjectItem(root, "loss")->valuedouble;
  *count = cJSON_GetObjectItem(root, "n_loss_tokens")->valueint;
  cJSON_Delete(root);
  return 0;
}

static double rel_l2(const float *a, const float *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)a[i] - b[i];
    num += d * d;
    den += (double)b[i] * b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Any tensor's values in fp32 (widened, or dequantized). */
static float *read_param(vkft_backend *be, const vkft_tensor *t) {
  float *out = malloc((size_t)t->n * sizeof *out);
  CHECKF(vkft_tensor_read_f32(be, t, out) == VKFT_OK, "%s", vkft_error_message());
  return out;
}

/* stories260K, one step as in reference/sft_step_reference.json, on one backend */
/* Tolerances against PyTorch's fp32 figures: the loss (relative), the worst gradient (relative
 * L2), the logits and the loss after one AdamW step (absolute). */
typedef struct stories_tol {
  double loss, grad, logits, step;
} stories_tol;

/* stories260K's loss, logits and gradients (and the loss after one AdamW step) against
 * PyTorch's. */
static void stories_against(vkft_backend *be, stories_tol tol, const char *label) {
  batch_data b;
  double ref_loss = 0;
  int ref_count = 1;
  CHECK(load_reference_batch(&b, &ref_loss, &ref_count) == 0);
  vkft_model *m;
  vkft_model_desc desc = {
      .dir = STORIES, .max_tokens = b.T, .micro_batches = 1, .training = 1, .full = 1};
  if (vkft_model_load(be, &desc, &m) != VKFT_OK) {
    CHECKF(0, "load: %s", vkft_error_message());
    return;
  }
  vkft_model_batch batch = {b.T, b.ids, b.labels, b.pos, b.seq};
  CHECKF(vkft_model_set_batch(m, 0, &batch) == VKFT_OK, "%s", vkft_error_message());
  CHECK(vkft_begin(be) == VKFT_OK && vkft_model_zero_grads(m) == VKFT_OK);
  CHECKF(vkft_model_forward_backward(m, 0, 1.0f / (float)ref_count, 1) == VKFT_OK, "%s",
         vkft_error_message());
  CHECK(vkft_end(be) == VKFT_OK);
  double sum, count;
  CHECK(vkft_model_read_loss(m, 0, &sum, &count) == VKFT_OK);
  double loss = sum / count;
  printf("%s: stories260K loss %.7f (reference %.7f, relative difference %.1e), %g trained "
         "tokens\n",
         label, loss, ref_loss, fabs(loss - ref_loss) / ref_loss, count);
  CHECKF(fabs(loss - ref_loss) < tol.loss * ref_loss, "%s: loss %.8f vs %.8f", label, loss,
         ref_loss);
  CHECK(count == ref_count);

  /* every gradient against PyTorch's */
  vkft_st_set *grads;
  CHECK(vkft_st_open(check_path("models/stories260K/reference/grads.safetensors"), &grads) ==
        VKFT_OK);
  vkft_param *params;
  int n;
  vkft_model_params(m, &params, &n);
  CHECK(n == 47);
  double worst = 0;
  const char *worst_name = "";
  for (int i = 0; i < n; i++) {
    const vkft_st_tensor *ref = vkft_st_find(grads, params[i].name);
    CHECKF(ref != NULL && params[i].grad, "no reference gradient for %s", params[i].name);
    if (!ref || !params[i].grad) continue;
    float *g = read_param(be, params[i].grad);
    double e = rel_l2(g, (const float *)ref->data, params[i].grad->n);
    if (e > worst) worst = e, worst_name = params[i].name;
    free(g);
  }
  printf("%s: worst gradient relative L2 error %.2e (%s)\n", label, worst, worst_name);
  CHECKF(worst < tol.grad, "%s: gradient %s off by %.2e", label, worst_name, worst);
  vkft_st_close(grads);

  /* logits of the real (unpadded) positions */
  float *logits = malloc((size_t)b.T * 512 * sizeof *logits);
  CHECKF(vkft_model_logits(m, 0, logits) == VKFT_OK, "%s", vkft_error_message());
  vkft_st_set *lt;
  CHECK(vkft_st_open(check_path("models/stories260K/reference/logits.safetensors"), &lt) ==
        VKFT_OK);
  const float *ref_logits = (const float *)vkft_st_find(lt, "logits")->data;
  double max_diff = 0;
  for (int64_t t = 0; t < b.T; t++)
    for (int v = 0; b.mask[t] && v < 512; v++) {
      double d = fabs((double)logits[t * 512 + v] - ref_logits[t * 512 + v]);
      if (d > max_diff) max_diff = d;
    }
  printf("%s: logits max |diff| %.2e\n", label, max_diff);
  CHECKF(max_diff < tol.logits, "%s: logits differ by %.2e", label, max_diff);
  vkft_st_close(lt);
  free(logits);

  /* one torch.optim.AdamW step (lr 1e-3, wd 0.1 on all tensors), then the loss again */
  vkft_adamw_hparams hp = {
      .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1, .step = 1};
  vkft_tensor *mv = calloc((size_t)n * 2, sizeof *mv);
  CHECK(vkft_begin(be) == VKFT_OK);
  for (int i = 0; i < n; i++) {
    vkft_tensor_alloc(be, VKFT_F32, params[i].value->n, &mv[2 * i]);
    vkft_tensor_alloc(be, VKFT_F32, params[i].value->n, &mv[2 * i + 1]);
    vkft_fill(be, &mv[2 * i], 0.0, params[i].value->n);
    vkft_fill(be, &mv[2 * i + 1], 0.0, params[i].value->n);
    CHECK(vkft_adamw(be, params[i].value, params[i].grad, &mv[2 * i], &mv[2 * i + 1], NULL, &hp,
                     params[i].value->n) == VKFT_OK);
  }
  CHECK(vkft_model_forward_backward(m, 0, 1.0f / (float)ref_count, 0) == VKFT_OK);
  CHECK(vkft_end(be) == VKFT_OK);
  CHECK(vkft_model_read_loss(m, 0, &sum, &count) == VKFT_OK);
  printf("%s: loss after one AdamW step %.7f (reference 0.9084647)\n", label, sum / count);
  CHECKF(fabs(sum / count - 0.9084647297859192) < tol.step, "%s: loss after step %.7f", label,
         sum / count);
  for (int i = 0; i < 2 * n; i++) vkft_tensor_free(be, &mv[i]);
  free(mv);
  vkft_model_free(m);
}

static void stories_reference(vkft_backend *be) {
  stories_against(be, (stories_tol){1e-5, 1e-4, 2e-4, 2e-4}, vkft_backend_name(be));
}

/* Generation with the KV cache: a prompt, then one token at a time, must give the logits the
 * full forward gives at the same positions (stories260K and the Qwen3-shaped model with q/k
 * norms, on one backend). */
static void kv_cache_matches(vkft_backend *be, const char *dir) {
  enum { N = 12, PROMPT = 5 };
  vkft_model *full, *cached;
  vkft_model_desc fd = {.dir = dir, .max_tokens = N, .micro_batches = 1};
  vkft_model_desc cd = {.dir = dir, .max_tokens = N, .micro_batches = 1, .kv_cache = 1};
  if (vkft_model_load(be, &fd, &full) != VKFT_OK || vkft_model_load(be, &cd, &cached) != VKFT_OK) {
    CHECKF(0, "kv cache load: %s", vkft_error_message());
    return;
  }
  int64_t V = vkft_model_get_config(full)->vocab_size;
  int32_t ids[N], labels[N], pos[N], seq[N];
  for (int i = 0; i < N; i++)
    ids[i] = (int32_t)((i * 37 + 3) % V), labels[i] = -100, pos[i] = i, seq[i] = 0;
  float *want = malloc((size_t)(N * V) * sizeof *want), *got = malloc((size_t)V * sizeof *got);
  vkft_model_batch b = {N, ids, labels, pos, seq};
  CHECK(vkft_model_set_batch(full, 0, &b) == VKFT_OK &&
        vkft_model_logits(full, 0, want) == VKFT_OK);
  double worst = 0;
  for (int t = PROMPT - 1; t < N; t++) {
    int64_t pos0 = t == PROMPT - 1 ? 0 : t, n = t == PROMPT - 1 ? PROMPT : 1;
    CHECKF(vkft_model_decode(cached, ids + pos0, n, pos0, got) == VKFT_OK, "%s",
           vkft_error_message());
    for (int64_t v = 0; v < V; v++) {
      double d = fabs((double)got[v] - want[t * V + v]);
      if (d > worst || d != d) worst = d;
    }
  }
  printf("%s: KV-cache decode vs full forward on %s: max |logit diff| %.2e\n",
         vkft_backend_name(be), dir, worst);
  CHECKF(worst < 1e-4, "KV cache logits differ by %.2e", worst);
  free(want);
  free(got);
  vkft_model_free(full);
  vkft_model_free(cached);
}

/* ---- tiny random models of each architecture, Vulkan vs reference backend ---- */

typedef struct arch_case {
  const char *name, *config;
  int bf16; /* frozen weights stored as bf16 */
} arch_case;

static const arch_case arches[] = {
    {"llama3",
     "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 97, \"hidden_size\": 24, "
     "\"intermediate_size\": 40, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
     "\"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-5, \"rope_theta\": 500000.0, "
     "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
     "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 16}, "
     "\"tie_word_embeddings\": false}",
     1},
    {"mistral",
     "{\"architectures\": [\"MistralForCausalLM\"], \"vocab_size\": 61, \"hidden_size\": 16, "
     "\"intermediate_size\": 36, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
     "\"num_key_value_heads\": 1, \"head_dim\": 8, \"tie_word_embeddings\": false}",
     0},
    {"qwen2",
     "{\"architectures\": [\"Qwen2ForCausalLM\"], \"vocab_size\": 80, \"hidden_size\": 32, "
     "\"intermediate_size\": 44, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
     "\"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-6, \"rope_theta\": 1000000.0, "
     "\"tie_word_embeddings\": true}",
     1},
    {"qwen3",
     "{\"architectures\": [\"Qwen3ForCausalLM\"], \"vocab_size\": 70, \"hidden_size\": 16, "
     "\"intermediate_size\": 24, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
     "\"num_key_value_heads\": 2, \"head_dim\": 8, \"tie_word_embeddings\": true}",
     0},
};

static uint64_t rng_state = 12345;
static float rnd(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void make_model(const arch_case *a, const char *dir) {
  CHECKF(vkft_model_write_random(dir, a->config, a->bf16 ? VKFT_BF16 : VKFT_F32, 12345) == VKFT_OK,
         "%s: %s", a->name, vkft_error_message());
}

typedef struct run_result {
  double loss, count;
  int n;
  float *grads[512];
  int64_t sizes[512];
  char names[512][160];
} run_result;

/* Two packed rows of 3 sequences, one step of 2 micro-batches (the second shorter). */
static vkft_dtype run_quant = VKFT_F32; /* QLoRA runs: the base's 4-bit type (block 32, dq) */
static float run_noise;                 /* NEFTune's magnitude on the embedding output */

static int run_step(vkft_backend *be, const char *dir, int full, run_result *out, int checkpointing,
                    double dropout) {
  vkft_model_desc desc = {.dir = dir,
                          .max_tokens = 23,
                          .micro_batches = 2,
                          .training = 1,
                          .full = full,
                          .lora_r = 3,
                          .lora_scale = 2.0,
                          .lora_targets = 0x7f,
                          .modules_to_save = full ? 0 : VKFT_MOD_LM_HEAD,
                          .seed = 7,
                          .grad_checkpointing = checkpointing,
                          .lora_dropout = dropout,
                          .quant_dtype = run_quant,
                          .quant_block = 32,
                          .quant_double = 1};
  vkft_model *m;
  if (vkft_model_load(be, &desc, &m) != VKFT_OK) return VKFT_ERR;
  vkft_model_set_noise(m, run_noise);
  vkft_model_set_dropout_seed(m, 5);
  vkft_param *params;
  int n;
  vkft_model_params(m, &params, &n);
  /* LoRA B starts at 0 (no gradient reaches A): give it values so every path is exercised */
  rng_state = 99;
  for (int i = 0; i < n; i++)
    if (strstr(params[i].name, "lora_B")) {
      float *v = malloc((size_t)params[i].value->n * sizeof *v);
      for (int64_t k = 0; k < params[i].value->n; k++) v[k] = 0.1f * rnd();
      vkft_tensor_write(be, params[i].value, v);
      free(v);
    }
  const vkft_model_config *c = vkft_model_get_config(m);
  int32_t ids[23], labels[23], pos[23], seq[23];
  int lens[3] = {9, 6, 8}, t = 0;
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < lens[s]; i++, t++) {
      ids[t] = (int32_t)((t * 37 + 11) % c->vocab_size);
      labels[t] = i < 2 ? -100 : ids[t]; /* a masked "prompt" */
      pos[t] = i;
      seq[t] = s;
    }
  vkft_model_batch b0 = {23, ids, labels, pos, seq},
                   b1 = {15, ids + 8, labels + 8, pos + 8, seq + 8};
  b1.pos = pos + 8;
  int status = vkft_model_set_batch(m, 0, &b0) || vkft_model_set_batch(m, 1, &b1) ||
               vkft_begin(be) || vkft_model_zero_grads(m) ||
               vkft_model_forward_backward(m, 0, 0.05f, 1) ||
               vkft_model_forward_backward(m, 1, 0.05f, 1) || vkft_end(be);
  if (status) {
    vkft_model_free(m);
    return VKFT_ERR;
  }
  out->loss = out->count = 0;
  for (int s = 0; s < 2; s++) {
    double sum, count;
    vkft_model_read_loss(m, s, &sum, &count);
    out->loss += sum;
    out->count += count;
  }
  out->n = 0;
  for (int i = 0; i < n && out->n < 512; i++)
    if (params[i].grad) {
      out->grads[out->n] = read_param(be, params[i].grad);
      out->sizes[out->n] = params[i].grad->n;
      snprintf(out->names[out->n], 160, "%s", params[i].name);
      out->n++;
    }
  vkft_model_free(m);
  return VKFT_OK;
}

/* Every architecture, LoRA (with dropout) and full, with NEFTune's noise on the embeddings. */
static void backends_agree(vkft_backend *vk, vkft_backend *ref) {
  run_noise = 0.05f;
  for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++) {
    char dir[256];
    snprintf(dir, sizeof dir, TMP "/%s", arches[a].name);
    make_model(&arches[a], dir);
    for (int full = 0; full <= 1; full++) {
      static run_result rv, rr;
      int ok = run_step(vk, dir, full, &rv, 0, full ? 0.0 : 0.2) == VKFT_OK;
      CHECKF(ok, "%s vulkan: %s", arches[a].name, vkft_error_message());
      int ok2 = run_step(ref, dir, full, &rr, 0, full ? 0.0 : 0.2) == VKFT_OK;
      CHECKF(ok2, "%s reference: %s", arches[a].name, vkft_error_message());
      if (!ok || !ok2) continue;
      CHECK(rv.n == rr.n && rv.count == rr.count && rv.count > 0);
      double worst = 0;
      const char *worst_name = "";
      for (int i = 0; i < rv.n && i < rr.n; i++) {
        double e = rel_l2(rv.grads[i], rr.grads[i], rv.sizes[i]);
        if (e > worst || e != e) worst = e, worst_name = rv.names[i];
      }
      printf("%-8s %-4s loss %.6f vs %.6f (%g tokens), %d gradients, worst rel L2 %.2e (%s)\n",
             arches[a].name, full ? "full" : "lora", rv.loss / rv.count, rr.loss / rr.count,
             rv.count, rv.n, worst, worst_name);
      CHECKF(fabs(rv.loss - rr.loss) <= 1e-5 * fabs(rr.loss), "%s loss", arches[a].name);
      CHECKF(worst < 1e-4, "%s %s gradient %s off by %.2e", arches[a].name, full ? "full" : "lora",
             worst_name, worst);
      /* gradient checkpointing recomputes the same ops: the same bits */
      static run_result rc;
      CHECKF(run_step(vk, dir, full, &rc, 1, full ? 0.0 : 0.2) == VKFT_OK, "%s checkpointing: %s",
             arches[a].name, vkft_error_message());
      int same = rc.n == rv.n && rc.loss == rv.loss;
      for (int i = 0; same && i < rc.n; i++)
        same = !memcmp(rc.grads[i], rv.grads[i], (size_t)rc.sizes[i] * sizeof(float));
      CHECKF(same, "%s %s: gradient checkpointing changed the gradients", arches[a].name,
             full ? "full" : "lora");
      /* the noise is there: without it the loss moves */
      for (int i = 0; i < rc.n; i++) free(rc.grads[i]);
      run_noise = 0;
      CHECK(run_step(vk, dir, full, &rc, 0, full ? 0.0 : 0.2) == VKFT_OK);
      CHECKF(rc.loss != rv.loss, "%s %s: NEFTune's noise left the loss as it was", arches[a].name,
             full ? "full" : "lora");
      run_noise = 0.05f;
      for (int i = 0; i < rc.n; i++) free(rc.grads[i]);
      for (int i = 0; i < rv.n; i++) free(rv.grads[i]);
      for (int i = 0; i < rr.n; i++) free(rr.grads[i]);
    }
  }
  run_noise = 0;
}

/* The model's frozen weights as the backend holds them, dequantized to fp32, written as a model
 * folder of its own: what a 4-bit base computes with, in full precision. */
static void write_dequantized(vkft_backend *be, const char *src, const char *dst) {
  vkft_model_desc desc = {.dir = src,
                          .max_tokens = 4,
                          .micro_batches = 1,
                          .quant_dtype = run_quant,
                          .quant_block = 32,
                          .quant_double = 1};
  vkft_model *m;
  CHECKF(vkft_model_load(be, &desc, &m) == VKFT_OK, "%s", vkft_error_message());
  vkft_param *params;
  int n;
  vkft_model_params(m, &params, &n);
  vkft_st_writer *w;
  vkft_st_writer_create(&w);
  float *blobs[256] = {0};
  for (int i = 0; i < n && i < 256; i++) {
    blobs[i] = read_param(be, params[i].value);
    vkft_st_writer_add(w, params[i].name, VKFT_F32, params[i].rank, params[i].shape, blobs[i]);
  }
  /* what the model keeps off the device (a frozen untied embedding) as the file has it */
  vkft_st_set *st;
  CHECK(vkft_st_open(src, &st) == VKFT_OK);
  for (int i = 0; i < vkft_st_count(st); i++) {
    const vkft_st_tensor *t = vkft_st_at(st, i);
    int seen = 0;
    for (int k = 0; k < n && !seen; k++) seen = !strcmp(params[k].name, t->name);
    if (!seen) vkft_st_writer_add_tensor(w, t->name, t);
  }
  char path[512], *config;
  size_t size;
  vkft_mkdirs(dst);
  snprintf(path, sizeof path, "%s/model.safetensors", dst);
  CHECK(vkft_st_writer_save(w, path) == VKFT_OK);
  snprintf(path, sizeof path, "%s/config.json", src);
  CHECK(vkft_file_read(path, &config, &size) == VKFT_OK);
  snprintf(path, sizeof path, "%s/config.json", dst);
  CHECK(vkft_file_write_atomic(path, config, size) == VKFT_OK);
  free(config);
  for (int i = 0; i < n && i < 256; i++) free(blobs[i]);
  vkft_st_writer_free(w);
  vkft_st_close(st);
  vkft_model_free(m);
}

static double worst_grad(const run_result *a, const run_result *b, const char **name) {
  double worst = 0;
  *name = "";
  for (int i = 0; i < a->n && i < b->n; i++) {
    double e = rel_l2(a->grads[i], b->grads[i], a->sizes[i]);
    if (e > worst || e != e) worst = e, *name = a->names[i];
  }
  return worst;
}

/* QLoRA: a 4-bit base (NF4 and FP4, block 32 so blocks span rows of these small weights, scales
 * double-quantized) gives on both backends the loss and LoRA gradients of the same model with
 * its dequantized weights in fp32 — the dequantization is exact, only the storage differs. */
static void qlora_agrees(vkft_backend *vk, vkft_backend *ref) {
  static const vkft_dtype types[2] = {VKFT_NF4, VKFT_FP4};
  for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a += 2) {
    for (int q = 0; q < 2; q++) {
      char dir[256], deq[256];
      snprintf(dir, sizeof dir, TMP "/%s", arches[a].name);
      snprintf(deq, sizeof deq, TMP "/%s-%s-f32", arches[a].name, vkft_dtype_name(types[q]));
      make_model(&arches[a], dir);
      run_quant = types[q];
      write_dequantized(ref, dir, deq);
      static run_result rq, rqr, rf;
      int ok = run_step(vk, dir, 0, &rq, 0, 0.0) == VKFT_OK &&
               run_step(ref, dir, 0, &rqr, 0, 0.0) == VKFT_OK;
      run_quant = VKFT_F32;
      ok = ok && run_step(vk, deq, 0, &rf, 0, 0.0) == VKFT_OK;
      CHECKF(ok, "%s %s: %s", arches[a].name, vkft_dtype_name(types[q]), vkft_error_message());
      if (!ok) continue;
      const char *n1, *n2;
      double backends = worst_grad(&rq, &rqr, &n1), vs_f32 = worst_grad(&rq, &rf, &n2);
      printf("%-8s %s   loss %.7f (vulkan) %.7f (reference) %.7f (dequantized fp32), worst rel "
             "L2 %.2e between backends (%s), %.2e vs fp32 (%s)\n",
             arches[a].name, vkft_dtype_name(types[q]), rq.loss / rq.count, rqr.loss / rqr.count,
             rf.loss / rf.count, backends, n1, vs_f32, n2);
      CHECK(rq.n == rqr.n && rq.n == rf.n && rq.count == rf.count);
      CHECKF(fabs(rq.loss - rqr.loss) <= 1e-5 * fabs(rqr.loss), "%s qlora loss", arches[a].name);
      CHECKF(fabs(rq.loss - rf.loss) <= 1e-5 * fabs(rf.loss), "%s qlora vs fp32 loss",
             arches[a].name);
      CHECKF(backends < 1e-4 && vs_f32 < 1e-4, "%s qlora gradients %.2e %.2e", arches[a].name,
             backends, vs_f32);
      for (int i = 0; i < rq.n; i++) free(rq.grads[i]);
      for (int i = 0; i < rqr.n; i++) free(rqr.grads[i]);
      for (int i = 0; i < rf.n; i++) free(rf.grads[i]);
    }
  }
}

int main(void) {
  vkft_device *dev;
  vkft_backend *vk, *ref;
  if (!open_backends("test_model", &dev, &vk, &ref)) return 1;
  vkft_remove_tree(TMP);
  vkft_mkdirs(TMP);
  if (check_need_data("test_model: stories260K against PyTorch")) {
    stories_reference(ref);
    stories_reference(vk);
    kv_cache_matches(vk, STORIES);
    kv_cache_matches(ref, STORIES);
  }
  backends_agree(vk, ref);
  qlora_agrees(vk, ref);
  kv_cache_matches(vk, TMP "/qwen3");
  /* the kernels a GPU would take (tiled matmuls, tiled attention), on this device: the whole
   * model against PyTorch and against the reference backend */
  vkft_setenv("VKFT_MATMUL_CHOICE", "gpu");
  vkft_backend *gpu = NULL;
  CHECKF(vkft_backend_vk_create(dev, &gpu) == VKFT_OK, "%s", vkft_error_message());
  vkft_setenv("VKFT_MATMUL_CHOICE", NULL);
  if (gpu) {
    int count, tiled = 0;
    const vkft_kernel_variant *v = vkft_kernel_variants(gpu, &count);
    for (int i = 0; i < count; i++)
      if (v[i].used) {
        printf("GPU choice: %s\n", v[i].name);
        tiled += strstr(v[i].name, "tiled") != NULL;
      }
    CHECK(tiled >= 2); /* a tiled matmul and the tiled attention at least */
    if (check_need_data("test_model: stories260K against PyTorch, GPU kernels")) {
      stories_reference(gpu);
      kv_cache_matches(gpu, STORIES);
    }
    backends_agree(gpu, ref);
    qlora_agrees(gpu, ref);
    vkft_backend_destroy(gpu);
  }
  /* the cooperative-matrix kernels (fp16 inputs, fp32 sums), emulated where the device has no
   * cooperative matrices: the whole model against PyTorch's fp32 figures, with the difference
   * fp16 makes stated */
  vkft_setenv("VKFT_MATMUL", "coopmat_emu");
  vkft_setenv("VKFT_ATTENTION", "coopmat_emu");
  vkft_backend *half = NULL;
  int made = vkft_backend_vk_create(dev, &half) == VKFT_OK;
  vkft_setenv("VKFT_MATMUL", NULL);
  vkft_setenv("VKFT_ATTENTION", NULL);
  if (made && check_need_data("test_model: stories260K against PyTorch, fp16 kernels")) {
    int count, on = 0, available = 0;
    const vkft_kernel_variant *v = vkft_kernel_variants(half, &count);
    for (int i = 0; i < count; i++)
      if (strstr(v[i].name, "coopmat_emu")) on += v[i].used, available += v[i].available;
    /* fp16's unit is 2^-11: the loss within 2^-10 of fp32's (measured 1.2e-4), the gradients
     * within 2^-7 (2.6e-3), logits of magnitude ~10 within 2^-5 (1.3e-2) */
    if (on == 2)
      stories_against(half, (stories_tol){1.0 / 1024, 1.0 / 128, 1.0 / 32, 1.0 / 1024},
                      "fp16 (coopmat_emu)");
    CHECK(on == available); /* forced, so used wherever they can run */
    if (available < 2) printf("fp16 (coopmat_emu): not available on this device, skipped\n");
  }
  if (half) vkft_backend_destroy(half);
  CHECKF(vkft_device_validation_errors(dev) == 0, "%d validation messages",
         vkft_device_validation_errors(dev));
  vkft_backend_destroy(vk);
  vkft_backend_destroy(ref);
  vkft_device_destroy(dev);
  vkft_remove_tree(TMP);
  return check_summary();
}
