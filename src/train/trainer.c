/* The training job (see vkft/trainer.h): self-check, data, model and optimizer, the memory
 * plan, then — in a locked output folder — resume or start, the loop of optimizer steps
 * (src/train/step.c) with metrics, evals and checkpoints, and the final export. A step whose
 * loss or gradient norm is not finite stops the run before anything of it is saved.
 * Data parallel (vkft/dist.h), every rank runs this; rank 0 alone evaluates and writes, and a
 * rank that fails meets the others at their next agreement on its way out (done:). */
#include "trainer_internal.h"
#include "vkft/lr_find.h"

#include "vkft/crc32.h"
#include "vkft/error.h"
#include "vkft/model_config.h"
#include "vkft/opcases.h"
#include "vkft/platform.h"
#include "vkft/tokenizer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024.0 * 1024.0)

/* The lines report.html shows under "Run": the data, the plan, what the run started from. */
static int report_line(const char *line) {
  static const char *const prefixes[] = {
      "device",       "data",         "memory plan", "plan:",       "tokens.add",
      "LoRA weights", "resumed from", "warning",     "micro_batch", "train.batch_size"};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (!strncmp(line, prefixes[i], strlen(prefixes[i]))) return 1;
  return 0;
}

void trainer_message(const trainer *t, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (t->report && report_line(line)) vkft_report_info_add_line(t->report, line);
  if (t->opt->on_message) t->opt->on_message(line, t->opt->user);
}

/* Rewrites report.html (at most every 30 s unless forced); a failure is a warning, never the
 * end of a run: the page is derived from metrics.jsonl and `vkft report` rebuilds it. */
static void report_refresh(trainer *t, const char *status, int force) {
  if (!t->lock || !t->report || t->opt->lr_find) return;
  t->report->status = status;
  if (vkft_report_update(&t->report_throttle, t->cfg->output.dir, t->report, force) != VKFT_OK)
    trainer_message(t, "warning: report.html not written: %s", vkft_error_message());
}

/* The self-check's failing rows and disabled kernels, one message each. */
static void on_selftest(const vkft_selftest_event *e, void *user) {
  const trainer *t = user;
  if (e->disabled)
    trainer_message(t, "selftest: kernel %s failed on this device: disabled for this run",
                    e->variant);
  else if (e->result && (!e->result->ok || !e->result->deterministic))
    trainer_message(t, "selftest: %s %s %s%s%s FAILED (error %.2e, tolerance %.2e)", e->row->op,
                    vkft_dtype_name(e->row->dtype), e->result->shape, e->variant ? " with " : "",
                    e->variant ? e->variant : "", e->result->max_err, e->result->tol);
}

static int selftest(trainer *t) {
  if (t->opt->skip_selftest || t->opt->dry_run || !t->be || !vkft_backend_device(t->be))
    return VKFT_OK;
  int failed;
  if (vkft_selftest(t->be, VKFT_CASE_SELFTEST, NULL, on_selftest, t, &failed) != VKFT_OK)
    return VKFT_ERR;
  if (failed)
    return vkft_error_with(VKFT_ERR_DEVICE,
                           "the op self-check failed on this device (%d case%s): its results "
                           "cannot be trusted; see `vkft selftest`",
                           failed, failed == 1 ? "" : "s");
  trainer_message(t, "selftest: every op matches the C reference on this device");
  return VKFT_OK;
}

/* tokens.add: the tokenizer learns the new special tokens before the data is tokenized, and
 * the embeddings grow to cover their ids. */
static int add_tokens(trainer *t) {
  const vkft_train_config *cfg = t->cfg;
  vkft_model_config mc;
  if (vkft_model_config_load(cfg->model, &mc) != VKFT_OK ||
      vkft_tokenizer_load(cfg->model, &t->tok) != VKFT_OK)
    return VKFT_ERR;
  size_t before = vkft_tokenizer_vocab_size(t->tok);
  for (int i = 0; i < cfg->tokens.add_count; i++) {
    int32_t id;
    if (vkft_tokenizer_add_special(t->tok, cfg->tokens.add[i], &id) != VKFT_OK) return VKFT_ERR;
    if ((size_t)id >= before) t->added_ids[t->n_added++] = id;
    trainer_message(t, "tokens.add: %s has id %d%s", cfg->tokens.add[i], (int)id,
                    (size_t)id >= before ? " (new)" : " (already in the vocabulary)");
  }
  int64_t v = (int64_t)vkft_tokenizer_vocab_size(t->tok);
  t->vocab_size = v > mc.vocab_size ? v : 0;
  if (t->vocab_size &&
      !(cfg->full || (cfg->lora.modules_to_save & (VKFT_MOD_EMBED | VKFT_MOD_LM_HEAD))))
    trainer_message(t, "warning: new tokens get the mean embedding; without lora.modules_to_save "
                       "[\"embed_tokens\", \"lm_head\"] their embeddings are not trained");
  return VKFT_OK;
}

