/* `vkft plan --config cfg.json [--set ...] [--memory MIB] [--json] [--no-measure]`: the
 * trade-offs of a run before it starts.
 * For each sequence length (256 ... the model's limit, and the config's), with gradient
 * checkpointing off and on, and with the base as configured and in NF4 (LoRA, not DoRA): the
 * largest micro-batch (a power of two up to 256) whose memory plan — the same plan `train
 * --dry-run` prints, counted without allocating — fits the device's free budget, that plan's size,
 * and the tokens/s a step of that shape is estimated to run at. The estimate: for each base, real
 * training steps (forward, loss, backward, gradient norm, AdamW; one warm-up, one timed) of the
 * config's model at the config's max_len (or the shortest length that fits), without
 * checkpointing when that fits, at one row and, when that is quick, at more rows up to half a
 * second's worth; their model FLOPs per second (cli_step_flops: matmuls, LoRA, causal attention
 * and checkpointing's second forward) then give every row of that base its time: its FLOPs / that
 * rate. One rate per base: checkpointing runs the same kernels (a second forward), and rows timed
 * apart would differ by the machine's noise more than by what they cost (two timed steps on a
 * busy 2-core machine put checkpointing ahead once). A row whose shape was the one timed is
 * marked as measured.
 * --no-measure skips the steps.
 * --memory plans for another card (its MiB instead of this device's free budget; nothing is
 * measured). Without either it prints the plan of micro-batch 1 and what each further sequence
 * adds. */
#include "commands.h"

#include "vkft/error.h"
#include "vkft/model.h"
#include "vkft/model_config.h"
#include "vkft/ops.h"
#include "vkft/train_config.h"
#include "vkft/trainer.h"
#include "vkft/vk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024.0 * 1024.0)
enum { MAX_ROWS = 2 * 8 * 2 };
#define MEASURE_TARGET_S 0.5 /* the larger timed step takes about this long */

typedef struct plan_row {
  int64_t max_len;
  int ckpt;
  vkft_dtype quant;
  int64_t best;                  /* the largest micro-batch that fits (0: none, or no budget) */
  uint64_t best_bytes, one, two; /* the plan at best, at 1 and at 2 sequences (pairs) */
  double tokens_per_s;           /* estimated; 0: none */
  int measured;                  /* this row's own shape was timed */
} plan_row;

/* The device bytes of a run at micro-batch mb (sequences; pairs) of the row's shape, as the
 * trainer plans it (vkft_train_model_desc_at: its grad_accum and vocabulary). *runs 0: the config
 * cannot run at mb (train.batch_size would need grad_accum above 64); the bytes are then those of
 * 64 micro-batches, the most a run has. */
static int plan_bytes(const vkft_train_config *cfg, int64_t vocab, const plan_row *r, int64_t mb,
                      uint64_t *bytes, int *runs) {
  vkft_model_desc md;
  *runs = vkft_train_model_desc_at(cfg, mb, r->max_len, 1, vocab, &md) == VKFT_OK;
  if (!*runs) {
    vkft_error_clear();
    md = vkft_train_model_desc(cfg, strcmp(cfg->objective, "sft") ? 2 * mb : mb, r->max_len);
    md.micro_batches = 64;
    md.vocab_size = vocab;
  }
  md.grad_checkpointing = r->ckpt;
  md.quant_dtype = r->quant;
  return vkft_train_plan_bytes(&md, bytes);
}

/* The row's plans: micro-batch 1 and 2, and with a budget the largest micro-batch that fits. */
static int plan_row_fill(const vkft_train_config *cfg, int64_t vocab, plan_row *r,
                         uint64_t free_bytes) {
  int runs;
  if (plan_bytes(cfg, vocab, r, 1, &r->one, &runs) != VKFT_OK ||
      plan_bytes(cfg, vocab, r, 2, &r->two, &runs) != VKFT_OK)
    return VKFT_ERR;
  for (int64_t mb = 1; free_bytes && mb <= 256; mb *= 2) {
    uint64_t bytes;
    if (plan_bytes(cfg, vocab, r, mb, &bytes, &runs) != VKFT_OK) return VKFT_ERR;
    if (!runs) continue; /* a larger micro-batch may */
    if (bytes > free_bytes) break;
    r->best = mb, r->best_bytes = bytes;
  }
  return VKFT_OK;
}

