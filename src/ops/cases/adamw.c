/* Op-table family "adamw": one step on random state against the double reference evaluated
 * with the same fp32 step scalars.
 * Tolerances (Vulkan precision: * and + correctly rounded, / 2.5 ulp, sqrt ~4.5 ulp):
 *   m = m + (1-b1)(g' - m): four roundings on terms bounded by |m| + |g'|: 4 u of that.
 *   v = v b2 + ((1-b2) g') g': all terms positive, ~4 u of the new v plus 2 u from g': 6 u.
 *   p = p decay - step (m / denom): m's absolute error scaled by step/denom, plus ~14 u of the
 *   update from the divisions and the square root, plus the two roundings on p: measured
 *   against |p| + step/denom (|m| + |g'|), 24 u. */
#include "case.h"

enum { P, G, M, V, GRAD_SCALE };

typedef struct adamw_params {
  int64_t n;
  vkft_adamw_hparams hp;
  int scaled;
} adamw_params;

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  adamw_params *p = CASE_PARAMS(oc, adamw_params);
  if (!p) return VKFT_ERR;
  int64_t n = p->n = c->d[0];
  p->scaled = (int)c->d[2];
  p->hp = (vkft_adamw_hparams){.lr = 2e-4,
                               .beta1 = 0.9,
                               .beta2 = 0.999,
                               .eps = 1e-8,
                               .weight_decay = c->d[3] ? 0.01 : 0,
                               .step = c->d[1]};
  case_shape(oc, "%lld step %lld%s%s", (long long)n, (long long)p->hp.step,
             p->scaled ? " clip" : "", c->d[3] ? " wd" : "");
  float *param = case_tensor_new(oc, P, "p", VKFT_F32, n, CASE_OUT);
  float *g = case_tensor_new(oc, G, "g", VKFT_F32, n, CASE_IN);
  float *m = case_tensor_new(oc, M, "m", VKFT_F32, n, CASE_OUT);
  float *v = case_tensor_new(oc, V, "v", VKFT_F32, n, CASE_OUT);
  float *grad_scale = case_tensor_new(oc, GRAD_SCALE, "grad_scale", VKFT_F32, 1, CASE_IN);
  double *want = CASE_NEW(oc, double, 3 * n), *scale = CASE_NEW(oc, double, 3 * n);
  if (oc->failed) return VKFT_ERR;
  grad_scale[0] = 0.37f;
  for (int64_t i = 0; i < n; i++) {
    /* gradients over many magnitudes; the first step starts from zero moments, as torch does */
    g[i] = (float)(case_uniform(&oc->rng, -1, 1) * pow(10, -case_uniform(&oc->rng, 0, 6)));
    param[i] = (float)case_uniform(&oc->rng, -1, 1);
    m[i] = p->hp.step == 1 ? 0 : (float)(case_uniform(&oc->rng, -1, 1) * 1e-3);
    v[i] = p->hp.step == 1 ? 0 : (float)case_uniform(&oc->rng, 0, 1e-6);
  }
  vkft_adamw_step st = vkft_adamw_step_for(&p->hp);
  double gs = p->scaled ? (double)grad_scale[0] : 1.0;
  double *pw = want, *mw = want + n, *vw = want + 2 * n;
  double *ps = scale, *ms = scale + n, *vs = scale + 2 * n;
  for (int64_t i = 0; i < n; i++) {
    double gd = g[i];
    pw[i] = param[i], mw[i] = m[i], vw[i] = v[i];
    vkft_ref_adamw_f64(&pw[i], &gd, &mw[i], &vw[i], 1, gs, &st);
    double denom = sqrt(vw[i]) / st.bias_correction2_sqrt + st.eps;
    ms[i] = fabs(m[i]) + fabs(gd * gs);
    vs[i] = fabs(vw[i]);
    ps[i] = fabs(param[i]) + st.step_size / denom * ms[i];
  }
  case_expect(oc, P, pw, ps, 24 * CASE_U);
  case_expect(oc, M, mw, ms, 4 * CASE_U);
  case_expect(oc, V, vw, vs, 6 * CASE_U);
  oc->bytes = 28.0 * n; /* 4 reads, 3 writes */
  return case_status(oc);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const adamw_params *p = oc->params;
  return vkft_adamw(be, &t[P], &t[G], &t[M], &t[V], p->scaled ? &t[GRAD_SCALE] : NULL, &p->hp,
                    p->n);
}

const case_family case_adamw = {{"adamw"}, setup, record};
