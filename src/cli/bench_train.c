/* `vkft bench train [--json] [--steps N] [--no-baseline] [--quant nf4|fp4] [--shape NAME]
 * [--rows N] [--seq T] [--methods LIST] [--objective dpo|orpo]`: training throughput of a
 * Llama-shaped model with random weights (bf16, written to a temporary folder): LoRA, full
 * fine-tuning and, with --quant, QLoRA (the same LoRA on the base quantized to 4 bits): tokens/s,
 * achieved model TFLOP/s and device memory of whole optimizer steps (forward, loss, backward,
 * gradient norm, AdamW), on the device and, as the baseline for the small default shape, on the
 * C reference backend. --shape takes the layer shapes of a real model (Qwen2.5-0.5B,
 * Llama-3.2-1B, Llama-3.1-8B) so the figures compare with other trainers' (scripts/gpu-check.sh
 * puts PyTorch + PEFT beside them). --objective adds a preference step on the same tokens (the
 * rows are rows / 2 pairs, each row's second half its completion; DPO with the in-step
 * reference) and its cost relative to the SFT LoRA step. */
#include "commands.h"

#include "vkft/error.h"
#include "vkft/model.h"
#include "vkft/platform.h"
#include "vkft/train_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shapes (config.json of each model's Hugging Face folder, its layer sizes as published). */
typedef struct bench_shape {
  const char *name, *config;
} bench_shape;
static const bench_shape shapes[] = {
    {"tiny", "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 8192, "
             "\"hidden_size\": 256, \"intermediate_size\": 688, \"num_hidden_layers\": 4, "
             "\"num_attention_heads\": 8, \"num_key_value_heads\": 4, "
             "\"max_position_embeddings\": 1024, \"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0, "
             "\"tie_word_embeddings\": false}"},
    {"qwen2.5-0.5b",
     "{\"architectures\": [\"Qwen2ForCausalLM\"], \"vocab_size\": 151936, \"hidden_size\": 896, "
     "\"intermediate_size\": 4864, \"num_hidden_layers\": 24, \"num_attention_heads\": 14, "
     "\"num_key_value_heads\": 2, \"max_position_embeddings\": 32768, \"rms_norm_eps\": 1e-6, "
     "\"rope_theta\": 1000000.0, \"tie_word_embeddings\": true}"},
    {"llama-3.2-1b",
     "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 128256, \"hidden_size\": 2048, "
     "\"intermediate_size\": 8192, \"num_hidden_layers\": 16, \"num_attention_heads\": 32, "
     "\"num_key_value_heads\": 8, \"head_dim\": 64, \"max_position_embeddings\": 131072, "
     "\"rms_norm_eps\": 1e-5, \"rope_theta\": 500000.0, \"rope_scaling\": {\"rope_type\": "
     "\"llama3\", \"factor\": 32.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
     "\"original_max_position_embeddings\": 8192}, \"tie_word_embeddings\": true}"},
    {"llama-3.1-8b",
     "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 128256, \"hidden_size\": 4096, "
     "\"intermediate_size\": 14336, \"num_hidden_layers\": 32, \"num_attention_heads\": 32, "
     "\"num_key_value_heads\": 8, \"max_position_embeddings\": 131072, \"rms_norm_eps\": 1e-5, "
     "\"rope_theta\": 500000.0, \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
     "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
     "\"original_max_position_embeddings\": 8192}, \"tie_word_embeddings\": false}"},
};
enum { LORA_R = 16 };

/* Model FLOPs of one step: matmuls 2 flops per weight per token forward, as much again for the
 * input gradients, again for weight gradients (full only); LoRA adapters (rank r on the target
 * projections) likewise; causal attention 4*H*D per (query, key) pair forward and 2.5x that
 * backward. Gradient checkpointing runs the forward once more in the backward. */
double cli_step_flops(const vkft_model_config *c, int full, int64_t lora_r, unsigned targets,
                      int64_t tokens, int64_t row_len, int grad_checkpointing) {
  double C = (double)c->hidden_size, F = (double)c->intermediate_size, V = (double)c->vocab_size;
  double QD = (double)(c->num_heads * c->head_dim), KD = (double)(c->num_kv_heads * c->head_dim);
  double L = (double)c->num_layers, tok = (double)tokens;
  double per_layer = C * QD + 2 * C * KD + QD * C + 3 * C * F;
  double weights = L * per_layer + V * C;
  /* each projection's in + out features, in the order of VKFT_MOD_Q.. (q k v o gate up down) */
  const double ins_outs[7] = {C + QD, C + KD, C + KD, QD + C, C + F, C + F, F + C};
  double lora = 0;
  for (int i = 0; i < 7 && !full; i++)
    if (targets & (1u << i)) lora += (double)lora_r * ins_outs[i] * L * tok;
  double pairs = tok * ((double)row_len + 1) / 2.0, attention = 4.0 * QD * pairs * L;
  double forward = 2.0 * weights * tok + 2.0 * lora + attention;
  double backward = (full ? 4.0 : 2.0) * weights * tok + 4.0 * lora + 2.5 * attention;
  return forward * (grad_checkpointing ? 2 : 1) + backward;
}

