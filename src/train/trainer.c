/* The training loop (see vkft/trainer.h). One optimizer step = up to grad_accum micro-batches
 * uploaded first, then one recorded stream: zero gradients, forward+loss+backward of each
 * micro-batch with grad_scale = 1 / (trained tokens of the whole step) so accumulation gives
 * exactly the big-batch gradient, the global gradient norm with its clip coefficient, and
 * AdamW on every trainable tensor — submitted once. */
#include "trainer_internal.h"

#include "vkft/error.h"
#include "vkft/model_config.h"
#include "vkft/opcases.h"
#include "vkft/platform.h"
#include "vkft/schedule.h"
#include "vkft/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void message(const trainer *t, const char *fmt, ...) VKFT_PRINTF(2, 3);
#include <stdarg.h>
static void message(const trainer *t, const char *fmt, ...) {
  if (!t->opt->on_message) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  t->opt->on_message(line, t->opt->user);
}

static int selftest(trainer *t) {
  if (t->opt->skip_selftest || !vkft_backend_device(t->be)) return VKFT_OK;
  int count, failed = 0;
  const vkft_op_case *cases = vkft_op_cases(&count);
  for (int i = 0; i < count; i++) {
    if (!(cases[i].flags & VKFT_CASE_SELFTEST)) continue;
    vkft_op_result r;
    if (vkft_op_case_run(t->be, &cases[i], 0, &r) != VKFT_OK) return VKFT_ERR;
    if (!r.ok || !r.deterministic) {
      failed++;
      message(t, "selftest: %s %s %s FAILED (error %.2e, tolerance %.2e)", cases[i].op,
              vkft_dtype_name(cases[i].dtype), r.shape, r.max_err, r.tol);
    }
  }
  if (failed)
    return vkft_error("the op self-check failed on this device (%d case%s): its results cannot be "
                      "trusted; see `vkft selftest`",
                      failed, failed == 1 ? "" : "s");
  message(t, "selftest: every op matches the C reference on this device");
  return VKFT_OK;
}

static int load_data(trainer *t) {
  const vkft_train_config *cfg = t->cfg;
  vkft_data_file_desc files[VKFT_CFG_MAX_LIST];
  for (int i = 0; i < cfg->data.train_count; i++)
    files[i] = (vkft_data_file_desc){cfg->data.train[i].path, cfg->data.train[i].weight};
  vkft_data_format format = VKFT_FORMAT_AUTO;
  if (vkft_data_format_parse(cfg->data.format, &format) != VKFT_OK)
    return vkft_error("config: data.format \"%s\" is not a known format", cfg->data.format);
  vkft_dataset_desc desc = {
      .model_dir = cfg->model,
      .files = files,
      .n_files = (size_t)cfg->data.train_count,
      .format = format,
      .template_name = strcmp(cfg->data.chat_template, "auto") ? cfg->data.chat_template : NULL,
      .max_len = (int)cfg->data.max_len,
      .train_on = cfg->data.train_on_all ? VKFT_TRAIN_ON_ALL : VKFT_TRAIN_ON_ASSISTANT};
  if (cfg->tokens.add_count) {
    /* new special tokens: the tokenizer learns them before the data is tokenized, and the
     * embeddings grow to cover their ids */
    vkft_model_config mc;
    if (vkft_model_config_load(cfg->model, &mc) != VKFT_OK ||
        vkft_tokenizer_load(cfg->model, &t->tok) != VKFT_OK)
      return VKFT_ERR;
    size_t before = vkft_tokenizer_vocab_size(t->tok);
    for (int i = 0; i < cfg->tokens.add_count; i++) {
      int32_t id;
      if (vkft_tokenizer_add_special(t->tok, cfg->tokens.add[i], &id) != VKFT_OK) return VKFT_ERR;
      if ((size_t)id >= before) t->added_ids[t->n_added++] = id;
      message(t, "tokens.add: %s has id %d%s", cfg->tokens.add[i], (int)id,
              (size_t)id >= before ? " (new)" : " (already in the vocabulary)");
    }
    int64_t v = (int64_t)vkft_tokenizer_vocab_size(t->tok);
    t->vocab_size = v > mc.vocab_size ? v : 0;
    if (t->vocab_size &&
        !(cfg->full || (cfg->lora.modules_to_save & (VKFT_MOD_EMBED | VKFT_MOD_LM_HEAD))))
      message(t, "warning: new tokens get the mean embedding; without lora.modules_to_save "
                 "[\"embed_tokens\", \"lm_head\"] their embeddings are not trained");
    desc.tokenizer = t->tok;
  }
  if (vkft_dataset_load(&desc, &t->ds) != VKFT_OK) return VKFT_ERR;
  for (size_t i = 0; i < t->ds->n_issues; i++) message(t, "data: %s", t->ds->issues[i]);
  message(t,
          "data: %zu examples (%zu skipped, %zu without trained tokens), %zu tokens, %zu trained",
          t->ds->n_ok, t->ds->n_bad, t->ds->n_empty, t->ds->n_tokens, t->ds->n_trained);
  if (t->ds->n_ok == 0) return vkft_error("data: no usable example in the training data");
  t->max_len = t->ds->max_len;
  if (vkft_dataset_split(t->ds, cfg->data.eval_fraction, cfg->train.seed, &t->train_ids,
                         &t->n_train, &t->eval_ids, &t->n_eval) != VKFT_OK)
    return VKFT_ERR;
  vkft_packer_desc pd = {.rows = (int)cfg->train.micro_batch,
                         .max_len = (int)t->max_len,
                         .packing = cfg->data.packing ? 0 : -1,
                         .seed = cfg->train.seed,
                         .no_shuffle = !cfg->train.shuffle};
  return vkft_packer_create(t->ds, t->train_ids, t->n_train, &pd, &t->packer);
}

