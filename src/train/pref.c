/* Preference objectives in the training loop (objective "dpo" or "orpo"): the pairs are loaded
 * and batched by src/data/pref_*.c, a micro-batch of N pairs runs as 2N sequences through
 * vkft_model_pref_forward_backward, and the step's loss and TRL's metrics are computed on the
 * host from the sequence log-probs the device returns. Averaging as TRL 1.9.0 does it: each
 * micro-batch's loss is the mean over its pairs (ORPO: plus the NLL averaged over its chosen
 * sequences' targets), divided by the number of micro-batches of the step (transformers'
 * gradient accumulation); logged metrics are means over micro-batches of per-micro-batch means
 * (docs/PREFERENCE.md, "Objectives"). DPO's reference: with LoRA, the base with the adapter off
 * in the same stream; with full fine-tuning, an existing adapter (lora.init), trained embeddings
 * or pref.precompute_ref, log-probs computed once before training (TRL's
 * precompute_ref_log_probs) — before a resume loads its checkpoint, so they are the same. */
#include "trainer_internal.h"

#include "vkft/crc32.h"
#include "vkft/error.h"
#include "vkft/model_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_orpo(const trainer *t) {
  return t->objective.kind == VKFT_PREF_LOSS_ORPO;
}

static vkft_pref_loss_kind loss_kind(const vkft_train_config *cfg) {
  if (!strcmp(cfg->objective, "orpo")) return VKFT_PREF_LOSS_ORPO;
  if (!strcmp(cfg->pref.loss_type, "ipo")) return VKFT_PREF_LOSS_IPO;
  if (!strcmp(cfg->pref.loss_type, "hinge")) return VKFT_PREF_LOSS_HINGE;
  if (!strcmp(cfg->pref.loss_type, "robust")) return VKFT_PREF_LOSS_ROBUST;
  return VKFT_PREF_LOSS_SIGMOID;
}

/* the pairs' checksum: a resumed run must see the same pairs */
static uint32_t pairs_checksum(const trainer *t, const uint32_t *ids, size_t n, uint32_t crc) {
  for (size_t i = 0; i < n; i++) {
    const vkft_pref_example *ex = &t->pds->examples[ids[i]];
    uint32_t lens[5] = {ex->prompt_len, ex->chosen_len, ex->rejected_len, ex->chosen_masked,
                        ex->rejected_masked};
    crc = vkft_crc32(crc, lens, sizeof lens);
    crc = vkft_crc32(crc, ex->prompt_ids, ex->prompt_len * sizeof *ex->prompt_ids);
    crc = vkft_crc32(crc, ex->chosen_ids, ex->chosen_len * sizeof *ex->chosen_ids);
    crc = vkft_crc32(crc, ex->rejected_ids, ex->rejected_len * sizeof *ex->rejected_ids);
  }
  return crc;
}

/* a pair's file, -1 when it is not usable */
static int pair_file(const trainer *t, size_t i) {
  return t->pds->examples[i].status == VKFT_EXAMPLE_OK ? (int)t->pds->examples[i].file : -1;
}

/* data.eval: the eval file (the last one) holds the eval pairs */
static int split_eval_file(trainer *t, size_t eval_file) {
  if (trainer_split_by_file(t, t->pds->n_examples, pair_file, (int)eval_file, "pair") != VKFT_OK)
    return VKFT_ERR;
  if (t->n_train == 0) return vkft_error("data: no usable pair in the training data");
  return VKFT_OK;
}

