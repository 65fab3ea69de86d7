/* Op-table family "rmsnorm" / "rmsnorm_bwd": random rows and weights (rounded to the weight's
 * storage dtype), the device and the reference backend against the double reference.
 * Tolerances follow from fp32 accumulation (see the comments at each bound). */
#include "core.h"

#include <stdio.h>

typedef struct rms_ctx {
  int64_t R, C;
  int bwd, with_dw;
  vkft_dtype wtype;
  float eps;
  /* host inputs */
  float *x, *w, *dy, *rstd, *dw0;
  void *w_stored;
  /* backend tensors: out packs y|rstd (forward) or dx|dw (backward) for one bit comparison */
  vkft_tensor tx, tw, tdy, trstd, out, o1, o2;
  int64_t out_n, o2_at;
} rms_ctx;

static int record(vkft_backend *be, void *p) {
  rms_ctx *k = p;
  if (!k->bwd) return vkft_rmsnorm(be, &k->tx, &k->tw, &k->o1, &k->o2, k->R, k->C, k->eps);
  return vkft_rmsnorm_bwd(be, &k->tx, &k->tw, &k->trstd, &k->tdy, &k->o1,
                          k->with_dw ? &k->o2 : NULL, k->R, k->C);
}

/* dw accumulates: every rerun starts from the same dw */
static int reset(vkft_backend *be, void *p) {
  rms_ctx *k = p;
  return k->bwd && k->with_dw ? vkft_tensor_write(be, &k->o2, k->dw0) : VKFT_OK;
}

static void release(vkft_backend *be, rms_ctx *k) {
  vkft_tensor *all[] = {&k->tx, &k->tw, &k->tdy, &k->trstd, &k->out};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (all[i]->host || all[i]->buf.addr)
      vkft_tensor_free(be, all[i]);
    else
      memset(all[i], 0, sizeof *all[i]);
}

/* Allocates and uploads on backend be, runs once, reads the packed outputs into got. */
static int run_on(vkft_backend *be, rms_ctx *k, float *got) {
  int64_t RC = k->R * k->C;
  if (vkft_tensor_alloc(be, VKFT_F32, RC, &k->tx) || vkft_tensor_write(be, &k->tx, k->x) ||
      vkft_tensor_alloc(be, k->wtype, k->C, &k->tw) || vkft_tensor_write(be, &k->tw, k->w_stored) ||
      vkft_tensor_alloc(be, VKFT_F32, k->out_n, &k->out))
    return VKFT_ERR;
  k->o1 = vkft_tensor_view(&k->out, 0, RC);
  k->o2 = vkft_tensor_view(&k->out, k->o2_at, k->bwd ? k->C : k->R);
  if (k->bwd &&
      (vkft_tensor_alloc(be, VKFT_F32, RC, &k->tdy) || vkft_tensor_write(be, &k->tdy, k->dy) ||
       vkft_tensor_alloc(be, VKFT_F32, k->R, &k->trstd) ||
       vkft_tensor_write(be, &k->trstd, k->rstd)))
    return VKFT_ERR;
  float *zero = calloc((size_t)k->out_n, sizeof *zero);
  int status = zero ? vkft_tensor_write(be, &k->out, zero) : vkft_error("out of host memory");
  free(zero);
  if (status || reset(be, k) || vkft_begin(be) || record(be, k) || vkft_end(be) ||
      vkft_tensor_read(be, &k->out, got))
    return VKFT_ERR;
  return VKFT_OK;
}

