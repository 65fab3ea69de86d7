/* One optimizer step (see vkft/trainer.h): up to grad_accum micro-batches uploaded first, then
 * one recorded stream — zero gradients, forward+loss+backward of each micro-batch with
 * grad_scale = 1 / (trained tokens of the whole step) so accumulation gives exactly the
 * big-batch gradient, the global gradient norm with its clip coefficient, and AdamW on every
 * trainable tensor — submitted once. Also the evaluation loss and the optimizer's state.
 * Data parallel (src/dist), rank r computes micro-batches r*grad_accum.. of the step's
 * grad_accum x N, and the gradients are summed across ranks before the norm (vkft/dist.h). */
#include "trainer_internal.h"
#include "vkft/lr_find.h"

#include "vkft/error.h"
#include "vkft/schedule.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int epoch_batches(trainer *t, uint64_t epoch, size_t *n) {
  return t->pbatcher ? vkft_pref_batcher_epoch_batches(t->pbatcher, epoch, n)
                     : vkft_packer_epoch_batches(t->packer, epoch, n);
}

/* Total optimizer steps: max_steps, or per epoch ceil(batches / (grad_accum x ranks)) (a step
 * does not span epochs, like transformers' Trainer). */
int count_steps(trainer *t, int64_t *steps) {
  *steps = t->cfg->train.max_steps;
  if (*steps > 0) return VKFT_OK;
  int64_t ga = t->step_batches;
  for (int64_t e = 0; e < t->cfg->train.epochs; e++) {
    size_t n;
    if (epoch_batches(t, (uint64_t)e, &n) != VKFT_OK) return VKFT_ERR;
    *steps += ((int64_t)n + ga - 1) / ga;
  }
  return VKFT_OK;
}

