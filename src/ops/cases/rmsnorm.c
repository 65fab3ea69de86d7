/* Op-table family "rmsnorm" / "rmsnorm_bwd": random rows and weights (rounded to the weight's
 * storage dtype) against the double reference. Tolerances follow from fp32 accumulation (see
 * the comments at each bound). */
#include "case.h"

enum { X, W, Y, RSTD, DY, DX, DW };

typedef struct rmsnorm_params {
  int64_t R, C;
  int bwd, with_dw;
  float eps;
} rmsnorm_params;

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  rmsnorm_params *p = CASE_PARAMS(oc, rmsnorm_params);
  if (!p) return VKFT_ERR;
  *p = (rmsnorm_params){c->d[0], c->d[1], oc->variant == 1, oc->variant == 1 && c->d[2], 1e-5f};
  int64_t R = p->R, C = p->C, RC = R * C;
  case_shape(oc, "%lldx%lld%s", (long long)R, (long long)C,
             p->bwd ? (p->with_dw ? " +dw" : " no-dw") : "");
  double *x = case_random(oc, X, "x", VKFT_F32, RC, CASE_IN, -2, 2);
  double *w = case_random(oc, W, "w", c->dtype, C, CASE_IN, -1.5, 1.5);
  double *y = CASE_NEW(oc, double, RC), *rstd = CASE_NEW(oc, double, R);
  if (oc->failed) return VKFT_ERR;
  vkft_ref_rmsnorm_f64(x, w, y, rstd, R, C, p->eps);

  if (!p->bwd) {
    case_poisoned(oc, Y, "y", RC);
    case_poisoned(oc, RSTD, "rstd", R);
    /* y and rstd relative to their size: the sum of C squares in fp32 is within C*u of the
     * true sum, halved by the square root, plus a few roundings (mean, inversesqrt's 2 ulp,
     * the two products) */
    case_expect(oc, Y, y, NULL, ((double)C / 2 + 8) * CASE_U);
    case_expect(oc, RSTD, rstd, NULL, ((double)C / 2 + 6) * CASE_U);
    oc->bytes = 2.0 * RC * 4 + R * 4.0;
    return case_status(oc);
  }

  /* the backward takes the forward's rstd as an input: both sides get the same fp32 values */
  float *rstd32 = case_tensor_new(oc, RSTD, "rstd", VKFT_F32, R, CASE_IN);
  double *dy = case_random(oc, DY, "dy", VKFT_F32, RC, CASE_IN, -1, 1);
  case_poisoned(oc, DX, "dx", RC);
  double *dw = p->with_dw ? case_random(oc, DW, "dw", VKFT_F32, C, CASE_OUT, -1, 1) : NULL;
  double *dx_want = CASE_NEW(oc, double, RC), *dx_scale = CASE_NEW(oc, double, RC);
  double *dw_want = CASE_NEW(oc, double, C), *dw_scale = CASE_NEW(oc, double, C);
  if (oc->failed) return VKFT_ERR;
  for (int64_t i = 0; i < R; i++) rstd32[i] = (float)rstd[i], rstd[i] = rstd32[i];
  for (int64_t j = 0; dw && j < C; j++) dw_want[j] = dw[j];
  vkft_ref_rmsnorm_backward_f64(x, w, rstd, dy, dx_want, dw ? dw_want : NULL, R, C);
  /* dx_j = s (dy_j w_j - x_j s^2 S / C): measured against s (|dy_j w_j| + |x_j| s^2 sum|dy w x|
   * / C), within (C + 8) u of it (the fp32 sum S of C terms, then a few roundings). dw_j
   * against sum_r |dy x s| + |dw0|: a sum of R terms, (R + 4) u. */
  for (int64_t r = 0; r < R; r++) {
    double s = rstd[r], abs_dot = 0;
    for (int64_t j = 0; j < C; j++) abs_dot += fabs(dy[r * C + j] * w[j] * x[r * C + j]);
    for (int64_t j = 0; j < C; j++)
      dx_scale[r * C + j] =
          s * (fabs(dy[r * C + j] * w[j]) + fabs(x[r * C + j]) * s * s * abs_dot / (double)C);
  }
  case_expect(oc, DX, dx_want, dx_scale, ((double)C + 8) * CASE_U);
  if (dw) {
    for (int64_t j = 0; j < C; j++) {
      dw_scale[j] = fabs(dw[j]);
      for (int64_t r = 0; r < R; r++) dw_scale[j] += fabs(dy[r * C + j] * x[r * C + j] * rstd[r]);
    }
    case_expect(oc, DW, dw_want, dw_scale, ((double)R + 4) * CASE_U);
  }
  oc->bytes = (3.0 * RC + 2.0 * R) * 4 + (p->with_dw ? 2.0 * RC * 4 : 0);
  return case_status(oc);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const rmsnorm_params *p = oc->params;
  if (!p->bwd) return vkft_rmsnorm(be, &t[X], &t[W], &t[Y], &t[RSTD], p->R, p->C, p->eps);
  return vkft_rmsnorm_bwd(be, &t[X], &t[W], &t[RSTD], &t[DY], &t[DX], p->with_dw ? &t[DW] : NULL,
                          p->R, p->C);
}

const case_family case_rmsnorm = {{"rmsnorm", "rmsnorm_bwd"}, setup, record};
