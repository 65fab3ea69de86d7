/* Op-table family "lora" / "lora_bwd": the LoRA forward (u, y) and backward (dx, dA, dB) against
 * the double reference (src/ref/lora.c). Every output is normalized by the bound its fp32
 * rounding errors scale with: the same products taken over absolute values (nested, so the
 * error already in an intermediate such as u or du is covered), plus the magnitude of the value
 * accumulated into. The tolerance is then the accumulation bound (terms on the longest chain
 * of roundings) * 2^-24. Accumulated outputs start random; u starts random and must be
 * overwritten. "_odd" rows put every tensor one element into its allocation (unaligned views). */
#include "case.h"

enum { X, A, B, U, Y, DY, DX, DA, DB, DU };

typedef struct lora_params {
  int64_t T, in, out, r;
  float s;
  int bwd;
} lora_params;

/* c (M, N) = sum_k |a[m am + k ak]| |b[k bk + n bn]| + |c0| (c0 may be NULL): the magnitude
 * bound of a product accumulated onto c0 */
static void abs_product(const double *a, int64_t am, int64_t ak, const double *b, int64_t bk,
                        int64_t bn, const double *c0, double *c, int64_t M, int64_t N, int64_t K) {
  for (int64_t i = 0; i < M * N; i++) c[i] = c0 ? fabs(c0[i]) : 0;
  for (int64_t m = 0; m < M; m++)
    for (int64_t k = 0; k < K; k++) {
      double x = fabs(a[m * am + k * ak]);
      for (int64_t n = 0; n < N; n++) c[m * N + n] += x * fabs(b[k * bk + n * bn]);
    }
}

static void scale_by(double *x, int64_t n, double s) {
  for (int64_t i = 0; i < n; i++) x[i] *= s;
}

/* Forward: u = x A^T is off by <= in u_r |x||A|^T; y = y0 + s u B^T then by
 * (r + 2) u_r s |x||A|^T|B|^T + ... : bound s (|x||A|^T)|B|^T + |y0|, tolerance (in + r + 2) u_r.
 */
static int setup_forward(op_case *oc, const lora_params *p, const double *x, const double *a,
                         const double *b) {
  int64_t T = p->T, in = p->in, out = p->out, r = p->r;
  case_random(oc, U, "u", VKFT_F32, T * r, CASE_OUT, -1, 1);
  double *y0 = case_random(oc, Y, "y", VKFT_F32, T * out, CASE_OUT, -1, 1);
  double *u = CASE_NEW(oc, double, T *r), *y = CASE_NEW(oc, double, T *out);
  double *bound_u = CASE_NEW(oc, double, T *r), *bound_y = CASE_NEW(oc, double, T *out);
  if (oc->failed) return VKFT_ERR;
  for (int64_t i = 0; i < T * out; i++) y[i] = y0[i];
  vkft_ref_lora_f64(x, a, b, y, u, T, in, out, r, p->s);
  abs_product(x, in, 1, a, 1, in, NULL, bound_u, T, r, in);
  abs_product(bound_u, r, 1, b, 1, r, NULL, bound_y, T, out, r);
  for (int64_t i = 0; i < T * out; i++) bound_y[i] = p->s * bound_y[i] + fabs(y0[i]);
  /* kernels that round their inputs (fp16 cooperative matrices): x and A for u, u and B for y,
   * so 4 u' relative to the same bound */
  const case_product mm[] = {{VKFT_MATMUL_NT, VKFT_F32, T, r}, {VKFT_MATMUL_NT, VKFT_F32, T, out}};
  double acc, u_in = case_matmul_input_unit(oc, mm, 2, &acc);
  double tol = ((double)(in + r + 2) * acc + 4 * u_in) * 1.01;
  case_expect(oc, U, u, bound_u, tol);
  case_expect(oc, Y, y, bound_y, tol);
  /* memory-bound at small r: the traffic that cannot be avoided (fp32) reads x and reads and
   * writes y */
  oc->bytes = 4.0 * T * (in + 2.0 * out);
  return case_status(oc);
}

/* Backward (u given): dB = dB0 + s dy^T u over T terms: bound s |dy|^T|u| + |dB0|;
 * du = s dy B over out terms (bound s|dy||B| =: DU); dA = dA0 + du^T x: bound DU^T|x| + |dA0|,
 * error (out + T + 2) u_r; dx = dx0 + du A: bound DU|A| + |dx0|, error (out + r + 2) u_r. */
