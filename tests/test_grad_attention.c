/* The reference attention backward (src/ref/attention.c) against central finite differences
 * of the reference forward, all in double, for the objective L = sum(dout .* out) with random
 * dout: every element of dq, dk and dv, on a grouped-query shape (Hq = 4, Hkv = 2) with two
 * packed sequences plus a third segment reusing the first id (the mask is "j <= i and same
 * id", not contiguity). Also: the op API on the reference backend matches the double
 * reference, and rejects bad shapes. */
#include "check.h"

#include "vkft/error.h"
#include "vkft/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { T = 9, HQ = 4, HKV = 2, D = 5 };
#define NQ (T * HQ * D)
#define NKV (T * HKV * D)

static double q[NQ], k[NKV], v[NKV], dout[NQ];
static const int32_t seq_id[T] = {4, 4, 4, 4, 1, 1, 1, 4, 4};
static const double scale = 0.41; /* not 1/sqrt(D): the scale is a parameter */

static double rnd(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static double objective(void) {
  static double out[NQ], lse[T * HQ];
  vkft_ref_attention_forward_f64(q, k, v, seq_id, out, lse, T, HQ, HKV, D, scale);
  double sum = 0;
  for (int i = 0; i < NQ; i++) sum += dout[i] * out[i];
  return sum;
}

/* max over the elements of x of |analytic - numeric| / max(1, |numeric|) */
static double fd_error(double *x, const double *grad, int n) {
  double worst = 0, h = 1e-6;
  for (int i = 0; i < n; i++) {
    double saved = x[i];
    x[i] = saved + h;
    double up = objective();
    x[i] = saved - h;
    double down = objective();
    x[i] = saved;
    double numeric = (up - down) / (2 * h);
    double err = fabs(grad[i] - numeric) / fmax(1.0, fabs(numeric));
    if (!(err <= worst)) worst = err;
  }
  return worst;
}

static void finite_differences(void) {
  static double out[NQ], lse[T * HQ], dq[NQ], dk[NKV], dv[NKV], delta[T * HQ];
  vkft_ref_attention_forward_f64(q, k, v, seq_id, out, lse, T, HQ, HKV, D, scale);
  vkft_ref_attention_backward_f64(q, k, v, seq_id, out, lse, dout, dq, dk, dv, delta, T, HQ, HKV, D,
                                  scale);
  double eq = fd_error(q, dq, NQ), ek = fd_error(k, dk, NKV), ev = fd_error(v, dv, NKV);
  printf("attention grad check T=%d Hq=%d Hkv=%d D=%d: dq %.2e dk %.2e dv %.2e\n", T, HQ, HKV, D,
         eq, ek, ev);
  CHECKF(eq < 1e-7, "dq error %.3e", eq);
  CHECKF(ek < 1e-7, "dk error %.3e", ek);
  CHECKF(ev < 1e-7, "dv error %.3e", ev);
  /* lse is the log of the softmax denominator: out of a single-key row is that key's value */
  CHECK(fabs(out[0] - v[0]) < 1e-15 &&
        fabs(lse[0] - scale * (q[0] * k[0] + q[1] * k[1] + q[2] * k[2] + q[3] * k[3] +
                               q[4] * k[4])) < 1e-15);
}

/* vkft_attention / vkft_attention_bwd on the reference backend (fp32) against the double
 * reference: the model run on the CPU backend goes through this path. */
static void reference_backend(void) {
  vkft_backend *be;
  CHECK(vkft_backend_ref_create(&be) == VKFT_OK);
  float qf[NQ], kf[NKV], vf[NKV], df[NQ], outf[NQ], lsef[T * HQ], dqf[NQ], dkf[NKV], dvf[NKV];
  for (int i = 0; i < NQ; i++) qf[i] = (float)q[i], df[i] = (float)dout[i];
  for (int i = 0; i < NKV; i++) kf[i] = (float)k[i], vf[i] = (float)v[i];
  vkft_tensor tq, tk, tv, ts, to, tl, td, tdq, tdk, tdv, tdelta;
  CHECK(vkft_tensor_alloc(be, VKFT_F32, NQ, &tq) == VKFT_OK);
  CHECK(vkft_tensor_alloc(be, VKFT_F32, NKV, &tk) == VKFT_OK);
  CHECK(vkft_tensor_alloc(be, VKFT_F32, NKV, &tv) == VKFT_OK);
  CHECK(vkft_tensor_alloc(be, VKFT_I32, T, &ts) == VKFT_OK);
  CHECK(vkft_tensor_alloc(be, VKFT_F32, NQ, &to) == VKFT_OK);
  CHECK(vkft_tensor_alloc(be, VKFT_F32, T * HQ, &tl) == VKFT_OK);
  CHECK(vkft_tensor_alloc(be, VKFT_F32, NQ, &td) == VKFT_OK);
  CHECK(vkft_tensor_alloc(be, VKFT_F32, NQ, &tdq) == VKFT_OK);
  CHECK(vkft_tensor_alloc(be, VKFT_F32, NKV, &tdk) == VKFT_OK);
  CHECK(vkft_tensor_alloc(be, VKFT_F32, NKV, &tdv) == VKFT_OK);
  CHECK(vkft_tensor_alloc(be, VKFT_F32, T * HQ, &tdelta) == VKFT_OK);
  vkft_tensor_write(be, &tq, qf);
  vkft_tensor_write(be, &tk, kf);
  vkft_tensor_write(be, &tv, vf);
  vkft_tensor_write(be, &ts, seq_id);
  vkft_tensor_write(be, &td, df);
  CHECK(vkft_begin(be) == VKFT_OK);
  CHECK(vkft_attention(be, &tq, &tk, &tv, &ts, &to, &tl, T, HQ, HKV, D, (float)scale) == VKFT_OK);
  CHECK(vkft_attention_bwd(be, &tq, &tk, &tv, &ts, &to, &tl, &td, &tdq, &tdk, &tdv, &tdelta, T, HQ,
                           HKV, D, (float)scale) == VKFT_OK);
  /* errors are values naming the op and the argument */
  CHECK_ERR(vkft_attention(be, &tq, &tk, &tv, &ts, &to, &tl, T, HQ, 3, D, (float)scale),
            VKFT_ERR_INPUT, "attention");
  CHECK_ERR(vkft_attention(be, &tq, &tk, &tv, &to, &to, &tl, T, HQ, HKV, D, (float)scale),
            VKFT_ERR_INPUT, "seq_id");
  CHECK(vkft_attention_bwd(be, &tq, &tk, &tv, &ts, &to, &tl, &td, &tdq, &tdk, &tdv, &tl, T + 1, HQ,
                           HKV, D, (float)scale) == VKFT_ERR);
  CHECK(vkft_end(be) == VKFT_OK);
  vkft_tensor_read(be, &to, outf);
  vkft_tensor_read(be, &tl, lsef);
  vkft_tensor_read(be, &tdq, dqf);
  vkft_tensor_read(be, &tdk, dkf);
  vkft_tensor_read(be, &tdv, dvf);

  static double out[NQ], lse[T * HQ], dq[NQ], dk[NKV], dv[NKV], delta[T * HQ];
  vkft_ref_attention_forward_f64(q, k, v, seq_id, out, lse, T, HQ, HKV, D, (float)scale);
  vkft_ref_attention_backward_f64(q, k, v, seq_id, out, lse, dout, dq, dk, dv, delta, T, HQ, HKV, D,
                                  (float)scale);
  double worst = 0; /* all values are O(1) here; fp32 gives ~1e-7 */
  for (int i = 0; i < NQ; i++) {
    worst = fmax(worst, fabs(outf[i] - out[i]));
    worst = fmax(worst, fabs(dqf[i] - dq[i]));
  }
  for (int i = 0; i < NKV; i++)
    worst = fmax(worst, fmax(fabs(dkf[i] - dk[i]), fabs(dvf[i] - dv[i])));
  for (int i = 0; i < T * HQ; i++) worst = fmax(worst, fabs(lsef[i] - lse[i]));
  printf("reference backend (fp32) vs double: max abs error %.2e\n", worst);
  CHECKF(worst < 1e-5, "error %.3e", worst);
  vkft_tensor *all[] = {&tq, &tk, &tv, &ts, &to, &tl, &td, &tdq, &tdk, &tdv, &tdelta};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) vkft_tensor_free(be, all[i]);
  vkft_backend_destroy(be);
}

int main(void) {
  uint64_t s = 12345;
  for (int i = 0; i < NQ; i++) q[i] = rnd(&s), dout[i] = rnd(&s);
  for (int i = 0; i < NKV; i++) k[i] = rnd(&s), v[i] = rnd(&s);
  finite_differences();
  reference_backend();
  return check_summary();
}
