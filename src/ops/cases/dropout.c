/* Op-table family "dropout": the device against the fp32 reference, bit for bit (the mask is
 * the same integer hash on both sides and x * scale is one correctly rounded multiply), plus
 * the kept share against 1 - p, and the backward identity (same seed and stream, same mask). */
#include "core.h"

#include <stdio.h>

typedef struct dropout_ctx {
  vkft_tensor x, out;
  int64_t n;
  double p;
} dropout_ctx;

static int record(vkft_backend *be, void *c) {
  dropout_ctx *k = c;
  return vkft_dropout(be, &k->x, &k->out, k->n, k->p, 1234u, 7u);
}

static int run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  dropout_ctx k = {.n = c->d[0], .p = (double)c->d[1] / 100.0};
  snprintf(r->shape, sizeof r->shape, "%lld p=%.2f", (long long)k.n, k.p);
  float *x = malloc((size_t)k.n * 4), *got = malloc((size_t)k.n * 4),
        *want = malloc((size_t)k.n * 4);
  int status = VKFT_ERR;
  if (!x || !got || !want) {
    vkft_error("dropout: out of host memory");
    goto done;
  }
  harness_rng rng = {(uint64_t)k.n * 977 + (uint64_t)c->d[1]};
  core_uniform(&rng, x, k.n, -2, 2);
  for (int64_t i = 0; i < k.n; i++) x[i] += x[i] == 0 ? 1.0f : 0.0f; /* zeros only where dropped */
  vkft_ref_dropout_f32(x, want, k.n, (uint32_t)(k.p * 16777216.0), (float)(1.0 / (1.0 - k.p)),
                       1234u, 7u);
  if (vkft_tensor_alloc(vk, VKFT_F32, k.n, &k.x) || vkft_tensor_alloc(vk, VKFT_F32, k.n, &k.out) ||
      vkft_tensor_write(vk, &k.x, x) || vkft_begin(vk) || record(vk, &k) || vkft_end(vk) ||
      vkft_tensor_read(vk, &k.out, got))
    goto release;
  int64_t differ = core_bits_differ(got, want, k.n * 4), dropped = 0;
  for (int64_t i = 0; i < k.n; i++) dropped += want[i] == 0;
  /* the kept share is binomial: within 6 standard deviations of 1 - p */
  double share = (double)dropped / (double)k.n, sd = sqrt(k.p * (1 - k.p) / (double)k.n);
  int share_ok = fabs(share - k.p) <= 6 * sd + 1e-12;
  r->max_err = (double)differ;
  r->tol = 0;
  r->ok = differ == 0 && share_ok;
  status = harness_repeat(vk, NULL, record, &k, &k.out, got, timed_runs, r);
  if (status == VKFT_OK && r->ms > 0) r->gbps = 8.0 * (double)k.n / (r->ms * 1e6);
release:
  vkft_tensor_free(vk, &k.x);
  vkft_tensor_free(vk, &k.out);
done:
  free(x), free(got), free(want);
  return status;
}

/* d = {n, p in percent} */
static const vkft_op_case cases[] = {
    {"dropout", VKFT_F32, {1, 10}, HARNESS_T},
    {"dropout", VKFT_F32, {1001, 5}, HARNESS_T | HARNESS_S},
    {"dropout", VKFT_F32, {65537, 50}, HARNESS_T},
    {"dropout", VKFT_F32, {16777216, 10}, HARNESS_B},
};

const harness_family family_dropout = {cases, HARNESS_COUNT(cases), run};