static int setup_backward(op_case *oc, const lora_params *p, const double *x, const double *a,
                          const double *b) {
  int64_t T = p->T, in = p->in, out = p->out, r = p->r;
  float *u32 = case_tensor_new(oc, U, "u", VKFT_F32, T * r, CASE_IN);
  double *dy = case_random(oc, DY, "dy", VKFT_F32, T * out, CASE_IN, -1, 1);
  double *dx0 = case_random(oc, DX, "dx", VKFT_F32, T * in, CASE_OUT, -1, 1);
  double *da0 = case_random(oc, DA, "dA", VKFT_F32, r * in, CASE_OUT, -1, 1);
  double *db0 = case_random(oc, DB, "dB", VKFT_F32, out * r, CASE_OUT, -1, 1);
  case_tensor_new(oc, DU, "du", VKFT_F32, T * r, CASE_SCRATCH);
  double *u = CASE_NEW(oc, double, T *r), *bound_du = CASE_NEW(oc, double, T *r);
  double *dx = CASE_NEW(oc, double, T *in), *bound_dx = CASE_NEW(oc, double, T *in);
  double *da = CASE_NEW(oc, double, r *in), *bound_da = CASE_NEW(oc, double, r *in);
  double *db = CASE_NEW(oc, double, out *r), *bound_db = CASE_NEW(oc, double, out *r);
  if (oc->failed) return VKFT_ERR;
  /* the saved u: x A^T rounded to fp32, as the forward leaves it */
  for (int64_t t = 0; t < T; t++)
    for (int64_t k = 0; k < r; k++) {
      double sum = 0;
      for (int64_t i = 0; i < in; i++) sum += x[t * in + i] * a[k * in + i];
      u32[t * r + k] = (float)sum;
      u[t * r + k] = u32[t * r + k];
    }
  for (int64_t i = 0; i < T * in; i++) dx[i] = dx0[i];
  for (int64_t i = 0; i < r * in; i++) da[i] = da0[i];
  for (int64_t i = 0; i < out * r; i++) db[i] = db0[i];
  vkft_ref_lora_bwd_f64(x, a, b, u, dy, dx, da, db, T, in, out, r, p->s);
  abs_product(dy, 1, out, u, r, 1, NULL, bound_db, out, r, T); /* |dy|^T |u| */
  scale_by(bound_db, out * r, p->s);
  for (int64_t i = 0; i < out * r; i++) bound_db[i] += fabs(db0[i]);
  abs_product(dy, out, 1, b, r, 1, NULL, bound_du, T, r, out); /* DU = s |dy| |B| */
  scale_by(bound_du, T * r, p->s);
  abs_product(bound_du, r, 1, a, in, 1, dx0, bound_dx, T, in, r); /* DU |A| + |dx0| */
  abs_product(bound_du, 1, r, x, in, 1, da0, bound_da, r, in, T); /* DU^T |x| + |dA0| */
  /* rounding inputs: dy and B for du, du again and A (x) for dx (dA), dy and u for dB: 4 u' */
  const case_product mm[] = {{VKFT_MATMUL_TN, VKFT_F32, out, r},
                             {VKFT_MATMUL_NN, VKFT_F32, T, r},
                             {VKFT_MATMUL_TN, VKFT_F32, r, in},
                             {VKFT_MATMUL_NN, VKFT_F32, T, in}};
  double acc, u_in = case_matmul_input_unit(oc, mm, 4, &acc);
  double tol = ((double)(out + T + r + 2) * acc + 4 * u_in) * 1.01;
  case_expect(oc, DX, dx, bound_dx, tol);
  case_expect(oc, DA, da, bound_da, tol);
  case_expect(oc, DB, db, bound_db, tol);
  /* reads x and dy, reads and writes dx */
  oc->bytes = 4.0 * T * (3.0 * in + out);
  return case_status(oc);
}

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  lora_params *p = CASE_PARAMS(oc, lora_params);
  if (!p) return VKFT_ERR;
  *p = (lora_params){c->d[0], c->d[1], c->d[2], c->d[3], 16.0f / (float)c->d[3], oc->variant & 1};
  case_shape(oc, "T%lld %lld->%lld r%lld", (long long)p->T, (long long)p->in, (long long)p->out,
             (long long)p->r); /* alpha = 16 */
  double *x = case_random(oc, X, "x", VKFT_F32, p->T * p->in, CASE_IN, -1, 1);
  double *a = case_random(oc, A, "A", VKFT_F32, p->r * p->in, CASE_IN, -1, 1);
  double *b = case_random(oc, B, "B", VKFT_F32, p->out * p->r, CASE_IN, -1, 1);
  if (oc->failed) return VKFT_ERR;
  int status = p->bwd ? setup_backward(oc, p, x, a, b) : setup_forward(oc, p, x, a, b);
  for (int s = X; oc->variant >= 2 && s <= DU; s++) oc->t[s].offset = 1; /* "_odd": views at 1 */
  return status;
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const lora_params *p = oc->params;
  if (!p->bwd)
    return vkft_lora(be, &t[X], &t[A], &t[B], &t[Y], &t[U], p->T, p->in, p->out, p->r, p->s);
  return vkft_lora_bwd(be, &t[X], &t[A], &t[B], &t[U], &t[DY], &t[DX], &t[DA], &t[DB], &t[DU], p->T,
                       p->in, p->out, p->r, p->s);
}

const case_family case_lora = {{"lora", "lora_bwd", "lora_odd", "lora_bwd_odd"}, setup, record};