/* Timed steps of one (base, checkpointing) pair at `len` tokens per row: the model FLOPs per
 * second of the larger step timed (*rows_timed rows). */
static int measure_rate(vkft_backend *be, const vkft_train_config *cfg, const plan_row *r,
                        double *rate, int64_t *rows_timed) {
  cli_step_shape shape = {.rows = 1,
                          .seq = (int)r->max_len,
                          .lora_r = cfg->lora.r,
                          .lora_targets = cfg->lora.targets,
                          .use_dora = !cfg->full && cfg->lora.use_dora,
                          .grad_checkpointing = r->ckpt};
  cli_step_result res;
  if (cli_measure_step(be, cfg->model, cfg->full, r->quant, NULL, &shape, 1, &res) != VKFT_OK)
    return VKFT_ERR;
  /* one row was quick: more rows, up to the row's micro-batch, for about MEASURE_TARGET_S */
  int64_t more = (int64_t)(MEASURE_TARGET_S / (res.ms / 1e3));
  if (more > r->best) more = r->best;
  if (more >= 2) {
    shape.rows = (int)more;
    if (cli_measure_step(be, cfg->model, cfg->full, r->quant, NULL, &shape, 1, &res) != VKFT_OK)
      return VKFT_ERR;
  }
  *rate = res.flops / (res.ms / 1e3);
  *rows_timed = shape.rows;
  return VKFT_OK;
}

/* Every row's tokens/s from its base's measured rate (see the top of the file). `why` gets the
 * reason when nothing could be measured. */
static void estimate(vkft_backend *be, const vkft_train_config *cfg, const vkft_model_config *mc,
                     plan_row *rows, int n, char *why, size_t why_size) {
  for (int g = 0; g < n; g++) {
    if (rows[g].tokens_per_s > 0 || rows[g].best == 0) continue;
    /* the base's row to time: without checkpointing when one fits, at the config's max_len when
     * it fits, else the shortest length that fits */
    plan_row *at = NULL;
    for (int i = 0; i < n; i++) {
      const plan_row *r = &rows[i];
      if (r->quant != rows[g].quant || r->best == 0) continue;
      int better =
          !at || (at->ckpt && !r->ckpt) || (at->ckpt == r->ckpt && r->max_len == cfg->data.max_len);
      if (better) at = &rows[i];
    }
    double rate;
    int64_t timed;
    if (measure_rate(be, cfg, at, &rate, &timed) != VKFT_OK) {
      snprintf(why, why_size, "%s", vkft_error_message());
      return;
    }
    for (int i = 0; i < n; i++) {
      plan_row *r = &rows[i];
      if (r->quant != at->quant || r->best == 0) continue;
      int64_t tokens = r->best * r->max_len;
      double flops = cli_step_flops(mc, cfg->full, cfg->lora.r, cfg->lora.targets, tokens,
                                    r->max_len, r->ckpt);
      r->tokens_per_s = (double)tokens / (flops / rate);
      r->measured = r == at && timed == r->best;
    }
  }
}

