/* Op-table family "cross_entropy*": the chunked LM-head cross-entropy on the device against
 * the double reference (src/ref/cross_entropy.c).
 *   cross_entropy              loss only (eval)
 *   cross_entropy_bwd          loss and dh (frozen head: W keeps its dtype)
 *   cross_entropy_bwd_dw       loss, dh and dW accumulated (trainable head)
 *   cross_entropy_bwd_ignored  every label -100: loss 0, count 0, dh 0
 * Labels: every 4th row -100, every 4th (from row 2) the last vocabulary entry (in the ragged
 * last chunk), the rest random. Each result is normalized by a bound on the magnitudes that its
 * rounding errors scale with (see bound_row), so one tolerance, from fp32 accumulation, holds
 * for all of them. */
#include "harness.h"

#include "vkft/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ce_ctx {
  vkft_tensor h, w, labels, out, scratch;
  vkft_tensor loss, dh, dw; /* views of out: loss (2) | dh (T, C) | dW (V, C) */
  int64_t T, C, V, chunk;
  int with_dh, with_dw;
  float grad_scale;
  const float *out_init;
} ce_ctx;

static int record(vkft_backend *be, void *p) {
  ce_ctx *x = p;
  return vkft_cross_entropy(be, &x->h, &x->w, &x->labels, x->T, x->C, x->V, x->grad_scale,
                            x->with_dh ? &x->dh : NULL, x->with_dw ? &x->dw : NULL, &x->loss,
                            &x->scratch, x->chunk);
}

/* dh is poisoned with NaN (it must be written, not accumulated), dW gets its start value */
static int reset_out(vkft_backend *be, void *p) {
  ce_ctx *x = p;
  return vkft_tensor_write(be, &x->out, x->out_init);
}

static int64_t pad4(int64_t n) {
  return (n + 3) / 4 * 4;
}

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
 * rows; 64: the fixed reduction trees and the exp/log ulps). */
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

/* max over i of |got - want| / bound (NaN counts as a failure) */
static double max_err(const float *got, const double *want, const double *bound, int64_t n) {
  double err = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - want[i]) / (bound[i] + 1e-30);
    if (!(e <= err)) err = e;
  }
  return err;
}

/* the double reference and the error of every output against its bound */
static double compare(const ce_ctx *x, const float *h, const float *w, const int32_t *labels,
                      const float *out, const float *dw0) {
  int64_t T = x->T, C = x->C, V = x->V;
  size_t nh = (size_t)(T * C), nw = (size_t)(V * C);
  double *hd = malloc(nh * sizeof *hd), *wd = malloc(nw * sizeof *wd);
  double *z = malloc((size_t)V * sizeof *z), *dh = calloc(nh, sizeof *dh);
  double *bound_dh = calloc(nh, sizeof *bound_dh);
  double *dw = x->with_dw ? malloc(nw * sizeof *dw) : NULL;
  double *bound_dw = x->with_dw ? malloc(nw * sizeof *bound_dw) : NULL;
  double err = INFINITY;
  if (!hd || !wd || !z || !dh || !bound_dh || (x->with_dw && (!dw || !bound_dw))) goto done;
  for (size_t i = 0; i < nh; i++) hd[i] = h[i];
  for (size_t i = 0; i < nw; i++) wd[i] = w[i];
  if (x->with_dw)
    for (size_t i = 0; i < nw; i++) dw[i] = dw0[i], bound_dw[i] = fabs(dw0[i]);

  double loss[2];
  vkft_ref_cross_entropy_f64(hd, wd, labels, T, C, V, loss, z);
  if (x->with_dh) vkft_ref_cross_entropy_bwd_f64(hd, wd, labels, T, C, V, x->grad_scale, dh, dw, z);
  double loss_bound = 0;
  for (int64_t t = 0; t < T; t++)
    if (labels[t] >= 0 && labels[t] < V)
      loss_bound += bound_row(&hd[t * C], wd, labels[t], C, V, x->grad_scale, z,
                              x->with_dh ? &bound_dh[t * C] : NULL, bound_dw);

  if ((double)out[1] != loss[1]) goto done; /* the count is exact */
  err = fabs((double)out[0] - loss[0]) / (loss_bound + 1e-30);
  if (!(err <= 0) && !(err > 0)) err = INFINITY;
  if (x->with_dh) {
    double e = max_err(out + (x->dh.buf.addr - x->out.buf.addr) / 4, dh, bound_dh, T * C);
    if (!(e <= err)) err = e;
  }
  if (x->with_dw) {
    double e = max_err(out + (x->dw.buf.addr - x->out.buf.addr) / 4, dw, bound_dw, V * C);
    if (!(e <= err)) err = e;
  }
done:
  free(hd), free(wd), free(z), free(dh), free(bound_dh), free(dw), free(bound_dw);
  return err;
}

