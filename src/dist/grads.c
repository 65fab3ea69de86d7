/* The step's gradients across ranks (vkft/dist.h), summed exactly, and ZeRO-1.
 *
 * Why the sum is bit-identical to one process: one process with grad_accum M zeroes the
 * gradients and lets each micro-batch's backward add its contribution c_m into them, so every
 * element ends as (((0 + c_0) + c_1) + ...) + c_{M-1}: one fp32 addition per micro-batch, in
 * micro-batch order. Float addition is not associative, so summing per-rank subtotals (what an
 * all-reduce does) cannot give those bits. Here each micro-batch's gradient p_m = 0 + c_m is kept
 * apart, and the kept gradients are added in order m = 0, 1, ... by the device's add — the same
 * roundings, whatever the number of ranks. That holds where a backward adds into a gradient once
 * per micro-batch (every matmul-shaped gradient: projections, LoRA A and B, norms, biases, the
 * LM head); a trained embedding table adds row by row, so its sum is deterministic but only
 * within fp32 rounding of one process's (docs/SCALING.md).
 *
 * Layout: the trainable gradients are one flat vector of `total` elements, each parameter at an
 * offset aligned to ALIGN elements; rank r owns [lo[r], lo[r+1]). The exchange:
 *   keep     each micro-batch's gradient, cut into the N ranks' pieces, copied into `stage`
 *            (on the device) at piece (j, slot): per_rank * lo[j] + slot * len(j)
 *   reduce   download; rank j receives piece (j, slot) of every rank's every slot, which arrive
 *            in micro-batch order (rank r's slot s is micro-batch r * per_rank + s); upload, add
 *            them up in that order on the device; every rank's sum goes to every rank; copied
 *            into the gradient tensors.
 * Traffic per rank and step: (slots + 1) * total * (N-1)/N floats, where a ring all-reduce moves
 * 2 * total * (N-1)/N: the same for one micro-batch per rank. */
#include "comm.h"

#include "vkft/dist.h"
#include "vkft/error.h"

#include <stdlib.h>
#include <string.h>

/* Parameters and rank pieces start at multiples of this many elements, so every view the
 * exchange makes stays 256-byte aligned (the ops' vector loads want 16). */
#define ALIGN 64
#define MAX_WIDTH 4 /* doubles per slot vkft_dist_grads_finish carries */

struct vkft_dist_grads {
  vkft_dist *dist;
  vkft_backend *be;
  int rank, size, per_rank, zero;
  const vkft_param *params;
  int n_params;
  int64_t *offset; /* per parameter: its flat offset, -1 when frozen */
  int64_t total;   /* the flat vector's elements, alignment gaps included */
  int64_t *lo;     /* size + 1 boundaries of the ranks' pieces */
  vkft_tensor stage;
  float *send, *recv; /* host: this rank's pieces (later the whole sum); received pieces */
  double *slot_values;
  float *state[2]; /* ZeRO, rank 0: the whole m and v gathered for a checkpoint */
};

static int64_t align_up(int64_t n) {
  return (n + ALIGN - 1) / ALIGN * ALIGN;
}

static int64_t len_of(const vkft_dist_grads *g, int r) {
  return g->lo[r + 1] - g->lo[r];
}

/* Micro-batches of the step that rank r computed. */
static int slots_of(const vkft_dist_grads *g, int r, int64_t step_batches) {
  int64_t s = step_batches - (int64_t)r * g->per_rank;
  return s < 0 ? 0 : s > g->per_rank ? g->per_rank : (int)s;
}

