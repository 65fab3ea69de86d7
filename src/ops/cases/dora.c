/* Op-table family "dora_norm" / "dora_scale" / "dora_mag_grad" against the double reference
 * (src/ref/dora.c). Tolerances, in units u = 2^-24:
 *   dora_norm: each v = W + s sum_k B A is within (r + 2) u of V = |W| + s sum_k |B||A|; the sum
 *     of squares then within (in + 2 r + 6) u of S = sum V^2, so the norm n = sqrt(sum v^2) within
 *     that times S / (2 n) (d sqrt(x) = dx / (2 sqrt(x))); Vulkan's sqrt (as 1 / inversesqrt)
 *     adds <= 5 ulp of n <= 10 u of S / (2 n) (n^2 <= S). The scale m / n carries the norm's
 *     relative error plus the division's 2.5 ulp: measured against |m| / n * S / (2 n^2).
 *     Tolerance (in + 2 r + 20) u on both.
 *   dora_scale: (scale - shift) one rounding, the product one, the add one: 3 u of
 *     |beta y0| + |scale - shift| |x|.
 *   dora_mag_grad: a T-term dot product, the division (2.5 ulp) and the add: (T + 5) u of
 *     sum_t |dy yd| / n + |dm0|. */
#include "case.h"

enum { W, A, B, M, NORM, SCALE, X, Y, DY, YD, DM };

typedef struct dora_params {
  int64_t T, out, in, r;
  float s, shift, beta;
  int op, has_m; /* op: the variant */
} dora_params;

enum { OP_NORM, OP_SCALE, OP_MAG_GRAD };

static int setup_norm(op_case *oc, dora_params *p) {
  int64_t out = p->out, in = p->in, r = p->r;
  double *w = case_random(oc, W, "W", oc->row->dtype, out * in, CASE_IN, -1, 1);
  double *a = case_random(oc, A, "A", VKFT_F32, r * in, CASE_IN, -1, 1);
  double *b = case_random(oc, B, "B", VKFT_F32, out * r, CASE_IN, -0.5, 0.5);
  double *m = p->has_m ? case_random(oc, M, "m", VKFT_F32, out, CASE_IN, 0.5, 2) : NULL;
  case_poisoned(oc, NORM, "norm", out);
  if (p->has_m) case_poisoned(oc, SCALE, "scale", out);
  double *norm = CASE_NEW(oc, double, out), *scale = CASE_NEW(oc, double, out);
  double *bound_n = CASE_NEW(oc, double, out), *bound_g = CASE_NEW(oc, double, out);
  if (oc->failed) return VKFT_ERR;
  vkft_ref_dora_norm_f64(w, a, b, m, norm, scale, out, in, r, p->s);
  for (int64_t o = 0; o < out; o++) {
    double S = 0;
    for (int64_t i = 0; i < in; i++) {
      double V = fabs(w[o * in + i]);
      for (int64_t k = 0; k < r; k++) V += p->s * fabs(b[o * r + k] * a[k * in + i]);
      S += V * V;
    }
    bound_n[o] = S / (2 * norm[o]);
    if (m) bound_g[o] = fabs(m[o]) / norm[o] * bound_n[o] / norm[o];
  }
  double tol = (double)(in + 2 * r + 20) * CASE_U * 1.01;
  case_expect(oc, NORM, norm, bound_n, tol);
  if (m) case_expect(oc, SCALE, scale, bound_g, tol);
  oc->bytes = (double)out * in * vkft_dtype_size(oc->row->dtype) + 4.0 * r * in;
  oc->flops = 2.0 * out * in * (r + 1);
  return case_status(oc);
}

