/* grad_norm on both backends (shaders/grad_norm.comp, src/ref/grad_norm.c): per-tensor partial
 * sums of squares into fixed slots, then one fixed-order sum. */
#include "core_util.h"

#include <stdlib.h>

#define GN_CHUNK 16384 /* elements per slot, as CHUNK in the shader */

int64_t vkft_grad_norm_slots(const vkft_tensor *grads, int count) {
  int64_t slots = 0;
  for (int k = 0; k < count; k++) slots += (grads[k].n + GN_CHUNK - 1) / GN_CHUNK;
  return slots;
}

typedef struct grad_norm_push {
  uint64_t src, dst;
  uint64_t n;
  float max_norm;
  uint32_t vec;
} grad_norm_push;

int vkft_grad_norm(vkft_backend *be, const vkft_tensor *grads, int count, vkft_tensor *slots,
                   vkft_tensor *out, float max_norm) {
  if (count <= 0) return vkft_error("grad_norm: no gradients");
  for (int k = 0; k < count; k++)
    if (op_check("grad_norm", "gradient", &grads[k], grads[k].n, DT(VKFT_F32))) return VKFT_ERR;
  int64_t slot_count = vkft_grad_norm_slots(grads, count);
  if (op_check("grad_norm", "out", out, 2, DT(VKFT_F32)) ||
      (be->dev && op_check("grad_norm", "slots", slots, slot_count, DT(VKFT_F32))))
    return VKFT_ERR;

  if (!be->dev) {
    const float **ptrs = malloc((size_t)count * sizeof *ptrs);
    int64_t *lens = malloc((size_t)count * sizeof *lens);
    if (!ptrs || !lens) {
      free(ptrs), free(lens);
      return vkft_error_nomem();
    }
    for (int k = 0; k < count; k++) ptrs[k] = grads[k].host, lens[k] = grads[k].n;
    float *o = out->host;
    vkft_ref_grad_norm_f32(ptrs, lens, count, max_norm, &o[0], &o[1]);
    free(ptrs), free(lens);
    return VKFT_OK;
  }

  /* stage 1: the partial dispatches write disjoint slots, so no barriers between them */
  int64_t at = 0;
  for (int k = 0; k < count; k++) {
    const vkft_tensor *g = &grads[k];
    int64_t chunks = (g->n + GN_CHUNK - 1) / GN_CHUNK;
    if (chunks == 0) continue;
    grad_norm_push push = {g->buf.addr, slots->buf.addr + (uint64_t)at * 4, (uint64_t)g->n, 0,
                           (uint32_t)core_aligned(g, 16)};
    vkft_dispatch_desc d = {.shader = "grad_norm_partial",
                            .push = &push,
                            .push_size = sizeof push,
                            .reads = {vk_range_of(g)},
                            .read_count = 1,
                            .writes = {{push.dst, (uint64_t)chunks * 4}},
                            .write_count = 1};
    if (core_grid(be, "grad_norm", (uint64_t)chunks, d.groups) || vkft_stream_dispatch(be->dev, &d))
      return VKFT_ERR;
    at += chunks;
  }
  /* stage 2 */
  grad_norm_push push = {slots->buf.addr, out->buf.addr, (uint64_t)slot_count, max_norm, 0};
  vkft_dispatch_desc d = {.shader = "grad_norm_final",
                          .push = &push,
                          .push_size = sizeof push,
                          .groups = {1, 1, 1},
                          .reads = {{slots->buf.addr, (uint64_t)slot_count * 4}},
                          .read_count = 1,
                          .writes = {{out->buf.addr, 8}},
                          .write_count = 1};
  return vkft_stream_dispatch(be->dev, &d);
}