void cli_print_profile(vkft_device *dev) {
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

typedef cli_step_shape bench_opts;
typedef cli_step_result bench_result;

/* The step's tokens: o->rows rows of o->seq tokens. With a preference objective the rows are
 * rows / 2 pairs (row i chosen, row rows / 2 + i rejected; model.h's layout), each row's second
 * half its completion (ORPO also trains the chosen prompts); ids holds 5 T + 2 rows int32s.
 * Returns the number of chosen targets ORPO's NLL averages over. */
static int64_t fill_batch(const bench_opts *o, int64_t vocab, int orpo, int pref, int32_t *ids) {
  int64_t T = (int64_t)o->rows * o->seq, nll = 0;
  int32_t *labels = ids + T, *pos = ids + 2 * T, *seq = ids + 3 * T, *tok = ids + 4 * T;
  int32_t *ranges = ids + 5 * T;
  for (int64_t t = 0; t < T; t++) {
    int64_t row = t / o->seq, k = t % o->seq;
    int completion = k + 1 >= o->seq / 2, last = k + 1 == o->seq, chosen = row < o->rows / 2;
    ids[t] = labels[t] = (int32_t)((t * 2654435761u) % (uint64_t)vocab);
    if (pref && !completion && !(orpo && chosen)) labels[t] = -100;
    pos[t] = (int32_t)k;
    seq[t] = (int32_t)row;
    tok[t] = last             ? -1
             : completion     ? (int32_t)(2 * row + 1)
             : orpo && chosen ? (int32_t)(2 * row)
                              : -1;
    nll += orpo && chosen && tok[t] >= 0;
  }
  for (int r = 0; r < o->rows; r++)
    ranges[2 * r] = (int32_t)((int64_t)r * o->seq),
               ranges[2 * r + 1] = (int32_t)((r + 1) * (int64_t)o->seq);
  return nll;
}

/* objective: NULL for SFT, else a preference objective over o->rows / 2 pairs */
int cli_measure_step(vkft_backend *be, const char *dir, int full, vkft_dtype quant,
                     const vkft_pref_objective *objective, const cli_step_shape *o, int steps,
                     cli_step_result *res) {
  int64_t T = (int64_t)o->rows * o->seq;
  int pairs = objective ? o->rows / 2 : 0;
  vkft_model_desc desc = {.dir = dir,
                          .max_tokens = T,
                          .micro_batches = 1,
                          .training = 1,
                          .full = full,
                          .lora_r = o->lora_r,
                          .lora_scale = 2.0,
                          .lora_targets = o->lora_targets,
                          .use_dora = o->use_dora,
                          .grad_checkpointing = o->grad_checkpointing,
                          .seed = 1,
                          .quant_dtype = quant,
                          .quant_double = 1,
                          .pref_pairs = pairs};
  vkft_model *m;
  if (vkft_model_load(be, &desc, &m) != VKFT_OK) return VKFT_ERR;
  const vkft_model_config *c = vkft_model_get_config(m);
  int32_t *ids = malloc(((size_t)T * 5 + 2 * (size_t)o->rows) * sizeof *ids);
  if (!ids) {
    vkft_model_free(m);
    return vkft_error_nomem();
  }
  int orpo = objective && objective->kind == VKFT_PREF_LOSS_ORPO;
  int64_t nll = fill_batch(o, c->vocab_size, orpo, objective != NULL, ids);
  vkft_model_batch b = {T, ids, ids + T, ids + 2 * T, ids + 3 * T};
  vkft_model_pref_batch pb = {pairs, ids + 4 * T, ids + 5 * T, NULL};
  vkft_pref_objective po = objective ? *objective : (vkft_pref_objective){0};
  po.pair_scale = pairs ? 1.0f / (float)pairs : 0.0f;
  po.nll_scale = nll ? 1.0f / (float)nll : 0.0f;
  vkft_param *params;
  int n;
  vkft_model_params(m, &params, &n);
  vkft_tensor *state = calloc((size_t)n * 2, sizeof *state),
              *grads = calloc((size_t)n, sizeof *grads);
  int ng = 0, status = state && grads ? vkft_model_set_batch(m, 0, &b) : vkft_error_nomem();
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
             (objective ? vkft_model_pref_forward_backward(m, 0, &po, 1)
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
  res->ms = steps > 0 ? total / steps * 1e3 : 0;
  /* a DPO step adds the reference's forward: a third of an SFT step's matmul work */
  res->flops =
      cli_step_flops(c, full, o->lora_r, o->lora_targets, T, o->seq, o->grad_checkpointing) *
      (objective && !orpo ? 4.0 / 3.0 : 1.0);
  /* everything is allocated up front (the memory plan), so what is held now is the peak */
  vkft_device *dev = vkft_backend_device(be);
  res->device_bytes = dev ? vkft_device_memory_in_use(dev) : 0;
  for (int i = 0; state && i < 2 * n; i++) vkft_tensor_free(be, &state[i]);
  vkft_tensor_free(be, &slots);
  vkft_tensor_free(be, &norm);
  free(state);
  free(grads);
  free(ids);
  vkft_model_free(m);
  return status;
}

static int usage(void) {
  fprintf(stderr, "usage: vkft bench train [--json] [--steps N] [--no-baseline] [--quant nf4|fp4] "
                  "[--shape tiny|qwen2.5-0.5b|llama-3.2-1b|llama-3.1-8b] [--rows N] [--seq T] "
                  "[--methods lora,full,qlora] [--objective dpo|orpo] [--device N]\n");
  return CLI_EXIT_USAGE;
}

/* method k is bit k: LoRA on the bf16 base, full fine-tuning, QLoRA (--quant), LoRA with the
 * preference objective (--objective) */
enum { METHOD_LORA = 1, METHOD_FULL = 2, METHOD_QLORA = 4, METHOD_PREF = 8 };

/* "lora,full,qlora" -> METHOD_* bits; 0 when a name is unknown */
static unsigned parse_methods(const char *list) {
  unsigned bits = 0;
  char buf[64];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    unsigned bit = !strcmp(tok, "lora")    ? METHOD_LORA
                   : !strcmp(tok, "full")  ? METHOD_FULL
                   : !strcmp(tok, "qlora") ? METHOD_QLORA
                                           : 0;
    if (!bit) return 0;
    bits |= bit;
  }
  return bits;
}

/* What the command line asks for. */
typedef struct bench_args {
  int json, baseline; /* baseline -1: by the shape */
  bench_opts o;
  vkft_dtype quant;
  const bench_shape *shape;
  unsigned methods;      /* METHOD_* bits */
  const char *objective; /* "dpo", "orpo" or NULL */
} bench_args;

/* Returns 0, or the exit status of a usage error (said on stderr). */
static int parse_args(int argc, char **argv, bench_args *a) {
  *a =
      (bench_args){.baseline = -1,
                   .o = {.rows = 2, .seq = 256, .steps = 3, .lora_r = LORA_R, .lora_targets = 0x7f},
                   .quant = VKFT_F32,
                   .shape = &shapes[0]};
  int64_t v;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(arg, "--json")) {
      a->json = 1;
    } else if (!strcmp(arg, "--no-baseline")) {
      a->baseline = 0;
    } else if (next &&
               (!strcmp(arg, "--steps") || !strcmp(arg, "--rows") || !strcmp(arg, "--seq"))) {
      int64_t hi = !strcmp(arg, "--steps") ? 1000 : !strcmp(arg, "--rows") ? 4096 : 131072;
      if (cli_int_option(arg, next, 1, hi, &v) != VKFT_OK) return cli_usage_error();
      *(!strcmp(arg, "--steps")  ? &a->o.steps
        : !strcmp(arg, "--rows") ? &a->o.rows
                                 : &a->o.seq) = (int)v;
      i++;
    } else if (next && !strcmp(arg, "--quant") && vkft_dtype_parse(next, &a->quant) == 0 &&
               vkft_dtype_is_quantized(a->quant)) {
      i++;
    } else if (next && !strcmp(arg, "--shape")) {
      a->shape = NULL;
      for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        if (!strcmp(next, shapes[k].name)) a->shape = &shapes[k];
      if (!a->shape) {
        fprintf(stderr, "vkft bench train: --shape: no shape named \"%s\"\n", next);
        return usage();
      }
      i++;
    } else if (next && !strcmp(arg, "--methods") && (a->methods = parse_methods(next))) {
      i++;
    } else if (next && !strcmp(arg, "--objective") &&
               (!strcmp(next, "dpo") || !strcmp(next, "orpo"))) {
      a->objective = argv[++i];
    } else {
      return usage();
    }
  }
  if (!a->methods) a->methods = METHOD_LORA | METHOD_FULL;
  if (a->quant != VKFT_F32) a->methods |= METHOD_QLORA;
  if (a->objective) a->methods |= METHOD_PREF;
  if (a->objective && a->o.rows % 2) {
    fprintf(stderr, "vkft bench train: --objective needs an even --rows (pairs of rows)\n");
    return usage();
  }
  if ((a->methods & METHOD_QLORA) && a->quant == VKFT_F32) a->quant = VKFT_NF4;
  /* the C reference backend takes hours on a real model's shapes */
  if (a->baseline < 0) a->baseline = a->shape == &shapes[0];
  return 0;
}