int pref_load_data(trainer *t) {
  const vkft_train_config *cfg = t->cfg;
  t->objective = (vkft_pref_objective){
      .kind = loss_kind(cfg),
      .beta = (float)(!strcmp(cfg->objective, "orpo") ? cfg->pref.orpo_lambda : cfg->pref.beta),
      .label_smoothing = (float)cfg->pref.label_smoothing};
  vkft_data_file_desc files[VKFT_CFG_MAX_LIST + 1];
  size_t n_files = (size_t)cfg->data.train_count;
  for (size_t i = 0; i < n_files; i++)
    files[i] = (vkft_data_file_desc){cfg->data.train[i].path, cfg->data.train[i].weight};
  if (cfg->data.eval[0]) files[n_files++] = (vkft_data_file_desc){cfg->data.eval, 1.0};
  vkft_pref_format format = VKFT_PREF_FORMAT_AUTO;
  if (vkft_pref_format_parse(cfg->data.format, &format) != VKFT_OK)
    return vkft_error("config: data.format \"%s\" is not a preference format (auto, trl_standard, "
                      "trl_conversational, trl_implicit_prompt, sharegpt_ranking, "
                      "alpaca_ranking, trl_tokenized)",
                      cfg->data.format);
  vkft_model_config mc;
  if (vkft_model_config_load(cfg->model, &mc) != VKFT_OK) return VKFT_ERR;
  vkft_pref_desc desc = {
      .model_dir = cfg->model,
      .files = files,
      .n_files = n_files,
      .format = format,
      .style = is_orpo(t) ? VKFT_PREF_ORPO : VKFT_PREF_DPO,
      .template_name = strcmp(cfg->data.chat_template, "auto") ? cfg->data.chat_template : NULL,
      .max_len = (int)cfg->data.max_len,
      .max_prompt_len = (int)cfg->data.max_prompt_len,
      .max_completion_len = (int)cfg->data.max_completion_len,
      .tokenizer = t->tok,
      .vocab_size = t->vocab_size ? t->vocab_size : mc.vocab_size};
  if (vkft_pref_load(&desc, &t->pds) != VKFT_OK) return VKFT_ERR;
  const vkft_pref_dataset *ds = t->pds;
  for (size_t i = 0; i < ds->n_issues; i++) trainer_message(t, "data: %s", ds->issues[i]);
  trainer_message(t,
                  "data: %zu preference pairs (%zu skipped, %zu dropped by truncation, %zu "
                  "truncated), %zu tokens, %zu trained",
                  ds->n_ok, ds->n_bad, ds->n_empty, ds->n_truncated, ds->n_tokens, ds->n_trained);
  if (ds->n_prompt_mismatch)
    trainer_message(t,
                    "data: %zu pairs whose prompt tokens are not a prefix of prompt + completion "
                    "(sliced as TRL does)",
                    ds->n_prompt_mismatch);
  if (ds->n_ok == 0) return vkft_error("data: no usable preference pair in the training data");
  t->max_len = ds->max_len;
  int status = cfg->data.eval[0]
                   ? split_eval_file(t, n_files - 1)
                   : vkft_pref_split(ds, cfg->data.eval_fraction, cfg->train.seed, &t->train_ids,
                                     &t->n_train, &t->eval_ids, &t->n_eval);
  if (status != VKFT_OK) return VKFT_ERR;
  if (t->n_train == 0) return vkft_error("data: no preference pair left for training");
  t->data_crc =
      pairs_checksum(t, t->eval_ids, t->n_eval, pairs_checksum(t, t->train_ids, t->n_train, 0));
  return VKFT_OK;
}

int pref_make_batcher(trainer *t, int quiet) {
  const vkft_train_config *cfg = t->cfg;
  vkft_pref_batcher_desc bd = {.pairs = (int)cfg->train.micro_batch,
                               .pack = cfg->data.packing,
                               .max_len = (int)t->max_len,
                               .seed = cfg->train.seed,
                               .no_shuffle = !cfg->train.shuffle};
  if (vkft_pref_batcher_create(t->pds, t->train_ids, t->n_train, &bd, &t->pbatcher) != VKFT_OK)
    return VKFT_ERR;
  if (cfg->data.eval[0] && !quiet)
    trainer_message(t, "data.eval: %zu pairs from %s", t->n_eval, cfg->data.eval);
  return VKFT_OK;
}

/* ---- one micro-batch of pairs onto the device ---- */

typedef struct pref_slot {
  int64_t pairs, nll_targets, tokens, trained;
} pref_slot;

