/* Op-table family "attention*": causal grouped-query attention over packed sequences, forward
 * (out, lse) and backward (dq, dk, dv), on the device against the double reference.
 *
 * Rows: "attention[_bwd]" is one sequence, "_packed" three packed sequences of odd lengths
 * with unordered ids, "_mixed" random ids from {0, 1, 2} (the mask is "j <= i and same id",
 * not contiguity). d = {T, Hq, Hkv, D}; scale = 1 / sqrt(D).
 *
 * Tolerance. Every output is a sum over attending pairs of a softmax weight p times fp32
 * data, so each element's error is normalized by its magnitude bound, the same sum with
 * absolute values (out: sum_j p |v|; dv: sum p |dout|; dq: scale sum_j p (|dout||v| +
 * |dout||out|) |k|; dk likewise with |q|), computed in double. Relative to that bound:
 *   - a score s = scale <q, k> in fp32 is off by at most D u SB (gamma_D; SB is the largest
 *     scale sum_d |q||k| of an attending pair), the max subtracted from it by as much again,
 *     and the weight p = exp(s - max) inherits that absolute error as a relative one: 2 D u SB;
 *   - the backward's dp = <dout, v> and delta = <dout, out> add D u (within the bound);
 *   - the fp32 sums over N terms (keys, or query rows times the group's heads) add N u;
 *   - exp2/log2/division of the driver: a few ulp, 16 u.
 * lse is compared as |error| / (1 + |lse|) under the same bound (its error is the score error
 * plus the relative error of the sum, plus the rounding of lse itself). */
#include "harness.h"

#include "vkft/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct attn_ctx {
  int64_t T, Hq, Hkv, D;
  int64_t split; /* "_cached": rows [0, split) then [split, T) as a KV-cache query offset */
  float scale;
  vkft_tensor q, k, v, seq, dout, out, lse, delta;
  vkft_tensor result;           /* fwd: out | lse; bwd: dq | dk | dv (one rerun check) */
  vkft_tensor r_out, r_lse;     /* fwd views of result */
  vkft_tensor r_dq, r_dk, r_dv; /* bwd views of result */
} attn_ctx;

static int record_fwd(vkft_backend *be, void *p) {
  attn_ctx *x = p;
  if (!x->split)
    return vkft_attention(be, &x->q, &x->k, &x->v, &x->seq, &x->r_out, &x->r_lse, x->T, x->Hq,
                          x->Hkv, x->D, x->scale);
  /* the queries in two parts, the second at a query offset over every key (a KV cache) */
  int64_t qrow = x->Hq * x->D, s = x->split, rest = x->T - s;
  vkft_tensor q1 = vkft_tensor_view(&x->q, 0, s * qrow),
              q2 = vkft_tensor_view(&x->q, s * qrow, rest * qrow);
  vkft_tensor o1 = vkft_tensor_view(&x->r_out, 0, s * qrow),
              o2 = vkft_tensor_view(&x->r_out, s * qrow, rest * qrow);
  vkft_tensor l1 = vkft_tensor_view(&x->r_lse, 0, s * x->Hq),
              l2 = vkft_tensor_view(&x->r_lse, s * x->Hq, rest * x->Hq);
  return vkft_attention_at(be, &q1, &x->k, &x->v, &x->seq, &o1, &l1, s, 0, x->Hq, x->Hkv, x->D,
                           x->scale) ||
         vkft_attention_at(be, &q2, &x->k, &x->v, &x->seq, &o2, &l2, rest, s, x->Hq, x->Hkv, x->D,
                           x->scale);
}

static int record_bwd(vkft_backend *be, void *p) {
  attn_ctx *x = p;
  return vkft_attention_bwd(be, &x->q, &x->k, &x->v, &x->seq, &x->out, &x->lse, &x->dout, &x->r_dq,
                            &x->r_dk, &x->r_dv, &x->delta, x->T, x->Hq, x->Hkv, x->D, x->scale);
}

