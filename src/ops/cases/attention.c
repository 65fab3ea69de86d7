/* Op-table family "attention*": causal grouped-query attention over packed sequences, forward
 * (out, lse) and backward (dq, dk, dv), against the double reference.
 *
 * Rows: "attention[_bwd]" is one sequence, "_packed" three packed sequences of odd lengths
 * with unordered ids, "_mixed" random ids from {0, 1, 2} (the mask is "j <= i and same id",
 * not contiguity), "_cached" one sequence whose last third of queries runs at a query offset
 * (a KV cache). d = {T, Hq, Hkv, D}; scale = 1 / sqrt(D).
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
 * plus the relative error of the sum, plus the rounding of lse itself).
 * Kernels that round their inputs to fp16 (the cooperative-matrix ones: unit u' = 2^-10 for
 * round-to-nearest or toward zero, vkft_attention_precision_of) add: q and k rounded, a score
 * off by 2 u' SB, lse by as much, so each weight by 4 u' SB relative; the weights and v rounded
 * for p.v: 2 u'; the backward's dout and v (dp), dS, and k or q rounded once more: 6 u' in all
 * (relative to the same bounds), and their fp32 sums may truncate: 2 u per term. Staged blocks
 * are scaled by powers of two first, so nothing within 2^-27 of a block's largest |value|
 * flushes (the random data here stays far above that). */
#include "case.h"

#include "ops/backend.h"

#include <string.h>

enum { Q, K, V, SEQ, OUT, LSE, DOUT, DQ, DK, DV, DELTA };
/* the variants, in the order of the op list */
enum { ONE, PACKED, MIXED, CACHED, BWD_ONE, BWD_PACKED, BWD_MIXED };

typedef struct attention_params {
  int64_t T, Hq, Hkv, D;
  int64_t split; /* "_cached": rows [0, split) then [split, T) at a query offset */
  int bwd;
  float scale;
} attention_params;

/* The magnitude bounds of the tolerance comment, per element, in double; returns SB and the
 * number of attending pairs (for the flop count). p uses the reference lse. */