int vkft_dist_grads_create(const vkft_dist_grads_desc *desc, vkft_dist_grads **out) {
  *out = NULL;
  vkft_dist_grads *g = calloc(1, sizeof *g);
  if (!g) return vkft_error_nomem();
  g->dist = desc->dist;
  g->be = desc->be;
  g->rank = vkft_dist_rank(desc->dist);
  g->size = vkft_dist_size(desc->dist);
  g->per_rank = desc->micro_batches;
  g->zero = desc->zero;
  g->params = desc->params;
  g->n_params = desc->n_params;
  g->offset = malloc((size_t)desc->n_params * sizeof *g->offset);
  g->lo = malloc(((size_t)g->size + 1) * sizeof *g->lo);
  if (!g->offset || !g->lo) goto nomem;
  for (int i = 0; i < desc->n_params; i++) {
    g->offset[i] = desc->params[i].trainable ? g->total : -1;
    if (desc->params[i].trainable) g->total = align_up(g->total + desc->params[i].value->n);
  }
  int64_t pieces = g->total / ALIGN, len_max = 0;
  for (int r = 0; r <= g->size; r++) g->lo[r] = pieces * r / g->size * ALIGN;
  for (int r = 0; r < g->size; r++)
    if (len_of(g, r) > len_max) len_max = len_of(g, r);
  int64_t received = (int64_t)g->size * g->per_rank * len_max;
  int64_t stage = (int64_t)g->per_rank * g->total;
  /* zeroed: the alignment gaps travel and are summed too, and stay zeros */
  g->send = calloc((size_t)(stage > 0 ? stage : 1), sizeof *g->send);
  g->recv = calloc((size_t)(received > 0 ? received : 1), sizeof *g->recv);
  g->slot_values =
      malloc((size_t)g->size * (size_t)g->per_rank * MAX_WIDTH * sizeof *g->slot_values);
  if (!g->send || !g->recv || !g->slot_values) goto nomem;
  if (received > stage) stage = received;
  if (stage < ALIGN) stage = ALIGN;
  if (vkft_tensor_alloc(g->be, VKFT_F32, stage, &g->stage) != VKFT_OK ||
      vkft_begin(g->be) != VKFT_OK)
    goto fail;
  if (vkft_fill(g->be, &g->stage, 0.0, stage) != VKFT_OK) {
    vkft_end(g->be);
    goto fail;
  }
  if (vkft_end(g->be) != VKFT_OK) goto fail;
  *out = g;
  return VKFT_OK;
nomem:
  vkft_error_nomem();
fail:
  vkft_dist_grads_free(g);
  return vkft_error_prefix("data-parallel gradient exchange");
}

void vkft_dist_grads_free(vkft_dist_grads *g) {
  if (!g) return;
  vkft_tensor_free(g->be, &g->stage);
  free(g->offset);
  free(g->lo);
  free(g->send);
  free(g->recv);
  free(g->slot_values);
  free(g->state[0]);
  free(g->state[1]);
  free(g);
}

void vkft_dist_grads_memory(const vkft_dist_grads *g, uint64_t *device, uint64_t *host) {
  *device = g ? (uint64_t)g->stage.n * 4 : 0;
  int64_t len_max = 0;
  for (int r = 0; g && r < g->size; r++)
    if (len_of(g, r) > len_max) len_max = len_of(g, r);
  *host = g ? (uint64_t)(g->per_rank * g->total + (int64_t)g->size * g->per_rank * len_max) * 4 : 0;
}

/* The part of [begin, end) of the flat vector inside rank r's piece (*n 0: none). */
static void clip_to(const vkft_dist_grads *g, int r, int64_t begin, int64_t end, int64_t *from,
                    int64_t *n) {
  *from = begin > g->lo[r] ? begin : g->lo[r];
  int64_t to = end < g->lo[r + 1] ? end : g->lo[r + 1];
  *n = to > *from ? to - *from : 0;
}

int vkft_dist_grads_keep(vkft_dist_grads *g, int slot) {
  for (int i = 0; i < g->n_params; i++) {
    const vkft_param *p = &g->params[i];
    if (g->offset[i] < 0) continue;
    for (int r = 0; r < g->size; r++) {
      int64_t from, n;
      clip_to(g, r, g->offset[i], g->offset[i] + p->value->n, &from, &n);
      if (!n) continue;
      vkft_tensor src = vkft_tensor_view(p->grad, from - g->offset[i], n);
      vkft_tensor dst = vkft_tensor_view(
          &g->stage, g->per_rank * g->lo[r] + slot * len_of(g, r) + (from - g->lo[r]), n);
      if (vkft_copy(g->be, &src, &dst, n) != VKFT_OK) return VKFT_ERR;
    }
    if (vkft_fill(g->be, p->grad, 0.0, p->value->n) != VKFT_OK) return VKFT_ERR;
  }
  return VKFT_OK;
}

/* Every rank's piece [lo[r], lo[r+1]) of flat (host, total floats) to every rank. */
static void share_pieces(vkft_dist_grads *g, float *flat) {
  for (int t = 1; t < g->size; t++) {
    int to = (g->rank + t) % g->size, from = (g->rank - t + g->size) % g->size;
    comm_sendrecv(flat + g->lo[g->rank], (size_t)len_of(g, g->rank) * 4, to, flat + g->lo[from],
                  (size_t)len_of(g, from) * 4, from);
  }
}

