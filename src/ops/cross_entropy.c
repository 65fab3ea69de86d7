/* Cross-entropy of the LM head, forward and backward in one op, on both backends
 * (shaders/cross_entropy.comp + vkft_matmul, src/ref/cross_entropy.c).
 *
 * The (T, V) logits are never materialised: the vocabulary is processed in chunks of `chunk`
 * columns whose (T, chunk) logits live in the caller's scratch.
 *   pass 1, every chunk:  logits = h W_chunk^T (matmul NT), then the online-softmax statistics
 *                         of each row (running max, sum of exp, the label's logit);
 *   loss:                 sum over trained rows of logsumexp - z, and their count;
 *   pass 2 (gradients):   for each chunk, last first: logits again (the last chunk's are still
 *                         in the scratch from pass 1, so V <= chunk needs no recompute at all),
 *                         dlogits = (softmax - onehot) * grad_scale in place,
 *                         dh (+)= dlogits W_chunk (NN), dW_chunk += dlogits^T h (TN).
 * Every step is a fixed-order computation, so the result bits do not vary run to run. */
#include "core_util.h"

#include <stdlib.h>

/* The default chunk width. On lavapipe the dh product (dlogits W_chunk, a sum over the chunk)
 * ran ~2.5x slower per flop at 8192 columns than at 1024 (its operand panels stop fitting the
 * CPU caches), while the logits product did not care; 2048 keeps every matmul big enough for a
 * GPU (T x 2048 x C) and the scratch small (T x 2048 fp32). */
#define CE_DEFAULT_CHUNK 2048
#define CE_ROWS_PER_Y 32768 /* as in the shader: rows over (x, y) workgroups */

static int64_t round_up4(int64_t n) {
  return (n + 3) / 4 * 4;
}

int64_t vkft_cross_entropy_chunk(int64_t V, int64_t chunk) {
  /* a multiple of 4 keeps every chunk of W and every logits row 16-byte aligned for the
   * matmul's vector loads; no wider than the (rounded) vocabulary */
  int64_t c = round_up4(chunk > 0 ? chunk : CE_DEFAULT_CHUNK);
  return c < round_up4(V) ? c : round_up4(V);
}

int64_t vkft_cross_entropy_chunk_for_budget(int64_t T, int64_t V, uint64_t budget_bytes) {
  /* the largest multiple of 256 columns whose (T, chunk) fp32 logits fit the budget; at least
   * 256 (a smaller chunk only multiplies the dispatches), at most CE_DEFAULT_CHUNK (wider was
   * no faster, see above) */
  int64_t c = T > 0 ? (int64_t)(budget_bytes / (4 * (uint64_t)T)) / 256 * 256 : CE_DEFAULT_CHUNK;
  if (c < 256) c = 256;
  if (c > CE_DEFAULT_CHUNK) c = CE_DEFAULT_CHUNK;
  return vkft_cross_entropy_chunk(V, c);
}

int64_t vkft_cross_entropy_scratch_elems(int64_t T, int64_t V, int64_t chunk) {
  /* (T, chunk) logits, then the per-row running max, sum of exp and label logit */
  return T * vkft_cross_entropy_chunk(V, chunk) + 3 * T;
}

static int ce_reference(const vkft_cross_entropy_desc *d) {
  const int64_t T = d->T, C = d->C, V = d->V;
  const vkft_tensor *w = d->w;
  float *wf = w->dtype == VKFT_F32 ? w->host : ref_as_f32(w, V * C);
  float *logits = malloc((size_t)V * sizeof *logits);
  int status = VKFT_OK;
  if (!wf || !logits) {
    status = vkft_error_with(VKFT_ERR_NOMEM, "cross_entropy: out of host memory");
  } else {
    if (d->phase != VKFT_CE_BACKWARD)
      vkft_ref_cross_entropy_f32(d->h->host, wf, d->labels->host, T, C, V, d->loss->host,
                                 d->row_loss ? d->row_loss->host : NULL, logits);
    if (d->dh && d->phase != VKFT_CE_FORWARD)
      vkft_ref_cross_entropy_bwd_f32(d->h->host, wf, d->labels->host, T, C, V, d->grad_scale,
                                     d->row_weight ? d->row_weight->host : NULL, d->dh->host,
                                     d->dw ? d->dw->host : NULL, logits);
  }
  if (wf && wf != w->host) free(wf);
  free(logits);
  return status;
}

/* One of the row-wise stages of shaders/cross_entropy.comp ("stats", "grad": a workgroup per
 * row of the chunk; "loss": one workgroup), writing `written`. */
