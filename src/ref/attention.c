/* Reference attention (causal, grouped-query, packed sequences), forward and backward: the
 * specification shaders/attention.comp is tested against (see vkft/ref_ops.h). Plain loops over
 * the full score matrix row by row; no T x T buffer is needed because each score is recomputed
 * where it is used. */
#include "real.h"

#include <math.h>

/* Token i attends to token j iff j <= i and both belong to the same packed sequence. Only
 * these two facts are used: ids need not be increasing, nor their runs contiguous. */
static int attends(const int32_t *seq_id, int64_t i, int64_t j) {
  return j <= i && seq_id[j] == seq_id[i];
}

/* scale * <q[i,h,:], k[j,g,:]> */
static real score(const real *q, const real *k, int64_t i, int64_t j, int64_t h, int64_t g,
                  int64_t Hq, int64_t Hkv, int64_t D, real scale) {
  const real *qi = q + (i * Hq + h) * D, *kj = k + (j * Hkv + g) * D;
  real sum = 0;
  for (int64_t d = 0; d < D; d++) sum += qi[d] * kj[d];
  return scale * sum;
}

/* q is (Tq, Hq, D): the queries of positions q_offset .. q_offset + Tq - 1; k and v are
 * (q_offset + Tq, Hkv, D) and seq_id (q_offset + Tq) cover every position up to the last query
 * (a KV cache during generation; q_offset = 0 in training). out is (Tq, Hq, D), lse (Tq, Hq).
 * Query head h reads kv head h / (Hq / Hkv). */
void REF(attention_forward_at)(const real *q, const real *k, const real *v, const int32_t *seq_id,
                               real *out, real *lse, int64_t Tq, int64_t q_offset, int64_t Hq,
                               int64_t Hkv, int64_t D, real scale) {
  int64_t group = Hq / Hkv;
  for (int64_t i = 0; i < Tq; i++) {
    int64_t pos = q_offset + i;
    for (int64_t h = 0; h < Hq; h++) {
      int64_t g = h / group;
      /* pass 1: the row maximum, so that exp never overflows */
      real max = -INFINITY;
      for (int64_t j = 0; j <= pos; j++) {
        if (!attends(seq_id, pos, j)) continue;
        real s = score(q, k, i, j, h, g, Hq, Hkv, D, scale);
        if (s > max) max = s;
      }
      /* pass 2: softmax weights and the weighted sum of values (j == pos always attends) */
      real *o = out + (i * Hq + h) * D;
      for (int64_t d = 0; d < D; d++) o[d] = 0;
      real sum = 0;
      for (int64_t j = 0; j <= pos; j++) {
        if (!attends(seq_id, pos, j)) continue;
        real p = exp(score(q, k, i, j, h, g, Hq, Hkv, D, scale) - max);
        sum += p;
        const real *vj = v + (j * Hkv + g) * D;
        for (int64_t d = 0; d < D; d++) o[d] += p * vj[d];
      }
      for (int64_t d = 0; d < D; d++) o[d] /= sum;
      lse[i * Hq + h] = max + log(sum);
    }
  }
}

/* q is (T, Hq, D), k and v are (T, Hkv, D), seq_id is (T); out is (T, Hq, D), lse is (T, Hq). */
void REF(attention_forward)(const real *q, const real *k, const real *v, const int32_t *seq_id,
                            real *out, real *lse, int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                            real scale) {
  REF(attention_forward_at)(q, k, v, seq_id, out, lse, T, 0, Hq, Hkv, D, scale);
}

/* Gradients of L given dout = dL/dout (T, Hq, D): dq (T, Hq, D), dk and dv (T, Hkv, D), all
 * overwritten. delta (T, Hq) is written with sum_d dout * out, the softmax backward's row term:
 * with p = softmax(s), ds_j = p_j (dp_j - sum_l p_l dp_l) and sum_l p_l dp_l = <dout, out>. */
void REF(attention_backward)(const real *q, const real *k, const real *v, const int32_t *seq_id,
                             const real *out, const real *lse, const real *dout, real *dq, real *dk,
                             real *dv, real *delta, int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                             real scale) {
  int64_t group = Hq / Hkv;
  for (int64_t i = 0; i < T * Hq * D; i++) dq[i] = 0;
  for (int64_t i = 0; i < T * Hkv * D; i++) dk[i] = 0, dv[i] = 0;
  for (int64_t i = 0; i < T * Hq; i++) {
    real sum = 0;
    for (int64_t d = 0; d < D; d++) sum += dout[i * D + d] * out[i * D + d];
    delta[i] = sum;
  }
  for (int64_t i = 0; i < T; i++) {
    for (int64_t h = 0; h < Hq; h++) {
      int64_t g = h / group;
      const real *qi = q + (i * Hq + h) * D, *doi = dout + (i * Hq + h) * D;
      real *dqi = dq + (i * Hq + h) * D;
      for (int64_t j = 0; j <= i; j++) {
        if (!attends(seq_id, i, j)) continue;
        const real *kj = k + (j * Hkv + g) * D, *vj = v + (j * Hkv + g) * D;
        real *dkj = dk + (j * Hkv + g) * D, *dvj = dv + (j * Hkv + g) * D;
        /* the softmax weight, recomputed from the saved log-sum-exp */
        real p = exp(score(q, k, i, j, h, g, Hq, Hkv, D, scale) - lse[i * Hq + h]);
        real dp = 0; /* dL/dp = <dout_i, v_j> */
        for (int64_t d = 0; d < D; d++) dp += doi[d] * vj[d];
        real ds = p * (dp - delta[i * Hq + h]); /* dL/ds, s the scaled score */
        for (int64_t d = 0; d < D; d++) {
          dvj[d] += p * doi[d];
          dqi[d] += scale * ds * kj[d];
          dkj[d] += scale * ds * qi[d];
        }
      }
    }
  }
}
