/* Preference objectives on both backends (shaders/pref.comp, src/ref/pref.c): the sequence
 * log-probs of a micro-batch of pairs and the per-token weights of the LM head's backward. */
#include "core_util.h"

int vkft_pref_loss(vkft_backend *be, const vkft_pref_loss_desc *d) {
  const int64_t T = d->T, N = d->N;
  if (T <= 0 || N <= 0 || N > VKFT_PREF_MAX_PAIRS)
    return vkft_error("pref_loss: %lld pairs over %lld tokens (1 to %d pairs)", (long long)N,
                      (long long)T, VKFT_PREF_MAX_PAIRS);
  if (T > INT32_MAX) return vkft_error("pref_loss: %lld tokens", (long long)T);
  const vkft_pref_objective *o = &d->objective;
  if (!(o->beta > 0) || (o->kind == VKFT_PREF_LOSS_ROBUST && !(o->label_smoothing < 0.5f)))
    return vkft_error("pref_loss: beta %g, label_smoothing %g", o->beta, o->label_smoothing);
  if (op_check("pref_loss", "row_loss", d->row_loss, T, DT(VKFT_F32)) ||
      op_check("pref_loss", "tok", d->tok, T, DT(VKFT_I32)) ||
      op_check("pref_loss", "ranges", d->ranges, 4 * N, DT(VKFT_I32)) ||
      (d->ref && op_check("pref_loss", "ref", d->ref, 2 * N, DT(VKFT_F32))) ||
      op_check("pref_loss", "seq", d->seq, 4 * N + 2, DT(VKFT_F32)) ||
      (d->weights && op_check("pref_loss", "weights", d->weights, T, DT(VKFT_F32))))
    return VKFT_ERR;
  if (!be->dev) {
    vkft_ref_pref_loss_f32(o, d->row_loss->host, d->tok->host, d->ranges->host,
                           d->ref ? d->ref->host : NULL, T, N, d->seq->host,
                           d->weights ? d->weights->host : NULL);
    return VKFT_OK;
  }
  struct {
    uint64_t row_loss, tok, ranges, ref, seq, weights;
    uint32_t T, N, kind;
    float beta, label_smoothing, pair_scale, nll_scale;
  } push = {d->row_loss->buf.addr, d->tok->buf.addr,
            d->ranges->buf.addr,   d->ref ? d->ref->buf.addr : 0,
            d->seq->buf.addr,      d->weights ? d->weights->buf.addr : 0,
            (uint32_t)T,           (uint32_t)N,
            (uint32_t)o->kind,     o->beta,
            o->label_smoothing,    o->pair_scale,
            o->nll_scale};
  vkft_dispatch_desc v = {
      .shader = "pref_loss",
      .push = &push,
      .push_size = sizeof push,
      .groups = {1, 1, 1},
      .reads = {vk_range_of(d->row_loss), vk_range_of(d->tok), vk_range_of(d->ranges)},
      .read_count = 3,
      .writes = {vk_range_of(d->seq)},
      .write_count = 1};
  if (d->ref) v.reads[v.read_count++] = vk_range_of(d->ref);
  if (d->weights) v.writes[v.write_count++] = vk_range_of(d->weights);
  return vkft_stream_dispatch(be->dev, &v);
}
