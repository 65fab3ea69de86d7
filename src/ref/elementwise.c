/* Reference elementwise arithmetic (add, scale); copies, fills and dtype conversions are
 * specified by memcpy and the exact host conversions of src/core/dtype.c. */
#include "real.h"

/* out = a + b, all (n); out may be a or b */
void REF(add)(const real *a, const real *b, real *out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* x *= s, x (n) */
void REF(scale)(real *x, real s, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = s * x[i];
}