/* This rank's sum of its piece over the step's micro-batches, in their order: the pieces of
 * every rank's slots, received, uploaded and added up on the device. Leaves it in flat. */
static int sum_own_piece(vkft_dist_grads *g, int64_t step_batches) {
  int me = g->rank, slots = slots_of(g, me, step_batches);
  int64_t len = len_of(g, me);
  for (int t = 0; t < g->size; t++) {
    int to = (me + t) % g->size, from = (me - t + g->size) % g->size;
    comm_sendrecv(g->send + g->per_rank * g->lo[to], (size_t)(slots * len_of(g, to)) * 4, to,
                  g->recv + (int64_t)from * g->per_rank * len,
                  (size_t)(slots_of(g, from, step_batches) * len) * 4, from);
  }
  if (len == 0) return VKFT_OK;
  vkft_tensor sum = vkft_tensor_view(&g->stage, 0, len);
  if (vkft_tensor_write_range(g->be, &g->stage, 0, step_batches * len, g->recv) != VKFT_OK ||
      vkft_begin(g->be) != VKFT_OK)
    return VKFT_ERR;
  for (int64_t m = 1; m < step_batches; m++) {
    vkft_tensor next = vkft_tensor_view(&g->stage, m * len, len);
    if (vkft_add(g->be, &sum, &next, &sum, len) != VKFT_OK) {
      vkft_end(g->be);
      return VKFT_ERR;
    }
  }
  if (vkft_end(g->be) != VKFT_OK) return VKFT_ERR;
  return vkft_tensor_read_range(g->be, &g->stage, 0, len, g->send + g->lo[me]);
}

/* Uploads flat (host, the whole vector) and begins a stream that copies it into every trainable
 * parameter's gradient (values 0) or value (values 1), except the elements of [skip_from,
 * skip_to) of the flat vector. The stream is left open. */
static int copy_in(vkft_dist_grads *g, const float *flat, int values, int64_t skip_from,
                   int64_t skip_to) {
  if (vkft_tensor_write_range(g->be, &g->stage, 0, g->total, flat) != VKFT_OK ||
      vkft_begin(g->be) != VKFT_OK)
    return VKFT_ERR;
  for (int i = 0; i < g->n_params; i++) {
    const vkft_param *p = &g->params[i];
    if (g->offset[i] < 0) continue;
    int64_t begin = g->offset[i], end = begin + p->value->n;
    int64_t cuts[3][2] = {{begin, end}, {0, 0}, {0, 0}};
    if (skip_to > skip_from) { /* the parts before and after the skipped range */
      cuts[0][1] = end < skip_from ? end : skip_from;
      cuts[1][0] = begin > skip_to ? begin : skip_to;
      cuts[1][1] = end;
    }
    for (int k = 0; k < 2; k++) {
      int64_t n = cuts[k][1] - cuts[k][0];
      if (n <= 0) continue;
      vkft_tensor src = vkft_tensor_view(&g->stage, cuts[k][0], n);
      vkft_tensor dst = vkft_tensor_view(values ? p->value : p->grad, cuts[k][0] - begin, n);
      if (vkft_copy(g->be, &src, &dst, n) != VKFT_OK) return VKFT_ERR;
    }
  }
  return VKFT_OK;
}

int vkft_dist_grads_reduce(vkft_dist_grads *g, int slots, int64_t step_batches) {
  int status = vkft_end(g->be);
  for (int r = 0; status == VKFT_OK && r < g->size && slots > 0; r++) {
    int64_t at = g->per_rank * g->lo[r];
    if (len_of(g, r))
      status = vkft_tensor_read_range(g->be, &g->stage, at, slots * len_of(g, r), g->send + at);
  }
  if (vkft_dist_agree(g->dist, status) != VKFT_OK) return VKFT_ERR;
  status = sum_own_piece(g, step_batches);
  if (vkft_dist_agree(g->dist, status) != VKFT_OK) return VKFT_ERR;
  share_pieces(g, g->send);
  return copy_in(g, g->send, 0, 0, 0);
}

