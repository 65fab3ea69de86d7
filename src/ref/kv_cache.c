/* Reference KV-cache ops of batched generation: storing new keys/values into a slotted cache
 * and the attention of new queries over their own sequence's cached rows (the specification
 * shaders/kv_cache.comp is tested against). */
#include "real.h"

#include <math.h>

/* x is (T, W), rows (T), cache (R, W) */
void REF(kv_store)(const real *x, const int32_t *rows, real *cache, int64_t T, int64_t W) {
  for (int64_t t = 0; t < T; t++)
    for (int64_t w = 0; w < W; w++) cache[(int64_t)rows[t] * W + w] = x[t * W + w];
}

/* scale * <q[t,h,:], k[j,g,:]> */
static real score(const real *q, const real *k, int64_t t, int64_t j, int64_t h, int64_t g,
                  int64_t Hq, int64_t Hkv, int64_t D, real scale) {
  const real *qt = q + (t * Hq + h) * D, *kj = k + (j * Hkv + g) * D;
  real sum = 0;
  for (int64_t d = 0; d < D; d++) sum += qt[d] * kj[d];
  return scale * sum;
}

/* q is (T, Hq, D), k and v (R, Hkv, D), out (T, Hq, D): query t attends to rows
 * first .. last = rows[t] - pos[t] .. rows[t], its sequence's positions 0 .. pos[t]. */
void REF(attention_decode)(const real *q, const real *k, const real *v, const int32_t *rows,
                           const int32_t *pos, real *out, int64_t T, int64_t Hq, int64_t Hkv,
                           int64_t D, real scale) {
  int64_t group = Hq / Hkv;
  for (int64_t t = 0; t < T; t++) {
    int64_t last = rows[t], first = last - pos[t];
    for (int64_t h = 0; h < Hq; h++) {
      int64_t g = h / group;
      real max = -INFINITY; /* pass 1: the maximum score, so that exp never overflows */
      for (int64_t j = first; j <= last; j++) {
        real s = score(q, k, t, j, h, g, Hq, Hkv, D, scale);
        if (s > max) max = s;
      }
      real *o = out + (t * Hq + h) * D, sum = 0;
      for (int64_t d = 0; d < D; d++) o[d] = 0;
      for (int64_t j = first; j <= last; j++) { /* pass 2: softmax-weighted values */
        real p = exp(score(q, k, t, j, h, g, Hq, Hkv, D, scale) - max);
        sum += p;
        for (int64_t d = 0; d < D; d++) o[d] += p * v[(j * Hkv + g) * D + d];
      }
      for (int64_t d = 0; d < D; d++) o[d] /= sum;
    }
  }
}
