/* Op-table family "cross_entropy*": the chunked LM-head cross-entropy against the double
 * reference (src/ref/cross_entropy.c).
 *   cross_entropy              loss only (eval)
 *   cross_entropy_bwd          loss and dh (frozen head: W keeps its dtype)
 *   cross_entropy_bwd_dw       loss, dh and dW accumulated (trainable head)
 *   cross_entropy_bwd_ignored  every label -100: loss 0, count 0, dh 0
 *   cross_entropy_bwd_dw_odd   _bwd_dw with every tensor one element into its allocation
 *   cross_entropy_weighted     as preference objectives run it: a FORWARD call writing each
 *                              row's loss, then a BACKWARD call with per-row weights in
 *                              [-2, 2] (some 0) from the statistics the first left
 * Labels: every 4th row -100, every 4th (from row 2) the last vocabulary entry (in the ragged
 * last chunk), the rest random. Each result is normalized by a bound on the magnitudes that its
 * rounding errors scale with (see bound_row), so one tolerance, from fp32 accumulation, holds
 * for all of them; the trained-token count must be exact. */
#include "case.h"

enum { H, W, LABELS, LOSS, DH, DW, SCRATCH, ROW_LOSS, ROW_WEIGHT };
/* the variants, in the order of the op list */
enum { LOSS_ONLY, BWD, BWD_DW, BWD_IGNORED, BWD_DW_ODD, WEIGHTED };

typedef struct ce_params {
  int64_t T, C, V, chunk;
  int with_dh, with_dw, weighted;
  float grad_scale;
} ce_params;

/* Error bounds of one trained row t, in double. With u = 2^-24:
 *   logits z_v = h_t . w_v in fp32 carry |dz_v| <= C u B_v, B_v = sum_c |h_tc||w_vc|, and the
 *   log-sum-exp inherits that plus the rounding of the running sum of exps (positive terms:
 *   relative error <= terms-per-path * u), of exp ((3 + 2|x|) ulp in Vulkan) and of log.
 *   The loss of the row is off by about (2C + n) u (Bmax + |lse| + |z_label| + 1).
 *   dlogit_v = p_v - onehot is off by p_v (|dz_v| + |dlse| + exp's error), at most
 *   p_v (Bmax + |x_v| + 1) (2C + n) u with x_v = z_v - lse; the matmuls of dh = dlogits W and
 *   dW = dlogits^T h then add their accumulation error over the sum of |dlogit| |w| (|h|).
 * So a_v = |dlogit_v| + p_v (Bmax + |x_v| + 1) is the magnitude each product carries, and
 *   bound_dh[t, c] = scale sum_v a_v |w_vc|, bound_dw[v, c] += scale a_v |h_tc|,
 * all against one tolerance (2C + chunk + chunks + T + 64) u (T: the loss sum and dW's sum over
 * rows; 64: the fixed reduction trees and the exp/log ulps), plus the matmul kernels' input
 * rounding where they round (see setup). */
static double bound_row(const double *h_t, const double *w, int32_t label, int64_t C, int64_t V,
                        double scale, double *z, double *bound_dh_t, double *bound_dw) {
  double zmax = -INFINITY, bmax = 0;
  for (int64_t v = 0; v < V; v++) {
    double dot = 0, b = 0;
    for (int64_t c = 0; c < C; c++) dot += h_t[c] * w[v * C + c], b += fabs(h_t[c] * w[v * C + c]);
    z[v] = dot;
    if (dot > zmax) zmax = dot;
    if (b > bmax) bmax = b;
  }
  double sum = 0;
  for (int64_t v = 0; v < V; v++) sum += exp(z[v] - zmax);
  double lse = zmax + log(sum);
  for (int64_t v = 0; v < V; v++) {
    double p = exp(z[v] - lse);
    double a = fabs(p - (v == label)) + p * (bmax + fabs(z[v] - lse) + 1);
    if (bound_dh_t)
      for (int64_t c = 0; c < C; c++) bound_dh_t[c] += scale * a * fabs(w[v * C + c]);
    if (bound_dw)
      for (int64_t c = 0; c < C; c++) bound_dw[v * C + c] += scale * a * fabs(h_t[c]);
  }
  return fabs(lse) + fabs(z[label]) + 2 * bmax + 1;
}