/* The examples' checksum: a resumed run must see the same data (files, template, tokenizer,
 * max_len, split) as the run that wrote the checkpoint. */
static uint32_t data_checksum(const trainer *t) {
  uint32_t crc = 0;
  const uint32_t *lists[2] = {t->train_ids, t->eval_ids};
  size_t counts[2] = {t->n_train, t->n_eval};
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < counts[k]; i++) {
      const vkft_example *ex = &t->ds->examples[lists[k][i]];
      crc = vkft_crc32(crc, &ex->len, sizeof ex->len);
      crc = vkft_crc32(crc, ex->input_ids, ex->len * sizeof *ex->input_ids);
      crc = vkft_crc32(crc, ex->labels, ex->len * sizeof *ex->labels);
    }
  return crc;
}

int trainer_split_by_file(trainer *t, size_t n, int (*file_of)(const trainer *t, size_t i),
                          int eval_file, const char *what) {
  t->train_ids = malloc((n + 1) * sizeof *t->train_ids);
  t->eval_ids = malloc((n + 1) * sizeof *t->eval_ids);
  if (!t->train_ids || !t->eval_ids) return vkft_error_nomem();
  for (size_t i = 0; i < n; i++) {
    int file = file_of(t, i);
    if (file < 0) continue;
    if (file == eval_file)
      t->eval_ids[t->n_eval++] = (uint32_t)i;
    else
      t->train_ids[t->n_train++] = (uint32_t)i;
  }
  if (t->n_eval == 0)
    return vkft_error("data.eval: %s holds no usable %s", t->cfg->data.eval, what);
  return VKFT_OK;
}

/* an SFT example's file, -1 when it is not usable */
static int example_file(const trainer *t, size_t i) {
  const vkft_example *ex = &t->ds->examples[i];
  return ex->status == VKFT_EXAMPLE_OK ? (int)ex->file : -1;
}

static int by_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* data.max_len "auto": the data.max_len_percentile-th percentile (nearest rank) of the OK
 * examples' untruncated lengths, rounded up to a multiple of 8, within the model's limit. */
static int auto_max_len(trainer *t, int limit) {
  const vkft_dataset *ds = t->ds;
  uint32_t *len = malloc((ds->n_ok ? ds->n_ok : 1) * sizeof *len);
  size_t n = 0;
  if (!len) return limit; /* the whole limit: what the first load kept */
  for (size_t i = 0; i < ds->n_examples; i++)
    if (ds->examples[i].status == VKFT_EXAMPLE_OK) len[n++] = ds->examples[i].full_len;
  qsort(len, n, sizeof *len, by_u32);
  double p = t->cfg->data.max_len_percentile;
  size_t rank = n ? (size_t)ceil(p / 100.0 * (double)n) : 0; /* 1-based nearest rank */
  int64_t at = n ? len[rank > 0 ? rank - 1 : 0] : 8;
  int64_t chosen = (at + 7) / 8 * 8, cap = limit > 0 ? limit : ds->max_len;
  if (chosen > cap) chosen = cap;
  size_t longer = 0;
  for (size_t i = 0; i < n; i++) longer += len[i] > (uint32_t)chosen;
  trainer_message(t,
                  "data.max_len auto: %lld tokens (percentile %g of %zu examples' lengths, "
                  "%lld, rounded up to a multiple of 8%s); %zu examples are truncated",
                  (long long)chosen, p, n, (long long)at,
                  chosen < (at + 7) / 8 * 8 ? ", capped by the model" : "", longer);
  free(len);
  return (int)chosen;
}

