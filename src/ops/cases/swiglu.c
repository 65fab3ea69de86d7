/* Op-table family "swiglu" / "swiglu_bwd": gate in [-8, 8] (both tails of the sigmoid), the
 * device and the reference backend against the double reference.
 * Tolerance: Vulkan guarantees exp to 3 + 2|x| ulp, so the sigmoid is within (7 + 2|g|) u
 * (with the add and the division), and a product of three factors adds 2 u: (9 + 2 * 8) u
 * relative to |out|. For dgate the factor 1 + g (1 - sig) can cancel, so its error is measured
 * against |dout up sig| (1 + |g|), which bounds every term's error contribution. */
#include "core.h"

#include <stdio.h>

#define GATE_MAX 8.0

typedef struct swiglu_ctx {
  int bwd, in_place;
  int64_t n;
  float *gate, *up, *dout;
  vkft_tensor tg, tu, tdo, out; /* out packs out (forward) or dgate|dup (backward) */
  vkft_tensor o1, o2, in_g, in_u;
  int64_t o2_at;
} swiglu_ctx;

/* In-place variant: the outputs overwrite gate (and up); the inputs then live in `out`. */
static int reset(vkft_backend *be, void *p) {
  swiglu_ctx *k = p;
  if (!k->in_place) return VKFT_OK;
  if (vkft_tensor_write(be, &k->o1, k->gate)) return VKFT_ERR;
  return k->bwd ? vkft_tensor_write(be, &k->o2, k->up) : VKFT_OK;
}

static int record(vkft_backend *be, void *p) {
  swiglu_ctx *k = p;
  if (!k->bwd) return vkft_swiglu(be, &k->in_g, &k->tu, &k->o1, k->n);
  return vkft_swiglu_bwd(be, &k->in_g, &k->in_u, &k->tdo, &k->o1, &k->o2, k->n);
}

static void release(vkft_backend *be, swiglu_ctx *k) {
  vkft_tensor *all[] = {&k->tg, &k->tu, &k->tdo, &k->out};
  for (int i = 0; i < 4; i++)
    if (all[i]->host || all[i]->buf.addr) vkft_tensor_free(be, all[i]);
}

static int run_on(vkft_backend *be, swiglu_ctx *k, float *got, int64_t out_n) {
  int64_t n = k->n;
  if (vkft_tensor_alloc(be, VKFT_F32, n, &k->tg) || vkft_tensor_write(be, &k->tg, k->gate) ||
      vkft_tensor_alloc(be, VKFT_F32, n, &k->tu) || vkft_tensor_write(be, &k->tu, k->up) ||
      vkft_tensor_alloc(be, VKFT_F32, n, &k->tdo) || vkft_tensor_write(be, &k->tdo, k->dout) ||
      vkft_tensor_alloc(be, VKFT_F32, out_n, &k->out))
    return VKFT_ERR;
  k->o1 = vkft_tensor_view(&k->out, 0, n);
  k->o2 = vkft_tensor_view(&k->out, k->o2_at, n);
  k->in_g = k->in_place ? k->o1 : k->tg;
  k->in_u = k->in_place && k->bwd ? k->o2 : k->tu;
  if (reset(be, k) || vkft_begin(be) || record(be, k) || vkft_end(be) ||
      vkft_tensor_read(be, &k->out, got))
    return VKFT_ERR;
  return VKFT_OK;
}

/* the outputs, not the padding between dgate and dup */
static void report(vkft_op_result *r, const swiglu_ctx *k, const float *got, const double *want,
                   const double *scale, double tol) {
  core_report(r, core_err(got, want, scale, k->n), tol);
  if (k->bwd)
    core_report(r, core_err(got + k->o2_at, want + k->o2_at, scale + k->o2_at, k->n), tol);
}

