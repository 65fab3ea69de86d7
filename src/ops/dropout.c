/* dropout on both backends (shaders/dropout.comp, src/ref/dropout.c). */
#include "core_util.h"

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
  vkft_dispatch_desc d = {.shader = "dropout",
                          .push = &push,
                          .push_size = sizeof push,
                          .reads = {{x->buf.addr, bytes}},
                          .read_count = 1,
                          .writes = {{out->buf.addr, bytes}},
                          .write_count = 1};
  if (core_grid(be, "dropout", ((uint64_t)n + 255) / 256, d.groups)) return VKFT_ERR;
  return vkft_stream_dispatch(be->dev, &d);
}