static int load_data(trainer *t) {
  const vkft_train_config *cfg = t->cfg;
  if (cfg->tokens.add_count && add_tokens(t) != VKFT_OK) return VKFT_ERR;
  if (strcmp(cfg->objective, "sft")) return pref_load_data(t);
  vkft_data_file_desc files[VKFT_CFG_MAX_LIST + 1];
  size_t n_files = (size_t)cfg->data.train_count;
  for (size_t i = 0; i < n_files; i++)
    files[i] = (vkft_data_file_desc){cfg->data.train[i].path, cfg->data.train[i].weight};
  if (cfg->data.eval[0]) files[n_files++] = (vkft_data_file_desc){cfg->data.eval, 1.0};
  vkft_data_format format = VKFT_FORMAT_AUTO;
  if (vkft_data_format_parse(cfg->data.format, &format) != VKFT_OK)
    return vkft_error("config: data.format \"%s\" is not a known format", cfg->data.format);
  vkft_model_config mc;
  if (vkft_model_config_load(cfg->model, &mc) != VKFT_OK) return VKFT_ERR;
  vkft_dataset_desc desc = {
      .model_dir = cfg->model,
      .files = files,
      .n_files = n_files,
      .format = format,
      .template_name = strcmp(cfg->data.chat_template, "auto") ? cfg->data.chat_template : NULL,
      .max_len = (int)cfg->data.max_len,
      .train_on = cfg->data.train_on_all ? VKFT_TRAIN_ON_ALL : VKFT_TRAIN_ON_ASSISTANT,
      .vocab_size = mc.vocab_size};
  desc.tokenizer = t->tok;
  if (t->vocab_size) desc.vocab_size = t->vocab_size;
  if (cfg->data.max_len < 0) { /* "auto": first every example whole, up to the model's limit */
    desc.max_len = mc.max_position_embeddings > 0 && mc.max_position_embeddings < (1 << 24)
                       ? (int)mc.max_position_embeddings
                       : 0;
    if (vkft_dataset_load(&desc, &t->ds) != VKFT_OK) return VKFT_ERR;
    desc.max_len = auto_max_len(t, desc.max_len);
    vkft_dataset_free(t->ds);
    t->ds = NULL;
  }
  if (vkft_dataset_load(&desc, &t->ds) != VKFT_OK) return VKFT_ERR;
  for (size_t i = 0; i < t->ds->n_issues; i++) trainer_message(t, "data: %s", t->ds->issues[i]);
  trainer_message(
      t, "data: %zu examples (%zu skipped, %zu without trained tokens), %zu tokens, %zu trained",
      t->ds->n_ok, t->ds->n_bad, t->ds->n_empty, t->ds->n_tokens, t->ds->n_trained);
  if (t->ds->n_ok == 0) return vkft_error("data: no usable example in the training data");
  t->max_len = t->ds->max_len;
  int status =
      cfg->data.eval[0]
          ? trainer_split_by_file(t, t->ds->n_examples, example_file, (int)n_files - 1, "example")
          : vkft_dataset_split(t->ds, cfg->data.eval_fraction, cfg->train.seed, &t->train_ids,
                               &t->n_train, &t->eval_ids, &t->n_eval);
  if (status != VKFT_OK) return VKFT_ERR;
  t->data_crc = data_checksum(t);
  return VKFT_OK;
}

int trainer_make_batcher(trainer *t, int quiet) {
  const vkft_train_config *cfg = t->cfg;
  if (t->pds) return pref_make_batcher(t, quiet);
  vkft_packer_desc pd = {.rows = (int)cfg->train.micro_batch,
                         .max_len = (int)t->max_len,
                         .packing = cfg->data.packing ? 0 : -1,
                         .seed = cfg->train.seed,
                         .no_shuffle = !cfg->train.shuffle};
  if (vkft_packer_create(t->ds, t->train_ids, t->n_train, &pd, &t->packer) != VKFT_OK)
    return VKFT_ERR;
  if (quiet) return VKFT_OK;
  for (int f = 0; cfg->data.train_count > 1 && f < cfg->data.train_count; f++) {
    size_t n, draws = vkft_packer_file_draws(t->packer, (size_t)f, &n);
    trainer_message(t, "data mix: %s: %zu examples x weight %g -> %zu per epoch",
                    cfg->data.train[f].path, n, cfg->data.train[f].weight, draws);
  }
  if (cfg->data.eval[0])
    trainer_message(t, "data.eval: %zu examples from %s", t->n_eval, cfg->data.eval);
  return VKFT_OK;
}

vkft_model_desc vkft_train_model_desc(const vkft_train_config *cfg, int64_t rows, int64_t max_len) {
  double scale = cfg->lora.use_rslora ? cfg->lora.alpha / sqrt((double)cfg->lora.r)
                                      : cfg->lora.alpha / (double)cfg->lora.r;
  vkft_model_desc md = {.dir = cfg->model,
                        .max_tokens = rows * max_len,
                        .micro_batches = (int)cfg->train.grad_accum,
                        .training = 1,
                        .full = cfg->full,
                        .lora_r = cfg->lora.r,
                        .lora_scale = scale,
                        .lora_targets = cfg->lora.targets,
                        .modules_to_save = cfg->lora.modules_to_save,
                        .seed = cfg->train.seed,
                        .grad_checkpointing = cfg->train.grad_checkpointing,
                        .lora_dropout = cfg->full ? 0.0 : cfg->lora.dropout,
                        .use_dora = !cfg->full && cfg->lora.use_dora,
                        .quant_block = (int)cfg->quant.block_size,
                        .quant_double = cfg->quant.double_quant,
                        .pref_pairs = strcmp(cfg->objective, "sft") ? rows / 2 : 0};
  if (vkft_dtype_parse(cfg->quant.base, &md.quant_dtype) != 0) md.quant_dtype = VKFT_F32;
  return md;
}

int vkft_train_vocab_size(const vkft_train_config *cfg, int64_t model_vocab, int64_t *vocab) {
  *vocab = 0;
  if (!cfg->tokens.add_count) return VKFT_OK;
  vkft_tokenizer *tok;
  if (vkft_tokenizer_load(cfg->model, &tok) != VKFT_OK) return VKFT_ERR;
  int status = VKFT_OK;
  for (int i = 0; i < cfg->tokens.add_count && status == VKFT_OK; i++) {
    int32_t id;
    status = vkft_tokenizer_add_special(tok, cfg->tokens.add[i], &id);
  }
  int64_t v = (int64_t)vkft_tokenizer_vocab_size(tok);
  vkft_tokenizer_free(tok);
  if (status == VKFT_OK && v > model_vocab) *vocab = v;
  return status;
}

