/* Loading a Llama-family model (a Hugging Face folder, or a GGUF file: gguf_model.c) onto a
 * backend and planning all memory once:
 * weights (frozen ones keep their storage dtype, trainable ones are fp32), LoRA adapters,
 * gradients, saved activations and scratch. Weights stream from the memory-mapped
 * safetensors straight into device memory; only dtype conversions go through a small
 * bounded buffer, never a second full copy. */
#include "internal.h"

#include "vkft/buf.h"
#include "vkft/error.h"
#include "vkft/ggml_quants.h"
#include "vkft/platform.h"
#include "vkft/quant.h"
#include "vkft/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int model_own_quant(vkft_model *m, vkft_tensor *t, vkft_dtype dtype, int64_t n, const vkft_quant *q,
                    uint64_t *bucket) {
  if (m->desc.plan_only) { /* counted, not allocated */
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->n = n > 0 ? n : 1;
    if (q) t->quant = *q;
    *bucket += vkft_tensor_bytes(t);
    return VKFT_OK;
  }
  if (vkft_grow((void **)&m->allocated, &m->allocated_cap, (size_t)m->allocated_count + 1,
                sizeof *m->allocated))
    return VKFT_ERR;
  int status = q ? vkft_tensor_alloc_quant(m->be, dtype, n, q, t)
                 : vkft_tensor_alloc(m->be, dtype, n > 0 ? n : 1, t);
  if (status != VKFT_OK) return VKFT_ERR;
  m->allocated[m->allocated_count++] = t;
  *bucket += vkft_tensor_bytes(t);
  return VKFT_OK;
}

/* Allocates a tensor the model owns and counts its bytes in one of the plan's buckets (in a
 * plan-only load: counts them, and the tensor gets its dtype and size but no storage). */
static int own(vkft_model *m, vkft_tensor *t, vkft_dtype dtype, int64_t n, uint64_t *bucket) {
  return model_own_quant(m, t, dtype, n, NULL, bucket);
}

int model_add_param(vkft_model *m, const char *name, int rank, int64_t d0, int64_t d1,
                    vkft_tensor *value, vkft_tensor *grad) {
  vkft_param *grown = realloc(m->params, (size_t)(m->param_count + 1) * sizeof *grown);
  if (!grown) return vkft_error_nomem();
  m->params = grown;
  vkft_param *p = &m->params[m->param_count++];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->rank = rank;
  p->shape[0] = d0;
  p->shape[1] = d1;
  p->value = value;
  p->grad = grad;
  p->trainable = grad != NULL;
  p->decay = rank == 2;
  return VKFT_OK;
}

/* Rows d0..rows-1 of a (rows, C) vocabulary matrix whose first d0 rows are loaded: each set
 * to the mean of those rows, as transformers' resize_token_embeddings initialises new tokens. */
static int write_mean_rows(vkft_model *m, vkft_tensor *t, const model_weight *w, int64_t d0,
                           int64_t C, int64_t rows) {
  double *mean = calloc((size_t)C, sizeof *mean);
  float *row = malloc((size_t)C * sizeof *row);
  void *stored = malloc((size_t)C * 4);
  int status = mean && row && stored ? VKFT_OK : vkft_error_nomem();
  for (int64_t r = 0; status == VKFT_OK && r < d0; r++) {
    status = model_weight_to_f32(w, r * C, C, row);
    for (int64_t c = 0; c < C; c++) mean[c] += row[c];
  }
  for (int64_t c = 0; status == VKFT_OK && c < C; c++) row[c] = (float)(mean[c] / (double)d0);
  if (status == VKFT_OK) vkft_convert_from_f32(t->dtype, row, stored, (size_t)C);
  for (int64_t r = d0; status == VKFT_OK && r < rows; r++)
    status = vkft_tensor_write_range(m->be, t, r * C, C, stored);
  free(mean);
  free(row);
  free(stored);
  return status;
}

/* A weight of the model's file (safetensors, or a GGUF base). */
static int find_weight(vkft_model *m, const vkft_st_set *st, const char *name, model_weight *w) {
  if (m->gguf) return model_gguf_weight(m, name, w);
  memset(w, 0, sizeof *w);
  const vkft_st_tensor *t = vkft_st_find(st, name);
  if (!t) return vkft_error("%s: missing tensor \"%s\"", m->desc.dir, name);
  if (vkft_st_to_dtype(t->dtype, &w->dtype) != 0 || w->dtype == VKFT_I32)
    return vkft_error("%s: tensor \"%s\" has dtype %s (supported: F32, F16, BF16)",
                      vkft_st_file_of(st, t), name, t->dtype_name);
  w->data = t->data;
  w->rank = t->rank;
  for (int i = 0; i < 2 && i < t->rank; i++) w->shape[i] = t->shape[i];
  w->size = t->size;
  w->file = vkft_st_file_of(st, t);
  return VKFT_OK;
}