/* The magnitude bounds of the tolerance comment, per element, in double; returns SB and the
 * number of attending pairs (for the flop count). p uses the reference lse. */
static double bounds(const double *q, const double *k, const double *v, const int32_t *seq,
                     const double *out, const double *lse, const double *dout, int64_t T,
                     int64_t Hq, int64_t Hkv, int64_t D, double scale, double *b_out, double *b_dq,
                     double *b_dk, double *b_dv, double *pairs) {
  int64_t group = Hq / Hkv;
  double sb = 0;
  *pairs = 0;
  memset(b_out, 0, (size_t)(T * Hq * D) * sizeof *b_out);
  if (b_dq) {
    memset(b_dq, 0, (size_t)(T * Hq * D) * sizeof *b_dq);
    memset(b_dk, 0, (size_t)(T * Hkv * D) * sizeof *b_dk);
    memset(b_dv, 0, (size_t)(T * Hkv * D) * sizeof *b_dv);
  }
  for (int64_t i = 0; i < T; i++)
    for (int64_t h = 0; h < Hq; h++) {
      int64_t g = h / group, r = i * Hq + h;
      const double *qi = q + r * D, *oi = out + r * D, *doi = dout ? dout + r * D : NULL;
      double do_o = 0; /* |dout_i| . |out_i| */
      for (int64_t d = 0; d < D && doi; d++) do_o += fabs(doi[d] * oi[d]);
      for (int64_t j = 0; j <= i; j++) {
        if (seq[j] != seq[i]) continue;
        const double *kj = k + (j * Hkv + g) * D, *vj = v + (j * Hkv + g) * D;
        double s = 0, s_abs = 0;
        for (int64_t d = 0; d < D; d++) s += qi[d] * kj[d], s_abs += fabs(qi[d] * kj[d]);
        double p = exp(scale * s - lse[r]);
        sb = fmax(sb, scale * s_abs);
        *pairs += 1;
        for (int64_t d = 0; d < D; d++) b_out[r * D + d] += p * fabs(vj[d]);
        if (!b_dq) continue;
        double do_v = 0; /* |dout_i| . |v_j| */
        for (int64_t d = 0; d < D; d++) do_v += fabs(doi[d] * vj[d]);
        double ds = scale * p * (do_v + do_o);
        for (int64_t d = 0; d < D; d++) {
          b_dq[r * D + d] += ds * fabs(kj[d]);
          b_dk[(j * Hkv + g) * D + d] += ds * fabs(qi[d]);
          b_dv[(j * Hkv + g) * D + d] += p * fabs(doi[d]);
        }
      }
    }
  return sb;
}

/* max_i |dev - ref| / bound (NaN propagates as a failure) */
static double max_err(const float *dev, const double *ref, const double *bound, int64_t n) {
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double err = fabs((double)dev[i] - ref[i]) / (bound[i] + 1e-30);
    if (!(err <= worst)) worst = err;
  }
  return worst;
}

/* the larger of two errors, NaN if either is */
static double worse(double a, double b) {
  return a != a || b != b ? NAN : fmax(a, b);
}

/* Sequence ids of the row's layout (see the top comment). */
static void make_seq(const char *op, int64_t T, harness_rng *rng, int32_t *seq) {
  int64_t len1 = (T / 3) | 1, len2 = (T / 3 - 2) | 1; /* 37: 13, 11, 13 */
  for (int64_t t = 0; t < T; t++) {
    if (strstr(op, "_packed"))
      seq[t] = t < len1 ? 5 : t < len1 + len2 ? 2 : 9;
    else if (strstr(op, "_mixed"))
      seq[t] = (int32_t)harness_uniform(rng, 0, 3);
    else
      seq[t] = 0;
  }
}

