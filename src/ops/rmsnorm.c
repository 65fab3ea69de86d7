/* rmsnorm on both backends (shaders/rmsnorm.comp, src/ref/rmsnorm.c). */
#include "core_util.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct rmsnorm_push {
  uint64_t x, w, rstd, dy, out;
  uint32_t R, C;
  float eps;
  uint32_t vec;
} rmsnorm_push;

/* Threads per row: enough that each thread keeps a few vector loads in flight, at most the
 * workgroup (a power of two, for the reduction tree). Depends only on C, so the summation
 * order and hence the bits are fixed for a given shape. */
static uint32_t threads_per_row(int64_t C) {
  uint32_t tpr = 4;
  while (tpr < 64 && (int64_t)tpr * 32 <= C) tpr *= 2;
  return tpr;
}

static const char *weight_variant(const char *base, vkft_dtype t, char *buf, size_t size) {
  snprintf(buf, size, "%s_%s", base, vkft_dtype_name(t));
  return buf;
}

/* 64-bit vector loads need every row 16-byte aligned (fp32) and the weight 16 (f32) or 8
 * (f16/bf16) bytes aligned. */
static int rows_vectorizable(int64_t C, const vkft_tensor *w, const vkft_tensor *const *rows,
                             int count) {
  if (C % 4) return 0;
  if (w && !core_aligned(w, w->dtype == VKFT_F32 ? 16 : 8)) return 0;
  for (int i = 0; i < count; i++)
    if (rows[i] && !core_aligned(rows[i], 16)) return 0;
  return 1;
}

static int check_shape(const char *op, int64_t R, int64_t C) {
  if (R <= 0 || C <= 0)
    return vkft_error("%s: empty shape %lldx%lld", op, (long long)R, (long long)C);
  if (R > UINT32_MAX || C > UINT32_MAX || (uint64_t)R * (uint64_t)C > ((uint64_t)1 << 40))
    return vkft_error("%s: shape %lldx%lld too large", op, (long long)R, (long long)C);
  return VKFT_OK;
}

int vkft_rmsnorm(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *w, vkft_tensor *y,
                 vkft_tensor *rstd, int64_t R, int64_t C, float eps) {
  if (check_shape("rmsnorm", R, C)) return VKFT_ERR;
  unsigned weights = DT(VKFT_F32) | DT(VKFT_F16) | DT(VKFT_BF16);
  if (op_check("rmsnorm", "x", x, R * C, DT(VKFT_F32)) || op_check("rmsnorm", "w", w, C, weights) ||
      op_check("rmsnorm", "y", y, R * C, DT(VKFT_F32)) ||
      (rstd && op_check("rmsnorm", "rstd", rstd, R, DT(VKFT_F32))))
    return VKFT_ERR;

  if (!be->dev) {
    float *wf = w->dtype == VKFT_F32 ? w->host : ref_as_f32(w, C);
    if (!wf) return VKFT_ERR;
    vkft_ref_rmsnorm_f32(x->host, wf, y->host, rstd ? rstd->host : NULL, R, C, eps);
    if (wf != w->host) free(wf);
    return VKFT_OK;
  }

  const vkft_tensor *rows[2] = {x, y};
  rmsnorm_push push = {x->buf.addr, w->buf.addr, rstd ? rstd->buf.addr : 0,
                       0,           y->buf.addr, (uint32_t)R,
                       (uint32_t)C, eps,         (uint32_t)rows_vectorizable(C, w, rows, 2)};
  uint32_t tpr = threads_per_row(C);
  char name[32];
  vkft_dispatch_desc d = {
      .shader = weight_variant("rmsnorm", w->dtype, name, sizeof name),
      .spec = {tpr},
      .spec_count = 1,
      .push = &push,
      .push_size = sizeof push,
      .reads = {vk_range_of(x), {w->buf.addr, (uint64_t)C * vkft_dtype_size(w->dtype)}},
      .read_count = 2,
      .writes = {{y->buf.addr, (uint64_t)(R * C) * 4}},
      .write_count = 1};
  if (rstd) d.writes[d.write_count++] = (vkft_range){rstd->buf.addr, (uint64_t)R * 4};
  uint64_t rows_per_group = 64 / tpr;
  if (core_grid(be, "rmsnorm", ((uint64_t)R + rows_per_group - 1) / rows_per_group, d.groups))
    return VKFT_ERR;
  return vkft_stream_dispatch(be->dev, &d);
}