/* Writes the stored weight into t: as it is, or widened to fp32 in pieces (a whole number of
 * blocks each, for the ggml types). */
static int upload_weight(vkft_model *m, const model_weight *w, int64_t n, vkft_tensor *t) {
  if (t->dtype == w->dtype)
    return vkft_dtype_is_quantized(t->dtype) ? vkft_tensor_write(m->be, t, w->data)
                                             : vkft_tensor_write_range(m->be, t, 0, n, w->data);
  enum { PIECE = 1 << 20 };
  float *buf = malloc(PIECE * sizeof *buf);
  if (!buf) return vkft_error_nomem();
  int status = VKFT_OK;
  for (int64_t done = 0; status == VKFT_OK && done < n; done += PIECE) {
    int64_t k = n - done < PIECE ? n - done : PIECE;
    status =
        model_weight_to_f32(w, done, k, buf) || vkft_tensor_write_range(m->be, t, done, k, buf);
  }
  free(buf);
  return status ? VKFT_ERR : VKFT_OK;
}

/* Loads one named weight of the expected shape into a new tensor: in its file dtype when
 * frozen (a GGUF's block types included: the matmul reads them), in fp32 when trainable.
 * grow_to > d0 appends rows (a vocabulary grown by tokens.add) initialised to the mean row. */
static int load_weight_rows(vkft_model *m, const vkft_st_set *st, const char *name, int rank,
                            int64_t d0, int64_t d1, int64_t grow_to, int trainable, vkft_tensor *t,
                            vkft_tensor *grad) {
  if (!st && !m->gguf) { /* a plan from config.json alone: the weights in its torch_dtype */
    vkft_dtype dtype = trainable ? VKFT_F32 : m->config_dtype;
    int64_t rows = grow_to > d0 ? grow_to : d0, total = rows * (rank == 2 ? d1 : 1);
    if (own(m, t, dtype, total, trainable ? &m->bytes_trainable : &m->bytes_weights) ||
        (trainable && own(m, grad, VKFT_F32, total, &m->bytes_grads)))
      return VKFT_ERR;
    return model_add_param(m, name, rank, rows, d1, t, trainable ? grad : NULL);
  }
  model_weight w;
  if (find_weight(m, st, name, &w) != VKFT_OK) return VKFT_ERR;
  int64_t want[2] = {d0, d1};
  int shape_ok = w.rank == rank;
  for (int i = 0; shape_ok && i < rank; i++) shape_ok = w.shape[i] == want[i];
  if (!shape_ok) {
    model_weight_release(&w);
    return vkft_error("%s: tensor \"%s\" has shape [%lld%s%lld], the config implies [%lld%s%lld]",
                      w.file, name, (long long)w.shape[0], w.rank > 1 ? ", " : "",
                      w.rank > 1 ? (long long)w.shape[1] : 0LL, (long long)d0, rank > 1 ? ", " : "",
                      rank > 1 ? (long long)d1 : 0LL);
  }
  int64_t n = rank == 2 ? d0 * d1 : d0, rows = grow_to > d0 ? grow_to : d0;
  int64_t total = rows * (rank == 2 ? d1 : 1);
  /* trained weights are fp32; so are block-typed rows that grow (the mean rows are fp32) */
  vkft_dtype dtype =
      trainable || (rows > d0 && vkft_dtype_is_quantized(w.dtype)) ? VKFT_F32 : w.dtype;
  int status;
  if (vkft_dtype_is_quantized(dtype)) {
    vkft_quant q = {
        .blocksize = (int32_t)vkft_ggml_block_size((vkft_ggml_type)vkft_ggml_type_of_dtype(dtype))};
    status = model_own_quant(m, t, dtype, total, &q, &m->bytes_weights);
  } else {
    status = own(m, t, dtype, total, trainable ? &m->bytes_trainable : &m->bytes_weights);
  }
  if (status == VKFT_OK && !m->desc.plan_only && rows > d0)
    status = write_mean_rows(m, t, &w, d0, d1, rows);
  if (status == VKFT_OK && !m->desc.plan_only) status = upload_weight(m, &w, n, t);
  model_weight_release(&w);
  if (status != VKFT_OK) return vkft_error_prefix("loading %s", name);
  if (trainable && own(m, grad, VKFT_F32, total, &m->bytes_grads) != VKFT_OK) return VKFT_ERR;
  return model_add_param(m, name, rank, rows, d1, t, trainable ? grad : NULL);
}

