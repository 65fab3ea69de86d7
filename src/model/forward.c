/* The decoder's forward and backward for one micro-batch, recorded op by op (shapes in the
 * comments: T tokens, C hidden, F intermediate, H/KV heads of D, V vocabulary). The forward
 * saves each layer's activations; the backward walks the layers in reverse, accumulating
 * weight (or LoRA) gradients with beta = 1 so that micro-batches add up to the step's. */
#include "internal.h"

#include "vkft/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != VKFT_OK) return VKFT_ERR;                                                           \
  } while (0)

static vkft_tensor slot_view(const vkft_tensor *t, int slot, int64_t cap, int64_t n) {
  return vkft_tensor_view(t, (int64_t)slot * cap, n);
}

/* The embedding rows of n ids gathered on the host (embed_on_host) into emb_rows at element
 * `at`, in the table's dtype: the device widens them to X0. */
static int upload_embedding_rows(vkft_model *m, const int32_t *ids, int64_t n, int64_t at) {
  int64_t C = m->cfg.hidden_size;
  size_t row = (size_t)C * vkft_dtype_size(m->embed_dtype);
  uint8_t *rows = malloc(row * (size_t)n + 1);
  if (!rows) return vkft_error_nomem();
  for (int64_t t = 0; t < n; t++)
    memcpy(rows + row * (size_t)t, m->embed_src + row * (size_t)ids[t], row);
  int status = vkft_tensor_write_range(m->be, &m->emb_rows, at, n * C, rows);
  free(rows);
  return status;
}

int vkft_model_set_batch(vkft_model *m, int slot, const vkft_model_batch *b) {
  if (slot < 0 || slot >= m->desc.micro_batches) return vkft_error("model: batch slot %d", slot);
  if (b->T <= 0 || b->T > m->T)
    return vkft_error("model: a micro-batch of %lld tokens does not fit the planned %lld",
                      (long long)b->T, (long long)m->T);
  int64_t T = b->T, V = m->cfg.vocab_size;
  if (vkft_embedding_check_ids(b->ids, T, V) != VKFT_OK) return VKFT_ERR;
  int32_t *shifted = malloc((size_t)T * sizeof *shifted);
  if (!shifted) return vkft_error_nomem();
  /* HF convention: labels are aligned with the ids and the model shifts them; the last token of
   * each packed sequence has no target inside its sequence. */
  for (int64_t t = 0; t < T; t++) {
    int32_t next = t + 1 < T && b->seq[t + 1] == b->seq[t] ? b->labels[t + 1] : -100;
    shifted[t] = next >= 0 && next < V ? next : -100;
  }
  vkft_tensor ids = slot_view(&m->ids, slot, m->T, T),
              labels = slot_view(&m->labels, slot, m->T, T);
  vkft_tensor pos = slot_view(&m->pos, slot, m->T, T), seq = slot_view(&m->seq, slot, m->T, T);
  int status = vkft_tensor_write(m->be, &ids, b->ids) ||
               vkft_tensor_write(m->be, &labels, shifted) ||
               vkft_tensor_write(m->be, &pos, b->pos) || vkft_tensor_write(m->be, &seq, b->seq);
  free(shifted);
  if (status == VKFT_OK && m->embed_on_host)
    status = upload_embedding_rows(m, b->ids, T, (int64_t)slot * m->T * m->cfg.hidden_size);
  if (status) return VKFT_ERR;
  if (m->desc.training && m->trainable_embed) {
    int64_t len = vkft_embedding_plan_len(m->T);
    int32_t *plan = malloc((size_t)len * sizeof *plan);
    if (!plan) return vkft_error_nomem();
    vkft_tensor pv = slot_view(&m->emb_plan, slot, len, len);
    status = vkft_embedding_plan(b->ids, T, V, plan, &m->emb_unique[slot]) ||
             vkft_tensor_write(m->be, &pv, plan);
    free(plan);
    if (status) return VKFT_ERR;
  }
  m->slot_T[slot] = T;
  return VKFT_OK;
}