int vkft_rmsnorm_bwd(vkft_backend *be, const vkft_tensor *x, const vkft_tensor *w,
                     const vkft_tensor *rstd, const vkft_tensor *dy, vkft_tensor *dx,
                     vkft_tensor *dw, int64_t R, int64_t C) {
  if (check_shape("rmsnorm_bwd", R, C)) return VKFT_ERR;
  unsigned weights = DT(VKFT_F32) | DT(VKFT_F16) | DT(VKFT_BF16);
  if (op_check("rmsnorm_bwd", "x", x, R * C, DT(VKFT_F32)) ||
      op_check("rmsnorm_bwd", "w", w, C, weights) ||
      op_check("rmsnorm_bwd", "rstd", rstd, R, DT(VKFT_F32)) ||
      op_check("rmsnorm_bwd", "dy", dy, R * C, DT(VKFT_F32)) ||
      op_check("rmsnorm_bwd", "dx", dx, R * C, DT(VKFT_F32)) ||
      (dw && op_check("rmsnorm_bwd", "dw", dw, C, DT(VKFT_F32))))
    return VKFT_ERR;

  if (!be->dev) {
    float *wf = w->dtype == VKFT_F32 ? w->host : ref_as_f32(w, C);
    if (!wf) return VKFT_ERR;
    vkft_ref_rmsnorm_backward_f32(x->host, wf, rstd->host, dy->host, dx->host, dw ? dw->host : NULL,
                                  R, C);
    if (wf != w->host) free(wf);
    return VKFT_OK;
  }

  /* dw first: it reads x and dy before dx (which may alias dy) is written */
  if (dw) {
    const vkft_tensor *rows[3] = {x, dy, dw};
    uint32_t vec = (uint32_t)rows_vectorizable(C, NULL, rows, 3);
    rmsnorm_push push = {x->buf.addr,  0,           rstd->buf.addr, dy->buf.addr,
                         dw->buf.addr, (uint32_t)R, (uint32_t)C,    0,
                         vec};
    /* row lanes: more when there are few columns, so small C still fills the workgroup */
    uint32_t rl = C >= 1024 ? 4 : 16, cols_per_group = (64 / rl) * (vec ? 4 : 1);
    vkft_dispatch_desc d = {.shader = "rmsnorm_bwd_dw",
                            .spec = {rl},
                            .spec_count = 1,
                            .push = &push,
                            .push_size = sizeof push,
                            .reads = {{x->buf.addr, (uint64_t)(R * C) * 4},
                                      {rstd->buf.addr, (uint64_t)R * 4},
                                      {dy->buf.addr, (uint64_t)(R * C) * 4},
                                      {dw->buf.addr, (uint64_t)C * 4}},
                            .read_count = 4,
                            .writes = {{dw->buf.addr, (uint64_t)C * 4}},
                            .write_count = 1};
    if (core_grid(be, "rmsnorm_bwd", ((uint64_t)C + cols_per_group - 1) / cols_per_group,
                  d.groups) ||
        vkft_stream_dispatch(be->dev, &d))
      return VKFT_ERR;
  }

  const vkft_tensor *rows[3] = {x, dy, dx};
  rmsnorm_push push = {x->buf.addr,
                       w->buf.addr,
                       rstd->buf.addr,
                       dy->buf.addr,
                       dx->buf.addr,
                       (uint32_t)R,
                       (uint32_t)C,
                       0,
                       (uint32_t)rows_vectorizable(C, w, rows, 3)};
  uint32_t tpr = threads_per_row(C);
  char name[32];
  vkft_dispatch_desc d = {.shader = weight_variant("rmsnorm_bwd_dx", w->dtype, name, sizeof name),
                          .spec = {tpr},
                          .spec_count = 1,
                          .push = &push,
                          .push_size = sizeof push,
                          .reads = {{x->buf.addr, (uint64_t)(R * C) * 4},
                                    {w->buf.addr, (uint64_t)C * vkft_dtype_size(w->dtype)},
                                    {rstd->buf.addr, (uint64_t)R * 4},
                                    {dy->buf.addr, (uint64_t)(R * C) * 4}},
                          .read_count = 4,
                          .writes = {{dx->buf.addr, (uint64_t)(R * C) * 4}},
                          .write_count = 1};
  uint64_t rows_per_group = 64 / tpr;
  if (core_grid(be, "rmsnorm_bwd", ((uint64_t)R + rows_per_group - 1) / rows_per_group, d.groups))
    return VKFT_ERR;
  return vkft_stream_dispatch(be->dev, &d);
}