int vkft_bench_train(int argc, char **argv) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return cli_fail();
  bench_args a;
  int usage_status = parse_args(argc, argv, &a);
  if (usage_status) return usage_status;
  int json = a.json, baseline = a.baseline;
  bench_opts o = a.o;
  vkft_dtype quant = a.quant;
  const bench_shape *shape = a.shape;
  unsigned methods = a.methods;
  const char *objective = a.objective;
  char dir[256];
  snprintf(dir, sizeof dir, "vkft-bench-model.tmp");
  double t0 = vkft_time_s();
  if (vkft_model_write_random(dir, shape->config, VKFT_BF16, 1) != VKFT_OK) return cli_fail();
  double write_s = vkft_time_s() - t0;
  vkft_device *dev = cli_open_device(&dev_opts);
  if (!dev) {
    vkft_remove_tree(dir);
    return cli_exit_code(vkft_error_code());
  }
  vkft_backend *vk, *ref;
  if (vkft_backend_vk_create(dev, &vk) != VKFT_OK) {
    vkft_device_destroy(dev);
    vkft_remove_tree(dir);
    return cli_fail();
  }
  vkft_backend_ref_create(&ref);
  vkft_model_config mc;
  vkft_model_config_load(dir, &mc);
  if (!json)
    printf("bench train on %s: %s shape: C=%lld L=%d H=%d KV=%d F=%lld V=%lld (bf16 base, random "
           "weights written in %.1f s), %d x %d tokens per step, LoRA r=%d on all 7 projections\n",
           vkft_device_get_info(dev)->name, shape->name, (long long)mc.hidden_size,
           (int)mc.num_layers, (int)mc.num_heads, (int)mc.num_kv_heads,
           (long long)mc.intermediate_size, (long long)mc.vocab_size, write_s, o.rows, o.seq,
           LORA_R);
  int status = VKFT_OK;
  double sft_ms = 0;
  vkft_pref_objective pref = {.kind = objective && !strcmp(objective, "orpo")
                                          ? VKFT_PREF_LOSS_ORPO
                                          : VKFT_PREF_LOSS_SIGMOID,
                              .beta = 0.1f};
  for (int method = 0; method < 4 && status == VKFT_OK; method++) {
    if (!(methods & (1u << method))) continue;
    char name[16];
    snprintf(name, sizeof name, "%s", method == 0 ? "lora" : "full");
    if (method == 2) snprintf(name, sizeof name, "qlora-%s", vkft_dtype_name(quant));
    if (method == 3) snprintf(name, sizeof name, "%s-lora", objective);
    for (int b = 0; b < (baseline ? 2 : 1) && status == VKFT_OK; b++) {
      vkft_backend *be = b ? ref : vk;
      bench_result r = {0};
      status = cli_measure_step(be, dir, method == 1, method == 2 ? quant : VKFT_F32,
                                method == 3 ? &pref : NULL, &o, b ? 1 : o.steps, &r);
      if (status != VKFT_OK) break;
      if (method == 0 && !b) sft_ms = r.ms;
      int64_t tokens = (int64_t)o.rows * o.seq;
      double tps = (double)tokens / (r.ms / 1e3), gflops = r.flops / (r.ms * 1e6);
      if (json)
        printf("{\"bench\": \"train\", \"shape\": \"%s\", \"method\": \"%s\", \"backend\": "
               "\"%s\", \"rows\": %d, \"seq\": %d, \"tokens\": %lld, \"steps\": %d, "
               "\"ms_per_step\": %.1f, \"tokens_per_s\": %.1f, \"gflops\": %.3f, \"tflops\": %.4f, "
               "\"device_mib\": %.1f}\n",
               shape->name, name, vkft_backend_name(be), o.rows, o.seq, (long long)tokens,
               b ? 1 : o.steps, r.ms, tps, gflops, gflops / 1e3,
               (double)r.device_bytes / (1024.0 * 1024));
      else
        printf("%-10s %-9s %9.1f ms/step %9.1f tokens/s %8.2f GFLOP/s %9.1f MiB on the device\n",
               name, vkft_backend_name(be), r.ms, tps, gflops,
               (double)r.device_bytes / (1024.0 * 1024));
      if (method == 3 && !b && !json && sft_ms > 0)
        printf("           %s step / SFT LoRA step on the same tokens: %.2fx\n", objective,
               r.ms / sft_ms);
      if (dev_opts.profile && !b && !json) cli_print_profile(dev);
      fflush(stdout);
    }
  }
  vkft_backend_destroy(vk);
  vkft_backend_destroy(ref);
  vkft_device_destroy(dev);
  vkft_remove_tree(dir);
  return status == VKFT_OK ? 0 : cli_fail();
}