static int load_weight(vkft_model *m, const vkft_st_set *st, const char *name, int rank, int64_t d0,
                       int64_t d1, int trainable, vkft_tensor *t, vkft_tensor *grad) {
  return load_weight_rows(m, st, name, rank, d0, d1, 0, trainable, t, grad);
}

/* splitmix64 -> uniform in [lo, hi): our own generator so every platform draws the same. */
static double uniform(uint64_t *state, double lo, double hi) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return lo + (hi - lo) * (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* DoRA's tensors of projection p of layer l (internal.h, lora_pair) and its parameter, PEFT's
 * "lora_magnitude_vector" (out), decayed like a weight: HF Trainer's get_decay_parameter_names
 * leaves out only biases and norm layers. The magnitude's value, the row norms of W at B = 0,
 * is computed once every pair exists (init_dora_magnitudes). With gradient checkpointing the
 * layers share yd, as they share their other activations (the backward recomputes a layer). */
static int init_dora(vkft_model *m, int l, int p) {
  lora_pair *lp = &m->layers[l].lora[p];
  int64_t out = m->proj_out[p];
  char name[160];
  snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, vkft_proj_path(p));
  vkft_dtype base = m->layers[l].proj[p].dtype;
  if (vkft_dtype_is_quantized(base))
    return vkft_error_with(VKFT_ERR_UNSUPPORTED,
                           "lora.use_dora: DoRA needs the dense base weight for its row norms, "
                           "and \"%s\" is %s (use an f32/f16/bf16 base without quant.base)",
                           name, vkft_dtype_name(base));
  int share = l > 0 && m->desc.grad_checkpointing;
  if (own(m, &lp->mag, VKFT_F32, out, &m->bytes_trainable) ||
      own(m, &lp->gmag, VKFT_F32, out, &m->bytes_grads) ||
      own(m, &lp->norm, VKFT_F32, out, &m->bytes_acts) ||
      own(m, &lp->scale, VKFT_F32, out, &m->bytes_acts) ||
      (!share && own(m, &lp->yd, VKFT_F32, m->T * out, &m->bytes_acts)))
    return VKFT_ERR;
  if (share) lp->yd = m->layers[0].lora[p].yd;
  snprintf(name, sizeof name, "model.layers.%d.%s.lora_magnitude_vector", l, vkft_proj_path(p));
  if (model_add_param(m, name, 1, out, 0, &lp->mag, &lp->gmag)) return VKFT_ERR;
  m->params[m->param_count - 1].decay = 1;
  return VKFT_OK;
}

/* m = ||W + s B A|| per output row with B = 0: the row norms of W, as PEFT's
 * DoraLinearLayer.update_layer sets it (one stream for every adapted projection). */
static int init_dora_magnitudes(vkft_model *m) {
  if (vkft_begin(m->be) != VKFT_OK) return VKFT_ERR;
  int status = VKFT_OK;
  for (int64_t l = 0; status == VKFT_OK && l < m->cfg.num_layers; l++)
    for (int p = 0; status == VKFT_OK && p < P_PROJ_COUNT; p++) {
      lora_pair *lp = &m->layers[l].lora[p];
      if (lp->on)
        status = vkft_dora_norm(m->be, &m->layers[l].proj[p], &lp->a, &lp->b, NULL, &lp->mag, NULL,
                                m->proj_out[p], m->proj_in[p], m->desc.lora_r,
                                (float)m->desc.lora_scale);
    }
  if (vkft_end(m->be) != VKFT_OK) status = VKFT_ERR;
  return status;
}

/* PEFT's default LoRA initialisation: A ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(in),
 * 1/sqrt(in)), B = 0. */