static int run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  rms_ctx k = {
      .R = c->d[0], .C = c->d[1], .with_dw = (int)c->d[2], .wtype = c->dtype, .eps = 1e-5f};
  k.bwd = strstr(c->op, "bwd") != NULL;
  int64_t R = k.R, C = k.C, RC = R * C;
  snprintf(r->shape, sizeof r->shape, "%lldx%lld%s", (long long)R, (long long)C,
           k.bwd ? (k.with_dw ? " +dw" : " no-dw") : "");
  k.o2_at = (RC + 63) / 64 * 64; /* keeps the second output 256-byte aligned */
  k.out_n = k.o2_at + (k.bwd ? C : R);

  k.x = malloc((size_t)RC * 4), k.w = malloc((size_t)C * 4), k.dy = malloc((size_t)RC * 4);
  k.rstd = malloc((size_t)R * 4), k.dw0 = calloc((size_t)C, 4);
  float *got = malloc((size_t)k.out_n * 4);
  double *want = malloc((size_t)k.out_n * 8), *scale = malloc((size_t)k.out_n * 8);
  double *xd = malloc((size_t)RC * 8), *wd = malloc((size_t)C * 8), *dyd = malloc((size_t)RC * 8);
  double *rd = malloc((size_t)R * 8);
  int status = VKFT_ERR;
  if (!k.x || !k.w || !k.dy || !k.rstd || !k.dw0 || !got || !want || !scale || !xd || !wd || !dyd ||
      !rd) {
    vkft_error("rmsnorm %s: out of host memory", r->shape);
    goto done;
  }
  harness_rng rng = {(uint64_t)(R * 7919 + C) ^ (uint64_t)c->dtype << 40 ^ (uint64_t)k.bwd << 50};
  core_uniform(&rng, k.x, RC, -2, 2);
  core_uniform(&rng, k.w, C, -1.5, 1.5);
  core_uniform(&rng, k.dy, RC, -1, 1);
  if (core_round_to(k.wtype, k.w, C, &k.w_stored)) goto done;
  for (int64_t i = 0; i < RC; i++) xd[i] = k.x[i], dyd[i] = k.dy[i];
  for (int64_t i = 0; i < C; i++) wd[i] = k.w[i];
  /* the backward takes the forward's rstd as an input: both sides get the same fp32 values */
  vkft_ref_rmsnorm_f64(xd, wd, want, rd, R, C, k.eps);
  for (int64_t i = 0; i < R; i++) k.rstd[i] = (float)rd[i], rd[i] = k.rstd[i];
  if (k.bwd) core_uniform(&rng, k.dw0, C, -1, 1);

  double tol1, tol2;
  if (!k.bwd) {
    /* y and rstd relative to their size: the sum of C squares in fp32 is within C*u of the
     * true sum, halved by the square root, plus a few roundings (mean, inversesqrt's 2 ulp,
     * the two products) */
    for (int64_t i = 0; i < RC; i++) scale[i] = fabs(want[i]);
    for (int64_t i = 0; i < R; i++) want[k.o2_at + i] = rd[i], scale[k.o2_at + i] = rd[i];
    tol1 = ((double)C / 2 + 8) * CORE_U;
    tol2 = ((double)C / 2 + 6) * CORE_U;
  } else {
    double *dx = want, *dw = want + k.o2_at;
    for (int64_t i = 0; i < C; i++) dw[i] = k.dw0[i];
    vkft_ref_rmsnorm_backward_f64(xd, wd, rd, dyd, dx, k.with_dw ? dw : NULL, R, C);
    /* dx_j = s (dy_j w_j - x_j s^2 S / C): measured against s (|dy_j w_j| + |x_j| s^2 sum|dy w x|
     * / C), within (C + 8) u of it (the fp32 sum S of C terms, then a few roundings). dw_j
     * against sum_r |dy x s| + |dw0|: a sum of R terms, (R + 4) u. */
    for (int64_t r0 = 0; r0 < R; r0++) {
      double s = rd[r0], abs_dot = 0;
      for (int64_t j = 0; j < C; j++) abs_dot += fabs(dyd[r0 * C + j] * wd[j] * xd[r0 * C + j]);
      for (int64_t j = 0; j < C; j++)
        scale[r0 * C + j] = s * (fabs(dyd[r0 * C + j] * wd[j]) +
                                 fabs(xd[r0 * C + j]) * s * s * abs_dot / (double)C);
    }
    for (int64_t j = 0; j < C; j++) {
      double sum = fabs(k.dw0[j]);
      for (int64_t r0 = 0; r0 < R; r0++) sum += fabs(dyd[r0 * C + j] * xd[r0 * C + j] * rd[r0]);
      scale[k.o2_at + j] = sum;
      if (!k.with_dw) want[k.o2_at + j] = 0; /* untouched (run_on zeroes it) */
    }
    tol1 = ((double)C + 8) * CORE_U;
    tol2 = ((double)R + 4) * CORE_U;
  }
  int64_t n2 = k.bwd ? C : R;

  /* the device, then (tests only) the reference backend through the same op API */
  status = run_on(vk, &k, got);
  if (status == VKFT_OK) {
    core_report(r, core_err(got, want, scale, RC), tol1);
    core_report(r, core_err(got + k.o2_at, want + k.o2_at, scale + k.o2_at, n2), tol2);
    status = harness_repeat(vk, reset, record, &k, &k.out, got, timed_runs, r);
  }
  if (status == VKFT_OK && r->ms > 0) {
    double bytes =
        k.bwd ? (3.0 * RC + 2.0 * R) * 4 + (k.with_dw ? 2.0 * RC * 4 : 0) : 2.0 * RC * 4 + R * 4.0;
    r->gbps = bytes / (r->ms * 1e6);
  }
  release(vk, &k);
  vkft_backend *ref;
  if (status == VKFT_OK && timed_runs == 0 && (status = vkft_backend_ref_create(&ref)) == VKFT_OK) {
    status = run_on(ref, &k, got);
    if (status == VKFT_OK) {
      core_report(r, core_err(got, want, scale, RC), tol1);
      core_report(r, core_err(got + k.o2_at, want + k.o2_at, scale + k.o2_at, n2), tol2);
    }
    release(ref, &k);
    vkft_backend_destroy(ref);
  }
