/* Op-table family "adamw": one step on random state, the device and the reference backend
 * against the double reference evaluated with the same fp32 step scalars.
 * Tolerances (Vulkan precision: * and + correctly rounded, / 2.5 ulp, sqrt ~4.5 ulp):
 *   m = m + (1-b1)(g' - m): four roundings on terms bounded by |m| + |g'|: 4 u of that.
 *   v = v b2 + ((1-b2) g') g': all terms positive, ~4 u of the new v plus 2 u from g': 6 u.
 *   p = p decay - step (m / denom): m's absolute error scaled by step/denom, plus ~14 u of the
 *   update from the divisions and the square root, plus the two roundings on p: measured
 *   against |p| + step/denom (|m| + |g'|), 24 u. */
#include "core.h"

#include <stdio.h>

typedef struct adamw_ctx {
  int64_t n, stride; /* p, m, v packed in one tensor at 0, stride, 2 * stride */
  vkft_adamw_hparams hp;
  int scaled;
  float scale;
  float *state, *g; /* state: p | m | v */
  vkft_tensor tstate, tg, tscale, tp, tm, tv;
} adamw_ctx;

static int reset(vkft_backend *be, void *p) {
  adamw_ctx *k = p;
  return vkft_tensor_write(be, &k->tstate, k->state);
}

static int record(vkft_backend *be, void *p) {
  adamw_ctx *k = p;
  return vkft_adamw(be, &k->tp, &k->tg, &k->tm, &k->tv, k->scaled ? &k->tscale : NULL, &k->hp,
                    k->n);
}

static void release(vkft_backend *be, adamw_ctx *k) {
  vkft_tensor *all[] = {&k->tstate, &k->tg, &k->tscale};
  for (int i = 0; i < 3; i++)
    if (all[i]->host || all[i]->buf.addr) vkft_tensor_free(be, all[i]);
}

static int run_on(vkft_backend *be, adamw_ctx *k, float *got) {
  if (vkft_tensor_alloc(be, VKFT_F32, 3 * k->stride, &k->tstate) || reset(be, k) ||
      vkft_tensor_alloc(be, VKFT_F32, k->n, &k->tg) || vkft_tensor_write(be, &k->tg, k->g) ||
      vkft_tensor_alloc(be, VKFT_F32, 1, &k->tscale) ||
      vkft_tensor_write(be, &k->tscale, &k->scale))
    return VKFT_ERR;
  k->tp = vkft_tensor_view(&k->tstate, 0, k->n);
  k->tm = vkft_tensor_view(&k->tstate, k->stride, k->n);
  k->tv = vkft_tensor_view(&k->tstate, 2 * k->stride, k->n);
  if (vkft_begin(be) || record(be, k) || vkft_end(be) || vkft_tensor_read(be, &k->tstate, got))
    return VKFT_ERR;
  return VKFT_OK;
}

static void report(vkft_op_result *r, const adamw_ctx *k, const float *got, const double *want,
                   const double *scale) {
  static const double tol[3] = {24 * CORE_U, 4 * CORE_U, 6 * CORE_U};
  for (int j = 0; j < 3; j++) {
    int64_t at = j * k->stride;
    core_report(r, core_err(got + at, want + at, scale + at, k->n), tol[j]);
  }
}

static int run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  adamw_ctx k = {.n = c->d[0], .scaled = (int)c->d[2], .scale = 0.37f};
  int64_t n = k.n;
  k.stride = (n + 63) / 64 * 64;
  k.hp = (vkft_adamw_hparams){.lr = 2e-4,
                              .beta1 = 0.9,
                              .beta2 = 0.999,
                              .eps = 1e-8,
                              .weight_decay = c->d[3] ? 0.01 : 0,
                              .step = c->d[1]};
  snprintf(r->shape, sizeof r->shape, "%lld step %lld%s%s", (long long)n, (long long)k.hp.step,
           k.scaled ? " clip" : "", c->d[3] ? " wd" : "");
  int64_t total = 3 * k.stride;
  k.state = calloc((size_t)total, 4), k.g = malloc((size_t)n * 4);
  float *got = malloc((size_t)total * 4);
  double *want = calloc((size_t)total, 8), *scale = calloc((size_t)total, 8);
  int status = VKFT_ERR;
  if (!k.state || !k.g || !got || !want || !scale) {
    vkft_error("adamw: out of host memory");
    goto done;
  }
  harness_rng rng = {(uint64_t)n * 977 ^ (uint64_t)k.hp.step << 32 ^ (uint64_t)c->d[2] << 50};
  float *p = k.state, *m = k.state + k.stride, *v = k.state + 2 * k.stride;
  for (int64_t i = 0; i < n; i++) {
    /* gradients over many magnitudes; the first step starts from zero moments, as torch does */
    k.g[i] = (float)(harness_uniform(&rng, -1, 1) * pow(10, -harness_uniform(&rng, 0, 6)));
    p[i] = (float)harness_uniform(&rng, -1, 1);
    m[i] = k.hp.step == 1 ? 0 : (float)(harness_uniform(&rng, -1, 1) * 1e-3);
    v[i] = k.hp.step == 1 ? 0 : (float)harness_uniform(&rng, 0, 1e-6);
  }
  vkft_adamw_step st = vkft_adamw_step_for(&k.hp);
  double gs = k.scaled ? (double)k.scale : 1.0;
  for (int64_t i = 0; i < n; i++) {
    double pd = p[i], gd = k.g[i], md = m[i], vd = v[i];
    vkft_ref_adamw_f64(&pd, &gd, &md, &vd, 1, gs, &st);
    double g_scaled = fabs(gd * gs);
    double denom = sqrt(vd) / st.bias_correction2_sqrt + st.eps;
    want[i] = pd, want[k.stride + i] = md, want[2 * k.stride + i] = vd;
    scale[k.stride + i] = fabs(m[i]) + g_scaled;
    scale[2 * k.stride + i] = fabs(vd);
    scale[i] = fabs(p[i]) + st.step_size / denom * scale[k.stride + i];
  }

  status = run_on(vk, &k, got);
  if (status == VKFT_OK) {
    report(r, &k, got, want, scale);
    status = harness_repeat(vk, reset, record, &k, &k.tstate, got, timed_runs, r);
  }
  if (status == VKFT_OK && r->ms > 0) r->gbps = 28.0 * n / (r->ms * 1e6); /* 4 reads, 3 writes */
  release(vk, &k);
  vkft_backend *ref;
  if (status == VKFT_OK && timed_runs == 0 && (status = vkft_backend_ref_create(&ref)) == 0) {
    status = run_on(ref, &k, got);
    if (status == VKFT_OK) report(r, &k, got, want, scale);
    release(ref, &k);
    vkft_backend_destroy(ref);
  }
done:
  free(k.state), free(k.g), free(got), free(want), free(scale);
  return status;
}

/* d = {n, step, gradient scaled by a device clip coefficient, weight decay} */
static const vkft_op_case cases[] = {
    {"adamw", VKFT_F32, {1000, 1, 0, 1}, HARNESS_T | HARNESS_S},
    {"adamw", VKFT_F32, {1, 1, 0, 0}, HARNESS_T},
    {"adamw", VKFT_F32, {1001, 7, 1, 1}, HARNESS_T | HARNESS_S},
    {"adamw", VKFT_F32, {4099, 1000, 0, 0}, HARNESS_T},
    {"adamw", VKFT_F32, {65, 20000, 1, 0}, HARNESS_T},
    {"adamw", VKFT_F32, {16 << 20, 10, 1, 1}, HARNESS_B},
};

const harness_family family_adamw = {cases, HARNESS_COUNT(cases), run};