static int init_lora(vkft_model *m, int l, int p, uint64_t *rng) {
  lora_pair *lp = &m->layers[l].lora[p];
  int64_t r = m->desc.lora_r, in = m->proj_in[p], out = m->proj_out[p];
  if (own(m, &lp->a, VKFT_F32, r * in, &m->bytes_trainable) ||
      own(m, &lp->b, VKFT_F32, out * r, &m->bytes_trainable) ||
      own(m, &lp->ga, VKFT_F32, r * in, &m->bytes_grads) ||
      own(m, &lp->gb, VKFT_F32, out * r, &m->bytes_grads) ||
      own(m, &lp->u, VKFT_F32, m->T * r, &m->bytes_acts) ||
      (m->desc.lora_dropout > 0 && own(m, &lp->xd, VKFT_F32, m->T * in, &m->bytes_acts)))
    return VKFT_ERR;
  lp->on = 1;
  char name[160];
  snprintf(name, sizeof name, "model.layers.%d.%s.lora_A.weight", l, vkft_proj_path(p));
  if (model_add_param(m, name, 2, r, in, &lp->a, &lp->ga)) return VKFT_ERR;
  snprintf(name, sizeof name, "model.layers.%d.%s.lora_B.weight", l, vkft_proj_path(p));
  if (model_add_param(m, name, 2, out, r, &lp->b, &lp->gb)) return VKFT_ERR;
  if (m->desc.use_dora && init_dora(m, l, p)) return VKFT_ERR;
  if (m->desc.plan_only) return VKFT_OK;
  float *a = malloc((size_t)(r * in) * sizeof *a), *b = calloc((size_t)(out * r), sizeof *b);
  if (!a || !b) {
    free(a);
    free(b);
    return vkft_error_nomem();
  }
  double bound = 1.0 / sqrt((double)in);
  for (int64_t i = 0; i < r * in; i++) a[i] = (float)uniform(rng, -bound, bound);
  int status = vkft_tensor_write(m->be, &lp->a, a) || vkft_tensor_write(m->be, &lp->b, b);
  free(a);
  free(b);
  return status ? VKFT_ERR : VKFT_OK;
}

