/* Preference objectives at the model level: a micro-batch of pairs runs, in one stream, the
 * reference forward (DPO with LoRA: the same frozen weights with the adapter off, no second
 * model in memory), the policy forward, the LM head's per-token losses, the objective's
 * sequence log-probs and token weights (vkft_pref_loss), and the backward from the weighted
 * cross-entropy. No (T, V) logits are kept at any point. */
#include "internal.h"

#include "vkft/error.h"

#include <stdlib.h>
#include <string.h>

static vkft_tensor slot_view(const vkft_tensor *t, int slot, int64_t cap, int64_t n) {
  return vkft_tensor_view(t, (int64_t)slot * cap, n);
}

static int64_t seq_len(const vkft_model *m) {
  return 4 * m->desc.pref_pairs + 2;
}

int vkft_model_set_pref(vkft_model *m, int slot, const vkft_model_pref_batch *b) {
  const int64_t P = m->desc.pref_pairs, T = slot >= 0 && slot < 64 ? m->slot_T[slot] : 0;
  if (P <= 0) return vkft_error("model: loaded without preference buffers");
  if (slot < 0 || slot >= m->desc.micro_batches || T <= 0)
    return vkft_error("model: micro-batch slot %d has no batch (set it first)", slot);
  if (b->N <= 0 || b->N > P)
    return vkft_error("model: %lld pairs in a micro-batch planned for %lld", (long long)b->N,
                      (long long)P);
  for (int64_t s = 0; s < 2 * b->N; s++) /* the op trusts these: a bad range is a bug */
    if (b->ranges[2 * s] < 0 || b->ranges[2 * s] > b->ranges[2 * s + 1] || b->ranges[2 * s + 1] > T)
      return vkft_error_with(VKFT_ERR_INTERNAL, "model: sequence %lld spans [%d, %d) of %lld",
                             (long long)s, b->ranges[2 * s], b->ranges[2 * s + 1], (long long)T);
  vkft_tensor tok = slot_view(&m->pref_tok, slot, m->T, T);
  vkft_tensor ranges = slot_view(&m->pref_ranges, slot, 4 * P, 4 * b->N);
  if (vkft_tensor_write(m->be, &tok, b->tok) || vkft_tensor_write(m->be, &ranges, b->ranges))
    return VKFT_ERR;
  if (b->ref) {
    vkft_tensor ref = slot_view(&m->pref_ref_seq, slot, seq_len(m), 2 * b->N);
    if (vkft_tensor_write(m->be, &ref, b->ref)) return VKFT_ERR;
  }
  m->slot_pairs[slot] = b->ref ? -b->N : b->N; /* negative: the reference is given */
  return VKFT_OK;
}

int vkft_model_pref_forward_backward(vkft_model *m, int slot, const vkft_pref_objective *o,
                                     int backward) {
  const int64_t T = slot >= 0 && slot < 64 ? m->slot_T[slot] : 0;
  const int64_t N = slot >= 0 && slot < 64 ? llabs(m->slot_pairs[slot]) : 0;
  if (slot < 0 || slot >= m->desc.micro_batches || T <= 0 || N <= 0)
    return vkft_error("model: micro-batch slot %d has no preference batch", slot);
  if (backward && !m->desc.training) return vkft_error("model: loaded without training state");
  const int given_ref = m->slot_pairs[slot] < 0, orpo = o->kind == VKFT_PREF_LOSS_ORPO;
  if (!orpo && !given_ref && m->desc.full)
    return vkft_error("model: DPO with full fine-tuning needs the reference log-probs given "
                      "(there is no adapter to switch off)");
  const vkft_model_config *c = &m->cfg;
  vkft_tensor labels = slot_view(&m->labels, slot, m->T, T);
  vkft_tensor loss = vkft_tensor_view(&m->loss, 2 * slot, 2);
  vkft_tensor row_loss = vkft_tensor_view(&m->row_loss, 0, T);
  vkft_tensor row_weight = vkft_tensor_view(&m->row_weight, 0, T);
  vkft_tensor tok = slot_view(&m->pref_tok, slot, m->T, T);
  vkft_tensor ranges = slot_view(&m->pref_ranges, slot, 4 * m->desc.pref_pairs, 4 * N);
  vkft_tensor ref_seq = slot_view(&m->pref_ref_seq, slot, seq_len(m), 4 * N + 2);
  vkft_tensor seq = slot_view(&m->pref_seq, slot, seq_len(m), 4 * N + 2);
  vkft_tensor ref = vkft_tensor_view(&ref_seq, 0, 2 * N);
  vkft_cross_entropy_desc ce = {.h = &m->hf,
                                .w = m->lm_head,
                                .labels = &labels,
                                .T = T,
                                .C = c->hidden_size,
                                .V = c->vocab_size,
                                .grad_scale = 1.0f, /* the weights carry the step's scales */
                                .loss = &loss,
                                .row_loss = &row_loss,
                                .scratch = &m->ce_scratch,
                                .chunk = m->ce_chunk,
                                .phase = VKFT_CE_FORWARD};
  vkft_pref_loss_desc pd = {
      .objective = *o, .row_loss = &row_loss, .tok = &tok, .ranges = &ranges, .T = T, .N = N};
  if (!orpo && !given_ref) {
    /* DPO's reference: the base alone, no dropout, its sequence log-probs into ref_seq */
    m->adapter_off = 1;
    m->dropout_on = 0;
    int status = model_forward(m, slot, T) || vkft_cross_entropy_run(m->be, &ce);
    m->adapter_off = 0;
    pd.seq = &ref_seq;
    if (status || vkft_pref_loss(m->be, &pd)) return VKFT_ERR;
  }
  m->dropout_on = backward; /* dropout only while training, as in model.train() */
  int status = model_forward(m, slot, T) || vkft_cross_entropy_run(m->be, &ce);
  pd.seq = &seq;
  pd.ref = orpo ? NULL : &ref;
  pd.weights = backward ? &row_weight : NULL;
  if (status == VKFT_OK) status = vkft_pref_loss(m->be, &pd);
  if (status == VKFT_OK && backward) {
    vkft_tensor *dw = m->g_lm_head->n ? m->g_lm_head : NULL;
    ce.phase = VKFT_CE_BACKWARD;
    ce.row_weight = &row_weight;
    ce.dh = &m->d_h;
    ce.dw = dw;
    status = vkft_cross_entropy_run(m->be, &ce) || model_backward(m, slot, T);
  }
  m->dropout_on = 0;
  return status ? VKFT_ERR : VKFT_OK;
}

int vkft_model_read_pref(vkft_model *m, int slot, float *seq, float *ref_seq) {
  const int64_t N = slot >= 0 && slot < 64 ? llabs(m->slot_pairs[slot]) : 0;
  if (N <= 0) return vkft_error("model: micro-batch slot %d has no preference batch", slot);
  vkft_tensor s = slot_view(&m->pref_seq, slot, seq_len(m), 4 * N + 2);
  if (vkft_tensor_read(m->be, &s, seq)) return VKFT_ERR;
  if (!ref_seq) return VKFT_OK;
  vkft_tensor r = slot_view(&m->pref_ref_seq, slot, seq_len(m), 2 * N); /* the log-probs */
  return vkft_tensor_read(m->be, &r, ref_seq);
}