static int run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  swiglu_ctx k = {.bwd = strstr(c->op, "bwd") != NULL, .in_place = (int)c->d[2]};
  int64_t R = c->d[0], F = c->d[1], n = R * F;
  k.n = n;
  k.o2_at = k.bwd ? (n + 63) / 64 * 64 : 0;
  int64_t out_n = k.bwd ? k.o2_at + n : n;
  snprintf(r->shape, sizeof r->shape, "%lldx%lld%s", (long long)R, (long long)F,
           k.in_place ? " in place" : "");
  k.gate = malloc((size_t)n * 4), k.up = malloc((size_t)n * 4), k.dout = malloc((size_t)n * 4);
  float *got = malloc((size_t)out_n * 4);
  double *want = calloc((size_t)out_n, 8), *scale = calloc((size_t)out_n, 8);
  int status = VKFT_ERR;
  if (!k.gate || !k.up || !k.dout || !got || !want || !scale) {
    vkft_error("swiglu: out of host memory");
    goto done;
  }
  harness_rng rng = {(uint64_t)(n * 131 + F) ^ (uint64_t)k.bwd << 40 ^ (uint64_t)k.in_place << 41};
  core_uniform(&rng, k.gate, n, -GATE_MAX, GATE_MAX);
  core_uniform(&rng, k.up, n, -2, 2);
  core_uniform(&rng, k.dout, n, -1, 1);
  for (int64_t i = 0; i < n; i++) {
    double g = k.gate[i], u = k.up[i], d = k.dout[i];
    double sig = 1 / (1 + exp(-g));
    if (!k.bwd) {
      vkft_ref_swiglu_f64(&g, &u, &want[i], 1);
      scale[i] = fabs(want[i]);
    } else {
      vkft_ref_swiglu_backward_f64(&g, &u, &d, &want[i], &want[k.o2_at + i], 1);
      scale[i] = fabs(d * u * sig) * (1 + fabs(g));
      scale[k.o2_at + i] = fabs(want[k.o2_at + i]);
    }
  }
  double tol = (9 + 2 * GATE_MAX) * CORE_U;

  status = run_on(vk, &k, got, out_n);
  if (status == VKFT_OK) {
    report(r, &k, got, want, scale, tol);
    status = harness_repeat(vk, reset, record, &k, &k.out, got, timed_runs, r);
  }
  if (status == VKFT_OK && r->ms > 0) r->gbps = (k.bwd ? 20.0 : 12.0) * n / (r->ms * 1e6);
  release(vk, &k);
  vkft_backend *ref;
  if (status == VKFT_OK && timed_runs == 0 && (status = vkft_backend_ref_create(&ref)) == 0) {
    status = run_on(ref, &k, got, out_n);
    if (status == VKFT_OK) report(r, &k, got, want, scale, tol);
    release(ref, &k);
    vkft_backend_destroy(ref);
  }
done:
  free(k.gate), free(k.up), free(k.dout), free(got), free(want), free(scale);
  return status;
}

/* d = {R, F, outputs overwrite the inputs} */
static const vkft_op_case cases[] = {
    {"swiglu", VKFT_F32, {64, 256, 0}, HARNESS_T | HARNESS_S},
    {"swiglu", VKFT_F32, {1, 1, 0}, HARNESS_T},
    {"swiglu", VKFT_F32, {3, 333, 0}, HARNESS_T},
    {"swiglu", VKFT_F32, {7, 129, 1}, HARNESS_T},
    {"swiglu_bwd", VKFT_F32, {64, 256, 0}, HARNESS_T | HARNESS_S},
    {"swiglu_bwd", VKFT_F32, {1, 1, 0}, HARNESS_T},
    {"swiglu_bwd", VKFT_F32, {5, 343, 0}, HARNESS_T},
    {"swiglu_bwd", VKFT_F32, {9, 130, 1}, HARNESS_T},
    {"swiglu", VKFT_F32, {2048, 8192, 0}, HARNESS_B},
    {"swiglu_bwd", VKFT_F32, {2048, 8192, 0}, HARNESS_B},
};

const harness_family family_swiglu = {cases, HARNESS_COUNT(cases), run};