int vkft_train_model_desc_at(const vkft_train_config *cfg, int64_t mb, int64_t max_len, int world,
                             int64_t vocab_size, vkft_model_desc *md) {
  int64_t ga;
  if (vkft_train_config_grad_accum(cfg, mb, world, &ga, NULL, 0) != VKFT_OK) return VKFT_ERR;
  *md = vkft_train_model_desc(cfg, strcmp(cfg->objective, "sft") ? 2 * mb : mb, max_len);
  md->micro_batches = (int)ga;
  md->vocab_size = vocab_size;
  return VKFT_OK;
}

/* The device bytes of a loaded (or planned) model's memory plan with AdamW's two fp32 moments
 * of every trainable tensor: what a run holds on the device. */
static uint64_t plan_total(vkft_model *m, vkft_model_memory *mem) {
  vkft_model_memory_plan(m, mem);
  vkft_param *params;
  int n;
  vkft_model_params(m, &params, &n);
  uint64_t adam = 0;
  for (int i = 0; i < n; i++)
    if (params[i].trainable) adam += 2 * (uint64_t)params[i].value->n * 4;
  return mem->weights + mem->trainable + mem->gradients + adam + mem->activations + mem->scratch;
}

int vkft_train_plan_bytes(const vkft_model_desc *desc, uint64_t *bytes) {
  vkft_model_desc md = *desc;
  md.plan_only = 1;
  vkft_model *m;
  if (vkft_model_load(NULL, &md, &m) != VKFT_OK) return VKFT_ERR;
  vkft_model_memory mem;
  *bytes = plan_total(m, &mem);
  vkft_model_free(m);
  return VKFT_OK;
}

int trainer_load_model(trainer *t) {
  const vkft_train_config *cfg = t->cfg;
  vkft_model_desc md = vkft_train_model_desc(cfg, t->rows, t->max_len);
  md.vocab_size = t->vocab_size;
  md.plan_only = t->opt->dry_run;
  if (vkft_model_load(t->be, &md, &t->model) != VKFT_OK) return VKFT_ERR;
  vkft_model_params(t->model, &t->params, &t->n_params);
  for (int i = 0; i < t->n_params && !t->quant_name[0]; i++) {
    const vkft_tensor *v = t->params[i].value;
    if (!vkft_dtype_is_quantized(v->dtype)) continue;
    snprintf(t->quant_name, sizeof t->quant_name, "%s", vkft_dtype_name(v->dtype));
    snprintf(t->quant_note, sizeof t->quant_note, " (projections in %s, blocks of %d%s)",
             t->quant_name, v->quant.blocksize, v->quant.nested ? ", double-quantized scales" : "");
  }
  if (t->opt->dry_run) return VKFT_OK;
  if (setup_optimizer(t) != VKFT_OK) return VKFT_ERR;
  if (cfg->full || !cfg->lora.init[0]) return VKFT_OK;
  vkft_adapter_info info; /* continue from an existing PEFT adapter */
  if (vkft_adapter_read_config(cfg->lora.init, &info) != VKFT_OK) return VKFT_ERR;
  if (info.r != cfg->lora.r || info.targets != cfg->lora.targets ||
      info.modules_to_save != cfg->lora.modules_to_save || info.use_dora != cfg->lora.use_dora)
    return vkft_error("%s: the adapter's r / target_modules / modules_to_save / use_dora differ "
                      "from the config's lora section",
                      cfg->lora.init);
  if (vkft_model_apply_adapter(t->model, cfg->lora.init) != VKFT_OK) return VKFT_ERR;
  trainer_message(t, "LoRA weights initialised from %s", cfg->lora.init);
  return VKFT_OK;
}

