/* Reference token embedding lookup and its backward (a scatter-add into the table). */
#include "real.h"

/* table is (V, C), ids is (T) with every id in [0, V) (the caller validates), out is (T, C) */
void REF(embedding)(const real *table, const int32_t *ids, real *out, int64_t T, int64_t C) {
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < C; c++) out[t * C + c] = table[(int64_t)ids[t] * C + c];
}

/* dtable (V, C) += dout (T, C) scattered by ids (T): each row of dtable receives its tokens'
 * gradients in increasing t (the device follows the same order, so fp32 results match bits). */
void REF(embedding_backward)(const real *dout, const int32_t *ids, real *dtable, int64_t T,
                             int64_t C) {
  for (int64_t t = 0; t < T; t++)
    for (int64_t c = 0; c < C; c++) dtable[(int64_t)ids[t] * C + c] += dout[t * C + c];
}