done:
  free(k.x), free(k.w), free(k.dy), free(k.rstd), free(k.dw0), free(k.w_stored);
  free(got), free(want), free(scale), free(xd), free(wd), free(dyd), free(rd);
  return status;
}

/* rmsnorm d = {R, C}; rmsnorm_bwd d = {R, C, with dw}. Length 1, odd C, C not a multiple of the
 * vector width or of the threads of a row, a head-sized Qwen3 q/k norm (many rows of 128). */
static const vkft_op_case cases[] = {
    {"rmsnorm", VKFT_F32, {64, 256}, HARNESS_T | HARNESS_S},
    {"rmsnorm", VKFT_F32, {1, 1}, HARNESS_T},
    {"rmsnorm", VKFT_F32, {3, 7}, HARNESS_T},
    {"rmsnorm", VKFT_F32, {5, 1001}, HARNESS_T},
    {"rmsnorm", VKFT_F32, {33, 2048}, HARNESS_T},
    {"rmsnorm", VKFT_F32, {300, 128}, HARNESS_T},
    {"rmsnorm", VKFT_F16, {17, 130}, HARNESS_T},
    {"rmsnorm", VKFT_F16, {9, 512}, HARNESS_T},
    {"rmsnorm", VKFT_BF16, {17, 67}, HARNESS_T},
    {"rmsnorm", VKFT_BF16, {9, 1024}, HARNESS_T | HARNESS_S},
    {"rmsnorm_bwd", VKFT_F32, {64, 256, 1}, HARNESS_T | HARNESS_S},
    {"rmsnorm_bwd", VKFT_F32, {1, 1, 1}, HARNESS_T},
    {"rmsnorm_bwd", VKFT_F32, {3, 7, 1}, HARNESS_T},
    {"rmsnorm_bwd", VKFT_F32, {5, 1001, 1}, HARNESS_T},
    {"rmsnorm_bwd", VKFT_F32, {33, 2048, 1}, HARNESS_T},
    {"rmsnorm_bwd", VKFT_F32, {300, 128, 1}, HARNESS_T},
    {"rmsnorm_bwd", VKFT_F32, {70, 36, 1}, HARNESS_T},
    {"rmsnorm_bwd", VKFT_BF16, {17, 67, 0}, HARNESS_T},
    {"rmsnorm_bwd", VKFT_BF16, {9, 1024, 0}, HARNESS_T},
    {"rmsnorm_bwd", VKFT_F16, {11, 130, 1}, HARNESS_T},
    {"rmsnorm", VKFT_F32, {2048, 2048}, HARNESS_B},
    {"rmsnorm", VKFT_BF16, {2048, 2048}, HARNESS_B},
    {"rmsnorm", VKFT_F32, {32768, 128}, HARNESS_B},
    {"rmsnorm_bwd", VKFT_F32, {2048, 2048, 1}, HARNESS_B},
    {"rmsnorm_bwd", VKFT_BF16, {2048, 2048, 0}, HARNESS_B},
    {"rmsnorm_bwd", VKFT_F32, {32768, 128, 1}, HARNESS_B},
};

const harness_family family_rmsnorm = {cases, HARNESS_COUNT(cases), run};