static int run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  ce_ctx x = {.T = c->d[0], .C = c->d[1], .V = c->d[2], .chunk = c->d[3]};
  const char *variant = c->op + strlen("cross_entropy");
  int all_ignored = 0;
  if (!strcmp(variant, "_bwd"))
    x.with_dh = 1;
  else if (!strcmp(variant, "_bwd_dw"))
    x.with_dh = x.with_dw = 1;
  else if (!strcmp(variant, "_bwd_ignored"))
    x.with_dh = all_ignored = 1;
  else if (strcmp(variant, ""))
    return vkft_error("op table: unknown cross_entropy variant %s", c->op);
  int64_t T = x.T, C = x.C, V = x.V;
  int64_t vc = vkft_cross_entropy_chunk(V, x.chunk), chunks = (V + vc - 1) / vc;
  snprintf(r->shape, sizeof r->shape, "T%lld C%lld V%lld /%lld", (long long)T, (long long)C,
           (long long)V, (long long)vc);

  /* out: loss (2, padded to 4) | dh (T, C) | dW (V, C), each 16-byte aligned */
  int64_t dh_at = 4, dw_at = dh_at + pad4(T * C), n_out = dw_at + V * C;
  size_t nh = (size_t)(T * C), nw = (size_t)(V * C);
  float *h = malloc(nh * sizeof *h), *w = malloc(nw * sizeof *w);
  float *init = malloc((size_t)n_out * sizeof *init), *out = malloc((size_t)n_out * sizeof *out);
  int32_t *labels = malloc((size_t)T * sizeof *labels);
  void *w_stored = malloc(nw * vkft_dtype_size(c->dtype));
  int status = VKFT_ERR;
  if (!h || !w || !init || !out || !labels || !w_stored) {
    vkft_error("cross_entropy %s: out of host memory", r->shape);
    goto done;
  }
  harness_rng rng = {(uint64_t)(T * 1000003 + C * 1009 + V) ^ (uint64_t)c->dtype << 40};
  /* logits of order 1, as a trained model's are: w scaled by 1/sqrt(C) */
  for (size_t i = 0; i < nh; i++) h[i] = (float)harness_uniform(&rng, -1, 1);
  double w_scale = 3.0 / sqrt((double)C);
  for (size_t i = 0; i < nw; i++) w[i] = (float)harness_uniform(&rng, -w_scale, w_scale);
  vkft_convert_from_f32(c->dtype, w, w_stored, nw);
  vkft_convert_to_f32(c->dtype, w_stored, w, nw); /* the reference sees the stored values */
  /* Big (bench) shapes: the double reference of every row would take minutes, so only 8 rows
   * are trained there (the device does the same matmul work for ignored rows). */
  int64_t train_every = (double)T * C * V > 1e9 && T > 8 ? T / 8 : 1;
  int64_t count = 0;
  for (int64_t t = 0; t < T; t++) {
    int32_t label = (int32_t)(harness_uniform(&rng, 0, 1) * (double)V);
    if (t % 4 == 2) label = (int32_t)V - 1;
    if (t % 4 == 3 || all_ignored || t % train_every) label = -100;
    labels[t] = label < V ? label : (int32_t)V - 1;
    count += labels[t] >= 0;
  }
  x.grad_scale = count ? 1.0f / (float)count : 1.0f;
  memset(init, 0, (size_t)n_out * sizeof *init);
  for (int64_t i = 0; i < T * C; i++) init[dh_at + i] = NAN;
  for (int64_t i = 0; i < V * C; i++) init[dw_at + i] = (float)harness_uniform(&rng, -1, 1);
  x.out_init = init;

  if (vkft_tensor_alloc(vk, VKFT_F32, (int64_t)nh, &x.h) ||
      vkft_tensor_alloc(vk, c->dtype, (int64_t)nw, &x.w) ||
      vkft_tensor_alloc(vk, VKFT_I32, T, &x.labels) ||
      vkft_tensor_alloc(vk, VKFT_F32, n_out, &x.out) ||
      vkft_tensor_alloc(vk, VKFT_F32, vkft_cross_entropy_scratch_elems(T, V, x.chunk), &x.scratch))
    goto release;
  x.loss = vkft_tensor_view(&x.out, 0, 2);
  x.dh = vkft_tensor_view(&x.out, dh_at, T * C);
  x.dw = vkft_tensor_view(&x.out, dw_at, V * C);
  if (vkft_tensor_write(vk, &x.h, h) || vkft_tensor_write(vk, &x.w, w_stored) ||
      vkft_tensor_write(vk, &x.labels, labels) || reset_out(vk, &x) || vkft_begin(vk) ||
      record(vk, &x) || vkft_end(vk) || vkft_tensor_read(vk, &x.out, out))
    goto release;

  r->max_err = compare(&x, h, w, labels, out, init + dw_at);
  r->tol = (double)(2 * C + vc + chunks + T + 64) * ldexp(1.0, -24);
  r->ok = r->max_err <= r->tol;
  /* an all-ignored batch must say so: count 0 and a zero loss, never anything else */
  if (all_ignored && (out[0] != 0.0f || out[1] != 0.0f)) r->ok = 0;
  status = harness_repeat(vk, reset_out, record, &x, &x.out, out, timed_runs, r);
  if (status == VKFT_OK && r->ms > 0) {
    /* the matmul work as a naive implementation counts it: logits twice, dh, dW (the op skips
     * recomputing the last chunk, so it does a little less) */
    double matmuls = 1 + (x.with_dh ? 2 : 0) + (x.with_dw ? 1 : 0);
    r->gflops = matmuls * 2.0 * T * C * V / (r->ms * 1e6);
  }