/* Total optimizer steps: max_steps, or per epoch ceil(batches / grad_accum) (a step does not
 * span epochs, like transformers' Trainer). */
static int64_t count_steps(trainer *t) {
  if (t->cfg->train.max_steps > 0) return t->cfg->train.max_steps;
  int64_t total = 0, ga = t->cfg->train.grad_accum;
  for (int64_t e = 0; e < t->cfg->train.epochs; e++)
    total += ((int64_t)vkft_packer_epoch_batches(t->packer, (uint64_t)e) + ga - 1) / ga;
  return total;
}

static int setup_optimizer(trainer *t) {
  vkft_model_params(t->model, &t->params, &t->n_params);
  t->adam_m = calloc((size_t)t->n_params, sizeof *t->adam_m);
  t->adam_v = calloc((size_t)t->n_params, sizeof *t->adam_v);
  t->grads = calloc((size_t)t->n_params, sizeof *t->grads);
  if (!t->adam_m || !t->adam_v || !t->grads) return vkft_error("out of host memory");
  if (vkft_begin(t->be) != VKFT_OK) return VKFT_ERR;
  for (int i = 0; i < t->n_params; i++) {
    vkft_param *p = &t->params[i];
    if (!p->trainable) continue;
    t->grads[t->n_grads++] = *p->grad;
    if (vkft_tensor_alloc(t->be, VKFT_F32, p->value->n, &t->adam_m[i]) ||
        vkft_tensor_alloc(t->be, VKFT_F32, p->value->n, &t->adam_v[i]) ||
        vkft_fill(t->be, &t->adam_m[i], 0.0, p->value->n) ||
        vkft_fill(t->be, &t->adam_v[i], 0.0, p->value->n)) {
      vkft_end(t->be);
      return vkft_error_prefix("optimizer state");
    }
  }
  if (vkft_tensor_alloc(t->be, VKFT_F32, vkft_grad_norm_slots(t->grads, t->n_grads),
                        &t->norm_slots) ||
      vkft_tensor_alloc(t->be, VKFT_F32, 2, &t->norm_out)) {
    vkft_end(t->be);
    return VKFT_ERR;
  }
  return vkft_end(t->be);
}