/* Labels of the top comment. Big (bench) shapes: the double reference of every row would take
 * minutes, so only 8 rows are trained there (the device does the same matmul work for ignored
 * rows). Returns the trained count. */
static int64_t make_labels(case_rng *rng, int32_t *labels, int64_t T, int64_t C, int64_t V,
                           int all_ignored) {
  int64_t train_every = (double)T * C * V > 1e9 && T > 8 ? T / 8 : 1, count = 0;
  for (int64_t t = 0; t < T; t++) {
    int32_t label = (int32_t)(case_uniform(rng, 0, 1) * (double)V);
    if (t % 4 == 2) label = (int32_t)V - 1;
    if (t % 4 == 3 || all_ignored || t % train_every) label = -100;
    labels[t] = label < V ? label : (int32_t)V - 1;
    count += labels[t] >= 0;
  }
  return count;
}

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  ce_params *p = CASE_PARAMS(oc, ce_params);
  if (!p) return VKFT_ERR;
  int64_t T = c->d[0], C = c->d[1], V = c->d[2];
  *p = (ce_params){T,
                   C,
                   V,
                   c->d[3],
                   oc->variant != LOSS_ONLY,
                   oc->variant == BWD_DW || oc->variant == BWD_DW_ODD,
                   oc->variant == WEIGHTED,
                   1.0f};
  int64_t vc = vkft_cross_entropy_chunk(V, p->chunk), chunks = (V + vc - 1) / vc;
  case_shape(oc, "T%lld C%lld V%lld /%lld", (long long)T, (long long)C, (long long)V,
             (long long)vc);
  double *h = case_random(oc, H, "h", VKFT_F32, T * C, CASE_IN, -1, 1);
  /* logits of order 1, as a trained model's are: w scaled by 1/sqrt(C) */
  double w_range = 3.0 / sqrt((double)C);
  double *w = case_random(oc, W, "W", c->dtype, V * C, CASE_IN, -w_range, w_range);
  int32_t *labels = case_tensor_new(oc, LABELS, "labels", VKFT_I32, T, CASE_IN);
  case_poisoned(oc, LOSS, "loss", 2);
  case_tensor_new(oc, SCRATCH, "scratch", VKFT_F32,
                  vkft_cross_entropy_scratch_elems(T, V, p->chunk), CASE_SCRATCH);
  if (p->with_dh) case_poisoned(oc, DH, "dh", T * C); /* written, not accumulated */
  double *dw = p->with_dw ? case_random(oc, DW, "dW", VKFT_F32, V * C, CASE_OUT, -1, 1) : NULL;
  double *z = CASE_NEW(oc, double, V), *dh_want = CASE_NEW(oc, double, T *C);
  double *bound_dh = CASE_NEW(oc, double, T *C), *dw_want = CASE_NEW(oc, double, V *C);
  double *bound_dw = CASE_NEW(oc, double, V *C), *loss = CASE_NEW(oc, double, 2);
  double *loss_scale = CASE_NEW(oc, double, 2); /* {bound, 0}: the count is exact */
  double *row_loss = NULL, *row_bound = NULL, *row_weight = NULL;
  if (p->weighted) {
    case_poisoned(oc, ROW_LOSS, "row_loss", T);
    row_weight = case_random(oc, ROW_WEIGHT, "row_weight", VKFT_F32, T, CASE_IN, -2, 2);
    row_loss = CASE_NEW(oc, double, T);
    row_bound = CASE_NEW(oc, double, T);
  }
  if (oc->failed) return VKFT_ERR;
  int64_t count = make_labels(&oc->rng, labels, T, C, V, oc->variant == BWD_IGNORED);
  p->grad_scale = count ? 1.0f / (float)count : 1.0f;
  for (int64_t t = 0; row_weight && t < T; t += 5) { /* exact zeros, as tokens without a role */
    row_weight[t] = 0;
    ((float *)oc->t[ROW_WEIGHT].data)[t] = 0;
  }

  vkft_ref_cross_entropy_f64(h, w, labels, T, C, V, loss, row_loss, z);
  for (int64_t i = 0; dw && i < V * C; i++) dw_want[i] = dw[i], bound_dw[i] = fabs(dw[i]);
  if (p->with_dh)
    vkft_ref_cross_entropy_bwd_f64(h, w, labels, T, C, V, p->grad_scale, row_weight, dh_want,
                                   dw ? dw_want : NULL, z);
  for (int64_t t = 0; t < T; t++)
    if (labels[t] >= 0 && labels[t] < V) {
      double scale = p->grad_scale * (row_weight ? fabs(row_weight[t]) : 1.0);
      double b = bound_row(&h[t * C], w, labels[t], C, V, scale, z,
                           p->with_dh ? &bound_dh[t * C] : NULL, dw ? bound_dw : NULL);
      loss_scale[0] += b;
      if (row_bound) row_bound[t] = b;
    }
  for (int s = H; oc->variant == BWD_DW_ODD && s <= SCRATCH; s++) oc->t[s].offset = 1;
  /* the matmuls inside: logits h W^T, dh = dlogits W, dW += dlogits^T h; kernels that round
   * their inputs (fp16 cooperative matrices) put each logit off by 2 u' of its bound B_v, so the
   * loss and p by 4 u', and dh and dW's products round dlogits and W (h) once more: 6 u' */
  const case_product mm[] = {{VKFT_MATMUL_NT, c->dtype, T, vc},
                             {VKFT_MATMUL_NN, c->dtype, T, C},
                             {VKFT_MATMUL_TN, VKFT_F32, vc, C}};
  double acc, u_in = case_matmul_input_unit(oc, mm, 3, &acc);
  double tol = (double)(vc + chunks + T + 64) * CASE_U + 2.0 * (double)C * acc + 6 * u_in;
  case_expect(oc, LOSS, loss, loss_scale, tol);
  if (p->with_dh) case_expect(oc, DH, dh_want, bound_dh, tol);
  if (dw) case_expect(oc, DW, dw_want, bound_dw, tol);
  if (row_loss) case_expect(oc, ROW_LOSS, row_loss, row_bound, tol); /* untrained rows: 0 exactly */
  /* the matmul work as a naive implementation counts it: logits twice, dh, dW (the op skips
   * recomputing the last chunk, so it does a little less) */
  oc->flops = (1 + (p->with_dh ? 2 : 0) + (p->with_dw ? 1 : 0)) * 2.0 * T * C * V;
  return case_status(oc);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const ce_params *p = oc->params;
  if (p->weighted) {
    vkft_cross_entropy_desc d = {.h = &t[H],
                                 .w = &t[W],
                                 .labels = &t[LABELS],
                                 .T = p->T,
                                 .C = p->C,
                                 .V = p->V,
                                 .grad_scale = p->grad_scale,
                                 .row_weight = &t[ROW_WEIGHT],
                                 .dh = &t[DH],
                                 .loss = &t[LOSS],
                                 .row_loss = &t[ROW_LOSS],
                                 .scratch = &t[SCRATCH],
                                 .chunk = p->chunk,
                                 .phase = VKFT_CE_FORWARD};
    if (vkft_cross_entropy_run(be, &d) != VKFT_OK) return VKFT_ERR;
    d.phase = VKFT_CE_BACKWARD;
    return vkft_cross_entropy_run(be, &d);
  }
  return vkft_cross_entropy(be, &t[H], &t[W], &t[LABELS], p->T, p->C, p->V, p->grad_scale,
                            p->with_dh ? &t[DH] : NULL, p->with_dw ? &t[DW] : NULL, &t[LOSS],
                            &t[SCRATCH], p->chunk);
}

const case_family case_cross_entropy = {{"cross_entropy", "cross_entropy_bwd",
                                         "cross_entropy_bwd_dw", "cross_entropy_bwd_ignored",
                                         "cross_entropy_bwd_dw_odd", "cross_entropy_weighted"},
                                        setup,
                                        record};
