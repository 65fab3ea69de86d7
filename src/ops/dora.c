/* DoRA's ops on both backends (shaders/dora.comp, src/ref/dora.c): the adapted weight's row
 * norms and per-row scale, the scale applied to a layer output, and the magnitude's gradient.
 * src/model/forward.c composes them with the matmul and LoRA ops into PEFT's DoRA layer. */
#include "core_util.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct dora_push {
  uint64_t w, a, b, m, norm, scale;
  uint64_t x, y, dy, yd, dm;
  uint32_t T, out, in, r;
  float s, shift, beta;
  uint32_t has_m;
} dora_push;

static int check_dims(const char *op, int64_t T, int64_t out, int64_t in, int64_t r) {
  if (T <= 0 || out <= 0 || in <= 0 || r <= 0)
    return vkft_error("%s: empty shape T=%lld out=%lld in=%lld r=%lld", op, (long long)T,
                      (long long)out, (long long)in, (long long)r);
  if (T > UINT32_MAX || out > UINT32_MAX || in > UINT32_MAX || r > UINT32_MAX)
    return vkft_error("%s: shape too large", op);
  return VKFT_OK;
}

int vkft_dora_norm(vkft_backend *be, const vkft_tensor *w, const vkft_tensor *a,
                   const vkft_tensor *b, const vkft_tensor *m, vkft_tensor *norm,
                   vkft_tensor *scale, int64_t out, int64_t in, int64_t r, float s) {
  unsigned weights = DT(VKFT_F32) | DT(VKFT_F16) | DT(VKFT_BF16);
  if (check_dims("dora_norm", 1, out, in, r) || op_check("dora_norm", "W", w, out * in, weights) ||
      op_check("dora_norm", "A", a, r * in, DT(VKFT_F32)) ||
      op_check("dora_norm", "B", b, out * r, DT(VKFT_F32)) ||
      op_check("dora_norm", "norm", norm, out, DT(VKFT_F32)) ||
      (m && (op_check("dora_norm", "m", m, out, DT(VKFT_F32)) ||
             op_check("dora_norm", "scale", scale, out, DT(VKFT_F32)))))
    return VKFT_ERR;
  if (!be->dev) {
    float *wf = w->dtype == VKFT_F32 ? w->host : ref_as_f32(w, out * in);
    if (!wf) return VKFT_ERR;
    vkft_ref_dora_norm_f32(wf, a->host, b->host, m ? m->host : NULL, norm->host,
                           m ? scale->host : NULL, out, in, r, s);
    if (wf != w->host) free(wf);
    return VKFT_OK;
  }
  dora_push push = {.w = w->buf.addr,
                    .a = a->buf.addr,
                    .b = b->buf.addr,
                    .m = m ? m->buf.addr : 0,
                    .norm = norm->buf.addr,
                    .scale = m ? scale->buf.addr : 0,
                    .out = (uint32_t)out,
                    .in = (uint32_t)in,
                    .r = (uint32_t)r,
                    .s = s,
                    .has_m = m != NULL};
  char shader[32];
  snprintf(shader, sizeof shader, "dora_norm_%s", vkft_dtype_name(w->dtype));
  vkft_dispatch_desc d = {.shader = shader,
                          .push = &push,
                          .push_size = sizeof push,
                          .reads = {vk_range_of(w), vk_range_of(a), vk_range_of(b)},
                          .read_count = 3,
                          .writes = {{norm->buf.addr, (uint64_t)out * 4}},
                          .write_count = 1};
  if (m) {
    d.reads[d.read_count++] = (vkft_range){m->buf.addr, (uint64_t)out * 4};
    d.writes[d.write_count++] = (vkft_range){scale->buf.addr, (uint64_t)out * 4};
  }
  if (core_grid(be, "dora_norm", (uint64_t)out, d.groups)) return VKFT_ERR;
  return vkft_stream_dispatch(be->dev, &d);
}

int vkft_dora_scale(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *scale,
                    vkft_tensor *y, int64_t T, int64_t out, float shift, float beta) {
  if (check_dims("dora_scale", T, out, 1, 1) ||
      op_check("dora_scale", "x", x, T * out, DT(VKFT_F32)) ||
      op_check("dora_scale", "scale", scale, out, DT(VKFT_F32)) ||
      op_check("dora_scale", "y", y, T * out, DT(VKFT_F32)))
    return VKFT_ERR;
  if (!be->dev) {
    vkft_ref_dora_scale_f32(x->host, scale->host, y->host, T, out, shift, beta);
    return VKFT_OK;
  }
  uint64_t bytes = (uint64_t)(T * out) * 4;
  dora_push push = {.x = x->buf.addr,
                    .scale = scale->buf.addr,
                    .y = y->buf.addr,
                    .T = (uint32_t)T,
                    .out = (uint32_t)out,
                    .shift = shift,
                    .beta = beta};
  vkft_dispatch_desc d = {.shader = "dora_scale",
                          .push = &push,
                          .push_size = sizeof push,
                          .reads = {{x->buf.addr, bytes}, {scale->buf.addr, (uint64_t)out * 4}},
                          .read_count = 2,
                          .writes = {{y->buf.addr, bytes}},
                          .write_count = 1};
  if (beta != 0) d.reads[d.read_count++] = (vkft_range){y->buf.addr, bytes};
  if (core_grid(be, "dora_scale", ((uint64_t)(T * out) + 63) / 64, d.groups)) return VKFT_ERR;
  return vkft_stream_dispatch(be->dev, &d);
}

int vkft_dora_mag_grad(vkft_backend *be, const vkft_tensor *dy, const vkft_tensor *yd,
                       const vkft_tensor *norm, vkft_tensor *dm, int64_t T, int64_t out) {
  if (check_dims("dora_mag_grad", T, out, 1, 1) ||
      op_check("dora_mag_grad", "dy", dy, T * out, DT(VKFT_F32)) ||
      op_check("dora_mag_grad", "yd", yd, T * out, DT(VKFT_F32)) ||
      op_check("dora_mag_grad", "norm", norm, out, DT(VKFT_F32)) ||
      op_check("dora_mag_grad", "dm", dm, out, DT(VKFT_F32)))
    return VKFT_ERR;
  if (!be->dev) {
    vkft_ref_dora_mag_grad_f32(dy->host, yd->host, norm->host, dm->host, T, out);
    return VKFT_OK;
  }
  uint64_t bytes = (uint64_t)(T * out) * 4;
  dora_push push = {.dy = dy->buf.addr,
                    .yd = yd->buf.addr,
                    .norm = norm->buf.addr,
                    .dm = dm->buf.addr,
                    .T = (uint32_t)T,
                    .out = (uint32_t)out};
  vkft_dispatch_desc d = {.shader = "dora_mag_grad",
                          .push = &push,
                          .push_size = sizeof push,
                          .reads = {{dy->buf.addr, bytes},
                                    {yd->buf.addr, bytes},
                                    {norm->buf.addr, (uint64_t)out * 4},
                                    {dm->buf.addr, (uint64_t)out * 4}},
                          .read_count = 4,
                          .writes = {{dm->buf.addr, (uint64_t)out * 4}},
                          .write_count = 1};
  if (core_grid(be, "dora_mag_grad", ((uint64_t)out + 63) / 64, d.groups)) return VKFT_ERR;
  return vkft_stream_dispatch(be->dev, &d);
}
