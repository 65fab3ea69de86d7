/* `vkft plan --config cfg.json [--set ...] [--memory MIB] [--json]`: the trade-offs of a run
 * before it starts.
 * For each sequence length (256 ... the model's limit, and the config's), with gradient
 * checkpointing off and on, and with the base as configured and in NF4 (LoRA, not DoRA): the
 * largest micro-batch (a power of two up to 256) whose memory plan — the same plan `train
 * --dry-run` prints, counted without allocating — fits the device's free budget, and that plan's
 * size.
 * --memory plans for another card (its MiB instead of this device's free budget). Without
 * either it prints the plan of micro-batch 1 and what each further sequence adds.
 * Tokens/s are not estimated here: `vkft bench train` measures a step. */
#include "commands.h"

#include "vkft/error.h"
#include "vkft/model.h"
#include "vkft/model_config.h"
#include "vkft/train_config.h"
#include "vkft/trainer.h"
#include "vkft/vk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024.0 * 1024.0)

/* The plan's device bytes for one shape (weights, trainable, gradients, AdamW's two moments,
 * activations, scratch), as the trainer sums them. */
static int plan_bytes(const vkft_train_config *cfg, int64_t max_len, int64_t rows, int ckpt,
                      vkft_dtype quant, uint64_t *bytes) {
  vkft_model_desc md = vkft_train_model_desc(cfg, rows, max_len);
  md.grad_checkpointing = ckpt;
  md.plan_only = 1;
  md.quant_dtype = quant;
  vkft_model *m;
  if (vkft_model_load(NULL, &md, &m) != VKFT_OK) return VKFT_ERR;
  vkft_model_memory mem;
  vkft_model_memory_plan(m, &mem);
  vkft_param *params;
  int n;
  vkft_model_params(m, &params, &n);
  uint64_t adam = 0;
  for (int i = 0; i < n; i++)
    if (params[i].trainable) adam += 2 * (uint64_t)params[i].value->n * 4;
  *bytes = mem.weights + mem.trainable + mem.gradients + adam + mem.activations + mem.scratch;
  vkft_model_free(m);
  return VKFT_OK;
}

typedef struct plan_row {
  int64_t max_len;
  int ckpt;
  vkft_dtype quant;
} plan_row;

/* One row: the largest fitting micro-batch with a device, else micro-batch 1 and the step. */
static int print_row(const vkft_train_config *cfg, const plan_row *r, uint64_t free_bytes,
                     int json) {
  int pairs = strcmp(cfg->objective, "sft") != 0; /* a pair is two sequences */
  int64_t best = 0;
  uint64_t best_bytes = 0, one = 0, two = 0;
  if (plan_bytes(cfg, r->max_len, pairs ? 2 : 1, r->ckpt, r->quant, &one) != VKFT_OK ||
      plan_bytes(cfg, r->max_len, pairs ? 4 : 2, r->ckpt, r->quant, &two) != VKFT_OK)
    return VKFT_ERR;
  for (int64_t mb = 1; free_bytes && mb <= 256; mb *= 2) {
    uint64_t bytes;
    if (plan_bytes(cfg, r->max_len, pairs ? 2 * mb : mb, r->ckpt, r->quant, &bytes) != VKFT_OK)
      return VKFT_ERR;
    if (bytes > free_bytes) break;
    best = mb, best_bytes = bytes;
  }
  const char *base = r->quant == VKFT_F32 ? "as stored" : vkft_dtype_name(r->quant);
  double per_seq = ((double)two - (double)one) / MiB;
  if (json) {
    printf("{\"max_len\": %lld, \"grad_checkpointing\": %s, \"base\": \"%s\", \"micro_batch\": "
           "%lld, \"mib\": %.1f, \"mib_micro_batch_1\": %.1f, \"mib_per_sequence\": %.2f}\n",
           (long long)r->max_len, r->ckpt ? "true" : "false", base, (long long)best,
           best_bytes / MiB, one / MiB, per_seq);
  } else if (!free_bytes) {
    printf("%8lld  %-4s  %-9s  %10s  %9.1f MiB  +%.2f MiB per %s\n", (long long)r->max_len,
           r->ckpt ? "on" : "off", base, "-", one / MiB, per_seq, pairs ? "pair" : "sequence");
  } else if (best == 0) {
    printf("%8lld  %-4s  %-9s  %10s  %9.1f MiB  does not fit even at micro-batch 1\n",
           (long long)r->max_len, r->ckpt ? "on" : "off", base, "-", one / MiB);
  } else {
    printf("%8lld  %-4s  %-9s  %10lld  %9.1f MiB%s\n", (long long)r->max_len,
           r->ckpt ? "on" : "off", base, (long long)best, best_bytes / MiB,
           best == 256 ? "  (256 is the largest tried)" : "");
  }
  return VKFT_OK;
}