int setup_optimizer(trainer *t) {
  vkft_model_params(t->model, &t->params, &t->n_params);
  t->adam_m = calloc((size_t)t->n_params, sizeof *t->adam_m);
  t->adam_v = calloc((size_t)t->n_params, sizeof *t->adam_v);
  t->grads = calloc((size_t)t->n_params, sizeof *t->grads);
  if (!t->adam_m || !t->adam_v || !t->grads) return vkft_error_nomem();
  vkft_dist_grads_desc gd = {.dist = t->dist,
                             .be = t->be,
                             .params = t->params,
                             .n_params = t->n_params,
                             .micro_batches = (int)t->cfg->train.grad_accum,
                             .zero = (int)t->cfg->train.zero};
  if (t->dist && vkft_dist_grads_create(&gd, &t->reducer) != VKFT_OK) return VKFT_ERR;
  if (vkft_begin(t->be) != VKFT_OK) return VKFT_ERR;
  for (int i = 0; i < t->n_params; i++) {
    vkft_param *p = &t->params[i];
    if (!p->trainable) continue;
    t->grads[t->n_grads++] = *p->grad;
    int64_t offset, n; /* ZeRO-1: this rank holds the moments of its part only */
    vkft_dist_grads_state_range(t->reducer, i, p->value->n, &offset, &n);
    if (n && (vkft_tensor_alloc(t->be, VKFT_F32, n, &t->adam_m[i]) ||
              vkft_tensor_alloc(t->be, VKFT_F32, n, &t->adam_v[i]) ||
              vkft_fill(t->be, &t->adam_m[i], 0.0, n) || vkft_fill(t->be, &t->adam_v[i], 0.0, n))) {
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

/* The next micro-batch of the data stream, or 0 at the end of the epoch / of the data; packed
 * into t->batch (t->pbatch) when `pack` (not for another rank's micro-batch). */
static int advance_batch(trainer *t, int allow_new_epoch, int pack, int *got) {
  *got = 0;
  size_t n;
  if (epoch_batches(t, t->epoch, &n) != VKFT_OK) return VKFT_ERR;
  if (t->index >= n) {
    if (!allow_new_epoch) return VKFT_OK;
    t->epoch++;
    t->index = 0;
  }
  if (pack && (t->pbatcher ? vkft_pref_batcher_batch(t->pbatcher, t->epoch, t->index, &t->pbatch)
                           : vkft_packer_batch(t->packer, t->epoch, t->index, &t->batch)))
    return VKFT_ERR;
  if (pack && t->probe && !t->pbatcher &&
      autobatch_pad(&t->batch, (int)t->max_len, t->ds->pad_id) != VKFT_OK)
    return VKFT_ERR;
  t->index++;
  *got = 1;
  return VKFT_OK;
}

int next_batch(trainer *t, int allow_new_epoch, int *got) {
  return advance_batch(t, allow_new_epoch, 1, got);
}

/* Flattens the (B, T) batch for the model: sequence ids made distinct across rows, padding of
 * each row its own negative id. Returns the trained targets after the model's shift. */
static int upload_batch(trainer *t, int slot, int64_t *trained, int64_t *tokens) {
  vkft_batch *b = &t->batch;
  int64_t n = (int64_t)b->B * b->T;
  int32_t *seq = malloc((size_t)n * sizeof *seq);
  if (!seq) return vkft_error_nomem();
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

int eval_loss(trainer *t, double *loss, int64_t *tokens) {
  if (t->pbatcher) return pref_eval(t, loss, tokens);
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
  size_t n;
  int status = vkft_packer_epoch_batches(p, 0, &n);
  for (size_t i = 0; i < n && status == VKFT_OK; i++) {
    int64_t trained, toks;
    double s = 0, c = 0;
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

double step_lr(const trainer *t, int64_t step) {
  const vkft_train_config *cfg = t->cfg;
  if (t->opt->lr_find) return vkft_lr_find_lr(t->opt->lr_find, step);
  vkft_schedule_kind kind = VKFT_SCHEDULE_COSINE;
  vkft_schedule_parse(cfg->train.schedule, &kind);
  int64_t warmup = cfg->train.warmup_steps > 0
                       ? cfg->train.warmup_steps
                       : vkft_warmup_steps(t->total_steps, cfg->train.warmup_ratio);
  vkft_schedule sched = {kind, cfg->train.lr, warmup, t->total_steps};
  return vkft_schedule_lr(&sched, step);
}

uint32_t step_dropout_seed(const trainer *t, int64_t step, int slot) {
  /* dropout masks: a function of (seed, step, micro-batch), so a resumed run draws the same;
   * data parallel, slot counts the step's micro-batches over all ranks */
  uint64_t stride = t->step_batches > 64 ? (uint64_t)t->step_batches : 64;
  uint64_t z =
      t->cfg->train.seed * 0x9e3779b97f4a7c15ull + (uint64_t)step * stride + (uint64_t)slot;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (uint32_t)(z ^ (z >> 31));
}

int step_update(trainer *t, double lr, int64_t step) {
  const vkft_train_config *cfg = t->cfg;
  if (vkft_grad_norm(t->be, t->grads, t->n_grads, &t->norm_slots, &t->norm_out,
                     (float)cfg->train.max_grad_norm) != VKFT_OK)
    return VKFT_ERR;
  vkft_tensor clip = vkft_tensor_view(&t->norm_out, 1, 1);
  for (int i = 0; i < t->n_params; i++) {
    vkft_param *p = &t->params[i];
    if (!p->trainable) continue;
    vkft_tensor value = *p->value, grad = *p->grad;
    if (!vkft_dist_grads_shard(t->reducer, i, &value, &grad)) continue; /* ZeRO-1: another's */
    vkft_adamw_hparams hp = {
        .lr = lr,
        .beta1 = cfg->train.adam_beta1,
        .beta2 = cfg->train.adam_beta2,
        .eps = cfg->train.adam_epsilon,
        .weight_decay = p->decay || cfg->train.weight_decay_all ? cfg->train.weight_decay : 0.0,
        .step = step};
    if (vkft_adamw(t->be, &value, &grad, &t->adam_m[i], &t->adam_v[i], &clip, &hp, value.n))
      return VKFT_ERR;
  }
  return VKFT_OK;
}

int train_step(trainer *t, vkft_step_report *report) {
  if (t->pbatcher) return pref_train_step(t, report);
  const vkft_train_config *cfg = t->cfg;
  int slots = 0, got;
  int64_t counts[2] = {0, 0}; /* trained tokens, tokens: of every rank's micro-batches */
  int64_t row_len[64];        /* of this rank's micro-batches: grad_accum <= 64 (vkft_train) */
  int64_t batches = 0, first = vkft_dist_rank(t->dist) * cfg->train.grad_accum;
  for (int64_t i = 0; i < t->step_batches; i++) {
    int mine = i >= first && i < first + cfg->train.grad_accum;
    if (advance_batch(t, i == 0, mine, &got) != VKFT_OK) return VKFT_ERR;
    if (!got) break;
    batches++;
    if (!mine) continue;
    int64_t n_trained, n_tokens;
    row_len[slots] = t->batch.T;
    if (upload_batch(t, slots, &n_trained, &n_tokens) != VKFT_OK) return VKFT_ERR;
    counts[0] += n_trained;
    counts[1] += n_tokens;
    slots++;
  }
  /* data parallel: the step's token counts over every rank (a rank that failed above meets
   * this agreement on its way out) */
  if (vkft_dist_agree(t->dist, VKFT_OK) != VKFT_OK) return VKFT_ERR;
  vkft_dist_sum_i64(t->dist, counts, 2);
  int64_t trained = counts[0], tokens = counts[1];
  if (trained == 0)
    return vkft_error("step %lld: no trained token in the step's batches", (long long)t->step + 1);
  int64_t step = t->step + 1;
  double lr = step_lr(t, step);
  float grad_scale = (float)(1.0 / (double)trained);
  if (vkft_begin(t->be) || vkft_model_zero_grads(t->model)) return VKFT_ERR;
  for (int s = 0; s < slots; s++) {
    vkft_model_set_dropout_seed(t->model, step_dropout_seed(t, step, (int)first + s));
    /* NEFTune: TRL's alpha / sqrt(dims), dims = the padded row length x the hidden size */
    double dims = (double)row_len[s] * (double)vkft_model_get_config(t->model)->hidden_size;
    vkft_model_set_noise(t->model, (float)(cfg->train.neftune_noise_alpha / sqrt(dims)));
    if (vkft_model_forward_backward(t->model, s, grad_scale, 1) != VKFT_OK) return VKFT_ERR;
    if (t->reducer && vkft_dist_grads_keep(t->reducer, s) != VKFT_OK) return VKFT_ERR;
  }
  /* data parallel: the step's gradient, summed over every rank's micro-batches in their order */
  if (t->reducer && vkft_dist_grads_reduce(t->reducer, slots, batches) != VKFT_OK) return VKFT_ERR;
  if (step_update(t, lr, step) != VKFT_OK || vkft_end(t->be) != VKFT_OK) return VKFT_ERR;
  /* loss sum and trained tokens of each of this rank's micro-batches (grad_accum <= 64) */
  double mine[2 * 64] = {0};
  const double *loss = mine; /* ... of the step's micro-batches (all ranks), in order */
  for (int s = 0; s < slots; s++)
    if (vkft_model_read_loss(t->model, s, &mine[2 * s], &mine[2 * s + 1]) != VKFT_OK)
      return VKFT_ERR;
  float norm[2];
  if (vkft_tensor_read(t->be, &t->norm_out, norm) != VKFT_OK) return VKFT_ERR;
  if (t->reducer && vkft_dist_grads_finish(t->reducer, mine, 2, &loss) != VKFT_OK) return VKFT_ERR;
  double loss_sum = 0, count = 0;
  for (int64_t m = 0; m < (t->reducer ? batches : slots); m++) {
    loss_sum += loss[2 * m];
    count += loss[2 * m + 1];
  }
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
