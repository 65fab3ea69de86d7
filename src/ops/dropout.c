/* dropout and uniform noise on both backends (shaders/dropout.comp, src/ref/dropout.c). */
#include "core_util.h"

#include <math.h>

/* shaders/dropout.comp as "dropout" (threshold, scale 1/(1-p)) or "uniform_noise" (scale is
 * the noise's magnitude) */
static int dispatch(vkft_backend *be, const char *shader, const vkft_tensor *x, vkft_tensor *out,
                    int64_t n, uint32_t threshold, float scale, uint32_t seed, uint32_t stream) {
  if (n == 0) return VKFT_OK;
  struct {
    uint64_t x, out, n;
    uint32_t threshold, seed, stream, vec;
    float scale;
  } push = {x->buf.addr,
            out->buf.addr,
            (uint64_t)n,
            threshold,
            seed,
            stream,
            core_aligned(x, 16) && core_aligned(out, 16),
            scale};
  uint64_t bytes = (uint64_t)n * 4;
  vkft_dispatch_desc d = {.shader = shader,
                          .push = &push,
                          .push_size = sizeof push,
                          .reads = {{x->buf.addr, bytes}},
                          .read_count = 1,
                          .writes = {{out->buf.addr, bytes}},
                          .write_count = 1};
  if (core_grid(be, shader, ((uint64_t)n + 255) / 256, d.groups)) return VKFT_ERR;
  return vkft_stream_dispatch(be->dev, &d);
}

int vkft_dropout(vkft_backend *be, const vkft_tensor *x, vkft_tensor *out, int64_t n, double p,
                 uint32_t seed, uint32_t stream) {
  if (n < 0 || !(p >= 0 && p < 1)) return vkft_error("dropout: needs n >= 0 and 0 <= p < 1");
  if (op_check("dropout", "x", x, n, DT(VKFT_F32)) ||
      op_check("dropout", "out", out, n, DT(VKFT_F32)))
    return VKFT_ERR;
  uint32_t threshold = (uint32_t)(p * 16777216.0);
  float scale = (float)(1.0 / (1.0 - p));
  if (!be->dev) {
    vkft_ref_dropout_f32(x->host, out->host, n, threshold, scale, seed, stream);
    return VKFT_OK;
  }
  return dispatch(be, "dropout", x, out, n, threshold, scale, seed, stream);
}

int vkft_uniform_noise(vkft_backend *be, const vkft_tensor *x, vkft_tensor *out, int64_t n,
                       float magnitude, uint32_t seed, uint32_t stream) {
  if (n < 0 || !(magnitude >= 0 && isfinite(magnitude)))
    return vkft_error("uniform_noise: needs n >= 0 and a finite magnitude >= 0");
  if (op_check("uniform_noise", "x", x, n, DT(VKFT_F32)) ||
      op_check("uniform_noise", "out", out, n, DT(VKFT_F32)))
    return VKFT_ERR;
  if (!be->dev) {
    vkft_ref_uniform_noise_f32(x->host, out->host, n, magnitude, seed, stream);
    return VKFT_OK;
  }
  return dispatch(be, "uniform_noise", x, out, n, 0, magnitude, seed, stream);
}
