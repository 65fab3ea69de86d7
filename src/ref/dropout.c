/* Reference dropout with a counter-based mask, and uniform noise from the same hash (see
 * vkft_dropout_hash in vkft/ref.h). */
#include "real.h"

/* out (n) = x (n) * scale where kept, 0 where dropped; out may be x */
void REF(dropout)(const real *x, real *out, int64_t n, uint32_t threshold, float scale,
                  uint32_t seed, uint32_t stream) {
  for (int64_t i = 0; i < n; i++)
    out[i] = vkft_dropout_keep(seed, stream, (uint64_t)i, threshold) ? x[i] * (real)scale : 0;
}

/* out (n) = x + noise_i, noise_i in [-magnitude, magnitude); out may be x */
void REF(uniform_noise)(const real *x, real *out, int64_t n, float magnitude, uint32_t seed,
                        uint32_t stream) {
  for (int64_t i = 0; i < n; i++)
    out[i] = x[i] + (real)vkft_uniform_noise_value(seed, stream, (uint64_t)i, magnitude);
}