static void print_row(const vkft_train_config *cfg, const plan_row *r, uint64_t free_bytes,
                      int json) {
  int pairs = strcmp(cfg->objective, "sft") != 0;
  const char *base = r->quant == VKFT_F32 ? "as stored" : vkft_dtype_name(r->quant);
  double per_seq = ((double)r->two - (double)r->one) / MiB;
  char tps[32] = "-";
  if (r->tokens_per_s > 0)
    snprintf(tps, sizeof tps, "%.0f%s", r->tokens_per_s, r->measured ? "*" : "");
  if (json) {
    char value[32] = "null";
    if (r->tokens_per_s > 0) snprintf(value, sizeof value, "%.1f", r->tokens_per_s);
    printf("{\"max_len\": %lld, \"grad_checkpointing\": %s, \"base\": \"%s\", \"micro_batch\": "
           "%lld, \"mib\": %.1f, \"mib_micro_batch_1\": %.1f, \"mib_per_sequence\": %.2f, "
           "\"tokens_per_s\": %s, \"tokens_per_s_measured\": %s}\n",
           (long long)r->max_len, r->ckpt ? "true" : "false", base, (long long)r->best,
           r->best_bytes / MiB, r->one / MiB, per_seq, value, r->measured ? "true" : "false");
  } else if (!free_bytes) {
    printf("%8lld  %-4s  %-9s  %10s  %9.1f MiB  %9s  +%.2f MiB per %s\n", (long long)r->max_len,
           r->ckpt ? "on" : "off", base, "-", r->one / MiB, "-", per_seq,
           pairs ? "pair" : "sequence");
  } else if (r->best == 0) {
    printf("%8lld  %-4s  %-9s  %10s  %9.1f MiB  %9s  does not fit even at micro-batch 1\n",
           (long long)r->max_len, r->ckpt ? "on" : "off", base, "-", r->one / MiB, "-");
  } else {
    printf("%8lld  %-4s  %-9s  %10lld  %9.1f MiB  %9s%s\n", (long long)r->max_len,
           r->ckpt ? "on" : "off", base, (long long)r->best, r->best_bytes / MiB, tps,
           r->best == 256 ? "  (256 is the largest tried)" : "");
  }
}

typedef struct plan_args {
  const char *config;
  const char **sets;
  int set_count, json, no_measure;
  double memory_mib;
} plan_args;

static int parse_args(int argc, char **argv, plan_args *a) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--config") && i + 1 < argc)
      a->config = argv[++i];
    else if (!strcmp(argv[i], "--set") && i + 1 < argc)
      a->sets[a->set_count++] = argv[++i];
    else if (!strcmp(argv[i], "--json"))
      a->json = 1;
    else if (!strcmp(argv[i], "--no-measure"))
      a->no_measure = 1;
    else if (!strcmp(argv[i], "--memory") && i + 1 < argc) {
      if (cli_double_option("--memory", argv[++i], 1, 1e9, &a->memory_mib) != VKFT_OK)
        return cli_usage_error();
    } else {
      fprintf(stderr, "usage: vkft plan --config cfg.json [--set section.key=value ...] "
                      "[--memory MIB] [--json] [--no-measure] [--device N]\n");
      return CLI_EXIT_USAGE;
    }
  }
  return CLI_EXIT_OK;
}

/* The table's rows: each length, checkpointing off and on, the base as configured and (LoRA on
 * an unquantized base) in NF4. */
static int table_rows(const vkft_train_config *cfg, const vkft_model_config *mc, plan_row *rows) {
  vkft_dtype quant = VKFT_F32;
  if (vkft_dtype_parse(cfg->quant.base, &quant) != 0) quant = VKFT_F32;
  int64_t limit = mc->max_position_embeddings > 0 ? mc->max_position_embeddings : 4096;
  int64_t lens[8], n_lens = 0;
  for (int64_t len = 256; len <= 8192 && len <= limit; len *= 2) lens[n_lens++] = len;
  if (cfg->data.max_len > 0 && cfg->data.max_len <= limit) {
    int have = 0;
    for (int i = 0; i < n_lens; i++) have |= lens[i] == cfg->data.max_len;
    if (!have) lens[n_lens++] = cfg->data.max_len;
  }
  int n = 0;
  for (int q = 0; q < 2; q++) {
    /* NF4 is a LoRA base, and not one DoRA can take (it needs the dense weights' norms) */
    if (q == 1 && (cfg->full || quant != VKFT_F32 || cfg->lora.use_dora)) break;
    for (int i = 0; i < n_lens; i++)
      for (int ckpt = 0; ckpt <= 1; ckpt++)
        rows[n++] = (plan_row){.max_len = lens[i], .ckpt = ckpt, .quant = q ? VKFT_NF4 : quant};
  }
  return n;
}

