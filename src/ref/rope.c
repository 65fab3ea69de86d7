/* Reference rotary position embedding in the Hugging Face "rotate_half" layout: in each head
 * of D values, pair (i, i + D/2) is rotated by the angle pos * inv_freq[i].
 *
 * The angle is the exact product of the integer position and the fp32 inverse frequency
 * (transformers keeps inv_freq in fp32 too), and cos/sin are taken in double in both builds
 * of this file, so the reference is exact to double rounding at every position. (transformers
 * itself rounds the angle to fp32 before cos/sin, an error of up to pos * inv_freq * 2^-24
 * radians: 2.4e-4 at position 8191 for the fastest pair. We do not copy that error.) */
#include "real.h"

#include <math.h>

/* x, out are (T, H, D) (out may be x), pos is (T), inv_freq is (D/2). inverse != 0 rotates by
 * -angle: the transpose of the rotation, which is the backward (dx = R^T dout). */
void REF(rope)(const real *x, real *out, const int32_t *pos, const float *inv_freq, int64_t T,
               int64_t H, int64_t D, int inverse) {
  int64_t half = D / 2;
  for (int64_t t = 0; t < T; t++)
    for (int64_t i = 0; i < half; i++) {
      double angle = (double)pos[t] * (double)inv_freq[i];
      real c = (real)cos(angle), s = (real)(inverse ? -sin(angle) : sin(angle));
      for (int64_t h = 0; h < H; h++) {
        const real *x_h = x + (t * H + h) * D;
        real *out_h = out + (t * H + h) * D;
        real a = x_h[i], b = x_h[i + half];
        out_h[i] = a * c - b * s;
        out_h[i + half] = b * c + a * s;
      }
    }
}