/* y (T, out) = x W^T (+ bias) (+ s B A x) for projection p of layer l */
static int project(vkft_model *m, layer *ly, int p, const vkft_tensor *x, vkft_tensor *y,
                   int64_t T) {
  int64_t in = m->proj_in[p], out = m->proj_out[p];
  TRY(vkft_matmul(m->be, VKFT_MATMUL_NT, x, &ly->proj[p], y, T, out, in, 1.0f, 0.0f));
  if (vkft_proj_has_bias(p) && m->cfg.attention_bias) /* ones (T, 1) x bias (1, out) */
    TRY(vkft_matmul(m->be, VKFT_MATMUL_NN, &m->ones, &ly->bias[p], y, T, out, 1, 1.0f, 1.0f));
  if (ly->lora[p].on && !m->adapter_off) {
    const vkft_tensor *xin = x;
    if (m->dropout_on && m->desc.lora_dropout > 0) { /* PEFT: lora_B(lora_A(dropout(x))) */
      uint32_t stream = (uint32_t)((ly - m->layers) * P_PROJ_COUNT + p);
      TRY(vkft_dropout(m->be, x, &ly->lora[p].xd, T * in, m->desc.lora_dropout, m->dropout_seed,
                       stream));
      xin = &ly->lora[p].xd;
    }
    TRY(vkft_lora(m->be, xin, &ly->lora[p].a, &ly->lora[p].b, y, &ly->lora[p].u, T, in, out,
                  m->desc.lora_r, (float)m->desc.lora_scale));
  }
  return VKFT_OK;
}

/* The gradients of projection p from dy (T, out): dx (T, in) written (accumulate == 0) or
 * added to, and the weight's (full) or the adapter's (LoRA) gradients accumulated. */
static int project_bwd(vkft_model *m, layer *ly, int p, const vkft_tensor *x, const vkft_tensor *dy,
                       vkft_tensor *dx, int64_t T, int accumulate) {
  int64_t in = m->proj_in[p], out = m->proj_out[p];
  TRY(vkft_matmul(m->be, VKFT_MATMUL_NN, dy, &ly->proj[p], dx, T, in, out, 1.0f,
                  accumulate ? 1.0f : 0.0f));
  if (ly->g_proj[p].n) /* dW (out, in) += dy^T x */
    TRY(vkft_matmul(m->be, VKFT_MATMUL_TN, dy, x, &ly->g_proj[p], out, in, T, 1.0f, 1.0f));
  if (vkft_proj_has_bias(p) && m->cfg.attention_bias &&
      ly->g_bias[p].n) /* dbias (1, out) += ones^T dy */
    TRY(vkft_matmul(m->be, VKFT_MATMUL_TN, &m->ones, dy, &ly->g_bias[p], 1, out, T, 1.0f, 1.0f));
  if (ly->lora[p].on && m->dropout_on && m->desc.lora_dropout > 0) {
    /* the branch's input gradient goes through the same mask before joining dx */
    uint32_t stream = (uint32_t)((ly - m->layers) * P_PROJ_COUNT + p);
    TRY(vkft_fill(m->be, &m->d_drop, 0.0, T * in));
    TRY(vkft_lora_bwd(m->be, &ly->lora[p].xd, &ly->lora[p].a, &ly->lora[p].b, &ly->lora[p].u, dy,
                      &m->d_drop, &ly->lora[p].ga, &ly->lora[p].gb, &m->d_u, T, in, out,
                      m->desc.lora_r, (float)m->desc.lora_scale));
    TRY(vkft_dropout(m->be, &m->d_drop, &m->d_drop, T * in, m->desc.lora_dropout, m->dropout_seed,
                     stream));
    TRY(vkft_add(m->be, dx, &m->d_drop, dx, T * in));
  } else if (ly->lora[p].on) {
    TRY(vkft_lora_bwd(m->be, x, &ly->lora[p].a, &ly->lora[p].b, &ly->lora[p].u, dy, dx,
                      &ly->lora[p].ga, &ly->lora[p].gb, &m->d_u, T, in, out, m->desc.lora_r,
                      (float)m->desc.lora_scale));
  }
  return VKFT_OK;
}

/* One decoder layer: X[l+1] = X[l] + attention(...) + mlp(...), saving its activations. With
 * `cached`, the T rows are positions pos0.. of one sequence: their keys and values go into the
 * layer's KV cache and the queries attend to every cached position. */