typedef struct ce_stage_args {
  const char *shader;
  const vkft_tensor *logits, *stats, *labels, *loss, *row_loss, *row_weight, *written;
  int64_t T, V, vc, v0;
  int first;
  float scale;
} ce_stage_args;

static int ce_stage(vkft_backend *be, const ce_stage_args *a) {
  struct {
    uint64_t logits, stats, labels, loss, row_loss, row_weight;
    uint32_t T, V, vc, v0, first;
    float scale;
    uint32_t aligned; /* the logits start 16-byte aligned (vector loads when vc % 4 == 0) */
  } push = {a->logits ? a->logits->buf.addr : 0,
            a->stats->buf.addr,
            a->labels->buf.addr,
            a->loss ? a->loss->buf.addr : 0,
            a->row_loss ? a->row_loss->buf.addr : 0,
            a->row_weight ? a->row_weight->buf.addr : 0,
            (uint32_t)a->T,
            (uint32_t)a->V,
            (uint32_t)a->vc,
            (uint32_t)a->v0,
            (uint32_t)a->first,
            a->scale,
            a->logits && core_aligned(a->logits, 16)};
  vkft_dispatch_desc d = {.shader = a->shader, .push = &push, .push_size = sizeof push};
  d.groups[0] = d.groups[1] = d.groups[2] = 1;
  if (a->logits) {
    d.groups[0] = (uint32_t)(a->T < CE_ROWS_PER_Y ? a->T : CE_ROWS_PER_Y);
    d.groups[1] = (uint32_t)((a->T + CE_ROWS_PER_Y - 1) / CE_ROWS_PER_Y);
    d.reads[d.read_count++] = vk_range_of(a->logits);
  }
  d.reads[d.read_count++] = vk_range_of(a->stats);
  d.reads[d.read_count++] = vk_range_of(a->labels);
  if (a->row_weight) d.reads[d.read_count++] = vk_range_of(a->row_weight);
  d.writes[d.write_count++] = vk_range_of(a->written);
  if (a->row_loss) d.writes[d.write_count++] = vk_range_of(a->row_loss);
  return vkft_stream_dispatch(be->dev, &d);
}

/* Chunk k: its columns [v0, v0 + vc) of the vocabulary, its rows of W, its logits. */
typedef struct ce_chunk {
  int64_t v0, vc;
  vkft_tensor w, logits;
} ce_chunk;

static ce_chunk chunk_at(const vkft_tensor *w, const vkft_tensor *scratch, int64_t k, int64_t T,
                         int64_t C, int64_t V, int64_t vc_max) {
  ce_chunk c;
  c.v0 = k * vc_max;
  c.vc = V - c.v0 < vc_max ? V - c.v0 : vc_max;
  c.w = vkft_tensor_view(w, c.v0 * C, c.vc * C);
  c.logits = vkft_tensor_view(scratch, 0, T * c.vc); /* (T, vc): row stride vc */
  return c;
}

int vkft_cross_entropy(vkft_backend *be, const vkft_tensor *h, const vkft_tensor *w,
                       const vkft_tensor *labels, int64_t T, int64_t C, int64_t V, float grad_scale,
                       vkft_tensor *dh, vkft_tensor *dw, vkft_tensor *loss, vkft_tensor *scratch,
                       int64_t chunk) {
  vkft_cross_entropy_desc d = {.h = h,
                               .w = w,
                               .labels = labels,
                               .T = T,
                               .C = C,
                               .V = V,
                               .grad_scale = grad_scale,
                               .dh = dh,
                               .dw = dw,
                               .loss = loss,
                               .scratch = scratch,
                               .chunk = chunk};
  return vkft_cross_entropy_run(be, &d);
}

static int ce_check(const vkft_cross_entropy_desc *d) {
  const int64_t T = d->T, C = d->C, V = d->V;
  if (T <= 0 || C <= 0 || V <= 0)
    return vkft_error("cross_entropy: empty shape T=%lld C=%lld V=%lld", (long long)T, (long long)C,
                      (long long)V);
  if (d->dw && !d->dh) return vkft_error("cross_entropy: dW needs dh (the backward pass)");
  if (d->phase == VKFT_CE_BACKWARD && !d->dh)
    return vkft_error("cross_entropy: backward without dh");
  if (op_check("cross_entropy", "h", d->h, T * C, DT(VKFT_F32)) ||
      op_check("cross_entropy", "W", d->w, V * C, DT(VKFT_F32) | DT(VKFT_F16) | DT(VKFT_BF16)) ||
      op_check("cross_entropy", "labels", d->labels, T, DT(VKFT_I32)) ||
      op_check("cross_entropy", "loss", d->loss, 2, DT(VKFT_F32)) ||
      (d->dh && op_check("cross_entropy", "dh", d->dh, T * C, DT(VKFT_F32))) ||
      (d->dw && op_check("cross_entropy", "dW", d->dw, V * C, DT(VKFT_F32))) ||
      (d->row_loss && op_check("cross_entropy", "row_loss", d->row_loss, T, DT(VKFT_F32))) ||
      (d->row_weight && op_check("cross_entropy", "row_weight", d->row_weight, T, DT(VKFT_F32))))
    return VKFT_ERR;
  return VKFT_OK;
}

