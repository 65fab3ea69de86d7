/* Op-table family "grad_norm": many gradient tensors of assorted sizes, views into one
 * allocation (as a trainer lays them out), some starting unaligned; the norm and the clip
 * coefficient against the double reference.
 * Tolerance: the longest chain of fp32 additions is 64 per thread in a slot, 2 + 6 to combine
 * lanes and threads, then S/64 + 6 in the final sum over S slots; the relative error of the sum
 * of squares (all terms positive) is within that many u, and the square root halves it. The
 * coefficient adds the division (2.5 ulp) and the 1e-6 term: 4 u more. */
#include "case.h"

enum { ALL, SLOTS, OUT };

typedef struct grad_norm_params {
  int count;
  float max_norm;
  int64_t *offsets;
  vkft_tensor *grads; /* the views, remade by record() on each backend */
} grad_norm_params;

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  grad_norm_params *p = CASE_PARAMS(oc, grad_norm_params);
  if (!p) return VKFT_ERR;
  p->count = (int)c->d[0];
  int64_t max_len = c->d[1];
  int clip = (int)c->d[2], unaligned = (int)c->d[3];
  case_shape(oc, "%d x <=%lld%s%s", p->count, (long long)max_len,
             clip == 1   ? " clip"
             : clip == 2 ? " no clip"
                         : "",
             unaligned ? " unaligned" : "");
  p->offsets = CASE_NEW(oc, int64_t, p->count);
  p->grads = CASE_NEW(oc, vkft_tensor, p->count);
  double **values = CASE_NEW(oc, double *, p->count);
  int64_t *lens = CASE_NEW(oc, int64_t, p->count);
  if (oc->failed) return VKFT_ERR;
  int64_t total = 0;
  for (int i = 0; i < p->count; i++) {
    lens[i] = i == 0 ? max_len : 1 + (int64_t)case_uniform(&oc->rng, 0, (double)max_len);
    total += unaligned ? 1 : (64 - total % 64) % 64; /* a gap: next view unaligned or aligned */
    p->offsets[i] = total;
    total += lens[i];
    p->grads[i].n = lens[i];
  }
  float *all = case_tensor_new(oc, ALL, "gradients", VKFT_F32, total, CASE_IN);
  case_tensor_new(oc, SLOTS, "slots", VKFT_F32, vkft_grad_norm_slots(p->grads, p->count),
                  CASE_SCRATCH);
  case_poisoned(oc, OUT, "out", 2);
  double *want = CASE_NEW(oc, double, 2);
  for (int i = 0; i < p->count && !oc->failed; i++) {
    /* tensors of very different scales, as layers' gradients are */
    double mag = pow(10, -case_uniform(&oc->rng, 0, 4));
    values[i] = CASE_NEW(oc, double, lens[i]);
    for (int64_t j = 0; values[i] && j < lens[i]; j++) {
      all[p->offsets[i] + j] = (float)(case_uniform(&oc->rng, -1, 1) * mag);
      values[i][j] = all[p->offsets[i] + j];
    }
  }
  if (oc->failed) return VKFT_ERR;
  vkft_ref_grad_norm_f64((const double *const *)values, lens, p->count, 0, &want[0], &want[1]);
  p->max_norm = clip == 1 ? (float)(0.5 * want[0]) : clip == 2 ? (float)(2 * want[0] + 1) : 0;
  vkft_ref_grad_norm_f64((const double *const *)values, lens, p->count, p->max_norm, &want[0],
                         &want[1]);

  int64_t slots = 0;
  for (int i = 0; i < p->count; i++) slots += (lens[i] + 16383) / 16384;
  double tol = (80 + (double)slots / 64) * CASE_U;
  case_expect_part(oc, OUT, 0, 1, &want[0], NULL, tol);
  case_expect_part(oc, OUT, 1, 1, &want[1], NULL, tol + 4 * CASE_U);
  oc->bytes = 4.0 * (double)total;
  return case_status(oc);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const grad_norm_params *p = oc->params;
  for (int i = 0; i < p->count; i++)
    p->grads[i] = vkft_tensor_view(&t[ALL], p->offsets[i], p->grads[i].n);
  return vkft_grad_norm(be, p->grads, p->count, &t[SLOTS], &t[OUT], p->max_norm);
}

const case_family case_grad_norm = {{"grad_norm"}, setup, record};
