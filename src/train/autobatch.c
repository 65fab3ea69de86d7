/* train.micro_batch "auto" and train.batch_size: the micro-batch a run uses and the gradient
 * accumulation that follows from it, decided once, after the data loads and before the model
 * does (trainer_resolve_batch).
 *
 * "auto" is the largest micro-batch whose memory plan (vkft_train_plan_bytes: the plan that
 * `train --dry-run` and `vkft plan` print) fits the device's free budget — a power of two, or
 * with train.batch_size a divisor of its share per rank when that is not much smaller, so that
 * the effective batch is exact — and it is probed, not trusted: one real optimizer step
 * (forward, backward, AdamW) at that size, on the data's first batch padded to max_len (the
 * worst-case shape), in a model and optimizer of its own that are freed afterwards. When the
 * probe runs out of device memory the size is halved and probed again. The run then loads its
 * own model at the size chosen, from scratch, so its bits are those of a run given that number.
 * A resumed run takes the checkpoint's micro_batch instead: another size would change the
 * batches, and with them every bit after the checkpoint. */
#include "trainer_internal.h"

#include "vkft/error.h"
#include "vkft/vk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024.0 * 1024.0)
enum { LARGEST = 1024 }; /* the largest micro-batch "auto" considers */

int autobatch_pad(vkft_batch *b, int T, int32_t pad_id) {
  if (b->T >= T) return VKFT_OK;
  size_t n = (size_t)b->B * (size_t)T;
  int32_t *ids = malloc(n * sizeof *ids), *labels = malloc(n * sizeof *labels);
  int32_t *pos = malloc(n * sizeof *pos), *seq = malloc(n * sizeof *seq);
  if (!ids || !labels || !pos || !seq) {
    free(ids), free(labels), free(pos), free(seq);
    return vkft_error_nomem();
  }
  for (int r = 0; r < b->B; r++)
    for (int i = 0; i < T; i++) {
      size_t k = (size_t)r * (size_t)T + (size_t)i, from = (size_t)r * (size_t)b->T + (size_t)i;
      int pad = i >= b->T;
      ids[k] = pad ? pad_id : b->input_ids[from];
      labels[k] = pad ? VKFT_LABEL_IGNORE : b->labels[from];
      pos[k] = pad ? 0 : b->positions[from];
      seq[k] = pad ? -1 : b->seq_ids[from];
    }
  free(b->input_ids), free(b->labels), free(b->positions), free(b->seq_ids);
  b->input_ids = ids, b->labels = labels, b->positions = pos, b->seq_ids = seq;
  b->T = T;
  b->cap = n;
  return VKFT_OK;
}

/* The micro-batch "auto" tries at most `limit`: the largest power of two; with
 * train.batch_size, the largest divisor of its share per rank instead when that is more than
 * half of it (the effective batch is then exactly batch_size). */
static int64_t pick(const vkft_train_config *cfg, int world, int64_t limit) {
  int64_t p2 = 1;
  while (p2 * 2 <= limit) p2 *= 2;
  int64_t share = cfg->train.batch_size % world ? 0 : cfg->train.batch_size / world, d = 0;
  for (d = limit < share ? limit : share; d > 1 && share % d; d--) {
  }
  return share && 2 * d > p2 ? d : p2;
}

static int plan_bytes(const trainer *t, int64_t mb, uint64_t *bytes) {
  vkft_model_desc md;
  if (vkft_train_model_desc_at(t->cfg, mb, t->max_len, vkft_dist_size(t->dist), t->vocab_size,
                               &md) != VKFT_OK)
    return VKFT_ERR;
  return vkft_train_plan_bytes(&md, bytes);
}

/* Sequences (pairs) one epoch of the training data holds: a larger micro-batch is padding. */
static int epoch_rows(trainer *t, int64_t *rows) {
  vkft_train_config *one = malloc(sizeof *one);
  if (!one) return vkft_error_nomem();
  *one = *t->cfg;
  one->train.micro_batch = 1;
  trainer s = {.cfg = one,
               .opt = t->opt,
               .ds = t->ds,
               .pds = t->pds,
               .max_len = t->max_len,
               .train_ids = t->train_ids,
               .n_train = t->n_train};
  size_t n = 0;
  int status = trainer_make_batcher(&s, 1);
  if (status == VKFT_OK) status = epoch_batches(&s, 0, &n);
  vkft_packer_free(s.packer);
  vkft_pref_batcher_free(s.pbatcher);
  free(one);
  *rows = (int64_t)n;
  return status;
}