static int plan_activations(vkft_model *m) {
  const vkft_model_config *c = &m->cfg;
  int64_t T = m->T, C = c->hidden_size, F = c->intermediate_size, L = c->num_layers;
  int64_t QD = c->num_heads * c->head_dim, KD = c->num_kv_heads * c->head_dim;
  int slots = m->desc.micro_batches;
  uint64_t *acts = &m->bytes_acts, *scratch = &m->bytes_scratch;
  m->x = calloc((size_t)(L + 1), sizeof *m->x);
  if (!m->x) return vkft_error_nomem();
  for (int64_t l = 0; l <= L; l++)
    if (own(m, &m->x[l], VKFT_F32, T * C, acts)) return VKFT_ERR;
  /* With gradient checkpointing every layer shares one set of activations: the forward
   * overwrites them layer by layer and the backward recomputes each layer from its input
   * X[l] first (the residual states are kept for all layers). */
  for (int64_t l = 0; l < L; l++) {
    layer *ly = &m->layers[l];
    if (l > 0 && m->desc.grad_checkpointing && m->desc.training) {
      layer *first = &m->layers[0];
      ly->h1 = first->h1, ly->rstd1 = first->rstd1, ly->q = first->q, ly->k = first->k;
      ly->v = first->v, ly->att = first->att, ly->lse = first->lse, ly->x_mid = first->x_mid;
      ly->h2 = first->h2, ly->rstd2 = first->rstd2, ly->gate = first->gate, ly->up = first->up;
      ly->act = first->act, ly->q_raw = first->q_raw, ly->k_raw = first->k_raw;
      ly->rstd_q = first->rstd_q, ly->rstd_k = first->rstd_k;
      continue;
    }
    if (own(m, &ly->h1, VKFT_F32, T * C, acts) || own(m, &ly->rstd1, VKFT_F32, T, acts) ||
        own(m, &ly->q, VKFT_F32, T * QD, acts) || own(m, &ly->k, VKFT_F32, T * KD, acts) ||
        own(m, &ly->v, VKFT_F32, T * KD, acts) || own(m, &ly->att, VKFT_F32, T * QD, acts) ||
        own(m, &ly->lse, VKFT_F32, T * c->num_heads, acts) ||
        own(m, &ly->x_mid, VKFT_F32, T * C, acts) || own(m, &ly->h2, VKFT_F32, T * C, acts) ||
        own(m, &ly->rstd2, VKFT_F32, T, acts) || own(m, &ly->gate, VKFT_F32, T * F, acts) ||
        own(m, &ly->up, VKFT_F32, T * F, acts) || own(m, &ly->act, VKFT_F32, T * F, acts))
      return VKFT_ERR;
    if (c->qk_norm &&
        (own(m, &ly->q_raw, VKFT_F32, T * QD, acts) || own(m, &ly->k_raw, VKFT_F32, T * KD, acts) ||
         own(m, &ly->rstd_q, VKFT_F32, T * c->num_heads, acts) ||
         own(m, &ly->rstd_k, VKFT_F32, T * c->num_kv_heads, acts)))
      return VKFT_ERR;
  }
  for (int64_t l = 0; m->desc.kv_cache && l < L; l++)
    if (own(m, &m->layers[l].kc, VKFT_F32, m->kv_rows * KD, acts) ||
        own(m, &m->layers[l].vc, VKFT_F32, m->kv_rows * KD, acts))
      return VKFT_ERR;
  if (m->desc.kv_cache && own(m, &m->decode_logits, VKFT_F32, m->kv_slots * c->vocab_size, scratch))
    return VKFT_ERR;
  int64_t wide = QD > C ? QD : C;
  if (F > wide) wide = F;
  if (own(m, &m->hf, VKFT_F32, T * C, acts) || own(m, &m->rstd_f, VKFT_F32, T, acts) ||
      own(m, &m->ids, VKFT_I32, slots * T, scratch) ||
      own(m, &m->labels, VKFT_I32, slots * T, scratch) ||
      own(m, &m->pos, VKFT_I32, slots * T, scratch) ||
      own(m, &m->seq, VKFT_I32, slots * T, scratch) ||
      own(m, &m->loss, VKFT_F32, 2 * slots, scratch) || own(m, &m->tmp, VKFT_F32, T * C, scratch) ||
      (m->embed_on_host &&
       own(m, &m->emb_rows, vkft_dtype_is_quantized(m->embed_dtype) ? VKFT_F32 : m->embed_dtype,
           slots * T * C, scratch)))
    return VKFT_ERR;
  /* the loss: logits of one vocabulary chunk at a time */
  int64_t V = c->vocab_size;
  m->ce_chunk = m->desc.ce_chunk > 0 ? vkft_cross_entropy_chunk(V, m->desc.ce_chunk)
                                     : vkft_cross_entropy_chunk_for_budget(T, V, 64u << 20);
  if (own(m, &m->ce_scratch, VKFT_F32, vkft_cross_entropy_scratch_elems(T, V, m->ce_chunk),
          scratch))
    return VKFT_ERR;
  /* RoPE frequencies, computed once on the host */
  vkft_rope_config rc = {.theta = c->rope_theta,
                         .llama3 = c->rope_llama3,
                         .factor = c->rope_factor,
                         .low_freq_factor = c->rope_low_freq_factor,
                         .high_freq_factor = c->rope_high_freq_factor,
                         .original_max_position_embeddings = (double)c->rope_original_max_position};
  int64_t nf = vkft_rope_freqs_len(c->head_dim);
  int32_t *freqs = malloc((size_t)nf * sizeof *freqs);
  if (!freqs) return vkft_error_nomem();
  int rs = vkft_rope_freqs(&rc, c->head_dim, freqs) ||
           own(m, &m->rope_freqs, VKFT_I32, nf, scratch) ||
           (!m->desc.plan_only && vkft_tensor_write(m->be, &m->rope_freqs, freqs));
  free(freqs);
  if (rs) return VKFT_ERR;
  if (c->attention_bias) {
    /* a column of ones: bias add and bias gradient are rank-1 matmuls */
    float *ones = malloc((size_t)T * sizeof *ones);
    if (!ones) return vkft_error_nomem();
    for (int64_t i = 0; i < T; i++) ones[i] = 1.0f;
    int status = own(m, &m->ones, VKFT_F32, T, scratch) ||
                 (!m->desc.plan_only && vkft_tensor_write(m->be, &m->ones, ones));
    free(ones);
    if (status) return VKFT_ERR;
  }
  int64_t P = m->desc.pref_pairs;
  if (P > 0 &&
      (own(m, &m->pref_tok, VKFT_I32, slots * T, scratch) ||
       own(m, &m->pref_ranges, VKFT_I32, slots * 4 * P, scratch) ||
       own(m, &m->pref_ref_seq, VKFT_F32, slots * (4 * P + 2), scratch) ||
       own(m, &m->pref_seq, VKFT_F32, slots * (4 * P + 2), scratch) ||
       own(m, &m->row_loss, VKFT_F32, T, scratch) || own(m, &m->row_weight, VKFT_F32, T, scratch)))
    return VKFT_ERR;
  if (!m->desc.training) return VKFT_OK;
  int64_t r = m->desc.lora_r > 0 ? m->desc.lora_r : 1;
  if (own(m, &m->d_x, VKFT_F32, T * C, scratch) || own(m, &m->d_h, VKFT_F32, T * C, scratch) ||
      own(m, &m->d_tmp, VKFT_F32, T * (QD > C ? QD : C), scratch) ||
      own(m, &m->d_q, VKFT_F32, T * QD, scratch) || own(m, &m->d_k, VKFT_F32, T * KD, scratch) ||
      own(m, &m->d_v, VKFT_F32, T * KD, scratch) || own(m, &m->d_att, VKFT_F32, T * QD, scratch) ||
      own(m, &m->d_act, VKFT_F32, T * F, scratch) || own(m, &m->d_u, VKFT_F32, T * r, scratch) ||
      own(m, &m->delta, VKFT_F32, T * c->num_heads, scratch) ||
      own(m, &m->emb_plan, VKFT_I32, slots * vkft_embedding_plan_len(T), scratch))
    return VKFT_ERR;
  if (m->desc.lora_dropout > 0 && own(m, &m->d_drop, VKFT_F32, T * wide, scratch)) return VKFT_ERR;
  if (m->desc.use_dora && !m->desc.full && own(m, &m->d_dora, VKFT_F32, T * wide, scratch))
    return VKFT_ERR;
  return VKFT_OK;
}

