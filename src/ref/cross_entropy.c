/* Reference cross-entropy of the LM head: logits = h W^T, log-softmax over the vocabulary, loss
 * of each trained token, and its gradients. The specification the chunked device op
 * (src/ops/cross_entropy.c) is tested against. Labels follow the HF convention, already shifted
 * by the caller: labels[t] is the target of position t; -100 (any label outside [0, V)) means
 * "not trained" and such a row contributes nothing. One row of logits at a time is kept. */
#include "real.h"

#include <math.h>

static int trained(int32_t label, int64_t V) {
  return label >= 0 && label < V;
}

/* logits (V) = W h_t for one row; returns the log of sum_v exp(logits_v) (stable) */
static real row_logsumexp(const real *h_t, const real *w, int64_t C, int64_t V, real *logits) {
  real max = -INFINITY;
  for (int64_t v = 0; v < V; v++) {
    real z = 0;
    for (int64_t c = 0; c < C; c++) z += h_t[c] * w[v * C + c];
    logits[v] = z;
    if (z > max) max = z;
  }
  real sum = 0;
  for (int64_t v = 0; v < V; v++) sum += exp(logits[v] - max);
  return max + log(sum);
}

void REF(cross_entropy)(const real *h, const real *w, const int32_t *labels, int64_t T, int64_t C,
                        int64_t V, real *loss, real *row_loss, real *logits) {
  // h is (T, C), w is (V, C), labels is (T), logits is (V) scratch, row_loss is (T) or NULL
  // loss[0] = sum over trained t of (logsumexp_v logits[t, v] - logits[t, label_t]);
  // loss[1] = number of trained tokens
  real sum = 0, count = 0;
  for (int64_t t = 0; t < T; t++) {
    if (row_loss) row_loss[t] = 0;
    if (!trained(labels[t], V)) continue;
    real lse = row_logsumexp(&h[t * C], w, C, V, logits);
    real l = lse - logits[labels[t]];
    if (row_loss) row_loss[t] = l;
    sum += l;
    count += 1;
  }
  loss[0] = sum;
  loss[1] = count;
}

void REF(cross_entropy_bwd)(const real *h, const real *w, const int32_t *labels, int64_t T,
                            int64_t C, int64_t V, real grad_scale, const real *row_weight, real *dh,
                            real *dw, real *logits) {
  // h is (T, C), w is (V, C), labels is (T), logits is (V) scratch, row_weight is (T) or NULL
  // dh (T, C) is written: grad_scale * row_weight[t] * dloss_t/dh; dw (V, C), if not NULL, is
  // accumulated.
  // dloss_t/dlogits[t, v] = softmax(logits[t])_v - (v == label_t)
  for (int64_t t = 0; t < T; t++) {
    real *dh_t = &dh[t * C];
    for (int64_t c = 0; c < C; c++) dh_t[c] = 0;
    if (!trained(labels[t], V)) continue;
    const real *h_t = &h[t * C];
    real lse = row_logsumexp(h_t, w, C, V, logits);
    for (int64_t v = 0; v < V; v++) {
      real dlogit = exp(logits[v] - lse) - (v == labels[t] ? 1 : 0);
      dlogit *= grad_scale;
      if (row_weight) dlogit *= row_weight[t];
      for (int64_t c = 0; c < C; c++) dh_t[c] += dlogit * w[v * C + c];
      if (dw)
        for (int64_t c = 0; c < C; c++) dw[v * C + c] += dlogit * h_t[c];
    }
  }
}