static int run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  attn_ctx x = {.T = c->d[0], .Hq = c->d[1], .Hkv = c->d[2], .D = c->d[3]};
  int64_t T = x.T, Hq = x.Hq, Hkv = x.Hkv, D = x.D;
  int bwd = strstr(c->op, "bwd") != NULL;
  x.split = strstr(c->op, "_cached") && x.T > 1 ? x.T - (x.T / 3 > 0 ? x.T / 3 : 1) : 0;
  x.scale = (float)(1.0 / sqrt((double)D));
  snprintf(r->shape, sizeof r->shape, "T%lld Hq%lld/%lld D%lld", (long long)T, (long long)Hq,
           (long long)Hkv, (long long)D);
  size_t nq = (size_t)(T * Hq * D), nkv = (size_t)(T * Hkv * D), ns = (size_t)(T * Hq);
  size_t nres = bwd ? nq + 2 * nkv : nq + ns;

  /* host: fp32 inputs, their double copies, reference outputs and bounds */
  float *f = malloc((3 * nq + 2 * nkv + ns + nres) * sizeof *f);
  double *dd = malloc((6 * nq + 6 * nkv + 2 * ns) * sizeof *dd);
  int32_t *seq = malloc((size_t)T * sizeof *seq);
  int status = VKFT_ERR;
  if (!f || !dd || !seq) {
    vkft_error("attention %s: out of host memory", r->shape);
    goto done;
  }
  float *qf = f, *kf = qf + nq, *vf = kf + nkv, *dof = vf + nkv, *outf = dof + nq,
        *lsef = outf + nq, *res = lsef + ns;
  double *q = dd, *k = q + nq, *v = k + nkv, *dout = v + nkv, *out = dout + nq, *lse = out + nq;
  double *dq = lse + ns, *dk = dq + nq, *dv = dk + nkv, *delta = dv + nkv;
  double *b_out = delta + ns, *b_dq = b_out + nq, *b_dk = b_dq + nq, *b_dv = b_dk + nkv;

  harness_rng rng = {(uint64_t)(T * 1000003 + Hq * 1009 + Hkv * 101 + D) ^ (uint64_t)strlen(c->op)
                                                                               << 40};
  make_seq(c->op, T, &rng, seq);
  for (size_t i = 0; i < nq; i++) qf[i] = (float)harness_uniform(&rng, -1, 1), q[i] = qf[i];
  for (size_t i = 0; i < nkv; i++) kf[i] = (float)harness_uniform(&rng, -1, 1), k[i] = kf[i];
  for (size_t i = 0; i < nkv; i++) vf[i] = (float)harness_uniform(&rng, -1, 1), v[i] = vf[i];
  for (size_t i = 0; i < nq; i++) dof[i] = (float)harness_uniform(&rng, -1, 1), dout[i] = dof[i];
  vkft_ref_attention_forward_f64(q, k, v, seq, out, lse, T, Hq, Hkv, D, x.scale);
  if (bwd) {
    /* the backward's saved inputs as the device will hold them (fp32), exactly */
    for (size_t i = 0; i < nq; i++) outf[i] = (float)out[i], out[i] = outf[i];
    for (size_t i = 0; i < ns; i++) lsef[i] = (float)lse[i], lse[i] = lsef[i];
    vkft_ref_attention_backward_f64(q, k, v, seq, out, lse, dout, dq, dk, dv, delta, T, Hq, Hkv, D,
                                    x.scale);
  }

  if (vkft_tensor_alloc(vk, VKFT_F32, (int64_t)nq, &x.q) ||
      vkft_tensor_alloc(vk, VKFT_F32, (int64_t)nkv, &x.k) ||
      vkft_tensor_alloc(vk, VKFT_F32, (int64_t)nkv, &x.v) ||
      vkft_tensor_alloc(vk, VKFT_I32, T, &x.seq) ||
      vkft_tensor_alloc(vk, VKFT_F32, (int64_t)nres, &x.result) ||
      vkft_tensor_write(vk, &x.q, qf) || vkft_tensor_write(vk, &x.k, kf) ||
      vkft_tensor_write(vk, &x.v, vf) || vkft_tensor_write(vk, &x.seq, seq))
    goto release;
  if (bwd) {
    x.r_dq = vkft_tensor_view(&x.result, 0, (int64_t)nq);
    x.r_dk = vkft_tensor_view(&x.result, (int64_t)nq, (int64_t)nkv);
    x.r_dv = vkft_tensor_view(&x.result, (int64_t)(nq + nkv), (int64_t)nkv);
    if (vkft_tensor_alloc(vk, VKFT_F32, (int64_t)nq, &x.dout) ||
        vkft_tensor_alloc(vk, VKFT_F32, (int64_t)nq, &x.out) ||
        vkft_tensor_alloc(vk, VKFT_F32, (int64_t)ns, &x.lse) ||
        vkft_tensor_alloc(vk, VKFT_F32, (int64_t)ns, &x.delta) ||
        vkft_tensor_write(vk, &x.dout, dof) || vkft_tensor_write(vk, &x.out, outf) ||
        vkft_tensor_write(vk, &x.lse, lsef))
      goto release;
  } else {
    x.r_out = vkft_tensor_view(&x.result, 0, (int64_t)nq);
    x.r_lse = vkft_tensor_view(&x.result, (int64_t)nq, (int64_t)ns);
  }
  harness_record_fn record = bwd ? record_bwd : record_fwd;
  if (vkft_begin(vk) || record(vk, &x) || vkft_end(vk) || vkft_tensor_read(vk, &x.result, res))
    goto release;

  double pairs;
  double sb = bounds(q, k, v, seq, out, lse, bwd ? dout : NULL, T, Hq, Hkv, D, x.scale, b_out,
                     bwd ? b_dq : NULL, b_dk, b_dv, &pairs);
  const double u = ldexp(1.0, -24);
  if (bwd) {
    double terms = (double)T * (double)(Hq / Hkv); /* most terms of one dk/dv sum */
    r->tol = (2 * D * sb + D + terms + 16) * u;
    double e_dq = max_err(res, dq, b_dq, (int64_t)nq);
    double e_dk = max_err(res + nq, dk, b_dk, (int64_t)nkv);
    double e_dv = max_err(res + nq + nkv, dv, b_dv, (int64_t)nkv);
    r->max_err = worse(e_dq, worse(e_dk, e_dv));
  } else {
    r->tol = (2 * D * sb + (double)T + 16) * u;
    double e_lse = 0;
    for (size_t i = 0; i < ns; i++) {
      double err = fabs((double)res[nq + i] - lse[i]) / (1 + fabs(lse[i]));
      if (!(err <= e_lse)) e_lse = err;
    }
    r->max_err = worse(max_err(res, out, b_out, (int64_t)nq), e_lse);
  }
  r->ok = r->max_err <= r->tol;
  status = harness_repeat(vk, NULL, record, &x, &x.result, res, timed_runs, r);
  /* Flops of the causal work actually done: 2D for q.k and 2D for p.v per attending pair
   * and head (4 D Hq T (T+1) / 2 for one sequence); the backward is counted as 2.5x the
   * forward, the FlashAttention-2 convention (it does 5 of these D-long products per pair,
   * plus the recomputed q.k). */
  double flops = 4.0 * (double)D * pairs * (bwd ? 2.5 : 1.0);
  if (status == VKFT_OK && r->ms > 0) r->gflops = flops / (r->ms * 1e6);