/* The next micro-batch of the data stream, or 0 at the end of the epoch / of the data. */
static int next_batch(trainer *t, int allow_new_epoch, int *got) {
  *got = 0;
  if (t->index >= vkft_packer_epoch_batches(t->packer, t->epoch)) {
    if (!allow_new_epoch) return VKFT_OK;
    t->epoch++;
    t->index = 0;
  }
  if (vkft_packer_batch(t->packer, t->epoch, t->index, &t->batch) != VKFT_OK) return VKFT_ERR;
  t->index++;
  *got = 1;
  return VKFT_OK;
}

/* Flattens the (B, T) batch for the model: sequence ids made distinct across rows, padding of
 * each row its own negative id. Returns the trained targets after the model's shift. */
static int upload_batch(trainer *t, int slot, int64_t *trained, int64_t *tokens) {
  vkft_batch *b = &t->batch;
  int64_t n = (int64_t)b->B * b->T;
  int32_t *seq = malloc((size_t)n * sizeof *seq);
  if (!seq) return vkft_error("out of host memory");
  for (int r = 0; r < b->B; r++)
    for (int i = 0; i < b->T; i++) {
      int64_t k = (int64_t)r * b->T + i;
      seq[k] = b->seq_ids[k] >= 0 ? r * 65536 + b->seq_ids[k] : -1 - r;
    }
  *trained = 0;
  for (int64_t k = 0; k + 1 < n; k++)
    *trained += seq[k + 1] == seq[k] && b->labels[k + 1] != VKFT_LABEL_IGNORE;
  *tokens = (int64_t)b->n_tokens;
  vkft_model_batch mb = {n, b->input_ids, b->labels, b->positions, seq};
  int status = vkft_model_set_batch(t->model, slot, &mb);
  free(seq);
  return status;
}

static int eval_loss(trainer *t, double *loss, int64_t *tokens) {
  *loss = 0;
  *tokens = 0;
  if (t->n_eval == 0) return VKFT_OK;
  vkft_packer *p;
  vkft_packer_desc pd = {.rows = (int)t->cfg->train.micro_batch,
                         .max_len = (int)t->max_len,
                         .packing = -1,
                         .no_shuffle = 1};
  if (vkft_packer_create(t->ds, t->eval_ids, t->n_eval, &pd, &p) != VKFT_OK) return VKFT_ERR;
  double sum = 0, count = 0;
  size_t n = vkft_packer_epoch_batches(p, 0);
  int status = VKFT_OK;
  for (size_t i = 0; i < n && status == VKFT_OK; i++) {
    int64_t trained, toks;
    double s, c;
    status = vkft_packer_batch(p, 0, i, &t->batch) || upload_batch(t, 0, &trained, &toks) ||
             vkft_begin(t->be) || vkft_model_forward_backward(t->model, 0, 0.0f, 0) ||
             vkft_end(t->be) || vkft_model_read_loss(t->model, 0, &s, &c);
    sum += s;
    count += c;
  }
  vkft_packer_free(p);
  *loss = count > 0 ? sum / count : 0;
  *tokens = (int64_t)count;
  return status;
}

static int write_metrics(const char *path, const char *line) {
  FILE *f = vkft_fopen(path, "ab");
  if (!f) return vkft_error("%s: cannot open for appending", path);
  int ok = fputs(line, f) >= 0 && fputc('\n', f) != EOF;
  ok = fclose(f) == 0 && ok;
  return ok ? VKFT_OK : vkft_error("%s: write failed", path);
}

static int do_eval(trainer *t, const char *metrics_path) {
  double loss;
  int64_t tokens;
  if (t->n_eval == 0 || eval_loss(t, &loss, &tokens) != VKFT_OK)
    return t->n_eval ? VKFT_ERR : VKFT_OK;
  char line[256];
  snprintf(line, sizeof line, "{\"step\": %lld, \"eval_loss\": %.9g, \"eval_tokens\": %lld}",
           (long long)t->step, loss, (long long)tokens);
  if (t->opt->on_step) {
    vkft_step_report r = {.step = t->step,
                          .total_steps = t->total_steps,
                          .loss = loss,
                          .trained_tokens = tokens,
                          .is_eval = 1};
    t->opt->on_step(&r, t->opt->user);
  }
  return write_metrics(metrics_path, line);
}