int vkft_cmd_plan(int argc, char **argv) {
  cli_device_opts dev_opts;
  if (cli_take_device_opts(&argc, argv, &dev_opts) != VKFT_OK) return cli_fail();
  plan_args a = {.sets = calloc((size_t)argc, sizeof *a.sets)};
  if (!a.sets) {
    vkft_error_nomem();
    return cli_fail();
  }
  int exit_code = parse_args(argc, argv, &a);
  vkft_train_config cfg;
  int status = exit_code == CLI_EXIT_OK
                   ? vkft_train_config_load(a.config, a.sets, a.set_count, &cfg)
                   : VKFT_ERR;
  free(a.sets);
  if (exit_code != CLI_EXIT_OK) return exit_code;
  vkft_model_config mc;
  if (status != VKFT_OK || vkft_model_config_load(cfg.model, &mc) != VKFT_OK) return cli_fail();
  /* the device's free budget; none: plans alone */
  vkft_device *dev = NULL;
  vkft_device_desc desc = {.index = dev_opts.device, .validate = -1};
  uint64_t free_bytes = (uint64_t)(a.memory_mib * MiB);
  if (a.memory_mib > 0) {
    /* another card's memory: no device needed */
  } else if (vkft_device_create(&desc, &dev) == VKFT_OK) {
    uint64_t budget = vkft_device_memory_budget(dev), used = vkft_device_memory_in_use(dev);
    free_bytes = budget > used ? budget - used : 0;
  } else if (!a.json) {
    printf("no device (%s): the plans alone\n", vkft_error_message());
  }
  plan_row rows[MAX_ROWS];
  int n = table_rows(&cfg, &mc, rows);
  int64_t vocab;
  status = vkft_train_vocab_size(&cfg, mc.vocab_size, &vocab);
  for (int i = 0; i < n && status == VKFT_OK; i++)
    status = plan_row_fill(&cfg, vocab, &rows[i], free_bytes);
  if (status == VKFT_OK && !a.json) {
    char method[64];
    if (cfg.full)
      snprintf(method, sizeof method, "full fine-tuning");
    else
      snprintf(method, sizeof method, "LoRA r=%lld", (long long)cfg.lora.r);
    char accum[64];
    if (cfg.train.batch_size > 0)
      snprintf(accum, sizeof accum, "train.batch_size %lld", (long long)cfg.train.batch_size);
    else
      snprintf(accum, sizeof accum, "grad_accum %lld", (long long)cfg.train.grad_accum);
    printf("plan of %s (%s, %s)%s%s: %s\n", cfg.model, method, accum, dev ? " on " : "",
           dev ? vkft_device_get_info(dev)->name : "",
           free_bytes ? "the largest micro-batch that fits" : "micro-batch 1");
    if (free_bytes)
      printf("%s: %.1f MiB\n", dev ? "free device memory" : "--memory", free_bytes / MiB);
    fflush(stdout);
  }
  /* tokens/s: measured on this device, for the token objective, with the model's weights */
  char why[1100] = "";
  vkft_backend *be = NULL;
  double t0 = vkft_time_s();
  if (status != VKFT_OK || a.no_measure)
    snprintf(why, sizeof why, "--no-measure");
  else if (!dev)
    snprintf(why, sizeof why, "%s", a.memory_mib > 0 ? "--memory plans another card" : "no device");
  else if (strcmp(cfg.objective, "sft"))
    snprintf(why, sizeof why, "measured for objective sft only");
  else if (!vkft_model_has_weights(cfg.model))
    snprintf(why, sizeof why, "%s has no weights", cfg.model);
  else if (vkft_backend_vk_create(dev, &be) != VKFT_OK)
    snprintf(why, sizeof why, "%s", vkft_error_message());
  else
    estimate(be, &cfg, &mc, rows, n, why, sizeof why);
  if (status == VKFT_OK && !a.json) {
    if (why[0])
      printf("tokens/s not estimated: %s\n", why);
    else
      printf("tokens/s: steps timed per base at the config's max_len without checkpointing "
             "(else the shortest that fits; *: the row's own shape), the other rows scaled by "
             "their model FLOPs; %.1f s\n",
             vkft_time_s() - t0);
    printf("%8s  %-4s  %-9s  %10s  %13s  %9s\n", "max_len", "ckpt", "base", "micro_batch", "memory",
           "tokens/s");
  }
  for (int i = 0; i < n && status == VKFT_OK; i++) print_row(&cfg, &rows[i], free_bytes, a.json);
  vkft_backend_destroy(be);
  vkft_device_destroy(dev);
  return status == VKFT_OK ? CLI_EXIT_OK : cli_fail();
}