/* The memory plan, and in a dry run whether it fits the device's budget. */
static void report_plan(trainer *t) {
  vkft_model_memory mem;
  uint64_t total = plan_total(t->model, &mem);
  uint64_t adam =
      total - (mem.weights + mem.trainable + mem.gradients + mem.activations + mem.scratch);
  trainer_message(t,
                  "memory plan: weights %.1f MiB%s, trainable %.1f MiB, gradients %.1f MiB, "
                  "optimizer %.1f MiB, activations %.1f MiB, scratch %.1f MiB: %.1f MiB in all",
                  mem.weights / MiB, t->quant_note, mem.trainable / MiB, mem.gradients / MiB,
                  adam / MiB, mem.activations / MiB, mem.scratch / MiB, total / MiB);
  if (t->dist) {
    uint64_t device = 0, host = 0;
    vkft_dist_grads_memory(t->reducer, &device, &host);
    trainer_message(
        t,
        "data parallel: %d ranks x %lld micro-batches per step (the bits of one "
        "process with train.grad_accum %lld)%s; the gradient exchange holds %.1f MiB "
        "of device and %.1f MiB of host memory per rank",
        vkft_dist_size(t->dist), (long long)t->cfg->train.grad_accum, (long long)t->step_batches,
        t->cfg->train.zero ? ", AdamW state sharded (ZeRO-1)" : "", device / MiB, host / MiB);
  }
  if (mem.host)
    trainer_message(t,
                    "the embedding table (%.1f MiB) stays in host memory: a step uploads only "
                    "the rows its tokens use",
                    mem.host / MiB);
  trainer_message(t,
                  "plan: %lld optimizer steps, %lld x %lld tokens per micro-batch, %lld "
                  "micro-batches per step",
                  (long long)t->total_steps, (long long)t->rows, (long long)t->max_len,
                  (long long)t->step_batches); /* over all ranks */
  if (!t->opt->dry_run) return;
  vkft_device *dev = t->be ? vkft_backend_device(t->be) : NULL;
  if (!dev) {
    trainer_message(t, "dry run: no device to compare the plan with");
    return;
  }
  uint64_t budget = vkft_device_memory_budget(dev), used = vkft_device_memory_in_use(dev);
  uint64_t left = budget > used ? budget - used : 0;
  trainer_message(t, "dry run: the plan %s the budget of %s (%.1f MiB free of %.1f MiB)",
                  total <= left ? "fits" : "does NOT fit", vkft_device_get_info(dev)->name,
                  left / MiB, budget / MiB);
}

/* --resume: the given checkpoint, or the newest one that verifies, into t->resume_dir ("" when
 * there is none). Before the model loads: a micro_batch "auto" run takes the checkpoint's. */
static int resume_locate(trainer *t) {
  char *dir = t->resume_dir;
  int writer = vkft_dist_rank(t->dist) == 0;
  dir[0] = 0;
  if (!strcmp(t->opt->resume, "auto")) {
    if (writer && checkpoint_find_latest(t, dir, sizeof t->resume_dir) != VKFT_OK) return VKFT_ERR;
  } else {
    snprintf(dir, sizeof t->resume_dir, "%s", t->opt->resume);
  }
  /* data parallel: rank 0's choice; every rank reads it (output.dir must be shared) */
  if (vkft_dist_agree(t->dist, VKFT_OK) != VKFT_OK) return VKFT_ERR;
  vkft_dist_bcast(t->dist, dir, sizeof t->resume_dir, 0);
  return VKFT_OK;
}

/* --resume: the checkpoint resume_locate found. */
static int resume(trainer *t) {
  const char *dir = t->resume_dir;
  int writer = vkft_dist_rank(t->dist) == 0;
  if (!dir[0]) {
    trainer_message(t, "no checkpoint in %s: starting from the beginning", t->cfg->output.dir);
    return VKFT_OK;
  }
  if (checkpoint_load(t, dir) != VKFT_OK) return VKFT_ERR;
  trainer_message(t, "resumed from %s at step %lld", dir, (long long)t->step);
  /* checkpoints newer than this one failed to verify: they belong to an abandoned future */
  return writer ? checkpoint_prune(t->cfg->output.dir, 0, t->step, -1) : VKFT_OK;
}

static int save_checkpoint(trainer *t, const char *dir) {
  if (checkpoint_save(t, dir) != VKFT_OK) return VKFT_ERR;
  return checkpoint_prune(t->cfg->output.dir, t->cfg->output.keep_last, -1,
                          t->cfg->output.load_best_model_at_end ? t->best_step : -1);
}

static int evaluate(trainer *t) {
  double loss;
  int64_t tokens;
  if (t->n_eval == 0 || !strcmp(t->cfg->output.eval_strategy, "no")) return VKFT_OK;
  if (vkft_dist_rank(t->dist) != 0) return VKFT_OK; /* data parallel: rank 0 evaluates */
  if (eval_loss(t, &loss, &tokens) != VKFT_OK) return VKFT_ERR;
  if (!isfinite(loss))
    return vkft_error_with(VKFT_ERR_NUMERIC, "step %lld: the eval loss is %g", (long long)t->step,
                           loss);
  /* early stopping's count (transformers' EarlyStoppingCallback: an improvement lowers the best
   * loss by more than the threshold) and the best so far (load_best_model_at_end) */
  int first = t->best_step == 0;
  t->last_eval_step = t->step;
  if (first || loss < t->best_eval - t->cfg->output.early_stopping_threshold)
    t->evals_without_gain = 0;
  else
    t->evals_without_gain++;
  if (first || loss < t->best_eval) t->best_eval = loss, t->best_step = t->step;
  char line[1024];
  snprintf(line, sizeof line, "{\"step\": %lld, \"eval_loss\": %.9g, \"eval_tokens\": %lld%s}",
           (long long)t->step, loss, (long long)tokens, t->pbatcher ? t->eval_extra : "");
  if (t->opt->on_step) {
    vkft_step_report r = {.step = t->step,
                          .total_steps = t->total_steps,
                          .loss = loss,
                          .trained_tokens = tokens,
                          .is_eval = 1};
    t->opt->on_step(&r, t->opt->user);
  }
  if (metrics_append(t, line) != VKFT_OK) return VKFT_ERR;
  report_refresh(t, "training", 0);
  return VKFT_OK;
}