static int train_step(trainer *t, vkft_step_report *report) {
  const vkft_train_config *cfg = t->cfg;
  int slots = 0, got;
  int64_t trained = 0, tokens = 0;
  for (int i = 0; i < cfg->train.grad_accum; i++) {
    if (next_batch(t, i == 0, &got) != VKFT_OK) return VKFT_ERR;
    if (!got) break;
    int64_t n_trained, n_tokens;
    if (upload_batch(t, slots, &n_trained, &n_tokens) != VKFT_OK) return VKFT_ERR;
    trained += n_trained;
    tokens += n_tokens;
    slots++;
  }
  if (trained == 0)
    return vkft_error("step %lld: no trained token in the step's batches", (long long)t->step + 1);
  int64_t step = t->step + 1;
  vkft_schedule_kind kind = VKFT_SCHEDULE_COSINE;
  vkft_schedule_parse(cfg->train.schedule, &kind);
  int64_t warmup = cfg->train.warmup_steps > 0
                       ? cfg->train.warmup_steps
                       : vkft_warmup_steps(t->total_steps, cfg->train.warmup_ratio);
  vkft_schedule sched = {kind, cfg->train.lr, warmup, t->total_steps};
  double lr = vkft_schedule_lr(&sched, step);
  float grad_scale = (float)(1.0 / (double)trained);
  if (vkft_begin(t->be) || vkft_model_zero_grads(t->model)) return VKFT_ERR;
  for (int s = 0; s < slots; s++) {
    /* dropout masks: a function of (seed, step, micro-batch), so a resumed run draws the same */
    uint64_t z = cfg->train.seed * 0x9e3779b97f4a7c15ull + (uint64_t)step * 64 + (uint64_t)s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    vkft_model_set_dropout_seed(t->model, (uint32_t)(z ^ (z >> 31)));
    if (vkft_model_forward_backward(t->model, s, grad_scale, 1) != VKFT_OK) return VKFT_ERR;
  }
  if (vkft_grad_norm(t->be, t->grads, t->n_grads, &t->norm_slots, &t->norm_out,
                     (float)cfg->train.max_grad_norm) != VKFT_OK)
    return VKFT_ERR;
  vkft_tensor clip = vkft_tensor_view(&t->norm_out, 1, 1);
  for (int i = 0; i < t->n_params; i++) {
    vkft_param *p = &t->params[i];
    if (!p->trainable) continue;
    vkft_adamw_hparams hp = {
        .lr = lr,
        .beta1 = cfg->train.adam_beta1,
        .beta2 = cfg->train.adam_beta2,
        .eps = cfg->train.adam_epsilon,
        .weight_decay = p->decay || cfg->train.weight_decay_all ? cfg->train.weight_decay : 0.0,
        .step = step};
    if (vkft_adamw(t->be, p->value, p->grad, &t->adam_m[i], &t->adam_v[i], &clip, &hp, p->value->n))
      return VKFT_ERR;
  }
  if (vkft_end(t->be) != VKFT_OK) return VKFT_ERR;
  double loss_sum = 0, count = 0;
  for (int s = 0; s < slots; s++) {
    double ls, c;
    if (vkft_model_read_loss(t->model, s, &ls, &c) != VKFT_OK) return VKFT_ERR;
    loss_sum += ls;
    count += c;
  }
  float norm[2];
  if (vkft_tensor_read(t->be, &t->norm_out, norm) != VKFT_OK) return VKFT_ERR;
  t->step = step;
  t->tokens_seen += tokens;
  report->step = step;
  report->total_steps = t->total_steps;
  report->loss = count > 0 ? loss_sum / count : 0;
  report->lr = lr;
  report->grad_norm = norm[0];
  report->tokens = tokens;
  report->trained_tokens = trained;
  return VKFT_OK;
}