static double bounds(const double *q, const double *k, const double *v, const int32_t *seq,
                     const double *out, const double *lse, const double *dout, int64_t T,
                     int64_t Hq, int64_t Hkv, int64_t D, double scale, double *b_out, double *b_dq,
                     double *b_dk, double *b_dv, double *pairs) {
  int64_t group = Hq / Hkv;
  double sb = 0;
  *pairs = 0;
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
        if (!doi) continue;
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

/* Sequence ids of the row's layout (see the top comment). */
static void sequence_ids(int layout, int64_t T, case_rng *rng, int32_t *seq) {
  int64_t len1 = (T / 3) | 1, len2 = (T / 3 - 2) | 1; /* 37: 13, 11, 13 */
  for (int64_t t = 0; t < T; t++) {
    if (layout == PACKED)
      seq[t] = t < len1 ? 5 : t < len1 + len2 ? 2 : 9;
    else if (layout == MIXED)
      seq[t] = (int32_t)case_uniform(rng, 0, 3);
    else
      seq[t] = 0;
  }
}

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  attention_params *p = CASE_PARAMS(oc, attention_params);
  if (!p) return VKFT_ERR;
  int64_t T = c->d[0], Hq = c->d[1], Hkv = c->d[2], D = c->d[3];
  int bwd = oc->variant >= BWD_ONE, layout = bwd ? oc->variant - BWD_ONE : oc->variant;
  *p = (attention_params){T, Hq, Hkv, D, 0, bwd, (float)(1.0 / sqrt((double)D))};
  if (layout == CACHED && T > 1) p->split = T - (T / 3 > 0 ? T / 3 : 1);
  case_shape(oc, "T%lld Hq%lld/%lld D%lld", (long long)T, (long long)Hq, (long long)Hkv,
             (long long)D);
  int64_t nq = T * Hq * D, nkv = T * Hkv * D, ns = T * Hq;
  int32_t *seq = case_tensor_new(oc, SEQ, "seq_id", VKFT_I32, T, CASE_IN);
  double *q = case_random(oc, Q, "q", VKFT_F32, nq, CASE_IN, -1, 1);
  double *k = case_random(oc, K, "k", VKFT_F32, nkv, CASE_IN, -1, 1);
  double *v = case_random(oc, V, "v", VKFT_F32, nkv, CASE_IN, -1, 1);
  double *out = CASE_NEW(oc, double, nq), *lse = CASE_NEW(oc, double, ns);
  double *b_out = CASE_NEW(oc, double, nq), *lse_scale = CASE_NEW(oc, double, ns), pairs;
  if (oc->failed) return VKFT_ERR;
  sequence_ids(layout, T, &oc->rng, seq);
  vkft_ref_attention_forward_f64(q, k, v, seq, out, lse, T, Hq, Hkv, D, p->scale);
  /* Flops of the causal work actually done: 2D for q.k and 2D for p.v per attending pair
   * and head (4 D Hq T (T+1) / 2 for one sequence); the backward is counted as 2.5x the
   * forward, the FlashAttention-2 convention (it does 5 of these D-long products per pair,
   * plus the recomputed q.k). */
  /* The loosest rounding among the kernels the backends will run (see the top comment). */
  double u_in = 0;
  for (int i = 0; i < oc->backend_count; i++) {
    double u;
    if (vkft_attention_precision_of(oc->backends[i], D, &u) != VKFT_OK) {
      oc->failed = 1;
      return VKFT_ERR;
    }
    u_in = fmax(u_in, u);
  }
  const double u_acc = u_in > 0 ? 2 * CASE_U : CASE_U;
  if (!bwd) {
    case_poisoned(oc, OUT, "out", nq);
    case_poisoned(oc, LSE, "lse", ns);
    double sb = bounds(q, k, v, seq, out, lse, NULL, T, Hq, Hkv, D, p->scale, b_out, NULL, NULL,
                       NULL, &pairs);
    double tol = (2 * D * sb + 16) * CASE_U + (double)T * u_acc + (4 * sb + 2) * u_in;
    for (int64_t i = 0; i < ns; i++) lse_scale[i] = 1 + fabs(lse[i]);
    case_expect(oc, OUT, out, b_out, tol);
    case_expect(oc, LSE, lse, lse_scale, tol);
    oc->flops = 4.0 * (double)D * pairs;
    return case_status(oc);
  }

  /* the backward's saved inputs as the device holds them (fp32), exactly */
  float *out32 = case_tensor_new(oc, OUT, "out", VKFT_F32, nq, CASE_IN);
  float *lse32 = case_tensor_new(oc, LSE, "lse", VKFT_F32, ns, CASE_IN);
  double *dout = case_random(oc, DOUT, "dout", VKFT_F32, nq, CASE_IN, -1, 1);
  case_poisoned(oc, DQ, "dq", nq);
  case_poisoned(oc, DK, "dk", nkv);
  case_poisoned(oc, DV, "dv", nkv);
  case_tensor_new(oc, DELTA, "delta", VKFT_F32, ns, CASE_SCRATCH);
  double *dq = CASE_NEW(oc, double, nq), *dk = CASE_NEW(oc, double, nkv);
  double *dv = CASE_NEW(oc, double, nkv), *delta = CASE_NEW(oc, double, ns);
  double *b_dq = CASE_NEW(oc, double, nq), *b_dk = CASE_NEW(oc, double, nkv);
  double *b_dv = CASE_NEW(oc, double, nkv);
  if (oc->failed) return VKFT_ERR;
  for (int64_t i = 0; i < nq; i++) out32[i] = (float)out[i], out[i] = out32[i];
  for (int64_t i = 0; i < ns; i++) lse32[i] = (float)lse[i], lse[i] = lse32[i];
  vkft_ref_attention_backward_f64(q, k, v, seq, out, lse, dout, dq, dk, dv, delta, T, Hq, Hkv, D,
                                  p->scale);
  double sb = bounds(q, k, v, seq, out, lse, dout, T, Hq, Hkv, D, p->scale, b_out, b_dq, b_dk, b_dv,
                     &pairs);
  double terms = (double)T * (double)(Hq / Hkv); /* most terms of one dk/dv sum */
  double tol = (2 * D * sb + D + 16) * CASE_U + terms * u_acc + (4 * sb + 6) * u_in;
  case_expect(oc, DQ, dq, b_dq, tol);
  case_expect(oc, DK, dk, b_dk, tol);
  case_expect(oc, DV, dv, b_dv, tol);
  oc->flops = 4.0 * (double)D * pairs * 2.5;
  return case_status(oc);
}

static int record_forward(vkft_backend *be, const attention_params *p, vkft_tensor *t) {
  if (!p->split)
    return vkft_attention(be, &t[Q], &t[K], &t[V], &t[SEQ], &t[OUT], &t[LSE], p->T, p->Hq, p->Hkv,
                          p->D, p->scale);
  /* the queries in two parts, the second at a query offset over every key (a KV cache) */
  int64_t qrow = p->Hq * p->D, s = p->split, rest = p->T - s;
  vkft_tensor q1 = vkft_tensor_view(&t[Q], 0, s * qrow),
              q2 = vkft_tensor_view(&t[Q], s * qrow, rest * qrow);
  vkft_tensor o1 = vkft_tensor_view(&t[OUT], 0, s * qrow),
              o2 = vkft_tensor_view(&t[OUT], s * qrow, rest * qrow);
  vkft_tensor l1 = vkft_tensor_view(&t[LSE], 0, s * p->Hq),
              l2 = vkft_tensor_view(&t[LSE], s * p->Hq, rest * p->Hq);
  return vkft_attention_at(be, &q1, &t[K], &t[V], &t[SEQ], &o1, &l1, s, 0, p->Hq, p->Hkv, p->D,
                           p->scale) ||
         vkft_attention_at(be, &q2, &t[K], &t[V], &t[SEQ], &o2, &l2, rest, s, p->Hq, p->Hkv, p->D,
                           p->scale);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const attention_params *p = oc->params;
  if (!p->bwd) return record_forward(be, p, t);
  return vkft_attention_bwd(be, &t[Q], &t[K], &t[V], &t[SEQ], &t[OUT], &t[LSE], &t[DOUT], &t[DQ],
                            &t[DK], &t[DV], &t[DELTA], p->T, p->Hq, p->Hkv, p->D, p->scale);
}

const case_family case_attention = {{"attention", "attention_packed", "attention_mixed",
                                     "attention_cached", "attention_bwd", "attention_bwd_packed",
                                     "attention_bwd_mixed"},
                                    setup,
                                    record};