static int upload_pairs(trainer *t, int slot, const vkft_pref_batch *pb, pref_slot *info) {
  const vkft_batch *b = &pb->tokens;
  const int64_t n = (int64_t)b->B * b->T, N = pb->n_pairs;
  const int orpo = is_orpo(t);
  int32_t *seq = malloc((size_t)n * sizeof *seq), *labels = malloc((size_t)n * sizeof *labels);
  int32_t *tok = malloc((size_t)n * sizeof *tok),
          *ranges = malloc((size_t)(4 * N) * sizeof *ranges);
  float *ref = t->ref_logps ? malloc((size_t)(2 * N) * sizeof *ref) : NULL;
  int status = VKFT_OK;
  if (!seq || !labels || !tok || !ranges || (t->ref_logps && !ref)) {
    status = vkft_error_nomem();
    goto done;
  }
  memset(info, 0, sizeof *info);
  info->pairs = N;
  info->tokens = (int64_t)b->n_tokens;
  for (int r = 0; r < b->B; r++)
    for (int i = 0; i < b->T; i++) {
      int64_t k = (int64_t)r * b->T + i;
      int32_t s = b->seq_ids[k];
      seq[k] = s >= 0 ? r * 65536 + s : -1 - r;
      /* ORPO's NLL: every token of a chosen sequence is a target (TRL: its input ids) */
      labels[k] = orpo && s >= 0 && s < N ? b->input_ids[k] : b->labels[k];
      /* position k predicts token k + 1 of its sequence: which log-prob does that count in? */
      tok[k] = -1;
      if (s < 0 || i + 1 >= b->T || b->seq_ids[k + 1] != s) continue;
      if (b->labels[k + 1] != VKFT_LABEL_IGNORE)
        tok[k] = 2 * s + 1;
      else if (orpo && s < N)
        tok[k] = 2 * s;
      info->trained += tok[k] >= 0;
      info->nll_targets += tok[k] >= 0 && s < N;
    }
  for (int64_t s = 0; s < 2 * N; s++) {
    ranges[2 * s] = (int32_t)(pb->seq_row[s] * b->T + pb->seq_start[s]);
    ranges[2 * s + 1] = ranges[2 * s] + pb->seq_len[s];
  }
  for (int64_t i = 0; ref && i < N; i++) {
    ref[i] = t->ref_logps[2 * (size_t)pb->pair_example[i]];
    ref[N + i] = t->ref_logps[2 * (size_t)pb->pair_example[i] + 1];
  }
  vkft_model_batch mb = {n, b->input_ids, labels, b->positions, seq};
  vkft_model_pref_batch pm = {N, tok, ranges, ref};
  status = vkft_model_set_batch(t->model, slot, &mb) || vkft_model_set_pref(t->model, slot, &pm)
               ? VKFT_ERR
               : VKFT_OK;
done:
  free(seq), free(labels), free(tok), free(ranges), free(ref);
  return status;
}

/* ---- the loss and TRL's metrics from the sequence values ---- */

typedef struct pref_metrics {
  double loss, chosen, rejected, accuracy, margin, logp_c, logp_r;
  double nll, log_odds_ratio, log_odds_chosen;
  int batches;
} pref_metrics;

/* log(1 - e^x), x <= 0, as TRL's log1mexp */
static double log1mexp(double x) {
  return x < -0.6931471805599453 ? log1p(-exp(x)) : log(-expm1(x));
}