static int setup_scale(op_case *oc, dora_params *p) {
  int64_t T = p->T, out = p->out;
  double *x = case_random(oc, X, "x", VKFT_F32, T * out, CASE_IN, -1, 1);
  double *g = case_random(oc, SCALE, "scale", VKFT_F32, out, CASE_IN, 0.5, 2);
  double *y0 = NULL;
  if (p->beta != 0)
    y0 = case_random(oc, Y, "y", VKFT_F32, T * out, CASE_OUT, -1, 1);
  else
    case_poisoned(oc, Y, "y", T * out);
  double *y = CASE_NEW(oc, double, T *out), *bound = CASE_NEW(oc, double, T *out);
  if (oc->failed) return VKFT_ERR;
  for (int64_t i = 0; i < T * out; i++) y[i] = y0 ? y0[i] : 0;
  vkft_ref_dora_scale_f64(x, g, y, T, out, p->shift, p->beta);
  for (int64_t i = 0; i < T * out; i++)
    bound[i] = (y0 ? fabs(p->beta * y0[i]) : 0) + fabs(g[i % out] - p->shift) * fabs(x[i]);
  case_expect(oc, Y, y, bound, 3 * CASE_U * 1.01);
  oc->bytes = 4.0 * T * out * (y0 ? 3 : 2);
  return case_status(oc);
}

static int setup_mag_grad(op_case *oc, dora_params *p) {
  int64_t T = p->T, out = p->out;
  double *dy = case_random(oc, DY, "dy", VKFT_F32, T * out, CASE_IN, -1, 1);
  double *yd = case_random(oc, YD, "yd", VKFT_F32, T * out, CASE_IN, -1, 1);
  double *norm = case_random(oc, NORM, "norm", VKFT_F32, out, CASE_IN, 0.5, 4);
  double *dm0 = case_random(oc, DM, "dm", VKFT_F32, out, CASE_OUT, -1, 1);
  double *dm = CASE_NEW(oc, double, out), *bound = CASE_NEW(oc, double, out);
  if (oc->failed) return VKFT_ERR;
  for (int64_t o = 0; o < out; o++) {
    dm[o] = dm0[o];
    double sum = 0;
    for (int64_t t = 0; t < T; t++) sum += fabs(dy[t * out + o] * yd[t * out + o]);
    bound[o] = sum / norm[o] + fabs(dm0[o]);
  }
  vkft_ref_dora_mag_grad_f64(dy, yd, norm, dm, T, out);
  case_expect(oc, DM, dm, bound, (double)(T + 5) * CASE_U * 1.01);
  oc->bytes = 8.0 * T * out;
  return case_status(oc);
}

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  dora_params *p = CASE_PARAMS(oc, dora_params);
  if (!p) return VKFT_ERR;
  p->op = oc->variant;
  if (p->op == OP_NORM) {
    /* d = {out, in, r, has m}; alpha = 16 */
    p->T = 1, p->out = c->d[0], p->in = c->d[1], p->r = c->d[2], p->has_m = (int)c->d[3];
    p->s = 16.0f / (float)p->r;
    case_shape(oc, "%lldx%lld r%lld%s", (long long)p->out, (long long)p->in, (long long)p->r,
               p->has_m ? " +m" : "");
    return setup_norm(oc, p);
  }
  p->T = c->d[0], p->out = c->d[1];
  if (p->op == OP_SCALE) { /* d = {T, out, shift, beta} */
    p->shift = (float)c->d[2], p->beta = (float)c->d[3];
    case_shape(oc, "%lldx%lld shift %g beta %g", (long long)p->T, (long long)p->out, p->shift,
               p->beta);
    return setup_scale(oc, p);
  }
  case_shape(oc, "%lldx%lld", (long long)p->T, (long long)p->out); /* d = {T, out} */
  return setup_mag_grad(oc, p);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const dora_params *p = oc->params;
  if (p->op == OP_NORM)
    return vkft_dora_norm(be, &t[W], &t[A], &t[B], p->has_m ? &t[M] : NULL, &t[NORM],
                          p->has_m ? &t[SCALE] : NULL, p->out, p->in, p->r, p->s);
  if (p->op == OP_SCALE)
    return vkft_dora_scale(be, &t[X], &t[SCALE], &t[Y], p->T, p->out, p->shift, p->beta);
  return vkft_dora_mag_grad(be, &t[DY], &t[YD], &t[NORM], &t[DM], p->T, p->out);
}

const case_family case_dora = {{"dora_norm", "dora_scale", "dora_mag_grad"}, setup, record};