static void trainer_free(trainer *t) {
  for (int i = 0; i < t->n_params; i++) {
    if (t->adam_m) vkft_tensor_free(t->be, &t->adam_m[i]);
    if (t->adam_v) vkft_tensor_free(t->be, &t->adam_v[i]);
  }
  vkft_tensor_free(t->be, &t->norm_slots);
  vkft_tensor_free(t->be, &t->norm_out);
  free(t->adam_m);
  free(t->adam_v);
  free(t->grads);
  vkft_model_free(t->model);
  vkft_packer_free(t->packer);
  vkft_batch_free(&t->batch);
  free(t->train_ids);
  free(t->eval_ids);
  vkft_dataset_free(t->ds);
  vkft_tokenizer_free(t->tok);
}

/* Keeps the metrics lines of steps <= step (a resumed run rewrites what came after). */
static int truncate_metrics(const char *path, int64_t step) {
  if (!vkft_file_exists(path)) return VKFT_OK;
  char *text;
  size_t size;
  if (vkft_file_read(path, &text, &size) != VKFT_OK) return VKFT_ERR;
  char *out = malloc(size + 1), *w = out;
  if (!out) {
    free(text);
    return vkft_error("out of host memory");
  }
  for (char *line = text; *line;) {
    char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line + 1) : strlen(line);
    const char *s = strstr(line, "\"step\": ");
    if (s && strtoll(s + 8, NULL, 10) <= step) memcpy(w, line, len), w += len;
    line += len;
  }
  int status = vkft_file_write_atomic(path, out, (size_t)(w - out));
  free(out);
  free(text);
  return status;
}