static double log_sigmoid(double x) {
  return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

/* one micro-batch: seq (4N + 2, vkft_pref_loss's), ref (2N, DPO) */
static void add_batch(const trainer *t, const float *seq, const float *ref, int64_t N,
                      pref_metrics *m) {
  const vkft_pref_objective *o = &t->objective;
  const int orpo = is_orpo(t);
  pref_metrics b = {0};
  for (int64_t i = 0; i < N; i++) {
    double c = seq[i], r = seq[N + i], rc = ref ? ref[i] : 0, rr = ref ? ref[N + i] : 0;
    b.loss += vkft_ref_pref_pair_loss_f64(o, c, r, rc, rr, seq[2 * N + i], seq[3 * N + i]);
    double wc = orpo ? o->beta * c : o->beta * (c - rc),
           wr = orpo ? o->beta * r : o->beta * (r - rr);
    b.chosen += wc, b.rejected += wr, b.accuracy += wc > wr, b.margin += wc - wr;
    b.logp_c += c, b.logp_r += r;
    if (orpo) {
      double odds = (c - r) - (log1mexp(c) - log1mexp(r));
      b.log_odds_chosen += odds, b.log_odds_ratio += log_sigmoid(odds);
    }
  }
  double nll = seq[4 * N + 1] > 0 ? seq[4 * N] / seq[4 * N + 1] : 0;
  m->loss += b.loss / (double)N + (orpo ? nll : 0);
  m->chosen += b.chosen / (double)N, m->rejected += b.rejected / (double)N;
  m->accuracy += b.accuracy / (double)N, m->margin += b.margin / (double)N;
  m->logp_c += b.logp_c / (double)N, m->logp_r += b.logp_r / (double)N;
  m->nll += nll;
  m->log_odds_ratio += b.log_odds_ratio / (double)N;
  m->log_odds_chosen += b.log_odds_chosen / (double)N;
  m->batches++;
}

/* the means over micro-batches as JSON members (", \"rewards/chosen\": ..."), prefix "" or
 * "eval_"; returns the loss */
static double format_metrics(const trainer *t, const pref_metrics *m, const char *prefix, char *out,
                             size_t size) {
  double k = m->batches > 0 ? 1.0 / m->batches : 0;
  int n = snprintf(out, size,
                   ", \"%srewards/chosen\": %.9g, \"%srewards/rejected\": %.9g, "
                   "\"%srewards/accuracies\": %.9g, \"%srewards/margins\": %.9g, "
                   "\"%slogps/chosen\": %.9g, \"%slogps/rejected\": %.9g",
                   prefix, m->chosen * k, prefix, m->rejected * k, prefix, m->accuracy * k, prefix,
                   m->margin * k, prefix, m->logp_c * k, prefix, m->logp_r * k);
  if (is_orpo(t) && n > 0 && (size_t)n < size)
    snprintf(out + n, size - (size_t)n,
             ", \"%snll_loss\": %.9g, \"%slog_odds_ratio\": %.9g, \"%slog_odds_chosen\": %.9g",
             prefix, m->nll * k, prefix, m->log_odds_ratio * k, prefix, m->log_odds_chosen * k);
  return m->loss * k;
}

static int read_slot(trainer *t, int slot, int64_t N, pref_metrics *m) {
  float *seq = malloc((size_t)(4 * N + 2) * sizeof *seq);
  float *ref = malloc((size_t)(2 * N) * sizeof *ref);
  int status = seq && ref ? VKFT_OK : vkft_error_nomem();
  if (status == VKFT_OK)
    status = vkft_model_read_pref(t->model, slot, seq, is_orpo(t) ? NULL : ref);
  if (status == VKFT_OK) add_batch(t, seq, is_orpo(t) ? NULL : ref, N, m);
  free(seq), free(ref);
  return status;
}

/* the objective of one micro-batch of the step: its pairs' mean, over the step's micro-batches */
static vkft_pref_objective slot_objective(const trainer *t, const pref_slot *s, int slots) {
  vkft_pref_objective o = t->objective;
  o.pair_scale = (float)(1.0 / ((double)s->pairs * slots));
  o.nll_scale =
      is_orpo(t) && s->nll_targets > 0 ? (float)(1.0 / ((double)s->nll_targets * slots)) : 0.0f;
  return o;
}

int pref_train_step(trainer *t, vkft_step_report *report) {
  const vkft_train_config *cfg = t->cfg;
  pref_slot info[64];
  int slots = 0, got;
  int64_t trained = 0, tokens = 0;
  for (int i = 0; i < cfg->train.grad_accum; i++) {
    if (next_batch(t, i == 0, &got) != VKFT_OK) return VKFT_ERR;
    if (!got) break;
    if (upload_pairs(t, slots, &t->pbatch, &info[slots]) != VKFT_OK) return VKFT_ERR;
    trained += info[slots].trained;
    tokens += info[slots].tokens;
    slots++;
  }
  int64_t step = t->step + 1;
  double lr = step_lr(t, step);
  if (vkft_begin(t->be) || vkft_model_zero_grads(t->model)) return VKFT_ERR;
  for (int s = 0; s < slots; s++) {
    vkft_pref_objective o = slot_objective(t, &info[s], slots);
    vkft_model_set_dropout_seed(t->model, step_dropout_seed(t, step, s));
    if (vkft_model_pref_forward_backward(t->model, s, &o, 1) != VKFT_OK) return VKFT_ERR;
  }
  if (step_update(t, lr, step) != VKFT_OK || vkft_end(t->be) != VKFT_OK) return VKFT_ERR;
  pref_metrics m = {0};
  for (int s = 0; s < slots; s++)
    if (read_slot(t, s, info[s].pairs, &m) != VKFT_OK) return VKFT_ERR;
  float norm[2];
  if (vkft_tensor_read(t->be, &t->norm_out, norm) != VKFT_OK) return VKFT_ERR;
  t->step = step;
  t->tokens_seen += tokens;
  report->step = step;
  report->total_steps = t->total_steps;
  report->loss = format_metrics(t, &m, "", t->step_extra, sizeof t->step_extra);
  report->lr = lr;
  report->grad_norm = norm[0];
  report->tokens = tokens;
  report->trained_tokens = trained;
  return VKFT_OK;
}

/* Every pair of `ids` once, in order, through the model without gradients; each micro-batch's
 * sequence values go to `each` (metrics, or the reference table). */
typedef int (*pair_fn)(trainer *t, const vkft_pref_batch *pb, int64_t N, pref_metrics *m);

static int for_each_batch(trainer *t, const uint32_t *ids, size_t n, pair_fn each, pref_metrics *m,
                          int64_t *trained) {
  vkft_pref_batcher *b;
  vkft_pref_batcher_desc bd = {.pairs = (int)t->cfg->train.micro_batch,
                               .pack = t->cfg->data.packing,
                               .max_len = (int)t->max_len,
                               .no_shuffle = 1};
  if (vkft_pref_batcher_create(t->pds, ids, n, &bd, &b) != VKFT_OK) return VKFT_ERR;
  vkft_pref_batch pb = {0};
  size_t count;
  int status = vkft_pref_batcher_epoch_batches(b, 0, &count);
  for (size_t i = 0; i < count && status == VKFT_OK; i++) {
    pref_slot info;
    status = vkft_pref_batcher_batch(b, 0, i, &pb) || upload_pairs(t, 0, &pb, &info);
    if (status != VKFT_OK) break;
    vkft_pref_objective o = slot_objective(t, &info, 1);
    status = vkft_begin(t->be) || vkft_model_pref_forward_backward(t->model, 0, &o, 0) ||
                     vkft_end(t->be) || each(t, &pb, info.pairs, m)
                 ? VKFT_ERR
                 : VKFT_OK;
    *trained += info.trained;
  }
  vkft_pref_batch_free(&pb);
  vkft_pref_batcher_free(b);
  return status;
}

static int eval_batch(trainer *t, const vkft_pref_batch *pb, int64_t N, pref_metrics *m) {
  (void)pb;
  return read_slot(t, 0, N, m);
}

int pref_eval(trainer *t, double *loss, int64_t *tokens) {
  pref_metrics m = {0};
  *loss = 0;
  *tokens = 0;
  t->eval_extra[0] = 0;
  if (t->n_eval == 0) return VKFT_OK;
  if (for_each_batch(t, t->eval_ids, t->n_eval, eval_batch, &m, tokens) != VKFT_OK) return VKFT_ERR;
  *loss = format_metrics(t, &m, "eval_", t->eval_extra, sizeof t->eval_extra);
  return VKFT_OK;
}

/* the policy's log-probs of the pairs (the model as it is now) into the reference table */
static int store_reference(trainer *t, const vkft_pref_batch *pb, int64_t N, pref_metrics *m) {
  (void)m;
  float *seq = malloc((size_t)(4 * N + 2) * sizeof *seq);
  if (!seq) return vkft_error_nomem();
  int status = vkft_model_read_pref(t->model, 0, seq, NULL);
  for (int64_t i = 0; status == VKFT_OK && i < N; i++) {
    t->ref_logps[2 * (size_t)pb->pair_example[i]] = seq[i];
    t->ref_logps[2 * (size_t)pb->pair_example[i] + 1] = seq[N + i];
  }
  free(seq);
  return status;
}

const char *pref_reference_why(const trainer *t) {
  const vkft_train_config *cfg = t->cfg;
  if (is_orpo(t)) return NULL;
  return cfg->full                   ? "full fine-tuning"
         : cfg->lora.init[0]         ? "the adapter starts from lora.init"
         : cfg->lora.modules_to_save ? "lora.modules_to_save trains whole modules"
         : t->vocab_size             ? "tokens.add grows the embeddings"
         : cfg->pref.precompute_ref  ? "pref.precompute_ref"
                                     : NULL;
}

int pref_reference(trainer *t) {
  if (is_orpo(t)) return VKFT_OK; /* ORPO has no reference */
  const char *why = pref_reference_why(t);
  if (!why) {
    trainer_message(t, "DPO reference: the base with the adapter off, in each step");
    return VKFT_OK;
  }
  /* zeros while they are computed: the policy pass below reads them as a given reference */
  t->ref_logps = calloc(2 * (t->pds->n_examples + 1), sizeof *t->ref_logps);
  if (!t->ref_logps) return vkft_error_nomem();
  pref_metrics unused = {0};
  int64_t trained = 0;
  double t0 = vkft_time_s();
  if (for_each_batch(t, t->train_ids, t->n_train, store_reference, &unused, &trained) ||
      for_each_batch(t, t->eval_ids, t->n_eval, store_reference, &unused, &trained))
    return VKFT_ERR;
  trainer_message(t, "DPO reference: log-probs of %zu pairs computed before training (%s), %.1f s",
                  t->n_train + t->n_eval, why, vkft_time_s() - t0);
  return VKFT_OK;
}
