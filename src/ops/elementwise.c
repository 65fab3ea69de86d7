/* Elementwise ops on both backends (shaders/elementwise.comp, src/ref/elementwise.c): add,
 * scale, copy, dtype conversion and fill. */
#include "core_util.h"

#include <stdlib.h>
#include <string.h>

typedef struct ew_push {
  uint64_t a, b, out;
  uint64_t n;
  float s;
  uint32_t pattern;
  uint32_t vec;
} ew_push;

/* One dispatch of an elementwise variant: 32-bit destinations take 4 elements per
 * invocation, 16-bit ones a word (2 elements) per invocation. */
static int ew_dispatch(vkft_backend *be, const char *shader, const vkft_tensor *a,
                       const vkft_tensor *b, const vkft_tensor *out, int64_t n, float s,
                       uint32_t pattern, int vec) {
  if (n <= 0) return VKFT_OK;
  ew_push push = {a ? a->buf.addr : 0, b ? b->buf.addr : 0, out->buf.addr, (uint64_t)n, s, pattern,
                  (uint32_t)vec};
  int out16 = vkft_dtype_size(out->dtype) == 2;
  uint64_t items = out16 ? ((out->buf.addr >> 1 & 1) + (uint64_t)n + 1) / 2 : ((uint64_t)n + 3) / 4;
  vkft_dispatch_desc d = {.shader = shader, .push = &push, .push_size = sizeof push};
  if (core_grid(be, shader, (items + 63) / 64, d.groups)) return VKFT_ERR;
  size_t in_bytes = (size_t)n * (a ? vkft_dtype_size(a->dtype) : 0);
  if (a) d.reads[d.read_count++] = (vkft_range){a->buf.addr, in_bytes};
  if (b) d.reads[d.read_count++] = (vkft_range){b->buf.addr, (uint64_t)n * 4};
  d.writes[0] = (vkft_range){out->buf.addr, (uint64_t)n * vkft_dtype_size(out->dtype)};
  d.write_count = 1;
  return vkft_stream_dispatch(be->dev, &d);
}

int vkft_add(vkft_backend *be, const vkft_tensor *a, const vkft_tensor *b, vkft_tensor *out,
             int64_t n) {
  if (n < 0) return vkft_error("add: negative length");
  if (op_check("add", "a", a, n, DT(VKFT_F32)) || op_check("add", "b", b, n, DT(VKFT_F32)) ||
      op_check("add", "out", out, n, DT(VKFT_F32)))
    return VKFT_ERR;
  if (!be->dev) {
    vkft_ref_add_f32(a->host, b->host, out->host, n);
    return VKFT_OK;
  }
  int vec = core_aligned(a, 16) && core_aligned(b, 16) && core_aligned(out, 16);
  return ew_dispatch(be, "ew_add", a, b, out, n, 0, 0, vec);
}

int vkft_scale(vkft_backend *be, vkft_tensor *x, float s, int64_t n) {
  if (n < 0) return vkft_error("scale: negative length");
  if (op_check("scale", "x", x, n, DT(VKFT_F32))) return VKFT_ERR;
  if (!be->dev) {
    vkft_ref_scale_f32(x->host, s, n);
    return VKFT_OK;
  }
  return ew_dispatch(be, "ew_scale", x, NULL, x, n, s, 0, core_aligned(x, 16));
}

int vkft_copy(vkft_backend *be, const vkft_tensor *src, vkft_tensor *dst, int64_t n) {
  if (n < 0) return vkft_error("copy: negative length");
  if (src->dtype != dst->dtype)
    return vkft_error("copy: src is %s and dst is %s (use vkft_convert)",
                      vkft_dtype_name(src->dtype), vkft_dtype_name(dst->dtype));
  unsigned any = DT(VKFT_F32) | DT(VKFT_F16) | DT(VKFT_BF16) | DT(VKFT_I32);
  if (op_check("copy", "src", src, n, any) || op_check("copy", "dst", dst, n, any)) return VKFT_ERR;
  if (!be->dev) {
    memmove(dst->host, src->host, (size_t)n * vkft_dtype_size(src->dtype));
    return VKFT_OK;
  }
  if (vkft_dtype_size(src->dtype) == 2)
    return ew_dispatch(be, "ew_copy16", src, NULL, dst, n, 0, 0, 0);
  int vec = core_aligned(src, 16) && core_aligned(dst, 16);
  return ew_dispatch(be, "ew_copy32", src, NULL, dst, n, 0, 0, vec);
}

int vkft_convert(vkft_backend *be, const vkft_tensor *src, vkft_tensor *dst, int64_t n) {
  if (src->dtype == dst->dtype) return vkft_copy(be, src, dst, n);
  if (n < 0) return vkft_error("convert: negative length");
  unsigned floats = DT(VKFT_F32) | DT(VKFT_F16) | DT(VKFT_BF16);
  if (op_check("convert", "src", src, n, floats) || op_check("convert", "dst", dst, n, floats))
    return VKFT_ERR;
  if (src->dtype != VKFT_F32 && dst->dtype != VKFT_F32)
    return vkft_error("convert: %s to %s needs an fp32 step", vkft_dtype_name(src->dtype),
                      vkft_dtype_name(dst->dtype));
  if (!be->dev) {
    if (src->dtype == VKFT_F32)
      vkft_convert_from_f32(dst->dtype, src->host, dst->host, (size_t)n);
    else
      vkft_convert_to_f32(src->dtype, src->host, dst->host, (size_t)n);
    return VKFT_OK;
  }
  if (src->dtype == VKFT_F32)
    return ew_dispatch(be, dst->dtype == VKFT_F16 ? "ew_narrow_f16" : "ew_narrow_bf16", src, NULL,
                       dst, n, 0, 0, 0);
  int vec = core_aligned(src, 8) && core_aligned(dst, 16);
  return ew_dispatch(be, src->dtype == VKFT_F16 ? "ew_widen_f16" : "ew_widen_bf16", src, NULL, dst,
                     n, 0, 0, vec);
}

int vkft_fill(vkft_backend *be, vkft_tensor *t, double value, int64_t n) {
  if (n < 0) return vkft_error("fill: negative length");
  unsigned any = DT(VKFT_F32) | DT(VKFT_F16) | DT(VKFT_BF16) | DT(VKFT_I32);
  if (op_check("fill", "t", t, n, any)) return VKFT_ERR;
  /* the value in the tensor's own storage type, as a bit pattern */
  uint32_t pattern;
  float f = (float)value;
  if (t->dtype == VKFT_I32) {
    int32_t i = (int32_t)value;
    memcpy(&pattern, &i, 4);
  } else if (t->dtype == VKFT_F32) {
    memcpy(&pattern, &f, 4);
  } else {
    pattern = t->dtype == VKFT_F16 ? vkft_f32_to_f16(f) : vkft_f32_to_bf16(f);
  }
  if (!be->dev) {
    size_t size = vkft_dtype_size(t->dtype);
    for (int64_t i = 0; i < n; i++) memcpy((char *)t->host + (size_t)i * size, &pattern, size);
    return VKFT_OK;
  }
  if (vkft_dtype_size(t->dtype) == 2)
    return ew_dispatch(be, "ew_fill16", NULL, NULL, t, n, 0, pattern, 0);
  return ew_dispatch(be, "ew_fill32", NULL, NULL, t, n, 0, pattern, core_aligned(t, 16));
}
