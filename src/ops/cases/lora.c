/* Op-table family "lora*": the LoRA forward (u, y) and backward (dx, dA, dB) on the device
 * against the double reference (src/ref/lora.c). Every output is normalized by the bound its
 * fp32 rounding errors scale with: the same products taken over absolute values (nested, so the
 * error already in an intermediate such as u or du is covered), plus the magnitude of the value
 * accumulated into. The tolerance is then the accumulation bound (terms on the longest chain
 * of roundings) * 2^-24. */
#include "harness.h"

#include "vkft/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lora_ctx {
  int bwd;
  vkft_tensor x, a, b, u, dy, du, out;
  vkft_tensor y, dx, da, db; /* views of out: forward u | y, backward dx | dA | dB */
  int64_t T, in, out_dim, r;
  float s;
  const float *out_init;
} lora_ctx;

static int record(vkft_backend *be, void *p) {
  lora_ctx *x = p;
  if (!x->bwd)
    return vkft_lora(be, &x->x, &x->a, &x->b, &x->y, &x->u, x->T, x->in, x->out_dim, x->r, x->s);
  return vkft_lora_bwd(be, &x->x, &x->a, &x->b, &x->u, &x->dy, &x->dx, &x->da, &x->db, &x->du, x->T,
                       x->in, x->out_dim, x->r, x->s);
}

static int reset_out(vkft_backend *be, void *p) {
  lora_ctx *x = p;
  return vkft_tensor_write(be, &x->out, x->out_init);
}

static int64_t pad4(int64_t n) {
  return (n + 3) / 4 * 4;
}

/* c (M, N) = a (M, K) b (N, K)^T, or b (K, N) with b_kn, over doubles (optionally |.|) */
static void dgemm(const double *a, const double *b, double *c, int64_t M, int64_t N, int64_t K,
                  int b_kn, int absolute) {
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double sum = 0;
      for (int64_t k = 0; k < K; k++) {
        double prod = a[m * K + k] * (b_kn ? b[k * N + n] : b[n * K + k]);
        sum += absolute ? fabs(prod) : prod;
      }
      c[m * N + n] = sum;
    }
}

/* (K, M) -> (M, K) */
static void transpose(const double *in, double *out, int64_t K, int64_t M) {
  for (int64_t k = 0; k < K; k++)
    for (int64_t m = 0; m < M; m++) out[m * K + k] = in[k * M + m];
}

static double max_err(const float *got, const double *want, const double *bound, int64_t n) {
  double err = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - want[i]) / (bound[i] + 1e-30);
    if (!(e <= err)) err = e; /* NaN propagates as a failure */
  }
  return err;
}

static double *to_double(const float *f, int64_t n, int absolute) {
  double *d = malloc((size_t)(n ? n : 1) * sizeof *d);
  if (d)
    for (int64_t i = 0; i < n; i++) d[i] = absolute ? fabs(f[i]) : f[i];
  return d;
}

/* Forward: u = x A^T is off by <= in u_r |x||A|^T; y = y0 + s u B^T then by
 * (r + 2) u_r s |x||A|^T|B|^T + ... : bound s (|x||A|^T)|B|^T + |y0|, tolerance (in + r + 2) u_r.
 * Backward (u given): dB = dB0 + s dy^T u over T terms: bound s |dy|^T|u| + |dB0|;
 * du = s dy B over out terms (bound s|dy||B| =: DU); dA = dA0 + du^T x: bound DU^T|x| + |dA0|,
 * error (out + T + 2) u_r; dx = dx0 + du A: bound DU|A| + |dx0|, error (out + r + 2) u_r. */
