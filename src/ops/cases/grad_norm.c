/* Op-table family "grad_norm": many gradient tensors of assorted sizes, views into one
 * allocation (as a trainer lays them out), some starting unaligned; the norm and the clip
 * coefficient against the double reference.
 * Tolerance: the longest chain of fp32 additions is 64 per thread in a slot, 2 + 6 to combine
 * lanes and threads, then S/64 + 6 in the final sum over S slots; the relative error of the sum
 * of squares (all terms positive) is within that many u, and the square root halves it. The
 * coefficient adds the division (2.5 ulp) and the 1e-6 term: 4 u more. */
#include "core.h"

#include <stdio.h>

typedef struct gn_ctx {
  int count;
  float max_norm;
  vkft_tensor all, slots, out, *grads;
} gn_ctx;

static int record(vkft_backend *be, void *p) {
  gn_ctx *k = p;
  return vkft_grad_norm(be, k->grads, k->count, &k->slots, &k->out, k->max_norm);
}

static void release(vkft_backend *be, gn_ctx *k) {
  vkft_tensor *all[] = {&k->all, &k->slots, &k->out};
  for (int i = 0; i < 3; i++)
    if (all[i]->host || all[i]->buf.addr) vkft_tensor_free(be, all[i]);
}

static int run_on(vkft_backend *be, gn_ctx *k, const float *values, int64_t total,
                  const int64_t *offsets, const int64_t *lens, float *got) {
  if (vkft_tensor_alloc(be, VKFT_F32, total, &k->all) || vkft_tensor_write(be, &k->all, values))
    return VKFT_ERR;
  for (int i = 0; i < k->count; i++) k->grads[i] = vkft_tensor_view(&k->all, offsets[i], lens[i]);
  int64_t slots = vkft_grad_norm_slots(k->grads, k->count);
  if (vkft_tensor_alloc(be, VKFT_F32, slots ? slots : 1, &k->slots) ||
      vkft_tensor_alloc(be, VKFT_F32, 2, &k->out) || vkft_begin(be) || record(be, k) ||
      vkft_end(be) || vkft_tensor_read(be, &k->out, got))
    return VKFT_ERR;
  return VKFT_OK;
}

static int run(vkft_backend *vk, const vkft_op_case *c, int timed_runs, vkft_op_result *r) {
  gn_ctx k = {.count = (int)c->d[0]};
  int64_t max_len = c->d[1];
  int clip = (int)c->d[2], unaligned = (int)c->d[3];
  k.grads = calloc((size_t)k.count, sizeof *k.grads);
  int64_t *offsets = malloc((size_t)k.count * 8), *lens = malloc((size_t)k.count * 8);
  float *values = NULL;
  int status = VKFT_ERR;
  if (!k.grads || !offsets || !lens) {
    vkft_error("grad_norm: out of host memory");
    goto done;
  }
  harness_rng rng = {((uint64_t)k.count * 31337 + (uint64_t)max_len) ^ (uint64_t)clip << 40};
  int64_t total = 0;
  for (int i = 0; i < k.count; i++) {
    lens[i] = i == 0 ? max_len : 1 + (int64_t)harness_uniform(&rng, 0, (double)max_len);
    total += unaligned ? 1 : (64 - total % 64) % 64; /* a gap: next view unaligned or aligned */
    offsets[i] = total;
    total += lens[i];
  }
  values = malloc((size_t)total * 4);
  if (!values) {
    vkft_error("grad_norm: out of host memory");
    goto done;
  }
  double sum_sq = 0;
  for (int i = 0; i < k.count; i++) {
    /* tensors of very different scales, as layers' gradients are */
    double mag = pow(10, -harness_uniform(&rng, 0, 4));
    for (int64_t j = 0; j < lens[i]; j++) {
      float v = (float)(harness_uniform(&rng, -1, 1) * mag);
      values[offsets[i] + j] = v;
      sum_sq += (double)v * v;
    }
  }
  double norm = sqrt(sum_sq);
  k.max_norm = clip == 1 ? (float)(0.5 * norm) : clip == 2 ? (float)(2 * norm + 1) : 0;
  double coef = k.max_norm > 0 ? fmin(1.0, k.max_norm / (norm + 1e-6)) : 1.0;
  snprintf(r->shape, sizeof r->shape, "%d x <=%lld%s%s", k.count, (long long)max_len,
           clip == 1   ? " clip"
           : clip == 2 ? " no clip"
                       : "",
           unaligned ? " unaligned" : "");

  int64_t slots = 0;
  for (int i = 0; i < k.count; i++) slots += (lens[i] + 16383) / 16384;
  double tol = (80 + (double)slots / 64) * CORE_U;
  float got[2];
  status = run_on(vk, &k, values, total, offsets, lens, got);
  if (status == VKFT_OK) {
    core_report(r, fabs(got[0] - norm) / norm, tol);
    core_report(r, fabs(got[1] - coef) / coef, tol + 4 * CORE_U);
    status = harness_repeat(vk, NULL, record, &k, &k.out, got, timed_runs, r);
  }
  if (status == VKFT_OK && r->ms > 0) r->gbps = 4.0 * (double)(total) / (r->ms * 1e6);
  release(vk, &k);
  vkft_backend *ref;
  if (status == VKFT_OK && timed_runs == 0 && (status = vkft_backend_ref_create(&ref)) == 0) {
    status = run_on(ref, &k, values, total, offsets, lens, got);
    if (status == VKFT_OK) {
      core_report(r, fabs(got[0] - norm) / norm, tol);
      core_report(r, fabs(got[1] - coef) / coef, tol + 4 * CORE_U);
    }
    release(ref, &k);
    vkft_backend_destroy(ref);
  }
done:
  free(k.grads), free(offsets), free(lens), free(values);
  return status;
}

/* d = {tensors, largest length, 0 no max_norm / 1 clipping / 2 max_norm above the norm, views
 * unaligned}: one tensor of one element, lengths straddling the 16384-element slots, a
 * LoRA-sized list (224 tensors) for the bench. */
static const vkft_op_case cases[] = {
    {"grad_norm", VKFT_F32, {5, 20000, 1, 0}, HARNESS_T | HARNESS_S},
    {"grad_norm", VKFT_F32, {1, 1, 0, 0}, HARNESS_T},
    {"grad_norm", VKFT_F32, {1, 16385, 2, 0}, HARNESS_T},
    {"grad_norm", VKFT_F32, {40, 3000, 1, 1}, HARNESS_T},
    {"grad_norm", VKFT_F32, {3, 100000, 2, 1}, HARNESS_T},
    {"grad_norm", VKFT_F32, {1, 16 << 20, 1, 0}, HARNESS_B},
    {"grad_norm", VKFT_F32, {224, 150000, 1, 0}, HARNESS_B},
};

const harness_family family_grad_norm = {cases, HARNESS_COUNT(cases), run};