/* The embedding table, frozen and untied (or a GGUF's block-typed table, tied or not): left in
 * the file (see internal.h, embed_on_host). */
static int host_embedding(vkft_model *m, const vkft_st_set *st) {
  const vkft_model_config *c = &m->cfg;
  const char *name = "model.embed_tokens.weight";
  if (!st && !m->gguf) { /* a plan from config.json alone */
    m->embed_dtype = m->config_dtype;
    m->bytes_host = (uint64_t)(c->vocab_size * c->hidden_size) * vkft_dtype_size(m->embed_dtype);
    return VKFT_OK;
  }
  model_weight w;
  if (find_weight(m, st, name, &w) != VKFT_OK) return VKFT_ERR;
  model_weight_release(&w); /* never reordered: the embedding is not a q/k projection */
  if (w.rank != 2 || w.shape[0] != c->vocab_size || w.shape[1] != c->hidden_size)
    return vkft_error("%s: tensor \"%s\" has the wrong shape for the config", w.file, name);
  m->embed_dtype = w.dtype;
  m->embed_src = w.data;
  m->bytes_host = w.size;
  return VKFT_OK;
}

int vkft_model_has_weights(const char *dir) {
  if (vkft_gguf_is_file(dir)) return 1;
  char path[2048];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (vkft_file_exists(path)) return 1;
  snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
  return vkft_file_exists(path);
}

/* The model's weights: a GGUF base, safetensors (a bitsandbytes 4-bit checkpoint read as it
 * is; any other quantization_config refused, naming its quant_method), or for a plan, config.json
 * alone (a model not downloaded yet). */
static int open_weights(vkft_model *m, vkft_st_set **st) {
  const vkft_model_desc *desc = &m->desc;
  if (m->gguf || vkft_gguf_is_file(desc->dir)) return m->gguf ? VKFT_OK : model_gguf_open(m);
  int status;
  if (desc->plan_only && !vkft_model_has_weights(desc->dir))
    status = vkft_dtype_parse_torch(m->cfg.torch_dtype, &m->config_dtype);
  else
    status = vkft_st_open(desc->dir, st);
  vkft_quant_info qi;
  if (status == VKFT_OK) status = vkft_quant_inspect(desc->dir, &qi);
  if (status == VKFT_OK && qi.kind == VKFT_QUANT_BNB4) {
    m->bnb_checkpoint = 1;
    if (desc->full && desc->training)
      status = vkft_error_with(VKFT_ERR_UNSUPPORTED,
                               "%s: a bitsandbytes 4-bit model trains with LoRA (method \"lora\"), "
                               "not full fine-tuning",
                               desc->dir);
  }
  if (status == VKFT_OK && desc->quant_dtype != VKFT_F32 && desc->quant_dtype != VKFT_NF4 &&
      desc->quant_dtype != VKFT_FP4)
    status = vkft_error("quant.base: %s is not a 4-bit type vkft quantizes to (nf4, fp4)",
                        vkft_dtype_name(desc->quant_dtype));
  if (status == VKFT_OK && vkft_dtype_is_quantized(desc->quant_dtype) && desc->full &&
      desc->training)
    status = vkft_error("quant.base: a 4-bit base trains with LoRA (method \"lora\"), not full "
                        "fine-tuning");
  return status;
}

/* A GGUF's table of a ggml block type stays in the file when frozen, tied or not: the
 * embedding op reads f32/f16/bf16 tables, and the rows a step needs are dequantized on the
 * host (the head, when tied, is the same blocks on the device). */
