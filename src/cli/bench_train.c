/* `vkft bench train [--json] [--steps N] [--no-baseline] [--quant nf4|fp4] [--objective
 * dpo|orpo]`: training
 * throughput of a stated Llama-shaped model (random bf16 weights, written to a temporary folder)
 * for LoRA and for full fine-tuning — and with --quant for QLoRA (the same LoRA on the base
 * quantized to 4 bits) beside the bf16 LoRA: tokens/s and achieved GFLOP/s of whole optimizer
 * steps (forward, loss, backward, gradient norm, AdamW), on the device and, as the baseline,
 * on the C reference backend. --objective adds a preference step on the same tokens (the two
 * rows are one pair, each row's second half its completion; DPO with the in-step reference),
 * and its cost relative to the SFT LoRA step. */
#include "commands.h"

#include "vkft/error.h"
#include "vkft/model.h"
#include "vkft/platform.h"
#include "vkft/train_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_CONFIG                                                                               \
  "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 8192, \"hidden_size\": 256, "       \
  "\"intermediate_size\": 688, \"num_hidden_layers\": 4, \"num_attention_heads\": 8, "             \
  "\"num_key_value_heads\": 4, \"max_position_embeddings\": 1024, \"rms_norm_eps\": 1e-5, "        \
  "\"rope_theta\": 10000.0, \"tie_word_embeddings\": false}"
enum { ROWS = 2, ROW_LEN = 256, LORA_R = 16 };

/* Model FLOPs of one step: matmuls 2 flops per weight per token forward, as much again for the
 * input gradients, again for weight gradients (full only); LoRA adapters likewise; causal
 * attention 4*H*D per (query, key) pair forward and 2.5x that backward. */
static double step_flops(const vkft_model_config *c, int full, int64_t tokens, int64_t row_len) {
  double C = (double)c->hidden_size, F = (double)c->intermediate_size, V = (double)c->vocab_size;
  double QD = (double)(c->num_heads * c->head_dim), KD = (double)(c->num_kv_heads * c->head_dim);
  double per_layer = C * QD + 2 * C * KD + QD * C + 3 * C * F;
  double weights = (double)c->num_layers * per_layer + V * C;
  double flops = (full ? 6.0 : 4.0) * weights * (double)tokens;
  if (!full) {
    double ins_outs = (C + QD) + 2 * (C + KD) + (QD + C) + 2 * (C + F) + (F + C);
    flops += 6.0 * LORA_R * ins_outs * (double)c->num_layers * (double)tokens;
  }
  double pairs = (double)tokens * ((double)row_len + 1) / 2.0;
  flops += 3.5 * 4.0 * QD * pairs * (double)c->num_layers;
  return flops;
}

/* --profile: the last step's GPU time per shader, largest first */
static void print_profile(vkft_device *dev) {
  const vkft_profile_entry *e;
  int n;
  vkft_stream_profile(dev, &e, &n);
  const char *labels[64];
  double ms[64];
  int count[64], k = 0;
  for (int i = 0; i < n; i++) {
    int j = 0;
    while (j < k && strcmp(labels[j], e[i].label)) j++;
    if (j == k && k < 64) labels[k] = e[i].label, ms[k] = 0, count[k] = 0, k++;
    if (j < k) ms[j] += e[i].ms, count[j]++;
  }
  for (int round = 0; round < k && round < 12; round++) {
    int best = -1;
    for (int j = 0; j < k; j++)
      if (ms[j] >= 0 && (best < 0 || ms[j] > ms[best])) best = j;
    printf("    %-22s %5d dispatches %9.2f ms\n", labels[best], count[best], ms[best]);
    ms[best] = -1;
  }
}