release:
  vkft_tensor_free(vk, &x.h);
  vkft_tensor_free(vk, &x.w);
  vkft_tensor_free(vk, &x.labels);
  vkft_tensor_free(vk, &x.out);
  vkft_tensor_free(vk, &x.scratch);
done:
  free(h), free(w), free(init), free(out), free(labels), free(w_stored);
  return status;
}

/* cross_entropy d = {T, C, V, chunk}: V a multiple of the chunk or not, V below the chunk,
 * T = 1, odd C, ragged last chunks of odd width (scalar paths), all three head dtypes. The bench
 * rows (chunk 0: the default width) are a 32k-vocabulary LM head of width 1024 on 256 tokens
 * (sized so `bench ops` stays within minutes on a CPU device). */
static const vkft_op_case cases[] = {
    {"cross_entropy", VKFT_F32, {7, 33, 1001, 256}, HARNESS_T},
    {"cross_entropy", VKFT_BF16, {16, 64, 500, 128}, HARNESS_T | HARNESS_S},
    {"cross_entropy", VKFT_F16, {1, 64, 50, 256}, HARNESS_T},
    {"cross_entropy_bwd", VKFT_F32, {1, 33, 50, 256}, HARNESS_T},
    {"cross_entropy_bwd", VKFT_F32, {7, 33, 1001, 256}, HARNESS_T},
    {"cross_entropy_bwd", VKFT_F32, {64, 128, 1024, 256}, HARNESS_T},
    {"cross_entropy_bwd", VKFT_F16, {13, 64, 777, 128}, HARNESS_T},
    {"cross_entropy_bwd", VKFT_BF16, {37, 96, 1030, 256}, HARNESS_T | HARNESS_S},
    {"cross_entropy_bwd_dw", VKFT_F32, {7, 33, 1001, 256}, HARNESS_T},
    {"cross_entropy_bwd_dw", VKFT_F32, {1, 17, 9, 64}, HARNESS_T},
    {"cross_entropy_bwd_dw", VKFT_F32, {64, 128, 2048, 512}, HARNESS_T | HARNESS_S},
    {"cross_entropy_bwd_dw", VKFT_BF16, {13, 67, 300, 64}, HARNESS_T},
    {"cross_entropy_bwd_ignored", VKFT_F32, {5, 16, 100, 64}, HARNESS_T},
    {"cross_entropy", VKFT_BF16, {256, 1024, 32000, 0}, HARNESS_B},
    {"cross_entropy_bwd", VKFT_BF16, {256, 1024, 32000, 0}, HARNESS_B},
};

const harness_family family_cross_entropy = {cases, HARNESS_COUNT(cases), run};