/* One optimizer step at micro-batch mb in a model and optimizer of its own, all freed before it
 * returns: VKFT_OK, or the error (VKFT_ERR_OOM: the device ran out of memory). Quiet: the
 * trainer's messages of loading go nowhere. */
static int probe_step(trainer *t, int64_t mb, int64_t ga) {
  vkft_train_config *cfg = malloc(sizeof *cfg);
  if (!cfg) return vkft_error_nomem();
  *cfg = *t->cfg;
  cfg->train.micro_batch = mb;
  cfg->train.grad_accum = ga;
  cfg->train.grad_accum_given = 1; /* the configuration as run (checkpoints) has numbers */
  vkft_train_options quiet = *t->opt;
  quiet.on_message = NULL;
  quiet.on_step = NULL;
  trainer p = {.be = t->be,
               .cfg = cfg,
               .opt = &quiet,
               .ds = t->ds,
               .pds = t->pds,
               .train_ids = t->train_ids,
               .n_train = t->n_train,
               .dist = t->dist,
               .max_len = t->max_len,
               .rows = t->pds ? 2 * mb : mb,
               .step_batches = ga * vkft_dist_size(t->dist),
               .total_steps = 1,
               .vocab_size = t->vocab_size,
               .objective = t->objective,
               .best_eval = t->best_eval,
               .probe = 1};
  int status = trainer_make_batcher(&p, 1);
  /* DPO with its reference precomputed reads it in the step: zeros serve the shape */
  if (status == VKFT_OK && t->pds && pref_reference_why(&p) &&
      !(p.ref_logps = calloc(2 * (t->pds->n_examples + 1), sizeof *p.ref_logps)))
    status = vkft_error_nomem();
  if (status == VKFT_OK) status = trainer_load_model(&p);
  vkft_step_report r;
  if (status == VKFT_OK) status = train_step(&p, &r);
  vkft_errcode code = vkft_error_code();
  char why[1024];
  snprintf(why, sizeof why, "%s", vkft_error_message());
  trainer_free_model(&p);
  free(p.ref_logps);
  free(cfg);
  return status == VKFT_OK ? VKFT_OK : vkft_error_with(code, "%s", why);
}

