/* Op-table family "swiglu" / "swiglu_bwd": gate in [-8, 8] (both tails of the sigmoid) against
 * the double reference; in place, the outputs overwrite the inputs.
 * Tolerance: Vulkan guarantees exp to 3 + 2|x| ulp, so the sigmoid is within (7 + 2|g|) u
 * (with the add and the division), and a product of three factors adds 2 u: (9 + 2 * 8) u
 * relative to |out|. For dgate the factor 1 + g (1 - sig) can cancel, so its error is measured
 * against |dout up sig| (1 + |g|), which bounds every term's error contribution. */
#include "case.h"

#define GATE_MAX 8.0

enum { GATE, UP, DOUT, OUT, DGATE, DUP };

typedef struct swiglu_params {
  int64_t n;
  int bwd, in_place;
} swiglu_params;

/* the tensor that receives an output: its own, or the input it overwrites */
static int out_slot(const swiglu_params *p, int own, int input) {
  return p->in_place ? input : own;
}

static int setup(op_case *oc) {
  const vkft_op_case *c = oc->row;
  swiglu_params *p = CASE_PARAMS(oc, swiglu_params);
  if (!p) return VKFT_ERR;
  *p = (swiglu_params){c->d[0] * c->d[1], oc->variant == 1, (int)c->d[2]};
  int64_t n = p->n;
  case_shape(oc, "%lldx%lld%s", (long long)c->d[0], (long long)c->d[1],
             p->in_place ? " in place" : "");
  case_role overwritten = p->in_place ? CASE_OUT : CASE_IN;
  double *g = case_random(oc, GATE, "gate", VKFT_F32, n, overwritten, -GATE_MAX, GATE_MAX);
  double *u = case_random(oc, UP, "up", VKFT_F32, n, p->bwd ? overwritten : CASE_IN, -2, 2);
  double *want = CASE_NEW(oc, double, n), *want2 = CASE_NEW(oc, double, n);
  double *scale = CASE_NEW(oc, double, n);
  double tol = (9 + 2 * GATE_MAX) * CASE_U;
  if (!p->bwd) {
    if (!p->in_place) case_poisoned(oc, OUT, "out", n);
    if (oc->failed) return VKFT_ERR;
    vkft_ref_swiglu_f64(g, u, want, n);
    case_expect(oc, out_slot(p, OUT, GATE), want, NULL, tol);
    oc->bytes = 12.0 * n;
    return case_status(oc);
  }
  double *d = case_random(oc, DOUT, "dout", VKFT_F32, n, CASE_IN, -1, 1);
  if (!p->in_place) case_poisoned(oc, DGATE, "dgate", n), case_poisoned(oc, DUP, "dup", n);
  if (oc->failed) return VKFT_ERR;
  vkft_ref_swiglu_backward_f64(g, u, d, want, want2, n);
  for (int64_t i = 0; i < n; i++)
    scale[i] = fabs(d[i] * u[i] / (1 + exp(-g[i]))) * (1 + fabs(g[i]));
  case_expect(oc, out_slot(p, DGATE, GATE), want, scale, tol);
  case_expect(oc, out_slot(p, DUP, UP), want2, NULL, tol);
  oc->bytes = 20.0 * n;
  return case_status(oc);
}

static int record(vkft_backend *be, const op_case *oc, vkft_tensor *t) {
  const swiglu_params *p = oc->params;
  if (!p->bwd) return vkft_swiglu(be, &t[GATE], &t[UP], &t[out_slot(p, OUT, GATE)], p->n);
  return vkft_swiglu_bwd(be, &t[GATE], &t[UP], &t[DOUT], &t[out_slot(p, DGATE, GATE)],
                         &t[out_slot(p, DUP, UP)], p->n);
}

const case_family case_swiglu = {{"swiglu", "swiglu_bwd"}, setup, record};