static int gguf_table_on_host(const vkft_model *m) {
  const vkft_gguf_tensor *t = m->gguf ? vkft_gguf_find_tensor(m->gguf, "token_embd.weight") : NULL;
  int dtype = t ? vkft_dtype_of_ggml_type(t->type) : -1;
  return dtype >= 0 && vkft_dtype_is_quantized((vkft_dtype)dtype);
}

int vkft_model_load(vkft_backend *be, const vkft_model_desc *desc, vkft_model **out) {
  *out = NULL;
  if (desc->max_tokens <= 0) return vkft_error("model: max_tokens must be positive");
  if (!(desc->lora_dropout >= 0 && desc->lora_dropout < 1))
    return vkft_error("model: lora dropout must be in [0, 1)");
  if (desc->micro_batches < 1 || desc->micro_batches > 64)
    return vkft_error("model: micro_batches must be 1..64");
  if (desc->kv_cache &&
      (desc->kv_slots > desc->max_tokens || desc->kv_slots < 0 || desc->kv_len < 0 ||
       (desc->kv_slots > 0 ? desc->kv_slots : 1) *
               (desc->kv_len > 0 ? desc->kv_len : desc->max_tokens) >
           INT32_MAX))
    return vkft_error("model: a KV cache of %lld sequences x %lld positions with %lld tokens per "
                      "step (needs sequences <= tokens, rows < 2^31)",
                      (long long)desc->kv_slots, (long long)desc->kv_len,
                      (long long)desc->max_tokens);
  if (desc->pref_pairs < 0 || desc->pref_pairs > VKFT_PREF_MAX_PAIRS)
    return vkft_error("model: %lld preference pairs per micro-batch (at most %d)",
                      (long long)desc->pref_pairs, VKFT_PREF_MAX_PAIRS);
  vkft_model *m = calloc(1, sizeof *m);
  if (!m) return vkft_error_nomem();
  m->be = be;
  m->desc = *desc;
  m->T = desc->max_tokens;
  if (desc->kv_cache) {
    m->kv_slots = desc->kv_slots > 0 ? desc->kv_slots : 1;
    m->kv_len = desc->kv_len > 0 ? desc->kv_len : desc->max_tokens;
    m->kv_rows = m->kv_slots * m->kv_len;
  }
  vkft_st_set *st = NULL;
  int status = vkft_model_config_load(desc->dir, &m->cfg);
  if (status == VKFT_OK) status = open_weights(m, &st);
  if (!desc->plan_only && !be) status = vkft_error_with(VKFT_ERR_INTERNAL, "model: no backend");
  const vkft_model_config *c = &m->cfg;
  int64_t C = c->hidden_size, V = c->vocab_size, D = c->head_dim;
  for (int p = 0; p < P_PROJ_COUNT; p++)
    vkft_model_proj_shape(c, p, &m->proj_out[p], &m->proj_in[p]);
  int full = desc->full && desc->training;
  m->trainable_embed = desc->training && (full || (desc->modules_to_save & VKFT_MOD_EMBED));
  m->trainable_head = desc->training && (full || (desc->modules_to_save & VKFT_MOD_LM_HEAD));
  if (c->tie_word_embeddings) /* one tensor: trainable if either name was asked for */
    m->trainable_embed = m->trainable_head = m->trainable_embed || m->trainable_head;
  if (status == VKFT_OK && !(m->layers = calloc((size_t)c->num_layers, sizeof *m->layers)))
    status = vkft_error_nomem();
  m->embed_on_host = !m->trainable_embed && desc->vocab_size <= V &&
                     (!c->tie_word_embeddings || gguf_table_on_host(m));
  if (status == VKFT_OK && m->embed_on_host)
    status = host_embedding(m, st);
  else if (status == VKFT_OK)
    status = load_weight_rows(m, st, "model.embed_tokens.weight", 2, V, C, desc->vocab_size,
                              m->trainable_embed, &m->embed, &m->g_embed);
  for (int64_t l = 0; status == VKFT_OK && l < c->num_layers; l++) {
    layer *ly = &m->layers[l];
    char name[160];
#define LOAD(fmt, rank, d0, d1, t, g)                                                              \
  (snprintf(name, sizeof name, fmt, (int)l), load_weight(m, st, name, rank, d0, d1, full, t, g))
    status =
        LOAD("model.layers.%d.input_layernorm.weight", 1, C, 0, &ly->attn_norm, &ly->g_attn_norm) ||
        LOAD("model.layers.%d.post_attention_layernorm.weight", 1, C, 0, &ly->mlp_norm,
             &ly->g_mlp_norm);
    for (int p = 0; status == VKFT_OK && p < P_PROJ_COUNT; p++) {
      snprintf(name, sizeof name, "model.layers.%d.%s.weight", (int)l, vkft_proj_path(p));
      if (!full && !m->gguf && (m->bnb_checkpoint || vkft_dtype_is_quantized(desc->quant_dtype)))
        status = model_load_quantized_proj(m, st, (int)l, p, &ly->proj[p]);
      else
        status = load_weight(m, st, name, 2, m->proj_out[p], m->proj_in[p], full, &ly->proj[p],
                             &ly->g_proj[p]);
    }
    for (int p = 0; status == VKFT_OK && c->attention_bias && vkft_proj_has_bias(p); p++) {
      snprintf(name, sizeof name, "model.layers.%d.%s.bias", (int)l, vkft_proj_path(p));
      status = load_weight(m, st, name, 1, m->proj_out[p], 0, full, &ly->bias[p], &ly->g_bias[p]);
    }
    if (status == VKFT_OK && c->qk_norm)
      status =
          LOAD("model.layers.%d.self_attn.q_norm.weight", 1, D, 0, &ly->q_norm, &ly->g_q_norm) ||
          LOAD("model.layers.%d.self_attn.k_norm.weight", 1, D, 0, &ly->k_norm, &ly->g_k_norm);
#undef LOAD
  }
  if (status == VKFT_OK)
    status =
        load_weight(m, st, "model.norm.weight", 1, C, 0, full, &m->final_norm, &m->g_final_norm);
  if (status == VKFT_OK) {
    if (c->tie_word_embeddings && m->embed_on_host) { /* the GGUF's blocks, frozen */
      status = load_weight_rows(m, st, "model.embed_tokens.weight", 2, V, C, 0, 0, &m->lm_head_own,
                                NULL);
      m->lm_head = &m->lm_head_own;
      m->g_lm_head = &m->g_lm_head_own;
    } else if (c->tie_word_embeddings) {
      m->lm_head = &m->embed;
      m->g_lm_head = &m->g_embed;
    } else {
      status = load_weight_rows(m, st, "lm_head.weight", 2, V, C, desc->vocab_size,
                                m->trainable_head, &m->lm_head_own, &m->g_lm_head_own);
      m->lm_head = &m->lm_head_own;
      m->g_lm_head = &m->g_lm_head_own;
    }
  }
  if (m->embed_on_host)
    m->st = st; /* the table is read from its memory map */
  else
    vkft_st_close(st);
  if (status == VKFT_OK && m->gguf) status = model_gguf_check_unused(m);
  if (status == VKFT_OK && desc->vocab_size > m->cfg.vocab_size)
    m->cfg.vocab_size = desc->vocab_size;
  if (status == VKFT_OK && desc->training && !full) {
    if (desc->lora_r <= 0) status = vkft_error("model: LoRA rank must be positive");
    uint64_t rng = desc->seed ^ 0x6c6f7261ull; /* "lora" */
    for (int64_t l = 0; status == VKFT_OK && l < c->num_layers; l++)
      for (int p = 0; status == VKFT_OK && p < P_PROJ_COUNT; p++)
        if (desc->lora_targets & (1u << p)) status = init_lora(m, (int)l, p, &rng);
    if (status == VKFT_OK && desc->use_dora && !desc->plan_only) status = init_dora_magnitudes(m);
  }
  if (status == VKFT_OK) status = plan_activations(m);
  if (status != VKFT_OK) {
    vkft_model_free(m);
    return VKFT_ERR;
  }
  *out = m;
  return VKFT_OK;
}

void vkft_model_free(vkft_model *m) {
  if (!m) return;
  vkft_st_close(m->st);
  vkft_gguf_close(m->gguf);
  for (int i = 0; i < m->allocated_count; i++) vkft_tensor_free(m->be, m->allocated[i]);
  free(m->allocated);
  free(m->layers);
  free(m->x);
  free(m->params);
  free(m);
}

const vkft_model_config *vkft_model_get_config(const vkft_model *m) {
  return &m->cfg;
}

int vkft_model_params(vkft_model *m, vkft_param **params, int *count) {
  *params = m->params;
  *count = m->param_count;
  return VKFT_OK;
}

void vkft_model_memory_plan(const vkft_model *m, vkft_model_memory *mem) {
  mem->weights = m->bytes_weights;
  mem->trainable = m->bytes_trainable;
  mem->gradients = m->bytes_grads;
  mem->activations = m->bytes_acts;
  mem->scratch = m->bytes_scratch;
  mem->host = m->bytes_host;
}