/* micro_batch "auto" without a checkpoint to follow: the plan's largest, then the probe. */
static int choose(trainer *t, int64_t *out) {
  const vkft_train_config *cfg = t->cfg;
  const int world = vkft_dist_size(t->dist);
  vkft_device *dev = t->be ? vkft_backend_device(t->be) : NULL;
  uint64_t free_bytes = UINT64_MAX; /* no device (the C reference): the data bounds it alone */
  if (dev) {
    uint64_t budget = vkft_device_memory_budget(dev), used = vkft_device_memory_in_use(dev);
    free_bytes = budget > used ? budget - used : 0;
  }
  int64_t rows, cap = LARGEST;
  const char *bound = "the largest considered";
  if (epoch_rows(t, &rows) != VKFT_OK) return VKFT_ERR;
  if (rows < cap) cap = rows > 0 ? rows : 1, bound = "the rows of one epoch";
  int64_t share = (cfg->train.batch_size + world - 1) / world;
  if (cfg->train.batch_size > 0 && share < cap) cap = share, bound = "train.batch_size per rank";
  /* train.batch_size runs from the micro-batch at which grad_accum is at most 64 */
  int64_t least =
      cfg->train.batch_size > 0 ? (cfg->train.batch_size + 64 * world - 1) / (64 * world) : 1;
  /* the largest micro-batch in [least, cap] whose plan fits: the plan grows with it */
  int64_t lo = least - 1, hi = cap + 1;
  uint64_t lo_bytes = 0, one = 0;
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    uint64_t bytes;
    if (plan_bytes(t, mid, &bytes) != VKFT_OK) return VKFT_ERR;
    if (mid == least) one = bytes;
    if (bytes <= free_bytes)
      lo = mid, lo_bytes = bytes;
    else
      hi = mid;
  }
  if (lo < least && least > 1) {
    if (!one && plan_bytes(t, least, &one) != VKFT_OK) return VKFT_ERR;
    return vkft_error_with(VKFT_ERR_OOM,
                           "micro_batch auto: train.batch_size %lld needs a micro-batch of at "
                           "least %lld (grad_accum is at most 64), and its plan is %.1f MiB: "
                           "%.1f MiB are free on %s (lower train.batch_size or data.max_len, or "
                           "turn train.grad_checkpointing on)",
                           (long long)cfg->train.batch_size, (long long)least, one / MiB,
                           free_bytes / MiB, dev ? vkft_device_get_info(dev)->name : "the device");
  }
  if (lo == 0) {
    if (!one && plan_bytes(t, 1, &one) != VKFT_OK) return VKFT_ERR;
    return vkft_error_with(VKFT_ERR_OOM,
                           "micro_batch auto: not even one sequence of %lld tokens fits: its plan "
                           "is %.1f MiB, %.1f MiB are free on %s (lower data.max_len, turn "
                           "train.grad_checkpointing on, or use quant.base nf4)",
                           (long long)t->max_len, one / MiB, free_bytes / MiB,
                           dev ? vkft_device_get_info(dev)->name : "the device");
  }
  char plan[256];
  if (dev)
    snprintf(plan, sizeof plan, "plan: %lld fit in %.0f MiB free (%lld take %.0f MiB%s%s)",
             (long long)lo, free_bytes / MiB, (long long)lo, lo_bytes / MiB,
             lo == cap ? "; no more tried: " : "", lo == cap ? bound : "");
  else
    snprintf(plan, sizeof plan, "no device memory to plan for; at most %s, %lld", bound,
             (long long)cap);
  int64_t mb = pick(cfg, world, lo);
  if (mb < least) mb = lo; /* a divisor of the batch too small for 64 micro-batches */
  if (t->opt->dry_run) {
    trainer_message(t, "micro_batch auto: %lld (%s; not probed: dry run)", (long long)mb, plan);
    *out = mb;
    return VKFT_OK;
  }
  int halved = 0;
  for (;;) {
    double t0 = vkft_time_s();
    int64_t ga;
    if (vkft_train_config_grad_accum(cfg, mb, world, &ga, NULL, 0) != VKFT_OK) return VKFT_ERR;
    if (probe_step(t, mb, ga) == VKFT_OK) {
      trainer_message(t, "micro_batch auto: %lld (%s; probe step ok in %.1f s%s)", (long long)mb,
                      plan, vkft_time_s() - t0, halved ? ", after halving" : "");
      *out = mb;
      return VKFT_OK;
    }
    if (vkft_error_code() != VKFT_ERR_OOM || mb == least)
      return vkft_error_prefix(
          "micro_batch auto: the probe step at micro-batch %lld%s", (long long)mb,
          least > 1 && mb == least ? " (the least train.batch_size runs with)" : "");
    int64_t next = pick(cfg, world, mb / 2);
    if (next < least) next = least;
    trainer_message(t,
                    "micro_batch auto: the probe step at %lld ran out of device memory (%s): "
                    "trying %lld",
                    (long long)mb, vkft_error_message(), (long long)next);
    mb = next;
    halved = 1;
  }
}

int trainer_resolve_batch(trainer *t) {
  vkft_train_config *cfg = t->resolved;
  const int world = vkft_dist_size(t->dist);
  int64_t mb = cfg->train.micro_batch, ga;
  if (mb < 0 && world > 1)
    return vkft_error("config: train.micro_batch \"auto\" runs in one process; under mpirun (%d "
                      "ranks) give a number (`vkft plan` shows what fits)",
                      world);
  if (mb < 0 && t->resume_dir[0]) {
    if (checkpoint_micro_batch(t->resume_dir, &mb) != VKFT_OK) return VKFT_ERR;
    trainer_message(t,
                    "micro_batch auto: %lld (%s's; not probed again: another size would change "
                    "the batches of the run it continues)",
                    (long long)mb, t->resume_dir);
  } else if (mb < 0 && choose(t, &mb) != VKFT_OK) {
    return VKFT_ERR;
  }
  char note[256];
  if (vkft_train_config_grad_accum(cfg, mb, world, &ga, note, sizeof note) != VKFT_OK)
    return VKFT_ERR;
  cfg->train.micro_batch = mb;
  cfg->train.grad_accum = ga;
  cfg->train.grad_accum_given = 1; /* the configuration as run (checkpoints) has numbers */
  if (note[0])
    trainer_message(t, "%s", note);
  else if (cfg->train.batch_size > 0)
    trainer_message(t, "train.batch_size %lld: grad_accum %lld (micro_batch %lld x %d rank%s)",
                    (long long)cfg->train.batch_size, (long long)ga, (long long)mb, world,
                    world == 1 ? "" : "s");
  t->rows = mb * (t->pds ? 2 : 1); /* a pair is two sequences */
  t->step_batches = ga * world;
  return VKFT_OK;
}