int vkft_cross_entropy_run(vkft_backend *be, const vkft_cross_entropy_desc *desc) {
  if (ce_check(desc) != VKFT_OK) return VKFT_ERR;
  if (!be->dev) return ce_reference(desc);
  const vkft_tensor *h = desc->h, *w = desc->w, *labels = desc->labels;
  const int64_t T = desc->T, C = desc->C, V = desc->V, chunk = desc->chunk;
  vkft_tensor *scratch = desc->scratch, *dh = desc->dh, *dw = desc->dw;
  const int64_t vc_max = vkft_cross_entropy_chunk(V, chunk);
  if (op_check("cross_entropy", "scratch", scratch, vkft_cross_entropy_scratch_elems(T, V, chunk),
               DT(VKFT_F32)))
    return VKFT_ERR;
  if (T > UINT32_MAX || V > UINT32_MAX || C > UINT32_MAX)
    return vkft_error("cross_entropy: dimension over 2^32");
  const vkft_tensor stats = vkft_tensor_view(scratch, T * vc_max, 3 * T);
  const int64_t chunks = (V + vc_max - 1) / vc_max;

  if (desc->phase != VKFT_CE_BACKWARD) {
    /* pass 1: the online-softmax statistics of every row */
    for (int64_t k = 0; k < chunks; k++) {
      ce_chunk c = chunk_at(w, scratch, k, T, C, V, vc_max);
      ce_stage_args a = {.shader = "cross_entropy_stats",
                         .logits = &c.logits,
                         .stats = &stats,
                         .labels = labels,
                         .written = &stats,
                         .T = T,
                         .V = V,
                         .vc = c.vc,
                         .v0 = c.v0,
                         .first = k == 0};
      if (vkft_matmul(be, VKFT_MATMUL_NT, h, &c.w, &c.logits, T, c.vc, C, 1.0f, 0.0f) ||
          ce_stage(be, &a))
        return VKFT_ERR;
    }
    ce_stage_args a = {.shader = "cross_entropy_loss",
                       .stats = &stats,
                       .labels = labels,
                       .loss = desc->loss,
                       .row_loss = desc->row_loss,
                       .written = desc->loss,
                       .T = T,
                       .V = V};
    if (ce_stage(be, &a)) return VKFT_ERR;
  }
  if (!dh || desc->phase == VKFT_CE_FORWARD) return VKFT_OK;

  /* pass 2: gradients, last chunk first (its logits are still in the scratch) */
  for (int64_t k = chunks - 1; k >= 0; k--) {
    ce_chunk c = chunk_at(w, scratch, k, T, C, V, vc_max);
    ce_stage_args g = {.shader = "cross_entropy_grad",
                       .logits = &c.logits,
                       .stats = &stats,
                       .labels = labels,
                       .row_weight = desc->row_weight,
                       .written = &c.logits,
                       .T = T,
                       .V = V,
                       .vc = c.vc,
                       .v0 = c.v0,
                       .scale = desc->grad_scale};
    if (k != chunks - 1 &&
        vkft_matmul(be, VKFT_MATMUL_NT, h, &c.w, &c.logits, T, c.vc, C, 1.0f, 0.0f))
      return VKFT_ERR;
    /* dh is written by the first chunk processed and accumulated by the others */
    if (ce_stage(be, &g) || vkft_matmul(be, VKFT_MATMUL_NN, &c.logits, &c.w, dh, T, C, c.vc, 1.0f,
                                        k == chunks - 1 ? 0.0f : 1.0f))
      return VKFT_ERR;
    if (dw) {
      vkft_tensor dw_chunk = vkft_tensor_view(dw, c.v0 * C, c.vc * C);
      if (vkft_matmul(be, VKFT_MATMUL_TN, &c.logits, h, &dw_chunk, c.vc, C, T, 1.0f, 1.0f))
        return VKFT_ERR;
    }
  }
  return VKFT_OK;
}
