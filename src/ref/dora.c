/* Reference DoRA (weight-decomposed LoRA, Liu et al. 2024) pieces as PEFT computes them
 * (huggingface/peft, src/peft/tuners/lora/dora.py, DoraLinearLayer; docs/LORA.md): the row norms
 * of the adapted weight, the per-output-row scale, and the magnitude's gradient. The
 * specification of the device ops (src/ops/dora.c, shaders/dora.comp). */
#include "real.h"

#include <math.h>

void REF(dora_norm)(const real *w, const real *a, const real *b, const real *m, real *norm,
                    real *scale, int64_t out, int64_t in, int64_t r, real s) {
  // w is (out, in), a is (r, in), b is (out, r), m is (out) or NULL;
  // norm (out) = ||w[o, :] + s b[o, :] a||, scale (out) = m / norm (when m is not NULL)
  for (int64_t o = 0; o < out; o++) {
    real sum = 0;
    for (int64_t i = 0; i < in; i++) {
      real delta = 0;
      for (int64_t k = 0; k < r; k++) delta += b[o * r + k] * a[k * in + i];
      real v = w[o * in + i] + s * delta;
      sum += v * v;
    }
    norm[o] = sqrt(sum);
    if (m) scale[o] = m[o] / norm[o]; /* exactly 1 when m[o] == norm[o] (the shader says why) */
  }
}

void REF(dora_scale)(const real *x, const real *scale, real *y, int64_t T, int64_t out, real shift,
                     real beta) {
  // x and y are (T, out), scale is (out); y = beta y + (scale - shift) x (y may be x)
  for (int64_t t = 0; t < T; t++)
    for (int64_t o = 0; o < out; o++) {
      real prior = beta != 0 ? beta * y[t * out + o] : 0;
      y[t * out + o] = prior + (scale[o] - shift) * x[t * out + o];
    }
}

void REF(dora_mag_grad)(const real *dy, const real *yd, const real *norm, real *dm, int64_t T,
                        int64_t out) {
  // dy and yd are (T, out), norm and dm are (out); dm += sum_t dy yd / norm
  for (int64_t o = 0; o < out; o++) {
    real sum = 0;
    for (int64_t t = 0; t < T; t++) sum += dy[t * out + o] * yd[t * out + o];
    dm[o] += sum / norm[o];
  }
}
