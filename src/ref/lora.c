/* Reference LoRA update y += s * B (A x) and its backward: the specification of the device op
 * (src/ops/lora.c). A (r, in) and B (out, r) are the trainable low-rank factors; s is the
 * scaling alpha / r (or alpha / sqrt(r) with rsLoRA), chosen by the caller. */
#include "real.h"

void REF(lora)(const real *x, const real *a, const real *b, real *y, real *u, int64_t T, int64_t in,
               int64_t out, int64_t r, real s) {
  // x is (T, in), a is (r, in), b is (out, r); y (T, out) is accumulated into;
  // u (T, r) = x a^T is written (saved for the backward)
  for (int64_t t = 0; t < T; t++) {
    real *u_t = &u[t * r];
    for (int64_t k = 0; k < r; k++) {
      real sum = 0;
      for (int64_t i = 0; i < in; i++) sum += a[k * in + i] * x[t * in + i];
      u_t[k] = sum;
    }
    for (int64_t o = 0; o < out; o++) {
      real sum = 0;
      for (int64_t k = 0; k < r; k++) sum += b[o * r + k] * u_t[k];
      y[t * out + o] += s * sum;
    }
  }
}

void REF(lora_bwd)(const real *x, const real *a, const real *b, const real *u, const real *dy,
                   real *dx, real *da, real *db, int64_t T, int64_t in, int64_t out, int64_t r,
                   real s) {
  // x is (T, in), a is (r, in), b is (out, r), u is (T, r) from the forward, dy is (T, out);
  // dx (T, in) (if not NULL), da (r, in) and db (out, r) are accumulated into.
  for (int64_t t = 0; t < T; t++) {
    const real *dy_t = &dy[t * out];
    for (int64_t o = 0; o < out; o++)
      for (int64_t k = 0; k < r; k++) db[o * r + k] += s * dy_t[o] * u[t * r + k];
    for (int64_t k = 0; k < r; k++) {
      real du = 0; // du[t, k] = s * sum_o dy[t, o] b[o, k]
      for (int64_t o = 0; o < out; o++) du += dy_t[o] * b[o * r + k];
      du *= s;
      for (int64_t i = 0; i < in; i++) da[k * in + i] += du * x[t * in + i];
      if (dx)
        for (int64_t i = 0; i < in; i++) dx[t * in + i] += du * a[k * in + i];
    }
  }
}