release:
  vkft_tensor_free(vk, &x.q);
  vkft_tensor_free(vk, &x.k);
  vkft_tensor_free(vk, &x.v);
  vkft_tensor_free(vk, &x.seq);
  vkft_tensor_free(vk, &x.result);
  vkft_tensor_free(vk, &x.dout);
  vkft_tensor_free(vk, &x.out);
  vkft_tensor_free(vk, &x.lse);
  vkft_tensor_free(vk, &x.delta);
done:
  free(f), free(dd), free(seq);
  return status;
}

/* attention d = {T, Hq, Hkv, D}: T = 1, T not a multiple of the rows of an invocation (8 on
 * lavapipe) or a workgroup (128), odd and small head dims (scalar-load path), 64, 80 and 128
 * (vector path), grouped and plain heads. */
static const vkft_op_case cases[] = {
    {"attention", VKFT_F32, {1, 1, 1, 8}, HARNESS_T},
    {"attention", VKFT_F32, {1, 4, 2, 5}, HARNESS_T},
    {"attention_packed", VKFT_F32, {37, 4, 2, 16}, HARNESS_T | HARNESS_S},
    {"attention_packed", VKFT_F32, {37, 4, 2, 5}, HARNESS_T},
    {"attention_packed", VKFT_F32, {37, 4, 4, 8}, HARNESS_T},
    {"attention_packed", VKFT_F32, {37, 2, 1, 64}, HARNESS_T},
    {"attention_packed", VKFT_F32, {37, 2, 2, 128}, HARNESS_T},
    {"attention_packed", VKFT_F32, {200, 3, 1, 7}, HARNESS_T},
    {"attention_mixed", VKFT_F32, {45, 4, 2, 8}, HARNESS_T},
    {"attention", VKFT_F32, {64, 2, 2, 16}, HARNESS_T},
    {"attention", VKFT_F32, {67, 4, 2, 64}, HARNESS_T},
    {"attention", VKFT_F32, {130, 2, 1, 128}, HARNESS_T},
    {"attention_packed", VKFT_F32, {37, 2, 1, 80}, HARNESS_T},
    /* generation: the last third of the queries at a query offset (vkft_attention_at) */
    {"attention_cached", VKFT_F32, {37, 4, 2, 16}, HARNESS_T},
    {"attention_cached", VKFT_F32, {67, 4, 2, 64}, HARNESS_T | HARNESS_S},
    {"attention_cached", VKFT_F32, {2, 2, 1, 5}, HARNESS_T},
    {"attention_bwd", VKFT_F32, {1, 1, 1, 8}, HARNESS_T},
    {"attention_bwd", VKFT_F32, {1, 4, 2, 5}, HARNESS_T},
    {"attention_bwd_packed", VKFT_F32, {37, 4, 2, 16}, HARNESS_T | HARNESS_S},
    {"attention_bwd_packed", VKFT_F32, {37, 4, 2, 5}, HARNESS_T},
    {"attention_bwd_packed", VKFT_F32, {37, 4, 4, 8}, HARNESS_T},
    {"attention_bwd_packed", VKFT_F32, {37, 2, 1, 64}, HARNESS_T},
    {"attention_bwd_packed", VKFT_F32, {37, 2, 2, 128}, HARNESS_T},
    {"attention_bwd_packed", VKFT_F32, {200, 3, 1, 7}, HARNESS_T},
    {"attention_bwd_mixed", VKFT_F32, {45, 4, 2, 8}, HARNESS_T},
    {"attention_bwd", VKFT_F32, {64, 2, 2, 16}, HARNESS_T},
    {"attention_bwd", VKFT_F32, {67, 4, 2, 64}, HARNESS_T},
    {"attention_bwd", VKFT_F32, {130, 2, 1, 128}, HARNESS_T},
    {"attention_bwd_packed", VKFT_F32, {37, 2, 1, 80}, HARNESS_T},
    {"attention", VKFT_F32, {512, 8, 8, 64}, HARNESS_B},
    {"attention", VKFT_F32, {1024, 8, 8, 64}, HARNESS_B},
    {"attention_bwd", VKFT_F32, {512, 8, 8, 64}, HARNESS_B},
    {"attention_bwd", VKFT_F32, {1024, 8, 8, 64}, HARNESS_B},
};

const harness_family family_attention = {cases, HARNESS_COUNT(cases), run};