/* 1 when a "steps"/"epoch"/"no" strategy acts after this step */
static int due(const char *strategy, int64_t every, int64_t step, int epoch_end) {
  if (!strcmp(strategy, "epoch")) return epoch_end;
  return !strcmp(strategy, "steps") && every > 0 && step % every == 0;
}

/* whether the step just done used the epoch's last batch (a step never spans two epochs) */
static int epoch_ended(trainer *t, int *ended) {
  size_t n;
  if (epoch_batches(t, t->epoch, &n) != VKFT_OK) return VKFT_ERR;
  *ended = t->index >= n;
  return VKFT_OK;
}

/* Runs steps until the end, early stopping or an interruption; *interrupted tells the last. */
static int run_steps(trainer *t, int *interrupted) {
  const vkft_train_config *cfg = t->cfg;
  double t0 = vkft_time_s();
  int64_t first_step = t->step;
  double elapsed_at_start = t->elapsed_before;
  int writer = vkft_dist_rank(t->dist) == 0;
  *interrupted = 0;
  while (t->step < t->total_steps) {
    vkft_step_report r = {0};
    double s0 = vkft_time_s();
    if (train_step(t, &r) != VKFT_OK) return VKFT_ERR;
    if (!isfinite(r.loss) || !isfinite(r.grad_norm))
      return vkft_error_with(VKFT_ERR_NUMERIC,
                             "step %lld: the loss is %g and the gradient norm %g: training "
                             "diverged (nothing of this step is saved; lower train.lr, or check "
                             "the model's weights and config)",
                             (long long)r.step, r.loss, r.grad_norm);
    double now = vkft_time_s();
    r.elapsed_s = elapsed_at_start + (now - t0);
    r.tokens_per_s = (double)r.tokens / (now - s0);
    r.eta_s = (now - t0) / (double)(t->step - first_step) * (double)(t->total_steps - t->step);
    char line[1536];
    char quant[32] = "";
    if (t->quant_name[0]) snprintf(quant, sizeof quant, ", \"base\": \"%s\"", t->quant_name);
    snprintf(
        line, sizeof line,
        "{\"step\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"tokens\": %lld, "
        "\"trained_tokens\": %lld, \"tokens_per_s\": %.1f, \"elapsed_s\": %.3f%s%s}",
        (long long)r.step, r.loss, r.lr, r.grad_norm, (long long)r.tokens,
        (long long)r.trained_tokens, r.tokens_per_s, r.elapsed_s, quant,
        t->pbatcher ? t->step_extra : "");
    if (writer && metrics_append(t, line) != VKFT_OK) return VKFT_ERR;
    if (t->opt->on_step) t->opt->on_step(&r, t->opt->user);
    report_refresh(t, "training", 0);
    int epoch_end;
    if (epoch_ended(t, &epoch_end) != VKFT_OK) return VKFT_ERR;
    int eval_now = t->step < t->total_steps &&
                   due(cfg->output.eval_strategy, cfg->output.eval_every, t->step, epoch_end);
    if (eval_now && evaluate(t) != VKFT_OK) return VKFT_ERR;
    int patience = (int)cfg->output.early_stopping_patience; /* one process (vkft_train) */
    t->early_stopped = eval_now && patience > 0 && t->evals_without_gain >= patience;
    int64_t stop = vkft_interrupted() ||
                   (t->opt->stop_after > 0 && t->step - first_step >= t->opt->stop_after);
    /* data parallel: rank 0 wrote, and a rank interrupted stops every rank at this step */
    if (vkft_dist_agree_max(t->dist, VKFT_OK, &stop, 1) != VKFT_OK) return VKFT_ERR;
    /* an interruption during the last step lets the run finish: the export follows anyway */
    if (stop && (t->step == t->total_steps || t->early_stopped)) stop = 0;
    if (due(cfg->output.save_strategy, cfg->output.save_every, t->step, epoch_end) || stop) {
      char dir[2048];
      snprintf(dir, sizeof dir, "%s/checkpoint-%lld", cfg->output.dir, (long long)t->step);
      t->elapsed_before = r.elapsed_s;
      if (vkft_dist_grads_gather_state(t->reducer, t->adam_m, t->adam_v) != VKFT_OK)
        return VKFT_ERR; /* ZeRO-1: rank 0 writes every rank's part of the AdamW state */
      if (writer && save_with_retries(t, "a checkpoint", save_checkpoint, dir) != VKFT_OK)
        return VKFT_ERR;
      trainer_message(t, "checkpoint written: %s", dir);
    }
    if (stop) {
      *interrupted = 1;
      return VKFT_OK;
    }
    if (t->early_stopped) {
      trainer_message(t,
                      "early stopping at step %lld: the eval loss has not improved by more than "
                      "%g in %d evaluations (best %.6g at step %lld)",
                      (long long)t->step, cfg->output.early_stopping_threshold, patience,
                      t->best_eval, (long long)t->best_step);
      return VKFT_OK;
    }
  }
  return VKFT_OK;
}

