/* Reference SwiGLU (the Llama MLP's act_fn(gate) * up): out = silu(gate) * up, with
 * silu(g) = g * sigmoid(g) as torch defines it. */
#include "real.h"

#include <math.h>

/* gate, up, out are (R, F) flattened to n elements; out may be gate or up */
void REF(swiglu)(const real *gate, const real *up, real *out, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    real g = gate[i];
    real sig = 1 / (1 + exp(-g));
    out[i] = g * sig * up[i];
  }
}

/* d silu(g)/dg = sig * (1 + g * (1 - sig)). dgate/dup may be gate/up (each element is read
 * before it is written). */
void REF(swiglu_backward)(const real *gate, const real *up, const real *dout, real *dgate,
                          real *dup, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    real g = gate[i], u = up[i], d = dout[i];
    real sig = 1 / (1 + exp(-g));
    dgate[i] = d * u * sig * (1 + g * (1 - sig));
    dup[i] = d * g * sig;
  }
}