static int forward_layer_at(vkft_model *m, int slot, int64_t T, int64_t l, int64_t pos0,
                            int cached) {
  const vkft_model_config *c = &m->cfg;
  int64_t C = c->hidden_size, F = c->intermediate_size, D = c->head_dim;
  int64_t H = c->num_heads, KV = c->num_kv_heads;
  float eps = (float)c->rms_norm_eps, scale = (float)(1.0 / sqrt((double)D));
  vkft_tensor pos = slot_view(&m->pos, slot, m->T, T), seq = slot_view(&m->seq, slot, m->T, T);
  layer *ly = &m->layers[l];
  vkft_tensor k = ly->k, v = ly->v;
  if (cached) { /* the new rows of the cache */
    k = vkft_tensor_view(&ly->kc, pos0 * KV * D, T * KV * D);
    v = vkft_tensor_view(&ly->vc, pos0 * KV * D, T * KV * D);
  }
  TRY(vkft_rmsnorm(m->be, &m->x[l], &ly->attn_norm, &ly->h1, &ly->rstd1, T, C, eps));
  TRY(project(m, ly, 0, &ly->h1, c->qk_norm ? &ly->q_raw : &ly->q, T)); /* (T, H*D) */
  TRY(project(m, ly, 1, &ly->h1, c->qk_norm ? &ly->k_raw : &k, T));     /* (T, KV*D) */
  TRY(project(m, ly, 2, &ly->h1, &v, T));
  if (c->qk_norm) { /* Qwen3: RMSNorm over each head's D values */
    TRY(vkft_rmsnorm(m->be, &ly->q_raw, &ly->q_norm, &ly->q, &ly->rstd_q, T * H, D, eps));
    TRY(vkft_rmsnorm(m->be, &ly->k_raw, &ly->k_norm, &k, &ly->rstd_k, T * KV, D, eps));
  }
  TRY(vkft_rope(m->be, &ly->q, &ly->q, &pos, &m->rope_freqs, T, H, D));
  TRY(vkft_rope(m->be, &k, &k, &pos, &m->rope_freqs, T, KV, D));
  if (cached) {
    vkft_tensor all_seq = slot_view(&m->seq, slot, m->T, pos0 + T);
    TRY(vkft_attention_at(m->be, &ly->q, &ly->kc, &ly->vc, &all_seq, &ly->att, &ly->lse, T, pos0, H,
                          KV, D, scale));
  } else {
    TRY(vkft_attention(m->be, &ly->q, &k, &v, &seq, &ly->att, &ly->lse, T, H, KV, D, scale));
  }
  TRY(project(m, ly, P_O, &ly->att, &m->tmp, T));             /* (T, C) */
  TRY(vkft_add(m->be, &m->x[l], &m->tmp, &ly->x_mid, T * C)); /* residual */
  TRY(vkft_rmsnorm(m->be, &ly->x_mid, &ly->mlp_norm, &ly->h2, &ly->rstd2, T, C, eps));
  TRY(project(m, ly, P_GATE, &ly->h2, &ly->gate, T)); /* (T, F) */
  TRY(project(m, ly, P_UP, &ly->h2, &ly->up, T));
  TRY(vkft_swiglu(m->be, &ly->gate, &ly->up, &ly->act, T * F));
  TRY(project(m, ly, P_DOWN, &ly->act, &m->tmp, T));                /* (T, C) */
  return vkft_add(m->be, &ly->x_mid, &m->tmp, &m->x[l + 1], T * C); /* residual */
}

static int forward_layer(vkft_model *m, int slot, int64_t T, int64_t l) {
  return forward_layer_at(m, slot, T, l, 0, 0);
}