/* load_best_model_at_end: the checkpoint of the lowest eval loss replaces the trained state
 * before the export (the step count stays the run's) */
static int load_best(trainer *t) {
  if (t->best_step == 0 || t->best_step == t->step) return VKFT_OK; /* the model is the best */
  char dir[2048];
  snprintf(dir, sizeof dir, "%s/checkpoint-%lld", t->cfg->output.dir, (long long)t->best_step);
  int64_t step = t->step;
  double best = t->best_eval;
  if (checkpoint_load(t, dir) != VKFT_OK)
    return vkft_error_prefix("load_best_model_at_end: the best checkpoint %s", dir);
  trainer_message(t,
                  "load_best_model_at_end: saving step %lld's model (eval loss %.6g), not step "
                  "%lld's",
                  (long long)t->step, best, (long long)step);
  t->step = step;
  return VKFT_OK;
}

void trainer_free_model(trainer *t) {
  for (int i = 0; i < t->n_params; i++) {
    if (t->adam_m) vkft_tensor_free(t->be, &t->adam_m[i]);
    if (t->adam_v) vkft_tensor_free(t->be, &t->adam_v[i]);
  }
  if (t->be) {
    vkft_tensor_free(t->be, &t->norm_slots);
    vkft_tensor_free(t->be, &t->norm_out);
  }
  free(t->adam_m);
  free(t->adam_v);
  free(t->grads);
  vkft_dist_grads_free(t->reducer);
  vkft_model_free(t->model);
  vkft_packer_free(t->packer);
  vkft_batch_free(&t->batch);
  vkft_pref_batcher_free(t->pbatcher);
  vkft_pref_batch_free(&t->pbatch);
  t->adam_m = t->adam_v = t->grads = NULL;
  t->reducer = NULL;
  t->model = NULL;
  t->params = NULL;
  t->n_params = t->n_grads = 0;
  t->packer = NULL;
  t->pbatcher = NULL;
}

static void trainer_free(trainer *t) {
  trainer_free_model(t);
  vkft_pref_free(t->pds);
  free(t->ref_logps);
  free(t->train_ids);
  free(t->eval_ids);
  free(t->report);
  free(t->config_json);
  free(t->resolved);
  vkft_dataset_free(t->ds);
  vkft_tokenizer_free(t->tok);
  outdir_release(t);
}