/* objective: NULL for SFT, else a preference objective over ROWS / 2 pairs */
static int run(vkft_backend *be, const char *dir, int full, vkft_dtype quant,
               const vkft_pref_objective *objective, int steps, double *ms, double *flops) {
  vkft_model_desc desc = {.dir = dir,
                          .max_tokens = ROWS * ROW_LEN,
                          .micro_batches = 1,
                          .training = 1,
                          .full = full,
                          .lora_r = LORA_R,
                          .lora_scale = 2.0,
                          .lora_targets = 0x7f,
                          .seed = 1,
                          .quant_dtype = quant,
                          .quant_double = 1,
                          .pref_pairs = objective ? ROWS / 2 : 0};
  vkft_model *m;
  if (vkft_model_load(be, &desc, &m) != VKFT_OK) return VKFT_ERR;
  const vkft_model_config *c = vkft_model_get_config(m);
  int64_t T = ROWS * ROW_LEN;
  int32_t *ids = malloc((size_t)T * 5 * sizeof *ids);
  int32_t *labels = ids + T, *pos = ids + 2 * T, *seq = ids + 3 * T, *tok = ids + 4 * T;
  int32_t ranges[2 * ROWS];
  const int orpo = objective && objective->kind == VKFT_PREF_LOSS_ORPO;
  int64_t nll = 0;
  for (int64_t t = 0; t < T; t++) {
    int64_t row = t / ROW_LEN, k = t % ROW_LEN;
    int completion = k + 1 >= ROW_LEN / 2, last = k + 1 == ROW_LEN, chosen = row < ROWS / 2;
    ids[t] = labels[t] = (int32_t)((t * 2654435761u) % (uint64_t)c->vocab_size);
    if (objective && !completion && !(orpo && chosen)) labels[t] = -100;
    pos[t] = (int32_t)k;
    seq[t] = (int32_t)row;
    tok[t] = last             ? -1
             : completion     ? (int32_t)(2 * row + 1)
             : orpo && chosen ? (int32_t)(2 * row)
                              : -1;
    nll += orpo && chosen && tok[t] >= 0;
  }
  for (int r = 0; r < ROWS; r++) ranges[2 * r] = r * ROW_LEN, ranges[2 * r + 1] = (r + 1) * ROW_LEN;
  vkft_model_batch b = {T, ids, labels, pos, seq};
  vkft_pref_objective o = objective ? *objective : (vkft_pref_objective){0};
  o.pair_scale = 1.0f / (ROWS / 2);
  o.nll_scale = nll ? 1.0f / (float)nll : 0.0f;
  vkft_param *params;
  int n;
  vkft_model_params(m, &params, &n);
  vkft_tensor *state = calloc((size_t)n * 2, sizeof *state),
              *grads = calloc((size_t)n, sizeof *grads);
  int ng = 0, status = vkft_model_set_batch(m, 0, &b);
  vkft_model_pref_batch pb = {ROWS / 2, tok, ranges, NULL};
  if (status == VKFT_OK && objective) status = vkft_model_set_pref(m, 0, &pb);
  for (int i = 0; status == VKFT_OK && i < n; i++)
    if (params[i].trainable) {
      grads[ng++] = *params[i].grad;
      status = vkft_tensor_alloc(be, VKFT_F32, params[i].value->n, &state[2 * i]) ||
               vkft_tensor_alloc(be, VKFT_F32, params[i].value->n, &state[2 * i + 1]);
    }
  vkft_tensor slots = {0}, norm = {0};
  if (status == VKFT_OK)
    status = vkft_tensor_alloc(be, VKFT_F32, vkft_grad_norm_slots(grads, ng), &slots) ||
             vkft_tensor_alloc(be, VKFT_F32, 2, &norm);
  double total = 0;
  for (int s = -1; s < steps && status == VKFT_OK; s++) { /* s == -1: warm-up */
    double t0 = vkft_time_s();
    vkft_adamw_hparams hp = {.lr = 1e-4, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .step = s + 2};
    status = vkft_begin(be) || vkft_model_zero_grads(m) ||
             (objective ? vkft_model_pref_forward_backward(m, 0, &o, 1)
                        : vkft_model_forward_backward(m, 0, 1.0f / (float)T, 1)) ||
             vkft_grad_norm(be, grads, ng, &slots, &norm, 1.0f);
    vkft_tensor clip = vkft_tensor_view(&norm, 1, 1);
    for (int i = 0; status == VKFT_OK && i < n; i++)
      if (params[i].trainable)
        status = vkft_adamw(be, params[i].value, params[i].grad, &state[2 * i], &state[2 * i + 1],
                            &clip, &hp, params[i].value->n);
    if (vkft_end(be) != VKFT_OK) status = VKFT_ERR;
    if (s >= 0) total += vkft_time_s() - t0;
  }
  *ms = steps > 0 ? total / steps * 1e3 : 0;
  /* a DPO step adds the reference's forward: a third of an SFT step's matmul work */
  *flops = step_flops(c, full, T, ROW_LEN) *
           (objective && objective->kind != VKFT_PREF_LOSS_ORPO ? 4.0 / 3.0 : 1.0);
  for (int i = 0; i < 2 * n; i++) vkft_tensor_free(be, &state[i]);
  vkft_tensor_free(be, &slots);
  vkft_tensor_free(be, &norm);
  free(state);
  free(grads);
  free(ids);
  vkft_model_free(m);
  return status;
}