int model_forward(vkft_model *m, int slot, int64_t T) {
  const vkft_model_config *c = &m->cfg;
  int64_t C = c->hidden_size, V = c->vocab_size;
  vkft_tensor ids = slot_view(&m->ids, slot, m->T, T);
  if (m->embed_on_host) { /* the rows gathered at set_batch */
    vkft_tensor rows = slot_view(&m->emb_rows, slot, m->T * C, T * C);
    TRY(vkft_convert(m->be, &rows, &m->x[0], T * C)); /* X0 (T, C) */
  } else {
    TRY(vkft_embedding(m->be, &m->embed, &ids, &m->x[0], T, C, V)); /* X0 (T, C) */
  }
  /* NEFTune: noise on X0 while training; additive, so the backward passes through. Its own
   * stream of the dropout hash (LoRA dropout's streams are layer * 7 + projection). */
  if (m->dropout_on && m->noise_magnitude > 0)
    TRY(vkft_uniform_noise(m->be, &m->x[0], &m->x[0], T * C, m->noise_magnitude, m->dropout_seed,
                           0x4e454654u /* "NEFT" */));
  for (int64_t l = 0; l < c->num_layers; l++) TRY(forward_layer(m, slot, T, l));
  return vkft_rmsnorm(m->be, &m->x[c->num_layers], &m->final_norm, &m->hf, &m->rstd_f, T, C,
                      (float)c->rms_norm_eps);
}

int model_backward(vkft_model *m, int slot, int64_t T) {
  const vkft_model_config *c = &m->cfg;
  int64_t C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size, D = c->head_dim;
  int64_t H = c->num_heads, KV = c->num_kv_heads;
  float scale = (float)(1.0 / sqrt((double)D));
  vkft_tensor pos = slot_view(&m->pos, slot, m->T, T), seq = slot_view(&m->seq, slot, m->T, T);
  vkft_tensor *g = m->g_final_norm.n ? &m->g_final_norm : NULL;
  /* d_h holds dL/dhf from the loss; d_x becomes dL/dX[L] */
  TRY(vkft_rmsnorm_bwd(m->be, &m->x[c->num_layers], &m->final_norm, &m->rstd_f, &m->d_h, &m->d_x, g,
                       T, C));
  for (int64_t l = c->num_layers - 1; l >= 0; l--) {
    layer *ly = &m->layers[l];
    /* checkpointing: the shared activations hold the top layer's; recompute the others */
    if (m->desc.grad_checkpointing && l < c->num_layers - 1) TRY(forward_layer(m, slot, T, l));
    /* MLP: X[l+1] = x_mid + down(swiglu(gate(h2), up(h2))) */
    TRY(project_bwd(m, ly, P_DOWN, &ly->act, &m->d_x, &m->d_act, T, 0)); /* (T, F) */
    /* the gate and up gradients replace the activations they are computed from (their last
     * use): two (T, F) buffers fewer */
    TRY(vkft_swiglu_bwd(m->be, &ly->gate, &ly->up, &m->d_act, &ly->gate, &ly->up, T * F));
    TRY(project_bwd(m, ly, P_GATE, &ly->h2, &ly->gate, &m->d_h, T, 0)); /* (T, C) */
    TRY(project_bwd(m, ly, P_UP, &ly->h2, &ly->up, &m->d_h, T, 1));
    g = ly->g_mlp_norm.n ? &ly->g_mlp_norm : NULL;
    TRY(vkft_rmsnorm_bwd(m->be, &ly->x_mid, &ly->mlp_norm, &ly->rstd2, &m->d_h, &m->d_tmp, g, T,
                         C));
    TRY(vkft_add(m->be, &m->d_x, &m->d_tmp, &m->d_x, T * C)); /* dL/dx_mid */
    /* attention: x_mid = X[l] + o(attention(rope(q), rope(k), v)) */
    TRY(project_bwd(m, ly, P_O, &ly->att, &m->d_x, &m->d_att, T, 0)); /* (T, H*D) */
    TRY(vkft_attention_bwd(m->be, &ly->q, &ly->k, &ly->v, &seq, &ly->att, &ly->lse, &m->d_att,
                           &m->d_q, &m->d_k, &m->d_v, &m->delta, T, H, KV, D, scale));
    TRY(vkft_rope_bwd(m->be, &m->d_q, &m->d_q, &pos, &m->rope_freqs, T, H, D));
    TRY(vkft_rope_bwd(m->be, &m->d_k, &m->d_k, &pos, &m->rope_freqs, T, KV, D));
    if (c->qk_norm) {
      g = ly->g_q_norm.n ? &ly->g_q_norm : NULL;
      TRY(vkft_rmsnorm_bwd(m->be, &ly->q_raw, &ly->q_norm, &ly->rstd_q, &m->d_q, &m->d_tmp, g,
                           T * H, D));
      TRY(vkft_copy(m->be, &m->d_tmp, &m->d_q, T * H * D));
      g = ly->g_k_norm.n ? &ly->g_k_norm : NULL;
      TRY(vkft_rmsnorm_bwd(m->be, &ly->k_raw, &ly->k_norm, &ly->rstd_k, &m->d_k, &m->d_tmp, g,
                           T * KV, D));
      TRY(vkft_copy(m->be, &m->d_tmp, &m->d_k, T * KV * D));
    }
    TRY(project_bwd(m, ly, 0, &ly->h1, &m->d_q, &m->d_h, T, 0)); /* (T, C) */
    TRY(project_bwd(m, ly, 1, &ly->h1, &m->d_k, &m->d_h, T, 1));
    TRY(project_bwd(m, ly, 2, &ly->h1, &m->d_v, &m->d_h, T, 1));
    g = ly->g_attn_norm.n ? &ly->g_attn_norm : NULL;
    TRY(vkft_rmsnorm_bwd(m->be, &m->x[l], &ly->attn_norm, &ly->rstd1, &m->d_h, &m->d_tmp, g, T, C));
    TRY(vkft_add(m->be, &m->d_x, &m->d_tmp, &m->d_x, T * C)); /* dL/dX[l] */
  }
  if (m->trainable_embed) {
    int64_t len = vkft_embedding_plan_len(m->T);
    vkft_tensor plan = slot_view(&m->emb_plan, slot, len, len);
    TRY(vkft_embedding_bwd(m->be, &m->d_x, &plan, &m->g_embed, T, C, V, m->emb_unique[slot]));
  }
  return VKFT_OK;
}