int vkft_train(vkft_backend *be, const vkft_train_config *config, const vkft_train_options *opt,
               vkft_train_result *result) {
  /* the configuration as run: micro_batch "auto" and batch_size resolved (trainer_resolve_batch)
   */
  const vkft_train_config *cfg = config;
  trainer t = {.be = be, .cfg = cfg, .opt = opt, .best_eval = INFINITY, .dist = opt->dist};
  int writer = vkft_dist_rank(t.dist) == 0;
  if (result) memset(result, 0, sizeof *result);
  if (cfg->train.batch_size == 0 && cfg->train.grad_accum > 64)
    return vkft_error("config: train.grad_accum above 64");
  /* data parallel covers the token objective; the preference objectives' per-pair losses and
   * reference log-probs are not exchanged between ranks (yet): refused, on every rank alike */
  if (vkft_dist_size(t.dist) > 1 && strcmp(cfg->objective, "sft"))
    return vkft_dist_settle(
        t.dist, vkft_error("config: \"objective\": \"%s\" does not run data-parallel (under "
                           "mpirun with %d ranks): use one process, or objective sft",
                           cfg->objective, vkft_dist_size(t.dist)));
  /* early stopping and the best checkpoint rest on rank 0's evaluations alone: refused too */
  if (vkft_dist_size(t.dist) > 1 &&
      (cfg->output.early_stopping_patience > 0 || cfg->output.load_best_model_at_end))
    return vkft_dist_settle(
        t.dist, vkft_error("config: output.%s does not run data-parallel (under mpirun with %d "
                           "ranks) yet: use one process",
                           cfg->output.early_stopping_patience > 0 ? "early_stopping_patience"
                                                                   : "load_best_model_at_end",
                           vkft_dist_size(t.dist)));
  if (!be && !opt->dry_run) return vkft_error_with(VKFT_ERR_INTERNAL, "train: no backend");
  int status = VKFT_ERR, interrupted = 0;
  char report_status[64] = "finished";
  if (!(t.report = calloc(1, sizeof *t.report))) return vkft_error_nomem();
  if (!(t.resolved = malloc(sizeof *t.resolved))) {
    free(t.report);
    return vkft_error_nomem();
  }
  *t.resolved = *config;
  t.cfg = cfg = t.resolved;
  /* the output folder's rules first: a run that may not start fails before the long loads */
  if (!opt->dry_run && writer &&
      outdir_prepare(&t, opt->resume != NULL || opt->lr_find, opt->overwrite) != VKFT_OK)
    goto done;
  vkft_device *dev = be ? vkft_backend_device(be) : NULL;
  if (dev) {
    char line[VKFT_REPORT_LINE];
    snprintf(line, sizeof line, "device: %s", vkft_device_get_info(dev)->name);
    vkft_report_info_add_line(t.report, line);
  }
  if (selftest(&t) != VKFT_OK || load_data(&t) != VKFT_OK) goto done;
  if (opt->resume && !opt->dry_run && resume_locate(&t) != VKFT_OK) goto done;
  /* micro_batch and grad_accum as run; the batches of that size */
  if (trainer_resolve_batch(&t) != VKFT_OK || trainer_make_batcher(&t, 0) != VKFT_OK) goto done;
  if (count_steps(&t, &t.total_steps) != VKFT_OK || trainer_load_model(&t) != VKFT_OK) goto done;
  if (opt->lr_find) t.total_steps = opt->lr_find->steps;
  t.config_json = vkft_train_config_to_json(cfg); /* NULL: from disk */
  /* data parallel: every rank was given the same configuration and data */
  uint32_t job = t.config_json ? vkft_crc32(t.data_crc, t.config_json, strlen(t.config_json)) : 0;
  if (vkft_dist_same(t.dist, VKFT_OK, job, "the configuration or the training data") != VKFT_OK)
    goto done;
  report_plan(&t);
  t.report->total_steps = t.total_steps;
  t.report->config_json = t.config_json;
  if (opt->dry_run) {
    status = VKFT_OK;
    goto done;
  }
  /* DPO's reference log-probs come from the model as it starts, before a checkpoint loads */
  if (t.pbatcher && pref_reference(&t) != VKFT_OK) goto done;
  if (opt->lr_find) {
    vkft_interrupt_install();
    status = lr_find_run(&t);
    goto done;
  }
  if (opt->resume && resume(&t) != VKFT_OK) goto done;
  /* a finished run resumed at its last step evaluates again: its old final eval line goes */
  if (writer && metrics_truncate(&t, t.step, t.step == t.total_steps) != VKFT_OK) goto done;
  vkft_interrupt_install();
  if (run_steps(&t, &interrupted) != VKFT_OK) goto done;
  if (interrupted) {
    trainer_message(&t, "interrupted (%s) at step %lld: resume with --resume auto",
                    vkft_interrupt_name()[0] ? vkft_interrupt_name() : "stop-after",
                    (long long)t.step);
    snprintf(report_status, sizeof report_status, "interrupted at step %lld", (long long)t.step);
    status = VKFT_OK;
    goto done;
  }
  /* the last evaluation, unless early stopping has just made it at this step */
  if (t.last_eval_step != t.step && evaluate(&t) != VKFT_OK) goto done;
  if (t.early_stopped)
    snprintf(report_status, sizeof report_status, "finished (early stopping at step %lld)",
             (long long)t.step);
  if (cfg->output.load_best_model_at_end && load_best(&t) != VKFT_OK) goto done;
  if (writer && save_with_retries(&t, cfg->full ? "the model" : "the adapter", save_final,
                                  cfg->output.dir) != VKFT_OK)
    goto done;
  trainer_message(&t, "saved %s in %s", cfg->full ? "the model" : "the adapter", cfg->output.dir);
  char summary[512];
  if (writer && vkft_report_loss_summary(cfg->output.dir, 50, summary, sizeof summary) == VKFT_OK)
    trainer_message(&t, "%s", summary);
  status = VKFT_OK;
done:
  /* data parallel: every rank ends here once; the last agreement (or, after a failure of its
   * own, the one that meets the other ranks') */
  status = vkft_dist_settle(t.dist, status);
  if (result) {
    result->steps_done = t.step;
    result->interrupted = interrupted;
  }
  if (status != VKFT_OK) { /* the error message survives the clean-up */
    vkft_errcode code = vkft_error_code();
    char why[1024];
    snprintf(why, sizeof why, "%s", vkft_error_message());
    snprintf(report_status, sizeof report_status, "stopped at step %lld: %s", (long long)t.step,
             code == VKFT_ERR_NUMERIC ? "diverged" : "failed");
    if (t.step > 0) report_refresh(&t, report_status, 1);
    trainer_free(&t);
    return vkft_error_with(code, "%s", why);
  }
  report_refresh(&t, report_status, 1);
  trainer_free(&t);
  return VKFT_OK;
}