int vkft_train(vkft_backend *be, const vkft_train_config *cfg, const vkft_train_options *opt) {
  trainer t = {.be = be, .cfg = cfg, .opt = opt};
  int status = VKFT_ERR;
  if (cfg->train.grad_accum > 64) return vkft_error("config: train.grad_accum above 64");
  if (selftest(&t) != VKFT_OK || load_data(&t) != VKFT_OK) goto done;
  t.rows = cfg->train.micro_batch;
  t.total_steps = count_steps(&t);
  double scale = cfg->lora.use_rslora ? cfg->lora.alpha / sqrt((double)cfg->lora.r)
                                      : cfg->lora.alpha / (double)cfg->lora.r;
  vkft_model_desc md = {.dir = cfg->model,
                        .max_tokens = t.rows * t.max_len,
                        .micro_batches = (int)cfg->train.grad_accum,
                        .training = 1,
                        .full = cfg->full,
                        .lora_r = cfg->lora.r,
                        .lora_scale = scale,
                        .lora_targets = cfg->lora.targets,
                        .modules_to_save = cfg->lora.modules_to_save,
                        .seed = cfg->train.seed,
                        .grad_checkpointing = cfg->train.grad_checkpointing,
                        .vocab_size = t.vocab_size,
                        .lora_dropout = cfg->full ? 0.0 : cfg->lora.dropout};
  if (vkft_model_load(be, &md, &t.model) != VKFT_OK || setup_optimizer(&t) != VKFT_OK) goto done;
  if (!cfg->full && cfg->lora.init[0]) { /* continue from an existing PEFT adapter */
    vkft_adapter_info info;
    if (vkft_adapter_read_config(cfg->lora.init, &info) != VKFT_OK) goto done;
    if (info.r != cfg->lora.r || info.targets != cfg->lora.targets ||
        info.modules_to_save != cfg->lora.modules_to_save) {
      vkft_error("%s: the adapter's r / target_modules / modules_to_save differ from the config's "
                 "lora section",
                 cfg->lora.init);
      goto done;
    }
    if (vkft_model_apply_adapter(t.model, cfg->lora.init) != VKFT_OK) goto done;
    message(&t, "LoRA weights initialised from %s", cfg->lora.init);
  }
  vkft_model_memory mem;
  vkft_model_memory_plan(t.model, &mem);
  double MiB = 1024.0 * 1024.0;
  uint64_t adam = 0;
  for (int i = 0; i < t.n_params; i++)
    if (t.params[i].trainable) adam += 2 * (uint64_t)t.params[i].value->n * 4;
  message(&t,
          "memory plan: weights %.1f MiB, trainable %.1f MiB, gradients %.1f MiB, optimizer %.1f "
          "MiB, activations %.1f MiB, scratch %.1f MiB",
          mem.weights / MiB, mem.trainable / MiB, mem.gradients / MiB, adam / MiB,
          mem.activations / MiB, mem.scratch / MiB);
  message(
      &t,
      "plan: %lld optimizer steps, %lld x %lld tokens per micro-batch, %lld micro-batches per step",
      (long long)t.total_steps, (long long)t.rows, (long long)t.max_len,
      (long long)cfg->train.grad_accum);
  if (opt->dry_run) {
    status = VKFT_OK;
    goto done;
  }
  if (vkft_mkdirs(cfg->output.dir) != VKFT_OK) goto done;
  char metrics[2048];
  snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", cfg->output.dir);
  if (opt->resume) {
    char dir[2048];
    if (!strcmp(opt->resume, "auto")) {
      if (checkpoint_find_latest(cfg->output.dir, dir, sizeof dir) != VKFT_OK) dir[0] = 0;
    } else {
      snprintf(dir, sizeof dir, "%s", opt->resume);
    }
    if (dir[0]) {
      if (checkpoint_load(&t, dir) != VKFT_OK) goto done;
      message(&t, "resumed from %s at step %lld", dir, (long long)t.step);
    } else {
      message(&t, "no checkpoint in %s: starting from the beginning", cfg->output.dir);
    }
  }
  if (truncate_metrics(metrics, t.step) != VKFT_OK) goto done;
  vkft_interrupt_install();
  double t0 = vkft_time_s();
  int64_t first_step = t.step;
  while (t.step < t.total_steps) {
    vkft_step_report r = {0};
    double s0 = vkft_time_s();
    if (train_step(&t, &r) != VKFT_OK) goto done;
    double now = vkft_time_s();
    r.elapsed_s = t.elapsed_before + (now - t0);
    r.tokens_per_s = (double)r.tokens / (now - s0);
    r.eta_s = (now - t0) / (double)(t.step - first_step) * (double)(t.total_steps - t.step);
    char line[512];
    snprintf(
        line, sizeof line,
        "{\"step\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"tokens\": %lld, "
        "\"trained_tokens\": %lld, \"tokens_per_s\": %.1f, \"elapsed_s\": %.3f}",
        (long long)r.step, r.loss, r.lr, r.grad_norm, (long long)r.tokens,
        (long long)r.trained_tokens, r.tokens_per_s, r.elapsed_s);
    if (write_metrics(metrics, line) != VKFT_OK) goto done;
    if (opt->on_step) opt->on_step(&r, opt->user);
    if (cfg->output.eval_every > 0 && t.step % cfg->output.eval_every == 0 &&
        t.step < t.total_steps && do_eval(&t, metrics) != VKFT_OK)
      goto done;
    int interrupted =
        vkft_interrupted() || (opt->stop_after > 0 && t.step - first_step >= opt->stop_after);
    if ((cfg->output.save_every > 0 && t.step % cfg->output.save_every == 0) || interrupted) {
      char dir[2048];
      snprintf(dir, sizeof dir, "%s/checkpoint-%lld", cfg->output.dir, (long long)t.step);
      t.elapsed_before = r.elapsed_s;
      if (checkpoint_save(&t, dir) != VKFT_OK ||
          checkpoint_prune(cfg->output.dir, cfg->output.keep_last))
        goto done;
      t.elapsed_before = 0;
      message(&t, "checkpoint written: %s", dir);
    }
    if (interrupted) {
      message(&t, "interrupted at step %lld: resume with --resume auto", (long long)t.step);
      status = VKFT_OK;
      goto done;
    }
  }
  if (do_eval(&t, metrics) != VKFT_OK) goto done;
  status = cfg->full ? export_full_model(&t, cfg->output.dir) : export_adapter(&t, cfg->output.dir);
  if (status == VKFT_OK)
    message(&t, "saved %s in %s", cfg->full ? "the model" : "the adapter", cfg->output.dir);
done:
  trainer_free(&t);
  return status;
}