int vkft_model_forward_backward(vkft_model *m, int slot, float grad_scale, int backward_too) {
  if (slot < 0 || slot >= m->desc.micro_batches || m->slot_T[slot] <= 0)
    return vkft_error("model: micro-batch slot %d has no batch", slot);
  if (backward_too && !m->desc.training) return vkft_error("model: loaded without training state");
  int64_t T = m->slot_T[slot];
  const vkft_model_config *c = &m->cfg;
  m->dropout_on = backward_too; /* dropout only while training, as in model.train() */
  int status = model_forward(m, slot, T);
  if (status != VKFT_OK) {
    m->dropout_on = 0;
    return VKFT_ERR;
  }
  vkft_tensor labels = slot_view(&m->labels, slot, m->T, T);
  vkft_tensor loss = vkft_tensor_view(&m->loss, 2 * slot, 2);
  vkft_tensor *dw = backward_too && m->g_lm_head->n ? m->g_lm_head : NULL;
  status = vkft_cross_entropy(m->be, &m->hf, m->lm_head, &labels, T, c->hidden_size, c->vocab_size,
                              grad_scale, backward_too ? &m->d_h : NULL, dw, &loss, &m->ce_scratch,
                              m->ce_chunk);
  if (status == VKFT_OK && backward_too) status = model_backward(m, slot, T);
  m->dropout_on = 0; /* on every path: a later eval must not drop */
  return status;
}

void vkft_model_set_dropout_seed(vkft_model *m, uint32_t seed) {
  m->dropout_seed = seed;
}

void vkft_model_set_noise(vkft_model *m, float magnitude) {
  m->noise_magnitude = magnitude;
}

int vkft_model_read_loss(vkft_model *m, int slot, double *loss_sum, double *count) {
  float v[2];
  vkft_tensor loss = vkft_tensor_view(&m->loss, 2 * slot, 2);
  TRY(vkft_tensor_read(m->be, &loss, v));
  *loss_sum = v[0];
  *count = v[1];
  return VKFT_OK;
}

int vkft_model_zero_grads(vkft_model *m) {
  for (int i = 0; i < m->param_count; i++)
    if (m->params[i].grad) TRY(vkft_fill(m->be, m->params[i].grad, 0.0, m->params[i].grad->n));
  return VKFT_OK;
}