static double compare(const lora_ctx *x, const float *xs, const float *as, const float *bs,
                      const float *us, const float *dys, const float *init, const float *got,
                      const int64_t *at) {
  int64_t T = x->T, in = x->in, out = x->out_dim, r = x->r;
  double s = x->s, err = INFINITY;
  double *xd = to_double(xs, T * in, 0), *ad = to_double(as, r * in, 0);
  double *bd = to_double(bs, out * r, 0), *xa = to_double(xs, T * in, 1);
  double *aa = to_double(as, r * in, 1), *ba = to_double(bs, out * r, 1);
  int64_t big = T * in > T * out ? T * in : T * out;
  if (r * in > big) big = r * in;
  if (out * r > big) big = out * r;
  if (T * r > big) big = T * r;
  double *v1 = malloc((size_t)big * sizeof *v1), *v2 = malloc((size_t)big * sizeof *v2);
  double *v3 = malloc((size_t)big * sizeof *v3), *v4 = malloc((size_t)big * sizeof *v4);
  double *ud = NULL, *ua = NULL, *dyd = NULL, *dya = NULL, *dyt = NULL, *dyta = NULL;
  if (!xd || !ad || !bd || !xa || !aa || !ba || !v1 || !v2 || !v3 || !v4) goto done;
  if (!x->bwd) {
    /* v1 = u ref, v2 = y ref; v3 = |x||A|^T, v4 = y bound */
    for (int64_t i = 0; i < T * out; i++) v2[i] = init[at[1] + i];
    vkft_ref_lora_f64(xd, ad, bd, v2, v1, T, in, out, r, s);
    dgemm(xa, aa, v3, T, r, in, 0, 0);
    err = max_err(got + at[0], v1, v3, T * r);
    dgemm(v3, ba, v4, T, out, r, 0, 0);
    for (int64_t i = 0; i < T * out; i++) v4[i] = s * v4[i] + fabs(init[at[1] + i]);
    double e = max_err(got + at[1], v2, v4, T * out);
    if (!(e <= err)) err = e;
    goto done;
  }
  ud = to_double(us, T * r, 0), ua = to_double(us, T * r, 1);
  dyd = to_double(dys, T * out, 0), dya = to_double(dys, T * out, 1);
  dyt = malloc((size_t)(T * out) * sizeof *dyt), dyta = malloc((size_t)(T * out) * sizeof *dyta);
  if (!ud || !ua || !dyd || !dya || !dyt || !dyta) goto done;
  /* references, accumulated onto the start values: v1 = dx, v2 = dA, v3 = dB */
  for (int64_t i = 0; i < T * in; i++) v1[i] = init[at[0] + i];
  for (int64_t i = 0; i < r * in; i++) v2[i] = init[at[1] + i];
  for (int64_t i = 0; i < out * r; i++) v3[i] = init[at[2] + i];
  vkft_ref_lora_bwd_f64(xd, ad, bd, ud, dyd, v1, v2, v3, T, in, out, r, s);
  /* dB bound: s |dy|^T |u| + |dB0| (dyta = |dy|^T as (out, T), ua as (T, r) read k-major) */
  transpose(dya, dyta, T, out);
  dgemm(dyta, ua, v4, out, r, T, 1, 0);
  for (int64_t i = 0; i < out * r; i++) v4[i] = s * v4[i] + fabs(init[at[2] + i]);
  err = max_err(got + at[2], v3, v4, out * r);
  /* DU = s |dy||B| (T, r), kept in ua */
  dgemm(dya, ba, ua, T, r, out, 1, 0);
  for (int64_t i = 0; i < T * r; i++) ua[i] *= s;
  /* dx bound: DU |A| + |dx0| */
  dgemm(ua, aa, v4, T, in, r, 1, 0);
  for (int64_t i = 0; i < T * in; i++) v4[i] += fabs(init[at[0] + i]);
  double e = max_err(got + at[0], v1, v4, T * in);
  if (!(e <= err)) err = e;
  /* dA bound: DU^T |x| + |dA0| (dyt reused for DU^T as (r, T)) */
  transpose(ua, dyt, T, r);
  dgemm(dyt, xa, v4, r, in, T, 1, 0);
  for (int64_t i = 0; i < r * in; i++) v4[i] += fabs(init[at[1] + i]);
  e = max_err(got + at[1], v2, v4, r * in);
  if (!(e <= err)) err = e;
done:
  free(xd), free(ad), free(bd), free(xa), free(aa), free(ba), free(v1), free(v2), free(v3);
  free(v4), free(ud), free(ua), free(dyd), free(dya), free(dyt), free(dyta);
  return err;
}