/* ZeRO-1: this rank updated its piece of the values; every rank gets every piece. */
static int share_values(vkft_dist_grads *g) {
  int me = g->rank;
  int status = vkft_begin(g->be);
  for (int i = 0; status == VKFT_OK && i < g->n_params; i++) {
    int64_t from, n;
    if (g->offset[i] < 0) continue;
    clip_to(g, me, g->offset[i], g->offset[i] + g->params[i].value->n, &from, &n);
    if (!n) continue;
    vkft_tensor src = vkft_tensor_view(g->params[i].value, from - g->offset[i], n);
    vkft_tensor dst = vkft_tensor_view(&g->stage, from, n);
    status = vkft_copy(g->be, &src, &dst, n);
  }
  if (status == VKFT_OK) status = vkft_end(g->be);
  if (status == VKFT_OK && len_of(g, me))
    status =
        vkft_tensor_read_range(g->be, &g->stage, g->lo[me], len_of(g, me), g->send + g->lo[me]);
  if (vkft_dist_agree(g->dist, status) != VKFT_OK) return VKFT_ERR;
  share_pieces(g, g->send);
  if (copy_in(g, g->send, 1, g->lo[me], g->lo[me + 1]) != VKFT_OK) return VKFT_ERR;
  return vkft_end(g->be);
}

int vkft_dist_grads_finish(vkft_dist_grads *g, const double *mine, int width, const double **all) {
  if (width > MAX_WIDTH)
    return vkft_error_with(VKFT_ERR_INTERNAL, "dist: %d values per slot", width);
  if (vkft_dist_agree(g->dist, VKFT_OK) != VKFT_OK) return VKFT_ERR;
  /* every rank sends per_rank slots (unused ones too): rank r's slot s lands at r * per_rank + s,
   * its micro-batch's index in the step */
  comm_allgather(mine, g->slot_values, (size_t)g->per_rank * (size_t)width * sizeof *mine);
  *all = g->slot_values;
  return g->zero ? share_values(g) : VKFT_OK;
}

void vkft_dist_grads_state_range(const vkft_dist_grads *g, int param, int64_t size, int64_t *offset,
                                 int64_t *n) {
  *offset = 0;
  *n = size;
  if (!g || !g->zero || g->offset[param] < 0) return;
  int64_t from;
  clip_to(g, g->rank, g->offset[param], g->offset[param] + size, &from, n);
  *offset = *n ? from - g->offset[param] : 0;
}

int vkft_dist_grads_shard(const vkft_dist_grads *g, int param, vkft_tensor *value,
                          vkft_tensor *grad) {
  int64_t offset, n;
  vkft_dist_grads_state_range(g, param, value->n, &offset, &n);
  if (n == value->n) return 1;
  if (n == 0) return 0;
  *value = vkft_tensor_view(value, offset, n);
  *grad = vkft_tensor_view(grad, offset, n);
  return 1;
}

int vkft_dist_grads_gather_state(vkft_dist_grads *g, const vkft_tensor *m, const vkft_tensor *v) {
  if (!g || !g->zero) return VKFT_OK;
  const vkft_tensor *moments[2] = {m, v};
  int me = g->rank, status = VKFT_OK;
  for (int w = 0; w < 2 && me == 0 && status == VKFT_OK; w++)
    if (!g->state[w] && !(g->state[w] = calloc((size_t)g->total, sizeof *g->state[w])))
      status = vkft_error_nomem();
  for (int w = 0; w < 2; w++) {
    /* this rank's part of the moment in flat order (rank 0: in place in the whole) */
    float *mine = NULL;
    if (status == VKFT_OK) mine = me == 0 ? g->state[w] : g->send + g->lo[me];
    for (int i = 0; status == VKFT_OK && i < g->n_params; i++) {
      int64_t from, n;
      if (g->offset[i] < 0) continue;
      clip_to(g, me, g->offset[i], g->offset[i] + g->params[i].value->n, &from, &n);
      if (n) status = vkft_tensor_read(g->be, &moments[w][i], mine + (from - g->lo[me]));
    }
    if (vkft_dist_agree(g->dist, status) != VKFT_OK) return VKFT_ERR;
    for (int r = 1; r < g->size; r++) {
      if (me == r)
        comm_sendrecv(mine, (size_t)len_of(g, r) * 4, 0, NULL, 0, 0);
      else if (me == 0)
        comm_sendrecv(NULL, 0, r, g->state[w] + g->lo[r], (size_t)len_of(g, r) * 4, r);
    }
  }
  return VKFT_OK;
}

float *vkft_dist_grads_state_copy(const vkft_dist_grads *g, int param, int which) {
  if (!g || !g->zero || !g->state[which] || g->offset[param] < 0) return NULL;
  int64_t n = g->params[param].value->n;
  float *copy = malloc((size_t)n * sizeof *copy);
  if (!copy) {
    vkft_error_nomem();
    return NULL;
  }
  memcpy(copy, g->state[which] + g->offset[param], (size_t)n * sizeof *copy);
  return copy;
}