int vkft_model_logits(vkft_model *m, int slot, float *logits) {
  if (slot < 0 || slot >= m->desc.micro_batches || m->slot_T[slot] <= 0)
    return vkft_error("model: micro-batch slot %d has no batch", slot);
  int64_t T = m->slot_T[slot], V = m->cfg.vocab_size, C = m->cfg.hidden_size;
  vkft_tensor out;
  TRY(vkft_tensor_alloc(m->be, VKFT_F32, T * V, &out));
  int status = vkft_begin(m->be);
  if (status == VKFT_OK) {
    status = model_forward(m, slot, T) ||
             vkft_matmul(m->be, VKFT_MATMUL_NT, &m->hf, m->lm_head, &out, T, V, C, 1.0f, 0.0f);
    if (vkft_end(m->be) != VKFT_OK) status = VKFT_ERR;
  }
  if (status == VKFT_OK) status = vkft_tensor_read(m->be, &out, logits);
  vkft_tensor_free(m->be, &out);
  return status ? VKFT_ERR : VKFT_OK;
}

int vkft_model_decode(vkft_model *m, const int32_t *ids, int64_t n, int64_t pos0, float *logits) {
  const vkft_model_config *c = &m->cfg;
  int64_t C = c->hidden_size, V = c->vocab_size;
  if (!m->desc.kv_cache) return vkft_error("model: loaded without a KV cache");
  if (n <= 0 || pos0 < 0 || pos0 + n > m->T)
    return vkft_error("model: positions %lld..%lld do not fit the cache of %lld", (long long)pos0,
                      (long long)(pos0 + n - 1), (long long)m->T);
  TRY(vkft_embedding_check_ids(ids, n, V));
  if (!m->cache_seq_ready) { /* one sequence: every cached position has id 0 */
    int32_t *zeros = calloc((size_t)m->T, sizeof *zeros);
    vkft_tensor seq = slot_view(&m->seq, 0, m->T, m->T);
    int status = zeros ? vkft_tensor_write(m->be, &seq, zeros) : vkft_error_nomem();
    free(zeros);
    TRY(status);
    m->cache_seq_ready = 1;
  }
  int32_t *pos = malloc((size_t)n * sizeof *pos);
  if (!pos) return vkft_error_nomem();
  for (int64_t i = 0; i < n; i++) pos[i] = (int32_t)(pos0 + i);
  vkft_tensor tids = slot_view(&m->ids, 0, m->T, n), tpos = slot_view(&m->pos, 0, m->T, n);
  int status = vkft_tensor_write(m->be, &tids, ids) || vkft_tensor_write(m->be, &tpos, pos) ||
               (m->embed_on_host && upload_embedding_rows(m, ids, n, 0));
  free(pos);
  TRY(status);
  vkft_tensor own = {0}, out = vkft_tensor_view(&m->ce_scratch, 0, V);
  if (m->ce_scratch.n < V) {
    TRY(vkft_tensor_alloc(m->be, VKFT_F32, V, &own));
    out = own;
  }
  vkft_tensor last = vkft_tensor_view(&m->hf, (n - 1) * C, C);
  status = vkft_begin(m->be);
  if (status == VKFT_OK) {
    if (m->embed_on_host) {
      vkft_tensor rows = vkft_tensor_view(&m->emb_rows, 0, n * C);
      status = vkft_convert(m->be, &rows, &m->x[0], n * C);
    } else {
      status = vkft_embedding(m->be, &m->embed, &tids, &m->x[0], n, C, V);
    }
    for (int64_t l = 0; status == VKFT_OK && l < c->num_layers; l++)
      status = forward_layer_at(m, 0, n, l, pos0, 1);
    if (status == VKFT_OK)
      status = vkft_rmsnorm(m->be, &m->x[c->num_layers], &m->final_norm, &m->hf, &m->rstd_f, n, C,
                            (float)c->rms_norm_eps) ||
               vkft_matmul(m->be, VKFT_MATMUL_NT, &last, m->lm_head, &out, 1, V, C, 1.0f, 0.0f);
    if (vkft_end(m->be) != VKFT_OK) status = VKFT_ERR;
  }
  if (status == VKFT_OK) status = vkft_tensor_read(m->be, &out, logits);
  if (own.n) vkft_tensor_free(m->be, &own);
  return status ? VKFT_ERR : VKFT_OK;
}