static int run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  lora_ctx x = {.T = c->d[0], .in = c->d[1], .out_dim = c->d[2], .r = c->d[3]};
  if (!strcmp(c->op, "lora_bwd"))
    x.bwd = 1;
  else if (strcmp(c->op, "lora"))
    return vkft_error("op table: unknown lora variant %s", c->op);
  int64_t T = x.T, in = x.in, out = x.out_dim, rank = x.r;
  x.s = 16.0f / (float)rank; /* alpha = 16 */
  snprintf(r->shape, sizeof r->shape, "T%lld %lld->%lld r%lld", (long long)T, (long long)in,
           (long long)out, (long long)rank);

  /* out: forward u (T, r) | y (T, out); backward dx (T, in) | dA (r, in) | dB (out, r) */
  int64_t at[3] = {0}, n_out;
  if (!x.bwd) {
    at[1] = pad4(T * rank);
    n_out = at[1] + T * out;
  } else {
    at[1] = pad4(T * in);
    at[2] = at[1] + pad4(rank * in);
    n_out = at[2] + out * rank;
  }
  float *xs = malloc((size_t)(T * in) * sizeof *xs), *as = malloc((size_t)(rank * in) * sizeof *as);
  float *bs = malloc((size_t)(out * rank) * sizeof *bs), *us = malloc((size_t)(T * rank) * 4);
  float *dys = malloc((size_t)(T * out) * sizeof *dys);
  float *init = malloc((size_t)n_out * sizeof *init), *got = malloc((size_t)n_out * sizeof *got);
  int status = VKFT_ERR;
  if (!xs || !as || !bs || !us || !dys || !init || !got) {
    vkft_error("lora %s: out of host memory", r->shape);
    goto done;
  }
  harness_rng rng = {(uint64_t)(T * 1000003 + in * 1009 + out * 7 + rank) ^ (uint64_t)x.bwd << 40};
  for (int64_t i = 0; i < T * in; i++) xs[i] = (float)harness_uniform(&rng, -1, 1);
  for (int64_t i = 0; i < rank * in; i++) as[i] = (float)harness_uniform(&rng, -1, 1);
  for (int64_t i = 0; i < out * rank; i++) bs[i] = (float)harness_uniform(&rng, -1, 1);
  for (int64_t i = 0; i < T * out; i++) dys[i] = (float)harness_uniform(&rng, -1, 1);
  for (int64_t i = 0; i < n_out; i++) init[i] = (float)harness_uniform(&rng, -1, 1);
  /* the saved u of the backward: x A^T rounded to fp32, as the forward leaves it */
  for (int64_t t = 0; t < T; t++)
    for (int64_t k = 0; k < rank; k++) {
      double sum = 0;
      for (int64_t i = 0; i < in; i++) sum += (double)xs[t * in + i] * as[k * in + i];
      us[t * rank + k] = (float)sum;
    }
  x.out_init = init;

  if (vkft_tensor_alloc(vk, VKFT_F32, T * in, &x.x) ||
      vkft_tensor_alloc(vk, VKFT_F32, rank * in, &x.a) ||
      vkft_tensor_alloc(vk, VKFT_F32, out * rank, &x.b) ||
      vkft_tensor_alloc(vk, VKFT_F32, T * rank, &x.du) ||
      vkft_tensor_alloc(vk, VKFT_F32, n_out, &x.out))
    goto release;
  if (!x.bwd) {
    x.u = vkft_tensor_view(&x.out, 0, T * rank);
    x.y = vkft_tensor_view(&x.out, at[1], T * out);
  } else {
    if (vkft_tensor_alloc(vk, VKFT_F32, T * rank, &x.u) ||
        vkft_tensor_alloc(vk, VKFT_F32, T * out, &x.dy) || vkft_tensor_write(vk, &x.u, us) ||
        vkft_tensor_write(vk, &x.dy, dys))
      goto release;
    x.dx = vkft_tensor_view(&x.out, 0, T * in);
    x.da = vkft_tensor_view(&x.out, at[1], rank * in);
    x.db = vkft_tensor_view(&x.out, at[2], out * rank);
  }
  if (vkft_tensor_write(vk, &x.x, xs) || vkft_tensor_write(vk, &x.a, as) ||
      vkft_tensor_write(vk, &x.b, bs) || reset_out(vk, &x) || vkft_begin(vk) || record(vk, &x) ||
      vkft_end(vk) || vkft_tensor_read(vk, &x.out, got))
    goto release;

  r->max_err = compare(&x, xs, as, bs, us, dys, init, got, at);
  int64_t chain = x.bwd ? out + T + rank + 2 : in + rank + 2;
  r->tol = (double)chain * ldexp(1.0, -24) * 1.01;
  r->ok = r->max_err <= r->tol;
  status = harness_repeat(vk, reset_out, record, &x, &x.out, got, timed_runs, r);
  if (status == VKFT_OK && r->ms > 0) {
    /* memory-bound at small r: the traffic that cannot be avoided (fp32): forward reads x and
     * reads and writes y; backward reads x and dy and reads and writes dx */
    double bytes = 4.0 * T * (x.bwd ? 3.0 * in + out : in + 2.0 * out);
    r->gbps = bytes / (r->ms * 1e6);
  }
