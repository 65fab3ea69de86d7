/* swiglu on both backends (shaders/swiglu.comp, src/ref/swiglu.c). */
#include "core_util.h"

typedef struct swiglu_push {
  uint64_t gate, up, dout, out, dgate, dup;
  uint64_t n;
  uint32_t vec;
} swiglu_push;

static int dispatch(vkft_backend *be, const char *shader, swiglu_push *push,
                    const vkft_range *reads, int read_count, const vkft_range *writes,
                    int write_count) {
  vkft_dispatch_desc d = {.shader = shader, .push = push, .push_size = sizeof *push};
  for (int i = 0; i < read_count; i++) d.reads[d.read_count++] = reads[i];
  for (int i = 0; i < write_count; i++) d.writes[d.write_count++] = writes[i];
  if (core_grid(be, shader, (push->n + 255) / 256, d.groups)) return VKFT_ERR;
  return vkft_stream_dispatch(be->dev, &d);
}

int vkft_swiglu(vkft_backend *be, const vkft_tensor *gate, const vkft_tensor *up, vkft_tensor *out,
                int64_t n) {
  if (n < 0) return vkft_error("swiglu: negative length");
  if (op_check("swiglu", "gate", gate, n, DT(VKFT_F32)) ||
      op_check("swiglu", "up", up, n, DT(VKFT_F32)) ||
      op_check("swiglu", "out", out, n, DT(VKFT_F32)))
    return VKFT_ERR;
  if (!be->dev) {
    vkft_ref_swiglu_f32(gate->host, up->host, out->host, n);
    return VKFT_OK;
  }
  if (n == 0) return VKFT_OK;
  uint64_t bytes = (uint64_t)n * 4;
  swiglu_push push = {.gate = gate->buf.addr,
                      .up = up->buf.addr,
                      .out = out->buf.addr,
                      .n = (uint64_t)n,
                      .vec =
                          core_aligned(gate, 16) && core_aligned(up, 16) && core_aligned(out, 16)};
  vkft_range reads[2] = {{gate->buf.addr, bytes}, {up->buf.addr, bytes}};
  vkft_range writes[1] = {{out->buf.addr, bytes}};
  return dispatch(be, "swiglu", &push, reads, 2, writes, 1);
}

int vkft_swiglu_bwd(vkft_backend *be, const vkft_tensor *gate, const vkft_tensor *up,
                    const vkft_tensor *dout, vkft_tensor *dgate, vkft_tensor *dup, int64_t n) {
  if (n < 0) return vkft_error("swiglu_bwd: negative length");
  if (op_check("swiglu_bwd", "gate", gate, n, DT(VKFT_F32)) ||
      op_check("swiglu_bwd", "up", up, n, DT(VKFT_F32)) ||
      op_check("swiglu_bwd", "dout", dout, n, DT(VKFT_F32)) ||
      op_check("swiglu_bwd", "dgate", dgate, n, DT(VKFT_F32)) ||
      op_check("swiglu_bwd", "dup", dup, n, DT(VKFT_F32)))
    return VKFT_ERR;
  if (!be->dev) {
    vkft_ref_swiglu_backward_f32(gate->host, up->host, dout->host, dgate->host, dup->host, n);
    return VKFT_OK;
  }
  if (n == 0) return VKFT_OK;
  uint64_t bytes = (uint64_t)n * 4;
  swiglu_push push = {.gate = gate->buf.addr,
                      .up = up->buf.addr,
                      .dout = dout->buf.addr,
                      .dgate = dgate->buf.addr,
                      .dup = dup->buf.addr,
                      .n = (uint64_t)n,
                      .vec = core_aligned(gate, 16) && core_aligned(up, 16) &&
                             core_aligned(dout, 16) && core_aligned(dgate, 16) &&
                             core_aligned(dup, 16)};
  vkft_range reads[3] = {{gate->buf.addr, bytes}, {up->buf.addr, bytes}, {dout->buf.addr, bytes}};
  vkft_range writes[2] = {{dgate->buf.addr, bytes}, {dup->buf.addr, bytes}};
  return dispatch(be, "swiglu_bwd", &push, reads, 3, writes, 2);
}