int vkft_bench_train(int argc, char **argv) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return cli_fail();
  int json = 0, baseline = 1;
  int64_t steps = 3;
  vkft_dtype quant = VKFT_F32;
  const char *objective = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "--steps") && i + 1 < argc) {
      if (cli_int_option("--steps", argv[++i], 1, 1000, &steps) != VKFT_OK)
        return cli_usage_error();
    } else if (!strcmp(argv[i], "--no-baseline")) {
      baseline = 0;
    } else if (!strcmp(argv[i], "--quant") && i + 1 < argc &&
               vkft_dtype_parse(argv[i + 1], &quant) == 0 && vkft_dtype_is_quantized(quant)) {
      i++;
    } else if (!strcmp(argv[i], "--objective") && i + 1 < argc &&
               (!strcmp(argv[i + 1], "dpo") || !strcmp(argv[i + 1], "orpo"))) {
      objective = argv[++i];
    } else {
      fprintf(stderr, "usage: vkft bench train [--json] [--steps N] [--no-baseline] [--quant "
                      "nf4|fp4] [--objective dpo|orpo] [--device N]\n");
      return CLI_EXIT_USAGE;
    }
  }
  char dir[256];
  snprintf(dir, sizeof dir, "vkft-bench-model.tmp");
  if (vkft_model_write_random(dir, BENCH_CONFIG, VKFT_BF16, 1) != VKFT_OK) return cli_fail();
  vkft_device *dev = cli_open_device(&dev_opts);
  if (!dev) return cli_exit_code(vkft_error_code());
  vkft_backend *vk, *ref;
  vkft_backend_vk_create(dev, &vk);
  vkft_backend_ref_create(&ref);
  if (!json)
    printf("bench train on %s: Llama-shaped model C=256 L=4 H=8 KV=4 F=688 V=8192 (bf16 base), %d "
           "x %d "
           "tokens per step, LoRA r=%d on all 7 projections\n",
           vkft_device_get_info(dev)->name, ROWS, ROW_LEN, LORA_R);
  int status = VKFT_OK;
  /* methods: 0 LoRA on the bf16 base, 1 full fine-tuning, 2 QLoRA (--quant), 3 LoRA with the
   * preference objective (--objective) */
  double sft_ms = 0;
  vkft_pref_objective pref = {.kind = objective && !strcmp(objective, "orpo")
                                          ? VKFT_PREF_LOSS_ORPO
                                          : VKFT_PREF_LOSS_SIGMOID,
                              .beta = 0.1f};
  for (int method = 0; method <= 3 && status == VKFT_OK; method++) {
    if ((method == 2 && quant == VKFT_F32) || (method == 3 && !objective)) continue;
    char name[16];
    snprintf(name, sizeof name, "%s", method == 0 ? "lora" : method == 1 ? "full" : "qlora-");
    if (method == 2) snprintf(name, sizeof name, "qlora-%s", vkft_dtype_name(quant));
    if (method == 3) snprintf(name, sizeof name, "%s-lora", objective);
    for (int b = 0; b < (baseline ? 2 : 1) && status == VKFT_OK; b++) {
      vkft_backend *be = b ? ref : vk;
      double ms, flops;
      status = run(be, dir, method == 1, method == 2 ? quant : VKFT_F32, method == 3 ? &pref : NULL,
                   b ? 1 : (int)steps, &ms, &flops);
      if (status != VKFT_OK) break;
      if (method == 0 && !b) sft_ms = ms;
      double tps = ROWS * ROW_LEN / (ms / 1e3), gflops = flops / (ms * 1e6);
      if (json)
        printf("{\"bench\": \"train\", \"method\": \"%s\", \"backend\": \"%s\", \"tokens\": %d, "
               "\"ms_per_step\": %.1f, \"tokens_per_s\": %.1f, \"gflops\": %.3f}\n",
               name, vkft_backend_name(be), ROWS * ROW_LEN, ms, tps, gflops);
      else
        printf("%-10s %-9s %9.1f ms/step %9.1f tokens/s %8.2f GFLOP/s\n", name,
               vkft_backend_name(be), ms, tps, gflops);
      if (method == 3 && !b && !json)
        printf("           %s step / SFT LoRA step on the same tokens: %.2fx\n", objective,
               ms / sft_ms);
      if (dev_opts.profile && !b && !json) print_profile(dev);
      fflush(stdout);
    }
  }
  vkft_backend_destroy(vk);
  vkft_backend_destroy(ref);
  vkft_device_destroy(dev);
  vkft_remove_tree(dir);
  return status == VKFT_OK ? 0 : cli_fail();
}