release:
  vkft_tensor_free(vk, &x.x);
  vkft_tensor_free(vk, &x.a);
  vkft_tensor_free(vk, &x.b);
  vkft_tensor_free(vk, &x.du);
  vkft_tensor_free(vk, &x.out);
  if (x.bwd) {
    vkft_tensor_free(vk, &x.u);
    vkft_tensor_free(vk, &x.dy);
  }
done:
  free(xs), free(as), free(bs), free(us), free(dys), free(init), free(got);
  return status;
}

/* lora d = {T, in, out, r}: T = 1, odd and tile-straddling widths, r = 1, 8, 16, 32, 64. */
static const vkft_op_case cases[] = {
    {"lora", VKFT_F32, {1, 33, 17, 1}, HARNESS_T},
    {"lora", VKFT_F32, {37, 65, 130, 16}, HARNESS_T | HARNESS_S},
    {"lora", VKFT_F32, {64, 128, 96, 8}, HARNESS_T},
    {"lora", VKFT_F32, {70, 100, 300, 64}, HARNESS_T},
    {"lora_bwd", VKFT_F32, {1, 33, 17, 1}, HARNESS_T},
    {"lora_bwd", VKFT_F32, {37, 65, 130, 16}, HARNESS_T | HARNESS_S},
    {"lora_bwd", VKFT_F32, {64, 128, 96, 8}, HARNESS_T},
    {"lora_bwd", VKFT_F32, {70, 100, 300, 64}, HARNESS_T},
    /* enough rows for the CPU tilings of many rows per invocation (16 at r <= 16, 8 at r = 32),
     * with a ragged last invocation and unaligned rows */
    {"lora", VKFT_F32, {2051, 36, 20, 16}, HARNESS_T},
    {"lora_bwd", VKFT_F32, {2048, 1024, 2052, 16}, HARNESS_T},
    {"lora_bwd", VKFT_F32, {1030, 2050, 1027, 32}, HARNESS_T},
    {"lora", VKFT_F32, {2048, 2048, 2048, 16}, HARNESS_B},
    {"lora_bwd", VKFT_F32, {2048, 2048, 2048, 16}, HARNESS_B},
};

const harness_family family_lora = {cases, HARNESS_COUNT(cases), run};
