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
 * `at`, in the table's dtype (a GGUF's block types: dequantized to fp32 here): the device widens
 * them to X0. */
static int upload_embedding_rows(vkft_model *m, const int32_t *ids, int64_t n, int64_t at) {
  int64_t C = m->cfg.hidden_size;
  size_t row = (size_t)C * vkft_dtype_size(m->emb_rows.dtype);
  uint8_t *rows = malloc(row * (size_t)n + 1);
  if (!rows) return vkft_error_nomem();
  if (vkft_dtype_is_quantized(m->embed_dtype))
    model_gguf_table_rows(m, ids, n, (float *)(void *)rows);
  for (int64_t t = 0; !vkft_dtype_is_quantized(m->embed_dtype) && t < n; t++)
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

/* PEFT's DoRA layer (dora.py DoraLinearLayer.forward, variants.py DoraLinearVariant.forward):
 *   y = x W^T + (g - 1) xd W^T + g s B A xd,  g = m / ||W + s B A|| (per output row, detached)
 * with xd the dropped input (x itself without dropout, and then y = g (x W^T + s B A x)). yd =
 * xd W^T + s B A xd is kept for m's gradient; with dropout y = (x - xd) W^T + g yd, the
 * difference taken in the backward's dropout scratch (unused until the backward). The bias, if
 * any, is added by the caller: unscaled, as PEFT subtracts it from the base result. */
static int dora_forward(vkft_model *m, lora_pair *lp, const vkft_tensor *w, const vkft_tensor *x,
                        const vkft_tensor *xd, vkft_tensor *y, int64_t T, int64_t in, int64_t out) {
  int64_t r = m->desc.lora_r;
  float s = (float)m->desc.lora_scale;
  TRY(vkft_dora_norm(m->be, w, &lp->a, &lp->b, &lp->mag, &lp->norm, &lp->scale, out, in, r, s));
  TRY(vkft_matmul(m->be, VKFT_MATMUL_NT, xd, w, &lp->yd, T, out, in, 1.0f, 0.0f));
  TRY(vkft_lora(m->be, xd, &lp->a, &lp->b, &lp->yd, &lp->u, T, in, out, r, s));
  if (xd == x) return vkft_dora_scale(m->be, &lp->yd, &lp->scale, y, T, out, 0.0f, 0.0f);
  vkft_tensor diff = vkft_tensor_view(&m->d_drop, 0, T * in);
  TRY(vkft_copy(m->be, xd, &diff, T * in));
  TRY(vkft_scale(m->be, &diff, -1.0f, T * in));
  TRY(vkft_add(m->be, x, &diff, &diff, T * in));
  TRY(vkft_matmul(m->be, VKFT_MATMUL_NT, &diff, w, y, T, out, in, 1.0f, 0.0f));
  return vkft_dora_scale(m->be, &lp->yd, &lp->scale, y, T, out, 0.0f, 1.0f);
}

/* y (T, out) = x W^T (+ bias) (+ s B A x, or DoRA's layer) for projection p of layer l */
static int project(vkft_model *m, layer *ly, int p, const vkft_tensor *x, vkft_tensor *y,
                   int64_t T) {
  int64_t in = m->proj_in[p], out = m->proj_out[p];
  lora_pair *lp = &ly->lora[p];
  int adapted = lp->on && !m->adapter_off, dora = adapted && m->desc.use_dora;
  const vkft_tensor *xin = x;
  if (adapted && m->dropout_on && m->desc.lora_dropout > 0) { /* PEFT: lora_B(lora_A(dropout(x))) */
    uint32_t stream = (uint32_t)((ly - m->layers) * P_PROJ_COUNT + p);
    TRY(vkft_dropout(m->be, x, &lp->xd, T * in, m->desc.lora_dropout, m->dropout_seed, stream));
    xin = &lp->xd;
  }
  if (dora)
    TRY(dora_forward(m, lp, &ly->proj[p], x, xin, y, T, in, out));
  else
    TRY(vkft_matmul(m->be, VKFT_MATMUL_NT, x, &ly->proj[p], y, T, out, in, 1.0f, 0.0f));
  if (vkft_proj_has_bias(p) && m->cfg.attention_bias) /* ones (T, 1) x bias (1, out) */
    TRY(vkft_matmul(m->be, VKFT_MATMUL_NN, &m->ones, &ly->bias[p], y, T, out, 1, 1.0f, 1.0f));
  if (adapted && !dora)
    TRY(vkft_lora(m->be, xin, &lp->a, &lp->b, y, &lp->u, T, in, out, m->desc.lora_r,
                  (float)m->desc.lora_scale));
  return VKFT_OK;
}

/* DoRA's backward from dy (T, out), the forward's scale g and norm held fixed (detached): the
 * input gradient dx = dy W + mask((g - 1) dy W + LoRA's from g dy), or without dropout
 * (g dy) W + LoRA's from g dy; dA, dB from g dy; dm += sum_t dy yd / norm. */
static int dora_backward(vkft_model *m, layer *ly, int p, const vkft_tensor *x,
                         const vkft_tensor *dy, vkft_tensor *dx, int64_t T, int accumulate) {
  int64_t in = m->proj_in[p], out = m->proj_out[p], r = m->desc.lora_r;
  float s = (float)m->desc.lora_scale, beta = accumulate ? 1.0f : 0.0f;
  lora_pair *lp = &ly->lora[p];
  const vkft_tensor *w = &ly->proj[p];
  vkft_tensor dyg = vkft_tensor_view(&m->d_dora, 0, T * out);
  TRY(vkft_dora_mag_grad(m->be, dy, &lp->yd, &lp->norm, &lp->gmag, T, out));
  if (!(m->dropout_on && m->desc.lora_dropout > 0)) {
    TRY(vkft_dora_scale(m->be, dy, &lp->scale, &dyg, T, out, 0.0f, 0.0f)); /* g dy */
    TRY(vkft_matmul(m->be, VKFT_MATMUL_NN, &dyg, w, dx, T, in, out, 1.0f, beta));
    return vkft_lora_bwd(m->be, x, &lp->a, &lp->b, &lp->u, &dyg, dx, &lp->ga, &lp->gb, &m->d_u, T,
                         in, out, r, s);
  }
  uint32_t stream = (uint32_t)((ly - m->layers) * P_PROJ_COUNT + p);
  TRY(vkft_matmul(m->be, VKFT_MATMUL_NN, dy, w, dx, T, in, out, 1.0f, beta));
  TRY(vkft_dora_scale(m->be, dy, &lp->scale, &dyg, T, out, 1.0f, 0.0f)); /* (g - 1) dy */
  TRY(vkft_matmul(m->be, VKFT_MATMUL_NN, &dyg, w, &m->d_drop, T, in, out, 1.0f, 0.0f));
  TRY(vkft_dora_scale(m->be, dy, &lp->scale, &dyg, T, out, 0.0f, 0.0f)); /* g dy */
  TRY(vkft_lora_bwd(m->be, &lp->xd, &lp->a, &lp->b, &lp->u, &dyg, &m->d_drop, &lp->ga, &lp->gb,
                    &m->d_u, T, in, out, r, s));
  TRY(vkft_dropout(m->be, &m->d_drop, &m->d_drop, T * in, m->desc.lora_dropout, m->dropout_seed,
                   stream));
  return vkft_add(m->be, dx, &m->d_drop, dx, T * in);
}

/* The gradients of projection p from dy (T, out): dx (T, in) written (accumulate == 0) or
 * added to, and the weight's (full) or the adapter's (LoRA) gradients accumulated. */
static int project_bwd(vkft_model *m, layer *ly, int p, const vkft_tensor *x, const vkft_tensor *dy,
                       vkft_tensor *dx, int64_t T, int accumulate) {
  int64_t in = m->proj_in[p], out = m->proj_out[p];
  int dora = ly->lora[p].on && m->desc.use_dora;
  if (dora)
    TRY(dora_backward(m, ly, p, x, dy, dx, T, accumulate));
  else
    TRY(vkft_matmul(m->be, VKFT_MATMUL_NN, dy, &ly->proj[p], dx, T, in, out, 1.0f,
                    accumulate ? 1.0f : 0.0f));
  if (ly->g_proj[p].n) /* dW (out, in) += dy^T x */
    TRY(vkft_matmul(m->be, VKFT_MATMUL_TN, dy, x, &ly->g_proj[p], out, in, T, 1.0f, 1.0f));
  if (vkft_proj_has_bias(p) && m->cfg.attention_bias &&
      ly->g_bias[p].n) /* dbias (1, out) += ones^T dy */
    TRY(vkft_matmul(m->be, VKFT_MATMUL_TN, &m->ones, dy, &ly->g_bias[p], 1, out, T, 1.0f, 1.0f));
  if (dora) {
    /* dora_backward did the adapter's part */
  } else if (ly->lora[p].on && m->dropout_on && m->desc.lora_dropout > 0) {
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
 * `decode`, the T rows are new tokens of sequences in the slotted KV cache (seq holds each
 * token's cache row, pos its position): their keys and values are stored at their rows and each
 * query attends to its own sequence's cached positions. */
static int forward_layer_at(vkft_model *m, int slot, int64_t T, int64_t l, int decode) {
  const vkft_model_config *c = &m->cfg;
  int64_t C = c->hidden_size, F = c->intermediate_size, D = c->head_dim;
  int64_t H = c->num_heads, KV = c->num_kv_heads;
  float eps = (float)c->rms_norm_eps, scale = (float)(1.0 / sqrt((double)D));
  vkft_tensor pos = slot_view(&m->pos, slot, m->T, T), seq = slot_view(&m->seq, slot, m->T, T);
  layer *ly = &m->layers[l];
  TRY(vkft_rmsnorm(m->be, &m->x[l], &ly->attn_norm, &ly->h1, &ly->rstd1, T, C, eps));
  TRY(project(m, ly, 0, &ly->h1, c->qk_norm ? &ly->q_raw : &ly->q, T)); /* (T, H*D) */
  TRY(project(m, ly, 1, &ly->h1, c->qk_norm ? &ly->k_raw : &ly->k, T)); /* (T, KV*D) */
  TRY(project(m, ly, 2, &ly->h1, &ly->v, T));
  if (c->qk_norm) { /* Qwen3: RMSNorm over each head's D values */
    TRY(vkft_rmsnorm(m->be, &ly->q_raw, &ly->q_norm, &ly->q, &ly->rstd_q, T * H, D, eps));
    TRY(vkft_rmsnorm(m->be, &ly->k_raw, &ly->k_norm, &ly->k, &ly->rstd_k, T * KV, D, eps));
  }
  TRY(vkft_rope(m->be, &ly->q, &ly->q, &pos, &m->rope_freqs, T, H, D));
  TRY(vkft_rope(m->be, &ly->k, &ly->k, &pos, &m->rope_freqs, T, KV, D));
  if (decode) {
    TRY(vkft_kv_store(m->be, &ly->k, &seq, &ly->kc, T, KV * D, m->kv_rows));
    TRY(vkft_kv_store(m->be, &ly->v, &seq, &ly->vc, T, KV * D, m->kv_rows));
    TRY(vkft_attention_decode(m->be, &ly->q, &ly->kc, &ly->vc, &seq, &pos, &ly->att, T, m->kv_rows,
                              H, KV, D, scale));
  } else {
    TRY(vkft_attention(m->be, &ly->q, &ly->k, &ly->v, &seq, &ly->att, &ly->lse, T, H, KV, D,
                       scale));
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
  return forward_layer_at(m, slot, T, l, 0);
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

int vkft_model_decode_step(vkft_model *m, const vkft_decode_step *step, float *logits) {
  const vkft_model_config *c = &m->cfg;
  int64_t C = c->hidden_size, V = c->vocab_size, n = step->n, n_out = step->n_out;
  if (!m->desc.kv_cache) return vkft_error("model: loaded without a KV cache");
  if (n <= 0 || n > m->T)
    return vkft_error("model: a decode step of %lld tokens does not fit the planned %lld",
                      (long long)n, (long long)m->T);
  if (n_out < 0 || n_out > m->kv_slots)
    return vkft_error("model: %lld logits rows asked of a cache of %lld sequences",
                      (long long)n_out, (long long)m->kv_slots);
  TRY(vkft_embedding_check_ids(step->ids, n, V));
  int32_t *rows = malloc((size_t)n * sizeof *rows);
  if (!rows) return vkft_error_nomem();
  int status = VKFT_OK;
  for (int64_t i = 0; i < n && status == VKFT_OK; i++) {
    if (step->slot[i] < 0 || step->slot[i] >= m->kv_slots || step->pos[i] < 0 ||
        step->pos[i] >= m->kv_len)
      status = vkft_error("model: token %lld at position %d of sequence %d is outside the cache "
                          "(%lld sequences of %lld positions)",
                          (long long)i, step->pos[i], step->slot[i], (long long)m->kv_slots,
                          (long long)m->kv_len);
    else
      rows[i] = (int32_t)(step->slot[i] * m->kv_len + step->pos[i]);
  }
  for (int64_t i = 0; i < n_out && status == VKFT_OK; i++)
    if (step->out[i] < 0 || step->out[i] >= n)
      status =
          vkft_error("model: logits of token %d of a step of %lld", step->out[i], (long long)n);
  /* decode inputs: ids, positions, each token's cache row (in seq) and the rows whose logits
   * are wanted (in labels) */
  vkft_tensor tids = slot_view(&m->ids, 0, m->T, n), tpos = slot_view(&m->pos, 0, m->T, n);
  vkft_tensor trows = slot_view(&m->seq, 0, m->T, n), tout = slot_view(&m->labels, 0, m->T, n_out);
  if (status == VKFT_OK)
    status = vkft_tensor_write(m->be, &tids, step->ids) ||
             vkft_tensor_write(m->be, &tpos, step->pos) || vkft_tensor_write(m->be, &trows, rows) ||
             (n_out > 0 && vkft_tensor_write(m->be, &tout, step->out)) ||
             (m->embed_on_host && upload_embedding_rows(m, step->ids, n, 0));
  free(rows);
  TRY(status);
  vkft_tensor last = vkft_tensor_view(&m->tmp, 0, n_out * C);
  vkft_tensor out = vkft_tensor_view(&m->decode_logits, 0, n_out * V);
  status = vkft_begin(m->be);
  if (status == VKFT_OK) {
    if (m->embed_on_host) {
      vkft_tensor emb = vkft_tensor_view(&m->emb_rows, 0, n * C);
      status = vkft_convert(m->be, &emb, &m->x[0], n * C);
    } else {
      status = vkft_embedding(m->be, &m->embed, &tids, &m->x[0], n, C, V);
    }
    for (int64_t l = 0; status == VKFT_OK && l < c->num_layers; l++)
      status = forward_layer_at(m, 0, n, l, 1);
    if (status == VKFT_OK)
      status = vkft_rmsnorm(m->be, &m->x[c->num_layers], &m->final_norm, &m->hf, &m->rstd_f, n, C,
                            (float)c->rms_norm_eps);
    /* the wanted rows of the final hidden state (a gather is an embedding lookup), then the
     * LM head on them alone */
    if (status == VKFT_OK && n_out > 0)
      status = vkft_embedding(m->be, &m->hf, &tout, &last, n_out, C, n) ||
               vkft_matmul(m->be, VKFT_MATMUL_NT, &last, m->lm_head, &out, n_out, V, C, 1.0f, 0.0f);
    if (vkft_end(m->be) != VKFT_OK) status = VKFT_ERR;
  }
  if (status == VKFT_OK && n_out > 0) status = vkft_tensor_read(m->be, &out, logits);
  return status ? VKFT_ERR : VKFT_OK;
}

int vkft_model_decode(vkft_model *m, const int32_t *ids, int64_t n, int64_t pos0, float *logits) {
  if (n <= 0 || pos0 < 0 || pos0 + n > m->kv_len)
    return vkft_error("model: positions %lld..%lld do not fit the cache of %lld", (long long)pos0,
                      (long long)(pos0 + n - 1), (long long)m->kv_len);
  int32_t *slot = calloc((size_t)n, sizeof *slot), *pos = malloc((size_t)n * sizeof *pos);
  if (!slot || !pos) {
    free(slot), free(pos);
    return vkft_error_nomem();
  }
  for (int64_t i = 0; i < n; i++) pos[i] = (int32_t)(pos0 + i);
  int32_t last = (int32_t)(n - 1);
  vkft_decode_step step = {.n = n, .ids = ids, .slot = slot, .pos = pos, .n_out = 1, .out = &last};
  int status = vkft_model_decode_step(m, &step, logits);
  free(slot), free(pos);
  return status;
}