int vkft_cmd_plan(int argc, char **argv) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return cli_fail();
  const char *config = NULL;
  const char **sets = calloc((size_t)argc, sizeof *sets);
  int set_count = 0, json = 0;
  double memory_mib = 0;
  if (!sets) {
    vkft_error_nomem();
    return cli_fail();
  }
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--config") && i + 1 < argc)
      config = argv[++i];
    else if (!strcmp(argv[i], "--set") && i + 1 < argc)
      sets[set_count++] = argv[++i];
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--memory") && i + 1 < argc) {
      if (cli_double_option("--memory", argv[++i], 1, 1e9, &memory_mib) != VKFT_OK) {
        free(sets);
        return cli_usage_error();
      }
    } else {
      fprintf(stderr, "usage: vkft plan --config cfg.json [--set section.key=value ...] "
                      "[--memory MIB] [--json] [--device N]\n");
      free(sets);
      return CLI_EXIT_USAGE;
    }
  }
  vkft_train_config cfg;
  int status = vkft_train_config_load(config, sets, set_count, &cfg);
  free(sets);
  vkft_model_config mc;
  if (status != VKFT_OK || vkft_model_config_load(cfg.model, &mc) != VKFT_OK) return cli_fail();
  /* the device's free budget; none: plans alone */
  vkft_device *dev = NULL;
  vkft_device_desc desc = {.index = dev_opts.device, .validate = -1};
  uint64_t free_bytes = (uint64_t)(memory_mib * MiB);
  if (memory_mib > 0) {
    /* another card's memory: no device needed */
  } else if (vkft_device_create(&desc, &dev) == VKFT_OK) {
    uint64_t budget = vkft_device_memory_budget(dev), used = vkft_device_memory_in_use(dev);
    free_bytes = budget > used ? budget - used : 0;
  } else if (!json) {
    printf("no device (%s): the plans alone\n", vkft_error_message());
  }
  vkft_dtype quant = VKFT_F32;
  if (vkft_dtype_parse(cfg.quant.base, &quant) != 0) quant = VKFT_F32;
  if (!json) {
    char method[64];
    if (cfg.full)
      snprintf(method, sizeof method, "full fine-tuning");
    else
      snprintf(method, sizeof method, "LoRA r=%lld", (long long)cfg.lora.r);
    printf("plan of %s (%s, grad_accum %lld)%s%s: %s\n", cfg.model, method,
           (long long)cfg.train.grad_accum, dev ? " on " : "",
           dev ? vkft_device_get_info(dev)->name : "",
           free_bytes ? "the largest micro-batch that fits" : "micro-batch 1");
    if (free_bytes)
      printf("%s: %.1f MiB\n", dev ? "free device memory" : "--memory", free_bytes / MiB);
    printf("%8s  %-4s  %-9s  %10s  %13s\n", "max_len", "ckpt", "base", "micro_batch", "memory");
  }
  int64_t limit = mc.max_position_embeddings > 0 ? mc.max_position_embeddings : 4096;
  int64_t lens[8], n_lens = 0;
  for (int64_t len = 256; len <= 8192 && len <= limit; len *= 2) lens[n_lens++] = len;
  if (cfg.data.max_len > 0 && cfg.data.max_len <= limit) {
    int have = 0;
    for (int i = 0; i < n_lens; i++) have |= lens[i] == cfg.data.max_len;
    if (!have) lens[n_lens++] = cfg.data.max_len;
  }
  status = VKFT_OK;
  for (int q = 0; q < 2 && status == VKFT_OK; q++) {
    vkft_dtype qt = q == 0 ? quant : VKFT_NF4;
    /* NF4 is a LoRA base, and not one DoRA can take (it needs the dense weights' norms) */
    if (q == 1 && (cfg.full || quant != VKFT_F32 || cfg.lora.use_dora)) break;
    for (int i = 0; i < n_lens && status == VKFT_OK; i++)
      for (int ckpt = 0; ckpt <= 1 && status == VKFT_OK; ckpt++) {
        plan_row r = {lens[i], ckpt, qt};
        status = print_row(&cfg, &r, free_bytes, json);
      }
  }
  vkft_device_destroy(dev);
  return status == VKFT_OK ? CLI_EXIT_OK : cli_fail();
}
